//! One part's bytes on their way to the store, invisible until committed.
//!
//! A [`PartUpload`] is an `io::Write`: formats write into it, it collects the bytes into
//! chunks of `chunk_size` (5 MiB by default, S3's smallest multipart part) and uploads each
//! full chunk in the background on the shared I/O runtime while the subtask goes on encoding.
//! At most [`MAX_IN_FLIGHT`] chunks of a part are in flight; the next one waits (backpressure).
//! [`PartUpload::finish`] uploads the rest and returns the [`Staging`] that the committer
//! later makes visible:
//!
//! - with multipart uploads, the upload is created on the part's final key when the first
//!   chunk leaves, and a small marker object under `_eddy/uploads/` records its id, so that a
//!   later start can abort it if no checkpoint ever covers it;
//! - otherwise the chunks go to a staging object under `_eddy/staging/`.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;

use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{MultipartId, MultipartUpload, ObjectStoreExt, PutPayload};
use tokio::task::JoinHandle;

use crate::io_runtime::{block_on, spawn};
use crate::txn::Staging;
use crate::{FilesError, Storage};

/// S3 refuses multipart parts smaller than this, except the last.
pub const MIN_CHUNK_SIZE: usize = 5 << 20;
/// Chunks of one part uploading at once.
pub const MAX_IN_FLIGHT: usize = 2;

/// Where a part's bytes go before the commit.
pub(crate) enum Target {
    /// A multipart upload on `key`, recorded in the marker object `marker`.
    Multipart { marker: Path },
    /// The hidden object `staging`.
    Staged { staging: Path },
}

/// The upload once it has started.
enum Started {
    Multipart { store: Arc<dyn MultipartStore>, id: MultipartId, marker: Path },
    Staged { upload: Box<dyn MultipartUpload>, staging: Path },
}

/// A chunk upload in flight: the multipart part id it will give, or nothing (staged).
type Chunk = JoinHandle<object_store::Result<Option<PartId>>>;

/// The bytes of one part file, uploaded in chunks.
pub(crate) struct PartUpload {
    storage: Storage,
    /// How errors name the sink: its storage and base path.
    sink: Arc<str>,
    key: Path,
    target: Option<Target>,
    started: Option<Started>,
    chunk: Vec<u8>,
    chunk_size: usize,
    bytes: u64,
    in_flight: VecDeque<Chunk>,
    /// Part ids of the chunks uploaded so far, in order.
    parts: Vec<PartId>,
}

impl PartUpload {
    /// An upload of the part `key`, staged as `target` says.
    pub(crate) fn new(storage: Storage, sink: Arc<str>, key: Path, target: Target, chunk_size: usize) -> Self {
        PartUpload {
            storage,
            sink,
            key,
            target: Some(target),
            started: None,
            chunk: Vec::new(),
            chunk_size,
            bytes: 0,
            in_flight: VecDeque::new(),
            parts: Vec::new(),
        }
    }

