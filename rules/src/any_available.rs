//! `any_available` (priority 6, code 106): the last resort, any connected
//! instance with a phone number, picked by a configurable strategy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_core::{
    register_rule, ErrorKind, Instance, OptionKind, OptionSpec, Outcome, RuleContext, RuleOptions, SelectionRule,
};

/// The rule id.
pub const ID: &str = "any_available";
/// Its error code.
pub const CODE: u32 = 106;

/// How `any_available` picks among the available instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The lowest index (deterministic; the default).
    #[default]
    LowestIndex,
    /// Each (location, channel) cycles through its instances in index order.
    RoundRobin,
    /// Rendezvous hashing on the contact id: a contact keeps its instance
    /// while it stays available; removing an instance moves only the
    /// contacts that were on it. Without a contact id: lowest index.
    Sticky,
    /// Uniformly at random.
    Random,
    /// Weighted rendezvous hashing on the contact id (docs/capacity.md): each
    /// instance scores `-weight / ln(u)` with `u` in (0, 1) from
    /// [`rendezvous_weight`]; the highest score wins, so shares follow the
    /// instances' `weight` and removing an instance moves only its contacts.
    /// Without a contact id: lowest index.
    Weighted,
    /// The fewest decisions in the current day window of the location's
    /// timezone, read from the plan's capacity store (docs/capacity.md); ties by
    /// lowest index. Without a store: lowest index.
    LeastUsed,
}

pub(crate) const STRATEGIES: &[&str] = &["lowest_index", "round_robin", "sticky", "random", "least_used", "weighted"];

impl Strategy {
    pub(crate) fn parse(name: &str) -> Option<Strategy> {
        Some(match name {
            "lowest_index" => Strategy::LowestIndex,
            "round_robin" => Strategy::RoundRobin,
            "sticky" => Strategy::Sticky,
            "random" => Strategy::Random,
            "weighted" => Strategy::Weighted,
            "least_used" => Strategy::LeastUsed,
            _ => return None,
        })
    }
}

/// The rule, with its strategy and the state that strategy needs.
#[derive(Debug, Default)]
pub struct AnyAvailable {
    strategy: Strategy,
    /// Round-robin position per (location, channel).
    cursors: RwLock<HashMap<(String, String), Arc<AtomicUsize>>>,
    /// State of the `random` strategy's generator.
    seed: AtomicU64,
}

impl AnyAvailable {
    /// The rule with a given strategy.
    pub fn new(strategy: Strategy) -> AnyAvailable {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        AnyAvailable { strategy, cursors: RwLock::default(), seed: AtomicU64::new(now) }
    }

    fn cursor(&self, location: &str, channel: &str) -> Arc<AtomicUsize> {
        let key = (location.to_owned(), channel.to_owned());
        if let Ok(map) = self.cursors.read() {
            if let Some(c) = map.get(&key) {
                return c.clone();
            }
        }
        match self.cursors.write() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            // A poisoned lock only means another thread panicked mid-insert;
            // a fresh cursor keeps selection going.
            Err(_) => Arc::default(),
        }
    }

    fn random(&self) -> u64 {
        splitmix64(self.seed.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed))
    }
}

/// The splitmix64 finalizer: a good 64-bit mix.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rendezvous weight of an instance for a contact: stable across runs,
/// machines and versions (FNV-1a then splitmix64).
pub fn rendezvous_weight(contact: &str, instance: &str) -> u64 {
    let fnv = |h: u64, b: &u8| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    let h = contact.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325, fnv);
    let h = [0xffu8].iter().fold(h, fnv);
    splitmix64(instance.as_bytes().iter().fold(h, fnv))
}

/// The weighted rendezvous score of an instance for a contact:
/// `-weight / ln(u)`, `u` taken from the top 53 bits of
/// [`rendezvous_weight`] and kept strictly inside (0, 1). Fixed across
/// processes and restarts like the hash it derives from.
pub fn weighted_score(contact: &str, instance: &str, weight: u32) -> f64 {
    let bits = rendezvous_weight(contact, instance) >> 11;
    let u = (bits as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight.max(1)) / u.ln()
}

