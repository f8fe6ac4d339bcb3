//! `switchboard schema` (docs/operator-tools.md): the generated JSON Schemas are valid
//! draft 2020-12, accept the shipped files, reject bad ones, and agree with
//! the loaders — the world schema's one description is held against the
//! world loader field by field.

use serde_json::{json, Value};
use switchboard::schema::{self, FieldType, Shape};

use crate::util::*;

fn validator(schema: &Value) -> jsonschema::Validator {
    assert!(jsonschema::meta::is_valid(schema), "not a valid JSON Schema");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::validator_for(schema).unwrap()
}

/// A YAML text as the JSON value an editor validates.
fn yaml(text: &str) -> Value {
    let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    serde_json::to_value(v).unwrap()
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn rules_validator() -> jsonschema::Validator {
    validator(&schema::rules_schema(&registry()))
}

fn world_validator() -> jsonschema::Validator {
    validator(&schema::world_schema(&registry()))
}

fn loads_rules(text: &str) -> bool {
    switchboard::files::compile(text, "rules.yaml", registry()).is_ok()
}

fn loads_world(text: &str) -> bool {
    switchboard::files::read_world(text, "world.yaml", &registry()).is_ok()
}

#[test]
fn shipped_rules_and_worlds_validate() {
    let rules = rules_validator();
    for file in [repo_file("rules.yaml"), fixture("rules-skip.yaml")] {
        let v = yaml(&std::fs::read_to_string(&file).unwrap());
        assert_eq!(errors(&rules, &v), Vec::<String>::new(), "{}", file.display());
    }
    let world = world_validator();
    for file in [example("world.yaml"), fixture("shop.yaml")] {
        let v = yaml(&std::fs::read_to_string(&file).unwrap());
        assert_eq!(errors(&world, &v), Vec::<String>::new(), "{}", file.display());
    }
}

#[test]
fn bad_rules_files_fail_the_schema_and_the_loader() {
    let v = rules_validator();
    let good = "rules: [manual_override, {rule: contact_tag, on_unavailable: skip}, {rule: any_available, strategy: sticky}]\nchannels:\n  sms:\n    rules: [contact_tag, any_available]\nlimits: {max_tags: 10}\nversion: 1\n";
    assert!(v.is_valid(&yaml(good)) && loads_rules(good));
    let capacity = "rules: [any_available]\ncapacity: {store: redis, redis_url: 'redis://127.0.0.1:1/0', key_prefix: 'sb:', on_store_error: fail_open}";
    assert!(v.is_valid(&yaml(capacity)) && loads_rules(capacity));
    let health = "rules: [any_available]\nhealth: {quarantine_after: 3, failure_rate: 0.5, min_deliveries: 10, window: 10m, cooldown: 5m, max_cooldown: 1h}";
    assert!(v.is_valid(&yaml(health)) && loads_rules(health));
    let upper = "rules: [manual_override]\nchannels: {SMS: {rules: [contact_tag]}}";
    assert!(v.is_valid(&yaml(upper)) && loads_rules(upper));
    for bad in [
        "rules: [manul_override]",
        "rules: [{rule: any_available, strategy: stiky}]",
        "rules: [{rule: any_available, on_unavailable: skip}]",
        "rules: [{rule: contact_tag, on_unavailable: maybe}]",
        "rules: [{rule: contact_tag, colour: blue}]",
        "rules: [{rule: contact_tag, enabled: yes please}]",
        "rules: [{on_unavailable: skip}]",
        "rules: [manual_override]\nchannels: {smss: {rules: [contact_tag]}}",
        "rules: [manual_override]\nchannels: {sms: {order: [contact_tag]}}",
        "rules: [manual_override]\nversion: 2",
        "rules: [manual_override]\nlimits: {max_tags: 0}",
        "rules: [manual_override]\nlimits: {max_tagz: 3}",
        "rules: [manual_override]\nplugins: [{sha256: abc}]",
        "rules: [manual_override]\nextra: 1",
        "rules: [manual_override]\ncapacity: {store: memcache}",
        "rules: [manual_override]\ncapacity: {on_store_error: fail_opn}",
        "rules: [manual_override]\ncapacity: {redis_url: 'http://x'}",
        "rules: [manual_override]\ncapacity: {stor: redis}",
        "rules: [manual_override]\ncapacity: redis",
        "rules: [manual_override]\nhealth: {quarantine_after: 0}",
        "rules: [manual_override]\nhealth: {failure_rate: 1.5}",
        "rules: [manual_override]\nhealth: {failure_rate: 0}",
        "rules: [manual_override]\nhealth: {window: 10 minutes}",
        "rules: [manual_override]\nhealth: {cooldown: 0m}",
        "rules: [manual_override]\nhealth: {quarantine: 5}",
        "version: 1",
        "rules: manual_override",
    ] {
        assert!(!v.is_valid(&yaml(bad)), "the schema accepts {bad:?}");
        assert!(!loads_rules(bad), "the loader accepts {bad:?}");
    }
}

#[test]
fn rules_schema_documents_every_rule_option_with_type_default_and_doc() {
    let registry = registry();
    let s = schema::rules_schema(&registry);
    for rule in registry.rules() {
        let def = &s["$defs"][format!("rule.{}", rule.id)];
        assert_eq!(def["properties"]["rule"]["const"], rule.id.as_str());
        assert_eq!(def["properties"].get("on_unavailable").is_some(), rule.on_unavailable.is_some(), "{}", rule.id);
        for option in &rule.options {
            let o = &def["properties"][option.name];
            assert_eq!(o["description"], option.doc, "{}.{}", rule.id, option.name);
            assert!(o.get("default").is_some() && o.get("type").is_some(), "{}.{}: {o}", rule.id, option.name);
        }
    }
    let strategy = &s["$defs"]["rule.any_available"]["properties"]["strategy"];
    assert_eq!(strategy["default"], "lowest_index");
    assert_eq!(strategy["enum"], json!(["lowest_index", "round_robin", "sticky", "random", "least_used", "weighted"]));
    assert_eq!(s["$defs"]["rule.default_instance"]["properties"]["on_unavailable"]["default"], "skip");
    assert_eq!(s["properties"]["limits"]["properties"]["max_tags"]["default"], 1000);
}

#[test]
fn plugin_rules_are_in_the_schema_when_rules_lists_the_plugin() {
    let dir = temp_with(&[]);
    let so = plugin("business_hours");
    let rules = dir.path().join("rules.yaml");
    let yaml_text = format!(
        "plugins:\n  - path: {}\nrules:\n  - rule: business_hours\n    open: '08:00'\n    days: [mon, tue]\n    after_hours_instance: 2\n  - any_available\n",
        so.display()
    );
    std::fs::write(&rules, &yaml_text).unwrap();
    let out = run(&["schema", "rules", "--rules", s(&rules)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let with_plugin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let def = &with_plugin["$defs"]["rule.business_hours"];
    assert_eq!(def["properties"]["open"]["default"], "09:00");
    assert_eq!(def["properties"]["days"]["type"], "array");
    assert_eq!(def["properties"]["utc_offset_minutes"]["type"], "integer");
    let v = validator(&with_plugin);
    assert_eq!(errors(&v, &yaml(&yaml_text)), Vec::<String>::new());
    assert!(!v.is_valid(&yaml("rules: [{rule: business_hours, open: 8}]")));
    // Without the plugin, the rule is unknown.
    let out = run(&["schema", "rules"], "");
    let builtin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(builtin["$defs"].get("rule.business_hours").is_none());
    assert!(!validator(&builtin).is_valid(&yaml(&yaml_text)));
}

#[test]
fn schema_command_prints_the_library_schemas_and_refuses_bad_arguments() {
    let out = run(&["schema", "world"], "");
    assert_eq!(out.status.code(), Some(0));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, schema::world_schema(&registry()));
    for bad in [vec!["schema"], vec!["schema", "worlds"], vec!["schema", "rules", "world"]] {
        let out = run(&bad, "");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("<WHICH>")
                || err.contains("[possible values: rules, world]")
                || err.contains("unexpected argument 'world'"),
            "{err}"
        );
    }
    let out = run(&["schema", "rules", "--rules", "/nonexistent/rules.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/rules.yaml: no such file"));
}

/// The world description and the model name the same instance fields.
#[test]
fn world_description_names_every_instance_field_of_the_model() {
    let spec = switchboard::InstanceSpec {
        id: "a".into(),
        channel: "sms".into(),
        index: None,
        phone: String::new(),
        connected: false,
        default: false,
        users: vec![],
        weight: None,
        pool: None,
        limits: None,
        reply_window: None,
        warmup: None,
    };
    let model: Vec<String> = serde_json::to_value(spec).unwrap().as_object().unwrap().keys().cloned().collect();
    let mut described: Vec<String> = schema::INSTANCE.fields.iter().map(|f| f.name.to_owned()).collect();
    described.sort();
    assert_eq!(described, model);
}

/// Values of the wrong type for a field, as YAML.
fn wrong_values(ty: FieldType) -> &'static [&'static str] {
    match ty {
        FieldType::Text => &["[a]", "{a: 1}"],
        FieldType::NonBlankText => &["'  '", "''", "[a]"],
        FieldType::OptionalPositiveInteger => &["0", "-1", "'2'", "1.5", "[1]"],
        FieldType::Bool => &["'true'", "1", "[true]"],
        FieldType::TextList => &["a", "[[a]]", "[{a: 1}]"],
        FieldType::Channel => &["telegramm", "[sms]", "''"],
        FieldType::List(_) => &["{}", "x"],
        FieldType::Map(_) => &["x", "[1]", "{per_dai: 1}", "{per_day: 0}", "{per_day: '5'}"],
        FieldType::TimeZone => &["1", "[UTC]", "''"],
        FieldType::PoolId => &["[p]", "{a: 1}"],
        FieldType::Duration => &["24", "'24'", "1w", "0h", "'1.5h'", "[24h]", "''"],
        FieldType::Country => &["USA", "U", "1", "[US]", "''"],
        FieldType::Warmup => &[
            "x",
            "[1]",
            "{since: 2026-12-01}",
            "{per_day: [1]}",
            "{since: 2026-12-01, per_day: []}",
            "{since: 2026-12-01, per_day: [20, 0]}",
            "{since: 2026-12-01, per_day: 5}",
            "{since: soon, per_day: [5]}",
            "{since: 2026-12-01, per_day: [5], until: 2027-01-01}",
        ],
    }
}

