//! The capacity stores of one process: built from a plan's `capacity:`
//! section (docs/capacity.md) and shared by every plan with the same section, so a
//! reload keeps the counts.
//!
//! Core describes the store ([`crate::CapacityConfig`]) and never builds
//! one; this module builds it from `switchboard-state` and attaches it with
//! [`crate::Plan::with_store`]. A plan without a `capacity:` section gets a
//! memory store (the default `store: memory`): it is only ever asked about
//! instances that have limits (and, in a chain with `least_used`, about every
//! selected instance), so a world without limits counts nothing otherwise.
//!
//! Every store built here is watched: the outcome of each real call (a
//! reservation, a read, a ping) keeps its [`StoreHealth`] current, so a
//! service can say whether its store answers without asking it again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use switchboard_core::capacity::{jiff::Timestamp, DeliveryUpdate, HealthList, HealthPolicy, Transition, Usage};
use switchboard_core::{
    CapacityStore, ConversationKey, LiveState, Reservation, ReservationRequest, StatusUpdate, StoreError,
};
use switchboard_engine::{CapacityConfig, FileErrors, OnStoreError, Plan, StoreKind};
use switchboard_state::{MemoryStore, RedisConfig, RedisStore};

/// An open store and what it was opened for (see [`identity`]), with its
/// health.
type OpenStore = (StoreKind, String, String, Arc<dyn CapacityStore>, Arc<Health>);

/// One store per (store kind, Redis URL, key prefix), kept for the life of
/// the handle: [`crate::Live`] holds one, so plans compiled by successive
/// reloads share their store and its counts.
#[derive(Default)]
pub struct Stores {
    open: Mutex<Vec<OpenStore>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list().entries(open.iter().map(|(kind, url, prefix, _, _)| (kind, url, prefix))).finish()
    }
}

/// The (kind, where, prefix) a `capacity:` section names: where (the URL,
/// or the cluster's seeds, and the CA file) and the prefix only tell Redis
/// stores apart.
fn identity(config: &CapacityConfig) -> (StoreKind, String, String) {
    match config.store {
        StoreKind::Memory => (StoreKind::Memory, String::new(), String::new()),
        StoreKind::Redis => {
            let mut target =
                if config.redis_cluster.is_empty() { config.redis_url.clone() } else { config.redis_cluster.join(" ") };
            if let Some(ca) = &config.tls_ca_file {
                target.push_str(" ca=");
                target.push_str(ca);
            }
            (StoreKind::Redis, target, config.key_prefix.clone())
        }
    }
}

/// The CA certificates `tls_ca_file` names, read relative to the rules file
/// `rules_file`.
fn read_ca(config: &CapacityConfig, rules_file: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(name) = &config.tls_ca_file else { return Ok(None) };
    let path = std::path::Path::new(rules_file).parent().unwrap_or(std::path::Path::new("")).join(name);
    std::fs::read(&path).map(Some).map_err(|e| {
        StoreError::new(
            switchboard_core::StoreErrorKind::Config,
            format!("tls_ca_file `{}`: cannot read it ({e}); name a PEM file of CA certificates", path.display()),
        )
    })
}

impl Stores {
    /// No store opened yet.
    pub fn new() -> Stores {
        Stores::default()
    }

    /// `plan` with the store its `capacity:` section describes (a memory
    /// store without the section): the one already open for the same kind,
    /// URL and prefix, else a new one. A malformed `redis_url` is an error
    /// of the rules file `file`.
    pub fn attach(&self, plan: Plan, file: &str) -> Result<Plan, FileErrors> {
        let config = plan.capacity().cloned().unwrap_or_default();
        let store = self.store(&config, file).map_err(|e| FileErrors::whole_file(file, format!("capacity: {e}")))?;
        Ok(plan.with_store(store))
    }

    fn store(&self, config: &CapacityConfig, rules_file: &str) -> Result<Arc<dyn CapacityStore>, StoreError> {
        let (kind, url, prefix) = identity(config);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, _, store, _)) = open.iter().find(|(k, u, p, _, _)| *k == kind && *u == url && *p == prefix) {
            return Ok(store.clone());
        }
        let health = Arc::new(Health::default());
        // Watched by type (not through a second `dyn`): a reservation is one
        // indirect call.
        let store: Arc<dyn CapacityStore> = match kind {
            StoreKind::Memory => Arc::new(Watched { inner: MemoryStore::new(), health: health.clone() }),
            StoreKind::Redis => Arc::new(Watched {
                inner: RedisStore::open(RedisConfig {
                    url: config.redis_url.clone(),
                    cluster: config.redis_cluster.clone(),
                    tls_ca_pem: read_ca(config, rules_file)?,
                    key_prefix: prefix.clone(),
                    ..RedisConfig::default()
                })?,
                health: health.clone(),
            }),
        };
        open.push((kind, url, prefix, store.clone(), health));
        Ok(store)
    }

    fn find(&self, config: &CapacityConfig) -> Option<(Arc<dyn CapacityStore>, Arc<Health>)> {
        let (kind, url, prefix) = identity(config);
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.iter()
            .find(|(k, u, p, _, _)| *k == kind && *u == url && *p == prefix)
            .map(|(_, _, _, store, health)| (store.clone(), health.clone()))
    }

    /// The health of the store `config` describes, as its calls have seen
    /// it; `None` when no such store was opened by these stores.
    pub fn health(&self, config: &CapacityConfig) -> Option<StoreHealth> {
        let (_, health) = self.find(config)?;
        Some(health.report(config))
    }

    /// Pings the store `config` describes ([`CapacityStore::ping`], one
    /// round trip for Redis, blocking within its timeouts) and answers its
    /// health after the ping; `None` when no such store was opened.
    pub fn check(&self, config: &CapacityConfig) -> Option<StoreHealth> {
        let (store, health) = self.find(config)?;
        // The ping goes through the watcher, which records its outcome.
        let _ = store.ping();
        health.checked(SystemTime::now());
        Some(health.report(config))
    }

    /// Store errors seen so far, summed over every store these stores
    /// opened (a counter: it never goes down, whatever reloads change).
    pub fn errors_total(&self) -> u64 {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.iter().map(|(_, _, _, _, health)| health.errors.load(Ordering::Relaxed)).sum()
    }
}

