//! The rules.yaml compiler: reads the file once into a positioned tree,
//! validates it against a [`Registry`] with plain functions that collect
//! *every* problem with its line and column, and produces an immutable
//! [`Plan`] (with warnings for what is valid but surely wrong).

use std::sync::Arc;

use switchboard_core::suggest::suggestion;
use switchboard_core::{
    HealthPolicy, InputLimits, OnUnavailable, OptionSpec, OptionValue, PluginEntry, PluginKind, PluginLoader, Registry,
    RegistryBuilder, RuleInfo, RuleOptions, Source,
};
use switchboard_engine::diagnostic::{self, Diagnostic, FileErrors};
use switchboard_engine::{
    content_hash, CapacityConfig, Chain, EntrySummary, OnStoreError, Plan, PlanParts, Step, StoreKind,
};

use crate::tree::{self, Node, Value};

#[derive(Clone)]
struct Entry {
    summary: EntrySummary,
    step: Option<Step>,
}

const CAPACITY_KEYS: [&str; 6] = ["store", "redis_url", "redis_cluster", "tls_ca_file", "key_prefix", "on_store_error"];

const LIMIT_KEYS: [&str; 5] = ["max_body_bytes", "max_tags", "max_tag_bytes", "max_patterns", "max_world_bytes"];

/// Compiles the text of a rules file. `file` names it in errors. A
/// `plugins:` entry is an error here (no loader); see [`compile_with`].
pub fn compile(text: &str, file: &str, registry: Arc<Registry>) -> Result<Plan, FileErrors> {
    compile_with(text, file, registry, None)
}

