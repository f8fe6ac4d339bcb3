//! Reports shared by every front end (the CLI, the service, the bindings):
//! the explain table, the rules listing and the reload status, as text or
//! JSON. Pure functions of the library's values; nothing here prints.

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{json, Value};
use switchboard_core::{Decision, OptionKind, Plan, Registry, Request, Source};

use crate::ReloadStatus;

/// The explain table of a decision: the request (when it could be read),
/// each rule consulted with its outcome and detail, the decision, and the
/// body delivered (only when an instance was selected; an error sends
/// nothing, and the table says so).
pub fn explain_table(request: Option<&Request>, decision: &Decision) -> String {
    let mut out = String::new();
    if let Some(r) = request {
        let contact = r.contact.as_ref().and_then(|c| c.id.as_deref()).unwrap_or("-");
        let _ = writeln!(out, "request   location {} · channel {} · contact {contact}", r.location, r.channel);
        let _ = writeln!(out, "body      {:?}", r.body);
    }
    if !decision.trace.is_empty() {
        let width = decision.trace.iter().map(|t| t.rule.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out);
        let _ = writeln!(out, "  #  {:width$}  {:12}  detail", "rule", "outcome");
        for (i, t) in decision.trace.iter().enumerate() {
            let row = format!(
                "  {:<2} {:width$}  {:12}  {}",
                i + 1,
                t.rule,
                t.outcome.as_str(),
                t.detail.as_deref().unwrap_or("")
            );
            let _ = writeln!(out, "{}", row.trim_end());
        }
        let _ = writeln!(out);
    }
    match &decision.result {
        Ok(instance) => {
            let by = decision.rule.unwrap_or("-");
            let _ = writeln!(out, "decision  selected {} by {by}", instance.label());
            if let Some(body) = &decision.body {
                let _ = writeln!(out, "delivered {body:?}");
            }
        }
        Err(e) => {
            let by = decision.rule.map_or(String::new(), |r| format!(" raised by {r}"));
            let _ = writeln!(out, "decision  error {} {}{by}", e.code, e.kind);
            let _ = writeln!(out, "          {}", e.message);
            let _ = writeln!(out, "delivered nothing: no instance was selected, so the message is not sent");
        }
    }
    out
}

fn option_kind(kind: &OptionKind) -> Value {
    match kind {
        OptionKind::Choice(c) => json!({"type": "choice", "values": c}),
        OptionKind::Bool => json!({"type": "bool"}),
        OptionKind::Integer => json!({"type": "integer"}),
        OptionKind::String => json!({"type": "string"}),
        OptionKind::StringList => json!({"type": "string_list"}),
    }
}

fn source(source: &Source) -> Value {
    match source {
        Source::Builtin(krate) => json!({"kind": "builtin", "crate": krate}),
        Source::Plugin(path) => json!({"kind": "plugin", "path": path.display().to_string()}),
    }
}

/// The registered rules and channels (plugins included) as JSON, and, with
/// a plan, the configured chain of every channel (`chains`: channel → the
/// entries in priority order, disabled ones included) and the enabled
/// order (`order`: channel → rule ids).
///
/// ```json
/// {"rules":[{"id":"manual_override","code":101,"summary":"…","on_unavailable":"error","options":[…],"source":{…}}],
///  "channels":[{"id":"whatsapp","code":"WA","tag_prefix":"wa:","override":true,"temporary_switch":false,"source":{…}}],
///  "chains":{"whatsapp":[{"rule":"manual_override","enabled":true,"on_unavailable":"error","options":[]}]},
///  "order":{"whatsapp":["manual_override", "…"]}}
/// ```
pub fn rules_json(registry: &Registry, plan: Option<&Plan>) -> Value {
    let registry = plan.map_or(registry, |p| p.registry());
    let rules: Vec<Value> = registry
        .rules()
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "code": r.code,
                "summary": r.summary,
                "on_unavailable": r.on_unavailable.map(|o| o.as_str()),
                "options": r.options.iter().map(|o| {
                    let mut v = option_kind(&o.kind);
                    v["name"] = json!(o.name);
                    v["default"] = json!(o.default);
                    v["doc"] = json!(o.doc);
                    v
                }).collect::<Vec<_>>(),
                "source": source(&r.source),
            })
        })
        .collect();
    let channels: Vec<Value> = registry
        .channels()
        .iter()
        .map(|c| {
            json!({
                "id": c.id(),
                "code": c.code(),
                "tag_prefix": c.tag_prefix(),
                "override": c.has_override(),
                "temporary_switch": c.has_temporary_switch(),
                "source": source(&c.source),
            })
        })
        .collect();
    let mut out = json!({"rules": rules, "channels": channels});
    if let Some(plan) = plan {
        let mut chains = serde_json::Map::new();
        let mut order = serde_json::Map::new();
        for channel in registry.channel_ids() {
            let entries: Vec<Value> = plan
                .entries(channel)
                .iter()
                .map(|e| {
                    json!({
                        "rule": e.id,
                        "enabled": e.enabled,
                        "on_unavailable": e.on_unavailable.map(|o| o.as_str()),
                        "options": e.options,
                    })
                })
                .collect();
            chains.insert(channel.to_owned(), Value::Array(entries));
            order.insert(channel.to_owned(), json!(plan.order(channel)));
        }
        out["chains"] = Value::Object(chains);
        out["plugins"] = plan
            .plugins()
            .iter()
            .map(|p| {
                let (name, version) = p.loaded.clone().unzip();
                json!({"path": p.path, "sha256": p.sha256, "name": name, "version": version})
            })
            .collect();
        out["order"] = Value::Object(order);
    }
    out
}

/// A time as RFC 3339 in UTC with milliseconds (`2026-11-25T14:03:07.123Z`).
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// The reload status as the JSON object of SPEC §9 (`GET /v1/status`, the
/// bindings' `status()`): `generation`, `last_attempt`, `last_success`,
/// `last_error` (RFC 3339 times or `null`), `rules_sha256`, `world_sha256`,
/// and `order` (channel → enabled rule ids).
pub fn status_json(status: &ReloadStatus) -> Value {
    let order: serde_json::Map<String, Value> =
        status.order.iter().map(|(channel, rules)| (channel.clone(), json!(rules))).collect();
    json!({
        "generation": status.generation,
        "last_attempt": status.last_attempt.map(rfc3339),
        "last_success": status.last_success.map(rfc3339),
        "last_error": status.last_error,
        "rules_sha256": status.rules_sha256,
        "world_sha256": status.world_sha256,
        "order": order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_millis() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