/// Values of the right type, as YAML (beyond the good file's own).
fn right_values(ty: FieldType) -> &'static [&'static str] {
    match ty {
        FieldType::Text => &["x", "''", "'+1 (555) 0100'"],
        FieldType::NonBlankText => &["x-1"],
        FieldType::OptionalPositiveInteger => &["1", "7", "null"],
        FieldType::Bool => &["true", "false"],
        FieldType::TextList => &["[]", "[a, b]"],
        FieldType::Channel => &["sms", "SMS", "WhatsApp"],
        FieldType::List(_) => &["[]"],
        FieldType::Map(_) => &["{}", "null", "{per_day: 5, contacts_per_day: 2}"],
        FieldType::TimeZone => &["UTC", "America/New_York"],
        // A pool id must name a pool of the location: checked by the loader.
        FieldType::PoolId => &[],
        FieldType::Duration => &["24h", "90s", "30m", "7d", "null"],
        FieldType::Country => &["US", "gb", "null"],
        FieldType::Warmup => {
            &["null", "{since: 2026-12-01, per_day: [20, 50, 120]}", "{since: '2026-12-01T09:00:00Z', per_day: [5]}"]
        }
    }
}

/// A good world with one field of one map replaced (or added, or removed).
fn world_with(shape: &str, key: &str, value: Option<&str>) -> String {
    let mut instance = vec![
        ("id", "i1".to_owned()),
        ("channel", "sms".to_owned()),
        ("index", "1".to_owned()),
        ("phone", "'+1 555 0100'".to_owned()),
        ("connected", "true".to_owned()),
        ("default", "true".to_owned()),
        ("users", "[u1]".to_owned()),
    ];
    let mut location = vec![("id", "l1".to_owned()), ("instances", String::new())];
    let mut world = vec![("locations", String::new())];
    let target = match shape {
        "instance" => &mut instance,
        "location" => &mut location,
        _ => &mut world,
    };
    target.retain(|(k, _)| *k != key);
    if let Some(v) = value {
        target.push((key, v.to_owned()));
    }
    let map = |pairs: &[(&str, String)]| {
        format!("{{{}}}", pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))
    };
    let instance = map(&instance);
    let location: Vec<(&str, String)> = location
        .into_iter()
        .map(|(k, v)| if k == "instances" && v.is_empty() { (k, format!("[{instance}]")) } else { (k, v) })
        .collect();
    let location = map(&location);
    let world: Vec<(&str, String)> = world
        .into_iter()
        .map(|(k, v)| if k == "locations" && v.is_empty() { (k, format!("[{location}]")) } else { (k, v) })
        .collect();
    map(&world)
}

