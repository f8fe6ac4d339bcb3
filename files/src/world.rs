//! The world file readers: a JSON world streamed a location at a time, a
//! serde fast path for YAML, and the located slow path that reports every
//! problem at its line and column. Each builds its locations with core's
//! [`LocationBuilder`], so that every path checks an instance alike.

use std::borrow::Cow;
use std::fmt;
use std::io;

use rustc_hash::FxHashSet;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use switchboard_core::capacity::Limits;
use switchboard_core::{InstanceFields, Location, LocationBuilder, MapOnly, Registry, Users, World};
use switchboard_engine::{Diagnostic, FileErrors};

use crate::tree::{self, Node, Path, Value};

/// Whether a world file of this name is read as JSON (it ends in
/// `.json`, in any case); any other is read as YAML.
pub fn is_json_file(file: &str) -> bool {
    file.to_ascii_lowercase().ends_with(".json")
}

/// The error of a world file with nothing in it.
fn empty(file: &str) -> FileErrors {
    FileErrors::whole_file(file, "the world file is empty; expected `locations:` with a list of locations")
}

/// Reads a world file. `file` names it in errors; a name ending in
/// `.json` is read as JSON, anything else as YAML.
pub fn read_world(text: &str, file: &str, registry: &Registry) -> Result<World, FileErrors> {
    if text.trim().is_empty() {
        return Err(empty(file));
    }
    // The fast path: plain serde, building each location as it is read.
    // Any problem sends the file to the slow path, which reads it into a
    // positioned tree and reports every problem at its line and column.
    let json = is_json_file(file);
    let fast = if json {
        read_json_world(text.as_bytes(), registry).ok().flatten()
    } else {
        WorldSeed { registry, top: true }.deserialize(serde_yaml::Deserializer::from_str(text)).ok()
    };
    match fast {
        Some(world) => Ok(world),
        None => diagnose_world(text, file, registry),
    }
}

/// The slow path of [`read_world`] alone: the world when the file
/// is valid, else every problem of it, located. For a caller whose
/// [`read_json_world`] gave up on the file.
pub fn diagnose_world(text: &str, file: &str, registry: &Registry) -> Result<World, FileErrors> {
    if text.trim().is_empty() {
        return Err(empty(file));
    }
    let json = is_json_file(file);
    check(text, json, registry, false)
        .and_then(|_| check(text, json, registry, true))
        .map_err(|diagnostics| FileErrors::sorted(file, diagnostics))
}

/// The fast path for a JSON world, read from `reader` as it comes: one
/// location at a time is held as text, and each is built as soon as it
/// is read. `Ok(None)` when the text is not a valid world in the plain
/// form `{"locations": [...]}` (or is any other valid JSON world);
/// [`diagnose_world`] on the whole text then says what is wrong, at
/// its line and column, or reads the unusual form.
pub fn read_json_world(reader: impl io::Read, registry: &Registry) -> io::Result<Option<World>> {
    let mut input = Chunks { reader, buf: Vec::new(), start: 0, end: 0, eof: false };
    let mut world = World::default();
    let mut builder = LocationBuilder::new(registry);
    for expected in [b'{', b'"'] {
        if input.next_token()? != Some(expected) {
            return Ok(None);
        }
        input.start += 1;
    }
    for &b in b"locations\"" {
        if input.peek()? != Some(b) {
            return Ok(None);
        }
        input.start += 1;
    }
    for expected in [b':', b'['] {
        if input.next_token()? != Some(expected) {
            return Ok(None);
        }
        input.start += 1;
    }
    let mut first = true;
    loop {
        match input.next_token()? {
            Some(b']') if first => break,
            Some(b'{') => {}
            _ => return Ok(None),
        }
        first = false;
        let Some(len) = input.object()? else { return Ok(None) };
        let Some(text) = input.buf.get(input.start..input.start + len) else { return Ok(None) };
        // Checked whole once, rather than string by string by serde.
        let Ok(text) = std::str::from_utf8(text) else { return Ok(None) };
        let mut de = serde_json::Deserializer::from_str(text);
        let Ok(location) = LocationSeed(&mut builder).deserialize(&mut de) else { return Ok(None) };
        if de.end().is_err() {
            return Ok(None);
        }
        if !world.insert(location) {
            return Ok(None);
        }
        input.start += len;
        match input.next_token()? {
            Some(b',') => input.start += 1,
            Some(b']') => break,
            _ => return Ok(None),
        }
    }
    input.start += 1;
    if input.next_token()? != Some(b'}') {
        return Ok(None);
    }
    input.start += 1;
    if input.next_token()?.is_some() {
        return Ok(None);
    }
    world.shrink_to_fit();
    Ok(Some(world))
}

