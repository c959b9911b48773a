"""
incentives.py — the oracle's coupons and leaderboards, written from
docs/METRICS.md ("Coupons", "Leaderboards") and docs/REDIS.md, not from the
C code.

Counters (exact): a first-time payment (order_id, status) that carries a
coupon_id adds, in every bucket it counts in,
  paid:     payments_coupon +1, revenue_coupon +amount,
            coupon.{id}.payments +1, coupon.{id}.revenue +amount
  refunded: refunds_coupon +1, revenue_coupon -amount,
            coupon.{id}.revenue -amount
where {id} is the payment's own coupon_id, or __other__ when the hash
already names coupons.cap other coupons (first come, per hash) or the id is
literally __other__.

Distinct users: coupon_touched = users of exposures, interactions and
first-time payments carrying a coupon_id; coupon_paid = users of first-time
paid payments carrying one.

Window figures and the test: coupon users T, the window's users
E ∪ P ∪ T; coupon payers |P ∩ T|, other payers |P \\ T|; the pooled
two-proportion z with the coupon users' rate as the alternative's larger
one, p = P(Z >= z) = erfc(z / sqrt 2) / 2.

Leaderboards: per grouping ending in channel or community and window, the
scopes of the grouping in ZREVRANGE's order (score descending, then scope
id descending bytewise), the first `size`; revenue and uv_paid list scopes with a value
> 0, conversion_rate those with uv_exposed >= min_potential_users.
"""

import math

OTHER = "__other__"


def apply_bucket(o, ev, k, h):
    """The coupon part of one counted event in counter hash k (its dict h)
    and its distinct-user sets. o is the Oracle (o.coupons, o.distinct,
    o.part)."""
    cp = ev.get("coupon_id")
    if not cp:
        return
    sid, gran, b = k
    touched = o.distinct.setdefault((sid, gran, b, "coupon_touched"), set())
    touched.add(ev["user"])
    if ev["type"] != "payment":
        return
    f = "coupon." + o.coupons.name(k, cp, o.part)
    if ev["status"] == "paid":
        delta = ev["amount"]
        inc = [("payments_coupon", 1), (f + ".payments", 1)]
        o.distinct.setdefault((sid, gran, b, "coupon_paid"), set()).add(ev["user"])
    else:
        delta = -ev["amount"]
        inc = [("refunds_coupon", 1)]
    inc += [("revenue_coupon", delta), (f + ".revenue", delta)]
    for name, n in inc:
        h[name] = h.get(name, 0) + n


def fold_coupons(sums, cap):
    """A rolling snapshot's coupon fields: past `cap` named coupons, only
    those whose payments sum is larger than the (cap + 1)-th largest keep
    their fields, the rest go to coupon.__other__.*."""
    out = dict(sums)
    ids = set()
    for f in out:
        for suf in (".payments", ".revenue"):
            if f.startswith("coupon.") and f.endswith(suf):
                ids.add(f[len("coupon."):-len(suf)])
    ids.discard(OTHER)
    if len(ids) > cap:
        pay = {i: out.get("coupon.%s.payments" % i, 0) for i in ids}
        edge = sorted(pay.values(), reverse=True)[cap]
        for i in ids:
            if pay[i] <= edge:
                for suf in (".payments", ".revenue"):
                    v = out.pop("coupon.%s%s" % (i, suf), None)
                    if v is not None:
                        key = "coupon.%s%s" % (OTHER, suf)
                        out[key] = out.get(key, 0) + v
    return out


# ------------------------------------------------------------ window figures

def window_sets(o, scope, frm, to):
    """Exact distinct-user sets of a scope over the m1 buckets in [frm, to)
    (epoch seconds): {step: set}."""
    out = {}
    for (sid, gran, b, step), users in o.distinct.items():
        if sid == scope and gran == "m1" and frm <= int(b) < to:
            out.setdefault(step, set()).update(users)
    return out


def window_sums(o, scope, frm, to):
    """Exact counter sums of a scope over [frm, to)."""
    out = {}
    for (sid, gran, b), h in o.counters.items():
        if sid == scope and gran == "m1" and frm <= int(b) < to:
            for f, v in h.items():
                out[f] = out.get(f, 0) + v
    return out


def groups(sets):
    """(coupon users, coupon payers, other users, other payers), exact."""
    t = sets.get("coupon_touched", set())
    p = sets.get("paid", set())
    e = sets.get("exposed", set())
    return len(t), len(p & t), len((e | p | t) - t), len(p - t)


def two_prop(xc, nc, xo, no):
    """(z, p): pooled two-proportion z of 'coupon rate > other rate' and its
    one-sided p-value; None when a group is empty. z is 0 when the pooled
    rate is 0 or 1 (docs/METRICS.md)."""
    if nc <= 0 or no <= 0:
        return None
    pool = (xc + xo) / (nc + no)
    if not 0 < pool < 1:
        z = 0.0
    else:
        z = (xc / nc - xo / no) / math.sqrt(pool * (1 - pool) * (1 / nc + 1 / no))
    return z, 0.5 * math.erfc(z / math.sqrt(2))


def board(rows, metric, size, min_potential):
    """rows: {scope: {"revenue": int, "uv_paid": int, "conversion_rate":
    float or None, "uv_exposed": int}} → [(scope, score)] best first."""
    picked = []
    for s, v in rows.items():
        if metric == "conversion_rate":
            if v["conversion_rate"] is None or v["uv_exposed"] < min_potential:
                continue
        elif not v[metric] > 0:
            continue
        picked.append((s, v[metric]))
    # ZREVRANGE's order: score, then scope id (bytewise), both descending
    picked.sort(key=lambda x: (x[1], x[0].encode()), reverse=True)
    return picked[:size]


def grouping_of(scope):
    """'product=p1,channel=x' -> 'product,channel' (values are
    percent-encoded, so ',' and '=' only separate)."""
    if scope == "all":
        return ""
    return ",".join(part.split("=", 1)[0] for part in scope.split(","))
