#!/usr/bin/env python3
"""check_includes.py — each folder is one floor; includes only point down.

Reads every `#include "..."` line of the C tree (.c and .h files) and fails,
naming file:line, when
  - a file sits in a folder that is neither a floor nor outside the house;
  - a floor includes a header of a higher floor (both floors are named);
  - a file includes a header of another folder that is not one of that
    folder's public faces (PUBLIC below);
  - an include names a file that does not exist (a path left stale by a move);
  - the file-level include graph has a cycle (the cycle is printed).
`#include <...>` lines (system and library headers) are not looked at.

The floor order, written once, top to bottom (a file may include its own
folder and any folder below it): see FLOORS. README's "Layout" table and
docs/ARCHITECTURE.md ("The house: floors") explain the order.

Usage: python3 .ci/check_includes.py [--root DIR] [--quiet]
       python3 .ci/check_includes.py --self-test
Exit status: 0 clean, 1 violations found, 2 usage error.
"""
import os
import re
import sys
import tempfile

# ---- the house, top floor first ------------------------------------------------
FLOORS = [
    "app",          # main.c, daemon.c (the only place that builds objects), inspect.c
    "web",          # the live screen, /api/v1 and its event stream (reads Redis only)
    "pipeline",     # the per-partition state machine; deps passed in
    "alerts",       # evaluator loop side, evaluator, store (keys, scripts), outputs
    "sinks",        # Redis writer, its scripts and key builders, dead-letter producer
    "consumers",    # the source contract, Kafka and JSON Lines sources
    "aggregators",  # per-partition deltas
    "ops",          # /metrics text, the HTTP endpoint
    "conf",         # the key table, redis.url
    "model",        # events, scopes, windows, alert rules: pure, no I/O, no clock
    "base",         # log, errors, clock, durations, hex, set64, Kafka client helpers
]

# Folders outside the house: they may include any header of any floor (tests
# are white-box). They are not floors, so nothing may include them.
OUTSIDE = ["tests", "bench"]

# Which headers a folder shows to OTHER folders. None: every header is public
# (the ground: small libraries). A folder's own files may include any of its
# headers.
PUBLIC = {
    "app": set(),
    "web": {"web.h"},
    "pipeline": {"pipeline.h"},
    "alerts": {"alerts.h"},
    "sinks": {"sink.h", "redis_sink.h", "redis_keys.h", "redis_scripts.h", "dlq.h"},
    "consumers": {"source.h", "kafka_source.h", "file_source.h"},
    "aggregators": {"agg.h", "batch.h"},
    "ops": {"metrics.h", "http.h"},
    "conf": {"conf.h"},
    "model": None,
    "base": None,
}

SKIP_DIRS = {".git", "build", "node_modules", "peers"}  # bench/peers: Java
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# <dir/x.h> reaches a project header too (the repository root is on the
# include path), so the form is refused for project folders: it would pass
# by the floor checks.
ANGLE_RE = re.compile(r'^\s*#\s*include\s+<([^/>]+)/[^>]*>')


def c_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        at_top = os.path.normpath(dirpath) == os.path.normpath(root)
        # build trees live at the top level only; a floor's own "builders/"
        # folder is checked like any other
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not d.startswith(".")
                             and not (at_top and d.startswith("build")))
        for f in sorted(filenames):
            if f.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")


def top(path):
    return path.split("/", 1)[0] if "/" in path else ""


