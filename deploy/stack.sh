#!/usr/bin/env bash
# stack.sh — the local Kafka + Redis stack behind funneld's integration tests,
# quick start and benchmarks.
#
# A real Apache Kafka broker (KRaft, one node that is both broker and
# controller, static controller.quorum.voters) assembled from Maven Central
# jars by deploy/kafka/pom.xml and cached under
# ${FD_CACHE:-$HOME/.cache/funneld}/kafka-<version>/, plus redis-server, all
# listening on free 127.0.0.1 ports only.
#
#   stack.sh deps                       install Debian packages + Python test deps (if missing)
#   stack.sh kafka-fetch                assemble the broker jars into the cache (no-op when cached)
#   stack.sh up DIR                     start Kafka + Redis, write DIR/stack.env
#   stack.sh down DIR                   stop everything up/redis-up started in DIR
#   stack.sh topic DIR NAME PARTITIONS  create a topic and wait until every partition has a leader
#   stack.sh redis-up DIR NAME [ARGS]   start one more redis-server in DIR/NAME; prints "port pid"
#   stack.sh redis-down DIR NAME        stop it (SHUTDOWN, then signals)
#
# Invariant: every process this script starts is recorded as DIR/<name>/pid
# next to DIR/<name>/match, a string its /proc cmdline must contain; stopping
# only ever signals a recorded pid whose cmdline still matches, so a recycled
# pid is never hit and nothing is killed by name. When FD_STACK_REGISTRY names
# a file, `up` and `redis-up` append DIR to it so that a CI trap can run
# `down` on every stack even if the test that started it died.
#
# Environment: FD_CACHE (jar cache), FD_KAFKA_VERSION (default 3.9.1),
# FD_TIMEOUT_SCALE (multiplies every wait, default 1), FD_KAFKA_HEAP
# (default -Xms128m -Xmx512m), FD_STACK_REGISTRY (see above).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_VERSION=${FD_KAFKA_VERSION:-3.9.1}
CACHE=${FD_CACHE:-${HOME:-/tmp}/.cache/funneld}
KAFKA_HOME=$CACHE/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_MARKER=$KAFKA_HOME/.complete
SCALE=${FD_TIMEOUT_SCALE:-1}

APT_PACKAGES=(build-essential cmake pkg-config librdkafka-dev libhiredis-dev
  libcjson-dev libuv1-dev libcmocka-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
  redis-server kcat clang libclang-rt-14-dev valgrind openjdk-17-jre-headless maven python3-pip
  prometheus-alertmanager  # the alert tests start their own (tests/integration/alert_receivers.py)
  chromium chromium-driver python3-selenium fonts-wqy-zenhei  # the screen's browser test (tests/integration/test_screen.py)
  systemd docker-compose python3-yaml  # deploy/check.sh: systemd-analyze verify, Compose schema
  iproute2  # ss: bench/e2e.sh reads the bytes funneld fetched from the broker
  openssl)  # dashboard/vendor.sh checks the ECharts tarball's sha512 (npm: cmd_deps below)
PY_MODULES=(pytest confluent_kafka)        # import names
PY_PACKAGES=(pytest==9.2.0 confluent-kafka==2.16.1)  # matching PyPI names, pinned

