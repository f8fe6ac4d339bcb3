//! The store suite: every function takes `&dyn CapacityStore`, so the memory
//! and the Redis store answer the same questions. Time is an input: windows
//! roll over by `now`, never by sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_core::capacity::jiff::Timestamp;
use switchboard_core::capacity::{timezone, AtCapacity, Counts, LimitKind, Limits, PoolRef, Remember, Scope};
use switchboard_core::{CapacityStore, ConversationKey, Reservation, ReservationRequest};

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_second(t.as_second() + seconds).unwrap()
}

fn refused(scope: Scope, kind: LimitKind, count: u64, limit: u32) -> Reservation {
    Reservation::AtCapacity(AtCapacity { scope, kind, count, limit })
}

const T: &str = "2026-11-25T14:20:00Z";

pub fn per_minute_limit_refuses_until_the_next_minute(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let limits = Limits { per_minute: Some(3), ..Limits::NONE };
    let at = |t| ReservationRequest { limits, ..ReservationRequest::new("shop", &utc, "wa-1", t) };
    for second in [0, 10, 20] {
        assert_eq!(store.reserve(&at(plus(ts(T), second))).unwrap(), Reservation::Reserved);
    }
    let full = refused(Scope::Instance, LimitKind::PerMinute, 3, 3);
    assert_eq!(store.reserve(&at(plus(ts(T), 59))).unwrap(), full);
    assert_eq!(store.reserve(&at(plus(ts(T), 60))).unwrap(), Reservation::Reserved);
    assert_eq!(store.usage(&at(plus(ts(T), 60))).unwrap().instance, Counts { minute: 1, hour: 4, day: 4, contacts: 0 });
}

pub fn per_hour_limit_refuses_until_the_next_hour(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let limits = Limits { per_minute: Some(10), per_hour: Some(2), ..Limits::NONE };
    let at = |t| ReservationRequest { limits, ..ReservationRequest::new("shop", &utc, "wa-1", t) };
    assert!(store.reserve(&at(ts("2026-11-25T14:00:00Z"))).unwrap().is_reserved());
    assert!(store.reserve(&at(ts("2026-11-25T14:30:00Z"))).unwrap().is_reserved());
    let full = refused(Scope::Instance, LimitKind::PerHour, 2, 2);
    assert_eq!(store.reserve(&at(ts("2026-11-25T14:59:59Z"))).unwrap(), full);
    assert!(store.reserve(&at(ts("2026-11-25T15:00:00Z"))).unwrap().is_reserved());
}

pub fn per_day_limit_follows_the_local_calendar_day(store: &dyn CapacityStore) {
    let ny = timezone("America/New_York").unwrap();
    let limits = Limits { per_day: Some(2), ..Limits::NONE };
    let at = |t| ReservationRequest { limits, ..ReservationRequest::new("shop", &ny, "wa-1", t) };
    // 23:30 and 23:50 on the 24th in New York (04:30Z and 04:50Z the 25th).
    assert!(store.reserve(&at(ts("2026-11-25T04:30:00Z"))).unwrap().is_reserved());
    assert!(store.reserve(&at(ts("2026-11-25T04:50:00Z"))).unwrap().is_reserved());
    assert_eq!(
        store.reserve(&at(ts("2026-11-25T04:59:59Z"))).unwrap(),
        refused(Scope::Instance, LimitKind::PerDay, 2, 2)
    );
    // Midnight in New York, not in UTC, opens the next day.
    assert!(store.reserve(&at(ts("2026-11-25T05:00:00Z"))).unwrap().is_reserved());
    // The fall-back day is one window of 25 hours.
    let day = |h: i64| plus(ts("2026-11-01T04:00:00Z"), h * 3600);
    assert!(store.reserve(&at(day(0))).unwrap().is_reserved());
    assert!(store.reserve(&at(day(24))).unwrap().is_reserved());
    assert!(!store.reserve(&at(plus(day(25), -1))).unwrap().is_reserved());
    assert!(store.reserve(&at(day(25))).unwrap().is_reserved());
}

