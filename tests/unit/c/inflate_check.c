/* inflate_check CASES RESULTS: runs bridge_c/msica_inflate.c on every case of
 * the file CASES and writes what it made of each to RESULTS, for
 * tests/unit/test_inflate.py (which builds it for this machine, with
 * AddressSanitizer when the compiler has it).
 *
 * CASES: records of  u32 in_len, u32 out_len, in_len bytes (little-endian).
 * RESULTS: per case  i32 rc, then out_len bytes when rc is 0, else
 *          u32 reason_len and the reason's bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msica_inflate.h"

static int read_u32(FILE *f, uint32_t *value)
{
    uint8_t b[4];
    if (fread(b, 1, 4, f) != 4)
        return -1;
    *value = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static void write_u32(FILE *f, uint32_t value)
{
    uint8_t b[4] = {value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >> 24};
    fwrite(b, 1, 4, f);
}

int main(int argc, char **argv)
{
    FILE *cases, *results;
    uint32_t in_len, out_len;

    if (argc != 3)
        return 2;
    cases = fopen(argv[1], "rb");
    results = fopen(argv[2], "wb");
    if (cases == NULL || results == NULL)
        return 2;
    while (read_u32(cases, &in_len) == 0 && read_u32(cases, &out_len) == 0) {
        /* Exactly-sized heap buffers, so the sanitizer sees any overrun. */
        uint8_t *in = malloc(in_len ? in_len : 1);
        uint8_t *out = malloc(out_len ? out_len : 1);
        const char *reason = NULL;
        int rc;

        if (in == NULL || out == NULL || fread(in, 1, in_len, cases) != in_len)
            return 2;
        rc = msica_inflate_raw(in, in_len, out, out_len, &reason);
        write_u32(results, (uint32_t)rc);
        if (rc == 0) {
            fwrite(out, 1, out_len, results);
        } else {
            write_u32(results, (uint32_t)strlen(reason));
            fwrite(reason, 1, strlen(reason), results);
        }
        free(in);
        free(out);
    }
    fclose(results);
    fclose(cases);
    return 0;
}
