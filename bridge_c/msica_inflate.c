/* msica_inflate.c - raw DEFLATE decompression (RFC 1951), bounds-checked.
 *
 * Section numbers below are those of RFC 1951. Huffman codes decode through
 * a table indexed by the next FAST_BITS input bits; longer codes walk the
 * canonical code (3.2.2) one bit at a time, which is rare in practice. */
#include "msica_inflate.h"

#include <string.h>

#define MAX_BITS 15      /* longest code length (3.2.2) */
#define MAX_SYMBOLS 288  /* literal/length alphabet, the largest (3.2.5) */
#define FAST_BITS 10     /* codes up to this length take one table lookup */
#define MAX_LITLEN_CODES 286
#define MAX_DIST_CODES 30
#define CODELEN_CODES 19

/* Lengths 3..258 of symbols 257..285, and their extra bits (3.2.5). */
static const uint16_t length_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,
                                         15, 17, 19, 23, 27, 31, 35, 43, 51,  59,
                                         67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
/* Distances 1..32768 of symbols 0..29, and their extra bits (3.2.5). */
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,
                                       17,   25,   33,   49,   65,   97,    129,   193,
                                       257,  385,  513,  769,  1025, 1537,  2049,  3073,
                                       4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
/* The order in which a dynamic block lists the code-length code (3.2.7). */
static const uint8_t codelen_order[CODELEN_CODES] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                     11, 4,  12, 3, 13, 2, 14, 1, 15};

/* A Huffman code ready to decode. */
struct huffman {
    /* Next FAST_BITS input bits -> (code length << 9) | symbol, for codes of
     * at most FAST_BITS bits; 0 where a longer code (or none) starts. */
    uint16_t fast[1u << FAST_BITS];
    uint16_t count[MAX_BITS + 1];  /* how many codes have each length */
    uint16_t symbol[MAX_SYMBOLS];  /* symbols in canonical code order */
};

struct inflater {
    const uint8_t *in;
    size_t in_len;
    size_t in_pos;    /* next input byte to load into `bits` */
    uint64_t bits;    /* loaded input, least significant bit first (3.1.1) */
    unsigned nbits;   /* how many bits `bits` holds */
    uint8_t *out;
    size_t out_len;
    size_t out_pos;
    const char *reason;
    struct huffman lit;
    struct huffman dist;
};

static int fail(struct inflater *z, const char *reason)
{
    z->reason = reason;
    return -1;
}

static void refill(struct inflater *z)
{
    while (z->nbits <= 56 && z->in_pos < z->in_len) {
        z->bits |= (uint64_t)z->in[z->in_pos++] << z->nbits;
        z->nbits += 8;
    }
}

/* The next `n` (at most 16) bits of the input as a number, first bit lowest. */
static int take(struct inflater *z, unsigned n, unsigned *value)
{
    if (z->nbits < n) {
        refill(z);
        if (z->nbits < n)
            return fail(z, "the compressed data ends early");
    }
    *value = (unsigned)(z->bits & ((1u << n) - 1));
    z->bits >>= n;
    z->nbits -= n;
    return 0;
}

static unsigned reverse(unsigned code, unsigned length)
{
    unsigned reversed = 0;
    for (unsigned i = 0; i < length; i++, code >>= 1)
        reversed = (reversed << 1) | (code & 1);
    return reversed;
}

/* Builds `h` from the code length of each of `n` symbols (0: unused).
 * Refuses lengths that promise more codes than fit (over-subscribed). An
 * incomplete code is accepted: its unassigned codes are refused by decode. */
