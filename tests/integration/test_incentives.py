"""
test_incentives.py — coupons and leaderboards (docs/METRICS.md, "Coupons"
and "Leaderboards"; keys in docs/REDIS.md) against the real Kafka broker
and redis-server of the session stack, compared with the oracle
(tests/oracle/oracle.py + incentives.py, written from the docs).

The stream is crafted and deterministic (seeded): ~400 users over two
products, four channels, six communities and two campaigns on a
two-partition topic (a user's events stay on one partition); a third of
the users get a coupon on their exposure and convert more often; payments
carry the coupon, some are refunded (with and without the coupon id), some
repeated; a tiny community of two users, one of whom pays, would top any
conversion board without the min_potential_users rule.

Claims:
- every counter hash (coupon fields included) equals the oracle exactly,
  also with funneld SIGKILLed mid-stream and restarted; every distinct-user
  HLL (coupon_touched, coupon_paid included) is within the HLL tolerance;
- a rolling snapshot's coupon counters equal the oracle's window sums
  exactly; its two groups' users and payers are within the HLL tolerance of
  the oracle's exact sets; its z and p equal the documented formula applied
  to its own figures (computed here independently);
- every leaderboard equals the oracle's ranking: revenue from the oracle's
  exact window figures, uv_paid and conversion_rate from the snapshot
  figures (HLL estimates, themselves checked against the exact sets); the
  tiny community is absent from the conversion board;
- a reader polling the boards while snapshot ticks rewrite them always sees
  a whole board;
- `funneld query` prints the coupon figures and a board;
- with coupons.cap=2 on one partition, the cap names the first two coupons
  per hash exactly as the oracle's rule does.
"""

import json
import random
import subprocess
import sys
import threading
import time

from conftest import (REPO, Ctx, assert_counters, assert_distinct, create_topics, dec,
                      funneld_bin, hll_tolerance, produce_lines, read_counters, read_distinct, read_hash,
                      last_flush_ms, scaled, wait_drained)
from crafted import lctx, wait_until  # noqa: F401 (lctx)

sys.path.insert(0, str(REPO / "tests" / "oracle"))
import incentives  # noqa: E402
import oracle  # noqa: E402

COUPONS = ["cp-new10", "cp-vip", "cp.dot", "cp-spring", "cp-x5", "cp-late"]
COMMUNITIES = ["c%d" % i for i in range(6)]
CHANNELS = ["wechat_group", "douyin", "xhs", "email"]
LB_GROUPINGS = ["product,channel", "product,community"]
METRICS = ["revenue", "uv_paid", "conversion_rate"]
WINDOWS = ["5m", "1h", "24h"]
LB_SIZE = 100
ALL_GROUPINGS = [[], ["product"], ["product", "channel"], ["product", "community"], ["campaign"]]
MIN_POTENTIAL = 30


def make_stream(now_ms, nusers=400, seed=9):
    """[partition 0 lines, partition 1 lines], each in event-time order."""
    rng = random.Random(seed)
    t0 = (now_ms - 3 * 3600 * 1000) // 60000 * 60000
    span = 50 * 60 * 1000
    parts = [[], []]
    n = 0

    def ev(p, **kw):
        nonlocal n
        n += 1
        parts[p].append((kw["ts"], n, kw))

    users = [("u%d" % i, i % 2) for i in range(nusers)]
    users += [("tiny-a", 0), ("tiny-b", 1)]
    for u, p in users:
        tiny = u.startswith("tiny")
        prod = "p1" if tiny else rng.choice(["p1", "p2"])
        ch = "wechat_group" if tiny else rng.choice(CHANNELS)
        com = "tiny" if tiny else rng.choice(COMMUNITIES)
        camp = rng.choice(["spring", "vip"])
        coupon = None if tiny else (rng.choice(COUPONS) if rng.random() < 0.33 else None)
        ts = t0 + rng.randrange(span)
        base = {"user_id": u, "product_id": prod, "channel": ch, "community_id": com,
                "campaign_id": camp}
        e = dict(base, event_id="x-" + u, type="exposure", ts=ts)
        if coupon:
            e["coupon_id"] = coupon
        ev(p, **e)
        for k in range(rng.randrange(3)):
            ev(p, **dict(base, event_id="i-%s-%d" % (u, k), type="interaction",
                         ts=ts + 1000 * (k + 1), action=rng.choice(["click", "join"])))
        pays = u == "tiny-a" or (not tiny and rng.random() < (0.5 if coupon else 0.2))
        if not pays:
            continue
        pts = ts + rng.randrange(60000, 20 * 60000)
        amt = rng.randrange(100, 20000)
        pay = dict(base, event_id="p-" + u, type="payment", ts=pts, order_id="o-" + u,
                   amount=amt, status="paid")
        if coupon and rng.random() < 0.85:
            pay["coupon_id"] = coupon
        ev(p, **pay)
        if rng.random() < 0.1:  # a repeat changes nothing
            ev(p, **dict(pay, event_id="p2-" + u, ts=pts + 5000))
        if rng.random() < 0.15:  # a refund; its own coupon_id counts
            ref = dict(pay, event_id="r-" + u, ts=pts + rng.randrange(1, 5) * 60000,
                       status="refunded")
            if rng.random() < 0.3:
                ref.pop("coupon_id", None)
            ev(p, **ref)
    out = []
    for lines in parts:
        lines.sort(key=lambda x: (x[0], x[1]))
        out.append([json.dumps(kw, separators=(",", ":")).encode() for _, _, kw in lines])
    return out


