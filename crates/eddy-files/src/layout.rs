//! Names in the store: part files, and the sink's own objects under `<base>/_eddy/`.
//!
//! ```text
//! <base>/<bucket>/<prefix>-<token>-<subtask>-<seq><ext>    a committed part (visible)
//! <error prefix>/<prefix>-<token>-<subtask>-<seq>.jsonl     a committed error part
//! <base>/_eddy/staging/<token>-<subtask>-<seq>              a staged part (staging stores)
//! <base>/_eddy/uploads/<token>-<subtask>-<seq>.json         an open multipart upload's id
//! <base>/_eddy/commits/<checkpoint>-<subtask>-<token>.json  the manifest of a commit
//! ```
//!
//! Readers such as Hive, Spark, Trino and Athena skip names that start with `_` or `.`, so
//! nothing under `_eddy/` is ever read as data. `token` is unique to one subtask of one run
//! attempt, so names never collide across restarts.

use object_store::path::Path;

use crate::FilesError;

/// The sink's directory of its own bookkeeping objects.
pub(crate) const META_DIR: &str = "_eddy";

/// Paths under one sink's base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    base: String,
}

impl Layout {
    /// The layout under `base` (no leading or trailing `/`; may be empty: the store's root).
    pub(crate) fn new(base: &str) -> Result<Layout, FilesError> {
        let base = base.trim_matches('/');
        let valid = base.is_empty()
            || (Path::parse(base).is_ok() && base.split('/').all(|c| !c.starts_with('.') && !c.starts_with('_')));
        if !valid {
            return Err(FilesError::Config(format!(
                "invalid base path {base:?}: use a/b/c with no empty, `.`, `..` or hidden (_ or .) parts"
            )));
        }
        Ok(Layout { base: base.to_string() })
    }

    /// The base path itself.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `relative` under the base path.
    pub(crate) fn join(&self, relative: &str) -> String {
        join(&self.base, relative)
    }

    pub(crate) fn staging_dir(&self) -> String {
        self.join(&format!("{META_DIR}/staging"))
    }

    pub(crate) fn uploads_dir(&self) -> String {
        self.join(&format!("{META_DIR}/uploads"))
    }

    pub(crate) fn commits_dir(&self) -> String {
        self.join(&format!("{META_DIR}/commits"))
    }

    /// The staging object of part `name`.
    pub(crate) fn staging(&self, name: &str) -> String {
        format!("{}/{name}", self.staging_dir())
    }

    /// The marker of part `name`'s multipart upload.
    pub(crate) fn marker(&self, name: &str) -> String {
        format!("{}/{name}.json", self.uploads_dir())
    }

    /// The manifest of one subtask's commit of one checkpoint.
    pub(crate) fn manifest(&self, checkpoint: u64, subtask: usize, token: &str) -> String {
        format!("{}/{checkpoint:020}-{subtask}-{token}.json", self.commits_dir())
    }

    /// Whether `key` is one of the sink's bookkeeping objects.
    pub(crate) fn is_meta(&self, key: &str) -> bool {
        key.strip_prefix(&self.join(META_DIR)).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// `a` and `b` joined by one `/` (either may be empty).
pub(crate) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// The parsed object path of a key this crate built, or a clear error.
pub(crate) fn path(key: &str) -> Result<Path, FilesError> {
    Path::parse(key).map_err(|e| FilesError::Config(format!("invalid object key {key:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_the_base() {
        let layout = Layout::new("/out/trips/").unwrap();
        assert_eq!(layout.base(), "out/trips");
        assert_eq!(layout.join("year=2026"), "out/trips/year=2026");
        assert_eq!(layout.staging("t-0-1"), "out/trips/_eddy/staging/t-0-1");
        assert_eq!(layout.marker("t-0-1"), "out/trips/_eddy/uploads/t-0-1.json");
        assert_eq!(layout.manifest(7, 1, "t"), "out/trips/_eddy/commits/00000000000000000007-1-t.json");
        assert!(layout.is_meta("out/trips/_eddy/staging/x") && !layout.is_meta("out/trips/_eddyx/y"));
        let root = Layout::new("").unwrap();
        assert_eq!(root.join("a"), "a");
        assert_eq!(root.staging("n"), "_eddy/staging/n");
        for bad in ["a//b", "a/../b", "_x", "a/.y"] {
            assert!(Layout::new(bad).is_err(), "{bad}");
        }
    }
}