/// The slow path: every problem of the file, located. Locations are
/// checked one at a time as the parser reads them (see
/// [`tree::parse_streaming`]), and kept only with `keep`: the first pass
/// only checks, and a second pass builds the world when the first found
/// nothing (a file serde refused that is valid all the same).
fn check(text: &str, json: bool, registry: &Registry, keep: bool) -> Result<World, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut world = World::default();
    let mut ids: FxHashSet<String> = FxHashSet::default();
    let mut builder = LocationBuilder::new(registry);
    let mut location = |i: usize, node: Node<'_>| {
        let top = Path::Root;
        let locations = top.key("locations");
        let path = locations.index(i);
        let Some(id) = read_location(&node, &mut builder, &path, &mut out) else {
            builder.reset();
            return;
        };
        if !ids.insert(id.clone()) {
            out.push(node.error(format!("duplicate location id `{id}`; each location appears once")).at_path(path));
            builder.reset();
        } else if keep {
            world.insert(builder.finish(id.into()));
        } else {
            builder.reset();
        }
    };
    let (root, mut parsed) = tree::parse_streaming(text, json, Some(("locations", &mut location)));
    out.append(&mut parsed);
    let Some(root) = root else { return Err(out) };
    let top = tree::fields(&root, Some(&["locations"]), "a world file", "a map with `locations`", &"", &mut out);
    match top.as_ref().and_then(|top| top.first()) {
        // Streamed above when a list; anything else is reported here.
        Some((_, _, list)) => drop(tree::items(list, "a list of locations", &"locations", &mut out)),
        None if top.is_some() => {
            out.push(root.error("missing `locations`: a world file is a map with a `locations` list"));
        }
        None => {}
    }
    if out.is_empty() {
        Ok(world)
    } else {
        Err(out)
    }
}

/// A reader's bytes, read in chunks into one buffer that holds at least
/// the current object.
struct Chunks<R> {
    reader: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

/// How much is read at once.
const CHUNK: usize = 1 << 20;

impl<R: io::Read> Chunks<R> {
    /// Reads more: the unread bytes move to the front, the buffer grows when
    /// they fill it. `false` at the end of the input.
    fn more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < CHUNK / 2 {
            self.buf.resize((self.buf.len() * 2).max(CHUNK), 0);
        }
        loop {
            match self.reader.read(self.buf.get_mut(self.end..).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next unread byte, left unread.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        while self.start >= self.end {
            if !self.more()? {
                return Ok(None);
            }
        }
        Ok(self.buf.get(self.start).copied())
    }

    /// The next byte after JSON whitespace, left unread.
    fn next_token(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.start += 1,
                other => return Ok(other),
            }
        }
    }

    /// The length of the JSON object starting at `start` (read in whole),
    /// found by its brackets and strings alone: serde checks the rest.
    /// `None` when the input ends first.
    fn object(&mut self) -> io::Result<Option<usize>> {
        let (mut at, mut depth, mut in_string) = (0usize, 0usize, false);
        loop {
            let text = self.buf.get(self.start..self.end).unwrap_or_default();
            while at < text.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', text.get(at..).unwrap_or_default()) {
                        None => at = text.len(),
                        Some(n) if text.get(at + n) == Some(&b'"') => {
                            in_string = false;
                            at += n + 1;
                        }
                        // An escape: the byte after the backslash is skipped
                        // (if it is not read yet, the backslash is read again).
                        Some(n) if at + n + 1 < text.len() => at += n + 2,
                        Some(n) => {
                            at += n;
                            break;
                        }
                    }
                    continue;
                }
                match text.get(at) {
                    Some(b'"') => in_string = true,
                    Some(b'{' | b'[') => depth += 1,
                    Some(b'}' | b']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(Some(at + 1));
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }
}

/// A string read where the text allows, borrowed from it.
#[derive(Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            // As `String` reads them.
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Text(Cow::Owned(s.to_owned()))),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                match String::from_utf8(v) {
                    Ok(s) => Ok(Text(Cow::Owned(s))),
                    Err(e) => Err(E::invalid_value(de::Unexpected::Bytes(&e.into_bytes()), &self)),
                }
            }
        }
        d.deserialize_string(V)
    }
}

