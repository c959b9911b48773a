"""
test_alerts.py — conversion-drop alerting (SPEC §6) against the real
Kafka broker and redis-server of the session stack.

Events are generated deterministically (alert_gen.py, fixed seeds) for hours
of event time that ended before now, and fed with `funneld replay`; the
alerting instances are `funneld run` processes (alert_env.py). Evaluation
walks event time one minute step at a time behind the watermark, so hours of
event time are evaluated in seconds and give the transitions live traffic
would give. Receivers are real loopback HTTP servers (alert_receivers.py).

Rules are an operator's choice; the ones here follow SPEC §6's example
(rate at least 30% below a trailing 24 h baseline AND one-sided
two-proportion test at 99% AND at least 1000 potential users in the window)
with a 5 m window and `for: 1m`, at ~600 exposures/min per product (~3000
potential users per window). With that volume a 30% drop of a 5% rate is
3.8 standard deviations of the noise, and the scenario's real drop (to 1%)
crosses the rule within 3 minutes.

Claims:
- drop scenario: exactly one firing transition, for product A, within 5 min
  (event time) of the drop, its resolve within 10 min of the recovery, none
  for B and C; a real Alertmanager (alert_receivers.Alertmanager) holds the
  alert as active with the rule's labels, annotations and startsAt while it
  fires, then counts the resolve (endsAt = the resolve's time) and stops
  listing it, having received exactly one firing and one resolved alert and
  no invalid one, and notifies both; the webhook receiver verifies every signature and
  gets each transition once, the Kafka topic holds them keyed by
  fingerprint, stdout has them as JSON lines, `funneld alerts` lists them;
- 6 h of steady noisy traffic with low-volume scopes: zero alerts from a
  drop, a threshold and an absent rule;
- absent: payments stop while exposures go on → fires; a scope below
  min_samples does not (and does with a rule whose guard it passes);
- a webhook receiver down for 60 s gets the alerts after it returns;
- a receiver that never answers does not slow the consumer;
- restart while firing: no new firing, the resolve still arrives (the real
  Alertmanager resolves the alert and notifies it), and Alertmanager gets
  the firing alert re-sent while it fires;
- two instances: each transition delivered once by the lease holder; the
  holder SIGKILLed, the other takes over without re-firing.
"""

import datetime
import json
import subprocess
import time

import pytest

import alert_gen as gen
from alert_env import AlertEnv, aenv, last_step_s, max_ts_ms  # noqa: F401 (fixture)
from alert_receivers import Alertmanager, Blackhole, Receiver, verify_webhook
from conftest import funneld_bin, produce_lines, scaled

SECRET = "whsec_" + "c2VjcmV0LWZvci1mdW5uZWxkLWFsZXJ0LXRlc3Rz"  # base64("secret-for-funneld-alert-tests")

DROP_RULE = {
    "name": "ConversionDrop", "kind": "drop_vs_baseline", "metric": "conversion_rate",
    "grouping": ["product"], "window": "5m", "baseline": "24h", "min_drop": 0.3,
    "confidence": 0.99, "min_samples": 1000, "for": "1m", "keep_firing_for": "1m",
    "labels": {"severity": "page", "team": "growth"},
    "annotations": {"summary": "conversion dropped",
                    "runbook_url": "https://runbooks.example/conversion-drop"},
}
BELOW_RULE = {
    "name": "ConversionFloor", "kind": "below_threshold", "metric": "conversion_rate",
    "grouping": ["product"], "window": "5m", "threshold": 0.025, "min_samples": 1000,
    "for": "2m",
}
ABSENT_RULE = {
    "name": "PaymentsAbsent", "kind": "absent", "metric": "payments", "while": "exposures",
    "grouping": ["product"], "window": "10m", "min_samples": 500,
}

# drop scenario: 3 h steady, 30 min at 1% for A, 30 min recovered
DROP_HOURS_BACK = 6
DROP_AT_MIN, RECOVER_AT_MIN, DROP_MINUTES = 180, 210, 240


