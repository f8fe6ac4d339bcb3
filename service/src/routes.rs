//! The routes of docs/service.md: one state struct, small handlers that read the
//! body, call the library and map the result to a status code; limits,
//! admin protection, metrics and JSON errors as layers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use switchboard::decision_log::{DecisionIds, DecisionLog, Entry};
use switchboard::lines::{answer_lines, Line, Lines, Mode};
use switchboard::{Decision, Intent, Live, Registry, Snapshot};

use crate::metrics::{Metrics, ReloadLabels};
use crate::ServeError;

/// What every handler shares.
pub(crate) struct Shared {
    pub live: Live,
    pub registry: Arc<Registry>,
    pub metrics: Metrics,
    pub ids: DecisionIds,
    pub log: Option<DecisionLog>,
    pub admin_token: Option<String>,
    pub dry_run: bool,
    pub max_body_bytes: usize,
    pub concurrency: Arc<tokio::sync::Semaphore>,
    /// The pool of [`crate::STORE_DECISION_THREADS`] threads that runs
    /// decisions which may wait on Redis.
    pub store_pool: tokio::runtime::Handle,
}

/// The one state struct; cheap to clone.
#[derive(Clone)]
pub(crate) struct State(Arc<Shared>);

type St = axum::extract::State<State>;

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

impl State {
    pub fn new(shared: Shared) -> State {
        State(Arc::new(shared))
    }

    pub fn live(&self) -> &Live {
        &self.0.live
    }

    /// What every handler shares.
    pub(crate) fn shared(&self) -> &Shared {
        &self.0
    }

    /// Flushes and closes the decision log.
    pub fn close_log(&self) -> Result<(), ServeError> {
        match &self.0.log {
            Some(log) => log
                .close()
                .map(|_| ())
                .map_err(|source| ServeError::DecisionLog { target: log.target().to_string(), source }),
            None => Ok(()),
        }
    }

    /// Counts a reload event and logs it (one line per reload).
    pub fn on_reload(&self, event: &switchboard::ReloadEvent) {
        use switchboard::ReloadEvent::*;
        let headline = event.headline();
        let result = match event {
            Reloaded { generation } => {
                tracing::info!(generation, "{headline}");
                "success"
            }
            Unchanged { generation } => {
                tracing::info!(generation, "{headline}");
                "unchanged"
            }
            Failed { generation, error } => {
                tracing::warn!(generation, error = %error, "{headline}");
                "failure"
            }
        };
        self.0.metrics.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// Pings the capacity store in force (on the blocking pool: Redis
    /// answers within its timeouts) and updates the store metrics.
    pub async fn check_store(&self) {
        let live = self.0.live.clone();
        let _ = tokio::task::spawn_blocking(move || live.check_store()).await;
        self.sync_store_metrics();
    }

    /// `switchboard_store_up` and `switchboard_store_errors_total` from the
    /// store's health as its calls have seen it.
    fn sync_store_metrics(&self) {
        let up = self.0.live.store_health().is_none_or(|health| health.healthy);
        self.0.metrics.sync_store(up, self.0.live.store_errors_total());
    }

    /// One decision for one request body, on `snapshot`, counted; the
    /// request text (for the log) comes back with it.
    fn decide(&self, snapshot: &Snapshot, bytes: &[u8]) -> (String, Decision) {
        match switchboard::request_text(bytes) {
            Ok(text) => (text.to_owned(), self.decide_text(snapshot, text)),
            Err(decision) => (String::from_utf8_lossy(bytes).into_owned(), self.refused(decision)),
        }
    }

    /// One decision for one line of a batch body ([`Lines::of_body`]), as
    /// [`State::decide`] for a body.
    fn decide_line(&self, snapshot: &Snapshot, line: &Line) -> (String, Decision) {
        match line {
            Line::Text(text) => (text.clone(), self.decide_text(snapshot, text)),
            Line::NotUtf8 { why, lossy } => (lossy.clone(), self.refused(refusal(why))),
            Line::Unreadable(why) => (why.clone(), self.refused(refusal(why))),
        }
    }

    /// A request that cannot be read: its code-100 decision, counted.
    fn refused(&self, decision: Decision) -> Decision {
        self.0.metrics.count_decision("", &decision, |_| None);
        decision
    }

    /// One decision for one request text, on `snapshot`, counted.
    fn decide_text(&self, snapshot: &Snapshot, text: &str) -> Decision {
        match switchboard::parse_request(text) {
            Ok(request) => {
                let started = Instant::now();
                // `serve --dry-run` never counts against capacity (docs/capacity.md).
                let decision = snapshot.decide(&request, Intent::dry_run(self.0.dry_run));
                self.0.metrics.decision_duration.observe(started.elapsed().as_secs_f64());
                let registry = snapshot.plan.registry();
                // Only registered channels become label values: a client
                // cannot grow the metrics by inventing channels.
                let channel = registry.channel_id(&request.channel).unwrap_or("");
                self.0.metrics.count_decision(channel, &decision, |id| registry.rule(id).map(|r| r.code));
                decision
            }
            Err(decision) => self.refused(decision),
        }
    }

    /// Appends the decision's JSON with `decision_id` and `generation` to
    /// `out`, written once; logs the decision.
    fn answer(&self, snapshot: &Arc<Snapshot>, request: String, decision: &Decision, out: &mut Vec<u8>) {
        let id = self.0.ids.next();
        decision.write_json_with(out, Some(&id), Some(snapshot.generation));
        if let Some(log) = &self.0.log {
            let entry = Entry::new(id, snapshot.clone(), request, decision.to_json());
            log.record(entry.with_message_id(decision.message_id.clone()));
        }
    }
}

/// The code-100 decision of a line that cannot be read.
fn refusal(why: &str) -> Decision {
    Decision::request_error(switchboard::ErrorKind::InvalidRequest, why, None)
}

fn is_request_error(decision: &Decision) -> bool {
    decision.error().is_some_and(|e| e.code == switchboard::CODE_INVALID_REQUEST)
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], body.into()).into_response()
}

