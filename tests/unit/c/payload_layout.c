/* Prints the layout of the payload structs as the C compiler sees it, for
 * tests/unit/test_payload_contract.py to compare with the Python side. */
#include <stddef.h>
#include <stdio.h>

#include "msica_payload.h"

#define FIELD(type, name) \
    printf("%s.%s %u %u\n", #type, #name, (unsigned)offsetof(struct type, name), \
           (unsigned)sizeof(((struct type *)0)->name))

int main(void)
{
    printf("magic ");
    for (int i = 0; i < MSICA_PAYLOAD_MAGIC_LEN; i++)
        printf("%02x", (unsigned char)MSICA_PAYLOAD_MAGIC[i]);
    printf("\n");
    printf("version %d\n", MSICA_PAYLOAD_VERSION);
    printf("method_stored %d\n", MSICA_METHOD_STORED);
    printf("method_deflate %d\n", MSICA_METHOD_DEFLATE);
    printf("max_unpacked %llu\n", (unsigned long long)MSICA_MAX_UNPACKED);
    printf("sizeof.msica_entry_header %u\n", (unsigned)sizeof(struct msica_entry_header));
    printf("sizeof.msica_payload_trailer %u\n", (unsigned)sizeof(struct msica_payload_trailer));
    FIELD(msica_entry_header, path_len);
    FIELD(msica_entry_header, method);
    FIELD(msica_entry_header, size);
    FIELD(msica_entry_header, unpacked_size);
    FIELD(msica_entry_header, sha256);
    FIELD(msica_payload_trailer, magic);
    FIELD(msica_payload_trailer, format_version);
    FIELD(msica_payload_trailer, py_major);
    FIELD(msica_payload_trailer, py_minor);
    FIELD(msica_payload_trailer, archive_offset);
    FIELD(msica_payload_trailer, archive_size);
    FIELD(msica_payload_trailer, entry_count);
    FIELD(msica_payload_trailer, trailer_size);
    FIELD(msica_payload_trailer, sha256);
    return 0;
}
