//! Scenario tests (docs/operator-tools.md, `switchboard test`): YAML files of named
//! requests and the decision each must get, run against a rules file and a
//! world, with coverage of the rules that decided no case.
//!
//! ```no_run
//! use switchboard::scenario::{Sources, Suite};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = switchboard::registry()?;
//! let suite = Suite::load(&["tests/scenarios/shop.yaml".into()], &Sources::default(), &registry)
//!     .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))?;
//! let report = suite.run(None);
//! for case in &report.cases {
//!     print!("{}", case.to_text());
//! }
//! println!("{}", report.closing_line());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::{Decision, FileErrors, Plan, Registry, Request, World};

/// What one case expects; each key is optional, and a case must give one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// The id of the selected instance.
    pub instance: Option<String>,
    /// The deciding rule; `Some(None)` is `rule: null` (no rule decided:
    /// the chain ran out, or the request could not be used).
    pub rule: Option<Option<String>>,
    /// The delivered body.
    pub body: Option<String>,
    /// The error code.
    pub error: Option<u32>,
    /// The error kind.
    pub kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    instance: Option<String>,
    #[serde(default, deserialize_with = "present")]
    rule: Option<Option<String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    error: Option<u32>,
    #[serde(default)]
    kind: Option<String>,
}

/// `Some(value)` for a key that is present, `null` included.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expect, D::Error> {
        use serde::de::Error;
        let raw = RawExpect::deserialize(d)?;
        let expect =
            Expect { instance: raw.instance, rule: raw.rule, body: raw.body, error: raw.error, kind: raw.kind };
        if expect == Expect::default() {
            return Err(D::Error::custom(
                "`expect` is empty; give at least one of `instance`, `rule`, `body`, `error`, `kind`",
            ));
        }
        if expect.instance.is_some() && (expect.error.is_some() || expect.kind.is_some()) {
            return Err(D::Error::custom(
                "`expect` names an `instance` and an `error`/`kind`; a decision has one or the other",
            ));
        }
        Ok(expect)
    }
}

impl Expect {
    /// The names of the keys that `decision` does not satisfy, in key order.
    pub fn mismatches(&self, decision: &Decision) -> Vec<&'static str> {
        let mut out = Vec::new();
        if let Some(want) = &self.instance {
            if decision.instance().map(|i| i.id()) != Some(want.as_str()) {
                out.push("instance");
            }
        }
        if let Some(want) = &self.rule {
            if decision.rule != want.as_deref() {
                out.push("rule");
            }
        }
        if let Some(want) = &self.body {
            if decision.body.as_deref() != Some(want.as_str()) {
                out.push("body");
            }
        }
        if let Some(want) = self.error {
            if decision.error().map(|e| e.code) != Some(want) {
                out.push("error");
            }
        }
        if let Some(want) = &self.kind {
            if decision.error().map(|e| e.kind.as_str()) != Some(want.as_str()) {
                out.push("kind");
            }
        }
        out
    }

    /// The expectation as JSON, with only the keys given.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        if let Some(v) = &self.instance {
            out.insert("instance".into(), json!(v));
        }
        if let Some(v) = &self.rule {
            out.insert("rule".into(), json!(v));
        }
        if let Some(v) = &self.body {
            out.insert("body".into(), json!(v));
        }
        if let Some(v) = self.error {
            out.insert("error".into(), json!(v));
        }
        if let Some(v) = &self.kind {
            out.insert("kind".into(), json!(v));
        }
        Value::Object(out)
    }
}

/// What a decision shows for the five `expect` keys (`null` where it has
/// none: no instance on an error, no error on a selection).
pub fn observed(decision: &Decision) -> Value {
    json!({
        "instance": decision.instance().map(|i| i.id()),
        "rule": decision.rule,
        "body": decision.body,
        "error": decision.error().map(|e| e.code),
        "kind": decision.error().map(|e| e.kind.as_str()),
    })
}

