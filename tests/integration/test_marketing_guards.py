"""
test_marketing_guards.py — the per-user section and the snapshot's
retention read against bad data in Redis (docs/REDIS.md, "Marketing keys"):

  * a user state that decodes but whose elements have other shapes (an
    exposure `{1}`, an order id that is a number, ...) is refused as
    `REFUSED CORRUPT` before any write — the flush script as compiled
    (test_action_cap.flush_script) on the session's redis-server;
  * a `ret:` key of another type than hash does not fail the product's
    snapshot: funneld writes it with that cohort's size / retained /
    retention empty and the other cohorts as usual.
"""

import time
import uuid

import pytest

from conftest import dec, read_hash, scaled
from crafted import event, lctx, produce_crafted  # noqa: F401  (fixture)
from test_action_cap import flush_script
from test_marketing_conf_change import DAY, dump, flush

PLANT = "redis.call('SET', KEYS[1], cmsgpack.pack(cjson.decode(ARGV[1])))"


@pytest.mark.parametrize("state", [
    '{"x": [1], "i": [], "o": [], "r": [], "a": []}',
    '{"x": [[1, 2, "", "", ""]], "i": [[1]], "o": [[5, 1, 100]], "r": [], "a": []}',
    '{"x": [], "i": [], "o": [], "r": [], "a": [["d"]]}',
    '{"x": [], "i": [], "o": [], "r": [], "a": [], "f": [1, 2]}',
    '{"x": [[1, 2, "", ""]], "i": [], "o": [], "r": [], "a": []}',
    '{"x": [], "i": [], "o": [], "r": [], "a": [], "zz": 1}',
])
def test_misshapen_state_is_refused_corrupt(stack, state):
    r = stack.redis()
    prefix = "mgs" + uuid.uuid4().hex[:8]
    uk = prefix + ":us:p:u1"
    r.cmd("EVAL", PLANT, 1, uk, state)
    before = dump(r, prefix)
    d = 20000
    got = flush(r, flush_script(), prefix, "t:0",
                [["p", "u1", "e", d * DAY, d, "wechat", "c1", "", "", 0],
                 ["p", "u2", "e", d * DAY, d, "wechat", "c1", "", "", 0]], ["channel"])
    after = dump(r, prefix)
    r.cmd("DEL", *(r.cmd("KEYS", prefix + ":*") or [b"none"]))
    assert got == "ERR REFUSED CORRUPT %s is not a funneld user state; nothing written" % uk, got
    assert after == before


def test_wellformed_state_is_accepted(stack):
    """The shapes the check demands are the ones the script writes."""
    r = stack.redis()
    prefix = "mgs" + uuid.uuid4().hex[:8]
    d = 20000
    recs = [["p", "u1", "e", d * DAY, d, "wechat", "c1", "", "", 0],
            ["p", "u1", "i", d * DAY + 5, d, "", "", "", "", 0],
            ["p", "u1", "p", d * DAY + 9, d, "", "", "", "o1", 300],
            ["p", "u1", "r", d * DAY + 99, d, "", "", "", "o1", 100]]
    assert flush(r, flush_script(), prefix, "t:0", recs, ["channel"]) == "OK"
    recs2 = [["p", "u1", "e", (d + 1) * DAY, d + 1, "weibo", "c2", "", "", 0]]
    got = flush(r, flush_script(), prefix, "t:1", recs2, ["channel"])
    r.cmd("DEL", *(r.cmd("KEYS", prefix + ":*") or [b"none"]))
    assert got == "OK", got


