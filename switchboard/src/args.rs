//! Command-line arguments: what the user typed, checked and resolved.

use std::ffi::OsString;
use std::path::PathBuf;

/// One line of usage, shown after an argument error.
pub const USAGE_SHORT: &str =
    "usage: switchboard <select|explain|check|rules|test|replay|schema> [--rules R] [--world W] [--request F]; \
                               see `switchboard --help`";

const HELP: &str = "\
switchboard — decide which sender instance carries each outbound message

USAGE:
  switchboard select  --rules R [--world W] [--request F] [--watch]
  switchboard explain --rules R [--world W] --request F
  switchboard check   --rules R [--world W]
  switchboard rules   [--rules R]
  switchboard test    [--rules R] [--world W] [--format text|json] [--filter NAME] FILE...
  switchboard replay  --rules NEW [--world W] --log FILE [--max-changed PCT] [--format text|json]
  switchboard schema  rules|world [--rules R]

COMMANDS:
  select   one decision (JSON) for the request in F; without --request, reads
           JSON Lines on stdin and writes one decision line per request, in order
  explain  the same decision as a readable table of the rules consulted
  check    validates the rules file (and world file); every problem with its line
  rules    lists the registered rules and channels (and the chains of R)
  test     runs scenario files: one line per case (ok / FAILED), then
           `N passed, N failed`; exit 1 when a case fails
  replay   re-decides every request of a decision log with NEW and counts
           the decisions that change; exit 1 above --max-changed percent
  schema   prints the JSON Schema (draft 2020-12) of rules.yaml or of the
           world file, plugin rules of R included

OPTIONS:
  --rules R     rules.yaml: rule order, enabled flags and options
  --world W     world file (YAML, or JSON by its .json name): locations and instances
  --request F   one request as a JSON object
  --max-line-bytes N  (select batch, replay) the longest line read (default 16 MiB);
                a longer line is answered with code 100 without being stored
  --watch       (select, batch) reload R and W when they change, and on SIGHUP;
                reload events go to stderr, one line each
  --format F    (test, replay) text (default) or json
  --filter NAME (test) only the cases whose name contains NAME
  --log FILE    (replay) the decision log (JSON Lines, SPEC §9)
  --max-changed PCT  (replay) exit 1 when more than PCT percent of the decisions change
  -h, --help    this help
  -V, --version the version

EXIT STATUS:
  0 selected / valid, 1 selection error / invalid, 2 the command could not run
";

/// The subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Select,
    Explain,
    Check,
    Rules,
    Test,
    Replay,
    Schema,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// A resolved command line.
#[derive(Debug, Clone)]
pub struct Command {
    pub kind: Kind,
    pub rules: Option<PathBuf>,
    pub world: Option<PathBuf>,
    pub request: Option<PathBuf>,
    pub watch: bool,
    pub max_line_bytes: usize,
    /// `test`: the scenario files; `schema`: `rules` or `world`.
    pub positional: Vec<PathBuf>,
    pub format: Format,
    pub filter: Option<String>,
    pub log: Option<PathBuf>,
    pub max_changed: Option<f64>,
}

/// The default `--max-line-bytes`: 16 MiB, room for a request carrying a
/// large location's instances, far below what would strain memory.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

/// What to do.
pub enum Parsed {
    Run(Command),
    Help(String),
}

