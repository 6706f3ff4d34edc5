//! `SledLedger`-specific behaviour: private records at rest, group commit
//! under concurrent writers, and the durability modes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use identity_core::StorageKey;
use storage_ledger::conformance::{LOG, all_range, feed, rng, writer};
use storage_ledger::private::MAX_PRIVATE_SCAN;
use storage_ledger::{
    AppendOutcome, Durability, LedgerError, LedgerStore, MAX_EVIDENCE_PER_FEED, OpenOptions,
    PrivateStore, SledLedger,
};

fn key(seed: u8) -> StorageKey {
    StorageKey::from_bytes([seed; 32])
}

/// Every byte of every file under `dir`.
fn files_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for item in std::fs::read_dir(&path).unwrap() {
            let item = item.unwrap();
            if item.file_type().unwrap().is_dir() {
                stack.push(item.path());
            } else {
                out.push((
                    item.path().display().to_string(),
                    std::fs::read(item.path()).unwrap(),
                ));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn private_records_round_trip_scan_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    assert!(ledger.storage_key_matches());
    assert_eq!(ledger.get_private("txn", b"a").unwrap(), None);
    ledger
        .put_private("txn", b"a", b"one")
        .unwrap()
        .wait()
        .unwrap();
    ledger
        .put_private("txn", b"b", b"two")
        .unwrap()
        .wait()
        .unwrap();
    ledger
        .put_private("unread", b"a", b"three")
        .unwrap()
        .wait()
        .unwrap();
    ledger
        .put_private("txn", b"a", b"one again")
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        ledger.get_private("txn", b"a").unwrap().unwrap().as_slice(),
        b"one again"
    );
    assert_eq!(
        ledger
            .get_private("unread", b"a")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"three"
    );

    let mut scan: Vec<(Vec<u8>, Vec<u8>)> = ledger
        .scan_private("txn")
        .unwrap()
        .into_iter()
        .map(|(key, value)| (key, value.to_vec()))
        .collect();
    scan.sort();
    assert_eq!(
        scan,
        vec![
            (b"a".to_vec(), b"one again".to_vec()),
            (b"b".to_vec(), b"two".to_vec())
        ]
    );
    assert!(ledger.scan_private("nothing").unwrap().is_empty());

    ledger.delete_private("txn", b"a").unwrap().wait().unwrap();
    assert_eq!(ledger.get_private("txn", b"a").unwrap(), None);
    assert_eq!(ledger.scan_private("txn").unwrap().len(), 1);
    // Private records are not ledger entries.
    assert_eq!(ledger.stats().unwrap().entries, 0);
}

/// Whether "txn"/"a" was taken when `value` was offered for it.
fn taken(ledger: &SledLedger, value: &[u8]) -> bool {
    ledger
        .put_private_if_absent("txn", b"a", value)
        .unwrap()
        .is_none()
}

#[test]
fn a_private_record_put_if_absent_keeps_the_first_value() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    let first = ledger.put_private_if_absent("txn", b"a", b"first").unwrap();
    first.expect("an absent key is stored").wait().unwrap();
    assert!(taken(&ledger, b"second"), "a taken key reports it");
    assert_eq!(
        ledger.get_private("txn", b"a").unwrap().unwrap().as_slice(),
        b"first"
    );
    // The same key in another namespace is another record.
    assert!(
        ledger
            .put_private_if_absent("unread", b"a", b"other")
            .unwrap()
            .is_some()
    );
    // Deleted, the key is free again; the value survives a reopen.
    ledger.delete_private("txn", b"a").unwrap().wait().unwrap();
    ledger
        .put_private_if_absent("txn", b"a", b"third")
        .unwrap()
        .expect("a deleted key is free")
        .wait()
        .unwrap();
    drop(ledger);
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    assert_eq!(
        ledger.get_private("txn", b"a").unwrap().unwrap().as_slice(),
        b"third"
    );
    assert!(taken(&ledger, b"fourth"));
}

#[test]
fn private_scan_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SledLedger::open_with(
        dir.path(),
        &key(1),
        OpenOptions::new().durability(Durability::NoFlush),
    )
    .unwrap();
    for i in 0..=MAX_PRIVATE_SCAN {
        drop(
            ledger
                .put_private("big", &(i as u32).to_be_bytes(), b"v")
                .unwrap(),
        );
    }
    let err = ledger.scan_private("big").unwrap_err();
    assert_eq!(err.code(), "ledger.result_too_large");
    ledger
        .delete_private("big", &0u32.to_be_bytes())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(ledger.scan_private("big").unwrap().len(), MAX_PRIVATE_SCAN);
}

