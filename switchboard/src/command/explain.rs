//! `switchboard explain`: the decision as a table a person reads.

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
    print!("{}", switchboard::report::explain_table(request.as_ref(), &decision));
    Ok(if decision.is_ok() { Status::Success } else { Status::Failure })
}
