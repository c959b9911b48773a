"""
test_flush_guards.py — a flush script never fails after its first write, a
script error that repeats stops its partition instead of looping, and
rolling snapshots sum exactly. Small crafted streams on the real broker and
redis-server; every expectation is either the oracle's (tests/oracle, from
the docs) or written out below.

Claims checked:
- two valid-looking payments whose amounts sum past int64 in one batch are
  bad_value (amount above 10^12, docs/EVENTS.md), go to the DLQ, and the
  rest of the stream counts exactly once (oracle);
- a bucket planted near INT64_MAX: the batch that would overflow it is
  refused whole (no counter of it, no dedup mark, offset not moved past
  it), twice, then the partition stops: /readyz 503, halted gauge 1, one
  error line naming the overflow, SIGTERM exit 1;
- a Redis ACL user without +zadd: nothing is written (no multiplied
  counters), the partition stops, the error line names ZADD;
- a user with exactly the minimal ACL of docs/REDIS.md: counters equal the
  oracle, snapshots are written, an alert fires into {prefix}:alerts,
  /readyz 200, no error line;
- a bucket revenue of 2^53 + 1 shows exactly in the 1h and 24h snapshots.
"""

import time
import subprocess
import uuid
from pathlib import Path

import pytest

from alert_receivers import free_port
from conftest import (REPO, assert_counters, produce_lines, read_counters, read_hash, read_topic,
                      redis_server_cmd, scaled, wait_drained, wait_ping, last_flush_ms)
from crafted import (event, http_get, lctx, metric, oracle_counters,  # noqa: F401 (lctx)
                     produce_crafted, wait_log, wait_until)

INT64_MAX = (1 << 63) - 1
MIN_MS = 60 * 1000

def _documented_acl():
    """The ACL rules of docs/REDIS.md's "Minimal ACL" block, {prefix} for the
    documented prefix: the test runs exactly what the docs tell users."""
    text = (REPO / "docs" / "REDIS.md").read_text()
    block = text[text.index("ACL SETUSER funneld on >PASSWORD") + len("ACL SETUSER funneld on >PASSWORD"):]
    block = block[:block.index("&funnel:*") + len("&funnel:*")]
    return " ".join(block.split()).replace("funnel:*", "{prefix}:*")


MINIMAL_ACL = _documented_acl()


def minute(ts_ms):
    return ts_ms // MIN_MS * 60


def acl_user(stack, prefix, rules):
    """Creates a Redis ACL user with exactly `rules`; returns its redis URL."""
    name, pw = "fd-" + uuid.uuid4().hex[:10], uuid.uuid4().hex
    r = stack.redis()
    r.cmd("ACL", "SETUSER", name, "reset", "on", ">" + pw,
          *rules.replace("{prefix}", prefix).split())
    return "redis://%s:%s@127.0.0.1:%d" % (name, pw, stack.redis_port)


def exposures(n, ts, product="course-a", start=0):
    return [event(event_id="x%d" % (start + i), type="exposure", ts=ts, user_id="u%d" % (i % 97),
                  product_id=product, channel="wechat_group") for i in range(n)]


def payment(i, ts, amount, status="paid", product="course-a", order=None):
    return event(event_id="p%d" % i, type="payment", ts=ts, user_id="buyer%d" % i,
                 product_id=product, order_id=order or "o%d" % i, amount=amount, status=status)


def halted_state(fd, port, prefix, group, r):
    """Waits for the partition-stopped line, then returns (line, readyz code,
    halted gauge, offsets hash)."""
    line = wait_log(fd, r"partition stopped", timeout=60)
    # /readyz and /metrics are published once per flush interval
    code = wait_until("/readyz 503", lambda: http_get(port, "/readyz")[0] == 503 and 503, 10, fd)
    # and it stays 503: neither the heartbeat nor /metrics publishing says ready again
    held = []
    for _ in range(25):
        held.append(http_get(port, "/readyz")[0])
        time.sleep(0.1)
    assert set(held) == {503}, "/readyz of a stopped partition over 2.5 s: %s" % held
    halted = metric(http_get(port, "/metrics")[1], "funneld_partitions_halted")
    return line, code, halted, read_hash(r, "%s:offsets:%s" % (prefix, group))


