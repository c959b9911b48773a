"""
test_cli.py — `funneld check-config` and `funneld validate`.

check-config: every bad file exits with status 2 and its stderr names the
offending key (unknown top-level key, unknown nested key, wrong type, out of
bounds, bad enum, bad grouping dimension, bad redis URL, undefined ${ENV},
not JSON at all, a bad dead-letter topic name, an alert URL that is not
http(s), a librdkafka property librdkafka refuses, an http.listen the server
cannot bind); flags (-X, --set) are checked the same, and `run` refuses
them too with status 2 before connecting anywhere; a refused value's
secret is never shown; a good file exits 0, prints the effective configuration as
JSON with ${ENV} expanded and secrets masked (SPEC §7: never print a
password).

validate: on a file of good and bad lines its output equals, line for line,
the oracle's `--validate-lines` (LINE\\tREASON\\tFIELD, mixed-topic rules)
with exit status 1; on a clean file it prints nothing and exits 0; `-` reads
stdin.
"""

import copy
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ORACLE, funneld_bin, scaled

BASE = {
    "kafka": {"brokers": "127.0.0.1:9092", "group": "g1",
              "topics": {"t.exposure": "exposure", "t.interaction": "interaction",
                         "t.payment": "payment", "t.mixed": "mixed"},
              "dlq_topic": "dlq1", "properties": {"session.timeout.ms": "6000"}},
    "redis": {"url": "redis://127.0.0.1:6379", "prefix": "p1"},
    "flush_interval_ms": 200,
    "snapshot_interval_ms": 1000,
    "http": {"listen": ""},
}

UNDEF = "FD_IT_SURELY_UNDEFINED_VAR"


def with_(path, value):
    """BASE with the dotted path set to value (created if absent)."""
    cfg = copy.deepcopy(BASE)
    node = cfg
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return cfg


# (id, config or raw text, text stderr must contain)
BAD = [
    ("unknown_top_level", with_("flush_intervall_ms", 100), "flush_intervall_ms"),
    ("unknown_nested", with_("kafka.brokerz", "x:1"), "kafka.brokerz"),
    ("unknown_nested_redis", with_("redis.prefixx", "p"), "redis.prefixx"),
    ("wrong_type_int", with_("flush_interval_ms", "fast"), "flush_interval_ms"),
    ("wrong_type_str", with_("redis.prefix", 12), "redis.prefix"),
    ("wrong_type_object", with_("kafka", "127.0.0.1:9092"), "kafka"),
    ("out_of_bounds_negative", with_("flush_interval_ms", -5), "flush_interval_ms"),
    ("out_of_bounds_cap", with_("cardinality_cap", 0), "cardinality_cap"),
    ("fraction_for_int", with_("flush_interval_ms", 2.5), "flush_interval_ms"),
    ("bad_enum_late_policy", with_("late_policy", "explode"), "late_policy"),
    ("bad_enum_log_level", with_("log", {"level": "loud"}), "log.level"),
    ("bad_enum_topic_type", with_("kafka.topics", {"t.x": "clicks"}), "kafka.topics"),
    ("bad_grouping_dimension", with_("groupings", [["product"], ["product", "planet"]]),
     "groupings"),
    ("bad_redis_url_scheme", with_("redis.url", "http://127.0.0.1:6379"), "redis.url"),
    ("bad_redis_url_port", with_("redis.url", "redis://127.0.0.1:99999"), "redis.url"),
    ("undefined_env", with_("redis.url", "redis://${%s}:6379" % UNDEF), "redis.url"),
    ("not_json", '{"kafka": {"brokers": "x"', None),
    # what `run` used to find out only later: a dead-letter topic the broker
    # refuses, alert URLs libcurl cannot post to, librdkafka properties it
    # refuses, an http.listen the HTTP server cannot bind
    ("bad_dlq_topic", with_("kafka.dlq_topic", "bad topic!"), "kafka.dlq_topic"),
    ("alertmanager_url_not_url", with_("alerts.alertmanager.url", "not a url"),
     "alerts.alertmanager.url"),
    ("webhook_url_ftp", with_("alerts.webhook", {"url": "ftp://x", "secret": "s"}),
     "alerts.webhook.url"),
    ("generator_url_no_scheme", with_("alerts.generator_url", "dash.example/d"),
     "alerts.generator_url"),
    ("unknown_kafka_property", with_("kafka.properties", {"no.such.prop": "1"}),
     "kafka.properties.no.such.prop"),
    ("bad_kafka_property_value", with_("kafka.properties", {"session.timeout.ms": "abc"}),
     "kafka.properties.session.timeout.ms"),
    ("http_listen_host_name", with_("http.listen", "example.com:9464"), "http.listen"),
    ("http_listen_ipv6", with_("http.listen", "[::1]:9464"), "http.listen"),
]


