//! # switchboard-service
//!
//! The decision service behind `switchboard serve` (docs/service.md): the library's
//! decisions over HTTP, with hot reload (file changes, SIGHUP,
//! `POST /v1/reload`), Prometheus metrics, a decision log, admin-route
//! protection, limits, and graceful shutdown on SIGTERM/SIGINT.
//!
//! A thin shell: every decision comes from the same library call `select`
//! makes ([`switchboard::Plan::select`] on the [`switchboard::Live`]
//! snapshot in force); the handlers read the body, call it, and map the
//! result to a status code.
//!
//! ```no_run
//! use switchboard_service::{run, ServeOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut options = ServeOptions::new("rules.yaml");
//! options.world = Some("examples/world.yaml".into());
//! options.listen = "127.0.0.1:0".into();            // port 0: any free port
//! options.decision_log = Some("decisions.jsonl".into());
//! run(options)?;   // prints `switchboard: listening on http://127.0.0.1:PORT`, serves until SIGTERM
//! # Ok(()) }
//! ```

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard::decision_log::{DecisionLog, Overflow, Target};
use switchboard::{Live, LoadErrors};

mod live_routes;
pub mod metrics;
mod openapi;
mod routes;
mod server;

pub use openapi::openapi_json;

/// The default `--listen` address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default `--max-body-bytes`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// The default bound on requests handled at once (beyond it: 503 with
/// `Retry-After`).
pub const DEFAULT_MAX_CONCURRENCY: usize = 1024;
/// The default time a client has to send a request's headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a request may take, body included (beyond it: 408).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for requests in flight before exiting anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the service pings its capacity store for `/v1/status` and
/// `switchboard_store_up` (between pings, every real store call updates the
/// health too).
pub const STORE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The threads of the pool that runs decisions which may reserve capacity
/// in Redis, each waiting for its round trip; more such decisions queue
/// for a thread. A thread that finishes a decision takes the next queued
/// one without sleeping, so a few busy threads cost far fewer context
/// switches than one thread per connection: through `serve` with 64
/// connections on 2 cores, 16 threads did ≈ 1.5× the decisions per second
/// of tokio's shared blocking pool (one thread per connection) at about
/// half the CPU per decision (docs/performance.md). The pool is the service's own, so
/// reloads, `/v1/forget`, batches and the store's health pings never wait
/// behind queued decisions.
pub const STORE_DECISION_THREADS: usize = 16;
/// How many decision-log lines may wait for the writer; beyond it lines
/// are dropped and counted (`switchboard_decision_log_dropped_total`).
pub const DECISION_LOG_QUEUE: usize = 65_536;

/// How the service writes its own log lines (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `switchboard serve` is told: plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// The rules file.
    pub rules: PathBuf,
    /// The world file, if any.
    pub world: Option<PathBuf>,
    /// `host:port` to listen on; port 0 picks a free port.
    pub listen: String,
    /// Where to write the decision log: a file, or `-` for stdout.
    pub decision_log: Option<PathBuf>,
    /// The largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Requests handled at once (503 with `Retry-After` beyond).
    pub max_concurrency: usize,
    /// Time allowed to send the request headers.
    pub header_read_timeout: Duration,
    /// Time allowed for a whole request (408 beyond).
    pub request_timeout: Duration,
    /// A file holding the bearer token the admin routes require.
    pub admin_token_file: Option<PathBuf>,
    /// Allow a non-loopback `listen` without an admin token.
    pub insecure_admin: bool,
    /// Decide without counting against capacity limits (docs/service.md, docs/capacity.md):
    /// every decision is a preview.
    pub dry_run: bool,
    /// The service's own log format.
    pub log_format: LogFormat,
}

impl ServeOptions {
    /// The defaults of docs/service.md for the rules file `rules`.
    pub fn new(rules: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            rules: rules.into(),
            world: None,
            listen: DEFAULT_LISTEN.to_owned(),
            decision_log: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            admin_token_file: None,
            insecure_admin: false,
            dry_run: false,
            log_format: LogFormat::Text,
        }
    }
}

