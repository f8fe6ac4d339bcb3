//! The selection-rule trait, the four outcomes, the context a rule reads,
//! and the descriptor that registers a rule with its typed options.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::capacity::jiff::Timestamp;
use crate::capacity::{CapacityStore, ConversationKey, ReservationRequest, StoreError};
use crate::pattern::{PatternKind, PatternMatch, Scan};
use crate::recipient::{Inbound, InboundLog};
use crate::{ChannelInfo, Contact, Instance, InstanceView, Location, Request};

/// A link in the selection chain.
///
/// One required method. A rule reads the request, the sending channel, the
/// location's instances on that channel and the patterns found in the body
/// from its [`RuleContext`], and answers one [`Outcome`]. Rules are built
/// once per configuration and shared by every thread that selects, so they
/// are `Send + Sync`; state they keep (a round-robin counter) must be too.
///
/// ```
/// use switchboard_core::{rule_fn, Outcome, SelectionRule};
///
/// // Always the lowest-indexed connected instance.
/// let first = rule_fn(|cx| match cx.instances().iter().find(|i| i.is_connected()) {
///     Some(instance) => Outcome::selected(instance),
///     None => Outcome::no_match(),
/// });
/// # fn takes(_: &dyn SelectionRule) {}
/// # takes(&first);
/// ```
pub trait SelectionRule: Send + Sync {
    /// Decides for one request.
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a>;

    /// Whether the rule reads [`RuleContext::day_count`] (`any_available`
    /// with `least_used`): a plan with such a rule and a store counts every
    /// decision, also on instances without limits (docs/capacity.md). The default
    /// is `false`.
    fn reads_usage(&self) -> bool {
        false
    }

    /// How long a selection is remembered for the contact when the rule
    /// reads conversation memory ([`RuleContext::recall`], the
    /// `conversation` rule's `ttl`): a chain with such a rule remembers
    /// every selected decision (docs/capacity.md). The default is `None`: the rule
    /// reads no memory.
    fn memory_ttl(&self) -> Option<Duration> {
        None
    }

    /// Whether a decision this rule selects is remembered as the contact's
    /// conversation instance (in a chain that remembers). The default is
    /// `true`; `temporary_switch` answers `false`, since a temporary switch
    /// never changes where the contact's messages normally go.
    fn is_remembered(&self) -> bool {
        true
    }

    /// Whether the rule answers a plain `no_match` (no note) whenever the
    /// body has no override or switch pattern of any channel, as
    /// `manual_override` and `temporary_switch` do. The evaluator then
    /// records that answer without calling the rule for such a body (most
    /// of them), which saves a dynamic call per decision. Asked once, when
    /// the plan is compiled. The default is `false`: always called.
    fn needs_patterns(&self) -> bool {
        false
    }

    /// Whether the rule can select for any request, whatever its body,
    /// contact or tags say, as `any_available` and `default_instance` do:
    /// a chain without such a rule enabled can run out, and the compiler
    /// warns about it. The default is `false`.
    fn is_fallback(&self) -> bool {
        false
    }
}

/// A boxed or shared rule is the rule: every method forwards (one macro,
/// so that a method added to the trait is forwarded by both).
macro_rules! forward_rule {
    ($($pointer:ident),+) => {$(
        impl<R: SelectionRule + ?Sized> SelectionRule for $pointer<R> {
            fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
                (**self).evaluate(cx)
            }

            fn reads_usage(&self) -> bool {
                (**self).reads_usage()
            }

            fn memory_ttl(&self) -> Option<Duration> {
                (**self).memory_ttl()
            }

            fn is_remembered(&self) -> bool {
                (**self).is_remembered()
            }

            fn needs_patterns(&self) -> bool {
                (**self).needs_patterns()
            }

            fn is_fallback(&self) -> bool {
                (**self).is_fallback()
            }
        }
    )+};
}

forward_rule!(Box, Arc);

/// A rule made from a closure; see [`rule_fn`].
#[derive(Clone, Copy)]
pub struct RuleFn<F>(F);

impl<F> fmt::Debug for RuleFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RuleFn")
    }
}

