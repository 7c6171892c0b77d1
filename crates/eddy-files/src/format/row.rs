//! Row formats: each record encoded on its own into a scratch buffer, then appended, so a
//! record that fails to encode leaves nothing behind.

use std::cell::RefCell;
use std::io::{self, Write};
use std::marker::PhantomData;

use serde::Serialize;

use super::compression::{Compressed, Compression};
use super::{Finished, PartEncoder, Rejected};
use crate::upload::{from_io, PartUpload};
use crate::FilesError;

/// Encodes one record as bytes.
pub(crate) trait RowFormat<T>: Send {
    /// Appends `value` to `out`; `first` is true for the part's first record (CSV writes its
    /// header then). On `Err`, `out` may hold a partial record: the caller discards it.
    fn encode(&mut self, value: &T, first: bool, out: &mut Vec<u8>) -> Result<(), String>;
}

/// One JSON document per line.
pub(crate) struct JsonLines;

impl<T: Serialize> RowFormat<T> for JsonLines {
    fn encode(&mut self, value: &T, _: bool, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(&mut *out, value).map_err(|e| format!("cannot encode as JSON: {e}"))?;
        out.push(b'\n');
        Ok(())
    }
}

/// CSV rows through the `csv` crate, with a header before a part's first row.
pub(crate) struct CsvRows {
    header: bool,
    delimiter: u8,
    /// Kept between records for speed; dropped after an error, which may leave it mid-row.
    writer: Option<csv::Writer<Taken>>,
}

impl CsvRows {
    pub(crate) fn new(header: bool, delimiter: u8) -> Self {
        CsvRows { header, delimiter, writer: None }
    }
}

/// Where the csv writer puts a row, taken out after each record.
#[derive(Default)]
struct Taken(RefCell<Vec<u8>>);

impl Write for Taken {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Serialize> RowFormat<T> for CsvRows {
    fn encode(&mut self, value: &T, first: bool, out: &mut Vec<u8>) -> Result<(), String> {
        if first || self.writer.is_none() {
            let mut builder = csv::WriterBuilder::new();
            builder.has_headers(self.header && first).delimiter(self.delimiter);
            self.writer = Some(builder.from_writer(Taken::default()));
        }
        let Some(writer) = self.writer.as_mut() else { return Err("internal error: no CSV writer".into()) };
        match writer.serialize(value).and_then(|()| writer.flush().map_err(csv::Error::from)) {
            Ok(()) => {
                out.append(&mut writer.get_ref().0.borrow_mut());
                Ok(())
            }
            Err(e) => {
                self.writer = None;
                Err(format!("cannot encode as CSV: {e}"))
            }
        }
    }
}

/// An open part of a row format.
struct RowPart<T, F> {
    format: F,
    out: Compressed<PartUpload>,
    sink: String,
    scratch: Vec<u8>,
    records: u64,
    _records: PhantomData<fn(T)>,
}

/// A part encoder for `format`, compressing with `compression`.
pub(crate) fn open<T, F>(
    format: F,
    upload: PartUpload,
    compression: Compression,
    sink: &str,
) -> Result<Box<dyn PartEncoder<T>>, FilesError>
where
    T: Serialize + Send + 'static,
    F: RowFormat<T> + 'static,
{
    let key = upload.key().clone();
    let out = compression.wrap(upload).map_err(|e| from_io(e, sink, &key))?;
    Ok(Box::new(RowPart {
        format,
        out,
        sink: sink.to_string(),
        scratch: Vec::new(),
        records: 0,
        _records: PhantomData,
    }))
}

impl<T: Send, F: RowFormat<T>> PartEncoder<T> for RowPart<T, F> {
    fn push(&mut self, value: T, event_time: Option<i64>, rejected: &mut Vec<Rejected<T>>) -> Result<(), FilesError> {
        self.scratch.clear();
        if let Err(reason) = self.format.encode(&value, self.records == 0, &mut self.scratch) {
            rejected.push(Rejected { value, event_time, reason });
            return Ok(());
        }
        let written = self.out.write_all(&self.scratch);
        written.map_err(|e| from_io(e, &self.sink, self.out.inner().key()))?;
        self.records += 1;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.out.inner().bytes()
    }

    fn finish(self: Box<Self>, _: &mut Vec<Rejected<T>>) -> Result<Finished, FilesError> {
        let key = self.out.inner().key().clone();
        let upload = self.out.finish().map_err(|e| from_io(e, &self.sink, &key))?;
        let (staging, bytes) = upload.finish()?;
        Ok(Finished { staging, records: self.records, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Trip {
        airport: &'static str,
        minutes: u32,
    }

    #[derive(Serialize)]
    struct Nested {
        trip: Trip,
        tags: Vec<u8>,
    }

    fn encode<T, F: RowFormat<T>>(format: &mut F, values: &[T]) -> (String, Vec<String>) {
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        let mut first = true;
        for value in values {
            let mut scratch = Vec::new();
            match format.encode(value, first, &mut scratch) {
                Ok(()) => {
                    out.extend(scratch);
                    first = false;
                }
                Err(e) => errors.push(e),
            }
        }
        (String::from_utf8(out).unwrap(), errors)
    }

    #[test]
    fn json_lines_one_document_per_line() {
        let trips = [Trip { airport: "JFK", minutes: 31 }, Trip { airport: "L\nGA", minutes: 2 }];
        let (text, errors) = encode(&mut JsonLines, &trips);
        assert_eq!(text, "{\"airport\":\"JFK\",\"minutes\":31}\n{\"airport\":\"L\\nGA\",\"minutes\":2}\n");
        assert!(errors.is_empty());
    }

    #[test]
    fn csv_header_once_and_bad_rows_leave_nothing() {
        let mut csv = CsvRows::new(true, b',');
        let (text, errors) =
            encode(&mut csv, &[Trip { airport: "JFK", minutes: 31 }, Trip { airport: "a,b", minutes: 2 }]);
        assert_eq!(text, "airport,minutes\nJFK,31\n\"a,b\",2\n");
        assert!(errors.is_empty());
        // A nested struct cannot be a CSV row: rejected, and the next part's header is intact.
        let mut csv = CsvRows::new(true, b';');
        let bad = Nested { trip: Trip { airport: "JFK", minutes: 1 }, tags: vec![1] };
        let mut out = Vec::new();
        assert!(csv.encode(&bad, true, &mut out).is_err());
        let mut out = Vec::new();
        csv.encode(&Trip { airport: "JFK", minutes: 31 }, true, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "airport;minutes\nJFK;31\n");
    }
}