/// Compiles a rules file, first loading the plugins it lists with
/// `loader` and adding their rules and channels to `base`: the plan's
/// registry is then `base` plus the plugins. Plugin errors (a library
/// that cannot be loaded, a duplicate rule id or channel code) are
/// located at their entry.
pub fn compile_with(
    text: &str,
    file: &str,
    base: Arc<Registry>,
    loader: Option<&dyn PluginLoader>,
) -> Result<Plan, FileErrors> {
    let fail = |diagnostics: Vec<Diagnostic>| FileErrors::sorted(file, diagnostics);
    if text.trim().is_empty() {
        return Err(FileErrors::whole_file(
            file,
            "the rules file is empty; expected at least `rules:` with a list of rule ids",
        ));
    }
    let (root, mut out) = tree::parse(text);
    let Some(root) = root else { return Err(fail(out)) };
    let expecting = "a map with `version`, `plugins`, `rules` and `channels`";
    let Some(top) = tree::fields(&root, Some(&TOP_KEYS), "rules.yaml", expecting, &"", &mut out) else {
        return Err(fail(out));
    };
    let get = |name: &str| top.iter().find(|(k, _, _)| *k == name).map(|(_, _, v)| *v);
    // Phase 1: the plugins, each admitted into the registry where it stands.
    let (plugins, builder) = read_plugins(get("plugins"), &base, loader, file, &mut out);
    let registry = match builder {
        None => base,
        Some(builder) => match builder.build() {
            Ok(registry) => Arc::new(registry),
            Err(e) => {
                out.extend(e.problems.into_iter().map(Diagnostic::unlocated));
                return Err(fail(out));
            }
        },
    };
    // Phase 2: everything else, against that registry.
    if let Some(version) = get("version") {
        if version.value != Value::Int(1) {
            let message = format!("unsupported `version` {}; this Switchboard reads version 1", version.value);
            out.push(version.error(message).at_path("version"));
        }
    }
    let limits = get("limits").map_or_else(InputLimits::default, |node| read_limits(node, &mut out));
    let rules = match get("rules") {
        Some(node) => read_list(node, &registry, "rules", &mut out),
        None => {
            out.push(root.error(
                "missing `rules`: list the rules in priority order, e.g. `rules: [manual_override, default_instance, any_available]`",
            ));
            Vec::new()
        }
    };
    let channels = get("channels").map_or_else(Vec::new, |node| read_channels(node, &registry, &mut out));
    let capacity = get("capacity").map(|node| read_capacity(node, &mut out));
    let health = get("health").map(|node| read_health(node, &mut out));
    if out.iter().any(Diagnostic::is_error) {
        out.retain(Diagnostic::is_error);
        return Err(fail(out));
    }
    let assemble = |entries: &[Entry], overridden: bool| {
        let steps: Vec<Step> = entries.iter().filter_map(|e| e.step.clone()).collect();
        Chain::new(steps, entries.iter().map(|e| e.summary.clone()).collect(), overridden)
    };
    let chains: Vec<Chain> = registry
        .channel_ids()
        .map(|id| match channels.iter().find(|c| c.channel == id) {
            Some(c) => assemble(&c.entries, true),
            None => assemble(&rules, false),
        })
        .collect();
    // Warnings: a chain that can end with no rule able to select.
    let mut lists: Vec<(&Node<'_>, Vec<&str>)> = Vec::new();
    for (id, chain) in registry.channel_ids().zip(&chains) {
        let list = match channels.iter().find(|c| c.channel == id) {
            Some(c) => c.node,
            None => match get("rules") {
                Some(node) => node,
                None => continue,
            },
        };
        if chain.has_fallback() {
            continue;
        }
        match lists.iter_mut().find(|(node, _)| std::ptr::eq(*node, list)) {
            Some((_, ids)) => ids.push(id),
            None => lists.push((list, vec![id])),
        }
    }
    for (node, ids) in lists {
        let on = match ids.as_slice() {
            [one] => format!("channel {one}"),
            _ => format!("channels {}", ids.join(", ")),
        };
        let empty =
            chains.iter().zip(registry.channel_ids()).any(|(c, id)| ids.first() == Some(&id) && c.steps().is_empty());
        out.push(node.warning(if empty {
            format!(
                "no rule is enabled for {on}: every request there gets error 106 (no_instance_available) \
                 with rule null; list rules, e.g. `[manual_override, default_instance, any_available]`"
            )
        } else {
            format!(
                "the chain for {on} has neither `any_available` nor `default_instance` enabled: every request \
                 there that no listed rule resolves gets error 106 (no_instance_available) with rule null; \
                 end the chain with `any_available`"
            )
        }));
    }
    diagnostic::sort(&mut out);
    Ok(Plan::new(PlanParts {
        registry,
        chains,
        plugins,
        content_hash: content_hash(text.as_bytes()),
        limits,
        warnings: out,
        capacity,
        health,
    }))
}

/// The keys of a `wasm:` entry of `plugins:`.
const WASM_PLUGIN_KEYS: [&str; 4] = ["wasm", "sha256", "max_memory_mb", "timeout_ms"];

const TOP_KEYS: [&str; 7] = ["version", "plugins", "rules", "channels", "limits", "capacity", "health"];

/// The keys of `health:`.
const HEALTH_KEYS: [&str; 6] =
    ["quarantine_after", "failure_rate", "min_deliveries", "window", "cooldown", "max_cooldown"];

/// One `channels.<id>` section.
struct ChannelOrder<'n, 'a> {
    channel: String,
    entries: Vec<Entry>,
    /// Its `rules` list, where warnings about it are located.
    node: &'n Node<'a>,
}

/// `plugins:`: every entry checked and, with a loader, loaded into a builder
/// started from `base` (`None` when the file lists no plugin).
fn read_plugins(
    node: Option<&Node<'_>>,
    base: &Registry,
    loader: Option<&dyn PluginLoader>,
    file: &str,
    out: &mut Vec<Diagnostic>,
) -> (Vec<PluginEntry>, Option<RegistryBuilder>) {
    let Some(node) = node else { return (Vec::new(), None) };
    let mut builder = base.to_builder();
    let mut plugins = Vec::new();
    // The library each entry loaded (its rules' and channels' source), with
    // the line and path of that entry: a second entry for the same library
    // is "listed twice", not a clash of the plugin with itself.
    let mut loaded_from: Vec<(Source, usize, String)> = Vec::new();
    for (i, item) in tree::items(node, "a list of `{path: ...}` or `{wasm: ...}`", &"plugins", out).iter().enumerate() {
        let path = format!("plugins[{i}]");
        let wasm = matches!(&item.value, Value::Map(pairs) if pairs.iter().any(|(k, _)| k.as_text() == Some("wasm")));
        let (keys, section, expecting): (&[&str], _, _) = if wasm {
            (
                &WASM_PLUGIN_KEYS,
                "a WebAssembly plugin entry",
                "a plugin: a map with `path` (a shared library) or `wasm` (a module)",
            )
        } else {
            (
                &["path", "sha256"],
                "a plugin entry",
                "a plugin: a map with `path` (a shared library) or `wasm` (a module)",
            )
        };
        let Some(fields) = tree::fields(item, Some(keys), section, expecting, &path, out) else {
            continue;
        };
        let kind = if wasm {
            PluginKind::Wasm {
                max_memory_mb: PluginKind::DEFAULT_MAX_MEMORY_MB,
                timeout_ms: PluginKind::DEFAULT_TIMEOUT_MS,
            }
        } else {
            PluginKind::Native
        };
        let mut entry = PluginEntry { path: String::new(), sha256: None, loaded: None, kind };
        let mut ok = true;
        for (key, _, value) in &fields {
            let text = value.as_text().map(str::to_owned);
            match (*key, text) {
                ("sha256", Some(v)) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    entry.sha256 = Some(v.to_ascii_lowercase());
                }
                ("sha256", _) => {
                    ok = false;
                    let message = if wasm {
                        "`sha256` must be 64 hexadecimal digits (run `sha256sum` on the module)"
                    } else {
                        "`sha256` must be 64 hexadecimal digits (run `sha256sum` on the library)"
                    };
                    out.push(value.error(message).at_path(tree::join(&path, key)));
                }
                ("max_memory_mb" | "timeout_ms", _) => {
                    let (max, unit) = match *key {
                        "max_memory_mb" => (PluginKind::MAX_MEMORY_MB, "MiB"),
                        _ => (PluginKind::MAX_TIMEOUT_MS, "milliseconds"),
                    };
                    let n = match value.value {
                        Value::Int(n) => u32::try_from(n).ok().filter(|n| (1..=max).contains(n)),
                        _ => None,
                    };
                    match (n, &mut entry.kind) {
                        (Some(n), PluginKind::Wasm { max_memory_mb, timeout_ms }) => {
                            *(if *key == "max_memory_mb" { max_memory_mb } else { timeout_ms }) = n;
                        }
                        _ => {
                            ok = false;
                            let message = format!(
                                "`{key}` must be a whole number of {unit} from 1 to {max}; got {}",
                                value.value
                            );
                            out.push(value.error(message).at_path(tree::join(&path, key)));
                        }
                    }
                }
                (_, Some(p)) => entry.path = p,
                (_, None) => {
                    ok = false;
                    let message = format!("`{key}` must be a file path; got {}", value.value);
                    out.push(value.error(message).at_path(tree::join(&path, key)));
                }
            }
        }
        if !wasm && !fields.iter().any(|(k, _, _)| *k == "path") {
            out.push(
                item.error("a plugin entry needs `path` (a shared library) or `wasm` (a WebAssembly module)")
                    .at_path(&path),
            );
            continue;
        }
        if ok {
            let loaded = match loader {
                None => Err(format!(
                    "plugin `{}`: this program cannot load plugins (it embeds switchboard-core without a loader)",
                    entry.path
                )),
                Some(loader) => loader.load(&entry, file).and_then(|c| {
                    let source = c.rules.first().map(|r| &r.source);
                    let source = source.or_else(|| c.channels.first().map(|c| &c.source)).cloned();
                    if let Some(source) = source {
                        if let Some((_, line, first)) = loaded_from.iter().find(|(s, _, _)| *s == source) {
                            let same = if *first == entry.path { "it".to_owned() } else { format!("it as `{first}`") };
                            return Err(format!(
                                "plugin `{}` is listed twice: the entry at line {line} already lists {same} ({source}); \
                                 remove one of the two entries",
                                entry.path
                            ));
                        }
                        loaded_from.push((source, item.line, entry.path.clone()));
                    }
                    entry.loaded = Some((c.name.clone(), c.version.clone()));
                    builder.admit(c)
                }),
            };
            if let Err(message) = loaded {
                out.push(item.error(message).at_path(&path));
            }
        }
        plugins.push(entry);
    }
    (plugins, Some(builder))
}

