//! The same suite against both stores: the memory store, and the Redis store
//! on a `redis-server` of each test's own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support {
    pub mod redis_server;
    pub mod suite;
}

use std::time::{Duration, Instant};

use support::redis_server::{start_tls, RedisCluster, RedisServer, TestCa};
use support::suite;
use switchboard_core::capacity::{timezone, Limits};
use switchboard_core::{CapacityStore, ReservationRequest, StoreErrorKind};
use switchboard_state::{MemoryStore, RedisConfig, RedisStore};

/// Generous timeouts: a loaded CI machine must not turn into failures (a
/// dead server is refused at once; the stall test sets its own).
fn redis_store(server: &RedisServer) -> RedisStore {
    RedisStore::open(RedisConfig {
        url: server.url(),
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(5),
        ..RedisConfig::default()
    })
    .unwrap()
}

/// One `#[test]` per suite function, for each store.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $name() { super::suite::$name(&switchboard_state::MemoryStore::new()); })*
        }
        mod redis_store {
            $(#[test] fn $name() {
                let server = super::RedisServer::start();
                super::suite::$name(&super::redis_store(&server));
            })*
        }
    };
}

both_stores!(
    per_minute_limit_refuses_until_the_next_minute,
    per_hour_limit_refuses_until_the_next_hour,
    per_day_limit_follows_the_local_calendar_day,
    pool_limits_are_shared_by_its_instances,
    contacts_per_day_counts_distinct_contacts,
    requests_without_a_contact_count_as_new_contacts,
    a_refused_reservation_changes_nothing,
    usage_reads_without_counting,
    locations_and_instances_count_apart,
    conversation_remember_recall_forget_and_expiry,
    a_reservation_remembers_the_conversation,
    instances_without_limits_are_still_counted,
    live_state_overrides_and_stale_updates,
    inbound_becomes_the_conversation_unless_the_memory_is_newer,
    deliveries_quarantine_and_probation_heals,
);

/// Two processes on one Redis: an event applied by one is in force in the
/// other within a second, and a process started afterwards (a restart)
/// finds it.
#[test]
fn redis_live_state_reaches_every_process_within_a_second_and_survives_restarts() {
    use switchboard_core::StatusUpdate;
    let server = RedisServer::start();
    let (a, b) = (redis_store(&server), redis_store(&server));
    assert!(!b.has_live_state("shop"), "b watches the fleet from here on");
    let t = suite::ts("2026-12-07T15:00:00Z");
    let down = StatusUpdate { location: "shop", instance: "wa-1", time: t, set: Some((false, None, None)) };
    let applied = Instant::now();
    assert!(a.apply_status(&down).unwrap());
    let connected = |store: &RedisStore| store.live_state("shop").unwrap().override_of("wa-1", t).map(|o| o.connected);
    while !b.has_live_state("shop") {
        assert!(applied.elapsed() < Duration::from_secs(1), "b never saw the event");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(connected(&b), Some(false));
    // A clear reaches b too, though b had read the location before.
    let clear = StatusUpdate { time: suite::ts("2026-12-07T15:01:00Z"), set: None, ..down };
    let cleared = Instant::now();
    assert!(a.apply_status(&clear).unwrap());
    while connected(&b).is_some() {
        assert!(cleared.elapsed() < Duration::from_secs(1), "b never saw the clear");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(a.apply_status(&StatusUpdate { time: suite::ts("2026-12-07T15:02:00Z"), ..down }).unwrap());
    drop((a, b));
    let restarted = redis_store(&server);
    assert!(restarted.has_live_state("shop"));
    assert_eq!(connected(&restarted), Some(false));
}

#[test]
fn memory_store_eight_threads_exact_totals() {
    suite::concurrent_reservations_are_exact(&MemoryStore::new(), 8, 10_000, 300, 5_000, 100, 150);
}

#[test]
fn redis_store_concurrent_exact_totals() {
    let server = RedisServer::start();
    suite::concurrent_reservations_are_exact(&redis_store(&server), 4, 500, 30, 200, 20, 30);
}

#[test]
fn redis_keys_carry_the_location_hash_tag_and_expire() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let utc = timezone("UTC").unwrap();
    let request = ReservationRequest {
        limits: Limits { contacts_per_day: Some(10), ..Limits::NONE },
        pool: Some(switchboard_core::capacity::PoolRef { id: "brand-a", limits: Limits::NONE }),
        contact: Some("c-1"),
        ..ReservationRequest::new("shop", &utc, "wa-1", suite::ts("2026-11-25T14:20:30Z"))
    };
    assert!(store.reserve(&request).unwrap().is_reserved());
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "switchboard:{shop}:i:wa-1:c20261125",
            "switchboard:{shop}:i:wa-1:d20261125",
            "switchboard:{shop}:i:wa-1:h20261125T14+0000",
            "switchboard:{shop}:i:wa-1:m20261125T1420+0000",
            "switchboard:{shop}:i:wa-1:n20261125",
            "switchboard:{shop}:p:brand-a:d20261125",
            "switchboard:{shop}:p:brand-a:h20261125T14+0000",
            "switchboard:{shop}:p:brand-a:m20261125T1420+0000",
        ]
    );
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut connection).unwrap();
        assert!(ttl > 0, "{key} has a TTL");
    }
    let minute: i64 =
        redis::cmd("PTTL").arg("switchboard:{shop}:i:wa-1:m20261125T1420+0000").query(&mut connection).unwrap();
    assert!(minute <= 90_000, "30 s left of the minute plus a minute of grace, got {minute} ms");
}