#[test]
fn private_data_is_not_on_disk_in_clear_and_needs_the_storage_key() {
    const SECRET_VALUE: &[u8] = b"group-key:7f3a9c1e5b2d4f6081a3c5e7";
    const SECRET_KEY: &[u8] = b"server-id-0f1e2d3c4b5a69788796a5b4";
    const NAMESPACE: &str = "group-keys-namespace";
    let dir = tempfile::tempdir().unwrap();
    let entry = feed(&mut writer(1, LOG), &mut rng(1), 1).remove(0);
    {
        let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
        ledger
            .put_private(NAMESPACE, SECRET_KEY, SECRET_VALUE)
            .unwrap()
            .wait()
            .unwrap();
        ledger.append(&entry).unwrap();
        ledger.flush().unwrap();
    }
    let files = files_bytes(dir.path());
    let all: Vec<u8> = files
        .iter()
        .flat_map(|(_, bytes)| bytes.iter().copied())
        .collect();
    // Control: the scan does see what sled writes in clear (an entry).
    assert!(
        contains(&all, entry.encoded()),
        "entry bytes not found: the scan would prove nothing"
    );
    for (name, bytes) in &files {
        for needle in [SECRET_VALUE, SECRET_KEY, NAMESPACE.as_bytes()] {
            assert!(
                !contains(bytes, needle),
                "{} found in clear in {name}",
                String::from_utf8_lossy(needle)
            );
        }
    }

    // Another storage key: the ledger opens (entries are public) but no
    // private operation works.
    {
        let ledger = SledLedger::open(dir.path(), &key(2)).unwrap();
        assert!(!ledger.storage_key_matches());
        assert_eq!(
            ledger.get(&LOG, entry.author(), 1).unwrap().as_ref(),
            Some(entry.encoded())
        );
        for err in [
            ledger.get_private(NAMESPACE, SECRET_KEY).unwrap_err(),
            ledger.scan_private(NAMESPACE).unwrap_err(),
            ledger.put_private(NAMESPACE, b"k", b"v").unwrap_err(),
            ledger.delete_private(NAMESPACE, SECRET_KEY).unwrap_err(),
        ] {
            assert!(
                matches!(err, LedgerError::PrivateDecryptFailed { .. }),
                "{err:?}"
            );
            assert_eq!(err.code(), "ledger.private_decrypt_failed");
        }
    }
    // The right key still reads it.
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    assert_eq!(
        ledger
            .get_private(NAMESPACE, SECRET_KEY)
            .unwrap()
            .unwrap()
            .as_slice(),
        SECRET_VALUE
    );
}

#[test]
fn private_bounds_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    let long_namespace = "n".repeat(storage_ledger::private::MAX_NAMESPACE_BYTES + 1);
    assert_eq!(
        ledger
            .put_private(&long_namespace, b"k", b"v")
            .unwrap_err()
            .code(),
        "ledger.private_too_large"
    );
    let big = vec![0u8; storage_ledger::private::MAX_PRIVATE_VALUE_BYTES + 1];
    assert_eq!(
        ledger.put_private("ns", b"k", &big).unwrap_err().code(),
        "ledger.private_too_large"
    );
}

#[test]
fn many_threads_appending_all_get_durable_acks() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SledLedger::open(dir.path(), &key(1)).unwrap());
    let feeds: Vec<_> = (1..=6u8)
        .map(|seed| feed(&mut writer(seed, LOG), &mut rng(u64::from(seed)), 60))
        .collect();
    std::thread::scope(|scope| {
        for (index, entries) in feeds.iter().enumerate() {
            let ledger = Arc::clone(&ledger);
            scope.spawn(move || {
                if index % 2 == 0 {
                    for entry in entries {
                        assert_eq!(ledger.append(entry).unwrap(), AppendOutcome::Appended);
                    }
                } else {
                    let tickets: Vec<_> = entries
                        .iter()
                        .map(|entry| ledger.append_deferred(entry).unwrap().1)
                        .collect();
                    for ticket in tickets {
                        ticket.wait().unwrap();
                    }
                }
            });
        }
    });
    drop(ledger);
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    for entries in &feeds {
        assert_eq!(all_range(&ledger, &LOG, entries[0].author()).len(), 60);
    }
    assert_eq!(ledger.stats().unwrap().entries, 360);
}

#[test]
fn no_flush_mode_resolves_at_once_and_explicit_flush_persists() {
    let dir = tempfile::tempdir().unwrap();
    let entries = feed(&mut writer(1, LOG), &mut rng(2), 20);
    {
        let ledger = SledLedger::open_with(
            dir.path(),
            &key(1),
            OpenOptions::new().durability(Durability::NoFlush),
        )
        .unwrap();
        for entry in &entries {
            let (_, mut ticket) = ledger.append_deferred(entry).unwrap();
            assert_eq!(ticket.try_outcome(), Some(Ok(())));
        }
        ledger.flush().unwrap();
    }
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    assert_eq!(
        ledger.head(&LOG, entries[0].author()).unwrap().unwrap().seq,
        20
    );
}

/// Reopening right after a drop (a restart in the same process) waits for
/// the lock the closing ledger's threads still hold, instead of failing.
#[test]
fn opening_waits_for_a_ledger_being_closed() {
    let dir = tempfile::tempdir().unwrap();
    let first = SledLedger::open(dir.path(), &key(1)).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let second = SledLedger::open(dir.path(), &key(1));
    closer.join().unwrap();
    assert!(second.is_ok(), "{second:?}");
}

#[test]
fn equivocation_evidence_is_bounded_per_feed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    let mut rng = rng(3);
    ledger
        .append(&feed(&mut writer(1, LOG), &mut rng, 1)[0])
        .unwrap();
    for _ in 0..MAX_EVIDENCE_PER_FEED + 4 {
        let fork = feed(&mut writer(1, LOG), &mut rng, 1).remove(0);
        assert_eq!(
            ledger.append(&fork).unwrap_err().code(),
            "ledger.equivocation"
        );
    }
    assert_eq!(
        ledger.equivocations(&LOG).unwrap().len(),
        MAX_EVIDENCE_PER_FEED
    );
}

#[test]
fn a_second_open_of_the_same_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let _ledger = SledLedger::open(dir.path(), &key(1)).unwrap();
    let err = SledLedger::open(dir.path(), &key(1)).unwrap_err();
    assert_eq!(err.code(), "ledger.storage");
}
