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
    let e = World::from_str(text, "world.json", &registry()).unwrap_err();
    assert!(e.to_string().starts_with("world.json:3:"), "{e}");
    assert!(e.to_string().contains("duplicate instance id `a`"), "{e}");
    let ok = World::from_str(r#"{"locations":[{"id":"l","instances":[]}]}"#, "w.json", &registry()).unwrap();
    assert_eq!(ok.len(), 1);
}

#[test]
fn odd_values() {
    let reg = registry();
    let bad = |yaml: &str| World::from_str(yaml, "w.yaml", &reg).unwrap_err().to_string();
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
    let e = World::from_str(&text, "big.yaml", &registry()).unwrap_err();
    assert_eq!(e.diagnostics.len(), 2_000);
    for (k, d) in e.diagnostics.iter().enumerate() {
        assert_eq!(d.line, Some(2 + 10 * k), "{}", d.message);
        assert!(d
            .message
            .starts_with(&format!("locations[{}].instances[0]: instance `a`: unknown channel `fax`", 10 * k)));
    }
}
