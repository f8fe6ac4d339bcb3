//! Dynamic plugins as real shared libraries: selection through a plugin
//! rule, a plugin channel, contained misbehaviour, and every load error.

use std::fs;
use std::path::Path;

use switchboard::{Live, ReloadEvent};

use crate::util::*;

const WORLD: &str = "locations:
  - id: l
    instances:
      - {id: wa-1, channel: whatsapp, index: 1, phone: '+1 555 0001', connected: true}
      - {id: wa-2, channel: whatsapp, index: 2, phone: '+1 555 0002', connected: true}
      - {id: wa-3, channel: whatsapp, index: 3, phone: '+1 555 0003', connected: false}
      - {id: wa-4, channel: whatsapp, index: 4, phone: '+1 555 0004', connected: true, default: true}
";

/// A temp dir with `plugins/<copies of the named plugins>`, `world.yaml` and
/// `rules.yaml`; returns it with the rules path.
fn setup(plugins: &[&str], rules: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = temp_with(&[("world.yaml", WORLD), ("rules.yaml", rules)]);
    fs::create_dir(dir.path().join("plugins")).unwrap();
    for name in plugins {
        fs::copy(plugin(name), dir.path().join(format!("plugins/lib{name}.so"))).unwrap();
    }
    let rules = dir.path().join("rules.yaml");
    (dir, rules)
}

fn select(rules: &Path, world: &Path, req: &str) -> switchboard::Decision {
    let registry = registry();
    let plan = switchboard::load_rules(rules, &registry).unwrap_or_else(|e| panic!("{e}"));
    let world = switchboard::load_world(world, plan.registry()).unwrap_or_else(|e| panic!("{e}"));
    decide(&plan, &world, req)
}

fn load_error(rules: &Path) -> String {
    switchboard::load_rules(rules, &registry()).map(|_| ()).unwrap_err().to_string()
}

const WA: &str = r#"{"location":"l","channel":"whatsapp","body":"Hi"}"#;

#[test]
fn a_plugin_rule_selects_with_options_from_rules_yaml() {
    let closed = "plugins:\n  - path: plugins/libbusiness_hours.so\nrules:\n  - manual_override\n  - rule: business_hours\n    days: []\n    after_hours_instance: 2\n  - default_instance\n";
    let (dir, rules) = setup(&["business_hours"], closed);
    let d = select(&rules, &dir.path().join("world.yaml"), WA);
    assert_eq!((summary(&d), d.rule), ("wa-2".to_owned(), Some("business_hours")));
    // Always open: the rule does not apply, the default decides.
    let open =
        closed.replace("days: []", "days: [sun, mon, tue, wed, thu, fri, sat]\n    open: '00:00'\n    close: '24:00'");
    fs::write(&rules, open).unwrap();
    let d = select(&rules, &dir.path().join("world.yaml"), WA);
    assert_eq!(summary(&d), "wa-4");
    assert_eq!(outcomes(&d), ["manual_override:no_match", "business_hours:no_match", "default_instance:selected"]);
    // Unusable after-hours instance: the plugin's code.
    fs::write(&rules, closed.replace("after_hours_instance: 2", "after_hours_instance: 3")).unwrap();
    let d = select(&rules, &dir.path().join("world.yaml"), WA);
    assert_eq!(summary(&d), "1001/instance_disconnected");
}

#[test]
fn plugin_options_are_checked_with_line_and_column() {
    let (_dir, rules) = setup(
        &["business_hours"],
        "plugins:\n  - path: plugins/libbusiness_hours.so\nrules:\n  - rule: business_hours\n    opne: '08:00'\n    after_hours_instance: 2\n  - default_instance\nchannels:\n  sms:\n    rules:\n      - rule: business_hours\n        days: []\n      - rule: business_hours\n",
    );
    let e = load_error(&rules);
    assert!(e.contains("rules.yaml:5:") && e.contains("no option `opne` (did you mean `open`?)"), "{e}");
    assert!(e.contains("rules.yaml:11:") && e.contains("`after_hours_instance` is required"), "{e}");
    assert!(e.contains("rules.yaml:13:") && e.contains("listed twice"), "{e}");
}