/// Every field of the world description, mutated every way it can go
/// wrong (and right): the schema and the loader answer alike.
#[test]
fn world_schema_and_loader_agree_field_by_field() {
    let v = world_validator();
    let shapes: [(&str, &Shape); 3] =
        [("world", &schema::WORLD), ("location", &schema::LOCATION), ("instance", &schema::INSTANCE)];
    let mut checked = 0;
    let mut check = |text: String, want: bool| {
        let by_schema = v.is_valid(&yaml(&text));
        let by_loader = loads_world(&text);
        assert_eq!(by_schema, want, "schema on {text}: {:?}", errors(&v, &yaml(&text)));
        assert_eq!(by_loader, want, "loader on {text}");
        checked += 1;
    };
    for (name, shape) in shapes {
        check(world_with(name, "unknown_key", Some("1")), false);
        for field in shape.fields {
            for wrong in wrong_values(field.ty) {
                check(world_with(name, field.name, Some(wrong)), false);
            }
            for right in right_values(field.ty) {
                check(world_with(name, field.name, Some(right)), true);
            }
            check(world_with(name, field.name, None), !field.required);
        }
    }
    assert!(checked > 50, "{checked}");
}

/// Bad worlds beyond single fields: both refuse them. (What needs the
/// whole file — unique indexes, one default — is the loader's alone.)
#[test]
fn bad_worlds_fail_the_schema_and_the_loader() {
    let v = world_validator();
    for bad in [
        "",
        "[]",
        "locations: {}",
        "locations: [[]]",
        "locations: [{instances: []}]",
        "locations: [{id: l, instances: [{channel: sms}]}]",
        "locations: [{id: l, instances: [{id: a}]}]",
        "locations: [{id: l, instances: [{id: a, channel: sms, phone: '1', conected: true}]}]",
        "world: []",
    ] {
        let value = serde_yaml::from_str::<serde_yaml::Value>(bad).map(|y| serde_json::to_value(y).unwrap());
        assert!(value.is_err() || !v.is_valid(&value.unwrap()), "the schema accepts {bad:?}");
        assert!(!loads_world(bad), "the loader accepts {bad:?}");
    }
    let semantic =
        "locations: [{id: l, instances: [{id: a, channel: sms, index: 1}, {id: b, channel: sms, index: 1}]}]";
    assert!(v.is_valid(&yaml(semantic)) && !loads_world(semantic));
}

#[test]
fn plugin_channels_are_in_the_world_schema_when_rules_lists_the_plugin() {
    let dir = temp_with(&[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, format!("plugins:\n  - path: {}\nrules: [any_available]\n", plugin("telegram").display()))
        .unwrap();
    let world = "locations: [{id: l, instances: [{id: t1, channel: telegram, phone: '+1 555', connected: true}]}]";
    let out = run(&["schema", "world", "--rules", s(&rules)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let with_plugin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(errors(&validator(&with_plugin), &yaml(world)), Vec::<String>::new());
    assert!(!world_validator().is_valid(&yaml(world)), "telegram is not a built-in channel");
}
