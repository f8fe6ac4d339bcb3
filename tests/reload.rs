//! Hot reload against a real filesystem: every way editors and Kubernetes
//! replace a file, invalid versions, the world file, and selections running
//! while the file is rewritten.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{Live, ReloadEvent, Request};

use crate::util::*;

const WORLD: &str = "locations:
  - id: l
    instances:
      - {id: a, channel: whatsapp, index: 1, phone: '1', connected: true}
      - {id: b, channel: whatsapp, index: 2, phone: '2', connected: true, default: true}
";
/// Selects `b` through default_instance.
const RULES_DEFAULT: &str = "rules: [default_instance, any_available]\n";
/// Selects `a` through any_available.
const RULES_ANY: &str = "rules: [any_available]\n";
const RULES_BAD: &str = "rules: [defualt_instance]\n";

fn req() -> Request {
    request(r#"{"location":"l","channel":"whatsapp","body":"hi"}"#)
}

fn setup(rules: &str) -> (tempfile::TempDir, Live) {
    let dir = temp_with(&[("rules.yaml", rules), ("world.yaml", WORLD)]);
    let live = Live::open(registry(), dir.path().join("rules.yaml"), Some(dir.path().join("world.yaml"))).unwrap();
    (dir, live)
}

/// Waits (up to 10 s) until `live` selects `want`.
fn eventually_selects(live: &Live, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = summary(&live.select(&req()));
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "still selects {got}, want {want}; status {:?}", live.status());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn write_via_rename(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn in_place_write_and_truncate() {
    let (dir, live) = setup(RULES_DEFAULT);
    let _watch = live.watch().unwrap();
    assert_eq!(summary(&live.select(&req())), "b");
    fs::write(dir.path().join("rules.yaml"), RULES_ANY).unwrap();
    eventually_selects(&live, "a");
}

#[test]
fn write_to_temp_then_rename() {
    let (dir, live) = setup(RULES_DEFAULT);
    let _watch = live.watch().unwrap();
    write_via_rename(dir.path(), "rules.yaml", RULES_ANY);
    eventually_selects(&live, "a");
}

#[test]
fn vim_backup_then_write() {
    let (dir, live) = setup(RULES_DEFAULT);
    let _watch = live.watch().unwrap();
    let (file, backup) = (dir.path().join("rules.yaml"), dir.path().join("rules.yaml~"));
    fs::rename(&file, &backup).unwrap();
    fs::write(&file, RULES_ANY).unwrap();
    fs::remove_file(&backup).unwrap();
    eventually_selects(&live, "a");
}

#[test]
fn delete_then_recreate() {
    let (dir, live) = setup(RULES_DEFAULT);
    let events = live.subscribe();
    let _watch = live.watch().unwrap();
    let file = dir.path().join("rules.yaml");
    fs::remove_file(&file).unwrap();
    let failed = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(&failed, ReloadEvent::Failed { error, .. } if error.contains("no such file")), "{failed:?}");
    assert_eq!(summary(&live.select(&req())), "b", "a missing file keeps the last good configuration");
    fs::write(&file, RULES_ANY).unwrap();
    eventually_selects(&live, "a");
}

#[test]
fn kubernetes_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;
    let dir = temp_with(&[("world.yaml", WORLD)]);
    let d = dir.path();
    fs::create_dir(d.join("..2026_11_24_v1")).unwrap();
    fs::write(d.join("..2026_11_24_v1/rules.yaml"), RULES_DEFAULT).unwrap();
    symlink("..2026_11_24_v1", d.join("..data")).unwrap();
    symlink("..data/rules.yaml", d.join("rules.yaml")).unwrap();
    let live = Live::open(registry(), d.join("rules.yaml"), Some(d.join("world.yaml"))).unwrap();
    let _watch = live.watch().unwrap();
    assert_eq!(summary(&live.select(&req())), "b");
    // What the kubelet does: a new timestamped dir, a new `..data_tmp`
    // link renamed over `..data` (atomic), the old dir removed.
    fs::create_dir(d.join("..2026_11_24_v2")).unwrap();
    fs::write(d.join("..2026_11_24_v2/rules.yaml"), RULES_ANY).unwrap();
    symlink("..2026_11_24_v2", d.join("..data_tmp")).unwrap();
    fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    fs::remove_dir_all(d.join("..2026_11_24_v1")).unwrap();
    eventually_selects(&live, "a");
}

