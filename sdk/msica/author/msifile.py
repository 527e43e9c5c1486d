"""A read-only reader of .msi databases in pure Python, over ``olefile``.

It needs neither msi.dll nor libmsi, so ``msica inspect`` and ``msica
validate`` run anywhere, and tests can re-read what libmsi wrote through an
independent implementation of the format.

The format, as Windows Installer and Wine's msi.dll store it:

- An .msi is an OLE compound file. Stream names are compressed: characters
  of ``[0-9A-Za-z._]`` are 6-bit codes, two of them packed into one UTF-16
  unit in ``0x3800..0x47FF``, a lone one in ``0x4800..0x483F``; a table's
  stream starts with the unit ``0x4840``. Other characters are kept as is.
- ``_StringPool`` starts with the code page (low 16 bits, then the high bits;
  ``0x8000`` in the second word marks 3-byte string references), then one
  (length, reference count) pair of 16-bit words per string id from 1. A
  string of 64 KiB or more takes two pairs: (0, refcount), (low, high) of
  its length. ``_StringData`` holds the strings back to back, unterminated.
- ``_Tables`` lists the table names (string ids); ``_Columns`` holds
  (Table, Number, Name, Type) for every column of every table.
- A table's stream stores its rows column by column: every row's first
  column, then every row's second column, and so on. Strings are string ids
  (2 bytes, or 3 with long references), integers are stored with their sign
  bit flipped (``value + 0x8000`` or ``value + 0x80000000``) so that 0 means
  NULL, and binary columns are 2-byte markers whose data lives in a stream
  named ``Table.Key1.Key2...``.

Every malformed input raises :class:`~msica.errors.MsiFileError` with a
one-line message that names the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar, Union

import olefile

from msica.errors import MsiFileError

Value = Union[str, int, None]
Row = dict[str, Value]

# Column type bits (the Type column of _Columns).
TYPE_SIZE_MASK = 0x00FF
TYPE_VALID = 0x0100
TYPE_LOCALIZABLE = 0x0200
TYPE_STRING = 0x0800
TYPE_NULLABLE = 0x1000
TYPE_KEY = 0x2000
TYPE_TEMPORARY = 0x4000

TABLE_PREFIX = "\u4840"
SUMMARY_STREAM = "\x05SummaryInformation"
_LONG_REFS_FLAG = 0x8000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MIME = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"

# Summary information property ids and the names they get in :attr:`MsiFile.summary`.
_SUMMARY_NAMES = {
    1: "codepage",
    2: "title",
    3: "subject",
    4: "author",
    5: "keywords",
    6: "comments",
    7: "template",
    8: "last_saved_by",
    9: "revision_number",
    14: "page_count",
    15: "word_count",
    16: "character_count",
    18: "creating_application",
    19: "security",
}


@dataclass(frozen=True)
class Column:
    """One column of a table, as ``_Columns`` declares it."""

    table: str
    number: int
    name: str
    type: int

    @property
    def is_binary(self) -> bool:
        """A stream column (``OBJECT`` in SQL): its data lives in a stream."""
        return (self.type & ~TYPE_NULLABLE) == (TYPE_STRING | TYPE_VALID)

    @property
    def is_string(self) -> bool:
        return bool(self.type & TYPE_STRING) and not self.is_binary

    @property
    def is_integer(self) -> bool:
        return not self.type & TYPE_STRING

    @property
    def size(self) -> int:
        """The declared size: a string's maximum length (0: unlimited), an integer's bytes."""
        return self.type & TYPE_SIZE_MASK

    @property
    def nullable(self) -> bool:
        return bool(self.type & TYPE_NULLABLE)

    @property
    def key(self) -> bool:
        """Part of the table's primary key."""
        return bool(self.type & TYPE_KEY)

    @property
    def localizable(self) -> bool:
        return bool(self.type & TYPE_LOCALIZABLE)

    @property
    def temporary(self) -> bool:
        return bool(self.type & TYPE_TEMPORARY)

    @property
    def kind(self) -> str:
        """``string``, ``binary``, ``int2`` or ``int4``."""
        if self.is_binary:
            return "binary"
        if self.is_string:
            return "string"
        return "int2" if self.size <= 2 else "int4"


