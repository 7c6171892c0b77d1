//! A text file read as lines, split into byte ranges across parallel subtasks.
//!
//! [`TextFileSource`] is the [`SplitSource`] (`read_text_file` makes one; so can
//! `from_source`); each subtask runs a [`TextFileReader`], whose splits are the byte ranges
//! it still has to read.
//!
//! The file is cut into splits of at most [`DEFAULT_SPLIT_SIZE`] (and at least one per
//! subtask), dealt round robin: subtask `s` of `p` reads splits `s`, `s + p`, `s + 2p`, … in
//! file order. So the subtasks read neighbouring parts of the file at any time, not one half
//! each: in a file ordered by time (a log, a day of events) their event times stay close,
//! and a keyed window stage downstream, which fires only what the slowest subtask's
//! watermark has passed, holds little of what the others read ahead. Watermark alignment
//! ([`crate::WatermarkStrategy::with_watermark_alignment`]) then bounds that distance
//! whatever the subtasks' speeds. A subtask reads one split at a time, so pausing the
//! subtask is pausing its split: the reader needs nothing for alignment.
//!
//! Lines are read with a bound on their length (see [`super::lines`]);
//! one too long or not UTF-8 is rejected to the source's dead-letter output as a
//! [`RawRecord`](eddy_core::RawRecord) whose split is the file and whose position is the
//! line number and byte offset.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use eddy_core::{BoxError, ReaderContext, SourceOutput, SourcePoll, SourceReader, SplitSource};
use serde::{Deserialize, Serialize};

use super::lines::{self, read_line, text, Unreadable};

/// How large the splits of a text file are at most (unless a parallelism above
/// `len / DEFAULT_SPLIT_SIZE` needs smaller ones): small enough that neighbouring splits
/// read at once span little event time in a file ordered by time, large enough that
/// switching splits (a seek, one line read twice) costs nothing measurable.
pub const DEFAULT_SPLIT_SIZE: u64 = 4 << 20;

/// The lines of a text file (without line endings), as a [`SplitSource`]. On a fresh start a
/// file of `len` bytes read by `p` subtasks is cut into `n = max(p, ⌈len / split size⌉)`
/// byte ranges `[len * k / n, len * (k + 1) / n)`, and subtask `s` reads ranges `s`, `s + p`,
/// … (a line belongs to the range its first byte is in); its position is the ranges it has
/// left, so a restore at another parallelism deals them out again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFileSource {
    path: PathBuf,
    split_size: u64,
}

impl TextFileSource {
    /// The lines of the file at `path` (opened when the job starts), in splits of at most
    /// 4 MiB (see [`TextFileSource::with_split_size`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TextFileSource { path: path.into(), split_size: DEFAULT_SPLIT_SIZE }
    }

    /// Cuts the file into splits of at most `bytes` (at least 1) instead.
    pub fn with_split_size(self, bytes: u64) -> Self {
        TextFileSource { split_size: bytes.max(1), ..self }
    }
}

impl SplitSource<String> for TextFileSource {
    type Reader = TextFileReader;

    fn open(&self, context: &ReaderContext) -> Result<TextFileReader, BoxError> {
        let max = context.max_line_length;
        match &context.restored {
            Some(splits) => TextFileReader::restore(&self.path, splits, max),
            None => TextFileReader::open(&self.path, self.split_size, context.subtask, context.parallelism, max),
        }
    }
}

/// A byte range of the file still to read: the next line starts at `position`, and lines
/// starting before `end` belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ByteRange {
    position: u64,
    end: u64,
}

/// One subtask's reader of a [`TextFileSource`]: reads the lines that start in its byte
/// ranges, one range after the other in file order.
pub struct TextFileReader {
    path: PathBuf,
    reader: BufReader<File>,
    ranges: VecDeque<ByteRange>,
    /// Whether the reader must seek to the first range's position before reading.
    seek: bool,
    line: Vec<u8>,
    max_line_length: usize,
    line_numbers: LineNumbers,
}

fn open_file(path: &Path) -> Result<File, BoxError> {
    File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()).into())
}

impl TextFileReader {
    /// Opens subtask `subtask` of `parallelism` of the file at `path`, cut into splits of at
    /// most `split_size` bytes.
    fn open(
        path: &Path,
        split_size: u64,
        subtask: usize,
        parallelism: usize,
        max_line_length: usize,
    ) -> Result<Self, BoxError> {
        let file = open_file(path)?;
        let len = file.metadata()?.len();
        let splits = len.div_ceil(split_size).max(parallelism as u64);
        // `len * k / splits` without overflow, whatever the file's length.
        let boundary = |k: u64| (u128::from(len) * u128::from(k) / u128::from(splits)) as u64;
        // Where each of this subtask's ranges starts: a small buffer, as only one line is read
        // at each boundary.
        let mut lines = BufReader::with_capacity(1 << 13, open_file(path)?);
        let mut ranges = VecDeque::new();
        for k in (subtask as u64..splits).step_by(parallelism) {
            let position = first_line_at(&mut lines, boundary(k))?;
            ranges.push_back(ByteRange { position, end: boundary(k + 1) });
        }
        let reader = BufReader::with_capacity(1 << 20, file);
        Ok(Self::reading(path, reader, ranges, max_line_length))
    }