/// Makes a rule of a closure (tests and one-line rules).
pub fn rule_fn<F>(f: F) -> RuleFn<F>
where
    F: for<'a> Fn(&RuleContext<'a>) -> Outcome<'a> + Send + Sync,
{
    RuleFn(f)
}

impl<F> SelectionRule for RuleFn<F>
where
    F: for<'a> Fn(&RuleContext<'a>) -> Outcome<'a> + Send + Sync,
{
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        (self.0)(cx)
    }
}

/// What a rule answers.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// This instance carries the message. The evaluator double-checks that
    /// it is connected.
    Selected {
        /// The instance.
        instance: &'a Arc<Instance>,
        /// A note for the trace.
        detail: Option<String>,
    },
    /// The rule does not apply; the next one is consulted.
    NoMatch {
        /// A note for the trace (ignored tags, …).
        detail: Option<String>,
    },
    /// The rule applies but its instance cannot be used. The rule's
    /// `on_unavailable` option decides: `error` fails the selection with the
    /// rule's code, `skip` falls through to the next rule.
    Unusable {
        /// `instance_not_found` or `instance_disconnected`.
        kind: ErrorKind,
        /// What happened and what to do, for a person.
        message: String,
    },
    /// The selection fails whatever the options say.
    Failed {
        /// The error kind.
        kind: ErrorKind,
        /// What happened and what to do.
        message: String,
        /// When trying again may succeed (`send_window`: the next opening
        /// of the window); the error object carries it as `retry_at`.
        /// (Boxed: rare, and every rule's answer moves its room.)
        retry_at: Option<Box<Timestamp>>,
    },
    /// [`Outcome::Failed`] with a code of the rule's choosing instead of
    /// its declared one (a WebAssembly rule's `failed` answer carries its
    /// code, docs/wasm-plugins.md).
    FailedWithCode {
        /// The error code (plugin codes are at least 1000).
        code: u32,
        /// The error kind.
        kind: ErrorKind,
        /// What happened and what to do.
        message: String,
    },
}

impl<'a> Outcome<'a> {
    /// `Selected` without a note.
    #[inline]
    pub fn selected(instance: &'a Arc<Instance>) -> Outcome<'a> {
        Outcome::Selected { instance, detail: None }
    }
    /// `NoMatch` without a note.
    #[inline]
    pub fn no_match() -> Outcome<'a> {
        Outcome::NoMatch { detail: None }
    }
    /// `NoMatch` with a note for the trace.
    pub fn no_match_because(detail: impl Into<String>) -> Outcome<'a> {
        Outcome::NoMatch { detail: Some(detail.into()) }
    }
    /// `Unusable`.
    pub fn unusable(kind: ErrorKind, message: impl Into<String>) -> Outcome<'a> {
        Outcome::Unusable { kind, message: message.into() }
    }
    /// `Failed`.
    pub fn failed(kind: ErrorKind, message: impl Into<String>) -> Outcome<'a> {
        Outcome::Failed { kind, message: message.into(), retry_at: None }
    }
    /// `Failed`, worth trying again at `retry_at`.
    pub fn failed_until(kind: ErrorKind, message: impl Into<String>, retry_at: Timestamp) -> Outcome<'a> {
        Outcome::Failed { kind, message: message.into(), retry_at: Some(Box::new(retry_at)) }
    }
    /// Adds a trace note to `Selected` or `NoMatch`.
    #[inline]
    pub fn with_detail(self, note: impl Into<String>) -> Outcome<'a> {
        match self {
            Outcome::Selected { instance, .. } => Outcome::Selected { instance, detail: Some(note.into()) },
            Outcome::NoMatch { .. } => Outcome::NoMatch { detail: Some(note.into()) },
            other => other,
        }
    }
}

