//! Whole-file compression for row formats: gzip, zstd, or snappy's framing format.
//!
//! Each part is one compressed stream, so any reader of `.gz`, `.zst` or `.sz` files reads it
//! (Spark, Hive, Athena, `zcat`). Parquet compresses its pages itself and ignores this.

use std::io::{self, Write};

use flate2::write::GzEncoder;

/// How row-format parts are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain bytes.
    #[default]
    None,
    /// gzip (`.gz`), default level.
    Gzip,
    /// zstd (`.zst`), level 3.
    Zstd,
    /// Snappy framing format (`.sz`), as `snzip` and Hadoop's streaming readers read it.
    Snappy,
}

impl Compression {
    /// The file name extension it adds (`""`, `.gz`, `.zst`, `.sz`).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::Snappy => ".sz",
        }
    }

    /// Wraps `out` in this compression's encoder.
    pub(crate) fn wrap<W: Write>(self, out: W) -> io::Result<Compressed<W>> {
        Ok(match self {
            Compression::None => Compressed::Plain(out),
            Compression::Gzip => Compressed::Gzip(Box::new(GzEncoder::new(out, flate2::Compression::default()))),
            Compression::Zstd => Compressed::Zstd(Box::new(zstd::Encoder::new(out, 3)?)),
            Compression::Snappy => Compressed::Snappy(Box::new(snap::write::FrameEncoder::new(out))),
        })
    }
}

/// A writer compressing into `W` (encoders boxed: their state is large, and there is one per
/// open part, not per record).
pub(crate) enum Compressed<W: Write> {
    Plain(W),
    Gzip(Box<GzEncoder<W>>),
    Zstd(Box<zstd::Encoder<'static, W>>),
    Snappy(Box<snap::write::FrameEncoder<W>>),
}

impl<W: Write> Compressed<W> {
    /// The writer underneath, to see how many bytes reached it.
    pub(crate) fn inner(&self) -> &W {
        match self {
            Compressed::Plain(w) => w,
            Compressed::Gzip(w) => w.get_ref(),
            Compressed::Zstd(w) => w.get_ref(),
            Compressed::Snappy(w) => w.get_ref(),
        }
    }

    /// Ends the compressed stream and returns the writer underneath.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Compressed::Plain(w) => Ok(w),
            Compressed::Gzip(w) => w.finish(),
            Compressed::Zstd(w) => w.finish(),
            Compressed::Snappy(w) => (*w).into_inner().map_err(|e| io::Error::other(e.to_string())),
        }
    }
}

impl<W: Write> Write for Compressed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressed::Plain(w) => w.write(buf),
            Compressed::Gzip(w) => w.write(buf),
            Compressed::Zstd(w) => w.write(buf),
            Compressed::Snappy(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressed::Plain(w) => w.write_all(buf),
            Compressed::Gzip(w) => w.write_all(buf),
            Compressed::Zstd(w) => w.write_all(buf),
            Compressed::Snappy(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressed::Plain(w) => w.flush(),
            Compressed::Gzip(w) => w.flush(),
            Compressed::Zstd(w) => w.flush(),
            Compressed::Snappy(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn round_trip(compression: Compression, data: &[u8]) -> Vec<u8> {
        let mut out = compression.wrap(Vec::new()).unwrap();
        out.write_all(data).unwrap();
        let bytes = out.finish().unwrap();
        let mut back = Vec::new();
        match compression {
            Compression::None => back = bytes,
            Compression::Gzip => drop(flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap()),
            Compression::Zstd => back = zstd::decode_all(&bytes[..]).unwrap(),
            Compression::Snappy => drop(snap::read::FrameDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap()),
        }
        back
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd, Compression::Snappy] {
            assert_eq!(round_trip(compression, &data), data, "{compression:?}");
        }
    }
}
