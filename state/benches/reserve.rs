//! Reservations per second of the memory store and of the Redis store over
//! loopback, in its three modes, side by side: one `redis-server`, one with
//! TLS and an ACL user, and a 3-master Redis Cluster, each of its own. Not a
//! test: run with `cargo bench -p switchboard-state`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::time::{Duration, Instant};

use switchboard_core::capacity::jiff::Timestamp;
use switchboard_core::capacity::{timezone, Calendar, Limits, PoolRef};
use switchboard_core::{CapacityStore, ReservationRequest};
use switchboard_state::{MemoryStore, RedisConfig, RedisStore};

/// Runs `count` reservations on each of `threads` threads over 16 instances
/// of one pool with limits high enough never to refuse; prints the rate and
/// the latency percentiles.
fn run(name: &str, store: &dyn CapacityStore, threads: usize, count: usize) {
    let tz = timezone("America/New_York").unwrap();
    let now = Timestamp::now();
    let instances: Vec<String> = (0..16).map(|i| format!("wa-{i}")).collect();
    let limits =
        Limits { per_minute: Some(u32::MAX), per_hour: Some(u32::MAX), per_day: Some(u32::MAX), ..Limits::NONE };
    let pool = Some(PoolRef { id: "brand", limits: Limits { per_day: Some(u32::MAX), ..Limits::NONE } });
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (tz, instances) = (&tz, &instances);
                scope.spawn(move || {
                    let mut latencies = Vec::with_capacity(count);
                    for i in 0..count {
                        let instance = &instances[(i + t) % instances.len()];
                        let request =
                            ReservationRequest { limits, pool, ..ReservationRequest::new("shop", tz, instance, now) };
                        let one = Instant::now();
                        assert!(store.reserve(&request).unwrap().is_reserved());
                        latencies.push(one.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<28} {threads} thread(s) x {count:>7}: {:>10.0} reservations/s, p50 {:>9.2?}, p99 {:>9.2?}",
        (threads * count) as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
    );
}

/// The window arithmetic alone: the three spans of one reservation.
fn spans() {
    let tz = timezone("America/New_York").unwrap();
    let now = Timestamp::now();
    let count = 500_000;
    let started = Instant::now();
    let mut sum = 0i64;
    for i in 0..count {
        let request =
            ReservationRequest::new("shop", &tz, "wa-1", Timestamp::from_second(now.as_second() + i).unwrap());
        sum = sum.wrapping_add(request.windows()[2].start.as_second());
    }
    let each = started.elapsed() / count as u32;
    println!("{:<28} {each:>9.2?} per reservation (3 spans) [{}]", "window arithmetic", sum % 2);
    let mut calendar = Calendar::new(tz.clone());
    let started = Instant::now();
    for i in 0..count {
        sum = sum.wrapping_add(calendar.starts(Timestamp::from_second(now.as_second() + i).unwrap())[2]);
    }
    let each = started.elapsed() / count as u32;
    println!("{:<28} {each:>9.2?} per reservation (cached) [{}]", "window starts, Calendar", sum % 2);
}

fn main() {
    spans();
    run("memory", &MemoryStore::new(), 1, 500_000);
    run("memory", &MemoryStore::new(), 2, 250_000);
    let server = redis_server::RedisServer::start();
    let single = RedisStore::open(RedisConfig { url: server.url(), ..RedisConfig::default() }).unwrap();
    let ca = redis_server::TestCa::new("bench CA");
    let (_tls_server, tls_port) = redis_server::start_tls(&ca);
    let tls = RedisStore::open(RedisConfig {
        url: format!("rediss://alice:secret@127.0.0.1:{tls_port}/0"),
        tls_ca_pem: Some(ca.ca_pem.as_bytes().to_vec()),
        ..RedisConfig::default()
    })
    .unwrap();
    let cluster = redis_server::RedisCluster::start();
    let clustered = RedisStore::open(RedisConfig { cluster: cluster.seeds(), ..RedisConfig::default() }).unwrap();
    // Alternated, so drift on a shared machine hits the three alike.
    for _ in 0..2 {
        for (threads, count) in [(1, 20_000), (8, 5_000), (32, 1_500)] {
            run("redis, one server", &single, threads, count);
            run("redis, TLS + ACL user", &tls, threads, count);
            run("redis, 3-master cluster", &clustered, threads, count);
        }
    }
}