pub(crate) fn json_value(status: StatusCode, value: &Value) -> Response {
    json_response(status, value.to_string())
}

/// The JSON body of an error that is not a decision.
pub(crate) fn error_body(status: StatusCode, message: &str) -> Value {
    json!({"error": {"status": status.as_u16(), "message": message}})
}

/// `POST /v1/select`: one request, one decision.
#[utoipa::path(post, path = "/v1/select", tag = "decisions",
    request_body(content = crate::openapi::RequestDoc, description = "One request (docs/world.md); any Content-Type"),
    responses(
        (status = 200, description = "The chain ran: selected, or a selection error 101–108 / ≥ 1000", body = crate::openapi::DecisionDoc),
        (status = 400, description = "Code 100: the request cannot be used (the decision is still the body)", body = crate::openapi::DecisionDoc),
        (status = 413, description = "The body is larger than --max-body-bytes", body = crate::openapi::ErrorDoc),
        (status = 503, description = "Too many requests at once (Retry-After)", body = crate::openapi::ErrorDoc),
    ))]
pub(crate) async fn select(axum::extract::State(state): St, body: Bytes) -> Response {
    let snapshot = state.0.live.snapshot();
    // A decision is ~0.1 µs of CPU and runs on the async worker, memory
    // store reservations included (well under a microsecond); one that may
    // reserve capacity in Redis can wait on a round trip (within its
    // timeouts; a dry run reads it), so it runs on the store decision pool
    // and never stalls a worker.
    let blocking = may_block(&snapshot);
    let pool = state.0.store_pool.clone();
    let decide = move || {
        let (request, decision) = state.decide(&snapshot, &body);
        let status = if is_request_error(&decision) { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        let mut body = Vec::with_capacity(512);
        state.answer(&snapshot, request, &decision, &mut body);
        json_response(status, body)
    };
    if !blocking {
        return decide();
    }
    match pool.spawn_blocking(decide).await {
        Ok(response) => response,
        Err(_) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, "the decision could not run; retry"),
        ),
    }
}

