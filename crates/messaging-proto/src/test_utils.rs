//! Helpers for tests in this and other crates (feature `test-utils`):
//! [`FeedWriter`] writes valid hash-linked feeds, and the `strategies`
//! module has proptest strategies for every domain type.

use identity_core::Identity;
use rand::CryptoRng;

use crate::entry::{EntryDraft, Sealing, VerifiedEntry};
use crate::group_key::EpochKey;
use crate::ids::{EntryHash, LogId, SpaceId};
use crate::payload::{Body, Payload, Text, TxnId};

/// Writes one author's feed of one log: each call to
/// [`FeedWriter::text`] seals the next entry with the right seq, backlink
/// and lamport.
pub struct FeedWriter {
    identity: Identity,
    space: SpaceId,
    log: LogId,
    key: EpochKey,
    seq: u64,
    last: Option<EntryHash>,
    lamport: u64,
    timestamp_ms: u64,
}

impl FeedWriter {
    /// A feed of `identity` in `log` of `space`, encrypted with `key`.
    pub fn new(identity: Identity, space: SpaceId, log: LogId, key: EpochKey) -> Self {
        Self {
            identity,
            space,
            log,
            key,
            seq: 0,
            last: None,
            lamport: 0,
            timestamp_ms: 1_700_000_000_000,
        }
    }

    /// The author.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The log.
    pub fn log(&self) -> LogId {
        self.log
    }

    /// The space.
    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// Continues an existing feed after `seq` / `last` (e.g. after a restart).
    pub fn resume(&mut self, seq: u64, last: Option<EntryHash>, lamport: u64) {
        self.seq = seq;
        self.last = last;
        self.lamport = lamport;
    }

    /// Makes the next entry take a lamport clock of at least `lamport`
    /// (to interleave with other authors).
    pub fn observe_lamport(&mut self, lamport: u64) {
        self.lamport = self.lamport.max(lamport);
    }

    /// Seals the next entry of the feed with a text message.
    pub fn text<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, body: &str) -> VerifiedEntry {
        let payload = Payload {
            client_txn_id: TxnId::random(rng),
            body: Body::Text(Text {
                body: body.to_owned(),
                reply_to: None,
            }),
        };
        self.payload(rng, &payload)
    }

    /// Seals the next entry of the feed with any payload.
    ///
    /// # Panics
    /// If the payload breaks a protocol limit (a bug in the test).
    #[allow(clippy::expect_used)]
    pub fn payload<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        payload: &Payload,
    ) -> VerifiedEntry {
        self.seq += 1;
        self.lamport += 1;
        self.timestamp_ms += 1;
        let draft = EntryDraft {
            space: Some(self.space),
            log_id: self.log,
            seq: self.seq,
            backlink: self.last,
            lamport: self.lamport,
            timestamp_ms: self.timestamp_ms,
        };
        let entry = VerifiedEntry::seal(
            rng,
            &self.identity,
            draft,
            payload,
            Sealing::Encrypt(&self.key),
        )
        .expect("test payload within limits");
        self.last = Some(entry.hash());
        entry
    }
}

/// proptest strategies for every domain type. Values are valid by
/// construction (within every limit), so that round trips must succeed.
pub mod strategies {
    use bytes::Bytes;
    use identity_core::{Identity, UserId};
    use multiaddr::Multiaddr;
    use proptest::collection::vec;
    use proptest::prelude::*;

    use crate::common::{BootstrapPeer, Role, Visibility};
    use crate::control::{
        ChannelSpec, ControlEvent, CreateServer, FeedCut, InviteIssued, Join, KeyGrant,
        KeyRotation, ServerProfile, WRAPPED_KEY_LEN,
    };
    use crate::directory::{DirectoryRequest, DirectoryResponse};
    use crate::gossip::GossipMessage;
    use crate::group_key::EpochKey;
    use crate::ids::{ChannelId, EntryHash, InboxTag, InviteId, LogId, ServerId, SpaceId};
    use crate::invite::{Invite, SignedInvite};
    use crate::payload::{Body, Payload, Text, TxnId};
    use crate::sync::{
        DigestResponse, Head, HeadsResponse, LogDigest, PushResult, RangeRequest, RangeResponse,
        SyncError, SyncErrorCode, SyncRequest, SyncResponse,
    };

    /// An identity from a random seed.
    pub fn identity() -> impl Strategy<Value = Identity> {
        any::<[u8; 32]>().prop_map(|seed| Identity::from_secret_bytes(&seed))
    }

    /// A valid user id.
    pub fn user() -> impl Strategy<Value = UserId> {
        identity().prop_map(|identity| identity.user_id())
    }

