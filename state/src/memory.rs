//! The per-process store: counts in memory, sharded by location.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::{FxBuildHasher, FxHashMap, FxHasher};
use switchboard_core::capacity::{
    jiff::Timestamp, AtCapacity, Calendar, CapacityStore, ConversationKey, Counts, DeliveryUpdate, HealthList,
    HealthPolicy, HealthRecord, LimitKind, Limits, LiveState, Reservation, ReservationRequest, Scope, StatusOverride,
    StatusUpdate, StoreError, Transition, Usage, Window, WindowCounts, INBOUND_KEPT,
};

/// Shards of the counters; a power of two.
const SHARDS: usize = 64;
/// How far back from the newest window of each kind (minute, hour, day)
/// an instance or pool keeps its counts: an hour of minutes, a day of hours,
/// a week of days (and two days of contact sets). Within it, requests dated
/// in any order (threads that read the clock around a boundary, a batch with
/// `now`s) count exactly; a request dated further back than that starts a
/// fresh count in its window.
const HORIZON: [i64; 3] = [3600, 86_400, 7 * 86_400];
/// How far back contact sets are kept.
const CONTACTS_HORIZON: i64 = 2 * 86_400;
/// Conversation inserts into one shard between two prunings of its expired
/// memories (amortised; no sweeper thread).
const PRUNE_EVERY: u32 = 1024;

/// The per-process capacity store (`store: memory`): counts live in this
/// process only.
///
/// Counters are sharded by location: one reservation takes one shard's lock
/// for one hash probe per subject (the instance, keyed by location and id,
/// then its pool: pools are per location, so both are in the shard), checks
/// every limited window of both, and counts every window of both. Each
/// instance and pool keeps its windows of each kind keyed by the window's
/// start, the newest in line, and drops those older than a
/// [horizon](HORIZON) behind the newest when it opens a new one, so windows
/// expire by key with no sweeper thread and memory stays bounded by
/// the number of instances (plus, while `contacts_per_day` is set, that
/// day's contact ids). Conversation memories are pruned in passing.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    conversations: Box<[Mutex<Conversations>]>,
    /// Live state (docs/live-state.md) by location. Events are rare next to
    /// decisions, and most locations never get one: `any_live` lets every
    /// decision of a store that never received an event skip the lock.
    live: RwLock<FxHashMap<Box<str>, LocationLive>>,
    any_live: AtomicBool,
    /// Every instance's health and the deliveries of its window, by
    /// location then instance; what decisions read of it (the instances
    /// quarantined or on probation) is copied into `live`.
    health: Mutex<FxHashMap<Box<str>, LocationHealth>>,
}

/// The health of one location's instances, by instance id.
type LocationHealth = FxHashMap<Box<str>, InstanceHealth>;

/// One instance's health and its recent deliveries: (time ms, failed),
/// ordered by time, with how many of them failed (so that a delivery costs
/// the same however many the window holds).
#[derive(Default)]
struct InstanceHealth {
    record: HealthRecord,
    deliveries: std::collections::VecDeque<(i64, bool)>,
    failures: u64,
}

impl InstanceHealth {
    /// Keeps a delivery, in time order (nearly always at the back).
    fn add(&mut self, time_ms: i64, failed: bool) {
        let at = self.deliveries.partition_point(|(t, _)| *t <= time_ms);
        self.deliveries.insert(at, (time_ms, failed));
        self.failures += u64::from(failed);
    }

    /// Drops the deliveries at or before `from_ms`.
    fn prune(&mut self, from_ms: i64) {
        while let Some(&(t, failed)) = self.deliveries.front() {
            if t > from_ms {
                break;
            }
            self.deliveries.pop_front();
            self.failures -= u64::from(failed);
        }
    }

    /// The deliveries in the `window` ending at `now_ms`.
    fn counts(&self, window: Duration, now_ms: i64) -> WindowCounts {
        let from = now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let low = self.deliveries.partition_point(|(t, _)| *t <= from);
        let high = self.deliveries.partition_point(|(t, _)| *t <= now_ms);
        let failures = if low == 0 && high == self.deliveries.len() {
            self.failures
        } else {
            self.deliveries.range(low..high).filter(|(_, failed)| *failed).count() as u64
        };
        WindowCounts { deliveries: (high - low) as u64, failures }
    }
}

