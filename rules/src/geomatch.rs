//! `geomatch` (docs/recipient-rules.md; no code, not in the default order): local
//! presence. Among the channel's usable instances, those whose number
//! shares the contact's area code (North American numbers), else those in
//! the contact's country; among equals, `strategy` picks.
//!
//! ```yaml
//! rules:
//!   - manual_override
//!   - temporary_switch
//!   - rule: geomatch
//!     level: area_code      # area_code (then country) | country
//!     strategy: sticky      # as any_available; default sticky
//!   - any_available
//! ```
//!
//! Numbers are parsed with libphonenumber's metadata (the `phonenumber`
//! crate): a contact's the first time the rule sees it (then kept in the
//! rule's bounded [`PhoneCache`]), read in the location's `country` when
//! written in national format; each instance's once, the first time it is
//! asked ([`switchboard_core::Instance::geo`]).

use std::fmt::Write as _;
use std::sync::Arc;

use smallvec::SmallVec;
use switchboard_core::recipient::PhoneCache;
use switchboard_core::{
    register_rule, Instance, OptionKind, OptionSpec, Outcome, RuleContext, RuleOptions, SelectionRule,
};

use crate::any_available::{AnyAvailable, Strategy, STRATEGIES};

/// The rule id.
pub const ID: &str = "geomatch";
/// Its error code: the rule never fails, so none of its own (the code of
/// the registry's descriptor is only shown by `switchboard rules`).
pub const CODE: u32 = 0;

/// The instances that match at one step (kept inline: a location has a
/// few numbers per area code).
type Matches<'a> = SmallVec<[&'a Arc<Instance>; 8]>;

/// How local a match must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// The contact's area code first, then its country.
    #[default]
    AreaCode,
    /// Its country only.
    Country,
}

const LEVELS: &[&str] = &["area_code", "country"];

/// The rule: its level, the strategy that picks among equals, and the
/// contacts' numbers it has parsed.
#[derive(Debug)]
pub struct Geomatch {
    level: Level,
    picker: AnyAvailable,
    phones: PhoneCache,
}

impl Geomatch {
    /// The rule at `level`, picking among equals with `strategy`.
    pub fn new(level: Level, strategy: Strategy) -> Geomatch {
        Geomatch { level, picker: AnyAvailable::new(strategy), phones: PhoneCache::default() }
    }
}

impl Default for Geomatch {
    fn default() -> Geomatch {
        Geomatch::new(Level::AreaCode, Strategy::Sticky)
    }
}

impl SelectionRule for Geomatch {
    fn reads_usage(&self) -> bool {
        self.picker.strategy() == Strategy::LeastUsed
    }

    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        // (Some character not whitespace: `!p.trim().is_empty()`, without
        // walking back from the end.)
        let Some(text) =
            cx.contact().and_then(|c| c.phone.as_deref()).filter(|p| p.chars().any(|c| !c.is_whitespace()))
        else {
            return Outcome::no_match_because("the contact has no phone: no local match to look for");
        };
        let country = cx.site().and_then(|l| l.country());
        let phone = match self.phones.geo(text, country) {
            Ok(phone) => phone,
            Err(e) => {
                let hint = match country {
                    Some(_) => "",
                    None => "; a number in national format needs the location's `country`",
                };
                return Outcome::no_match_because(format!("the contact's {e}{hint}"));
            }
        };
        // Usable: connected, with a phone, not found at capacity in this
        // decision (most decisions found none: nothing to look up), by
        // ascending index.
        let none_full = cx.at_capacity_all().is_empty();
        let usable = || {
            cx.instances()
                .available()
                .filter(move |i| none_full || cx.at_capacity(i).is_none())
                .filter_map(move |i| Some((i, i.geo(country)?)))
        };
        let channel = cx.channel().id();
        let area = phone.area_code.filter(|_| self.level == Level::AreaCode);
        if let Some(area) = area {
            let local = usable()
                .filter(|(_, g)| g.calling_code == phone.calling_code && g.area_code == Some(area))
                .map(|(i, _)| i);
            let what = |note: &mut String| {
                note.push_str("area code ");
                push_number(note, u64::from(area), 3);
                note.push_str(" of the contact's ");
                note.push_str(text);
            };
            if let Some(outcome) = self.pick(cx, local, what) {
                return outcome;
            }
        }
        let (code, region) = (phone.calling_code, phone.region);
        let Some(region) = region else {
            return Outcome::no_match_because(format!(
                "{}the contact's {text} (+{code}) is in no country libphonenumber knows",
                area.map_or_else(String::new, |a| format!("no usable {channel} instance has area code {a:03}; "))
            ));
        };
        let national = usable().filter(|(_, g)| g.calling_code == code && g.region == Some(region)).map(|(i, _)| i);
        if let Some(outcome) =
            self.pick(cx, national, |note| _ = write!(note, "country {region:?} (+{code}) of the contact's {text}"))
        {
            return outcome;
        }
        Outcome::no_match_because(format!(
            "no usable {channel} instance {}in country {region:?} (+{code}) of the contact's {text}",
            area.map_or_else(String::new, |a| format!("has area code {a:03} or is "))
        ))
    }
}

