//! Log entries: the signed header, the encrypted payload, and the two ways
//! to get a [`VerifiedEntry`] — seal one as its author, or verify received
//! bytes.
//!
//! Verification of received bytes, in order: size limit (before decoding),
//! protobuf decode of the envelope and the header, header rules (version,
//! lengths, seq/backlink shape, genesis shape, nonce/epoch agreement), then
//! the Ed25519 signature (`verify_strict`) over the exact received bytes
//! with the domain tag `palaver/v1/entry\0`. Chain rules that need the log
//! (seq = head + 1, backlink = head hash, equivocation) and membership rules
//! that need the server state are checked by the ledger and the node.

use std::fmt;

use bytes::Bytes;
use identity_core::{Identity, Signature, UserId};
use prost::Message;
use rand::CryptoRng;

use crate::check;
use crate::error::ProtoError;
use crate::group_key::{EpochKey, NONCE_LEN};
use crate::ids::{EntryHash, LogId, ServerId, SpaceId};
use crate::limits::MAX_SIGNED_ENTRY_BYTES;
use crate::payload::{Body, Payload};
use crate::pb;

/// Domain-separation tag of entry signatures.
pub const ENTRY_SIGNATURE_CONTEXT: &[u8] = b"palaver/v1/entry\0";
/// The entry format version this build writes and reads.
pub const ENTRY_VERSION: u32 = 1;
/// Key epoch value of an unencrypted (key distribution) entry.
pub const PLAINTEXT_EPOCH: u32 = 0;

const AAD_CONTEXT: &[u8] = b"palaver/v1/entry-aad\0";

/// The signed, cleartext header of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    /// The server or DM conversation; `None` only for a server genesis.
    pub space: Option<SpaceId>,
    /// The log inside the space.
    pub log_id: LogId,
    /// Who wrote and signed the entry.
    pub author: UserId,
    /// Position in the author's feed of this log, from 1.
    pub seq: u64,
    /// Hash of the author's previous entry in this log; `None` for seq 1.
    pub backlink: Option<EntryHash>,
    /// Lamport clock of the log.
    pub lamport: u64,
    /// Author's wall clock, ms since the Unix epoch (informational).
    pub timestamp_ms: u64,
    /// Epoch of the key that encrypts the payload; 0 = not encrypted.
    pub key_epoch: u32,
}

impl EntryHeader {
    /// True for a server genesis (the one entry without a space id).
    pub fn is_genesis(&self) -> bool {
        self.space.is_none()
    }

    /// The shape rules every header obeys.
    fn check(&self) -> Result<(), ProtoError> {
        if self.seq == 0 {
            return Err(ProtoError::ZeroSeq);
        }
        match (self.seq, self.backlink) {
            (1, Some(_)) => return Err(ProtoError::UnexpectedBacklink),
            (seq, None) if seq > 1 => return Err(ProtoError::MissingBacklink { seq }),
            _ => {}
        }
        if self.is_genesis() && self.seq != 1 {
            return Err(ProtoError::GenesisNotFirst);
        }
        if self.lamport == 0 {
            return Err(ProtoError::ZeroLamport);
        }
        Ok(())
    }

    /// The associated data of the payload encryption: a fixed-layout
    /// encoding of every header field (docs/protocol.md, "Payload
    /// encryption"). Not protobuf, so that it is canonical.
    pub fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_CONTEXT.len() + 4 + 33 + 32 + 32 + 8 + 33 + 8 + 8 + 4);
        aad.extend_from_slice(AAD_CONTEXT);
        aad.extend_from_slice(&ENTRY_VERSION.to_be_bytes());
        push_optional(&mut aad, self.space.as_ref().map(SpaceId::as_bytes));
        aad.extend_from_slice(self.log_id.as_bytes());
        aad.extend_from_slice(self.author.as_bytes());
        aad.extend_from_slice(&self.seq.to_be_bytes());
        push_optional(&mut aad, self.backlink.as_ref().map(EntryHash::as_bytes));
        aad.extend_from_slice(&self.lamport.to_be_bytes());
        aad.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        aad.extend_from_slice(&self.key_epoch.to_be_bytes());
        aad
    }
}

