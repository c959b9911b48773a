"""
test_gen.py — funneld-gen, the load generator (bench/gen/funneld_gen.c).

* the same seed and options give byte-identical JSON Lines; another seed
  gives other bytes;
* every message that is not deliberately malformed passes `funneld validate`
  (no output, exit 0), and with malformed messages switched on, validate
  rejects exactly as many lines as the generator says it malformed; the
  duplicates it reports are exact byte copies of earlier lines;
* a scenario file shifts the rates it claims, counted from the output:
  inside its event-time interval the interaction rate of product p1
  (interactions / exposures) and the payment rate of channel wechat_group
  (paid payments / interactions) drop by the scenario's multipliers, while
  outside the interval, and for scopes the scenario does not match, the
  rates equal those of the same stream generated without the scenario.

Tolerance. The generator draws each interaction and payment independently,
so a count in a cell is close to Poisson: the log of a ratio of two rates
has standard error about sqrt(1/x1 + 1/x2) over the numerator counts x1, x2
(the denominators are exposure or interaction counts, 10-100 times larger,
and add little). Each check allows 4 standard errors plus 0.05 for the edge
of the interval (an interaction lands up to 2 min after its exposure, a
payment up to 15 min after its interaction, against a 40-minute interval).
The seed is fixed, so the test is deterministic; the tolerance only says
that the stated effect is there at a statistically honest precision rather
than pinning the generator's exact counts.

Needs only the build (FUNNELD_BUILD, default build/): no Kafka, no Redis.
"""

import json
import math
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def build_dir():
    p = Path(os.environ.get("FUNNELD_BUILD") or REPO / "build")
    return p if p.is_absolute() else REPO / p


def binary(name, env=None):
    p = Path(os.environ[env]) if env and os.environ.get(env) else build_dir() / name
    if not (p.exists() and os.access(p, os.X_OK)):
        pytest.fail("%s not found at %s (set FUNNELD_BUILD)" % (name, p), pytrace=False)
    return p


