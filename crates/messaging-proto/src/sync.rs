//! The sync protocol (`/palaver/sync/1`): digests to compare what two peers
//! hold of a space, heads per log, ranges of one author's feed in chunks,
//! the genesis of a server, and pushes of entries to a replica.
//!
//! Decoding checks the encoded size first ([`MAX_SYNC_MESSAGE_BYTES`]) and
//! every count and length after; entries inside responses are carried as
//! bytes and verified one by one by the receiver.

use bytes::Bytes;
use identity_core::UserId;
use prost::Message;

use crate::check;
use crate::error::ProtoError;
use crate::ids::{EntryHash, InboxTag, LogId, ServerId, SpaceId};
use crate::limits::{
    MAX_DIGEST_LOGS, MAX_HEADS_PER_RESPONSE, MAX_INBOX_SPACES, MAX_PUSH_ENTRIES, MAX_RANGE_LIMIT,
    MAX_SIGNED_ENTRY_BYTES, MAX_SYNC_CHUNK_BYTES, MAX_SYNC_ERROR_MESSAGE_BYTES,
    MAX_SYNC_MESSAGE_BYTES,
};
use crate::pb;
use crate::pb::sync_request::Kind as PbRequest;
use crate::pb::sync_response::Kind as PbResponse;
use crate::wire_counts;

/// A sync request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncRequest {
    /// "What do you hold of this space?"
    Digest {
        /// The server or DM conversation.
        space: SpaceId,
    },
    /// "What are the authors' heads in this log?" (paged by author)
    Heads {
        /// The log.
        log: LogId,
        /// Only authors after this one.
        after_author: Option<UserId>,
    },
    /// "Send me entries of one author's feed."
    Range(RangeRequest),
    /// "Send me the genesis of this server."
    Genesis {
        /// The server.
        server: ServerId,
    },
    /// "Please store these entries."
    Push {
        /// The space they belong to.
        space: SpaceId,
        /// Encoded `SignedEntry` values (at most 64, 1 MiB in all).
        entries: Vec<Bytes>,
        /// For a DM: the recipient's inbox tag.
        inbox: Option<InboxTag>,
    },
    /// "Which DM spaces wait for this inbox?"
    Inbox {
        /// The recipient's inbox tag.
        tag: InboxTag,
    },
    /// "Up to where do you hold this author's feed of this log?" Answered
    /// with [`SyncResponse::Heads`] holding at most that author's head.
    Head {
        /// The log.
        log: LogId,
        /// The author.
        author: UserId,
    },
}

/// A request for a range of one author's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRequest {
    /// The log.
    pub log: LogId,
    /// The author.
    pub author: UserId,
    /// The first seq wanted (≥ 1).
    pub from_seq: u64,
    /// At most this many entries (1..=4,096).
    pub limit: u32,
    /// At most this many bytes (1..=1 MiB; one entry is always sent).
    pub max_bytes: u32,
}

/// A sync response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncResponse {
    /// Answer to [`SyncRequest::Digest`].
    Digest(DigestResponse),
    /// Answer to [`SyncRequest::Heads`] and [`SyncRequest::Head`].
    Heads(HeadsResponse),
    /// Answer to [`SyncRequest::Range`].
    Range(RangeResponse),
    /// Answer to [`SyncRequest::Genesis`]: the encoded genesis entry.
    Genesis(Bytes),
    /// Answer to [`SyncRequest::Push`]: one result per entry.
    Push(Vec<PushResult>),
    /// Answer to [`SyncRequest::Inbox`]: DM spaces for the inbox.
    Inbox(Vec<SpaceId>),
    /// The request was refused.
    Error(SyncError),
}

/// What a peer holds of a space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestResponse {
    /// The space.
    pub space: SpaceId,
    /// One digest per log (at most 1,024).
    pub logs: Vec<LogDigest>,
    /// Hash of the responder's folded server state, when it can read it.
    pub state_hash: Option<[u8; 32]>,
}

