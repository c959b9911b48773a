/*
 * fuzz_event.c — libFuzzer target for the event parser (model/event.c).
 *
 * Each input is parsed once per topic type, with real time bounds and with
 * unbounded ones (so more inputs reach FD_OK), and checked against:
 *
 *  - memory: libFuzzer hands over a heap buffer of exactly `size` bytes, and
 *    every returned string is read in full, so ASan flags any overread of the
 *    message or the scratch buffer;
 *  - consistency: JSON validity (invalid_json / not_object) does not depend on
 *    the topic type; a reason other than OK names a field only when it is a
 *    field reason; an accepted event obeys every rule of docs/EVENTS.md
 *    (lengths in code points, UTF-8 validity, type vs topic, ts bounds,
 *    amount, currency);
 *  - where strings live: a string that points into the message sits between
 *    two quotes there (or is the digits of an integer user_id); one that does
 *    not was decoded, which needs a backslash in the message;
 *  - a differential check against cJSON: whenever we call the bytes valid
 *    JSON, cJSON must parse them to the end (modulo whitespace), agree on
 *    whether the top level is an object, and decode the same last-wins
 *    event_id / product_id / string user_id.
 *
 * cJSON 1.7.15 copies a number into a 64-byte buffer, so it rejects valid
 * numbers longer than 63 characters; such inputs skip the differential part.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/event.h"

#define NOW 1700000000000LL
#define MAX_BYTES 1024

static fd_parser_t *strict, *loose;

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz_event: check failed at line %d: %s\n", __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

static void init(void) {
    char err[128];
    fd_event_limits_t a = {MAX_BYTES, 172800000, 300000};
    fd_event_limits_t b = {MAX_BYTES, INT64_MAX, INT64_MAX};
    strict = fd_parser_new(&a, err, sizeof err);
    loose = fd_parser_new(&b, err, sizeof err);
    CHECK(strict != NULL && loose != NULL);
}

/* Independent UTF-8 check (RFC 3629); returns code points or -1. */
static long utf8_cps(const unsigned char *s, size_t n) {
    long cps = 0;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            k = 1;
            cp = c;
            min = 0;
        } else if ((c & 0xE0) == 0xC0) {
            k = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else return -1;
        if (n - i < k) return -1;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return -1;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
        i += k;
        cps++;
    }
    return cps;
}

static int has_backslash(const uint8_t *d, size_t n) { return memchr(d, '\\', n) != NULL; }

/* Reads all of s (for ASan) and checks where it points. */
static void check_str(fd_str_t s, const uint8_t *d, size_t n, int may_be_int, size_t min_cp,
                      size_t max_cp) {
    if (s.p == NULL) {
        CHECK(s.n == 0);
        CHECK(min_cp == 0);
        return;
    }
    unsigned char *copy = malloc(s.n ? s.n : 1);
    CHECK(copy != NULL);
    memcpy(copy, s.p, s.n);
    CHECK(memcmp(copy, s.p, s.n) == 0);

    const char *in = (const char *)d;
    if (s.p >= in && s.p <= in + n) {
        CHECK(s.n <= (size_t)(in + n - s.p));
        int quoted = s.p > in && s.p[-1] == '"' && s.p + s.n < in + n && s.p[s.n] == '"';
        if (!quoted) {
            CHECK(may_be_int);
            for (uint32_t i = 0; i < s.n; i++)
                CHECK((copy[i] >= '0' && copy[i] <= '9') || (i == 0 && copy[i] == '-'));
        }
    } else {
        CHECK(has_backslash(d, n)); /* only escaped strings are decoded */
    }
    long cps = utf8_cps(copy, s.n);
    CHECK(cps >= 0);
    CHECK((size_t)cps >= min_cp && (size_t)cps <= max_cp);
    free(copy);
}

static void check_event(const fd_event_t *ev, fd_event_type_t topic, const uint8_t *d, size_t n) {
    CHECK(ev->type >= FD_TYPE_EXPOSURE && ev->type <= FD_TYPE_PAYMENT);
    CHECK(topic == FD_TYPE_NONE || ev->type == topic);
    check_str(ev->event_id, d, n, 0, 1, 128);
    check_str(ev->user_id, d, n, 1, 1, 128);
    check_str(ev->product_id, d, n, 0, 1, 128);
    const fd_str_t *dims[] = {&ev->community_id, &ev->channel, &ev->campaign_id, &ev->content_id,
                              &ev->coupon_id};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        check_str(*dims[i], d, n, 0, 0, 128);
        CHECK(dims[i]->p == NULL || dims[i]->n > 0);
    }
    if (ev->type == FD_TYPE_INTERACTION) check_str(ev->action, d, n, 0, 1, 32);
    if (ev->type == FD_TYPE_PAYMENT) {
        check_str(ev->order_id, d, n, 0, 1, 128);
        CHECK(ev->amount >= 0);
        CHECK(ev->currency[3] == '\0');
        for (int i = 0; i < 3; i++) CHECK(ev->currency[i] >= 'A' && ev->currency[i] <= 'Z');
        CHECK(ev->status == FD_STATUS_PAID || ev->status == FD_STATUS_REFUNDED);
    }
}

