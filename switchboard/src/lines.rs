//! The JSON Lines decision loop: request lines in, one decision line out
//! per non-blank input line, in input order. One loop serves batch mode
//! (every core), `select --watch` (one line at a time, flushed) and the
//! service's batch route ([`answer_lines`] on [`Lines::of_body`]).
//!
//! A line that cannot be used (bad JSON, invalid UTF-8, longer than the
//! limit) gets its code-100 decision and the loop goes on; an overlong line
//! is consumed without being stored.
//!
//! ```
//! use switchboard::lines::{decide_lines, Mode};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = switchboard::registry()?;
//! let plan = switchboard_files::compile("rules: [any_available]", "rules.yaml", registry.clone())?;
//! let world = switchboard::World::empty();
//! let input = b"{\"location\":\"shop\",\"channel\":\"sms\",\"body\":\"hi\"}\nnot json\n";
//! let mut out = Vec::new();
//! decide_lines(&input[..], &mut out, Mode::Parallel, 1 << 20, &|line| line.decide(|r| plan.select(&world, r)))?;
//! assert_eq!(String::from_utf8(out)?.lines().count(), 2);
//! # Ok(()) }
//! ```

use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use switchboard_core::{ErrorKind, Request};
use switchboard_engine::Decision;

/// How the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decide chunks of lines on every core; write them back in input order.
    Parallel,
    /// One line at a time, each decision written and flushed at once (a live
    /// stream such as `select --watch`).
    Stream,
}

/// Why the loop stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LinesError {
    /// The input could not be read.
    #[error("cannot read input: {0}")]
    Read(#[source] io::Error),
    /// A decision could not be written (not a closed pipe: that ends the
    /// loop quietly).
    #[error("cannot write decisions: {0}")]
    Write(#[source] io::Error),
}

/// One input line, read: its text, or why it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line's text (UTF-8, not blank, without its newline).
    Text(String),
    /// The line is not UTF-8: why (naming the first bad byte), and its
    /// text with each bad sequence replaced by U+FFFD.
    NotUtf8 {
        /// Why it cannot be used.
        why: String,
        /// The text as far as it can be read.
        lossy: String,
    },
    /// The line cannot be used (too long); the message says why.
    Unreadable(String),
}

impl Line {
    /// The decision for this line: `select` on its request, or code 100.
    pub fn decide(&self, select: impl FnOnce(&Request) -> Decision) -> Decision {
        match self {
            Line::Text(text) => crate::decide_text(text, select),
            Line::NotUtf8 { why: message, .. } | Line::Unreadable(message) => {
                Decision::request_error(ErrorKind::InvalidRequest, message.as_str(), None)
            }
        }
    }
}

/// The decision for one line.
pub type Decide<'a> = dyn Fn(&Line) -> Decision + Sync + 'a;

/// The answer for one line: appends one JSON object (no newline) to the
/// buffer.
pub type Answer<'a> = dyn Fn(&Line, &mut Vec<u8>) + Sync + 'a;

/// Reads JSON Lines from `input` and writes one decision line per
/// non-blank input line to `out`, in input order. A closed pipe on `out`
/// ends the loop quietly (`Ok`); any other write error is returned, never
/// lost.
pub fn decide_lines(
    input: impl BufRead + Send,
    out: &mut (impl Write + ?Sized),
    mode: Mode,
    max_line: usize,
    decide: &Decide<'_>,
) -> Result<(), LinesError> {
    answer_lines(Lines::new(input, max_line), out, mode, &|line, text| decide(line).write_json(text))
}

