//! The shared checkpoint store: where tasks file their state, so that a task that moves to
//! another process restores it there.
//!
//! Any [`object_store`] works; two are wired to URLs: `file:///shared/dir` (a directory every
//! process sees: one machine, or a network file system) and `s3://bucket/prefix` (S3 or an
//! S3-compatible server at `--s3-endpoint`, credentials from the usual `AWS_*` variables).
//!
//! Layout under the URL:
//!
//! ```text
//! state/sub-topology-<n>/<partition>/<id>.bin   a task's state, checkpoint <id> (see `graph_work`)
//! done/sub-topology-<n>-<partition>             (bounded runs) the task has finished
//! bounded-end-offsets.json                      (bounded runs) the inputs' end offsets, seen once at start
//! incarnations/<task>/<n>                       the newest incarnation of a task claimed (see `incarnation`)
//! leases/<instance>                             a static member's liveness lease (see `liveness`)
//! stand-ins/<instance>/<lease>                  who stands in for a silent member (see `liveness`)
//! ```
//!
//! A checkpoint is written *before* the Kafka transaction that commits the task's offset, and
//! its id is the metadata committed with that offset. So the committed offset always names a
//! complete checkpoint: the transaction is the checkpoint's commit, and a checkpoint whose
//! transaction aborted is never read (the next commit files another under a new id).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::runtime::Runtime;

use crate::error::{ClusterError, Result};

/// A connection to the checkpoint store; each member thread opens its own.
#[derive(Debug)]
pub struct CheckpointStore {
    url: String,
    store: Arc<dyn ObjectStore>,
    runtime: Runtime,
}

