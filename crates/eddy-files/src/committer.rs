//! The job-side half of the file sink: makes the parts of a completed checkpoint visible,
//! discards what no checkpoint will cover, and records each commit in a manifest.
//!
//! Committing one subtask's transaction:
//!
//! 1. writes the manifest `<base>/_eddy/commits/<checkpoint>-<subtask>-<token>.json`, listing
//!    its parts (so that what a checkpoint made visible can be found later, e.g. to roll back
//!    commits newer than a checkpoint being restored);
//! 2. makes each part visible: completes its multipart upload, or renames its staging object;
//! 3. deletes the upload markers.
//!
//! Every step may run again after a crash (the coordinator commits a restored checkpoint's
//! transactions once more): a part that is already visible with the expected size counts as
//! committed; one that is neither staged nor visible is reported as lost, never ignored.

use std::collections::HashSet;
use std::future::Future;

use eddy_core::BoxError;
use eddy_stream::sink::Committer;
use futures::TryStreamExt;
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::LostPart;
use crate::io_runtime::block_on;
use crate::layout::{path, Layout};
use crate::txn::{FilesTxn, StagedPart, Staging};
use crate::{FilesError, Storage};

/// The record of one commit, stored as JSON under `<base>/_eddy/commits/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub checkpoint: u64,
    pub subtask: usize,
    pub token: String,
    pub parts: Vec<ManifestPart>,
}

/// One committed part in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManifestPart {
    pub key: String,
    pub records: u64,
    pub bytes: u64,
}

/// Commits, aborts and cleans up the parts of every subtask of one file sink.
#[derive(Debug, Clone)]
pub struct FilesCommitter {
    storage: Storage,
    layout: Layout,
    /// Where the sink writes parts: its base path and its error prefix's fixed start. A
    /// transaction (read back from a checkpoint) naming a key elsewhere is refused.
    roots: Vec<String>,
    target: String,
}

impl FilesCommitter {
    pub(crate) fn new(storage: Storage, layout: Layout, roots: Vec<String>, target: String) -> Self {
        FilesCommitter { storage, layout, roots, target }
    }

    /// Runs one store request, naming the sink and the action in its error.
    fn call<R: Send>(
        &self,
        action: impl FnOnce() -> String,
        request: impl Future<Output = object_store::Result<R>> + Send,
    ) -> Result<R, FilesError> {
        block_on(request)?.map_err(|source| FilesError::Store { target: self.target.clone(), action: action(), source })
    }

