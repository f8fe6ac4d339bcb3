//! A fleet on one Redis (docs/capacity.md): real `switchboard serve` processes
//! sharing a real `redis-server` of the test's own. Exact totals under
//! concurrent load across processes; Redis killed mid-load and restarted on
//! the same port, with `fail_closed` and `fail_open`, and the store's health
//! in `/v1/status` and `/metrics`. Decisions carry `now`, so windows are
//! fixed; every wait polls with a deadline.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::redis_server::{start_tls, RedisCluster, RedisServer, TestCa};
use crate::serve::{get, get_text, parse_metrics, post, Server};
use crate::util::{s, temp_with};

const DEADLINE: Duration = Duration::from_secs(10);
const NOW: &str = "2026-11-25T14:00:00Z"; // 09:00 in New York: day 20261125, hour 09 at -05:00

const RULES: &str =
    "rules: [manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available]\n";

/// Pool brand-a (250 a day) over wa-1 (120 a day) and wa-2 (200 a day);
/// wa-3 alone (150 an hour). Room for exactly 250 + 150 = 400 decisions.
const SMALL_LIMITS: &str = "locations:
  - id: shop
    timezone: America/New_York
    pools: [{id: brand-a, limits: {per_day: 250}}]
    instances:
      - {id: wa-1, channel: whatsapp, phone: '+1 555 0101', connected: true, pool: brand-a, limits: {per_day: 120}}
      - {id: wa-2, channel: whatsapp, phone: '+1 555 0102', connected: true, pool: brand-a, limits: {per_day: 200}}
      - {id: wa-3, channel: whatsapp, phone: '+1 555 0103', connected: true, limits: {per_hour: 150}}
";

fn rules_for(redis: &RedisServer, on_store_error: &str) -> String {
    format!(
        "{RULES}capacity: {{store: redis, redis_url: '{}', key_prefix: 'fleet:', on_store_error: {on_store_error}}}\n",
        redis.url()
    )
}

fn request(contact: usize) -> String {
    format!(r#"{{"location":"shop","channel":"whatsapp","body":"hi","now":"{NOW}","contact":{{"id":"c-{contact}"}}}}"#)
}

/// `GET key` on the test's redis-server, in RESP; `None` for a missing key.
fn redis_get(redis: &RedisServer, key: &str) -> Option<i64> {
    let mut stream = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 256];
    loop {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "redis closed the connection");
        reply.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        if text == "$-1\r\n" {
            return None;
        }
        let lines: Vec<&str> = text.split("\r\n").collect();
        if lines.len() >= 3 {
            assert!(lines[0].starts_with('$'), "unexpected reply to GET {key}: {text:?}");
            return Some(lines[1].parse().unwrap());
        }
    }
}

/// What a decision answered: the selected instance, or `code/kind`.
fn outcome(status: u16, decision: &Value) -> String {
    assert_eq!(status, 200, "{decision}");
    match decision["instance"]["id"].as_str() {
        Some(id) => id.to_owned(),
        None => format!("{}/{}", decision["error"]["code"], decision["error"]["kind"].as_str().unwrap_or("")),
    }
}

