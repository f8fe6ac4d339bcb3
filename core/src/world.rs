//! The world: locations and their instances, validated once and indexed by
//! index, phone digits and user so that selection never scans a location.
//!
//! A world may hold a million instances, so it is kept compact: each
//! instance's texts share one allocation ([`Instance`]), the channel ids are
//! the registry's own (shared, and found by address on every decision), a
//! location's per-channel orders live in one vector of
//! positions, and only large channels get hash indexes. A JSON world is read
//! a location at a time ([`World::from_json_reader`]), never as one string.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use smallvec::SmallVec;

use crate::capacity::jiff::tz::TimeZone;
use crate::capacity::{self, Limits};
use crate::diag::{self, Diagnostic, FileErrors};
use crate::model::{InstanceParts, Obj, Users};
use crate::recipient::{self, Country};
use crate::tree::{self, Node, Path, Value};
use crate::{Instance, InstanceSpec, Registry, Request};

/// Channels with more instances than this get hash indexes; smaller ones
/// (nearly all) are scanned, which is as fast at that size and keeps a
/// world of 100,000 locations small.
const INDEXED_ABOVE: usize = 16;

/// Hash indexes of a large channel.
#[derive(Debug, Clone, Default)]
struct Indexes {
    by_index: FxHashMap<u64, u32>,
    by_digits: FxHashMap<Box<str>, SmallVec<[u32; 1]>>,
    by_user: FxHashMap<Box<str>, SmallVec<[u32; 2]>>,
}

/// The instances of one location on one channel, with their indexes.
#[derive(Debug, Clone)]
struct ChannelInstances {
    /// The channel id, shared by every location of a world.
    channel: Arc<str>,
    /// Where, in `Location::positions`, the positions (into
    /// `Location::instances`) of the channel's instances by ascending index
    /// start and end.
    order: (u32, u32),
    /// The same for its connected instances with a phone.
    available: (u32, u32),
    default: Option<u32>,
    /// Present above [`INDEXED_ABOVE`] instances.
    indexes: Option<Box<Indexes>>,
}

/// Limits shared by several instances of one location (a WhatsApp
/// portfolio, a 10DLC brand; docs/capacity.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    id: String,
    limits: Limits,
}

impl Pool {
    /// The pool id, unique within its location.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pool's limits, counted over every instance of the pool.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Why a request has no location to be decided in
/// ([`World::location_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLocation {
    /// The request's inline `instances` are invalid: the first problem.
    InvalidInstances(String),
    /// The location is not in the world and the request carries no
    /// `instances`.
    Unknown,
}

/// A CRM location and its instances, indexed per channel.
#[derive(Debug, Clone)]
pub struct Location {
    id: Box<str>,
    instances: Box<[Arc<Instance>]>,
    channels: Box<[ChannelInstances]>,
    /// Each channel's ordered positions into `instances` (see
    /// [`ChannelInstances`]), end to end.
    positions: Box<[u32]>,
    timezone: TimeZone,
    pools: Box<[Pool]>,
    /// Whether the world file names the timezone (docs/recipient-rules.md falls back to
    /// it only then).
    timezone_named: bool,
    /// The ISO 3166 country its contacts' national numbers are read in.
    country: Option<Country>,
}

impl Location {
    /// The location id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// All instances, in file order.
    pub fn instances(&self) -> &[Arc<Instance>] {
        &self.instances
    }

    /// The location's timezone: its calendar windows are counted there
    /// (UTC unless the world file names one).
    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// The timezone the world file names for the location, if it names
    /// one (docs/recipient-rules.md: a recipient without a timezone of its own is taken to
    /// be there).
    pub fn named_timezone(&self) -> Option<&TimeZone> {
        self.timezone_named.then_some(&self.timezone)
    }

    /// The location's `country` (ISO 3166 alpha-2), in which phone numbers
    /// in national format are read (docs/recipient-rules.md).
    pub fn country(&self) -> Option<Country> {
        self.country
    }

    /// The location's pools, in file order.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The pool with this id.
    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.id == id)
    }

    /// Whether any instance or pool of the location has a limit.
    pub fn has_limits(&self) -> bool {
        self.pools.iter().any(|p| !p.limits.is_unlimited()) || self.instances.iter().any(|i| !i.limits().is_unlimited())
    }

    /// The view of this location's instances on one channel (empty when it
    /// has none there).
    pub fn channel(&self, channel: &str) -> InstanceView<'_> {
        self.view(self.channels.iter().find(|c| crate::registry::same_str(&c.channel, channel)))
    }

    /// [`Location::channel`] for a registered channel: a world built with
    /// the channel's registry (or a copy of it) shares the registry's id,
    /// found by its address without reading it; any other world's by its
    /// text.
    #[inline]
    pub(crate) fn channel_of(&self, channel: &crate::ChannelInfo) -> InstanceView<'_> {
        let id = channel.id();
        let slot = match self.channels.iter().find(|c| std::ptr::eq(c.channel.as_ptr(), id.as_ptr())) {
            Some(slot) => Some(slot),
            None => self.channels.iter().find(|c| crate::registry::same_str(&c.channel, id)),
        };
        self.view(slot)
    }

    #[inline]
    fn view<'l>(&'l self, slot: Option<&'l ChannelInstances>) -> InstanceView<'l> {
        InstanceView { instances: &self.instances, positions: &self.positions, slot }
    }

    /// The location as live state has it (docs/live-state.md): `live`
    /// answers an instance's `connected` (`None` to keep the file's) and
    /// when its quarantine ends, if it is quarantined. A quarantined
    /// instance is not connected, and says until when
    /// ([`Instance::quarantined_until`]). `None` when nothing changes.
    /// Instances keep their positions, so the channels' indexes stay valid;
    /// only the lists of available instances are built again.
    pub fn with_live(
        &self,
        mut live: impl FnMut(&Instance) -> (Option<bool>, Option<crate::capacity::jiff::Timestamp>),
    ) -> Option<Location> {
        let mut changed = false;
        let instances: Box<[Arc<Instance>]> = self
            .instances
            .iter()
            .map(|i| {
                let (connected, quarantined) = live(i);
                let connected = connected.unwrap_or(i.connected);
                // A disconnected instance is disconnected, whatever its health.
                let quarantined = quarantined.filter(|_| connected);
                if connected == i.connected && quarantined.is_none() {
                    return i.clone();
                }
                changed = true;
                let mut copy = Instance::clone(i);
                copy.connected = connected && quarantined.is_none();
                copy.quarantined = quarantined.map(Box::new);
                Arc::new(copy)
            })
            .collect();
        if !changed {
            return None;
        }
        let mut positions: Vec<u32> = Vec::with_capacity(self.positions.len());
        let channels = self
            .channels
            .iter()
            .map(|slot| {
                let group = self.positions.get(slot.order.0 as usize..slot.order.1 as usize).unwrap_or_default();
                let from = positions.len() as u32;
                positions.extend_from_slice(group);
                let order = (from, positions.len() as u32);
                for &p in group {
                    if instances.get(p as usize).is_some_and(|i| i.connected && i.has_phone()) {
                        positions.push(p);
                    }
                }
                ChannelInstances { order, available: (order.1, positions.len() as u32), ..slot.clone() }
            })
            .collect();
        Some(Location {
            id: self.id.clone(),
            instances,
            channels,
            positions: positions.into_boxed_slice(),
            timezone: self.timezone.clone(),
            timezone_named: self.timezone_named,
            country: self.country,
            pools: self.pools.clone(),
        })
    }

    /// Compiles inline instances (a request's `instances`) into a location;
    /// the first problem is returned as a message.
    pub fn from_specs(id: &str, specs: &[InstanceSpec], registry: &Registry) -> Result<Location, String> {
        let mut builder = LocationBuilder::new(registry);
        for (i, spec) in specs.iter().enumerate() {
            builder.push(Spec::of(spec)).map_err(|e| format!("instances[{i}]: {e}"))?;
        }
        Ok(builder.finish(id.into()))
    }
}

