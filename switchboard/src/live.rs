//! Live configuration: a rules file and a world file compiled into one
//! [`Snapshot`], swapped atomically when the files change (SPEC §6).
//!
//! Every selection loads one snapshot (an `arc-swap` load, no lock) and
//! runs entirely on it; a reload builds a new snapshot off the selection
//! path and swaps it in only when both files are valid, so a bad edit never
//! drops the working configuration.
//!
//! [`Live::watch`] watches the files' *parent directories* with `notify`,
//! because editors and Kubernetes replace files rather than write them: a
//! write to a temporary file then `rename`, vim's backup-then-write, delete
//! then create, and a ConfigMap's `..data` symlink swap all show up as
//! events in the directory. Events are debounced; a reload whose file
//! contents did not change is skipped.
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

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use switchboard_core::{content_hash, Decision, FileErrors, Plan, Registry, Request, World};

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

/// One consistent configuration: the plan and the world it selects over.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled rules file.
    pub plan: Arc<Plan>,
    /// The world.
    pub world: Arc<World>,
    /// Increases by one with each successful reload (the first is 1).
    pub generation: u64,
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
    /// Hash of the rules file text in force.
    pub rules_hash: u64,
    /// Hash of the world file text in force (0 without a world file).
    pub world_hash: u64,
    /// The enabled rules of each channel, in priority order.
    pub order: Vec<(String, Vec<String>)>,
}

struct Inner {
    registry: Arc<Registry>,
    rules: PathBuf,
    world: Option<PathBuf>,
    current: ArcSwap<Snapshot>,
    status: Mutex<ReloadStatus>,
    subscribers: Mutex<Vec<Sender<ReloadEvent>>>,
    /// Serializes reloads (the watcher, SIGHUP, manual calls).
    reloading: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Status bookkeeping stays usable even if a thread panicked holding it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The engine with a reloadable configuration; cheap to clone and share.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("rules", &self.inner.rules).field("world", &self.inner.world).finish()
    }
}

/// The texts of the files as read for one reload attempt, each with its
/// content hash (0 for no world file).
struct Texts {
    rules: Result<(String, u64), FileErrors>,
    world: Result<Option<(String, u64)>, FileErrors>,
}

impl Texts {
    fn hashes(&self) -> Option<(u64, u64)> {
        let rules = self.rules.as_ref().ok()?.1;
        let world = self.world.as_ref().ok()?.as_ref().map_or(0, |(_, h)| *h);
        Some((rules, world))
    }
}

fn hashed(text: String) -> (String, u64) {
    let hash = content_hash(text.as_bytes());
    (text, hash)
}

impl Inner {
    fn read(&self) -> Texts {
        let max_world = self.current.load().plan.limits().max_world_bytes;
        let world = self.world.as_deref().map(|path| crate::read_text_limited(path, max_world, crate::WORLD_LIMIT));
        Texts { rules: crate::read_text(&self.rules).map(hashed), world: world.transpose().map(|w| w.map(hashed)) }
    }