/// `POST /v1/select/batch`: JSON Lines in, JSON Lines out, in order.
#[utoipa::path(post, path = "/v1/select/batch", tag = "decisions",
    request_body(content = String, description = "JSON Lines: one request per line; blank lines are skipped", content_type = "application/x-ndjson"),
    responses(
        (status = 200, description = "One decision line per input line, in order; a bad line gets its code-100 decision", body = String, content_type = "application/x-ndjson"),
        (status = 413, description = "The body is larger than --max-body-bytes", body = crate::openapi::ErrorDoc),
    ))]
pub(crate) async fn select_batch(axum::extract::State(state): St, body: Bytes) -> Response {
    let work = move || {
        let snapshot = state.0.live.snapshot();
        let mut out = Vec::with_capacity(body.len() * 2);
        // In input order, one line at a time, as `select --watch` decides.
        let answer = |line: &Line, text: &mut Vec<u8>| {
            let (request, decision) = state.decide_line(&snapshot, line);
            state.answer(&snapshot, request, &decision, text);
        };
        // Writing to memory cannot fail, nor can reading the body.
        answer_lines(Lines::of_body(&body[..]), &mut out, Mode::Stream, &answer).map(|()| out)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(out)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))], out).into_response()
        }
        Ok(Err(_)) | Err(_) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, "the batch could not be decided; retry"),
        ),
    }
}

/// `POST /v1/explain`: the decision and its explain table; never logged,
/// never counted as a decision.
#[utoipa::path(post, path = "/v1/explain", tag = "decisions",
    request_body(content = crate::openapi::RequestDoc, description = "One request (docs/world.md)"),
    responses(
        (status = 200, description = "The decision (with `generation`) and the explain table", body = crate::openapi::ExplainDoc),
        (status = 400, description = "Code 100: the request cannot be used", body = crate::openapi::ExplainDoc),
    ))]
pub(crate) async fn explain(axum::extract::State(state): St, body: Bytes) -> Response {
    let snapshot = state.0.live.snapshot();
    // Reading the counts in Redis is a round trip: as for `select`, off the
    // async worker.
    if may_block(&snapshot) {
        let pool = state.0.store_pool.clone();
        return match pool.spawn_blocking(move || explain_on(&snapshot, &body)).await {
            Ok(response) => response,
            Err(_) => json_value(
                StatusCode::SERVICE_UNAVAILABLE,
                &error_body(StatusCode::SERVICE_UNAVAILABLE, "the explanation could not run; retry"),
            ),
        };
    }
    explain_on(&snapshot, &body)
}

/// Whether a decision on `snapshot` may wait on its store's I/O: the store
/// says its calls may block, and the decision may reserve or read capacity
/// (both known since the configuration was loaded: nothing here grows with
/// the world).
fn may_block(snapshot: &Snapshot) -> bool {
    snapshot.plan.store().is_some_and(|store| store.may_block()) && snapshot.plan.counts_capacity(&snapshot.world)
}

/// The explain answer for one request body.
fn explain_on(snapshot: &Snapshot, body: &[u8]) -> Response {
    let explained = switchboard::report::explain(&snapshot.plan, &snapshot.world, body);
    let status = if is_request_error(&explained.decision) { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    json_response(status, explained.to_json(snapshot.generation))
}

/// `GET /v1/rules`: the registered rules and channels and every channel's
/// chain in force.
#[utoipa::path(get, path = "/v1/rules", tag = "configuration",
    responses((status = 200, description = "`rules`, `channels`, `chains` and `order` (see `switchboard rules`)", body = Object)))]
pub(crate) async fn rules(axum::extract::State(state): St) -> Response {
    let snapshot = state.0.live.snapshot();
    json_value(StatusCode::OK, &switchboard::report::rules_json(&state.0.registry, Some(&snapshot.plan)))
}

