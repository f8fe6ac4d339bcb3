//! The catalogue: a rules file and world files with many independent
//! problems across several items; `switchboard check` reports every one,
//! each at its own line and column, and warnings never fail the check.

use crate::util::*;

/// Runs `check` and returns the exit code and the stderr lines with the
/// file name taken off (`line:column: message`).
fn check(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = run(args, "");
    let lines = text(&out.stderr)
        .lines()
        .map(|l| l.split_once(".yaml:").or_else(|| l.split_once(".json:")).map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    (out.status.code(), lines)
}

fn assert_each(found: &[String], expect: &[(&str, &str)]) {
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (line, (at, fragment)) in found.iter().zip(expect) {
        assert!(line.starts_with(&format!("{at}: ")), "{line:?} is not at {at}");
        assert!(line.contains(fragment), "{line:?} lacks {fragment:?}");
    }
}

#[test]
fn check_reports_every_problem_of_a_rules_file_at_its_line_and_column() {
    let rules = fixture("catalogue-rules.yaml");
    let (code, found) = check(&["check", "--rules", s(&rules)]);
    assert_eq!(code, Some(1));
    assert_each(
        &found,
        &[
            ("3:5", "rules[0]: unknown rule `manul_override` (did you mean `manual_override`?)"),
            ("4:5", "rules[1]: expected a rule id, or a map with `rule:` and options; got a list"),
            ("5:5", "rules[2]: this entry has no `rule:`"),
            ("6:11", "rules[3].rule: `rule` must be a rule id; got `7`"),
            ("8:21", "rules[4].on_unavailable: `on_unavailable` must be `error` or `skip`; got `skipp`"),
            ("9:14", "rules[4].enabled: `enabled` must be `true` or `false`; got `maybe`"),
            ("11:15", "got `round_robbin` (did you mean `round_robin`?)"),
            ("12:5", "rules[5]: `strategy` appears twice; keep one"),
            ("14:13", "rules[6].colour: rule `default_instance` has no option `colour`"),
            ("15:5", "rules[7]: rule `contact_tag` is listed twice in this list"),
            ("17:13", "`limits.max_tags` must be a whole number above 0; got `-1`"),
            ("18:3", "unknown field `max_tabs` in limits (did you mean `max_tags`?)"),
            ("19:1", "`rules` appears twice; keep one"),
            ("21:3", "channels: unknown channel `smss` (did you mean `sms`?)"),
            ("24:1", "tab characters are not allowed for indentation"),
            ("24:10", "channels.sms.rules[0]: unknown rule `any_availble` (did you mean `any_available`?)"),
        ],
    );
}

#[test]
fn check_reports_every_problem_of_a_yaml_world_at_its_line_and_column() {
    let world = fixture("catalogue-world.yaml");
    let (code, found) = check(&["check", "--rules", s(&repo_file("rules.yaml")), "--world", s(&world)]);
    assert_eq!(code, Some(1));
    assert_each(
        &found,
        &[
            ("4:58", "locations[0].instances[0]: unknown field `connectd` in an instance (did you mean `connected`?)"),
            ("5:9", "locations[0].instances[1]: instance `b`: index 1 on whatsapp is already used by `a`"),
            ("6:9", "locations[0].instances[2]: instance `c` is marked `default: true` but `a` already is"),
            ("7:9", "locations[0].instances[3]: instance `d`: unknown channel `telegramm`"),
            ("8:38", "locations[0].instances[4].index: `index` must be a whole number, 1 or more; got `x`"),
            ("9:42", "locations[0].instances[5].connected: `connected` must be `true` or `false`; got `yes`"),
            ("11:5", "locations[1]: `id` appears twice; keep one"),
            ("13:1", "tab characters are not allowed for indentation"),
            ("14:9", "locations[1].instances[1]: duplicate instance id `g` in this location"),
            ("15:5", "locations[2]: duplicate location id `loc_1`"),
            ("17:28", "locations[3].instances: expected a list of instances; got a map"),
        ],
    );
}

#[test]
fn check_reports_every_problem_of_a_json_world_with_its_item_path() {
    let world = fixture("catalogue-world.json");
    let (code, found) = check(&["check", "--rules", s(&repo_file("rules.yaml")), "--world", s(&world)]);
    assert_eq!(code, Some(1));
    assert_each(
        &found,
        &[
            ("4:35", "locations[1].instances[0]: unknown field `connectd` in an instance (did you mean `connected`?)"),
            ("5:44", "locations[1].instances[1].index: `index` must be a whole number, 1 or more"),
            ("6:46", "locations[1].instances[2].default: `default` must be `true` or `false`; got `1`"),
            ("8:3", "locations[2]: duplicate location id `l1`"),
            ("8:16", "locations[2]: unknown field `colour` in a location"),
        ],
    );
}

#[test]
fn warnings_are_printed_and_the_check_still_passes() {
    let dir = temp_with(&[
        ("empty.yaml", "rules: []\n"),
        ("nofallback.yaml", "rules: [manual_override, contact_tag]\nchannels:\n  sms:\n    rules: [any_available]\n"),
    ]);
    let (code, found) = check(&["check", "--rules", s(&dir.path().join("empty.yaml"))]);
    assert_eq!(code, Some(0), "{found:?}");
    assert_each(&found, &[("1:8", "warning: no rule is enabled for channels imessage, sms, whatsapp")]);
    let (code, found) = check(&["check", "--rules", s(&dir.path().join("nofallback.yaml"))]);
    assert_eq!(code, Some(0), "{found:?}");
    assert_each(
        &found,
        &[(
            "1:8",
            "warning: the chain for channels imessage, whatsapp has neither `any_available` nor `default_instance`",
        )],
    );
    let plan = plan("rules: []\n");
    assert_eq!(plan.warnings().len(), 1);
    assert_eq!(plan.warnings()[0].severity.as_str(), "warning");
    assert!(default_plan().warnings().is_empty());
}
