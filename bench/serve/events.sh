#!/usr/bin/env bash
# Event intake benchmark (not a test): events/s through `switchboard serve`'s
# POST /v1/events (docs/live-state.md), with wrk over keep-alive on loopback,
# one event per request (bench/serve/event.lua), on the bench world with a
# `health:` section. Two serve processes:
#   memory  store: memory
#   redis   store: redis on a redis-server of the script's own (loopback, persistence off)
# each loaded with four bodies: the decision of post.lua on /v1/select (the
# reference), an `instance_status` (wa-legacy down), a `delivered` delivery
# and an `inbound` (both of wa-orders). The runs alternate, ROUNDS times, so
# drift on a shared machine hits all alike. Prints events/s, p50/p99, CPU
# per event of serve and redis-server, and checks that every event was
# accepted and none rejected. Usage: bash bench/serve/events.sh  (DUR=10s CONN=64 ROUNDS=2)
# Needs wrk, redis-server and redis-cli (apt-get install -y wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/serve/common.sh
ROUNDS=${ROUNDS:-2}

needs wrk redis-server redis-cli python3 curl
cargo build --release -q --bin switchboard

start_redis

HEALTH='health: {quarantine_after: 5, window: 10m}'
cp rules.yaml "$WORK/rules-memory.yaml"
printf '%s\ncapacity: {store: memory}\n' "$HEALTH" >> "$WORK/rules-memory.yaml"
cp rules.yaml "$WORK/rules-redis.yaml"
printf '%s\ncapacity: {store: redis, redis_url: "redis://127.0.0.1:%s/0", key_prefix: "bench:"}\n' \
  "$HEALTH" "$REDIS_PORT" >> "$WORK/rules-redis.yaml"

declare -A PORTS PIDS
for store in memory redis; do
  start_serve "$store" --rules "$WORK/rules-$store.yaml" --world "$HERE/world.json"
  PIDS[$store]=$PID
  PORTS[$store]=$PORT
done

declare -A EVENTS=(
  [instance_status]='{"type":"instance_status","location":"shop","instance":"wa-legacy","connected":false,"reason":"bench"}'
  [delivery]='{"type":"delivery","location":"shop","instance":"wa-orders","status":"delivered","contact":"c1"}'
  [inbound]='{"type":"inbound","location":"shop","channel":"whatsapp","instance":"wa-orders","contact":"c1"}'
)
KINDS=(select instance_status delivery inbound)

echo "== each body once on each server"
for store in memory redis; do
  for kind in "${KINDS[@]:1}"; do
    printf '  %-7s %-16s %s\n' "$store" "$kind" \
      "$(curl -s "http://127.0.0.1:${PORTS[$store]}/v1/events" --data-binary "${EVENTS[$kind]}")"
  done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))

load() { # load STORE KIND: one wrk run, its summary line
  local serve0 redis0 serve_us redis_us
  serve0=$(cpu_ticks "${PIDS[$1]}"); redis0=$(cpu_ticks "$REDIS_PID")
  if [ "$2" = select ]; then
    wrk_run "http://127.0.0.1:${PORTS[$1]}/v1/select"
  else
    EVENT=${EVENTS[$2]} wrk_run "http://127.0.0.1:${PORTS[$1]}/v1/events" "$DUR" "$HERE/event.lua"
  fi
  serve_us=$(( ($(cpu_ticks "${PIDS[$1]}") - serve0) * TICK_NS / REQS / 1000 ))
  redis_us=$(( ($(cpu_ticks "$REDIS_PID") - redis0) * TICK_NS / REQS / 1000 ))
  printf '  %-7s %-16s %10s req/s   p50 %-8s p99 %-8s serve CPU %3s µs/req  redis-server CPU %3s µs/req  errors: %s\n' \
    "$1" "$2" "$RPS" "$P50" "$P99" "$serve_us" "$redis_us" "${ERRORS:-none}"
}

echo "== load: $CONN connections, keep-alive, $DUR each, $ROUNDS rounds"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  echo " round $round"
  for kind in "${KINDS[@]}"; do
    for store in memory redis; do load "$store" "$kind"; done
  done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== events counted by each server (accepted and rejected; nothing may be rejected)"
for store in memory redis; do
  curl -s "http://127.0.0.1:${PORTS[$store]}/metrics" | grep -E '^switchboard_events_total' | sed "s/^/  $store /"
done
