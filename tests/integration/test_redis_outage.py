"""
test_redis_outage.py — Redis goes away for 10 s while funneld runs.

An extra redis-server (stack.sh redis-up, `--appendonly yes --appendfsync
always`, so every acknowledged write survives its restart) serves this test
alone. Half the stream (own topics, suffix ".ro") is produced, funneld
starts; once it has stored offsets, Redis is stopped with SHUTDOWN; the other
half is produced while Redis is down; 10 s later redis-server is started
again by this test with the same arguments, port and directory (it reloads
its AOF, and has forgotten every loaded script: EVALSHA answers NOSCRIPT).
funneld must stay alive the whole time (checked every 0.1 s), reconnect, and
drain; the totals must equal the oracle exactly.
"""

import subprocess
import time

import pytest

from conftest import (STACK_SH, pid_alive, TopicSet, Redis, check_redis_equals_oracle, rng_for,
                      redis_server_cmd, scaled, total_progress, wait_drained,
                      wait_ping)

OUTAGE_S = 10
AOF_ARGS = ("--appendonly", "yes", "--appendfsync", "always")


def test_redis_outage(ctx, stack, stream):
    rng = rng_for("redis_outage")
    name = "ro-" + ctx.prefix
    out = stack.script("redis-up", stack.dir, name, *AOF_ARGS).stdout.decode().split()
    port, pid = int(out[0]), int(out[1])
    rdir = stack.dir / name
    restarted = None
    try:
        r = Redis("127.0.0.1", port)
        assert r.cmd("CONFIG", "GET", "appendfsync")[1] == b"always"
        url = "redis://127.0.0.1:%d" % port
        topics = TopicSet(stack, stream, ".ro").create().produce(0.5)
        ends = topics.end_offsets()
        fd = ctx.start(ctx.config(topics, redis_url=url))

        deadline = time.monotonic() + scaled(60)
        while total_progress(r, ctx.prefix, ctx.group, ends) == 0:
            if not fd.alive() or time.monotonic() > deadline:
                pytest.fail("funneld stored no offset\n" + fd.tail(), pytrace=False)
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))

        try:
            r.cmd("SHUTDOWN")
        except (OSError, ConnectionError):
            pass  # the connection drops when redis exits
        r.close()
        t_down = time.monotonic()
        deadline = t_down + scaled(20)
        while pid_alive(pid):
            assert time.monotonic() < deadline, "redis did not shut down"
            time.sleep(0.05)

        topics.produce(1.0)
        while time.monotonic() - t_down < OUTAGE_S:
            assert fd.alive(), "funneld died while Redis was down\n" + fd.tail()
            time.sleep(0.1)

        logf = open(rdir / "restart.out", "wb")
        restarted = subprocess.Popen(redis_server_cmd(port, rdir, *AOF_ARGS),
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT)
        # stack.sh down/redis-down stop what DIR/NAME/pid names: now this one
        (rdir / "pid").write_text("%d\n" % restarted.pid)
        r = wait_ping(port)
        assert fd.alive(), "funneld died while Redis was down\n" + fd.tail()

        # Alive the whole way: wait_drained fails as soon as it exits.
        wait_drained(r, ctx.prefix, ctx.group, ends, [fd], timeout=120)
        rc = fd.stop()
        assert rc == 0, "exit %s on SIGTERM\n%s" % (rc, fd.tail())
        check_redis_equals_oracle(r, stream, ctx.prefix)
    finally:
        subprocess.run(["bash", str(STACK_SH), "redis-down", str(stack.dir), name],
                       capture_output=True, timeout=scaled(60))
        if restarted is not None and restarted.poll() is None:
            restarted.kill()
        if restarted is not None:
            restarted.wait(timeout=30)
