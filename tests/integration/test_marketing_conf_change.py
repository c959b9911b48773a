"""
test_marketing_conf_change.py — the per-user section applies
contrib(new state) - contrib(old state), both computed with the *current*
marketing settings; a change of retention.groupings (or retention.days,
retention.mode, the start/active types, funnel.window_s, marketing.user_cap)
between runs on one prefix would subtract counts that were never added. The
flush script stores the settings' canonical text at `{prefix}:mkt:conf` and
refuses a batch built with other settings (docs/REDIS.md, docs/METRICS.md):

  * the flush script as compiled (test_action_cap.flush_script), run twice
    on the session's redis-server as two funneld runs with different
    retention.groupings would: the second is refused with MKTCONF naming
    both texts, and nothing in Redis changes;
  * funneld itself: a run drains a stream with one setting, a second run on
    the same prefix with another retention.groupings gets the refusal twice
    and stops the partition with that message; the counters, the states and
    the offset stay as the first run left them.
"""

import time
import uuid
from pathlib import Path

from conftest import dec, produce_lines, read_hash, scan_keys, wait_drained
from crafted import event, lctx, produce_crafted, wait_log  # noqa: F401  (fixture)
from test_action_cap import flush_script

DAY = 86_400_000


def flush(r, script, prefix, field, recs, dims):
    args = [prefix, "g", field, "", 1, "", 0, 0, 1, 60, 60, 60, 60, 64, 0, 0, 0, 64]
    start = len(args) + 1
    args += [len(recs), 86400 * 400, 7 * DAY, "day_n", "exposure,interaction,payment",
             "exposure,interaction,payment", 32, 3, 1, 7, 30, len(dims), *dims]
    for x in recs:
        args += x
    args += [start]
    try:
        return dec(r.cmd("EVAL", script, 0, *[str(a) for a in args]))
    except Exception as e:  # the client raises error replies
        return "ERR " + str(e)


def dump(r, prefix):
    """Every key under prefix with its value (hash fields or string)."""
    out = {}
    for k in scan_keys(r, prefix + ":*"):
        t = dec(r.cmd("TYPE", k))
        out[dec(k)] = read_hash(r, k) if t == "hash" else r.cmd("GET", k) if t == "string" else t
    return out


def test_groupings_change_is_refused_by_the_script(stack):
    r = stack.redis()
    script = flush_script()
    prefix = "mcc" + str(int(time.time() * 1000) % 10**8)
    d = 20000
    # run 1, retention.groupings = channel: u1 first seen on day d+2 (community c1)
    assert flush(r, script, prefix, "t:0",
                 [["p", "u1", "e", (d + 2) * DAY, d + 2, "wechat", "c1", "", "", 0]],
                 ["channel"]) == "OK"
    stored = dec(r.cmd("GET", prefix + ":mkt:conf"))
    assert "retention.groupings=channel " in stored, stored
    assert r.cmd("TTL", prefix + ":mkt:conf") == -1
    before = dump(r, prefix)
    # run 2, retention.groupings = channel,community: a late, earlier exposure (c2)
    got = flush(r, script, prefix, "t:1",
                [["p", "u1", "e", d * DAY, d, "weibo", "c2", "", "", 0]],
                ["community", "channel"])
    assert got.startswith("ERR REFUSED MKTCONF the marketing settings differ"), got
    assert "(stored: %s; now: " % stored in got, got
    assert "retention.groupings=channel,community " in got, got
    assert "keep them or use a new redis.prefix; nothing written" in got, got
    after = dump(r, prefix)
    # run 2 again with the first settings: accepted, and no counter goes wrong
    assert flush(r, script, prefix, "t:1",
                 [["p", "u1", "e", d * DAY, d, "weibo", "c2", "", "", 0]],
                 ["channel"]) == "OK"
    bad = {}
    for k in r.cmd("KEYS", prefix + ":ret:*"):
        h = {f: int(v) for f, v in read_hash(r, k).items()}
        if any(v < 0 for v in h.values()) or any(
                v > h.get("cohort_size", 0) for f, v in h.items() if f.startswith("retained_d")):
            bad[dec(k)] = h
    r.cmd("DEL", *(r.cmd("KEYS", prefix + ":*") or [b"none"]))
    assert after == before, "a refused flush changed Redis"
    assert not bad, "counters corrupted: %s" % bad

def test_groupings_change_halts_funneld(lctx, stack, tmp_path):
    r = stack.redis()
    now = int(time.time() * 1000)
    ts = now - 10 * 60_000
    topic = "mkconf-" + uuid.uuid4().hex[:8]
    lines = [event(event_id="x%d" % i, type="exposure", ts=ts + i, user_id="u%d" % (i % 40),
                   product_id="course-a", channel="wechat_group", community_id="c%d" % (i % 3))
             for i in range(200)]
    ends = produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    first = lctx.start(lctx.config({topic: "mixed"}, marketing={"enabled": True},
                                   retention={"groupings": "channel"}, flush_max_events=2000))
    wait_drained(r, lctx.prefix, lctx.group, ends, [first], timeout=60)
    assert first.stop() == 0, first.tail()
    before = dump(r, lctx.prefix)
    assert any(":ret:" in k for k in before) and any(":us:" in k for k in before), before.keys()
    offsets = read_hash(r, "%s:offsets:%s" % (lctx.prefix, lctx.group))
    # more events for the same users, then a run with another grouping
    more = [event(event_id="y%d" % i, type="exposure", ts=ts - 3_600_000 + i,
                  user_id="u%d" % (i % 40), product_id="course-a", channel="weibo",
                  community_id="c9") for i in range(100)]
    produce_lines(stack.bootstrap, [(topic, 0, more, len(lines))])
    second = lctx.start(lctx.config({topic: "mixed"}, marketing={"enabled": True},
                                    retention={"groupings": "channel,community"},
                                    flush_max_events=2000))
    line = wait_log(second, r"partition stopped", timeout=60)
    assert "REFUSED MKTCONF the marketing settings differ" in line, line
    assert "stored: " in line and "retention.groupings=channel " in line, line
    assert "now: " in line and "retention.groupings=channel,community " in line, line
    assert Path(second.log_path).read_text(errors="replace").count(
        'msg="flush script failed"') == 2
    assert read_hash(r, "%s:offsets:%s" % (lctx.prefix, lctx.group)) == offsets, "offset moved"
    kept = (":ret:", ":attr:", ":us:", ":mkt:", ":c:", ":dedup:")  # what the script writes
    assert {k: v for k, v in dump(r, lctx.prefix).items() if any(x in k for x in kept)} == \
        {k: v for k, v in before.items() if any(x in k for x in kept)}, "a refused flush wrote"
    assert second.stop() == 1, second.tail()