pub fn pool_limits_are_shared_by_its_instances(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let pool = Some(PoolRef { id: "brand-a", limits: Limits { per_day: Some(3), ..Limits::NONE } });
    let of = |instance| ReservationRequest { pool, ..ReservationRequest::new("shop", &utc, instance, ts(T)) };
    assert!(store.reserve(&of("wa-1")).unwrap().is_reserved());
    assert!(store.reserve(&of("wa-2")).unwrap().is_reserved());
    assert!(store.reserve(&of("wa-1")).unwrap().is_reserved());
    let full = refused(Scope::Pool, LimitKind::PerDay, 3, 3);
    assert_eq!(store.reserve(&of("wa-2")).unwrap(), full);
    assert_eq!(store.reserve(&of("wa-1")).unwrap(), full);
    let usage = store.usage(&of("wa-1")).unwrap();
    assert_eq!((usage.instance.day, usage.pool.map(|p| p.day)), (2, Some(3)));
    assert_eq!(usage.verdict(&of("wa-1")), full);
    // An instance outside the pool is not affected.
    assert!(store.reserve(&ReservationRequest::new("shop", &utc, "wa-3", ts(T))).unwrap().is_reserved());
}

pub fn contacts_per_day_counts_distinct_contacts(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let limits = Limits { contacts_per_day: Some(2), ..Limits::NONE };
    let to = |contact, t| ReservationRequest { limits, contact, ..ReservationRequest::new("shop", &utc, "wa-1", t) };
    assert!(store.reserve(&to(Some("c-1"), ts(T))).unwrap().is_reserved());
    assert!(store.reserve(&to(Some("c-1"), ts(T))).unwrap().is_reserved(), "a known contact does not count again");
    assert!(store.reserve(&to(Some("c-2"), ts(T))).unwrap().is_reserved());
    let full = refused(Scope::Instance, LimitKind::ContactsPerDay, 2, 2);
    assert_eq!(store.reserve(&to(Some("c-3"), ts(T))).unwrap(), full, "a new contact is refused");
    assert_eq!(store.reserve(&to(None, ts(T))).unwrap(), full, "no contact counts as a new one");
    assert!(store.reserve(&to(Some("c-1"), ts(T))).unwrap().is_reserved(), "a contact of today still goes through");
    assert!(store.reserve(&to(Some("c-2"), ts(T))).unwrap().is_reserved());
    let usage = store.usage(&to(Some("c-2"), ts(T))).unwrap();
    assert_eq!((usage.instance.contacts, usage.instance.day, usage.contact_seen), (2, 5, true));
    assert!(!store.usage(&to(Some("c-3"), ts(T))).unwrap().contact_seen);
    // The next day starts afresh.
    assert!(store.reserve(&to(Some("c-3"), ts("2026-11-26T00:00:00Z"))).unwrap().is_reserved());

    // A pool's contacts_per_day counts the contacts of all its instances.
    let pool = Some(PoolRef { id: "portfolio", limits: Limits { contacts_per_day: Some(1), ..Limits::NONE } });
    let via = |instance, contact| ReservationRequest {
        pool,
        contact: Some(contact),
        ..ReservationRequest::new("shop", &utc, instance, ts(T))
    };
    assert!(store.reserve(&via("wa-5", "c-9")).unwrap().is_reserved());
    assert!(store.reserve(&via("wa-6", "c-9")).unwrap().is_reserved(), "the pool has seen c-9 today");
    assert_eq!(store.reserve(&via("wa-6", "c-8")).unwrap(), refused(Scope::Pool, LimitKind::ContactsPerDay, 1, 1));
}

pub fn requests_without_a_contact_count_as_new_contacts(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let limits = Limits { contacts_per_day: Some(2), ..Limits::NONE };
    let anonymous = ReservationRequest { limits, ..ReservationRequest::new("shop", &utc, "wa-1", ts(T)) };
    assert!(store.reserve(&anonymous).unwrap().is_reserved());
    assert!(store.reserve(&anonymous).unwrap().is_reserved());
    assert_eq!(store.reserve(&anonymous).unwrap(), refused(Scope::Instance, LimitKind::ContactsPerDay, 2, 2));
    assert_eq!(store.usage(&anonymous).unwrap().instance.contacts, 2);
}

