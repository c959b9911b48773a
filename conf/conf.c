/*
 * conf.c — the configuration table and everything derived from it.
 *
 * `keys[]` below is the single description of funneld's configuration: for
 * every key its dotted name, kind, bounds, default (as the text a user would
 * write), the offset of its field in fd_conf_t and one line of help. Nothing
 * else in this file knows a key by name except the cross-field rules in
 * fd_conf_finalize(): defaults are applied by feeding each default text
 * through fd_conf_set(), a JSON file is walked and each member matched
 * against the table, `check-config` prints the table's fields back as JSON,
 * and docs/CONFIG.md is fd_conf_print_doc() verbatim (tests/unit/test_conf.c
 * fails when the two drift). Adding a key is one table row.
 *
 * Invariants a reader must not break:
 * - every char * in fd_conf_t is NULL or owned by the conf (strdup'd), so
 *   fd_conf_release() can free them all and is safe to call again;
 * - a compound value (topics, properties, groupings, windows) is parsed into a
 *   temporary first and committed only when the whole value is valid, so a
 *   failed fd_conf_set() leaves the previous value in place;
 * - no error message ever contains a string value of a key that may hold a
 *   secret: messages about redis.url and the alert URLs describe the fault
 *   without echoing the URL, and a librdkafka property value shows up only
 *   inside librdkafka's own reason for refusing it, as "***" for a secret
 *   property and credentials masked in a URL (finalize_kprops()).
 *
 * Memory: fd_conf_t is fixed-size; the only heap use is the owned strings and
 * the transient cJSON tree of the file (files are capped at 1 MiB).
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/err.h"
#include "base/hex.h"
#include "base/duration.h"
#include "conf/conf_int.h"

#define CONF_FILE_MAX (1024 * 1024)
#define WINDOW_MAX_S INT64_C(315360000) /* 3650 days */
#define TTL_MAX_S INT64_C(315360000)

typedef enum {
    K_STR, /* char *; min..max bound the length in bytes */
    K_INT, /* int64_t; min..max bound the value */
    K_ENUM, /* a C enum stored as int: the index into choices */
    K_ENUM_STR, /* char *: one of choices */
    K_TOPICS, /* fd_topic_t[], count at noff; min..max bound the count */
    K_KPROPS, /* fd_kprop_t[], count at noff */
    K_GROUPINGS, /* fd_grouping_t[], count at noff */
    K_WINDOWS, /* int64_t[] seconds, count at noff */
    K_BOOL, /* int: 0 or 1; JSON true/false, text "true"/"false" */
    K_RULES, /* fd_alert_rule_t[], count at noff (model/alert_rule.c parses one) */
} kind_t;

typedef enum { MASK_NONE = 0, MASK_URL_PASSWORD, MASK_SECRET } mask_t;

typedef struct {
    const char *name; /* dotted path into the nested JSON file */
    kind_t kind;
    int64_t min, max;
    const char *def; /* scalars: plain text; compound kinds: JSON text */
    size_t off, noff; /* field, and count field of compound kinds */
    const char *choices; /* K_ENUM, K_ENUM_STR, K_TOPICS: "a|b|c" */
    mask_t mask;
    const char *help;
} conf_key_t;

_Static_assert(sizeof(fd_late_policy_t) == sizeof(int), "K_ENUM stores an int");

#define OFF(f) offsetof(fd_conf_t, f)
#define STR(n, lo, hi, d, f, h) {n, K_STR, lo, hi, d, OFF(f), 0, NULL, MASK_NONE, h}
#define INT(n, lo, hi, d, f, h) {n, K_INT, lo, hi, d, OFF(f), 0, NULL, MASK_NONE, h}
#define ENUM(n, k, ch, d, f, h) {n, k, 0, 0, d, OFF(f), 0, ch, MASK_NONE, h}
#define LIST(n, k, lo, hi, d, f, nf, h) {n, k, lo, hi, d, OFF(f), OFF(nf), NULL, MASK_NONE, h}
#define BOOL(n, d, f, h) {n, K_BOOL, 0, 1, d, OFF(f), 0, NULL, MASK_NONE, h}
/* A URL: its credentials are masked wherever it is shown (mask_url()). */
#define URL(n, lo, hi, d, f, h) {n, K_STR, lo, hi, d, OFF(f), 0, NULL, MASK_URL_PASSWORD, h}

