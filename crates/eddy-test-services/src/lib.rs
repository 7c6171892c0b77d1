//! Real protocol servers for eddy's connector tests, each started on a free 127.0.0.1 port in
//! its own temporary directory and stopped when its [`Service`] is dropped.
//!
//! Connectors are tested against real servers, never mocks of their clients. The servers come
//! from `scripts/install-services.sh`, which installs them under `target/services/` (or
//! `$EDDY_SERVICES_DIR`):
//!
//! | constructor | server | speaks |
//! |---|---|---|
//! | [`Service::kafka`] | noida-db | Kafka, with consumer groups, idempotence and transactions |
//! | [`Service::elasticsearch`] | noida-db | the Elasticsearch 8 REST API (`_bulk`, `_search`, …) |
//! | [`Service::tansu`] | tansu | Kafka (a second broker; its transactions do not hide aborts) |
//! | [`Service::moto`] | moto_server | S3, Kinesis (any credentials, e.g. [`ACCESS_KEY`]) |
//! | [`Service::moto_rejecting_credentials`] | moto_server | the same, refusing every request's credentials |
//! | [`Service::s3s_fs`] | s3s-fs | S3 over a local directory (credentials [`ACCESS_KEY`]/[`SECRET_KEY`]) |
//!
//! A test asks for what it needs and returns early when the server is not installed:
//!
//! ```no_run
//! let Some(kafka) = eddy_test_services::Service::kafka() else { return };
//! println!("bootstrap servers: {}", kafka.address());
//! ```
//!
//! A missing server is a loud skip on a developer's machine and a **failure under CI** (when
//! the `CI` variable is set): a connector test must never pass by not running.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The access key the S3 and Kinesis servers are started with (moto accepts any).
pub const ACCESS_KEY: &str = "eddytest";
/// The secret key that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "eddytestsecret";
/// The region tests sign requests for.
pub const REGION: &str = "us-east-1";

/// How long a server may take to accept connections (moto, a Python server, is the slowest).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server a [`Service`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NoidaKafka,
    NoidaElasticsearch,
    Tansu,
    Moto,
    /// moto with its IAM checks on and no users, so every request's credentials are refused.
    MotoAuth,
    S3sFs,
}

impl Kind {
    /// The binary under `target/services/bin`.
    fn binary(self) -> &'static str {
        match self {
            Kind::NoidaKafka | Kind::NoidaElasticsearch => "noida-db",
            Kind::Tansu => "tansu",
            Kind::Moto | Kind::MotoAuth => "moto_server",
            Kind::S3sFs => "s3s-fs",
        }
    }
}

/// A running server; dropping it stops the server and deletes its data.
#[derive(Debug)]
pub struct Service {
    kind: Kind,
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    /// The server process, for servers that run in the foreground (noida-db daemonises).
    child: Option<Child>,
    running: bool,
}

impl Service {
    /// A Kafka broker with working transactions (noida-db). Create topics explicitly: its
    /// auto-created topics have one partition.
    pub fn kafka() -> Option<Service> {
        Service::start_new(Kind::NoidaKafka)
    }

    /// An Elasticsearch 8 compatible REST server (noida-db); see [`Service::url`].
    pub fn elasticsearch() -> Option<Service> {
        Service::start_new(Kind::NoidaElasticsearch)
    }

    /// A second Kafka broker (tansu, in-memory storage). Consumer groups work (keep
    /// `session.timeout.ms` at 6000 or less); its transactions do not hide aborted records, and
    /// `ListOffsets` for the latest offset is unreliable: use it for non-transactional tests.
    pub fn tansu() -> Option<Service> {
        Service::start_new(Kind::Tansu)
    }

    /// An AWS emulation (moto_server) serving S3 and Kinesis at [`Service::url`].
    pub fn moto() -> Option<Service> {
        Service::start_new(Kind::Moto)
    }

    /// moto with authentication on and no users: every request is refused as having invalid
    /// credentials, to test what clients say about wrong credentials.
    pub fn moto_rejecting_credentials() -> Option<Service> {
        Service::start_new(Kind::MotoAuth)
    }

