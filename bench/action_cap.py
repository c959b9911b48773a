#!/usr/bin/env python3
"""
action_cap.py — `funneld replay` over N interactions carrying D distinct
actions, into a fresh redis-server on a free loopback port (started and
stopped here). Prints the replay's wall time, the widest counter hash
(HLEN, MEMORY USAGE), the flush scripts' total time (INFO commandstats) and
those slower than 10 ms (SLOWLOG).

    python3 bench/action_cap.py build/funneld 100000 100000   # hostile: all distinct
    python3 bench/action_cap.py build/funneld 100000 6        # six common actions
    python3 bench/action_cap.py build/funneld 100000 100000 '{"flush_max_events": 5000}'
"""
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time

binary, n, distinct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
d = tempfile.mkdtemp(prefix="funneld-acap.")
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)


def cli(*a):
    return subprocess.run(["redis-cli", "-p", str(port), *map(str, a)],
                          capture_output=True, text=True).stdout


try:
    for _ in range(100):
        if cli("PING").strip() == "PONG":
            break
        time.sleep(0.05)
    now = int(time.time() * 1000)
    t0 = (now - 3600_000) // 3600_000 * 3600_000
    common = ["click", "like", "comment", "share", "join_group", "trial"]
    with open(d + "/in.jsonl", "w") as f:
        for i in range(n):
            a = "act%06d" % (i % distinct) if distinct > len(common) else common[i % distinct]
            f.write(json.dumps({"event_id": "e%d" % i, "type": "interaction",
                                "ts": t0 + i * 3000_000 // n, "user_id": "u%d" % (i % 5000),
                                "product_id": "p%d" % (i % 10), "channel": "wechat_group",
                                "action": a}) + "\n")
    cfg = {"redis": {"url": "redis://127.0.0.1:%d" % port}, "http": {"listen": ""}}
    cfg.update(extra)
    with open(d + "/c.json", "w") as f:
        json.dump(cfg, f)
    cli("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    cli("CONFIG", "SET", "slowlog-max-len", "100000")
    t = time.monotonic()
    p = subprocess.run([binary, "replay", "-c", d + "/c.json", d + "/in.jsonl"],
                       capture_output=True, text=True)
    wall = time.monotonic() - t
    if p.returncode != 0:
        sys.exit("replay failed:\n" + p.stderr[-2000:])
    keys = cli("--scan", "--pattern", "funnel:c:*").split()
    width, widest = max((int(cli("HLEN", k)), k) for k in keys)
    mem = cli("MEMORY", "USAGE", widest).strip()
    raw = cli("SLOWLOG", "GET", "100000").split("\n")
    slow = sorted(int(raw[i - 1]) for i in range(1, len(raw)) if raw[i] == "EVALSHA")
    st = [ln for ln in cli("INFO", "commandstats").splitlines()
          if ln.startswith("cmdstat_evalsha:")][0]
    print("events %d, distinct actions %d: replay %.2f s; widest hash %d fields, %s bytes; "
          "%s; scripts over 10 ms: %d, slowest %.3f s"
          % (n, distinct, wall, width, mem, st, len(slow), slow[-1] / 1e6 if slow else 0))
finally:
    rs.terminate()
    rs.wait()
    shutil.rmtree(d, ignore_errors=True)
