"""
test_screen.py — the live screen in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against the real stack of web_env.py:
the page loads without console errors, its funnel equals `funneld query`
for the same scope and window, a new batch moves the numbers through the
event stream without a reload, a firing alert shows within one evaluation
interval, and big-screen mode (dark, Chinese labels) renders; the same page
from a read-only `funneld serve`. Screenshots of both modes go to
$FUNNELD_BUILD/artifacts/ (docs/screen.png and docs/screen-big.png are
copies of them).
"""

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import scaled
from crafted import wait_until
from web_env import EVAL_MS, web  # noqa: F401  (the module fixture)

try:
    import selenium  # noqa: F401
except ImportError:  # Debian's python3-selenium, when pytest runs under another Python
    sys.path.append("/usr/lib/python3/dist-packages")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

ARTIFACTS = Path(os.environ.get("FUNNELD_BUILD") or Path(__file__).resolve().parents[2] / "build") / "artifacts"
FIELDS = ("uv_exposed", "uv_interacted", "uv_paid", "exposures", "interactions", "payments",
          "revenue", "interaction_rate", "conversion_rate")


@pytest.fixture(scope="module")
def browser():
    for f in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(f):
            pytest.fail("%s missing (deploy/stack.sh deps installs chromium, chromium-driver)" % f,
                        pytrace=False)
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1250", "--hide-scrollbars"):
        o.add_argument(a)
    o.binary_location = "/usr/bin/chromium"
    # performance: the DevTools network events (the stream's HTTP statuses)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(scaled(60))
    try:
        yield d
    finally:
        d.quit()