    /// Any entry hash.
    pub fn hash() -> impl Strategy<Value = EntryHash> {
        any::<[u8; 32]>().prop_map(EntryHash::from_bytes)
    }

    /// Any channel id.
    pub fn channel() -> impl Strategy<Value = ChannelId> {
        any::<[u8; 16]>().prop_map(ChannelId::from_bytes)
    }

    /// Any epoch key of epoch 1..=1000.
    pub fn epoch_key() -> impl Strategy<Value = EpochKey> {
        (1u32..=1000, any::<[u8; 32]>()).prop_map(|(epoch, key)| EpochKey::from_bytes(epoch, key))
    }

    /// Text of `min..=max` printable characters (any script, emoji included).
    pub fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("\\PC{{{min},{max}}}")).unwrap_or_else(|_| {
            proptest::string::string_regex("a").unwrap_or_else(|_| unreachable!())
        })
    }

    /// A dialable multiaddr of the kinds Palaver uses.
    pub fn multiaddr() -> impl Strategy<Value = Multiaddr> {
        let ip = (any::<[u8; 4]>(), any::<u16>());
        prop_oneof![
            ip.prop_map(|(ip, port)| format!(
                "/ip4/{}.{}.{}.{}/udp/{port}/quic-v1",
                ip[0], ip[1], ip[2], ip[3]
            )),
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| format!(
                "/ip4/{}.{}.{}.{}/tcp/{port}",
                ip[0], ip[1], ip[2], ip[3]
            )),
            ("[a-z]{1,20}", any::<u16>())
                .prop_map(|(name, port)| format!("/dns4/{name}.example/tcp/{port}")),
        ]
        .prop_map(|text| text.parse().unwrap_or_else(|_| Multiaddr::empty()))
    }

    /// A bootstrap peer with up to 8 addresses.
    pub fn bootstrap_peer() -> impl Strategy<Value = BootstrapPeer> {
        (user(), vec(multiaddr(), 0..=8)).prop_map(|(peer, addrs)| BootstrapPeer { peer, addrs })
    }

    /// Any role.
    pub fn role() -> impl Strategy<Value = Role> {
        prop_oneof![
            Just(Role::Member),
            Just(Role::Moderator),
            Just(Role::Admin),
            Just(Role::Owner)
        ]
    }

    /// Any visibility.
    pub fn visibility() -> impl Strategy<Value = Visibility> {
        prop_oneof![Just(Visibility::Private), Just(Visibility::Public)]
    }

    fn bytes(min: usize, max: usize) -> impl Strategy<Value = Bytes> {
        vec(any::<u8>(), min..=max).prop_map(Bytes::from)
    }

    /// A client transaction id.
    pub fn txn_id() -> impl Strategy<Value = TxnId> {
        vec(any::<u8>(), 0..=32).prop_map(|bytes| TxnId::new(bytes).unwrap_or_default())
    }

    /// A signed invite.
    pub fn signed_invite() -> impl Strategy<Value = SignedInvite> {
        (
            identity(),
            any::<[u8; 32]>(),
            text(1, 100),
            vec(bootstrap_peer(), 0..=4),
            epoch_key(),
            proptest::option::of(1u64..),
            proptest::option::of(1u32..),
            any::<[u8; 16]>(),
            any::<u64>(),
        )
            .prop_map(
                |(
                    inviter,
                    server,
                    name,
                    bootstrap,
                    key,
                    expires_at_ms,
                    max_uses,
                    id,
                    issued_at_ms,
                )| {
                    let invite = Invite {
                        server_id: ServerId::from_bytes(server),
                        server_name: name,
                        bootstrap,
                        key,
                        inviter: inviter.user_id(),
                        expires_at_ms,
                        max_uses,
                        invite_id: InviteId::from_bytes(id),
                        issued_at_ms,
                    };
                    SignedInvite::sign(&inviter, invite).unwrap_or_else(|err| panic!("{err}"))
                },
            )
    }

    fn feed_cuts() -> impl Strategy<Value = Vec<FeedCut>> {
        vec(
            (any::<[u8; 32]>(), any::<u64>()).prop_map(|(log, seq)| FeedCut {
                log: LogId::from_bytes(log),
                seq,
            }),
            0..=8,
        )
    }

    fn channel_spec() -> impl Strategy<Value = ChannelSpec> {
        (channel(), text(1, 64), text(0, 500)).prop_map(|(channel_id, name, topic)| ChannelSpec {
            channel_id,
            name,
            topic,
        })
    }

    /// Any control event.
    pub fn control_event() -> impl Strategy<Value = ControlEvent> {
        prop_oneof![
            (
                text(1, 100),
                text(0, 1000),
                visibility(),
                channel(),
                text(0, 64)
            )
                .prop_map(
                    |(name, description, visibility, general_channel_id, owner_name)| {
                        ControlEvent::CreateServer(CreateServer {
                            name,
                            description,
                            visibility,
                            general_channel_id,
                            owner_name,
                        })
                    }
                ),
            channel_spec().prop_map(ControlEvent::CreateChannel),
            channel_spec().prop_map(ControlEvent::RenameChannel),
            channel().prop_map(|channel_id| ControlEvent::DeleteChannel { channel_id }),
            (
                any::<[u8; 16]>(),
                proptest::option::of(1u64..),
                proptest::option::of(1u32..)
            )
                .prop_map(|(id, expires_at_ms, max_uses)| ControlEvent::InviteIssued(
                    InviteIssued {
                        invite_id: InviteId::from_bytes(id),
                        expires_at_ms,
                        max_uses,
                    }
                )),
            any::<[u8; 16]>().prop_map(|id| ControlEvent::InviteRevoked {
                invite_id: InviteId::from_bytes(id)
            }),
            (proptest::option::of(signed_invite()), text(1, 64)).prop_map(
                |(invite, display_name)| {
                    ControlEvent::Join(Box::new(Join {
                        invite,
                        display_name,
                    }))
                }
            ),
            feed_cuts().prop_map(|cut| ControlEvent::Leave { cut }),
            (user(), text(0, 500), feed_cuts()).prop_map(|(member, reason, cut)| {
                ControlEvent::Kick {
                    member,
                    reason,
                    cut,
                }
            }),
            (user(), text(0, 500), feed_cuts()).prop_map(|(member, reason, cut)| {
                ControlEvent::Ban {
                    member,
                    reason,
                    cut,
                }
            }),
            user().prop_map(|member| ControlEvent::Unban { member }),
            (user(), role()).prop_map(|(member, role)| ControlEvent::GrantRole { member, role }),
            (user(), role()).prop_map(|(member, role)| ControlEvent::RevokeRole { member, role }),
            (
                2u32..,
                vec(bytes(1, 128), 0..=16),
                bytes(WRAPPED_KEY_LEN, WRAPPED_KEY_LEN),
                1u32..=64
            )
                .prop_flat_map(|(new_epoch, sealed_keys, previous_key, part_count)| {
                    (0..part_count).prop_map(move |part| {
                        ControlEvent::KeyRotation(KeyRotation {
                            new_epoch,
                            sealed_keys: sealed_keys.clone(),
                            previous_key: previous_key.clone(),
                            part,
                            part_count,
                        })
                    })
                }),
            (1u32.., user(), bytes(1, 128)).prop_map(|(epoch, member, sealed_key)| {
                ControlEvent::KeyGrant(KeyGrant {
                    epoch,
                    member,
                    sealed_key,
                })
            }),
            vec(bootstrap_peer(), 0..=16).prop_map(ControlEvent::SetBootstrapPeers),
            (channel(), hash(), text(0, 500)).prop_map(|(channel_id, target, reason)| {
                ControlEvent::ModeratorRedact {
                    channel_id,
                    target,
                    reason,
                }
            }),
            (text(1, 100), text(0, 1000), visibility()).prop_map(
                |(name, description, visibility)| {
                    ControlEvent::UpdateServerProfile(ServerProfile {
                        name,
                        description,
                        visibility,
                    })
                }
            ),
        ]
    }

    /// Any payload body.
    pub fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            (text(1, 5000), proptest::option::of(hash()))
                .prop_map(|(body, reply_to)| Body::Text(Text { body, reply_to })),
            (hash(), text(1, 5000)).prop_map(|(target, body)| Body::Edit { target, body }),
            hash().prop_map(|target| Body::Redact { target }),
            (hash(), text(1, 16), any::<bool>()).prop_map(|(target, emoji, remove)| {
                Body::Reaction {
                    target,
                    emoji,
                    remove,
                }
            }),
            control_event().prop_map(Body::Control),
        ]
    }

    /// Any payload.
    pub fn payload() -> impl Strategy<Value = Payload> {
        (txn_id(), body()).prop_map(|(client_txn_id, body)| Payload {
            client_txn_id,
            body,
        })
    }

    fn space() -> impl Strategy<Value = SpaceId> {
        any::<[u8; 32]>().prop_map(SpaceId::from_bytes)
    }

    fn log() -> impl Strategy<Value = LogId> {
        any::<[u8; 32]>().prop_map(LogId::from_bytes)
    }

    fn entries(max: usize) -> impl Strategy<Value = Vec<Bytes>> {
        vec(bytes(1, 512), 0..=max)
    }

    /// Any sync request.
    pub fn sync_request() -> impl Strategy<Value = SyncRequest> {
        prop_oneof![
            space().prop_map(|space| SyncRequest::Digest { space }),
            (log(), proptest::option::of(user()))
                .prop_map(|(log, after_author)| SyncRequest::Heads { log, after_author }),
            (log(), user()).prop_map(|(log, author)| SyncRequest::Head { log, author }),
            (log(), user(), 1u64.., 1u32..=4096, 1u32..=1_048_576).prop_map(
                |(log, author, from_seq, limit, max_bytes)| SyncRequest::Range(RangeRequest {
                    log,
                    author,
                    from_seq,
                    limit,
                    max_bytes,
                })
            ),
            any::<[u8; 32]>().prop_map(|id| SyncRequest::Genesis {
                server: ServerId::from_bytes(id)
            }),
            (
                space(),
                entries(64),
                proptest::option::of(any::<[u8; 32]>())
            )
                .prop_map(|(space, entries, inbox)| SyncRequest::Push {
                    space,
                    entries,
                    inbox: inbox.map(InboxTag::from_bytes),
                }),
            any::<[u8; 32]>().prop_map(|tag| SyncRequest::Inbox {
                tag: InboxTag::from_bytes(tag)
            }),
        ]
    }

    fn head() -> impl Strategy<Value = Head> {
        (user(), 1u64.., hash()).prop_flat_map(|(author, seq, hash)| {
            (1..=seq).prop_map(move |first_seq| Head {
                author,
                seq,
                hash,
                first_seq,
            })
        })
    }

    fn push_result() -> impl Strategy<Value = PushResult> {
        prop_oneof![
            Just(PushResult::Stored),
            Just(PushResult::Duplicate),
            Just(PushResult::Gap),
            Just(PushResult::Rejected)
        ]
    }

    fn error_code() -> impl Strategy<Value = SyncErrorCode> {
        prop_oneof![
            Just(SyncErrorCode::Malformed),
            Just(SyncErrorCode::NotFound),
            Just(SyncErrorCode::RateLimited),
            Just(SyncErrorCode::Forbidden),
            Just(SyncErrorCode::Internal)
        ]
    }

    /// Any sync response.
    pub fn sync_response() -> impl Strategy<Value = SyncResponse> {
        prop_oneof![
            (
                space(),
                vec(
                    (log(), any::<[u8; 32]>(), any::<u32>()).prop_map(
                        |(log, digest, author_count)| {
                            LogDigest {
                                log,
                                digest,
                                author_count,
                            }
                        }
                    ),
                    0..=32
                ),
                proptest::option::of(any::<[u8; 32]>())
            )
                .prop_map(|(space, logs, state_hash)| SyncResponse::Digest(
                    DigestResponse {
                        space,
                        logs,
                        state_hash
                    }
                )),
            (log(), vec(head(), 0..=32), any::<bool>()).prop_map(|(log, heads, more)| {
                SyncResponse::Heads(HeadsResponse { log, heads, more })
            }),
            (log(), user(), entries(32), any::<bool>()).prop_map(|(log, author, entries, more)| {
                SyncResponse::Range(RangeResponse {
                    log,
                    author,
                    entries,
                    more,
                })
            }),
            bytes(1, 1024).prop_map(SyncResponse::Genesis),
            vec(push_result(), 0..=64).prop_map(SyncResponse::Push),
            vec(space(), 0..=32).prop_map(SyncResponse::Inbox),
            vec(space(), 0..=32).prop_map(SyncResponse::Inbox),
            (error_code(), "[ -~]{0,256}", proptest::option::of(1u64..)).prop_map(
                |(code, message, retry_after_ms)| SyncResponse::Error(SyncError {
                    code,
                    message,
                    retry_after_ms,
                })
            ),
        ]
    }

    /// Any directory request.
    pub fn directory_request() -> impl Strategy<Value = DirectoryRequest> {
        (1u32..=64, proptest::option::of(any::<[u8; 32]>())).prop_map(|(limit, after)| {
            DirectoryRequest {
                limit,
                after_server: after.map(ServerId::from_bytes),
            }
        })
    }

    /// Any directory response (advert bytes are opaque at this layer).
    pub fn directory_response() -> impl Strategy<Value = DirectoryResponse> {
        (vec(bytes(1, 2048), 0..=8), any::<bool>())
            .prop_map(|(adverts, more)| DirectoryResponse { adverts, more })
    }

    /// Any gossip message.
    pub fn gossip_message() -> impl Strategy<Value = GossipMessage> {
        bytes(1, 4096).prop_map(GossipMessage::Entry)
    }
}
