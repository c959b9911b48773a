"""
alert_gen.py — deterministic event streams for the alert tests.

A stream is described per product as a function of the minute index m (0 at
`start_s`): (mean exposures per minute, conversion probability). Noise is what
a real campaign shows: the per-minute volume is Gaussian around the mean with
Poisson-like spread (sd = sqrt(mean)), the conversion probability jitters by
up to ±10% minute to minute, every exposed user is new (so uv_exposed counts
exposures), and a converting user pays 1..20 s after the exposure. Lines are
sorted by event time, so the only lateness is the payment delay.

Everything comes from one seeded random.Random: the same arguments give the
same bytes, so a failing scenario can be replayed exactly.
"""

import math
import random


def minute_start(now_s, hours_back):
    """A whole-hour start `hours_back` hours before now (event times must be
    in the past, within the m1 TTL)."""
    return (int(now_s) // 3600) * 3600 - hours_back * 3600


def gen_lines(seed, start_s, minutes, profiles, amount=9900):
    """profiles: {product_id: fn(m) -> (mean exposures/min, conversion p)}.
    Returns (lines as bytes, per-product per-minute truth
    {(product, m): (exposures, payments)})."""
    rng = random.Random(seed)
    out = []
    truth = {}
    uid = 0
    order = 0
    for m in range(minutes):
        t0 = (start_s + m * 60) * 1000
        for prod in sorted(profiles):
            mean, p = profiles[prod](m)
            n = 0
            if mean > 0:
                n = max(0, int(round(rng.gauss(mean, math.sqrt(mean)))))
            pm = min(1.0, max(0.0, p * (1 + rng.uniform(-0.1, 0.1))))
            pays = 0
            for _ in range(n):
                uid += 1
                ts = t0 + rng.randrange(60000)
                out.append((ts, b'{"event_id":"e%d","type":"exposure","ts":%d,"user_id":"u%d",'
                                b'"product_id":"%s"}' % (uid, ts, uid, prod.encode())))
                if rng.random() < pm:
                    order += 1
                    pays += 1
                    pts = ts + rng.randrange(1000, 20000)
                    out.append((pts, b'{"event_id":"p%d","type":"payment","ts":%d,"user_id":"u%d",'
                                     b'"product_id":"%s","order_id":"o%d","amount":%d}'
                                % (order, pts, uid, prod.encode(), order, amount)))
            truth[(prod, m)] = (n, pays)
    out.sort(key=lambda x: x[0])
    return [line for _, line in out], truth


def write_lines(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            f.write(line)
            f.write(b"\n")
    return path


def steady(mean, p):
    return lambda m: (mean, p)


def drop_profile(mean, p, drop_p, drop_from, drop_to):
    """p, except drop_p for minutes in [drop_from, drop_to)."""
    return lambda m: (mean, drop_p if drop_from <= m < drop_to else p)


def absent_profile(mean, p, stop_from):
    """Payments stop from minute stop_from on; exposures go on."""
    return lambda m: (mean, 0.0 if m >= stop_from else p)
