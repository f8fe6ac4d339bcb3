//! `switchboard explain`: the decision as a table a person reads.

use std::fmt::Write as _;

use switchboard::Decision;

use super::{load, read_request, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let (plan, world) = load(command)?;
    let path = command.request.as_deref().ok_or_else(|| Fatal("`--request` is required".into()))?;
    let text = read_request(path)?;
    let (request, decision) = match switchboard::parse_request(&text) {
        Ok(request) => {
            let decision = plan.select(&world, &request);
            (Some(request), decision)
        }
        Err(decision) => (None, decision),
    };
    print!("{}", render(request.as_ref(), &decision));
    Ok(if decision.is_ok() { Status::Success } else { Status::Failure })
}

/// The table: the request, the trace, the decision, the delivered body.
pub(crate) fn render(request: Option<&switchboard::Request>, decision: &Decision) -> String {
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
        }
        Err(e) => {
            let by = decision.rule.map_or(String::new(), |r| format!(" raised by {r}"));
            let _ = writeln!(out, "decision  error {} {}{by}", e.code, e.kind);
            let _ = writeln!(out, "          {}", e.message);
        }
    }
    if let Some(body) = &decision.body {
        let _ = writeln!(out, "delivered {body:?}");
    }
    out
}
