/* payload_probe.exe DLL DIR: the shim's own payload code (bridge_c/msica_payload.c)
 * opens, verifies and unpacks DLL into DIR. Exit 0 on success, 2 when open
 * fails, 3 when verify fails, 4 when unpack fails. Run under wine by
 * tests/unit/test_payload_contract.py on DLLs the Python packager wrote.
 *
 * payload_probe.exe grant-everyone DIR: adds an ACE giving Everyone full
 * control of DIR, as a careless or hostile user could, for the tests of the
 * directory policy (bridge_c/msica_secure.h). */
#include <aclapi.h>
#include <stdio.h>

#include "msica_payload.h"

static int grant_everyone(const wchar_t *dir)
{
    PACL old_dacl = NULL, new_dacl = NULL;
    PSECURITY_DESCRIPTOR descriptor = NULL;
    EXPLICIT_ACCESSW access = {0};
    DWORD status = GetNamedSecurityInfoW(dir, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL,
                                         NULL, &old_dacl, NULL, &descriptor);
    if (status != ERROR_SUCCESS)
        return 5;
    access.grfAccessPermissions = GENERIC_ALL;
    access.grfAccessMode = GRANT_ACCESS;
    access.grfInheritance = SUB_CONTAINERS_AND_OBJECTS_INHERIT;
    access.Trustee.TrusteeForm = TRUSTEE_IS_NAME;
    access.Trustee.ptstrName = L"Everyone";
    if (SetEntriesInAclW(1, &access, old_dacl, &new_dacl) != ERROR_SUCCESS)
        return 6;
    status = SetNamedSecurityInfoW((wchar_t *)dir, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION,
                                   NULL, NULL, new_dacl, NULL);
    LocalFree(new_dacl);
    LocalFree(descriptor);
    return status == ERROR_SUCCESS ? 0 : 7;
}

int wmain(int argc, wchar_t **argv)
{
    struct msica_payload payload;
    int rc = 0;

    if (argc == 3 && wcscmp(argv[1], L"grant-everyone") == 0)
        return grant_everyone(argv[2]);
    if (argc != 3) {
        fwprintf(stderr, L"usage: payload_probe DLL DIR | grant-everyone DIR\n");
        return 1;
    }
    if (msica_payload_open(0, argv[1], &payload) != 0)
        return 2;
    if (msica_payload_verify(0, &payload) != 0)
        rc = 3;
    else if (msica_payload_unpack(0, &payload, argv[2]) != 0)
        rc = 4;
    else
        wprintf(L"%ls %u.%u %lu\n", payload.digest_hex, payload.trailer.py_major,
                payload.trailer.py_minor, (unsigned long)payload.trailer.entry_count);
    msica_payload_close(&payload);
    return rc;
}