fn read_limits(node: &Node<'_>, out: &mut Vec<Diagnostic>) -> InputLimits {
    let mut limits = InputLimits::default();
    let expecting = format!("a map of limits: {}", LIMIT_KEYS.join(", "));
    let Some(fields) = tree::fields(node, Some(&LIMIT_KEYS), "limits", &expecting, &"limits", out) else {
        return limits;
    };
    for (key, _, value) in fields {
        let n = match value.value {
            Value::Int(n) if n > 0 => n.unsigned_abs(),
            _ => {
                let message = format!("`limits.{key}` must be a whole number above 0; got {}", value.value);
                out.push(value.error(message).at_path(tree::join("limits", key)));
                continue;
            }
        };
        let as_usize = usize::try_from(n).unwrap_or(usize::MAX);
        match key {
            "max_body_bytes" => limits.max_body_bytes = as_usize,
            "max_tags" => limits.max_tags = as_usize,
            "max_tag_bytes" => limits.max_tag_bytes = as_usize,
            "max_patterns" => limits.max_patterns = as_usize,
            _ => limits.max_world_bytes = n,
        }
    }
    limits
}

/// The error of a `capacity.<key>` that is not one of its two `choices`,
/// with a "did you mean" when the text is close to one.
fn not_one_of(value: &Node<'_>, key: &str, choices: [&str; 2]) -> Diagnostic {
    let text = value.as_str();
    let got = text.map_or_else(|| value.value.to_string(), |t| format!("`{t}`"));
    let hint = text.map(|t| suggestion(t, choices)).unwrap_or_default();
    let [a, b] = choices;
    value.error(format!("`capacity.{key}` must be `{a}` or `{b}`; got {got}{hint}"))
}