def _drop_lines(now_s):
    start = gen.minute_start(now_s, DROP_HOURS_BACK)
    lines, _ = gen.gen_lines(3001, start, DROP_MINUTES, {
        "A": gen.drop_profile(600, 0.05, 0.01, DROP_AT_MIN, RECOVER_AT_MIN),
        "B": gen.steady(600, 0.05),
        "C": gen.steady(600, 0.05),
    })
    return start, lines


@pytest.fixture(scope="module")
def drop_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("alertdata")
    start, lines = _drop_lines(time.time())
    full = gen.write_lines(d / "drop.jsonl", lines)
    cut = (start + (DROP_AT_MIN + 15) * 60) * 1000  # mid-drop
    k = next(i for i, ln in enumerate(lines) if json.loads(ln)["ts"] >= cut)
    part1 = gen.write_lines(d / "drop-part1.jsonl", lines[:k])
    return {"start": start, "full": full, "part1": part1,
            "drop_ms": (start + DROP_AT_MIN * 60) * 1000,
            "recover_ms": (start + RECOVER_AT_MIN * 60) * 1000,
            "last_step": last_step_s(max_ts_ms(full))}


def by_scope(ts, state):
    out = {}
    for t in ts:
        if t["state"] == state:
            out.setdefault(t["scope"], []).append(t)
    return out


def check_drop_transitions(aenv, d):
    ts = aenv.transitions()
    firing, resolved = by_scope(ts, "firing"), by_scope(ts, "resolved")
    assert set(firing) == {"product=A"}, "firing transitions: %s" % {
        k: [t["at"] for t in v] for k, v in firing.items()}
    assert len(firing["product=A"]) == 1, firing
    f = firing["product=A"][0]
    assert d["drop_ms"] <= f["at"] <= d["drop_ms"] + 5 * 60000, (
        "fired %.1f min after the drop" % ((f["at"] - d["drop_ms"]) / 60000))
    assert set(resolved) == {"product=A"} and len(resolved["product=A"]) == 1, resolved
    r = resolved["product=A"][0]
    assert d["recover_ms"] <= r["at"] <= d["recover_ms"] + 10 * 60000, (
        "resolved %.1f min after the recovery" % ((r["at"] - d["recover_ms"]) / 60000))
    assert r["fingerprint"] == f["fingerprint"] and r["id"] != f["id"]
    assert f["labels"] == {"alertname": "ConversionDrop", "severity": "page",
                           "team": "growth", "product": "A"}
    pend = by_scope(ts, "pending")
    print("drop scenario: firing %+.1f min after the drop, resolved %+.1f min after the "
          "recovery; pending transitions per scope %s" % (
              (f["at"] - d["drop_ms"]) / 60000, (r["at"] - d["recover_ms"]) / 60000,
              {k: len(v) for k, v in pend.items()}))
    return f, r


def webhook_ids(rec):
    bad = [(q["headers"].get("webhook-id"), verify_webhook(q, SECRET)) for q in rec.snapshot()]
    bad = [b for b in bad if b[1] is not None]
    assert not bad, "webhook signatures that do not verify: %s" % bad[:5]
    ids = []
    for q in rec.snapshot():
        body = json.loads(q["body"])
        assert body["id"] == q["headers"]["webhook-id"]
        ids.append(body["id"])
    return ids


def epoch_ms(rfc3339):
    """Epoch ms of an RFC 3339 time as Alertmanager writes it."""
    dt = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return round(dt.timestamp() * 1000)


