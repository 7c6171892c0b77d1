//! Printing a stream to standard output.

use std::fmt::Display;
use std::io::{BufWriter, Stdout, Write};

use eddy_core::{BoxError, Timestamp};

use super::Sink;

/// Writes `Display` lines to stdout, buffered and flushed on every tick.
pub struct PrintSink {
    prefix: String,
    out: BufWriter<Stdout>,
}

impl PrintSink {
    /// Subtask `subtask` of `parallelism`; lines get a `n> ` prefix when parallel.
    pub fn new(subtask: usize, parallelism: usize) -> Self {
        let prefix = if parallelism > 1 { format!("{}> ", subtask + 1) } else { String::new() };
        PrintSink { prefix, out: BufWriter::new(std::io::stdout()) }
    }
}

impl<T: Display> Sink<T> for PrintSink {
    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        writeln!(self.out, "{}{value}", self.prefix)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.out.flush()?;
        Ok(())
    }
}