def run_oracle(tmp_path, parts, now_ms, prefix, coupon_cap=64, hll_m1_groupings=None):
    """The Oracle object itself (window figures need its sets)."""
    d = tmp_path / ("stream-%d" % coupon_cap)
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(
        {"topics": {"t": {"type": "mixed", "partitions": len(parts)}}}))
    o = oracle.Oracle(now_ms, prefix=prefix, coupon_cap=coupon_cap,
                      hll_m1_groupings=hll_m1_groupings)
    for i, lines in enumerate(parts):
        (d / ("t.%d.jsonl" % i)).write_bytes(b"".join(ln + b"\n" for ln in lines))
        o.run_partition("t.%d.jsonl" % i, "t", i, None, lines)  # mixed
    res = o.result()
    assert not res["rejects"], res["rejects"][:3]
    return o, res


def read_board(r, key):
    raw = r.cmd("ZREVRANGE", key, 0, -1, "WITHSCORES") or []
    return [(dec(m), float(s)) for m, s in zip(raw[::2], raw[1::2])]


def snapshot_after(r, prefix, scope, t_ms, timeout=60):
    """The scope's snapshots once a tick that started after t_ms wrote them
    (t_ms the last flush: a tick rewrites the scopes updated since the tick
    before it, so such a tick comes)."""
    def ready():
        hs = {w: read_hash(r, "%s:r:%s:%s" % (prefix, scope, w)) for w in WINDOWS}
        return hs if all(int(h.get("updated_at", 0)) > t_ms for h in hs.values()) else None
    return wait_until("snapshots of %s after the drain" % scope, ready, timeout)


def check_counters(r, prefix, res, hll_what):
    assert_counters(res["counters"], read_counters(r, prefix), prefix)
    assert_distinct(res["distinct"], read_distinct(r, prefix), hll_what)