fn push_optional(out: &mut Vec<u8>, value: Option<&[u8; 32]>) {
    match value {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
}

/// Everything an author chooses for a new entry except the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDraft {
    /// The server or DM conversation; `None` only for a server genesis.
    pub space: Option<SpaceId>,
    /// The log.
    pub log_id: LogId,
    /// The author's next seq in this log.
    pub seq: u64,
    /// Hash of the author's previous entry in this log.
    pub backlink: Option<EntryHash>,
    /// Max lamport seen in the log + 1.
    pub lamport: u64,
    /// The author's clock.
    pub timestamp_ms: u64,
}

/// How a payload is protected.
#[derive(Clone, Copy, Debug)]
pub enum Sealing<'a> {
    /// Encrypted under a group (or DM) key.
    Encrypt(&'a EpochKey),
    /// Not encrypted: only for key rotation and key grant events.
    Plain,
}

/// An entry whose structure and signature have been checked. The only ways
/// to get one are [`VerifiedEntry::seal`] (we wrote it),
/// [`VerifiedEntry::verify`] (we checked it) and
/// [`VerifiedEntry::decode_stored`] (our own ledger, which stores only
/// verified entries).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    encoded: Bytes,
    hash: EntryHash,
    header: EntryHeader,
    nonce: Option<[u8; NONCE_LEN]>,
    ciphertext: Bytes,
}

impl VerifiedEntry {
    /// Writes, encrypts and signs a new entry.
    pub fn seal<R: CryptoRng + ?Sized>(
        rng: &mut R,
        author: &Identity,
        draft: EntryDraft,
        payload: &Payload,
        sealing: Sealing<'_>,
    ) -> Result<Self, ProtoError> {
        let plain = payload.to_bytes()?;
        let key_epoch = match sealing {
            Sealing::Encrypt(key) => key.epoch(),
            Sealing::Plain => PLAINTEXT_EPOCH,
        };
        let header = EntryHeader {
            space: draft.space,
            log_id: draft.log_id,
            author: author.user_id(),
            seq: draft.seq,
            backlink: draft.backlink,
            lamport: draft.lamport,
            timestamp_ms: draft.timestamp_ms,
            key_epoch,
        };
        header.check()?;
        let (nonce, ciphertext) = match sealing {
            Sealing::Encrypt(key) => {
                if key.epoch() == PLAINTEXT_EPOCH {
                    return Err(ProtoError::OutOfRange {
                        what: "key epoch",
                        value: 0,
                        min: 1,
                        max: u64::from(u32::MAX),
                    });
                }
                let mut nonce = [0u8; NONCE_LEN];
                rng.fill_bytes(&mut nonce);
                let ciphertext = key.encrypt(&nonce, &header.aad(), &plain);
                (Some(nonce), ciphertext)
            }
            Sealing::Plain => {
                if !is_key_distribution(payload) {
                    return Err(ProtoError::PlaintextNotAllowed);
                }
                (None, plain)
            }
        };
        let entry = header_to_pb(&header, nonce.as_ref(), Bytes::from(ciphertext)).encode_to_vec();
        let signature = author.sign(ENTRY_SIGNATURE_CONTEXT, &entry);
        let encoded = pb::SignedEntry {
            entry: entry.into(),
            signature: Bytes::copy_from_slice(signature.as_bytes()),
        }
        .encode_to_vec();
        check::encoded_size("signed entry", encoded.len(), MAX_SIGNED_ENTRY_BYTES)?;
        let (verified, _, _) = Self::parse(Bytes::from(encoded))?;
        Ok(verified)
    }

