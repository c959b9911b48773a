"""
conftest.py — the harness behind funneld's integration tests.

What it does: one pytest session starts a real Kafka broker (KRaft) and a real
redis-server with deploy/stack.sh, generates ONE stream of events
(tests/oracle/gen_stream.py, fixed seed), computes once what Redis must hold
after a single pass over it (tests/oracle/oracle.py, written from the docs,
never from funneld's code), and produces every line of every
`{topic}.{partition}.jsonl` file to exactly that partition in file order, so
that Kafka offset i is line i. Each test then runs funneld with its own
consumer group, Redis prefix and dead-letter topic, waits until
`{prefix}:offsets:{group}` holds the end offset of every partition, and
compares Redis with the oracle: every counter key and field both ways (an
absent field is 0), every HLL within 2% (±2 below 100) of the exact count or
else equal to Redis's own HLL over the exact user set (see hll_ref), and the
dead-letter topic against the oracle's rejects.

Topic sets: the session stream lives in the topics named by the manifest
("t.exposure", ...). A test that must feed the stream while funneld runs
(scale-out, Redis outage) produces the same lines into its own copy of the
topics, named with a suffix ("t.exposure.so"); the type mapping is the same,
so the oracle's counters hold unchanged and only the offsets/DLQ topic names
carry the suffix.

Invariants a reader must not break: a test never shares a group, prefix or
DLQ topic with another; every process started here is stopped here, by pid;
the stack is always brought down (stack.sh down) even when a fixture fails;
nothing skips: a missing binary, oracle or stack is a failure.

Timeouts scale with FD_TIMEOUT_SCALE. FD_IT_EVENTS and FD_IT_SEED override
the stream size and seed (for debugging only; the suite's claim is about the
default 200,000 events).

Redis is read with the tiny RESP client below (no redis-py dependency).
"""

import collections
import functools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "deploy" / "stack.sh"
GEN_STREAM = REPO / "tests" / "oracle" / "gen_stream.py"
ORACLE = REPO / "tests" / "oracle" / "oracle.py"
SCALE = float(os.environ.get("FD_TIMEOUT_SCALE") or 1)
SEED = int(os.environ.get("FD_IT_SEED") or 20240611)
NEVENTS = int(os.environ.get("FD_IT_EVENTS") or 200000)
ORACLE_PREFIX = "ORACLEPFX"
FLUSH_MS = 200

# Kafka group settings for every funneld run: a SIGKILLed member is evicted
# after 6 s (the broker's minimum) instead of librdkafka's 45 s default, so a
# restart gets its partitions back quickly.
KAFKA_PROPS = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "auto.offset.reset": "earliest",
}

TEST_ORDER = ["test_harness", "test_cli", "test_exactness", "test_replay",
              "test_crash", "test_scaleout", "test_redis_outage"]


def scaled(seconds):
    return seconds * SCALE


def pytest_collection_modifyitems(session, config, items):
    """Runs the cheap, most diagnostic tests first (exactness before replay,
    which compares with the exactness test's prefix)."""
    def rank(item):
        mod = item.module.__name__.rsplit(".", 1)[-1]
        return TEST_ORDER.index(mod) if mod in TEST_ORDER else len(TEST_ORDER)
    items.sort(key=rank)


# ================================================================ RESP client

class RedisError(Exception):
    pass


class Redis:
    """A minimal RESP2 client: commands as byte/str/int arguments, replies as
    str (status), RedisError (error, returned inside pipelines, raised by
    cmd), int, bytes, None or lists."""

    def __init__(self, host, port, timeout=30.0):
        self.addr = (host, int(port))
        self.timeout = timeout
        self.sock = None
        self.f = None

    def connect(self):
        self.close()
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=1 << 16)

    def close(self):
        for x in (self.f, self.sock):
            try:
                if x is not None:
                    x.close()
            except OSError:
                pass
        self.sock = self.f = None

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode("utf-8", "surrogateescape")
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("redis closed the connection")
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line[:80])

    def pipeline(self, cmds):
        if self.sock is None:
            self.connect()
        try:
            self.sock.sendall(b"".join(self._encode(c) for c in cmds))
            return [self._read() for _ in cmds]
        except (OSError, ConnectionError):
            self.close()
            raise

    def cmd(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RedisError):
            raise r
        return r


