"""Offline .msi databases (outside an install): one interface, two libraries.

On Windows the database goes through msi.dll (MsiOpenDatabaseW and the view
functions); elsewhere through msitools' libmsi (:mod:`msica._native.libmsi`).
Both give rows as tuples of ``str | int | bytes | None`` (bytes for stream
columns) and take the same values for ``?`` markers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, Protocol

from msica.errors import AuthorError, InstallerError

from .libmsi import Field, parse_force_codepage

__all__ = ["Field", "OfflineDatabase", "open_database"]


class OfflineDatabase(Protocol):
    """What :class:`msica.author.package.Package` needs of a database library."""

    path: str

    def run(self, sql: str, params: Sequence[Field] = (), *,
            streams: bool = True) -> list[tuple[Field, ...]]: ...

    def columns(self, sql: str) -> list[tuple[str, str]]: ...

    def codepage(self) -> int: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


def open_database(path: str | os.PathLike[str], *, write: bool = False,
                  create: bool = False) -> OfflineDatabase:
    """The database at ``path``: read-only, or ``write`` (committed to the same file),
    or ``create`` (a new empty one)."""
    if sys.platform == "win32":
        return MsiDllDatabase(path, write=write, create=create)
    from .libmsi import Database

    return Database(path, write=write, create=create)


# MsiOpenDatabaseW's persist modes; MsiViewGetColumnInfo's kinds; end of a fetch.
_MSIDBOPEN_READONLY = 0
_MSIDBOPEN_TRANSACT = 1
_MSIDBOPEN_CREATE = 3
_MSICOLINFO_NAMES = 0
_MSICOLINFO_TYPES = 1
_ERROR_NO_MORE_ITEMS = 259
_MSI_NULL_INTEGER = -0x80000000


class MsiDllDatabase:
    """An offline database through msi.dll (Windows)."""

    def __init__(self, path: str | os.PathLike[str], *, write: bool = False,
                 create: bool = False) -> None:
        from . import msi

        self._ffi, self._lib = msi()
        self.path = os.fspath(path)
        mode = _MSIDBOPEN_CREATE if create else _MSIDBOPEN_TRANSACT if write else \
            _MSIDBOPEN_READONLY
        handle = self._ffi.new("MSIHANDLE *")
        persist = self._ffi.cast("const wchar_t *", mode)
        self._call("MsiOpenDatabaseW", self._lib.MsiOpenDatabaseW(self.path, persist, handle),
                   "not a Windows Installer database")
        self._handle: int | None = int(handle[0])

    def close(self) -> None:
        if self._handle is not None:
            self._lib.MsiCloseHandle(self._handle)
            self._handle = None

    def commit(self) -> None:
        self._call("MsiDatabaseCommit", self._lib.MsiDatabaseCommit(self._live()),
                   "cannot write the database")

    def run(self, sql: str, params: Sequence[Field] = (), *,
            streams: bool = True) -> list[tuple[Field, ...]]:
        lib = self._lib
        view = self._open_view(sql)
        record = 0
        # msi.dll takes a stream from a file; the files live until the statement ran.
        spool = tempfile.TemporaryDirectory(prefix="msica-streams-")
        try:
            if params:
                record = self._record(params, spool.name)
            self._call("MsiViewExecute", lib.MsiViewExecute(view, record), "the query failed")
            if sql.lstrip()[:6].upper() != "SELECT":
                return []
            kinds = [t[:1].lower() for t in self._column_info(view, _MSICOLINFO_TYPES)]
            if not streams:
                kinds = ["-" if kind == "v" else kind for kind in kinds]
            rows = []
            fetched = self._ffi.new("MSIHANDLE *")
            while True:
                code = lib.MsiViewFetch(view, fetched)
                if code == _ERROR_NO_MORE_ITEMS:
                    break
                self._call("MsiViewFetch", code, "cannot read a row")
                try:
                    rows.append(tuple(self._field(fetched[0], i + 1, kind)
                                      for i, kind in enumerate(kinds)))
                finally:
                    lib.MsiCloseHandle(fetched[0])
            return rows
        finally:
            lib.MsiViewClose(view)
            lib.MsiCloseHandle(view)
            if record:
                lib.MsiCloseHandle(record)
            spool.cleanup()

    def codepage(self) -> int:
        with tempfile.TemporaryDirectory(prefix="msica-codepage-") as folder:
            self._call("MsiDatabaseExportW",
                       self._lib.MsiDatabaseExportW(self._live(), "_ForceCodepage", folder,
                                                    "codepage.idt"),
                       "cannot read the code page")
            with open(os.path.join(folder, "codepage.idt"), "rb") as file:
                return parse_force_codepage(file.read().decode("ascii", "replace"))

    def columns(self, sql: str) -> list[tuple[str, str]]:
        view = self._open_view(sql)
        try:
            names = self._column_info(view, _MSICOLINFO_NAMES)
            types = self._column_info(view, _MSICOLINFO_TYPES)
        finally:
            self._lib.MsiCloseHandle(view)
        return list(zip(names, types))

    # -- helpers -----------------------------------------------------------------

    def _live(self) -> int:
        if self._handle is None:
            raise AuthorError(f"{self.path} is closed")
        return self._handle

    def _call(self, function: str, code: int, what: str) -> None:
        from . import check

        try:
            check(code, function, 0)
        except InstallerError as error:
            raise AuthorError(f"{what}: {error}") from None

    def _open_view(self, sql: str) -> int:
        view = self._ffi.new("MSIHANDLE *")
        self._call("MsiDatabaseOpenViewW",
                   self._lib.MsiDatabaseOpenViewW(self._live(), sql, view), "bad query")
        return int(view[0])

    def _column_info(self, view: int, which: int) -> list[str]:
        info = self._ffi.new("MSIHANDLE *")
        self._call("MsiViewGetColumnInfo", self._lib.MsiViewGetColumnInfo(view, which, info),
                   "cannot read the columns")
        try:
            count = self._lib.MsiRecordGetFieldCount(info[0])
            return [str(self._field(info[0], i, "s")) for i in range(1, count + 1)]
        finally:
            self._lib.MsiCloseHandle(info[0])

    def _record(self, params: Sequence[Field], spool: str) -> int:
        lib = self._lib
        record = int(lib.MsiCreateRecord(len(params)))
        try:
            for number, value in enumerate(params, start=1):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (str, int, bytes)):
                    raise TypeError(f"cannot bind {type(value).__name__} to marker {number}")
                if isinstance(value, int):
                    code = lib.MsiRecordSetInteger(record, number, value)
                elif isinstance(value, str):
                    code = lib.MsiRecordSetStringW(record, number, value)
                else:
                    code = self._set_stream(record, number, value, spool)
                self._call("MsiRecordSet*", code, f"cannot bind marker {number}")
        except BaseException:
            lib.MsiCloseHandle(record)
            raise
        return record

    def _set_stream(self, record: int, number: int, data: bytes, spool: str) -> int:
        """msi.dll reads a stream field from a file: the bytes go through one in ``spool``."""
        if not data:
            return 0
        name = os.path.join(spool, f"field{number}")
        with open(name, "wb") as file:
            file.write(data)
        return int(self._lib.MsiRecordSetStreamW(record, number, name))

    def _field(self, record: Any, number: int, kind: str) -> Field:
        from . import get_string

        lib = self._lib
        if kind == "-" or lib.MsiRecordIsNull(record, number):
            return None
        if kind == "i":
            value = int(lib.MsiRecordGetInteger(record, number))
            return None if value == _MSI_NULL_INTEGER else value
        if kind == "v":
            return self._read_stream(record, number)
        return get_string(
            lambda buffer, size: lib.MsiRecordGetStringW(record, number, buffer, size),
            "MsiRecordGetStringW", 0,
        )

    def _read_stream(self, record: Any, number: int) -> bytes:
        ffi = self._ffi
        chunk = ffi.new("char[]", 65536)
        size = ffi.new("DWORD *")
        parts: list[bytes] = []
        while True:
            size[0] = 65536
            self._call("MsiRecordReadStream",
                       self._lib.MsiRecordReadStream(record, number, chunk, size),
                       "cannot read a stream")
            if size[0] == 0:
                return b"".join(parts)
            parts.append(bytes(ffi.buffer(chunk, size[0])))