def test_amounts_past_int64_are_rejected_not_doubled(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    topic = "guard-amt-" + uuid.uuid4().hex[:8]
    lines = (exposures(1000, ts) + [payment(1, ts, 1 << 62), payment(2, ts, 1 << 62),
                                    payment(3, ts, 10 ** 12)])
    ends = produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    want, res = oracle_counters(tmp_path / "s", now, lctx.prefix)
    assert [(x["offset"], x["reason"], x["field"]) for x in res["rejects"]] == \
        [(1000, "bad_value", "amount"), (1001, "bad_value", "amount")], res["rejects"]

    r = stack.redis()
    fd = lctx.start(lctx.config({topic: "mixed"}))
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    assert_counters(want, read_counters(r, lctx.prefix), lctx.prefix)
    dlq = read_topic(stack.bootstrap, lctx.dlq)
    assert sorted((int(h["source.offset"]), h["reason"], h["field"]) for _, _, _, h in dlq) == \
        [(1000, "bad_value", "amount"), (1001, "bad_value", "amount")]
    assert fd.stop() == 0, fd.tail()


def payment_batch_refused(lctx, stack, tmp_path, name, ts, bucket):
    """Exposures, a payment at offset 500 in the bucket `bucket`, more
    exposures, in one partition; after something planted makes the batch
    with the payment refused: waits for the partition to stop and checks
    that exactly what lies below the stored offset was applied — nothing of
    the refused batch: offset not past the payment, the bucket's exposures
    equal to it, no payment, no dedup mark. Returns (stop line, /readyz
    code, halted gauge, the bucket's hash, funneld)."""
    r = stack.redis()
    topic = "guard-%s-%s" % (name, uuid.uuid4().hex[:8])
    pay_at = 500
    lines = exposures(pay_at, ts) + [payment(1, ts, 100)] + exposures(500, ts, start=pay_at)
    ends = produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], ts + 10 * MIN_MS)
    assert ends["%s:0" % topic] == len(lines)
    port = free_port()
    fd = lctx.start(lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port}))
    line, code, halted, offsets = halted_state(fd, port, lctx.prefix, lctx.group, r)
    off = int(offsets.get("%s:0" % topic, 0))
    assert off <= pay_at, "offset %d moved past the payment at %d" % (off, pay_at)
    h = read_hash(r, bucket)
    assert int(h.get("exposures", 0)) == off, "bucket %s after stopping at offset %d: %s" % (bucket, off, h)
    assert int(h.get("payments", 0)) == 0, h
    assert r.cmd("EXISTS", "%s:dedup:o1:paid" % lctx.prefix) == 0, "dedup mark set by a refused batch"
    return line, code, halted, h, fd