pub fn a_refused_reservation_changes_nothing(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let pool =
        Some(PoolRef { id: "brand-a", limits: Limits { per_day: Some(1), contacts_per_day: Some(5), ..Limits::NONE } });
    let limits = Limits { per_minute: Some(5), contacts_per_day: Some(5), ..Limits::NONE };
    let of = |instance, contact| ReservationRequest {
        limits,
        pool,
        contact: Some(contact),
        remember: Some(Remember { channel: "whatsapp", ttl: Duration::from_secs(3600) }),
        ..ReservationRequest::new("shop", &utc, instance, ts(T))
    };
    assert!(store.reserve(&of("wa-1", "c-1")).unwrap().is_reserved());
    let before = store.usage(&of("wa-2", "c-2")).unwrap();
    // The pool is full: wa-2's own windows had room, and still count nothing.
    assert_eq!(store.reserve(&of("wa-2", "c-2")).unwrap(), refused(Scope::Pool, LimitKind::PerDay, 1, 1));
    let after = store.usage(&of("wa-2", "c-2")).unwrap();
    assert_eq!(before, after);
    assert_eq!(after.instance, Counts::default());
    assert_eq!(after.pool, Some(Counts { minute: 1, hour: 1, day: 1, contacts: 1 }));
    assert!(!after.pool_contact_seen, "c-2 was not added to the pool's contacts");
    let key = ConversationKey { location: "shop", channel: "whatsapp", contact: "c-2" };
    assert_eq!(store.recall(&key, ts(T)).unwrap(), None, "a refused reservation remembers nothing");

    // The instance's own limit refuses before the pool is touched.
    let own = ReservationRequest { limits: Limits { per_minute: Some(1), ..limits }, pool: None, ..of("wa-1", "c-1") };
    assert_eq!(store.reserve(&own).unwrap(), refused(Scope::Instance, LimitKind::PerMinute, 1, 1));
    assert_eq!(store.usage(&of("wa-1", "c-1")).unwrap().pool, Some(Counts { minute: 1, hour: 1, day: 1, contacts: 1 }));
}

pub fn usage_reads_without_counting(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let request = ReservationRequest {
        limits: Limits { per_minute: Some(2), ..Limits::NONE },
        ..ReservationRequest::new("shop", &utc, "wa-1", ts(T))
    };
    assert_eq!(store.usage(&request).unwrap().instance, Counts::default());
    for _ in 0..5 {
        assert_eq!(store.usage(&request).unwrap().verdict(&request), Reservation::Reserved);
    }
    assert!(store.reserve(&request).unwrap().is_reserved());
    assert!(store.reserve(&request).unwrap().is_reserved());
    let usage = store.usage(&request).unwrap();
    assert_eq!(usage.instance.minute, 2);
    assert_eq!(usage.verdict(&request), store.reserve(&request).unwrap());
}

pub fn locations_and_instances_count_apart(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let limits = Limits { per_day: Some(1), ..Limits::NONE };
    let of =
        |location, instance| ReservationRequest { limits, ..ReservationRequest::new(location, &utc, instance, ts(T)) };
    for (location, instance) in [("shop", "wa-1"), ("shop", "wa-2"), ("other", "wa-1"), ("sh", "op:wa-1")] {
        assert!(store.reserve(&of(location, instance)).unwrap().is_reserved(), "{location}/{instance}");
    }
    assert!(!store.reserve(&of("shop", "wa-1")).unwrap().is_reserved());
}

pub fn instances_without_limits_are_still_counted(store: &dyn CapacityStore) {
    // least_used reads the day's counts of instances with no limits.
    let utc = timezone("UTC").unwrap();
    let request = ReservationRequest::new("shop", &utc, "wa-1", ts(T));
    for _ in 0..4 {
        assert!(store.reserve(&request).unwrap().is_reserved());
    }
    assert_eq!(store.usage(&request).unwrap().instance, Counts { minute: 4, hour: 4, day: 4, contacts: 0 });
}

