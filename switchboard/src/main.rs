//! The `switchboard` command: parses arguments and dispatches to one module
//! per subcommand. Exit codes (SPEC §7): 0 selected / valid, 1 selection
//! error / invalid, 2 the command could not run.

use std::process::ExitCode;

mod args;
mod command;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let outcome = match args::parse(&argv) {
        Ok(args::Parsed::Run(command)) => command::run(command),
        Ok(args::Parsed::Help(text)) => {
            print!("{text}");
            Ok(command::Status::Success)
        }
        Err(message) => Err(command::Fatal(format!("{message}\n\n{}", args::USAGE_SHORT))),
    };
    match outcome {
        Ok(status) => status.into(),
        Err(command::Fatal(message)) => {
            for line in message.lines() {
                eprintln!("switchboard: {line}");
            }
            ExitCode::from(2)
        }
    }
}