static int build(struct inflater *z, struct huffman *h, const uint8_t *lengths, unsigned n)
{
    uint16_t offset[MAX_BITS + 2];
    unsigned next[MAX_BITS + 1];
    int left = 1;

    memset(h->count, 0, sizeof(h->count));
    memset(h->fast, 0, sizeof(h->fast));
    for (unsigned s = 0; s < n; s++)
        h->count[lengths[s]]++;
    h->count[0] = 0;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        left = 2 * left - h->count[len];
        if (left < 0)
            return fail(z, "a Huffman code has more codes than its lengths allow");
    }
    offset[1] = 0;
    for (unsigned len = 1; len <= MAX_BITS; len++)
        offset[len + 1] = (uint16_t)(offset[len] + h->count[len]);
    for (unsigned s = 0; s < n; s++)
        if (lengths[s] != 0)
            h->symbol[offset[lengths[s]]++] = (uint16_t)s;
    /* The first code of each length (3.2.2, step 2). */
    next[1] = 0;
    for (unsigned len = 2; len <= MAX_BITS; len++)
        next[len] = (next[len - 1] + h->count[len - 1]) << 1;
    for (unsigned s = 0; s < n; s++) {
        unsigned len = lengths[s];
        if (len == 0 || len > FAST_BITS) {
            if (len != 0)
                next[len]++;
            continue;
        }
        /* Codes are sent first bit first, which is their highest bit: the
         * table is indexed by the bits in the order they arrive. */
        for (unsigned i = reverse(next[len]++, len); i < (1u << FAST_BITS); i += 1u << len)
            h->fast[i] = (uint16_t)((len << 9) | s);
    }
    return 0;
}