/// `capacity:`: every key checked, located; defaults for the rest.
fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

fn read_capacity(node: &Node<'_>, out: &mut Vec<Diagnostic>) -> CapacityConfig {
    let mut config = CapacityConfig::default();
    let expecting = format!("a map with {}", CAPACITY_KEYS.map(|k| format!("`{k}`")).join(", "));
    let Some(fields) = tree::fields(node, Some(&CAPACITY_KEYS), "capacity", &expecting, &"capacity", out) else {
        return config;
    };
    for (key, _, value) in fields {
        let at = tree::join("capacity", key);
        let text = value.as_str();
        match (key, text) {
            ("store", Some("memory")) => config.store = StoreKind::Memory,
            ("store", Some("redis")) => config.store = StoreKind::Redis,
            ("store", _) => out.push(not_one_of(value, key, ["memory", "redis"]).at_path(at)),
            ("on_store_error", Some("fail_closed")) => config.on_store_error = OnStoreError::FailClosed,
            ("on_store_error", Some("fail_open")) => config.on_store_error = OnStoreError::FailOpen,
            ("on_store_error", _) => out.push(not_one_of(value, key, ["fail_closed", "fail_open"]).at_path(at)),
            ("redis_url", Some(url)) if is_redis_url(url) => url.clone_into(&mut config.redis_url),
            ("redis_url", _) => out.push(
                value
                    .error(format!(
                        "`capacity.redis_url` must be a `redis://host:port/db` or `rediss://host:port/db` URL; got {}",
                        value.value
                    ))
                    .at_path(at),
            ),
            ("redis_cluster", _) => {
                let expecting = "a list of seed node URLs (`redis://host:port` or `rediss://host:port`)";
                let items = tree::items(value, expecting, &at, out);
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(url) if is_redis_url(url) => config.redis_cluster.push(url.to_owned()),
                        _ => out.push(
                            item.error(format!(
                                "`capacity.redis_cluster[{i}]` must be a `redis://host:port` or \
                                 `rediss://host:port` URL; got {}",
                                item.value
                            ))
                            .at_path(format!("{at}[{i}]")),
                        ),
                    }
                }
                if items.is_empty() && matches!(value.value, Value::Seq(_)) {
                    out.push(value.error("`capacity.redis_cluster` lists no seed node; name at least one").at_path(at));
                }
            }
            ("tls_ca_file", Some(file)) if !file.trim().is_empty() => config.tls_ca_file = Some(file.to_owned()),
            ("tls_ca_file", _) => out.push(
                value
                    .error(format!(
                        "`capacity.tls_ca_file` must name a PEM file of CA certificates; got {}",
                        value.value
                    ))
                    .at_path(at),
            ),
            (_, Some(prefix)) => prefix.clone_into(&mut config.key_prefix),
            (_, None) => out
                .push(value.error(format!("`capacity.key_prefix` must be a string; got {}", value.value)).at_path(at)),
        }
    }
    config
}

