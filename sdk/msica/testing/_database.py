"""The package behind ``SimulatedSession.from_msi``: its Property table and its database.

:func:`open_package` gives a :class:`~msica.testing._engine.DatabaseBackend`
with a ``properties()`` method.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from msica.errors import EngineError
from msica.testing._engine import SimulatorError

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

    def query(self, sql: str, params: Sequence[str | int | None]) -> tuple[
            list[str], list[tuple[str | int | None, ...]]]:
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


def open_package(path: Path) -> MsiinfoPackage:
    """The package at ``path``, for a simulated session."""
    return MsiinfoPackage(path)
