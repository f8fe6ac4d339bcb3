import json

import switchboard
from conftest import RULES, WORLD


def test_select_json_and_select_decide_like_the_cli(cli_decisions, request_lines):
    assert len(cli_decisions) == len(request_lines)
    engine = switchboard.Engine.open(RULES, world=WORLD)
    for i, line in enumerate(request_lines):
        assert json.loads(engine.select_json(line)) == cli_decisions[i], f"select_json, line {i + 1}: {line}"
        try:
            request = json.loads(line)
        except ValueError:
            continue  # not JSON: only the text path can carry it
        assert engine.select(request) == cli_decisions[i], f"select, line {i + 1}: {line}"
    seen = {d["rule"] if d["ok"] else d["error"]["code"] for d in cli_decisions}
    for want in ["manual_override", "temporary_switch", "contact_tag", "user_assignment",
                 "default_instance", "any_available", 100, 101, 103, 104, 106]:
        assert want in seen, f"the examples cover {want}"
    engine.close()


def test_select_many_is_select_in_order(cli_decisions, request_lines):
    engine = switchboard.Engine.open(str(RULES), world=str(WORLD))
    requests, expected = [], []
    for line, decision in zip(request_lines, cli_decisions):
        try:
            requests.append(json.loads(line))
        except ValueError:
            continue
        expected.append(decision)
    assert engine.select_many(requests) == expected
    assert engine.select_many([]) == []


def test_a_request_it_cannot_use_is_a_code_100_decision(cli_decisions):
    engine = switchboard.Engine.open(RULES, world=WORLD)
    for bad in [None, 42, "text", [1, 2], {"location": "shop"}, {1, 2}, float("nan"),
                {"location": "shop", "channel": "sms", "body": "x", "typo": 1}]:
        d = engine.select(bad)
        assert (d["ok"], d["rule"], d["error"]["code"]) == (False, None, 100), repr(bad)
    for bad in ["", "not json", "[]", None, 5, {}, "\ud800", b"\xff{}", {"location": "\ud800"}]:
        assert json.loads(engine.select_json(bad))["error"]["code"] == 100, repr(bad)
    assert engine.select({"location": "shop", "channel": "sms", "body": "\ud800"})["error"]["code"] == 100


def test_select_json_takes_utf8_bytes(cli_decisions, request_lines):
    engine = switchboard.Engine.open(RULES, world=WORLD)
    for i, line in enumerate(request_lines):
        assert json.loads(engine.select_json(line.encode("utf-8"))) == cli_decisions[i]


def test_explain_and_status():
    with switchboard.Engine.open(RULES, world=WORLD) as engine:
        table = engine.explain({"location": "shop", "channel": "whatsapp", "body": "Hi { WA#2 }"})
        assert "decision  selected wa-support (#2, +1-555-SUPPORT) by manual_override" in table
        assert "error 100" in engine.explain("not json")
        status = engine.status()
        assert isinstance(status["generation"], int) and status["generation"] == 1
        assert len(status["rules_sha256"]) == 64 and status["last_error"] is None
        assert status["order"]["whatsapp"][0] == "manual_override"
        assert engine.reload() == {"type": "unchanged", "generation": 1}


def test_conversations_are_remembered_and_forgotten(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - rule: conversation\n    ttl: 1h\n  - rule: any_available\n    strategy: round_robin\n")
    engine = switchboard.Engine.open(str(rules), world=str(WORLD))

    def send(contact):
        return engine.select({"location": "shop", "channel": "whatsapp", "body": "hi",
                              "now": "2026-11-25T14:00:00Z", "contact": {"id": contact}})

    first = send("c1")
    assert first["ok"] and first["rule"] == "any_available"
    again = send("c1")
    assert again["rule"] == "conversation" and again["instance"] == first["instance"]
    assert engine.forget("shop", "whatsapp", "c1") is True
    assert engine.forget("shop", "whatsapp", "c1") is False
    assert send("c1")["rule"] == "any_available"
    engine.close()


def test_forget_raises_store_error_when_the_store_cannot_answer(tmp_path):
    rules = tmp_path / "rules.yaml"
    # Nothing listens on port 1.
    rules.write_text("rules: [conversation, any_available]\n"
                     "capacity: {store: redis, redis_url: 'redis://127.0.0.1:1/0'}\n")
    engine = switchboard.Engine.open(str(rules), world=str(WORLD))
    try:
        engine.forget("shop", "whatsapp", "c1")
    except switchboard.StoreError as e:
        assert "cannot forget" in str(e)
    else:
        raise AssertionError("forget answered without a store")
    engine.close()
