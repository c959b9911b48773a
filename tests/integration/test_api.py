"""
test_api.py — /api/v1 (docs/API.md) on a real broker and redis-server:
every endpoint against the oracle's figures (tests/oracle/oracle.py over
the lines produced), bad parameters answered 400 with a JSON error, the
bearer token, the event stream (state first, updates pushed, the client
bound, a slow client dropped while the others keep getting updates), and a
read-only `funneld serve` answering exactly as the `run` instance.
"""

import json
import os
import queue
import socket
import threading
import time
import urllib.parse

import pytest

from conftest import hll_tolerance, scaled
from crafted import wait_until
from web_env import get, web  # noqa: F401  (the module fixture)

q = urllib.parse.quote


def test_scopes_search_and_paging(web):
    res, _ = web.oracle()
    st, full = get(web.port, "/api/v1/scopes?limit=1000")
    assert st == 200
    ids = [s["id"] for s in full["scopes"]]
    assert ids == sorted(res["scopes"]), "scopes differ from the oracle's"
    assert full["total"] == len(ids) and full["next_cursor"] is None
    assert all(s["updated_at"] > 0 for s in full["scopes"])
    paged, cur = [], 0
    while cur is not None:
        st, page = get(web.port, "/api/v1/scopes?limit=4&cursor=%d" % cur)
        assert st == 200 and len(page["scopes"]) <= 4
        paged += [s["id"] for s in page["scopes"]]
        cur = page["next_cursor"]
    assert paged == ids
    st, found = get(web.port, "/api/v1/scopes?q=" + q("channel=weibo"))
    assert [s["id"] for s in found["scopes"]] == [i for i in ids if "channel=weibo" in i]
    assert found["total"] >= 2


def test_snapshots_match_oracle(web):
    res, _ = web.oracle()
    for scope in res["scopes"]:
        st, body = get(web.port, "/api/v1/snapshots?scope=" + q(scope))
        assert st == 200, (scope, body)
        assert body["scope"] == scope and set(body["windows"]) == {"5m", "1h", "24h"}
        for name, snap in body["windows"].items():
            web.check_snapshot(scope, snap)
            assert snap["to"] - snap["from"] == {"5m": 300, "1h": 3600, "24h": 86400}[name]