impl Geomatch {
    /// The strategy's pick among `matches` (by ascending index), with a
    /// note saying what matched; `None` when nothing does.
    fn pick<'a>(
        &self,
        cx: &RuleContext<'a>,
        mut matches: impl Iterator<Item = &'a Arc<Instance>>,
        what: impl FnOnce(&mut String),
    ) -> Option<Outcome<'a>> {
        let (picked, how, count) = if self.picker.strategy() == Strategy::LowestIndex {
            // The first, and how many there are: nothing to collect.
            let first = matches.next()?;
            let (picked, how) = self.picker.pick(cx, &[first]);
            (picked, how, 1 + matches.count())
        } else {
            let matches: Matches<'a> = matches.collect();
            let (picked, how) = self.picker.pick(cx, &matches);
            (picked, how, matches.len())
        };
        let instance = picked?;
        // `<what>: wa-646 (#2, (646) 555-0102) (lowest index, 1 of 1
        // matching)`, written piece by piece into one allocation (the
        // formatting machinery cost more than the match itself).
        let mut note = String::with_capacity(160);
        what(&mut note);
        let phone = if instance.has_phone() { instance.phone() } else { "no phone" };
        for piece in [": ", instance.id(), " (#"] {
            note.push_str(piece);
        }
        push_number(&mut note, instance.index(), 1);
        for piece in [", ", phone, ") (", how, ", 1 of "] {
            note.push_str(piece);
        }
        push_number(&mut note, count as u64, 1);
        note.push_str(" matching)");
        Some(Outcome::selected(instance).with_detail(note))
    }
}

/// Writes `n` in decimal, with leading zeros up to `width` digits.
fn push_number(out: &mut String, n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut from = digits.len();
    let mut n = n;
    while let Some(slot) = from.checked_sub(1).and_then(|at| digits.get_mut(at)) {
        *slot = b'0' + (n % 10) as u8;
        from -= 1;
        n /= 10;
        if n == 0 && digits.len() - from >= width {
            break;
        }
    }
    digits.get(from..).unwrap_or_default().iter().for_each(|d| out.push(char::from(*d)));
}

fn build(options: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
    let level = match options.str("level").unwrap_or("area_code") {
        "country" => Level::Country,
        _ => Level::AreaCode,
    };
    let name = options.str("strategy").unwrap_or("sticky");
    let strategy = Strategy::parse(name).ok_or_else(|| format!("unknown strategy `{name}`"))?;
    Ok(Box::new(Geomatch::new(level, strategy)))
}