def console_errors(d):
    return [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def page_funnel(d):
    return d.execute_script(
        "var o = {}; arguments[0].forEach(function (k) {"
        " var v = document.getElementById('v-' + k).dataset.value;"
        " o[k] = v === '' ? null : Number(v); }); return o;", list(FIELDS))


def live(d):
    return d.execute_script("return document.getElementById('status').dataset.state") == "live"


def shot(d, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = ARTIFACTS / name
    d.save_screenshot(str(p))
    assert p.stat().st_size > 10000, "screenshot %s is empty" % p
    return p


def moved_by_update(d, window, before, proc):
    """Waits until an `update` event (counted by the page, not a reconnect's
    fresh `state`) carried exposures above before and the page shows them."""
    n0 = d.execute_script("return window.__fdUpdates")

    def moved():
        u = d.execute_script("return [window.__fdUpdates, window.__fdLastUpdate]")
        if u[0] <= n0 or not u[1]:
            return None
        e = (u[1]["windows"].get(window) or {}).get("exposures") or 0
        shown = page_funnel(d)["exposures"] or 0
        return e if e > before and shown >= e else None
    return wait_until("the page's numbers to move through an update", moved, 90, proc)


def test_screen_live(web, browser):
    d = browser
    scope, window = "product=p1", "1h"
    d.get("http://127.0.0.1:%d/?scope=product%%3Dp1&window=1h&hours=1&lang=en" % web.port)
    wait_until("the page live", lambda: live(d), 30, web.run)

    def equal_query():
        q = web.query(scope)[window]
        want = {k: float(q[k]) if q.get(k, "") != "" else None for k in FIELDS}
        got = page_funnel(d)
        return got if got == want else None
    # a snapshot tick between the two reads may differ in updated_at only:
    # the figures must match at the same tick
    got = wait_until("the page's funnel equal to funneld query", equal_query, 30, web.run)
    assert got["exposures"] > 0 and got["uv_paid"] > 0
    assert d.find_element("id", "f-conversion_rate").text.startswith("= ")
    loaded = d.execute_script("return window.__fdLoadedAt")
    assert console_errors(d) == []
    shot(d, "screen-before.png")

    # a new batch: the numbers move through the stream, no reload; the
    # product whose conversion fell fires within one evaluation interval
    web.produce_batch2()
    moved_by_update(d, window, got["exposures"], web.run)
    got2 = wait_until("the moved funnel equal to funneld query", equal_query, 30, web.run)
    assert got2["exposures"] > got["exposures"]
    assert d.execute_script("return window.__fdLoadedAt") == loaded, "the page reloaded"

    def firing_in_redis():
        for fp in web.r.cmd("SMEMBERS", "%s:alert:index" % web.prefix) or []:
            fp = fp.decode() if isinstance(fp, bytes) else fp
            h = web.r.cmd("HGETALL", "%s:alert:%s" % (web.prefix, fp)) or []
            h = {k.decode(): v.decode() for k, v in zip(h[::2], h[1::2])}
            if h.get("state") == "firing" and h.get("scope") == "product=p2":
                return h
    wait_until("P2Floor firing in Redis", firing_in_redis, 120, web.run)
    t0 = time.monotonic()
    sel = "#alerts tr[data-state='firing'][data-rule='P2Floor'][data-scope='product=p2']"
    wait_until("the firing alert on the page",
               lambda: d.find_elements("css selector", sel), 30, web.run)
    took = time.monotonic() - t0
    assert took <= scaled(EVAL_MS / 1000.0), "alert shown %.1fs after it fired" % took
    # the leaderboards the snapshot tick writes: the revenue board's top row
    # is the API's
    import urllib.parse
    from web_env import get
    top = get(web.port, "/api/v1/leaderboards?grouping=%s&window=1h&metric=revenue&limit=1"
              % urllib.parse.quote("product,channel"))[1]["rows"][0]["scope"]
    sel_b = "#boards table[data-board='product,channel:revenue'] tr:nth-child(2) td:nth-child(2)"

    def board_top():
        # read in the page in one step: the boards are re-rendered with
        # every update, so an element found first may be gone when read
        text = d.execute_script(
            "var e = document.querySelector(arguments[0]); return e ? e.textContent : null;", sel_b)
        return text == top
    wait_until("the revenue board on the page", board_top, 30, web.run)
    assert console_errors(d) == []
    p = shot(d, "screen.png")
    print("screenshot", p)



def test_screen_fractional_hours_fall_back_to_one(web, browser):
    """?hours=1.01 is no whole number of hours: the screen shows 1 h, as for
    any hour count it cannot use, instead of asking the stream for 60.6
    minutes — a 400 it reconnected to forever, never live."""
    d = browser
    d.get("about:blank")  # the previous test's page stops; its messages are not ours
    d.get_log("browser")
    d.get("http://127.0.0.1:%d/?scope=product%%3Dp1&window=1h&hours=1.01&lang=en" % web.port)
    wait_until("the page live", lambda: live(d), 30, web.run)
    assert console_errors(d) == []


def test_screen_big_mode_and_serve(web, browser):
    d = browser
    s = web.serve()
    d.get("http://127.0.0.1:%d/?mode=big&lang=zh&window=1h&rotate_s=5" % s.port)
    wait_until("the big screen live", lambda: live(d), 30, s)
    assert d.execute_script("return document.body.classList.contains('big')")
    assert d.execute_script("return getComputedStyle(document.body).backgroundColor") == "rgb(11, 18, 32)"
    big = d.execute_script("return parseFloat(getComputedStyle(document.getElementById('v-uv_exposed')).fontSize)")
    assert big >= 60
    assert d.find_element("css selector", "[data-i18n=uv_exposed]").text == "曝光用户"
    # auto-rotation over `all` and the products, on the read-only instance
    seen = set()
    wait_until("the scopes rotating",
               lambda: seen.add(d.find_element("id", "scope").get_attribute("value")) or len(seen) >= 2,
               60, s)
    wait_until("the rotated page live", lambda: live(d), 30, s)
    sc = d.find_element("id", "scope").get_attribute("value")
    q = web.query(sc)["1h"]
    wait_until("the big screen's funnel equal to funneld query",
               lambda: page_funnel(d)["exposures"] == float(q["exposures"]), 30, s)
    assert console_errors(d) == []
    shot(d, "screen-big.png")


def stream_statuses(d):
    """The HTTP statuses the browser got for /api/v1/stream since the last
    call (DevTools network events)."""
    import json
    out = []
    for e in d.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m.get("method") == "Network.responseReceived":
            r = m["params"]["response"]
            if "/api/v1/stream" in r.get("url", ""):
                out.append(r.get("status"))
    return out


def test_screen_back_after_redis_outage(web, browser, tmp_path):
    """A `funneld serve` on its own redis-server (a replica of the stack's,
    so it sees the writer's snapshots and update messages). Redis goes away
    and, while it is away, the stream's connection drops (here: the serve
    instance restarts on the same port, as a deploy or a proxy cut does):
    the browser's reconnect is answered 503 redis_unavailable, which closes
    an EventSource for good. Redis comes back: the page goes live again
    without a reload and its numbers move through an `update`."""
    import subprocess
    from alert_receivers import free_port
    from conftest import funneld_bin, redis_server_cmd, wait_ping
    from web_env import Serve, get
    port, rdir = free_port(), tmp_path / "replica"
    rdir.mkdir()
    cmd = redis_server_cmd(port, rdir, "--replicaof", "127.0.0.1", str(web.stack.redis_port))

    def replica_up():
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = wait_ping(port)
        wait_until("the replica in sync",
                   lambda: b"master_link_status:up" in r.cmd("INFO", "replication"), 30, web.run)
        return p
    srv = replica_up()
    try:
        s = web.serve(redis_url="redis://127.0.0.1:%d" % port)
        d = browser
        window = "1h"
        d.get("http://127.0.0.1:%d/?scope=product%%3Dp1&window=%s&hours=1&lang=en" % (s.port, window))
        wait_until("the page live", lambda: live(d), 30, s)
        loaded = d.execute_script("return window.__fdLoadedAt")
        before = page_funnel(d)["exposures"] or 0
        stream_statuses(d)  # drop what came before

        srv.terminate()
        srv.wait(timeout=scaled(20))
        s.stop()
        s2 = Serve(funneld_bin(), s.cfg_path, tmp_path / "serve-again.log")
        web.ctx.procs.append(s2)
        wait_until("the serve instance back, Redis away",
                   lambda: web._answers(s.port, s2) and get(s.port, "/api/v1/stream")[0] == 503, 30, s2)
        seen = []
        wait_until("the page's stream reconnect answered 503",
                   lambda: seen.extend(stream_statuses(d)) or 503 in seen, 60, s2)
        assert not live(d)

        srv = replica_up()
        wait_until("the page live again", lambda: live(d), 60, s2)
        web.produce_batch2(tag="b3")
        moved_by_update(d, window, before, s2)
        assert d.execute_script("return window.__fdLoadedAt") == loaded, "the page reloaded"
        # the 503s were the stream's and were retried: nothing else on the console
        assert [e for e in console_errors(d) if "503" not in e["message"]] == []

        # a page opened while Redis is away (its scopes answer 503) starts
        # once Redis is back, without a reload
        srv.terminate()
        srv.wait(timeout=scaled(20))
        wait_until("Redis away for the API", lambda: get(s.port, "/api/v1/scopes")[0] == 503, 30, s2)
        d.get("http://127.0.0.1:%d/?scope=product%%3Dp1&window=%s&hours=1&lang=en" % (s.port, window))
        loaded = d.execute_script("return window.__fdLoadedAt")
        wait_until("the page's start refused",
                   lambda: d.execute_script("return document.getElementById('status').dataset.state")
                   == "reconnecting", 30, s2)
        srv = replica_up()
        wait_until("the page live after a refused start", lambda: live(d), 60, s2)
        assert d.execute_script("return window.__fdLoadedAt") == loaded, "the page reloaded"
    finally:
        srv.terminate()
        srv.wait(timeout=scaled(20))


def test_screen_retention_panel(stack, browser, tmp_path):
    """With marketing on, the screen's L panel shows each retention day k as
    L = retained / cohort size, in the order of the days (d1, d7, d30), and
    equals `funneld query`; the figures of day 1 are worked by hand from the
    stream: 20 users first seen two days back (the cohort day k=1 shows,
    docs/REDIS.md), 7 of them active the next day."""
    import json
    import subprocess
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    from alert_receivers import free_port
    from conftest import Ctx, funneld_bin, produce_lines, wait_drained
    from crafted import event
    ctx = Ctx(stack, None, tmp_path, "screen_ret")
    try:
        tz = ZoneInfo("Asia/Shanghai")
        now_ms = int(time.time() * 1000)
        # the watermark's day starts at midnight M; the cohort lies on the day
        # before the day before M, the returns exactly one day later (same
        # day difference at any hour, no DST in Shanghai); a last event
        # lateness_s after M moves the watermark to M itself
        local = datetime.fromtimestamp((now_ms - 300000) / 1000, tz)
        m_ms = int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
        t_cohort = m_ms - 24 * 3600 * 1000 - 30 * 60000
        t_return = t_cohort + 24 * 3600 * 1000
        assert (datetime.fromtimestamp(t_return / 1000, tz).date()
                - datetime.fromtimestamp(t_cohort / 1000, tz).date()) == timedelta(days=1)
        tag = ctx.group[-8:]
        lines = []
        for i in range(20):
            lines.append(event(type="exposure", event_id="%s-c%d" % (tag, i), ts=t_cohort + i,
                               user_id="%s-u%d" % (tag, i), product_id="pr", channel="weibo"))
        for i in range(7):
            lines.append(event(type="interaction", event_id="%s-r%d" % (tag, i), ts=t_return + i,
                               user_id="%s-u%d" % (tag, i), product_id="pr", channel="weibo",
                               action="like"))
        lines.append(event(type="exposure", event_id=tag + "-last", ts=m_ms + 120000,
                           user_id=tag + "-other", product_id="pr", channel="weibo"))
        topic = "scrret." + ctx.group
        from conftest import create_topics
        create_topics(stack.bootstrap, {topic: 1})
        produce_lines(stack.bootstrap, [(topic, 0, lines, 0)])
        port = free_port()
        ttl = 4 * 86400
        cfg = ctx.config({topic: "mixed"}, lateness_s=120, marketing={"enabled": True},
                         ttl={"m1_s": ttl, "h1_s": 35 * 86400, "d1_s": 400 * 86400},
                         dedup_ttl_s=ttl + 3600, http={"listen": "127.0.0.1:%d" % port})
        run = ctx.start(cfg)
        r = stack.redis()
        wait_drained(r, ctx.prefix, ctx.group, {"%s:0" % topic: len(lines)}, [run])

        def query():
            p = subprocess.run([str(funneld_bin()), "query", "product=pr", "-c", str(cfg)],
                               capture_output=True, timeout=scaled(30))
            assert p.returncode == 0, p.stderr.decode()
            q = json.loads(p.stdout)["1h"]
            return q if q.get("cohort_size_d1") == "20" else None
        q = wait_until("the cohort in the product's snapshot", query, 60, run)
        assert (q["retained_d1"], q["retention_d1"]) == ("7", "0.350000"), q

        # the API's workers open their Redis connections on first use: every
        # one answers before the page asks (a slow first connect on a loaded
        # machine is the API's 503, logged by the browser as an error)
        from web_env import get
        wait_until("the API answering on every worker",
                   lambda: all(get(port, "/api/v1/scopes")[0] == 200 for _ in range(8)), 30, run)
        d = browser
        d.get("about:blank")  # the previous test's page stops; its messages are not ours
        d.get_log("browser")
        d.get("http://127.0.0.1:%d/?scope=product%%3Dpr&window=1h&hours=1&lang=en" % port)
        wait_until("the page live", lambda: live(d), 30, run)

        def pct(v):
            return "%.2f%%" % (float(v) * 100) if v != "" else "–"

        def num(v):
            return "{:,}".format(int(v)) if v != "" else "–"
        days = sorted(int(k[len("retention_d"):]) for k in q if k.startswith("retention_d"))
        assert days == [1, 7, 30], days
        want = " · ".join("d%d %s = %s / %s" % (k, pct(q["retention_d%d" % k]),
                                                num(q["retained_d%d" % k]),
                                                num(q["cohort_size_d%d" % k])) for k in days)
        assert want.startswith("d1 35.00% = 7 / 20 · d7 "), want

        def shown():
            e = d.find_element("id", "retention")
            text = d.find_element("id", "v-retention").text
            return text if e.is_displayed() and text == want else None
        wait_until("the L panel equal to funneld query (%s)" % want, shown, 30, run)
        assert console_errors(d) == []
        shot(d, "screen-retention.png")
        assert run.stop() == 0, run.tail()
    finally:
        ctx.cleanup()