#[test]
fn redis_key_prefix_comes_from_config() {
    let server = RedisServer::start();
    let store =
        RedisStore::open(RedisConfig { url: server.url(), key_prefix: "sb-test/".into(), ..RedisConfig::default() })
            .unwrap();
    let utc = timezone("UTC").unwrap();
    store.reserve(&ReservationRequest::new("shop", &utc, "wa-1", suite::ts("2026-11-25T14:20:30Z"))).unwrap();
    let mut connection = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k.starts_with("sb-test/{shop}:i:wa-1:")), "{keys:?}");
}

#[test]
fn redis_down_is_a_store_error_and_the_store_recovers() {
    let mut server = RedisServer::start();
    let port = server.port();
    let store = redis_store(&server);
    let utc = timezone("UTC").unwrap();
    let request = ReservationRequest {
        limits: Limits { per_day: Some(100), ..Limits::NONE },
        ..ReservationRequest::new("shop", &utc, "wa-1", suite::ts("2026-11-25T14:20:30Z"))
    };
    for _ in 0..3 {
        assert!(store.reserve(&request).unwrap().is_reserved());
    }
    store.ping().unwrap();

    server.kill();
    let started = Instant::now();
    let error = store.reserve(&request).unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    assert!(store.usage(&request).is_err());
    assert!(store.ping().is_err());
    assert!(started.elapsed() < Duration::from_secs(3), "errors come fast, not after a hang");

    // A new, empty Redis on the same port: the store reconnects and reloads
    // its script by itself.
    let _server = RedisServer::start_on(port);
    assert!(store.reserve(&request).unwrap().is_reserved());
    assert_eq!(store.usage(&request).unwrap().instance.day, 1);
    store.ping().unwrap();
}

#[test]
fn a_stalled_redis_times_out_and_the_store_recovers() {
    let server = RedisServer::start();
    let store = RedisStore::open(RedisConfig {
        url: server.url(),
        connect_timeout: Duration::from_millis(200),
        io_timeout: Duration::from_millis(200),
        ..RedisConfig::default()
    })
    .unwrap();
    let utc = timezone("UTC").unwrap();
    let request = ReservationRequest::new("shop", &utc, "wa-1", suite::ts("2026-11-25T14:20:30Z"));
    assert!(store.reserve(&request).unwrap().is_reserved());

    let signal = |name: &str| {
        let status = std::process::Command::new("kill").args([name, &server.pid().to_string()]).status().unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let started = Instant::now();
    let error = store.reserve(&request).unwrap_err();
    let waited = started.elapsed();
    signal("-CONT");
    assert_eq!(error.kind(), StoreErrorKind::Timeout, "{error}");
    assert!(waited < Duration::from_secs(2), "bounded by the I/O timeout, waited {waited:?}");

    // The timed-out command may still run once Redis resumes (it was sent):
    // a store error may over-count by one, never under-count.
    let day = (0..50)
        .find_map(|_| match store.usage(&request) {
            Ok(usage) => Some(usage.instance.day),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                None
            }
        })
        .unwrap();
    assert!((1..=2).contains(&day), "day count {day}");
    assert!(store.reserve(&request).unwrap().is_reserved());
}

