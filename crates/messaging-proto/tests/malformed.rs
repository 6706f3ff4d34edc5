//! Malformed bytes and over-limit inputs give typed errors and never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use identity_core::Identity;
use messaging_proto::limits::{
    MAX_INVITE_BOOTSTRAP_PEERS, MAX_PUSH_ENTRIES, MAX_SIGNED_ADVERT_BYTES, MAX_SYNC_MESSAGE_BYTES,
};
use messaging_proto::test_utils::{FeedWriter, strategies};
use messaging_proto::{
    Body, BootstrapPeer, ChannelId, ControlEvent, CreateServer, DirectoryRequest,
    DirectoryResponse, EntryDraft, EpochKey, GossipMessage, Invite, InviteId, LogId, Payload,
    ProtoError, RangeRequest, Sealing, ServerAdvert, ServerId, SignedAdvert, SignedInvite, SpaceId,
    SyncRequest, SyncResponse, TxnId, VerifiedEntry, Visibility,
};
use proptest::prelude::*;

const NOW_MS: u64 = 1_800_000_000_000;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Runs every decoder of outside bytes on `bytes`; none may panic.
fn decode_everything(bytes: &[u8]) {
    let _ = VerifiedEntry::verify(bytes.to_vec());
    let _ = VerifiedEntry::decode_stored(bytes.to_vec());
    let _ = Payload::from_bytes(bytes);
    let _ = SignedInvite::from_bytes(bytes);
    let _ = SignedAdvert::from_bytes(bytes, NOW_MS);
    let _ = SyncRequest::from_bytes(bytes);
    let _ = SyncResponse::from_bytes(bytes);
    let _ = DirectoryRequest::from_bytes(bytes);
    let _ = DirectoryResponse::from_bytes(bytes);
    let _ = GossipMessage::from_bytes(bytes);
}

fn sample_entry() -> VerifiedEntry {
    let mut rng = rand::rng();
    let mut feed = FeedWriter::new(
        Identity::generate(&mut rng),
        SpaceId::from_bytes([1; 32]),
        LogId::from_bytes([2; 32]),
        EpochKey::generate(&mut rng, 1),
    );
    feed.text(&mut rng, "first");
    feed.text(&mut rng, "second message with a reply")
}

fn genesis(owner: &Identity) -> VerifiedEntry {
    let mut rng = rand::rng();
    let payload = Payload {
        client_txn_id: TxnId::default(),
        body: Body::Control(ControlEvent::CreateServer(CreateServer {
            name: "garden".into(),
            description: "plants".into(),
            visibility: Visibility::Public,
            general_channel_id: ChannelId::from_bytes([5; 16]),
            owner_name: String::new(),
        })),
    };
    let draft = EntryDraft {
        space: None,
        log_id: LogId::from_bytes([6; 32]),
        seq: 1,
        backlink: None,
        lamport: 1,
        timestamp_ms: NOW_MS,
    };
    let key = EpochKey::generate(&mut rng, 1);
    VerifiedEntry::seal(&mut rng, owner, draft, &payload, Sealing::Encrypt(&key)).unwrap()
}