def run(args, stdin=None, env=None, timeout=30):
    e = dict(os.environ)
    e.pop(UNDEF, None)
    e.update(env or {})
    return subprocess.run([str(funneld_bin()), *map(str, args)], input=stdin,
                          capture_output=True, timeout=scaled(timeout), env=e)


def write_cfg(tmp_path, cfg, name="cfg.json"):
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return p


@pytest.mark.parametrize("case,cfg,key", BAD, ids=[b[0] for b in BAD])
def test_check_config_rejects(tmp_path, case, cfg, key):
    p = run(["check-config", "-c", write_cfg(tmp_path, cfg)])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, "%s: exit %d, want 2\nstderr: %s" % (case, p.returncode, err)
    if key is not None:
        assert key in err, "%s: stderr does not name %r:\n%s" % (case, key, err)


# Flags (-X, --set) go through the same checks, and `run` refuses what
# check-config refuses, with the same message and exit status 2 (the
# configuration's), before it connects anywhere: no broker, no Redis needed.
FLAG_BAD = [
    ("x_unknown_property", ["-X", "no.such.prop=1"], "kafka.properties.no.such.prop"),
    ("x_bad_int", ["-X", "session.timeout.ms=abc"], "kafka.properties.session.timeout.ms"),
    ("x_out_of_range", ["-X", "session.timeout.ms=0"], "kafka.properties.session.timeout.ms"),
    ("set_listen_host_name", ["--set", "http.listen=funneld.internal:9464"], "http.listen"),
    ("set_dlq_topic", ["--set", "kafka.dlq_topic=dead letters"], "kafka.dlq_topic"),
    ("set_am_url", ["--set", "alerts.alertmanager.url=am.example:9093"],
     "alerts.alertmanager.url"),
]


@pytest.mark.parametrize("cmd", ["check-config", "run"])
@pytest.mark.parametrize("case,flags,key", FLAG_BAD, ids=[b[0] for b in FLAG_BAD])
def test_flags_refused_like_check_config(tmp_path, cmd, case, flags, key):
    cfg = copy.deepcopy(BASE)
    cfg["kafka"]["brokers"] = "127.0.0.1:1"  # never reached: refused before connecting
    cfg["redis"]["url"] = "redis://127.0.0.1:1"
    p = run([cmd, "-c", write_cfg(tmp_path, cfg), *flags], timeout=20)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, "%s %s: exit %d, want 2\nstderr: %s" % (cmd, case, p.returncode, err)
    assert key in err, "%s %s: stderr does not name %r:\n%s" % (cmd, case, key, err)