/// What the send path said about one location's instances, by instance id.
#[derive(Default)]
struct LocationLive {
    /// Per instance: the time of the last `instance_status` applied (a clear
    /// included: what later events are compared with) and the override.
    statuses: FxHashMap<Box<str>, (Timestamp, Option<StatusOverride>)>,
    /// The health of the instances quarantined or on probation.
    health: FxHashMap<Box<str>, HealthRecord>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("shards", &self.shards.len()).finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            conversations: (0..SHARDS).map(|_| Mutex::default()).collect(),
            live: RwLock::default(),
            any_live: AtomicBool::new(false),
            health: Mutex::default(),
        }
    }

    /// The shard of a location, by the location's [`hash_str`].
    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // The table inside uses the low bits and the top seven: take others.
        lock(&self.shards[(hash >> 32) as usize & (SHARDS - 1)])
    }

    fn conversations(&self, key: &ConversationKey<'_>) -> MutexGuard<'_, Conversations> {
        lock(&self.conversations[index((key.location, key.channel, key.contact))])
    }
}

fn index(value: impl Hash) -> usize {
    (FxBuildHasher.hash_one(value) as usize) & (SHARDS - 1)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a shard cannot leave a count half-written (each
    // write is one integer), so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The hash of an id: computed once per reservation for each of the
/// location, the instance, the pool and the contact, and used for every
/// look-up of it (the shard, the table, both contact sets).
fn hash_str(id: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(id.as_bytes());
    hasher.finish()
}

/// Whether two ids are equal, compared a word at a time in line (the
/// last word overlapping the one before): ids are short, and a call to
/// `memcmp` costs more than the comparison.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn word<const N: usize>(s: &[u8], at: usize) -> Option<[u8; N]> {
        s.get(at..at + N).and_then(|w| w.try_into().ok())
    }
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        _ => {
            (0..n / 8).all(|i| word::<8>(a, i * 8) == word::<8>(b, i * 8)) && word::<8>(a, n - 8) == word::<8>(b, n - 8)
        }
    }
}

/// Values by id, each looked up by its precomputed [`hash_str`]: one probe,
/// no rehashing of the id, and a key allocated only on insertion.
struct Named<V> {
    table: HashTable<(u64, Box<str>, V)>,
}

impl<V> Default for Named<V> {
    fn default() -> Self {
        Named { table: HashTable::new() }
    }
}

impl<V> Named<V> {
    fn get(&self, hash: u64, id: &str) -> Option<&V> {
        self.table.find(hash, |(h, name, _)| *h == hash && same(name, id)).map(|(_, _, v)| v)
    }
}

impl<V: Default> Named<V> {
    fn get_or_insert(&mut self, hash: u64, id: &str) -> &mut V {
        match self.table.entry(hash, |(h, name, _)| *h == hash && same(name, id), |(h, _, _)| *h) {
            Entry::Occupied(entry) => &mut entry.into_mut().2,
            Entry::Vacant(entry) => &mut entry.insert((hash, id.into(), V::default())).into_mut().2,
        }
    }
}

/// Values by (location, id), each looked up by the pair's [`pair_hash`]:
/// one probe for both ids, and keys allocated only on insertion.
struct Paired<V> {
    table: HashTable<(u64, Box<str>, Box<str>, V)>,
}

impl<V> Default for Paired<V> {
    fn default() -> Self {
        Paired { table: HashTable::new() }
    }
}

impl<V> Paired<V> {
    fn get(&self, hash: u64, location: &str, id: &str) -> Option<&V> {
        self.table.find(hash, |(h, l, i, _)| *h == hash && same(i, id) && same(l, location)).map(|(_, _, _, v)| v)
    }

    fn get_mut(&mut self, hash: u64, location: &str, id: &str) -> Option<&mut V> {
        self.table.find_mut(hash, |(h, l, i, _)| *h == hash && same(i, id) && same(l, location)).map(|(_, _, _, v)| v)
    }
}

