"""
test_cohort_lua.py — the per-user section of the flush script
(sinks/redis_users_lua.h, pasted into FD_LUA_FLUSH), the code that computes
the retention (`{prefix}:ret:`) and attributed-funnel (`{prefix}:attr:`)
counters in Redis, run with EVAL on the harness's real redis-server, case
by case from a table (docs/METRICS.md):

  * cohort days at Asia/Shanghai midnight: 15:59:59.999Z and 16:00:00Z are
    two local days, so a return one ms after the first event is a d1;
  * day-N vs unbounded retention on the same activity days;
  * an interaction / payment at the conversion window's last ms counts, one
    ms later it does not;
  * first vs last touch (payment, interaction, exposure-only, an exposure
    at the payment's ms, a tie in time);
  * a late earlier exposure, flushed in a later batch, moves the cohort day,
    the first touch and the window (the old keys go back to 0).

Each row's expected counters are worked out by hand from METRICS.md; the
oracle (tests/oracle/marketing.py) computes them from the same events too,
and both must equal what the script left in Redis. The day number of each
record (the sink computes it in C) comes from the oracle's zone calendar.
"""

import sys
import time

from conftest import REPO, dec, scan_keys
from test_action_cap import flush_script

sys.path.insert(0, str(REPO / "tests" / "oracle"))
import marketing  # noqa: E402
import oracle  # noqa: E402

CAL = oracle.DayCal("Asia/Shanghai")
M = 1710000000000          # 2024-03-09T16:00:00Z = 2024-03-10 00:00 +08:00
H = 3600000
D = 24 * H
W = 7 * D
T = M + 10 * H             # 2024-03-10 10:00 local
ALL = "exposure,interaction,payment"


def lab(ts):
    return CAL.label(ts)


def day(k):
    """Label of local day 2024-03-10 + k."""
    return marketing.day_label(marketing.daynum("20240310") + k)


def E(user, ts, ch="", product="p1"):
    return {"type": "exposure", "user": user, "ts": ts, "channel": ch, "product_id": product}


def I(user, ts, product="p1"):
    return {"type": "interaction", "user": user, "ts": ts, "product_id": product}


def P(user, ts, order, amount, status="paid", product="p1"):
    return {"type": "payment", "user": user, "ts": ts, "order_id": order, "amount": amount,
            "status": status, "product_id": product}


FIRST_LAST = [E("u", 5 * D + T, "c"), E("u", T, "a"), E("u", 9 * D + T, "d"),
              E("u", 2 * D + T, "b")]


def funnel(n_exp, n_int=0, n_paid=0, rev=0):
    h = {"funnel_exposed": n_exp, "funnel_interacted": n_int, "funnel_paid": n_paid,
         "attributed_revenue": rev}
    return {f: v for f, v in h.items() if v}


def attr(touch, scope, d, h):
    return {"attr:%s:%s:%s" % (touch, scope, d): h}


def both(scope_first, scope_last, d, h, product="p1"):
    """attr keys of one user's funnel: product scope under both touches,
    the touches' channel scopes when they have one."""
    out = {}
    for touch, ch in (("first", scope_first), ("last", scope_last)):
        out.update(attr(touch, "product=" + product, d, h))
        if ch:
            out.update(attr(touch, "product=%s,channel=%s" % (product, ch), d, h))
    return out


# (name, settings, batches of events, expected {key without prefix: {field: n}})
ROWS = [
    ("shanghai_midnight", {"ks": [1]},
     [[E("u1", M - 1), E("u1", M), E("u2", M), E("u2", M + D - 1)]],
     dict({"ret:product=p1:20240309": {"cohort_size": 1, "retained_d1": 1},
           "ret:product=p1:20240310": {"cohort_size": 1}},
          **both("", "", "20240309", funnel(1)), **both("", "", "20240310", funnel(1)))),
    ("day_n", {"ks": [1, 3, 7, 9, 10]},
     [[E("u", T), E("u", T + 3 * D), E("u", T + 9 * D)]],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1, "retained_d3": 1,
                                        "retained_d9": 1}},
          **both("", "", day(0), funnel(1)))),
    ("unbounded", {"ks": [1, 3, 7, 9, 10], "mode": "unbounded"},
     [[E("u", T), E("u", T + 3 * D), E("u", T + 9 * D)]],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1, "retained_d1": 1, "retained_d3": 1,
                                        "retained_d7": 1, "retained_d9": 1}},
          **both("", "", day(0), funnel(1)))),
    ("window_edges", {"ks": [7]},
     [[E("u", T, product="in"), I("u", T + W, product="in"),
       P("u", T + W, "o1", 500, product="in"),
       E("u", T, product="iout"), I("u", T + W + 1, product="iout"),
       E("u", T, product="pout"), I("u", T + 1000, product="pout"),
       P("u", T + W + 1, "o2", 500, product="pout")]],
     dict({"ret:product=in:" + day(0): {"cohort_size": 1, "retained_d7": 1},
           "ret:product=iout:" + day(0): {"cohort_size": 1, "retained_d7": 1},
           "ret:product=pout:" + day(0): {"cohort_size": 1, "retained_d7": 1}},
          **both("", "", day(0), funnel(1, 1, 1, 500), "in"),
          **both("", "", day(0), funnel(1), "iout"),
          **both("", "", day(0), funnel(1, 1), "pout"))),
    ("first_vs_last_paid", {},
     [FIRST_LAST + [I("u", T + 3 * D), P("u", T + 6 * D, "o1", 990),
                    P("u", T + 6 * D + H, "o1", 100, "refunded")]],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1},
           "ret:product=p1,channel=a:" + day(0): {"cohort_size": 1}},
          **both("a", "c", day(0), funnel(1, 1, 1, 890)))),
    ("first_vs_last_interacted", {},
     [FIRST_LAST + [I("u", T + 3 * D)]],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1},
           "ret:product=p1,channel=a:" + day(0): {"cohort_size": 1}},
          **both("a", "b", day(0), funnel(1, 1)))),
    ("first_vs_last_exposed", {},
     [FIRST_LAST],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1},
           "ret:product=p1,channel=a:" + day(0): {"cohort_size": 1}},
          **both("a", "c", day(0), funnel(1)))),
    # an exposure at the very ms of the payment is still at or before it
    ("last_touch_at_the_payment", {},
     [[E("u", T, "a"), I("u", T + H), E("u", T + D, "b"), P("u", T + D, "o1", 990)]],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1, "retained_d1": 1},
           "ret:product=p1,channel=a:" + day(0): {"cohort_size": 1, "retained_d1": 1}},
          **both("a", "b", day(0), funnel(1, 1, 1, 990)))),
    ("first_vs_last_tie", {},
     [[E("u", T, "b"), E("u", T, "a")]],
     dict({"ret:product=p1:" + day(0): {"cohort_size": 1},
           "ret:product=p1,channel=a:" + day(0): {"cohort_size": 1}},
          **both("a", "b", day(0), funnel(1)))),
    # batch 1: e0 on day 5, converted on days 5 and 6; batch 2 brings an
    # exposure of day -3: cohort day -3, the window ends on day 4, so the
    # interaction of day 5 no longer counts and the last touch is e0
    ("late_earlier_exposure", {},
     [[E("u", T + 5 * D, "c"), I("u", T + 5 * D + H), P("u", T + 6 * D, "o1", 990)],
      [E("u", T - 3 * D, "z")]],
     dict({"ret:product=p1:" + day(-3): {"cohort_size": 1},
           "ret:product=p1,channel=z:" + day(-3): {"cohort_size": 1}},
          **both("z", "z", day(-3), funnel(1)))),
]