/* The order here is the order of check-config output and of docs/CONFIG.md. */
static const conf_key_t keys[] = {
    STR("kafka.brokers", 1, 4096, "127.0.0.1:9092", brokers,
        "Kafka bootstrap servers, comma-separated host:port. Flag `--brokers`."),
    STR("kafka.group", 1, 255, "funneld",
        group, "Consumer group id; also names the offsets hash `{prefix}:offsets:{group}`. Flag `--group`."),
    {"kafka.topics", K_TOPICS, 1, FD_MAX_TOPICS,
     "{\"funnel.exposure\": \"exposure\", \"funnel.interaction\": \"interaction\", "
     "\"funnel.payment\": \"payment\"}",
     OFF(topics), OFF(ntopics), "exposure|interaction|payment|mixed", MASK_NONE,
     "Input topics, each mapped to the event type its messages carry: on a mapped topic an event "
     "may omit `type` (if present it must agree); on a `mixed` topic every event carries `type`."},
    STR("kafka.dlq_topic", 1, 249, "funnel.dlq", dlq_topic,
        "Dead-letter topic: every rejected message (and late events under `late_policy` `dlq`) "
        "goes here with headers naming the reason. A valid topic name (1..249 of a-z A-Z 0-9 "
        "`.` `_` `-`), not an input topic."),
    INT("kafka.dlq_max_message_bytes", 1024, 100000000, "1000000", dlq_max_message_bytes,
        "Largest value of a dead letter: a rejected message longer than this goes to the "
        "dead-letter topic as its first this-many bytes, with headers `truncated=true` and "
        "`original.size`, so that it always leaves the stream. The dead-letter producer's "
        "`message.max.bytes` is set to fit it (plus its headers) unless `kafka.properties` sets "
        "it. "
        "The default fits the broker's default `max.message.bytes` (1048588); raise both "
        "together."),
    LIST("kafka.properties", K_KPROPS, 0, FD_MAX_KPROPS, "{}", kprops, nkprops,
         "Extra librdkafka properties, name to value; `-X name=value` adds more after the file. "
         "Integers and booleans are converted to text. `bootstrap.servers`, "
         "`metadata.broker.list` and `group.id` are refused (use the keys above). A property "
         "librdkafka documents as consumer-only is given to the consumer alone, a producer-only "
         "one to the dead-letter and alert producers alone. funneld's consumer sets "
         "`topic.metadata.refresh.interval.ms=30000` (librdkafka: 300000), so partitions added "
         "to an input topic are consumed within about 30 s; set it here to change that. Every "
         "property is given to librdkafka when the configuration is checked (`check-config` "
         "too): an unknown name or a value librdkafka refuses is an error naming "
         "`kafka.properties.<name>`, with librdkafka's reason (a secret's value never shown)."),
    {"redis.url", K_STR, 1, 1024, "redis://127.0.0.1:6379", OFF(redis_url), 0, NULL, MASK_URL_PASSWORD,
     "`redis://[user:password@]host[:port][/db]` (port 6379 by default; user and password "
     "may be percent-encoded) or `unix:///path/to.sock`. Flag `--redis`. Keep the "
     "password in the environment: `redis://:${REDIS_PASSWORD}@host:6379`."},
    STR("redis.prefix", 1, 64, "funnel", prefix,
        "Prefix of every Redis key (docs/REDIS.md). Flag `--prefix`."),
    INT("redis.timeout_ms", 100, 600000, "5000", redis_timeout_ms,
        "Watchdog: a Redis reply slower than this drops the connection, pauses the partitions and "
        "reconnects with backoff (hiredis 0.14 has no timeouts of its own)."),
    INT("flush_interval_ms", 10, 600000, "1000", flush_interval_ms,
        "How often each partition's deltas are written to Redis together with its offset. "
        "Partitions are staggered over the interval in eight slots, so Redis gets the work in "
        "pieces."),
    INT("snapshot_interval_ms", 10, 3600000, "5000", snapshot_interval_ms,
        "How often the rolling snapshots `{prefix}:r:{scope}:{window}` are rewritten and a note "
        "is published on `{prefix}:updates`."),
    INT("snapshot_max_scopes", 1, 10000000, "1000", snapshot_max_scopes,
        "At most this many scopes get their rolling snapshots rewritten per tick, the most "
        "recently updated first (each costs a few hundred Redis key reads)."),
    INT("max_message_bytes", 256, 16777216, "65536", max_message_bytes,
        "A message larger than this is rejected as `too_large` before parsing."),
    INT("flush_max_events", 100, 10000000, "20000", flush_max_events,
        "A partition whose unflushed batch reaches this many events is flushed at once, without "
        "waiting for the timer: keeps each flush script short and memory low under load. When "
        "not set, 2000 with `marketing.enabled` (whose limit is 5000)."),
    INT("max_pending_events", 1000, 100000000, "200000", max_pending_events,
        "Events accepted but not yet flushed, over all partitions; above this the consumer pauses "
        "its partitions until flushes catch up."),
    LIST("groupings", K_GROUPINGS, 1, FD_MAX_GROUPINGS,
         "[[], [\"product\"], [\"product\", \"channel\"], [\"product\", \"community\"], "
         "[\"campaign\"]]",
         groupings, ngroupings,
         "Breakdowns: each event updates one scope per grouping whose dimensions it carries; "
         "`[]` is the global scope `all`. No two groupings may have the same dimensions."),
    LIST("hll_m1_groupings", K_GROUPINGS, 0, FD_MAX_GROUPINGS, "[[], [\"product\"]]", hll_m1, nhll_m1,
         "The groupings whose scopes get minute (m1) distinct-user HLLs `exposed` and "
         "`interacted` (same syntax as `groupings`; each must be one of `groupings`). Not "
         "given: `all` and `product`, those of them that are in `groupings`. Every other scope "
         "has them per hour and day only, and its rolling snapshots count distinct users over "
         "the window's whole hours (`uv_from`..`uv_to`; docs/REDIS.md): m1 HLLs were 47% of "
         "the keys and 69% of the PFADDs (docs/BENCHMARKS.md). An alert rule on distinct users "
         "(`conversion_rate`, `uv_*`) needs its grouping here."),
    INT("cardinality_cap", 1, 10000000, "10000", cardinality_cap,
        "Distinct scope ids kept per grouping; further values aggregate into `__other__` and "
        "are counted."),
    INT("action_cap", 1, 1000, "64", action_cap,
        "Distinct `interactions.{action}` fields per counter hash (one scope, one bucket): the "
        "first this many actions to reach the hash keep their own field, later ones are counted "
        "in `interactions.__other__` (docs/REDIS.md). At most 1000: a snapshot writes its fields "
        "in "
        "one HSET from Lua, whose stack holds under 8000 values."),
    STR("time_zone", 1, 255, "Asia/Shanghai", time_zone,
        "IANA time zone of the `d1` (calendar day) buckets; must exist under "
        "/usr/share/zoneinfo."),
    INT("lateness_s", 0, 86400, "120", lateness_s,
        "Allowed lateness: an event behind its partition's highest event time by more than this "
        "is late."),
    ENUM("late_policy", K_ENUM, "count|dlq", "count", late_policy,
         "`count`: late events are still added to their buckets and counted as `late`; `dlq`: "
         "they go to the dead-letter topic instead."),
    INT("max_future_s", 0, 86400, "300", max_future_s,
        "An event more than this ahead of the wall clock is rejected as `ts_in_future`."),
    INT("idle_timeout_s", 1, 86400, "60", idle_timeout_s,
        "A partition without events for this long is left out of the global watermark."),
    LIST("windows", K_WINDOWS, 1, FD_MAX_WINDOWS, "[\"5m\", \"1h\", \"24h\"]", windows_s, nwindows,
         "Rolling windows, sums of m1 buckets ending at the watermark: an integer with unit `s`, "
         "`m`, `h` or `d`, a whole number of minutes. Redis and check-config name a window by its "
         "largest whole unit, one day being `24h`: `5m`, `1h`, `24h`, `7d`."),
    INT("ttl.m1_s", 60, TTL_MAX_S, "172800", ttl_m1_s,
        "TTL of the minute buckets (counters and HLLs); an event older than this is rejected as "
        "`ts_too_old`."),
    INT("ttl.h1_s", 60, TTL_MAX_S, "3024000", ttl_h1_s, "TTL of the hour buckets."),
    INT("ttl.d1_s", 60, TTL_MAX_S, "34560000", ttl_d1_s, "TTL of the day buckets."),
    INT("dedup_ttl_s", 60, TTL_MAX_S, "34560000", dedup_ttl_s,
        "Life of a payment dedup mark `{prefix}:dedup:{order_id}:{status}`."),
    STR("http.listen", 0, 255, "127.0.0.1:9464", http_listen,
        "Address of `/metrics`, `/healthz`, `/readyz`, the screen and the API: `IPV4:PORT` or "
        "`localhost:PORT` (the server binds IPv4 only: no host names, no `[::1]`); an empty "
        "string disables the HTTP server."),
    INT("http.max_connections", 1, 100000, "1024", http_max_connections,
        "Connections the HTTP server holds at once (never more than the descriptor limit minus "
        "128, so a flood of connections cannot take Kafka's and Redis's descriptors); further "
        "clients wait in the kernel's accept queue until a slot frees."),
    INT("http.max_connections_per_ip", 0, 100000, "0", http_max_connections_per_ip,
        "Connections from one client address at most (0: only `http.max_connections`). Off by "
        "default: on the default loopback address every client, the health probe included, is "
        "127.0.0.1, so a per-address limit would turn the probe away with the flood. Set it "
        "when `http.listen` is reachable from other hosts."),
    INT("http.timeout_s", 1, 3600, "2", http_timeout_s,
        "A connection idle this long (a request not completed, a response not read) is closed, "
        "so slow or stuck clients free their slots."),
    {"http.api_token", K_STR, 0, 1024, "", OFF(http_api_token), 0, NULL, MASK_SECRET,
     "Bearer token of `/api/v1/...` and the event stream (docs/API.md): a request without "
     "`Authorization: Bearer TOKEN` (or `?access_token=TOKEN`) gets 401. Empty: no token. The "
     "screen's static files and `/metrics` never need it. Not required on a loopback "
     "`http.listen`; on any other address funneld logs a warning at startup while it is "
     "empty. Keep it in the environment: `\"${FUNNELD_API_TOKEN}\"`. Never printed."},
    STR("http.dashboard_dir", 0, 1024, "", http_dashboard_dir,
        "Directory of the screen's files (index.html, app.js, echarts.min.js). Empty: "
        "`dashboard/` next to the funneld binary (the build tree), else "
        "`../share/funneld/dashboard` from it (an installed binary)."),
    INT("http.sse_max_clients", 1, 100000, "1000", http_sse_max_clients,
        "Event-stream clients (`/api/v1/stream`) held at once; one more gets 503. Each also "
        "holds one of `http.max_connections`."),
    INT("http.sse_max_buffer_bytes", 4096, 1073741824, "1048576", http_sse_max_buffer_bytes,
        "Unsent event-stream bytes held per client at most: a client that reads slower than "
        "updates arrive is disconnected when it would pass this (it reconnects and gets the "
        "full state again), so a slow client costs bounded memory and never slows anything "
        "else."),
    INT("http.sse_heartbeat_ms", 100, 600000, "15000", http_sse_heartbeat_ms,
        "An event-stream comment line is sent this often, so proxies keep the stream open and "
        "a dead client is noticed."),
    ENUM("log.level", K_ENUM_STR, "debug|info|warn|error", "info", log_level,
         "Lowest level logged (logfmt on stderr)."),
    INT("log.rate_per_s", 0, 100000, "10", log_rate_per_s,
        "Per-event problem lines logged per second at most (the rest are only counted); 0 logs "
        "none."),
    /* alerts: alerts/alerts.c, docs/ALERTS.md */
    LIST("alerts.rules", K_RULES, 0, FD_ALERT_MAX_RULES, "[]", alert_rules, nalert_rules,
         "Alert rules (docs/ALERTS.md): objects with `name`, `kind` (`drop_vs_baseline`, "
         "`below_threshold`, `absent`), `metric`, `grouping`, `window`, kind parameters, "
         "`min_samples`, `for`, `keep_firing_for`, `labels`, `annotations`, `sinks`. Evaluated "
         "only by `funneld run`, by the holder of `{prefix}:lease:alerts`."),
    INT("alerts.eval_interval_ms", 100, 3600000, "10000", alert_eval_interval_ms,
        "How often the lease holder evaluates (wall clock); each evaluation walks every "
        "event-time minute step the global watermark has passed since the last one."),
    INT("alerts.max_catchup_s", 0, 2592000, "3600", alert_max_catchup_s,
        "With no evaluation cursor in Redis yet, evaluation starts this far (event time) "
        "behind the watermark."),
    INT("alerts.stream_maxlen", 100, 10000000, "10000", alert_stream_maxlen,
        "Approximate cap of the transition stream `{prefix}:alerts` (XADD MAXLEN ~)."),
    INT("alerts.queue_size", 1, 1000000, "1000", alert_queue_size,
        "Per sink: transitions held in memory for delivery; the rest wait in the stream. "
        "Alertmanager re-sends beyond it are dropped and counted."),
    URL("alerts.generator_url", 0, 1024, "", alert_generator_url,
        "Base of `generatorURL` in Alertmanager payloads (e.g. a dashboard URL): empty, or an "
        "absolute `http://` or `https://` URL with a host; the scope is appended as `?scope=`."),
    BOOL("alerts.stdout", "false", alert_stdout,
         "Print each firing/resolved transition as one JSON line on stdout."),
    BOOL("alerts.kafka.enabled", "false", alert_kafka_enabled,
         "Produce each firing/resolved transition to `alerts.kafka.topic`, keyed by fingerprint."),
    STR("alerts.kafka.topic", 1, 249, "funnel.alerts", alert_kafka_topic,
        "Topic of the Kafka alert sink."),
    URL("alerts.alertmanager.url", 0, 2048, "", alert_am_url,
        "Alertmanager base URL, absolute `http://` or `https://` with a host "
        "(`http://host:9093`); alerts are POSTed to `/api/v2/alerts`. Empty disables."),
    INT("alerts.alertmanager.resend_interval_ms", 100, 86400000, "60000", alert_am_resend_ms,
        "Firing alerts (and alerts resolved within the last 15 minutes) are re-sent this often."),
    URL("alerts.webhook.url", 0, 2048, "", alert_webhook_url,
        "Generic webhook URL, absolute `http://` or `https://` with a host: one signed JSON POST "
        "per firing/resolved transition. Empty disables."),
    {"alerts.webhook.secret", K_STR, 0, 1024, "", OFF(alert_webhook_secret), 0, NULL, MASK_SECRET,
     "HMAC-SHA256 key of the webhook signature (Standard Webhooks: `webhook-id`, "
     "`webhook-timestamp`, `webhook-signature`); a `whsec_` prefix means base64. Keep it in "
     "the environment: `\"${WEBHOOK_SECRET}\"`. Never printed."},
    INT("alerts.http.timeout_ms", 100, 600000, "5000", alert_http_timeout_ms,
        "Timeout of one HTTP delivery attempt (connect + response)."),
    INT("alerts.http.backoff_min_ms", 10, 3600000, "500", alert_http_backoff_min_ms,
        "First retry delay of a failed HTTP delivery; doubles per attempt, with jitter."),
    INT("alerts.http.backoff_max_ms", 10, 3600000, "60000", alert_http_backoff_max_ms,
        "Largest retry delay of a failed HTTP delivery."),
    INT("coupons.cap", 1, 1000, "64", coupon_cap,
        "Distinct named coupons per counter hash (one scope, one bucket): the first this many "
        "coupon ids to reach the hash keep their fields `coupon.{id}.payments` and "
        "`coupon.{id}.revenue`, later ones are counted in `coupon.__other__.*` "
        "(docs/METRICS.md, \"Coupons\"). A rolling snapshot keeps at most this many too."),
    INT("leaderboards.size", 1, 10000, "100", lb_size,
        "Members kept per leaderboard `{prefix}:lb:{grouping}:{window}:{metric}`: the top this "
        "many scopes (docs/METRICS.md, \"Leaderboards\")."),
    INT("leaderboards.min_potential_users", 0, 100000000, "30", lb_min_potential,
        "A scope is listed on a `conversion_rate` leaderboard only if its window has at least "
        "this many potential users (`uv_exposed`), so a 1-of-2 community never tops it."),
    /* marketing metrics: conf/marketing.c, docs/METRICS.md */
    BOOL("marketing.enabled", "false", mkt_enabled,
         "Keep per-user state in Redis (`{prefix}:us:{product}:{user}`) and write the retention "
         "cohorts `{prefix}:ret:` and the attributed funnel `{prefix}:attr:` in the flush script "
         "(docs/METRICS.md). Costs one state read and write per distinct user per flush."),
    INT("marketing.user_cap", 4, 1000, "32", mkt_user_cap,
        "Per user and product, the state keeps at most this many exposures, interactions, paid "
        "orders and refunds each: the earliest (docs/METRICS.md, \"Bounds\")."),
    STR("retention.days", 1, 200, "1,7,30", ret_days_s,
        "Retention days k, comma-separated integers 1..400 (at most 16): `retained_d{k}` per "
        "cohort."),
    ENUM("retention.mode", K_ENUM, "day_n|unbounded", "day_n", ret_mode,
         "`day_n`: retained on day k = active on exactly cohort day + k (Amplitude's day-N); "
         "`unbounded`: active on cohort day + k or later."),
    STR("retention.start_types", 1, 100, "exposure,interaction,payment", ret_start_s,
        "Event types whose first occurrence sets a user's cohort day (comma-separated; "
        "`payment` means paid payments)."),
    STR("retention.active_types", 1, 100, "exposure,interaction,payment", ret_active_s,
        "Event types that make a user active on their day."),
    INT("retention.horizon_s", 86400, TTL_MAX_S, "34560000", ret_horizon_s,
        "Life of the per-user state and of the retention and funnel counters: TTL refreshed on "
        "every write (400 days by default)."),
    STR("retention.groupings", 0, 100, "channel", ret_dims_s,
        "Retention breakdowns besides `product`: comma-separated dimensions among `channel`, "
        "`community`, `campaign`, each taken from the user's first touch (`product,{dim}`)."),
    INT("funnel.window_s", 60, TTL_MAX_S, "604800", funnel_window_s,
        "Conversion window of the ordered funnel, from the user's first exposure (7 days by "
        "default)."),
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* Rules of fd_conf_finalize(), for the docs page: keep in step with the code. */
static const char *const finalize_rules[] = {
    ("`kafka.topics` has at least one topic; `kafka.dlq_topic` is a valid topic name and not "
     "one of them."),
    "`snapshot_interval_ms` >= `flush_interval_ms`.",
    "`ttl.m1_s` >= the largest window (a window is a sum of m1 buckets).",
    "`ttl.d1_s` >= `ttl.h1_s` >= `ttl.m1_s`.",
    ("`dedup_ttl_s` >= `ttl.m1_s` + `max_future_s` (a payment stays acceptable that long, so "
     "its dedup mark must outlive it)."),
    "`time_zone` exists as `/usr/share/zoneinfo/<time_zone>`.",
    ("`redis.url` parses (see its row above); `http.listen` is empty, `IPV4:PORT` or "
     "`localhost:PORT`, port 1..65535."),
    ("`kafka.properties` holds no `bootstrap.servers`, `metadata.broker.list` or `group.id`, "
     "and librdkafka accepts each of its properties (`rd_kafka_conf_set`)."),
    ("Each alert rule's `grouping` is one of `groupings`; its `window` (and `baseline_offset` "
     "+ `window`) fit in `ttl.m1_s`, `baseline` + `window` in `ttl.h1_s`; rule names are "
     "unique."),
    ("`alerts.alertmanager.url`, `alerts.webhook.url` and `alerts.generator_url`, when set, "
     "are absolute `http://` or `https://` URLs with a host (and a port 1..65535 if one is "
     "given), without spaces."),
    "`alerts.webhook.url` set needs `alerts.webhook.secret`.",
    "`alerts.http.backoff_min_ms` <= `alerts.http.backoff_max_ms`.",
    "`alerts.kafka.topic` is a valid topic name and not an input or dead-letter topic.",
    ("`retention.days`, `retention.start_types`, `retention.active_types` and "
     "`retention.groupings` parse; `funnel.window_s` <= `retention.horizon_s`; "
     "`retention.horizon_s` >= (largest `retention.days` + 1) days; with "
     "`marketing.enabled`, `flush_max_events` <= 5000."),
    ("`http.sse_max_clients` + 16 <= `http.max_connections`: streams never take the last 16 "
     "connections, kept for `/healthz`, `/readyz`, `/metrics` and the API."),
    ("`redis.timeout_ms` <= half of `max.poll.interval.ms` (`kafka.properties`, librdkafka's "
     "default 300000): a hold of the input lasts at most one flush round trip, ended by the "
     "watchdog, and must not make the member leave its group."),
    ("Each of `hll_m1_groupings` is one of `groupings`; an alert rule whose metric (or "
     "`while`) counts distinct users (`conversion_rate`, `uv_exposed`, `uv_interacted`, "
     "`uv_paid`) has its `grouping` in `hll_m1_groupings`; while a grouping is not in "
     "`hll_m1_groupings`, `ttl.h1_s` >= the largest window + 1 h."),
};

/* ---- small helpers ---------------------------------------------------- */

static const conf_key_t *find_key(const char *name) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

static void *field(fd_conf_t *c, const conf_key_t *k) { return (char *)c + k->off; }
static const void *cfield(const fd_conf_t *c, const conf_key_t *k) {
    return (const char *)c + k->off;
}
static int *count_field(fd_conf_t *c, const conf_key_t *k) { return (int *)((char *)c + k->noff); }
static int ccount(const fd_conf_t *c, const conf_key_t *k) {
    return *(const int *)((const char *)c + k->noff);
}

/* A JSON value as text for "got ..." (never used for values that may be secret). */
static void describe(const cJSON *v, char *buf, size_t cap) {
    char *s = cJSON_PrintUnformatted(v);
    if (s == NULL) {
        snprintf(buf, cap, "?");
        return;
    }
    if (strlen(s) > 48) snprintf(buf, cap, "%.45s...", s);
    else snprintf(buf, cap, "%s", s);
    cJSON_free(s);
}

/* Index of s in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *s) {
    size_t n = strlen(s);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, s, n) == 0) return i;
        if (bar == NULL) return -1;
        p = bar + 1;
    }
}

/* Writes choice i of "a|b|c" into buf; "" if out of range. */
static const char *choice_at(const char *choices, int i, char *buf, size_t cap) {
    const char *p = choices;
    for (int j = 0; j < i && p != NULL; j++) {
        p = strchr(p, '|');
        if (p != NULL) p++;
    }
    if (p == NULL || i < 0) {
        snprintf(buf, cap, "%s", "");
        return buf;
    }
    const char *bar = strchr(p, '|');
    int len = bar ? (int)(bar - p) : (int)strlen(p);
    snprintf(buf, cap, "%.*s", len, p);
    return buf;
}

/* "a|b|c" as "a, b, c". */
static const char *choice_list(const char *choices, char *buf, size_t cap) {
    size_t n = 0;
    for (const char *p = choices; *p != '\0' && n + 3 < cap; p++) {
        if (*p == '|') {
            buf[n++] = ',';
            buf[n++] = ' ';
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    return buf;
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf_t;

static int sbuf_add(sbuf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* Expands ${NAME} from the environment; "$${" is a literal "${". *out is
 * malloc'd. what names the value in messages ("redis.url"). */
static int expand_env(const char *in, const char *what, char **out, char *err, size_t errlen) {
    sbuf_t b = {0};
    *out = NULL;
    if (sbuf_add(&b, "", 0) != 0) goto oom;
    for (const char *p = in; *p != '\0';) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            if (sbuf_add(&b, "${", 2) != 0) goto oom;
            p += 3;
            continue;
        }
        if (p[0] == '$' && p[1] == '{') {
            const char *q = p + 2;
            if (isalpha((unsigned char)*q) || *q == '_')
                while (isalnum((unsigned char)*q) || *q == '_') q++;
            if (q == p + 2 || *q != '}' || q - (p + 2) > 255) {
                free(b.p);
                return fd_fail(err, errlen,
                               "%s: bad ${...} reference (want ${NAME}, NAME of letters, digits "
                               "and _; write $${ for a literal ${)",
                               what);
            }
            char name[256];
            memcpy(name, p + 2, (size_t)(q - (p + 2)));
            name[q - (p + 2)] = '\0';
            const char *v = getenv(name);
            if (v == NULL) {
                free(b.p);
                return fd_fail(err, errlen, "%s: environment variable %s is not set", what, name);
            }
            if (sbuf_add(&b, v, strlen(v)) != 0) goto oom;
            p = q + 1;
            continue;
        }
        if (sbuf_add(&b, p, 1) != 0) goto oom;
        p++;
    }
    *out = b.p;
    return 0;
oom:
    free(b.p);
    return fd_fail(err, errlen, "%s: out of memory", what);
}

/* The string of JSON value v, expanded if asked; *out is malloc'd. */
static int json_string(const cJSON *v, bool expand, const char *what, char **out, char *err,
                       size_t errlen) {
    if (expand) return expand_env(v->valuestring, what, out, err, errlen);
    *out = strdup(v->valuestring);
    if (*out == NULL) return fd_fail(err, errlen, "%s: out of memory", what);
    return 0;
}

/* Strict decimal integer: optional '-', digits, nothing else. */
int fd_conf_parse_int(const char *s, int64_t *v) {
    const char *p = s;
    if (*p == '-') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    for (const char *q = p; *q != '\0'; q++)
        if (!isdigit((unsigned char)*q)) return -1;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *v = (int64_t)x;
    return 0;
}

static bool valid_topic_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') return false;
    return true;
}

static const fd_event_type_t topic_types[] = {FD_TYPE_EXPOSURE, FD_TYPE_INTERACTION,
                                              FD_TYPE_PAYMENT, FD_TYPE_NONE};

static int topic_type_index(fd_event_type_t t) {
    for (int i = 0; i < 4; i++)
        if (topic_types[i] == t) return i;
    return 3;
}

/* ---- storing values --------------------------------------------------- */

/* Takes ownership of s (also on failure). Never echoes s: it may be a secret. */
static int store_str(fd_conf_t *c, const conf_key_t *k, char *s, char *err, size_t errlen) {
    size_t n = strlen(s);
    if ((int64_t)n < k->min || (int64_t)n > k->max) {
        free(s);
        if (n == 0) return fd_fail(err, errlen, "%s: must not be empty", k->name);
        return fd_fail(err, errlen, "%s: must be at most %" PRId64 " bytes, got %zu", k->name,
                       k->max, n);
    }
    char **slot = field(c, k);
    free(*slot);
    *slot = s;
    return 0;
}

static int store_int(fd_conf_t *c, const conf_key_t *k, int64_t v) {
    memcpy(field(c, k), &v, sizeof v);
    return 0;
}

/* Takes ownership of s. got is how the value reads in a message. */
static int store_enum(fd_conf_t *c, const conf_key_t *k, char *s, const char *got, char *err,
                      size_t errlen) {
    int i = choice_index(k->choices, s);
    if (i < 0) {
        char list[128];
        free(s);
        return fd_fail(err, errlen, "%s: must be one of %s, got %s", k->name,
                       choice_list(k->choices, list, sizeof list), got);
    }
    if (k->kind == K_ENUM) {
        free(s);
        memcpy(field(c, k), &i, sizeof i);
        return 0;
    }
    char **slot = field(c, k);
    free(*slot);
    *slot = s;
    return 0;
}

/* True if a member before m in obj has m's name (cJSON keeps both). */
static bool has_duplicate_member(const cJSON *obj, const cJSON *m) {
    for (const cJSON *p = obj->child; p != NULL && p != m; p = p->next)
        if (p->string != NULL && strcmp(p->string, m->string) == 0) return true;
    return false;
}

static void free_topics(fd_topic_t *t, int n) {
    for (int i = 0; i < n; i++) {
        free(t[i].name);
        t[i].name = NULL;
    }
}

static void free_kprops(fd_kprop_t *kp, int n) {
    for (int i = 0; i < n; i++) {
        free(kp[i].key);
        free(kp[i].value);
        kp[i].key = kp[i].value = NULL;
    }
}

static int apply_topics(fd_conf_t *c, const conf_key_t *k, const cJSON *v, bool expand, char *err,
                        size_t errlen) {
    fd_topic_t tmp[FD_MAX_TOPICS];
    int n = 0;
    char got[64], list[128], what[300];
    if (!cJSON_IsObject(v)) {
        describe(v, got, sizeof got);
        return fd_fail(err, errlen, "%s: must be an object {\"topic\": \"%s\"}, got %s", k->name,
                       k->choices, got);
    }
    const cJSON *m;
    cJSON_ArrayForEach (m, v) {
        if (n == k->max) {
            fd_fail(err, errlen, "%s: at most %" PRId64 " topics", k->name, k->max);
            goto fail;
        }
        if (!valid_topic_name(m->string)) {
            fd_fail(err, errlen,
                    "%s: \"%.60s\" is not a valid topic name (1..249 of a-z A-Z 0-9 . _ -)",
                    k->name, m->string);
            goto fail;
        }
        for (int i = 0; i < n; i++)
            if (strcmp(tmp[i].name, m->string) == 0) {
                fd_fail(err, errlen, "%s: duplicate topic \"%s\"", k->name, m->string);
                goto fail;
            }
        snprintf(what, sizeof what, "%s[\"%s\"]", k->name, m->string);
        if (!cJSON_IsString(m)) {
            describe(m, got, sizeof got);
            fd_fail(err, errlen, "%s: must be one of %s, got %s", what,
                    choice_list(k->choices, list, sizeof list), got);
            goto fail;
        }
        char *s;
        if (json_string(m, expand, what, &s, err, errlen) != 0) goto fail;
        int i = choice_index(k->choices, s);
        free(s);
        if (i < 0) {
            describe(m, got, sizeof got);
            fd_fail(err, errlen, "%s: must be one of %s, got %s", what,
                    choice_list(k->choices, list, sizeof list), got);
            goto fail;
        }
        tmp[n].name = strdup(m->string);
        if (tmp[n].name == NULL) {
            fd_fail(err, errlen, "%s: out of memory", k->name);
            goto fail;
        }
        tmp[n].type = topic_types[i];
        n++;
    }
    if (n < k->min) {
        fd_fail(err, errlen, "%s: at least one topic is required", k->name);
        goto fail;
    }
    int *cnt = count_field(c, k);
    fd_topic_t *dst = field(c, k);
    free_topics(dst, *cnt);
    memcpy(dst, tmp, (size_t)n * sizeof tmp[0]);
    *cnt = n;
    return 0;
fail:
    free_topics(tmp, n);
    return -1;
}

static int kprop_check_key(const char *key, char *err, size_t errlen) {
    size_t n = strlen(key);
    if (n == 0 || n > 255)
        return fd_fail(err, errlen, "kafka.properties: a property name must have 1..255 bytes");
    for (const char *p = key; *p != '\0'; p++)
        if (!isgraph((unsigned char)*p) || *p == '=')
            return fd_fail(err, errlen,
                           "kafka.properties: bad property name \"%.60s\" (no spaces or '=')", key);
    return 0;
}

static int apply_kprops(fd_conf_t *c, const conf_key_t *k, const cJSON *v, bool expand, char *err,
                        size_t errlen) {
    fd_kprop_t tmp[FD_MAX_KPROPS];
    int n = 0;
    char got[64], what[300];
    if (!cJSON_IsObject(v)) {
        describe(v, got, sizeof got);
        return fd_fail(err, errlen, "%s: must be an object {\"property\": \"value\"}, got %s",
                       k->name, got);
    }
    const cJSON *m;
    cJSON_ArrayForEach (m, v) {
        if (n == k->max) {
            fd_fail(err, errlen, "%s: at most %" PRId64 " properties", k->name, k->max);
            goto fail;
        }
        if (kprop_check_key(m->string, err, errlen) != 0) goto fail;
        for (int i = 0; i < n; i++)
            if (strcmp(tmp[i].key, m->string) == 0) {
                fd_fail(err, errlen, "%s: duplicate property \"%s\"", k->name, m->string);
                goto fail;
            }
        snprintf(what, sizeof what, "%s[\"%s\"]", k->name, m->string);
        char *val = NULL;
        if (cJSON_IsString(m)) {
            if (json_string(m, expand, what, &val, err, errlen) != 0) goto fail;
        } else if (cJSON_IsBool(m)) {
            val = strdup(cJSON_IsTrue(m) ? "true" : "false");
        } else if (cJSON_IsNumber(m) && m->valuedouble >= -9007199254740992.0 &&
                   m->valuedouble <= 9007199254740992.0 &&
                   (double)(int64_t)m->valuedouble == m->valuedouble) {
            char num[32];
            snprintf(num, sizeof num, "%" PRId64, (int64_t)m->valuedouble);
            val = strdup(num);
        } else {
            /* never echo: the value may be a secret */
            fd_fail(err, errlen, "%s: must be a string (or an integer or a boolean)", what);
            goto fail;
        }
        tmp[n].key = strdup(m->string);
        tmp[n].value = val;
        if (tmp[n].key == NULL || val == NULL) {
            free(tmp[n].key);
            free(val);
            fd_fail(err, errlen, "%s: out of memory", k->name);
            goto fail;
        }
        n++;
    }
    int *cnt = count_field(c, k);
    fd_kprop_t *dst = field(c, k);
    free_kprops(dst, *cnt);
    memcpy(dst, tmp, (size_t)n * sizeof tmp[0]);
    *cnt = n;
    return 0;
fail:
    free_kprops(tmp, n);
    return -1;
}

static const char *dim_list(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int d = 0; d < FD_DIM__COUNT; d++)
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", d ? ", " : "",
                              fd_dim_name((fd_dim_t)d));
    return buf;
}

