"""``msica validate``: the custom-action checks of the ICEs, without Windows.

Windows SDK's validation (Orca, msival2, WiX's light/wix.exe) runs ICE
modules (Internal Consistency Evaluators) inside msi.dll. This module checks
the parts of nine ICEs that concern custom actions, reading the package with
:mod:`msica.author.msifile`; messages name the row and say what to change.

- ICE12: type 35 actions (set a directory) name a Directory row and run after
  CostFinalize; type 51 actions that set a directory run before it; a sequence
  holding either has CostFinalize. Errors.
- ICE27 (its custom-action part): every action in a sequence table is a
  standard action, a CustomAction row or a Dialog; in-script actions are not
  in UI sequences, which have no script. Errors.
- ICE63: RemoveExistingProducts is where an upgrade can work (after
  InstallValidate, and with no custom action between InstallInitialize or
  InstallExecute and it). Errors for its place, warnings for actions between.
- ICE68: a valid Type (error); no-impersonate without in-script is ignored by
  the engine (warning).
- ICE72: only types 19, 35 and 51 in AdvtExecuteSequence. Errors.
- ICE77: in-script actions between InstallInitialize and InstallFinalize of
  InstallExecuteSequence and AdminExecuteSequence, which must have both. Errors.
- ICE80: a 64-bit script action needs Intel64, x64 or Arm64 in the summary's
  Template. Errors.
- ICE82 (its custom-action part): a custom action shares its positive
  sequence number with another action of the same table, so the engine may
  run the two in either order (two includes numbered on their own, say).
  Warnings.
- ICE93: a custom action named like a standard action. Warnings.

Exit status of the command: 1 when there is an error, else 0 (warnings do not
fail unless ``--strict``); an unreadable package is an
:class:`~msica.errors.MsiFileError` (7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from msica.author import platforms
from msica.author.inspect import (
    ASYNC,
    BASIC_TYPES,
    CLIENT_REPEAT,
    IN_SCRIPT,
    KNOWN_BITS,
    NO_IMPERSONATE,
    SCRIPT_64BIT,
    SEQUENCE_TABLES,
)
from msica.author.msifile import MsiFile, Row, read_with

ERROR = "error"
WARNING = "warning"

CHECKS = ("ICE12", "ICE27", "ICE63", "ICE68", "ICE72", "ICE77", "ICE80", "ICE82", "ICE93")

STANDARD_ACTIONS = frozenset("""
    ADMIN ADVERTISE AllocateRegistrySpace AppSearch BindImage CCPSearch CostFinalize
    CostInitialize CreateFolders CreateShortcuts DeleteServices DisableRollback
    DuplicateFiles ExecuteAction FileCost FindRelatedProducts ForceReboot INSTALL
    InstallAdminPackage InstallExecute InstallExecuteAgain InstallFiles InstallFinalize
    InstallInitialize InstallODBC InstallServices InstallSFPCatalogFile InstallValidate
    IsolateComponents LaunchConditions MigrateFeatureStates MoveFiles MsiConfigureServices
    MsiPublishAssemblies MsiUnpublishAssemblies PatchFiles ProcessComponents
    PublishComponents PublishFeatures PublishProduct RegisterClassInfo RegisterComPlus
    RegisterExtensionInfo RegisterFonts RegisterMIMEInfo RegisterProduct RegisterProgIdInfo
    RegisterTypeLibraries RegisterUser RemoveDuplicateFiles RemoveEnvironmentStrings
    RemoveExistingProducts RemoveFiles RemoveFolders RemoveIniValues RemoveODBC
    RemoveRegistryValues RemoveShortcuts ResolveSource RMCCPSearch ScheduleReboot
    SelfRegModules SelfUnregModules SEQUENCE SetODBCFolders StartServices StopServices
    UnpublishComponents UnpublishFeatures UnregisterClassInfo UnregisterComPlus
    UnregisterExtensionInfo UnregisterFonts UnregisterMIMEInfo UnregisterProgIdInfo
    UnregisterTypeLibraries ValidateProductID WriteEnvironmentStrings WriteIniValues
    WriteRegistryValues
