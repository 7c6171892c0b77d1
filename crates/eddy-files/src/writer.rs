//! One subtask of the file sink: sorts records into buckets, writes each bucket's open part,
//! rolls parts by the rolling policy, sends what it cannot write to the error prefix, and at
//! every checkpoint closes all its parts into one transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{BoxError, Timestamp};
use eddy_stream::sink::TwoPhaseCommitSink;
use hashbrown::HashMap;
use serde::Serialize;

use crate::bucket::{normalize_bucket, BucketAssigner, BucketContext, PathPattern};
use crate::error_record::{ErrorOutputType, ErrorRecord};
use crate::format::{Format, PartEncoder, Rejected};
use crate::layout::{join, path, Layout};
use crate::rolling::{PartState, RollingPolicy};
use crate::txn::{FilesTxn, StagedPart};
use crate::upload::{PartUpload, Target};
use crate::{FilesError, Storage};

/// How often open parts are checked for age and inactivity while records flow.
const SWEEP_INTERVAL_MS: i64 = 1_000;

/// Decides, for a record, whether it may be written; `Err` is the reason it goes to the
/// error prefix as `processing-failed`.
pub(crate) type Validator<T> = Arc<dyn Fn(&T) -> Result<(), String> + Send + Sync>;

/// What every subtask of one sink shares.
pub(crate) struct SinkConfig<T> {
    pub storage: Storage,
    pub layout: Layout,
    /// The sink's storage and base path, as errors name it.
    pub target: Arc<str>,
    pub assigner: Arc<dyn BucketAssigner<T>>,
    pub format: Format,
    pub rolling: RollingPolicy,
    pub error_prefix: PathPattern,
    pub validator: Option<Validator<T>>,
    pub part_prefix: String,
    pub chunk_size: usize,
}

/// An open part and what the rolling policy needs to know of it.
struct OpenPart<R> {
    encoder: Box<dyn PartEncoder<R>>,
    key: String,
    opened_ms: i64,
    last_write_ms: i64,
}

impl<R> OpenPart<R> {
    fn state(&self) -> PartState {
        PartState { opened_ms: self.opened_ms, last_write_ms: self.last_write_ms, bytes: self.encoder.size() }
    }
}

/// One subtask of a file sink (see the crate docs).
pub struct FileSinkWriter<T> {
    config: Arc<SinkConfig<T>>,
    subtask: usize,
    token: String,
    next_seq: u64,
    /// Open data parts by bucket, as the assigner named it (hashbrown's foldhash: several
    /// times cheaper than SipHash per record, and still randomly seeded).
    parts: HashMap<String, OpenPart<T>>,
    /// Open error parts by directory (relative to the store's root).
    error_parts: HashMap<String, OpenPart<ErrorRecord>>,
    /// Parts closed since the last pre-commit.
    closed: Vec<StagedPart>,
    rejected: Vec<Rejected<T>>,
    last_checkpoint: Option<u64>,
    last_sweep_ms: i64,
    /// Set when a store request failed: the open parts are lost, and so is this writer.
    failure: Option<String>,
}

