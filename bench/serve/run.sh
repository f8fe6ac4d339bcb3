#!/usr/bin/env bash
# Load benchmark (not a test): `switchboard serve` against a plain Node.js
# `http` server implementing the same chain, on loopback, keep-alive, with
# wrk (apt-get install -y wrk). Prints requests/s and latency percentiles,
# the cost of the decision log, and the RSS of serve idle and after
# REQUESTS requests. Usage: bash bench/serve/run.sh  (DUR=10s CONN=64 REQUESTS=1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/serve/common.sh
REQUESTS=${REQUESTS:-1000000}

needs wrk node
cargo build --release -q --bin switchboard

# serve_bench NAME ARGS...: serve on the bench data (see start_serve).
serve_bench() { local name=$1; shift; start_serve "$name" --rules rules.yaml --world "$HERE/world.json" "$@"; }

rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }

load() { # load URL NAME: one wrk run, its summary line
  wrk_run "$1"
  printf '%-28s %10s req/s   p50 %-8s p99 %-8s errors: %s\n' "$2" "$RPS" "$P50" "$P99" "${ERRORS:-none}"
}

echo "== agreement: every example request, serve vs node (rule, instance, error code)"
serve_bench plain; SERVE_PID=$PID; SERVE_PORT=$PORT
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
serve_bench logged --decision-log "$WORK/decisions.jsonl"; LOG_PID=$PID
load "http://127.0.0.1:$PORT/v1/select" "serve --decision-log FILE"
dropped=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^switchboard_decision_log_dropped_total/ {print $2}')
echo "  decision-log lines dropped: $dropped; written: $(wc -l < "$WORK/decisions.jsonl")"
kill "$LOG_PID"

echo "== memory: serve after $REQUESTS requests"
total=0
while [ "$total" -lt "$REQUESTS" ]; do
  wrk_run "http://127.0.0.1:$SERVE_PORT/v1/select" 5s
  total=$((total + REQS))
done
echo "serve RSS after $total requests: $(rss_kib "$SERVE_PID") KiB"
kill "$SERVE_PID"
