"""
test_marketing.py — the marketing metrics (docs/METRICS.md) on one
deterministic 36-day stream of 200,000 events (tests/oracle/gen_marketing.py:
returning users, payments days after the exposure, coupons, refunds,
re-delivered payments, events arriving hours and days late), through a real
Kafka broker into a real redis-server:

  * SIGKILLed at seven seeded-random moments (at least five before the drain ends) and restarted, funneld leaves
    every retention (`{prefix}:ret:`) and attributed-funnel
    (`{prefix}:attr:`) counter equal to the oracle's
    (tests/oracle/marketing.py), which computes them from the whole event
    set at once — so the result does not depend on the order in which the
    partitions' flushes reached Redis, nor on the replays after each kill;
    and every counter hash (`{prefix}:c:`: the coupon fields payments_coupon,
    refunds_coupon, revenue_coupon, coupon.{id}.* included) equals the
    oracle's (tests/oracle/oracle.py + incentives.py), every HLL within
    tolerance;
  * two instances in one group, one SIGKILLed mid-stream: the same, for the
    groupings `all` and `product`;
  * with `marketing.user_cap` 4 (a smaller stream of the same generator,
    where many users pass 4 exposures / interactions): the same exactness
    against the oracle's cap rule (docs/METRICS.md, "Bounds").

Event time spans 36 days, beyond the default m1 TTL (48 h, which is also the
`ts_too_old` bound): the test configures `ttl.m1_s` (and the TTLs that must
be at least it) to 40 days (docs/METRICS.md, "Testing with old events"), and
one grouping (`all`) to keep Redis small. The stream, its oracle answer and
its topics are made once per session (fixture `mk`); the coupon and
leaderboard metrics can add their assertions on the same stream.
"""

import importlib.util
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import (ORACLE_PREFIX, REPO, Stream, TopicSet, _run, assert_counters,
                      assert_distinct, dec, funneld_bin, hll_tolerance, read_counters, read_distinct, read_hash,
                      read_lines,
                      rng_for, scaled, scan_keys, batched, total_progress, wait_drained)
from crafted import lctx  # noqa: F401  (fixture)

GEN = REPO / "tests" / "oracle" / "gen_marketing.py"
DAYS = 36
TTL_S = 40 * 86400
MKT_SEED = 20241111
MKT_EVENTS = 200000


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "oracle" / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def mk(stack, tmp_path_factory):
    """The stream, the oracle's marketing keys (ORACLE_PREFIX) and its
    topics, produced once."""
    d = tmp_path_factory.mktemp("marketing")
    now_ms = int(time.time()) * 1000
    t0 = time.monotonic()
    _run([sys.executable, GEN, "--seed", MKT_SEED, "--events", MKT_EVENTS, "--out", d,
          "--now-ms", now_ms, "--days", DAYS], scaled(300), "gen_marketing.py")
    oracle = _load("oracle")
    marketing = _load("marketing")
    manifest, parts = oracle.load_manifest(str(d))
    # both tests' groupings: the kill test's `all` keys are a subset
    o = oracle.Oracle(now_ms, prefix=ORACLE_PREFIX, groupings=[[], ["product"]],
                      limits=oracle.Limits(ttl_m1_s=TTL_S))
    o.marketing = marketing.Marketing(o.cal, oracle.scope_encode, marketing.Config())
    lines = {}
    for topic, p, ttype in parts:
        name = "%s.%d.jsonl" % (topic, p)
        lines[(topic, p)] = read_lines(d / name)
        o.run_partition(name, topic, p, ttype, lines[(topic, p)])
    res = o.result()
    expected = {"rejects": o.rejects, "marketing": o.marketing.result(ORACLE_PREFIX),
                "counters": res["counters"], "distinct": res["distinct"],
                "users": {"%s:u:%s:%s:%s:%s" % (ORACLE_PREFIX, sc, g, b, st): u
                          for (sc, g, b, st), u in o.distinct.items()}}
    s = Stream(d, now_ms, manifest, lines, expected)
    assert s.total >= MKT_EVENTS
    intended = json.loads((d / "intended_rejects.json").read_text())
    assert sorted((r["topic"], r["partition"], r["offset"]) for r in o.rejects) == \
        sorted((r["topic"], r["partition"], r["offset"]) for r in intended), \
        "the oracle rejects other lines than the generator made malformed"
    topics = TopicSet(stack, s, "").create().produce(1.0)
    print("marketing stream: %d lines, %d oracle keys (%.1fs)" % (
        s.total, len(expected["marketing"]), time.monotonic() - t0))
    return s, topics