/// The instance with the highest weighted score for the contact; ties by
/// lowest index.
fn weighted_pick<'a>(contact: &str, instances: impl Iterator<Item = &'a Arc<Instance>>) -> Option<&'a Arc<Instance>> {
    let mut best: Option<(&'a Arc<Instance>, f64)> = None;
    for instance in instances {
        let score = weighted_score(contact, instance.id(), instance.weight());
        let better = match best {
            None => true,
            Some((b, bs)) => match score.total_cmp(&bs) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => instance.index() < b.index(),
                std::cmp::Ordering::Less => false,
            },
        };
        if better {
            best = Some((instance, score));
        }
    }
    best.map(|(i, _)| i)
}

/// The instance with the fewest decisions today (unknown counts as 0); ties
/// by lowest index.
fn least_used_pick<'a>(
    cx: &RuleContext<'a>,
    instances: impl Iterator<Item = &'a Arc<Instance>>,
) -> Option<&'a Arc<Instance>> {
    instances.min_by_key(|i| (cx.day_count(i).unwrap_or(0), i.index()))
}

impl SelectionRule for AnyAvailable {
    fn reads_usage(&self) -> bool {
        self.strategy == Strategy::LeastUsed
    }

    /// Any connected instance with a phone will do.
    fn is_fallback(&self) -> bool {
        true
    }

    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let instances = cx.instances();
        let count = instances.available_len();
        if count == 0 {
            if let Some(quarantined) = quarantined(cx) {
                return Outcome::failed(
                    ErrorKind::NoInstanceAvailable,
                    format!(
                        "every connected {} instance with a phone number of location `{}` is quarantined: {quarantined}; \
                         it is selectable again when its quarantine ends",
                        cx.channel().id(),
                        cx.location(),
                    ),
                );
            }
            return Outcome::failed(
                ErrorKind::NoInstanceAvailable,
                format!(
                    "location `{}` has no connected {} instance with a phone number; connect one",
                    cx.location(),
                    cx.channel().id()
                ),
            );
        }
        if !cx.at_capacity_all().is_empty() {
            return self.pick_with_room(cx, count);
        }
        let (picked, how): (Option<&'a Arc<Instance>>, &str) = match self.strategy {
            Strategy::LowestIndex => (instances.available_nth(0), "lowest index"),
            Strategy::RoundRobin => {
                let n = self.cursor(cx.location(), cx.channel().id()).fetch_add(1, Ordering::Relaxed);
                (instances.available_nth(n % count), "round robin")
            }
            Strategy::Random => (instances.available_nth((self.random() % count as u64) as usize), "random"),
            Strategy::Sticky => match cx.contact_id() {
                Some(contact) => (
                    instances
                        .available()
                        .max_by_key(|i| (rendezvous_weight(contact, i.id()), std::cmp::Reverse(i.index()))),
                    "sticky to the contact",
                ),
                None => (instances.available_nth(0), "sticky, but the contact has no id: lowest index"),
            },
            Strategy::LeastUsed => (least_used_pick(cx, instances.available()), "least used today"),
            Strategy::Weighted => match cx.contact_id() {
                Some(contact) => (weighted_pick(contact, instances.available()), "weighted to the contact"),
                None => (instances.available_nth(0), "weighted, but the contact has no id: lowest index"),
            },
        };
        match picked {
            Some(instance) => Outcome::selected(instance).with_detail(format!("{how}, 1 of {count}")),
            None => Outcome::failed(ErrorKind::NoInstanceAvailable, "no instance available"),
        }
    }
}