/// Polls `what` until it answers `Some`, or fails after the deadline.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < end, "{what}: not within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_serve_processes_on_one_redis_never_exceed_a_limit_and_count_every_selection_once() {
    let redis = RedisServer::start();
    let dir = temp_with(&[("rules.yaml", &rules_for(&redis, "fail_closed")), ("world.yaml", SMALL_LIMITS)]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let args = ["--rules", s(&rules), "--world", s(&world)];
    let servers = [Server::start(&args), Server::start(&args)];
    let urls: Vec<String> = servers.iter().map(|server| server.url("/v1/select")).collect();

    // 1,000 requests from 40 threads, each alternating between the two
    // processes, all at once.
    const THREADS: usize = 40;
    const EACH: usize = 25;
    let start = Arc::new(std::sync::Barrier::new(THREADS));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (urls, start, answers) = (urls.clone(), start.clone(), answers.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                for i in 0..EACH {
                    let n = t * EACH + i;
                    let (status, decision) = post(&urls[n % 2], &request(n));
                    mine.push((n % 2, outcome(status, &decision), decision["decision_id"].as_str().map(str::to_owned)));
                }
                answers.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    assert_eq!(answers.len(), THREADS * EACH);

    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_process = [0usize; 2];
    for (process, outcome, _) in answers.iter() {
        *totals.entry(outcome.as_str()).or_default() += 1;
        if !outcome.contains('/') {
            per_process[*process] += 1;
        }
    }
    let ids: HashSet<&str> = answers.iter().filter_map(|(_, _, id)| id.as_deref()).collect();
    assert_eq!(ids.len(), answers.len(), "decision ids are unique across the fleet");

    let count = |key: &str| totals.get(key).copied().unwrap_or(0);
    let (wa1, wa2, wa3) = (count("wa-1"), count("wa-2"), count("wa-3"));
    assert!(wa1 <= 120 && wa2 <= 200, "an instance limit was exceeded: {totals:?}");
    assert_eq!(wa1 + wa2, 250, "the pool's day is used exactly: {totals:?}");
    assert_eq!(wa3, 150, "wa-3's hour is used exactly: {totals:?}");
    assert_eq!(count("106/capacity_exhausted"), 600, "{totals:?}");
    assert_eq!(totals.len(), 4, "nothing else was answered: {totals:?}");
    assert!(per_process.iter().all(|n| *n > 0), "both processes selected: {per_process:?}");

    // Every selected decision is counted exactly once, in Redis.
    let key = |subject: &str, window: &str| format!("fleet:{{shop}}:{subject}:{window}");
    assert_eq!(redis_get(&redis, &key("i:wa-1", "d20261125")), Some(wa1 as i64));
    assert_eq!(redis_get(&redis, &key("i:wa-2", "d20261125")), Some(wa2 as i64));
    assert_eq!(redis_get(&redis, &key("p:brand-a", "d20261125")), Some(250));
    assert_eq!(redis_get(&redis, &key("i:wa-3", "h20261125T09-0500")), Some(150));

    // Both processes see the shared counts: one more is refused by either,
    // and explain (which never counts) names the limits reached.
    for server in &servers {
        let (status, decision) = post(&server.url("/v1/select"), &request(5000));
        assert_eq!(outcome(status, &decision), "106/capacity_exhausted");
        let (status, explained) = post(&server.url("/v1/explain"), &request(5001));
        assert_eq!(status, 200);
        let table = explained["table"].as_str().unwrap();
        assert!(table.contains("wa-3 at capacity: 150/150 this hour"), "{table}");
    }
    assert_eq!(redis_get(&redis, &key("p:brand-a", "d20261125")), Some(250), "refusals count nothing");
    // The next hour frees wa-3 only; the next local day frees the pool too.
    let later = request(6000).replace(NOW, "2026-11-25T15:00:00Z");
    let (status, decision) = post(&urls[0], &later);
    assert_eq!(outcome(status, &decision), "wa-3");
    let tomorrow = request(6001).replace(NOW, "2026-11-26T05:00:00Z");
    let (status, decision) = post(&urls[1], &tomorrow);
    assert_eq!(outcome(status, &decision), "wa-1");
    for server in &servers {
        let status = get(&server.url("/v1/status")).1;
        assert_eq!(status["store"]["kind"], "redis", "{status}");
        assert_eq!(status["store"]["healthy"], true, "{status}");
    }
}

/// A request stream against `url` on its own thread until stopped; every
/// answer's outcome, or the transport error.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let answer = match crate::serve::agent().post(&url).send(request(n).as_str()) {
                    Ok(response) => {
                        let (status, body) = crate::serve::answer(response);
                        if status == 200 {
                            outcome(status, &crate::serve::json_of(&body))
                        } else {
                            format!("HTTP {status}: {body}")
                        }
                    }
                    Err(e) => format!("transport: {e}"),
                };
                out.lock().unwrap().push(answer);
            }
        });
        Load { stop, seen, thread: Some(thread) }
    }

    fn count(&self, outcome: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|o| *o == outcome).count()
    }

    /// Stops the stream; every outcome seen.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn store_status(server: &Server) -> Value {
    get(&server.url("/v1/status")).1["store"].clone()
}

fn metric(server: &Server, name: &str) -> f64 {
    let page = get_text(&server.url("/metrics")).1;
    parse_metrics(&page).get(name).copied().unwrap_or_else(|| panic!("no {name} in:\n{page}"))
}

#[test]
fn serve_survives_redis_going_down_mid_load_and_recovers_when_it_returns() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    // One limited instance that never runs out: every decision needs Redis.
    let world = "locations:
  - id: shop
    timezone: America/New_York
    instances:
      - {id: wa-1, channel: whatsapp, phone: '+1 555 0101', connected: true, limits: {per_day: 1000000000}}
