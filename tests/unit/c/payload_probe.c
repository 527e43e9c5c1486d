/* payload_probe.exe DLL DIR: the shim's own payload code (bridge_c/msica_payload.c)
 * opens, verifies and unpacks DLL into DIR. Exit 0 on success, 2 when open
 * fails, 3 when verify fails, 4 when unpack fails. Run under wine by
 * tests/unit/test_payload_contract.py on DLLs the Python packager wrote. */
#include <stdio.h>

#include "msica_payload.h"

int wmain(int argc, wchar_t **argv)
{
    struct msica_payload payload;
    int rc = 0;

    if (argc != 3) {
        fwprintf(stderr, L"usage: payload_probe DLL DIR\n");
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