def dec(b):
    return b.decode("utf-8", "surrogateescape") if isinstance(b, bytes) else b


def scan_keys(r, pattern):
    keys, cursor = [], b"0"
    while True:
        cursor, batch = r.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 5000)
        keys.extend(batch)
        if cursor in (b"0", 0, "0"):
            return sorted(set(keys))


def batched(seq, n=1000):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def read_counters(r, prefix):
    """All `{prefix}:c:*` hashes as {key: {field: int-or-raw-text}}."""
    out = {}
    keys = scan_keys(r, prefix + ":c:*")
    for chunk in batched(keys):
        for k, rep in zip(chunk, r.pipeline([("HGETALL", k) for k in chunk])):
            if isinstance(rep, RedisError):
                out[dec(k)] = {"<error>": str(rep)}
                continue
            h = {}
            for f, v in zip(rep[::2], rep[1::2]):
                try:
                    h[dec(f)] = int(v)
                except ValueError:
                    h[dec(f)] = "non-integer %r" % v
            out[dec(k)] = h
    return out


def read_distinct(r, prefix):
    """All `{prefix}:u:*` HLLs as {key: PFCOUNT}."""
    out = {}
    keys = scan_keys(r, prefix + ":u:*")
    for chunk in batched(keys):
        for k, rep in zip(chunk, r.pipeline([("PFCOUNT", k) for k in chunk])):
            out[dec(k)] = rep if isinstance(rep, int) else "error: %s" % rep
    return out


def read_hash(r, key):
    rep = r.cmd("HGETALL", key) or []
    return {dec(f): dec(v) for f, v in zip(rep[::2], rep[1::2])}


# ================================================================ comparisons

def _fmt_diffs(what, diffs, extra=""):
    head = "\n  ".join(diffs[:10])
    more = "" if len(diffs) <= 10 else "\n  ... and %d more" % (len(diffs) - 10)
    return "%d differences in %s (expected vs actual); first 10:\n  %s%s%s" % (
        len(diffs), what, head, more, extra)


def _totals(counters, prefix):
    """Sum of each field over the `all` scope's d1 buckets (diagnostic)."""
    tot = collections.Counter()
    lead = prefix + ":c:all:d1:"
    for k, h in counters.items():
        if k.startswith(lead):
            for f, v in h.items():
                if isinstance(v, int):
                    tot[f] += v
    return dict(sorted(tot.items()))


def counter_diffs(expected, actual):
    diffs = []
    for key in sorted(set(expected) | set(actual)):
        e = expected.get(key, {})
        a = actual.get(key)
        if a is None:
            if any(v != 0 for v in e.values()):
                diffs.append("key %s: expected %s, missing in Redis" % (key, e))
            continue
        for f in sorted(set(e) | set(a)):
            ev, av = e.get(f, 0), a.get(f, 0)
            if ev != av:
                diffs.append("%s [%s]: expected %s, actual %s" % (key, f, ev, av))
    return diffs


def assert_counters(expected, actual, prefix, what="counters"):
    diffs = counter_diffs(expected, actual)
    if diffs:
        extra = ("\n  keys: expected %d, actual %d"
                 "\n  all/d1 totals expected: %s"
                 "\n  all/d1 totals actual:   %s" % (
                     len(expected), len(actual), _totals(expected, prefix),
                     _totals(actual, prefix)))
        pytest.fail(_fmt_diffs(what, diffs, extra), pytrace=False)


def hll_tolerance(n):
    return 2 if n < 100 else 0.02 * n


def assert_distinct(expected, actual, what="HLL distinct counts", ref=None,
                    prefix=""):
    """PFCOUNT within hll_tolerance of the exact count, or equal to Redis's
    own HLL over the exact set (ref, keyed without prefix)."""
    ref = ref or {}
    diffs = []
    for key in sorted(set(expected) | set(actual)):
        e = expected.get(key, 0)
        a = actual.get(key)
        if a is None:
            if e != 0:
                diffs.append("key %s: expected %d, missing in Redis" % (key, e))
            continue
        if not isinstance(a, int) or abs(a - e) > hll_tolerance(e):
            rv = ref.get(key[len(prefix):])
            if a != rv:
                diffs.append("%s: expected %d (exact; reference HLL %s), PFCOUNT %s"
                             % (key, e, rv, a))
    if diffs:
        pytest.fail(_fmt_diffs(what, diffs, "\n  keys: expected %d, actual %d"
                               % (len(expected), len(actual))), pytrace=False)


