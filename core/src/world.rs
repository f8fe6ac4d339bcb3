//! The world: locations and their instances, validated once and indexed by
//! index, phone digits and user so that selection never scans a location.

use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use smallvec::SmallVec;

use crate::capacity::jiff::tz::TimeZone;
use crate::capacity::{self, Limits};
use crate::diag::{self, Diagnostic, FileErrors};
use crate::model::Obj;
use crate::tree::{self, Node, Path, Value};
use crate::{normalize_phone, Instance, InstanceSpec, Registry};

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
#[derive(Debug, Clone, Default)]
struct ChannelInstances {
    channel: String,
    /// Positions into `Location::instances`, by ascending index.
    by_order: Vec<u32>,
    default: Option<u32>,
    /// Connected instances with a phone, by ascending index.
    available: Vec<u32>,
    /// Present above [`INDEXED_ABOVE`] instances.
    indexes: Option<Box<Indexes>>,
}

/// Limits shared by several instances of one location (a WhatsApp
/// portfolio, a 10DLC brand; SPEC §10).
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

/// A CRM location and its instances, indexed per channel.
#[derive(Debug, Clone)]
pub struct Location {
    id: String,
    instances: Vec<Arc<Instance>>,
    channels: Vec<ChannelInstances>,
    timezone: TimeZone,
    pools: Vec<Pool>,
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
        self.pools.iter().any(|p| !p.limits.is_unlimited()) || self.instances.iter().any(|i| !i.limits.is_unlimited())
    }

    /// The view of this location's instances on one channel (empty when it
    /// has none there).
    pub fn channel(&self, channel: &str) -> InstanceView<'_> {
        InstanceView {
            instances: &self.instances,
            slot: self.channels.iter().find(|c| crate::registry::same_str(&c.channel, channel)),
        }
    }

    /// Compiles inline instances (a request's `instances`) into a location;
    /// the first problem is returned as a message.
    pub fn from_specs(id: &str, specs: &[InstanceSpec], registry: &Registry) -> Result<Location, String> {
        let mut builder = LocationBuilder::new(registry);
        for (i, spec) in specs.iter().enumerate() {
            builder.push(spec.clone()).map_err(|e| format!("instances[{i}]: {e}"))?;
        }
        Ok(builder.finish(id.to_owned()))
    }
}

/// The instances of one location on one channel, as rules see them.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    instances: &'a [Arc<Instance>],
    slot: Option<&'a ChannelInstances>,
}

impl<'a> InstanceView<'a> {
    #[inline]
    fn get(&self, position: u32) -> Option<&'a Arc<Instance>> {
        self.instances.get(position as usize)
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
        self.slot.map_or(0, |s| s.by_order.len())
    }

    /// Whether the location has no instance on this channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every instance on this channel, by ascending index.
    pub fn iter(&self) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        let instances = self.instances;
        let order: &'a [u32] = self.slot.map_or(&[], |s| &s.by_order);
        order.iter().filter_map(move |p| instances.get(*p as usize))
    }

    /// The `rank`th instance by ascending index (0 is the lowest index).
    pub fn nth(&self, rank: usize) -> Option<&'a Arc<Instance>> {
        self.slot.and_then(|s| s.by_order.get(rank)).and_then(|p| self.get(*p))
    }

    /// The rank (see [`InstanceView::nth`]) of the instance with this index.
    pub fn rank_of_index(&self, index: u64) -> Option<usize> {
        let order: &[u32] = self.slot.map_or(&[], |s| &s.by_order);
        order.binary_search_by_key(&index, |p| self.instances.get(*p as usize).map_or(u64::MAX, |i| i.index)).ok()
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
                None => (&slot.by_order, true),
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
        self.find(indexed, move |i| !digits.is_empty() && i.digits == digits)
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
        let found: &'a [u32] = self.slot.map_or(&[], |s| &s.available);
        let instances = self.instances;
        found.iter().filter_map(move |p| instances.get(*p as usize))
    }

    /// The `n`th available instance (see [`InstanceView::available`]).
    pub fn available_nth(&self, n: usize) -> Option<&'a Arc<Instance>> {
        self.slot.and_then(|s| s.available.get(n)).and_then(|p| self.get(*p))
    }

    /// The number of available instances.
    pub fn available_len(&self) -> usize {
        self.slot.map_or(0, |s| s.available.len())
    }

    /// A short list of the indexes that exist, for error messages.
    pub fn describe_indexes(&self) -> String {
        let order: &[u32] = self.slot.map_or(&[], |s| &s.by_order);
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

/// Validates instances one at a time, in file order.
struct LocationBuilder<'r> {
    registry: &'r Registry,
    timezone: TimeZone,
    pools: Vec<Pool>,
    instances: Vec<Instance>,
    ids: FxHashSet<String>,
    /// Per channel: whether the first instance gave an index, the indexes
    /// taken, the default's id.
    channels: FxHashMap<String, ChannelState>,
}

