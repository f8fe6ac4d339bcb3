//! `switchboard explain`: the decision as a table a person reads, or as
//! the decision JSON (`--format json`).

use std::io::Write as _;
use std::path::PathBuf;

use super::{load, read_request, Fatal, Files, Format, Status};
use crate::output::{paint, stdout, BAD, BOLD, GOOD, WARN};

/// The same decision as `select`, as a readable table of the rules consulted.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: Files,
    /// One request as a JSON object (`-`: standard input).
    #[arg(long, value_name = "F")]
    pub request: PathBuf,
    /// `text`: the table; `json`: the decision object.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let (plan, world) = load(&args.files)?;
    let text = read_request(&args.request)?;
    let explained = switchboard::report::explain(&plan, &world, text.as_bytes());
    let mut out = stdout();
    match args.format {
        Format::Json => writeln!(out, "{}", explained.decision.to_json())?,
        Format::Text => {
            for line in explained.table.lines() {
                writeln!(out, "{}", colour(line))?;
            }
        }
    }
    out.flush()?;
    Ok(if explained.decision.is_ok() { Status::Success } else { Status::Failure })
}

/// Colours a line of the table: the decision, each outcome word, and each
/// limit reached.
fn colour(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("decision  ") {
        let style = if rest.starts_with("selected") { GOOD } else { BAD };
        return format!("{}{}", paint(BOLD, "decision  "), paint(style, rest));
    }
    if line.contains("(at capacity)") {
        return line.replace("(at capacity)", &paint(BAD, "(at capacity)"));
    }
    for (word, style) in [("  selected  ", GOOD), ("  failed  ", BAD), ("  fell_through  ", WARN)] {
        if let Some(at) = line.find(word) {
            let (before, after) = line.split_at(at + 2);
            let end = word.len() - 4;
            return format!("{before}{}{}", paint(style, &after[..end]), &after[end..]);
        }
    }
    line.to_owned()
}
