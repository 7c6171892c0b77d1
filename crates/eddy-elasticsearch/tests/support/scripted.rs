//! A tiny HTTP server on 127.0.0.1 that answers `_bulk` requests as a test scripts it: 429,
//! 500, per-item refusals, garbage, a dropped connection, or slowly. It keeps every request
//! and the documents it accepted, so a test can check what the sink sent and that nothing
//! was lost.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// How the server answers one request.
#[derive(Clone)]
pub enum Reply {
    /// Applies every action and answers 200 with a result per item.
    Accept,
    /// Answers with this status and body, applying nothing.
    Status(u16, &'static str),
    /// Answers 200 with the item statuses `f(action line)` gives (2xx: applied).
    Items(fn(&Value) -> u16),
    /// Closes the connection without an answer.
    Hangup,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Request {
    /// The action lines of a bulk body, parsed.
    pub fn actions(&self) -> Vec<Value> {
        bulk_actions(&self.body).into_iter().map(|(action, _)| action).collect()
    }
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    /// The answer once the script is used up.
    otherwise: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Request>>,
    /// Applied documents by (index, id).
    documents: Mutex<BTreeMap<(String, String), Value>>,
    delay: Mutex<Duration>,
    open: AtomicUsize,
    most_open: AtomicUsize,
    stopped: AtomicBool,
}

/// The server; it stops accepting connections when dropped.
pub struct ScriptedServer {
    url: String,
    state: Arc<State>,
}

impl ScriptedServer {
    /// Starts on a free port; answers `Accept` until told otherwise.
    pub fn start() -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        ScriptedServer { url, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next requests with `replies`, in order.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.state.script.lock().unwrap().extend(replies);
        self
    }

    /// Answers with `reply` once the script is used up (instead of `Accept`).
    pub fn otherwise(&self, reply: Reply) -> &Self {
        *self.state.otherwise.lock().unwrap() = Some(reply);
        self
    }

    /// Waits this long before each answer: a slow cluster.
    pub fn delay(&self, delay: Duration) -> &Self {
        *self.state.delay.lock().unwrap() = delay;
        self
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Documents applied, by (index, id).
    pub fn documents(&self) -> BTreeMap<(String, String), Value> {
        self.state.documents.lock().unwrap().clone()
    }

    /// Actions received in all requests (retries counted again).
    pub fn actions_received(&self) -> usize {
        self.requests().iter().map(|r| r.actions().len()).sum()
    }

    /// The most requests it was answering at the same time.
    pub fn most_concurrent(&self) -> usize {
        self.state.most_open.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().expect("a second handle on the socket"));
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader) {
        let open = state.open.fetch_add(1, Ordering::SeqCst) + 1;
        state.most_open.fetch_max(open, Ordering::SeqCst);
        state.requests.lock().unwrap().push(request.clone());
        let reply = state.script.lock().unwrap().pop_front();
        let reply = reply.or_else(|| state.otherwise.lock().unwrap().clone()).unwrap_or(Reply::Accept);
        std::thread::sleep(*state.delay.lock().unwrap());
        let answer = match reply {
            Reply::Hangup => None,
            Reply::Status(status, body) => Some((status, body.to_string())),
            Reply::Accept => Some((200, apply(&request, state, |_| 201))),
            Reply::Items(status_of) => Some((200, apply(&request, state, status_of))),
        };
        state.open.fetch_sub(1, Ordering::SeqCst);
        let Some((status, body)) = answer else { return };
        let head =
            format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
        if writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(body.as_bytes())).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
        let Some((name, value)) = line.trim_end().split_once(':') else { break };
        headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { path, headers, body: String::from_utf8(body).ok()? })
}

/// (action line, body line) pairs of a bulk body.
fn bulk_actions(body: &str) -> Vec<(Value, Option<Value>)> {
    let mut lines = body.lines().map(|l| serde_json::from_str::<Value>(l).expect("bulk lines are JSON"));
    let mut actions = Vec::new();
    while let Some(action) = lines.next() {
        let source = if action.get("delete").is_some() { None } else { lines.next() };
        actions.push((action, source));
    }
    actions
}

/// Applies the actions whose status `status_of` makes 2xx, and returns the bulk answer.
fn apply(request: &Request, state: &State, status_of: fn(&Value) -> u16) -> String {
    let mut items = Vec::new();
    let mut documents = state.documents.lock().unwrap();
    for (action, source) in bulk_actions(&request.body) {
        let (operation, meta) = action.as_object().and_then(|o| o.iter().next()).expect("an action line");
        let index = meta["_index"].as_str().unwrap_or_default().to_string();
        let id = meta["_id"].as_str().map(str::to_string).unwrap_or_else(|| format!("auto-{}", documents.len()));
        let status = status_of(&action);
        let mut item = json!({"_index": index, "_id": id, "status": status});
        if (200..300).contains(&status) {
            match operation.as_str() {
                "delete" => drop(documents.remove(&(index, id))),
                _ => drop(documents.insert((index, id), source.unwrap_or(Value::Null))),
            }
        } else {
            let kind = match status {
                429 => "es_rejected_execution_exception",
                400 => "mapper_parsing_exception",
                _ => "unavailable_shards_exception",
            };
            item["error"] = json!({"type": kind, "reason": format!("scripted {status}")});
        }
        items.push(json!({ operation.clone(): item }));
    }
    json!({"took": 1, "errors": items.iter().any(|i| i.to_string().contains("\"error\"")), "items": items}).to_string()
}
