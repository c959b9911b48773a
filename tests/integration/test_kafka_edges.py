"""
test_kafka_edges.py — funneld at the edges of its Kafka clients, on the real
broker and redis-server of the session stack, with small crafted streams
(not the 200k session stream, which none of these are about).

- A burst of rejects fills a deliberately small dead-letter producer queue
  (queue.buffering.max.messages=20): funneld must pause its input and wait
  for acknowledgements, never fail and resync; every reject is in the DLQ
  exactly once and the counters are exact.
- A 1,040,000-byte message (accepted by the broker, too_large for funneld,
  larger than librdkafka's default producer message.max.bytes) leaves the
  stream: its DLQ copy is truncated to kafka.dlq_max_message_bytes with
  headers truncated=true and original.size; the partition is not stuck.
  Same when the DLQ topic's own max.message.bytes is smaller than the copy.
- A partition added to an input topic mid-stream is consumed within the
  30 s metadata refresh funneld sets (librdkafka's default is 300 s).
- Log hygiene: no CONFWARN from properties meant for the other client, one
  line per librdkafka problem (not FAIL + ERROR), and problems of retry
  loops (unreachable brokers, unreachable Redis) at most once per 10 s each.
"""

import calendar
import collections
import json
import re
import time

from alert_receivers import free_port
from crafted import lctx  # noqa: F401 (fixture)
from conftest import (create_topics, produce_lines, read_counters,
                      read_topic, scaled, wait_drained, _kafka)

LOG_REPEAT_S = 10  # FD_LOG_REPEAT_MS in base/log.h
LINE = re.compile(r'^ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z level=(debug|info|warn|error) msg="[^"]*"')


def exposure(i, now_ms, product="p1"):
    return json.dumps({"event_id": "e%d" % i, "ts": now_ms, "user_id": "u%d" % (i % 97),
                       "product_id": product}, separators=(",", ":")).encode()


def log_lines(fd):
    return fd.log_path.read_bytes().decode(errors="replace").splitlines()


def check_log_clean(fd):
    """No resync, no CONFWARN, every line logfmt; returns the totals line."""
    lines = log_lines(fd)
    bad = [l for l in lines if not LINE.match(l)]
    assert not bad, "lines that are not logfmt:\n" + "\n".join(bad[:5])
    resyncs = [l for l in lines if 'msg="partition resync"' in l]
    assert not resyncs, "resyncs:\n" + "\n".join(resyncs[:5])
    confwarn = [l for l in lines if "CONFWARN" in l]
    assert not confwarn, "CONFWARN:\n" + "\n".join(confwarn[:5])
    totals = [l for l in lines if 'msg="totals"' in l]
    assert len(totals) == 1, fd.tail()
    return totals[0]


def assert_exposures(r, prefix, scopes, n):
    """Every counter key of the run: `scopes` scopes x m1/h1/d1, each exactly
    {"exposures": n} (all events share one ts, so one bucket each)."""
    counters = read_counters(r, prefix)
    assert len(counters) == 3 * scopes, sorted(counters)
    wrong = {k: v for k, v in counters.items() if v != {"exposures": n}}
    assert not wrong, "counters differ from {'exposures': %d}: %s" % (n, wrong)


def dlq_by_source(bootstrap, dlq):
    got = collections.defaultdict(list)
    for _, _, value, hdr in read_topic(bootstrap, dlq):
        got[(hdr.get("source.topic"), int(hdr.get("source.partition")),
             int(hdr.get("source.offset")))].append((value, hdr))
    return got


