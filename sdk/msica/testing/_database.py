"""The package behind ``SimulatedSession.from_msi``: its Property table and its database.

:func:`open_package` gives a :class:`~msica.testing._engine.DatabaseBackend`
with a ``properties()`` method: :class:`PackageDatabase`, the .msi opened
read-only through :class:`msica.author.package.Package` (libmsi, or msi.dll
on Windows), which runs the action's SQL as the engine would and keeps
temporary rows for the session's life. :class:`MsiinfoPackage` (msitools'
``msiinfo``: the Property table, table names and summary, no SQL) remains for
machines without libmsi.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from msica.errors import EngineError
from msica.testing._engine import SimulatorError

_T = TypeVar("_T")
_ROW = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)\t(.*)$", re.DOTALL)
_SUMMARY_NAMES = {
    "Title": 2, "Subject": 3, "Author": 4, "Keywords": 5, "Comments": 6, "Template": 7,
    "Last author": 8, "Revision number (UUID)": 9, "Version": 14, "Source": 15,
    "Application": 18, "Security": 19,
}


class MsiinfoPackage:
    """An .msi read with msitools' ``msiinfo``: the Property table, the table names and
    the summary information. SQL queries are not available through it."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise EngineError(f"no package at {path}: build the .msi first")
        tool = shutil.which("msiinfo")
        if tool is None:
            raise EngineError(
                "msiinfo not found: install msitools (apt-get install msitools) to read an "
                ".msi's tables off Windows"
            )
        self.path = path
        self._tool = tool
        self._properties: dict[str, str] | None = None
        self._tables: set[str] | None = None

    def _run(self, command: str, *rest: str) -> str:
        done = subprocess.run([self._tool, command, str(self.path), *rest],
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise EngineError(
                f"msiinfo {command} {self.path} failed: "
                f"{done.stderr.decode('utf-8', 'replace').strip()}"
            )
        return done.stdout.decode("utf-8", "replace")

    def properties(self) -> dict[str, str]:
        """The Property table. msiinfo writes values raw: a value holding a line break
        followed by ``NAME<tab>`` would be misread (no such value is known)."""
        if self._properties is None:
            text = self._run("export", "Property")
            lines = text.split("\r\n")[3:]  # column names, types, table and keys
            values: dict[str, str] = {}
            last: str | None = None
            for line in lines:
                row = _ROW.match(line)
                if row is not None:
                    last = row.group(1)
                    values[last] = row.group(2)
                elif last is not None and line:
                    values[last] += "\r\n" + line
            self._properties = values
        return dict(self._properties)

    def has_table(self, table: str) -> bool:
        if self._tables is None:
            self._tables = set(self._run("tables").split())
        return table in self._tables

    def summary(self) -> Mapping[int, str | int]:
        values: dict[int, str | int] = {}
        for line in self._run("suminfo").splitlines():
            name, sep, value = line.partition(": ")
            pid = _SUMMARY_NAMES.get(name)
            if not sep or pid is None:
                continue
            number = re.fullmatch(r"(\d+) \(\w+\)", value)
            values[pid] = int(number.group(1)) if number else value
        return values

    def columns(self, sql: str) -> list[str]:
        return self.query(sql, ())  # type: ignore[return-value]  # raises

    def query(self, sql: str, params: Sequence[str | int | None]) -> list[
            tuple[str | int | None, ...]]:
        raise SimulatorError(
            f"database query {sql!r}: this simulated session reads {self.path.name} through "
            "msiinfo, which runs no SQL; test queries in a real install"
        )

    def insert_temporary(self, sql: str, columns: Sequence[str],
                         values: Sequence[str | int | None]) -> None:
        raise SimulatorError(
            f"insert_temporary into {sql!r}: this simulated session reads {self.path.name} "
            "through msiinfo, which writes nothing; test it in a real install"
        )


_SELECT = re.compile(
    r"^\s*SELECT\s+(?:DISTINCT\s+)?(?P<columns>.+?)\s+FROM\s+(?P<tables>.+?)"
    r"(?:\s+WHERE\s|\s+ORDER\s+BY\s|\s*$)", re.IGNORECASE | re.DOTALL)


def _names(text: str) -> list[str]:
    return [part.strip().strip("`").rsplit(".", 1)[-1].strip("`") for part in text.split(",")]


class PackageDatabase:
    """An .msi opened read-only through :class:`msica.author.package.Package`."""

    def __init__(self, path: Path) -> None:
        from msica.author.package import Package

        self.path = path
        self.package = _open_outside_simulator(Package.open, path)
        self._summary: Mapping[int, str | int] | None = None

    def properties(self) -> dict[str, str]:
        rows = self.package.query("SELECT `Property`, `Value` FROM `Property`")
        return {str(name): "" if value is None else str(value) for name, value in rows}

    def query(self, sql: str, params: Sequence[str | int | None]) -> list[
            tuple[str | int | None, ...]]:
        return self.package.query(sql, *params)

    def columns(self, sql: str) -> list[str]:
        """The column names a SELECT yields (``*`` is every column of its tables)."""
        match = _SELECT.match(sql)
        if match is None:
            raise SimulatorError(f"MsiViewGetColumnInfo: {sql!r} is not a SELECT the simulated "
                                 "engine can read column names from")
        tables = _names(match["tables"])
        names: list[str] = []
        for column in _names(match["columns"]):
            names.extend([n for t in tables for n in self.package.columns(t)]
                         if column == "*" else [column])
        return names

    def insert_temporary(self, sql: str, columns: Sequence[str],
                         values: Sequence[str | int | None]) -> None:
        match = _SELECT.match(sql)
        tables = _names(match["tables"]) if match else []
        if len(tables) != 1:
            raise SimulatorError(f"insert_temporary: the view {sql!r} must select from one table")
        listed = ", ".join(f"`{name}`" for name in columns)
        markers = ", ".join("?" for _ in columns)
        self.package.execute(
            f"INSERT INTO `{tables[0]}` ({listed}) VALUES ({markers}) TEMPORARY",
            *values[: len(columns)])

    def has_table(self, table: str) -> bool:
        return self.package.has_table(table)

    def summary(self) -> Mapping[int, str | int]:
        if self._summary is None:
            from msica.author.msifile import MsiFile
            from msica.database import SUMMARY_PROPERTIES

            with MsiFile.open(self.path) as msi:
                self._summary = {
                    SUMMARY_PROPERTIES[label]: value
                    for label, value in msi.summary.items()
                    if label in SUMMARY_PROPERTIES and isinstance(value, (str, int))
                }
        return self._summary


def _open_outside_simulator(opener: Callable[[Path], _T], path: Path) -> _T:
    """On Windows msi.dll opens the package: the simulated engine steps aside meanwhile,
    so the package keeps the real library (it holds on to what _native.msi() gave)."""
    from msica import _native
    from msica.testing._engine import SimulatedMsi

    simulated = _native._lib
    real = simulated.real() if isinstance(simulated, SimulatedMsi) else None
    if real is None:
        return opener(path)
    _native._lib = real
    try:
        return opener(path)
    finally:
        _native._lib = simulated


def open_package(path: Path) -> PackageDatabase | MsiinfoPackage:
    """The package at ``path``, for a simulated session: through libmsi or msi.dll, else
    (no libmsi here) through msiinfo, without SQL."""
    from msica.errors import MsicaError

    if not path.is_file():
        raise EngineError(f"no package at {path}: build the .msi first")
    try:
        return PackageDatabase(path)
    except MsicaError as error:
        if "libmsi" not in str(error):
            raise
        return MsiinfoPackage(path)
