"""
test_rebalance_pause.py — a partition that was paused when it was revoked
is read again when it comes back.

librdkafka keeps a partition's pause flag across a revoke and a later
assignment of the same partition to the same consumer. funneld pauses a
partition that is halted (its flush refused twice), syncing or blocked by a
full dead-letter queue; the pipeline takes a newly assigned partition as
running. So a partition revoked while paused and later assigned back must be
resumed explicitly, or it is never read again.

Shape: a 4-partition topic; `{prefix}:scopes` is planted as a string, so
every flush is refused (WRONGTYPE) and instance A halts (pauses) all four
partitions. The plant is removed; instance B joins (cooperative-sticky: it
takes some of A's paused partitions), drains them, and stops. B's partitions
go back to A. New events are produced to every partition: the partitions
that went to B and back must be drained by A (A's other partitions stay
halted, as documented: a halted partition waits for a restart or a new
assignment).
"""

import time
import uuid

import pytest

from conftest import describe_group, offsets_progress, produce_lines, scaled
from crafted import event, lctx, produce_crafted, wait_until  # noqa: F401

COOP = {"partition.assignment.strategy": "cooperative-sticky"}
NPARTS = 4


def exposures(p, n, ts, start):
    return [event(event_id="rp%d-%d" % (p, start + i), type="exposure", ts=ts,
                  user_id="u%d" % i, product_id="course-rp", channel="weibo")
            for i in range(n)]


def test_partition_paused_at_revoke_is_read_when_it_comes_back(lctx, stack, tmp_path):
    r = stack.redis()
    now = int(time.time() * 1000)
    ts = now - 5 * 60_000
    topic = "rebal-pause-" + uuid.uuid4().hex[:8]
    ends = produce_crafted(stack, tmp_path / "s", topic, "exposure",
                           [exposures(p, 200, ts, 0) for p in range(NPARTS)], now)
    r.cmd("SET", lctx.prefix + ":scopes", "planted")

    a = lctx.start(lctx.config({topic: "exposure"}, props=dict(COOP, **{"client.id": "fd-a"})))
    wait_until("all %d partitions of A halted" % NPARTS,
               lambda: open(a.log_path, errors="replace").read().count("partition stopped")
               >= NPARTS, 90, a)
    assert offsets_progress(r, lctx.prefix, lctx.group) == {}, "a refused flush wrote offsets"
    r.cmd("DEL", lctx.prefix + ":scopes")

    b = lctx.start(lctx.config({topic: "exposure"}, props=dict(COOP, **{"client.id": "fd-b"})))

    def shared():
        m = describe_group(stack.bootstrap, lctx.group)
        ok = (sorted(m) == ["fd-a", "fd-b"] and all(m.values())
              and sum(map(len, m.values())) == NPARTS)
        return ok and m
    members = wait_until("A and B sharing the partitions", shared, 60, b)
    moved = ["%s:%d" % tp for tp in members["fd-b"]]
    print("B took", moved)
    wait_until("B drained its partitions",
               lambda: all(offsets_progress(r, lctx.prefix, lctx.group).get(k) == ends[k]
                           for k in moved), 60, b)
    assert b.stop() == 0, b.tail()
    wait_until("A holding all partitions again",
               lambda: sorted(describe_group(stack.bootstrap, lctx.group)) == ["fd-a"]
               and len(describe_group(stack.bootstrap, lctx.group)["fd-a"]) == NPARTS, 60, a)

    jobs = [(topic, p, exposures(p, 100, ts, 200), 200) for p in range(NPARTS)]
    produce_lines(stack.bootstrap, jobs)
    deadline = time.monotonic() + scaled(45)
    while True:
        got = offsets_progress(r, lctx.prefix, lctx.group)
        if all(got.get(k) == ends[k] + 100 for k in moved):
            break
        if time.monotonic() > deadline:
            pytest.fail("partitions that went to B and back were not read again by A: "
                        "offsets %s, want %d on %s\n%s"
                        % (got, 300, moved, a.tail()), pytrace=False)
        time.sleep(0.2)
    assert a.alive(), a.tail()