";
    let dir = temp_with(&[
        ("closed.yaml", &rules_for(&redis, "fail_closed")),
        ("open.yaml", &rules_for(&redis, "fail_open")),
        ("world.yaml", world),
    ]);
    let start = |rules: &str| {
        let (rules, world) = (dir.path().join(rules), dir.path().join("world.yaml"));
        Server::start(&["--rules", s(&rules), "--world", s(&world)])
    };
    let (closed, open) = (start("closed.yaml"), start("open.yaml"));
    let loads = [Load::start(closed.url("/v1/select")), Load::start(open.url("/v1/select"))];
    poll("both processes select through Redis", || loads.iter().all(|l| l.count("wa-1") >= 20).then_some(()));
    assert_eq!(store_status(&closed)["healthy"], true);

    // Redis dies under load.
    redis.kill();
    poll("fail_closed answers 108 store_unavailable", || (loads[0].count("108/store_unavailable") >= 10).then_some(()));
    let (status, decision) = post(&open.url("/v1/select"), &request(1));
    assert_eq!(outcome(status, &decision), "wa-1", "fail_open decides without limits");
    let trace = decision["trace"].to_string();
    assert!(trace.contains("decided without limits"), "{trace}");
    let (status, decision) = post(&closed.url("/v1/select"), &request(2));
    assert_eq!(outcome(status, &decision), "108/store_unavailable");
    assert!(decision["error"]["message"].as_str().unwrap().contains("fail_closed"), "{decision}");
    for server in [&closed, &open] {
        let store = poll("the status says the store is down", || {
            let store = store_status(server);
            (store["healthy"] == false).then_some(store)
        });
        assert_eq!(store["kind"], "redis");
        assert!(store["last_error"].as_str().is_some_and(|e| e.contains("redis")), "{store}");
        assert!(store["errors"].as_u64().unwrap() > 0, "{store}");
        assert_eq!(metric(server, "switchboard_store_up"), 0.0);
        assert!(metric(server, "switchboard_store_errors_total") > 0.0);
        assert_eq!(get(&server.url("/healthz")).0, 200, "the service stays up");
    }

    // Redis returns on the same port: both recover without a restart.
    let _redis = RedisServer::start_on(port);
    let before = loads[0].count("wa-1");
    poll("fail_closed selects again", || (loads[0].count("wa-1") >= before + 20).then_some(()));
    for server in [&closed, &open] {
        poll("the status says the store is back", || (store_status(server)["healthy"] == true).then_some(()));
        assert_eq!(metric(server, "switchboard_store_up"), 1.0);
        let (status, decision) = post(&server.url("/v1/select"), &request(3));
        assert_eq!(outcome(status, &decision), "wa-1");
        assert!(!decision["trace"].to_string().contains("decided without limits"), "{decision}");
    }
    let store = store_status(&closed);
    assert!(store["last_error"].is_string() && store["last_error_at"].is_string(), "the last error is kept: {store}");

    // Nothing but selections and 108s, never a 5xx nor a dropped request.
    let [closed_seen, open_seen] = loads.map(Load::finish);
    let odd: Vec<&String> = closed_seen.iter().filter(|o| *o != "wa-1" && *o != "108/store_unavailable").collect();
    assert!(odd.is_empty(), "fail_closed answered: {odd:?}");
    let odd: Vec<&String> = open_seen.iter().filter(|o| *o != "wa-1").collect();
    assert!(odd.is_empty(), "fail_open answered: {odd:?}");
}

