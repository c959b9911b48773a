#!/usr/bin/env python3
"""
oracle.py -- the independent judge of funneld's exactness.

It reads a stream directory written by gen_stream.py (manifest.json plus one
JSON Lines file per topic-partition, `{topic}.{partition}.jsonl`), validates
every line by docs/EVENTS.md, and computes what Redis must hold after a single
pass: the counter hashes `{prefix}:c:{scope}:{gran}:{bucket}` and the exact
distinct-user counts behind the HLLs `{prefix}:u:...:{exposed|interacted|paid}`
(docs/REDIS.md, contract 2: m1 `exposed` and `interacted` HLLs only for the
groupings of `hll_m1_groupings`), every rejected line with its reason and field, and the
offset each partition must end at.

It is written from the documents only (SPEC.md, docs/EVENTS.md,
docs/REDIS.md), never from funneld's C code, with Python's own JSON parser
made strict: bytes decoded as strict UTF-8, NaN/Infinity refused, integers
and floats told apart by their text, lone surrogates and nesting deeper than
64 refused.

Semantics a reader must not break:
  * One file = one partition; its lines are the messages in offset order
    (line i, 0-based, is offset i). The final '\n' of a file ends the last
    line; any other empty line is a message (an empty message: invalid_json).
  * Lateness is per partition: max_ts is the highest ts of the accepted events
    before this one (repeated payments included); late when
    ts < max_ts - lateness.
  * Payment dedup by (order_id, status) is global. The oracle processes
    partitions one after the other, which equals funneld's concurrent order
    only if every occurrence of one (order_id, status) lies in one partition;
    this is asserted, and the oracle fails loudly otherwise.
  * A counter field is present in the expected hash iff it was incremented
    (possibly by 0 or to a net 0: revenue after a refund, a free order);
    readers (and the comparison) treat absent as 0.
  * The cardinality cap's `__other__` admission depends on arrival order
    across instances, so it is not modelled: the oracle fails loudly if a
    grouping has more distinct scope ids than the cap.
  * The action cap (docs/REDIS.md): per counter hash (one scope, one
    granularity, one bucket) the first `action_cap` distinct actions to
    reach it keep their own `interactions.{action}` field, every later one
    (and an action literally named `__other__`) is counted in
    `interactions.__other__`. "First" is arrival order at Redis, which is
    input order within one partition; across partitions it depends on how
    their flushes interleave, so the oracle fails loudly if a hash that
    overflows gets interactions from more than one partition.

Memory: one dict entry per expected Redis key plus one set of user ids per
HLL key; the input files are read one at a time.
"""

import argparse
import json
import os
import re
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import incentives  # noqa: E402  coupons and leaderboards (docs/METRICS.md)
from capped import CappedNames  # noqa: E402  the action and coupon caps

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
AMOUNT_MAX = 10 ** 12  # docs/EVENTS.md: a larger payment amount is bad_value
MAX_DEPTH = 64

TYPES = ("exposure", "interaction", "payment")
DEFAULT_GROUPINGS = [[], ["product"], ["product", "channel"],
                     ["product", "community"], ["campaign"]]
DIM_FIELD = {"product": "product_id", "channel": "channel",
             "community": "community_id", "campaign": "campaign_id",
             "content": "content_id"}
OPTIONAL_STR = ("community_id", "channel", "campaign_id", "content_id",
                "coupon_id")

# The field named for ts_too_old / ts_in_future. EVENTS.md names fields for
# the per-field checks and "-" for the three whole-message reasons; for the
# time bounds it is silent. The bound is a property of `ts`, so: "ts".
TIME_BOUND_FIELD = "ts"


class Reject(Exception):
    def __init__(self, reason, field="-"):
        super().__init__(reason, field)
        self.reason = reason
        self.field = field


# ---------------------------------------------------------------- strict JSON

class _FloatTok:
    """A JSON number with a fraction or exponent: never an integer."""
    __slots__ = ()


class _IntTok:
    """An integer whose text matters or whose value we must not build:
    "-0" (kept as written for user_id) and very long digit strings."""
    __slots__ = ("text", "value")

    def __init__(self, text, value):
        self.text = text
        self.value = value  # None: far outside int64


