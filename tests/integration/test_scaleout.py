"""
test_scaleout.py — two funneld processes in one consumer group
(cooperative-sticky), one SIGKILLed mid-stream, the other takes over.

The stream is fed into this test's own copy of the topics (suffix ".so") in
three steps so that "mid-stream" holds whatever funneld's speed: 40% before
the processes start; once the group shows both members with partitions,
another 30%; the victim is killed right after that (0–0.5 s); the last 30%
is produced after the kill. No replacement is started (decision): the
survivor must pick up the victim's partitions after its session timeout
(6 s), seek to the offsets in Redis and drain everything alone. Totals must
equal the oracle exactly; the DLQ is at-least-once (see test_crash.py: the
victim may have written DLQ messages whose offsets it never stored).
"""

import time

import pytest

from conftest import (TopicSet, check_dlq, check_redis_equals_oracle,
                      describe_group, read_topic, rng_for, scaled,
                      total_progress, wait_drained)


def test_scaleout_kill_one(ctx, stack, stream):
    r = stack.redis()
    rng = rng_for("scaleout")
    topics = TopicSet(stack, stream, ".so").create().produce(0.4)
    ends = topics.end_offsets()
    nparts = len(ends)
    cfg = ctx.config(topics, props={"partition.assignment.strategy": "cooperative-sticky"})
    a = ctx.start(cfg)
    b = ctx.start(cfg)

    deadline = time.monotonic() + scaled(60)
    while True:
        members = describe_group(stack.bootstrap, ctx.group)
        owned = [m for m in members.values() if m]
        if len(members) == 2 and len(owned) == 2 and sum(map(len, owned)) == nparts:
            break
        for p in (a, b):
            if not p.alive():
                pytest.fail("funneld exited during the join\n" + ctx.tails(), pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("group never had 2 members sharing %d partitions: %s\n%s"
                        % (nparts, members, ctx.tails()), pytrace=False)
        time.sleep(0.2)
    print("assignment before the kill:", members)

    topics.produce(0.7)
    time.sleep(rng.uniform(0.0, 0.5))
    before = total_progress(r, ctx.prefix, ctx.group, ends)
    b.kill()
    print("killed pid %d at progress %d/%d" % (b.pid, before, sum(ends.values())))
    topics.produce(1.0)

    wait_drained(r, ctx.prefix, ctx.group, ends, [a], timeout=120)
    members = describe_group(stack.bootstrap, ctx.group)
    assert len(members) == 1 and sum(map(len, members.values())) == nparts, members
    rc = a.stop()
    assert rc == 0, "survivor exited %s on SIGTERM\n%s" % (rc, a.tail())

    check_redis_equals_oracle(r, stream, ctx.prefix)
    check_dlq(topics, read_topic(stack.bootstrap, ctx.dlq), exactly_once=False)
