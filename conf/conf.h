/*
 * conf.h — funneld's configuration: one struct, filled from one table.
 *
 * Every key lives in one declarative table in conf.c (name, type, bounds,
 * default, offset into fd_conf_t, help). Loading, validation, the output of
 * `funneld check-config` and docs/CONFIG.md all come from that table.
 * Cross-field rules live in one finalize step. An unknown key or a bad value
 * is an error whose message names the key (exit status 2 in the CLI).
 */
#ifndef FD_CONF_H
#define FD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "model/alert_rule.h"
#include "model/scope.h"
#include "model/event.h"
#include "base/kafka.h"

#define FD_MAX_TOPICS 16
#define FD_MAX_KPROPS 64
#define FD_MAX_WINDOWS 8
#define FD_MAX_RET_DAYS 16
#define FD_MAX_RET_DIMS 3
#define FD_CONF_MAX_KEYS 256 /* bound on the rows of the configuration table */

typedef struct {
    char *name;
    fd_event_type_t type; /* FD_TYPE_NONE: mixed topic, events carry "type" */
} fd_topic_t;

typedef enum { FD_LATE_COUNT = 0, FD_LATE_DLQ = 1 } fd_late_policy_t;

typedef struct {
    /* kafka */
    char *brokers; /* kafka.brokers, default "127.0.0.1:9092" */
    char *group; /* kafka.group, default "funneld" */
    int ntopics;
    fd_topic_t topics[FD_MAX_TOPICS]; /* kafka.topics: {"name": "exposure"|"interaction"|"payment"|"mixed"} */
    char *dlq_topic; /* kafka.dlq_topic, default "funnel.dlq" */
    int64_t dlq_max_message_bytes; /* kafka.dlq_max_message_bytes, default 1000000: longer dead letters are truncated */
    int nkprops;
    fd_kprop_t kprops[FD_MAX_KPROPS]; /* kafka.properties + -X */
    /* redis */
    char *redis_url; /* redis.url, default "redis://127.0.0.1:6379" */
    char *prefix; /* redis.prefix, default "funnel" */
    int64_t redis_timeout_ms; /* redis.timeout_ms, default 5000: watchdog */
    /* pipeline */
    int64_t flush_interval_ms; /* flush_interval_ms, default 1000 */
    int64_t snapshot_interval_ms; /* snapshot_interval_ms, default 5000 */
    int64_t snapshot_max_scopes; /* snapshot_max_scopes, default 1000 per tick */
    int64_t max_message_bytes; /* max_message_bytes, default 65536 */
    int64_t flush_max_events; /* flush_max_events, default 20000: flush a partition early */
    int64_t max_pending_events; /* max_pending_events, default 200000: pause above */
    /* scopes */
    int ngroupings;
    fd_grouping_t groupings[FD_MAX_GROUPINGS]; /* groupings: [["product","channel"], ...] */
    int64_t cardinality_cap; /* cardinality_cap, default 10000 */
    /* hll_m1_groupings (conf/uniques.c): the groupings whose scopes get m1
     * exposed/interacted HLLs; hll_m1_set has bit (1u << mask) per entry */
    int nhll_m1;
    fd_grouping_t hll_m1[FD_MAX_GROUPINGS];
    uint32_t hll_m1_set;
    int64_t action_cap; /* action_cap, default 64 */
    /* time */
    char *time_zone; /* time_zone, default "Asia/Shanghai" */
    int64_t lateness_s; /* lateness_s, default 120 */
    fd_late_policy_t late_policy; /* late_policy "count"|"dlq" */
    int64_t max_future_s; /* max_future_s, default 300 */
    int64_t idle_timeout_s; /* idle_timeout_s, default 60 */
    int nwindows;
    int64_t windows_s[FD_MAX_WINDOWS]; /* windows: ["5m","1h","24h"] */
    int64_t ttl_m1_s, ttl_h1_s, ttl_d1_s; /* ttl.m1_s 172800, ttl.h1_s 3024000, ttl.d1_s 34560000 */
    int64_t dedup_ttl_s; /* dedup_ttl_s, default = 34560000 */
    /* ops */
    char *http_listen; /* http.listen, default "127.0.0.1:9464"; "" disables */
    int64_t http_max_connections; /* http.max_connections, default 1024 */
    int64_t http_max_connections_per_ip; /* http.max_connections_per_ip, default 0 (off) */
    int64_t http_timeout_s; /* http.timeout_s, default 2: idle connections */
    /* the screen, /api/v1 and the event stream (web/web.c, docs/API.md) */
    char *http_api_token; /* http.api_token, default "" (none); secret */
    char *http_dashboard_dir; /* http.dashboard_dir, default "" (next to the binary) */
    int64_t http_sse_max_clients; /* http.sse_max_clients, default 1000 */
    int64_t http_sse_max_buffer_bytes; /* http.sse_max_buffer_bytes, default 1048576 */
    int64_t http_sse_heartbeat_ms; /* http.sse_heartbeat_ms, default 15000 */
    char *log_level; /* log.level: "debug"|"info"|"warn"|"error" */
    int64_t log_rate_per_s; /* log.rate_per_s, default 10: per-event problem lines */
    /* alerts (alerts/alerts.c, docs/ALERTS.md) */
    int nalert_rules;
    fd_alert_rule_t alert_rules[FD_ALERT_MAX_RULES]; /* alerts.rules */
    int64_t alert_eval_interval_ms; /* alerts.eval_interval_ms, default 10000 */
    int64_t alert_max_catchup_s; /* alerts.max_catchup_s, default 3600 */
    int64_t alert_stream_maxlen; /* alerts.stream_maxlen, default 10000 */
    int64_t alert_queue_size; /* alerts.queue_size, default 1000 */
    char *alert_generator_url; /* alerts.generator_url, default "" */
    int alert_stdout; /* alerts.stdout, default false */
    int alert_kafka_enabled; /* alerts.kafka.enabled, default false */
    char *alert_kafka_topic; /* alerts.kafka.topic, default "funnel.alerts" */
    char *alert_am_url; /* alerts.alertmanager.url, default "" (off) */
    int64_t alert_am_resend_ms; /* alerts.alertmanager.resend_interval_ms, default 60000 */
    char *alert_webhook_url; /* alerts.webhook.url, default "" (off) */
    char *alert_webhook_secret; /* alerts.webhook.secret (a secret: masked) */
    int64_t alert_http_timeout_ms; /* alerts.http.timeout_ms, default 5000 */
    int64_t alert_http_backoff_min_ms; /* alerts.http.backoff_min_ms, default 500 */
    int64_t alert_http_backoff_max_ms; /* alerts.http.backoff_max_ms, default 60000 */
    /* coupons and leaderboards (docs/METRICS.md) */
    int64_t coupon_cap; /* coupons.cap, default 64 named coupons per counter hash */
    int64_t lb_size; /* leaderboards.size, default 100 members per board */
    int64_t lb_min_potential; /* leaderboards.min_potential_users, default 30 */
    /* marketing metrics: retention cohorts and the attributed funnel
     * (conf/marketing.c, docs/METRICS.md); the *_s texts are parsed by
     * fd_conf_finalize into the fields after them */
    int mkt_enabled; /* marketing.enabled, default false */
    int64_t mkt_user_cap; /* marketing.user_cap, default 32 */
    char *ret_days_s; /* retention.days, default "1,7,30" */
    int nret_days;
    int32_t ret_days[FD_MAX_RET_DAYS];
    int ret_mode; /* retention.mode: 0 day_n, 1 unbounded (fd_ret_mode_t) */
    char *ret_start_s, *ret_active_s; /* retention.start_types, retention.active_types */
    unsigned ret_start_mask, ret_active_mask; /* FD_MKT_EXPOSURE | ... */
    int64_t ret_horizon_s; /* retention.horizon_s, default 34560000 (400 d) */
    char *ret_dims_s; /* retention.groupings, default "channel" */
    int nret_dims;
    char ret_dims[FD_MAX_RET_DIMS][16]; /* "channel", "community", "campaign" */
    int64_t funnel_window_s; /* funnel.window_s, default 604800 (7 d) */
    /* per key of the table (by its index): 1 once a file or fd_conf_set()
     * gave it a value, so a default can depend on other keys */
    unsigned char given[FD_CONF_MAX_KEYS];
} fd_conf_t;

