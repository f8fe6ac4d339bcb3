//! Shared helpers: the registry, fixtures, temp files and the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use switchboard::{Decision, Plan, Registry, Request, World};

pub fn registry() -> Arc<Registry> {
    switchboard::registry().unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

pub fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

pub fn plan(yaml: &str) -> Plan {
    switchboard::files::compile(yaml, "rules.yaml", registry()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn default_plan() -> Plan {
    switchboard::load_rules(repo_file("rules.yaml"), &registry()).unwrap()
}

pub fn world(yaml: &str) -> World {
    switchboard::files::read_world(yaml, "world.yaml", &registry()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn request(json: &str) -> Request {
    Request::from_json(json).unwrap()
}

pub fn decide(plan: &Plan, world: &World, json: &str) -> Decision {
    plan.select(world, &request(json))
}

/// The selected instance id, or `code/kind`.
pub fn summary(d: &Decision) -> String {
    match &d.result {
        Ok(i) => i.id().to_owned(),
        Err(e) => format!("{}/{}", e.code, e.kind),
    }
}

pub fn outcomes(d: &Decision) -> Vec<String> {
    d.trace.iter().map(|t| format!("{}:{}", t.rule, t.outcome.as_str())).collect()
}

/// Runs the binary with `args`, feeding `stdin`.
pub fn run(args: &[&str], stdin: &str) -> Output {
    run_bytes(args, stdin.as_bytes())
}

/// The binary started with `args` and every stream piped.
fn child(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the binary with `args`, feeding raw bytes (invalid UTF-8 included).
pub fn run_bytes(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = child(args);
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic reached the user: {stderr}");
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temp dir holding `files`.
pub fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Builds the example and fixture plugins once (into their own target
/// directory, so the outer `cargo test` lock is never contended) and
/// returns the directory holding the `.so` files.
pub fn plugin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_file("");
        let target = root.join("target/plugin-tests");
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "switchboard-plugin-business-hours", "-p", "switchboard-plugin-telegram"])
            .args(["-p", "switchboard-plugin-misbehave", "-p", "switchboard-plugin-abi-fixture"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(status.success(), "building the plugins failed");
        target.join("debug")
    })
    .clone()
}

/// The path of a built plugin: `business_hours`, `telegram`, `misbehave`,
/// `abi_fixture`.
pub fn plugin(name: &str) -> PathBuf {
    plugin_dir().join(format!("libswitchboard_{name}.so"))
}

/// Compiles C source into a shared library in `dir` (for crafted plugins,
/// good and bad), with `switchboard_plugin.h` on the include path.
pub fn c_library(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("lib{name}.so"));
    std::fs::write(&c, source).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-I"])
        .arg(repo_file("plugins/sdk/include"))
        .arg("-o")
        .arg(&so)
        .arg(&c)
        .status()
        .unwrap();
    assert!(status.success(), "cc failed on {name}.c");
    so
}

/// The C example plugin, built once with exactly the command docs/plugins.md
/// and `first_connected.c` give, run from a directory laid out like the
/// repository root (its `plugins` is the repository's), so that the build
/// leaves nothing in the work tree.
pub fn c_example_plugin() -> PathBuf {
    static SO: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SO.get_or_init(|| {
        let root = repo_file("target/plugin-tests/c-example");
        std::fs::create_dir_all(&root).unwrap();
        let link = root.join("plugins");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(repo_file("plugins"), &link).unwrap();
        }
        let command =
            "cc -shared -fPIC -I plugins/sdk/include -o libfirst_connected_c.so plugins/c-example/first_connected.c";
        let words: Vec<&str> = command.split(' ').collect();
        let out = Command::new(words[0]).args(&words[1..]).current_dir(&root).output().unwrap();
        assert!(out.status.success(), "`{command}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
        root.join("libfirst_connected_c.so")
    })
    .clone()
}

/// A running `switchboard` with piped stdin/stdout/stderr, for interactive
/// tests (`select --watch`): its stdin and a line reader on its stdout.
pub fn spawn(
    args: &[&str],
) -> (std::process::Child, std::process::ChildStdin, std::io::BufReader<std::process::ChildStdout>) {
    let mut child = child(args);
    let stdin = child.stdin.take().unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    (child, stdin, stdout)
}
