//! Kademlia adverts and the public directory over the memory transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{TestNode, WAIT, eventually, now_ms, public_advert, spawn_memory};
use identity_core::Identity;
use libp2p::kad::Record;
use messaging_proto::{ServerId, SignedAdvert};
use net_overlay::{OverlayError, advert_key};

const DAY_MS: u64 = 24 * 3600 * 1000;

/// A chain n0 ← n1 ← n2 ← n3: each node knows only the one before it.
async fn chain(len: usize) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = vec![spawn_memory(&[]).await];
    for index in 1..len {
        let node = spawn_memory(&[&nodes[index - 1]]).await;
        nodes.push(node);
    }
    nodes
}

async fn lookup_until_found(node: &TestNode, server: ServerId) -> net_overlay::AdvertLookup {
    eventually(WAIT, || {
        let handle = node.handle.clone();
        async move { handle.get_advert(server).await.ok() }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advert_is_found_three_hops_away_and_verified() {
    let nodes = chain(4).await;
    let owner = Identity::generate(&mut rand::rng());
    let now = now_ms();
    let advert = public_advert(&owner, "garden", 1, now + DAY_MS, now);
    let server = advert.advert().server_id;
    nodes[0].handle.put_advert(advert.clone()).await.unwrap();

    let found = lookup_until_found(&nodes[3], server).await;
    assert_eq!(found.advert, advert);
    assert_eq!(found.rejected, 0);
    assert!(found.requests >= 1);

    // A newer version replaces the older one.
    let newer = public_advert(&owner, "garden", 2, now + DAY_MS, now);
    // Same genesis is needed for the same server id: re-sign the first
    // advert's content with a higher seq.
    let mut content = advert.advert().clone();
    content.seq = 2;
    content.name = "garden (renamed)".into();
    let renamed = SignedAdvert::sign(&owner, content, now).unwrap();
    assert_ne!(newer.advert().server_id, server);
    nodes[1].handle.put_advert(renamed.clone()).await.unwrap();
    let latest = eventually(WAIT, || {
        let handle = nodes[3].handle.clone();
        async move {
            let found = handle.get_advert(server).await.ok()?;
            (found.advert.advert().seq == 2).then_some(found)
        }
    })
    .await;
    assert_eq!(latest.advert, renamed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_adverts_are_refused_by_every_node() {
    let nodes = chain(4).await;
    let attacker = spawn_memory(&[&nodes[3]]).await;
    let owner = Identity::generate(&mut rand::rng());
    let now = now_ms();

    // 1. A bad signature.
    let genuine = public_advert(&owner, "real", 1, now + DAY_MS, now);
    let mut bad_signature = genuine.to_bytes();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    let bad_signature_server = genuine.advert().server_id;
    // 2. A valid advert of another server under this server's key.
    let other = public_advert(&owner, "other", 1, now + DAY_MS, now);
    let victim = public_advert(&owner, "victim", 1, now + DAY_MS, now)
        .advert()
        .server_id;
    // 3. Expired: signed two days ago, expired yesterday.
    let expired = public_advert(&owner, "old", 1, now - DAY_MS, now - 2 * DAY_MS);
    // 4. Over the size limit.
    let oversize_server = ServerId::from_bytes([9; 32]);

    let forged = [
        (bad_signature_server, bad_signature),
        (victim, other.to_bytes()),
        (expired.advert().server_id, expired.to_bytes()),
        (oversize_server, vec![0x0a; 14 * 1024]),
    ];
    for (server, value) in &forged {
        let record = Record::new(advert_key(server), value.clone());
        // The attacker's own store holds it; honest peers must not.
        let _ = attacker.handle.put_raw_record(record).await;
    }
    for (server, _) in &forged {
        for (index, node) in nodes.iter().enumerate() {
            assert_eq!(
                node.handle.local_record(advert_key(server)).await.unwrap(),
                None,
                "node {index} stored a forged advert for {server}"
            );
            // Not found, or found (at the attacker) and refused.
            match node.handle.get_advert(*server).await {
                Err(OverlayError::AdvertNotFound(_) | OverlayError::AdvertRejected { .. }) => {}
                other => panic!("node {index} returned {other:?} for a forged advert"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_lists_the_public_servers_of_three_hosts() {
    let bootstrap = spawn_memory(&[]).await;
    let mut expected = BTreeSet::new();
    let mut hosts = Vec::new();
    let now = now_ms();
    for host_index in 0..3 {
        let host = spawn_memory(&[&bootstrap]).await;
        let mut adverts = Vec::new();
        for server_index in 0..(host_index + 1) {
            let owner = Identity::generate(&mut rand::rng());
            let advert = public_advert(
                &owner,
                &format!("host{host_index}-server{server_index}"),
                1,
                now + DAY_MS,
                now,
            );
            expected.insert(advert.advert().server_id);
            host.handle.put_advert(advert.clone()).await.unwrap();
            adverts.push(advert);
        }
        host.handle.set_directory(adverts).await.unwrap();
        hosts.push(host);
    }

    let fresh = spawn_memory(&[&bootstrap]).await;
    let listed = eventually(WAIT, || {
        let handle = fresh.handle.clone();
        let expected = expected.clone();
        async move {
            let adverts = handle.discover_public_servers(now_ms()).await.ok()?;
            let servers: BTreeSet<ServerId> =
                adverts.iter().map(|a| a.advert().server_id).collect();
            (servers == expected).then_some(adverts)
        }
    })
    .await;
    assert_eq!(listed.len(), 6);
    // Each listed advert can also be fetched and verified from the DHT.
    for advert in &listed {
        let found = fresh
            .handle
            .get_advert(advert.advert().server_id)
            .await
            .unwrap();
        assert_eq!(&found.advert, advert);
    }
}