register_rule! {
    id: ID,
    summary: "local presence: an instance sharing the contact's area code, else its country",
    code: CODE,
    on_unavailable: None,
    options: &[
        OptionSpec {
            name: "level",
            kind: OptionKind::Choice(LEVELS),
            default: "area_code",
            doc: "area_code: the contact's area code (+1 numbers), then its country; country: its country only",
        },
        OptionSpec {
            name: "strategy",
            kind: OptionKind::Choice(STRATEGIES),
            default: "sticky",
            doc: "how to pick among instances that match equally (as any_available)",
        },
    ],
    build: build,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{recipient, run_world, Answer::*};

    /// New York (212 and its overlay 646), Los Angeles, Toronto, London;
    /// one New York number disconnected, one without a phone.
    const WORLD: &str = r#"{"locations":[{"id":"loc_1","country":"US","instances":[
        {"id":"ny-212","channel":"whatsapp","index":1,"phone":"+1 212 555 0101","connected":true},
        {"id":"ny-212-off","channel":"whatsapp","index":2,"phone":"+1 212 555 0102","connected":false},
        {"id":"la-310","channel":"whatsapp","index":3,"phone":"(310) 555-0103","connected":true},
        {"id":"to-416","channel":"whatsapp","index":4,"phone":"+1 416 555 0104","connected":true},
        {"id":"uk","channel":"whatsapp","index":5,"phone":"+44 20 7946 0958","connected":true},
        {"id":"nophone","channel":"whatsapp","index":6,"connected":true},
        {"id":"sms-646","channel":"sms","index":1,"phone":"+1 646 555 0199","connected":true}
    ]}]}"#;

    fn geomatch(phone: Option<&str>) -> (crate::testing::Answer, String) {
        let seen = run_world(&Geomatch::default(), WORLD, recipient("c1", phone, None), None, None);
        (seen.answer, seen.text)
    }

    #[test]
    fn the_area_code_matches_first() {
        let (answer, note) = geomatch(Some("+1 (212) 555-7000"));
        assert_eq!(answer, Selected("ny-212"));
        assert!(note.starts_with("area code 212 of the contact's +1 (212) 555-7000: ny-212"), "{note}");
        // Written in national format, read in the location's country; the
        // instance `la-310` is in national format too.
        assert_eq!(geomatch(Some("310-555-7000")).0, Selected("la-310"));
    }

    #[test]
    fn the_note_says_what_matched_which_was_picked_and_among_how_many() {
        let run = |strategy, phone| {
            let rule = Geomatch::new(Level::AreaCode, strategy);
            run_world(&rule, WORLD, recipient("c1", Some(phone), None), None, None).text
        };
        assert_eq!(
            run(Strategy::LowestIndex, "+1 (212) 555-7000"),
            "area code 212 of the contact's +1 (212) 555-7000: ny-212 (#1, +1 212 555 0101) (lowest index, 1 of 1 \
             matching)"
        );
        assert_eq!(
            run(Strategy::Sticky, "+1 646 555 7000"),
            "country US (+1) of the contact's +1 646 555 7000: ny-212 (#1, +1 212 555 0101) (sticky to the contact, 1 \
             of 2 matching)"
        );
        assert_eq!(
            run(Strategy::LowestIndex, "+1 646 555 7000"),
            "country US (+1) of the contact's +1 646 555 7000: ny-212 (#1, +1 212 555 0101) (lowest index, 1 of 2 \
             matching)"
        );
    }

    #[test]
    fn numbers_are_written_in_decimal_with_leading_zeros_to_the_width() {
        let written = |n, width| {
            let mut s = String::new();
            push_number(&mut s, n, width);
            s
        };
        assert_eq!(written(0, 1), "0");
        assert_eq!(written(7, 3), "007");
        assert_eq!(written(212, 3), "212");
        assert_eq!(written(1234, 3), "1234");
        assert_eq!(written(u64::MAX, 1), u64::MAX.to_string());
    }

    #[test]
    fn an_overlay_is_another_area_code_but_the_same_country() {
        // 646 overlays 212 (Manhattan); only the first three digits count,
        // and the sms 646 number is on another channel.
        let (answer, note) = geomatch(Some("+1 646 555 7000"));
        assert_eq!(answer, Selected("ny-212"), "{note}");
        assert!(note.starts_with("country US (+1)"), "{note}");
    }

    #[test]
    fn other_countries_match_by_country() {
        let (answer, note) = geomatch(Some("+44 7400 123456"));
        assert_eq!(answer, Selected("uk"), "{note}");
        // Canada shares +1 with the US but is another country.
        assert_eq!(geomatch(Some("+1 604 555 7000")).0, Selected("to-416"));
        let (answer, note) = geomatch(Some("+33 1 42 68 53 00"));
        assert_eq!(answer, NoMatch);
        assert!(note.contains("no usable whatsapp instance in country FR (+33)"), "{note}");
    }

    #[test]
    fn level_country_skips_the_area_code() {
        let rule = Geomatch::new(Level::Country, Strategy::LowestIndex);
        let seen = run_world(&rule, WORLD, recipient("c1", Some("+1 310 555 7000"), None), None, None);
        assert_eq!(seen.answer, Selected("ny-212"), "{}", seen.text);
    }

    #[test]
    fn no_phone_or_an_unreadable_one_is_no_match_saying_which() {
        let (answer, note) = geomatch(None);
        assert_eq!(answer, NoMatch);
        assert!(note.contains("has no phone"), "{note}");
        let (answer, note) = geomatch(Some("call me"));
        assert_eq!(answer, NoMatch);
        assert!(note.contains("phone `call me` does not parse"), "{note}");
        // Without the location's country, a national number does not parse.
        let world = WORLD.replace(r#""country":"US","#, "");
        let seen = run_world(&Geomatch::default(), &world, recipient("c1", Some("(212) 555-7000"), None), None, None);
        assert_eq!(seen.answer, NoMatch);
        assert!(seen.text.contains("needs the location's `country`"), "{}", seen.text);
    }

    #[test]
    fn disconnected_local_instances_are_not_usable() {
        let world = WORLD
            .replace(r#""phone":"+1 212 555 0101","connected":true"#, r#""phone":"+1 212 555 0101","connected":false"#);
        let seen = run_world(&Geomatch::default(), &world, recipient("c1", Some("+1 212 555 7000"), None), None, None);
        // Both 212 numbers are down: another US number.
        assert_eq!(seen.answer, Selected("la-310"), "{}", seen.text);
    }

    #[test]
    fn sticky_keeps_a_contact_on_one_of_several_local_numbers() {
        let world = r#"{"locations":[{"id":"loc_1","instances":[
            {"id":"a","channel":"whatsapp","phone":"+1 212 555 0101","connected":true},
            {"id":"b","channel":"whatsapp","phone":"+1 212 555 0102","connected":true},
            {"id":"c","channel":"whatsapp","phone":"+1 212 555 0103","connected":true}]}]}"#;
        let mut seen = std::collections::HashSet::new();
        for n in 0..40 {
            let contact = recipient(&format!("c{n}"), Some("+1 212 555 7000"), None);
            let first = run_world(&Geomatch::default(), world, contact.clone(), None, None).answer;
            assert_eq!(run_world(&Geomatch::default(), world, contact, None, None).answer, first);
            seen.insert(first);
        }
        assert_eq!(seen.len(), 3, "contacts spread over the local numbers: {seen:?}");
    }
}