impl<V: Default> Paired<V> {
    #[inline]
    fn get_or_insert(&mut self, hash: u64, location: &str, id: &str) -> &mut V {
        let eq = |(h, l, i, _): &(u64, Box<str>, Box<str>, V)| *h == hash && same(i, id) && same(l, location);
        match self.table.entry(hash, eq, |(h, _, _, _)| *h) {
            Entry::Occupied(entry) => &mut entry.into_mut().3,
            Entry::Vacant(entry) => &mut entry.insert((hash, location.into(), id.into(), V::default())).into_mut().3,
        }
    }
}

/// The hash of a (location, id) pair from the ids' [`hash_str`]es: a
/// folded multiply, so the table's bits depend on both.
#[inline]
fn pair_hash(location: u64, id: u64) -> u64 {
    let full = u128::from(location) * u128::from(id ^ 0x9e37_79b9_7f4a_7c15);
    (full as u64) ^ ((full >> 64) as u64)
}

/// The counters of the locations whose hash picks this shard: instances
/// and pools, each keyed by (location, id).
#[derive(Default)]
struct Shard {
    instances: Paired<Counted>,
    pools: Paired<Subject>,
}

/// An instance's counts, and its location's calendar (window starts
/// without timezone look-ups; each instance keeps its own, so one probe
/// finds both).
#[derive(Default)]
struct Counted {
    subject: Subject,
    calendar: Option<Calendar>,
}

/// The window starts of `request` (minute, hour, day), from the calendar
/// when it is of the request's timezone (a reload may change it).
#[inline]
fn starts_in(calendar: &mut Option<Calendar>, request: &ReservationRequest<'_>) -> [i64; 3] {
    match calendar {
        Some(calendar) if calendar.is_of(request.timezone) => calendar.starts(request.now),
        _ => calendar.insert(Calendar::new(request.timezone.clone())).starts(request.now),
    }
}

/// The recent windows of one instance or pool.
#[derive(Default)]
struct Subject {
    windows: [Recent<u64>; 3],
    contacts: Recent<ContactDay>,
}

#[derive(Default)]
struct ContactDay {
    seen: Named<()>,
    /// Distinct contacts plus requests without a contact.
    count: u64,
}

/// Windows by start second, within a horizon of the newest: the newest
/// in line (nearly every request is in it), older ones beside.
struct Recent<T> {
    newest: Option<(i64, T)>,
    older: Vec<(i64, T)>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent { newest: None, older: Vec::new() }
    }
}

impl<T: Default> Recent<T> {
    #[inline]
    fn get(&self, start: i64) -> Option<&T> {
        match &self.newest {
            Some((s, value)) if *s == start => Some(value),
            _ => self.older.iter().rev().find(|(s, _)| *s == start).map(|(_, v)| v),
        }
    }

    #[inline]
    fn get_mut(&mut self, start: i64, horizon: i64) -> &mut T {
        if !matches!(self.newest, Some((s, _)) if s == start) {
            if let Some(position) = self.open(start, horizon) {
                return &mut self.older[position].1;
            }
        }
        // (Always `Some` of `start` here.)
        &mut self.newest.get_or_insert_with(|| (start, T::default())).1
    }

    /// Makes room for the window starting at `start` when it is not the
    /// newest: an older one kept (its position in `older`), else a new one
    /// (the newest, `None`, or in `older` if older than the newest),
    /// dropping those older than `horizon` behind the newest.
    #[cold]
    fn open(&mut self, start: i64, horizon: i64) -> Option<usize> {
        if let Some(position) = self.older.iter().rposition(|(s, _)| *s == start) {
            return Some(position);
        }
        let newest = self.newest.as_ref().map_or(start, |(s, _)| (*s).max(start));
        let floor = newest.saturating_sub(horizon);
        if self.newest.as_ref().is_none_or(|(s, _)| *s < start) {
            self.older.extend(self.newest.take());
            self.older.retain(|(s, _)| *s >= floor);
            self.newest = Some((start, T::default()));
            return None;
        }
        self.older.retain(|(s, _)| *s >= floor);
        self.older.push((start, T::default()));
        Some(self.older.len() - 1)
    }
}

