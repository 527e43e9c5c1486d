"""A simulated msi.dll: the functions msica's Session, Database, View and Record call.

:class:`SimulatedMsi` stands where ``msica._native.msi()`` would put the cffi
library of msi.dll, so a :class:`~msica.testing.SimulatedSession` runs the real
``Session`` code: the same calls, the same cffi buffers and ``DWORD`` counts
(ERROR_MORE_DATA and a truncated copy when a buffer is too small), the same
handles, the same return codes and last error records. What the engine would
do inside an install (a property store, the run modes of a deferred action,
messages to the log and the UI) is kept in an :class:`Install`.

What it cannot do raises :class:`SimulatorError` from the call, naming the
function: running standard actions, costing and disk space, ``[#File]``-style
references. On Windows, handles it did not make (a real database opened
through msi.dll, say) are passed on to the real msi.dll.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from msica.enums import InstallMessage, InstallState, RunMode
from msica.testing import _condition

__all__ = ["DatabaseBackend", "Install", "SimulatedMsi", "SimulatorError", "engine"]


ERROR_SUCCESS = 0
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_INVALID_PARAMETER = 87
ERROR_MORE_DATA = 234
ERROR_NO_MORE_ITEMS = 259
ERROR_DIRECTORY = 267
ERROR_INSTALL_USEREXIT = 1602
ERROR_INSTALL_FAILURE = 1603
ERROR_UNKNOWN_FEATURE = 1606
ERROR_UNKNOWN_COMPONENT = 1607
ERROR_BAD_QUERY_SYNTAX = 1615
ERROR_FUNCTION_FAILED = 1627

MSI_NULL_INTEGER = -0x80000000
IDCANCEL = 2
_MESSAGE_KIND = 0xFF000000
_SCRIPT_MODES = {"deferred": RunMode.SCHEDULED, "rollback": RunMode.ROLLBACK,
                 "commit": RunMode.COMMIT}
DEFERRED_READABLE = frozenset({"CustomActionData", "ProductCode", "UserSID"})
_VT_EMPTY, _VT_I4, _VT_LPSTR = 0, 3, 30
_WRITING = frozenset({"INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP"})


class SimulatorError(NotImplementedError):
    """The simulated engine cannot do what was asked; the message says what to use instead."""


class DatabaseBackend(Protocol):
    """What the simulated engine asks of a database (an .msi opened for reading)."""

    def query(self, sql: str, params: Sequence[str | int | None]) -> list[
            tuple[str | int | None, ...]]:
        """Run ``sql`` with ``params`` bound to its ``?``: the rows (none for a statement)."""
        ...

    def columns(self, sql: str) -> list[str]:
        """The names of the columns the SELECT ``sql`` yields."""
        ...

    def insert_temporary(self, sql: str, columns: Sequence[str],
                         values: Sequence[str | int | None]) -> None:
        """Add a row that lasts as long as this session to the table ``sql`` selects from."""
        ...

    def has_table(self, table: str) -> bool:
        ...

    def summary(self) -> Mapping[int, str | int]:
        """Summary information by property id (PID_*)."""
        ...


@dataclass
class Install:
    """One simulated install: its properties, how the action runs, and what it sent."""

    properties: dict[str, str]
    execute: str = "immediate"
    modes: set[int] = field(default_factory=set)
    features: dict[str, list[int]] = field(default_factory=dict)
    components: dict[str, list[int]] = field(default_factory=dict)
    database: DatabaseBackend | None = None
    answer: Callable[[InstallMessage, tuple[str | int | None, ...]], int] | None = None
    log_lines: list[str] = field(default_factory=list)
    property_writes: list[tuple[str, str]] = field(default_factory=list)
    progress: list[tuple[int, ...]] = field(default_factory=list)
    messages: list[tuple[InstallMessage, str]] = field(default_factory=list)

    @property
    def in_script(self) -> bool:
        return self.execute in _SCRIPT_MODES

    def read(self, name: str) -> str:
        """A property as the engine answers it: in a deferred action only three are kept."""
        if self.in_script and name not in DEFERRED_READABLE:
            return ""
        return self.properties.get(name, "")

    def state(self, table: dict[str, list[int]], name: str) -> tuple[int, int] | None:
        found = table.get(name)
        return (found[0], found[1]) if found is not None else None


@dataclass
class _Record:
    fields: list[str | int | None]


@dataclass
class _Database:
    backend: DatabaseBackend


@dataclass
class _View:
    database: _Database
    sql: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[str | int | None, ...]] = field(default_factory=list)
    position: int = 0
    executed: bool = False


@dataclass
class _Summary:
    values: Mapping[int, str | int]


_T = TypeVar("_T")
_FIRST_HANDLE = 0x4D530001


def _forwarded(method: Callable[..., int]) -> Callable[..., int]:
    """A handle this engine did not make goes to the real msi.dll, when there is one."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: SimulatedMsi, handle: int, *args: Any) -> int:
        if handle and int(handle) not in self.objects:
            real = self.real()
            if real is not None:
                return int(getattr(real, name)(handle, *args))
        return method(self, int(handle), *args)

    return call