#[test]
fn invalid_file_keeps_the_last_good_plan_then_valid_is_picked_up() {
    let (dir, live) = setup(RULES_DEFAULT);
    let events = live.subscribe();
    let _watch = live.watch().unwrap();
    fs::write(dir.path().join("rules.yaml"), RULES_BAD).unwrap();
    // A reload may catch the file half-written (empty) first: that fails
    // too. Wait for the failure that names the bad rule.
    loop {
        match events.recv_timeout(Duration::from_secs(10)).unwrap() {
            ReloadEvent::Failed { generation: 1, error } if error.contains("did you mean `default_instance`") => {
                assert!(error.contains("rules.yaml:1:"), "{error}");
                break;
            }
            ReloadEvent::Failed { generation: 1, .. } => {}
            other => panic!("expected a failed reload, got {other:?}"),
        }
    }
    let status = live.status();
    assert_eq!(status.generation, 1);
    assert!(status.last_error.is_some());
    assert_eq!(summary(&live.select(&req())), "b", "the last good configuration stays");
    write_via_rename(dir.path(), "rules.yaml", RULES_ANY);
    eventually_selects(&live, "a");
    let status = live.status();
    assert_eq!(status.generation, 2);
    assert_eq!(status.last_error, None);
    assert!(status.order.contains(&("whatsapp".to_owned(), vec!["any_available".to_owned()])));
}

#[test]
fn world_file_changes_are_picked_up() {
    let (dir, live) = setup(RULES_DEFAULT);
    let _watch = live.watch().unwrap();
    let disconnected = WORLD
        .replace("default: true}", "default: true, connected: false}")
        .replace("connected: true, default", "default");
    write_via_rename(dir.path(), "world.yaml", &disconnected);
    eventually_selects(&live, "a");
    fs::write(
        dir.path().join("world.yaml"),
        "locations: [{id: l, instances: [{id: a, channel: whatsapp}, {id: a, channel: whatsapp}]}]",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live.status().last_error.is_some_and(|e| e.contains("duplicate instance id")) {
        assert!(Instant::now() < deadline, "the invalid world was not reported: {:?}", live.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(live.status().last_error.unwrap().contains("world.yaml:1:"));
    assert_eq!(summary(&live.select(&req())), "a", "an invalid world keeps the last good one");
}

#[test]
fn manual_reload_and_unchanged_content() {
    let (dir, live) = setup(RULES_DEFAULT);
    assert_eq!(live.reload(), ReloadEvent::Unchanged { generation: 1 });
    fs::write(dir.path().join("rules.yaml"), RULES_ANY).unwrap();
    assert_eq!(live.reload(), ReloadEvent::Reloaded { generation: 2 });
    assert_eq!(summary(&live.select(&req())), "a");
    assert!(live.status().last_success.is_some());
}

#[test]
fn open_reports_invalid_files() {
    let dir = temp_with(&[("rules.yaml", RULES_BAD), ("world.yaml", "locations: 5")]);
    let err = Live::open(registry(), dir.path().join("rules.yaml"), Some(dir.path().join("world.yaml"))).unwrap_err();
    assert_eq!(err.0.len(), 2);
    let err = err.to_string();
    assert!(err.contains("rules.yaml:1:") && err.contains("world.yaml:1:"), "{err}");
}

#[test]
fn selections_never_fail_or_mix_while_the_file_is_rewritten() {
    let (dir, live) = setup(RULES_DEFAULT);
    let _watch = live.watch().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (live, stop) = (live.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let d = live.select(&req());
                    // Each valid configuration answers one way, whole.
                    match (summary(&d).as_str(), outcomes(&d).as_slice()) {
                        ("b", [only]) if only == "default_instance:selected" => {}
                        ("a", [only]) if only == "any_available:selected" => {}
                        _ => panic!("a decision no valid configuration gives: {}", d.to_json()),
                    }
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    let versions = [RULES_ANY, RULES_BAD, RULES_DEFAULT, "rules: [any_available", RULES_ANY, RULES_DEFAULT];
    for i in 0..300 {
        let text = versions[i % versions.len()];
        if i % 2 == 0 {
            write_via_rename(dir.path(), "rules.yaml", text);
        } else {
            fs::write(dir.path().join("rules.yaml"), text).unwrap();
        }
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(60));
        }
    }
    write_via_rename(dir.path(), "rules.yaml", RULES_ANY);
    eventually_selects(&live, "a");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    // Reloads are serialized: this one runs after any still in flight and
    // reads the final file, so the end state is deterministic.
    assert!(!matches!(live.reload(), ReloadEvent::Failed { .. }));
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 100, "the workers selected {total} times");
    assert_eq!(live.status().order[2].1, ["any_available"], "the final state is the last valid file");
    assert_eq!(summary(&live.select(&req())), "a");
}

#[test]
fn a_world_change_keeps_the_compiled_plan_and_vice_versa() {
    let (dir, live) = setup(RULES_DEFAULT);
    let first = live.snapshot();
    fs::write(dir.path().join("world.yaml"), WORLD.replace("phone: '1'", "phone: '11'")).unwrap();
    assert_eq!(live.reload(), ReloadEvent::Reloaded { generation: 2 });
    let second = live.snapshot();
    assert!(Arc::ptr_eq(&first.plan, &second.plan), "the rules did not change: same plan (round-robin state kept)");
    assert!(!Arc::ptr_eq(&first.world, &second.world));
    fs::write(dir.path().join("rules.yaml"), RULES_ANY).unwrap();
    assert_eq!(live.reload(), ReloadEvent::Reloaded { generation: 3 });
    let third = live.snapshot();
    assert!(Arc::ptr_eq(&second.world, &third.world));
    assert_eq!(third.generation, 3);
}

#[test]
fn a_json_world_is_streamed_and_hashed_as_it_is_read() {
    // A JSON world is never held whole as text: its file is hashed in
    // chunks, then streamed into the world (and hashed again as it streams).
    let world = |phone: &str| {
        format!(
            r#"{{"locations":[{{"id":"l","instances":[
                {{"id":"a","channel":"whatsapp","index":1,"phone":"{phone}","connected":true}},
                {{"id":"b","channel":"whatsapp","index":2,"phone":"2","connected":true,"default":true}}]}}]}}"#
        )
    };
    let dir = temp_with(&[("rules.yaml", RULES_ANY), ("world.json", &world("1"))]);
    let path = dir.path().join("world.json");
    let live = Live::open(registry(), dir.path().join("rules.yaml"), Some(path.clone())).unwrap();
    let sha = |path: &Path| Some(switchboard::sha256_hex(&fs::read(path).unwrap()));
    let first = live.snapshot();
    assert_eq!(first.world_sha256, sha(&path));
    assert_eq!(live.select(&req()).instance().map(|i| i.phone().to_owned()), Some("1".to_owned()));
    assert_eq!(live.reload(), ReloadEvent::Unchanged { generation: 1 }, "the same bytes: nothing compiled again");
    fs::write(&path, world("11")).unwrap();
    assert_eq!(live.reload(), ReloadEvent::Reloaded { generation: 2 });
    let second = live.snapshot();
    assert_eq!(second.world_sha256, sha(&path));
    assert!(Arc::ptr_eq(&first.plan, &second.plan) && !Arc::ptr_eq(&first.world, &second.world));
    assert_eq!(live.select(&req()).instance().map(|i| i.phone().to_owned()), Some("11".to_owned()));
    // An invalid JSON world is diagnosed at its line, and the last good one kept.
    fs::write(&path, world("11").replace("\"index\":2", "\"index\":\"2\"")).unwrap();
    let ReloadEvent::Failed { error, .. } = live.reload() else { panic!("the invalid world was accepted") };
    assert!(error.contains("world.json:3:"), "{error}");
    assert!(Arc::ptr_eq(&second.world, &live.snapshot().world));
}