def test_bucket_near_int64_max_refused_whole(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    bucket = "%s:c:all:m1:%d" % (lctx.prefix, minute(ts))
    stack.redis().cmd("HSET", bucket, "revenue", INT64_MAX - 50)
    line, code, halted, h, fd = payment_batch_refused(lctx, stack, tmp_path, "max", ts, bucket)
    assert int(h["revenue"]) == INT64_MAX - 50, h
    assert "OVERFLOW" in line and "revenue" in line, line
    assert code == 503 and halted == 1, (code, halted)
    log = Path(fd.log_path).read_text(errors="replace")
    assert log.count('msg="flush script failed"') == 2, fd.tail()
    assert fd.stop() == 1, "a stopped partition's input is not all flushed: exit 1\n" + fd.tail()


@pytest.mark.parametrize("field", ["interactions.like", "interactions.__other__"])
def test_action_field_near_int64_max_refused_whole(lctx, stack, tmp_path, field):
    """The check before the first write covers the action list too: an action
    that lands on its own field, or past action_cap on interactions.__other__,
    and would leave int64 refuses the batch whole (no exposure of it written)."""
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    bucket = "%s:c:all:m1:%d" % (lctx.prefix, minute(ts))
    r = stack.redis()
    seed = {field: INT64_MAX - 1}
    if field.endswith("__other__"):  # the hash is full: "like" goes to __other__
        seed.update({"interactions.a1": 1, "interactions.a2": 1})
    for f, v in seed.items():
        r.cmd("HSET", bucket, f, v)
    topic = "guard-act-" + uuid.uuid4().hex[:8]
    lines = exposures(300, ts) + [event(event_id="i%d" % i, type="interaction", ts=ts, user_id="u%d" % i,
                                        product_id="course-a", action="like") for i in range(3)]
    produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    port = free_port()
    fd = lctx.start(lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port},
                                action_cap=2))
    line, code, halted, offsets = halted_state(fd, port, lctx.prefix, lctx.group, r)
    h = read_hash(r, bucket)
    off = int(offsets.get("%s:0" % topic, 0))
    assert off <= 300, "offset %d moved past the interactions" % off
    assert int(h.get("exposures", 0)) == off, "bucket %s after stopping at offset %d: %s" % (bucket, off, h)
    assert {f: int(h[f]) for f in seed} == seed, h
    assert "OVERFLOW" in line and field in line, line
    assert code == 503 and halted == 1, (code, halted)
    assert fd.stop() == 1, fd.tail()


def test_stored_value_past_int64_refused_whole(lctx, stack, tmp_path):
    """A field holding a number past int64 (planted) is no integer for
    HINCRBY even when the batch's refund would bring the sum back inside:
    the check refuses the batch before writing anything."""
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    bucket = "%s:c:all:m1:%d" % (lctx.prefix, minute(ts))
    r = stack.redis()
    r.cmd("HSET", bucket, "revenue", str(INT64_MAX + 1))
    topic = "guard-big-" + uuid.uuid4().hex[:8]
    lines = exposures(200, ts) + [payment(1, ts, 100, status="refunded")]
    produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    port = free_port()
    fd = lctx.start(lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port}))
    line, code, halted, offsets = halted_state(fd, port, lctx.prefix, lctx.group, r)
    h = read_hash(r, bucket)
    off = int(offsets.get("%s:0" % topic, 0))
    assert int(h.get("exposures", 0)) == off and off <= 200, (off, h)
    assert h["revenue"] == str(INT64_MAX + 1) and int(h.get("refunds", 0)) == 0, h
    assert r.cmd("EXISTS", "%s:dedup:o1:refunded" % lctx.prefix) == 0, "dedup mark set by a refused batch"
    assert "NOTINT" in line and "revenue" in line, line
    assert fd.stop() == 1, fd.tail()


# A HyperLogLog that Redis's PFADD refuses as corrupted while a one-key
# PFCOUNT still answers: the 16-byte header of a sparse HLL ("HYLL",
# encoding 1, a cached count of 0 marked valid) with no register data.
CORRUPT_HLL = b"HYLL\x01" + b"\x00" * 11


def test_corrupted_paid_hll_refused_whole(lctx, stack, tmp_path):
    """The check reads a paid HLL the way PFADD will (every register), not
    from its cached count: a corrupted one refuses the batch before the
    first write — no exposure of it, no payment, no dedup mark — instead of
    failing at the PFADD after them (and a retry then counting the
    exposures twice and skipping the payment as a duplicate)."""
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    hll = "%s:u:all:m1:%d:paid" % (lctx.prefix, minute(ts))
    r = stack.redis()
    r.cmd("SET", hll, CORRUPT_HLL)
    assert r.cmd("PFCOUNT", hll) == 0  # the corruption hides behind the cache
    bucket = "%s:c:all:m1:%d" % (lctx.prefix, minute(ts))
    line, code, halted, h, fd = payment_batch_refused(lctx, stack, tmp_path, "hll", ts, bucket)
    assert int(h.get("revenue", 0)) == 0, h
    assert r.cmd("GET", hll) == CORRUPT_HLL
    assert "INVALIDOBJ" in line and hll in line, line
    assert code == 503 and halted == 1, (code, halted)
    assert fd.stop() == 1, fd.tail()


