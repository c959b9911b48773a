"""
test_asan_rejects.py — batches made (almost) only of rejected messages, under
an ASan+UBSan build of funneld, on the real broker and redis-server.

The shape: a stream spread over 96 hours of event time, so that most events
are ts_too_old. Partition 0 holds nothing but rejects, partition 1 one valid
exposure per 100 messages. Every flush then seals a batch with no counters
(or almost none) while its dead-letter writes are still in flight, and sends
it when they are acknowledged. Such a flush once wrote past its argument
vector (heap-buffer-overflow in the Redis sink).

Claims checked: the ASan+UBSan funneld drains both partitions (offsets in
Redis reach the end), exits 0 on SIGTERM, and its log holds no sanitizer
report; every reject is in the dead-letter topic with reason ts_too_old; the
valid exposures are counted exactly once.

The sanitized binary: FUNNELD_ASAN_BIN (deploy/test.sh passes build-asan's),
else one is built here with cmake under FUNNELD_BUILD (or build/) in
it-asan/. A missing or unsanitized binary is a failure, never a skip.
"""

import collections
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from conftest import (REPO, Funneld, _run, create_topics, produce_lines, read_counters,
                      read_topic, scaled, wait_drained)
from crafted import lctx  # noqa: F401  (fixture)

HOUR_MS = 3600 * 1000
PER_PART = 3000
VALID_EVERY = 100


def asan_funneld():
    env = os.environ.get("FUNNELD_ASAN_BIN")
    if env:
        p = Path(env)
        if not p.is_absolute():
            p = REPO / p
    else:
        build = Path(os.environ.get("FUNNELD_BUILD") or REPO / "build") / "it-asan"
        _run(["cmake", "-S", REPO, "-B", build, "-DFD_SANITIZE=ON", "-DFD_INTEGRATION=OFF"],
             scaled(300), "cmake configure (ASan build of funneld)")
        _run(["cmake", "--build", build, "-j", "2", "--target", "funneld"], scaled(1200),
             "cmake build (ASan build of funneld)")
        p = build / "funneld"
    if not (p.exists() and os.access(p, os.X_OK)):
        pytest.fail("ASan funneld not found at %s (FUNNELD_ASAN_BIN)" % p, pytrace=False)
    if b"__asan_init" not in p.read_bytes():
        pytest.fail("%s is not an ASan build (-DFD_SANITIZE=ON)" % p, pytrace=False)
    return p


def exposure(i, ts):
    return json.dumps({"event_id": "e%d" % i, "ts": ts, "user_id": "u%d" % (i % 50),
                       "product_id": "course-asan", "channel": "wechat_group"}).encode()


def test_reject_only_batches_under_asan(lctx, stack, monkeypatch):
    binary = asan_funneld()
    # stop at the first report; a leak at exit is a report too
    monkeypatch.setenv("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    topic = "asanrej-" + uuid.uuid4().hex[:8]
    create_topics(stack.bootstrap, {topic: 2})
    now = int(time.time() * 1000)
    lines = {0: [], 1: []}
    valid = 0
    for p in (0, 1):
        for i in range(PER_PART):
            if p == 1 and i % VALID_EVERY == 0:
                lines[p].append(exposure(p * PER_PART + i, now - 10 * 60 * 1000))
                valid += 1
            else:  # 96 h .. 49 h ago: older than the 48 h m1 TTL
                ts = now - 96 * HOUR_MS + (i * 47 * HOUR_MS) // PER_PART
                lines[p].append(exposure(p * PER_PART + i, ts))
    produce_lines(stack.bootstrap, [(topic, p, lines[p], 0) for p in (0, 1)])

    cfg = lctx.config({topic: "exposure"})
    fd = Funneld(binary, cfg, lctx.dir / "funneld-asan.log")
    lctx.procs.append(fd)
    r = stack.redis()
    ends = {"%s:%d" % (topic, p): PER_PART for p in (0, 1)}
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=120)
    rc = fd.stop()
    log = Path(fd.log_path).read_text(errors="replace")
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert marker not in log, "sanitizer report in the log:\n%s" % fd.tail(60)
    assert rc == 0, "ASan funneld exited %s\n%s" % (rc, fd.tail(60))

    want = {(p, i) for p in (0, 1) for i in range(PER_PART)
            if not (p == 1 and i % VALID_EVERY == 0)}
    seen = collections.Counter()
    for _, _, value, hdr in read_topic(stack.bootstrap, lctx.dlq):
        src = (int(hdr["source.partition"]), int(hdr["source.offset"]))
        assert hdr.get("source.topic") == topic and src in want, hdr
        assert hdr.get("reason") == "ts_too_old", hdr
        assert value == lines[src[0]][src[1]]
        seen[src] += 1
    missing = want - set(seen)
    assert not missing, "%d rejects missing from the DLQ, e.g. %s" % (len(missing), sorted(missing)[:5])

    counters = read_counters(r, lctx.prefix)
    total = sum(h.get("exposures", 0) for k, h in counters.items()
                if k.startswith(lctx.prefix + ":c:all:m1:"))
    assert total == valid, "exposures counted %d, valid events %d" % (total, valid)
