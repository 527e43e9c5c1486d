/*
 * msica_log.h - lines into the MSI log from the shim.
 *
 * Everything that fails before Python is up is reported here, so a user who
 * only has the verbose log (/l*v) still sees why an action returned 1603.
 * Every line starts with "msica: " so it can be found among the engine's.
 */
#ifndef MSICA_LOG_H
#define MSICA_LOG_H

#include <windows.h>
#include <msi.h>

/* Writes one formatted line (printf-style, wide) as INSTALLMESSAGE_INFO.
 * The text goes in field 1 behind a "[1]" template, so brackets in it are
 * never expanded by the engine. */
void msica_log_line(MSIHANDLE install, const wchar_t *fmt, ...);

/* Like msica_log_line, with the text of a Win32 error code appended:
 * "<message>: <api> failed with error <code> (<system text>)". */
void msica_log_win32(MSIHANDLE install, const wchar_t *api, DWORD code,
                     const wchar_t *fmt, ...);

#endif /* MSICA_LOG_H */