/// `health:`: every key checked, located; defaults for the rest.
fn read_health(node: &Node<'_>, out: &mut Vec<Diagnostic>) -> HealthPolicy {
    let mut policy = HealthPolicy::default();
    let expecting = format!("a map with {}", HEALTH_KEYS.map(|k| format!("`{k}`")).join(", "));
    let Some(fields) = tree::fields(node, Some(&HEALTH_KEYS), "health", &expecting, &"health", out) else {
        return policy;
    };
    let mut cooldown_node = None;
    for (key, _, value) in fields {
        let at = tree::join("health", key);
        match key {
            "quarantine_after" | "min_deliveries" => match value.value {
                Value::Int(n) if n >= 1 => {
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    match key {
                        "quarantine_after" => policy.quarantine_after = n,
                        _ => policy.min_deliveries = n,
                    }
                }
                _ => out.push(
                    value
                        .error(format!(
                            "`health.{key}` must be a whole number of deliveries, at least 1; got {}",
                            value.value
                        ))
                        .at_path(at),
                ),
            },
            "failure_rate" => {
                let rate = match &value.value {
                    Value::Int(n) => Some(*n as f64),
                    Value::OtherNumber(_) => value.plain.as_deref().and_then(|t| t.trim().parse::<f64>().ok()),
                    _ => None,
                };
                match rate {
                    Some(rate) if rate > 0.0 && rate <= 1.0 => policy.failure_rate = Some(rate),
                    _ => out.push(
                        value
                            .error(format!(
                                "`health.failure_rate` must be a fraction above 0 and at most 1 (e.g. `0.5` for half \
                                 the deliveries failing); got {}",
                                value.plain.as_deref().map_or_else(|| value.value.to_string(), |t| format!("`{t}`"))
                            ))
                            .at_path(at),
                    ),
                }
            }
            _ => {
                let field = format!("health.{key}");
                let parsed = match value.as_str() {
                    Some(text) => switchboard_core::recipient::parse_duration(text, &field, false),
                    None => Err(format!(
                        "`{field}` must be a duration: a whole number followed by a unit s, m, h or d (e.g. `10m`); \
                         got {}",
                        value.value
                    )),
                };
                match (parsed, key) {
                    (Ok(d), "window") => policy.window = d,
                    (Ok(d), "cooldown") => {
                        policy.cooldown = d;
                        cooldown_node = Some(value);
                    }
                    (Ok(d), _) => policy.max_cooldown = d,
                    (Err(message), _) => out.push(value.error(message).at_path(at)),
                }
            }
        }
    }
    if policy.cooldown > policy.max_cooldown {
        let node = cooldown_node.unwrap_or(node);
        out.push(
            node.error(format!(
                "`health.cooldown` ({}s) is longer than `health.max_cooldown` ({}s); make the first quarantine \
                 no longer than the longest",
                policy.cooldown.as_secs(),
                policy.max_cooldown.as_secs()
            ))
            .at_path("health.cooldown"),
        );
    }
    policy
}

