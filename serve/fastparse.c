/* The bulk request parsers: CSV, JSON and JSON Lines bodies straight into a float32 matrix.
 *
 * One call per request (serve/fastparse.py). Each parser accepts a strict subset of what the
 * Python decoders in serve/codecs.py accept, and answers exactly as they do on it: every
 * number is read as the correctly rounded double (Clinger's exact fast path for up to 19
 * significant digits and a power of ten up to 1e22, strtod_l in the C locale otherwise), then
 * rounded to float32; an empty CSV field or a JSON null is NaN. Anything else (whitespace
 * inside a CSV field, "nan", a wrong field count, a value outside float32, a JSON shape other
 * than the plain ones, more rows than `capacity`) returns RTB_FALLBACK, and the caller runs
 * the Python decoder, which produces the answer or the exact error message.
 *
 * Build: serve/fastparse.py (python -m serve.fastparse OUTPUT); never -ffast-math.
 */
#define _GNU_SOURCE
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef RTB_FASTPARSE_DIGEST
#error "RTB_FASTPARSE_DIGEST (the sha256 of this file) must be defined by the build"
#endif

#define RTB_FALLBACK (-1L)
#define MAX_TOKEN 96
#define FLOAT32_MAX 3.4028234663852886e38 /* float(np.finfo(np.float32).max) */
#define TWO_TO_53 9007199254740992ULL

static const double POWERS_OF_TEN[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static locale_t c_locale = (locale_t)0;

/* The sha256 of the source this library was built from: the loader refuses a stale build. */
const char *rtb_fastparse_digest(void) { return RTB_FASTPARSE_DIGEST; }

/* 1 once the C locale strtod_l needs exists; call once after loading. */
int rtb_fastparse_init(void) {
    if (c_locale == (locale_t)0) {
        c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    }
    return c_locale != (locale_t)0;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The decimal digits at p, kept in *mantissa up to 19 significant ones (more set *truncated).
 * *exponent is the decimal exponent of the mantissa's last digit: in the integer part
 * (fraction = 0) each digit dropped raises it; in the fraction (fraction = 1) each digit
 * read, leading zeros included, lowers it, except those dropped. Returns the position after. */
static inline const char *read_digits(const char *p, const char *end, int fraction,
                                      uint64_t *mantissa, int *digits, int *exponent,
                                      int *truncated) {
    uint64_t m = *mantissa; /* in locals: the loop keeps them in registers */
    int kept = *digits, e = *exponent, dropped = *truncated;
    while (p < end && is_digit(*p)) {
        int d = *p - '0';
        if (m == 0 && d == 0) {
            e -= fraction;
        } else if (kept < 19) {
            m = m * 10 + (uint64_t)d;
            kept++;
            e -= fraction;
        } else {
            e += !fraction;
            dropped = 1;
        }
        p++;
    }
    *mantissa = m;
    *digits = kept;
    *exponent = e;
    *truncated = dropped;
    return p;
}

/* Read one number at p (before end). `json` selects the JSON grammar
 *     -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * and otherwise the CSV one (what Python's float() reads, minus whitespace, underscores,
 * nan and inf)
 *     [+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?
 * Returns the position after the number, or NULL when p holds no number of that grammar or
 * the value is outside float32 (the caller then falls back); on success *out is that double
 * rounded to float32. A JSON integer zero is +0.0, as json -> Python int 0 -> float gives. */
static const char *read_number(const char *p, const char *end, int json, float *out) {
    const char *start = p;
    int negative = 0;
    if (p < end && (*p == '-' || (!json && *p == '+'))) {
        negative = *p == '-';
        p++;
    }
    uint64_t mantissa = 0;
    int digits = 0;      /* significant digits kept in mantissa */
    int exponent = 0;    /* decimal exponent of mantissa's last digit */
    int truncated = 0;   /* more than 19 significant digits: strtod_l decides */
    int seen = 0;        /* digits in the integer and fraction parts */
    int integer = 1;     /* no fraction and no exponent (JSON integers) */
    const char *int_start = p;
    p = read_digits(p, end, 0, &mantissa, &digits, &exponent, &truncated);
    int int_digits = (int)(p - int_start);
    seen += int_digits;
    if (json) {
        if (int_digits == 0) return NULL;
        if (int_digits > 1 && *int_start == '0') return NULL;
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        const char *frac_start = p;
        p = read_digits(p, end, 1, &mantissa, &digits, &exponent, &truncated);
        int frac_digits = (int)(p - frac_start);
        if (json && frac_digits == 0) return NULL;
        seen += frac_digits;
    }
    if (seen == 0) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            exp_negative = *p == '-';
            p++;
        }
        if (p >= end || !is_digit(*p)) return NULL;
        int value = 0;
        while (p < end && is_digit(*p)) {
            if (value < 100000) value = value * 10 + (*p - '0');
            p++;
        }
        exponent += exp_negative ? -value : value;
    }
    double result;
    if (mantissa == 0) {
        result = 0.0; /* any exponent: zero, with its sign below */
    } else if (!truncated && mantissa <= TWO_TO_53 && exponent >= -22 && exponent <= 22) {
        /* Both operands are exact doubles: one IEEE operation rounds correctly. */
        result = (double)mantissa;
        result = exponent < 0 ? result / POWERS_OF_TEN[-exponent]
                              : result * POWERS_OF_TEN[exponent];
    } else {
        size_t length = (size_t)(p - start);
        char token[MAX_TOKEN + 1];
        char *stop;
        if (length > MAX_TOKEN) return NULL;
        memcpy(token, start, length);
        token[length] = '\0';
        result = strtod_l(token, &stop, c_locale);
        if (stop != token + length) return NULL;
        negative = 0; /* strtod_l applied the sign */
    }
    if (negative) result = -result;
    if (json && integer && result == 0.0) result = 0.0;
    if (!(fabs(result) <= FLOAT32_MAX)) return NULL;
    *out = (float)result;
    return p;
}