@pytest.mark.parametrize("planted", ["string", "corrupt"])
def test_failed_distinct_users_command_fails_the_flush(lctx, stack, tmp_path, planted):
    """The exposure HLLs are written by PFADDs sent ahead of the script: one
    that Redis refuses (a key of another type, a corrupted HLL) fails the
    flush before its script runs — nothing counted, the offset stays —
    twice, then the partition stops naming the cause. Before, the script
    ran anyway and the offset moved past users that never reached the HLL."""
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    hour = ts // 3600000 * 3600
    hll = "%s:u:all:h1:%d:exposed" % (lctx.prefix, hour)
    r = stack.redis()
    r.cmd("SET", hll, "not an hll" if planted == "string" else CORRUPT_HLL)
    topic = "guard-uhll-" + uuid.uuid4().hex[:8]
    lines = exposures(300, ts)
    produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    port = free_port()
    fd = lctx.start(lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port}))
    line, code, halted, offsets = halted_state(fd, port, lctx.prefix, lctx.group, r)
    # every flush carries that hour's exposures: none may have counted
    assert int(offsets.get("%s:0" % topic, 0)) == 0, offsets
    assert read_hash(r, "%s:c:all:m1:%d" % (lctx.prefix, minute(ts))) == {}
    assert read_hash(r, "%s:c:all:h1:%d" % (lctx.prefix, hour)) == {}
    want = "WRONGTYPE" if planted == "string" else "INVALIDOBJ"
    assert "distinct-users" in line and want in line, line
    assert code == 503 and halted == 1, (code, halted)
    log = Path(fd.log_path).read_text(errors="replace")
    assert log.count('msg="distinct-users command failed"') >= 2, fd.tail()
    assert fd.stop() == 1, fd.tail()


def test_refusal_naming_fenced_scope_still_stops(lctx, stack, tmp_path):
    """A refusal's text names the key, whose scope value is user input: a
    product called FENCED must not make the refusal look like fencing (a
    silent resync loop instead of a stopped partition)."""
    now = int(time.time() * 1000)
    ts = now - 10 * MIN_MS
    bucket = "%s:c:product=FENCED:m1:%d" % (lctx.prefix, minute(ts))
    r = stack.redis()
    r.cmd("HSET", bucket, "exposures", INT64_MAX)
    topic = "guard-fenced-" + uuid.uuid4().hex[:8]
    lines = exposures(100, ts, product="FENCED")
    produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    port = free_port()
    fd = lctx.start(lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port}))
    line, code, halted, offsets = halted_state(fd, port, lctx.prefix, lctx.group, r)
    assert "OVERFLOW" in line and "FENCED" in line, line
    assert code == 503 and halted == 1 and offsets == {}, (code, halted, offsets)
    assert int(read_hash(r, bucket)["exposures"]) == INT64_MAX
    assert fd.stop() == 1, fd.tail()


