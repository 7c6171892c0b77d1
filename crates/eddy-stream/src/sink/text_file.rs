//! Writing a stream to text files, one `Display` line per record.

use std::fmt::Display;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use eddy_core::{BoxError, Timestamp};

use super::Sink;

/// Writes lines to one file per subtask.
pub struct TextFileSink {
    out: BufWriter<File>,
}

impl TextFileSink {
    /// `path` itself at parallelism 1; `path/part-<subtask>` otherwise.
    pub fn create(path: &Path, subtask: usize, parallelism: usize) -> Result<Self, BoxError> {
        let (dir, file_path) = if parallelism == 1 {
            (path.parent().unwrap_or(Path::new("")), path.to_path_buf())
        } else {
            (path, path.join(format!("part-{subtask}")))
        };
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = File::create(&file_path).map_err(|e| format!("cannot create {}: {e}", file_path.display()))?;
        Ok(TextFileSink { out: BufWriter::with_capacity(1 << 20, file) })
    }
}

impl<T: Display> Sink<T> for TextFileSink {
    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        writeln!(self.out, "{value}")?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.out.flush()?;
        Ok(())
    }
}