/* --- CSV -------------------------------------------------------------------------------- */

/* Rows separated by LF or CRLF (one trailing line end ignored), fields by commas, an empty
 * field is NaN. Returns the number of rows written to out (row-major, num_features a row),
 * or RTB_FALLBACK. */
long rtb_parse_csv(const char *body, size_t length, long num_features, long capacity,
                   float *out) {
    const char *p = body;
    const char *end = body + length;
    if (end > p && end[-1] == '\n') {
        end--;
        if (end > p && end[-1] == '\r') end--;
    }
    if (end == p || num_features <= 0) return RTB_FALLBACK;
    long rows = 0;
    for (;;) {
        if (rows >= capacity) return RTB_FALLBACK;
        float *row = out + rows * num_features;
        for (long column = 0;; column++) {
            if (column >= num_features) return RTB_FALLBACK;
            if (p == end || *p == ',' || *p == '\n' || *p == '\r') {
                row[column] = NAN;
            } else {
                p = read_number(p, end, 0, &row[column]);
                if (p == NULL) return RTB_FALLBACK;
            }
            if (p == end) {
                if (column + 1 != num_features) return RTB_FALLBACK;
                return rows + 1;
            }
            char c = *p++;
            if (c == ',') continue;
            if (c == '\r') {
                if (p == end || *p != '\n') return RTB_FALLBACK; /* a lone CR */
                p++;
            } else if (c != '\n') {
                return RTB_FALLBACK; /* junk after a number */
            }
            if (column + 1 != num_features) return RTB_FALLBACK;
            break;
        }
        rows++;
    }
}

/* --- JSON ------------------------------------------------------------------------------- */

static inline const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static inline const char *expect(const char *p, const char *end, const char *literal,
                                 size_t size) {
    if (p == NULL || (size_t)(end - p) < size || memcmp(p, literal, size) != 0) return NULL;
    return p + size;
}

#define EXPECT(p, end, literal) expect((p), (end), (literal), sizeof(literal) - 1)

/* `[v, v, ...]` with exactly num_features numbers or nulls, into row. */
static const char *read_list(const char *p, const char *end, long num_features, float *row) {
    p = EXPECT(p, end, "[");
    if (p == NULL) return NULL;
    for (long column = 0; column < num_features; column++) {
        p = skip_space(p, end);
        if (p == end) return NULL;
        if (*p == 'n') {
            p = EXPECT(p, end, "null");
            if (p == NULL) return NULL;
            row[column] = NAN;
        } else {
            p = read_number(p, end, 1, &row[column]);
            if (p == NULL) return NULL;
        }
        p = skip_space(p, end);
        if (p == end) return NULL;
        if (column + 1 < num_features) {
            if (*p != ',') return NULL;
        } else if (*p != ']') {
            return NULL;
        }
        p++;
    }
    return p;
}

