#!/usr/bin/env bash
# World-size benchmark (not a test): `switchboard serve` on a generated
# 1,000-location world and on a generated 100,000-location world (10
# instances each), and the plain Node.js server of node-server.js on the
# 1,000-location one, all answering the same request body (post-scale.lua:
# location loc_1, the contact_tag path), with wrk over keep-alive on
# loopback. The three are loaded ROUNDS times, alternating, so drift on a
# shared machine hits all alike. Also: start-up time (start to "listening")
# and RSS of serve on the big world.
# With BASE=PATH (another build of switchboard, e.g. an earlier commit's),
# that binary is started on both worlds too and loaded in the same rounds.
# Usage: bash bench/serve/scale.sh  (DUR=10s CONN=64 ROUNDS=2 BASE=)
# Needs wrk and node (apt-get install -y wrk nodejs).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/serve/common.sh
ROUNDS=${ROUNDS:-2}

needs wrk node python3
cargo build --release -q --bin switchboard
cargo build --release -q -p switchboard --example generate
GEN=target/release/examples/generate
$GEN 1000 10 1 "$WORK/small" 2>/dev/null
$GEN 100000 10 1 "$WORK/big" 2>/dev/null
echo "worlds: 1,000 locations $(du -h "$WORK/small/world.json" | cut -f1), 100,000 locations $(du -h "$WORK/big/world.json" | cut -f1)"

rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }
ms_now() { date +%s%3N; }

# start_timed NAME WORLD: serve on WORLD; prints the time to "listening".
declare -A PORTS
NAMES=(small big)
start_timed() {
  local t0; t0=$(ms_now)
  start_serve "$1" --rules rules.yaml --world "$2"
  PORTS[$1]=$PORT
  echo "serve $1: listening after $(( $(ms_now) - t0 )) ms, RSS $(rss_kib "$PID") KiB"
}
start_timed small "$WORK/small/world.json"
start_timed big "$WORK/big/world.json"
if [ -n "${BASE:-}" ]; then
  BIN_NOW=$BIN; BIN=$BASE
  start_timed base-small "$WORK/small/world.json"
  start_timed base-big "$WORK/big/world.json"
  BIN=$BIN_NOW
  NAMES+=(base-small base-big)
fi
NAMES+=(node)
node "$HERE/node-server.js" "$WORK/small/world.json" 0 2>"$WORK/node.err" &
for _ in $(seq 200); do grep -q listening "$WORK/node.err" 2>/dev/null && break; sleep 0.05; done
PORTS[node]=$(head -1 "$WORK/node.err" | sed 's/.*127.0.0.1://')

# The same answer from all three (rule and instance).
for name in "${NAMES[@]}"; do
  printf '%-6s %s\n' "$name" "$(curl -s -X POST --data-binary @- "http://127.0.0.1:${PORTS[$name]}/v1/select" \
    < <(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$HERE/post-scale.lua") | python3 -c \
    'import json,sys; d=json.load(sys.stdin); print(d.get("rule"), (d.get("instance") or {}).get("id"))')"
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A SUM
for round in $(seq "$ROUNDS"); do
  for name in "${NAMES[@]}"; do
    wrk -t2 -c"$CONN" -d"$DUR" --latency -s "$HERE/post-scale.lua" "http://127.0.0.1:${PORTS[$name]}/v1/select" > "$WORK/wrk.out"
    RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    P50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
    P99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
    ERRORS=$(awk '/Non-2xx/ {print $NF} /Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
    printf 'round %s %-10s %10s req/s   p50 %-8s p99 %-8s errors: %s\n' "$round" "$name" "$RPS" "$P50" "$P99" "${ERRORS:-none}"
    SUM[$name]=$(python3 -c "print(${SUM[$name]:-0} + $RPS)")
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "${SUM[small]}" "${SUM[big]}" "${SUM[node]}" "${SUM[base-small]:-0}" <<'PY'
import sys
small, big, node, base = map(float, sys.argv[1:])
print(f"100,000 / 1,000 locations: {big / small:.2f}x   serve / node (1,000 locations): {small / node:.2f}x")
if base:
    print(f"serve / base (1,000 locations): {small / base:.2f}x")
PY