/// The kind of a selection error (docs/errors.md), written in snake case in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be read.
    InvalidRequest,
    /// The request names a channel nobody registered.
    UnknownChannel,
    /// The request names a location the world does not have.
    UnknownLocation,
    /// An index names no instance.
    InstanceNotFound,
    /// Every candidate is disconnected.
    InstanceDisconnected,
    /// Patterns name different indexes.
    ConflictingOverride,
    /// No connected instance with a phone, or the chain ran out.
    NoInstanceAvailable,
    /// The rule's instance, or its pool, reached a limit (docs/capacity.md).
    InstanceAtCapacity,
    /// Connected instances with a phone exist but all are at capacity
    /// (code 106, docs/capacity.md).
    CapacityExhausted,
    /// The capacity store cannot answer and `on_store_error` is
    /// `fail_closed` (code 108, docs/capacity.md).
    StoreUnavailable,
    /// The recipient's local time is outside the `send_window` rule's
    /// window (code 109, docs/recipient-rules.md).
    OutsideSendWindow,
    /// The instance is quarantined by its health (docs/live-state.md):
    /// handled wherever a disconnected one is.
    InstanceQuarantined,
    /// A kind declared by a plugin rule.
    Custom(Cow<'static, str>),
}

impl ErrorKind {
    /// The snake-case name used in decisions.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownChannel => "unknown_channel",
            ErrorKind::UnknownLocation => "unknown_location",
            ErrorKind::InstanceNotFound => "instance_not_found",
            ErrorKind::InstanceDisconnected => "instance_disconnected",
            ErrorKind::ConflictingOverride => "conflicting_override",
            ErrorKind::NoInstanceAvailable => "no_instance_available",
            ErrorKind::InstanceAtCapacity => "instance_at_capacity",
            ErrorKind::CapacityExhausted => "capacity_exhausted",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::OutsideSendWindow => "outside_send_window",
            ErrorKind::InstanceQuarantined => "instance_quarantined",
            ErrorKind::Custom(name) => name,
        }
    }

    /// The kind of a rule's error when `instance`, which it would select,
    /// cannot be used: [`ErrorKind::InstanceQuarantined`] for a quarantined
    /// instance, [`ErrorKind::InstanceDisconnected`] otherwise.
    pub fn unusable(instance: &Instance) -> ErrorKind {
        if instance.quarantined_until().is_some() {
            ErrorKind::InstanceQuarantined
        } else {
            ErrorKind::InstanceDisconnected
        }
    }

    /// Every kind that is not [`ErrorKind::Custom`], in docs/errors.md order.
    pub const BUILTIN: &'static [ErrorKind] = &[
        ErrorKind::InvalidRequest,
        ErrorKind::UnknownChannel,
        ErrorKind::UnknownLocation,
        ErrorKind::InstanceNotFound,
        ErrorKind::InstanceDisconnected,
        ErrorKind::ConflictingOverride,
        ErrorKind::NoInstanceAvailable,
        ErrorKind::InstanceAtCapacity,
        ErrorKind::CapacityExhausted,
        ErrorKind::StoreUnavailable,
        ErrorKind::OutsideSendWindow,
        ErrorKind::InstanceQuarantined,
    ];

    /// The kind named `name`: the inverse of [`ErrorKind::as_str`]. A
    /// built-in kind's name gives that kind; any other name (a plugin's
    /// own kind) gives [`ErrorKind::Custom`] with that name, so
    /// `ErrorKind::from_name(kind.as_str()) == kind` for every kind whose
    /// custom name is not a built-in one.
    ///
    /// ```
    /// use switchboard_core::ErrorKind;
    /// assert_eq!(ErrorKind::from_name("instance_disconnected"), ErrorKind::InstanceDisconnected);
    /// assert_eq!(ErrorKind::from_name("closed_for_lunch").as_str(), "closed_for_lunch");
    /// ```
    pub fn from_name(name: &str) -> ErrorKind {
        match ErrorKind::BUILTIN.iter().find(|k| k.as_str() == name) {
            Some(kind) => kind.clone(),
            None => ErrorKind::Custom(Cow::Owned(name.to_owned())),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule does when its instance is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnUnavailable {
    /// Fail the selection with the rule's code.
    Error,
    /// Record `fell_through` and consult the next rule.
    Skip,
}

impl OnUnavailable {
    /// The rules.yaml spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Error => "error",
            OnUnavailable::Skip => "skip",
        }
    }
}

