"""Live state through the binding (docs/bindings.md, docs/live-state.md): record and instances."""

import json

import switchboard
from conftest import RULES, WORLD

DOWN = {"type": "instance_status", "location": "shop", "instance": "wa-orders", "connected": False,
        "reason": "logged out", "time": "2026-12-07T15:00:00Z"}
REQUEST = {"location": "shop", "channel": "whatsapp", "body": "Hi { WA#1 }", "now": "2026-12-07T15:10:00Z",
           "message_id": "crm-1"}


def test_record_takes_a_dict_a_list_or_json_lines_and_decisions_see_it():
    engine = switchboard.Engine.open(RULES, world=WORLD)
    assert engine.select(REQUEST)["instance"]["id"] == "wa-orders"
    assert engine.select(REQUEST)["message_id"] == "crm-1"
    assert engine.record(DOWN) == {"accepted": 1, "rejected": []}
    decision = engine.select(REQUEST)
    assert (decision["error"]["code"], decision["error"]["kind"]) == (101, "instance_disconnected")
    assert decision["message_id"] == "crm-1"
    shop = engine.instances("shop")
    orders = shop["instances"][0]
    assert (shop["location"], orders["id"], orders["connected"], orders["connected_in_file"]) == \
        ("shop", "wa-orders", False, True)
    assert orders["override"]["reason"] == "logged out"
    assert engine.instances("nowhere") is None
    clear = {"type": "instance_status", "location": "shop", "instance": "wa-orders", "connected": None,
             "time": "2026-12-07T15:05:00Z"}
    answer = engine.record([{"type": "nap"}, clear, {1, 2}])
    assert answer["accepted"] == 1
    assert [r["line"] for r in answer["rejected"]] == [1, 3]
    assert "unknown event type `nap`" in answer["rejected"][0]["message"]
    assert engine.select(REQUEST)["instance"]["id"] == "wa-orders"
    text = json.dumps({**DOWN, "time": "2026-12-07T15:06:00Z"}) + "\n" + \
        '{"type":"delivery","location":"shop","instance":"wa-orders","status":"delivered"}\n'
    assert engine.record(text) == {"accepted": 2, "rejected": []}
    assert engine.select(REQUEST)["error"]["code"] == 101
    engine.close()