fn advert(owner: &Identity, expires_at_ms: u64) -> ServerAdvert {
    let genesis = genesis(owner);
    ServerAdvert {
        server_id: genesis.genesis_of().unwrap(),
        genesis,
        name: "garden".into(),
        description: "plants".into(),
        bootstrap: vec![],
        visibility: Visibility::Public,
        join_key: Some(EpochKey::generate(&mut rand::rng(), 1)),
        seq: 1,
        expires_at_ms,
        member_count: 3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_everything(&bytes);
    }

    #[test]
    fn any_bit_flip_in_a_signed_entry_is_rejected(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let entry = sample_entry();
        let mut bytes = entry.encoded().to_vec();
        let at = position.index(bytes.len());
        bytes[at] ^= 1 << bit;
        decode_everything(&bytes);
        prop_assert!(VerifiedEntry::verify(bytes).is_err());
    }

    #[test]
    fn any_truncation_of_a_signed_entry_is_rejected(cut in any::<prop::sample::Index>()) {
        let entry = sample_entry();
        let bytes = entry.encoded();
        let len = cut.index(bytes.len());
        prop_assert!(VerifiedEntry::verify(bytes.slice(..len)).is_err());
    }

    #[test]
    fn any_bit_flip_in_an_invite_is_rejected(
        invite in strategies::signed_invite(),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = invite.to_bytes();
        let at = position.index(bytes.len());
        bytes[at] ^= 1 << bit;
        decode_everything(&bytes);
        prop_assert!(SignedInvite::from_bytes(&bytes).is_err());
    }

    #[test]
    fn mutated_sync_messages_never_panic(
        request in strategies::sync_request(),
        response in strategies::sync_response(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        for mut bytes in [request.to_bytes(), response.to_bytes()] {
            if !bytes.is_empty() {
                let at = position.index(bytes.len());
                bytes[at] = byte;
            }
            decode_everything(&bytes);
        }
    }
}

#[test]
fn advert_checks_each_rule() {
    let owner = Identity::generate(&mut rand::rng());
    let signed = SignedAdvert::sign(&owner, advert(&owner, NOW_MS + DAY_MS), NOW_MS).unwrap();
    let bytes = signed.to_bytes();
    assert!(SignedAdvert::from_bytes(&bytes, NOW_MS).is_ok());

    // Expired, or claiming to live more than a week.
    assert_eq!(
        SignedAdvert::from_bytes(&bytes, NOW_MS + DAY_MS)
            .unwrap_err()
            .code(),
        "advert.expired"
    );
    assert_eq!(
        SignedAdvert::sign(&owner, advert(&owner, NOW_MS + 30 * DAY_MS), NOW_MS)
            .unwrap_err()
            .code(),
        "advert.expiry_too_far"
    );
    // Signed by someone else than the genesis author.
    let mallory = Identity::generate(&mut rand::rng());
    assert_eq!(
        SignedAdvert::sign(&mallory, advert(&owner, NOW_MS + DAY_MS), NOW_MS).unwrap_err(),
        ProtoError::AdvertNotByOwner
    );
    // A server id that is not the genesis hash.
    let mut wrong_id = advert(&owner, NOW_MS + DAY_MS);
    wrong_id.server_id = ServerId::from_bytes([0xee; 32]);
    assert_eq!(
        SignedAdvert::sign(&owner, wrong_id, NOW_MS).unwrap_err(),
        ProtoError::AdvertServerMismatch
    );
    // Asked for another server.
    assert_eq!(
        SignedAdvert::from_bytes_for(&bytes, &ServerId::from_bytes([1; 32]), NOW_MS).unwrap_err(),
        ProtoError::AdvertServerMismatch
    );
    // A genesis that is an ordinary entry.
    let mut not_genesis = advert(&owner, NOW_MS + DAY_MS);
    not_genesis.genesis = sample_entry();
    assert!(SignedAdvert::sign(&owner, not_genesis, NOW_MS).is_err());
    // A private server must not publish its key.
    let mut leaky = advert(&owner, NOW_MS + DAY_MS);
    leaky.visibility = Visibility::Private;
    assert_eq!(
        SignedAdvert::sign(&owner, leaky, NOW_MS)
            .unwrap_err()
            .code(),
        "proto.invalid_length"
    );
    // A flipped bit in the advert part breaks the signature.
    let mut tampered = bytes.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    assert!(SignedAdvert::from_bytes(&tampered, NOW_MS).is_err());
    // Oversized before decoding.
    assert_eq!(
        SignedAdvert::from_bytes(&vec![0; MAX_SIGNED_ADVERT_BYTES + 1], NOW_MS)
            .unwrap_err()
            .code(),
        "proto.too_large"
    );
}

#[test]
fn invite_limits_and_signature() {
    let mut rng = rand::rng();
    let inviter = Identity::generate(&mut rng);
    let peer = BootstrapPeer {
        peer: inviter.user_id(),
        addrs: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".parse().unwrap()],
    };
    let invite = Invite {
        server_id: ServerId::from_bytes([1; 32]),
        server_name: "garden".into(),
        bootstrap: vec![peer; MAX_INVITE_BOOTSTRAP_PEERS + 1],
        key: EpochKey::generate(&mut rng, 1),
        inviter: inviter.user_id(),
        expires_at_ms: Some(NOW_MS),
        max_uses: None,
        invite_id: InviteId::from_bytes([2; 16]),
        issued_at_ms: NOW_MS - 1,
    };
    assert_eq!(
        SignedInvite::sign(&inviter, invite.clone())
            .unwrap_err()
            .code(),
        "proto.too_many"
    );
    let mut ok = invite.clone();
    ok.bootstrap.truncate(1);
    let signed = SignedInvite::sign(&inviter, ok).unwrap();
    // Expired once its expiry plus the clock tolerance has passed.
    let late = NOW_MS + messaging_proto::limits::MAX_CLOCK_SKEW_MS;
    assert!(signed.invite().is_expired(late));
    assert!(!signed.invite().is_expired(late - 1));
    assert!(!signed.invite().is_expired(NOW_MS));
    let mut name_too_long = invite;
    name_too_long.bootstrap.clear();
    name_too_long.server_name = "x".repeat(101);
    assert_eq!(
        SignedInvite::sign(&inviter, name_too_long)
            .unwrap_err()
            .code(),
        "proto.text_too_long"
    );
}

#[test]
fn sync_limits() {
    let author = Identity::generate(&mut rand::rng()).user_id();
    let range = |limit, max_bytes| {
        SyncRequest::Range(RangeRequest {
            log: LogId::from_bytes([1; 32]),
            author,
            from_seq: 1,
            limit,
            max_bytes,
        })
    };
    assert!(SyncRequest::from_bytes(&range(1, 1).to_bytes()).is_ok());
    for (limit, max_bytes) in [(0, 1), (4097, 1), (1, 0), (1, 1_048_577)] {
        assert_eq!(
            SyncRequest::from_bytes(&range(limit, max_bytes).to_bytes())
                .unwrap_err()
                .code(),
            "proto.out_of_range",
            "limit {limit} max_bytes {max_bytes}"
        );
    }
    let push = SyncRequest::Push {
        space: SpaceId::from_bytes([1; 32]),
        entries: vec![Bytes::from_static(b"x"); MAX_PUSH_ENTRIES + 1],
        inbox: None,
    };
    assert_eq!(
        SyncRequest::from_bytes(&push.to_bytes())
            .unwrap_err()
            .code(),
        "proto.too_many"
    );
    assert_eq!(
        SyncRequest::from_bytes(&vec![0; MAX_SYNC_MESSAGE_BYTES + 1])
            .unwrap_err()
            .code(),
        "proto.too_large"
    );
    let huge_entry = SyncRequest::Push {
        space: SpaceId::from_bytes([1; 32]),
        entries: vec![Bytes::from(vec![1u8; 64 * 1024 + 1])],
        inbox: None,
    };
    assert_eq!(
        SyncRequest::from_bytes(&huge_entry.to_bytes())
            .unwrap_err()
            .code(),
        "proto.too_large"
    );
    let error = SyncResponse::error(messaging_proto::SyncErrorCode::Malformed, &"é".repeat(300));
    assert!(SyncResponse::from_bytes(&error.to_bytes()).is_ok());
}

#[test]
fn directory_limits() {
    for limit in [0, 65] {
        let request = DirectoryRequest {
            limit,
            after_server: None,
        };
        assert_eq!(
            DirectoryRequest::from_bytes(&request.to_bytes())
                .unwrap_err()
                .code(),
            "proto.out_of_range"
        );
    }
    let response = DirectoryResponse {
        adverts: vec![Bytes::from_static(b"a"); 65],
        more: false,
    };
    assert_eq!(
        DirectoryResponse::from_bytes(&response.to_bytes())
            .unwrap_err()
            .code(),
        "proto.too_many"
    );
}

#[test]
fn control_event_limits() {
    let author = Identity::generate(&mut rand::rng());
    let seal = |event: ControlEvent| {
        let payload = Payload {
            client_txn_id: TxnId::default(),
            body: Body::Control(event),
        };
        payload.to_bytes().map(|_| ())
    };
    let peer = BootstrapPeer {
        peer: author.user_id(),
        addrs: vec![],
    };
    assert_eq!(
        seal(ControlEvent::SetBootstrapPeers(vec![peer; 17]))
            .unwrap_err()
            .code(),
        "proto.too_many"
    );
    assert_eq!(
        seal(ControlEvent::CreateChannel(messaging_proto::ChannelSpec {
            channel_id: ChannelId::from_bytes([1; 16]),
            name: String::new(),
            topic: String::new(),
        }))
        .unwrap_err()
        .code(),
        "proto.missing_field"
    );
    assert_eq!(
        seal(ControlEvent::KeyRotation(messaging_proto::KeyRotation {
            new_epoch: 1,
            sealed_keys: vec![],
            previous_key: Bytes::from(vec![0; messaging_proto::WRAPPED_KEY_LEN]),
            part: 0,
            part_count: 1,
        }))
        .unwrap_err()
        .code(),
        "proto.out_of_range"
    );
}
