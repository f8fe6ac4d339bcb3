//! Live configuration: a rules file and a world file compiled into one
//! [`Snapshot`], swapped atomically when the files change (docs/library.md).
//!
//! Two parts, as tracing-subscriber splits `reload::Handle` from what drives
//! it: [`Live`] is the *handle* (select on the snapshot in force, reload now,
//! report status, subscribe to events); [`Watch`] is the *driver* that only
//! decides *when* to reload. Every selection loads one snapshot (an
//! `arc-swap` load, no lock) and runs entirely on it; a reload builds a new
//! snapshot off the selection path and swaps it in only when both files are
//! valid, so a bad edit never drops the working configuration.
//!
//! [`Live::watch`] watches the files' *parent directories* with `notify`,
//! because editors and Kubernetes replace files rather than write them: a
//! write to a temporary file then `rename`, vim's backup-then-write, delete
//! then create, and a ConfigMap's `..data` symlink swap all show up as
//! events in the directory. Only events that can change content (create,
//! data modification, rename, removal) of a watched file name or of a
//! `..`-prefixed ConfigMap entry schedule a reload: opening and reading a
//! file (which every reload does) never does, so a watcher at rest stays at
//! rest. Events are debounced; a reload whose file contents did not change
//! is skipped.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let live = switchboard::Live::open(switchboard::registry()?, "rules.yaml", Some("world.yaml"))?;
//! let _watch = live.watch()?;                  // reloads until dropped
//! let request = switchboard::Request::from_json(r#"{"location":"shop","channel":"sms","body":"hi"}"#)?;
//! let decision = live.select(&request);        // always a complete, valid configuration
//! println!("{} (generation {})", decision.to_json(), live.status().generation);
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use switchboard_core::capacity::jiff::{self, Timestamp};
use switchboard_core::{
    ConversationKey, DeliveryUpdate, LiveState, Registry, Request, StatusUpdate, StoreError, StoreErrorKind, World,
};
use switchboard_engine::{Decision, Diagnostic, FileErrors, Plan};

use crate::StoreHealth;

/// How long the files must be quiet before a reload: editors write in
/// bursts (truncate, write, chmod, rename).
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a burst of events can postpone a reload: a file rewritten
/// continuously is still reloaded this often.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// The files could not be loaded; every problem of every file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadErrors(pub Vec<FileErrors>);

impl LoadErrors {
    /// Every problem as `(file, diagnostic)`, in file order.
    pub fn diagnostics(&self) -> impl Iterator<Item = (&str, &Diagnostic)> {
        self.0.iter().flat_map(|f| f.diagnostics.iter().map(move |d| (f.file.as_str(), d)))
    }
}

/// One consistent configuration: the plan and the world it selects over,
/// with the sha256 of the file contents they were compiled from.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled rules file.
    pub plan: Arc<Plan>,
    /// The world.
    pub world: Arc<World>,
    /// Increases by one with each successful reload (the first is 1).
    pub generation: u64,
    /// sha256 (lowercase hex) of the rules file's bytes.
    pub rules_sha256: String,
    /// sha256 (lowercase hex) of the world file's bytes; `None` without a
    /// world file.
    pub world_sha256: Option<String>,
}

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A new configuration is in force.
    Reloaded {
        /// Its generation.
        generation: u64,
    },
    /// The files did not change; nothing was swapped.
    Unchanged {
        /// The generation still in force.
        generation: u64,
    },
    /// A file is invalid or unreadable; the previous configuration stays.
    Failed {
        /// The generation still in force.
        generation: u64,
        /// Every problem, as `file:line:column: message` lines.
        error: String,
    },
}

