//! `switchboard test`: runs scenario files (docs/operator-tools.md) and prints one line
//! per case, the rules that decided no case, and `N passed, N failed`.

use std::io::Write;

use switchboard::scenario::{Sources, Suite};

use std::path::PathBuf;

use super::{registry, Fatal, Format, Status};

/// Run scenario files: one line per case (ok / FAILED), the rules that decided
/// no case, then `N passed, N failed` (exit 0 all pass, 1 any fails).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The rules.yaml for scenario files that do not name one.
    #[arg(long, value_name = "R")]
    pub rules: Option<PathBuf>,
    /// The world file for scenario files that do not name one.
    #[arg(long, value_name = "W")]
    pub world: Option<PathBuf>,
    /// `text`, or `json`: one object per case on stdout (the summary on stderr).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Only the cases whose name contains NAME.
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// Scenario files (YAML).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let registry = registry()?;
    let sources = Sources { rules: args.rules.clone(), world: args.world.clone() };
    let suite = Suite::load(&args.files, &sources, &registry)
        .map_err(|errors| Fatal::Files(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))?;
    let report = suite.run(args.filter.as_deref());
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    match args.format {
        Format::Text => {
            for case in &report.cases {
                text.push_str(&case.to_text());
            }
            for line in report.coverage_lines() {
                text.push_str(&line);
                text.push('\n');
            }
            text.push_str(&report.closing_line());
            text.push('\n');
        }
        Format::Json => {
            // stdout carries one JSON object per case, nothing else; the
            // coverage and the closing line go to stderr.
            for case in &report.cases {
                text.push_str(&case.to_json().to_string());
                text.push('\n');
            }
            for line in report.coverage_lines() {
                eprintln!("{line}");
            }
            eprintln!("{}", report.closing_line());
        }
    }
    out.write_all(text.as_bytes()).and_then(|()| out.flush())?;
    Ok(if report.failed() == 0 { Status::Success } else { Status::Failure })
}
