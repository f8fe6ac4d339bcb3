//! # switchboard-plugin-wasm
//!
//! Runs Switchboard rules built as WebAssembly modules (docs/wasm-plugins.md) on
//! wasmtime: core modules, no WASI, no imports. [`Loader`] implements
//! core's [`PluginLoader`] for the `wasm:` entries of rules.yaml's
//! `plugins:`; the rules a module declares in its manifest join the
//! registry beside the built-in and native ones, with
//! [`Source::Wasm`] as their source.
//!
//! The sandbox: each instance lives in its own store with a cap on its
//! linear memory (`max_memory_mb`; a growth past it is refused and the
//! consultation fails `plugin_out_of_memory`), and every call into it runs
//! under a wall-clock budget (`timeout_ms`, enforced by epoch interruption:
//! one process-wide engine whose epoch a ticker thread advances every
//! millisecond). A call that traps, runs out of time or memory, or answers
//! what the ABI does not allow fails with the rule's code and a
//! `plugin_*` kind; a trapped, timed-out or out-of-memory instance is
//! dropped and a fresh one serves the next consultation. Each built rule
//! keeps a pool of instances, so concurrent decisions never share one.
//!
//! A module is compiled once per content: loading reads the file every
//! time (so a reload picks up a changed module) and reuses the compiled
//! module while its sha256 and limits are the same. [`modules_changed`]
//! tells a reloader that a module a plan uses changed on disk.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard_core::Registry;
//! let base = Arc::new(Registry::from_inventory().unwrap());
//! let text = "plugins:\n  - wasm: vip_first.wasm\nrules: [vip_first, any_available]\n";
//! let plan = switchboard_files::compile_with(text, "rules.yaml", base, Some(&switchboard_plugin_wasm::Loader)).unwrap();
//! ```

mod input;
mod manifest;
mod rule;
mod sandbox;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use switchboard_core::{Contribution, OnUnavailable, PluginEntry, PluginKind, PluginLoader, RuleInfo, Source};
use switchboard_files::{read_plugin_file, sha256_hex, PluginFile};
use wasmtime::{ExternType, ValType};

use crate::rule::{Declared, Shared};
use crate::sandbox::{Guest, Limits};

/// The ABI version this host speaks.
pub const ABI_VERSION: i32 = 1;

/// The loader of `wasm:` plugin entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loader;

/// The last module loaded from each file, by canonical path.
struct Cached {
    sha256: String,
    limits: Limits,
    contribution: Contribution,
}

fn table() -> &'static Mutex<HashMap<PathBuf, Arc<Cached>>> {
    static TABLE: OnceLock<Mutex<HashMap<PathBuf, Arc<Cached>>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

impl PluginLoader for Loader {
    fn load(&self, entry: &PluginEntry, rules_file: &str) -> Result<Contribution, String> {
        let path = resolve(entry, rules_file);
        let PluginKind::Wasm { max_memory_mb, timeout_ms } = entry.kind else {
            return Err(format!(
                "plugin `{}`: a shared library, which the WebAssembly loader does not open; list it with `path:`",
                entry.path
            ));
        };
        let limits = Limits { memory_bytes: (max_memory_mb as usize) << 20, timeout_ms };
        load_file(&path, entry, limits, rules_file)
            .map_err(|why| format!("WebAssembly plugin `{}` ({}): {why}", entry.path, path.display()))
    }
}

/// The file an entry names (relative to the rules file).
fn resolve(entry: &PluginEntry, rules_file: &str) -> PathBuf {
    Path::new(rules_file).parent().unwrap_or(Path::new(".")).join(&entry.path)
}

