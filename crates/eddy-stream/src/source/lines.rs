//! Text read as lines, with a bound on their length, and the dead letters of lines a text
//! source cannot pass on.
//!
//! A line is read in chunks of the reader's buffer and kept up to the limit
//! ([`StreamEnvironment::set_max_line_length`](crate::StreamEnvironment::set_max_line_length),
//! which reaches a reader as [`ReaderContext::max_line_length`](eddy_core::ReaderContext));
//! the rest of a longer line is skipped as it is read, so a 50 MB line costs no more memory
//! than a short one. A line that is too long, or that is not UTF-8, is rejected with
//! [`SourceOutput::reject`]: its dead letter is a [`RawRecord`] that says where it was (the
//! file or `stdin`, and the line number) and holds its bytes as read, and the reason says
//! what is wrong with it, instead of failing the job or changing the text silently. (Flink's
//! text format decodes invalid bytes as U+FFFD and passes the line on; eddy never alters
//! the text it passes on.)

use std::io::{self, BufRead};
use std::str::Utf8Error;

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{RawRecord, SourceOutput};

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
/// of it (at least [`PREVIEW`], for the dead letter of a longer line), plus its line ending;
/// the rest of a longer line is read and dropped.
pub(crate) fn read_line<R: BufRead + ?Sized>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    let keep = max.max(PREVIEW).saturating_add(2); // room for "\r\n" after a line of exactly `max` bytes
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

/// Rejects the unreadable `line` into `out`, as read from `split` (the file, or `stdin`) at
/// `position` (`line 7 (byte 120)`): the dead letter holds the line's bytes, only the first
/// [`PREVIEW`] of them if it is too long ([`read_line`] keeps that many).
#[cold]
pub(crate) fn reject<T>(out: &mut SourceOutput<T>, line: &[u8], split: String, position: String, why: &Unreadable) {
    let (payload, reason) = match why {
        Unreadable::TooLong { length, max } => (
            // `line` may end with part of the line ending after the kept bytes.
            &line[..line.len().min(PREVIEW).min(*length as usize)],
            format!(
                "the line is {length} bytes long, over the limit of {max} bytes, and was skipped \
                 (payload holds its first {PREVIEW} bytes); raise the limit with StreamEnvironment::set_max_line_length"
            ),
        ),
        Unreadable::NotUtf8(e) => (line, format!("the line is not UTF-8 ({e})")),
    };
    let record = RawRecord { split, position, timestamp: NO_TIMESTAMP, key: None, payload: payload.to_vec() };
    out.reject(record, reason);
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
            assert!(line.len() <= max.max(PREVIEW) + 2, "kept {} bytes of a line, limit {max}", line.len());
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

    /// The one dead letter `reject` makes of `line`.
    fn rejected(line: &[u8], why: &Unreadable) -> eddy_core::DeadLetter<RawRecord> {
        let mut out = SourceOutput::<String>::new(None);
        reject(&mut out, line, "in.txt".into(), "line 2 (byte 3)".into(), why);
        let mut letters = out.take_dead_letters();
        assert_eq!(letters.len(), 1);
        letters.remove(0)
    }

    #[test]
    fn invalid_utf8_is_rejected_with_its_bytes_as_read() {
        let got = lines(b"ok\nbad \xff here\n", 8, 100);
        assert_eq!(got[0].0, Ok("ok".to_string()));
        let Err(why) = &got[1].0 else { panic!("{:?}", got[1]) };
        let letter = rejected(b"bad \xff here", why);
        assert_eq!(letter.input.payload, b"bad \xff here");
        assert_eq!((&letter.input.split[..], &letter.input.position[..]), ("in.txt", "line 2 (byte 3)"));
        assert_eq!(letter.input.timestamp, NO_TIMESTAMP);
        assert!(letter.error.starts_with("the line is not UTF-8 (invalid utf-8"), "{}", letter.error);
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
        let letter = rejected(&line, &why);
        assert_eq!(letter.input.payload, vec![b'x'; PREVIEW]);
        assert!(letter.error.contains("5000000 bytes long, over the limit of 1000 bytes"), "{}", letter.error);
        line.clear();
        let read = read_line(&mut reader, &mut line, 1000).unwrap();
        assert_eq!(text(&mut line, read, 1000), Ok("next".to_string()));
    }

    #[test]
    fn a_line_just_over_a_short_limit_keeps_no_line_ending() {
        let mut reader = io::BufReader::new(&b"abcd\r\nnext\n"[..]);
        let mut line = Vec::new();
        let read = read_line(&mut reader, &mut line, 3).unwrap();
        let why = text(&mut line, read, 3).unwrap_err();
        assert_eq!(rejected(&line, &why).input.payload, b"abcd");
    }
}
