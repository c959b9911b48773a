#!/usr/bin/env python3
"""
latency_poll.py — produce time -> visible in Redis, for bench/latency.sh.

funneld-gen --probe-ms writes one line per latency probe to its probe log:
"SEQ PRODUCE_WALL_MS M1_BUCKET". Every probe is an exposure of product
__probe__ keyed "probe" (so all probes sit in one partition and funneld
flushes them in order); the k-th probe of a minute bucket is visible in Redis
once HGET {prefix}:c:product=__probe__:m1:{bucket} exposures >= k. This
script tails the log, polls those counters every ~2 ms (one pipelined round
trip for every bucket with probes still pending) and records, per probe,
the first wall time it was seen. Exits when the generator's pid is gone and
every probe is seen (or after --grace seconds); prints
"probes seen p50_ms p99_ms max_ms" on stdout.

usage: latency_poll.py PORT PREFIX PROBE_LOG GEN_PID [--grace S]
"""
import os
import socket
import sys
import time


def resp_read(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if t == b":":
        return int(rest)
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b"+":
        return rest
    if t == b"*":
        return [resp_read(f) for _ in range(int(rest))]
    raise RuntimeError("bad reply %r" % line)


def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    port, prefix, log_path, gen_pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    grace = float(sys.argv[sys.argv.index("--grace") + 1]) if "--grace" in sys.argv else 15.0
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    pending = {}  # bucket -> list of (rank, seq, produce_ms), oldest first
    rank = {}     # bucket -> probes logged so far
    lat = []
    nlogged = 0
    buf = b""
    gen_done_at = None
    while not os.path.exists(log_path):
        time.sleep(0.01)
    with open(log_path, "rb") as log:
        while True:
            buf += log.read()
            *lines, buf = buf.split(b"\n")
            for l in lines:
                seq, ms, bucket = l.split()
                rank[bucket] = rank.get(bucket, 0) + 1
                pending.setdefault(bucket, []).append((rank[bucket], int(ms)))
                nlogged += 1
            buckets = [b for b, v in pending.items() if v]
            if buckets:
                s.sendall(b"".join(cmd("HGET", "%s:c:product=__probe__:m1:%s" % (prefix, b.decode()), "exposures")
                                   for b in buckets))
                now = time.time() * 1000.0
                for b in buckets:
                    v = resp_read(f)
                    n = int(v) if v is not None else 0
                    q = pending[b]
                    while q and q[0][0] <= n:
                        lat.append(now - q[0][1])
                        q.pop(0)
            alive = True
            try:
                os.kill(gen_pid, 0)
                with open("/proc/%d/stat" % gen_pid) as st:
                    alive = st.read().split()[2] != "Z"
            except (OSError, IndexError):
                alive = False
            if not alive:
                gen_done_at = gen_done_at or time.time()
                if not any(pending.values()) or time.time() - gen_done_at > grace:
                    break
            time.sleep(0.002)
    print(nlogged, len(lat), "%.0f" % pct(lat, 50), "%.0f" % pct(lat, 99), "%.0f" % (max(lat) if lat else float("nan")))


if __name__ == "__main__":
    main()
