/* msica_payload.c - find, verify and unpack the payload a shim DLL carries. */
#include "msica_payload.h"
#include "msica_inflate.h"
#include "msica_log.h"
#include "msica_secure.h"

#include <bcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



static const wchar_t *const no_payload_hint =
    L"rebuild the DLL with `msica build` and put the new one in the package";

/* Where the archive ends: the end of the file, or the start of an
 * Authenticode certificate table appended after the payload. */
static uint64_t payload_end(const uint8_t *view, uint64_t size)
{
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)view;
    const IMAGE_NT_HEADERS32 *nt32;
    const IMAGE_DATA_DIRECTORY *security = NULL;
    uint64_t offset;

    if (size < sizeof(*dos) || dos->e_magic != IMAGE_DOS_SIGNATURE)
        return size;
    if ((uint64_t)dos->e_lfanew + sizeof(IMAGE_NT_HEADERS64) > size)
        return size;
    nt32 = (const IMAGE_NT_HEADERS32 *)(view + dos->e_lfanew);
    if (nt32->Signature != IMAGE_NT_SIGNATURE)
        return size;
    if (nt32->OptionalHeader.Magic == IMAGE_NT_OPTIONAL_HDR64_MAGIC) {
        const IMAGE_NT_HEADERS64 *nt64 = (const IMAGE_NT_HEADERS64 *)nt32;
        if (nt64->OptionalHeader.NumberOfRvaAndSizes > IMAGE_DIRECTORY_ENTRY_SECURITY)
            security = &nt64->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_SECURITY];
    } else if (nt32->OptionalHeader.NumberOfRvaAndSizes > IMAGE_DIRECTORY_ENTRY_SECURITY) {
        security = &nt32->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_SECURITY];
    }
    if (security == NULL || security->VirtualAddress == 0 || security->Size == 0)
        return size;
    /* For this directory VirtualAddress is a file offset. */
    offset = security->VirtualAddress;
    if (offset < size && offset + security->Size <= size)
        return offset;
    return size;
}

int msica_payload_open(MSIHANDLE install, const wchar_t *path, struct msica_payload *payload)
{
    LARGE_INTEGER size;
    uint64_t end;
    const struct msica_payload_trailer *trailer;

    memset(payload, 0, sizeof(*payload));
    payload->file = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL,
                                OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (payload->file == INVALID_HANDLE_VALUE) {
        msica_log_win32(install, L"CreateFileW", GetLastError(), L"cannot open the DLL %ls",
                        path);
        payload->file = NULL;
        return -1;
    }
    if (!GetFileSizeEx(payload->file, &size)) {
        msica_log_win32(install, L"GetFileSizeEx", GetLastError(), L"cannot size %ls", path);
        goto fail;
    }
    payload->file_size = (uint64_t)size.QuadPart;
    payload->mapping = CreateFileMappingW(payload->file, NULL, PAGE_READONLY, 0, 0, NULL);
    if (payload->mapping == NULL) {
        msica_log_win32(install, L"CreateFileMappingW", GetLastError(), L"cannot map %ls",
                        path);
        goto fail;
    }
    payload->view = MapViewOfFile(payload->mapping, FILE_MAP_READ, 0, 0, 0);
    if (payload->view == NULL) {
        msica_log_win32(install, L"MapViewOfFile", GetLastError(), L"cannot map %ls", path);
        goto fail;
    }

    end = payload_end(payload->view, payload->file_size);
    if (end < MSICA_TRAILER_SIZE) {
        msica_log_line(install, L"%ls is too small to carry a payload (%llu bytes); %ls", path,
                       (unsigned long long)payload->file_size, no_payload_hint);
        goto fail;
    }
    trailer = (const struct msica_payload_trailer *)(payload->view + end - MSICA_TRAILER_SIZE);
    if (memcmp(trailer->magic, MSICA_PAYLOAD_MAGIC, MSICA_PAYLOAD_MAGIC_LEN) != 0) {
        msica_log_line(install,
                       L"%ls carries no msica payload (no trailer at its end: the file is "
                       L"truncated or is the bare shim); %ls",
                       path, no_payload_hint);
        goto fail;
    }
    memcpy(&payload->trailer, trailer, sizeof(*trailer));
    if (payload->trailer.format_version != MSICA_PAYLOAD_VERSION ||
        payload->trailer.trailer_size != MSICA_TRAILER_SIZE) {
        msica_log_line(install,
                       L"%ls has payload format %lu but this shim reads format %d; %ls", path,
                       (unsigned long)payload->trailer.format_version, MSICA_PAYLOAD_VERSION,
                       no_payload_hint);
        goto fail;
    }
    if (payload->trailer.archive_offset > end - MSICA_TRAILER_SIZE ||
        payload->trailer.archive_size !=
            end - MSICA_TRAILER_SIZE - payload->trailer.archive_offset) {
        msica_log_line(install,
                       L"%ls has a damaged payload: the trailer says %llu bytes at offset "
                       L"%llu, the file has room for %llu; %ls",
                       path, (unsigned long long)payload->trailer.archive_size,
                       (unsigned long long)payload->trailer.archive_offset,
                       (unsigned long long)(end - MSICA_TRAILER_SIZE), no_payload_hint);
        goto fail;
    }
    for (int i = 0; i < 32; i++)
        _snwprintf(payload->digest_hex + 2 * i, 3, L"%02x", payload->trailer.sha256[i]);
    payload->digest_hex[64] = L'\0';
    return 0;

fail:
    msica_payload_close(payload);
    return -1;
}

