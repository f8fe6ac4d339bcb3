//! `switchboard replay`: re-decides a decision log with new rules and
//! prints what would change (docs/operator-tools.md). Capacity and conversation state in
//! a replay come from the log's own earlier decisions, in a private store;
//! the store the rules name (`capacity:`, a production Redis included) is
//! never read or written ([`switchboard::replay`]). A progress bar is drawn
//! on stderr only when stderr is a terminal.

use std::io::{IsTerminal, Write};

use switchboard::replay::{replay, Options};

use std::path::PathBuf;

use super::select::DEFAULT_MAX_LINE;
use super::{load, Fatal, Files, Format, Status};

/// Re-decide every request of a decision log with new rules and count what
/// changes (exit 1 when the changed share exceeds --max-changed).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: Files,
    /// The decision log (JSON Lines written by `select`/`serve --decision-log`).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// Fail (exit 1) when more than PCT percent of the decisions change (0-100).
    #[arg(long, value_name = "PCT", value_parser = percent)]
    pub max_changed: Option<f64>,
    /// `text` for people, `json` for programs.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The longest log line read; a longer one is counted as unreadable.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LINE)]
    pub max_line_bytes: usize,
}

fn percent(text: &str) -> Result<f64, String> {
    text.trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| format!("takes a percentage from 0 to 100; got `{text}`"))
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let (plan, world) = load(&args.files)?;
    let path = args.log.as_path();
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file; check the path".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied; check the file's permissions".to_owned(),
            _ => format!("cannot be read: {e}"),
        };
        Fatal::Message(format!("{name}: {why}"))
    })?;
    if path.is_dir() {
        return Err(Fatal::Message(format!("{name}: is a directory; give the path of a decision log")));
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
    let options = Options { file: name.clone(), max_line_bytes: args.max_line_bytes, ..Options::default() };
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    let summary = replay(&plan, &world, input, &options, &progress)
        .map_err(|e| Fatal::Message(format!("{name}: cannot read the log: {e}")))?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if summary.decisions == 0 && summary.unreadable > 0 {
        let first = summary
            .first_unreadable
            .clone()
            .map(|d| switchboard::FileErrors { file: name.clone(), diagnostics: vec![d] });
        let first = first.map_or(String::new(), |e| format!("\n{e}"));
        return Err(Fatal::Message(format!(
            "{name}: no line is a decision log line (written by `select`/`serve --decision-log`); {} unreadable{first}",
            summary.unreadable
        )));
    }
    let text = match args.format {
        Format::Text => summary.to_text(&name),
        Format::Json => format!("{}\n", summary.to_json(&name)),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())?;
    let over = args.max_changed.is_some_and(|max| summary.changed_percent() > max);
    Ok(if over { Status::Failure } else { Status::Success })
}
