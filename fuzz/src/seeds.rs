//! Seed inputs for each target, built with the real encoders: valid values
//! drawn from messaging-proto's proptest strategies with a deterministic
//! runner, and signed entries, adverts and invites by [`crate::identity`].
//! A seed that cannot be built is left out rather than failing the run.

use bytes::Bytes;
use identity_core::{KdfParams, Keyfile, Passphrase};
use messaging_proto::test_utils::strategies;
use messaging_proto::{
    Body, ChannelId, ControlEvent, CreateServer, EntryDraft, LogId, Payload, Sealing, ServerAdvert,
    SignedAdvert, SpaceId, TxnId, VerifiedEntry, Visibility,
};
use node::api::Request;
use node::headless::socket::{ClientLine, encode_line};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::{NOW_MS, epoch_key, identity, protobuf_field_value, wrap_key};

/// How many values to draw from each strategy.
const SAMPLES: usize = 12;

/// The field number of `control` in `palaver.v1.Payload`.
pub const PAYLOAD_CONTROL_FIELD: u32 = 6;

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

/// `SAMPLES` values of `strategy`, always the same ones.
fn sample<S: Strategy>(strategy: S) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..SAMPLES)
        .filter_map(|_| strategy.new_tree(&mut runner).ok())
        .map(|tree| tree.current())
        .collect()
}

/// Entries as they travel: encrypted messages of every payload kind,
/// plaintext key distribution, and a server genesis.
pub fn entries() -> Vec<Vec<u8>> {
    let mut rng = rng();
    let author = identity();
    let key = epoch_key();
    let mut out = Vec::new();
    let mut backlink = None;
    for (i, payload) in sample(strategies::payload()).into_iter().enumerate() {
        let sealing = match &payload.body {
            Body::Control(event) if event.is_key_distribution() => Sealing::Plain,
            _ => Sealing::Encrypt(&key),
        };
        let seq = i as u64 + 1;
        let draft = EntryDraft {
            space: Some(SpaceId::from_bytes([1; 32])),
            log_id: LogId::from_bytes([2; 32]),
            seq,
            backlink,
            lamport: seq,
            timestamp_ms: NOW_MS + seq,
        };
        if let Ok(entry) = VerifiedEntry::seal(&mut rng, &author, draft, &payload, sealing) {
            backlink = Some(entry.hash());
            out.push(entry.encoded().to_vec());
        }
    }
    out.extend(genesis().map(|entry| entry.encoded().to_vec()));
    out
}

