//! The pattern scanner: finds every registered channel's override and
//! temporary-switch patterns in one left-to-right pass and strips them with
//! the whitespace rule of docs/rules.md.

use regex::Regex;

use crate::ChannelSyntax;

/// Which pattern a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// `{ C#N }`: a manual override.
    Override,
    /// `{TEMP-C#N}`: a temporary switch.
    TemporarySwitch,
}

/// One pattern found in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternMatch {
    /// Byte range of the whole pattern (braces included) in the body.
    pub start: usize,
    /// End of that range (exclusive).
    pub end: usize,
    /// Position of the pattern's channel in the registry's channel list.
    pub channel: usize,
    /// Override or temporary switch.
    pub kind: PatternKind,
    /// The index it names; `None` when the number is too large for any index.
    pub index: Option<u64>,
}

/// A compiled scanner for a fixed set of channels.
#[derive(Debug, Clone)]
pub struct Scanner {
    regex: Option<Regex>,
    /// Upper-cased code of each channel, in registry order.
    codes: Vec<String>,
}

impl Scanner {
    /// Compiles one regex for all the channels' patterns. Double-brace forms
    /// come first in the alternation, so where both could match at one
    /// position the double-brace form wins (leftmost-first semantics).
    pub fn new<'c>(channels: impl IntoIterator<Item = &'c dyn ChannelSyntax>) -> Scanner {
        let mut codes = Vec::new();
        let mut alternatives = Vec::new();
        for channel in channels {
            let code = channel.code().to_ascii_uppercase();
            if channel.has_override() {
                alternatives.push(regex::escape(&code));
            }
            if channel.has_temporary_switch() {
                alternatives.push(format!("TEMP-{}", regex::escape(&code)));
            }
            codes.push(code);
        }
        let regex = if alternatives.is_empty() {
            None
        } else {
            let alt = alternatives.join("|");
            let inner = format!("[ \\t]*(?:{alt})#[0-9]+[ \\t]*");
            // Codes are validated ASCII alphanumerics (see the registry), so
            // this pattern always compiles; a failure leaves the scanner
            // empty rather than panicking.
            Regex::new(&format!("(?i-u)\\{{\\{{{inner}\\}}\\}}|\\{{{inner}\\}}")).ok()
        };
        Scanner { regex, codes }
    }

    /// Finds every pattern in `body`, left to right, without overlaps.
    pub fn scan<'b>(&self, body: &'b str) -> Scan<'b> {
        self.scan_at_most(body, usize::MAX)
    }

    /// Like [`Scanner::scan`], stopping after `limit` patterns (a hostile
    /// body cannot make the scan allocate without bound).
    pub fn scan_at_most<'b>(&self, body: &'b str, limit: usize) -> Scan<'b> {
        let mut matches = Vec::new();
        // Every pattern starts with `{`: most bodies have none (memchr).
        let first = memchr::memchr(b'{', body.as_bytes());
        if let (Some(regex), Some(_)) = (&self.regex, first) {
            for m in regex.find_iter(body) {
                if matches.len() >= limit {
                    break;
                }
                if let Some(found) = self.interpret(m.as_str(), m.start(), m.end()) {
                    matches.push(found);
                }
            }
        }
        Scan { body, matches }
    }

    fn interpret(&self, text: &str, start: usize, end: usize) -> Option<PatternMatch> {
        let inner = text.trim_start_matches('{').trim_end_matches('}');
        let inner = inner.trim_matches([' ', '\t']);
        let (code_part, digits) = inner.split_once('#')?;
        let (kind, code) = match code_part.get(..5) {
            Some(head) if head.eq_ignore_ascii_case("TEMP-") => (PatternKind::TemporarySwitch, code_part.get(5..)?),
            _ => (PatternKind::Override, code_part),
        };
        let channel = self.codes.iter().position(|c| c.eq_ignore_ascii_case(code))?;
        Some(PatternMatch { start, end, channel, kind, index: parse_index(digits) })
    }
}

/// Parses ASCII digits (leading zeros allowed); `None` past `u64::MAX`.
fn parse_index(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d.wrapping_sub(b'0'))))
}

/// The patterns found in one body.
#[derive(Debug, Clone)]
pub struct Scan<'b> {
    body: &'b str,
    matches: Vec<PatternMatch>,
}

