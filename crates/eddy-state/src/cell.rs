//! Stored values: a tag byte, the last-access time when the state has a TTL, then bincode.
//!
//! ```text
//! cell       = 0x00 | bincode(value)                       (no TTL)
//!            | 0x01 | last_access: i64 BE | bincode(value)   (TTL)
//! list value = frame*,  frame = len: LEB128 | cell
//! ```
//!
//! A value, reducing or aggregating state stores one cell per key, a map state one cell per
//! entry, a list state one frame per element (so an append is a byte append, and TTL cleanup
//! can drop expired elements without knowing their type). The tag lets a state gain or lose
//! its TTL across a restore: a plain cell read with a TTL counts as accessed now, a TTL cell
//! read without one ignores the time.
//!
//! Values are bincode 2 with `config::standard()`. Decoding adds a byte limit scaled to the
//! input (bincode claims at most 16 bytes per input byte for a valid value), so a damaged
//! length prefix yields an error instead of a huge allocation.

use bincode::error::{DecodeError, EncodeError};
use eddy_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ttl::StateTtlConfig;

/// Tag of a cell without a timestamp.
const PLAIN: u8 = 0;
/// Tag of a cell with a last-access timestamp.
const TIMED: u8 = 1;
/// Bytes of a timed cell's header.
const TIMED_HEADER: usize = 1 + 8;

/// Why stored bytes could not be read.
#[derive(Debug)]
pub(crate) enum CodecError {
    /// bincode rejected the payload.
    Decode(DecodeError),
    /// The framing around the payload is damaged.
    Corrupted(String),
}

impl From<DecodeError> for CodecError {
    fn from(e: DecodeError) -> Self {
        CodecError::Decode(e)
    }
}

/// A parsed cell, borrowed from stored bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell<'a> {
    /// The last-access time, for cells written by a state with a TTL.
    pub last_access: Option<Timestamp>,
    /// The bincode bytes of the value.
    pub payload: &'a [u8],
}

/// What a read should do with a cell under the state's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Return it as is.
    Live,
    /// Return it and rewrite its timestamp to now.
    Refresh,
    /// Do not return it; it may be deleted.
    Expired,
}

impl<'a> Cell<'a> {
    /// Parses a cell's header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        match bytes.first() {
            Some(&PLAIN) => Ok(Cell { last_access: None, payload: &bytes[1..] }),
            Some(&TIMED) => {
                let stamp = bytes
                    .get(1..TIMED_HEADER)
                    .ok_or_else(|| CodecError::Corrupted("a TTL value is shorter than its timestamp".into()))?;
                let last_access = Timestamp::from_be_bytes(stamp.try_into().expect("8 bytes"));
                Ok(Cell { last_access: Some(last_access), payload: &bytes[TIMED_HEADER..] })
            }
            Some(tag) => Err(CodecError::Corrupted(format!("unknown value tag {tag:#04x}"))),
            None => Err(CodecError::Corrupted("a stored value is empty".into())),
        }
    }

    /// What a read at `now` does with this cell.
    pub fn liveness(&self, ttl: Option<&StateTtlConfig>, now: Timestamp) -> Liveness {
        match (ttl, self.last_access) {
            (None, _) => Liveness::Live,
            // Written before the state had a TTL: it counts as accessed now.
            (Some(_), None) => Liveness::Refresh,
            (Some(ttl), Some(at)) if ttl.is_expired(at, now) => Liveness::Expired,
            (Some(ttl), Some(_)) if ttl.refresh_on_read() => Liveness::Refresh,
            (Some(_), Some(_)) => Liveness::Live,
        }
    }

    /// Whether cleanup at `now` may drop this cell (reads never refresh during cleanup).
    pub fn is_expired(&self, ttl: &StateTtlConfig, now: Timestamp) -> bool {
        self.last_access.is_some_and(|at| ttl.is_expired(at, now))
    }
}

/// Appends a cell holding `value` to `out`, timestamped `now` when the state has a TTL.
pub(crate) fn write_cell<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    stamp: Option<Timestamp>,
    value: &T,
) -> Result<(), EncodeError> {
    match stamp {
        None => out.push(PLAIN),
        Some(now) => {
            out.push(TIMED);
            out.extend_from_slice(&now.to_be_bytes());
        }
    }
    bincode::serde::encode_into_std_write(value, out, bincode::config::standard())?;
    Ok(())
}