    /// Decodes received bytes and verifies their structure and signature.
    pub fn verify(encoded: impl Into<Bytes>) -> Result<Self, ProtoError> {
        let (entry, entry_bytes, signature) = Self::parse(encoded.into())?;
        entry
            .header
            .author
            .verify(ENTRY_SIGNATURE_CONTEXT, &entry_bytes, &signature)
            .map_err(|_| ProtoError::BadSignature { what: "entry" })?;
        Ok(entry)
    }

    /// Decodes bytes read back from our own ledger, which only stores
    /// entries that were verified when they arrived; the signature is not
    /// checked again. Never use this for bytes from the network.
    pub fn decode_stored(encoded: impl Into<Bytes>) -> Result<Self, ProtoError> {
        Self::parse(encoded.into()).map(|(entry, _, _)| entry)
    }

    fn parse(encoded: Bytes) -> Result<(Self, Bytes, Signature), ProtoError> {
        check::encoded_size("signed entry", encoded.len(), MAX_SIGNED_ENTRY_BYTES)?;
        let hash = EntryHash::of(&encoded);
        let signed = pb::SignedEntry::decode(encoded.clone())
            .map_err(|err| ProtoError::decode("signed entry", err))?;
        if signed.entry.is_empty() {
            return Err(ProtoError::MissingField { what: "entry" });
        }
        let signature = Signature::from_bytes(check::fixed("entry signature", &signed.signature)?);
        let entry = pb::Entry::decode(signed.entry.clone())
            .map_err(|err| ProtoError::decode("entry", err))?;
        if entry.version != ENTRY_VERSION {
            return Err(ProtoError::UnsupportedVersion {
                what: "entry",
                found: entry.version,
                supported: ENTRY_VERSION,
            });
        }
        let header = EntryHeader {
            space: if entry.space_id.is_empty() {
                None
            } else {
                Some(SpaceId::from_slice(&entry.space_id)?)
            },
            log_id: LogId::from_bytes(check::fixed("log id", &entry.log_id)?),
            author: check::user("author", &entry.author)?,
            seq: entry.seq,
            backlink: check::optional_hash("backlink", &entry.backlink)?,
            lamport: entry.lamport,
            timestamp_ms: entry.timestamp_ms,
            key_epoch: entry.key_epoch,
        };
        header.check()?;
        let nonce = match (header.key_epoch, entry.nonce.len()) {
            (PLAINTEXT_EPOCH, 0) => None,
            (PLAINTEXT_EPOCH, _) => {
                return Err(ProtoError::NonceMismatch {
                    key_epoch: PLAINTEXT_EPOCH,
                    expected: "no nonce",
                });
            }
            (key_epoch, NONCE_LEN) => Some(
                check::fixed::<NONCE_LEN>("nonce", &entry.nonce).map_err(|_| {
                    ProtoError::NonceMismatch {
                        key_epoch,
                        expected: "a 24-byte nonce",
                    }
                })?,
            ),
            (key_epoch, _) => {
                return Err(ProtoError::NonceMismatch {
                    key_epoch,
                    expected: "a 24-byte nonce",
                });
            }
        };
        let verified = Self {
            encoded,
            hash,
            header,
            nonce,
            ciphertext: entry.ciphertext,
        };
        Ok((verified, signed.entry, signature))
    }

    /// Decrypts the payload with the key of the entry's epoch.
    pub fn open(&self, key: &EpochKey) -> Result<Payload, ProtoError> {
        let nonce = self.nonce.as_ref().ok_or(ProtoError::WrongKeyEpoch {
            entry_epoch: self.header.key_epoch,
            key_epoch: key.epoch(),
        })?;
        if key.epoch() != self.header.key_epoch {
            return Err(ProtoError::WrongKeyEpoch {
                entry_epoch: self.header.key_epoch,
                key_epoch: key.epoch(),
            });
        }
        let plain = key.decrypt(nonce, &self.header.aad(), &self.ciphertext)?;
        Payload::from_bytes(&plain)
    }

