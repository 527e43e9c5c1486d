/*
 * msica_dispatch.c - the exported entry points, and what each call does.
 *
 * The DLL exports `CustomAction` and MSICA_SLOT_COUNT placeholder slots.
 * The packager renames slots to the DllEntry names of the user's actions in
 * the export table itself, so at run time a slot learns which action it is
 * by looking up the name its own address is exported under.
 *
 * First call in a process: find the payload in this DLL's file, verify it,
 * unpack it once per payload hash (or check the copy unpacked earlier), load
 * and start its CPython. First call after the engine reloaded the DLL: read
 * the trailer and find that runtime running. Every call:
 * take the GIL, msica._host.dispatch(entry, hInstall), give the GIL back.
 */
#include "msica_log.h"
#include "msica_payload.h"
#include "msica_python.h"
#include "msica_secure.h"

#include <stdio.h>
#include <string.h>

#define MSICA_FAILURE 1603 /* ERROR_INSTALL_FAILURE */
#define MSICA_NAME_CAP 256
#define MSICA_DIR_CAP 1024

static SRWLOCK state_lock = SRWLOCK_INIT;
static int state_ready;
static struct msica_python state_python;

static HMODULE this_module(void)
{
    HMODULE module = NULL;
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                           GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                       (LPCWSTR)(void *)&this_module, &module);
    return module;
}

/* The name this module exports `function` under, from its own export table
 * in memory. 0, or -1 when the address is not exported by name. */
static int export_name_of(HMODULE module, const void *function, char *name, size_t cap)
{
    const uint8_t *base = (const uint8_t *)module;
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + dos->e_lfanew);
    const IMAGE_DATA_DIRECTORY *dir =
        &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT];
    const IMAGE_EXPORT_DIRECTORY *exports;
    const DWORD *functions, *names;
    const WORD *ordinals;
    DWORD rva = (DWORD)((const uint8_t *)function - base);

    if (dir->VirtualAddress == 0)
        return -1;
    exports = (const IMAGE_EXPORT_DIRECTORY *)(base + dir->VirtualAddress);
    functions = (const DWORD *)(base + exports->AddressOfFunctions);
    names = (const DWORD *)(base + exports->AddressOfNames);
    ordinals = (const WORD *)(base + exports->AddressOfNameOrdinals);
    for (DWORD i = 0; i < exports->NumberOfNames; i++) {
        if (ordinals[i] < exports->NumberOfFunctions && functions[ordinals[i]] == rva) {
            const char *found = (const char *)(base + names[i]);
            if (strlen(found) >= cap)
                return -1;
            strcpy(name, found);
            return 0;
        }
    }
    return -1;
}

/* %LOCALAPPDATA%\msica\runtimes\<first 32 hex digits of the payload hash>
 * into `dir`, and %LOCALAPPDATA%\msica into `top`; the temp directory stands
 * in where there is no LOCALAPPDATA. Names only: nothing is created. */
static int runtime_dir(MSIHANDLE install, const struct msica_payload *payload, wchar_t *top,
                       wchar_t *dir)
{
    wchar_t base[MSICA_DIR_CAP];
    DWORD n = GetEnvironmentVariableW(L"LOCALAPPDATA", base, MSICA_DIR_CAP);

    if (n == 0 || n >= MSICA_DIR_CAP) {
        n = GetTempPathW(MSICA_DIR_CAP, base);
        if (n == 0 || n >= MSICA_DIR_CAP) {
            msica_log_win32(install, L"GetTempPathW", GetLastError(),
                            L"no directory to unpack the runtime into");
            return -1;
        }
    }
    while (n > 0 && base[n - 1] == L'\\')
        base[--n] = L'\0';
    _snwprintf(top, MSICA_DIR_CAP, L"%ls\\msica", base);
    _snwprintf(dir, MSICA_DIR_CAP, L"%ls\\runtimes\\%.32ls", top, payload->digest_hex);
    top[MSICA_DIR_CAP - 1] = dir[MSICA_DIR_CAP - 1] = L'\0';
    return 0;
}

/* Creates msica and msica\runtimes private, or checks that they are. */
static int private_parents(MSIHANDLE install, const wchar_t *top)
{
    wchar_t runtimes[MSICA_DIR_CAP];

    _snwprintf(runtimes, MSICA_DIR_CAP, L"%ls\\runtimes", top);
    runtimes[MSICA_DIR_CAP - 1] = L'\0';
    if (msica_secure_mkdir(install, top) != 0 || msica_secure_check(install, top) != 0)
        return -1;
    if (msica_secure_mkdir(install, runtimes) != 0 ||
        msica_secure_check(install, runtimes) != 0)
        return -1;
    return 0;
}

