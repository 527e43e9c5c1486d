"""Offline .msi databases through msitools' libmsi (``libmsi.so.0``), cffi ABI mode.

libmsi is Wine's msi database code turned into a GObject library: every call
that can fail takes a ``GError **``; records, queries and databases are
GObjects released with ``g_object_unref``; stream fields are ``GInputStream``
objects (a memory stream from gio carries bytes in).

Two faults of libmsi 0.101 (Debian's libmsi0), measured, shape the callers:
a failed INSERT leaves a row holding only the key, so callers look a key up
before inserting rather than relying on the INSERT to fail; and a TEMPORARY
row makes a commit drop the persistent rows inserted after it, so nothing
here creates temporary rows. Also measured: NOT NULL is not enforced (an
INSERT leaving a required field null succeeds), and text the database's code
page cannot hold is stored as null or crashes the commit, which
:class:`msica.author.package.Package` refuses before it gets here.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from typing import Any, Union

from msica.errors import AuthorError

# A value bound to a ``?`` marker, or read from a field: bytes are streams.
Field = Union[str, int, bytes, None]

# LibmsiDbFlags
FLAG_READONLY = 1
FLAG_CREATE = 2
FLAG_TRANSACT = 4

# LibmsiColInfo
_COL_NAMES = 0
_COL_TYPES = 1

# The integer libmsi (like msi.dll) uses for a null integer field.
NULL_INTEGER = -0x80000000

CDEF = """
typedef unsigned int guint;
typedef int gboolean;
typedef unsigned int GQuark;
typedef struct { GQuark domain; int code; char *message; } GError;
typedef struct _LibmsiDatabase LibmsiDatabase;
typedef struct _LibmsiQuery LibmsiQuery;
typedef struct _LibmsiRecord LibmsiRecord;
typedef struct _GInputStream GInputStream;
typedef struct _LibmsiSummaryInfo LibmsiSummaryInfo;

LibmsiDatabase *libmsi_database_new(const char *path, guint flags, const char *persist,
                                    GError **error);
gboolean libmsi_database_commit(LibmsiDatabase *db, GError **error);
gboolean libmsi_database_export(LibmsiDatabase *db, const char *table, int fd, GError **error);
LibmsiQuery *libmsi_query_new(LibmsiDatabase *db, const char *query, GError **error);
gboolean libmsi_query_execute(LibmsiQuery *query, LibmsiRecord *rec, GError **error);
LibmsiRecord *libmsi_query_fetch(LibmsiQuery *query, GError **error);
gboolean libmsi_query_close(LibmsiQuery *query, GError **error);
LibmsiRecord *libmsi_query_get_column_info(LibmsiQuery *query, int info, GError **error);
LibmsiRecord *libmsi_record_new(guint count);
guint libmsi_record_get_field_count(const LibmsiRecord *record);
gboolean libmsi_record_is_null(const LibmsiRecord *record, guint field);
gboolean libmsi_record_set_int(LibmsiRecord *record, guint field, int value);
int libmsi_record_get_int(const LibmsiRecord *record, guint field);
gboolean libmsi_record_set_string(LibmsiRecord *record, guint field, const char *value);
char *libmsi_record_get_string(const LibmsiRecord *record, guint field);
gboolean libmsi_record_set_stream(LibmsiRecord *record, guint field, GInputStream *input,
                                  size_t count, void *cancellable, GError **error);
GInputStream *libmsi_record_get_stream(LibmsiRecord *record, guint field);
LibmsiSummaryInfo *libmsi_summary_info_new(LibmsiDatabase *database, guint update_count,
                                           GError **error);
const char *libmsi_summary_info_get_string(LibmsiSummaryInfo *si, int prop, GError **error);
gboolean libmsi_summary_info_set_string(LibmsiSummaryInfo *si, int prop, const char *value,
                                        GError **error);
gboolean libmsi_summary_info_persist(LibmsiSummaryInfo *si, GError **error);
"""

GLIB_CDEF = """
void g_free(void *mem);
void g_error_free(GError *error);
void g_object_unref(void *object);
GInputStream *g_memory_input_stream_new_from_data(const void *data, ptrdiff_t len,
                                                  void *destroy);
ptrdiff_t g_input_stream_read(GInputStream *stream, void *buffer, size_t count,
                              void *cancellable, GError **error);