    /// Reopens the file at the positions a checkpoint recorded.
    fn restore(path: &Path, splits: &[Vec<u8>], max_line_length: usize) -> Result<Self, BoxError> {
        let mut ranges = splits
            .iter()
            .map(|item| bincode::serde::decode_from_slice(item, bincode::config::standard()).map(|(r, _)| r))
            .collect::<Result<Vec<ByteRange>, _>>()
            .map_err(|e| format!("a recorded position in {} does not decode: {e}", path.display()))?;
        ranges.sort_by_key(|r| r.position);
        let reader = BufReader::with_capacity(1 << 20, open_file(path)?);
        Ok(Self::reading(path, reader, ranges.into(), max_line_length))
    }

    fn reading(path: &Path, reader: BufReader<File>, ranges: VecDeque<ByteRange>, max_line_length: usize) -> Self {
        TextFileReader {
            path: path.to_path_buf(),
            reader,
            ranges,
            seek: true,
            line: Vec::new(),
            max_line_length,
            line_numbers: LineNumbers::default(),
        }
    }

    /// Rejects the line at byte `start`, named by its number (counted only now).
    #[cold]
    fn reject(&mut self, out: &mut SourceOutput<String>, start: u64, why: &Unreadable) {
        let position = match self.line_numbers.line_at(&self.path, start) {
            Ok(number) => format!("line {number} (byte {start})"),
            Err(_) => format!("byte {start}"),
        };
        lines::reject(out, &self.line, self.path.display().to_string(), position, why);
    }
}

