"""``msica inspect``: every custom action of an .msi, its Type in words, where it runs.

The package is read with :mod:`msica.author.msifile` (no msi.dll or libmsi).
For each row of the CustomAction table: the basic type (what Source and Target
mean), the scheduling, execution context, return handling and flags decoded
from Type and ExtendedType, every sequence table that runs it (number and
condition) and every dialog control that runs it through ``DoAction``. A DLL
stored in the Binary table is opened: when it is an msica DLL, its Python
version, architecture and actions come from the ``msica.json`` manifest of its
payload.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from msica.author import platforms
from msica.author.msifile import MsiFile, Row, read_with
from msica.build import builder, payload
from msica.errors import BuildError

SEQUENCE_TABLES = (
    "InstallUISequence",
    "InstallExecuteSequence",
    "AdminUISequence",
    "AdminExecuteSequence",
    "AdvtUISequence",
    "AdvtExecuteSequence",
)

# CustomAction.Type bits (msidbCustomActionType*).
BASIC_MASK = 0x003F
CONTINUE = 0x0040
ASYNC = 0x0080
FIRST_SEQUENCE = 0x0100  # with IN_SCRIPT: rollback
ONCE_PER_PROCESS = 0x0200  # with IN_SCRIPT: commit
CLIENT_REPEAT = 0x0300
IN_SCRIPT = 0x0400
ROLLBACK = 0x0100
COMMIT = 0x0200
NO_IMPERSONATE = 0x0800
SCRIPT_64BIT = 0x1000
HIDE_TARGET = 0x2000
TS_AWARE = 0x4000
PATCH_UNINSTALL = 0x8000  # in ExtendedType

KNOWN_BITS = 0x7FFF


@dataclass(frozen=True)
class BasicType:
    """One of the basic custom action types: what it runs and what Source/Target hold."""

    number: int
    what: str
    source: str
    target: str


BASIC_TYPES = {
    t.number: t
    for t in (
        BasicType(1, "DLL stored in the Binary table", "Binary table key", "DLL entry point"),
        BasicType(2, "EXE stored in the Binary table", "Binary table key", "command line"),
        BasicType(5, "JScript stored in the Binary table", "Binary table key",
                  "JScript function to call (optional)"),
        BasicType(6, "VBScript stored in the Binary table", "Binary table key",
                  "VBScript function to call (optional)"),
        BasicType(7, "nested install of a package stored in a substorage",
                  "substorage name", "property settings"),
        BasicType(17, "DLL installed with the product", "File table key", "DLL entry point"),
        BasicType(18, "EXE installed with the product", "File table key", "command line"),
        BasicType(19, "displays an error and fails the install", "(none)",
                  "formatted error text, or an Error table number"),
        BasicType(21, "JScript file installed with the product", "File table key",
                  "JScript function to call (optional)"),
        BasicType(22, "VBScript file installed with the product", "File table key",
                  "VBScript function to call (optional)"),
        BasicType(23, "nested install of a package in the source tree",
                  "path of the .msi relative to the source root", "property settings"),
        BasicType(34, "EXE run in a directory", "Directory table key (working directory)",
                  "path of the EXE and command line"),
        BasicType(35, "sets a directory", "Directory table key", "formatted path"),
        BasicType(37, "JScript text", "(none)", "JScript code"),
        BasicType(38, "VBScript text", "(none)", "VBScript code"),
        BasicType(39, "nested install of an advertised product", "product code",
                  "property settings"),
        BasicType(50, "EXE named by a property", "property holding the EXE's path",
                  "command line"),
        BasicType(51, "sets a property", "property name", "formatted value"),
        BasicType(53, "JScript text stored in a property", "property holding the code",
                  "JScript function to call (optional)"),
        BasicType(54, "VBScript text stored in a property", "property holding the code",
                  "VBScript function to call (optional)"),
    )
}
DLL_FROM_BINARY = 1
DLL_INSTALLED = 17
SCRIPT_BASES = (5, 6)  # low 3 bits of JScript and VBScript types


@dataclass(frozen=True)
class DecodedType:
    """A CustomAction Type (and ExtendedType) in words."""

    number: int
    extended: int | None
    basic: int
    kind: str
    source_means: str
    target_means: str
    execution: str  # immediate, deferred, rollback, commit
    scheduling: str  # always, first-sequence, once-per-process, client-repeat
    impersonate: bool
    return_handling: str  # check, ignore, async-wait, async-no-wait
    flags: tuple[str, ...]
    valid: bool
    problems: tuple[str, ...]


def decode_type(number: int, extended: int | None = None) -> DecodedType:
    """``number`` (CustomAction.Type) and ``extended`` (ExtendedType) in words."""
    problems: list[str] = []
    basic = number & BASIC_MASK
    info = BASIC_TYPES.get(basic)
    if info is None:
        problems.append(f"{basic} is not a basic custom action type")
    in_script = bool(number & IN_SCRIPT)
    if in_script:
        phase = number & CLIENT_REPEAT
        execution = {0: "deferred", ROLLBACK: "rollback", COMMIT: "commit"}.get(phase, "")
        if not execution:
            problems.append("rollback (0x100) and commit (0x200) together")
            execution = "invalid"
        scheduling = "always"
    else:
        execution = "immediate"
        scheduling = {
            0: "always",
            FIRST_SEQUENCE: "first-sequence",
            ONCE_PER_PROCESS: "once-per-process",
            CLIENT_REPEAT: "client-repeat",
        }[number & CLIENT_REPEAT]
    return_handling = {
        0: "check",
        CONTINUE: "ignore",
        ASYNC: "async-wait",
        CONTINUE | ASYNC: "async-no-wait",
    }[number & (CONTINUE | ASYNC)]
    flags = []
    if number & NO_IMPERSONATE:
        flags.append("no-impersonate")
    if number & SCRIPT_64BIT:
        flags.append("64-bit-script")
    if number & HIDE_TARGET:
        flags.append("hide-target")
    if number & TS_AWARE:
        flags.append("ts-aware")
    if extended and extended & PATCH_UNINSTALL:
        flags.append("patch-uninstall")
    if number < 0 or number & ~KNOWN_BITS:
        problems.append(f"unknown bits 0x{number & ~KNOWN_BITS & 0xFFFFFFFF:x}")
    return DecodedType(
        number=number,
        extended=extended,
        basic=basic,
        kind=info.what if info else "unknown type",
        source_means=info.source if info else "?",
        target_means=info.target if info else "?",
        execution=execution,
        scheduling=scheduling,
        impersonate=not (in_script and number & NO_IMPERSONATE),
        return_handling=return_handling,
        flags=tuple(flags),
        valid=not problems,
        problems=tuple(problems),
    )


def describe_type(decoded: DecodedType) -> str:
    """One line: how the action runs, e.g. ``deferred, system context (no impersonation)``."""
    if decoded.execution == "immediate":
        parts = ["immediate"]
        if decoded.scheduling != "always":
            parts.append(f"scheduling {decoded.scheduling}")
    else:
        parts = [decoded.execution]
        parts.append("impersonated" if decoded.impersonate else
                     "system context (no impersonation)")
    parts.append({
        "check": "return checked (failure stops the install)",
        "ignore": "return ignored",
        "async-wait": "asynchronous, waited for at the end of the sequence",
        "async-no-wait": "asynchronous, not waited for",
    }[decoded.return_handling])
    return ", ".join(parts)


@dataclass(frozen=True)
class Placement:
    """Where an action runs: a sequence table row, or a control's DoAction event."""

    table: str
    sequence: int | None
    condition: str | None
    control: str | None = None