#define FD_MKT_EXPOSURE 1u
#define FD_MKT_INTERACTION 2u
#define FD_MKT_PAYMENT 4u
#define FD_MKT_MAX_FLUSH_EVENTS 5000 /* flush_max_events bound with marketing.enabled */
/* flush_max_events when marketing.enabled and the key is not given */
#define FD_MKT_DEFAULT_FLUSH_EVENTS 2000
/* 1 when a file or fd_conf_set() (after fd_conf_defaults) gave key a value. */
int fd_conf_given(const fd_conf_t *c, const char *key);
/* The longest of `windows`, in seconds. */
int64_t fd_conf_longest_window_s(const fd_conf_t *c);
/* Parses and checks the marketing keys (conf/marketing.c); called by
 * fd_conf_finalize. */
int fd_conf_finalize_marketing(fd_conf_t *c, char *err, size_t errlen);

/* hll_m1_groupings (conf/uniques.c). fd_conf_finalize_uniques applies its
 * default (`all` and `product` when in `groupings`), checks each entry is one
 * of `groupings` and that no alert rule needs distinct users of a grouping
 * without m1 HLLs; called by fd_conf_finalize. */
int fd_conf_finalize_uniques(fd_conf_t *c, char *err, size_t errlen);
/* 1 if the scopes of grouping g get m1 distinct-user HLLs. */
int fd_conf_hll_m1(const fd_conf_t *c, const fd_grouping_t *g);
/* The same for a scope id ("all", "product=p1,channel=x"); 0 for an id that
 * does not parse. */
