"""``msica inject``: put an msica DLL and its actions into an existing .msi.

What :mod:`msica.author.wxs` writes as WiX source, written straight into the
database through :class:`~msica.author.package.Package`:

- a Binary row holding the DLL (key :func:`msica.author.wxs.binary_id`);
- a CustomAction row per action (Type from the DLL's manifest, Source the
  Binary key, Target the export), ExtendedType when the manifest gives one;
- for an action with ``uses``, its data setter ``MsicaData_<name>``: an
  immediate action of the same DLL that fills the deferred action's
  CustomActionData, sequenced right before it;
- an InstallExecuteSequence row per action, with its condition, numbered
  between its neighbours in this package.

Placement: ``after``/``before`` from the manifest, or ``--sequence
NAME=after:X|before:X|NUMBER``; actions placed nowhere are chained as
``msica wxs`` chains them (the first immediate one after CostFinalize, the
first deferred one after InstallInitialize, each next one after the previous
one). "After X" takes the lowest free number above X's that stays below the
next row's; "before X" the highest free one below X's above the previous
row's; no free number is an error that says which --sequence would do.

Rows are msica's when their Source is an msica Binary key (``msica_...``):
injecting again removes the DLL's earlier rows (actions it no longer has
included) before adding the new ones, so nothing is duplicated. A row of the
same name that msica did not write stops the injection.

The package is changed on a copy beside the output, committed, then renamed
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

from msica.author import wxs
from msica.author.package import Package
from msica.errors import AuthorError, ConfigError

log = logging.getLogger(__name__)

SEQUENCE_TABLE = "InstallExecuteSequence"
BINARY_PREFIX = "msica_"
# The CustomAction Type of a data setter: a DLL in the Binary table, immediate,
# impersonated, its return checked (msica.actions.TYPE_DLL_BINARY).
SETTER_TYPE = 1
_TYPE_SOURCE_MASK = 0x3F  # Type bits that say where the code comes from
_DEFAULT_ANCHOR = wxs._DEFAULT_ANCHOR

_CREATE_BINARY = ("CREATE TABLE `Binary` (`Name` CHAR(72) NOT NULL, "
                  "`Data` OBJECT NOT NULL PRIMARY KEY `Name`)")
_CREATE_CUSTOM_ACTION = ("CREATE TABLE `CustomAction` (`Action` CHAR(72) NOT NULL, "
                         "`Type` SHORT NOT NULL, `Source` CHAR(72), `Target` CHAR(255), "
                         "`ExtendedType` LONG PRIMARY KEY `Action`)")

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
    Package.open(msi).close()
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                    dir=target.resolve().parent)
    os.close(handle)
    work = Path(name)
    try:
        shutil.copyfile(msi, work)
        with Package.open(work, write=True) as package:
            package.path = Path(msi)  # errors name the user's file, not the copy
            result = _Injector(package, placements or {}).run(infos)
            package.commit()
        os.replace(work, target)
    finally:
        work.unlink(missing_ok=True)
    log.info("injected %d custom actions into %s", len(result.custom_actions), target)
    return Result(target, result.binaries, result.custom_actions, result.sequence,
                  result.replaced)


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

    def run(self, infos: Sequence[wxs.DllInfo]) -> Result:
        p = self.package
        if not p.has_table(SEQUENCE_TABLE):
            raise AuthorError(f"{p.path} has no {SEQUENCE_TABLE} table: "
                              "it is not an installable package (a merge module or patch?)")
        if not p.has_table("Binary"):
            p.execute(_CREATE_BINARY)
        if not p.has_table("CustomAction"):
            p.execute(_CREATE_CUSTOM_ACTION)
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
                if setter:
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

    def _remove_earlier(self, keys: set[str], names: set[str]) -> None:
        """Drop msica's rows for these DLLs and these names; refuse anyone else's."""
        p = self.package
        doomed: list[str] = []
        for action, kind, source in p.query(
                "SELECT `Action`, `Type`, `Source` FROM `CustomAction`"):
            ours = (isinstance(kind, int) and kind & _TYPE_SOURCE_MASK == 1
                    and isinstance(source, str) and source.startswith(BINARY_PREFIX))
            if ours and (source in keys or action in names):
                doomed.append(str(action))
            elif action in names:
                raise AuthorError(f"{p.path} already has a custom action {action} that msica "
                                  "did not add: rename the action (name=...)")
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

    def _add_custom_action(self, name: str, kind: int, key: str, extended: Any) -> None:
        p = self.package
        if extended:
            self._ensure_extended_type()
            p.execute("INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, `Target`, "
                      "`ExtendedType`) VALUES (?, ?, ?, ?, ?)", name, kind, key, name,
                      int(extended))
        else:
            p.execute("INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, `Target`) "
                      "VALUES (?, ?, ?, ?)", name, kind, key, name)

    # -- sequence ----------------------------------------------------------------

    def _sequence(self, actions: Sequence[Mapping[str, Any]]) -> None:
        previous: dict[str, str] = {}
        for action in actions:
            name = action["name"]
            lane = "immediate" if action["execute"] == "immediate" else "deferred"
            placement = self.placements.get(name) or self._manifest_placement(
                action, previous.get(lane, _DEFAULT_ANCHOR[lane]))
            previous[lane] = name
            condition = action.get("condition") or None
            setter = action.get("data_setter")
            if placement.relation == "after":
                if setter:
                    self._place(setter, condition, self._after(setter, placement.anchor))
                    placement = Placement("after", setter)
                self._place(name, condition, self._after(name, placement.anchor))
            else:
                if placement.relation == "at":
                    number = self._free(name, placement.number)
                else:
                    number = self._before(name, placement.anchor)
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
        return (f"no free sequence number for {name} {relation} {anchor} ({base}) in "
                f"{self.package.path}: the next action is at {bound}; give "
                f"--sequence {name}=NUMBER")

    def _place(self, name: str, condition: str | None, number: int) -> None:
        p = self.package
        # Looked up first (libmsi 0.101 keeps a key-only row after a failed INSERT).
        if p.query(f"SELECT `Action` FROM `{SEQUENCE_TABLE}` WHERE `Action` = ?", name):
            raise AuthorError(f"{p.path} already sequences {name}")
        p.execute(f"INSERT INTO `{SEQUENCE_TABLE}` (`Action`, `Condition`, `Sequence`) "
                  "VALUES (?, ?, ?)", name, condition, number)
        self.rows.append(Row(name, number, condition))