fn read_channels<'n, 'a>(
    node: &'n Node<'a>,
    registry: &Registry,
    out: &mut Vec<Diagnostic>,
) -> Vec<ChannelOrder<'n, 'a>> {
    let mut orders: Vec<ChannelOrder<'n, 'a>> = Vec::new();
    let expecting = "a map from channel id to `{rules: [...]}`";
    let Some(fields) = tree::fields(node, None, "channels", expecting, &"channels", out) else {
        return orders;
    };
    for (key, key_node, value) in fields {
        let path = tree::join("channels", key);
        let section = tree::fields(value, Some(&["rules"]), "a channel section", "a map with `rules`", &path, out);
        let Some(channel) = registry.channel_id(key) else {
            out.push(
                key_node
                    .error(format!(
                        "unknown channel `{key}`{}; registered channels: {}",
                        suggestion(key, registry.channel_ids()),
                        registry.channel_ids().collect::<Vec<_>>().join(", ")
                    ))
                    .at_path("channels"),
            );
            continue;
        };
        if orders.iter().any(|o| o.channel == channel) {
            let message = format!("channel `{channel}` is configured twice; merge the two");
            out.push(key_node.error(message).at_path("channels"));
            continue;
        }
        if let Some((_, _, list)) = section.and_then(|s| s.into_iter().next()) {
            let entries = read_list(list, registry, &tree::join(&path, "rules"), out);
            orders.push(ChannelOrder { channel: channel.to_owned(), entries, node: list });
        }
    }
    orders
}

/// A list of rule entries (the top-level `rules` or a channel's).
fn read_list(node: &Node<'_>, registry: &Registry, path: &str, out: &mut Vec<Diagnostic>) -> Vec<Entry> {
    let expecting = "a list of rules (ids, or maps with `rule:` and options)";
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in tree::items(node, expecting, &path, out).iter().enumerate() {
        let path = format!("{path}[{i}]");
        let before = out.len();
        let Some((rule, enabled, on_unavailable, options)) = read_entry(item, registry, &path, out) else { continue };
        if seen.contains(&rule.id.as_str()) {
            let message = format!(
                "rule `{}` is listed twice in this list; keep one entry (use `enabled: false` to turn it off)",
                rule.id
            );
            out.push(item.error(message).at_path(&path));
            continue;
        }
        seen.push(&rule.id);
        if out.len() > before {
            continue;
        }
        let on_unavailable = on_unavailable.or(rule.on_unavailable);
        let summary = EntrySummary {
            id: rule.id.clone(),
            enabled,
            on_unavailable,
            options: options.iter().map(|(n, v)| format!("{n}={}", render(v))).collect(),
        };
        let options = options_with_defaults(options, &rule.options);
        match (rule.build)(&options) {
            Ok(built) => {
                let step = enabled.then(|| Step::new(rule, on_unavailable, built));
                entries.push(Entry { summary, step });
            }
            Err(message) => out.push(item.error(format!("rule `{}`: {message}", rule.id)).at_path(&path)),
        }
    }
    entries
}

type Options = Vec<(String, OptionValue)>;