def config(c, topics, groupings=([],)):
    return c.config(topics, groupings=list(groupings),
                    ttl={"m1_s": TTL_S, "h1_s": TTL_S, "d1_s": TTL_S},
                    dedup_ttl_s=TTL_S + 3600, marketing={"enabled": True},
                    flush_max_events=2000)


def read_marketing(r, prefix):
    """{key: {field: int}} of the ret: and attr: hashes, 0 fields left out
    (a counter corrected back to 0 stays as a 0 field; absent = 0)."""
    out = {}
    for pat in (":ret:*", ":attr:*"):
        keys = scan_keys(r, prefix + pat)
        for chunk in batched(keys):
            for k, rep in zip(chunk, r.pipeline([("HGETALL", k) for k in chunk])):
                h = {dec(f): int(v) for f, v in zip(rep[::2], rep[1::2]) if int(v) != 0}
                if h:
                    out[dec(k)] = h
    return out


def check_exact(r, s, prefix):
    n = len(ORACLE_PREFIX)
    want = {prefix + k[n:]: v for k, v in s.expected["marketing"].items()}
    got = read_marketing(r, prefix)
    diffs = ["%s: %s vs %s" % (k, want.get(k), got.get(k))
             for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
    assert not diffs, "%d of %d marketing keys differ (expected vs actual), first 10:\n  %s" % (
        len(diffs), len(want), "\n  ".join(diffs[:10]))
    # the per-user state and the counters carry the horizon as TTL
    some = scan_keys(r, prefix + ":us:*")
    assert some, "no per-user state keys"
    for k in some[:20] + sorted(got)[:20]:
        ttl = r.cmd("TTL", k)
        assert 0 < ttl <= 400 * 86400, (k, ttl)
    return len(want)


def check_counters(r, s, prefix, groupings):
    """Every `{prefix}:c:` counter hash (coupon fields included) equals the
    oracle's exactly and every `{prefix}:u:` HLL is within the HLL
    tolerance, for the scopes of `groupings` ("all" or a dimension); the
    oracle's hashes carry coupon payments, refunds and per-coupon fields, so
    those are compared for real. Returns the number of counter hashes."""
    def ours(key, kind):
        scope = key.split(":%s:" % kind, 1)[1].split(":")[0]
        g = "all" if scope == "all" else ",".join(
            part.split("=", 1)[0] for part in scope.split(","))
        return g in groupings

    want = {k: v for k, v in s.counters_for(prefix).items() if ours(k, "c")}
    tot = {}
    for h in want.values():
        for f, v in h.items():
            f = "coupon.{id}." + f.rsplit(".", 1)[1] if f.startswith("coupon.") else f
            tot[f] = tot.get(f, 0) + abs(v)
    for f in ("payments_coupon", "refunds_coupon", "revenue_coupon", "coupon.{id}.payments",
              "coupon.{id}.revenue", "payments", "refunds"):
        assert tot.get(f, 0) > 0, ("the stream exercises no %s" % f, tot)
    assert_counters(want, read_counters(r, prefix), prefix)
    dwant = {k: v for k, v in s.distinct_for(prefix).items() if ours(k, "u")}
    got = read_distinct(r, prefix)
    # an HLL depends only on its set: outside the tolerance, funneld's must
    # equal Redis's own HLL over the oracle's exact set (conftest.hll_ref)
    ref = {}
    for k, n in dwant.items():
        a = got.get(k)
        if isinstance(a, int) and abs(a - n) > hll_tolerance(n):
            users = s.expected["users"][ORACLE_PREFIX + k[len(prefix):]]
            tmp = "%s:hllref" % prefix
            ref[k[len(prefix):]] = r.pipeline([("DEL", tmp), ("PFADD", tmp, *users),
                                               ("PFCOUNT", tmp), ("DEL", tmp)])[2]
    assert_distinct(dwant, got, "HLLs of the marketing stream", ref=ref, prefix=prefix)
    return len(want)


def drive(c, cfg, r, ends, progress_goals, rng, procs_at_once=1):
    """Starts funneld, SIGKILLs it once stored progress passes each goal
    (plus a random 0-0.5 s), restarting after each kill; returns the kills."""
    total = sum(ends.values())
    kills = []
    for g in progress_goals:
        at_start = total_progress(r, c.prefix, c.group, ends)
        if at_start >= total:
            break  # drained already: the count of kills mid-stream is asserted
        fd = c.start(cfg)
        goal = max(int(g * total), at_start + 1)
        deadline = time.monotonic() + scaled(120)
        while True:
            p = total_progress(r, c.prefix, c.group, ends)
            if p >= goal and p > at_start:
                break
            if not fd.alive():
                pytest.fail("funneld died by itself at %d/%d\n%s" % (p, total, c.tails()),
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("no progress to %d/%d (at %d)\n%s" % (goal, total, p, c.tails()),
                            pytrace=False)
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))  # kill at a random point of the next flush
        fd.kill()
        kills.append(total_progress(r, c.prefix, c.group, ends))
    return kills


