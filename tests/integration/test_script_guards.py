"""
test_script_guards.py — the scripts besides FLUSH (test_flush_guards.py)
never fail after their first write either: the alert commit, the rolling
snapshot and the leaderboards. Each test plants someone else's key or a bad
value in the session's redis-server, drives a real funneld over the real
broker, and checks that nothing was half written, that the error is
reported, and that funneld goes on correctly once the key is fixed.

Claims checked:
- alert commit: with `{prefix}:alerts` or `{prefix}:alert:index` holding a
  string, the commit that carries the first transition is refused whole
  (no alert state hash, no index, the cursor stays before that step, the
  planted key untouched), the refusal is logged naming the key, at most once
  per 10 s while it repeats; once the key is deleted, the same steps are
  evaluated again and the stream gets the pending and the firing transition
  of the absent rule, once each, with the state hash firing;
- snapshot: a counter bucket that is not a hash or a paid HLL that is not an
  HLL, inside the 24h window only: no window of the scope is written (the
  planted previous 5m snapshot stays exactly as it was), the error names the
  key and says nothing was written, other scopes' snapshots are written;
  after the key is deleted the scope's next rewrite writes them all;
- snapshot: a `rev` that is not a number counts from 0 (docs/REDIS.md) and
  every window is written;
- snapshot: a bucket with 9000 foreign integer fields is written whole
  (HSET in chunks) instead of failing after the DEL;
- leaderboards: a snapshot's `nan` or `inf` lists its scope on no board of
  that metric; the other boards are written, no leaderboard error.
"""

import re
import time
import uuid
from pathlib import Path

import pytest

import alert_gen as gen
from alert_env import aenv, last_step_s, max_ts_ms  # noqa: F401 (fixture)
from conftest import dec, last_flush_ms, produce_lines, read_hash, wait_drained
from crafted import event, lctx, produce_crafted, wait_log, wait_until  # noqa: F401 (lctx)

MIN_MS = 60 * 1000

# ------------------------------------------------------------------ alerts

# `for` 1m: the alert goes pending, then firing, one step later
ABSENT_FOR = {"name": "PaymentsAbsent", "kind": "absent", "metric": "payments",
              "while": "exposures", "grouping": ["product"], "window": "10m",
              "min_samples": 500, "for": "1m"}


def _alert_keys(aenv):
    """The alert state hashes and the index that exist under the prefix."""
    keys = [dec(k) for k in aenv.r.cmd("KEYS", "%s:alert:*" % aenv.prefix)]
    return sorted(k for k in keys if not re.search(r":alert:(cursor|sent:)", k))


@pytest.mark.parametrize("planted", ["alerts", "alert:index"])
def test_alert_commit_refused_whole(aenv, planted):
    key = "%s:%s" % (aenv.prefix, planted)
    start = gen.minute_start(time.time(), 2)
    lines, _ = gen.gen_lines(99, start, 45, {"X": gen.absent_profile(300, 0.05, 20)})
    path = gen.write_lines(aenv.dir / "absent.jsonl", lines)
    last = last_step_s(max_ts_ms(path))
    cfg = aenv.config([ABSENT_FOR])
    p = aenv.start(cfg)
    # planted once the evaluator holds the lease and has loaded the (empty)
    # states: the index is read only then, and the commit is what meets it
    aenv.wait(aenv.lease_holder, 30, "the alert lease", [p])
    time.sleep(1)
    aenv.r.cmd("SET", key, "someone else's")
    aenv.replay(cfg, path)
    line = wait_log(p, r"alert evaluation failed.*alerts commit", 60)
    # the refused commit is retried every round (200 ms; with the index
    # planted the retry already fails reloading the states): over 3 s more,
    # nothing of it lands and the log holds each error at most twice
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        assert _alert_keys(aenv) == ([key] if planted == "alert:index" else []), _alert_keys(aenv)
        assert aenv.r.cmd("GET", key) == b"someone else's"
        if planted == "alert:index":
            assert aenv.transitions() == []
        time.sleep(0.2)
    assert "REFUSED WRONGTYPE %s holds a string" % key in line, line
    assert "nothing written" in line, line
    stuck = aenv.cursor()
    assert 0 < stuck < last, (stuck, last)
    log = Path(p.log_path).read_text(errors="replace")
    assert log.count("alert evaluation failed") <= 4, log[-3000:]

    aenv.r.cmd("DEL", key)
    aenv.wait_cursor(last, [p])
    ts = [(t["rule"], t["scope"], t["state"]) for t in aenv.transitions()]
    assert ts == [("PaymentsAbsent", "product=X", "pending"),
                  ("PaymentsAbsent", "product=X", "firing")], ts
    ids = [t["id"] for t in aenv.transitions()]
    assert len(set(ids)) == len(ids), ids
    fp = aenv.transitions()[0]["fingerprint"]
    st = read_hash(aenv.r, "%s:alert:%s" % (aenv.prefix, fp))
    assert st.get("state") == "firing", st
    assert [dec(m) for m in aenv.r.cmd("SMEMBERS", "%s:alert:index" % aenv.prefix)] == [fp]
    assert p.stop() == 0, p.tail()