impl Subject {
    /// The check of a reservation: `Ok` with whether `contact` was already
    /// counted today when one more decision fits every limit of `limits`
    /// in the windows starting at `starts`, else the first limit reached,
    /// in the order of [`Limits::first_reached`] (which [`Subject::counts`]
    /// feeds for a usage). Windows without a limit are not read, nor the
    /// contact set without `contacts_per_day`.
    #[inline(always)]
    fn check(
        &self,
        starts: &[i64; 3],
        limits: &Limits,
        contact: Option<(u64, &str)>,
    ) -> Result<bool, (LimitKind, u64, u32)> {
        for (i, window) in Window::ALL.into_iter().enumerate() {
            if let Some(limit) = limits.get(window) {
                let count = self.windows[i].get(starts[i]).copied().unwrap_or(0);
                if count >= u64::from(limit) {
                    return Err((LimitKind::from(window), count, limit));
                }
            }
        }
        let Some(limit) = limits.contacts_per_day else { return Ok(false) };
        let day = self.contacts.get(starts[2]);
        let seen = match (day, contact) {
            (Some(day), Some((hash, contact))) => day.seen.get(hash, contact).is_some(),
            _ => false,
        };
        let count = day.map_or(0, |d| d.count);
        if !seen && count >= u64::from(limit) {
            return Err((LimitKind::ContactsPerDay, count, limit));
        }
        Ok(seen)
    }

    /// The counts in the windows starting at `starts` (minute, hour, day),
    /// and whether `contact` was already counted today.
    #[inline]
    fn counts(&self, starts: &[i64; 3], contact: Option<(u64, &str)>) -> (Counts, bool) {
        let count = |i: usize| self.windows[i].get(starts[i]).copied().unwrap_or(0);
        let day = self.contacts.get(starts[2]);
        let seen = match (day, contact) {
            (Some(day), Some((hash, contact))) => day.seen.get(hash, contact).is_some(),
            _ => false,
        };
        let counts = Counts { minute: count(0), hour: count(1), day: count(2), contacts: day.map_or(0, |d| d.count) };
        (counts, seen)
    }

    /// Counts one decision in every window (those without a limit too: a
    /// usage shows them, `least_used` reads the day, and a limit added by
    /// a reload applies to the whole window) and, with `contacts_per_day`,
    /// the contact unless `seen`.
    #[inline(always)]
    fn count(&mut self, starts: &[i64; 3], limits: &Limits, contact: Option<(u64, &str)>, seen: bool) {
        for i in 0..3 {
            *self.windows[i].get_mut(starts[i], HORIZON[i]) += 1;
        }
        if limits.contacts_per_day.is_some() && !seen {
            let day = self.contacts.get_mut(starts[2], CONTACTS_HORIZON);
            day.count += 1;
            if let Some((hash, contact)) = contact {
                day.seen.get_or_insert(hash, contact);
            }
        }
    }
}

fn starts(request: &ReservationRequest<'_>) -> [i64; 3] {
    Window::ALL.map(|window| window.span(request.now, request.timezone).start.as_second())
}

impl CapacityStore for MemoryStore {
    fn reserve(&self, request: &ReservationRequest<'_>) -> Result<Reservation, StoreError> {
        let location_hash = hash_str(request.location);
        let instance_hash = pair_hash(location_hash, hash_str(request.instance));
        let pool = request.pool.map(|pool| (pool, pair_hash(location_hash, hash_str(pool.id))));
        // The contact matters only to a `contacts_per_day` limit.
        let per_contact = |limits: &Limits| limits.contacts_per_day.is_some();
        let contact = request
            .contact
            .filter(|_| per_contact(&request.limits) || pool.is_some_and(|(pool, _)| per_contact(&pool.limits)))
            .map(|c| (hash_str(c), c));
        let mut shard = self.shard(location_hash);
        let Shard { instances, pools } = &mut *shard;
        let Counted { subject: instance, calendar } =
            instances.get_or_insert(instance_hash, request.location, request.instance);
        let starts = starts_in(calendar, request);
        let refused =
            |scope, (kind, count, limit)| Ok(Reservation::AtCapacity(AtCapacity { scope, kind, count, limit }));
        let instance_seen = match instance.check(&starts, &request.limits, contact) {
            Ok(seen) => seen,
            Err(reached) => return refused(Scope::Instance, reached),
        };
        let pool = match pool {
            Some((pool, hash)) => {
                let subject = pools.get_or_insert(hash, request.location, pool.id);
                match subject.check(&starts, &pool.limits, contact) {
                    Ok(seen) => Some((subject, pool.limits, seen)),
                    Err(reached) => return refused(Scope::Pool, reached),
                }
            }
            None => None,
        };
        // Every window had room: count them all, still under the lock.
        if let Some((subject, limits, seen)) = pool {
            subject.count(&starts, &limits, contact, seen);
        }
        instance.count(&starts, &request.limits, contact, instance_seen);
        drop(shard);
        if let (Some(remember), Some(contact)) = (request.remember, request.contact) {
            let key = ConversationKey { location: request.location, channel: remember.channel, contact };
            self.remember(&key, request.instance, remember.ttl, request.now)?;
        }
        Ok(Reservation::Reserved)
    }

