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
 * the value is outside float32 (the caller then falls back). A JSON integer zero is +0.0, as
 * json -> Python int 0 -> float gives. */
static const char *read_number(const char *p, const char *end, int json, double *out) {
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
    *out = result;
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
                double value;
                p = read_number(p, end, 0, &value);
                if (p == NULL) return RTB_FALLBACK;
                row[column] = (float)value;
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
            double value;
            p = read_number(p, end, 1, &value);
            if (p == NULL) return NULL;
            row[column] = (float)value;
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
