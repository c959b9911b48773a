"""
web_env.py — the stack behind the API and screen tests (test_api.py,
test_screen.py): a crafted two-partition stream in Kafka, one `funneld run`
with the HTTP server (the screen, /api/v1 and its stream) and an alert
rule, and `funneld serve` instances (read-only, no consumer) on the same
Redis; expected figures come from tests/oracle/oracle.py run over the very
lines produced, never from funneld.

Batch 1 (produced before funneld starts) lies 10-20 minutes back in event
time: p1 converts, p2 converts too (every exposed user of p2 pays), so the
rule `P2Floor` (conversion_rate below 0.1 for grouping product, 5m, at least 5 exposed users) has
nothing to fire on. Batch 2 (`produce_batch2`) lies in the last four
minutes: p1 gets more exposures and payments, p2 only exposures of new
users, so the rule fires for product=p2 once the watermark passes.
"""

import importlib.util
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from alert_receivers import free_port
from conftest import (Ctx, Funneld, funneld_bin, hll_tolerance, produce_lines, run_oracle,
                      scaled, wait_drained, ORACLE, ORACLE_PREFIX)
from crafted import event, produce_crafted, wait_until

_spec = importlib.util.spec_from_file_location("fd_oracle_web", ORACLE)
ORACLE_MOD = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ORACLE_MOD)


def m1_uniques(scope):
    """Whether scope has m1 distinct-user HLLs: its grouping is in
    hll_m1_groupings (the default, `all` and `product`; docs/CONFIG.md)."""
    return scope == "all" or "," not in scope and scope.startswith("product=")

EVAL_MS = 1000
RULE = {"name": "P2Floor", "kind": "below_threshold", "metric": "conversion_rate",
        "grouping": ["product"], "window": "5m", "threshold": 0.1, "min_samples": 5}
CHANNELS = ["wechat_group", "weibo", "zhihu"]
COMMUNITIES = ["c1", "c2"]


def batch_lines(now_ms, lo_s, hi_s, tag, p2_pays):
    """[partition 0 (p1), partition 1 (p2)] lines with event times spread
    over [now - hi_s, now - lo_s], ascending."""
    parts = [[], []]
    for p, prod in enumerate(["p1", "p2"]):
        n = 60
        for i in range(n):
            ts = now_ms - hi_s * 1000 + (hi_s - lo_s) * 1000 * i // n
            u = "%s-%s-u%d" % (tag, prod, i % 23)
            ch, cm = CHANNELS[i % 3], COMMUNITIES[i % 2]
            parts[p].append(event(type="exposure", event_id="%s-%s-e%d" % (tag, prod, i), ts=ts,
                                  user_id=u, product_id=prod, channel=ch, community_id=cm,
                                  content_id="k%d" % (i % 4)))
            if i % 3 == 0:
                parts[p].append(event(type="interaction", event_id="%s-%s-i%d" % (tag, prod, i),
                                      ts=ts + 1, user_id=u, product_id=prod, channel=ch,
                                      community_id=cm, action=["like", "share"][i % 2],
                                      content_id="k%d" % (i % 4)))
            if (prod == "p1" and i % 4 == 0) or (prod == "p2" and p2_pays):
                parts[p].append(event(type="payment", event_id="%s-%s-p%d" % (tag, prod, i),
                                      ts=ts + 2, user_id=u, product_id=prod, channel=ch,
                                      community_id=cm, order_id="%s-%s-o%d" % (tag, prod, i),
                                      amount=990 + i, status="paid", currency="CNY"))
    return parts


