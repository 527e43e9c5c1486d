/* ui_recorder.exe MSI OUT [NAME=VALUE...]: installs MSI silently with an
 * external UI handler that writes every progress, action-data and info
 * message it receives to OUT, one per line as "<type> <text>". Wine's verbose
 * log has no progress messages (measured); this shows what a UI would see.
 * It answers every WARNING message with IDCANCEL, as a user pressing Cancel
 * would. The last line of OUT is "result <code>", MsiInstallProductW's
 * return, written before the process exits; the exit code is that code too.
 * Run under wine by tests/engine/test_session.py. */
#include <windows.h>
#include <msi.h>
#include <stdio.h>

static FILE *out;

static int WINAPI record_message(LPVOID context, UINT type, LPCWSTR text)
{
    (void)context;
    fwprintf(out, L"%08x %ls\n", type & 0xff000000u, text ? text : L"");
    fflush(out);
    if ((type & 0xff000000u) == INSTALLMESSAGE_WARNING)
        return IDCANCEL;
    return 0; /* not handled: the engine goes on as without a UI */
}

int wmain(int argc, wchar_t **argv)
{
    wchar_t command_line[8192] = L"";
    UINT rc;

    if (argc < 3) {
        fwprintf(stderr, L"usage: ui_recorder MSI OUT [NAME=VALUE...]\n");
        return 1;
    }
    out = _wfopen(argv[2], L"w, ccs=UTF-8");
    if (out == NULL)
        return 2;
    for (int i = 3; i < argc; i++) {
        wcsncat(command_line, argv[i], 8191 - wcslen(command_line));
        wcsncat(command_line, L" ", 8191 - wcslen(command_line));
    }
    MsiSetInternalUI(INSTALLUILEVEL_NONE, NULL);
    MsiSetExternalUIW(record_message,
                      INSTALLLOGMODE_PROGRESS | INSTALLLOGMODE_ACTIONDATA |
                          INSTALLLOGMODE_ACTIONSTART | INSTALLLOGMODE_INFO |
                          INSTALLLOGMODE_WARNING,
                      NULL);
    rc = MsiInstallProductW(argv[1], command_line);
    fwprintf(out, L"result %u\n", rc);
    fclose(out);
    return (int)rc;
}