pub fn parse(argv: &[OsString]) -> Result<Parsed, String> {
    let mut words = argv.iter();
    let Some(first) = words.next() else {
        return Ok(Parsed::Help(HELP.to_owned()));
    };
    let kind = match first.to_str() {
        Some("select") => Kind::Select,
        Some("explain") => Kind::Explain,
        Some("check") => Kind::Check,
        Some("rules") => Kind::Rules,
        Some("test") => Kind::Test,
        Some("replay") => Kind::Replay,
        Some("schema") => Kind::Schema,
        Some("-h" | "--help" | "help") => return Ok(Parsed::Help(HELP.to_owned())),
        Some("-V" | "--version") => return Ok(Parsed::Help(format!("switchboard {}\n", env!("CARGO_PKG_VERSION")))),
        Some(other) => {
            return Err(format!(
                "unknown command `{other}`; expected select, explain, check, rules, test, replay or schema"
            ))
        }
        None => return Err("the command is not valid UTF-8".into()),
    };
    let mut command = Command {
        kind,
        rules: None,
        world: None,
        request: None,
        watch: false,
        max_line_bytes: DEFAULT_MAX_LINE,
        positional: Vec::new(),
        format: Format::Text,
        filter: None,
        log: None,
        max_changed: None,
    };
    while let Some(word) = words.next() {
        let text = word.to_str().ok_or_else(|| format!("argument {word:?} is not valid UTF-8"))?;
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(OsString::from(v))),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<PathBuf, String> {
            inline
                .clone()
                .or_else(|| words.next().cloned())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| format!("`{name}` needs a file path"))
        };
        match flag {
            "--rules" => command.rules = Some(value("--rules")?),
            "--world" => command.world = Some(value("--world")?),
            "--request" => command.request = Some(value("--request")?),
            "--watch" => command.watch = true,
            "--max-line-bytes" => {
                let v = value("--max-line-bytes")?;
                command.max_line_bytes =
                    v.to_str().and_then(|t| t.parse().ok()).filter(|n: &usize| *n > 0).ok_or_else(|| {
                        format!("`--max-line-bytes` takes a positive number of bytes; got `{}`", v.display())
                    })?;
            }
            "--format" => {
                let v = value("--format")?;
                command.format = match v.to_str() {
                    Some("text") => Format::Text,
                    Some("json") => Format::Json,
                    _ => return Err(format!("`--format` takes `text` or `json`; got `{}`", v.display())),
                };
            }
            "--filter" => {
                let v = value("--filter")?;
                command.filter = Some(v.to_string_lossy().into_owned());
            }
            "--log" => command.log = Some(value("--log")?),
            "--max-changed" => {
                let v = value("--max-changed")?;
                let text = v.to_string_lossy();
                command.max_changed = Some(
                    text.trim_end_matches('%')
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..=100.0).contains(p))
                        .ok_or_else(|| format!("`--max-changed` takes a percentage from 0 to 100; got `{text}`"))?,
                );
            }
            "-h" | "--help" => return Ok(Parsed::Help(HELP.to_owned())),
            positional if !positional.starts_with('-') && matches!(kind, Kind::Test | Kind::Schema) => {
                command.positional.push(PathBuf::from(positional));
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    match kind {
        Kind::Select | Kind::Explain | Kind::Check if command.rules.is_none() => {
            return Err("`--rules` is required: the rules.yaml to use".into());
        }
        Kind::Explain if command.request.is_none() => {
            return Err("`explain` needs `--request F`: the request to explain".into());
        }
        Kind::Rules if command.world.is_some() || command.request.is_some() => {
            return Err("`rules` takes only `--rules`".into());
        }
        Kind::Select if command.watch && command.request.is_some() => {
            return Err("`--watch` serves JSON Lines on stdin; it does not go with `--request`".into());
        }
        Kind::Explain | Kind::Check | Kind::Rules if command.watch => {
            return Err("`--watch` goes with `select` only".into());
        }
        Kind::Check if command.request.is_some() => {
            return Err("`check` takes `--rules` and `--world` only".into());
        }
        Kind::Test | Kind::Replay | Kind::Schema if command.watch || command.request.is_some() => {
            return Err("`--watch` and `--request` go with `select` and `explain` only".into());
        }
        Kind::Test if command.positional.is_empty() => {
            return Err("`test` needs at least one scenario file: `switchboard test FILE...`".into());
        }
        Kind::Replay if command.rules.is_none() => {
            return Err("`replay` needs `--rules NEW`: the rules.yaml to replay the log with".into());
        }
        Kind::Replay if command.log.is_none() => {
            return Err("`replay` needs `--log FILE`: a decision log (`select`/`serve --decision-log`)".into());
        }
        Kind::Schema
            if command.positional.len() != 1 || !matches!(command.positional[0].to_str(), Some("rules" | "world")) =>
        {
            return Err("`schema` takes one of `rules` or `world`: `switchboard schema rules [--rules R]`".into());
        }
        Kind::Schema if command.world.is_some() => {
            return Err("`schema` takes only `--rules` (for the plugins it lists)".into());
        }
        _ if command.format == Format::Json && !matches!(kind, Kind::Test | Kind::Replay) => {
            return Err("`--format` goes with `test` and `replay` only".into());
        }
        _ if command.filter.is_some() && kind != Kind::Test => {
            return Err("`--filter` goes with `test` only".into());
        }
        _ if (command.log.is_some() || command.max_changed.is_some()) && kind != Kind::Replay => {
            return Err("`--log` and `--max-changed` go with `replay` only".into());
        }
        _ => {}
    }
    Ok(Parsed::Run(command))
}
