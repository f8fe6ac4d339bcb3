//! World-file validation: each problem names the file, line and item.

use switchboard::World;

use crate::util::*;

#[test]
fn every_world_error_is_located() {
    let e = switchboard::load_world(fixture("world-bad.yaml"), &registry()).unwrap_err();
    let got: Vec<(Option<usize>, &str)> = e.diagnostics.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(got.len(), 4, "{e}");
    assert_eq!(got[0].0, Some(5));
    assert!(got[0].1.contains("index 1 on whatsapp is already used by `a`"), "{}", got[0].1);
    assert!(got[0].1.starts_with("locations[0].instances[1]"), "names the item: {}", got[0].1);
    assert_eq!(got[1].0, Some(6));
    assert!(got[1].1.contains("`c` is marked `default: true` but `a` already is"), "{}", got[1].1);
    assert_eq!(got[2].0, Some(7));
    assert!(got[2].1.contains("unknown channel `telegramm`"), "{}", got[2].1);
    assert_eq!(got[3].0, Some(9));
    assert!(got[3].1.contains("has no `index` but `e` on sms has one"), "{}", got[3].1);
    assert!(e.to_string().starts_with(&format!("{}:5:", fixture("world-bad.yaml").display())));
}

#[test]
fn implicit_indexes_number_in_file_order() {
    let w = world(
        "locations: [{id: l, instances: [{id: a, channel: sms}, {id: b, channel: whatsapp}, {id: c, channel: sms}]}]",
    );
    let sms = w.location("l").unwrap().channel("sms");
    assert_eq!(sms.by_index(1).unwrap().id(), "a");
    assert_eq!(sms.by_index(2).unwrap().id(), "c");
}

#[test]
fn json_world_files_are_read_and_located() {
    let text = r#"{"locations":[{"id":"l","instances":[
        {"id":"a","channel":"sms","phone":"1"},
        {"id":"a","channel":"sms","phone":"2"}]}]}"#;
    let e = switchboard::files::read_world(text, "world.json", &registry()).unwrap_err();
    assert!(e.to_string().starts_with("world.json:3:"), "{e}");
    assert!(e.to_string().contains("duplicate instance id `a`"), "{e}");
    let ok =
        switchboard::files::read_world(r#"{"locations":[{"id":"l","instances":[]}]}"#, "w.json", &registry()).unwrap();
    assert_eq!(ok.len(), 1);
}

#[test]
fn odd_values() {
    let reg = registry();
    let bad = |yaml: &str| switchboard::files::read_world(yaml, "w.yaml", &reg).unwrap_err().to_string();
    assert!(bad("").contains("the world file is empty"));
    assert!(
        bad("locations: [{id: l, instances: [{id: a, channel: sms, index: 0}]}]").contains("index 0 is not allowed")
    );
    assert!(bad("locations: [{id: l, instances: [{id: a, channel: sms, index: 99999999999999999999999}]}]")
        .contains("w.yaml:1:"));
    assert!(
        bad("locations: [{id: l, instances: [{id: a, channel: sms, colour: red}]}]").contains("unknown field `colour`")
    );
    assert!(bad("locations: [{id: l}, {id: l}]").contains("duplicate location id `l`"));
    assert!(bad("places: []").contains("unknown field `places`"));
}

#[test]
fn a_large_file_reports_every_error_each_at_its_line() {
    // > 1 MiB with an error in each of 2,000 locations: all 2,000 are reported.
    let mut text = String::from("locations:\n");
    for n in 0..20_000 {
        let channel = if n % 10 == 0 { "fax" } else { "sms" };
        text.push_str(&format!(
            "  - {{id: l{n}, instances: [{{id: a, channel: {channel}, phone: '+1 555 {n:07}'}}]}}\n"
        ));
    }
    assert!(text.len() > 1 << 20);
    let e = switchboard::files::read_world(&text, "big.yaml", &registry()).unwrap_err();
    assert_eq!(e.diagnostics.len(), 2_000);
    for (k, d) in e.diagnostics.iter().enumerate() {
        assert_eq!(d.line, Some(2 + 10 * k), "{}", d.message);
        assert!(d
            .message
            .starts_with(&format!("locations[{}].instances[0]: instance `a`: unknown channel `fax`", 10 * k)));
    }
}