def test_marketing_exact_through_kills(lctx, stack, mk):
    s, topics = mk
    r = stack.redis()
    ends = topics.end_offsets()
    total = sum(ends.values())
    cfg = config(lctx, topics)
    rng = rng_for("marketing-kills")
    goals = sorted(rng.uniform(0.05, 0.85) for _ in range(7))
    kills = drive(lctx, cfg, r, ends, goals, rng)
    print("kills at stored progress", kills, "of", total)
    assert len([k for k in kills if k < total]) >= 5, kills
    fd = lctx.start(cfg)
    wait_drained(r, lctx.prefix, lctx.group, ends, [fd], timeout=300)
    assert fd.stop() == 0, fd.tail()
    n = check_exact(r, s, lctx.prefix)
    print("%d marketing keys exact after %d kills" % (n, len(kills)))
    m = check_counters(r, s, lctx.prefix, ("all",))
    print("%d counter hashes exact (coupon fields included) after %d kills" % (m, len(kills)))


def test_marketing_two_instances_one_killed(lctx, stack, mk):
    s, topics = mk
    r = stack.redis()
    ends = topics.end_offsets()
    total = sum(ends.values())
    cfg = config(lctx, topics, groupings=([], ["product"]))
    a = lctx.start(cfg)
    b = lctx.start(cfg)
    deadline = time.monotonic() + scaled(120)
    while total_progress(r, lctx.prefix, lctx.group, ends) < 0.4 * total:
        if not (a.alive() and b.alive()):
            pytest.fail("an instance died by itself\n" + lctx.tails(), pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no progress to 40%\n" + lctx.tails(), pytrace=False)
        time.sleep(0.05)
    a.kill()
    at_kill = total_progress(r, lctx.prefix, lctx.group, ends)
    assert at_kill < total, "the kill came after the drain"
    wait_drained(r, lctx.prefix, lctx.group, ends, [b], timeout=300)
    check_exact(r, s, lctx.prefix)
    check_counters(r, s, lctx.prefix, ("all", "product"))
    check_snapshots(r, s, lctx.prefix, b)
    assert b.stop() == 0, b.tail()
    check_query(s, lctx.prefix, cfg)


def check_query(s, prefix, cfg):
    """`funneld query product=...` prints the product's cohorts (with L)
    and first/last-touch funnel days: exactly the oracle's hashes."""
    n = len(ORACLE_PREFIX)
    want = {prefix + k[n:]: v for k, v in s.expected["marketing"].items()}
    product = sorted(k.split(":ret:")[1].split(":")[0] for k in want
                     if ":ret:product=" in k and "," not in k.split(":ret:")[1])[0]
    p = _run([funneld_bin(), "query", "-c", cfg, product], scaled(60), "funneld query")
    out = json.loads(p.stdout)
    got = {}
    for row in out["retention"]:
        h = {f: int(v) for f, v in row.items() if f.startswith(("cohort_size", "retained_d"))}
        size = h.get("cohort_size", 0)
        for k in (1, 7, 30):
            kept = h.get("retained_d%d" % k, 0)
            assert row["retention_d%d" % k] == ("%.6f" % (kept / size) if size else ""), row
        got["%s:ret:%s:%s" % (prefix, product, row["cohort_day"])] = h
    for touch in ("first", "last"):
        for row in out["attribution"][touch]:
            got["%s:attr:%s:%s:%s" % (prefix, touch, product, row["day"])] = {
                f: int(v) for f, v in row.items() if f != "day"}
    got = {k: {f: v for f, v in h.items() if v} for k, h in got.items()}
    got = {k: h for k, h in got.items() if h}
    exp = {k: v for k, v in want.items()
           if k.startswith(("%s:ret:%s:" % (prefix, product),
                            "%s:attr:first:%s:" % (prefix, product),
                            "%s:attr:last:%s:" % (prefix, product)))}
    diffs = [(k, exp.get(k), got.get(k)) for k in sorted(set(exp) | set(got))
             if exp.get(k) != got.get(k)]
    assert exp and not diffs, "funneld query vs oracle (key, expected, printed): %s" % diffs[:10]


def check_snapshots(r, s, prefix, proc):
    """Each product's rolling snapshot shows, per retention day k, the
    cohort of local day (watermark day - k - 1) with the oracle's counts
    (docs/METRICS.md). Waits for a tick after the drain."""
    n = len(ORACLE_PREFIX)
    want = {prefix + k[n:]: v for k, v in s.expected["marketing"].items()}
    marketing = sys.modules["marketing"]
    oracle = sys.modules["oracle"]
    cal = oracle.DayCal("Asia/Shanghai")
    products = sorted({k.split(":ret:")[1].split(":")[0] for k in want
                       if ":ret:product=" in k and "," not in k.split(":ret:")[1]})
    assert products

    def snapshot_ok(product):
        h = {dec(f): dec(v) for f, v in zip(*[iter(r.cmd("HGETALL", "%s:r:%s:24h" % (
            prefix, product)) or [])] * 2)}
        if "watermark" not in h or "cohort_day_d1" not in h:
            return None
        today = marketing.daynum(cal.label(int(h["watermark"])))
        bad = []
        for k in (1, 7, 30):
            day = marketing.day_label(today - k - 1)
            exp = want.get("%s:ret:%s:%s" % (prefix, product, day), {})
            size, kept = exp.get("cohort_size", 0), exp.get("retained_d%d" % k, 0)
            got = (h.get("cohort_day_d%d" % k), h.get("cohort_size_d%d" % k),
                   h.get("retained_d%d" % k), h.get("retention_d%d" % k))
            rate = "%.6f" % (kept / size) if size else ""
            if got != (day, str(size), str(kept), rate):
                bad.append((k, got, (day, size, kept, rate)))
        return bad

    deadline = time.monotonic() + scaled(30)
    for product in products:
        while True:
            bad = snapshot_ok(product)
            if bad == []:
                break
            if time.monotonic() > deadline:
                pytest.fail("snapshot retention fields of %s: %s\n%s" % (
                    product, bad, proc.tail()), pytrace=False)
            time.sleep(0.2)


# ---- the per-user section refuses before its first write (docs/REDIS.md)

@pytest.mark.parametrize("plant", ["overflow", "wrongtype"])
def test_marketing_refusal_writes_nothing(lctx, stack, tmp_path, plant):
    """A cohort counter planted at INT64_MAX (the batch's new users would
    push cohort_size past it) or a user state key of the wrong type: the
    flush is refused whole — no counter, no state, no offset — twice, then
    the partition stops with an error line naming the cause."""
    from crafted import event, produce_crafted, wait_log
    oracle = _load("oracle")
    now = int(time.time() * 1000)
    ts = now - 10 * 60_000
    day = oracle.DayCal("Asia/Shanghai").label(ts)
    r = stack.redis()
    planted = "%s:ret:product=course-a:%s" % (lctx.prefix, day)
    if plant == "overflow":
        r.cmd("HSET", planted, "cohort_size", (1 << 63) - 1)
    else:
        planted = "%s:us:course-a:u5" % lctx.prefix
        r.cmd("RPUSH", planted, "not a state")
    topic = "mkguard-" + uuid.uuid4().hex[:8]
    lines = [event(event_id="x%d" % i, type="exposure", ts=ts, user_id="u%d" % (i % 50),
                   product_id="course-a", channel="wechat_group") for i in range(300)]
    produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now)
    fd = lctx.start(lctx.config({topic: "mixed"}, marketing={"enabled": True},
                                flush_max_events=2000))
    line = wait_log(fd, r"partition stopped", timeout=60)
    want = "OVERFLOW " + planted if plant == "overflow" else "WRONGTYPE " + planted
    assert want in line, line
    assert Path(fd.log_path).read_text(errors="replace").count('msg="flush script failed"') == 2
    assert not read_hash(r, "%s:offsets:%s" % (lctx.prefix, lctx.group)), "offset moved"
    # (the HLL PFADDs go before the script and are idempotent: not checked)
    for pat in (":c:*", ":attr:*", ":dedup:*", ":scopes"):
        assert scan_keys(r, lctx.prefix + pat) == [], "%s written by a refused flush" % pat
    if plant == "overflow":
        assert scan_keys(r, lctx.prefix + ":us:*") == []
        assert scan_keys(r, lctx.prefix + ":ret:*") == [planted.encode()]
        assert read_hash(r, planted) == {"cohort_size": str((1 << 63) - 1)}
    else:
        assert scan_keys(r, lctx.prefix + ":us:*") == [planted.encode()]
        assert scan_keys(r, lctx.prefix + ":ret:*") == []
    assert fd.stop() == 1, fd.tail()


