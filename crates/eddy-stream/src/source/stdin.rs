//! Standard input as lines. A reader thread does the blocking reads, so the subtask can keep
//! time moving (flushing, watermarks) while stdin is quiet. Lines are read with a bound on
//! their length (see [`super::lines`]); one too long or not UTF-8 is rejected to the
//! source's dead-letter output as a [`RawRecord`](eddy_core::RawRecord) whose split is
//! `stdin` and whose position is the line number and byte offset.

use std::io;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use eddy_core::{BoxError, ReaderContext, SourceOutput, SourcePoll, SourceReader, SplitSource};

use super::lines::{self, read_line, text, Unreadable};

/// How long a poll waits for a line before reporting `Pending`.
const WAIT: Duration = Duration::from_millis(50);

/// The lines of standard input (without line endings), as a [`SplitSource`]. Only subtask 0
/// reads them (`stdin_lines` runs it at parallelism 1); stdin cannot rewind, so a
/// checkpointed job refuses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StdinSource;

impl SplitSource<String> for StdinSource {
    type Reader = StdinReader;

    fn open(&self, context: &ReaderContext) -> Result<StdinReader, BoxError> {
        Ok(StdinReader { lines: None, reads: context.subtask == 0, max_line_length: context.max_line_length })
    }
}

/// A line the reader thread could not pass on, and where it was.
struct Rejected {
    line: Vec<u8>,
    position: String,
    why: Unreadable,
}

/// What the reader thread found: a line, or one it could not pass on.
type Read = io::Result<Result<String, Rejected>>;

/// The reader of a [`StdinSource`]: starts the thread that reads stdin on its first poll.
pub struct StdinReader {
    /// The reader thread's lines, once the first poll has started it.
    lines: Option<Receiver<Read>>,
    /// Whether this is the subtask that reads stdin.
    reads: bool,
    max_line_length: usize,
}

impl StdinReader {
    fn lines(&mut self) -> &Receiver<Read> {
        let max = self.max_line_length;
        self.lines.get_or_insert_with(|| {
            let (sender, lines) = bounded(4096);
            std::thread::spawn(move || {
                let mut stdin = io::stdin().lock();
                let mut line = Vec::new();
                let mut offset = 0u64;
                for number in 1u64.. {
                    line.clear();
                    let read = match read_line(&mut stdin, &mut line, max) {
                        Ok(read) if read.consumed == 0 => return,
                        Ok(read) => {
                            let start = offset;
                            offset += read.consumed;
                            Ok(text(&mut line, read, max).map_err(|why| Rejected {
                                line: std::mem::take(&mut line),
                                position: format!("line {number} (byte {start})"),
                                why,
                            }))
                        }
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
}

/// Passes a line on, or rejects it.
fn take(read: Read, out: &mut SourceOutput<String>) -> Result<(), BoxError> {
    match read? {
        Ok(line) => out.collect(line),
        Err(rejected) => lines::reject(out, &rejected.line, "stdin".into(), rejected.position, &rejected.why),
    }
    Ok(())
}

impl SourceReader<String> for StdinReader {
    fn poll(&mut self, out: &mut SourceOutput<String>, max: usize) -> Result<SourcePoll, BoxError> {
        if !self.reads {
            return Ok(SourcePoll::Done);
        }
        let first = match self.lines().recv_timeout(WAIT) {
            Ok(read) => read,
            Err(RecvTimeoutError::Timeout) => return Ok(SourcePoll::Pending),
            Err(RecvTimeoutError::Disconnected) => return Ok(SourcePoll::Done),
        };
        take(first, out)?;
        for _ in 1..max {
            match self.lines().try_recv() {
                Ok(read) => take(read, out)?,
                Err(_) => break,
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot_splits(&mut self, _checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(None)
    }
}
