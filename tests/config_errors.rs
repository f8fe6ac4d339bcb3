//! rules.yaml errors: every problem, located, with a "did you mean".

use switchboard::FileErrors;

use crate::util::*;

fn errors(yaml: &str) -> FileErrors {
    match switchboard::files::compile(yaml, "rules.yaml", registry()) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => e,
    }
}

fn lines(e: &FileErrors) -> Vec<(Option<usize>, String)> {
    e.diagnostics.iter().map(|d| (d.line, d.message.clone())).collect()
}

#[test]
fn all_errors_of_a_file_are_reported_with_line_and_column() {
    let e = switchboard::load_rules(fixture("rules-bad.yaml"), &registry()).unwrap_err();
    let found = lines(&e);
    let expect = [
        (3, "unknown rule `manul_override` (did you mean `manual_override`?)"),
        (5, "`on_unavailable` must be `error` or `skip`; got `skipp`"),
        (7, "did you mean `round_robin`?"),
        (9, "rule `default_instance` has no option `colour`"),
        (10, "rule `contact_tag` is listed twice"),
        (12, "unknown channel `smss` (did you mean `sms`?)"),
    ];
    assert_eq!(found.len(), expect.len(), "{e}");
    for ((line, message), (want_line, want)) in found.iter().zip(expect) {
        assert_eq!(*line, Some(want_line), "{message}");
        assert!(message.contains(want), "{message:?} lacks {want:?}");
    }
    let shown = e.to_string();
    assert!(shown.lines().all(|l| l.contains("rules-bad.yaml:")), "{shown}");
    assert!(e.diagnostics.iter().all(|d| d.column.is_some()));
}

#[test]
fn syntax_errors_are_located() {
    let e = errors("rules:\n  - manual_override\n  - [unclosed\n");
    assert_eq!(e.diagnostics.len(), 1);
    assert!(e.diagnostics[0].line.is_some(), "{e}");
}

#[test]
fn wrong_types_and_unknown_keys() {
    let e = errors("version: 2\nrules: [any_available]\nrulez: []\n");
    let text = e.to_string();
    assert!(text.contains("rules.yaml:1:"), "{text}");
    assert!(text.contains("unsupported `version`"), "{text}");
    assert!(
        text.contains("rules.yaml:3:") && text.contains("unknown field `rulez` in rules.yaml (did you mean `rules`?)"),
        "{text}"
    );
    let e = errors("rules: [{rule: any_available, enabled: maybe}]");
    assert!(e.to_string().contains("`enabled` must be `true` or `false`"), "{e}");
    let e = errors("rules: manual_override");
    assert!(e.to_string().contains("rules.yaml:1:"), "{e}");
}

#[test]
fn options_a_rule_does_not_have() {
    let e = errors("rules:\n  - rule: any_available\n    on_unavailable: skip\n");
    let text = e.to_string();
    assert!(text.contains("rules.yaml:3:") && text.contains("has no `on_unavailable`"), "{text}");
    // Options written before `rule:` are checked too, at the entry.
    let e = errors("rules:\n  - strategy: sideways\n    rule: any_available\n");
    assert!(
        e.to_string().contains("must be one of lowest_index, round_robin, sticky, random, least_used, weighted"),
        "{e}"
    );
}

#[test]
fn empty_missing_rules_and_entry_without_rule() {
    assert!(errors("").to_string().contains("the rules file is empty"));
    assert!(errors("version: 1\n").to_string().contains("missing `rules`"));
    let e = errors("rules:\n  - on_unavailable: skip\n");
    assert!(e.to_string().contains("rules.yaml:2:") && e.to_string().contains("has no `rule:`"), "{e}");
}

#[test]
fn duplicate_channel_sections_and_unknown_channel_keys() {
    let e = errors("rules: [any_available]\nchannels:\n  sms:\n    rules: [any_available]\n    order: []\n");
    assert!(e.to_string().contains("rules.yaml:5:") && e.to_string().contains("unknown field `order`"), "{e}");
}

#[test]
fn plugins_are_refused_when_compiled_without_a_loader() {
    let e = errors("plugins:\n  - path: libx.so\nrules: [any_available]\n");
    assert!(e.to_string().contains("rules.yaml:2:") && e.to_string().contains("cannot load plugins"), "{e}");
}

#[test]
fn shipped_rules_yaml_is_valid_and_in_spec_order() {
    let plan = default_plan();
    for channel in ["whatsapp", "imessage", "sms"] {
        assert_eq!(
            plan.order(channel),
            [
                "manual_override",
                "temporary_switch",
                "contact_tag",
                "user_assignment",
                "default_instance",
                "any_available"
            ]
        );
    }
}

