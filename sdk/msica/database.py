"""The installer database of the running install (MsiGetActiveDatabase).

Inside a custom action the database is read-only but for temporary rows and
tables: ``INSERT ... TEMPORARY`` rows are seen by later actions of the same
install. Values are always bound with ``?`` markers (MSI SQL has no escaping
in string literals); table and column names go in backquotes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from msica import _native
from msica.enums import Condition, ViewModify
from msica.errors import FunctionFailedError
from msica.record import Field, Handle, Record

if TYPE_CHECKING:
    from msica.session import Session

ERROR_NO_MORE_ITEMS = 259

# Summary information property ids (PID_*) and names.
SUMMARY_PROPERTIES = {
    "codepage": 1, "title": 2, "subject": 3, "author": 4, "keywords": 5, "comments": 6,
    "template": 7, "last_saved_by": 8, "revision_number": 9, "page_count": 14,
    "word_count": 15, "character_count": 16, "creating_application": 18, "security": 19,
}
_VT_I2, _VT_I4, _VT_LPSTR, _VT_FILETIME = 2, 3, 30, 64


class View(Handle):
    """A prepared query (MsiDatabaseOpenViewW): execute it, then iterate its Records."""

    def execute(self, *params: Field) -> View:
        """Run the query with ``params`` bound to its ``?`` markers (MsiViewExecute)."""
        _, lib = _native.msi()
        if params:
            with Record.of(params) as record:
                _native.check(lib.MsiViewExecute(self.handle, record.handle),
                              "MsiViewExecute", 0)
        else:
            _native.check(lib.MsiViewExecute(self.handle, 0), "MsiViewExecute", 0)
        return self

    def __iter__(self) -> Iterator[Record]:
        """The rows, each a Record the caller may keep (MsiViewFetch)."""
        ffi, lib = _native.msi()
        handle = ffi.new("MSIHANDLE *")
        while True:
            code = lib.MsiViewFetch(self.handle, handle)
            if code == ERROR_NO_MORE_ITEMS:
                return
            _native.check(code, "MsiViewFetch", 0)
            yield Record(int(handle[0]))

    def modify(self, mode: ViewModify, record: Record) -> None:
        """Apply ``record`` to the view's table (MsiViewModify). Inside an action only
        temporary rows can change; the helpers below name the usual modes."""
        _, lib = _native.msi()
        _native.check(lib.MsiViewModify(self.handle, int(mode), record.handle),
                      "MsiViewModify", 0)

    def insert_temporary(self, record: Record) -> None:
        """Add ``record`` as a row that lasts for this install (MSIMODIFY_INSERT_TEMPORARY)."""
        self.modify(ViewModify.INSERT_TEMPORARY, record)

    def update(self, record: Record) -> None:
        """Write back a fetched ``record`` whose fields were changed (MSIMODIFY_UPDATE)."""
        self.modify(ViewModify.UPDATE, record)

    def delete(self, record: Record) -> None:
        """Remove the row a fetched ``record`` came from (MSIMODIFY_DELETE)."""
        self.modify(ViewModify.DELETE, record)

    def close(self) -> None:
        """End the query (MsiViewClose) and give the handle back."""
        if self.handle:
            _, lib = _native.msi()
            lib.MsiViewClose(self.handle)
        super().close()

    def __enter__(self) -> View:
        return self


class Database(Handle):
    """The active database: ``execute`` for rows, ``view`` to iterate, ``tables``, ``summary``."""

    @classmethod
    def of(cls, session: Session) -> Database:
        """The database of ``session``'s install (MsiGetActiveDatabase)."""
        _, lib = _native.msi()
        handle = int(lib.MsiGetActiveDatabase(session.handle))
        if not handle:
            raise FunctionFailedError(1627, "MsiGetActiveDatabase", "no active database")
        return cls(handle)

    def view(self, sql: str) -> View:
        """A View of ``sql`` (MsiDatabaseOpenViewW); use it in a ``with``."""
        ffi, lib = _native.msi()
        handle = ffi.new("MSIHANDLE *")
        _native.check(lib.MsiDatabaseOpenViewW(self.handle, sql, handle),
                      "MsiDatabaseOpenViewW", 0)
        return View(int(handle[0]))

    def execute(self, sql: str, *params: Field) -> list[tuple[Field, ...]]:
        """Run ``sql`` with ``params`` bound to its ``?`` markers; the rows, as tuples."""
        with self.view(sql) as view:
            rows = []
            for record in view.execute(*params):
                with record:
                    rows.append(record.values())
            return rows

    def has_table(self, table: str) -> bool:
        """Whether ``table`` exists, persistent or temporary (MsiDatabaseIsTablePersistentW)."""
        _, lib = _native.msi()
        answer = int(lib.MsiDatabaseIsTablePersistentW(self.handle, table))
        if answer == Condition.ERROR:
            raise ValueError(f"{table!r} is not a table name")
        return answer != Condition.NONE

    @property
    def tables(self) -> list[str]:
        """The names of the persistent tables (the _Tables table), sorted."""
        return sorted(str(row[0]) for row in self.execute("SELECT `Name` FROM `_Tables`"))

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``table`` has ``column`` (the _Columns table)."""
        return bool(self.execute(
            "SELECT `Number` FROM `_Columns` WHERE `Table` = ? AND `Name` = ?", table, column
        ))

    @property
    def summary(self) -> dict[str, str | int]:
        """The summary information stream, by property name (MsiSummaryInfoGetPropertyW)."""
        ffi, lib = _native.msi()
        handle = ffi.new("MSIHANDLE *")
        _native.check(lib.MsiGetSummaryInformationW(self.handle, ffi.NULL, 0, handle),
                      "MsiGetSummaryInformationW", 0)
        with Handle(int(handle[0])) as info:
            values: dict[str, str | int] = {}
            for name, pid in SUMMARY_PROPERTIES.items():
                value = _summary_value(info.handle, pid)
                if value is not None:
                    values[name] = value
            return values

    def __enter__(self) -> Database:
        return self


def _summary_value(info: int, pid: int) -> str | int | None:
    """One summary information property: int, str, or None when empty or a FILETIME."""
    ffi, lib = _native.msi()
    kind = ffi.new("UINT *")
    number = ffi.new("int *")
    filetime = ffi.new("unsigned char[8]")  # Wine's remote call refuses NULL here (1780)

    def call(buffer: object, size: object) -> int:
        return int(lib.MsiSummaryInfoGetPropertyW(info, pid, kind, number, filetime, buffer,
                                                  size))

    text = _native.get_string(call, "MsiSummaryInfoGetPropertyW", 0)
    if kind[0] in (_VT_I2, _VT_I4):
        return int(number[0])
    return text if kind[0] == _VT_LPSTR else None
