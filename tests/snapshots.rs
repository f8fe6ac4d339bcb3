//! What a user reads, as snapshots (insta): the explain table, `check`'s
//! located errors and the `rules` listing. A reviewer sees the text change.

use crate::util::*;

/// Output with the machine-specific fixture directory replaced.
fn portable(out: &str) -> String {
    out.replace(&format!("{}/", fixture("").display()), "<fixtures>/")
        .replace(&repo_file("").display().to_string(), "<repo>/")
}

/// `explain` of the disconnected-tag request on the shop world.
fn explain(rules: &std::path::Path) -> String {
    let (world, request) = (fixture("shop.yaml"), fixture("request-disconnected-tag.json"));
    let out = run(&["explain", "--rules", s(rules), "--world", s(&world), "--request", s(&request)], "");
    text(&out.stdout)
}

#[test]
fn explain_table_for_a_disconnected_tag() {
    insta::assert_snapshot!(explain(&repo_file("rules.yaml")));
}

#[test]
fn explain_table_for_a_fall_through() {
    insta::assert_snapshot!(explain(&fixture("rules-skip.yaml")));
}

#[test]
fn check_lists_every_error_located() {
    let out = run(&["check", "--rules", s(&fixture("rules-bad.yaml")), "--world", s(&fixture("world-bad.yaml"))], "");
    insta::assert_snapshot!(portable(&text(&out.stderr)));
}

#[test]
fn rules_listing() {
    let out = run(&["rules", "--rules", s(&fixture("rules-skip.yaml"))], "");
    insta::assert_snapshot!(portable(&text(&out.stdout)));
}
