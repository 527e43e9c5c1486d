/*
 * msica_inflate.h - raw DEFLATE decompression (RFC 1951), for payload entries.
 *
 * Written for the shim from the RFC, so it needs no zlib and no Windows API:
 * plain C over two buffers whose sizes are known in advance (the payload
 * records each entry's stored and unpacked sizes). Every read of the input
 * and every write or back-reference into the output is bounds-checked, so a
 * damaged or hostile stream ends in -1 with a reason, never outside a buffer.
 */
#ifndef MSICA_INFLATE_H
#define MSICA_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/* Inflates the raw DEFLATE stream `in` (`in_len` bytes, no zlib or gzip
 * wrapper) into `out`, which must come out exactly `out_len` bytes long.
 * 0 when the stream decodes to exactly `out_len` bytes and ends with the
 * input; -1 otherwise, with `*reason` set to a static English sentence
 * fragment (e.g. "a distance reaches before the start of the output"). */
int msica_inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                      const char **reason);

#endif /* MSICA_INFLATE_H */