def test_dlq_queue_full_backpressure(lctx, stack):
    """3,000 rejects against a 20-message producer queue: pause, not resync."""
    topic = "ke.bp." + lctx.group
    create_topics(stack.bootstrap, {topic: 2})
    now = int(time.time() * 1000)
    # rejects alternate with valid events so that every flushed batch also
    # carries counters (a batch of rejects alone is the flush-argument shape
    # covered by the sanitizer test of the Redis sink)
    lines, rejects = {}, {}
    for p in range(2):
        lines[p] = []
        for i in range(3000):
            if i % 2:
                v = b"not json %d/%d" % (p, i)
                rejects[(topic, p, i)] = v
            else:
                v = exposure(p * 10000 + i, now)
            lines[p].append(v)
    produce_lines(stack.bootstrap, [(topic, p, lines[p], 0) for p in range(2)])
    fd = lctx.start(lctx.config({topic: "exposure"},
                                props={"queue.buffering.max.messages": "20"}))
    r = stack.redis()
    wait_drained(r, lctx.prefix, lctx.group, {"%s:%d" % (topic, p): 3000 for p in range(2)},
                 [fd], timeout=90)
    rc = fd.stop()
    assert rc == 0, "exit %s\n%s" % (rc, fd.tail())

    totals = check_log_clean(fd)
    assert "accepted=3000 " in totals and "rejected=3000 " in totals and "resyncs=0" in totals, totals
    # the queue did fill: otherwise this test proves nothing
    assert any('msg="dead-letter queue full' in l for l in log_lines(fd)), fd.tail()
    assert_exposures(r, lctx.prefix, 2, 3000)
    got = dlq_by_source(stack.bootstrap, lctx.dlq)
    assert set(got) == set(rejects), "DLQ sources: %d, expected %d; missing %s, extra %s" % (
        len(got), len(rejects), sorted(set(rejects) - set(got))[:5], sorted(set(got) - set(rejects))[:5])
    twice = {k: len(v) for k, v in got.items() if len(v) != 1}
    assert not twice, "in the DLQ more than once: %s" % sorted(twice.items())[:5]
    for k, [(value, hdr)] in got.items():
        assert value == rejects[k] and hdr.get("reason") == "invalid_json", (k, value, hdr)
        assert "truncated" not in hdr, hdr


def produce_big(bootstrap, topic, values):
    """Produces values in order to partition 0 with a producer allowed to send
    what the broker accepts (its default limit is 1,048,588 bytes)."""
    ck = _kafka()
    prod = ck.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                        "message.max.bytes": 2000000})
    errs = []
    for v in values:
        prod.produce(topic, value=v, partition=0,
                     on_delivery=lambda err, msg: errs.append(err))
    assert prod.flush(scaled(60)) == 0
    assert errs == [None] * len(values), errs


def big_payload(n):
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def run_big(lctx, stack, topic, values):
    now = int(time.time() * 1000)
    values = [exposure(0, now)] + values + [exposure(1, now)]
    produce_big(stack.bootstrap, topic, values)
    fd = lctx.start(lctx.config({topic: "exposure"}))
    r = stack.redis()
    wait_drained(r, lctx.prefix, lctx.group, {"%s:0" % topic: len(values)}, [fd], timeout=60)
    rc = fd.stop()
    assert rc == 0, "exit %s\n%s" % (rc, fd.tail())
    check_log_clean(fd)
    assert_exposures(r, lctx.prefix, 2, 2)
    got = dlq_by_source(stack.bootstrap, lctx.dlq)
    assert sorted(got) == [(topic, 0, i + 1) for i in range(len(values) - 2)], sorted(got)
    assert all(len(v) == 1 for v in got.values()), {k: len(v) for k, v in got.items()}
    return {k[2]: v[0] for k, v in got.items()}


def test_dlq_truncates_message_too_large_for_producer(lctx, stack):
    """A 1,040,000-byte message goes to the DLQ as its first 1,000,000 bytes."""
    topic = "ke.big." + lctx.group
    create_topics(stack.bootstrap, {topic: 1})
    big = big_payload(1040000)
    got = run_big(lctx, stack, topic, [big])
    value, hdr = got[1]
    assert hdr.get("reason") == "too_large", hdr
    assert hdr.get("truncated") == "true" and hdr.get("original.size") == "1040000", hdr
    assert len(value) == 1000000 and value == big[:1000000]


def test_dlq_truncates_for_small_dlq_topic(lctx, stack):
    """The DLQ topic takes at most 100,000 bytes: a 200,000-byte reject goes
    shorter until the broker accepts it; a small reject batched with it
    arrives whole; each exactly once, no resync."""
    from confluent_kafka.admin import AdminClient, NewTopic
    topic = "ke.small." + lctx.group
    lctx.dlq = "dlq.small." + lctx.group
    a = AdminClient({"bootstrap.servers": stack.bootstrap})
    for f in a.create_topics([NewTopic(lctx.dlq, 1, 1, config={"max.message.bytes": "100000"})]).values():
        f.result(timeout=scaled(60))
    create_topics(stack.bootstrap, {topic: 1, lctx.dlq: 1})
    big = big_payload(200000)
    got = run_big(lctx, stack, topic, [big, b"{bad"])
    value, hdr = got[1]
    assert hdr.get("truncated") == "true" and hdr.get("original.size") == "200000", hdr
    assert 1024 <= len(value) <= 100000 and value == big[:len(value)], len(value)
    value, hdr = got[2]
    assert value == b"{bad" and hdr.get("reason") == "invalid_json" and "truncated" not in hdr, hdr