/// The `expect` keys of `values` that `keep` keeps, as a JSON object text
/// in key order (`instance`, `rule`, `body`, `error`, `kind`).
fn ordered(values: &Value, keep: impl Fn(&str, &Value) -> bool) -> String {
    let fields: Vec<String> = KEYS
        .iter()
        .filter_map(|k| values.get(*k).filter(|v| keep(k, v)).map(|v| format!("{}:{v}", json!(k))))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The `expect` keys, in the order they are shown.
const KEYS: [&str; 5] = ["instance", "rule", "body", "error", "kind"];

/// One case of a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Its name, shown on its result line.
    pub name: String,
    /// The request, as JSON text (read like a `select` request: one that
    /// cannot be used gets its code-100 decision).
    pub request: String,
    /// The decision it must get.
    pub expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    request: serde_json::Value,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    world: Option<String>,
    #[serde(default)]
    events: Vec<serde_json::Value>,
    cases: Vec<RawCase>,
}

/// A scenario file, read: its own rules and world (already resolved
/// relative to the file) and its cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The file as named.
    pub file: PathBuf,
    /// `rules:`, relative to the file's directory.
    pub rules: Option<PathBuf>,
    /// `world:`, relative to the file's directory.
    pub world: Option<PathBuf>,
    /// `events:`, applied in order before the cases (docs/live-state.md),
    /// as JSON objects.
    pub events: Vec<serde_json::Value>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

impl Scenario {
    /// Reads a scenario file; a problem is located `file:line:column`.
    pub fn read(path: &Path) -> Result<Scenario, FileErrors> {
        let text = crate::read_text(path)?;
        Scenario::parse(&text, path)
    }

    /// Parses the text of a scenario file found at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, FileErrors> {
        let name = path.display().to_string();
        if text.trim().is_empty() {
            return Err(FileErrors::whole_file(
                name,
                "the scenario file is empty; expected `cases:` with a list of cases",
            ));
        }
        let raw: RawScenario = serde_yaml::from_str(text).map_err(|e| FileErrors {
            file: name.clone(),
            diagnostics: vec![switchboard_files::yaml_diagnostic(&e)],
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let cases = raw
            .cases
            .into_iter()
            .map(|c| Case { name: c.name, request: c.request.to_string(), expect: c.expect })
            .collect();
        Ok(Scenario {
            file: path.to_owned(),
            rules: raw.rules.map(|r| base.join(r)),
            world: raw.world.map(|w| base.join(w)),
            events: raw.events,
            cases,
        })
    }
}

/// The rules and world files to use where a scenario names none (the
/// command line's `--rules` and `--world`).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--rules`.
    pub rules: Option<PathBuf>,
    /// `--world`.
    pub world: Option<PathBuf>,
}

/// Scenario files loaded with their compiled rules and worlds, ready to run.
pub struct Suite {
    files: Vec<(Scenario, Arc<Plan>, Arc<World>)>,
}