void msica_payload_close(struct msica_payload *payload)
{
    if (payload->view != NULL)
        UnmapViewOfFile(payload->view);
    if (payload->mapping != NULL)
        CloseHandle(payload->mapping);
    if (payload->file != NULL)
        CloseHandle(payload->file);
    payload->view = NULL;
    payload->mapping = NULL;
    payload->file = NULL;
}

/* SHA-256 of `data` into `digest` through CNG. 0 or -1 (logged). */
static int sha256(MSIHANDLE install, const uint8_t *data, uint64_t size, uint8_t digest[32])
{
    BCRYPT_ALG_HANDLE alg = NULL;
    BCRYPT_HASH_HANDLE hash = NULL;
    NTSTATUS status;
    int rc = -1;

    status = BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM, NULL, 0);
    if (!BCRYPT_SUCCESS(status)) {
        msica_log_line(install, L"BCryptOpenAlgorithmProvider(SHA256) failed with 0x%08lx",
                       (unsigned long)status);
        goto cleanup;
    }
    status = BCryptCreateHash(alg, &hash, NULL, 0, NULL, 0, 0);
    if (!BCRYPT_SUCCESS(status)) {
        msica_log_line(install, L"BCryptCreateHash failed with 0x%08lx", (unsigned long)status);
        goto cleanup;
    }
    while (size > 0) {
        ULONG chunk = size > 0x40000000u ? 0x40000000u : (ULONG)size;
        status = BCryptHashData(hash, (PUCHAR)data, chunk, 0);
        if (!BCRYPT_SUCCESS(status)) {
            msica_log_line(install, L"BCryptHashData failed with 0x%08lx",
                           (unsigned long)status);
            goto cleanup;
        }
        data += chunk;
        size -= chunk;
    }
    status = BCryptFinishHash(hash, digest, 32, 0);
    if (!BCRYPT_SUCCESS(status)) {
        msica_log_line(install, L"BCryptFinishHash failed with 0x%08lx", (unsigned long)status);
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (hash != NULL)
        BCryptDestroyHash(hash);
    if (alg != NULL)
        BCryptCloseAlgorithmProvider(alg, 0);
    return rc;
}

int msica_payload_verify(MSIHANDLE install, struct msica_payload *payload)
{
    uint8_t digest[32];

    if (sha256(install, payload->view + payload->trailer.archive_offset,
               payload->trailer.archive_size, digest) != 0)
        return -1;
    if (memcmp(digest, payload->trailer.sha256, 32) != 0) {
        msica_log_line(install,
                       L"the payload is corrupt: its SHA-256 does not match the one recorded "
                       L"when it was built (%.16ls...); the DLL was damaged or altered after "
                       L"`msica build`, rebuild it and do not edit the DLL afterwards",
                       payload->digest_hex);
        return -1;
    }
    return 0;
}

