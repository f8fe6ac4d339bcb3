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
use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

use switchboard_core::Written;
use switchboard_engine::Diagnostic;

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
    path: &dyn fmt::Display,
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
                        switchboard_core::suggest::suggestion(name, allowed.iter().copied()),
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
    path: &dyn fmt::Display,
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

/// Where a node is, for messages (`locations[1].instances[0]`), built
/// without allocating: text only when a problem is reported.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'p> {
    /// The document.
    Root,
    /// A map's value.
    Key(&'p Path<'p>, &'p str),
    /// A list's item.
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    /// The value of `key` under this path.
    pub(crate) fn key(&'p self, key: &'p str) -> Path<'p> {
        Path::Key(self, key)
    }
    /// Item `i` under this path.
    pub(crate) fn index(&'p self, i: usize) -> Path<'p> {
        Path::Index(self, i)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
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

impl Value<'_> {
    /// The value as core checks an option against its kind
    /// ([`switchboard_core::OptionKind::check`]).
    pub(crate) fn written(&self) -> Written<'_> {
        match self {
            Value::Null => Written::Other("an empty value"),
            Value::Bool(b) => Written::Bool(*b),
            Value::Int(i) => Written::Int(*i),
            Value::OtherNumber(what) => Written::Other(what),
            Value::Str(s) => Written::Str(s),
            Value::Seq(items) => Written::List(items.iter().map(|i| i.value.written()).collect()),
            Value::Map(_) => Written::Other("a map"),
        }
    }
}

/// How a value is named in a message: `` `skipp` ``, `a list`, `a map`
/// (as core names a [`Written`] value).
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Not copied item by item only to be named.
            Value::Seq(_) => Written::List(Vec::new()).fmt(f),
            other => other.written().fmt(f),
        }
    }
}

/// Reads a YAML document (or JSON: YAML 1.2 reads it) into a tree; see
/// [`parse_streaming`].
pub(crate) fn parse(text: &str) -> (Option<Node<'_>>, Vec<Diagnostic>) {
    parse_streaming(text, false, None)
}

/// Where a streamed item goes: its index in the list, and the item.
pub(crate) type Stream<'s> = &'s mut dyn for<'n> FnMut(usize, Node<'n>);