GEN = None
# event-time start: yesterday 04:00 UTC (noon in Asia/Shanghai), so the
# generator's daily curve shapes every run the same way whatever the time of
# day, and every event (late ones are set back at most 30 min) is 20-44.5 h
# old: within funneld's default 48 h bounds
START = ((int(time.time()) // 86400 - 1) * 86400 + 4 * 3600) * 1000


def gen(*args, check=True):
    """Runs funneld-gen with --out -; returns (stdout bytes, summary dict)."""
    cmd = [str(binary("funneld-gen")), "--out", "-", "--start-ms", str(START), *map(str, args)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if check and r.returncode != 0:
        pytest.fail("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr.decode()), pytrace=False)
    summary = dict((k, int(v)) for k, v in re.findall(rb"(\w+)=(\d+)", r.stderr.splitlines()[-1])) \
        if r.stderr.strip() else {}
    return r.stdout, {k.decode(): v for k, v in summary.items()}


def validate(data):
    r = subprocess.run([str(binary("funneld", "FUNNELD_BIN")), "validate", "-"], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return r.returncode, r.stdout.decode()


# ---------------------------------------------------------------- determinism

def test_same_seed_same_bytes_other_seed_other_bytes():
    a, sa = gen("--seed", 42, "--events", 30000, "--hours", 2, "--malformed", 0.01)
    b, _ = gen("--seed", 42, "--events", 30000, "--hours", 2, "--malformed", 0.01)
    c, _ = gen("--seed", 43, "--events", 30000, "--hours", 2, "--malformed", 0.01)
    assert a.count(b"\n") == 30000 == sa["exposures"] + sa["interactions"] + sa["payments"] \
        + sa["duplicates"] + sa["malformed"]
    assert a == b, "same seed and options, different bytes"
    assert a != c, "another seed gave the same bytes"
    # not merely a different event_id prefix: the events themselves differ
    strip = lambda data: [re.sub(rb'"event_id":"[^"]*"', b"", l) for l in data.splitlines()[:2000]]
    assert sum(x != y for x, y in zip(strip(a), strip(c))) > 1500


# ---------------------------------------------------------------- validity

def test_output_valid_except_the_malformed():
    clean, sc = gen("--seed", 5, "--events", 40000, "--hours", 2, "--malformed", 0,
                    "--ooo", 0.05, "--late", 0.01, "--dup", 0.2)
    assert sc["duplicates"] > 0 and sc["late"] > 0 and sc["out_of_order"] > 0
    rc, out = validate(clean)
    assert (rc, out) == (0, ""), "valid events rejected:\n" + out[:2000]

    dirty, s = gen("--seed", 5, "--events", 40000, "--hours", 2, "--malformed", 0.02)
    rc, out = validate(dirty)
    rejected = out.splitlines()
    assert rc == 1
    assert len(rejected) == s["malformed"] > 500
    reasons = Counter(l.split("\t")[1] for l in rejected)
    # the generator's defects cover these reasons (docs/EVENTS.md)
    assert set(reasons) >= {"invalid_json", "not_object", "missing_field", "bad_type",
                            "bad_value", "unknown_type"}, reasons

    # duplicates are exact re-sends of an earlier payment line, as many as reported
    seen, dups = set(), 0
    for line in clean.splitlines():
        if line in seen:
            dups += 1
            assert b'"type":"payment"' in line
        seen.add(line)
    assert dups == sc["duplicates"]


# ---------------------------------------------------------------- scenarios

FROM_MS, TO_MS = 40 * 60000, 80 * 60000  # offsets of the scenario interval
MULT_INTERACTION_P1 = 0.5
MULT_PAYMENT_WG = 0.25


def counts(data):
    """Cells (scope, inside interval?, metric) -> count, by event time."""
    c = Counter()
    for line in data.splitlines():
        e = json.loads(line)
        inside = FROM_MS <= e["ts"] - START < TO_MS
        t = e["type"]
        if t == "payment" and e.get("status") == "refunded":
            continue
        metric = {"exposure": "E", "interaction": "I", "payment": "P"}[t]
        c[("p1" if e["product_id"] == "p1" else "other_products", inside, metric)] += 1
        c[("wg" if e["channel"] == "wechat_group" else "other_channels", inside, metric)] += 1
    return c


def rate(c, scope, inside, num, den):
    return c[(scope, inside, num)] / c[(scope, inside, den)]


def assert_ratio(label, r_obs, r_want, n1, n2):
    se = math.sqrt(1.0 / n1 + 1.0 / n2)
    tol = 4 * se + 0.05
    dev = abs(math.log(r_obs / r_want))
    assert dev <= tol, "%s: ratio %.3f, want %.3f (|log dev| %.3f > tolerance %.3f; counts %d, %d)" % (
        label, r_obs, r_want, dev, tol, n1, n2)


@pytest.fixture(scope="module")
def scenario_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    sc = d / "scenario.json"
    sc.write_text(json.dumps([
        {"match": {"product_id": "p1"}, "from": "40m", "to": "80m",
         "interaction": MULT_INTERACTION_P1},
        {"match": {"channel": "wechat_group"}, "from": FROM_MS // 1000, "to": "80m",
         "payment": MULT_PAYMENT_WG},
    ]))
    common = ("--seed", 11, "--events", 600000, "--hours", 2, "--lean",
              "--ooo", 0, "--late", 0, "--dup", 0, "--malformed", 0)
    with_sc, _ = gen(*common, "--scenario", sc)
    base, _ = gen(*common)
    return counts(with_sc), counts(base)


def test_scenario_drops_the_rates_it_claims_inside_the_interval(scenario_runs):
    c, _ = scenario_runs
    # p1's interaction rate inside vs outside the interval, same run
    r = rate(c, "p1", True, "I", "E") / rate(c, "p1", False, "I", "E")
    assert_ratio("p1 interaction rate in/out", r, MULT_INTERACTION_P1,
                 c[("p1", True, "I")], c[("p1", False, "I")])
    # wechat_group's payment rate (paid / interactions) inside vs outside
    r = rate(c, "wg", True, "P", "I") / rate(c, "wg", False, "P", "I")
    assert_ratio("wechat_group payment rate in/out", r, MULT_PAYMENT_WG,
                 c[("wg", True, "P")], c[("wg", False, "P")])
    assert c[("wg", True, "P")] >= 80, "too few payments for a meaningful check"


def test_scenario_leaves_other_times_and_scopes_alone(scenario_runs):
    c, b = scenario_runs
    # outside the interval: the matched scopes run at the baseline's rates
    for scope, num, den in (("p1", "I", "E"), ("wg", "P", "I")):
        r = rate(c, scope, False, num, den) / rate(b, scope, False, num, den)
        assert_ratio("%s %s/%s outside vs baseline" % (scope, num, den), r, 1.0,
                     c[(scope, False, num)], b[(scope, False, num)])
    # inside the interval: scopes the scenario does not match are unchanged
    for scope, num, den in (("other_products", "I", "E"), ("other_channels", "P", "I")):
        r = rate(c, scope, True, num, den) / rate(b, scope, True, num, den)
        assert_ratio("%s %s/%s inside vs baseline" % (scope, num, den), r, 1.0,
                     c[(scope, True, num)], b[(scope, True, num)])
    # and the baseline itself has no dip where the scenario puts one
    r = rate(b, "wg", True, "P", "I") / rate(b, "wg", False, "P", "I")
    assert_ratio("baseline wechat_group in/out", r, 1.0, b[("wg", True, "P")], b[("wg", False, "P")])


def test_bad_scenario_file_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"match": {"productid": "p1"}, "payment": 0.5}]))
    r = subprocess.run([str(binary("funneld-gen")), "--out", "-", "--events", "10", "--scenario", str(bad)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 2 and b"productid" in r.stderr
