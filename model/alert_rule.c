/*
 * alert_rule.c — rule parsing, the statistics and the state machine (see
 * alert_rule.h for the contract).
 *
 * The statistics are the textbook ones, chosen so an operator can check a
 * decision with a pocket calculator (docs/ALERTS.md shows the formulas):
 * pooled two-proportion z for rates, the normal approximation of the
 * conditional binomial for counts, p = erfc(z/√2)/2. The z-test guards
 * against noise; min_drop guards against alerts on drops too small to
 * matter at high volume; min_samples keeps small scopes quiet.
 *
 * Memory: nothing but the rule's own strings. Invariant: fd_alert_step()
 * only moves forward in event time, so re-applying an already evaluated
 * step (after a crash between evaluation and commit, the step is evaluated
 * again from the committed state) can never produce a second transition.
 */
#include "model/alert_rule.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/duration.h"

static const char *const metric_names[FD_M__COUNT] = {
    "conversion_rate", "interaction_rate", "exposures",     "interactions", "payments",
    "refunds",         "uv_exposed",       "uv_interacted", "uv_paid",
};

const char *fd_metric_name(fd_metric_t m) {
    return m >= 0 && m < FD_M__COUNT ? metric_names[m] : "?";
}

int fd_metric_from_name(const char *s) {
    for (int i = 0; i < FD_M__COUNT; i++)
        if (strcmp(s, metric_names[i]) == 0) return i;
    return -1;
}

int fd_metric_is_rate(fd_metric_t m) {
    return m == FD_M_CONVERSION_RATE || m == FD_M_INTERACTION_RATE;
}

void fd_metric_series(fd_metric_t m, const char **num, const char **den) {
    switch (m) {
    case FD_M_CONVERSION_RATE:
        *num = "uv_paid";
        *den = "uv_exposed";
        return;
    case FD_M_INTERACTION_RATE:
        *num = "interactions";
        *den = "exposures";
        return;
    default:
        *num = fd_metric_name(m);
        *den = NULL;
        return;
    }
}

static const char *const kind_names[] = {"drop_vs_baseline", "below_threshold", "absent"};

const char *fd_alert_kind_name(fd_alert_kind_t k) {
    return k >= 0 && k <= FD_ALERT_ABSENT ? kind_names[k] : "?";
}

static const char *const state_names[] = {"inactive", "pending", "firing", "resolved"};

const char *fd_alert_state_name(fd_alert_state_t s) {
    return s >= 0 && s <= FD_AS_RESOLVED ? state_names[s] : "?";
}

int fd_alert_state_from_name(const char *s) {
    for (int i = 0; i <= FD_AS_RESOLVED; i++)
        if (strcmp(s, state_names[i]) == 0) return i;
    return -1;
}

static const char *const out_names[FD_ALERT_OUT__COUNT] = {"stdout", "kafka", "alertmanager",
                                                           "webhook"};

const char *fd_alert_out_name(int out) {
    return out >= 0 && out < FD_ALERT_OUT__COUNT ? out_names[out] : "?";
}

/* ---- parsing ---------------------------------------------------------------- */

static int valid_name(const char *s) {
    if (!isalpha((unsigned char)*s) && *s != '_' && *s != ':') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != ':') return 0;
    return 1;
}

static void free_labels(fd_alert_label_t *l, int n) {
    for (int i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].value);
        l[i].key = l[i].value = NULL;
    }
}

void fd_alert_rule_release(fd_alert_rule_t *r) {
    if (r == NULL) return;
    free(r->name);
    r->name = NULL;
    free_labels(r->labels, r->nlabels);
    free_labels(r->annotations, r->nannotations);
    r->nlabels = r->nannotations = 0;
}

static int get_duration(const cJSON *o, const char *key, int64_t def, const char *what,
                        int64_t *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(v) || fd_duration_parse(v->valuestring, out) != 0)
        return fd_fail(err, errlen,
                       "%s.%s: must be a duration string such as \"15m\" (unit s, m, h or d)", what,
                       key);
    return 0;
}

static int get_number(const cJSON *o, const char *key, double def, double lo, double hi, int lo_open,
                      int hi_open, const char *what, double *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= lo) || !(d <= hi) || (lo_open && d == lo) || (hi_open && d == hi))
        return fd_fail(err, errlen, "%s.%s: must be a number in %s%g, %g%s", what, key,
                       lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
    *out = d;
    return 0;
}