def get(port, path, token=None, timeout=10):
    """(status, parsed JSON or text) of GET http://127.0.0.1:port{path}."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=scaled(timeout)) as r:
            body, status, ctype = r.read().decode(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body, status, ctype = e.read().decode(), e.code, e.headers.get("Content-Type", "")
    return status, json.loads(body) if ctype.startswith("application/json") else body


class Serve(Funneld):
    """One `funneld serve` process (the read-only instance)."""

    def __init__(self, binary, cfg_path, log_path, env=None):
        self.cfg_path = cfg_path
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.proc = subprocess.Popen([str(binary), "serve", "-c", str(cfg_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.started = time.monotonic()


class WebEnv:
    def __init__(self, stack, tmp):
        self.stack = stack
        self.ctx = Ctx(stack, None, tmp, "web")
        self.dir = Path(tmp)
        self.r = stack.redis()
        self.prefix = self.ctx.prefix
        self.topic = "webin." + self.ctx.group[2:]
        self.now0 = int(time.time() * 1000)
        self.parts = batch_lines(self.now0, 600, 1200, "b1", p2_pays=True)
        self.data = self.dir / "data"
        self.ends = produce_crafted(stack, self.data, self.topic, "mixed", self.parts, self.now0)
        self.port = free_port()
        self.cfg = self.config(self.port)
        self.run = self.ctx.start(self.cfg)
        self.serves = []

    def config(self, port, redis_url=None, **http):
        h = {"listen": "127.0.0.1:%d" % port, "sse_heartbeat_ms": 1000}
        h.update(http)
        return self.ctx.config({self.topic: "mixed"}, redis_url=redis_url, http=h, lateness_s=120,
                               alerts={"eval_interval_ms": EVAL_MS, "rules": [RULE],
                                       "kafka": {"enabled": False}})

    def serve(self, env=None, redis_url=None, **http):
        port = free_port()
        cfg = self.config(port, redis_url, **http)
        n = len(self.ctx.procs) + 1
        p = Serve(funneld_bin(), cfg, self.dir / ("serve-%d.log" % n), env=env)
        self.ctx.procs.append(p)
        p.port = port
        wait_until("funneld serve answering", lambda: self._answers(port, p), 30, p)
        return p

    def _answers(self, port, proc):
        if not proc.alive():
            pytest.fail("funneld serve exited\n" + proc.tail(), pytrace=False)
        try:
            return get(port, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    def wait_ready(self):
        wait_drained(self.r, self.prefix, self.ctx.group, self.ends, [self.run])
        wait_until("a snapshot of every scope",
                   lambda: all(self.r.cmd("EXISTS", "%s:r:%s:1h" % (self.prefix, s)) == 1
                               for s in self.oracle()[0]["scopes"]), 60, self.run)

    def produce_batch2(self, tag="b2"):
        """The second batch (see the module's essay); returns its lines.
        Another tag gives another batch like it (its own users and orders)."""
        now = int(time.time() * 1000)
        parts = batch_lines(now, 0, 240, tag, p2_pays=False)
        produce_lines(self.stack.bootstrap, [(self.topic, p, lines, len(self.parts[p]))
                                             for p, lines in enumerate(parts)])
        for p in range(2):
            self.parts[p] += parts[p]
            (self.data / ("%s.%d.jsonl" % (self.topic, p))).write_bytes(
                b"".join(l + b"\n" for l in self.parts[p]))
            self.ends["%s:%d" % (self.topic, p)] = len(self.parts[p])
        m = json.loads((self.data / "manifest.json").read_text())
        m["events"] = sum(map(len, self.parts))
        (self.data / "manifest.json").write_text(json.dumps(m))
        self._oracle = None
        return parts

    _oracle = None

    def oracle(self):
        """(result, users) of the oracle over every line produced so far."""
        if self._oracle is None:
            self._oracle = run_oracle(self.data, int(time.time() * 1000))
        return self._oracle

    def expected_window(self, scope, frm, to, uv_span=None):
        """The oracle's sums over the m1 buckets [frm, to) of scope:
        (counters, {step: exact distinct users}); the users over uv_span
        (docs/REDIS.md, contract 2: a scope without m1 HLLs counts them over
        whole hours, from its h1 HLLs) when given."""
        res, users = self.oracle()
        sums, uv = {}, {"exposed": set(), "interacted": set(), "paid": set()}
        head = "%s:c:%s:m1:" % (ORACLE_PREFIX, scope)
        for k, h in res["counters"].items():
            if k.startswith(head) and frm <= int(k[len(head):]) < to:
                for f, v in h.items():
                    sums[f] = sums.get(f, 0) + v
        gran = "m1" if uv_span is None or m1_uniques(scope) else "h1"
        if uv_span is not None:
            frm, to = uv_span
        uhead = "%s:u:%s:%s:" % (ORACLE_PREFIX, scope, gran)
        for k, u in users.items():
            if k.startswith(uhead):
                b, step = k[len(uhead):].split(":")
                if frm <= int(b) < to and step in uv:
                    uv[step] |= u
        return sums, {s: len(v) for s, v in uv.items()}

    def check_snapshot(self, scope, snap):
        """Asserts one API snapshot (a window's fields) against the oracle."""
        span = ORACLE_MOD.uv_span(snap["to"], snap["to"] - snap["from"], m1_uniques(scope))
        if span is None:  # no whole hour in the window: no uniques
            for f in ("uv_exposed", "uv_interacted", "uv_paid", "uv_from", "uv_to",
                      "conversion_rate"):
                assert snap[f] is None, (scope, f, snap)
            span = (snap["from"], snap["from"])
            snap = dict(snap, uv_exposed=0, uv_interacted=0, uv_paid=0)
        else:
            assert (snap["uv_from"], snap["uv_to"]) == span, (scope, snap)
        sums, uv = self.expected_window(scope, snap["from"], snap["to"], span)
        for f in ("exposures", "interactions", "payments", "refunds", "revenue", "late"):
            assert snap[f] == sums.get(f, 0), (scope, f, snap[f], sums.get(f, 0))
        for f, v in sums.items():
            if f.startswith("interactions."):
                assert snap[f] == v, (scope, f)
        for s in ("exposed", "interacted", "paid"):
            assert abs(snap["uv_" + s] - uv[s]) <= hll_tolerance(uv[s]), (scope, s, snap, uv)
        e, i = sums.get("exposures", 0), sums.get("interactions", 0)
        if e:
            assert snap["interaction_rate"] == pytest.approx(i / e, abs=1e-6)
        else:
            assert snap["interaction_rate"] is None
        if snap["uv_exposed"]:
            assert snap["conversion_rate"] == pytest.approx(
                snap["uv_paid"] / snap["uv_exposed"], abs=1e-6)

    def query(self, scope):
        """`funneld query SCOPE` as parsed JSON."""
        p = subprocess.run([str(funneld_bin()), "query", scope, "-c", str(self.cfg)],
                           capture_output=True, timeout=scaled(30))
        assert p.returncode == 0, p.stderr.decode()
        return json.loads(p.stdout)

    def close(self):
        self.ctx.cleanup()
        self.r.close()


@pytest.fixture(scope="module")
def web(stack, tmp_path_factory):
    funneld_bin()
    e = WebEnv(stack, tmp_path_factory.mktemp("web"))
    try:
        e.wait_ready()
        yield e
    finally:
        e.close()