def am_check_active(aenv, am, f, procs):
    """Alertmanager's own view (GET /api/v2/alerts) of the firing alert f:
    held, active, with f's labels, the rule's annotations, f's startsAt and
    an endsAt still ahead. Returns it."""
    asked = {}

    def active():
        asked["ms"] = time.time() * 1000  # before the GET: endsAt must lie past it
        return [a for a in am.alerts(alertname="ConversionDrop") if a["status"]["state"] == "active"]
    held = aenv.wait(active, 20, "the alert to be active at Alertmanager", procs)
    assert len(held) == 1, held
    a = held[0]
    assert a["labels"] == f["labels"], a
    assert a["annotations"]["summary"] == "conversion dropped", a
    assert a["annotations"]["runbook_url"].startswith("https://"), a
    assert epoch_ms(a["startsAt"]) == f["starts_at"], (a, f["starts_at"])
    assert epoch_ms(a["endsAt"]) > asked["ms"], a
    assert a["generatorURL"].endswith("scope=product%3DA"), a
    assert a["status"]["silencedBy"] == [] and a["status"]["inhibitedBy"] == [], a
    return a


def am_check_resolved(aenv, am, f, r, procs):
    """Alertmanager took the resolve: it no longer lists the alert (an alert
    whose endsAt has passed is resolved), and notified it resolved with f's
    labels and startsAt and r's time as endsAt."""
    aenv.wait(lambda: am.received("resolved") >= 1 and not am.alerts(alertname="ConversionDrop"),
              20, "Alertmanager to resolve the alert", procs)
    ra = aenv.wait(lambda: am.notified("resolved", alertname="ConversionDrop"), 20,
                   "Alertmanager's resolved notification", procs)
    assert all(a["labels"] == f["labels"] for a in ra), ra
    assert epoch_ms(ra[-1]["startsAt"]) == f["starts_at"] and epoch_ms(ra[-1]["endsAt"]) == r["at"], ra[-1]


def sid_key(sid):
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def start_receivers(aenv):
    """A real Alertmanager and a webhook receiver; neither is left running
    when the other fails to start."""
    am = Alertmanager(aenv.dir).start()
    try:
        return am, Receiver().start()
    except BaseException:
        am.stop()
        raise


# =================================================================== tests

def test_drop_scenario(aenv, drop_data):
    d = drop_data
    am, wh = start_receivers(aenv)
    try:
        cfg = aenv.config([DROP_RULE], stdout=True, kafka={"enabled": True},
                          alertmanager={"url": am.url, "resend_interval_ms": 3600000},
                          webhook={"url": wh.url + "/hook", "secret": SECRET},
                          max_catchup_s=8 * 3600)
        p = aenv.start(cfg)
        # up to mid-drop first: the alert fires and keeps firing, so
        # Alertmanager's view of it can be read before the resolve comes
        aenv.replay(cfg, d["part1"])
        f0 = aenv.wait(lambda: aenv.transitions("firing"), 60, "the firing transition", [p])[0]
        am_check_active(aenv, am, f0, [p])
        aenv.wait(lambda: am.notified("firing", alertname="ConversionDrop"), 20,
                  "Alertmanager's firing notification", [p])
        aenv.replay(cfg, d["full"])
        aenv.wait_cursor(d["last_step"], [p])
        f, r = check_drop_transitions(aenv, d)
        assert f == f0
        want = [f["id"], r["id"]]
        aenv.wait(lambda: len(wh.snapshot()) >= 2, 20, "webhook deliveries", [p])
        am_check_resolved(aenv, am, f, r, [p])
        time.sleep(1)
        assert webhook_ids(wh) == want, "webhook got %s" % webhook_ids(wh)
        assert all(q["path"] == "/hook" for q in wh.snapshot())
        # exactly the two transitions reached Alertmanager, both valid
        assert (am.received("firing"), am.received("resolved"), am.invalid()) == (1, 1, 0), am.tail()

        msgs = aenv.wait(lambda: aenv.read_alert_topic() if len(aenv.read_alert_topic()) >= 2
                         else None, 30, "the Kafka alert topic", [p])
        assert [(k, v["id"]) for k, v in msgs] == [(f["fingerprint"], f["id"]),
                                                   (r["fingerprint"], r["id"])], msgs

        assert p.stop() == 0, p.tail()
        out = [json.loads(ln) for ln in p.log_path.read_text().splitlines()
               if ln.startswith("{")]
        assert [t["id"] for t in out] == want, out

        cli = subprocess.run([str(funneld_bin()), "alerts", "-c", str(cfg), "5"],
                             capture_output=True, timeout=scaled(30))
        assert cli.returncode == 0, cli.stderr
        doc = json.loads(cli.stdout)
        assert [(s["scope"], s["state"]) for s in doc["alerts"]] == [("product=A", "resolved")]
        assert [t["id"] for t in doc["transitions"]][-2:] == want
        assert doc["cursor"] >= d["last_step"]
    finally:
        am.stop()
        wh.stop()


