#!/usr/bin/env python3
"""
check_container.py — static checks of deploy/Containerfile and
deploy/compose.yaml (run by deploy/check.sh; no container daemon needed and
none is used). Debian bookworm packages no Containerfile linter (no
hadolint), so this checks what the files claim:

Containerfile
  - two stages: a debian:bookworm build stage, a debian:bookworm-slim runtime;
  - every COPY source exists in the repository, every COPY --from names an
    earlier stage; every source folder CMakeLists.txt compiles (its
    ${CMAKE_SOURCE_DIR}/DIR/*.c globs and add_subdirectory) is copied;
  - the runtime stage installs exactly the Debian packages of the shared
    libraries the built binaries link (`readelf -d` NEEDED → `ldd` path →
    `dpkg -S` package; libc6 is in the base image), plus curl for the health
    check, and no -dev package;
  - it runs as a non-root USER, EXPOSEs the port its HEALTHCHECK probes on
    /healthz, and its default config path is one it COPYs.
compose.yaml
  - it parses (python3-yaml) and has the services kafka, redis, funneld,
    gen; every build context, Containerfile, bind-mounted file and env_file
    exists; funneld's port is published on 127.0.0.1 only; the Kafka image
    is a KRaft image of the tested broker version; Redis runs
    deploy/redis.conf.

Usage: check_container.py BUILD_DIR   (exit 1 with one line per problem)
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
BINARIES = ("funneld", "funneld-gen")
BASE_PACKAGES = {"libc6"}  # in debian:bookworm-slim already
EXTRA_RUNTIME = {"curl"}  # the HEALTHCHECK's client
KAFKA_VERSION = "3.9.1"

problems = []


def problem(msg):
    problems.append(msg)


def instructions(text):
    """(keyword, argument text) per instruction, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        kw, _, arg = cur.partition(" ")
        out.append((kw.upper(), arg.strip()))
        cur = ""
    return out


def apt_packages(run_arg):
    """Packages named by `apt-get install` in a RUN line."""
    pk = []
    for cmd in re.split(r"&&|;", run_arg):
        w = shlex.split(cmd)
        if len(w) >= 2 and w[0] == "apt-get" and "install" in w:
            pk += [x for x in w[w.index("install") + 1:] if not x.startswith("-")]
    return pk


def needed_packages(build):
    pkgs = {}
    for b in BINARIES:
        path = build / b
        if not path.exists():
            problem("%s not built (build it first: cmake --build %s)" % (path, build))
            continue
        dyn = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                             check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
        ldd = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", str(path)], capture_output=True, text=True, check=True).stdout, re.M))
        for so in needed:
            lib = ldd.get(so)
            if not lib:
                problem("%s: %s not resolved by ldd" % (b, so))
                continue
            owner = None
            for cand in (lib, os.path.realpath(lib), "/usr" + lib if not lib.startswith("/usr")
                         else lib[4:]):
                r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0].strip()
                    break
            if not owner:
                problem("%s: no Debian package owns %s" % (b, lib))
                continue
            pkgs.setdefault(owner, set()).add(so)
    return pkgs