    fn delete_if_exists(&self, key: &Path) -> Result<(), FilesError> {
        let store = self.storage.store();
        match block_on(store.delete(key))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => {
                Err(FilesError::Store { target: self.target.clone(), action: format!("delete {key}"), source })
            }
        }
    }

    /// Every object under `dir`; none if it does not exist (a local directory not yet made;
    /// S3 answers an empty list for a missing prefix, and an error for a missing bucket).
    fn list(&self, dir: &str) -> Result<Vec<Path>, FilesError> {
        let prefix = path(dir)?;
        let store = self.storage.store();
        let listed = block_on(store.list(Some(&prefix)).try_collect::<Vec<_>>())?;
        match listed {
            Ok(objects) => Ok(objects.into_iter().map(|meta| meta.location).collect()),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(source) => {
                Err(FilesError::Store { target: self.target.clone(), action: format!("list {dir}"), source })
            }
        }
    }

    /// Refuses transactions whose keys lie outside the sink's own places.
    fn validate(&self, txn: &FilesTxn) -> Result<(), FilesError> {
        let token_ok = !txn.token.is_empty() && txn.token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let inside = |key: &str, dir: &str| dir.is_empty() || key.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
        for part in &txn.parts {
            let key_ok = path(&part.key).is_ok()
                && !self.layout.is_meta(&part.key)
                && self.roots.iter().any(|root| inside(&part.key, root));
            let staging_ok = match &part.staging {
                Staging::Object { key } => inside(key, &self.layout.staging_dir()),
                Staging::Multipart { marker, .. } => inside(marker, &self.layout.uploads_dir()),
            };
            if !(token_ok && key_ok && staging_ok) {
                return Err(FilesError::Config(format!(
                    "{}: refusing a transaction of checkpoint {} that names objects outside the sink: {part:?}",
                    self.target, txn.checkpoint
                )));
            }
        }
        Ok(())
    }

    fn write_manifest(&self, txn: &FilesTxn) -> Result<(), FilesError> {
        let manifest = Manifest {
            checkpoint: txn.checkpoint,
            subtask: txn.subtask,
            token: txn.token.clone(),
            parts: txn
                .parts
                .iter()
                .map(|p| ManifestPart { key: p.key.clone(), records: p.records, bytes: p.bytes })
                .collect(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| FilesError::Config(format!("manifest: {e}")))?;
        let key = path(&self.layout.manifest(txn.checkpoint, txn.subtask, &txn.token))?;
        let store = self.storage.store();
        self.call(|| format!("write the manifest {key}"), store.put(&key, PutPayload::from(bytes)))?;
        Ok(())
    }

    /// Makes one part visible (idempotent).
    fn publish(&self, txn: &FilesTxn, part: &StagedPart) -> Result<(), FilesError> {
        let key = path(&part.key)?;
        match &part.staging {
            Staging::Object { key: staging } => {
                let from = path(staging)?;
                match block_on(self.storage.store().rename(&from, &key))? {
                    Ok(()) => Ok(()),
                    Err(object_store::Error::NotFound { .. }) => self.check_committed(txn, part, &key, None),
                    Err(source) => Err(FilesError::Store {
                        target: self.target.clone(),
                        action: format!("rename {from} to {key}"),
                        source,
                    }),
                }
            }
            Staging::Multipart { upload_id, parts, marker } => {
                let multipart = self.storage.multipart().ok_or_else(|| {
                    FilesError::Config(format!(
                        "{}: checkpoint {} holds multipart uploads, but this store has none: restore with the same storage",
                        self.target, txn.checkpoint
                    ))
                })?;
                let ids = parts.iter().map(|id| PartId { content_id: id.clone() }).collect();
                if let Err(e) = block_on(multipart.complete_multipart(&key, upload_id, ids))? {
                    // Completed before (a replayed commit), or really failed: the object tells.
                    self.check_committed(txn, part, &key, Some(e))?;
                }
                // The part is visible: a marker left behind only costs the next clean-up a lookup.
                if let Err(e) = self.delete_if_exists(&path(marker)?) {
                    tracing::warn!("{e}");
                }
                Ok(())
            }
        }
    }

    /// After a failed or impossible publish: fine if `key` is there with the part's size.
    fn check_committed(
        &self,
        txn: &FilesTxn,
        part: &StagedPart,
        key: &Path,
        failure: Option<object_store::Error>,
    ) -> Result<(), FilesError> {
        let lost = || FilesError::Lost {
            target: self.target.clone(),
            detail: LostPart {
                key: part.key.clone(),
                checkpoint: txn.checkpoint,
                subtask: txn.subtask,
                records: part.records,
            },
        };
        match block_on(self.storage.store().head(key))? {
            Ok(meta) if meta.size == part.bytes => Ok(()),
            Ok(meta) => Err(FilesError::Config(format!(
                "{}: {key} has {} bytes, but checkpoint {} committed {} bytes there",
                self.target, meta.size, txn.checkpoint, part.bytes
            ))),
            Err(object_store::Error::NotFound { .. }) => match failure {
                Some(source) => Err(FilesError::Store {
                    target: self.target.clone(),
                    action: format!(
                        "complete the upload of {key}, which is not in the store either: its {} records of \
                         checkpoint {} (subtask {}) are lost if this persists",
                        part.records, txn.checkpoint, txn.subtask
                    ),
                    source,
                }),
                None => Err(lost()),
            },
            Err(source) => {
                Err(FilesError::Store { target: self.target.clone(), action: format!("look up {key}"), source })
            }
        }
    }

    /// Discards one part that will never be committed.
    fn discard(&self, part: &StagedPart) -> Result<(), FilesError> {
        match &part.staging {
            Staging::Object { key } => self.delete_if_exists(&path(key)?),
            Staging::Multipart { upload_id, marker, .. } => {
                self.abort_upload(&part.key, upload_id)?;
                self.delete_if_exists(&path(marker)?)
            }
        }
    }

    fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), FilesError> {
        let Some(multipart) = self.storage.multipart() else { return Ok(()) };
        let key = path(key)?;
        match block_on(multipart.abort_multipart(&key, &upload_id.to_string()))? {
            // Not found: aborted already, or completed (then the marker outlived a commit).
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(_) if block_on(self.storage.store().head(&key))?.is_ok() => Ok(()),
            Err(source) => Err(FilesError::Store {
                target: self.target.clone(),
                action: format!("abort the upload of {key}"),
                source,
            }),
        }
    }

    /// Aborts the multipart upload a marker records, then deletes the marker.
    fn abort_marked(&self, marker: &Path) -> Result<(), FilesError> {
        let store = self.storage.store();
        let record = match block_on(async { store.get(marker).await?.bytes().await })? {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(source) => {
                return Err(FilesError::Store { target: self.target.clone(), action: format!("read {marker}"), source })
            }
        };
        #[derive(Deserialize)]
        struct Marker {
            key: String,
            upload_id: String,
        }
        // A marker that does not parse was not written by this sink in full: nothing to abort.
        if let Ok(marker) = serde_json::from_slice::<Marker>(&record) {
            self.abort_upload(&marker.key, &marker.upload_id)?;
        }
        self.delete_if_exists(marker)
    }
}

impl Committer<FilesTxn> for FilesCommitter {
    fn commit(&self, txn: &FilesTxn) -> Result<(), BoxError> {
        self.validate(txn)?;
        self.write_manifest(txn)?;
        for part in &txn.parts {
            self.publish(txn, part)?;
        }
        Ok(())
    }

    fn abort(&self, txn: &FilesTxn) -> Result<(), BoxError> {
        self.validate(txn)?;
        for part in &txn.parts {
            self.discard(part)?;
        }
        Ok(())
    }

    fn clean_up(&self, restored: &[FilesTxn]) -> Result<(), BoxError> {
        for txn in restored {
            self.validate(txn)?;
        }
        let keep: HashSet<&str> = restored
            .iter()
            .flat_map(|txn| &txn.parts)
            .map(|part| match &part.staging {
                Staging::Object { key } => key.as_str(),
                Staging::Multipart { marker, .. } => marker.as_str(),
            })
            .collect();
        for staged in self.list(&self.layout.staging_dir())? {
            if !keep.contains(staged.as_ref()) {
                self.delete_if_exists(&staged)?;
            }
        }
        for marker in self.list(&self.layout.uploads_dir())? {
            if !keep.contains(marker.as_ref()) {
                self.abort_marked(&marker)?;
            }
        }
        Ok(())
    }
}