static int get_labels(const cJSON *o, const char *key, const char *what, fd_alert_label_t *l,
                      int *n, int names_only, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *n = 0;
    if (v == NULL) return 0;
    if (!cJSON_IsObject(v))
        return fd_fail(err, errlen, "%s.%s: must be an object of strings", what, key);
    const cJSON *m;
    cJSON_ArrayForEach (m, v) {
        if (*n == FD_ALERT_MAX_LABELS) {
            fd_fail(err, errlen, "%s.%s: at most %d entries", what, key, FD_ALERT_MAX_LABELS);
            goto fail;
        }
        if (!cJSON_IsString(m)) {
            fd_fail(err, errlen, "%s.%s[\"%.60s\"]: must be a string", what, key, m->string);
            goto fail;
        }
        if (names_only && (!valid_name(m->string) || strcmp(m->string, "alertname") == 0 ||
                           fd_dim_from_name(m->string) >= 0)) {
            fd_fail(err, errlen,
                    "%s.%s: \"%.60s\" is not a usable label name ([A-Za-z_][A-Za-z0-9_]*, "
                    "not alertname or a dimension)",
                    what, key, m->string);
            goto fail;
        }
        for (int i = 0; i < *n; i++)
            if (strcmp(l[i].key, m->string) == 0) {
                fd_fail(err, errlen, "%s.%s: duplicate \"%.60s\"", what, key, m->string);
                goto fail;
            }
        l[*n].key = strdup(m->string);
        l[*n].value = strdup(m->valuestring);
        if (!l[*n].key || !l[*n].value) {
            free(l[*n].key);
            free(l[*n].value);
            fd_fail(err, errlen, "%s: out of memory", what);
            goto fail;
        }
        (*n)++;
    }
    return 0;
fail:
    free_labels(l, *n);
    *n = 0;
    return -1;
}