/// [`decide_lines`] on lines already framed (e.g. [`Lines::of_body`]),
/// each answered by `answer` (a decision written with the fields its
/// transport adds).
pub fn answer_lines(
    lines: Lines<impl BufRead + Send>,
    out: &mut (impl Write + ?Sized),
    mode: Mode,
    answer: &Answer<'_>,
) -> Result<(), LinesError> {
    let result = match mode {
        Mode::Stream => stream(lines, out, answer),
        Mode::Parallel => parallel(lines, out, answer),
    };
    match result {
        Err(LinesError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn stream(
    mut lines: Lines<impl BufRead>,
    out: &mut (impl Write + ?Sized),
    answer: &Answer<'_>,
) -> Result<(), LinesError> {
    let mut text = Vec::with_capacity(512);
    while let Some(line) = lines.next_line().map_err(LinesError::Read)? {
        text.clear();
        answer(&line, &mut text);
        text.push(b'\n');
        out.write_all(&text).and_then(|()| out.flush()).map_err(LinesError::Write)?;
    }
    Ok(())
}

const CHUNK: usize = 256;

/// A reader cuts the input into numbered chunks, workers decide chunks in
/// parallel, and this thread writes them back in order.
fn parallel(
    lines: Lines<impl BufRead + Send>,
    out: &mut (impl Write + ?Sized),
    answer: &Answer<'_>,
) -> Result<(), LinesError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Vec<Line>)>(workers * 2);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(workers * 2);
    let work_rx = Mutex::new(work_rx);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = &stop;
        let reader = scope.spawn(move || read_chunks(lines, &work_tx, stop));
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || loop {
                let job = work_rx.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
                let Ok((seq, lines)) = job else { break };
                let mut text = Vec::with_capacity(lines.len() * 320);
                for line in &lines {
                    answer(line, &mut text);
                    text.push(b'\n');
                }
                if done_tx.send((seq, text)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0u64;
        let mut failed = None;
        for (seq, text) in done_rx {
            pending.insert(seq, text);
            while let Some(text) = pending.remove(&next) {
                if failed.is_none() {
                    failed = out.write_all(&text).err();
                    // Nothing more can be written: the reader stops, and the
                    // chunks already read are drained.
                    stop.store(failed.is_some(), Ordering::Relaxed);
                }
                next += 1;
            }
        }
        if failed.is_none() {
            failed = out.flush().err();
        }
        let read = match reader.join() {
            Ok(r) => r.map_err(LinesError::Read),
            Err(_) => Err(LinesError::Read(io::Error::other("the reader thread failed"))),
        };
        match failed {
            Some(e) => Err(LinesError::Write(e)),
            None => read,
        }
    })
}

fn read_chunks(
    mut lines: Lines<impl BufRead>,
    work: &mpsc::SyncSender<(u64, Vec<Line>)>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut seq = 0u64;
    while let Some(line) = lines.next_line()? {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        chunk.push(line);
        if chunk.len() == CHUNK {
            if work.send((seq, std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))).is_err() {
                return Ok(());
            }
            seq += 1;
        }
    }
    if !chunk.is_empty() {
        let _ = work.send((seq, chunk));
    }
    Ok(())
}