/// Whether any `wasm:` module among `plugins` (as listed in `rules_file`)
/// differs on disk from the one last loaded from its file (or cannot be
/// read): a reloader that skips an unchanged rules file must compile it
/// again then, so that a changed module takes effect.
pub fn modules_changed(plugins: &[PluginEntry], rules_file: &str) -> bool {
    plugins.iter().filter(|e| matches!(e.kind, PluginKind::Wasm { .. })).any(|entry| {
        let Ok(canonical) = resolve(entry, rules_file).canonicalize() else { return true };
        let Ok(bytes) = std::fs::read(&canonical) else { return true };
        let table = table().lock().unwrap_or_else(PoisonError::into_inner);
        table.get(&canonical).is_none_or(|c| c.sha256 != sha256_hex(&bytes))
    })
}

fn load_file(path: &Path, entry: &PluginEntry, limits: Limits, rules_file: &str) -> Result<Contribution, String> {
    let PluginFile { canonical, bytes, sha256 } =
        read_plugin_file(path, entry.sha256.as_deref(), rules_file, "module")?;
    if let Some(cached) = table().lock().unwrap_or_else(PoisonError::into_inner).get(&canonical) {
        if cached.sha256 == sha256 && cached.limits == limits {
            return Ok(cached.contribution.clone());
        }
    }
    let contribution = open(&bytes, &canonical, &entry.path, limits)?;
    let cached = Arc::new(Cached { sha256, limits, contribution: contribution.clone() });
    table().lock().unwrap_or_else(PoisonError::into_inner).insert(canonical, cached);
    Ok(contribution)
}

/// The exports ABI 1 requires, with their types as written in the docs.
const FUNCTIONS: [(&str, &[ValType], &[ValType], &str); 6] = [
    ("sb_abi_version", &[], &[ValType::I32], "() -> i32"),
    ("sb_alloc", &[ValType::I32], &[ValType::I32], "(i32) -> i32"),
    ("sb_manifest", &[], &[ValType::I64], "() -> i64"),
    ("sb_configure", &[ValType::I32, ValType::I32, ValType::I32], &[ValType::I32], "(i32, i32, i32) -> i32"),
    ("sb_select", &[ValType::I32, ValType::I32, ValType::I32], &[ValType::I64], "(i32, i32, i32) -> i64"),
    ("sb_error", &[], &[ValType::I64], "() -> i64"),
];

/// Checks that `module` imports nothing and exports ABI 1.
fn check_shape(module: &wasmtime::Module) -> Result<(), String> {
    if let Some(import) = module.imports().next() {
        return Err(format!(
            "imports `{}::{}`; a Switchboard module must import nothing (no WASI, no host functions): build it for \
             wasm32-unknown-unknown without std I/O",
            import.module(),
            import.name()
        ));
    }
    let export = |name: &str| module.exports().find(|e| e.name() == name).map(|e| e.ty());
    match export("memory") {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => {}
        Some(_) => return Err("exports `memory`, but not as a 32-bit, unshared linear memory".into()),
        None => return Err("does not export `memory`; ABI 1 needs the module's linear memory exported".into()),
    }
    for (name, params, results, written) in FUNCTIONS {
        let same = |want: &[ValType], got: &mut dyn ExactSizeIterator<Item = ValType>| {
            got.len() == want.len() && got.zip(want).all(|(g, w)| ValType::eq(&g, w))
        };
        match export(name) {
            Some(ExternType::Func(f)) if same(params, &mut f.params()) && same(results, &mut f.results()) => {}
            Some(ExternType::Func(f)) => {
                return Err(format!("exports `{name}` with the wrong signature {f}; ABI 1 needs `{name}: {written}`"))
            }
            Some(_) => return Err(format!("exports `{name}`, but not as a function; ABI 1 needs `{name}: {written}`")),
            None => return Err(format!("does not export `{name}`; ABI 1 needs `{name}: {written}`")),
        }
    }
    Ok(())
}

fn leak(s: String) -> &'static str {
    // Bounded: once per loaded module content.
    Box::leak(s.into_boxed_str())
}