/// The quarantined instances with a phone number of the request's location
/// and channel, each with the end of its quarantine (`wa-1 (#1) quarantined
/// until …, …`); `None` when there is none.
fn quarantined(cx: &RuleContext<'_>) -> Option<String> {
    let listed: Vec<String> = cx
        .instances()
        .iter()
        .filter(|i| i.has_phone())
        .filter_map(|i| i.quarantined_until().map(|until| format!("{} quarantined until {until}", i.label())))
        .collect();
    (!listed.is_empty()).then(|| listed.join(", "))
}

impl AnyAvailable {
    /// The strategy's pick among the available instances not at capacity
    /// (docs/capacity.md): the evaluator lists those its store refused in this
    /// decision. None left: code 106 `capacity_exhausted`.
    fn pick_with_room<'a>(&self, cx: &RuleContext<'a>, available: usize) -> Outcome<'a> {
        let room: Vec<&'a Arc<Instance>> = cx.instances().available().filter(|i| cx.at_capacity(i).is_none()).collect();
        let count = room.len();
        if count == 0 {
            let why: Vec<&str> = cx.at_capacity_all().iter().map(|(_, why)| why.as_str()).collect();
            // Quarantined ones too: the location has nothing to send with
            // until a quarantine ends or a window turns.
            if let Some(quarantined) = quarantined(cx) {
                return Outcome::failed(
                    ErrorKind::NoInstanceAvailable,
                    format!(
                        "every connected {} instance with a phone number of location `{}` is quarantined or at \
                         capacity: {quarantined}; {}",
                        cx.channel().id(),
                        cx.location(),
                        why.join("; ")
                    ),
                );
            }
            return Outcome::failed(
                ErrorKind::CapacityExhausted,
                format!(
                    "every connected {} instance with a phone number of location `{}` is at capacity ({} of {available}): {}",
                    cx.channel().id(),
                    cx.location(),
                    available,
                    why.join("; ")
                ),
            );
        }
        let (picked, how) = self.pick(cx, &room);
        match picked {
            Some(instance) => {
                Outcome::selected(instance).with_detail(format!("{how}, 1 of {count} with room (of {available})"))
            }
            None => Outcome::failed(ErrorKind::NoInstanceAvailable, "no instance available"),
        }
    }
}

impl AnyAvailable {
    /// The strategy's pick among `candidates` (by ascending index), and
    /// how it picked, for the trace. `None` only when there is none. Other
    /// rules that choose among several instances (`geomatch`) pick with it.
    pub fn pick<'a>(
        &self,
        cx: &RuleContext<'a>,
        candidates: &[&'a Arc<Instance>],
    ) -> (Option<&'a Arc<Instance>>, &'static str) {
        let count = candidates.len().max(1);
        match self.strategy {
            Strategy::LowestIndex => (candidates.first().copied(), "lowest index"),
            Strategy::RoundRobin => {
                let n = self.cursor(cx.location(), cx.channel().id()).fetch_add(1, Ordering::Relaxed);
                (candidates.get(n % count).copied(), "round robin")
            }
            Strategy::Random => (candidates.get((self.random() % count as u64) as usize).copied(), "random"),
            Strategy::Sticky => match cx.contact_id() {
                Some(contact) => (
                    candidates
                        .iter()
                        .copied()
                        .max_by_key(|i| (rendezvous_weight(contact, i.id()), std::cmp::Reverse(i.index()))),
                    "sticky to the contact",
                ),
                None => (candidates.first().copied(), "sticky, but the contact has no id: lowest index"),
            },
            Strategy::LeastUsed => (least_used_pick(cx, candidates.iter().copied()), "least used today"),
            Strategy::Weighted => match cx.contact_id() {
                Some(contact) => (weighted_pick(contact, candidates.iter().copied()), "weighted to the contact"),
                None => (candidates.first().copied(), "weighted, but the contact has no id: lowest index"),
            },
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
}

fn build(options: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
    // The compiler applies the declared default (`lowest_index`).
    let name = options.str("strategy").ok_or("`strategy` is not set")?;
    let strategy = Strategy::parse(name).ok_or_else(|| format!("unknown strategy `{name}`"))?;
    Ok(Box::new(AnyAvailable::new(strategy)))
}

register_rule! {
    id: ID,
    summary: "any connected instance with a phone number, by strategy",
    code: CODE,
    on_unavailable: None,
    options: &[OptionSpec {
        name: "strategy",
        kind: OptionKind::Choice(STRATEGIES),
        default: "lowest_index",
        doc: "how to pick among the available instances",
    }],
    build: build,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, run, Answer, Answer::*};

    const WORLD: &str = r#"[
        {"id":"wa-3","channel":"whatsapp","index":3,"phone":"+1 555 0003","connected":true},
        {"id":"wa-1","channel":"whatsapp","index":1,"phone":"+1 555 0001","connected":false},
        {"id":"wa-2","channel":"whatsapp","index":2,"phone":"","connected":true},
        {"id":"wa-5","channel":"whatsapp","index":5,"phone":"+1 555 0005","connected":true},
        {"id":"wa-4","channel":"whatsapp","index":4,"phone":"+1 555 0004","connected":true}
    ]"#;

