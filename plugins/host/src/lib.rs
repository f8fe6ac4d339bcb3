//! # switchboard-plugin-host
//!
//! Loads Switchboard plugins: shared libraries built with
//! `switchboard-plugin-sdk` and listed in rules.yaml. [`Loader`] implements
//! core's [`PluginLoader`], so `Plan::compile_with` loads the plugins a
//! rules file lists and adds their rules and channels to the same registry
//! the built-ins are in.
//!
//! Before a library is opened, its file is checked: it must exist (paths
//! are relative to the rules file), must not be world-writable, must match
//! its optional `sha256` pin and must be a shared library. Once opened, the
//! entry symbol's header is checked magic first, then the ABI version,
//! before anything else is read. Libraries are never unloaded: a loaded
//! library is kept for the life of the process, so a plugin that a reload
//! drops is simply no longer used, and one it lists again is reused.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard_core::{Plan, Registry};
//! let base = Arc::new(Registry::from_inventory().unwrap());
//! let text = std::fs::read_to_string("rules.yaml").unwrap();
//! let plan = Plan::compile_with(&text, "rules.yaml", base, Some(&switchboard_plugin_host::Loader)).unwrap();
//! for rule in plan.registry().rules() {
//!     println!("{} from {}", rule.id, rule.source);
//! }
//! ```

mod rule;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sha2::{Digest, Sha256};
use switchboard_core::{
    ChannelInfo, Contribution, OnUnavailable, OptionKind, OptionSpec, PluginEntry, PluginLoader, RuleInfo, Source,
};
use switchboard_plugin_sdk::abi;

/// The loader. Loaded libraries live in one process-wide table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loader;

struct Loaded {
    sha256: String,
    contribution: Contribution,
}

fn table() -> &'static Mutex<HashMap<PathBuf, Arc<Loaded>>> {
    static TABLE: OnceLock<Mutex<HashMap<PathBuf, Arc<Loaded>>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

impl PluginLoader for Loader {
    fn load(&self, entry: &PluginEntry, rules_file: &str) -> Result<Contribution, String> {
        let base = Path::new(rules_file).parent().unwrap_or(Path::new("."));
        let path = base.join(&entry.path);
        load_file(&path, entry.sha256.as_deref())
            .map(|l| l.contribution.clone())
            .map_err(|why| format!("plugin `{}` ({}): {why}", entry.path, path.display()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn load_file(path: &Path, pin: Option<&str>) -> Result<Arc<Loaded>, String> {
    let canonical = path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file; plugin paths are relative to the rules file".to_owned(),
        _ => format!("cannot be read: {e}"),
    })?;
    let meta = std::fs::metadata(&canonical).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a file".into());
    }
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(format!(
            "is world-writable (mode {:o}): anyone could replace the code the engine runs; `chmod o-w` it",
            mode & 0o777
        ));
    }
    let bytes = std::fs::read(&canonical).map_err(|e| format!("cannot be read: {e}"))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    if let Some(pin) = pin {
        if !pin.eq_ignore_ascii_case(&sha256) {
            return Err(format!(
                "sha256 mismatch: the file's is {sha256} but rules.yaml pins {pin}; \
                 deploy the pinned build or update the pin"
            ));
        }
    }
    if !bytes.starts_with(b"\x7fELF") {
        return Err("is not a shared library (no ELF header); build the plugin crate with \
                    `crate-type = [\"cdylib\"]` and list the .so it produces"
            .into());
    }
    let mut table = table().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(loaded) = table.get(&canonical) {
        if loaded.sha256 != sha256 {
            return Err("changed on disk since it was loaded; libraries are never unloaded, so restart \
                        the engine or deploy the new build under a new file name"
                .into());
        }
        return Ok(loaded.clone());
    }
    let contribution = open(&canonical)?;
    let loaded = Arc::new(Loaded { sha256, contribution });
    table.insert(canonical, loaded.clone());
    Ok(loaded)
}

/// Reads a descriptor string: valid UTF-8 borrowed from the library's
/// static data, copied out.
fn owned(s: abi::Str, what: &str) -> Result<String, String> {
    if s.len == 0 {
        return Ok(String::new());
    }
    if s.ptr.is_null() {
        return Err(format!("{what}: a null string"));
    }
    // SAFETY: descriptor strings point into the plugin's static data (the
    // SDK builds them from `&'static str`), which lives as long as the
    // library, and the library is never unloaded.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what}: not valid UTF-8"))
}

fn leak(s: String) -> &'static str {
    // Bounded: each library is opened once per process.
    Box::leak(s.into_boxed_str())
}

fn descriptors<'a, T>(ptr: *const T, count: usize) -> &'a [T] {
    if ptr.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: the SDK's tables are arrays of `count` initialized elements
    // in memory the library owns for its whole life; it is never unloaded.
    unsafe { std::slice::from_raw_parts(ptr, count) }
}