def test_series_match_oracle(web):
    res, users = web.oracle()
    scope = "product=p2"
    head = "ORACLEPFX:c:%s:m1:" % scope
    buckets = sorted(int(k[len(head):]) for k in res["counters"] if k.startswith(head))
    frm, to = buckets[0] - 120, buckets[-1] + 120
    for metric in ("exposures", "revenue", "payments"):
        st, s = get(web.port, "/api/v1/series?scope=%s&metric=%s&gran=m1&from=%d&to=%d"
                    % (q(scope), metric, frm, to))
        assert st == 200, s
        pts = {p["t"]: p["value"] for p in s["points"]}
        assert sorted(pts) == list(range(frm // 60 * 60, to + 1, 60))
        for t, v in pts.items():
            assert v == res["counters"].get(head + str(t), {}).get(metric, 0), (metric, t)
    st, s = get(web.port, "/api/v1/series?scope=%s&metric=conversion_rate&from=%d&to=%d"
                % (q(scope), frm, to))
    assert s["numerator"] == "uv_paid" and s["denominator"] == "uv_exposed"
    uh = "ORACLEPFX:u:%s:m1:" % scope
    for p in s["points"]:
        den = len(users.get("%s%d:exposed" % (uh, p["t"]), ()))
        num = len(users.get("%s%d:paid" % (uh, p["t"]), ()))
        assert abs(p["denominator"] - den) <= hll_tolerance(den)
        assert abs(p["numerator"] - num) <= hll_tolerance(num)
        # rates are rounded to 6 decimals (docs/API.md), as in the snapshots
        assert p["value"] == (None if p["denominator"] == 0 else
                              float("%.6f" % (p["numerator"] / p["denominator"])))
    # a rate whose ratio has more than 6 decimals is rounded
    st, s = get(web.port, "/api/v1/series?scope=all&metric=interaction_rate&gran=h1&from=%d&to=%d"
                % (frm - 86400, to))
    rated = [p for p in s["points"] if p["denominator"]]
    assert any(p["numerator"] / p["denominator"] != float("%.6f" % (p["numerator"] / p["denominator"]))
               for p in rated), "no ratio past 6 decimals: the check below proves nothing"
    for p in rated:
        assert p["value"] == float("%.6f" % (p["numerator"] / p["denominator"])), p
    # h1 and d1: the oracle's hour and day buckets
    for gran in ("h1", "d1"):
        gh = "ORACLEPFX:c:%s:%s:" % (scope, gran)
        want = {k[len(gh):]: h["exposures"] for k, h in res["counters"].items()
                if k.startswith(gh) and h.get("exposures")}
        st, s = get(web.port, "/api/v1/series?scope=%s&metric=exposures&gran=%s&from=%d&to=%d"
                    % (q(scope), gran, frm, to))
        assert st == 200, s
        got = {p["bucket"]: p["value"] for p in s["points"]}
        assert {b: v for b, v in got.items() if v} == want, gran


def test_series_d1_points_start_at_local_midnight(web):
    """A d1 point's t is its day's start, local midnight in time_zone (the
    harness's is the default, Asia/Shanghai), whatever `from` is — as an m1
    or h1 point's t is its bucket's start. It was `from` itself for the
    first day."""
    import datetime
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Asia/Shanghai")
    to = int(time.time())
    seen = {}
    for frm in (to - 3 * 86400, to - 3 * 86400 + 2800, to - 2 * 86400 - 7):
        st, s = get(web.port, "/api/v1/series?scope=all&metric=exposures&gran=d1&from=%d&to=%d"
                    % (frm, to))
        assert st == 200, s
        assert s["points"][0]["t"] <= frm, s["points"][0]
        for p in s["points"]:
            local = datetime.datetime.fromtimestamp(p["t"], tz)
            assert (local.hour, local.minute, local.second) == (0, 0, 0), (frm, p)
            assert local.strftime("%Y%m%d") == p["bucket"], (frm, p)
            assert seen.setdefault(p["bucket"], p["t"]) == p["t"], (frm, p)
    assert len(seen) >= 3


def test_parameters_must_be_utf8_text(web):
    """Parameters are echoed into JSON (UTF-8) and read as C strings: one
    that is not UTF-8 text, or holds a NUL, is 400 naming it — not an answer
    with raw bytes in its JSON, nor a value cut short at the NUL."""
    for path, word in (("/api/v1/series?scope=%ff%fe", "scope"),
                       ("/api/v1/snapshots?scope=all%00x", "scope"),
                       ("/api/v1/scopes?q=%c0%af", "q"),
                       ("/api/v1/scopes?%ff=1", "parameter name")):
        st, body = get(web.port, path)
        assert st == 400 and body["error"]["code"] == "bad_parameter", (path, st, body)
        assert word in body["error"]["message"], (path, body)
    st, body = get(web.port, "/api/v1/snapshots?scope=" + q("all") + "&x=" + q("中文"))
    assert st == 200, body  # well-formed UTF-8 passes


def test_screen_files_are_regular_files_only(web):
    """"." names the screen's folder itself: 404 like any name that is not a
    file there, never 500."""
    import http.client
    for path in ("/.", "/%2e", "/.hidden", "/nosuch.js"):
        c = http.client.HTTPConnection("127.0.0.1", web.port, timeout=scaled(10))
        c.request("GET", path)
        resp = c.getresponse()
        body = json.loads(resp.read().decode())
        c.close()
        assert resp.status == 404 and body["error"]["code"] == "not_found", (path, resp.status, body)


def test_breakdown_leaderboards_alerts_freshness(web):
    res, _ = web.oracle()
    st, b = get(web.port, "/api/v1/breakdown?scope=%s&dim=channel&window=1h" % q("product=p1"))
    assert st == 200
    assert [r["scope"] for r in b["rows"]] == sorted(
        s for s in res["scopes"] if s.startswith("product=p1,channel="))
    for r in b["rows"]:
        web.check_snapshot(r["scope"], r["snapshot"])
        assert r["value"] == r["scope"].split("channel=")[1]
    st, b = get(web.port, "/api/v1/breakdown?scope=all&dim=product&window=24h")
    assert [r["value"] for r in b["rows"]] == ["p1", "p2"]

    # Leaderboards, as the snapshot tick writes them (docs/METRICS.md): the
    # revenue board of product,channel for 1h lists every such scope with
    # revenue in its window, best first (ties: scope id descending), each
    # value the oracle's sum over the scope's snapshot window
    grouping = "product,channel"
    boards = get(web.port, "/api/v1/leaderboards")[1]["boards"]
    assert {"key": "%s:lb:%s:1h:revenue" % (web.prefix, grouping), "grouping": grouping,
            "window": "1h", "metric": "revenue"} in boards

    def revenue_board():
        st, lb = get(web.port, "/api/v1/leaderboards?grouping=%s&window=1h&metric=revenue&limit=100"
                     % q(grouping))
        assert st == 200
        want = []
        for sc in sorted(res["scopes"], reverse=True):
            if sc.startswith("product=") and ",channel=" in sc and sc.count(",") == 1:
                snap = get(web.port, "/api/v1/snapshots?scope=" + q(sc))[1]["windows"]["1h"]
                rev = web.expected_window(sc, snap["from"], snap["to"])[0].get("revenue", 0)
                if rev > 0:
                    want.append((sc, rev))
        want.sort(key=lambda x: -x[1])
        got = [(r["scope"], r["value"]) for r in lb["rows"]]
        assert [r["rank"] for r in lb["rows"]] == list(range(1, len(got) + 1))
        return got == want and len(got) >= 3
    wait_until("the revenue board equal to the oracle's", revenue_board, 30, web.run)
    # a rate board carries each row's fraction from the scope's snapshot:
    # a board seeded under a grouping the writer has none for (its real
    # conversion boards need leaderboards.min_potential_users, more users
    # than this stream has per channel)
    rkey = "%s:lb:product:1h:conversion_rate" % web.prefix
    try:
        web.r.cmd("ZADD", rkey, "0.25", "product=p1", "0.5", "product=nosuch")

        def rate_board():
            st, lb = get(web.port, "/api/v1/leaderboards?grouping=product&window=1h&metric=conversion_rate")
            snap = get(web.port, "/api/v1/snapshots?scope=product%3Dp1")[1]["windows"]["1h"]
            assert lb["rows"][0]["scope"] == "product=nosuch"
            assert lb["rows"][0]["numerator"] is None and lb["rows"][0]["denominator"] is None
            row = lb["rows"][1]
            return (row["scope"], row["value"], row["numerator"], row["denominator"]) == (
                "product=p1", 0.25, snap["uv_paid"], snap["uv_exposed"])
        wait_until("the rate board's fractions equal the snapshot's", rate_board, 30, web.run)
    finally:
        web.r.cmd("DEL", rkey)

    st, a = get(web.port, "/api/v1/alerts")
    assert st == 200
    idx = web.r.cmd("SMEMBERS", "%s:alert:index" % web.prefix) or []
    assert len(a["alerts"]) == len(idx)
    assert len(a["transitions"]) == min(20, web.r.cmd("XLEN", "%s:alerts" % web.prefix))

    st, f = get(web.port, "/api/v1/freshness")
    assert st == 200 and f["group"] == web.ctx.group
    parts = {p["partition"]: p for p in f["partitions"]}
    assert {k: p["offset"] for k, p in parts.items()} == web.ends
    for pnum, lines in enumerate(web.parts):
        top = max(json.loads(l)["ts"] for l in lines)
        assert parts["%s:%d" % (web.topic, pnum)]["max_event_ms"] == top
    assert f["watermark_ms"] is not None and f["last_flush_ms"] > web.now0 - 60000
    assert f["last_snapshot"]["event"] == "snapshot"
    # consumer lag: Kafka's end offset (read by the reader's own client
    # every 5 s) minus the stored offset; drained, it is 0 everywhere
    def lags():
        ps = get(web.port, "/api/v1/freshness")[1]["partitions"]
        return ps if all(p["end_offset"] is not None for p in ps) else None
    ps = wait_until("the partitions' end offsets", lags, 30, web.run)
    for p in ps:
        assert p["end_offset"] == web.ends[p["partition"]] and p["lag"] == 0, p


def _commandstats(r):
    """{command: calls} from INFO commandstats."""
    out = {}
    info = r.cmd("INFO", "commandstats")
    for line in (info.decode() if isinstance(info, bytes) else info).splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_"):].split(":", 1)
            out[name] = int(dict(kv.split("=") for kv in rest.split(","))["calls"])
    return out


def test_leaderboard_list_is_the_configured_boards(web, tmp_path):
    """GET /api/v1/leaderboards lists every board the snapshot writer
    produced (read from Redis by the test), found from the configuration
    (groupings ending in channel or community x windows x metrics, docs/
    METRICS.md) with one EXISTS each: no SCAN, so a large keyspace (1.2 M
    unrelated keys in a private redis-server read by a `funneld serve`)
    neither drops boards nor costs more Redis commands."""
    import subprocess
    from alert_receivers import free_port
    from conftest import funneld_bin, redis_server_cmd, wait_ping
    pat = "%s:lb:*" % web.prefix

    def written():
        keys, cur = set(), "0"
        while True:
            cur, ks = web.r.cmd("SCAN", cur, "MATCH", pat, "COUNT", "1000")
            cur = cur.decode() if isinstance(cur, bytes) else cur
            keys.update(k.decode() if isinstance(k, bytes) else k for k in ks)
            if cur == "0":
                break
        # another test seeds a board under a grouping the writer has none for
        keys.discard("%s:lb:product:1h:conversion_rate" % web.prefix)
        return keys

    def listed(port):
        st, body = get(port, "/api/v1/leaderboards", timeout=scaled(20))
        assert st == 200, body
        for b in body["boards"]:  # each entry names its own key
            assert b["key"] == "%s:lb:%s:%s:%s" % (web.prefix, b["grouping"], b["window"],
                                                     b["metric"]), b
        return [b["key"] for b in body["boards"]]

    wait_until("the writer's revenue boards",
               lambda: "%s:lb:product,channel:1h:revenue" % web.prefix in written(), 30, web.run)
    boards = wait_until("every written board listed",
                        lambda: (lambda w: w if sorted(listed(web.port)) == sorted(w) else None)(
                            written()), 30, web.run)
    assert len(boards) >= 3

    # the boards the configuration can produce, from the effective config
    eff = json.loads(subprocess.run([str(funneld_bin()), "check-config", "-c", str(web.cfg)],
                                    capture_output=True, timeout=scaled(30)).stdout)
    nconf = sum(1 for g in eff["groupings"] if g and g[-1] in ("channel", "community")) \
        * len(eff["windows"]) * 3

    port, rdir = free_port(), tmp_path / "redis"
    rdir.mkdir()
    srv = subprocess.Popen(redis_server_cmd(port, rdir), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        r2 = wait_ping(port)
        for k in boards:  # the writer's boards, copied member by member
            flat = web.r.cmd("ZRANGE", k, "0", "-1", "WITHSCORES")
            r2.cmd("ZADD", k, *[x for i in range(0, len(flat), 2) for x in (flat[i + 1], flat[i])])
        fill = ("for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do "
                "redis.call('SET', ARGV[1] .. i, '1') end return 1")
        for lo in range(0, 1200000, 200000):  # in slices, so no script holds Redis long
            r2.cmd("EVAL", fill, "0", "%s:c:seed:" % web.prefix, str(lo), str(lo + 199999))
        assert r2.cmd("DBSIZE") == 1200000 + len(boards)
        s = web.serve(redis_url="redis://127.0.0.1:%d" % port)
        before = _commandstats(r2)
        assert sorted(listed(s.port)) == sorted(boards)
        after = _commandstats(r2)
        assert after.get("scan", 0) == before.get("scan", 0)
        assert after.get("exists", 0) - before.get("exists", 0) == nconf
    finally:
        srv.terminate()
        srv.wait(timeout=scaled(20))


def test_screen_files_headers(web):
    """The screen's files are never sniffed as another type and carry the
    page's Content-Security-Policy (docs/API.md); the API's JSON is as before."""
    import urllib.request
    for path, ctype in (("/", "text/html"), ("/app.js", "text/javascript"),
                        ("/echarts.min.js", "text/javascript"), ("/app.css", "text/css")):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (web.port, path),
                                    timeout=scaled(10)) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith(ctype), path
            assert resp.headers["X-Content-Type-Options"] == "nosniff", path
            csp = resp.headers["Content-Security-Policy"] or ""
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1" % web.port, timeout=scaled(10)) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")


BAD = [
    ("/api/v1/scopes?limit=0", "limit"), ("/api/v1/scopes?limit=abc", "limit"),
    ("/api/v1/scopes?cursor=-1", "cursor"), ("/api/v1/series?metric=nope", "metric"),
    ("/api/v1/series?gran=m5", "gran"), ("/api/v1/series?from=10&to=5", "from"),
    ("/api/v1/series?from=0&to=999999", "points"), ("/api/v1/series?to=x", "to"),
    ("/api/v1/breakdown?dim=", "dim"), ("/api/v1/breakdown?dim=channel&window=7m", "window"),
    ("/api/v1/leaderboards?metric=x", "metric"), ("/api/v1/alerts?limit=0", "limit"),
    ("/api/v1/stream?minutes=0", "minutes"),
]


def test_bad_parameters_are_400_json(web):
    for path, word in BAD:
        st, body = get(web.port, path)
        assert st == 400, (path, st, body)
        assert body["error"]["code"] in ("bad_parameter", "too_many_points"), path
        assert word in body["error"]["message"], (path, body)
    st, body = get(web.port, "/api/v1/nope")
    assert st == 404 and body["error"]["code"] == "not_found"
    st, body = get(web.port, "/api/v1/snapshots?scope=" + q("product=nosuch"))
    assert st == 404 and body["error"]["code"] == "unknown_scope"


def test_redis_down_is_503_json(web):
    """A reader whose Redis cannot be reached answers 503 with a JSON error
    on every endpoint, and still serves the screen's files and /healthz."""
    from alert_receivers import free_port
    s = web.serve(redis_url="redis://127.0.0.1:%d" % free_port())
    for path in ("/api/v1/scopes", "/api/v1/snapshots?scope=all", "/api/v1/series",
                 "/api/v1/alerts", "/api/v1/freshness", "/api/v1/stream"):
        st, body = get(s.port, path)
        assert st == 503 and body["error"]["code"] == "redis_unavailable", (path, st, body)
    assert get(s.port, "/")[0] == 200 and get(s.port, "/healthz")[0] == 200
    assert get(s.port, "/readyz")[0] == 503


def test_token(web):
    token = "tok-" + os.urandom(8).hex()
    env = dict(os.environ, FD_TEST_API_TOKEN=token)
    s = web.serve(env=env, api_token="${FD_TEST_API_TOKEN}")
    for hdr in (None, "wrong"):
        st, body = get(s.port, "/api/v1/scopes", token=hdr)
        assert st == 401 and body["error"]["code"] == "unauthorized"
    assert get(s.port, "/api/v1/scopes", token=token)[0] == 200
    assert get(s.port, "/api/v1/freshness?access_token=" + token)[0] == 200
    assert get(s.port, "/api/v1/stream?access_token=wrong")[0] == 401
    st, page = get(s.port, "/")  # the screen's files need no token
    assert st == 200 and "<html" in page
    assert get(s.port, "/healthz")[0] == 200
    import subprocess
    from conftest import funneld_bin
    out = subprocess.run([str(funneld_bin()), "check-config", "-c", str(s.cfg_path)],
                         capture_output=True, env=env, timeout=scaled(30)).stdout.decode()
    assert token not in out and "***" in out
    assert token not in open(s.log_path, errors="replace").read()


def test_serve_answers_the_same(web):
    s = web.serve()
    paths = ["/api/v1", "/api/v1/scopes?limit=1000", "/api/v1/alerts",
             "/api/v1/breakdown?scope=%s&dim=community&window=24h" % q("product=p2")]
    for scope in web.oracle()[0]["scopes"]:
        paths.append("/api/v1/snapshots?scope=" + q(scope))
    now = int(time.time())
    paths.append("/api/v1/series?scope=all&metric=conversion_rate&from=%d&to=%d" % (now - 3600, now))

    for p in paths:  # a snapshot tick between the two reads changes updated_at: read again
        wait_until("serve and run answering %s alike" % p,
                   lambda: get(web.port, p) == get(s.port, p), 30, s)
    fa, fb = get(web.port, "/api/v1/freshness")[1], get(s.port, "/api/v1/freshness")[1]
    for k in ("watermark_ms", "last_flush_ms", "group"):
        assert fa[k] == fb[k]
    assert [p["offset"] for p in fa["partitions"]] == [p["offset"] for p in fb["partitions"]]
    # serve holds no lease and is no consumer-group member
    assert get(s.port, "/")[0] == 200
    assert "funneld serving" in open(s.log_path).read()
    assert "funneld running" not in open(s.log_path).read()


class SSE:
    """A raw event-stream client (HTTP/1.0, so the body is not chunked). A
    reading client parses events on its own thread as fast as they come
    (events() hands them out); a slow one (read=False) never reads."""

    def __init__(self, port, path, rcvbuf=None, read=True):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", port))
        self.s.sendall(("GET %s HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n" % path).encode())
        self.q = queue.Queue()
        self.closed = False
        if read:
            threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf, head = b"", None
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if head is None and b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    self.q.put(("__head__", head.decode(errors="replace")))
                while head is not None and b"\n\n" in buf:
                    raw, buf = buf.split(b"\n\n", 1)
                    ev = {}
                    for line in raw.split(b"\n"):
                        if b": " in line and not line.startswith(b":"):
                            k, v = line.split(b": ", 1)
                            ev[k.decode()] = v.decode()
                    if "data" in ev:
                        self.q.put((ev.get("event"), json.loads(ev["data"])))
        except OSError:
            pass
        self.q.put(("__closed__", None))

    def events(self, n, timeout=30):
        """The next n events as (name, data dict); fails on close/timeout."""
        out = []
        deadline = time.monotonic() + scaled(timeout)
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                name, d = self.q.get(timeout=max(0.01, left))
            except queue.Empty:
                pytest.fail("no %d events within %ds (got %d)" % (n, scaled(timeout), len(out)))
            if name == "__head__":
                assert " 200 " in d.split("\r\n")[0], d
                continue
            assert name != "__closed__", "stream closed"
            out.append((name, d))
        return out

    def close(self):
        self.s.close()


def test_stream_state_updates_bound_and_slow_client(web):
    s = web.serve(sse_max_clients=3, sse_max_buffer_bytes=8192)
    scope = "product=p1"
    c1 = SSE(s.port, "/api/v1/stream?scope=%s&minutes=30" % q(scope))
    (name, st), = c1.events(1)
    assert name == "state" and st["scope"] == scope
    assert st["windows"] == get(s.port, "/api/v1/snapshots?scope=" + q(scope))[1]["windows"]
    assert len(st["series"]) >= 30 and "alerts" in st and "freshness" in st
    for snap in st["windows"].values():
        web.check_snapshot(scope, snap)
    # the client bound: two more fit, the fourth is refused with a JSON 503
    c2 = SSE(s.port, "/api/v1/stream?scope=all&minutes=1")
    slow = SSE(s.port, "/api/v1/stream?scope=all&minutes=1", rcvbuf=4096, read=False)
    c2.events(1)
    st4, body = get(s.port, "/api/v1/stream?scope=all")
    assert st4 == 503 and body["error"]["code"] == "too_many_clients"
    # a client that never reads: flood the stream with snapshot notes (each
    # one makes an update for every watched scope); it is dropped, the
    # others keep receiving
    note = json.dumps({"event": "snapshot", "watermark": 0, "to": 0, "scopes": 0,
                       "updated_at": int(time.time() * 1000)})
    dropped = lambda: get(s.port, "/api/v1/freshness")[1]["stream"]["dropped"] >= 1  # noqa: E731
    deadline = time.monotonic() + scaled(60)
    while not dropped():
        # a few notes at a time, each round read in full by the reading
        # clients: their backlog stays inside the kernel's socket buffers,
        # while the never-reading one fills them and then its 8 KiB bound
        for _ in range(5):
            web.r.cmd("PUBLISH", "%s:updates" % web.prefix, note)
        c1.events(5)
        c2.events(5)
        assert time.monotonic() < deadline, "the slow client was never dropped"
    # the server closes the dropped one (it ends once its socket drains)
    slow.s.settimeout(scaled(30))
    while slow.s.recv(65536):
        pass
    wait_until("the dropped client gone",
               lambda: get(s.port, "/api/v1/freshness")[1]["stream"]["clients"] == 2, 30, s)
    # real updates: a new batch moves the numbers on the live stream
    before = st["windows"]["1h"]["exposures"]
    web.produce_batch2()
    deadline = time.monotonic() + scaled(90)
    while True:
        name, d = c1.events(1, timeout=90)[0]
        if name == "update" and d["windows"]["1h"]["exposures"] > before:
            break
        assert time.monotonic() < deadline, "no update with the new batch"
    for snap in d["windows"].values():
        web.check_snapshot(scope, snap)
    for c in (c1, c2, slow):
        c.close()


def test_client_gone_is_not_a_warning(web):
    """A browser closing a page with a stream open (here: a reset, as a
    closed tab gives) makes libmicrohttpd report that it could not send: an
    ordinary event, logged at debug level, never a warning."""
    import struct
    from alert_receivers import free_port
    from conftest import funneld_bin
    from web_env import Serve
    port = free_port()
    cfg = web.config(port)
    c = json.loads(cfg.read_text())
    c["log"] = {"level": "debug"}
    cfg.write_text(json.dumps(c))
    p = Serve(funneld_bin(), cfg, web.dir / "serve-gone.log")
    web.ctx.procs.append(p)
    wait_until("funneld serve answering", lambda: web._answers(port, p), 30, p)
    for _ in range(3):
        c = SSE(port, "/api/v1/stream?scope=all")
        assert c.events(1)[0][0] == "state"
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    def gone_lines():
        lines = [l for l in open(p.log_path, errors="replace").read().splitlines()
                 if 'msg="http server"' in l]
        return lines if any("Failed to send" in l for l in lines) else None
    # the next heartbeat (http.sse_heartbeat_ms, 1 s here) meets the closed socket
    lines = wait_until("libmicrohttpd's report of the gone client", gone_lines, 30, p)
    assert [l for l in lines if "level=warn" in l] == [], lines


class HungRedis:
    """A Redis endpoint that accepts connections and never answers: every
    read on it waits for the reader's own timeout."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.closed = False
        self.mu = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.mu:
                if self.closed:  # accepted while closing: never held
                    c.close()
                    return
                self.conns.append(c)

    def accepted(self):
        with self.mu:
            return len(self.conns)

    def close(self):
        """Closes every connection and the listener: the readers waiting on
        it get an error at once."""
        with self.mu:
            self.closed = True
            for c in self.conns:
                c.close()
        try:  # wakes the blocked accept(), which close() alone does not
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()


def serve_against_hung_redis(web, timeout_ms, log_name):
    """`funneld serve` reading a HungRedis with redis.timeout_ms set, once it
    answers HTTP. Returns (the HungRedis, the HTTP port, the process); the
    caller closes the HungRedis."""
    from alert_receivers import free_port
    from conftest import funneld_bin
    from web_env import Serve
    hung = HungRedis()
    port = free_port()
    cfg = web.config(port, "redis://127.0.0.1:%d" % hung.port)
    doc = json.loads(cfg.read_text())
    doc["redis"]["timeout_ms"] = timeout_ms
    cfg.write_text(json.dumps(doc))
    s = Serve(funneld_bin(), cfg, web.dir / log_name)
    web.ctx.procs.append(s)
    try:
        wait_until("funneld serve answering", lambda: web._answers(port, s), 30, s)
    except BaseException:
        hung.close()
        raise
    return hung, port, s


def test_hung_redis_never_delays_healthz(web):
    """API requests wait for Redis on worker threads, never on the HTTP
    server's thread: against a Redis that accepts and never answers (and
    redis.timeout_ms of a minute), with more API requests in flight than
    the workers and their queue hold, /healthz, /readyz and /metrics answer
    at once, the requests past the queue get 503 `busy` at once, and every
    request held gets its 503 JSON as soon as the Redis goes away."""
    hung, port, s = serve_against_hung_redis(web, 60000, "serve-hung.log")
    try:
        workers, queued, extra = 4, 64, 12  # docs/API.md: the workers and their queue
        n = workers + queued + extra
        paths = ["/api/v1/scopes", "/api/v1/snapshots?scope=all", "/api/v1/freshness",
                 "/api/v1/stream", "/api/v1/alerts"]
        results = queue.Queue()

        def call(path):
            t0 = time.monotonic()
            try:
                st, body = get(port, path, timeout=120)
                results.put((path, st, body, time.monotonic() - t0))
            except OSError as e:
                results.put((path, None, repr(e), time.monotonic() - t0))

        threads = [threading.Thread(target=call, args=(paths[i % len(paths)],), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        done = []
        wait_until("the API reading the hung Redis", lambda: hung.accepted() >= 1, 30, s)
        # the operations endpoints answer at once while the API requests wait
        for _ in range(5):
            for ep, want in (("/healthz", (200,)), ("/readyz", (200, 503)), ("/metrics", (200,))):
                t0 = time.monotonic()
                try:
                    st = get(port, ep, timeout=5)[0]
                except OSError as e:
                    st = repr(e)
                dt = time.monotonic() - t0
                assert st in want and dt < scaled(1.0), (ep, st, dt)
            time.sleep(0.2)  # pacing only: probes spread over a second
        # the requests past the queue are turned away at once
        deadline = time.monotonic() + scaled(20)
        while len(done) < extra and time.monotonic() < deadline:
            try:
                done.append(results.get(timeout=0.2))
            except queue.Empty:
                pass
        assert len(done) >= extra, done
        for path, st, body, dt in done:
            assert st == 503 and body["error"]["code"] == "busy", (path, st, body)
        pending = n - len(done) - results.qsize()
        assert pending >= queued, "fewer requests held than the queue (%d)" % pending
        # the Redis goes away: every held request is answered, 503 JSON
        hung.close()
        for t in threads:
            t.join(scaled(60))
        while not results.empty():
            done.append(results.get())
        assert len(done) == n
        for path, st, body, dt in done:
            assert st == 503 and isinstance(body, dict), (path, st, body)
            assert body["error"]["code"] in ("busy", "redis_error", "redis_unavailable"), body
        assert get(port, "/healthz")[0] == 200
        # the workers end and nothing is left behind (ASan builds: no leak)
        assert s.stop() == 0, s.tail()
        assert "Sanitizer" not in open(s.log_path, errors="replace").read()
    finally:
        hung.close()


def test_stop_with_api_requests_held(web):
    """SIGTERM while API requests wait on a Redis that never answers: the
    process exits 0 within a few redis.timeout_ms, every request ends (503
    JSON, or its connection closed by the stopping server), nothing leaks."""
    hung, port, s = serve_against_hung_redis(web, 2000, "serve-stop.log")
    try:
        results = queue.Queue()

        def call():
            try:
                st, body = get(port, "/api/v1/scopes", timeout=60)
                results.put((st, body))
            except OSError as e:  # closed by the stopping server
                results.put((None, repr(e)))

        threads = [threading.Thread(target=call, daemon=True) for _ in range(30)]
        for t in threads:
            t.start()
        wait_until("the API reading the hung Redis", lambda: hung.accepted() >= 1, 30, s)
        assert results.qsize() < 30
        assert s.stop() == 0, s.tail()
        for t in threads:
            t.join(scaled(30))
        assert results.qsize() == 30
        codes = []
        while not results.empty():
            st, body = results.get()
            assert st is None or (st == 503 and body["error"]["code"] in
                                  ("shutting_down", "redis_error", "redis_unavailable")), (st, body)
            codes.append(body["error"]["code"] if st else None)
        # the queued ones were answered by the workers on their way out
        assert "shutting_down" in codes, codes
        assert "Sanitizer" not in open(s.log_path, errors="replace").read()
    finally:
        hung.close()