int fd_conf_scope_hll_m1(const fd_conf_t *c, const char *scope);

/* Fills c with every default. */
void fd_conf_defaults(fd_conf_t *c);
/* Loads the JSON file at path over the defaults (${ENV} expanded in string
 * values). Returns 0, or -1 with a message naming the key in err. */
int fd_conf_load_file(fd_conf_t *c, const char *path, char *err, size_t errlen);
/* Sets one key from text, as a flag does ("redis.url", "redis://..."). */
int fd_conf_set(fd_conf_t *c, const char *key, const char *value, char *err, size_t errlen);
/* Adds a librdkafka property (-X key=value). */
int fd_conf_add_kprop(fd_conf_t *c, const char *kv, char *err, size_t errlen);
/* Cross-field rules; returns 0 or -1 with a readable message. */
int fd_conf_finalize(fd_conf_t *c, char *err, size_t errlen);
/* Prints the effective configuration as JSON, secrets masked. */
void fd_conf_print(const fd_conf_t *c, FILE *out);
/* Prints the table as a Markdown page (docs/CONFIG.md). */
void fd_conf_print_doc(FILE *out);
void fd_conf_release(fd_conf_t *c); /* frees owned strings */

/* Parses redis.url: redis://[user:password@]host:port[/db] or unix:///path. */
typedef struct {
    char host[256];
    int port; /* 0 for unix */
    char path[256]; /* unix socket path */
    char user[128], password[256];
    int db;
} fd_redis_addr_t;
int fd_redis_url_parse(const char *url, fd_redis_addr_t *a, char *err, size_t errlen);

/* Parses http.listen: "IPV4:PORT" or "localhost:PORT" (port 1..65535), the
 * only forms the HTTP server (ops/http.c) can bind. The one parser of both
 * fd_conf_finalize and the server, so that check-config and run agree.
 * Writes the dotted IPv4 address into ipv4 (cap >= 16; "localhost" gives
 * 127.0.0.1) and the port into *port. 0, or -1 with a message naming
 * http.listen. */
int fd_conf_listen_parse(const char *listen, char *ipv4, size_t cap, int *port, char *err,
                         size_t errlen);

/* True if a librdkafka property name holds a secret (password, secret, token, key). */
int fd_conf_is_secret(const char *key);
/* Overwrites with '*', in place and keeping its length, every part of a
 * command-line value that check-config masks, so that ps and
 * /proc/PID/cmdline no longer show it: key is the configuration key the
 * value is for ("redis.url"), or NULL for a -X "name=value". */
void fd_conf_scrub_arg(const char *key, char *value);

#endif
