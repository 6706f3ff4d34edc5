//! The control socket: `<data-dir>/palaver.sock`, a Unix socket (mode 0600
//! in a 0700 directory) speaking newline-delimited JSON.
//!
//! A client line is `{"op":"request","request":<Request>}` or
//! `{"op":"subscribe"}`. A request is answered with one line,
//! `{"ok":<Response>}` or `{"error":<NodeError>}`, and the connection stays
//! open for the next request; a subscription is answered with a stream of
//! `{"event":<Event>}` lines until the client disconnects. Client lines are
//! bounded ([`MAX_LINE_BYTES`]): a longer line gets
//! `socket.line_too_long` and the connection is closed; a line that is not
//! a valid command gets `socket.malformed_request` and the connection stays
//! usable. At most [`MAX_CLIENTS`] connections are served at once; more get
//! `socket.busy`.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::error::CliError;
use crate::NodeHandle;
use crate::api::{ErrorCategory, Event, NodeError, Request, Response};

/// The socket's file name inside the data directory.
pub const SOCKET_FILE: &str = "palaver.sock";
/// Longest client line (without its newline).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Longest line a client accepts from the node (a page of history can be
/// several MiB).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Most connections served at once.
pub const MAX_CLIENTS: usize = 64;
/// A client that does not take an answer within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A refused connection gets this long to take its `socket.busy` line.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long connections may take to finish after the node has stopped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A line from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientLine {
    /// One request; answered with one line.
    Request {
        /// The request.
        request: Request,
    },
    /// Events from now on, until the client disconnects.
    Subscribe,
}

/// A line from the node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerLine {
    /// The answer to a request.
    Ok(Response),
    /// A failed request, or a refused line.
    Error(NodeError),
    /// An event of a subscription.
    Event(Event),
}

/// What reading one line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line (without its `\n` or `\r\n`) is in the buffer.
    Line,
    /// The stream ended before any byte of a new line.
    Eof,
    /// The line is longer than the limit (the buffer holds its start).
    TooLong,
}

/// Reads one `\n`-terminated line of at most `max` bytes into `buf`
/// (cleared first). A last line without a newline counts as a line.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (take, done) = match available.iter().position(|&byte| byte == b'\n') {
            Some(at) => (at, true),
            None => (available.len(), false),
        };
        if buf.len() + take > max {
            let room = max - buf.len();
            buf.extend_from_slice(&available[..room]);
            reader.consume(room);
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(LineRead::Line);
        }
    }
}

/// Encodes one line (with its newline).
pub fn encode_line<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| {
        br#"{"error":{"category":"internal","code":"socket.encode","message":"cannot encode the answer"}}"#.to_vec()
    });
    bytes.push(b'\n');
    bytes
}

/// Parses a client line; the error is the `socket.malformed_request`
/// answer (it names the JSON problem, never echoes the line).
pub fn parse_client_line(line: &[u8]) -> Result<ClientLine, NodeError> {
    serde_json::from_slice(line).map_err(|err| {
        NodeError::new(
            ErrorCategory::Protocol,
            "socket.malformed_request",
            format!(
                "not a valid command line ({}): expected {{\"op\":\"request\",\"request\":{{\"type\":…}}}} or {{\"op\":\"subscribe\"}}",
                describe_json_error(&err)
            ),
        )
    })
}

