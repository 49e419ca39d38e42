//! What the Kafka tests share: a real Nisshi broker started on a free port
//! from an empty folder, the daemon as a separate process (so it can be
//! killed), and plain producers and readers.
//!
//! A missing broker binary fails the test with the command that installs
//! it; nothing is skipped.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tidewatch::simulate::Reading;

pub const NISSHI_INSTALL: &str =
    "cargo install nisshi --version 0.7.0-pre.2 --locked --features libsql,dynostore";

/// A small sensor stream that learns online quickly and flags everything.
pub const FLAG_EVERY_EVENT_STREAM: &str = r#"
[schema]
name = "pump"
key_field = "device"
timestamp_field = "timestamp"
features = [{ name = "temperature" }, { name = "pressure" }]

[model]
window_len = 6
burn_in_steps = 2
forecaster = { cell = "gru", hidden_size = 4 }
autoencoder = { hidden_widths = [4, 2] }

[training]
max_epochs = 2

[online]
warmup_events = 60

# Every scored event is flagged, so each one waits for its flag's
# acknowledgement before its offset may be committed.
[detect.threshold]
kind = "fixed"
value = 0.0

[detect.hygiene]
min_consecutive = 1
cooldown_events = 0
"#;

/// A daemon config (TOML) with one stream, from topic `readings` to `flags`
/// and `dead-letters`, its stream config in `stream.toml` next to it and
/// HTTP on a port of its own choosing. `model` is a bundle directory (none:
/// online), `daemon` the body of the `[daemon]` table.
pub fn run_config(brokers: &str, group: &str, model: Option<&str>, daemon: &str) -> String {
    let model = model.map_or(String::new(), |m| format!("model = \"{m}\"\n"));
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
properties = {{ "session.timeout.ms" = "6000", "auto.commit.interval.ms" = "50" }}

[daemon]
{daemon}

[http]
listen = "127.0.0.1:0"

[[streams]]
config = "stream.toml"
{model}input_topic = "readings"
flags_topic = "flags"
dead_letter_topic = "dead-letters"
"#
    )
}

/// Runs the tidewatch binary with `args` and waits for it.
pub fn tidewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .output()
        .unwrap()
}

