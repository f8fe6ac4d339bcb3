//! `switchboard serve` (docs/service.md): the real binary on port 0, driven over
//! HTTP with a real client; reloads through real files and signals; the
//! decision log read back. Every wait is on an event, with a deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{example, repo_file, run, s, text};

const DEADLINE: Duration = Duration::from_secs(10);

/// A running `switchboard serve`; killed when dropped.
pub(crate) struct Server {
    child: Child,
    base: String,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    /// Starts `serve ARGS --listen 127.0.0.1:0` (unless ARGS listen) and
    /// reads the bound address from the first stderr line.
    pub(crate) fn start(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.arg("serve").args(args);
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(DEADLINE).expect("no listening line on stderr");
        let base = first
            .strip_prefix("switchboard: listening on ")
            .unwrap_or_else(|| panic!("the first stderr line is not the listening line: {first}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Server { child, base, stderr: lines, seen: vec![first] }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_stderr(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no stderr line with {needle:?}; got:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                let all = self.seen.join("\n");
                assert!(!all.contains("panicked"), "panic reached the user: {all}");
                return status;
            }
            assert!(Instant::now() < end, "serve did not exit; stderr:\n{}", self.seen.join("\n"));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `GET /v1/status` until `generation` is `want`.
    fn wait_generation(&self, want: u64) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let status = get(&self.url("/v1/status")).1;
            if status["generation"] == want {
                return status;
            }
            assert!(Instant::now() < end, "generation {want} never came: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(DEADLINE)).build().into()
}

pub(crate) fn answer(mut response: ureq::http::Response<ureq::Body>) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

pub(crate) fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

pub(crate) fn post(url: &str, body: &str) -> (u16, Value) {
    let (status, body) = answer(agent().post(url).send(body).unwrap());
    (status, json_of(&body))
}

pub(crate) fn get(url: &str) -> (u16, Value) {
    let (status, body) = answer(agent().get(url).call().unwrap());
    (status, json_of(&body))
}

pub(crate) fn get_text(url: &str) -> (u16, String) {
    answer(agent().get(url).call().unwrap())
}

/// A decision without the service's fields, to compare with `select`.
fn plain(mut decision: Value) -> Value {
    let object = decision.as_object_mut().unwrap();
    object.remove("decision_id");
    object.remove("generation");
    decision
}

fn example_args() -> Vec<String> {
    let rules = repo_file("rules.yaml");
    let world = example("world.yaml");
    vec!["--rules".into(), s(&rules).to_owned(), "--world".into(), s(&world).to_owned()]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `name{labels} value` lines of a Prometheus text page.
pub(crate) fn parse_metrics(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample: {l}")))
        })
        .collect()
}

fn metric_sum(metrics: &BTreeMap<String, f64>, prefix: &str, with: &[&str]) -> f64 {
    metrics
        .iter()
        .filter(|(k, _)| {
            (k.as_str() == prefix || k.starts_with(&format!("{prefix}{{"))) && with.iter().all(|w| k.contains(w))
        })
        .map(|(_, v)| v)
        .sum()
}

const VALID_RULES: &str = "rules: [manual_override, default_instance, any_available]\n";
const OTHER_RULES: &str = "rules: [manual_override, any_available]\n";
const BAD_RULES: &str = "rules:\n  - manul_override\n";

fn temp_config() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let world = dir.path().join("world.yaml");
    std::fs::write(&rules, VALID_RULES).unwrap();
    std::fs::copy(example("world.yaml"), &world).unwrap();
    (dir, rules, world)
}

/// Replaces a file the way editors and deploy tools do: write a temporary
/// file beside it, then rename it over.
fn replace(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn serve_decisions_equal_select_on_the_example_requests() {
    let args = example_args();
    let mut select_args = vec!["select"];
    select_args.extend(strs(&args));
    let input = std::fs::read_to_string(example("requests.jsonl")).unwrap();
    let expected: Vec<Value> = text(&run(&select_args, &input).stdout).lines().map(json_of).collect();
    let requests: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(expected.len(), requests.len());

    let server = Server::start(&strs(&args));
    let mut ids = std::collections::HashSet::new();
    for (request, want) in requests.iter().zip(&expected) {
        let (status, got) = post(&server.url("/v1/select"), request);
        let code = want["error"]["code"].as_u64();
        assert_eq!(status, if code == Some(100) { 400 } else { 200 }, "{request} → {got}");
        assert_eq!(got["generation"], 1);
        assert!(ids.insert(got["decision_id"].as_str().unwrap().to_owned()), "decision ids repeat");
        assert_eq!(plain(got), *want, "{request}");
    }
    // The batch route: the same decisions, in order, one line each.
    let (status, body) = answer(agent().post(&server.url("/v1/select/batch")).send(input.as_str()).unwrap());
    assert_eq!(status, 200);
    let lines: Vec<Value> = body.lines().map(json_of).collect();
    assert_eq!(lines.len(), expected.len());
    for (got, want) in lines.into_iter().zip(&expected) {
        assert!(ids.insert(got["decision_id"].as_str().unwrap().to_owned()), "decision ids repeat");
        assert_eq!(plain(got), *want);
    }
}

#[test]
fn serve_answers_every_route_with_its_status_code() {
    let mut args = example_args();
    args.extend(["--max-body-bytes".into(), "300".into()]);
    let server = Server::start(&strs(&args));
    let ok = r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#2 }"}"#;

    // 200 for a selection and for a selection error; 400 for code 100.
    let (status, decision) = post(&server.url("/v1/select"), ok);
    assert_eq!((status, decision["instance"]["id"].as_str()), (200, Some("wa-support")));
    let (status, decision) =
        post(&server.url("/v1/select"), r#"{"location":"shop","channel":"whatsapp","body":"{WA#9}"}"#);
    assert_eq!((status, decision["error"]["code"].as_u64()), (200, Some(101)));
    for bad in ["not json", "", r#"{"location":"shop"}"#, r#"{"location":"nowhere","channel":"sms","body":"x"}"#] {
        let (status, decision) = post(&server.url("/v1/select"), bad);
        assert_eq!((status, decision["error"]["code"].as_u64()), (400, Some(100)), "{bad:?} → {decision}");
        assert_eq!(decision["ok"], false);
        assert!(decision["decision_id"].is_string());
    }
    // Not UTF-8: still a code-100 decision.
    let (status, body) = answer(agent().post(&server.url("/v1/select")).send(&b"{\"\xff\"}"[..]).unwrap());
    assert_eq!((status, json_of(&body)["error"]["code"].as_u64()), (400, Some(100)));

    // 413 over --max-body-bytes, on every body route; JSON error.
    let big = format!(r#"{{"location":"shop","channel":"sms","body":"{}"}}"#, "x".repeat(400));
    for route in ["/v1/select", "/v1/select/batch", "/v1/explain"] {
        let (status, error) = post(&server.url(route), &big);
        assert_eq!(status, 413, "{route}");
        assert_eq!(error["error"]["status"], 413);
    }

    // A batch: a bad line gets its code-100 decision and the batch goes on.
    let (status, body) =
        answer(agent().post(&server.url("/v1/select/batch")).send(format!("{ok}\nnope\n\n{ok}\n")).unwrap());
    assert_eq!(status, 200);
    let codes: Vec<Option<u64>> = body.lines().map(|l| json_of(l)["error"]["code"].as_u64()).collect();
    assert_eq!(codes, [None, Some(100), None]);
    // CRLF line ends, a line that is not UTF-8 (answered as such a body is),
    // and a line of a no-break space (not blank: a request, a bad one).
    let mut crlf = format!("{ok}\r\n \t\r\n").into_bytes();
    crlf.extend_from_slice(b"\xff\r\n\xc2\xa0\n");
    let (status, body) = answer(agent().post(&server.url("/v1/select/batch")).send(&crlf[..]).unwrap());
    assert_eq!(status, 200);
    let lines: Vec<Value> = body.lines().map(json_of).collect();
    let codes: Vec<Option<u64>> = lines.iter().map(|l| l["error"]["code"].as_u64()).collect();
    assert_eq!(codes, [None, Some(100), Some(100)], "{body}");
    assert_eq!(lines[1]["error"]["message"], "the request is not valid UTF-8 (first bad byte at offset 0)");

    let (status, explain) = post(&server.url("/v1/explain"), ok);
    assert_eq!(status, 200);
    assert_eq!(explain["decision"]["instance"]["id"], "wa-support");
    assert!(explain["table"].as_str().unwrap().contains("manual_override"), "{explain}");
    assert_eq!(post(&server.url("/v1/explain"), "nope").0, 400);
    // Its decision is written as /v1/select writes one, keys in the same order.
    let (_, selected) = answer(agent().post(&server.url("/v1/select")).send(ok).unwrap());
    let (_, explained) = answer(agent().post(&server.url("/v1/explain")).send(ok).unwrap());
    let inner = explained.strip_prefix(r#"{"decision":{"#).and_then(|t| t.split(r#","table":"#).next()).unwrap();
    let after_id = &selected[selected.find(r#""generation""#).unwrap()..];
    assert_eq!(inner, after_id, "{explained}");

    let (status, rules) = get(&server.url("/v1/rules"));
    assert_eq!(status, 200);
    assert!(rules["rules"].as_array().unwrap().iter().any(|r| r["id"] == "any_available"));
    assert_eq!(rules["order"]["whatsapp"][0], "manual_override");

    let (status, st) = get(&server.url("/v1/status"));
    assert_eq!(status, 200);
    for key in ["generation", "last_attempt", "last_success", "last_error", "rules_sha256", "world_sha256"] {
        assert!(st.get(key).is_some(), "status lacks {key}: {st}");
    }
    let rules_bytes = std::fs::read(repo_file("rules.yaml")).unwrap();
    assert_eq!(st["rules_sha256"], switchboard::sha256_hex(&rules_bytes));
    assert_eq!(st["last_error"], Value::Null);
    // The capacity store in force: memory without a `capacity:` section.
    assert_eq!((&st["store"]["kind"], &st["store"]["healthy"]), (&json!("memory"), &json!(true)), "{st}");
    assert_eq!((&st["store"]["last_error"], &st["store"]["errors"]), (&Value::Null, &json!(0)), "{st}");

    assert_eq!(get(&server.url("/healthz")).0, 200);
    assert_eq!(get(&server.url("/readyz")), (200, json!({"ready": true, "generation": 1})));
    let (status, error) = get(&server.url("/no/such/route"));
    assert_eq!((status, error["error"]["status"].as_u64()), (404, Some(404)));
    let (status, error) = get(&server.url("/v1/select"));
    assert_eq!((status, error["error"]["status"].as_u64()), (405, Some(405)));
    assert_eq!(post(&server.url("/v1/status"), "").0, 405);

    // OpenAPI 3.1, every route of docs/service.md in it.
    let (status, doc) = get(&server.url("/openapi.json"));
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for route in ["/v1/select", "/v1/select/batch", "/v1/explain", "/v1/rules", "/v1/status", "/v1/reload"] {
        assert!(doc["paths"].get(route).is_some(), "{route} missing from the OpenAPI document");
    }
    for route in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/forget"] {
        assert!(doc["paths"].get(route).is_some(), "{route} missing from the OpenAPI document");
    }
    // The schema names every field a decision answer has.
    let props = &doc["components"]["schemas"]["Decision"]["properties"];
    for key in decision.as_object().unwrap().keys() {
        assert!(props.get(key).is_some(), "the Decision schema lacks `{key}`: {props}");
    }
    let props = &doc["components"]["schemas"]["Status"]["properties"];
    for key in st.as_object().unwrap().keys() {
        assert!(props.get(key).is_some(), "the Status schema lacks `{key}`: {props}");
    }
    let props = &doc["components"]["schemas"]["Explain"]["properties"];
    for key in explain.as_object().unwrap().keys() {
        assert!(props.get(key).is_some(), "the Explain schema lacks `{key}`: {props}");
    }
}

#[test]
fn serve_metrics_count_decisions_requests_and_configuration() {
    let server = Server::start(&strs(&example_args()));
    let ok = r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#2 }"}"#;
    for _ in 0..3 {
        assert_eq!(post(&server.url("/v1/select"), ok).0, 200);
    }
    assert_eq!(post(&server.url("/v1/select"), "nope").0, 400);
    // Invented channels do not become label values.
    for channel in ["zz1", "zz2", "WhatsApp"] {
        let request = format!(r#"{{"location":"shop","channel":"{channel}","body":"hi"}}"#);
        post(&server.url("/v1/select"), &request);
    }
    let mut response = agent().get(&server.url("/metrics")).call().unwrap();
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let page = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // The classic format: each series' family declared under its own name.
    assert!(page.contains("# TYPE switchboard_decisions_total counter\n"), "{page}");
    assert!(page.contains("# TYPE switchboard_decision_duration_seconds histogram\n"), "{page}");
    assert!(!page.contains("# EOF"), "{page}");
    let m = parse_metrics(&page);
    let selected =
        r#"switchboard_decisions_total{channel="whatsapp",rule="manual_override",outcome="selected",code="101"}"#;
    assert_eq!(m.get(selected), Some(&3.0), "{page}");
    let bad = r#"switchboard_decisions_total{channel="",rule="",outcome="error",code="100"}"#;
    assert_eq!(m.get(bad), Some(&3.0), "{page}");
    assert!(!page.contains("zz1") && !page.contains("WhatsApp"), "{page}");
    let default =
        r#"switchboard_decisions_total{channel="whatsapp",rule="default_instance",outcome="selected",code="105"}"#;
    assert_eq!(m.get(default), Some(&1.0), "{page}");
    assert_eq!(metric_sum(&m, "switchboard_decision_duration_seconds_count", &[]), 6.0, "{page}");
    assert_eq!(m.get(r#"switchboard_http_requests_total{route="/v1/select",status="200"}"#), Some(&4.0));
    assert_eq!(m.get(r#"switchboard_http_requests_total{route="/v1/select",status="400"}"#), Some(&3.0));
    assert_eq!(m.get("switchboard_config_generation"), Some(&1.0));
    assert_eq!(m.get("switchboard_config_last_reload_successful"), Some(&1.0));
    // The capacity store (memory, without a `capacity:` section) answers.
    assert_eq!(m.get("switchboard_store_up"), Some(&1.0), "{page}");
    assert_eq!(m.get("switchboard_store_errors_total"), Some(&0.0), "{page}");
    // OpenMetrics when asked for.
    let mut response = agent()
        .get(&server.url("/metrics"))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .call()
        .unwrap();
    assert!(response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let open = response.body_mut().read_to_string().unwrap();
    assert!(open.contains("# TYPE switchboard_decisions counter\n") && open.ends_with("# EOF\n"), "{open}");
    let mut again = parse_metrics(&open);
    again.remove(r#"switchboard_http_requests_total{route="/metrics",status="200"}"#); // the first scrape
    assert_eq!(again, m, "both formats carry the same series");
    // Over the default 1 MiB: 413, read by a client that sends the whole
    // body first (the service reads what it refuses, within bounds).
    let (status, error) = post(&server.url("/v1/select"), &"x".repeat(4 << 20));
    assert_eq!((status, error["error"]["status"].as_u64()), (413, Some(413)));
    for result in ["success", "failure", "unchanged"] {
        assert_eq!(m.get(&format!("switchboard_config_reloads_total{{result=\"{result}\"}}")), Some(&0.0), "{page}");
    }
}

#[test]
fn serve_reloads_on_post_valid_and_invalid() {
    let (_dir, rules, world) = temp_config();
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    let request = r#"{"location":"shop","channel":"whatsapp","body":"hi"}"#;
    assert_eq!(post(&server.url("/v1/select"), request).1["rule"], "default_instance");

    // Invalid: 422 with located errors; generation 1 stays in force. Written
    // in place and posted at once (the watcher may see it first: same answer).
    std::fs::write(&rules, BAD_RULES).unwrap();
    let (status, body) = post(&server.url("/v1/reload"), "");
    assert_eq!(status, 422, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["file"], s(&rules));
    assert_eq!((error["line"].as_u64(), error["column"].as_u64()), (Some(2), Some(5)), "{body}");
    assert!(error["message"].as_str().unwrap().contains("manul_override"), "{body}");
    let (status, decision) = post(&server.url("/v1/select"), request);
    assert_eq!(
        (status, decision["generation"].as_u64(), decision["rule"].as_str()),
        (200, Some(1), Some("default_instance"))
    );
    let st = get(&server.url("/v1/status")).1;
    assert!(st["last_error"].as_str().unwrap().contains("manul_override"), "{st}");
    // The reload metrics follow the reload events on their own task: poll.
    let end = Instant::now() + DEADLINE;
    loop {
        let m = parse_metrics(&get_text(&server.url("/metrics")).1);
        let failed = metric_sum(&m, "switchboard_config_reloads_total", &["result=\"failure\""]);
        if m.get("switchboard_config_last_reload_successful") == Some(&0.0) && failed >= 1.0 {
            break;
        }
        assert!(Instant::now() < end, "the failed reload never reached the metrics: {m:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Valid: 200 with the status of the new generation.
    std::fs::write(&rules, OTHER_RULES).unwrap();
    let (status, body) = post(&server.url("/v1/reload"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["generation"], 2, "{body}");
    assert_eq!(body["last_error"], Value::Null);
    let (status, decision) = post(&server.url("/v1/select"), request);
    assert_eq!(
        (status, decision["generation"].as_u64(), decision["rule"].as_str()),
        (200, Some(2), Some("any_available"))
    );
}

#[test]
fn serve_reloads_on_rename_and_on_sighup() {
    let (_dir, rules, world) = temp_config();
    let mut server = Server::start(&["--rules", s(&rules), "--world", s(&world), "--log-format", "json"]);
    replace(&rules, OTHER_RULES);
    let st = server.wait_generation(2);
    assert_eq!(st["order"]["whatsapp"], json!(["manual_override", "any_available"]));
    let line = server.wait_stderr("generation 2 in force");
    let logged = json_of(&line);
    assert_eq!(logged["level"], "INFO", "{line}");

    // SIGHUP with unchanged files: a reload attempt, counted as unchanged.
    let metrics_url = server.url("/metrics");
    let unchanged = || {
        let m = parse_metrics(&get_text(&metrics_url).1);
        metric_sum(&m, "switchboard_config_reloads_total", &["result=\"unchanged\""])
    };
    let before = unchanged();
    server.signal("HUP");
    server.wait_stderr("SIGHUP");
    let end = Instant::now() + DEADLINE;
    loop {
        if unchanged() > before {
            break;
        }
        assert!(Instant::now() < end, "SIGHUP reloaded nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal("TERM");
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn serve_admin_routes_need_the_token_when_a_token_file_is_given() {
    let (dir, rules, world) = temp_config();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut server = Server::start(&["--rules", s(&rules), "--world", s(&world), "--admin-token-file", s(&token)]);
    let reload = |auth: Option<&str>| {
        let mut request = agent().post(&server.url("/v1/reload"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        answer(request.send("").unwrap()).0
    };
    assert_eq!(reload(None), 401);
    assert_eq!(reload(Some("Bearer wrong")), 401);
    assert_eq!(reload(Some("Basic s3cret")), 401);
    assert_eq!(reload(Some("Bearer s3cret")), 200);
    // POST /v1/forget is an admin route too; it checks its body.
    let forget = |auth: Option<&str>, body: &str| {
        let mut request = agent().post(&server.url("/v1/forget"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let (status, body) = answer(request.send(body).unwrap());
        (status, json_of(&body))
    };
    let memory = r#"{"location":"shop","channel":"whatsapp","contact":"c-1"}"#;
    assert_eq!(forget(None, memory).0, 401);
    assert_eq!(forget(Some("Bearer wrong"), memory).0, 401);
    let (status, body) = forget(Some("Bearer s3cret"), memory);
    assert_eq!((status, &body), (200, &serde_json::json!({"forgotten": false})));
    for bad in [
        "",
        "not json",
        "[]",
        r#"{"location":"shop","channel":"whatsapp"}"#,
        r#"{"location":"shop","channel":"whatsapp","contact":"c-1","extra":1}"#,
        r#"{"location":"shop","channel":"whatsapp","contact":7}"#,
        r#"{"location":"shop","channel":"whatsapp","contact":""}"#,
    ] {
        let (status, body) = forget(Some("Bearer s3cret"), bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["status"], 400, "{bad}: {body}");
    }
    // An unknown location or channel is named, not "nothing forgotten"; a
    // channel in another case is the registered one.
    let (status, body) =
        forget(Some("Bearer s3cret"), r#"{"location":"nowhere","channel":"whatsapp","contact":"c-1"}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown location `nowhere`"), "{body}");
    let (status, body) = forget(Some("Bearer s3cret"), r#"{"location":"shop","channel":"telex","contact":"c-1"}"#);
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown channel `telex`") && message.contains("`whatsapp`"), "{body}");
    let (status, body) = forget(Some("Bearer s3cret"), r#"{"location":"shop","channel":"WhatsApp","contact":"c-1"}"#);
    assert_eq!((status, &body), (200, &serde_json::json!({"forgotten": false})));
    // Decision, status, health and metrics routes stay open.
    assert_eq!(post(&server.url("/v1/select"), r#"{"location":"shop","channel":"sms","body":"x"}"#).0, 200);
    assert_eq!(get(&server.url("/v1/status")).0, 200);
    assert_eq!(get_text(&server.url("/metrics")).0, 200);
    // SIGINT stops it as SIGTERM does.
    server.signal("INT");
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn serve_refuses_to_start_exit_2() {
    let (dir, rules, world) = temp_config();
    // Not loopback, no token, no --insecure-admin.
    let out = run(&["serve", "--rules", s(&rules), "--listen", "0.0.0.0:0"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--admin-token-file"), "{}", text(&out.stderr));
    // An invalid rules file, and an invalid world file: located.
    std::fs::write(&rules, BAD_RULES).unwrap();
    let out = run(&["serve", "--rules", s(&rules), "--listen", "127.0.0.1:0"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("{}:2:5:", s(&rules))), "{}", text(&out.stderr));
    std::fs::write(&rules, VALID_RULES).unwrap();
    std::fs::write(&world, "locations: [{id: a, instances: [{id: x, channel: fax}]}]\n").unwrap();
    let out = run(&["serve", "--rules", s(&rules), "--world", s(&world), "--listen", "127.0.0.1:0"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(s(&world)), "{}", text(&out.stderr));
    // Bad arguments; an empty token file.
    assert_eq!(run(&["serve", "--rules", s(&rules), "--listen", "nonsense"], "").status.code(), Some(2));
    assert_eq!(run(&["serve", "--rules", s(&rules), "--max-body-bytes", "0"], "").status.code(), Some(2));
    let token = dir.path().join("token");
    std::fs::write(&token, "  \n").unwrap();
    let out = run(&["serve", "--rules", s(&rules), "--listen", "127.0.0.1:0", "--admin-token-file", s(&token)], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("empty"), "{}", text(&out.stderr));
}

#[test]
fn serve_insecure_admin_allows_a_non_loopback_listen() {
    let (_dir, rules, _world) = temp_config();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(["serve", "--rules", s(&rules), "--listen", "0.0.0.0:0", "--insecure-admin"]);
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("switchboard: listening on http://0.0.0.0:"), "{first}");
}

/// A request whose body is still arriving holds the only slot
/// (`--max-concurrency 1`): others get 503 with `Retry-After`. SIGTERM then
/// stops accepting, the request in flight is answered completely, and the
/// process exits 0 with the decision log flushed.
#[test]
fn serve_sigterm_answers_requests_in_flight_and_flushes_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let mut args = example_args();
    args.extend(["--max-concurrency".into(), "1".into(), "--decision-log".into(), s(&log).to_owned()]);
    let mut server = Server::start(&strs(&args));
    let request = r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#2 }"}"#;
    assert_eq!(post(&server.url("/v1/select"), request).0, 200);

    let addr = server.base.trim_start_matches("http://").to_owned();
    let (head, tail) = request.split_at(20);
    let send_head = || {
        let mut slow = std::net::TcpStream::connect(&addr).unwrap();
        slow.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(slow, "POST /v1/select HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{head}", request.len()).unwrap();
        slow.flush().unwrap();
        slow
    };
    let mut slow = send_head();

    // The slot is taken once the slow request is in its handler.
    let end = Instant::now() + DEADLINE;
    let refused = loop {
        let response = agent().get(&server.url("/v1/status")).call().unwrap();
        if response.status().as_u16() == 503 {
            break response;
        }
        // A poll that held the slot when the slow request arrived had it
        // refused (503 at once): then it is sent again.
        slow.set_nonblocking(true).unwrap();
        let answered = slow.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0);
        slow.set_nonblocking(false).unwrap();
        if answered {
            slow = send_head();
        }
        assert!(Instant::now() < end, "the slow request never held the slot");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(get(&server.url("/healthz")).0, 200, "health stays open under load");

    server.signal("TERM");
    server.wait_stderr("shutting down");
    assert!(std::net::TcpStream::connect(&addr).is_err() || agent().get(&server.url("/healthz")).call().is_err());
    slow.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = json_of(response.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(body["instance"]["id"], "wa-support");
    assert_eq!(server.wait_exit().code(), Some(0));

    // Both decisions are in the log, complete.
    let lines: Vec<Value> = std::fs::read_to_string(&log).unwrap().lines().map(json_of).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["decision_id"], body["decision_id"]);
}

#[test]
fn serve_decision_log_has_one_line_per_decision_with_what_replay_needs() {
    let (dir, rules, world) = temp_config();
    let log = dir.path().join("decisions.jsonl");
    let mut server = Server::start(&["--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)]);
    let request = r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#2 }"}"#;
    let (_, first) = post(&server.url("/v1/select"), request);
    let (_, bad) = post(&server.url("/v1/select"), "nope");
    let (_, batch) =
        answer(agent().post(&server.url("/v1/select/batch")).send(format!("{request}\n{request}\n")).unwrap());
    post(&server.url("/v1/explain"), request); // not a decision made: not logged
    server.signal("TERM");
    assert_eq!(server.wait_exit().code(), Some(0));

    let answers: Vec<Value> = [first, bad].into_iter().chain(batch.lines().map(json_of)).collect();
    let lines: Vec<Value> = std::fs::read_to_string(&log).unwrap().lines().map(json_of).collect();
    assert_eq!(lines.len(), answers.len());
    let rules_sha = switchboard::sha256_hex(&std::fs::read(&rules).unwrap());
    let world_sha = switchboard::sha256_hex(&std::fs::read(&world).unwrap());
    for (line, answer) in lines.iter().zip(&answers) {
        let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = ["decision", "decision_id", "generation", "request", "rules_sha256", "time", "world_sha256"];
        want.sort_unstable();
        assert_eq!(keys, want, "{line}");
        assert_eq!(line["decision_id"], answer["decision_id"]);
        assert_eq!(line["generation"], 1);
        assert_eq!(line["rules_sha256"], rules_sha.as_str());
        assert_eq!(line["world_sha256"], world_sha.as_str());
        assert_eq!(line["decision"], plain(answer.clone()));
        let time = line["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && humantime_like(time), "{time}");
    }
    assert_eq!(lines[0]["request"], json_of(request));
    assert_eq!(lines[1]["request"], "nope");
}

/// `YYYY-MM-DDTHH:MM:SS(.fff)Z`.
fn humantime_like(time: &str) -> bool {
    let b = time.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':'
}

#[test]
fn select_decision_log_matches_its_output_line_for_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let mut args = vec!["select".to_owned()];
    args.extend(example_args());
    args.extend(["--decision-log".into(), s(&log).to_owned()]);
    let input = std::fs::read_to_string(example("requests.jsonl")).unwrap();
    let out = run(&strs(&args), &input);
    assert_eq!(out.status.code(), Some(0));
    let decisions: Vec<Value> = text(&out.stdout).lines().map(json_of).collect();
    let lines: Vec<Value> = std::fs::read_to_string(&log).unwrap().lines().map(json_of).collect();
    assert_eq!(lines.len(), decisions.len());
    // Decided on every core: the log has the same (request, decision) pairs
    // as the output, in any order.
    let requests: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut want: Vec<String> = requests
        .iter()
        .zip(&decisions)
        .map(|(request, decision)| {
            let request = serde_json::from_str::<Value>(request).unwrap_or_else(|_| Value::from(request.trim()));
            json!([request, decision]).to_string()
        })
        .collect();
    let mut got: Vec<String> = lines.iter().map(|l| json!([l["request"], l["decision"]]).to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(lines.iter().all(|l| l["generation"] == 1));
    // --request: one line too; `-` is refused (stdout carries decisions).
    let one = dir.path().join("one.json");
    std::fs::write(&one, r#"{"location":"shop","channel":"sms","body":"hi"}"#).unwrap();
    let mut args = vec!["select".to_owned()];
    args.extend(example_args());
    args.extend(["--request".into(), s(&one).to_owned(), "--decision-log".into(), s(&log).to_owned()]);
    assert_eq!(run(&strs(&args), "").status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), decisions.len() + 1);
    let mut args = vec!["select".to_owned()];
    args.extend(example_args());
    args.extend(["--decision-log".into(), "-".into()]);
    assert_eq!(run(&strs(&args), "").status.code(), Some(2));
}

/// Requests sent just before SIGTERM (some still in the kernel's accept
/// queue, some not yet parsed) are each answered completely.
#[test]
fn serve_sigterm_answers_every_request_already_sent() {
    let mut server = Server::start(&strs(&example_args()));
    let addr = server.base.trim_start_matches("http://").to_owned();
    let request = r#"{"location":"shop","channel":"sms","body":"hi"}"#;
    let sent = std::sync::Arc::new(std::sync::Barrier::new(33));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (addr, sent) = (addr.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(&addr).unwrap();
                stream.set_read_timeout(Some(DEADLINE)).unwrap();
                write!(
                    stream,
                    "POST /v1/select HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{request}",
                    request.len()
                )
                .unwrap();
                sent.wait();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                response
            })
        })
        .collect();
    sent.wait();
    server.signal("TERM");
    for client in clients {
        let response = client.join().unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
        assert!(response.contains(r#""instance":{"id":"sms-main""#), "{response}");
    }
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn select_watch_logs_each_decision_with_the_generation_it_ran_on() {
    let (dir, rules, world) = temp_config();
    let log = dir.path().join("decisions.jsonl");
    let args = ["select", "--watch", "--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)];
    let (mut child, mut stdin, mut stdout) = crate::util::spawn(&args);
    writeln!(stdin, r#"{{"location":"shop","channel":"whatsapp","body":"hi"}}"#).unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(json_of(&line)["rule"], "default_instance");
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let logged: Vec<Value> = std::fs::read_to_string(&log).unwrap().lines().map(json_of).collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["generation"], 1);
    assert_eq!(logged[0]["decision"], json_of(&line));
    assert_eq!(logged[0]["rules_sha256"], switchboard::sha256_hex(VALID_RULES.as_bytes()));
}

/// Reloads while decisions are being made: none fails, generations never go
/// back, and each decision is the one its generation's rules make.
#[test]
fn serve_reloads_never_fail_or_mix_a_decision_in_flight() {
    let (_dir, rules, world) = temp_config();
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    let url = server.url("/v1/select");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let request = r#"{"location":"shop","channel":"whatsapp","body":"hi"}"#;
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, decision) = post(&url, request);
                    assert_eq!(status, 200, "{decision}");
                    seen.push((
                        decision["generation"].as_u64().unwrap(),
                        decision["rule"].as_str().unwrap().to_owned(),
                    ));
                }
                seen
            })
        })
        .collect();
    for generation in 2..=7u64 {
        std::fs::write(&rules, if generation % 2 == 0 { OTHER_RULES } else { VALID_RULES }).unwrap();
        let (status, body) = post(&server.url("/v1/reload"), "");
        assert_eq!(status, 200, "{body}");
        // The watcher may have reloaded the same write first: unchanged then.
        assert_eq!(body["generation"], generation, "{body}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        let seen = client.join().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "a generation went back: {seen:?}");
        for (generation, rule) in seen {
            let want = if generation % 2 == 0 { "any_available" } else { "default_instance" };
            assert_eq!(rule, want, "generation {generation}");
        }
    }
}

#[test]
fn serve_explain_table_shows_the_counts_of_earlier_selections() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    std::fs::write(&rules, "rules: [manual_override, any_available]\n").unwrap();
    std::fs::write(
        &world,
        "locations:\n  - id: shop\n    timezone: Europe/Paris\n    pools: [{id: brand-a, limits: {per_day: 10}}]\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, pool: brand-a, limits: {per_minute: 2, per_day: 1000}}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true, pool: brand-a}\n",
    )
    .unwrap();
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    let request = r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z"}"#;
    let picked: Vec<Value> =
        (0..3).map(|_| post(&server.url("/v1/select"), request).1["instance"]["id"].clone()).collect();
    assert_eq!(picked, ["wa-1", "wa-1", "wa-2"]);
    let (status, explain) = post(&server.url("/v1/explain"), request);
    assert_eq!(status, 200, "{explain}");
    let table = explain["table"].as_str().unwrap();
    let section = "capacity  as of 2026-11-25T14:00:00Z · 2026-11-25 15:00 Europe/Paris\n  \
                   wa-1  2/2 this minute (at capacity), 2/1000 today; pool brand-a 3/10 today\n  \
                   wa-2  no limits; pool brand-a 3/10 today\n";
    assert!(table.contains(section), "{table}");
    assert_eq!(explain["decision"]["instance"]["id"], "wa-2");
    assert!(explain["decision"].get("table").is_none() && !explain["decision"].to_string().contains("capacity  as of"));
    // Explaining counted nothing: the pool still has room for 7 more.
    assert_eq!(post(&server.url("/v1/explain"), request).1["table"].as_str(), Some(table));
}