# ------------------------------------------------------------------ snapshots

def exposures(n, ts, product="course-a", start=0):
    return [event(event_id="x%d" % (start + i), type="exposure", ts=ts, user_id="u%d" % (i % 97),
                  product_id=product, channel="wechat_group") for i in range(n)]


def _stream(lctx, stack, tmp_path, now):
    """10 exposures 10 min ago, and one a minute ago that moves the watermark
    past them (it is itself past the windows' end); returns the topic and the
    end offsets."""
    topic = "sguard-" + uuid.uuid4().hex[:8]
    lines = exposures(10, now - 10 * MIN_MS) + exposures(1, now - MIN_MS, start=10)
    return topic, produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)


def _whole_hour(now):
    """An hour wholly inside the 24h window and outside the events' hours."""
    return (now // 1000 // 3600) * 3600 - 3 * 3600


@pytest.mark.parametrize("plant", ["c:all:h1:{h}", "u:all:h1:{h}:paid"])
def test_snapshot_with_a_bad_key_refused_whole(lctx, stack, tmp_path, plant):
    now = int(time.time() * 1000)
    r = stack.redis()
    bad = "%s:%s" % (lctx.prefix, plant.format(h=_whole_hour(now)))
    r.cmd("SET", bad, "junk")
    # a previous snapshot of the scope: it must stay as it is
    prev = {"exposures": "5", "rev": "7", "planted": "1"}
    r5 = "%s:r:all:5m" % lctx.prefix
    r.cmd("HSET", r5, *[x for kv in prev.items() for x in kv])
    topic, ends = _stream(lctx, stack, tmp_path, now)
    fd = lctx.start(lctx.config({topic: "mixed"}))
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    drained = last_flush_ms(r, lctx.prefix, lctx.group)
    # the other scopes' snapshots are written by the same ticks
    other = "%s:r:product=course-a:24h" % lctx.prefix
    wait_until("snapshot %s after the drain" % other,
               lambda: int(read_hash(r, other).get("updated_at", 0)) > drained, 30, fd)
    time.sleep(2)  # two more ticks
    assert read_hash(r, r5) == prev
    for w in ("1h", "24h"):
        assert r.cmd("EXISTS", "%s:r:all:%s" % (lctx.prefix, w)) == 0, w
    assert r.cmd("GET", bad) == b"junk"
    line = wait_log(fd, r"snapshot command failed.*REFUSED WRONGTYPE %s: " % re.escape(bad), 30)
    assert "nothing written" in line, line

    # once the key is gone, the scope's next rewrite (new data for it, or
    # the windows moving) writes all of its windows
    r.cmd("DEL", bad)
    fixed = int(time.time() * 1000)
    produce_lines(stack.bootstrap, [(topic, 0, exposures(1, now, start=11), 11)])
    r24 = "%s:r:all:24h" % lctx.prefix
    h = wait_until("snapshot %s once the key is gone" % r24,
                   lambda: int(read_hash(r, r24).get("updated_at", 0)) > fixed and read_hash(r, r24),
                   30, fd)
    assert h["exposures"] == "10", h  # the window ends before the two later events
    assert h["rev"].isdigit(), h
    h5 = read_hash(r, r5)
    assert "planted" not in h5 and int(h5["rev"]) >= 8, h5
    assert fd.stop() == 0, fd.tail()


def _all_windows_after(r, lctx, fd, drained):
    hs = {}

    def written():
        for w in ("5m", "1h", "24h"):
            hs[w] = read_hash(r, "%s:r:all:%s" % (lctx.prefix, w))
        return all(int(h.get("updated_at", 0)) > drained for h in hs.values())
    wait_until("every window of scope all after the drain", written, 30, fd)
    return hs


def test_snapshot_bad_rev_counts_from_0(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    r = stack.redis()
    r.cmd("HSET", "%s:r:all:1h" % lctx.prefix, "rev", "abc")
    topic, ends = _stream(lctx, stack, tmp_path, now)
    fd = lctx.start(lctx.config({topic: "mixed"}))
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    hs = _all_windows_after(r, lctx, fd, last_flush_ms(r, lctx.prefix, lctx.group))
    # the bad rev counted as 0: a plain count now, and every window written
    assert hs["1h"]["rev"].isdigit() and int(hs["1h"]["rev"]) >= 1, hs["1h"]
    assert all(h["exposures"] == "10" for h in (hs["1h"], hs["24h"])), hs
    log = Path(fd.log_path).read_text(errors="replace")
    assert "snapshot command failed" not in log, log[-3000:]
    assert fd.stop() == 0, fd.tail()


def test_snapshot_of_many_fields_written_whole(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    r = stack.redis()
    # 9000 foreign integer fields in a bucket of the 24h window only: the
    # snapshot has ~18000 values, past what Lua's unpack takes at once
    many = "%s:c:all:h1:%d" % (lctx.prefix, _whole_hour(now))
    fields = []
    for i in range(9000):
        fields += ["foreign.%d" % i, i]
    r.cmd("HSET", many, *fields)
    topic, ends = _stream(lctx, stack, tmp_path, now)
    fd = lctx.start(lctx.config({topic: "mixed"}))
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=60)
    h = _all_windows_after(r, lctx, fd, last_flush_ms(r, lctx.prefix, lctx.group))["24h"]
    assert h["exposures"] == "10", h
    assert sum(1 for f in h if f.startswith("foreign.")) == 9000
    assert h["foreign.8999"] == "8999" and h["foreign.0"] == "0"
    log = Path(fd.log_path).read_text(errors="replace")
    assert "snapshot command failed" not in log, log[-3000:]
    assert fd.stop() == 0, fd.tail()


# ------------------------------------------------------------------ leaderboards

def test_boards_skip_non_finite_scores(lctx, stack, tmp_path):
    now = int(time.time() * 1000)
    r = stack.redis()
    p = lctx.prefix
    # two scopes of the board grouping that no snapshot tick rewrites (older
    # than the two real scopes, snapshot_max_scopes 2), read by the boards
    nan_s, inf_s = "product=zz,channel=nan", "product=zz,channel=inf"
    r.cmd("ZADD", p + ":scopes", now // 1000 - 600, nan_s, now // 1000 - 600, inf_s)
    r.cmd("HSET", "%s:r:%s:1h" % (p, nan_s), "revenue", "700", "uv_paid", "5",
          "conversion_rate", "nan", "uv_exposed", "100")
    r.cmd("HSET", "%s:r:%s:1h" % (p, inf_s), "revenue", "inf", "uv_paid", "3",
          "conversion_rate", "0.25", "uv_exposed", "100")
    topic, ends = _stream(lctx, stack, tmp_path, now)
    fd = lctx.start(lctx.config({topic: "mixed"}, groupings=[[], ["product", "channel"]],
                                snapshot_max_scopes=2))
    wait_drained(r, p, lctx.group, ends, [fd], timeout=60)
    lb = "%s:lb:product,channel:1h:" % p

    def board(m):
        raw = r.cmd("ZRANGE", lb + m, 0, -1, "WITHSCORES") or []
        return {dec(k): float(v) for k, v in zip(raw[::2], raw[1::2])}
    cr = wait_until("the conversion_rate board", lambda: board("conversion_rate"), 30, fd)
    assert cr == {inf_s: 0.25}, cr
    assert board("revenue") == {nan_s: 700.0}, board("revenue")
    assert board("uv_paid") == {nan_s: 5.0, inf_s: 3.0}, board("uv_paid")
    time.sleep(2)  # more ticks
    log = Path(fd.log_path).read_text(errors="replace")
    assert "leaderboard write failed" not in log, log[-3000:]
    assert board("conversion_rate") == {inf_s: 0.25}
    assert fd.stop() == 0, fd.tail()