/// What an embedding application can read about reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// The generation in force.
    pub generation: u64,
    /// When a reload was last attempted.
    pub last_attempt: Option<SystemTime>,
    /// When a configuration was last swapped in (or first loaded).
    pub last_success: Option<SystemTime>,
    /// The error of the last attempt, if it failed.
    pub last_error: Option<String>,
    /// sha256 (hex) of the rules file in force.
    pub rules_sha256: String,
    /// sha256 (hex) of the world file in force; `None` without one.
    pub world_sha256: Option<String>,
    /// The enabled rules of each channel, in priority order.
    pub order: Vec<(String, Vec<String>)>,
}

/// Reload bookkeeping that is not part of a snapshot.
#[derive(Debug, Default)]
struct Attempts {
    last_attempt: Option<SystemTime>,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
}

struct Inner {
    registry: Arc<Registry>,
    rules: PathBuf,
    world: Option<PathBuf>,
    current: ArcSwap<Snapshot>,
    attempts: Mutex<Attempts>,
    subscribers: Mutex<Vec<Sender<ReloadEvent>>>,
    /// Serializes reloads (the watcher, SIGHUP, manual calls).
    reloading: Mutex<()>,
    /// The capacity stores, kept across reloads so that counts survive.
    stores: crate::Stores,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Status bookkeeping stays usable even if a thread panicked holding it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle on a reloadable configuration; cheap to clone and share.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("rules", &self.inner.rules).field("world", &self.inner.world).finish()
    }
}

