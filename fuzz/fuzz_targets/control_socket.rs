//! The headless node's control socket: client bytes are split into lines
//! by `node::headless::socket::read_line` and each line is parsed by
//! `parse_client_line` (JSON). The first byte sets the framing: its low
//! four bits the read buffer's size (1..=16 bytes, so lines arrive in
//! pieces) and its high bit a small line limit (64 bytes) instead of the
//! real one. Property: an accepted line serializes and parses back to the
//! same value.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use node::headless::socket::{LineRead, MAX_LINE_BYTES, parse_client_line, read_line};
use palaver_fuzz::{seeds, write_seeds};
use tokio::io::BufReader;

fuzz_target!(init: write_seeds(seeds::control_lines), |data: &[u8]| {
    let Some((&framing, stream)) = data.split_first() else {
        return;
    };
    let capacity = usize::from(framing & 0x0f) + 1;
    let max = if framing & 0x80 == 0 { MAX_LINE_BYTES } else { 64 };
    let mut reader = BufReader::with_capacity(capacity, stream);
    let mut line = Vec::new();
    // Each line consumes at least one byte, so this ends.
    loop {
        // Reading from a byte slice never waits: the future is ready at
        // once, and a no-op waker suffices.
        let read = pin!(read_line(&mut reader, &mut line, max))
            .poll(&mut Context::from_waker(Waker::noop()));
        let Poll::Ready(Ok(LineRead::Line)) = read else {
            break;
        };
        assert!(line.len() <= max);
        if let Ok(parsed) = parse_client_line(&line) {
            let json = serde_json::to_vec(&parsed).unwrap_or_default();
            assert_eq!(parse_client_line(&json).ok(), Some(parsed));
        }
    }
});
