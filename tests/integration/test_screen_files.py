"""
test_screen_files.py — the screen's static file server must
never read outside the screen's folder. When funneld finds no dashboard
folder (an installed binary without share/funneld/dashboard, as in
docs/DEPLOY.md's systemd steps), web.c's dir is "" and serve_file() opens
"/" + NAME: every file directly under the filesystem root is served.
No Kafka or Redis needed: static files are answered without either.
"""
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_no_dashboard_dir_serves_nothing_outside_it(tmp_path):
    src = Path(os.environ.get("FUNNELD_BIN") or REPO / "build" / "funneld")
    exe = tmp_path / "bin" / "funneld"  # no dashboard/ beside it, no ../share/funneld
    exe.parent.mkdir()
    shutil.copy(src, exe)
    # a regular file directly under "/" for the probe (removed afterwards)
    probe = Path("/screen-files-probe-%d.txt" % os.getpid())
    probe.write_text("outside the screen's folder\n")
    port = free_port()
    p = subprocess.Popen([str(exe), "serve", "--redis", "redis://127.0.0.1:1", "--brokers",
                          "127.0.0.1:1", "--set", "http.listen=127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "funneld serve never listened"
                time.sleep(0.1)
        st, body = status(port, "/" + probe.name)
        assert st == 404, "served %s from the filesystem root: %r" % (probe, body[:80])
        st, _ = status(port, "/tmp")  # a directory under "/": opened, then 500
        assert st == 404, "opened /tmp (status %d)" % st
    finally:
        p.terminate()
        p.wait(timeout=30)
        probe.unlink()
