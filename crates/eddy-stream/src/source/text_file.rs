//! A text file read as lines, split into byte ranges across parallel subtasks.
//!
//! Lines are read with a bound on their length (see [`super::lines`]); one too long or not
//! UTF-8 goes to the source's dead-letter output, named by file and line number.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use eddy_core::{BoxError, Source, SourcePoll};
use eddy_runtime::config::DEFAULT_MAX_LINE_LENGTH;
use serde::{Deserialize, Serialize};

use super::lines::{dead_letter, read_line, text, Unreadable};
use super::rejects::Rejects;

/// A byte range of the file still to read: the next line starts at `position`, and lines
/// starting before `end` belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ByteRange {
    position: u64,
    end: u64,
}

/// Reads the lines that start in its byte ranges (on a fresh start, subtask `s` of `p` owns
/// the range `[len * s / p, len * (s + 1) / p)`), one range after the other in file order.
/// Unreadable lines reach a dead-letter output through `read_text_file`; a source made with
/// `open` and passed to `add_source` skips them (at the default 1 MiB limit).
pub struct TextFileSource {
    path: PathBuf,
    reader: BufReader<File>,
    ranges: VecDeque<ByteRange>,
    /// Whether the reader must seek to the first range's position before reading.
    seek: bool,
    line: Vec<u8>,
    max_line_length: usize,
    rejects: Rejects,
    line_numbers: LineNumbers,
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
        let mut position = start;
        if start > 0 {
            // The line under `start` belongs to the previous range unless `start` begins a line;
            // skip it (keeping none of it, however long it is).
            reader.seek(SeekFrom::Start(start - 1))?;
            position = start - 1 + read_line(&mut reader, &mut Vec::new(), 0)?.consumed;
        }
        Ok(Self::reading(path, reader, VecDeque::from([ByteRange { position, end }])))
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
        Ok(Self::reading(path, reader, ranges.into()))
    }

    fn reading(path: &Path, reader: BufReader<File>, ranges: VecDeque<ByteRange>) -> Self {
        TextFileSource {
            path: path.to_path_buf(),
            reader,
            ranges,
            seek: true,
            line: Vec::new(),
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            rejects: Rejects::default(),
            line_numbers: LineNumbers::default(),
        }
    }

    /// Sets the line limit and where dead letters go (the environment does this for
    /// `read_text_file`; a source used on its own keeps the default limit and drops them).
    pub(crate) fn attach(&mut self, rejects: Rejects, max_line_length: usize) {
        self.rejects = rejects;
        self.max_line_length = max_line_length;
    }

    /// Queues the dead letter of the line at byte `start`.
    #[cold]
    fn reject(&mut self, start: u64, why: &Unreadable) {
        let origin = match self.line_numbers.line_at(&self.path, start) {
            Ok(number) => format!("{}, line {number} (byte {start})", self.path.display()),
            Err(_) => format!("{}, byte {start}", self.path.display()),
        };
        self.rejects.push(dead_letter(&self.line, &origin, why));
    }
}

