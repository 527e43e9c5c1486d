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

_EXECUTE = {
    "immediate": "immediate",
    "deferred": "deferred",
    "rollback": "rollback",
    "commit": "commit",
}
_DEFAULT_ANCHOR = {"immediate": "CostFinalize", "deferred": "InstallInitialize"}


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
        lines.append(indent + _custom_action(action, key))
    lines.append(f"{indent}<InstallExecuteSequence>")
    for action, anchor in _placements(info.actions):
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
        f"Execute={quoteattr(_EXECUTE[action['execute']])}",
        f'Impersonate="{"yes" if action["impersonate"] else "no"}"',
        f'Return="{"check" if action["check_return"] else "ignore"}"',
    ]
    if action["hide_target"]:
        attrs.append('HideTarget="yes"')
    return "<CustomAction " + " ".join(attrs) + "/>"


def _placements(actions: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Each action with its Before/After attribute, chaining unplaced ones in order."""
    placed = []
    previous: dict[str, str] = {}  # "immediate" or "script" -> last action name
    for action in actions:
        lane = "immediate" if action["execute"] == "immediate" else "script"
        if action.get("before"):
            anchor = f"Before={quoteattr(action['before'])}"
        elif action.get("after"):
            anchor = f"After={quoteattr(action['after'])}"
        else:
            default = _DEFAULT_ANCHOR["immediate" if lane == "immediate" else "deferred"]
            anchor = f"After={quoteattr(previous.get(lane, default))}"
        previous[lane] = action["name"]
        placed.append((action, anchor))
    return placed


def write(dll: Path, output: Path, *, style: str = "include", source_file: str | None = None,
          binary: str | None = None) -> Path:
    """Write the WiX source for ``dll`` to ``output``; SourceFile is relative to it by default."""
    info = read_dll(dll)
    if source_file is None:
        source_file = os.path.relpath(dll.resolve(), output.resolve().parent)
    output.write_text(render(info, source_file=source_file, style=style, binary=binary),
                      encoding="utf-8")
    return output