/// Every suite function, by name, for the modes that run them all on one
/// server or cluster (each with a key prefix of its own).
type Case = fn(&dyn CapacityStore);

const SUITE: [(&str, Case); 15] = [
    ("per_minute", suite::per_minute_limit_refuses_until_the_next_minute),
    ("per_hour", suite::per_hour_limit_refuses_until_the_next_hour),
    ("per_day", suite::per_day_limit_follows_the_local_calendar_day),
    ("pool", suite::pool_limits_are_shared_by_its_instances),
    ("contacts", suite::contacts_per_day_counts_distinct_contacts),
    ("no_contact", suite::requests_without_a_contact_count_as_new_contacts),
    ("refused", suite::a_refused_reservation_changes_nothing),
    ("usage", suite::usage_reads_without_counting),
    ("apart", suite::locations_and_instances_count_apart),
    ("conversation", suite::conversation_remember_recall_forget_and_expiry),
    ("remembers", suite::a_reservation_remembers_the_conversation),
    ("no_limits", suite::instances_without_limits_are_still_counted),
    ("status", suite::live_state_overrides_and_stale_updates),
    ("inbound", suite::inbound_becomes_the_conversation_unless_the_memory_is_newer),
    ("health", suite::deliveries_quarantine_and_probation_heals),
];

fn cluster_store(cluster: &RedisCluster, prefix: &str) -> RedisStore {
    RedisStore::open(RedisConfig {
        cluster: cluster.seeds(),
        key_prefix: prefix.to_owned(),
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
        ..RedisConfig::default()
    })
    .unwrap()
}

#[test]
fn a_redis_cluster_passes_the_suite_and_keeps_each_location_on_one_node() {
    let cluster = RedisCluster::start();
    for (name, case) in SUITE {
        case(&cluster_store(&cluster, &format!("{name}:")));
    }
    // Each location's keys sit on the node of its hash tag, the script's
    // atomicity included: keys of one location never spread.
    let store = cluster_store(&cluster, "spread:");
    let utc = timezone("UTC").unwrap();
    let limits = Limits { per_day: Some(5), contacts_per_day: Some(5), ..Limits::NONE };
    for l in 0..30 {
        let location = format!("loc-{l}");
        let request = ReservationRequest {
            limits,
            contact: Some("c-1"),
            ..ReservationRequest::new(&location, &utc, "wa-1", suite::ts("2026-11-25T14:20:30Z"))
        };
        assert!(store.reserve(&request).unwrap().is_reserved());
        let node = cluster.node_of(&format!("{{{location}}}"));
        for (n, server) in cluster.nodes.iter().enumerate() {
            let pattern = format!("spread:{{{location}}}:*");
            let keys = support::redis_server::redis_cli(server.port(), &["--scan", "--pattern", &pattern]);
            let count = keys.lines().filter(|k| !k.is_empty()).count();
            assert_eq!(count, if n == node { 5 } else { 0 }, "{location} on node {n}: {keys}");
        }
    }
    let used: std::collections::HashSet<usize> = (0..30).map(|l| cluster.node_of(&format!("{{loc-{l}}}"))).collect();
    assert_eq!(used.len(), 3, "30 locations spread over the three masters");
    store.ping().unwrap();
}