def test_steady_six_hours_no_alerts(aenv):
    start = gen.minute_start(time.time(), 7)
    lines, truth = gen.gen_lines(4242, start, 360, {
        "A": gen.steady(600, 0.05), "B": gen.steady(600, 0.05), "C": gen.steady(600, 0.05),
        "D": gen.steady(5, 0.05),     # low volume: 25 users per 5 m window
        "E": gen.steady(150, 0.05),   # 750 per window: still under min_samples
    })
    path = gen.write_lines(aenv.dir / "steady.jsonl", lines)
    cfg = aenv.config([DROP_RULE, BELOW_RULE, ABSENT_RULE], max_catchup_s=8 * 3600)
    p = aenv.start(cfg)
    aenv.replay(cfg, path)
    aenv.wait_cursor(last_step_s(max_ts_ms(path)), [p], timeout=120)
    ts = aenv.transitions()
    firing = [t for t in ts if t["state"] == "firing"]
    assert not firing, "false positives: %s" % [(t["rule"], t["scope"], t["at"]) for t in firing]
    assert not ts, "transitions in steady traffic: %s" % [
        (t["rule"], t["scope"], t["state"], t["at"]) for t in ts][:10]
    # the low-volume scope really had windows without a payment (what an
    # unguarded absent rule would fire on), so the guard was exercised
    zero10 = sum(1 for m in range(10, 360)
                 if sum(truth[("D", k)][1] for k in range(m - 10, m)) == 0)
    print("steady: %d events, %d minutes of event time evaluated; product D had %d "
          "10-minute windows without payments" % (len(lines), 360, zero10))
    assert zero10 > 0


def test_absent(aenv):
    start = gen.minute_start(time.time(), 3)
    stop_min = 60
    lines, truth = gen.gen_lines(777, start, 90, {
        "X": gen.absent_profile(300, 0.05, stop_min),   # 3000 exposures per 10 m
        "Y": gen.absent_profile(15, 0.05, stop_min),    # 150 exposures per 10 m < 500
        "Z": gen.steady(300, 0.05),
    })
    path = gen.write_lines(aenv.dir / "absent.jsonl", lines)
    loose = dict(ABSENT_RULE, name="PaymentsAbsentLoose", min_samples=100)
    cfg = aenv.config([ABSENT_RULE, loose])
    p = aenv.start(cfg)
    aenv.replay(cfg, path)
    aenv.wait_cursor(last_step_s(max_ts_ms(path)), [p])
    stop_ms = (start + stop_min * 60) * 1000
    fired = {}
    for t in aenv.transitions("firing"):
        fired.setdefault((t["rule"], t["scope"]), []).append(t["at"])
    # the guarded rule: X only, once, 10..12 minutes after the stop (the 10 m
    # window must be free of payments, the last of which land up to 20 s
    # after their exposure); Y (~150 exposures per window < 500) never
    assert sorted(fired) == [("PaymentsAbsent", "product=X"), ("PaymentsAbsentLoose", "product=X"),
                             ("PaymentsAbsentLoose", "product=Y")], fired
    for key in [("PaymentsAbsent", "product=X"), ("PaymentsAbsentLoose", "product=X")]:
        assert len(fired[key]) == 1 and stop_ms + 600000 <= fired[key][0] <= stop_ms + 720000, (
            key, fired[key])
    # the loose rule (min_samples 100) lets Y through: it fires after the stop,
    # and also on a natural 10-minute gap in Y's few payments before it (the
    # noise the guard is there for)
    ys = fired[("PaymentsAbsentLoose", "product=Y")]
    assert any(stop_ms + 600000 <= t <= stop_ms + 720000 for t in ys), ys
    gaps = [m for m in range(10, stop_min)
            if sum(truth[("Y", k)][1] for k in range(m - 10, m)) == 0]
    print("absent: Y had %d pre-stop minutes ending a payment-free 10 m window; loose rule "
          "fired for Y at %s min" % (len(gaps), [(t - start * 1000) / 60000 for t in ys]))
    assert len(ys) == 1 + (1 if gaps else 0), (ys, gaps)