/// Everything a rule may read about one request.
#[derive(Debug, Clone, Copy)]
pub struct RuleContext<'a> {
    pub(crate) request: &'a Request,
    pub(crate) location: &'a str,
    pub(crate) channel: &'a ChannelInfo,
    pub(crate) channel_position: usize,
    pub(crate) instances: InstanceView<'a>,
    pub(crate) scan: &'a Scan<'a>,
    /// Instances found at capacity earlier in this decision, each with the
    /// sentence saying which limit (docs/capacity.md).
    pub(crate) at_capacity: &'a [(Arc<Instance>, String)],
    /// The plan's store, the location and the decision's instant, for
    /// [`RuleContext::day_count`] and [`RuleContext::recall`].
    pub(crate) store: Option<StoreView<'a>>,
    /// The location itself (its `country` and `timezone`, docs/recipient-rules.md).
    pub(crate) site: Option<&'a Location>,
    /// Where contacts' last inbound messages are read (docs/recipient-rules.md).
    pub(crate) inbound: Option<InboundSource<'a>>,
}

/// An [`InboundLog`] behind a context.
#[derive(Clone, Copy)]
pub(crate) struct InboundSource<'a>(pub(crate) &'a dyn InboundLog);

impl fmt::Debug for InboundSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InboundLog")
    }
}

/// What a rule may read of the plan's capacity store: the store, the
/// location (its timezone sets the day window) and the decision's instant.
#[derive(Clone, Copy)]
pub(crate) struct StoreView<'a> {
    pub(crate) store: &'a dyn CapacityStore,
    pub(crate) location: &'a Location,
    pub(crate) now: Timestamp,
}

impl fmt::Debug for StoreView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreView").field("location", &self.location.id()).field("now", &self.now).finish()
    }
}

/// What [`RuleContext::recall`] found in the conversation memory (docs/capacity.md).
#[derive(Debug, Clone)]
pub enum Recall<'a> {
    /// Nothing remembered for the contact on this channel (or the memory
    /// expired), the request has no contact id, or the plan reads no memory.
    Nothing,
    /// The instance that last carried a message to the contact on this
    /// channel. It may be disconnected or at capacity now.
    Instance(&'a Arc<Instance>),
    /// The remembered instance id, which names no instance of the location
    /// on this channel any more (removed from the world).
    Gone(String),
    /// The store cannot answer.
    Unavailable(StoreError),
}

