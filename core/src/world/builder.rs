//! The [`LocationBuilder`]: every instance of a location checked against the
//! ones before it (ids, indexes, defaults, pools, limits), then the location
//! built with its per-channel orders and indexes. Every reader of a world
//! file builds with it, and so does a request's inline `instances`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};
use smallvec::SmallVec;

use super::{ChannelInstances, Indexes, Location, Pool, INDEXED_ABOVE};
use crate::capacity::jiff::tz::TimeZone;
use crate::capacity::{self, Limits};
use crate::model::{InstanceParts, Users};
use crate::recipient::{self, Country};
use crate::suggest;
use crate::{Instance, InstanceSpec, Registry};

/// One instance as the readers hand it to [`LocationBuilder::push`]: the
/// fields of an [`InstanceSpec`], texts borrowed from wherever they were
/// read.
#[derive(Debug, Clone)]
pub struct InstanceFields<'s> {
    /// `id`.
    pub id: &'s str,
    /// `channel`, as written (any case).
    pub channel: &'s str,
    /// `index`, when given.
    pub index: Option<u64>,
    /// `phone`, as written.
    pub phone: &'s str,
    /// `connected`.
    pub connected: bool,
    /// `default`.
    pub default: bool,
    /// `users`.
    pub users: Users,
    /// `weight`, when given.
    pub weight: Option<u32>,
    /// `pool`, when given.
    pub pool: Option<&'s str>,
    /// `limits`, when given.
    pub limits: Option<Limits>,
    /// `reply_window`, as written, when given.
    pub reply_window: Option<&'s str>,
    /// `warmup`, as written (`since`, `per_day`), when given.
    pub warmup: Option<(&'s str, &'s [u32])>,
}

impl<'s> InstanceFields<'s> {
    /// The fields of an owned spec.
    pub fn of(spec: &'s InstanceSpec) -> InstanceFields<'s> {
        InstanceFields {
            id: &spec.id,
            channel: &spec.channel,
            index: spec.index,
            phone: &spec.phone,
            connected: spec.connected,
            default: spec.default,
            users: spec.users.iter().cloned().collect(),
            weight: spec.weight,
            pool: spec.pool.as_deref(),
            limits: spec.limits,
            reply_window: spec.reply_window.as_deref(),
            warmup: spec.warmup.as_ref().map(|w| (w.since.as_str(), w.per_day.as_slice())),
        }
    }
}

/// Above this many instances in a location, their ids are found by hash.
const SCAN_IDS: usize = 32;
/// Above this many indexes taken in a location, they are found by hash.
const SCAN_INDEXES: usize = 48;

/// Validates instances one at a time, in file order, and builds their
/// location. Reusable: a reader builds every location of a file with one
/// builder. Each refusal is a message naming the instance and what to do.
pub struct LocationBuilder<'r> {
    registry: &'r Registry,
    timezone: TimeZone,
    timezone_named: bool,
    country: Option<Country>,
    pools: Vec<Pool>,
    instances: Vec<Instance>,
    /// The ids of the instances checked so far, a refused one included (a
    /// later instance with its id is still a duplicate), end to end.
    names: String,
    /// Where each name ends in `names`.
    name_ends: Vec<usize>,
    /// Past [`SCAN_IDS`] names: their hashes.
    by_name: FxHashMap<u64, SmallVec<[u32; 1]>>,
    /// Per channel used: whether its first instance gave an index (and
    /// that instance's name), its default's name, the highest index.
    channels: Vec<ChannelState>,
    /// The indexes taken: (channel, index, the name that took it last).
    taken: Vec<(u32, u64, u32)>,
    /// Past [`SCAN_INDEXES`]: the same by hash.
    taken_map: FxHashMap<(u32, u64), u32>,
    /// Whether an instance may name a pool not read yet (the fast paths,
    /// where the location's `pools` may come after its `instances`); the
    /// names are then checked by [`LocationSeed`] at the end.
    defer_pools: bool,
    pending_pools: Vec<String>,
}

