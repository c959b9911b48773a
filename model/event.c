/*
 * event.c — strict, allocation-free JSON parser and validator for one event.
 *
 * This is the hot path: every Kafka message goes through fd_event_parse()
 * exactly once. It is a hand-written parser rather than cJSON because SPEC §2
 * needs two things cJSON cannot give: cJSON keeps every number only as a
 * double, so it can neither tell `1.0` (bad_type) from `1` nor keep a 64-bit
 * integer user id exactly; and it allocates one node per value, which costs
 * more than the whole validation below.
 *
 * It works in two phases over the message bytes:
 *
 *   1. scan — one pass that checks the whole message against RFC 8259 (any
 *      value anywhere, UTF-8 validity of every string, escapes including
 *      surrogate pairs, the number grammar, nesting at most FD_MAX_DEPTH,
 *      nothing but whitespace after the value). While scanning the top-level
 *      object it records, for each of the 15 known keys, a slot: the JSON
 *      kind of the value and where its raw text is. A repeated key simply
 *      overwrites its slot, so the last occurrence wins. Nothing is decoded
 *      or converted here, so a message that fails later costs only the scan.
 *   2. check — walks the fields in the exact order of docs/EVENTS.md, turns
 *      slots into fd_event_t members and stops at the first failing rule.
 *      A string without escapes is returned as a pointer into the message; a
 *      string with escapes is decoded into the parser's scratch buffer.
 *
 * Memory bound: one scratch buffer of max_message_bytes per parser, allocated
 * once in fd_parser_new(). Decoding never makes a string longer (an escape is
 * at least as long as the UTF-8 it stands for) and every decoded string is a
 * different part of the message, so the decoded strings of one message fit
 * in max_message_bytes. Recursion depth is bounded by FD_MAX_DEPTH.
 *
 * Invariant a reader must not break: phase 2 only ever sees text that phase 1
 * has validated, so the decoder and the integer reader do not re-check
 * grammar; any new way of producing a slot must validate first.
 */
#include "model/event.h"
#include "model/cohort.h"
#include "base/hex.h"
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define FD_MAX_DEPTH 64 /* arrays/objects; deeper is invalid_json (decision) */
#define FD_MAX_STR 128 /* code points, for ids and dimensions */
#define FD_MAX_ACTION 32
#define FD_MAX_KEY 12 /* strlen("community_id"), the longest known key */

typedef unsigned char uchar;

/* JSON kind of a recorded value. */
enum { K_ABSENT = 0, K_NULL, K_BOOL, K_STRING, K_INT, K_REAL, K_OBJECT, K_ARRAY };

typedef struct {
    uint8_t kind;
    uint8_t esc; /* K_STRING: the raw text holds at least one backslash */
    uint32_t n; /* raw length: string contents without quotes, or number text */
    const char *p;
} slot_t;

/* Known top-level keys, in the check order of docs/EVENTS.md. */
enum {
    F_EVENT_ID,
    F_TYPE,
    F_TS,
    F_USER_ID,
    F_PRODUCT_ID,
    F_COMMUNITY_ID,
    F_CHANNEL,
    F_CAMPAIGN_ID,
    F_CONTENT_ID,
    F_COUPON_ID,
    F_ACTION,
    F_ORDER_ID,
    F_AMOUNT,
    F_CURRENCY,
    F_STATUS,
    F__COUNT
};

static const char *const field_names[F__COUNT] = {
    "event_id",     "type",     "ts",          "user_id",    "product_id",
    "community_id", "channel",  "campaign_id", "content_id", "coupon_id",
    "action",       "order_id", "amount",      "currency",   "status",
};

struct fd_parser {
    fd_event_limits_t lim;
    char *scratch; /* max_message_bytes, for strings that carried escapes */
    size_t used; /* bytes of scratch used by the current message */
    slot_t slot[F__COUNT];
};

/* ------------------------------------------------------------------ names */

static const char *const reason_names[FD_R__COUNT] = {
    "ok",        "too_large",    "invalid_json",        "not_object", "missing_field", "bad_type",
    "bad_value", "unknown_type", "type_topic_mismatch", "ts_too_old", "ts_in_future",  "late",
};

const char *fd_reason_name(fd_reason_t r) {
    if ((unsigned)r >= FD_R__COUNT) return "unknown";
    return reason_names[r];
}