/* Creates every directory on the way to `path` (not `path` itself). */
static int make_parents(MSIHANDLE install, wchar_t *path)
{
    for (wchar_t *p = path + 3; *p; p++) {
        if (*p != L'\\')
            continue;
        *p = L'\0';
        if (!CreateDirectoryW(path, NULL) && GetLastError() != ERROR_ALREADY_EXISTS) {
            DWORD err = GetLastError();
            msica_log_win32(install, L"CreateDirectoryW", err, L"cannot create %ls", path);
            *p = L'\\';
            return -1;
        }
        *p = L'\\';
    }
    return 0;
}

/* Deletes a directory tree that this process made aside; best effort. */
static void remove_tree(const wchar_t *dir)
{
    wchar_t *pattern = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    wchar_t *child = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    WIN32_FIND_DATAW found;
    HANDLE find;

    if (pattern == NULL || child == NULL)
        goto cleanup;
    _snwprintf(pattern, MSICA_MAX_PATH, L"%ls\\*", dir);
    find = FindFirstFileW(pattern, &found);
    if (find != INVALID_HANDLE_VALUE) {
        do {
            if (wcscmp(found.cFileName, L".") == 0 || wcscmp(found.cFileName, L"..") == 0)
                continue;
            _snwprintf(child, MSICA_MAX_PATH, L"%ls\\%ls", dir, found.cFileName);
            if (found.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                remove_tree(child);
            else
                DeleteFileW(child);
        } while (FindNextFileW(find, &found));
        FindClose(find);
    }
    RemoveDirectoryW(dir);

cleanup:
    free(pattern);
    free(child);
}

/* A relative '/'-separated UTF-8 path from the archive, made a Windows path
 * under `root`. Refuses absolute paths, drive letters and "..". */
static int entry_path(const wchar_t *root, const uint8_t *utf8, uint32_t len, wchar_t *out)
{
    wchar_t rel[1024];
    int n;
    size_t root_len = wcslen(root);

    if (len == 0 || len >= 1024)
        return -1;
    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, (const char *)utf8, (int)len, rel,
                            1023);
    if (n <= 0)
        return -1;
    rel[n] = L'\0';
    if (rel[0] == L'/' || wcschr(rel, L'\\') != NULL || wcschr(rel, L':') != NULL)
        return -1;
    for (wchar_t *seg = rel; seg != NULL;) {
        wchar_t *next = wcschr(seg, L'/');
        size_t seg_len = next ? (size_t)(next - seg) : wcslen(seg);
        if (seg_len == 0 || (seg_len == 2 && seg[0] == L'.' && seg[1] == L'.') ||
            (seg_len == 1 && seg[0] == L'.'))
            return -1;
        seg = next ? next + 1 : NULL;
    }
    for (wchar_t *p = rel; *p; p++)
        if (*p == L'/')
            *p = L'\\';
    if (root_len + 1 + (size_t)n + 1 > MSICA_MAX_PATH)
        return -1;
    _snwprintf(out, MSICA_MAX_PATH, L"%ls\\%ls", root, rel);
    return 0;
}

static int write_file(MSIHANDLE install, const wchar_t *path, const uint8_t *data, uint64_t size)
{
    HANDLE file = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL,
                              NULL);
    int rc = -1;

    if (file == INVALID_HANDLE_VALUE) {
        msica_log_win32(install, L"CreateFileW", GetLastError(), L"cannot create %ls", path);
        return -1;
    }
    while (size > 0) {
        DWORD chunk = size > 0x10000000u ? 0x10000000u : (DWORD)size;
        DWORD written = 0;
        if (!WriteFile(file, data, chunk, &written, NULL) || written != chunk) {
            msica_log_win32(install, L"WriteFile", GetLastError(), L"cannot write %ls", path);
            goto cleanup;
        }
        data += chunk;
        size -= chunk;
    }
    rc = 0;

cleanup:
    CloseHandle(file);
    return rc;
}

/* Walks the archive: each call yields the next entry's header, path and
 * data. 1 for an entry, 0 at a clean end, -1 when the archive is damaged. */
struct entry_cursor {
    const uint8_t *at;
    const uint8_t *end;
    uint32_t left;
};

