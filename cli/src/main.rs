//! The `switchboard` command: parses arguments with clap and dispatches to
//! one module per subcommand (`src/command/`). Everything it decides comes
//! from the `switchboard` library; this crate only reads arguments, prints
//! and chooses the exit code.
//!
//! Exit codes (docs/cli.md): 0 selected / valid, 1 selection error / invalid,
//! 2 the command could not run (bad arguments, unreadable or invalid files,
//! output that cannot be written).

use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod command;
mod output;

/// mimalloc rather than the system allocator: a `serve` that reloads a
/// large world builds each new world on whichever thread reloads, and
/// glibc's per-thread arenas kept the freed worlds' pages (RSS grew by a
/// world per reload); mimalloc returns freed pages to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use command::Fatal;

/// Decide which sender instance carries each outbound message.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about,
    long_about = "Decide which sender instance (a WhatsApp number, an iMessage account, an SMS number) \
                  carries each outbound message: an ordered chain of rules from rules.yaml, over the \
                  locations and instances of a world file.",
    after_help = "EXIT STATUS:\n  0  selected / valid\n  1  selection error / invalid files\n  2  the command could not run \
                  (bad arguments, unreadable or invalid files, output that cannot be written)",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Select(command::select::Args),
    Serve(command::serve::Args),
    Explain(command::explain::Args),
    Check(command::check::Args),
    Rules(command::rules::Args),
    Test(command::test::Args),
    Replay(command::replay::Args),
    Record(command::record::Args),
    Schema(command::schema::Args),
    Completions(command::completions::Args),
    Man(command::man::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Select(args) => command::select::run(args),
        Command::Serve(args) => command::serve::run(args),
        Command::Explain(args) => command::explain::run(args),
        Command::Check(args) => command::check::run(args),
        Command::Rules(args) => command::rules::run(args),
        Command::Test(args) => command::test::run(args),
        Command::Replay(args) => command::replay::run(args),
        Command::Record(args) => command::record::run(args),
        Command::Schema(args) => command::schema::run(args),
        Command::Completions(args) => command::completions::run(args, &mut Cli::command()),
        Command::Man(args) => command::man::run(args, Cli::command()),
    };
    match outcome {
        Ok(status) => status.into(),
        Err(fatal) => report(fatal),
    }
}

/// Prints why the command could not run and returns its exit code.
fn report(fatal: Fatal) -> ExitCode {
    let mut err = anstream::stderr();
    let _ = match fatal {
        // A closed pipe (`switchboard rules | head -5`) ends the command quietly.
        Fatal::Write(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Fatal::Write(e) => writeln!(err, "switchboard: cannot write output: {e}"),
        // Located messages start with `file:line:column:` so that editors jump to them.
        Fatal::Files(text) => writeln!(err, "{text}"),
        Fatal::Message(text) => text.lines().try_for_each(|line| writeln!(err, "switchboard: {line}")),
    };
    ExitCode::from(2)
}