/// The health of a capacity store, as seen from the calls made on it: the
/// last outcome decides `healthy`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreHealth {
    /// `memory` or `redis`.
    pub kind: StoreKind,
    /// What selections do while the store fails.
    pub on_store_error: OnStoreError,
    /// Whether the last call on the store (a reservation, a read, a ping)
    /// succeeded; `true` before the first call.
    pub healthy: bool,
    /// When the store was last pinged, if ever.
    pub checked_at: Option<SystemTime>,
    /// When `healthy` last changed (or the store was opened).
    pub since: SystemTime,
    /// The most recent error, kept after the store recovers; `None` if
    /// there never was one.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_at: Option<SystemTime>,
    /// Failed calls on this store so far.
    pub errors: u64,
}

/// The shared, mutable side of a store's health. The hot path of a healthy
/// store only reads one flag.
#[derive(Debug)]
struct Health {
    healthy: AtomicBool,
    errors: AtomicU64,
    state: Mutex<HealthState>,
}

#[derive(Debug)]
struct HealthState {
    checked_at: Option<SystemTime>,
    since: SystemTime,
    last_error: Option<(String, SystemTime)>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            healthy: AtomicBool::new(true),
            errors: AtomicU64::new(0),
            state: Mutex::new(HealthState { checked_at: None, since: SystemTime::now(), last_error: None }),
        }
    }
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    fn succeeded(&self) {
        if !self.healthy.load(Ordering::Relaxed) {
            self.recovered();
        }
    }

    #[cold]
    fn recovered(&self) {
        let mut state = self.state();
        if !self.healthy.swap(true, Ordering::Relaxed) {
            state.since = SystemTime::now();
        }
    }

    #[cold]
    fn failed(&self, error: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now();
        let mut state = self.state();
        if self.healthy.swap(false, Ordering::Relaxed) {
            state.since = now;
        }
        state.last_error = Some((error.to_string(), now));
    }

    #[inline]
    fn observe<T>(&self, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
        match &outcome {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(e),
        }
        outcome
    }

    /// Records a failed outcome only: for calls that may be answered from a
    /// cache, whose success does not show that the store answers.
    #[inline]
    fn observe_failure<T>(&self, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &outcome {
            self.failed(e);
        }
        outcome
    }

    fn checked(&self, at: SystemTime) {
        self.state().checked_at = Some(at);
    }

    fn report(&self, config: &CapacityConfig) -> StoreHealth {
        let state = self.state();
        StoreHealth {
            kind: config.store,
            on_store_error: config.on_store_error,
            healthy: self.healthy.load(Ordering::Relaxed),
            checked_at: state.checked_at,
            since: state.since,
            last_error: state.last_error.as_ref().map(|(message, _)| message.clone()),
            last_error_at: state.last_error.as_ref().map(|(_, at)| *at),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A store whose every call's outcome is recorded in its [`Health`].
struct Watched<S> {
    inner: S,
    health: Arc<Health>,
}

impl<S: CapacityStore> CapacityStore for Watched<S> {
    fn reserve(&self, request: &ReservationRequest<'_>) -> Result<Reservation, StoreError> {
        self.health.observe(self.inner.reserve(request))
    }

    fn usage(&self, request: &ReservationRequest<'_>) -> Result<Usage, StoreError> {
        self.health.observe(self.inner.usage(request))
    }

    fn remember(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.health.observe(self.inner.remember(key, instance, ttl, now))
    }

    fn recall(&self, key: &ConversationKey<'_>, now: Timestamp) -> Result<Option<String>, StoreError> {
        self.health.observe(self.inner.recall(key, now))
    }

    fn forget(&self, key: &ConversationKey<'_>) -> Result<bool, StoreError> {
        self.health.observe(self.inner.forget(key))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.health.observe(self.inner.ping())
    }

    fn may_block(&self) -> bool {
        self.inner.may_block()
    }

    fn outlives_process(&self) -> bool {
        self.inner.outlives_process()
    }

    #[inline]
    fn has_live_state(&self, location: &str) -> bool {
        self.inner.has_live_state(location)
    }

    fn live_state(&self, location: &str) -> Result<LiveState, StoreError> {
        // Often answered from the store's cache: only a failure says
        // something about the store's health.
        self.health.observe_failure(self.inner.live_state(location))
    }

    fn record_inbound(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        time: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.health.observe(self.inner.record_inbound(key, instance, time, ttl))
    }

    fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<(String, Timestamp)>, StoreError> {
        self.health.observe(self.inner.last_inbound(key))
    }

    fn live_locations(&self) -> Result<Vec<String>, StoreError> {
        // Answered from the store's cache (status counts): only a failure
        // says something about the store's health.
        self.health.observe_failure(self.inner.live_locations())
    }

    fn apply_status(&self, update: &StatusUpdate<'_>) -> Result<bool, StoreError> {
        self.health.observe(self.inner.apply_status(update))
    }

    fn record_delivery(&self, update: &DeliveryUpdate<'_>, policy: &HealthPolicy) -> Result<Transition, StoreError> {
        self.health.observe(self.inner.record_delivery(update, policy))
    }

    fn health(&self, location: &str, window: Duration, now: Timestamp) -> Result<HealthList, StoreError> {
        self.health.observe(self.inner.health(location, window, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::capacity::{timezone, Limits};
    use switchboard_core::StoreErrorKind;

    /// A store that fails while `down` is set.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
    }

    impl CapacityStore for &'static Flaky {
        fn reserve(&self, _: &ReservationRequest<'_>) -> Result<Reservation, StoreError> {
            if self.down.load(Ordering::Relaxed) {
                Err(StoreError::new(StoreErrorKind::Unavailable, "connection refused"))
            } else {
                Ok(Reservation::Reserved)
            }
        }
        fn usage(&self, _: &ReservationRequest<'_>) -> Result<Usage, StoreError> {
            Ok(Usage::default())
        }
        fn remember(&self, _: &ConversationKey<'_>, _: &str, _: Duration, _: Timestamp) -> Result<(), StoreError> {
            Ok(())
        }
        fn recall(&self, _: &ConversationKey<'_>, _: Timestamp) -> Result<Option<String>, StoreError> {
            Ok(None)
        }
        fn forget(&self, _: &ConversationKey<'_>) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn ping(&self) -> Result<(), StoreError> {
            self.reserve(&ReservationRequest::new("x", &timezone("UTC").unwrap(), "i", Timestamp::UNIX_EPOCH))
                .map(|_| ())
        }
    }

    #[test]
    fn health_follows_the_last_call_and_keeps_the_last_error() {
        let flaky: &'static Flaky = Box::leak(Box::default());
        let health = Arc::new(Health::default());
        let watched = Watched { inner: flaky, health: health.clone() };
        let config = CapacityConfig::default();
        let tz = timezone("UTC").unwrap();
        let request = ReservationRequest {
            limits: Limits { per_day: Some(1), ..Limits::NONE },
            ..ReservationRequest::new("shop", &tz, "wa-1", Timestamp::UNIX_EPOCH)
        };
        assert!(watched.reserve(&request).is_ok());
        let report = health.report(&config);
        assert!(report.healthy && report.last_error.is_none() && report.errors == 0, "{report:?}");

        flaky.down.store(true, Ordering::Relaxed);
        assert!(watched.reserve(&request).is_err());
        assert!(watched.ping().is_err());
        let report = health.report(&config);
        assert!(!report.healthy, "{report:?}");
        assert_eq!(report.errors, 2);
        assert_eq!(report.last_error.as_deref(), Some("capacity store unavailable: connection refused"));

        flaky.down.store(false, Ordering::Relaxed);
        assert!(watched.ping().is_ok());
        let report = health.report(&config);
        assert!(report.healthy, "{report:?}");
        assert_eq!(report.errors, 2);
        assert!(report.last_error.is_some() && report.last_error_at.is_some(), "the last error is kept");
    }

    #[test]
    fn stores_report_the_health_and_errors_of_what_they_opened() {
        let stores = Stores::new();
        let memory = CapacityConfig::default();
        assert_eq!(stores.health(&memory), None, "nothing opened yet");
        stores.store(&memory, "rules.yaml").unwrap();
        let checked = stores.check(&memory).unwrap();
        assert!(checked.healthy && checked.checked_at.is_some(), "{checked:?}");
        assert_eq!(checked.kind, StoreKind::Memory);

        // A Redis store on a port nobody listens on: the ping fails.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let redis = CapacityConfig {
            store: StoreKind::Redis,
            redis_url: format!("redis://127.0.0.1:{port}/0"),
            ..CapacityConfig::default()
        };
        stores.store(&redis, "rules.yaml").unwrap();
        let checked = stores.check(&redis).unwrap();
        assert!(!checked.healthy && checked.last_error.is_some(), "{checked:?}");
        assert_eq!(stores.errors_total(), 1);
        assert!(stores.health(&memory).unwrap().healthy, "stores keep their own health");
    }
}
