//! Located diagnostics for data files, and the collector that finds *all*
//! errors of a file with their line and column.
//!
//! serde's deserializers attach a position to an error raised while a node
//! is being read, but stop at the first one. [`collect`] therefore reads the
//! file again after each semantic error, telling the pass how many errors to
//! step over ([`Ctx::report`]). Each pass finds one more error, located by the
//! deserializer itself; files are small and only a failing file is read
//! more than once.

use std::cell::Cell;
use std::fmt;

/// The most errors one file reports before the rest are summarized.
pub const MAX_DIAGNOSTICS: usize = 50;

/// Past this size a file is read again for at most [`MAX_DIAGNOSTICS_LARGE`]
/// errors: each pass re-reads the whole file.
pub const LARGE_FILE: usize = 1 << 20;

/// The most errors reported for a file larger than [`LARGE_FILE`].
pub const MAX_DIAGNOSTICS_LARGE: usize = 5;

/// How many errors to report for a text of this size.
pub fn max_diagnostics(text: &str) -> usize {
    if text.len() > LARGE_FILE {
        MAX_DIAGNOSTICS_LARGE
    } else {
        MAX_DIAGNOSTICS
    }
}

/// One problem in a file, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic without a position.
    pub fn unlocated(message: impl Into<String>) -> Diagnostic {
        Diagnostic { line: None, column: None, message: message.into() }
    }

    /// Builds a diagnostic from a YAML error, keeping serde_yaml's item path
    /// (`locations[0].instances[1]: …`) and moving its position out of the text.
    pub fn from_yaml(err: &serde_yaml::Error) -> Diagnostic {
        let text = err.to_string();
        match err.location() {
            Some(loc) => Diagnostic {
                line: Some(loc.line()),
                column: Some(loc.column()),
                message: strip_position(&text).to_owned(),
            },
            None => Diagnostic::unlocated(text),
        }
    }

    /// Builds a diagnostic from a JSON error.
    pub fn from_json(err: &serde_json::Error) -> Diagnostic {
        let text = err.to_string();
        let located = err.line() > 0;
        Diagnostic {
            line: located.then_some(err.line()),
            column: located.then_some(err.column()),
            message: strip_position(&text).to_owned(),
        }
    }
}

fn strip_position(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Diagnostics of one file, displayed as `file:line:column: message` lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .diagnostics))]
pub struct FileErrors {
    /// The file as the user named it.
    pub file: String,
    /// Every problem found, in file order of discovery.
    pub diagnostics: Vec<Diagnostic>,
}

impl FileErrors {
    /// One unlocated problem with a whole file (missing, unreadable, too big).
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> FileErrors {
        FileErrors { file: file.into(), diagnostics: vec![Diagnostic::unlocated(message)] }
    }
}

fn render(file: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&Located { file, diagnostic: d }.to_string());
    }
    out
}

struct Located<'a> {
    file: &'a str,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.diagnostic.line, self.diagnostic.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.diagnostic.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.diagnostic.message),
            _ => write!(f, "{}: {}", self.file, self.diagnostic.message),
        }
    }
}

/// The state one reading pass shares with its visitors.
#[derive(Debug, Default)]
pub struct Ctx {
    skip: usize,
    seen: Cell<usize>,
    raised: Cell<bool>,
}

impl Ctx {
    /// Reports a semantic error. Errors found by earlier passes are stepped
    /// over (`Ok`, and the visitor carries on with what it has); the first
    /// new one is returned as a deserializer error so that the deserializer
    /// attaches the position of the node being read.
    pub fn report<E: serde::de::Error>(&self, message: impl fmt::Display) -> Result<(), E> {
        let n = self.seen.get();
        self.seen.set(n + 1);
        if n < self.skip {
            Ok(())
        } else {
            self.raised.set(true);
            Err(E::custom(message))
        }
    }

    /// Whether any error, old or new, was reported in this pass.
    pub fn any(&self) -> bool {
        self.seen.get() > 0
    }
}

/// Runs `pass` until it reads the file without a new error, collecting one
/// located diagnostic per pass. A syntax or type error (one serde raised, not
/// [`Ctx::report`]) ends the search, since nothing after it can be read.
pub fn collect<T, E>(
    max: usize,
    mut pass: impl FnMut(&Ctx) -> Result<T, E>,
    locate: impl Fn(&E) -> Diagnostic,
) -> Result<T, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    loop {
        let ctx = Ctx { skip: diagnostics.len(), ..Ctx::default() };
        match pass(&ctx) {
            Ok(value) if diagnostics.is_empty() && !ctx.any() => return Ok(value),
            Ok(_) => return Err(diagnostics),
            Err(err) => {
                diagnostics.push(locate(&err));
                if !ctx.raised.get() {
                    return Err(diagnostics);
                }
                if diagnostics.len() >= max {
                    diagnostics
                        .push(Diagnostic::unlocated(format!("stopped after {max} errors; fix these and check again")));
                    return Err(diagnostics);
                }
            }
        }
    }
}

/// The closest of `candidates` to `input`, when one is close enough to be a
/// likely typo ("did you mean").
pub fn did_you_mean<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let input = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&input, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing, for appending to a message.
pub fn suggestion<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    did_you_mean(input, candidates).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default()
}

/// Edit distance where swapping two neighbours counts as one edit
/// (optimal string alignment): `opne` is one edit from `open`.
fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d: Vec<Vec<usize>> =
        (0..=a.len()).map(|i| (0..=b.len()).map(|j| if i == 0 { j } else { i }).collect()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Reads a map key and checks it against the keys a section allows, while
/// the deserializer is on the key (so an unknown key is located exactly).
/// Yields `None` for an unknown key, whose value the caller then skips.
pub struct KeySeed<'a> {
    /// The pass.
    pub cx: &'a Ctx,
    /// The keys this map takes.
    pub allowed: &'a [&'a str],
    /// What the map is, for the message ("a location").
    pub section: &'a str,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<String>;
    fn deserialize<D: serde::de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", self.allowed.join(", "))
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        if self.allowed.contains(&key) {
            return Ok(Some(key.to_owned()));
        }
        self.cx.report(format!(
            "unknown field `{key}` in {}{}; expected {}",
            self.section,
            suggestion(key, self.allowed.iter().copied()),
            self.allowed.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ))?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["manual_override", "contact_tag", "any_available"];
        assert_eq!(did_you_mean("manul_override", names), Some("manual_override"));
        assert_eq!(did_you_mean("Contact_Tags", names), Some("contact_tag"));
        assert_eq!(did_you_mean("zzz", names), None);
        assert_eq!(did_you_mean("opne", ["open", "close"]), Some("open"));
    }

    #[test]
    fn renders_file_line_column() {
        let e = FileErrors {
            file: "rules.yaml".into(),
            diagnostics: vec![
                Diagnostic { line: Some(3), column: Some(5), message: "bad".into() },
                Diagnostic::unlocated("worse"),
            ],
        };
        assert_eq!(e.to_string(), "rules.yaml:3:5: bad\nrules.yaml: worse");
    }
}
