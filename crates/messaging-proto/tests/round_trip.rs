//! Every message type survives encode → decode unchanged (proptest).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use identity_core::Identity;
use messaging_proto::test_utils::strategies;
use messaging_proto::{
    Body, ControlEvent, CreateServer, DirectoryRequest, DirectoryResponse, EntryDraft, EpochKey,
    GossipMessage, LogId, Payload, Sealing, ServerAdvert, SignedAdvert, SignedInvite, SpaceId,
    SyncRequest, SyncResponse, TxnId, VerifiedEntry, Visibility,
};
use proptest::prelude::*;

const NOW_MS: u64 = 1_800_000_000_000;

fn draft(space: Option<SpaceId>, seq: u64, lamport: u64) -> EntryDraft {
    EntryDraft {
        space,
        log_id: LogId::from_bytes([9; 32]),
        seq,
        backlink: (seq > 1).then(|| messaging_proto::EntryHash::from_bytes([3; 32])),
        lamport,
        timestamp_ms: NOW_MS,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn payload_round_trip(payload in strategies::payload()) {
        let bytes = payload.to_bytes().unwrap();
        prop_assert_eq!(Payload::from_bytes(&bytes).unwrap(), payload);
    }

    #[test]
    fn entry_round_trip(
        identity in strategies::identity(),
        key in strategies::epoch_key(),
        payload in strategies::payload(),
        seq in 1u64..1_000_000,
        lamport in 1u64..u64::MAX,
        space in any::<[u8; 32]>(),
    ) {
        let mut rng = rand::rng();
        let entry = VerifiedEntry::seal(
            &mut rng,
            &identity,
            draft(Some(SpaceId::from_bytes(space)), seq, lamport),
            &payload,
            Sealing::Encrypt(&key),
        )
        .unwrap();
        let received = VerifiedEntry::verify(entry.encoded().clone()).unwrap();
        prop_assert_eq!(&received, &entry);
        prop_assert_eq!(received.header().author, identity.user_id());
        prop_assert_eq!(received.open(&key).unwrap(), payload);
        prop_assert_eq!(VerifiedEntry::decode_stored(entry.encoded().clone()).unwrap(), entry);
    }

    #[test]
    fn plaintext_entry_round_trip(identity in strategies::identity(), event in strategies::control_event()) {
        let payload = Payload { client_txn_id: TxnId::default(), body: Body::Control(event.clone()) };
        let mut rng = rand::rng();
        let sealed = VerifiedEntry::seal(&mut rng, &identity, draft(Some(SpaceId::from_bytes([1; 32])), 1, 1), &payload, Sealing::Plain);
        if event.is_key_distribution() {
            let entry = VerifiedEntry::verify(sealed.unwrap().encoded().clone()).unwrap();
            prop_assert_eq!(entry.open_plain().unwrap(), payload);
        } else {
            prop_assert_eq!(sealed.unwrap_err().code(), "entry.plaintext_not_allowed");
        }
    }

    #[test]
    fn invite_round_trip(invite in strategies::signed_invite()) {
        let bytes = invite.to_bytes();
        prop_assert_eq!(SignedInvite::from_bytes(&bytes).unwrap(), invite);
    }

    #[test]
    fn advert_round_trip(
        owner in strategies::identity(),
        name in strategies::text(1, 100),
        description in strategies::text(0, 300),
        bootstrap in proptest::collection::vec(strategies::bootstrap_peer(), 0..=4),
        public in any::<bool>(),
        key in strategies::epoch_key(),
        seq in any::<u64>(),
        lifetime in 1u64..=7 * 24 * 3600 * 1000,
        member_count in any::<u32>(),
    ) {
        let mut rng = rand::rng();
        let genesis = genesis(&owner, &name);
        let advert = ServerAdvert {
            server_id: genesis.genesis_of().unwrap(),
            genesis,
            name,
            description,
            bootstrap,
            visibility: if public { Visibility::Public } else { Visibility::Private },
            join_key: public.then_some(key),
            seq,
            expires_at_ms: NOW_MS + lifetime,
            member_count,
        };
        let _ = &mut rng;
        let signed = SignedAdvert::sign(&owner, advert.clone(), NOW_MS).unwrap();
        let decoded = SignedAdvert::from_bytes(&signed.to_bytes(), NOW_MS).unwrap();
        prop_assert_eq!(decoded.advert(), &advert);
        prop_assert_eq!(&decoded, &signed);
    }

    #[test]
    fn sync_request_round_trip(request in strategies::sync_request()) {
        prop_assert_eq!(SyncRequest::from_bytes(&request.to_bytes()).unwrap(), request);
    }

    #[test]
    fn sync_response_round_trip(response in strategies::sync_response()) {
        prop_assert_eq!(SyncResponse::from_bytes(&response.to_bytes()).unwrap(), response);
    }

    #[test]
    fn directory_round_trip(
        request in strategies::directory_request(),
        response in strategies::directory_response(),
    ) {
        prop_assert_eq!(DirectoryRequest::from_bytes(&request.to_bytes()).unwrap(), request);
        prop_assert_eq!(DirectoryResponse::from_bytes(&response.to_bytes()).unwrap(), response);
    }

    #[test]
    fn gossip_round_trip(message in strategies::gossip_message()) {
        prop_assert_eq!(GossipMessage::from_bytes(&message.to_bytes()).unwrap(), message);
    }
}

/// A server genesis written by `owner`.
fn genesis(owner: &Identity, name: &str) -> VerifiedEntry {
    let mut rng = rand::rng();
    let key = EpochKey::generate(&mut rng, 1);
    let payload = Payload {
        client_txn_id: TxnId::default(),
        body: Body::Control(ControlEvent::CreateServer(CreateServer {
            name: name.to_owned(),
            description: String::new(),
            visibility: Visibility::Public,
            general_channel_id: messaging_proto::ChannelId::from_bytes([1; 16]),
            owner_name: String::new(),
        })),
    };
    VerifiedEntry::seal(
        &mut rng,
        owner,
        draft(None, 1, 1),
        &payload,
        Sealing::Encrypt(&key),
    )
    .unwrap()
}
