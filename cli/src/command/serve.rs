//! `switchboard serve`: the decision service (the `switchboard-service`
//! crate); this only maps the arguments.

use std::path::PathBuf;

use switchboard_service::{LogFormat, ServeOptions};

use super::{Fatal, Files, Status};

/// The decision service over HTTP: JSON in and out, hot reload on file
/// changes, SIGHUP and POST /v1/reload; stops on SIGTERM/SIGINT (exit 0).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: Files,
    /// host:port to listen on; port 0 picks a free port. The first stderr line
    /// is `switchboard: listening on http://ADDR`.
    #[arg(long, value_name = "HOST:PORT", default_value = switchboard_service::DEFAULT_LISTEN)]
    pub listen: String,
    /// One JSON line per decision of /v1/select and /v1/select/batch (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// The largest request body; 413 beyond.
    #[arg(long, value_name = "N", default_value_t = switchboard_service::DEFAULT_MAX_BODY_BYTES, value_parser = super::select::positive)]
    pub max_body_bytes: usize,
    /// Requests handled at once; 503 with Retry-After beyond.
    #[arg(long, value_name = "N", default_value_t = switchboard_service::DEFAULT_MAX_CONCURRENCY, value_parser = super::select::positive)]
    pub max_concurrency: usize,
    /// The admin routes (POST /v1/reload, /v1/forget, /v1/events) then need
    /// `Authorization: Bearer <the file's content, trimmed>`; 401 otherwise.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Allow a non-loopback --listen without --admin-token-file.
    #[arg(long)]
    pub insecure_admin: bool,
    /// The service's own log lines on stderr.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: super::Format,
    /// Decide without counting against capacity limits or remembering
    /// conversations: every decision is a preview.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let mut options = ServeOptions::new(args.files.rules.clone());
    options.world = args.files.world.clone();
    options.listen = args.listen.clone();
    options.decision_log = args.decision_log.clone();
    options.max_body_bytes = args.max_body_bytes;
    options.max_concurrency = args.max_concurrency;
    options.admin_token_file = args.admin_token_file.clone();
    options.insecure_admin = args.insecure_admin;
    options.dry_run = args.dry_run;
    options.log_format = match args.log_format {
        super::Format::Text => LogFormat::Text,
        super::Format::Json => LogFormat::Json,
    };
    match switchboard_service::run(options) {
        Ok(()) => Ok(Status::Success),
        Err(switchboard_service::ServeError::Config(errors)) => Err(errors.into()),
        Err(e) => Err(Fatal::Message(e.to_string())),
    }
}