FLOAT = _FloatTok()


def _parse_int(s):
    if len(s) > 25:  # far outside int64; do not hit int()'s digit limit
        return _IntTok(s, None)
    if s == "-0":
        return _IntTok(s, 0)
    return int(s)


def _parse_float(s):
    return FLOAT


def _parse_constant(s):
    raise ValueError("non-standard JSON constant " + s)


_decoder = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int,
                            parse_constant=_parse_constant, strict=True)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _depth(v):
    """Nesting depth of containers (a scalar is 0, {} is 1); iterative, so a
    value as deep as the parser allowed cannot overflow the stack here."""
    best = 0
    stack = [(v, 1)]
    while stack:
        x, d = stack.pop()
        t = type(x)
        if t is dict:
            x = x.values()
        elif t is not list:
            continue
        if d > best:
            best = d
        stack.extend((y, d + 1) for y in x if type(y) is dict or type(y) is list)
    return best


def _has_surrogate(v):
    """True if any string (key or value) holds a lone surrogate: Python pairs
    valid \\uD83D\\uDE00 escapes itself and keeps lone halves as they are."""
    stack = [v]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is str:
            if _SURROGATE.search(x):
                return True
        elif t is dict:
            stack.extend(x.keys())
            stack.extend(x.values())
        elif t is list:
            stack.extend(x)
    return False


def parse_json(raw):
    """Bytes -> Python value, or Reject('invalid_json')."""
    try:
        text = raw.decode("utf-8")  # strict: any invalid UTF-8 is an error
        value = _decoder.decode(text)  # whitespace + one value + whitespace
    except (ValueError, RecursionError):
        raise Reject("invalid_json")
    # Cheap guards first: without 65 brackets there is no depth 65, and a
    # lone surrogate can only come from a \u escape.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise Reject("invalid_json")
    if b"\\u" in raw and _has_surrogate(value):
        raise Reject("invalid_json")
    return value


# --------------------------------------------------------------- field rules

def _int_value(v):
    """The value of an integer JSON value (None when far outside int64)."""
    t = type(v)
    if t is int:
        return v
    if t is _IntTok:
        return v.value
    return None


def _is_int(v):
    return type(v) is int or type(v) is _IntTok


def _in_int64(v):
    x = v if type(v) is int else v.value
    return x is not None and INT64_MIN <= x <= INT64_MAX


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))", re.ASCII)
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339(s):
    """RFC 3339 text -> epoch ms (fraction truncated), None if not valid."""
    m = _RFC3339.fullmatch(s)
    if m is None:
        return None
    y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    if not 1 <= mo <= 12:
        return None
    mdays = 29 if mo == 2 and _is_leap(y) else _MDAYS[mo - 1]
    if not 1 <= d <= mdays or hh > 23 or mi > 59 or ss > 59:
        return None
    off = 0
    if m.group(8) is None:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        off = (oh * 60 + om) * (1 if m.group(9) == "+" else -1)
    frac = m.group(7) or ""
    ms = int((frac + "000")[:3])
    secs = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off * 60
    return secs * 1000 + ms


def _req_str(obj, name, hi):
    v = obj.get(name)
    if v is None:
        raise Reject("missing_field", name)
    if type(v) is not str:
        raise Reject("bad_type", name)
    if not 1 <= len(v) <= hi:
        raise Reject("bad_value", name)
    return v


def _opt_str(obj, name, hi=128):
    v = obj.get(name)
    if v is None:
        return None
    if type(v) is not str:
        raise Reject("bad_type", name)
    if len(v) > hi:
        raise Reject("bad_value", name)
    return v


_CURRENCY = re.compile("[A-Z]{3}", re.ASCII)


class Limits:
    def __init__(self, max_message_bytes=65536, ttl_m1_s=172800,
                 max_future_s=300):
        self.max_message_bytes = max_message_bytes
        self.ttl_m1_s = ttl_m1_s
        self.max_future_s = max_future_s