pub fn conversation_remember_recall_forget_and_expiry(store: &dyn CapacityStore) {
    let key = ConversationKey { location: "shop", channel: "whatsapp", contact: "c-1" };
    let hour = Duration::from_secs(3600);
    assert_eq!(store.recall(&key, ts(T)).unwrap(), None);
    store.remember(&key, "wa-1", hour, ts(T)).unwrap();
    assert_eq!(store.recall(&key, plus(ts(T), 3599)).unwrap().as_deref(), Some("wa-1"));
    assert_eq!(store.recall(&key, plus(ts(T), 3600)).unwrap(), None, "expired by `now`");
    // Other channels, locations and contacts are other memories.
    for other in [
        ConversationKey { channel: "sms", ..key },
        ConversationKey { location: "other", ..key },
        ConversationKey { contact: "c-2", ..key },
    ] {
        assert_eq!(store.recall(&other, ts(T)).unwrap(), None);
    }
    // Remembering again moves the memory and renews its TTL.
    store.remember(&key, "wa-2", hour, plus(ts(T), 1800)).unwrap();
    assert_eq!(store.recall(&key, plus(ts(T), 5000)).unwrap().as_deref(), Some("wa-2"));
    assert!(store.forget(&key).unwrap());
    assert_eq!(store.recall(&key, ts(T)).unwrap(), None);
    assert!(!store.forget(&key).unwrap());
}

pub fn a_reservation_remembers_the_conversation(store: &dyn CapacityStore) {
    let utc = timezone("UTC").unwrap();
    let remember = Some(Remember { channel: "whatsapp", ttl: Duration::from_secs(7 * 86_400) });
    let request =
        ReservationRequest { contact: Some("c-1"), remember, ..ReservationRequest::new("shop", &utc, "wa-3", ts(T)) };
    assert!(store.reserve(&request).unwrap().is_reserved());
    let key = ConversationKey { location: "shop", channel: "whatsapp", contact: "c-1" };
    assert_eq!(store.recall(&key, plus(ts(T), 86_400)).unwrap().as_deref(), Some("wa-3"));
    assert_eq!(store.recall(&key, plus(ts(T), 7 * 86_400)).unwrap(), None);
    // Without a contact there is nothing to remember.
    let anonymous = ReservationRequest { contact: None, ..request };
    assert!(store.reserve(&anonymous).unwrap().is_reserved());
}

