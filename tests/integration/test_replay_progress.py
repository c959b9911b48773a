"""
test_replay_progress.py — `funneld replay`'s progress line (SPEC §7: "progress
bar on a TTY"), against the session's real redis-server.

Claims checked:
- stderr on a terminal (a pseudo-terminal, 120 columns), a regular file of N
  lines: progress lines are drawn in place ("\\r", no newline between
  redraws) and the last one reads 100%, a full bar, N lines, the file's size
  and the accepted/rejected counts of the totals log line; it ends with a
  newline, so the totals line starts a line of its own; every log line that
  comes while the progress line is up erases it first, so no log line is
  glued to a half-drawn progress line. Redis got every line (offset N).
- `-` with stdin a pipe, stderr on a terminal: the progress line, with the
  line count but no percentage and no bar (the size is not known).
- stderr a pipe (not a terminal): no progress output at all and no escape
  sequences, the log lines exactly as before.
"""

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
import uuid

import pytest

from conftest import funneld_bin, scaled

NLINES = 20000
BAD_EVERY = 1000  # one invalid line in each thousand: rejected=20

PROGRESS_RE = re.compile(rb"\rreplay [^\r\n]*?\x1b\[K")
FINAL_RE = re.compile(
    rb"\rreplay 100% \[(#+)\]  (\d+) lines  ([0-9.]+)/([0-9.]+) (B|KiB|MiB)"
    rb"  accepted (\d+)  rejected (\d+)\x1b\[K\r\n")
TOTALS_RE = re.compile(rb"msg=\"totals\" accepted=(\d+) late=\d+ rejected=(\d+)")


def write_input(path):
    now_ms = int(time.time() * 1000)
    bad = 0
    with open(path, "w") as f:
        for i in range(NLINES):
            if i % BAD_EVERY == 7:
                f.write("not json\n")
                bad += 1
                continue
            f.write('{"event_id":"e%d","type":"exposure","ts":%d,"user_id":"u%d",'
                    '"product_id":"p%d"}\n' % (i, now_ms, i, i % 5))
    return bad


def replay_args(stack, prefix, group, path):
    return [str(funneld_bin()), "replay", "--redis", stack.redis_url, "--prefix", prefix,
            "--group", group, "--set", "http.listen=", str(path)]


