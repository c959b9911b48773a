#!/usr/bin/env python3
"""sse_load.py PORT PREFIX PHASE_S CLIENTS — the measuring half of bench/sse.sh.

With a funneld run instance on 127.0.0.1:PORT consuming a live feed:
phase A1 measures flush round trips for PHASE_S seconds with no stream
client; phase B opens CLIENTS event-stream clients that read everything
(over the scopes `all` and product=p1..p10) plus one client that never
reads (a 4 KiB receive buffer), waits until all are connected (an open
refused with 503 while the API's queue is full is retried after a jittered
backoff, as the screen retries), and
measures again for PHASE_S seconds; phase A2 closes them and measures
PHASE_S seconds more without. A is A1 and A2 pooled (so warm-up or a
neighbour's load at either end does not favour one side). Flush round trips come from funneld's
own histogram funneld_flush_duration_seconds (/metrics): the difference of
two scrapes per phase, quantiles interpolated inside a bucket as
Prometheus's histogram_quantile does. Prints one line:
  A_COUNT A_P50_MS A_P99_MS B_COUNT B_P50_MS B_P99_MS CONNECTED EVENTS_PER_CLIENT DROPPED
"""
import json
import random
import resource
import selectors
import socket
import sys
import time
import urllib.request


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    b = {}
    for line in text.splitlines():
        if line.startswith("funneld_flush_duration_seconds_bucket{le=\""):
            le = line.split('"')[1]
            b[float("inf") if le == "+Inf" else float(le)] = int(line.rsplit(" ", 1)[1])
    return b


def quantile(q, delta):
    d = sorted(delta.items())
    total = d[-1][1]
    if total == 0:
        return 0, float("nan")
    rank, prev_le, prev_c = q * total, 0.0, 0
    for le, c in d:
        if c >= rank:
            if le == float("inf"):
                return total, prev_le * 1000
            return total, (prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1)) * 1000
        prev_le, prev_c = le, c
    return total, float("nan")


def measure(port, secs):
    """The histogram's growth over secs: {le: cumulative count}."""
    a = scrape(port)
    time.sleep(secs)
    b = scrape(port)
    return {le: b[le] - a.get(le, 0) for le in b}


def summary(delta):
    n, p50 = quantile(0.5, delta)
    _, p99 = quantile(0.99, delta)
    return n, p50, p99


def main():
    port, prefix, phase, nclients = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, nclients + 256)), hard))
    a1 = measure(port, phase)
    sel = selectors.DefaultSelector()
    scopes = ["all"] + ["product%%3Dp%d" % i for i in range(1, 11)]
    socks, events, status, retry_at = {}, {}, {}, {}
    retries = [0]
    rng = random.Random(1)

    def open_client(i):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        s.sendall(("GET /api/v1/stream?scope=%s&minutes=5 HTTP/1.0\r\n\r\n" % scopes[i % len(scopes)]).encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks[i] = s
        status[i] = None

    def refused(i, s):
        """A stream refused (503 `busy` while the API's queue is full, as a
        burst of 1,000 opens makes it): closed and opened again after a
        jittered backoff, as the screen does."""
        sel.unregister(s)
        s.close()
        del socks[i]
        retries[0] += 1
        retry_at[i] = time.monotonic() + rng.uniform(0.2, 2.0)

    for i in range(nclients):
        open_client(i)
        events[i] = 0

    def open_slow():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /api/v1/stream?scope=all&minutes=60 HTTP/1.0\r\n\r\n")
        return s
    slow = open_slow()

    def pump(until):
        while time.monotonic() < until:
            now = time.monotonic()
            for i in [i for i, t in retry_at.items() if t <= now]:
                del retry_at[i]
                open_client(i)
            for key, _ in sel.select(timeout=0.1):
                i = key.data
                try:
                    data = key.fileobj.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if status[i] is None and data:
                    status[i] = data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
                    if not status[i]:
                        refused(i, key.fileobj)
                        continue
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                events[i] += data.count(b"\nevent: ")
    # connected: every client has its first (state) event; the slow one has
    # its 200 (it reads nothing else)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(1 for v in events.values() if v > 0) < nclients:
        pump(time.monotonic() + 0.5)
    while time.monotonic() < deadline:
        head = slow.recv(16, socket.MSG_PEEK)
        if head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"):
            break
        slow.close()
        retries[0] += 1
        time.sleep(rng.uniform(0.2, 2.0))
        slow = open_slow()
    print("sse_load: %d opens refused and retried" % retries[0], file=sys.stderr)
    connected = sum(1 for v in events.values() if v > 0)
    base = dict(events)
    import threading
    stop = time.monotonic() + phase + 0.5
    t = threading.Thread(target=pump, args=(stop,))
    t.start()
    b = summary(measure(port, phase))
    t.join()
    per = sum(events[i] - base[i] for i in events) / max(nclients, 1)
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/freshness" % port, timeout=10) as r:
        dropped = json.loads(r.read())["stream"]["dropped"]
    for s in socks.values():
        s.close()
    slow.close()
    a2 = measure(port, phase)
    a = summary({le: a1[le] + a2.get(le, 0) for le in a1})
    print("%d %.2f %.2f %d %.2f %.2f %d %.1f %d" % (a[0], a[1], a[2], b[0], b[1], b[2], connected, per, dropped))


if __name__ == "__main__":
    main()