def decode_stream_name(raw: str) -> tuple[str, bool]:
    """``(name, is_table)`` for a stream name as stored in the compound file."""
    is_table = raw.startswith(TABLE_PREFIX)
    if is_table:
        raw = raw[1:]
    out: list[str] = []
    for char in raw:
        code = ord(char)
        if 0x3800 <= code < 0x4800:
            code -= 0x3800
            out.append(_MIME[code & 0x3F])
            out.append(_MIME[(code >> 6) & 0x3F])
        elif 0x4800 <= code < 0x4840:
            out.append(_MIME[code - 0x4800])
        else:
            out.append(char)
    return "".join(out), is_table


def encode_stream_name(name: str, *, table: bool = False) -> str:
    """The stored form of stream ``name`` (``table``: a table's data stream)."""
    out = [TABLE_PREFIX] if table else []
    index = 0
    while index < len(name):
        first = _MIME.find(name[index])
        if first < 0:
            out.append(name[index])
            index += 1
            continue
        second = _MIME.find(name[index + 1]) if index + 1 < len(name) else -1
        if second >= 0:
            out.append(chr(0x3800 + first + (second << 6)))
            index += 2
        else:
            out.append(chr(0x4800 + first))
            index += 1
    return "".join(out)


def _codec(codepage: int) -> str | None:
    """The Python codec for an MSI code page; None for the neutral code page 0."""
    if codepage == 0:
        return None
    if codepage == 65001:
        return "utf-8"
    name = f"cp{codepage}"
    try:
        "".encode(name)
    except LookupError:
        return "cp1252"
    return name


