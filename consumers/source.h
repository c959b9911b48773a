/*
 * source.h — the whole source contract, both directions.
 *
 * A source (Kafka: kafka_source.c; JSON Lines files: file_source.c) hands
 * raw messages to whoever consumes them through fd_source_cbs_t, and is
 * steered by them through fd_source_ops_t. Neither side includes the
 * other: the pipeline provides the callbacks (fd_pipeline_source_cbs()),
 * each source provides its ops (fd_kafka_source_ops(),
 * fd_file_source_ops()), and app/ wires the two.
 *
 * src_key is the source's own key for a partition (Kafka: topic index;
 * files: file index). Offsets are the source's: Kafka offsets, or 0-based
 * line numbers. Every call happens on the loop thread.
 */
#ifndef FD_SOURCE_H
#define FD_SOURCE_H

#include <stddef.h>
#include <stdint.h>

/* How the consumer steers its source. */
typedef struct {
    int (*pause)(void *src, int src_key, int32_t partition, int pause);
    int (*seek)(void *src, int src_key, int32_t partition, int64_t offset); /* -1: beginning */
    void (*commit)(void *src, int src_key, int32_t partition, int64_t offset); /* may be NULL */
    void (*stop)(void *src);
    int (*exhausted)(void *src); /* NULL for an endless source */
    /* hold 1: deliver no message until hold 0, keeping what the source has
     * already fetched (librdkafka's pause throws its prefetched messages
     * away, and resume fetches them again). The pipeline's routine flow
     * control (a partition's next batch full, max_pending_events) holds;
     * pause stays for partition states (syncing, halted, stopping). NULL:
     * the pipeline pauses partitions instead. */
    void (*hold)(void *src, int hold);
} fd_source_ops_t;

/* What a source calls. */
typedef struct {
    void (*on_message)(void *ud, int src_key, int32_t partition, int64_t offset,
                       const void *payload, size_t len);
    /* Newly assigned partitions: fill offsets[i] with the next offset to read
     * (-1: from the beginning). Return 0, or < 0 if the offsets are unknown
     * now: the partitions are then assigned paused, and the consumer seeks
     * and resumes them later. NULL for a source whose partitions are fixed. */
    int (*on_assign)(void *ud, int n, const int *src_key, const int32_t *partitions,
                     int64_t *offsets);
    void (*on_revoke)(void *ud, int n, const int *src_key, const int32_t *partitions);
} fd_source_cbs_t;

#endif
