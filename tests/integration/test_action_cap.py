"""
test_action_cap.py — distinct `interactions.{action}` fields are capped per
counter hash (docs/REDIS.md, `action_cap`), against the real Kafka broker and
redis-server of the session stack.

The input is hostile on purpose: a crafted stream on one partition where
half the interactions carry a fresh action value each (6,000 distinct
actions, 100x the default cap of 64) mixed with a few common ones and the
literal action `__other__`, over three minutes, two products, two channels.
It is produced in two halves; the first funneld process drains the first
half and is SIGKILLed, a new process (which remembers nothing) drains the
second, with small flush batches, so the cap's decisions are spread over many
flush scripts and two processes.

Claims: every counter hash has at most action_cap + 1 action fields (the
named ones plus `interactions.__other__`); every counter equals the
oracle's (tests/oracle/oracle.py, which implements the documented rule:
per hash, the first action_cap distinct actions in input order keep their
field, the rest are counted in `interactions.__other__`); so in a hash that
overflowed, exactly action_cap actions are named, each with its exact count,
and `interactions.__other__` = interactions - the named ones. The rolling
snapshots over those hashes are capped the same way.

With two partitions read by two processes at once, which actions get named
depends on how their flushes interleave, so that test checks the
order-free invariants against exact per-action counts instead. The flush
script's rule is also checked row by row on redis-server directly.
"""

import json
import sys
import time

from conftest import (REPO, Ctx, assert_counters, create_topics, dec, produce_lines,
                      read_counters, read_hash, scaled, scan_keys, wait_drained,
                      last_flush_ms)

sys.path.insert(0, str(REPO / "tests" / "oracle"))
import oracle  # noqa: E402

CAP = 64
EVENTS = 12000
HOUR_MS = 3600 * 1000


