//! The mailbox's own invitations, learned from its Sent folder by the real daemon against the
//! shared Dovecot and Postfix (mailbox grace): what the mailbox sent itself is stored as the
//! organiser's copy and never answered, not even when the same invitation also reaches its
//! INBOX or names the mailbox as an attendee under an address the configuration does not
//! list; an attendee's REPLY then updates the organiser's copy, again without an answer.

mod common;

use common::client::{append, invitation, search, wire};
use common::{MailStack, data, terminate, unique};
use imipd::store::Store;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn own_invitations_in_the_sent_folder_are_stored_and_never_answered() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = unique("sent");
    // 0: grace invites bob (and lists herself as CHAIR, as Thunderbird and Google do).
    let (own_id, own) = invitation("bob", "grace@example.test", &tag, 0);
    // 1: sent from grace's other address, which the configuration does not list, inviting
    // grace herself: only the Sent folder says that it is her own.
    let (other_id, other) = invitation("grace", "grace.h@example.test", &tag, 1);
    append(&stack, "grace", "Sent", &[own.clone(), other]).await;
    // The own invitation also reaches her INBOX (she is on the list she invited).
    stack
        .send("grace@example.test", "grace@example.test", &own)
        .await;
    let config =
        stack.daemon_config_with("grace", "Grace", 1, "sent_folder = \"Sent\"\n", dir.path());
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("IMIPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon");
    let processed = format!("KEYWORD {}", imipd::imap::PROCESSED_KEYWORD);
    let unprocessed = format!("UNKEYWORD {}", imipd::imap::PROCESSED_KEYWORD);
    wait_until(
        Duration::from_secs(60),
        "both Sent messages and the INBOX copy are processed",
        || async {
            search(&stack, "grace", "Sent", &format!("{processed} TEXT {tag}")).await == 2
                && search(&stack, "grace", "INBOX", &unprocessed).await == 0
        },
    )
    .await;
    // Bob accepts grace's invitation.
    let uid = format!("{tag}-0");
    let reply = data("templates/sent-folder/reply.eml")
        .replace("{{UID}}", &uid)
        .replace("{{DTSTART}}", "20270104T000000Z")
        .replace("{{DTEND}}", "20270104T003000Z");
    stack
        .send("bob@example.test", "grace@example.test", &wire(&reply))
        .await;
    wait_until(
        Duration::from_secs(60),
        "bob's REPLY is processed",
        || async {
            search(
                &stack,
                "grace",
                "INBOX",
                &format!("{processed} TEXT {uid}-reply"),
            )
            .await
                == 1
        },
    )
    .await;
    // Give an (unwanted) answer time to leave the outbox before looking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = terminate(&mut daemon, Duration::from_secs(20));
    assert!(status.success(), "{status}");

    let store = Store::open(&dir.path().join("store")).expect("open the store");
    let sent = store
        .sent_replies(Some("grace@example.test"))
        .expect("read the sent-reply index");
    assert!(sent.is_empty(), "nothing may be answered: {sent:?}");
    assert!(store.outbox().expect("outbox").is_empty());
    assert!(store.dead_letters().expect("dead letters").is_empty());
    let ledger = store.ledger().expect("ledger");
    let entry = |folder: &str, id: &str| {
        ledger
            .iter()
            .find(|(k, e)| k.folder == folder && e.message_id.as_deref() == Some(id))
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("{id} in {folder} is not in the ledger: {ledger:?}"))
    };
    let own_entry = entry("Sent", &own_id);
    assert_eq!(
        own_entry.outcome(),
        imipd::itip::Outcome::Added,
        "{own_entry:?}"
    );
    assert!(own_entry.results[0].reason.starts_with("own_invitation"));
    let other_entry = entry("Sent", &other_id);
    assert!(
        other_entry.results[0]
            .reason
            .contains("not answered: the message is this mailbox's own"),
        "{other_entry:?}"
    );
    let inbox_copy = entry("INBOX", &own_id);
    assert_eq!(
        inbox_copy.outcome(),
        imipd::itip::Outcome::NoAction,
        "{inbox_copy:?}"
    );
    let bob = entry("INBOX", &format!("{uid}-reply@example.test"));
    assert_eq!(bob.outcome(), imipd::itip::Outcome::Updated, "{bob:?}");
    let object = store
        .object("grace@example.test", &uid)
        .expect("read")
        .expect("the organiser's copy is stored");
    assert!(
        object.ical.contains("PARTSTAT=ACCEPTED"),
        "bob's answer is on the organiser's copy: {}",
        object.ical
    );
}