# ================================================================ the stream

class Stream:
    """The generated stream, its lines in memory, and the oracle's answer
    (keys stored with ORACLE_PREFIX; for_prefix() rewrites them)."""

    def __init__(self, d, now_ms, manifest, lines, expected):
        self.dir = d
        self.now_ms = now_ms
        self.manifest = manifest
        self.topics = {t: (info["type"], int(info["partitions"]))
                       for t, info in manifest["topics"].items()}
        self.lines = lines          # (topic, partition) -> [bytes]
        self.expected = expected
        self.rejects = expected["rejects"]
        self.counts = {(t, p): len(v) for (t, p), v in lines.items()}
        self.total = sum(self.counts.values())
        self.registry = {}          # cross-test facts, e.g. "kafka_prefix"

    def files(self):
        return [(t, p, self.dir / ("%s.%d.jsonl" % (t, p)))
                for (t, p) in sorted(self.lines)]

    @staticmethod
    def _rekey(d, prefix):
        n = len(ORACLE_PREFIX)
        return {prefix + k[n:]: v for k, v in d.items()}

    def counters_for(self, prefix):
        return self._rekey(self.expected["counters"], prefix)

    def distinct_for(self, prefix):
        return self._rekey(self.expected["distinct"], prefix)

    def scopes(self):
        """Every scope id in the oracle's keys."""
        out = set()
        n = len(ORACLE_PREFIX) + len(":c:")
        for k in self.expected["counters"]:
            out.add(k[n:].rsplit(":", 2)[0])
        return out


def _run(cmd, timeout, what, **kw):
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True,
                           timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail("%s timed out after %.0fs: %s" % (what, timeout, e), pytrace=False)
    if p.returncode != 0:
        pytest.fail("%s failed (exit %d)\nstdout:\n%s\nstderr:\n%s" % (
            what, p.returncode, p.stdout.decode(errors="replace")[-3000:],
            p.stderr.decode(errors="replace")[-3000:]), pytrace=False)
    return p