    /// Reads the payload of an unencrypted (key distribution) entry.
    pub fn open_plain(&self) -> Result<Payload, ProtoError> {
        if self.header.key_epoch != PLAINTEXT_EPOCH {
            return Err(ProtoError::NotPlaintext {
                key_epoch: self.header.key_epoch,
            });
        }
        let payload = Payload::from_bytes(&self.ciphertext)?;
        if !is_key_distribution(&payload) {
            return Err(ProtoError::PlaintextNotAllowed);
        }
        Ok(payload)
    }

    /// The encoded `SignedEntry`, exactly as signed and hashed.
    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }

    /// BLAKE3 hash of [`VerifiedEntry::encoded`]: the entry's id.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The cleartext header.
    pub fn header(&self) -> &EntryHeader {
        &self.header
    }

    /// The author.
    pub fn author(&self) -> &UserId {
        &self.header.author
    }

    /// The log.
    pub fn log_id(&self) -> LogId {
        self.header.log_id
    }

    /// The position in the author's feed.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// The lamport clock.
    pub fn lamport(&self) -> u64 {
        self.header.lamport
    }

    /// The space the entry belongs to. A genesis belongs to the server it
    /// creates, whose id is the genesis' own hash.
    pub fn space(&self) -> SpaceId {
        self.header
            .space
            .unwrap_or(SpaceId::from_bytes(*self.hash.as_bytes()))
    }

    /// The id of the server this entry creates, if it is a genesis.
    pub fn genesis_of(&self) -> Option<ServerId> {
        self.header
            .is_genesis()
            .then_some(ServerId::from(self.hash))
    }

    /// Size of the encoded entry in bytes.
    pub fn len(&self) -> usize {
        self.encoded.len()
    }

    /// Never true: an entry has at least a header and a signature.
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }
}

fn is_key_distribution(payload: &Payload) -> bool {
    matches!(&payload.body, Body::Control(event) if event.is_key_distribution())
}

fn header_to_pb(
    header: &EntryHeader,
    nonce: Option<&[u8; NONCE_LEN]>,
    ciphertext: Bytes,
) -> pb::Entry {
    pb::Entry {
        version: ENTRY_VERSION,
        space_id: header
            .space
            .map(|space| Bytes::copy_from_slice(space.as_bytes()))
            .unwrap_or_default(),
        log_id: Bytes::copy_from_slice(header.log_id.as_bytes()),
        author: Bytes::copy_from_slice(header.author.as_bytes()),
        seq: header.seq,
        backlink: header
            .backlink
            .map(|hash| Bytes::copy_from_slice(hash.as_bytes()))
            .unwrap_or_default(),
        lamport: header.lamport,
        timestamp_ms: header.timestamp_ms,
        key_epoch: header.key_epoch,
        nonce: nonce.map(|n| Bytes::copy_from_slice(n)).unwrap_or_default(),
        ciphertext,
    }
}