def validate(raw, topic_type, now_ms, lim):
    """Validates one message (bytes). topic_type: None for a mixed topic.
    Returns an event dict, or raises Reject(reason, field)."""
    if len(raw) > lim.max_message_bytes:
        raise Reject("too_large")
    obj = parse_json(raw)
    if type(obj) is not dict:
        raise Reject("not_object")

    ev = {"event_id": _req_str(obj, "event_id", 128)}

    t = obj.get("type")
    if t is None:
        if topic_type is None:
            raise Reject("missing_field", "type")
        t = topic_type
    elif type(t) is not str:
        raise Reject("bad_type", "type")
    elif t not in TYPES:
        raise Reject("unknown_type", "type")
    elif topic_type is not None and t != topic_type:
        raise Reject("type_topic_mismatch", "type")
    ev["type"] = t

    ts = obj.get("ts")
    if ts is None:
        raise Reject("missing_field", "ts")
    if _is_int(ts):
        if not _in_int64(ts):
            raise Reject("bad_value", "ts")
        ts = _int_value(ts)
    elif type(ts) is str:
        ts = parse_rfc3339(ts)
        if ts is None:
            raise Reject("bad_value", "ts")
    else:
        raise Reject("bad_type", "ts")
    ev["ts"] = ts

    u = obj.get("user_id")
    if u is None:
        raise Reject("missing_field", "user_id")
    if type(u) is str:
        if not 1 <= len(u) <= 128:
            raise Reject("bad_value", "user_id")
    elif _is_int(u):
        if not _in_int64(u):
            raise Reject("bad_value", "user_id")
        u = str(u) if type(u) is int else u.text  # decimal text as written
    else:
        raise Reject("bad_type", "user_id")
    ev["user"] = u

    ev["product_id"] = _req_str(obj, "product_id", 128)
    for name in OPTIONAL_STR:
        ev[name] = _opt_str(obj, name)

    if t == "interaction":
        ev["action"] = _req_str(obj, "action", 32)
    elif t == "payment":
        ev["order_id"] = _req_str(obj, "order_id", 128)
        a = obj.get("amount")
        if a is None:
            raise Reject("missing_field", "amount")
        if not _is_int(a):
            raise Reject("bad_type", "amount")
        if not _in_int64(a) or not 0 <= _int_value(a) <= AMOUNT_MAX:
            raise Reject("bad_value", "amount")
        ev["amount"] = _int_value(a)
        c = obj.get("currency")
        if c is not None:
            if type(c) is not str:
                raise Reject("bad_type", "currency")
            if _CURRENCY.fullmatch(c) is None:
                raise Reject("bad_value", "currency")
        ev["currency"] = c if c is not None else "CNY"
        s = obj.get("status")
        if s is None:
            s = "paid"
        elif type(s) is not str:
            raise Reject("bad_type", "status")
        elif s not in ("paid", "refunded"):
            raise Reject("bad_value", "status")
        ev["status"] = s

    if ts < now_ms - lim.ttl_m1_s * 1000:
        raise Reject("ts_too_old", TIME_BOUND_FIELD)
    if ts > now_ms + lim.max_future_s * 1000:
        raise Reject("ts_in_future", TIME_BOUND_FIELD)
    return ev


# -------------------------------------------------------- scopes and buckets

_ENC_TABLE = {c: "%%%02X" % c for c in list(range(0x20)) + [0x7F]}
_ENC_TABLE.update({ord(ch): "%%%02X" % ord(ch) for ch in ",=:{} %"})


def scope_encode(value):
    """SPEC §3 percent-encoding of one dimension value. Only ASCII bytes are
    ever encoded, so working on code points equals working on UTF-8 bytes."""
    return value.translate(_ENC_TABLE)


def parse_groupings(spec):
    """'default' | JSON list of lists | 'all;product;product,channel'."""
    if spec == "default":
        return [list(g) for g in DEFAULT_GROUPINGS]
    if spec.lstrip().startswith("["):
        gs = json.loads(spec)
    else:
        gs = []
        for part in spec.split(";"):
            part = part.strip()
            gs.append([] if part in ("", "all") else
                      [d.strip() for d in part.split(",")])
    for g in gs:
        for d in g:
            if d not in DIM_FIELD:
                raise SystemExit("oracle: unknown dimension %r in groupings" % d)
    return gs