def _absent_data(aenv, seed=99):
    start = gen.minute_start(time.time(), 2)
    lines, _ = gen.gen_lines(seed, start, 45, {"X": gen.absent_profile(300, 0.05, 20)})
    path = gen.write_lines(aenv.dir / "absent-small.jsonl", lines)
    return path, last_step_s(max_ts_ms(path))


def test_receiver_down_60s(aenv):
    wh = Receiver().start()
    wh.down()  # a real server, now down: connections are refused
    t_down = time.monotonic()
    path, last = _absent_data(aenv)
    cfg = aenv.config([ABSENT_RULE], webhook={"url": wh.url, "secret": SECRET},
                      http={"backoff_min_ms": 200, "backoff_max_ms": 3000})
    p = aenv.start(cfg)
    try:
        aenv.replay(cfg, path)
        aenv.wait_cursor(last, [p])
        firing = aenv.transitions("firing")
        assert len(firing) == 1, firing
        aenv.wait(lambda: "alert delivery failed" in p.log_path.read_text(errors="replace"),
                  20, "a failed delivery attempt", [p])
        time.sleep(max(0.0, 60 - (time.monotonic() - t_down)))
        assert wh.snapshot() == []
        wh.start()
        t_up = time.monotonic()
        aenv.wait(lambda: wh.snapshot(), 15, "delivery after the receiver returned", [p])
        took = time.monotonic() - t_up
        time.sleep(1)
        assert webhook_ids(wh) == [firing[0]["id"]]
        print("receiver down %.0fs; delivered %.1fs after it returned" % (t_up - t_down, took))
    finally:
        wh.stop()


def test_dead_receiver_does_not_slow_consumer(aenv):
    hole = Blackhole()
    try:
        path, last = _absent_data(aenv, seed=123)
        cfg = aenv.config([ABSENT_RULE],
                          webhook={"url": hole.url, "secret": SECRET},
                          alertmanager={"url": hole.url, "resend_interval_ms": 500},
                          http={"timeout_ms": min(600000, int(scaled(120) * 1000)),
                                "backoff_min_ms": 100, "backoff_max_ms": 500})
        p = aenv.start(cfg)
        aenv.replay(cfg, path)
        aenv.wait_cursor(last, [p])
        assert aenv.transitions("firing")
        aenv.wait(lambda: len(hole.conns) >= 2, 20, "connections to the dead receiver", [p])
        # now feed Kafka while both HTTP outputs hang on their requests
        n = 60000
        now = int(time.time() * 1000)
        lines = [b'{"event_id":"k%d","type":"exposure","ts":%d,"user_id":"k%d",'
                 b'"product_id":"K"}' % (i, now - 60000 + i % 60000, i) for i in range(n)]
        t0 = time.monotonic()
        produce_lines(aenv.stack.bootstrap, [(aenv.topic, 0, lines, 0)])
        t_prod = time.monotonic() - t0
        field = "%s:0" % aenv.topic
        aenv.wait(lambda: (aenv.r.cmd("HGET", "%s:offsets:%s" % (aenv.prefix, aenv.group),
                                      field) or b"0") == str(n).encode(),
                  60, "the consumer to store offset %d" % n, [p])
        lag = time.monotonic() - t0 - t_prod
        print("produced %d in %.1fs; in Redis %.1fs after the last produce" % (n, t_prod, lag))
        # the consumer finished while both requests still hang (their 120 s
        # timeout has not ended any attempt), so it did not wait for them ...
        assert "alert delivery failed" not in p.log_path.read_text(errors="replace"), p.tail()
        assert len(hole.conns) >= 2 and aenv.sent_cursor("webhook") is None
        # ... and on time: about one flush interval normally (~1 s here); the
        # bound only allows for a loaded machine
        assert lag < scaled(10), "consumer took %.1fs after produce ended" % lag
    finally:
        hole.stop()


