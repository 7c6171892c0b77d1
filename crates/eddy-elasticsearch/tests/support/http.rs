//! A few blocking HTTP/1.1 calls over std's `TcpStream`: enough to set up indices and read
//! documents back, without using the client under test.

#![allow(dead_code)] // Each including test uses a different part.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// Sends one request to `base` (`http://127.0.0.1:PORT`) and returns status and body.
pub fn call(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let address = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).expect("connects to the server");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("an answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(rest) } else { rest.to_string() })
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
    out
}

/// Creates `index` with `mappings`.
pub fn create_index(base: &str, index: &str, mappings: Value) {
    let (status, body) = call(base, "PUT", &format!("/{index}"), Some(&serde_json::json!({ "mappings": mappings })));
    assert_eq!(status, 200, "PUT /{index}: {body}");
}

/// Every document of `index` as (id, source), sorted by id.
pub fn documents(base: &str, index: &str) -> Vec<(String, Value)> {
    let query = serde_json::json!({"size": 10_000, "query": {"match_all": {}}});
    let (status, body) = call(base, "POST", &format!("/{index}/_search"), Some(&query));
    assert_eq!(status, 200, "search {index}: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let total = answer["hits"]["total"]["value"].as_u64().unwrap();
    let hits = answer["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len() as u64, total, "a search that returns fewer hits than the index holds");
    let mut docs: Vec<(String, Value)> =
        hits.iter().map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone())).collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

/// The number of documents in `index`.
pub fn count(base: &str, index: &str) -> u64 {
    let (status, body) = call(base, "GET", &format!("/{index}/_count"), None);
    assert_eq!(status, 200, "count {index}: {body}");
    serde_json::from_str::<Value>(&body).unwrap()["count"].as_u64().unwrap()
}
