//! The sync protocol between two nodes: chunked ranges, and what happens to
//! malformed, oversized and excessive requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Responder, feed, memory_config, spawn_with};
use messaging_proto::limits::{MAX_SYNC_CHUNK_BYTES, MAX_SYNC_MESSAGE_BYTES};
use messaging_proto::{
    RangeRequest, RangeResponse, ServerId, SyncErrorCode, SyncRequest, SyncResponse, VerifiedEntry,
};
use net_overlay::OverlayConfig;

const SERVER: ServerId = ServerId::from_bytes([5; 32]);

/// A responder serving one feed from memory, honouring `limit` and
/// `max_bytes` the way the ledger does.
fn feed_responder(entries: Vec<VerifiedEntry>) -> Responder {
    Arc::new(move |_peer, request| match request {
        SyncRequest::Range(range) => {
            let mut chunk = Vec::new();
            let mut bytes = 0usize;
            let start = usize::try_from(range.from_seq - 1).unwrap();
            for entry in entries.iter().skip(start) {
                if chunk.len() as u32 == range.limit
                    || (!chunk.is_empty() && bytes + entry.len() > range.max_bytes as usize)
                {
                    break;
                }
                bytes += entry.len();
                chunk.push(entry.encoded().clone());
            }
            let more = start + chunk.len() < entries.len();
            SyncResponse::Range(RangeResponse {
                log: range.log,
                author: range.author,
                entries: chunk,
                more,
            })
        }
        _ => SyncResponse::error(SyncErrorCode::NotFound, "only ranges here"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_is_fetched_in_chunks_of_at_most_one_mebibyte() {
    let mut writer = feed(SERVER);
    let text = "x".repeat(4_000);
    let entries: Vec<VerifiedEntry> = (0..600)
        .map(|_| writer.text(&mut rand::rng(), &text))
        .collect();
    let total_bytes: usize = entries.iter().map(VerifiedEntry::len).sum();
    assert!(total_bytes > 2 * MAX_SYNC_CHUNK_BYTES);
    let server = spawn_with(memory_config(&[]), Some(feed_responder(entries.clone()))).await;
    let client = spawn_with(memory_config(&[&server]), None).await;

    let author = *writer.identity().user_id().as_bytes();
    let author = identity_core::UserId::from_bytes(author).unwrap();
    let mut fetched: Vec<VerifiedEntry> = Vec::new();
    let mut chunks = 0;
    loop {
        let request = SyncRequest::Range(RangeRequest {
            log: writer.log(),
            author,
            from_seq: fetched.len() as u64 + 1,
            limit: 4096,
            max_bytes: MAX_SYNC_CHUNK_BYTES as u32,
        });
        let response = client.handle.sync(server.peer, request).await.unwrap();
        let SyncResponse::Range(range) = response else {
            panic!("unexpected {response:?}");
        };
        let chunk_bytes: usize = range.entries.iter().map(Bytes::len).sum();
        assert!(chunk_bytes <= MAX_SYNC_CHUNK_BYTES);
        chunks += 1;
        for bytes in range.entries {
            fetched.push(VerifiedEntry::verify(bytes).unwrap());
        }
        if !range.more {
            break;
        }
    }
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(fetched, entries);
    for (index, entry) in fetched.iter().enumerate() {
        assert_eq!(entry.seq(), index as u64 + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_error_responses() {
    let mut writer = feed(SERVER);
    let entries = vec![writer.text(&mut rand::rng(), "one")];
    let server = spawn_with(memory_config(&[]), Some(feed_responder(entries))).await;
    let client = spawn_with(memory_config(&[&server]), None).await;

    let garbage = Bytes::from_static(&[0xff, 0x01, 0x02, 0x03]);
    match client.handle.sync_raw(server.peer, garbage).await.unwrap() {
        SyncResponse::Error(error) => assert_eq!(error.code, SyncErrorCode::Malformed),
        other => panic!("expected an error, got {other:?}"),
    }
    // Valid protobuf, but a range limit of 0.
    let bad_limit = SyncRequest::Range(RangeRequest {
        log: writer.log(),
        author: writer.identity().user_id(),
        from_seq: 1,
        limit: 0,
        max_bytes: 1,
    });
    match client
        .handle
        .sync_raw(server.peer, Bytes::from(bad_limit.to_bytes()))
        .await
        .unwrap()
    {
        SyncResponse::Error(error) => {
            assert_eq!(error.code, SyncErrorCode::Malformed);
            assert!(error.message.contains("range limit"), "{}", error.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // Twice the size limit: drained, not buffered, and refused.
    let oversized = Bytes::from(vec![0u8; 2 * MAX_SYNC_MESSAGE_BYTES]);
    match client
        .handle
        .sync_raw(server.peer, oversized)
        .await
        .unwrap()
    {
        SyncResponse::Error(error) => {
            assert_eq!(error.code, SyncErrorCode::Malformed);
            assert!(
                error.message.contains("over the limit"),
                "{}",
                error.message
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // The server still answers valid requests.
    let request = SyncRequest::Range(RangeRequest {
        log: writer.log(),
        author: writer.identity().user_id(),
        from_seq: 1,
        limit: 10,
        max_bytes: 1024,
    });
    match client.handle.sync(server.peer, request).await.unwrap() {
        SyncResponse::Range(range) => assert_eq!(range.entries.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_request_rate_is_told_to_wait() {
    let mut writer = feed(SERVER);
    let entries = vec![writer.text(&mut rand::rng(), "one")];
    let mut config: OverlayConfig = memory_config(&[]);
    config.sync_request_burst = 5.0;
    config.sync_requests_per_second = 1.0;
    let server = spawn_with(config, Some(feed_responder(entries))).await;
    let client = spawn_with(memory_config(&[&server]), None).await;
    let request = SyncRequest::Digest {
        space: SERVER.into(),
    };
    let mut limited = 0;
    for _ in 0..10 {
        if let SyncResponse::Error(error) = client
            .handle
            .sync(server.peer, request.clone())
            .await
            .unwrap()
            && error.code == SyncErrorCode::RateLimited
        {
            assert!(error.retry_after_ms.is_some());
            limited += 1;
        }
    }
    assert!(limited >= 4, "{limited} of 10 were rate limited");
}
