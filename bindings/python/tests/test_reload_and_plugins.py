import shutil
import time

import pytest

import switchboard
from conftest import WORLD, wait_for, write_by_rename

SMS = {"location": "shop", "channel": "sms", "body": "hi"}


def test_watch_reloads_a_file_replaced_by_rename(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [default_instance, any_available]\n")
    engine = switchboard.Engine.open(rules, world=WORLD, watch=True)
    assert engine.select(SMS)["rule"] == "default_instance"

    write_by_rename(rules, "rules: [any_available]\n")
    wait_for(lambda: engine.status()["generation"] == 2, 10, "generation 2")
    assert engine.select(SMS)["rule"] == "any_available"

    # an invalid file: reported in the status, the last good configuration stays
    write_by_rename(rules, "rules: [any_availabel]\n")
    wait_for(lambda: engine.status()["last_error"] is not None, 10, "the reload error")
    assert "any_availabel" in engine.status()["last_error"]
    assert engine.status()["generation"] == 2
    assert engine.select(SMS)["rule"] == "any_available"

    # after close(), changes are no longer picked up
    engine.close()
    write_by_rename(rules, "rules: [default_instance]\n")
    time.sleep(0.8)
    assert engine.status()["generation"] == 2
    assert engine.select(SMS)["rule"] == "any_available"


@pytest.fixture
def plugin_dir(tmp_path, plugin_path):
    (tmp_path / "plugins").mkdir()
    shutil.copy(plugin_path, tmp_path / "plugins" / "libbusiness_hours.so")
    return tmp_path


def test_a_plugin_listed_in_rules_yaml_is_loaded(plugin_dir):
    rules = plugin_dir / "rules.yaml"
    # `days: []`: always closed, so the after-hours instance (#2) is chosen
    rules.write_text(
        "plugins:\n  - path: plugins/libbusiness_hours.so\nrules:\n  - manual_override\n"
        "  - rule: business_hours\n    days: []\n    after_hours_instance: 2\n  - default_instance\n"
    )
    engine = switchboard.Engine.open(rules, world=WORLD)
    d = engine.select({"location": "shop", "channel": "whatsapp", "body": "Hi"})
    assert (d["ok"], d["rule"], d["instance"]["id"]) == (True, "business_hours", "wa-support")
    assert engine.status()["order"]["whatsapp"] == ["manual_override", "business_hours", "default_instance"]


def test_a_plugin_option_error_is_located(plugin_dir):
    rules = plugin_dir / "rules.yaml"
    rules.write_text('plugins:\n  - path: plugins/libbusiness_hours.so\nrules:\n  - rule: business_hours\n    opne: "08:00"\n')
    with pytest.raises(switchboard.ConfigError) as caught:
        switchboard.Engine.open(rules, world=WORLD)
    assert any(d["file"] == str(rules) and d["line"] == 5 for d in caught.value.diagnostics)


def test_a_plugin_rule_that_panics_is_its_own_error_decision(tmp_path, misbehave_path):
    (tmp_path / "plugins").mkdir()
    shutil.copy(misbehave_path, tmp_path / "plugins" / "libmisbehave.so")
    rules = tmp_path / "rules.yaml"
    rules.write_text("plugins: [{path: plugins/libmisbehave.so}]\nrules: [always_panics]\n")
    engine = switchboard.Engine.open(rules, world=WORLD)
    for _ in range(3):
        d = engine.select({"location": "shop", "channel": "whatsapp", "body": "Hi"})
        assert (d["ok"], d["rule"], d["error"]["code"], d["error"]["kind"]) == (False, "always_panics", 1900, "plugin_panic")
    assert engine.select_many([{"location": "shop", "channel": "sms", "body": "x"}])[0]["error"]["kind"] == "plugin_panic"