const INSTANCE_KEYS: [&str; 12] = [
    "id",
    "channel",
    "index",
    "phone",
    "connected",
    "default",
    "users",
    "weight",
    "pool",
    "limits",
    "reply_window",
    "warmup",
];
const LOCATION_KEYS: [&str; 5] = ["id", "timezone", "pools", "instances", "country"];
const POOL_KEYS: [&str; 2] = ["id", "limits"];

/// The keys of an instance's `warmup`.
const WARMUP_KEYS: [&str; 2] = ["since", "per_day"];

/// A location's id, its instances checked into `builder`; `None` without a
/// usable id.
fn read_location(
    node: &Node<'_>,
    builder: &mut LocationBuilder<'_>,
    path: &Path<'_>,
    out: &mut Vec<Diagnostic>,
) -> Option<String> {
    let expecting = "a location: a map with `id` and `instances`";
    let fields = tree::fields(node, Some(&LOCATION_KEYS), "a location", expecting, path, out)?;
    let mut id = None;
    if !fields.iter().any(|(k, _, _)| *k == "id") {
        out.push(node.error("location has no `id`").at_path(path));
    }
    // The timezone and the pools first: instances name pools.
    for (key, _, value) in &fields {
        let (key, value) = (*key, *value);
        match key {
            "id" => match value.as_text() {
                Some(s) => id = Some(s.to_owned()),
                None => {
                    out.push(value.error(format!("`id` must be a string; got {}", value.value)).at_path(path.key(key)))
                }
            },
            "timezone" => match value.as_str() {
                Some(name) => {
                    if let Err(message) = builder.timezone(name) {
                        out.push(value.error(message).at_path(path.key(key)));
                    }
                }
                None if matches!(value.value, Value::Null) => {}
                None => out.push(
                    value
                        .error(format!("`timezone` must be an IANA timezone name; got {}", value.value))
                        .at_path(path.key(key)),
                ),
            },
            "country" => match value.as_str() {
                Some(code) => {
                    if let Err(message) = builder.country(code) {
                        out.push(value.error(message).at_path(path.key(key)));
                    }
                }
                None if matches!(value.value, Value::Null) => {}
                None => out.push(
                    value
                        .error(format!("`country` must be an ISO 3166 alpha-2 country code; got {}", value.value))
                        .at_path(path.key(key)),
                ),
            },
            "pools" => {
                let list = path.key(key);
                for (j, item) in tree::items(value, "a list of pools", &list, out).iter().enumerate() {
                    let path = list.index(j);
                    let Some((pool, limits)) = read_pool(item, &path, out) else { continue };
                    if let Err(message) = builder.pool(pool, limits) {
                        out.push(item.error(message).at_path(path));
                    }
                }
            }
            _ => {}
        }
    }
    for (key, _, value) in fields {
        if key != "instances" {
            continue;
        }
        let list = path.key(key);
        for (j, item) in tree::items(value, "a list of instances", &list, out).iter().enumerate() {
            let path = list.index(j);
            let Some(InstanceRead { mut spec, warmup }) = read_instance(item, &path, out) else { continue };
            spec.warmup = warmup.as_ref().map(|(since, per_day)| (*since, per_day.as_slice()));
            if let Err(message) = builder.push(spec) {
                out.push(item.error(message).at_path(path));
            }
        }
    }
    id
}