class MsiFile:
    """An .msi database opened for reading; use as a context manager.

    ``MsiFile.open(path)`` or ``MsiFile.from_bytes(data, name)``. Tables
    are read on demand and kept.
    """

    def __init__(self, source: str | os.PathLike[str] | IO[bytes], name: str | None = None):
        if isinstance(source, (str, os.PathLike)):
            self.name = name or str(source)
            path = Path(source)
            try:
                data = path.read_bytes()
            except IsADirectoryError:
                raise self._error("is a directory, not an .msi") from None
            except OSError as error:
                raise self._error(f"cannot be read: {error.strerror or error}") from None
            handle: IO[bytes] = io.BytesIO(data)
        else:
            self.name = name or "<data>"
            handle = source
        if not _is_ole(handle):
            raise self._error(
                "is not an .msi: it is not an OLE compound file (wrong file, or truncated)"
            )
        try:
            self._ole = olefile.OleFileIO(handle)
        except Exception as error:
            raise self._error(f"is a damaged OLE compound file ({_brief(error)})") from None
        try:
            self._streams = self._list_streams()
            pool = self._raw_stream("_StringPool", table=True, what="string pool")
            data = self._raw_stream("_StringData", table=True, what="string data", empty=True)
            self.codepage, self.long_string_refs, self._strings = self._load_strings(pool, data)
            self._table_names = self._load_tables()
            self._columns = self._load_columns()
        except BaseException:
            self.close()
            raise
        self._rows: dict[str, list[Row]] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> MsiFile:
        """Open the .msi at ``path``."""
        return cls(path)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<data>") -> MsiFile:
        """Open an .msi held in memory; ``name`` is what error messages call it."""
        return cls(io.BytesIO(data), name)

    def close(self) -> None:
        ole = getattr(self, "_ole", None)
        if ole is not None:
            with contextlib.suppress(Exception):
                ole.close()
            self._ole = None

    def __enter__(self) -> MsiFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- public reading -------------------------------------------------

    def tables(self) -> list[str]:
        """The names of the tables, in ``_Tables`` order."""
        return list(self._table_names)

    def has_table(self, table: str) -> bool:
        return table in self._columns

    def columns(self, table: str) -> list[Column]:
        """The columns of ``table`` in order."""
        self._need_table(table)
        return list(self._columns[table])

    def primary_key(self, table: str) -> list[str]:
        """The names of ``table``'s key columns, in order."""
        return [column.name for column in self.columns(table) if column.key]

    def rows(self, table: str) -> list[Row]:
        """Every row of ``table``: column name -> str, int, or None (NULL).

        A binary column's value is the name of the stream that holds its
        data (read it with :meth:`stream`), or None.
        """
        self._need_table(table)
        if table not in self._rows:
            self._rows[table] = self._read_table(table, self._columns[table])
        return [dict(row) for row in self._rows[table]]

    def stream(self, table: str, key: str | int | Sequence[str | int]) -> bytes:
        """The data of the binary column in ``table``'s row with primary key ``key``."""
        self._need_table(table)
        parts = [key] if isinstance(key, (str, int)) else list(key)
        name = ".".join([table, *(str(part) for part in parts)])
        if not any(column.is_binary for column in self._columns[table]):
            raise self._error(f"table {table} has no binary column")
        raw = self._streams.get((name, False))
        if raw is None:
            raise self._error(f"has no stream {name!r} (no such row, or its data is NULL)")
        return self._read(raw, f"stream {name!r}")

    def streams(self) -> list[str]:
        """The names of the streams that are not tables (e.g. ``Binary.MyDll``)."""
        return sorted(name for name, is_table in self._streams if not is_table)

    @property
    def summary(self) -> dict[str, Value]:
        """The summary information: title, author, template, revision_number..., or {}."""
        raw = self._streams.get((SUMMARY_STREAM, False))
        if raw is None:
            return {}
        data = self._read(raw, "summary information")
        properties = _parse_property_set(data)
        if properties is None:
            raise self._error("has damaged summary information (a malformed property set)")
        result: dict[str, Value] = {}
        codepage = properties.get(1)
        codec = _codec(codepage if isinstance(codepage, int) else self.codepage) or "cp1252"
        for pid, value in properties.items():
            label = _SUMMARY_NAMES.get(pid)
            if label is None:
                continue
            if isinstance(value, bytes):
                result[label] = value.split(b"\x00", 1)[0].decode(codec, errors="replace")
            else:
                result[label] = value
        return result

    # -- loading ----------------------------------------------------------

    def _error(self, what: str) -> MsiFileError:
        """The error for ``what`` is wrong, on one line whatever names the file holds."""
        text = f"{self.name}: {what}"
        return MsiFileError(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))

    def _need_table(self, table: str) -> None:
        if table not in self._columns:
            raise self._error(f"has no {table} table")

    def _list_streams(self) -> dict[tuple[str, bool], str]:
        try:
            entries = self._ole.listdir(streams=True, storages=False)
        except Exception as error:
            raise self._error(f"has a damaged directory ({_brief(error)})") from None
        streams: dict[tuple[str, bool], str] = {}
        for entry in entries:
            if len(entry) != 1:  # inside a sub-storage (an embedded transform)
                continue
            streams[decode_stream_name(entry[0])] = entry[0]
        return streams

    def _read(self, raw: str, what: str) -> bytes:
        try:
            with self._ole.openstream(raw) as handle:
                return bytes(handle.read())
        except Exception as error:
            raise self._error(f"has a damaged {what} ({_brief(error)})") from None

    def _raw_stream(self, name: str, *, table: bool, what: str, empty: bool = False) -> bytes:
        """A system stream; ``empty``: a missing one reads as empty (as empty tables do)."""
        raw = self._streams.get((name, table))
        if raw is None and empty:
            return b""
        if raw is None:
            raise self._error(f"is not an .msi database: it has no {name} stream ({what})")
        return self._read(raw, f"{name} stream")

    def _load_strings(self, pool: bytes, data: bytes) -> tuple[int, bool, list[str | None]]:
        if len(pool) < 4 or len(pool) % 4:
            raise self._error(f"has a damaged _StringPool: {len(pool)} bytes is not 4 per entry")
        words = memoryview(pool).cast("H")
        long_refs = bool(words[1] & _LONG_REFS_FLAG)
        codepage = words[0] | ((words[1] & ~_LONG_REFS_FLAG) << 16)
        codec = _codec(codepage)
        strings: list[str | None] = [None]
        count = len(words) // 2
        offset = 0
        slot = 1
        while slot < count:
            length, refs = words[slot * 2], words[slot * 2 + 1]
            if length == 0 and refs == 0:
                strings.append(None)
                slot += 1
                continue
            if length == 0:
                if slot + 1 >= count:
                    raise self._error("has a damaged _StringPool: a long string lacks its length")
                length = words[slot * 2 + 2] | (words[slot * 2 + 3] << 16)
                slot += 2
            else:
                slot += 1
            if offset + length > len(data):
                raise self._error(
                    f"has a damaged string pool: string {len(strings)} runs past the end "
                    f"of _StringData ({len(data)} bytes)"
                )
            strings.append(_decode(data[offset : offset + length], codec))
            offset += length
        if offset != len(data):
            raise self._error(
                f"has a damaged string pool: _StringData has {len(data) - offset} bytes "
                "that no string uses"
            )
        return codepage, long_refs, strings

    def _string(self, ident: int, where: str) -> str | None:
        if ident == 0:
            return None
        if ident >= len(self._strings):
            raise self._error(f"has a damaged {where}: string id {ident} is not in the pool")
        return self._strings[ident]  # None for an empty slot, as the engine reads it

    def _load_tables(self) -> list[str]:
        width = 3 if self.long_string_refs else 2
        data = self._raw_stream("_Tables", table=True, what="the list of tables", empty=True)
        if len(data) % width:
            raise self._error("has a damaged _Tables stream: its size is not a whole row count")
        names = []
        for index in range(len(data) // width):
            ident = int.from_bytes(data[index * width : (index + 1) * width], "little")
            name = self._string(ident, "_Tables stream")
            if name is None:
                raise self._error("has a damaged _Tables stream: a table without a name")
            names.append(name)
        return names

    def _load_columns(self) -> dict[str, list[Column]]:
        schema = [
            Column("_Columns", 1, "Table", TYPE_VALID | TYPE_STRING | TYPE_KEY | 64),
            Column("_Columns", 2, "Number", TYPE_VALID | TYPE_KEY | 2),
            Column("_Columns", 3, "Name", TYPE_VALID | TYPE_STRING | 64),
            Column("_Columns", 4, "Type", TYPE_VALID | 2),
        ]
        data = self._raw_stream("_Columns", table=True, what="the table schemas", empty=True)
        found: dict[str, dict[int, Column]] = {name: {} for name in self._table_names}
        for row in self._decode_rows("_Columns", schema, data):
            table, number, name, kind = row["Table"], row["Number"], row["Name"], row["Type"]
            if not isinstance(table, str) or not isinstance(name, str):
                raise self._error("has a damaged _Columns table: a column without a name")
            if not isinstance(number, int) or not isinstance(kind, int):
                raise self._error(f"has a damaged _Columns table: column {table}.{name}")
            if table not in found:
                raise self._error(f"has a damaged _Columns table: table {table} is not in _Tables")
            if not 1 <= number <= 32 or number in found[table]:
                raise self._error(
                    f"has a damaged _Columns table: {table}.{name} has column number {number}"
                )
            column = Column(table, number, name, kind)
            if column.is_integer and column.size not in (1, 2, 4):
                raise self._error(
                    f"has a damaged _Columns table: {table}.{name} is an integer of "
                    f"{column.size} bytes"
                )
            found[table][number] = column
        columns: dict[str, list[Column]] = {}
        for table, by_number in found.items():
            if sorted(by_number) != list(range(1, len(by_number) + 1)) or not by_number:
                raise self._error(
                    f"has a damaged _Columns table: the columns of {table} are not numbered "
                    "1, 2, 3..."
                )
            columns[table] = [by_number[n] for n in sorted(by_number)]
        return columns

    def _width(self, column: Column) -> int:
        if column.is_binary:
            return 2
        if column.is_string:
            return 3 if self.long_string_refs else 2
        return 2 if column.size <= 2 else 4

    def _read_table(self, table: str, columns: list[Column]) -> list[Row]:
        raw = self._streams.get((table, True))
        if raw is None:  # an empty table has no stream
            return []
        data = self._read(raw, f"{table} table")
        rows = self._decode_rows(table, columns, data)
        keys = [column for column in columns if column.key]
        if keys:
            for row in rows:
                for column in columns:
                    if column.is_binary and row[column.name] is not None:
                        row[column.name] = ".".join(
                            [table, *("" if row[k.name] is None else str(row[k.name])
                                      for k in keys)]
                        )
        return rows

    def _decode_rows(self, table: str, columns: list[Column], data: bytes) -> list[Row]:
        widths = [self._width(column) for column in columns]
        row_size = sum(widths)
        if len(data) % row_size:
            raise self._error(
                f"has a damaged {table} table: {len(data)} bytes is not a whole number of "
                f"{row_size}-byte rows"
            )
        count = len(data) // row_size
        rows: list[Row] = [{} for _ in range(count)]
        offset = 0
        for column, width in zip(columns, widths):
            for row in rows:
                stored = int.from_bytes(data[offset : offset + width], "little")
                offset += width
                row[column.name] = self._value(table, column, width, stored)
        return rows

    def _value(self, table: str, column: Column, width: int, stored: int) -> Value:
        if column.is_binary:
            return None if stored == 0 else stored
        if column.is_string:
            return self._string(stored, f"{table} table")
        if stored == 0:
            return None
        return stored - (0x8000 if width == 2 else 0x80000000)


# Property types that summary information uses (VT_*).
_VT_I2, _VT_I4, _VT_LPSTR, _VT_FILETIME = 2, 3, 30, 64
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1)


