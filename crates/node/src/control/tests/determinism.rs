//! The fold depends on the set of records only: not on their order, not on
//! duplicates; and every allowed record leaves a trace in the state hash.

use proptest::prelude::*;
use proptest::sample::Index;

use super::scenario::scenario;
use super::*;

/// The scenario's records, some duplicated, in any order.
fn shuffled_with_duplicates() -> impl Strategy<Value = Vec<ControlRecord>> {
    let records = scenario().records.clone();
    proptest::collection::vec(any::<Index>(), 0..6).prop_flat_map(move |duplicates| {
        let mut all = records.clone();
        for duplicate in duplicates {
            all.push(records[duplicate.index(records.len())].clone());
        }
        Just(all).prop_shuffle()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_folds_to_the_same_state(records in shuffled_with_duplicates()) {
        let scene = scenario();
        let reference = scene.fold();
        let state =
            ServerState::fold(scene.server, &scene.genesis, scene.control_log, &records).unwrap();
        prop_assert_eq!(state.state_hash(), reference.state_hash());
        prop_assert_eq!(state, reference);
    }
}

#[test]
fn removing_an_allowed_record_changes_the_hash() {
    let scene = scenario();
    let full = scene.fold();
    for (index, record) in scene.records.iter().enumerate() {
        let mut fewer = scene.records.clone();
        fewer.remove(index);
        let state =
            ServerState::fold(scene.server, &scene.genesis, scene.control_log, &fewer).unwrap();
        if full.rejected().iter().any(|(hash, _)| *hash == record.hash) {
            // A denied record changed nothing, so nothing after it either.
            assert_eq!(state.state_hash(), full.state_hash(), "record {index}");
        } else {
            assert_ne!(
                state.state_hash(),
                full.state_hash(),
                "removing record {index} ({}) left the hash unchanged",
                record.event.kind()
            );
        }
    }
}

#[test]
fn applying_in_display_order_equals_folding() {
    let scene = scenario();
    let mut sorted = scene.records.clone();
    sorted.reverse();
    sorted.sort_by_key(ControlRecord::order_key);
    let mut state = ServerState::genesis(scene.server, &scene.genesis, scene.control_log).unwrap();
    for record in &sorted {
        // Denials are recorded in the state; only the result matters here.
        let _outcome = state.apply(record);
    }
    let folded = scene.fold();
    assert_eq!(state.state_hash(), folded.state_hash());
    assert_eq!(state, folded);
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn the_state_hash_encoding_is_pinned() {
    // Peers compare this hash: a change of the encoding must be deliberate
    // (and bump the version in the `hash` module).
    let genesis = Scene::new(messaging_proto::Visibility::Private);
    assert_eq!(
        hex(genesis.state.state_hash()),
        "3692c5e00dda4cc2030293b0e7c234d10c0597892dc8da45a48c43beefd4f5e1"
    );
    assert_eq!(
        hex(scenario().state.state_hash()),
        "fa9f36c9690e73dfafd992f2c8d1a8e46a1a9b4bc2ff5ff0f03e4e69fc54c0a3"
    );
}
