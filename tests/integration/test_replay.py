"""
test_replay.py — `funneld replay` over the stream's per-partition files.

Each file is given as its own partition (`--as TOPIC:PARTITION FILE`), so
lateness and offsets are per partition exactly as on the Kafka path. Claims:
the counters equal the oracle exactly (HLLs within tolerance); they equal the
Kafka path's (test_exactness's prefix, when that test ran in this session:
counters and PFCOUNTs identical key by key, since an HLL depends only on the
set of users added); the offsets end at each file's line count; and a second
replay into the same prefix changes nothing at all (counters, HLL counts,
offsets) — effectively-once across runs.
"""

import subprocess

import pytest

from conftest import (TopicSet, assert_counters, check_redis_equals_oracle,
                      funneld_bin, read_counters, read_distinct, read_hash,
                      scaled, wait_drained)


def run_replay(ctx, stream, cfg):
    args = [str(funneld_bin()), "replay", "-c", str(cfg)]
    for topic, part, path in stream.files():
        args += ["--as", "%s:%d" % (topic, part), str(path)]
    log = ctx.dir / ("replay-%d.log" % ctx.nconf)
    with open(log, "wb") as f:
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=f,
                               stderr=subprocess.STDOUT, timeout=scaled(240))
        except subprocess.TimeoutExpired:
            pytest.fail("funneld replay did not finish in %.0fs" % scaled(240),
                        pytrace=False)
    text = log.read_bytes().decode(errors="replace")
    assert p.returncode == 0, "funneld replay exited %d\n%s" % (
        p.returncode, "\n".join(text.splitlines()[-30:]))


def rekey(d, prefix):
    return {k[len(prefix):]: v for k, v in d.items()}


def test_replay(ctx, stack, stream):
    r = stack.redis()
    topics = TopicSet(stack, stream, "")
    cfg = ctx.config(topics)
    run_replay(ctx, stream, cfg)
    offs_key = "%s:offsets:%s" % (ctx.prefix, ctx.group)
    wait_drained(r, ctx.prefix, ctx.group, topics.end_offsets(), (), timeout=5,
                 must_stay_alive=False)
    counters, distinct = check_redis_equals_oracle(r, stream, ctx.prefix)

    kp = stream.registry.get("kafka_prefix")
    if kp is not None:
        kc, kd = read_counters(r, kp), read_distinct(r, kp)
        assert_counters(rekey(kc, kp), rekey(counters, ctx.prefix), "",
                        what="replay vs Kafka-path counters")
        dd = rekey(kd, kp)
        rd = rekey(distinct, ctx.prefix)
        diff = [k for k in sorted(set(dd) | set(rd)) if dd.get(k) != rd.get(k)]
        assert not diff, "PFCOUNT differs between replay and Kafka path: %s" % [
            (k, dd.get(k), rd.get(k)) for k in diff[:10]]
    else:
        print("test_exactness did not run in this session: compared with the "
              "oracle only")

    offsets = read_hash(r, offs_key)
    run_replay(ctx, stream, cfg)
    assert read_hash(r, offs_key) == offsets, "second replay moved the offsets"
    c2, d2 = read_counters(r, ctx.prefix), read_distinct(r, ctx.prefix)
    assert_counters(counters, c2, ctx.prefix, what="second replay vs first")
    assert d2 == distinct, "second replay changed HLLs: %s" % [
        (k, distinct.get(k), d2.get(k)) for k in sorted(set(d2) | set(distinct))
        if d2.get(k) != distinct.get(k)][:10]
