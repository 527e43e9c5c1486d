/* msica_secure.c - private directories for the unpacked runtime. */
#include "msica_secure.h"
#include "msica_log.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>

/* Any of these in an allow ACE lets a SID change what is in the directory. */
#define WRITE_RIGHTS                                                                     \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_DELETE_CHILD |             \
     FILE_WRITE_ATTRIBUTES | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL)

/* The token user's SID as text (LocalFree it). NULL on failure (logged). */
static wchar_t *current_sid(MSIHANDLE install)
{
    HANDLE token = NULL;
    BYTE buffer[512];
    DWORD size = 0;
    wchar_t *text = NULL;

    if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token) &&
        !OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        msica_log_win32(install, L"OpenProcessToken", GetLastError(),
                        L"cannot tell which identity runs this action");
        return NULL;
    }
    if (!GetTokenInformation(token, TokenUser, buffer, sizeof(buffer), &size) ||
        !ConvertSidToStringSidW(((TOKEN_USER *)buffer)->User.Sid, &text)) {
        msica_log_win32(install, L"GetTokenInformation", GetLastError(),
                        L"cannot tell which identity runs this action");
        text = NULL;
    }
    CloseHandle(token);
    return text;
}

int msica_secure_mkdir(MSIHANDLE install, const wchar_t *path)
{
    wchar_t sddl[512];
    wchar_t *me = current_sid(install);
    SECURITY_ATTRIBUTES attributes = {sizeof(attributes), NULL, FALSE};
    int rc = -1;

    if (me == NULL)
        return -1;
    _snwprintf(sddl, 512, L"D:P(A;OICI;FA;;;%ls)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", me);
    sddl[511] = L'\0';
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl, SDDL_REVISION_1, &attributes.lpSecurityDescriptor, NULL)) {
        msica_log_win32(install, L"ConvertStringSecurityDescriptorToSecurityDescriptorW",
                        GetLastError(), L"cannot describe a private directory");
        goto cleanup;
    }
    if (!CreateDirectoryW(path, &attributes) && GetLastError() != ERROR_ALREADY_EXISTS) {
        msica_log_win32(install, L"CreateDirectoryW", GetLastError(), L"cannot create %ls",
                        path);
        goto cleanup;
    }
    rc = 0;

cleanup:
    LocalFree(attributes.lpSecurityDescriptor);
    LocalFree(me);
    return rc;
}

/* True for the current identity, LocalSystem and BUILTIN\Administrators. */
static int trusted(PSID sid, PSID me)
{
    return EqualSid(sid, me) || IsWellKnownSid(sid, WinLocalSystemSid) ||
           IsWellKnownSid(sid, WinBuiltinAdministratorsSid);
}

int msica_secure_check(MSIHANDLE install, const wchar_t *path)
{
    PSID owner = NULL, me = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR descriptor = NULL;
    wchar_t *me_text = current_sid(install);
    wchar_t *culprit = NULL;
    DWORD status;
    int rc = -1;

    if (me_text == NULL || !ConvertStringSidToSidW(me_text, &me))
        goto cleanup;
    status = GetNamedSecurityInfoW(path, SE_FILE_OBJECT,
                                   OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                   &owner, NULL, &dacl, NULL, &descriptor);
    if (status != ERROR_SUCCESS) {
        msica_log_win32(install, L"GetNamedSecurityInfoW", status,
                        L"cannot read who may write %ls, so nothing is loaded from it", path);
        goto cleanup;
    }
    if (owner == NULL || !trusted(owner, me)) {
        if (owner != NULL)
            ConvertSidToStringSidW(owner, &culprit);
        msica_log_line(install,
                       L"%ls is owned by %ls, not by the identity running this action (%ls), "
                       L"SYSTEM or Administrators, so nothing is loaded from it; delete it and "
                       L"msica unpacks a private copy",
                       path, culprit ? culprit : L"nobody", me_text);
        goto cleanup;
    }
    if (dacl == NULL) {
        msica_log_line(install,
                       L"%ls has no access list (everyone may write it), so nothing is loaded "
                       L"from it; delete it and msica unpacks a private copy",
                       path);
        goto cleanup;
    }
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *header = NULL;
        ACCESS_ALLOWED_ACE *ace;
        if (!GetAce(dacl, i, (void **)&header) || header->AceType != ACCESS_ALLOWED_ACE_TYPE)
            continue;
        ace = (ACCESS_ALLOWED_ACE *)header;
        if ((ace->Mask & WRITE_RIGHTS) && !trusted((PSID)&ace->SidStart, me)) {
            ConvertSidToStringSidW((PSID)&ace->SidStart, &culprit);
            msica_log_line(install,
                           L"%ls can be written by %ls, not only by the identity running this "
                           L"action (%ls), SYSTEM or Administrators, so nothing is loaded from "
                           L"it; delete it and msica unpacks a private copy",
                           path, culprit ? culprit : L"another account", me_text);
            goto cleanup;
        }
    }
    rc = 0;

cleanup:
    LocalFree(culprit);
    LocalFree(descriptor);
    LocalFree(me);
    LocalFree(me_text);
    return rc;
}
