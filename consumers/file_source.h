/*
 * file_source.h — JSON Lines files as partitions (`funneld replay`).
 *
 * Each file is one partition whose offsets are its 0-based line numbers, so
 * a replay is effectively-once exactly like the Kafka path: re-running it
 * over the same files changes nothing, and an interrupted replay resumes.
 * Files are read whole into memory with a line index (8 bytes per line);
 * an idle handle delivers up to 4096 lines per loop turn from each
 * unpaused file. "-" reads standard input (whole, before the replay starts).
 * fd_file_source_progress() says how far the files have been delivered,
 * for `replay`'s progress line (app/progress.c).
 */
#ifndef FD_FILE_SOURCE_H
#define FD_FILE_SOURCE_H

#include <stdint.h>
#include <uv.h>

#include "consumers/source.h"

typedef struct fd_file_source fd_file_source_t;

/* Borrows loop; cbs is copied (only on_message is called: the partitions
 * are fixed). File i is delivered as (src_key i, partitions[i]) to
 * cbs->on_message(ud, ...). The files start paused. */
fd_file_source_t *fd_file_source_new(uv_loop_t *loop, const fd_source_cbs_t *cbs, void *ud, int n,
                                     const char *const *paths, const int32_t *partitions, char *err,
                                     size_t errlen);
void fd_file_source_free(fd_file_source_t *s);
const fd_source_ops_t *fd_file_source_ops(void);

/* How far the files are, summed over all of them: the position (lines up
 * to each file's cursor, and the bytes of those lines) and the totals.
 * sized is 1 when every input is a regular file, whose size is known before
 * it is read; 0 when one is a pipe or a terminal (e.g. "-"), whose totals
 * are only what happened to arrive. */
typedef struct {
    int64_t lines, lines_total;
    uint64_t bytes, bytes_total;
    int sized;
} fd_file_progress_t;

void fd_file_source_progress(const fd_file_source_t *s, fd_file_progress_t *out);

#endif