static int apply_groupings(fd_conf_t *c, const conf_key_t *k, const cJSON *v, bool expand,
                           char *err, size_t errlen) {
    fd_grouping_t tmp[FD_MAX_GROUPINGS];
    char got[64], what[64], list[128];
    if (!cJSON_IsArray(v)) {
        describe(v, got, sizeof got);
        return fd_fail(err, errlen, "%s: must be an array of arrays of dimension names, got %s",
                       k->name, got);
    }
    int n = cJSON_GetArraySize(v);
    if (n < k->min) return fd_fail(err, errlen, "%s: at least one grouping is required", k->name);
    if (n > k->max)
        return fd_fail(err, errlen, "%s: at most %" PRId64 " groupings, got %d", k->name, k->max, n);
    int gi = 0;
    const cJSON *g;
    cJSON_ArrayForEach (g, v) {
        snprintf(what, sizeof what, "%s[%d]", k->name, gi);
        if (!cJSON_IsArray(g)) {
            describe(g, got, sizeof got);
            return fd_fail(err, errlen, "%s: must be an array of dimension names, got %s", what, got);
        }
        fd_grouping_t *cur = &tmp[gi];
        cur->ndims = 0;
        const cJSON *d;
        cJSON_ArrayForEach (d, g) {
            if (!cJSON_IsString(d)) {
                describe(d, got, sizeof got);
                return fd_fail(err, errlen, "%s: a dimension must be one of %s, got %s", what,
                               dim_list(list, sizeof list), got);
            }
            char *s;
            if (json_string(d, expand, what, &s, err, errlen) != 0) return -1;
            int dim = fd_dim_from_name(s);
            if (dim < 0 || dim >= FD_DIM__COUNT) {
                describe(d, got, sizeof got);
                free(s);
                return fd_fail(err, errlen, "%s: unknown dimension %s (one of %s)", what, got,
                               dim_list(list, sizeof list));
            }
            free(s);
            for (int j = 0; j < cur->ndims; j++)
                if ((int)cur->dims[j] == dim)
                    return fd_fail(err, errlen, "%s: dimension \"%s\" appears twice", what,
                                   fd_dim_name((fd_dim_t)dim));
            cur->dims[cur->ndims++] = (fd_dim_t)dim;
        }
        for (int j = 0; j < gi; j++)
            if (fd_grouping_mask(&tmp[j]) == fd_grouping_mask(cur))
                return fd_fail(err, errlen, "%s: same dimensions as %s[%d]", what, k->name, j);
        gi++;
    }
    memcpy(field(c, k), tmp, (size_t)gi * sizeof tmp[0]);
    *count_field(c, k) = gi;
    return 0;
}