impl SourceReader<String> for TextFileReader {
    fn poll(&mut self, out: &mut SourceOutput<String>, max: usize) -> Result<SourcePoll, BoxError> {
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
                Ok(line) => out.collect(line),
                Err(why) => self.reject(out, start, &why),
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot_splits(&mut self, _checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let encoded = self.ranges.iter().map(|r| bincode::serde::encode_to_vec(r, bincode::config::standard()));
        Ok(Some(encoded.collect::<Result<_, _>>()?))
    }
}

/// Where the first line that starts at or after byte `start` starts. The line under `start`
/// belongs to the previous range unless `start` begins a line; it is skipped (keeping none of
/// it, however long it is).
fn first_line_at(reader: &mut BufReader<File>, start: u64) -> io::Result<u64> {
    if start == 0 {
        return Ok(0);
    }
    reader.seek(SeekFrom::Start(start - 1))?;
    Ok(start - 1 + read_line(reader, &mut Vec::new(), 0)?.consumed)
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
    use eddy_core::{Barrier, DeadLetter, Output, RawRecord, Record, Result, Timestamp};
    use proptest::prelude::*;
    use std::io::Write;

    /// What readers produced: their lines and their dead letters.
    #[derive(Debug, Default)]
    struct Got {
        lines: Vec<String>,
        dead: Vec<DeadLetter<RawRecord>>,
    }

    impl Output<String> for Got {
        fn records(&mut self, batch: &mut Vec<Record<String>>) -> Result<()> {
            self.lines.extend(batch.drain(..).map(|r| r.value));
            Ok(())
        }
        fn watermark(&mut self, _: Timestamp) -> Result<()> {
            Ok(())
        }
        fn idle(&mut self, _: bool) -> Result<()> {
            Ok(())
        }
        fn tick(&mut self, _: Timestamp) -> Result<()> {
            Ok(())
        }
        fn barrier(&mut self, _: Barrier) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    impl Got {
        /// Polls `reader` for `batch` lines at a time, `polls` times or until it is done.
        fn poll(&mut self, reader: &mut TextFileReader, batch: usize, polls: Option<usize>) {
            let mut out = SourceOutput::new(None);
            for _ in 0..polls.unwrap_or(usize::MAX) {
                if reader.poll(&mut out, batch).unwrap() == SourcePoll::Done {
                    break;
                }
            }
            out.drain_to(self).unwrap();
            self.dead.append(&mut out.take_dead_letters());
        }
    }

    /// Reads `path` in splits of `split_size` bytes with `parallelism` readers, lines up to
    /// `max` bytes: to the end, or with `restore = Some((limit, restored))` one poll of `limit`
    /// lines per reader, a snapshot, and the rest read by `restored` readers the snapshot's
    /// splits are dealt to.
    fn read(path: &Path, split_size: u64, parallelism: usize, max: usize, restore: Option<(usize, usize)>) -> Got {
        let source = TextFileSource::new(path).with_split_size(split_size);
        let context = |subtask, parallelism, restored: Option<Vec<Vec<u8>>>| {
            let context = ReaderContext::new(subtask, parallelism).with_max_line_length(max);
            match restored {
                Some(splits) => context.restoring(splits),
                None => context,
            }
        };
        let (mut got, mut splits) = (Got::default(), Vec::new());
        for subtask in 0..parallelism {
            let mut reader = source.open(&context(subtask, parallelism, None)).unwrap();
            match restore {
                None => got.poll(&mut reader, 3, None),
                Some((limit, _)) => {
                    got.poll(&mut reader, limit, Some(1));
                    splits.extend(reader.snapshot_splits(1).unwrap().unwrap());
                }
            }
        }
        if let Some((_, restored)) = restore {
            for subtask in 0..restored {
                let mine = splits.iter().skip(subtask).step_by(restored).cloned().collect();
                let mut reader = source.open(&context(subtask, restored, Some(mine))).unwrap();
                got.poll(&mut reader, 3, None);
            }
        }
        got
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

    #[test]
    fn splits_are_dealt_round_robin_so_subtasks_read_neighbouring_parts() {
        // 40 lines of 10 bytes in splits of 100 bytes: ten lines per split, four splits.
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let lines: Vec<String> = (0..40).map(|i| format!("line {i:04}")).collect();
        file.write_all(lines.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes()).unwrap();
        let source = TextFileSource::new(file.path()).with_split_size(100);
        let read_by = |subtask| {
            let context = ReaderContext::new(subtask, 2).with_max_line_length(100);
            let mut got = Got::default();
            got.poll(&mut source.open(&context).unwrap(), 7, None);
            got.lines
        };
        let range = |from: usize, to: usize| lines[from..to].to_vec();
        assert_eq!(read_by(0), [range(0, 10), range(20, 30)].concat(), "splits 0 and 2, in file order");
        assert_eq!(read_by(1), [range(10, 20), range(30, 40)].concat(), "splits 1 and 3");
        // Fewer splits than subtasks: one per subtask, as large as it takes.
        let source = TextFileSource::new(file.path()).with_split_size(1 << 20);
        let context = ReaderContext::new(1, 4).with_max_line_length(100);
        let mut got = Got::default();
        got.poll(&mut source.open(&context).unwrap(), 7, None);
        assert_eq!(got.lines, range(10, 20), "the second quarter");
    }

    /// Splits smaller than a line, a few lines, and the default (one per subtask here).
    fn split_size() -> impl Strategy<Value = u64> {
        prop_oneof![1u64..8, 8u64..64, Just(DEFAULT_SPLIT_SIZE)]
    }

    proptest! {
        #[test]
        fn a_restore_at_any_parallelism_reads_the_rest_exactly_once(
            lines in proptest::collection::vec("[a-z ]{0,12}", 0..40),
            split_size in split_size(),
            parallelism in 1usize..5,
            restored in 1usize..5,
            limit in 0usize..8,
        ) {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            file.write_all(text.as_bytes()).unwrap();
            let mut got = read(file.path(), split_size, parallelism, 100, Some((limit, restored))).lines;
            let mut expected = lines.clone();
            got.sort();
            expected.sort();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn byte_ranges_yield_every_line_exactly_once(
            lines in proptest::collection::vec("[a-z ]{0,12}", 0..40),
            trailing_newline: bool,
            split_size in split_size(),
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
            let mut got = read(file.path(), split_size, parallelism, 100, None).lines;
            expected.sort();
            got.sort();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn unreadable_lines_become_dead_letters_naming_file_and_line_exactly_once(
            lines in proptest::collection::vec(test_line(), 0..30),
            split_size in split_size(),
            parallelism in 1usize..5,
            restored in 1usize..5,
            limit in 0usize..8,
        ) {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let path = file.path().display().to_string();
            let mut offset = 0;
            let (mut want_lines, mut want_dead) = (Vec::new(), Vec::new());
            for (i, line) in lines.iter().enumerate() {
                let bytes = line.bytes();
                file.write_all(&bytes).unwrap();
                file.write_all(b"\n").unwrap();
                let position = format!("line {} (byte {offset})", i + 1);
                match line {
                    TestLine::Fine(text) => want_lines.push(text.clone()),
                    TestLine::TooLong(length) => want_dead.push((position, bytes.clone(), format!("the line is {length} bytes long"))),
                    TestLine::NotUtf8(_) => want_dead.push((position, bytes.clone(), "the line is not UTF-8".to_string())),
                }
                offset += bytes.len() + 1;
            }
            let got = read(file.path(), split_size, parallelism, 12, Some((limit, restored)));
            let mut got_lines = got.lines;
            got_lines.sort();
            want_lines.sort();
            prop_assert_eq!(got_lines, want_lines);
            // Each dead letter holds the file, the line's number and offset, its bytes (all
            // of these short lines), and a reason that says what is wrong with it.
            let mut got_dead = got.dead;
            got_dead.sort_by(|a, b| a.input.position.cmp(&b.input.position));
            want_dead.sort();
            prop_assert_eq!(got_dead.len(), want_dead.len());
            for (got, (position, payload, reason)) in got_dead.iter().zip(&want_dead) {
                prop_assert_eq!(&got.input.split, &path);
                prop_assert_eq!(&got.input.position, position);
                prop_assert_eq!(&got.input.payload, payload);
                prop_assert!(got.error.starts_with(reason), "{:?} does not start with {:?}", got.error, reason);
            }
        }
    }
}
