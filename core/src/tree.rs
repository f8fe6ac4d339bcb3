//! A YAML (or JSON) document read once into a tree that keeps the line and
//! column of every node: the parser half of the parser → validator split.
//!
//! Maps keep every key in file order, duplicates included, so that a
//! validator can report a duplicate at its second occurrence. Scalars are
//! resolved with the YAML 1.2 core schema (plain `true`, `12`, `~`; quoted
//! text is always a string).

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};

use crate::diag::Diagnostic;

/// One node and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node<'a> {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) value: Value<'a>,
    /// The text of a plain scalar read as a number or a boolean: where a
    /// string is expected, `phone: 5550101` is the string `5550101`.
    pub(crate) plain: Option<Cow<'a, str>>,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A number that is not a whole number within 64 bits; the text says
    /// which (`a decimal number`, `a number too large`).
    OtherNumber(&'static str),
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    /// A string scalar's text.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar's text where a string is expected: a string, or a plain
    /// number or boolean as written.
    pub(crate) fn as_text(&self) -> Option<&str> {
        self.as_str().or(self.plain.as_deref())
    }

    /// An error diagnostic at this node.
    pub(crate) fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.line, self.column, message)
    }

    /// A warning diagnostic at this node.
    pub(crate) fn warning(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(self.line, self.column, message)
    }
}

/// The string-keyed entries of a map node, first occurrences only, in
/// file order. Pushes a diagnostic for a node that is not a map (`expected
/// {expecting}; got …`), a key that is not a string, a key not in `allowed`
/// (`None` allows every key) with a "did you mean", and a key given twice
/// (at the second). `path` prefixes each message.
pub(crate) fn fields<'n, 'a>(
    node: &'n Node<'a>,
    allowed: Option<&[&str]>,
    section: &str,
    expecting: &str,
    path: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Vec<(&'n str, &'n Node<'a>, &'n Node<'a>)>> {
    let Value::Map(pairs) = &node.value else {
        out.push(node.error(format!("expected {expecting}; got {}", node.value)).at_path(path));
        return None;
    };
    let mut found: Vec<(&'n str, &'n Node<'a>, &'n Node<'a>)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let Some(name) = key.as_text() else {
            out.push(key.error(format!("a key in {section} must be a name; got {}", key.value)).at_path(path));
            continue;
        };
        if let Some(allowed) = allowed {
            if !allowed.contains(&name) {
                let expected: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
                out.push(
                    key.error(format!(
                        "unknown field `{name}` in {section}{}; expected {}",
                        crate::diag::suggestion(name, allowed.iter().copied()),
                        expected.join(", ")
                    ))
                    .at_path(path),
                );
                continue;
            }
        }
        if found.iter().any(|(k, _, _)| *k == name) {
            out.push(key.error(format!("`{name}` appears twice; keep one")).at_path(path));
            continue;
        }
        found.push((name, key, value));
    }
    Some(found)
}

/// The items of a list node; pushes `expected {expecting}; got …` for any
/// other node.
pub(crate) fn items<'n, 'a>(
    node: &'n Node<'a>,
    expecting: &str,
    path: &str,
    out: &mut Vec<Diagnostic>,
) -> &'n [Node<'a>] {
    match &node.value {
        Value::Seq(items) => items,
        other => {
            out.push(node.error(format!("expected {expecting}; got {other}")).at_path(path));
            &[]
        }
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// How a value is named in a message: `` `skipp` ``, `a list`, `a map`.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("an empty value"),
            Value::Bool(b) => write!(f, "`{b}`"),
            Value::Int(i) => write!(f, "`{i}`"),
            Value::OtherNumber(what) => f.write_str(what),
            Value::Str(s) => write!(f, "`{s}`"),
            Value::Seq(_) => f.write_str("a list"),
            Value::Map(_) => f.write_str("a map"),
        }
    }
}

