//! A [`Decision`]: the instance chosen for one request or the coded error,
//! the body as delivered and the trace of the rules consulted, with its
//! JSON writer (the `select` output line, byte for byte).

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};

use switchboard_core::capacity::jiff::Timestamp;
use switchboard_core::{ErrorKind, Instance};

/// The code of request errors (docs/errors.md).
pub const CODE_INVALID_REQUEST: u32 = 100;
/// The code of an exhausted chain, shared with `any_available`.
pub const CODE_NO_INSTANCE: u32 = 106;
/// The code of a capacity store that cannot answer (`fail_closed`, docs/capacity.md).
pub const CODE_STORE_UNAVAILABLE: u32 = 108;

/// What one consulted rule answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceOutcome {
    /// It chose the instance.
    Selected,
    /// It did not apply.
    NoMatch,
    /// It applied, its instance was unusable, and it is set to skip.
    FellThrough,
    /// It raised the decision's error.
    Failed,
}

impl TraceOutcome {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceOutcome::Selected => "selected",
            TraceOutcome::NoMatch => "no_match",
            TraceOutcome::FellThrough => "fell_through",
            TraceOutcome::Failed => "failed",
        }
    }
}

/// One line of a decision's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// The rule id.
    pub rule: &'static str,
    /// What it answered.
    pub outcome: TraceOutcome,
    /// A note for a person.
    pub detail: Option<String>,
}

/// A coded selection error (docs/errors.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error {code} ({kind}): {message}")]
pub struct SelectionError {
    /// The stable numeric code.
    pub code: u32,
    /// The kind.
    pub kind: ErrorKind,
    /// What happened and what to check.
    pub message: String,
    /// When trying again may succeed (code 109: the next opening of the
    /// send window, docs/recipient-rules.md); written as `retry_at`, RFC 3339 in UTC.
    /// (Boxed: rare, and every decision moves its error's room.)
    pub retry_at: Option<Box<Timestamp>>,
}

/// The answer for one request: the instance or an error, the cleaned body,
/// and the trace of the rules consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The deciding rule: the one that selected or failed; `None` for
    /// request errors and an exhausted chain.
    pub rule: Option<&'static str>,
    /// The body with every pattern removed; `None` when the request could
    /// not be read.
    pub body: Option<String>,
    /// The chosen instance, or the error.
    pub result: Result<Arc<Instance>, SelectionError>,
    /// Every enabled rule consulted, in order.
    pub trace: Vec<TraceEntry>,
    /// The request's `message_id` (docs/world.md), carried back unchanged.
    pub message_id: Option<String>,
    /// For a selected instance with a `reply_window`: whether only an
    /// approved template may go out (the contact has not written to that
    /// instance within the window). `None` for every other decision.
    pub template_required: Option<bool>,
}

impl Decision {
    /// A decision for a request that cannot be used (code 100).
    pub fn request_error(kind: ErrorKind, message: impl Into<String>, body: Option<String>) -> Decision {
        Decision {
            rule: None,
            body,
            result: Err(SelectionError { code: CODE_INVALID_REQUEST, kind, message: message.into(), retry_at: None }),
            trace: Vec::new(),
            message_id: None,
            template_required: None,
        }
    }

    /// A selection by `rule`: the instance, the delivered body and the
    /// trace up to that rule.
    #[inline]
    pub(crate) fn selected(
        rule: &'static str,
        body: String,
        instance: Arc<Instance>,
        trace: Vec<TraceEntry>,
    ) -> Decision {
        Decision {
            rule: Some(rule),
            body: Some(body),
            result: Ok(instance),
            trace,
            message_id: None,
            template_required: None,
        }
    }

    /// The decision carrying `message_id` (the request's, docs/world.md).
    #[must_use]
    pub fn with_message_id(mut self, message_id: Option<String>) -> Decision {
        self.message_id = message_id;
        self
    }

    /// Whether an instance was selected.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The selected instance.
    pub fn instance(&self) -> Option<&Arc<Instance>> {
        self.result.as_ref().ok()
    }

    /// The error.
    pub fn error(&self) -> Option<&SelectionError> {
        self.result.as_ref().err()
    }

