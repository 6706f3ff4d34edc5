//! Graceful shutdown with the real binary: every message acknowledged
//! before (or while) SIGTERM arrives is there after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cli_support::{DataDir, EXIT_NO_NODE, QUIC, eventually};

#[test]
fn sigterm_loses_no_acknowledged_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path(), "alice");
    dir.init();
    let mut node = dir.start(&["--listen", QUIC]);
    dir.json(&["server", "create", "garden"]);

    let mut acked = Vec::new();
    for index in 0..10 {
        acked.push(dir.send("garden", "general", &format!("before the signal {index}")));
    }
    // A sender keeps going while the signal arrives: whatever it got an
    // acknowledgement for must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (dir, stop, during) = (dir.clone(), stop.clone(), during.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("during the signal {index}");
                let ran = dir.run(&["send", "garden", "general", &text, "--json"]);
                if ran.code != 0 {
                    break;
                }
                acked.push(ran.json()["message_id"].as_str().unwrap().to_owned());
                during.fetch_add(1, Ordering::Relaxed);
                index += 1;
            }
            acked
        })
    };
    eventually("a few sends in flight", || {
        (during.load(Ordering::Relaxed) >= 3).then_some(())
    });
    node.signal("TERM");
    let status = node.wait();
    stop.store(true, Ordering::Relaxed);
    acked.extend(sender.join().unwrap());
    assert!(status.success(), "exit {status}:\n{}", node.log_text());
    let log = node.log_text();
    assert!(log.contains("shutting down gracefully"), "{log}");
    assert!(log.contains("palaver-node stopped"), "{log}");
    assert!(
        !dir.path.join("palaver.sock").exists(),
        "the socket is removed"
    );
    assert_eq!(dir.run(&["status"]).code, EXIT_NO_NODE);

    let _node = dir.start(&["--listen", QUIC]);
    let stored: HashSet<String> = dir
        .history("garden", "general")
        .iter()
        .map(|message| message["message_id"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    assert!(acked.len() >= 10);
}
