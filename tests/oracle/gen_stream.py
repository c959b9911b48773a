#!/usr/bin/env python3
"""
gen_stream.py -- a deterministic funnel event stream for funneld's tests.

Writes DIR/{topic}.{partition}.jsonl (one file per topic-partition, one Kafka
message per line, offsets = 0-based line index), DIR/manifest.json and
DIR/intended_rejects.json (the reason and field each malformed line was built
to get). The same arguments give byte-identical files: one random.Random(seed)
drives everything, no set/dict iteration order or hash() is involved, and
partitions are picked with crc32.

What the stream holds (N = --events = total lines written, malformed included):
  * event time spread over --hours (default 6) ending 10 minutes before
    --now-ms; each line's ts is its emit time minus a delay: mostly 0-3 s of
    jitter, ~3% 5-115 s back (out of order, within the 120 s lateness), ~1%
    300 s to 2 h back (late);
  * exposures >> interactions >> payments; users as integers (some also sent
    as their decimal string: the same user), strings and Chinese text;
    ~20 products whose ids carry the bytes scope ids percent-encode;
    channels, communities, campaigns (some absent, some ""), actions;
  * payments go to partition crc32(order_id) % P of one topic chosen per
    order; ~5% of paid orders get a later refund (same order_id, same
    partition); ~2% of payment lines are re-delivered: an exact byte copy
    re-emitted later in the same partition file;
  * ts as integer ms or RFC 3339 text (+08:00, Z, z, -05:30, 1-9 fraction
    digits); typed topics omit "type" ~30% of the time, the mixed topic never;
  * a few valid-but-tricky lines (duplicate keys, unknown fields, nesting of
    exactly 64, 128-code-point ids, int64 max user id, escapes, nulls);
  * ~1% malformed lines, each with exactly one defect, covering every reason
    code (a few over 65536 bytes for too_large).
No line contains a raw newline; there are no empty lines. Files are bytes.
"""

import argparse
import json
import os
import random
import sys
import zlib
from datetime import datetime, timedelta, timezone

CHANNELS = ["wechat_group", "wechat_moments", "wechat_official", "weibo",
            "zhihu", "douban", "qq_group", "live", "other"]
ACTIONS = ["click", "like", "comment", "share", "join_group", "trial"]
ACTION_W = [40, 20, 10, 10, 12, 8]
PRODUCTS = [
    "course-py", "course-go", "column:ai", "column:growth", "live class 01",
    "live class 02", "vip,annual", "vip,monthly", "50%off-bundle",
    "数据分析课", "产品经理 训练营", "k8s{x}=1", "mem:gold:2024",
    "写作课,第2期", "tab\tname", "del\x7fkey", "英语 100%", "course-rust",
    "column:历史", "trial=free",
]
PRODUCT_W = [30, 20, 18, 10, 12, 6, 8, 5, 6, 14, 7, 3, 4, 6, 1, 1, 3, 5, 4, 2]
CAMPAIGNS = ["cmp-2024-11", "双11", "618 大促", "new-user:q4", "kol,zhang",
             "retarget%", "cmp-2024-12", "红包=8.8"]
PRICES = [0, 100, 990, 1990, 4990, 9900, 19900, 29900, 99900]
PRICE_W = [2, 3, 25, 20, 15, 15, 10, 6, 4]

LATENESS_MS = 120_000
TYPE_TOPICS = [("exposure", 4), ("interaction", 4), ("payment", 2)]
MIXED_PARTITIONS = 2
MIXED_SHARE = 0.12


def crc(s):
    return zlib.crc32(s.encode("utf-8"))


def dumps(obj, ascii_=False, spaced=False):
    sep = (", ", ": ") if spaced else (",", ":")
    return json.dumps(obj, ensure_ascii=ascii_, separators=sep).encode("utf-8")