""".split())  # noqa: SIM905 - a word list reads better than 80 quoted names

UI_SEQUENCES = ("InstallUISequence", "AdminUISequence", "AdvtUISequence")
SCRIPT_SEQUENCES = ("InstallExecuteSequence", "AdminExecuteSequence")
BUILT_IN_TYPES = (19, 35, 51)
TEMPLATE_64BIT = ("intel64", "x64", "arm64")


@dataclass(frozen=True)
class Finding:
    """One problem: which ICE, how bad, which row, and what to change."""

    ice: str
    level: str
    table: str
    row: str
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.ice}: {self.message}"


@dataclass(frozen=True)
class Result:
    """All findings for one package."""

    path: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == WARNING)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when there are errors (or, with ``strict``, warnings), else 0."""
        return 1 if self.errors or (strict and self.warnings) else 0


@dataclass(frozen=True)
class _Step:
    """One row of a sequence table."""

    action: str
    sequence: int | None
    condition: str | None


class _Package:
    """What the checks read, read once."""

    def __init__(self, msi: MsiFile) -> None:
        self.msi = msi
        self.actions: dict[str, Row] = {}
        if msi.has_table("CustomAction"):
            for row in msi.rows("CustomAction"):
                if isinstance(row.get("Action"), str):
                    self.actions[str(row["Action"])] = row
        self.sequences: dict[str, list[_Step]] = {}
        for table in SEQUENCE_TABLES:
            if msi.has_table(table):
                self.sequences[table] = [
                    _Step(str(row["Action"]), _int(row.get("Sequence")),
                          _str(row.get("Condition")))
                    for row in msi.rows(table)
                    if isinstance(row.get("Action"), str)
                ]
        self.directories = self._keys("Directory", "Directory")
        self.dialogs = self._keys("Dialog", "Dialog")

    def _keys(self, table: str, column: str) -> set[str]:
        if not self.msi.has_table(table):
            return set()
        return {str(row[column]) for row in self.msi.rows(table) if row.get(column) is not None}

    def type_of(self, action: str) -> int:
        value = self.actions[action].get("Type")
        return value if isinstance(value, int) else 0

    def source_of(self, action: str) -> str | None:
        return _str(self.actions[action].get("Source"))

    def position(self, table: str, action: str) -> int | None:
        for step in self.sequences.get(table, ()):
            if step.action == action:
                return step.sequence
        return None

    def custom_steps(self, table: str) -> list[_Step]:
        return [s for s in self.sequences.get(table, ()) if s.action in self.actions]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def validate(source: Path | MsiFile) -> Result:
    """Run every check on the package at ``source`` (a path, or an open MsiFile)."""
    return read_with(source, _validate)


def _validate(msi: MsiFile, path: str) -> Result:
    package = _Package(msi)
    summary = msi.summary
    findings: list[Finding] = []
    findings += _ice12(package)
    findings += _ice27(package)
    findings += _ice63(package)
    findings += _ice68(package)
    findings += _ice72(package)
    findings += _ice77(package)
    findings += _ice80(package, summary.get("template"))
    findings += _ice82(package)
    findings += _ice93(package)
    return Result(path, tuple(findings))


def _ice12(package: _Package) -> list[Finding]:
    found = []
    for name in package.actions:
        basic = package.type_of(name) & 0x3F
        source = package.source_of(name)
        if basic == 35 and source not in package.directories:
            found.append(Finding(
                "ICE12", ERROR, "CustomAction", name,
                f"CustomAction '{name}' (type 35) sets directory '{source}', which is not in "
                "the Directory table: add that Directory row or change the action's Source",
            ))
    for table, steps in package.sequences.items():
        costfinalize = package.position(table, "CostFinalize")
        for step in steps:
            if step.action not in package.actions or step.sequence is None:
                continue
            basic = package.type_of(step.action) & 0x3F
            sets_directory = basic == 51 and package.source_of(step.action) in package.directories
            if basic != 35 and not sets_directory:
                continue
            kind = "type 35" if basic == 35 else "type 51 setting a directory"
            if costfinalize is None:
                found.append(Finding(
                    "ICE12", ERROR, table, step.action,
                    f"{table} runs '{step.action}' ({kind}) but has no CostFinalize: add "
                    f"CostFinalize to {table}",
                ))
            elif basic == 35 and step.sequence <= costfinalize:
                found.append(Finding(
                    "ICE12", ERROR, table, step.action,
                    f"'{step.action}' ({kind}) is at {step.sequence} in {table}, before "
                    f"CostFinalize ({costfinalize}): give it a number above {costfinalize}",
                ))
            elif basic == 51 and step.sequence >= costfinalize:
                found.append(Finding(
                    "ICE12", ERROR, table, step.action,
                    f"'{step.action}' ({kind}) is at {step.sequence} in {table}, after "
                    f"CostFinalize ({costfinalize}): give it a number below {costfinalize}",
                ))
    return found