/// The instances of one location on one channel, as rules see them.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    instances: &'a [Arc<Instance>],
    positions: &'a [u32],
    slot: Option<&'a ChannelInstances>,
}

impl<'a> InstanceView<'a> {
    #[inline]
    fn get(&self, position: u32) -> Option<&'a Arc<Instance>> {
        self.instances.get(position as usize)
    }

    #[inline]
    fn range(&self, (from, to): (u32, u32)) -> &'a [u32] {
        self.positions.get(from as usize..to as usize).unwrap_or_default()
    }

    /// Positions by ascending index.
    #[inline]
    fn order(&self) -> &'a [u32] {
        self.slot.map_or(&[], |s| self.range(s.order))
    }

    /// Positions of the available instances by ascending index.
    #[inline]
    fn available_positions(&self) -> &'a [u32] {
        self.slot.map_or(&[], |s| self.range(s.available))
    }

    fn all<'s>(&self, positions: &'s [u32]) -> impl Iterator<Item = &'a Arc<Instance>> + 's
    where
        'a: 's,
    {
        let instances = self.instances;
        positions.iter().filter_map(move |p| instances.get(*p as usize))
    }

    /// The number of instances on this channel.
    #[inline]
    pub fn len(&self) -> usize {
        self.slot.map_or(0, |s| (s.order.1 - s.order.0) as usize)
    }

    /// Whether the location has no instance on this channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every instance on this channel, by ascending index.
    pub fn iter(&self) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        let instances = self.instances;
        self.order().iter().filter_map(move |p| instances.get(*p as usize))
    }

    /// The `rank`th instance by ascending index (0 is the lowest index).
    pub fn nth(&self, rank: usize) -> Option<&'a Arc<Instance>> {
        self.order().get(rank).and_then(|p| self.get(*p))
    }

    /// The rank (see [`InstanceView::nth`]) of the instance with this index.
    pub fn rank_of_index(&self, index: u64) -> Option<usize> {
        self.order()
            .binary_search_by_key(&index, |p| self.instances.get(*p as usize).map_or(u64::MAX, |i| i.index))
            .ok()
    }

    /// The instance with this index.
    #[inline]
    pub fn by_index(&self, index: u64) -> Option<&'a Arc<Instance>> {
        let slot = self.slot?;
        match &slot.indexes {
            Some(ix) => ix.by_index.get(&index).and_then(|p| self.get(*p)),
            None => self.rank_of_index(index).and_then(|rank| self.nth(rank)),
        }
    }

    /// The instances matching `keep`, by ascending index: the hash index's
    /// list when the channel has one (every entry matches), else a scan of
    /// the channel with `keep`. Nothing is collected either way.
    #[inline]
    fn find<'k>(
        &self,
        indexed: impl FnOnce(&'a Indexes) -> Option<&'a [u32]>,
        keep: impl Fn(&Instance) -> bool + 'k,
    ) -> impl Iterator<Item = &'a Arc<Instance>> + 'k
    where
        'a: 'k,
    {
        let (positions, scan): (&'a [u32], bool) = match self.slot {
            Some(slot) => match &slot.indexes {
                Some(ix) => (indexed(ix).unwrap_or(&[]), false),
                None => (self.range(slot.order), true),
            },
            None => (&[], false),
        };
        let instances = self.instances;
        positions.iter().filter_map(move |p| instances.get(*p as usize)).filter(move |i| !scan || keep(i))
    }

    /// The location's default instance on this channel.
    #[inline]
    pub fn default_instance(&self) -> Option<&'a Arc<Instance>> {
        self.slot.and_then(|s| s.default).and_then(|p| self.get(p))
    }

    /// Instances whose normalized phone equals `digits`, by ascending index.
    #[inline]
    pub fn with_phone_digits<'k>(&self, digits: &'k str) -> impl Iterator<Item = &'a Arc<Instance>> + 'k
    where
        'a: 'k,
    {
        let indexed = |ix: &'a Indexes| ix.by_digits.get(digits).map(|v| v.as_slice());
        self.find(indexed, move |i| !digits.is_empty() && i.phone_digits() == digits)
    }

    /// Instances assigned to `user`, by ascending index.
    #[inline]
    pub fn assigned_to<'k>(&self, user: &'k str) -> impl Iterator<Item = &'a Arc<Instance>> + 'k
    where
        'a: 'k,
    {
        let indexed = |ix: &'a Indexes| ix.by_user.get(user).map(|v| v.as_slice());
        self.find(indexed, move |i| i.users.iter().any(|u| u == user))
    }

    /// Connected instances with a phone number, by ascending index.
    pub fn available(&self) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        let instances = self.instances;
        self.available_positions().iter().filter_map(move |p| instances.get(*p as usize))
    }

    /// The `n`th available instance (see [`InstanceView::available`]).
    pub fn available_nth(&self, n: usize) -> Option<&'a Arc<Instance>> {
        self.available_positions().get(n).and_then(|p| self.get(*p))
    }

    /// The number of available instances.
    pub fn available_len(&self) -> usize {
        self.slot.map_or(0, |s| (s.available.1 - s.available.0) as usize)
    }

    /// A short list of the indexes that exist, for error messages.
    pub fn describe_indexes(&self) -> String {
        let order = self.order();
        if order.is_empty() {
            return "none".to_owned();
        }
        let shown: Vec<String> = self.all(order).take(10).map(|i| format!("#{}", i.index)).collect();
        let more = order.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    }
}