def rfc3339(rng, ts_ms):
    """RFC 3339 text for ts_ms; fewer than 3 fraction digits move the value
    the oracle reads (truncation), which is fine: the text is the truth."""
    off_min = rng.choice([480, 480, 480, 0, 0, -330, 345])
    dt = datetime.fromtimestamp(ts_ms // 1000, timezone(timedelta(minutes=off_min)))
    s = dt.strftime("%Y-%m-%d") + rng.choice("TTTt") + dt.strftime("%H:%M:%S")
    nd = rng.choice([0, 1, 3, 3, 6, 9])
    if nd:
        frac = "%03d" % (ts_ms % 1000) + "".join(rng.choice("0123456789") for _ in range(6))
        s += "." + frac[:nd]
    if off_min == 0:
        s += rng.choice("ZZZz")
    else:
        sign = "+" if off_min > 0 else "-"
        s += "%s%02d:%02d" % (sign, abs(off_min) // 60, abs(off_min) % 60)
    return s


class Users:
    """A pool of users with a skewed popularity."""

    def __init__(self, rng, n):
        self.pool = []
        for i in range(n):
            r = rng.random()
            if r < 0.45:
                self.pool.append(("int", 100000 + i * 7))
            elif r < 0.5:
                self.pool.append(("int", (1 << 62) + i))  # big but exact
            elif r < 0.85:
                self.pool.append(("str", "u_%06d" % i))
            else:
                self.pool.append(("str", "用户_%d" % i))

    def pick(self, rng):
        i = int(len(self.pool) * rng.random() ** 2)  # mild skew: few hot users
        i = (i * 2654435761) % len(self.pool)  # spread the hot ones
        return self.pool[i]

    @staticmethod
    def text(u):
        return str(u[1])

    @staticmethod
    def json_value(rng, u):
        # An integer user is sometimes sent as its decimal string: same user.
        if u[0] == "int" and rng.random() < 0.1:
            return str(u[1])
        return u[1]


class Gen:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.now = a.now_ms
        self.end = a.now_ms - 10 * 60_000
        self.start = self.end - int(a.hours * 3_600_000)
        p = a.topic_prefix
        self.topics = {}
        for t, n in TYPE_TOPICS:
            self.topics["%s.%s" % (p, t)] = (t, n)
        self.mixed = "%s.mixed" % p
        self.topics[self.mixed] = ("mixed", MIXED_PARTITIONS)
        self.by_type = {t: "%s.%s" % (p, t) for t, _ in TYPE_TOPICS}
        self.users = Users(self.rng, max(50, a.events // 8))
        self.communities = ["grp-%03d" % i for i in range(24)] + \
            ["学习群%d" % i for i in range(6)] + ["grp:vip 1", "grp%2F"]
        self.seq = 0

    # ----------------------------------------------------------- valid lines

    def pick_topic(self, etype, key):
        if self.rng.random() < MIXED_SHARE:
            topic = self.mixed
        else:
            topic = self.by_type[etype]
        return topic, crc(key) % self.topics[topic][1]

    def delay(self):
        r = self.rng.random()
        if r < 0.01:
            return self.rng.randint(300_000, 7_200_000)  # late
        if r < 0.04:
            return self.rng.randint(5_000, 115_000)  # out of order, in time
        return self.rng.randint(0, 3_000)

    def common(self, etype, user, mapped):
        rng = self.rng
        self.seq += 1
        o = {}
        eid = "e-%d-%d" % (self.a.seed, self.seq)
        if rng.random() < 0.02:
            eid = "事件-" + eid
        o["event_id"] = eid
        if not mapped or rng.random() < 0.7:
            o["type"] = etype
        o["ts"] = None  # filled at render time
        o["user_id"] = Users.json_value(rng, user)
        o["product_id"] = rng.choices(PRODUCTS, PRODUCT_W)[0]
        r = rng.random()
        if r < 0.85:
            o["channel"] = rng.choice(CHANNELS)
        elif r < 0.88:
            o["channel"] = ""
        elif r < 0.90:
            o["channel"] = None
        if rng.random() < 0.7:
            o["community_id"] = rng.choice(self.communities)
        r = rng.random()
        if r < 0.55:
            o["campaign_id"] = rng.choice(CAMPAIGNS)
        elif r < 0.60:
            o["campaign_id"] = ""
        elif r < 0.62:
            o["campaign_id"] = None
        if rng.random() < 0.4:
            o["content_id"] = "c-%d" % rng.randint(1, 500)
        if rng.random() < 0.03:
            o["sdk"] = {"v": "2.3.1", "os": rng.choice(["ios", "android"])}
        return o

    def render(self, o, ts, tricky=False):
        """Serialises a valid event object; ts goes in as int or text."""
        rng = self.rng
        o = dict(o)
        o["ts"] = ts if rng.random() < 0.85 else rfc3339(rng, ts)
        if tricky:
            return self.tricky(o)
        return dumps(o, ascii_=rng.random() < 0.1, spaced=rng.random() < 0.05)

    def tricky(self, o):
        """Valid lines that exercise the decisions of docs/EVENTS.md."""
        rng = self.rng
        k = rng.randrange(9)
        if k == 0:  # duplicate key: the last occurrence wins
            body = dumps(o)
            return b'{"product_id":12,"user_id":null,' + body[1:]
        if k == 1:  # unknown field nested to exactly depth 64
            body = dumps(o)
            return b'{"deep":' + b"[" * 63 + b"]" * 63 + b"," + body[1:]
        if k == 2:  # unknown fields of every JSON type
            o["x_num"] = 1.5e300
            o["x_neg"] = -0.0
            o["x_big"] = 10 ** 30
            o["x_list"] = [None, True, False, {"a": []}]
            return dumps(o)
        if k == 3:  # every string \u-escaped, with a valid surrogate pair
            o["note"] = "emoji \U0001F600 / 中"
            return dumps(o, ascii_=True).replace(b"/", b"\\/")
        if k == 4:  # 128 code points of 3-byte UTF-8 in event_id
            o["event_id"] = ("事" * 120 + "%08d" % self.seq)[:128]
            return dumps(o)
        if k == 5:  # optional fields null = absent; whitespace around
            for f in ("community_id", "campaign_id", "content_id", "coupon_id"):
                o[f] = None
            return b" \t" + dumps(o, spaced=True) + b" \r"
        if k == 6:  # type-specific fields on another type are ignored
            if o.get("type") != "payment" and "order_id" not in o:
                o["amount"] = "lots"
                o["status"] = "void"
            else:
                o["action"] = 7
            return dumps(o)
        if k == 7:  # int64 max user id
            o["user_id"] = (1 << 63) - 1
            return dumps(o)
        o["coupon_id"] = "c" * 128  # maximum length
        return dumps(o)

    # --------------------------------------------------------------- defects

    def defects(self):
        """(name, types allowed or None for any, topic kinds or None,
        function(obj, line) -> bytes, reason, field)."""
        now = self.now
        big = 1 << 63

        def setf(f, v):
            def fn(o, line):
                o = dict(o)
                o[f] = v
                return dumps(o)
            return fn

        def drop(f):
            def fn(o, line):
                o = dict(o)
                o.pop(f, None)
                return dumps(o)
            return fn

        def pre(b):
            return lambda o, line: b"{" + b + b"," + line[1:]

        rng = self.rng
        any_ = None
        d = [
            ("truncated", any_, any_,
             lambda o, line: line[:rng.randint(1, len(line) - 2)], "invalid_json", "-"),
            ("trailing_garbage", any_, any_,
             lambda o, line: line + rng.choice([b" x", b"}", b"{}", b",", b" 1"]),
             "invalid_json", "-"),
            ("two_values", any_, any_, lambda o, line: line + b" " + line,
             "invalid_json", "-"),
            ("nan", any_, any_, pre(b'"score":NaN'), "invalid_json", "-"),
            ("infinity", any_, any_, pre(b'"score":-Infinity'), "invalid_json", "-"),
            ("leading_zero", any_, any_, pre(b'"n":0123'), "invalid_json", "-"),
            ("lone_surrogate", any_, any_, pre(b'"note":"a\\ud800b"'), "invalid_json", "-"),
            ("depth_65", any_, any_, pre(b'"deep":' + b"[" * 64 + b"]" * 64),
             "invalid_json", "-"),
            ("raw_control", any_, any_, pre(b'"note":"a\x01b"'), "invalid_json", "-"),
            ("invalid_utf8", any_, any_,
             pre(b'"note":"' + rng.choice([b"\xff", b"\xc3\x28", b"\xe4\xb8", b"\xed\xa0\x80",
                                           b"\xc0\xaf"]) + b'"'),
             "invalid_json", "-"),
            ("bom", any_, any_, lambda o, line: b"\xef\xbb\xbf" + line, "invalid_json", "-"),
            ("blank", any_, any_, lambda o, line: b"  \t ", "invalid_json", "-"),
            ("single_quotes", any_, any_, lambda o, line: b"{'event_id':'x'}",
             "invalid_json", "-"),
            ("array_top", any_, any_, lambda o, line: b"[" + line + b"]", "not_object", "-"),
            ("scalar_top", any_, any_,
             lambda o, line: rng.choice([b'"hello"', b"42", b"null", b"true", b"[]"]),
             "not_object", "-"),
            ("empty_object", any_, any_, lambda o, line: b"{}", "missing_field", "event_id"),
            ("no_event_id", any_, any_, drop("event_id"), "missing_field", "event_id"),
            ("null_event_id", any_, any_, setf("event_id", None), "missing_field", "event_id"),
            ("empty_event_id", any_, any_, setf("event_id", ""), "bad_value", "event_id"),
            ("int_event_id", any_, any_, setf("event_id", 17), "bad_type", "event_id"),
            ("long_event_id", any_, any_, setf("event_id", "中" * 129), "bad_value", "event_id"),
            ("no_type_mixed", any_, "mixed", drop("type"), "missing_field", "type"),
            ("int_type", any_, any_, setf("type", 1), "bad_type", "type"),
            ("unknown_type_view", any_, any_, setf("type", "view"), "unknown_type", "type"),
            ("unknown_type_case", any_, any_, setf("type", "Exposure"), "unknown_type", "type"),
            ("type_mismatch", any_, "typed", None, "type_topic_mismatch", "type"),
            ("no_ts", any_, any_, drop("ts"), "missing_field", "ts"),
            ("float_ts", any_, any_, setf("ts", 1.5), "bad_type", "ts"),
            ("exp_ts", any_, any_, lambda o, line: pre(b'"ts":1.7e12')(o, dumps(
                {k: v for k, v in o.items() if k != "ts"})), "bad_type", "ts"),
            ("bool_ts", any_, any_, setf("ts", True), "bad_type", "ts"),
            ("feb30_ts", any_, any_, setf("ts", "2024-02-30T00:00:00Z"), "bad_value", "ts"),
            ("no_offset_ts", any_, any_, setf("ts", "2024-11-05T12:00:00"), "bad_value", "ts"),
            ("space_ts", any_, any_, setf("ts", "2024-11-05 12:00:00+08:00"), "bad_value", "ts"),
            ("leap_second_ts", any_, any_, setf("ts", "2016-12-31T23:59:60Z"), "bad_value", "ts"),
            ("digits_ts", any_, any_, setf("ts", str(now)), "bad_value", "ts"),
            ("huge_ts", any_, any_, setf("ts", big), "bad_value", "ts"),
            ("no_user", any_, any_, drop("user_id"), "missing_field", "user_id"),
            ("null_user", any_, any_, setf("user_id", None), "missing_field", "user_id"),
            ("user_2p64", any_, any_, setf("user_id", 1 << 64), "bad_value", "user_id"),
            ("user_2p63", any_, any_, setf("user_id", big), "bad_value", "user_id"),
            ("float_user", any_, any_,
             lambda o, line: pre(b'"user_id":1.0')(o, dumps(
                 {k: v for k, v in o.items() if k != "user_id"})), "bad_type", "user_id"),
            ("empty_user", any_, any_, setf("user_id", ""), "bad_value", "user_id"),
            ("bool_user", any_, any_, setf("user_id", True), "bad_type", "user_id"),
            ("no_product", any_, any_, drop("product_id"), "missing_field", "product_id"),
            ("int_product", any_, any_, setf("product_id", 3), "bad_type", "product_id"),
            ("empty_product", any_, any_, setf("product_id", ""), "bad_value", "product_id"),
            ("int_channel", any_, any_, setf("channel", 5), "bad_type", "channel"),
            ("long_community", any_, any_, setf("community_id", "g" * 129),
             "bad_value", "community_id"),
            ("list_campaign", any_, any_, setf("campaign_id", []), "bad_type", "campaign_id"),
            ("obj_content", any_, any_, setf("content_id", {}), "bad_type", "content_id"),
            ("long_coupon", any_, any_, setf("coupon_id", "券" * 129), "bad_value", "coupon_id"),
            ("no_action", ("interaction",), any_, drop("action"), "missing_field", "action"),
            ("empty_action", ("interaction",), any_, setf("action", ""), "bad_value", "action"),
            ("long_action", ("interaction",), any_, setf("action", "a" * 33), "bad_value", "action"),
            ("int_action", ("interaction",), any_, setf("action", 2), "bad_type", "action"),
            ("no_order", ("payment",), any_, drop("order_id"), "missing_field", "order_id"),
            ("empty_order", ("payment",), any_, setf("order_id", ""), "bad_value", "order_id"),
            ("int_order", ("payment",), any_, setf("order_id", 99), "bad_type", "order_id"),
            ("no_amount", ("payment",), any_, drop("amount"), "missing_field", "amount"),
            ("negative_amount", ("payment",), any_, setf("amount", -1), "bad_value", "amount"),
            ("float_amount", ("payment",), any_, setf("amount", 9.9), "bad_type", "amount"),
            ("text_amount", ("payment",), any_, setf("amount", "990"), "bad_type", "amount"),
            ("huge_amount", ("payment",), any_, setf("amount", big), "bad_value", "amount"),
            ("lower_currency", ("payment",), any_, setf("currency", "cny"), "bad_value", "currency"),
            ("short_currency", ("payment",), any_, setf("currency", "CN"), "bad_value", "currency"),
            ("int_currency", ("payment",), any_, setf("currency", 156), "bad_type", "currency"),
            ("void_status", ("payment",), any_, setf("status", "void"), "bad_value", "status"),
            ("upper_status", ("payment",), any_, setf("status", "PAID"), "bad_value", "status"),
            ("int_status", ("payment",), any_, setf("status", 1), "bad_type", "status"),
            ("too_old", any_, any_, setf("ts", now - 3 * 86_400_000), "ts_too_old", "ts"),
            ("too_old_text", any_, any_,
             lambda o, line: setf("ts", rfc3339(rng, now - 3 * 86_400_000))(o, line),
             "ts_too_old", "ts"),
            ("in_future", any_, any_, setf("ts", now + 86_400_000), "ts_in_future", "ts"),
        ]
        return d

    def malformed(self, defect, base):
        """One malformed line built from a valid template plus one defect.
        Returns (topic, partition, bytes, reason, field, name)."""
        rng = self.rng
        name, types, kinds, fn, reason, field = defect
        if kinds == "mixed":
            topic = self.mixed
        elif kinds == "typed":
            topic = self.by_type[rng.choice([t for t, _ in TYPE_TOPICS])]
        else:
            choices = list(self.topics)
            if types is not None:
                choices = [t for t in choices
                           if self.topics[t][0] in ("mixed",) + types]
            topic = rng.choice(choices)
        ttype = self.topics[topic][0]
        if ttype == "mixed":
            etype = rng.choice(types or ("exposure", "interaction", "payment"))
        else:
            etype = ttype
        user = self.users.pick(rng)
        o = self.common(etype, user, ttype != "mixed")
        if etype == "interaction":
            o["action"] = rng.choice(ACTIONS)
        elif etype == "payment":
            o["order_id"] = "bad-o-%d-%d" % (self.a.seed, self.seq)
            o["amount"] = rng.choice(PRICES[1:])
            o["currency"] = "CNY"
            o["status"] = "paid"
        o["ts"] = base
        if name == "type_mismatch":
            o["type"] = rng.choice([t for t in ("exposure", "interaction", "payment")
                                    if t != ttype])
            line = dumps(o)
        elif name == "too_large":
            o["pad"] = "x" * rng.randint(65_600, 70_000)
            line = dumps(o)
        else:
            line = fn(o, dumps(o))
        part = rng.randrange(self.topics[topic][1])
        return topic, part, line, reason, field, name

    # ------------------------------------------------------------------ plan

    def run(self):
        a, rng = self.a, self.rng
        n_total = a.events
        n_mal = round(n_total * 0.01)
        n_large = min(4, max(1, n_mal // 40)) if n_mal >= 2 else 0
        target = n_total - n_mal

        # Phase 1: skeletons in emit order; payments schedule refund/repeat
        # extras that count against the target.
        sk = []  # [kind, payload]
        count = 0
        order_n = 0
        while count < target:
            r = rng.random()
            if r < 0.80:
                sk.append(["exposure"])
                count += 1
            elif r < 0.955:
                sk.append(["interaction"])
                count += 1
            else:
                order_n += 1
                refund = rng.random() < 0.05 and count + 2 <= target
                extra = 1 if refund else 0
                repeat = rng.random() < 0.02 and count + 2 + extra <= target
                sk.append(["payment", order_n, refund, repeat])
                count += 1 + extra + (1 if repeat else 0)

        # Phase 2: emit times, uniform over the window, in skeleton order.
        span = self.end - self.start
        bases = sorted(self.start + rng.randrange(span) for _ in sk)

        items = []  # (base, seq, topic, partition, line, meta)
        repeats = []  # (topic, partition, index in that partition's list)
        seq = 0
        for s, base in zip(sk, bases):
            kind = s[0]
            seq += 1
            user = self.users.pick(rng)
            tricky = rng.random() < 0.003
            if kind in ("exposure", "interaction"):
                topic, part = self.pick_topic(kind, Users.text(user))
                o = self.common(kind, user, topic != self.mixed)
                if kind == "interaction":
                    o["action"] = rng.choices(ACTIONS, ACTION_W)[0]
                line = self.render(o, base - self.delay(), tricky)
                items.append((base, seq, topic, part, line, None))
                continue
            _, n, refund, repeat = s
            oid = rng.choice(["o-%d-%07d" % (a.seed, n), "订单-%d-%d" % (a.seed, n),
                              "ord:%d/%d" % (a.seed, n)])
            topic, part = self.pick_topic("payment", oid)
            o = self.common("payment", user, topic != self.mixed)
            o["order_id"] = oid
            o["amount"] = rng.choices(PRICES, PRICE_W)[0]
            if rng.random() < 0.3:
                o["currency"] = "CNY"
            if rng.random() < 0.5:
                o["status"] = "paid"
            if rng.random() < 0.3:
                o["coupon_id"] = "cp-%d" % rng.randint(1, 40)
            line = self.render(o, base - self.delay(), tricky)
            items.append((base, seq, topic, part, line, "pay"))
            if refund:
                rb = base + rng.randint(60_000, 3_600_000)
                seq += 1
                ro = dict(o)
                ro["status"] = "refunded"
                ro["event_id"] = o["event_id"] + "-r"
                ro.pop("coupon_id", None)
                if rb > self.end:  # keep it in the window, still after the pay
                    rb = base + (self.end - base) // 2 + 1
                items.append((rb, seq, topic, part, self.render(ro, rb - self.delay()),
                              "pay"))
            if repeat:
                repeats.append((topic, part, line))

        # Malformed lines at random emit times; every defect kind in turn.
        defects = self.defects()
        rng.shuffle(defects)
        mal = []
        large = ("too_large", None, None, None, "too_large", "-")
        for i in range(n_mal):
            d = large if i < n_large else defects[(i - n_large) % len(defects)]
            base = self.start + rng.randrange(span)
            topic, part, line, reason, field, name = self.malformed(d, base)
            seq += 1
            items.append((base, seq, topic, part, line, (reason, field, name)))
            mal.append(seq)

        # Phase 3: per partition, in emit order; then the re-deliveries.
        parts = {(t, p): [] for t, (_, n) in self.topics.items() for p in range(n)}
        items.sort(key=lambda x: (x[0], x[1]))
        for base, sq, topic, part, line, meta in items:
            parts[(topic, part)].append((line, meta))
        for topic, part, line in repeats:
            lst = parts[(topic, part)]
            i = next(k for k, (ln, _) in enumerate(lst) if ln == line)
            j = min(len(lst), i + 1 + rng.randint(1, 300))
            lst.insert(j, (line, "repeat"))
        return parts, n_mal

    def write(self):
        parts, n_mal = self.run()
        out = self.a.out
        os.makedirs(out, exist_ok=True)
        intended = []
        total = 0
        for (topic, part), lst in parts.items():
            name = "%s.%d.jsonl" % (topic, part)
            with open(os.path.join(out, name), "wb") as f:
                for i, (line, meta) in enumerate(lst):
                    assert b"\n" not in line and line != b"", (name, i)
                    f.write(line)
                    f.write(b"\n")
                    if isinstance(meta, tuple):
                        intended.append({"file": name, "line": i + 1, "offset": i,
                                         "topic": topic, "partition": part,
                                         "reason": meta[0], "field": meta[1],
                                         "defect": meta[2]})
            total += len(lst)
        assert total == self.a.events, (total, self.a.events)
        assert len(intended) == n_mal
        manifest = {"topics": {t: {"type": ty, "partitions": n}
                               for t, (ty, n) in self.topics.items()},
                    "now_ms": self.now, "events": self.a.events, "malformed": n_mal}
        with open(os.path.join(out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        with open(os.path.join(out, "intended_rejects.json"), "w") as f:
            json.dump(intended, f, indent=0, ensure_ascii=False)
            f.write("\n")
        return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--events", type=int, required=True,
                    help="total lines to write, malformed included")
    ap.add_argument("--out", required=True)
    ap.add_argument("--now-ms", type=int, required=True)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--topic-prefix", default="t")
    a = ap.parse_args(argv)
    if a.events < 1 or not 0 < a.hours <= 45:
        # Late lines reach 2 h 10 min before the window; past 48 h they would
        # be ts_too_old without being planned as malformed.
        ap.error("--events must be >= 1 and 0 < --hours <= 45")
    m = Gen(a).write()
    sys.stderr.write("gen_stream: %d lines (%d malformed) in %s\n" %
                     (m["events"], m["malformed"], a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
