#!/usr/bin/env python3
"""alerts_line.py — one line summarising `funneld alerts` (JSON on stdin) for
deploy/quickstart.sh: who evaluates, the evaluated step, and each alert's
state. Prints "alerts: not evaluated (no lease holder)" when no funneld
instance evaluates rules."""
import datetime
import json
import sys


def main():
    doc = json.load(sys.stdin)
    holder = doc.get("lease_holder") or ""
    if not holder:
        print("alerts: not evaluated (no lease holder)")
        return
    cur = int(doc.get("cursor") or 0)
    step = datetime.datetime.fromtimestamp(cur, datetime.timezone.utc).strftime("%H:%MZ") \
        if cur else "-"
    states = ["%s %s %s" % (a.get("rule", "?"), a.get("scope", "?"), a.get("state", "?"))
              for a in doc.get("alerts", [])]
    print("alerts: evaluated by %s up to %s; %s" % (
        holder, step, ", ".join(sorted(states)) if states else "none pending or firing"))


if __name__ == "__main__":
    main()
