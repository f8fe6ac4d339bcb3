//! The C header `include/switchboard_plugin.h` is generated from
//! `src/abi.rs` with cbindgen and checked in. These tests regenerate it in
//! memory and compare, compile it as strict C99 and as C++, and check that
//! C sees the same struct sizes as Rust.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_plugin_sdk::abi;

/// Set this variable to rewrite the checked-in header instead of comparing.
const BLESS: &str = "SWITCHBOARD_BLESS_HEADER";
const REGENERATE: &str = "SWITCHBOARD_BLESS_HEADER=1 cargo test -p switchboard-plugin-sdk --test header";

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    sdk_dir().join("include/switchboard_plugin.h")
}

const PREAMBLE: &str = "\
/*
 * switchboard_plugin.h: the Switchboard plugin ABI 1.1, for plugins written
 * in C or C++.
 *
 * Generated from plugins/sdk/src/abi.rs by cbindgen; do not edit. To
 * regenerate after changing abi.rs, run from the repository root:
 *   SWITCHBOARD_BLESS_HEADER=1 cargo test -p switchboard-plugin-sdk --test header
 *
 * A plugin is a shared library exporting one function,
 *   const SbHeader *switchboard_plugin_entry(void);
 * returning a pointer to a static SbHeader: SB_MAGIC, SB_ABI_MAJOR,
 * SB_ABI_MINOR, then the plugin's SbPlugin. Every descriptor (SbPlugin,
 * SbRule, SbChannel, SbOption) starts with struct_size = sizeof(itself);
 * arrays of descriptors are plain C arrays. Strings (SbStr) are UTF-8, not
 * NUL-terminated, and descriptors with their strings must stay valid for the
 * life of the process (use static data): the host never unloads a library.
 * A rule needs `build` and `evaluate`; `free` may be NULL. A NULL required
 * function pointer is refused when the plugin is loaded, at its line in
 * rules.yaml. Error codes of plugin rules start at 1000.
 *
 * THREADING. The host decides on many threads at once:
 *  - `evaluate` is called on the SAME rule object from many threads at the
 *    same time. A rule object must be immutable after `build`, or guard what
 *    it changes (atomics, a mutex); so must any global state of the plugin.
 *  - `build` and `free` are called on any thread, while other rule objects
 *    of the plugin are being evaluated on other threads (a reload builds the
 *    new configuration while the old one still decides). `free` is called
 *    once per object, never while that object is being evaluated.
 *  - switchboard_plugin_entry may be called more than once, from any thread,
 *    and must return the same header each time.
 * The SbContext passed to `evaluate`, and everything reached from it
 * (strings, arrays, callbacks, sinks), is valid only during that call and
 * only on the calling thread.
 *
 * Answering: fill *answer (outcome and, for SB_OUTCOME_SELECTED, the
 * instance's index) and return SB_STATUS_OK. For SB_OUTCOME_UNUSABLE and
 * SB_OUTCOME_FAILED, first write the error kind (such as
 * \"instance_disconnected\", or your own) with cx->write(cx->kind_sink, ...)
 * and a message with cx->write(cx->message_sink, ...).
 */";

const AFTER_INCLUDES: &str = "\
/** An SbStr for a string literal: SB_STR(\"first_connected_c\"). */
#define SB_STR(literal) { (const uint8_t *)(literal), sizeof(literal) - 1 }

/** The symbol every plugin exports, as a string. */
#define SB_ENTRY_SYMBOL \"switchboard_plugin_entry\"

#ifdef __cplusplus
extern \"C\" {
#endif
/** The one function a plugin exports: returns its static SbHeader. */
const struct SbHeader *switchboard_plugin_entry(void);
#ifdef __cplusplus
}
#endif";

fn config() -> cbindgen::Config {
    let mut c = cbindgen::Config {
        language: cbindgen::Language::C,
        header: Some(PREAMBLE.to_owned()),
        after_includes: Some(AFTER_INCLUDES.to_owned()),
        include_guard: Some("SWITCHBOARD_PLUGIN_H".to_owned()),
        cpp_compat: true,
        usize_is_size_t: true,
        no_includes: true,
        sys_includes: vec!["stddef.h".to_owned(), "stdint.h".to_owned()],
        style: cbindgen::Style::Both,
        documentation_style: cbindgen::DocumentationStyle::Doxy,
        ..cbindgen::Config::default()
    };
    let types = [
        ("Str", "SbStr"),
        ("Header", "SbHeader"),
        ("PluginV1", "SbPlugin"),
        ("ChannelV1", "SbChannel"),
        ("OptionV1", "SbOption"),
        ("OptionValueV1", "SbOptionValue"),
        ("RuleV1", "SbRule"),
        ("AnswerV1", "SbAnswer"),
        ("InstanceV1", "SbInstance"),
        ("PatternV1", "SbPattern"),
        ("ContextV1", "SbContext"),
        ("SinkFn", "SbSinkFn"),
        ("BuildFn", "SbBuildFn"),
        ("EvaluateFn", "SbEvaluateFn"),
        ("FreeFn", "SbFreeFn"),
        ("InstanceCountFn", "SbInstanceCountFn"),
        ("InstanceAtFn", "SbInstanceAtFn"),
        ("FindIndexFn", "SbFindIndexFn"),
        ("UserAtFn", "SbUserAtFn"),
    ];
    let constants = [
        ("MAGIC", "SB_MAGIC"),
        ("ABI_MAJOR", "SB_ABI_MAJOR"),
        ("ABI_MINOR", "SB_ABI_MINOR"),
        ("CHOICE", "SB_OPTION_CHOICE"),
        ("BOOL", "SB_OPTION_BOOL"),
        ("INTEGER", "SB_OPTION_INTEGER"),
        ("STRING", "SB_OPTION_STRING"),
        ("STRING_LIST", "SB_OPTION_STRING_LIST"),
        ("NONE", "SB_ON_UNAVAILABLE_NONE"),
        ("ERROR", "SB_ON_UNAVAILABLE_ERROR"),
        ("SKIP", "SB_ON_UNAVAILABLE_SKIP"),
        ("OK", "SB_STATUS_OK"),
        ("PANICKED", "SB_STATUS_PANICKED"),
        ("SELECTED", "SB_OUTCOME_SELECTED"),
        ("NO_MATCH", "SB_OUTCOME_NO_MATCH"),
        ("UNUSABLE", "SB_OUTCOME_UNUSABLE"),
        ("FAILED", "SB_OUTCOME_FAILED"),
    ];
    for (rust, c_name) in types.iter().chain(&constants) {
        c.export.rename.insert((*rust).to_owned(), (*c_name).to_owned());
    }
    c.export.include = types.iter().map(|(rust, _)| (*rust).to_owned()).collect();
    c
}

/// The header as cbindgen writes it from today's `src/abi.rs`.
fn generate() -> String {
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config())
        .with_src(sdk_dir().join("src/abi.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen cannot read src/abi.rs: {e}"))
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_checked_in_header_is_generated_from_abi_rs() {
    let fresh = generate();
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(header_path(), &fresh).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(header_path()).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "{} is not what cbindgen generates from src/abi.rs; regenerate it from the repository root with\n  {REGENERATE}\nand commit it",
        header_path().display()
    );
}

