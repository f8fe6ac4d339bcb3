//! `switchboard test`: runs scenario files (SPEC §12) and prints one line
//! per case, the rules that decided no case, and `N passed, N failed`.

use std::io::Write;

use switchboard::scenario::{Sources, Suite};

use super::{registry, Fatal, Status};
use crate::args::{Command, Format};

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let registry = registry()?;
    let sources = Sources { rules: command.rules.clone(), world: command.world.clone() };
    let suite = Suite::load(&command.positional, &sources, &registry)
        .map_err(|errors| Fatal(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))?;
    let report = suite.run(command.filter.as_deref());
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    match command.format {
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
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(if report.failed() == 0 { Status::Success } else { Status::Failure })
}
