/*
 * outputs.c — the alert outputs (see outputs.h for the contract).
 *
 * HTTP: one CURLM for the process, driven by libuv. libcurl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION → a uv_poll per socket) and when
 * to call back (CURLMOPT_TIMERFUNCTION → one uv_timer); both call
 * curl_multi_socket_action(), after which finished transfers are collected.
 * Each receiver (Alertmanager, webhook) is a FIFO queue with at most one
 * request in flight, so deliveries keep stream order. A failed attempt (no
 * answer within alerts.http.timeout_ms, a connection error, 5xx, 408, 429)
 * is retried after backoff_min·2^attempt (capped at backoff_max), half of it
 * random ("equal jitter"); another 4xx is permanent: logged, counted, and
 * acknowledged so that one bad payload cannot block the queue forever.
 * Alertmanager re-sends are not in the stream: they get one attempt.
 *
 * Kafka: an idempotent producer; the delivery report acknowledges. stdout:
 * acknowledged as soon as the line is written and flushed.
 *
 * Memory: queued items own their body; at most alerts.queue_size per
 * output. Invariant: an item leaves its queue only through ack or reset,
 * and the in-flight item is never freed while curl still references it.
 */
#include "alerts/outputs.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/kafka.h"
#include "base/clock.h"

/* ---- pure helpers -------------------------------------------------------------- */

void fd_alert_rfc3339(int64_t ms, char *buf, size_t cap) {
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n > 0) snprintf(buf + n, cap - n, ".%03dZ", frac);
    else if (cap > 0) buf[0] = '\0'; /* does not fit */
}

int fd_alert_webhook_sign(const char *secret, const char *id, int64_t ts, const char *body,
                          size_t len, char *out, size_t cap) {
    unsigned char key[1024];
    int keylen;
    if (strncmp(secret, "whsec_", 6) == 0) {
        const char *b = secret + 6;
        size_t bl = strlen(b);
        if (bl == 0 || bl % 4 != 0 || bl / 4 * 3 > sizeof key) return -1;
        keylen = EVP_DecodeBlock(key, (const unsigned char *)b, (int)bl);
        if (keylen < 0) return -1;
        for (size_t i = bl; i > 0 && b[i - 1] == '='; i--) keylen--;
    } else {
        keylen = (int)strlen(secret);
        if (keylen > (int)sizeof key) return -1;
        memcpy(key, secret, (size_t)keylen);
    }
    char head[256];
    int hn = snprintf(head, sizeof head, "%s.%" PRId64 ".", id, ts);
    if (hn < 0 || hn >= (int)sizeof head) return -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    /* HMAC over head || body without copying the body */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end()};
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, (size_t)keylen, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)hn) &&
             EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
             EVP_MAC_final(ctx, mac, &outl, sizeof mac);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    if (!ok) return -1;
    maclen = (unsigned int)outl;
    if (cap < 3 + 4 * ((maclen + 2) / 3) + 1) return -1;
    memcpy(out, "v1,", 3);
    int bn = EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    return 3 + bn;
}

