/* msica_log.c - lines into the MSI log from the shim. */
#include "msica_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <msiquery.h>

#define MSICA_LOG_MAX 2048

/* Wine formats the text of record fields again when it logs a message, so
 * "[x]" in a path or message would be replaced by property x (measured with
 * Wine 8; Windows leaves field values as they are). Under Wine each bracket
 * is written as the escape [\[] or [\]], which that second pass turns back
 * into the bracket. */
static int under_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

static void escape_brackets(const wchar_t *text, wchar_t *out, size_t cap)
{
    size_t used = 0;
    for (; *text && used + 5 < cap; text++) {
        if (*text == L'[' || *text == L']') {
            out[used++] = L'[';
            out[used++] = L'\\';
            out[used++] = *text;
            out[used++] = L']';
        } else {
            out[used++] = *text;
        }
    }
    out[used] = L'\0';
}

static void log_text(MSIHANDLE install, const wchar_t *text)
{
    wchar_t escaped[MSICA_LOG_MAX * 4];
    MSIHANDLE record;

    /* No install session: a test program drives the shim's code; its
     * standard error is the log. */
    if (install == 0) {
        fwprintf(stderr, L"%ls\n", text);
        return;
    }
    record = MsiCreateRecord(1);
    if (record == 0)
        return;
    if (under_wine()) {
        escape_brackets(text, escaped, sizeof(escaped) / sizeof(escaped[0]));
        text = escaped;
    }
    MsiRecordSetStringW(record, 0, L"[1]");
    MsiRecordSetStringW(record, 1, text);
    MsiProcessMessage(install, INSTALLMESSAGE_INFO, record);
    MsiCloseHandle(record);
}

static void format_prefixed(wchar_t *out, size_t cap, const wchar_t *fmt, va_list args)
{
    int used = _snwprintf(out, cap, L"msica: ");
    if (used < 0)
        used = 0;
    _vsnwprintf(out + used, cap - (size_t)used, fmt, args);
    out[cap - 1] = L'\0';
}

void msica_log_line(MSIHANDLE install, const wchar_t *fmt, ...)
{
    wchar_t text[MSICA_LOG_MAX];
    va_list args;
    va_start(args, fmt);
    format_prefixed(text, MSICA_LOG_MAX, fmt, args);
    va_end(args);
    log_text(install, text);
}

void msica_log_win32(MSIHANDLE install, const wchar_t *api, DWORD code,
                     const wchar_t *fmt, ...)
{
    wchar_t text[MSICA_LOG_MAX];
    wchar_t system_text[512] = L"";
    va_list args;
    size_t len;

    va_start(args, fmt);
    format_prefixed(text, MSICA_LOG_MAX, fmt, args);
    va_end(args);

    FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code,
                   0, system_text, 512, NULL);
    /* FormatMessage ends its text with CR LF; the log wants one line. */
    len = wcslen(system_text);
    while (len > 0 && (system_text[len - 1] == L'\r' || system_text[len - 1] == L'\n' ||
                       system_text[len - 1] == L' ' || system_text[len - 1] == L'.'))
        system_text[--len] = L'\0';

    len = wcslen(text);
    _snwprintf(text + len, MSICA_LOG_MAX - len, L": %ls failed with error %lu (%ls)", api,
               (unsigned long)code, system_text[0] ? system_text : L"no system text");
    text[MSICA_LOG_MAX - 1] = L'\0';
    log_text(install, text);
}
