//! The walking skeleton, end to end against the real Dovecot and Postfix of the project's
//! mail stack: alice invites room1 over SMTP, the daemon answers, and the REPLY reaches
//! alice's INBOX over IMAP.

mod common;

use common::{MailStack, data, terminate, unique};
use imipd::store::Store;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts the daemon on `config`, its log on the test's stderr.
fn start_daemon(config: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(config)
        .env("IMIPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon")
}

/// Turns a readable `.eml` test file into wire form: CRLF line ends.
fn wire(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn invitation_to_room1_is_accepted_by_reply_to_the_organizer() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let uid = unique("skeleton");
    let invitation = wire(&data("templates/skeleton/request.eml").replace("{{UID}}", &uid));
    stack
        .send("alice@example.test", "room1@example.test", &invitation)
        .await;

    let config = stack.daemon_config("room1", "Room 1", 1, dir.path());
    let mut daemon = start_daemon(&config);

    let reply = stack
        .wait_for_message("alice", dir.path(), Duration::from_secs(60), |raw| {
            let text = String::from_utf8_lossy(raw);
            text.contains("Subject: Accepted: Weekly sync") && {
                imipd::mail::extract(raw)
                    .is_ok_and(|m| m.parts.iter().any(|p| p.text.contains(&uid)))
            }
        })
        .await;
    let status = terminate(&mut daemon, Duration::from_secs(20));
    assert!(
        status.success(),
        "the daemon stops cleanly on SIGTERM: {status}"
    );

    let reply = reply.expect("a REPLY reaches alice's INBOX within 60 s");
    let found = imipd::mail::extract(&reply).expect("the reply is a message");
    assert_eq!(found.sender.from.as_deref(), Some("room1@example.test"));
    assert_eq!(found.sender.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(found.sender.references, vec![format!("{uid}@example.test")]);
    let calendar = &found.parts[0];
    assert_eq!(calendar.method_param.as_deref(), Some("REPLY"));
    let objects = imipd::calendar::parse(&calendar.text).expect("the REPLY parses");
    let view = imipd::calendar::SchedulingView::new(&objects[0]).expect("a scheduling object");
    assert_eq!(view.method, Some(imipd::calendar::Method::Reply));
    assert_eq!(view.uid.as_str(), uid);
    let attendees = &view.main().attendees;
    assert_eq!(
        attendees.len(),
        1,
        "a REPLY carries only the replying attendee"
    );
    assert_eq!(attendees[0].address.email(), "room1@example.test");
    assert_eq!(attendees[0].partstat, imipd::calendar::PartStat::Accepted);

    let store = Store::open(&dir.path().join("store")).expect("the daemon released the store");
    let object = store
        .object("room1@example.test", &uid)
        .expect("read the store")
        .expect("the event is stored by its UID");
    assert!(object.ical.contains("PARTSTAT=ACCEPTED"), "{}", object.ical);
    let ledger = store.ledger().expect("read the ledger");
    let entry = ledger
        .iter()
        .find(|(_, e)| e.message_id.as_deref() == Some(&format!("{uid}@example.test")))
        .expect("the invitation is in the ledger");
    assert_eq!(entry.1.outcome(), imipd::itip::Outcome::Added);
    assert!(
        store.outbox().expect("read the outbox").is_empty(),
        "the reply left the outbox"
    );
}

/// With a poll interval far longer than the test, only IDLE can bring the invitation to the
/// daemon in time: this pins that the daemon waits in IDLE and reacts to new mail.
#[tokio::test(flavor = "multi_thread")]
async fn invitation_arriving_while_idle_is_answered_without_polling() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = stack.daemon_config("bob", "Bob's bot", 3600, dir.path());
    let mut daemon = start_daemon(&config);
    // Let the daemon log in, work through bob's backlog and enter IDLE.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let uid = unique("idle");
    let invitation = wire(
        &data("templates/skeleton/request.eml")
            .replace("{{UID}}", &uid)
            .replace("room1@example.test", "bob@example.test"),
    );
    let sent = std::time::Instant::now();
    stack
        .send("alice@example.test", "bob@example.test", &invitation)
        .await;
    let reply = stack
        .wait_for_message("alice", dir.path(), Duration::from_secs(30), |raw| {
            imipd::mail::extract(raw).is_ok_and(|m| {
                m.sender.from.as_deref() == Some("bob@example.test")
                    && m.parts.iter().any(|p| p.text.contains(&uid))
            })
        })
        .await;
    let latency = sent.elapsed();
    let status = terminate(&mut daemon, Duration::from_secs(20));
    assert!(
        status.success(),
        "the daemon stops cleanly on SIGTERM: {status}"
    );
    assert!(
        reply.is_some(),
        "no reply within 30 s although the daemon polls only hourly: IDLE did not wake it"
    );
    eprintln!("invitation to reply in alice's INBOX, through IDLE: {latency:?}");
}
