//! Hot-reload benchmarks (run: `cargo bench --bench reload`). Not a test.
//!
//! 1. Latency: from the `rename` of a new valid rules file to the first
//!    selection that uses it, through the real watcher (debounce included).
//! 2. Throughput: selections per second on one thread, with no reload, and
//!    with another thread swapping in a freshly compiled configuration every
//!    10 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{Live, Request};

const WORLD: &str = "locations:
  - id: l
    instances:
      - {id: a, channel: whatsapp, index: 1, phone: '1', connected: true}
      - {id: b, channel: whatsapp, index: 2, phone: '2', connected: true, default: true}
";
const RULES: [&str; 2] = [
    "rules: [manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available]\n",
    "rules: [manual_override, temporary_switch, contact_tag, user_assignment, any_available]\n",
];
const ANSWER: [&str; 2] = ["b", "a"];
/// For throughput: two orders that cost the same to evaluate (both resolve
/// at default_instance after four no_match), so only the reloads differ.
const SAME_COST: [&str; 2] = [
    "rules: [manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available]\n",
    "rules: [temporary_switch, manual_override, contact_tag, user_assignment, default_instance, any_available]\n",
];

fn picked(live: &Live, request: &Request) -> String {
    live.select(request).instance().map(|i| i.id().to_owned()).unwrap_or_default()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    std::fs::write(&rules, RULES[0]).unwrap();
    std::fs::write(&world, WORLD).unwrap();
    let live = Live::open(switchboard::registry().unwrap(), &rules, Some(&world)).unwrap();
    let request = Request::from_json(
        r#"{"location":"l","channel":"whatsapp","body":"Hello there","contact":{"id":"c1","tags":["vip"]}}"#,
    )
    .unwrap();

    // 1. Latency through the watcher.
    {
        let _watch = live.watch().unwrap();
        let mut latencies = Vec::new();
        for round in 1..=40 {
            let which = round % 2;
            let tmp = dir.path().join(".rules.yaml.tmp");
            std::fs::write(&tmp, RULES[which]).unwrap();
            let start = Instant::now();
            std::fs::rename(&tmp, &rules).unwrap();
            while picked(&live, &request) != ANSWER[which] {
                assert!(start.elapsed() < Duration::from_secs(10), "reload never happened");
                std::hint::spin_loop();
            }
            latencies.push(start.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "write → first selection using it: median {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} reloads (target median < 300 ms; debounce {} ms)",
            ms(latencies[latencies.len() / 2]),
            ms(latencies[latencies.len() * 9 / 10]),
            ms(latencies[latencies.len() - 1]),
            latencies.len(),
            switchboard::DEBOUNCE.as_millis()
        );
    }

    // The cost of one reload (read, hash, compile, swap), on this thread.
    {
        let start = Instant::now();
        for n in 0..200 {
            std::fs::write(&rules, RULES[n % 2]).unwrap();
            live.reload();
        }
        println!("one reload (write + read + compile + swap): {:.0} µs", start.elapsed().as_secs_f64() * 1e6 / 200.0);
    }

    // 2. Throughput with and without reloads: short windows, alternated,
    //    so that drift in the machine's speed hits both sides alike.
    let reloading = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicU64::new(0));
    let reloader = {
        let (live, stop, reloads, rules, reloading) =
            (live.clone(), stop.clone(), reloads.clone(), rules.clone(), reloading.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                if reloading.load(Ordering::Relaxed) {
                    n += 1;
                    std::fs::write(&rules, SAME_COST[n % 2]).unwrap();
                    live.reload();
                    reloads.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::fs::write(&rules, SAME_COST[0]).unwrap();
    live.reload();
    let window = |busy: bool| -> f64 {
        reloading.store(busy, Ordering::Relaxed);
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < Duration::from_millis(250) {
            for _ in 0..1000 {
                drop(black_box(live.select(black_box(&request))));
            }
            count += 1000;
        }
        count as f64 / start.elapsed().as_secs_f64()
    };
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    for _ in 0..16 {
        quiet.push(window(false));
        busy.push(window(true));
    }
    stop.store(true, Ordering::Relaxed);
    reloader.join().unwrap();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (quiet, busy) = (median(&mut quiet), median(&mut busy));
    println!("throughput, no reload:            {:.2} M selections/s (median of 16 windows of 250 ms)", quiet / 1e6);
    println!(
        "throughput, a reload every 10 ms: {:.2} M selections/s ({:+.1}%, target within 10%; {} reloads)",
        busy / 1e6,
        (busy / quiet - 1.0) * 100.0,
        reloads.load(Ordering::Relaxed)
    );
}