# ---- the per-user cap (docs/METRICS.md, "Bounds")

CAP = 4
CAP_EVENTS = 20000


def test_marketing_user_cap(lctx, stack, tmp_path):
    """marketing.user_cap 4 on a 20,000-event stream of the same generator
    (own topics): many (product, user) pairs have more than 4 exposures or
    interactions, so the cap changes the oracle's answer; funneld's ret: and
    attr: counters equal the oracle's with the same cap, exactly."""
    d = tmp_path / "capstream"
    now_ms = int(time.time()) * 1000
    _run([sys.executable, GEN, "--seed", MKT_SEED + 1, "--events", CAP_EVENTS, "--out", d,
          "--now-ms", now_ms, "--days", DAYS, "--topic-prefix", "mkcap-" + lctx.group],
         scaled(120), "gen_marketing.py")
    oracle = _load("oracle")
    marketing = _load("marketing")
    manifest, parts = oracle.load_manifest(str(d))
    answers = {}
    for cap in (CAP, 32):
        o = oracle.Oracle(now_ms, prefix=ORACLE_PREFIX, groupings=[[]],
                          limits=oracle.Limits(ttl_m1_s=TTL_S))
        o.marketing = marketing.Marketing(o.cal, oracle.scope_encode,
                                          marketing.Config(user_cap=cap))
        lines = {}
        for topic, p, ttype in parts:
            name = "%s.%d.jsonl" % (topic, p)
            lines[(topic, p)] = read_lines(d / name)
            o.run_partition(name, topic, p, ttype, lines[(topic, p)])
        answers[cap] = o.marketing.result(ORACLE_PREFIX)
        if cap == CAP:
            heavy = sum(1 for recs in o.marketing.users.values()
                        if sum(1 for r in recs if r[0] == "exposure") > CAP)
            busy = sum(1 for recs in o.marketing.users.values()
                       if sum(1 for r in recs if r[0] == "interaction") > CAP)
    assert heavy > 50 and busy > 50, ("too few users past the cap", heavy, busy)
    changed = [k for k in set(answers[CAP]) | set(answers[32])
               if answers[CAP].get(k) != answers[32].get(k)]
    assert len(changed) > 10, ("the cap changes too few keys", len(changed))
    s = Stream(d, now_ms, manifest, lines, {"rejects": [], "marketing": answers[CAP]})
    topics = TopicSet(stack, s, "").create().produce(1.0)
    r = stack.redis()
    cfg = lctx.config(topics, groupings=[[]],
                      ttl={"m1_s": TTL_S, "h1_s": TTL_S, "d1_s": TTL_S},
                      dedup_ttl_s=TTL_S + 3600,
                      marketing={"enabled": True, "user_cap": CAP}, flush_max_events=2000)
    fd = lctx.start(cfg)
    wait_drained(r, lctx.prefix, lctx.group, topics.end_offsets(), [fd], timeout=300)
    assert fd.stop() == 0, fd.tail()
    n = check_exact(r, s, lctx.prefix)
    print("user_cap %d: %d marketing keys exact (%d differ from cap 32; %d users past "
          "the cap in exposures, %d in interactions)" % (CAP, n, len(changed), heavy, busy))
