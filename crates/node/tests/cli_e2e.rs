//! End to end with the real binary: a bootstrap/replica node R and two
//! users A and B, three processes in three data directories on 127.0.0.1.
//! A creates a server whose bootstrap peer is R and an invite; B joins with
//! the code through R alone; messages flow both ways; B is killed with
//! SIGKILL, restarts with everything, and receives what A sent meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cli_support::{DataDir, QUIC, eventually, fast_timers_config, free_port, http_get};

#[test]
fn three_processes_chat_through_a_replica_and_survive_sigkill() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let r = DataDir::new(tmp.path(), "relay");
    let a = DataDir::new(tmp.path(), "alice");
    let b = DataDir::new(tmp.path(), "bob");
    r.init();
    let a_id = a.init();
    let b_id = b.init();

    // Short sync and retry timers (through the config file), as the
    // in-process tests use.
    let config = fast_timers_config(tmp.path());
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let _r_node = r.start(&[
        "--config",
        &config,
        "--listen",
        QUIC,
        "--replica-all",
        "--metrics",
        &metrics,
    ]);
    let r_addr = r.address();
    let _a_node = a.start(&[
        "--config",
        &config,
        "--listen",
        QUIC,
        "--bootstrap",
        &r_addr,
    ]);
    let mut b_node = b.start(&["--config", &config, "--listen", QUIC]);

    // A creates the server, names R as its bootstrap peer, and invites.
    let server = a.json(&[
        "server",
        "create",
        "garden",
        "--description",
        "a test server",
    ]);
    let server_id = server["server_id"].as_str().unwrap().to_owned();
    assert_eq!(server["name"], "garden");
    assert_eq!(server["channels"][0]["name"], "general");
    a.json(&["server", "bootstrap", "set", "garden", &r_addr]);
    let invite = a.json(&["invite", "create", "garden", "--expires", "1h"]);
    let code = invite["invite"].as_str().unwrap().to_owned();
    assert!(code.starts_with("palaver://invite/"), "{code}");
    assert!(invite["invite_id"].is_string());

    // B, with no bootstrap peer of its own, joins through R.
    let joined = b.json(&["join", &code]);
    assert_eq!(joined["server_id"], server_id.as_str());
    eventually("A to see B as a member", || {
        (a.json(&["server", "info", "garden"])["members"] == 2).then_some(())
    });

    // Messages both ways; servers and channels by name or by id.
    let from_a = a.send("garden", "general", "hello from alice");
    let from_b = b.send(&server_id, "general", "hello from bob");
    for node in [&a, &b] {
        eventually("both messages on both sides", || {
            let mut texts = node.texts(&server_id, "general");
            texts.sort();
            (texts == ["hello from alice", "hello from bob"]).then_some(())
        });
    }
    let history = b.history("garden", "general");
    let mine = history
        .iter()
        .find(|message| message["message_id"] == from_a.as_str())
        .expect("A's message in B's history");
    assert_eq!(mine["author"], a_id.as_str());
    assert_eq!(mine["text"], "hello from alice");
    assert_eq!(mine["edited"], false);
    assert_eq!(mine["redacted"], false);
    assert!(mine["timestamp_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(mine["cursor"].is_string());
    assert!(
        history
            .iter()
            .any(|message| message["message_id"] == from_b.as_str()
                && message["author"] == b_id.as_str()
                && message["mine"] == true)
    );

    // A follows the channel with `tail --json`: B's messages show up with
    // their server and channel. (`tail` shows what arrives after it has
    // subscribed, so B sends probes until one is seen.)
    let seen_by_tail = first_followed(&a, &["tail", "garden", "general", "--json"], |probe| {
        b.send("garden", "general", &format!("tail probe {probe}"));
    });
    assert!(
        seen_by_tail["text"]
            .as_str()
            .unwrap()
            .starts_with("tail probe")
    );
    assert_eq!(seen_by_tail["author"], b_id.as_str());
    assert_eq!(seen_by_tail["server_id"], server_id.as_str());
    assert_eq!(
        seen_by_tail["channel_id"],
        server["channels"][0]["channel_id"]
    );

    // `dm tail` follows one conversation the same way.
    let seen_by_dm_tail = first_followed(&a, &["dm", "tail", &b_id, "--json"], |probe| {
        b.json(&["dm", "send", &a_id, &format!("dm probe {probe}")]);
    });
    assert!(
        seen_by_dm_tail["text"]
            .as_str()
            .unwrap()
            .starts_with("dm probe")
    );
    assert_eq!(seen_by_dm_tail["user_id"], b_id.as_str());
    assert_eq!(seen_by_dm_tail["author"], b_id.as_str());
    assert!(seen_by_dm_tail.get("server_id").is_none());
    let bad = a.run(&["dm", "tail", "nobody", "--json"]);
    assert_eq!(
        (bad.code, bad.error_code().as_str()),
        (1, "node.unknown_user")
    );

    // Reactions and deletions travel too.
    b.json(&["react", "garden", "general", &from_a, "👍"]);
    let doomed = a.send("garden", "general", "soon deleted");
    a.json(&["redact", "garden", "general", &doomed]);
    eventually("B's reaction at A and A's deletion at B", || {
        let reacted = a.history("garden", "general").iter().any(|message| {
            message["message_id"] == from_a.as_str()
                && message["reactions"][0]["emoji"] == "👍"
                && message["reactions"][0]["users"][0] == b_id.as_str()
        });
        let deleted = b.history("garden", "general").iter().any(|message| {
            message["message_id"] == doomed.as_str()
                && message["redacted"] == true
                && message["text"] == ""
        });
        (reacted && deleted).then_some(())
    });

    // The replica's metrics: ours and libp2p's.
    let answer = http_get(metrics_port, "/metrics");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    for metric in [
        "palaver_entries_received",
        "palaver_entries_accepted",
        "palaver_outbox_depth",
        "palaver_connected_peers",
        "palaver_delivery_latency_seconds",
        "libp2p_",
    ] {
        assert!(answer.contains(metric), "{metric} missing from /metrics");
    }
    assert!(http_get(metrics_port, "/").starts_with("HTTP/1.1 404"));

    // B dies without a chance to clean up; A writes meanwhile.
    b_node.kill();
    assert!(
        b.path.join("palaver.sock").exists(),
        "a stale socket is left"
    );
    let while_down = a.send("garden", "general", "sent while bob was down");

    // B restarts on the same directory: the stale lock and socket are no
    // obstacle, everything it had is there, and the missed message arrives.
    let _b_node = b.start(&["--config", &config, "--listen", QUIC]);
    let texts = b.texts("garden", "general");
    assert!(
        texts.contains(&"hello from alice".to_owned())
            && texts.contains(&"hello from bob".to_owned()),
        "{texts:?}"
    );
    eventually("the message sent while B was down", || {
        b.history("garden", "general")
            .iter()
            .any(|message| message["message_id"] == while_down.as_str())
            .then_some(())
    });
    // And B can still talk.
    b.send("garden", "general", "back again");
    eventually("A to get B's message after the restart", || {
        a.texts("garden", "general")
            .contains(&"back again".to_owned())
            .then_some(())
    });
    eprintln!("end-to-end scenario took {:?}", started.elapsed());
}

/// Runs a following subcommand (`tail`, `dm tail`) of `dir` with `args`
/// and calls `probe(n)` (n = 1, 2, …) until it prints a JSON line: it only
/// shows what arrives after it has subscribed. Returns that line; the
/// subcommand is stopped.
fn first_followed(dir: &DataDir, args: &[&str], mut probe: impl FnMut(u32)) -> serde_json::Value {
    let mut child = dir
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel::<serde_json::Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    let mut sent = 0;
    let first = eventually(&format!("{args:?} to print a line"), || {
        sent += 1;
        probe(sent);
        lines.recv_timeout(Duration::from_secs(2)).ok()
    });
    let _ = child.kill();
    let _ = child.wait();
    first
}

/// Channels are created, renamed (the topic stays unless a new one is
/// given) and deleted from the command line; an unknown channel is a clear
/// error that changes nothing.
#[test]
fn channels_are_renamed_and_deleted_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path(), "alice");
    dir.init();
    let _node = dir.start(&["--listen", QUIC]);
    dir.json(&["server", "create", "garden"]);
    dir.json(&["channel", "create", "garden", "random", "--topic", "dice"]);
    let channel = |name: &str| {
        dir.json_lines(&["channel", "list", "garden"])
            .into_iter()
            .find(|channel| channel["name"] == name)
    };
    let id = channel("random").unwrap()["channel_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let renamed = dir.run(&["channel", "rename", "garden", "random", "casino"]);
    assert_eq!(renamed.code, 0, "{renamed:?}");
    assert_eq!(renamed.stdout.trim(), "channel renamed");
    let casino = channel("casino").expect("renamed");
    assert_eq!(
        (&casino["channel_id"], &casino["topic"]),
        (&id.clone().into(), &"dice".into())
    );
    assert!(channel("random").is_none());

    dir.json(&[
        "channel", "rename", "garden", &id, "casino", "--topic", "cards",
    ]);
    assert_eq!(channel("casino").unwrap()["topic"], "cards");

    dir.json(&["channel", "delete", "garden", "casino"]);
    assert!(channel("casino").is_none());
    assert_eq!(
        dir.json_lines(&["channel", "list", "garden"]).len(),
        1,
        "general stays"
    );
    let again = dir.run(&["channel", "delete", "garden", "casino", "--json"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(again.error_code(), "node.unknown_channel");
    let unknown = dir.run(&["channel", "rename", "garden", "nowhere", "x", "--json"]);
    assert_eq!(unknown.error_code(), "node.unknown_channel");
    assert_eq!(dir.json_lines(&["channel", "list", "garden"]).len(), 1);
}