def read_lines(path):
    """One message per line; the final '\\n' ends the last line, any other
    empty line is an (empty) message — the oracle's rule."""
    data = Path(path).read_bytes()
    if data == b"":
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def run_oracle(d, now_ms):
    """Runs tests/oracle/oracle.py in-process (its Oracle class, as its own
    compute() does) so that, besides the expected counts, the exact user set
    behind every HLL is at hand: {full oracle key: set(user id text)}."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("fd_oracle", ORACLE)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        _, parts = mod.load_manifest(str(d))
        o = mod.Oracle(now_ms, prefix=ORACLE_PREFIX)
        for topic, p, ttype in parts:
            name = "%s.%d.jsonl" % (topic, p)
            path = d / name
            o.run_partition(name, topic, p, ttype,
                            mod.read_lines(str(path)) if path.exists() else [])
        res = o.result()
        users = {"%s:u:%s:%s:%s:%s" % (ORACLE_PREFIX, sc, g, b, st): u
                 for (sc, g, b, st), u in o.distinct.items()}
    except SystemExit as e:
        pytest.fail("oracle.py refused the stream: %s" % e, pytrace=False)
    except (AttributeError, TypeError, ValueError) as e:
        pytest.fail("tests/oracle/oracle.py API is not what the harness expects "
                    "(%r)" % e, pytrace=False)
    assert set(users) == set(res["distinct"]), "oracle users/distinct disagree"
    return res, users


@pytest.fixture(scope="session")
def stream(tmp_path_factory):
    for f in (GEN_STREAM, ORACLE):
        if not f.exists():
            pytest.fail("missing %s" % f, pytrace=False)
    d = tmp_path_factory.mktemp("stream")
    now_ms = int(time.time()) * 1000
    t0 = time.monotonic()
    _run([sys.executable, GEN_STREAM, "--seed", SEED, "--events", NEVENTS,
          "--out", d, "--now-ms", now_ms], scaled(300), "gen_stream.py")
    t1 = time.monotonic()
    expected, users = run_oracle(d, now_ms)
    t2 = time.monotonic()
    manifest = json.loads((d / "manifest.json").read_text())
    lines = {}
    for topic, info in manifest["topics"].items():
        for p in range(int(info["partitions"])):
            path = d / ("%s.%d.jsonl" % (topic, p))
            lines[(topic, p)] = read_lines(path) if path.exists() else []
    s = Stream(d, now_ms, manifest, lines, expected)
    s.users = users
    want = {"%s:%d" % k: n for k, n in s.counts.items()}
    assert expected["offsets"] == want, "oracle offsets disagree with the files"
    assert s.total >= NEVENTS, "stream has %d lines, asked for %d events" % (
        s.total, NEVENTS)
    print("stream: %d lines in %d partitions, %d rejects, %d counter keys "
          "(gen %.1fs, oracle %.1fs)" % (
              s.total, len(lines), len(s.rejects), len(expected["counters"]),
              t1 - t0, t2 - t1))
    return s


@pytest.fixture(scope="session")
def hll_ref(stack, stream):
    """Redis's own HLL over each exact user set: {key minus prefix: PFCOUNT}.

    An HLL estimate depends only on the set of elements added, so funneld's
    PFCOUNT must land within tolerance of the exact count OR equal this
    reference. The second clause is needed: with ~220,000 HLL keys a handful
    are legitimately more than 2% off (measured: 6 keys for the default seed,
    e.g. 290 users -> PFCOUNT 283), identically for any correct writer."""
    r = stack.redis()
    ref = {}
    n = len(ORACLE_PREFIX)
    for chunk in batched(sorted(stream.users.items()), 500):
        cmds = []
        for i, (k, users) in enumerate(chunk):
            key = "itref:hll:%d" % i
            cmds += [("DEL", key), ("PFADD", key, *users), ("PFCOUNT", key)]
        reps = r.pipeline(cmds)
        for i, (k, _) in enumerate(chunk):
            ref[k[n:]] = reps[3 * i + 2]
    r.pipeline([("DEL", "itref:hll:%d" % i) for i in range(500)])
    stream.hll_ref = ref
    return ref


# ================================================================ the stack

class Stack:
    def __init__(self, d, env):
        self.dir = d
        self.env = env
        self.bootstrap = env["KAFKA_BOOTSTRAP"]
        self.redis_port = int(env["REDIS_PORT"])
        self.redis_url = env["REDIS_URL"]
        self.kafka_pid = int(env["KAFKA_PID"])
        self.redis_pid = int(env["REDIS_PID"])

    def redis(self):
        return Redis("127.0.0.1", self.redis_port)

    def script(self, *args, timeout=120):
        return _run(["bash", STACK_SH, *args], scaled(timeout),
                    "stack.sh %s" % " ".join(str(a) for a in args))


def _stack_env(path):
    env = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not STACK_SH.exists():
        pytest.fail("missing %s" % STACK_SH, pytrace=False)
    d = tmp_path_factory.mktemp("stack")
    try:
        p = subprocess.run(["bash", str(STACK_SH), "up", str(d)],
                           capture_output=True, timeout=scaled(300))
        if p.returncode != 0 or not (d / "stack.env").exists():
            pytest.fail("stack.sh up failed (exit %d):\n%s" % (
                p.returncode, p.stderr.decode(errors="replace")[-4000:]),
                pytrace=False)
        st = Stack(d, _stack_env(d / "stack.env"))
        assert st.redis().cmd("PING") == "PONG"
        yield st
    finally:
        subprocess.run(["bash", str(STACK_SH), "down", str(d)],
                       capture_output=True, timeout=scaled(120))


# ================================================================ Kafka helpers

def _kafka():
    import confluent_kafka  # noqa: F401  (fail here, readably, if missing)
    return confluent_kafka


def create_topics(bootstrap, specs, timeout=60):
    """specs: {name: partitions}. Waits until every partition has a leader."""
    ck = _kafka()
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(n, num_partitions=k, replication_factor=1)
                          for n, k in specs.items()], operation_timeout=30)
    for n, f in fs.items():
        try:
            f.result(timeout=scaled(timeout))
        except ck.KafkaException as e:
            if e.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + scaled(timeout)
    while True:
        md = a.list_topics(timeout=10)
        ok = all(n in md.topics and md.topics[n].error is None
                 and len(md.topics[n].partitions) == k
                 and all(pm.leader >= 0 for pm in md.topics[n].partitions.values())
                 for n, k in specs.items())
        if ok:
            return
        if time.monotonic() > deadline:
            pytest.fail("topics %s not ready" % sorted(specs), pytrace=False)
        time.sleep(0.2)


def produce_lines(bootstrap, jobs, timeout=180):
    """jobs: [(topic, partition, lines, first_index)]. Produces lines in order
    to that exact partition with an idempotent producer and asserts every
    delivery succeeded at offset first_index + i (the topic must have held
    exactly first_index messages before)."""
    ck = _kafka()
    prod = ck.Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576,
    })
    bad = []
    got = collections.Counter()

    def on_delivery(topic, part, want, err, msg):
        if err is not None:
            bad.append("%s[%d] line %d: %s" % (topic, part, want, err))
        elif msg.offset() != want or msg.partition() != part:
            bad.append("%s[%d] line %d landed at [%d]@%d" % (
                topic, part, want, msg.partition(), msg.offset()))
        else:
            got[(topic, part)] += 1

    sent = 0
    for topic, part, lines, first in jobs:
        for i, value in enumerate(lines):
            cb = functools.partial(on_delivery, topic, part, first + i)
            while True:
                try:
                    prod.produce(topic, value=value, partition=part, on_delivery=cb)
                    break
                except BufferError:
                    prod.poll(0.05)
            sent += 1
            if sent % 1000 == 0:
                prod.poll(0)
    left = prod.flush(scaled(timeout))
    assert left == 0, "%d messages still undelivered after %ds" % (left, timeout)
    assert not bad, "delivery failures (first 10):\n  " + "\n  ".join(bad[:10])
    for topic, part, lines, first in jobs:
        assert got[(topic, part)] == len(lines), (topic, part, got[(topic, part)])


def read_topic(bootstrap, topic, timeout=120):
    """Every message of a topic, from the beginning to the end offsets taken
    at the start: [(partition, offset, value, {header: str})]. Repeated
    headers keep the last value."""
    ck = _kafka()
    c = ck.Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "it-reader-" + uuid.uuid4().hex[:8],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        md = c.list_topics(topic, timeout=10)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None:
            return []
        ends, assign = {}, []
        for p in sorted(tmd.partitions):
            lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
            if hi > lo:
                ends[p] = hi
                assign.append(ck.TopicPartition(topic, p, lo))
        out = []
        if not assign:
            return out
        c.assign(assign)
        deadline = time.monotonic() + scaled(timeout)
        while ends:
            if time.monotonic() > deadline:
                pytest.fail("reading %s: partitions %s not read to the end" % (
                    topic, sorted(ends)), pytrace=False)
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == ck.KafkaError._PARTITION_EOF:
                        continue
                    raise ck.KafkaException(m.error())
                p = m.partition()
                hdr = {}
                for k, v in (m.headers() or []):
                    hdr[k] = dec(v) if v is not None else None
                out.append((p, m.offset(), m.value(), hdr))
                if p in ends and m.offset() + 1 >= ends[p]:
                    del ends[p]
        return out
    finally:
        c.close()


def describe_group(bootstrap, group):
    """{client_id: [(topic, partition)]} of a consumer group's members, or
    {} (a client id held by two members shows as "id#2")."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap})
    try:
        d = a.describe_consumer_groups([group])[group].result(timeout=10)
    except Exception:  # group not there yet
        return {}
    out = {}
    for m in d.members:
        cid = m.client_id
        while cid in out:
            cid += "#2"
        out[cid] = sorted((tp.topic, tp.partition)
                          for tp in m.assignment.topic_partitions)
    return out


