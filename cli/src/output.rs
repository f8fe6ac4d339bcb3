//! Terminal output: colour only on a terminal (never in pipes), honouring
//! `NO_COLOR` and `CLICOLOR_FORCE` (anstream decides).

use anstyle::{AnsiColor, Style};

/// Bold, for headings and locations.
pub const BOLD: Style = Style::new().bold();
/// Green, for what went well.
pub const GOOD: Style = AnsiColor::Green.on_default().bold();
/// Red, for errors.
pub const BAD: Style = AnsiColor::Red.on_default().bold();
/// Yellow, for warnings and fall-throughs.
pub const WARN: Style = AnsiColor::Yellow.on_default();

/// `text` in `style` (the escapes are stripped by anstream where colour is off).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Standard output, buffered, colour decided by anstream.
pub fn stdout() -> std::io::BufWriter<anstream::AutoStream<std::io::StdoutLock<'static>>> {
    std::io::BufWriter::new(anstream::AutoStream::auto(std::io::stdout().lock()))
}

/// A `file:line:column: message` line with the location in bold.
pub fn located(line: &str) -> String {
    // The location ends at the first ": " after the file name.
    match line.find(": ") {
        Some(end) => format!("{}{}", paint(BOLD, &line[..=end]), &line[end + 1..]),
        None => line.to_owned(),
    }
}
