"""
test_state_loss.py — Redis loses funneld's state under an idle group.

A private redis-server (stack.sh redis-up, no persistence) serves this test
alone, so FLUSHALL and a restart touch no other test. funneld drains the
session stream and goes idle. Then, twice:
1. FLUSHALL: funneld must notice within a few snapshot intervals although no
   flush is due, log one error line per partition naming the vanished offset
   and where it restarts, count it on /metrics
   (`funneld_redis_state_lost_total{key="offsets"}` = one per partition,
   `{key="schema"}` = 1), rewrite `{prefix}:schema`, and re-consume what
   Kafka still holds, so the offsets are written again and every counter is
   exact against the oracle.
2. Redis restarted without persistence (SHUTDOWN NOSAVE, same port): the same
   again, seen through the reconnect's offset read.
Before the fix funneld stayed silent on an idle group: Redis kept an empty
database, no offsets, no schema.
"""

import subprocess
import time

import pytest

from alert_receivers import free_port
from conftest import (STACK_SH, pid_alive, check_redis_equals_oracle, dec, redis_server_cmd,
                      scaled, wait_drained, wait_ping)
from test_metrics import get, metrics


def _wait_metric(fd, port, key, want, timeout=30):
    deadline = time.monotonic() + scaled(timeout)
    m = {}
    while time.monotonic() < deadline:
        code, text = get(port, "/metrics")
        m = metrics(text) if code == 200 else {}
        if m.get(key) == want:
            return m
        assert fd.alive(), fd.tail()
        time.sleep(0.2)
    pytest.fail("%s = %s after %ds, want %s\n%s" % (key, m.get(key), timeout, want, fd.tail()),
                pytrace=False)


def _lost_lines(fd):
    return [l for l in fd.log_path.read_text(errors="replace").splitlines()
            if "level=error" in l and "redis state lost: stored offset vanished" in l]


def test_state_loss(ctx, stack, stream, main_topics):
    name = "sl-" + ctx.prefix
    out = stack.script("redis-up", stack.dir, name).stdout.decode().split()
    port, pid, rdir = int(out[0]), int(out[1]), stack.dir / name
    restarted = None
    try:
        r = wait_ping(port)
        http = free_port()
        fd = ctx.start(ctx.config(main_topics,
                                  redis={"url": "redis://127.0.0.1:%d" % port,
                                         "prefix": ctx.prefix},
                                  http={"listen": "127.0.0.1:%d" % http}))
        ends = main_topics.end_offsets()
        nparts = len(ends)
        offkey = "%s:offsets:%s" % (ctx.prefix, ctx.group)
        wait_drained(r, ctx.prefix, ctx.group, ends, [fd])

        # 1. FLUSHALL under an idle group
        r.cmd("FLUSHALL")
        deadline = time.monotonic() + scaled(30)
        while r.cmd("GET", ctx.prefix + ":schema") is None:
            assert fd.alive(), fd.tail()
            if time.monotonic() > deadline:
                pytest.fail("{prefix}:schema not rewritten 30 s after FLUSHALL\n" + fd.tail(),
                            pytrace=False)
            time.sleep(0.1)
        _wait_metric(fd, http, 'funneld_redis_state_lost_total{key="offsets"}', nparts)
        m = _wait_metric(fd, http, 'funneld_redis_state_lost_total{key="schema"}', 1)
        assert dec(r.cmd("GET", ctx.prefix + ":schema")) == "2"
        lines = _lost_lines(fd)
        assert len(lines) == nparts, "\n".join(lines)
        for k, v in ends.items():
            assert any('partition="%s"' % k in l and "lost_offset=%d" % v in l and
                       "restart=earliest_retained" in l and offkey in l for l in lines), (k, lines)
        wait_drained(r, ctx.prefix, ctx.group, ends, [fd])
        check_redis_equals_oracle(r, stream, ctx.prefix)

        # 2. restart without persistence
        try:
            r.cmd("SHUTDOWN", "NOSAVE")
        except (OSError, ConnectionError):
            pass
        r.close()
        deadline = time.monotonic() + scaled(20)
        while pid_alive(pid):
            assert time.monotonic() < deadline, "redis did not shut down"
            time.sleep(0.05)
        logf = open(rdir / "restart.out", "wb")
        restarted = subprocess.Popen(redis_server_cmd(port, rdir), stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT)
        (rdir / "pid").write_text("%d\n" % restarted.pid)
        r = wait_ping(port)
        _wait_metric(fd, http, 'funneld_redis_state_lost_total{key="offsets"}', 2 * nparts, timeout=60)
        assert len(_lost_lines(fd)) == 2 * nparts
        wait_drained(r, ctx.prefix, ctx.group, ends, [fd])
        assert dec(r.cmd("GET", ctx.prefix + ":schema")) == "2"
        check_redis_equals_oracle(r, stream, ctx.prefix)
        assert fd.stop() == 0, fd.tail()
    finally:
        subprocess.run(["bash", str(STACK_SH), "redis-down", str(stack.dir), name],
                       capture_output=True, timeout=scaled(60))
        if restarted is not None:
            if restarted.poll() is None:
                restarted.kill()
            restarted.wait(timeout=30)