const char *fd_event_type_name(fd_event_type_t t) {
    switch (t) {
    case FD_TYPE_EXPOSURE: return "exposure";
    case FD_TYPE_INTERACTION: return "interaction";
    case FD_TYPE_PAYMENT: return "payment";
    case FD_TYPE_NONE: break;
    }
    return "none";
}

fd_event_type_t fd_event_type_from_name(const char *s, size_t n) {
    if (n == 8 && memcmp(s, "exposure", 8) == 0) return FD_TYPE_EXPOSURE;
    if (n == 11 && memcmp(s, "interaction", 11) == 0) return FD_TYPE_INTERACTION;
    if (n == 7 && memcmp(s, "payment", 7) == 0) return FD_TYPE_PAYMENT;
    return FD_TYPE_NONE;
}

/* ------------------------------------------------------------ lifecycle */

fd_parser_t *fd_parser_new(const fd_event_limits_t *lim, char *err, size_t errlen) {
    fd_parser_t *p = NULL;
    const char *why = NULL;

    if (lim == NULL || lim->max_message_bytes == 0 || lim->max_message_bytes > UINT32_MAX) {
        why = "max_message_bytes must be in 1..4294967295";
        goto fail;
    }
    if (lim->max_age_ms < 0 || lim->max_future_ms < 0) {
        why = "max_age_ms and max_future_ms must not be negative";
        goto fail;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) goto oom;
    p->lim = *lim;
    p->scratch = malloc(lim->max_message_bytes);
    if (p->scratch == NULL) goto oom;
    return p;

oom:
    why = "out of memory";
fail:
    if (err != NULL && errlen > 0) {
        size_t n = strlen(why);
        if (n >= errlen) n = errlen - 1;
        memcpy(err, why, n);
        err[n] = '\0';
    }
    fd_parser_free(p);
    return NULL;
}

void fd_parser_free(fd_parser_t *p) {
    if (p == NULL) return;
    free(p->scratch);
    free(p);
}

/* ------------------------------------------------------- phase 1: scan */

#define ONES UINT64_C(0x0101010101010101) /* one in every byte, for SWAR */

/* Anything but printable ASCII other than '"' and '\\' needs a closer look. */
static inline int str_special(uchar c) {
    return (uchar)(c - 0x20) >= 0x60 || c == '"' || c == '\\';
}

/* Four hex digits at p (end already checked); -1 if not hex. */
static long hex4(const uchar *p) {
    int a = fd_hexval(p[0]), b = fd_hexval(p[1]), c = fd_hexval(p[2]), d = fd_hexval(p[3]);
    if ((a | b | c | d) < 0) return -1;
    return (long)a << 12 | b << 8 | c << 4 | d;
}

/* Events are mostly compact JSON: the first test (a byte above ' ' is never
 * whitespace) ends almost every call after one compare. */
static inline const uchar *skip_ws(const uchar *p, const uchar *end) {
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

#if defined(__SSE2__)
/* Bit i set when p[i] is special (< 0x20, >= 0x80, '"' or '\\'): as signed
 * bytes, < 0x20 and >= 0x80 are together exactly "less than 0x20", so three
 * compares cover all four classes. Needs 16 readable bytes at p. */
static inline unsigned special16(const uchar *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
        _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/*
 * Validates a string whose opening quote is at p[-1]. Returns the byte after
 * the closing quote, or NULL. *esc is set when the string holds an escape.
 */
static const uchar *scan_string(const uchar *p, const uchar *end, int *esc) {
    for (;;) {
#if defined(__SSE2__)
        while (end - p >= 16) {
            unsigned m = special16(p);
            if (m != 0) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
        }
#endif
        /* Eight bytes at a time (SWAR): the flag of the lowest special byte
         * (< 0x20, >= 0x80, '"' or '\\') is exact, so jump straight to it. */
        while (end - p >= 8) {
            uint64_t w, q, b;
            memcpy(&w, p, 8);
            q = w ^ ONES * '"'; /* zero byte where w has '"' */
            b = w ^ ONES * '\\'; /* zero byte where w has '\\' */
            /* (x - ONES) & ~x flags zero bytes, (w - ONES*0x20) & ~w bytes < 0x20 */
            uint64_t m = (((w - ONES * 0x20) & ~w) | w | ((q - ONES) & ~q) | ((b - ONES) & ~b)) &
                         ONES * 0x80;
            if (m != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                p += __builtin_ctzll(m) >> 3;
#endif
                break;
            }
            p += 8;
        }
        while (p < end && !str_special(*p)) p++;
        if (p >= end) return NULL;
        uchar c = *p;
        if (c == '"') return p + 1;
        if (c == '\\') {
            *esc = 1;
            if (end - p < 2) return NULL;
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': p += 2; continue;
            case 'u': break;
            default: return NULL;
            }
            if (end - p < 6) return NULL;
            long cp = hex4(p + 2);
            if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return NULL; /* not hex, or a lone low surrogate */
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return NULL; /* lone high surrogate */
                long lo = hex4(p + 2);
                if (lo < 0xDC00 || lo > 0xDFFF) return NULL;
                p += 6;
            }
            continue;
        }
        if (c < 0x20) return NULL;
        /* multi-byte UTF-8 (base/utf8.h) */
        int k = fd_utf8_len(p, end);
        if (k < 2) return NULL;
        p += k;
    }
}

