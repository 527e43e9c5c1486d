"""``msica wxs``: the WiX source that puts an msica DLL and its actions into an installer.

WiX v3 (``--wix 3``, the default), in two shapes with the same elements:

- ``include`` (default): an ``<Include>`` file for ``<?include x.wxi ?>`` inside
  ``<Product>``. wixl (msitools) compiles it; it refuses ``<Binary>`` inside a
  ``<Fragment>``, measured with wixl 0.101.
- ``fragment``: a ``<Fragment>`` for WiX v3's candle/light, pulled in by a
  ``<CustomActionRef>`` in the product.

WiX v4 (``--wix 4``): a ``<Fragment>`` in the v4 namespace, with v4's names:
``BinaryRef``, the condition as an attribute of ``<Custom>``, and ``<SetProperty>``
for a type 51 setter.

Actions without ``after``/``before`` are chained: the first immediate one after
CostFinalize, the first deferred one after InstallInitialize, each later one
after the previous one, so they run in source order. An action with ``uses``
gets an immediate action of the same DLL that encodes its CustomActionData; one
with ``data`` gets a type 51 action that formats it. Either setter is placed
where the action would be, and the action right after it.

In the include, actions placed relative to a standard action (or to one
another) get explicit ``Sequence`` numbers from the standard actions' suggested
numbers: wixl 0.101 resolves chains of ``After`` unreliably (measured: an
action ``After="CostFinalize"`` landed after InstallFinalize). The fragments
keep ``After``/``Before`` for WiX, which resolves them itself.

wixl 0.101 also drops what it does not know (measured): of Execute it knows
only immediate and deferred (rollback, commit, firstSequence, oncePerProcess and
secondSequence compile as plain immediate actions), and it ignores HideTarget,
TerminalServerAware and PatchUninstall. The include says so in a comment for
each action concerned, with the ``msibuild`` query that puts msica's Type back
(:func:`wixl_type_fixes`); WiX's own compilers keep them.
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

from msica.actions import (
    TYPE_ASYNC,
    TYPE_CONTINUE,
    TYPE_HIDE_TARGET,
    TYPE_IN_SCRIPT,
    TYPE_NO_IMPERSONATE,
    TYPE_TEXT_DATA,
)
from msica.build import builder, payload
from msica.errors import AuthorError, BuildError

WIX3_NAMESPACE = "http://schemas.microsoft.com/wix/2006/wi"
WIX4_NAMESPACE = "http://wixtoolset.org/schemas/v4/wxs"
STYLES = ("include", "fragment")
WIX_VERSIONS = (3, 4)

_DEFAULT_ANCHOR = {"immediate": "CostFinalize", "deferred": "InstallInitialize"}

# msica's execute= values in WiX's Execute spelling (the same in v3 and v4).
WIX_EXECUTE = {
    "immediate": "immediate",
    "deferred": "deferred",
    "rollback": "rollback",
    "commit": "commit",
    "first_sequence": "firstSequence",
    "once_per_process": "oncePerProcess",
    "client_repeat": "secondSequence",
}
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
    """A Binary table key for the DLL: an identifier made from its file name (at most 55
    characters, WiX's limit for Binary/@Id)."""
    stem = re.sub(r"[^A-Za-z0-9_.]", "_", dll.name)
    return ("msica_" + stem)[:55]


def render(
    info: DllInfo,
    *,
    source_file: str,
    style: str | None = None,
    binary: str | None = None,
    wix: int = 3,
) -> str:
    """The WiX source text for the DLL described by ``info``.

    ``wix`` is 3 or 4; ``style`` (WiX v3 only) is ``include`` (the default) or
    ``fragment``. WiX v4 output is always a fragment.
    """
    if wix not in WIX_VERSIONS:
        raise AuthorError(f"--wix {wix}: write 3 or 4")
    if wix == 4:
        if style not in (None, "fragment"):
            raise AuthorError(
                f"style {style!r} is for WiX v3; WiX v4 output is a <Fragment> "
                "(drop --style, or use --wix 3)"
            )
        return _render_v4(info, source_file=source_file, key=binary or binary_id(info.path))
    style = style or "include"
    if style not in STYLES:
        raise AuthorError(f"style {style!r} is not one of {', '.join(STYLES)}")
    return _render_v3(info, source_file=source_file, style=style,
                      key=binary or binary_id(info.path))


def _header(info: DllInfo) -> list[str]:
    return [
        '<?xml version="1.0" encoding="utf-8"?>',
        f"<!-- Written by `msica wxs` from {escape(info.path.name)}: do not edit, rebuild. -->",
    ]


def _render_v3(info: DllInfo, *, source_file: str, style: str, key: str) -> str:
    indent = "    "
    lines = _header(info)
    if style == "include":
        lines.append(f'<Include xmlns="{WIX3_NAMESPACE}">')
        for name, number, extended in wixl_type_fixes(info):
            lines.append(
                f"{indent}<!-- wixl 0.101 drops some of {name}'s options; after wixl, run: "
                f"msibuild app.msi -q \"{_fix_query(name, number, extended)}\" -->"
            )
    else:
        lines += [f'<Wix xmlns="{WIX3_NAMESPACE}">', f"{indent}<Fragment>"]
        indent += "    "
    lines.append(f"{indent}<Binary Id={quoteattr(key)} SourceFile={quoteattr(source_file)}/>")
    for action in info.actions:
        setter = _setter_of(action)
        if setter is not None:
            lines.append(indent + _custom_action(setter, key, wix=3))
        lines.append(indent + _custom_action(action, key, wix=3))
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


def _render_v4(info: DllInfo, *, source_file: str, key: str) -> str:
    indent = "        "
    lines = _header(info)
    lines += [f'<Wix xmlns="{WIX4_NAMESPACE}">', "    <Fragment>"]
    lines.append(f"{indent}<Binary Id={quoteattr(key)} SourceFile={quoteattr(source_file)}/>")
    placements = _placements(info.actions, numbered=False)
    set_properties = {}
    for action in info.actions:
        setter = _setter_of(action)
        if setter is not None and setter["kind"] == "text" and not setter["hide_target"]:
            set_properties[setter["name"]] = setter  # written as <SetProperty> below
        elif setter is not None:
            lines.append(indent + _custom_action(setter, key, wix=4))
        lines.append(indent + _custom_action(action, key, wix=4))
    for action, anchor in placements:
        setter = set_properties.get(action["name"])
        if setter is None:
            continue
        attrs = [
            f"Id={quoteattr(setter['property'])}",
            f"Action={quoteattr(setter['name'])}",
            f"Value={quoteattr(setter['value'])}",
            anchor,
            'Sequence="execute"',
        ]
        if setter.get("condition"):
            attrs.append(f"Condition={quoteattr(setter['condition'])}")
        lines.append(f"{indent}<SetProperty {' '.join(attrs)}/>")
    lines.append(f"{indent}<InstallExecuteSequence>")
    for action, anchor in placements:
        if action["name"] in set_properties:
            continue
        custom = f"Action={quoteattr(action['name'])} {anchor}"
        if action.get("condition"):
            custom += f" Condition={quoteattr(action['condition'])}"
        lines.append(f"{indent}    <Custom {custom}/>")
    lines += [f"{indent}</InstallExecuteSequence>", "    </Fragment>", "</Wix>"]
    return "\n".join(lines) + "\n"


def _yes(value: object) -> str:
    return '"yes"' if value else '"no"'


def _custom_action(action: dict[str, Any], key: str, *, wix: int) -> str:
    """A ``<CustomAction>``: a DLL entry of the Binary, or a type 51 setter."""
    attrs = [f"Id={quoteattr(action['name'])}"]
    if action.get("kind") == "text":  # type 51: set a property to formatted text
        attrs += [
            f"Property={quoteattr(action['property'])}",
            f"Value={quoteattr(action['value'])}",
            'Execute="immediate"',
            'Impersonate="yes"',  # wixl's default is "no", which would add 0x800
            'Return="check"',
        ]
        if action["hide_target"]:
            attrs.append('HideTarget="yes"')
        return "<CustomAction " + " ".join(attrs) + "/>"
    attrs += [
        f"{'BinaryKey' if wix == 3 else 'BinaryRef'}={quoteattr(key)}",
        f"DllEntry={quoteattr(action['name'])}",
        f"Execute={quoteattr(WIX_EXECUTE[action['execute']])}",
        f"Impersonate={_yes(action['impersonate'])}",
        f'Return="{_return_attribute(action)}"',
    ]
    if action.get("hide_target"):
        attrs.append('HideTarget="yes"')
    if action.get("ts_aware"):
        attrs.append('TerminalServerAware="yes"')
    if action.get("patch_uninstall"):
        attrs.append('PatchUninstall="yes"')
    return "<CustomAction " + " ".join(attrs) + "/>"


def _setter_of(action: dict[str, Any]) -> dict[str, Any] | None:
    """The immediate action msica adds to fill ``action``'s CustomActionData, if any:
    a type 51 setter of formatted text for ``data``, a DLL action for ``uses``."""
    name = action.get("data_setter")
    if not name:
        return None
    common = {
        "name": name, "execute": "immediate", "impersonate": True, "check_return": True,
        "condition": action.get("condition"),
    }
    if action.get("data") is not None:
        return {**common, "kind": "text", "property": action["name"], "value": action["data"],
                "hide_target": bool(action.get("hide_target"))}
    return {**common, "kind": "dll", "hide_target": False}


def _return_attribute(action: dict[str, Any]) -> str:
    if action.get("asynchronous"):
        return "asyncWait" if action["check_return"] else "asyncNoWait"
    return "check" if action["check_return"] else "ignore"


def setter_type(action: dict[str, Any]) -> int | None:
    """The Type of the setter msica adds for ``action`` (51 for ``data``, 1 for ``uses``)."""
    setter = _setter_of(action)
    if setter is None:
        return None
    if setter["kind"] == "text":
        return TYPE_TEXT_DATA | (TYPE_HIDE_TARGET if setter["hide_target"] else 0)
    return 1


def wixl_type_fixes(info: DllInfo) -> list[tuple[str, int, int]]:
    """(action, Type, ExtendedType) for each action whose Type wixl 0.101 gets wrong.

    Measured: wixl knows only the Execute values immediate and deferred (rollback,
    commit, firstSequence, oncePerProcess and secondSequence compile as immediate),
    and ignores HideTarget, TerminalServerAware and PatchUninstall. It does honour
    Impersonate and Return.
    """
    fixes = []
    for action in info.actions:
        if "type" not in action:  # a hand-made manifest: nothing to compare with
            continue
        number = int(action["type"])
        extended = int(action.get("extended_type", 0))
        wixl = 1 | (TYPE_IN_SCRIPT if action["execute"] == "deferred" else 0)
        wixl |= number & (TYPE_NO_IMPERSONATE | TYPE_CONTINUE | TYPE_ASYNC)
        if wixl != number or extended:
            fixes.append((action["name"], number, extended))
        setter = setter_type(action)
        if setter is not None and setter & TYPE_HIDE_TARGET:
            fixes.append((action["data_setter"], setter, 0))
    return fixes


def _fix_query(name: str, number: int, extended: int) -> str:
    columns = f"`Type`={number}" + (f", `ExtendedType`={extended}" if extended else "")
    return f"UPDATE `CustomAction` SET {columns} WHERE `Action`='{name}'"


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
        lane = "script" if action["execute"] in ("deferred", "rollback", "commit") else "immediate"
        if action.get("before"):
            relation, anchor = "Before", action["before"]
        else:
            default = _DEFAULT_ANCHOR["immediate" if lane == "immediate" else "deferred"]
            relation, anchor = "After", action.get("after") or previous.get(lane, default)
        previous[lane] = action["name"]
        setter = _setter_of(action)
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


def write(dll: Path, output: Path, *, style: str | None = None,
          source_file: str | None = None, binary: str | None = None, wix: int = 3) -> Path:
    """Write the WiX source for ``dll`` to ``output``; SourceFile is relative to it by default."""
    info = read_dll(dll)
    if source_file is None:
        source_file = os.path.relpath(dll.resolve(), output.resolve().parent)
    output.write_text(
        render(info, source_file=source_file, style=style, binary=binary, wix=wix),
        encoding="utf-8",
    )
    return output
