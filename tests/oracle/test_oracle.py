"""
Tests of the oracle (hand-computed expectations from docs/EVENTS.md,
docs/REDIS.md and SPEC.md, never from the oracle's own output) and of the
stream generator (determinism, and every malformed line gets the reason it was
built for). Run: python3 -m pytest -q tests/oracle
"""

import hashlib
import io
import json
import os
import sys
from contextlib import redirect_stdout

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_stream  # noqa: E402
import oracle  # noqa: E402

NOW = 1730808000000          # 2024-11-05T12:00:00Z = 20:00 in Shanghai
M1_1155 = 1730807700         # 11:55:00Z
H1_11 = 1730804400           # 11:00:00Z
H1_12 = 1730808000           # 12:00:00Z


def ev(**kw):
    return json.dumps(kw, ensure_ascii=False).encode("utf-8")


def write_stream(d, topics):
    """topics: {name: (type, [[line, ...] per partition])}."""
    os.makedirs(d, exist_ok=True)
    man = {"topics": {}, "now_ms": NOW, "events": 0, "malformed": 0}
    for name, (ttype, parts) in topics.items():
        man["topics"][name] = {"type": ttype, "partitions": len(parts)}
        for p, lines in enumerate(parts):
            with open(os.path.join(d, "%s.%d.jsonl" % (name, p)), "wb") as f:
                for line in lines:
                    f.write(line + b"\n")
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(man, f)
    return str(d)


def run(tmp_path, topics, now=NOW, **kw):
    return oracle.compute(write_stream(tmp_path / "s", topics), now, **kw)


def c(scope, gran, bucket):
    return "funnel:c:%s:%s:%s" % (scope, gran, bucket)


def u(scope, gran, bucket, step):
    return "funnel:u:%s:%s:%s:%s" % (scope, gran, bucket, step)


# ------------------------------------------------------------ exact counting

def test_handful_of_events_exact_hashes(tmp_path):
    lines = [
        ev(event_id="e1", type="exposure", ts=M1_1155 * 1000, user_id=42,
           product_id="course-py", channel="wechat_group", community_id="g1",
           campaign_id="c1"),
        ev(event_id="e2", type="exposure", ts=M1_1155 * 1000 + 10_000, user_id="42",
           product_id="course-py", channel="weibo"),
        ev(event_id="e3", type="interaction", ts="2024-11-05T19:55:20.5+08:00",
           user_id="u2", product_id="course-py", action="click", campaign_id=""),
        ev(event_id="e4", type="payment", ts=M1_1155 * 1000 + 30_000, user_id="u2",
           product_id="course-py", order_id="o1", amount=990),
    ]
    r = run(tmp_path, {"t.mixed": ("mixed", [lines])})
    allf = {"exposures": 2, "interactions": 1, "interactions.click": 1,
            "payments": 1, "revenue": 990}
    want = {}
    for gran, b in (("m1", M1_1155), ("h1", H1_11), ("d1", "20241105")):
        want[c("all", gran, b)] = allf
        want[c("product=course-py", gran, b)] = allf
        want[c("product=course-py,channel=wechat_group", gran, b)] = {"exposures": 1}
        want[c("product=course-py,channel=weibo", gran, b)] = {"exposures": 1}
        want[c("product=course-py,community=g1", gran, b)] = {"exposures": 1}
        want[c("campaign=c1", gran, b)] = {"exposures": 1}
    assert r["counters"] == want
    # 42 and "42" are one user; a payer is counted once per step.
    assert r["distinct"][u("all", "m1", M1_1155, "exposed")] == 1
    assert r["distinct"][u("all", "d1", "20241105", "interacted")] == 1
    assert r["distinct"][u("product=course-py", "h1", H1_11, "paid")] == 1
    assert u("campaign=c1", "m1", M1_1155, "paid") not in r["distinct"]
    # contract 2: no m1 exposed/interacted HLL for the scopes of groupings
    # outside hll_m1_groupings (default all, product): 2 channels, 1
    # community, 1 campaign
    assert u("campaign=c1", "m1", M1_1155, "exposed") not in r["distinct"]
    assert r["distinct"][u("campaign=c1", "h1", H1_11, "exposed")] == 1
    assert len(r["distinct"]) == 3 * (6 + 2 + 2) - 4  # exposed, interacted, paid scopes
    assert r["rejects"] == []
    assert r["offsets"] == {"t.mixed:0": 4}


def test_prefix_and_groupings_options(tmp_path):
    lines = [ev(event_id="e", type="exposure", ts=M1_1155 * 1000, user_id=1,
                product_id="p", content_id="k 1")]
    r = run(tmp_path, {"t.mixed": ("mixed", [lines])}, prefix="fx",
            groupings=oracle.parse_groupings("all;content,product"))
    assert sorted(k for k in r["counters"] if ":m1:" in k) == [
        "fx:c:all:m1:%d" % M1_1155, "fx:c:content=k%%201,product=p:m1:%d" % M1_1155]


