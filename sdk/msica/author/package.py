"""An .msi file opened offline: read its tables, change them, commit.

The platform's MSI library does the work (msi.dll on Windows, msitools'
libmsi elsewhere, both in :mod:`msica._native`), so what is written is what
the engine reads. As with the installer's own API, values travel only through
``?`` markers (MSI SQL has no escaping in string literals) and table and
column names go in backquotes::

    with Package.open("app.msi", write=True) as package:
        if not package.query("SELECT `Action` FROM `CustomAction` WHERE `Action` = ?", "X"):
            package.execute("INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, "
                            "`Target`) VALUES (?, ?, ?, ?)", "X", 51, "PROP", "[OTHER]")
        package.commit()

Nothing is written until :meth:`Package.commit`; leaving the ``with`` block
closes the file without committing.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar, Union

from msica._native.offline import Field, OfflineDatabase, open_database
from msica.errors import AuthorError, MsiFileError

# A value read from a field: streams read as None (see Package.read_stream).
Value = Union[str, int, None]
# A value bound to a ``?`` marker: bytes fill a stream (Binary) column.
Param = Field

_T = TypeVar("_T")

_PID_TEMPLATE = 7  # platform;languages, in an .msi
_PID_REVISION_NUMBER = 9  # the package code, in an .msi

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


class Package:
    """An open .msi database; use :meth:`open`, preferably in a ``with``."""

    def __init__(self, database: OfflineDatabase, path: Path, *, write: bool) -> None:
        self._database: OfflineDatabase | None = database
        self.path = path
        self.writable = write
        self._codec: str | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, write: bool = False) -> Package:
        """Open the .msi at ``path``, read-only unless ``write``.

        A file that is missing, is not an .msi, or is cut short raises
        :class:`MsiFileError` with a one-line message.
        """
        where = Path(path)
        _check_file(where)
        try:
            database = open_database(where, write=write)
        except AuthorError as error:
            raise MsiFileError(f"{where}: {error}") from None
        return cls(database, where, write=write)

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Package:
        """A new, empty database at ``path`` (written on :meth:`commit`)."""
        where = Path(path)
        try:
            database = open_database(where, create=True)
        except AuthorError as error:
            raise AuthorError(f"{where}: {error}") from None
        return cls(database, where, write=True)

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Close without committing; uncommitted changes are dropped."""
        if self._database is not None:
            self._database.close()
            self._database = None

    def __enter__(self) -> Package:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def commit(self) -> None:
        """Write the changes made so far into the file."""
        if not self.writable:
            raise AuthorError(f"{self.path} was opened read-only: open it with write=True")
        try:
            self._live().commit()
        except AuthorError as error:
            raise AuthorError(f"{self.path}: {error}") from None

    # -- queries -----------------------------------------------------------------

    def query(self, sql: str, *params: Param) -> list[tuple[Value, ...]]:
        """The rows of a SELECT, ``params`` bound to its ``?`` markers in order.

        Integers come back as int, text as str, null fields as None; stream
        (binary) columns read as None: use :meth:`read_stream` for their bytes.
        """
        rows = self._run(sql, params, streams=False)
        return [tuple(None if isinstance(v, bytes) else v for v in row) for row in rows]

    def execute(self, sql: str, *params: Param) -> None:
        """Run a statement (INSERT, UPDATE, DELETE, CREATE TABLE, ALTER TABLE...).

        One row per INSERT; ``bytes`` bound to a marker fill a stream column.
        libmsi 0.101 (measured) does not enforce NOT NULL: an INSERT that leaves a
        required field null succeeds and keeps the row with the field empty; and a
        failed INSERT may leave a row holding only its key. Look a key up before
        inserting, and give every required field.
        """
        self._run(sql, params, streams=False)

    def tables(self) -> list[str]:
        """The names of the tables (_Tables), sorted."""
        return sorted(str(row[0]) for row in self.query("SELECT `Name` FROM `_Tables`"))

    def has_table(self, table: str) -> bool:
        return bool(self.query("SELECT `Name` FROM `_Tables` WHERE `Name` = ?", table))

    def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        return [name for name, _ in self.column_types(table)]

    def column_types(self, table: str) -> list[tuple[str, str]]:
        """``(name, type)`` per column of ``table``, types as MSI writes them:
        ``s72`` (string of at most 72, not null), ``S255`` (nullable), ``L64``
        (localizable), ``i2``/``I4`` (integers), ``v0`` (stream)."""
        name = _identifier(table, "table")
        if not self.has_table(table):
            raise AuthorError(f"{self.path} has no {table} table")
        return self._wrap(lambda db: db.columns(f"SELECT * FROM `{name}`"), f"table {table}")

    def has_column(self, table: str, column: str) -> bool:
        return bool(self.query(
            "SELECT `Number` FROM `_Columns` WHERE `Table` = ? AND `Name` = ?", table, column))

    # -- streams -----------------------------------------------------------------

    def read_stream(self, table: str, key: str, column: str = "Data") -> bytes | None:
        """The bytes in ``column`` of the row of ``table`` whose first column is ``key``
        (None when there is no such row or the field is null)."""
        key_column = self.columns(table)[0]
        sql = (f"SELECT `{_identifier(column, 'column')}` FROM `{_identifier(table, 'table')}` "
               f"WHERE `{key_column}` = ?")
        rows = self._run(sql, (key,), streams=True)
        if not rows or rows[0][0] is None:
            return None
        value = rows[0][0]
        if not isinstance(value, bytes):
            raise AuthorError(f"{table}.{column} is not a stream column")
        return value

    def set_stream(self, table: str, key: str, data: bytes, column: str = "Data") -> None:
        """Put ``data`` in ``column`` of the row of ``table`` keyed ``key``: the row is
        updated when it exists, else inserted with only those two fields (a Binary or
        Icon row)."""
        if not data:
            raise AuthorError(f"{table} {key}: no data (an empty stream cannot be stored)")
        key_column = self.columns(table)[0]
        t, c = _identifier(table, "table"), _identifier(column, "column")
        # Looked up first: a failed INSERT in libmsi 0.101 leaves a key-only row behind.
        if self.query(f"SELECT `{key_column}` FROM `{t}` WHERE `{key_column}` = ?", key):
            self.execute(f"UPDATE `{t}` SET `{c}` = ? WHERE `{key_column}` = ?", data, key)
        else:
            self.execute(f"INSERT INTO `{t}` (`{key_column}`, `{c}`) VALUES (?, ?)", key, data)

    # -- helpers -----------------------------------------------------------------

    def _live(self) -> OfflineDatabase:
        if self._database is None:
            raise AuthorError(f"{self.path} is closed")
        return self._database

    @property
    def package_code(self) -> str | None:
        """The package code (summary information's revision number, PID 9)."""
        return self._wrap(lambda db: db.summary_text(_PID_REVISION_NUMBER),
                          "reading the summary information")

    @property
    def template(self) -> str | None:
        """The summary's Template (PID 7): the platform and languages, "x64;1033"."""
        return self._wrap(lambda db: db.summary_text(_PID_TEMPLATE),
                          "reading the summary information")

    def set_template(self, template: str) -> None:
        """Set the summary's Template ("x64;1033"); written on :meth:`commit`."""
        self._wrap(lambda db: db.set_summary_text(_PID_TEMPLATE, template),
                   "writing the summary information")

    def set_package_code(self, code: str | None = None) -> str:
        """Give the package a new package code (a new GUID unless ``code``), as a changed
        package must have; written on :meth:`commit`."""
        code = code or "{" + str(uuid.uuid4()).upper() + "}"
        self._wrap(lambda db: db.set_summary_text(_PID_REVISION_NUMBER, code),
                   "writing the summary information")
        return code

    def codepage(self) -> int:
        """The code page the database keeps its text in (0: neutral, stored as 1252)."""
        return self._wrap(lambda db: db.codepage(), "reading _ForceCodepage")

    def _run(self, sql: str, params: tuple[Param, ...], *,
             streams: bool) -> list[tuple[Field, ...]]:
        for value in params:
            if isinstance(value, str) and not value.isascii():
                self._check_encodable(value)
        return self._wrap(lambda db: db.run(sql, params, streams=streams), _brief(sql))

    def _check_encodable(self, text: str) -> None:
        """Refuse text the file's code page cannot hold: the library would store a null
        (libmsi 0.101, measured), crash, or write question marks (msi.dll)."""
        if self._codec is None:
            page = self.codepage()
            self._codec = "utf-8" if page == 65001 else f"cp{page or 1252}"
        try:
            text.encode(self._codec)
        except LookupError:
            return
        except UnicodeEncodeError as error:
            bad = text[error.start:error.end]
            raise AuthorError(
                f"{self.path} keeps text in code page {self._codec[2:] or self._codec}, "
                f"which cannot hold {bad!r}: use text it can, or a package built with "
                "another code page") from None

    def _wrap(self, call: Callable[[OfflineDatabase], _T], doing: str) -> _T:
        database = self._live()
        try:
            return call(database)
        except AuthorError as error:
            raise AuthorError(f"{self.path}: {error} ({doing})") from None


def _brief(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 120 else text[:117] + "..."


def _identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise AuthorError(f"{name!r} is not a valid {what} name")
    return name


# MS-CFB: the signature every compound file (an .msi is one) starts with.
_OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")


def _check_file(path: Path) -> None:
    """Refuse a missing file, a file that is not an .msi, or a truncated one, in one line,
    before the MSI library sees it (libmsi's own messages say little)."""
    import olefile

    try:
        with path.open("rb") as file:
            head = file.read(8)
    except FileNotFoundError:
        raise MsiFileError(f"{path}: no such file") from None
    except OSError as error:
        raise MsiFileError(f"cannot read {path}: {error.strerror}") from None
    if head != _OLE_MAGIC:
        raise MsiFileError(f"{path} is not a Windows Installer package (.msi)")
    try:
        with olefile.OleFileIO(str(path)) as ole:
            names = {"/".join(entry) for entry in ole.listdir(streams=True, storages=False)}
    except Exception as error:  # olefile raises OSError, ValueError, IndexError... when cut short
        raise MsiFileError(f"{path} is damaged or truncated ({error})") from None
    if not names:
        raise MsiFileError(f"{path} is an empty compound file, not a Windows Installer package")