/// A server genesis by [`crate::identity`].
fn genesis() -> Option<VerifiedEntry> {
    let payload = Payload {
        client_txn_id: TxnId::default(),
        body: Body::Control(ControlEvent::CreateServer(CreateServer {
            name: "garden".into(),
            description: "plants and the people who grow them".into(),
            visibility: Visibility::Public,
            general_channel_id: ChannelId::from_bytes([5; 16]),
            owner_name: "rosa".into(),
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
    let key = epoch_key();
    VerifiedEntry::seal(
        &mut rng(),
        &identity(),
        draft,
        &payload,
        Sealing::Encrypt(&key),
    )
    .ok()
}

/// Encoded payloads of every kind, control events included.
pub fn payloads() -> Vec<Vec<u8>> {
    let control = sample(strategies::control_event())
        .into_iter()
        .map(|event| Payload {
            client_txn_id: TxnId::default(),
            body: Body::Control(event),
        });
    sample(strategies::payload())
        .into_iter()
        .chain(control)
        .filter_map(|payload| payload.to_bytes().ok())
        .collect()
}

/// Encoded `palaver.v1.ControlEvent` messages (the `control` field of a
/// payload without its key and length).
pub fn control_events() -> Vec<Vec<u8>> {
    sample(strategies::control_event())
        .into_iter()
        .filter_map(|event| {
            let payload = Payload {
                client_txn_id: TxnId::default(),
                body: Body::Control(event),
            };
            let bytes = payload.to_bytes().ok()?;
            protobuf_field_value(PAYLOAD_CONTROL_FIELD, &bytes).map(<[u8]>::to_vec)
        })
        .collect()
}

/// Sync requests of every kind.
pub fn sync_requests() -> Vec<Vec<u8>> {
    let mut out: Vec<_> = sample(strategies::sync_request())
        .iter()
        .map(|request| request.to_bytes())
        .collect();
    // A push that carries a real entry.
    if let Some(entry) = entries().into_iter().next() {
        let push = messaging_proto::SyncRequest::Push {
            space: SpaceId::from_bytes([1; 32]),
            entries: vec![Bytes::from(entry)],
            inbox: None,
        };
        out.push(push.to_bytes());
    }
    out
}

/// Frames for the framing target: the limits byte (16 KiB each way), the
/// read buffer's size byte, then a sync request's LEB128 length and
/// bytes; plus an oversized request under small limits, a prefix that is
/// not minimal, and a prefix that never ends.
pub fn frames() -> Vec<Vec<u8>> {
    use libp2p::request_response::Codec;
    let frame = |limits: u8, buffer: u8, body: &[u8]| {
        // Framed by the codec itself (any limits: writing does not check).
        let mut codec = net_overlay::FramedCodec::new(0, 0);
        let mut written = futures::io::Cursor::new(vec![limits, buffer]);
        written.set_position(2);
        let request = net_overlay::WireRequest::Message(Bytes::copy_from_slice(body));
        let framed = futures::executor::block_on(codec.write_request(
            &net_overlay::SYNC_PROTOCOL,
            &mut written,
            request,
        ));
        framed.map(|()| written.into_inner()).unwrap_or_default()
    };
    let mut out: Vec<Vec<u8>> = sync_requests()
        .iter()
        .map(|request| frame(0xee, 63, request))
        .collect();
    out.push(frame(0x44, 7, &[0x5a; 100]));
    out.push(vec![0xee, 0, 0x83, 0x80, 0x00, 1, 2, 3]);
    out.push(vec![
        0xee, 255, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    out
}

/// Sync responses of every kind.
pub fn sync_responses() -> Vec<Vec<u8>> {
    sample(strategies::sync_response())
        .iter()
        .map(|response| response.to_bytes())
        .collect()
}

/// Directory requests.
pub fn directory_requests() -> Vec<Vec<u8>> {
    sample(strategies::directory_request())
        .iter()
        .map(|request| request.to_bytes())
        .collect()
}

/// Directory responses, one of them with real adverts.
pub fn directory_responses() -> Vec<Vec<u8>> {
    let mut out: Vec<_> = sample(strategies::directory_response())
        .iter()
        .map(|response| response.to_bytes())
        .collect();
    let real = messaging_proto::DirectoryResponse {
        adverts: adverts().into_iter().map(Bytes::from).collect(),
        more: true,
    };
    out.push(real.to_bytes());
    out
}

/// Gossip messages, one of them with a real entry.
pub fn gossip_messages() -> Vec<Vec<u8>> {
    let mut out: Vec<_> = sample(strategies::gossip_message())
        .iter()
        .map(|message| message.to_bytes())
        .collect();
    out.extend(
        entries()
            .into_iter()
            .take(2)
            .map(|entry| messaging_proto::GossipMessage::Entry(Bytes::from(entry)).to_bytes()),
    );
    out
}

/// Signed adverts, public and private, valid at [`NOW_MS`].
pub fn adverts() -> Vec<Vec<u8>> {
    let Some(genesis) = genesis() else {
        return Vec::new();
    };
    let Some(server_id) = genesis.genesis_of() else {
        return Vec::new();
    };
    let bootstrap = sample(strategies::bootstrap_peer());
    let owner = identity();
    let public = ServerAdvert {
        server_id,
        genesis: genesis.clone(),
        name: "garden".into(),
        description: "plants".into(),
        bootstrap: bootstrap.iter().take(2).cloned().collect(),
        visibility: Visibility::Public,
        join_key: Some(epoch_key()),
        seq: 3,
        expires_at_ms: NOW_MS + 24 * 3600 * 1000,
        member_count: 12,
    };
    let private = ServerAdvert {
        visibility: Visibility::Private,
        join_key: None,
        bootstrap: bootstrap.iter().take(8).cloned().collect(),
        description: String::new(),
        ..public.clone()
    };
    [public, private]
        .into_iter()
        .filter_map(|advert| SignedAdvert::sign(&owner, advert, NOW_MS).ok())
        .map(|signed| signed.to_bytes())
        .collect()
}

/// Signed invites.
pub fn invites() -> Vec<Vec<u8>> {
    sample(strategies::signed_invite())
        .iter()
        .map(|invite| invite.to_bytes())
        .collect()
}

/// Inputs of the `invite_code` target: a mode byte, then text (even mode)
/// or the `SignedInvite` bytes to wrap into a code (odd mode).
pub fn invite_codes() -> Vec<Vec<u8>> {
    let signed = sample(strategies::signed_invite());
    let mut out = Vec::new();
    for invite in signed.iter().take(4) {
        let text = node::invite_code::encode(invite);
        out.push([&[0u8][..], text.as_bytes()].concat());
        out.push([&[2u8][..], text.to_ascii_uppercase().as_bytes()].concat());
        out.push([&[1u8][..], &invite.to_bytes()].concat());
    }
    out
}

/// Inputs of the `control_socket` target: a framing byte, then lines.
pub fn control_lines() -> Vec<Vec<u8>> {
    let requests = [
        Request::Identity,
        Request::Status,
        Request::CreateServer {
            name: "garden".into(),
            description: "plants \"and\" \u{1f331}".into(),
            public: true,
        },
        Request::SetBootstrapPeers {
            server: "garden".into(),
            peers: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        },
        Request::CreateInvite {
            server: "garden".into(),
            expires_in_ms: Some(86_400_000),
            max_uses: None,
        },
        Request::Send {
            server: "garden".into(),
            channel: "general".into(),
            text: "hello\nworld".into(),
            client_txn_id: Some("t1".into()),
            reply_to: None,
        },
        Request::History {
            server: "garden".into(),
            channel: "general".into(),
            limit: 50,
            before: None,
        },
        Request::GrantRole {
            server: "garden".into(),
            user: "12D3KooW".into(),
            role: "moderator".into(),
        },
    ];
    let mut lines: Vec<Vec<u8>> = requests
        .into_iter()
        .map(|request| encode_line(&ClientLine::Request { request }))
        .collect();
    lines.push(encode_line(&ClientLine::Subscribe));
    let mut out: Vec<Vec<u8>> = lines
        .iter()
        .map(|line| [&[0u8][..], line].concat())
        .collect();
    // Several lines in one stream, with a CRLF and a small line limit.
    out.push(
        [
            &[0x83u8][..],
            &lines.concat(),
            b"{\"op\":\"subscribe\"}\r\n",
        ]
        .concat(),
    );
    out
}

/// Identity files: keyring- and passphrase-protected, each as the raw
/// file (mode byte 0) and as the content the target checksums (mode 1).
pub fn keyfiles() -> Vec<Vec<u8>> {
    let mut rng = rng();
    let owner = identity();
    let mut files = vec![Keyfile::seal_with_wrap_key(&mut rng, &owner, &wrap_key())];
    files.extend(
        Keyfile::seal_with_passphrase(
            &mut rng,
            &owner,
            &Passphrase::new("correct horse"),
            KdfParams::for_tests(),
        )
        .ok(),
    );
    let mut out = Vec::new();
    for file in files {
        let content = &file[..file.len().saturating_sub(32)];
        out.push([&[1u8][..], content].concat());
        out.push([&[0u8][..], &file].concat());
    }
    out
}