static int apply_windows(fd_conf_t *c, const conf_key_t *k, const cJSON *v, bool expand, char *err,
                         size_t errlen) {
    int64_t tmp[FD_MAX_WINDOWS];
    char got[64], what[64];
    if (!cJSON_IsArray(v)) {
        describe(v, got, sizeof got);
        return fd_fail(err, errlen, "%s: must be an array of durations such as \"5m\", got %s",
                       k->name, got);
    }
    int n = cJSON_GetArraySize(v);
    if (n < k->min || n > k->max)
        return fd_fail(err, errlen, "%s: must have %" PRId64 "..%" PRId64 " windows, got %d",
                       k->name, k->min, k->max, n);
    int i = 0;
    const cJSON *w;
    cJSON_ArrayForEach (w, v) {
        snprintf(what, sizeof what, "%s[%d]", k->name, i);
        describe(w, got, sizeof got);
        if (!cJSON_IsString(w))
            return fd_fail(err, errlen, "%s: must be a duration string such as \"5m\", got %s",
                           what, got);
        char *s;
        if (json_string(w, expand, what, &s, err, errlen) != 0) return -1;
        int64_t secs = 0;
        int rc = fd_duration_parse(s, &secs);
        free(s);
        if (rc != 0)
            return fd_fail(err, errlen,
                           "%s: %s is not a duration (an integer with unit s, m, h or d, e.g. "
                           "\"5m\")",
                           what, got);
        if (secs <= 0) return fd_fail(err, errlen, "%s: %s must be positive", what, got);
        if (secs > WINDOW_MAX_S)
            return fd_fail(err, errlen, "%s: %s is longer than %" PRId64 " days", what, got,
                           WINDOW_MAX_S / 86400);
        if (secs % 60 != 0)
            return fd_fail(err, errlen,
                           "%s: %s is not a whole number of minutes (windows are sums of m1 "
                           "buckets)",
                           what, got);
        for (int j = 0; j < i; j++)
            if (tmp[j] == secs)
                return fd_fail(err, errlen, "%s: %s is the same window as %s[%d]", what, got,
                               k->name, j);
        tmp[i++] = secs;
    }
    memcpy(field(c, k), tmp, (size_t)i * sizeof tmp[0]);
    *count_field(c, k) = i;
    return 0;
}

