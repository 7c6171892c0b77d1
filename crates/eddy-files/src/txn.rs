//! What a checkpoint stores for a file sink: the parts one subtask pre-committed, each with
//! what it takes to make it visible (complete its multipart upload, or rename its staging
//! object) from any process.

use serde::{Deserialize, Serialize};

/// The parts one subtask closed for one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesTxn {
    /// The checkpoint that pre-committed them.
    pub checkpoint: u64,
    /// The subtask that wrote them.
    pub subtask: usize,
    /// The writing subtask's unique token (part names carry it).
    pub token: String,
    /// The parts, data and error parts alike.
    pub parts: Vec<StagedPart>,
}

/// A closed part: durable, not yet visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedPart {
    /// The key it becomes visible under.
    pub key: String,
    /// Where its bytes wait.
    pub staging: Staging,
    /// Records in it.
    pub records: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Where a closed part's bytes wait for the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Staging {
    /// An open multipart upload on the part's key.
    Multipart {
        /// The upload's id.
        upload_id: String,
        /// The ids of its parts, in order.
        parts: Vec<String>,
        /// The marker object that records the upload until it is completed or aborted.
        marker: String,
    },
    /// A hidden staging object, renamed to the part's key on commit.
    Object {
        /// The staging object's key.
        key: String,
    },
}

impl FilesTxn {
    /// Records across its parts.
    pub fn records(&self) -> u64 {
        self.parts.iter().map(|p| p.records).sum()
    }
}