static void entries_begin(const struct msica_payload *payload, struct entry_cursor *cursor)
{
    cursor->at = payload->view + payload->trailer.archive_offset;
    cursor->end = cursor->at + payload->trailer.archive_size;
    cursor->left = payload->trailer.entry_count;
}

static int entries_next(struct entry_cursor *cursor, struct msica_entry_header *header,
                        const uint8_t **name, const uint8_t **data)
{
    if (cursor->left == 0)
        return cursor->at == cursor->end ? 0 : -1;
    if ((uint64_t)(cursor->end - cursor->at) < MSICA_ENTRY_HEADER_SIZE)
        return -1;
    memcpy(header, cursor->at, MSICA_ENTRY_HEADER_SIZE);
    cursor->at += MSICA_ENTRY_HEADER_SIZE;
    if (header->path_len > (uint64_t)(cursor->end - cursor->at) ||
        header->size > (uint64_t)(cursor->end - cursor->at) - header->path_len ||
        header->unpacked_size > MSICA_MAX_UNPACKED ||
        (header->method == MSICA_METHOD_STORED && header->size != header->unpacked_size) ||
        (header->method != MSICA_METHOD_STORED && header->method != MSICA_METHOD_DEFLATE))
        return -1;
    *name = cursor->at;
    *data = cursor->at + header->path_len;
    cursor->at += header->path_len + header->size;
    cursor->left--;
    return 1;
}

static void log_damaged(MSIHANDLE install)
{
    msica_log_line(install, L"the payload's archive is damaged (its entries do not fit its "
                            L"size, or name a method this shim cannot read); rebuild the DLL "
                            L"with `msica build`");
}

static void log_unsafe(MSIHANDLE install, uint32_t index)
{
    msica_log_line(install, L"the payload names an unsafe path in entry %lu; rebuild the DLL "
                            L"with `msica build`",
                   (unsigned long)index);
}

/* entries_next, with the entry's path under `root` made in `path`. 1 for an
 * entry, 0 at a clean end, -1 when the archive is damaged or names an unsafe
 * path (logged). */
static int next_entry_file(MSIHANDLE install, const struct msica_payload *payload,
                           struct entry_cursor *cursor, const wchar_t *root, wchar_t *path,
                           struct msica_entry_header *header, const uint8_t **data)
{
    const uint8_t *name;
    int more = entries_next(cursor, header, &name, data);

    if (more < 0)
        log_damaged(install);
    if (more <= 0)
        return more;
    if (entry_path(root, name, header->path_len, path) != 0) {
        log_unsafe(install, payload->trailer.entry_count - cursor->left - 1);
        return -1;
    }
    return 1;
}

/* The file an entry holds, in `*file` (`header->unpacked_size` bytes): the
 * stored bytes themselves, or a buffer inflated from them that the caller
 * frees with `*owned`. Its SHA-256 must be the entry's. 0 or -1 (logged). */
static int entry_content(MSIHANDLE install, const struct msica_entry_header *header,
                         const uint8_t *data, const wchar_t *path, const uint8_t **file,
                         uint8_t **owned)
{
    uint8_t digest[32];
    const char *reason;

    *owned = NULL;
    *file = data;
    if (header->method == MSICA_METHOD_DEFLATE) {
        *owned = malloc(header->unpacked_size ? (size_t)header->unpacked_size : 1);
        if (*owned == NULL) {
            msica_log_line(install, L"out of memory while unpacking %ls (%llu bytes)", path,
                           (unsigned long long)header->unpacked_size);
            return -1;
        }
        if (msica_inflate_raw(data, (size_t)header->size, *owned,
                              (size_t)header->unpacked_size, &reason) != 0) {
            msica_log_line(install,
                           L"the payload's entry for %ls is damaged: its compressed data "
                           L"cannot be inflated (%hs); rebuild the DLL with `msica build`",
                           path, reason);
            goto fail;
        }
        *file = *owned;
    }
    if (sha256(install, *file, header->unpacked_size, digest) != 0)
        goto fail;
    if (memcmp(digest, header->sha256, 32) != 0) {
        msica_log_line(install,
                       L"the payload's entry for %ls unpacks to other bytes than were packed "
                       L"(its SHA-256 differs); rebuild the DLL with `msica build`",
                       path);
        goto fail;
    }
    return 0;

fail:
    free(*owned);
    *owned = NULL;
    return -1;
}