/// One instance as the loaders hand it to [`LocationBuilder::push`]: texts
/// borrowed from wherever they were read.
struct Spec<'s> {
    id: &'s str,
    channel: &'s str,
    index: Option<u64>,
    phone: &'s str,
    connected: bool,
    default: bool,
    users: Users,
    weight: Option<u32>,
    pool: Option<&'s str>,
    limits: Option<Limits>,
    reply_window: Option<&'s str>,
}

impl<'s> Spec<'s> {
    fn of(spec: &'s InstanceSpec) -> Spec<'s> {
        Spec {
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
        }
    }
}

/// Above this many instances in a location, their ids are found by hash.
const SCAN_IDS: usize = 32;
/// Above this many indexes taken in a location, they are found by hash.
const SCAN_INDEXES: usize = 48;

/// Validates instances one at a time, in file order. Reusable: the fast
/// path builds every location of a file with one builder.
struct LocationBuilder<'r> {
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
    fn new(registry: &'r Registry) -> Self {
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
    fn reset(&mut self) {
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

    /// Sets the location's timezone from its IANA name.
    fn timezone(&mut self, name: &str) -> Result<(), String> {
        self.timezone = capacity::timezone(name).map_err(|e| {
            format!("{e}; use an IANA timezone name such as `UTC`, `Europe/Paris` or `America/New_York`")
        })?;
        self.timezone_named = true;
        Ok(())
    }

    /// Sets the location's country from its ISO 3166 alpha-2 code.
    fn country(&mut self, code: &str) -> Result<(), String> {
        self.country = Some(recipient::parse_country(code)?);
        Ok(())
    }

    /// Adds a pool; pools come before the instances that name them.
    fn pool(&mut self, id: String, limits: Option<Limits>) -> Result<(), String> {
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

    fn push(&mut self, spec: Spec<'_>) -> Result<(), String> {
        let Spec { id, channel, index, phone, connected, default, users, weight, pool, limits, reply_window } = spec;
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
                    diag::suggestion(pool, known.iter().copied()),
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
        let registry = self.registry;
        let Some((position, channel)) =
            registry.channel_position(channel).and_then(|p| Some((p, registry.channel_ids().nth(p)?)))
        else {
            return Err(format!(
                "instance `{id}`: unknown channel `{channel}`{}; registered channels: {}",
                diag::suggestion(channel, registry.channel_ids()),
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
        let parts =
            InstanceParts { index, connected, default, users, weight, pool: pool.map(Box::from), limits, reply_window };
        let Some(instance) = Instance::new(channel, id, phone, parts) else {
            return Err(format!("instance `{id}`: its texts are longer than 4 GiB"));
        };
        self.instances.push(instance);
        Ok(())
    }

    /// The location built so far; the builder is left empty for the next.
    fn finish(&mut self, id: Box<str>) -> Location {
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

/// A location in the world's set, found by its id.
#[derive(Debug, Clone)]
struct ById(Location);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes: lookups are by `&str`.
        self.0.id.hash(state);
    }
}

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

/// A location id as looked up: hashed as a `str` (as [`ById`] hashes),
/// compared in line ([`crate::registry::same_short`]: every decision
/// looks its location up, and `==` calls `memcmp`).
struct LocationId<'a>(&'a str);

impl Hash for LocationId<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl hashbrown::Equivalent<ById> for LocationId<'_> {
    #[inline]
    fn equivalent(&self, key: &ById) -> bool {
        crate::registry::same_short(self.0.as_bytes(), key.0.id.as_bytes())
    }
}

/// Every location known to the engine.
#[derive(Debug, Clone, Default)]
pub struct World {
    locations: hashbrown::HashSet<ById, rustc_hash::FxBuildHasher>,
    /// `true` for [`World::empty`]: no world file was given.
    no_file: bool,
    /// Whether any location has a capacity limit, kept as locations are
    /// added: a request asks it, and a walk over the world per request grew
    /// with the world.
    limits: bool,
}

impl World {
    /// No world file: requests must carry their `instances` (a request that
    /// does not is told so).
    pub fn empty() -> World {
        World { no_file: true, ..World::default() }
    }

    /// Whether this world stands for "no world file was given".
    pub fn is_no_file(&self) -> bool {
        self.no_file
    }

    /// The location with this id.
    #[inline]
    pub fn location(&self, id: &str) -> Option<&Location> {
        self.locations.get(&LocationId(id)).map(|l| &l.0)
    }

    /// The location `request` is decided in: its inline `instances`
    /// compiled (they replace the world's), else the world's location of
    /// that id. (The evaluator resolves the location itself, borrowing
    /// without this `Cow`: returned through memory on every decision, it
    /// cost a typical selection 7–17 ns.)
    pub fn location_of(&self, request: &Request, registry: &Registry) -> Result<Cow<'_, Location>, NoLocation> {
        match &request.instances {
            Some(specs) => Location::from_specs(&request.location, specs, registry)
                .map(Cow::Owned)
                .map_err(NoLocation::InvalidInstances),
            None => self.location(&request.location).map(Cow::Borrowed).ok_or(NoLocation::Unknown),
        }
    }

    /// The number of locations.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// Whether any instance or pool of any location has a capacity limit
    /// (known since the world was built: no walk).
    #[inline]
    pub fn has_limits(&self) -> bool {
        self.limits
    }

    /// Whether there is no location.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// Adds a location unless its id is taken; whether it was added.
    fn insert(&mut self, location: Location) -> bool {
        let limits = location.has_limits();
        // A set keeps the location it has: the new one is dropped.
        let added = self.locations.insert(ById(location));
        self.limits |= added && limits;
        added
    }

    /// Whether a world file of this name is read as JSON (it ends in
    /// `.json`, in any case); any other is read as YAML.
    pub fn is_json_file(file: &str) -> bool {
        file.to_ascii_lowercase().ends_with(".json")
    }

    /// Reads a world file. `file` names it in errors; a name ending in
    /// `.json` is read as JSON, anything else as YAML.
    pub fn from_str(text: &str, file: &str, registry: &Registry) -> Result<World, FileErrors> {
        if text.trim().is_empty() {
            return Err(FileErrors::whole_file(
                file,
                "the world file is empty; expected `locations:` with a list of locations",
            ));
        }
        // The fast path: plain serde, building each location as it is read.
        // Any problem sends the file to the slow path, which reads it into a
        // positioned tree and reports every problem at its line and column.
        let json = World::is_json_file(file);
        let fast = if json {
            World::from_json_reader(text.as_bytes(), registry).ok().flatten()
        } else {
            Fast { registry, top: true }.deserialize(serde_yaml::Deserializer::from_str(text)).ok()
        };
        match fast {
            Some(world) => Ok(world),
            None => World::diagnose(text, file, registry),
        }
    }

    /// The slow path of [`World::from_str`] alone: the world when the file
    /// is valid, else every problem of it, located. For a caller whose
    /// [`World::from_json_reader`] gave up on the file.
    pub fn diagnose(text: &str, file: &str, registry: &Registry) -> Result<World, FileErrors> {
        if text.trim().is_empty() {
            return Err(FileErrors::whole_file(
                file,
                "the world file is empty; expected `locations:` with a list of locations",
            ));
        }
        let json = World::is_json_file(file);
        World::check(text, json, registry, false)
            .and_then(|_| World::check(text, json, registry, true))
            .map_err(|diagnostics| FileErrors::sorted(file, diagnostics))
    }

    /// The fast path for a JSON world, read from `reader` as it comes: one
    /// location at a time is held as text, and each is built as soon as it
    /// is read. `Ok(None)` when the text is not a valid world in the plain
    /// form `{"locations": [...]}` (or is any other valid JSON world);
    /// [`World::diagnose`] on the whole text then says what is wrong, at
    /// its line and column, or reads the unusual form.
    pub fn from_json_reader(reader: impl io::Read, registry: &Registry) -> io::Result<Option<World>> {
        let mut input = Chunks { reader, buf: Vec::new(), start: 0, end: 0, eof: false };
        let mut world = World::default();
        let mut builder = LocationBuilder::new(registry);
        for expected in [b'{', b'"'] {
            if input.next_token()? != Some(expected) {
                return Ok(None);
            }
            input.start += 1;
        }
        for &b in b"locations\"" {
            if input.peek()? != Some(b) {
                return Ok(None);
            }
            input.start += 1;
        }
        for expected in [b':', b'['] {
            if input.next_token()? != Some(expected) {
                return Ok(None);
            }
            input.start += 1;
        }
        let mut first = true;
        loop {
            match input.next_token()? {
                Some(b']') if first => break,
                Some(b'{') => {}
                _ => return Ok(None),
            }
            first = false;
            let Some(len) = input.object()? else { return Ok(None) };
            let Some(text) = input.buf.get(input.start..input.start + len) else { return Ok(None) };
            // Checked whole once, rather than string by string by serde.
            let Ok(text) = std::str::from_utf8(text) else { return Ok(None) };
            let mut de = serde_json::Deserializer::from_str(text);
            let Ok(location) = LocationSeed(&mut builder).deserialize(&mut de) else { return Ok(None) };
            if de.end().is_err() {
                return Ok(None);
            }
            if !world.insert(location) {
                return Ok(None);
            }
            input.start += len;
            match input.next_token()? {
                Some(b',') => input.start += 1,
                Some(b']') => break,
                _ => return Ok(None),
            }
        }
        input.start += 1;
        if input.next_token()? != Some(b'}') {
            return Ok(None);
        }
        input.start += 1;
        if input.next_token()?.is_some() {
            return Ok(None);
        }
        world.locations.shrink_to_fit();
        Ok(Some(world))
    }

    /// The slow path: every problem of the file, located. Locations are
    /// checked one at a time as the parser reads them (see
    /// [`tree::parse_streaming`]), and kept only with `keep`: the first pass
    /// only checks, and a second pass builds the world when the first found
    /// nothing (a file serde refused that is valid all the same).
    fn check(text: &str, json: bool, registry: &Registry, keep: bool) -> Result<World, Vec<Diagnostic>> {
        let mut out = Vec::new();
        let mut world = World::default();
        let mut ids: FxHashSet<String> = FxHashSet::default();
        let mut builder = LocationBuilder::new(registry);
        let mut location = |i: usize, node: Node<'_>| {
            let top = Path::Root;
            let locations = top.key("locations");
            let path = locations.index(i);
            let Some(id) = read_location(&node, &mut builder, &path, &mut out) else {
                builder.reset();
                return;
            };
            if !ids.insert(id.clone()) {
                out.push(node.error(format!("duplicate location id `{id}`; each location appears once")).at_path(path));
                builder.reset();
            } else if keep {
                world.insert(builder.finish(id.into()));
            } else {
                builder.reset();
            }
        };
        let (root, mut parsed) = tree::parse_streaming(text, json, Some(("locations", &mut location)));
        out.append(&mut parsed);
        let Some(root) = root else { return Err(out) };
        let top = tree::fields(&root, Some(&["locations"]), "a world file", "a map with `locations`", &"", &mut out);
        match top.as_ref().and_then(|top| top.first()) {
            // Streamed above when a list; anything else is reported here.
            Some((_, _, list)) => drop(tree::items(list, "a list of locations", &"locations", &mut out)),
            None if top.is_some() => {
                out.push(root.error("missing `locations`: a world file is a map with a `locations` list"));
            }
            None => {}
        }
        if out.is_empty() {
            Ok(world)
        } else {
            Err(out)
        }
    }
}

/// A reader's bytes, read in chunks into one buffer that holds at least
/// the current object.
struct Chunks<R> {
    reader: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

/// How much is read at once.
const CHUNK: usize = 1 << 20;

impl<R: io::Read> Chunks<R> {
    /// Reads more: the unread bytes move to the front, the buffer grows when
    /// they fill it. `false` at the end of the input.
    fn more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < CHUNK / 2 {
            self.buf.resize((self.buf.len() * 2).max(CHUNK), 0);
        }
        loop {
            match self.reader.read(self.buf.get_mut(self.end..).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next unread byte, left unread.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        while self.start >= self.end {
            if !self.more()? {
                return Ok(None);
            }
        }
        Ok(self.buf.get(self.start).copied())
    }

    /// The next byte after JSON whitespace, left unread.
    fn next_token(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.start += 1,
                other => return Ok(other),
            }
        }
    }

    /// The length of the JSON object starting at `start` (read in whole),
    /// found by its brackets and strings alone: serde checks the rest.
    /// `None` when the input ends first.
    fn object(&mut self) -> io::Result<Option<usize>> {
        let (mut at, mut depth, mut in_string) = (0usize, 0usize, false);
        loop {
            let text = self.buf.get(self.start..self.end).unwrap_or_default();
            while at < text.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', text.get(at..).unwrap_or_default()) {
                        None => at = text.len(),
                        Some(n) if text.get(at + n) == Some(&b'"') => {
                            in_string = false;
                            at += n + 1;
                        }
                        // An escape: the byte after the backslash is skipped
                        // (if it is not read yet, the backslash is read again).
                        Some(n) if at + n + 1 < text.len() => at += n + 2,
                        Some(n) => {
                            at += n;
                            break;
                        }
                    }
                    continue;
                }
                match text.get(at) {
                    Some(b'"') => in_string = true,
                    Some(b'{' | b'[') => depth += 1,
                    Some(b'}' | b']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(Some(at + 1));
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }
}

/// A string read where the text allows, borrowed from it.
#[derive(Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            // As `String` reads them.
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Text(Cow::Owned(s.to_owned()))),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                match String::from_utf8(v) {
                    Ok(s) => Ok(Text(Cow::Owned(s))),
                    Err(e) => Err(E::invalid_value(de::Unexpected::Bytes(&e.into_bytes()), &self)),
                }
            }
        }
        d.deserialize_string(V)
    }
}