def check_containerfile(build):
    path = DEPLOY / "Containerfile"
    ins = instructions(path.read_text())
    stages = []  # [(name, base, [instructions])]
    for kw, arg in ins:
        if kw == "FROM":
            w = arg.split()
            stages.append((w[2] if len(w) >= 3 and w[1].upper() == "AS" else None, w[0], []))
        elif stages:
            stages[-1][2].append((kw, arg))
        else:
            problem("Containerfile: %s before the first FROM" % kw)
    if len(stages) < 2:
        problem("Containerfile: want a build stage and a runtime stage, got %d" % len(stages))
        return
    if stages[0][1] != "debian:bookworm":
        problem("Containerfile: build stage FROM %s, want debian:bookworm" % stages[0][1])
    if stages[-1][1] != "debian:bookworm-slim":
        problem("Containerfile: runtime stage FROM %s, want debian:bookworm-slim" % stages[-1][1])
    names = set()
    copied = set()
    for si, (name, _, body) in enumerate(stages):
        for kw, arg in body:
            if kw != "COPY":
                continue
            w = shlex.split(arg)
            frm = [x for x in w if x.startswith("--from=")]
            srcs = [x for x in w if not x.startswith("--")][:-1]
            if frm:
                if frm[0][7:] not in names:
                    problem("Containerfile: COPY %s names no earlier stage" % frm[0])
                continue
            for s in srcs:
                if not (ROOT / s).exists():
                    problem("Containerfile: COPY source %s does not exist" % s)
                copied.add(s.rstrip("/"))
        if name:
            names.add(name)
    cm = (ROOT / "CMakeLists.txt").read_text()
    dirs = set(re.findall(r"\$\{CMAKE_SOURCE_DIR\}/(\w+)/\*\.c", cm))
    dirs |= {d for d in re.findall(r"add_subdirectory\((\w+)\)", cm)}
    for d in sorted(dirs - copied):
        problem("Containerfile: the build compiles %s/ but does not COPY it" % d)
    if "CMakeLists.txt" not in copied:
        problem("Containerfile: CMakeLists.txt is not copied")

    rt = stages[-1][2]
    runtime = set()
    for kw, arg in rt:
        if kw == "RUN":
            runtime |= set(apt_packages(arg))
    dev = sorted(p for p in runtime if p.endswith("-dev"))
    if dev:
        problem("Containerfile: runtime stage installs -dev packages %s" % dev)
    want = needed_packages(build)
    need = set(want) - BASE_PACKAGES
    for p in sorted(need - runtime):
        problem("Containerfile: runtime stage lacks %s (for %s)" % (p, ", ".join(sorted(want[p]))))
    for p in sorted(runtime - need - EXTRA_RUNTIME):
        problem("Containerfile: runtime stage installs %s, which no binary links" % p)
    for p in sorted(EXTRA_RUNTIME - runtime):
        problem("Containerfile: runtime stage lacks %s" % p)

    users = [arg for kw, arg in rt if kw == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problem("Containerfile: the runtime stage must end as a non-root USER")
    hc = " ".join(arg for kw, arg in rt if kw == "HEALTHCHECK")
    m = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", hc)
    if not m:
        problem("Containerfile: no HEALTHCHECK against http://127.0.0.1:PORT/healthz")
    exposed = {x.split("/")[0] for kw, arg in rt if kw == "EXPOSE" for x in arg.split()}
    if m and m.group(1) not in exposed:
        problem("Containerfile: HEALTHCHECK port %s is not EXPOSEd (%s)" % (m.group(1), exposed))
    cmd = " ".join(arg for kw, arg in rt if kw == "CMD")
    cfg = re.search(r'"(/etc/funneld/[^"]+)"', cmd)
    dests = [shlex.split(arg)[-1] for kw, arg in rt if kw == "COPY"]
    if not cfg or cfg.group(1) not in dests:
        problem("Containerfile: CMD's config path is not a file the image COPYs (%s)" % cmd)
    return m.group(1) if m else None


def check_compose(port):
    path = DEPLOY / "compose.yaml"
    doc = yaml.safe_load(path.read_text())
    sv = doc.get("services") or {}
    for s in ("kafka", "redis", "funneld", "gen"):
        if s not in sv:
            problem("compose.yaml: no service %s" % s)
    for name, s in sv.items():
        b = s.get("build")
        if b:
            ctx = (DEPLOY / b.get("context", ".")).resolve()
            if not ctx.is_dir():
                problem("compose.yaml: %s build context %s missing" % (name, ctx))
            if not (ctx / b.get("dockerfile", "Dockerfile")).is_file():
                problem("compose.yaml: %s: %s missing" % (name, b.get("dockerfile")))
        for v in s.get("volumes") or []:
            src = v.split(":")[0]
            if src.startswith("."):
                if not (DEPLOY / src).exists():
                    problem("compose.yaml: %s mounts %s, which does not exist" % (name, src))
        for e in s.get("env_file") or []:
            if not (DEPLOY / e).is_file():
                problem("compose.yaml: %s env_file %s missing" % (name, e))
    f = sv.get("funneld", {})
    ports = f.get("ports") or []
    if not ports or any(not str(p).startswith("127.0.0.1:") for p in ports):
        problem("compose.yaml: funneld's ports must be published on 127.0.0.1 (%s)" % ports)
    if port and not any(str(p).endswith(":%s" % port) for p in ports):
        problem("compose.yaml: funneld does not publish the image's port %s" % port)
    k = sv.get("kafka", {})
    if k.get("image") != "apache/kafka:%s" % KAFKA_VERSION:
        problem("compose.yaml: kafka image %s, want apache/kafka:%s" % (k.get("image"),
                                                                         KAFKA_VERSION))
    if "controller" not in str((k.get("environment") or {}).get("KAFKA_PROCESS_ROLES")):
        problem("compose.yaml: kafka is not a KRaft broker+controller")
    r = sv.get("redis", {})
    if not any(str(v).startswith("./redis.conf:") for v in r.get("volumes") or []):
        problem("compose.yaml: redis does not mount deploy/redis.conf")


def main():
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
    port = check_containerfile(build)
    check_compose(port)
    for p in problems:
        print("check_container: " + p)
    if problems:
        return 1
    print("check_container: Containerfile and compose.yaml ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
