/*
 * utf8.h — the length of one well-formed UTF-8 sequence.
 *
 * Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF.
 * Shared by the event parser (model/event.c, on its hot path: inline) and
 * the API's check of query parameters (web/web.c).
 */
#ifndef FD_UTF8_H
#define FD_UTF8_H

/* The length (1-4) of the sequence starting at p (p < end), 0 if it is not
 * well-formed or runs past end. */
static inline int fd_utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return end - p >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) return 0;
        return 4;
    }
    return 0; /* 0x80..0xC1 lead, 0xF5..0xFF */
}

#endif
