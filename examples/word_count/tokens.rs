//! The word count tokenizer: maximal runs of ASCII letters, digits and `_`, lowercased.
//!
//! It works on the line it owns, 64 bytes at a time: one pass over a block lowercases its
//! ASCII letters in place and sets one bit per byte that belongs to a word (on x86_64 with
//! SSE2, 16 bytes per step), so finding a word's start and end is two `trailing_zeros`
//! instead of a table lookup per byte, and the word is then copied once, already lowercased,
//! into its inline string. Lowercasing in place keeps the line UTF-8: only the bytes `A`–`Z`
//! change, and every other byte (multi-byte characters included) separates words as before.

use compact_str::CompactString;

/// A word: stored inline (no heap allocation) up to 24 bytes.
pub type Word = CompactString;

/// How many bytes one mask describes.
const BLOCK: usize = 64;

/// The tokens of a line.
pub struct Tokens {
    text: String,
    /// Where the block that `mask` describes starts.
    base: usize,
    /// The word bytes of that block not yet passed, bit `i` for byte `base + i`.
    mask: u64,
}

impl Tokens {
    /// Tokens of `text` from byte `start` on (past a timestamp prefix, say).
    pub fn new(text: String, start: usize) -> Self {
        let mut tokens = Tokens { text, base: start, mask: 0 };
        tokens.mask = tokens.classify(start);
        tokens
    }

    /// Lowercases the block of up to [`BLOCK`] bytes at `base` and returns its word-byte mask
    /// (0 past the end of the text).
    fn classify(&mut self, base: usize) -> u64 {
        // SAFETY: `classify_block` changes only `A`–`Z`, into `a`–`z`, so the text stays UTF-8.
        let bytes = unsafe { self.text.as_mut_vec() };
        match bytes.get_mut(base..) {
            Some(rest) => {
                let end = rest.len().min(BLOCK);
                classify_block(&mut rest[..end])
            }
            None => 0,
        }
    }
}

impl Iterator for Tokens {
    type Item = Word;

    #[inline]
    fn next(&mut self) -> Option<Word> {
        while self.mask == 0 {
            self.base += BLOCK;
            if self.base >= self.text.len() {
                return None;
            }
            self.mask = self.classify(self.base);
        }
        let first = self.mask.trailing_zeros() as usize;
        // The word's bytes are ones from `first`; `!(mask >> first)` has its first zero there.
        let run = (!(self.mask >> first)).trailing_zeros() as usize;
        let start = self.base + first;
        let mut end = start + run;
        if first + run < BLOCK {
            self.mask &= !0u64 << (first + run);
        } else {
            // The word reaches the end of the block (which was therefore full): it goes on
            // through the next block's leading ones, and maybe further.
            loop {
                self.base += BLOCK;
                self.mask = self.classify(self.base);
                let ones = self.mask.trailing_ones() as usize;
                end = self.base + ones;
                if ones < BLOCK {
                    self.mask &= !0u64 << ones;
                    break;
                }
            }
            end = end.min(self.text.len());
        }
        Some(Word::from(&self.text[start..end]))
    }
}

/// Lowercases the ASCII letters of `block` (at most [`BLOCK`] bytes) in place and returns a
/// mask with bit `i` set when `block[i]` is an ASCII letter, digit or `_`.
#[inline]
fn classify_block(block: &mut [u8]) -> u64 {
    debug_assert!(block.len() <= BLOCK);
    let mut mask = 0u64;
    let mut chunks = block.chunks_exact_mut(16);
    let mut at = 0;
    for chunk in &mut chunks {
        let chunk: &mut [u8; 16] = chunk.try_into().expect("chunks of 16");
        mask |= u64::from(classify_16(chunk)) << at;
        at += 16;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        // Zero separates words, so the padding adds no bits.
        let mut padded = [0u8; 16];
        padded[..rest.len()].copy_from_slice(rest);
        mask |= u64::from(classify_16(&mut padded)) << at;
        rest.copy_from_slice(&padded[..rest.len()]);
    }
    mask
}

/// [`classify_block`] for 16 bytes, with SSE2.
#[cfg(target_arch = "x86_64")]
#[inline]
fn classify_16(bytes: &mut [u8; 16]) -> u16 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64 itself, so every CPU this runs on has these
    // instructions; `bytes` is 16 readable and writable bytes, and unaligned loads and
    // stores are fine.
    unsafe {
        // Unsigned `a <= b` per byte: SSE2 has no unsigned compare, but `min(a, b) == a` is one.
        let at_most = |a: __m128i, b: u8| _mm_cmpeq_epi8(_mm_min_epu8(a, _mm_set1_epi8(b as i8)), a);
        let minus = |a: __m128i, b: u8| _mm_sub_epi8(a, _mm_set1_epi8(b as i8));
        let x = _mm_loadu_si128(bytes.as_ptr().cast());
        // Setting bit 5 maps `A`–`Z` onto `a`–`z` and nothing else onto them.
        let letter = at_most(minus(_mm_or_si128(x, _mm_set1_epi8(0x20)), b'a'), 25);
        let digit = at_most(minus(x, b'0'), 9);
        let underscore = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'_' as i8));
        let lowered = _mm_or_si128(x, _mm_and_si128(letter, _mm_set1_epi8(0x20)));
        _mm_storeu_si128(bytes.as_mut_ptr().cast(), lowered);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), underscore)) as u16
    }
}

/// [`classify_block`] for 16 bytes, a byte at a time.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn classify_16(bytes: &mut [u8; 16]) -> u16 {
    classify_16_plain(bytes)
}

/// The plain definition of [`classify_16`] (the SIMD version is tested against it).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_16_plain(bytes: &mut [u8; 16]) -> u16 {
    let mut mask = 0;
    for (i, byte) in bytes.iter_mut().enumerate() {
        if byte.is_ascii_alphanumeric() || *byte == b'_' {
            mask |= 1 << i;
        }
        byte.make_ascii_lowercase();
    }
    mask
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_byte_is_classified_and_lowered_as_the_plain_definition() {
        use super::{classify_16, classify_16_plain};
        for first in (0..=255u8).step_by(16) {
            let mut fast: [u8; 16] = std::array::from_fn(|i| first + i as u8);
            let mut plain = fast;
            assert_eq!(classify_16(&mut fast), classify_16_plain(&mut plain), "bytes {first}..");
            assert_eq!(fast, plain);
        }
    }
}