    /// An S3 server (s3s-fs) that stores objects under `dir()/data`. It answers signed
    /// requests only, so a bucket is made by creating the directory `dir()/data/<bucket>`
    /// (or by a signed `CreateBucket`), not by a plain `PUT /<bucket>`.
    pub fn s3s_fs() -> Option<Service> {
        Service::start_new(Kind::S3sFs)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`: the bootstrap servers of a Kafka broker.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`: the endpoint of an HTTP server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's private directory (its data, its log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (keeping its data, where it has any on disk), to test what clients
    /// do when it goes away. [`Service::restart`] brings it back on the same port.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if matches!(self.kind, Kind::NoidaKafka | Kind::NoidaElasticsearch) {
            let _ = Command::new(&self.binary)
                .arg("down")
                .arg("--data-dir")
                .arg(self.data_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Starts a stopped server again on the same port with the same data directory.
    ///
    /// # Panics
    /// If the server does not come up, with the tail of its log.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn start_new(kind: Kind) -> Option<Service> {
        let binary = find_binary(kind.binary())?;
        let mut service = Service {
            kind,
            binary,
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory for the server"),
            child: None,
            running: false,
        };
        service.launch();
        Some(service)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server and waits until its port accepts connections.
    fn launch(&mut self) {
        let data = self.data_dir();
        std::fs::create_dir_all(&data).expect("the server's data directory");
        let log = std::fs::File::create(self.log_path()).expect("the server's log file");
        let port = self.port.to_string();
        let mut command = Command::new(&self.binary);
        match self.kind {
            Kind::NoidaKafka => {
                command.args(["up", "--only", "kafka", "--kafka-port", &port]).arg("--data-dir").arg(&data);
            }
            Kind::NoidaElasticsearch => {
                command
                    .args(["up", "--only", "elasticsearch", "--elasticsearch-port", &port])
                    .arg("--data-dir")
                    .arg(&data);
            }
            Kind::Tansu => {
                let url = format!("tcp://127.0.0.1:{port}");
                command.args(["broker", "--listener-url", &url, "--advertised-listener-url", &url]);
                command.args(["--storage-engine", "memory://tansu/"]);
            }
            Kind::Moto => {
                command.args(["-H", "127.0.0.1", "-p", &port]);
            }
            Kind::MotoAuth => {
                command.args(["-H", "127.0.0.1", "-p", &port]).env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
            }
            Kind::S3sFs => {
                command.args(["--host", "127.0.0.1", "--port", &port]);
                command.args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]);
                command.arg(&data);
            }
        }
        let stderr = log.try_clone().expect("the server's log file");
        command.stdin(Stdio::null()).stdout(log).stderr(stderr);
        let daemonises = matches!(self.kind, Kind::NoidaKafka | Kind::NoidaElasticsearch);
        if daemonises {
            let status = command.status().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
            assert!(status.success(), "{} failed to start ({status}): {}", self.kind.binary(), self.log_tail());
        } else {
            let child = command.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
            self.child = Some(child);
        }
        self.running = true;
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{} exited during start-up ({status}): {}", self.kind.binary(), self.log_tail());
                }
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                self.stop();
                panic!("{} did not listen on {address} within {READY_TIMEOUT:?}: {tail}", self.kind.binary());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The end of the server's log (noida-db keeps its own in its data directory).
    fn log_tail(&self) -> String {
        let own = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let noida = std::fs::read_to_string(self.data_dir().join("noida.log")).unwrap_or_default();
        let all = own + &noida;
        let start = all.len().saturating_sub(2000);
        let start = (start..all.len()).find(|&i| all.is_char_boundary(i)).unwrap_or(all.len());
        all[start..].to_string()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where `scripts/install-services.sh` puts the servers.
fn services_dir() -> PathBuf {
    match std::env::var_os("EDDY_SERVICES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/services"),
    }
}

/// The installed binary, or `None` after a loud note; under CI a missing server panics.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = services_dir().join("bin").join(name);
    if path.exists() {
        return Some(path);
    }
    let message = format!("{name} is not installed at {}: run scripts/install-services.sh", path.display());
    if std::env::var_os("CI").is_some() {
        panic!("{message} (under CI every connector test must run)");
    }
    eprintln!("\n*** SKIPPED: {message} ***\n");
    None
}

/// A port that was free a moment ago (the kernel's pick for an ephemeral bind), and that no
/// other server of this process was given.
///
/// The tests of one binary start their servers in parallel, and the kernel may pick the
/// same free port twice before either server has bound it; the second server then fails to
/// bind while its readiness check reaches the first one's port, and its test loses its
/// server when the other test stops. Remembering what was handed out rules that out.
fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free loopback port");
        let port = listener.local_addr().expect("the bound address").port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A plain HTTP GET, enough to see that a server answers.
    fn http_get(service: &Service, path: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", service.port())).expect("connects");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        answer
    }

    #[test]
    fn elasticsearch_answers_and_stops_with_its_handle() {
        let Some(es) = Service::elasticsearch() else { return };
        let answer = http_get(&es, "/");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"number\":\"8."), "{answer}");
        let port = es.port();
        drop(es);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening after drop");
    }

    #[test]
    fn kafka_brokers_listen_and_restart_on_the_same_port() {
        for service in [Service::kafka(), Service::tansu()] {
            let Some(mut broker) = service else { continue };
            let port = broker.port();
            broker.stop();
            assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening after stop");
            broker.restart();
            assert_eq!(broker.port(), port);
            assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        }
    }

    #[test]
    fn s3_servers_answer_http() {
        for service in [Service::moto(), Service::s3s_fs()] {
            let Some(s3) = service else { continue };
            let answer = http_get(&s3, "/");
            assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        }
    }
}