impl<'b> Scan<'b> {
    /// The scanned body.
    pub fn body(&self) -> &'b str {
        self.body
    }

    /// Every match, in body order.
    #[inline]
    pub fn matches(&self) -> &[PatternMatch] {
        &self.matches
    }

    /// The matches of one channel and kind, in body order.
    #[inline]
    pub fn of(&self, channel: usize, kind: PatternKind) -> impl Iterator<Item = &PatternMatch> {
        self.matches.iter().filter(move |m| m.channel == channel && m.kind == kind)
    }

    /// The text of a match, as written in the body.
    pub fn text(&self, m: &PatternMatch) -> &'b str {
        self.body.get(m.start..m.end).unwrap_or("")
    }

    /// The body with every match removed by the whitespace rule: each
    /// pattern takes the horizontal whitespace after it, or else the
    /// whitespace before it, never reaching into a neighbouring match or an
    /// earlier removal. The result is not re-scanned.
    pub fn stripped(&self) -> String {
        if self.matches.is_empty() {
            return self.body.to_owned();
        }
        let bytes = self.body.as_bytes();
        let is_blank = |b: u8| b == b' ' || b == b'\t';
        let mut out = String::with_capacity(self.body.len());
        let mut kept_from = 0; // start of the text not yet copied
        for (i, m) in self.matches.iter().enumerate() {
            let limit = self.matches.get(i + 1).map_or(bytes.len(), |next| next.start);
            let mut after = m.end;
            while after < limit && is_blank(bytes[after]) {
                after += 1;
            }
            let (cut_start, cut_end) = if after > m.end {
                (m.start, after)
            } else {
                let mut before = m.start;
                while before > kept_from && is_blank(bytes[before - 1]) {
                    before -= 1;
                }
                (before, m.end)
            };
            out.push_str(&self.body[kept_from..cut_start]);
            kept_from = cut_end;
        }
        out.push_str(&self.body[kept_from..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ch(&'static str, &'static str, bool, bool);
    impl ChannelSyntax for Ch {
        fn id(&self) -> &str {
            self.0
        }
        fn code(&self) -> &str {
            self.1
        }
        fn tag_prefix(&self) -> &str {
            "x:"
        }
        fn has_override(&self) -> bool {
            self.2
        }
        fn has_temporary_switch(&self) -> bool {
            self.3
        }
    }
    const CHANNELS: [Ch; 3] =
        [Ch("whatsapp", "WA", true, false), Ch("imessage", "IM", true, true), Ch("sms", "SMS", false, false)];

    fn scanner() -> Scanner {
        Scanner::new(CHANNELS.iter().map(|c| c as &dyn ChannelSyntax))
    }

    fn strip(body: &str) -> String {
        scanner().scan(body).stripped()
    }

    #[test]
    fn spec_stripping_examples() {
        assert_eq!(strip("go via the 2nd instance { WA#2 }"), "go via the 2nd instance");
        assert_eq!(strip("Hello {IM#2} world"), "Hello world");
        assert_eq!(strip("{WA#2} Hi"), "Hi");
        assert_eq!(strip("a{WA#1}b"), "ab");
        assert_eq!(strip("sent {IM#2}."), "sent.");
    }

    #[test]
    fn double_braces_are_one_pattern() {
        let s = scanner();
        let scan = s.scan("x {{ WA#2 }} y");
        assert_eq!(scan.matches().len(), 1);
        assert_eq!(scan.text(&scan.matches()[0]), "{{ WA#2 }}");
        assert_eq!(scan.stripped(), "x y");
    }

    #[test]
    fn unbalanced_double_brace_matches_the_inner_single_form() {
        let s = scanner();
        let scan = s.scan("{{WA#3} hi");
        assert_eq!(scan.matches().len(), 1);
        assert_eq!(scan.matches()[0].start, 1);
        assert_eq!(scan.stripped(), "{hi");
    }

    #[test]
    fn code_is_case_insensitive_and_tabs_are_allowed() {
        let s = scanner();
        let scan = s.scan("{\twa#7 }{temp-Im#3\t}");
        let m = scan.matches();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].kind, m[0].index), (PatternKind::Override, Some(7)));
        assert_eq!((m[1].kind, m[1].index, m[1].channel), (PatternKind::TemporarySwitch, Some(3), 1));
    }

    #[test]
    fn leading_zeros_and_huge_numbers() {
        let s = scanner();
        let scan = s.scan("{WA#007} {WA#99999999999999999999999}");
        assert_eq!(scan.matches()[0].index, Some(7));
        assert_eq!(scan.matches()[1].index, None);
    }

    #[test]
    fn capabilities_a_channel_lacks_are_not_patterns() {
        assert_eq!(strip("keep {TEMP-WA#1} and {SMS#2}"), "keep {TEMP-WA#1} and {SMS#2}");
    }

    #[test]
    fn other_channels_patterns_are_stripped_too() {
        assert_eq!(strip("Hi { WA#2 } and {TEMP-IM#1} there"), "Hi and there");
    }

    #[test]
    fn runs_do_not_reach_into_neighbours_or_earlier_removals() {
        assert_eq!(strip("a {WA#1}{WA#2}"), "a");
        assert_eq!(strip("a {WA#1} {WA#1} b"), "a b");
        assert_eq!(strip("a \t{WA#1}"), "a");
    }

    #[test]
    fn not_patterns() {
        for body in ["{WA#}", "{WA 2}", "{ WA #2}", "{WA#2x}", "WA#2", "{WA#-2}", "{\nWA#2}"] {
            assert_eq!(strip(body), body, "{body}");
        }
    }

    #[test]
    fn result_is_not_rescanned() {
        assert_eq!(strip("{WA{WA#1}#2}"), "{WA#2}");
    }
}
