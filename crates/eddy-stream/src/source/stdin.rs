//! Standard input as lines. A reader thread does the blocking reads, so the subtask can keep
//! time moving (flushing, watermarks) while stdin is quiet. Lines are read with a bound on
//! their length (see [`super::lines`]); one too long or not UTF-8 goes to the source's
//! dead-letter output with its line number.

use std::io;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use eddy_core::{BoxError, Source, SourcePoll};
use eddy_runtime::config::DEFAULT_MAX_LINE_LENGTH;

use super::lines::{dead_letter, read_line, text};
use super::rejects::Rejects;
use crate::dead_letter::DeadLetter;

/// How long a poll waits for a line before reporting `Pending`.
const WAIT: Duration = Duration::from_millis(50);

/// What the reader thread found: a line, or the dead letter of one it could not pass on.
type Read = io::Result<Result<String, DeadLetter<String>>>;

/// Lines of standard input, without line endings. Unreadable lines reach a dead-letter
/// output through `stdin_lines`; a source made with `start` and passed to `add_source`
/// skips them (at the default 1 MiB limit).
pub struct StdinSource {
    /// The reader thread's lines, once the first poll has started it.
    lines: Option<Receiver<Read>>,
    max_line_length: usize,
    rejects: Rejects,
}

impl StdinSource {
    /// A source that starts reading stdin on its first poll.
    pub fn start() -> Self {
        StdinSource { lines: None, max_line_length: DEFAULT_MAX_LINE_LENGTH, rejects: Rejects::default() }
    }

    /// Sets the line limit and where dead letters go (before the first poll).
    pub(crate) fn attach(&mut self, rejects: Rejects, max_line_length: usize) {
        self.rejects = rejects;
        self.max_line_length = max_line_length;
    }

    fn lines(&mut self) -> &Receiver<Read> {
        let max = self.max_line_length;
        self.lines.get_or_insert_with(|| {
            let (sender, lines) = bounded(4096);
            std::thread::spawn(move || {
                let mut stdin = io::stdin().lock();
                let mut line = Vec::new();
                for number in 1u64.. {
                    line.clear();
                    let read = match read_line(&mut stdin, &mut line, max) {
                        Ok(read) if read.consumed == 0 => return,
                        Ok(read) => Ok(text(&mut line, read, max)
                            .map_err(|why| dead_letter(&line, &format!("stdin, line {number}"), &why))),
                        Err(e) => Err(e),
                    };
                    let failed = read.is_err();
                    if sender.send(read).is_err() || failed {
                        return;
                    }
                }
            });
            lines
        })
    }

    /// Passes a line on, or queues its dead letter.
    fn take(&self, read: Read, out: &mut Vec<String>) -> Result<(), BoxError> {
        match read? {
            Ok(line) => out.push(line),
            Err(letter) => self.rejects.push(letter),
        }
        Ok(())
    }
}

impl Source<String> for StdinSource {
    fn poll_next(&mut self, out: &mut Vec<String>, max: usize) -> Result<SourcePoll, BoxError> {
        let first = match self.lines().recv_timeout(WAIT) {
            Ok(read) => read,
            Err(RecvTimeoutError::Timeout) => return Ok(SourcePoll::Pending),
            Err(RecvTimeoutError::Disconnected) => return Ok(SourcePoll::Done),
        };
        self.take(first, out)?;
        for _ in 1..max {
            match self.lines().try_recv() {
                Ok(read) => self.take(read, out)?,
                Err(_) => break,
            }
        }
        Ok(SourcePoll::Ready)
    }
}