def check(root, out=sys.stdout):
    floor_of = {name: i for i, name in enumerate(FLOORS)}
    problems = []
    graph = {}      # file -> [(included file, line)]
    files = list(c_files(root))
    for f in files:
        folder = top(f)
        if folder not in floor_of and folder not in OUTSIDE:
            where = folder or "(top level)"
            problems.append("%s: folder %s is not in the floor list (%s) nor outside (%s)"
                            % (f, where, " > ".join(FLOORS), ", ".join(OUTSIDE)))
        edges = graph.setdefault(f, [])
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            for ln, line in enumerate(fh, 1):
                a = ANGLE_RE.match(line)
                if a and (a.group(1) in floor_of or a.group(1) in OUTSIDE):
                    problems.append('%s:%d: includes <%s/...> with angle brackets; project headers '
                                    'are included with quotes (so these checks see them)'
                                    % (f, ln, a.group(1)))
                    continue
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                # "dir/x.h" is from the root (the build's one include dir); a bare
                # "x.h" is beside the including file.
                target = inc if "/" in inc else (os.path.dirname(f) + "/" + inc).lstrip("/")
                target = os.path.normpath(target).replace(os.sep, "/")
                if not os.path.isfile(os.path.join(root, target)):
                    problems.append('%s:%d: includes "%s", which does not exist' % (f, ln, inc))
                    continue
                edges.append((target, ln))
                dst = top(target)
                if dst == folder:
                    continue
                if dst in OUTSIDE or dst not in floor_of:
                    problems.append('%s:%d: includes "%s" from %s, which is not a floor'
                                    % (f, ln, inc, dst or "(top level)"))
                    continue
                if folder in OUTSIDE:
                    continue
                if folder not in floor_of:
                    continue  # already reported
                if floor_of[dst] < floor_of[folder]:
                    problems.append('%s:%d: floor %s (%d) includes "%s" from higher floor %s (%d)'
                                    % (f, ln, folder, floor_of[folder] + 1, inc, dst,
                                       floor_of[dst] + 1))
                pub = PUBLIC.get(dst)
                if pub is not None and os.path.basename(target) not in pub:
                    problems.append('%s:%d: includes "%s", which is private to %s/ (public: %s)'
                                    % (f, ln, inc, dst, ", ".join(sorted(pub)) or "none"))
    for cyc in cycles(graph):
        problems.append("include cycle: " + " -> ".join(cyc))
    for p in problems:
        print(p, file=out)
    return problems


