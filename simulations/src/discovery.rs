//! Discovery probes: fresh peers that know only the bootstrap nodes look up
//! the (public) server's advert in the DHT and list the public directory,
//! as a new user's "Discover" and "join a public server" do.

use std::time::{Duration, Instant};

use identity_core::Identity;
use messaging_proto::ServerId;
use net_overlay::{KadMode, Multiaddr, Overlay};
use serde::{Deserialize, Serialize};

use crate::cluster::{SimError, overlay_config, peer_runtime};
use crate::link::LinkNet;

/// How long one lookup may take before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

/// What the probes found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryResult {
    /// Probes run (one fresh peer each).
    pub visitors: u32,
    /// Probes whose DHT lookup found a valid advert of the server.
    pub advert_found: u32,
    /// Kademlia requests each successful lookup sent (its cost; libp2p
    /// reports requests, not hops).
    pub advert_requests: Vec<u32>,
    /// Milliseconds each successful lookup took.
    pub advert_ms: Vec<f64>,
    /// Probes whose directory listing contained the server.
    pub directory_found: u32,
    /// Milliseconds each successful directory listing took.
    pub directory_ms: Vec<f64>,
}

/// Runs `visitors` probes one after another, each a fresh DHT client at
/// link-model index `first_index + i` that knows only `bootstrap`.
pub fn probe(
    net: &LinkNet,
    first_index: u32,
    visitors: u32,
    server: ServerId,
    bootstrap: &[Multiaddr],
) -> Result<DiscoveryResult, SimError> {
    let mut result = DiscoveryResult {
        visitors,
        ..DiscoveryResult::default()
    };
    for i in 0..visitors {
        let index = first_index + i;
        let fail = |message: String| SimError::Start {
            node: format!("visitor-{index}"),
            message,
        };
        let runtime =
            peer_runtime(&format!("visitor-{index}")).map_err(|err| fail(err.to_string()))?;
        let mut config = overlay_config(net, index);
        config.kad_mode = KadMode::Client;
        config.bootstrap = bootstrap.to_vec();
        let identity = Identity::generate(&mut rand::rng());
        runtime.block_on(async {
            let (overlay, mut events) =
                Overlay::start(&identity, config).map_err(|err| fail(err.to_string()))?;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            // Wait (briefly) for a bootstrap connection, as an app does.
            let connected_by = Instant::now() + Duration::from_secs(5);
            while Instant::now() < connected_by {
                if overlay
                    .status()
                    .await
                    .is_ok_and(|status| !status.connected_peers.is_empty())
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let started = Instant::now();
            if let Ok(Ok(lookup)) =
                tokio::time::timeout(LOOKUP_TIMEOUT, overlay.get_advert(server)).await
                && lookup.advert.advert().server_id == server
            {
                result.advert_found += 1;
                result.advert_requests.push(lookup.requests);
                result.advert_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            let started = Instant::now();
            if let Ok(Ok(adverts)) =
                tokio::time::timeout(LOOKUP_TIMEOUT, overlay.discover_public_servers(now_ms()))
                    .await
                && adverts
                    .iter()
                    .any(|advert| advert.advert().server_id == server)
            {
                result.directory_found += 1;
                result
                    .directory_ms
                    .push(started.elapsed().as_secs_f64() * 1e3);
            }
            let _ = overlay.shutdown().await;
            Ok::<(), SimError>(())
        })?;
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    Ok(result)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
