"""
test_metrics.py — the loopback operations endpoint of a running funneld.

Claims checked: /healthz and /readyz answer 200 while funneld runs with Redis
up; after it drains the session stream, /metrics counts exactly the events
the oracle accepted (plus the repeated payments, which funneld accepts and
Redis then ignores) and, per reason code, exactly the oracle's rejects; an
unknown path is 404; the endpoint listens on loopback only.
"""

import time
import urllib.error
import urllib.request

from alert_receivers import free_port
from conftest import scaled, wait_drained


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = int(float(value))
    return out


def test_metrics_endpoint(ctx, stack, stream, main_topics):
    port = free_port()
    fd = ctx.start(ctx.config(main_topics, http={"listen": "127.0.0.1:%d" % port}))
    wait_drained(stack.redis(), ctx.prefix, ctx.group, main_topics.end_offsets(), [fd])
    # metrics are published after each flush tick: the drain's last flush
    # is followed by at least one more tick within the flush interval
    deadline = time.monotonic() + scaled(10)
    summary = stream.expected["summary"]
    want_accepted = summary["accepted"] + summary["repeated_payments"]
    while True:
        code, text = get(port, "/metrics")
        assert code == 200, text
        m = metrics(text)
        if m.get("funneld_events_accepted_total") == want_accepted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert m["funneld_events_accepted_total"] == want_accepted
    assert m["funneld_events_late_total"] >= summary["late"]
    for reason, n in summary["reject_reasons"].items():
        assert m['funneld_events_rejected_total{reason="%s"}' % reason] == n, reason
    total = sum(v for k, v in m.items() if k.startswith("funneld_events_rejected_total"))
    assert total == summary["rejected"]
    assert m["funneld_redis_up"] == 1
    assert m["funneld_partitions_assigned"] == len(main_topics.end_offsets())
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/readyz")[0] == 200
    assert get(port, "/nope")[0] == 404
    # loopback only: the listening socket is bound to 127.0.0.1
    listening = [l for l in open("/proc/net/tcp").read().splitlines()[1:]
                 if l.split()[1].endswith(":%04X" % port) and l.split()[3] == "0A"]
    assert listening and all(l.split()[1].startswith("0100007F:") for l in listening), listening
    assert fd.stop() == 0