/* Everything a first call needs before Python can run. 0 or -1 (logged). */
static int prepare(MSIHANDLE install)
{
    wchar_t module_path[MSICA_DIR_CAP];
    wchar_t top[MSICA_DIR_CAP];
    wchar_t dir[MSICA_DIR_CAP];
    struct msica_payload payload;
    DWORD n;
    int rc = -1;

    n = GetModuleFileNameW(this_module(), module_path, MSICA_DIR_CAP);
    if (n == 0 || n >= MSICA_DIR_CAP) {
        msica_log_win32(install, L"GetModuleFileNameW", GetLastError(),
                        L"cannot find this DLL's file");
        return -1;
    }
    if (msica_payload_open(install, module_path, &payload) != 0)
        return -1;
    if (runtime_dir(install, &payload, top, dir) != 0)
        goto cleanup;
    /* Warm: the engine unloads this DLL between actions, but the runtime an
     * earlier call verified and started is still in the process. Cold: unpack
     * the verified payload, or check the private copy already there. */
    if (msica_python_refuse_other(install, dir, payload.trailer.py_major,
                                  payload.trailer.py_minor) != 0)
        goto cleanup;
    if (!msica_python_loaded_from(dir, payload.trailer.py_major, payload.trailer.py_minor)) {
        if (private_parents(install, top) != 0)
            goto cleanup;
        if (msica_payload_unpack(install, &payload, dir) != 0)
            goto cleanup;
    }
    if (msica_python_load(install, dir, payload.trailer.py_major, payload.trailer.py_minor,
                          &state_python) != 0)
        goto cleanup;
    if (msica_python_start(install, &state_python) != 0)
        goto cleanup;
    rc = 0;

cleanup:
    msica_payload_close(&payload);
    return rc;
}

/* msica._host.dispatch(entry, install) under the GIL. */
static UINT call_host(MSIHANDLE install, const char *entry)
{
    struct msica_python *py = &state_python;
    msica_pyobject *host = NULL, *dispatch = NULL, *args = NULL, *result = NULL;
    msica_pyobject *name = NULL, *handle = NULL;
    unsigned long rc = MSICA_FAILURE;
    int gil = py->PyGILState_Ensure();

    host = py->PyImport_ImportModule("msica._host");
    if (host == NULL) {
        msica_python_log_error(install, py, L"cannot import msica._host from the payload");
        goto cleanup;
    }
    dispatch = py->PyObject_GetAttrString(host, "dispatch");
    args = py->PyTuple_New(2);
    name = py->PyUnicode_FromString(entry);
    handle = py->PyLong_FromUnsignedLong((unsigned long)install);
    if (dispatch == NULL || args == NULL || name == NULL || handle == NULL) {
        msica_python_log_error(install, py, L"cannot prepare the call to msica._host.dispatch");
        goto cleanup;
    }
    py->PyTuple_SetItem(args, 0, name); /* steals */
    py->PyTuple_SetItem(args, 1, handle);
    name = handle = NULL;
    result = py->PyObject_CallObject(dispatch, args);
    if (result == NULL) {
        msica_python_log_error(install, py, L"msica._host.dispatch raised");
        goto cleanup;
    }
    rc = py->PyLong_AsUnsignedLong(result);
    if (py->PyErr_Occurred()) {
        msica_python_log_error(install, py, L"msica._host.dispatch returned a non-integer");
        rc = MSICA_FAILURE;
    }

cleanup:
    if (result)
        py->Py_DecRef(result);
    if (name)
        py->Py_DecRef(name);
    if (handle)
        py->Py_DecRef(handle);
    if (args)
        py->Py_DecRef(args);
    if (dispatch)
        py->Py_DecRef(dispatch);
    if (host)
        py->Py_DecRef(host);
    py->PyGILState_Release(gil);
    return (UINT)rc;
}

static UINT run(MSIHANDLE install, const char *entry)
{
    int ready;

    AcquireSRWLockExclusive(&state_lock);
    if (!state_ready && prepare(install) == 0)
        state_ready = 1;
    ready = state_ready;
    ReleaseSRWLockExclusive(&state_lock);
    if (!ready) {
        msica_log_line(install, L"action %hs not run: the Python runtime is not available "
                                L"(see the lines above)",
                       entry);
        return MSICA_FAILURE;
    }
    return call_host(install, entry);
}

UINT __stdcall CustomAction(MSIHANDLE install)
{
    return run(install, "CustomAction");
}

static UINT dispatch_slot(MSIHANDLE install, const void *slot)
{
    char name[MSICA_NAME_CAP];

    if (export_name_of(this_module(), slot, name, sizeof(name)) != 0) {
        msica_log_line(install, L"an entry point of this DLL has no export name; rebuild it "
                                L"with `msica build`");
        return MSICA_FAILURE;
    }
    return run(install, name);
}

/* One exported function per slot; msica_slots.inc is generated by
 * CMakeLists.txt as MSICA_SLOT(<placeholder name>) lines. */
#define MSICA_SLOT(slot_name)                                                    \
    UINT __stdcall slot_name(MSIHANDLE install);                                 \
    UINT __stdcall slot_name(MSIHANDLE install)                                  \
    {                                                                            \
        return dispatch_slot(install, (const void *)&slot_name);                 \
    }
#include "msica_slots.inc"