const INSTANCE_KEYS: [&str; 11] =
    ["id", "channel", "index", "phone", "connected", "default", "users", "weight", "pool", "limits", "reply_window"];
const LOCATION_KEYS: [&str; 5] = ["id", "timezone", "pools", "instances", "country"];
const POOL_KEYS: [&str; 2] = ["id", "limits"];

/// A location's id, its instances checked into `builder`; `None` without a
/// usable id.
fn read_location(
    node: &Node<'_>,
    builder: &mut LocationBuilder<'_>,
    path: &Path<'_>,
    out: &mut Vec<Diagnostic>,
) -> Option<String> {
    let expecting = "a location: a map with `id` and `instances`";
    let fields = tree::fields(node, Some(&LOCATION_KEYS), "a location", expecting, path, out)?;
    let mut id = None;
    if !fields.iter().any(|(k, _, _)| *k == "id") {
        out.push(node.error("location has no `id`").at_path(path));
    }
    // The timezone and the pools first: instances name pools.
    for (key, _, value) in &fields {
        let (key, value) = (*key, *value);
        match key {
            "id" => match value.as_text() {
                Some(s) => id = Some(s.to_owned()),
                None => {
                    out.push(value.error(format!("`id` must be a string; got {}", value.value)).at_path(path.key(key)))
                }
            },
            "timezone" => match value.as_str() {
                Some(name) => {
                    if let Err(message) = builder.timezone(name) {
                        out.push(value.error(message).at_path(path.key(key)));
                    }
                }
                None if matches!(value.value, Value::Null) => {}
                None => out.push(
                    value
                        .error(format!("`timezone` must be an IANA timezone name; got {}", value.value))
                        .at_path(path.key(key)),
                ),
            },
            "country" => match value.as_str() {
                Some(code) => {
                    if let Err(message) = builder.country(code) {
                        out.push(value.error(message).at_path(path.key(key)));
                    }
                }
                None if matches!(value.value, Value::Null) => {}
                None => out.push(
                    value
                        .error(format!("`country` must be an ISO 3166 alpha-2 country code; got {}", value.value))
                        .at_path(path.key(key)),
                ),
            },
            "pools" => {
                let list = path.key(key);
                for (j, item) in tree::items(value, "a list of pools", &list, out).iter().enumerate() {
                    let path = list.index(j);
                    let Some((pool, limits)) = read_pool(item, &path, out) else { continue };
                    if let Err(message) = builder.pool(pool, limits) {
                        out.push(item.error(message).at_path(path));
                    }
                }
            }
            _ => {}
        }
    }
    for (key, _, value) in fields {
        if key != "instances" {
            continue;
        }
        let list = path.key(key);
        for (j, item) in tree::items(value, "a list of instances", &list, out).iter().enumerate() {
            let path = list.index(j);
            let Some(spec) = read_instance(item, &path, out) else { continue };
            if let Err(message) = builder.push(spec) {
                out.push(item.error(message).at_path(path));
            }
        }
    }
    id
}

