//! Control-socket and command errors with the real binary: no node
//! running, a second `run` on the same data directory, malformed and
//! over-long lines on the raw socket, bad invite codes — each with a clear
//! error, and nothing stored changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use cli_support::{
    DataDir, EXIT_ALREADY_RUNNING, EXIT_NO_NODE, EXIT_NODE_ERROR, EXIT_SETUP, QUIC, RawSocket,
};
use serde_json::Value;

#[test]
fn without_a_running_node_clients_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path(), "nobody");
    // A data directory that does not even exist.
    let ran = dir.run(&["status"]);
    assert_eq!(ran.code, EXIT_NO_NODE, "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "no palaver-node is running for data directory {}",
            dir.path.display()
        )),
        "{ran:?}"
    );
    assert!(ran.stdout.is_empty());
    let ran = dir.run(&["send", "garden", "general", "hi", "--json"]);
    assert_eq!(ran.code, EXIT_NO_NODE);
    assert_eq!(ran.error_code(), "cli.no_node");

    // A stale socket file from a crashed node: still "no node".
    std::fs::create_dir_all(&dir.path).unwrap();
    drop(std::os::unix::net::UnixListener::bind(dir.path.join("palaver.sock")).unwrap());
    assert!(dir.path.join("palaver.sock").exists());
    let ran = dir.run(&["server", "list"]);
    assert_eq!(ran.code, EXIT_NO_NODE, "{ran:?}");

    // `run` without an identity.
    let ran = dir.run(&["run", "--listen", QUIC, "--json"]);
    assert_eq!(ran.code, EXIT_SETUP, "{ran:?}");
    assert_eq!(ran.error_code(), "identity.not_found");
    assert!(ran.stdout.contains("palaver-node init"), "{ran:?}");

    // Usage errors are clap's exit status 2.
    assert_eq!(
        dir.run(&["invite", "create", "x", "--expires", "soon"])
            .code,
        2
    );
    assert_eq!(dir.run(&["frobnicate"]).code, 2);
}

/// Counts that must not change: the ledger, servers, channels, history.
fn stored(dir: &DataDir, server: &str) -> Value {
    let status = dir.status();
    serde_json::json!({
        "ledger_entries": status["ledger_entries"],
        "ledger_bytes": status["ledger_bytes"],
        "servers": dir.json_lines(&["server", "list"]),
        "channels": dir.json_lines(&["channel", "list", server]),
        "history": dir.json_lines(&["history", server, "general"]),
    })
}