/// Reads a document with the YAML parser, or with the JSON reader when
/// `json` (much faster on large files). With `stream = Some((key, f))`, the
/// items of the list under the first top-level `key` are handed to `f` one
/// by one as they are read and are not kept in the tree: a large world file
/// is checked one location at a time.
///
/// Tabs in YAML indentation are reported (each line once) and read as
/// spaces so that the rest of the file is still checked; a syntax error ends
/// the reading, since nothing after it can be trusted.
pub(crate) fn parse_streaming<'a, 's>(
    text: &'a str,
    json: bool,
    mut stream: Option<(&'s str, Stream<'s>)>,
) -> (Option<Node<'a>>, Vec<Diagnostic>) {
    if json {
        let mut builder = Builder::new(stream);
        return match read_json(text, &mut builder) {
            Ok(()) => (Some(builder.finish()), Vec::new()),
            Err(d) => (None, vec![d]),
        };
    }
    let tabs = indentation_tabs(text);
    if tabs.is_empty() {
        let mut builder = Builder::new(stream);
        return match read_yaml(text, &Columns::default(), &mut builder) {
            Ok(()) => (Some(builder.finish()), Vec::new()),
            Err(d) => (None, vec![d]),
        };
    }
    let mut diagnostics: Vec<Diagnostic> = tabs
        .iter()
        .map(|&(line, column, _)| {
            Diagnostic::error(line, column, "tab characters are not allowed for indentation; indent with spaces")
        })
        .collect();
    // The width a tab stood for is unknown: try the usual ones, widest
    // first (a tab usually indents one level deeper than the line above).
    let mut first_error = None;
    for width in [8, 4, 2] {
        let expanded = expand_tabs(text, width);
        let columns = Columns { shift: tabs.iter().map(|&(line, _, n)| (line, n * (width - 1))).collect() };
        if let Err(d) = read_yaml(&expanded, &columns, &mut Builder::new(None)) {
            first_error.get_or_insert(d);
            continue;
        }
        let mut builder = Builder::new(stream.take());
        if let Err(d) = read_yaml(&expanded, &columns, &mut builder) {
            diagnostics.push(d);
            return (None, diagnostics);
        }
        // The tree borrows `expanded`; own its strings.
        return (Some(builder.finish().into_owned()), diagnostics);
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

/// The deepest nesting of lists and maps read (as serde's own limit):
/// deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// The most nodes that aliases may copy in one document, so that a few
/// lines of nested aliases cannot expand to gigabytes.
const ALIAS_BUDGET: usize = 1_000_000;

impl Node<'_> {
    /// The number of nodes in this subtree.
    fn size(&self) -> usize {
        let mut n = 0;
        let mut todo = vec![self];
        while let Some(node) = todo.pop() {
            n += 1;
            match &node.value {
                Value::Seq(items) => todo.extend(items),
                Value::Map(pairs) => todo.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
                _ => {}
            }
        }
        n
    }
}

/// A container being filled.
enum Open<'a> {
    Seq(Node<'a>, usize),
    Map(Node<'a>, usize, Option<Node<'a>>),
}

/// What a parser hands the builder.
enum Event2<'a> {
    /// A scalar, its style (plain scalars may be numbers, booleans, null),
    /// its core-schema tag suffix, its anchor.
    Scalar(Cow<'a, str>, ScalarStyle, Option<String>, usize),
    Alias(usize),
    SeqStart(usize),
    MapStart(usize),
    End,
}

/// Builds the tree from parse events; see [`parse_streaming`].
struct Builder<'a, 's> {
    stack: Vec<Open<'a>>,
    /// Anchored nodes and how many nodes each holds.
    anchors: FxHashMap<usize, (Node<'a>, usize)>,
    /// How many more nodes aliases may copy (see [`ALIAS_BUDGET`]).
    alias_budget: usize,
    root: Option<Node<'a>>,
    stream: Option<(&'s str, Stream<'s>)>,
    /// Whether the streamed list was already seen (a repeated key is kept).
    streamed: bool,
    /// The streaming list is open at the top of the stack.
    streaming: bool,
    count: usize,
}

impl<'a, 's> Builder<'a, 's> {
    fn new(stream: Option<(&'s str, Stream<'s>)>) -> Self {
        Builder {
            stack: Vec::new(),
            anchors: FxHashMap::default(),
            alias_budget: ALIAS_BUDGET,
            root: None,
            stream,
            streamed: false,
            streaming: false,
            count: 0,
        }
    }

    fn finish(self) -> Node<'a> {
        self.root.unwrap_or(Node { line: 1, column: 1, value: Value::Null, plain: None })
    }

    fn event(&mut self, event: Event2<'a>, line: usize, column: usize) -> Result<(), Diagnostic> {
        let (node, anchor) = match event {
            Event2::Scalar(text, style, tag, anchor) => {
                let (value, plain) = match scalar(&text, style, tag.as_deref()) {
                    None => (Value::Str(text), None),
                    Some(Value::Null) => (Value::Null, None),
                    Some(v) => (v, Some(text)),
                };
                (Node { line, column, value, plain }, anchor)
            }
            Event2::Alias(id) => match self.anchors.get(&id) {
                Some((_, size)) if *size > self.alias_budget => {
                    let message = "aliases here copy too much data (more than a million values in all)";
                    return Err(Diagnostic::error(line, column, message));
                }
                Some((node, size)) => {
                    self.alias_budget -= size;
                    (Node { line, column, ..node.clone() }, 0)
                }
                None => return Err(Diagnostic::error(line, column, "this alias names no anchor")),
            },
            Event2::SeqStart(_) | Event2::MapStart(_) if self.stack.len() >= MAX_DEPTH => {
                let message = format!("lists and maps nest more than {MAX_DEPTH} deep here");
                return Err(Diagnostic::error(line, column, message));
            }
            Event2::SeqStart(anchor) => {
                // The list under the first top-level `key` is streamed.
                let under_key = match (self.stack.as_slice(), &self.stream) {
                    ([Open::Map(_, _, Some(k))], Some((key, _))) => k.as_text() == Some(key),
                    _ => false,
                };
                if under_key && !self.streamed {
                    self.streamed = true;
                    self.streaming = true;
                    self.count = 0;
                }
                self.stack.push(Open::Seq(Node { line, column, value: Value::Seq(Vec::new()), plain: None }, anchor));
                return Ok(());
            }
            Event2::MapStart(anchor) => {
                let node = Node { line, column, value: Value::Map(Vec::new()), plain: None };
                self.stack.push(Open::Map(node, anchor, None));
                return Ok(());
            }
            Event2::End => match self.stack.pop() {
                Some(Open::Seq(node, anchor) | Open::Map(node, anchor, _)) => {
                    if self.stack.len() == 1 {
                        self.streaming = false;
                    }
                    (node, anchor)
                }
                None => return Ok(()),
            },
        };
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), node.size()));
        }
        let streaming = self.streaming && self.stack.len() == 2;
        match self.stack.last_mut() {
            Some(Open::Seq(_, _)) if streaming => {
                if let Some((_, f)) = &mut self.stream {
                    f(self.count, node);
                }
                self.count += 1;
            }
            Some(Open::Seq(Node { value: Value::Seq(items), .. }, _)) => items.push(node),
            Some(Open::Map(Node { value: Value::Map(pairs), .. }, _, key)) => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => *key = Some(node),
            },
            Some(_) => {}
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
        Ok(())
    }
}

