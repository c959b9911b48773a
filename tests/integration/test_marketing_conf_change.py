"""
test_marketing_conf_change.py — (review rv-9) the per-user section applies
contrib(new state) - contrib(old state) computed with the *current*
configuration, so changing retention.groupings (or retention.days,
funnel.window_s, start/active types, user_cap) between runs on the same
prefix subtracts counts that were never added: a cohort_size goes negative.
Runs the flush script as compiled (test_action_cap.flush_script) on the
session's redis-server, twice, as two funneld runs with different
configurations would.
"""

import time

from conftest import dec
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
    return dec(r.cmd("EVAL", script, 0, *[str(a) for a in args]))


def test_groupings_change_keeps_counters_non_negative(stack):
    r = stack.redis()
    script = flush_script()
    prefix = "mcc" + str(int(time.time() * 1000) % 10**8)
    d = 20000
    # run 1, retention.groupings = channel: u1 first seen on day d+2 (community c1)
    assert flush(r, script, prefix, "t:0",
                 [["p", "u1", "e", (d + 2) * DAY, d + 2, "wechat", "c1", "", "", 0]],
                 ["channel"]) == "OK"
    # run 2, retention.groupings = channel,community: a late, earlier exposure (c2)
    assert flush(r, script, prefix, "t:1",
                 [["p", "u1", "e", d * DAY, d, "weibo", "c2", "", "", 0]],
                 ["channel", "community"]) == "OK"
    bad = {}
    for k in r.cmd("KEYS", prefix + ":ret:*"):
        raw = r.cmd("HGETALL", k)
        h = {dec(f): int(v) for f, v in zip(raw[::2], raw[1::2])}
        if any(v < 0 for v in h.values()) or any(
                v > h.get("cohort_size", 0) for f, v in h.items() if f.startswith("retained_d")):
            bad[dec(k)] = h
    r.cmd("DEL", *(r.cmd("KEYS", prefix + ":*") or [b"none"]))
    assert not bad, "counters corrupted by a configuration change: %s" % bad
