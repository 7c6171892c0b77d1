//! What the file sink's integration tests share: S3 servers with a bucket, and a reader's
//! view of a store (every visible object, skipping names that start with `_` or `.`).

#![allow(dead_code)] // Each test file uses a different part.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use eddy_files::{S3Config, Storage};
use eddy_test_services::{Service, ACCESS_KEY, REGION, SECRET_KEY};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};

/// An S3 server with an empty bucket.
pub struct S3 {
    pub name: &'static str,
    pub service: Service,
    pub bucket: String,
}

impl S3 {
    /// moto, with `bucket` created by a plain HTTP PUT (moto does not check signatures).
    pub fn moto(bucket: &str) -> Option<S3> {
        let service = Service::moto()?;
        let answer = http(&service, "PUT", &format!("/{bucket}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "cannot create bucket {bucket}: {answer}");
        Some(S3 { name: "moto", service, bucket: bucket.to_string() })
    }

    /// s3s-fs, whose buckets are the directories of its data directory (it wants signed
    /// requests, which a plain PUT is not).
    pub fn s3s_fs(bucket: &str) -> Option<S3> {
        let service = Service::s3s_fs()?;
        std::fs::create_dir_all(service.dir().join("data").join(bucket)).unwrap();
        Some(S3 { name: "s3s-fs", service, bucket: bucket.to_string() })
    }

    /// Every server that is installed, each with `bucket`.
    pub fn all(bucket: &str) -> Vec<S3> {
        [S3::moto(bucket), S3::s3s_fs(bucket)].into_iter().flatten().collect()
    }

    /// The sink's settings for this server.
    pub fn config(&self) -> S3Config {
        S3Config::new(&self.bucket)
            .endpoint(&self.service.url())
            .allow_http(true)
            .credentials(ACCESS_KEY, SECRET_KEY)
            .region(REGION)
            .retries(2, Duration::from_secs(10))
    }

    pub fn storage(&self) -> Storage {
        Storage::s3(&self.config()).unwrap()
    }

    /// A client of its own, as a reader of the bucket would have.
    pub fn reader(&self) -> Arc<dyn ObjectStore> {
        let store = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_endpoint(self.service.url())
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_region(REGION)
            .build()
            .unwrap();
        Arc::new(store)
    }

    /// Multipart uploads the server still holds open (moto answers unsigned requests).
    pub fn open_uploads(&self) -> Option<usize> {
        if self.name != "moto" {
            return None;
        }
        let answer = http(&self.service, "GET", &format!("/{}?uploads", self.bucket));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        Some(answer.matches("<Upload>").count())
    }
}

/// A plain HTTP/1.1 request with no body; the whole answer.
pub fn http(service: &Service, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", service.port())).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        service.port()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A reader of a local output directory.
pub fn local_reader(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
}

/// Every object in the store, by key, with its bytes.
pub fn objects(store: &Arc<dyn ObjectStore>) -> BTreeMap<String, Vec<u8>> {
    objects_where(store, |_| true)
}

/// The objects whose keys pass `keep`; one deleted between the listing and the read (a
/// running job's bookkeeping) is left out.
pub fn objects_where(
    store: &Arc<dyn ObjectStore>,
    keep: impl Fn(&str) -> bool + Send + Sync,
) -> BTreeMap<String, Vec<u8>> {
    let store = store.clone();
    eddy_files::io_runtime::block_on(async move {
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        let mut objects = BTreeMap::new();
        for meta in listed.into_iter().filter(|meta| keep(meta.location.as_ref())) {
            match store.get(&meta.location).await {
                Ok(got) => drop(objects.insert(meta.location.to_string(), got.bytes().await.unwrap().to_vec())),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => panic!("cannot read {}: {e}", meta.location),
            }
        }
        objects
    })
    .unwrap()
}

/// Keys of every object in the store (a listing, no reads).
pub fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let store = store.clone();
    eddy_files::io_runtime::block_on(async move {
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        listed.into_iter().map(|meta| meta.location.to_string()).collect()
    })
    .unwrap()
}

/// Whether a reader would read `key`: none of its path components starts with `_` or `.`.
pub fn is_visible(key: &str) -> bool {
    !key.split('/').any(|c| c.starts_with(['_', '.']))
}

/// What a Hive-style reader sees: every visible object.
pub fn visible(store: &Arc<dyn ObjectStore>) -> BTreeMap<String, Vec<u8>> {
    objects_where(store, is_visible)
}

/// The lines of every visible object under `prefix`.
pub fn visible_lines(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    visible(store)
        .into_iter()
        .filter(|(key, _)| key.starts_with(prefix))
        .flat_map(|(_, bytes)| String::from_utf8(bytes).unwrap().lines().map(String::from).collect::<Vec<_>>())
        .collect()
}

/// Keys under the sink's bookkeeping directory `<base>/_eddy/<dir>/`.
pub fn bookkeeping(store: &Arc<dyn ObjectStore>, base: &str, dir: &str) -> Vec<String> {
    let prefix = format!("{base}/_eddy/{dir}/");
    keys(store).into_iter().filter(|k| k.starts_with(&prefix)).collect()
}

/// Asserts that `ids` holds each of `0..count` exactly once, reporting a short summary (how
/// many are missing or repeated, and the first few) rather than two long lists.
pub fn assert_each_once(mut ids: Vec<u64>, count: u64, what: &str) {
    ids.sort_unstable();
    let mut repeated = Vec::new();
    let mut seen = vec![false; count as usize];
    let mut foreign = Vec::new();
    for id in ids {
        match seen.get_mut(id as usize) {
            Some(true) => repeated.push(id),
            Some(slot) => *slot = true,
            None => foreign.push(id),
        }
    }
    let missing: Vec<u64> = (0..count).filter(|&i| !seen[i as usize]).collect();
    let head = |v: &[u64]| v.iter().take(5).map(u64::to_string).collect::<Vec<_>>().join(", ");
    assert!(
        missing.is_empty() && repeated.is_empty() && foreign.is_empty(),
        "{what}: {} of {count} missing (first: {}), {} twice (first: {}), {} unknown (first: {})",
        missing.len(),
        head(&missing),
        repeated.len(),
        head(&repeated),
        foreign.len(),
        head(&foreign)
    );
}