impl CheckpointStore {
    /// Opens `url`: `file:///dir` or `s3://bucket[/prefix]` (then `s3_endpoint`, if given,
    /// is the server's `http(s)://host:port`).
    pub fn open(url: &str, s3_endpoint: Option<&str>) -> Result<Self> {
        let bad = |why: &str| {
            ClusterError::Config(format!(
                "--checkpoint-store {url}: {why}; give file:///shared/dir or s3://bucket/prefix"
            ))
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| bad("not an absolute local path"))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(&format!("cannot create {}: {e}", dir.display())))?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(&e.to_string()))?)
            }
            "s3" => {
                let bucket = parsed.host_str().ok_or_else(|| bad("no bucket"))?;
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = s3_endpoint {
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                let s3 = builder.build().map_err(|e| bad(&e.to_string()))?;
                let prefix = parsed.path().trim_matches('/');
                match prefix.is_empty() {
                    true => Arc::new(s3),
                    false => Arc::new(PrefixStore::new(s3, prefix)),
                }
            }
            other => return Err(bad(&format!("unknown scheme `{other}`"))),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Config(format!("cannot start the checkpoint store's I/O runtime: {e}")))?;
        Ok(CheckpointStore { url: url.to_string(), store, runtime })
    }

    fn error(&self, what: String) -> impl FnOnce(object_store::Error) -> ClusterError + '_ {
        move |source| ClusterError::Store { url: self.url.clone(), what, source }
    }

    /// Where checkpoint `id` of task `name`/`partition` lives: `state/<name>/<partition>/<id>.bin`.
    pub fn checkpoint_path(name: &str, partition: i32, id: &str) -> Path {
        Path::from(format!("state/{name}/{partition}/{id}.bin"))
    }

    /// Files checkpoint `id` of task `name`/`partition`.
    pub fn put_checkpoint(&self, name: &str, partition: i32, id: &str, bytes: Vec<u8>) -> Result<()> {
        let path = Self::checkpoint_path(name, partition, id);
        let put = self.store.put(&path, PutPayload::from(bytes));
        self.runtime.block_on(put).map(drop).map_err(self.error(format!("writing {path}")))
    }

    /// Checkpoint `id` of task `name`/`partition`, if filed.
    pub fn get_checkpoint(&self, name: &str, partition: i32, id: &str) -> Result<Option<Vec<u8>>> {
        self.get(&Self::checkpoint_path(name, partition, id))
    }

    /// Deletes checkpoint `id` of task `name`/`partition` (superseded by a newer committed one).
    pub fn delete_checkpoint(&self, name: &str, partition: i32, id: &str) -> Result<()> {
        self.delete(Self::checkpoint_path(name, partition, id))
    }

    fn delete(&self, path: Path) -> Result<()> {
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(format!("deleting {path}"))(e)),
        }
    }

    /// Records that task `name`/`partition` has finished (bounded runs).
    pub fn mark_done(&self, name: &str, partition: i32) -> Result<()> {
        let path = Path::from(format!("done/{name}-{partition}"));
        let put = self.store.put(&path, PutPayload::from_static(b"done"));
        self.runtime.block_on(put).map(drop).map_err(self.error(format!("writing {path}")))
    }

    /// How many tasks have finished.
    pub fn done_count(&self) -> Result<usize> {
        let prefix = Path::from("done");
        let list = self.runtime.block_on(self.store.list_with_delimiter(Some(&prefix)));
        list.map(|l| l.objects.len()).map_err(self.error("listing done/".into()))
    }

    /// The end offsets of a bounded run: the ones already recorded by any process, else
    /// `seen` (recorded now), so every process stops at the same offsets.
    pub fn end_offsets<T: serde::Serialize + serde::de::DeserializeOwned>(&self, seen: T) -> Result<T> {
        let path = Path::from("bounded-end-offsets.json");
        let bytes = serde_json::to_vec(&seen).expect("offsets serialize");
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.runtime.block_on(self.store.put_opts(&path, PutPayload::from(bytes), create)) {
            Ok(_) => return Ok(seen),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            // A store without conditional writes: first come, first served, short of a race.
            Err(object_store::Error::NotImplemented { .. }) if self.get(&path)?.is_none() => {
                let bytes = serde_json::to_vec(&seen).expect("offsets serialize");
                let put = self.store.put(&path, PutPayload::from(bytes));
                self.runtime.block_on(put).map_err(self.error(format!("writing {path}")))?;
                return Ok(seen);
            }
            Err(object_store::Error::NotImplemented { .. }) => {}
            Err(e) => return Err(self.error(format!("writing {path}"))(e)),
        }
        let recorded = self.get(&path)?.unwrap_or_default();
        serde_json::from_slice(&recorded).map_err(|e| ClusterError::Checkpoint(format!("{path} is damaged: {e}")))
    }

    /// The newest incarnation of `task` claimed so far, if any.
    pub fn newest_incarnation(&self, task: &str) -> Result<Option<u64>> {
        let prefix = Path::from(format!("incarnations/{task}"));
        let list = self.runtime.block_on(self.store.list_with_delimiter(Some(&prefix)));
        let list = list.map_err(self.error(format!("listing {prefix}/")))?;
        Ok(list.objects.iter().filter_map(|o| o.location.filename()?.parse::<u64>().ok()).max())
    }

    /// Claims incarnation `n` of `task`: false when another process claimed it first. The
    /// claim before it is deleted (the newest is all a start needs).
    pub fn claim_incarnation(&self, task: &str, n: u64) -> Result<bool> {
        let path = Path::from(format!("incarnations/{task}/{n:020}"));
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.runtime.block_on(self.store.put_opts(&path, PutPayload::from_static(b"claimed"), create)) {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(false),
            // A store without conditional writes: the last claim wins, short of a race (a
            // start that loses it unknowingly is fenced by the next start, as a zombie is).
            Err(object_store::Error::NotImplemented { .. }) => {
                let put = self.store.put(&path, PutPayload::from_static(b"claimed"));
                self.runtime.block_on(put).map_err(self.error(format!("writing {path}")))?;
            }
            Err(e) => return Err(self.error(format!("writing {path}"))(e)),
        }
        if let Some(previous) = n.checked_sub(1) {
            let previous = Path::from(format!("incarnations/{task}/{previous:020}"));
            match self.runtime.block_on(self.store.delete(&previous)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(format!("deleting {previous}"))(e)),
            }
        }
        Ok(true)
    }

    /// Writes the liveness lease of the static member `instance`.
    pub fn put_lease(&self, instance: &str, lease: &str) -> Result<()> {
        let path = Path::from(format!("leases/{instance}"));
        let put = self.store.put(&path, PutPayload::from(lease.as_bytes().to_vec()));
        self.runtime.block_on(put).map(drop).map_err(self.error(format!("writing {path}")))
    }

    /// Every lease: the instance and what its lease holds.
    pub fn leases(&self) -> Result<Vec<(String, String)>> {
        let prefix = Path::from("leases");
        let list = self.runtime.block_on(self.store.list_with_delimiter(Some(&prefix)));
        let list = list.map_err(self.error("listing leases/".into()))?;
        let mut leases = Vec::new();
        for object in list.objects {
            let Some(instance) = object.location.filename().map(str::to_string) else { continue };
            // Gone since the listing: its member's stand-in or cleanup removed it.
            if let Some(lease) = self.get(&object.location)? {
                leases.push((instance, String::from_utf8_lossy(&lease).into_owned()));
            }
        }
        leases.sort();
        Ok(leases)
    }

    /// Deletes the lease of `instance` (its member is no longer in the group).
    pub fn delete_lease(&self, instance: &str) -> Result<()> {
        self.delete(Path::from(format!("leases/{instance}")))
    }

    /// Claims standing in for `instance`, whose lease stopped at `lease`: false when another
    /// member claimed it first.
    pub fn claim_stand_in(&self, instance: &str, lease: &str) -> Result<bool> {
        let path = Path::from(format!("stand-ins/{instance}/{lease}"));
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.runtime.block_on(self.store.put_opts(&path, PutPayload::from_static(b"claimed"), create)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            // A store without conditional writes: two members may both stand in; the broker
            // keeps one of them (a static member id joined twice fences the earlier).
            Err(object_store::Error::NotImplemented { .. }) => Ok(true),
            Err(e) => Err(self.error(format!("writing {path}"))(e)),
        }
    }

    fn get(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let read = async {
            match self.store.get(path).await {
                Ok(result) => result.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.runtime.block_on(read).map_err(self.error(format!("reading {path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_the_first_end_offsets_win() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("store").display());
        let store = CheckpointStore::open(&url, None).unwrap();
        assert_eq!(store.get_checkpoint("w", 3, "c7").unwrap(), None);
        store.put_checkpoint("w", 3, "c7", vec![1, 2]).unwrap();
        assert_eq!(store.get_checkpoint("w", 3, "c7").unwrap(), Some(vec![1, 2]));
        assert_eq!(store.get_checkpoint("v", 3, "c7").unwrap(), None, "each task has its own");
        assert_eq!(store.get_checkpoint("w", 4, "c7").unwrap(), None, "each partition has its own");
        store.delete_checkpoint("w", 3, "c7").unwrap();
        store.delete_checkpoint("w", 3, "c7").unwrap();
        assert_eq!(store.get_checkpoint("w", 3, "c7").unwrap(), None);
        assert_eq!(store.end_offsets(vec![5, 6]).unwrap(), vec![5, 6]);
        let other = CheckpointStore::open(&url, None).unwrap();
        assert_eq!(other.end_offsets(vec![9, 9]).unwrap(), vec![5, 6]);
        assert_eq!(store.done_count().unwrap(), 0);
        store.mark_done("w", 0).unwrap();
        store.mark_done("v", 0).unwrap();
        assert_eq!(other.done_count().unwrap(), 2);
    }

    #[test]
    fn each_incarnation_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("store").display());
        let (one, two) = (CheckpointStore::open(&url, None).unwrap(), CheckpointStore::open(&url, None).unwrap());
        assert_eq!(one.newest_incarnation("app-sub-topology-0-3").unwrap(), None);
        assert!(one.claim_incarnation("app-sub-topology-0-3", 0).unwrap());
        assert!(!two.claim_incarnation("app-sub-topology-0-3", 0).unwrap(), "claimed twice");
        assert!(two.claim_incarnation("app-sub-topology-0-3", 1).unwrap());
        assert_eq!(one.newest_incarnation("app-sub-topology-0-3").unwrap(), Some(1));
        assert_eq!(one.newest_incarnation("app-sub-topology-0-30").unwrap(), None, "tasks are apart");
    }

    #[test]
    fn leases_are_listed_and_each_stand_in_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&format!("file://{}", dir.path().display()), None).unwrap();
        assert!(store.leases().unwrap().is_empty());
        store.put_lease("wc-0-0", "a-1").unwrap();
        store.put_lease("wc-1-0", "b-7").unwrap();
        store.put_lease("wc-0-0", "a-2").unwrap();
        let leases = store.leases().unwrap();
        assert_eq!(leases, [("wc-0-0".to_string(), "a-2".to_string()), ("wc-1-0".to_string(), "b-7".to_string())]);
        assert!(store.claim_stand_in("wc-0-0", "a-2").unwrap());
        assert!(!store.claim_stand_in("wc-0-0", "a-2").unwrap());
        assert!(store.claim_stand_in("wc-0-0", "a-3").unwrap());
        store.delete_lease("wc-0-0").unwrap();
        store.delete_lease("wc-0-0").unwrap();
        assert_eq!(store.leases().unwrap(), [("wc-1-0".to_string(), "b-7".to_string())]);
    }

    #[test]
    fn unknown_urls_say_what_to_give() {
        let e = CheckpointStore::open("ftp://x/y", None).unwrap_err().to_string();
        assert!(e.contains("file:///shared/dir or s3://bucket/prefix"), "{e}");
    }
}
