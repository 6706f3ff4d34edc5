//! `ControlRecord::from_entry` on real sealed entries.

use messaging_proto::{
    Body, EntryDraft, EpochKey, Payload, Sealing, SpaceId, Text, TxnId, VerifiedEntry, Visibility,
};

use super::*;

#[test]
fn a_record_comes_from_a_sealed_and_opened_entry() {
    let mut rng = rand::rng();
    let owner = owner();
    let key = EpochKey::generate(&mut rng, 1);
    let create = ControlEvent::CreateServer(CreateServer {
        name: "Real".into(),
        description: String::new(),
        visibility: Visibility::Private,
        general_channel_id: channel_id(1),
        owner_name: String::new(),
    });
    let control_log = LogId::from_bytes([3; 32]);
    let draft = EntryDraft {
        space: None,
        log_id: control_log,
        seq: 1,
        backlink: None,
        lamport: 1,
        timestamp_ms: T0,
    };
    let payload = Payload {
        client_txn_id: TxnId::random(&mut rng),
        body: Body::Control(create.clone()),
    };
    let sealed =
        VerifiedEntry::seal(&mut rng, &owner, draft, &payload, Sealing::Encrypt(&key)).unwrap();
    let entry = VerifiedEntry::verify(sealed.encoded().clone()).unwrap();
    let opened = entry.open(&key).unwrap();
    let genesis = ControlRecord::from_entry(&entry, &opened).unwrap();
    assert_eq!(genesis.hash, entry.hash());
    assert_eq!(genesis.author, owner.user_id());
    assert_eq!(genesis.seq, 1);
    assert_eq!(genesis.lamport, 1);
    assert_eq!(genesis.timestamp_ms, T0);
    assert_eq!(genesis.key_epoch, 1);
    assert_eq!(genesis.event, create);
    assert_eq!(genesis.order_key(), (1, *owner.user_id().as_bytes(), 1));

    let server = entry.genesis_of().unwrap();
    let state = ServerState::genesis(server, &genesis, entry.log_id()).unwrap();
    assert_eq!(state.control_log(), control_log);
    assert_eq!(state.profile().name, "Real");

    // A later control entry of the server.
    let draft = EntryDraft {
        space: Some(SpaceId::from(server)),
        log_id: control_log,
        seq: 2,
        backlink: Some(entry.hash()),
        lamport: 5,
        timestamp_ms: T0 + 10,
    };
    let payload = Payload {
        client_txn_id: TxnId::random(&mut rng),
        body: Body::Control(create_channel(2, "random")),
    };
    let sealed =
        VerifiedEntry::seal(&mut rng, &owner, draft, &payload, Sealing::Encrypt(&key)).unwrap();
    let opened = sealed.open(&key).unwrap();
    let record = ControlRecord::from_entry(&sealed, &opened).unwrap();
    assert_eq!(
        (record.seq, record.lamport, record.timestamp_ms),
        (2, 5, T0 + 10)
    );
    let state = ServerState::fold(server, &genesis, control_log, &[record]).unwrap();
    assert!(state.channel_by_name("random").is_some());
}

#[test]
fn other_payloads_are_not_records() {
    let mut rng = rand::rng();
    let key = EpochKey::generate(&mut rng, 1);
    let payload = Payload {
        client_txn_id: TxnId::random(&mut rng),
        body: Body::Text(Text {
            body: "hello".into(),
            reply_to: None,
        }),
    };
    let draft = EntryDraft {
        space: Some(SpaceId::from_bytes([1; 32])),
        log_id: LogId::from_bytes([2; 32]),
        seq: 1,
        backlink: None,
        lamport: 1,
        timestamp_ms: T0,
    };
    let entry =
        VerifiedEntry::seal(&mut rng, &owner(), draft, &payload, Sealing::Encrypt(&key)).unwrap();
    assert_eq!(
        ControlRecord::from_entry(&entry, &entry.open(&key).unwrap()),
        None
    );
}