impl fmt::Debug for VerifiedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedEntry")
            .field("hash", &self.hash)
            .field("header", &self.header)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlEvent;
    use crate::payload::{Text, TxnId};

    fn text_payload(body: &str) -> Payload {
        Payload {
            client_txn_id: TxnId::default(),
            body: Body::Text(Text {
                body: body.to_owned(),
                reply_to: None,
            }),
        }
    }

    fn header(seq: u64) -> pb::Entry {
        pb::Entry {
            version: ENTRY_VERSION,
            space_id: Bytes::from_static(&[1; 32]),
            log_id: Bytes::from_static(&[2; 32]),
            author: Bytes::new(),
            seq,
            backlink: if seq > 1 {
                Bytes::from_static(&[3; 32])
            } else {
                Bytes::new()
            },
            lamport: 1,
            timestamp_ms: 5,
            key_epoch: 1,
            nonce: Bytes::from_static(&[4; 24]),
            ciphertext: Bytes::from_static(b"opaque"),
        }
    }

    /// Signs a hand-made header so that only the rule under test can fail.
    fn signed(identity: &Identity, mut entry: pb::Entry) -> Bytes {
        entry.author = Bytes::copy_from_slice(identity.user_id().as_bytes());
        let bytes = entry.encode_to_vec();
        let signature = identity.sign(ENTRY_SIGNATURE_CONTEXT, &bytes);
        pb::SignedEntry {
            entry: bytes.into(),
            signature: Bytes::copy_from_slice(signature.as_bytes()),
        }
        .encode_to_vec()
        .into()
    }

    fn code_of(identity: &Identity, entry: pb::Entry) -> &'static str {
        VerifiedEntry::verify(signed(identity, entry))
            .map(|_| "ok")
            .unwrap_or_else(|err| err.code())
    }

    #[test]
    fn each_header_rule_has_its_own_error() {
        let id = Identity::generate(&mut rand::rng());
        assert_eq!(code_of(&id, header(1)), "ok");
        assert_eq!(code_of(&id, header(2)), "ok");
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    seq: 0,
                    ..header(1)
                }
            ),
            "entry.zero_seq"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    backlink: Bytes::from_static(&[3; 32]),
                    ..header(1)
                }
            ),
            "entry.unexpected_backlink"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    backlink: Bytes::new(),
                    ..header(2)
                }
            ),
            "entry.missing_backlink"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    space_id: Bytes::new(),
                    ..header(2)
                }
            ),
            "entry.genesis_not_first"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    lamport: 0,
                    ..header(1)
                }
            ),
            "entry.zero_lamport"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    nonce: Bytes::new(),
                    ..header(1)
                }
            ),
            "entry.nonce_mismatch"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    key_epoch: 0,
                    ..header(1)
                }
            ),
            "entry.nonce_mismatch"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    version: 2,
                    ..header(1)
                }
            ),
            "proto.unsupported_version"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    log_id: Bytes::from_static(&[2; 31]),
                    ..header(1)
                }
            ),
            "proto.invalid_length"
        );
        assert_eq!(
            code_of(
                &id,
                pb::Entry {
                    space_id: Bytes::from_static(&[2; 33]),
                    ..header(1)
                }
            ),
            "proto.invalid_length"
        );
    }

    #[test]
    fn signature_must_match_author_and_bytes() {
        let alice = Identity::generate(&mut rand::rng());
        let mallory = Identity::generate(&mut rand::rng());
        // Mallory signs an entry that names Alice as author.
        let mut entry = header(1);
        entry.author = Bytes::copy_from_slice(alice.user_id().as_bytes());
        let bytes = entry.encode_to_vec();
        let signature = mallory.sign(ENTRY_SIGNATURE_CONTEXT, &bytes);
        let forged = pb::SignedEntry {
            entry: bytes.into(),
            signature: Bytes::copy_from_slice(signature.as_bytes()),
        }
        .encode_to_vec();
        assert_eq!(
            VerifiedEntry::verify(forged).unwrap_err(),
            ProtoError::BadSignature { what: "entry" }
        );
        // A signature made without the domain tag does not verify either.
        let mut entry = header(1);
        entry.author = Bytes::copy_from_slice(alice.user_id().as_bytes());
        let bytes = entry.encode_to_vec();
        let untagged = alice.sign(b"", &bytes);
        let encoded = pb::SignedEntry {
            entry: bytes.into(),
            signature: Bytes::copy_from_slice(untagged.as_bytes()),
        }
        .encode_to_vec();
        assert!(VerifiedEntry::verify(encoded).unwrap_err().is_crypto());
    }

    #[test]
    fn payload_is_bound_to_header_and_key() {
        let mut rng = rand::rng();
        let id = Identity::generate(&mut rng);
        let key = EpochKey::generate(&mut rng, 3);
        let draft = EntryDraft {
            space: Some(SpaceId::from_bytes([1; 32])),
            log_id: LogId::from_bytes([2; 32]),
            seq: 1,
            backlink: None,
            lamport: 1,
            timestamp_ms: 1,
        };
        let entry = VerifiedEntry::seal(
            &mut rng,
            &id,
            draft,
            &text_payload("hi"),
            Sealing::Encrypt(&key),
        )
        .unwrap();
        assert_eq!(entry.open(&key).unwrap(), text_payload("hi"));
        let same_epoch_other_key = EpochKey::generate(&mut rng, 3);
        assert_eq!(
            entry.open(&same_epoch_other_key),
            Err(ProtoError::DecryptFailed)
        );
        let other_epoch = EpochKey::generate(&mut rng, 4);
        assert_eq!(
            entry.open(&other_epoch).unwrap_err().code(),
            "crypto.wrong_key_epoch"
        );
        assert_eq!(
            entry.open_plain().unwrap_err().code(),
            "entry.not_plaintext"
        );

        // Moving the ciphertext under another header breaks the AEAD binding.
        let mut moved = header(1);
        moved.key_epoch = 3;
        moved.nonce = Bytes::copy_from_slice(entry.nonce.as_ref().unwrap());
        moved.ciphertext = entry.ciphertext.clone();
        moved.log_id = Bytes::from_static(&[9; 32]);
        let replanted = VerifiedEntry::verify(signed(&id, moved)).unwrap();
        assert_eq!(replanted.open(&key), Err(ProtoError::DecryptFailed));
    }

    #[test]
    fn oversized_entries_are_refused_before_decoding() {
        let mut rng = rand::rng();
        let id = Identity::generate(&mut rng);
        let key = EpochKey::generate(&mut rng, 1);
        let draft = EntryDraft {
            space: Some(SpaceId::from_bytes([1; 32])),
            log_id: LogId::from_bytes([2; 32]),
            seq: 1,
            backlink: None,
            lamport: 1,
            timestamp_ms: 1,
        };
        // The largest allowed text fits; the entry limit still bounds
        // anything bigger (a key rotation with many large sealed keys).
        let big = "😀".repeat(crate::limits::MAX_TEXT_CHARS);
        assert!(
            VerifiedEntry::seal(
                &mut rng,
                &id,
                draft.clone(),
                &text_payload(&big),
                Sealing::Encrypt(&key)
            )
            .is_ok()
        );
        let huge = vec![0u8; MAX_SIGNED_ENTRY_BYTES + 1];
        assert_eq!(
            VerifiedEntry::verify(huge).unwrap_err().code(),
            "proto.too_large"
        );
        let rotation = Payload {
            client_txn_id: TxnId::default(),
            body: Body::Control(ControlEvent::KeyRotation(crate::control::KeyRotation {
                new_epoch: 2,
                sealed_keys: vec![Bytes::from(vec![7u8; 128]); 512],
                previous_key: Bytes::from(vec![1u8; crate::control::WRAPPED_KEY_LEN]),
                part: 0,
                part_count: 1,
            })),
        };
        assert_eq!(
            VerifiedEntry::seal(&mut rng, &id, draft, &rotation, Sealing::Plain)
                .unwrap_err()
                .code(),
            "proto.too_large"
        );
    }

    #[test]
    fn genesis_is_its_own_space() {
        let mut rng = rand::rng();
        let id = Identity::generate(&mut rng);
        let key = EpochKey::generate(&mut rng, 1);
        let draft = EntryDraft {
            space: None,
            log_id: LogId::from_bytes([2; 32]),
            seq: 1,
            backlink: None,
            lamport: 1,
            timestamp_ms: 1,
        };
        let genesis = VerifiedEntry::seal(
            &mut rng,
            &id,
            draft,
            &text_payload("g"),
            Sealing::Encrypt(&key),
        )
        .unwrap();
        assert_eq!(genesis.genesis_of(), Some(ServerId::from(genesis.hash())));
        assert_eq!(genesis.space().as_bytes(), genesis.hash().as_bytes());
    }
}
