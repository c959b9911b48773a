/*
 * file_source.h — JSON Lines files as partitions (`funneld replay`).
 *
 * Each file is one partition whose offsets are its 0-based line numbers, so
 * a replay is effectively-once exactly like the Kafka path: re-running it
 * over the same files changes nothing, and an interrupted replay resumes.
 * Files are read whole into memory with a line index (8 bytes per line);
 * an idle handle delivers up to 4096 lines per loop turn from each
 * unpaused file. "-" reads standard input.
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

#endif