class TopicSet:
    """The stream's topics under one name suffix ("" = the manifest's)."""

    def __init__(self, stack, stream, suffix):
        self.stack = stack
        self.stream = stream
        self.suffix = suffix
        self.produced = {k: 0 for k in stream.lines}

    def name(self, base):
        return base + self.suffix

    def base(self, name):
        assert name.endswith(self.suffix), name
        return name[:len(name) - len(self.suffix)] if self.suffix else name

    def create(self):
        create_topics(self.stack.bootstrap,
                      {self.name(t): n for t, (_, n) in self.stream.topics.items()})
        return self

    def produce(self, upto=1.0):
        """Produces each partition's lines up to the fraction `upto`."""
        jobs = []
        for (t, p), lines in sorted(self.stream.lines.items()):
            hi = len(lines) if upto >= 1.0 else int(len(lines) * upto)
            lo = self.produced[(t, p)]
            if hi > lo:
                jobs.append((self.name(t), p, lines[lo:hi], lo))
                self.produced[(t, p)] = hi
        if jobs:
            produce_lines(self.stack.bootstrap, jobs)
        return self

    def config_topics(self):
        return {self.name(t): ty for t, (ty, _) in self.stream.topics.items()}

    def end_offsets(self):
        """{"topic:partition": line count}: where a drained group ends."""
        return {"%s:%d" % (self.name(t), p): n
                for (t, p), n in self.stream.counts.items()}

    def line(self, topic, partition, offset):
        return self.stream.lines[(self.base(topic), partition)][offset]

    def expected_rejects(self):
        """{(topic, partition, offset): (reason, field)}."""
        return {(self.name(r["topic"]), int(r["partition"]), int(r["offset"])):
                (r["reason"], r.get("field") or "-")
                for r in self.stream.rejects}