def _ice27(package: _Package) -> list[Finding]:
    found = []
    for table, steps in package.sequences.items():
        for step in steps:
            known = (step.action in STANDARD_ACTIONS or step.action in package.actions
                     or step.action in package.dialogs)
            if not known:
                found.append(Finding(
                    "ICE27", ERROR, table, step.action,
                    f"{table} runs '{step.action}', which is not a standard action, a "
                    "CustomAction row or a Dialog: add its CustomAction row or remove it "
                    f"from {table}",
                ))
            elif (table in UI_SEQUENCES and step.action in package.actions
                  and package.type_of(step.action) & IN_SCRIPT):
                found.append(Finding(
                    "ICE27", ERROR, table, step.action,
                    f"in-script (deferred, rollback or commit) action '{step.action}' is in "
                    f"{table}, which has no script: move it to InstallExecuteSequence "
                    "between InstallInitialize and InstallFinalize",
                ))
    return found


def _ice63(package: _Package) -> list[Finding]:
    table = "InstallExecuteSequence"
    rep = package.position(table, "RemoveExistingProducts")
    if rep is None:
        return []
    validate_at = package.position(table, "InstallValidate")
    initialize = package.position(table, "InstallInitialize")
    finalize = package.position(table, "InstallFinalize")
    if validate_at is not None and rep < validate_at:
        return [Finding(
            "ICE63", ERROR, table, "RemoveExistingProducts",
            f"RemoveExistingProducts is at {rep}, before InstallValidate ({validate_at}): "
            "move it between InstallValidate and InstallInitialize, right after "
            "InstallInitialize, before InstallFinalize after InstallExecute, or after "
            "InstallFinalize",
        )]
    if initialize is None or rep < initialize or (finalize is not None and rep > finalize):
        return []  # between InstallValidate and InstallInitialize, or after InstallFinalize
    anchors = [initialize]
    for name in ("InstallExecute", "InstallExecuteAgain"):
        at = package.position(table, name)
        if at is not None and initialize < at < rep:
            anchors.append(at)
    start = max(anchors)
    anchor = next(step.action for step in package.sequences[table] if step.sequence == start)
    found = []
    for step in package.custom_steps(table):
        if step.sequence is not None and start < step.sequence < rep:
            found.append(Finding(
                "ICE63", WARNING, table, step.action,
                f"'{step.action}' ({step.sequence}) falls between {anchor} ({start}) and "
                f"RemoveExistingProducts ({rep}): if it writes to the script, the upgrade "
                f"breaks; sequence it after RemoveExistingProducts or before {anchor}",
            ))
    return found


def _ice68(package: _Package) -> list[Finding]:
    found = []
    for name in package.actions:
        number = package.type_of(name)
        basic = number & 0x3F
        reasons = []
        if basic not in BASIC_TYPES:
            reasons.append(f"{basic} is not a basic custom action type")
        if number & IN_SCRIPT and number & CLIENT_REPEAT == CLIENT_REPEAT:
            reasons.append("it is marked both rollback (0x100) and commit (0x200)")
        if number < 0 or number & ~KNOWN_BITS:
            reasons.append("it has bits no custom action type defines")
        if basic in BUILT_IN_TYPES and number & ASYNC:
            reasons.append(f"a type {basic} action cannot be asynchronous (0x80)")
        if reasons:
            found.append(Finding(
                "ICE68", ERROR, "CustomAction", name,
                f"CustomAction '{name}' has invalid type {number}: {'; '.join(reasons)}; "
                "choose a valid type (see 'Summary List of All Custom Action Types')",
            ))
        elif number & NO_IMPERSONATE and not number & IN_SCRIPT:
            found.append(Finding(
                "ICE68", WARNING, "CustomAction", name,
                f"CustomAction '{name}' (type {number}) is marked no-impersonate (0x800) but "
                "is not deferred, so it does not run elevated: add in-script (0x400) or drop "
                "0x800",
            ))
    return found


