//! Test helpers: run one rule on inline instances and summarize its answer.

use std::sync::Arc;

use switchboard_core::capacity::jiff::Timestamp;
use switchboard_core::{
    CapacityStore, Contact, InstanceSpec, Location, Outcome, Registry, Request, RuleContext, SelectionRule,
};

/// An owned summary of an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Answer {
    Selected(&'static str),
    NoMatch,
    Unusable(&'static str),
    Failed(&'static str),
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

pub(crate) fn registry() -> Arc<Registry> {
    switchboard_channels::link();
    crate::link();
    Arc::new(Registry::from_inventory().unwrap())
}

/// Runs `rule` for a message on `channel` with `body`, the location holding
/// `instances` (a JSON list of instance specs).
pub(crate) fn run(
    rule: &dyn SelectionRule,
    instances: &str,
    channel: &str,
    body: &str,
    contact: Option<Contact>,
) -> Answer {
    run_with_message(rule, instances, channel, body, contact).0
}

/// As [`run`], with the message of an unusable or failed outcome.
pub(crate) fn run_with_message(
    rule: &dyn SelectionRule,
    instances: &str,
    channel: &str,
    body: &str,
    contact: Option<Contact>,
) -> (Answer, String) {
    run_full(rule, None, instances, channel, body, contact)
}

/// Runs `rule` for a whatsapp message "hi" with `store` (read as of `now`)
/// behind the context.
pub(crate) fn run_with_store(
    rule: &dyn SelectionRule,
    store: &dyn CapacityStore,
    now: Timestamp,
    instances: &str,
    contact: Option<Contact>,
) -> Answer {
    run_on_channel_with_store(rule, store, now, instances, "whatsapp", contact)
}

/// As [`run_with_store`], on `channel`.
pub(crate) fn run_on_channel_with_store(
    rule: &dyn SelectionRule,
    store: &dyn CapacityStore,
    now: Timestamp,
    instances: &str,
    channel: &str,
    contact: Option<Contact>,
) -> Answer {
    run_full(rule, Some((store, now)), instances, channel, "hi", contact).0
}

fn run_full(
    rule: &dyn SelectionRule,
    store: Option<(&dyn CapacityStore, Timestamp)>,
    instances: &str,
    channel: &str,
    body: &str,
    contact: Option<Contact>,
) -> (Answer, String) {
    let registry = registry();
    let specs: Vec<InstanceSpec> = serde_json_from(instances);
    let location = Location::from_specs("loc_1", &specs, &registry).unwrap();
    let request = Request {
        location: "loc_1".into(),
        channel: channel.into(),
        body: body.into(),
        contact,
        instances: None,
        now: None,
        message_id: None,
    };
    let position = registry.channel_position(channel).unwrap();
    let syntax = &registry.channels()[position];
    let scan = registry.scanner().scan(&request.body);
    let mut cx = RuleContext::new(&request, syntax, position, location.channel(syntax.id()), &scan);
    if let Some((store, now)) = store {
        cx = cx.with_store(store, &location, now);
    }
    let outcome = rule.evaluate(&cx);
    let message = match &outcome {
        Outcome::Unusable { message, .. }
        | Outcome::Failed { message, .. }
        | Outcome::FailedWithCode { message, .. } => message.clone(),
        _ => String::new(),
    };
    let answer = match outcome {
        Outcome::Selected { instance, .. } => Answer::Selected(leak(instance.id())),
        Outcome::NoMatch { .. } => Answer::NoMatch,
        Outcome::Unusable { kind, .. } => Answer::Unusable(leak(kind.as_str())),
        Outcome::Failed { kind, .. } | Outcome::FailedWithCode { kind, .. } => Answer::Failed(leak(kind.as_str())),
    };
    (answer, message)
}

fn serde_json_from(text: &str) -> Vec<InstanceSpec> {
    let request = format!(r#"{{"location":"x","channel":"sms","body":"","instances":{text}}}"#);
    Request::from_json(&request).unwrap().instances.unwrap()
}

/// A contact with these tags and assigned user.
pub(crate) fn contact(id: &str, tags: &[&str], user: Option<&str>) -> Option<Contact> {
    Some(Contact {
        id: Some(id.to_owned()),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        assigned_user: user.map(str::to_owned),
        phone: None,
        timezone: None,
    })
}

/// What [`run_world`] saw: the answer, the message of an unusable or
/// failed outcome or the note of another, and a failure's `retry_at`.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) answer: Answer,
    pub(crate) text: String,
    pub(crate) retry_at: Option<Timestamp>,
}

/// Runs `rule` for a whatsapp message "hi" in location `loc_1` of the world
/// file `world` (JSON), with `contact`, deciding as of `now` (else the
/// clock), reading inbound messages from `inbound`.
pub(crate) fn run_world(
    rule: &dyn SelectionRule,
    world: &str,
    contact: Option<Contact>,
    now: Option<Timestamp>,
    inbound: Option<&dyn switchboard_core::InboundLog>,
) -> Seen {
    let registry = registry();
    let world = switchboard_files::read_world(world, "world.json", &registry).unwrap();
    let location = world.location("loc_1").unwrap();
    let request = Request {
        location: "loc_1".into(),
        channel: "whatsapp".into(),
        body: "hi".into(),
        contact,
        instances: None,
        now,
        message_id: None,
    };
    let position = registry.channel_position("whatsapp").unwrap();
    let syntax = &registry.channels()[position];
    let scan = registry.scanner().scan(&request.body);
    let mut cx =
        RuleContext::new(&request, syntax, position, location.channel(syntax.id()), &scan).with_location(location);
    if let Some(log) = inbound {
        cx = cx.with_inbound(log);
    }
    let outcome = rule.evaluate(&cx);
    match outcome {
        Outcome::Selected { instance, detail } => {
            Seen { answer: Answer::Selected(leak(instance.id())), text: detail.unwrap_or_default(), retry_at: None }
        }
        Outcome::NoMatch { detail } => {
            Seen { answer: Answer::NoMatch, text: detail.unwrap_or_default(), retry_at: None }
        }
        Outcome::Unusable { kind, message } => {
            Seen { answer: Answer::Unusable(leak(kind.as_str())), text: message, retry_at: None }
        }
        Outcome::Failed { kind, message, retry_at } => {
            Seen { answer: Answer::Failed(leak(kind.as_str())), text: message, retry_at: retry_at.map(|t| *t) }
        }
        Outcome::FailedWithCode { kind, message, .. } => {
            Seen { answer: Answer::Failed(leak(kind.as_str())), text: message, retry_at: None }
        }
    }
}

/// A contact with an id, a phone and a timezone.
pub(crate) fn recipient(id: &str, phone: Option<&str>, timezone: Option<&str>) -> Option<Contact> {
    Some(Contact {
        id: Some(id.to_owned()),
        phone: phone.map(str::to_owned),
        timezone: timezone.map(str::to_owned),
        ..Contact::default()
    })
}