    /// The part's final key.
    pub(crate) fn key(&self) -> &Path {
        &self.key
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn store_error(&self, action: String, source: object_store::Error) -> FilesError {
        FilesError::Store { target: self.sink.to_string(), action, source }
    }

    /// Creates the multipart upload (and its marker) or the staging upload.
    fn start(&mut self) -> Result<(), FilesError> {
        let Some(target) = self.target.take() else { return Ok(()) };
        let started = match (target, self.storage.multipart()) {
            (Target::Multipart { marker }, Some(multipart)) => {
                let store = multipart.clone();
                let key = self.key.clone();
                let id = block_on(async move { store.create_multipart(&key).await })?
                    .map_err(|e| self.store_error(format!("start a multipart upload of {}", self.key), e))?;
                let record = serde_json::json!({ "key": self.key.as_ref(), "upload_id": id });
                let (store, path) = (self.storage.store().clone(), marker.clone());
                block_on(async move { store.put(&path, PutPayload::from(record.to_string().into_bytes())).await })?
                    .map_err(|e| self.store_error(format!("record the upload of {} in {marker}", self.key), e))?;
                Started::Multipart { store: multipart.clone(), id, marker }
            }
            (Target::Staged { staging }, _) => {
                let (store, path) = (self.storage.store().clone(), staging.clone());
                let upload = block_on(async move { store.put_multipart(&path).await })?
                    .map_err(|e| self.store_error(format!("start the staging object {staging}"), e))?;
                Started::Staged { upload, staging }
            }
            (Target::Multipart { .. }, None) => {
                return Err(FilesError::Config(format!("{}: the store has no multipart uploads", self.sink)))
            }
        };
        self.started = Some(started);
        Ok(())
    }

    /// Sends the collected chunk off (also when empty: the last part may be).
    fn ship(&mut self) -> Result<(), FilesError> {
        self.start()?;
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.settle_oldest()?;
        }
        let payload = PutPayload::from(std::mem::take(&mut self.chunk));
        let index = self.parts.len() + self.in_flight.len();
        let handle = match &mut self.started {
            Some(Started::Multipart { store, id, .. }) => {
                let (store, key, id) = (store.clone(), self.key.clone(), id.clone());
                spawn(async move { store.put_part(&key, &id, index, payload).await.map(Some) })?
            }
            Some(Started::Staged { upload, .. }) => {
                let part = upload.put_part(payload);
                spawn(async move { part.await.map(|()| None) })?
            }
            None => return Err(FilesError::Config("internal error: upload not started".into())),
        };
        self.in_flight.push_back(handle);
        Ok(())
    }

    /// Waits for the oldest chunk in flight.
    fn settle_oldest(&mut self) -> Result<(), FilesError> {
        let Some(handle) = self.in_flight.pop_front() else { return Ok(()) };
        let uploaded = block_on(handle)?.map_err(|e| FilesError::Write {
            target: self.sink.to_string(),
            key: self.key.to_string(),
            reason: format!("an upload task failed: {e}"),
        })?;
        match uploaded {
            Ok(Some(part)) => self.parts.push(part),
            Ok(None) => {}
            Err(e) => return Err(self.store_error(format!("upload a chunk of {}", self.key), e)),
        }
        Ok(())
    }

    /// Uploads what is left and waits for every chunk: the part is durable (still invisible).
    pub(crate) fn finish(mut self) -> Result<(Staging, u64), FilesError> {
        // An empty last chunk only when there is no other: some stores refuse empty parts.
        if !self.chunk.is_empty() || self.started.is_none() {
            self.ship()?;
        }
        while !self.in_flight.is_empty() {
            self.settle_oldest()?;
        }
        let staging = match self.started.take() {
            Some(Started::Multipart { id, marker, .. }) => Staging::Multipart {
                upload_id: id,
                parts: self.parts.iter().map(|p| p.content_id.clone()).collect(),
                marker: marker.to_string(),
            },
            Some(Started::Staged { mut upload, staging }) => {
                block_on(async move { upload.complete().await })?
                    .map_err(|e| self.store_error(format!("complete the staging object {staging}"), e))?;
                Staging::Object { key: staging.to_string() }
            }
            None => return Err(FilesError::Config("internal error: upload not started".into())),
        };
        Ok((staging, self.bytes))
    }

    fn to_io(error: FilesError) -> io::Error {
        io::Error::other(error)
    }
}

/// The sink error inside an `io::Error` that went through a format's writer, or the
/// `io::Error` itself as a write failure of `key`.
pub(crate) fn from_io(error: io::Error, sink: &str, key: &Path) -> FilesError {
    let reason = if error.get_ref().is_some_and(|inner| inner.is::<FilesError>()) {
        match error.into_inner().map(|inner| inner.downcast::<FilesError>()) {
            Some(Ok(inner)) => return *inner,
            Some(Err(other)) => other.to_string(),
            None => String::new(),
        }
    } else {
        error.to_string()
    };
    FilesError::Write { target: sink.to_string(), key: key.to_string(), reason }
}

impl Write for PartUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.chunk.capacity() == 0 {
            // Reserved, not touched: pages cost nothing until written, and the chunk never
            // reallocates (growing it by doubling copied each byte about twice).
            self.chunk.reserve_exact(self.chunk_size.max(buf.len()));
        }
        self.chunk.extend_from_slice(buf);
        self.bytes += buf.len() as u64;
        if self.chunk.len() >= self.chunk_size {
            self.ship().map_err(Self::to_io)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