/* Writes every entry of the archive under `root`. 0 or -1 (logged). */
static int write_entries(MSIHANDLE install, const struct msica_payload *payload,
                         const wchar_t *root, wchar_t *path)
{
    struct entry_cursor cursor;
    struct msica_entry_header header;
    const uint8_t *data, *file;
    uint8_t *owned;
    int more;

    entries_begin(payload, &cursor);
    while ((more = next_entry_file(install, payload, &cursor, root, path, &header, &data)) == 1) {
        int rc;
        if (entry_content(install, &header, data, path, &file, &owned) != 0)
            return -1;
        rc = make_parents(install, path) != 0 ||
             write_file(install, path, file, header.unpacked_size) != 0;
        free(owned);
        if (rc)
            return -1;
    }
    return more;
}

/* 1 when the file at `path` holds what the entry unpacks to: the same size,
 * then the same bytes (stored) or the same SHA-256 (compressed, so nothing
 * is inflated on this path). */
static int same_content(MSIHANDLE install, const wchar_t *path,
                        const struct msica_entry_header *header, const uint8_t *data)
{
    HANDLE file = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER file_size;
    HANDLE mapping;
    const uint8_t *view;
    uint64_t size = header->unpacked_size;
    uint8_t digest[32];
    int same = 0;

    if (file == INVALID_HANDLE_VALUE)
        return 0;
    if (!GetFileSizeEx(file, &file_size) || (uint64_t)file_size.QuadPart != size)
        goto cleanup;
    if (size == 0) {
        same = 1;
        goto cleanup;
    }
    mapping = CreateFileMappingW(file, NULL, PAGE_READONLY, 0, 0, NULL);
    if (mapping == NULL)
        goto cleanup;
    view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    if (view != NULL) {
        if (header->method == MSICA_METHOD_STORED)
            same = memcmp(view, data, (size_t)size) == 0;
        else
            same = sha256(install, view, size, digest) == 0 &&
                   memcmp(digest, header->sha256, 32) == 0;
        UnmapViewOfFile(view);
    }
    CloseHandle(mapping);

cleanup:
    CloseHandle(file);
    return same;
}

/* 1 when `relative` (a '\\'-separated path under the runtime directory)
 * names an entry of the archive. */
static int in_archive(const struct msica_payload *payload, const wchar_t *relative)
{
    struct entry_cursor cursor;
    struct msica_entry_header header;
    const uint8_t *name, *data;
    wchar_t entry[1024];

    entries_begin(payload, &cursor);
    while (entries_next(&cursor, &header, &name, &data) == 1) {
        int n = MultiByteToWideChar(CP_UTF8, 0, (const char *)name, (int)header.path_len,
                                    entry, 1023);
        if (n <= 0)
            continue;
        entry[n] = L'\0';
        for (wchar_t *p = entry; *p; p++)
            if (*p == L'/')
                *p = L'\\';
        if (_wcsicmp(entry, relative) == 0)
            return 1;
    }
    return 0;
}

/* Finds a file under `root`\`relative` that the archive does not hold; its
 * full path goes to `extra`. 1 when found, 0 when there is none. */