int fd_alert_rule_parse(const void *json, const char *what, fd_alert_rule_t *r, char *err,
                        size_t errlen) {
    static const char *const known[] = {"name",      "kind",
                                        "metric",    "while",
                                        "grouping",  "window",
                                        "baseline",  "baseline_offset",
                                        "min_drop",  "confidence",
                                        "threshold", "min_samples",
                                        "for",       "keep_firing_for",
                                        "labels",    "annotations",
                                        "sinks",     NULL};
    const cJSON *o = json;
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(o)) return fd_fail(err, errlen, "%s: must be an object", what);
    const cJSON *m;
    cJSON_ArrayForEach (m, o) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            if (strcmp(m->string, known[i]) == 0) ok = 1;
        if (!ok) return fd_fail(err, errlen, "%s: unknown key \"%.60s\"", what, m->string);
        for (const cJSON *p = o->child; p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0)
                return fd_fail(err, errlen, "%s: duplicate key \"%.60s\"", what, m->string);
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(v) || !valid_name(v->valuestring) || strlen(v->valuestring) > 128)
        return fd_fail(err, errlen,
                       "%s.name: required, [A-Za-z_:][A-Za-z0-9_:]*, at most 128 bytes", what);
    char rname[160];
    snprintf(rname, sizeof rname, "%s", v->valuestring);

    v = cJSON_GetObjectItemCaseSensitive(o, "kind");
    int kind = -1;
    for (int i = 0; cJSON_IsString(v) && i < 3; i++)
        if (strcmp(v->valuestring, kind_names[i]) == 0) kind = i;
    if (kind < 0)
        return fd_fail(err, errlen,
                       "%s.kind: required, one of drop_vs_baseline, below_threshold, absent", what);
    r->kind = (fd_alert_kind_t)kind;

    v = cJSON_GetObjectItemCaseSensitive(o, "metric");
    int metric = cJSON_IsString(v) ? fd_metric_from_name(v->valuestring) : -1;
    if (metric < 0)
        return fd_fail(err, errlen,
                       "%s.metric: required, one of conversion_rate, interaction_rate, exposures, "
                       "interactions, payments, refunds, uv_exposed, uv_interacted, uv_paid",
                       what);
    r->metric = (fd_metric_t)metric;
    r->while_metric = FD_M_EXPOSURES;
    v = cJSON_GetObjectItemCaseSensitive(o, "while");
    if (v != NULL) {
        int wm = cJSON_IsString(v) ? fd_metric_from_name(v->valuestring) : -1;
        if (r->kind != FD_ALERT_ABSENT)
            return fd_fail(err, errlen, "%s.while: only for kind absent", what);
        if (wm < 0 || fd_metric_is_rate((fd_metric_t)wm))
            return fd_fail(err, errlen, "%s.while: must name a count (e.g. \"exposures\")", what);
        r->while_metric = (fd_metric_t)wm;
    }
    if (r->kind == FD_ALERT_ABSENT && fd_metric_is_rate(r->metric))
        return fd_fail(err, errlen, "%s.metric: kind absent needs a count (e.g. \"payments\")", what);

    v = cJSON_GetObjectItemCaseSensitive(o, "grouping");
    if (v != NULL) {
        if (!cJSON_IsArray(v))
            return fd_fail(err, errlen, "%s.grouping: must be an array of dimension names", what);
        const cJSON *d;
        cJSON_ArrayForEach (d, v) {
            int dim = cJSON_IsString(d) ? fd_dim_from_name(d->valuestring) : -1;
            if (dim < 0 || dim >= FD_DIM__COUNT)
                return fd_fail(err, errlen, "%s.grouping: unknown dimension", what);
            for (int j = 0; j < r->grouping.ndims; j++)
                if ((int)r->grouping.dims[j] == dim)
                    return fd_fail(err, errlen, "%s.grouping: dimension appears twice", what);
            r->grouping.dims[r->grouping.ndims++] = (fd_dim_t)dim;
        }
    }

    if (get_duration(o, "window", 900, what, &r->window_s, err, errlen) ||
        get_duration(o, "for", 0, what, &r->for_s, err, errlen) ||
        get_duration(o, "keep_firing_for", 0, what, &r->keep_firing_for_s, err, errlen))
        return -1;
    if (r->window_s < 60 || r->window_s % 60 != 0 || r->window_s > 31 * 86400)
        return fd_fail(err, errlen, "%s.window: must be whole minutes, 1m..31d", what);
    if (r->for_s > 31 * 86400 || r->keep_firing_for_s > 31 * 86400)
        return fd_fail(err, errlen, "%s: for and keep_firing_for must be at most 31d", what);

    const char *drop_only[] = {"baseline", "baseline_offset", "min_drop", "confidence", NULL};
    for (int i = 0; drop_only[i]; i++)
        if (r->kind != FD_ALERT_DROP && cJSON_GetObjectItemCaseSensitive(o, drop_only[i]))
            return fd_fail(err, errlen, "%s.%s: only for kind drop_vs_baseline", what, drop_only[i]);
    if (r->kind != FD_ALERT_BELOW && cJSON_GetObjectItemCaseSensitive(o, "threshold"))
        return fd_fail(err, errlen, "%s.threshold: only for kind below_threshold", what);
    if (r->kind == FD_ALERT_DROP) {
        if (get_duration(o, "baseline", 86400, what, &r->baseline_s, err, errlen) ||
            get_duration(o, "baseline_offset", 0, what, &r->baseline_offset_s, err, errlen) ||
            get_number(o, "min_drop", 0.3, 0, 1, 1, 1, what, &r->min_drop, err, errlen) ||
            get_number(o, "confidence", 0.99, 0.5, 1, 0, 1, what, &r->confidence, err, errlen))
            return -1;
        if (r->baseline_offset_s == 0 &&
            (r->baseline_s < 3600 || r->baseline_s % 3600 != 0 || r->baseline_s > 35 * 86400))
            return fd_fail(err, errlen, "%s.baseline: must be whole hours, 1h..35d", what);
        if (r->baseline_offset_s != 0 &&
            (r->baseline_offset_s < r->window_s || r->baseline_offset_s % 60 != 0 ||
             r->baseline_offset_s > 35 * 86400))
            return fd_fail(err, errlen,
                           "%s.baseline_offset: whole minutes, at least the window, at most 35d",
                           what);
    }
    if (r->kind == FD_ALERT_BELOW) {
        if (!cJSON_GetObjectItemCaseSensitive(o, "threshold"))
            return fd_fail(err, errlen, "%s.threshold: required for kind below_threshold", what);
        if (get_number(o, "threshold", 0, 0, 1e15, 1, 0, what, &r->threshold, err, errlen))
            return -1;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "min_samples");
    r->min_samples = 100;
    if (v != NULL) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e12 ||
            (double)(int64_t)v->valuedouble != v->valuedouble)
            return fd_fail(err, errlen, "%s.min_samples: must be an integer in 0..1000000000000",
                           what);
        r->min_samples = (int64_t)v->valuedouble;
    }

    v = cJSON_GetObjectItemCaseSensitive(o, "sinks");
    r->sinks = FD_ALERT_OUT_ALL;
    if (v != NULL) {
        if (!cJSON_IsArray(v))
            return fd_fail(err, errlen, "%s.sinks: must be an array of sink names", what);
        r->sinks = 0;
        const cJSON *s;
        cJSON_ArrayForEach (s, v) {
            int bit = -1;
            for (int i = 0; cJSON_IsString(s) && i < FD_ALERT_OUT__COUNT; i++)
                if (strcmp(s->valuestring, out_names[i]) == 0) bit = i;
            if (bit < 0)
                return fd_fail(err, errlen, "%s.sinks: one of stdout, kafka, alertmanager, webhook",
                               what);
            r->sinks |= 1u << bit;
        }
    }
    if (get_labels(o, "labels", what, r->labels, &r->nlabels, 1, err, errlen)) return -1;
    if (get_labels(o, "annotations", what, r->annotations, &r->nannotations, 0, err, errlen)) {
        fd_alert_rule_release(r);
        return -1;
    }
    r->name = strdup(rname);
    if (r->name == NULL) {
        fd_alert_rule_release(r);
        return fd_fail(err, errlen, "%s: out of memory", what);
    }
    return 0;
}