/// The kind and position of a JSON error, without serde's quote of the
/// offending input (which could be a secret the client sent).
fn describe_json_error(err: &serde_json::Error) -> String {
    let kind = match err.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Data => "unknown or missing fields",
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

fn line_too_long() -> NodeError {
    NodeError::new(
        ErrorCategory::Protocol,
        "socket.line_too_long",
        format!("a command line is at most {MAX_LINE_BYTES} bytes; closing the connection"),
    )
}

fn busy() -> NodeError {
    NodeError::new(
        ErrorCategory::RateLimited,
        "socket.busy",
        format!("the node serves at most {MAX_CLIENTS} control connections at once"),
    )
    .retry_after(500)
}

/// Waits until the node has stopped (or the sender is gone). The guard
/// `wait_for` gives is not `Send`, so it is dropped here, not in callers'
/// `select!`s.
pub(crate) async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

/// The path of a data directory's socket.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// The listening control socket of a running node.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// What the socket's connections share with the `run` loop.
#[derive(Clone, Debug)]
pub struct SocketContext {
    /// The node.
    pub handle: NodeHandle,
    /// Asks `run` to shut down (a `shutdown` request).
    pub shutdown: mpsc::Sender<()>,
    /// Becomes true once the node has stopped.
    pub stopped: watch::Receiver<bool>,
}

impl ControlSocket {
    /// Binds `<data_dir>/palaver.sock` with mode 0600. A socket file left
    /// by a crashed run is removed when nothing answers on it; one that
    /// answers is refused (another node serves it).
    pub async fn bind(data_dir: &Path) -> Result<Self, CliError> {
        let path = socket_path(data_dir);
        if path.exists() {
            if UnixStream::connect(&path).await.is_ok() {
                return Err(CliError::already_running(data_dir));
            }
            tracing::info!(path = %path.display(), "removing a stale control socket");
            std::fs::remove_file(&path).map_err(|err| {
                CliError::io("cli.socket", "cannot remove the stale socket", &path, &err)
            })?;
        }
        let listener = UnixListener::bind(&path).map_err(|err| {
            CliError::io(
                "cli.socket",
                "cannot create the control socket",
                &path,
                &err,
            )
        })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|err| {
            CliError::io(
                "cli.socket",
                "cannot restrict the control socket",
                &path,
                &err,
            )
        })?;
        Ok(Self { listener, path })
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections until the node has stopped, then gives open
    /// connections a moment to finish and removes the socket file.
    pub async fn serve(self, context: SocketContext) {
        let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
        let mut connections = JoinSet::new();
        let mut stopped = context.stopped.clone();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let context = context.clone();
                            connections.spawn(async move {
                                serve_connection(stream, context).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            connections.spawn(async move {
                                let mut stream = stream;
                                let bytes = encode_line(&ServerLine::Error(busy()));
                                let _ = tokio::time::timeout(
                                    BUSY_WRITE_TIMEOUT,
                                    stream.write_all(&bytes),
                                )
                                .await;
                            });
                        }
                    },
                    Err(err) => {
                        tracing::warn!(%err, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = until_stopped(&mut stopped) => break,
            }
        }
        let _ = std::fs::remove_file(&self.path);
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        connections.shutdown().await;
    }
}

async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, line: &ServerLine) -> io::Result<()> {
    let bytes = encode_line(line);
    tokio::time::timeout(WRITE_TIMEOUT, async {
        writer.write_all(&bytes).await?;
        writer.flush().await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
}

async fn serve_connection(stream: UnixStream, context: SocketContext) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut stopped = context.stopped.clone();
    let mut buf = Vec::new();
    loop {
        let read = tokio::select! {
            read = read_line(&mut reader, &mut buf, MAX_LINE_BYTES) => read,
            _ = until_stopped(&mut stopped) => return,
        };
        let answer = match read {
            Ok(LineRead::Line) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(LineRead::Line) => match parse_client_line(&buf) {
                Ok(ClientLine::Request { request }) => answer(&context, request).await,
                Ok(ClientLine::Subscribe) => {
                    subscribe(&context, &mut reader, &mut write).await;
                    return;
                }
                Err(err) => ServerLine::Error(err),
            },
            Ok(LineRead::TooLong) => {
                let _ = write_line(&mut write, &ServerLine::Error(line_too_long())).await;
                return;
            }
            Ok(LineRead::Eof) | Err(_) => return,
        };
        if write_line(&mut write, &answer).await.is_err() {
            return;
        }
    }
}

async fn answer(context: &SocketContext, request: Request) -> ServerLine {
    if request == Request::Shutdown {
        // The `run` loop owns the graceful shutdown (socket file, lock);
        // answer once the node has stopped.
        let _ = context.shutdown.try_send(());
        until_stopped(&mut context.stopped.clone()).await;
        return ServerLine::Ok(Response::Ok);
    }
    match context.handle.request(request).await {
        Ok(response) => ServerLine::Ok(response),
        Err(err) => ServerLine::Error(err),
    }
}

async fn subscribe<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    context: &SocketContext,
    reader: &mut R,
    writer: &mut W,
) {
    let mut events = context.handle.subscribe();
    let mut stopped = context.stopped.clone();
    let mut scratch = [0u8; 1024];
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    if write_line(writer, &ServerLine::Event(event)).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            // Input after `subscribe` is ignored; end of input ends it.
            read = reader.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = until_stopped(&mut stopped) => return,
        }
    }
}

/// A connection to a running node's control socket.
#[derive(Debug)]
pub struct ControlClient {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    buf: Vec<u8>,
}