/// JSON Lines input: numbered lines of at most `max` bytes, blank lines
/// skipped, each read as a request text or as the reason it cannot be.
#[derive(Debug)]
pub struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    max: usize,
    number: usize,
    bytes: u64,
    /// Framed as an HTTP batch body ([`Lines::of_body`]).
    body: bool,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `input`, each at most `max` bytes.
    pub fn new(input: R, max: usize) -> Self {
        Lines { input, buf: Vec::new(), max, number: 0, bytes: 0, body: false }
    }

    /// The lines of an HTTP batch body (`POST /v1/select/batch`, whose body
    /// has its own size limit): no limit per line, a trailing `\r`
    /// dropped, a line of ASCII whitespace skipped, and a line that is not
    /// UTF-8 answered as a request body would be ([`crate::request_text`]).
    pub fn of_body(input: R) -> Self {
        Lines { body: true, ..Lines::new(input, usize::MAX) }
    }

    /// The 1-based number of the line last returned (blank lines count).
    pub fn number(&self) -> usize {
        self.number
    }

    /// The bytes of input consumed so far (for progress).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next non-blank line, `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        while let Some((overlong, consumed)) = read_capped(&mut self.input, &mut self.buf, self.max)? {
            self.number += 1;
            self.bytes += consumed;
            let number = self.number;
            if overlong {
                return Ok(Some(Line::Unreadable(format!(
                    "line {number} is longer than the {}-byte limit (--max-line-bytes); it was skipped",
                    self.max
                ))));
            }
            let line = match self.body {
                true => self.buf.strip_suffix(b"\r").unwrap_or(&self.buf),
                false => &self.buf,
            };
            if self.body && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // The buffer is kept for the next line; the text is copied out
            // at its exact size.
            match std::str::from_utf8(line) {
                Ok(text) if !self.body && text.trim().is_empty() => {}
                Ok(text) => return Ok(Some(Line::Text(text.to_owned()))),
                Err(e) => {
                    let why = match self.body {
                        true => crate::not_utf8(&e),
                        false => {
                            format!("line {number} is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to())
                        }
                    };
                    return Ok(Some(Line::NotUtf8 { why, lossy: String::from_utf8_lossy(line).into_owned() }));
                }
            }
        }
        Ok(None)
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `max`
/// bytes: a longer line is consumed to its end without being stored, and
/// reported as overlong; also returns the bytes consumed. `None` at the
/// end of the input.
fn read_capped(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<(bool, u64)>> {
    buf.clear();
    let (mut overlong, mut any, mut consumed) = (false, false, 0u64);
    loop {
        let available = match input.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some((overlong, consumed)));
        }
        any = true;
        let (end, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if !overlong {
            if buf.len() + end > max {
                overlong = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&available[..end]);
            }
        }
        let step = if done { end + 1 } else { end };
        input.consume(step);
        consumed += step as u64;
        if done {
            return Ok(Some((overlong, consumed)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<Line> {
        let mut lines = Lines::new(input, max);
        std::iter::from_fn(|| lines.next_line().ok().flatten()).collect()
    }

    #[test]
    fn blank_lines_are_skipped_and_numbers_count_them() {
        let got = all(b"a\n\n  \n\xff\nb", 100);
        assert_eq!(got[0], Line::Text("a".into()));
        assert_eq!(
            got[1],
            Line::NotUtf8 {
                why: "line 4 is not valid UTF-8 (first bad byte at offset 0)".into(),
                lossy: "\u{fffd}".into()
            }
        );
        assert_eq!(got[2], Line::Text("b".into()));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_body_drops_carriage_returns_and_skips_only_ascii_blank_lines() {
        let mut lines = Lines::of_body(&b"a\r\n \t\r\n\xc2\xa0\n{\xff}\r\n"[..]);
        let got: Vec<Line> = std::iter::from_fn(|| lines.next_line().ok().flatten()).collect();
        assert_eq!(got[0], Line::Text("a".into()));
        // A no-break space is not JSON whitespace: the line is a request (a bad one).
        assert_eq!(got[1], Line::Text("\u{a0}".into()));
        let why = "the request is not valid UTF-8 (first bad byte at offset 1)".to_owned();
        assert_eq!(got[2], Line::NotUtf8 { why, lossy: "{\u{fffd}}".into() });
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn an_overlong_line_is_reported_and_the_next_one_read() {
        let got = all(b"0123456789\nok\n", 5);
        assert!(matches!(&got[0], Line::Unreadable(m) if m.contains("5-byte limit")));
        assert_eq!(got[1], Line::Text("ok".into()));
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn unreadable(_: &Line) -> Decision {
        Decision::request_error(ErrorKind::InvalidRequest, "x", None)
    }

    #[test]
    fn a_write_error_is_returned_in_both_modes_and_a_closed_pipe_is_quiet() {
        let input = "{}\n".repeat(1000);
        for mode in [Mode::Parallel, Mode::Stream] {
            let err = decide_lines(input.as_bytes(), &mut Full, mode, 100, &unreadable).unwrap_err();
            assert!(err.to_string().starts_with("cannot write decisions:"), "{err}");
            assert!(decide_lines(input.as_bytes(), &mut Closed, mode, 100, &unreadable).is_ok());
        }
    }
}