impl Suite {
    /// Reads every scenario file and the rules and world each uses (a file's
    /// own `rules:`/`world:` first, else `defaults`; no world means requests
    /// carry their `instances`). Every file that cannot be read is reported,
    /// each problem located.
    pub fn load(paths: &[PathBuf], defaults: &Sources, registry: &Arc<Registry>) -> Result<Suite, Vec<FileErrors>> {
        let mut errors = Vec::new();
        let mut plans: HashMap<PathBuf, Option<Arc<Plan>>> = HashMap::new();
        let mut worlds: HashMap<(PathBuf, PathBuf), Option<Arc<World>>> = HashMap::new();
        let mut files = Vec::new();
        for path in paths {
            let scenario = match Scenario::read(path) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let Some(rules) = scenario.rules.clone().or_else(|| defaults.rules.clone()) else {
                errors.push(FileErrors::whole_file(
                    path.display().to_string(),
                    "names no rules file; add `rules: <path relative to this file>` or pass `--rules`",
                ));
                continue;
            };
            let plan = plans
                .entry(rules.clone())
                .or_insert_with(|| match crate::load_rules(&rules, registry) {
                    Ok(plan) => Some(Arc::new(plan)),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                })
                .clone();
            let Some(plan) = plan else { continue };
            let world = match scenario.world.clone().or_else(|| defaults.world.clone()) {
                None => Some(Arc::new(World::empty())),
                Some(w) => worlds
                    .entry((rules, w.clone()))
                    .or_insert_with(|| match crate::load_world(&w, &plan) {
                        Ok(world) => Some(Arc::new(world)),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    })
                    .clone(),
            };
            let Some(world) = world else { continue };
            let plan = match with_events(&scenario, plan, &world) {
                Ok(plan) => plan,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            files.push((scenario, plan, world));
        }
        if errors.is_empty() {
            Ok(Suite { files })
        } else {
            Err(errors)
        }
    }

    /// Runs every case whose name contains `filter` (all without one), in
    /// file order. Nothing is counted against capacity.
    pub fn run(&self, filter: Option<&str>) -> Report {
        let mut cases = Vec::new();
        let mut decided: BTreeSet<(String, String)> = BTreeSet::new();
        let mut channels_run: BTreeSet<String> = BTreeSet::new();
        let mut enabled: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (scenario, plan, world) in &self.files {
            for channel in plan.registry().channel_ids() {
                let list = enabled.entry(channel.to_owned()).or_default();
                for rule in plan.order(channel) {
                    if !list.iter().any(|r| r == rule) {
                        list.push(rule.to_owned());
                    }
                }
            }
            for case in &scenario.cases {
                if filter.is_some_and(|f| !case.name.contains(f)) {
                    continue;
                }
                let (request, decision) = match crate::parse_request(&case.request) {
                    Ok(request) => {
                        let decision = plan.select(world, &request);
                        (Some(request), decision)
                    }
                    Err(decision) => (None, decision),
                };
                if let Some(r) = &request {
                    if let Some(channel) = plan.registry().channel_id(&r.channel) {
                        channels_run.insert(channel.to_owned());
                        if let Some(rule) = decision.rule {
                            decided.insert((channel.to_owned(), rule.to_owned()));
                        }
                    }
                }
                let mismatches = case.expect.mismatches(&decision);
                cases.push(CaseResult {
                    file: scenario.file.clone(),
                    name: case.name.clone(),
                    passed: mismatches.is_empty(),
                    mismatches,
                    expect: case.expect.clone(),
                    request,
                    decision,
                });
            }
        }
        let coverage = enabled
            .into_iter()
            .map(|(channel, rules)| {
                let ran = channels_run.contains(&channel);
                let never = rules.into_iter().filter(|r| !decided.contains(&(channel.clone(), r.clone()))).collect();
                Coverage { channel, ran, never }
            })
            .collect();
        Report { cases, coverage }
    }
}

/// The plan a file's cases run on: `plan` itself, or, when the file has
/// `events:`, a copy with a memory store of its own holding them (so that
/// no other file, nor a store the rules name, sees them). An event that is
/// rejected is an error of the file, naming it (`events[2]: …`).
fn with_events(scenario: &Scenario, plan: Arc<Plan>, world: &World) -> Result<Arc<Plan>, FileErrors> {
    if scenario.events.is_empty() {
        return Ok(plan);
    }
    let plan = Plan::clone(&plan).with_store(Arc::new(switchboard_state::MemoryStore::new()));
    // As JSON Lines, one event a line, through the intake every front end uses.
    let body: String = scenario.events.iter().map(|event| format!("{event}\n")).collect();
    let recorded = crate::live::record_on(&plan, world, &body, switchboard_core::capacity::clock());
    if let Some((line, rejection)) = recorded.rejected.first() {
        return Err(FileErrors::whole_file(
            scenario.file.display().to_string(),
            format!("events[{}]: {}; fix the event or remove it", line - 1, rejection.message),
        ));
    }
    Ok(Arc::new(plan))
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The scenario file it came from.
    pub file: PathBuf,
    /// The case name.
    pub name: String,
    /// Whether the decision met every expected key.
    pub passed: bool,
    /// The keys it did not meet.
    pub mismatches: Vec<&'static str>,
    /// What was expected.
    pub expect: Expect,
    /// The request, when it could be read.
    pub request: Option<Request>,
    /// The decision it got.
    pub decision: Decision,
}

impl CaseResult {
    /// The case as text: `ok <name>`, or `FAILED <name>` followed by the
    /// expected and observed values (for the keys the case expects) and
    /// the explain table, indented.
    pub fn to_text(&self) -> String {
        if self.passed {
            return format!("ok {}\n", self.name);
        }
        // What the decision shows: every key it has, and the expected ones
        // even where it has none (`null`).
        let expected = self.expect.to_json();
        let observed = observed(&self.decision);
        let got = ordered(&observed, |k, v| !v.is_null() || expected.get(k).is_some());
        let expected = ordered(&expected, |_, _| true);
        let mut out = format!("FAILED {}\n", self.name);
        out.push_str(&format!("    file:     {}\n", self.file.display()));
        out.push_str(&format!("    expected: {expected}\n"));
        out.push_str(&format!("    got:      {got}\n"));
        for line in crate::report::explain_table(self.request.as_ref(), &self.decision).lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out
    }