    /// Compiles what changed; reuses the half of the current snapshot whose
    /// file did not. All problems of both files are reported together.
    fn compile(&self, texts: Texts, before: &ReloadStatus) -> Result<(Arc<Plan>, Arc<World>), LoadErrors> {
        let current = self.current.load();
        let mut errors: Vec<FileErrors> = Vec::new();
        let plan = match texts.rules {
            Ok((_, hash)) if before.last_success.is_some() && hash == before.rules_hash => Some(current.plan.clone()),
            Ok((text, _)) => {
                crate::compile_rules(&text, &self.rules, &self.registry).map(Arc::new).map_err(|e| errors.push(e)).ok()
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        // The world is compiled against the plan's registry (plugins add
        // channels); it is reused only while that channel set is the same.
        let registry = plan.as_ref().map_or(&self.registry, |p| p.registry());
        let same_channels = registry.channel_ids().eq(current.plan.registry().channel_ids());
        let world = match (texts.world, &self.world) {
            (Ok(Some((_, hash))), _) if before.last_success.is_some() && hash == before.world_hash && same_channels => {
                Some(current.world.clone())
            }
            (Ok(Some((text, _))), Some(path)) => World::from_str(&text, &path.display().to_string(), registry)
                .map(Arc::new)
                .map_err(|e| errors.push(e))
                .ok(),
            (Err(e), _) => {
                errors.push(e);
                None
            }
            _ => Some(Arc::new(World::empty())),
        };
        match (plan, world) {
            (Some(plan), Some(world)) if errors.is_empty() => Ok((plan, world)),
            _ => Err(LoadErrors(errors)),
        }
    }

    fn reload(&self) -> ReloadEvent {
        self.reload_reporting().0
    }

    /// Reloads; also returns the typed errors of a failure.
    fn reload_reporting(&self) -> (ReloadEvent, Option<LoadErrors>) {
        let _one_at_a_time = lock(&self.reloading);
        let now = SystemTime::now();
        let before = lock(&self.status).clone();
        let texts = self.read();
        let hashes = texts.hashes();
        let mut failure = None;
        let event = if before.last_error.is_none() && hashes == Some((before.rules_hash, before.world_hash)) {
            lock(&self.status).last_attempt = Some(now);
            ReloadEvent::Unchanged { generation: before.generation }
        } else {
            match self.compile(texts, &before) {
                Ok((plan, world)) => {
                    let generation = before.generation + 1;
                    let order = orders(&plan);
                    let (rules_hash, world_hash) = hashes.unwrap_or_default();
                    self.current.store(Arc::new(Snapshot { plan, world, generation }));
                    *lock(&self.status) = ReloadStatus {
                        generation,
                        last_attempt: Some(now),
                        last_success: Some(now),
                        last_error: None,
                        rules_hash,
                        world_hash,
                        order,
                    };
                    ReloadEvent::Reloaded { generation }
                }
                Err(errors) => {
                    let error = errors.to_string();
                    let mut status = lock(&self.status);
                    status.last_attempt = Some(now);
                    status.last_error = Some(error.clone());
                    failure = Some(errors);
                    ReloadEvent::Failed { generation: before.generation, error }
                }
            }
        };
        lock(&self.subscribers).retain(|s| s.send(event.clone()).is_ok());
        (event, failure)
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
    /// problem, if either is invalid.
    pub fn open(
        registry: Arc<Registry>,
        rules: impl Into<PathBuf>,
        world: Option<impl Into<PathBuf>>,
    ) -> Result<Live, LoadErrors> {
        let rules = rules.into();
        let world = world.map(Into::into);
        let empty = Plan::compile("rules: []", "-", registry.clone()).map_err(|e| LoadErrors(vec![e]))?;
        let placeholder = Snapshot { plan: Arc::new(empty), world: Arc::new(World::empty()), generation: 0 };
        let inner = Inner {
            registry,
            rules,
            world,
            current: ArcSwap::from_pointee(placeholder),
            status: Mutex::new(ReloadStatus {
                generation: 0,
                last_attempt: None,
                last_success: None,
                last_error: Some("not loaded yet".into()),
                rules_hash: 0,
                world_hash: 0,
                order: Vec::new(),
            }),
            subscribers: Mutex::new(Vec::new()),
            reloading: Mutex::new(()),
        };
        match inner.reload_reporting() {
            (_, Some(errors)) => Err(errors),
            _ => Ok(Live { inner: Arc::new(inner) }),
        }
    }

    /// Selects on the configuration in force when the call starts.
    pub fn select(&self, request: &Request) -> Decision {
        let snapshot = self.inner.current.load();
        snapshot.plan.select(&snapshot.world, request)
    }

    /// The configuration in force (keep it to run several selections on
    /// one configuration).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Reloads now (also what SIGHUP does in the CLI).
    pub fn reload(&self) -> ReloadEvent {
        self.inner.reload()
    }

    /// The reload status.
    pub fn status(&self) -> ReloadStatus {
        lock(&self.inner.status).clone()
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
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        })?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for path in self.paths() {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                watcher.watch(&dir, RecursiveMode::NonRecursive)?;
                dirs.push(dir);
            }
        }
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new()
            .name("switchboard-reload".into())
            .spawn(move || debounce_loop(&rx, &inner))
            .map_err(|e| notify::Error::generic(&format!("cannot start the reload thread: {e}")))?;
        Ok(Watch { watcher: Some(watcher), thread: Some(thread) })
    }
}

fn debounce_loop(events: &Receiver<()>, inner: &Inner) {
    while events.recv().is_ok() {
        let first = std::time::Instant::now();
        while first.elapsed() < MAX_DELAY {
            match events.recv_timeout(DEBOUNCE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        inner.reload();
    }
}

/// Watching in progress; dropping it stops the watcher and its thread.
pub struct Watch {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
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