/// A `limits:` map: each key known, each limit a whole number from 1
/// (`null` is the same as absent); `None` after a problem.
fn read_limits(node: &Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<Limits> {
    if matches!(node.value, Value::Null) {
        return Some(Limits::NONE);
    }
    let expecting = "limits: a map with `per_minute`, `per_hour`, `per_day`, `contacts_per_day`";
    let fields = tree::fields(node, Some(&Limits::KEYS), "limits", expecting, path, out)?;
    let before = out.len();
    let mut limits = Limits::NONE;
    for (key, _, value) in &fields {
        let slot = match *key {
            "per_minute" => &mut limits.per_minute,
            "per_hour" => &mut limits.per_hour,
            "per_day" => &mut limits.per_day,
            _ => &mut limits.contacts_per_day,
        };
        match &value.value {
            Value::Null => {}
            Value::Int(n) if *n >= 1 && *n <= i64::from(u32::MAX) => *slot = u32::try_from(*n).ok(),
            other => out.push(
                value.error(format!("`{key}` must be a whole number, 1 or more; got {other}")).at_path(path.key(key)),
            ),
        }
    }
    (out.len() == before).then_some(limits)
}

/// A pool's id and limits; `None` after a problem.
fn read_pool(node: &Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<(String, Option<Limits>)> {
    let fields = tree::fields(node, Some(&POOL_KEYS), "a pool", "a pool: a map with `id` and `limits`", path, out)?;
    let before = out.len();
    let mut id = None;
    let mut limits = None;
    for (key, _, value) in &fields {
        if *key == "id" {
            match value.as_text() {
                Some(s) => id = Some(s.to_owned()),
                None => {
                    out.push(value.error(format!("`id` must be a string; got {}", value.value)).at_path(path.key(key)))
                }
            }
        } else {
            limits = read_limits(value, &path.key(key), out);
        }
    }
    if id.is_none() && !fields.iter().any(|(k, _, _)| *k == "id") {
        out.push(node.error("a pool needs `id`").at_path(path));
    }
    if out.len() != before {
        return None;
    }
    Some((id?, limits))
}

/// One instance's fields, each type checked; `None` when one is missing or
/// has the wrong type.
fn read_instance<'n>(node: &'n Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<InstanceRead<'n>> {
    let expecting = "an instance: a map with `id`, `channel`, `phone`, …";
    // An unknown or repeated key does not spoil the fields read: the
    // instance is still checked against the others (indexes, defaults).
    let fields = tree::fields(node, Some(&INSTANCE_KEYS), "an instance", expecting, path, out)?;
    let before = out.len();
    let mut spec = InstanceFields {
        id: "",
        channel: "",
        index: None,
        phone: "",
        connected: false,
        default: false,
        users: Users::new(),
        weight: None,
        pool: None,
        limits: None,
        reply_window: None,
        warmup: None,
    };
    let mut user_ids = Vec::new();
    let mut warmup: Option<(&str, Vec<u32>)> = None;
    for (key, _, value) in &fields {
        let at = path.key(key);
        let want = match (*key, &value.value, value.as_text()) {
            ("weight" | "pool" | "limits" | "reply_window" | "warmup", Value::Null, _) => continue,
            ("warmup", _, _) => {
                warmup = read_warmup(value, &at, out);
                continue;
            }
            ("reply_window", _, Some(text)) => {
                spec.reply_window = Some(text);
                continue;
            }
            ("reply_window", _, None) => "a duration such as `24h`",
            ("weight", Value::Int(n), _) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                spec.weight = u32::try_from(*n).ok();
                continue;
            }
            ("weight", _, _) => "a whole number, 1 or more",
            ("pool", _, Some(text)) => {
                spec.pool = Some(text);
                continue;
            }
            ("pool", _, None) => "the id of a pool of this location",
            ("limits", _, _) => {
                let before = out.len();
                match read_limits(value, &at, out) {
                    Some(limits) => spec.limits = Some(limits),
                    None if out.len() == before => out.push(value.error("invalid `limits`").at_path(at)),
                    None => {}
                }
                continue;
            }
            ("id" | "channel" | "phone", _, Some(text)) => {
                let field = match *key {
                    "id" => &mut spec.id,
                    "channel" => &mut spec.channel,
                    _ => &mut spec.phone,
                };
                *field = text;
                continue;
            }
            ("id" | "channel" | "phone", _, None) => "a string",
            ("index", Value::Int(n), _) if *n >= 0 => {
                spec.index = Some(n.unsigned_abs());
                continue;
            }
            ("index", _, _) => "a whole number, 1 or more",
            ("connected" | "default", Value::Bool(b), _) => {
                *(if *key == "default" { &mut spec.default } else { &mut spec.connected }) = *b;
                continue;
            }
            ("connected" | "default", _, _) => "`true` or `false`",
            (_, Value::Seq(users), _) => {
                for user in users {
                    match user.as_text() {
                        Some(u) => user_ids.push(u.to_owned()),
                        None => {
                            let message = format!("a user id must be a string; got {}", user.value);
                            out.push(user.error(message).at_path(at));
                        }
                    }
                }
                continue;
            }
            _ => "a list of user ids",
        };
        out.push(value.error(format!("`{key}` must be {want}; got {}", value.value)).at_path(at));
    }
    for required in ["id", "channel"] {
        if !fields.iter().any(|(k, _, _)| *k == required) {
            out.push(node.error(format!("an instance needs `{required}`")).at_path(path));
        }
    }
    spec.users = Users::from_vec(user_ids);
    if out.len() != before {
        return None;
    }
    // The schedule's own check (`since` a date or a time) is the
    // builder's, located at the instance like its other checks.
    Some(InstanceRead { spec, warmup })
}