/// The digest of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDigest {
    /// The log.
    pub log: LogId,
    /// BLAKE3 over the sorted (author, seq, head hash) of the log.
    pub digest: [u8; 32],
    /// How many authors have entries in the log.
    pub author_count: u32,
}

/// The heads of a log, paged by author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadsResponse {
    /// The log.
    pub log: LogId,
    /// Heads sorted by author (at most 4,096).
    pub heads: Vec<Head>,
    /// More authors follow.
    pub more: bool,
}

/// The head of one author's feed in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The author.
    pub author: UserId,
    /// The latest seq.
    pub seq: u64,
    /// The hash of the latest entry.
    pub hash: EntryHash,
    /// The lowest seq still held (1 unless pruned).
    pub first_seq: u64,
}

/// A chunk of one author's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResponse {
    /// The log.
    pub log: LogId,
    /// The author.
    pub author: UserId,
    /// Encoded `SignedEntry` values in seq order.
    pub entries: Vec<Bytes>,
    /// The responder holds more after the last one sent.
    pub more: bool,
}

/// What a replica did with one pushed entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushResult {
    /// Stored now.
    Stored,
    /// Already held.
    Duplicate,
    /// Held back until the missing earlier entries arrive.
    Gap,
    /// Refused.
    Rejected,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncError {
    /// The kind of refusal.
    pub code: SyncErrorCode,
    /// Detail for humans (at most 256 bytes, never secret).
    pub message: String,
    /// When to ask again, for rate limiting.
    pub retry_after_ms: Option<u64>,
}

/// The kinds of refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncErrorCode {
    /// The request could not be decoded or broke a limit.
    Malformed,
    /// The responder does not hold what was asked for.
    NotFound,
    /// Too many requests; see `retry_after_ms`.
    RateLimited,
    /// The responder refuses to serve this space to this peer.
    Forbidden,
    /// The responder failed.
    Internal,
}

impl SyncRequest {
    /// Encodes the request.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SyncRequest::from(self).encode_to_vec()
    }

    /// Decodes and checks a request.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size("sync request", bytes.len(), MAX_SYNC_MESSAGE_BYTES)?;
        wire_counts::check(bytes, &wire_counts::SYNC_REQUEST)?;
        let message = pb::SyncRequest::decode(bytes)
            .map_err(|err| ProtoError::decode("sync request", err))?;
        Self::try_from(message)
    }
}

impl SyncResponse {
    /// Encodes the response.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SyncResponse::from(self).encode_to_vec()
    }

    /// Decodes and checks a response.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        check::encoded_size("sync response", bytes.len(), MAX_SYNC_MESSAGE_BYTES)?;
        wire_counts::check(bytes, &wire_counts::SYNC_RESPONSE)?;
        let message = pb::SyncResponse::decode(bytes)
            .map_err(|err| ProtoError::decode("sync response", err))?;
        Self::try_from(message)
    }

    /// A refusal with a code and a message (truncated to the limit).
    pub fn error(code: SyncErrorCode, message: &str) -> Self {
        let mut end = message.len().min(MAX_SYNC_ERROR_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        Self::Error(SyncError {
            code,
            message: message[..end].to_owned(),
            retry_after_ms: None,
        })
    }
}

fn entries(
    what: &'static str,
    values: Vec<Bytes>,
    max_count: usize,
) -> Result<Vec<Bytes>, ProtoError> {
    let values = check::at_most(what, values, max_count)?;
    let mut total = 0usize;
    for value in &values {
        if value.is_empty() {
            return Err(ProtoError::MissingField { what });
        }
        check::encoded_size("signed entry", value.len(), MAX_SIGNED_ENTRY_BYTES)?;
        total += value.len();
    }
    // One entry is always allowed, even past the chunk size.
    if values.len() > 1 && total > MAX_SYNC_CHUNK_BYTES + MAX_SIGNED_ENTRY_BYTES {
        return Err(ProtoError::TooLarge {
            what,
            size: total,
            limit: MAX_SYNC_CHUNK_BYTES + MAX_SIGNED_ENTRY_BYTES,
        });
    }
    Ok(values)
}