static int find_extra(const struct msica_payload *payload, const wchar_t *root,
                      const wchar_t *relative, wchar_t *extra)
{
    wchar_t *pattern = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    wchar_t *child = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    WIN32_FIND_DATAW found;
    HANDLE find = INVALID_HANDLE_VALUE;
    int hit = 0;

    if (pattern == NULL || child == NULL)
        goto cleanup;
    _snwprintf(pattern, MSICA_MAX_PATH, L"%ls%ls%ls\\*", root, relative[0] ? L"\\" : L"",
               relative);
    find = FindFirstFileW(pattern, &found);
    if (find == INVALID_HANDLE_VALUE)
        goto cleanup;
    do {
        if (wcscmp(found.cFileName, L".") == 0 || wcscmp(found.cFileName, L"..") == 0)
            continue;
        _snwprintf(child, MSICA_MAX_PATH, L"%ls%ls%ls", relative, relative[0] ? L"\\" : L"",
                   found.cFileName);
        if (found.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            hit = find_extra(payload, root, child, extra);
        else if (!in_archive(payload, child)) {
            _snwprintf(extra, MSICA_MAX_PATH, L"%ls\\%ls", root, child);
            hit = 1;
        }
    } while (!hit && FindNextFileW(find, &found));

cleanup:
    if (find != INVALID_HANDLE_VALUE)
        FindClose(find);
    free(pattern);
    free(child);
    return hit;
}

int msica_payload_check_dir(MSIHANDLE install, const struct msica_payload *payload,
                            const wchar_t *dir, wchar_t *differs)
{
    struct entry_cursor cursor;
    struct msica_entry_header header;
    const uint8_t *data;
    int more;

    entries_begin(payload, &cursor);
    while ((more = next_entry_file(install, payload, &cursor, dir, differs, &header, &data)) == 1)
        if (!same_content(install, differs, &header, data))
            return 1;
    if (more < 0)
        return -1;
    /* Nothing may be added either: a planted module, compiled file or DLL
     * would be found before the payload's own. */
    return find_extra(payload, dir, L"", differs);
}

static int is_directory(const wchar_t *path)
{
    DWORD attrs = GetFileAttributesW(path);
    return attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY);
}

/* An existing runtime directory is used only when nobody else could have
 * written it, the payload is the one that was built (its SHA-256; a damaged
 * DLL fails the same way whether or not its runtime was unpacked before) and
 * the directory holds exactly what the payload holds (each file's size and
 * SHA-256 as recorded in its entry: compressed entries are not inflated). */
static int reuse(MSIHANDLE install, struct msica_payload *payload, const wchar_t *dir)
{
    wchar_t *differs = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    int rc = -1, same;

    if (differs == NULL) {
        msica_log_line(install, L"out of memory while checking the runtime directory");
        return -1;
    }
    if (msica_secure_check(install, dir) != 0 || msica_payload_verify(install, payload) != 0)
        goto cleanup;
    same = msica_payload_check_dir(install, payload, dir, differs);
    if (same == 0)
        rc = 0;
    else if (same > 0)
        msica_log_line(install,
                       L"the unpacked runtime was changed after unpacking: %ls is missing, "
                       L"added or differs from the payload, so nothing is loaded from %ls; "
                       L"delete that directory and msica unpacks it again",
                       differs, dir);

cleanup:
    free(differs);
    return rc;
}

int msica_payload_unpack(MSIHANDLE install, struct msica_payload *payload, const wchar_t *dir)
{
    wchar_t *aside = NULL;
    wchar_t *path = NULL;
    int rc = -1;

    if (is_directory(dir))
        return reuse(install, payload, dir);
    if (msica_payload_verify(install, payload) != 0)
        return -1;

    aside = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    path = malloc(MSICA_MAX_PATH * sizeof(wchar_t));
    if (aside == NULL || path == NULL) {
        msica_log_line(install, L"out of memory while unpacking the payload");
        goto cleanup;
    }
    /* Unpack beside the final directory, then rename: a reader never sees a
     * half-written runtime, and two processes racing both end up with one
     * complete copy. */
    _snwprintf(aside, MSICA_MAX_PATH, L"%ls.partial-%lu-%lu", dir,
               (unsigned long)GetCurrentProcessId(), (unsigned long)GetCurrentThreadId());
    if (msica_secure_mkdir(install, aside) != 0)
        goto cleanup;
    if (write_entries(install, payload, aside, path) != 0) {
        remove_tree(aside);
        goto cleanup;
    }
    if (!MoveFileExW(aside, dir, 0)) {
        DWORD err = GetLastError();
        remove_tree(aside);
        if (!is_directory(dir)) {
            msica_log_win32(install, L"MoveFileExW", err,
                            L"cannot move the unpacked runtime into %ls", dir);
            goto cleanup;
        }
        /* Another process finished the same payload first: use its copy,
         * once it is shown to be private and the same. */
        rc = reuse(install, payload, dir);
        goto cleanup;
    }
    rc = 0;

cleanup:
    free(aside);
    free(path);
    return rc;
}
