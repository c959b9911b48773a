#!/usr/bin/env python3
"""
gen_marketing.py -- a deterministic multi-week stream for the marketing
metrics (retention cohorts, attributed funnel: docs/METRICS.md), in the same
layout as gen_stream.py: DIR/{topic}.{partition}.jsonl (offset = 0-based
line), DIR/manifest.json, DIR/intended_rejects.json (a few malformed lines).

Users follow journeys over --days (default 36) of event time ending 10 min
before --now-ms: a user arrives on some day, sees exposures on a few days
(returning on day 1, a week later, a month later...), interacts, pays days
after the exposure (sometimes past the 7-day window), sometimes with a
coupon; ~6% of paid orders are refunded later (a coupon order's refund
carries its coupon_id on even order numbers); ~1% of payment lines are
re-delivered (byte copies, same partition). Each line's position in its
partition follows its arrival time = ts + delay: mostly seconds, ~3% hours
late and ~1% one to three days late, so a user's earliest event often
arrives after later ones (cohort day and first touch move). Payments go to
partition crc32(order_id) % 2, exposures and interactions to crc32(user) % 4.
The same arguments give byte-identical files (one random.Random(seed)).
Coupon ids, products with bytes scope ids encode, Chinese text and integer
user ids are included for the other marketing metrics and for encoding.
"""

import argparse
import json
import os
import random
import sys
import zlib

DAY = 86_400_000
PRODUCTS = ["course-py", "column:ai", "vip,annual", "数据分析课", "live class 01"]
PRODUCT_W = [35, 20, 15, 20, 10]
CHANNELS = ["wechat_group", "wechat_moments", "weibo", "zhihu", "douban", "qq_group", "live"]
COMMUNITIES = ["grp-%02d" % i for i in range(12)] + ["学习群1", "grp:vip 1"]
CAMPAIGNS = ["cmp-2024-11", "双11", "new-user:q4", "kol,zhang"]
PRICES = [990, 1990, 4990, 9900, 19900]
ACTIONS = ["click", "like", "comment", "share", "trial"]
TOPICS = {"exposure": 4, "interaction": 4, "payment": 2}


def crc(s):
    return zlib.crc32(s.encode("utf-8"))