def test_new_partition_consumed_within_refresh_interval(lctx, stack):
    """A partition added mid-stream is consumed within 30 s (not 300 s)."""
    from confluent_kafka.admin import AdminClient, NewPartitions
    topic = "ke.grow." + lctx.group
    create_topics(stack.bootstrap, {topic: 1})
    now = int(time.time() * 1000)
    produce_lines(stack.bootstrap, [(topic, 0, [exposure(i, now) for i in range(10)], 0)])
    fd = lctx.start(lctx.config({topic: "exposure"}))
    r = stack.redis()
    wait_drained(r, lctx.prefix, lctx.group, {"%s:0" % topic: 10}, [fd], timeout=60)

    a = AdminClient({"bootstrap.servers": stack.bootstrap})
    t0 = time.monotonic()
    for f in a.create_partitions([NewPartitions(topic, 2)]).values():
        f.result(timeout=scaled(60))
    create_topics(stack.bootstrap, {topic: 2})  # waits for the new leader
    produce_lines(stack.bootstrap, [(topic, 1, [exposure(100 + i, now) for i in range(10)], 0)])
    # 30 s refresh + a rebalance and a flush; librdkafka's default would be 300 s
    wait_drained(r, lctx.prefix, lctx.group, {"%s:0" % topic: 10, "%s:1" % topic: 10},
                 [fd], timeout=45)
    took = time.monotonic() - t0
    print("new partition consumed %.1f s after it was created" % took)
    rc = fd.stop()
    assert rc == 0, "exit %s\n%s" % (rc, fd.tail())
    check_log_clean(fd)
    assert_exposures(r, lctx.prefix, 2, 20)


def stamps(lines):
    out = []
    for l in lines:
        m = LINE.match(l)
        assert m, l
        out.append(calendar.timegm(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S"))
                   + int(m.group(1)[20:]) / 1000.0)
    return out


def assert_rate_limited(what, lines):
    assert lines, "no line about %s" % what
    t = stamps(lines)
    close = [(a, b) for a, b in zip(t, t[1:]) if b - a < LOG_REPEAT_S - 0.5]
    assert not close, "%s logged more than once per %d s:\n%s" % (
        what, LOG_REPEAT_S, "\n".join(lines[:6]))


def test_log_one_line_per_problem(lctx, stack):
    """Unreachable brokers and Redis, fast retries, for 15 s: each problem is
    one logfmt line, repeated at most once per 10 s; no CONFWARN although the
    properties hold consumer-only and producer-only names."""
    dead = [free_port(), free_port()]
    redis_dead = free_port()
    cfg = lctx.config({"ke.none." + lctx.group: "exposure"},
                      redis_url="redis://127.0.0.1:%d" % redis_dead,
                      props={"reconnect.backoff.ms": "50", "reconnect.backoff.max.ms": "100",
                             "queue.buffering.max.messages": "1000"})
    data = json.loads(cfg.read_text())
    data["kafka"]["brokers"] = ",".join("127.0.0.1:%d" % p for p in dead)
    cfg.write_text(json.dumps(data))
    fd = lctx.start(cfg)
    deadline = time.monotonic() + 15  # the observation window, not a wait for a result
    while time.monotonic() < deadline:
        assert fd.alive(), fd.tail()
        time.sleep(0.2)
    rc = fd.stop()
    assert rc == 0, "exit %s\n%s" % (rc, fd.tail())
    lines = log_lines(fd)
    bad = [l for l in lines if not LINE.match(l)]
    assert not bad, "lines that are not logfmt:\n" + "\n".join(bad[:5])
    confwarn = [l for l in lines if "CONFWARN" in l]
    assert not confwarn, "CONFWARN:\n" + "\n".join(confwarn[:5])
    clients = sorted(set(re.findall(r'client="([^"]+)"', "\n".join(lines))))
    assert any("consumer" in c for c in clients) and any("producer" in c for c in clients), clients
    reported = 0
    for port in dead:
        for c in clients:
            about = [l for l in lines if 'client="%s"' % c in l and "127.0.0.1:%d/" % port in l]
            if about:
                reported += 1
                assert_rate_limited("%s, broker :%d" % (c, port), about)
    assert reported >= 2, "no client reported the unreachable brokers:\n" + "\n".join(lines[:20])
    # hiredis may report the refused connection, or the watchdog resets it
    for msg in ('msg="redis connect failed"', 'msg="redis connection reset"'):
        about = [l for l in lines if msg in l]
        if about:
            assert_rate_limited(msg, about)
    assert any('msg="redis conn' in l for l in lines), "Redis problem not reported"
