//! Parquet parts: records are buffered, turned into Arrow record batches by `serde_arrow`,
//! and written column by column by the `parquet` crate's `ArrowWriter`.
//!
//! The schema comes from the record type ([`ParquetFormat::for_type`], traced through serde:
//! field names and types as `serde` sees them, `Option` as nullable) or is given as an Arrow
//! schema ([`ParquetFormat::with_schema`]). A batch that does not fit the schema is retried
//! record by record, so that only the records that do not fit go to the error prefix.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{FieldRef, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use super::compression::Compression;
use super::{Finished, PartEncoder, Rejected};
use crate::upload::PartUpload;
use crate::FilesError;

/// Records per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 4096;

/// Parquet settings: the schema and the row group size.
///
/// ```
/// use eddy_files::{Format, ParquetFormat};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct PickupCount { location: String, pickup_count: u64, timestamp: i64 }
///
/// let parquet = ParquetFormat::for_type::<PickupCount>().unwrap();
/// let names: Vec<_> = parquet.schema().fields().iter().map(|f| f.name().clone()).collect();
/// assert_eq!(names, ["location", "pickup_count", "timestamp"]);
/// let format = Format::parquet(parquet); // Snappy pages unless with_compression says otherwise
/// # let _ = format;
/// ```
#[derive(Debug, Clone)]
pub struct ParquetFormat {
    fields: Arc<Vec<FieldRef>>,
    row_group_rows: usize,
}

impl ParquetFormat {
    /// The schema of `T`, traced through its `serde` implementation. Unit enum variants
    /// become strings; types serde cannot trace (e.g. untagged enums) need
    /// [`ParquetFormat::with_schema`].
    pub fn for_type<T: DeserializeOwned>() -> Result<ParquetFormat, FilesError> {
        // Plain (32-bit offset) strings, lists and binaries: what most Arrow readers expect.
        let options = TracingOptions::default()
            .enums_without_data_as_strings(true)
            .strings_as_large_utf8(false)
            .sequence_as_large_list(false)
            .bytes_as_large_binary(false);
        let fields = Vec::<FieldRef>::from_type::<T>(options).map_err(|e| {
            FilesError::Config(format!(
                "cannot derive a Parquet schema from {}: {e}; give one with ParquetFormat::with_schema",
                std::any::type_name::<T>()
            ))
        })?;
        Ok(ParquetFormat { fields: Arc::new(fields), row_group_rows: 1 << 20 })
    }

    /// This Arrow schema; records are converted to it through serde (field names must match).
    pub fn with_schema(schema: &Schema) -> ParquetFormat {
        ParquetFormat { fields: Arc::new(schema.fields().iter().cloned().collect()), row_group_rows: 1 << 20 }
    }

    /// At most `rows` rows per row group (default 1,048,576, the `parquet` crate's).
    pub fn with_row_group_rows(mut self, rows: usize) -> ParquetFormat {
        self.row_group_rows = rows.max(1);
        self
    }

    /// The Arrow schema parts are written with.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.fields.as_ref().clone()))
    }

    /// An encoder writing one Parquet part into `upload`.
    pub(crate) fn open<T: Serialize + Send + 'static>(
        &self,
        upload: PartUpload,
        compression: Compression,
        sink: &str,
    ) -> Result<Box<dyn PartEncoder<T>>, FilesError> {
        let codec = match compression {
            Compression::None => Codec::UNCOMPRESSED,
            Compression::Snappy => Codec::SNAPPY,
            Compression::Gzip => Codec::GZIP(GzipLevel::default()),
            Compression::Zstd => Codec::ZSTD(ZstdLevel::default()),
        };
        let properties = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .build();
        let key = upload.key().to_string();
        let writer = ArrowWriter::try_new(upload, self.schema(), Some(properties)).map_err(|e| FilesError::Write {
            target: sink.to_string(),
            key: key.clone(),
            reason: format!("cannot start a Parquet file: {e}"),
        })?;
        Ok(Box::new(ParquetPart {
            fields: self.fields.clone(),
            writer,
            buffer: Vec::new(),
            times: Vec::new(),
            records: 0,
            sink: sink.to_string(),
            key,
        }))
    }
}

/// An open Parquet part.
struct ParquetPart<T> {
    fields: Arc<Vec<FieldRef>>,
    writer: ArrowWriter<PartUpload>,
    buffer: Vec<T>,
    times: Vec<Option<i64>>,
    records: u64,
    sink: String,
    key: String,
}

impl<T: Serialize> ParquetPart<T> {
    fn batch(&self, values: &[T]) -> Result<RecordBatch, serde_arrow::Error> {
        serde_arrow::to_record_batch(&self.fields, &values)
    }

    fn write_error(&self, error: impl std::fmt::Display) -> FilesError {
        FilesError::Write { target: self.sink.clone(), key: self.key.clone(), reason: error.to_string() }
    }

    /// Encodes and writes the buffered records; those that do not fit go to `rejected`.
    fn flush_batch(&mut self, rejected: &mut Vec<Rejected<T>>) -> Result<(), FilesError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let values = std::mem::take(&mut self.buffer);
        let times = std::mem::take(&mut self.times);
        let (batch, written) = match self.batch(&values) {
            Ok(batch) => (batch, values.len()),
            Err(_) => {
                let mut fitting = Vec::with_capacity(values.len());
                for (value, event_time) in values.into_iter().zip(times) {
                    match self.batch(std::slice::from_ref(&value)) {
                        Ok(_) => fitting.push(value),
                        Err(e) => rejected.push(Rejected {
                            value,
                            event_time,
                            reason: format!("cannot encode as Parquet: {e}"),
                        }),
                    }
                }
                if fitting.is_empty() {
                    return Ok(());
                }
                (self.batch(&fitting).map_err(|e| self.write_error(e))?, fitting.len())
            }
        };
        self.writer.write(&batch).map_err(|e| self.write_error(e))?;
        self.records += written as u64;
        Ok(())
    }
}

impl<T: Serialize + Send> PartEncoder<T> for ParquetPart<T> {
    fn push(&mut self, value: T, event_time: Option<i64>, rejected: &mut Vec<Rejected<T>>) -> Result<(), FilesError> {
        self.buffer.push(value);
        self.times.push(event_time);
        if self.buffer.len() >= BATCH_ROWS {
            self.flush_batch(rejected)?;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    fn finish(mut self: Box<Self>, rejected: &mut Vec<Rejected<T>>) -> Result<Finished, FilesError> {
        self.flush_batch(rejected)?;
        let ParquetPart { writer, records, sink, key, .. } = *self;
        let upload = writer.into_inner().map_err(|e| FilesError::Write {
            target: sink,
            key,
            reason: format!("cannot finish the Parquet file: {e}"),
        })?;
        let (staging, bytes) = upload.finish()?;
        Ok(Finished { staging, records, bytes })
    }
}