def test_refused_secrets_not_shown(tmp_path):
    """A refused property or URL is named, its secret never shown."""
    cfg = with_("alerts.webhook", {"url": "ftp://hook:whPW-r1x@hooks.example/x", "secret": "s"})
    p = run(["check-config", "-c", write_cfg(tmp_path, cfg)])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and "alerts.webhook.url" in err, err
    assert "whPW-r1x" not in err, err
    p = run(["check-config", "-c", write_cfg(tmp_path, BASE), "-X", "my.password=kpPW-r2x"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and "kafka.properties.my.password" in err, err
    assert "kpPW-r2x" not in err, err
    p = run(["check-config", "-c", write_cfg(tmp_path, BASE),
             "-X", "auto.offset.reset=https://u:kpPW-r3x@h/x?token=kpTOK-r4x"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and "kafka.properties.auto.offset.reset" in err, err
    assert "kpPW-r3x" not in err and "kpTOK-r4x" not in err, err


def test_check_config_missing_file(tmp_path):
    p = run(["check-config", "-c", tmp_path / "nope.json"])
    assert p.returncode == 2, p.stderr


def test_check_config_good(tmp_path):
    cfg = copy.deepcopy(BASE)
    cfg["redis"]["prefix"] = "${FD_IT_PREFIX}"
    cfg["kafka"]["properties"]["sasl.password"] = "hunter2-s3cret"
    p = run(["check-config", "-c", write_cfg(tmp_path, cfg)],
            env={"FD_IT_PREFIX": "pfx-from-env"})
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, "exit %d\nstderr: %s" % (p.returncode, err)
    eff = json.loads(out)
    assert lookup(eff, "redis.prefix") == "pfx-from-env", out
    assert lookup(eff, "flush_interval_ms") == 200, out
    assert "hunter2-s3cret" not in out + err, "check-config printed a secret"


# Credentials in URL-valued keys and secret flags: the rule of
# docs/CONFIG.md (userinfo, secret-named query/fragment parameters,
# librdkafka properties named *password*/*secret*/*token*).
URL_SECRETS = ["AMpw-1x", "whKEY-2x", "whSIG-3x", "genTOK-4x", "rdPW-5x", "kpURLtok-6x",
               "flagRD-7x", "flagSASL-8x", "flagTOK-9x", "flagAM-10x", "flagWHS-11x"]


def test_check_config_masks_url_credentials(tmp_path):
    cfg = copy.deepcopy(BASE)
    cfg["redis"]["url"] = "redis://app:rdPW-5x@127.0.0.1:6379/0"
    cfg["alerts"] = {
        "alertmanager": {"url": "http://admin:AMpw-1x@am.example:9093"},
        "webhook": {"url": "https://hooks.example/in?key=whKEY-2x&sig=whSIG-3x&team=ops",
                    "secret": "whsec-plain"},
        "generator_url": "https://dash.example/d?token=genTOK-4x",
    }
    # a librdkafka property (librdkafka checks the names) holding a URL
    cfg["kafka"]["properties"]["client.id"] = (
        "https://idp.example/t?access_token=kpURLtok-6x")
    p = run(["check-config", "-c", write_cfg(tmp_path, cfg),
             "--redis", "redis://default:flagRD-7x@127.0.0.1:6380",
             "-X", "sasl.password=flagSASL-8x", "-X", "sasl.oauthbearer.config=flagTOK-9x",
             "--set", "alerts.alertmanager.url=http://u:flagAM-10x@am2.example:9093",
             "--set", "alerts.webhook.secret=flagWHS-11x"])
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, "exit %d\nstderr: %s" % (p.returncode, err)
    leaked = [x for x in URL_SECRETS + ["whsec-plain"] if x in out + err]
    assert not leaked, "check-config printed %s:\n%s" % (leaked, out)
    eff = json.loads(out)
    # what is not a credential stays readable
    assert lookup(eff, "redis.url") == "redis://default:***@127.0.0.1:6380"
    assert lookup(eff, "alerts.alertmanager.url") == "http://u:***@am2.example:9093"
    assert lookup(eff, "alerts.webhook.url") == (
        "https://hooks.example/in?key=***&sig=***&team=ops")
    assert lookup(eff, "alerts.generator_url") == "https://dash.example/d?token=***"
    props = lookup(eff, "kafka.properties")
    assert props["client.id"] == (
        "https://idp.example/t?access_token=***")
    assert props["sasl.password"] == "***" and props["sasl.oauthbearer.config"] == "***"
    assert props["session.timeout.ms"] == "6000"


def test_secrets_not_in_cmdline(ctx, stack, tmp_path):
    """A running funneld's /proc/PID/cmdline no longer shows the password of
    --redis nor secret -X values, and it still uses them: Redis accepts the
    AUTH (the default user without a password takes any) and it gets ready."""
    from alert_receivers import free_port
    import urllib.request
    port = free_port()
    cfg = ctx.config({"cl.in": "mixed"}, http={"listen": "127.0.0.1:%d" % port})
    rd = "redis://default:cmdPW-s3cr3t@127.0.0.1:%d" % stack.redis_port
    fd = ctx.start(cfg, ["--redis", rd, "-X", "sasl.password=cmdSASL-s3cr3t",
                         "-X", "ssl.key.password=cmdKEY-s3cr3t"])
    deadline = time.monotonic() + scaled(30)
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert fd.alive(), fd.tail()
        assert time.monotonic() < deadline, "never ready\n" + fd.tail()
        time.sleep(0.2)
    cmdline = open("/proc/%d/cmdline" % fd.pid, "rb").read()
    for secret in (b"cmdPW-s3cr3t", b"cmdSASL-s3cr3t", b"cmdKEY-s3cr3t"):
        assert secret not in cmdline, "/proc/%d/cmdline shows %s: %r" % (fd.pid, secret, cmdline)
    args = cmdline.split(b"\0")
    assert b"redis://default:************@127.0.0.1:%d" % stack.redis_port in args, args
    assert b"sasl.password=**************" in args, args
    assert fd.stop() == 0


def lookup(d, dotted):
    """A key of the printed config, nested ({"redis": {"prefix"}}) or flat
    ({"redis.prefix"})."""
    if dotted in d:
        return d[dotted]
    node = d
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# ---------------------------------------------------------------- validate

def oracle_validate(path, now_ms):
    p = subprocess.run([sys.executable, str(ORACLE), "--validate-lines", str(path),
                        "--now-ms", str(now_ms)], capture_output=True,
                       timeout=scaled(120), check=True)
    return p.stdout.decode()


def test_validate_matches_oracle(tmp_path, stream):
    # Good and bad lines: one whole mixed-topic partition, every malformed
    # line of the stream (all reasons, too_large included), and typed-topic
    # lines, a third of which omit "type" (missing_field under mixed rules).
    lines = list(stream.lines[("t.mixed", 0)])
    lines += [stream.lines[(r["topic"], r["partition"])][r["offset"]]
              for r in stream.rejects]
    for t in ("t.exposure", "t.interaction", "t.payment"):
        lines += stream.lines[(t, 0)][:300]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines) + b"\n")

    now_ms = int(time.time() * 1000)
    want = oracle_validate(mixed, now_ms)
    assert want.count("\n") > len(stream.rejects) // 2, "oracle found too few rejects"
    p = run(["validate", mixed], timeout=120)
    got = p.stdout.decode(errors="replace")
    if got != want:
        w, g = want.splitlines(), got.splitlines()
        diffs = [("oracle: %s" % a, "funneld: %s" % b)
                 for a, b in zip(w, g) if a != b][:10]
        pytest.fail("validate output differs from the oracle (%d vs %d lines); "
                    "first differences:\n  %s%s" % (
                        len(w), len(g),
                        "\n  ".join("%s | %s" % d for d in diffs),
                        "" if diffs else "\n  (one is a prefix of the other)"),
                    pytrace=False)
    assert p.returncode == 1, "exit %d with rejects, want 1" % p.returncode

    # The same through stdin.
    p2 = run(["validate", "-"], stdin=mixed.read_bytes(), timeout=120)
    assert p2.stdout.decode(errors="replace") == want and p2.returncode == 1

    # A clean file: only the lines the oracle accepts.
    bad = {int(l.split("\t", 1)[0]) for l in want.splitlines()}
    clean_lines = [l for i, l in enumerate(lines, 1) if i not in bad]
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(clean_lines) + b"\n")
    assert oracle_validate(clean, now_ms) == ""
    p3 = run(["validate", clean], timeout=120)
    assert p3.returncode == 0 and p3.stdout == b"", (
        "clean file: exit %d, output %r" % (p3.returncode, p3.stdout[:300]))
