//! Replicas: bootstrap nodes that store a server's entries as ciphertext,
//! without its key, and serve them to members who were offline. A replica
//! cannot read membership, so it checks what it can: the signature and
//! structure (on receipt, like everyone), the feed's chain (the ledger), a
//! per-author rate and a storage quota per space. DMs pushed to it are
//! accepted from authors it knows from a server it serves, and filed under
//! the recipient's inbox tag so the recipient can find them.

use identity_core::UserId;
use messaging_proto::{InboxTag, ServerId, SpaceId, VerifiedEntry};
use storage_ledger::LedgerStore;

use super::ingest::{Ingested, Source, take_token};
use super::{LocalRole, NodeCore, ServerRecord, ServerRuntime};
use crate::api::{ErrorCategory, NodeError};
use crate::config::ReplicaScope;
use crate::local_store::ns;

fn refused(code: &str, message: &str) -> Ingested {
    Ingested::Rejected(NodeError::new(ErrorCategory::RateLimited, code, message))
}

impl NodeCore {
    /// Rate and quota checks of a replica.
    fn replica_admits(&mut self, entry: &VerifiedEntry, source: Source) -> Result<(), Ingested> {
        // Something we hold already costs the author nothing.
        if matches!(self.ledger.get_by_hash(&entry.hash()), Ok(Some(_))) {
            return Err(Ingested::Duplicate);
        }
        if matches!(source, Source::Gossip(_) | Source::Push(_)) {
            let limits = &self.config.replica_limits;
            let (rate, burst) = (limits.author_rate_per_sec, limits.author_burst);
            if !take_token(&mut self.rates, entry.author(), rate, burst) {
                return Err(refused(
                    "replica.rate_limited",
                    "the author writes too fast",
                ));
            }
        }
        let used = self.space_bytes.get(&entry.space()).copied().unwrap_or(0);
        if used + entry.len() as u64 > self.config.replica_limits.quota_bytes_per_space {
            return Err(refused(
                "replica.quota_exceeded",
                "this replica's quota for the space is full",
            ));
        }
        Ok(())
    }

    pub(crate) async fn ingest_replica(
        &mut self,
        server: ServerId,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        if let Err(outcome) = self.replica_admits(&entry, source) {
            return outcome;
        }
        let is_genesis = entry.genesis_of() == Some(server);
        if let Err(outcome) = self.append_replicated(&entry, source) {
            return outcome;
        }
        if is_genesis {
            if let Some(runtime) = self.servers.get_mut(&server) {
                runtime.control_log = Some(entry.log_id());
                runtime.genesis = Some(entry);
            }
            let record = ServerRecord {
                role: LocalRole::Replica,
                joined_at_ms: self.now_ms(),
                left: false,
            };
            if let Ok(ticket) = self.store.put(ns::SERVERS, server.as_bytes(), &record) {
                let _ = ticket.await;
            }
        }
        Ingested::Accepted
    }

    fn append_replicated(&mut self, entry: &VerifiedEntry, source: Source) -> Result<(), Ingested> {
        match self.ledger.append_deferred(entry) {
            Ok((storage_ledger::AppendOutcome::Appended, _)) => {
                self.note_space_bytes(entry.space(), entry.len());
                Ok(())
            }
            Ok((storage_ledger::AppendOutcome::Duplicate, _)) => Err(Ingested::Duplicate),
            Err(storage_ledger::LedgerError::SeqGap { .. }) => {
                let _ = source;
                Err(self.hold_blocked(entry.clone()))
            }
            Err(err) => Err(Ingested::Rejected(err.into())),
        }
    }

    /// An entry of a space we do not hold yet, at a replica.
    pub(crate) async fn ingest_unknown_space_as_replica(
        &mut self,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        let space = entry.space();
        let server = ServerId::from_bytes(*space.as_bytes());
        // A new server: only with `replica-all`, and it starts with its genesis
        // or with entries whose genesis we then fetch from the sender.
        if matches!(self.config.replica, ReplicaScope::All) && entry.header().space.is_none()
            || self.wants(&server)
        {
            self.servers
                .insert(server, ServerRuntime::placeholder(server));
            // Hear its gossip and learn its members, who sync with us.
            self.connect_server(server).await;
            if let Source::Push(peer) | Source::Peer(peer) | Source::Gossip(peer) = source
                && entry.genesis_of().is_none()
            {
                self.start_sync(space, peer);
            }
            return self.ingest_replica(server, entry, source).await;
        }
        Ingested::Ignored
    }

    /// A DM pushed to a replica with its recipient's inbox tag: stored if
    /// its author is known from a server we hold.
    pub(crate) async fn ingest_replica_dm(
        &mut self,
        entry: VerifiedEntry,
        source: Source,
    ) -> Ingested {
        if !self.knows_author(entry.author()) {
            return Ingested::Rejected(NodeError::new(
                ErrorCategory::Permission,
                "replica.unknown_author",
                "this replica stores DMs only from members of servers it serves",
            ));
        }
        if let Err(outcome) = self.replica_admits(&entry, source) {
            return outcome;
        }
        match self.append_replicated(&entry, source) {
            Ok(()) => Ingested::Accepted,
            Err(outcome) => outcome,
        }
    }

    fn wants(&self, server: &ServerId) -> bool {
        match &self.config.replica {
            ReplicaScope::None => false,
            ReplicaScope::All => true,
            ReplicaScope::Servers(list) => list.contains(server),
        }
    }

    /// Whether `author` has written in the control log of a server we hold
    /// (so a DM from them is not spam from a stranger).
    fn knows_author(&self, author: &UserId) -> bool {
        self.servers.values().any(|runtime| {
            runtime
                .control_log
                .is_some_and(|log| matches!(self.ledger.head(&log, author), Ok(Some(_))))
        })
    }

    /// Files a DM space under its recipient's inbox tag (replicas).
    pub(crate) fn file_in_inbox(&mut self, tag: InboxTag, space: SpaceId) {
        if !self.is_replica() {
            return;
        }
        let spaces = self.inbox.entry(tag).or_default();
        if spaces.len() >= messaging_proto::limits::MAX_INBOX_SPACES || !spaces.insert(space) {
            return;
        }
        let mut key = tag.as_bytes().to_vec();
        key.extend_from_slice(space.as_bytes());
        let _ = self.store.put(ns::INBOX, &key, &());
    }
}
