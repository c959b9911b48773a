/*
 * file_source.c — JSON Lines files as partitions (see file_source.h).
 *
 * A line is the bytes up to '\n' (a trailing '\r' stays part of the line
 * and is JSON whitespace). A final line without '\n' counts; the empty
 * string after a final '\n' does not.
 */
#include "consumers/file_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PER_TURN 4096

typedef struct {
    char *data;
    size_t len;
    size_t *starts; /* nlines + 1 entries: line i is [starts[i], starts[i+1] - 1) */
    int64_t nlines, cursor;
    int32_t partition;
    int paused;
    int regular; /* a regular file: its size was known before reading */
} file_t;

struct fd_file_source {
    fd_source_cbs_t cbs;
    void *ud;
    file_t *files;
    int nfiles;
    uv_idle_t idle;
    int stopped, idle_open;
};

static int load(file_t *f, const char *path, char *err, size_t errlen) {
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    f->regular = fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode);
    size_t cap = 1 << 20;
    f->data = malloc(cap);
    size_t n;
    while (f->data && (n = fread(f->data + f->len, 1, cap - f->len, fp)) > 0) {
        f->len += n;
        if (f->len == cap) {
            char *d = realloc(f->data, cap * 2);
            if (!d) {
                free(f->data);
                f->data = NULL;
                break;
            }
            f->data = d;
            cap *= 2;
        }
    }
    int rerr = ferror(fp);
    if (fp != stdin) fclose(fp);
    if (!f->data || rerr) {
        snprintf(err, errlen, "%s: read failed", path);
        return -1;
    }
    size_t lines = 0;
    for (size_t i = 0; i < f->len; i++) lines += f->data[i] == '\n';
    if (f->len && f->data[f->len - 1] != '\n') lines++;
    f->starts = malloc((lines + 1) * sizeof(size_t));
    if (!f->starts) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t li = 0, start = 0;
    for (size_t i = 0; i < f->len; i++)
        if (f->data[i] == '\n') {
            f->starts[li++] = start;
            start = i + 1;
        }
    if (start < f->len) f->starts[li++] = start;
    /* the end of the last line, as if it had a '\n' */
    f->starts[li] = (f->len && f->data[f->len - 1] != '\n') ? f->len + 1 : f->len;
    f->nlines = (int64_t)li;
    f->paused = 1;
    return 0;
}

static void idle_cb(uv_idle_t *h) {
    fd_file_source_t *s = h->data;
    int busy = 0;
    for (int i = 0; i < s->nfiles && !s->stopped; i++) {
        file_t *f = &s->files[i];
        for (int k = 0; k < PER_TURN && !f->paused && f->cursor < f->nlines && !s->stopped; k++) {
            int64_t line = f->cursor++;
            size_t a = f->starts[line], b = f->starts[line + 1] - 1;
            s->cbs.on_message(s->ud, i, f->partition, line, f->data + a, b - a);
        }
        if (!f->paused && f->cursor < f->nlines) busy = 1;
    }
    if (!busy) uv_idle_stop(&s->idle);
}

static void kick(fd_file_source_t *s) {
    if (!s->stopped) uv_idle_start(&s->idle, idle_cb);
}

static int op_pause(void *src, int key, int32_t partition, int pause) {
    fd_file_source_t *s = src;
    if (key < 0 || key >= s->nfiles) return -EINVAL;
    s->files[key].paused = pause;
    if (!pause) kick(s);
    return 0;
}

static int op_seek(void *src, int key, int32_t partition, int64_t offset) {
    fd_file_source_t *s = src;
    if (key < 0 || key >= s->nfiles) return -EINVAL;
    file_t *f = &s->files[key];
    f->cursor = offset < 0 ? 0 : offset > f->nlines ? f->nlines : offset;
    return 0;
}

static void op_stop(void *src) {
    fd_file_source_t *s = src;
    s->stopped = 1;
    uv_idle_stop(&s->idle);
}

static int op_exhausted(void *src) {
    fd_file_source_t *s = src;
    for (int i = 0; i < s->nfiles; i++)
        if (s->files[i].cursor < s->files[i].nlines) return 0;
    return 1;
}

void fd_file_source_progress(const fd_file_source_t *s, fd_file_progress_t *out) {
    memset(out, 0, sizeof *out);
    out->sized = 1;
    for (int i = 0; i < s->nfiles; i++) {
        const file_t *f = &s->files[i];
        size_t done = f->starts ? f->starts[f->cursor] : 0;
        out->lines += f->cursor;
        out->lines_total += f->nlines;
        out->bytes += done < f->len ? done : f->len; /* the last line may lack its '\n' */
        out->bytes_total += f->len;
        out->sized &= f->regular;
    }
}

static const fd_source_ops_t ops = {op_pause, op_seek, NULL, op_stop, op_exhausted, NULL};

const fd_source_ops_t *fd_file_source_ops(void) { return &ops; }

fd_file_source_t *fd_file_source_new(uv_loop_t *loop, const fd_source_cbs_t *cbs, void *ud, int n,
                                     const char *const *paths, const int32_t *partitions, char *err,
                                     size_t errlen) {
    fd_file_source_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cbs = *cbs;
    s->ud = ud;
    s->files = calloc((size_t)n, sizeof(file_t));
    s->nfiles = n;
    if (!s->files) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++)
        if (load(&s->files[i], paths[i], err, errlen) < 0) goto fail;
        else s->files[i].partition = partitions[i];
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    s->idle_open = 1;
    return s;
fail:
    fd_file_source_free(s);
    return NULL;
}

static void on_close(uv_handle_t *h) {
    fd_file_source_t *s = h->data;
    for (int i = 0; i < s->nfiles; i++) {
        free(s->files[i].data);
        free(s->files[i].starts);
    }
    free(s->files);
    free(s);
}

void fd_file_source_free(fd_file_source_t *s) {
    if (!s) return;
    if (s->idle_open) {
        uv_close((uv_handle_t *)&s->idle, on_close);
        return;
    }
    s->idle.data = s;
    on_close((uv_handle_t *)&s->idle);
}
