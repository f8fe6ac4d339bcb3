//! The capacity stores of one process: built from a plan's `capacity:`
//! section (SPEC §10) and shared by every plan with the same section, so a
//! reload keeps the counts.
//!
//! Core describes the store ([`crate::CapacityConfig`]) and never builds
//! one; this module builds it from `switchboard-state` and attaches it with
//! [`crate::Plan::with_store`]. A plan without a `capacity:` section gets a
//! memory store (the default `store: memory`): it is only ever asked about
//! instances that have limits (and, in a chain with `least_used`, about every
//! selected instance), so a world without limits counts nothing otherwise.

use std::sync::{Arc, Mutex, PoisonError};

use switchboard_core::{CapacityConfig, CapacityStore, FileErrors, Plan, StoreKind};
use switchboard_state::{MemoryStore, RedisConfig, RedisStore};

/// An open store and what it was opened for: (kind, Redis URL, key prefix).
type OpenStore = (StoreKind, String, String, Arc<dyn CapacityStore>);

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
        f.debug_list().entries(open.iter().map(|(kind, url, prefix, _)| (kind, url, prefix))).finish()
    }
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
        let store = self.store(&config).map_err(|e| FileErrors::whole_file(file, format!("capacity: {e}")))?;
        Ok(plan.with_store(store))
    }

    fn store(&self, config: &CapacityConfig) -> Result<Arc<dyn CapacityStore>, switchboard_core::StoreError> {
        // The URL and prefix only tell Redis stores apart.
        let (url, prefix) = match config.store {
            StoreKind::Memory => (String::new(), String::new()),
            StoreKind::Redis => (config.redis_url.clone(), config.key_prefix.clone()),
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, _, store)) = open.iter().find(|(k, u, p, _)| *k == config.store && *u == url && *p == prefix)
        {
            return Ok(store.clone());
        }
        let store: Arc<dyn CapacityStore> = match config.store {
            StoreKind::Memory => Arc::new(MemoryStore::new()),
            StoreKind::Redis => Arc::new(RedisStore::open(RedisConfig {
                url: url.clone(),
                key_prefix: prefix.clone(),
                ..RedisConfig::default()
            })?),
        };
        open.push((config.store, url, prefix, store.clone()));
        Ok(store)
    }
}