/// The status object of docs/service.md plus what the service adds.
fn status_value(state: &State) -> Value {
    let mut status = switchboard::report::status_json(&state.0.live.status());
    status["ready"] = json!(true);
    status["version"] = json!(env!("CARGO_PKG_VERSION"));
    status["dry_run"] = json!(state.0.dry_run);
    status["max_body_bytes"] = json!(state.0.max_body_bytes);
    status["decision_log"] = match &state.0.log {
        Some(log) => json!({"target": log.target().to_string(), "dropped": log.dropped()}),
        None => Value::Null,
    };
    status["store"] = state.0.live.store_health().map_or(Value::Null, |health| store_value(&health));
    // Live state (docs/live-state.md): instances whose `connected` an event overrides.
    status["live"] = json!({
        "overridden": state.0.live.overridden_instances().ok(),
        "quarantined": state.0.live.quarantined_instances().ok(),
    });
    status
}

/// The `store` object of `/v1/status`: the capacity store in force and its
/// health.
fn store_value(health: &switchboard::StoreHealth) -> Value {
    use switchboard::report::rfc3339;
    json!({
        "kind": health.kind.as_str(),
        "on_store_error": health.on_store_error.as_str(),
        "healthy": health.healthy,
        "since": rfc3339(health.since),
        "checked_at": health.checked_at.map(rfc3339),
        "last_error": health.last_error,
        "last_error_at": health.last_error_at.map(rfc3339),
        "errors": health.errors,
    })
}

/// `GET /v1/status`: the reload status and the capacity store's health.
#[utoipa::path(get, path = "/v1/status", tag = "configuration",
    responses((status = 200, description = "The reload status and the capacity store's health (`store`)", body = crate::openapi::StatusDoc)))]
pub(crate) async fn status(axum::extract::State(state): St) -> Response {
    // Counting live state may read Redis: off the async workers.
    match tokio::task::spawn_blocking(move || status_value(&state)).await {
        Ok(value) => json_value(StatusCode::OK, &value),
        Err(_) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, "the status could not be read; retry"),
        ),
    }
}

/// `POST /v1/reload` (admin): reloads now.
#[utoipa::path(post, path = "/v1/reload", tag = "admin",
    responses(
        (status = 200, description = "Reloaded (or unchanged): the status, with `result`", body = crate::openapi::StatusDoc),
        (status = 401, description = "--admin-token-file is set and the bearer token is missing or wrong", body = crate::openapi::ErrorDoc),
        (status = 422, description = "The files are invalid; the last good configuration stays", body = crate::openapi::ReloadErrorsDoc),
    ),
    security(("bearer" = [])))]
pub(crate) async fn reload(axum::extract::State(state): St) -> Response {
    let live = state.0.live.clone();
    let outcome = tokio::task::spawn_blocking(move || live.try_reload()).await;
    match outcome {
        Ok(Ok(event)) => {
            let mut value = status_value(&state);
            value["result"] = json!(match event {
                switchboard::ReloadEvent::Unchanged { .. } => "unchanged",
                _ => "reloaded",
            });
            json_value(StatusCode::OK, &value)
        }
        Ok(Err(errors)) => json_value(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"errors": switchboard::embed::diagnostics_json(&errors)}),
        ),
        Err(_) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, "the reload could not run; retry"),
        ),
    }
}

/// The body of `POST /v1/forget`: an object of exactly the non-empty
/// strings `location`, `channel` and `contact`, in that order; else why not.
fn forget_body(body: &[u8]) -> Result<[String; 3], String> {
    const FIELDS: [&str; 3] = ["location", "channel", "contact"];
    let shape = "the body must be a JSON object with exactly the strings `location`, `channel` and `contact`";
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("{shape}: {e}"))?;
    let Value::Object(object) = value else { return Err(shape.to_owned()) };
    if let Some(extra) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("{shape}: unknown field `{extra}`"));
    }
    let field = |name: &str| match object.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("{shape}: `{name}` is empty")),
        Some(_) => Err(format!("{shape}: `{name}` is not a string")),
        None => Err(format!("{shape}: `{name}` is missing")),
    };
    Ok([field(FIELDS[0])?, field(FIELDS[1])?, field(FIELDS[2])?])
}