/* The last member named key (cJSON's lookup returns the first). */
static const cJSON *last_member(const cJSON *obj, const char *key) {
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c != NULL; c = c->next)
        if (c->string != NULL && strcmp(c->string, key) == 0) found = c;
    return found;
}

static void same_string(const cJSON *root, const char *key, fd_str_t s) {
    if (s.p == NULL) return;
    const cJSON *m = last_member(root, key);
    CHECK(m != NULL);
    if (!cJSON_IsString(m)) return; /* e.g. an integer user_id */
    CHECK(strlen(m->valuestring) == s.n && memcmp(m->valuestring, s.p, s.n) == 0);
}

/* A number member small enough for a double to hold exactly. */
static void same_int(const cJSON *root, const char *key, int64_t v) {
    const cJSON *m = last_member(root, key);
    CHECK(m != NULL);
    if (!cJSON_IsNumber(m) || m->valuedouble > 9007199254740992.0 ||
        m->valuedouble < -9007199254740992.0)
        return;
    CHECK((double)v == m->valuedouble);
}

static int has_escaped_nul(const uint8_t *d, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++)
        if (memcmp(d + i, "\\u0000", 6) == 0) return 1;
    return 0;
}

static int long_number(const uint8_t *d, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("0123456789+-.eE", d[i]) != NULL && d[i] != '\0') run++;
        else run = 0;
        if (run >= 63) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const fd_event_type_t topics[] = {FD_TYPE_NONE, FD_TYPE_EXPOSURE, FD_TYPE_INTERACTION,
                                             FD_TYPE_PAYMENT};
    if (strict == NULL) init();

    fd_reason_t first = FD_OK;
    for (size_t t = 0; t < 4; t++) {
        fd_parser_t *ps[2] = {strict, loose};
        for (int k = 0; k < 2; k++) {
            fd_event_t ev;
            const char *field = NULL;
            fd_reason_t r =
                fd_event_parse(ps[k], (const char *)data, size, topics[t], NOW, &ev, &field);
            CHECK(r < FD_R__COUNT && r != FD_R_LATE);
            CHECK(field != NULL);
            if (t == 0 && k == 0) first = r;
            int syntax = r == FD_R_TOO_LARGE || r == FD_R_INVALID_JSON || r == FD_R_NOT_OBJECT;
            int first_syntax =
                first == FD_R_TOO_LARGE || first == FD_R_INVALID_JSON || first == FD_R_NOT_OBJECT;
            CHECK(syntax == first_syntax);
            if (syntax) {
                CHECK(r == first);
                CHECK(strcmp(field, "-") == 0);
            } else if (r == FD_OK) {
                CHECK(strcmp(field, "-") == 0);
                check_event(&ev, topics[t], data, size);
            } else {
                CHECK(strcmp(field, "-") != 0);
            }
            if (k == 0 && (r == FD_R_TS_TOO_OLD || r == FD_R_TS_IN_FUTURE)) {
                /* The same event under the widest bounds (INT64_MAX each way) is
                 * accepted, unless its ts is older still than NOW - INT64_MAX
                 * (e.g. ts = INT64_MIN): then it is too old there too. Nothing
                 * can lie beyond NOW + INT64_MAX. */
                fd_event_t ev2;
                fd_reason_t r2 =
                    fd_event_parse(loose, (const char *)data, size, topics[t], NOW, &ev2, &field);
                if (r2 != FD_OK) CHECK(r2 == FD_R_TS_TOO_OLD && ev2.ts_ms < NOW - INT64_MAX);
            }
        }
    }
    CHECK(size <= MAX_BYTES || first == FD_R_TOO_LARGE);

    /* Differential check against cJSON. */
    if (first == FD_R_TOO_LARGE || first == FD_R_INVALID_JSON || long_number(data, size)) return 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, size, &end, 0);
    CHECK(root != NULL);
    while (end < (const char *)data + size &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    CHECK(end == (const char *)data + size);
    CHECK(cJSON_IsObject(root) == (first != FD_R_NOT_OBJECT));
    fd_event_t ev;
    const char *field;
    /* cJSON cuts keys and strings at an escaped NUL ("ts\u0000" reads as
     * "ts"), so values are compared only without one. */
    if (!has_escaped_nul(data, size) &&
        fd_event_parse(loose, (const char *)data, size, FD_TYPE_NONE, NOW, &ev, &field) == FD_OK) {
        same_string(root, "event_id", ev.event_id);
        same_string(root, "product_id", ev.product_id);
        same_string(root, "user_id", ev.user_id);
        same_int(root, "ts", ev.ts_ms);
        if (ev.type == FD_TYPE_PAYMENT) same_int(root, "amount", ev.amount);
    }
    cJSON_Delete(root);
    return 0;
}