/// A `limits:` map: each key known, each limit a whole number from 1
/// (`null` is the same as absent); `None` after a problem.
fn read_limits(node: &Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<Limits> {
    if matches!(node.value, Value::Null) {
        return Some(Limits::NONE);
    }
    let expecting = "limits: a map with `per_minute`, `per_hour`, `per_day`, `contacts_per_day`";
    let fields = tree::fields(node, Some(&Limits::KEYS), "limits", expecting, path, out)?;
    let before = out.len();
    let mut limits = Limits::NONE;
    for (key, _, value) in &fields {
        let slot = match *key {
            "per_minute" => &mut limits.per_minute,
            "per_hour" => &mut limits.per_hour,
            "per_day" => &mut limits.per_day,
            _ => &mut limits.contacts_per_day,
        };
        match &value.value {
            Value::Null => {}
            Value::Int(n) if *n >= 1 && *n <= i64::from(u32::MAX) => *slot = u32::try_from(*n).ok(),
            other => out.push(
                value.error(format!("`{key}` must be a whole number, 1 or more; got {other}")).at_path(path.key(key)),
            ),
        }
    }
    (out.len() == before).then_some(limits)
}

/// A pool's id and limits; `None` after a problem.
fn read_pool(node: &Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<(String, Option<Limits>)> {
    let fields = tree::fields(node, Some(&POOL_KEYS), "a pool", "a pool: a map with `id` and `limits`", path, out)?;
    let before = out.len();
    let mut id = None;
    let mut limits = None;
    for (key, _, value) in &fields {
        if *key == "id" {
            match value.as_text() {
                Some(s) => id = Some(s.to_owned()),
                None => {
                    out.push(value.error(format!("`id` must be a string; got {}", value.value)).at_path(path.key(key)))
                }
            }
        } else {
            limits = read_limits(value, &path.key(key), out);
        }
    }
    if id.is_none() && !fields.iter().any(|(k, _, _)| *k == "id") {
        out.push(node.error("a pool needs `id`").at_path(path));
    }
    if out.len() != before {
        return None;
    }
    Some((id?, limits))
}

/// One instance's fields, each type checked; `None` when one is missing or
/// has the wrong type.
fn read_instance<'n>(node: &'n Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<Spec<'n>> {
    let expecting = "an instance: a map with `id`, `channel`, `phone`, …";
    // An unknown or repeated key does not spoil the fields read: the
    // instance is still checked against the others (indexes, defaults).
    let fields = tree::fields(node, Some(&INSTANCE_KEYS), "an instance", expecting, path, out)?;
    let before = out.len();
    let mut spec = Spec {
        id: "",
        channel: "",
        index: None,
        phone: "",
        connected: false,
        default: false,
        users: Users::new(),
        weight: None,
        pool: None,
        limits: None,
        reply_window: None,
    };
    let mut user_ids = Vec::new();
    for (key, _, value) in &fields {
        let at = path.key(key);
        let want = match (*key, &value.value, value.as_text()) {
            ("weight" | "pool" | "limits" | "reply_window", Value::Null, _) => continue,
            ("reply_window", _, Some(text)) => {
                spec.reply_window = Some(text);
                continue;
            }
            ("reply_window", _, None) => "a duration such as `24h`",
            ("weight", Value::Int(n), _) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                spec.weight = u32::try_from(*n).ok();
                continue;
            }
            ("weight", _, _) => "a whole number, 1 or more",
            ("pool", _, Some(text)) => {
                spec.pool = Some(text);
                continue;
            }
            ("pool", _, None) => "the id of a pool of this location",
            ("limits", _, _) => {
                let before = out.len();
                match read_limits(value, &at, out) {
                    Some(limits) => spec.limits = Some(limits),
                    None if out.len() == before => out.push(value.error("invalid `limits`").at_path(at)),
                    None => {}
                }
                continue;
            }
            ("id" | "channel" | "phone", _, Some(text)) => {
                let field = match *key {
                    "id" => &mut spec.id,
                    "channel" => &mut spec.channel,
                    _ => &mut spec.phone,
                };
                *field = text;
                continue;
            }
            ("id" | "channel" | "phone", _, None) => "a string",
            ("index", Value::Int(n), _) if *n >= 0 => {
                spec.index = Some(n.unsigned_abs());
                continue;
            }
            ("index", _, _) => "a whole number, 1 or more",
            ("connected" | "default", Value::Bool(b), _) => {
                *(if *key == "default" { &mut spec.default } else { &mut spec.connected }) = *b;
                continue;
            }
            ("connected" | "default", _, _) => "`true` or `false`",
            (_, Value::Seq(users), _) => {
                for user in users {
                    match user.as_text() {
                        Some(u) => user_ids.push(u.to_owned()),
                        None => {
                            let message = format!("a user id must be a string; got {}", user.value);
                            out.push(user.error(message).at_path(at));
                        }
                    }
                }
                continue;
            }
            _ => "a list of user ids",
        };
        out.push(value.error(format!("`{key}` must be {want}; got {}", value.value)).at_path(at));
    }
    for required in ["id", "channel"] {
        if !fields.iter().any(|(k, _, _)| *k == required) {
            out.push(node.error(format!("an instance needs `{required}`")).at_path(path));
        }
    }
    spec.users = Users::from_vec(user_ids);
    (out.len() == before).then_some(spec)
}