fn read_yaml<'a>(text: &'a str, columns: &Columns, builder: &mut Builder<'a, '_>) -> Result<(), Diagnostic> {
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let (line, column) = columns.at(e.marker());
            Diagnostic::error(line, column, e.info().to_owned())
        })?;
        let (line, column) = columns.at(&span.start);
        let event = match event {
            Event::Scalar(text, style, anchor, tag) => {
                Event2::Scalar(text, style, tag.map(|t| t.suffix.clone()), anchor)
            }
            Event::Alias(id) => Event2::Alias(id),
            Event::SequenceStart(anchor, _) => Event2::SeqStart(anchor),
            Event::MappingStart(anchor, _) => Event2::MapStart(anchor),
            Event::SequenceEnd | Event::MappingEnd => Event2::End,
            Event::StreamEnd => break,
            _ => continue,
        };
        builder.event(event, line, column)?;
    }
    Ok(())
}

/// A JSON reader (RFC 8259) feeding the same builder: a value's line and
/// column are where it starts.
fn read_json<'a>(text: &'a str, builder: &mut Builder<'a, '_>) -> Result<(), Diagnostic> {
    /// What the reader expects next inside a container.
    #[derive(Clone, Copy, PartialEq)]
    enum Want {
        /// A value (or `]` right after `[`).
        Value,
        /// A key (or `}` right after `{`).
        Key,
        Colon,
        /// `,` or the closing bracket.
        Next,
    }
    let bytes = text.as_bytes();
    let (mut pos, mut line, mut line_start) = (0usize, 1usize, 0usize);
    // (byte, characters before it on its line) at the last token.
    let mut mark = (0usize, 0usize);
    let mut containers: Vec<u8> = Vec::new();
    let mut want = Want::Value;
    let mut first = false;
    let mut done = false;
    loop {
        while let Some(&b) = bytes.get(pos) {
            match b {
                b' ' | b'\t' | b'\r' => pos += 1,
                b'\n' => {
                    pos += 1;
                    line += 1;
                    line_start = pos;
                }
                _ => break,
            }
        }
        // Columns count characters: count from the last token of the line.
        if mark.0 < line_start {
            mark = (line_start, 0);
        }
        mark = (pos, mark.1 + text.get(mark.0..pos).map_or(0, |t| t.chars().count()));
        let column = mark.1 + 1;
        let fail = |message: &str| Err(Diagnostic::error(line, column, message));
        let Some(&b) = bytes.get(pos) else {
            return if done { Ok(()) } else { fail("the JSON ends too early") };
        };
        if done {
            return fail("unexpected text after the JSON value");
        }
        match (want, b) {
            (Want::Next, b',') => {
                pos += 1;
                want = if containers.last() == Some(&b'{') { Want::Key } else { Want::Value };
                first = false;
                continue;
            }
            (Want::Next, b']' | b'}') | (Want::Value | Want::Key, b']' | b'}') if first || want == Want::Next => {
                let open = if b == b']' { b'[' } else { b'{' };
                if containers.pop() != Some(open) {
                    return fail("mismatched closing bracket");
                }
                pos += 1;
                builder.event(Event2::End, line, column)?;
                want = Want::Next;
                first = false;
                done = containers.is_empty();
                continue;
            }
            (Want::Next, _) => return fail("expected `,` or a closing bracket"),
            (Want::Colon, b':') => {
                pos += 1;
                want = Want::Value;
                continue;
            }
            (Want::Colon, _) => return fail("expected `:` after an object key"),
            (Want::Key, b'"') => {}
            (Want::Key, _) => return fail("expected an object key (a string in double quotes)"),
            (Want::Value, _) => {}
        }
        first = false;
        let event = match b {
            b'{' | b'[' => {
                pos += 1;
                containers.push(b);
                first = true;
                want = if b == b'{' { Want::Key } else { Want::Value };
                let event = if b == b'{' { Event2::MapStart(0) } else { Event2::SeqStart(0) };
                builder.event(event, line, column)?;
                continue;
            }
            b'"' => {
                let (value, end) = json_string(text, pos + 1).map_err(|m| Diagnostic::error(line, column, m))?;
                pos = end;
                Event2::Scalar(value, ScalarStyle::DoubleQuoted, None, 0)
            }
            _ => {
                let end = bytes[pos..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')))
                    .map_or(bytes.len(), |n| pos + n);
                let word = text.get(pos..end).unwrap_or_default();
                let valid = matches!(word, "true" | "false" | "null")
                    || (!word.is_empty()
                        && !word.starts_with('+')
                        && word.parse::<f64>().is_ok()
                        && !word.contains(['i', 'n', 'I', 'N']));
                if !valid {
                    return fail("expected a JSON value");
                }
                pos = end;
                Event2::Scalar(Cow::Borrowed(word), ScalarStyle::Plain, None, 0)
            }
        };
        builder.event(event, line, column)?;
        want = if want == Want::Key { Want::Colon } else { Want::Next };
        done = containers.is_empty();
    }
}

/// A JSON string's text from just after its opening quote; borrowed unless
/// it has escapes. Returns the text and the position after the closing quote.
fn json_string(text: &str, start: usize) -> Result<(Cow<'_, str>, usize), &'static str> {
    let bytes = text.as_bytes();
    let mut pos = start;
    let mut owned: Option<String> = None;
    let mut from = start;
    loop {
        match bytes.get(pos) {
            None => return Err("a string is not closed"),
            Some(b'"') => {
                let tail = text.get(from..pos).unwrap_or_default();
                let value = match owned {
                    None => Cow::Borrowed(tail),
                    Some(mut s) => {
                        s.push_str(tail);
                        Cow::Owned(s)
                    }
                };
                return Ok((value, pos + 1));
            }
            Some(b'\\') => {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(text.get(from..pos).unwrap_or_default());
                let escape = bytes.get(pos + 1).copied();
                pos += 2;
                let c = match escape {
                    Some(b'"') => '"',
                    Some(b'\\') => '\\',
                    Some(b'/') => '/',
                    Some(b'b') => '\u{8}',
                    Some(b'f') => '\u{c}',
                    Some(b'n') => '\n',
                    Some(b'r') => '\r',
                    Some(b't') => '\t',
                    Some(b'u') => {
                        let hex = |at: usize| {
                            text.get(at..at + 4)
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("a bad `\\u` escape")
                        };
                        let mut code = hex(pos)?;
                        pos += 4;
                        if (0xD800..0xDC00).contains(&code) && text.get(pos..pos + 2) == Some("\\u") {
                            let low = hex(pos + 2)?;
                            if (0xDC00..0xE000).contains(&low) {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                pos += 6;
                            }
                        }
                        char::from_u32(code).ok_or("a `\\u` escape that is not a character")?
                    }
                    _ => return Err("an unknown escape in a string"),
                };
                s.push(c);
                from = pos;
            }
            Some(c) if *c < 0x20 => return Err("a control character in a string (escape it)"),
            Some(_) => pos += 1,
        }
    }
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

    #[test]
    fn the_json_reader_agrees_with_the_yaml_parser_and_locates_errors() {
        let text = "{\"a\": [1, -2.5e3, true, null, \"x\\n\\u00e9\"],\n \"\u{e9}t\u{e9}\": {\"k\": \"v\"}}";
        let (json, d) = parse_streaming(text, true, None);
        assert!(d.is_empty(), "{d:?}");
        let (yaml, d) = parse(text);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(json, yaml);
        let Value::Map(pairs) = &json.unwrap().value else { panic!() };
        assert_eq!(pairs[0].1.value.to_string(), "a list");
        let Value::Seq(items) = &pairs[0].1.value else { panic!() };
        assert_eq!(items[4].as_str(), Some("x\n\u{e9}"));
        let (pair, _) = parse_streaming("\"\\ud83d\\ude00\"", true, None);
        assert_eq!(pair.unwrap().as_str(), Some("\u{1f600}"));
        // Columns count characters, not bytes.
        assert_eq!((pairs[1].1.line, pairs[1].1.column), (2, 9));
        for (bad, at) in [
            ("{\"a\": [1, 2,]}", (1, 13)),
            ("{\"a\" 1}", (1, 6)),
            ("{\"a\": 1} x", (1, 10)),
            ("[1, 2", (1, 6)),
            ("{\"a\": tru}", (1, 7)),
            ("[\"a\\q\"]", (1, 2)),
            ("{\"a\": [1}", (1, 9)),
        ] {
            let (node, d) = parse_streaming(bad, true, None);
            assert!(node.is_none(), "{bad}");
            assert_eq!((d[0].line, d[0].column), (Some(at.0), Some(at.1)), "{bad}: {}", d[0].message);
        }
    }

    #[test]
    fn the_list_under_the_streamed_key_is_handed_over_item_by_item() {
        for (text, json) in
            [("{\"l\": [{\"id\": 1}, 2], \"m\": [3], \"l\": [4]}", true), ("l: [{id: 1}, 2]\nm: [3]\nl: [4]\n", false)]
        {
            let mut seen = Vec::new();
            let mut take = |i: usize, node: Node<'_>| seen.push((i, node.line, node.value.to_string()));
            let (node, d) = parse_streaming(text, json, Some(("l", &mut take)));
            assert!(d.is_empty(), "{d:?}");
            assert_eq!(seen.iter().map(|(i, _, v)| (*i, v.as_str())).collect::<Vec<_>>(), [(0, "a map"), (1, "`2`")]);
            let Value::Map(pairs) = node.unwrap().value else { panic!() };
            let kept: Vec<String> = pairs.iter().map(|(_, v)| format!("{:?}", v.value)).collect();
            assert_eq!(kept[0], "Seq([])", "streamed items are not kept");
            assert!(kept[1].contains("Int(3)") && kept[2].contains("Int(4)"), "{kept:?}");
        }
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused_not_followed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (node, d) = parse_streaming(&deep, true, None);
        assert!(node.is_none());
        assert_eq!((d[0].line, d[0].column), (Some(1), Some(129)), "{}", d[0].message);
        assert!(d[0].message.contains("nest more than 128 deep"), "{}", d[0].message);
        // The YAML parser has a limit of its own.
        let (node, d) = parse(&deep);
        assert!(node.is_none() && d.len() == 1 && d[0].line == Some(1), "{d:?}");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for n in 1..9 {
            let prev = n - 1;
            let refs = vec![format!("*a{prev}"); 10].join(", ").replace("*a0", "*a");
            bomb.push_str(&format!("a{n}: &a{n} [{refs}]\n"));
        }
        let (node, d) = parse(&bomb);
        assert!(node.is_none());
        assert!(d[0].message.contains("aliases here copy too much data"), "{}", d[0].message);
    }

    proptest::proptest! {
        /// Any text, however broken, gives a tree or located errors; never a panic.
        #[test]
        fn any_text_is_read_or_refused_with_a_position(text in "[\\[\\]{}:,\"\\\\ \t\nax1é&*!-]{0,60}") {
            for json in [true, false] {
                let (node, d) = parse_streaming(&text, json, None);
                proptest::prop_assert!(node.is_some() || d.iter().all(|d| d.line.is_some()));
            }
        }
    }
}
