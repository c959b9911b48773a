"""
test_script_guards.py — the scripts besides FLUSH (test_flush_guards.py)
never fail after their first write either. Each test plants someone else's
key or a bad value in the session's redis-server, drives a real funneld
over the real broker, and checks that nothing was half written, that the
error is reported, and that funneld goes on correctly once the key is fixed.

Claims checked:
- alert commit: with `{prefix}:alerts` or `{prefix}:alert:index` holding a
  string, the commit that carries the first transition is refused whole
  (no alert state hash, no index, the cursor stays before that step, the
  planted key untouched), the refusal is logged naming the key, at most once
  per 10 s while it repeats; once the key is deleted, the same steps are
  evaluated again and the stream gets the pending and the firing transition
  of the absent rule, once each, with the state hash firing.
"""

import re
import time
from pathlib import Path

import pytest

import alert_gen as gen
from alert_env import aenv, last_step_s, max_ts_ms  # noqa: F401 (fixture)
from conftest import dec, read_hash
from crafted import wait_log

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