def cycles(graph):
    """Each cycle of the include graph once (iterative DFS, colour marking)."""
    found, seen_keys = [], set()
    colour = {}
    for start in sorted(graph):
        if colour.get(start):
            continue
        stack = [(start, iter(graph.get(start, [])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            child = nxt[0]
            c = colour.get(child, 0)
            if c == 0:
                colour[child] = 1
                stack.append((child, iter(graph.get(child, []))))
                path.append(child)
            elif c == 1:
                cyc = path[path.index(child):] + [child]
                key = frozenset(cyc)
                if key not in seen_keys:
                    seen_keys.add(key)
                    found.append(cyc)
    return found


# ---- self-test: a tree laid out as planned passes; each kind of break fails ------

TARGET = {
    "app/main.c": ["app/app.h", "base/log.h", "conf/conf.h"],
    "app/app.h": ["conf/conf.h", "base/log.h"],
    "app/daemon.c": ["app/app.h", "pipeline/pipeline.h", "alerts/alerts.h", "sinks/redis_sink.h",
                     "sinks/dlq.h", "consumers/kafka_source.h", "consumers/file_source.h",
                     "aggregators/agg.h", "ops/metrics.h", "ops/http.h", "base/clock.h"],
    "app/inspect.c": ["app/app.h", "sinks/redis_sink.h", "sinks/redis_keys.h", "model/event.h",
                      "base/duration.h", "base/clock.h"],
    "pipeline/pipeline.h": ["consumers/source.h", "sinks/sink.h", "aggregators/agg.h",
                            "aggregators/batch.h", "model/event.h", "conf/conf.h", "base/log.h"],
    "pipeline/pipeline.c": ["pipeline/pipeline.h", "model/window.h", "base/clock.h"],
    "alerts/alerts.h": ["conf/conf.h", "base/log.h"],
    "alerts/alerts_int.h": ["alerts/alerts.h", "alerts/outputs.h", "model/alert_rule.h"],
    "alerts/alerts.c": ["alerts/alerts_int.h", "alerts/evaluator.h", "base/clock.h"],
    "alerts/evaluator.h": ["alerts/alerts_int.h"],
    "alerts/evaluator.c": ["alerts/evaluator.h", "alerts/store.h", "model/scope.h",
                           "model/window.h", "base/clock.h"],
    "alerts/store.h": ["alerts/alerts_int.h"],
    "alerts/store.c": ["alerts/store.h", "sinks/redis_keys.h", "sinks/redis_scripts.h",
                       "sinks/redis_sink.h", "model/window.h"],
    "alerts/outputs.h": ["conf/conf.h", "base/log.h", "model/alert_rule.h"],
    "alerts/outputs.c": ["alerts/outputs.h", "base/kafka.h", "base/clock.h"],
    "sinks/sink.h": ["aggregators/batch.h", "base/err.h"],
    "sinks/redis_keys.h": [],
    "sinks/redis_scripts.h": [],
    "sinks/redis_sink.h": ["sinks/sink.h", "aggregators/batch.h", "conf/conf.h", "base/log.h"],
    "sinks/redis_sink.c": ["sinks/redis_sink.h", "sinks/redis_keys.h", "sinks/redis_scripts.h",
                           "model/window.h", "base/set64.h", "base/clock.h"],
    "sinks/dlq.h": ["sinks/sink.h", "conf/conf.h", "base/log.h"],
    "sinks/dlq.c": ["sinks/dlq.h", "base/kafka.h"],
    "consumers/source.h": [],
    "consumers/kafka_source.h": ["consumers/source.h", "conf/conf.h", "base/log.h"],
    "consumers/kafka_source.c": ["consumers/kafka_source.h", "base/kafka.h", "base/clock.h"],
    "consumers/file_source.h": ["consumers/source.h"],
    "consumers/file_source.c": ["consumers/file_source.h"],
    "aggregators/agg.h": ["aggregators/batch.h", "model/event.h", "conf/conf.h"],
    "aggregators/agg.c": ["aggregators/agg.h", "model/scope.h", "model/window.h"],
    "aggregators/batch.h": ["model/window.h", "model/event.h"],
    "aggregators/batch.c": ["aggregators/batch.h", "base/set64.h"],
    "ops/metrics.h": ["model/event.h", "model/alert_rule.h", "conf/conf.h"],
    "ops/metrics.c": ["ops/metrics.h", "model/scope.h"],
    "ops/http.h": ["conf/conf.h"],
    "ops/http.c": ["ops/http.h", "base/log.h", "base/clock.h"],
    "conf/conf.h": ["model/alert_rule.h", "model/scope.h", "model/event.h", "base/kafka.h"],
    "conf/conf.c": ["conf/conf.h", "base/err.h", "base/duration.h"],
    "conf/redis_url.c": ["conf/conf.h", "base/hex.h", "base/err.h"],
    "model/event.h": [],
    "model/event.c": ["model/event.h", "base/hex.h"],
    "model/scope.h": ["model/event.h"],
    "model/scope.c": ["model/scope.h", "base/hex.h"],
    "model/window.h": [],
    "model/window.c": ["model/window.h"],
    "model/alert_rule.h": ["model/scope.h"],
    "model/alert_rule.c": ["model/alert_rule.h", "base/err.h", "base/duration.h"],
    "base/log.h": [], "base/log.c": ["base/log.h"],
    "base/err.h": [], "base/err.c": ["base/err.h"],
    "base/clock.h": [], "base/hex.h": [],
    "base/duration.h": [], "base/duration.c": ["base/duration.h"],
    "base/set64.h": [], "base/set64.c": ["base/set64.h"],
    "base/kafka.h": [], "base/kafka.c": ["base/kafka.h", "base/log.h"],
    "tests/unit/test_pipeline.c": ["pipeline/pipeline.h", "sinks/sink.h", "aggregators/agg.h",
                                   "model/event.h", "conf/conf.h"],
    "tests/unit/test_alert_rule.c": ["model/alert_rule.h", "alerts/outputs.h"],
    "tests/unit/test_duration.c": ["base/duration.h"],
    "tests/fuzz/fuzz_event.c": ["model/event.h"],
    "bench/hotpath.c": ["aggregators/agg.h", "conf/conf.h"],
}


def write_tree(root, tree):
    for path, incs in tree.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as fh:
            fh.write("/* fixture */\n#include <stdint.h>\n")
            for inc in incs:
                fh.write('#include %s\n' % (inc if inc.startswith("<") else '"%s"' % inc))


def self_test():
    cases = [
        ("target layout", {}, None),
        ("lower includes higher", {"base/log.c": ["base/log.h", "conf/conf.h"]},
         "floor base (%d) includes \"conf/conf.h\" from higher floor conf (%d)"
         % (FLOORS.index("base") + 1, FLOORS.index("conf") + 1)),
        ("model sees sinks", {"model/window.c": ["model/window.h", "sinks/redis_keys.h"]},
         "from higher floor sinks"),
        ("private header", {"app/daemon.c": ["alerts/store.h"]}, "private to alerts/"),
        ("private header from below", {"pipeline/pipeline.c": ["pipeline/pipeline.h", "alerts/outputs.h"]},
         "private to alerts/"),
        ("consumers sees pipeline", {"consumers/file_source.h": ["pipeline/pipeline.h"]},
         "floor consumers (%d) includes \"pipeline/pipeline.h\" from higher floor pipeline (%d)"
         % (FLOORS.index("consumers") + 1, FLOORS.index("pipeline") + 1)),
        ("unknown folder", {"core/pipeline.c": ["base/log.h"]}, "folder core is not in the floor list"),
        ("util grab bag", {"util/misc.h": []}, "folder util is not in the floor list"),
        ("stale path", {"aggregators/agg.c": ["aggregators/agg.h", "core/conf.h"]},
         'includes "core/conf.h", which does not exist'),
        ("cycle", {"model/scope.h": ["model/event.h", "model/alert_rule.h"]}, "include cycle:"),
        ("include of tests", {"base/err.c": ["tests/unit/test_duration.c"]}, "which is not a floor"),
        ("angle brackets", {"base/log.c": ["base/log.h", "<pipeline/pipeline.h>"]},
         "includes <pipeline/...> with angle brackets"),
        ("system header with a slash", {"base/log.c": ["base/log.h", "<sys/types.h>"]}, None),
    ]
    failed = 0
    for name, change, expect in cases:
        with tempfile.TemporaryDirectory() as d:
            tree = dict(TARGET)
            tree.update(change)
            write_tree(d, tree)
            sink = open(os.devnull, "w")
            got = check(d, out=sink)
            sink.close()
            if expect is None:
                ok = not got
            else:
                ok = any(expect in p for p in got)
            if not ok:
                failed += 1
                print("self-test FAILED: %s: expected %s, got:\n  %s"
                      % (name, repr(expect) if expect else "no problems", "\n  ".join(got) or "(none)"))
    print("self-test: %d of %d cases passed" % (len(cases) - failed, len(cases)))
    return 1 if failed else 0


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    quiet = False
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        if a == "--self-test":
            return self_test()
        if a == "--root" and args:
            root = args.pop(0)
        elif a == "--quiet":
            quiet = True
        else:
            print(__doc__.strip().split("\n\n")[-2], file=sys.stderr)
            return 2
    problems = check(root, out=open(os.devnull, "w") if quiet else sys.stdout)
    if problems:
        print("check_includes: %d problem(s); floors, top first: %s" % (len(problems), " > ".join(FLOORS)),
              file=sys.stderr)
        return 1
    if not quiet:
        print("check_includes: clean (%s)" % " > ".join(FLOORS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
