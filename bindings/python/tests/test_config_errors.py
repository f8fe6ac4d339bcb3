import pytest

import switchboard
from conftest import WORLD


def test_bad_files_raise_config_error_with_located_diagnostics(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - manul_override\n  - rule: contact_tag\n    on_unavailable: skipp\n")
    with pytest.raises(switchboard.ConfigError) as caught:
        switchboard.Engine.open(rules, world=WORLD)
    diagnostics = caught.value.diagnostics
    assert [(d["file"], d["line"], d["column"]) for d in diagnostics] == [(str(rules), 2, 5), (str(rules), 4, 21)]
    assert "did you mean `manual_override`" in diagnostics[0]["message"]
    assert "rules.yaml:2:5" in str(caught.value)
    assert isinstance(caught.value, Exception)


def test_a_missing_file_has_an_unlocated_diagnostic(tmp_path):
    with pytest.raises(switchboard.ConfigError) as caught:
        switchboard.Engine.open(tmp_path / "nope.yaml")
    [d] = caught.value.diagnostics
    assert d["line"] is None and d["column"] is None and "no such file" in d["message"]


def test_reload_raises_and_the_last_good_configuration_stays(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [default_instance, any_available]\n")
    engine = switchboard.Engine.open(rules, world=WORLD)
    rules.write_text("rules: [default_instanse]\n")
    with pytest.raises(switchboard.ConfigError) as caught:
        engine.reload()
    assert caught.value.diagnostics[0]["file"] == str(rules) and caught.value.diagnostics[0]["line"] == 1
    status = engine.status()
    assert status["generation"] == 1 and "default_instanse" in status["last_error"]
    assert engine.select({"location": "shop", "channel": "sms", "body": "hi"})["rule"] == "default_instance"
