"""Records, and the one base class of every MSI handle msica wraps.

A :class:`Record` is the row a :class:`~msica.database.View` fetches and the
parameter list a query binds: fields 1..n hold a string, an integer or
nothing (None), field 0 a format template.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

from msica import _native

Field = Union[str, int, None]

_NULL_INTEGER = -0x80000000  # MSI_NULL_INTEGER


class Handle:
    """An MSIHANDLE this process owns: closed by :meth:`close` or at the end of a ``with``."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def close(self) -> None:
        """Give the handle back to the engine (MsiCloseHandle); closing twice is harmless."""
        if self.handle:
            _, lib = _native.msi()
            lib.MsiCloseHandle(self.handle)
            self.handle = 0

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:  # noqa: SIM105 - contextlib is kept off the action's import path
            self.close()
        except Exception:  # interpreter shutdown: the engine reclaims it anyway
            pass


class Record(Handle):
    """A record: ``record[i]`` reads field i (MsiRecordGetStringW / MsiRecordGetInteger)."""

    @classmethod
    def of(cls, fields: Iterable[Field], template: str | None = None) -> Record:
        """A new record holding ``fields`` in 1..n (MsiCreateRecord), and ``template`` in 0."""
        values = list(fields)
        _, lib = _native.msi()
        record = cls(lib.MsiCreateRecord(len(values)))
        if template is not None:
            record[0] = template
        for index, value in enumerate(values, start=1):
            record[index] = value
        return record

    def __len__(self) -> int:
        """The number of fields, not counting field 0 (MsiRecordGetFieldCount)."""
        _, lib = _native.msi()
        return int(lib.MsiRecordGetFieldCount(self.handle))

    def __getitem__(self, index: int) -> Field:
        """Field ``index``: None when null, int when it holds an integer, else str."""
        _, lib = _native.msi()
        if lib.MsiRecordIsNull(self.handle, index):
            return None
        number = int(lib.MsiRecordGetInteger(self.handle, index))
        if number != _NULL_INTEGER:
            return number
        return self.get_string(index)

    def get_string(self, index: int) -> str:
        """Field ``index`` as text, integers included (MsiRecordGetStringW)."""
        _, lib = _native.msi()
        return _native.get_string(
            lambda buffer, size: lib.MsiRecordGetStringW(self.handle, index, buffer, size),
            "MsiRecordGetStringW", 0,
        )

    def __setitem__(self, index: int, value: Field) -> None:
        """Set field ``index`` (MsiRecordSetStringW / MsiRecordSetInteger); None makes it null."""
        _, lib = _native.msi()
        if isinstance(value, int) and not isinstance(value, bool):
            _native.check(lib.MsiRecordSetInteger(self.handle, index, value),
                          "MsiRecordSetInteger", 0)
        else:
            _native.check(lib.MsiRecordSetStringW(self.handle, index, value or ""),
                          "MsiRecordSetStringW", 0)

    def values(self) -> tuple[Field, ...]:
        """Fields 1..n."""
        return tuple(self[index] for index in range(1, len(self) + 1))

    def __repr__(self) -> str:
        return f"Record{self.values()!r}"
