//! The pure evaluator: one request in, one [`Decision`] out. No I/O, no
//! locks; a [`Plan`] and a [`World`] are shared by every thread that selects.

use std::sync::Arc;

use switchboard_core::capacity::jiff::Timestamp;
use switchboard_core::capacity::{
    self, CapacityStore, ConversationKey, PoolRef, Remember, Reservation, ReservationRequest, StoreError,
};
use switchboard_core::recipient::StoreInbound;
use switchboard_core::{
    ChannelInfo, ErrorKind, InboundLog, Instance, Location, OnUnavailable, Outcome, Request, RuleContext, World,
};

use crate::decision::{Decision, SelectionError, TraceEntry, TraceOutcome, CODE_NO_INSTANCE, CODE_STORE_UNAVAILABLE};
use crate::plan::{Chain, OnStoreError, Plan, Step};

impl Plan {
    /// Decides which instance carries `request`.
    ///
    /// The body is scanned once for every registered channel's patterns;
    /// each enabled rule of the channel's chain is consulted in order until
    /// one selects or fails. A selected instance is always connected.
    ///
    /// With capacity (docs/capacity.md) a selected instance that has limits (or whose
    /// pool has) is reserved in the plan's store, atomically with the check:
    /// the decision counts. See [`Plan::preview`] for a decision that never
    /// counts.
    pub fn select(&self, world: &World, request: &Request) -> Decision {
        let decision = self.reply_window(request, self.decide(world, request, true));
        match &request.message_id {
            None => decision,
            Some(id) => decision.with_message_id(Some(id.clone())),
        }
    }

    /// Decides as [`Plan::select`] does but never counts against capacity
    /// limits: the store's current counts are read and compared instead
    /// (`explain`, `--dry-run`).
    pub fn preview(&self, world: &World, request: &Request) -> Decision {
        let decision = self.reply_window(request, self.decide(world, request, false));
        match &request.message_id {
            None => decision,
            Some(id) => decision.with_message_id(Some(id.clone())),
        }
    }