impl<T: Serialize + Send + 'static> FileSinkWriter<T> {
    /// Subtask `subtask`'s writer, with a token no other writer has.
    pub(crate) fn new(config: Arc<SinkConfig<T>>, subtask: usize) -> Self {
        FileSinkWriter {
            config,
            subtask,
            token: unique_token(subtask),
            next_seq: 0,
            parts: HashMap::new(),
            error_parts: HashMap::new(),
            closed: Vec::new(),
            rejected: Vec::new(),
            last_checkpoint: None,
            last_sweep_ms: i64::MIN,
            failure: None,
        }
    }

    /// Writes `value` with its event time as if the clock said `now_ms`.
    pub(crate) fn write_at(&mut self, value: T, timestamp: Timestamp, now_ms: i64) -> Result<(), FilesError> {
        self.check_usable()?;
        let result = self.write_inner(value, timestamp, now_ms);
        self.note_failure(result)
    }

    /// Closes every open part (writing what bulk formats still buffer) and returns them as the
    /// transaction of `checkpoint`.
    pub(crate) fn close_all(&mut self, checkpoint: u64, now_ms: i64) -> Result<Option<FilesTxn>, FilesError> {
        self.check_usable()?;
        if let Some(last) = self.last_checkpoint.filter(|&last| checkpoint <= last) {
            return Err(FilesError::Config(format!(
                "{}: checkpoint {checkpoint} after checkpoint {last}: checkpoint ids must grow",
                self.config.target
            )));
        }
        let result = self.close_all_inner(now_ms);
        self.note_failure(result)?;
        self.last_checkpoint = Some(checkpoint);
        if self.closed.is_empty() {
            return Ok(None);
        }
        let parts = std::mem::take(&mut self.closed);
        Ok(Some(FilesTxn { checkpoint, subtask: self.subtask, token: self.token.clone(), parts }))
    }

    fn check_usable(&self) -> Result<(), FilesError> {
        match &self.failure {
            Some(failure) => Err(FilesError::Config(format!(
                "{}: subtask {} failed earlier and cannot go on: {failure}",
                self.config.target, self.subtask
            ))),
            None => Ok(()),
        }
    }

    fn note_failure<R>(&mut self, result: Result<R, FilesError>) -> Result<R, FilesError> {
        if let Err(e) = &result {
            self.failure = Some(e.to_string());
        }
        result
    }

    fn write_inner(&mut self, value: T, timestamp: Timestamp, now_ms: i64) -> Result<(), FilesError> {
        self.sweep(now_ms)?;
        let event_time = (timestamp != NO_TIMESTAMP).then_some(timestamp);
        if let Some(validator) = &self.config.validator {
            if let Err(reason) = validator(&value) {
                return self.write_error(ErrorOutputType::ProcessingFailed, reason, &value, event_time, now_ms);
            }
        }
        let context = BucketContext { event_time, processing_time: now_ms };
        // Parts are keyed by the assigner's own string; it is checked when a part opens for it.
        let bucket = match self.config.assigner.bucket(&value, &context) {
            Ok(bucket) => bucket,
            Err(reason) => {
                return self.write_error(ErrorOutputType::BucketAssignmentFailed, reason, &value, event_time, now_ms)
            }
        };
        let rolling = self.config.rolling;
        if self.parts.get(&bucket).is_some_and(|p| rolling.roll_before_write(&p.state(), now_ms)) {
            if let Some(part) = self.parts.remove(&bucket) {
                self.close_part(part, now_ms)?;
            }
        }
        if !self.parts.contains_key(&bucket) {
            let dir = match normalize_bucket(&bucket) {
                Ok(relative) => self.config.layout.join(relative),
                Err(reason) => {
                    return self.write_error(
                        ErrorOutputType::BucketAssignmentFailed,
                        reason,
                        &value,
                        event_time,
                        now_ms,
                    )
                }
            };
            let part = self.open_part(&dir, &self.config.format.clone(), now_ms)?;
            self.parts.insert(bucket.clone(), part);
        }
        let Some(part) = self.parts.get_mut(&bucket) else {
            return Err(FilesError::Config("internal error: the bucket's part is not open".into()));
        };
        part.encoder.push(value, event_time, &mut self.rejected)?;
        part.last_write_ms = now_ms;
        self.write_rejected(now_ms)
    }

    /// Sends what a format rejected to the error prefix.
    fn write_rejected(&mut self, now_ms: i64) -> Result<(), FilesError> {
        for rejected in std::mem::take(&mut self.rejected) {
            let kind = ErrorOutputType::FormatConversionFailed;
            self.write_error(kind, rejected.reason, &rejected.value, rejected.event_time, now_ms)?;
        }
        Ok(())
    }

    /// Writes the error record of `value` under the error prefix.
    fn write_error(
        &mut self,
        kind: ErrorOutputType,
        reason: String,
        value: &T,
        event_time: Option<i64>,
        now_ms: i64,
    ) -> Result<(), FilesError> {
        let record = ErrorRecord::new(kind, reason, value, event_time, now_ms);
        let time = Utc.timestamp_millis_opt(now_ms).single();
        let mut dir = String::new();
        let rendered = self.config.error_prefix.render(time.as_ref(), Some(kind.as_str()), &|_| None, &mut dir);
        rendered.map_err(|e| FilesError::Config(format!("{}: error prefix: {e}", self.config.target)))?;
        let dir = normalize_bucket(&dir).map_err(|e| FilesError::Config(format!("error prefix: {e}")))?.to_string();
        let rolling = self.config.rolling;
        if self.error_parts.get(&dir).is_some_and(|p| rolling.roll_before_write(&p.state(), now_ms)) {
            if let Some(part) = self.error_parts.remove(&dir) {
                self.close_error_part(part)?;
            }
        }
        if !self.error_parts.contains_key(&dir) {
            let part = self.open_part(&dir, &Format::json_lines(), now_ms)?;
            self.error_parts.insert(dir.clone(), part);
        }
        let Some(part) = self.error_parts.get_mut(&dir) else {
            return Err(FilesError::Config("internal error: the error part is not open".into()));
        };
        let mut unencodable = Vec::new();
        part.encoder.push(record, event_time, &mut unencodable)?;
        part.last_write_ms = now_ms;
        match unencodable.pop() {
            // serde_json cannot fail on a `Value`; if it ever did, stop rather than lose the record.
            Some(lost) => Err(FilesError::Config(format!("cannot write an error record: {}", lost.reason))),
            None => Ok(()),
        }
    }

    /// Opens a new part in `dir`.
    fn open_part<R: Serialize + Send + 'static>(
        &mut self,
        dir: &str,
        format: &Format,
        now_ms: i64,
    ) -> Result<OpenPart<R>, FilesError> {
        let config = &self.config;
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = format!("{}-{}-{seq}", self.token, self.subtask);
        let key = join(dir, &format!("{}-{id}{}", config.part_prefix, format.extension()));
        let target = match config.storage.multipart() {
            Some(_) => Target::Multipart { marker: path(&config.layout.marker(&id))? },
            None => Target::Staged { staging: path(&config.layout.staging(&id))? },
        };
        let upload =
            PartUpload::new(config.storage.clone(), config.target.clone(), path(&key)?, target, config.chunk_size);
        let encoder = format.open(upload, &config.target)?;
        Ok(OpenPart { encoder, key, opened_ms: now_ms, last_write_ms: now_ms })
    }

    /// Closes a data part; what its format rejected at the end goes to the error prefix.
    fn close_part(&mut self, part: OpenPart<T>, now_ms: i64) -> Result<(), FilesError> {
        let finished = part.encoder.finish(&mut self.rejected)?;
        if finished.records > 0 {
            self.closed.push(StagedPart {
                key: part.key,
                staging: finished.staging,
                records: finished.records,
                bytes: finished.bytes,
            });
        } else {
            // Every record was rejected: the (invisible) part is left for clean-up.
            tracing::debug!(key = %part.key, "dropping a part with no records");
        }
        self.write_rejected(now_ms)
    }

    fn close_error_part(&mut self, part: OpenPart<ErrorRecord>) -> Result<(), FilesError> {
        let finished = part.encoder.finish(&mut Vec::new())?;
        self.closed.push(StagedPart {
            key: part.key,
            staging: finished.staging,
            records: finished.records,
            bytes: finished.bytes,
        });
        Ok(())
    }

    /// Closes parts that are too old or idle.
    fn sweep(&mut self, now_ms: i64) -> Result<(), FilesError> {
        if now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_INTERVAL_MS {
            return Ok(());
        }
        self.last_sweep_ms = now_ms;
        let rolling = self.config.rolling;
        let due: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, p)| rolling.roll_on_time(&p.state(), now_ms))
            .map(|(b, _)| b.clone())
            .collect();
        for bucket in due {
            if let Some(part) = self.parts.remove(&bucket) {
                self.close_part(part, now_ms)?;
            }
        }
        let due: Vec<String> = self
            .error_parts
            .iter()
            .filter(|(_, p)| rolling.roll_on_time(&p.state(), now_ms))
            .map(|(d, _)| d.clone())
            .collect();
        for dir in due {
            if let Some(part) = self.error_parts.remove(&dir) {
                self.close_error_part(part)?;
            }
        }
        Ok(())
    }

    /// Closes data parts first: what they reject at the end goes to error parts, closed next.
    fn close_all_inner(&mut self, now_ms: i64) -> Result<(), FilesError> {
        let mut parts: Vec<(String, OpenPart<T>)> = self.parts.drain().collect();
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, part) in parts {
            self.close_part(part, now_ms)?;
        }
        let mut error_parts: Vec<(String, OpenPart<ErrorRecord>)> = self.error_parts.drain().collect();
        error_parts.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, part) in error_parts {
            self.close_error_part(part)?;
        }
        Ok(())
    }
}

impl<T: Serialize + Send + 'static> TwoPhaseCommitSink<T> for FileSinkWriter<T> {
    type Txn = FilesTxn;

    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), BoxError> {
        Ok(self.write_at(value, timestamp, now_ms())?)
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<FilesTxn>, BoxError> {
        Ok(self.close_all(checkpoint, now_ms())?)
    }
}

/// The wall clock in ms since the epoch.
fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// 16 hex digits unique to one writer: the time, the process, a counter and the subtask,
/// hashed. Part names carry it, so two writers (or two attempts) never pick the same name.
fn unique_token(subtask: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{nanos}-{}-{count}-{subtask}", std::process::id());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()))
}

#[cfg(test)]
mod tests;
