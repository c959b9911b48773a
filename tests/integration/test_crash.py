"""
test_crash.py — funneld SIGKILLed again and again while it drains.

The kill moments are seeded-random and spread across the drain: the first
kill lands 0.3–3 s after the first start, wherever startup is (joining the
group, seeking, first fetch); each of the 6 later ones is aimed at a random
point of progress (a random fraction of what is left of the stream, sorted,
at most 85%) and lands a random 0–0.5 s
after the stored offsets have passed that point, i.e. in the middle of
fetching, aggregating or a flush script. After each kill a new process starts
at once in the same group, prefix and DLQ topic. Progress targets rather than
wall-clock delays keep the kills spread whatever funneld's speed (and a
restart needs the dead member's 6 s session timeout before it gets
partitions, so a pure timer would mostly kill processes still waiting).

Then the final Redis state must equal the oracle exactly: counters flushed
together with their offsets in one script cannot be applied twice or lost.

The dead-letter topic is only at-least-once here, by design: a DLQ write is
acknowledged by Kafka before the offset past it is stored in Redis (never the
other way round, so nothing is lost), and a process killed between the two
leaves a DLQ message whose offset was not stored; the restart reads that
message again and writes it again. So every malformed message must be there
at least once, with the right headers, and nothing else may be.
"""

import time

import pytest

from conftest import (check_dlq, check_redis_equals_oracle, read_topic,
                      rng_for, scaled, total_progress, wait_drained)

NKILLS = 7  # 1 during startup + 6 aimed at progress points


def test_crash_restart(ctx, stack, stream, main_topics):
    r = stack.redis()
    rng = rng_for("crash")
    ends = main_topics.end_offsets()
    total = sum(ends.values())
    cfg = ctx.config(main_topics)
    kills = []  # (how, progress at the kill)

    def progress():
        return total_progress(r, ctx.prefix, ctx.group, ends)

    # 1: during startup
    fd = ctx.start(cfg)
    time.sleep(rng.uniform(0.3, 3.0))
    assert fd.alive(), "funneld died by itself\n" + fd.tail()
    fd.kill()
    kills.append(("startup", progress()))
    # Aim the rest at points spread over what is left of the drain.
    lo = max(0.05, kills[0][1] / total)
    targets = sorted(rng.uniform(lo, max(lo, 0.85)) for _ in range(NKILLS - 1))

    for t in targets:
        fd = ctx.start(cfg)
        at_start = progress()
        goal = max(int(t * total), at_start + 1)
        deadline = time.monotonic() + scaled(90)
        while True:
            p = progress()
            if p >= goal and p > at_start:
                break
            if not fd.alive():
                pytest.fail("funneld died by itself (exit %s) at progress %d/%d\n%s"
                            % (fd.proc.returncode, p, total, ctx.tails()),
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("no progress to %d/%d (at %d) within %.0fs after a "
                            "restart\n%s" % (goal, total, p, scaled(90),
                                             ctx.tails()), pytrace=False)
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        fd.kill()
        kills.append(("target %.2f" % t, progress()))

    print("kills (moment, stored progress after it):", kills, "of", total)
    mid = [k for k in kills if k[1] < total]
    assert len(mid) >= 5, (
        "only %d of the kills landed before the drain ended (%s); the test did "
        "not exercise crashes mid-stream" % (len(mid), kills))

    fd = ctx.start(cfg)
    wait_drained(r, ctx.prefix, ctx.group, ends, [fd])
    rc = fd.stop()
    assert rc == 0, "exit %s on SIGTERM\n%s" % (rc, fd.tail())

    check_redis_equals_oracle(r, stream, ctx.prefix)
    check_dlq(main_topics, read_topic(stack.bootstrap, ctx.dlq), exactly_once=False)