/// The happy path for YAML: a world file read by serde into locations as
/// it goes, refusing (with no detail) anything the slow path would report.
struct Fast<'r> {
    registry: &'r Registry,
    /// The file (a map), else its `locations` (a list).
    top: bool,
}

/// A location read by serde on the fast paths, straight into the builder:
/// the same fields, types and refusals as a derived `deny_unknown_fields`
/// struct of [`InstanceSpec`]s would have, with no list of instances built
/// on the way. Any problem is an error without detail (the slow path says
/// what it is).
struct LocationSeed<'b, 'r>(&'b mut LocationBuilder<'r>);

impl<'de> DeserializeSeed<'de> for LocationSeed<'_, '_> {
    type Value = Location;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Location, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LocationSeed<'_, '_> {
    type Value = Location;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Location, A::Error> {
        let refuse = || de::Error::custom("");
        let builder = self.0;
        builder.reset();
        builder.defer_pools = true;
        let mut id: Option<Text<'de>> = None;
        let mut seen = [false; LOCATION_KEYS.len()];
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let Some(k) = LOCATION_KEYS.iter().position(|k| *k == key.0) else { return Err(refuse()) };
            if seen.get_mut(k).map(|s| std::mem::replace(s, true)) != Some(false) {
                return Err(refuse());
            }
            match k {
                0 => id = Some(map.next_value()?),
                1 => {
                    if let Some(name) = map.next_value::<Option<Text<'de>>>()? {
                        builder.timezone(&name.0).map_err(de::Error::custom)?;
                    }
                }
                4 => {
                    if let Some(code) = map.next_value::<Option<Text<'de>>>()? {
                        builder.country(&code.0).map_err(de::Error::custom)?;
                    }
                }
                2 => {
                    for Obj(pool) in map.next_value::<Vec<Obj<FastPool<'de>>>>()? {
                        builder.pool(pool.id.0.into_owned(), pool.limits).map_err(de::Error::custom)?;
                    }
                }
                _ => map.next_value_seed(InstancesSeed(&mut *builder))?,
            }
        }
        let Some(id) = id else { return Err(refuse()) };
        if builder.pending_pools.iter().any(|name| !builder.pools.iter().any(|p| p.id == *name)) {
            return Err(refuse());
        }
        Ok(builder.finish(id.0.into()))
    }
}

/// A location's `instances`, each pushed into the builder as it is read.
struct InstancesSeed<'b, 'r>(&'b mut LocationBuilder<'r>);

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of instances")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Obj(spec)) = seq.next_element::<Obj<FastInstance<'de>>>()? {
            self.0
                .push(Spec {
                    id: &spec.id.0,
                    channel: &spec.channel.0,
                    index: spec.index,
                    phone: &spec.phone.0,
                    connected: spec.connected,
                    default: spec.default,
                    users: spec.users.0,
                    weight: spec.weight,
                    pool: spec.pool.as_ref().map(|p| &*p.0),
                    limits: spec.limits,
                    reply_window: spec.reply_window.as_ref().map(|w| &*w.0),
                })
                .map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastPool<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(default)]
    limits: Option<Limits>,
}

/// [`InstanceSpec`], field for field, with borrowed texts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastInstance<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    channel: Text<'a>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    phone: Text<'a>,
    #[serde(default)]
    connected: bool,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    users: UserList,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default, borrow)]
    pool: Option<Text<'a>>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default, borrow)]
    reply_window: Option<Text<'a>>,
}

/// A list of user ids, as `Vec<String>` reads it.
#[derive(Default)]
struct UserList(Users);