#[test]
fn a_plugin_channel_routes_strips_and_tags() {
    let world = "locations:\n  - id: l\n    instances:\n      - {id: tg-1, channel: telegram, phone: '+44 7700 900001', connected: true}\n      - {id: tg-2, channel: telegram, phone: '+44 7700 900002', connected: true}\n      - {id: wa-1, channel: whatsapp, phone: '+1 555 0001', connected: true}\n";
    let (dir, rules) = setup(&["telegram"], "plugins: [{path: plugins/libtelegram.so}]\nrules: [manual_override, temporary_switch, contact_tag, any_available]\n");
    fs::write(dir.path().join("world.yaml"), world).unwrap();
    let w = dir.path().join("world.yaml");
    let d = select(&rules, &w, r#"{"location":"l","channel":"telegram","body":"Hello { tg#2 }"}"#);
    assert_eq!((summary(&d), d.body.as_deref()), ("tg-2".to_owned(), Some("Hello")));
    let d = select(&rules, &w, r#"{"location":"l","channel":"telegram","body":"x {TEMP-TG#1}"}"#);
    assert_eq!((summary(&d), d.rule), ("tg-1".to_owned(), Some("temporary_switch")));
    let d = select(
        &rules,
        &w,
        r#"{"location":"l","channel":"telegram","body":"x","contact":{"id":"c","tags":["TG: +44 7700 900002"]}}"#,
    );
    assert_eq!((summary(&d), d.rule), ("tg-2".to_owned(), Some("contact_tag")));
    // Its patterns are stripped from other channels' bodies too.
    let d = select(&rules, &w, r#"{"location":"l","channel":"whatsapp","body":"Hi {TG#1} there"}"#);
    assert_eq!((summary(&d), d.body.as_deref()), ("wa-1".to_owned(), Some("Hi there")));
}

#[test]
fn misbehaving_plugin_rules_fail_with_their_own_code() {
    let (dir, rules) = setup(&["misbehave"], "plugins: [{path: plugins/libmisbehave.so}]\nrules: [always_panics]\n");
    let w = dir.path().join("world.yaml");
    let d = select(&rules, &w, WA);
    let e = d.error().unwrap();
    assert_eq!((e.code, e.kind.as_str()), (1900, "plugin_panic"));
    assert!(e.message.contains("deliberate panic for l"), "{}", e.message);
    // The host survives and the next call works the same.
    assert_eq!(summary(&select(&rules, &w, WA)), "1900/plugin_panic");
    fs::write(&rules, "plugins: [{path: plugins/libmisbehave.so}]\nrules: [phantom_instance, default_instance]\n")
        .unwrap();
    let d = select(&rules, &w, WA);
    assert_eq!(summary(&d), "1901/plugin_invalid_answer");
    assert!(d.error().unwrap().message.contains("#999999"));
    fs::write(&rules, "plugins: [{path: plugins/libmisbehave.so}]\nrules: [selects_disconnected, default_instance]\n")
        .unwrap();
    assert_eq!(summary(&select(&rules, &w, WA)), "1902/instance_disconnected", "never a disconnected selection");
}

#[test]
fn a_panic_in_a_plugin_never_reaches_the_cli_user() {
    let (dir, rules) = setup(&["misbehave"], "plugins: [{path: plugins/libmisbehave.so}]\nrules: [always_panics]\n");
    let out =
        run(&["select", "--rules", s(&rules), "--world", s(&dir.path().join("world.yaml"))], &format!("{WA}\n{WA}\n"));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.contains(r#""code":1900"#)).count(), 2, "{stdout}");
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

const NO_SYMBOL: &str = "int helper(void) { return 42; }\n";
const HEADER: &str = "struct header { unsigned long long magic; unsigned short major, minor; const void *plugin; };\n";

fn crafted(magic: &str, major: u16) -> String {
    format!("{HEADER}static const struct header h = {{ {magic}ULL, {major}, 0, 0 }};\nconst struct header *switchboard_plugin_entry(void) {{ return &h; }}\n")
}

#[test]
fn each_load_error_names_the_file_and_what_to_do() {
    let (dir, rules) = setup(&["telegram", "business_hours"], "rules: [any_available]\n");
    let p = dir.path().join("plugins");
    fs::write(p.join("notes.so"), "this is a text file, not a library").unwrap();
    c_library(&p, "nosymbol", NO_SYMBOL);
    c_library(&p, "badmagic", &crafted("0x1122334455667788", 1));
    c_library(&p, "future", &crafted("0x3147554c50425753", 2));
    fs::copy(plugin("telegram"), p.join("libtelegram_copy.so")).unwrap();
    fs::copy(plugin("business_hours"), p.join("libbusiness_hours_copy.so")).unwrap();
    let cases = [
        ("plugins/missing.so", "no such file; plugin paths are relative to the rules file"),
        ("plugins/notes.so", "is not a shared library (no ELF header)"),
        ("plugins/libnosymbol.so", "has no `switchboard_plugin_entry` symbol"),
        ("plugins/libbadmagic.so", "wrong magic number 0x1122334455667788"),
        (
            "plugins/libfuture.so",
            "speaks plugin ABI 2.0 but this Switchboard speaks 1.0 to 1.1; rebuild the plugin against switchboard-plugin-sdk",
        ),
    ];
    for (path, want) in cases {
        fs::write(&rules, format!("plugins:\n  - path: {path}\nrules: [any_available]\n")).unwrap();
        let e = load_error(&rules);
        assert!(
            e.contains("rules.yaml:2:") && e.contains(&format!("plugin `{path}`")) && e.contains(want),
            "{path}: {e}"
        );
    }
    // Two libraries claiming the same channel code or rule id: both named.
    fs::write(
        &rules,
        "plugins:\n  - path: plugins/libtelegram.so\n  - path: plugins/libtelegram_copy.so\nrules: [any_available]\n",
    )
    .unwrap();
    let e = load_error(&rules);
    assert!(
        e.contains("rules.yaml:3:")
            && e.contains("libtelegram_copy.so")
            && e.contains("clashes with channel `telegram` (code `TG`) of plugin")
            && e.contains("libtelegram.so"),
        "{e}"
    );
    fs::write(&rules, "plugins:\n  - path: plugins/libbusiness_hours.so\n  - path: plugins/libbusiness_hours_copy.so\nrules: [any_available]\n").unwrap();
    let e = load_error(&rules);
    assert!(e.contains("rule `business_hours` from plugin") && e.contains("is already registered by plugin"), "{e}");
}

#[test]
fn the_same_plugin_listed_twice_is_named_with_both_lines() {
    let (_dir, rules) = setup(
        &["telegram", "business_hours"],
        "plugins:\n  - path: plugins/libtelegram.so\n  - path: plugins/libbusiness_hours.so\n  - path: plugins/libtelegram.so\nrules: [any_available]\n",
    );
    let e = load_error(&rules);
    assert!(
        e.contains("rules.yaml:4:")
            && e.contains(
                "plugin `plugins/libtelegram.so` is listed twice: the entry at line 2 already lists it (plugin "
            )
            && e.contains("remove one of the two entries"),
        "{e}"
    );
    assert!(!e.contains("already registered"), "{e}");
    // Written another way, the same file is still the same plugin.
    fs::write(
        &rules,
        "plugins:\n  - {path: plugins/libtelegram.so}\n  - {path: ./plugins/libtelegram.so}\nrules: [any_available]\n",
    )
    .unwrap();
    let e = load_error(&rules);
    assert!(
        e.contains("rules.yaml:3:")
            && e.contains("plugin `./plugins/libtelegram.so` is listed twice: the entry at line 2 already lists it as `plugins/libtelegram.so`"),
        "{e}"
    );
}

#[test]
fn sha256_pins_and_world_writable_files() {
    use sha2_hex::sha256_hex;
    let (_dir, rules) = setup(&["telegram"], "rules: [any_available]\n");
    let lib = rules.parent().unwrap().join("plugins/libtelegram.so");
    let good = sha256_hex(&fs::read(&lib).unwrap());
    fs::write(
        &rules,
        format!("plugins:\n  - path: plugins/libtelegram.so\n    sha256: {good}\nrules: [any_available]\n"),
    )
    .unwrap();
    assert!(switchboard::load_rules(&rules, &registry()).is_ok());
    let bad = "0".repeat(64);
    fs::write(
        &rules,
        format!("plugins:\n  - path: plugins/libtelegram.so\n    sha256: {bad}\nrules: [any_available]\n"),
    )
    .unwrap();
    let e = load_error(&rules);
    assert!(e.contains(&format!("sha256 mismatch: the file's is {good} but rules.yaml pins {bad}")), "{e}");
    // The message names the rules file as it is called.
    let routing = rules.with_file_name("routing.yaml");
    fs::copy(&rules, &routing).unwrap();
    let e = load_error(&routing);
    assert!(e.contains(&format!("the file's is {good} but routing.yaml pins {bad}")), "{e}");
    assert!(!e.contains("rules.yaml"), "{e}");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(&rules, "plugins: [{path: plugins/libtelegram.so}]\nrules: [any_available]\n").unwrap();
    assert!(load_error(&rules).contains("is world-writable (mode 777)"));
}

/// A tiny SHA-256 through the system's `sha256sum`, so the test does not
/// share the loader's implementation.
mod sha2_hex {
    pub fn sha256_hex(bytes: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
    }
}

#[test]
fn check_and_rules_commands_show_plugins() {
    let (dir, rules) = setup(&["business_hours", "telegram"], "plugins:\n  - path: plugins/libbusiness_hours.so\n  - path: plugins/libtelegram.so\nrules:\n  - rule: business_hours\n    after_hours_instance: 1\n  - any_available\n");
    let out = run(&["rules", "--rules", s(&rules)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let bh = listing.lines().find(|l| l.trim_start().starts_with("business_hours")).unwrap();
    assert!(bh.contains("code 1001") && bh.contains("plugin ") && bh.contains("libbusiness_hours.so"), "{bh}");
    let tg = listing.lines().find(|l| l.trim_start().starts_with("telegram")).unwrap();
    assert!(tg.contains("code TG") && tg.contains("{TG#N} {TEMP-TG#N}") && tg.contains("libtelegram.so"), "{tg}");
    assert!(listing.contains("option after_hours_instance: integer"));
    // The chains of plugin channels, and each plugin's name and version.
    let chains = &listing[listing.find("CHAINS").unwrap()..];
    assert!(chains.contains("  telegram:\n    1. business_hours"), "{chains}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(listing.contains(&format!("  telegram {version}  plugins/libtelegram.so")), "{listing}");
    let json = run(&["rules", "--format", "json", "--rules", s(&rules)], "");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["plugins"][1]["name"], "telegram");
    assert_eq!(json["plugins"][1]["version"], version);
    assert_eq!(json["order"]["telegram"][0], "business_hours");
    let out = run(&["check", "--rules", s(&rules), "--world", s(&dir.path().join("world.yaml"))], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    fs::write(&rules, "plugins:\n  - path: plugins/nothing.so\nrules: [any_available]\n").unwrap();
    let out = run(&["check", "--rules", s(&rules)], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("rules.yaml:2:") && text(&out.stderr).contains("no such file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hot_reload_adds_a_plugin_and_a_failed_load_keeps_the_last_good_plan() {
    let (dir, rules) = setup(&["business_hours"], "rules: [default_instance]\n");
    let live = Live::open(registry(), &rules, Some(dir.path().join("world.yaml"))).unwrap();
    assert_eq!(summary(&live.select(&request(WA))), "wa-4");
    let whatsapp = live.status().order.into_iter().find(|(c, _)| c == "whatsapp").unwrap().1;
    assert_eq!(whatsapp, ["default_instance"], "no plugin rule before the plugin is listed");
    fs::write(&rules, "plugins: [{path: plugins/libbusiness_hours.so}]\nrules: [{rule: business_hours, days: [], after_hours_instance: 1}, default_instance]\n").unwrap();
    assert_eq!(live.reload(), ReloadEvent::Reloaded { generation: 2 });
    assert_eq!(summary(&live.select(&request(WA))), "wa-1");
    let whatsapp = live.status().order.into_iter().find(|(c, _)| c == "whatsapp").unwrap().1;
    assert_eq!(whatsapp, ["business_hours", "default_instance"]);
    fs::write(&rules, "plugins: [{path: plugins/gone.so}]\nrules: [default_instance]\n").unwrap();
    assert!(matches!(live.reload(), ReloadEvent::Failed { generation: 2, .. }));
    assert_eq!(summary(&live.select(&request(WA))), "wa-1", "the last good plan, plugin included, stays");
    // A reload that drops the plugin no longer uses it (the library stays loaded).
    fs::write(&rules, "rules: [default_instance]\n").unwrap();
    assert_eq!(live.reload(), ReloadEvent::Reloaded { generation: 3 });
    assert_eq!(summary(&live.select(&request(WA))), "wa-4");
}

#[test]
fn reload_status_lists_the_chains_of_plugin_channels() {
    let (dir, rules) =
        setup(&["telegram"], "plugins: [{path: plugins/libtelegram.so}]\nrules: [manual_override, any_available]\n");
    let live = Live::open(registry(), &rules, Some(dir.path().join("world.yaml"))).unwrap();
    let telegram = live.status().order.into_iter().find(|(c, _)| c == "telegram").map(|(_, order)| order);
    assert_eq!(telegram, Some(vec!["manual_override".to_owned(), "any_available".to_owned()]));
}

/// A world for the C example: #1 disconnected, #2 the connected default,
/// #3 connected; `shut` has only disconnected instances.
const C_WORLD: &str = "locations:
  - id: l
    instances:
      - {id: wa-1, channel: whatsapp, index: 1, phone: '+1 555 0001', connected: false}
      - {id: wa-2, channel: whatsapp, index: 2, phone: '+1 555 0002', connected: true, default: true}
      - {id: wa-3, channel: whatsapp, index: 3, phone: '+1 555 0003', connected: true}
      - {id: sms-1, channel: sms, index: 1, phone: '+1 555 0101', connected: true}
  - id: shut
    instances:
      - {id: off-1, channel: whatsapp, index: 1, phone: '+1 555 0201', connected: false}
      - {id: off-2, channel: whatsapp, index: 2, phone: '+1 555 0202', connected: false, default: true}
";

#[test]
fn the_c_example_plugin_built_with_cc_decides() {
    let (dir, rules) = setup(&[], "rules: [any_available]\n");
    fs::copy(c_example_plugin(), dir.path().join("plugins/libfirst_connected_c.so")).unwrap();
    let w = dir.path().join("world.yaml");
    fs::write(&w, C_WORLD).unwrap();
    let listed =
        "plugins:\n  - path: plugins/libfirst_connected_c.so\nrules:\n  - first_connected_c\n  - default_instance\n";
    fs::write(&rules, listed).unwrap();
    // The lowest-indexed connected instance: #2 (#1 is disconnected).
    let d = select(&rules, &w, WA);
    assert_eq!((summary(&d), d.rule), ("wa-2".to_owned(), Some("first_connected_c")));
    // Of the request's channel only.
    let d = select(&rules, &w, r#"{"location":"l","channel":"sms","body":"Hi"}"#);
    assert_eq!((summary(&d), d.rule), ("sms-1".to_owned(), Some("first_connected_c")));
    // No connected instance: no_match, and the chain goes on.
    let d = select(&rules, &w, r#"{"location":"shut","channel":"whatsapp","body":"Hi"}"#);
    assert_eq!(outcomes(&d), ["first_connected_c:no_match", "default_instance:fell_through"]);
    assert_eq!(summary(&d), "106/no_instance_available");
    // skip_default: never the default, so #3.
    fs::write(
        &rules,
        listed.replace("  - first_connected_c\n", "  - rule: first_connected_c\n    skip_default: true\n"),
    )
    .unwrap();
    let d = select(&rules, &w, WA);
    assert_eq!((summary(&d), d.rule), ("wa-3".to_owned(), Some("first_connected_c")));
    // skip_default: false is the default's behaviour.
    fs::write(
        &rules,
        listed.replace("  - first_connected_c\n", "  - rule: first_connected_c\n    skip_default: false\n"),
    )
    .unwrap();
    assert_eq!(summary(&select(&rules, &w, WA)), "wa-2");
    // Its option is checked like any other, with line and column.
    fs::write(
        &rules,
        listed.replace("  - first_connected_c\n", "  - rule: first_connected_c\n    skip_defualt: true\n"),
    )
    .unwrap();
    let e = load_error(&rules);
    assert!(e.contains("rules.yaml:5:") && e.contains("did you mean `skip_default`?"), "{e}");
    // And through the binary.
    fs::write(&rules, listed).unwrap();
    let out = run(&["select", "--rules", s(&rules), "--world", s(&w)], &format!("{WA}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""rule":"first_connected_c""#), "{}", text(&out.stdout));
    let out = run(&["rules", "--rules", s(&rules)], "");
    let listing = text(&out.stdout);
    assert!(listing.contains("first_connected_c") && listing.contains("code 1101"), "{listing}");
}

/// A 1.1 plugin in C with one rule, `broken`, whose `build` and
/// `evaluate` are the given expressions (`NULL` or the functions); its
/// `free` is NULL, and its plugin descriptor's `struct_size` is `size`.
fn c_rule(build: &str, evaluate: &str, size: &str) -> String {
    format!(
        r#"#include "switchboard_plugin.h"
static void *build(const void *u, const SbOptionValue *o, size_t n, void *s, SbSinkFn w) {{ (void)u; (void)o; (void)n; (void)s; (void)w; return (void *)1; }}
static uint32_t evaluate(const void *r, const SbContext *cx, SbAnswer *a) {{ (void)r; (void)cx; a->outcome = SB_OUTCOME_NO_MATCH; return SB_STATUS_OK; }}
static const SbRule rules[] = {{ {{ sizeof(SbRule), SB_STR("broken"), SB_STR("broken"), 1500, SB_ON_UNAVAILABLE_NONE, NULL, 0, NULL, {build}, {evaluate}, NULL }} }};
static const SbPlugin plugin = {{ {size}, SB_STR("broken"), SB_STR("0"), rules, 1, NULL, 0 }};
static const SbHeader header = {{ SB_MAGIC, SB_ABI_MAJOR, SB_ABI_MINOR, &plugin }};
const SbHeader *switchboard_plugin_entry(void) {{ (void)build; (void)evaluate; return &header; }}
"#
    )
}

#[test]
fn a_c_plugin_with_a_null_required_function_is_refused_at_its_line() {
    let (dir, rules) = setup(&[], "rules: [any_available]\n");
    let p = dir.path().join("plugins");
    c_library(&p, "nobuild", &c_rule("NULL", "evaluate", "sizeof(SbPlugin)"));
    c_library(&p, "noevaluate", &c_rule("build", "NULL", "sizeof(SbPlugin)"));
    c_library(&p, "nosize", &c_rule("build", "evaluate", "0"));
    let cases = [
        (
            "plugins/libnobuild.so",
            "rule `broken`: its `build` function pointer is NULL; every rule needs `build` and `evaluate`",
        ),
        ("plugins/libnoevaluate.so", "rule `broken`: its `evaluate` function pointer is NULL"),
        ("plugins/libnosize.so", "its plugin descriptor says `struct_size` 0, but ABI 1.1 needs at least"),
    ];
    for (path, want) in cases {
        fs::write(&rules, format!("version: 1\nplugins:\n  - path: {path}\nrules: [any_available]\n")).unwrap();
        let e = load_error(&rules);
        assert!(
            e.contains("rules.yaml:3:") && e.contains(&format!("plugin `{path}`")) && e.contains(want),
            "{path}: {e}"
        );
    }
    // `free` is optional: the same rule with both functions loads and decides.
    c_library(&p, "nofree", &c_rule("build", "evaluate", "sizeof(SbPlugin)"));
    fs::write(&rules, "plugins: [{path: plugins/libnofree.so}]\nrules: [broken, default_instance]\n").unwrap();
    let d = select(&rules, &dir.path().join("world.yaml"), WA);
    assert_eq!(outcomes(&d), ["broken:no_match", "default_instance:selected"]);
}

/// A plugin as ABI 1.0 laid it out (no `struct_size`, builders without
/// `user_data`), written by hand: rule `legacy_last` selects the
/// highest-indexed connected instance through the 1.0 context's callbacks,
/// and answers `instance_disconnected` through its sinks when there is none.
const ABI_1_0_PLUGIN: &str = r#"
#include <stddef.h>
#include <stdint.h>
typedef struct { const uint8_t *ptr; size_t len; } Str;
#define S(x) { (const uint8_t *)(x), sizeof(x) - 1 }
typedef void (*Sink)(void *, Str);
typedef struct { Str id; uint64_t index; Str phone, digits; uint8_t connected, is_default; size_t users; } Instance;
typedef struct { uint8_t outcome; uint64_t index; } Answer;
typedef struct {
    Str location, channel, body; uint8_t has_contact; Str contact_id; const Str *tags; size_t tag_count;
    uint8_t has_assigned_user; Str assigned_user; const void *patterns; size_t pattern_count; const void *host;
    size_t (*instance_count)(const void *); uint8_t (*instance_at)(const void *, size_t, Instance *);
    size_t (*find_index)(const void *, uint64_t); uint8_t (*user_at)(const void *, size_t, size_t, Str *);
    void *kind_sink, *message_sink; Sink write;
} Context;
typedef struct {
    Str id, summary; uint32_t code; uint8_t on_unavailable; const void *options; size_t option_count;
    void *(*build)(const void *, size_t, void *, Sink);
    uint32_t (*evaluate)(const void *, const Context *, Answer *);
    void (*free)(void *);
} Rule;
typedef struct { Str name, version; const Rule *rules; size_t rule_count; const void *channels; size_t channel_count; } Plugin;
typedef struct { uint64_t magic; uint16_t major, minor; const Plugin *plugin; } Header;

static int object;
static void *build(const void *o, size_t n, void *s, Sink w) { (void)o; (void)n; (void)s; (void)w; return &object; }
static uint32_t evaluate(const void *r, const Context *cx, Answer *a) {
    size_t n = cx->instance_count(cx->host), p;
    Str kind = S("instance_disconnected"), message = S("every legacy instance is disconnected");
    (void)r;
    for (p = n; p > 0; p--) {
        Instance i;
        if (cx->instance_at(cx->host, p - 1, &i) && i.connected) { a->outcome = 0; a->index = i.index; return 0; }
    }
    cx->write(cx->kind_sink, kind);
    cx->write(cx->message_sink, message);
    a->outcome = 2;
    return 0;
}
static void release(void *r) { (void)r; }
static const Rule rules[] = { { S("legacy_last"), S("the highest connected"), 1200, 1, NULL, 0, build, evaluate, release } };
static const Plugin plugin = { S("legacy"), S("1.0.0"), rules, 1, NULL, 0 };
static const Header header = { 0x3147554C50425753ULL, 1, 0, &plugin };
const Header *switchboard_plugin_entry(void) { return &header; }
"#;

#[test]
fn a_plugin_built_against_abi_1_0_still_loads_and_decides() {
    let (dir, rules) = setup(&[], "plugins: [{path: plugins/liblegacy.so}]\nrules: [legacy_last]\n");
    c_library(&dir.path().join("plugins"), "legacy", ABI_1_0_PLUGIN);
    let w = dir.path().join("world.yaml");
    let d = select(&rules, &w, WA);
    assert_eq!((summary(&d), d.rule), ("wa-4".to_owned(), Some("legacy_last")));
    fs::write(&w, C_WORLD).unwrap();
    let d = select(&rules, &w, r#"{"location":"shut","channel":"whatsapp","body":"Hi"}"#);
    let e = d.error().unwrap();
    assert_eq!(
        (e.code, e.kind.as_str(), e.message.as_str()),
        (1200, "instance_disconnected", "every legacy instance is disconnected")
    );
}

#[test]
fn a_plugin_may_export_more_than_sixteen_rules() {
    let (dir, rules) = setup(&["abi_fixture"], "rules: [any_available]\n");
    let w = dir.path().join("world.yaml");
    for n in 0..20 {
        fs::write(&rules, format!("plugins: [{{path: plugins/libabi_fixture.so}}]\nrules: [nth_{n}]\n")).unwrap();
        let d = select(&rules, &w, WA);
        assert_eq!(summary(&d), format!("{}/nth_{n}", 2000 + n), "rule nth_{n} reaches its own builder");
    }
}

#[test]
fn every_outcome_and_kind_crosses_the_abi_and_back() {
    use switchboard::ErrorKind;
    let (dir, rules) =
        setup(&["abi_fixture"], "plugins: [{path: plugins/libabi_fixture.so}]\nrules: [echo, default_instance]\n");
    let w = dir.path().join("world.yaml");
    let body = |text: &str| format!(r#"{{"location":"l","channel":"whatsapp","body":"{text}"}}"#);
    let d = select(&rules, &w, &body("selected 2"));
    assert_eq!((summary(&d), outcomes(&d)), ("wa-2".to_owned(), vec!["echo:selected".to_owned()]));
    let d = select(&rules, &w, &body("no_match"));
    assert_eq!(outcomes(&d), ["echo:no_match", "default_instance:selected"]);
    let custom = ErrorKind::Custom("closed_for_lunch".into());
    let kinds: Vec<(String, ErrorKind)> = ErrorKind::BUILTIN
        .iter()
        .chain([&custom])
        .map(|k| (k.as_str().to_owned(), k.clone()))
        .chain([("-".to_owned(), ErrorKind::Custom("plugin_error".into()))])
        .collect();
    for (name, kind) in &kinds {
        for verb in ["failed", "unusable"] {
            let d = select(&rules, &w, &body(&format!("{verb} {name} because {verb}")));
            let e = d.error().unwrap_or_else(|| panic!("{verb} {name}: {}", d.to_json()));
            assert_eq!((e.code, &e.kind, e.message.as_str()), (1950, kind, format!("because {verb}").as_str()));
            assert_eq!(outcomes(&d), ["echo:failed"], "{verb} {name}");
        }
    }
    // Unusable with `on_unavailable: skip` falls through, whatever the kind.
    fs::write(
        &rules,
        "plugins: [{path: plugins/libabi_fixture.so}]\nrules: [{rule: echo, on_unavailable: skip}, default_instance]\n",
    )
    .unwrap();
    for (name, _) in &kinds {
        let d = select(&rules, &w, &body(&format!("unusable {name} gone")));
        assert_eq!(outcomes(&d), ["echo:fell_through", "default_instance:selected"], "{name}");
        let d = select(&rules, &w, &body(&format!("failed {name} gone")));
        assert_eq!(outcomes(&d), ["echo:failed"], "failed ignores on_unavailable: {name}");
    }
}

/// The fenced block of `lang` that follows `marker` in the plugins page.
fn readme_block(readme: &str, marker: &str, lang: &str) -> String {
    let from = readme.find(marker).unwrap_or_else(|| panic!("docs/plugins.md has no `{marker}`"));
    let open = format!("```{lang}\n");
    let start = from + readme[from..].find(&open).unwrap() + open.len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_owned()
}

#[test]
fn the_documented_plugin_example_builds_outside_the_repository() {
    let readme = fs::read_to_string(repo_file("docs/plugins.md")).unwrap();
    let manifest = readme_block(&readme, "## Writing a plugin in Rust\n", "toml");
    let source = readme_block(&readme, "## Writing a plugin in Rust\n", "rust");
    let written = r#"path = "/src/switchboard/plugins/sdk""#;
    assert!(manifest.contains(written), "the docs' SDK line changed:\n{manifest}");
    let sdk = repo_file("plugins/sdk").canonicalize().unwrap();
    let crate_dir = tempfile::tempdir().unwrap();
    fs::write(crate_dir.path().join("Cargo.toml"), manifest.replace(written, &format!("path = {:?}", s(&sdk))))
        .unwrap();
    fs::create_dir(crate_dir.path().join("src")).unwrap();
    fs::write(crate_dir.path().join("src/lib.rs"), source).unwrap();
    let target = repo_file("target/plugin-tests/readme");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "--offline"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(crate_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "the documented plugin does not build:\n{}", text(&out.stderr));
    let (dir, rules) = setup(
        &[],
        "plugins: [{path: plugins/libfirst_connected.so}]\nrules: [{rule: first_connected, skip_default: true}]\n",
    );
    fs::copy(target.join("debug/libfirst_connected.so"), dir.path().join("plugins/libfirst_connected.so")).unwrap();
    fs::write(dir.path().join("world.yaml"), C_WORLD).unwrap();
    let d = select(&rules, &dir.path().join("world.yaml"), WA);
    assert_eq!((summary(&d), d.rule), ("wa-3".to_owned(), Some("first_connected")));
}

/// A plugin from a later minor version, as ABI 1.1 lets it grow: its rule
/// descriptors carry a field this host does not know, so their
/// `struct_size` (the array's stride) is larger than the host's `SbRule`.
/// (It declares minor 1, since this host refuses minors it does not speak.)
const GROWN_RULES: &str = r#"#include "switchboard_plugin.h"
struct grown_rule { SbRule known; uint64_t added_later; };
static void *build(const void *u, const SbOptionValue *o, size_t n, void *s, SbSinkFn w) { (void)o; (void)n; (void)s; (void)w; return (void *)u; }
static uint32_t evaluate(const void *r, const SbContext *cx, SbAnswer *a) { (void)cx; a->outcome = SB_OUTCOME_SELECTED; a->instance_index = *(const uint64_t *)r; return SB_STATUS_OK; }
static const uint64_t one = 1, two = 2;
static const struct grown_rule rules[] = {
    { { sizeof(struct grown_rule), SB_STR("pick_one"), SB_STR("picks #1"), 1300, SB_ON_UNAVAILABLE_NONE, NULL, 0, &one, build, evaluate, NULL }, 7 },
    { { sizeof(struct grown_rule), SB_STR("pick_two"), SB_STR("picks #2"), 1301, SB_ON_UNAVAILABLE_NONE, NULL, 0, &two, build, evaluate, NULL }, 7 },
};
static const SbPlugin plugin = { sizeof(SbPlugin), SB_STR("grown"), SB_STR("0"), &rules[0].known, 2, NULL, 0 };
static const SbHeader header = { SB_MAGIC, SB_ABI_MAJOR, SB_ABI_MINOR, &plugin };
const SbHeader *switchboard_plugin_entry(void) { return &header; }
"#;

#[test]
fn descriptors_grown_by_a_later_minor_version_are_read_by_their_struct_size() {
    let (dir, rules) = setup(&[], "plugins: [{path: plugins/libgrown.so}]\nrules: [pick_two]\n");
    c_library(&dir.path().join("plugins"), "grown", GROWN_RULES);
    let w = dir.path().join("world.yaml");
    // The second rule is found at the plugin's stride, and `user_data`
    // reaches each rule's own builder.
    assert_eq!(summary(&select(&rules, &w, WA)), "wa-2");
    fs::write(&rules, "plugins: [{path: plugins/libgrown.so}]\nrules: [pick_one]\n").unwrap();
    assert_eq!(summary(&select(&rules, &w, WA)), "wa-1");
}
