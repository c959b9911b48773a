#!/usr/bin/env bash
# quickstart.sh — the main job, locally: Kafka + Redis + funneld + a generator
# feeding it, then `funneld query all` and the alert states every 10 s until
# Ctrl-C.
#
#   deploy/quickstart.sh            run until Ctrl-C
#   deploy/quickstart.sh --for 60   run 60 s, then stop everything (a smoke test:
#                                   a snapshot appeared and the alert rule is
#                                   being evaluated, seen through `funneld alerts`)
#
# The example configuration enables one alert rule, ConversionDrop (product
# conversion at least 30% below the last hour's, 5 min window, docs/ALERTS.md),
# and the live feed drops product p1's payment rate to a tenth 3 min after it
# starts, for 4 min (funneld-gen --drop-product): the alert goes pending,
# fires (printed on funneld's stdout, listed by `funneld alerts`, shown on the
# screen) and resolves a few minutes after the drop ends. FD_QS_DROP_AFTER and
# FD_QS_DROP_FOR (generator durations, default 180s and 240s) move it.
#
# It installs what it needs (deploy/stack.sh deps), builds into build/, starts
# Kafka (KRaft) and redis-server on free loopback ports in $FD_QUICKSTART_DIR
# (default /tmp/funneld-quickstart), creates the topics, starts funneld, loads
# two hours of history with funneld-gen and keeps a live feed going. On exit it
# stops exactly what it started: the generator, funneld (SIGTERM: final
# flush), Kafka and Redis.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$ROOT/deploy/stack.sh
BUILD=${FD_BUILD_DIR:-$ROOT/build}
DIR=${FD_QUICKSTART_DIR:-/tmp/funneld-quickstart}
FOR=0
if [ "${1:-}" = "--for" ]; then FOR=${2:?--for wants seconds}; fi

"$STACK" deps
"$STACK" kafka-fetch
cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j2 --target funneld funneld-gen

