//! Helpers for tests that run the real `palaver-node` binary as separate
//! processes on 127.0.0.1. Every process's standard error goes to a file
//! in the test's log directory (so a failing test can show it, and the
//! redaction test can search all of it). Waits poll a condition with a
//! generous deadline; nothing asserts on a fixed sleep.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The passphrase every test identity uses (passed in the environment).
pub const PASSPHRASE: &str = "correct horse battery staple, cli tests";
/// Deadline of every wait.
pub const WAIT: Duration = Duration::from_secs(60);
/// Listen on an ephemeral QUIC port on loopback.
pub const QUIC: &str = "/ip4/127.0.0.1/udp/0/quic-v1";

/// Exit statuses (docs/cli.md).
pub const EXIT_NODE_ERROR: i32 = 1;
pub const EXIT_NO_NODE: i32 = 3;
pub const EXIT_SETUP: i32 = 4;
pub const EXIT_ALREADY_RUNNING: i32 = 5;

static COMMANDS: AtomicUsize = AtomicUsize::new(0);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_palaver-node")
}

/// A finished command.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The single JSON object printed.
    pub fn json(&self) -> Value {
        let lines = self.json_lines();
        assert_eq!(lines.len(), 1, "expected one JSON line: {self:?}");
        lines.into_iter().next().unwrap()
    }

    /// Every JSON line printed.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|err| panic!("not JSON ({err}): {line:?}; {self:?}"))
            })
            .collect()
    }

    /// The `error.code` of a `--json` error.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {self:?}"))
            .to_owned()
    }
}

/// A data directory and how to run `palaver-node` on it.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub name: String,
    pub path: PathBuf,
    pub logs: PathBuf,
    pub rust_log: Option<String>,
}

impl DataDir {
    /// `<root>/<name>`, logging into `<root>/logs`.
    pub fn new(root: &Path, name: &str) -> Self {
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Self {
            name: name.to_owned(),
            path: root.join(name),
            logs,
            rust_log: None,
        }
    }

    /// The same, with `RUST_LOG` set for every process.
    pub fn with_log(mut self, filter: &str) -> Self {
        self.rust_log = Some(filter.to_owned());
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command
            .arg("--data-dir")
            .arg(&self.path)
            .args(args)
            .env("PALAVER_PASSPHRASE", PASSPHRASE)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        if let Some(filter) = &self.rust_log {
            command.env("RUST_LOG", filter);
        }
        command
    }

    fn log_file(&self, what: &str) -> PathBuf {
        let n = COMMANDS.fetch_add(1, Ordering::Relaxed);
        self.logs.join(format!("{n:04}-{}-{what}.log", self.name))
    }

    fn finish(&self, label: &str, output: Output) -> Ran {
        let ran = Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        std::fs::write(self.log_file(label), &output.stderr).unwrap();
        ran
    }

    /// Runs a subcommand to completion.
    pub fn run(&self, args: &[&str]) -> Ran {
        let output = self.command(args).output().unwrap();
        self.finish(args.first().copied().unwrap_or("none"), output)
    }

    /// Runs a subcommand with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Ran {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        self.finish(args.first().copied().unwrap_or("none"), output)
    }

    /// Runs a subcommand with `--json`, expects success and one object.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let ran = self.run(&all);
        assert_eq!(ran.code, 0, "{} {args:?} failed: {ran:?}", self.name);
        ran.json()
    }

    /// Runs a subcommand with `--json`, expects success, every line.
    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let ran = self.run(&all);
        assert_eq!(ran.code, 0, "{} {args:?} failed: {ran:?}", self.name);
        ran.json_lines()
    }

    /// `init --name NAME`; returns the user id.
    pub fn init(&self) -> String {
        let created = self.json(&["init", "--name", &self.name]);
        created["user_id"].as_str().unwrap().to_owned()
    }

    /// Starts `run` with `args` and waits until its socket answers and it
    /// listens somewhere.
    pub fn start(&self, args: &[&str]) -> NodeProcess {
        let mut process = self.spawn(args);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!(
                    "{} exited during start-up with {status}:\n{}",
                    self.name,
                    process.log_text()
                );
            }
            let ran = self.run(&["status", "--json"]);
            if ran.code == 0 && !ran.json()["listen_addrs"].as_array().unwrap().is_empty() {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start:\n{}",
                self.name,
                process.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `run` with `args` without waiting for anything.
    pub fn spawn(&self, args: &[&str]) -> NodeProcess {
        let log = self.log_file("run");
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        NodeProcess {
            child,
            log,
            name: self.name.clone(),
        }
    }

    /// The node's status.
    pub fn status(&self) -> Value {
        self.json(&["status"])
    }

    /// A dialable address of the running node: its first listen address
    /// (QUIC first) with `/p2p/<id>`.
    pub fn address(&self) -> String {
        let status = self.status();
        let addrs: Vec<&str> = status["listen_addrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|addr| addr.as_str().unwrap())
            .collect();
        let addr = addrs
            .iter()
            .find(|addr| addr.contains("/quic-v1"))
            .or(addrs.first())
            .unwrap();
        format!("{addr}/p2p/{}", status["user_id"].as_str().unwrap())
    }

    /// Texts of a channel, oldest first, from `history --json`.
    pub fn texts(&self, server: &str, channel: &str) -> Vec<String> {
        self.history(server, channel)
            .iter()
            .map(|message| message["text"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn history(&self, server: &str, channel: &str) -> Vec<Value> {
        self.json_lines(&["history", server, channel, "--limit", "500"])
    }

    /// Sends a message; returns its id once acknowledged.
    pub fn send(&self, server: &str, channel: &str, text: &str) -> String {
        let ack = self.json(&["send", server, channel, text]);
        ack["message_id"].as_str().unwrap().to_owned()
    }
}

/// A running `palaver-node run`; killed if still running when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl NodeProcess {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}

/// Polls `check` until it gives `Some`, or panics with `what` after
/// [`WAIT`].
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A config file with the short protocol timers of the in-process tests
/// (`NodeTimers::fast`), so that periodic syncs and outbox retries happen
/// within seconds; returns its path.
pub fn fast_timers_config(root: &Path) -> String {
    let path = root.join("fast-timers.toml");
    std::fs::write(
        &path,
        "[timers]\nsync_interval = \"2s\"\noutbox_first_retry = \"300ms\"\noutbox_max_retry = \"3s\"\njoin_timeout = \"20s\"\n",
    )
    .unwrap();
    path.display().to_string()
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.1; returns the whole answer.
pub fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A raw connection to a node's control socket.
pub struct RawSocket {
    reader: BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl RawSocket {
    pub fn connect(dir: &DataDir) -> Self {
        let stream =
            std::os::unix::net::UnixStream::connect(dir.path.join("palaver.sock")).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next line as JSON; `None` at the end of the stream.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).unwrap()),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(err) => panic!("socket read failed: {err}"),
        }
    }

    /// Sends a line and reads the answer; `None` if the node closed the
    /// connection.
    pub fn try_ask(&mut self, line: &str) -> Option<Value> {
        self.writer.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&answer).ok(),
        }
    }

    /// Sends a line and reads the answer.
    pub fn ask(&mut self, line: &str) -> Value {
        self.write(format!("{line}\n").as_bytes());
        self.read().expect("an answer")
    }
}