impl Inner {
    /// Reads both files and compiles what changed, reusing the half of the
    /// current snapshot whose file did not change. The world is read under
    /// the size limit of the plan being loaded (so a rules file that changes
    /// `limits.max_world_bytes` applies it to the world read with it). All
    /// problems of both files are reported together.
    fn attempt(&self, current: &Snapshot, loaded: bool) -> Result<Option<Snapshot>, LoadErrors> {
        let mut errors: Vec<FileErrors> = Vec::new();
        let rules = crate::read_text(&self.rules).map_err(|e| errors.push(e)).ok();
        let rules_sha256 = rules.as_deref().map(|t| switchboard_files::sha256_hex(t.as_bytes()));
        // A WebAssembly module that changed on disk is loaded again, even
        // when the rules file did not change.
        let modules_changed = loaded
            && switchboard_plugin_wasm::modules_changed(current.plan.plugins(), &self.rules.display().to_string());
        let plan = match (&rules, &rules_sha256) {
            (_, Some(hash)) if loaded && !modules_changed && *hash == current.rules_sha256 => {
                Some(current.plan.clone())
            }
            (Some(text), _) => crate::compile_rules_in(text, &self.rules, &self.registry, &self.stores)
                .map(Arc::new)
                .map_err(|e| errors.push(e))
                .ok(),
            _ => None,
        };
        let max = plan.as_deref().map_or(current.plan.limits(), Plan::limits).max_world_bytes;
        // The world is compiled against the plan's registry (plugins add
        // channels); it is reused only while that channel set is the same.
        let registry = plan.as_ref().map_or(&self.registry, |p| p.registry());
        let load = |path: &Path| crate::load_world_hashed(path, max, crate::WORLD_LIMIT, registry);
        // A world is read, hashed and built in one pass (a JSON world
        // streamed, never held whole as text) except on a reload of a
        // regular file: that is hashed first, in chunks, so that an
        // unchanged world is not built again. (A first load has nothing to
        // compare with, and a pipe or a FIFO, `--world <(…)`, can be read
        // once only.)
        let mut built: Option<World> = None;
        let mut world_sha256: Option<Option<String>> = match self.world.as_deref() {
            None => Some(None),
            Some(path) if !(loaded && std::fs::metadata(path).is_ok_and(|m| m.is_file())) => match load(path) {
                Ok((world, hash)) => {
                    built = Some(world);
                    Some(Some(hash))
                }
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            Some(path) => crate::file_sha256(path, max, crate::WORLD_LIMIT).map(Some).map_err(|e| errors.push(e)).ok(),
        };
        if loaded
            && !modules_changed
            && rules_sha256.as_ref() == Some(&current.rules_sha256)
            && world_sha256.as_ref() == Some(&current.world_sha256)
        {
            return Ok(None);
        }
        let same_channels = registry.channel_ids().eq(current.plan.registry().channel_ids());
        let world = match (&world_sha256, &self.world, built) {
            (Some(hash), _, _) if loaded && *hash == current.world_sha256 && same_channels => {
                Some(current.world.clone())
            }
            (Some(None), _, _) => Some(Arc::new(World::empty())),
            (Some(Some(_)), _, Some(world)) => Some(Arc::new(world)),
            (Some(Some(_)), Some(path), None) => match load(path) {
                Ok((world, hash)) => {
                    // The hash of what was read (the file may have changed
                    // since it was first hashed).
                    world_sha256 = Some(Some(hash));
                    Some(Arc::new(world))
                }
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            _ => None,
        };
        match (plan, world, rules_sha256, world_sha256) {
            (Some(plan), Some(world), Some(rules_sha256), Some(world_sha256)) if errors.is_empty() => {
                Ok(Some(Snapshot { plan, world, generation: current.generation + 1, rules_sha256, world_sha256 }))
            }
            _ => Err(LoadErrors(errors)),
        }
    }

    /// Reloads: swaps in a new snapshot when the files changed and are
    /// valid, and tells every subscriber what happened.
    fn reload(&self) -> Result<ReloadEvent, (ReloadEvent, LoadErrors)> {
        let _one_at_a_time = lock(&self.reloading);
        let now = SystemTime::now();
        let current = self.current.load_full();
        // A configuration that failed last time is compiled again even if
        // the files equal the snapshot's (a revert clears the error).
        let loaded = lock(&self.attempts).last_error.is_none();
        let outcome = match self.attempt(&current, loaded && current.generation > 0) {
            Ok(None) => {
                lock(&self.attempts).last_attempt = Some(now);
                Ok(ReloadEvent::Unchanged { generation: current.generation })
            }
            Ok(Some(snapshot)) => {
                let generation = snapshot.generation;
                self.current.store(Arc::new(snapshot));
                *lock(&self.attempts) = Attempts { last_attempt: Some(now), last_success: Some(now), last_error: None };
                Ok(ReloadEvent::Reloaded { generation })
            }
            Err(errors) => {
                let error = errors.to_string();
                let mut attempts = lock(&self.attempts);
                attempts.last_attempt = Some(now);
                attempts.last_error = Some(error.clone());
                Err((ReloadEvent::Failed { generation: current.generation, error }, errors))
            }
        };
        let event = match &outcome {
            Ok(event) | Err((event, _)) => event.clone(),
        };
        lock(&self.subscribers).retain(|s| s.send(event.clone()).is_ok());
        outcome
    }
}

/// Applies the events of `body`, checked against `world`, to the store of
/// `plan` (see [`Live::record`]); `now` dates the events that carry no
/// `time`.
pub(crate) fn record_on(plan: &Plan, world: &World, body: &str, now: Timestamp) -> crate::events::Recorded {
    let mut recorded = crate::events::Recorded::default();
    for (line, parsed) in crate::events::parse_body(body, now) {
        let applied = parsed.and_then(|event| {
            event.check(world)?;
            let quarantined = apply(plan, &event)?;
            Ok((event, quarantined))
        });
        match applied {
            Ok((event, quarantined)) => {
                recorded.quarantines += u64::from(quarantined);
                recorded.accepted.push(event);
            }
            Err(rejection) => recorded.rejected.push((line, rejection)),
        }
    }
    recorded
}

/// [`Live::instances`] on `snapshot` as of `now`.
pub(crate) fn instances_on(snapshot: &Snapshot, location: &str, now: Timestamp) -> Option<serde_json::Value> {
    use serde_json::{json, Value};
    let place = snapshot.world.location(location)?;
    let store = snapshot.plan.store();
    let mut store_error: Option<String> = None;
    let state = match store.map(|s| s.live_state(location)) {
        Some(Ok(state)) => state,
        Some(Err(e)) => {
            store_error = Some(e.to_string());
            switchboard_core::LiveState::default()
        }
        None => switchboard_core::LiveState::default(),
    };
    let time = |t: Timestamp| Value::String(t.to_string());
    // Health, with the `health:` section: every instance's state and its
    // deliveries in the current window (zeros for one with no delivery yet).
    let health = match (snapshot.plan.health(), store) {
        (Some(policy), Some(store)) => match store.health(location, policy.window, now) {
            Ok(records) => Some(records),
            Err(e) => {
                store_error = Some(e.to_string());
                None
            }
        },
        _ => None,
    };
    let health_of = |id: &str| -> Value {
        let Some(records) = &health else { return Value::Null };
        let (record, counts) = records
            .iter()
            .find(|(i, _, _)| i == id)
            .map_or((switchboard_core::HealthRecord::default(), Default::default()), |(_, r, c)| (*r, *c));
        let state = record.state(now);
        json!({
            "state": state.as_str(),
            "consecutive_failures": record.consecutive_failures,
            "until": record.quarantined_until(now).map(time),
            "deliveries": counts.deliveries,
            "failures": counts.failures,
        })
    };
    let instances: Vec<Value> = place
        .instances()
        .iter()
        .map(|i| {
            let found = state.override_of(i.id(), now);
            let over = found.map_or(Value::Null, |o| {
                json!({"connected": o.connected, "reason": o.reason, "time": time(o.time), "until": o.until.map(time)})
            });
            let limits = &i.limits_at(now, place.timezone());
            let usage = match (store, limits.is_unlimited()) {
                (_, true) => json!({}),
                (None, false) => Value::Null,
                (Some(store), false) => {
                    let request = switchboard_core::ReservationRequest {
                        limits: *limits,
                        ..switchboard_core::ReservationRequest::new(place.id(), place.timezone(), i.id(), now)
                    };
                    match store.usage(&request) {
                        Ok(usage) => {
                            let c = usage.instance;
                            let pairs = [
                                ("per_minute", limits.per_minute, c.minute),
                                ("per_hour", limits.per_hour, c.hour),
                                ("per_day", limits.per_day, c.day),
                                ("contacts_per_day", limits.contacts_per_day, c.contacts),
                            ];
                            let map: serde_json::Map<String, Value> = pairs
                                .iter()
                                .filter_map(|(k, limit, used)| {
                                    limit.map(|l| ((*k).to_owned(), json!({"used": used, "limit": l})))
                                })
                                .collect();
                            Value::Object(map)
                        }
                        Err(e) => {
                            store_error = Some(e.to_string());
                            Value::Null
                        }
                    }
                }
            };
            json!({
                "id": i.id(),
                "channel": i.channel(),
                "index": i.index(),
                "connected": found.map_or(i.is_connected(), |o| o.connected),
                "connected_in_file": i.is_connected(),
                "override": over,
                "health": health_of(i.id()),
                "usage": usage,
                "warmup": i.warmup().map_or(Value::Null, |w| {
                    let (day, per_day) = w.at(now, place.timezone());
                    json!({"day": day, "per_day": per_day})
                }),
            })
        })
        .collect();
    let mut answer = json!({"location": location, "generation": snapshot.generation, "instances": instances});
    if let Some(e) = store_error {
        answer["store_error"] = Value::String(e);
    }
    Some(answer)
}

/// Applies one checked event to the plan's store; whether it started a
/// quarantine.
pub(crate) fn apply(plan: &Plan, event: &crate::events::Event) -> Result<bool, crate::events::Rejection> {
    use crate::events::{EventKind, Rejection};
    let type_name = event.kind.type_name();
    let failed = |e: StoreError| Rejection {
        type_name,
        message: format!("{type_name} event: not applied: {e}; send it again once the store answers"),
    };
    match &event.kind {
        EventKind::InstanceStatus { connected, reason, ttl } => {
            let Some(store) = plan.store() else {
                return Err(failed(StoreError::new(StoreErrorKind::Config, "the configuration has no store")));
            };
            let until = ttl.map(|ttl| {
                let span = jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
                event.time.checked_add(span).unwrap_or(Timestamp::MAX)
            });
            let update = StatusUpdate {
                location: &event.location,
                instance: &event.instance,
                time: event.time,
                set: connected.map(|c| (c, reason.as_deref(), until)),
            };
            // A stale event (older than the last one applied to the
            // instance) is accepted and changes nothing.
            store.apply_status(&update).map(|_| false).map_err(failed)
        }
        // Without a `health:` section a delivery is counted in the metrics
        // and changes nothing else.
        EventKind::Delivery { status } => {
            let (Some(policy), Some(store)) = (plan.health(), plan.store()) else { return Ok(false) };
            let update = DeliveryUpdate {
                location: &event.location,
                instance: &event.instance,
                time: event.time,
                failed: *status == crate::events::DeliveryStatus::Failed,
            };
            store.record_delivery(&update, policy).map(|t| t.quarantined).map_err(failed)
        }
        // The contact wrote in: unless its memory on that channel is more
        // recent, the instance becomes its conversation instance, for the
        // chain's conversation `ttl` (7 days without one).
        EventKind::Inbound { channel, contact } => {
            let Some(store) = plan.store() else {
                return Err(failed(StoreError::new(StoreErrorKind::Config, "the configuration has no store")));
            };
            let ttl = plan.memory_ttl(channel).unwrap_or(Duration::from_secs(7 * 86_400));
            let key = ConversationKey { location: &event.location, channel, contact };
            store.record_inbound(&key, &event.instance, event.time, ttl).map(|_| false).map_err(failed)
        }
    }
}

/// The enabled rules of each channel of the plan's registry (plugin
/// channels included), in priority order.
fn orders(plan: &Plan) -> Vec<(String, Vec<String>)> {
    plan.registry()
        .channel_ids()
        .map(|c| (c.to_owned(), plan.order(c).into_iter().map(str::to_owned).collect()))
        .collect()
}

impl Live {
    /// Loads the rules file (and world file) once; fails, naming every
    /// problem, if either is invalid. The world is read under the rules
    /// file's `limits.max_world_bytes`.
    pub fn open(
        registry: Arc<Registry>,
        rules: impl Into<PathBuf>,
        world: Option<impl Into<PathBuf>>,
    ) -> Result<Live, LoadErrors> {
        let rules = rules.into();
        let world = world.map(Into::into);
        let empty = switchboard_files::compile("rules: []", "-", registry.clone()).map_err(|e| LoadErrors(vec![e]))?;
        let placeholder = Snapshot {
            plan: Arc::new(empty),
            world: Arc::new(World::empty()),
            generation: 0,
            rules_sha256: String::new(),
            world_sha256: None,
        };
        let inner = Inner {
            registry,
            rules,
            world,
            current: ArcSwap::from_pointee(placeholder),
            attempts: Mutex::new(Attempts::default()),
            subscribers: Mutex::new(Vec::new()),
            reloading: Mutex::new(()),
            stores: crate::Stores::new(),
        };
        match inner.reload() {
            Err((_, errors)) => Err(errors),
            Ok(_) => Ok(Live { inner: Arc::new(inner) }),
        }
    }

    /// Decides `request` on the configuration in force when the call
    /// starts, counted or as a preview.
    pub fn decide(&self, request: &Request, intent: crate::Intent) -> Decision {
        self.inner.current.load().decide(request, intent)
    }

    /// Selects on the configuration in force when the call starts.
    pub fn select(&self, request: &Request) -> Decision {
        self.decide(request, crate::Intent::Select)
    }

    /// Decides `request` on the configuration in force without counting
    /// against capacity limits ([`Plan::preview`]: explain, `--dry-run`).
    pub fn preview(&self, request: &Request) -> Decision {
        self.decide(request, crate::Intent::Preview)
    }

    /// Erases the conversation memory of `contact` on `channel` at
    /// `location` (docs/capacity.md, `POST /v1/forget`) in the store of the
    /// configuration in force; whether there was one. Without a store (a
    /// plan never compiled through [`crate::Stores`]) there is nothing to
    /// forget: `Ok(false)`.
    pub fn forget(&self, location: &str, channel: &str, contact: &str) -> Result<bool, StoreError> {
        let snapshot = self.inner.current.load();
        match snapshot.plan.store() {
            Some(store) => store.forget(&ConversationKey { location, channel, contact }),
            None => Ok(false),
        }
    }

    /// Applies events from the send path (docs/live-state.md) to the store of the
    /// configuration in force: `body` is one event (a JSON object) or JSON
    /// Lines. Every valid line is checked against the world in force and
    /// applied, in order, even when others are rejected; an event without
    /// `time` is dated now. Blocks for one round trip per event with Redis.
    pub fn record(&self, body: &str) -> crate::events::Recorded {
        let snapshot = self.inner.current.load_full();
        record_on(&snapshot.plan, &snapshot.world, body, switchboard_core::capacity::clock())
    }

    /// The live state of `location`'s instances (docs/live-state.md, `GET
    /// /v1/instances`): `{"location", "generation", "instances": [{"id",
    /// "channel", "index", "connected", "connected_in_file", "override",
    /// "health", "usage", "warmup"}]}`, as of now; `None` when the world in
    /// force has no such location. A store that cannot answer shows the
    /// file's values with `"override": null` and `"usage": null`, and the
    /// error in `"store_error"`.
    pub fn instances(&self, location: &str) -> Option<serde_json::Value> {
        let snapshot = self.inner.current.load_full();
        instances_on(&snapshot, location, switchboard_core::capacity::clock())
    }

    /// How many instances of the world in force have a `connected` override
    /// in force now (for `/v1/status`).
    pub fn overridden_instances(&self) -> Result<u64, StoreError> {
        self.count_instances(|state, id, now| state.override_of(id, now).is_some())
    }

    /// How many instances of the world in force are quarantined now (for
    /// `/v1/status` and the `switchboard_instances_quarantined` gauge): as
    /// this process sees the store, fleet-wide with Redis.
    pub fn quarantined_instances(&self) -> Result<u64, StoreError> {
        self.count_instances(|state, id, now| state.quarantined_until(id, now).is_some())
    }

    /// How many instances of the world in force, among the locations with
    /// live state, `counts` at the clock's now.
    fn count_instances(&self, counts: impl Fn(&LiveState, &str, Timestamp) -> bool) -> Result<u64, StoreError> {
        let snapshot = self.inner.current.load_full();
        let Some(store) = snapshot.plan.store() else { return Ok(0) };
        let now = switchboard_core::capacity::clock();
        let mut n = 0u64;
        for location in store.live_locations()? {
            let Some(place) = snapshot.world.location(&location) else { continue };
            let state = store.live_state(&location)?;
            n += place.instances().iter().filter(|i| counts(&state, i.id(), now)).count() as u64;
        }
        Ok(n)
    }

    /// The health of the capacity store of the configuration in force (a
    /// memory store without a `capacity:` section), as the calls made on it
    /// have seen it. Cheap: nothing is asked of the store.
    pub fn store_health(&self) -> Option<StoreHealth> {
        let snapshot = self.inner.current.load();
        self.inner.stores.health(&snapshot.plan.capacity().cloned().unwrap_or_default())
    }

    /// Pings the capacity store of the configuration in force and answers
    /// its health after the ping. Blocks for one round trip with Redis
    /// (within its timeouts): call it off an async worker.
    pub fn check_store(&self) -> Option<StoreHealth> {
        let snapshot = self.inner.current.load_full();
        self.inner.stores.check(&snapshot.plan.capacity().cloned().unwrap_or_default())
    }

    /// Capacity store errors seen so far by every store this handle opened
    /// (never decreases; for a counter metric).
    pub fn store_errors_total(&self) -> u64 {
        self.inner.stores.errors_total()
    }

    /// The configuration in force (keep it to run several selections on
    /// one configuration).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Reloads now (also what SIGHUP does in the CLI).
    pub fn reload(&self) -> ReloadEvent {
        match self.inner.reload() {
            Ok(event) | Err((event, _)) => event,
        }
    }

    /// Reloads now; a failure comes back with every located problem (the
    /// previous configuration stays in force).
    pub fn try_reload(&self) -> Result<ReloadEvent, LoadErrors> {
        self.inner.reload().map_err(|(_, errors)| errors)
    }

    /// The reload status.
    pub fn status(&self) -> ReloadStatus {
        let snapshot = self.snapshot();
        let attempts = lock(&self.inner.attempts);
        ReloadStatus {
            generation: snapshot.generation,
            last_attempt: attempts.last_attempt,
            last_success: attempts.last_success,
            last_error: attempts.last_error.clone(),
            rules_sha256: snapshot.rules_sha256.clone(),
            world_sha256: snapshot.world_sha256.clone(),
            order: orders(&snapshot.plan),
        }
    }

    /// Every reload attempt from now on, as it happens.
    pub fn subscribe(&self) -> Receiver<ReloadEvent> {
        let (tx, rx) = mpsc::channel();
        lock(&self.inner.subscribers).push(tx);
        rx
    }

    /// The files this engine reads.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.inner.rules.as_path()).chain(self.inner.world.as_deref())
    }

    /// Starts watching the files; reloads happen on a background thread
    /// until the returned handle is dropped.
    pub fn watch(&self) -> Result<Watch, notify::Error> {
        Watch::start(self.clone())
    }
}

/// Whether a filesystem event can change what a reload would read: a
/// change of content, name or existence (never an open, read or close, nor
/// a permission change) of one of `names` or of a ConfigMap's `..` entry.
fn schedules_reload(event: &notify::Event, names: &[OsString]) -> bool {
    let kind = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Other => false,
    };
    kind && event
        .paths
        .iter()
        .any(|p| p.file_name().is_some_and(|n| names.iter().any(|w| w == n) || n.as_encoded_bytes().starts_with(b"..")))
}

/// The driver of a [`Live`] handle: watches the files and decides *when*
/// to reload; dropping it stops the watcher and its thread.
pub struct Watch {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    fn start(live: Live) -> Result<Watch, notify::Error> {
        let names: Vec<OsString> = live.paths().filter_map(|p| p.file_name().map(ToOwned::to_owned)).collect();
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| schedules_reload(&e, &names)) {
                let _ = tx.send(());
            }
        })?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for path in live.paths() {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                watcher.watch(&dir, RecursiveMode::NonRecursive)?;
                dirs.push(dir);
            }
        }
        let thread = std::thread::Builder::new()
            .name("switchboard-reload".into())
            .spawn(move || debounce_loop(&rx, &live))
            .map_err(|e| notify::Error::generic(&format!("cannot start the reload thread: {e}")))?;
        Ok(Watch { watcher: Some(watcher), thread: Some(thread) })
    }
}

fn debounce_loop(events: &Receiver<()>, live: &Live) {
    while events.recv().is_ok() {
        let first = std::time::Instant::now();
        while first.elapsed() < MAX_DELAY {
            match events.recv_timeout(DEBOUNCE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        live.reload();
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Dropping the watcher drops the event sender, which ends the thread.
        drop(self.watcher.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
