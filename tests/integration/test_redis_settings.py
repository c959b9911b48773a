"""funneld checks the Redis settings of deploy/redis.conf's funneld block at
start (CONFIG GET): a difference is a warning naming the setting, its value,
what funneld wants and why; a user without CONFIG permission gets one info
line and the start goes on; either way the counts are exact."""
import subprocess
import time
import uuid
from pathlib import Path

from alert_receivers import free_port
from conftest import (assert_counters, funneld_redis_settings, read_counters, redis_server_cmd,
                      wait_drained, wait_ping)
from crafted import event, lctx, oracle_counters, produce_crafted, wait_log  # noqa: F401 (lctx)

MIN_MS = 60 * 1000
DIFFERS = "redis setting differs from deploy/redis.conf"


def exposures(n, ts):
    return [event(event_id="x%d" % i, type="exposure", ts=ts, user_id="u%d" % (i % 37),
                  product_id="course-a", channel="wechat_group") for i in range(n)]


def drain_and_count(lctx, stack, tmp_path, r, url, name):
    now = int(time.time() * 1000)
    topic = "settings-%s-%s" % (name, uuid.uuid4().hex[:8])
    ends = produce_crafted(stack, tmp_path / name, topic, "exposure", [exposures(300, now - 5 * MIN_MS)],
                           now)
    want, _ = oracle_counters(tmp_path / name, now, lctx.prefix)
    fd = lctx.start(lctx.config({topic: "exposure"}, redis_url=url))
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    assert_counters(want, read_counters(r, lctx.prefix), lctx.prefix)
    return fd


def test_block_is_what_the_harness_runs(stack):
    args = funneld_redis_settings()
    assert args[args.index("--hll-sparse-max-bytes") + 1] == "1000"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    r = stack.redis()
    assert r.cmd("CONFIG", "GET", "hll-sparse-max-bytes")[1] in ("1000", b"1000")


def test_settings_as_shipped_no_warning(lctx, stack, tmp_path):
    fd = drain_and_count(lctx, stack, tmp_path, stack.redis(), stack.redis_url, "ok")
    # the CONFIG GET replies come before the first flush's on the one connection
    log = Path(fd.log_path).read_text(errors="replace")
    assert DIFFERS not in log and "redis settings not checked" not in log, fd.tail()
    assert fd.stop() == 0, fd.tail()


def test_differing_settings_warn_with_reason(lctx, stack, tmp_path):
    port = free_port()
    home = tmp_path / "redis"
    home.mkdir()
    # later arguments win: Redis's defaults for the two settings
    srv = subprocess.Popen(redis_server_cmd(port, home, "--hll-sparse-max-bytes", "3000",
                                            "--maxmemory-policy", "allkeys-lru"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        r = wait_ping(port)
        fd = drain_and_count(lctx, stack, tmp_path, r, "redis://127.0.0.1:%d" % port, "differs")
        line = wait_log(fd, DIFFERS + ".*hll-sparse-max-bytes", timeout=10)
        assert "level=warn" in line and 'value="3000"' in line and 'want="<= 1000"' in line, line
        assert "PFADD" in line, line  # the measured reason
        line = wait_log(fd, DIFFERS + ".*maxmemory-policy", timeout=10)
        assert 'value="allkeys-lru"' in line and 'want="noeviction"' in line, line
        # a user without CONFIG: one info line, the start goes on
        name, pw = "fd-" + uuid.uuid4().hex[:10], uuid.uuid4().hex
        r.cmd("ACL", "SETUSER", name, "reset", "on", ">" + pw, "+@all", "-config", "~*", "&*")
        assert fd.stop() == 0, fd.tail()
        r.cmd("FLUSHALL")  # a private server: the next stream is counted alone
        fd2 = drain_and_count(lctx, stack, tmp_path, r, "redis://%s:%s@127.0.0.1:%d" % (name, pw, port),
                              "noperm")
        line = wait_log(fd2, "redis settings not checked", timeout=10)
        assert "level=info" in line and "start continues" in line, line
        assert "may not run CONFIG GET" in line, line
        log = Path(fd2.log_path).read_text(errors="replace")
        assert DIFFERS not in log, fd2.tail()
        assert fd2.stop() == 0, fd2.tail()
    finally:
        srv.terminate()
        srv.wait(timeout=30)