@pytest.fixture(scope="session")
def main_topics(stack, stream):
    """The session stream in the manifest's topics, fully produced."""
    t0 = time.monotonic()
    ts = TopicSet(stack, stream, "").create().produce(1.0)
    print("produced %d messages in %.1fs" % (stream.total, time.monotonic() - t0))
    return ts


# ================================================================ funneld

def funneld_bin():
    p = Path(os.environ.get("FUNNELD_BIN") or REPO / "build" / "funneld")
    if not p.is_absolute():
        p = REPO / p
    if not (p.exists() and os.access(p, os.X_OK)):
        pytest.fail("funneld binary not found at %s (set FUNNELD_BIN)" % p,
                    pytrace=False)
    return p


class Funneld:
    """One `funneld run` process; stderr+stdout go to its own log file."""

    def __init__(self, binary, cfg_path, log_path, args=(), preexec_fn=None):
        self.cfg_path = cfg_path
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "run", "-c", str(cfg_path), *map(str, args)],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.started = time.monotonic()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.logf.close()

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status (fails the test on a hang).
        A process younger than 2 s is given those 2 s first: a SIGTERM that
        lands before main() installs its handler kills it with -15, which
        says nothing about funneld's shutdown path."""
        young = self.started + 2.0 - time.monotonic()
        if young > 0:
            time.sleep(young)
        if self.alive():
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            pytest.fail("funneld pid %d ignored SIGTERM for %ds\n%s" % (
                self.pid, timeout, self.tail()), pytrace=False)
        self.logf.close()
        return rc

    def tail(self, n=30):
        try:
            lines = Path(self.log_path).read_bytes().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "--- %s (pid %d, %s) last %d lines:\n%s" % (
            self.log_path, self.pid,
            "running" if self.alive() else "exit %s" % self.proc.returncode,
            n, "\n".join(lines[-n:]))


def kill_all(procs):
    """SIGKILL every Funneld still running and close every log."""
    for p in procs:
        if p.alive():
            p.kill()
        if not p.logf.closed:
            p.logf.close()