/* A list, or `{"features": list}` (that one key only). */
static const char *read_row(const char *p, const char *end, long num_features, float *row) {
    if (p < end && *p == '{') {
        p = skip_space(p + 1, end);
        p = EXPECT(p, end, "\"features\"");
        if (p == NULL) return NULL;
        p = EXPECT(skip_space(p, end), end, ":");
        if (p == NULL) return NULL;
        p = read_list(skip_space(p, end), end, num_features, row);
        if (p == NULL) return NULL;
        return EXPECT(skip_space(p, end), end, "}");
    }
    return read_list(p, end, num_features, row);
}

/* `[row, row, ...]` (at least one row) from p at '['; *rows counts them. */
static const char *read_rows(const char *p, const char *end, long num_features, long capacity,
                             float *out, long *rows) {
    p = EXPECT(p, end, "[");
    if (p == NULL) return NULL;
    long count = 0;
    for (;;) {
        if (count >= capacity) return NULL;
        p = read_row(skip_space(p, end), end, num_features, out + count * num_features);
        if (p == NULL) return NULL;
        count++;
        p = skip_space(p, end);
        if (p == end) return NULL;
        if (*p == ']') break;
        if (*p != ',') return NULL;
        p++;
    }
    *rows = count;
    return p + 1;
}

/* `{"instances": [row, ...]}`, `{"features": [...]}`, `[row, ...]` or one flat row. */
long rtb_parse_json(const char *body, size_t length, long num_features, long capacity,
                    float *out) {
    const char *end = body + length;
    const char *p = skip_space(body, end);
    long rows = 0;
    if (num_features <= 0 || capacity <= 0 || p == end) return RTB_FALLBACK;
    if (*p == '{') {
        const char *key = skip_space(p + 1, end);
        const char *after = EXPECT(key, end, "\"instances\"");
        if (after != NULL) {
            p = EXPECT(skip_space(after, end), end, ":");
            if (p == NULL) return RTB_FALLBACK;
            p = read_rows(skip_space(p, end), end, num_features, capacity, out, &rows);
        } else {
            p = read_row(p, end, num_features, out);
            rows = 1;
            if (p != NULL) p = skip_space(p, end);
            return p == end ? 1 : RTB_FALLBACK;
        }
        if (p == NULL) return RTB_FALLBACK;
        p = EXPECT(skip_space(p, end), end, "}");
    } else if (*p == '[') {
        const char *first = skip_space(p + 1, end);
        if (first < end && (*first == '[' || *first == '{')) {
            p = read_rows(p, end, num_features, capacity, out, &rows);
        } else {
            p = read_list(p, end, num_features, out);
            rows = 1;
        }
    } else {
        return RTB_FALLBACK;
    }
    if (p == NULL) return RTB_FALLBACK;
    return skip_space(p, end) == end ? rows : RTB_FALLBACK;
}

/* One row a line (a list or {"features": list}); blank lines are skipped. */
long rtb_parse_jsonlines(const char *body, size_t length, long num_features, long capacity,
                         float *out) {
    const char *p = body;
    const char *end = body + length;
    long rows = 0;
    if (num_features <= 0) return RTB_FALLBACK;
    while (p < end) {
        const char *line_end = memchr(p, '\n', (size_t)(end - p));
        if (line_end == NULL) line_end = end;
        p = skip_space(p, line_end);
        if (p < line_end) {
            if (rows >= capacity) return RTB_FALLBACK;
            p = read_row(p, line_end, num_features, out + rows * num_features);
            if (p == NULL || skip_space(p, line_end) != line_end) return RTB_FALLBACK;
            rows++;
        }
        p = line_end + (line_end < end);
    }
    return rows > 0 ? rows : RTB_FALLBACK;
}

/* --- LIBSVM ----------------------------------------------------------------------------- */

/* The ASCII whitespace bytes.strip() and bytes.split() use. */
static inline int is_libsvm_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* `[label] index:value ...` lines (serve/libsvm.py, indices as written): the body stripped of
 * surrounding whitespace, one row a line (a line without pairs is a row of NaN), tokens
 * separated by whitespace, every token without a colon ignored, an index ASCII digits below
 * num_features, a value a CSV number. Anything else (qid:, a repeated index, an index beyond
 * the model, nan, a value outside float32, no pair in the whole body, more rows than
 * `capacity`) returns RTB_FALLBACK. */