# what the late row shows after its first batch
LATE_AFTER_FIRST = dict({"ret:product=p1:" + day(5): {"cohort_size": 1, "retained_d1": 1},
                         "ret:product=p1,channel=c:" + day(5): {"cohort_size": 1,
                                                                 "retained_d1": 1}},
                        **both("c", "c", day(5), funnel(1, 1, 1, 990)))


def user_args(events, st):
    """The per-user section of the flush's ARGV (sinks/redis_users_lua.h)."""
    ks = st.get("ks", [1, 7, 30])
    out = [len(events), 86400, st.get("window", W), st.get("mode", "day_n"), ALL, ALL, 32,
           len(ks)] + ks + [1, "channel"]
    kinds = {"exposure": "e", "interaction": "i"}
    for ev in events:
        k = kinds.get(ev["type"]) or ("p" if ev["status"] == "paid" else "r")
        out += [oracle.scope_encode(ev["product_id"]), ev["user"], k, ev["ts"],
                marketing.daynum(lab(ev["ts"])), ev.get("channel", ""), "", "",
                ev.get("order_id", ""), ev.get("amount", 0)]
    return out


def flush(r, script, prefix, n, events, st):
    """One flush of a batch holding only these events' user records: no
    counter entries, no dedup, no scopes (the offset field is per batch)."""
    args = [prefix, "g", "t:%d" % n, "", 1, "", 0, 0, 1, 60, 60, 60, 60, 64, 0, 0, 0, 64]
    start = len(args) + 1
    args += user_args(events, st)
    args.append(start)
    rep = r.cmd("EVAL", script, 0, *args)
    assert dec(rep) == "OK", (prefix, rep)


def read(r, prefix):
    out = {}
    for pat in (":ret:*", ":attr:*"):
        for k in scan_keys(r, prefix + pat):
            raw = r.cmd("HGETALL", k)
            h = {dec(f): int(v) for f, v in zip(raw[::2], raw[1::2]) if int(v) != 0}
            if h:
                out[dec(k)[len(prefix) + 1:]] = h
    return out


def oracle_answer(batches, st):
    cfg = marketing.Config(days=st.get("ks", [1, 7, 30]), mode=st.get("mode", "day_n"),
                           window_s=st.get("window", W) // 1000)
    m = marketing.Marketing(CAL, oracle.scope_encode, cfg)
    for ev in (e for b in batches for e in b):
        m.add(dict(ev, channel=ev.get("channel", "")))
    return {k[len("X:"):]: v for k, v in m.result("X").items()}


def test_cohort_rows_through_the_flush_script(stack):
    r = stack.redis()
    # a database of its own: SCAN there walks only this test's keys, not the
    # other tests' (a reconnect would fall back to db 0 and find nothing)
    r.cmd("SELECT", 13)
    script = flush_script()
    base = "coh%d" % (int(time.time() * 1000) % 10**8)
    bad = []
    for name, st, batches, want in ROWS:
        prefix = "%s-%s" % (base, name)
        for n, b in enumerate(batches):
            flush(r, script, prefix, n, b, st)
            if name == "late_earlier_exposure" and n == 0:
                got = read(r, prefix)
                assert got == LATE_AFTER_FIRST, (name, "after batch 1", got)
        got = read(r, prefix)
        orc = oracle_answer(batches, st)
        if got != want or orc != want:
            bad.append((name, {"script": got, "hand": want, "oracle": orc}))
        # the state keeps a user's counters when its batch is flushed again
        for n, b in enumerate(batches):
            flush(r, script, prefix, 10 + n, b, st)
        again = read(r, prefix)
        if again != got:
            bad.append((name, "the same batches again changed", again))
        keys = scan_keys(r, prefix + ":*")
        if keys:
            r.cmd("DEL", *keys)
    assert not bad, "\n".join(str(b) for b in bad)
