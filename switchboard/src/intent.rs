//! Select or preview, decided in one place: every front end (`switchboard
//! select` and its `--dry-run`, `serve` and its `--dry-run`, `explain`,
//! the bindings) says which it wants with an [`Intent`] and calls
//! [`Intent::decide`], [`Snapshot::decide`] or
//! [`Live::decide`](crate::Live::decide).

use switchboard_core::{Request, World};
use switchboard_engine::{Decision, Plan};

use crate::Snapshot;

/// Whether a decision counts or is a dry run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Intent {
    /// A selection: reserves capacity and remembers the conversation
    /// ([`Plan::select`]).
    #[default]
    Select,
    /// A preview (`explain`, `--dry-run`): reads counts and memories,
    /// writes nothing ([`Plan::preview`]).
    Preview,
}

impl Intent {
    /// [`Intent::Preview`] for a `--dry-run`, else [`Intent::Select`].
    pub fn dry_run(dry_run: bool) -> Intent {
        if dry_run {
            Intent::Preview
        } else {
            Intent::Select
        }
    }

    /// The decision for `request` by `plan` on `world`, counted or not.
    pub fn decide(self, plan: &Plan, world: &World, request: &Request) -> Decision {
        match self {
            Intent::Select => plan.select(world, request),
            Intent::Preview => plan.preview(world, request),
        }
    }

    /// Whether decisions made this way by `plan` on `world` change what
    /// later ones see (they reserve capacity or remember conversations):
    /// then a batch is decided in input order, one line at a time, so that
    /// an earlier line never loses capacity to a later one
    /// (docs/capacity.md).
    pub fn in_order(self, plan: &Plan, world: &World) -> bool {
        self == Intent::Select && plan.counts_capacity(world)
    }

    /// What a one-shot command deciding this way should say on stderr: when
    /// its decisions count capacity or remember conversations in a store
    /// that ends with the process, the next run starts from nothing.
    pub fn one_shot_note(self, plan: &Plan, world: &World) -> Option<&'static str> {
        (self.in_order(plan, world) && ends_with_process(plan)).then_some(
            "note: capacity counts and conversation memory are kept in this process's memory \
             (capacity.store: memory): they hold within this run and end with it, so separate runs do not \
             see each other's; set `capacity.store: redis` to keep them (docs/capacity.md)",
        )
    }
}

/// What a one-shot command recording events (`switchboard record`) should
/// say on stderr: when `plan`'s store ends with the process, so do the
/// events.
pub fn events_note(plan: &Plan) -> Option<&'static str> {
    ends_with_process(plan).then_some(
        "note: the events are kept in this process's memory (capacity.store: memory) and end with this command; \
         set `capacity.store: redis` to keep them (docs/live-state.md)",
    )
}

/// Whether what `plan`'s store counts, remembers and records ends with this
/// process ([`switchboard_core::CapacityStore::outlives_process`]).
fn ends_with_process(plan: &Plan) -> bool {
    plan.store().is_some_and(|store| !store.outlives_process())
}

impl Snapshot {
    /// The decision for `request` on this configuration, counted or not.
    pub fn decide(&self, request: &Request, intent: Intent) -> Decision {
        intent.decide(&self.plan, &self.world, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_selection_with_limits_is_decided_in_order() {
        let registry = crate::registry().unwrap();
        let path = std::path::Path::new("rules.yaml");
        let plan =
            crate::compile_rules("rules: [any_available]\ncapacity:\n  store: memory\n", path, &registry).unwrap();
        let free = switchboard_files::compile("rules: [any_available]", "rules.yaml", registry).unwrap();
        let world = World::empty();
        assert!(Intent::dry_run(false).in_order(&plan, &world));
        assert!(!Intent::dry_run(true).in_order(&plan, &world));
        assert!(!Intent::Select.in_order(&free, &world));
    }

    #[test]
    fn a_one_shot_counting_in_memory_is_told_its_counts_end_with_it() {
        let registry = crate::registry().unwrap();
        let path = std::path::Path::new("rules.yaml");
        let memory =
            crate::compile_rules("rules: [any_available]\ncapacity:\n  store: memory\n", path, &registry).unwrap();
        let free = crate::compile_rules("rules: [any_available]", path, &registry).unwrap();
        let world = World::empty();
        assert!(Intent::Select.one_shot_note(&memory, &world).is_some_and(|n| n.contains("capacity.store: redis")));
        assert_eq!(Intent::Preview.one_shot_note(&memory, &world), None, "a dry run counts nothing");
        assert_eq!(Intent::Select.one_shot_note(&free, &world), None, "nothing is counted");
        assert!(events_note(&memory).is_some_and(|n| n.contains("the events are kept in this process's memory")));
    }
}
