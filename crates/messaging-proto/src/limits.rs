//! Size and count limits of the v1 protocol. Every decoder checks these
//! before it allocates in proportion to a length that came from outside.

/// Largest encoded `SignedEntry`: 64 KiB.
pub const MAX_SIGNED_ENTRY_BYTES: usize = 64 * 1024;
/// Longest message text, in characters (Unicode scalar values).
pub const MAX_TEXT_CHARS: usize = 5_000;
/// Longest `client_txn_id`, in bytes.
pub const MAX_TXN_ID_BYTES: usize = 32;
/// Longest reaction, in bytes of UTF-8.
pub const MAX_REACTION_BYTES: usize = 64;
/// Longest server name, in characters.
pub const MAX_SERVER_NAME_CHARS: usize = 100;
/// Longest server description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Longest channel name, in characters.
pub const MAX_CHANNEL_NAME_CHARS: usize = 64;
/// Longest channel topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 500;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest kick/ban/redaction reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Most sealed keys in one `KeyRotation` part.
pub const MAX_SEALED_KEYS_PER_PART: usize = 512;
/// Most parts of one key rotation.
pub const MAX_ROTATION_PARTS: u32 = 64;
/// Largest sealed key (sealed box of a 32-byte key plus overhead, with room).
pub const MAX_SEALED_KEY_BYTES: usize = 128;
/// Most peers in a server's bootstrap list.
pub const MAX_BOOTSTRAP_PEERS: usize = 16;
/// Most peers in an invite.
pub const MAX_INVITE_BOOTSTRAP_PEERS: usize = 4;
/// Most peers in an advert.
pub const MAX_ADVERT_BOOTSTRAP_PEERS: usize = 8;
/// Most addresses per bootstrap peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// Longest multiaddr string.
pub const MAX_ADDR_BYTES: usize = 256;
/// Largest encoded `SignedInvite`.
pub const MAX_SIGNED_INVITE_BYTES: usize = 4 * 1024;
/// Largest encoded `SignedAdvert` (Kademlia packets are 16 KiB at most, and
/// the advert embeds the genesis entry).
pub const MAX_SIGNED_ADVERT_BYTES: usize = 12 * 1024;
/// Longest an advert may stay valid after `now`.
pub const MAX_ADVERT_LIFETIME_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// How far apart two peers' clocks may be (each off by up to ±5 minutes)
/// for every check that compares a time one peer wrote with another's
/// clock: an invite's expiry (judged by the joiner), an advert's expiry
/// bound (judged by every reader). Entry timestamps are never checked
/// against a clock; they are shown, not used for order.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;
/// Largest encoded sync request or response.
pub const MAX_SYNC_MESSAGE_BYTES: usize = 1024 * 1024 + 64 * 1024;
/// Most bytes of entries in one range response or push request.
pub const MAX_SYNC_CHUNK_BYTES: usize = 1024 * 1024;
/// Most log digests in one digest response.
pub const MAX_DIGEST_LOGS: usize = 1_024;
/// Most heads in one heads response.
pub const MAX_HEADS_PER_RESPONSE: usize = 4_096;
/// Most entries asked for in one range request.
pub const MAX_RANGE_LIMIT: u32 = 4_096;
/// Most feed cuts in a kick, ban or leave.
pub const MAX_FEED_CUTS: usize = 1_024;
/// Most DM spaces in one inbox response.
pub const MAX_INBOX_SPACES: usize = 1_024;
/// Most entries in one push request.
pub const MAX_PUSH_ENTRIES: usize = 64;
/// Longest sync error message, in bytes.
pub const MAX_SYNC_ERROR_MESSAGE_BYTES: usize = 256;
/// Most adverts in one directory response.
pub const MAX_DIRECTORY_ADVERTS: usize = 64;
/// Largest encoded directory request.
pub const MAX_DIRECTORY_REQUEST_BYTES: usize = 1024;
/// Largest encoded directory response.
pub const MAX_DIRECTORY_RESPONSE_BYTES: usize =
    MAX_DIRECTORY_ADVERTS * (MAX_SIGNED_ADVERT_BYTES + 8);
/// Largest encoded gossip message.
pub const MAX_GOSSIP_MESSAGE_BYTES: usize = MAX_SIGNED_ENTRY_BYTES + 16;