def test_incentives(stack, tmp_path):
    ctx = Ctx(stack, None, tmp_path, "incentives")
    readers = []
    try:
        now_ms = int(time.time() * 1000)
        parts = make_stream(now_ms)
        # every grouping keeps its m1 HLLs here (docs/REDIS.md, contract 2),
        # so the windows' uniques, groups and boards are over the windows
        # themselves, whatever the time of day; test_uniques.py holds the
        # whole-hour span of the other scopes
        o, res = run_oracle(tmp_path, parts, now_ms, ctx.prefix, hll_m1_groupings=ALL_GROUPINGS)
        # the stream exercises what it claims to
        allsum = {}
        for k, h in res["counters"].items():
            if ":c:all:m1:" in k:
                for f, v in h.items():
                    allsum[f] = allsum.get(f, 0) + v
        assert allsum.get("payments_coupon", 0) > 20 and allsum.get("refunds_coupon", 0) > 0, allsum
        assert allsum["payments"] > allsum["payments_coupon"], allsum
        assert res["summary"]["repeated_payments"] > 0

        topic = "inc." + ctx.group
        create_topics(stack.bootstrap, {topic: 2})
        # idle_timeout_s: the drained partitions stay in the watermark, so
        # the windows stop moving once the input is drained
        cfg = ctx.config({topic: "mixed"}, flush_max_events=100, idle_timeout_s=3600,
                         hll_m1_groupings=ALL_GROUPINGS,
                         leaderboards={"size": LB_SIZE, "min_potential_users": MIN_POTENTIAL})
        r = stack.redis()
        halves = [len(p) // 2 for p in parts]
        produce_lines(stack.bootstrap, [(topic, i, p[:halves[i]], 0) for i, p in enumerate(parts)])
        p1 = ctx.start(cfg)
        wait_drained(r, ctx.prefix, ctx.group,
                     {"%s:%d" % (topic, i): halves[i] for i in range(2)}, [p1], timeout=90)
        produce_lines(stack.bootstrap, [(topic, i, p[halves[i]:], halves[i])
                                        for i, p in enumerate(parts)])
        # SIGKILL as soon as the second half is partly flushed
        offkey = "%s:offsets:%s" % (ctx.prefix, ctx.group)
        wait_until("a flush of the second half", lambda: any(
            int(dec(v) or 0) > halves[i] for i, v in enumerate(
                r.cmd("HMGET", offkey, "%s:0" % topic, "%s:1" % topic))), 60, p1)
        p1.kill()
        p2 = ctx.start(cfg)
        ends = {"%s:%d" % (topic, i): len(p) for i, p in enumerate(parts)}
        wait_drained(r, ctx.prefix, ctx.group, ends, [p2], timeout=90)
        drained_ms = last_flush_ms(r, ctx.prefix, ctx.group)

        check_counters(r, ctx.prefix, res, "HLLs after SIGKILL and restart")

        # ---- snapshots: coupon counters exact, groups and test
        snaps = {}
        for scope in ["all", "product=p1", "product=p2", "campaign=spring", "campaign=vip"]:
            snaps[scope] = snapshot_after(r, ctx.prefix, scope, drained_ms, 60)
        for scope, hs in snaps.items():
            for w, h in hs.items():
                frm, to = int(h["from"]), int(h["to"])
                want = incentives.fold_coupons(incentives.window_sums(o, scope, frm, to), 64)
                for f, v in want.items():
                    if f.endswith("_coupon") or f.startswith("coupon."):
                        assert int(h.get(f, 0)) == v, (scope, w, f, h.get(f), v)
                for f in h:
                    if f.startswith("coupon.") and f.endswith((".payments", ".revenue")):
                        assert f in want, (scope, w, f)
                sets = incentives.window_sets(o, scope, frm, to)
                nc, xc, no, xo = incentives.groups(sets)
                for name, exact in (("coupon_users", nc), ("coupon_payers", xc),
                                    ("others_users", no), ("others_payers", xo),
                                    ("uv_coupon_touched", len(sets.get("coupon_touched", ()))),
                                    ("uv_coupon_paid", len(sets.get("coupon_paid", ())))):
                    assert abs(int(h[name]) - exact) <= hll_tolerance(exact), (scope, w, name, h[name], exact)
                gn, gx, on, ox = (int(h[k]) for k in ("coupon_users", "coupon_payers",
                                                       "others_users", "others_payers"))
                t = incentives.two_prop(gx, gn, ox, on)
                if t is None:
                    assert h["coupon_z"] == "" and h["coupon_p"] == "", (scope, w, h)
                    continue
                assert abs(float(h["coupon_z"]) - t[0]) <= 2e-6, (scope, w, h["coupon_z"], t)
                assert abs(float(h["coupon_p"]) - t[1]) <= 1e-5 * max(t[1], 1e-300), \
                    (scope, w, h["coupon_p"], t)
                assert h["coupon_conversion_rate"] == "%.6f" % (gx / gn)
                assert h["others_conversion_rate"] == "%.6f" % (ox / on)
        h = snaps["all"]["24h"]
        assert float(h["coupon_z"]) > 2, ("the crafted coupon users convert more", h)

        # ---- leaderboards
        to = int(snaps["all"]["24h"]["to"])
        boards = {}
        for g in LB_GROUPINGS:
            scopes = sorted({s for s in res["scopes"] if incentives.grouping_of(s) == g})
            assert len(scopes) > 4, (g, scopes)
            for w in WINDOWS:
                secs = {"5m": 300, "1h": 3600, "24h": 86400}[w]
                exact, snap = {}, {}
                for s in scopes:
                    sets = incentives.window_sets(o, s, to - secs, to)
                    sums = incentives.window_sums(o, s, to - secs, to)
                    uve, uvp = len(sets.get("exposed", ())), len(sets.get("paid", ()))
                    exact[s] = {"revenue": sums.get("revenue", 0), "uv_paid": uvp,
                                "uv_exposed": uve,
                                "conversion_rate": uvp / uve if uve else None}
                    rh = read_hash(r, "%s:r:%s:%s" % (ctx.prefix, s, w))
                    assert int(rh["to"]) == to, (s, w, rh.get("to"), to)
                    for f in ("uv_paid", "uv_exposed"):
                        assert abs(int(rh[f]) - exact[s][f]) <= hll_tolerance(exact[s][f]), (s, w, f)
                    snap[s] = {"revenue": int(rh["revenue"]), "uv_paid": int(rh["uv_paid"]),
                               "uv_exposed": int(rh["uv_exposed"]),
                               "conversion_rate": float(rh["conversion_rate"])
                               if rh["conversion_rate"] else None}
                for m in METRICS:
                    key = "%s:lb:%s:%s:%s" % (ctx.prefix, g, w, m)
                    got = read_board(r, key)
                    src = exact if m == "revenue" else snap
                    want = [(s, float(v)) for s, v in
                            incentives.board(src, m, LB_SIZE, MIN_POTENTIAL)]
                    assert got == want, (key, got[:5], want[:5])
                    boards[key] = got
                    ttl = r.cmd("TTL", key)
                    assert (ttl > 0) if got else (ttl == -2), (key, ttl)
        conv = boards["%s:lb:product,community:24h:conversion_rate" % ctx.prefix]
        assert conv and all("tiny" not in s for s, _ in conv), conv
        rev = boards["%s:lb:product,community:24h:revenue" % ctx.prefix]
        assert any(s == "product=p1,community=tiny" for s, _ in rev), rev
        assert max(v for _, v in conv) < 0.5, "the tiny community (1 of 2) would top it"

        # ---- a reader never sees a half-written board: the input is
        # drained and the windows stand still, so every tick rewrites each
        # board (DEL + ZADD) with the same content
        stop = threading.Event()
        bad, reads = [], [0]

        def reader():
            rr = stack.redis()
            while not stop.is_set():
                for key, want in boards.items():
                    got = read_board(rr, key)
                    reads[0] += 1
                    if got != want:
                        bad.append((key, got[:3], len(got), len(want)))
        th = threading.Thread(target=reader)
        readers.append((th, stop))
        th.start()
        # at least three more ticks rewrite every board while it reads (each
        # write sets the board's TTL afresh)
        key0, seen = next(iter(boards)), {"last": None, "writes": 0}

        def rewritten():
            t = r.cmd("PTTL", key0)
            if seen["last"] is not None and t > seen["last"]:
                seen["writes"] += 1
            seen["last"] = t
            return seen["writes"] >= 3
        wait_until("three board rewrites", rewritten, 60, p2)
        stop.set()
        th.join()
        assert not bad, bad[:3]
        assert reads[0] > 50, reads

        # ---- funneld query
        out = subprocess.run([str(funneld_bin()), "query", "-c", str(cfg), "product=p1"],
                             capture_output=True, text=True, timeout=scaled(30))
        assert out.returncode == 0, out.stderr
        q = json.loads(out.stdout)
        for f in ("coupon_users", "coupon_payers", "others_users", "others_payers",
                  "coupon_conversion_rate", "others_conversion_rate", "coupon_z", "coupon_p",
                  "payments_coupon", "revenue_coupon"):
            assert f in q["24h"], f
        out = subprocess.run([str(funneld_bin()), "query", "-c", str(cfg),
                              "lb:product,channel:24h:revenue"],
                             capture_output=True, text=True, timeout=scaled(30))
        assert out.returncode == 0, out.stderr
        q = json.loads(out.stdout)
        want = boards["%s:lb:product,channel:24h:revenue" % ctx.prefix]
        assert [(m["scope"], float(m["score"])) for m in q["members"]] == want
    finally:
        for th, stop in readers:
            stop.set()
            th.join()
        ctx.cleanup()


def test_coupon_cap(stack, tmp_path):
    """coupons.cap=2 on one partition: per hash the first two coupons keep
    their fields, the rest (and the id __other__) go to coupon.__other__.*,
    exactly as the oracle's rule; snapshots fold past the cap."""
    ctx = Ctx(stack, None, tmp_path, "coupon_cap")
    try:
        now_ms = int(time.time() * 1000)
        t0 = (now_ms - 3600 * 1000) // 60000 * 60000
        lines = []
        ids = ["a", "b", "__other__", "c", "d", "b", "a", "e"]
        for i in range(80):
            cp = ids[i % len(ids)]
            st = "refunded" if i % 10 == 9 else "paid"
            lines.append(json.dumps({
                "event_id": "e%d" % i, "type": "payment", "ts": t0 + i * 3000,
                "user_id": "u%d" % (i % 13), "product_id": "p%d" % (i % 2),
                "order_id": "o%d" % (i - 1 if st == "refunded" else i),
                "amount": 100 + i, "status": st, "coupon_id": cp}).encode())
        o, res = run_oracle(tmp_path, [lines], now_ms, ctx.prefix, coupon_cap=2)
        topic = "ccap." + ctx.group
        create_topics(stack.bootstrap, {topic: 1})
        cfg = ctx.config({topic: "mixed"}, flush_max_events=100, coupons={"cap": 2})
        produce_lines(stack.bootstrap, [(topic, 0, lines, 0)])
        r = stack.redis()
        p = ctx.start(cfg)
        wait_drained(r, ctx.prefix, ctx.group, {"%s:0" % topic: len(lines)}, [p], timeout=60)
        drained_ms = last_flush_ms(r, ctx.prefix, ctx.group)
        got = read_counters(r, ctx.prefix)
        assert_counters(res["counters"], got, ctx.prefix)
        named = {k: {f for f in h if f.startswith("coupon.") and "__other__" not in f}
                 for k, h in got.items()}
        assert max(len(v) for v in named.values()) == 4, named  # 2 ids x 2 fields
        h = snapshot_after(r, ctx.prefix, "all", drained_ms, 60)["24h"]
        want = incentives.fold_coupons(
            incentives.window_sums(o, "all", int(h["from"]), int(h["to"])), 2)
        cf = {f: int(v) for f, v in h.items() if f.startswith("coupon.")}
        assert cf == {f: v for f, v in want.items() if f.startswith("coupon.")}, (cf, want)
    finally:
        ctx.cleanup()


# (what is planted in the all/m1 bucket of the payment, the cause and the
#  field or key the refusal names)
GUARDS = [
    ("revenue_coupon", "OVERFLOW", "revenue_coupon"),
    ("coupon.__other__.revenue", "OVERFLOW", "coupon.__other__.revenue"),
    ("coupon.cpA.payments=abc", "NOTINT", "coupon.cpA.payments"),
    ("u:coupon_paid", "WRONGTYPE", ":coupon_paid"),
    ("u:coupon_touched", "WRONGTYPE", ":coupon_touched"),
]


def test_coupon_writes_checked_before_the_first_write(lctx, stack, tmp_path):
    """Every coupon field and HLL a payment would write is checked before the
    flush script writes anything: a planted value that one of them could not
    take refuses the batch whole (no exposure of it, no dedup mark) and the
    partition stops. One funneld per planted fault, all on one stream of
    their own buckets."""
    from alert_receivers import free_port
    from crafted import event, produce_crafted
    from test_flush_guards import INT64_MAX, halted_state, minute

    now = int(time.time() * 1000)
    r = stack.redis()
    for n, (plant, cause, names) in enumerate(GUARDS):
        prefix = "%s%d" % (lctx.prefix, n)
        ts = now - (10 + n) * 60000
        bucket = "%s:c:all:m1:%d" % (prefix, minute(ts))
        if plant.startswith("u:"):
            r.cmd("SET", "%s:u:all:m1:%d:%s" % (prefix, minute(ts), plant[2:]), "not an hll")
        elif "=" in plant:
            f, v = plant.split("=")
            r.cmd("HSET", bucket, f, v)
        else:
            # coupons.cap 1: cpZ holds the one name, so cpA lands on __other__
            r.cmd("HSET", bucket, plant, INT64_MAX - 10, "coupon.cpZ.payments", 1)
        topic = "cguard-%d-%s" % (n, lctx.group)
        pay_at = 200
        lines = [event(event_id="x%d" % i, type="exposure", ts=ts, user_id="u%d" % i,
                       product_id="p1") for i in range(pay_at)]
        lines.append(event(event_id="p1", type="payment", ts=ts, user_id="buyer", product_id="p1",
                           order_id="o1", amount=100, coupon_id="cpA"))
        produce_crafted(stack, tmp_path / ("s%d" % n), topic, "mixed", [lines], now)
        port = free_port()
        cfg = lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port},
                          coupons={"cap": 1})
        cfg_j = json.loads(cfg.read_text())
        cfg_j["redis"]["prefix"] = prefix
        cfg_j["kafka"]["group"] = "%s-%d" % (lctx.group, n)
        cfg.write_text(json.dumps(cfg_j))
        fd = lctx.start(cfg)
        line, code, halted, offsets = halted_state(fd, port, prefix, cfg_j["kafka"]["group"], r)
        off = int(offsets.get("%s:0" % topic, 0))
        assert off <= pay_at, (plant, "offset %d moved past the payment" % off)
        h = read_hash(r, bucket)
        assert int(h.get("exposures", 0)) == off, (plant, off, h)
        assert int(h.get("payments", 0)) == 0 and "payments_coupon" not in h, (plant, h)
        assert r.cmd("EXISTS", "%s:dedup:o1:paid" % prefix) == 0, plant
        assert cause in line and names in line, (plant, line)
        assert code == 503 and halted == 1, (plant, code, halted)
        assert fd.stop() == 1, fd.tail()
