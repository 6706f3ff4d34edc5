//! Hostile traffic for the `spam` scenario, as a modified client would
//! send it:
//!
//! - **outsiders**: peers that are not members subscribe to the server's
//!   topic (its id is no secret to anyone who saw an advert or an invite)
//!   and flood it with invalid gossip, in turn: bytes that do not decode,
//!   well-formed entries whose signature is broken, and correctly signed
//!   entries of a stranger (not a member, sealed with a key of their own);
//! - **flooding members** (driven from [`crate::run`]): joined members that
//!   send valid messages far above the per-author rate limit.
//!
//! Honest members' delivery is measured beside them as in every scenario.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use identity_core::Identity;
use messaging_proto::{
    Body, ChannelId, EntryDraft, EpochKey, GossipMessage, Payload, Sealing, ServerId, SpaceId,
    Text, TxnId, VerifiedEntry,
};
use net_overlay::{GossipVerdict, Multiaddr, Overlay, OverlayEvent};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use crate::cluster::{SimError, overlay_config, peer_runtime};
use crate::link::LinkNet;

/// The three kinds of invalid gossip an outsider sends, in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Junk {
    /// Random bytes: not a `GossipMessage`.
    Garbage,
    /// A well-formed entry with one signature byte flipped.
    BrokenSignature,
    /// A correctly signed entry by someone who is not a member.
    Stranger,
}

impl Junk {
    /// The kind sent as message number `n`.
    pub fn nth(n: u64) -> Self {
        match n % 3 {
            0 => Self::Garbage,
            1 => Self::BrokenSignature,
            _ => Self::Stranger,
        }
    }
}

/// A non-member flooding a server's topic with invalid gossip.
pub struct Outsider {
    runtime: Option<tokio::runtime::Runtime>,
    /// Messages it published.
    pub sent: Arc<AtomicU64>,
}

impl Outsider {
    /// Starts outsider `index` (its place in the link model), connects it
    /// to `dial` and floods `server`'s topic at `rate_per_s` until dropped.
    pub fn start(
        net: &LinkNet,
        index: u32,
        server: ServerId,
        dial: Vec<Multiaddr>,
        rate_per_s: f64,
        seed: u64,
    ) -> Result<Self, SimError> {
        let name = format!("outsider-{index}");
        let fail = |message: String| SimError::Start {
            node: name.clone(),
            message,
        };
        let runtime = peer_runtime(&name).map_err(|err| fail(err.to_string()))?;
        let identity = Identity::generate(&mut rand::rng());
        let config = overlay_config(net, index);
        let (overlay, mut events) = runtime
            .block_on(async { Overlay::start(&identity, config) })
            .map_err(|err| fail(err.to_string()))?;
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        runtime.spawn(async move {
            for addr in dial {
                let _ = overlay.dial(addr).await;
            }
            if overlay.subscribe(server).await.is_err() {
                return;
            }
            // Answer nothing honestly: drop what others gossip to us.
            let drain = overlay.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if let OverlayEvent::Gossip { id, source, .. } = event {
                        let _ = drain.report_gossip(id, source, GossipVerdict::Ignore).await;
                    }
                }
            });
            let mut rng = StdRng::seed_from_u64(seed);
            let stranger_key = EpochKey::generate(&mut rng, 1);
            let period = Duration::from_secs_f64(1.0 / rate_per_s.max(0.001));
            let mut ticker = tokio::time::interval(period);
            for n in 0u64.. {
                ticker.tick().await;
                let data = junk(Junk::nth(n), &identity, server, &stranger_key, &mut rng);
                if overlay.publish(server, data).await.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Self {
            runtime: Some(runtime),
            sent,
        })
    }

    /// Stops it.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One invalid gossip message of `kind` for `server`.
pub fn junk(
    kind: Junk,
    stranger: &Identity,
    server: ServerId,
    key: &EpochKey,
    rng: &mut StdRng,
) -> Bytes {
    let entry = match kind {
        Junk::Garbage => None,
        Junk::BrokenSignature | Junk::Stranger => stranger_entry(stranger, server, key, rng),
    };
    match entry {
        None => {
            let len = rng.random_range(64..600);
            let mut bytes = vec![0u8; len];
            rng.fill_bytes(&mut bytes);
            Bytes::from(bytes)
        }
        Some(entry) => {
            let mut bytes = entry.encoded().to_vec();
            if kind == Junk::BrokenSignature {
                // The signature is the last field of the encoding.
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0x01;
                }
            }
            Bytes::from(GossipMessage::Entry(Bytes::from(bytes)).to_bytes())
        }
    }
}

/// A correctly signed post by a non-member in a channel that does not
/// exist, sealed with a key of its own (None if sealing failed, which a
/// well-formed draft never does).
fn stranger_entry(
    stranger: &Identity,
    server: ServerId,
    key: &EpochKey,
    rng: &mut StdRng,
) -> Option<VerifiedEntry> {
    let mut channel = [0u8; 16];
    rng.fill_bytes(&mut channel);
    let payload = Payload {
        client_txn_id: TxnId::random(&mut rand::rng()),
        body: Body::Text(Text {
            body: "spam".repeat(rng.random_range(5..100)),
            reply_to: None,
        }),
    };
    let draft = EntryDraft {
        space: Some(SpaceId::from(server)),
        log_id: server.channel_log(&ChannelId::from_bytes(channel)),
        seq: 1,
        backlink: None,
        lamport: rng.random_range(1..1_000_000),
        timestamp_ms: 1_800_000_000_000,
    };
    VerifiedEntry::seal(
        &mut rand::rng(),
        stranger,
        draft,
        &payload,
        Sealing::Encrypt(key),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_junk_is_refused_by_the_entry_decoder_or_is_a_stranger() {
        let stranger = Identity::generate(&mut rand::rng());
        let server = ServerId::from_bytes([7; 32]);
        let mut rng = StdRng::seed_from_u64(1);
        let key = EpochKey::generate(&mut rng, 1);
        let garbage = junk(Junk::Garbage, &stranger, server, &key, &mut rng);
        assert!(GossipMessage::from_bytes(&garbage).is_err());
        let broken = junk(Junk::BrokenSignature, &stranger, server, &key, &mut rng);
        let Ok(GossipMessage::Entry(bytes)) = GossipMessage::from_bytes(&broken) else {
            panic!("a broken signature still decodes as gossip");
        };
        assert!(VerifiedEntry::verify(bytes).is_err());
        let signed = junk(Junk::Stranger, &stranger, server, &key, &mut rng);
        let Ok(GossipMessage::Entry(bytes)) = GossipMessage::from_bytes(&signed) else {
            panic!("a stranger's entry decodes as gossip");
        };
        let entry = VerifiedEntry::verify(bytes).unwrap();
        assert_eq!(*entry.author(), stranger.user_id());
        assert_eq!(Junk::nth(0), Junk::Garbage);
        assert_eq!(Junk::nth(4), Junk::BrokenSignature);
        assert_eq!(Junk::nth(5), Junk::Stranger);
    }
}
