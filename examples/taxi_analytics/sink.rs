//! A JSON-lines file sink: one `serde_json` document per line, ready for a bulk load.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use eddy::prelude::*;
use serde::Serialize;

/// Writes each record as one JSON line.
pub struct JsonLines {
    out: BufWriter<File>,
}

impl JsonLines {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, BoxError> {
        let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(JsonLines { out: BufWriter::with_capacity(1 << 16, file) })
    }
}

impl<T: Serialize> Sink<T> for JsonLines {
    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        serde_json::to_writer(&mut self.out, &value)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.out.flush()?;
        Ok(())
    }
}

/// Sends `stream` to a JSON-lines file at `path`, written by one subtask.
pub fn write_json_lines<T: Data + Serialize>(stream: &DataStream<T>, path: &Path) {
    let target = path.to_path_buf();
    let name = path.file_name().map_or_else(|| "json lines".into(), |n| n.to_string_lossy().into_owned());
    stream.add_sink(&name, move |_, _| JsonLines::create(&target)).set_parallelism(1);
}