def test_wrongtype_cohort_leaves_snapshot_written(lctx, stack, tmp_path):
    from test_marketing import _load
    oracle = _load("oracle")
    r = stack.redis()
    now = int(time.time() * 1000)
    ts = now - 10 * 60_000
    cal = oracle.DayCal("Asia/Shanghai")
    lines = [event(event_id="x%d" % i, type="exposure", ts=ts, user_id="u%d" % (i % 30),
                   product_id="course-a", channel="wechat_group") for i in range(100)]
    topic = "mkguard-" + uuid.uuid4().hex[:8]
    produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    # the cohort the snapshot shows for k = 7: (watermark day) - 7 - 1; the
    # watermark is ts - lateness_s (one partition), a day earlier than ts
    # when ts falls in the first lateness_s of a day
    lateness_s = 120
    wm_day = cal.label(ts - lateness_s * 1000)
    import datetime
    d7 = (datetime.date(int(wm_day[:4]), int(wm_day[4:6]), int(wm_day[6:])) -
          datetime.timedelta(days=8)).strftime("%Y%m%d")
    d1 = (datetime.date(int(wm_day[:4]), int(wm_day[4:6]), int(wm_day[6:])) -
          datetime.timedelta(days=2)).strftime("%Y%m%d")
    planted = "%s:ret:product=course-a:%s" % (lctx.prefix, d7)
    r.cmd("RPUSH", planted, "not a cohort")
    r.cmd("HSET", "%s:ret:product=course-a:%s" % (lctx.prefix, d1),
          "cohort_size", 4, "retained_d1", 1)
    fd = lctx.start(lctx.config({topic: "mixed"}, marketing={"enabled": True},
                                lateness_s=lateness_s))
    deadline = time.monotonic() + scaled(60)
    h = {}
    while time.monotonic() < deadline:
        h = read_hash(r, "%s:r:product=course-a:24h" % lctx.prefix)
        if h.get("watermark") and "cohort_day_d1" in h:
            break
        assert fd.alive(), fd.tail()
        time.sleep(0.2)
    assert h.get("watermark") and "cohort_day_d1" in h, ("no snapshot with retention", h,
                                                        fd.tail())
    assert cal.label(int(h["watermark"])) == wm_day
    assert (h["cohort_day_d7"], h["cohort_size_d7"], h["retained_d7"], h["retention_d7"]) == \
        (d7, "", "", ""), h
    assert (h["cohort_day_d1"], h["cohort_size_d1"], h["retained_d1"], h["retention_d1"]) == \
        (d1, "4", "1", "0.250000"), h
    assert dec(r.cmd("TYPE", planted)) == "list"
    assert fd.stop() == 0, fd.tail()


def test_touched_cohort_ttl_refreshed_without_delta(stack):
    """A batch that changes a user's state but moves none of a cohort's
    counters still refreshes that cohort key's TTL (the state's TTL is
    refreshed by the same write): the key never expires before a state that
    counts in it."""
    import datetime
    r = stack.redis()
    prefix = "mgt" + uuid.uuid4().hex[:8]
    d = 20000
    lab = (datetime.date(1970, 1, 1) + datetime.timedelta(days=d)).strftime("%Y%m%d")
    rk = "%s:ret:product=p:%s" % (prefix, lab)
    assert flush(r, flush_script(), prefix, "t:0",
                 [["p", "u1", "e", d * DAY, d, "wechat", "c1", "", "", 0]], ["channel"]) == "OK"
    assert read_hash(r, rk) == {"cohort_size": "1"}
    r.cmd("EXPIRE", rk, 50)
    # an interaction the same day: a new state, the same cohort counters
    assert flush(r, flush_script(), prefix, "t:1",
                 [["p", "u1", "i", d * DAY + 60_000, d, "", "", "", "", 0]], ["channel"]) == "OK"
    ttl_ret, ttl_us = r.cmd("TTL", rk), r.cmd("TTL", prefix + ":us:p:u1")
    counts = read_hash(r, rk)
    r.cmd("DEL", *(r.cmd("KEYS", prefix + ":*") or [b"none"]))
    assert counts == {"cohort_size": "1"}
    assert ttl_ret > 86400 * 399 and ttl_us > 86400 * 399, (ttl_ret, ttl_us)