/*
 * scan_string for the common case, inlined where keys and values are read:
 * a string of plain ASCII (every key, most values of an event) ends at its
 * first special byte, which is then its closing quote.
 * Anything else continues in scan_string from the first special byte, a
 * character boundary since every byte before it is ASCII. Measured on the
 * reference stream (bench/hotpath.sh): scanning strings fell from ~2,150 to
 * ~700 instructions per event.
 */
static inline const uchar *scan_string_fast(const uchar *p, const uchar *end, int *esc) {
#if defined(__SSE2__)
    while (end - p >= 16) {
        unsigned m = special16(p);
        if (m != 0) {
            p += __builtin_ctz(m);
            if (*p == '"') return p + 1;
            break;
        }
        p += 16;
    }
#endif
    return scan_string(p, end, esc);
}

/* The first non-digit at or after p. Eight bytes at a time first: a ms
 * timestamp has 13 digits. A byte is a digit when its high nibble is 3 and
 * adding 6 keeps it there (0x30..0x39). */
static inline const uchar *skip_digits(const uchar *p, const uchar *end) {
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (((w & ONES * 0xF0) | ((w + ONES * 0x06) & ONES * 0xF0) >> 4) != ONES * 0x33) break;
        p += 8;
    }
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p;
}

/* Validates a number starting at p. Returns the byte after it, or NULL.
 * *is_int is set when it has neither fraction nor exponent. */
static const uchar *scan_number(const uchar *p, const uchar *end, int *is_int) {
    *is_int = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        p = skip_digits(p, end);
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const uchar *scan_value(const uchar *p, const uchar *end, int depth, slot_t *out,
                               slot_t *slots);

/*
 * Decodes a validated string body into dst (cap bytes). Returns the decoded
 * length, or (size_t)-1 when it does not fit. Used for keys (small cap) and
 * for field values (cap = what is left of scratch, always enough).
 */
static size_t decode_string(const uchar *s, size_t n, char *dst, size_t cap) {
    const uchar *end = s + n;
    size_t o = 0;
    while (s < end) {
        uchar c = *s;
        if (c != '\\') {
            if (o >= cap) return (size_t)-1;
            dst[o++] = (char)c;
            s++;
            continue;
        }
        uint32_t cp;
        switch (s[1]) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': cp = 0; break;
        default: cp = s[1]; break; /* " \ / */
        }
        if (s[1] != 'u') {
            s += 2;
        } else {
            cp = (uint32_t)hex4(s + 2);
            s += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* validated: a low one follows */
                uint32_t lo = (uint32_t)hex4(s + 2);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
        }
        uchar u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (uchar)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (uchar)(0xC0 | cp >> 6);
            u[1] = (uchar)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (uchar)(0xE0 | cp >> 12);
            u[1] = (uchar)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (uchar)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            u[0] = (uchar)(0xF0 | cp >> 18);
            u[1] = (uchar)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (uchar)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (uchar)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (cap - o < k) return (size_t)-1;
        memcpy(dst + o, u, k);
        o += k;
    }
    return o;
}

/* Index of a known key, or -1. Length and one byte pick the one candidate,
 * then one fixed-length memcmp (inlined as one or two word compares)
 * confirms it, so a near miss ("user_idx", "Type", "channeL") is unknown. */
