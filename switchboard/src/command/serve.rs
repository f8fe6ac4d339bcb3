//! `switchboard serve`: the decision service (the `switchboard-service`
//! crate); this only maps the arguments.

use switchboard_service::{LogFormat, ServeOptions};

use super::{Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let rules = command.rules.clone().ok_or_else(|| Fatal("`--rules` is required".into()))?;
    let mut options = ServeOptions::new(rules);
    options.world = command.world.clone();
    options.decision_log = command.decision_log.clone();
    let given = &command.serve;
    if let Some(listen) = &given.listen {
        options.listen = listen.clone();
    }
    if let Some(n) = given.max_body_bytes {
        options.max_body_bytes = n;
    }
    if let Some(n) = given.max_concurrency {
        options.max_concurrency = n;
    }
    options.admin_token_file = given.admin_token_file.clone();
    options.insecure_admin = given.insecure_admin;
    options.dry_run = given.dry_run;
    options.log_format = if given.log_json { LogFormat::Json } else { LogFormat::Text };
    switchboard_service::run(options).map_err(|e| Fatal(e.to_string()))?;
    Ok(Status::Success)
}