@dataclass(frozen=True)
class DllInfo:
    """What a Binary row's DLL is: an msica DLL (python, arch, actions) or not."""

    binary: str
    size: int
    msica: bool
    python: str | None = None
    arch: str | None = None
    actions: tuple[str, ...] = ()
    problem: str | None = None
    entries: tuple[tuple[str, int], ...] = ()  # every export an action may name, and its Type
    warning: str | None = None  # why it cannot load on some Windows the package installs on

    def declared_type(self, entry: str | None) -> int | None:
        """The Type the DLL's manifest gives the action exported as ``entry``."""
        return next((number for name, number in self.entries if name == entry), None)


@dataclass(frozen=True)
class CustomAction:
    """One CustomAction row, decoded."""

    name: str
    type: DecodedType
    source: str | None
    target: str | None
    placements: tuple[Placement, ...]
    dll: DllInfo | None = None
    in_dll: bool | None = None  # the entry point is one of the msica DLL's actions
    declared_type: int | None = None  # the Type the msica DLL's manifest gives it


@dataclass(frozen=True)
class Report:
    """What ``msica inspect`` says about one package."""

    path: str
    has_custom_action_table: bool
    actions: tuple[CustomAction, ...]
    binaries: tuple[DllInfo, ...] = field(default=())


def read_dll(binary: str, data: bytes) -> DllInfo:
    """What the DLL bytes of Binary row ``binary`` are."""
    try:
        trailer = payload.read_trailer(data)
    except BuildError:
        return DllInfo(binary, len(data), msica=False)
    try:
        files = payload.read_entries(data, trailer)
        document = json.loads(files[builder.MANIFEST])
        actions = tuple(str(a["name"]) for a in document["actions"])
        entries = []
        for action in document["actions"]:
            entries.append((str(action["name"]), int(action["type"])))
            if action.get("data_setter"):  # the immediate action that fills its data
                entries.append((str(action["data_setter"]), DLL_FROM_BINARY))
        return DllInfo(
            binary, len(data), msica=True, python=str(document["python"]),
            arch=str(document["arch"]), actions=actions, entries=tuple(entries),
        )
    except BuildError as error:
        problem = str(error)
    except KeyError:
        problem = f"its payload has no {builder.MANIFEST}: rebuild it with `msica build`"
    except (ValueError, TypeError):
        problem = f"its {builder.MANIFEST} is damaged: rebuild it with `msica build`"
    python = "{}.{}".format(*trailer.python)
    return DllInfo(binary, len(data), msica=True, python=python, problem=problem)