def run_on_pty(args, stdin=subprocess.DEVNULL, feed=None, cols=120):
    """Runs args with stderr on a new pseudo-terminal (stdout to /dev/null);
    returns (exit status, every byte the terminal received)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    try:
        p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.DEVNULL, stderr=slave)
    finally:
        os.close(slave)
    if feed is not None:
        p.stdin.write(feed)
        p.stdin.close()
    out = bytearray()
    deadline = time.monotonic() + scaled(60)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
        else:
            p.kill()
            p.wait()
            pytest.fail("funneld replay did not finish in %.0fs:\n%s" % (
                scaled(60), bytes(out[-3000:]).decode(errors="replace")), pytrace=False)
        rc = p.wait(timeout=scaled(30))
    finally:
        os.close(master)
    return rc, bytes(out)


def offset(stack, prefix, group):
    v = stack.redis().cmd("HGET", "%s:offsets:%s" % (prefix, group), "replay:0")
    return None if v is None else int(v)


def tag():
    return uuid.uuid4().hex[:8]


def test_progress_on_a_terminal(stack, tmp_path):
    path = tmp_path / "rp.jsonl"
    bad = write_input(path)
    size = path.stat().st_size
    prefix, group = "rpp" + tag(), "g-rpp"
    rc, out = run_on_pty(replay_args(stack, prefix, group, path))
    text = out.decode(errors="replace")
    assert rc == 0, "replay exited %d:\n%s" % (rc, text[-3000:])

    draws = PROGRESS_RE.findall(out)
    assert draws, "no progress line on the terminal:\n" + text[-3000:]
    m = FINAL_RE.search(out)
    assert m, "no final progress line (100%%, full bar, newline):\n%r" % out[-1500:]
    bar, lines, done, total, unit, accepted, rejected = m.groups()
    assert int(lines) == NLINES, m.group(0)
    assert done == total, m.group(0)
    div = {b"B": 1, b"KiB": 1024, b"MiB": 1024 * 1024}[unit]
    assert abs(float(total) - size / div) < 0.06, (m.group(0), size)
    assert int(accepted) == NLINES - bad and int(rejected) == bad, m.group(0)
    # 120 columns: the bar at its full width, and no line wider than 119
    assert len(bar) == 30, m.group(0)
    assert all(len(d) - len(b"\r\x1b[K") <= 119 for d in draws)

    # the final progress line is the last one, and the totals log line
    # starts right after its newline, on a line of its own
    assert out.rfind(b"\rreplay ") == m.start()
    t = TOTALS_RE.search(out, m.end())
    assert t, "no totals line after the progress line:\n" + text[-3000:]
    assert out[m.end():t.start()].startswith(b"ts="), out[m.start():t.end()]
    assert (int(t.group(1)), int(t.group(2))) == (NLINES - bad, bad)
    assert b"\x1b[K" not in out[m.end():], "escape sequences after the progress ended"

    # while the line is up, each log line erases it first: a log line
    # starts either a fresh line or right after "\r\033[K"
    for lm in re.finditer(rb"ts=\d{4}-", out[:m.start()]):
        before = out[max(0, lm.start() - 4):lm.start()]
        assert before.endswith(b"\n") or before.endswith(b"\r\x1b[K") or lm.start() == 0, (
            "a log line glued to the progress line: %r" % out[max(0, lm.start() - 120):
                                                           lm.start() + 60])
    assert offset(stack, prefix, group) == NLINES


def test_progress_from_a_pipe_has_no_percentage(stack, tmp_path):
    path = tmp_path / "rp.jsonl"
    bad = write_input(path)
    prefix, group = "rpq" + tag(), "g-rpq"
    args = replay_args(stack, prefix, group, "-")
    rc, out = run_on_pty(args, stdin=subprocess.PIPE, feed=path.read_bytes())
    text = out.decode(errors="replace")
    assert rc == 0, "replay exited %d:\n%s" % (rc, text[-3000:])
    draws = PROGRESS_RE.findall(out)
    assert draws, "no progress line on the terminal:\n" + text[-3000:]
    last = draws[-1]
    shown = b"".join(d[:-len(b"\x1b[K")] for d in draws)
    assert b"%" not in shown and b"[" not in shown, draws[-3:]
    m = re.match(rb"\rreplay  (\d+) lines  [0-9.]+ (B|KiB|MiB)  accepted (\d+)  rejected (\d+)",
                 last)
    assert m, last
    assert (int(m.group(1)), int(m.group(3)), int(m.group(4))) == (NLINES, NLINES - bad, bad)
    assert out.find(last + b"\r\n") >= 0, "the last progress line does not end the line"
    assert offset(stack, prefix, group) == NLINES


def test_no_progress_without_a_terminal(stack, tmp_path):
    path = tmp_path / "rp.jsonl"
    bad = write_input(path)
    prefix, group = "rpn" + tag(), "g-rpn"
    p = subprocess.run(replay_args(stack, prefix, group, path), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=scaled(60))
    err = p.stderr
    assert p.returncode == 0, err.decode(errors="replace")[-3000:]
    assert b"\r" not in err and b"\x1b" not in err, "terminal output on a pipe: %r" % err[:500]
    assert not re.search(rb"replay +\d", err), "a progress line on a pipe"
    assert p.stdout == b""
    # every line is a log line
    lines = err.decode().splitlines()
    assert lines and all(line.startswith("ts=") for line in lines), lines[:5]
    t = TOTALS_RE.search(err)
    assert t and (int(t.group(1)), int(t.group(2))) == (NLINES - bad, bad), lines[-3:]
    assert offset(stack, prefix, group) == NLINES
