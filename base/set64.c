/*
 * set64.c — a set of non-zero 64-bit keys (see set64.h).
 */
#include "base/set64.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int grow(fd_set64_t *t) {
    size_t ncap = t->slots ? (t->mask + 1) * 2 : 256;
    uint64_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i]) continue;
        size_t j = fd_mix64(t->slots[i]) & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

int fd_set64_add(fd_set64_t *t, uint64_t k) {
    if (!t->slots || (t->used + 1) * 2 > t->mask + 1)
        if (grow(t) < 0) return -ENOMEM;
    size_t j = fd_mix64(k) & t->mask;
    for (;; j = (j + 1) & t->mask) {
        if (!t->slots[j]) {
            t->slots[j] = k;
            t->used++;
            return 1;
        }
        if (t->slots[j] == k) return 0;
    }
}

void fd_set64_clear(fd_set64_t *t) {
    if (t->used) memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
    t->used = 0;
}

void fd_set64_release(fd_set64_t *t) {
    free(t->slots);
    t->slots = NULL;
    t->mask = t->used = 0;
}
