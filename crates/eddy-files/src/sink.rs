//! The file sink's settings ([`FileSink`]) and how a stream is sent to it ([`FileSinkExt`]).

use std::sync::Arc;

use eddy_stream::{Data, DataStream, StreamSink};
use serde::Serialize;

use crate::bucket::{normalize_bucket, BucketAssigner, DateTimeBucketAssigner, PathPattern};
use crate::committer::FilesCommitter;
use crate::layout::Layout;
use crate::upload::MIN_CHUNK_SIZE;
use crate::writer::{FileSinkWriter, SinkConfig, Validator};
use crate::{ErrorOutputType, FilesError, Format, RollingPolicy, Storage};

/// Where failed records go unless [`FileSink::error_prefix`] says otherwise (relative to the
/// store's root, like Firehose's error output prefix).
pub const DEFAULT_ERROR_PREFIX: &str = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/";

/// A partitioned file sink: where it writes, how records are sorted into buckets and encoded,
/// when parts roll, and where records go that cannot be written as data.
///
/// ```
/// use std::time::Duration;
/// use eddy_files::{Compression, DateTimeBucketAssigner, FileSink, Format, PathPattern, RollingPolicy, Storage};
///
/// #[derive(serde::Serialize)]
/// struct Trip { airport: String, minutes: u32 }
///
/// let sink = FileSink::<Trip>::new(Storage::in_memory(), "trips")
///     .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()))
///     .format(Format::json_lines().with_compression(Compression::Zstd))
///     .rolling_policy(RollingPolicy::default().with_part_size(64 << 20))
///     .error_prefix("trips-errors/!{firehose:error-output-type}/").unwrap()
///     .validator(|trip| if trip.minutes < 600 { Ok(()) } else { Err(format!("{} minutes", trip.minutes)) });
/// assert_eq!(sink.target(), "memory:///trips");
/// ```
pub struct FileSink<T> {
    storage: Storage,
    base: String,
    assigner: Arc<dyn BucketAssigner<T>>,
    format: Format,
    rolling: Option<RollingPolicy>,
    error_prefix: PathPattern,
    validator: Option<Validator<T>>,
    part_prefix: String,
    chunk_size: usize,
}

impl<T: Serialize + Send + 'static> FileSink<T> {
    /// A sink writing under `base` (e.g. `results/trips`, or `""` for the root) in `storage`:
    /// JSON lines, hourly Hive-style buckets by processing time (as Flink's default), the
    /// default rolling policy, and [`DEFAULT_ERROR_PREFIX`].
    pub fn new(storage: Storage, base: &str) -> Self {
        FileSink {
            storage,
            base: base.trim_matches('/').to_string(),
            assigner: Arc::new(DateTimeBucketAssigner::processing_time(PathPattern::hive_hourly())),
            format: Format::json_lines(),
            rolling: None,
            error_prefix: PathPattern::expression(DEFAULT_ERROR_PREFIX).expect("a valid pattern"),
            validator: None,
            part_prefix: "part".into(),
            chunk_size: MIN_CHUNK_SIZE,
        }
    }

    /// Sorts records into buckets with `assigner`.
    pub fn bucket_assigner(mut self, assigner: impl BucketAssigner<T> + 'static) -> Self {
        self.assigner = Arc::new(assigner);
        self
    }

    /// Encodes parts with `format`.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Rolls parts by `policy` (and always at checkpoints). Default: Flink's default policy
    /// for row formats, checkpoints only for bulk formats (Parquet).
    pub fn rolling_policy(mut self, policy: RollingPolicy) -> Self {
        self.rolling = Some(policy);
        self
    }

    /// Where records that cannot be written as data go, as a Firehose expression relative to
    /// the store's root; it must name `!{firehose:error-output-type}` and may use
    /// `!{timestamp:…}` (the time the record reached the sink, UTC).
    pub fn error_prefix(mut self, pattern: &str) -> Result<Self, FilesError> {
        self.error_prefix = PathPattern::expression(pattern)?;
        Ok(self)
    }

    /// Checks each record before it is written; a record it rejects goes to the error prefix
    /// as `processing-failed` with the returned reason.
    pub fn validator(mut self, validator: impl Fn(&T) -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.validator = Some(Arc::new(validator));
        self
    }

    /// Starts part names with `prefix` instead of `part` (Flink's `OutputFileConfig`).
    pub fn part_prefix(mut self, prefix: &str) -> Self {
        self.part_prefix = prefix.to_string();
        self
    }

    /// Uploads parts in chunks of `bytes` (default and minimum for multipart stores: 5 MiB).
    /// Each open part holds up to about this much in memory.
    pub fn upload_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// The storage and base path, as errors name the sink: `s3://bucket/results/trips`.
    pub fn target(&self) -> String {
        match self.storage.url() {
            url if url.ends_with('/') => format!("{url}{}", self.base),
            url => format!("{url}/{}", self.base),
        }
    }

    /// Checks every setting and splits the sink into what its subtasks share and its committer.
    pub(crate) fn build(self) -> Result<(Arc<SinkConfig<T>>, FilesCommitter), FilesError> {
        let target: Arc<str> = self.target().into();
        let layout = Layout::new(&self.base)?;
        self.assigner.validate()?;
        let error_prefix = &self.error_prefix;
        let pattern_error =
            |reason: &str| FilesError::Pattern { pattern: error_prefix.to_expression(), reason: reason.into() };
        if !error_prefix.uses_error_type() {
            return Err(pattern_error(
                "the error prefix must name !{firehose:error-output-type}, so that each kind of failure has its own directory",
            ));
        }
        if error_prefix.keys().next().is_some() {
            return Err(pattern_error("the error prefix cannot use partition keys"));
        }
        let mut sample = String::new();
        let now = chrono::Utc::now();
        let kind = ErrorOutputType::FormatConversionFailed.as_str();
        error_prefix.render(Some(&now), Some(kind), &|_| None, &mut sample).map_err(|e| pattern_error(&e))?;
        let error_dir = normalize_bucket(&sample).map_err(|e| pattern_error(&e))?;
        if error_dir.is_empty() || layout.is_meta(error_dir) {
            return Err(pattern_error("the error prefix must name a directory outside the sink's _eddy/"));
        }
        let prefix_ok = !self.part_prefix.is_empty()
            && !self.part_prefix.starts_with(['.', '_'])
            && self.part_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok {
            return Err(FilesError::Config(format!(
                "invalid part prefix {:?}: ASCII letters, digits, - and _, not starting with _",
                self.part_prefix
            )));
        }
        if self.storage.multipart().is_some() && self.chunk_size < MIN_CHUNK_SIZE {
            return Err(FilesError::Config(format!(
                "upload chunk size {} is below {MIN_CHUNK_SIZE} bytes, the smallest part S3 accepts",
                self.chunk_size
            )));
        }
        let rolling = self.rolling.unwrap_or(if self.format.is_bulk() {
            RollingPolicy::on_checkpoint()
        } else {
            RollingPolicy::default()
        });
        let roots = vec![layout.base().to_string(), fixed_dir(&error_dir_of(error_prefix))];
        let committer = FilesCommitter::new(self.storage.clone(), layout.clone(), roots, target.to_string());
        let config = SinkConfig {
            storage: self.storage,
            layout,
            target,
            assigner: self.assigner,
            format: self.format,
            rolling,
            error_prefix: self.error_prefix,
            validator: self.validator,
            part_prefix: self.part_prefix,
            chunk_size: self.chunk_size.max(1),
        };
        Ok((Arc::new(config), committer))
    }
}