impl<'a> RuleContext<'a> {
    /// Builds a context by hand: for unit tests of a rule, and for hosts
    /// that evaluate one rule outside a plan.
    pub fn new(
        request: &'a Request,
        channel: &'a ChannelInfo,
        channel_position: usize,
        instances: InstanceView<'a>,
        scan: &'a Scan<'a>,
    ) -> RuleContext<'a> {
        RuleContext {
            request,
            location: &request.location,
            channel,
            channel_position,
            instances,
            scan,
            at_capacity: &[],
            store: None,
            site: None,
            inbound: None,
        }
    }

    /// The context of one decision of a plan on `location`: its instances
    /// on `channel` (at `channel_position` in the registry), the body's
    /// `scan`, the plan's store with the decision's instant when a rule of
    /// the chain reads it, and where contacts' inbound messages are read.
    /// For the evaluator (`switchboard-engine`) only, hence hidden: rules
    /// and hosts use [`RuleContext::new`] and the `with_` methods.
    #[doc(hidden)]
    #[inline]
    pub fn for_decision(
        request: &'a Request,
        location: &'a Location,
        channel: &'a ChannelInfo,
        channel_position: usize,
        scan: &'a Scan<'a>,
        store: Option<(&'a dyn CapacityStore, Timestamp)>,
        inbound: Option<&'a dyn InboundLog>,
    ) -> RuleContext<'a> {
        RuleContext {
            request,
            location: location.id(),
            channel,
            channel_position,
            instances: location.channel_of(channel),
            scan,
            at_capacity: &[],
            store: store.map(|(store, now)| StoreView { store, location, now }),
            site: Some(location),
            inbound: inbound.map(InboundSource),
        }
    }

    /// This context with `at_capacity` as the instances found at capacity
    /// so far in the decision ([`RuleContext::at_capacity`]). For the
    /// evaluator (`switchboard-engine`) only, hence hidden.
    #[doc(hidden)]
    #[inline]
    pub fn with_at_capacity(self, at_capacity: &'a [(Arc<Instance>, String)]) -> RuleContext<'a> {
        RuleContext { at_capacity, ..self }
    }

    /// This context with the location the request is decided in (its
    /// `country` and `timezone`, docs/recipient-rules.md): for unit tests of a rule and
    /// hosts that evaluate one rule outside a plan.
    pub fn with_location(mut self, location: &'a Location) -> Self {
        self.site = Some(location);
        self
    }

    /// This context reading contacts' last inbound messages from `log`
    /// ([`RuleContext::last_inbound`]).
    pub fn with_inbound(mut self, log: &'a dyn InboundLog) -> Self {
        self.inbound = Some(InboundSource(log));
        self
    }

    /// The location the request is decided in, when the context knows it
    /// (a plan's decisions always do).
    #[inline]
    pub fn site(&self) -> Option<&'a Location> {
        self.site
    }

    /// The decision's instant: the store's when the context reads one,
    /// else the request's `now` (docs/capacity.md), else the clock (read now: a
    /// rule that asks reads it once).
    #[inline]
    pub fn now(&self) -> Timestamp {
        match (self.store, self.request.now) {
            (Some(view), _) => view.now,
            (None, Some(now)) => now,
            (None, None) => crate::capacity::clock(),
        }
    }

    /// The request's contact's last inbound message on this location and
    /// channel (an `inbound` event, docs/live-state.md), from the context's
    /// [`InboundLog`]. [`Inbound::NoSource`] when the context has none (a
    /// plan without a capacity store).
    pub fn last_inbound(&self) -> Inbound {
        let Some(InboundSource(log)) = self.inbound else { return Inbound::NoSource };
        let Some(contact) = self.contact_id() else { return Inbound::NoContact };
        let key = ConversationKey { location: self.location, channel: self.channel.id(), contact };
        match log.last_inbound(&key) {
            Ok(Some(last)) => Inbound::Last(last),
            Ok(None) => Inbound::Never,
            Err(e) => Inbound::Unavailable(e),
        }
    }

    /// This context with `store` to read day counts and conversation memory
    /// from, for `location` at `now`: for unit tests of a rule that reads
    /// the store, and for hosts that evaluate one rule outside a plan.
    pub fn with_store(mut self, store: &'a dyn CapacityStore, location: &'a Location, now: Timestamp) -> Self {
        self.store = Some(StoreView { store, location, now });
        self
    }

    /// The decisions `instance` made in the current day window of the
    /// location's timezone, read from the plan's capacity store (docs/capacity.md,
    /// `least_used`). `None` without a store (or a context built by hand),
    /// or when the store cannot answer.
    pub fn day_count(&self, instance: &Instance) -> Option<u64> {
        let view = self.store?;
        let request = ReservationRequest::new(view.location.id(), view.location.timezone(), instance.id(), view.now);
        view.store.usage(&request).ok().map(|u| u.instance.day)
    }

    /// The instance remembered for the request's contact on this channel
    /// (docs/capacity.md, `conversation`), read from the plan's store as of the
    /// decision's instant. [`Recall::Nothing`] without a contact id, or
    /// when the chain reads no memory (no rule answers
    /// [`SelectionRule::memory_ttl`]) or the context was built by hand.
    pub fn recall(&self) -> Recall<'a> {
        let Some(view) = self.store else { return Recall::Nothing };
        let Some(contact) = self.contact_id() else { return Recall::Nothing };
        let key = ConversationKey { location: self.location, channel: self.channel.id(), contact };
        match view.store.recall(&key, view.now) {
            Ok(None) => Recall::Nothing,
            Ok(Some(id)) => match self.instances.iter().find(|i| i.id() == id) {
                Some(instance) => Recall::Instance(instance),
                None => Recall::Gone(id),
            },
            Err(e) => Recall::Unavailable(e),
        }
    }

    /// The request's contact id, when it has a non-empty one: the key of
    /// conversation memory and of `contacts_per_day`.
    pub fn contact_id(&self) -> Option<&'a str> {
        self.request.contact_id()
    }

    /// Why `instance` cannot be selected in this decision because it, or
    /// its pool, reached a limit (`wa-1 at capacity: 1000/1000 today`);
    /// `None` when it is not known to be at capacity.
    ///
    /// The evaluator reserves a rule's selected instance; when the
    /// reservation is refused it consults the rule again with that instance
    /// listed here. A rule with several candidates (`any_available`) skips
    /// those listed and picks the next; a rule with one candidate may ignore
    /// this: selecting a listed instance again makes it unusable with kind
    /// `instance_at_capacity`.
    pub fn at_capacity(&self, instance: &Instance) -> Option<&'a str> {
        self.at_capacity.iter().find(|(i, _)| i.id() == instance.id()).map(|(_, why)| why.as_str())
    }

    /// Every instance found at capacity so far in this decision, with why.
    pub fn at_capacity_all(&self) -> &'a [(Arc<Instance>, String)] {
        self.at_capacity
    }

    /// The request being routed.
    pub fn request(&self) -> &'a Request {
        self.request
    }
    /// The location id.
    #[inline]
    pub fn location(&self) -> &'a str {
        self.location
    }
    /// The original body (patterns included).
    #[inline]
    pub fn body(&self) -> &'a str {
        &self.request.body
    }
    /// The contact, if the request has one.
    #[inline]
    pub fn contact(&self) -> Option<&'a Contact> {
        self.request.contact.as_ref()
    }
    /// The sending channel.
    #[inline]
    pub fn channel(&self) -> &'a ChannelInfo {
        self.channel
    }
    /// The location's instances on the sending channel.
    #[inline]
    pub fn instances(&self) -> InstanceView<'a> {
        self.instances
    }
    /// The sending channel's patterns of one kind, in body order.
    #[inline]
    pub fn patterns(&self, kind: PatternKind) -> impl Iterator<Item = &'a PatternMatch> + 'a {
        self.scan.of(self.channel_position, kind)
    }
    /// The text of a pattern as written.
    #[inline]
    pub fn pattern_text(&self, m: &PatternMatch) -> &'a str {
        self.scan.text(m)
    }
}