def test_misconf_is_retried_not_stopped(lctx, stack, tmp_path):
    """MISCONF (a failed background save with stop-writes-on-bgsave-error)
    refuses a script at its first write: nothing written, and it passes once
    the disk is fixed, so it is retried like BUSY or LOADING, never a reason
    to stop the partition."""
    port = free_port()
    home = tmp_path / "redis"
    gone = tmp_path / "gone"
    home.mkdir()
    gone.mkdir()
    # a private redis-server with a save point (MISCONF needs one) that lets
    # the test move its dir (a protected config)
    srv = subprocess.Popen(redis_server_cmd(port, home, "--save", "3600 1",
                                            "--enable-protected-configs", "yes",
                                            "--stop-writes-on-bgsave-error", "yes"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        r = wait_ping(port)
        now = int(time.time() * 1000)
        topic = "guard-misconf-" + uuid.uuid4().hex[:8]
        first, second = exposures(100, now - 10 * MIN_MS), exposures(200, now - 9 * MIN_MS, start=100)
        produce_crafted(stack, tmp_path / "s", topic, "exposure", [first], now)
        fd = lctx.start(lctx.config({topic: "exposure"},
                                    redis_url="redis://127.0.0.1:%d" % port))
        wait_drained(r, lctx.prefix, lctx.group, {"%s:0" % topic: len(first)}, [fd], timeout=60)
        r.cmd("CONFIG", "SET", "dir", str(gone))
        gone.rmdir()  # the background save cannot create its file
        r.cmd("BGSAVE")
        wait_until("the background save to fail",
                   lambda: b"rdb_last_bgsave_status:err" in r.cmd("INFO", "persistence"), 30)
        produce_lines(stack.bootstrap, [(topic, 0, second, len(first))])
        (tmp_path / "s" / ("%s.0.jsonl" % topic)).write_bytes(b"".join(l + b"\n" for l in first + second))
        want, _ = oracle_counters(tmp_path / "s", now, lctx.prefix)
        # the flush's PFADDs go first and meet the refusal before its script
        wait_log(fd, r"(flush script|distinct-users command) failed.*MISCONF", timeout=60)
        time.sleep(3)  # several flush intervals of refusals
        assert "partition stopped" not in Path(fd.log_path).read_text(errors="replace"), fd.tail()
        r.cmd("CONFIG", "SET", "dir", str(home))
        r.cmd("BGSAVE")
        wait_drained(r, lctx.prefix, lctx.group, {"%s:0" % topic: len(first) + len(second)}, [fd],
                     timeout=60)
        assert_counters(want, read_counters(r, lctx.prefix), lctx.prefix)
        assert fd.stop() == 0, fd.tail()
    finally:
        srv.kill()  # SIGKILL: a shutdown would try to save into the vanished dir
        srv.wait(timeout=scaled(30))


def test_acl_without_zadd_writes_nothing_and_stops(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    topic = "guard-acl-" + uuid.uuid4().hex[:8]
    lines = exposures(1200, now - 10 * MIN_MS)
    produce_crafted(stack, tmp_path / "s", topic, "exposure", [lines], now)
    url = acl_user(stack, lctx.prefix, MINIMAL_ACL.replace(" +zadd", ""))
    port = free_port()
    fd = lctx.start(lctx.config({topic: "exposure"}, redis_url=url,
                                http={"listen": "127.0.0.1:%d" % port}))
    r = stack.redis()

    def total():
        return sum(h.get("exposures", 0) for k, h in read_counters(r, lctx.prefix).items()
                   if k.startswith(lctx.prefix + ":c:all:m1:"))
    # either it stops, or (the defect) it re-applies the batch again and again
    wait_until("partition stopped or counters multiplied",
               lambda: total() > len(lines) or "partition stopped" in
               Path(fd.log_path).read_text(errors="replace"), 60, fd)
    assert total() == 0, "exposures %d written by a refused script (input %d)" % (total(), len(lines))
    line, code, halted, offsets = halted_state(fd, port, lctx.prefix, lctx.group, r)
    assert "NOPERM" in line and "ZADD" in line, line
    assert code == 503 and halted == 1 and offsets == {}, (code, halted, offsets)
    assert total() == 0
    assert fd.stop() == 1, fd.tail()


ABSENT_RULE = {"name": "PaymentsAbsent", "kind": "absent", "metric": "payments",
               "while": "exposures", "grouping": ["product"], "window": "10m",
               "min_samples": 500}


def test_minimal_acl_counts_exactly(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    t0 = now - 12 * MIN_MS
    topic = "guard-min-" + uuid.uuid4().hex[:8]
    # course-a: exposures without payments (the alert fires); course-b: all
    # kinds. Each partition alone holds enough of course-a for the alert: the
    # evaluator may pass a minute with only one partition's data in Redis.
    p0 = exposures(800, t0, "course-a")
    p1 = exposures(600, t0, "course-a", start=5000)
    p1 += exposures(300, t0 + MIN_MS, "course-b", start=1000)
    p1 += [event(event_id="i%d" % i, type="interaction", ts=t0 + 2 * MIN_MS, user_id="u%d" % i,
                 product_id="course-b", action="like") for i in range(50)]
    p1 += [payment(i, t0 + 3 * MIN_MS, 990 + i, product="course-b") for i in range(20)]
    p1 += [payment(100, t0 + 4 * MIN_MS, 990, product="course-b", order="o0"),  # repeat
           payment(101, t0 + 8 * MIN_MS, 991, status="refunded", product="course-b", order="o1")]
    # the watermark (minimum over partitions) passes every event above
    p0.append(event(event_id="clock0", type="exposure", ts=now - MIN_MS, user_id="c", product_id="course-c"))
    p1.append(event(event_id="clock1", type="exposure", ts=now - MIN_MS, user_id="c", product_id="course-c"))
    ends = produce_crafted(stack, tmp_path / "s", topic, "mixed", [p0, p1], now)
    want, _ = oracle_counters(tmp_path / "s", now, lctx.prefix)
    url = acl_user(stack, lctx.prefix, MINIMAL_ACL)
    port = free_port()
    fd = lctx.start(lctx.config(
        {topic: "mixed"}, redis_url=url, http={"listen": "127.0.0.1:%d" % port},
        alerts={"eval_interval_ms": 200, "max_catchup_s": 3600, "rules": [ABSENT_RULE]}))
    r = stack.redis()
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    assert_counters(want, read_counters(r, lctx.prefix), lctx.prefix)
    wait_until("snapshot %s:r:all:24h" % lctx.prefix,
               lambda: read_hash(r, lctx.prefix + ":r:all:24h").get("exposures") == "1700", 30, fd)
    wait_until("an alert transition in %s:alerts" % lctx.prefix,
               lambda: r.cmd("XLEN", lctx.prefix + ":alerts") > 0, 30, fd)
    assert http_get(port, "/readyz")[0] == 200
    log = Path(fd.log_path).read_text(errors="replace")
    bad = [l for l in log.splitlines() if "level=error" in l or "NOPERM" in l or
           ("level=warn" in l and "facility=CONFWARN" not in l)]  # the harness's consumer props
    assert not bad, "\n".join(bad[:10])
    assert fd.stop() == 0, fd.tail()


def test_snapshot_revenue_exact_past_2_53(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    ts = now - 20 * MIN_MS
    seeded = (1 << 53) + 1  # 9007199254740993: a double rounds it to ...992
    r = stack.redis()
    # a window reads m1 buckets at its edges and h1 buckets inside: seed both
    m = minute(now - 30 * MIN_MS)
    r.cmd("HSET", "%s:c:all:m1:%d" % (lctx.prefix, m), "revenue", seeded)
    r.cmd("HSET", "%s:c:all:h1:%d" % (lctx.prefix, m // 3600 * 3600), "revenue", seeded)
    topic = "guard-snap-" + uuid.uuid4().hex[:8]
    # the last event moves the watermark past the others
    lines = exposures(10, ts) + [payment(1, ts, 1)] + exposures(1, now - MIN_MS, start=10)
    ends = produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    fd = lctx.start(lctx.config({topic: "mixed"}))
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    drained = last_flush_ms(r, lctx.prefix, lctx.group)
    for window in ("1h", "24h"):
        key = "%s:r:all:%s" % (lctx.prefix, window)
        snap = wait_until("snapshot %s after the drain" % key,
                          lambda: (lambda h: h if int(h.get("updated_at", 0)) > drained else None)(
                              read_hash(r, key)), 30, fd)
        assert snap["revenue"] == str(seeded + 1), "%s: revenue %s, want %d" % (key, snap["revenue"], seeded + 1)
        assert snap["exposures"] == "10" and snap["payments"] == "1", snap
    assert fd.stop() == 0, fd.tail()
