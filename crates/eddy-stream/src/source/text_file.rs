//! A text file read as lines, split into byte ranges across parallel subtasks.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use eddy_core::{BoxError, Source, SourcePoll};

/// Reads the lines that start in this subtask's byte range `[start, end)` of a file.
pub struct TextFileSource {
    reader: BufReader<File>,
    /// Byte offset of the next unread line.
    position: u64,
    end: u64,
    line: Vec<u8>,
}

impl TextFileSource {
    /// Opens subtask `subtask` of `parallelism` of the file at `path`.
    pub fn open(path: &Path, subtask: usize, parallelism: usize) -> Result<Self, BoxError> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let len = file.metadata()?.len();
        let start = len * subtask as u64 / parallelism as u64;
        let end = len * (subtask as u64 + 1) / parallelism as u64;
        let mut source =
            TextFileSource { reader: BufReader::with_capacity(1 << 20, file), position: start, end, line: Vec::new() };
        if start > 0 {
            // The line under `start` belongs to the previous range unless `start` begins a line.
            source.reader.seek(SeekFrom::Start(start - 1))?;
            let skipped = source.reader.read_until(b'\n', &mut source.line)?;
            source.position = start - 1 + skipped as u64;
            source.line.clear();
        }
        Ok(source)
    }
}

impl Source<String> for TextFileSource {
    fn poll_next(&mut self, out: &mut Vec<String>, max: usize) -> Result<SourcePoll, BoxError> {
        while out.len() < max {
            if self.position >= self.end {
                return Ok(SourcePoll::Done);
            }
            self.line.clear();
            let read = self.reader.read_until(b'\n', &mut self.line)?;
            if read == 0 {
                return Ok(SourcePoll::Done);
            }
            self.position += read as u64;
            out.push(line_to_string(&mut self.line));
        }
        Ok(SourcePoll::Ready)
    }
}

/// The line without its `\n` or `\r\n`; invalid UTF-8 becomes U+FFFD rather than an error.
pub(crate) fn line_to_string(line: &mut Vec<u8>) -> String {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    match std::str::from_utf8(line) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn read_all(path: &Path, parallelism: usize) -> Vec<String> {
        let mut all = Vec::new();
        for subtask in 0..parallelism {
            let mut source = TextFileSource::open(path, subtask, parallelism).unwrap();
            loop {
                let mut batch = Vec::new();
                let poll = source.poll_next(&mut batch, 3).unwrap();
                all.append(&mut batch);
                if poll == SourcePoll::Done {
                    break;
                }
            }
        }
        all
    }

    proptest! {
        #[test]
        fn byte_ranges_yield_every_line_exactly_once(
            lines in proptest::collection::vec("[a-z ]{0,12}", 0..40),
            trailing_newline: bool,
            parallelism in 1usize..6,
        ) {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let mut text = lines.join("\n");
            if trailing_newline && !lines.is_empty() {
                text.push('\n');
            }
            file.write_all(text.as_bytes()).unwrap();
            let mut expected: Vec<String> = if text.is_empty() { vec![] } else {
                text.strip_suffix('\n').unwrap_or(&text).split('\n').map(String::from).collect()
            };
            let mut got = read_all(file.path(), parallelism);
            expected.sort();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