    /// `decision` with `template_required` when it selected an instance
    /// with a `reply_window` (docs/recipient-rules.md): `false` when the
    /// contact wrote to that instance (an `inbound` event, kept in the
    /// plan's store) less than the window before the decision's time, else
    /// `true`, a store that cannot answer included (a template is always
    /// allowed; free-form text outside the window is not).
    fn reply_window(&self, request: &Request, mut decision: Decision) -> Decision {
        let Ok(instance) = &decision.result else { return decision };
        let Some(window) = instance.reply_window() else { return decision };
        let contact = request.contact.as_ref().and_then(|c| c.id.as_deref());
        let inside = match (&self.store, contact, self.registry.channel_id(&request.channel)) {
            (Some(store), Some(contact), Some(channel)) => {
                let key = ConversationKey { location: &request.location, channel, contact };
                let now = request.now.unwrap_or_else(capacity::clock);
                match store.last_inbound(&key) {
                    Ok(Some((to, at))) => {
                        let since = now.as_millisecond().saturating_sub(at.as_millisecond());
                        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                        to == instance.id() && (0..window).contains(&since)
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        decision.template_required = Some(!inside);
        decision
    }

    fn decide(&self, world: &World, request: &Request, count: bool) -> Decision {
        let registry = &*self.registry;
        // (Every way out but the chain's is a `#[cold]` function: kept out of
        // this one, they left the hot path shorter and with fewer spills.)
        let Some(position) = registry.channel_position(&request.channel) else {
            return self.unknown_channel(request);
        };
        // The world's location is looked up first, its answer used after
        // the body's checks (their errors come first): the look-up's chain
        // of dependent loads then overlaps the scan and the body's copy.
        let found = match request.instances {
            None => world.location(&request.location),
            Some(_) => None,
        };
        if let Some(over) = self.over_limit(request) {
            return self.over_limit_error(over);
        }
        let limits = &self.limits;
        let scan = registry.scanner().scan_at_most(&request.body, limits.max_patterns.saturating_add(1));
        if scan.matches().len() > limits.max_patterns {
            return self.too_many_patterns();
        }
        let body = scan.stripped();
        // As `World::location_of`, borrowed on the hot path.
        let inline;
        let location: &Location = match &request.instances {
            Some(specs) => match Location::from_specs(&request.location, specs, registry) {
                Ok(l) => {
                    inline = l;
                    &inline
                }
                Err(message) => {
                    return Decision::request_error(ErrorKind::InvalidRequest, message, Some(body));
                }
            },
            None => match found {
                Some(l) => l,
                None => return unknown_location(world, request, body),
            },
        };
        let channel = &registry.channels()[position];
        let Some(chain) = self.chains.get(position) else {
            return Decision::request_error(ErrorKind::UnknownChannel, "channel has no chain", Some(body));
        };
        // The decision's one instant (docs/capacity.md): the request's `now`, else
        // the clock, read at most once and only when the store is asked.
        let instant = std::cell::OnceCell::new();
        let now = || *instant.get_or_init(|| request.now.unwrap_or_else(capacity::clock));
        // Live state (docs/live-state.md): a world location whose instances the send
        // path reported on is decided on a copy with their `connected`
        // replaced. One cheap question to the store otherwise.
        let overlaid;
        let location = match &self.store {
            Some(store) if request.instances.is_none() && store.has_live_state(location.id()) => {
                match live_location(&**store, location, now()) {
                    Some(l) => {
                        overlaid = l;
                        &overlaid
                    }
                    None => location,
                }
            }
            _ => location,
        };
        let counting = match (count, chain.reads_usage) {
            (false, _) => Counting::Preview,
            (true, false) => Counting::Limited,
            (true, true) => Counting::All,
        };
        // `least_used` reads the day counts of the plan's store and
        // `conversation` its memory.
        let view = match (&self.store, chain.reads_usage || chain.memory_ttl.is_some()) {
            (Some(store), true) => Some((&**store, now())),
            _ => None,
        };
        // Rules read contacts' inbound messages (`send_window`'s exemption)
        // from the store, where `inbound` events are kept.
        let inbound_log = self.store.as_deref().map(StoreInbound);
        let inbound = inbound_log.as_ref().map(|log| log as &dyn InboundLog);
        let cx = RuleContext::for_decision(request, location, channel, position, &scan, view, inbound);
        // The trace is written in place, up to the step that answers: the
        // steps before it that were not written answered a plain `no_match`.
        // (Pushing an entry per step copied it through the stack, and that
        // copy stalled on store forwarding: a fifth of a selection.)
        let mut trace: Vec<TraceEntry> = Vec::with_capacity(chain.steps.len());
        let patterns = !scan.matches().is_empty();
        // (Built where needed: built up front it cost every selection.)
        let walk = || Walk { plan: self, cx: &cx, chain, location, request, now: &now, count, counting, patterns };
        // The store is asked about every selection of a chain that counts
        // them all (`least_used`) or remembers conversations (`rest_of_chain`
        // walks those); otherwise only about an instance with limits (its
        // own or its pool's, see `admit`), and nothing is remembered.
        let store = self.store.as_deref();
        if store.is_some() && (counting == Counting::All || (count && chain.memory_ttl.is_some())) {
            return walk().rest_of_chain(trace, body, 0, None);
        }
        // So here the chain's common answers (a `no_match`, a usable
        // instance the store admits) are taken at once, and any other hands
        // the chain, from that step with that answer, to `Walk::rest_of_chain`.
        // (This loop, a fraction of the general one, spills far less: ≈ 6 %
        // of a selection.)
        for (n, step) in chain.steps.iter().enumerate() {
            if step.needs_patterns && !patterns {
                continue;
            }
            match step.rule.evaluate(&cx) {
                Outcome::NoMatch { detail: None } => {}
                // A note (`send_window`'s local time, say) is written in place
                // too: the chain goes on as for a plain `no_match`.
                Outcome::NoMatch { detail } => answer(&mut trace, &chain.steps, n, TraceOutcome::NoMatch, detail),
                Outcome::Selected { instance, detail } if fits(instance, channel) => {
                    if let Some(store) = store.filter(|_| instance.may_be_limited()) {
                        match self.admit(store, location, instance, request, &now, counting, None) {
                            Admission::Free => {}
                            refused => {
                                let first = (Outcome::Selected { instance, detail }, Some(refused));
                                return walk().rest_of_chain(trace, body, n, Some(first));
                            }
                        }
                    }
                    let instance = instance.clone();
                    answer(&mut trace, &chain.steps, n, TraceOutcome::Selected, detail);
                    return Decision::selected(step.id, body, instance, trace);
                }
                other => return walk().rest_of_chain(trace, body, n, Some((other, None))),
            }
        }
        walk().exhausted(trace, body)
    }
}

/// Whether a rule's choice can carry the message: connected, and on the
/// request's channel.
#[inline]
fn fits(instance: &Instance, channel: &ChannelInfo) -> bool {
    instance.is_connected() && instance.is_on_channel(channel.id())
}

/// One decision's walk down its chain, past the request's checks.
struct Walk<'w, 'a, N> {
    plan: &'w Plan,
    cx: &'w RuleContext<'a>,
    chain: &'w Chain,
    location: &'a Location,
    request: &'a Request,
    /// The decision's instant, read at most once.
    now: &'w N,
    /// Whether the decision counts (`select`) or previews.
    count: bool,
    counting: Counting,
    /// Whether the body has a pattern.
    patterns: bool,
}

impl<'a, N: Fn() -> Timestamp> Walk<'_, 'a, N> {
    /// The chain from step `from` on, with everything a step's answer can
    /// lead to: capacity reservations and refusals (the rule asked again),
    /// unusable instances, failures, conversation memory. `first` is step
    /// `from`'s answer when it was already asked, with the store's answer
    /// about the instance it selected when the store was asked too.
    #[inline(never)]
    fn rest_of_chain(
        &self,
        mut trace: Vec<TraceEntry>,
        body: String,
        from: usize,
        mut first: Option<(Outcome<'a>, Option<Admission>)>,
    ) -> Decision {
        let Walk { plan, cx, chain, location, request, now, count, counting, patterns } = *self;
        let channel = cx.channel();
        let steps = &chain.steps[..];
        // Instances refused by the store in this decision, with why.
        let mut at_capacity: Vec<(Arc<Instance>, String)> = Vec::new();
        // The decision that ends the chain: `rule` failed with `error`.
        let failed = |n, rule, error: SelectionError, mut trace: Vec<TraceEntry>, body| {
            answer(&mut trace, steps, n, TraceOutcome::Failed, Some(error.kind.as_str().to_owned()));
            Decision {
                rule: Some(rule),
                body: Some(body),
                result: Err(error),
                trace,
                message_id: None,
                template_required: None,
            }
        };
        'steps: for (n, step) in steps.iter().enumerate().skip(from) {
            // (Step `from`, when already asked, is never skipped: its answer
            // belongs to it.)
            if step.needs_patterns && !patterns && first.is_none() {
                continue;
            }
            // A rule is consulted again after its choice is refused for
            // capacity, with that instance listed as at capacity; at most
            // once per instance, so this ends.
            let mut rounds = 0usize;
            loop {
                rounds += 1;
                // (Built only when needed: the context is a dozen words.)
                let listed;
                let cx = if at_capacity.is_empty() {
                    cx
                } else {
                    listed = cx.with_at_capacity(&at_capacity);
                    &listed
                };
                // An unusable instance: skip (fell_through) or fail, per the step.
                macro_rules! unusable {
                    ($kind:expr, $message:expr) => {
                        match step.on_unavailable {
                            Some(OnUnavailable::Skip) => {
                                answer(&mut trace, steps, n, TraceOutcome::FellThrough, Some($message));
                                continue 'steps;
                            }
                            _ => {
                                let error =
                                    SelectionError { code: step.code, kind: $kind, message: $message, retry_at: None };
                                return failed(n, step.id, error, trace, body);
                            }
                        }
                    };
                }
                let (outcome, mut admitted) = match first.take() {
                    Some(first) => first,
                    None => (step.rule.evaluate(cx), None),
                };
                let (instance, detail) = match outcome {
                    // (A `None` note is matched apart and never copied out of
                    // the rule's answer, which the rule wrote in narrower
                    // stores: that wide copy stalled on store forwarding.)
                    Outcome::NoMatch { detail: None } => continue 'steps,
                    Outcome::NoMatch { detail } => {
                        answer(&mut trace, steps, n, TraceOutcome::NoMatch, detail);
                        continue 'steps;
                    }
                    Outcome::Selected { instance, detail } if fits(instance, channel) => (instance.clone(), detail),
                    Outcome::Selected { instance, .. } => {
                        // A rule may not select what cannot carry the message:
                        // treat it as unusable rather than trust it.
                        unusable!(ErrorKind::unusable(instance), unfit_choice(step.id, instance, channel.id()))
                    }
                    Outcome::Unusable { kind, message } => unusable!(kind, message),
                    // The rule could not read the store (conversation
                    // memory): `on_store_error` decides, as for limits.
                    Outcome::Failed { kind: ErrorKind::StoreUnavailable, message, .. }
                        if step.rule.memory_ttl().is_some() =>
                    {
                        match plan.on_store_error() {
                            OnStoreError::FailOpen => {
                                let detail = format!("{message}; on_store_error is fail_open: decided without memory");
                                answer(&mut trace, steps, n, TraceOutcome::NoMatch, Some(detail));
                                continue 'steps;
                            }
                            OnStoreError::FailClosed => {
                                let message = format!(
                                    "{message} (on_store_error: fail_closed); check the store, or set \
                                     `on_store_error: fail_open` in rules.yaml to decide without limits and memory \
                                     while it is down"
                                );
                                return failed(n, step.id, store_unavailable(message), trace, body);
                            }
                        }
                    }
                    Outcome::Failed { kind, message, retry_at } => {
                        let error = SelectionError { code: step.code, kind, message, retry_at };
                        return failed(n, step.id, error, trace, body);
                    }
                    Outcome::FailedWithCode { code, kind, message } => {
                        return failed(n, step.id, SelectionError { code, kind, message, retry_at: None }, trace, body);
                    }
                };
                if let Some((_, why)) = at_capacity.iter().find(|(i, _)| i.id() == instance.id()) {
                    unusable!(ErrorKind::InstanceAtCapacity, why.clone())
                }
                // Every counted selection is remembered in a chain that reads
                // conversation memory, except a temporary switch's.
                let admission = match (admitted.take(), &plan.store) {
                    (Some(admission), _) => admission,
                    (None, None) => Admission::Free,
                    (None, Some(store)) => {
                        let remember = chain
                            .memory_ttl
                            .filter(|_| count && step.rule.is_remembered())
                            .map(|ttl| Remember { channel: channel.id(), ttl });
                        plan.admit(&**store, location, &instance, request, now, counting, remember)
                    }
                };
                let detail = match admission {
                    Admission::Free if at_capacity.is_empty() => detail,
                    Admission::Free => with_notes(detail, &at_capacity, None),
                    Admission::Open(note) => with_notes(detail, &at_capacity, Some(note)),
                    Admission::Full(why) if rounds <= location.instances().len() => {
                        at_capacity.push((instance, why));
                        continue;
                    }
                    Admission::Full(why) => unusable!(ErrorKind::InstanceAtCapacity, why),
                    Admission::Closed(message) => return failed(n, step.id, store_unavailable(message), trace, body),
                };
                answer(&mut trace, steps, n, TraceOutcome::Selected, detail);
                return Decision::selected(step.id, body, instance, trace);
            }
        }
        self.exhausted(trace, body)
    }

    /// The decision when every enabled rule answered `no_match` or
    /// `fell_through` (code 106).
    #[cold]
    #[inline(never)]
    fn exhausted(&self, mut trace: Vec<TraceEntry>, body: String) -> Decision {
        let steps = &self.chain.steps;
        trace.extend(steps.get(trace.len()..).unwrap_or_default().iter().map(Step::plain_answer));
        Decision {
            rule: None,
            body: Some(body),
            result: Err(SelectionError {
                code: CODE_NO_INSTANCE,
                kind: ErrorKind::NoInstanceAvailable,
                message: format!(
                    "no rule selected an instance for location `{}` on {} (every enabled rule answered no_match or fell_through); \
                     connect an instance, set a default, or enable any_available",
                    self.location.id(),
                    self.cx.channel().id()
                ),
                retry_at: None,
            }),
            trace,
            message_id: None,
            template_required: None,
        }
    }
}

impl Plan {
    /// The first input limit the request exceeds (`limits` in rules.yaml):
    /// checked in line on every decision, put into words apart.
    #[inline]
    fn over_limit(&self, request: &Request) -> Option<OverLimit> {
        let l = &self.limits;
        let tags = request.contact.as_ref().map_or(&[][..], |c| &c.tags);
        if request.body.len() > l.max_body_bytes {
            return Some(OverLimit::Body(request.body.len()));
        }
        if tags.len() > l.max_tags {
            return Some(OverLimit::Tags(tags.len()));
        }
        let (i, tag) = tags.iter().enumerate().find(|(_, t)| t.len() > l.max_tag_bytes)?;
        Some(OverLimit::Tag { number: i + 1, bytes: tag.len() })
    }

    /// The decision for a request over an input limit (code 100).
    #[cold]
    #[inline(never)]
    fn over_limit_error(&self, over: OverLimit) -> Decision {
        let l = &self.limits;
        let problem = match over {
            OverLimit::Body(bytes) => format!(
                "the body is {bytes} bytes; the limit is {} (limits.max_body_bytes in rules.yaml)",
                l.max_body_bytes
            ),
            OverLimit::Tags(n) => {
                format!("the contact has {n} tags; the limit is {} (limits.max_tags in rules.yaml)", l.max_tags)
            }
            OverLimit::Tag { number, bytes } => format!(
                "tag {number} is {bytes} bytes; the limit is {} (limits.max_tag_bytes in rules.yaml)",
                l.max_tag_bytes
            ),
        };
        Decision::request_error(ErrorKind::InvalidRequest, problem, None)
    }

    /// The decision for a body with more patterns than `limits.max_patterns`.
    #[cold]
    #[inline(never)]
    fn too_many_patterns(&self) -> Decision {
        Decision::request_error(
            ErrorKind::InvalidRequest,
            format!(
                "the body has more than {} override/switch patterns (limits.max_patterns in rules.yaml)",
                self.limits.max_patterns
            ),
            None,
        )
    }

    /// The decision for a request on an unregistered channel.
    #[cold]
    #[inline(never)]
    fn unknown_channel(&self, request: &Request) -> Decision {
        let registry = &*self.registry;
        // Every registered channel's patterns are stripped whatever the
        // sending channel, so the body is cleaned here too (unless the
        // request is over a limit, which would make that costly).
        let max = self.limits.max_patterns;
        let body = self
            .over_limit(request)
            .is_none()
            .then(|| registry.scanner().scan_at_most(&request.body, max.saturating_add(1)))
            .filter(|scan| scan.matches().len() <= max)
            .map(|scan| scan.stripped());
        Decision::request_error(
            ErrorKind::UnknownChannel,
            format!(
                "unknown channel `{}`; registered channels: {}",
                request.channel,
                registry.channel_ids().collect::<Vec<_>>().join(", ")
            ),
            body,
        )
    }
}

/// The decision for a request whose location is neither in the world nor
/// inline.
#[cold]
#[inline(never)]
fn unknown_location(world: &World, request: &Request, body: String) -> Decision {
    let message = if world.is_no_file() {
        format!(
            "location `{}`: no world file was given (`--world`) and the request carries no `instances`; give a \
             world file or put the location's instances in the request",
            request.location
        )
    } else {
        format!("location `{}` is not in the world file and the request carries no `instances`", request.location)
    };
    Decision::request_error(ErrorKind::UnknownLocation, message, Some(body))
}

/// `location` as live state has it at `now`: its instances' `connected`
/// overridden by `instance_status` events in force, and the quarantined
/// ones marked (and not connected); `None` when nothing
/// differs from the file, or when the store cannot say (the file's values
/// then apply).
#[cold]
#[inline(never)]
fn live_location(store: &dyn CapacityStore, location: &Location, now: Timestamp) -> Option<Location> {
    let state = store.live_state(location.id()).ok()?;
    if state.is_empty() {
        return None;
    }
    location.with_live(|i| (state.override_of(i.id(), now).map(|o| o.connected), state.quarantined_until(i.id(), now)))
}

/// Why a rule's choice cannot carry the message: disconnected, or on
/// another channel.
#[cold]
#[inline(never)]
fn unfit_choice(rule: &str, instance: &Instance, channel: &str) -> String {
    format!(
        "rule `{rule}` chose {} which is {}; only connected {channel} instances can be used",
        instance.label(),
        if instance.is_connected() { "on another channel".to_owned() } else { instance.unusable_state() },
    )
}

/// Writes step `n`'s answer into a decision's trace, after a plain
/// `no_match` for each step before it not yet written.
#[inline]
fn answer(trace: &mut Vec<TraceEntry>, steps: &[Step], n: usize, outcome: TraceOutcome, detail: Option<String>) {
    trace.extend(steps.get(trace.len()..=n).unwrap_or_default().iter().map(Step::plain_answer));
    if let Some(entry) = trace.last_mut() {
        entry.outcome = outcome;
        // (A `None` is left in place, not copied: see `Outcome::NoMatch`.)
        if detail.is_some() {
            entry.detail = detail;
        }
    }
}

impl Step {
    /// The step's trace entry for a plain `no_match`.
    #[inline]
    fn plain_answer(&self) -> TraceEntry {
        TraceEntry { rule: self.id, outcome: TraceOutcome::NoMatch, detail: None }
    }
}

/// The first input limit a request exceeds, with its figure.
enum OverLimit {
    /// The body's bytes.
    Body(usize),
    /// The contact's number of tags.
    Tags(usize),
    /// A tag (1-based) and its bytes.
    Tag { number: usize, bytes: usize },
}

/// What a decision does to the capacity store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counting {
    /// A preview (`explain`, `--dry-run`): reads counts, writes nothing.
    Preview,
    /// Counts decisions on instances that have limits (or whose pool has).
    Limited,
    /// Counts every decision: the chain reads day counts (`least_used`).
    All,
}

/// What the capacity store says about a rule's chosen instance.
enum Admission {
    /// No limit applies, or the reservation succeeded (or, previewing, would).
    Free,
    /// The store failed and `on_store_error` is `fail_open`: decided without
    /// limits; the note says so in the trace.
    Open(String),
    /// The instance or its pool reached a limit: why.
    Full(String),
    /// The store failed and `on_store_error` is `fail_closed`: the message.
    Closed(String),
}

/// The rule's trace note with the at-capacity instances passed over and a
/// `fail_open` note appended (unchanged when there are none).
fn with_notes(detail: Option<String>, at_capacity: &[(Arc<Instance>, String)], open: Option<String>) -> Option<String> {
    if at_capacity.is_empty() && open.is_none() {
        return detail;
    }
    let mut parts: Vec<String> = detail.into_iter().collect();
    parts.extend(at_capacity.iter().map(|(_, why)| why.clone()));
    parts.extend(open);
    Some(parts.join("; "))
}

impl Plan {
    /// Checks (and unless previewing, reserves) `instance` against its limits and
    /// its pool's in the plan's store as of the decision's instant `now`, and
    /// with `remember` writes it as the contact's conversation instance in
    /// the same round trip.
    ///
    /// With [`Counting::All`] (the chain has a `least_used` rule), a
    /// decision on an instance without limits is counted too, best effort:
    /// it is never refused, and a store error is ignored unless the memory
    /// had to be written too.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        store: &dyn CapacityStore,
        location: &Location,
        instance: &Instance,
        request: &Request,
        now: &impl Fn() -> Timestamp,
        counting: Counting,
        remember: Option<Remember<'_>>,
    ) -> Admission {
        let contact = request.contact_id();
        let remember = remember.filter(|_| counting != Counting::Preview && contact.is_some());
        let pool = instance.pool().and_then(|p| location.pool(p));
        if !instance.has_own_limits() && pool.is_none_or(|p| p.limits().is_unlimited()) {
            let written = match (counting == Counting::All, remember, contact) {
                (true, _, _) => {
                    let reservation = ReservationRequest {
                        contact,
                        remember,
                        ..ReservationRequest::new(location.id(), location.timezone(), instance.id(), now())
                    };
                    store.reserve(&reservation).map(|_| ())
                }
                (false, Some(remember), Some(contact)) => {
                    let key = ConversationKey { location: location.id(), channel: remember.channel, contact };
                    store.remember(&key, instance.id(), remember.ttl, now())
                }
                _ => Ok(()),
            };
            return match written {
                // Without limits nothing can be refused; a failed count
                // alone only makes `least_used` less even.
                Err(e) if remember.is_some() => {
                    self.store_failed(&e, "remember the conversation", "the conversation is not remembered", instance)
                }
                _ => Admission::Free,
            };
        }
        let reservation = ReservationRequest {
            limits: instance.limits_at(now(), location.timezone()),
            pool: pool.map(|p| PoolRef { id: p.id(), limits: *p.limits() }),
            contact,
            remember,
            ..ReservationRequest::new(location.id(), location.timezone(), instance.id(), now())
        };
        let answer = if counting != Counting::Preview {
            store.reserve(&reservation)
        } else {
            store.usage(&reservation).map(|usage| usage.verdict(&reservation))
        };
        match answer {
            Ok(Reservation::Reserved) => Admission::Free,
            Ok(Reservation::AtCapacity(full)) => Admission::Full(full.message(instance.id(), instance.pool())),
            Err(e) => self.store_failed(&e, "check the limits", "decided without limits", instance),
        }
    }

    /// What a store error means under the plan's `on_store_error`: `what`
    /// could not be done (`check the limits`), and under `fail_open` the
    /// decision goes on as `open` says (`decided without limits`).
    fn store_failed(&self, e: &StoreError, what: &str, open: &str, instance: &Instance) -> Admission {
        match self.on_store_error() {
            OnStoreError::FailOpen => Admission::Open(format!("{e}; on_store_error is fail_open: {open}")),
            OnStoreError::FailClosed => Admission::Closed(format!(
                "{e}; cannot {what} of {} (on_store_error: fail_closed); check the store, or set \
                 `on_store_error: fail_open` in rules.yaml to decide without limits and memory while it is down",
                instance.id()
            )),
        }
    }
}

/// The error of a decision whose store cannot answer under `fail_closed`:
/// code 108 `store_unavailable` (docs/capacity.md).
fn store_unavailable(message: String) -> SelectionError {
    SelectionError { code: CODE_STORE_UNAVAILABLE, kind: ErrorKind::StoreUnavailable, message, retry_at: None }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use switchboard_core::{
        ChannelInfo, InputLimits, Location, Outcome, RegistryBuilder, Request, RuleContext, RuleDescriptor, RuleInfo,
        RuleOptions, SelectionRule, Source, World,
    };

    use crate::{Chain, Plan, PlanParts, Step};
    use switchboard_core::testing::{instance, Wa};

    /// Calls of [`Picky`], which selects the first instance whenever asked.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    struct Picky;
    impl SelectionRule for Picky {
        fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
            CALLS.fetch_add(1, Ordering::SeqCst);
            match cx.instances().iter().next() {
                Some(i) => Outcome::selected(i),
                None => Outcome::no_match(),
            }
        }
        fn needs_patterns(&self) -> bool {
            true
        }
    }
    fn picky(_: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
        Ok(Box::new(Picky))
    }
    fn last(_: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
        Ok(Box::new(switchboard_core::rule_fn(|cx| match cx.instances().iter().last() {
            Some(i) => Outcome::selected(i),
            None => Outcome::no_match(),
        })))
    }