/// The type of a rule option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// Any string.
    String,
    /// A list of strings.
    StringList,
    /// A duration: a whole number and a unit `s`, `m`, `h` or `d` (`30m`,
    /// `24h`), or a bare `0`; the rule reads the text (and says whether
    /// `0` is allowed).
    Duration,
}

impl OptionKind {
    /// Checks a value written for the option `name` of rule `rule` against
    /// this kind: the typed value, or what is wrong (`` `rule.name` must be
    /// … ``, naming what was written, with a "did you mean" for a choice
    /// that is close to one).
    pub fn check(self, rule: &str, name: &str, value: &Written<'_>) -> Result<OptionValue, String> {
        match (self, value) {
            (OptionKind::Choice(choices), Written::Str(s)) if choices.contains(s) => {
                Ok(OptionValue::Str((*s).to_owned()))
            }
            (OptionKind::Choice(choices), other) => {
                let hint = match other {
                    Written::Str(s) => crate::suggest::suggestion(s, choices.iter().copied()),
                    _ => String::new(),
                };
                Err(format!("`{rule}.{name}` must be one of {}; got {other}{hint}", choices.join(", ")))
            }
            (OptionKind::Bool, Written::Bool(b)) => Ok(OptionValue::Bool(*b)),
            (OptionKind::Integer, Written::Int(i)) => Ok(OptionValue::Int(*i)),
            (OptionKind::String | OptionKind::Duration, Written::Str(s)) => Ok(OptionValue::Str((*s).to_owned())),
            (OptionKind::Duration, Written::Int(0)) => Ok(OptionValue::Str("0".to_owned())),
            (OptionKind::StringList, Written::List(items)) => items
                .iter()
                .map(|i| match i {
                    Written::Str(s) => Ok((*s).to_owned()),
                    other => Err(format!("`{rule}.{name}` is a list of strings; found {other} in it")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(OptionValue::List),
            (kind, other) => {
                let want = match kind {
                    OptionKind::Bool => "`true` or `false`",
                    OptionKind::Integer => "a whole number",
                    OptionKind::String => "a string",
                    OptionKind::Duration => "a duration: a whole number and a unit s, m, h or d (`30m`, `24h`)",
                    _ => "a list of strings",
                };
                Err(format!("`{rule}.{name}` must be {want}; got {other}"))
            }
        }
    }
}

/// A value as a file wrote it, before [`OptionKind::check`]: its shape,
/// and for any other value the words that name it in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<'a> {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A string.
    Str(&'a str),
    /// A list.
    List(Vec<Written<'a>>),
    /// Anything else, as a message names it (`an empty value`, `a map`,
    /// `a decimal number`).
    Other(&'static str),
}

/// How a value is named in a message: `` `skipp` ``, `a list`, `a map`.
impl fmt::Display for Written<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Written::Bool(b) => write!(f, "`{b}`"),
            Written::Int(i) => write!(f, "`{i}`"),
            Written::Str(s) => write!(f, "`{s}`"),
            Written::List(_) => f.write_str("a list"),
            Written::Other(what) => f.write_str(what),
        }
    }
}

/// One option a rule accepts in rules.yaml (besides `enabled` and
/// `on_unavailable`, which every rule has where they apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The key in rules.yaml.
    pub name: &'static str,
    /// Its type.
    pub kind: OptionKind,
    /// The value used when the option is absent, as written in YAML
    /// (`lowest_index`, `false`, `[mon, fri]`). The rules.yaml compiler
    /// applies it (`switchboard_files::option_default`), so a rule reads every option that has
    /// one from its [`RuleOptions`]. Text that is not a value of the
    /// option's kind, such as `(required)`, or an empty text, only documents
    /// that there is no default.
    pub default: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A typed option value from rules.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// A `Choice` or `String`.
    Str(String),
    /// A `Bool`.
    Bool(bool),
    /// An `Integer`.
    Int(i64),
    /// A `StringList`.
    List(Vec<String>),
}

/// The options given to one rule entry, already checked against its
/// [`OptionSpec`]s. A rule's `build` function reads them by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleOptions {
    pub(crate) values: Vec<(String, OptionValue)>,
}