class SimulatedMsi:
    """The msi.dll functions msica calls, answered by Python; one per process (:func:`engine`).

    Arguments arrive as msica passes them to cffi: ``str`` for ``const
    wchar_t *``, ``int`` for handles and numbers, cffi ``wchar_t[]`` and
    ``DWORD *`` / ``MSIHANDLE *`` / ``int *`` cdata for what is written back.
    """

    def __init__(self, ffi: Any) -> None:
        self.ffi = ffi
        self.objects: dict[int, object] = {}
        self._next = _FIRST_HANDLE
        self._lock = threading.Lock()
        self._last_error: str | None = None
        self._real: Any = None
        self._real_tried = False
        width = int(ffi.sizeof("wchar_t"))
        self._wchar = width
        self._encoding = "utf-16-le" if width == 2 else "utf-32-le"

    # handles ---------------------------------------------------------------------

    def open(self, obj: object) -> int:
        with self._lock:
            handle = self._next
            self._next += 1
            self.objects[handle] = obj
        return handle

    def get(self, handle: int, kind: type[_T]) -> _T | None:
        obj = self.objects.get(int(handle))
        return obj if isinstance(obj, kind) else None

    def real(self) -> Any:
        """msi.dll itself on Windows, for handles this engine did not make; else None."""
        if not self._real_tried:
            self._real_tried = True
            if os.name == "nt":
                try:
                    self._real = self.ffi.dlopen("msi.dll")
                except OSError:
                    self._real = None
        return self._real

    def _fail(self, code: int, text: str) -> int:
        self._last_error = text
        return code

    # strings --------------------------------------------------------------------

    def _text(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if value == self.ffi.NULL:
            return None
        return str(self.ffi.string(value))

    def _put(self, value: str, buffer: Any, size: Any) -> int:
        """Write ``value`` the way msi.dll does: count in, length out, MORE_DATA when short."""
        if size is None or size == self.ffi.NULL:
            return ERROR_INVALID_PARAMETER if buffer not in (None, self.ffi.NULL) else \
                ERROR_SUCCESS
        encoded = value.encode(self._encoding, "surrogatepass")
        length = len(encoded) // self._wchar
        if buffer is None or buffer == self.ffi.NULL:
            size[0] = length
            return ERROR_SUCCESS
        capacity = int(size[0])
        size[0] = length
        if length >= capacity:
            if capacity > 0:
                kept = encoded[: (capacity - 1) * self._wchar] + b"\0" * self._wchar
                self.ffi.memmove(buffer, kept, len(kept))
            return ERROR_MORE_DATA
        whole = encoded + b"\0" * self._wchar
        self.ffi.memmove(buffer, whole, len(whole))
        return ERROR_SUCCESS

    # properties ---------------------------------------------------------------------

    @_forwarded
    def MsiGetPropertyW(self, handle: int, name: Any, buffer: Any, size: Any) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        text = self._text(name)
        if text is None:
            return ERROR_INVALID_PARAMETER
        return self._put(install.read(text), buffer, size)

    @_forwarded
    def MsiSetPropertyW(self, handle: int, name: Any, value: Any) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        key = self._text(name)
        if not key:
            return ERROR_INVALID_PARAMETER
        if install.in_script:
            return self._fail(
                ERROR_FUNCTION_FAILED,
                f"a {install.execute} action cannot set properties (here {key}): the script "
                "runs after the immediate phase has ended; set them in an immediate action",
            )
        text = self._text(value) or ""
        if text:
            install.properties[key] = text
        else:
            install.properties.pop(key, None)
        install.property_writes.append((key, text))
        return ERROR_SUCCESS

    # records -----------------------------------------------------------------------

    def MsiCreateRecord(self, count: int) -> int:
        return self.open(_Record([None] * (int(count) + 1)))

    def _record(self, handle: int, index: int) -> _Record | None:
        record = self.get(handle, _Record)
        if record is not None and 0 <= index < len(record.fields):
            return record
        return None

    @_forwarded
    def MsiRecordSetStringW(self, handle: int, index: int, value: Any) -> int:
        if self.get(handle, _Record) is None:
            return ERROR_INVALID_HANDLE
        record = self._record(handle, index)
        if record is None:
            return ERROR_INVALID_PARAMETER
        record.fields[index] = self._text(value) or None
        return ERROR_SUCCESS

    @_forwarded
    def MsiRecordSetInteger(self, handle: int, index: int, value: int) -> int:
        if self.get(handle, _Record) is None:
            return ERROR_INVALID_HANDLE
        record = self._record(handle, index)
        if record is None:
            return ERROR_INVALID_PARAMETER
        record.fields[index] = None if value == MSI_NULL_INTEGER else int(value)
        return ERROR_SUCCESS

    @_forwarded
    def MsiRecordGetFieldCount(self, handle: int) -> int:
        record = self.get(handle, _Record)
        return len(record.fields) - 1 if record is not None else 0xFFFFFFFF

    @_forwarded
    def MsiRecordIsNull(self, handle: int, index: int) -> int:
        record = self._record(handle, index)
        return int(record is None or record.fields[index] is None)

    @_forwarded
    def MsiRecordGetInteger(self, handle: int, index: int) -> int:
        record = self._record(handle, index)
        if record is None:
            return MSI_NULL_INTEGER
        value = record.fields[index]
        if isinstance(value, int):
            return value
        if value is not None and re.fullmatch(r"-?\d+", value) and -2**31 < int(value) < 2**31:
            return int(value)
        return MSI_NULL_INTEGER

    @_forwarded
    def MsiRecordGetStringW(self, handle: int, index: int, buffer: Any, size: Any) -> int:
        if self.get(handle, _Record) is None:
            return ERROR_INVALID_HANDLE
        record = self._record(handle, index)
        value = record.fields[index] if record is not None else None
        return self._put("" if value is None else str(value), buffer, size)

    @_forwarded
    def MsiCloseHandle(self, handle: int) -> int:
        if int(handle) == 0:
            return ERROR_SUCCESS
        with self._lock:
            obj = self.objects.get(int(handle))
            if obj is None or isinstance(obj, Install):  # an install ends with its session
                return ERROR_INVALID_HANDLE if obj is None else ERROR_SUCCESS
            del self.objects[int(handle)]
        return ERROR_SUCCESS

    def close_install(self, handle: int) -> None:
        with self._lock:
            self.objects.pop(int(handle), None)

    # errors --------------------------------------------------------------------------

    def MsiGetLastErrorRecord(self) -> int:
        if self._last_error is None:
            real = self.real()
            return int(real.MsiGetLastErrorRecord()) if real is not None else 0
        text, self._last_error = self._last_error, None
        return self.open(_Record([text]))

    # formatting ----------------------------------------------------------------------

    @_forwarded
    def MsiFormatRecordW(self, handle: int, record_handle: int, buffer: Any, size: Any) -> int:
        install = self.get(handle, Install) if handle else None
        if handle and install is None:
            return ERROR_INVALID_HANDLE
        record = self.get(record_handle, _Record)
        if record is None:
            return ERROR_INVALID_HANDLE
        return self._put(format_record(record.fields, install), buffer, size)

    # the running install ---------------------------------------------------------------

    @_forwarded
    def MsiGetMode(self, handle: int, mode: int) -> int:
        install = self.get(handle, Install)
        if install is None:
            return 0
        script = _SCRIPT_MODES.get(install.execute)
        if mode in (RunMode.SCHEDULED, RunMode.ROLLBACK, RunMode.COMMIT):
            return int(script == mode)
        return int(int(mode) in install.modes)

    @_forwarded
    def MsiSetMode(self, handle: int, mode: int, state: int) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        if mode not in (RunMode.REBOOT_AT_END, RunMode.REBOOT_NOW):
            return self._fail(ERROR_ACCESS_DENIED, "only REBOOT_AT_END and REBOOT_NOW can be set")
        if state:
            install.modes.add(int(mode))
        else:
            install.modes.discard(int(mode))
        return ERROR_SUCCESS

    @_forwarded
    def MsiGetLanguage(self, handle: int) -> int:
        install = self.get(handle, Install)
        if install is None:
            return 0
        language = install.properties.get("ProductLanguage", "1033")
        return int(language) if language.isdigit() else 1033

    @_forwarded
    def MsiEvaluateConditionW(self, handle: int, condition: Any) -> int:
        install = self.get(handle, Install)
        if install is None:
            return 3  # MSICONDITION_ERROR
        text = self._text(condition)
        if text is None:
            return 2  # MSICONDITION_NONE
        lookups = _condition.Lookups(
            property=install.read,
            component=lambda name: install.state(install.components, name) or (-1, -1),
            feature=lambda name: install.state(install.features, name) or (-1, -1),
        )
        return int(_condition.evaluate(text, lookups))

    @_forwarded
    def MsiDoActionW(self, handle: int, action: Any) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        name = self._text(action) or ""
        from msica.actions import registered

        found = registered(name)
        if found is None:
            raise SimulatorError(
                f"MsiDoActionW({name!r}): the simulated engine runs only msica actions that "
                "are imported (@custom_action); run standard actions and other custom actions "
                "in a real install (msica run, or the msica_install fixture)"
            )
        declared, function = found
        if declared.execute != install.execute:
            raise SimulatorError(
                f"MsiDoActionW({name!r}): {name} is a {declared.execute} action; the simulated "
                "engine does not write or run an installation script"
            )
        from msica import _host
        from msica.session import Session

        code = _host.run(declared, function, Session(handle, action=name))
        if code in (ERROR_SUCCESS, ERROR_NO_MORE_ITEMS):
            return ERROR_SUCCESS
        return ERROR_INSTALL_USEREXIT if code == ERROR_INSTALL_USEREXIT else ERROR_INSTALL_FAILURE

    @_forwarded
    def MsiSetInstallLevel(self, handle: int, level: int) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        install.properties["INSTALLLEVEL"] = str(int(level))
        install.property_writes.append(("INSTALLLEVEL", str(int(level))))
        return ERROR_SUCCESS

    @_forwarded
    def MsiGetTargetPathW(self, handle: int, folder: Any, buffer: Any, size: Any) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        name = self._text(folder) or ""
        path = install.read(name)
        if not path:
            return self._fail(
                ERROR_DIRECTORY,
                f"no directory {name} (the simulated engine knows a directory by the property "
                "of the same name: give it in the session's properties)",
            )
        return self._put(path if path.endswith("\\") else path + "\\", buffer, size)

    @_forwarded
    def MsiSetTargetPathW(self, handle: int, folder: Any, path: Any) -> int:
        install = self.get(handle, Install)
        if install is None:
            return ERROR_INVALID_HANDLE
        name = self._text(folder) or ""
        value = self._text(path) or ""
        if not install.read(name):
            return self._fail(ERROR_DIRECTORY, f"no directory {name}")
        if not value:
            return ERROR_INVALID_PARAMETER
        value = value if value.endswith("\\") else value + "\\"
        install.properties[name] = value
        install.property_writes.append((name, value))
        return ERROR_SUCCESS

    @_forwarded
    def MsiGetSourcePathW(self, handle: int, folder: Any, buffer: Any, size: Any) -> int:
        raise SimulatorError(
            "MsiGetSourcePathW: the simulated engine has no source media; test source paths "
            "in a real install"
        )

    @_forwarded
    def MsiVerifyDiskSpace(self, handle: int) -> int:
        raise SimulatorError(
            "MsiVerifyDiskSpace: the simulated engine does no costing, so it cannot say whether "
            "the install fits; test it in a real install on Windows"
        )

    def _states(self, handle: int, kind: str) -> tuple[Install | None, dict[str, list[int]]]:
        install = self.get(handle, Install)
        if install is None:
            return None, {}
        return install, install.features if kind == "Feature" else install.components

    def _get_state(self, kind: str, handle: int, name: Any, installed: Any, action: Any) -> int:
        install, table = self._states(handle, kind)
        if install is None:
            return ERROR_INVALID_HANDLE
        state = table.get(self._text(name) or "")
        if state is None:
            missing = ERROR_UNKNOWN_FEATURE if kind == "Feature" else ERROR_UNKNOWN_COMPONENT
            return self._fail(missing, f"no {kind.lower()} {self._text(name)} in this session "
                              f"(give it in SimulatedSession({kind.lower()}s=...))")
        installed[0], action[0] = state
        return ERROR_SUCCESS

    def _set_state(self, kind: str, handle: int, name: Any, state: int) -> int:
        install, table = self._states(handle, kind)
        if install is None:
            return ERROR_INVALID_HANDLE
        found = table.get(self._text(name) or "")
        if found is None:
            missing = ERROR_UNKNOWN_FEATURE if kind == "Feature" else ERROR_UNKNOWN_COMPONENT
            return self._fail(missing, f"no {kind.lower()} {self._text(name)} in this session")
        found[1] = int(state)
        return ERROR_SUCCESS

    @_forwarded
    def MsiGetFeatureStateW(self, handle: int, name: Any, installed: Any, action: Any) -> int:
        return self._get_state("Feature", handle, name, installed, action)

    @_forwarded
    def MsiSetFeatureStateW(self, handle: int, name: Any, state: int) -> int:
        return self._set_state("Feature", handle, name, state)

    @_forwarded
    def MsiGetComponentStateW(self, handle: int, name: Any, installed: Any, action: Any) -> int:
        return self._get_state("Component", handle, name, installed, action)

    @_forwarded
    def MsiSetComponentStateW(self, handle: int, name: Any, state: int) -> int:
        return self._set_state("Component", handle, name, state)

    # messages -------------------------------------------------------------------------

    @_forwarded
    def MsiProcessMessage(self, handle: int, kind: int, record_handle: int) -> int:
        install = self.get(handle, Install)
        record = self.get(record_handle, _Record)
        if install is None or record is None:
            return -1
        message = InstallMessage(int(kind) & _MESSAGE_KIND)
        fields = tuple(record.fields[1:])
        if message == InstallMessage.INFO:
            install.log_lines.append(format_record(record.fields, install))
        elif message == InstallMessage.PROGRESS:
            install.progress.append(tuple(v if isinstance(v, int) else 0 for v in fields))
        else:
            install.messages.append((message, format_record(record.fields, install)))
        if install.answer is None:
            return 0
        return int(install.answer(message, fields))

    # the database ---------------------------------------------------------------------

    @_forwarded
    def MsiGetActiveDatabase(self, handle: int) -> int:
        install = self.get(handle, Install)
        if install is None:
            return 0
        if install.database is None:
            raise SimulatorError(
                "MsiGetActiveDatabase: this SimulatedSession has no database; make it with "
                "SimulatedSession.from_msi(path) to query a package's tables"
            )
        return self.open(_Database(install.database))

    @_forwarded
    def MsiDatabaseOpenViewW(self, handle: int, query: Any, view: Any) -> int:
        database = self.get(handle, _Database)
        if database is None:
            return ERROR_INVALID_HANDLE
        view[0] = self.open(_View(database, self._text(query) or ""))
        return ERROR_SUCCESS

    @_forwarded
    def MsiViewExecute(self, handle: int, record_handle: int) -> int:
        view = self.get(handle, _View)
        if view is None:
            return ERROR_INVALID_HANDLE
        params: Sequence[str | int | None] = ()
        if record_handle:
            record = self.get(record_handle, _Record)
            if record is None:
                return ERROR_INVALID_HANDLE
            params = record.fields[1:]
        verb = view.sql.split(None, 1)[0].upper() if view.sql.strip() else ""
        upper = view.sql.upper()
        if verb in _WRITING and not ("TEMPORARY" in upper or "HOLD" in upper or "FREE" in upper):
            return self._fail(
                ERROR_FUNCTION_FAILED,
                f"{view.sql}: the database of a running install is read-only but for temporary "
                "rows and tables (INSERT ... TEMPORARY, CREATE TABLE ... HOLD); the simulated "
                "engine does not run UPDATE or DELETE statements",
            )
        try:
            view.rows = view.database.backend.query(view.sql, params)
        except SimulatorError:
            raise
        except Exception as error:
            code = ERROR_FUNCTION_FAILED if verb in _WRITING else ERROR_BAD_QUERY_SYNTAX
            return self._fail(code, f"{view.sql}: {error}")
        view.position = 0
        view.executed = True
        return ERROR_SUCCESS

    @_forwarded
    def MsiViewFetch(self, handle: int, record: Any) -> int:
        view = self.get(handle, _View)
        if view is None:
            return ERROR_INVALID_HANDLE
        if not view.executed:
            return self._fail(1609, "MsiViewFetch before MsiViewExecute")
        if view.position >= len(view.rows):
            return ERROR_NO_MORE_ITEMS
        row = view.rows[view.position]
        view.position += 1
        record[0] = self.open(_Record([None, *row]))
        return ERROR_SUCCESS

    @_forwarded
    def MsiViewClose(self, handle: int) -> int:
        view = self.get(handle, _View)
        if view is None:
            return ERROR_INVALID_HANDLE
        view.executed = False
        return ERROR_SUCCESS

    @_forwarded
    def MsiViewModify(self, handle: int, mode: int, record_handle: int) -> int:
        view = self.get(handle, _View)
        record = self.get(record_handle, _Record)
        if view is None or record is None:
            return ERROR_INVALID_HANDLE
        if int(mode) != 7:  # MSIMODIFY_INSERT_TEMPORARY
            raise SimulatorError(
                f"MsiViewModify mode {int(mode)}: the simulated engine adds temporary rows "
                "(insert_temporary) only; test updates and deletes in a real install"
            )
        try:
            if not view.columns:
                view.columns = view.database.backend.columns(view.sql)
            view.database.backend.insert_temporary(view.sql, view.columns, record.fields[1:])
        except SimulatorError:
            raise
        except Exception as error:
            return self._fail(ERROR_FUNCTION_FAILED, f"insert into {view.sql}: {error}")
        return ERROR_SUCCESS

    @_forwarded
    def MsiViewGetColumnInfo(self, handle: int, kind: int, record: Any) -> int:
        view = self.get(handle, _View)
        if view is None:
            return ERROR_INVALID_HANDLE
        if int(kind) != 0:  # MSICOLINFO_NAMES
            raise SimulatorError("MsiViewGetColumnInfo: the simulated engine knows column "
                                 "names only (MSICOLINFO_NAMES)")
        if not view.columns:
            view.columns = view.database.backend.columns(view.sql)
        record[0] = self.open(_Record([None, *view.columns]))
        return ERROR_SUCCESS

    @_forwarded
    def MsiDatabaseIsTablePersistentW(self, handle: int, table: Any) -> int:
        database = self.get(handle, _Database)
        name = self._text(table) or ""
        if database is None or not name:
            return 3  # MSICONDITION_ERROR
        return 1 if database.backend.has_table(name) else 2  # TRUE, NONE

    @_forwarded
    def MsiGetSummaryInformationW(self, handle: int, path: Any, updates: int, info: Any) -> int:
        database = self.get(handle, _Database)
        if database is None:
            return ERROR_INVALID_HANDLE
        info[0] = self.open(_Summary(database.backend.summary()))
        return ERROR_SUCCESS

    @_forwarded
    def MsiSummaryInfoGetPropertyW(self, handle: int, pid: int, kind: Any, number: Any,
                                   filetime: Any, buffer: Any, size: Any) -> int:
        summary = self.get(handle, _Summary)
        if summary is None:
            return ERROR_INVALID_HANDLE
        value = summary.values.get(int(pid))
        if isinstance(value, int):
            kind[0], number[0] = _VT_I4, value
            return self._put("", buffer, size)
        kind[0] = _VT_LPSTR if value is not None else _VT_EMPTY
        return self._put(value or "", buffer, size)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("Msi"):
            real = self.real()
            if real is not None:
                return getattr(real, name)
            raise SimulatorError(f"{name}: the simulated engine does not implement it")
        raise AttributeError(name)


# formatting (MsiFormatRecord) ----------------------------------------------------------

def format_record(fields: Sequence[str | int | None], install: Install | None) -> str:
    """What MsiFormatRecord makes of a record: field 0 is the template.

    Supported: ``[n]`` (field n, as it is), ``[NAME]`` (a property; in a
    deferred action only the three it may read), ``[%NAME]`` (environment),
    ``[\\x]`` (a literal x), ``[~]`` (a null character), and brackets nested
    inside brackets (``[[NAME]]`` reads the property named by NAME's value).
    ``{...}`` groups are kept as text. A template-less record gives
    ``1: a 2: b ...``. ``[#File]``, ``[!File]``, ``[$Component]`` raise
    :class:`SimulatorError`.
    """
    template = fields[0] if fields else None
    values = list(fields[1:])
    if template is None or template == "":
        return "".join(
            f"{index}: {value} " for index, value in enumerate(values, start=1)
            if value is not None
        )
    return _expand(str(template), values, install)


def _expand(text: str, values: list[str | int | None], install: Install | None) -> str:
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char != "[":
            out.append(char)
            position += 1
            continue
        if text.startswith("[\\", position) and position + 3 < len(text) + 1 and \
                text[position + 3:position + 4] == "]":
            out.append(text[position + 2])
            position += 4
            continue
        end = _matching(text, position)
        if end is None:
            out.append(char)
            position += 1
            continue
        inner = text[position + 1:end]
        if "[" in inner:
            inner = _expand(inner, values, install)
        out.append(_resolve(inner, values, install))
        position = end + 1
    return "".join(out)


def _matching(text: str, start: int) -> int | None:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "[":
            depth += 1
        elif text[index] == "]":
            depth -= 1
            if depth == 0:
                return index
    return None


def _resolve(inner: str, values: list[str | int | None], install: Install | None) -> str:
    if inner == "~":
        return "\0"
    if inner.isdigit():
        index = int(inner)
        if 1 <= index <= len(values) and values[index - 1] is not None:
            return str(values[index - 1])
        return ""
    if inner.startswith("%"):
        return os.environ.get(inner[1:], "")
    if inner[:1] in ("#", "!", "$"):
        raise SimulatorError(
            f"MsiFormatRecordW: [{inner}] needs the engine's file and component costing, which "
            "the simulated engine does not do; test it in a real install"
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", inner):
        return f"[{inner}]"
    return install.read(inner) if install is not None else ""


# one engine per process -------------------------------------------------------------

_engine: SimulatedMsi | None = None
_engine_lock = threading.Lock()


def engine() -> SimulatedMsi:
    """The process's simulated engine, put behind ``msica._native.msi()`` on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from msica import _native

            ffi = _native._load_ffi()
            _engine = SimulatedMsi(ffi)
            _native.use(ffi, _engine)
    return _engine


def initial_states(states: Mapping[str, tuple[InstallState | int, InstallState | int]] | None,
                   ) -> dict[str, list[int]]:
    return {name: [int(installed), int(requested)]
            for name, (installed, requested) in (states or {}).items()}