log() { printf 'stack.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# scaled SECONDS -> SECONDS * FD_TIMEOUT_SCALE, rounded, at least 1
scaled() {
  awk -v b="$1" -v s="$SCALE" 'BEGIN { v = b * s; if (v < 1) v = 1; printf "%d\n", v + 0.5 }'
}

absdir() { mkdir -p "$1" && (cd "$1" && pwd); }

# free_ports N -> N distinct free 127.0.0.1 TCP ports, one per line. All are
# held open together while picking, so they differ from each other.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

# ---------------------------------------------------------------- processes

alive() {   # alive PID: running and not a zombie
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# owned PIDDIR: prints the recorded pid if that process still runs and its
# cmdline contains the recorded match string; fails otherwise.
owned() {
  local d=$1 pid match
  [ -f "$d/pid" ] || return 1
  pid=$(cat "$d/pid"); match=$(cat "$d/match" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  if [ -n "$match" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$match" || return 1
  fi
  printf '%s\n' "$pid"
}

wait_gone() {   # wait_gone PID SECONDS
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# stop_dir PIDDIR GRACE: TERM, wait up to GRACE s (scaled), then KILL.
stop_dir() {
  local d=$1 grace pid
  grace=$(scaled "$2")
  if pid=$(owned "$d"); then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$grace"; then
      log "pid $pid ($d) ignored SIGTERM for ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || log "pid $pid still there after SIGKILL"
    fi
  fi
  rm -f "$d/pid"
}

register() {
  if [ -n "${FD_STACK_REGISTRY:-}" ]; then
    printf '%s\n' "$1" >>"$FD_STACK_REGISTRY"
  fi
}

# ---------------------------------------------------------------- deps

cmd_deps() {
  local missing=() p status
  for p in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
  done
  # npm packs the pinned Apache ECharts (dashboard/vendor.sh); any npm will
  # do (one that came with another Node.js build included)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
      sudo=(sudo)
    fi
    log "installing Debian packages: ${missing[*]}"
    # Keep package postinst scripts from starting services (a redis-server on
    # 6379 that nobody stops); only when no policy is in place already.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
      "${sudo[@]}" chmod +x "$policy"
      own_policy=1
    fi
    local rc=0
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >&2 || rc=$?
    [ "$own_policy" = 1 ] && "${sudo[@]}" rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get failed ($rc)"
  fi

  local mods=() i
  for i in "${!PY_MODULES[@]}"; do
    python3 -c "import ${PY_MODULES[$i]}" 2>/dev/null || mods+=("${PY_PACKAGES[$i]}")
  done
  if [ ${#mods[@]} -gt 0 ]; then
    local flags=(--quiet --disable-pip-version-check)
    # PEP 668: a distro Python outside a venv refuses pip unless told.
    if python3 - <<'PY'
import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
PY
    then
      flags+=(--break-system-packages)
    fi
    log "pip installing: ${mods[*]}"
    python3 -m pip install "${flags[@]}" "${mods[@]}" >&2
  fi
}

# ---------------------------------------------------------------- kafka-fetch

pom_stamp() {
  printf '%s %s\n' "$KAFKA_VERSION" "$(sha256sum "$HERE/kafka/pom.xml" | cut -c1-16)"
}

kafka_cached() {
  [ -f "$KAFKA_MARKER" ] && [ "$(cat "$KAFKA_MARKER")" = "$(pom_stamp)" ]
}

cmd_kafka_fetch() {
  kafka_cached && return 0
  command -v mvn >/dev/null || die "mvn not found (run: deploy/stack.sh deps)"
  mkdir -p "$KAFKA_HOME"
  # One fetch at a time per cache; the loser of the race finds it done.
  exec 9>"$KAFKA_HOME/.lock"
  flock 9
  if kafka_cached; then exec 9>&-; return 0; fi
  log "assembling Kafka $KAFKA_VERSION into $KAFKA_LIBS (Maven)"
  local work=$KAFKA_HOME/build
  rm -rf "$work" "$KAFKA_LIBS.tmp"
  mkdir -p "$work"
  cp "$HERE/kafka/pom.xml" "$work/pom.xml"
  # Maven 3.8 -q still prints stray colour resets: keep its output in a file
  # and show it only when it failed.
  if ! (cd "$work" && mvn -q -B package -Dkafka.version="$KAFKA_VERSION" \
          -Dfd.libs="$KAFKA_LIBS.tmp" >"$KAFKA_HOME/mvn.log" 2>&1); then
    tail -n 50 "$KAFKA_HOME/mvn.log" >&2
    die "Maven could not assemble Kafka $KAFKA_VERSION (log: $KAFKA_HOME/mvn.log)"
  fi
  ls "$KAFKA_LIBS.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar after Maven"
  rm -rf "$KAFKA_LIBS" "$work"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  pom_stamp >"$KAFKA_MARKER"
  exec 9>&-
}

kafka_java() {   # kafka_java CLASS ARGS... (one-shot tool, quiet logging)
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$HERE/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# ---------------------------------------------------------------- up / down

write_server_properties() {   # DIR KPORT CPORT
  local d=$1 kport=$2 cport=$3
  cat >"$d/kafka/server.properties" <<EOF
# written by deploy/stack.sh up
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$kport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$kport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/kafka/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
num.network.threads=2
num.io.threads=4
EOF
}

random_cluster_id() {
  python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break'
}

# start_kafka DIR: one attempt on fresh ports; sets KPORT CPORT KPID.
# Returns 2 when the ports were taken meanwhile (caller retries), 1 on other
# failures (log tail shown).
start_kafka() {
  local d=$1 ports cid timeout deadline out
  ports=$(free_ports 2)
  KPORT=$(sed -n 1p <<<"$ports"); CPORT=$(sed -n 2p <<<"$ports")
  rm -rf "$d/kafka/data" "$d/kafka/logs"
  mkdir -p "$d/kafka/data" "$d/kafka/logs"
  write_server_properties "$d" "$KPORT" "$CPORT"
  cid=$(random_cluster_id)
  if ! out=$(kafka_java kafka.tools.StorageTool format -t "$cid" \
               -c "$d/kafka/server.properties" 2>&1); then
    printf '%s\n' "$out" >&2
    log "kafka storage format failed"
    return 1
  fi
  # shellcheck disable=SC2086
  java ${FD_KAFKA_HEAP:--Xms128m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$d/kafka/logs" \
    -Dlog4j.configuration="file:$HERE/kafka/log4j.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$d/kafka/server.properties" \
    </dev/null >"$d/kafka/logs/console.log" 2>&1 &
  KPID=$!
  echo "$KPID" >"$d/kafka/pid"
  echo "$d/kafka/server.properties" >"$d/kafka/match"

  timeout=$(scaled 90)
  deadline=$((SECONDS + timeout))
  while :; do
    if ! alive "$KPID"; then
      log "kafka exited during startup; tail of its logs:"
      tail -n 40 "$d/kafka/logs/server.log" "$d/kafka/logs/console.log" >&2 2>/dev/null || true
      rm -f "$d/kafka/pid"
      if grep -qs 'Address already in use' "$d/kafka/logs/server.log" "$d/kafka/logs/console.log"; then
        return 2
      fi
      return 1
    fi
    if kcat -b "127.0.0.1:$KPORT" -L -m 1 2>/dev/null | grep -q ' 1 brokers:'; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "kafka did not answer on 127.0.0.1:$KPORT within ${timeout}s; tail of its logs:"
      tail -n 40 "$d/kafka/logs/server.log" "$d/kafka/logs/console.log" >&2 2>/dev/null || true
      stop_dir "$d/kafka" 10
      return 1
    fi
    sleep 0.3
  done
}

# The funneld block of deploy/redis.conf as redis-server arguments
# ("--name value ..."): the settings funneld checks at start.
funneld_redis_settings() {
  awk '/^# ---- funneld:/ { f = 1; next } /^# ---- end funneld/ { f = 0 }
       f && $0 !~ /^#/ && NF == 2 { printf "--%s %s ", $1, $2 }' "$HERE/redis.conf"
}

# start_redis PIDDIR [args...]: sets RPORT RPID; waits for PING.
start_redis() {
  local rd=$1; shift
  local attempt timeout deadline
  mkdir -p "$rd"
  for attempt in 1 2 3; do
    RPORT=$(free_ports 1)
    # shellcheck disable=SC2046 # one word per setting name and value
    redis-server --port "$RPORT" --bind 127.0.0.1 --protected-mode no \
      --daemonize no --save '' --appendonly no --dir "$rd" \
      --logfile "$rd/redis.log" $(funneld_redis_settings) "$@" </dev/null >/dev/null 2>&1 &
    RPID=$!
    echo "$RPID" >"$rd/pid"
    echo "$RPORT" >"$rd/port"
    # redis rewrites its process title to "redis-server 127.0.0.1:PORT"
    echo "127.0.0.1:$RPORT" >"$rd/match"
    timeout=$(scaled 20)
    deadline=$((SECONDS + timeout))
    while :; do
      if ! alive "$RPID"; then
        rm -f "$rd/pid"
        if grep -qs 'Address already in use' "$rd/redis.log" && [ "$attempt" -lt 3 ]; then
          log "redis port $RPORT taken, retrying"
          continue 2
        fi
        log "redis-server exited during startup; tail of $rd/redis.log:"
        tail -n 20 "$rd/redis.log" >&2 2>/dev/null || true
        return 1
      fi
      [ "$(redis-cli -h 127.0.0.1 -p "$RPORT" ping 2>/dev/null)" = PONG ] && return 0
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "redis did not answer PING on $RPORT within ${timeout}s"
        tail -n 20 "$rd/redis.log" >&2 2>/dev/null || true
        stop_dir "$rd" 5
        return 1
      fi
      sleep 0.05
    done
  done
  return 1
}

cmd_up() {
  [ $# -eq 1 ] || die "usage: stack.sh up DIR"
  local d attempt rc t0=$SECONDS
  d=$(absdir "$1")
  if owned "$d/kafka" >/dev/null || owned "$d/redis" >/dev/null; then
    die "a stack is already running in $d (stack.sh down $d first)"
  fi
  cmd_kafka_fetch
  register "$d"
  rm -f "$d/stack.env"
  mkdir -p "$d/kafka" "$d/redis"

  # Redis first: it is up in milliseconds, while the JVM warms up.
  start_redis "$d/redis" || { cmd_down "$d"; die "redis did not start"; }

  for attempt in 1 2 3; do
    rc=0
    start_kafka "$d" || rc=$?
    [ "$rc" = 2 ] && { log "kafka port collision, retrying on new ports"; continue; }
    break
  done
  if [ "$rc" != 0 ]; then
    cmd_down "$d"
    die "kafka did not start (logs in $d/kafka/logs)"
  fi

  cat >"$d/stack.env.tmp" <<EOF
KAFKA_BOOTSTRAP=127.0.0.1:$KPORT
KAFKA_PORT=$KPORT
KAFKA_CONTROLLER_PORT=$CPORT
KAFKA_PID=$KPID
KAFKA_LOGS=$d/kafka/logs
REDIS_PORT=$RPORT
REDIS_URL=redis://127.0.0.1:$RPORT
REDIS_PID=$RPID
STACK_DIR=$d
EOF
  mv "$d/stack.env.tmp" "$d/stack.env"
  log "up in $((SECONDS - t0))s: kafka 127.0.0.1:$KPORT (pid $KPID), redis 127.0.0.1:$RPORT (pid $RPID)"
  cat "$d/stack.env"
}

cmd_down() {
  [ $# -eq 1 ] || die "usage: stack.sh down DIR"
  local d=$1 pd
  [ -d "$d" ] || return 0
  d=$(cd "$d" && pwd)
  # Extra redis servers first, then Redis, then Kafka (slowest to stop).
  for pd in "$d"/*/; do
    pd=${pd%/}
    case ${pd##*/} in kafka|redis) continue ;; esac
    [ -f "$pd/pid" ] && stop_dir "$pd" 10
  done
  stop_dir "$d/redis" 10
  stop_dir "$d/kafka" 30
  return 0
}

# ---------------------------------------------------------------- redis-up/down

check_name() {
  [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad NAME '$1'"
  case $1 in kafka|redis|.|..) die "NAME '$1' is reserved" ;; esac
}

cmd_redis_up() {
  [ $# -ge 2 ] || die "usage: stack.sh redis-up DIR NAME [redis-server args...]"
  local d name
  d=$(absdir "$1"); name=$2; shift 2
  check_name "$name"
  owned "$d/$name" >/dev/null && die "redis $name already running in $d"
  register "$d"
  start_redis "$d/$name" "$@" || die "redis $name did not start"
  echo "$RPORT $RPID"
}

cmd_redis_down() {
  [ $# -eq 2 ] || die "usage: stack.sh redis-down DIR NAME"
  local d=$1 name=$2 pid port
  check_name "$name"
  [ -d "$d/$name" ] || return 0
  if pid=$(owned "$d/$name"); then
    port=$(cat "$d/$name/port")
    # SHUTDOWN lets redis fsync its AOF; the connection drops when it exits.
    redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1 || true
    wait_gone "$pid" "$(scaled 10)" || true
  fi
  stop_dir "$d/$name" 10
}

# ---------------------------------------------------------------- topic

cmd_topic() {
  [ $# -eq 3 ] || die "usage: stack.sh topic DIR NAME PARTITIONS"
  local d=$1 name=$2 parts=$3 boot timeout deadline n md have
  [[ $parts =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer"
  [ -f "$d/stack.env" ] || die "no $d/stack.env (stack.sh up $d first)"
  boot=$(sed -n 's/^KAFKA_BOOTSTRAP=//p' "$d/stack.env")
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$boot" \
    --create --if-not-exists --topic "$name" --partitions "$parts" \
    --replication-factor 1 >&2 || die "could not create topic $name"
  timeout=$(scaled 30)
  deadline=$((SECONDS + timeout))
  while :; do
    md=$(kcat -b "$boot" -L -t "$name" -m 2 2>/dev/null || true)
    have=$(sed -n 's/.* with \([0-9]*\) partitions:.*/\1/p' <<<"$md" | head -n 1)
    if [ -n "$have" ] && [ "$have" != 0 ] && [ "$have" != "$parts" ]; then
      die "topic $name already exists with $have partitions, not $parts"
    fi
    n=$(grep -cE 'partition [0-9]+, leader [0-9]+,' <<<"$md" || true)
    [ "$n" = "$parts" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "topic $name: $n of $parts partitions have a leader after ${timeout}s"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- main

usage() { sed -n '11,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
sub=$1; shift
case $sub in
  deps)        cmd_deps "$@" ;;
  kafka-fetch) cmd_kafka_fetch "$@" ;;
  up)          cmd_up "$@" ;;
  down)        cmd_down "$@" ;;
  topic)       cmd_topic "$@" ;;
  redis-up)    cmd_redis_up "$@" ;;
  redis-down)  cmd_redis_down "$@" ;;
  -h|--help|help) usage ;;
  *) log "unknown subcommand '$sub'"; usage ;;
esac