long rtb_parse_libsvm(const char *body, size_t length, long num_features, long capacity,
                      float *out) {
    const char *p = body;
    const char *end = body + length;
    while (p < end && is_libsvm_space(*p)) p++;
    while (end > p && is_libsvm_space(end[-1])) end--;
    if (p == end || num_features <= 0) return RTB_FALLBACK;
    long rows = 0;
    long pairs = 0;
    for (;;) {
        if (rows >= capacity) return RTB_FALLBACK;
        float *row = out + rows * num_features;
        for (long column = 0; column < num_features; column++) row[column] = NAN;
        const char *line_end = memchr(p, '\n', (size_t)(end - p));
        if (line_end == NULL) line_end = end;
        while (p < line_end) {
            if (is_libsvm_space(*p)) {
                p++;
                continue;
            }
            const char *token = p;
            while (p < line_end && !is_libsvm_space(*p) && *p != ':') p++;
            if (p == line_end || *p != ':') continue; /* no colon: the label, ignored */
            long index = 0;
            if (p == token || p - token > 18) return RTB_FALLBACK; /* the decoder's limit */
            for (const char *digit = token; digit < p; digit++) {
                if (!is_digit(*digit)) return RTB_FALLBACK;
                index = index * 10 + (*digit - '0');
                if (index >= num_features) return RTB_FALLBACK;
            }
            float value;
            p = read_number(p + 1, line_end, 0, &value);
            if (p == NULL || (p < line_end && !is_libsvm_space(*p))) return RTB_FALLBACK;
            if (!isnan(row[index])) return RTB_FALLBACK; /* repeated: the decoder explains */
            row[index] = value;
            pairs++;
        }
        rows++;
        if (line_end == end) break;
        p = line_end + 1;
    }
    return pairs > 0 ? rows : RTB_FALLBACK;
}

/* --- RecordIO-protobuf ------------------------------------------------------------------ */

#define RECORDIO_MAGIC 0xCED7230AU
#define RECORDIO_LENGTH_MASK ((1U << 29) - 1)

static inline uint32_t read_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A protobuf varint of at most 10 bytes, the tenth 0 or 1 (anything longer or larger: NULL,
 * the reference decides). */
static const unsigned char *read_varint(const unsigned char *p, const unsigned char *end,
                                        uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return NULL;
        unsigned char byte = *p++;
        if (shift == 63 && byte > 1) return NULL;
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return p;
        }
    }
    return NULL;
}

/* A length-delimited field's bytes at p: [*start, *stop) within end, or NULL. */
static const unsigned char *read_bytes(const unsigned char *p, const unsigned char *end,
                                       const unsigned char **start) {
    uint64_t size;
    p = read_varint(p, end, &size);
    if (p == NULL || size > (uint64_t)(end - p)) return NULL;
    *start = p;
    return p + size;
}

typedef struct {
    const unsigned char *values, *values_end, *keys, *keys_end, *shape, *shape_end;
} tensor_fields;

/* Count the varints in [p, end) (a packed uint64 field); -1 unless they fill it exactly. */
static long count_varints(const unsigned char *p, const unsigned char *end) {
    long count = 0;
    uint64_t ignored;
    while (p < end) {
        p = read_varint(p, end, &ignored);
        if (p == NULL) return -1;
        count++;
    }
    return count;
}