/// `tidewatch score --online --config CONFIG --input INPUT --output OUTPUT`.
pub fn score_online(config: &str, input: &str, output: &str) -> Output {
    tidewatch(&[
        "score", "--online", "--config", config, "--input", input, "--output", output,
    ])
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A free TCP port on 127.0.0.1 (the listener is closed before it is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `name` from `$NAME_BIN`, the `PATH` or `~/.cargo/bin`.
fn find_binary(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A Nisshi broker of its own for one test; stopped when dropped.
pub struct Nisshi {
    child: Child,
    binary: PathBuf,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nisshi {
    pub fn start() -> Nisshi {
        let binary = find_binary("nisshi", "NISSHI_BIN").unwrap_or_else(|| {
            panic!(
                "the Nisshi broker is not installed: run scripts/test.sh (it installs it) \
                 or `{NISSHI_INSTALL}`"
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("nisshi.log")).unwrap();
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://nisshi/"])
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let broker = Nisshi {
            child,
            binary,
            port,
            _dir: dir,
        };
        wait_for(
            Duration::from_secs(60),
            "the Nisshi broker to listen",
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str, partitions: i32) {
        let output = Command::new(&self.binary)
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &partitions.to_string(), name])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "nisshi topic create {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Nisshi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` until it holds, failing the test after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `tidewatch run` as a child process, its log (stderr) in a file.
pub struct DaemonProcess {
    child: Child,
    pub log: PathBuf,
}

impl DaemonProcess {
    /// Starts the daemon with settled offsets traced, appending to `log`.
    pub fn start(config: &Path, log: &Path) -> DaemonProcess {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,tidewatch::settled=trace")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        DaemonProcess {
            child,
            log: log.to_owned(),
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to end, failing the test after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {timeout:?}; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The HTTP address a daemon logged once it was listening.
pub fn http_address(log: &Path) -> Option<String> {
    log_text(log)
        .lines()
        .find(|line| line.contains("serving /metrics"))?
        .split_whitespace()
        .find_map(|part| part.strip_prefix("address="))
        .map(str::to_owned)
}

/// The value of the sample `series` (a name with its labels, as the text
/// format writes them) in a daemon's `/metrics`; 0 when absent, as a
/// counter not yet incremented is.
pub fn metric(address: &str, series: &str) -> f64 {
    let (status, text) = http_get(address, "/metrics");
    assert_eq!(status, 200, "/metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// (topic, partition, offset) of every event the log says was settled.
pub fn settled_offsets(log: &Path) -> BTreeSet<(String, i32, i64)> {
    let Ok(file) = std::fs::File::open(log) else {
        return BTreeSet::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|line| line.contains("tidewatch::settled"))
        .filter_map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
                    .map(str::to_owned)
            };
            Some((
                field("topic")?,
                field("partition")?.parse().ok()?,
                field("offset")?.parse().ok()?,
            ))
        })
        .collect()
}

pub fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Sends one message, waiting for queue space if needed.
pub fn send(producer: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                producer.poll(Duration::from_millis(50));
            }
        }
    }
}

pub fn flush(producer: &BaseProducer) {
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Produces simulated readings as JSON to `topic`, keyed by device,
/// pausing `pause` after every 50 so the stream can keep coming while a
/// daemon reads it.
pub fn produce_readings(brokers: &str, topic: &str, readings: &[Reading], pause: Duration) {
    let producer = producer(brokers);
    for (i, reading) in readings.iter().enumerate() {
        send(
            &producer,
            topic,
            &reading.device,
            &serde_json::to_vec(reading).unwrap(),
        );
        if i % 50 == 49 && !pause.is_zero() {
            producer.poll(pause);
        }
    }
    flush(&producer);
}

/// One past the last of `offsets` (partition, offset) in each partition
/// `0..partitions` (-1 for none): what a consumer that read them all commits.
pub fn next_offsets(offsets: impl IntoIterator<Item = (i32, i64)>, partitions: i32) -> Vec<i64> {
    let mut next = vec![-1; partitions as usize];
    for (partition, offset) in offsets {
        let slot = &mut next[partition as usize];
        *slot = (*slot).max(offset + 1);
    }
    next
}

/// A message as read back from a topic.
#[derive(Debug, Clone)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.payload).expect("a JSON payload")
    }
}

/// Messages in partitions `0..partitions` of `topic` from the beginning,
/// read until `count` came or `timeout` passed.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    timeout: Duration,
) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}-{}", free_port()))
        .set("enable.auto.commit", "false")
        // As the daemon sets it: librdkafka's 1 s default idles a reader
        // that keeps up.
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while received.len() < count && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|header| {
                        let value = header
                            .value
                            .map(String::from_utf8_lossy)
                            .unwrap_or_default();
                        (header.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        received.push(Received {
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    received
}

/// The offsets `group` has committed on partitions `0..partitions`.
pub fn committed_offsets(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    GroupOffsets::new(brokers, group).committed(topic, partitions)
}

/// Reads a consumer group's committed offsets without joining it; one
/// client for many reads.
pub struct GroupOffsets {
    consumer: BaseConsumer,
}

impl GroupOffsets {
    pub fn new(brokers: &str, group: &str) -> GroupOffsets {
        GroupOffsets {
            consumer: ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("group.id", group)
                .create()
                .unwrap(),
        }
    }

    /// Committed offset of each partition `0..partitions` (-1 for none).
    pub fn committed(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let mut query = TopicPartitionList::new();
        for p in 0..partitions {
            query.add_partition(topic, p);
        }
        let committed = self
            .consumer
            .committed_offsets(query, Duration::from_secs(10))
            .unwrap();
        (0..partitions)
            .map(
                |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => -1,
                },
            )
            .collect()
    }
}

/// The body of `GET http://address/path` (HTTP/1.0, no client library).
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

pub const PROMETHEUS_INSTALL: &str = "sudo apt-get install prometheus";

/// Debian's `prometheus` or `promtool`, or a failure that says how to get it.
pub fn prometheus_binary(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run scripts/test.sh (it installs Debian's \
                 prometheus package) or `{PROMETHEUS_INSTALL}`"
            )
        })
}

/// A Prometheus server of its own for one test, on a free port, with its
/// data in `dir`; stopped when dropped.
pub struct PrometheusServer {
    child: Child,
    pub web: String,
}

impl PrometheusServer {
    pub fn start(binary: &Path, config: &Path, dir: &Path) -> PrometheusServer {
        let web = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        PrometheusServer { child, web }
    }

    /// The JSON answer of an instant query (empty while the server is not up).
    pub fn query(&self, query: &str) -> String {
        if TcpStream::connect(&self.web).is_err() {
            return String::new();
        }
        http_get(
            &self.web,
            &format!("/api/v1/query?query={}", url_encoded(query)),
        )
        .1
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An in-process Schema Registry that speaks the Confluent REST API the
/// daemon and `tidewatch simulate` use (`GET /schemas/ids/{id}`, `POST
/// /subjects/{subject}/versions`, `GET /subjects/{subject}/versions/latest`,
/// `GET /subjects`), on a free port; [`FakeRegistry::set_available`]
/// makes it answer 503 to everything, as a registry in an outage does.
pub struct FakeRegistry {
    pub url: String,
    state: std::sync::Arc<RegistryState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct RegistryState {
    available: std::sync::atomic::AtomicBool,
    /// (subject, schema type, schema), id = index + 1.
    schemas: std::sync::Mutex<Vec<(String, String, String)>>,
    requests: std::sync::atomic::AtomicUsize,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        use axum::Router;
        use axum::extract::{Path as UrlPath, State};
        use axum::http::StatusCode;
        use axum::routing::{get, post};
        use std::sync::atomic::Ordering;

        type Shared = std::sync::Arc<RegistryState>;
        fn answer(status: StatusCode, body: serde_json::Value) -> (StatusCode, String) {
            (status, body.to_string())
        }
        fn down(state: &Shared) -> Option<(StatusCode, String)> {
            state.requests.fetch_add(1, Ordering::SeqCst);
            (!state.available.load(Ordering::SeqCst)).then(|| {
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"error_code": 50302, "message": "unavailable"}),
                )
            })
        }
        fn described(
            id: usize,
            (subject, kind, schema): &(String, String, String),
        ) -> serde_json::Value {
            serde_json::json!({"subject": subject, "version": 1, "id": id, "schemaType": kind, "schema": schema})
        }
        async fn by_id(
            State(state): State<Shared>,
            UrlPath(id): UrlPath<usize>,
        ) -> (StatusCode, String) {
            if let Some(down) = down(&state) {
                return down;
            }
            let schemas = state.schemas.lock().unwrap();
            match id.checked_sub(1).and_then(|i| schemas.get(i)) {
                Some((_, kind, schema)) => answer(
                    StatusCode::OK,
                    serde_json::json!({"schema": schema, "schemaType": kind}),
                ),
                None => answer(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error_code": 40403, "message": "Schema not found"}),
                ),
            }
        }
        async fn register(
            State(state): State<Shared>,
            UrlPath(subject): UrlPath<String>,
            body: String,
        ) -> (StatusCode, String) {
            if let Some(down) = down(&state) {
                return down;
            }
            let request: serde_json::Value = serde_json::from_str(&body).unwrap();
            let kind = request["schemaType"].as_str().unwrap_or("AVRO").to_owned();
            let schema = request["schema"].as_str().unwrap().to_owned();
            let mut schemas = state.schemas.lock().unwrap();
            let entry = (subject, kind, schema);
            let id = match schemas.iter().position(|s| *s == entry) {
                Some(i) => i + 1,
                None => {
                    schemas.push(entry);
                    schemas.len()
                }
            };
            answer(StatusCode::OK, serde_json::json!({"id": id}))
        }
        async fn latest(
            State(state): State<Shared>,
            UrlPath(subject): UrlPath<String>,
        ) -> (StatusCode, String) {
            if let Some(down) = down(&state) {
                return down;
            }
            let schemas = state.schemas.lock().unwrap();
            match schemas
                .iter()
                .enumerate()
                .rev()
                .find(|(_, s)| s.0 == subject)
            {
                Some((i, s)) => answer(StatusCode::OK, described(i + 1, s)),
                None => answer(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error_code": 40401, "message": "Subject not found"}),
                ),
            }
        }
        async fn subjects(State(state): State<Shared>) -> (StatusCode, String) {
            if let Some(down) = down(&state) {
                return down;
            }
            let schemas = state.schemas.lock().unwrap();
            let mut names: Vec<&String> = schemas.iter().map(|s| &s.0).collect();
            names.dedup();
            answer(StatusCode::OK, serde_json::json!(names))
        }

        let state: Shared = Default::default();
        state.available.store(true, Ordering::SeqCst);
        let app = Router::new()
            .route("/schemas/ids/{id}", get(by_id))
            .route("/subjects/{subject}/versions", post(register))
            .route("/subjects/{subject}/versions/latest", get(latest))
            .route("/subjects", get(subjects))
            .with_state(std::sync::Arc::clone(&state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FakeRegistry {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Answer requests (true) or refuse them all with 503 (false).
    pub fn set_available(&self, available: bool) {
        self.state
            .available
            .store(available, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests received so far, answered or not.
    pub fn requests(&self) -> usize {
        self.state
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
