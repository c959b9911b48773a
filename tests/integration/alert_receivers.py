"""
alert_receivers.py — loopback receivers for the alert tests, and the checks
they apply to what they receive. Written from the public formats, not from
funneld's code:

- Alertmanager API v2 (POST /api/v2/alerts, body: a JSON array of postable
  alerts: labels {str: str} with alertname, annotations {str: str}, startsAt
  and endsAt as RFC 3339 date-times, generatorURL an absolute URI);
- Standard Webhooks signatures: webhook-signature holds space-separated
  "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>" entries; the secret
  is raw bytes, or base64 after a "whsec_" prefix.

Receiver is a real HTTP server (http.server) that can go down and come back
on the same port (an outage). Blackhole accepts TCP connections and
never answers (a receiver that hangs).
"""

import base64
import datetime
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
import urllib.parse


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


def _rfc3339(s):
    if not isinstance(s, str) or "T" not in s:
        raise ValueError("not a date-time: %r" % (s,))
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def am_v2_problems(req):
    """Problems with one Alertmanager v2 POST (empty list = valid)."""
    out = []
    if req["path"] != "/api/v2/alerts":
        out.append("path %s" % req["path"])
    if "application/json" not in req["headers"].get("content-type", ""):
        out.append("content-type %r" % req["headers"].get("content-type"))
    try:
        body = json.loads(req["body"])
    except ValueError as e:
        return out + ["body is not JSON: %s" % e]
    if not isinstance(body, list) or not body:
        return out + ["body is not a non-empty array"]
    for i, a in enumerate(body):
        if not isinstance(a, dict):
            out.append("[%d] not an object" % i)
            continue
        extra = set(a) - {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        if extra:
            out.append("[%d] unknown fields %s" % (i, sorted(extra)))
        labels = a.get("labels")
        if not isinstance(labels, dict) or not labels.get("alertname"):
            out.append("[%d] labels without alertname: %r" % (i, labels))
        elif not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            out.append("[%d] labels not all strings" % i)
        ann = a.get("annotations", {})
        if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
            out.append("[%d] annotations not all strings" % i)
        try:
            s, e = _rfc3339(a.get("startsAt")), _rfc3339(a.get("endsAt"))
            if e < s:
                out.append("[%d] endsAt before startsAt" % i)
        except ValueError as ex:
            out.append("[%d] %s" % (i, ex))
        g = urllib.parse.urlparse(a.get("generatorURL") or "")
        if not g.scheme:
            out.append("[%d] generatorURL is not an absolute URI: %r" % (i, a.get("generatorURL")))
    return out
