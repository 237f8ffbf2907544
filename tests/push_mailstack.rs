//! Server push, end to end: Dovecot's `push_notification` plugin (ox driver) tells the daemon
//! about each delivery over `PUT /push`, and the mailbox answers without waiting for IDLE or a
//! poll.
//!
//! The push URL is part of Dovecot's configuration, so this runs on a PRIVATE stack instance
//! (`target/mailstack-push`) started with `MAILSTACK_PUSH_URL` pointing at the daemon's
//! `[http]` listener, and with IDLE removed from its capabilities: the daemon then polls once
//! an hour, so every answer within the test's minute can only have been started by a push.

mod common;

use common::client::{invitation, login, search};
use common::{MailStack, unique};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const TOKEN: &str = "push-secret-0123456789";

fn stack_dir() -> PathBuf {
    Path::new(REPO).join("target/mailstack-push")
}

/// Runs `scripts/mailstack ARGS` on the private instance with `push_url`.
fn mailstack(args: &[&str], push_url: &str) {
    common::private_mailstack(&stack_dir(), args, &[("MAILSTACK_PUSH_URL", push_url)]);
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct Daemon(Child, PathBuf);

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(self.1.join("imipd.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        common::terminate(&mut self.0, Duration::from_secs(20));
    }
}

/// An HTTP/1.1 request to the daemon's listener; the status code.
async fn request(port: u16, method: &str, auth: Option<&str>, body: &str) -> u16 {
    let client = reqwest::Client::new();
    let mut req = client
        .request(
            method.parse().expect("a method"),
            format!("http://127.0.0.1:{port}/push"),
        )
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send()
        .await
        .expect("the listener answers")
        .status()
        .as_u16()
}

/// Whether the reply to the invitation `message_id` reached alice's INBOX within `timeout`.
async fn wait_reply(stack: &MailStack, dir: &Path, message_id: &str, timeout: Duration) -> bool {
    stack
        .wait_for_message("alice", dir, timeout, |raw| {
            let text = String::from_utf8_lossy(raw);
            text.contains("Auto-Submitted: auto-replied") && text.contains(message_id)
        })
        .await
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_from_dovecot_wakes_the_mailbox() {
    let port = free_port();
    let push_url = format!("http://imipd:{TOKEN}@127.0.0.1:{port}/push");
    // `up` keeps a running instance as it is: start afresh so the push URL is this run's.
    mailstack(&["down"], &push_url);
    mailstack(&["up"], &push_url);
    mailstack(&["imap-capability", "IDLE"], &push_url);
    let stack = MailStack::from_file(&stack_dir().join("env"));
    assert_eq!(stack.var("MAILSTACK_PUSH_URL"), push_url);

    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("push.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token file");
    let http = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\npush_token_file = \"{}\"\n",
        token_file.display()
    );
    let config =
        stack.daemon_config_full("room1", "Room 1", 3600, "push = true", &http, dir.path());
    let log = std::fs::File::create(dir.path().join("imipd.log")).expect("create the log");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_imipd"))
            .args(["run", "--config"])
            .arg(&config)
            .env("IMIPD_LOG", "info,imipd=debug")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon"),
        dir.path().to_path_buf(),
    );

    // The mailbox registers itself in the server's METADATA at login.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log().contains("registered for server push") {
        assert!(
            Instant::now() < deadline,
            "the mailbox did not register for push:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        daemon.log().contains("idle=false"),
        "the server should not offer IDLE here:\n{}",
        daemon.log()
    );
    let mut imap = login(&stack, "room1").await;
    let entry = imap
        .get_metadata("", "", imipd::push::METADATA_KEY)
        .await
        .expect("GETMETADATA");
    imap.logout().await.ok();
    assert_eq!(
        entry.first().and_then(|m| m.value.as_deref()),
        Some("user=room1@example.test"),
        "the registered METADATA entry"
    );

    // The listener's contract.
    let good = format!("Bearer {TOKEN}");
    let room1 = r#"{"user":"ROOM1@example.test"}"#;
    assert_eq!(request(port, "PUT", None, room1).await, 401);
    assert_eq!(
        request(port, "PUT", Some("Bearer wrong-secret-0123456"), room1).await,
        401
    );
    assert_eq!(
        request(
            port,
            "PUT",
            Some(&good),
            r#"{"user":"nobody@example.test"}"#
        )
        .await,
        404
    );
    assert_eq!(request(port, "POST", Some(&good), "not json").await, 400);
    assert_eq!(request(port, "POST", Some(&good), room1).await, 204);

    // Invitations delivered one at a time are answered well within the hour the daemon
    // would otherwise sleep: Dovecot's push woke it each time.
    let tag = unique("push");
    let mut took = Vec::new();
    for n in 0..3 {
        let (message_id, raw) = invitation("room1", "alice@example.test", &tag, n);
        let sent = Instant::now();
        stack
            .send("alice@example.test", "room1@example.test", &raw)
            .await;
        assert!(
            wait_reply(&stack, dir.path(), &message_id, Duration::from_secs(60)).await,
            "no reply to invitation {n} within 60 s: the push did not wake the mailbox\n{}",
            daemon.log()
        );
        took.push(sent.elapsed());
    }
    eprintln!(
        "SMTP accepted → reply in alice's INBOX (incl. this test's 300 ms polling): {took:?}"
    );
    let log = daemon.log();
    assert!(
        log.matches("woken by a push").count() >= 4,
        "one wake per push expected (1 by hand, 3 by Dovecot):\n{log}"
    );
    // Every message was processed and marked.
    assert_eq!(
        search(&stack, "room1", "INBOX", "UNKEYWORD $ImipdProcessed").await,
        0
    );
    drop(daemon);
    mailstack(&["down"], &push_url);
}