def test_restart_while_firing(aenv, drop_data):
    d = drop_data
    am, wh = start_receivers(aenv)
    try:
        cfg = aenv.config([DROP_RULE], max_catchup_s=8 * 3600,
                          alertmanager={"url": am.url, "resend_interval_ms": 500},
                          webhook={"url": wh.url, "secret": SECRET})
        p1 = aenv.start(cfg)
        aenv.replay(cfg, d["part1"])
        aenv.wait(lambda: aenv.transitions("firing"), 60, "the firing transition", [p1])
        fid = aenv.transitions("firing")[0]["id"]
        aenv.wait(lambda: fid in [json.loads(q["body"])["id"] for q in wh.snapshot()], 20,
                  "the webhook to get the firing", [p1])
        am_check_active(aenv, am, aenv.transitions("firing")[0], [p1])
        # re-sent to Alertmanager while firing (resend_interval_ms 500)
        aenv.wait(lambda: am.received("firing") >= 3, 20, "Alertmanager re-sends", [p1])
        assert p1.stop() == 0, p1.tail()
        p2 = aenv.start(cfg)
        aenv.replay(cfg, d["full"])
        aenv.wait_cursor(d["last_step"], [p2], timeout=120)
        f, r = check_drop_transitions(aenv, d)
        assert f["id"] == fid
        assert r["instance"] != f["instance"], "the resolve came from the first process?"
        aenv.wait(lambda: len(wh.snapshot()) >= 2, 20, "the resolve at the webhook", [p2])
        am_check_resolved(aenv, am, f, r, [p2])
        assert am.invalid() == 0, am.tail()
        time.sleep(1)
        assert webhook_ids(wh) == [f["id"], r["id"]]
    finally:
        am.stop()
        wh.stop()


def test_two_instances_failover(aenv, drop_data):
    d = drop_data
    wh = Receiver().start()
    try:
        cfg = aenv.config([DROP_RULE], max_catchup_s=8 * 3600,
                          webhook={"url": wh.url, "secret": SECRET})
        a, b = aenv.start(cfg), aenv.start(cfg)
        aenv.replay(cfg, d["part1"])
        aenv.wait(lambda: aenv.transitions("firing"), 60, "the firing transition", [a, b])
        sid = [s for s, t in aenv.stream() if t["state"] == "firing"][0]
        # delivered and acknowledged in Redis: the cursor is at or past it
        aenv.wait(lambda: sid_key(aenv.sent_cursor("webhook") or "0-0") >= sid_key(sid), 20,
                  "the webhook cursor to pass the firing", [a, b])
        # the victim is whoever holds the lease now (the firing's evaluator,
        # unless the lease changed hands since: then it is the other one)
        holder = aenv.lease_holder()
        pid = int(holder.rsplit("-", 2)[1])
        victim = a if a.pid == pid else b
        survivor = b if victim is a else a
        assert victim.pid == pid, (holder, a.pid, b.pid)
        victim.kill()
        aenv.replay(cfg, d["full"])
        aenv.wait_cursor(d["last_step"], [survivor], timeout=120)
        f, r = check_drop_transitions(aenv, d)
        assert int(f["instance"].rsplit("-", 2)[1]) in (a.pid, b.pid), f
        assert r["instance"] != holder, "the resolve came from the killed holder?"
        assert str(survivor.pid) in aenv.lease_holder()
        aenv.wait(lambda: len(wh.snapshot()) >= 2, 20, "the resolve at the webhook", [survivor])
        time.sleep(1)
        assert webhook_ids(wh) == [f["id"], r["id"]], "each transition exactly once"
    finally:
        wh.stop()
