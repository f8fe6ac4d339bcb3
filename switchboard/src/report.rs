//! Reports shared by every front end (the CLI, the service, the bindings):
//! the explain table, the rules listing and the reload status, as text or
//! JSON. Pure functions of the library's values; nothing here prints.

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{json, Value};
use switchboard_core::capacity::{jiff::Timestamp, Counts, LimitKind, Limits, PoolRef, ReservationRequest, Window};
use switchboard_core::{HealthState, Instance, Location, OptionKind, Registry, Request, Source, World};
use switchboard_engine::{Decision, Plan};

use crate::ReloadStatus;

/// The explain table of a decision: the request (when it could be read),
/// each rule consulted with its outcome and detail, the decision, and the
/// body delivered (only when an instance was selected; an error sends
/// nothing, and the table says so).
pub fn explain_table(request: Option<&Request>, decision: &Decision) -> String {
    table(request, decision, None)
}

/// The explain table of a decision made by `plan` on `world`, as every
/// front end shows it (`switchboard explain`, `POST /v1/explain`, the
/// bindings): [`explain_table`] plus, when decisions on the request's
/// channel count against capacity, the section of [`capacity_section`]
/// between the rules consulted and the decision. Without limits (and
/// without a `least_used` chain) it is exactly [`explain_table`].
pub fn explain_table_with_capacity(
    plan: &Plan,
    world: &World,
    request: Option<&Request>,
    decision: &Decision,
) -> String {
    // A request that was not decided (code 100, an unknown location or
    // channel) has no trace, and no instance was considered.
    let section = match request {
        Some(r) if !decision.trace.is_empty() => {
            match (capacity_section(plan, world, r), live_section(plan, world, r)) {
                (Some(capacity), Some(live)) => Some(format!("{capacity}{live}")),
                (capacity, live) => capacity.or(live),
            }
        }
        _ => None,
    };
    table(request, decision, section.as_deref())
}

/// One request explained, as every front end shows it (`switchboard
/// explain`, `POST /v1/explain`, the bindings' `explain`).
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The request, when it could be read.
    pub request: Option<Request>,
    /// Its decision: a preview, since an explanation never counts against
    /// capacity (docs/capacity.md); the code-100 decision when the request
    /// cannot be read.
    pub decision: Decision,
    /// The table of [`explain_table_with_capacity`].
    pub table: String,
}

/// Explains the request in `request` (its bytes: text that is not UTF-8
/// or not a request gets the table of its code-100 decision) by `plan`
/// on `world`.
pub fn explain(plan: &Plan, world: &World, request: &[u8]) -> Explanation {
    let (request, decision) = match crate::request_text(request).and_then(crate::parse_request) {
        Ok(request) => {
            let decision = crate::Intent::Preview.decide(plan, world, &request);
            (Some(request), decision)
        }
        Err(decision) => (None, decision),
    };
    let table = explain_table_with_capacity(plan, world, request.as_ref(), &decision);
    Explanation { request, decision, table }
}

impl Explanation {
    /// `{"decision": {"generation": N, <the decision's fields>}, "table":
    /// "…"}`: the body of `POST /v1/explain`, its decision written as
    /// `POST /v1/select` writes one (keys in the same order).
    pub fn to_json(&self, generation: u64) -> String {
        let mut out = Vec::with_capacity(self.table.len() + 512);
        out.extend_from_slice(b"{\"decision\":");
        self.decision.write_json_with(&mut out, None, Some(generation));
        out.extend_from_slice(b",\"table\":");
        switchboard_engine::json::string(&mut out, &self.table);
        out.push(b'}');
        // Only whole UTF-8 sequences were written.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl crate::ReloadEvent {
    /// What happened, in one line: `reloaded: generation 3 in force`,
    /// `files unchanged: generation 3 stays` or `reload failed, generation
    /// 3 stays` (a failure's problems are in its `error`).
    pub fn headline(&self) -> String {
        match self {
            crate::ReloadEvent::Reloaded { generation } => format!("reloaded: generation {generation} in force"),
            crate::ReloadEvent::Unchanged { generation } => format!("files unchanged: generation {generation} stays"),
            crate::ReloadEvent::Failed { generation, .. } => format!("reload failed, generation {generation} stays"),
        }
    }
}

/// The event as a person reads it (`select --watch` prints it on stderr):
/// its [headline](crate::ReloadEvent::headline), and for a failure a colon
/// and every located problem on the lines below. Its JSON is
/// [`crate::embed::event_json`].
impl std::fmt::Display for crate::ReloadEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.headline())?;
        match self {
            crate::ReloadEvent::Failed { error, .. } => write!(f, ":\n{error}"),
            _ => Ok(()),
        }
    }
}