def _ice72(package: _Package) -> list[Finding]:
    table = "AdvtExecuteSequence"
    return [
        Finding(
            "ICE72", ERROR, table, step.action,
            f"AdvtExecuteSequence runs custom action '{step.action}' (type "
            f"{package.type_of(step.action)}); only types 19, 35 and 51 may run while "
            "advertising: remove it from AdvtExecuteSequence",
        )
        for step in package.custom_steps(table)
        if package.type_of(step.action) & 0x3F not in BUILT_IN_TYPES
    ]


def _ice77(package: _Package) -> list[Finding]:
    found = []
    for table in SCRIPT_SEQUENCES:
        in_script = [s for s in package.custom_steps(table)
                     if package.type_of(s.action) & IN_SCRIPT]
        if not in_script:
            continue
        initialize = package.position(table, "InstallInitialize")
        finalize = package.position(table, "InstallFinalize")
        for missing, at in (("InstallInitialize", initialize), ("InstallFinalize", finalize)):
            if at is None:
                found.append(Finding(
                    "ICE77", ERROR, table, missing,
                    f"{table} has in-script actions but no {missing}: add {missing}",
                ))
        low = initialize if initialize is not None else -(1 << 31)
        high = finalize if finalize is not None else 1 << 31
        for step in in_script:
            if step.sequence is None:
                continue
            if not low < step.sequence < high:
                found.append(Finding(
                    "ICE77", ERROR, table, step.action,
                    f"in-script action '{step.action}' is at {step.sequence} in {table}, "
                    f"outside InstallInitialize ({_at(initialize)}) .. InstallFinalize "
                    f"({_at(finalize)}): give it a number between the two",
                ))
    return found


def _at(value: int | None) -> str:
    return "missing" if value is None else str(value)


def _ice80(package: _Package, template: object) -> list[Finding]:
    platform = platforms.package_platform(template if isinstance(template, str) else None)
    if any(p.strip().lower() in TEMPLATE_64BIT for p in platform.split(",")):
        return []
    return [
        Finding(
            "ICE80", ERROR, "CustomAction", name,
            f"CustomAction '{name}' is a 64-bit script (0x1000) but the package's Template "
            f"is '{template or ''}', not Intel64, x64 or Arm64: build the package for x64 "
            "(or Arm64), or drop the 64-bit script bit",
        )
        for name in package.actions
        if package.type_of(name) & SCRIPT_64BIT and package.type_of(name) & 0x07 in (5, 6)
    ]


def _ice82(package: _Package) -> list[Finding]:
    found = []
    for table, steps in package.sequences.items():
        by_number: dict[int, list[str]] = {}
        for step in steps:
            if step.sequence is not None and step.sequence > 0:
                by_number.setdefault(step.sequence, []).append(step.action)
        for number, names in sorted(by_number.items()):
            custom = [name for name in names if name in package.actions]
            if len(names) < 2 or not custom:
                continue
            listed = ", ".join(f"'{name}'" for name in names[:-1]) + f" and '{names[-1]}'"
            advice = (f"give '{custom[0]}' another number" if len(custom) == 1
                      else "give all of them but one another number")
            found.append(Finding(
                "ICE82", WARNING, table, custom[0],
                f"{table} runs {listed} {'both' if len(names) == 2 else 'all'} at {number}: "
                f"the engine may run them in either order; {advice}",
            ))
    return found


def _ice93(package: _Package) -> list[Finding]:
    return [
        Finding(
            "ICE93", WARNING, "CustomAction", name,
            f"CustomAction '{name}' has the name of a standard action: rename it",
        )
        for name in package.actions
        if name in STANDARD_ACTIONS
    ]


def to_json(result: Result) -> dict[str, Any]:
    """The result as the stable JSON document of ``msica validate --json``."""
    return {
        "msi": result.path,
        "checks": list(CHECKS),
        "errors": result.errors,
        "warnings": result.warnings,
        "findings": [asdict(f) for f in result.findings],
    }


def render(result: Result) -> str:
    """The result as text: one line per finding, then a count."""
    lines = [f"{result.path}: {finding}" for finding in result.findings]
    if result.findings:
        lines.append(f"{result.path}: {_count(result.errors, 'error')}, "
                     f"{_count(result.warnings, 'warning')} "
                     f"({', '.join(CHECKS)})")
    else:
        lines.append(f"{result.path}: no problems found by {', '.join(CHECKS)}")
    return "\n".join(lines) + "\n"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