typedef void (*GLogFunc)(const char *domain, int level, const char *message, void *data);
guint g_log_set_handler(const char *domain, int levels, GLogFunc func, void *data);
"""

# GLogLevelFlags: critical, warning, message, info, debug.
_LOG_LEVELS = 0xF8

_log = logging.getLogger(__name__)

_LIBRARIES = {
    "msi": ("libmsi.so.0", "libmsi.0.dylib", "msi"),
    "glib": ("libglib-2.0.so.0", "libglib-2.0.0.dylib", "glib-2.0"),
    "gobject": ("libgobject-2.0.so.0", "libgobject-2.0.0.dylib", "gobject-2.0"),
    "gio": ("libgio-2.0.so.0", "libgio-2.0.0.dylib", "gio-2.0"),
}

_lock = threading.Lock()


class _Libraries:
    """``ffi`` and the four libraries, bound once per process."""

    def __init__(self) -> None:
        import cffi

        self.ffi = cffi.FFI()
        self.ffi.cdef(CDEF + GLIB_CDEF)
        self.msi = _dlopen(self.ffi, "msi")
        self.glib = _dlopen(self.ffi, "glib")
        self.gobject = _dlopen(self.ffi, "gobject")
        self.gio = _dlopen(self.ffi, "gio")
        # libmsi reports the cause of a failure (a missing table, a bad column) only
        # as a GLib warning on stderr, and its GError says no more than the function
        # name. The warnings of the null log domain (libmsi's) are kept per thread
        # instead, to explain the error the call then returns, and logged at debug.
        self.messages = threading.local()
        self._handler = self.ffi.callback("GLogFunc", self._on_log)
        self.glib.g_log_set_handler(self.ffi.NULL, _LOG_LEVELS, self._handler, self.ffi.NULL)

    def _on_log(self, domain: Any, level: int, message: Any, data: Any) -> None:
        text = self.ffi.string(message).decode("utf-8", "replace").strip() if message else ""
        _log.debug("libmsi: %s", text)
        self.recent().append(text)

    def recent(self) -> list[str]:
        """The libmsi messages of this thread since :meth:`forget`."""
        kept: list[str] | None = getattr(self.messages, "kept", None)
        if kept is None:
            kept = self.messages.kept = []
        return kept

    def forget(self) -> None:
        self.recent().clear()


_libs: _Libraries | None = None


def _dlopen(ffi: Any, which: str) -> Any:
    linux, macos, short = _LIBRARIES[which]
    names = [linux, macos]
    found = ctypes.util.find_library(short)
    if found:
        names.append(found)
    for name in names:
        try:
            return ffi.dlopen(name)
        except OSError:
            continue
    hint = "apt install libmsi0" if which == "msi" else "install GLib"
    raise AuthorError(f"cannot load {linux} ({hint}; on macOS: brew install msitools)")


def libraries() -> _Libraries:
    global _libs
    with _lock:
        if _libs is None:
            _libs = _Libraries()
        return _libs


def available() -> bool:
    """True when libmsi and GLib can be loaded here."""
    try:
        libraries()
    except AuthorError:
        return False
    return True


def _take_error(libs: _Libraries, error: Any, what: str) -> AuthorError:
    """An AuthorError for a failed call, saying why as libmsi told it; frees the GError."""
    message = ""
    if error[0] != libs.ffi.NULL:
        raw = error[0].message
        message = libs.ffi.string(raw).decode("utf-8", "replace") if raw else ""
        libs.glib.g_error_free(error[0])
        error[0] = libs.ffi.NULL
    # The GError holds the failing function's name at best; the warnings say why.
    said = [m for m in libs.recent() if m]
    libs.forget()
    if said:
        message = "; ".join(dict.fromkeys(said))
    elif message.startswith(("libmsi_", "init")):
        message = ""
    return AuthorError(f"{what}: {message}" if message else what)


class Database:
    """One open .msi. ``write``: changes go to the same file on :meth:`commit`."""

    def __init__(self, path: str | os.PathLike[str], *, write: bool = False,
                 create: bool = False) -> None:
        self._libs = libs = libraries()
        self.path = os.fspath(path)
        flags = FLAG_CREATE if create else FLAG_TRANSACT if write else FLAG_READONLY
        libs.forget()
        error = libs.ffi.new("GError **")
        handle = libs.msi.libmsi_database_new(self.path.encode(), flags, libs.ffi.NULL, error)
        if handle == libs.ffi.NULL:
            raise _take_error(libs, error, "not a Windows Installer database")
        self._handle: Any = handle

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        if self._handle is not None:
            self._libs.gobject.g_object_unref(self._handle)
            self._handle = None

    def commit(self) -> None:
        libs = self._libs
        libs.forget()
        error = libs.ffi.new("GError **")
        if not libs.msi.libmsi_database_commit(self._live(), error):
            raise _take_error(libs, error, "cannot write the database")

    def codepage(self) -> int:
        """The code page the database stores text in (0: neutral), as _ForceCodepage says."""
        libs = self._libs
        error = libs.ffi.new("GError **")
        with tempfile.TemporaryFile() as file:
            if not libs.msi.libmsi_database_export(self._live(), b"_ForceCodepage",
                                                   file.fileno(), error):
                raise _take_error(libs, error, "cannot read the code page")
            file.seek(0)
            return parse_force_codepage(file.read().decode("ascii", "replace"))

    def _summary_info(self, update: int, what: str) -> tuple[Any, Any]:
        """The summary information (``update`` > 0 to write it) and a fresh error slot;
        the caller unrefs the first."""
        libs = self._libs
        libs.forget()
        error = libs.ffi.new("GError **")
        info = libs.msi.libmsi_summary_info_new(self._live(), update, error)
        if info == libs.ffi.NULL:
            raise _take_error(libs, error, f"cannot {what} the summary information")
        return info, error

    def summary_text(self, pid: int) -> str | None:
        """Text property ``pid`` of the summary information stream (None when unset)."""
        libs = self._libs
        info, error = self._summary_info(0, "read")
        try:
            raw = libs.msi.libmsi_summary_info_get_string(info, pid, error)
            if raw == libs.ffi.NULL:
                if error[0] != libs.ffi.NULL:
                    _take_error(libs, error, "")  # unset or not text: no value
                return None
            return str(libs.ffi.string(raw).decode("utf-8", "replace"))
        finally:
            libs.gobject.g_object_unref(info)

    def set_summary_text(self, pid: int, value: str) -> None:
        """Set text property ``pid`` of the summary information (written on commit)."""
        libs = self._libs
        info, error = self._summary_info(1, "open")
        try:
            if not (libs.msi.libmsi_summary_info_set_string(info, pid, value.encode(), error)
                    and libs.msi.libmsi_summary_info_persist(info, error)):
                raise _take_error(libs, error, "cannot write the summary information")
        finally:
            libs.gobject.g_object_unref(info)

    def _live(self) -> Any:
        if self._handle is None:
            raise AuthorError(f"{self.path} is closed")
        return self._handle

    # -- queries -----------------------------------------------------------------

    def run(self, sql: str, params: Sequence[Field] = (), *,
            streams: bool = True) -> list[tuple[Field, ...]]:
        """Execute ``sql`` with ``params`` bound to its ``?`` markers; the rows it yields.

        Stream columns come back as bytes (None unless ``streams``); a statement that
        yields no rows (INSERT, UPDATE, DELETE, CREATE...) gives an empty list.
        """
        libs = self._libs
        ffi, msi = libs.ffi, libs.msi
        query, error = self._query(sql)
        record = ffi.NULL
        try:
            if params:
                record = self._record(params)
            if not msi.libmsi_query_execute(query, record, error):
                raise _take_error(libs, error, "the query failed")
            if sql.lstrip()[:6].upper() != "SELECT":
                return []
            kinds = self._column_kinds(query)
            if not streams:
                kinds = ["-" if kind == "v" else kind for kind in kinds]
            rows = []
            while True:
                row = msi.libmsi_query_fetch(query, error)
                if row == ffi.NULL:
                    if error[0] != ffi.NULL:
                        code = error[0].code
                        exc = _take_error(libs, error, "cannot read a row")
                        if code != _NO_MORE_ITEMS:
                            raise exc
                    break
                try:
                    rows.append(tuple(self._field(row, i + 1, kind)
                                      for i, kind in enumerate(kinds)))
                finally:
                    libs.gobject.g_object_unref(row)
            return rows
        finally:
            msi.libmsi_query_close(query, ffi.NULL)
            libs.gobject.g_object_unref(query)
            if record != ffi.NULL:
                libs.gobject.g_object_unref(record)

    def columns(self, sql: str) -> list[tuple[str, str]]:
        """``(name, type)`` of each column ``sql`` (a SELECT) yields; types as in _Columns
        text form: ``s72``, ``I2``, ``v0``..."""
        query, _ = self._query(sql)
        try:
            names = self._column_info(query, _COL_NAMES)
            types = self._column_info(query, _COL_TYPES)
        finally:
            self._libs.gobject.g_object_unref(query)
        return list(zip(names, types))

    def _query(self, sql: str) -> tuple[Any, Any]:
        """A new query for ``sql`` and a fresh error slot; the caller unrefs the first."""
        libs = self._libs
        libs.forget()
        error = libs.ffi.new("GError **")
        query = libs.msi.libmsi_query_new(self._live(), sql.encode("utf-8"), error)
        if query == libs.ffi.NULL:
            raise _take_error(libs, error, "bad query")
        return query, error

    def _column_info(self, query: Any, which: int) -> list[str]:
        libs = self._libs
        error = libs.ffi.new("GError **")
        info = libs.msi.libmsi_query_get_column_info(query, which, error)
        if info == libs.ffi.NULL:
            raise _take_error(libs, error, "cannot read the columns")
        try:
            count = libs.msi.libmsi_record_get_field_count(info)
            return [str(self._field(info, i, "s")) for i in range(1, count + 1)]
        finally:
            libs.gobject.g_object_unref(info)

    def _column_kinds(self, query: Any) -> list[str]:
        """'s', 'i' or 'v' (stream) per column of an executed query."""
        return [t[:1].lower() for t in self._column_info(query, _COL_TYPES)]

    # -- records -----------------------------------------------------------------

    def _record(self, params: Sequence[Field]) -> Any:
        libs = self._libs
        msi = libs.msi
        record = msi.libmsi_record_new(len(params))
        for number, value in enumerate(params, start=1):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int, bytes)):
                libs.gobject.g_object_unref(record)
                raise TypeError(f"cannot bind {type(value).__name__} to marker {number}")
            if isinstance(value, int):
                ok = msi.libmsi_record_set_int(record, number, value)
            elif isinstance(value, str):
                ok = msi.libmsi_record_set_string(record, number, value.encode("utf-8"))
            else:
                ok = self._set_stream(record, number, value)
            if not ok:
                libs.gobject.g_object_unref(record)
                raise AuthorError(f"cannot bind marker {number}")
        return record

    def _set_stream(self, record: Any, number: int, data: bytes) -> bool:
        libs = self._libs
        ffi = libs.ffi
        if not data:
            return True  # libmsi refuses an empty stream; a null field reads the same
        buffer = ffi.from_buffer(data)
        stream = libs.gio.g_memory_input_stream_new_from_data(buffer, len(data), ffi.NULL)
        try:
            error = ffi.new("GError **")
            ok = libs.msi.libmsi_record_set_stream(record, number, stream, len(data),
                                                   ffi.NULL, error)
            if not ok:
                raise _take_error(libs, error, f"cannot bind {len(data)} bytes to marker {number}")
            return True
        finally:
            libs.gobject.g_object_unref(stream)

    def _field(self, record: Any, number: int, kind: str) -> Field:
        libs = self._libs
        ffi, msi = libs.ffi, libs.msi
        if kind == "-":
            return None
        if kind == "v":
            stream = msi.libmsi_record_get_stream(record, number)
            if stream == ffi.NULL:
                return None
            try:
                return _read_all(libs, stream)
            finally:
                libs.gobject.g_object_unref(stream)
        if msi.libmsi_record_is_null(record, number):
            return None
        if kind == "i":
            return int(msi.libmsi_record_get_int(record, number))
        raw = msi.libmsi_record_get_string(record, number)
        if raw == ffi.NULL:
            return None
        try:
            return str(ffi.string(raw).decode("utf-8"))
        finally:
            libs.glib.g_free(raw)


# LibmsiResultError value of LIBMSI_RESULT_NO_MORE_ITEMS: the end of a fetch, not a failure.
_NO_MORE_ITEMS = 10


def _read_all(libs: _Libraries, stream: Any) -> bytes:
    ffi = libs.ffi
    chunk = ffi.new("char[]", 65536)
    error = ffi.new("GError **")
    parts: list[bytes] = []
    while True:
        count = libs.gio.g_input_stream_read(stream, chunk, 65536, ffi.NULL, error)
        if count < 0:
            raise _take_error(libs, error, "cannot read a stream")
        if count == 0:
            return b"".join(parts)
        parts.append(bytes(ffi.buffer(chunk, count)))


def parse_force_codepage(text: str) -> int:
    """The code page in an exported _ForceCodepage table (``<number>\\t_ForceCodepage``)."""
    for line in text.splitlines():
        number, _, name = line.partition("\t")
        if name.strip() == "_ForceCodepage" and number.strip().isdigit():
            return int(number)
    return 0
