"""
alert_receivers.py — loopback receivers for the alert tests, and the checks
they apply to what they receive. Written from the public formats, not from
funneld's code:

- Alertmanager API v2: checked by a real Alertmanager (below), which
  validates every POST /api/v2/alerts itself;
- Standard Webhooks signatures: webhook-signature holds space-separated
  "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>" entries; the secret
  is raw bytes, or base64 after a "whsec_" prefix.

Receiver is a real HTTP server (http.server) that can go down and come back
on the same port (an outage). Blackhole accepts TCP connections and
never answers (a receiver that hangs).

Alertmanager is the real thing (Debian's prometheus-alertmanager 0.25,
installed by deploy/stack.sh deps): started per test on a free loopback port
with its own storage directory and clustering off, stopped by pid. Tests
read what it made of funneld's posts through its own API and metrics:
GET /api/v2/alerts lists the alerts it holds that are not resolved (an
alert whose endsAt has passed is resolved and no longer listed; the
`status.state` of a listed one is active, suppressed or unprocessed), and
`alertmanager_alerts_received_total{status="firing"|"resolved"}` /
`alertmanager_alerts_invalid_total` count each posted alert as it judged it.
Its notifications (send_resolved) go to a Receiver.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import scaled

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def _bound_socket(port):
    """A TCP socket bound to 127.0.0.1:port (0: any free port), not listening:
    connections to it are refused, and nothing else can take the port."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s


class Receiver:
    """Records every request as dict(method, path, headers (lower-case
    names), body, t). Answers `status` (200 by default).

    start() listens; down() stops serving but keeps the port bound (so
    connections are refused, and no other process can take the port during
    the outage); start() again serves on the same port."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        self.lock = threading.Lock()
        self.server = None
        self.thread = None
        self.sock = _bound_socket(0)
        self.port = self.sock.getsockname()[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rec.lock:
                    rec.requests.append({
                        "method": "POST", "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "t": time.time()})
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        if self.sock is None:
            self.sock = _bound_socket(self.port)
        self.server = _Server(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket, self.sock = self.sock, None
        self.server.server_activate()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def _shutdown(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(10)
            self.server = None

    def down(self):
        """An outage: the port stays bound but refuses connections."""
        self._shutdown()
        self.sock = _bound_socket(self.port)

    def stop(self):
        self._shutdown()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def snapshot(self):
        with self.lock:
            return list(self.requests)


class Blackhole:
    """Accepts connections, reads nothing, answers nothing, holds them open."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class Alertmanager:
    """A real Alertmanager on 127.0.0.1:port, storage in workdir. Every alert
    is its own group (group_by ...), notified at once and on each change
    (group_wait 0s, group_interval 1s) to self.hook, resolves included."""

    def __init__(self, workdir):
        self.dir = workdir / ("alertmanager-%s" % os.urandom(3).hex())
        self.dir.mkdir()
        self.hook = Receiver()
        self.proc = None
        self.port = None
        self.log = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        if not os.access(ALERTMANAGER_BIN, os.X_OK):
            pytest.fail("%s not found (deploy/stack.sh deps installs prometheus-alertmanager)"
                        % ALERTMANAGER_BIN, pytrace=False)
        self.hook.start()
        cfg = self.dir / "alertmanager.yml"
        cfg.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: ['...']\n"
            "  group_wait: 0s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            "      - url: %s/am\n"
            "        send_resolved: true\n" % self.hook.url)
        # free_port() can race another process for the port: then it exits
        # at once and is started again on another one
        for attempt in range(3):
            self.port = free_port()
            self.log = open(self.dir / ("alertmanager-%d.log" % attempt), "wb")
            self.proc = subprocess.Popen(
                [ALERTMANAGER_BIN, "--config.file=%s" % cfg,
                 "--storage.path=%s" % (self.dir / "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--cluster.listen-address=", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + scaled(30)
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(self.url + "/-/ready", timeout=5) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    pass
                time.sleep(0.1)
            self._kill()
        self.hook.stop()
        pytest.fail("Alertmanager did not become ready:\n%s" % self.tail(), pytrace=False)

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.log is not None:
            self.log.close()

    def stop(self):
        self._kill()
        self.hook.stop()

    def tail(self, n=30):
        if self.log is None:
            return ""
        text = open(self.log.name, "rb").read().decode(errors="replace").splitlines()
        return "--- %s last %d lines:\n%s" % (self.log.name, n, "\n".join(text[-n:]))

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=scaled(10)) as r:
            return r.read().decode()

    def alerts(self, **labels):
        """GET /api/v2/alerts: the alerts it holds unresolved, those whose
        labels include `labels`."""
        out = json.loads(self._get("/api/v2/alerts"))
        return [a for a in out if all(a["labels"].get(k) == v for k, v in labels.items())]

    def metric(self, name, **labels):
        """The value of one sample of /metrics (0 when absent)."""
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self._get("/metrics").splitlines():
            m = re.match(r"^%s(?:\{(.*)\})? (\S+)$" % re.escape(name), line)
            if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
                return float(m.group(2))
        return 0.0

    def received(self, status):
        """Alerts posted to the v2 API that it counted as firing/resolved."""
        return int(self.metric("alertmanager_alerts_received_total", status=status, version="v2"))

    def invalid(self):
        return int(self.metric("alertmanager_alerts_invalid_total", version="v2"))

    def notifications(self):
        """Its webhook notifications, as parsed JSON, in arrival order."""
        return [json.loads(q["body"]) for q in self.hook.snapshot()]

    def notified(self, status, **labels):
        """The alerts of its notifications with this status and labels."""
        return [a for n in self.notifications() for a in n["alerts"]
                if a["status"] == status and all(a["labels"].get(k) == v
                                                 for k, v in labels.items())]


# ---------------------------------------------------------------- checks

def verify_webhook(req, secret, now=None, tolerance_s=300):
    """Returns None if the request carries a valid Standard Webhooks
    signature for this secret, else a reason."""
    h = req["headers"]
    wid, ts, sig = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not wid or not ts or not sig:
        return "missing webhook-* headers: %s" % sorted(h)
    try:
        t = int(ts)
    except ValueError:
        return "webhook-timestamp not an integer: %r" % ts
    now = time.time() if now is None else now
    if abs(now - t) > tolerance_s:
        return "timestamp %d too far from now %d" % (t, now)
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    want = base64.b64encode(hmac.new(key, b"%s.%s." % (wid.encode(), ts.encode()) + req["body"],
                                     hashlib.sha256).digest()).decode()
    for part in sig.split():
        ver, _, val = part.partition(",")
        if ver == "v1" and hmac.compare_digest(val, want):
            return None
    return "no v1 signature matches (got %r)" % sig