static void free_rules(fd_alert_rule_t *r, int n) {
    for (int i = 0; i < n; i++) fd_alert_rule_release(&r[i]);
}

/* Rule strings are taken literally (no ${ENV}: rules hold no secrets). */
static int apply_rules(fd_conf_t *c, const conf_key_t *k, const cJSON *v, char *err, size_t errlen) {
    static fd_alert_rule_t tmp[FD_ALERT_MAX_RULES]; /* config is loaded on one thread */
    char got[64], what[64];
    if (!cJSON_IsArray(v)) {
        describe(v, got, sizeof got);
        return fd_fail(err, errlen, "%s: must be an array of rule objects, got %s", k->name, got);
    }
    int n = cJSON_GetArraySize(v);
    if (n > k->max)
        return fd_fail(err, errlen, "%s: at most %" PRId64 " rules, got %d", k->name, k->max, n);
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach (m, v) {
        snprintf(what, sizeof what, "%s[%d]", k->name, i);
        if (fd_alert_rule_parse(m, what, &tmp[i], err, errlen) != 0) goto fail;
        for (int j = 0; j < i; j++)
            if (strcmp(tmp[j].name, tmp[i].name) == 0) {
                fd_fail(err, errlen, "%s.name: \"%s\" is also the name of %s[%d]", what,
                        tmp[i].name, k->name, j);
                i++;
                goto fail;
            }
        i++;
    }
    free_rules(field(c, k), *count_field(c, k));
    memcpy(field(c, k), tmp, (size_t)i * sizeof tmp[0]);
    *count_field(c, k) = i;
    return 0;
fail:
    free_rules(tmp, i);
    return -1;
}

/* Applies JSON value v to key k; expand: ${ENV} substitution (file values). */
static int apply_json(fd_conf_t *c, const conf_key_t *k, const cJSON *v, bool expand, char *err,
                      size_t errlen) {
    char got[64];
    describe(v, got, sizeof got);
    switch (k->kind) {
    case K_STR: {
        if (!cJSON_IsString(v))
            return fd_fail(err, errlen, "%s: must be a string, got %s", k->name, got);
        char *s;
        if (json_string(v, expand, k->name, &s, err, errlen) != 0) return -1;
        return store_str(c, k, s, err, errlen);
    }
    case K_INT: {
        double d = v->valuedouble;
        if (!cJSON_IsNumber(v) || !(d >= (double)k->min && d <= (double)k->max) ||
            (double)(int64_t)d != d)
            return fd_fail(err, errlen, "%s: must be an integer in %" PRId64 "..%" PRId64 ", got %s",
                           k->name, k->min, k->max, got);
        return store_int(c, k, (int64_t)d);
    }
    case K_ENUM:
    case K_ENUM_STR: {
        char list[128];
        if (!cJSON_IsString(v))
            return fd_fail(err, errlen, "%s: must be one of %s, got %s", k->name,
                           choice_list(k->choices, list, sizeof list), got);
        char *s;
        if (json_string(v, expand, k->name, &s, err, errlen) != 0) return -1;
        return store_enum(c, k, s, got, err, errlen);
    }
    case K_TOPICS: return apply_topics(c, k, v, expand, err, errlen);
    case K_KPROPS: return apply_kprops(c, k, v, expand, err, errlen);
    case K_GROUPINGS: return apply_groupings(c, k, v, expand, err, errlen);
    case K_WINDOWS: return apply_windows(c, k, v, expand, err, errlen);
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return fd_fail(err, errlen, "%s: must be true or false, got %s", k->name, got);
        *(int *)field(c, k) = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case K_RULES: return apply_rules(c, k, v, err, errlen);
    }
    return fd_fail(err, errlen, "%s: unsupported kind", k->name);
}

/* ---- public: defaults, set, load -------------------------------------- */

void fd_conf_defaults(fd_conf_t *c) {
    memset(c, 0, sizeof *c);
    /* Cannot fail short of memory: test_conf checks every default through
     * this very path and fd_conf_finalize(). */
    for (size_t i = 0; i < NKEYS; i++) (void)fd_conf_set(c, keys[i].name, keys[i].def, NULL, 0);
    memset(c->given, 0, sizeof c->given); /* the defaults were not given */
}

_Static_assert(NKEYS <= FD_CONF_MAX_KEYS, "raise FD_CONF_MAX_KEYS");

int fd_conf_given(const fd_conf_t *c, const char *key) {
    const conf_key_t *k = key ? find_key(key) : NULL;
    return k != NULL && c->given[k - keys];
}

static int mark_given(fd_conf_t *c, const conf_key_t *k, int rc) {
    if (rc == 0) c->given[k - keys] = 1;
    return rc;
}

static int conf_set(fd_conf_t *c, const conf_key_t *k, const char *value, char *err, size_t errlen);

int fd_conf_set(fd_conf_t *c, const char *key, const char *value, char *err, size_t errlen) {
    const conf_key_t *k = key ? find_key(key) : NULL;
    if (k == NULL) return fd_fail(err, errlen, "unknown key \"%s\"", key ? key : "(null)");
    return mark_given(c, k, conf_set(c, k, value, err, errlen));
}

static int conf_set(fd_conf_t *c, const conf_key_t *k, const char *value, char *err, size_t errlen) {
    if (value == NULL) return fd_fail(err, errlen, "%s: missing value", k->name);
    switch (k->kind) {
    case K_STR: {
        char *s = strdup(value);
        if (s == NULL) return fd_fail(err, errlen, "%s: out of memory", k->name);
        return store_str(c, k, s, err, errlen);
    }
    case K_INT: {
        int64_t v;
        if (fd_conf_parse_int(value, &v) != 0 || v < k->min || v > k->max)
            return fd_fail(err, errlen,
                           "%s: must be an integer in %" PRId64 "..%" PRId64 ", got \"%.40s\"",
                           k->name, k->min, k->max, value);
        return store_int(c, k, v);
    }
    case K_ENUM:
    case K_ENUM_STR: {
        char got[64];
        snprintf(got, sizeof got, "\"%.40s\"", value);
        char *s = strdup(value);
        if (s == NULL) return fd_fail(err, errlen, "%s: out of memory", k->name);
        return store_enum(c, k, s, got, err, errlen);
    }
    case K_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return fd_fail(err, errlen, "%s: must be true or false, got \"%.40s\"", k->name, value);
        *(int *)field(c, k) = value[0] == 't';
        return 0;
    default: {
        /* Compound values from a flag or a default are JSON text. */
        cJSON *v = cJSON_ParseWithOpts(value, NULL, 1);
        if (v == NULL) return fd_fail(err, errlen, "%s: must be JSON like %s", k->name, k->def);
        int rc = apply_json(c, k, v, false, err, errlen);
        cJSON_Delete(v);
        return rc;
    }
    }
}

int fd_conf_add_kprop(fd_conf_t *c, const char *kv, char *err, size_t errlen) {
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (eq == NULL) return fd_fail(err, errlen, "kafka.properties: -X wants name=value");
    char key[256];
    size_t kn = (size_t)(eq - kv);
    if (kn == 0 || kn >= sizeof key)
        return fd_fail(err, errlen, "kafka.properties: a property name must have 1..255 bytes");
    memcpy(key, kv, kn);
    key[kn] = '\0';
    if (kprop_check_key(key, err, errlen) != 0) return -1;
    int i = 0;
    while (i < c->nkprops && strcmp(c->kprops[i].key, key) != 0) i++;
    if (i == FD_MAX_KPROPS)
        return fd_fail(err, errlen, "kafka.properties: at most %d properties", FD_MAX_KPROPS);
    char *val = strdup(eq + 1);
    if (val == NULL) return fd_fail(err, errlen, "kafka.properties: out of memory");
    if (i < c->nkprops) { /* a later setting replaces an earlier one */
        free(c->kprops[i].value);
        c->kprops[i].value = val;
        return 0;
    }
    c->kprops[i].key = strdup(key);
    if (c->kprops[i].key == NULL) {
        free(val);
        return fd_fail(err, errlen, "kafka.properties: out of memory");
    }
    c->kprops[i].value = val;
    c->nkprops++;
    return 0;
}

static bool is_section(const char *path) {
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].name, path, n) == 0 && keys[i].name[n] == '.') return true;
    return false;
}

static int walk(fd_conf_t *c, const cJSON *obj, const char *prefix, char *err, size_t errlen) {
    const cJSON *m;
    cJSON_ArrayForEach (m, obj) {
        char path[256];
        if (prefix != NULL) snprintf(path, sizeof path, "%s.%s", prefix, m->string);
        else snprintf(path, sizeof path, "%s", m->string);
        if (has_duplicate_member(obj, m))
            return fd_fail(err, errlen, "duplicate key \"%.200s\"", path);
        if (strchr(m->string, '.') != NULL || strlen(m->string) > 128)
            return fd_fail(err, errlen,
                           "unknown key \"%.200s\" (write nested objects: {\"redis\": {\"url\": "
                           "...}}, not \"redis.url\")",
                           path);
        const conf_key_t *k = find_key(path);
        if (k != NULL) {
            if (mark_given(c, k, apply_json(c, k, m, true, err, errlen)) != 0) return -1;
        } else if (is_section(path)) {
            if (!cJSON_IsObject(m)) {
                char got[64];
                describe(m, got, sizeof got);
                return fd_fail(err, errlen, "%s: must be an object, got %s", path, got);
            }
            if (walk(c, m, path, err, errlen) != 0) return -1;
        } else {
            return fd_fail(err, errlen, "unknown key \"%.200s\"", path);
        }
    }
    return 0;
}