def test_late_logic(tmp_path):
    t0 = NOW - 3_600_000

    def e(i, dt, **kw):
        return ev(event_id="e%d" % i, ts=t0 + dt, user_id="u", product_id="p", **kw)
    p0 = [
        e(1, 0),            # first event: never late, max = t0
        e(2, 200_000),      # max = t0+200s
        e(3, 80_000),       # exactly max - 120 s: not late
        e(4, 79_999),       # 1 ms further back: late
        ev(event_id="e5", ts=NOW + 3_600_000, user_id="u", product_id="p"),  # rejected
        e(6, 81_000),       # the rejected future ts did not move max: not late
        e(7, 300_000),      # max = t0+300s
        e(8, 180_000),      # = max - 120 s: not late
        e(9, 100_000),      # late
    ]
    p1 = [e(10, 0)]         # another partition: its own max, not late
    r = run(tmp_path, {"t.exposure": ("exposure", [p0, p1])})
    assert [x["offset"] for x in r["rejects"]] == [4]
    assert r["rejects"][0]["reason"] == "ts_in_future"
    late_m1 = {k: v.get("late", 0) for k, v in r["counters"].items()
               if k.startswith("funnel:c:all:m1:")}
    m = (t0 // 60000) * 60          # t0 is on a minute boundary
    assert late_m1 == {str_key(m): 0, str_key(m + 60): 2, str_key(m + 180): 0,
                       str_key(m + 300): 0}
    assert r["counters"][str_key(m + 60)] == {"exposures": 4, "late": 2}  # e3 e4 e6 e9
    assert r["counters"][str_key(m + 180)] == {"exposures": 2}            # e2 e8
    assert r["counters"][str_key(m)] == {"exposures": 2}                  # e1 e10
    assert r["counters"][c("all", "h1", t0 // 3_600_000 * 3600)] == {"exposures": 9, "late": 2}
    assert r["summary"]["late"] == 2
    # lateness 0: everything behind max is late.
    r = run(tmp_path / "b", {"t.exposure": ("exposure", [p0, p1])}, lateness_s=0)
    assert r["summary"]["late"] == 5


def str_key(m1):
    return c("all", "m1", m1)


def test_repeated_payment_changes_nothing(tmp_path):
    t = M1_1155 * 1000
    pay = ev(event_id="p1", ts=t, user_id="a", product_id="p", order_id="o1", amount=500)
    again = ev(event_id="p1b", ts=t + 1000, user_id="b", product_id="p", order_id="o1",
               amount=7000, status="paid")
    r = run(tmp_path, {"t.payment": ("payment", [[pay, pay, again]])})
    assert r["counters"][c("all", "m1", M1_1155)] == {"payments": 1, "revenue": 500}
    assert r["distinct"][u("all", "m1", M1_1155, "paid")] == 1   # "b" not added
    assert r["summary"]["repeated_payments"] == 2
    assert r["offsets"] == {"t.payment:0": 3}


def test_repeat_raises_max_ts(tmp_path):
    t = NOW - 3_600_000
    pay = ev(event_id="p1", ts=t, user_id="a", product_id="p", order_id="o1", amount=1)
    rep = ev(event_id="p2", ts=t + 500_000, user_id="a", product_id="p", order_id="o1",
             amount=1)
    nxt = ev(event_id="p3", ts=t + 300_000, user_id="a", product_id="p", order_id="o2",
             amount=1)
    r = run(tmp_path, {"t.payment": ("payment", [[pay, rep, nxt]])})
    assert r["summary"]["late"] == 1


def test_cross_partition_repeat_fails_loudly(tmp_path):
    pay = ev(event_id="p1", ts=NOW - 60_000, user_id="a", product_id="p",
             order_id="o1", amount=1)
    with pytest.raises(SystemExit, match="cross-partition"):
        run(tmp_path, {"t.payment": ("payment", [[pay], [pay]])})


def test_refund_subtracts_in_its_own_bucket(tmp_path):
    now = NOW + 1_800_000
    paid = ev(event_id="p", ts=M1_1155 * 1000 + 5_000, user_id="a", product_id="p",
              order_id="o1", amount=990)
    refund = ev(event_id="r", ts="2024-11-05T12:10:00Z", user_id="a", product_id="p",
                order_id="o1", amount=990, status="refunded")
    refund2 = ev(event_id="r2", ts="2024-11-05T12:11:00Z", user_id="a", product_id="p",
                 order_id="o1", amount=990, status="refunded")
    r = run(tmp_path, {"t.payment": ("payment", [[paid, refund, refund2]])}, now=now)
    cs = r["counters"]
    assert cs[c("all", "m1", M1_1155)] == {"payments": 1, "revenue": 990}
    assert cs[c("all", "m1", H1_12 + 600)] == {"refunds": 1, "revenue": -990}
    assert c("all", "m1", H1_12 + 660) not in cs  # second refund is a repeat
    assert cs[c("all", "h1", H1_11)] == {"payments": 1, "revenue": 990}
    assert cs[c("all", "h1", H1_12)] == {"refunds": 1, "revenue": -990}
    # Touched and net zero: present with 0 (absent would mean the same).
    assert cs[c("all", "d1", "20241105")] == {"payments": 1, "refunds": 1, "revenue": 0}
    assert u("all", "m1", H1_12 + 600, "paid") not in r["distinct"]
    assert r["distinct"][u("all", "d1", "20241105", "paid")] == 1


def test_percent_encoding():
    assert oracle.scope_encode("course-py") == "course-py"
    assert oracle.scope_encode("a b,c=d:e{f}g%h") == "a%20b%2Cc%3Dd%3Ae%7Bf%7Dg%25h"
    assert oracle.scope_encode("\x00\x1f\x7f~") == "%00%1F%7F~"
    assert oracle.scope_encode("数据 分析") == "数据%20分析"   # UTF-8 passes through


def test_scope_ids_in_keys(tmp_path):
    line = ev(event_id="e", type="exposure", ts=M1_1155 * 1000, user_id=1,
              product_id="vip,年卡 50%", channel="we:chat", community_id="",
              campaign_id="双11=大促")
    r = run(tmp_path, {"t.mixed": ("mixed", [[line]])})
    scopes = {k.split(":m1:")[0][len("funnel:c:"):] for k in r["counters"] if ":m1:" in k}
    assert scopes == {"all", "product=vip%2C年卡%2050%25",
                      "product=vip%2C年卡%2050%25,channel=we%3Achat",
                      "campaign=双11%3D大促"}   # community "" skips its grouping
    assert r["scopes"] == sorted(scopes)


def test_d1_at_shanghai_midnight(tmp_path):
    def e(i, ts):
        return ev(event_id="e%d" % i, ts=ts, user_id="u", product_id="p")
    lines = [e(1, 1730822399999),                      # 15:59:59.999Z = 23:59:59.999 CST
             e(2, 1730822400000),                      # 16:00:00.000Z = 00:00 CST next day
             e(3, "2024-11-05T23:59:59.999999+08:00"),
             e(4, "2024-11-06T00:00:00+08:00")]
    now = 1730822400000 + 60_000
    r = run(tmp_path, {"t.exposure": ("exposure", [lines])}, now=now)
    assert r["counters"][c("all", "d1", "20241105")] == {"exposures": 2}
    assert r["counters"][c("all", "d1", "20241106")] == {"exposures": 2}
    assert r["counters"][c("all", "h1", 1730818800)] == {"exposures": 2}
    r = run(tmp_path / "utc", {"t.exposure": ("exposure", [lines])}, now=now, tz="UTC")
    assert r["counters"][c("all", "d1", "20241105")] == {"exposures": 4}


def test_cardinality_cap_is_not_modelled(tmp_path):
    lines = [ev(event_id="e%d" % i, ts=NOW - 1000, user_id=1, product_id="p%d" % i)
             for i in range(3)]
    with pytest.raises(SystemExit, match="more than 2 scope ids"):
        run(tmp_path, {"t.exposure": ("exposure", [lines])}, cardinality_cap=2)


def test_action_cap_per_hash(tmp_path):
    """Cap 2: per hash, the first two distinct actions keep their field;
    later ones, and an action named __other__, go to interactions.__other__.
    The cap is per bucket: a new minute has room again."""
    m2 = M1_1155 + 60

    def it(i, ts_s, action):
        return ev(event_id="i%d" % i, type="interaction", ts=ts_s * 1000, user_id=1,
                  product_id="p", action=action)
    lines = [it(1, M1_1155, "click"), it(2, M1_1155, "like"), it(3, M1_1155, "share"),
             it(4, M1_1155, "click"), it(5, M1_1155, "__other__"), it(6, M1_1155, "trial"),
             it(7, m2, "share"), it(8, m2, "trial"), it(9, m2, "click")]
    r = run(tmp_path, {"t.interaction": ("interaction", [lines])}, action_cap=2,
            groupings=oracle.parse_groupings("all"))
    assert r["counters"][c("all", "m1", M1_1155)] == {
        "interactions": 6, "interactions.click": 2, "interactions.like": 1,
        "interactions.__other__": 3}
    assert r["counters"][c("all", "m1", m2)] == {
        "interactions": 3, "interactions.share": 1, "interactions.trial": 1,
        "interactions.__other__": 1}
    # the hour and the day hash see click, like first
    assert r["counters"][c("all", "h1", H1_11)] == {
        "interactions": 9, "interactions.click": 3, "interactions.like": 1,
        "interactions.__other__": 5}
    # the default cap (64) keeps all of them
    r = run(tmp_path / "d", {"t.interaction": ("interaction", [lines])},
            groupings=oracle.parse_groupings("all"))
    assert r["counters"][c("all", "m1", M1_1155)] == {
        "interactions": 6, "interactions.click": 2, "interactions.like": 1,
        "interactions.share": 1, "interactions.__other__": 1, "interactions.trial": 1}


def test_action_cap_overflow_across_partitions_is_refused(tmp_path):
    def it(i, action):
        return ev(event_id="i%d" % i, type="interaction", ts=M1_1155 * 1000, user_id=1,
                  product_id="p", action=action)
    # the overflowing hash is fed by one partition: fine, whatever the other holds
    one = [it(1, "a"), it(2, "b"), it(3, "c")]
    r = run(tmp_path, {"t.interaction": ("interaction", [one, [it(4, "a")]])}, action_cap=2)
    assert r["counters"][c("all", "m1", M1_1155)]["interactions.__other__"] == 1
    assert r["counters"][c("all", "m1", M1_1155)]["interactions.a"] == 2
    # two partitions and an overflow: arrival order decides, so refuse
    with pytest.raises(SystemExit, match="more than 2 actions"):
        run(tmp_path / "x", {"t.interaction": ("interaction", [one, [it(4, "d")]])},
            action_cap=2)


def test_fold_actions_for_snapshots():
    sums = {"exposures": 9, "interactions": 12, "interactions.a": 3, "interactions.b": 2,
            "interactions.c": 2, "interactions.__other__": 1, "interactions.d": 4}
    # under the cap: unchanged
    assert oracle.fold_actions(sums, 4) == sums
    # cap 2: d (4), a (3) stay; b, c (2 each) fold into __other__
    assert oracle.fold_actions(sums, 2) == {
        "exposures": 9, "interactions": 12, "interactions.d": 4, "interactions.a": 3,
        "interactions.__other__": 5}
    # cap 3: b and c tie at the edge, so neither keeps its field
    assert oracle.fold_actions(sums, 3) == oracle.fold_actions(sums, 2)
    # cap 1: only d
    assert oracle.fold_actions(sums, 1) == {
        "exposures": 9, "interactions": 12, "interactions.d": 4, "interactions.__other__": 8}


# ------------------------------------------------------------- reject reasons

OK_EXP = {"event_id": "e", "type": "exposure", "ts": NOW - 1000, "user_id": 7,
          "product_id": "p"}
OK_PAY = {"event_id": "e", "type": "payment", "ts": NOW - 1000, "user_id": 7,
          "product_id": "p", "order_id": "o", "amount": 1}
OK_INT = {"event_id": "e", "type": "interaction", "ts": NOW - 1000, "user_id": 7,
          "product_id": "p", "action": "like"}


def mod(base, **kw):
    o = dict(base)
    for k, v in kw.items():
        if v is DROP:
            o.pop(k)
        else:
            o[k] = v
    return json.dumps(o, ensure_ascii=False).encode("utf-8")


DROP = object()
BODY = mod(OK_EXP)[1:]   # '"event_id": ...}' to prefix things

REJECTS = [
    # (bytes, topic type, reason, field)
    (b'{"pad":"' + b"x" * 65530 + b'"}', None, "too_large", "-"),
    (b'{"x":' + b"[" * 70000 + b"}", None, "too_large", "-"),  # size before syntax
    (b"", None, "invalid_json", "-"),
    (b" \t", None, "invalid_json", "-"),
    (mod(OK_EXP)[:-1], None, "invalid_json", "-"),
    (mod(OK_EXP) + b"x", None, "invalid_json", "-"),
    (mod(OK_EXP) + b" {}", None, "invalid_json", "-"),
    (b"\xef\xbb\xbf" + mod(OK_EXP), None, "invalid_json", "-"),
    (b'{"n":NaN,' + BODY, None, "invalid_json", "-"),
    (b'{"n":Infinity,' + BODY, None, "invalid_json", "-"),
    (b'{"n":01,' + BODY, None, "invalid_json", "-"),
    (b'{"n":"\xff",' + BODY, None, "invalid_json", "-"),
    (b'{"n":"\xed\xa0\x80",' + BODY, None, "invalid_json", "-"),  # UTF-8-encoded surrogate
    (b'{"n":"\\udc00",' + BODY, None, "invalid_json", "-"),
    (b'{"\\ud800":1,' + BODY, None, "invalid_json", "-"),         # in a key too
    (b'{"n":"a\x01",' + BODY, None, "invalid_json", "-"),
    (b'{"n":' + b"[" * 64 + b"]" * 64 + b"," + BODY, None, "invalid_json", "-"),
    (b"[" * 2000 + b"]" * 2000, None, "invalid_json", "-"),
    (b"[" + mod(OK_EXP) + b"]", None, "not_object", "-"),
    (b'"x"', None, "not_object", "-"),
    (b"null", None, "not_object", "-"),
    (b"{}", None, "missing_field", "event_id"),
    (mod(OK_EXP, event_id=None), None, "missing_field", "event_id"),
    (mod(OK_EXP, event_id=1), None, "bad_type", "event_id"),
    (mod(OK_EXP, event_id=""), None, "bad_value", "event_id"),
    (mod(OK_EXP, event_id="é" * 129), None, "bad_value", "event_id"),
    (mod(OK_EXP, type=DROP), None, "missing_field", "type"),
    (mod(OK_EXP, type=None), None, "missing_field", "type"),
    (mod(OK_EXP, type=["exposure"]), None, "bad_type", "type"),
    (mod(OK_EXP, type="view"), None, "unknown_type", "type"),
    (mod(OK_EXP, type="view"), "exposure", "unknown_type", "type"),
    (mod(OK_EXP, type="payment"), "exposure", "type_topic_mismatch", "type"),
    (mod(OK_EXP, ts=DROP), None, "missing_field", "ts"),
    (mod(OK_EXP, ts=1.5), None, "bad_type", "ts"),
    (b'{"ts":1e12,' + mod(OK_EXP, ts=DROP)[1:], None, "bad_type", "ts"),
    (b'{"ts":1730807999000.0,' + mod(OK_EXP, ts=DROP)[1:], None, "bad_type", "ts"),
    (mod(OK_EXP, ts=False), None, "bad_type", "ts"),
    (mod(OK_EXP, ts="2024-02-30T00:00:00Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2023-02-29T00:00:00Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:60Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:00"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05 11:59:00Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-5T11:59:00Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:00.Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:00.1234567890Z"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:00+24:00"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:00+0800"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="2024-11-05T11:59:00Z\n"), None, "bad_value", "ts"),
    (mod(OK_EXP, ts="２０２４-11-05T11:59:00Z"), None, "bad_value", "ts"),  # not ASCII digits
    (mod(OK_EXP, ts=1 << 63), None, "bad_value", "ts"),
    (mod(OK_EXP, user_id=DROP), None, "missing_field", "user_id"),
    (mod(OK_EXP, user_id=None), None, "missing_field", "user_id"),
    (mod(OK_EXP, user_id=1 << 64), None, "bad_value", "user_id"),
    (mod(OK_EXP, user_id=-(1 << 63) - 1), None, "bad_value", "user_id"),
    (mod(OK_EXP, user_id=7.0), None, "bad_type", "user_id"),
    (mod(OK_EXP, user_id=True), None, "bad_type", "user_id"),
    (mod(OK_EXP, user_id=""), None, "bad_value", "user_id"),
    (mod(OK_EXP, user_id="u" * 129), None, "bad_value", "user_id"),
    (mod(OK_EXP, product_id=DROP), None, "missing_field", "product_id"),
    (mod(OK_EXP, product_id=5), None, "bad_type", "product_id"),
    (mod(OK_EXP, product_id=""), None, "bad_value", "product_id"),
    (mod(OK_EXP, community_id=5), None, "bad_type", "community_id"),
    (mod(OK_EXP, channel=["x"]), None, "bad_type", "channel"),
    (mod(OK_EXP, campaign_id="c" * 129), None, "bad_value", "campaign_id"),
    (mod(OK_EXP, content_id={}), None, "bad_type", "content_id"),
    (mod(OK_EXP, coupon_id=False), None, "bad_type", "coupon_id"),
    (mod(OK_INT, action=DROP), None, "missing_field", "action"),
    (mod(OK_INT, action=""), None, "bad_value", "action"),
    (mod(OK_INT, action="a" * 33), None, "bad_value", "action"),
    (mod(OK_INT, action=3), None, "bad_type", "action"),
    (mod(OK_PAY, order_id=DROP), None, "missing_field", "order_id"),
    (mod(OK_PAY, order_id=9), None, "bad_type", "order_id"),
    (mod(OK_PAY, amount=DROP), None, "missing_field", "amount"),
    (mod(OK_PAY, amount=-1), None, "bad_value", "amount"),
    (mod(OK_PAY, amount=1 << 63), None, "bad_value", "amount"),
    (mod(OK_PAY, amount=10 ** 12 + 1), None, "bad_value", "amount"),  # above the bound
    (mod(OK_PAY, amount=1 << 62), None, "bad_value", "amount"),
    (mod(OK_PAY, amount=9.9), None, "bad_type", "amount"),
    (mod(OK_PAY, amount="990"), None, "bad_type", "amount"),
    (mod(OK_PAY, currency="cny"), None, "bad_value", "currency"),
    (mod(OK_PAY, currency="CNYY"), None, "bad_value", "currency"),
    (mod(OK_PAY, currency=156), None, "bad_type", "currency"),
    (mod(OK_PAY, status="void"), None, "bad_value", "status"),
    (mod(OK_PAY, status=0), None, "bad_type", "status"),
    (mod(OK_EXP, ts=NOW - 172_800_001), None, "ts_too_old", "ts"),
    (mod(OK_EXP, ts=NOW + 300_001), None, "ts_in_future", "ts"),
    # order of checks: the first failing field wins
    (mod(OK_PAY, event_id="", amount=-1), None, "bad_value", "event_id"),
    (mod(OK_PAY, ts=1.5, amount=-1), None, "bad_type", "ts"),
    (mod(OK_PAY, amount=-1, status="void"), None, "bad_value", "amount"),
    (mod(OK_EXP, user_id=None, ts=NOW + 10**9), None, "missing_field", "user_id"),
]

ACCEPTS = [
    (mod(OK_EXP), None),
    (mod(OK_EXP, type=DROP), "exposure"),           # mapped topic: type optional
    (mod(OK_EXP, type=None), "exposure"),
    (mod(OK_EXP, type="exposure"), "exposure"),
    (mod(OK_EXP, ts=NOW - 172_800_000), None),        # boundaries are inclusive
    (mod(OK_EXP, ts=NOW + 300_000), None),
    (mod(OK_EXP, ts="2024-11-05T19:59:00.123456789+08:00"), None),
    (mod(OK_EXP, ts="2024-11-05t11:59:00z"), None),
    (mod(OK_EXP, user_id=(1 << 63) - 1), None),
    (mod(OK_EXP, user_id=-(1 << 63)), None),
    (mod(OK_EXP, event_id="é" * 128, user_id="用" * 128), None),  # code points
    (mod(OK_EXP, channel="", campaign_id=None, community_id="c" * 128), None),
    (b'{"n":' + b"[" * 63 + b"]" * 63 + b"," + BODY, None),       # depth 64
    (b'{"user_id":[],' + BODY, None),                             # last key wins
    (b'{"n":"\\ud83d\\ude00","big":1' + b"0" * 5000 + b',"f":1e999,' + BODY, None),
    (b" \r\n\t" + mod(OK_EXP) + b"\r", None),
    (mod(OK_EXP, amount=-5, status="void"), None),                # ignored on exposure
    (mod(OK_INT, amount="x"), None),
    (mod(OK_PAY, amount=0, currency="USD", status="refunded"), None),
    (mod(OK_PAY, amount=10 ** 12), None),                          # the bound itself
]


@pytest.mark.parametrize("raw,ttype,reason,field", REJECTS)
def test_reject(raw, ttype, reason, field):
    with pytest.raises(oracle.Reject) as ex:
        oracle.validate(raw, ttype, NOW, oracle.Limits())
    assert (ex.value.reason, ex.value.field) == (reason, field)


@pytest.mark.parametrize("raw,ttype", ACCEPTS)
def test_accept(raw, ttype):
    oracle.validate(raw, ttype, NOW, oracle.Limits())


def test_accepted_values():
    lim = oracle.Limits()
    e = oracle.validate(mod(OK_PAY, user_id=12, ts="2024-11-05T19:59:00.98765+08:00"),
                        None, NOW, lim)
    assert (e["user"], e["ts"], e["currency"], e["status"]) == \
        ("12", NOW - 60_000 + 987, "CNY", "paid")
    e = oracle.validate(b'{"user_id":-0,' + BODY[:-1].replace(b'"user_id": 7, ', b"") + b"}",
                        None, NOW, lim)
    assert e["user"] == "-0"   # kept as written
    e = oracle.validate(b'{"product_id":1,' + BODY, "exposure", NOW, lim)
    assert e["product_id"] == "p"


def test_validate_lines_mode(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_bytes(mod(OK_EXP) + b"\n" + b"[1]\n" + mod(OK_EXP, type=DROP) + b"\n" +
                  mod(OK_PAY, currency="cny") + b"\n")
    out = io.StringIO()
    with redirect_stdout(out):
        oracle.main(["--validate-lines", str(f), "--now-ms", str(NOW)])
    assert out.getvalue() == "2\tnot_object\t-\n3\tmissing_field\ttype\n4\tbad_value\tcurrency\n"


def test_rejects_and_offsets_in_stream(tmp_path):
    good = mod(OK_EXP)
    r = run(tmp_path, {"t.exposure": ("exposure", [[good, b"{", good], []])})
    assert r["rejects"] == [{"file": "t.exposure.0.jsonl", "line": 2, "topic": "t.exposure",
                             "partition": 0, "offset": 1, "reason": "invalid_json",
                             "field": "-"}]
    assert r["offsets"] == {"t.exposure:0": 3, "t.exposure:1": 0}


# ------------------------------------------------------------------ generator

T_GEN = 1730833200000   # 2024-11-05T19:00Z: the 6 h window crosses Shanghai midnight


def gen(d, seed, n):
    gen_stream.main(["--seed", str(seed), "--events", str(n), "--out", str(d),
                     "--now-ms", str(T_GEN)])
    return str(d)


def digest(d):
    h = hashlib.sha256()
    for name in sorted(os.listdir(d)):
        h.update(name.encode() + b"\0")
        with open(os.path.join(d, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def test_generator_is_deterministic(tmp_path):
    a = digest(gen(tmp_path / "a", 11, 3000))
    b = digest(gen(tmp_path / "b", 11, 3000))
    c2 = digest(gen(tmp_path / "c", 12, 3000))
    assert a == b
    assert a != c2


def test_generator_stream_matches_oracle(tmp_path):
    n = 20000
    d = gen(tmp_path / "s", 5, n)
    with open(os.path.join(d, "manifest.json")) as f:
        man = json.load(f)
    assert man["events"] == n and man["now_ms"] == T_GEN
    assert set(man["topics"]) == {"t.exposure", "t.interaction", "t.payment", "t.mixed"}
    assert man["malformed"] == n // 100
    with open(os.path.join(d, "intended_rejects.json")) as f:
        intended = json.load(f)

    r = oracle.compute(d, T_GEN)
    got = {(x["file"], x["line"]): (x["reason"], x["field"]) for x in r["rejects"]}
    want = {(x["file"], x["line"]): (x["reason"], x["field"]) for x in intended}
    assert got == want
    reasons = {x["reason"] for x in intended}
    assert reasons == {"too_large", "invalid_json", "not_object", "missing_field",
                       "bad_type", "bad_value", "unknown_type", "type_topic_mismatch",
                       "ts_too_old", "ts_in_future"}
    assert {x["topic"] for x in intended} == set(man["topics"])
    assert sum(r["offsets"].values()) == n

    s = r["summary"]
    assert 0.005 * n < s["late"] < 0.02 * n
    assert s["repeated_payments"] > 0
    days = {k.rsplit(":", 1)[1] for k in r["counters"] if k.startswith("funnel:c:all:d1:")}
    assert days == {"20241105", "20241106"}
    tot = {}
    for day in days:
        for f, v in r["counters"]["funnel:c:all:d1:" + day].items():
            tot[f] = tot.get(f, 0) + v
    assert tot["exposures"] > 3 * tot["interactions"] > 3 * 3 * tot["payments"]
    assert tot["refunds"] > 0

    # Lines are bytes without raw newlines or empty lines; too_large really is.
    for name in os.listdir(d):
        if name.endswith(".jsonl"):
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            assert data.endswith(b"\n") and b"\n\n" not in data
    big = [x for x in intended if x["reason"] == "too_large"]
    assert big
    for x in big:
        with open(os.path.join(d, x["file"]), "rb") as f:
            assert len(f.read().split(b"\n")[x["offset"]]) > 65536


# ------------------------------------------- marketing (docs/METRICS.md)

import marketing  # noqa: E402

DAY = 86_400_000
# 2024-11-01T00:00:00+08:00 (Shanghai midnight) = 2024-10-31T16:00:00Z
D0 = 1730390400000
MKT_NOW = D0 + 40 * DAY


def mkt_run(lines, **cfg):
    """One mixed partition through the oracle with the marketing view on;
    returns {key minus 'p:': {field: value}}."""
    o = oracle.Oracle(MKT_NOW, prefix="p",
                      limits=oracle.Limits(ttl_m1_s=60 * 86400))
    o.marketing = marketing.Marketing(o.cal, oracle.scope_encode,
                                      marketing.Config(**cfg))
    o.run_partition("t.mixed.0.jsonl", "t.mixed", 0, None, lines)
    assert not o.rejects, o.rejects
    return {k[2:]: v for k, v in o.marketing.result("p").items()}


def mev(i, t, ts, user="u1", product="p", **kw):
    base = dict(event_id="m%d" % i, type=t, ts=ts, user_id=user, product_id=product)
    if t == "interaction":
        base["action"] = "click"
    base.update(kw)
    return ev(**base)


def test_retention_day_n_and_unbounded():
    """u1: first event day 0, active days 1 and 7. u2: first event day 0,
    back on day 3 only. Day-N: d1 = {u1}, d7 = {u1}; unbounded: d1 = both,
    d7 = {u1}; nobody on day 30."""
    lines = [mev(1, "exposure", D0 + 5, channel="wx"),
             mev(2, "interaction", D0 + DAY + 5),
             mev(3, "exposure", D0 + 7 * DAY + 5),
             mev(4, "exposure", D0 + 9, user="u2", channel="wb"),
             mev(5, "exposure", D0 + 3 * DAY, user="u2")]
    r = mkt_run(lines)
    assert r["ret:product=p:20241101"] == {"cohort_size": 2, "retained_d1": 1,
                                            "retained_d7": 1}
    assert r["ret:product=p,channel=wx:20241101"] == {"cohort_size": 1, "retained_d1": 1,
                                                       "retained_d7": 1}
    assert r["ret:product=p,channel=wb:20241101"] == {"cohort_size": 1}
    r = mkt_run(lines, mode="unbounded")
    assert r["ret:product=p:20241101"] == {"cohort_size": 2, "retained_d1": 2,
                                            "retained_d7": 1}
    assert r["ret:product=p,channel=wb:20241101"] == {"cohort_size": 1, "retained_d1": 1}


def test_retention_cohort_at_shanghai_midnight_and_late_first_event():
    """A first event 1 ms before Shanghai midnight makes the cohort the day
    before, and the event just after midnight a day-1 return; an event that
    arrives last but is earliest moves the cohort (the order does not
    matter)."""
    a = mev(1, "exposure", D0 + 5 * DAY - 1, channel="wx")     # 23:59:59.999 on 11-05
    b = mev(2, "exposure", D0 + 5 * DAY, channel="wb")         # 00:00 on 11-06
    r = mkt_run([b, a])
    assert r["ret:product=p:20241105"] == {"cohort_size": 1, "retained_d1": 1}
    assert r["ret:product=p,channel=wx:20241105"] == {"cohort_size": 1, "retained_d1": 1}
    assert "ret:product=p:20241106" not in r
    assert r == mkt_run([a, b])


def test_attributed_funnel_first_and_last_touch():
    """Exposures on days 0 (wx), 2 (wb) and 9 (zh); interaction day 3;
    payment 990 on day 6, refunded 100. First touch wx, last touch (the last
    exposure before the payment) wb; revenue net of the refund; all counted
    on the day of the first exposure. The day-9 exposure is past the 7-day
    window and changes nothing."""
    lines = [mev(1, "exposure", D0 + 100, channel="wx", community_id="g1"),
             mev(2, "exposure", D0 + 2 * DAY, channel="wb"),
             mev(3, "interaction", D0 + 3 * DAY),
             mev(4, "payment", D0 + 6 * DAY, order_id="o1", amount=990),
             mev(5, "payment", D0 + 6 * DAY + 5, order_id="o1", amount=100, status="refunded"),
             mev(6, "exposure", D0 + 9 * DAY, channel="zh")]
    r = mkt_run(lines)
    full = {"funnel_exposed": 1, "funnel_interacted": 1, "funnel_paid": 1,
            "attributed_revenue": 890}
    assert r["attr:first:product=p:20241101"] == full
    assert r["attr:first:product=p,channel=wx:20241101"] == full
    assert r["attr:first:product=p,community=g1:20241101"] == full
    assert r["attr:last:product=p:20241101"] == full
    assert r["attr:last:product=p,channel=wb:20241101"] == full
    assert not any("channel=zh" in k for k in r)
    assert sorted(k for k in r if k.startswith("attr:")) == sorted([
        "attr:first:product=p:20241101", "attr:first:product=p,channel=wx:20241101",
        "attr:first:product=p,community=g1:20241101", "attr:last:product=p:20241101",
        "attr:last:product=p,channel=wb:20241101"])


def test_attributed_funnel_order_and_window():
    """A payment before the first interaction does not complete the funnel;
    an interaction 1 ms past the window does not count; the last touch of an
    exposed-only user is the last exposure in the window."""
    w = 7 * DAY
    lines = [mev(1, "exposure", D0, channel="wx"),
             mev(2, "payment", D0 + DAY, order_id="o1", amount=500),
             mev(3, "exposure", D0 + 2 * DAY, channel="wb"),
             mev(4, "interaction", D0 + w + 1)]
    r = mkt_run(lines)
    assert r["attr:first:product=p,channel=wx:20241101"] == {"funnel_exposed": 1}
    assert r["attr:last:product=p,channel=wb:20241101"] == {"funnel_exposed": 1}
    lines[3] = mev(4, "interaction", D0 + w)   # the window's last ms is inside
    r = mkt_run(lines)
    assert r["attr:first:product=p,channel=wx:20241101"] == {"funnel_exposed": 1,
                                                             "funnel_interacted": 1}
    assert r["attr:last:product=p,channel=wb:20241101"] == {"funnel_exposed": 1,
                                                            "funnel_interacted": 1}


def test_user_cap_keeps_the_earliest():
    """Cap 4: only the 4 earliest exposures are kept, so the last touch is
    the 4th even though 6 precede the interaction."""
    lines = [mev(i, "exposure", D0 + i * 1000, channel="c%d" % i) for i in range(6)]
    lines.append(mev(9, "interaction", D0 + 10_000))
    r = mkt_run(lines, user_cap=4)
    assert r["attr:last:product=p,channel=c3:20241101"] == {"funnel_exposed": 1,
                                                            "funnel_interacted": 1}
    r = mkt_run(lines)
    assert r["attr:last:product=p,channel=c5:20241101"] == {"funnel_exposed": 1,
                                                            "funnel_interacted": 1}


import gen_marketing  # noqa: E402


def test_gen_marketing_is_deterministic_and_valid(tmp_path):
    """Same arguments, byte-identical files; every line valid for the oracle
    (with a 40-day m1 TTL) except the intended malformed ones; event time
    spans the asked days; payments' repeats stay in one partition."""
    args = ["--seed", "3", "--events", "3000", "--now-ms", str(MKT_NOW), "--days", "36"]
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert gen_marketing.main(args + ["--out", str(out)]) == 0
        h = hashlib.sha256()
        for name in sorted(os.listdir(out)):
            h.update(name.encode() + (out / name).read_bytes())
        digests.append(h.hexdigest())
    assert digests[0] == digests[1]
    out = tmp_path / "a"
    m, parts = oracle.load_manifest(str(out))
    o = oracle.Oracle(MKT_NOW, limits=oracle.Limits(ttl_m1_s=40 * 86400))
    o.marketing = marketing.Marketing(o.cal, oracle.scope_encode)
    for topic, p, ttype in parts:
        name = "%s.%d.jsonl" % (topic, p)
        o.run_partition(name, topic, p, ttype, oracle.read_lines(str(out / name)))
    intended = json.loads((out / "intended_rejects.json").read_text())
    assert sorted((r["topic"], r["partition"], r["offset"]) for r in o.rejects) == \
        sorted((r["topic"], r["partition"], r["offset"]) for r in intended)
    assert m["events"] >= 3000
    ts = [ev_ts for recs in o.marketing.users.values() for _, ev_ts, *_ in recs]
    assert max(ts) - min(ts) > 30 * DAY
    res = o.marketing.result("p")
    assert any(k.startswith("p:ret:") for k in res) and any(k.startswith("p:attr:last:") for k in res)