struct ChannelState {
    /// The channel's position in the registry.
    channel: u32,
    explicit: Option<(bool, u32)>,
    default: Option<u32>,
    next: u64,
}

impl<'r> LocationBuilder<'r> {
    /// A builder for locations whose channels `registry` knows.
    pub fn new(registry: &'r Registry) -> Self {
        LocationBuilder {
            registry,
            timezone: TimeZone::UTC,
            timezone_named: false,
            country: None,
            pools: Vec::new(),
            instances: Vec::new(),
            names: String::new(),
            name_ends: Vec::new(),
            by_name: FxHashMap::default(),
            channels: Vec::new(),
            taken: Vec::new(),
            taken_map: FxHashMap::default(),
            defer_pools: false,
            pending_pools: Vec::new(),
        }
    }

    /// Starts a new location (keeping the buffers).
    pub fn reset(&mut self) {
        self.timezone = TimeZone::UTC;
        self.timezone_named = false;
        self.country = None;
        self.pools.clear();
        self.instances.clear();
        self.names.clear();
        self.name_ends.clear();
        self.by_name.clear();
        self.channels.clear();
        self.taken.clear();
        self.taken_map.clear();
        self.defer_pools = false;
        self.pending_pools.clear();
    }

    /// Lets an instance name a pool not added yet (a reader whose
    /// location's `pools` may come after its `instances`); ask
    /// [`LocationBuilder::pools_resolved`] before [`LocationBuilder::finish`].
    pub fn defer_pool_check(&mut self) {
        self.defer_pools = true;
    }

    /// Whether every pool an instance named has been added.
    pub fn pools_resolved(&self) -> bool {
        self.pending_pools.iter().all(|name| self.pools.iter().any(|p| p.id == *name))
    }

    /// Sets the location's timezone from its IANA name.
    pub fn timezone(&mut self, name: &str) -> Result<(), String> {
        self.timezone = capacity::timezone(name).map_err(|e| {
            format!("{e}; use an IANA timezone name such as `UTC`, `Europe/Paris` or `America/New_York`")
        })?;
        self.timezone_named = true;
        Ok(())
    }

    /// Sets the location's country from its ISO 3166 alpha-2 code.
    pub fn country(&mut self, code: &str) -> Result<(), String> {
        self.country = Some(recipient::parse_country(code)?);
        Ok(())
    }

    /// Adds a pool; pools come before the instances that name them.
    pub fn pool(&mut self, id: String, limits: Option<Limits>) -> Result<(), String> {
        if id.trim().is_empty() {
            return Err("pool `id` is empty; give every pool a unique id".into());
        }
        let limits = limits.unwrap_or_default();
        if let Some(key) = limits.zero_key() {
            return Err(format!("pool `{id}`: `limits.{key}` is 0; a limit is a whole number, 1 or more"));
        }
        if self.pools.iter().any(|p| p.id == id) {
            return Err(format!("duplicate pool id `{id}` in this location; pool ids must be unique"));
        }
        self.pools.push(Pool { id, limits });
        Ok(())
    }

    /// The `n`th name checked.
    fn name(&self, n: u32) -> &str {
        let n = n as usize;
        let from = if n == 0 { 0 } else { self.name_ends.get(n - 1).copied().unwrap_or(0) };
        let to = self.name_ends.get(n).copied().unwrap_or(from);
        self.names.get(from..to).unwrap_or_default()
    }

    fn hash(name: &str) -> u64 {
        let mut h = FxHasher::default();
        name.hash(&mut h);
        h.finish()
    }

    /// Records an instance id; its number, or `None` when it was already
    /// recorded.
    fn insert_name(&mut self, id: &str) -> Option<u32> {
        let count = self.name_ends.len();
        if count <= SCAN_IDS {
            if (0..count as u32).any(|n| self.name(n) == id) {
                return None;
            }
        } else {
            if self.by_name.is_empty() {
                for n in 0..count as u32 {
                    let hash = Self::hash(self.name(n));
                    self.by_name.entry(hash).or_default().push(n);
                }
            }
            if let Some(list) = self.by_name.get(&Self::hash(id)) {
                if list.iter().any(|n| self.name(*n) == id) {
                    return None;
                }
            }
            self.by_name.entry(Self::hash(id)).or_default().push(count as u32);
        }
        self.names.push_str(id);
        self.name_ends.push(self.names.len());
        Some(count as u32)
    }

