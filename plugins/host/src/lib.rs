//! # switchboard-plugin-host
//!
//! Loads Switchboard plugins: shared libraries built with
//! `switchboard-plugin-sdk` and listed in rules.yaml. [`Loader`] implements
//! core's [`PluginLoader`], so `switchboard_files::compile_with` loads the plugins a
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
//! use switchboard_core::Registry;
//! let base = Arc::new(Registry::from_inventory().unwrap());
//! let text = std::fs::read_to_string("rules.yaml").unwrap();
//! let plan = switchboard_files::compile_with(&text, "rules.yaml", base, Some(&switchboard_plugin_host::Loader)).unwrap();
//! for rule in plan.registry().rules() {
//!     println!("{} from {}", rule.id, rule.source);
//! }
//! ```

mod rule;
mod v1_0;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use switchboard_core::{
    ChannelInfo, Contribution, OnUnavailable, OptionKind, OptionSpec, PluginEntry, PluginLoader, RuleInfo, Source,
};
use switchboard_files::{read_plugin_file, PluginFile};
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
        load_file(&path, entry.sha256.as_deref(), rules_file)
            .map(|l| l.contribution.clone())
            .map_err(|why| format!("plugin `{}` ({}): {why}", entry.path, path.display()))
    }
}

/// Checks and loads one library; `rules_file` (as named) is the file that
/// lists it, for messages.
fn load_file(path: &Path, pin: Option<&str>, rules_file: &str) -> Result<Arc<Loaded>, String> {
    let PluginFile { canonical, bytes, sha256 } = read_plugin_file(path, pin, rules_file, "build")?;
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
    // SAFETY: the plugin's tables are arrays of `count` initialized
    // elements in memory the library owns for its whole life; it is never
    // unloaded. (A null pointer with a count was refused by the caller.)
    unsafe { std::slice::from_raw_parts(ptr, count) }
}

/// Refuses a null array that claims elements.
fn non_null<T>(ptr: *const T, count: usize, what: &str) -> Result<(), String> {
    if ptr.is_null() && count > 0 {
        return Err(format!("its `{what}` pointer is NULL but its `{what}_count` is {count}; {REBUILD}"));
    }
    Ok(())
}

/// What to do about a malformed plugin.
const REBUILD: &str = "the plugin is malformed: rebuild it against switchboard_plugin.h or switchboard-plugin-sdk";

/// Reads an ABI 1.1 array of descriptors whose first field is `struct_size`:
/// the stride is the first element's `struct_size`, which must hold at
/// least this host's `T` (a later minor version only appends fields).
fn sized<T>(ptr: *const T, count: usize, what: &str) -> Result<Vec<&'static T>, String> {
    non_null(ptr, count, what)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: `ptr` is non-null and points to the plugin's first
    // descriptor, whose first field is its `struct_size` (a `usize`) in
    // every 1.1+ layout; the library is never unloaded. Read unaligned:
    // the alignment is checked below.
    let stride = unsafe { ptr.cast::<usize>().read_unaligned() };
    let need = std::mem::size_of::<T>();
    if stride < need || stride % std::mem::align_of::<T>() != 0 || ptr.align_offset(std::mem::align_of::<T>()) != 0 {
        return Err(format!(
            "its first {what} descriptor says `struct_size` {stride}, but ABI 1.{} needs at least {need} (a multiple \
             of {}); set `struct_size = sizeof(...)` in each descriptor, or {REBUILD}",
            abi::ABI_MINOR,
            std::mem::align_of::<T>()
        ));
    }
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        // SAFETY: the plugin declares `count` descriptors laid out `stride`
        // bytes apart (its `struct_size`), each at least as large as `T`
        // and suitably aligned (checked above); they live in its static data.
        let item = unsafe { &*ptr.cast::<u8>().add(n * stride).cast::<T>() };
        // SAFETY: `item` is a `T` read above, whose first field is its
        // `struct_size`.
        let size = unsafe { std::ptr::from_ref(item).cast::<usize>().read() };
        if size != stride {
            return Err(format!(
                "its {what} descriptor {} says `struct_size` {size}, but the first says {stride}; every element of \
                 an array has the same size; {REBUILD}",
                n + 1
            ));
        }
        out.push(item);
    }
    Ok(out)
}