    #[test]
    fn a_rule_that_needs_patterns_is_skipped_for_a_body_without_one_and_traced_as_no_match() {
        let descriptor = |id, build| RuleDescriptor {
            id,
            summary: "",
            code: 1000,
            on_unavailable: None,
            options: &[],
            build,
            source: "test",
        };
        let registry = RegistryBuilder::new()
            .rule(RuleInfo::from_descriptor(&descriptor("picky", picky)))
            .rule(RuleInfo::from_descriptor(&descriptor("last", last)))
            .channel(ChannelInfo::new(&Wa, Source::Builtin("test".into())))
            .build()
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("{e}"));
        let step = |id: &str| {
            let rule = registry.rule(id).unwrap_or_else(|| panic!("{id}"));
            Step::new(rule, None, (rule.build)(&RuleOptions::default()).unwrap_or_else(|e| panic!("{e}")))
        };
        let plan = Plan::new(PlanParts {
            registry: registry.clone(),
            chains: vec![Chain::new(vec![step("picky"), step("last")], Vec::new(), false)],
            plugins: Vec::new(),
            content_hash: 0,
            limits: InputLimits::default(),
            warnings: Vec::new(),
            capacity: None,
            health: None,
        });
        let mut world = World::default();
        let instances = [instance("a", "whatsapp", "1"), instance("b", "whatsapp", "2")];
        let location = Location::from_specs("l", &instances, &registry);
        world.insert(location.unwrap_or_else(|e| panic!("{e}")));
        let decide = |body: &str| {
            let json = serde_json::json!({"location": "l", "channel": "whatsapp", "body": body}).to_string();
            let request = Request::from_json(&json).unwrap_or_else(|e| panic!("{e}"));
            plan.select(&world, &request).to_json()
        };
        let before = CALLS.load(Ordering::SeqCst);
        let plain = decide("hi");
        assert_eq!(CALLS.load(Ordering::SeqCst), before, "not called for a body without a pattern");
        assert!(
            plain.contains(r#""rule":"last""#)
                && plain.contains(
                    r#""trace":[{"rule":"picky","outcome":"no_match"},{"rule":"last","outcome":"selected"}]"#
                ),
            "{plain}"
        );
        let with = decide("hi {WA#9}");
        assert_eq!(CALLS.load(Ordering::SeqCst), before + 1, "called when the body has a pattern");
        assert!(with.contains(r#""rule":"picky""#) && with.contains(r#""body":"hi""#), "{with}");
    }
}
