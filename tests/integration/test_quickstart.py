"""
test_quickstart.py — what the quick start (deploy/quickstart.sh) shows a
newcomer, against the session's real Kafka broker and redis-server:

* the example configuration (deploy/funneld.example.json) passes
  `funneld check-config` and enables exactly one alert rule, ConversionDrop
  on the grouping `product`;
* funneld-gen's conversion-drop scenario (`--drop-product p1 --drop-after
  --drop-for --drop-payment`, the quick start's live feed) really drops the
  conversion of that product only, and restores it: the stream goes through
  Kafka and funneld into Redis, Redis equals the independent oracle
  (tests/oracle/oracle.py) for every counter, and from those counters p1's
  payments per exposure fall to about --drop-payment (0.1) of the rate
  before the drop while it lasts and come back after it, while the other
  products' rate does not move;
* with the example's rule exactly as the file writes it, the alert fires
  for p1 (and for no other product) and resolves, seen through `funneld
  alerts` and on funneld's stdout (the stdout sink the quick start turns on).

Time. The quick start runs live: the drop starts 3 min after the feed and
lasts 4 min, and the 5 min window, `for: 1m` and `keep_firing_for: 2m` play
out in wall time (about 15 min). Here the same scenario (a 4 min drop to
a tenth) is generated for event times that ended a while ago (43 minutes of
event time, starting 20 minutes before a whole hour so that the rule's 1 h
baseline holds steady traffic) and fed at full speed: alert evaluation walks
event time minute by minute behind the watermark (docs/ALERTS.md), so the
rule need not be scaled down at all — only the run-time settings are
overridden (brokers, Redis, prefix, topics, evaluation interval and catch-up
horizon, groupings reduced to the two the rule and the checks read).
`--warm-start` makes the generated stream steady from its first minute, as
in the quick start.

Volume. The live feed sends 300 events/s over 50 products; p1 then has
about 22,000 potential users per 5 min window. The test stream has 3
products and ~10,000 events/min, which gives p1 ~25,000 per window (the
rule's min_samples is 15,000) and a 20-minute baseline of ~100,000 in
about 420,000 events. Users are drawn uniformly from 10 million, as in the quick
start (docs/ALERTS.md explains why).

Tolerance of the rate checks: payments are independent draws, so a count
is close to Poisson and the log of a ratio of two rates has a standard error
of about sqrt(1/x1 + 1/x2) over the payment counts; each check allows 4 of
them (the seed is fixed, but funneld-gen's daily curve follows the local
hour of the start, so the volumes vary by about 10% with the time of day the
test runs: p1's sample stays well above `min_samples` (about 22,500
against 15,000 at worst); the bound only says the effect is there at an honest
precision).
"""

import importlib.util
import json
import math
import subprocess
import time
import uuid

import pytest

from alert_env import last_step_s
from conftest import (KAFKA_PROPS, ORACLE, REPO, Funneld, assert_counters, create_topics,
                      funneld_bin, kill_all, produce_lines, read_counters, read_lines, scaled,
                      wait_drained)

EXAMPLE = REPO / "deploy" / "funneld.example.json"
GROUPINGS = [[], ["product"]]
SEED = 11
EVENTS = 420000
SPAN_MIN = 43
LEAD_MIN = 20  # the stream starts this long before a whole hour H0
DROP_AFTER_MIN = 27  # drop at H0 + 7 min
DROP_S = 240
DROP_PAYMENT = 0.1


def gen_bin():
    p = funneld_bin().parent / "funneld-gen"
    if not p.exists():
        pytest.fail("funneld-gen not found next to %s" % funneld_bin(), pytrace=False)
    return p


def example():
    return json.loads(EXAMPLE.read_text())