class Ctx:
    """Per-test names (group, prefix, DLQ topic), config writer and process
    launcher. Every process it started is SIGKILLed at teardown if still up."""

    seq = 0

    def __init__(self, stack, stream, workdir, name):
        Ctx.seq += 1
        tag = "%s-%s" % (name, uuid.uuid4().hex[:6])
        self.stack = stack
        self.stream = stream
        self.dir = workdir
        self.group = "g-" + tag
        self.prefix = "it%d%s" % (Ctx.seq, uuid.uuid4().hex[:4])
        self.dlq = "dlq." + tag
        self.procs = []
        self.nconf = 0
        create_topics(stack.bootstrap, {self.dlq: 1})

    def config(self, topics, redis_url=None, props=None, **top):
        kp = dict(KAFKA_PROPS)
        kp.update(props or {})
        cfg = {
            "kafka": {"brokers": self.stack.bootstrap, "group": self.group,
                      "topics": topics.config_topics() if isinstance(topics, TopicSet)
                      else topics,
                      "dlq_topic": self.dlq, "properties": kp},
            "redis": {"url": redis_url or self.stack.redis_url,
                      "prefix": self.prefix},
            "flush_interval_ms": FLUSH_MS,
            "snapshot_interval_ms": 1000,
            "http": {"listen": ""},
        }
        cfg.update(top)
        self.nconf += 1
        path = self.dir / ("funneld-%d.json" % self.nconf)
        path.write_text(json.dumps(cfg, indent=2))
        return path

    def start(self, cfg_path, args=(), preexec_fn=None):
        """preexec_fn runs in the child before exec (e.g. to set a ulimit)."""
        n = len(self.procs) + 1
        p = Funneld(funneld_bin(), cfg_path, self.dir / ("funneld-%d.log" % n), args,
                    preexec_fn)
        self.procs.append(p)
        return p

    def tails(self):
        return "\n".join(p.tail() for p in self.procs)

    def cleanup(self):
        kill_all(self.procs)


def make_ctx(request, stack, stream, tmp_path):
    """The body of a Ctx fixture: a Ctx named after the test (its own group,
    prefix and DLQ topic), cleaned up after it, with the processes' log
    tails printed when the test failed. stream None: a crafted stream."""
    funneld_bin()
    c = Ctx(stack, stream, tmp_path, request.node.name.replace("test_", "")[:24])
    yield c
    failed = getattr(request.node, "rep_call", None)
    c.cleanup()
    if failed is not None and failed.failed:
        print(c.tails())


@pytest.fixture
def ctx(request, stack, stream, hll_ref, tmp_path):
    yield from make_ctx(request, stack, stream, tmp_path)


def pid_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    setattr(item, "rep_" + rep.when, rep)


# ================================================================ waiting

def offsets_progress(r, prefix, group):
    h = read_hash(r, "%s:offsets:%s" % (prefix, group))
    out = {}
    for k, v in h.items():
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = -1
    return out


def last_flush_ms(r, prefix, group):
    """Wall-clock ms of the latest flush that carried events, from
    {prefix}:seen:{group}: "a snapshot written after the drain" means
    updated_at above this, whenever the harness noticed the drain."""
    return max(int(v) for v in r.cmd("HVALS", "%s:seen:%s" % (prefix, group)))


