//! Live-state benchmarks (docs/live-state.md; run: `cargo bench --bench live`;
//! one store only: `cargo bench --bench live -- memory`, `-- redis`). Not a
//! test: prints medians and ratios, gates nothing.
//!
//! The cost of one decision through [`Live`] with live state attached, side
//! by side with the same decision in a `Live` that never received an event,
//! in one run, on two worlds: the example world (examples/world.yaml) and a
//! generated one of 1,000 locations of 10 instances (the shape of
//! `examples/generate.rs`). Every `Live` reads the shipped rules.yaml with a
//! `health:` section (3 failures in a row quarantine an instance for an
//! hour), so the events are all that differ:
//!
//! - **no events**: the reference;
//! - **(a) events elsewhere**: `instance_status` overrides on other
//!   locations (the example world's other one; 100 others of the generated
//!   world), none on the request's;
//! - **(b) override here**: a connected instance of the request's location
//!   (not the one selected) overridden down;
//! - **(c) quarantined here**: a connected instance of the request's
//!   location (not the one selected) quarantined by three failed
//!   deliveries (a disconnected one's quarantine would change nothing).
//!
//! Every case gives the same decision (asserted), so the difference is the
//! live state's cost. The cases alternate round by round, so drift on a
//! shared machine hits them alike. Then the same with `store: redis` on a
//! `redis-server` of the bench's own (skipped, saying so, when
//! `redis-server` is not installed); the world has no limits, so a decision
//! asks Redis nothing but what live state needs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::measure;

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::{Live, Request};

/// The policy of every case: the quarantine lasts the whole run.
const HEALTH: &str = "health: {quarantine_after: 3, cooldown: 1h, max_cooldown: 1h}\n";

/// One world and the events of each case on it.
struct Scenario {
    name: &'static str,
    /// The world's file name (its extension says how it is read).
    file: &'static str,
    world: String,
    request: &'static str,
    location: &'static str,
    /// (a): overrides on other locations.
    elsewhere: String,
    /// (b): the instance of the request's location overridden down.
    overridden: &'static str,
    /// (c): the instance of the request's location quarantined.
    quarantined: &'static str,
}

