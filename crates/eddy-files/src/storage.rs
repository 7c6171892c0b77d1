//! Where part files go: an `object_store` store, and how a part stays invisible until its
//! checkpoint completes there.
//!
//! Two ways, picked by what the store can do:
//!
//! - **Multipart uploads** (S3 and other stores with `MultipartStore`): a part is uploaded
//!   straight to its final key as a multipart upload, which S3 keeps invisible, even to
//!   listings, until it is completed. Committing completes it, which takes no time whatever
//!   the part's size (Flink's S3 writer does the same).
//! - **Hidden staging objects** (the local file system and any other store): a part is
//!   written to a staging object under `<base>/_eddy/staging/` and committed by renaming it to
//!   its final key, atomic on a file system.

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::io_runtime::block_on;
use crate::layout::path;
use crate::{FilesError, S3Config};

/// A store that file sinks write to. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    url: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("url", &self.url).field("multipart", &self.multipart.is_some()).finish()
    }
}

impl Storage {
    /// A directory on the local file system (created if missing). Files and renames are
    /// fsynced, so committed parts survive a power loss, not only a crash.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Storage, FilesError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| FilesError::Config(format!("cannot create the output directory {}: {e}", dir.display())))?;
        let root = dir
            .canonicalize()
            .map_err(|e| FilesError::Config(format!("cannot resolve the output directory {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| FilesError::Config(format!("cannot open {} as a store: {e}", root.display())))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Storage { store: Arc::new(store), multipart: None, url: format!("file://{}", root.display()) })
    }

    /// An S3 bucket, or a bucket of an S3-compatible server. Builds the client only; the first
    /// request (when the job starts) tells whether the bucket is reachable.
    pub fn s3(config: &S3Config) -> Result<Storage, FilesError> {
        let store = Arc::new(config.build()?);
        Ok(Storage { store: store.clone(), multipart: Some(store), url: config.describe() })
    }

    /// A store in this process's memory (tests and examples; gone when the process ends).
    pub fn in_memory() -> Storage {
        let store = Arc::new(InMemory::new());
        Storage { store: store.clone(), multipart: Some(store), url: "memory:///".into() }
    }

    /// Any other store, committing parts by renaming hidden staging objects. `url` names it
    /// in errors.
    pub fn from_store(store: Arc<dyn ObjectStore>, url: &str) -> Storage {
        Storage { store, multipart: None, url: url.to_string() }
    }

    /// Any other store with multipart uploads, committing parts by completing them.
    pub fn from_multipart_store<S: ObjectStore + MultipartStore>(store: Arc<S>, url: &str) -> Storage {
        Storage { store: store.clone(), multipart: Some(store), url: url.to_string() }
    }

    /// The storage and base path a URL names: `s3://BUCKET/PREFIX` (the bucket replaces the
    /// one in `s3`, whose other settings apply) or `file:///DIR` (base path empty).
    pub fn from_url(url: &str, s3: S3Config) -> Result<(Storage, String), FilesError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let storage = Storage::s3(&s3.with_bucket(bucket))?;
            return Ok((storage, prefix.trim_matches('/').to_string()));
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(FilesError::Config(format!(
                    "{url:?} is not an absolute file URL: write file:///absolute/path (three slashes)"
                )));
            }
            return Ok((Storage::local(path)?, String::new()));
        }
        Err(FilesError::Config(format!("unsupported URL {url:?}: use s3://BUCKET/PREFIX or file:///DIRECTORY")))
    }

    /// How errors and logs name this store, e.g. `s3://bucket` or `file:///data/out`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The keys under `prefix` that a reader of the output sees, sorted: none of their path
    /// components starts with `_` or `.` (the sink's bookkeeping and staging objects do), as
    /// Hive, Spark, Trino and Athena skip them. For tools and tests that check output.
    pub fn list_visible(&self, prefix: &str) -> Result<Vec<String>, FilesError> {
        let store = self.store.clone();
        let location = (!prefix.is_empty()).then(|| path(prefix.trim_matches('/'))).transpose()?;
        let listed = block_on(async move { store.list(location.as_ref()).try_collect::<Vec<_>>().await })?
            .map_err(|source| self.error(format!("list {prefix}"), source))?;
        let mut keys: Vec<String> = listed
            .into_iter()
            .map(|meta| meta.location.to_string())
            .filter(|key| !key.split('/').any(|c| c.starts_with(['_', '.'])))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The bytes of the object `key`.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, FilesError> {
        let store = self.store.clone();
        let location = path(key)?;
        let bytes = block_on(async move { store.get(&location).await?.bytes().await })?
            .map_err(|source| self.error(format!("read {key}"), source))?;
        Ok(bytes.to_vec())
    }

    fn error(&self, action: String, source: object_store::Error) -> FilesError {
        FilesError::Store { target: self.url.clone(), action, source }
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The multipart interface, when parts are committed by completing multipart uploads.
    pub(crate) fn multipart(&self) -> Option<&Arc<dyn MultipartStore>> {
        self.multipart.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_storage_and_base() {
        let (s3, base) = Storage::from_url("s3://bucket/a/b/", S3Config::new("ignored")).unwrap();
        assert_eq!((s3.url(), base.as_str()), ("s3://bucket", "a/b"));
        assert!(s3.multipart().is_some());
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("out").display());
        let (local, base) = Storage::from_url(&url, S3Config::new("ignored")).unwrap();
        assert!(local.url().ends_with("/out") && base.is_empty(), "{local:?}");
        assert!(local.multipart().is_none());
        assert!(local.list_visible("").unwrap().is_empty());
        for bad in ["file://relative/dir", "http://host/x", "s3:///prefix", "/plain/path"] {
            let err = Storage::from_url(bad, S3Config::new("x")).unwrap_err().to_string();
            assert!(err.contains("s3://") || err.contains("file:///"), "{bad}: {err}");
        }
    }
}