def wait_drained(r, prefix, group, end_offsets, procs=(), timeout=150,
                 must_stay_alive=True):
    """Waits until `{prefix}:offsets:{group}` equals end_offsets for every
    partition. Fails readably on timeout, on an offset past the end, or when
    one of procs exits (if must_stay_alive)."""
    deadline = time.monotonic() + scaled(timeout)
    got = {}
    while True:
        try:
            got = offsets_progress(r, prefix, group)
        except (OSError, ConnectionError):
            got = got or {}
            r.close()
        past = {k: v for k, v in got.items() if k in end_offsets and v > end_offsets[k]}
        if past:
            pytest.fail("offsets past the end of the input: %s (ends %s)" % (
                past, {k: end_offsets[k] for k in past}), pytrace=False)
        if all(got.get(k, 0) == v for k, v in end_offsets.items()):
            return got
        if must_stay_alive:
            dead = [p for p in procs if not p.alive()]
            if dead:
                pytest.fail("funneld exited before draining (exit %s); offsets %s\n%s"
                            % (dead[0].proc.returncode, _progress_text(got, end_offsets),
                               "\n".join(p.tail() for p in procs)), pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("not drained after %.0fs; offsets %s\n%s" % (
                scaled(timeout), _progress_text(got, end_offsets),
                "\n".join(p.tail() for p in procs)), pytrace=False)
        time.sleep(0.1)


def _progress_text(got, ends):
    return ", ".join("%s %s/%d" % (k, got.get(k, "-"), v) for k, v in sorted(ends.items()))


def total_progress(r, prefix, group, end_offsets):
    got = offsets_progress(r, prefix, group)
    return sum(min(got.get(k, 0), v) for k, v in end_offsets.items())


# ================================================================ checks

def check_redis_equals_oracle(r, stream, prefix):
    """Counters exact, HLLs within tolerance (or equal to the reference HLL,
    see hll_ref); returns (counters, distinct)."""
    counters = read_counters(r, prefix)
    assert_counters(stream.counters_for(prefix), counters, prefix)
    distinct = read_distinct(r, prefix)
    assert_distinct(stream.distinct_for(prefix), distinct,
                    ref=getattr(stream, "hll_ref", None), prefix=prefix)
    return counters, distinct


def check_dlq(topics, dlq_msgs, exactly_once):
    """The DLQ against the oracle's rejects: each malformed message present
    (exactly once, or at least once), with the oracle's reason and field
    headers and the original bytes as value; nothing else in it."""
    want = topics.expected_rejects()
    seen = collections.Counter()
    problems = []
    for part, off, value, hdr in dlq_msgs:
        try:
            src = (hdr.get("source.topic"), int(hdr.get("source.partition")),
                   int(hdr.get("source.offset")))
        except (TypeError, ValueError):
            problems.append("DLQ %d@%d: bad source headers %s" % (part, off, hdr))
            continue
        seen[src] += 1
        if src not in want:
            problems.append("DLQ %d@%d: %s:%d@%d is not a rejected message "
                            "(headers %s)" % (part, off, *src, hdr))
            continue
        reason, field = want[src]
        hf = hdr.get("field") or "-"
        if hdr.get("reason") != reason or hf != field:
            problems.append("%s:%d@%d: expected reason=%s field=%s, DLQ has "
                            "reason=%s field=%s" % (*src, reason, field,
                                                    hdr.get("reason"), hf))
        if value != topics.line(*src):
            problems.append("%s:%d@%d: DLQ value differs from the original "
                            "bytes (%r... vs %r...)" % (
                                *src, (value or b"")[:60], topics.line(*src)[:60]))
    for src in sorted(want):
        if seen[src] == 0:
            problems.append("%s:%d@%d (%s/%s) missing from the DLQ" % (
                *src, *want[src]))
        elif exactly_once and seen[src] > 1:
            problems.append("%s:%d@%d is %d times in the DLQ" % (*src, seen[src]))
    if problems:
        pytest.fail(_fmt_diffs("the dead-letter topic", problems,
                               "\n  DLQ messages %d, expected rejects %d" % (
                                   len(dlq_msgs), len(want))), pytrace=False)


def redis_server_cmd(port, rdir, *extra):
    """The redis-server command line stack.sh redis-up uses (same order), so a
    restart we do ourselves runs with the same settings, port and dir."""
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--protected-mode", "no", "--daemonize", "no", "--save", "",
            "--appendonly", "no", "--dir", str(rdir),
            "--logfile", str(Path(rdir) / "redis.log"), *funneld_redis_settings(), *extra]


def funneld_redis_settings():
    """deploy/redis.conf's funneld block as redis-server arguments, as
    stack.sh's funneld_redis_settings gives them."""
    out, inside = [], False
    for line in (REPO / "deploy" / "redis.conf").read_text().splitlines():
        if line.startswith("# ---- funneld:"):
            inside = True
        elif line.startswith("# ---- end funneld"):
            inside = False
        elif inside and not line.startswith("#") and len(line.split()) == 2:
            name, value = line.split()
            out += ["--" + name, value]
    return out


def wait_ping(port, timeout=20):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            r = Redis("127.0.0.1", port, timeout=2)
            if r.cmd("PING") == "PONG":
                return r
        except (OSError, ConnectionError, RedisError):
            pass
        if time.monotonic() > deadline:
            pytest.fail("redis on %d did not answer PING" % port, pytrace=False)
        time.sleep(0.05)


def rng_for(name):
    return random.Random("%d:%s" % (SEED, name))