/* The tensor (`kind` 2 float32, 3 float64, 7 int32) of one Record into row; 0 to fall back. */
static int read_tensor(const unsigned char *p, const unsigned char *end, int kind,
                       long num_features, float *row) {
    tensor_fields fields = {NULL, NULL, NULL, NULL, NULL, NULL};
    while (p < end) {
        unsigned char tag = *p++;
        const unsigned char **start, **stop;
        if (tag == (1 << 3 | 2)) {
            start = &fields.values, stop = &fields.values_end;
        } else if (tag == (2 << 3 | 2)) {
            start = &fields.keys, stop = &fields.keys_end;
        } else if (tag == (3 << 3 | 2)) {
            start = &fields.shape, stop = &fields.shape_end;
        } else {
            return 0; /* unpacked, unknown or repeated fields: the reference merges them */
        }
        if (*start != NULL) return 0;
        p = read_bytes(p, end, start);
        if (p == NULL) return 0;
        *stop = p;
    }
    long size = kind == 3 ? 8 : 4;
    long count = 0; /* the number of values */
    if (fields.values != NULL) {
        if (kind == 7) {
            count = count_varints(fields.values, fields.values_end);
        } else {
            long bytes = (long)(fields.values_end - fields.values);
            count = bytes % size == 0 ? bytes / size : -1;
        }
        if (count < 0) return 0;
    }
    long keys = 0;
    if (fields.keys != NULL) {
        keys = count_varints(fields.keys, fields.keys_end);
        if (keys < 0) return 0;
    }
    uint64_t width = (uint64_t)count;
    if (fields.shape != NULL && fields.shape < fields.shape_end) {
        const unsigned char *after = read_varint(fields.shape, fields.shape_end, &width);
        if (after != fields.shape_end) return 0; /* more than one dimension, or malformed */
    } else if (keys > 0) {
        return 0; /* sparse without a shape */
    }
    int sparse = keys > 0 || (count == 0 && fields.shape != NULL && fields.shape < fields.shape_end);
    if (width != (uint64_t)num_features) return 0;
    if (sparse) {
        if (keys != count) return 0;
        for (long column = 0; column < num_features; column++) row[column] = NAN;
    } else if (count != num_features) {
        return 0;
    }
    const unsigned char *value = fields.values;
    const unsigned char *key = fields.keys;
    uint64_t previous = 0;
    for (long i = 0; i < count; i++) {
        uint64_t column = (uint64_t)i;
        if (sparse) {
            key = read_varint(key, fields.keys_end, &column);
            /* Strictly increasing keys (as the SDK writes them): none repeated. */
            if (column >= width || (i > 0 && column <= previous)) return 0;
            previous = column;
        }
        double cell;
        if (kind == 2) {
            float single;
            memcpy(&single, value, 4);
            value += 4;
            cell = (double)single; /* as upb hands it to Python: a double */
        } else if (kind == 3) {
            memcpy(&cell, value, 8);
            value += 8;
        } else {
            uint64_t raw = 0;
            value = read_varint(value, fields.values_end, &raw);
            cell = (double)(int32_t)(uint32_t)raw; /* int32: the low 32 bits */
        }
        if (fabs(cell) > FLOAT32_MAX) return 0; /* inf or beyond float32: the reference explains */
        row[column] = (float)cell;
    }
    return 1;
}

/* One Record payload holding exactly features["values"] = one tensor, into row. */
static int read_record(const unsigned char *p, const unsigned char *end, long num_features,
                       float *row) {
    const unsigned char *entry, *entry_end, *key, *value;
    if (p >= end || *p != (1 << 3 | 2)) return 0;
    entry_end = read_bytes(p + 1, end, &entry);
    if (entry_end != end) return 0; /* the map entry only: nothing else in the record */
    if (entry >= entry_end || *entry != (1 << 3 | 2)) return 0;
    const unsigned char *after_key = read_bytes(entry + 1, entry_end, &key);
    if (after_key == NULL || after_key - key != 6 || memcmp(key, "values", 6) != 0) return 0;
    if (after_key >= entry_end || *after_key != (2 << 3 | 2)) return 0;
    const unsigned char *after_value = read_bytes(after_key + 1, entry_end, &value);
    if (after_value != entry_end) return 0;
    if (value >= after_value) return 0; /* an empty Value */
    int kind = *value >> 3;
    if ((*value & 7) != 2 || (kind != 2 && kind != 3 && kind != 7)) return 0;
    const unsigned char *tensor;
    const unsigned char *after_tensor = read_bytes(value + 1, after_value, &tensor);
    if (after_tensor != after_value) return 0; /* one tensor and nothing else */
    return read_tensor(tensor, after_tensor, kind, num_features, row);
}

/* Whole RecordIO frames (no split records), one Record each (read_record); the padding is
 * skipped as the reference skips it. The frames are counted first, so a body of more records
 * than `capacity` is refused before any message is read. Anything else returns
 * RTB_FALLBACK. */
long rtb_parse_recordio(const char *body, size_t length, long num_features, long capacity,
                        float *out) {
    const unsigned char *start = (const unsigned char *)body;
    const unsigned char *end = start + length;
    if (start == end || num_features <= 0) return RTB_FALLBACK;
    long frames = 0;
    for (const unsigned char *p = start; p < end; frames++) {
        if (frames >= capacity || end - p < 8) return RTB_FALLBACK;
        uint32_t word = read_le32(p + 4);
        if (read_le32(p) != RECORDIO_MAGIC || word > RECORDIO_LENGTH_MASK) return RTB_FALLBACK;
        size_t padded = ((size_t)word + 3) & ~(size_t)3;
        if (padded > (size_t)(end - p) - 8) return RTB_FALLBACK;
        p += 8 + padded;
    }
    const unsigned char *p = start;
    for (long row = 0; row < frames; row++) {
        uint32_t word = read_le32(p + 4); /* every header was checked above */
        p += 8;
        if (!read_record(p, p + word, num_features, out + row * num_features)) {
            return RTB_FALLBACK;
        }
        p += ((size_t)word + 3) & ~(size_t)3;
    }
    return frames;
}