    #[test]
    fn lowest_index_skips_disconnected_and_phoneless() {
        assert_eq!(run(&AnyAvailable::new(Strategy::LowestIndex), WORLD, "whatsapp", "hi", None), Selected("wa-3"));
    }

    #[test]
    fn failed_when_nothing_is_available() {
        let world = r#"[{"id":"a","channel":"whatsapp","phone":"1"},{"id":"b","channel":"whatsapp","connected":true}]"#;
        assert_eq!(
            run(&AnyAvailable::new(Strategy::LowestIndex), world, "whatsapp", "hi", None),
            Failed("no_instance_available")
        );
        assert_eq!(
            run(&AnyAvailable::new(Strategy::Random), "[]", "whatsapp", "hi", None),
            Failed("no_instance_available")
        );
    }

    #[test]
    fn round_robin_cycles_in_index_order() {
        let rule = AnyAvailable::new(Strategy::RoundRobin);
        let picks: Vec<Answer> = (0..4).map(|_| run(&rule, WORLD, "whatsapp", "hi", None)).collect();
        assert_eq!(picks, [Selected("wa-3"), Selected("wa-4"), Selected("wa-5"), Selected("wa-3")]);
    }

    #[test]
    fn random_only_picks_available_instances() {
        let rule = AnyAvailable::new(Strategy::Random);
        for _ in 0..50 {
            let pick = run(&rule, WORLD, "whatsapp", "hi", None);
            assert!(matches!(pick, Selected("wa-3" | "wa-4" | "wa-5")), "{pick:?}");
        }
    }

    #[test]
    fn sticky_keeps_a_contact_and_moves_only_the_removed_instances_contacts() {
        let rule = AnyAvailable::new(Strategy::Sticky);
        let without_4 = WORLD.replace(
            r#""id":"wa-4","channel":"whatsapp","index":4,"phone":"+1 555 0004","connected":true"#,
            r#""id":"wa-4","channel":"whatsapp","index":4,"phone":"+1 555 0004","connected":false"#,
        );
        let mut seen = std::collections::HashSet::new();
        for n in 0..200 {
            let id = format!("contact-{n}");
            let before = run(&rule, WORLD, "whatsapp", "hi", contact(&id, &[], None));
            assert_eq!(before, run(&rule, WORLD, "whatsapp", "hi", contact(&id, &[], None)));
            let after = run(&rule, &without_4, "whatsapp", "hi", contact(&id, &[], None));
            if before != Selected("wa-4") {
                assert_eq!(before, after, "{id} moved although its instance stayed");
            }
            seen.insert(before);
        }
        assert_eq!(seen.len(), 3, "200 contacts spread over the three instances");
    }

    #[test]
    fn sticky_without_contact_id_is_lowest_index() {
        assert_eq!(run(&AnyAvailable::new(Strategy::Sticky), WORLD, "whatsapp", "hi", None), Selected("wa-3"));
    }