/// Appends a copy of a cell with its timestamp set to `now` (a plain cell gains one).
pub(crate) fn write_refreshed(out: &mut Vec<u8>, cell: &Cell<'_>, now: Timestamp) {
    out.push(TIMED);
    out.extend_from_slice(&now.to_be_bytes());
    out.extend_from_slice(cell.payload);
}

/// Decodes exactly one `T` from `payload`: trailing bytes are corruption (or another type).
pub(crate) fn decode_value<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    /// Decodes under a byte limit of `N`.
    fn limited<T: DeserializeOwned, const N: usize>(payload: &[u8]) -> Result<(T, usize), DecodeError> {
        bincode::serde::decode_from_slice(payload, bincode::config::standard().with_limit::<N>())
    }
    // A valid value claims at most 16 bytes per input byte (a one-byte u128); allow 32.
    let (value, used) = match payload.len() {
        0..=0x100 => limited::<T, 0x2000>(payload)?,
        0x101..=0x1000 => limited::<T, 0x2_0000>(payload)?,
        0x1001..=0x10_0000 => limited::<T, 0x200_0000>(payload)?,
        0x10_0001..=0x100_0000 => limited::<T, 0x2000_0000>(payload)?,
        _ => bincode::serde::decode_from_slice(payload, bincode::config::standard())?,
    };
    if used != payload.len() {
        return Err(CodecError::Corrupted(format!(
            "{} bytes left over after the value; was it written with another type?",
            payload.len() - used
        )));
    }
    Ok(value)
}

/// Appends one list frame (`len | cell`) holding `cell` to `out`.
pub(crate) fn push_frame(out: &mut Vec<u8>, cell: &[u8]) {
    let (len, used) = leb128(cell.len());
    out.extend_from_slice(&len[..used]);
    out.extend_from_slice(cell);
}

/// Appends one list frame holding a new cell of `value` to `out`.
pub(crate) fn push_framed_cell<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    stamp: Option<Timestamp>,
    value: &T,
) -> Result<(), EncodeError> {
    let start = out.len();
    write_cell(out, stamp, value)?;
    let (len, used) = leb128(out.len() - start);
    out.splice(start..start, len[..used].iter().copied());
    Ok(())
}

/// `n` as LEB128: the bytes and how many of them are used.
fn leb128(mut n: usize) -> ([u8; 10], usize) {
    let mut bytes = [0; 10];
    let mut used = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            bytes[used] = byte;
            return (bytes, used + 1);
        }
        bytes[used] = byte | 0x80;
        used += 1;
    }
}

/// The cells of a list value, in order.
pub(crate) struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    /// Iterates the frames of a stored list value.
    pub fn new(bytes: &'a [u8]) -> Self {
        Frames { rest: bytes }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut len: usize = 0;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            len |= ((byte & 0x7f) as usize).checked_shl(7 * i as u32).unwrap_or(usize::MAX);
            if byte & 0x80 == 0 {
                let body = &self.rest[i + 1..];
                return Some(match body.get(..len) {
                    Some(cell) => {
                        self.rest = &body[len..];
                        Ok(cell)
                    }
                    None => {
                        self.rest = &[];
                        Err(CodecError::Corrupted(format!(
                            "a list element claims {len} bytes but only {} remain",
                            body.len()
                        )))
                    }
                });
            }
        }
        self.rest = &[];
        Some(Err(CodecError::Corrupted("a list element's length prefix is damaged".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_short_and_long_cells() {
        let mut list = Vec::new();
        let long = vec![7u8; 300];
        push_frame(&mut list, &[1, 2]);
        push_frame(&mut list, &long);
        push_frame(&mut list, &[]);
        let cells: Vec<_> = Frames::new(&list).map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(cells, vec![vec![1, 2], long, vec![]]);
    }

    #[test]
    fn a_huge_length_claim_is_an_error_not_an_allocation() {
        // A String whose length prefix says 2^60 bytes.
        let mut payload = vec![253];
        payload.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode_value::<String>(&payload).is_err());
        assert!(decode_value::<Vec<u8>>(&payload).is_err());
        let mut frames = vec![0xff; 9];
        frames.push(0x01);
        assert!(Frames::new(&frames).next().unwrap().is_err());
    }

    #[test]
    fn cells_carry_their_timestamp() {
        let mut out = Vec::new();
        write_cell(&mut out, Some(42), &"hi").unwrap();
        let cell = Cell::parse(&out).unwrap();
        assert_eq!(cell.last_access, Some(42));
        assert_eq!(decode_value::<String>(cell.payload).unwrap(), "hi");
        assert!(Cell::parse(&[9]).is_err());
        assert!(Cell::parse(&[1, 0, 0]).is_err());
    }
}