impl<'de> Deserialize<'de> for UserList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserList, A::Error> {
                let mut users = Users::new();
                while let Some(user) = seq.next_element::<String>()? {
                    users.push(user);
                }
                users.shrink_to_fit();
                Ok(UserList(users))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> DeserializeSeed<'de> for Fast<'_> {
    type Value = World;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<World, D::Error> {
        if self.top {
            d.deserialize_map(self)
        } else {
            d.deserialize_seq(self)
        }
    }
}

impl<'de> Visitor<'de> for Fast<'_> {
    type Value = World;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a world file")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<World, A::Error> {
        let refuse = || de::Error::custom("");
        match map.next_key::<Cow<'de, str>>()? {
            Some(key) if key == "locations" => {}
            _ => return Err(refuse()),
        }
        let world = map.next_value_seed(Fast { registry: self.registry, top: false })?;
        match map.next_key::<de::IgnoredAny>()? {
            None => Ok(world),
            Some(_) => Err(refuse()),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<World, A::Error> {
        let mut world = World::default();
        world.locations.reserve(seq.size_hint().unwrap_or(0));
        let mut builder = LocationBuilder::new(self.registry);
        while let Some(location) = seq.next_element_seed(LocationSeed(&mut builder))? {
            if !world.insert(location) {
                return Err(de::Error::custom(""));
            }
        }
        Ok(world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Wa;
    use crate::{normalize_phone, ChannelInfo, RegistryBuilder, Source};

    /// Small channels are scanned, large ones hashed: both must answer
    /// exactly as a naive search does.
    #[test]
    fn scanned_and_indexed_lookups_agree_with_a_naive_search() {
        let registry =
            RegistryBuilder::new().channel(ChannelInfo::new(&Wa, Source::Builtin("t".into()))).build().unwrap();
        for n in [3usize, 16, 17, 60] {
            let specs: Vec<InstanceSpec> = (0..n)
                .map(|i| InstanceSpec {
                    id: format!("i{i}"),
                    channel: "whatsapp".into(),
                    index: Some((n - i) as u64 * 2),
                    phone: format!("+1 555 {}", i % 4),
                    connected: i % 3 != 0,
                    default: i == 1,
                    users: vec![format!("u{}", i % 5)],
                    weight: None,
                    pool: None,
                    limits: None,
                    reply_window: None,
                })
                .collect();
            let location = Location::from_specs("l", &specs, &registry).unwrap();
            let view = location.channel("whatsapp");
            let ids = |it: &mut dyn Iterator<Item = &Arc<Instance>>| it.map(|i| i.id().to_owned()).collect::<Vec<_>>();
            let mut naive: Vec<&InstanceSpec> = specs.iter().collect();
            naive.sort_by_key(|s| s.index);
            for index in 0..=(2 * n as u64 + 1) {
                let want = naive.iter().find(|s| s.index == Some(index)).map(|s| s.id.clone());
                assert_eq!(view.by_index(index).map(|i| i.id().to_owned()), want, "n={n} index={index}");
            }
            for d in 0..5 {
                let digits = normalize_phone(&format!("+1 555 {d}"));
                let want: Vec<String> =
                    naive.iter().filter(|s| normalize_phone(&s.phone) == digits).map(|s| s.id.clone()).collect();
                assert_eq!(ids(&mut view.with_phone_digits(&digits)), want, "n={n} digits={digits}");
                let user = format!("u{d}");
                let want: Vec<String> =
                    naive.iter().filter(|s| s.users.contains(&user)).map(|s| s.id.clone()).collect();
                assert_eq!(ids(&mut view.assigned_to(&user)), want, "n={n} user={user}");
            }
            assert_eq!(view.default_instance().map(|i| i.id().to_owned()), Some("i1".to_owned()));
        }
    }

    /// Hands its bytes over one at a time: every object straddles reads.
    struct Trickle<'a>(&'a [u8]);
    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn registry() -> Registry {
        RegistryBuilder::new().channel(ChannelInfo::new(&Wa, Source::Builtin("t".into()))).build().unwrap()
    }

    #[test]
    fn a_channel_is_found_by_the_registry_the_world_was_built_with_and_by_any_other() {
        let (built_with, other) = (registry(), registry());
        let spec = |id: &str, channel: &str| InstanceSpec {
            id: id.into(),
            channel: channel.into(),
            index: None,
            phone: "+1 555 0001".into(),
            connected: true,
            default: false,
            users: Vec::new(),
            weight: None,
            pool: None,
            limits: None,
            reply_window: None,
        };
        let location = Location::from_specs("l", &[spec("a", "whatsapp"), spec("b", "WhatsApp")], &built_with).unwrap();
        let ids = |view: InstanceView<'_>| view.iter().map(|i| i.id().to_owned()).collect::<Vec<_>>();
        let want = ids(location.channel("whatsapp"));
        assert_eq!(want, ["a", "b"]);
        // The same channel of another registry: another allocation of its
        // id, found by its text.
        let (mine, theirs) = (&built_with.channels()[0], &other.channels()[0]);
        assert!(!std::ptr::eq(mine.id().as_ptr(), theirs.id().as_ptr()));
        assert_eq!(ids(location.channel_of(mine)), want);
        assert_eq!(ids(location.channel_of(theirs)), want);
        // A channel the location has no instance on.
        let sms = ChannelInfo::from_parts(
            ["sms".into(), "SMS".into(), "sms:".into(), String::new()],
            false,
            false,
            Source::Builtin("t".into()),
        );
        assert!(location.channel_of(&sms).is_empty());
    }

    /// The streamed fast path builds what the slow path builds.
    #[test]
    fn a_streamed_json_world_is_the_world_the_slow_path_builds() {
        let registry = registry();
        let many: Vec<String> = (1..=20)
            .map(|i| {
                format!(
                    r#"{{"id":"m{i}","channel":"WhatsApp","phone":"+1 555 {}","connected":true,"users":["u{}","v"]}}"#,
                    i % 3,
                    i % 2
                )
            })
            .collect();
        let text = format!(
            r#"{{ "locations" : [
  {{"instances": [{{"id":"a\"1","channel":"whatsapp","index":3,"phone":"+1-555-ORDERS","connected":true,"default":true,"users":["u\u00e9"],"pool":"p","weight":2,"limits":{{"per_day":5}}}},
                  {{"id":"b","channel":"whatsapp","index":1,"phone":"","connected":true}}],
   "pools": [{{"id":"p","limits":{{"per_hour":9}}}}], "timezone": "Europe/Paris", "id": "l\u00e9"}},
  {{"id":"big","instances":[{}]}},
  {{"id":"none"}}
] }}
"#,
            many.join(",")
        );
        let streamed = World::from_json_reader(Trickle(text.as_bytes()), &registry).unwrap().expect("streamed");
        let slow = World::diagnose(&text, "w.json", &registry).unwrap();
        let from_str = World::from_str(&text, "w.json", &registry).unwrap();
        assert_eq!(streamed.len(), 3);
        for id in ["l\u{e9}", "big", "none"] {
            let want = format!("{:?}", slow.location(id).unwrap());
            assert_eq!(format!("{:?}", streamed.location(id).unwrap()), want, "{id}");
            assert_eq!(format!("{:?}", from_str.location(id).unwrap()), want, "{id}");
        }
        let l = streamed.location("l\u{e9}").unwrap();
        let a = l.channel("whatsapp").by_index(3).unwrap();
        assert_eq!(
            (a.id(), a.channel(), a.phone(), a.phone_digits()),
            ("a\"1", "whatsapp", "+1-555-ORDERS", "1555673377")
        );
        assert_eq!(
            (a.users(), a.pool(), a.weight(), a.limits().per_day),
            (&["u\u{e9}".to_owned()][..], Some("p"), 2, Some(5))
        );
        assert_eq!(l.channel("whatsapp").available().count(), 1);
        assert_eq!(streamed.location("big").unwrap().channel("whatsapp").assigned_to("v").count(), 20);
    }

    /// Anything the stream does not take whole is left to the slow path,
    /// which reads the unusual forms and reports the rest.
    #[test]
    fn the_stream_gives_up_on_anything_but_a_plain_valid_world() {
        let registry = registry();
        let ok = r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp"}]}]}"#;
        assert!(World::from_json_reader(ok.as_bytes(), &registry).unwrap().is_some());
        assert!(World::from_json_reader(r#"{"locations":[]}"#.as_bytes(), &registry).unwrap().unwrap().is_empty());
        for bad in [
            r#"{"locations":[{"id":"a"},{"id":"a"}]}"#,
            r#"{"locations":[{"id":"a"}]} x"#,
            r#"{"locations":[{"id":"a"}],}"#,
            r#"{"locations":[{"id":"a"},]}"#,
            r#"{"locations":[{"id":"a"}"#,
            r#"{"locations":[{"id":"a","extra":1}]}"#,
            r#"{"locations":[{"id":"a","id":"b"}]}"#,
            r#"{"locations":[{"instances":[]}]}"#,
            r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","pool":"nope"}]}]}"#,
            r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","phone":5550101}]}]}"#,
            r#"{"locations":[["a"]]}"#,
            r#"{"locations":[{"id":"a"]}]}"#,
            r#"{"locat\u0069ons":[]}"#,
        ] {
            let text = String::from_utf8_lossy(bad.as_bytes()).into_owned();
            let streamed = World::from_json_reader(bad.as_bytes(), &registry).unwrap();
            assert!(streamed.is_none(), "{bad}");
            // The slow path agrees with what `from_str` says.
            let a = World::diagnose(&text, "w.json", &registry).map(|w| w.len()).map_err(|e| e.to_string());
            let b = World::from_str(&text, "w.json", &registry).map(|w| w.len()).map_err(|e| e.to_string());
            assert_eq!(a, b, "{bad}");
        }
        let not_utf8: &[u8] = b"{\"locations\":[{\"id\":\"a\xff\"}]}";
        assert!(World::from_json_reader(not_utf8, &registry).unwrap().is_none());
        // Unusual but valid: read by the slow path.
        assert_eq!(World::from_str(r#"{"locat\u0069ons":[{"id":"a"}]}"#, "w.json", &registry).unwrap().len(), 1);
        let late_pool = r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","pool":"p"}],"pools":[{"id":"p"}]}]}"#;
        assert!(World::from_json_reader(late_pool.as_bytes(), &registry).unwrap().is_some());
    }

    /// A refused instance still counts for the ones after it: its id is
    /// taken, and an index is reported as used by the last instance that
    /// claimed it.
    #[test]
    fn refused_instances_still_take_their_id_and_index() {
        let text = "locations:\n  - id: l\n    instances:\n      - {id: a, channel: whatsapp, index: 0}\n      \
                    - {id: a, channel: whatsapp, index: 1}\n      - {id: b, channel: whatsapp, index: 2}\n      \
                    - {id: c, channel: whatsapp, index: 2}\n      - {id: d, channel: whatsapp, index: 2}\n";
        let e = World::from_str(text, "w.yaml", &registry()).unwrap_err();
        let messages: Vec<&str> = e.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].ends_with("instance `a`: index 0 is not allowed; indexes start at 1"), "{messages:?}");
        assert!(messages[1].contains("duplicate instance id `a`"), "{messages:?}");
        assert!(messages[2].contains("instance `c`: index 2 on whatsapp is already used by `b`"), "{messages:?}");
        assert!(messages[3].contains("instance `d`: index 2 on whatsapp is already used by `c`"), "{messages:?}");
    }

    /// `country` and `reply_window` (docs/recipient-rules.md) are read alike by every
    /// path, and refused alike.
    #[test]
    fn country_and_reply_window_are_read_by_every_path() {
        let registry = registry();
        let json = r#"{"locations":[{"id":"a","country":"us","timezone":"America/New_York","instances":[{"id":"x","channel":"whatsapp","phone":"(212) 555-0101","reply_window":"24h","connected":true}]},{"id":"b"}]}"#;
        let yaml = "locations:\n  - id: a\n    country: us\n    timezone: America/New_York\n    instances:\n      - {id: x, channel: whatsapp, phone: (212) 555-0101, reply_window: 24h, connected: true}\n  - id: b\n";
        let streamed = World::from_json_reader(json.as_bytes(), &registry).unwrap().expect("streamed");
        let slow = World::diagnose(json, "w.json", &registry).unwrap();
        let from_yaml = World::from_str(yaml, "w.yaml", &registry).unwrap();
        let slow_yaml = World::diagnose(yaml, "w.yaml", &registry).unwrap();
        for world in [&streamed, &slow, &from_yaml, &slow_yaml] {
            let a = world.location("a").unwrap();
            assert_eq!(a.country(), Some(recipient::Country::US));
            assert!(a.named_timezone().is_some());
            let x = a.channel("whatsapp").by_index(1).unwrap();
            assert_eq!(x.reply_window(), Some(std::time::Duration::from_secs(86_400)));
            let geo = x.geo(a.country()).unwrap();
            assert_eq!((geo.calling_code, geo.area_code), (1, Some(212)));
            let b = world.location("b").unwrap();
            assert_eq!((b.country(), b.named_timezone().is_some()), (None, false));
            assert_eq!(format!("{:?}", a), format!("{:?}", slow.location("a").unwrap()));
        }
        for (bad, says) in [
            (r#"{"locations":[{"id":"a","country":"USA"}]}"#, "ISO 3166 alpha-2"),
            (r#"{"locations":[{"id":"a","country":1}]}"#, "`country` must be an ISO 3166 alpha-2"),
            (
                r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","reply_window":"1w"}]}]}"#,
                "instance `x`: `reply_window` must be a whole number followed by a unit",
            ),
            (
                r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","reply_window":"0h"}]}]}"#,
                "at least 1h",
            ),
            (
                r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","reply_window":24}]}]}"#,
                "`reply_window` must be a whole number followed by a unit",
            ),
        ] {
            assert!(World::from_json_reader(bad.as_bytes(), &registry).unwrap().is_none(), "{bad}");
            let e = World::from_str(bad, "w.json", &registry).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