/// The live state (docs/live-state.md) of the instances of the request's location on
/// its channel at the decision's instant: each `instance_status` override
/// in force, and each instance quarantined or on probation, one line each:
///
/// ```text
/// live state  as of 2026-12-07T15:10:00Z
///   wa-orders  disconnected (the file says connected): logged out, since 2026-12-07T15:00:00Z until 2026-12-07T15:30:00Z
///   wa-2  quarantined until 2026-12-07T15:15:00Z (5 failed deliveries in a row)
///   wa-3  on probation: its next delivery decides
/// ```
///
/// `None` when no instance there has either (or the request carries its
/// own `instances`, which live state never touches).
pub fn live_section(plan: &Plan, world: &World, request: &Request) -> Option<String> {
    let store = plan.store()?;
    if request.instances.is_some() || !store.has_live_state(&request.location) {
        return None;
    }
    let location = world.location(&request.location)?;
    let now = request.now.unwrap_or_else(Timestamp::now);
    let mut out = String::new();
    let state = match store.live_state(location.id()) {
        Ok(state) => state,
        Err(e) => return Some(format!("live state  not read: {e}; the file's values were used\n")),
    };
    let word = |connected: bool| if connected { "connected" } else { "disconnected" };
    for instance in location.channel(&request.channel).iter() {
        let Some(o) = state.override_of(instance.id(), now) else { continue };
        let _ =
            write!(out, "  {}  {} (the file says {})", instance.id(), word(o.connected), word(instance.is_connected()));
        if let Some(reason) = &o.reason {
            let _ = write!(out, ": {reason}");
        }
        let _ = write!(out, ", since {}", o.time);
        match o.until {
            Some(until) => {
                let _ = writeln!(out, " until {until}");
            }
            None => out.push('\n'),
        }
    }
    for instance in location.channel(&request.channel).iter() {
        let Some((_, record)) = state.health.iter().find(|(id, _)| id == instance.id()) else { continue };
        let _ = match record.state(now) {
            HealthState::Quarantined { until } => writeln!(
                out,
                "  {}  quarantined until {until} ({} failed deliveries in a row)",
                instance.id(),
                record.consecutive_failures
            ),
            HealthState::Probation => writeln!(out, "  {}  on probation: its next delivery decides", instance.id()),
            HealthState::Healthy => Ok(()),
        };
    }
    (!out.is_empty()).then(|| format!("live state  as of {now:.0}\n{out}"))
}

/// The capacity of each instance of the request's location on its channel
/// (docs/capacity.md), read from the plan's store with [`CapacityStore::usage`]
/// (never counting), one line per instance by ascending index: its counts
/// against each limit in the current window, those reached marked, then its
/// pool's.
///
/// ```text
/// capacity  as of 2026-11-25T14:00:00Z · 2026-11-25 09:00 America/New_York
///   wa-1  3/20 this minute, 40/300 this hour, 1000/1000 today (at capacity), contacts 12/250 today; pool brand-a 1500/2000 today
///   wa-2  0/1000 today; pool brand-a 1500/2000 today · disconnected
///   wa-3  no limits
/// ```
///
/// `None` when the plan has no store, the location is unknown, or no
/// instance there has a limit (nor its pool) and the chain does not read
/// day counts (`least_used`, which then shows each instance's day count).
/// The instant is the request's `now`, else the clock. A store that cannot
/// answer is said on the first instance's line, and not asked again.
///
/// [`CapacityStore::usage`]: switchboard_core::CapacityStore::usage
pub fn capacity_section(plan: &Plan, world: &World, request: &Request) -> Option<String> {
    let store = plan.store()?;
    let location = world.location_of(request, plan.registry()).ok()?;
    let location: &Location = &location;
    let view = location.channel(&request.channel);
    let pool_of = |instance: &Instance| instance.pool().and_then(|p| location.pool(p));
    let limited = |instance: &Instance| {
        instance.has_own_limits() || pool_of(instance).is_some_and(|p| !p.limits().is_unlimited())
    };
    let reads_usage = plan.reads_usage(&request.channel);
    if !reads_usage && !view.iter().any(|i| limited(i)) {
        return None;
    }
    let tz = location.timezone();
    let (now, at) = match request.now {
        Some(now) => (now, now.to_string()),
        None => {
            let now = Timestamp::now();
            (now, format!("{now:.0}"))
        }
    };
    let local = tz.to_offset(now).to_datetime(now);
    let contact = request.contact_id();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "capacity  as of {at} · {} {}",
        local.strftime("%Y-%m-%d %H:%M"),
        tz.iana_name().unwrap_or("UTC")
    );
    let width = view.iter().map(|i| i.id().len()).max().unwrap_or(0);
    // After a store error the others are not asked (each could wait for
    // the store's timeout).
    let mut failed = false;
    for instance in view.iter() {
        let pool = pool_of(instance);
        let mut line = if !limited(instance) && !reads_usage {
            "no limits".to_owned()
        } else if failed {
            "counts unavailable".to_owned()
        } else {
            let limits = instance.limits_at(now, tz);
            let reservation = ReservationRequest {
                limits,
                pool: pool.map(|p| PoolRef { id: p.id(), limits: *p.limits() }),
                contact,
                ..ReservationRequest::new(location.id(), tz, instance.id(), now)
            };
            match store.usage(&reservation) {
                Ok(usage) => {
                    let mut line = against(&limits, &usage.instance, usage.contact_seen, contact, reads_usage);
                    if let Some(warmup) = instance.warmup() {
                        let (day, per_day) = warmup.at(now, tz);
                        let _ = write!(line, " (warm-up day {day}: {per_day} a day)");
                    }
                    if let Some(pool) = pool {
                        let counts = usage.pool.unwrap_or_default();
                        let _ = write!(
                            line,
                            "; pool {} {}",
                            pool.id(),
                            against(pool.limits(), &counts, usage.pool_contact_seen, contact, false)
                        );
                    }
                    line
                }
                Err(e) => {
                    failed = true;
                    format!("counts unavailable: {e}")
                }
            }
        };
        if !instance.is_connected() {
            line.push_str(" · disconnected");
        }
        let _ = writeln!(out, "  {:width$}  {line}", instance.id());
    }
    Some(out)
}

