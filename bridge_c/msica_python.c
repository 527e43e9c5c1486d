/* msica_python.c - load, bind and start the bundled CPython runtime. */
#include "msica_python.h"
#include "msica_log.h"

#include <stdio.h>
#include <string.h>

#define MSICA_PATH_CAP 1024

/* Binds one symbol of python3.dll into the table, or names it and fails. */
#define BIND(name)                                                                    \
    do {                                                                              \
        *(FARPROC *)&py->name = GetProcAddress(py->abi, #name);                       \
        if (py->name == NULL) {                                                       \
            msica_log_win32(install, L"GetProcAddress", GetLastError(),               \
                            L"python3.dll of the bundled runtime lacks " L## #name);  \
            return -1;                                                                \
        }                                                                             \
    } while (0)

static int bind_table(MSIHANDLE install, struct msica_python *py)
{
    BIND(Py_InitializeEx);
    BIND(Py_IsInitialized);
    BIND(PyGILState_Ensure);
    BIND(PyGILState_Release);
    BIND(PyEval_SaveThread);
    BIND(PyImport_ImportModule);
    BIND(PyObject_GetAttrString);
    BIND(PyObject_CallObject);
    BIND(PyObject_Str);
    BIND(PyObject_SetAttrString);
    BIND(PyBool_FromLong);
    BIND(PyTuple_New);
    BIND(PyTuple_SetItem);
    BIND(PyUnicode_FromWideChar);
    BIND(PyUnicode_FromString);
    BIND(PyUnicode_Join);
    BIND(PyUnicode_AsWideCharString);
    BIND(PyLong_FromUnsignedLong);
    BIND(PyLong_AsUnsignedLong);
    BIND(Py_DecRef);
    BIND(PyMem_Free);
    BIND(PyErr_Occurred);
    BIND(PyErr_Fetch);
    BIND(PyErr_NormalizeException);
    BIND(PyErr_Clear);
    return 0;
}

/* True when the module named `name` is loaded from a directory other than
 * `dir`; its path is left in `found`. */
static int loaded_elsewhere(const wchar_t *name, const wchar_t *dir, wchar_t *found)
{
    HMODULE module = GetModuleHandleW(name);
    size_t dir_len = wcslen(dir);

    if (module == NULL)
        return 0;
    if (GetModuleFileNameW(module, found, MSICA_PATH_CAP) == 0)
        return 0;
    return !(_wcsnicmp(found, dir, dir_len) == 0 && found[dir_len] == L'\\');
}

int msica_python_loaded_from(const wchar_t *dir, int major, int minor)
{
    wchar_t runtime_name[32];
    wchar_t found[MSICA_PATH_CAP];

    _snwprintf(runtime_name, 32, L"python%d%d.dll", major, minor);
    return GetModuleHandleW(runtime_name) != NULL &&
           !loaded_elsewhere(runtime_name, dir, found);
}

int msica_python_refuse_other(MSIHANDLE install, const wchar_t *dir, int major, int minor)
{
    wchar_t runtime_name[32];
    wchar_t found[MSICA_PATH_CAP];

    _snwprintf(runtime_name, 32, L"python%d%d.dll", major, minor);
    /* One process, one CPython: a runtime another package loaded into this
     * custom-action server would cross-link with ours. */
    if (loaded_elsewhere(L"python3.dll", dir, found) ||
        loaded_elsewhere(runtime_name, dir, found)) {
        msica_log_line(install,
                       L"another Python runtime is already loaded in this custom-action "
                       L"server (%ls), so this action cannot start its own (%ls); run the "
                       L"other package's actions in a separate server (for example deferred "
                       L"vs immediate) or build both DLLs from one msica project",
                       found, dir);
        return -1;
    }
    return 0;
}

int msica_python_load(MSIHANDLE install, const wchar_t *dir, int major, int minor,
                      struct msica_python *py)
{
    wchar_t runtime_name[32];
    wchar_t path[MSICA_PATH_CAP];

    memset(py, 0, sizeof(*py));
    _snwprintf(runtime_name, 32, L"python%d%d.dll", major, minor);
    _snwprintf(path, MSICA_PATH_CAP, L"%ls\\%ls", dir, runtime_name);
    py->runtime = LoadLibraryExW(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    if (py->runtime == NULL) {
        msica_log_win32(install, L"LoadLibraryExW", GetLastError(), L"cannot load %ls", path);
        return -1;
    }
    _snwprintf(path, MSICA_PATH_CAP, L"%ls\\python3.dll", dir);
    py->abi = LoadLibraryExW(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    if (py->abi == NULL) {
        msica_log_win32(install, L"LoadLibraryExW", GetLastError(), L"cannot load %ls", path);
        return -1;
    }
    return bind_table(install, py);
}

/* The C runtime's invalid-parameter handler ends the process by default;
 * while replacing descriptors, a bad one must only return an error. */
static void __cdecl ignore_invalid_parameter(const wchar_t *expression, const wchar_t *function,
                                             const wchar_t *file, unsigned int line,
                                             uintptr_t reserved)
{
    (void)expression;
    (void)function;
    (void)file;
    (void)line;
    (void)reserved;
}

typedef void(__cdecl *invalid_parameter_handler)(const wchar_t *, const wchar_t *,
                                                 const wchar_t *, unsigned int, uintptr_t);

/* CPython's start-up opens sys.stdin/stdout/stderr on C descriptors 0, 1
 * and 2 of the universal C runtime it links. A custom-action server has no
 * console; under Wine those descriptors hold handles that pass CPython's
 * validity check (GetFileType) and then fail with ERROR_INVALID_HANDLE, which
 * is fatal at start-up (measured). Nothing useful can be there, so point all
 * three at NUL before the first start; msica._host sends what Python writes
 * to the MSI log. */
static int point_stdio_at_nul(MSIHANDLE install)
{
    HMODULE ucrt = LoadLibraryW(L"ucrtbase.dll");
    invalid_parameter_handler(__cdecl * set_handler)(invalid_parameter_handler);
    int(__cdecl * wopen)(const wchar_t *, int, ...);
    int(__cdecl * dup2)(int, int);
    int(__cdecl * close)(int);
    invalid_parameter_handler previous;
    int rc = 0;

    if (ucrt == NULL) {
        msica_log_win32(install, L"LoadLibraryW", GetLastError(),
                        L"cannot reach the C runtime to set up Python's stdio");
        return -1;
    }
    *(FARPROC *)&set_handler = GetProcAddress(ucrt, "_set_thread_local_invalid_parameter_handler");
    *(FARPROC *)&wopen = GetProcAddress(ucrt, "_wopen");
    *(FARPROC *)&dup2 = GetProcAddress(ucrt, "_dup2");
    *(FARPROC *)&close = GetProcAddress(ucrt, "_close");
    if (!set_handler || !wopen || !dup2 || !close) {
        msica_log_line(install, L"ucrtbase.dll lacks _wopen/_dup2/_close; cannot set up "
                                L"Python's stdio");
        return -1;
    }

    previous = set_handler(ignore_invalid_parameter);
    for (int fd = 0; fd <= 2; fd++) {
        int nul = wopen(L"NUL", fd == 0 ? 0x0000 /* _O_RDONLY */ : 0x0001 /* _O_WRONLY */);
        if (nul < 0 || (nul != fd && dup2(nul, fd) != 0)) {
            msica_log_line(install, L"cannot point C descriptor %d at NUL for Python", fd);
            rc = -1;
        }
        if (nul >= 0 && nul != fd)
            close(nul);
    }
    set_handler(previous);
    return rc;
}

/* sys.dont_write_bytecode = True. Compiled files written into the runtime
 * directory would be outside what the payload check covers (and a planted
 * one would run), so none are written, whatever PYTHONDONTWRITEBYTECODE says:
 * CPython reads the environment before the ._pth file makes it isolated. */
static int never_write_bytecode(MSIHANDLE install, struct msica_python *py)
{
    msica_pyobject *sys = py->PyImport_ImportModule("sys");
    msica_pyobject *yes = py->PyBool_FromLong(1);
    int rc = -1;

    if (sys != NULL && yes != NULL &&
        py->PyObject_SetAttrString(sys, "dont_write_bytecode", yes) == 0)
        rc = 0;
    else
        msica_python_log_error(install, py, L"cannot set sys.dont_write_bytecode");
    if (yes)
        py->Py_DecRef(yes);
    if (sys)
        py->Py_DecRef(sys);
    return rc;
}

int msica_python_start(MSIHANDLE install, struct msica_python *py)
{
    if (py->Py_IsInitialized())
        return 0;
    if (point_stdio_at_nul(install) != 0)
        return -1;
    py->Py_InitializeEx(0);
    if (!py->Py_IsInitialized()) {
        msica_log_line(install, L"the bundled Python runtime did not start (Py_InitializeEx)");
        return -1;
    }
    if (never_write_bytecode(install, py) != 0)
        return -1;
    /* Release the GIL: every call, on whatever thread the engine uses,
     * takes it with PyGILState_Ensure and gives it back. */
    py->PyEval_SaveThread();
    return 0;
}

/* "".join(traceback.format_exception(...)) for the pending error, or NULL. */
static msica_pyobject *format_pending(struct msica_python *py)
{
    msica_pyobject *type = NULL, *value = NULL, *tb = NULL;
    msica_pyobject *module = NULL, *format = NULL, *args = NULL, *lines = NULL;
    msica_pyobject *empty = NULL, *text = NULL;

    py->PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    py->PyErr_NormalizeException(&type, &value, &tb);

    module = py->PyImport_ImportModule("traceback");
    if (module == NULL)
        goto cleanup;
    format = py->PyObject_GetAttrString(module, tb ? "format_exception"
                                                   : "format_exception_only");
    args = py->PyTuple_New(tb ? 3 : 2);
    if (format == NULL || args == NULL)
        goto cleanup;
    /* PyTuple_SetItem steals the references. */
    py->PyTuple_SetItem(args, 0, type);
    py->PyTuple_SetItem(args, 1, value);
    if (tb)
        py->PyTuple_SetItem(args, 2, tb);
    type = value = tb = NULL;
    lines = py->PyObject_CallObject(format, args);
    empty = py->PyUnicode_FromString("");
    if (lines != NULL && empty != NULL)
        text = py->PyUnicode_Join(empty, lines);

cleanup:
    if (text == NULL && value != NULL)
        text = py->PyObject_Str(value);
    py->PyErr_Clear();
    if (type)
        py->Py_DecRef(type);
    if (value)
        py->Py_DecRef(value);
    if (tb)
        py->Py_DecRef(tb);
    if (module)
        py->Py_DecRef(module);
    if (format)
        py->Py_DecRef(format);
    if (args)
        py->Py_DecRef(args);
    if (lines)
        py->Py_DecRef(lines);
    if (empty)
        py->Py_DecRef(empty);
    return text;
}

void msica_python_log_error(MSIHANDLE install, struct msica_python *py, const wchar_t *what)
{
    msica_pyobject *text = format_pending(py);
    wchar_t *wide = NULL;

    if (text != NULL)
        wide = py->PyUnicode_AsWideCharString(text, NULL);
    py->PyErr_Clear();
    msica_log_line(install, L"%ls:\n%ls", what, wide ? wide : L"(no Python error text)");
    if (wide)
        py->PyMem_Free(wide);
    if (text)
        py->Py_DecRef(text);
}
