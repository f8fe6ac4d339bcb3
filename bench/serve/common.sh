# What the serve benchmarks share (sourced by the scripts here from the
# repository's root): the settings, a work directory removed at exit with
# every background process, starting `switchboard serve`, one wrk run.
set -euo pipefail
DUR=${DUR:-10s}
CONN=${CONN:-64}
BIN=target/release/switchboard
HERE=bench/serve
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# needs TOOL...: exits with 2 naming the first tool missing.
needs() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y $tool)" >&2; exit 2; }
  done
}

# start_serve NAME ARGS...: `serve ARGS` on a free loopback port; sets PORT and PID.
start_serve() {
  local name=$1; shift
  "$BIN" serve --listen 127.0.0.1:0 "$@" 2>"$WORK/$name.err" &
  PID=$!
  for _ in $(seq 100); do
    if grep -q "listening on" "$WORK/$name.err" 2>/dev/null; then break; fi
    sleep 0.05
  done
  PORT=$(head -1 "$WORK/$name.err" | sed 's/.*127.0.0.1://')
}

# start_redis: a redis-server of the script's own on a free loopback port,
# persistence off; sets REDIS_PORT and REDIS_PID once it answers.
start_redis() {
  REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning >/dev/null &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# wrk_run URL [DURATION] [SCRIPT]: one wrk run posting post.lua's request
# (or SCRIPT's) to URL (DURATION defaults to DUR); sets RPS, P50, P99, REQS
# and ERRORS.
wrk_run() {
  wrk -t2 -c"$CONN" -d"${2:-$DUR}" --latency -s "${3:-$HERE/post.lua}" "$1" > "$WORK/wrk.out"
  RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  P50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
  P99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
  REQS=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  ERRORS=$(awk '/Non-2xx/ {print $NF} /Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
}