impl Source<String> for TextFileSource {
    fn poll_next(&mut self, out: &mut Vec<String>, max: usize) -> Result<SourcePoll, BoxError> {
        // Rejected lines count towards the batch too, so a run of them is sent on in batches.
        let mut taken = 0;
        while taken < max {
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
            let read = read_line(&mut self.reader, &mut self.line, self.max_line_length)?;
            if read.consumed == 0 {
                // The file is shorter than when the range was cut: the range is done.
                range.position = range.end;
                continue;
            }
            let start = range.position;
            range.position += read.consumed;
            taken += 1;
            match text(&mut self.line, read, self.max_line_length) {
                Ok(line) => out.push(line),
                Err(why) => self.reject(start, &why),
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let encoded = self.ranges.iter().map(|r| bincode::serde::encode_to_vec(r, bincode::config::standard()));
        Ok(Some(encoded.collect::<Result<_, _>>()?))
    }
}

/// Line numbers for dead letters, counted on demand: only a rejected line needs its number,
/// and a subtask that starts mid-file would otherwise have to read everything before its
/// range. Counting goes on from the last position counted to, so the rejected lines of a
/// range cost one pass over the file up to the last of them.
#[derive(Debug, Default)]
struct LineNumbers {
    counted_to: u64,
    newlines: u64,
}

impl LineNumbers {
    /// The number (from 1) of the line starting at byte `position` of the file.
    fn line_at(&mut self, path: &Path, position: u64) -> io::Result<u64> {
        if position < self.counted_to {
            *self = LineNumbers::default();
        }
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(self.counted_to))?;
        let mut rest = BufReader::with_capacity(1 << 16, file.take(position - self.counted_to));
        loop {
            let chunk = rest.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            self.newlines += memchr::memchr_iter(b'\n', chunk).count() as u64;
            let taken = chunk.len();
            rest.consume(taken);
            self.counted_to += taken as u64;
        }
        Ok(self.newlines + 1)
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

    /// A line of a test file: fine, too long for a limit of 12 bytes, or not UTF-8.
    #[derive(Debug, Clone)]
    enum TestLine {
        Fine(String),
        TooLong(usize),
        NotUtf8(String),
    }

    fn test_line() -> impl Strategy<Value = TestLine> {
        prop_oneof![
            3 => "[a-z ]{0,12}".prop_map(TestLine::Fine),
            1 => (13usize..40).prop_map(TestLine::TooLong),
            1 => "[a-z]{0,5}".prop_map(TestLine::NotUtf8),
        ]
    }

    impl TestLine {
        fn bytes(&self) -> Vec<u8> {
            match self {
                TestLine::Fine(text) => text.clone().into_bytes(),
                TestLine::TooLong(length) => vec![b'x'; *length],
                TestLine::NotUtf8(text) => [text.as_bytes(), b"\xff\xfe"].concat(),
            }
        }
    }

    /// Reads `limit` lines from each of `parallelism` subtasks (line limit 12), then
    /// restores at `restored` subtasks and reads the rest; returns the lines and the dead
    /// letters' errors.
    fn read_rejecting(path: &Path, parallelism: usize, limit: usize, restored: usize) -> (Vec<String>, Vec<String>) {
        let rejects = Rejects::queue();
        let (mut all, mut splits) = (Vec::new(), Vec::new());
        for subtask in 0..parallelism {
            let mut source = TextFileSource::open(path, subtask, parallelism).unwrap();
            source.attach(rejects.clone(), 12);
            source.poll_next(&mut all, limit).unwrap();
            splits.extend(source.snapshot().unwrap().unwrap());
        }
        for subtask in 0..restored {
            let mut source =
                TextFileSource::restore(path, splits.iter().skip(subtask).step_by(restored).cloned().collect())
                    .unwrap();
            source.attach(rejects.clone(), 12);
            while source.poll_next(&mut all, 3).unwrap() != SourcePoll::Done {}
        }
        (all, rejects.take().into_iter().map(|letter| letter.error).collect())
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

        #[test]
        fn unreadable_lines_become_dead_letters_naming_file_and_line_exactly_once(
            lines in proptest::collection::vec(test_line(), 0..30),
            parallelism in 1usize..5,
            restored in 1usize..5,
            limit in 0usize..8,
        ) {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let mut offset = 0;
            let (mut want_lines, mut want_errors) = (Vec::new(), Vec::new());
            for (i, line) in lines.iter().enumerate() {
                let bytes = line.bytes();
                file.write_all(&bytes).unwrap();
                file.write_all(b"\n").unwrap();
                let origin = format!("{}, line {} (byte {offset})", file.path().display(), i + 1);
                match line {
                    TestLine::Fine(text) => want_lines.push(text.clone()),
                    TestLine::TooLong(length) => want_errors.push(format!("{origin}: the line is {length} bytes long")),
                    TestLine::NotUtf8(_) => want_errors.push(format!("{origin}: the line is not UTF-8")),
                }
                offset += bytes.len() + 1;
            }
            let (mut got_lines, got_errors) = read_rejecting(file.path(), parallelism, limit, restored);
            got_lines.sort();
            want_lines.sort();
            prop_assert_eq!(got_lines, want_lines);
            // Each error starts with where the line was and what is wrong with it.
            let mut got_errors = got_errors;
            got_errors.sort();
            want_errors.sort();
            prop_assert_eq!(got_errors.len(), want_errors.len());
            for (got, want) in got_errors.iter().zip(&want_errors) {
                prop_assert!(got.starts_with(want), "{:?} does not start with {:?}", got, want);
            }
        }
    }
}