/// `counts` against `limits`: `3/20 this minute, 1000/1000 today (at
/// capacity), contacts 12/250 today`, or `no limits`. With `day`, the day's
/// count is shown even without a `per_day` limit (`least_used` reads it).
fn against(limits: &Limits, counts: &Counts, contact_seen: bool, contact: Option<&str>, day: bool) -> String {
    let mut parts = Vec::new();
    for window in Window::ALL {
        let count = counts.get(window);
        let describe = LimitKind::from(window).describe();
        match limits.get(window) {
            Some(limit) => {
                let full = if count >= u64::from(limit) { " (at capacity)" } else { "" };
                parts.push(format!("{count}/{limit} {describe}{full}"));
            }
            None if day && window == Window::Day => parts.push(format!("{count} {describe}")),
            None => {}
        }
    }
    if let Some(limit) = limits.contacts_per_day {
        let full = match (counts.contacts >= u64::from(limit), contact_seen, contact) {
            (false, _, _) => String::new(),
            (true, true, Some(contact)) => format!(" (full; {contact} was already messaged today and passes)"),
            (true, _, _) => " (at capacity)".to_owned(),
        };
        parts.push(format!("contacts {}/{limit} today{full}", counts.contacts));
    }
    match (parts.is_empty(), day) {
        (true, _) => "no limits".to_owned(),
        (false, true) if limits.is_unlimited() => format!("no limits, {}", parts.join(", ")),
        _ => parts.join(", "),
    }
}

