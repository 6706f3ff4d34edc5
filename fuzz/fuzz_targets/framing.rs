//! net-overlay's request-response framing (`FramedCodec`, used by
//! `/palaver/sync/1` and `/palaver/directory/1`): an unsigned LEB128
//! length (at most 10 bytes), then that many bytes. The first input byte
//! sets the limits (low four bits: the request limit, 2^n bytes; high four
//! bits: the response limit) and the second the read buffer's size (1..=256
//! bytes, so frames arrive in pieces); the rest is read once as a request
//! and once as a response. Properties: a request within its limit is at
//! most the limit long and writes to a frame that reads back to itself; an
//! oversized request declared more than the limit; a response is never
//! over its limit.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use futures::io::{BufReader, Cursor};
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec;
use net_overlay::{FramedCodec, SYNC_PROTOCOL, WireRequest};
use palaver_fuzz::{seeds, write_seeds};

/// Runs a future over in-memory I/O, which never waits: it is ready at
/// the first poll.
fn ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("in-memory I/O waited"),
    }
}

fuzz_target!(init: write_seeds(seeds::frames), |data: &[u8]| {
    let [limits, buffer, stream @ ..] = data else {
        return;
    };
    let max_request = 1usize << (limits & 0x0f);
    let max_response = 1usize << (limits >> 4);
    let capacity = usize::from(*buffer) + 1;
    let mut codec = FramedCodec::new(max_request, max_response);

    let mut reader = BufReader::with_capacity(capacity, Cursor::new(stream));
    match ready(codec.read_request(&SYNC_PROTOCOL, &mut reader)) {
        Ok(WireRequest::Message(bytes)) => {
            assert!(bytes.len() <= max_request);
            let mut frame = Cursor::new(Vec::new());
            let written = ready(codec.write_request(
                &SYNC_PROTOCOL,
                &mut frame,
                WireRequest::Message(bytes.clone()),
            ));
            assert!(written.is_ok(), "{written:?}");
            let mut again = Cursor::new(frame.into_inner());
            let read = ready(codec.read_request(&SYNC_PROTOCOL, &mut again));
            assert_eq!(read.ok(), Some(WireRequest::Message(bytes)));
        }
        Ok(WireRequest::Oversized { len }) => assert!(len > max_request as u64),
        Err(_) => {}
    }

    let mut reader = BufReader::with_capacity(capacity, Cursor::new(stream));
    if let Ok(bytes) = ready(codec.read_response(&SYNC_PROTOCOL, &mut reader)) {
        assert!(bytes.len() <= max_response);
    }
});