def scope_ids(ev, groupings):
    """The scope id per grouping, None where the event lacks a dimension
    (absent or empty string)."""
    out = []
    for g in groupings:
        if not g:
            out.append("all")
            continue
        parts = []
        for d in g:
            v = ev[DIM_FIELD[d]]
            if not v:
                parts = None
                break
            parts.append(d + "=" + scope_encode(v))
        out.append(",".join(parts) if parts is not None else None)
    return out


class DayCal:
    def __init__(self, tz):
        self.zone = ZoneInfo(tz)
        self.cache = {}

    def label(self, ts_ms):
        sec = ts_ms // 1000
        lab = self.cache.get(sec)
        if lab is None:
            lab = datetime.fromtimestamp(sec, self.zone).strftime("%Y%m%d")
            self.cache[sec] = lab
        return lab


# ------------------------------------------------------------------- driver

def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    elif data == b"":
        lines = []
    return lines


def load_manifest(d):
    with open(os.path.join(d, "manifest.json"), "rb") as f:
        m = json.load(f)
    parts = []
    for topic, info in m["topics"].items():
        ttype = info["type"]
        if ttype not in TYPES + ("mixed",):
            raise SystemExit("oracle: topic %s has unknown type %r" % (topic, ttype))
        for p in range(int(info["partitions"])):
            parts.append((topic, p, None if ttype == "mixed" else ttype))
    return m, parts