/* The next symbol of code `h`. */
static int decode(struct inflater *z, const struct huffman *h, unsigned *symbol)
{
    unsigned entry, code = 0, first = 0, index = 0;

    if (z->nbits < MAX_BITS)
        refill(z);
    entry = h->fast[z->bits & ((1u << FAST_BITS) - 1)];
    if (entry != 0) {
        unsigned len = entry >> 9;
        if (len > z->nbits)
            return fail(z, "the compressed data ends early");
        z->bits >>= len;
        z->nbits -= len;
        *symbol = entry & 0x1ff;
        return 0;
    }
    /* Walk the canonical code: the codes of length `len` are the numbers
     * first .. first + count[len] - 1, in the order of `symbol`. */
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        unsigned count = h->count[len];
        if (len > z->nbits)
            return fail(z, "the compressed data ends early");
        code |= (unsigned)(z->bits >> (len - 1)) & 1;
        if (code - first < count) {
            *symbol = h->symbol[index + code - first];
            z->bits >>= len;
            z->nbits -= len;
            return 0;
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return fail(z, "a Huffman code that the block does not define");
}

/* A stored block (3.2.4): a byte-aligned length, its complement, the bytes. */
static int stored(struct inflater *z)
{
    unsigned len, nlen;

    /* Drop the rest of the current byte, and give back the whole bytes
     * already loaded: the block is read straight from the input. */
    z->in_pos -= z->nbits / 8;
    z->bits = 0;
    z->nbits = 0;
    if (z->in_len - z->in_pos < 4)
        return fail(z, "the compressed data ends early");
    len = z->in[z->in_pos] | (unsigned)z->in[z->in_pos + 1] << 8;
    nlen = z->in[z->in_pos + 2] | (unsigned)z->in[z->in_pos + 3] << 8;
    z->in_pos += 4;
    if (len != (~nlen & 0xffffu))
        return fail(z, "a stored block's length does not match its complement");
    if (len > z->in_len - z->in_pos)
        return fail(z, "the compressed data ends early");
    if (len > z->out_len - z->out_pos)
        return fail(z, "the data is longer than recorded");
    memcpy(z->out + z->out_pos, z->in + z->in_pos, len);
    z->in_pos += len;
    z->out_pos += len;
    return 0;
}

/* The symbols of one compressed block, up to its end-of-block code (3.2.5). */
static int codes(struct inflater *z)
{
    unsigned symbol, extra, distance, length;

    for (;;) {
        if (decode(z, &z->lit, &symbol) != 0)
            return -1;
        if (symbol < 256) {
            if (z->out_pos == z->out_len)
                return fail(z, "the data is longer than recorded");
            z->out[z->out_pos++] = (uint8_t)symbol;
            continue;
        }
        if (symbol == 256)
            return 0;
        symbol -= 257;
        if (symbol >= 29)
            return fail(z, "a length code that DEFLATE does not define");
        if (take(z, length_extra[symbol], &extra) != 0)
            return -1;
        length = length_base[symbol] + extra;
        if (decode(z, &z->dist, &symbol) != 0)
            return -1;
        if (symbol >= 30)
            return fail(z, "a distance code that DEFLATE does not define");
        if (take(z, dist_extra[symbol], &extra) != 0)
            return -1;
        distance = dist_base[symbol] + extra;
        if (distance > z->out_pos)
            return fail(z, "a distance reaches before the start of the data");
        if (length > z->out_len - z->out_pos)
            return fail(z, "the data is longer than recorded");
        /* Byte by byte: the copy may overlap what it writes (3.2.3). */
        {
            uint8_t *to = z->out + z->out_pos;
            const uint8_t *from = to - distance;
            for (unsigned i = 0; i < length; i++)
                to[i] = from[i];
        }
        z->out_pos += length;
    }
}

/* A block with the fixed codes (3.2.6). */
static int fixed(struct inflater *z)
{
    uint8_t lengths[MAX_SYMBOLS];
    unsigned s = 0;

    while (s < 144)
        lengths[s++] = 8;
    while (s < 256)
        lengths[s++] = 9;
    while (s < 280)
        lengths[s++] = 7;
    while (s < 288)
        lengths[s++] = 8;
    if (build(z, &z->lit, lengths, 288) != 0)
        return -1;
    memset(lengths, 5, MAX_DIST_CODES);
    if (build(z, &z->dist, lengths, MAX_DIST_CODES) != 0)
        return -1;
    return codes(z);
}

/* A block that sends its own codes, described by a code-length code (3.2.7). */
static int dynamic(struct inflater *z)
{
    uint8_t lengths[MAX_LITLEN_CODES + MAX_DIST_CODES];
    struct huffman codelen;
    unsigned nlit, ndist, ncodelen, value, symbol, n = 0;

    if (take(z, 5, &nlit) != 0 || take(z, 5, &ndist) != 0 || take(z, 4, &ncodelen) != 0)
        return -1;
    nlit += 257;
    ndist += 1;
    ncodelen += 4;
    if (nlit > MAX_LITLEN_CODES || ndist > MAX_DIST_CODES)
        return fail(z, "a block declares more codes than DEFLATE has");
    memset(lengths, 0, CODELEN_CODES);
    for (unsigned i = 0; i < ncodelen; i++) {
        if (take(z, 3, &value) != 0)
            return -1;
        lengths[codelen_order[i]] = (uint8_t)value;
    }
    if (build(z, &codelen, lengths, CODELEN_CODES) != 0)
        return -1;
    while (n < nlit + ndist) {
        unsigned repeat, length = 0;
        if (decode(z, &codelen, &symbol) != 0)
            return -1;
        if (symbol < 16) {
            lengths[n++] = (uint8_t)symbol;
            continue;
        }
        if (symbol == 16) {
            if (n == 0)
                return fail(z, "a block repeats a code length before giving one");
            length = lengths[n - 1];
            if (take(z, 2, &value) != 0)
                return -1;
            repeat = 3 + value;
        } else if (symbol == 17) {
            if (take(z, 3, &value) != 0)
                return -1;
            repeat = 3 + value;
        } else {
            if (take(z, 7, &value) != 0)
                return -1;
            repeat = 11 + value;
        }
        if (repeat > nlit + ndist - n)
            return fail(z, "a block gives more code lengths than it declares");
        while (repeat-- > 0)
            lengths[n++] = (uint8_t)length;
    }
    if (lengths[256] == 0)
        return fail(z, "a block has no end-of-block code");
    if (build(z, &z->lit, lengths, nlit) != 0 || build(z, &z->dist, lengths + nlit, ndist) != 0)
        return -1;
    return codes(z);
}

int msica_inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                      const char **reason)
{
    struct inflater z;
    unsigned last, type;
    int rc;

    z.in = in;
    z.in_len = in_len;
    z.in_pos = 0;
    z.bits = 0;
    z.nbits = 0;
    z.out = out;
    z.out_len = out_len;
    z.out_pos = 0;
    z.reason = "";
    do {
        if (take(&z, 1, &last) != 0 || take(&z, 2, &type) != 0)
            goto failed;
        if (type == 0)
            rc = stored(&z);
        else if (type == 1)
            rc = fixed(&z);
        else if (type == 2)
            rc = dynamic(&z);
        else
            rc = fail(&z, "a block of the reserved type 3");
        if (rc != 0)
            goto failed;
    } while (!last);
    if (z.out_pos != out_len) {
        fail(&z, "the data is shorter than recorded");
        goto failed;
    }
    /* Only the padding of the last byte may follow the final block. */
    if (z.nbits >= 8 || z.in_pos != in_len) {
        fail(&z, "bytes follow the end of the compressed data");
        goto failed;
    }
    return 0;

failed:
    *reason = z.reason;
    return -1;
}
