//! # switchboard
//!
//! The embeddable Switchboard engine: [`switchboard_core`] (the contract)
//! and [`switchboard_engine`] (the plan, the evaluator and the decision)
//! with the built-in rules and channels linked in, and file loading with
//! errors that name the file, line and column. The `switchboard` binary is
//! built on it.
//!
//! ```no_run
//! use switchboard::{load_rules, load_world, registry, Request};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = registry()?;                        // built-ins, frozen once
//! let plan = load_rules("rules.yaml", &registry)?;   // immutable, shareable
//! let world = load_world("world.yaml", &plan)?;     // the plan's channels and size limit
//! let request = Request::from_json(r#"{"location":"loc_1","channel":"whatsapp","body":"Hi { WA#2 }"}"#)?;
//! let decision = plan.select(&world, &request);      // pure; call from any thread
//! println!("{}", decision.to_json());
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

pub use intent::{events_note, Intent};
pub use switchboard_core::*;
pub use switchboard_engine::*;
/// The readers of the rules file and the world file, from text.
pub use switchboard_files as files;

pub mod decision_log;
pub mod embed;
pub mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
mod intent;
pub mod lines;
mod live;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod schema;
mod stores;
pub use live::{Live, LoadErrors, ReloadEvent, ReloadStatus, Snapshot, Watch, DEBOUNCE, MAX_DELAY};
pub use stores::{StoreHealth, Stores};
pub use switchboard_files::sha256_hex;

/// Every built-in rule and channel (and anything else submitted through
/// `inventory` in this binary), frozen into a registry.
pub fn registry() -> Result<Arc<Registry>, RegistryError> {
    switchboard_rules::link();
    switchboard_channels::link();
    Registry::from_inventory().map(Arc::new)
}

/// Reads a whole file as UTF-8, with an error a person can act on.
pub fn read_text(path: &Path) -> Result<String, FileErrors> {
    read_text_limited(path, u64::MAX, "")
}

/// Like [`read_text`], refusing a file larger than `max` bytes (without
/// reading it); `setting` names the limit in the message.
pub fn read_text_limited(path: &Path, max: u64, setting: &str) -> Result<String, FileErrors> {
    // Sized once from the file's length, as `read_to_end` would be: no
    // doubling of a large world's text while it is read.
    let size = std::fs::metadata(path).map_or(0, |m| m.len().min(max));
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    read_limited(path, max, setting, |chunk| bytes.extend_from_slice(chunk))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        FileErrors::whole_file(
            path.display().to_string(),
            format!("is not valid UTF-8 (first bad byte at offset {at}); save it as UTF-8"),
        )
    })
}

/// The sha256 of a file of at most `max` bytes (lowercase hex), read in
/// chunks and never held whole, with the errors of [`read_text_limited`]
/// (but for UTF-8, which only reading the text checks).
pub(crate) fn file_sha256(path: &Path, max: u64, setting: &str) -> Result<String, FileErrors> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    read_limited(path, max, setting, |chunk| hasher.update(chunk))?;
    Ok(hex(&hasher.finalize()))
}

/// Reads a file of at most `max` bytes in chunks into `each`, refusing a
/// larger one (without reading it when its size says so) with an error a
/// person can act on; `setting` names the limit in the message.
fn read_limited(path: &Path, max: u64, setting: &str, mut each: impl FnMut(&[u8])) -> Result<(), FileErrors> {
    use std::io::Read;
    let too_big = |size: u64| {
        FileErrors::whole_file(path.display().to_string(), format!("is {size} bytes; the limit is {max} ({setting})"))
    };
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_file() && meta.len() > max {
            return Err(too_big(meta.len()));
        }
    }
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(FileErrors::whole_file(name, "is a directory; give the path of a file"));
    }
    let mut read = 0u64;
    let mut copy = || -> std::io::Result<()> {
        let mut file = std::fs::File::open(path)?.take(max.saturating_add(1));
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    read += n as u64;
                    each(chunk.get(..n).unwrap_or_default());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    };
    copy().map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file; check the path".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied; check the file's permissions".to_owned(),
            _ => format!("cannot be read: {e}"),
        };
        FileErrors::whole_file(&name, why)
    })?;
    if read > max {
        return Err(too_big(read));
    }
    Ok(())
}

/// Reads and compiles a rules.yaml, loading the plugins it lists (paths
/// relative to the file): the plan's registry is `registry` plus the
/// plugins' rules and channels.
pub fn load_rules(path: impl AsRef<Path>, registry: &Arc<Registry>) -> Result<Plan, FileErrors> {
    let path = path.as_ref();
    let text = read_text(path)?;
    compile_rules(&text, path, registry)
}

/// Compiles the text of a rules file found at `path` (see [`load_rules`]),
/// with a new capacity store as its `capacity:` section describes (see
/// [`Stores`]; [`Live`] keeps its stores across reloads instead).
pub fn compile_rules(text: &str, path: &Path, registry: &Arc<Registry>) -> Result<Plan, FileErrors> {
    compile_rules_in(text, path, registry, &Stores::new())
}

