//! A tiny HTTP/1.1 server for Prometheus: `GET /metrics` answers the
//! registry in the text exposition format (libp2p's metrics and the
//! node's, `palaver_*`); any other path is 404, any other method 405.
//! Requests are bounded (head ≤ 8 KiB, read within 5 s), every connection
//! is closed after one answer, and at most 16 are served at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use net_overlay::SharedRegistry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::error::CliError;
use super::socket::until_stopped;
use crate::api::ErrorCategory;

/// Longest request head read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time a client has to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to take the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes read and dropped after the answer before closing.
const LINGER_BYTES: usize = 256 * 1024;
/// Most connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// The content type of the text format `prometheus_client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).await.map_err(|err| {
        CliError::setup(
            ErrorCategory::Config,
            "cli.metrics_bind",
            format!("cannot serve metrics on {addr}: {err}"),
        )
    })
}

/// Serves metrics until `stopped` becomes true.
pub async fn serve(
    listener: TcpListener,
    registry: SharedRegistry,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                // Over the limit: the connection is dropped unanswered.
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    continue;
                };
                let registry = registry.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, &registry).await;
                    drop(permit);
                });
            }
            _ = until_stopped(&mut stopped) => return,
        }
    }
}

async fn answer(mut stream: TcpStream, registry: &SharedRegistry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            if head.windows(4).any(|window| window == b"\r\n\r\n")
                || head.windows(2).any(|window| window == b"\n\n")
            {
                return Ok(true);
            }
            if head.len() >= MAX_HEAD_BYTES {
                return Ok(false);
            }
            let room = (MAX_HEAD_BYTES - head.len()).min(chunk.len());
            let n = stream.read(&mut chunk[..room]).await?;
            if n == 0 {
                return Ok(!head.is_empty());
            }
            head.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    let response = match read {
        Ok(Ok(true)) => respond(&head, registry),
        Ok(Ok(false)) => plain(
            431,
            "Request Header Fields Too Large",
            "request too large\n",
        ),
        Ok(Err(err)) => return Err(err),
        Err(_) => plain(408, "Request Timeout", "request timeout\n"),
    };
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await?;
        // Lingering close: take (and drop) what the client still sends, so
        // that closing with unread input does not reset the connection
        // before the client has read the answer.
        let mut chunk = [0u8; 4096];
        let mut drained = 0usize;
        while drained < LINGER_BYTES {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow client"))?
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|&byte| byte == b'\n').next() else {
        return Route::BadRequest;
    };
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

fn respond(head: &[u8], registry: &SharedRegistry) -> Vec<u8> {
    match route(head) {
        Route::Metrics { head_only } => {
            let mut body = String::new();
            if prometheus_client::encoding::text::encode(&mut body, &registry.lock()).is_err() {
                return plain(500, "Internal Server Error", "cannot encode the metrics\n");
            }
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if !head_only {
                response.extend_from_slice(body.as_bytes());
            }
            response
        }
        Route::NotFound => plain(404, "Not Found", "not found; metrics are at /metrics\n"),
        Route::MethodNotAllowed => plain(405, "Method Not Allowed", "use GET\n"),
        Route::BadRequest => plain(400, "Bad Request", "bad request\n"),
    }
}

fn plain(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\x00\xff garbage"), Route::BadRequest);
    }

    #[tokio::test]
    async fn serves_the_registry_over_tcp() {
        let registry: SharedRegistry = Arc::default();
        let counter = Counter::<u64>::default();
        registry
            .lock()
            .register("palaver_test_things", "Things", counter.clone());
        counter.inc_by(7);
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, registry, stopped));
        let get = |request: &'static str| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let answer = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("palaver_test_things_total 7"), "{answer}");
        assert!(answer.trim_end().ends_with("# EOF"), "{answer}");
        let answer = get("GET /other HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        let huge = Box::leak(
            format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)).into_boxed_str(),
        );
        let answer = get(huge).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        stop.send(true).unwrap();
        server.await.unwrap();
    }
}