def _placements(msi: MsiFile) -> dict[str, list[Placement]]:
    found: dict[str, list[Placement]] = {}
    for table in SEQUENCE_TABLES:
        if not msi.has_table(table):
            continue
        for row in msi.rows(table):
            action = row.get("Action")
            if isinstance(action, str):
                sequence = row.get("Sequence")
                condition = row.get("Condition")
                found.setdefault(action, []).append(Placement(
                    table,
                    sequence if isinstance(sequence, int) else None,
                    condition if isinstance(condition, str) else None,
                ))
    if msi.has_table("ControlEvent"):
        for row in msi.rows("ControlEvent"):
            if row.get("Event") == "DoAction" and isinstance(row.get("Argument"), str):
                condition = row.get("Condition")
                found.setdefault(str(row["Argument"]), []).append(Placement(
                    "ControlEvent", None,
                    condition if isinstance(condition, str) else None,
                    control=f"{row.get('Dialog_')}/{row.get('Control_')}",
                ))
    return found


def _text(row: Row, column: str) -> str | None:
    value = row.get(column)
    return value if isinstance(value, str) else None


def inspect(source: Path | MsiFile) -> Report:
    """Decode the custom actions of the package at ``source`` (a path, or an open MsiFile)."""
    return read_with(source, _inspect)


def _inspect(msi: MsiFile, path: str) -> Report:
    if not msi.has_table("CustomAction"):
        return Report(path, False, ())
    placements = _placements(msi)
    targets = _targets(msi)
    dlls: dict[str, DllInfo] = {}
    actions = []
    for row in msi.rows("CustomAction"):
        name = _text(row, "Action") or ""
        number = row.get("Type")
        extended = row.get("ExtendedType")
        decoded = decode_type(
            number if isinstance(number, int) else 0,
            extended if isinstance(extended, int) else None,
        )
        source, target = _text(row, "Source"), _text(row, "Target")
        dll = None
        in_dll = None
        declared = None
        if decoded.basic == DLL_FROM_BINARY and source is not None:
            if source not in dlls and _binary_exists(msi, source):
                dlls[source] = _with_warning(read_dll(source, msi.stream("Binary", source)),
                                             targets)
            dll = dlls.get(source)
            if dll is not None and dll.msica and dll.entries:
                declared = dll.declared_type(target)
                in_dll = declared is not None
        actions.append(CustomAction(
            name, decoded, source, target, tuple(placements.get(name, ())), dll, in_dll,
            declared,
        ))
    return Report(path, True, tuple(actions), tuple(dlls.values()))


def _targets(msi: MsiFile) -> tuple[str | None, list[str]]:
    """The summary's Template and the launch conditions: where the package installs."""
    template = msi.summary.get("template")
    conditions = []
    if msi.has_table("LaunchCondition"):
        conditions = [text for row in msi.rows("LaunchCondition")
                      if (text := _text(row, "Condition")) is not None]
    return (template if isinstance(template, str) else None), conditions


def _with_warning(info: DllInfo, targets: tuple[str | None, list[str]]) -> DllInfo:
    if info.arch is None:
        return info
    return replace(info, warning=platforms.arch_warning(targets[0], info.arch, targets[1]))


def _binary_exists(msi: MsiFile, key: str) -> bool:
    if not msi.has_table("Binary"):
        return False
    return any(row.get("Name") == key and row.get("Data") for row in msi.rows("Binary"))


