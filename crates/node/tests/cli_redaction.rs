//! Redaction: a whole scenario with the real binary at `RUST_LOG=trace`
//! (identity creation, a join by invite through a replica, channel
//! messages, an edit, direct messages both ways, shutdown), then a search
//! of every process's standard error for secrets and plaintext: the
//! passphrase, the invite code (whole and its base32 body), the group key
//! it carries, every message text, and each identity's seed (as hex and as
//! a `Debug` byte list, the way sled logs its keys at trace).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use cli_support::{DataDir, PASSPHRASE, QUIC, eventually, fast_timers_config};
use identity_core::{KeyStore, Passphrase, Unlock};

fn seed(dir: &DataDir) -> [u8; 32] {
    let identity = KeyStore::new(&dir.path)
        .unlock(Unlock::Passphrase(&Passphrase::new(PASSPHRASE)))
        .unwrap();
    *identity.secret_bytes()
}

/// How secret bytes would look in a log: hex (both cases) and the start of
/// a Rust `Debug` list (`[12, 34, …]`, as sled logs its keys).
fn byte_needles(what: &str, bytes: &[u8]) -> Vec<(String, String)> {
    let hex = data_encoding::HEXLOWER.encode(bytes);
    let listed = format!("{:?}", &bytes[..8]);
    vec![
        (format!("{what} (hex)"), hex.clone()),
        (format!("{what} (HEX)"), hex.to_ascii_uppercase()),
        (
            format!("{what} (byte list)"),
            listed.trim_end_matches(']').to_owned(),
        ),
    ]
}

#[test]
fn no_secret_or_message_text_reaches_the_logs_even_at_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let r = DataDir::new(tmp.path(), "relay").with_log("trace");
    let a = DataDir::new(tmp.path(), "alice").with_log("trace");
    let b = DataDir::new(tmp.path(), "bob").with_log("trace");
    r.init();
    let a_id = a.init();
    let b_id = b.init();

    let config = fast_timers_config(tmp.path());
    let mut r_node = r.start(&["--config", &config, "--listen", QUIC, "--replica-all"]);
    let r_addr = r.address();
    let mut a_node = a.start(&[
        "--config",
        &config,
        "--listen",
        QUIC,
        "--bootstrap",
        &r_addr,
    ]);
    let mut b_node = b.start(&["--config", &config, "--listen", QUIC]);

    a.json(&["server", "create", "garden"]);
    a.json(&["server", "bootstrap", "set", "garden", &r_addr]);
    let invite = a.json(&["invite", "create", "garden"])["invite"]
        .as_str()
        .unwrap()
        .to_owned();
    // One join attempt with a damaged code, then the real one from stdin.
    let damaged = format!("{}x", &invite[..invite.len() - 1]);
    assert_ne!(b.run(&["join", &damaged]).code, 0);
    let joined = b.run_with_input(&["join", "-", "--json"], &format!("{invite}\n"));
    assert_eq!(joined.code, 0, "{joined:?}");
    eventually("A to see B as a member", || {
        (a.json(&["server", "info", "garden"])["members"] == 2).then_some(())
    });

    let texts = [
        "redaction probe alpha 7f3a",
        "redaction probe bravo 19c2",
        "redaction probe edited charlie 5d0e",
        "redaction probe dm delta 88b1",
        "redaction probe dm echo 4c7f",
    ];
    let first = a.send("garden", "general", texts[0]);
    b.send("garden", "general", texts[1]);
    a.json(&["edit", "garden", "general", &first, texts[2]]);
    eventually("B to see A's edit and A to see B's message", || {
        let seen_by_b = b.texts("garden", "general");
        let seen_by_a = a.texts("garden", "general");
        (seen_by_b.contains(&texts[2].to_owned()) && seen_by_a.contains(&texts[1].to_owned()))
            .then_some(())
    });
    a.json(&["dm", "send", &b_id, texts[3]]);
    b.json(&["dm", "send", &a_id, texts[4]]);
    for (node, other, text) in [(&b, &a_id, texts[3]), (&a, &b_id, texts[4])] {
        eventually("the direct messages", || {
            node.json_lines(&["dm", "history", other])
                .iter()
                .any(|message| message["text"] == text)
                .then_some(())
        });
    }

    for (dir, node) in [(&b, &mut b_node), (&a, &mut a_node), (&r, &mut r_node)] {
        assert_eq!(dir.run(&["shutdown"]).code, 0);
        assert!(node.wait().success());
    }

    let mut needles: Vec<(String, String)> = vec![
        ("the passphrase".to_owned(), PASSPHRASE.to_owned()),
        ("the invite code".to_owned(), invite.clone()),
    ];
    let body = invite.strip_prefix("palaver://invite/").unwrap();
    needles.push(("the invite body".to_owned(), body.to_owned()));
    needles.push((
        "the invite body in capitals".to_owned(),
        body.to_ascii_uppercase(),
    ));
    needles.push((
        "part of the invite body".to_owned(),
        body[body.len() / 2..body.len() / 2 + 32].to_owned(),
    ));
    for text in texts {
        needles.push((format!("message text {text:?}"), text.to_owned()));
        needles.extend(byte_needles(
            &format!("message text {text:?}"),
            text.as_bytes(),
        ));
    }
    for dir in [&r, &a, &b] {
        needles.extend(byte_needles(&format!("{}'s seed", dir.name), &seed(dir)));
    }
    // The server's group key, which the invite carries.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let signed = node::invite_code::parse(&invite, now_ms).unwrap();
    needles.extend(byte_needles(
        "the group key",
        signed.invite().key.as_bytes(),
    ));

    let mut total = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(&r.logs).unwrap() {
        let path = entry.unwrap().path();
        let log = std::fs::read(&path).unwrap();
        total += log.len();
        files += 1;
        let log = String::from_utf8_lossy(&log);
        for (what, needle) in &needles {
            assert!(
                !log.contains(needle.as_str()),
                "{what} appears in {}",
                path.display()
            );
        }
    }
    // The scenario really logged at trace level.
    let run_log = std::fs::read_to_string(&a_node.log).unwrap();
    assert!(run_log.contains("TRACE"), "no trace lines in A's log");
    eprintln!("searched {files} log files, {total} bytes");
}
