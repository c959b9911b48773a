/*
 * set64.h — a set of non-zero 64-bit keys.
 *
 * Open addressing, linear probing, power-of-two size, load factor at most
 * 1/2; 8 bytes per slot. Clearing keeps the allocation, so a set that is
 * filled and cleared over and over reuses its memory. Used for the
 * distinct-user members of a batch and for the Redis sink's memory of keys
 * whose TTL it has set.
 */
#ifndef FD_SET64_H
#define FD_SET64_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *slots; /* 0 = empty */
    size_t mask, used;
} fd_set64_t;

/* 1 if k (non-zero) was added, 0 if it was there, -ENOMEM. */
int fd_set64_add(fd_set64_t *t, uint64_t k);
void fd_set64_clear(fd_set64_t *t);
void fd_set64_release(fd_set64_t *t); /* frees the slots; the set is empty and usable */

static inline uint64_t fd_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#endif