/// docs/capacity.md: the `capacity:` section is read with its defaults, and each
/// problem is located with a "did you mean".
#[test]
fn capacity_section_is_read_and_its_errors_located() {
    use switchboard::{OnStoreError, StoreKind};
    let plan = switchboard::files::compile("rules: [any_available]\n", "rules.yaml", registry()).unwrap();
    assert!(plan.capacity().is_none());
    assert_eq!(plan.on_store_error(), OnStoreError::FailClosed);
    let text = "rules: [any_available]\ncapacity:\n  store: redis\n  redis_url: redis://127.0.0.1:6390/2\n  key_prefix: 'sb:'\n  on_store_error: fail_open\n";
    let plan = switchboard::files::compile(text, "rules.yaml", registry()).unwrap();
    let c = plan.capacity().unwrap();
    assert_eq!(
        (c.store, c.redis_url.as_str(), c.key_prefix.as_str()),
        (StoreKind::Redis, "redis://127.0.0.1:6390/2", "sb:")
    );
    assert_eq!(plan.on_store_error(), OnStoreError::FailOpen);
    let defaults = switchboard::files::compile("rules: [any_available]\ncapacity: {}\n", "r.yaml", registry()).unwrap();
    let c = defaults.capacity().unwrap();
    assert_eq!(
        (c.store, c.on_store_error, c.key_prefix.as_str()),
        (StoreKind::Memory, OnStoreError::FailClosed, "switchboard:")
    );
    let e = switchboard::files::compile(
        "rules: [any_available]\ncapacity:\n  store: rediss\n  on_store_error: fail_opn\n  redis_url: http://x\n  key_prefx: a\n",
        "rules.yaml",
        registry(),
    )
    .unwrap_err()
    .to_string();
    for (line, says) in [
        ("rules.yaml:3:", "`capacity.store` must be `memory` or `redis`; got `rediss` (did you mean `redis`?)"),
        ("rules.yaml:4:", "(did you mean `fail_open`?)"),
        ("rules.yaml:5:", "`capacity.redis_url` must be a `redis://host:port/db` or `rediss://host:port/db` URL"),
        ("rules.yaml:6:", "unknown field `key_prefx` in capacity (did you mean `key_prefix`?)"),
    ] {
        assert!(e.lines().any(|l| l.starts_with(line) && l.contains(says)), "{line} {says}\n{e}");
    }
}

#[test]
fn capacity_names_a_cluster_by_its_seeds_and_a_tls_ca_and_every_mistake_is_located() {
    let text =
        "rules: [any_available]\ncapacity:\n  store: redis\n  redis_url: 'rediss://alice:pw@10.0.0.9:6380/0'\n  \
                redis_cluster: ['redis://10.0.0.1:6379', 'rediss://10.0.0.2:6379']\n  tls_ca_file: certs/ca.pem\n";
    let plan = switchboard::files::compile(text, "rules.yaml", registry()).unwrap();
    let c = plan.capacity().unwrap();
    assert_eq!(c.redis_url, "rediss://alice:pw@10.0.0.9:6380/0");
    assert_eq!(c.redis_cluster, ["redis://10.0.0.1:6379", "rediss://10.0.0.2:6379"]);
    assert_eq!(c.tls_ca_file.as_deref(), Some("certs/ca.pem"));

    let e = switchboard::files::compile(
        "rules: [any_available]\ncapacity:\n  store: redis\n  redis_cluster: ['redis://a:1', 'http://b:2', 7]\n  tls_ca_file: ''\n",
        "rules.yaml",
        registry(),
    )
    .unwrap_err()
    .to_string();
    for (line, says) in [
        ("rules.yaml:4:", "`capacity.redis_cluster[1]` must be a `redis://host:port` or `rediss://host:port` URL"),
        ("rules.yaml:4:", "`capacity.redis_cluster[2]` must be"),
        ("rules.yaml:5:", "`capacity.tls_ca_file` must name a PEM file of CA certificates"),
    ] {
        assert!(e.lines().any(|l| l.starts_with(line) && l.contains(says)), "{line} {says}\n{e}");
    }
    for (value, says) in [("[]", "lists no seed node"), ("'redis://a:1'", "a list of seed node URLs")] {
        let e = switchboard::files::compile(
            &format!("rules: [any_available]\ncapacity:\n  redis_cluster: {value}\n"),
            "rules.yaml",
            registry(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rules.yaml:3:") && e.contains(says), "{value}: {e}");
    }
}