    /// Marks `index` on `channel` as taken by `name`; the name that had
    /// taken it before, if any.
    fn take_index(&mut self, channel: u32, index: u64, name: u32) -> Option<u32> {
        if self.taken.len() < SCAN_INDEXES {
            for entry in &mut self.taken {
                if entry.0 == channel && entry.1 == index {
                    return Some(std::mem::replace(&mut entry.2, name));
                }
            }
            self.taken.push((channel, index, name));
            return None;
        }
        if self.taken_map.is_empty() {
            self.taken_map.extend(self.taken.iter().map(|&(c, i, n)| ((c, i), n)));
        }
        self.taken_map.insert((channel, index), name)
    }

    /// Checks one instance against the ones before it and keeps it.
    pub fn push(&mut self, spec: InstanceFields<'_>) -> Result<(), String> {
        let InstanceFields {
            id,
            channel,
            index,
            phone,
            connected,
            default,
            users,
            weight,
            pool,
            limits,
            reply_window,
            warmup,
        } = spec;
        if id.trim().is_empty() {
            return Err("instance `id` is empty; give every instance a unique id".into());
        }
        let weight = match weight {
            Some(0) => return Err(format!("instance `{id}`: `weight` is 0; a weight is a whole number, 1 or more")),
            Some(w) => w,
            None => 1,
        };
        if let Some(pool) = pool {
            if self.defer_pools && !self.pools.iter().any(|p| p.id == pool) {
                self.pending_pools.push(pool.to_owned());
            } else if !self.pools.iter().any(|p| p.id == pool) {
                let known: Vec<&str> = self.pools.iter().map(|p| p.id.as_str()).collect();
                return Err(format!(
                    "instance `{id}`: no pool `{pool}` in this location{}; pools here: {}",
                    suggest::suggestion(pool, known.iter().copied()),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ));
            }
        }
        let limits = limits.unwrap_or_default();
        if let Some(key) = limits.zero_key() {
            return Err(format!("instance `{id}`: `limits.{key}` is 0; a limit is a whole number, 1 or more"));
        }
        let reply_window = match reply_window {
            None => None,
            Some(text) => recipient::parse_duration(text, "reply_window", false)
                .map(|d| std::num::NonZeroU32::new(u32::try_from(d.as_secs()).unwrap_or(u32::MAX)))
                .map_err(|e| format!("instance `{id}`: {e}"))?,
        };
        let warmup = match warmup {
            None => None,
            Some((since, per_day)) => {
                Some(crate::Warmup::new(since, per_day).map_err(|e| format!("instance `{id}`: {e}"))?)
            }
        };
        let registry = self.registry;
        let Some((position, channel)) =
            registry.channel_position(channel).and_then(|p| Some((p, registry.channel_ids().nth(p)?)))
        else {
            return Err(format!(
                "instance `{id}`: unknown channel `{channel}`{}; registered channels: {}",
                suggest::suggestion(channel, registry.channel_ids()),
                registry.channel_ids().collect::<Vec<_>>().join(", ")
            ));
        };
        let Some(name) = self.insert_name(id) else {
            return Err(format!("duplicate instance id `{id}` in this location; instance ids must be unique"));
        };
        let c = position as u32;
        let slot = match self.channels.iter().position(|s| s.channel == c) {
            Some(slot) => slot,
            None => {
                self.channels.push(ChannelState { channel: c, explicit: None, default: None, next: 0 });
                self.channels.len() - 1
            }
        };
        match self.channels[slot].explicit {
            None => self.channels[slot].explicit = Some((index.is_some(), name)),
            Some((explicit, first)) if explicit != index.is_some() => {
                let first = self.name(first);
                let (with, without) = if explicit { (first, id) } else { (id, first) };
                return Err(format!(
                    "instance `{without}` has no `index` but `{with}` on {channel} has one; \
                     give every {channel} instance of this location an index, or none"
                ));
            }
            Some(_) => {}
        }
        let state = &mut self.channels[slot];
        let index = match index {
            Some(0) => return Err(format!("instance `{id}`: index 0 is not allowed; indexes start at 1")),
            Some(n) => n,
            None => state.next + 1,
        };
        state.next = state.next.max(index);
        if let Some(other) = self.take_index(c, index, name) {
            return Err(format!(
                "instance `{id}`: index {index} on {channel} is already used by `{}`; \
                 indexes must be unique per location and channel",
                self.name(other)
            ));
        }
        if default {
            if let Some(other) = self.channels[slot].default {
                return Err(format!(
                    "instance `{id}` is marked `default: true` but `{}` already is the {channel} \
                     default of this location; keep one default per channel",
                    self.name(other)
                ));
            }
            self.channels[slot].default = Some(name);
        }
        let pool = pool.map(Box::from);
        let parts = InstanceParts { index, connected, default, users, weight, pool, limits, reply_window, warmup };
        let Some(instance) = Instance::new(channel, id, phone, parts) else {
            return Err(format!("instance `{id}`: its texts are longer than 4 GiB"));
        };
        self.instances.push(instance);
        Ok(())
    }

