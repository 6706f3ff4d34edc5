//! Size-limited request-response codecs for `/palaver/sync/1` and
//! `/palaver/directory/1`.
//!
//! Framing: an unsigned LEB128 length prefix (at most 10 bytes), then that
//! many bytes of protobuf. A request longer than the protocol's limit is not
//! buffered: up to [`DISCARD_LIMIT`] bytes are read through a small fixed
//! buffer and thrown away, and the request is reported as
//! [`WireRequest::Oversized`] so that the responder can still answer with an
//! error; anything longer closes the stream. A response longer than its
//! limit is an error for the requester. Memory per request is therefore
//! bounded by the limit, whatever the peer claims.

use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// Protocol name of the sync protocol.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/palaver/sync/1");
/// Protocol name of the directory protocol.
pub const DIRECTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/palaver/directory/1");
/// Oversized requests up to this many bytes are drained and answered with
/// an error; longer ones reset the stream.
pub(crate) const DISCARD_LIMIT: u64 = 16 * 1024 * 1024;

const MAX_VARINT_BYTES: usize = 10;

/// A request as read from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireRequest {
    /// The request bytes, within the limit.
    Message(Bytes),
    /// The peer sent a request of `len` bytes, over the limit; its bytes
    /// were discarded.
    Oversized {
        /// The length the peer declared.
        len: u64,
    },
}

/// A length-prefixed codec with a request and a response size limit
/// (public for the fuzz target `fuzz/fuzz_targets/framing.rs`; the overlay
/// builds its own).
#[derive(Clone, Debug)]
pub struct FramedCodec {
    max_request: usize,
    max_response: usize,
}

impl FramedCodec {
    /// A codec with the given limits.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        Self {
            max_request,
            max_response,
        }
    }
}

async fn read_length<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<u64> {
    let mut value = 0u64;
    for index in 0..MAX_VARINT_BYTES {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        value |= u64::from(byte[0] & 0x7f) << (7 * index);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "length prefix too long",
    ))
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let mut prefix = Vec::with_capacity(MAX_VARINT_BYTES);
    let mut len = bytes.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            prefix.push(byte);
            break;
        }
        prefix.push(byte | 0x80);
    }
    io.write_all(&prefix).await?;
    io.write_all(bytes).await?;
    io.close().await
}

async fn read_body<T: AsyncRead + Unpin + Send>(io: &mut T, len: usize) -> io::Result<Bytes> {
    let mut buffer = vec![0u8; len];
    io.read_exact(&mut buffer).await?;
    Ok(Bytes::from(buffer))
}

async fn discard<T: AsyncRead + Unpin + Send>(io: &mut T, mut len: u64) -> io::Result<()> {
    let mut scratch = [0u8; 8192];
    while len > 0 {
        let chunk = usize::try_from(len.min(scratch.len() as u64)).unwrap_or(scratch.len());
        io.read_exact(&mut scratch[..chunk]).await?;
        len -= chunk as u64;
    }
    Ok(())
}

impl Codec for FramedCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = Bytes;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_length(io).await?;
        if len > self.max_request as u64 {
            if len > DISCARD_LIMIT {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request far too large",
                ));
            }
            discard(io, len).await?;
            return Ok(WireRequest::Oversized { len });
        }
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        read_body(io, len).await.map(WireRequest::Message)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_length(io).await?;
        if len > self.max_response as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "response of {len} bytes is over the limit of {}",
                    self.max_response
                ),
            ));
        }
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        read_body(io, len).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: WireRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match request {
            WireRequest::Message(bytes) => write_frame(io, &bytes).await,
            WireRequest::Oversized { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an oversized marker cannot be sent",
            )),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn frame(bytes: &[u8]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        futures::executor::block_on(write_frame(&mut out, bytes)).unwrap();
        out.into_inner()
    }

    #[test]
    fn frames_round_trip() {
        let mut codec = FramedCodec::new(1000, 1000);
        for len in [0usize, 1, 127, 128, 999] {
            let body = vec![7u8; len];
            let mut io = Cursor::new(frame(&body));
            let read =
                futures::executor::block_on(codec.read_request(&SYNC_PROTOCOL, &mut io)).unwrap();
            assert_eq!(read, WireRequest::Message(Bytes::from(body)));
        }
    }

    #[test]
    fn oversized_requests_are_drained_not_buffered() {
        let mut codec = FramedCodec::new(10, 10);
        let mut io = Cursor::new(frame(&[1u8; 5000]));
        let read =
            futures::executor::block_on(codec.read_request(&SYNC_PROTOCOL, &mut io)).unwrap();
        assert_eq!(read, WireRequest::Oversized { len: 5000 });
        // A response over the limit is an error.
        let mut io = Cursor::new(frame(&[1u8; 11]));
        assert!(futures::executor::block_on(codec.read_response(&SYNC_PROTOCOL, &mut io)).is_err());
    }

    #[test]
    fn absurd_lengths_are_refused_without_reading() {
        let mut codec = FramedCodec::new(10, 10);
        // Declares 2^62 bytes.
        let mut io = Cursor::new(vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
        assert!(futures::executor::block_on(codec.read_request(&SYNC_PROTOCOL, &mut io)).is_err());
        // A length prefix that never ends.
        let mut io = Cursor::new(vec![0xff; 20]);
        assert!(futures::executor::block_on(codec.read_request(&SYNC_PROTOCOL, &mut io)).is_err());
        // A truncated body.
        let mut io = Cursor::new(vec![5, 1, 2]);
        assert!(futures::executor::block_on(codec.read_request(&SYNC_PROTOCOL, &mut io)).is_err());
    }
}
