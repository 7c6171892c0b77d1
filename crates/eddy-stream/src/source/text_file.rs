//! A text file read as lines, split into byte ranges across parallel subtasks.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use eddy_core::{BoxError, Source, SourcePoll};
use serde::{Deserialize, Serialize};

/// A byte range of the file still to read: the next line starts at `position`, and lines
/// starting before `end` belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ByteRange {
    position: u64,
    end: u64,
}

/// Reads the lines that start in its byte ranges (on a fresh start, subtask `s` of `p` owns
/// the range `[len * s / p, len * (s + 1) / p)`), one range after the other in file order.
pub struct TextFileSource {
    reader: BufReader<File>,
    ranges: VecDeque<ByteRange>,
    /// Whether the reader must seek to the first range's position before reading.
    seek: bool,
    line: Vec<u8>,
}

fn open_file(path: &Path) -> Result<File, BoxError> {
    File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()).into())
}

impl TextFileSource {
    /// Opens subtask `subtask` of `parallelism` of the file at `path`.
    pub fn open(path: &Path, subtask: usize, parallelism: usize) -> Result<Self, BoxError> {
        let file = open_file(path)?;
        let len = file.metadata()?.len();
        let start = len * subtask as u64 / parallelism as u64;
        let end = len * (subtask as u64 + 1) / parallelism as u64;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        let mut position = start;
        if start > 0 {
            // The line under `start` belongs to the previous range unless `start` begins a line.
            reader.seek(SeekFrom::Start(start - 1))?;
            position = start - 1 + reader.read_until(b'\n', &mut line)? as u64;
            line.clear();
        }
        let ranges = VecDeque::from([ByteRange { position, end }]);
        Ok(TextFileSource { reader, ranges, seek: true, line })
    }

    /// Reopens the file at the positions a checkpoint recorded.
    pub fn restore(path: &Path, splits: Vec<Vec<u8>>) -> Result<Self, BoxError> {
        let mut ranges = splits
            .iter()
            .map(|item| bincode::serde::decode_from_slice(item, bincode::config::standard()).map(|(r, _)| r))
            .collect::<Result<Vec<ByteRange>, _>>()
            .map_err(|e| format!("a recorded position in {} does not decode: {e}", path.display()))?;
        ranges.sort_by_key(|r| r.position);
        let reader = BufReader::with_capacity(1 << 20, open_file(path)?);
        Ok(TextFileSource { reader, ranges: ranges.into(), seek: true, line: Vec::new() })
    }
}

impl Source<String> for TextFileSource {
    fn poll_next(&mut self, out: &mut Vec<String>, max: usize) -> Result<SourcePoll, BoxError> {
        while out.len() < max {
            let Some(range) = self.ranges.front_mut() else { return Ok(SourcePoll::Done) };
            if range.position >= range.end {
                self.ranges.pop_front();
                self.seek = true;
                continue;
            }
            if self.seek {
                self.reader.seek(SeekFrom::Start(range.position))?;
                self.seek = false;
            }
            self.line.clear();
            let read = self.reader.read_until(b'\n', &mut self.line)?;
            if read == 0 {
                // The file is shorter than when the range was cut: the range is done.
                range.position = range.end;
                continue;
            }
            range.position += read as u64;
            out.push(line_to_string(&mut self.line));
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let encoded = self.ranges.iter().map(|r| bincode::serde::encode_to_vec(r, bincode::config::standard()));
        Ok(Some(encoded.collect::<Result<_, _>>()?))
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

    /// Reads `limit` lines from each subtask, snapshots, and restores the splits at
    /// `restored` subtasks, which read the rest.
    fn read_with_restore(path: &Path, parallelism: usize, limit: usize, restored: usize) -> Vec<String> {
        let mut all = Vec::new();
        let mut splits = Vec::new();
        for subtask in 0..parallelism {
            let mut source = TextFileSource::open(path, subtask, parallelism).unwrap();
            let mut batch = Vec::new();
            source.poll_next(&mut batch, limit).unwrap();
            all.append(&mut batch);
            splits.extend(source.snapshot().unwrap().unwrap());
        }
        for subtask in 0..restored {
            let mine = splits.iter().skip(subtask).step_by(restored).cloned().collect();
            let mut source = TextFileSource::restore(path, mine).unwrap();
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
        fn a_restore_at_any_parallelism_reads_the_rest_exactly_once(
            lines in proptest::collection::vec("[a-z ]{0,12}", 0..40),
            parallelism in 1usize..5,
            restored in 1usize..5,
            limit in 0usize..8,
        ) {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            file.write_all(text.as_bytes()).unwrap();
            let mut got = read_with_restore(file.path(), parallelism, limit, restored);
            let mut expected = lines.clone();
            got.sort();
            expected.sort();
            prop_assert_eq!(got, expected);
        }

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
