#!/usr/bin/env bash
# check.sh — checks the deploy files as far as a machine without a container
# daemon and without systemd as PID 1 allows (deploy/test.sh runs it as its
# own step; docs/DEPLOY.md "What CI checks"):
#
# 1. systemd units: `systemd-analyze verify` of funneld.service and
#    funneld@.service (as funneld@1.service) in a throwaway root that holds
#    the real built binary at the unit's ExecStart path (/usr/local/bin/funneld)
#    and this machine's systemd units (the targets the unit depends on). Any
#    output fails, warnings included (verify exits 0 on an unknown key). Then
#    `systemd-analyze security --offline` must rate the sandbox at most
#    $FD_UNIT_EXPOSURE_MAX (2.0, "OK").
# 2. Containerfile and compose.yaml: deploy/check_container.py (Debian
#    bookworm packages no Containerfile linter, hadolint included), and
#    `docker-compose config -q` (Debian's docker-compose validates the file
#    against the Compose schema without a daemon).
# 3. Redis: a redis-server started with deploy/redis.conf (on a free loopback
#    port, in a temp dir) reports the settings funneld needs.
# 4. Configurations: deploy/funneld.example.json and the compose one pass
#    `funneld check-config`.
#
#   deploy/check.sh [BUILD_DIR]     (default: $FD_BUILD_DIR or build/)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY=$ROOT/deploy
BUILD=$(cd "${1:-${FD_BUILD_DIR:-$ROOT/build}}" && pwd) || { echo "check.sh: no build dir" >&2; exit 1; }
EXPOSURE_MAX=${FD_UNIT_EXPOSURE_MAX:-2.0}
FAILED=0
fail() { echo "check.sh: FAILED: $*" >&2; FAILED=1; }
ok() { echo "check.sh: ok: $*"; }

TMP=$(mktemp -d /tmp/funneld-deploy-check.XXXXXX)
REDIS_PID=
cleanup() {
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

for b in funneld funneld-gen; do
  [ -x "$BUILD/$b" ] || { echo "check.sh: $BUILD/$b not built" >&2; exit 1; }
done

# ---- 1. systemd units
R=$TMP/root
mkdir -p "$R/usr/local/bin" "$R/etc/systemd/system" "$R/usr/lib/systemd"
cp "$BUILD/funneld" "$R/usr/local/bin/funneld"
cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/"
cp "$DEPLOY/funneld.service" "$DEPLOY/funneld@.service" "$R/etc/systemd/system/"
for u in funneld.service funneld@1.service; do
  out=$(cd / && systemd-analyze verify --root="$R" "$u" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] || [ -n "$out" ]; then
    fail "systemd-analyze verify $u (exit $rc):"; printf '%s\n' "$out" | sed 's/^/    /' >&2
  else
    ok "systemd-analyze verify $u"
  fi
  sec=$(cd / && systemd-analyze security --offline=yes --root="$R" "$u" 2>&1 | grep 'Overall exposure level')
  level=$(printf '%s\n' "$sec" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
  if [ -z "$level" ] || ! awk -v l="$level" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(l <= m) }'; then
    fail "systemd-analyze security $u: exposure '${level:-?}' above $EXPOSURE_MAX ($sec)"
  else
    ok "systemd-analyze security $u: exposure $level (at most $EXPOSURE_MAX)"
  fi
done

# ---- 2. Containerfile and compose.yaml
if python3 "$DEPLOY/check_container.py" "$BUILD"; then :; else fail "deploy/check_container.py"; fi
if command -v docker-compose >/dev/null; then
  if out=$(cd "$DEPLOY" && docker-compose -f compose.yaml config -q 2>&1); then
    ok "docker-compose config (Compose schema)"
  else
    fail "docker-compose config:"; printf '%s\n' "$out" | sed 's/^/    /' >&2
  fi
else
  fail "docker-compose not installed (deploy/stack.sh deps installs it)"
fi

# ---- 3. redis.conf
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/redis"
redis-server "$DEPLOY/redis.conf" --port "$PORT" --dir "$TMP/redis" --bind 127.0.0.1 \
  --daemonize no --logfile "$TMP/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  kill -0 "$REDIS_PID" 2>/dev/null || break
  sleep 0.1
done
if ! redis-cli -p "$PORT" ping >/dev/null 2>&1; then
  fail "redis-server does not start with deploy/redis.conf:"; tail -n 5 "$TMP/redis/redis.log" >&2
else
  bad=
  while read -r key want; do
    got=$(redis-cli -p "$PORT" config get "$key" | sed -n 2p)
    [ "$got" = "$want" ] || bad="$bad $key=$got(want $want)"
  done <<'EOF2'
maxmemory-policy noeviction
appendonly yes
appendfsync everysec
stop-writes-on-bgsave-error no
timeout 0
EOF2
  if [ -n "$bad" ]; then fail "deploy/redis.conf:$bad"; else ok "redis-server runs deploy/redis.conf (noeviction, appendonly everysec)"; fi
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=
fi

# ---- 4. configurations
for c in "$DEPLOY/funneld.example.json" "$DEPLOY/compose/funneld.json"; do
  if out=$("$BUILD/funneld" check-config -c "$c" 2>&1 >/dev/null); then
    ok "funneld check-config ${c#"$ROOT"/}"
  else
    fail "funneld check-config ${c#"$ROOT"/}: $out"
  fi
done

if [ "$FAILED" = 1 ]; then echo "check.sh: deploy files FAILED" >&2; exit 1; fi
echo "check.sh: deploy files ok"
