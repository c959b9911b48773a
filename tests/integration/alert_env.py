"""
alert_env.py — per-test environment for the alert tests: names (Redis
prefix, consumer group, topics), the config writer, funneld processes (run
and replay) and readers for what funneld wrote (the transition stream, the
evaluation cursor, the alert states, the Kafka alert topic).

Every test gets its own prefix, group and topics, so tests never see each
other's alerts. The evaluating instances are `funneld run` processes that
consume an empty per-test topic; events reach Redis through `funneld replay`
with the same group and prefix, so the run instances see the replay's
watermark in `{prefix}:wm:{group}` and evaluate over it (replay itself never
evaluates alerts). Every process started here is stopped here, by pid.
"""

import json
import subprocess
import time
import uuid

import pytest

from conftest import (KAFKA_PROPS, Funneld, create_topics, dec, funneld_bin, kill_all,
                      scaled)

LATENESS_S = 120


def max_ts_ms(path):
    hi = 0
    with open(path, "rb") as f:
        for line in f:
            i = line.find(b'"ts":')
            if i >= 0:
                j = line.find(b",", i)
                hi = max(hi, int(line[i + 5:j]))
    return hi


def last_step_s(max_ts):
    """The last evaluation step the watermark passes: the minute at or
    below max event time minus the allowed lateness."""
    return ((max_ts - LATENESS_S * 1000) // 60000) * 60


class AlertEnv:
    seq = 0

    def __init__(self, stack, workdir, name):
        AlertEnv.seq += 1
        tag = "%s-%s" % (name, uuid.uuid4().hex[:6])
        self.stack = stack
        self.dir = workdir
        self.prefix = "al%d%s" % (AlertEnv.seq, uuid.uuid4().hex[:4])
        self.group = "ga-" + tag
        self.topic = "alin." + tag
        self.dlq = "aldlq." + tag
        self.alert_topic = "alout." + tag
        self.procs = []
        self.nconf = 0
        self.r = stack.redis()
        create_topics(stack.bootstrap, {self.topic: 1, self.dlq: 1, self.alert_topic: 1})

    # ------------------------------------------------------------ config

    def config(self, rules, **alerts):
        a = {"eval_interval_ms": 200, "max_catchup_s": 86400, "rules": rules,
             "kafka": {"enabled": False, "topic": self.alert_topic},
             # 15 s: the receivers record a request before answering it, so
             # a request timed out on a starved machine and retried would be
             # recorded twice and break the tests' exactly-once checks.
             "http": {"timeout_ms": 15000, "backoff_min_ms": 200, "backoff_max_ms": 3000}}
        for k, v in alerts.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                a[k] = dict(a[k], **v)
            else:
                a[k] = v
        cfg = {
            "kafka": {"brokers": self.stack.bootstrap, "group": self.group,
                      "topics": {self.topic: "mixed"}, "dlq_topic": self.dlq,
                      "properties": dict(KAFKA_PROPS)},
            "redis": {"url": self.stack.redis_url, "prefix": self.prefix},
            "flush_interval_ms": 200,
            "snapshot_interval_ms": 1000,
            "groupings": [[], ["product"]],
            "lateness_s": LATENESS_S,
            "http": {"listen": ""},
            "alerts": a,
        }
        self.nconf += 1
        path = self.dir / ("alerts-%d.json" % self.nconf)
        path.write_text(json.dumps(cfg, indent=2))
        return path

    # ------------------------------------------------------------ processes

    def start(self, cfg, env=None):
        n = len(self.procs) + 1
        p = Funneld(funneld_bin(), cfg, self.dir / ("funneld-%d.log" % n))
        self.procs.append(p)
        return p

    def replay(self, cfg, path, timeout=180):
        log = self.dir / ("replay-%d.log" % len(self.procs))
        with open(log, "ab") as f:
            try:
                p = subprocess.run([str(funneld_bin()), "replay", "-c", str(cfg), str(path)],
                                   stdin=subprocess.DEVNULL, stdout=f,
                                   stderr=subprocess.STDOUT, timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                pytest.fail("funneld replay did not finish in %.0fs" % scaled(timeout),
                            pytrace=False)
        assert p.returncode == 0, "replay exited %d:\n%s" % (
            p.returncode, log.read_text(errors="replace")[-3000:])

    def tails(self):
        return "\n".join(p.tail(40) for p in self.procs)

    def cleanup(self):
        kill_all(self.procs)
        self.r.close()

    # ------------------------------------------------------------ readers

    def cursor(self):
        v = self.r.cmd("GET", "%s:alert:cursor" % self.prefix)
        return int(v) if v else 0

    def stream(self):
        """Transitions in stream order: [(stream id, parsed JSON)]."""
        out = []
        for sid, fields in self.r.cmd("XRANGE", "%s:alerts" % self.prefix, "-", "+") or []:
            f = {dec(k): dec(v) for k, v in zip(fields[::2], fields[1::2])}
            out.append((dec(sid), json.loads(f["json"])))
        return out

    def transitions(self, state=None):
        return [t for _, t in self.stream() if state is None or t["state"] == state]

    def lease_holder(self):
        v = self.r.cmd("GET", "%s:lease:alerts" % self.prefix)
        return dec(v) if v else None

    def sent_cursor(self, output):
        v = self.r.cmd("GET", "%s:alert:sent:%s" % (self.prefix, output))
        return dec(v) if v else None

    def wait(self, pred, timeout, what, procs=()):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            v = pred()
            if v:
                return v
            dead = [p for p in procs if not p.alive()]
            if dead:
                pytest.fail("funneld exited while waiting for %s\n%s" % (what, self.tails()),
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("timed out after %.0fs waiting for %s (cursor %s)\n%s" % (
                    scaled(timeout), what, self.cursor(), self.tails()), pytrace=False)
            time.sleep(0.1)

    def wait_cursor(self, step_s, procs=(), timeout=90):
        return self.wait(lambda: self.cursor() >= step_s,
                         timeout, "evaluation to reach step %d" % step_s, procs)

    def read_alert_topic(self, timeout=30):
        """[(key, value dict)] of the Kafka alert topic, in order."""
        import confluent_kafka as ck
        c = ck.Consumer({"bootstrap.servers": self.stack.bootstrap,
                         "group.id": "alread-" + uuid.uuid4().hex[:6],
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            tp = ck.TopicPartition(self.alert_topic, 0)
            lo, hi = c.get_watermark_offsets(tp, timeout=10)
            out = []
            if hi <= lo:
                return out
            c.assign([ck.TopicPartition(self.alert_topic, 0, lo)])
            deadline = time.monotonic() + scaled(timeout)
            while len(out) < hi - lo and time.monotonic() < deadline:
                for m in c.consume(num_messages=100, timeout=0.5):
                    if m.error():
                        continue
                    out.append((m.key().decode(), json.loads(m.value())))
            return out
        finally:
            c.close()


@pytest.fixture
def aenv(request, stack, tmp_path):
    funneld_bin()
    e = AlertEnv(stack, tmp_path, request.node.name.replace("test_", "")[:20])
    yield e
    failed = getattr(request.node, "rep_call", None)
    e.cleanup()
    if failed is not None and failed.failed:
        print(e.tails())
