"""The installer session a custom action is called with.

``Session`` wraps the MSIHANDLE the engine passes to the action: properties
read and written as a mapping (MsiGetPropertyW / MsiSetPropertyW) and lines
written into the installer's log (MsiProcessMessage with INSTALLMESSAGE_INFO).
"""

from __future__ import annotations

from typing import Any, overload

from msica import _native
from msica.enums import InstallMessage
from msica.errors import error_for

ERROR_SUCCESS = 0
ERROR_MORE_DATA = 234

_FIRST_BUFFER = 256


class Session:
    """An installer session: ``session["NAME"]`` reads and writes properties."""

    def __init__(self, handle: int, *, action: str = "") -> None:
        self.handle = handle
        """The MSIHANDLE of the install, as the engine passed it."""
        self.action = action
        """The name of the custom action being run."""

    def __repr__(self) -> str:
        return f"Session(handle={self.handle}, action={self.action!r})"

    # properties ---------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        """The value of property ``name`` (MsiGetPropertyW); "" when it is not set."""
        ffi, lib = _native.msi()
        size = ffi.new("DWORD *")
        capacity = _FIRST_BUFFER
        while True:
            buffer = ffi.new("wchar_t[]", capacity)
            size[0] = capacity  # in: characters the buffer holds, with the null
            code = lib.MsiGetPropertyW(self.handle, name, buffer, size)
            if code != ERROR_MORE_DATA:
                break
            # out: the length needed, without the null; grow at least twice over.
            capacity = max(size[0] + 1, capacity * 2)
        _check(code, "MsiGetPropertyW", self.handle)
        return str(ffi.string(buffer, size[0]))

    def __setitem__(self, name: str, value: str | None) -> None:
        """Set property ``name`` (MsiSetPropertyW); None or "" removes it."""
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"property {name} takes a str, not {type(value).__name__}: "
                f"write str(value) to store {value!r}"
            )
        _, lib = _native.msi()
        _check(lib.MsiSetPropertyW(self.handle, name, value or ""), "MsiSetPropertyW",
               self.handle)

    def __delitem__(self, name: str) -> None:
        """Remove property ``name``: the engine treats an empty value as not set."""
        self[name] = None

    def __contains__(self, name: object) -> bool:
        """True when property ``name`` has a non-empty value."""
        return isinstance(name, str) and self[name] != ""

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of property ``name``, or ``default`` when it is empty or not set."""
        value = self[name]
        return value if value != "" else default

    # messages -------------------------------------------------------------------

    def log(self, message: Any) -> None:
        """Write one line into the installer's log (MsiProcessMessage, INFO).

        The text is passed in a record field, never as the template, so square
        brackets in it reach the log as they are. Lines start with
        ``msica[<action>]`` so they can be found among the engine's.
        """
        prefix = f"msica[{self.action}] " if self.action else "msica: "
        self._info(prefix + str(message))

    def _info(self, text: str) -> int:
        _, lib = _native.msi()
        if _native.under_wine():
            text = _escape_brackets(text)
        record = lib.MsiCreateRecord(1)
        try:
            lib.MsiRecordSetStringW(record, 0, "[1]")
            lib.MsiRecordSetStringW(record, 1, text)
            return int(lib.MsiProcessMessage(self.handle, InstallMessage.INFO, record))
        finally:
            lib.MsiCloseHandle(record)


def _escape_brackets(text: str) -> str:
    """Wine formats record fields again when it logs them ("[x]" becomes property x);
    Windows does not. The escapes [\\[] and [\\]] survive that second pass as brackets."""
    return "".join("[\\" + c + "]" if c in "[]" else c for c in text)


def _last_error_text(handle: int) -> str:
    """The formatted text of MsiGetLastErrorRecord, or "" when there is none."""
    ffi, lib = _native.msi()
    record = lib.MsiGetLastErrorRecord()
    if not record:
        return ""
    try:
        size = ffi.new("DWORD *", 0)
        empty = ffi.new("wchar_t[]", 1)
        if lib.MsiFormatRecordW(handle, record, empty, size) not in (ERROR_MORE_DATA,
                                                                       ERROR_SUCCESS):
            return ""
        buffer = ffi.new("wchar_t[]", size[0] + 1)
        size[0] += 1
        if lib.MsiFormatRecordW(handle, record, buffer, size) != ERROR_SUCCESS:
            return ""
        return str(ffi.string(buffer, size[0]))
    finally:
        lib.MsiCloseHandle(record)


def _check(code: int, function: str, handle: int) -> None:
    if code != ERROR_SUCCESS:
        raise error_for(code, function, _last_error_text(handle))