/// Compiles the text of a rules file found at `path`, attaching the store
/// of `stores` that its `capacity:` section describes (the same store for
/// the same section: counts outlive the plan).
pub(crate) fn compile_rules_in(
    text: &str,
    path: &Path,
    registry: &Arc<Registry>,
    stores: &Stores,
) -> Result<Plan, FileErrors> {
    let file = path.display().to_string();
    let plan = switchboard_files::compile_with(text, &file, registry.clone(), Some(&Plugins))?;
    stores.attach(plan, &file)
}

/// Loads each `plugins:` entry with the loader of its kind: a shared
/// library (`path:`) with the native host, a WebAssembly module (`wasm:`)
/// in the sandbox.
struct Plugins;

impl switchboard_core::PluginLoader for Plugins {
    fn load(
        &self,
        entry: &switchboard_core::PluginEntry,
        rules_file: &str,
    ) -> Result<switchboard_core::Contribution, String> {
        match entry.kind {
            switchboard_core::PluginKind::Native => switchboard_plugin_host::Loader.load(entry, rules_file),
            switchboard_core::PluginKind::Wasm { .. } => switchboard_plugin_wasm::Loader.load(entry, rules_file),
        }
    }
}

/// What a world file is read against: a plan (its registry, plugin
/// channels included, and its `limits.max_world_bytes`), or a bare registry
/// (no size limit: `check` reads a world whose rules file failed).
#[derive(Clone, Copy)]
pub enum WorldFor<'a> {
    /// A compiled rules file.
    Plan(&'a Plan),
    /// A registry alone.
    Registry(&'a Registry),
}

impl<'a> From<&'a Plan> for WorldFor<'a> {
    fn from(plan: &'a Plan) -> Self {
        WorldFor::Plan(plan)
    }
}

impl<'a> From<&'a Arc<Plan>> for WorldFor<'a> {
    fn from(plan: &'a Arc<Plan>) -> Self {
        WorldFor::Plan(plan)
    }
}

impl<'a> From<&'a Registry> for WorldFor<'a> {
    fn from(registry: &'a Registry) -> Self {
        WorldFor::Registry(registry)
    }
}

impl<'a> From<&'a Arc<Registry>> for WorldFor<'a> {
    fn from(registry: &'a Arc<Registry>) -> Self {
        WorldFor::Registry(registry)
    }
}

/// Reads a world file (YAML, or JSON when the name ends in `.json`) for a
/// plan (`&plan`: against its registry, plugin channels included, within
/// its `limits.max_world_bytes`) or a registry (`&registry`: no limit).
/// A JSON world is streamed, a location at a time, never held whole; a
/// file the stream gives up on is read whole, and every problem is
/// reported, located.
pub fn load_world<'a>(path: impl AsRef<Path>, against: impl Into<WorldFor<'a>>) -> Result<World, FileErrors> {
    match against.into() {
        WorldFor::Plan(plan) => {
            load_world_limited(path.as_ref(), plan.limits().max_world_bytes, WORLD_LIMIT, plan.registry())
        }
        WorldFor::Registry(registry) => load_world_limited(path.as_ref(), u64::MAX, "", registry),
    }
}

/// Reads a world file of at most `max` bytes. A JSON world is streamed, a
/// location at a time, never held whole ([`switchboard_files::read_json_world`]); a
/// file the stream gives up on (a problem, an unusual form, an unreadable
/// file) is then read whole, and [`switchboard_files::diagnose_world`] reports what is wrong
/// exactly as [`switchboard_files::read_world`] would.
fn load_world_limited(path: &Path, max: u64, setting: &str, registry: &Registry) -> Result<World, FileErrors> {
    load_world_inner(path, max, setting, registry, false).map(|(world, _)| world)
}

/// [`load_world_limited`] with the sha256 (lowercase hex) of the bytes the
/// world was read from, hashed as they stream ([`Live`] keeps it).
pub(crate) fn load_world_hashed(
    path: &Path,
    max: u64,
    setting: &str,
    registry: &Registry,
) -> Result<(World, String), FileErrors> {
    let (world, hash) = load_world_inner(path, max, setting, registry, true)?;
    Ok((world, hash.unwrap_or_default()))
}

/// The world of [`load_world_limited`], with its bytes' sha256 when `hash`.
fn load_world_inner(
    path: &Path,
    max: u64,
    setting: &str,
    registry: &Registry,
    hash: bool,
) -> Result<(World, Option<String>), FileErrors> {
    let name = path.display().to_string();
    let is_json = switchboard_files::is_json_file(&name);
    if is_json {
        if let Some(streamed) = stream_world(path, max, registry, hash) {
            return Ok(streamed);
        }
    }
    let text = read_text_limited(path, max, setting)?;
    let sha256 = hash.then(|| switchboard_files::sha256_hex(text.as_bytes()));
    let world = match is_json {
        true => switchboard_files::diagnose_world(&text, &name, registry),
        false => switchboard_files::read_world(&text, &name, registry),
    }?;
    Ok((world, sha256))
}