fn open(path: &Path) -> Result<Contribution, String> {
    // SAFETY: opening a library runs its initializers. The operator chose
    // this file in rules.yaml (optionally pinned by sha256), and it passed
    // the checks above; that is the trust boundary plugins have.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot be loaded: {e}"))?;
    // Never unloaded: everything below points into the library.
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol, if present, is the SDK's `extern "C" fn() ->
    // *const Header`; a same-named symbol of another type would be a
    // deliberately hostile library, outside what loading can defend against.
    let entry = unsafe { library.get::<extern "C" fn() -> *const abi::Header>(abi::ENTRY_SYMBOL.as_bytes()) }.map_err(
        |_| {
            format!(
                "has no `{}` symbol, so it is not a Switchboard plugin; build it as a cdylib with \
                 switchboard-plugin-sdk's `export_plugin!` macro",
                abi::ENTRY_SYMBOL
            )
        },
    )?;
    let header = entry();
    if header.is_null() {
        return Err("its entry function returned nothing (it panicked while starting)".into());
    }
    // SAFETY: the entry returned a non-null pointer to its static header.
    // Only the first field is read before the magic is confirmed.
    let magic = unsafe { std::ptr::addr_of!((*header).magic).read_unaligned() };
    if magic != abi::MAGIC {
        return Err(format!(
            "wrong magic number {magic:#018x}: the entry symbol was not made by switchboard-plugin-sdk"
        ));
    }
    // SAFETY: the magic matched, so this is an SDK header, whose first
    // three fields are the same in every ABI version.
    let (major, minor) = unsafe { ((*header).abi_major, (*header).abi_minor) };
    if major != abi::ABI_MAJOR || minor > abi::ABI_MINOR {
        return Err(format!(
            "speaks plugin ABI {major}.{minor} but this Switchboard speaks {}.{}; rebuild the plugin against \
             switchboard-plugin-sdk {} (ABI {}.x)",
            abi::ABI_MAJOR,
            abi::ABI_MINOR,
            env!("CARGO_PKG_VERSION"),
            abi::ABI_MAJOR
        ));
    }
    // SAFETY: ABI 1.x: `plugin` points to the plugin's static `PluginV1`.
    let plugin: &'static abi::PluginV1 = match unsafe { (*header).plugin.as_ref() } {
        Some(p) => p,
        None => return Err("its header has no contents".into()),
    };
    let source = Source::Plugin(path.to_path_buf());
    let mut contribution = Contribution::default();
    for ch in descriptors(plugin.channels, plugin.channel_count) {
        let parts = [
            owned(ch.id, "channel id")?,
            owned(ch.code, "channel code")?,
            owned(ch.tag_prefix, "tag prefix")?,
            owned(ch.summary, "channel summary")?,
        ];
        let channel =
            ChannelInfo::from_parts(parts, ch.has_override != 0, ch.has_temporary_switch != 0, source.clone());
        contribution.channels.push(channel);
    }
    for r in descriptors(plugin.rules, plugin.rule_count) {
        contribution.rules.push(rule_info(r, &source)?);
    }
    Ok(contribution)
}

fn rule_info(r: &'static abi::RuleV1, source: &Source) -> Result<RuleInfo, String> {
    let id = owned(r.id, "rule id")?;
    if r.code < 1000 {
        return Err(format!("rule `{id}` declares error code {}; plugin rule codes start at 1000", r.code));
    }
    let mut options = Vec::new();
    for o in descriptors(r.options, r.option_count) {
        let kind = match o.kind {
            abi::option_kind::CHOICE => {
                let choices = descriptors(o.choices, o.choice_count)
                    .iter()
                    .map(|c| owned(*c, "option choice").map(leak))
                    .collect::<Result<Vec<_>, _>>()?;
                OptionKind::Choice(Box::leak(choices.into_boxed_slice()))
            }
            abi::option_kind::BOOL => OptionKind::Bool,
            abi::option_kind::INTEGER => OptionKind::Integer,
            abi::option_kind::STRING => OptionKind::String,
            abi::option_kind::STRING_LIST => OptionKind::StringList,
            other => return Err(format!("rule `{id}`: option kind {other} is unknown to this host")),
        };
        options.push(OptionSpec {
            name: leak(owned(o.name, "option name")?),
            kind,
            default: leak(owned(o.default, "option default")?),
            doc: leak(owned(o.doc, "option doc")?),
        });
    }
    let on_unavailable = match r.on_unavailable {
        abi::on_unavailable::ERROR => Some(OnUnavailable::Error),
        abi::on_unavailable::SKIP => Some(OnUnavailable::Skip),
        _ => None,
    };
    let descriptor = rule::Descriptor(r);
    let rule_id = id.clone();
    Ok(RuleInfo {
        summary: owned(r.summary, "rule summary")?,
        id,
        code: r.code,
        on_unavailable,
        options,
        source: source.clone(),
        build: Arc::new(move |opts| rule::build(descriptor, &rule_id, opts)),
    })
}
