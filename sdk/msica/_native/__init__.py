"""The only place that talks to msi.dll, through cffi in ABI mode.

``msica build`` writes ``_msi_ffi.py`` into the payload: cffi's out-of-line
ABI module generated from :data:`CDEF`, so an action does not parse C
declarations (or need pycparser) at run time. Anywhere else the declarations
are parsed on first use.
"""

from __future__ import annotations

from typing import Any, Callable

from msica.errors import error_for

ERROR_SUCCESS = 0
ERROR_MORE_DATA = 234
_FIRST_BUFFER = 256

CDEF = """
typedef unsigned long MSIHANDLE;
typedef unsigned int UINT;
typedef unsigned long DWORD;
typedef int BOOL;

UINT __stdcall MsiCloseHandle(MSIHANDLE hAny);
UINT __stdcall MsiGetPropertyW(MSIHANDLE hInstall, const wchar_t *szName,
                               wchar_t *szValueBuf, DWORD *pcchValueBuf);
UINT __stdcall MsiSetPropertyW(MSIHANDLE hInstall, const wchar_t *szName,
                               const wchar_t *szValue);
MSIHANDLE __stdcall MsiCreateRecord(UINT cParams);
UINT __stdcall MsiRecordSetStringW(MSIHANDLE hRecord, UINT iField, const wchar_t *szValue);
int __stdcall MsiProcessMessage(MSIHANDLE hInstall, int eMessageType, MSIHANDLE hRecord);
MSIHANDLE __stdcall MsiGetLastErrorRecord(void);
UINT __stdcall MsiFormatRecordW(MSIHANDLE hInstall, MSIHANDLE hRecord,
                                wchar_t *szResultBuf, DWORD *pcchResultBuf);
BOOL __stdcall MsiGetMode(MSIHANDLE hInstall, int eRunMode);
UINT __stdcall MsiSetMode(MSIHANDLE hInstall, int eRunMode, BOOL fState);
unsigned short __stdcall MsiGetLanguage(MSIHANDLE hInstall);
int __stdcall MsiEvaluateConditionW(MSIHANDLE hInstall, const wchar_t *szCondition);
UINT __stdcall MsiDoActionW(MSIHANDLE hInstall, const wchar_t *szAction);
UINT __stdcall MsiSetInstallLevel(MSIHANDLE hInstall, int iInstallLevel);
UINT __stdcall MsiGetTargetPathW(MSIHANDLE hInstall, const wchar_t *szFolder,
                                 wchar_t *szPathBuf, DWORD *pcchPathBuf);
UINT __stdcall MsiSetTargetPathW(MSIHANDLE hInstall, const wchar_t *szFolder,
                                 const wchar_t *szFolderPath);
UINT __stdcall MsiGetSourcePathW(MSIHANDLE hInstall, const wchar_t *szFolder,
                                 wchar_t *szPathBuf, DWORD *pcchPathBuf);
UINT __stdcall MsiVerifyDiskSpace(MSIHANDLE hInstall);
UINT __stdcall MsiGetFeatureStateW(MSIHANDLE hInstall, const wchar_t *szFeature,
                                   int *piInstalled, int *piAction);
UINT __stdcall MsiSetFeatureStateW(MSIHANDLE hInstall, const wchar_t *szFeature, int iState);
UINT __stdcall MsiGetComponentStateW(MSIHANDLE hInstall, const wchar_t *szComponent,
                                     int *piInstalled, int *piAction);
UINT __stdcall MsiSetComponentStateW(MSIHANDLE hInstall, const wchar_t *szComponent,
                                     int iState);
UINT __stdcall MsiRecordSetInteger(MSIHANDLE hRecord, UINT iField, int iValue);
UINT __stdcall MsiRecordGetFieldCount(MSIHANDLE hRecord);
BOOL __stdcall MsiRecordIsNull(MSIHANDLE hRecord, UINT iField);
int __stdcall MsiRecordGetInteger(MSIHANDLE hRecord, UINT iField);
UINT __stdcall MsiRecordGetStringW(MSIHANDLE hRecord, UINT iField, wchar_t *szValueBuf,
                                   DWORD *pcchValueBuf);
MSIHANDLE __stdcall MsiGetActiveDatabase(MSIHANDLE hInstall);
UINT __stdcall MsiDatabaseOpenViewW(MSIHANDLE hDatabase, const wchar_t *szQuery,
                                    MSIHANDLE *phView);
UINT __stdcall MsiViewExecute(MSIHANDLE hView, MSIHANDLE hRecord);
UINT __stdcall MsiViewFetch(MSIHANDLE hView, MSIHANDLE *phRecord);
UINT __stdcall MsiViewClose(MSIHANDLE hView);
UINT __stdcall MsiViewModify(MSIHANDLE hView, int eModifyMode, MSIHANDLE hRecord);
UINT __stdcall MsiViewGetColumnInfo(MSIHANDLE hView, int eColumnInfo, MSIHANDLE *phRecord);
int __stdcall MsiDatabaseIsTablePersistentW(MSIHANDLE hDatabase, const wchar_t *szTableName);
UINT __stdcall MsiGetSummaryInformationW(MSIHANDLE hDatabase, const wchar_t *szDatabasePath,
                                         UINT uiUpdateCount, MSIHANDLE *phSummaryInfo);
UINT __stdcall MsiSummaryInfoGetPropertyW(MSIHANDLE hSummaryInfo, UINT uiProperty,
                                          UINT *puiDataType, int *piValue,
                                          void *pftValue, wchar_t *szValueBuf,
                                          DWORD *pcchValueBuf);
const char *wine_get_version(void);
UINT __stdcall MsiOpenDatabaseW(const wchar_t *szDatabasePath, const wchar_t *szPersist,
                                MSIHANDLE *phDatabase);
UINT __stdcall MsiDatabaseCommit(MSIHANDLE hDatabase);
UINT __stdcall MsiDatabaseExportW(MSIHANDLE hDatabase, const wchar_t *szTableName,
                                  const wchar_t *szFolderPath, const wchar_t *szFileName);
UINT __stdcall MsiRecordSetStreamW(MSIHANDLE hRecord, UINT iField, const wchar_t *szFilePath);
UINT __stdcall MsiRecordReadStream(MSIHANDLE hRecord, UINT iField, char *szDataBuf,
                                   DWORD *pcbDataBuf);
"""