void *fd_alert_rule_to_json(const fd_alert_rule_t *r) {
    char buf[32];
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "name", r->name ? r->name : "");
    cJSON_AddStringToObject(o, "kind", fd_alert_kind_name(r->kind));
    cJSON_AddStringToObject(o, "metric", fd_metric_name(r->metric));
    if (r->kind == FD_ALERT_ABSENT)
        cJSON_AddStringToObject(o, "while", fd_metric_name(r->while_metric));
    cJSON *g = cJSON_AddArrayToObject(o, "grouping");
    for (int i = 0; g && i < r->grouping.ndims; i++)
        cJSON_AddItemToArray(g, cJSON_CreateString(fd_dim_name(r->grouping.dims[i])));
    fd_duration_format(r->window_s, buf, sizeof buf);
    cJSON_AddStringToObject(o, "window", buf);
    if (r->kind == FD_ALERT_DROP) {
        fd_duration_format(r->baseline_s, buf, sizeof buf);
        cJSON_AddStringToObject(o, "baseline", buf);
        fd_duration_format(r->baseline_offset_s, buf, sizeof buf);
        cJSON_AddStringToObject(o, "baseline_offset", buf);
        cJSON_AddNumberToObject(o, "min_drop", r->min_drop);
        cJSON_AddNumberToObject(o, "confidence", r->confidence);
    }
    if (r->kind == FD_ALERT_BELOW) cJSON_AddNumberToObject(o, "threshold", r->threshold);
    cJSON_AddNumberToObject(o, "min_samples", (double)r->min_samples);
    fd_duration_format(r->for_s, buf, sizeof buf);
    cJSON_AddStringToObject(o, "for", buf);
    fd_duration_format(r->keep_firing_for_s, buf, sizeof buf);
    cJSON_AddStringToObject(o, "keep_firing_for", buf);
    cJSON *l = cJSON_AddObjectToObject(o, "labels");
    for (int i = 0; l && i < r->nlabels; i++)
        cJSON_AddStringToObject(l, r->labels[i].key, r->labels[i].value);
    cJSON *a = cJSON_AddObjectToObject(o, "annotations");
    for (int i = 0; a && i < r->nannotations; i++)
        cJSON_AddStringToObject(a, r->annotations[i].key, r->annotations[i].value);
    cJSON *s = cJSON_AddArrayToObject(o, "sinks");
    for (int i = 0; s && i < FD_ALERT_OUT__COUNT; i++)
        if (r->sinks & FD_ALERT_OUT_BIT(i))
            cJSON_AddItemToArray(s, cJSON_CreateString(out_names[i]));
    return o;
}

/* ---- statistics ----------------------------------------------------------------- */

double fd_alert_z_two_prop(int64_t x1, int64_t n1, int64_t x0, int64_t n0) {
    if (n1 <= 0 || n0 <= 0) return 0;
    double p1 = (double)x1 / (double)n1, p0 = (double)x0 / (double)n0;
    double p = (double)(x1 + x0) / (double)(n1 + n0);
    if (!(p > 0) || !(p < 1)) return 0;
    double se = sqrt(p * (1 - p) * (1.0 / (double)n1 + 1.0 / (double)n0));
    return (p0 - p1) / se;
}

double fd_alert_z_counts(int64_t c, int64_t w, int64_t b, int64_t bs) {
    int64_t n = c + b;
    if (n <= 0 || w <= 0 || bs <= 0) return 0;
    double q = (double)w / (double)(w + bs);
    return ((double)n * q - (double)c) / sqrt((double)n * q * (1 - q));
}

double fd_alert_p_upper(double z) { return 0.5 * erfc(z / sqrt(2.0)); }