int fd_conf_load_file(fd_conf_t *c, const char *path, char *err, size_t errlen) {
    char msg[512];
    char *buf = NULL;
    cJSON *root = NULL;
    size_t n = 0;
    int rc = -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return fd_fail(err, errlen, "%s: %s", path, strerror(errno));
    buf = malloc(CONF_FILE_MAX + 1);
    if (buf == NULL) {
        fd_fail(err, errlen, "%s: out of memory", path);
        goto done;
    }
    n = fread(buf, 1, CONF_FILE_MAX + 1, f);
    if (ferror(f)) {
        fd_fail(err, errlen, "%s: read error", path);
        goto done;
    }
    if (n > CONF_FILE_MAX) {
        fd_fail(err, errlen, "%s: larger than %d bytes", path, CONF_FILE_MAX);
        goto done;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        fd_fail(err, errlen, "%s: invalid JSON (contains a NUL byte)", path);
        goto done;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(buf, n + 1, &end, 1);
    if (root == NULL) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        if (at != NULL && at >= buf && at <= buf + n) {
            int line = 1, col = 1;
            for (const char *p = buf; p < at; p++) {
                if (*p == '\n') {
                    line++;
                    col = 1;
                } else {
                    col++;
                }
            }
            fd_fail(err, errlen, "%s: invalid JSON at line %d, column %d", path, line, col);
        } else {
            fd_fail(err, errlen, "%s: invalid JSON", path);
        }
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        fd_fail(err, errlen, "%s: the top level must be a JSON object", path);
        goto done;
    }
    if (walk(c, root, NULL, msg, sizeof msg) != 0) {
        fd_fail(err, errlen, "%s: %s", path, msg);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    free(buf);
    fclose(f);
    return rc;
}

/* ---- finalize ----------------------------------------------------------- */

int fd_conf_listen_parse(const char *listen, char *ipv4, size_t cap, int *port, char *err,
                         size_t errlen) {
    const char *s = listen ? listen : "";
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return fd_fail(err, errlen, "http.listen: must be host:port or \"\", got \"%.100s\"", s);
    int64_t p;
    if (fd_conf_parse_int(colon + 1, &p) != 0 || colon[1] == '-' || p < 1 || p > 65535)
        return fd_fail(err, errlen, "http.listen: the port must be 1..65535, got \"%.100s\"", s);
    char host[64];
    size_t hn = (size_t)(colon - s);
    struct in_addr a;
    if (hn < sizeof host) {
        memcpy(host, s, hn);
        host[hn] = '\0';
        if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    }
    /* inet_pton: four dotted decimals only ("1.2.3", "0x7f.0.0.1" and
     * "[::1]" are refused), as the server's bind needs */
    if (hn >= sizeof host || inet_pton(AF_INET, host, &a) != 1)
        return fd_fail(err, errlen,
                       "http.listen: the host must be an IPv4 address or localhost (the HTTP "
                       "server binds IPv4 only), got \"%.100s\"",
                       s);
    if (ipv4 != NULL && cap > 0) snprintf(ipv4, cap, "%s", host);
    if (port != NULL) *port = (int)p;
    return 0;
}

/* alerts.alertmanager.url, alerts.webhook.url, alerts.generator_url when
 * set: an absolute http:// or https:// URL with a host (libcurl is given
 * only these two protocols: alerts/outputs.c). The messages describe the
 * fault and never quote the URL (it may hold credentials). */
static int check_http_url(const char *key, const char *url, char *err, size_t errlen) {
    if (url == NULL || url[0] == '\0') return 0;
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) rest = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0) rest = url + 8;
    else
        return fd_fail(err, errlen,
                       "%s: must be an absolute URL starting with http:// or https://", key);
    for (const char *p = url; *p != '\0'; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return fd_fail(err, errlen, "%s: a URL may not contain spaces or control characters",
                           key);
    size_t alen = strcspn(rest, "/?#");
    const char *hp = rest, *end = rest + alen;
    for (const char *q = rest; q < end; q++)
        if (*q == '@') hp = q + 1; /* the last '@' ends the userinfo (as url_secret_spans) */
    const char *colon;
    if (hp < end && *hp == '[') { /* [IPv6] */
        const char *close = memchr(hp, ']', (size_t)(end - hp));
        if (close == NULL || close == hp + 1)
            return fd_fail(err, errlen, "%s: bad [IPv6] host", key);
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return fd_fail(err, errlen, "%s: bad [IPv6] host", key);
    } else {
        colon = memchr(hp, ':', (size_t)(end - hp));
        if (colon == hp || hp == end) return fd_fail(err, errlen, "%s: the URL has no host", key);
    }
    if (colon != NULL) {
        int64_t port = 0;
        size_t pn = (size_t)(end - colon - 1);
        bool ok = pn > 0 && pn <= 5;
        for (size_t i = 0; ok && i < pn; i++) {
            ok = isdigit((unsigned char)colon[1 + i]) != 0;
            port = port * 10 + (colon[1 + i] - '0');
        }
        if (!ok || port < 1 || port > 65535)
            return fd_fail(err, errlen, "%s: the port must be 1..65535", key);
    }
    return 0;
}

/* The alerts section's cross-field rules (see finalize_rules[]). */
static int finalize_alerts(const fd_conf_t *c, char *err, size_t errlen) {
    if (check_http_url("alerts.alertmanager.url", c->alert_am_url, err, errlen) != 0 ||
        check_http_url("alerts.webhook.url", c->alert_webhook_url, err, errlen) != 0 ||
        check_http_url("alerts.generator_url", c->alert_generator_url, err, errlen) != 0)
        return -1;
    for (int i = 0; i < c->nalert_rules; i++) {
        const fd_alert_rule_t *r = &c->alert_rules[i];
        fd_grouping_t rg = r->grouping;
        int found = 0;
        for (int g = 0; g < c->ngroupings && !found; g++)
            found = fd_grouping_mask(&c->groupings[g]) == fd_grouping_mask(&rg);
        if (!found)
            return fd_fail(err, errlen,
                           "alerts.rules[%d].grouping: not one of `groupings` (a rule reads the "
                           "scopes of a configured grouping)",
                           i);
        int64_t m1 = r->window_s + (r->kind == FD_ALERT_DROP ? r->baseline_offset_s : 0);
        if (m1 > c->ttl_m1_s)
            return fd_fail(err, errlen,
                           "alerts.rules[%d]: window (+ baseline_offset) %" PRId64
                           " s must be <= ttl.m1_s (%" PRId64 ")",
                           i, m1, c->ttl_m1_s);
        if (r->kind == FD_ALERT_DROP && r->baseline_offset_s == 0 &&
            r->baseline_s + r->window_s + 3600 > c->ttl_h1_s)
            return fd_fail(err, errlen,
                           "alerts.rules[%d]: baseline + window + 1h must be <= ttl.h1_s (%" PRId64
                           ")",
                           i, c->ttl_h1_s);
    }
    if (c->alert_webhook_url && c->alert_webhook_url[0] &&
        !(c->alert_webhook_secret && c->alert_webhook_secret[0]))
        return fd_fail(err, errlen, "alerts.webhook.secret: required when alerts.webhook.url is set");
    if (c->alert_http_backoff_min_ms > c->alert_http_backoff_max_ms)
        return fd_fail(err, errlen,
                       "alerts.http.backoff_min_ms (%" PRId64
                       ") must be <= alerts.http.backoff_max_ms (%" PRId64 ")",
                       c->alert_http_backoff_min_ms, c->alert_http_backoff_max_ms);
    const char *t = c->alert_kafka_topic ? c->alert_kafka_topic : "";
    if (!valid_topic_name(t))
        return fd_fail(err, errlen, "alerts.kafka.topic: \"%.60s\" is not a valid topic name", t);
    for (int i = 0; i < c->ntopics; i++)
        if (strcmp(c->topics[i].name, t) == 0 || (c->dlq_topic && strcmp(c->dlq_topic, t) == 0))
            return fd_fail(err, errlen,
                           "alerts.kafka.topic: \"%s\" is also an input or dead-letter topic", t);
    if (c->dlq_topic && strcmp(c->dlq_topic, t) == 0)
        return fd_fail(err, errlen, "alerts.kafka.topic: \"%s\" is also the dead-letter topic", t);
    return 0;
}

static char *mask_url(const char *url);

