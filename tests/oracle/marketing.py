"""
marketing.py -- the oracle's retention cohorts and attributed funnel.

Written from docs/METRICS.md and docs/REDIS.md ("Marketing keys"), never
from funneld's C or Lua code. Unlike funneld, which merges each user's
events into a state in Redis batch by batch and applies differences, this
computes every counter directly from the whole set of valid events, per
(product, user), once at the end: the two agree only if funneld's result
really is a function of the set of events, whatever their arrival order.

Inputs: every accepted event (repeated payment lines included: METRICS.md
keeps one record per order and status, the smallest (ts, amount)).
Output: {full Redis key: {field: int}} for `{prefix}:ret:...` and
`{prefix}:attr:...`, fields whose value is 0 left out (absent = 0).
"""

from datetime import date

EPOCH = date(1970, 1, 1).toordinal()
DIMS = ("channel", "community", "campaign")
DIM_FIELD = {"channel": "channel", "community": "community_id",
             "campaign": "campaign_id"}
ACTIVE_DAYS_CAP = 512   # METRICS.md, "Bounds"


def daynum(label):
    """YYYYMMDD (text) -> days since 1970-01-01 of that calendar date."""
    return date(int(label[:4]), int(label[4:6]), int(label[6:8])).toordinal() - EPOCH


def day_label(n):
    return date.fromordinal(n + EPOCH).strftime("%Y%m%d")


class Config:
    def __init__(self, days=(1, 7, 30), mode="day_n",
                 start_types=("exposure", "interaction", "payment"),
                 active_types=("exposure", "interaction", "payment"),
                 groupings=("channel",), window_s=7 * 86400, user_cap=32):
        self.days = sorted(set(days))
        self.mode = mode
        self.start_types = set(start_types)
        self.active_types = set(active_types)
        self.groupings = list(groupings)
        self.window_ms = window_s * 1000
        self.user_cap = user_cap


def _kind(ev):
    t = ev["type"]
    if t == "payment":
        return "payment" if ev["status"] == "paid" else "refund"
    return t


class Marketing:
    def __init__(self, cal, scope_encode, cfg=None):
        """cal: a DayCal (label(ts_ms) -> YYYYMMDD in the configured zone);
        scope_encode: the scope-id value encoding (SPEC §3)."""
        self.cal = cal
        self.enc = scope_encode
        self.cfg = cfg or Config()
        self.users = {}   # (encoded product, user) -> [event tuples]

    def add(self, ev):
        k = (self.enc(ev["product_id"]), ev["user"])
        dims = tuple(self.enc(ev.get(DIM_FIELD[d]) or "") for d in DIMS)
        rec = (_kind(ev), ev["ts"], daynum(self.cal.label(ev["ts"])), dims,
               self.enc(ev.get("order_id") or ""), ev.get("amount") or 0)
        self.users.setdefault(k, []).append(rec)

    # ---------------------------------------------------------- per user

    def user_state(self, recs):
        """The documented bounded view of one user's events."""
        cap = self.cfg.user_cap
        touches = sorted({(ts, day) + dims for kind, ts, day, dims, _, _ in recs
                          if kind == "exposure"})[:cap]
        inter = sorted({ts for kind, ts, _, _, _, _ in recs
                        if kind == "interaction"})[:cap]

        def orders(kind_):
            best = {}
            for kind, ts, _, _, order, amount in recs:
                if kind == kind_ and (order not in best or (ts, amount) < best[order]):
                    best[order] = (ts, amount)
            return sorted((ts, order, amount) for order, (ts, amount) in best.items())[:cap]

        starts = [(ts, day) + dims for kind, ts, day, dims, _, _ in recs
                  if kind in self.cfg.start_types]
        active = sorted({day for kind, _, day, _, _, _ in recs
                         if kind in self.cfg.active_types})[:ACTIVE_DAYS_CAP]
        return {"first": min(starts) if starts else None, "active": active,
                "touches": touches, "inter": inter, "paid": orders("payment"),
                "refunds": orders("refund")}

    def result(self, prefix):
        out = {}

        def bump(key, field, v):
            if v:
                h = out.setdefault(key, {})
                h[field] = h.get(field, 0) + v

        cfg = self.cfg
        for (product, _user), recs in self.users.items():
            st = self.user_state(recs)
            base = "product=" + product
            f = st["first"]
            if f is not None:
                cohort = f[1]
                scopes = [base] + [base + ",%s=%s" % (d, f[2 + DIMS.index(d)])
                                   for d in cfg.groupings if f[2 + DIMS.index(d)]]
                for sc in scopes:
                    key = "%s:ret:%s:%s" % (prefix, sc, day_label(cohort))
                    bump(key, "cohort_size", 1)
                    for k in cfg.days:
                        if cfg.mode == "day_n":
                            hit = cohort + k in st["active"]
                        else:
                            hit = any(a >= cohort + k for a in st["active"])
                        bump(key, "retained_d%d" % k, int(hit))
            fn = funnel(st, cfg.window_ms)
            if fn is None:
                continue
            for touch in ("first", "last"):
                t = fn[touch]
                scopes = [base] + [base + ",%s=%s" % (d, t[2 + i])
                                   for i, d in enumerate(DIMS) if t[2 + i]]
                for sc in scopes:
                    key = "%s:attr:%s:%s:%s" % (prefix, touch, sc, day_label(fn["e0"][1]))
                    bump(key, "funnel_exposed", 1)
                    bump(key, "funnel_interacted", int(fn["reached"] >= 2))
                    bump(key, "funnel_paid", int(fn["reached"] >= 3))
                    bump(key, "attributed_revenue", fn["revenue"])
        return out


def funnel(st, window_ms):
    """METRICS.md "Ordered funnel": None for a user without exposures."""
    x = st["touches"]
    if not x:
        return None
    e0 = x[0]
    end = e0[0] + window_ms
    t1 = next((t for t in st["inter"] if e0[0] <= t <= end), None)
    reached, upto, t2, revenue = 1, end, None, 0
    if t1 is not None:
        reached, upto = 2, t1
        refunded = {order: amount for _, order, amount in st["refunds"]}
        for ts, order, amount in st["paid"]:
            if t1 <= ts <= end:
                revenue += amount - refunded.get(order, 0)
                if t2 is None:
                    t2 = ts
        if t2 is not None:
            reached, upto = 3, t2
    last = max(t for t in x if t[0] <= upto)
    return {"e0": e0, "first": e0, "last": last, "reached": reached, "revenue": revenue}