/// The literal start of an error prefix pattern (before its first expression).
fn error_dir_of(pattern: &PathPattern) -> String {
    let expression = pattern.to_expression();
    expression.split("!{").next().unwrap_or_default().to_string()
}

/// The directory part of a literal prefix: `errors/x` → `errors`, `errors/` → `errors`.
fn fixed_dir(prefix: &str) -> String {
    match prefix.rfind('/') {
        Some(at) => prefix[..at].trim_matches('/').to_string(),
        None => String::new(),
    }
}

/// Sends a stream to a [`FileSink`].
pub trait FileSinkExt<T> {
    /// Writes every record through `sink`. With checkpointing the output is exactly-once:
    /// parts become visible when the checkpoint that covers them completes, and a restart
    /// never shows a record twice (give the sink a `uid`). Without checkpointing, parts
    /// become visible when a bounded input ends.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// use eddy_files::{FileSink, FileSinkExt, Storage};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let env = StreamEnvironment::new();
    /// let sink = FileSink::new(Storage::local(dir.path()).unwrap(), "numbers");
    /// env.from_iter(0..100u32).sink_to_files(sink).unwrap().uid("numbers-sink");
    /// env.execute("numbers").unwrap().wait().unwrap();
    /// ```
    fn sink_to_files(&self, sink: FileSink<T>) -> Result<StreamSink, FilesError>;
}

impl<T: Data + Serialize> FileSinkExt<T> for DataStream<T> {
    fn sink_to_files(&self, sink: FileSink<T>) -> Result<StreamSink, FilesError> {
        let name = format!("Files {}", sink.target());
        let (config, committer) = sink.build()?;
        let create = move |subtask, _| Ok(FileSinkWriter::new(config.clone(), subtask));
        Ok(self.add_two_phase_sink(&name, create, committer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(sink: FileSink<u32>) -> Result<(), FilesError> {
        sink.build().map(|_| ())
    }

    #[test]
    fn settings_are_checked_with_messages_that_say_what_to_do() {
        let sink = || FileSink::<u32>::new(Storage::in_memory(), "out");
        assert!(built(sink()).is_ok());
        let cases: [(Result<(), FilesError>, &str); 5] = [
            (built(sink().error_prefix("errors/").unwrap()), "error-output-type"),
            (built(FileSink::new(Storage::in_memory(), "a/../b")), "invalid base path"),
            (built(sink().part_prefix("_x")), "part prefix"),
            (built(sink().upload_chunk_size(1024)), "smallest part"),
            (built(sink().error_prefix("out/_eddy/!{firehose:error-output-type}").unwrap()), "_eddy"),
        ];
        for (result, expected) in cases {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} should mention {expected:?}");
        }
        let unknown = sink().error_prefix("e/!{firehose:random-string}").err().unwrap().to_string();
        assert!(unknown.contains("random-string"), "{unknown}");
    }

    #[test]
    fn error_prefix_roots_are_its_fixed_directory() {
        assert_eq!(fixed_dir("errors/"), "errors");
        assert_eq!(fixed_dir("a/b/x-"), "a/b");
        assert_eq!(fixed_dir("x-"), "");
        assert_eq!(error_dir_of(&PathPattern::expression(DEFAULT_ERROR_PREFIX).unwrap()), "errors/");
    }
}