static void url_encode(const char *s, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

static cJSON *string_object(const cJSON *src) {
    cJSON *o = cJSON_CreateObject();
    const cJSON *m;
    cJSON_ArrayForEach (m, src) {
        if (cJSON_IsString(m)) cJSON_AddStringToObject(o, m->string, m->valuestring);
    }
    return o;
}

char *fd_alert_am_body(void *const *transitions, int n, int64_t now_ms, int64_t ends_in_ms,
                       const char *generator_url) {
    cJSON *arr = cJSON_CreateArray();
    char ts[40], enc[1024], gen[2048];
    for (int i = 0; arr && i < n; i++) {
        const cJSON *t = transitions[i];
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToObject(a, "labels",
                              string_object(cJSON_GetObjectItemCaseSensitive(t, "labels")));
        cJSON_AddItemToObject(a, "annotations",
                              string_object(cJSON_GetObjectItemCaseSensitive(t, "annotations")));
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(t, "starts_at");
        const cJSON *ea = cJSON_GetObjectItemCaseSensitive(t, "ends_at");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(t, "state");
        fd_alert_rfc3339(cJSON_IsNumber(sa) ? (int64_t)sa->valuedouble : now_ms, ts, sizeof ts);
        cJSON_AddStringToObject(a, "startsAt", ts);
        int resolved = cJSON_IsString(st) && strcmp(st->valuestring, "resolved") == 0;
        fd_alert_rfc3339(resolved && cJSON_IsNumber(ea) ? (int64_t)ea->valuedouble
                                                        : now_ms + ends_in_ms,
                         ts, sizeof ts);
        cJSON_AddStringToObject(a, "endsAt", ts);
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(t, "scope");
        url_encode(cJSON_IsString(sc) ? sc->valuestring : "", enc, sizeof enc);
        if (generator_url && generator_url[0])
            snprintf(gen, sizeof gen, "%s%sscope=%s", generator_url,
                     strchr(generator_url, '?') ? "&" : "?", enc);
        else snprintf(gen, sizeof gen, "funneld:alerts?scope=%s", enc);
        cJSON_AddStringToObject(a, "generatorURL", gen);
        cJSON_AddItemToArray(arr, a);
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

/* ---- queues ------------------------------------------------------------------------ */

typedef struct item {
    struct item *next;
    char *body;
    size_t len;
    char id[160];
    char fp[17];
    uint64_t tag;
    int tagged; /* from the stream: retried until delivered, then acknowledged */
    int attempts;
} item_t;

typedef struct target {
    fd_alert_out_t *o;
    int out;
    char *url;
    item_t *head, *tail;
    size_t n;
    item_t *inflight;
    CURL *easy;
    struct curl_slist *hdrs;
    uv_timer_t retry;
    int waiting; /* retry timer armed */
    char errbuf[CURL_ERROR_SIZE];
} target_t;

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    fd_alert_out_t *o;
} sockctx_t;

struct fd_alert_out {
    uv_loop_t *loop;
    const fd_conf_t *conf;
    fd_log_t *log;
    fd_alert_ack_cb ack;
    void *ud;
    int enabled[FD_ALERT_OUT__COUNT];
    CURLM *multi;
    uv_timer_t curl_timer;
    target_t http[FD_ALERT_OUT__COUNT]; /* only ALERTMANAGER and WEBHOOK used */
    rd_kafka_t *rk;
    uv_timer_t kafka_timer;
    size_t kafka_outstanding;
    int handles_open;
    int closing;
    fd_alert_out_stats_t st;
};

static void item_free(item_t *it) {
    if (it) {
        free(it->body);
        free(it);
    }
}

static void start_next(target_t *t);

static void retry_cb(uv_timer_t *h) {
    target_t *t = h->data;
    t->waiting = 0;
    start_next(t);
}

/* Removes the head (the finished in-flight item). */
static void pop_head(target_t *t) {
    item_t *it = t->head;
    if (!it) return;
    t->head = it->next;
    if (!t->head) t->tail = NULL;
    t->n--;
    item_free(it);
}

static int64_t backoff_ms(const fd_alert_out_t *o, int attempts) {
    int64_t b = o->conf->alert_http_backoff_min_ms;
    for (int i = 1; i < attempts && b < o->conf->alert_http_backoff_max_ms; i++) b *= 2;
    if (b > o->conf->alert_http_backoff_max_ms) b = o->conf->alert_http_backoff_max_ms;
    return b / 2 + (int64_t)(random() % (b / 2 + 1));
}

static void finish_transfer(target_t *t, CURLcode res, long status) {
    fd_alert_out_t *o = t->o;
    item_t *it = t->inflight;
    t->inflight = NULL;
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
    if (!it) return;
    int ok = res == CURLE_OK && status >= 200 && status < 300;
    int permanent =
        res == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429;
    if (ok) {
        o->st.delivered[t->out]++;
    } else {
        o->st.attempts_failed[t->out]++;
        fd_log(o->log, FD_LOG_WARN, "alert delivery failed",
               "output=%s id=\"%s\" attempt=%d status=%ld error=\"%s\"", fd_alert_out_name(t->out),
               it->id, it->attempts, status, res == CURLE_OK ? "" : t->errbuf);
    }
    if (ok || permanent || !it->tagged) {
        uint64_t tag = it->tag;
        int tagged = it->tagged;
        pop_head(t);
        if (tagged && o->ack && !o->closing) o->ack(o->ud, t->out, tag);
        start_next(t);
        return;
    }
    t->waiting = 1;
    uv_timer_start(&t->retry, retry_cb, (uint64_t)backoff_ms(o, it->attempts), 0);
}

static void check_done(fd_alert_out_t *o) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(o->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        target_t *t = NULL;
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(o->multi, e);
        curl_easy_cleanup(e);
        if (t) {
            t->easy = NULL;
            finish_transfer(t, res, status);
        }
    }
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

static void start_next(target_t *t) {
    fd_alert_out_t *o = t->o;
    if (o->closing || t->inflight || t->waiting || !t->head) return;
    item_t *it = t->head;
    CURL *e = curl_easy_init();
    if (!e) {
        t->waiting = 1;
        uv_timer_start(&t->retry, retry_cb, 1000, 0);
        return;
    }
    it->attempts++;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: funneld");
    h = curl_slist_append(h, "Expect:");
    if (t->out == FD_ALERT_OUT_WEBHOOK) {
        char line[512], sig[128];
        int64_t ts = fd_clock_wall_ms() / 1000;
        snprintf(line, sizeof line, "webhook-id: %s", it->id);
        h = curl_slist_append(h, line);
        snprintf(line, sizeof line, "webhook-timestamp: %" PRId64, ts);
        h = curl_slist_append(h, line);
        if (fd_alert_webhook_sign(o->conf->alert_webhook_secret, it->id, ts, it->body, it->len, sig,
                                  sizeof sig) > 0) {
            snprintf(line, sizeof line, "webhook-signature: %s", sig);
            h = curl_slist_append(h, line);
        }
    }
    t->hdrs = h;
    t->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)it->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->conf->alert_http_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->conf->alert_http_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)t);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    t->inflight = it;
    t->easy = e;
    if (curl_multi_add_handle(o->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        t->easy = NULL;
        finish_transfer(t, CURLE_FAILED_INIT, 0);
    }
}