    fn usage(&self, request: &ReservationRequest<'_>) -> Result<Usage, StoreError> {
        let location_hash = hash_str(request.location);
        let contact = request.contact.map(|c| (hash_str(c), c));
        let instance_hash = pair_hash(location_hash, hash_str(request.instance));
        let mut shard = self.shard(location_hash);
        let Shard { instances, pools } = &mut *shard;
        let mut instance = instances.get_mut(instance_hash, request.location, request.instance);
        let starts = match instance.as_deref_mut() {
            Some(counted) => starts_in(&mut counted.calendar, request),
            None => starts(request),
        };
        let read = |subject: Option<&Subject>| subject.map(|s| s.counts(&starts, contact)).unwrap_or_default();
        let instance = read(instance.map(|counted| &counted.subject));
        let pool = request
            .pool
            .map(|pool| read(pools.get(pair_hash(location_hash, hash_str(pool.id)), request.location, pool.id)));
        Ok(Usage::from_parts(instance, pool))
    }

    fn remember(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let expires = expiry_ms(now, ttl);
        let mut shard = self.conversations(key);
        shard.inserts += 1;
        if shard.inserts >= PRUNE_EVERY {
            shard.inserts = 0;
            let now_ms = now.as_millisecond();
            shard.memories.retain(|_, (_, expires)| *expires > now_ms);
            let kept = i64::try_from(INBOUND_KEPT.as_millis()).unwrap_or(i64::MAX);
            shard.inbound.retain(|_, (_, at)| at.saturating_add(kept) > now_ms);
        }
        shard.memories.insert(conversation_key(key), (instance.into(), expires));
        Ok(())
    }