#[test]
fn a_dead_cluster_master_fails_only_its_own_locations_and_they_recover() {
    let mut cluster = RedisCluster::start();
    let store = cluster_store(&cluster, "fault:");
    let utc = timezone("UTC").unwrap();
    let locations: Vec<String> = (0..30).map(|l| format!("loc-{l}")).collect();
    fn with_limit<'a>(request: ReservationRequest<'a>) -> ReservationRequest<'a> {
        ReservationRequest { limits: Limits { per_day: Some(1000), ..Limits::NONE }, ..request }
    }
    let at = suite::ts("2026-11-25T14:20:30Z");
    let request = |location| with_limit(ReservationRequest::new(location, &utc, "wa-1", at));
    for location in &locations {
        assert!(store.reserve(&request(location.as_str())).unwrap().is_reserved());
    }
    let owners: Vec<usize> = locations.iter().map(|l| cluster.node_of(&format!("{{{l}}}"))).collect();
    let dead = owners[0];
    cluster.nodes[dead].kill();
    let started = Instant::now();
    for (location, owner) in locations.iter().zip(&owners) {
        let answer = store.reserve(&request(location.as_str()));
        if *owner == dead {
            let error = answer.unwrap_err();
            assert!(
                matches!(error.kind(), StoreErrorKind::Unavailable | StoreErrorKind::Timeout),
                "{location}: {error}"
            );
        } else {
            assert!(answer.unwrap().is_reserved(), "{location} is on a live node");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20), "failures are bounded: {:?}", started.elapsed());
    assert!(store.ping().is_err(), "the cluster is unhealthy while a master is down");

    // The master comes back (same port, same cluster file: its slots, no
    // data): its locations decide again by themselves.
    cluster.nodes[dead].restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    for location in &locations {
        loop {
            match store.reserve(&request(location.as_str())) {
                Ok(reservation) => {
                    assert!(reservation.is_reserved());
                    break;
                }
                Err(error) => {
                    assert!(Instant::now() < deadline, "{location} did not recover: {error}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    store.ping().unwrap();
}

#[test]
fn tls_with_an_acl_user_passes_the_suite_and_names_a_wrong_password_or_an_untrusted_certificate() {
    let ca = TestCa::new("switchboard test CA");
    let (_server, tls_port) = start_tls(&ca);
    let open = |url: String, ca_pem: Option<&str>, prefix: &str| {
        RedisStore::open(RedisConfig {
            url,
            tls_ca_pem: ca_pem.map(|pem| pem.as_bytes().to_vec()),
            key_prefix: prefix.to_owned(),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            ..RedisConfig::default()
        })
        .unwrap()
    };
    let url = |password: &str| format!("rediss://alice:{password}@127.0.0.1:{tls_port}/0");
    for (name, case) in SUITE {
        case(&open(url("secret"), Some(&ca.ca_pem), &format!("{name}:")));
    }

    let wrong = open(url("not-the-password"), Some(&ca.ca_pem), "x:").ping().unwrap_err();
    let message = wrong.to_string();
    assert!(message.contains("authentication failed"), "{message}");
    assert!(message.contains("check the user and password"), "{message}");
    assert!(!message.contains("not-the-password"), "the password is never shown: {message}");

    let other = TestCa::new("another CA");
    for (store, why) in [
        (open(url("secret"), Some(&other.ca_pem), "x:"), "a CA that did not sign it"),
        (open(url("secret"), None, "x:"), "the system's roots"),
    ] {
        let message = store.ping().unwrap_err().to_string();
        assert!(message.contains("certificate is not trusted"), "{why}: {message}");
        assert!(message.contains("tls_ca_file"), "{why}: {message}");
    }
}

mod properties {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;
    use switchboard_core::capacity::Limits;

    use super::support::suite::{matches_the_reference_model, Op};
    use super::RedisServer;

    fn limits() -> impl Strategy<Value = Limits> {
        let limit = || proptest::option::weighted(0.5, 0u32..6);
        (limit(), limit(), limit(), limit()).prop_map(|(per_minute, per_hour, per_day, contacts_per_day)| Limits {
            per_minute,
            per_hour,
            per_day,
            contacts_per_day,
        })
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let delta = prop_oneof![6 => 0i64..40, 3 => 0i64..400, 1 => 0i64..30_000];
        let op = (0usize..3, delta, proptest::option::weighted(0.8, 0u8..8))
            .prop_map(|(instance, delta, contact)| Op { instance, delta, contact });
        proptest::collection::vec(op, 1..80)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn memory_store_matches_the_reference_model(
            a in limits(), b in limits(), c in limits(), pool in limits(), ops in ops(),
        ) {
            matches_the_reference_model(&switchboard_state::MemoryStore::new(), "shop", [a, b, c], pool, &ops);
        }
    }

    #[test]
    fn redis_store_matches_the_reference_model() {
        // One server for every case; cases use distinct locations.
        let server = RedisServer::start();
        let store = super::redis_store(&server);
        let case = AtomicUsize::new(0);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 16,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let result = runner.run(&(limits(), limits(), limits(), limits(), ops()), |(a, b, c, pool, ops)| {
            let location = format!("case-{}", case.fetch_add(1, Ordering::Relaxed));
            matches_the_reference_model(&store, &location, [a, b, c], pool, &ops);
            Ok(())
        });
        result.unwrap();
    }
}