/* ---- curl ↔ libuv ----------------------------------------------------------------- */

static void on_sock_close(uv_handle_t *h) { free(h->data); }

static void on_poll(uv_poll_t *h, int status, int events) {
    sockctx_t *c = h->data;
    fd_alert_out_t *o = c->o;
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(o->multi, c->fd, flags, &running);
    check_done(o);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    fd_alert_out_t *o = userp;
    sockctx_t *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c) {
            uv_poll_stop(&c->poll);
            uv_close((uv_handle_t *)&c->poll, on_sock_close);
            curl_multi_assign(o->multi, s, NULL);
        }
        return 0;
    }
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return -1;
        c->fd = s;
        c->o = o;
        if (uv_poll_init_socket(o->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->poll.data = c;
        curl_multi_assign(o->multi, s, c);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *h) {
    fd_alert_out_t *o = h->data;
    int running;
    curl_multi_socket_action(o->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(o);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
    fd_alert_out_t *o = userp;
    if (timeout_ms < 0) uv_timer_stop(&o->curl_timer);
    else uv_timer_start(&o->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- kafka ----------------------------------------------------------------------- */

static void kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    fd_alert_out_t *o = opaque;
    uint64_t tag = (uint64_t)(uintptr_t)m->_private;
    if (o->kafka_outstanding) o->kafka_outstanding--;
    if (m->err) {
        /* message.timeout.ms is 0 (infinite): only fatal errors get here */
        o->st.attempts_failed[FD_ALERT_OUT_KAFKA]++;
        fd_log(o->log, FD_LOG_ERROR, "alert produce failed", "error=\"%s\"",
               rd_kafka_err2str(m->err));
        return; /* not acknowledged: redelivered from the stream after a restart */
    }
    o->st.delivered[FD_ALERT_OUT_KAFKA]++;
    if (o->ack && !o->closing) o->ack(o->ud, FD_ALERT_OUT_KAFKA, tag);
}

static void kafka_tick(uv_timer_t *h) {
    fd_alert_out_t *o = h->data;
    rd_kafka_poll(o->rk, 0);
}

/* ---- public ------------------------------------------------------------------------ */

static void on_close(uv_handle_t *h) {
    fd_alert_out_t *o = h->data;
    if (--o->handles_open == 0) free(o);
}

static void on_retry_close(uv_handle_t *h) {
    target_t *t = h->data;
    fd_alert_out_t *o = t->o;
    if (--o->handles_open == 0) free(o);
}

static int init_target(fd_alert_out_t *o, int out, const char *base, const char *path, char *err,
                       size_t errlen) {
    target_t *t = &o->http[out];
    t->o = o;
    t->out = out;
    size_t n = strlen(base) + strlen(path) + 1;
    t->url = malloc(n);
    if (!t->url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(t->url, n, "%s%s", base, path);
    uv_timer_init(o->loop, &t->retry);
    t->retry.data = t;
    o->handles_open++;
    o->enabled[out] = 1;
    return 0;
}

fd_alert_out_t *fd_alert_out_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                 fd_alert_ack_cb ack, void *ud, char *err, size_t errlen) {
    fd_alert_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o->loop = loop;
    o->conf = c;
    o->log = log;
    o->ack = ack;
    o->ud = ud;
    srandom((unsigned)fd_clock_wall_ms());
    o->enabled[FD_ALERT_OUT_STDOUT] = c->alert_stdout;
    uv_timer_init(loop, &o->curl_timer);
    o->curl_timer.data = o;
    o->handles_open = 1;
    uv_timer_init(loop, &o->kafka_timer);
    o->kafka_timer.data = o;
    o->handles_open++;
    int am = c->alert_am_url && c->alert_am_url[0];
    int wh = c->alert_webhook_url && c->alert_webhook_url[0];
    if (am || wh) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        o->multi = curl_multi_init();
        if (!o->multi) {
            snprintf(err, errlen, "curl_multi_init failed");
            goto fail;
        }
        curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
        curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
    }
    if (am) {
        const char *base = c->alert_am_url;
        size_t bl = strlen(base);
        const char *path = bl && base[bl - 1] == '/' ? "api/v2/alerts" : "/api/v2/alerts";
        if (init_target(o, FD_ALERT_OUT_ALERTMANAGER, base, path, err, errlen) < 0) goto fail;
    }
    if (wh && init_target(o, FD_ALERT_OUT_WEBHOOK, c->alert_webhook_url, "", err, errlen) < 0)
        goto fail;
    if (c->alert_kafka_enabled) {
        const char *extra[] = {
            "enable.idempotence", "true", "message.timeout.ms", "0", "linger.ms", "5", NULL};
        rd_kafka_conf_t *kc =
            fd_kafka_conf(RD_KAFKA_PRODUCER, c->brokers, c->kprops, c->nkprops, extra, err, errlen);
        if (!kc) goto fail;
        rd_kafka_conf_set_dr_msg_cb(kc, kafka_dr);
        rd_kafka_conf_set_opaque(kc, o);
        o->rk = fd_kafka_new(RD_KAFKA_PRODUCER, kc, "alert kafka producer", err, errlen);
        if (!o->rk) goto fail;
        o->enabled[FD_ALERT_OUT_KAFKA] = 1;
        uv_timer_start(&o->kafka_timer, kafka_tick, 50, 50);
    }
    return o;
fail:
    fd_alert_out_free(o);
    return NULL;
}

static void drop_queue(target_t *t, int keep_inflight) {
    item_t **pp = &t->head;
    t->tail = NULL;
    while (*pp) {
        item_t *it = *pp;
        if (keep_inflight && it == t->inflight) {
            it->tagged = 0; /* one attempt, no ack: the next holder owns it now */
            t->tail = it;
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        t->n--;
        item_free(it);
    }
}

void fd_alert_out_free(fd_alert_out_t *o) {
    if (!o) return;
    o->closing = 1;
    if (o->rk) {
        rd_kafka_flush(o->rk, 2000);
        rd_kafka_destroy(o->rk);
        o->rk = NULL;
    }
    for (int i = 0; i < FD_ALERT_OUT__COUNT; i++) {
        target_t *t = &o->http[i];
        if (!t->url) continue;
        if (t->easy) {
            curl_multi_remove_handle(o->multi, t->easy);
            curl_easy_cleanup(t->easy);
            t->easy = NULL;
        }
        curl_slist_free_all(t->hdrs);
        t->hdrs = NULL;
        t->inflight = NULL;
        drop_queue(t, 0);
        free(t->url);
        t->url = NULL;
        uv_close((uv_handle_t *)&t->retry, on_retry_close);
    }
    if (o->multi) {
        curl_multi_cleanup(o->multi); /* removes remaining sockets via sock_cb */
        o->multi = NULL;
    }
    uv_close((uv_handle_t *)&o->kafka_timer, on_close);
    uv_close((uv_handle_t *)&o->curl_timer, on_close);
}

int fd_alert_out_enabled(const fd_alert_out_t *o, int out) {
    return out >= 0 && out < FD_ALERT_OUT__COUNT && o->enabled[out];
}

size_t fd_alert_out_room(const fd_alert_out_t *o, int out) {
    size_t cap = (size_t)o->conf->alert_queue_size, used = 0;
    if (!fd_alert_out_enabled(o, out)) return 0;
    if (out == FD_ALERT_OUT_KAFKA) used = o->kafka_outstanding;
    else if (out != FD_ALERT_OUT_STDOUT) used = o->http[out].n;
    return used >= cap ? 0 : cap - used;
}

static int enqueue(target_t *t, const char *body, size_t len, const char *id, uint64_t tag,
                   int tagged) {
    item_t *it = calloc(1, sizeof *it);
    if (!it) return -ENOMEM;
    it->body = malloc(len + 1);
    if (!it->body) {
        free(it);
        return -ENOMEM;
    }
    memcpy(it->body, body, len);
    it->body[len] = '\0';
    it->len = len;
    snprintf(it->id, sizeof it->id, "%s", id);
    it->tag = tag;
    it->tagged = tagged;
    if (t->tail) t->tail->next = it;
    else t->head = it;
    t->tail = it;
    t->n++;
    start_next(t);
    return 0;
}

int fd_alert_out_send(fd_alert_out_t *o, int out, const char *json, const char *fp, uint64_t tag) {
    if (!fd_alert_out_enabled(o, out)) return -EINVAL;
    if (fd_alert_out_room(o, out) == 0 && out != FD_ALERT_OUT_STDOUT) return -ENOBUFS;
    size_t len = strlen(json);
    switch (out) {
    case FD_ALERT_OUT_STDOUT:
        fwrite(json, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        o->st.delivered[out]++;
        if (o->ack) o->ack(o->ud, out, tag);
        return 0;
    case FD_ALERT_OUT_KAFKA: {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            o->rk, RD_KAFKA_V_TOPIC(o->conf->alert_kafka_topic),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY((void *)fp, strlen(fp)),
            RD_KAFKA_V_VALUE((void *)json, len), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag),
            RD_KAFKA_V_END);
        if (e) return e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? -ENOBUFS : -EIO;
        o->kafka_outstanding++;
        return 0;
    }
    case FD_ALERT_OUT_WEBHOOK: {
        cJSON *t = cJSON_ParseWithLength(json, len);
        const cJSON *id = t ? cJSON_GetObjectItemCaseSensitive(t, "id") : NULL;
        int rc = enqueue(&o->http[out], json, len, cJSON_IsString(id) ? id->valuestring : "", tag, 1);
        cJSON_Delete(t);
        return rc;
    }
    case FD_ALERT_OUT_ALERTMANAGER: {
        cJSON *t = cJSON_ParseWithLength(json, len);
        if (!t) return -EINVAL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
        void *one[1] = {t};
        char *body = fd_alert_am_body(one, 1, fd_clock_wall_ms(), 4 * o->conf->alert_am_resend_ms,
                                      o->conf->alert_generator_url);
        int rc = body ? enqueue(&o->http[out], body, strlen(body),
                                cJSON_IsString(id) ? id->valuestring : "", tag, 1)
                      : -ENOMEM;
        free(body);
        cJSON_Delete(t);
        return rc;
    }
    }
    return -EINVAL;
}

int fd_alert_out_resend(fd_alert_out_t *o, const char *array) {
    if (!fd_alert_out_enabled(o, FD_ALERT_OUT_ALERTMANAGER)) return -EINVAL;
    if (fd_alert_out_room(o, FD_ALERT_OUT_ALERTMANAGER) == 0) {
        o->st.overflow++;
        fd_log(o->log, FD_LOG_WARN, "alertmanager queue full: re-send dropped", "overflow=%" PRIu64,
               o->st.overflow);
        return -ENOBUFS;
    }
    cJSON *a = cJSON_Parse(array);
    int n = cJSON_GetArraySize(a);
    if (!a || n == 0) {
        cJSON_Delete(a);
        return 0;
    }
    void **ts = calloc((size_t)n, sizeof *ts);
    int i = 0;
    cJSON *t;
    cJSON_ArrayForEach (t, a) {
        if (ts) ts[i++] = t;
    }
    char *body = ts ? fd_alert_am_body(ts, n, fd_clock_wall_ms(), 4 * o->conf->alert_am_resend_ms,
                                       o->conf->alert_generator_url)
                    : NULL;
    int rc = body ? enqueue(&o->http[FD_ALERT_OUT_ALERTMANAGER], body, strlen(body), "resend", 0, 0)
                  : -ENOMEM;
    if (rc == 0) o->st.resends++;
    free(body);
    free(ts);
    cJSON_Delete(a);
    return rc;
}

void fd_alert_out_reset(fd_alert_out_t *o) {
    for (int i = 0; i < FD_ALERT_OUT__COUNT; i++)
        if (o->http[i].url) drop_queue(&o->http[i], 1);
    /* Kafka: produced messages cannot be recalled; their acks are ignored
     * by the evaluator after a reset (it compares generations). */
}

void fd_alert_out_stats(const fd_alert_out_t *o, fd_alert_out_stats_t *st) { *st = o->st; }