/// Compiles and checks a module, asks its ABI version and manifest, and
/// makes its rules.
fn open(bytes: &[u8], canonical: &Path, listed: &str, limits: Limits) -> Result<Contribution, String> {
    if !bytes.starts_with(b"\0asm") {
        return Err("is not a WebAssembly module (no `\\0asm` header); build the rule for \
                    wasm32-unknown-unknown and list the .wasm it produces"
            .into());
    }
    if bytes.get(4..8) != Some(&[1, 0, 0, 0]) {
        return Err("is not a core WebAssembly module (version 1): a component or another format; Switchboard \
                    runs core modules"
            .into());
    }
    let engine = sandbox::engine()?;
    let module = wasmtime::Module::from_binary(engine, bytes)
        .map_err(|e| format!("is not a valid WebAssembly module: {}", e.root_cause()))?;
    check_shape(&module)?;
    let started = |what: &str, fault: sandbox::Fault| format!("{what}: it {}", fault.describe(&limits));
    let mut guest = Guest::new(engine, &module, limits).map_err(|f| started("cannot be started", f))?;
    let version = guest.abi_version().map_err(|f| started("`sb_abi_version` failed", f))?;
    if version != ABI_VERSION {
        return Err(format!(
            "speaks WebAssembly plugin ABI {version}, but this Switchboard speaks ABI {ABI_VERSION}; rebuild it \
             against ABI {ABI_VERSION} (docs/wasm-plugins.md)"
        ));
    }
    let text = guest.manifest().map_err(|f| started("`sb_manifest` failed", f))?;
    let manifest = manifest::read(&text)?;
    let shared = Arc::new(Shared { engine, module, limits, file: listed.to_owned() });
    let source = Source::Wasm(canonical.to_path_buf());
    let mut contribution =
        Contribution { name: manifest.name.clone(), version: manifest.version.clone(), ..Contribution::default() };
    for (number, r) in manifest.rules.iter().enumerate() {
        let mut leaker = leak;
        let options = r.options.iter().map(|o| manifest::option_spec(o, &mut leaker)).collect();
        let declared = Declared {
            number: i32::try_from(number).unwrap_or(i32::MAX),
            id: r.id.clone(),
            kinds: r.options.iter().map(|o| (o.name.clone(), o.kind)).collect(),
        };
        let shared = shared.clone();
        contribution.rules.push(RuleInfo {
            id: r.id.clone(),
            summary: r.summary.clone().unwrap_or_else(|| format!("a WebAssembly rule of {}", manifest.name)),
            code: u32::try_from(r.code).unwrap_or(u32::MAX),
            on_unavailable: Some(OnUnavailable::Skip),
            options,
            source: source.clone(),
            build: Arc::new(move |opts| rule::build(shared.clone(), declared.clone(), opts)),
        });
    }
    Ok(contribution)
}

#[cfg(test)]
mod tests;

/// Instantiation for benchmarks: what one sandboxed instance costs.
#[doc(hidden)]
pub mod measure {
    use std::time::{Duration, Instant};

    use crate::sandbox::{engine, Guest, Limits};

    /// Live instances of one module (dropped with this value).
    pub struct Instances {
        _guests: Vec<Guest>,
    }

    /// Compiles `bytes` and instantiates it `count` times with a memory cap
    /// of `max_memory_mb`; the instances and the time per instantiation.
    pub fn instantiate(bytes: &[u8], max_memory_mb: u32, count: usize) -> Result<(Instances, Duration), String> {
        let engine = engine()?;
        let module = wasmtime::Module::from_binary(engine, bytes).map_err(|e| e.to_string())?;
        let limits = Limits { memory_bytes: (max_memory_mb as usize) << 20, timeout_ms: 1000 };
        let started = Instant::now();
        let guests = (0..count)
            .map(|_| Guest::new(engine, &module, limits).map_err(|f| f.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let each = started.elapsed() / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        Ok((Instances { _guests: guests }, each))
    }
}
