"""ns per decision: the binding's select (dict), select_json (str) and
select_many beside the plain Python chain (plain_chain.py), on the example
requests. Run after a release install: `pip install ./bindings/python &&
python bindings/python/bench/select.py`."""

import json
import statistics
import sys
import time
from pathlib import Path

import switchboard

sys.path.insert(0, str(Path(__file__).parent))
import plain_chain  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
engine = switchboard.Engine.open(REPO / "rules.yaml", world=REPO / "examples" / "world.yaml")
lines = []
for line in (REPO / "examples" / "requests.jsonl").read_text().splitlines():
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r["location"] != "nowhere" and r["channel"] != "telegram":
        lines.append(line)
objects = [json.loads(line) for line in lines]


def key(d):
    return (d["ok"], d["rule"], d.get("body"), (d.get("instance") or {}).get("id"), (d.get("error") or {}).get("code"),
            [t["rule"] + ":" + t["outcome"] for t in d["trace"]])


for line, obj in zip(lines, objects):
    assert key(plain_chain.select(obj)) == key(engine.select(obj)), line


def timed(fn, inputs, seconds):
    """ns per call of fn over inputs, timed for about `seconds`."""
    calls = 0
    t0 = now = time.perf_counter_ns()
    end = t0 + int(seconds * 1e9)
    while now < end:
        for x in inputs:
            fn(x)
        calls += len(inputs)
        now = time.perf_counter_ns()
    return (now - t0) / calls


def pair(name, binding, binding_inputs, plain_name, plain, plain_inputs, per_call=1):
    """The binding beside the plain chain in alternating 100 ms windows (15
    pairs), so load from other processes hits both alike."""
    timed(binding, binding_inputs, 0.2)
    timed(plain, plain_inputs, 0.2)
    a, b = [], []
    for _ in range(15):
        a.append(timed(binding, binding_inputs, 0.1) / per_call)
        b.append(timed(plain, plain_inputs, 0.1))
    ratio = statistics.median(y / x for x, y in zip(a, b))
    print(f"{name:<52} {statistics.median(a):8.0f} ns/decision")
    print(f"{plain_name:<52} {statistics.median(b):8.0f} ns/decision   (binding {ratio:.1f}x as fast)")


print(f"{len(lines)} example requests, Python {sys.version.split()[0]}; medians of 15 alternating 100 ms windows")
text_chain = lambda t: json.dumps(plain_chain.select(json.loads(t)))  # noqa: E731
pair("binding select_json(str) -> str", engine.select_json, lines, "plain chain, dict -> dict", plain_chain.select, objects)
pair("binding select_json(str) -> str", engine.select_json, lines, "plain chain, str -> str (json.loads/dumps)", text_chain, lines)
pair("binding select(dict) -> dict", engine.select, objects, "plain chain, dict -> dict", plain_chain.select, objects)
pair(f"binding select_many({len(objects)} dicts), per decision", lambda _: engine.select_many(objects), [None],
     "plain chain, dict -> dict", plain_chain.select, objects, per_call=len(objects))
