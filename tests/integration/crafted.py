"""
crafted.py — small hand-made streams for the robustness tests, without the
session's 200,000-event stream: a Ctx fixture that needs only the stack, a
writer of JSON Lines + manifest that the oracle reads, the operations
endpoint, and waiting for a log line. Everything waits with scaled deadlines.
"""

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ORACLE_PREFIX, create_topics, make_ctx, produce_lines, run_oracle, scaled


@pytest.fixture
def lctx(request, stack, tmp_path):
    """A Ctx (own group, prefix, DLQ topic; processes killed at teardown)
    for a crafted stream."""
    yield from make_ctx(request, stack, None, tmp_path)


def event(**kw):
    return json.dumps(kw, separators=(",", ":")).encode()


def produce_crafted(stack, d, topic, ttype, parts, now_ms):
    """Creates `topic` with len(parts) partitions, produces parts[p] (lists of
    bytes) to partition p in order, and writes them as the oracle's input
    (d/{topic}.{p}.jsonl + manifest.json). Returns {"topic:p": count}."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    create_topics(stack.bootstrap, {topic: len(parts)})
    produce_lines(stack.bootstrap, [(topic, p, lines, 0) for p, lines in enumerate(parts)])
    for p, lines in enumerate(parts):
        (d / ("%s.%d.jsonl" % (topic, p))).write_bytes(b"".join(l + b"\n" for l in lines))
    (d / "manifest.json").write_text(json.dumps({
        "topics": {topic: {"type": ttype, "partitions": len(parts)}},
        "now_ms": now_ms, "events": sum(map(len, parts)), "malformed": 0}))
    return {"%s:%d" % (topic, p): len(lines) for p, lines in enumerate(parts)}


def oracle_counters(d, now_ms, prefix):
    """The oracle's counters for the crafted stream in d, keyed for prefix."""
    res, _ = run_oracle(Path(d), now_ms)
    n = len(ORACLE_PREFIX)
    return {prefix + k[n:]: v for k, v in res["counters"].items()}, res


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


def wait_log(proc, pattern, timeout=60):
    """Waits until proc's log has a line matching pattern; returns it."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + scaled(timeout)
    while True:
        text = Path(proc.log_path).read_text(errors="replace")
        for line in text.splitlines():
            if rx.search(line):
                return line
        if not proc.alive():
            pytest.fail("funneld exited before logging /%s/\n%s" % (pattern, proc.tail()), pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no log line /%s/ after %.0fs\n%s" % (pattern, scaled(timeout), proc.tail()),
                        pytrace=False)
        time.sleep(0.1)


def wait_until(what, fn, timeout=60, proc=None):
    """Polls fn() until it returns a true value; returns it."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("%s not within %.0fs\n%s" % (what, scaled(timeout), proc.tail() if proc else ""),
                        pytrace=False)
        time.sleep(0.1)
