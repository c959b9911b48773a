/*
 * hex.h — the value of one hexadecimal digit, shared by the event parser
 * (\uXXXX escapes), scope-id decoding and the redis.url percent-decoder.
 */
#ifndef FD_HEX_H
#define FD_HEX_H

/* 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for anything else (ch is a byte
 * value, or a negative char). */
static inline int fd_hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch |= 0x20; /* 'A'-'F' -> 'a'-'f'; nothing else lands in 'a'-'f' */
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

#endif