fn in_range(what: &'static str, value: u64, min: u64, max: u64) -> Result<u64, ProtoError> {
    if value < min || value > max {
        return Err(ProtoError::OutOfRange {
            what,
            value,
            min,
            max,
        });
    }
    Ok(value)
}

fn space(bytes: &[u8]) -> Result<SpaceId, ProtoError> {
    check::fixed("space id", bytes).map(SpaceId::from_bytes)
}

fn log(bytes: &[u8]) -> Result<LogId, ProtoError> {
    check::fixed("log id", bytes).map(LogId::from_bytes)
}

fn copy(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

impl TryFrom<pb::SyncRequest> for SyncRequest {
    type Error = ProtoError;

    fn try_from(value: pb::SyncRequest) -> Result<Self, ProtoError> {
        Ok(match check::required("sync request kind", value.kind)? {
            PbRequest::Digest(r) => Self::Digest {
                space: space(&r.space_id)?,
            },
            PbRequest::Heads(r) => Self::Heads {
                log: log(&r.log_id)?,
                after_author: if r.after_author.is_empty() {
                    None
                } else {
                    Some(check::user("after author", &r.after_author)?)
                },
            },
            PbRequest::Range(r) => Self::Range(RangeRequest {
                log: log(&r.log_id)?,
                author: check::user("author", &r.author)?,
                from_seq: in_range("from seq", r.from_seq, 1, u64::MAX)?,
                limit: r.limit,
                max_bytes: r.max_bytes,
            })
            .checked_range()?,
            PbRequest::Genesis(r) => Self::Genesis {
                server: ServerId::from_bytes(check::fixed("server id", &r.server_id)?),
            },
            PbRequest::Push(r) => Self::Push {
                space: space(&r.space_id)?,
                entries: entries("pushed entries", r.entries, MAX_PUSH_ENTRIES)?,
                inbox: if r.inbox_tag.is_empty() {
                    None
                } else {
                    Some(InboxTag::from_bytes(check::fixed(
                        "inbox tag",
                        &r.inbox_tag,
                    )?))
                },
            },
            PbRequest::Inbox(r) => Self::Inbox {
                tag: InboxTag::from_bytes(check::fixed("inbox tag", &r.inbox_tag)?),
            },
            PbRequest::Head(r) => Self::Head {
                log: log(&r.log_id)?,
                author: check::user("head author", &r.author)?,
            },
        })
    }
}

impl SyncRequest {
    fn checked_range(self) -> Result<Self, ProtoError> {
        if let Self::Range(range) = &self {
            in_range(
                "range limit",
                u64::from(range.limit),
                1,
                u64::from(MAX_RANGE_LIMIT),
            )?;
            in_range(
                "range max bytes",
                u64::from(range.max_bytes),
                1,
                MAX_SYNC_CHUNK_BYTES as u64,
            )?;
        }
        Ok(self)
    }
}

impl From<&SyncRequest> for pb::SyncRequest {
    fn from(value: &SyncRequest) -> Self {
        let kind = match value {
            SyncRequest::Digest { space } => PbRequest::Digest(pb::DigestRequest {
                space_id: copy(space.as_bytes()),
            }),
            SyncRequest::Heads { log, after_author } => PbRequest::Heads(pb::HeadsRequest {
                log_id: copy(log.as_bytes()),
                after_author: after_author
                    .map(|author| copy(author.as_bytes()))
                    .unwrap_or_default(),
            }),
            SyncRequest::Range(r) => PbRequest::Range(pb::RangeRequest {
                log_id: copy(r.log.as_bytes()),
                author: copy(r.author.as_bytes()),
                from_seq: r.from_seq,
                limit: r.limit,
                max_bytes: r.max_bytes,
            }),
            SyncRequest::Genesis { server } => PbRequest::Genesis(pb::GenesisRequest {
                server_id: copy(server.as_bytes()),
            }),
            SyncRequest::Push {
                space,
                entries,
                inbox,
            } => PbRequest::Push(pb::PushRequest {
                space_id: copy(space.as_bytes()),
                entries: entries.clone(),
                inbox_tag: inbox.map(|tag| copy(tag.as_bytes())).unwrap_or_default(),
            }),
            SyncRequest::Inbox { tag } => PbRequest::Inbox(pb::InboxRequest {
                inbox_tag: copy(tag.as_bytes()),
            }),
            SyncRequest::Head { log, author } => PbRequest::Head(pb::HeadRequest {
                log_id: copy(log.as_bytes()),
                author: copy(author.as_bytes()),
            }),
        };
        Self { kind: Some(kind) }
    }
}

impl TryFrom<pb::SyncResponse> for SyncResponse {
    type Error = ProtoError;

    fn try_from(value: pb::SyncResponse) -> Result<Self, ProtoError> {
        Ok(match check::required("sync response kind", value.kind)? {
            PbResponse::Digest(r) => Self::Digest(DigestResponse {
                space: space(&r.space_id)?,
                logs: check::at_most("log digests", r.logs, MAX_DIGEST_LOGS)?
                    .into_iter()
                    .map(|d| {
                        Ok(LogDigest {
                            log: log(&d.log_id)?,
                            digest: check::fixed("log digest", &d.digest)?,
                            author_count: d.author_count,
                        })
                    })
                    .collect::<Result<_, ProtoError>>()?,
                state_hash: if r.state_hash.is_empty() {
                    None
                } else {
                    Some(check::fixed("state hash", &r.state_hash)?)
                },
            }),
            PbResponse::Heads(r) => Self::Heads(HeadsResponse {
                log: log(&r.log_id)?,
                heads: check::at_most("heads", r.heads, MAX_HEADS_PER_RESPONSE)?
                    .into_iter()
                    .map(|h| {
                        let seq = in_range("head seq", h.seq, 1, u64::MAX)?;
                        Ok(Head {
                            author: check::user("head author", &h.author)?,
                            seq,
                            hash: check::hash("head hash", &h.hash)?,
                            first_seq: in_range("head first seq", h.first_seq, 1, seq)?,
                        })
                    })
                    .collect::<Result<_, ProtoError>>()?,
                more: r.more,
            }),
            PbResponse::Range(r) => Self::Range(RangeResponse {
                log: log(&r.log_id)?,
                author: check::user("author", &r.author)?,
                entries: entries("range entries", r.entries, MAX_RANGE_LIMIT as usize)?,
                more: r.more,
            }),
            PbResponse::Genesis(r) => {
                check::encoded_size("genesis", r.genesis.len(), MAX_SIGNED_ENTRY_BYTES)?;
                if r.genesis.is_empty() {
                    return Err(ProtoError::MissingField { what: "genesis" });
                }
                Self::Genesis(r.genesis)
            }
            PbResponse::Push(r) => Self::Push(
                check::at_most("push results", r.results, MAX_PUSH_ENTRIES)?
                    .into_iter()
                    .map(push_result_from_pb)
                    .collect::<Result<_, _>>()?,
            ),
            PbResponse::Inbox(r) => Self::Inbox(
                check::at_most("inbox spaces", r.spaces, MAX_INBOX_SPACES)?
                    .iter()
                    .map(|bytes| space(bytes))
                    .collect::<Result<_, _>>()?,
            ),
            PbResponse::Error(e) => {
                if e.message.len() > MAX_SYNC_ERROR_MESSAGE_BYTES {
                    return Err(ProtoError::TooLarge {
                        what: "sync error message",
                        size: e.message.len(),
                        limit: MAX_SYNC_ERROR_MESSAGE_BYTES,
                    });
                }
                Self::Error(SyncError {
                    code: error_code_from_pb(e.code)?,
                    message: e.message,
                    retry_after_ms: (e.retry_after_ms != 0).then_some(e.retry_after_ms),
                })
            }
        })
    }
}

fn push_result_from_pb(value: i32) -> Result<PushResult, ProtoError> {
    match pb::PushResult::try_from(value) {
        Ok(pb::PushResult::Stored) => Ok(PushResult::Stored),
        Ok(pb::PushResult::Duplicate) => Ok(PushResult::Duplicate),
        Ok(pb::PushResult::Gap) => Ok(PushResult::Gap),
        Ok(pb::PushResult::Rejected) => Ok(PushResult::Rejected),
        _ => Err(ProtoError::UnknownEnumValue {
            what: "push result",
            value,
        }),
    }
}

fn push_result_to_pb(value: PushResult) -> i32 {
    match value {
        PushResult::Stored => pb::PushResult::Stored as i32,
        PushResult::Duplicate => pb::PushResult::Duplicate as i32,
        PushResult::Gap => pb::PushResult::Gap as i32,
        PushResult::Rejected => pb::PushResult::Rejected as i32,
    }
}

fn error_code_from_pb(value: i32) -> Result<SyncErrorCode, ProtoError> {
    match pb::SyncErrorCode::try_from(value) {
        Ok(pb::SyncErrorCode::Malformed) => Ok(SyncErrorCode::Malformed),
        Ok(pb::SyncErrorCode::NotFound) => Ok(SyncErrorCode::NotFound),
        Ok(pb::SyncErrorCode::RateLimited) => Ok(SyncErrorCode::RateLimited),
        Ok(pb::SyncErrorCode::Forbidden) => Ok(SyncErrorCode::Forbidden),
        Ok(pb::SyncErrorCode::Internal) => Ok(SyncErrorCode::Internal),
        _ => Err(ProtoError::UnknownEnumValue {
            what: "sync error code",
            value,
        }),
    }
}

fn error_code_to_pb(value: SyncErrorCode) -> i32 {
    match value {
        SyncErrorCode::Malformed => pb::SyncErrorCode::Malformed as i32,
        SyncErrorCode::NotFound => pb::SyncErrorCode::NotFound as i32,
        SyncErrorCode::RateLimited => pb::SyncErrorCode::RateLimited as i32,
        SyncErrorCode::Forbidden => pb::SyncErrorCode::Forbidden as i32,
        SyncErrorCode::Internal => pb::SyncErrorCode::Internal as i32,
    }
}

impl From<&SyncResponse> for pb::SyncResponse {
    fn from(value: &SyncResponse) -> Self {
        let kind = match value {
            SyncResponse::Digest(r) => PbResponse::Digest(pb::DigestResponse {
                space_id: copy(r.space.as_bytes()),
                logs: r
                    .logs
                    .iter()
                    .map(|d| pb::LogDigest {
                        log_id: copy(d.log.as_bytes()),
                        digest: copy(&d.digest),
                        author_count: d.author_count,
                    })
                    .collect(),
                state_hash: r.state_hash.map(|h| copy(&h)).unwrap_or_default(),
            }),
            SyncResponse::Heads(r) => PbResponse::Heads(pb::HeadsResponse {
                log_id: copy(r.log.as_bytes()),
                heads: r
                    .heads
                    .iter()
                    .map(|h| pb::Head {
                        author: copy(h.author.as_bytes()),
                        seq: h.seq,
                        hash: copy(h.hash.as_bytes()),
                        first_seq: h.first_seq,
                    })
                    .collect(),
                more: r.more,
            }),
            SyncResponse::Range(r) => PbResponse::Range(pb::RangeResponse {
                log_id: copy(r.log.as_bytes()),
                author: copy(r.author.as_bytes()),
                entries: r.entries.clone(),
                more: r.more,
            }),
            SyncResponse::Genesis(genesis) => PbResponse::Genesis(pb::GenesisResponse {
                genesis: genesis.clone(),
            }),
            SyncResponse::Push(results) => PbResponse::Push(pb::PushResponse {
                results: results.iter().copied().map(push_result_to_pb).collect(),
            }),
            SyncResponse::Inbox(spaces) => PbResponse::Inbox(pb::InboxResponse {
                spaces: spaces.iter().map(|space| copy(space.as_bytes())).collect(),
            }),
            SyncResponse::Error(e) => PbResponse::Error(pb::SyncError {
                code: error_code_to_pb(e.code),
                message: e.message.clone(),
                retry_after_ms: e.retry_after_ms.unwrap_or(0),
            }),
        };
        Self { kind: Some(kind) }
    }
}