    #[test]
    fn rendezvous_weights_are_pinned_across_builds_and_processes() {
        // Golden values: `sticky` must send a contact to the same instance on
        // every process and after every restart, so the hash may never change.
        assert_eq!(rendezvous_weight("c1", "wa-1"), 6_211_918_018_842_709_069);
        assert_eq!(rendezvous_weight("c1", "wa-2"), 17_195_964_792_051_510_283);
        assert_eq!(rendezvous_weight("contact-42", "sms-3"), 5_562_669_613_861_985_499);
    }

    const WEIGHTED: &str = r#"[
        {"id":"wa-1","channel":"whatsapp","index":1,"phone":"+1 555 0001","connected":true,"weight":1},
        {"id":"wa-2","channel":"whatsapp","index":2,"phone":"+1 555 0002","connected":true,"weight":3},
        {"id":"wa-3","channel":"whatsapp","index":3,"phone":"+1 555 0003","connected":true}
    ]"#;

    const GOLDEN: [&str; 3] = ["0.918764519", "42.727050731", "1.668321443"];

    #[test]
    fn weighted_scores_are_pinned_across_builds_and_processes() {
        // Golden values: the score derives from the fixed rendezvous hash.
        let golden = |c: &str, i: &str, w: u32| format!("{:.9}", weighted_score(c, i, w));
        assert_eq!(golden("c1", "wa-1", 1), GOLDEN[0]);
        assert_eq!(golden("c1", "wa-2", 3), GOLDEN[1]);
        assert_eq!(golden("contact-42", "sms-3", 2), GOLDEN[2]);
    }

    #[test]
    fn weighted_shares_follow_the_weights_and_removal_moves_only_its_contacts() {
        let rule = AnyAvailable::new(Strategy::Weighted);
        let without_2 =
            WEIGHTED.replace(r#""phone":"+1 555 0002","connected":true"#, r#""phone":"+1 555 0002","connected":false"#);
        let mut counts = HashMap::new();
        let total = 5000;
        for n in 0..total {
            let id = format!("contact-{n}");
            let before = run(&rule, WEIGHTED, "whatsapp", "hi", contact(&id, &[], None));
            assert_eq!(before, run(&rule, WEIGHTED, "whatsapp", "hi", contact(&id, &[], None)));
            let after = run(&rule, &without_2, "whatsapp", "hi", contact(&id, &[], None));
            if before != Selected("wa-2") {
                assert_eq!(before, after, "{id} moved although its instance stayed");
            }
            *counts.entry(format!("{before:?}")).or_insert(0u32) += 1;
        }
        // Weights 1 : 3 : 1 -> shares 20% : 60% : 20%, within a few points.
        let share = |id: &'static str| f64::from(counts[&format!("{:?}", Selected(id))]) / f64::from(total);
        assert!((share("wa-1") - 0.2).abs() < 0.03, "{counts:?}");
        assert!((share("wa-2") - 0.6).abs() < 0.03, "{counts:?}");
        assert!((share("wa-3") - 0.2).abs() < 0.03, "{counts:?}");
    }

    #[test]
    fn weighted_without_contact_id_is_lowest_index() {
        assert_eq!(run(&AnyAvailable::new(Strategy::Weighted), WEIGHTED, "whatsapp", "hi", None), Selected("wa-1"));
        assert_eq!(run(&AnyAvailable::new(Strategy::Weighted), WORLD, "whatsapp", "hi", None), Selected("wa-3"));
    }

    #[test]
    fn least_used_without_a_store_is_lowest_index() {
        let rule = AnyAvailable::new(Strategy::LeastUsed);
        assert!(rule.reads_usage());
        assert_eq!(run(&rule, WORLD, "whatsapp", "hi", None), Selected("wa-3"));
        assert_eq!(run(&rule, WORLD, "whatsapp", "hi", None), Selected("wa-3"));
    }
}