/// A C program using every type of the header; it prints the sizes C sees.
const SIZES_C: &str = r#"
#include <stdio.h>
#include "switchboard_plugin.h"

int main(void) {
    static const SbStr name = SB_STR("x");
    SbContext cx;
    SbRule rule;
    SbBuildFn build = NULL;
    cx.struct_size = sizeof cx;
    rule.struct_size = sizeof rule;
    rule.build = build;
    printf("%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu\n",
           (unsigned long)sizeof(SbStr), (unsigned long)sizeof(SbHeader), (unsigned long)sizeof(SbPlugin),
           (unsigned long)sizeof(SbChannel), (unsigned long)sizeof(SbOption), (unsigned long)sizeof(SbOptionValue),
           (unsigned long)sizeof(SbRule), (unsigned long)sizeof(SbAnswer), (unsigned long)sizeof(SbInstance),
           (unsigned long)sizeof(SbPattern), (unsigned long)sizeof(SbContext), (unsigned long)name.len);
    return SB_ABI_MAJOR == 1 && SB_MAGIC == 0x3147554C50425753ULL && rule.build == NULL ? 0 : 1;
}
"#;

fn rust_sizes() -> String {
    use std::mem::size_of;
    [
        size_of::<abi::Str>(),
        size_of::<abi::Header>(),
        size_of::<abi::PluginV1>(),
        size_of::<abi::ChannelV1>(),
        size_of::<abi::OptionV1>(),
        size_of::<abi::OptionValueV1>(),
        size_of::<abi::RuleV1>(),
        size_of::<abi::AnswerV1>(),
        size_of::<abi::InstanceV1>(),
        size_of::<abi::PatternV1>(),
        size_of::<abi::ContextV1>(),
        1,
    ]
    .map(|n| n.to_string())
    .join(" ")
}

/// Compiles `SIZES_C` with `compiler` and `flags`, runs it, and returns
/// what it printed.
fn compile_and_run(compiler: &str, flags: &[&str], source_name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join(source_name);
    let binary = dir.path().join("sizes");
    std::fs::write(&source, SIZES_C).unwrap();
    let out = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(sdk_dir().join("include"))
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{compiler}`: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {flags:?} rejects switchboard_plugin.h:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&binary).output().unwrap();
    assert!(run.status.success(), "the C program's checks of the constants failed");
    String::from_utf8(run.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_header_compiles_as_strict_c99_with_the_rust_layout() {
    let sizes = compile_and_run("cc", &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"], "sizes.c");
    assert_eq!(sizes, rust_sizes(), "struct sizes as C sees them vs. as Rust does");
}

#[test]
fn the_header_compiles_as_cplusplus_with_the_rust_layout() {
    let sizes =
        compile_and_run("c++", &["-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"], "sizes.cpp");
    assert_eq!(sizes, rust_sizes(), "struct sizes as C++ sees them vs. as Rust does");
}

#[test]
fn the_c_example_plugin_compiles_cleanly_as_c99() {
    let example = sdk_dir().join("../c-example/first_connected.c");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC", "-I"])
        .arg(sdk_dir().join("include"))
        .arg("-o")
        .arg(dir.path().join("libfirst_connected_c.so"))
        .arg(Path::new(&example))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
