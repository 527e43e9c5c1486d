"""CustomActionData: the one value a deferred action can read, as a mapping.

The text is ``key=value`` pairs separated by ``;``, the shape authors already
write by hand (``INSTALLDIR=[INSTALLDIR];MODE=full``). Keys are property-like
names (letters, digits, ``_``, ``.``, ``-``); a key ends at its ``=``, and its
value runs to the next single ``;``. Inside a value, ``;;`` stands for ``;``
and ``;=`` for ``=``. Windows paths, ``=``, a leading ``=``, empty values,
newlines and any Unicode pass as they are, and every value round-trips (DTF's
format does not).

One sequence is always escaped: ``<=>``. The engine carries a deferred
action's data as ``CustomActionData<=>UserSID<=>ProductCode`` and splits it
there (measured with Wine: a ``<=>`` in the data cut it short and shifted
ProductCode), so :func:`encode` writes it ``<;=>`` and never emits ``<=>``.

A type 51 action that formats ``[PROPERTY]`` into the text inserts the value
as it is: such a value must hold no ``;`` and no ``<=>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_KEY = re.compile(r"[A-Za-z0-9_.\-]+\Z")


def encode(data: Mapping[str, str]) -> str:
    """The CustomActionData text for ``data``; it never contains ``<=>``."""
    parts = []
    for key, value in data.items():
        if not _KEY.match(key):
            raise ValueError(
                f"CustomActionData key {key!r} must be a property-like name: letters, digits, "
                "'_', '.' or '-'"
            )
        parts.append(f"{key}={value.replace(';', ';;').replace('<=>', '<;=>')}")
    return ";".join(parts)


def decode(text: str) -> dict[str, str]:
    """The mapping in CustomActionData ``text``; ValueError says where it is malformed."""
    data: dict[str, str] = {}
    position = 0
    while position < len(text):
        equals = text.find("=", position)
        separator = text.find(";", position)
        if equals < 0 or (0 <= separator < equals):
            entry = text[position:separator if separator >= 0 else len(text)]
            raise ValueError(
                f"CustomActionData entry {entry!r} has no '=': write key=value pairs "
                "separated by ';' (msica.customactiondata.encode)"
            )
        key = text[position:equals]
        if not key:
            raise ValueError("CustomActionData has an entry with an empty key")
        if key in data:
            raise ValueError(f"CustomActionData names {key!r} twice")
        value: list[str] = []
        position = equals + 1
        while position < len(text):
            char = text[position]
            if char == ";":
                following = text[position + 1 : position + 2]
                if following in (";", "="):  # an escaped ';' or '='
                    value.append(following)
                    position += 2
                    continue
                position += 1
                break
            value.append(char)
            position += 1
        data[key] = "".join(value)
    return data