fn scenarios() -> Vec<Scenario> {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/world.yaml")).unwrap();
    let mut generated = String::from("{\"locations\":[");
    for l in 0..1_000 {
        if l > 0 {
            generated.push(',');
        }
        generated.push_str(&format!("\n{{\"id\":\"loc_{l}\",\"instances\":["));
        for i in 0..10 {
            let channel = ["whatsapp", "imessage", "sms"][i % 3];
            let sep = if i > 0 { "," } else { "" };
            generated.push_str(&format!(
                "{sep}{{\"id\":\"l{l}-i{i}\",\"channel\":\"{channel}\",\"index\":{},\"phone\":\"+1 555 {l:06}{i:02}\",\
                 \"connected\":{},\"default\":{},\"users\":[\"u{}\"]}}",
                i / 3 + 1,
                (l + i) % 7 != 0,
                i / 3 == 1,
                (l + i) % 13
            ));
        }
        generated.push_str("]}");
    }
    generated.push_str("\n]}\n");
    let status = |location: &str, instance: &str| {
        format!(r#"{{"type":"instance_status","location":"{location}","instance":"{instance}","connected":false}}"#)
    };
    vec![
        Scenario {
            name: "example world",
            file: "world.yaml",
            world: example,
            request: r#"{"location":"shop","channel":"whatsapp","body":"Your invoice","contact":{"id":"c1","tags":["vip","wa: +1-555-BILLING"]}}"#,
            location: "shop",
            elsewhere: status("agency", "wa-main"),
            overridden: "wa-orders",
            quarantined: "wa-support",
        },
        Scenario {
            name: "1,000 locations",
            file: "generated.json",
            world: generated,
            request: r#"{"location":"loc_1","channel":"whatsapp","body":"Your invoice","contact":{"id":"c1","tags":["vip","wa: +1 555 00000103"]}}"#,
            location: "loc_1",
            elsewhere: (2..102)
                .map(|l| status(&format!("loc_{l}"), &format!("l{l}-i0")))
                .collect::<Vec<_>>()
                .join("\n"),
            overridden: "l1-i0",
            quarantined: "l1-i9",
        },
    ]
}

fn main() {
    let only = std::env::args().skip(1).find(|a| a == "memory" || a == "redis");
    let registry = switchboard::registry().unwrap();
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenarios = scenarios();

    if only.as_deref() != Some("redis") {
        for scenario in &scenarios {
            run(&registry, dir.path(), scenario, &format!("{rules}\n{HEALTH}"), "memory");
        }
    }
    if only.as_deref() == Some("memory") {
        return;
    }
    let Some(redis) = RedisServer::start() else {
        println!("live: redis-server is not installed (apt-get install -y redis-server): the Redis cases are skipped");
        return;
    };
    for (n, scenario) in scenarios.iter().enumerate() {
        // A prefix per scenario; `run` adds one per case.
        let capacity = format!("capacity: {{store: redis, redis_url: \"redis://127.0.0.1:{}/0\"", redis.port);
        run(
            &registry,
            dir.path(),
            scenario,
            &format!("{rules}\n{HEALTH}{capacity}, key_prefix: \"s{n}-CASE:\"}}\n"),
            "redis",
        );
    }
}

/// One store on one world: the four cases, alternated, and where the time
/// of (b) and (c) goes.
fn run(
    registry: &std::sync::Arc<switchboard::Registry>,
    dir: &Path,
    scenario: &Scenario,
    rules: &str,
    store_kind: &str,
) {
    let world_path = dir.join(scenario.file);
    if !world_path.exists() {
        std::fs::write(&world_path, &scenario.world).unwrap();
    }
    let open = |case: &str| {
        let path = dir.join(format!("rules-{store_kind}-{}-{case}.yaml", scenario.file));
        std::fs::write(&path, rules.replace("CASE", case)).unwrap();
        Live::open(registry.clone(), path, Some(world_path.clone())).unwrap()
    };
    let record = |live: &Live, events: &str| {
        let recorded = live.record(events);
        assert!(recorded.rejected.is_empty(), "{}", recorded.to_json());
    };
    let at = scenario.location;
    let none = open("none");
    let elsewhere = open("elsewhere");
    record(&elsewhere, &scenario.elsewhere);
    let overridden = open("override");
    record(
        &overridden,
        &format!(
            r#"{{"type":"instance_status","location":"{at}","instance":"{}","connected":false,"reason":"bench"}}"#,
            scenario.overridden
        ),
    );
    let quarantined = open("quarantine");
    let failed = format!(
        r#"{{"type":"delivery","location":"{at}","instance":"{}","status":"failed","error":"131049"}}"#,
        scenario.quarantined
    );
    record(&quarantined, &[failed.as_str(); 3].join("\n"));

    // The state is in force where it should be, and nowhere else.
    let instance = |live: &Live, id: &str| {
        let all = live.instances(at).unwrap();
        all["instances"].as_array().unwrap().iter().find(|i| i["id"] == id).unwrap().clone()
    };
    assert!(instance(&none, scenario.overridden)["override"].is_null());
    assert!(instance(&elsewhere, scenario.overridden)["override"].is_null());
    assert_eq!(instance(&overridden, scenario.overridden)["override"]["connected"], false);
    assert_eq!(instance(&quarantined, scenario.quarantined)["health"]["state"], "quarantined");
    assert_eq!(instance(&none, scenario.quarantined)["health"]["state"], "healthy");

    let request = Request::from_json(scenario.request).unwrap();
    let cases: [(&str, &Live); 4] = [
        ("no events (reference)", &none),
        ("(a) events elsewhere, none here", &elsewhere),
        ("(b) instance_status override here", &overridden),
        ("(c) an instance here quarantined", &quarantined),
    ];
    let reference = none.select(&request);
    assert!(reference.instance().is_some(), "{}", reference.to_json());
    for (name, live) in &cases {
        let d = live.select(&request);
        assert_eq!(
            (d.rule, d.instance().map(|i| i.id().to_owned())),
            (reference.rule, reference.instance().map(|i| i.id().to_owned())),
            "{name}: {}",
            d.to_json()
        );
    }

    let mut medians: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..7 {
        for (i, (_, live)) in cases.iter().enumerate() {
            medians[i].push(measure(|| drop(black_box(live.select(black_box(&request)))), 1_000, 101));
        }
    }
    let figures: Vec<(f64, f64, f64)> = medians
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0], v[v.len() - 1])
        })
        .collect();
    for ((name, _), (mid, low, high)) in cases.iter().zip(&figures) {
        println!(
            "live: {store_kind:<6} {:<16} {name:<36} median {mid:8.1} ns/decision (rounds {low:.1}-{high:.1})  {:5.2}x",
            scenario.name,
            mid / figures[0].0
        );
    }

    // Where (b) and (c) spend it: the store's answer for the location, and
    // the location's copy with that state applied (what a decision on a
    // location with live state does besides the rules).
    for (case, live) in [("(b)", &overridden), ("(c)", &quarantined)] {
        let snapshot = live.snapshot();
        let store = snapshot.plan.store().unwrap();
        let location = snapshot.world.location(at).unwrap();
        let has_ns = measure(|| _ = black_box(store.has_live_state(black_box(at))), 1_000, 101);
        let read_ns = measure(|| drop(black_box(store.live_state(black_box(at)).unwrap())), 1_000, 101);
        let state = store.live_state(at).unwrap();
        let now = switchboard::capacity::clock();
        let apply = || {
            location.with_live(|i| {
                (state.override_of(i.id(), now).map(|o| o.connected), state.quarantined_until(i.id(), now))
            })
        };
        assert!(apply().is_some(), "{case}: the live state changes the location");
        let copy_ns = measure(|| drop(black_box(apply())), 1_000, 101);
        println!(
            "live: {store_kind:<6} {:<16} {case} of which: has_live_state {has_ns:.1} ns, live_state read {read_ns:.1} ns, \
             the location's copy with it applied {copy_ns:.1} ns",
            scenario.name,
        );
    }
}

/// A `redis-server` of the bench's own on a free loopback port, persistence
/// off, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// `None` when `redis-server` is not installed.
    fn start() -> Option<RedisServer> {
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
            let spawned = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--loglevel", "warning"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match spawned {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => panic!("redis-server: {e}"),
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: another one
                }
                if pong(port) {
                    return Some(RedisServer { child, port });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server");
    }
}

/// Whether a server on `port` answers PING.
fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