/// An instance's fields and its warm-up schedule, whose `per_day` the
/// fields borrow once it has a place to live.
struct InstanceRead<'n> {
    spec: InstanceFields<'n>,
    warmup: Option<(&'n str, Vec<u32>)>,
}

/// `warmup: {since, per_day}`, each checked for its type; `None` after an
/// error.
fn read_warmup<'n>(node: &'n Node<'_>, path: &Path<'_>, out: &mut Vec<Diagnostic>) -> Option<(&'n str, Vec<u32>)> {
    let expecting = "a warm-up schedule: a map with `since` (a date) and `per_day` (a list of day limits)";
    let fields = tree::fields(node, Some(&WARMUP_KEYS), "a warm-up schedule", expecting, path, out)?;
    let before = out.len();
    let mut since = None;
    let mut per_day = Vec::new();
    for (key, _, value) in &fields {
        let at = path.key(key);
        if *key == "since" {
            match value.as_text() {
                Some(text) => since = Some(text),
                None => out.push(
                    value
                        .error(format!("`since` must be a date such as `2026-12-01`; got {}", value.value))
                        .at_path(at),
                ),
            }
            continue;
        }
        let Value::Seq(items) = &value.value else {
            out.push(value.error(format!("`per_day` must be a list of day limits; got {}", value.value)).at_path(at));
            continue;
        };
        for (k, item) in items.iter().enumerate() {
            match item.value {
                Value::Int(n) if n >= 1 && n <= i64::from(u32::MAX) => {
                    per_day.push(u32::try_from(n).unwrap_or(u32::MAX))
                }
                _ => out.push(
                    item.error(format!("`per_day[{k}]` must be a whole number, 1 or more; got {}", item.value))
                        .at_path(path.key(key)),
                ),
            }
        }
    }
    for required in WARMUP_KEYS {
        if !fields.iter().any(|(k, _, _)| *k == required) {
            out.push(node.error(format!("a warm-up schedule needs `{required}`")).at_path(path));
        }
    }
    (out.len() == before).then_some((since?, per_day))
}

/// The happy path for YAML: a world file read by serde into locations as
/// it goes, refusing (with no detail) anything the slow path would report.
struct WorldSeed<'r> {
    registry: &'r Registry,
    /// The file (a map), else its `locations` (a list).
    top: bool,
}

/// A location read by serde on the fast paths, straight into the builder:
/// the same fields, types and refusals as a derived `deny_unknown_fields`
/// struct of [`switchboard_core::InstanceSpec`]s would have, with no list of instances built
/// on the way. Any problem is an error without detail (the slow path says
/// what it is).
struct LocationSeed<'b, 'r>(&'b mut LocationBuilder<'r>);

impl<'de> DeserializeSeed<'de> for LocationSeed<'_, '_> {
    type Value = Location;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Location, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LocationSeed<'_, '_> {
    type Value = Location;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Location, A::Error> {
        let refuse = || de::Error::custom("");
        let builder = self.0;
        builder.reset();
        builder.defer_pool_check();
        let mut id: Option<Text<'de>> = None;
        let mut seen = [false; LOCATION_KEYS.len()];
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let Some(k) = LOCATION_KEYS.iter().position(|k| *k == key.0) else { return Err(refuse()) };
            if seen.get_mut(k).map(|s| std::mem::replace(s, true)) != Some(false) {
                return Err(refuse());
            }
            match k {
                0 => id = Some(map.next_value()?),
                1 => {
                    if let Some(name) = map.next_value::<Option<Text<'de>>>()? {
                        builder.timezone(&name.0).map_err(de::Error::custom)?;
                    }
                }
                4 => {
                    if let Some(code) = map.next_value::<Option<Text<'de>>>()? {
                        builder.country(&code.0).map_err(de::Error::custom)?;
                    }
                }
                2 => {
                    for MapOnly(pool) in map.next_value::<Vec<MapOnly<FastPool<'de>>>>()? {
                        builder.pool(pool.id.0.into_owned(), pool.limits).map_err(de::Error::custom)?;
                    }
                }
                _ => map.next_value_seed(InstancesSeed(&mut *builder))?,
            }
        }
        let Some(id) = id else { return Err(refuse()) };
        if !builder.pools_resolved() {
            return Err(refuse());
        }
        Ok(builder.finish(id.0.into()))
    }
}