#[test]
fn a_running_node_refuses_bad_input_and_a_second_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path(), "alice");
    let user_id = dir.init();
    let mut first = dir.start(&["--listen", QUIC]);
    let server = dir.json(&["server", "create", "garden"])["server_id"]
        .as_str()
        .unwrap()
        .to_owned();
    dir.send("garden", "general", "the only message");
    let invite = dir.json(&["invite", "create", "garden"])["invite"]
        .as_str()
        .unwrap()
        .to_owned();
    // An invite that expired longer ago than the clock tolerance allows
    // (the inviter's clock may be up to 10 minutes behind the joiner's, so
    // one created with `--expires 1ms` still works for 10 minutes): the
    // node's invite with its expiry moved back, signed by a throw-away
    // identity (the signature verifies; the expiry is what fails).
    let expiring = {
        let signed = node::invite_code::parse(&invite, 0).unwrap();
        let mut content = signed.invite().clone();
        let now = node::Clock::system().now_ms();
        content.expires_at_ms = Some(now - messaging_proto::limits::MAX_CLOCK_SKEW_MS - 60_000);
        let inviter = identity_core::Identity::generate(&mut rand::rng());
        node::invite_code::encode(&messaging_proto::SignedInvite::sign(&inviter, content).unwrap())
    };
    let before = stored(&dir, &server);

    // A second `run` on the same directory is refused; the first goes on.
    let ran = dir.run(&["run", "--listen", QUIC]);
    assert_eq!(ran.code, EXIT_ALREADY_RUNNING, "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "another palaver-node is already running for data directory {}",
            dir.path.display()
        )),
        "{ran:?}"
    );
    assert!(first.running());
    assert_eq!(dir.json(&["id"])["user_id"], user_id.as_str());

    // Malformed lines get an error and the connection stays usable.
    let mut socket = RawSocket::connect(&dir);
    for line in [
        "this is not json",
        r#"{"op":"request"}"#,
        r#"{"op":"request","request":{"type":"launch_rockets"}}"#,
        r#"{"op":"request","request":{"type":"send","server":"garden"}}"#,
        r#"{"op":"dance"}"#,
        "[1,2,3]",
    ] {
        let answer = socket.ask(line);
        assert_eq!(
            answer["error"]["code"], "socket.malformed_request",
            "{line}: {answer}"
        );
    }
    let answer = socket.ask(r#"{"op":"request","request":{"type":"status"}}"#);
    assert_eq!(answer["ok"]["type"], "status", "{answer}");
    // A request the node refuses: its own error, the connection goes on.
    let answer = socket.ask(
        r#"{"op":"request","request":{"type":"send","server":"nowhere","channel":"general","text":"lost"}}"#,
    );
    assert_eq!(answer["error"]["category"], "not_found", "{answer}");
    let answer = socket.ask(r#"{"op":"request","request":{"type":"identity"}}"#);
    assert!(answer["ok"]["user_id"].is_string(), "{answer}");

    // An over-long line is refused and the connection closed.
    let mut long = RawSocket::connect(&dir);
    let mut line = br#"{"op":"request","request":{"type":"send","server":"garden","channel":"general","text":""#.to_vec();
    line.resize(1024 * 1024 + 100, b'x');
    long.write(&line);
    let answer = long.read().expect("an answer before the close");
    assert_eq!(answer["error"]["code"], "socket.line_too_long", "{answer}");
    assert!(long.read().is_none(), "the connection is closed");

    // Bad invite codes, each with its own code.
    let body = invite.strip_prefix("palaver://invite/").unwrap();
    let mut typo: Vec<char> = body.chars().collect();
    let at = typo.len() / 2;
    typo[at] = if typo[at] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    let cases = [
        ("garbage".to_owned(), "invite.not_an_invite"),
        (format!("palaver://invite/{typo}"), "invite.bad_checksum"),
        (
            format!("palaver://invite/{}", "!".repeat(40)),
            "invite.bad_encoding",
        ),
        (expiring.clone(), "invite.expired"),
    ];
    for (code, expected) in &cases {
        let ran = dir.run(&["join", code, "--json"]);
        assert_eq!(ran.code, EXIT_NODE_ERROR, "{ran:?}");
        assert_eq!(ran.error_code(), *expected);
    }
    // The human form names the problem and the code.
    let ran = dir.run(&["join", &format!("palaver://invite/{typo}")]);
    assert!(ran.stderr.contains("[invite.bad_checksum]"), "{ran:?}");
    assert!(ran.stderr.contains("damaged"), "{ran:?}");
    // Neither the error nor the log repeats the code.
    assert!(!ran.stderr.contains(&typo));

    // Other refused requests through the CLI.
    let ran = dir.run(&["send", "garden", "no-such-channel", "x", "--json"]);
    assert_eq!(ran.code, EXIT_NODE_ERROR);
    assert_eq!(ran.json()["error"]["category"], "not_found");
    let ran = dir.run(&["history", "garden", "general", "--limit", "0", "--json"]);
    assert_eq!(ran.code, EXIT_NODE_ERROR);
    assert_eq!(ran.error_code(), "node.invalid_limit");

    // At most 64 connections at once: the 65th is told the node is busy,
    // and a freed slot serves again.
    drop(socket);
    let mut held: Vec<RawSocket> = (0..64)
        .map(|_| {
            let mut connection = RawSocket::connect(&dir);
            let answer = connection.ask(r#"{"op":"request","request":{"type":"identity"}}"#);
            assert!(answer["ok"].is_object(), "{answer}");
            connection
        })
        .collect();
    let mut refused = RawSocket::connect(&dir);
    let answer = refused.read().expect("a busy answer");
    assert_eq!(answer["error"]["code"], "socket.busy", "{answer}");
    assert!(answer["error"]["retry_after_ms"].is_u64(), "{answer}");
    held.pop();
    cli_support::eventually("a freed connection slot", || {
        let mut connection = RawSocket::connect(&dir);
        let answer = connection.try_ask(r#"{"op":"request","request":{"type":"identity"}}"#)?;
        answer["ok"].is_object().then_some(())
    });
    drop(held);

    // Nothing stored changed.
    assert_eq!(stored(&dir, &server), before);
    assert!(first.running());

    // The `shutdown` subcommand stops it cleanly.
    let ran = dir.run(&["shutdown", "--json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(first.wait().success(), "{}", first.log_text());
    assert!(!dir.path.join("palaver.sock").exists());
    assert_eq!(dir.run(&["status"]).code, EXIT_NO_NODE);

    // --passphrase-file comes before PALAVER_PASSPHRASE: a wrong one in
    // the file is refused even though the environment holds the right one.
    let wrong = tmp.path().join("wrong-passphrase");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let ran = dir.run(&[
        "--passphrase-file",
        wrong.to_str().unwrap(),
        "run",
        "--listen",
        QUIC,
        "--json",
    ]);
    assert_eq!(ran.code, EXIT_SETUP, "{ran:?}");
    assert_eq!(ran.error_code(), "identity.wrong_passphrase");
    // Nothing was left behind by the refused runs.
    assert!(!dir.path.join("palaver.sock").exists());
}
