"""
test_exit_status.py — a command that failed never exits 0 in silence.

Claims checked:
- `funneld validate -` applies the size limit while reading: a 600 MB line,
  streamed through a pipe to a process whose address space is capped at
  200 MB, is reported `too_large` and the next line is still checked (exit 1,
  the documented status for rejected lines). An input that cannot be read
  (a directory) is an error on stderr and exit 1, never "all valid".
- `funneld replay` whose final flush fails (the Redis user may not run
  scripts: EVALSHA answers NOPERM, while offsets read fine) exits 1 and says
  the final flush did not happen.
- `funneld run` stopped with SIGTERM while its Redis is down exits 1 with an
  error line saying the final flush did not happen (a private redis-server,
  shut down mid-stream).
"""

import contextlib
import resource
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (STACK_SH, Redis, funneld_bin, scaled, total_progress)

LINE_MB = 600
ADDRESS_SPACE = 200 << 20


def _cap_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_validate_huge_line_under_memory_limit(tmp_path):
    errf = open(tmp_path / "stderr", "wb")
    p = subprocess.Popen([str(funneld_bin()), "validate", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=errf, preexec_fn=_cap_address_space)
    fed = {}

    def feed():
        chunk = b"a" * (1 << 20)
        try:
            p.stdin.write(b'{"event_id":"')
            for _ in range(LINE_MB):
                p.stdin.write(chunk)
            p.stdin.write(b'"}\n{}\n')
            fed["all"] = True
        except BrokenPipeError:
            fed["all"] = False  # funneld quit reading: the assertions say why
        finally:
            try:
                p.stdin.close()
            except BrokenPipeError:
                pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    timer = threading.Timer(scaled(120), p.kill)  # a hang fails below, not forever
    timer.start()
    try:
        out = p.stdout.read()
        rc = p.wait()
    finally:
        timer.cancel()
        errf.close()
    t.join(timeout=scaled(30))
    err = (tmp_path / "stderr").read_bytes()
    text = out.decode(errors="replace")
    assert text == "1\ttoo_large\t-\n2\tmissing_field\tevent_id\n", (
        "stdout %r, exit %d, stderr %r" % (text[:300], rc, err[-500:]))
    assert rc == 1, "exit %d, want 1 (rejected lines)" % rc
    assert fed.get("all"), "validate stopped reading before the end of its input"


def _event_line(n):
    """A line of exactly n bytes whose first failing check (under the size
    limit) is the missing event_id: the padding is an unknown field."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * (n - len(head) - len(tail)) + tail


def test_validate_limit_at_chunk_edges(tmp_path):
    """The reading limit against lines of limit-1 .. limit+1 bytes that cross
    the reader's 64 KiB chunk edges, an empty line, a CR line and a last line
    without newline: the same verdicts as checking each whole line."""
    limit = 256
    lines = []
    pos = 0
    while pos < 3 * 65536:
        for n in (limit - 1, limit, limit + 1, 1000, 65536 - 7):
            lines.append(_event_line(n))
            pos += n + 1
    lines += [b"", b"\r", _event_line(limit)]
    data = b"\n".join(lines)  # the last line has no newline
    path = tmp_path / "edges.jsonl"
    path.write_bytes(data)
    want = []
    for i, line in enumerate(lines, 1):
        if len(line) > limit:
            want.append("%d\ttoo_large\t-" % i)
        elif line.strip(b"\r") == b"":
            want.append("%d\tinvalid_json\t-" % i)
        else:
            want.append("%d\tmissing_field\tevent_id" % i)
    p = subprocess.run([str(funneld_bin()), "validate", "--set", "max_message_bytes=%d" % limit,
                        str(path)], capture_output=True, timeout=scaled(60))
    got = p.stdout.decode().splitlines()
    assert got == want, "first difference at %s" % next(
        (i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    assert p.returncode == 1, p.stderr


def test_validate_unreadable_input(tmp_path):
    p = subprocess.run([str(funneld_bin()), "validate", str(tmp_path)],
                       capture_output=True, timeout=scaled(30))
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "unreadable input: exit 0, stdout %r" % p.stdout[:200]
    assert "validate" in err and "fail" in err, err


@contextlib.contextmanager
def noscript_user(stack):
    """A Redis user that may do anything but run scripts (so every flush is
    refused with NOPERM while Redis stays up); yields (url, password, prefix,
    group)."""
    tag = uuid.uuid4().hex[:8]
    user, password = "fd-noscript-" + tag, "pw" + tag
    r = stack.redis()
    r.cmd("ACL", "SETUSER", user, "on", ">" + password, "~*", "&*", "+@all",
          "-evalsha", "-eval", "-evalsha_ro", "-eval_ro", "-fcall", "-fcall_ro")
    try:
        yield ("redis://%s:%s@127.0.0.1:%d" % (user, password, stack.redis_port), password,
               "ex" + tag, "g-" + tag)
    finally:
        r.cmd("ACL", "DELUSER", user)


def test_replay_final_flush_failed(stack, tmp_path):
    """The final flush fails, Redis stays up: before the fix the partition
    re-read its offset, counted as flushed, and replay exited 0."""
    with noscript_user(stack) as (url, password, prefix, group):
        now_ms = int(time.time() * 1000)
        lines = ['{"event_id":"e%d","type":"exposure","ts":%d,"user_id":"u%d",'
                 '"product_id":"p1"}' % (i, now_ms, i) for i in range(5)]
        path = tmp_path / "in.jsonl"
        path.write_text("\n".join(lines) + "\n")
        p = subprocess.run([str(funneld_bin()), "replay", "--redis", url, "--prefix", prefix,
                            "--group", group, "--set", "redis.timeout_ms=2000", str(path)],
                           capture_output=True, timeout=scaled(60))
        text = (p.stdout + p.stderr).decode(errors="replace")
        assert "NOPERM" in text, "the flush was not refused:\n" + text[-3000:]
        assert p.returncode == 1, "final flush failed, exit %d\n%s" % (p.returncode, text[-3000:])
        assert "level=error" in text and "final flush did not happen" in text, text[-3000:]
        assert password not in text, "the password is in the log"
        assert stack.redis().cmd("HGET", prefix + ":offsets:" + group, "replay:0") is None


def test_replay_stops_when_a_partition_stops(stack, tmp_path):
    """A partition stopped by a failing flush script is paused, so a finite
    input is never read to its end: replay must stop (exit 1), not hang."""
    with noscript_user(stack) as (url, password, prefix, group):
        now_ms = int(time.time() * 1000)
        path = tmp_path / "in.jsonl"
        with open(path, "w") as f:
            for i in range(30000):  # many flushes' worth (flush_max_events 1000)
                f.write('{"event_id":"e%d","type":"exposure","ts":%d,"user_id":"u%d",'
                        '"product_id":"p1"}\n' % (i, now_ms, i))
        p = subprocess.run([str(funneld_bin()), "replay", "--redis", url, "--prefix", prefix,
                            "--group", group, "--set", "flush_max_events=1000", str(path)],
                           capture_output=True, timeout=scaled(60))
        text = (p.stdout + p.stderr).decode(errors="replace")
        assert "partition stopped" in text, text[-3000:]
        assert p.returncode == 1, "exit %d\n%s" % (p.returncode, text[-3000:])
        assert stack.redis().cmd("HGET", prefix + ":offsets:" + group, "replay:0") is None


def test_sigterm_while_redis_down(ctx, stack, stream, main_topics):
    name = "es-" + ctx.prefix
    out = stack.script("redis-up", stack.dir, name).stdout.decode().split()
    port = int(out[0])
    try:
        r = Redis("127.0.0.1", port)
        fd = ctx.start(ctx.config(main_topics,
                                  redis={"url": "redis://127.0.0.1:%d" % port,
                                         "prefix": ctx.prefix}))
        ends = main_topics.end_offsets()
        deadline = time.monotonic() + scaled(60)
        while total_progress(r, ctx.prefix, ctx.group, ends) == 0:
            if not fd.alive() or time.monotonic() > deadline:
                pytest.fail("funneld stored no offset\n" + fd.tail(), pytrace=False)
            time.sleep(0.05)
        try:
            r.cmd("SHUTDOWN", "NOSAVE")
        except (OSError, ConnectionError):
            pass  # the connection drops when redis exits
        r.close()
        # funneld has noticed once every partition resynced for redis_down
        deadline = time.monotonic() + scaled(30)
        while "reason=redis_down" not in fd.log_path.read_text(errors="replace"):
            if not fd.alive() or time.monotonic() > deadline:
                pytest.fail("funneld did not notice Redis going down\n" + fd.tail(), pytrace=False)
            time.sleep(0.1)
        rc = fd.stop()
        log = fd.log_path.read_text(errors="replace")
        assert rc == 1, "SIGTERM with Redis down: exit %s, want 1\n%s" % (rc, fd.tail())
        assert any("level=error" in l and "final flush did not happen" in l
                   for l in log.splitlines()), fd.tail()
    finally:
        subprocess.run(["bash", str(STACK_SH), "redis-down", str(stack.dir), name],
                       capture_output=True, timeout=scaled(60))