#[test]
fn a_conversation_remembered_by_one_replica_is_recalled_by_the_other_and_forgotten_by_either() {
    let redis = RedisServer::start();
    let rules = format!(
        "rules:\n  - temporary_switch\n  - rule: conversation\n    ttl: 1h\n  - rule: any_available\n    strategy: round_robin\n\
         capacity: {{store: redis, redis_url: '{}', key_prefix: 'conv:'}}\n",
        redis.url()
    );
    let world = "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true}\n      - {id: wa-3, channel: whatsapp, phone: '3', connected: true}\n";
    let dir = temp_with(&[("rules.yaml", &rules), ("world.yaml", world)]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let args = ["--rules", s(&rules), "--world", s(&world)];
    let (a, b) = (Server::start(&args), Server::start(&args));
    let select = |server: &Server, contact: usize| {
        let (status, decision) = post(&server.url("/v1/select"), &request(contact));
        (outcome(status, &decision), decision["rule"].as_str().unwrap_or("").to_owned())
    };
    // Replica A chooses for 20 contacts; replica B recalls every one of them.
    let first: Vec<String> = (0..20).map(|c| select(&a, c).0).collect();
    assert!(first.iter().collect::<HashSet<_>>().len() > 1, "round robin spread the contacts: {first:?}");
    for (c, id) in first.iter().enumerate() {
        assert_eq!(select(&b, c), (id.clone(), "conversation".to_owned()), "contact c-{c} on replica B");
    }
    // Forgotten through B (admin route, loopback: no token), A chooses anew.
    let forget = r#"{"location":"shop","channel":"whatsapp","contact":"c-0"}"#;
    let (status, body) = post(&b.url("/v1/forget"), forget);
    assert_eq!((status, body["forgotten"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(select(&a, 0).1, "any_available");
    assert_eq!(select(&a, 1).1, "conversation");
}

#[test]
fn serve_answers_108_within_the_timeout_while_redis_hangs_and_recovers_when_it_resumes() {
    let redis = RedisServer::start();
    let world = "locations:
  - id: shop
    instances:
      - {id: wa-1, channel: whatsapp, phone: '+1 555 0101', connected: true, limits: {per_day: 1000000000}}
";
    let dir = temp_with(&[("rules.yaml", &rules_for(&redis, "fail_closed")), ("world.yaml", world)]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    let url = server.url("/v1/select");
    let (status, decision) = post(&url, &request(1));
    assert_eq!(outcome(status, &decision), "wa-1");

    // Redis stops answering (SIGSTOP): connections stay open, replies never
    // come. Each decision gives up after the store's 1 s I/O timeout.
    let signal = |name: &str| {
        let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(redis.pid().to_string()).status();
        assert!(status.unwrap().success());
    };
    signal("STOP");
    let started = Instant::now();
    let (status, decision) = post(&url, &request(2));
    let waited = started.elapsed();
    assert_eq!(outcome(status, &decision), "108/store_unavailable", "{decision}");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert!(decision["error"]["message"].as_str().unwrap().contains("timed out"), "{decision}");
    let store = poll("the status says the store is down", || {
        let store = store_status(&server);
        (store["healthy"] == false).then_some(store)
    });
    assert!(store["errors"].as_u64().unwrap() >= 1, "{store}");
    assert_eq!(get(&server.url("/healthz")).0, 200);

    signal("CONT");
    poll("decisions select again", || {
        let (status, decision) = post(&url, &request(3));
        (outcome(status, &decision) == "wa-1").then_some(())
    });
    poll("the status says the store is back", || (store_status(&server)["healthy"] == true).then_some(()));
}

/// Thirty locations, each with one instance of 20 a day: room for exactly
/// 600 decisions, spread over a cluster's three masters by hash tag.
fn thirty_locations() -> String {
    let mut world = String::from("locations:\n");
    for l in 0..30 {
        world.push_str(&format!(
            "  - id: loc-{l}\n    instances:\n      - {{id: wa-{l}, channel: whatsapp, phone: '+1 555 01{l:02}', connected: true, limits: {{per_day: 20}}}}\n"
        ));
    }
    world
}

fn at(location: usize, contact: usize) -> String {
    format!(
        r#"{{"location":"loc-{location}","channel":"whatsapp","body":"hi","now":"{NOW}","contact":{{"id":"c-{contact}"}}}}"#
    )
}

#[test]
fn two_serve_processes_on_a_redis_cluster_are_exact_and_a_dead_master_fails_only_its_locations() {
    let mut cluster = RedisCluster::start();
    let seeds = cluster.seeds().iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ");
    let rules = format!("{RULES}capacity: {{store: redis, redis_cluster: [{seeds}], key_prefix: 'c:'}}\n");
    let dir = temp_with(&[("rules.yaml", &rules), ("world.yaml", &thirty_locations())]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let args = ["--rules", s(&rules), "--world", s(&world)];
    let servers = [Server::start(&args), Server::start(&args)];
    let urls: Vec<String> = servers.iter().map(|server| server.url("/v1/select")).collect();

    // 900 requests (30 per location, 10 more than its limit allows) from
    // 30 threads over both processes at once.
    let answers = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for t in 0..30 {
            let (urls, answers) = (&urls, answers.clone());
            scope.spawn(move || {
                for i in 0..30 {
                    let location = (t + i) % 30;
                    let (status, decision) = post(&urls[i % 2], &at(location, t * 30 + i));
                    answers.lock().unwrap().push((location, outcome(status, &decision)));
                }
            });
        }
    });
    let answers = answers.lock().unwrap();
    for l in 0..30 {
        let mine: Vec<&String> = answers.iter().filter(|(loc, _)| *loc == l).map(|(_, o)| o).collect();
        let selected = mine.iter().filter(|o| **o == &format!("wa-{l}")).count();
        let refused = mine.iter().filter(|o| **o == "106/capacity_exhausted").count();
        assert_eq!((selected, refused), (20, 10), "loc-{l}: {mine:?}");
    }
    let owners: Vec<usize> = (0..30).map(|l| cluster.node_of(&format!("{{loc-{l}}}"))).collect();
    assert_eq!(owners.iter().collect::<HashSet<_>>().len(), 3, "the locations spread over every master");
    for server in &servers {
        assert_eq!(store_status(server)["healthy"], true);
    }

    // One master dies: its locations answer 108, every other location
    // still decides, and the service stays up.
    let dead = owners[0];
    cluster.nodes[dead].kill();
    let tomorrow = |location: usize, contact: usize| at(location, contact).replace(NOW, "2026-11-26T14:00:00Z");
    for (l, owner) in owners.iter().enumerate() {
        let (status, decision) = post(&urls[l % 2], &tomorrow(l, 5000 + l));
        let expected = if *owner == dead { "108/store_unavailable".to_owned() } else { format!("wa-{l}") };
        assert_eq!(outcome(status, &decision), expected, "loc-{l} (node {owner}, node {dead} down): {decision}");
    }
    for server in &servers {
        assert_eq!(get(&server.url("/healthz")).0, 200);
        let store = poll("the status says the cluster is not whole", || {
            let store = store_status(server);
            (store["healthy"] == false).then_some(store)
        });
        assert!(store["last_error"].as_str().is_some_and(|e| e.contains("redis")), "{store}");
    }

    // It returns (its slots, no data): its locations decide again by
    // themselves.
    cluster.nodes[dead].restart();
    for (l, _) in owners.iter().enumerate().filter(|(_, owner)| **owner == dead) {
        poll("the returned master's locations select again", || {
            let (status, decision) = post(&urls[l % 2], &tomorrow(l, 6000 + l));
            (outcome(status, &decision) == format!("wa-{l}")).then_some(())
        });
    }
    for server in &servers {
        poll("the status says the cluster is back", || (store_status(server)["healthy"] == true).then_some(()));
    }
}

#[test]
fn serve_reaches_redis_over_tls_as_an_acl_user_and_names_a_wrong_password() {
    let ca = TestCa::new("switchboard test CA");
    let (_redis, tls_port) = start_tls(&ca);
    let world = "locations:
  - id: shop
    instances:
      - {id: wa-1, channel: whatsapp, phone: '+1 555 0101', connected: true, limits: {per_day: 2}}
";
    let rules = |password: &str| {
        format!(
            "{RULES}capacity: {{store: redis, redis_url: 'rediss://alice:{password}@127.0.0.1:{tls_port}/0', tls_ca_file: ca.pem}}\n"
        )
    };
    let ca_pem = std::fs::read_to_string(&ca.ca_file).unwrap();
    let dir = temp_with(&[
        ("good.yaml", &rules("secret")),
        ("wrong.yaml", &rules("wrong-password")),
        ("ca.pem", &ca_pem),
        ("world.yaml", world),
    ]);
    let start = |rules: &str| {
        let (rules, world) = (dir.path().join(rules), dir.path().join("world.yaml"));
        Server::start(&["--rules", s(&rules), "--world", s(&world)])
    };
    // tls_ca_file is found beside the rules file; the limit holds over TLS.
    let good = start("good.yaml");
    let outcomes: Vec<String> = (0..3)
        .map(|c| {
            let (status, decision) = post(&good.url("/v1/select"), &request(c));
            outcome(status, &decision)
        })
        .collect();
    assert_eq!(outcomes, ["wa-1", "wa-1", "106/capacity_exhausted"]);

    let wrong = start("wrong.yaml");
    let (status, decision) = post(&wrong.url("/v1/select"), &request(1));
    assert_eq!(outcome(status, &decision), "108/store_unavailable");
    let message = decision["error"]["message"].as_str().unwrap();
    assert!(message.contains("authentication failed"), "{message}");
    assert!(!message.contains("wrong-password"), "the password is never shown: {message}");
}