#[derive(Default)]
struct ChannelState {
    explicit: Option<(bool, String)>,
    indexes: FxHashMap<u64, String>,
    default: Option<String>,
    next: u64,
}

impl<'r> LocationBuilder<'r> {
    fn new(registry: &'r Registry) -> Self {
        LocationBuilder {
            registry,
            timezone: TimeZone::UTC,
            pools: Vec::new(),
            instances: Vec::new(),
            ids: FxHashSet::default(),
            channels: FxHashMap::default(),
        }
    }

    /// Sets the location's timezone from its IANA name.
    fn timezone(&mut self, name: &str) -> Result<(), String> {
        self.timezone = capacity::timezone(name).map_err(|e| {
            format!("{e}; use an IANA timezone name such as `UTC`, `Europe/Paris` or `America/New_York`")
        })?;
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

    fn push(&mut self, spec: InstanceSpec) -> Result<(), String> {
        let InstanceSpec { id, channel, index, phone, connected, default, users, weight, pool, limits } = spec;
        if id.trim().is_empty() {
            return Err("instance `id` is empty; give every instance a unique id".into());
        }
        let weight = match weight {
            Some(0) => return Err(format!("instance `{id}`: `weight` is 0; a weight is a whole number, 1 or more")),
            Some(w) => w,
            None => 1,
        };
        if let Some(pool) = &pool {
            if !self.pools.iter().any(|p| &p.id == pool) {
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
        let Some(channel) = self.registry.channel_id(&channel) else {
            return Err(format!(
                "instance `{id}`: unknown channel `{channel}`{}; registered channels: {}",
                diag::suggestion(&channel, self.registry.channel_ids()),
                self.registry.channel_ids().collect::<Vec<_>>().join(", ")
            ));
        };
        if !self.ids.insert(id.clone()) {
            return Err(format!("duplicate instance id `{id}` in this location; instance ids must be unique"));
        }
        let state = self.channels.entry(channel.to_owned()).or_default();
        match &state.explicit {
            None => state.explicit = Some((index.is_some(), id.clone())),
            Some((explicit, first)) if *explicit != index.is_some() => {
                let (with, without) = if *explicit { (first, &id) } else { (&id, first) };
                return Err(format!(
                    "instance `{without}` has no `index` but `{with}` on {channel} has one; \
                     give every {channel} instance of this location an index, or none"
                ));
            }
            Some(_) => {}
        }
        let index = match index {
            Some(0) => return Err(format!("instance `{id}`: index 0 is not allowed; indexes start at 1")),
            Some(n) => n,
            None => state.next + 1,
        };
        state.next = state.next.max(index);
        if let Some(other) = state.indexes.insert(index, id.clone()) {
            return Err(format!(
                "instance `{id}`: index {index} on {channel} is already used by `{other}`; \
                 indexes must be unique per location and channel"
            ));
        }
        if default {
            if let Some(other) = &state.default {
                return Err(format!(
                    "instance `{id}` is marked `default: true` but `{other}` already is the {channel} \
                     default of this location; keep one default per channel"
                ));
            }
            state.default = Some(id.clone());
        }
        let digits = normalize_phone(&phone);
        self.instances.push(Instance {
            id,
            channel: channel.to_owned(),
            index,
            phone,
            digits,
            connected,
            default,
            users,
            weight,
            pool,
            limits,
        });
        Ok(())
    }

    fn finish(self, id: String) -> Location {
        let instances: Vec<Arc<Instance>> = self.instances.into_iter().map(Arc::new).collect();
        let mut channels: Vec<ChannelInstances> = Vec::new();
        let mut order: Vec<u32> = (0..instances.len() as u32).collect();
        order.sort_by(|a, b| {
            let (a, b) = (&instances[*a as usize], &instances[*b as usize]);
            (a.channel.as_str(), a.index).cmp(&(b.channel.as_str(), b.index))
        });
        for p in order {
            let inst = &instances[p as usize];
            if channels.last().is_none_or(|c| c.channel != inst.channel) {
                channels.push(ChannelInstances { channel: inst.channel.clone(), ..Default::default() });
            }
            let Some(slot) = channels.last_mut() else { continue };
            slot.by_order.push(p);
            if inst.default {
                slot.default = Some(p);
            }
            if inst.connected && inst.has_phone() {
                slot.available.push(p);
            }
        }
        for slot in &mut channels {
            slot.by_order.shrink_to_fit();
            slot.available.shrink_to_fit();
            if slot.by_order.len() > INDEXED_ABOVE {
                slot.indexes = Some(Box::new(index(&instances, &slot.by_order)));
            }
        }
        Location { id, instances, channels, timezone: self.timezone, pools: self.pools }
    }
}

fn index(instances: &[Arc<Instance>], order: &[u32]) -> Indexes {
    let mut ix = Indexes::default();
    for &p in order {
        let Some(inst) = instances.get(p as usize) else { continue };
        ix.by_index.insert(inst.index, p);
        if !inst.digits.is_empty() {
            ix.by_digits.entry(inst.digits.as_str().into()).or_default().push(p);
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

/// Every location known to the engine.
#[derive(Debug, Clone, Default)]
pub struct World {
    locations: FxHashMap<String, Location>,
    /// `true` for [`World::empty`]: no world file was given.
    no_file: bool,
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
    pub fn location(&self, id: &str) -> Option<&Location> {
        self.locations.get(id)
    }

    /// The number of locations.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// Whether any instance or pool of any location has a capacity limit.
    pub fn has_limits(&self) -> bool {
        self.locations.values().any(Location::has_limits)
    }

    /// Whether there is no location.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
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
        let json = file.to_ascii_lowercase().ends_with(".json");
        let fast = if json {
            let mut de = serde_json::Deserializer::from_str(text);
            Fast { registry, top: true }.deserialize(&mut de).ok().filter(|_| de.end().is_ok())
        } else {
            Fast { registry, top: true }.deserialize(serde_yaml::Deserializer::from_str(text)).ok()
        };
        match fast {
            Some(world) => Ok(world),
            None => World::check(text, json, registry, false)
                .and_then(|_| World::check(text, json, registry, true))
                .map_err(|diagnostics| FileErrors::sorted(file, diagnostics)),
        }
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
        let mut location = |i: usize, node: Node<'_>| {
            let top = Path::Root;
            let locations = top.key("locations");
            let path = locations.index(i);
            let Some((id, builder)) = read_location(&node, registry, &path, &mut out) else { return };
            if !ids.insert(id.clone()) {
                out.push(node.error(format!("duplicate location id `{id}`; each location appears once")).at_path(path));
            } else if keep {
                world.locations.insert(id.clone(), builder.finish(id));
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

const INSTANCE_KEYS: [&str; 10] =
    ["id", "channel", "index", "phone", "connected", "default", "users", "weight", "pool", "limits"];
const LOCATION_KEYS: [&str; 4] = ["id", "timezone", "pools", "instances"];
const POOL_KEYS: [&str; 2] = ["id", "limits"];

/// A location's id and its checked instances; `None` without a usable id.
fn read_location<'r>(
    node: &Node<'_>,
    registry: &'r Registry,
    path: &Path<'_>,
    out: &mut Vec<Diagnostic>,
) -> Option<(String, LocationBuilder<'r>)> {
    let expecting = "a location: a map with `id` and `instances`";
    let fields = tree::fields(node, Some(&LOCATION_KEYS), "a location", expecting, path, out)?;
    let mut builder = LocationBuilder::new(registry);
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
    Some((id?, builder))
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
fn read_instance(node: &Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<InstanceSpec> {
    let expecting = "an instance: a map with `id`, `channel`, `phone`, …";
    // An unknown or repeated key does not spoil the fields read: the
    // instance is still checked against the others (indexes, defaults).
    let fields = tree::fields(node, Some(&INSTANCE_KEYS), "an instance", expecting, path, out)?;
    let before = out.len();
    let mut spec = InstanceSpec {
        id: String::new(),
        channel: String::new(),
        index: None,
        phone: String::new(),
        connected: false,
        default: false,
        users: Vec::new(),
        weight: None,
        pool: None,
        limits: None,
    };
    for (key, _, value) in &fields {
        let at = path.key(key);
        let want = match (*key, &value.value, value.as_text()) {
            ("weight" | "pool" | "limits", Value::Null, _) => continue,
            ("weight", Value::Int(n), _) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                spec.weight = u32::try_from(*n).ok();
                continue;
            }
            ("weight", _, _) => "a whole number, 1 or more",
            ("pool", _, Some(text)) => {
                spec.pool = Some(text.to_owned());
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
                text.clone_into(field);
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
                        Some(u) => spec.users.push(u.to_owned()),
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
    (out.len() == before).then_some(spec)
}

/// The happy path: a world file read by serde into locations as it goes,
/// refusing (with no detail) anything the slow path would report.
struct Fast<'r> {
    registry: &'r Registry,
    /// The file (a map), else its `locations` (a list).
    top: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastLocation {
    id: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    pools: Vec<Obj<FastPool>>,
    #[serde(default)]
    instances: Vec<Obj<InstanceSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastPool {
    id: String,
    #[serde(default)]
    limits: Option<Limits>,
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
        match map.next_key::<std::borrow::Cow<'de, str>>()? {
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
        while let Some(Obj(location)) = seq.next_element::<Obj<FastLocation>>()? {
            let mut builder = LocationBuilder::new(self.registry);
            if let Some(name) = &location.timezone {
                builder.timezone(name).map_err(de::Error::custom)?;
            }
            for Obj(pool) in location.pools {
                builder.pool(pool.id, pool.limits).map_err(de::Error::custom)?;
            }
            for Obj(spec) in location.instances {
                builder.push(spec).map_err(de::Error::custom)?;
            }
            match world.locations.entry(location.id) {
                Entry::Occupied(_) => return Err(de::Error::custom("")),
                Entry::Vacant(slot) => {
                    let id = slot.key().clone();
                    slot.insert(builder.finish(id));
                }
            }
        }
        Ok(world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelInfo, RegistryBuilder, Source};

    struct Wa;
    impl crate::ChannelSyntax for Wa {
        fn id(&self) -> &str {
            "whatsapp"
        }
        fn code(&self) -> &str {
            "WA"
        }
        fn tag_prefix(&self) -> &str {
            "wa:"
        }
    }

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
                })
                .collect();
            let location = Location::from_specs("l", &specs, &registry).unwrap();
            let view = location.channel("whatsapp");
            let ids = |it: &mut dyn Iterator<Item = &Arc<Instance>>| it.map(|i| i.id.clone()).collect::<Vec<_>>();
            let mut naive: Vec<&InstanceSpec> = specs.iter().collect();
            naive.sort_by_key(|s| s.index);
            for index in 0..=(2 * n as u64 + 1) {
                let want = naive.iter().find(|s| s.index == Some(index)).map(|s| s.id.clone());
                assert_eq!(view.by_index(index).map(|i| i.id.clone()), want, "n={n} index={index}");
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
            assert_eq!(view.default_instance().map(|i| i.id.clone()), Some("i1".to_owned()));
        }
    }
}
