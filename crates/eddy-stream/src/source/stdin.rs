//! Standard input as lines. A reader thread does the blocking reads, so the subtask can keep
//! time moving (flushing, watermarks) while stdin is quiet.

use std::io::BufRead;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use eddy_core::{BoxError, Source, SourcePoll};

/// How long a poll waits for a line before reporting `Pending`.
const WAIT: Duration = Duration::from_millis(50);

/// Lines of standard input, without line endings.
pub struct StdinSource {
    lines: Receiver<std::io::Result<String>>,
}

impl StdinSource {
    /// Starts the reader thread.
    pub fn start() -> Self {
        let (sender, lines) = bounded(4096);
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => Ok(super::text_file::line_to_string(&mut line)),
                    Err(e) => Err(e),
                };
                let failed = read.is_err();
                if sender.send(read).is_err() || failed {
                    return;
                }
            }
        });
        StdinSource { lines }
    }
}

impl Source<String> for StdinSource {
    fn poll_next(&mut self, out: &mut Vec<String>, max: usize) -> Result<SourcePoll, BoxError> {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => out.push(line?),
            Err(RecvTimeoutError::Timeout) => return Ok(SourcePoll::Pending),
            Err(RecvTimeoutError::Disconnected) => return Ok(SourcePoll::Done),
        }
        while out.len() < max {
            match self.lines.try_recv() {
                Ok(line) => out.push(line?),
                Err(_) => break,
            }
        }
        Ok(SourcePoll::Ready)
    }
}
