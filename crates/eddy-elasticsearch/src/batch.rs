//! A bulk request being filled: the NDJSON body Elasticsearch's `_bulk` endpoint takes (an
//! action line, then the body line for all but deletes) and, per action, what the sink needs
//! to retry it alone or to report it as a dead letter.

use std::ops::Range;

use eddy_core::Timestamp;
use serde::Serialize;

use crate::{Action, FailedDocument, Operation};

/// Actions waiting to be sent together.
#[derive(Debug, Default)]
pub(crate) struct BulkBatch {
    body: Vec<u8>,
    items: Vec<Item>,
}

/// One action of a batch.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) operation: Operation,
    index: String,
    id: Option<String>,
    /// The record's event time, kept for its dead letter.
    pub(crate) timestamp: Timestamp,
    /// Its lines in the body.
    lines: Range<usize>,
    /// Its body line in the body (empty for deletes).
    source: Range<usize>,
}

/// The action line: `{"index":{"_index":"…","_id":"…"}}`.
#[derive(Serialize)]
struct Meta<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

impl BulkBatch {
    /// Appends an action.
    pub(crate) fn push(&mut self, action: Action, timestamp: Timestamp) {
        let (operation, index, id, source) = action.into_parts();
        let start = self.body.len();
        self.body.extend_from_slice(b"{\"");
        self.body.extend_from_slice(operation.name().as_bytes());
        self.body.extend_from_slice(b"\":");
        // Writing JSON of two strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.body, &Meta { index: &index, id: id.as_deref() });
        self.body.extend_from_slice(b"}\n");
        let source_start = self.body.len();
        if let Some(source) = source {
            self.body.extend_from_slice(&source);
            self.body.push(b'\n');
        }
        let end = self.body.len();
        let source = source_start..end.saturating_sub(1).max(source_start);
        self.items.push(Item { operation, index, id, timestamp, lines: start..end, source });
    }

    /// Actions in the batch.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds no action.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Size of the body in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.body.len()
    }

    /// The request body.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// The action at `i`.
    pub(crate) fn item(&self, i: usize) -> &Item {
        &self.items[i]
    }

    /// A batch of the actions at `positions` only (those to retry).
    pub(crate) fn subset(&self, positions: &[usize]) -> BulkBatch {
        let mut subset = BulkBatch::default();
        for &i in positions {
            let item = &self.items[i];
            let offset = subset.body.len() as isize - item.lines.start as isize;
            let shift = |r: &Range<usize>| (r.start as isize + offset) as usize..(r.end as isize + offset) as usize;
            subset.body.extend_from_slice(&self.body[item.lines.clone()]);
            subset.items.push(Item {
                operation: item.operation,
                index: item.index.clone(),
                id: item.id.clone(),
                timestamp: item.timestamp,
                lines: shift(&item.lines),
                source: shift(&item.source),
            });
        }
        subset
    }

    /// The dead letter of the action at `i`.
    pub(crate) fn failed(&self, i: usize, status: u16, error_type: String, reason: String) -> FailedDocument {
        let item = &self.items[i];
        let source = &self.body[item.source.clone()];
        FailedDocument {
            action: Some(item.operation),
            index: item.index.clone(),
            id: item.id.clone(),
            document: (!source.is_empty()).then(|| String::from_utf8_lossy(source).into_owned()),
            status: Some(status),
            error_type,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn lines(batch: &BulkBatch) -> Vec<Value> {
        std::str::from_utf8(batch.body()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn sample() -> BulkBatch {
        let mut batch = BulkBatch::default();
        batch.push(Action::index("a", &json!({"n": 1})).unwrap().id("x\"1"), 10);
        batch.push(Action::delete("b", "y"), 20);
        batch.push(Action::update("c", "z", &json!({"s": "t"})).unwrap(), 30);
        batch.push(Action::create("d", &json!({"n": 4})).unwrap(), 40);
        batch
    }

    #[test]
    fn the_body_is_ndjson_with_a_body_line_for_all_but_deletes() {
        let batch = sample();
        assert_eq!(batch.len(), 4);
        assert!(batch.body().ends_with(b"\n"));
        assert_eq!(
            lines(&batch),
            vec![
                json!({"index": {"_index": "a", "_id": "x\"1"}}),
                json!({"n": 1}),
                json!({"delete": {"_index": "b", "_id": "y"}}),
                json!({"update": {"_index": "c", "_id": "z"}}),
                json!({"doc": {"s": "t"}, "doc_as_upsert": true}),
                json!({"create": {"_index": "d"}}),
                json!({"n": 4}),
            ]
        );
    }

    #[test]
    fn a_subset_holds_exactly_the_chosen_actions() {
        let batch = sample();
        let subset = batch.subset(&[3, 1]);
        assert_eq!(
            lines(&subset),
            vec![json!({"create": {"_index": "d"}}), json!({"n": 4}), json!({"delete": {"_index": "b", "_id": "y"}})]
        );
        assert_eq!((subset.item(0).timestamp, subset.item(1).timestamp), (40, 20));
        let failed = subset.failed(0, 400, "t".into(), "r".into());
        assert_eq!(failed.document.as_deref(), Some(r#"{"n":4}"#));
        assert_eq!(subset.failed(1, 400, "t".into(), "r".into()).document, None);
    }

    #[test]
    fn dead_letters_carry_the_document_as_sent() {
        let batch = sample();
        let failed = batch.failed(2, 400, "mapper_parsing_exception".into(), "bad".into());
        assert_eq!(failed.action, Some(Operation::Update));
        assert_eq!((failed.index.as_str(), failed.id.as_deref()), ("c", Some("z")));
        assert_eq!(failed.document.as_deref(), Some(r#"{"doc":{"s":"t"},"doc_as_upsert":true}"#));
        assert_eq!(failed.status, Some(400));
    }
}
