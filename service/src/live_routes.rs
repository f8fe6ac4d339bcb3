//! The live-state routes of docs/live-state.md: `POST /v1/events` (admin) and
//! `GET /v1/instances?location=L`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use switchboard::decision_log::Entry;

use crate::routes::{error_body, json_value, State};

type St = axum::extract::State<State>;

/// `POST /v1/events` (admin): one event or JSON Lines from the send path.
#[utoipa::path(post, path = "/v1/events", tag = "admin",
    request_body(content = String, description = "One event (a JSON object) or JSON Lines of events: `instance_status`, `delivery`, `inbound` (docs/live-state.md)", content_type = "application/x-ndjson"),
    responses(
        (status = 200, description = "Every valid line applied, in order: `{\"accepted\": N, \"rejected\": [{\"line\", \"message\"}]}`", body = crate::openapi::RecordedDoc),
        (status = 400, description = "The body is empty or not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "--admin-token-file is set and the bearer token is missing or wrong", body = crate::openapi::ErrorDoc),
        (status = 413, description = "The body is larger than --max-body-bytes", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub(crate) async fn events(axum::extract::State(state): St, body: Bytes) -> Response {
    let text = match std::str::from_utf8(&body) {
        Ok(text) if !text.trim().is_empty() => text.to_owned(),
        Ok(_) => {
            let message = "the body is empty; send one event (a JSON object) or JSON Lines of events";
            return json_value(StatusCode::BAD_REQUEST, &error_body(StatusCode::BAD_REQUEST, message));
        }
        Err(e) => {
            let message = format!("the body is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to());
            return json_value(StatusCode::BAD_REQUEST, &error_body(StatusCode::BAD_REQUEST, &message));
        }
    };
    // With Redis each event is a round trip: off the async workers.
    let work = move || {
        let shared = state.shared();
        let snapshot = shared.live.snapshot();
        let recorded = shared.live.record(&text);
        shared.metrics.count_events(&recorded);
        if let Some(log) = &shared.log {
            for event in &recorded.accepted {
                log.record(Entry::event(snapshot.clone(), event.to_json()));
            }
        }
        json_value(StatusCode::OK, &recorded.to_json())
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(response) => response,
        Err(_) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_body(StatusCode::SERVICE_UNAVAILABLE, "the events could not be applied; retry"),
        ),
    }
}

/// The `location` of a query string (`location=shop&…`), percent-decoded
/// (`+` is a space); `None` when absent, empty or not UTF-8 once decoded.
fn query_location(query: &str) -> Option<String> {
    let raw = query.split('&').find_map(|pair| pair.strip_prefix("location="))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|h| char::from(*h).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|l| !l.is_empty())
}

/// `GET /v1/instances?location=L`: the live state of a location's instances.
#[utoipa::path(get, path = "/v1/instances", tag = "configuration",
    params(("location" = String, Query, description = "The location id")),
    responses(
        (status = 200, description = "The live state of the location's instances (docs/live-state.md)", body = crate::openapi::InstancesDoc),
        (status = 400, description = "No `location` given", body = crate::openapi::ErrorDoc),
        (status = 404, description = "The world in force has no such location", body = crate::openapi::ErrorDoc),
    ))]
pub(crate) async fn instances(axum::extract::State(state): St, uri: axum::http::Uri) -> Response {
    let location = match uri.query().and_then(query_location) {
        Some(location) => location,
        None => {
            let message = "give the location: GET /v1/instances?location=<location id>";
            return json_value(StatusCode::BAD_REQUEST, &error_body(StatusCode::BAD_REQUEST, message));
        }
    };
    let live = state.shared().live.clone();
    let found = tokio::task::spawn_blocking(move || {
        let answer = live.instances(&location);
        (location, answer)
    })
    .await;
    match found {
        Ok((_, Some(answer))) => json_value(StatusCode::OK, &answer),
        Ok((location, None)) => {
            let message = format!("location `{location}` is not in the world in force");
            json_value(StatusCode::NOT_FOUND, &error_body(StatusCode::NOT_FOUND, &message))
        }
        Err(_) => json_value(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": "retry"})),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_location_is_read_from_the_query_string_percent_decoded() {
        assert_eq!(super::query_location("location=shop").as_deref(), Some("shop"));
        assert_eq!(super::query_location("x=1&location=my%20shop%2B").as_deref(), Some("my shop+"));
        assert_eq!(super::query_location("location=a+b").as_deref(), Some("a b"));
        assert_eq!(super::query_location("location="), None);
        assert_eq!(super::query_location("loc=shop"), None);
        assert_eq!(super::query_location("location=%ff"), None);
    }
}