/* in with every occurrence of what replaced by with, into out (truncated to cap). */
static void replace_all(const char *in, const char *what, const char *with, char *out, size_t cap) {
    size_t n = 0, wn = strlen(what), rn = strlen(with);
    if (cap == 0) return;
    for (const char *p = in; *p != '\0' && n + 1 < cap;) {
        if (wn > 0 && strncmp(p, what, wn) == 0) {
            size_t k = rn < cap - 1 - n ? rn : cap - 1 - n;
            memcpy(out + n, with, k);
            n += k;
            p += wn;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

/* Every librdkafka property as librdkafka itself judges it: each is set on
 * a scratch conf (fd_kafka_props_check), so check-config refuses what
 * building the clients at startup would, with librdkafka's reason. That
 * reason may quote the value: a secret property's value is replaced by
 * "***" (and the reason dropped if any piece of the value is left, say in a
 * truncated quote), a value holding a URL by its masked form. */
static int finalize_kprops(const fd_conf_t *c, char *err, size_t errlen) {
    char msg[512], shown[1024];
    int i = fd_kafka_props_check(c->kprops, c->nkprops, msg, sizeof msg);
    if (i < 0) return 0;
    const char *key = c->kprops[i].key, *v = c->kprops[i].value ? c->kprops[i].value : "";
    int secret = fd_conf_is_secret(key);
    snprintf(shown, sizeof shown, "%s", msg);
    if (v[0] != '\0' && (secret || strstr(v, "://") != NULL)) {
        char *m = secret ? NULL : mask_url(v);
        replace_all(msg, v, m ? m : "***", shown, sizeof shown);
        free(m);
        char head[9];
        snprintf(head, sizeof head, "%s", v);
        if (secret && strstr(shown, head) != NULL)
            snprintf(shown, sizeof shown, "librdkafka refuses the value (not shown: a secret)");
    }
    return fd_fail(err, errlen, "kafka.properties.%s: %s", key, shown);
}

/* Connections a full house of event streams still leaves to the operations
 * endpoints and the API: a stream holds its connection for hours, so
 * without them /healthz would be refused once the streams fill the server. */
#define HTTP_HEADROOM 16

static int finalize_http_headroom(const fd_conf_t *c, char *err, size_t errlen) {
    if (c->http_sse_max_clients + HTTP_HEADROOM <= c->http_max_connections) return 0;
    return fd_fail(err, errlen,
                   "http.sse_max_clients (%" PRId64 ") must be <= http.max_connections (%" PRId64
                   ") - %d: streams must leave %d connections to /healthz, /readyz, /metrics "
                   "and the API",
                   c->http_sse_max_clients, c->http_max_connections, HTTP_HEADROOM, HTTP_HEADROOM);
}

/* A hold of the input (flow control) stops polling the consumer for up to
 * one flush round trip, which the watchdog ends after redis.timeout_ms; a
 * member that does not poll for max.poll.interval.ms leaves its group. Half
 * of it leaves room for the drain that follows (decision). */
#define KAFKA_MAX_POLL_DEFAULT_MS 300000 /* librdkafka's default */

static int finalize_poll_headroom(const fd_conf_t *c, char *err, size_t errlen) {
    int64_t max_poll = KAFKA_MAX_POLL_DEFAULT_MS;
    for (int i = 0; i < c->nkprops; i++) {
        if (strcmp(c->kprops[i].key, "max.poll.interval.ms") != 0) continue;
        char *end;
        errno = 0;
        long long v = strtoll(c->kprops[i].value, &end, 10);
        if (errno || end == c->kprops[i].value || *end || v <= 0)
            return fd_fail(err, errlen,
                           "kafka.properties: max.poll.interval.ms must be a positive integer, "
                           "got \"%.40s\"",
                           c->kprops[i].value);
        max_poll = v;
    }
    if (c->redis_timeout_ms * 2 <= max_poll) return 0;
    return fd_fail(err, errlen,
                   "redis.timeout_ms (%" PRId64 ") must be at most half of max.poll.interval.ms "
                   "(%" PRId64 ", kafka.properties): while a flush is outstanding the input is "
                   "held without polling, and a member that does not poll that long leaves the "
                   "group",
                   c->redis_timeout_ms, max_poll);
}

int fd_conf_finalize(fd_conf_t *c, char *err, size_t errlen) {
    if (c->ntopics < 1) return fd_fail(err, errlen, "kafka.topics: at least one topic is required");
    /* the dead-letter producer writes there: a bad name fails only on the
     * first dead letter ("Broker: Invalid topic"), and its partition
     * resyncs forever */
    const char *dlq = c->dlq_topic ? c->dlq_topic : "";
    if (!valid_topic_name(dlq))
        return fd_fail(err, errlen,
                       "kafka.dlq_topic: \"%.60s\" is not a valid topic name (1..249 of a-z A-Z "
                       "0-9 . _ -)",
                       dlq);
    for (int i = 0; i < c->ntopics; i++)
        if (c->dlq_topic != NULL && strcmp(c->topics[i].name, c->dlq_topic) == 0)
            return fd_fail(err, errlen,
                           "kafka.dlq_topic: \"%s\" is also an input topic in kafka.topics",
                           c->dlq_topic);
    if (c->snapshot_interval_ms < c->flush_interval_ms)
        return fd_fail(err, errlen,
                       "snapshot_interval_ms (%" PRId64 ") must be >= flush_interval_ms (%" PRId64
                       ")",
                       c->snapshot_interval_ms, c->flush_interval_ms);
    int64_t wmax = fd_conf_longest_window_s(c);
    if (c->ttl_m1_s < wmax) {
        char wn[32];
        fd_duration_format(wmax, wn, sizeof wn);
        return fd_fail(err, errlen,
                       "ttl.m1_s (%" PRId64 ") must be >= the largest window (%s = %" PRId64
                       " s): a window is a sum of m1 buckets",
                       c->ttl_m1_s, wn, wmax);
    }
    if (c->ttl_h1_s < c->ttl_m1_s)
        return fd_fail(err, errlen, "ttl.h1_s (%" PRId64 ") must be >= ttl.m1_s (%" PRId64 ")",
                       c->ttl_h1_s, c->ttl_m1_s);
    if (c->ttl_d1_s < c->ttl_h1_s)
        return fd_fail(err, errlen, "ttl.d1_s (%" PRId64 ") must be >= ttl.h1_s (%" PRId64 ")",
                       c->ttl_d1_s, c->ttl_h1_s);
    if (c->dedup_ttl_s < c->ttl_m1_s + c->max_future_s)
        return fd_fail(err, errlen,
                       "dedup_ttl_s (%" PRId64 ") must be >= ttl.m1_s + max_future_s (%" PRId64
                       "): a payment is accepted that long, its dedup mark must outlive it",
                       c->dedup_ttl_s, c->ttl_m1_s + c->max_future_s);
    /* time zone: a relative name under /usr/share/zoneinfo, no way out of it */
    const char *tz = c->time_zone ? c->time_zone : "";
    bool tz_ok = tz[0] != '\0' && tz[0] != '/' && strstr(tz, "..") == NULL;
    for (const char *p = tz; *p != '\0' && tz_ok; p++)
        if (!isalnum((unsigned char)*p) && strchr("/_+-", *p) == NULL) tz_ok = false;
    if (tz_ok) {
        char tzpath[512];
        struct stat st;
        snprintf(tzpath, sizeof tzpath, "/usr/share/zoneinfo/%s", tz);
        tz_ok = stat(tzpath, &st) == 0 && S_ISREG(st.st_mode);
    }
    if (!tz_ok)
        return fd_fail(err, errlen,
                       "time_zone: unknown time zone \"%.100s\" (not found under "
                       "/usr/share/zoneinfo)",
                       tz);
    fd_redis_addr_t addr;
    if (fd_redis_url_parse(c->redis_url, &addr, err, errlen) != 0) return -1;
    if (c->http_listen != NULL && c->http_listen[0] != '\0' &&
        fd_conf_listen_parse(c->http_listen, NULL, 0, NULL, err, errlen) != 0)
        return -1;
    for (int i = 0; i < c->nkprops; i++) {
        const char *kk = c->kprops[i].key;
        if (strcmp(kk, "bootstrap.servers") == 0 || strcmp(kk, "metadata.broker.list") == 0)
            return fd_fail(err, errlen, "kafka.properties: set %s with kafka.brokers", kk);
        if (strcmp(kk, "group.id") == 0)
            return fd_fail(err, errlen, "kafka.properties: set group.id with kafka.group");
    }
    if (finalize_kprops(c, err, errlen) != 0) return -1;
    if (finalize_http_headroom(c, err, errlen) != 0) return -1;
    if (finalize_poll_headroom(c, err, errlen) != 0) return -1;
    if (finalize_alerts(c, err, errlen) != 0) return -1;
    if (fd_conf_finalize_uniques(c, err, errlen) != 0) return -1;
    return fd_conf_finalize_marketing(c, err, errlen);
}

int64_t fd_conf_longest_window_s(const fd_conf_t *c) {
    int64_t w = 0;
    for (int i = 0; i < c->nwindows; i++)
        if (c->windows_s[i] > w) w = c->windows_s[i];
    return w;
}

int fd_conf_is_secret(const char *key) {
    static const char *const marks[] = {"password", "secret", "token", "oauthbearer.config",
                                        "key.pem"};
    char low[256];
    size_t i = 0;
    if (key == NULL) return 0;
    for (; key[i] != '\0' && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)key[i]);
    low[i] = '\0';
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++)
        if (strstr(low, marks[m]) != NULL) return 1;
    return 0;
}

/* ---- printing ----------------------------------------------------------- */

/* Query and fragment parameters whose name contains one of these
 * (case-insensitive) carry credentials: api_key, access_token, X-Amz-Signature,
 * client_secret, password, auth... Over-matching (a "monkey" parameter) only
 * hides a harmless value. */
static int secret_param(const char *name, size_t n) {
    static const char *const marks[] = {"key", "token", "secret",     "sig",    "pass",
                                        "pwd", "auth",  "credential", "session"};
    char low[64];
    if (n >= sizeof low) n = sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)name[i]);
    low[n] = '\0';
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++)
        if (strstr(low, marks[m]) != NULL) return 1;
    return 0;
}

#define URL_MAX_SPANS 32

/* The byte ranges [start, end) of a URL that hold credentials: the userinfo
 * before '@' (only its password when it has "user:password"; all of it
 * otherwise, as services put tokens there), and the value of every query or
 * fragment parameter named by secret_param(). Returns the number of spans
 * (ascending, disjoint); a value that is not a URL ("://") has none. */
static int url_secret_spans(const char *url, size_t spans[][2]) {
    const char *scheme = url ? strstr(url, "://") : NULL;
    int n = 0;
    if (scheme == NULL) return 0;
    const char *auth = scheme + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i; /* the last '@' ends the userinfo (same rule as the parser) */
    if (at != NULL) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        const char *from = colon ? colon + 1 : auth;
        if (from < at) {
            spans[n][0] = (size_t)(from - url);
            spans[n][1] = (size_t)(at - url);
            n++;
        }
    }
    const char *q = auth + alen;
    while (*q != '\0' && n < URL_MAX_SPANS) {
        q++; /* past '?', '#' or '&' / ';' */
        size_t plen = strcspn(q, "&;#");
        const char *eq = memchr(q, '=', plen);
        if (eq != NULL && eq + 1 < q + plen && secret_param(q, (size_t)(eq - q))) {
            spans[n][0] = (size_t)(eq + 1 - url);
            spans[n][1] = (size_t)(q + plen - url);
            n++;
        }
        q += plen;
    }
    return n;
}

/* A URL for showing: every credential span becomes "***"
 * (redis://user:pw@host → redis://user:***@host, ?key=abc → ?key=***). */
static char *mask_url(const char *url) {
    size_t spans[URL_MAX_SPANS][2];
    if (url == NULL) return strdup("");
    int n = url_secret_spans(url, spans);
    size_t len = strlen(url);
    char *s = malloc(len + 3 * (size_t)n + 1);
    if (s == NULL) return NULL;
    size_t k = 0, from = 0;
    for (int i = 0; i < n; i++) {
        memcpy(s + k, url + from, spans[i][0] - from);
        k += spans[i][0] - from;
        memcpy(s + k, "***", 3);
        k += 3;
        from = spans[i][1];
    }
    memcpy(s + k, url + from, len - from + 1);
    return s;
}

void fd_conf_scrub_arg(const char *key, char *value) {
    size_t spans[URL_MAX_SPANS][2];
    if (value == NULL) return;
    if (key == NULL) { /* -X name=value */
        char *eq = strchr(value, '=');
        if (eq == NULL) return;
        *eq = '\0';
        int secret = fd_conf_is_secret(value);
        *eq = '=';
        value = eq + 1;
        if (secret) {
            memset(value, '*', strlen(value));
            return;
        }
    } else {
        const conf_key_t *k = find_key(key);
        if (k != NULL && k->mask == MASK_SECRET) {
            memset(value, '*', strlen(value));
            return;
        }
        if (k == NULL || k->mask != MASK_URL_PASSWORD) return;
    }
    int n = url_secret_spans(value, spans);
    for (int i = 0; i < n; i++) memset(value + spans[i][0], '*', spans[i][1] - spans[i][0]);
}