/// `threads` × `per_thread` reservations spread over ten minutes against
/// instances `a` and `b` (`minute_limit` each, pool `p` of `pool_day`) and
/// `c` (`contacts_limit` new contacts a day among `contacts` ids): every
/// count is exact and no limit is exceeded.
pub fn concurrent_reservations_are_exact(
    store: &dyn CapacityStore,
    threads: u64,
    per_thread: u64,
    minute_limit: u32,
    pool_day: u32,
    contacts_limit: u32,
    contacts: u64,
) {
    let utc = timezone("UTC").unwrap();
    let base = ts("2026-11-25T14:00:00Z");
    let pool = Some(PoolRef { id: "p", limits: Limits { per_day: Some(pool_day), ..Limits::NONE } });
    let windows = Limits { per_minute: Some(minute_limit), ..Limits::NONE };
    let reserved = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let contact_ids: Vec<String> = (0..contacts).map(|i| format!("contact-{i}")).collect();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (utc, reserved, contact_ids) = (&utc, &reserved, &contact_ids);
            scope.spawn(move || {
                for j in 0..per_thread {
                    let now = plus(base, ((j / 3) % 10) as i64 * 60);
                    let which = ((j + thread) % 3) as usize;
                    let request = match which {
                        0 | 1 => ReservationRequest {
                            limits: windows,
                            pool,
                            ..ReservationRequest::new("l", utc, ["a", "b"][which], now)
                        },
                        _ => ReservationRequest {
                            limits: Limits { contacts_per_day: Some(contacts_limit), ..Limits::NONE },
                            contact: Some(&contact_ids[((thread * 7919 + j * 31) % contacts) as usize]),
                            ..ReservationRequest::new("l", utc, "c", now)
                        },
                    };
                    if store.reserve(&request).unwrap().is_reserved() {
                        reserved[which].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let reserved = reserved.map(|r| r.into_inner());
    let usage = |instance, minute: i64| {
        let request =
            ReservationRequest { pool, ..ReservationRequest::new("l", &utc, instance, plus(base, minute * 60)) };
        store.usage(&request).unwrap()
    };
    // The pool binds: a and b together take exactly its day.
    assert_eq!(reserved[0] + reserved[1], u64::from(pool_day), "{reserved:?}");
    assert_eq!(usage("a", 0).pool.unwrap().day, u64::from(pool_day));
    for (i, instance) in ["a", "b"].into_iter().enumerate() {
        assert_eq!(usage(instance, 0).instance.day, reserved[i], "every reservation counted once");
        let per_minute: Vec<u64> = (0..10).map(|m| usage(instance, m).instance.minute).collect();
        assert!(per_minute.iter().all(|&n| n <= u64::from(minute_limit)), "{instance}: {per_minute:?}");
        assert_eq!(per_minute.iter().sum::<u64>(), reserved[i]);
    }
    let c = usage("c", 0).instance;
    assert_eq!(c.day, reserved[2]);
    let c_request = ReservationRequest {
        limits: Limits { contacts_per_day: Some(contacts_limit), ..Limits::NONE },
        ..ReservationRequest::new("l", &utc, "c", base)
    };
    assert_eq!(store.usage(&c_request).unwrap().instance.contacts, u64::from(contacts_limit));
    let admitted = contact_ids
        .iter()
        .filter(|id| store.usage(&ReservationRequest { contact: Some(id), ..c_request }).unwrap().contact_seen)
        .count();
    assert_eq!(admitted as u64, u64::from(contacts_limit), "exactly the limit of distinct contacts got through");
}

/// One generated request of [`matches_the_reference_model`].
#[derive(Debug, Clone)]
pub struct Op {
    /// Instance 0 or 1 (both in the pool) or 2 (no pool).
    pub instance: usize,
    /// Seconds after the previous request (time never goes back).
    pub delta: i64,
    /// A contact id among a few, or none.
    pub contact: Option<u8>,
}

/// Any limits and any sequence of requests: the store answers exactly what
/// a model that keeps every counted decision answers, so no window ever
/// holds more than its limit, every reservation is counted once and a
/// refusal counts nothing. `location` keeps cases apart on a shared store.
pub fn matches_the_reference_model(
    store: &dyn CapacityStore,
    location: &str,
    instance_limits: [Limits; 3],
    pool_limits: Limits,
    ops: &[Op],
) {
    let ny = timezone("America/New_York").unwrap();
    let ids = ["wa-0", "wa-1", "wa-2"];
    let contacts: Vec<String> = (0..8).map(|i| format!("c-{i}")).collect();
    // Counted decisions: (instance, now, contact).
    let mut counted: Vec<(usize, Timestamp, Option<u8>)> = Vec::new();
    // Two days before the fall-back day, so sequences cross it.
    let mut now = ts("2026-10-31T04:00:00Z");
    for op in ops {
        now = plus(now, op.delta);
        let pool = (op.instance < 2).then_some(PoolRef { id: "pool", limits: pool_limits });
        let request = ReservationRequest {
            limits: instance_limits[op.instance],
            pool,
            contact: op.contact.map(|c| contacts[c as usize].as_str()),
            ..ReservationRequest::new(location, &ny, ids[op.instance], now)
        };
        let windows = request.windows();
        let model = |members: &dyn Fn(usize) -> bool| {
            let mut counts = Counts::default();
            let mut seen = std::collections::HashSet::new();
            let mut anonymous = 0;
            for (_, at, contact) in counted.iter().filter(|(i, ..)| members(*i)) {
                let same: Vec<bool> = windows.iter().map(|w| w.window.span(*at, &ny).start == w.start).collect();
                counts.minute += u64::from(same[0]);
                counts.hour += u64::from(same[1]);
                counts.day += u64::from(same[2]);
                if same[2] {
                    match contact {
                        Some(c) => {
                            seen.insert(*c);
                        }
                        None => anonymous += 1,
                    }
                }
            }
            counts.contacts = seen.len() as u64 + anonymous;
            let contact_seen = op.contact.is_some_and(|c| seen.contains(&c));
            (counts, contact_seen)
        };
        let (mut instance_counts, instance_seen) = model(&|i| i == op.instance);
        let (mut pool_counts, pool_seen) = model(&|i| i < 2);
        if request.limits.contacts_per_day.is_none() {
            instance_counts.contacts = 0;
        }
        if pool_limits.contacts_per_day.is_none() {
            pool_counts.contacts = 0;
        }
        let expected = switchboard_core::capacity::Usage {
            instance: instance_counts,
            pool: pool.map(|_| pool_counts),
            contact_seen: instance_seen && request.limits.contacts_per_day.is_some(),
            pool_contact_seen: pool.is_some() && pool_seen && pool_limits.contacts_per_day.is_some(),
        };
        // A store tracks contacts only while a limit asks for them, and so
        // from the first request on here (limits never change in a case).
        assert_eq!(store.usage(&request).unwrap(), expected, "usage before {op:?} at {now}");
        let answer = store.reserve(&request).unwrap();
        assert_eq!(answer, expected.verdict(&request), "{op:?} at {now}");
        if answer.is_reserved() {
            counted.push((op.instance, now, op.contact));
        }
    }
}

/// Live state (docs/live-state.md): an `instance_status` override per instance, kept
/// per location; a stale update (older than the last applied, a clear
/// included) changes nothing.
pub fn live_state_overrides_and_stale_updates(store: &dyn CapacityStore) {
    use switchboard_core::StatusUpdate;
    let (t0, t1) = (ts("2026-12-07T15:00:00Z"), ts("2026-12-07T15:30:00Z"));
    assert!(!store.has_live_state("shop"));
    let down = StatusUpdate {
        location: "shop",
        instance: "wa:1",
        time: t0,
        set: Some((false, Some("logged out: 401"), Some(t1))),
    };
    assert!(store.apply_status(&down).unwrap());
    assert!(store.has_live_state("shop"), "the process that applied an event sees it at once");
    assert!(!store.has_live_state("agency"));
    assert_eq!(store.live_locations().unwrap(), ["shop"]);
    let state = store.live_state("shop").unwrap();
    assert_eq!(state.overrides.len(), 1);
    let o = state.override_of("wa:1", plus(t0, 60)).unwrap();
    assert_eq!((o.connected, o.reason.as_deref(), o.time, o.until), (false, Some("logged out: 401"), t0, Some(t1)));
    assert!(state.override_of("wa:1", t1).is_none(), "lapsed at time + ttl");
    let older = StatusUpdate { time: plus(t0, -60), set: Some((true, None, None)), ..down };
    assert!(!store.apply_status(&older).unwrap(), "stale");
    assert_eq!(store.live_state("shop").unwrap().override_of("wa:1", t0).map(|o| o.connected), Some(false));
    let up = StatusUpdate { instance: "wa-2", set: Some((true, None, None)), ..down };
    assert!(store.apply_status(&up).unwrap());
    let clear = StatusUpdate { time: plus(t0, 10), set: None, ..down };
    assert!(store.apply_status(&clear).unwrap());
    let state = store.live_state("shop").unwrap();
    assert_eq!(state.overrides.iter().map(|(id, o)| (id.as_str(), o.connected)).collect::<Vec<_>>(), [("wa-2", true)]);
    assert!(!store.apply_status(&StatusUpdate { time: plus(t0, 5), ..down }).unwrap(), "older than the clear");
}

/// `inbound` events (docs/live-state.md): the contact's last inbound is kept, and the
/// instance becomes its conversation memory unless the memory is more
/// recent.
pub fn inbound_becomes_the_conversation_unless_the_memory_is_newer(store: &dyn CapacityStore) {
    let key = ConversationKey { location: "shop", channel: "whatsapp", contact: "c-7" };
    let ttl = Duration::from_secs(7 * 86_400);
    let t = ts("2026-12-07T15:00:00Z");
    assert_eq!(store.last_inbound(&key).unwrap(), None);
    assert!(store.record_inbound(&key, "wa-2", t, ttl).unwrap());
    assert_eq!(store.recall(&key, plus(t, 60)).unwrap().as_deref(), Some("wa-2"));
    assert_eq!(store.last_inbound(&key).unwrap(), Some(("wa-2".to_owned(), t)));
    // A selection after it moves the memory; an inbound dated before that
    // selection leaves it, but is still the last inbound if it is later
    // than the one kept.
    store.remember(&key, "wa-3", ttl, plus(t, 600)).unwrap();
    assert!(!store.record_inbound(&key, "wa-1", plus(t, 300), ttl).unwrap());
    assert_eq!(store.recall(&key, plus(t, 700)).unwrap().as_deref(), Some("wa-3"));
    assert_eq!(store.last_inbound(&key).unwrap(), Some(("wa-1".to_owned(), plus(t, 300))));
    // An older inbound is not the last one.
    assert!(!store.record_inbound(&key, "wa-4", plus(t, 100), ttl).unwrap());
    assert_eq!(store.last_inbound(&key).unwrap(), Some(("wa-1".to_owned(), plus(t, 300))));
    // A later inbound wins the memory back; other contacts are apart.
    assert!(store.record_inbound(&key, "wa-1", plus(t, 900), ttl).unwrap());
    assert_eq!(store.recall(&key, plus(t, 901)).unwrap().as_deref(), Some("wa-1"));
    let other = ConversationKey { contact: "c-8", ..key };
    assert_eq!(store.last_inbound(&other).unwrap(), None);
}

/// `delivery` events under a `health:` policy (docs/live-state.md): the
/// window counts every delivery, failures in a row quarantine, the record
/// is listed in the live state while quarantined or on probation, and a
/// delivery on probation makes the instance healthy (and unlisted) again.
pub fn deliveries_quarantine_and_probation_heals(store: &dyn CapacityStore) {
    use switchboard_core::capacity::{DeliveryUpdate, HealthPolicy, HealthState};
    let policy = HealthPolicy { quarantine_after: 3, ..HealthPolicy::default() };
    let t0 = ts("2026-12-07T15:00:00Z");
    let deliver = |instance: &str, seconds: i64, failed: bool| {
        let update = DeliveryUpdate { location: "shop", instance, time: plus(t0, seconds), failed };
        store.record_delivery(&update, &policy).unwrap()
    };
    assert!(!deliver("wa:1", 0, false).quarantined);
    assert!(!deliver("wa:1", 1, true).quarantined);
    assert!(!deliver("wa:1", 2, true).quarantined);
    assert!(!store.has_live_state("shop"), "failures short of a quarantine change no decision");
    let third = deliver("wa:1", 3, true);
    assert!(third.quarantined);
    assert_eq!(third.record.state(plus(t0, 4)), HealthState::Quarantined { until: plus(t0, 303) });
    assert!(store.has_live_state("shop"), "the process that applied it sees it at once");
    let state = store.live_state("shop").unwrap();
    assert_eq!(state.quarantined_until("wa:1", plus(t0, 4)), Some(plus(t0, 303)));
    assert_eq!(state.quarantined_until("wa:1", plus(t0, 303)), None, "the end is exclusive");
    // Other instances keep their own counts.
    assert!(!deliver("wa-2", 4, true).quarantined);
    let health = store.health("shop", policy.window, plus(t0, 10)).unwrap();
    let of = |id: &str| health.iter().find(|(i, _, _)| i == id).map(|(_, r, c)| (*r, *c)).unwrap();
    let (record, counts) = of("wa:1");
    assert_eq!((record.consecutive_failures, counts.deliveries, counts.failures), (3, 4, 3));
    assert_eq!(of("wa-2").1.failures, 1);
    let later = store.health("shop", policy.window, plus(t0, 603)).unwrap();
    assert_eq!(later.len(), 2, "records outlive the window");
    let moved = later.iter().find(|(i, _, _)| i == "wa:1").map(|(_, _, c)| *c).unwrap();
    assert_eq!((moved.deliveries, moved.failures), (0, 0), "the window has moved past them");
    // On probation, a delivery heals: unlisted again.
    assert!(!deliver("wa:1", 400, false).quarantined);
    assert!(store.live_state("shop").unwrap().health.is_empty());
    assert!(store.health("shop", policy.window, plus(t0, 400)).unwrap().iter().all(|(_, r, _)| !r.in_cycle()));
}
