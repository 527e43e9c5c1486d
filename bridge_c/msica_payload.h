/*
 * msica_payload.h - the payload a packaged shim DLL carries.
 *
 * This header is one side of a contract; the other is
 * sdk/msica/build/payload.py, and tests/unit/test_payload_contract.py holds
 * the two together. Change both, and bump MSICA_PAYLOAD_VERSION, or neither.
 *
 * Layout of a packaged DLL file (all integers little-endian):
 *
 *   [PE image as linked]
 *   [archive]    entry_count entries, each:
 *                  struct msica_entry_header, then path_len bytes of UTF-8
 *                  path ('/'-separated, relative), then size bytes of data:
 *                  the file itself (MSICA_METHOD_STORED), or its raw DEFLATE
 *                  stream, RFC 1951 without zlib wrapper (MSICA_METHOD_DEFLATE,
 *                  read by msica_inflate.h)
 *   [trailer]    struct msica_payload_trailer
 *   [Authenticode certificate table, if the DLL is signed afterwards]
 *
 * The trailer is found at the end of the file, or just before the
 * certificate table that the PE security directory points at.
 */
#ifndef MSICA_PAYLOAD_H
#define MSICA_PAYLOAD_H

#include <stdint.h>

#define MSICA_PAYLOAD_MAGIC "MSICA\x00PL"
#define MSICA_PAYLOAD_MAGIC_LEN 8
#define MSICA_PAYLOAD_VERSION 2

/* Entry methods: how the data bytes of an entry are stored. */
#define MSICA_METHOD_STORED 0   /* as they are: size == unpacked_size */
#define MSICA_METHOD_DEFLATE 1  /* raw DEFLATE (RFC 1951) */

#pragma pack(push, 1)
struct msica_entry_header {
    uint32_t path_len;       /* bytes of UTF-8 path that follow this header */
    uint32_t method;         /* MSICA_METHOD_* */
    uint64_t size;           /* bytes of data after the path, as stored */
    uint64_t unpacked_size;  /* bytes of the file once unpacked */
    uint8_t sha256[32];      /* of the file once unpacked */
};

struct msica_payload_trailer {
    char magic[MSICA_PAYLOAD_MAGIC_LEN];
    uint32_t format_version;  /* MSICA_PAYLOAD_VERSION */
    uint16_t py_major;        /* bundled CPython, e.g. 3 */
    uint16_t py_minor;        /* e.g. 12: the runtime DLL is python312.dll */
    uint64_t archive_offset;  /* file offset of the first entry header */
    uint64_t archive_size;    /* bytes from archive_offset to the trailer */
    uint32_t entry_count;
    uint32_t trailer_size;    /* sizeof(struct msica_payload_trailer) */
    uint8_t sha256[32];       /* of the archive bytes; names the runtime dir */
};
#pragma pack(pop)

_Static_assert(sizeof(struct msica_entry_header) == 56, "entry header size");
_Static_assert(sizeof(struct msica_payload_trailer) == 72, "trailer size");

#define MSICA_ENTRY_HEADER_SIZE 56
/* The largest file an entry may unpack to: the shim inflates in memory. */
#define MSICA_MAX_UNPACKED (1ull << 30)
#define MSICA_TRAILER_SIZE 72
#define MSICA_MAX_PATH 32768

#ifdef _WIN32
#include <windows.h>
#include <msi.h>

/* What msica_payload_open found in a DLL file. */
struct msica_payload {
    HANDLE file;
    HANDLE mapping;
    const uint8_t *view;        /* the whole file, mapped read-only */
    uint64_t file_size;
    struct msica_payload_trailer trailer;
    wchar_t digest_hex[65];     /* SHA-256 of the archive, lowercase hex */
};

/* Maps the DLL at `path`, finds and checks the trailer. 0 or -1 (logged). */
int msica_payload_open(MSIHANDLE install, const wchar_t *path, struct msica_payload *payload);

/* Checks the archive's SHA-256 against the trailer. 0 or -1 (logged). */
int msica_payload_verify(MSIHANDLE install, struct msica_payload *payload);

/* Makes sure `dir` holds the unpacked archive: verifies the payload, unpacks
 * it aside and renames it into place; or finds `dir` there already, private
 * (msica_secure_check) and equal to the payload. 0 or -1 (logged). */
int msica_payload_unpack(MSIHANDLE install, struct msica_payload *payload, const wchar_t *dir);

/* Compares every file of the archive with its copy under `dir` (size, then
 * SHA-256 of the content against the entry's; a stored entry byte for byte),
 * and looks for files the archive does not hold. Nothing is inflated. 0 when
 * `dir` holds exactly the archive; 1 with the path of the first missing,
 * different or added file in `differs` (MSICA_MAX_PATH wide chars); -1
 * (logged) when the archive is damaged. */
int msica_payload_check_dir(MSIHANDLE install, const struct msica_payload *payload,
                            const wchar_t *dir, wchar_t *differs);

void msica_payload_close(struct msica_payload *payload);
#endif

#endif /* MSICA_PAYLOAD_H */