void fd_alert_rule_eval(const fd_alert_rule_t *r, const fd_alert_input_t *in, fd_alert_eval_t *out) {
    memset(out, 0, sizeof *out);
    out->p_value = 1;
    int rate = fd_metric_is_rate(r->metric);
    switch (r->kind) {
    case FD_ALERT_ABSENT:
        out->value = (double)in->num;
        out->baseline = (double)in->den; /* the series that keeps flowing */
        out->enough = in->den >= r->min_samples;
        out->cond = out->enough && in->num == 0;
        return;
    case FD_ALERT_BELOW:
        if (rate) {
            out->enough = in->den >= r->min_samples && in->den > 0;
            out->value = in->den > 0 ? (double)in->num / (double)in->den : 0;
        } else {
            out->enough = 1;
            out->value = (double)in->num;
        }
        out->baseline = r->threshold;
        out->cond = out->enough && out->value < r->threshold;
        return;
    case FD_ALERT_DROP: {
        if (rate) {
            out->value = in->den > 0 ? (double)in->num / (double)in->den : 0;
            out->baseline = in->base_den > 0 ? (double)in->base_num / (double)in->base_den : 0;
            out->enough = in->den >= r->min_samples && in->base_den >= r->min_samples &&
                          in->den > 0 && in->base_den > 0;
            out->z = fd_alert_z_two_prop(in->num, in->den, in->base_num, in->base_den);
        } else {
            int64_t bs = r->baseline_offset_s ? r->window_s : r->baseline_s;
            out->value = (double)in->num / (double)r->window_s;
            out->baseline = (double)in->base_num / (double)bs;
            out->enough = in->base_num >= r->min_samples && in->base_num > 0;
            out->z = fd_alert_z_counts(in->num, r->window_s, in->base_num, bs);
        }
        out->drop = out->baseline > 0 ? 1 - out->value / out->baseline : 0;
        out->p_value = fd_alert_p_upper(out->z);
        out->cond = out->enough && out->baseline > 0 && out->drop >= r->min_drop - 1e-12 &&
                    out->p_value <= 1 - r->confidence;
        return;
    }
    }
}

/* ---- state machine -------------------------------------------------------------- */

int fd_alert_step(fd_alert_status_t *s, int cond, int64_t t, int64_t for_ms, int64_t keep_ms) {
    if (s->last_eval != 0 && t <= s->last_eval) return -1;
    s->last_eval = t;
    switch (s->state) {
    case FD_AS_INACTIVE:
    case FD_AS_RESOLVED:
        if (!cond) return -1;
        s->active_since = t;
        s->keep_since = 0;
        if (for_ms <= 0) {
            s->state = FD_AS_FIRING;
            s->fired_at = t;
        } else {
            s->state = FD_AS_PENDING;
        }
        return (int)s->state;
    case FD_AS_PENDING:
        if (!cond) {
            s->state = FD_AS_INACTIVE;
            s->active_since = 0;
            return FD_AS_INACTIVE;
        }
        if (t - s->active_since >= for_ms) {
            s->state = FD_AS_FIRING;
            s->fired_at = t;
            return FD_AS_FIRING;
        }
        return -1;
    case FD_AS_FIRING:
        if (cond) {
            s->keep_since = 0;
            return -1;
        }
        if (keep_ms > 0) {
            if (s->keep_since == 0) s->keep_since = t;
            if (t - s->keep_since < keep_ms) return -1;
        }
        s->state = FD_AS_RESOLVED;
        s->resolved_at = t;
        s->keep_since = 0;
        return FD_AS_RESOLVED;
    }
    return -1;
}

/* ---- fingerprint ---------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t fd_alert_fingerprint(const char *alertname, const char *const *keys,
                              const char *const *vals, int n, char out[17]) {
    int idx[FD_ALERT_MAX_LABELS * 2 + FD_DIM__COUNT];
    int m = n < (int)(sizeof idx / sizeof idx[0]) ? n : (int)(sizeof idx / sizeof idx[0]);
    for (int i = 0; i < m; i++) idx[i] = i;
    for (int i = 1; i < m; i++) { /* insertion sort by key, then value */
        int x = idx[i], j = i - 1;
        while (j >= 0) {
            int c = strcmp(keys[idx[j]], keys[x]);
            if (c < 0 || (c == 0 && strcmp(vals[idx[j]], vals[x]) <= 0)) break;
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = x;
    }
    uint64_t h = 14695981039346656037ULL;
    h = fnv(h, "alertname", 10);
    h = fnv(h, alertname, strlen(alertname) + 1);
    for (int i = 0; i < m; i++) {
        h = fnv(h, keys[idx[i]], strlen(keys[idx[i]]) + 1);
        h = fnv(h, vals[idx[i]], strlen(vals[idx[i]]) + 1);
    }
    if (out != NULL) snprintf(out, 17, "%016" PRIx64, h);
    return h;
}
