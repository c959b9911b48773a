"""
test_exactness.py — one funneld drains the whole session stream from Kafka.

Claims checked: every counter hash equals the oracle exactly (absent = 0,
both ways); every HLL is within 2% of the exact distinct count (±2 under
100); the dead-letter topic holds exactly the malformed messages — each once,
with the oracle's reason and field headers and the original bytes; SIGTERM
gives exit status 0; `{prefix}:schema` is "2"; `{prefix}:scopes` names every
scope; every c:/u: key carries the TTL of its granularity; the rolling
snapshots of `all` written after the drain hold, for each window, exactly the
sums of the oracle's m1 counters over the window's [from, to), and rates
consistent with those sums; a restarted instance's first snapshot tick
writes the snapshots of exactly the scopes its note on `{prefix}:updates`
counts — the most recently updated ones, up to snapshot_max_scopes, more
than one 16-script chunk.
"""

import json
import sys
import time

import pytest

from conftest import (REPO, Redis, check_dlq, check_redis_equals_oracle, read_topic,
                      scaled, scan_keys, dec, wait_drained, batched, last_flush_ms)

sys.path.insert(0, str(REPO / "tests" / "oracle"))
import oracle  # noqa: E402  (fold_actions: the snapshot's action cap)

HOUR = 3600
# (lowest allowed, highest allowed) remaining TTL per granularity: set on every
# write, so at most the configured TTL and at most an hour below it here.
TTL_BOUNDS = {"m1": (47 * HOUR, 48 * HOUR), "h1": (35 * 24 * HOUR - HOUR, 35 * 24 * HOUR),
              "d1": (400 * 24 * HOUR - HOUR, 400 * 24 * HOUR)}


def gran_of(prefix, key):
    rest = key[len(prefix) + 3:]
    if key.startswith(prefix + ":c:"):
        return rest.rsplit(":", 2)[1]
    return rest.rsplit(":", 3)[1]


def test_exactness(ctx, stack, stream, main_topics):
    r = stack.redis()
    cfg = ctx.config(main_topics)
    fd = ctx.start(cfg)
    wait_drained(r, ctx.prefix, ctx.group, main_topics.end_offsets(), [fd])
    check_snapshots(r, stream, ctx.prefix, drained_ms=last_flush_ms(r, ctx.prefix, ctx.group))

    rc = fd.stop()
    assert rc == 0, "funneld exited %s on SIGTERM\n%s" % (rc, fd.tail())
    # The final flush on SIGTERM must not move anything past the input.
    wait_drained(r, ctx.prefix, ctx.group, main_topics.end_offsets(), (),
                 timeout=5, must_stay_alive=False)

    counters, distinct = check_redis_equals_oracle(r, stream, ctx.prefix)
    stream.registry["kafka_prefix"] = ctx.prefix

    assert dec(r.cmd("GET", ctx.prefix + ":schema")) == "2"

    scopes = {dec(s) for s in r.cmd("ZRANGE", ctx.prefix + ":scopes", 0, -1)}
    missing = sorted(stream.scopes() - scopes)
    assert not missing, "%d scopes missing from %s:scopes, e.g. %s" % (
        len(missing), ctx.prefix, missing[:10])

    keys = scan_keys(r, ctx.prefix + ":c:*") + scan_keys(r, ctx.prefix + ":u:*")
    bad = []
    for chunk in batched(keys):
        for k, ttl in zip(chunk, r.pipeline([("TTL", k) for k in chunk])):
            k = dec(k)
            lo, hi = TTL_BOUNDS.get(gran_of(ctx.prefix, k), (None, None))
            if lo is None or not (isinstance(ttl, int) and lo < ttl <= hi):
                bad.append("%s: TTL %s, want (%s, %s]" % (k, ttl, lo, hi))
    if bad:
        pytest.fail("%d keys with a wrong TTL, first 10:\n  %s" % (
            len(bad), "\n  ".join(bad[:10])), pytrace=False)

    check_dlq(main_topics, read_topic(stack.bootstrap, ctx.dlq), exactly_once=True)
    # idle_timeout_s: the drained partitions never go idle during the check,
    # so the watermark and the windows stay put and no second full tick
    # rewrites the snapshots while they are read
    check_full_tick(ctx, r, ctx.config(main_topics, idle_timeout_s=86400))


SNAPSHOT_MAX_SCOPES = 1000  # the default
SNAP_CHUNK = 16  # scripts per chunk, sinks/redis_sink.c


