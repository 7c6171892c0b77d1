//! Reading a `_bulk` response: one result per action, in the order sent, each done, worth
//! retrying, or refused for good.
//!
//! ```text
//! {"errors":true,"items":[{"index":{"_id":"a","status":201}},
//!                         {"index":{"_id":"b","status":400,"error":{"type":"document_parsing_exception","reason":"…"}}}]}
//! ```

use serde::Deserialize;

use crate::Operation;

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied (a delete of a missing document included: the document is gone either way).
    Done,
    /// A `create` whose id exists: a replay of an action that landed before.
    Duplicate,
    /// Refused for now (429: queue full; 5xx: shard unavailable): send it again later.
    Retry { status: u16, reason: String },
    /// Refused for good (mapping error, bad request): a dead letter.
    Failed { status: u16, error_type: String, reason: String },
}

#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<std::collections::HashMap<String, ItemResult>>,
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    error_type: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    /// The reason with its causes: `outer: inner`.
    fn explain(&self) -> String {
        let mut text = self.reason.clone().unwrap_or_else(|| self.error_type.clone());
        if let Some(cause) = &self.caused_by {
            text.push_str(": ");
            text.push_str(&cause.explain());
        }
        text
    }
}

/// The outcome of each action sent as `operations`, or why the body is not a bulk response
/// for them (garbage from a proxy, a truncated body, a different number of items).
pub(crate) fn outcomes(body: &[u8], operations: &[Operation]) -> Result<Vec<Outcome>, String> {
    let response: BulkResponse =
        serde_json::from_slice(body).map_err(|e| format!("not a bulk response ({e}): {}", preview(body)))?;
    if response.items.len() != operations.len() {
        return Err(format!(
            "the bulk response has {} items for {} actions: {}",
            response.items.len(),
            operations.len(),
            preview(body)
        ));
    }
    response.items.into_iter().zip(operations).map(|(item, &operation)| outcome(item, operation)).collect()
}

fn outcome(item: std::collections::HashMap<String, ItemResult>, operation: Operation) -> Result<Outcome, String> {
    let Some(result) = item.into_iter().find_map(|(name, result)| (name == operation.name()).then_some(result)) else {
        return Err(format!("a bulk response item has no `{}` result", operation.name()));
    };
    let status = result.status;
    Ok(match result.error {
        None if status < 300 || (status == 404 && operation == Operation::Delete) => Outcome::Done,
        None => Outcome::Failed { status, error_type: "http_status".into(), reason: format!("HTTP status {status}") },
        Some(error) if status == 429 || status >= 500 => Outcome::Retry { status, reason: error.explain() },
        Some(_) if status == 409 && operation == Operation::Create => Outcome::Duplicate,
        Some(error) => Outcome::Failed { status, reason: error.explain(), error_type: error.error_type },
    })
}

/// The start of a response body, for messages.
pub(crate) fn preview(body: &[u8]) -> String {
    const LIMIT: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(LIMIT)]).into_owned();
    if body.len() > LIMIT {
        format!("{text}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    #[test]
    fn each_item_is_classified_by_status_and_operation() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"index":{"_index":"t","_id":"a","status":201,"result":"created"}},
            {"index":{"_index":"t","_id":"b","status":400,"error":{"type":"document_parsing_exception","reason":"bad n","caused_by":{"type":"illegal_argument_exception","reason":"For input string"}}}},
            {"create":{"_index":"t","_id":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"update":{"_index":"t","_id":"z","status":404,"error":{"type":"document_missing_exception","reason":"[z]: document missing"}}},
            {"delete":{"_index":"t","_id":"q","status":404,"result":"not_found"}},
            {"index":{"_index":"t","_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"index":{"_index":"t","_id":"d","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary not active"}}}
        ]}"#;
        let got = outcomes(body, &[Index, Index, Create, Update, Delete, Index, Index]).unwrap();
        assert_eq!(
            got,
            vec![
                Outcome::Done,
                Outcome::Failed {
                    status: 400,
                    error_type: "document_parsing_exception".into(),
                    reason: "bad n: For input string".into()
                },
                Outcome::Duplicate,
                Outcome::Failed {
                    status: 404,
                    error_type: "document_missing_exception".into(),
                    reason: "[z]: document missing".into()
                },
                Outcome::Done,
                Outcome::Retry { status: 429, reason: "queue full".into() },
                Outcome::Retry { status: 503, reason: "primary not active".into() },
            ]
        );
    }

    #[test]
    fn garbage_and_mismatched_responses_are_errors_that_quote_the_body() {
        let html = b"<html><body>502 Bad Gateway</body></html>";
        assert!(outcomes(html, &[Index]).unwrap_err().contains("<html><body>502"));
        let short = br#"{"errors":false,"items":[{"index":{"status":201}}]}"#;
        assert!(outcomes(short, &[Index, Index]).unwrap_err().contains("1 items for 2 actions"));
        let wrong = br#"{"errors":false,"items":[{"delete":{"status":200}}]}"#;
        assert!(outcomes(wrong, &[Index]).unwrap_err().contains("no `index` result"));
        assert!(outcomes(b"", &[Index]).is_err());
        let long = vec![b'x'; 1000];
        assert_eq!(preview(&long).chars().count(), 201);
    }
}
