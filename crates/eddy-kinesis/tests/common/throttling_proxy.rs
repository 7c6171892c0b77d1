//! A loopback HTTP proxy in front of moto that throttles: it answers `GetRecords` calls with
//! Kinesis' `ProvisionedThroughputExceededException` while it has refusals left, and passes
//! every other request to moto unchanged. Failure injection on the wire; the client under
//! test is the real one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct ThrottlingProxy {
    port: u16,
    remaining: Arc<AtomicU32>,
    refused: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

const REFUSAL: &str = r#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard in stream under account 123456789012."}"#;

impl ThrottlingProxy {
    /// A proxy to `127.0.0.1:upstream` that refuses the first `refusals` `GetRecords` calls.
    pub fn start(upstream: u16, refusals: u32) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = ThrottlingProxy {
            port: listener.local_addr().unwrap().port(),
            remaining: Arc::new(AtomicU32::new(refusals)),
            refused: Arc::default(),
            stop: Arc::default(),
        };
        let (remaining, refused, stop) = (proxy.remaining.clone(), proxy.refused.clone(), proxy.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (remaining, refused) = (remaining.clone(), refused.clone());
                        std::thread::spawn(move || serve(client, upstream, &remaining, &refused));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many calls it refused.
    pub fn refused(&self) -> u32 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves one client connection, request by request.
fn serve(client: TcpStream, upstream: u16, remaining: &AtomicU32, refused: &AtomicU32) {
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    loop {
        let mut head = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
            if !lower.starts_with("connection:") {
                head.push(line);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let is_get_records = head.iter().any(|h| h.to_ascii_lowercase().contains("kinesis_20131202.getrecords"));
        let refuse =
            is_get_records && remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if refuse {
            refused.fetch_add(1, Ordering::SeqCst);
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{REFUSAL}",
                REFUSAL.len()
            );
            if client.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        // Forward on a fresh connection that moto closes after answering.
        let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
        let mut request = head.concat();
        request.push_str("Connection: close\r\n\r\n");
        let mut answer = Vec::new();
        let sent = server.write_all(request.as_bytes()).and_then(|_| server.write_all(&body));
        if sent.and_then(|_| server.read_to_end(&mut answer)).is_err() {
            return;
        }
        let closes = String::from_utf8_lossy(&answer[..answer.len().min(1024)])
            .to_ascii_lowercase()
            .contains("connection: close");
        if client.write_all(&answer).is_err() || closes {
            return;
        }
    }
}