/// Why the service could not start (the command exits 2) or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The rules or world file is invalid at start.
    #[error("{0}")]
    Config(#[from] LoadErrors),
    /// `--listen` is not a usable `host:port`, or is refused.
    #[error("--listen {listen}: {reason}")]
    Listen {
        /// What was given.
        listen: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The admin token file cannot be used.
    #[error("{path}: {reason}")]
    AdminToken {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The decision log cannot be opened or written.
    #[error("--decision-log {target}: {source}")]
    DecisionLog {
        /// Where it goes.
        target: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runtime, the signal handlers or the file watcher could not start.
    #[error("{0}")]
    Runtime(String),
}

/// The address to bind: `listen` resolved, refused when it is not loopback
/// and the admin routes would be open (no token, no `--insecure-admin`).
fn resolve_listen(options: &ServeOptions) -> Result<SocketAddr, ServeError> {
    let bad = |reason: String| ServeError::Listen { listen: options.listen.clone(), reason };
    let addrs: Vec<SocketAddr> = options
        .listen
        .to_socket_addrs()
        .map_err(|e| bad(format!("expected host:port (like {DEFAULT_LISTEN}); {e}")))?
        .collect();
    let first = *addrs.first().ok_or_else(|| bad("the host resolves to no address".into()))?;
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    if !loopback && options.admin_token_file.is_none() && !options.insecure_admin {
        return Err(bad(format!(
            "{} is not a loopback address, so anyone who can reach it could reload the configuration; \
             give --admin-token-file FILE to protect the admin routes, or --insecure-admin to serve them open",
            first.ip()
        )));
    }
    Ok(first)
}

/// Reads the admin token: the file's content, trimmed; never empty.
fn read_token(path: &std::path::Path) -> Result<String, ServeError> {
    let err = |reason: String| ServeError::AdminToken { path: path.display().to_string(), reason };
    let text = switchboard::read_text(path).map_err(|e| err(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("the admin token file is empty; put the bearer token in it".into()));
    }
    Ok(token.to_owned())
}

/// Starts the service and serves until SIGTERM or SIGINT: loads the
/// configuration (an invalid file is an error before anything listens),
/// binds, prints `switchboard: listening on http://ADDR` on stderr as the
/// first line, watches the files, reloads on SIGHUP, and on shutdown
/// finishes the requests in flight and flushes the decision log.
pub fn run(options: ServeOptions) -> Result<(), ServeError> {
    let addr = resolve_listen(&options)?;
    let admin_token = options.admin_token_file.as_deref().map(read_token).transpose()?;
    let registry = switchboard::registry()
        .map_err(|e| ServeError::Runtime(format!("the built-in registry is inconsistent: {e}")))?;
    let live = Live::open(registry.clone(), options.rules.clone(), options.world.clone())?;
    let log = options
        .decision_log
        .as_ref()
        .map(|path| {
            let target = Target::parse(path);
            DecisionLog::open(&target, DECISION_LOG_QUEUE, Overflow::Drop)
                .map_err(|source| ServeError::DecisionLog { target: target.to_string(), source })
        })
        .transpose()?;
    // Only its blocking pool is used (`Handle::spawn_blocking`); its one
    // worker thread stays parked.
    let store_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(STORE_DECISION_THREADS)
        .thread_name("switchboard-store")
        .build()
        .map_err(|e| ServeError::Runtime(format!("cannot start the store decision pool: {e}")))?;
    let state = routes::State::new(routes::Shared {
        live,
        registry,
        metrics: metrics::Metrics::new(),
        ids: switchboard::decision_log::DecisionIds::new(),
        log,
        admin_token,
        dry_run: options.dry_run,
        max_body_bytes: options.max_body_bytes,
        concurrency: Arc::new(tokio::sync::Semaphore::new(options.max_concurrency.max(1))),
        store_pool: store_runtime.handle().clone(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-serve")
        .build()
        .map_err(|e| ServeError::Runtime(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(server::serve(addr, state.clone(), &options));
    runtime.shutdown_timeout(Duration::from_secs(1));
    store_runtime.shutdown_timeout(Duration::from_secs(1));
    let flushed = state.close_log();
    result?;
    flushed
}
