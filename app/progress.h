/*
 * progress.h — private to app/: `replay`'s progress line on a terminal.
 *
 * One line on a terminal (stderr), redrawn in place ("\r") by a libuv
 * timer on the daemon's loop every FD_PROGRESS_MS: lines and bytes read so
 * far, events accepted and rejected, and, when the input's size is known
 * (regular files), the percentage and a bar. fd_progress_finish() draws it
 * a last time and ends it with a newline, so what the terminal shows after
 * it (the totals log line) starts on a line of its own. While the line is
 * up, log lines erase it before they print (fd_log_set_erase), and the
 * next tick draws it again below them.
 *
 * Only for people: app/daemon.c makes one only when stderr is a terminal,
 * so a log that goes to a file or a pipe never carries it. Memory: the
 * handle and one line buffer. The timer is unreferenced: it never keeps
 * the loop alive.
 */
#ifndef FD_PROGRESS_H
#define FD_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "base/log.h"

#define FD_PROGRESS_MS 200

typedef struct {
    int64_t lines, lines_total; /* delivered to the pipeline / in the input */
    uint64_t bytes, bytes_total;
    int sized; /* the input's size was known beforehand: show % and a bar */
    uint64_t accepted, rejected; /* by the pipeline, so far */
} fd_progress_sample_t;

/* Fills *s with the numbers as of now (loop thread). */
typedef void (*fd_progress_sample_fn)(void *ud, fd_progress_sample_t *s);

typedef struct fd_progress fd_progress_t;

/* Draws on out (a terminal) from loop's timer until fd_progress_finish.
 * Borrows loop, out and log (sets fd_log_set_erase on log until finished). */
fd_progress_t *fd_progress_new(uv_loop_t *loop, FILE *out, fd_log_t *log,
                               fd_progress_sample_fn sample, void *ud, char *err, size_t errlen);
/* Draws the final line and a newline, stops the timer, stops log erasing.
 * Once; later calls do nothing. */
void fd_progress_finish(fd_progress_t *p);
/* Closes the timer (the memory goes when the loop has closed it). NULL is
 * fine; an unfinished progress line is erased, not drawn (the sample's
 * objects may be gone). */
void fd_progress_free(fd_progress_t *p);

/* The line for s, at most width - 1 columns (the last column stays empty:
 * writing into it wraps some terminals), NUL-terminated in buf. Returns its
 * length. Pure: tests/unit/test_progress.c. */
size_t fd_progress_format(const fd_progress_sample_t *s, int width, char *buf, size_t len);

#endif
