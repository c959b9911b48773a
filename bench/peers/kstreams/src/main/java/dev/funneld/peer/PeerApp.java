/*
 * PeerApp — a Kafka Streams job computing what funneld's per-minute
 * counters hold, for bench/peer.sh to measure side by side with funneld.
 *
 * For every message of the input topics: parse the JSON (Jackson), skip it
 * unless it has event_id, type, an integer ts, user_id and product_id (and
 * for payments order_id and amount); then, for each default grouping whose
 * dimensions the event carries (all; product; product,channel;
 * product,community; campaign), emit one delta keyed "{scope}|{minute}":
 * exposures, interactions, paid payments, revenue. The deltas are
 * repartitioned by key and summed into a persistent (RocksDB) key-value
 * store with a changelog topic: the idiomatic Kafka Streams shape of
 * "per-minute counts per scope".
 *
 * It does less than funneld (no h1/d1 buckets, no distinct users, no payment
 * deduplication, no lateness, lighter validation), which favours the peer.
 *
 * Drained: once every input message has been read (expected count given on
 * the command line) and every delta it produced has been applied to the
 * store, it prints "DRAINED <epoch ms> <inputs> <deltas>" and exits.
 *
 * usage: PeerApp BOOTSTRAP APPLICATION_ID TOPICS(comma) EXPECTED STATE_DIR [THREADS]
 */
package dev.funneld.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueStore;

public final class PeerApp {
    static final AtomicLong inputs = new AtomicLong();
    static final AtomicLong deltasOut = new AtomicLong();
    static final AtomicLong deltasApplied = new AtomicLong();
    static final ObjectMapper JSON = new ObjectMapper();

    /** exposures, interactions, payments, revenue as 4 longs, 32 bytes. */
    static final class CountsSerde implements Serde<long[]> {
        public Serializer<long[]> serializer() {
            return (topic, v) -> {
                if (v == null) return null;
                ByteBuffer b = ByteBuffer.allocate(32);
                for (long x : v) b.putLong(x);
                return b.array();
            };
        }

        public Deserializer<long[]> deserializer() {
            return (topic, d) -> {
                if (d == null) return null;
                ByteBuffer b = ByteBuffer.wrap(d);
                return new long[] {b.getLong(), b.getLong(), b.getLong(), b.getLong()};
            };
        }
    }

    static String text(JsonNode e, String f) {
        JsonNode n = e.get(f);
        if (n == null || n.isNull()) return null;
        if (!n.isTextual()) return null;
        String s = n.asText();
        return s.isEmpty() ? null : s;
    }

    static List<KeyValue<String, long[]>> deltas(byte[] value) {
        inputs.incrementAndGet();
        List<KeyValue<String, long[]>> out = new ArrayList<>(5);
        JsonNode e;
        try {
            e = JSON.readTree(value);
        } catch (Exception ex) {
            return out;
        }
        if (e == null || !e.isObject()) return out;
        String type = text(e, "type"), product = text(e, "product_id");
        JsonNode ts = e.get("ts"), user = e.get("user_id");
        if (type == null || product == null || text(e, "event_id") == null || ts == null || !ts.isIntegralNumber()
                || user == null || user.isNull()) return out;
        long[] d = new long[4];
        switch (type) {
            case "exposure": d[0] = 1; break;
            case "interaction":
                if (text(e, "action") == null) return out;
                d[1] = 1;
                break;
            case "payment": {
                JsonNode amount = e.get("amount");
                if (text(e, "order_id") == null || amount == null || !amount.isIntegralNumber()) return out;
                boolean refunded = "refunded".equals(text(e, "status"));
                d[2] = refunded ? 0 : 1;
                d[3] = refunded ? -amount.asLong() : amount.asLong();
                break;
            }
            default: return out;
        }
        long minute = Math.floorDiv(ts.asLong(), 60000L) * 60L;
        String channel = text(e, "channel"), community = text(e, "community_id"), campaign = text(e, "campaign_id");
        String suffix = "|" + minute;
        out.add(KeyValue.pair("all" + suffix, d));
        out.add(KeyValue.pair("product=" + product + suffix, d));
        if (channel != null) out.add(KeyValue.pair("product=" + product + ",channel=" + channel + suffix, d));
        if (community != null) out.add(KeyValue.pair("product=" + product + ",community=" + community + suffix, d));
        if (campaign != null) out.add(KeyValue.pair("campaign=" + campaign + suffix, d));
        deltasOut.addAndGet(out.size());
        return out;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: PeerApp BOOTSTRAP APPLICATION_ID TOPICS EXPECTED STATE_DIR [THREADS]");
            System.exit(2);
        }
        long expected = Long.parseLong(args[3]);
        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.length > 5 ? args[5] : "1");
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "1000"); /* funneld flushes every 1 s */
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), "6000");
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "1");

        Serde<long[]> counts = new CountsSerde();
        StreamsBuilder b = new StreamsBuilder();
        b.stream(Arrays.asList(args[2].split(",")), Consumed.with(Serdes.Bytes(), Serdes.ByteArray()))
                .flatMap((Bytes k, byte[] v) -> deltas(v))
                .groupByKey(Grouped.with(Serdes.String(), counts))
                .aggregate(() -> new long[4], (key, d, acc) -> {
                    for (int i = 0; i < 4; i++) acc[i] += d[i];
                    deltasApplied.incrementAndGet();
                    return acc;
                }, Materialized.<String, long[], KeyValueStore<Bytes, byte[]>>as("m1-counts")
                        .withKeySerde(Serdes.String()).withValueSerde(counts));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(done::countDown));
        streams.setUncaughtExceptionHandler(ex -> {
            ex.printStackTrace();
            done.countDown();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_APPLICATION;
        });
        streams.start();
        long lastReport = 0;
        while (!done.await(20, TimeUnit.MILLISECONDS)) {
            long in = inputs.get(), out = deltasOut.get(), applied = deltasApplied.get();
            if (in >= expected && applied >= out) {
                System.out.println("DRAINED " + System.currentTimeMillis() + " " + in + " " + applied);
                System.out.flush();
                break;
            }
            long now = System.currentTimeMillis();
            if (now - lastReport > 5000) {
                System.err.println("peer: inputs " + in + "/" + expected + " deltas " + applied + "/" + out);
                lastReport = now;
            }
        }
        streams.close(Duration.ofSeconds(20));
        System.exit(0);
    }
}
