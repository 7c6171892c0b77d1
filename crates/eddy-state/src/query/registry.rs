//! The queryable operators of a running job, by uid: where each subtask takes its reads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender};
use eddy_core::key::subtask_for_key_group;

use super::error::QueryError;
use super::request::StateRequest;

/// What a subtask reads its queries from (see [`KeyedStateStore::with_queries`]).
///
/// [`KeyedStateStore::with_queries`]: crate::KeyedStateStore::with_queries
pub type QueryInbox = Receiver<StateRequest>;

/// One queryable operator: its key-group layout and each subtask's inbox.
struct Operator {
    parallelism: usize,
    max_parallelism: usize,
    inboxes: Vec<Option<Sender<StateRequest>>>,
}

/// Every queryable operator of a job, filled by its subtasks as they are built (again on each
/// restart) and read by [`QueryableState`](super::QueryableState). Cheap to clone.
#[derive(Clone, Default)]
pub struct QueryRegistry(Arc<Mutex<BTreeMap<String, Operator>>>);

impl QueryRegistry {
    fn operators(&self) -> MutexGuard<'_, BTreeMap<String, Operator>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers subtask `subtask` of `parallelism` of the keyed operator `uid` (replacing
    /// what an earlier attempt registered) and returns the inbox it answers from.
    pub fn register(&self, uid: &str, subtask: usize, parallelism: usize, max_parallelism: usize) -> QueryInbox {
        let (sender, inbox) = crossbeam_channel::unbounded();
        let mut operators = self.operators();
        let operator = operators.entry(uid.to_string()).or_insert_with(|| Operator {
            parallelism,
            max_parallelism,
            inboxes: Vec::new(),
        });
        if operator.parallelism != parallelism || operator.max_parallelism != max_parallelism {
            *operator = Operator { parallelism, max_parallelism, inboxes: Vec::new() };
        }
        operator.inboxes.resize(parallelism, None);
        operator.inboxes[subtask] = Some(sender);
        inbox
    }

    /// The uids that can be queried.
    pub fn uids(&self) -> Vec<String> {
        self.operators().keys().cloned().collect()
    }

    /// Whether `uid` can be queried.
    pub(crate) fn check(&self, uid: &str) -> Result<(), QueryError> {
        let operators = self.operators();
        match operators.contains_key(uid) {
            true => Ok(()),
            false => Err(QueryError::UnknownOperator {
                uid: uid.to_string(),
                known: operators.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// The number of key groups of `uid`.
    pub(crate) fn max_parallelism(&self, uid: &str) -> Result<usize, QueryError> {
        self.check(uid)?;
        Ok(self.operators()[uid].max_parallelism)
    }

    /// The inbox of the subtask of `uid` that owns `key_group`.
    pub(crate) fn owner(&self, uid: &str, key_group: usize) -> Result<Sender<StateRequest>, QueryError> {
        self.check(uid)?;
        let operators = self.operators();
        let operator = &operators[uid];
        let subtask = subtask_for_key_group(key_group, operator.max_parallelism, operator.parallelism);
        operator.inboxes.get(subtask).cloned().flatten().ok_or_else(|| unavailable(uid))
    }

    /// Every subtask's inbox of `uid`, in subtask order.
    pub(crate) fn subtasks(&self, uid: &str) -> Result<Vec<Sender<StateRequest>>, QueryError> {
        self.check(uid)?;
        let operators = self.operators();
        operators[uid].inboxes.iter().map(|inbox| inbox.clone().ok_or_else(|| unavailable(uid))).collect()
    }
}

/// The error of a read no subtask can answer now.
pub(crate) fn unavailable(uid: &str) -> QueryError {
    QueryError::Unavailable {
        uid: uid.to_string(),
        reason: "the job is restarting or has ended; retry once it runs".into(),
    }
}