class Oracle:
    def __init__(self, now_ms, prefix="funnel", lateness_s=120,
                 tz="Asia/Shanghai", groupings=None, limits=None,
                 cardinality_cap=10000, action_cap=64, coupon_cap=64,
                 hll_m1_groupings=None):
        self.now_ms = now_ms
        self.prefix = prefix
        self.lateness_ms = lateness_s * 1000
        self.cal = DayCal(tz)
        self.groupings = groupings if groupings is not None else DEFAULT_GROUPINGS
        self.lim = limits or Limits()
        self.cap = cardinality_cap
        self.action_cap = action_cap
        self.coupons = CappedNames(coupon_cap, "coupons")  # docs/METRICS.md, "Coupons"
        self.actions = CappedNames(action_cap, "actions")  # per (scope, gran, bucket)
        self.part = None
        self.counters = {}   # (scope, gran, bucket) -> {field: int}
        self.distinct = {}   # (scope, gran, bucket, step) -> set(user)
        self.rejects = []
        self.offsets = {}
        self.scopes = [set() for _ in self.groupings]
        # docs/REDIS.md (contract 2): m1 `exposed` / `interacted` HLLs only
        # for the groupings of hll_m1_groupings; not given: `all` and
        # `product`, those of them that are groupings
        self.m1_hll = m1_hll_flags(self.groupings, hll_m1_groupings)
        self.dedup = {}      # (order_id, status) -> (topic, partition, offset)
        self.accepted = 0
        self.late = 0
        self.repeats = 0
        # docs/METRICS.md: set to a marketing.Marketing to compute the
        # retention and attributed-funnel keys too (it sees every accepted
        # event, repeated payment lines included)
        self.marketing = None

    def run_partition(self, name, topic, partition, topic_type, lines):
        max_ts = None
        lateness = self.lateness_ms
        self.part = (topic, partition)
        for off, raw in enumerate(lines):
            try:
                ev = validate(raw, topic_type, self.now_ms, self.lim)
            except Reject as r:
                self.rejects.append({"file": name, "line": off + 1,
                                     "topic": topic, "partition": partition,
                                     "offset": off, "reason": r.reason,
                                     "field": r.field})
                continue
            if self.marketing is not None:
                self.marketing.add(ev)
            ts = ev["ts"]
            late = max_ts is not None and ts < max_ts - lateness
            if max_ts is None or ts > max_ts:
                max_ts = ts
            if ev["type"] == "payment":
                key = (ev["order_id"], ev["status"])
                first = self.dedup.get(key)
                if first is not None:
                    if first[:2] != (topic, partition):
                        raise SystemExit(
                            "oracle: payment (%r, %s) occurs in %s:%d offset %d "
                            "and %s:%d offset %d; cross-partition repeats make the "
                            "result depend on arrival order" %
                            (key[0], key[1], first[0], first[1], first[2],
                             topic, partition, off))
                    self.repeats += 1
                    continue
                self.dedup[key] = (topic, partition, off)
            self.accepted += 1
            self.late += late
            self.apply(ev, late)
        self.offsets["%s:%d" % (topic, partition)] = len(lines)

    def apply(self, ev, late):
        ts = ev["ts"]
        buckets = (("m1", str(ts // 60000 * 60)),
                   ("h1", str(ts // 3600000 * 3600)),
                   ("d1", self.cal.label(ts)))
        t = ev["type"]
        if t == "exposure":
            incs = [("exposures", 1)]
            step = "exposed"
        elif t == "interaction":
            incs = [("interactions", 1)]
            step = "interacted"
        elif ev["status"] == "paid":
            incs = [("payments", 1), ("revenue", ev["amount"])]
            step = "paid"
        else:
            incs = [("refunds", 1), ("revenue", -ev["amount"])]
            step = None
        if late:
            incs.append(("late", 1))
        user = ev["user"]
        counters, distinct = self.counters, self.distinct
        for gi, sid in enumerate(scope_ids(ev, self.groupings)):
            if sid is None:
                continue
            seen = self.scopes[gi]
            if sid not in seen:
                seen.add(sid)
                if len(seen) > self.cap:
                    raise SystemExit(
                        "oracle: grouping %r has more than %d scope ids; the "
                        "__other__ admission order is not modelled" %
                        (",".join(self.groupings[gi]) or "all", self.cap))
            for gran, b in buckets:
                k = (sid, gran, b)
                h = counters.get(k)
                if h is None:
                    h = counters[k] = {}
                for f, n in incs:
                    h[f] = h.get(f, 0) + n
                if t == "interaction":
                    f = self.action_field(k, ev["action"])
                    h[f] = h.get(f, 0) + 1
                incentives.apply_bucket(self, ev, k, h)
                if step is not None and (gran != "m1" or step == "paid" or self.m1_hll[gi]):
                    dk = (sid, gran, b, step)
                    s = distinct.get(dk)
                    if s is None:
                        s = distinct[dk] = set()
                    s.add(user)

    def action_field(self, k, action):
        """The field an interaction with `action` increments in hash k."""
        return "interactions." + self.actions.name(k, action, self.part)

    def result(self):
        p = self.prefix
        counters = {"%s:c:%s:%s:%s" % (p, s, g, b): dict(sorted(h.items()))
                    for (s, g, b), h in self.counters.items()}
        distinct = {"%s:u:%s:%s:%s:%s" % (p, s, g, b, st): len(users)
                    for (s, g, b, st), users in self.distinct.items()}
        return {
            "counters": dict(sorted(counters.items())),
            "distinct": dict(sorted(distinct.items())),
            "rejects": self.rejects,
            "offsets": self.offsets,
            "scopes": sorted(set().union(*self.scopes)),
            "summary": {"accepted": self.accepted, "late": self.late,
                        "repeated_payments": self.repeats,
                        "rejected": len(self.rejects),
                        "reject_reasons": _reason_counts(self.rejects)},
        }


def m1_hll_flags(groupings, hll_m1_groupings=None):
    """Per grouping: whether its scopes get m1 exposed/interacted HLLs
    (docs/CONFIG.md `hll_m1_groupings`, compared as sets of dimensions)."""
    if hll_m1_groupings is None:
        listed = [g for g in ([], ["product"]) if set(g) in [set(x) for x in groupings]]
    else:
        listed = hll_m1_groupings
    sets = [set(g) for g in listed]
    return [set(g) in sets for g in groupings]


def uv_span(to, window_s, m1_hll):
    """docs/REDIS.md, "Distinct users per minute": the [from, to) epoch
    seconds a rolling snapshot of a window ending at `to` counts distinct
    users over; None when it has none (its uv_* fields are "")."""
    if m1_hll:
        return to - window_s, to
    if window_s < 3600:
        return None
    end = to // 3600 * 3600
    return end - -(-window_s // 3600) * 3600, end


def fold_actions(sums, action_cap):
    """A rolling snapshot's action fields (docs/REDIS.md): `sums` holds the
    window's buckets summed field by field; past action_cap named actions,
    only those whose sum is larger than the (action_cap + 1)-th largest sum
    keep their field, the rest are added to interactions.__other__.
    Returns a new dict."""
    out = dict(sums)
    acts = [f for f in out if f.startswith("interactions.") and f != "interactions.__other__"]
    if len(acts) > action_cap:
        edge = sorted((out[f] for f in acts), reverse=True)[action_cap]
        out["interactions.__other__"] = out.get("interactions.__other__", 0) + sum(
            out.pop(f) for f in acts if out[f] <= edge)
    return out


def _reason_counts(rejects):
    out = {}
    for r in rejects:
        out[r["reason"]] = out.get(r["reason"], 0) + 1
    return dict(sorted(out.items()))


def compute(stream_dir, now_ms, **kw):
    """Runs the oracle over a stream directory; returns the expected dict."""
    _, parts = load_manifest(stream_dir)
    o = Oracle(now_ms, **kw)
    for topic, p, ttype in parts:
        name = "%s.%d.jsonl" % (topic, p)
        path = os.path.join(stream_dir, name)
        lines = read_lines(path) if os.path.exists(path) else []
        o.run_partition(name, topic, p, ttype, lines)
    return o.result()


def validate_lines(path, now_ms, lim):
    """`funneld validate` equivalent: [(line_no, reason, field)], mixed topic."""
    out = []
    for i, raw in enumerate(read_lines(path)):
        try:
            validate(raw, None, now_ms, lim)
        except Reject as r:
            out.append((i + 1, r.reason, r.field))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="stream directory (manifest.json)")
    ap.add_argument("--now-ms", type=int, default=None,
                    help="wall clock for the time bounds (default: now)")
    ap.add_argument("--prefix", default="funnel")
    ap.add_argument("--lateness-s", type=int, default=120)
    ap.add_argument("--tz", default="Asia/Shanghai")
    ap.add_argument("--groupings", default="default",
                    help="'default', 'all;product;product,channel' or JSON")
    ap.add_argument("--hll-m1-groupings", default=None,
                    help="like --groupings; default: all and product")
    ap.add_argument("--cardinality-cap", type=int, default=10000)
    ap.add_argument("--action-cap", type=int, default=64)
    ap.add_argument("--coupon-cap", type=int, default=64)
    ap.add_argument("--max-message-bytes", type=int, default=65536)
    ap.add_argument("--ttl-m1-s", type=int, default=172800)
    ap.add_argument("--max-future-s", type=int, default=300)
    ap.add_argument("--out", help="expected.json (default stdout)")
    ap.add_argument("--validate-lines", metavar="FILE",
                    help="print LINE\\tREASON\\tFIELD per rejected line")
    a = ap.parse_args(argv)
    now_ms = a.now_ms if a.now_ms is not None else int(time.time() * 1000)
    lim = Limits(a.max_message_bytes, a.ttl_m1_s, a.max_future_s)

    if a.validate_lines:
        w = sys.stdout.write
        for n, reason, field in validate_lines(a.validate_lines, now_ms, lim):
            w("%d\t%s\t%s\n" % (n, reason, field))
        return 0
    if not a.dir:
        ap.error("a stream directory or --validate-lines FILE is required")

    t0 = time.monotonic()
    res = compute(a.dir, now_ms, prefix=a.prefix, lateness_s=a.lateness_s,
                  tz=a.tz, groupings=parse_groupings(a.groupings), limits=lim,
                  cardinality_cap=a.cardinality_cap, action_cap=a.action_cap,
                  coupon_cap=a.coupon_cap,
                  hll_m1_groupings=(None if a.hll_m1_groupings is None
                                    else parse_groupings(a.hll_m1_groupings)))
    text = json.dumps(res, ensure_ascii=False, separators=(",", ":"))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
    else:
        sys.stdout.write(text + "\n")
    s = res["summary"]
    sys.stderr.write(
        "oracle: %d accepted (%d late), %d repeated payments ignored, %d "
        "rejected, %d counter keys, %d hll keys, %.1f s\n" %
        (s["accepted"], s["late"], s["repeated_payments"], s["rejected"],
         len(res["counters"]), len(res["distinct"]), time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