static cJSON *value_json(const fd_conf_t *c, const conf_key_t *k) {
    char buf[64];
    switch (k->kind) {
    case K_STR:
    case K_ENUM_STR: {
        const char *s = *(char *const *)cfield(c, k);
        if (k->mask == MASK_SECRET) return cJSON_CreateString(s && s[0] ? "***" : "");
        if (k->mask == MASK_URL_PASSWORD) {
            char *m = mask_url(s);
            cJSON *j = cJSON_CreateString(m ? m : "***");
            free(m);
            return j;
        }
        return cJSON_CreateString(s ? s : "");
    }
    case K_INT: {
        int64_t v;
        memcpy(&v, cfield(c, k), sizeof v);
        return cJSON_CreateNumber((double)v);
    }
    case K_ENUM: {
        int v;
        memcpy(&v, cfield(c, k), sizeof v);
        return cJSON_CreateString(choice_at(k->choices, v, buf, sizeof buf));
    }
    case K_TOPICS: {
        cJSON *o = cJSON_CreateObject();
        const fd_topic_t *t = cfield(c, k);
        for (int i = 0; o && i < ccount(c, k); i++)
            cJSON_AddStringToObject(
                o, t[i].name, choice_at(k->choices, topic_type_index(t[i].type), buf, sizeof buf));
        return o;
    }
    case K_KPROPS: {
        cJSON *o = cJSON_CreateObject();
        const fd_kprop_t *kp = cfield(c, k);
        for (int i = 0; o && i < ccount(c, k); i++) {
            char *m = fd_conf_is_secret(kp[i].key) ? NULL : mask_url(kp[i].value);
            cJSON_AddStringToObject(o, kp[i].key, m ? m : "***");
            free(m);
        }
        return o;
    }
    case K_GROUPINGS: {
        cJSON *a = cJSON_CreateArray();
        const fd_grouping_t *g = cfield(c, k);
        for (int i = 0; a && i < ccount(c, k); i++) {
            cJSON *inner = cJSON_CreateArray();
            for (int j = 0; inner && j < g[i].ndims; j++)
                cJSON_AddItemToArray(inner, cJSON_CreateString(fd_dim_name(g[i].dims[j])));
            cJSON_AddItemToArray(a, inner);
        }
        return a;
    }
    case K_BOOL: return cJSON_CreateBool(*(const int *)cfield(c, k));
    case K_RULES: {
        cJSON *a = cJSON_CreateArray();
        const fd_alert_rule_t *r = cfield(c, k);
        for (int i = 0; a && i < ccount(c, k); i++)
            cJSON_AddItemToArray(a, fd_alert_rule_to_json(&r[i]));
        return a;
    }
    case K_WINDOWS: {
        cJSON *a = cJSON_CreateArray();
        const int64_t *w = cfield(c, k);
        for (int i = 0; a && i < ccount(c, k); i++) {
            fd_duration_format(w[i], buf, sizeof buf);
            cJSON_AddItemToArray(a, cJSON_CreateString(buf));
        }
        return a;
    }
    }
    return cJSON_CreateNull();
}

void fd_conf_print(const fd_conf_t *c, FILE *out) {
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; root != NULL && i < NKEYS; i++) {
        const conf_key_t *k = &keys[i];
        cJSON *parent = root;
        char seg[64];
        const char *p = k->name, *dot;
        while ((dot = strchr(p, '.')) != NULL) {
            snprintf(seg, sizeof seg, "%.*s", (int)(dot - p), p);
            cJSON *child = cJSON_GetObjectItemCaseSensitive(parent, seg);
            if (child == NULL) {
                child = cJSON_CreateObject();
                cJSON_AddItemToObject(parent, seg, child);
            }
            parent = child;
            p = dot + 1;
        }
        cJSON_AddItemToObject(parent, p, value_json(c, k));
    }
    char *s = root ? cJSON_Print(root) : NULL;
    fputs(s ? s : "{}", out);
    fputc('\n', out);
    cJSON_free(s);
    cJSON_Delete(root);
}

static const char *kind_name(kind_t k) {
    switch (k) {
    case K_STR: return "string";
    case K_INT: return "integer";
    case K_ENUM:
    case K_ENUM_STR: return "enum";
    case K_TOPICS: return "object: topic → type";
    case K_KPROPS: return "object: property → value";
    case K_GROUPINGS: return "array of arrays of dimensions";
    case K_WINDOWS: return "array of durations";
    case K_BOOL: return "boolean";
    case K_RULES: return "array of rule objects";
    }
    return "?";
}

static void doc_bounds(const conf_key_t *k, char *buf, size_t cap) {
    char list[128];
    switch (k->kind) {
    case K_STR: snprintf(buf, cap, "length %" PRId64 "..%" PRId64, k->min, k->max); return;
    case K_INT: snprintf(buf, cap, "%" PRId64 "..%" PRId64, k->min, k->max); return;
    case K_ENUM:
    case K_ENUM_STR:
    case K_TOPICS: {
        size_t n = 0;
        if (k->kind == K_TOPICS)
            n = (size_t)snprintf(buf, cap, "%" PRId64 "..%" PRId64 " topics; types ", k->min, k->max);
        for (int i = 0; n < cap; i++) {
            char one[32];
            if (choice_at(k->choices, i, one, sizeof one)[0] == '\0') break;
            n += (size_t)snprintf(buf + n, cap - n, "%s`%s`", i ? ", " : "", one);
        }
        return;
    }
    case K_KPROPS:
        snprintf(buf, cap, "%" PRId64 "..%" PRId64 " properties", k->min, k->max);
        return;
    case K_GROUPINGS:
        snprintf(buf, cap, "%" PRId64 "..%" PRId64 " groupings of %s", k->min, k->max,
                 dim_list(list, sizeof list));
        return;
    case K_WINDOWS:
        snprintf(buf, cap, "%" PRId64 "..%" PRId64 " windows, each 1m..%" PRId64 "d", k->min,
                 k->max, WINDOW_MAX_S / 86400);
        return;
    case K_BOOL: snprintf(buf, cap, "`true`, `false`"); return;
    case K_RULES: snprintf(buf, cap, "%" PRId64 "..%" PRId64 " rules", k->min, k->max); return;
    }
    buf[0] = '\0';
}

void fd_conf_print_doc(FILE *out) {
    fputs("# Configuration\n"
          "\n"
          "<!-- Generated from the key table in conf/conf.c by fd_conf_print_doc(); "
          "tests/unit/test_conf.c fails when this file differs. Do not edit by hand. -->\n"
          "\n"
          "funneld reads one JSON file (`funneld run -c funneld.json`; `funneld check-config "
          "-c funneld.json` validates it and prints the effective configuration). Keys nest "
          "as objects following their dotted names: `redis.url` is written "
          "`{\"redis\": {\"url\": \"...\"}}`. Every key is optional; an absent key keeps its "
          "default (deploy/funneld.example.json lists them all).\n"
          "\n"
          "- An unknown key (at any level), a duplicate key, a value of the wrong type or out "
          "of bounds is an error naming the key; the CLI exits with status 2.\n"
          "- `${NAME}` in any string value is replaced by the environment variable NAME "
          "(letters, digits, `_`); an undefined variable is an error. `$${` is a literal "
          "`${`.\n"
          "- Flags override the file: `--brokers` (kafka.brokers), `--redis` (redis.url), "
          "`--group` (kafka.group), `--prefix` (redis.prefix); `-X name=value` adds a "
          "librdkafka property (a later value replaces an earlier one). Flag values are "
          "taken literally (no `${}`).\n"
          "- Secrets are never printed: `check-config` shows `***` for `alerts.webhook.secret`, "
          "for every librdkafka property whose name contains `password`, `secret`, `token`, "
          "`oauthbearer.config` or `key.pem` (case-insensitive), and for the credentials in "
          "every URL (`redis.url`, `alerts.alertmanager.url`, `alerts.webhook.url`, "
          "`alerts.generator_url`, and any librdkafka property value containing `://`): the "
          "password of `user:password@` (all of the user part when it has no `:`, as services "
          "put tokens there), and the value of every query or fragment parameter whose name "
          "contains `key`, `token`, `secret`, `sig`, `pass`, `pwd`, `auth`, `credential` or "
          "`session` (case-insensitive; `?key=abc&team=ops` shows `?key=***&team=ops`). A "
          "token inside a URL's path (e.g. `/services/T0/B0/XXXX`) cannot be recognised: keep "
          "such a URL in the environment.\n"
          "- Secrets on the command line (`--redis` with a password, `-X` of a secret "
          "property, `--set` of a secret key or URL) are overwritten with `*` in the "
          "process's arguments once read, so `ps` and `/proc/PID/cmdline` no longer show "
          "them; they are visible for the first milliseconds and in the shell's history. The "
          "safe way is `${ENV}` in the file: `\"url\": \"redis://:${REDIS_PASSWORD}@host:6379\"`, "
          "`\"sasl.password\": \"${KAFKA_PASSWORD}\"`.\n"
          "- Durations are integers in the unit their name ends with (`_ms`, `_s`); windows "
          "are strings such as `\"5m\"`.\n"
          "\n"
          "## Keys\n"
          "\n"
          "| key | type | default | bounds | description |\n"
          "|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < NKEYS; i++) {
        const conf_key_t *k = &keys[i];
        char bounds[256];
        doc_bounds(k, bounds, sizeof bounds);
        const char *def = k->def;
        fprintf(out, "| `%s` | %s | %s%s%s | %s | %s |\n", k->name, kind_name(k->kind),
                def[0] ? "`" : "", def[0] ? def : "(empty)", def[0] ? "`" : "", bounds, k->help);
    }
    fputs("\n## Rules across keys\n\nChecked after the file and the flags are applied:\n\n", out);
    for (size_t i = 0; i < sizeof finalize_rules / sizeof finalize_rules[0]; i++)
        fprintf(out, "- %s\n", finalize_rules[i]);
}

void fd_conf_release(fd_conf_t *c) {
    if (c == NULL) return;
    for (size_t i = 0; i < NKEYS; i++) {
        const conf_key_t *k = &keys[i];
        switch (k->kind) {
        case K_STR:
        case K_ENUM_STR: {
            char **slot = field(c, k);
            free(*slot);
            *slot = NULL;
            break;
        }
        case K_TOPICS:
            free_topics(field(c, k), *count_field(c, k));
            *count_field(c, k) = 0;
            break;
        case K_KPROPS:
            free_kprops(field(c, k), *count_field(c, k));
            *count_field(c, k) = 0;
            break;
        case K_RULES:
            free_rules(field(c, k), *count_field(c, k));
            *count_field(c, k) = 0;
            break;
        default: break;
        }
    }
}