def to_json(report: Report) -> dict[str, Any]:
    """The report as the stable JSON document of ``msica inspect --json``."""
    def action(item: CustomAction) -> dict[str, Any]:
        decoded = asdict(item.type)
        decoded.pop("number")
        decoded.pop("extended")
        decoded["flags"] = list(decoded["flags"])
        decoded["problems"] = list(decoded["problems"])
        return {
            "name": item.name,
            "type": item.type.number,
            "extended_type": item.type.extended,
            "source": item.source,
            "target": item.target,
            "decoded": decoded,
            "sequenced": [asdict(p) for p in item.placements],
            "binary": item.source if item.dll is not None else None,
            "entry_in_msica_dll": item.in_dll,
            "declared_type": item.declared_type,
        }

    def binary(info: DllInfo) -> dict[str, Any]:
        document = asdict(info)
        document["actions"] = list(info.actions)
        document.pop("entries")
        return document

    return {
        "msi": report.path,
        "custom_action_table": report.has_custom_action_table,
        "custom_actions": [action(item) for item in report.actions],
        "binaries": [binary(info) for info in report.binaries],
    }


def render(report: Report) -> str:
    """The report as text for people."""
    lines: list[str] = []
    count = len(report.actions)
    if not report.has_custom_action_table:
        return f"{report.path}: no custom actions (the package has no CustomAction table)\n"
    plural = "" if count == 1 else "s"
    lines.append(f"{report.path}: {count} custom action{plural}")
    for item in report.actions:
        decoded = item.type
        lines.append("")
        number = f"type {decoded.number} (0x{decoded.number & 0xFFFF:04x})"
        if decoded.extended:
            number += f", extended type 0x{decoded.extended:x}"
        lines.append(f"{item.name}: {number}")
        lines.append(f"  what:      {decoded.kind} (basic type {decoded.basic})")
        lines.append(f"  source:    {_show(item.source)}  [{decoded.source_means}]")
        hidden = "hide-target" in decoded.flags
        lines.append(f"  target:    {_show(item.target)}  [{decoded.target_means}]"
                     + ("  (hidden from the log)" if hidden else ""))
        lines.append(f"  runs:      {describe_type(decoded)}")
        if decoded.flags:
            lines.append(f"  flags:     {', '.join(decoded.flags)}")
        if decoded.problems:
            lines.append(f"  INVALID:   {'; '.join(decoded.problems)}")
        lines.extend(_placement_lines(item.placements))
        if item.dll is not None:
            lines.append(f"  dll:       {_dll_line(item.dll)}")
            if item.dll.warning:
                lines.append(f"  WARNING:   an {item.dll.arch} DLL: {item.dll.warning}")
            if item.in_dll is False:
                lines.append(f"             entry point {item.target!r} is not one of its actions")
            declared = item.declared_type
            if declared is not None and declared != decoded.number:
                lines.append(
                    f"  MISMATCH:  the DLL declares type {declared} "
                    f"({describe_type(decode_type(declared))}); whatever wrote this "
                    "row changed it"
                )
        elif decoded.basic == DLL_FROM_BINARY:
            lines.append(f"  dll:       Binary row {item.source!r} is missing or empty")
        elif decoded.basic == DLL_INSTALLED:
            lines.append(f"  dll:       File row {item.source!r}, installed with the product "
                         "(inside the package's media; not opened)")
    return "\n".join(lines) + "\n"


def _placement_lines(placements: Iterable[Placement]) -> list[str]:
    items = list(placements)
    if not items:
        return ["  sequenced: nowhere (only a DoAction or another action could run it)"]
    lines = []
    for index, place in enumerate(items):
        label = "  sequenced: " if index == 0 else "             "
        if place.control is not None:
            where = f"DoAction of control {place.control}"
        else:
            where = f"{place.table} {place.sequence if place.sequence is not None else '-'}"
        condition = f" if {place.condition}" if place.condition else " (always)"
        lines.append(label + where + condition)
    return lines


def _dll_line(info: DllInfo) -> str:
    size = f"{info.size / 1048576:.1f} MiB" if info.size >= 1048576 else f"{info.size} bytes"
    if not info.msica:
        return f"Binary {info.binary!r} ({size}), not an msica DLL"
    if info.problem:
        return f"Binary {info.binary!r} ({size}), msica DLL, damaged: {info.problem}"
    return (f"Binary {info.binary!r} ({size}), msica DLL, Python {info.python} {info.arch}, "
            f"actions: {', '.join(info.actions) or '(none)'}")


def _show(value: str | None) -> str:
    if value is None:
        return "(null)"
    text = value if len(value) <= 120 else value[:117] + "..."
    return repr(text) if any(c in text for c in "\r\n\t") else text