def test_example_config_passes_check_config():
    r = subprocess.run([str(funneld_bin()), "check-config", "-c", str(EXAMPLE)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    eff = json.loads(r.stdout)
    rules = eff["alerts"]["rules"]
    assert [x["name"] for x in rules] == ["ConversionDrop"], rules
    rule = rules[0]
    assert rule["kind"] == "drop_vs_baseline" and rule["metric"] == "conversion_rate"
    assert rule["grouping"] == ["product"]
    assert ["product"] in eff["groupings"]
    # what the file says is what funneld runs (nothing dropped or defaulted away)
    written = example()["alerts"]["rules"][0]
    for k in ("window", "baseline", "min_drop", "confidence", "min_samples", "for",
              "keep_firing_for", "labels"):
        assert str(rule[k]) == str(written[k]), (k, rule[k], written[k])


def test_gen_drop_options_are_checked():
    out = subprocess.run([str(gen_bin()), "--help"], stdout=subprocess.PIPE, timeout=30).stdout
    for opt in (b"--drop-product", b"--drop-after", b"--drop-for", b"--drop-payment",
                b"--warm-start"):
        assert opt in out, opt
    for bad, msg in ((["--drop-product", "p51"], b"not one of p1..p50"),
                     (["--drop-product", "p1", "--drop-for", "0"], b"--drop-for must be > 0"),
                     (["--drop-product", "p1", "--drop-after", "3x"], b"wants a duration"),
                     (["--drop-product", "p1", "--drop-payment", "2"], b"--drop-payment"),
                     (["--live", "--warm-start"], b"needs --rate")):
        r = subprocess.run([str(gen_bin()), "--out", "/dev/null", "--events", "10", *bad],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert r.returncode != 0 and msg in r.stderr, (bad, r.returncode, r.stderr)


def max_ts_ms(lines):
    """The highest integer ts of the stream (malformed lines skipped)."""
    hi = 0
    for line in lines:
        i = line.find(b'"ts":')
        if i >= 0:
            try:
                hi = max(hi, int(line[i + 5:line.find(b",", i)]))
            except ValueError:
                pass
    return hi


def run_oracle(path, topic, now_ms, prefix):
    """The oracle over one mixed-topic partition, for GROUPINGS, keyed for
    prefix."""
    spec = importlib.util.spec_from_file_location("fd_oracle_qs", ORACLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    o = mod.Oracle(now_ms, prefix=prefix, groupings=GROUPINGS)
    o.run_partition(path.name, topic, 0, None, mod.read_lines(str(path)))
    return o.result()


def rate(counters, prefix, scopes, lo_ms, hi_ms):
    """(payments, exposures) summed over the m1 buckets in [lo, hi) of scopes."""
    pay = exp = 0
    for sc in scopes:
        for b in range(lo_ms // 1000, hi_ms // 1000, 60):
            h = counters.get("%s:c:%s:m1:%d" % (prefix, sc, b), {})
            pay += h.get("payments", 0)
            exp += h.get("exposures", 0)
    return pay, exp


def assert_ratio(what, now, before, want, slack=0.0):
    """now and before are (payments, exposures); the rate ratio is within 4
    standard errors (plus slack) of want."""
    (x1, n1), (x0, n0) = now, before
    assert x0 > 0 and n1 > 0 and n0 > 0, (what, now, before)
    r = (max(x1, 0.5) / n1) / (x0 / n0)
    se = math.sqrt(1.0 / max(x1, 1) + 1.0 / x0)
    assert abs(math.log(r / want)) <= 4 * se + slack, (
        "%s: rate ratio %.3f, expected %.3f (4 SE = %.2f in log; payments %d/%d exposures %d/%d)"
        % (what, r, want, 4 * se, x1, x0, n1, n0))
    return r


def test_drop_scenario_fires_and_resolves_the_example_rule(stack, tmp_path):
    tag = uuid.uuid4().hex[:6]
    topic, dlq, group, prefix = "qs.in." + tag, "qs.dlq." + tag, "gqs-" + tag, "qs" + tag
    h0 = (int(time.time()) // 3600 - 2) * 3600 * 1000
    start = h0 - LEAD_MIN * 60000
    drop_ms = start + DROP_AFTER_MIN * 60000
    end_drop_ms = drop_ms + DROP_S * 1000

    data = tmp_path / ("%s.0.jsonl" % topic)
    subprocess.run([str(gen_bin()), "--out", str(data), "--start-ms", str(start),
                    "--hours", repr(SPAN_MIN / 60.0), "--events", str(EVENTS), "--seed", str(SEED),
                    "--products", "3", "--users", "10000000", "--user-skew", "1", "--lean", "--quiet",
                    "--warm-start",
                    "--drop-product", "p1", "--drop-after", "%dm" % DROP_AFTER_MIN,
                    "--drop-for", "%ds" % DROP_S, "--drop-payment", str(DROP_PAYMENT)],
                   check=True, timeout=scaled(120))
    lines = read_lines(data)
    now_ms = int(time.time() * 1000)

    cfg = example()
    cfg["kafka"].update({"brokers": stack.bootstrap, "group": group, "topics": {topic: "mixed"},
                         "dlq_topic": dlq, "properties": dict(KAFKA_PROPS)})
    cfg["redis"].update({"url": stack.redis_url, "prefix": prefix})
    cfg.update({"flush_interval_ms": 200, "snapshot_interval_ms": 1000, "groupings": GROUPINGS})
    cfg["http"]["listen"] = ""
    cfg["alerts"].update({"eval_interval_ms": 200, "max_catchup_s": 86400, "stdout": True})
    cfg_path = tmp_path / "funneld.json"
    cfg_path.write_text(json.dumps(cfg, indent=2))

    create_topics(stack.bootstrap, {topic: 1, dlq: 1})
    p = Funneld(funneld_bin(), cfg_path, tmp_path / "funneld.log")
    r = stack.redis()
    try:
        produce_lines(stack.bootstrap, [(topic, 0, lines, 0)])
        wait_drained(r, prefix, group, {"%s:0" % topic: len(lines)}, procs=[p], timeout=180)
        last = last_step_s(max_ts_ms(lines))

        def cursor():
            v = r.cmd("GET", "%s:alert:cursor" % prefix)
            return int(v) if v else 0

        deadline = time.monotonic() + scaled(120)
        while cursor() < last:
            assert p.alive(), p.tail()
            assert time.monotonic() < deadline, "evaluation stuck at %d < %d\n%s" % (
                cursor(), last, p.tail())
            time.sleep(0.2)

        # Redis holds exactly what the oracle computes from the stream
        exp = run_oracle(data, topic, now_ms, prefix)["counters"]
        got = read_counters(r, prefix)
        assert_counters(exp, got, prefix)

        # the scenario, measured from those counters
        before = (drop_ms - 15 * 60000, drop_ms)
        after = (end_drop_ms, end_drop_ms + 10 * 60000)
        p1 = ["product=p1"]
        others = ["product=p2", "product=p3"]
        during_p1 = rate(got, prefix, p1, drop_ms, end_drop_ms)
        before_p1 = rate(got, prefix, p1, *before)
        r_drop = assert_ratio("p1 during the drop", during_p1, before_p1, DROP_PAYMENT)
        assert r_drop < 0.4, r_drop
        assert_ratio("p1 after the drop", rate(got, prefix, p1, *after), before_p1, 1.0)
        before_o = rate(got, prefix, others, *before)
        assert_ratio("p2+p3 during p1's drop", rate(got, prefix, others, drop_ms, end_drop_ms),
                     before_o, 1.0)
        assert_ratio("p2+p3 after p1's drop", rate(got, prefix, others, *after), before_o, 1.0)

        # the alert, through `funneld alerts`
        out = subprocess.run([str(funneld_bin()), "alerts", "1000", "-c", str(cfg_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert out.returncode == 0, out.stderr.decode()
        doc = json.loads(out.stdout)
        trans = doc["transitions"]
        fired = [t for t in trans if t["state"] == "firing"]
        resolved = [t for t in trans if t["state"] == "resolved"]
        assert [t["scope"] for t in fired] == ["product=p1"], [(t["scope"], t["at"]) for t in fired]
        assert [t["scope"] for t in resolved] == ["product=p1"], resolved
        f, s = fired[0], resolved[0]
        assert f["rule"] == "ConversionDrop" and f["labels"]["product"] == "p1"
        assert drop_ms <= f["at"] <= drop_ms + 6 * 60000, (
            "fired %.1f min after the drop" % ((f["at"] - drop_ms) / 60000))
        # the last step whose window still holds a minute of the drop is 5 min
        # after its end; then keep_firing_for (2 min) and one step
        assert end_drop_ms <= s["at"] <= end_drop_ms + 8 * 60000, (
            "resolved %.1f min after the drop ended" % ((s["at"] - end_drop_ms) / 60000))
        assert s["fingerprint"] == f["fingerprint"]
        states = {a["scope"]: a["state"] for a in doc["alerts"]}
        assert states == {"product=p1": "resolved"}, states
        print("quick-start scenario: p1 rate x%.2f during the drop; fired %+.1f min after it "
              "began, resolved %+.1f min after it ended" % (
                  r_drop, (f["at"] - drop_ms) / 60000, (s["at"] - end_drop_ms) / 60000))

        # the stdout sink printed both transitions as JSON lines
        def printed():
            ids = set()
            for ln in (tmp_path / "funneld.log").read_bytes().splitlines():
                if ln.startswith(b"{"):
                    try:
                        ids.add(json.loads(ln)["id"])
                    except (ValueError, KeyError):
                        pass
            return ids
        deadline = time.monotonic() + scaled(30)
        while not {f["id"], s["id"]} <= printed():
            assert time.monotonic() < deadline, "stdout lacks %s / %s\n%s" % (
                f["id"], s["id"], p.tail())
            time.sleep(0.2)
        assert p.stop() == 0, p.tail()
    finally:
        kill_all([p])
        r.close()