    /// The decision as one line of JSON (docs/world.md).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        // `write_json` writes only whole UTF-8 sequences.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends the decision as one line of JSON (docs/world.md, no newline) to
    /// `out`: the very bytes of [`Decision::to_json`] (and of its
    /// `Serialize` impl through `serde_json`), written without a
    /// serializer so that a batch can reuse one buffer.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard_core::ErrorKind;
    /// use switchboard_engine::Decision;
    /// let d = Decision::request_error(ErrorKind::InvalidRequest, "no \"body\"", None);
    /// let mut out = Vec::new();
    /// d.write_json(&mut out);
    /// assert_eq!(out, d.to_json().into_bytes());
    /// assert_eq!(d.to_json(), serde_json::to_string(&d)?);
    /// # Ok(()) }
    /// ```
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, None, None);
    }

    /// [`Decision::write_json`] with `"decision_id"` and `"generation"`
    /// (each when given) as the object's first keys: the decision as the
    /// service answers it, written in one pass.
    ///
    /// ```
    /// use switchboard_core::ErrorKind;
    /// use switchboard_engine::Decision;
    /// let d = Decision::request_error(ErrorKind::InvalidRequest, "no body", None);
    /// let mut out = Vec::new();
    /// d.write_json_with(&mut out, Some("a-1"), Some(3));
    /// let plain = d.to_json();
    /// assert_eq!(out, format!("{{\"decision_id\":\"a-1\",\"generation\":3,{}", &plain[1..]).into_bytes());
    /// ```
    pub fn write_json_with(&self, out: &mut Vec<u8>, decision_id: Option<&str>, generation: Option<u64>) {
        out.push(b'{');
        if let Some(id) = decision_id {
            out.extend_from_slice(b"\"decision_id\":");
            json::string(out, id);
            out.push(b',');
        }
        if let Some(generation) = generation {
            out.extend_from_slice(b"\"generation\":");
            json::unsigned(out, generation);
            out.push(b',');
        }
        out.extend_from_slice(if self.is_ok() { b"\"ok\":true,\"rule\":" } else { b"\"ok\":false,\"rule\":" });
        match self.rule {
            Some(rule) => json::string(out, rule),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(b",\"body\":");
            json::string(out, body);
        }
        match &self.result {
            Ok(instance) => {
                out.extend_from_slice(b",\"instance\":{\"id\":");
                json::string(out, instance.id());
                out.extend_from_slice(b",\"channel\":");
                json::string(out, instance.channel());
                out.extend_from_slice(b",\"index\":");
                json::unsigned(out, instance.index());
                out.extend_from_slice(b",\"phone\":");
                json::string(out, instance.phone());
                out.push(b'}');
                if let Some(required) = self.template_required {
                    out.extend_from_slice(if required {
                        b",\"template_required\":true"
                    } else {
                        b",\"template_required\":false"
                    });
                }
            }
            Err(error) => {
                out.extend_from_slice(b",\"error\":{\"code\":");
                json::unsigned(out, u64::from(error.code));
                out.extend_from_slice(b",\"kind\":");
                json::string(out, error.kind.as_str());
                out.extend_from_slice(b",\"message\":");
                json::string(out, &error.message);
                if let Some(retry_at) = &error.retry_at {
                    out.extend_from_slice(b",\"retry_at\":");
                    json::string(out, &retry_at.to_string());
                }
                out.push(b'}');
            }
        }
        out.extend_from_slice(b",\"trace\":[");
        for (n, entry) in self.trace.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"rule\":");
            json::string(out, entry.rule);
            out.extend_from_slice(match entry.outcome {
                TraceOutcome::Selected => b",\"outcome\":\"selected\"",
                TraceOutcome::NoMatch => b",\"outcome\":\"no_match\"",
                TraceOutcome::FellThrough => b",\"outcome\":\"fell_through\"",
                TraceOutcome::Failed => b",\"outcome\":\"failed\"",
            });
            if let Some(detail) = &entry.detail {
                out.extend_from_slice(b",\"detail\":");
                json::string(out, detail);
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(id) = &self.message_id {
            out.extend_from_slice(b",\"message_id\":");
            json::string(out, id);
        }
        out.push(b'}');
    }
}