class Gen:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.end = a.now_ms - 10 * 60_000
        self.start = self.end - a.days * DAY
        self.seq = 0
        self.orders = 0
        self.out = {("%s.%s" % (a.topic_prefix, t), p): [] for t, n in TOPICS.items()
                    for p in range(n)}

    def emit(self, t, user, ts, extra, key):
        rng = self.rng
        self.seq += 1
        o = {"event_id": "mk-%d-%d" % (self.a.seed, self.seq), "ts": ts,
             "user_id": user[1] if user[0] == "int" else user[1],
             "product_id": user[2]}
        if t != "payment" or rng.random() < 0.5:
            o["type"] = t
        o.update(extra)
        r = rng.random()
        delay = (rng.randint(1, 3) * DAY + rng.randint(0, DAY // 2) if r < 0.01 else
                 rng.randint(3_600_000, 6 * 3_600_000) if r < 0.04 else rng.randint(0, 5_000))
        arrive = min(ts + delay, self.end + 5 * 60_000)
        topic = "%s.%s" % (self.a.topic_prefix, t)
        part = crc(key) % TOPICS[t]
        line = json.dumps(o, ensure_ascii=rng.random() < 0.3, separators=(",", ":")).encode()
        self.out[(topic, part)].append((arrive, self.seq, line))
        return arrive, topic, part, line

    def dims(self, u):
        rng = self.rng
        d = {}
        # a user mostly comes back through their own channel and community
        d["channel"] = u[3] if rng.random() < 0.6 else rng.choice(CHANNELS)
        if rng.random() < 0.75:
            d["community_id"] = u[4] if rng.random() < 0.6 else rng.choice(COMMUNITIES)
        if rng.random() < 0.5:
            d["campaign_id"] = rng.choice(CAMPAIGNS)
        return d

    def user(self, i):
        rng = self.rng
        if rng.random() < 0.5:
            uid = ("int", 100000 + i * 7)
        else:
            uid = ("str", "u_%06d" % i if rng.random() < 0.85 else "用户_%d" % i)
        return (uid[0], uid[1], rng.choices(PRODUCTS, PRODUCT_W)[0],
                rng.choice(CHANNELS), rng.choice(COMMUNITIES))

    def journey(self, u):
        rng = self.rng
        first = self.start + int(rng.random() ** 1.3 * (self.end - self.start - DAY))
        # active days: the first, then returns on typical days
        days = [0]
        for k, p in ((1, 0.35), (2, 0.2), (3, 0.15), (7, 0.25), (14, 0.15), (30, 0.12)):
            if rng.random() < p:
                days.append(k)
        for _ in range(rng.randint(0, 3)):
            days.append(rng.randint(1, 34))
        key = str(u[1])
        for k in sorted(set(days)):
            t0 = first + k * DAY + rng.randint(0, 12 * 3_600_000) * (k > 0)
            if t0 > self.end:
                continue
            for _ in range(rng.randint(1, 3)):
                ts = min(self.end, t0 + rng.randint(0, 3_600_000))
                self.emit("exposure", u, ts, self.dims(u), key)
            if rng.random() < 0.45:
                for _ in range(rng.randint(1, 3)):
                    ts = min(self.end, t0 + rng.randint(-600_000, 2 * 3_600_000))
                    self.emit("interaction", u, ts, dict(self.dims(u), action=rng.choice(ACTIONS)), key)
                if rng.random() < 0.3:
                    # pays hours to ~10 days later (some past the 7-day window)
                    ts = t0 + rng.choice([rng.randint(600_000, 6 * 3_600_000),
                                          rng.randint(1, 10) * DAY + rng.randint(0, DAY)])
                    if ts <= self.end:
                        self.payment(u, ts)

    def payment(self, u, ts):
        rng = self.rng
        self.orders += 1
        order = "ord-%d-%d" % (self.a.seed, self.orders)
        amount = rng.choice(PRICES)
        extra = dict(self.dims(u), order_id=order, amount=amount)
        if rng.random() < 0.3:
            extra["coupon_id"] = "cp-%d" % rng.randint(1, 12)
            extra["amount"] = amount - amount // 10
        arrive, topic, part, line = self.emit("payment", u, ts, extra, order)
        if rng.random() < 0.01:   # re-delivered: an exact copy, later, same partition
            self.seq += 1
            self.out[(topic, part)].append((arrive + rng.randint(1, 600_000), self.seq, line))
        if rng.random() < 0.06:
            rts = min(self.end, ts + rng.randint(3_600_000, 5 * DAY))
            r = dict(extra, status="refunded")
            if self.orders % 2:   # half the refunds of coupon orders carry the coupon too
                r.pop("coupon_id", None)
            self.emit("payment", u, rts, r, order)

    def run(self):
        i = 0
        while sum(len(v) for v in self.out.values()) < self.a.events:
            self.journey(self.user(i))
            i += 1
        bad = []
        # a few malformed lines: they go to the dead-letter topic, nowhere else
        for j in range(20):
            topic = "%s.exposure" % self.a.topic_prefix
            part = j % 4
            self.seq += 1
            line = b'{"event_id":"bad-%d","ts":' % j
            self.out[(topic, part)].append((self.start + j * DAY, self.seq, line))
            bad.append((topic, part, line))
        return i, bad

    def write(self):
        users, bad = self.run()
        os.makedirs(self.a.out, exist_ok=True)
        total = 0
        intended = []
        for (topic, part), lst in sorted(self.out.items()):
            lst.sort(key=lambda x: (x[0], x[1]))
            with open(os.path.join(self.a.out, "%s.%d.jsonl" % (topic, part)), "wb") as f:
                for off, (_, _, line) in enumerate(lst):
                    f.write(line + b"\n")
                    if (topic, part, line) in bad:
                        intended.append({"file": "%s.%d.jsonl" % (topic, part), "line": off + 1,
                                         "offset": off, "topic": topic, "partition": part,
                                         "reason": "invalid_json", "field": "-",
                                         "defect": "cut"})
            total += len(lst)
        manifest = {"topics": {"%s.%s" % (self.a.topic_prefix, t): {"type": t, "partitions": n}
                               for t, n in TOPICS.items()},
                    "now_ms": self.a.now_ms, "events": total, "malformed": len(bad),
                    "users": users, "days": self.a.days}
        with open(os.path.join(self.a.out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        with open(os.path.join(self.a.out, "intended_rejects.json"), "w") as f:
            json.dump(intended, f, indent=0, ensure_ascii=False)
        return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--events", type=int, required=True, help="at least this many valid lines")
    ap.add_argument("--out", required=True)
    ap.add_argument("--now-ms", type=int, required=True)
    ap.add_argument("--days", type=int, default=36)
    ap.add_argument("--topic-prefix", default="mk")
    a = ap.parse_args(argv)
    m = Gen(a).write()
    sys.stderr.write("gen_marketing: %d lines, %d users over %d days in %s\n"
                     % (m["events"], m["users"], a.days, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
