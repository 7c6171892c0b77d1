//! Text read as lines, with a bound on their length, and the dead letters of lines a text
//! source cannot pass on.
//!
//! A line is read in chunks of the reader's buffer and kept up to the limit
//! ([`StreamEnvironment::set_max_line_length`](crate::StreamEnvironment::set_max_line_length));
//! the rest of a longer line is skipped as it is read, so a 50 MB line costs no more memory
//! than a short one. A line that is too long, or that is not UTF-8, becomes a dead letter
//! that says where it was (file and line number) and what is wrong with it, instead of
//! failing the job or being changed silently. (Flink's text format decodes invalid bytes as
//! U+FFFD and passes the line on; eddy never alters the text it passes on, and the dead
//! letter shows the line with U+FFFD in place of the bad bytes.)

use std::io::{self, BufRead};
use std::str::Utf8Error;

use crate::dead_letter::DeadLetter;

/// How much of a line that is too long its dead letter shows.
const PREVIEW: usize = 256;

/// One line read: how many bytes it took from the input (with its line ending; 0 at the end
/// of the input) and how long the line is without its ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineRead {
    pub(crate) consumed: u64,
    pub(crate) length: u64,
}

/// Reads the next line, through its `\n`, into the empty `line`, keeping at most `max` bytes
/// of it (plus its line ending); the rest of a longer line is read and dropped.
pub(crate) fn read_line<R: BufRead + ?Sized>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    let keep = max.saturating_add(2); // room for "\r\n" after a line of exactly `max` bytes
    let (mut consumed, mut last_two) = (0u64, [0u8; 2]);
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (chunk, ended) = match memchr::memchr(b'\n', available) {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        if chunk.is_empty() {
            // The input ended: a last line without `\n` has no ending.
            return Ok(LineRead { consumed, length: consumed });
        }
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        last_two = match chunk {
            [.., a, b] => [*a, *b],
            [b] => [last_two[1], *b],
            [] => last_two,
        };
        let taken = chunk.len();
        reader.consume(taken);
        consumed += taken as u64;
        if ended {
            let ending = if last_two == *b"\r\n" { 2 } else { 1 };
            return Ok(LineRead { consumed, length: consumed - ending });
        }
    }
}

/// Why a line cannot be passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Longer than the limit (`length` bytes without its ending).
    TooLong { length: u64, max: usize },
    /// Not UTF-8.
    NotUtf8(Utf8Error),
}

/// The text of a line [`read_line`] read into `line`, without its line ending.
#[inline]
pub(crate) fn text(line: &mut Vec<u8>, read: LineRead, max: usize) -> Result<String, Unreadable> {
    if read.length > max as u64 {
        return Err(Unreadable::TooLong { length: read.length, max });
    }
    line.truncate(read.length as usize);
    match std::str::from_utf8(line) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(Unreadable::NotUtf8(e)),
    }
}

/// The dead letter of an unreadable line: `input` holds the line (its first bytes if it is
/// too long) with U+FFFD for invalid bytes; `error` starts with where it was (`origin`: the
/// file, or `stdin`, and the line number).
pub(crate) fn dead_letter(line: &[u8], origin: &str, why: &Unreadable) -> DeadLetter<String> {
    let (shown, error) = match why {
        Unreadable::TooLong { length, max } => (
            &line[..line.len().min(PREVIEW)],
            format!(
                "{origin}: the line is {length} bytes long, over the limit of {max} bytes, and was skipped \
                 (input holds its first {PREVIEW} bytes); raise the limit with StreamEnvironment::set_max_line_length"
            ),
        ),
        Unreadable::NotUtf8(e) => (
            line,
            format!("{origin}: the line is not UTF-8 ({e}); input holds it with U+FFFD in place of the invalid bytes"),
        ),
    };
    DeadLetter { input: String::from_utf8_lossy(shown).into_owned(), error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every line of `input` as (text or why not, bytes consumed), read through a buffer of
    /// `capacity` bytes.
    fn lines(input: &[u8], capacity: usize, max: usize) -> Vec<(Result<String, Unreadable>, u64)> {
        let mut reader = io::BufReader::with_capacity(capacity, input);
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = read_line(&mut reader, &mut line, max).unwrap();
            if read.consumed == 0 {
                return out;
            }
            assert!(line.len() <= max + 2, "kept {} bytes of a line, limit {max}", line.len());
            out.push((text(&mut line, read, max), read.consumed));
        }
    }

    proptest! {
        #[test]
        fn lines_within_the_limit_pass_and_longer_ones_are_measured_not_kept(
            raw in proptest::collection::vec(("[a-z\r]{0,40}", any::<bool>()), 0..12),
            capacity in 1usize..64,
            max in 0usize..30,
        ) {
            let mut input = Vec::new();
            for (i, (line, crlf)) in raw.iter().enumerate() {
                input.extend_from_slice(line.as_bytes());
                if i + 1 < raw.len() {
                    input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                }
            }
            // The model: split on '\n', strip one '\r' before it; a final empty piece is no line.
            let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            let got = lines(&input, capacity, max);
            prop_assert_eq!(got.len(), pieces.len());
            let mut total = 0;
            for (i, ((result, consumed), piece)) in got.into_iter().zip(&pieces).enumerate() {
                let ended = i + 1 < pieces.len() || input.ends_with(b"\n");
                let body = match piece.strip_suffix(b"\r") {
                    Some(body) if ended => body,
                    _ => piece,
                };
                prop_assert_eq!(consumed, (piece.len() + usize::from(ended)) as u64);
                total += consumed;
                if body.len() > max {
                    prop_assert_eq!(result, Err(Unreadable::TooLong { length: body.len() as u64, max }));
                } else {
                    prop_assert_eq!(result, Ok(String::from_utf8(body.to_vec()).unwrap()));
                }
            }
            prop_assert_eq!(total, input.len() as u64);
        }
    }

    #[test]
    fn invalid_utf8_is_reported_with_the_line_shown_lossily() {
        let got = lines(b"ok\nbad \xff here\n", 8, 100);
        assert_eq!(got[0].0, Ok("ok".to_string()));
        let Err(why) = &got[1].0 else { panic!("{:?}", got[1]) };
        let letter = dead_letter(b"bad \xff here", "in.txt, line 2", why);
        assert_eq!(letter.input, "bad \u{fffd} here");
        assert!(letter.error.starts_with("in.txt, line 2: the line is not UTF-8 (invalid utf-8"), "{}", letter.error);
    }

    #[test]
    fn a_long_line_is_skipped_in_bounded_memory_and_shown_by_its_start() {
        let mut input = vec![b'x'; 5_000_000];
        input.extend_from_slice(b"\nnext\n");
        let mut reader = io::BufReader::with_capacity(4096, &input[..]);
        let mut line = Vec::new();
        let read = read_line(&mut reader, &mut line, 1000).unwrap();
        assert_eq!(read, LineRead { consumed: 5_000_001, length: 5_000_000 });
        assert!(line.capacity() < 8192, "the skipped part was buffered: capacity {}", line.capacity());
        let why = text(&mut line, read, 1000).unwrap_err();
        let letter = dead_letter(&line, "big.txt, line 1", &why);
        assert_eq!(letter.input, "x".repeat(PREVIEW));
        assert!(letter.error.contains("5000000 bytes long, over the limit of 1000 bytes"), "{}", letter.error);
        line.clear();
        let read = read_line(&mut reader, &mut line, 1000).unwrap();
        assert_eq!(text(&mut line, read, 1000), Ok("next".to_string()));
    }
}