/// A JSON world streamed from a regular file of at most `max` bytes, with
/// the sha256 of the bytes read when `hash`; `None` for anything else (the
/// caller reads the file whole).
fn stream_world(path: &Path, max: u64, registry: &Registry, hash: bool) -> Option<(World, Option<String>)> {
    use sha2::Digest;
    use std::io::Read;
    /// Counts (and hashes, when asked) the bytes read through it.
    struct Counted<R>(R, u64, Option<sha2::Sha256>);
    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            if let Some(hasher) = &mut self.2 {
                hasher.update(buf.get(..n).unwrap_or_default());
            }
            Ok(n)
        }
    }
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut input = Counted(file.take(max.saturating_add(1)), 0, hash.then(sha2::Sha256::new));
    let world = switchboard_files::read_json_world(&mut input, registry).ok().flatten()?;
    (input.1 <= max).then(|| (world, input.2.map(|h| hex(&h.finalize()))))
}

/// `bytes` (a digest) as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// Where the world size limit is set, for messages.
pub(crate) const WORLD_LIMIT: &str = "limits.max_world_bytes in rules.yaml";

/// One decision for one request text: `select` on the parsed request, or
/// the code-100 decision when the text cannot be read.
pub fn decide_text(text: &str, select: impl FnOnce(&Request) -> Decision) -> Decision {
    match parse_request(text) {
        Ok(request) => select(&request),
        Err(decision) => decision,
    }
}

/// The text of a request received as bytes (an HTTP body, a binding's
/// buffer): the code-100 decision, naming the first bad byte, when it is
/// not UTF-8.
#[allow(
    clippy::result_large_err,
    reason = "the error is the decision answered in the request's place, as for parse_request"
)]
pub fn request_text(bytes: &[u8]) -> Result<&str, Decision> {
    std::str::from_utf8(bytes).map_err(|e| Decision::request_error(ErrorKind::InvalidRequest, not_utf8(&e), None))
}

/// Why a request is refused when it is not UTF-8.
pub(crate) fn not_utf8(e: &std::str::Utf8Error) -> String {
    format!("the request is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to())
}

/// Parses one request line; a line that cannot be read becomes the code-100
/// decision the batch prints in its place. An unknown field gets a "did you
/// mean" (`assigned_usr` → `assigned_user`), as rules.yaml does.
#[allow(
    clippy::result_large_err,
    reason = "the error is the decision the batch prints; a decision is returned by value everywhere"
)]
pub fn parse_request(line: &str) -> Result<Request, Decision> {
    Request::from_json(line).map_err(|e| {
        let message = format!("cannot read the request: {e}{}", unknown_field_hint(&e.to_string()));
        // The decision carries the caller's id when one can be read
        // (docs/world.md), so that even a refused message can be tied to it.
        Decision::request_error(ErrorKind::InvalidRequest, message, None).with_message_id(salvage_message_id(line))
    })
}

/// ` (did you mean `x`?)` for serde's "unknown field `a`, expected one of
/// `b`, `c`" message when one expected field is close to the unknown one.
fn unknown_field_hint(message: &str) -> String {
    let Some(rest) = message.split_once("unknown field `").map(|(_, r)| r) else { return String::new() };
    let Some((field, rest)) = rest.split_once('`') else { return String::new() };
    let expected = rest.split(" at line ").next().unwrap_or(rest);
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match suggest::did_you_mean(field, candidates.iter().copied()) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_request_keeps_its_message_id() {
        let Err(d) = super::parse_request(r#"{"location":"l","channel":"sms","message_id":"m-1"}"#) else {
            panic!("accepted")
        };
        assert_eq!(d.message_id.as_deref(), Some("m-1"));
        assert!(d.to_json().ends_with(r#","message_id":"m-1"}"#), "{}", d.to_json());
        let Err(d) = super::parse_request(&format!(
            r#"{{"location":"l","channel":"sms","body":"","message_id":"{}"}}"#,
            "x".repeat(300)
        )) else {
            panic!("accepted")
        };
        assert_eq!(d.message_id, None);
        assert!(d.error().is_some_and(|e| e.message.contains("`message_id` is 300 bytes")), "{:?}", d.error());
    }

    #[test]
    fn an_unknown_request_field_gets_a_suggestion() {
        let Err(d) =
            super::parse_request(r#"{"location":"l","channel":"sms","body":"","contact":{"assigned_usr":"u"}}"#)
        else {
            panic!("accepted")
        };
        let message = d.result.err().map(|e| e.message).unwrap_or_default();
        assert!(message.contains("unknown field `assigned_usr`"), "{message}");
        assert!(message.ends_with("(did you mean `assigned_user`?)"), "{message}");
    }
}