__attribute__((always_inline)) static inline int key_index(const char *k, size_t n) {
#define KEY(LIT, F) return memcmp(k, LIT, sizeof LIT - 1) == 0 ? (F) : -1
    switch (n) {
    case 2: KEY("ts", F_TS);
    case 4: KEY("type", F_TYPE);
    case 6:
        if (k[0] == 's') KEY("status", F_STATUS);
        if (k[1] == 'c') KEY("action", F_ACTION);
        KEY("amount", F_AMOUNT);
    case 7:
        if (k[0] == 'u') KEY("user_id", F_USER_ID);
        KEY("channel", F_CHANNEL);
    case 8:
        if (k[0] == 'e') KEY("event_id", F_EVENT_ID);
        if (k[0] == 'o') KEY("order_id", F_ORDER_ID);
        KEY("currency", F_CURRENCY);
    case 9: KEY("coupon_id", F_COUPON_ID);
    case 10:
        if (k[0] == 'p') KEY("product_id", F_PRODUCT_ID);
        KEY("content_id", F_CONTENT_ID);
    case 11: KEY("campaign_id", F_CAMPAIGN_ID);
    case 12: KEY("community_id", F_COMMUNITY_ID);
    default: return -1;
    }
#undef KEY
}

/* Scans an object whose '{' is at p; depth is the object's own depth.
 * With slots != NULL (the top-level object) known keys are recorded. */
static const uchar *scan_object(const uchar *p, const uchar *end, int depth, slot_t *slots) {
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    if (p >= end || *p != '"') return NULL;
    for (;;) { /* p is at a key's opening quote */
        const uchar *k = p + 1;
        int esc = 0;
        p = scan_string_fast(k, end, &esc);
        if (p == NULL) return NULL;
        slot_t *dst = NULL;
        if (slots != NULL) {
            size_t kn = (size_t)(p - 1 - k);
            int i;
            if (!esc) {
                i = key_index((const char *)k, kn);
            } else {
                char kb[FD_MAX_KEY];
                size_t dn = decode_string(k, kn, kb, sizeof kb);
                i = dn == (size_t)-1 ? -1 : key_index(kb, dn);
            }
            if (i >= 0) dst = &slots[i];
        }
        /* Compact JSON, the usual case, has ':' right after the key and ','
         * right after the value, each followed by a quote: those two bytes
         * are tested (as one 16-bit compare) before anything else. */
        int str;
        if (end - p >= 2 && memcmp(p, ":\"", 2) == 0) {
            p++;
            str = 1;
        } else {
            if (p >= end || *p != ':') {
                p = skip_ws(p, end);
                if (p >= end || *p != ':') return NULL;
            }
            p = skip_ws(p + 1, end);
            str = p < end && *p == '"';
        }
        if (str) { /* most values: skip a call */
            const uchar *v = p + 1;
            esc = 0;
            p = scan_string_fast(v, end, &esc);
            if (p == NULL) return NULL;
            if (dst != NULL) {
                dst->kind = K_STRING;
                dst->esc = (uint8_t)esc;
                dst->p = (const char *)v;
                dst->n = (uint32_t)(p - 1 - v);
            }
        } else {
            p = scan_value(p, end, depth, dst, NULL);
            if (p == NULL) return NULL;
        }
        if (end - p >= 2 && memcmp(p, ",\"", 2) == 0) {
            p++;
            continue;
        }
        if (p >= end || *p != ',') {
            p = skip_ws(p, end);
            if (p >= end) return NULL;
            if (*p == '}') return p + 1;
            if (*p != ',') return NULL;
        }
        p = skip_ws(p + 1, end);
        if (p >= end || *p != '"') return NULL;
    }
}

static const uchar *scan_array(const uchar *p, const uchar *end, int depth) {
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        p = scan_value(p, end, depth, NULL, NULL);
        if (p == NULL) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

static const uchar *scan_literal(const uchar *p, const uchar *end, const char *lit, size_t n) {
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) return NULL;
    return p + n;
}

/*
 * Scans one value at p (no leading whitespace) held by a container at depth
 * `depth` (0 for the top level). Records it in *out when out != NULL; slots
 * is passed on only for the top-level object.
 */