impl RuleOptions {
    /// Options from name/value pairs (tests and hosts).
    pub fn from_pairs(values: impl IntoIterator<Item = (String, OptionValue)>) -> RuleOptions {
        RuleOptions { values: values.into_iter().collect() }
    }
    /// The raw value of an option, if given.
    pub fn get(&self, name: &str) -> Option<&OptionValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// A string or choice option, if given.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(OptionValue::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// A boolean option, if given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(OptionValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    /// An integer option, if given.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(OptionValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
    /// A list option, if given.
    pub fn list(&self, name: &str) -> Option<&[String]> {
        match self.get(name) {
            Some(OptionValue::List(l)) => Some(l),
            _ => None,
        }
    }
    /// Every option given, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OptionValue)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v))
    }
}

/// Builds a rule from its checked options; an `Err` is shown to the
/// operator at the rule's entry in rules.yaml.
pub type BuildFn = fn(&RuleOptions) -> Result<Box<dyn SelectionRule>, String>;

/// A rule submitted with [`crate::register_rule!`]; collected by `inventory`
/// and frozen into a [`crate::Registry`] at start-up.
#[derive(Debug, Clone, Copy)]
pub struct RuleDescriptor {
    /// The id used in rules.yaml and in decisions (`snake_case`).
    pub id: &'static str,
    /// One line for `switchboard rules`.
    pub summary: &'static str,
    /// The error code the rule's failures carry (101–106; plugins ≥ 1000).
    pub code: u32,
    /// The default of `on_unavailable`, or `None` when the rule has no
    /// unusable case (then the option is not accepted).
    pub on_unavailable: Option<OnUnavailable>,
    /// The options the rule accepts.
    pub options: &'static [OptionSpec],
    /// Builds the rule.
    pub build: BuildFn,
    /// The crate that registered it.
    pub source: &'static str,
}

inventory::collect!(RuleDescriptor);

/// Registers a rule with every registry built from inventory. Takes the
/// fields of [`RuleDescriptor`] except `source`, which is the calling crate.
///
/// ```ignore
/// switchboard_core::register_rule! {
///     id: "first_connected",
///     summary: "the lowest-indexed connected instance",
///     code: 1001,
///     on_unavailable: None,
///     options: &[],
///     build: |_| Ok(Box::new(FirstConnected)),
/// }
/// ```
#[macro_export]
macro_rules! register_rule {
    ($($field:ident : $value:expr),+ $(,)?) => {
        $crate::inventory::submit! {
            $crate::RuleDescriptor { $($field: $value,)+ source: env!("CARGO_PKG_NAME") }
        }
    };
}

