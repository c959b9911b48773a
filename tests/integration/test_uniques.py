"""
test_uniques.py — contract 2's distinct-user layout (docs/REDIS.md,
"Distinct users per minute"; config `hll_m1_groupings`).

One funneld run (real Kafka, real redis-server, default configuration) over
a crafted stream of ~3 h of event time ending a few minutes ago, in every
default grouping. Checked against the independent oracle (tests/oracle/):
- every counter hash exact, every HLL key the oracle expects and no other:
  m1 `exposed` / `interacted` HLLs exist only for the scopes of `all` and
  `product`, while the h1 and d1 ones and every counter exist for all
  scopes; this is spelled out on the keys too;
- a rolling snapshot of a scope of `product,channel` (no m1 HLLs): every
  counter field exact over [from, to) (the oracle's m1 buckets); uv_from /
  uv_to the whole-hour span the docs define (the test's own arithmetic);
  uv_* = PFCOUNT of the union of that span's h1 HLLs as Redis holds them,
  and within HLL tolerance of the oracle's exact union; conversion_rate from
  them; the coupon groups' distinct users over the same span; the 5m
  window's uv fields "" and no coupon group fields (no whole hour in it);
- a snapshot of `all` (m1 HLLs) states its own window as its span;
- the API: a per-minute uniques series of such a scope is a 400
  `no_m1_uniques`; per hour it equals the h1 HLLs; counts per minute work;
  the event stream's per-minute points carry null uniques.
Config (check-config, no stack): a non-configured grouping in
`hll_m1_groupings` and an alert rule on distinct users of an unlisted
grouping are refused with a message naming `hll_m1_groupings`; the default
drops `product` where it is not a grouping.
"""

import importlib.util
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from alert_receivers import free_port
from conftest import (ORACLE, ORACLE_PREFIX, assert_counters, assert_distinct, dec,
                      hll_tolerance, read_counters, read_distinct, run_oracle, scaled, scan_keys,
                      wait_drained)
from crafted import event, lctx, produce_crafted, wait_until  # noqa: F401
from test_cli import BASE, run, write_cfg

_spec = importlib.util.spec_from_file_location("fd_oracle_uv", ORACLE)
oracle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracle)

SUMMED = ("exposures", "interactions", "payments", "refunds", "revenue", "late")
WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400}
LISTED = ("all", "product")  # the default hll_m1_groupings
SCOPE = "product=p1,channel=wechat_group"


def grouping_of(scope):
    return "all" if scope == "all" else ",".join(p.split("=", 1)[0] for p in scope.split(","))


def crafted_lines(now_ms):
    """~3 h of event time ending 3 minutes ago, in order: exposures,
    interactions, payments (a refund and a repeated order among them)."""
    rnd = random.Random(7)
    start = now_ms - 170 * 60_000
    lines, orders = [], []
    for k in range(640):
        ts = start + k * 15_000
        base = dict(event_id="e%d" % k, ts=ts, user_id="u%d" % rnd.randrange(60),
                    product_id=rnd.choice(["p1", "p1", "p2"]),
                    channel=rnd.choice(["wechat_group", "wechat_group", "weibo"]),
                    community_id=rnd.choice(["g1", "g2"]))
        if k % 3 == 0:
            base["campaign_id"] = "c1"
        if k % 4 == 1:
            base["coupon_id"] = "cp1"
        x = rnd.random()
        if x < 0.6:
            lines.append(event(type="exposure", **base))
        elif x < 0.85:
            lines.append(event(type="interaction", action=rnd.choice(["click", "like"]), **base))
        elif orders and x < 0.88:
            # a refund of an earlier order, then that refund again (ignored)
            o = orders[rnd.randrange(len(orders))]
            for _ in range(2):
                lines.append(event(type="payment", order_id=o[0], amount=o[1], status="refunded",
                                   **dict(base, event_id=base["event_id"] + "r")))
        else:
            o = ("o%d" % k, rnd.randrange(100, 10000))
            orders.append(o)
            lines.append(event(type="payment", order_id=o[0], amount=o[1], **base))
    return lines


