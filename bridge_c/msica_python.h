/*
 * msica_python.h - the CPython runtime, bound through one table.
 *
 * The shim never includes Python.h: every function it calls is looked up in
 * python3.dll (the stable ABI) when the runtime is loaded, so one prebuilt
 * shim serves every CPython version the packager may bundle. Objects are
 * opaque pointers here; reference counts go through Py_DecRef.
 */
#ifndef MSICA_PYTHON_H
#define MSICA_PYTHON_H

#include <windows.h>
#include <msi.h>

typedef struct msica_pyobject msica_pyobject;
typedef intptr_t msica_py_ssize_t;

struct msica_python {
    HMODULE runtime;  /* pythonXY.dll */
    HMODULE abi;      /* python3.dll, where every symbol below is found */

    /* lifecycle */
    void (*Py_InitializeEx)(int install_signal_handlers);
    int (*Py_IsInitialized)(void);

    /* threads and the GIL */
    int (*PyGILState_Ensure)(void);
    void (*PyGILState_Release)(int state);
    void *(*PyEval_SaveThread)(void);

    /* objects */
    msica_pyobject *(*PyImport_ImportModule)(const char *name);
    msica_pyobject *(*PyObject_GetAttrString)(msica_pyobject *obj, const char *name);
    msica_pyobject *(*PyObject_CallObject)(msica_pyobject *callable, msica_pyobject *args);
    msica_pyobject *(*PyObject_Str)(msica_pyobject *obj);
    int (*PyObject_SetAttrString)(msica_pyobject *obj, const char *name, msica_pyobject *value);
    msica_pyobject *(*PyBool_FromLong)(long value);
    msica_pyobject *(*PyTuple_New)(msica_py_ssize_t size);
    int (*PyTuple_SetItem)(msica_pyobject *tuple, msica_py_ssize_t pos, msica_pyobject *item);
    msica_pyobject *(*PyUnicode_FromWideChar)(const wchar_t *text, msica_py_ssize_t size);
    msica_pyobject *(*PyUnicode_FromString)(const char *utf8);
    msica_pyobject *(*PyUnicode_Join)(msica_pyobject *separator, msica_pyobject *seq);
    wchar_t *(*PyUnicode_AsWideCharString)(msica_pyobject *text, msica_py_ssize_t *size);
    msica_pyobject *(*PyLong_FromUnsignedLong)(unsigned long value);
    unsigned long (*PyLong_AsUnsignedLong)(msica_pyobject *value);
    void (*Py_DecRef)(msica_pyobject *obj);
    void (*PyMem_Free)(void *ptr);

    /* errors */
    msica_pyobject *(*PyErr_Occurred)(void);
    void (*PyErr_Fetch)(msica_pyobject **type, msica_pyobject **value, msica_pyobject **tb);
    void (*PyErr_NormalizeException)(msica_pyobject **type, msica_pyobject **value,
                                     msica_pyobject **tb);
    void (*PyErr_Clear)(void);
};

/* Loads pythonXY.dll and python3.dll from `dir` (or finds them loaded by an
 * earlier call in this process) and fills `py`. The caller has refused a
 * different runtime first (msica_python_refuse_other). 0 or -1 (logged,
 * naming the symbol). */
int msica_python_load(MSIHANDLE install, const wchar_t *dir, int major, int minor,
                      struct msica_python *py);

/* Refuses, with a log line, when a Python runtime from another directory is
 * already loaded in this process. 0 or -1 (logged). */
int msica_python_refuse_other(MSIHANDLE install, const wchar_t *dir, int major, int minor);

/* 1 when pythonXY.dll from `dir` is already loaded in this process: an
 * earlier call verified `dir` before loading it. */
int msica_python_loaded_from(const wchar_t *dir, int major, int minor);

/* Starts the interpreter once per process (isolated by the ._pth file the
 * packager writes) and releases the GIL. 0 or -1 (logged). */
int msica_python_start(MSIHANDLE install, struct msica_python *py);

/* Logs the pending Python exception with its traceback, then clears it.
 * The caller holds the GIL. */
void msica_python_log_error(MSIHANDLE install, struct msica_python *py, const wchar_t *what);

#endif /* MSICA_PYTHON_H */