/// The JSON writer of [`Decision::write_json`], for hosts that write JSON
/// by hand on a hot path (the WebAssembly host's input): strings escaped
/// exactly as `serde_json` escapes them (`"`, `\\` and control characters
/// only; the short forms `\b \f \n \r \t`, otherwise `\u00xx` in lower
/// case).
pub mod json {
    /// Per byte: 0 when written as is, else the letter after the backslash
    /// (`u` for the `\u00xx` form).
    const ESCAPE: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut b = 0;
        while b < 0x20 {
            t[b] = b'u';
            b += 1;
        }
        t[0x08] = b'b';
        t[0x09] = b't';
        t[0x0a] = b'n';
        t[0x0c] = b'f';
        t[0x0d] = b'r';
        t[b'"' as usize] = b'"';
        t[b'\\' as usize] = b'\\';
        t
    };
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Whether any of the 8 bytes of `w` needs an escape: a byte below 0x20,
    /// a `"` or a `\\` (exact: no false positives or negatives).
    fn needs_escape(w: u64) -> bool {
        let below_space = w.wrapping_sub(ONES * 0x20) & !w;
        let quote = (w ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(w ^ (ONES * u64::from(b'"')));
        let backslash = (w ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(w ^ (ONES * u64::from(b'\\')));
        (below_space | quote | backslash) & HIGHS != 0
    }

    /// The 8 bytes at the start of `chunk` (at least 8 long) as a word.
    fn word(chunk: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&chunk[..8]);
        u64::from_le_bytes(w)
    }

    /// Whether any byte of `bytes` needs an escape, a word at a time.
    fn any_escape(bytes: &[u8]) -> bool {
        if bytes.len() < 8 {
            return bytes.iter().any(|&b| ESCAPE[usize::from(b)] != 0);
        }
        let mut chunks = bytes.chunks_exact(8);
        if chunks.by_ref().any(|c| needs_escape(word(c))) {
            return true;
        }
        // The last (overlapping) word covers the remainder.
        !chunks.remainder().is_empty() && needs_escape(word(&bytes[bytes.len() - 8..]))
    }

    /// Appends `s` as a JSON string.
    pub fn string(out: &mut Vec<u8>, s: &str) {
        let bytes = s.as_bytes();
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        if !any_escape(bytes) {
            // Nearly every string: copied as is.
            out.extend_from_slice(bytes);
            out.push(b'"');
            return;
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = ESCAPE[usize::from(b)];
            if escape == 0 {
                continue;
            }
            out.extend_from_slice(&bytes[start..i]);
            if escape == b'u' {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            } else {
                out.push(b'\\');
                out.push(escape);
            }
            start = i + 1;
        }
        out.extend_from_slice(&bytes[start..]);
        out.push(b'"');
    }

    /// Appends `n` in decimal.
    pub fn unsigned(out: &mut Vec<u8>, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them() {
            let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
            all.push_str("é✓😀 \u{7f}\u{80}\u{2028}");
            let mut cases = vec![String::new(), all.clone(), "plain text of more than eight bytes".to_owned()];
            // Every character at every offset of a word.
            for c in all.chars() {
                for pad in 0..10 {
                    cases.push(format!("{}{c}{}", "a".repeat(pad), "b".repeat(9 - pad)));
                }
            }
            for s in cases {
                let mut out = Vec::new();
                super::string(&mut out, &s);
                assert_eq!(String::from_utf8(out).ok(), serde_json::to_string(&s).ok(), "{s:?}");
            }
        }

        #[test]
        fn numbers_are_written_in_decimal() {
            for n in [0, 1, 9, 10, 99, 100, 106, 12345, u64::MAX] {
                let mut out = Vec::new();
                super::unsigned(&mut out, n);
                assert_eq!(out, n.to_string().into_bytes());
            }
        }
    }
}

struct InstanceJson<'a>(&'a Instance);

impl Serialize for InstanceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("id", self.0.id())?;
        m.serialize_entry("channel", self.0.channel())?;
        m.serialize_entry("index", &self.0.index())?;
        m.serialize_entry("phone", self.0.phone())?;
        m.end()
    }
}

struct ErrorJson<'a>(&'a SelectionError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3 + usize::from(self.0.retry_at.is_some())))?;
        m.serialize_entry("code", &self.0.code)?;
        m.serialize_entry("kind", self.0.kind.as_str())?;
        m.serialize_entry("message", &self.0.message)?;
        if let Some(retry_at) = &self.0.retry_at {
            m.serialize_entry("retry_at", &retry_at.to_string())?;
        }
        m.end()
    }
}

impl Serialize for TraceEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("rule", self.rule)?;
        m.serialize_entry("outcome", self.outcome.as_str())?;
        if let Some(detail) = &self.detail {
            m.serialize_entry("detail", detail)?;
        }
        m.end()
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ok", &self.is_ok())?;
        m.serialize_entry("rule", &self.rule)?;
        if let Some(body) = &self.body {
            m.serialize_entry("body", body)?;
        }
        match &self.result {
            Ok(instance) => {
                m.serialize_entry("instance", &InstanceJson(instance))?;
                if let Some(required) = self.template_required {
                    m.serialize_entry("template_required", &required)?;
                }
            }
            Err(error) => m.serialize_entry("error", &ErrorJson(error))?,
        }
        m.serialize_entry("trace", &self.trace)?;
        if let Some(id) = &self.message_id {
            m.serialize_entry("message_id", id)?;
        }
        m.end()
    }
}
