"""``msica wxs``: the WiX source that puts an msica DLL and its actions into an installer.

Two shapes, the same elements (WiX v3 schema):

- ``include`` (default): an ``<Include>`` file for ``<?include x.wxi ?>`` inside
  ``<Product>``. wixl (msitools) compiles it; it refuses ``<Binary>`` inside a
  ``<Fragment>``, measured with wixl 0.101.
- ``fragment``: a ``<Fragment>`` for WiX v3's candle/light, pulled in by a
  ``<CustomActionRef>`` in the product.

Actions without ``after``/``before`` are chained: the first immediate one after
CostFinalize, the first deferred one after InstallInitialize, each later one
after the previous one, so they run in source order.

In the include, actions placed relative to a standard action (or to one
another) get explicit ``Sequence`` numbers from the standard actions' suggested
numbers: wixl 0.101 resolves chains of ``After`` unreliably (measured: an
action ``After="CostFinalize"`` landed after InstallFinalize). The fragment
keeps ``After``/``Before`` for WiX, which resolves them itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from msica.build import builder, payload
from msica.errors import AuthorError, BuildError

WIX3_NAMESPACE = "http://schemas.microsoft.com/wix/2006/wi"
STYLES = ("include", "fragment")

_DEFAULT_ANCHOR = {"immediate": "CostFinalize", "deferred": "InstallInitialize"}

# "Suggested InstallExecuteSequence" numbers of the standard actions.
STANDARD_SEQUENCE = {
    "LaunchConditions": 100,
    "FindRelatedProducts": 200,
    "AppSearch": 400,
    "ValidateProductID": 700,
    "CostInitialize": 800,
    "FileCost": 900,
    "CostFinalize": 1000,
    "MigrateFeatureStates": 1200,
    "InstallValidate": 1400,
    "InstallInitialize": 1500,
    "ProcessComponents": 1600,
    "UnpublishFeatures": 1800,
    "StopServices": 1900,
    "DeleteServices": 2000,
    "RemoveRegistryValues": 2600,
    "RemoveShortcuts": 3200,
    "RemoveFiles": 3500,
    "RemoveFolders": 3600,
    "CreateFolders": 3700,
    "InstallFiles": 4000,
    "CreateShortcuts": 4500,
    "WriteRegistryValues": 5000,
    "InstallServices": 5800,
    "StartServices": 5900,
    "RegisterUser": 6000,
    "RegisterProduct": 6100,
    "PublishFeatures": 6300,
    "PublishProduct": 6400,
    "InstallFinalize": 6600,
}


@dataclass(frozen=True)
class DllInfo:
    """What a packaged DLL says about itself (its manifest)."""

    path: Path
    arch: str
    python: str
    actions: tuple[dict[str, Any], ...]


def read_dll(path: Path) -> DllInfo:
    """The manifest of the msica DLL at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AuthorError(f"cannot read {path}: {error.strerror}") from None
    try:
        trailer = payload.read_trailer(data)
        files = payload.read_entries(data, trailer)
    except BuildError as error:
        raise AuthorError(f"{path}: {error}") from None
    raw = files.get(builder.MANIFEST)
    if raw is None:
        raise AuthorError(f"{path} has no {builder.MANIFEST}: rebuild it with `msica build`")
    document = json.loads(raw)
    return DllInfo(path, document["arch"], document["python"], tuple(document["actions"]))


def binary_id(dll: Path) -> str:
    """A Binary table key for the DLL: an identifier made from its file name."""
    stem = re.sub(r"[^A-Za-z0-9_.]", "_", dll.name)
    return ("msica_" + stem)[:72]