def check_full_tick(ctx, r, cfg, timeout=30):
    """A new process's first snapshot tick covers every scope updated within
    the longest window (at most snapshot_max_scopes, most recent first),
    sent SNAP_CHUNK scripts at a time. Its note on {prefix}:updates comes
    after the last script, so by then every snapshot of the tick is written:
    the r:{scope}:5m hashes stamped with the note's updated_at must be
    exactly the note's count, and exactly the top of {prefix}:scopes."""
    timeout = scaled(timeout)
    sub = Redis(*r.addr, timeout=timeout)
    try:
        sub.pipeline([("SUBSCRIBE", ctx.prefix + ":updates")])
        fd = ctx.start(cfg)
        note = None
        deadline = time.monotonic() + timeout
        while note is None or note["scopes"] == 0:
            assert time.monotonic() < deadline, "no snapshot note within %ds\n%s" % (timeout, fd.tail())
            try:
                msg = sub._read()
            except OSError as e:
                pytest.fail("no snapshot note: %s\n%s" % (e, fd.tail()), pytrace=False)
            if isinstance(msg, list) and len(msg) == 3 and dec(msg[0]) == "message":
                note = json.loads(dec(msg[2]))
    finally:
        sub.close()
    n = note["scopes"]
    total = r.cmd("ZCARD", ctx.prefix + ":scopes")
    assert n == min(SNAPSHOT_MAX_SCOPES, total), "first tick covered %d of %d scopes" % (n, total)
    assert n > SNAP_CHUNK, "only %d scopes: the chunked path is not exercised" % n
    keys = [dec(k) for k in scan_keys(r, ctx.prefix + ":r:*:5m")]
    stamped = set()
    for chunk in batched(keys):
        for k, at in zip(chunk, r.pipeline([("HGET", k, "updated_at") for k in chunk])):
            if at is not None and int(at) == note["updated_at"]:
                stamped.add(k[len(ctx.prefix) + 3:-3])
    top = {dec(m) for m in r.cmd("ZREVRANGE", ctx.prefix + ":scopes", 0, n - 1)}
    assert stamped == top, "tick wrote %d snapshots, note says %d; %d not in the top %d, %d missing" % (
        len(stamped), n, len(stamped - top), n, len(top - stamped))
    assert fd.stop() == 0, fd.tail()


WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400}
SUMMED = ("exposures", "interactions", "payments", "refunds", "revenue", "late")


def check_snapshots(r, stream, prefix, drained_ms, timeout=30):
    """funnel:r:all:{window}, written by a snapshot tick after the drain, must
    equal the oracle's m1 buckets of scope `all` summed over [from, to)."""
    expected = stream.counters_for(prefix)
    m1 = {}
    head = prefix + ":c:all:m1:"
    for key, fields in expected.items():
        if key.startswith(head):
            m1[int(key[len(head):])] = fields
    deadline = time.monotonic() + scaled(timeout)
    for name, secs in WINDOWS.items():
        key = "%s:r:all:%s" % (prefix, name)
        while True:
            raw = r.cmd("HGETALL", key) or []
            snap = {dec(raw[i]): dec(raw[i + 1]) for i in range(0, len(raw), 2)}
            if snap and int(snap["updated_at"]) > drained_ms:
                break
            assert time.monotonic() < deadline, "no snapshot %s written after the drain: %r" % (key, snap)
            time.sleep(0.2)
        lo, hi = int(snap["from"]), int(snap["to"])
        assert hi - lo == secs, "%s: window [%d, %d) is not %d s" % (key, lo, hi, secs)
        assert hi % 60 == 0 and hi * 1000 <= int(snap["watermark"]), snap
        want = {}
        for bucket, fields in m1.items():
            if lo <= bucket < hi:
                for f, v in fields.items():
                    want[f] = want.get(f, 0) + v
        assert want.get("exposures", 0) > 0, "%s: the window holds no oracle events; test is vacuous" % key
        want = oracle.fold_actions(want, 64)  # action_cap, default
        for f in set(want) | {f for f in snap if f in SUMMED or f.startswith("interactions.")}:
            assert int(snap.get(f, 0)) == want.get(f, 0), "%s field %s: snapshot %s, oracle %s" % (
                key, f, snap.get(f), want.get(f, 0))
        e, i = want.get("exposures", 0), want.get("interactions", 0)
        assert snap["interaction_rate"] == ("%.6f" % (i / e) if e else ""), snap
        ue, up = int(snap["uv_exposed"]), int(snap["uv_paid"])
        assert snap["conversion_rate"] == ("%.6f" % (up / ue) if ue else ""), snap
