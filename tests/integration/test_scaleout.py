"""
test_scaleout.py — two funneld processes in one consumer group
(cooperative-sticky), one SIGKILLed mid-stream, the other takes over.

The stream is fed into this test's own copy of the topics (suffix ".so") in
three steps, so that "mid-stream" holds whatever funneld's speed:
  1. 40% of every partition, then both processes start (client.id fd-a and
     fd-b, otherwise the same config);
  2. once the group shows both members sharing all partitions, another 30%;
     as soon as the victim (fd-b) has stored progress on its own partitions
     (so it did real work, flushes included), it is SIGKILLed 0–0.3 s later;
  3. the last 30%, after the kill.
No replacement is started (decision): the survivor must pick up the victim's
partitions after its session timeout (6 s), seek to the offsets in Redis and
drain everything alone. Totals must equal the oracle exactly; the DLQ is
at-least-once (see test_crash.py: the victim may have written DLQ messages
whose offsets it never stored).
"""

import time

import pytest

from conftest import (TopicSet, check_dlq, check_redis_equals_oracle,
                      describe_group, offsets_progress, read_topic, rng_for,
                      scaled, wait_drained)

COOP = {"partition.assignment.strategy": "cooperative-sticky"}


def test_scaleout_kill_one(ctx, stack, stream):
    r = stack.redis()
    rng = rng_for("scaleout")
    topics = TopicSet(stack, stream, ".so").create().produce(0.4)
    ends = topics.end_offsets()
    nparts = len(ends)
    a = ctx.start(ctx.config(topics, props=dict(COOP, **{"client.id": "fd-a"})))
    b = ctx.start(ctx.config(topics, props=dict(COOP, **{"client.id": "fd-b"})))

    deadline = time.monotonic() + scaled(60)
    while True:
        members = describe_group(stack.bootstrap, ctx.group)
        if (sorted(members) == ["fd-a", "fd-b"] and all(members.values())
                and sum(map(len, members.values())) == nparts):
            break
        for p in (a, b):
            if not p.alive():
                pytest.fail("funneld exited during the join\n" + ctx.tails(),
                            pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("group never had fd-a and fd-b sharing %d partitions: %s\n%s"
                        % (nparts, members, ctx.tails()), pytrace=False)
        time.sleep(0.2)
    print("assignment:", members)
    b_keys = ["%s:%d" % tp for tp in members["fd-b"]]
    base = offsets_progress(r, ctx.prefix, ctx.group)
    base = {k: base.get(k, 0) for k in b_keys}

    topics.produce(0.7)
    deadline = time.monotonic() + scaled(60)
    while True:
        now = offsets_progress(r, ctx.prefix, ctx.group)
        if any(now.get(k, 0) > base[k] for k in b_keys):
            break
        if not b.alive() or time.monotonic() > deadline:
            pytest.fail("fd-b stored no progress on its partitions %s\n%s" % (
                b_keys, ctx.tails()), pytrace=False)
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.3))
    b.kill()
    now = offsets_progress(r, ctx.prefix, ctx.group)
    print("killed fd-b (pid %d); its partitions at %s, before its work %s" % (
        b.pid, {k: now.get(k, 0) for k in b_keys}, base))
    topics.produce(1.0)

    wait_drained(r, ctx.prefix, ctx.group, ends, [a], timeout=120)
    # the group as the broker sees it (polled: a describe can time out)
    deadline = time.monotonic() + scaled(30)
    while True:
        members = describe_group(stack.bootstrap, ctx.group)
        if list(members) == ["fd-a"] and len(members["fd-a"]) == nparts:
            break
        assert time.monotonic() < deadline, "survivor fd-a does not hold all %d partitions: %s" % (
            nparts, members)
        time.sleep(0.5)
    rc = a.stop()
    assert rc == 0, "survivor exited %s on SIGTERM\n%s" % (rc, a.tail())

    check_redis_equals_oracle(r, stream, ctx.prefix)
    check_dlq(topics, read_topic(stack.bootstrap, ctx.dlq), exactly_once=False)
