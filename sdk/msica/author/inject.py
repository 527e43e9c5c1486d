"""``msica inject``: put an msica DLL and its actions into an existing .msi.

What :mod:`msica.author.wxs` writes as WiX source, written straight into the
database through :class:`~msica.author.package.Package`:

- a Binary row holding the DLL (key :func:`msica.author.wxs.binary_id`);
- a CustomAction row per action (Type from the DLL's manifest, Source the
  Binary key, Target the export), ExtendedType when the manifest gives one;
- for an action with ``uses``, its data setter ``MsicaData_<name>``: an
  immediate action of the same DLL that fills the deferred action's
  CustomActionData, sequenced right before it; for an action with ``data``,
  the setter of that name is a type 51 action that sets the property named
  like the action to the formatted text;
- an InstallExecuteSequence row per action, with its condition, numbered
  between its neighbours in this package.

Placement: ``after``/``before`` from the manifest, or ``--sequence
NAME=after:X|before:X|NUMBER``; actions placed nowhere are chained as
``msica wxs`` chains them (the first immediate one after CostFinalize, the
first deferred one after InstallInitialize, each next one after the previous
one). "After X" takes the lowest free number above X's that stays below the
next row's; "before X" the highest free one below X's above the previous
row's; no free number is an error that says which --sequence would do.

Rows are msica's when their Source is an msica Binary key (``msica_...``), or
for a type 51 setter, when it is named ``MsicaData_<action>`` and sets the
property ``<action>``: injecting again removes the DLL's earlier rows (actions
it no longer has included, with their setters) before adding the new ones, so
nothing is duplicated. A row of the
same name that msica did not write stops the injection.

The package gets a new package code (the summary's revision number), as any
changed package must: Windows Installer takes two packages with one code for
the same file. The package is changed on a copy beside the output, committed, then renamed
over the output: on any error the original is left as it was. libmsi 0.101
leaves a key-only row behind a failed INSERT and drops persistent rows after
a TEMPORARY one on commit, so every key is looked up before its INSERT and
nothing temporary is created.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msica.actions import DATA_SETTER_PREFIX
from msica.author import platforms, wxs
from msica.author.package import Package, Value
from msica.errors import AuthorError, ConfigError

log = logging.getLogger(__name__)

SEQUENCE_TABLE = "InstallExecuteSequence"
BINARY_PREFIX = "msica_"
# The CustomAction Type of a ``uses`` data setter: a DLL in the Binary table,
# immediate, impersonated, its return checked; of a ``data`` setter: type 51, a
# property set to formatted text (HideTarget when the action hides its data).
SETTER_TYPE = 1
TEXT_SETTER_TYPE = 51
_HIDE_TARGET = 0x2000
_TYPE_SOURCE_MASK = 0x3F  # Type bits that say where the code comes from
_SCRIPT = ("deferred", "rollback", "commit")  # run from the script, not in sequence
_DEFAULT_ANCHOR = wxs._DEFAULT_ANCHOR

_CREATE_BINARY = ("CREATE TABLE `Binary` (`Name` CHAR(72) NOT NULL, "
                  "`Data` OBJECT NOT NULL PRIMARY KEY `Name`)")
_CREATE_CUSTOM_ACTION = ("CREATE TABLE `CustomAction` (`Action` CHAR(72) NOT NULL, "
                         "`Type` SHORT NOT NULL, `Source` CHAR(72), `Target` CHAR(255), "
                         "`ExtendedType` LONG PRIMARY KEY `Action`)")

# _Validation rows for what msica may add to a package that has a _Validation table
# (WiX writes one; ICE validation checks every column against it): Table, Column,
# Nullable, MinValue, MaxValue, KeyTable, KeyColumn, Category, Set, Description.
_VALIDATION: dict[tuple[str, str], tuple[Value, ...]] = {
    ("Binary", "Name"): ("N", None, None, None, None, "Identifier", None,
                         "Key of the binary data"),
    ("Binary", "Data"): ("N", None, None, None, None, "Binary", None, "The binary data"),
    ("CustomAction", "Action"): ("N", None, None, None, None, "Identifier", None,
                                 "Key, the action's name in the sequence tables"),
    ("CustomAction", "Type"): ("N", 1, 32767, None, None, None, None,
                               "Custom action type: source, kind of code, options"),
    ("CustomAction", "Source"): ("Y", None, None, None, None, "CustomSource", None,
                                 "Where the code comes from, by Type"),
    ("CustomAction", "Target"): ("Y", None, None, None, None, "Formatted", None,
                                 "What to run (a DLL entry point, for type 1)"),
    ("CustomAction", "ExtendedType"): ("Y", 0, 2147483647, None, None, "DoubleInteger", None,
                                       "Custom action options beyond Type"),
}

_PLACEMENT = re.compile(r"(?:(after|before):(.+)|(\d+))\Z", re.IGNORECASE)


@dataclass(frozen=True)
class Placement:
    """Where the user puts one action: ``after``/``before`` an action, or a number."""

    relation: str  # "after", "before" or "at"
    anchor: str = ""
    number: int = 0


@dataclass(frozen=True)
class Row:
    """One InstallExecuteSequence row msica wrote."""

    action: str
    sequence: int
    condition: str | None


@dataclass(frozen=True)
class Result:
    """What one injection wrote."""

    output: Path
    binaries: tuple[str, ...]
    custom_actions: tuple[str, ...]
    sequence: tuple[Row, ...]
    replaced: tuple[str, ...]  # msica actions removed first (an earlier injection's)
    package_code: str = ""  # the new one: a changed package must not keep the old
    warnings: tuple[str, ...] = ()  # DLLs that cannot load everywhere the package installs


def parse_placements(items: Iterable[str]) -> dict[str, Placement]:
    """``NAME=after:Action``, ``NAME=before:Action`` or ``NAME=NUMBER`` per item."""
    placements: dict[str, Placement] = {}
    for item in items:
        name, sep, where = item.partition("=")
        match = _PLACEMENT.match(where.strip())
        if not sep or not name.strip() or match is None:
            raise ConfigError(f"--sequence {item!r}: write NAME=after:ACTION, "
                              "NAME=before:ACTION or NAME=NUMBER")
        name = name.strip()
        if name in placements:
            raise ConfigError(f"--sequence places {name} twice")
        if match.group(3):
            number = int(match.group(3))
            if not 0 < number < 32768:
                raise ConfigError(f"--sequence {item!r}: a number from 1 to 32767")
            placements[name] = Placement("at", number=number)
        else:
            placements[name] = Placement(match.group(1).lower(), match.group(2).strip())
    return placements


def inject(
    msi: Path,
    dlls: Sequence[Path],
    *,
    output: Path | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> Result:
    """Add the actions of ``dlls`` to ``msi`` (or to a copy at ``output``)."""
    if not dlls:
        raise ConfigError("name at least one DLL to inject (--dll)")
    infos = [wxs.read_dll(Path(dll)) for dll in dlls]
    _check_names(infos, placements or {})
    target = Path(output) if output is not None else Path(msi)
    # Opened once read-only first: a bad file fails here, before anything is copied.
    with Package.open(msi) as package:
        warnings = _arch_warnings(package, infos)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                        dir=target.resolve().parent)
    except OSError as error:
        raise AuthorError(f"cannot write beside {target}: {error.strerror}") from None
    os.close(handle)
    work = Path(name)
    try:
        _copy(Path(msi), work)
        with Package.open(work, write=True) as package:
            package.path = Path(msi)  # errors name the user's file, not the copy
            result = _Injector(package, placements or {}).run(infos)
            code = package.set_package_code()
            package.commit()
        try:
            os.replace(work, target)
        except OSError as error:
            raise AuthorError(f"cannot replace {target}: {error.strerror}") from None
    finally:
        work.unlink(missing_ok=True)
    log.info("injected %d custom actions into %s", len(result.custom_actions), target)
    return Result(target, result.binaries, result.custom_actions, result.sequence,
                  result.replaced, code, warnings)


def _arch_warnings(package: Package, infos: Sequence[wxs.DllInfo]) -> tuple[str, ...]:
    conditions: list[str] = []
    if package.has_table("LaunchCondition"):
        conditions = [str(row[0]) for row in package.query(
            "SELECT `Condition` FROM `LaunchCondition`") if row[0] is not None]
    template = package.template
    warnings = []
    for info in infos:
        problem = platforms.arch_warning(template, info.arch, conditions)
        if problem is not None:
            warnings.append(f"{info.path.name} is an {info.arch} DLL and {problem}")
            log.warning("warning: %s", warnings[-1])  # the CLI shows it as msica: warning: ...
    return tuple(warnings)


def _copy(source: Path, work: Path) -> None:
    """``source``'s bytes and mode (not mkstemp's 0600) into the work copy."""
    try:
        shutil.copyfile(source, work)
        shutil.copymode(source, work)
    except OSError as error:
        raise AuthorError(f"cannot copy {source}: {error.strerror}") from None


def _check_names(infos: Sequence[wxs.DllInfo], placements: Mapping[str, Placement]) -> None:
    seen: dict[str, Path] = {}
    for info in infos:
        for action in info.actions:
            for name in _names_of(action):
                if name in seen:
                    raise AuthorError(f"{name} is an action of both {seen[name].name} and "
                                      f"{info.path.name}: rename one (name=...)")
                seen[name] = info.path
    keys: dict[str, Path] = {}
    for info in infos:
        key = wxs.binary_id(info.path)
        if key in keys:
            raise AuthorError(f"{keys[key].name} and {info.path.name} would both be Binary "
                              f"{key}: rename one file")
        keys[key] = info.path
    unknown = sorted(set(placements) - {a["name"] for i in infos for a in i.actions})
    if unknown:
        raise ConfigError(f"--sequence names {', '.join(unknown)}, not an action of the "
                          "DLLs given")


def _names_of(action: Mapping[str, Any]) -> list[str]:
    setter = action.get("data_setter")
    return [action["name"], setter] if setter else [action["name"]]


class _Injector:
    """The changes to one open package."""

    def __init__(self, package: Package, placements: Mapping[str, Placement]) -> None:
        self.package = package
        self.placements = placements
        self.rows: list[Row] = []
        self.replaced: list[str] = []
        # The last action placed per lane: unplaced actions chain on, across DLLs too.
        self.previous: dict[str, str] = {}

    def run(self, infos: Sequence[wxs.DllInfo]) -> Result:
        p = self.package
        if not p.has_table(SEQUENCE_TABLE):
            raise AuthorError(f"{p.path} has no {SEQUENCE_TABLE} table: "
                              "it is not an installable package (a merge module or patch?)")
        if not p.has_table("Binary"):
            p.execute(_CREATE_BINARY)
            self._validate("Binary", ["Name", "Data"])
        if not p.has_table("CustomAction"):
            p.execute(_CREATE_CUSTOM_ACTION)
            self._validate("CustomAction", ["Action", "Type", "Source", "Target",
                                            "ExtendedType"])
        self._check_custom_action_schema()
        keys = [wxs.binary_id(info.path) for info in infos]
        names = {name for info in infos for action in info.actions
                 for name in _names_of(action)}
        self._remove_earlier(set(keys), names)
        actions: list[str] = []
        for info, key in zip(infos, keys):
            p.set_stream("Binary", key, info.path.read_bytes())
            for action in info.actions:
                setter = action.get("data_setter")
                if setter and action.get("data") is not None:
                    kind = TEXT_SETTER_TYPE | (_HIDE_TARGET if action.get("hide_target") else 0)
                    self._add_custom_action(setter, kind, action["name"], None,
                                            target=str(action["data"]))
                    actions.append(setter)
                elif setter:
                    self._add_custom_action(setter, SETTER_TYPE, key, None)
                    actions.append(setter)
                self._add_custom_action(action["name"], int(action["type"]), key,
                                        action.get("extended_type"))
                actions.append(action["name"])
            self._sequence(info.actions)
        return Result(p.path, tuple(keys), tuple(actions), tuple(self.rows),
                      tuple(self.replaced))

    # -- tables ------------------------------------------------------------------

    def _check_custom_action_schema(self) -> None:
        columns = self.package.columns("CustomAction")
        if columns[:4] != ["Action", "Type", "Source", "Target"]:
            raise AuthorError(f"{self.package.path}: its CustomAction table has columns "
                              f"{', '.join(columns)}, not Action, Type, Source, Target")

    def _ensure_extended_type(self) -> None:
        if not self.package.has_column("CustomAction", "ExtendedType"):
            self.package.execute("ALTER TABLE `CustomAction` ADD `ExtendedType` LONG")
            self._validate("CustomAction", ["ExtendedType"])

    def _validate(self, table: str, columns: Sequence[str]) -> None:
        """Describe new columns in _Validation, when the package keeps one."""
        p = self.package
        if not p.has_table("_Validation"):
            return
        for column in columns:
            if p.query("SELECT `Table` FROM `_Validation` WHERE `Table` = ? AND `Column` = ?",
                       table, column):
                continue
            values = _VALIDATION[table, column]
            p.execute("INSERT INTO `_Validation` (`Table`, `Column`, `Nullable`, `MinValue`, "
                      "`MaxValue`, `KeyTable`, `KeyColumn`, `Category`, `Set`, `Description`) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", table, column,
                      *values)

    def _remove_earlier(self, keys: set[str], names: set[str]) -> None:
        """Drop msica's rows for these DLLs and these names; refuse anyone else's."""
        p = self.package
        doomed: list[str] = []
        setters: dict[str, str] = {}  # msica's type 51 setters: setter -> its action
        for action, kind, source in p.query(
                "SELECT `Action`, `Type`, `Source` FROM `CustomAction`"):
            base = kind & _TYPE_SOURCE_MASK if isinstance(kind, int) else None
            if base == 1 and isinstance(source, str) and source.startswith(BINARY_PREFIX):
                if source in keys or action in names:
                    doomed.append(str(action))
                continue
            if base == TEXT_SETTER_TYPE and action == f"{DATA_SETTER_PREFIX}{source}":
                setters[str(action)] = str(source)
                continue
            if action in names:
                raise AuthorError(f"{p.path} already has a custom action {action} that msica "
                                  "did not add: rename the action (name=...)")
        # A data setter goes with its action, or when the DLL now gives its own of that name.
        doomed += [s for s, a in setters.items() if a in doomed or s in names]
        for name in names - set(doomed):
            if p.query(f"SELECT `Action` FROM `{SEQUENCE_TABLE}` WHERE `Action` = ?", name):
                raise AuthorError(f"{p.path} already sequences an action {name}: "
                                  "rename the action (name=...)")
        for action in doomed:
            p.execute("DELETE FROM `CustomAction` WHERE `Action` = ?", action)
            p.execute(f"DELETE FROM `{SEQUENCE_TABLE}` WHERE `Action` = ?", action)
        self.replaced = sorted(doomed)
        for key in keys:
            p.execute("DELETE FROM `Binary` WHERE `Name` = ?", key)
        if doomed:
            log.info("replacing %s", ", ".join(self.replaced))

    def _add_custom_action(self, name: str, kind: int, source: str, extended: Any, *,
                           target: str | None = None) -> None:
        """A CustomAction row; Target is the export named like the action unless given."""
        p = self.package
        target = name if target is None else target
        if extended:
            self._ensure_extended_type()
            p.execute("INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, `Target`, "
                      "`ExtendedType`) VALUES (?, ?, ?, ?, ?)", name, kind, source, target,
                      int(extended))
        else:
            p.execute("INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, `Target`) "
                      "VALUES (?, ?, ?, ?)", name, kind, source, target)

    # -- sequence ----------------------------------------------------------------

    def _sequence(self, actions: Sequence[Mapping[str, Any]]) -> None:
        previous = self.previous
        for action in actions:
            name = action["name"]
            lane = "deferred" if action["execute"] in _SCRIPT else "immediate"
            placement = self.placements.get(name) or self._manifest_placement(
                action, previous.get(lane, _DEFAULT_ANCHOR[lane]))
            previous[lane] = name
            condition = action.get("condition") or None
            setter = action.get("data_setter")
            if placement.relation == "after":
                if setter:
                    self._place(setter, condition, self._after(setter, placement.anchor))
                    placement = Placement("after", setter)
                number = self._after(name, placement.anchor)
                self._check_script(name, lane, number)
                self._place(name, condition, number)
            else:
                if placement.relation == "at":
                    number = self._free(name, placement.number)
                else:
                    number = self._before(name, placement.anchor)
                self._check_script(name, lane, number)
                self._place(name, condition, number)
                if setter:
                    self._place(setter, condition, self._before(setter, name))

    @staticmethod
    def _manifest_placement(action: Mapping[str, Any], chained: str) -> Placement:
        if action.get("before"):
            return Placement("before", action["before"])
        return Placement("after", action.get("after") or chained)

    def _numbers(self) -> dict[str, int]:
        return {str(a): n for a, n in self.package.query(
            f"SELECT `Action`, `Sequence` FROM `{SEQUENCE_TABLE}`") if isinstance(n, int)}

    def _anchor(self, name: str, anchor: str) -> tuple[int, list[int]]:
        numbers = self._numbers()
        if anchor not in numbers:
            raise AuthorError(f"{name} goes next to {anchor}, which {self.package.path} does "
                              f"not sequence in {SEQUENCE_TABLE}: place it with "
                              f"--sequence {name}=after:ACTION")
        if numbers[anchor] <= 0:
            raise AuthorError(f"{name} goes next to {anchor}, whose sequence number "
                              f"{numbers[anchor]} is a special one: place {name} with "
                              f"--sequence {name}=NUMBER")
        return numbers[anchor], sorted(set(numbers.values()))

    def _after(self, name: str, anchor: str) -> int:
        base, used = self._anchor(name, anchor)
        following = [n for n in used if n > base]
        limit = following[0] if following else 32768
        if base + 1 >= limit:
            raise AuthorError(self._no_room(name, "after", anchor, base, limit))
        return base + 1

    def _before(self, name: str, anchor: str) -> int:
        base, used = self._anchor(name, anchor)
        preceding = [n for n in used if 0 < n < base]
        floor = preceding[-1] if preceding else 0
        if base - 1 <= floor:
            raise AuthorError(self._no_room(name, "before", anchor, base, floor))
        return base - 1


    def _free(self, name: str, number: int) -> int:
        taken = [a for a, n in self._numbers().items() if n == number]
        if taken:
            raise AuthorError(f"--sequence {name}={number}: {taken[0]} already has sequence "
                              f"number {number} in {self.package.path}")
        return number

    def _no_room(self, name: str, relation: str, anchor: str, base: int, bound: int) -> str:
        neighbour = next((a for a, n in self._numbers().items() if n == bound), None)
        beside = f"{neighbour} is at {bound}" if neighbour else "no number is left"
        return (f"no free sequence number for {name} {relation} {anchor} ({base}) in "
                f"{self.package.path}: {beside}; give --sequence {name}=NUMBER, or place "
                f"it {relation} another action")

    def _check_script(self, name: str, lane: str, number: int) -> None:
        """A deferred, rollback or commit action must sit between InstallInitialize and
        InstallFinalize, or the engine fails the install (error 2762)."""
        if lane != "deferred":
            return
        numbers = self._numbers()
        first, last = numbers.get("InstallInitialize"), numbers.get("InstallFinalize")
        if first is not None and last is not None and not first < number < last:
            raise AuthorError(
                f"{name} runs in the install script, so it must be between InstallInitialize "
                f"({first}) and InstallFinalize ({last}), not at {number}: place it with "
                f"--sequence {name}=after:InstallInitialize or a number in between")

    def _place(self, name: str, condition: str | None, number: int) -> None:
        p = self.package
        # Looked up first (libmsi 0.101 keeps a key-only row after a failed INSERT).
        if p.query(f"SELECT `Action` FROM `{SEQUENCE_TABLE}` WHERE `Action` = ?", name):
            raise AuthorError(f"{p.path} already sequences {name}")
        p.execute(f"INSERT INTO `{SEQUENCE_TABLE}` (`Action`, `Condition`, `Sequence`) "
                  "VALUES (?, ?, ?)", name, condition, number)
        self.rows.append(Row(name, number, condition))