FUNNELD_PID= LIVE_PID=
cleanup() {
  set +e
  [ -n "$LIVE_PID" ] && kill "$LIVE_PID" 2>/dev/null && wait "$LIVE_PID" 2>/dev/null
  if [ -n "$FUNNELD_PID" ]; then
    kill -TERM "$FUNNELD_PID" 2>/dev/null
    wait "$FUNNELD_PID" 2>/dev/null
    echo "funneld stopped (exit $?); its log: $DIR/funneld.log"
  fi
  "$STACK" down "$DIR" >/dev/null
  echo "Kafka and Redis stopped."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DIR"
mkdir -p "$DIR"
"$STACK" up "$DIR" >/dev/null
# shellcheck disable=SC1091
. "$DIR/stack.env"
for t in funnel.exposure funnel.interaction funnel.payment; do "$STACK" topic "$DIR" "$t" 4 >/dev/null; done
"$STACK" topic "$DIR" funnel.dlq 1 >/dev/null
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cd "$DIR"
MKT=()
if [ "${FD_QS_MARKETING:-0}" = 1 ]; then MKT=(--set marketing.enabled=true --set flush_max_events=2000); fi
# alerts.stdout: transitions are printed here, on funneld's stdout.
# FD_QS_MARKETING=1 adds marketing.enabled: retention cohorts and the
# attributed funnel (docs/METRICS.md; the screen's L panel). Off by default,
# as in funneld: it costs Redis time per user, and the quick start's users
# are nearly all new, so its two hours of history load about 7x slower
# (measured: no snapshot within the CI smoke's 25 s). The example file lists
# every key at its default, flush_max_events 20000 included, and a value
# given counts as chosen: the marketing limit (5000) then refuses it, so
# marketing's own default, 2000, is given too.
"$BUILD/funneld" run -c "$ROOT/deploy/funneld.example.json" --brokers "$KAFKA_BOOTSTRAP" --redis "$REDIS_URL" \
  --set http.listen="127.0.0.1:$HTTP_PORT" --set snapshot_interval_ms=2000 \
  "${MKT[@]}" \
  --set alerts.stdout=true --set alerts.eval_interval_ms=5000 2>"$DIR/funneld.log" &
FUNNELD_PID=$!

# Users drawn uniformly from 10 M: a user rarely comes back within the hour,
# so conversion per potential user does not depend on the window's length and
# the rule's 5 min window compares like with like against its 1 h baseline
# (with the generator's default heavy users, a longer window sees relatively
# fewer distinct exposed users and so a higher conversion).
USERS=(--users 10000000 --user-skew 1)
# Two hours, so that the alert rule's baseline (the last whole UTC hour) is
# always a full hour of it; 300,000 events an hour, so that it holds enough
# payers (the rule's two-proportion test is only as sure as the baseline's
# counts).
echo "Loading two hours of history (600,000 events)..."
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --events 600000 --hours 2 --seed 1 --quiet \
  "${USERS[@]}" --warm-start
DROP_AFTER=${FD_QS_DROP_AFTER:-180s}
DROP_FOR=${FD_QS_DROP_FOR:-240s}
echo "Live feed: 300 events/s with event time = now; p1's conversion drops after $DROP_AFTER for $DROP_FOR."
# --warm-start: payments flow from the first second (a cold feed's ramp-up
# would look like a drop of every product)
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --live --rate 300 --events 0 --seed 2 --quiet \
  "${USERS[@]}" --warm-start --drop-product p1 --drop-after "$DROP_AFTER" --drop-for "$DROP_FOR" &
LIVE_PID=$!

cat <<INFO

  Kafka  $KAFKA_BOOTSTRAP     Redis  $REDIS_URL
  funneld log   $DIR/funneld.log
  metrics       curl -s 127.0.0.1:$HTTP_PORT/metrics
  counters      redis-cli -p $REDIS_PORT hgetall funnel:r:all:1h
  snapshots     $BUILD/funneld query 'product=p1' --redis $REDIS_URL
  alerts        $BUILD/funneld alerts --redis $REDIS_URL
                (or: watch -n 5 "$BUILD/funneld alerts 5 --redis $REDIS_URL")
  screen        http://127.0.0.1:$HTTP_PORT/
  big screen    http://127.0.0.1:$HTTP_PORT/?mode=big&lang=zh

  Marketing metrics are on (docs/METRICS.md): a product's scope on the
  screen shows the L panel (retention of the latest complete cohort per k in
  retention.days); its rates stay empty until a cohort day d + k is
  complete, which two hours of history never are.
  The alert ConversionDrop (product=p1) fires a few minutes after p1's drop
  (evaluation runs behind the watermark: lateness_s = 120 s) and resolves a
  few minutes after it ends; its transitions print here as JSON lines.
  Stop: Ctrl-C (stops the generator, funneld with a final flush, Kafka, Redis).

INFO

START=$SECONDS
SHOWN=0
while :; do
  sleep 10
  if ! kill -0 "$FUNNELD_PID" 2>/dev/null; then
    echo "funneld exited; see $DIR/funneld.log" >&2
    exit 1
  fi
  echo "--- funneld query all   ($(date -u +%H:%M:%SZ))"
  if "$BUILD/funneld" query all --redis "$REDIS_URL"; then SHOWN=1; fi
  ALERTS=$("$BUILD/funneld" alerts 1 --redis "$REDIS_URL" | python3 "$ROOT/deploy/alerts_line.py") || ALERTS=
  echo "--- $ALERTS"
  if [ "$FOR" -gt 0 ] && [ $((SECONDS - START)) -ge "$FOR" ]; then
    [ "$SHOWN" = 1 ] || { echo "no snapshot appeared within ${FOR}s" >&2; exit 1; }
    # the example's alert rule loaded and is evaluated: an evaluator holds
    # the lease (funneld alerts prints its holder)
    case $ALERTS in
      "alerts: evaluated by "*) ;;
      *) echo "the alert rule is not being evaluated within ${FOR}s ($ALERTS); see $DIR/funneld.log" >&2; exit 1 ;;
    esac
    exit 0
  fi
done