/// A plugin's descriptors in one shape, whatever its minor version.
struct Contents {
    name: abi::Str,
    version: abi::Str,
    channels: Vec<abi::ChannelV1>,
    rules: Vec<RuleDesc>,
}

/// A rule descriptor, read from either layout.
struct RuleDesc {
    id: abi::Str,
    summary: abi::Str,
    code: u32,
    on_unavailable: u8,
    options: Vec<abi::OptionV1>,
    calls: Result<rule::Calls, &'static str>,
}

fn copy_channel(struct_size: usize, c: [abi::Str; 4], has_override: u8, has_temporary_switch: u8) -> abi::ChannelV1 {
    let [id, code, tag_prefix, summary] = c;
    abi::ChannelV1 { struct_size, id, code, tag_prefix, summary, has_override, has_temporary_switch }
}

/// Reads the contents of an ABI 1.1 plugin.
fn contents_v1_1(plugin: &'static abi::PluginV1) -> Result<Contents, String> {
    let need = std::mem::size_of::<abi::PluginV1>();
    if plugin.struct_size < need {
        return Err(format!(
            "its plugin descriptor says `struct_size` {}, but ABI 1.{} needs at least {need}; {REBUILD}",
            plugin.struct_size,
            abi::ABI_MINOR
        ));
    }
    let channels = sized(plugin.channels, plugin.channel_count, "channels")?
        .into_iter()
        .map(|c| {
            copy_channel(c.struct_size, [c.id, c.code, c.tag_prefix, c.summary], c.has_override, c.has_temporary_switch)
        })
        .collect();
    let mut rules = Vec::new();
    for r in sized(plugin.rules, plugin.rule_count, "rules")? {
        let options = sized(r.options, r.option_count, "options")?
            .into_iter()
            .map(|o| abi::OptionV1 {
                struct_size: o.struct_size,
                name: o.name,
                kind: o.kind,
                choices: o.choices,
                choice_count: o.choice_count,
                default_value: o.default_value,
                doc: o.doc,
            })
            .collect();
        let calls = match (r.build, r.evaluate) {
            (None, _) => Err("build"),
            (_, None) => Err("evaluate"),
            (build, evaluate) => Ok(rule::Calls {
                build: rule::Build::V1_1(build, r.user_data),
                evaluate: rule::Evaluate::V1_1(evaluate),
                free: r.free,
            }),
        };
        rules.push(RuleDesc {
            id: r.id,
            summary: r.summary,
            code: r.code,
            on_unavailable: r.on_unavailable,
            options,
            calls,
        });
    }
    Ok(Contents { name: plugin.name, version: plugin.version, channels, rules })
}