/// The table, with the capacity section (if any) after the rules consulted.
fn table(request: Option<&Request>, decision: &Decision, capacity: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(r) = request {
        let contact = r.contact.as_ref().and_then(|c| c.id.as_deref()).unwrap_or("-");
        let _ = writeln!(out, "request   location {} · channel {} · contact {contact}", r.location, r.channel);
        let _ = writeln!(out, "body      {:?}", r.body);
        let recipient: Vec<String> = r
            .contact
            .iter()
            .flat_map(|c| [("phone", &c.phone), ("timezone", &c.timezone)])
            .filter_map(|(what, value)| Some(format!("{what} {}", value.as_deref()?)))
            .collect();
        if !recipient.is_empty() {
            let _ = writeln!(out, "recipient {}", recipient.join(" · "));
        }
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
    if let Some(capacity) = capacity {
        out.push_str(capacity);
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
            if let Some(retry_at) = &e.retry_at {
                let _ = writeln!(out, "retry at  {retry_at}");
            }
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
        OptionKind::Duration => json!({"type": "duration"}),
        OptionKind::StringList => json!({"type": "string_list"}),
    }
}

fn source(source: &Source) -> Value {
    match source {
        Source::Builtin(krate) => json!({"kind": "builtin", "crate": krate}),
        Source::Plugin(path) => json!({"kind": "plugin", "path": path.display().to_string()}),
        Source::Wasm(path) => json!({"kind": "wasm", "path": path.display().to_string()}),
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
                // 0: a rule that never fails has no code (`geomatch`).
                "code": (r.code != 0).then_some(r.code),
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

/// The reload status as the JSON object of docs/service.md (`GET /v1/status`, the
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
    use std::sync::Arc;

    const WORLD: &str = "locations:
  - id: shop
    timezone: America/New_York
    pools: [{id: brand-a, limits: {per_day: 5}}]
    instances:
      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, pool: brand-a,
         limits: {per_minute: 20, per_hour: 300, per_day: 3, contacts_per_day: 2}}
      - {id: wa-2, channel: whatsapp, phone: '2', connected: false, pool: brand-a, limits: {per_day: 1}}
      - {id: wa-three, channel: whatsapp, phone: '3', connected: true}
      - {id: sms-1, channel: sms, phone: '4', connected: true, limits: {per_day: 1}}
";

    fn plan(rules: &str) -> Plan {
        let registry = crate::registry().unwrap();
        switchboard_files::compile(rules, "rules.yaml", registry)
            .unwrap()
            .with_store(Arc::new(switchboard_state::MemoryStore::new()))
    }

    fn world(yaml: &str) -> World {
        switchboard_files::read_world(yaml, "world.yaml", &crate::registry().unwrap()).unwrap()
    }

    #[test]
    fn a_reload_event_reads_as_one_line_and_a_failure_lists_its_problems() {
        use crate::ReloadEvent;
        assert_eq!(ReloadEvent::Reloaded { generation: 2 }.to_string(), "reloaded: generation 2 in force");
        assert_eq!(ReloadEvent::Unchanged { generation: 1 }.to_string(), "files unchanged: generation 1 stays");
        let failed = ReloadEvent::Failed { generation: 3, error: "r.yaml:1:1: bad".into() };
        assert_eq!(failed.headline(), "reload failed, generation 3 stays");
        assert_eq!(failed.to_string(), "reload failed, generation 3 stays:\nr.yaml:1:1: bad");
    }

    #[test]
    fn an_explanation_previews_and_answers_bytes_that_are_not_a_request() {
        let (plan, world) = (plan("rules: [any_available]\n"), world(WORLD));
        let request = br#"{"location":"shop","channel":"whatsapp","body":"hi","contact":{"id":"c1"}}"#;
        let first = explain(&plan, &world, request);
        assert_eq!(first.decision.instance().map(|i| i.id()), Some("wa-1"));
        assert!(first.table.contains("capacity  as of"), "{}", first.table);
        // A preview: explaining again finds the same counts.
        assert_eq!(explain(&plan, &world, request).table, first.table);
        let value: Value = serde_json::from_str(&first.to_json(4)).unwrap();
        assert_eq!(value["decision"]["generation"], 4);
        assert_eq!(value["table"], first.table);
        let bad = explain(&plan, &world, b"{\"\xff\"}");
        assert_eq!(bad.decision.error().map(|e| e.code), Some(100));
        assert!(bad.table.contains("not valid UTF-8 (first bad byte at offset 2)"), "{}", bad.table);
        assert!(bad.request.is_none());
    }

    fn request(contact: &str) -> Request {
        let json = format!(
            r#"{{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z","contact":{{"id":"{contact}"}}}}"#
        );
        Request::from_json(&json).unwrap()
    }

    #[test]
    fn explain_shows_each_instance_s_counts_against_its_limits_and_never_counts() {
        let (plan, world) = (plan("rules: [any_available]\n"), world(WORLD));
        for contact in ["c1", "c2"] {
            assert_eq!(plan.select(&world, &request(contact)).instance().map(|i| i.id()), Some("wa-1"));
        }
        let header = "capacity  as of 2026-11-25T14:00:00Z · 2026-11-25 09:00 America/New_York\n";
        let section = |contact| capacity_section(&plan, &world, &request(contact)).unwrap();
        for _ in 0..3 {
            assert_eq!(
                section("c1"),
                format!(
                    "{header}  wa-1      2/20 this minute, 2/300 this hour, 2/3 today, contacts 2/2 today (full; c1 was \
                     already messaged today and passes); pool brand-a 2/5 today\n  \
                     wa-2      0/1 today; pool brand-a 2/5 today · disconnected\n  \
                     wa-three  no limits\n"
                ),
            );
        }
        assert!(section("c3").contains("contacts 2/2 today (at capacity); pool"), "{}", section("c3"));
        assert_eq!(plan.select(&world, &request("c1")).instance().map(|i| i.id()), Some("wa-1"));
        assert!(section("c1").contains("  wa-1      3/20 this minute, 3/300 this hour, 3/3 today (at capacity), "));

        // The whole table: the section sits between the rules and the decision.
        let req = request("c1");
        let decision = plan.preview(&world, &req);
        let table = explain_table_with_capacity(&plan, &world, Some(&req), &decision);
        let plain = explain_table(Some(&req), &decision);
        assert_eq!(table.replace(&format!("{}\n", section("c1")), ""), plain, "{table}");
        assert!(table.find("capacity  as of") < table.find("decision  selected wa-three"), "{table}");
        assert!(section("c1").contains("3/3 today (at capacity)"), "explaining never counts");
    }

    #[test]
    fn without_limits_or_a_store_the_table_is_unchanged() {
        let free = world(
            "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true}\n",
        );
        let counting = plan("rules: [any_available]\n");
        let req = request("c1");
        let decision = counting.preview(&free, &req);
        assert_eq!(capacity_section(&counting, &free, &req), None);
        assert_eq!(
            explain_table_with_capacity(&counting, &free, Some(&req), &decision),
            explain_table(Some(&req), &decision)
        );
        // Limits, but no store (a plan compiled without one ignores them).
        let bare =
            switchboard_files::compile("rules: [any_available]\n", "rules.yaml", crate::registry().unwrap()).unwrap();
        assert_eq!(capacity_section(&bare, &world(WORLD), &req), None);
        // An unknown location, or a request that was not decided.
        let elsewhere = Request { location: "nowhere".into(), ..request("c1") };
        assert_eq!(capacity_section(&counting, &world(WORLD), &elsewhere), None);
        let unread = Decision::request_error(switchboard_core::ErrorKind::InvalidRequest, "bad", None);
        assert_eq!(
            explain_table_with_capacity(&counting, &world(WORLD), Some(&req), &unread),
            explain_table(Some(&req), &unread)
        );
    }

    /// A store that never answers.
    struct Down;

    impl switchboard_core::CapacityStore for Down {
        fn reserve(
            &self,
            _: &ReservationRequest<'_>,
        ) -> Result<switchboard_core::Reservation, switchboard_core::StoreError> {
            Err(switchboard_core::StoreError::new(switchboard_core::StoreErrorKind::Unavailable, "connection refused"))
        }
        fn usage(
            &self,
            _: &ReservationRequest<'_>,
        ) -> Result<switchboard_core::capacity::Usage, switchboard_core::StoreError> {
            Err(switchboard_core::StoreError::new(switchboard_core::StoreErrorKind::Unavailable, "connection refused"))
        }
        fn remember(
            &self,
            _: &switchboard_core::ConversationKey<'_>,
            _: &str,
            _: std::time::Duration,
            _: Timestamp,
        ) -> Result<(), switchboard_core::StoreError> {
            Ok(())
        }
        fn recall(
            &self,
            _: &switchboard_core::ConversationKey<'_>,
            _: Timestamp,
        ) -> Result<Option<String>, switchboard_core::StoreError> {
            Ok(None)
        }
        fn forget(&self, _: &switchboard_core::ConversationKey<'_>) -> Result<bool, switchboard_core::StoreError> {
            Ok(false)
        }
    }

    #[test]
    fn a_store_that_cannot_answer_is_said_once() {
        let plan = switchboard_files::compile("rules: [any_available]\n", "rules.yaml", crate::registry().unwrap())
            .unwrap()
            .with_store(Arc::new(Down));
        let section = capacity_section(&plan, &world(WORLD), &request("c1")).unwrap();
        assert!(
            section.ends_with(
                "  wa-1      counts unavailable: capacity store unavailable: connection refused\n  \
                 wa-2      counts unavailable · disconnected\n  wa-three  no limits\n"
            ),
            "{section}"
        );
    }

    #[test]
    fn a_least_used_chain_shows_day_counts_without_limits() {
        let free = world(
            "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true, limits: {per_hour: 9}}\n",
        );
        let plan = plan("rules: [{rule: any_available, strategy: least_used}]\n");
        for _ in 0..3 {
            plan.select(&free, &request("c1"));
        }
        assert_eq!(
            capacity_section(&plan, &free, &request("c1")).unwrap(),
            "capacity  as of 2026-11-25T14:00:00Z · 2026-11-25 14:00 UTC\n  wa-1  no limits, 2 today\n  wa-2  1/9 this hour, 1 today\n"
        );
    }

    #[test]
    fn rfc3339_is_utc_with_millis() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
