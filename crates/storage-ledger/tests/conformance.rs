//! Runs the conformance suite against `SledLedger`, one trial per case,
//! each in its own temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use identity_core::StorageKey;
use libtest_mimic::{Arguments, Trial};
use storage_ledger::conformance::{self, CASES};
use storage_ledger::{LedgerStore, SledLedger};

fn storage_key() -> StorageKey {
    StorageKey::from_bytes([0x42; 32])
}

fn open_at(path: &Path) -> Box<dyn LedgerStore> {
    Box::new(SledLedger::open(path, &storage_key()).unwrap())
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = CASES
        .iter()
        .map(|&(name, case)| {
            Trial::test(name, move || {
                let root = tempfile::tempdir()?;
                let next = AtomicUsize::new(0);
                let factory = || -> Box<dyn LedgerStore> {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    open_at(&root.path().join(n.to_string()))
                };
                case(&factory);
                Ok(())
            })
        })
        .collect();
    trials.push(Trial::test("reopen_restores_everything", || {
        let root = tempfile::tempdir()?;
        conformance::reopen_restores_everything(&open_at, root.path());
        Ok(())
    }));
    libtest_mimic::run(&args, trials).exit();
}