/// Reads the contents of an ABI 1.0 plugin (no `struct_size`, no `user_data`).
fn contents_v1_0(plugin: &'static v1_0::PluginV1_0) -> Result<Contents, String> {
    non_null(plugin.channels, plugin.channel_count, "channels")?;
    non_null(plugin.rules, plugin.rule_count, "rules")?;
    let channels = descriptors(plugin.channels, plugin.channel_count)
        .iter()
        .map(|c| copy_channel(0, [c.id, c.code, c.tag_prefix, c.summary], c.has_override, c.has_temporary_switch))
        .collect();
    let mut rules = Vec::new();
    for r in descriptors(plugin.rules, plugin.rule_count) {
        non_null(r.options, r.option_count, "options")?;
        let options = descriptors(r.options, r.option_count)
            .iter()
            .map(|o| abi::OptionV1 {
                struct_size: 0,
                name: o.name,
                kind: o.kind,
                choices: o.choices,
                choice_count: o.choice_count,
                default_value: o.default_value,
                doc: o.doc,
            })
            .collect();
        let calls = match (r.build, r.evaluate) {
            (None, _) => Err("build"),
            (_, None) => Err("evaluate"),
            (build, evaluate) => Ok(rule::Calls {
                build: rule::Build::V1_0(build),
                evaluate: rule::Evaluate::V1_0(evaluate),
                free: r.free,
            }),
        };
        rules.push(RuleDesc {
            id: r.id,
            summary: r.summary,
            code: r.code,
            on_unavailable: r.on_unavailable,
            options,
            calls,
        });
    }
    Ok(Contents { name: plugin.name, version: plugin.version, channels, rules })
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
                 switchboard-plugin-sdk's `export_plugin!` macro, or in C against switchboard_plugin.h",
                abi::ENTRY_SYMBOL
            )
        },
    )?;
    let header = entry();
    if header.is_null() {
        return Err("its entry function returned NULL (a Rust plugin panicked while starting)".into());
    }
    // SAFETY: the entry returned a non-null pointer to its static header.
    // Only the first field is read before the magic is confirmed.
    let magic = unsafe { std::ptr::addr_of!((*header).magic).read_unaligned() };
    if magic != abi::MAGIC {
        return Err(format!(
            "wrong magic number {magic:#018x}: the entry symbol was not made by switchboard-plugin-sdk \
             or switchboard_plugin.h (expected {:#018x})",
            abi::MAGIC
        ));
    }
    // SAFETY: the magic matched, so this is a plugin header, whose layout
    // is the same in every 1.x version.
    let (major, minor, contents) = unsafe { ((*header).abi_major, (*header).abi_minor, (*header).plugin) };
    if major != abi::ABI_MAJOR || minor > abi::ABI_MINOR {
        return Err(format!(
            "speaks plugin ABI {major}.{minor} but this Switchboard speaks {}.0 to {}.{}; rebuild the plugin \
             against switchboard-plugin-sdk {} (ABI {}.{})",
            abi::ABI_MAJOR,
            abi::ABI_MAJOR,
            abi::ABI_MINOR,
            env!("CARGO_PKG_VERSION"),
            abi::ABI_MAJOR,
            abi::ABI_MINOR
        ));
    }
    if contents.is_null() {
        return Err(format!("its header's `plugin` pointer is NULL; {REBUILD}"));
    }
    let contents = if minor == 0 {
        // SAFETY: ABI 1.0: a non-null `plugin` points to the plugin's
        // static 1.0 contents (its first fields are the ones read here).
        contents_v1_0(unsafe { &*contents.cast::<v1_0::PluginV1_0>() })?
    } else {
        // SAFETY: ABI 1.1+: a non-null `plugin` points to static contents
        // that begin with the 1.1 fields; `contents_v1_1` checks
        // `struct_size` before trusting the size.
        contents_v1_1(unsafe { &*contents })?
    };
    let source = Source::Plugin(path.to_path_buf());
    let mut contribution = Contribution {
        name: owned(contents.name, "plugin name")?,
        version: owned(contents.version, "plugin version")?,
        ..Contribution::default()
    };
    for ch in &contents.channels {
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
    for r in contents.rules {
        contribution.rules.push(rule_info(r, &source)?);
    }
    Ok(contribution)
}

fn rule_info(r: RuleDesc, source: &Source) -> Result<RuleInfo, String> {
    let id = owned(r.id, "rule id")?;
    let calls = r.calls.map_err(|which| {
        format!(
            "rule `{id}`: its `{which}` function pointer is NULL; every rule needs `build` and `evaluate` \
             (`free` may be NULL)"
        )
    })?;
    if r.code < 1000 {
        return Err(format!("rule `{id}` declares error code {}; plugin rule codes start at 1000", r.code));
    }
    let mut options = Vec::new();
    for o in &r.options {
        non_null(o.choices, o.choice_count, "choices")?;
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
            default: leak(owned(o.default_value, "option default")?),
            doc: leak(owned(o.doc, "option doc")?),
        });
    }
    let on_unavailable = match r.on_unavailable {
        abi::on_unavailable::ERROR => Some(OnUnavailable::Error),
        abi::on_unavailable::SKIP => Some(OnUnavailable::Skip),
        _ => None,
    };
    let rule_id = id.clone();
    Ok(RuleInfo {
        summary: owned(r.summary, "rule summary")?,
        id,
        code: r.code,
        on_unavailable,
        options,
        source: source.clone(),
        build: Arc::new(move |opts| rule::build(calls, &rule_id, opts)),
    })
}
