//! The plugin loading contract: what a `plugins:` entry of rules.yaml
//! names ([`PluginEntry`], [`PluginKind`]), what a loaded plugin adds to the
//! registry ([`Contribution`]) and the [`PluginLoader`] a host implements
//! (core does no I/O).

use crate::{ChannelInfo, RuleInfo};

/// A plugin listed in rules.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEntry {
    /// The path as written (relative to the rules file).
    pub path: String,
    /// The expected SHA-256 of the file, lower-case hex.
    pub sha256: Option<String>,
    /// The plugin's name and version, as it declares them (once loaded).
    pub loaded: Option<(String, String)>,
    /// A shared library (`path:`) or a WebAssembly module (`wasm:`).
    pub kind: PluginKind,
}

/// What a `plugins:` entry loads (docs/plugins.md, docs/wasm-plugins.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// A shared library (`path:`), run with the host's rights.
    Native,
    /// A WebAssembly module (`wasm:`), run in a sandbox.
    Wasm {
        /// The cap on the module's linear memory, in MiB (`max_memory_mb`).
        max_memory_mb: u32,
        /// The wall-clock budget of one call into the module, in
        /// milliseconds (`timeout_ms`).
        timeout_ms: u32,
    },
}

impl PluginKind {
    /// `max_memory_mb` when not written.
    pub const DEFAULT_MAX_MEMORY_MB: u32 = 16;
    /// `timeout_ms` when not written.
    pub const DEFAULT_TIMEOUT_MS: u32 = 10;
    /// The largest `max_memory_mb` (a 32-bit module addresses 4 GiB).
    pub const MAX_MEMORY_MB: u32 = 4096;
    /// The largest `timeout_ms` (a minute).
    pub const MAX_TIMEOUT_MS: u32 = 60_000;
}

/// What one plugin adds to the registry.
#[derive(Debug, Clone, Default)]
pub struct Contribution {
    /// The plugin's name, as it declares it.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Its rules.
    pub rules: Vec<RuleInfo>,
    /// Its channels.
    pub channels: Vec<ChannelInfo>,
}

/// Loads the plugins a rules file lists (the host loader implements this;
/// core does no I/O). `rules_file` is the file as named, for resolving
/// relative paths.
pub trait PluginLoader {
    /// Loads one plugin; the error names the file and what to do.
    fn load(&self, entry: &PluginEntry, rules_file: &str) -> Result<Contribution, String>;
}
