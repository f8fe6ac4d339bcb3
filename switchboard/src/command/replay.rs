//! `switchboard replay`: re-decides a decision log with new rules and
//! prints what would change (SPEC §12). A progress bar is drawn on stderr
//! only when stderr is a terminal.

use std::io::{IsTerminal, Write};

use switchboard::replay::{replay, Options};

use super::{load, Fatal, Status};
use crate::args::{Command, Format};

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let (plan, world) = load(command)?;
    let path = command.log.as_deref().ok_or_else(|| Fatal("`--log` is required".into()))?;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file; check the path".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied; check the file's permissions".to_owned(),
            _ => format!("cannot be read: {e}"),
        };
        Fatal(format!("{name}: {why}"))
    })?;
    if path.is_dir() {
        return Err(Fatal(format!("{name}: is a directory; give the path of a decision log")));
    }
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    });
    let progress = |bytes: u64| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    };
    let options = Options { file: name.clone(), max_line_bytes: command.max_line_bytes, ..Options::default() };
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    let summary = replay(&plan, &world, input, &options, &progress)
        .map_err(|e| Fatal(format!("{name}: cannot read the log: {e}")))?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if summary.decisions == 0 && summary.unreadable > 0 {
        let first = summary
            .first_unreadable
            .clone()
            .map(|d| switchboard::FileErrors { file: name.clone(), diagnostics: vec![d] });
        let first = first.map_or(String::new(), |e| format!("\n{e}"));
        return Err(Fatal(format!(
            "{name}: no line is a decision log line (SPEC §9); {} unreadable{first}",
            summary.unreadable
        )));
    }
    let text = match command.format {
        Format::Text => summary.to_text(&name),
        Format::Json => format!("{}\n", summary.to_json(&name)),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    let over = command.max_changed.is_some_and(|max| summary.changed_percent() > max);
    Ok(if over { Status::Failure } else { Status::Success })
}