def crafted_lines(now_ms):
    # three minutes from hh:50 of the hour that began two hours ago, and an
    # exposure at (hh+1):10 that moves the watermark past them: the rolling
    # windows then end at (hh+1):08, so the 1h window reads the three minutes
    # from m1 buckets (its edge) and the 24h window from their h1 bucket (a
    # whole hour inside it), at any time of day
    t0 = (now_ms // HOUR_MS - 2) * HOUR_MS + 50 * 60000
    common = ["click", "like", "share", "__other__"]
    lines = []
    for i in range(EVENTS):
        action = "a%05d" % i if i % 2 else common[(i // 2) % len(common)]
        lines.append(json.dumps({
            "event_id": "e%d" % i, "type": "interaction", "ts": t0 + i * 180000 // EVENTS,
            "user_id": "u%d" % (i % 500), "product_id": "p%d" % (i // 2 % 2),
            "channel": "ch%d" % (i // 4 % 2), "action": action}).encode())
    # moves the watermark past the interactions: the rolling windows end
    # after them
    lines.append(json.dumps({"event_id": "x", "type": "exposure", "ts": t0 + 20 * 60000,
                             "user_id": "u0", "product_id": "p0"}).encode())
    return lines


def expected(tmp_path, parts, now_ms, prefix, cap=CAP):
    """The oracle's counters for `parts` (one list of lines per partition)."""
    d = tmp_path / ("stream-%d" % len(parts))
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(
        {"topics": {"t": {"type": "mixed", "partitions": len(parts)}}}))
    for i, lines in enumerate(parts):
        (d / ("t.%d.jsonl" % i)).write_bytes(b"".join(ln + b"\n" for ln in lines))
    res = oracle.compute(str(d), now_ms, prefix=prefix, action_cap=cap)
    n = sum(map(len, parts))
    assert res["summary"]["accepted"] == n and not res["rejects"], res["summary"]
    return res["counters"]


def action_fields(h):
    return [f for f in h if f.startswith("interactions.")]


def test_action_cap(stack, tmp_path):
    ctx = Ctx(stack, None, tmp_path, "action_cap")
    try:
        now_ms = int(time.time() * 1000)
        lines = crafted_lines(now_ms)
        want = expected(tmp_path, [lines], now_ms, ctx.prefix)
        topic = "acap." + ctx.group
        create_topics(stack.bootstrap, {topic: 1})
        cfg = ctx.config({topic: "mixed"}, action_cap=CAP, flush_max_events=500)
        r = stack.redis()
        half = len(lines) // 2
        produce_lines(stack.bootstrap, [(topic, 0, lines[:half], 0)])
        p1 = ctx.start(cfg)
        wait_drained(r, ctx.prefix, ctx.group, {"%s:0" % topic: half}, [p1], timeout=90)
        p1.kill()
        produce_lines(stack.bootstrap, [(topic, 0, lines[half:], half)])
        p2 = ctx.start(cfg)
        wait_drained(r, ctx.prefix, ctx.group, {"%s:0" % topic: len(lines)}, [p2], timeout=90)
        drained_ms = last_flush_ms(r, ctx.prefix, ctx.group)

        # the bound, read straight from Redis (HLEN: every field counts)
        keys = scan_keys(r, ctx.prefix + ":c:*")
        assert len(keys) == len(want), (len(keys), len(want))
        lens = r.pipeline([("HLEN", k) for k in keys])
        widest = max(zip(lens, map(dec, keys)))
        # interactions, late, at most CAP named actions, interactions.__other__
        assert widest[0] <= CAP + 3, "hash %s has %d fields (cap %d)" % (widest[1], widest[0], CAP)

        got = read_counters(r, ctx.prefix)
        over = {k: h for k, h in got.items() if len(action_fields(h)) > CAP + 1}
        assert not over, "%d hashes over the cap, e.g. %s with %d action fields" % (
            len(over), next(iter(over)), len(action_fields(next(iter(over.values())))))
        assert_counters(want, got, ctx.prefix)

        # the claims the equality implies, spelled out on the widest hashes
        overflowed = 0
        for k, h in got.items():
            named = [f for f in action_fields(h) if f != "interactions.__other__"]
            total = sum(h[f] for f in action_fields(h))
            assert total == h.get("interactions", 0), (k, total, h)
            if len(named) == CAP:
                overflowed += 1
                assert h["interactions.__other__"] > 0, (k, h)
        # all, product, product,channel: every m1/h1/d1 hash overflowed
        assert overflowed >= 3 * 3, "only %d hashes reached the cap" % overflowed
        check_snapshots(r, ctx.prefix, want, drained_ms)
        assert p2.stop() == 0, p2.tail()
    finally:
        ctx.cleanup()


def test_action_cap_two_partitions_two_instances(stack, tmp_path):
    """Scale-out: two partitions, one process each, feeding the same hashes
    concurrently. Which actions get named then depends on how the flushes
    interleave, but the documented invariants hold exactly: a hash names
    min(CAP, its distinct actions) actions (__other__ never counts), each
    named field is that action's exact count in the bucket, and the action
    fields sum to `interactions`."""
    ctx = Ctx(stack, None, tmp_path, "action_cap2")
    try:
        now_ms = int(time.time() * 1000)
        lines = crafted_lines(now_ms)
        parts = [lines[0::2], lines[1::2]]
        # exact per-action counts: the oracle with a cap nothing reaches
        truth = expected(tmp_path, parts, now_ms, ctx.prefix, cap=10 ** 9)
        topic = "acap2." + ctx.group
        create_topics(stack.bootstrap, {topic: 2})
        produce_lines(stack.bootstrap, [(topic, i, p, 0) for i, p in enumerate(parts)])
        cfg = ctx.config({topic: "mixed"}, action_cap=CAP, flush_max_events=500)
        procs = [ctx.start(cfg), ctx.start(cfg)]
        r = stack.redis()
        wait_drained(r, ctx.prefix, ctx.group,
                     {"%s:%d" % (topic, i): len(p) for i, p in enumerate(parts)}, procs, timeout=90)
        got = read_counters(r, ctx.prefix)
        assert set(got) == set(truth), (len(got), len(truth))
        overflowed = 0
        for k, t in truth.items():
            h = got[k]
            fixed = {f: v for f, v in t.items() if not f.startswith("interactions.")}
            assert {f: v for f, v in h.items() if not f.startswith("interactions.")} == fixed, k
            distinct = [f for f in action_fields(t) if f != "interactions.__other__"]
            named = [f for f in action_fields(h) if f != "interactions.__other__"]
            assert len(named) == min(CAP, len(distinct)), (k, len(named), len(distinct))
            wrong = [(f, h[f], t.get(f)) for f in named if h[f] != t.get(f)]
            assert not wrong, (k, wrong[:5])
            assert h.get("interactions.__other__", 0) == t.get("interactions", 0) - sum(
                h[f] for f in named), k
            overflowed += len(distinct) > CAP
        assert overflowed >= 3 * 3, "only %d hashes over the cap" % overflowed
        for p in procs:
            assert p.stop() == 0, p.tail()
    finally:
        ctx.cleanup()


def window_sums(want, prefix, lo, hi):
    """The window [lo, hi) (epoch seconds) summed field by field from the
    buckets a snapshot reads (docs/ARCHITECTURE.md): h1 buckets for the whole
    hours inside it, m1 buckets at the edges. Each hash caps its actions on
    its own, so an h1 hash may name other actions than its m1 hashes.
    Returns (sums, how many h1 buckets were read)."""
    h0, h1 = -(-lo // 3600) * 3600, hi // 3600 * 3600
    if h0 >= h1:
        h0 = h1 = hi  # no whole hour inside: m1 buckets only
    sums, h1s = {}, 0
    for key, h in want.items():
        for gran in ("m1", "h1"):
            head = "%s:c:all:%s:" % (prefix, gran)
            if not key.startswith(head):
                continue
            t = int(key[len(head):])
            if gran == "h1" and h0 <= t < h1 or gran == "m1" and lo <= t < hi and not h0 <= t < h1:
                h1s += gran == "h1"
                for f, v in h.items():
                    sums[f] = sums.get(f, 0) + v
    return sums, h1s


def check_snapshots(r, prefix, want, drained_ms):
    """The rolling snapshots of scope `all` over the interactions (1h, 24h)
    hold at most CAP named actions too: those whose sum over the window's
    buckets is larger than the (CAP + 1)-th largest, the rest in
    interactions.__other__ (oracle.fold_actions). The 1h window reads the
    interactions from m1 buckets, the 24h window from their h1 bucket."""
    deadline = time.monotonic() + scaled(30)
    for name, h1_read in (("1h", 0), ("24h", 1)):
        key = "%s:r:all:%s" % (prefix, name)
        while True:
            snap = read_hash(r, key)
            if snap and int(snap["updated_at"]) > drained_ms:
                break
            assert time.monotonic() < deadline, "no snapshot %s after the drain: %r" % (key, snap)
            time.sleep(0.2)
        lo, hi = int(snap["from"]), int(snap["to"])
        sums, h1s = window_sums(want, prefix, lo, hi)
        assert h1s == h1_read, (key, lo, hi, "h1 buckets read", h1s)
        assert sums.get("interactions", 0) == EVENTS, (key, lo, hi, sums.get("interactions"))
        expect = {f: v for f, v in oracle.fold_actions(sums, CAP).items()
                  if f.startswith("interactions")}
        got = {f: int(v) for f, v in snap.items() if f.startswith("interactions")}
        assert len(action_fields(got)) <= CAP + 1, (key, len(action_fields(got)))
        assert got == expect, "%s: %d fields differ" % (key, len(set(got.items()) ^ set(expect.items())))
        if name == "1h":
            # three m1 hashes of 64 names each: the sums overflow and fold
            assert len(action_fields(sums)) > CAP + 1, (key, "the window does not overflow")


def flush_script():
    """FD_LUA_FLUSH as compiled into funneld: the C string literals of
    sinks/redis_scripts.h, concatenated and unescaped, with the FD_LUA_*
    macros pasted into it (sinks/redis_lua.h, sinks/redis_scripts.h, sinks/redis_users_lua.h)
    expanded as the preprocessor does."""
    import re
    tok = re.compile(r'"((?:[^"\\]|\\.)*)"|\b(FD_LUA_\w+)\b')
    macros = {}
    for h in ("redis_lua.h", "redis_users_lua.h", "redis_scripts.h"):
        text = (REPO / "sinks" / h).read_text()
        for m in re.finditer(r'#define (FD_LUA_\w+) \\\n((?:.*\\\n)*.*)', text):
            macros[m.group(1)] = m.group(2)

    def expand(body):
        out = []
        for m in tok.finditer(body):
            if m.group(1) is not None:
                out.append(bytes(m.group(1), "utf-8").decode("unicode_escape"))
            else:
                out.append(expand(macros[m.group(2)]))
        return "".join(out)

    text = (REPO / "sinks" / "redis_scripts.h").read_text()
    body = text[text.index("FD_LUA_FLUSH[] =") + len("FD_LUA_FLUSH[] ="):]
    return expand(body[:body.index(";\n")])


def flush_tail(args):
    """The flush's ARGV tail after the scopes (fd_redis_sink_flush): the
    coupon cap, then a per-user section with no records, then the index
    where that section starts (sinks/redis_users_lua.h)."""
    start = len(args) + 2  # ARGV is 1-based; the coupon cap comes first
    return [64, 0, 86400, 604800000, "day_n", "exposure", "exposure", 32, 1, 1, 0, start]


# (fields already in the hash, the entry's actions in batch order, cap,
#  the action fields afterwards)
SCRIPT_ROWS = [
    # room for all: each action gets its field
    ({}, [("click", 2), ("like", 1)], 2, {"click": 2, "like": 1}),
    # cap reached mid-entry: later actions go to __other__, summed
    ({}, [("a", 1), ("b", 2), ("c", 3), ("d", 4)], 2, {"a": 1, "b": 2, "__other__": 7}),
    # a full hash still counts the actions it has, in any position
    ({"a": 5, "b": 1}, [("c", 1), ("b", 2), ("d", 1), ("a", 1)], 2,
     {"a": 6, "b": 3, "__other__": 2}),
    # one free slot goes to the first new action in batch order
    ({"a": 5}, [("x", 1), ("y", 1), ("a", 1)], 2, {"a": 6, "x": 1, "__other__": 1}),
    # __other__ itself never takes a slot, and is added to, not replaced
    ({"__other__": 4}, [("__other__", 2), ("a", 1), ("b", 1), ("c", 1)], 2,
     {"a": 1, "b": 1, "__other__": 7}),
    # the fast path (HLEN + actions <= cap) leaves the same result
    ({"a": 1}, [("__other__", 1), ("b", 1)], 64, {"a": 1, "b": 1, "__other__": 1}),
    # exactly at the cap with fixed fields present: slow path, all fit
    ({"a": 1}, [("b", 1), ("c", 1)], 3, {"a": 1, "b": 1, "c": 1}),
]


def test_flush_script_action_cap(stack):
    """The flush script's cap rule row by row, on the real redis-server."""
    r = stack.redis()
    script = flush_script()
    prefix = "acs" + str(int(time.time() * 1000) % 10**8)
    for n, (before, actions, cap, after) in enumerate(SCRIPT_ROWS):
        bucket = "all:m1:%d" % (60 * n)
        key = "%s:c:%s" % (prefix, bucket)
        r.cmd("DEL", key)
        if before:
            pairs = [x for f, v in before.items() for x in ("interactions." + f, v)]
            r.cmd("HSET", key, "exposures", 1, *pairs)
        field = "t:%d" % n
        args = [prefix, "g", field, "", 1, "", 0, 0, 1, 60, 60, 60, 60, cap,
                1, bucket, 1, "interactions", sum(v for _, v in actions), len(actions)]
        for a, v in actions:
            args += ["interactions." + a, v]
        args += [0, 0]
        args += flush_tail(args)
        assert dec(r.cmd("EVAL", script, 0, *args)) == "OK", n
        raw = r.cmd("HGETALL", key)
        h = {dec(f): int(v) for f, v in zip(raw[::2], raw[1::2])}
        got = {f[len("interactions."):]: v for f, v in h.items() if f.startswith("interactions.")}
        assert got == after, "row %d: %s" % (n, got)
        assert h["interactions"] == sum(v for _, v in actions)
        r.cmd("DEL", key)
    r.cmd("DEL", "%s:offsets:g" % prefix, "%s:seen:g" % prefix)
