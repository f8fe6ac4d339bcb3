//! Helpers for embedding the engine in another language (the Node.js and
//! Python bindings): located load errors, reload events and one decision
//! per request text, as the JSON values every front end shares. Pure
//! functions of the library's values; no rule and no decision logic.

use serde_json::{json, Value};

use crate::{decide_text, report, Intent, Live, LoadErrors, ReloadEvent};

/// Every problem of a failed load as a JSON array of
/// `{"file", "line", "column", "message"}` (`line`/`column` are `null` when
/// the problem has no position, e.g. a missing file), in file order: the
/// `diagnostics` of the bindings' errors and the `errors` of `POST /v1/reload`.
pub fn diagnostics_json(errors: &LoadErrors) -> Value {
    Value::Array(
        errors
            .diagnostics()
            .map(|(file, d)| json!({"file": file, "line": d.line, "column": d.column, "message": d.message}))
            .collect(),
    )
}

/// A reload event as JSON: `{"type": "reloaded" | "unchanged" | "failed",
/// "generation": N}`, plus `"error"` (the located messages) for `failed`.
pub fn event_json(event: &ReloadEvent) -> Value {
    match event {
        ReloadEvent::Reloaded { generation } => json!({"type": "reloaded", "generation": generation}),
        ReloadEvent::Unchanged { generation } => json!({"type": "unchanged", "generation": generation}),
        ReloadEvent::Failed { generation, error } => {
            json!({"type": "failed", "generation": generation, "error": error})
        }
    }
}

/// The decision (JSON text, docs/world.md) for one request text, on the
/// configuration in force: the code-100 decision when the text cannot be
/// read, exactly as one line of `switchboard select`.
pub fn select_text(live: &Live, request: &str) -> String {
    decide_text(request, |r| live.decide(r, Intent::Select)).to_json()
}

/// The decisions (JSON texts) for several request texts, in order, all on
/// one configuration (a reload in between changes none of them); each as
/// [`select_text`] gives it. The bindings' batch calls.
pub fn select_many_text<'r>(live: &Live, requests: impl IntoIterator<Item = &'r str>) -> Vec<String> {
    let snapshot = live.snapshot();
    requests.into_iter().map(|text| decide_text(text, |r| snapshot.decide(r, Intent::Select)).to_json()).collect()
}

/// The explain table for one request text, as `switchboard explain` prints
/// it (a request that cannot be read gets the table of its code-100
/// decision).
pub fn explain_text(live: &Live, request: &str) -> String {
    let snapshot = live.snapshot();
    report::explain(&snapshot.plan, &snapshot.world, request.as_bytes()).table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_type_and_generation() {
        assert_eq!(event_json(&ReloadEvent::Reloaded { generation: 2 }), json!({"type": "reloaded", "generation": 2}));
        let failed = event_json(&ReloadEvent::Failed { generation: 1, error: "r.yaml:1:1: bad".into() });
        assert_eq!(failed, json!({"type": "failed", "generation": 1, "error": "r.yaml:1:1: bad"}));
    }

    #[test]
    fn diagnostics_are_located_and_unlocated_ones_are_null() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, "rules:\n  - manul_override\n").unwrap();
        let errors = Live::open(crate::registry().unwrap(), &rules, None::<&str>).unwrap_err();
        let d = diagnostics_json(&errors);
        assert_eq!(d[0]["file"], json!(rules.display().to_string()));
        assert_eq!((d[0]["line"].clone(), d[0]["column"].clone()), (json!(2), json!(5)));
        assert!(d[0]["message"].as_str().unwrap().contains("manual_override"), "{d}");
        let missing = Live::open(crate::registry().unwrap(), dir.path().join("nope.yaml"), None::<&str>).unwrap_err();
        assert_eq!(diagnostics_json(&missing)[0]["line"], Value::Null);
    }

    #[test]
    fn select_text_answers_unreadable_text_with_code_100() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, "rules: [any_available]\n").unwrap();
        let live = Live::open(crate::registry().unwrap(), &rules, None::<&str>).unwrap();
        let d: Value = serde_json::from_str(&select_text(&live, "not json")).unwrap();
        assert_eq!((d["ok"].clone(), d["error"]["code"].clone()), (json!(false), json!(100)));
        assert!(explain_text(&live, "not json").contains("error 100"));
    }
}