    fn recall(&self, key: &ConversationKey<'_>, now: Timestamp) -> Result<Option<String>, StoreError> {
        let id = conversation_key(key);
        let mut shard = self.conversations(key);
        match shard.memories.get(&id) {
            Some((instance, expires)) if *expires > now.as_millisecond() => Ok(Some(instance.to_string())),
            Some(_) => {
                shard.memories.remove(&id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn forget(&self, key: &ConversationKey<'_>) -> Result<bool, StoreError> {
        Ok(self.conversations(key).memories.remove(&conversation_key(key)).is_some())
    }

    #[inline]
    fn has_live_state(&self, location: &str) -> bool {
        self.any_live.load(Ordering::Acquire)
            && self.live.read().unwrap_or_else(|p| p.into_inner()).contains_key(location)
    }

    fn live_state(&self, location: &str) -> Result<LiveState, StoreError> {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        let Some(state) = live.get(location) else { return Ok(LiveState::default()) };
        let mut overrides: Vec<(String, StatusOverride)> =
            state.statuses.iter().filter_map(|(id, (_, o))| o.as_ref().map(|o| (id.to_string(), o.clone()))).collect();
        overrides.sort_by(|a, b| a.0.cmp(&b.0));
        let mut health: Vec<(String, HealthRecord)> = state.health.iter().map(|(id, h)| (id.to_string(), *h)).collect();
        health.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(LiveState { overrides, health })
    }

    fn record_inbound(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        time: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let id = conversation_key(key);
        let time_ms = time.as_millisecond();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut shard = self.conversations(key);
        match shard.inbound.get(&id) {
            Some((_, last)) if *last > time_ms => {}
            _ => {
                shard.inbound.insert(id.clone(), (instance.into(), time_ms));
            }
        }
        let newer = shard
            .memories
            .get(&id)
            .is_some_and(|(_, expires)| *expires > time_ms && expires.saturating_sub(ttl_ms) > time_ms);
        if newer {
            return Ok(false);
        }
        shard.memories.insert(id, (instance.into(), expiry_ms(time, ttl)));
        Ok(true)
    }

    fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<(String, Timestamp)>, StoreError> {
        let shard = self.conversations(key);
        let Some((instance, ms)) = shard.inbound.get(&conversation_key(key)) else { return Ok(None) };
        Ok(Timestamp::from_millisecond(*ms).ok().map(|t| (instance.to_string(), t)))
    }

    fn live_locations(&self) -> Result<Vec<String>, StoreError> {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        Ok(live.keys().map(|l| l.to_string()).collect())
    }

    fn apply_status(&self, update: &StatusUpdate<'_>) -> Result<bool, StoreError> {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        let location = live.entry(update.location.into()).or_default();
        let entry = location.statuses.entry(update.instance.into()).or_insert((update.time, None));
        if update.time < entry.0 {
            return Ok(false);
        }
        *entry = (
            update.time,
            update.set.map(|(connected, reason, until)| StatusOverride {
                connected,
                reason: reason.map(str::to_owned),
                time: update.time,
                until,
            }),
        );
        self.any_live.store(true, Ordering::Release);
        Ok(true)
    }

    fn record_delivery(&self, update: &DeliveryUpdate<'_>, policy: &HealthPolicy) -> Result<Transition, StoreError> {
        let time_ms = update.time.as_millisecond();
        let transition = {
            let mut health = lock(&self.health);
            let instance = health.entry(update.location.into()).or_default().entry(update.instance.into()).or_default();
            // Deliveries older than the window of this one are of no use to
            // any later one.
            let from = time_ms.saturating_sub(i64::try_from(policy.window.as_millis()).unwrap_or(i64::MAX));
            instance.prune(from);
            instance.add(time_ms, update.failed);
            let counts = instance.counts(policy.window, time_ms);
            let transition = instance.record.deliver(policy, update.time, update.failed, counts);
            instance.record = transition.record;
            transition
        };
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        if transition.record.in_cycle() {
            live.entry(update.location.into()).or_default().health.insert(update.instance.into(), transition.record);
            self.any_live.store(true, Ordering::Release);
        } else if let Some(location) = live.get_mut(update.location) {
            location.health.remove(update.instance);
        }
        Ok(transition)
    }

    fn health(&self, location: &str, window: Duration, now: Timestamp) -> Result<HealthList, StoreError> {
        let health = lock(&self.health);
        let Some(instances) = health.get(location) else { return Ok(Vec::new()) };
        let mut out: HealthList = instances
            .iter()
            .map(|(id, h)| (id.to_string(), h.record, h.counts(window, now.as_millisecond())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// `now + ttl` in milliseconds, saturating.
pub(crate) fn expiry_ms(now: Timestamp, ttl: Duration) -> i64 {
    now.as_millisecond().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

fn conversation_key(key: &ConversationKey<'_>) -> Box<str> {
    // NUL cannot appear in a YAML/JSON id without escaping, and the lengths
    // make the join unambiguous anyway.
    format!("{}\0{}\0{}\0{}", key.location.len(), key.location, key.channel, key.contact).into_boxed_str()
}

#[derive(Default)]
struct Conversations {
    memories: FxHashMap<Box<str>, (Box<str>, i64)>,
    /// The last inbound message per (location, channel, contact): the
    /// instance written to and when (ms).
    inbound: FxHashMap<Box<str>, (Box<str>, i64)>,
    inserts: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_window_of_deliveries_counts_in_time_order_whatever_the_arrival() {
        let mut health = super::InstanceHealth::default();
        for (t, failed) in [(10, true), (30, false), (20, true), (40, true)] {
            health.add(t, failed);
        }
        let window = std::time::Duration::from_millis(25);
        assert_eq!(health.counts(window, 40), super::WindowCounts { deliveries: 3, failures: 2 }, "(15, 40]");
        assert_eq!(health.counts(window, 30), super::WindowCounts { deliveries: 3, failures: 2 }, "(5, 30]");
        assert_eq!(health.counts(window, 25), super::WindowCounts { deliveries: 2, failures: 2 }, "(0, 25]");
        health.prune(20);
        assert_eq!(health.counts(window, 40), super::WindowCounts { deliveries: 2, failures: 1 });
        assert_eq!(health.failures, 1);
    }

    use switchboard_core::capacity::StatusUpdate;

    #[test]
    fn live_state_is_kept_per_location_and_stale_updates_change_nothing() {
        let store = MemoryStore::new();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(!store.has_live_state("shop"), "no event yet");
        let down = StatusUpdate {
            location: "shop",
            instance: "wa-1",
            time: t("2026-12-07T15:00:00Z"),
            set: Some((false, Some("logged out"), Some(t("2026-12-07T15:30:00Z")))),
        };
        assert!(store.apply_status(&down).unwrap());
        assert!(store.has_live_state("shop") && !store.has_live_state("agency"));
        let state = store.live_state("shop").unwrap();
        let o = state.override_of("wa-1", t("2026-12-07T15:10:00Z")).unwrap();
        assert_eq!((o.connected, o.reason.as_deref()), (false, Some("logged out")));
        assert!(state.override_of("wa-1", t("2026-12-07T15:30:00Z")).is_none(), "lapsed");
        let older = StatusUpdate { time: t("2026-12-07T14:00:00Z"), set: Some((true, None, None)), ..down };
        assert!(!store.apply_status(&older).unwrap(), "stale");
        let clear = StatusUpdate { time: t("2026-12-07T15:05:00Z"), set: None, ..down };
        assert!(store.apply_status(&clear).unwrap());
        assert!(store.live_state("shop").unwrap().overrides.is_empty());
        assert!(!store.apply_status(&StatusUpdate { time: t("2026-12-07T15:01:00Z"), ..down }).unwrap());
    }

    use super::*;
    use switchboard_core::capacity::{timezone, PoolRef};

    #[test]
    fn an_instance_moved_to_another_pool_counts_there() {
        let store = MemoryStore::new();
        let utc = timezone("UTC").unwrap();
        let now: Timestamp = "2026-11-25T14:00:00Z".parse().unwrap();
        let two = Limits { per_day: Some(2), ..Limits::NONE };
        let request = |instance, pool| ReservationRequest {
            pool: Some(PoolRef { id: pool, limits: two }),
            ..ReservationRequest::new("shop", &utc, instance, now)
        };
        let day = |instance, pool| store.usage(&request(instance, pool)).unwrap().pool.unwrap().day;
        assert!(store.reserve(&request("wa-1", "a")).unwrap().is_reserved());
        // A reload moves wa-1 to pool b: its next decision counts in b only.
        assert!(store.reserve(&request("wa-1", "b")).unwrap().is_reserved());
        assert_eq!((day("wa-1", "a"), day("wa-1", "b")), (1, 1));
        // Pool a is shared: wa-2 fills it, and wa-1, moved back, finds it full.
        assert!(store.reserve(&request("wa-2", "a")).unwrap().is_reserved());
        let full = store.reserve(&request("wa-1", "a")).unwrap();
        assert!(matches!(full, Reservation::AtCapacity(AtCapacity { scope: Scope::Pool, count: 2, .. })), "{full:?}");
        assert!(store.reserve(&request("wa-1", "b")).unwrap().is_reserved());
        assert!(!store.reserve(&request("wa-2", "b")).unwrap().is_reserved());
        assert_eq!((day("wa-1", "a"), day("wa-2", "b")), (2, 2));
        // The same pool id in another location is another pool.
        let elsewhere = ReservationRequest { location: "mall", ..request("wa-1", "a") };
        assert!(store.reserve(&elsewhere).unwrap().is_reserved());
    }

    #[test]
    fn same_is_string_equality() {
        let ids =
            ["", "a", "b", "ab", "wa-1", "wa-2", "wa-10", "12345678", "12345679", "123456789", "abcdefghijklmnopq"];
        for a in ids {
            for b in ids {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
        // The padding of the last word never makes a shorter id equal.
        assert!(!same("a\0", "\0a") && !same("\0\0", "\0"));
    }
}
