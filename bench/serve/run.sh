#!/usr/bin/env bash
# Load benchmark (not a test): `switchboard serve` against a plain Node.js
# `http` server implementing the same chain, on loopback, keep-alive, with
# wrk (apt-get install -y wrk). Prints requests/s and latency percentiles,
# the cost of the decision log, and the RSS of serve idle and after
# REQUESTS requests. Usage: bash bench/serve/run.sh  (DUR=10s CONN=64 REQUESTS=1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-10s}
CONN=${CONN:-64}
REQUESTS=${REQUESTS:-1000000}
BIN=target/release/switchboard
HERE=bench/serve
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
command -v node >/dev/null || { echo "node is missing" >&2; exit 2; }
cargo build --release -q --bin switchboard

# start_serve NAME ARGS...: starts serve on a free port; sets PORT and PID.
start_serve() {
  local name=$1; shift
  "$BIN" serve --rules rules.yaml --world "$HERE/world.json" --listen 127.0.0.1:0 "$@" 2>"$WORK/$name.err" &
  PID=$!
  for _ in $(seq 100); do
    if grep -q "listening on" "$WORK/$name.err" 2>/dev/null; then break; fi
    sleep 0.05
  done
  PORT=$(head -1 "$WORK/$name.err" | sed 's/.*127.0.0.1://')
}

rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }

load() { # load URL: one wrk run, its summary lines
  wrk -t2 -c"$CONN" -d"$DUR" --latency -s "$HERE/post.lua" "$1" > "$WORK/wrk.out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
  errors=$(awk '/Non-2xx/ {print $NF} /Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
  printf '%-28s %10s req/s   p50 %-8s p99 %-8s errors: %s\n' "$2" "$rps" "$p50" "$p99" "${errors:-none}"
}

echo "== agreement: every example request, serve vs node (rule, instance, error code)"
start_serve plain; SERVE_PID=$PID; SERVE_PORT=$PORT
node "$HERE/node-server.js" "$HERE/world.json" 0 2>"$WORK/node.err" &
NODE_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/node.err" 2>/dev/null && break; sleep 0.05; done
NODE_PORT=$(head -1 "$WORK/node.err" | sed 's/.*127.0.0.1://')
python3 - "$SERVE_PORT" "$NODE_PORT" <<'PY'
import json, sys, urllib.request, urllib.error
def ask(port, line):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/select", data=line.encode(), method="POST")
    try:
        body = urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        body = e.read()
    d = json.loads(body)
    return (d.get("rule"), (d.get("instance") or {}).get("id"), (d.get("error") or {}).get("code"))
same = differ = 0
for line in open("examples/requests.jsonl"):
    if not line.strip():
        continue
    a, b = ask(sys.argv[1], line), ask(sys.argv[2], line)
    if a == b:
        same += 1
    else:
        differ += 1
        print(f"  differ: {line.strip()[:80]}  serve={a} node={b}")
print(f"  {same} agree, {differ} differ")
PY

echo "== load: POST /v1/select, $CONN connections, keep-alive, $DUR"
echo "serve RSS idle: $(rss_kib "$SERVE_PID") KiB"
load "http://127.0.0.1:$SERVE_PORT/v1/select" "serve"
load "http://127.0.0.1:$NODE_PORT/v1/select" "node"
kill "$NODE_PID"
start_serve logged --decision-log "$WORK/decisions.jsonl"; LOG_PID=$PID
load "http://127.0.0.1:$PORT/v1/select" "serve --decision-log FILE"
dropped=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^switchboard_decision_log_dropped_total/ {print $2}')
echo "  decision-log lines dropped: $dropped; written: $(wc -l < "$WORK/decisions.jsonl")"
kill "$LOG_PID"

echo "== memory: serve after $REQUESTS requests"
total=0
while [ "$total" -lt "$REQUESTS" ]; do
  wrk -t2 -c"$CONN" -d5s -s "$HERE/post.lua" "http://127.0.0.1:$SERVE_PORT/v1/select" > "$WORK/wrk.out"
  total=$((total + $(awk '/requests in/ {print $1}' "$WORK/wrk.out")))
done
echo "serve RSS after $total requests: $(rss_kib "$SERVE_PID") KiB"
kill "$SERVE_PID"