def http_json(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=scaled(10)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stream_state(port, scope):
    """The first `state` event of /api/v1/stream for scope (the last 3 h)."""
    url = "http://127.0.0.1:%d/api/v1/stream?scope=%s&minutes=180" % (
        port, urllib.parse.quote(scope, safe=""))
    with urllib.request.urlopen(url, timeout=scaled(20)) as resp:
        event_name = None
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event_name = line[7:]
            elif line.startswith("data: ") and event_name == "state":
                return json.loads(line[6:])
    pytest.fail("no state event on the stream")


def read_snapshot(r, key, drained_ms, proc):
    def fresh():
        raw = r.cmd("HGETALL", key) or []
        snap = {dec(raw[i]): dec(raw[i + 1]) for i in range(0, len(raw), 2)}
        return snap if snap and int(snap["updated_at"]) > drained_ms + 100 else None
    return wait_until("snapshot %s written after the drain" % key, fresh, timeout=30, proc=proc)


def test_m1_layout_and_whole_hour_snapshots(lctx, stack, tmp_path):
    now_ms = int(time.time() * 1000)
    lines = crafted_lines(now_ms)
    topic = "uv." + lctx.group
    ends = produce_crafted(stack, tmp_path / "s", topic, "mixed", [lines], now_ms)
    res, users = run_oracle(tmp_path / "s", now_ms)
    n = len(ORACLE_PREFIX)
    want = {lctx.prefix + k[n:]: v for k, v in res["counters"].items()}
    port = free_port()
    cfg = lctx.config({topic: "mixed"}, http={"listen": "127.0.0.1:%d" % port})
    p = lctx.start(cfg)
    r = stack.redis()
    wait_drained(r, lctx.prefix, lctx.group, ends, [p], timeout=90)
    drained_ms = int(time.time() * 1000)

    # the keys: counters exact, HLLs exactly the oracle's set of keys
    assert_counters(want, read_counters(r, lctx.prefix), lctx.prefix)
    exp_distinct = {lctx.prefix + k[n:]: v for k, v in res["distinct"].items()}
    got_distinct = read_distinct(r, lctx.prefix)
    assert_distinct(exp_distinct, got_distinct, prefix=lctx.prefix)
    m1_users = [dec(k) for k in scan_keys(r, lctx.prefix + ":u:*:m1:*")]
    bad = [k for k in m1_users if k.endswith((":exposed", ":interacted"))
           and grouping_of(k[len(lctx.prefix) + 3:].rsplit(":", 3)[0]) not in LISTED]
    assert not bad, "m1 exposed/interacted HLLs of unlisted groupings: %s" % bad[:5]
    for g in LISTED:
        assert any(k.endswith(":exposed") and grouping_of(k[len(lctx.prefix) + 3:].rsplit(":", 3)[0]) == g
                   for k in m1_users), "no m1 exposed HLL of grouping %s" % g
    h1 = [dec(k) for k in scan_keys(r, "%s:u:%s:h1:*:exposed" % (lctx.prefix, SCOPE))]
    assert h1, "no h1 exposed HLL of %s" % SCOPE

    # snapshots of a scope without m1 HLLs
    head = "%s:c:%s:m1:" % (lctx.prefix, SCOPE)
    m1 = {int(k[len(head):]): f for k, f in want.items() if k.startswith(head)}
    for name, secs in WINDOWS.items():
        snap = read_snapshot(r, "%s:r:%s:%s" % (lctx.prefix, SCOPE, name), drained_ms, p)
        lo, hi = int(snap["from"]), int(snap["to"])
        assert hi - lo == secs, snap
        sums = {}
        for b, fields in m1.items():
            if lo <= b < hi:
                for f, v in fields.items():
                    sums[f] = sums.get(f, 0) + v
        # (a 5m window of ~20 events may hold none of this scope's exposures)
        assert sums.get("exposures", 0) > 0 or secs < 3600, "%s: no events; vacuous" % name
        sums = oracle.fold_actions(sums, 64)
        for f in set(sums) | {f for f in snap if f in SUMMED or f.startswith("interactions.")}:
            assert int(snap.get(f, 0)) == sums.get(f, 0), "%s %s: snapshot %s, oracle %s" % (
                name, f, snap.get(f), sums.get(f, 0))
        e, i = sums.get("exposures", 0), sums.get("interactions", 0)
        assert snap["interaction_rate"] == ("%.6f" % (i / e) if e else ""), snap
        if secs < 3600:
            for f in ("uv_exposed", "uv_interacted", "uv_paid", "uv_from", "uv_to",
                      "conversion_rate"):
                assert snap[f] == "", "%s %s: %r, want \"\" (no whole hour)" % (name, f, snap[f])
            assert "uv_coupon_touched" not in snap and "coupon_users" not in snap, snap
            continue
        # docs/REDIS.md: the ceil(window / 1 h) whole hours ending at the last
        # hour boundary at or before the window's end
        end = hi // 3600 * 3600
        start = end - -(-secs // 3600) * 3600
        assert (int(snap["uv_from"]), int(snap["uv_to"])) == (start, end), snap
        hours = list(range(start, end, 3600))
        got = {}
        for step in ("exposed", "interacted", "paid"):
            keys = ["%s:u:%s:h1:%d:%s" % (lctx.prefix, SCOPE, t, step) for t in hours]
            union = set()
            for t in hours:
                union |= users.get("%s:u:%s:h1:%d:%s" % (ORACLE_PREFIX, SCOPE, t, step), set())
            got[step] = int(snap["uv_" + step])
            assert got[step] == r.cmd("PFCOUNT", *keys), "%s uv_%s" % (name, step)
            assert abs(got[step] - len(union)) <= hll_tolerance(len(union)), (name, step)
        assert got["exposed"] > 0 and got["paid"] > 0, "%s: empty span; vacuous" % name
        # the coupon groups count the same span (docs/METRICS.md)
        for step in ("coupon_touched", "coupon_paid"):
            keys = ["%s:u:%s:h1:%d:%s" % (lctx.prefix, SCOPE, t, step) for t in hours]
            assert int(snap["uv_" + step]) == r.cmd("PFCOUNT", *keys), (name, step, snap)
        assert int(snap["uv_coupon_touched"]) > 0, snap
        assert snap["conversion_rate"] == "%.6f" % (got["paid"] / got["exposed"]), snap

    # `all` has m1 HLLs: its uniques span its own window
    for name, secs in WINDOWS.items():
        snap = read_snapshot(r, "%s:r:all:%s" % (lctx.prefix, name), drained_ms, p)
        assert (snap["uv_from"], snap["uv_to"]) == (snap["from"], snap["to"]), snap
        assert int(snap["uv_exposed"]) > 0, snap

    # the API: no per-minute uniques for SCOPE, per hour they are the HLLs
    hi = int(snap["to"])
    q = "/api/v1/series?scope=%s&gran=%s&from=%d&to=%d&metric=%s"
    for metric in ("uv_exposed", "conversion_rate"):
        st, body = http_json(port, q % (SCOPE, "m1", hi - 3600, hi, metric))
        assert st == 400 and body["error"]["code"] == "no_m1_uniques", (st, body)
        assert "hll_m1_groupings" in body["error"]["message"], body
    st, body = http_json(port, q % (SCOPE, "m1", hi - 3600, hi, "exposures"))
    assert st == 200 and sum(pt["value"] for pt in body["points"]) > 0, (st, body)
    st, body = http_json(port, q % (SCOPE, "h1", hi - 3 * 3600, hi, "uv_exposed"))
    assert st == 200, (st, body)
    for pt in body["points"]:
        key = "%s:u:%s:h1:%s:exposed" % (lctx.prefix, SCOPE, pt["bucket"])
        assert pt["value"] == r.cmd("PFCOUNT", key), pt
    assert any(pt["value"] for pt in body["points"]), body
    st, body = http_json(port, q % ("product=p1", "m1", hi - 3600, hi, "uv_exposed"))
    assert st == 200 and any(pt["value"] for pt in body["points"]), (st, body)
    # the event stream's per-minute points: counts, and null uniques
    state = stream_state(port, SCOPE)
    pts = state["series"]
    assert pts and sum(pt["exposures"] for pt in pts) > 0, state
    assert all(pt[f] is None for pt in pts for f in ("uv_exposed", "uv_interacted", "uv_paid")), pts
    assert state["windows"]["24h"]["uv_from"] is not None, state
    assert p.stop() == 0, p.tail()


# ------------------------------------------------------------------ config

RULE = {"name": "CR", "kind": "below_threshold", "metric": "conversion_rate",
        "grouping": ["product", "channel"], "window": "15m", "threshold": 0.01,
        "min_samples": 10}


def cfg_with(**top):
    cfg = json.loads(json.dumps(BASE))
    cfg.update(top)
    return cfg


def check_config(tmp_path, cfg):
    p = run(["check-config", "-c", write_cfg(tmp_path, cfg)])
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.mark.parametrize("case,cfg", [
    ("not_a_grouping", cfg_with(hll_m1_groupings=[[], ["channel"]])),
    ("not_a_list", cfg_with(hll_m1_groupings="product")),
    ("unknown_dimension", cfg_with(hll_m1_groupings=[["planet"]])),
    ("uniques_rule_unlisted", cfg_with(alerts={"rules": [RULE]})),
    ("absent_while_uniques", cfg_with(alerts={"rules": [dict(
        RULE, kind="absent", metric="payments", grouping=["campaign"],
        **{"while": "uv_exposed"})]})),
])
def test_config_refused_naming_the_key(tmp_path, case, cfg):
    if case == "absent_while_uniques":
        del cfg["alerts"]["rules"][0]["threshold"]
    rc, _, err = check_config(tmp_path, cfg)
    assert rc == 2, "%s: exit %d\n%s" % (case, rc, err)
    assert "hll_m1_groupings" in err, "%s: %s" % (case, err)


def test_config_accepted(tmp_path):
    # the rule's grouping listed; a rule on a count needs no m1 HLLs
    rc, out, err = check_config(tmp_path, cfg_with(
        hll_m1_groupings=[[], ["channel", "product"]],
        alerts={"rules": [RULE, dict(RULE, name="IR", metric="interaction_rate",
                                     grouping=["campaign"])]}))
    assert rc == 0, err
    assert json.loads(out)["hll_m1_groupings"] == [[], ["channel", "product"]], out
    # the default keeps `all` and `product` only where they are groupings
    rc, out, err = check_config(tmp_path, cfg_with(groupings=[[], ["campaign"]]))
    assert rc == 0, err
    assert json.loads(out)["hll_m1_groupings"] == [[]], out
    rc, out, err = check_config(tmp_path, cfg_with())
    assert rc == 0, err
    assert json.loads(out)["hll_m1_groupings"] == [[], ["product"]], out
