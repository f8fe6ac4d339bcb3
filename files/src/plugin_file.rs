//! A plugin's file (a native library or a WebAssembly module), checked
//! before anything of it is loaded: it exists and is a regular file, nobody
//! but its owner and group may change it, and it matches the `sha256` that
//! rules.yaml pins, if any.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A plugin file that passed the checks.
#[derive(Debug, Clone)]
pub struct PluginFile {
    /// The file's canonical path (what a loader keys its cache by).
    pub canonical: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}

/// Checks and reads the plugin file at `path`, listed in `rules_file` (as
/// named, for messages) with the optional `pin`; `what` names what a pin
/// stands for (`build`, `module`). The error says what is wrong and what to
/// do, without the path (the caller names the entry).
pub fn read_plugin_file(path: &Path, pin: Option<&str>, rules_file: &str, what: &str) -> Result<PluginFile, String> {
    let listed_in = Path::new(rules_file).file_name().map_or(rules_file.into(), |n| n.to_string_lossy());
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
    let sha256 = sha256_hex(&bytes);
    if let Some(pin) = pin {
        if !pin.eq_ignore_ascii_case(&sha256) {
            return Err(format!(
                "sha256 mismatch: the file's is {sha256} but {listed_in} pins {pin}; \
                 deploy the pinned {what} or update the pin"
            ));
        }
    }
    Ok(PluginFile { canonical, bytes, sha256 })
}

/// The lower-case hex SHA-256 of `bytes` (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut hex, b| {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_file_is_checked_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.wasm");
        std::fs::write(&file, b"abc").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let read = read_plugin_file(&file, Some(&abc.to_uppercase()), "dir/rules.yaml", "module").unwrap();
        assert_eq!((read.bytes.as_slice(), read.sha256.as_str()), (&b"abc"[..], abc));
        let wrong = read_plugin_file(&file, Some("00"), "dir/rules.yaml", "module").unwrap_err();
        assert!(wrong.contains("but rules.yaml pins 00; deploy the pinned module"), "{wrong}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o646)).unwrap();
        assert!(read_plugin_file(&file, None, "r", "build").unwrap_err().contains("world-writable (mode 646)"));
        assert!(read_plugin_file(dir.path(), None, "r", "build").unwrap_err().contains("is not a file"));
        let missing = read_plugin_file(&dir.path().join("no"), None, "r", "build").unwrap_err();
        assert!(missing.contains("no such file"), "{missing}");
    }
}