/// `POST /v1/forget` (admin): erases one conversation memory (docs/capacity.md).
#[utoipa::path(post, path = "/v1/forget", tag = "admin",
    request_body(content = crate::openapi::ForgetDoc, description = "`{\"location\", \"channel\", \"contact\"}`, nothing else"),
    responses(
        (status = 200, description = "`{\"forgotten\": true}` when a memory was erased, `false` when there was none", body = Object),
        (status = 400, description = "The body is not that object, or names a channel that is not registered", body = crate::openapi::ErrorDoc),
        (status = 401, description = "--admin-token-file is set and the bearer token is missing or wrong", body = crate::openapi::ErrorDoc),
        (status = 404, description = "The location is not in the world file in force", body = crate::openapi::ErrorDoc),
        (status = 503, description = "The store cannot answer", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub(crate) async fn forget(axum::extract::State(state): St, body: Bytes) -> Response {
    let [location, channel, contact] = match forget_body(&body) {
        Ok(fields) => fields,
        Err(message) => {
            return json_value(StatusCode::BAD_REQUEST, &error_body(StatusCode::BAD_REQUEST, &message));
        }
    };
    // A location or channel the configuration does not know is named, not
    // answered `{"forgotten": false}` as if there had been nothing to erase.
    let snapshot = state.0.live.snapshot();
    let Some(channel) = snapshot.plan.registry().channel_id(&channel).map(str::to_owned) else {
        let known = snapshot.plan.registry().channel_ids().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        let message = format!("unknown channel `{channel}`; the registered channels are {known}");
        return json_value(StatusCode::BAD_REQUEST, &error_body(StatusCode::BAD_REQUEST, &message));
    };
    if !snapshot.world.is_no_file() && snapshot.world.location(&location).is_none() {
        let message = format!("unknown location `{location}`: it is not in the world file in force");
        return json_value(StatusCode::NOT_FOUND, &error_body(StatusCode::NOT_FOUND, &message));
    }
    let live = state.0.live.clone();
    let outcome = tokio::task::spawn_blocking(move || live.forget(&location, &channel, &contact)).await;
    match outcome {
        Ok(Ok(forgotten)) => json_value(StatusCode::OK, &json!({"forgotten": forgotten})),
        Ok(Err(e)) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, &format!("{e}; retry when the store answers")),
        ),
        Err(_) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, "the request could not run; retry"),
        ),
    }
}

/// `GET /healthz`: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process runs", body = Object)))]
pub(crate) async fn healthz() -> Response {
    json_value(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once a configuration is in force.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "A configuration is in force", body = Object),
              (status = 503, description = "No configuration is in force yet", body = Object)))]