static const uchar *scan_value(const uchar *p, const uchar *end, int depth, slot_t *out,
                               slot_t *slots) {
    const uchar *start = p;
    uint8_t kind;
    int flag = 0;

    if (p >= end) return NULL;
    switch (*p) {
    case '"':
        start = p + 1;
        p = scan_string_fast(p + 1, end, &flag);
        if (p == NULL) return NULL;
        if (out != NULL) {
            out->kind = K_STRING;
            out->esc = (uint8_t)flag;
            out->p = (const char *)start;
            out->n = (uint32_t)(p - 1 - start);
        }
        return p;
    case '{':
        if (depth >= FD_MAX_DEPTH) return NULL;
        p = scan_object(p, end, depth + 1, slots);
        kind = K_OBJECT;
        break;
    case '[':
        if (depth >= FD_MAX_DEPTH) return NULL;
        p = scan_array(p, end, depth + 1);
        kind = K_ARRAY;
        break;
    case 't':
        p = scan_literal(p, end, "true", 4);
        kind = K_BOOL;
        break;
    case 'f':
        p = scan_literal(p, end, "false", 5);
        kind = K_BOOL;
        break;
    case 'n':
        p = scan_literal(p, end, "null", 4);
        kind = K_NULL;
        break;
    default:
        p = scan_number(p, end, &flag);
        kind = flag ? K_INT : K_REAL;
        break;
    }
    if (p != NULL && out != NULL) {
        out->kind = kind;
        out->esc = 0;
        out->p = (const char *)start;
        out->n = (uint32_t)(p - start);
    }
    return p;
}

/* ------------------------------------------------------ phase 2: check */

/* The value of eight digit characters, by three multiplications (the
 * little-endian SWAR conversion simdjson uses): pairs, then quads, then
 * all eight. */
static inline uint64_t eight_digits(const char *s) {
    uint64_t w;
    memcpy(&w, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = (w & 0x0F0F0F0F0F0F0F0FULL) * 2561 >> 8;
    w = (w & 0x00FF00FF00FF00FFULL) * 6553601 >> 16;
    return (w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL >> 32;
#else
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v * 10 + (uint64_t)(s[i] - '0');
    (void)w;
    return v;
#endif
}

/* Reads validated integer text. Returns -1 when outside int64. */
static inline int read_i64(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    /* 9223372036854775807, or ...808 for a negative number */
    uint64_t lim = (uint64_t)INT64_MAX;

    if (s[0] == '-') {
        neg = 1;
        i = 1;
        lim += 1;
    }
    if (n - i <= 18) { /* < 10^18: cannot overflow, skip the checks (ts, ids) */
        for (; n - i >= 8; i += 8) v = v * 100000000 + eight_digits(s + i);
        for (; i < n; i++) v = v * 10 + (unsigned)(s[i] - '0');
        *out = neg ? -(int64_t)v : (int64_t)v;
        return 0;
    }
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg) *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else *out = (int64_t)v;
    return 0;
}

/* Code points of valid UTF-8: every byte that is not a continuation byte. */
static size_t count_cp(const char *s, size_t n) {
    size_t cp = 0;
    for (size_t i = 0; i < n; i++) cp += ((uchar)s[i] & 0xC0) != 0x80;
    return cp;
}

/* Slot string as an fd_str_t: into the message, or decoded into scratch. */
static inline fd_str_t slot_str(fd_parser_t *p, const slot_t *s) {
    fd_str_t r = {s->p, s->n};
    if (s->esc) {
        char *dst = p->scratch + p->used;
        size_t n = decode_string((const uchar *)s->p, s->n, dst, p->lim.max_message_bytes - p->used);
        if (n == (size_t)-1) /* cannot happen: see the memory bound in the essay */
            n = 0;
        p->used += n;
        r.p = dst;
        r.n = (uint32_t)n;
    }
    return r;
}

static int is_absent(const slot_t *s) { return s->kind == K_ABSENT || s->kind == K_NULL; }

/* A string field of min..max code points; optional ones may be absent. */
/* always_inline: called for seven fields of every event */
__attribute__((always_inline)) static inline fd_reason_t
want_str(fd_parser_t *p, const slot_t *s, int required, size_t min, size_t max, fd_str_t *out) {
    if (is_absent(s)) {
        out->p = NULL;
        out->n = 0;
        return required ? FD_R_MISSING_FIELD : FD_OK;
    }
    if (s->kind != K_STRING) return FD_R_BAD_TYPE;
    *out = slot_str(p, s);
    /* bytes >= code points >= bytes / 4: count only when it could matter */
    size_t n = out->n;
    if (n < min || n > 4 * max) return FD_R_BAD_VALUE;
    if (n > max) {
        size_t cp = count_cp(out->p, n);
        if (cp > max) return FD_R_BAD_VALUE;
    }
    if (n == 0) out->p = NULL; /* an empty optional dimension is absent (decision) */
    return FD_OK;
}

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 per docs/EVENTS.md into epoch ms. Returns -1 on any deviation. */
static int parse_rfc3339(const char *s, size_t n, int64_t *out) {
    static const uint8_t mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int Y, M, D, h, mi, sec, oh = 0, om = 0, ms = 0;

    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return -1;
    if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) || digits(s + 11, 2, &h) ||
        digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || h > 23 || mi > 59 || sec > 59) return -1;
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M] + (M == 2 && leap)) return -1;

    size_t i = 19;
    if (s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - f0 < 3) ms = ms * 10 + (s[i] - '0');
            i++;
        }
        size_t nf = i - f0;
        if (nf < 1 || nf > 9) return -1;
        for (size_t k = nf; k < 3; k++) ms *= 10;
    }
    if (i >= n) return -1;
    int sign = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '+' ? 1 : -1;
        if (n - i != 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) ||
            digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        i += 6;
    } else {
        return -1;
    }
    if (i != n) return -1;

    /* the cohorts' day count (proleptic Gregorian) read on a UTC date */
    int64_t secs =
        (int64_t)fd_cohort_daynum(Y * 10000 + M * 100 + D) * 86400 + h * 3600 + mi * 60 + sec;
    secs -= (int64_t)sign * (oh * 3600 + om * 60); /* local = UTC + offset */
    *out = secs * 1000 + ms;
    return 0;
}

