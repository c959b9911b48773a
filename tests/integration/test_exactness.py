"""
test_exactness.py — one funneld drains the whole session stream from Kafka.

Claims checked: every counter hash equals the oracle exactly (absent = 0,
both ways); every HLL is within 2% of the exact distinct count (±2 under
100); the dead-letter topic holds exactly the malformed messages — each once,
with the oracle's reason and field headers and the original bytes; SIGTERM
gives exit status 0; `{prefix}:schema` is "1"; `{prefix}:scopes` names every
scope; every c:/u: key carries the TTL of its granularity.
"""

import pytest

from conftest import (check_dlq, check_redis_equals_oracle, read_topic,
                      scan_keys, dec, wait_drained, batched)

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
    fd = ctx.start(ctx.config(main_topics))
    wait_drained(r, ctx.prefix, ctx.group, main_topics.end_offsets(), [fd])

    rc = fd.stop()
    assert rc == 0, "funneld exited %s on SIGTERM\n%s" % (rc, fd.tail())
    # The final flush on SIGTERM must not move anything past the input.
    wait_drained(r, ctx.prefix, ctx.group, main_topics.end_offsets(), (),
                 timeout=5, must_stay_alive=False)

    counters, distinct = check_redis_equals_oracle(r, stream, ctx.prefix)
    stream.registry["kafka_prefix"] = ctx.prefix

    assert dec(r.cmd("GET", ctx.prefix + ":schema")) == "1"

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