    /// The case as one JSON object: `file`, `name`, `ok`, `status` (`ok` or
    /// `FAILED`, as on the text line), `expected`, `got`
    /// (the five keys as observed), `mismatches`, and the full `decision`
    /// (docs/world.md).
    pub fn to_json(&self) -> Value {
        let decision: Value = serde_json::from_str(&self.decision.to_json()).unwrap_or(Value::Null);
        json!({
            "file": self.file.display().to_string(),
            "name": self.name,
            "ok": self.passed,
            "status": if self.passed { "ok" } else { "FAILED" },
            "expected": self.expect.to_json(),
            "got": observed(&self.decision),
            "mismatches": self.mismatches,
            "decision": decision,
        })
    }
}

/// The enabled rules of one channel that decided no case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The channel id.
    pub channel: String,
    /// Whether any case was sent on this channel.
    pub ran: bool,
    /// Its enabled rules (in any scenario's chain) that decided no case.
    pub never: Vec<String>,
}

/// The results of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every case run, in file order.
    pub cases: Vec<CaseResult>,
    /// Per registered channel (sorted), the rules that decided no case.
    pub coverage: Vec<Coverage>,
}

impl Report {
    /// The number of cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    /// The number of cases that failed.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// `N passed, N failed`.
    pub fn closing_line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// The coverage lines: `rules that decided no case:` and one line per
    /// channel (`  whatsapp: user_assignment, any_available`, or
    /// `  sms: no case on this channel`), or a single line saying that every
    /// enabled rule decided a case.
    pub fn coverage_lines(&self) -> Vec<String> {
        let gaps: Vec<&Coverage> = self.coverage.iter().filter(|c| !c.never.is_empty()).collect();
        if gaps.is_empty() {
            return vec!["every enabled rule decided at least one case".to_owned()];
        }
        let mut out = vec!["rules that decided no case:".to_owned()];
        for c in gaps {
            if c.ran {
                out.push(format!("  {}: {}", c.channel, c.never.join(", ")));
            } else {
                out.push(format!("  {}: no case on this channel ({})", c.channel, c.never.join(", ")));
            }
        }
        out
    }

    /// Coverage as JSON: channel → the rules that decided no case.
    pub fn coverage_json(&self) -> Value {
        let map: serde_json::Map<String, Value> =
            self.coverage.iter().map(|c| (c.channel.clone(), json!(c.never))).collect();
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(yaml: &str) -> Result<Expect, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn rule_null_differs_from_rule_absent() {
        assert_eq!(expect("{rule: null}").unwrap().rule, Some(None));
        assert_eq!(expect("{error: 106}").unwrap().rule, None);
        assert_eq!(expect("{rule: contact_tag}").unwrap().rule, Some(Some("contact_tag".into())));
    }

    #[test]
    fn an_expectation_must_say_something_and_not_contradict_itself() {
        assert!(expect("{}").unwrap_err().contains("`expect` is empty"));
        assert!(expect("{instance: a, error: 101}").unwrap_err().contains("one or the other"));
        assert!(expect("{error: high}").is_err());
    }

    #[test]
    fn mismatches_name_each_unmet_key() {
        let decision =
            Decision::request_error(crate::ErrorKind::UnknownLocation, "no such location", Some("Hi".into()));
        let e = expect("{rule: null, body: Hi, error: 100, kind: unknown_location}").unwrap();
        assert!(e.mismatches(&decision).is_empty());
        let e = expect("{instance: a, rule: default_instance, body: Ho, error: 101, kind: x}");
        assert!(e.is_err());
        let e = expect("{rule: default_instance, body: Ho, error: 101, kind: x}").unwrap();
        assert_eq!(e.mismatches(&decision), ["rule", "body", "error", "kind"]);
        assert_eq!(expect("{instance: a}").unwrap().mismatches(&decision), ["instance"]);
    }

    #[test]
    fn scenario_paths_are_relative_to_the_file() {
        let s = Scenario::parse(
            "rules: ../rules.yaml\ncases: [{name: n, request: {}, expect: {error: 100}}]",
            Path::new("dir/sub/s.yaml"),
        )
        .unwrap();
        assert_eq!(s.rules, Some(PathBuf::from("dir/sub/../rules.yaml")));
        assert_eq!(s.world, None);
        assert_eq!(s.cases[0].request, "{}");
    }
}