#[cfg(test)]
mod error_kind_tests {
    use super::*;

    /// Each built-in kind's place in [`ErrorKind::BUILTIN`]. The match has
    /// no wildcard: adding a kind fails to compile until it is given the
    /// next place here (and then `BUILTIN` must list it there).
    fn place(kind: &ErrorKind) -> Option<usize> {
        Some(match kind {
            ErrorKind::InvalidRequest => 0,
            ErrorKind::UnknownChannel => 1,
            ErrorKind::UnknownLocation => 2,
            ErrorKind::InstanceNotFound => 3,
            ErrorKind::InstanceDisconnected => 4,
            ErrorKind::ConflictingOverride => 5,
            ErrorKind::NoInstanceAvailable => 6,
            ErrorKind::InstanceAtCapacity => 7,
            ErrorKind::CapacityExhausted => 8,
            ErrorKind::StoreUnavailable => 9,
            ErrorKind::OutsideSendWindow => 10,
            ErrorKind::InstanceQuarantined => 11,
            ErrorKind::Custom(_) => return None,
        })
    }
    const LAST_PLACE: usize = 11;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        assert_eq!(ErrorKind::BUILTIN.len(), LAST_PLACE + 1, "BUILTIN lists every built-in kind");
        for (n, kind) in ErrorKind::BUILTIN.iter().enumerate() {
            assert_eq!(place(kind), Some(n), "{kind} is listed at its place");
        }
        let custom =
            [ErrorKind::Custom(Cow::Borrowed("closed_for_lunch")), ErrorKind::Custom(Cow::Borrowed("plugin_panic"))];
        for kind in ErrorKind::BUILTIN.iter().chain(&custom) {
            assert_eq!(ErrorKind::from_name(kind.as_str()), *kind, "{kind}");
        }
        assert_eq!(ErrorKind::from_name("Instance_Disconnected").as_str(), "Instance_Disconnected", "names are exact");
    }
}

#[cfg(test)]
mod option_kind_tests {
    use super::*;

    #[test]
    fn a_value_of_its_kind_is_typed_and_any_other_is_named_in_the_message() {
        let strategy = OptionKind::Choice(&["lowest_index", "least_used"]);
        assert_eq!(strategy.check("r", "o", &Written::Str("least_used")), Ok(OptionValue::Str("least_used".into())));
        assert_eq!(
            strategy.check("r", "o", &Written::Str("least_usd")),
            Err("`r.o` must be one of lowest_index, least_used; got `least_usd` (did you mean `least_used`?)".into())
        );
        assert_eq!(
            strategy.check("r", "o", &Written::Other("a map")),
            Err("`r.o` must be one of lowest_index, least_used; got a map".into())
        );
        assert_eq!(OptionKind::Bool.check("r", "o", &Written::Bool(true)), Ok(OptionValue::Bool(true)));
        assert_eq!(OptionKind::Integer.check("r", "o", &Written::Int(-3)), Ok(OptionValue::Int(-3)));
        assert_eq!(
            OptionKind::Integer.check("r", "o", &Written::Str("3")),
            Err("`r.o` must be a whole number; got `3`".into())
        );
        assert_eq!(
            OptionKind::String.check("r", "o", &Written::Other("an empty value")),
            Err("`r.o` must be a string; got an empty value".into())
        );
        let days = Written::List(vec![Written::Str("mon"), Written::Str("fri")]);
        assert_eq!(
            OptionKind::StringList.check("r", "o", &days),
            Ok(OptionValue::List(vec!["mon".into(), "fri".into()]))
        );
        assert_eq!(
            OptionKind::StringList.check("r", "o", &Written::List(vec![Written::Str("mon"), Written::Int(5)])),
            Err("`r.o` is a list of strings; found `5` in it".into())
        );
        assert_eq!(
            OptionKind::StringList.check("r", "o", &Written::Bool(false)),
            Err("`r.o` must be a list of strings; got `false`".into())
        );
    }
}
