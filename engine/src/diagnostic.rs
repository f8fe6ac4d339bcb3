//! Located diagnostics for data files: what is wrong, where, and how bad.
//!
//! The readers of `switchboard-files` read a file once into a positioned
//! tree and validate it with plain functions that push every
//! problem they find into a list: nothing stops at the first error.

use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// The file is valid but surely not what was meant; it is used.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in a file, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Diagnostic {
    /// An error at a line and column.
    pub fn error(line: usize, column: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, line: Some(line), column: Some(column), message: message.into() }
    }

    /// A warning at a line and column.
    pub fn warning(line: usize, column: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, line: Some(line), column: Some(column), message: message.into() }
    }

    /// An error without a position.
    pub fn unlocated(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, line: None, column: None, message: message.into() }
    }

    /// An error from serde_json, its position moved out of the text.
    pub fn from_json(err: &serde_json::Error) -> Diagnostic {
        Diagnostic::from_serde(err.to_string(), (err.line() > 0).then(|| (err.line(), err.column())))
    }

    /// An error from a serde reader, as its message `text` and its 1-based
    /// line and column when it has them; the text's trailing ` at line L
    /// column C` is dropped (the position is kept apart).
    pub fn from_serde(text: String, position: Option<(usize, usize)>) -> Diagnostic {
        match position {
            Some((line, column)) => Diagnostic::error(line, column, strip_position(&text)),
            None => Diagnostic::unlocated(text),
        }
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The same diagnostic with `prefix: ` (an item path) before its message.
    pub fn at_path(mut self, prefix: impl fmt::Display) -> Diagnostic {
        let prefix = prefix.to_string();
        if !prefix.is_empty() {
            self.message = format!("{prefix}: {}", self.message);
        }
        self
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
    /// The diagnostics of `file`, in file order (see [`sort`]).
    pub fn sorted(file: impl Into<String>, mut diagnostics: Vec<Diagnostic>) -> FileErrors {
        sort(&mut diagnostics);
        FileErrors { file: file.into(), diagnostics }
    }

    /// One unlocated problem with a whole file (missing, unreadable, too big).
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> FileErrors {
        FileErrors { file: file.into(), diagnostics: vec![Diagnostic::unlocated(message)] }
    }
}

/// Puts diagnostics in file order: by line, then column; unlocated ones
/// last, each group keeping the order in which it was found.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
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
        let d = self.diagnostic;
        let severity = if d.is_error() { "" } else { "warning: " };
        match (d.line, d.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {severity}{}", self.file, d.message),
            (Some(l), None) => write!(f, "{}:{l}: {severity}{}", self.file, d.message),
            _ => write!(f, "{}: {severity}{}", self.file, d.message),
        }
    }
}

/// A serde message without its trailing ` at line L column C`.
fn strip_position(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column() {
        let e = FileErrors {
            file: "rules.yaml".into(),
            diagnostics: vec![
                Diagnostic::error(3, 5, "bad"),
                Diagnostic::warning(4, 1, "odd"),
                Diagnostic::unlocated("worse"),
            ],
        };
        assert_eq!(e.to_string(), "rules.yaml:3:5: bad\nrules.yaml:4:1: warning: odd\nrules.yaml: worse");
    }
}