def render(
    info: DllInfo,
    *,
    source_file: str,
    style: str = "include",
    binary: str | None = None,
) -> str:
    """The WiX source text for the DLL described by ``info``."""
    if style not in STYLES:
        raise AuthorError(f"style {style!r} is not one of {', '.join(STYLES)}")
    key = binary or binary_id(info.path)
    indent = "    "
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f"<!-- Written by `msica wxs` from {escape(info.path.name)}: do not edit, rebuild. -->",
    ]
    if style == "include":
        lines.append(f'<Include xmlns="{WIX3_NAMESPACE}">')
    else:
        lines += [f'<Wix xmlns="{WIX3_NAMESPACE}">', f"{indent}<Fragment>"]
        indent += "    "
    lines.append(f"{indent}<Binary Id={quoteattr(key)} SourceFile={quoteattr(source_file)}/>")
    for action in info.actions:
        if action.get("data_setter"):
            lines.append(indent + _custom_action(_setter_of(action), key))
        lines.append(indent + _custom_action(action, key))
    lines.append(f"{indent}<InstallExecuteSequence>")
    for action, anchor in _placements(info.actions, numbered=style == "include"):
        attrs = f"Action={quoteattr(action['name'])} {anchor}"
        condition = action.get("condition")
        if condition:
            lines.append(f"{indent}    <Custom {attrs}>{escape(condition)}</Custom>")
        else:
            lines.append(f"{indent}    <Custom {attrs}/>")
    lines.append(f"{indent}</InstallExecuteSequence>")
    if style == "include":
        lines.append("</Include>")
    else:
        lines += ["    </Fragment>", "</Wix>"]
    return "\n".join(lines) + "\n"


def _custom_action(action: dict[str, Any], key: str) -> str:
    attrs = [
        f"Id={quoteattr(action['name'])}",
        f"BinaryKey={quoteattr(key)}",
        f"DllEntry={quoteattr(action['name'])}",
        f"Execute={quoteattr(action['execute'])}",  # msica's names are WiX's
        f'Impersonate="{"yes" if action["impersonate"] else "no"}"',
        f'Return="{_return_attribute(action)}"',
    ]
    if action["hide_target"]:
        attrs.append('HideTarget="yes"')
    return "<CustomAction " + " ".join(attrs) + "/>"


def _setter_of(action: dict[str, Any]) -> dict[str, Any]:
    """The immediate action msica adds to fill ``action``'s CustomActionData."""
    return {
        "name": action["data_setter"], "execute": "immediate", "impersonate": True,
        "check_return": True, "hide_target": False, "condition": action.get("condition"),
    }


def _return_attribute(action: dict[str, Any]) -> str:
    if action.get("asynchronous"):
        return "asyncWait" if action["check_return"] else "asyncNoWait"
    return "check" if action["check_return"] else "ignore"


def _placements(
    actions: Sequence[dict[str, Any]], *, numbered: bool
) -> list[tuple[dict[str, Any], str]]:
    """Each action with its placement attribute, chaining unplaced ones in order.

    ``numbered``: a ``Sequence`` number where the anchor's number is known (a
    standard action, or an action placed before it here), else After/Before.
    """
    placed = []
    previous: dict[str, str] = {}  # "immediate" or "script" -> last action name
    known = dict(STANDARD_SEQUENCE)
    used: set[int] = set()
    for action in actions:
        lane = "immediate" if action["execute"] == "immediate" else "script"
        if action.get("before"):
            relation, anchor = "Before", action["before"]
        else:
            default = _DEFAULT_ANCHOR["immediate" if lane == "immediate" else "deferred"]
            relation, anchor = "After", action.get("after") or previous.get(lane, default)
        previous[lane] = action["name"]
        setter = _setter_of(action) if action.get("data_setter") else None
        if setter is not None and relation == "After":
            # The setter takes the action's place; the action follows it.
            placed.append((setter, _place(setter, relation, anchor, known, used, numbered)))
            relation, anchor = "After", setter["name"]
        placed.append((action, _place(action, relation, anchor, known, used, numbered)))
        if setter is not None and relation == "Before":
            placed.insert(-1, (setter, _place(setter, "Before", action["name"], known, used,
                                               numbered)))
    return placed


def _place(action: dict[str, Any], relation: str, anchor: str, known: dict[str, int],
           used: set[int], numbered: bool) -> str:
    """The placement attribute of one action, recording its number when it gets one."""
    if numbered and anchor in known:
        step = 1 if relation == "After" else -1
        number = known[anchor] + step
        while number in used or number in STANDARD_SEQUENCE.values():
            number += step
        used.add(number)
        known[action["name"]] = number
        return f'Sequence="{number}"'
    return f"{relation}={quoteattr(anchor)}"


def write(dll: Path, output: Path, *, style: str = "include", source_file: str | None = None,
          binary: str | None = None) -> Path:
    """Write the WiX source for ``dll`` to ``output``; SourceFile is relative to it by default."""
    info = read_dll(dll)
    if source_file is None:
        source_file = os.path.relpath(dll.resolve(), output.resolve().parent)
    output.write_text(render(info, source_file=source_file, style=style, binary=binary),
                      encoding="utf-8")
    return output
