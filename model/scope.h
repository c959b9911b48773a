/*
 * scope.h — groupings and scope ids (SPEC §3).
 *
 * A grouping is an ordered list of dimensions; an event updates one scope per
 * grouping, unless it lacks one of the grouping's dimensions. A scope id is
 * "dim=value" pairs in grouping order, comma-joined, each value
 * percent-encoded (see fd_scope_encode); the empty grouping is "all".
 * Each grouping has a cardinality cap: past it, new values aggregate into
 * "__other__" (every dimension of the grouping then reads __other__) and the
 * overflow is counted. Memory: at most cap scope ids per grouping.
 */
#ifndef FD_SCOPE_H
#define FD_SCOPE_H

#include <stddef.h>
#include <stdint.h>
#include "model/event.h"

typedef enum {
    FD_DIM_PRODUCT = 0, /* product_id */
    FD_DIM_CHANNEL, /* channel */
    FD_DIM_COMMUNITY, /* community_id */
    FD_DIM_CAMPAIGN, /* campaign_id */
    FD_DIM_CONTENT, /* content_id */
    FD_DIM__COUNT
} fd_dim_t;

#define FD_MAX_GROUPINGS 16

typedef struct {
    int ndims;
    fd_dim_t dims[FD_DIM__COUNT];
} fd_grouping_t;

const char *fd_dim_name(fd_dim_t d); /* "product", "channel", ... */
int fd_dim_from_name(const char *s); /* -1 if unknown */
/* The grouping's dimensions as a bit set (1u << fd_dim_t): two groupings
 * with the same dimensions in another order have the same mask. */
unsigned fd_grouping_mask(const fd_grouping_t *g);

/* Appends the percent-encoded form of s[0..n) to out (capacity cap, always
 * NUL-terminated when cap > 0). Encodes , = : { } % space, bytes < 0x20 and
 * 0x7F as %XX (upper-case hex); every other byte passes through.
 * Returns the encoded length (which may exceed cap - 1: then out is cut). */
size_t fd_scope_encode(char *out, size_t cap, const char *s, size_t n);

/* The inverse, for one value read back from a scope id: writes s[0..n) with
 * every %XX turned back into its byte into out (NUL-terminated, cut to
 * cap - 1 bytes); anything else, a malformed % included, passes through. */
void fd_scope_decode(char *out, size_t cap, const char *s, size_t n);

/* Writes the scope id of event ev for grouping g into out (capacity cap).
 * Returns the length, 0 if the event lacks a dimension of g (skip), or
 * (size_t)-1 if it does not fit in cap. Does not apply the cap. */
size_t fd_scope_id(char *out, size_t cap, const fd_grouping_t *g, const fd_event_t *ev);

/* The capped set of scope ids seen, per grouping. */
typedef struct fd_scopes fd_scopes_t;
fd_scopes_t *fd_scopes_new(int ngroupings, uint32_t cap, char *err, size_t errlen);
void fd_scopes_free(fd_scopes_t *s);
/* Admits scope id (len n) of grouping gi. Returns the id to use: id itself if
 * admitted (already known or room left), else the grouping's __other__ id
 * (stored in the table; valid until fd_scopes_free). Either way the pointer
 * is the set's own NUL-terminated copy, stable until fd_scopes_free (equal
 * ids give equal pointers). Returns NULL (and *outlen 0) only on allocation
 * failure or a bad gi: the caller then skips that scope. */
const char *fd_scopes_admit(fd_scopes_t *s, int gi, const fd_grouping_t *g, const char *id,
                            size_t n, size_t *outlen);
uint64_t fd_scopes_overflow(const fd_scopes_t *s, int gi);
/* The hot path's form of fd_scope_id + fd_scopes_admit, for every grouping
 * of the set at once (gs: the groupings the set was made for, in order):
 * ids[gi] is exactly what fd_scopes_admit returns for the event's id in
 * grouping gi (same pointer, same cap decision, same overflow count), or
 * {NULL, 0} when the event lacks a dimension of gi. The event's dimension
 * values are hashed once and an admitted id is found without being built.
 * Returns 0, -ENOMEM, or -E2BIG for an id that cannot be built (impossible
 * after validation). */
int fd_scopes_admit_event(fd_scopes_t *s, const fd_grouping_t *gs, const fd_event_t *ev,
                          fd_str_t ids[]);

/* Splits scope id ("all", or "name=value,name=value" in dimension order) into its dimensions
 * (*set, bits as fd_grouping_mask) and decoded values (vals[dim]). Returns
 * -1 if it is not a well-formed id, 1 if a value is __other__, else 0. */
int fd_scope_parse(const char *id, unsigned *set, char vals[FD_DIM__COUNT][256]);

/* Whether grouping g gets leaderboards (docs/METRICS.md): its last
 * dimension is channel or community. The snapshot writer and the API's
 * board list both ask this, so they agree on which boards can exist. */
int fd_grouping_has_boards(const fd_grouping_t *g);
/* Writes g's dimension names joined by "," ("product,channel") into out
 * (always NUL-terminated when cap > 0). Returns the length (>= cap:
 * truncated). */
size_t fd_grouping_name(char *out, size_t cap, const fd_grouping_t *g);

#endif
