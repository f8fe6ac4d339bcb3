#!/usr/bin/env bash
# Propagation benchmark (not a test): how long an event accepted by one
# `switchboard serve` takes to change the decisions of another on the same
# Redis (docs/live-state.md: each process polls the fleet's epoch every
# 250 ms). Two serve processes, A and B, on the bench world with
# `store: redis` on a redis-server of the script's own. EVENTS times: wait a
# random 0-500 ms (so the events do not fall in step with B's poll), post an
# `instance_status` to A that turns wa-billing (the instance post.lua's
# request selects) down, or clears that override, then post post.lua's
# request to B over one keep-alive connection as fast as it answers until
# its decision (rule, instance, error code) is the one the event implies.
# The delay runs from just before the event is sent to A to B's first
# changed answer. A's own next decision is checked to have changed at once.
# Prints the median, p90 and max. Usage: bash bench/serve/propagation.sh  (EVENTS=50)
# Needs redis-server, redis-cli and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/serve/common.sh
EVENTS=${EVENTS:-50}

needs redis-server redis-cli python3
cargo build --release -q --bin switchboard

start_redis

cp rules.yaml "$WORK/rules.yaml"
printf 'capacity: {store: redis, redis_url: "redis://127.0.0.1:%s/0", key_prefix: "bench:"}\n' "$REDIS_PORT" \
  >> "$WORK/rules.yaml"
start_serve a --rules "$WORK/rules.yaml" --world "$HERE/world.json"
PORT_A=$PORT
start_serve b --rules "$WORK/rules.yaml" --world "$HERE/world.json"
PORT_B=$PORT

BODY=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$HERE/post.lua")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$PORT_A" "$PORT_B" "$EVENTS" "$BODY" <<'PY'
import http.client, json, random, statistics, sys, time

port_a, port_b, events, body = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
a = http.client.HTTPConnection("127.0.0.1", port_a)
b = http.client.HTTPConnection("127.0.0.1", port_b)

def post(conn, path, text):
    conn.request("POST", path, text, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    assert answer.status == 200, (path, answer.status, data)
    return json.loads(data)

def decide(conn):
    d = post(conn, "/v1/select", body)
    return (d.get("rule"), (d.get("instance") or {}).get("id"), (d.get("error") or {}).get("code"))

up = decide(b)
assert up[1] == "wa-billing", up
delays, polls = [], []
for n in range(events):
    time.sleep(random.uniform(0, 0.5))
    down = n % 2 == 0
    event = {"type": "instance_status", "location": "shop", "instance": "wa-billing",
             "connected": False if down else None, "reason": "bench"}
    before = decide(b)
    assert (before == up) == down, (n, before)
    start = time.perf_counter()
    recorded = post(a, "/v1/events", json.dumps(event))
    assert recorded == {"accepted": 1, "rejected": []}, recorded
    # The process that accepted it decides with it at once.
    assert (decide(a) == up) != down, (n, "A did not change at once")
    asked = 0
    while True:
        now = decide(b)
        asked += 1
        if now != before:
            break
    delays.append((time.perf_counter() - start) * 1000)
    polls.append(asked)
    assert (now == up) != down, (n, now)

delays.sort()
p90 = delays[int(len(delays) * 0.9) - 1]
print(f"{events} events through A, seen by B: median {statistics.median(delays):.1f} ms, "
      f"p90 {p90:.1f} ms, max {delays[-1]:.1f} ms, min {delays[0]:.1f} ms "
      f"(B asked {min(polls)}-{max(polls)} times per event)")
PY
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