MODULE_NAME = "msica._native._msi_ffi"

_lib: Any = None
_ffi: Any = None


def _load_ffi() -> Any:
    try:
        from msica._native._msi_ffi import ffi  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(CDEF)
    return ffi


def msi() -> tuple[Any, Any]:
    """``(ffi, lib)`` for msi.dll, loaded once per process."""
    global _ffi, _lib
    if _lib is None:
        _ffi = _load_ffi()
        _lib = _ffi.dlopen("msi.dll")
    return _ffi, _lib


def use(ffi: Any, lib: Any) -> None:
    """Answer :func:`msi` with ``(ffi, lib)`` from now on: ``lib`` is an object with
    msi.dll's functions (msica.testing's simulated engine), which formats like Windows."""
    global _ffi, _lib, _wine
    _ffi, _lib, _wine = ffi, lib, False


_wine: bool | None = None


def under_wine() -> bool:
    """True inside Wine's msiexec (ntdll exports wine_get_version), whose logging differs."""
    global _wine
    if _wine is None:
        ffi, _ = msi()
        try:
            ntdll = ffi.dlopen("ntdll.dll")
            _wine = getattr(ntdll, "wine_get_version", None) is not None
        except (OSError, AttributeError):
            _wine = False
    return _wine


def emit_module() -> str:
    """Source of the out-of-line ABI module for :data:`CDEF` (runs on the build host)."""
    import contextlib
    import io
    import os
    import tempfile

    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(MODULE_NAME, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "_msi_ffi.py")
        with contextlib.redirect_stdout(io.StringIO()):  # cffi announces the file it writes
            ffi.emit_python_code(path)
        with open(path, encoding="utf-8") as generated:
            return generated.read()


def get_string(call: Callable[[Any, Any], int], function: str, handle: int) -> str:
    """The text an MSI function returns through a buffer and a character count.

    ``call(buffer, size)`` runs the function. The count goes in as the
    buffer's capacity (with the null) and comes back as the length without
    it; on ERROR_MORE_DATA the buffer grows to that length and the call is
    repeated.
    """
    ffi, _ = msi()
    size = ffi.new("DWORD *")
    capacity = _FIRST_BUFFER
    while True:
        buffer = ffi.new("wchar_t[]", capacity)
        size[0] = capacity
        code = call(buffer, size)
        if code != ERROR_MORE_DATA:
            break
        capacity = max(size[0] + 1, capacity * 2)
    check(code, function, handle)
    return str(ffi.string(buffer, size[0]))


def last_error_text(handle: int) -> str:
    """The formatted text of MsiGetLastErrorRecord, or "" when there is none."""
    _, lib = msi()
    record = lib.MsiGetLastErrorRecord()
    if not record:
        return ""
    try:
        return get_string(
            lambda buffer, size: lib.MsiFormatRecordW(handle, record, buffer, size),
            "MsiFormatRecordW", 0,
        )
    except Exception:  # the error's own text could not be had: report the code alone
        return ""
    finally:
        lib.MsiCloseHandle(record)


def check(code: int, function: str, handle: int) -> None:
    if code != ERROR_SUCCESS:
        raise error_for(code, function, last_error_text(handle))