pub(crate) async fn readyz(axum::extract::State(state): St) -> Response {
    let generation = state.0.live.snapshot().generation;
    if generation > 0 {
        json_value(StatusCode::OK, &json!({"ready": true, "generation": generation}))
    } else {
        json_value(StatusCode::SERVICE_UNAVAILABLE, &json!({"ready": false}))
    }
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format (`text/plain; version=0.0.4`), or OpenMetrics when the Accept header asks for it", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(axum::extract::State(state): St, headers: HeaderMap) -> Response {
    let m = &state.0.metrics;
    let status = state.0.live.status();
    m.generation.set(i64::try_from(status.generation).unwrap_or(i64::MAX));
    m.last_reload_successful.set(i64::from(status.last_error.is_none()));
    state.sync_store_metrics();
    if let Ok(quarantined) = state.0.live.quarantined_instances() {
        m.instances_quarantined.set(i64::try_from(quarantined).unwrap_or(i64::MAX));
    }
    if let Some(log) = &state.0.log {
        let dropped = log.dropped();
        let seen = m.log_dropped.get();
        if dropped > seen {
            m.log_dropped.inc_by(dropped - seen);
        }
    }
    // OpenMetrics for a scraper that asks for it (Prometheus does), the
    // classic text format otherwise.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", m.encode())
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", m.encode_classic())
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of these routes.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
pub(crate) async fn openapi() -> Response {
    json_response(StatusCode::OK, crate::openapi_json())
}

/// Unknown routes: 404 with a JSON error.
async fn not_found(uri: axum::http::Uri) -> Response {
    let message = format!("no route {}; see GET /openapi.json for the routes", uri.path());
    json_value(StatusCode::NOT_FOUND, &error_body(StatusCode::NOT_FOUND, &message))
}

/// Admin routes: with a token, `Authorization: Bearer <token>` or 401.
async fn require_admin(axum::extract::State(state): St, request: Request, next: Next) -> Response {
    if let Some(token) = &state.0.admin_token {
        if !bearer_matches(request.headers(), token) {
            let body = error_body(
                StatusCode::UNAUTHORIZED,
                "this admin route needs `Authorization: Bearer <token>` with the token of --admin-token-file",
            );
            let mut response = json_value(StatusCode::UNAUTHORIZED, &body);
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// Whether the request carries the bearer token (compared in constant time).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(given) = given.strip_prefix("Bearer ").or_else(|| given.strip_prefix("bearer ")) else { return false };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bound on requests at once: beyond it, 503 with `Retry-After`.
/// `/healthz` and `/metrics` are exempt (a liveness probe and a scrape must
/// answer under load).
async fn limit_concurrency(axum::extract::State(state): St, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/metrics" {
        return next.run(request).await;
    }
    match state.0.concurrency.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let body = error_body(StatusCode::SERVICE_UNAVAILABLE, "too many requests at once; retry after a second");
            let mut response = json_value(StatusCode::SERVICE_UNAVAILABLE, &body);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// The most a 413 reads of a body it refuses before answering, and for how
/// long: a client that sends its whole body before reading the answer
/// (most HTTP clients) then gets the 413 instead of a reset connection.
const DRAIN_MAX_BYTES: u64 = 64 << 20;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// A body whose `Content-Length` is over `--max-body-bytes`: 413, after
/// reading (and discarding) what the client sends, within bounds. A body
/// without a length is cut at the limit by `RequestBodyLimitLayer`.
async fn refuse_declared_oversize(axum::extract::State(state): St, request: Request, next: Next) -> Response {
    let max = u64::try_from(state.0.max_body_bytes).unwrap_or(u64::MAX);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(length) = declared.filter(|n| *n > max) else { return next.run(request).await };
    if length <= DRAIN_MAX_BYTES {
        let drain = async {
            use http_body_util::BodyExt as _;
            let mut body = request.into_body();
            while let Some(Ok(_)) = body.frame().await {}
        };
        let _ = tokio::time::timeout(DRAIN_MAX_TIME, drain).await;
    }
    let mut response = StatusCode::PAYLOAD_TOO_LARGE.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Counts every answer in `switchboard_http_requests_total{route,status}`.
async fn count_http(axum::extract::State(state): St, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    let labels = crate::metrics::HttpLabels { route, status: response.status().as_u16() };
    state.0.metrics.http_requests.get_or_create(&labels).inc();
    response
}

/// Gives the errors produced by layers and the router (405, 408, 413, …,
/// and the 500 of a caught panic, which no input should cause) a JSON body
/// like every other error.
async fn json_errors(axum::extract::State(state): St, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(status = status.as_u16(), path = %path, "request failed inside the service");
    }
    let is_json =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the {}-byte limit (--max-body-bytes)", state.0.max_body_bytes)
        }
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method (see the Allow header)".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "the request took too long to arrive".to_owned(),
        other => other.canonical_reason().unwrap_or("error").to_owned(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(error_body(status, &message).to_string()))
}

/// The application: every route and layer.
pub(crate) fn app(state: State, max_body_bytes: usize, request_timeout: Duration) -> Router {
    let admin = Router::new()
        .route("/v1/reload", post(reload))
        .route("/v1/forget", post(forget))
        .route("/v1/events", post(crate::live_routes::events))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/v1/select", post(select))
        .route("/v1/select/batch", post(select_batch))
        .route("/v1/explain", post(explain))
        .route("/v1/rules", get(rules))
        .route("/v1/status", get(status))
        .route("/v1/instances", get(crate::live_routes::instances))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(admin)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_declared_oversize))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), limit_concurrency))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), count_http))
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_must_match_exactly() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "t0k"));
        for (given, ok) in [("Bearer t0k", true), ("Bearer t0k ", true), ("Bearer t0", false), ("Basic t0k", false)] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(given));
            assert_eq!(bearer_matches(&headers, "t0k"), ok, "{given}");
        }
    }
}
