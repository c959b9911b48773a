/*
 * rawconsume.c — the "raw consume" baseline of bench/e2e.sh.
 *
 * Assigns every partition of the named topics from the beginning (no
 * consumer group, no commits), reads until each partition has reported end
 * of partition, and drops every message: what reading the topics costs with
 * no processing at all. librdkafka properties as funneld's consumer uses
 * them, plus any -X NAME=VALUE. Prints "messages bytes seconds" on stdout.
 *
 * Memory: librdkafka's prefetch queue (queued.max.messages.kbytes).
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    char err[512];
    const char *brokers = NULL;
    const char *topics[64];
    int ntopics = 0;
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *defaults[] = {"group.id",
                              "bench-rawconsume",
                              "enable.auto.commit",
                              "false",
                              "enable.auto.offset.store",
                              "false",
                              "enable.partition.eof",
                              "true",
                              NULL};
    for (int i = 0; defaults[i]; i += 2)
        rd_kafka_conf_set(kc, defaults[i], defaults[i + 1], err, sizeof err);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
            brokers = argv[++i];
        } else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
            char *kv = argv[++i], *eq = strchr(kv, '=');
            if (!eq) return 2;
            *eq = 0;
            if (rd_kafka_conf_set(kc, kv, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "bench-rawconsume: %s\n", err);
                return 2;
            }
        } else if (argv[i][0] != '-' && ntopics < 64) {
            topics[ntopics++] = argv[i];
        } else {
            fprintf(stderr, "usage: bench-rawconsume --brokers LIST [-X k=v] TOPIC...\n");
            return 2;
        }
    }
    if (!brokers || !ntopics) {
        fprintf(stderr, "usage: bench-rawconsume --brokers LIST [-X k=v] TOPIC...\n");
        return 2;
    }
    rd_kafka_conf_set(kc, "bootstrap.servers", brokers, err, sizeof err);
    double t0 = mono_s();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench-rawconsume: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(16);
    for (int t = 0; t < ntopics; t++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            md->topic_cnt != 1 || md->topics[0].partition_cnt == 0) {
            fprintf(stderr, "bench-rawconsume: no metadata for %s\n", topics[t]);
            return 1;
        }
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(tl, topics[t], md->topics[0].partitions[p].id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    int remaining = tl->cnt;
    rd_kafka_assign(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    uint64_t msgs = 0, bytes = 0;
    while (remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            remaining--;
        } else if (m->err) {
            fprintf(stderr, "bench-rawconsume: %s\n", rd_kafka_message_errstr(m));
        } else {
            msgs++;
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    double el = mono_s() - t0;
    printf("%" PRIu64 " %" PRIu64 " %.3f\n", msgs, bytes, el);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
