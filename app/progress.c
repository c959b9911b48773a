/*
 * progress.c — `replay`'s progress line (see progress.h).
 *
 * The line, at most one column short of the terminal's width (read on
 * each draw, so a resized window is followed):
 *
 *   replay  42% [############....................]  8400 lines  1.2/2.9 MiB  accepted 8390  rejected 10
 *   replay  8400 lines  1.2 MiB  accepted 8390  rejected 10      (size unknown: stdin, a pipe)
 *
 * The bar (up to BAR_MAX columns) shrinks, then goes, when the window is
 * narrow; what still does not fit is cut at the right. The percentage is of bytes (the size is
 * what a regular file tells before it is read) and shows 100% only when
 * everything has been delivered.
 */
#include "app/progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define BAR_MAX 30
#define BAR_MIN 8

struct fd_progress {
    uv_timer_t timer;
    FILE *out;
    fd_log_t *log;
    fd_progress_sample_fn sample;
    void *ud;
    int finished;
};

/* "1.2/2.9 MiB": both in the unit of the total (none: "1.2 MiB"). */
static void fmt_bytes(uint64_t b, uint64_t total, int with_total, char *buf, size_t len) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    uint64_t ref = with_total ? total : b;
    double div = 1;
    int u = 0;
    while (ref >= 1024 * div && u < 4) {
        div *= 1024;
        u++;
    }
    if (u == 0 && with_total)
        snprintf(buf, len, "%llu/%llu B", (unsigned long long)b, (unsigned long long)total);
    else if (u == 0) snprintf(buf, len, "%llu B", (unsigned long long)b);
    else if (with_total)
        snprintf(buf, len, "%.1f/%.1f %s", (double)b / div, (double)total / div, units[u]);
    else snprintf(buf, len, "%.1f %s", (double)b / div, units[u]);
}

static void fmt_tail(const fd_progress_sample_t *s, char *buf, size_t len) {
    char b[64];
    fmt_bytes(s->bytes, s->bytes_total, s->sized, b, sizeof b);
    snprintf(buf, len, "%lld lines  %s  accepted %llu  rejected %llu", (long long)s->lines, b,
             (unsigned long long)s->accepted, (unsigned long long)s->rejected);
}

size_t fd_progress_format(const fd_progress_sample_t *s, int width, char *buf, size_t len) {
    if (len == 0) return 0;
    size_t cols = width > 1 ? (size_t)width - 1 : 79;
    if (cols > len - 1) cols = len - 1;
    char tail[256], line[512];
    fmt_tail(s, tail, sizeof tail);
    size_t n;
    if (s->sized) {
        /* 100% only once every byte is delivered; an empty input is done */
        double frac = s->bytes_total ? (double)s->bytes / (double)s->bytes_total : 1.0;
        if (frac > 1) frac = 1;
        int pct = (int)(frac * 100);
        if (pct == 100 && s->bytes < s->bytes_total) pct = 99;
        n = (size_t)snprintf(line, sizeof line, "replay %3d%%  ", pct);
        /* the bar's width is set by the line as it will be at the end, so
         * it stays put while the numbers grow */
        fd_progress_sample_t end = *s;
        end.lines = s->lines_total > s->lines ? s->lines_total : s->lines;
        end.bytes = s->bytes_total;
        if ((int64_t)end.accepted < end.lines) end.accepted = (uint64_t)end.lines;
        char end_tail[256];
        fmt_tail(&end, end_tail, sizeof end_tail);
        size_t fixed = n + 3 + strlen(end_tail); /* "[" "]  " around the bar */
        size_t bar = cols > fixed ? cols - fixed : 0;
        if (bar > BAR_MAX) bar = BAR_MAX;
        if (bar >= BAR_MIN) {
            size_t fill = (size_t)(frac * (double)bar);
            line[n - 1] = '[';
            for (size_t i = 0; i < bar; i++) line[n++] = i < fill ? '#' : '.';
            line[n++] = ']';
            line[n++] = ' ';
            line[n++] = ' ';
        }
    } else {
        n = (size_t)snprintf(line, sizeof line, "replay  ");
    }
    snprintf(line + n, sizeof line - n, "%s", tail);
    n = strlen(line);
    if (n > cols) n = cols;
    memcpy(buf, line, n);
    buf[n] = 0;
    return n;
}

static int term_width(FILE *out) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

/* "\r", the line, then erase what a longer previous line left behind. */
static void draw(fd_progress_t *p, const char *end) {
    fd_progress_sample_t s;
    memset(&s, 0, sizeof s);
    p->sample(p->ud, &s);
    char line[520];
    line[0] = '\r';
    size_t n = 1 + fd_progress_format(&s, term_width(p->out), line + 1, sizeof line - 8);
    n += (size_t)snprintf(line + n, sizeof line - n, "\033[K%s", end);
    fwrite(line, 1, n, p->out); /* one write, like a log line */
    fflush(p->out);
}

static void tick(uv_timer_t *t) { draw(t->data, ""); }

fd_progress_t *fd_progress_new(uv_loop_t *loop, FILE *out, fd_log_t *log,
                               fd_progress_sample_fn sample, void *ud, char *err, size_t errlen) {
    fd_progress_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->out = out;
    p->log = log;
    p->sample = sample;
    p->ud = ud;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_unref((uv_handle_t *)&p->timer);
    /* the first draw on the loop's first turn, then every FD_PROGRESS_MS */
    uv_timer_start(&p->timer, tick, 0, FD_PROGRESS_MS);
    fd_log_set_erase(log, 1);
    return p;
}

void fd_progress_finish(fd_progress_t *p) {
    if (!p || p->finished) return;
    p->finished = 1;
    uv_timer_stop(&p->timer);
    draw(p, "\n");
    fd_log_set_erase(p->log, 0);
}

static void on_close(uv_handle_t *h) { free(h->data); }

void fd_progress_free(fd_progress_t *p) {
    if (!p) return;
    if (!p->finished) { /* what the sample reads may be gone: just clear the line */
        p->finished = 1;
        uv_timer_stop(&p->timer);
        fputs("\r\033[K", p->out);
        fflush(p->out);
        fd_log_set_erase(p->log, 0);
    }
    uv_close((uv_handle_t *)&p->timer, on_close);
}
