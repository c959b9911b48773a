"""
test_incentives_oracle.py — the oracle's coupons and leaderboards
(incentives.py) on hand-computed cases from docs/METRICS.md.
"""

import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import incentives  # noqa: E402
import oracle  # noqa: E402
from test_oracle import H1_11, M1_1155, c, ev, run, u  # noqa: E402


def pay(i, order, amount, coupon=None, status="paid", ts_s=M1_1155, user=None):
    kw = dict(event_id="p%d" % i, type="payment", ts=ts_s * 1000, user_id=user or "b%d" % i,
              product_id="p", order_id=order, amount=amount, status=status)
    if coupon is not None:
        kw["coupon_id"] = coupon
    return ev(**kw)


def test_coupon_counters_cap_refund_repeat(tmp_path):
    """Cap 2 per hash; __other__ never takes a slot; a refund counts on its
    own coupon_id (none: not a coupon refund); a repeat changes nothing."""
    lines = [pay(1, "o1", 100, "A"), pay(2, "o2", 200, "B"), pay(3, "o3", 300, "C"),
             pay(4, "o4", 400, "__other__"), pay(5, "o5", 500, "A"),
             pay(6, "o6", 600),                       # no coupon
             pay(7, "o1", 100, "A"),                  # repeat of o1: nothing
             pay(8, "o1", 100, "A", "refunded"),      # coupon refund
             pay(9, "o6", 600, None, "refunded"),     # plain refund
             pay(10, "o3", 300, "", "refunded")]      # "" = no coupon
    r = run(tmp_path, {"t": ("payment", [lines])}, coupon_cap=2,
            groupings=oracle.parse_groupings("all"))
    assert r["counters"][c("all", "m1", M1_1155)] == {
        "payments": 6, "revenue": 2100 - 100 - 600 - 300, "refunds": 3,
        "payments_coupon": 5, "refunds_coupon": 1, "revenue_coupon": 1500 - 100,
        "coupon.A.payments": 2, "coupon.A.revenue": 600 - 100,
        "coupon.B.payments": 1, "coupon.B.revenue": 200,
        "coupon.__other__.payments": 2, "coupon.__other__.revenue": 700}
    # touched: the five coupon payers and the coupon refund's user b8;
    # paid with a coupon: b1..b5; the repeat's b7 is not counted anywhere
    assert r["distinct"][u("all", "m1", M1_1155, "coupon_touched")] == 6
    assert r["distinct"][u("all", "m1", M1_1155, "coupon_paid")] == 5
    assert r["counters"][c("all", "h1", H1_11)]["coupon.A.payments"] == 2


def test_coupon_touched_by_exposures(tmp_path):
    lines = [ev(event_id="x1", type="exposure", ts=M1_1155 * 1000, user_id=1, product_id="p",
                coupon_id="A"),
             ev(event_id="x2", type="exposure", ts=M1_1155 * 1000, user_id=2, product_id="p")]
    r = run(tmp_path, {"t": ("exposure", [lines])}, groupings=oracle.parse_groupings("all"))
    assert r["distinct"][u("all", "m1", M1_1155, "coupon_touched")] == 1
    assert "payments_coupon" not in r["counters"][c("all", "m1", M1_1155)]


def test_coupon_cap_across_partitions_is_refused(tmp_path):
    one = [pay(1, "o1", 1, "A"), pay(2, "o2", 1, "B")]
    with pytest.raises(SystemExit, match="more than 2 coupons"):
        run(tmp_path, {"t": ("payment", [one, [pay(3, "o3", 1, "C")]])}, coupon_cap=2)


def test_fold_coupons():
    sums = {"coupon.A.payments": 5, "coupon.A.revenue": 50, "coupon.B.payments": 3,
            "coupon.B.revenue": 30, "coupon.C.payments": 3, "coupon.C.revenue": 31,
            "coupon.D.revenue": -7, "coupon.__other__.payments": 1,
            "coupon.__other__.revenue": 1, "payments": 12}
    # cap 2: the 3rd largest payments sum is 3, so B and C (tied at 3) and D
    # (0) fold; only A keeps its fields
    assert incentives.fold_coupons(sums, 2) == {
        "coupon.A.payments": 5, "coupon.A.revenue": 50, "coupon.__other__.payments": 7,
        "coupon.__other__.revenue": 55, "payments": 12}
    assert incentives.fold_coupons(sums, 4) == sums


def test_groups_and_two_prop():
    sets = {"coupon_touched": {1, 2, 3, 4}, "paid": {1, 2, 9}, "exposed": {1, 5, 6, 7, 8, 9}}
    # coupon users 4 (2 pay), others {5,6,7,8,9} (9 pays)
    assert incentives.groups(sets) == (4, 2, 5, 1)
    z, p = incentives.two_prop(2, 4, 1, 5)
    pool = 3 / 9
    assert z == pytest.approx((0.5 - 0.2) / math.sqrt(pool * (1 - pool) * (1 / 4 + 1 / 5)))
    assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert incentives.two_prop(0, 0, 1, 5) is None
    assert incentives.two_prop(0, 4, 0, 5) == (0.0, 0.5)


def test_board_order_and_rules():
    rows = {"product=p,community=big": {"revenue": 900, "uv_paid": 9, "uv_exposed": 40,
                                         "conversion_rate": 0.225},
            "product=p,community=tiny": {"revenue": 100, "uv_paid": 1, "uv_exposed": 2,
                                          "conversion_rate": 0.5},
            "product=p,community=b2": {"revenue": 900, "uv_paid": 0, "uv_exposed": 31,
                                        "conversion_rate": 0.0},
            "product=p,community=none": {"revenue": 0, "uv_paid": 0, "uv_exposed": 0,
                                          "conversion_rate": None}}
    # ties by scope id descending (ZREVRANGE)
    assert incentives.board(rows, "revenue", 10, 30) == [
        ("product=p,community=big", 900), ("product=p,community=b2", 900),
        ("product=p,community=tiny", 100)]
    assert incentives.board(rows, "revenue", 1, 30) == [("product=p,community=big", 900)]
    assert incentives.board(rows, "uv_paid", 10, 30) == [
        ("product=p,community=big", 9), ("product=p,community=tiny", 1)]
    # the 1-of-2 community is not on the conversion board; a rate of 0 with
    # enough users is
    assert incentives.board(rows, "conversion_rate", 10, 30) == [
        ("product=p,community=big", 0.225), ("product=p,community=b2", 0.0)]
    assert incentives.grouping_of("product=p,community=c%2C1") == "product,community"