/// Reads a document. Tabs in indentation are reported (each line once) and
/// read as spaces so that the rest of the file is still checked; a syntax
/// error ends the reading, since nothing after it can be trusted.
pub(crate) fn parse(text: &str) -> (Option<Node<'_>>, Vec<Diagnostic>) {
    let tabs = indentation_tabs(text);
    if tabs.is_empty() {
        return match build(text, &Columns::default()) {
            Ok(node) => (Some(node), Vec::new()),
            Err(d) => (None, vec![d]),
        };
    }
    let mut diagnostics: Vec<Diagnostic> = tabs
        .iter()
        .map(|&(line, column, _)| {
            Diagnostic::error(line, column, "tab characters are not allowed for indentation; indent with spaces")
        })
        .collect();
    // The width a tab stood for is unknown: try the usual ones.
    let mut first_error = None;
    for width in [8, 4, 2] {
        let expanded = expand_tabs(text, width);
        let columns = Columns { shift: tabs.iter().map(|&(line, _, n)| (line, n * (width - 1))).collect() };
        match build(&expanded, &columns) {
            Ok(node) => {
                // The tree borrows `expanded`; own its strings.
                return (Some(node.into_owned()), diagnostics);
            }
            Err(d) => {
                first_error.get_or_insert(d);
            }
        }
    }
    diagnostics.extend(first_error);
    (None, diagnostics)
}

/// `(line, column of the first tab, tabs)` of each line indented with tabs.
fn indentation_tabs(text: &str) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    if !text.contains('\t') {
        return out;
    }
    for (n, line) in text.lines().enumerate() {
        let lead: &str = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
        if let Some(first) = lead.find('\t') {
            out.push((n + 1, first + 1, lead.matches('\t').count()));
        }
    }
    out
}

fn expand_tabs(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let rest = line.trim_start_matches([' ', '\t']);
        let lead = &line[..line.len() - rest.len()];
        for c in lead.chars() {
            if c == '\t' {
                out.extend(std::iter::repeat_n(' ', width));
            } else {
                out.push(c);
            }
        }
        out.push_str(rest);
    }
    out
}

/// Columns to give back on lines whose tabs were expanded.
#[derive(Default)]
struct Columns {
    shift: FxHashMap<usize, usize>,
}

impl Columns {
    fn at(&self, m: &Marker) -> (usize, usize) {
        let column = m.col() + 1;
        let shift = self.shift.get(&m.line()).copied().unwrap_or(0);
        (m.line(), column.saturating_sub(shift).max(1))
    }
}

impl Node<'_> {
    fn into_owned(self) -> Node<'static> {
        let value = match self.value {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::OtherNumber(what) => Value::OtherNumber(what),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Seq(items) => Value::Seq(items.into_iter().map(Node::into_owned).collect()),
            Value::Map(pairs) => Value::Map(pairs.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()),
        };
        let plain = self.plain.map(|p| Cow::Owned(p.into_owned()));
        Node { line: self.line, column: self.column, value, plain }
    }
}

/// A container being filled.
enum Open<'a> {
    Seq(Node<'a>, usize),
    Map(Node<'a>, usize, Option<Node<'a>>),
}

fn build<'a>(text: &'a str, columns: &Columns) -> Result<Node<'a>, Diagnostic> {
    let mut stack: Vec<Open<'a>> = Vec::new();
    let mut anchors: FxHashMap<usize, Node<'a>> = FxHashMap::default();
    let mut root: Option<Node<'a>> = None;
    let at = |span: &Span| columns.at(&span.start);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let (line, column) = columns.at(e.marker());
            Diagnostic::error(line, column, e.info().to_owned())
        })?;
        let (line, column) = at(&span);
        let done = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_deref().map(|t| t.suffix.as_str()));
                let (value, plain) = match value {
                    None => (Value::Str(text), None),
                    Some(Value::Null) => (Value::Null, None),
                    Some(v) => (v, Some(text)),
                };
                Some((Node { line, column, value, plain }, anchor))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => Some((Node { line, column, ..node.clone() }, 0)),
                None => return Err(Diagnostic::error(line, column, "this alias names no anchor")),
            },
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Seq(Node { line, column, value: Value::Seq(Vec::new()), plain: None }, anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Open::Map(Node { line, column, value: Value::Map(Vec::new()), plain: None }, anchor, None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(node, anchor) | Open::Map(node, anchor, _)) => Some((node, anchor)),
                None => None,
            },
            Event::StreamEnd => break,
            _ => None,
        };
        let Some((node, anchor)) = done else { continue };
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Open::Seq(Node { value: Value::Seq(items), .. }, _)) => items.push(node),
            Some(Open::Map(Node { value: Value::Map(pairs), .. }, _, key)) => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => *key = Some(node),
            },
            Some(_) => {}
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
        }
    }
    Ok(root.unwrap_or(Node { line: 1, column: 1, value: Value::Null, plain: None }))
}