#[test]
fn a_world_from_a_fifo_is_read_once() {
    // `--world <(…)` or a named pipe: the world can be read once only, so
    // it is read, hashed and built in one pass (a regular file is hashed
    // first, then read again only when it changed).
    let dir = temp_with(&[("rules.yaml", RULES_DEFAULT)]);
    let fifo = dir.path().join("world.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let writer = {
        let fifo = fifo.clone();
        // Opening a FIFO for writing waits for its reader; a second reader
        // would wait for a writer that never comes.
        std::thread::spawn(move || fs::write(&fifo, WORLD).unwrap())
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let rules = dir.path().join("rules.yaml");
    std::thread::spawn(move || {
        let live = Live::open(registry(), rules, Some(fifo));
        let _ = tx.send(
            live.map(|l| (summary(&l.select(&req())), l.snapshot().world_sha256.clone())).map_err(|e| e.to_string()),
        );
    });
    let opened = rx.recv_timeout(Duration::from_secs(20)).expect("Live::open blocked on the FIFO: it was opened twice");
    writer.join().unwrap();
    let (selected, sha) = opened.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(selected, "b");
    assert_eq!(sha, Some(switchboard::sha256_hex(WORLD.as_bytes())));
}

#[test]
fn a_reload_refuses_a_world_over_its_size_limit() {
    let rules = "rules: [default_instance, any_available]\nlimits: {max_world_bytes: 400}\n";
    let (dir, live) = setup(rules);
    fs::write(dir.path().join("world.yaml"), format!("{WORLD}# {}\n", "x".repeat(500))).unwrap();
    match live.reload() {
        ReloadEvent::Failed { generation: 1, error } => {
            assert!(error.contains("the limit is 400 (limits.max_world_bytes in rules.yaml)"), "{error}")
        }
        other => panic!("expected the oversized world to be refused, got {other:?}"),
    }
    assert_eq!(summary(&live.select(&req())), "b");
}

#[test]
fn a_watched_directory_at_rest_schedules_no_reload() {
    let (dir, live) = setup(RULES_DEFAULT);
    let events = live.subscribe();
    let _watch = live.watch().unwrap();
    write_via_rename(dir.path(), "rules.yaml", RULES_ANY);
    let first = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, ReloadEvent::Reloaded { generation: 2 });
    // A manual reload (what SIGHUP does) reads both files again.
    assert_eq!(live.reload(), ReloadEvent::Unchanged { generation: 2 });
    assert_eq!(events.recv_timeout(Duration::from_secs(1)).unwrap(), ReloadEvent::Unchanged { generation: 2 });
    // Reading the files, and writing an unrelated file next to them (a
    // decision log, say), must not schedule anything.
    for i in 0..20 {
        fs::write(dir.path().join("decisions.log"), format!("line {i}\n")).unwrap();
        let _ = fs::read_to_string(dir.path().join("rules.yaml")).unwrap();
    }
    let after: Vec<ReloadEvent> = std::iter::from_fn(|| events.recv_timeout(Duration::from_secs(3)).ok()).collect();
    assert!(after.is_empty(), "a directory at rest produced reloads: {after:?}");
    assert_eq!(live.status().generation, 2);
}