/// A location's `instances`, each pushed into the builder as it is read.
struct InstancesSeed<'b, 'r>(&'b mut LocationBuilder<'r>);

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of instances")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(MapOnly(spec)) = seq.next_element::<MapOnly<FastInstance<'de>>>()? {
            self.0
                .push(InstanceFields {
                    id: &spec.id.0,
                    channel: &spec.channel.0,
                    index: spec.index,
                    phone: &spec.phone.0,
                    connected: spec.connected,
                    default: spec.default,
                    users: spec.users.0,
                    weight: spec.weight,
                    pool: spec.pool.as_ref().map(|p| &*p.0),
                    limits: spec.limits,
                    reply_window: spec.reply_window.as_ref().map(|w| &*w.0),
                    warmup: spec.warmup.as_ref().map(|w| (&*w.since.0, w.per_day.as_slice())),
                })
                .map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastPool<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(default)]
    limits: Option<Limits>,
}

/// [`switchboard_core::InstanceSpec`], field for field, with borrowed texts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastInstance<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    channel: Text<'a>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    phone: Text<'a>,
    #[serde(default)]
    connected: bool,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    users: UserList,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default, borrow)]
    pool: Option<Text<'a>>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default, borrow)]
    reply_window: Option<Text<'a>>,
    #[serde(default, borrow)]
    warmup: Option<FastWarmup<'a>>,
}

/// An instance's `warmup`, with a borrowed `since`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastWarmup<'a> {
    #[serde(borrow)]
    since: Text<'a>,
    per_day: Vec<u32>,
}

/// A list of user ids, as `Vec<String>` reads it.
#[derive(Default)]
struct UserList(Users);

