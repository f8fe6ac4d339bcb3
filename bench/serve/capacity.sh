#!/usr/bin/env bash
# Capacity benchmark (not a test): what limits cost through `switchboard
# serve` (docs/capacity.md), measured side by side in one run, with wrk over
# keep-alive on loopback. Three serve processes on the bench world, the
# same request (bench/serve/post.lua: the contact_tag path):
#   none    no limits at all (nothing is reserved)
#   memory  every instance limited (per_day: 1000000000, never reached), store: memory
#   redis   the same limits, store: redis on a redis-server of its own (loopback, persistence off)
# Each is loaded ROUNDS times, alternating, so drift on a shared machine hits
# all three alike. Prints requests/s and p50/p99 per run, the load average
# before and after, and checks that Redis counted every decision the redis
# runs selected. Usage: bash bench/serve/capacity.sh  (DUR=10s CONN=64 ROUNDS=2)
# Needs wrk, redis-server and redis-cli (apt-get install -y wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/serve/common.sh
ROUNDS=${ROUNDS:-2}

needs wrk redis-server redis-cli python3 curl
cargo build --release -q --bin switchboard

start_redis

# The bench world with every instance limited (a limit the run never reaches).
python3 - "$HERE/world.json" "$WORK/world-limits.json" <<'PY'
import json, sys
world = json.load(open(sys.argv[1]))
for location in world["locations"]:
    for instance in location["instances"]:
        instance["limits"] = {"per_day": 1000000000}
json.dump(world, open(sys.argv[2], "w"))
PY
cp rules.yaml "$WORK/rules-memory.yaml"
printf 'capacity: {store: memory}\n' >> "$WORK/rules-memory.yaml"
cp rules.yaml "$WORK/rules-redis.yaml"
printf 'capacity: {store: redis, redis_url: "redis://127.0.0.1:%s/0", key_prefix: "bench:"}\n' "$REDIS_PORT" \
  >> "$WORK/rules-redis.yaml"

declare -A PORTS PIDS
serve_case() { # serve_case NAME RULES WORLD
  start_serve "$1" --rules "$2" --world "$3"
  PIDS[$1]=$PID
  PORTS[$1]=$PORT
}
serve_case none rules.yaml "$HERE/world.json"
serve_case memory "$WORK/rules-memory.yaml" "$WORK/world-limits.json"
serve_case redis "$WORK/rules-redis.yaml" "$WORK/world-limits.json"

BODY=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$HERE/post.lua")
echo "== the same decision from each (rule, instance), and the store in force"
for name in none memory redis; do
  decision=$(curl -s "http://127.0.0.1:${PORTS[$name]}/v1/select" -d "$BODY")
  store=$(curl -s "http://127.0.0.1:${PORTS[$name]}/v1/status")
  python3 - "$name" "$decision" "$store" <<'PY'
import json, sys
d, s = json.loads(sys.argv[2]), json.loads(sys.argv[3])["store"]
print(f"  {sys.argv[1]:<7} rule={d.get('rule')} instance={(d.get('instance') or {}).get('id')} "
      f"store={s['kind']} healthy={s['healthy']}")
PY
done

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))

load() { # load NAME: one wrk run, its summary line; sets REQS
  local serve0 redis0
  serve0=$(cpu_ticks "${PIDS[$1]}"); redis0=$(cpu_ticks "$REDIS_PID")
  wrk_run "http://127.0.0.1:${PORTS[$1]}/v1/select"
  # CPU per request: less sensitive than req/s to other work on the machine.
  local serve_us redis_us
  serve_us=$(( ($(cpu_ticks "${PIDS[$1]}") - serve0) * TICK_NS / REQS / 1000 ))
  redis_us=$(( ($(cpu_ticks "$REDIS_PID") - redis0) * TICK_NS / REQS / 1000 ))
  printf '  %-7s %10s req/s   p50 %-8s p99 %-8s serve CPU %3s µs/req  redis-server CPU %3s µs/req  errors: %s\n' \
    "$1" "$RPS" "$P50" "$P99" "$serve_us" "$redis_us" "${ERRORS:-none}"
}

echo "== load: POST /v1/select, $CONN connections, keep-alive, $DUR each, $ROUNDS rounds"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
redis_total=0
for round in $(seq "$ROUNDS"); do
  echo " round $round"
  for name in none memory redis; do
    load "$name"
    if [ "$name" = redis ]; then redis_total=$((redis_total + REQS)); fi
  done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# Every decision the redis runs made was counted once in Redis (the checks
# above made one more). wa-billing is what post.lua's request selects.
counted=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:{shop}:i:wa-billing:d*' \
  | xargs -r redis-cli -p "$REDIS_PORT" get | awk '{s += $1} END {print s + 0}')
echo "redis: wa-billing counted $counted decisions; wrk saw $redis_total answers (+1 check; requests in flight when wrk stops are answered but not seen)"
curl -s "http://127.0.0.1:${PORTS[redis]}/metrics" | grep -E '^switchboard_store_(up|errors_total)' | sed 's/^/  /'
