/*
 * event.h — one funnel event, parsed and validated (SPEC §2, docs/EVENTS.md).
 *
 * fd_event_parse() turns the bytes of one Kafka message (or one JSON Lines
 * line) into a fixed fd_event_t whose strings point into the message buffer
 * (no copies) or, for strings that carried JSON escapes, into the parser's
 * scratch space. The event is valid until the next parse call on the same
 * parser or until the message buffer is released, whichever comes first.
 *
 * Bad input is data: the parser returns a stable reason code and names the
 * field; the caller counts it and routes the original bytes to the DLQ.
 * Memory: one parser holds a scratch buffer of at most max_message_bytes.
 */
#ifndef FD_EVENT_H
#define FD_EVENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FD_TYPE_NONE = 0, /* topic not mapped: the message must carry "type" */
    FD_TYPE_EXPOSURE,
    FD_TYPE_INTERACTION,
    FD_TYPE_PAYMENT,
} fd_event_type_t;

/* Reason codes, stable: their names are part of the contract. */
typedef enum {
    FD_OK = 0,
    FD_R_TOO_LARGE,
    FD_R_INVALID_JSON,
    FD_R_NOT_OBJECT,
    FD_R_MISSING_FIELD,
    FD_R_BAD_TYPE,
    FD_R_BAD_VALUE,
    FD_R_UNKNOWN_TYPE,
    FD_R_TYPE_TOPIC_MISMATCH,
    FD_R_TS_TOO_OLD,
    FD_R_TS_IN_FUTURE,
    FD_R_LATE, /* only with late_policy "dlq"; never returned by the parser */
    FD_R__COUNT
} fd_reason_t;

typedef struct {
    const char *p; /* not NUL-terminated; NULL when absent */
    uint32_t n; /* length in bytes */
} fd_str_t;

typedef enum { FD_STATUS_PAID = 0, FD_STATUS_REFUNDED = 1 } fd_status_t;

/* The largest payment amount accepted (minor units; 10^12 fen = 10^10 CNY);
 * above it the amount is bad_value (docs/EVENTS.md). Bounded so that no
 * batch of payments can carry a Redis counter past int64. */
#define FD_AMOUNT_MAX INT64_C(1000000000000)

typedef struct {
    fd_event_type_t type;
    int64_t ts_ms;
    fd_str_t event_id, user_id, product_id;
    fd_str_t community_id, channel, campaign_id, content_id, coupon_id; /* .p NULL if absent or "" */
    fd_str_t action; /* interaction only */
    fd_str_t order_id; /* payment only */
    int64_t amount; /* payment only, minor units */
    char currency[4]; /* payment only, default "CNY" */
    fd_status_t status;
} fd_event_t;

typedef struct {
    size_t max_message_bytes; /* too_large above this */
    int64_t max_age_ms; /* ts_too_old when ts < now - max_age_ms */
    int64_t max_future_ms; /* ts_in_future when ts > now + max_future_ms */
} fd_event_limits_t;

typedef struct fd_parser fd_parser_t;

fd_parser_t *fd_parser_new(const fd_event_limits_t *lim, char *err, size_t errlen);
void fd_parser_free(fd_parser_t *p);

/* Parses and validates buf[0..len). topic_type is the type the source topic
 * is mapped to (FD_TYPE_NONE for a mixed topic). now_ms is the wall clock.
 * Returns FD_OK and fills *ev, or a reason; *field is then the offending
 * field name (a static string) or "-". */
fd_reason_t fd_event_parse(fd_parser_t *p, const char *buf, size_t len, fd_event_type_t topic_type,
                           int64_t now_ms, fd_event_t *ev, const char **field);

const char *fd_reason_name(fd_reason_t r); /* "invalid_json", ... */
const char *fd_event_type_name(fd_event_type_t t); /* "exposure", ... */
/* Returns FD_TYPE_NONE for an unknown name. */
fd_event_type_t fd_event_type_from_name(const char *s, size_t n);

#endif
