//! The world: locations and their instances, validated once and indexed by
//! index, phone digits and user so that selection never scans a location.
//!
//! A world may hold a million instances, so it is kept compact: each
//! instance's texts share one allocation ([`Instance`]), the channel ids are
//! the registry's own (shared, and found by address on every decision), a
//! location's per-channel orders live in one vector of
//! positions, and only large channels get hash indexes. Every reader of a
//! world file (in `switchboard-files`) builds its locations with one
//! [`LocationBuilder`], an instance at a time, so that they check alike.

use std::borrow::{Borrow, Cow};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::capacity::jiff::tz::TimeZone;
use crate::capacity::Limits;
use crate::recipient::Country;
use crate::{Instance, InstanceSpec, Registry, Request};

mod builder;

pub use builder::{InstanceFields, LocationBuilder};

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
    #[inline]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pool's limits, counted over every instance of the pool.
    #[inline]
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
    #[inline]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// All instances, in file order.
    #[inline]
    pub fn instances(&self) -> &[Arc<Instance>] {
        &self.instances
    }

    /// The location's timezone: its calendar windows are counted there
    /// (UTC unless the world file names one).
    #[inline]
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
    #[inline]
    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.id == id)
    }

    /// Whether any instance or pool of the location has a limit.
    pub fn has_limits(&self) -> bool {
        self.pools.iter().any(|p| !p.limits.is_unlimited()) || self.instances.iter().any(|i| i.has_own_limits())
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
            builder.push(InstanceFields::of(spec)).map_err(|e| format!("instances[{i}]: {e}"))?;
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
    pub fn insert(&mut self, location: Location) -> bool {
        let limits = location.has_limits();
        // A set keeps the location it has: the new one is dropped.
        let added = self.locations.insert(ById(location));
        self.limits |= added && limits;
        added
    }

    /// Room for `n` more locations.
    pub fn reserve(&mut self, n: usize) {
        self.locations.reserve(n);
    }

    /// Frees the room reserved and not used.
    pub fn shrink_to_fit(&mut self) {
        self.locations.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{instance, Wa};
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
                    warmup: None,
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

    fn registry() -> Registry {
        RegistryBuilder::new().channel(ChannelInfo::new(&Wa, Source::Builtin("t".into()))).build().unwrap()
    }

    #[test]
    fn a_channel_is_found_by_the_registry_the_world_was_built_with_and_by_any_other() {
        let (built_with, other) = (registry(), registry());
        let spec = |id: &str, channel: &str| instance(id, channel, "+1 555 0001");
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
}