impl<'de> Deserialize<'de> for UserList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserList, A::Error> {
                let mut users = Users::new();
                while let Some(user) = seq.next_element::<String>()? {
                    users.push(user);
                }
                users.shrink_to_fit();
                Ok(UserList(users))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> DeserializeSeed<'de> for WorldSeed<'_> {
    type Value = World;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<World, D::Error> {
        if self.top {
            d.deserialize_map(self)
        } else {
            d.deserialize_seq(self)
        }
    }
}

impl<'de> Visitor<'de> for WorldSeed<'_> {
    type Value = World;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a world file")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<World, A::Error> {
        let refuse = || de::Error::custom("");
        match map.next_key::<Cow<'de, str>>()? {
            Some(key) if key == "locations" => {}
            _ => return Err(refuse()),
        }
        let world = map.next_value_seed(WorldSeed { registry: self.registry, top: false })?;
        match map.next_key::<de::IgnoredAny>()? {
            None => Ok(world),
            Some(_) => Err(refuse()),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<World, A::Error> {
        let mut world = World::default();
        world.reserve(seq.size_hint().unwrap_or(0));
        let mut builder = LocationBuilder::new(self.registry);
        while let Some(location) = seq.next_element_seed(LocationSeed(&mut builder))? {
            if !world.insert(location) {
                return Err(de::Error::custom(""));
            }
        }
        Ok(world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_channels::WhatsApp as Wa;
    use switchboard_core::{recipient, ChannelInfo, RegistryBuilder, Source};

    /// Hands its bytes over one at a time: every object straddles reads.
    struct Trickle<'a>(&'a [u8]);
    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn registry() -> Registry {
        RegistryBuilder::new().channel(ChannelInfo::new(&Wa, Source::Builtin("t".into()))).build().unwrap()
    }

    /// The streamed fast path builds what the slow path builds.
    #[test]
    fn a_streamed_json_world_is_the_world_the_slow_path_builds() {
        let registry = registry();
        let many: Vec<String> = (1..=20)
            .map(|i| {
                format!(
                    r#"{{"id":"m{i}","channel":"WhatsApp","phone":"+1 555 {}","connected":true,"users":["u{}","v"]}}"#,
                    i % 3,
                    i % 2
                )
            })
            .collect();
        let text = format!(
            r#"{{ "locations" : [
  {{"instances": [{{"id":"a\"1","channel":"whatsapp","index":3,"phone":"+1-555-ORDERS","connected":true,"default":true,"users":["u\u00e9"],"pool":"p","weight":2,"limits":{{"per_day":5}}}},
                  {{"id":"b","channel":"whatsapp","index":1,"phone":"","connected":true}}],
   "pools": [{{"id":"p","limits":{{"per_hour":9}}}}], "timezone": "Europe/Paris", "id": "l\u00e9"}},
  {{"id":"big","instances":[{}]}},
  {{"id":"none"}}
] }}
"#,
            many.join(",")
        );
        let streamed = read_json_world(Trickle(text.as_bytes()), &registry).unwrap().expect("streamed");
        let slow = diagnose_world(&text, "w.json", &registry).unwrap();
        let from_str = read_world(&text, "w.json", &registry).unwrap();
        assert_eq!(streamed.len(), 3);
        for id in ["l\u{e9}", "big", "none"] {
            let want = format!("{:?}", slow.location(id).unwrap());
            assert_eq!(format!("{:?}", streamed.location(id).unwrap()), want, "{id}");
            assert_eq!(format!("{:?}", from_str.location(id).unwrap()), want, "{id}");
        }
        let l = streamed.location("l\u{e9}").unwrap();
        let a = l.channel("whatsapp").by_index(3).unwrap();
        assert_eq!(
            (a.id(), a.channel(), a.phone(), a.phone_digits()),
            ("a\"1", "whatsapp", "+1-555-ORDERS", "1555673377")
        );
        assert_eq!(
            (a.users(), a.pool(), a.weight(), a.limits().per_day),
            (&["u\u{e9}".to_owned()][..], Some("p"), 2, Some(5))
        );
        assert_eq!(l.channel("whatsapp").available().count(), 1);
        assert_eq!(streamed.location("big").unwrap().channel("whatsapp").assigned_to("v").count(), 20);
    }

    /// Anything the stream does not take whole is left to the slow path,
    /// which reads the unusual forms and reports the rest.
    #[test]
    fn the_stream_gives_up_on_anything_but_a_plain_valid_world() {
        let registry = registry();
        let ok = r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp"}]}]}"#;
        assert!(read_json_world(ok.as_bytes(), &registry).unwrap().is_some());
        assert!(read_json_world(r#"{"locations":[]}"#.as_bytes(), &registry).unwrap().unwrap().is_empty());
        for bad in [
            r#"{"locations":[{"id":"a"},{"id":"a"}]}"#,
            r#"{"locations":[{"id":"a"}]} x"#,
            r#"{"locations":[{"id":"a"}],}"#,
            r#"{"locations":[{"id":"a"},]}"#,
            r#"{"locations":[{"id":"a"}"#,
            r#"{"locations":[{"id":"a","extra":1}]}"#,
            r#"{"locations":[{"id":"a","id":"b"}]}"#,
            r#"{"locations":[{"instances":[]}]}"#,
            r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","pool":"nope"}]}]}"#,
            r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","phone":5550101}]}]}"#,
            r#"{"locations":[["a"]]}"#,
            r#"{"locations":[{"id":"a"]}]}"#,
            r#"{"locat\u0069ons":[]}"#,
        ] {
            let text = String::from_utf8_lossy(bad.as_bytes()).into_owned();
            let streamed = read_json_world(bad.as_bytes(), &registry).unwrap();
            assert!(streamed.is_none(), "{bad}");
            // The slow path agrees with what `from_str` says.
            let a = diagnose_world(&text, "w.json", &registry).map(|w| w.len()).map_err(|e| e.to_string());
            let b = read_world(&text, "w.json", &registry).map(|w| w.len()).map_err(|e| e.to_string());
            assert_eq!(a, b, "{bad}");
        }
        let not_utf8: &[u8] = b"{\"locations\":[{\"id\":\"a\xff\"}]}";
        assert!(read_json_world(not_utf8, &registry).unwrap().is_none());
        // Unusual but valid: read by the slow path.
        assert_eq!(read_world(r#"{"locat\u0069ons":[{"id":"a"}]}"#, "w.json", &registry).unwrap().len(), 1);
        let late_pool = r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","pool":"p"}],"pools":[{"id":"p"}]}]}"#;
        assert!(read_json_world(late_pool.as_bytes(), &registry).unwrap().is_some());
    }

    /// A refused instance still counts for the ones after it: its id is
    /// taken, and an index is reported as used by the last instance that
    /// claimed it.
    #[test]
    fn refused_instances_still_take_their_id_and_index() {
        let text = "locations:\n  - id: l\n    instances:\n      - {id: a, channel: whatsapp, index: 0}\n      \
                    - {id: a, channel: whatsapp, index: 1}\n      - {id: b, channel: whatsapp, index: 2}\n      \
                    - {id: c, channel: whatsapp, index: 2}\n      - {id: d, channel: whatsapp, index: 2}\n";
        let e = read_world(text, "w.yaml", &registry()).unwrap_err();
        let messages: Vec<&str> = e.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].ends_with("instance `a`: index 0 is not allowed; indexes start at 1"), "{messages:?}");
        assert!(messages[1].contains("duplicate instance id `a`"), "{messages:?}");
        assert!(messages[2].contains("instance `c`: index 2 on whatsapp is already used by `b`"), "{messages:?}");
        assert!(messages[3].contains("instance `d`: index 2 on whatsapp is already used by `c`"), "{messages:?}");
    }

    /// `country` and `reply_window` (docs/recipient-rules.md) are read alike by every
    /// path, and refused alike.
    #[test]
    fn country_and_reply_window_are_read_by_every_path() {
        let registry = registry();
        let json = r#"{"locations":[{"id":"a","country":"us","timezone":"America/New_York","instances":[{"id":"x","channel":"whatsapp","phone":"(212) 555-0101","reply_window":"24h","connected":true}]},{"id":"b"}]}"#;
        let yaml = "locations:\n  - id: a\n    country: us\n    timezone: America/New_York\n    instances:\n      - {id: x, channel: whatsapp, phone: (212) 555-0101, reply_window: 24h, connected: true}\n  - id: b\n";
        let streamed = read_json_world(json.as_bytes(), &registry).unwrap().expect("streamed");
        let slow = diagnose_world(json, "w.json", &registry).unwrap();
        let from_yaml = read_world(yaml, "w.yaml", &registry).unwrap();
        let slow_yaml = diagnose_world(yaml, "w.yaml", &registry).unwrap();
        for world in [&streamed, &slow, &from_yaml, &slow_yaml] {
            let a = world.location("a").unwrap();
            assert_eq!(a.country(), Some(recipient::Country::US));
            assert!(a.named_timezone().is_some());
            let x = a.channel("whatsapp").by_index(1).unwrap();
            assert_eq!(x.reply_window(), Some(std::time::Duration::from_secs(86_400)));
            let geo = x.geo(a.country()).unwrap();
            assert_eq!((geo.calling_code, geo.area_code), (1, Some(212)));
            let b = world.location("b").unwrap();
            assert_eq!((b.country(), b.named_timezone().is_some()), (None, false));
            assert_eq!(format!("{:?}", a), format!("{:?}", slow.location("a").unwrap()));
        }
        for (bad, says) in [
            (r#"{"locations":[{"id":"a","country":"USA"}]}"#, "ISO 3166 alpha-2"),
            (r#"{"locations":[{"id":"a","country":1}]}"#, "`country` must be an ISO 3166 alpha-2"),
            (
                r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","reply_window":"1w"}]}]}"#,
                "instance `x`: `reply_window` must be a whole number followed by a unit",
            ),
            (
                r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","reply_window":"0h"}]}]}"#,
                "at least 1h",
            ),
            (
                r#"{"locations":[{"id":"a","instances":[{"id":"x","channel":"whatsapp","reply_window":24}]}]}"#,
                "`reply_window` must be a whole number followed by a unit",
            ),
        ] {
            assert!(read_json_world(bad.as_bytes(), &registry).unwrap().is_none(), "{bad}");
            let e = read_world(bad, "w.json", &registry).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