impl ControlClient {
    /// Connects to the node serving `data_dir`; [`CliError::no_node`] when
    /// there is none.
    pub async fn connect(data_dir: &Path) -> Result<Self, CliError> {
        let path = socket_path(data_dir);
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|err| match err.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    CliError::no_node(data_dir)
                }
                _ => CliError::io("cli.socket", "cannot connect to", &path, &err),
            })?;
        let (read, writer) = stream.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer,
            buf: Vec::new(),
        })
    }

    async fn send(&mut self, line: &ClientLine) -> Result<(), CliError> {
        self.writer
            .write_all(&encode_line(line))
            .await
            .map_err(|_| closed())
    }

    async fn receive(&mut self) -> Result<Option<ServerLine>, CliError> {
        match read_line(&mut self.reader, &mut self.buf, MAX_ANSWER_BYTES).await {
            Ok(LineRead::Line) => serde_json::from_slice(&self.buf).map(Some).map_err(|err| {
                CliError::node(NodeError::new(
                    ErrorCategory::Protocol,
                    "socket.malformed_answer",
                    format!(
                        "the node sent an answer this version does not understand ({}); are both the same version?",
                        describe_json_error(&err)
                    ),
                ))
            }),
            Ok(LineRead::Eof) | Err(_) => Ok(None),
            Ok(LineRead::TooLong) => Err(CliError::node(NodeError::new(
                ErrorCategory::Protocol,
                "socket.answer_too_long",
                "the node's answer is too long",
            ))),
        }
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&mut self, request: Request) -> Result<Response, CliError> {
        self.send(&ClientLine::Request { request }).await?;
        match self.receive().await? {
            Some(ServerLine::Ok(response)) => Ok(response),
            Some(ServerLine::Error(err)) => Err(CliError::node(err)),
            Some(ServerLine::Event(_)) => Err(CliError::node(NodeError::new(
                ErrorCategory::Protocol,
                "socket.malformed_answer",
                "the node sent an event instead of an answer",
            ))),
            None => Err(closed()),
        }
    }

    /// Subscribes to events; read them with [`ControlClient::next_event`].
    pub async fn subscribe(&mut self) -> Result<(), CliError> {
        self.send(&ClientLine::Subscribe).await
    }

    /// The next event; `None` once the node has closed the connection.
    pub async fn next_event(&mut self) -> Result<Option<Event>, CliError> {
        loop {
            match self.receive().await? {
                Some(ServerLine::Event(event)) => return Ok(Some(event)),
                Some(ServerLine::Error(err)) => return Err(CliError::node(err)),
                Some(ServerLine::Ok(_)) => continue,
                None => return Ok(None),
            }
        }
    }
}

fn closed() -> CliError {
    CliError::node(NodeError::new(
        ErrorCategory::Internal,
        "node.stopped",
        "the node closed the connection (it is stopping or has stopped)",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(LineRead, String)> {
        // A tiny buffer so that lines span many reads.
        let mut reader = BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let read = read_line(&mut reader, &mut buf, max).await.unwrap();
            let text = String::from_utf8_lossy(&buf).into_owned();
            match read {
                LineRead::Eof => return out,
                LineRead::TooLong => {
                    out.push((read, text));
                    return out;
                }
                LineRead::Line => out.push((read, text)),
            }
        }
    }

    #[tokio::test]
    async fn lines_are_split_bounded_and_the_last_may_lack_a_newline() {
        let got = lines(b"one\r\ntwo\n\nthree", 10).await;
        let texts: Vec<&str> = got.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "", "three"]);
        // Exactly at the limit is fine; one more byte is too long.
        let got = lines(b"0123456789\n01234567890\n", 10).await;
        assert_eq!(got[0], (LineRead::Line, "0123456789".to_owned()));
        assert_eq!(got[1].0, LineRead::TooLong);
        assert_eq!(got.len(), 2);
        assert!(lines(b"", 10).await.is_empty());
    }

    #[test]
    fn the_wire_format_is_as_documented() {
        let line = parse_client_line(br#"{"op":"request","request":{"type":"status"}}"#).unwrap();
        assert_eq!(
            line,
            ClientLine::Request {
                request: Request::Status
            }
        );
        assert_eq!(
            parse_client_line(br#"{"op":"subscribe"}"#).unwrap(),
            ClientLine::Subscribe
        );
        let send = parse_client_line(
            br#"{"op":"request","request":{"type":"send","server":"s","channel":"general","text":"hi"}}"#,
        )
        .unwrap();
        assert!(matches!(
            send,
            ClientLine::Request {
                request: Request::Send { .. }
            }
        ));
        assert_eq!(
            String::from_utf8(encode_line(&ServerLine::Ok(Response::Ok))).unwrap(),
            "{\"ok\":{\"type\":\"ok\"}}\n"
        );
        let error = NodeError::not_found("node.unknown_server", "no such server");
        assert_eq!(
            String::from_utf8(encode_line(&ServerLine::Error(error))).unwrap(),
            "{\"error\":{\"category\":\"not_found\",\"code\":\"node.unknown_server\",\"message\":\"no such server\"}}\n"
        );
        assert_eq!(
            String::from_utf8(encode_line(&ServerLine::Event(Event::ServersChanged))).unwrap(),
            "{\"event\":{\"type\":\"servers_changed\"}}\n"
        );
    }

    #[test]
    fn malformed_lines_are_refused_without_echoing_them() {
        for line in [
            &b"not json"[..],
            br#"{"op":"request"}"#,
            br#"{"op":"request","request":{"type":"no_such_request"}}"#,
            br#"{"op":"explode"}"#,
            br#"{"op":"request","request":{"type":"status"},"extra":1}"#,
            br#"{"op":"request","request":{"type":"join","invite":"palaver://invite/secret"},"#,
            br#"["op"]"#,
        ] {
            let err = parse_client_line(line).unwrap_err();
            assert_eq!(err.code, "socket.malformed_request");
            assert!(!err.message.contains("secret"), "{}", err.message);
            assert!(!err.message.contains("no_such_request"), "{}", err.message);
        }
    }
}