    /// The location built so far; the builder is left empty for the next.
    pub fn finish(&mut self, id: Box<str>) -> Location {
        let instances: Box<[Arc<Instance>]> = self.instances.drain(..).map(Arc::new).collect();
        let mut order: Vec<u32> = (0..instances.len() as u32).collect();
        let key = |p: &u32| instances.get(*p as usize).map(|i| (i.channel(), i.index));
        order.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        let mut channels: Vec<ChannelInstances> = Vec::with_capacity(self.channels.len());
        let mut positions: Vec<u32> = Vec::with_capacity(2 * order.len());
        let mut rest: &[u32] = &order;
        while let Some(first) = rest.first().and_then(|p| instances.get(*p as usize)) {
            let n = rest
                .iter()
                .take_while(|p| instances.get(**p as usize).is_some_and(|i| i.channel() == first.channel()))
                .count();
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let from = positions.len() as u32;
            positions.extend_from_slice(group);
            let order = (from, positions.len() as u32);
            let mut default = None;
            for &p in group {
                let Some(inst) = instances.get(p as usize) else { continue };
                if inst.default {
                    default = Some(p);
                }
                if inst.connected && inst.has_phone() {
                    positions.push(p);
                }
            }
            let available = (order.1, positions.len() as u32);
            // The registry's own id, shared: see `Location::channel_of`.
            let channel = match self.registry.channel_position(first.channel()) {
                Some(position) => self.registry.channels()[position].shared_id().clone(),
                None => Arc::from(first.channel()),
            };
            let indexes = (group.len() > INDEXED_ABOVE).then(|| Box::new(index(&instances, group)));
            channels.push(ChannelInstances { channel, order, available, default, indexes });
        }
        let location = Location {
            id,
            instances,
            channels: channels.into_boxed_slice(),
            positions: positions.into_boxed_slice(),
            timezone: std::mem::replace(&mut self.timezone, TimeZone::UTC),
            pools: std::mem::take(&mut self.pools).into_boxed_slice(),
            timezone_named: self.timezone_named,
            country: self.country,
        };
        self.reset();
        location
    }
}

fn index(instances: &[Arc<Instance>], order: &[u32]) -> Indexes {
    let mut ix = Indexes::default();
    for &p in order {
        let Some(inst) = instances.get(p as usize) else { continue };
        ix.by_index.insert(inst.index, p);
        if !inst.phone_digits().is_empty() {
            ix.by_digits.entry(inst.phone_digits().into()).or_default().push(p);
        }
        for user in &inst.users {
            let list = ix.by_user.entry(user.as_str().into()).or_default();
            if !list.contains(&p) {
                list.push(p);
            }
        }
    }
    ix
}