_T = TypeVar("_T")


def read_with(source: str | os.PathLike[str] | MsiFile,
              read: Callable[[MsiFile, str], _T]) -> _T:
    """``read(msi, name)`` on ``source``: an open MsiFile as it is, or the package at a
    path, opened for the call and closed after it."""
    if isinstance(source, MsiFile):
        return read(source, source.name)
    with MsiFile.open(source) as msi:
        return read(msi, str(source))


def _parse_property_set(data: bytes) -> dict[int, str | int | bytes | None] | None:
    """The properties of the first property set in ``data``, or None if it is malformed.

    Our own bounded reader of [MS-OLEPS] for the four types summary information
    uses (olefile's follows vector counts from the file unchecked).
    """
    def u16(at: int) -> int:
        return int.from_bytes(data[at : at + 2], "little")

    def u32(at: int) -> int:
        return int.from_bytes(data[at : at + 4], "little")

    if len(data) < 48 or u16(0) != 0xFFFE or u32(24) < 1:
        return None
    start = u32(44)
    if start + 8 > len(data):
        return None
    size, count = u32(start), u32(start + 4)
    end = start + size
    if end > len(data) or count > (size - 8) // 8:
        return None
    result: dict[int, str | int | bytes | None] = {}
    for index in range(count):
        pid = u32(start + 8 + index * 8)
        at = start + u32(start + 12 + index * 8)
        if at + 4 > end:
            return None
        kind = u16(at)
        value: str | int | bytes | None
        if kind == _VT_I2 and at + 6 <= end:
            value = int.from_bytes(data[at + 4 : at + 6], "little", signed=True)
        elif kind == _VT_I4 and at + 8 <= end:
            value = int.from_bytes(data[at + 4 : at + 8], "little", signed=True)
        elif kind == _VT_LPSTR and at + 8 <= end and at + 8 + u32(at + 4) <= end:
            value = data[at + 8 : at + 8 + u32(at + 4)]
        elif kind == _VT_FILETIME and at + 12 <= end:
            ticks = int.from_bytes(data[at + 4 : at + 12], "little")
            try:
                moment = _FILETIME_EPOCH + datetime.timedelta(microseconds=ticks // 10)
            except OverflowError:
                return None
            value = moment.isoformat(sep=" ", timespec="seconds")
        elif kind in (_VT_I2, _VT_I4, _VT_LPSTR, _VT_FILETIME):
            return None
        else:
            value = None
        result[pid] = value
    return result


def _is_ole(handle: IO[bytes]) -> bool:
    try:
        handle.seek(0)
        head = handle.read(8)
        handle.seek(0)
    except Exception:
        return False
    return bool(head == olefile.MAGIC)


def _decode(data: bytes, codec: str | None) -> str:
    if codec is None:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")
    return data.decode(codec, errors="replace")


def _brief(error: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:120]


__all__ = ["Column", "MsiFile", "Row", "Value", "decode_stream_name", "encode_stream_name"]