/// docs/capacity.md: timezone, pools, weight, pool and limits are read, and each
/// problem is located at its line, in YAML (the positioned path) and in
/// JSON (the serde fast path agrees on the valid ones).
#[test]
fn capacity_fields_are_read_and_their_errors_located() {
    let good = "locations:\n  - id: shop\n    timezone: America/New_York\n    pools:\n      - {id: brand-a, limits: {per_day: 2000}}\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '+1 555 0101', connected: true, weight: 3, pool: brand-a, limits: {per_minute: 20, per_hour: 300, per_day: 1000, contacts_per_day: 250}}\n      - {id: wa-2, channel: whatsapp, phone: '+1 555 0102', connected: true}\n";
    let w = world(good);
    let shop = w.location("shop").unwrap();
    assert_eq!(shop.timezone().iana_name(), Some("America/New_York"));
    assert_eq!(shop.pool("brand-a").unwrap().limits().per_day, Some(2000));
    let wa = shop.channel("whatsapp");
    let (one, two) = (wa.by_index(1).unwrap(), wa.by_index(2).unwrap());
    assert_eq!(
        (one.weight(), one.pool(), one.limits().per_minute, one.limits().contacts_per_day),
        (3, Some("brand-a"), Some(20), Some(250))
    );
    assert_eq!((two.weight(), two.pool(), two.limits().is_unlimited()), (1, None, true));
    assert!(shop.has_limits());
    // Without the new fields: UTC, no pools, no limits.
    let plain = world("locations: [{id: l, instances: [{id: a, channel: sms}]}]");
    let l = plain.location("l").unwrap();
    assert_eq!(l.timezone().iana_name(), Some("UTC"));
    assert!(l.pools().is_empty() && !l.has_limits());
    // The JSON fast path reads the same.
    let json = r#"{"locations":[{"id":"shop","timezone":"Europe/Paris","pools":[{"id":"p","limits":{"per_day":5}}],
        "instances":[{"id":"a","channel":"sms","phone":"1","connected":true,"weight":2,"pool":"p","limits":{"per_hour":7}}]}]}"#;
    let w = switchboard::files::read_world(json, "w.json", &registry()).unwrap();
    let a = w.location("shop").unwrap().channel("sms").by_index(1).unwrap().clone();
    assert_eq!((a.weight(), a.pool(), a.limits().per_hour), (2, Some("p"), Some(7)));
    assert_eq!(w.location("shop").unwrap().timezone().iana_name(), Some("Europe/Paris"));

    let reg = registry();
    let bad = |text: &str| switchboard::files::read_world(text, "w.yaml", &reg).unwrap_err().to_string();
    let located = |text: &str, at: &str, says: &str| {
        let e = bad(text);
        assert!(e.starts_with(at), "{e}");
        assert!(e.contains(says), "{e}");
    };
    located("locations:\n  - id: l\n    timezone: Mars/Olympus\n", "w.yaml:3:", "Mars/Olympus");
    located(
        "locations:\n  - id: l\n    instances:\n      - {id: a, channel: sms, pool: brand-b}\n",
        "w.yaml:4:",
        "no pool `brand-b` in this location",
    );
    located(
        "locations:\n  - id: l\n    pools: [{id: brand-a}]\n    instances:\n      - {id: a, channel: sms, pool: brand-b}\n",
        "w.yaml:5:",
        "did you mean `brand-a`?",
    );
    located(
        "locations:\n  - id: l\n    instances:\n      - {id: a, channel: sms, limits: {per_dai: 3}}\n",
        "w.yaml:4:",
        "unknown field `per_dai` in limits (did you mean `per_day`?)",
    );
    located(
        "locations:\n  - id: l\n    instances:\n      - {id: a, channel: sms, limits: {per_day: 0}}\n",
        "w.yaml:4:",
        "`per_day` must be a whole number, 1 or more; got",
    );
    located(
        "locations:\n  - id: l\n    instances:\n      - {id: a, channel: sms, weight: 0}\n",
        "w.yaml:4:",
        "`weight`",
    );
    located(
        "locations:\n  - id: l\n    pools:\n      - {id: p, limits: {contacts_per_dy: 1}}\n",
        "w.yaml:4:",
        "did you mean `contacts_per_day`?",
    );
    located(
        "locations:\n  - id: l\n    pools:\n      - {id: p}\n      - {id: p}\n",
        "w.yaml:5:",
        "duplicate pool id `p`",
    );
    // JSON: the same errors, located too.
    let e = switchboard::files::read_world(
        r#"{"locations":[{"id":"l","instances":[
        {"id":"a","channel":"sms","limits":{"per_day":0}}]}]}"#,
        "w.json",
        &reg,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("w.json:2:") && e.contains("per_day"), "{e}");
    // Inline instances have no pools.
    let d = decide(
        &default_plan(),
        &World::empty(),
        r#"{"location":"l","channel":"sms","body":"","instances":[{"id":"a","channel":"sms","pool":"p"}]}"#,
    );
    assert!(summary(&d).starts_with("100/"), "{}", summary(&d));
}

/// docs/capacity.md: a request's `now` is RFC 3339; anything else is code 100
/// naming the field.
#[test]
fn request_now_is_rfc3339_or_code_100_naming_the_field() {
    let ok = switchboard::Request::from_json(
        r#"{"location":"l","channel":"sms","body":"","now":"2026-11-25T14:00:00-05:00"}"#,
    )
    .unwrap();
    assert_eq!(ok.now.unwrap().to_string(), "2026-11-25T19:00:00Z");
    assert!(switchboard::Request::from_json(r#"{"location":"l","channel":"sms","body":"","now":null}"#)
        .unwrap()
        .now
        .is_none());
    for bad in [r#""yesterday""#, "12", r#""2026-13-01T00:00:00Z""#] {
        let json = format!(r#"{{"location":"l","channel":"sms","body":"","now":{bad}}}"#);
        let e = switchboard::parse_request(&json).unwrap_err();
        assert_eq!(summary(&e), "100/invalid_request", "{bad}");
        let message = e.result.unwrap_err().message;
        assert!(message.contains("now"), "{bad}: {message}");
    }
}