/// One entry: a rule id, or a map with `rule:`, `enabled`, `on_unavailable`
/// and the rule's options. `None` when it names no rule (reported); other
/// problems are reported and the entry returned, for the duplicate check.
fn read_entry<'r>(
    item: &Node<'_>,
    registry: &'r Registry,
    path: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<(&'r RuleInfo, bool, Option<OnUnavailable>, Options)> {
    if let Value::Str(id) = &item.value {
        let rule = registry.rule(id);
        if rule.is_none() {
            out.push(item.error(unknown_rule(registry, id)).at_path(path));
        }
        return rule.map(|rule| (rule, true, None, Vec::new()));
    }
    let expecting = "a rule id, or a map with `rule:` and options";
    let pairs = tree::fields(item, None, "a rule entry", expecting, &path, out)?;
    let rule = match pairs.iter().find(|(k, _, _)| *k == "rule") {
        None => {
            out.push(item.error("this entry has no `rule:`; name the rule, e.g. `- rule: contact_tag`").at_path(path));
            None
        }
        Some((_, _, value)) => {
            let at = tree::join(path, "rule");
            match value.as_str() {
                Some(id) if registry.rule(id).is_some() => registry.rule(id),
                Some(id) => {
                    out.push(value.error(unknown_rule(registry, id)).at_path(&at));
                    None
                }
                None => {
                    out.push(value.error(format!("`rule` must be a rule id; got {}", value.value)).at_path(&at));
                    None
                }
            }
        }
    };
    let (mut enabled, mut on_unavailable, mut options) = (true, None, Vec::new());
    for (key, _, value) in pairs {
        let at = tree::join(path, key);
        let checked = match (key, rule) {
            ("rule", _) => continue,
            ("enabled", _) => match value.value {
                Value::Bool(b) => {
                    enabled = b;
                    continue;
                }
                ref other => Err(format!("`enabled` must be `true` or `false`; got {other}")),
            },
            ("on_unavailable", r) if r.is_none_or(|r| r.on_unavailable.is_some()) => match value.as_str() {
                Some("error") => {
                    on_unavailable = Some(OnUnavailable::Error);
                    continue;
                }
                Some("skip") => {
                    on_unavailable = Some(OnUnavailable::Skip);
                    continue;
                }
                _ => Err(format!("`on_unavailable` must be `error` or `skip`; got {}", value.value)),
            },
            (_, Some(r)) => check_option(r, key, value).map(|v| options.push((key.to_owned(), v))),
            (_, None) => continue,
        };
        if let Err(message) = checked {
            out.push(value.error(message).at_path(&at));
        }
    }
    rule.map(|rule| (rule, enabled, on_unavailable, options))
}

fn render(v: &OptionValue) -> String {
    match v {
        OptionValue::Str(s) => s.clone(),
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::List(l) => format!("[{}]", l.join(", ")),
    }
}

fn check_option(rule: &RuleInfo, key: &str, value: &Node<'_>) -> Result<OptionValue, String> {
    let Some(spec) = rule.options.iter().find(|o| o.name == key) else {
        let mut names: Vec<&str> = vec!["rule", "enabled"];
        if rule.on_unavailable.is_some() {
            names.push("on_unavailable");
        }
        names.extend(rule.options.iter().map(|o| o.name));
        let extra = if key == "on_unavailable" {
            format!("; `{}` never finds an unusable instance, so it has no `on_unavailable`", rule.id)
        } else {
            String::new()
        };
        return Err(format!(
            "rule `{}` has no option `{key}`{}{extra}; its options are: {}",
            rule.id,
            suggestion(key, names.iter().copied()),
            names.join(", ")
        ));
    };
    spec.kind.check(&rule.id, spec.name, &value.value.written())
}

fn unknown_rule(registry: &Registry, id: &str) -> String {
    format!(
        "unknown rule `{id}`{}; registered rules: {}",
        suggestion(id, registry.rule_ids()),
        registry.rule_ids().collect::<Vec<_>>().join(", ")
    )
}

/// The options given to a rule entry (`values`, checked), with the
/// declared default of each option not given.
pub fn options_with_defaults(mut values: Vec<(String, OptionValue)>, specs: &[OptionSpec]) -> RuleOptions {
    for spec in specs {
        if !values.iter().any(|(name, _)| name == spec.name) {
            if let Some(value) = option_default(spec) {
                values.push((spec.name.to_owned(), value));
            }
        }
    }
    RuleOptions::from_pairs(values)
}

/// An option's declared default (written as in rules.yaml) as a typed
/// value, when it is one: `(required)` and the like are not.
pub fn option_default(spec: &OptionSpec) -> Option<OptionValue> {
    if spec.default.trim().is_empty() || spec.default.starts_with('(') {
        return None;
    }
    let (node, diagnostics) = tree::parse(spec.default);
    if !diagnostics.is_empty() {
        return None;
    }
    spec.kind.check("", spec.name, &node?.value.written()).ok()
}
