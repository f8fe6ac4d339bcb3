//! Command-line arguments: what the user typed, checked and resolved.

use std::ffi::OsString;
use std::path::PathBuf;

/// One line of usage, shown after an argument error.
pub const USAGE_SHORT: &str =
    "usage: switchboard <select|explain|check|rules|serve> [--rules R] [--world W] [--request F]; \
                               see `switchboard --help`";

const HELP: &str = "\
switchboard — decide which sender instance carries each outbound message

USAGE:
  switchboard select  --rules R [--world W] [--request F] [--watch] [--decision-log FILE]
  switchboard explain --rules R [--world W] --request F
  switchboard check   --rules R [--world W]
  switchboard rules   [--rules R]
  switchboard serve   --rules R [--world W] [--listen HOST:PORT] [--decision-log FILE|-]
                      [--max-body-bytes N] [--max-concurrency N] [--admin-token-file F]
                      [--insecure-admin] [--log-format text|json] [--dry-run]

COMMANDS:
  select   one decision (JSON) for the request in F; without --request, reads
           JSON Lines on stdin and writes one decision line per request, in order
  explain  the same decision as a readable table of the rules consulted
  check    validates the rules file (and world file); every problem with its line
  rules    lists the registered rules and channels (and the chains of R)
  serve    the decision service over HTTP (see the README, section Run as a service)

OPTIONS:
  --rules R     rules.yaml: rule order, enabled flags and options
  --world W     world file (YAML, or JSON by its .json name): locations and instances
  --request F   one request as a JSON object
  --max-line-bytes N  (select, batch) the longest request line read (default 16 MiB);
                a longer line is answered with code 100 without being stored
  --watch       (select, batch) reload R and W when they change, and on SIGHUP;
                reload events go to stderr, one line each
  --decision-log FILE  (select, serve) one JSON line per decision (serve: `-` for stdout)
  --listen HOST:PORT   (serve) where to listen (default 127.0.0.1:8080; port 0: any free port)
  --max-body-bytes N   (serve) the largest request body (default 1 MiB); 413 beyond
  --max-concurrency N  (serve) requests handled at once (default 1024); 503 beyond
  --admin-token-file F (serve) POST /v1/reload needs `Authorization: Bearer <F's content>`
  --insecure-admin     (serve) allow a non-loopback --listen without an admin token
  --log-format FORMAT  (serve) text (default) or json, on stderr
  --dry-run            (serve) accepted; no effect until capacity limits exist
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
    Serve,
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
    /// `--decision-log` (select, serve).
    pub decision_log: Option<PathBuf>,
    /// The options only `serve` takes, as given.
    pub serve: ServeArgs,
}

/// `serve`'s own options.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_concurrency: Option<usize>,
    pub admin_token_file: Option<PathBuf>,
    pub insecure_admin: bool,
    pub dry_run: bool,
    pub log_json: bool,
    /// Whether any of them was given (an error on other commands).
    pub given: bool,
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
        Some("serve") => Kind::Serve,
        Some("-h" | "--help" | "help") => return Ok(Parsed::Help(HELP.to_owned())),
        Some("-V" | "--version") => return Ok(Parsed::Help(format!("switchboard {}\n", env!("CARGO_PKG_VERSION")))),
        Some(other) => {
            return Err(format!("unknown command `{other}`; expected select, explain, check, rules or serve"))
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
        decision_log: None,
        serve: ServeArgs::default(),
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
                .ok_or_else(|| format!("`{name}` needs a value"))
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
            "--decision-log" => command.decision_log = Some(value("--decision-log")?),
            "--listen" => {
                let v = value("--listen")?;
                command.serve.listen = Some(v.to_str().map(str::to_owned).ok_or("`--listen` is not valid UTF-8")?);
                command.serve.given = true;
            }
            "--max-body-bytes" => {
                command.serve.max_body_bytes = Some(positive("--max-body-bytes", &value("--max-body-bytes")?)?);
                command.serve.given = true;
            }
            "--max-concurrency" => {
                command.serve.max_concurrency = Some(positive("--max-concurrency", &value("--max-concurrency")?)?);
                command.serve.given = true;
            }
            "--admin-token-file" => {
                command.serve.admin_token_file = Some(value("--admin-token-file")?);
                command.serve.given = true;
            }
            "--insecure-admin" | "--dry-run" | "--log-format" => {
                match flag {
                    "--insecure-admin" => command.serve.insecure_admin = true,
                    "--dry-run" => command.serve.dry_run = true,
                    _ => {
                        let v = value("--log-format")?;
                        command.serve.log_json = match v.to_str() {
                            Some("json") => true,
                            Some("text") => false,
                            _ => return Err(format!("`--log-format` is `text` or `json`; got `{}`", v.display())),
                        };
                    }
                }
                command.serve.given = true;
            }
            "-h" | "--help" => return Ok(Parsed::Help(HELP.to_owned())),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    match kind {
        Kind::Select | Kind::Explain | Kind::Check | Kind::Serve if command.rules.is_none() => {
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
        Kind::Explain | Kind::Check | Kind::Rules | Kind::Serve if command.watch => {
            return Err("`--watch` goes with `select` only (`serve` always watches)".into());
        }
        Kind::Select | Kind::Explain | Kind::Check | Kind::Rules if command.serve.given => {
            return Err("`--listen`, `--max-body-bytes`, `--max-concurrency`, `--admin-token-file`, \
                        `--insecure-admin`, `--log-format` and `--dry-run` go with `serve` only"
                .into());
        }
        Kind::Explain | Kind::Check | Kind::Rules if command.decision_log.is_some() => {
            return Err("`--decision-log` goes with `select` and `serve`".into());
        }
        Kind::Select if command.decision_log.as_deref().is_some_and(|p| p.as_os_str() == "-") => {
            return Err("`select --decision-log` needs a file: stdout carries the decisions".into());
        }
        Kind::Serve if command.request.is_some() => {
            return Err("`serve` takes requests over HTTP, not `--request`".into());
        }
        Kind::Check if command.request.is_some() => {
            return Err("`check` takes `--rules` and `--world` only".into());
        }
        _ => {}
    }
    Ok(Parsed::Run(command))
}

/// A positive count from an option's value.
fn positive(name: &str, value: &std::path::Path) -> Result<usize, String> {
    value
        .to_str()
        .and_then(|t| t.parse().ok())
        .filter(|n: &usize| *n > 0)
        .ok_or_else(|| format!("`{name}` takes a positive number; got `{}`", value.display()))
}
