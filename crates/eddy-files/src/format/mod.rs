//! Formats: how records become the bytes of a part file.
//!
//! *Row* formats (JSON lines, CSV) encode each record on its own and append it, optionally
//! through a whole-file [`Compression`]. *Bulk* formats (Parquet) buffer records and encode
//! them in batches, column by column; a bulk part is only complete once closed, so its
//! default rolling policy is "on checkpoint only", as in Flink.
//!
//! A record the format cannot encode (a serde error, a value that does not fit the Parquet
//! schema) leaves nothing in the part: it goes to the sink's error prefix as
//! `format-conversion-failed`, with the reason.

mod compression;
#[cfg(feature = "parquet")]
mod parquet;
mod row;

use serde::Serialize;

pub use compression::Compression;
#[cfg(feature = "parquet")]
pub use parquet::ParquetFormat;

use crate::txn::Staging;
use crate::upload::PartUpload;
use crate::FilesError;

/// How a sink encodes its part files.
///
/// ```
/// use eddy_files::{Compression, Format};
///
/// let gzipped = Format::json_lines().with_compression(Compression::Gzip);
/// assert_eq!(gzipped.extension(), ".jsonl.gz");
/// assert_eq!(Format::csv().extension(), ".csv");
/// ```
#[derive(Debug, Clone)]
pub struct Format {
    kind: Kind,
    compression: Compression,
}

#[derive(Debug, Clone)]
enum Kind {
    JsonLines,
    Csv {
        header: bool,
        delimiter: u8,
    },
    #[cfg(feature = "parquet")]
    Parquet(ParquetFormat),
}

impl Format {
    /// One JSON document per line (`serde_json`).
    pub fn json_lines() -> Format {
        Format { kind: Kind::JsonLines, compression: Compression::None }
    }

    /// Comma-separated values with a header line per part (the `csv` crate with serde: a
    /// struct's fields are the columns; nested structs and sequences cannot be encoded).
    pub fn csv() -> Format {
        Format::csv_with(true, b',')
    }

    /// CSV with or without a header line, and another delimiter (e.g. `b'\t'`).
    pub fn csv_with(header: bool, delimiter: u8) -> Format {
        Format { kind: Kind::Csv { header, delimiter }, compression: Compression::None }
    }

    /// Parquet, compressed with Snappy unless [`Format::with_compression`] says otherwise.
    #[cfg(feature = "parquet")]
    pub fn parquet(format: ParquetFormat) -> Format {
        Format { kind: Kind::Parquet(format), compression: Compression::Snappy }
    }

    /// Compresses parts (row formats: the whole file; Parquet: each page).
    pub fn with_compression(mut self, compression: Compression) -> Format {
        self.compression = compression;
        self
    }

    /// The part files' name extension, e.g. `.jsonl.zst` or `.parquet`.
    pub fn extension(&self) -> String {
        match &self.kind {
            Kind::JsonLines => format!(".jsonl{}", self.compression.extension()),
            Kind::Csv { .. } => format!(".csv{}", self.compression.extension()),
            #[cfg(feature = "parquet")]
            Kind::Parquet(_) => ".parquet".to_string(),
        }
    }

    /// Whether parts are encoded in batches and complete only when closed.
    pub fn is_bulk(&self) -> bool {
        match &self.kind {
            Kind::JsonLines | Kind::Csv { .. } => false,
            #[cfg(feature = "parquet")]
            Kind::Parquet(_) => true,
        }
    }

    /// An encoder writing one part into `upload`.
    pub(crate) fn open<T: Serialize + Send + 'static>(
        &self,
        upload: PartUpload,
        sink: &str,
    ) -> Result<Box<dyn PartEncoder<T>>, FilesError> {
        match &self.kind {
            Kind::JsonLines => row::open(row::JsonLines, upload, self.compression, sink),
            Kind::Csv { header, delimiter } => {
                row::open(row::CsvRows::new(*header, *delimiter), upload, self.compression, sink)
            }
            #[cfg(feature = "parquet")]
            Kind::Parquet(format) => format.open(upload, self.compression, sink),
        }
    }
}

/// A record the format could not encode, and why.
pub(crate) struct Rejected<T> {
    pub value: T,
    pub event_time: Option<i64>,
    pub reason: String,
}

/// A part closed by its encoder: durable, invisible, ready for a transaction.
pub(crate) struct Finished {
    pub staging: Staging,
    pub records: u64,
    pub bytes: u64,
}

/// Encodes the records of one open part.
pub(crate) trait PartEncoder<T>: Send {
    /// Adds a record. Records the format cannot encode land in `rejected` (for bulk formats
    /// possibly later ones, when a batch is encoded); an `Err` means the part is lost (the
    /// store failed) and the sink must stop.
    fn push(&mut self, value: T, event_time: Option<i64>, rejected: &mut Vec<Rejected<T>>) -> Result<(), FilesError>;

    /// The part's size so far in bytes (bulk formats: an estimate that includes what is
    /// buffered), for the rolling policy.
    fn size(&self) -> u64;

    /// Encodes what is buffered and closes the part.
    fn finish(self: Box<Self>, rejected: &mut Vec<Rejected<T>>) -> Result<Finished, FilesError>;
}