static int64_t sat_add(int64_t a, int64_t b) /* b >= 0 */
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t sat_sub(int64_t a, int64_t b) /* b >= 0 */
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

/* Runs the field checks of docs/EVENTS.md in order. *fi = failing field. */
static fd_reason_t check(fd_parser_t *p, fd_event_type_t topic_type, int64_t now_ms, fd_event_t *ev,
                         int *fi) {
    const slot_t *sl = p->slot;
    fd_reason_t r;
    fd_str_t t;

#define STR(F, REQ, MIN, MAX, DST) \
    do { \
        *fi = (F); \
        if ((r = want_str(p, &sl[F], (REQ), (MIN), (MAX), (DST)))) return r; \
    } while (0)

    STR(F_EVENT_ID, 1, 1, FD_MAX_STR, &ev->event_id);

    *fi = F_TYPE;
    if (is_absent(&sl[F_TYPE])) {
        if (topic_type == FD_TYPE_NONE) return FD_R_MISSING_FIELD;
        ev->type = topic_type;
    } else {
        if (sl[F_TYPE].kind != K_STRING) return FD_R_BAD_TYPE;
        t = slot_str(p, &sl[F_TYPE]);
        ev->type = fd_event_type_from_name(t.p, t.n);
        if (ev->type == FD_TYPE_NONE) return FD_R_UNKNOWN_TYPE;
        if (topic_type != FD_TYPE_NONE && ev->type != topic_type) return FD_R_TYPE_TOPIC_MISMATCH;
    }

    *fi = F_TS;
    switch (sl[F_TS].kind) {
    case K_ABSENT:
    case K_NULL: return FD_R_MISSING_FIELD;
    case K_INT:
        if (read_i64(sl[F_TS].p, sl[F_TS].n, &ev->ts_ms)) return FD_R_BAD_VALUE;
        break;
    case K_STRING:
        t = slot_str(p, &sl[F_TS]);
        if (parse_rfc3339(t.p, t.n, &ev->ts_ms)) return FD_R_BAD_VALUE;
        break;
    default: return FD_R_BAD_TYPE;
    }

    *fi = F_USER_ID;
    if (sl[F_USER_ID].kind == K_INT) {
        int64_t ignored;
        if (read_i64(sl[F_USER_ID].p, sl[F_USER_ID].n, &ignored)) return FD_R_BAD_VALUE;
        ev->user_id.p = sl[F_USER_ID].p; /* the digits as written */
        ev->user_id.n = sl[F_USER_ID].n;
    } else {
        STR(F_USER_ID, 1, 1, FD_MAX_STR, &ev->user_id);
    }

    STR(F_PRODUCT_ID, 1, 1, FD_MAX_STR, &ev->product_id);
    STR(F_COMMUNITY_ID, 0, 0, FD_MAX_STR, &ev->community_id);
    STR(F_CHANNEL, 0, 0, FD_MAX_STR, &ev->channel);
    STR(F_CAMPAIGN_ID, 0, 0, FD_MAX_STR, &ev->campaign_id);
    STR(F_CONTENT_ID, 0, 0, FD_MAX_STR, &ev->content_id);
    STR(F_COUPON_ID, 0, 0, FD_MAX_STR, &ev->coupon_id);

    if (ev->type == FD_TYPE_INTERACTION) STR(F_ACTION, 1, 1, FD_MAX_ACTION, &ev->action);

    if (ev->type == FD_TYPE_PAYMENT) {
        STR(F_ORDER_ID, 1, 1, FD_MAX_STR, &ev->order_id);

        *fi = F_AMOUNT;
        if (is_absent(&sl[F_AMOUNT])) return FD_R_MISSING_FIELD;
        if (sl[F_AMOUNT].kind != K_INT) return FD_R_BAD_TYPE;
        if (read_i64(sl[F_AMOUNT].p, sl[F_AMOUNT].n, &ev->amount) || ev->amount < 0 ||
            ev->amount > FD_AMOUNT_MAX)
            return FD_R_BAD_VALUE;

        *fi = F_CURRENCY;
        memcpy(ev->currency, "CNY", 4);
        if (!is_absent(&sl[F_CURRENCY])) {
            if (sl[F_CURRENCY].kind != K_STRING) return FD_R_BAD_TYPE;
            t = slot_str(p, &sl[F_CURRENCY]);
            if (t.n != 3) return FD_R_BAD_VALUE;
            for (int i = 0; i < 3; i++) {
                if (t.p[i] < 'A' || t.p[i] > 'Z') return FD_R_BAD_VALUE;
                ev->currency[i] = t.p[i];
            }
        }

        *fi = F_STATUS;
        ev->status = FD_STATUS_PAID;
        if (!is_absent(&sl[F_STATUS])) {
            if (sl[F_STATUS].kind != K_STRING) return FD_R_BAD_TYPE;
            t = slot_str(p, &sl[F_STATUS]);
            if (t.n == 4 && memcmp(t.p, "paid", 4) == 0) ev->status = FD_STATUS_PAID;
            else if (t.n == 8 && memcmp(t.p, "refunded", 8) == 0) ev->status = FD_STATUS_REFUNDED;
            else return FD_R_BAD_VALUE;
        }
    }
#undef STR

    *fi = F_TS;
    if (ev->ts_ms < sat_sub(now_ms, p->lim.max_age_ms)) return FD_R_TS_TOO_OLD;
    if (ev->ts_ms > sat_add(now_ms, p->lim.max_future_ms)) return FD_R_TS_IN_FUTURE;
    return FD_OK;
}

fd_reason_t fd_event_parse(fd_parser_t *p, const char *buf, size_t len, fd_event_type_t topic_type,
                           int64_t now_ms, fd_event_t *ev, const char **field) {
    const char *dummy;
    if (field == NULL) field = &dummy;
    *field = "-";
    memset(ev, 0, sizeof *ev);

    if (len > p->lim.max_message_bytes) return FD_R_TOO_LARGE;
    if (buf == NULL || len == 0) return FD_R_INVALID_JSON;

    const uchar *s = (const uchar *)buf, *end = s + len;
    memset(p->slot, 0, sizeof p->slot);
    p->used = 0;

    s = skip_ws(s, end);
    int is_object = s < end && *s == '{';
    s = scan_value(s, end, 0, NULL, is_object ? p->slot : NULL);
    if (s == NULL || skip_ws(s, end) != end) return FD_R_INVALID_JSON;
    if (!is_object) return FD_R_NOT_OBJECT;

    int fi = -1;
    fd_reason_t r = check(p, topic_type, now_ms, ev, &fi);
    if (r != FD_OK) *field = field_names[fi];
    return r;
}