/// What a scalar resolves to; `None` for a string.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Option<Value<'static>> {
    if style != ScalarStyle::Plain || tag == Some("str") {
        return None;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Some(Value::Null),
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        t => number(t),
    }
}

fn number(t: &str) -> Option<Value<'static>> {
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    let radix = |prefix: &str, radix: u32| {
        t.strip_prefix(prefix)
            .filter(|d| !d.is_empty())
            .map(|d| i64::from_str_radix(d, radix).map_or(Value::OtherNumber("a number too large"), Value::Int))
    };
    if let Some(v) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Some(v);
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Some(t.parse::<i64>().map_or(Value::OtherNumber("a number too large"), Value::Int));
    }
    let special = [".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"];
    if special.contains(&unsigned)
        || (unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') && t.parse::<f64>().is_ok())
    {
        return Some(Value::OtherNumber("a decimal number"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node<'_> {
        let (node, diagnostics) = parse(text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        node.unwrap()
    }

    #[test]
    fn keeps_positions_types_and_duplicate_keys() {
        let t = tree("a: 1\nb: [x, 'true', true, ~, 1.5, 99999999999999999999]\na: 2\n");
        let Value::Map(pairs) = &t.value else { panic!("{t:?}") };
        assert_eq!(pairs.len(), 3);
        assert_eq!((pairs[2].0.line, pairs[2].0.column), (3, 1));
        let Value::Seq(items) = &pairs[1].1.value else { panic!() };
        let values: Vec<String> = items.iter().map(|i| i.value.to_string()).collect();
        assert_eq!(values, ["`x`", "`true`", "`true`", "an empty value", "a decimal number", "a number too large"]);
        assert_eq!(items[1].value, Value::Str("true".into()));
        assert_eq!((items[1].line, items[1].column), (2, 8));
    }

    #[test]
    fn reads_json_and_aliases() {
        let t = tree(r#"{"a":[{"id":"x","n":3}],"b":true}"#);
        let Value::Map(pairs) = &t.value else { panic!() };
        assert_eq!(pairs[0].0.as_str(), Some("a"));
        assert_eq!(pairs[1].1.value, Value::Bool(true));
        let t = tree("a: &u [x]\nb: *u\n");
        let Value::Map(pairs) = &t.value else { panic!() };
        assert_eq!(pairs[1].1.value, pairs[0].1.value);
        assert_eq!(pairs[1].1.line, 2);
    }

    #[test]
    fn tabs_are_named_and_the_rest_is_read() {
        let (node, diagnostics) = parse("a:\n\t- x\n\t- y\nb: 1\n");
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert_eq!((diagnostics[1].line, diagnostics[1].column), (Some(3), Some(1)));
        assert!(diagnostics[0].message.contains("tab characters are not allowed for indentation"));
        let Value::Map(pairs) = node.unwrap().value else { panic!() };
        let Value::Seq(items) = &pairs[0].1.value else { panic!() };
        assert_eq!((items[1].line, items[1].column), (3, 4));
    }

    #[test]
    fn syntax_errors_are_located() {
        let (node, diagnostics) = parse("a: [1, 2\nb: 3\n");
        assert!(node.is_none());
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].line.is_some());
    }
}