#[test]
fn the_world_is_read_under_the_limits_of_the_rules_file_loaded_with_it() {
    // The first load: a world over the rules file's limit is refused, as `select` refuses it.
    let small = "limits: {max_world_bytes: 100}\nrules: [default_instance, any_available]\n";
    let dir = temp_with(&[("rules.yaml", small), ("world.yaml", WORLD)]);
    let err = Live::open(registry(), dir.path().join("rules.yaml"), Some(dir.path().join("world.yaml"))).unwrap_err();
    assert!(err.to_string().contains("the limit is 100 (limits.max_world_bytes"), "{err}");
    // A reload that raises the limit and changes the world together applies the new limit.
    let (dir, live) = setup(small.replace("100", "100000").as_str());
    write_via_rename(dir.path(), "world.yaml", &WORLD.replace("default: true", "default: false"));
    write_via_rename(dir.path(), "rules.yaml", &small.replace("100", "1000"));
    assert!(matches!(live.reload(), ReloadEvent::Reloaded { .. }), "{:?}", live.status());
    assert_eq!(summary(&live.select(&req())), "a");
}

/// docs/capacity.md: the capacity store outlives plans: a reload with the same
/// `capacity:` store keeps the same store (and so its counts); another
/// store section gets its own.
#[test]
fn a_reload_keeps_the_capacity_store() {
    let (dir, live) = setup("rules: [any_available]\ncapacity: {store: memory}\n");
    let first = live.snapshot().plan.store().cloned().unwrap();
    fs::write(dir.path().join("rules.yaml"), "rules: [default_instance, any_available]\ncapacity: {store: memory}\n")
        .unwrap();
    assert!(matches!(live.try_reload(), Ok(ReloadEvent::Reloaded { .. })));
    let second = live.snapshot().plan.store().cloned().unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the reload opened a new store");
    // No section is the default memory store: the same one.
    fs::write(dir.path().join("rules.yaml"), RULES_ANY).unwrap();
    assert!(matches!(live.try_reload(), Ok(ReloadEvent::Reloaded { .. })));
    assert!(Arc::ptr_eq(&first, live.snapshot().plan.store().unwrap()));
    fs::write(
        dir.path().join("rules.yaml"),
        "rules: [any_available]\ncapacity: {store: redis, redis_url: 'redis://127.0.0.1:1/0'}\n",
    )
    .unwrap();
    assert!(matches!(live.try_reload(), Ok(ReloadEvent::Reloaded { .. })));
    assert!(!Arc::ptr_eq(&first, live.snapshot().plan.store().unwrap()));
}

#[test]
fn forget_erases_one_conversation_memory_in_the_store_kept_across_reloads() {
    let (_dir, live) = setup(RULES_DEFAULT);
    let now = switchboard::capacity::jiff::Timestamp::from_second(1_790_000_000).unwrap();
    let key = switchboard::ConversationKey { location: "shop", channel: "whatsapp", contact: "c-1" };
    let store = live.snapshot().plan.store().cloned().expect("Live attaches a store");
    store.remember(&key, "a", Duration::from_secs(3600), now).unwrap();
    live.reload();
    assert_eq!(live.forget("shop", "whatsapp", "c-2"), Ok(false));
    assert_eq!(live.forget("shop", "whatsapp", "c-1"), Ok(true));
    assert_eq!(store.recall(&key, now).unwrap(), None);
    assert_eq!(live.forget("shop", "whatsapp", "c-1"), Ok(false));
}
