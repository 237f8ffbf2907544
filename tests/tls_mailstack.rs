//! Certificate verification against the real mail stack, whose certificates come from its own
//! CA (`MAILSTACK_CA`): with no `ca_file` imipd trusts only the public web PKI and refuses
//! the servers with an error that names the certificate; with the CA file it connects. IMAPS
//! (implicit TLS) as room9, submission with STARTTLS and submissions (implicit TLS) as mallory.
//! Also: the password transport keeps one logged-in connection for message after message.

mod common;

use common::MailStack;
use imipd::config::{Login, SmtpConfig, TlsMode};
use imipd::imap::ImapSession;
use imipd::smtp::{SendFailure, Sender};
use imipd::store::OutboxItem;
use std::path::PathBuf;

fn submission(stack: &MailStack, ca_file: Option<PathBuf>) -> SmtpConfig {
    SmtpConfig {
        host: stack.host().to_string(),
        port: stack.port("MAILSTACK_SUBMISSION_PORT"),
        tls: TlsMode::Starttls,
        ca_file,
        allow_plaintext: false,
        retry_initial_secs: 30,
        retry_max_secs: 3600,
        auth: Default::default(),
        oauth2: None,
        login: Login {
            username: Some("mallory@example.test".into()),
            password_file: None,
            password_env: None,
        },
    }
}

fn note_to_self(tag: &str) -> (OutboxItem, Vec<u8>) {
    let message_id = format!("{tag}@imipd.test");
    let bytes = format!(
        "From: mallory@example.test\r\nTo: mallory@example.test\r\nSubject: TLS check {tag}\r\nMessage-ID: <{message_id}>\r\n\r\nA note to self from the TLS test.\r\n"
    );
    let item = OutboxItem {
        id: 0,
        mailbox: "mallory@example.test".into(),
        message_id,
        envelope_from: "mallory@example.test".into(),
        envelope_to: vec!["mallory@example.test".into()],
        attempts: 0,
        next_attempt: 0,
        last_error: None,
    };
    (item, bytes.into_bytes())
}

/// Submits a note to self through `config` without the stack's CA (refused, with an error
/// that names the certificate and `ca_file`), then with it (accepted).
async fn refused_without_the_ca_accepted_with(
    stack: &MailStack,
    config: impl Fn(Option<PathBuf>) -> SmtpConfig,
) {
    let password = stack.password("mallory").to_string();
    let tag = common::unique("tls");
    let sender = Sender::new(&config(None), "mallory@example.test", &password)
        .expect("the transport is built");
    let (item, bytes) = note_to_self(&format!("{tag}-refused"));
    match sender.send(&item, &bytes).await {
        Err(SendFailure::Transient(reason) | SendFailure::Permanent(reason)) => assert!(
            reason.contains("certificate") && reason.contains("ca_file"),
            "the error names the certificate and the setting that fixes it: {reason}"
        ),
        Ok(()) => panic!("a certificate from an unknown CA was accepted"),
    }
    let sender = Sender::new(
        &config(Some(PathBuf::from(stack.ca()))),
        "mallory@example.test",
        &password,
    )
    .expect("the transport is built");
    let (item, bytes) = note_to_self(&format!("{tag}-accepted"));
    sender
        .send(&item, &bytes)
        .await
        .unwrap_or_else(|e| panic!("with the stack's CA the message is submitted: {e:?}"));
}

#[tokio::test]
async fn imaps_refuses_the_stack_certificate_without_its_ca_and_accepts_it_with() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = stack.imap_config("room9", dir.path());
    let password = stack.password("room9").to_string();
    let user = "room9@example.test";

    config.ca_file = None;
    let refused = ImapSession::connect(&config, user, &password)
        .await
        .err()
        .expect("a certificate from an unknown CA is refused");
    let message = refused.to_string();
    assert!(
        message.contains("certificate") && message.contains("ca_file"),
        "the error names the certificate and the setting that fixes it: {message}"
    );

    config.ca_file = Some(PathBuf::from(stack.ca()));
    let session = ImapSession::connect(&config, user, &password)
        .await
        .expect("with the stack's CA the certificate verifies");
    session.logout().await;
}

#[tokio::test]
async fn submission_starttls_refuses_the_stack_certificate_without_its_ca_and_accepts_it_with() {
    let stack = MailStack::get();
    refused_without_the_ca_accepted_with(&stack, |ca_file| submission(&stack, ca_file)).await;
}

#[tokio::test]
async fn submissions_implicit_tls_refuses_the_stack_certificate_without_its_ca_and_accepts_it_with()
{
    let stack = MailStack::get();
    refused_without_the_ca_accepted_with(&stack, |ca_file| SmtpConfig {
        port: stack.port("MAILSTACK_SUBMISSIONS_PORT"),
        tls: TlsMode::Implicit,
        ..submission(&stack, ca_file)
    })
    .await;
}

#[tokio::test]
async fn one_pooled_connection_carries_message_after_message() {
    let stack = MailStack::get();
    let password = stack.password("mallory").to_string();
    let tag = common::unique("pool");
    let sender = Sender::new(
        &submission(&stack, Some(PathBuf::from(stack.ca()))),
        "mallory@example.test",
        &password,
    )
    .expect("the transport is built");
    assert_eq!(
        sender.idle_connections(),
        0,
        "nothing is opened before the first send"
    );
    for n in 0..3 {
        let (item, bytes) = note_to_self(&format!("{tag}-{n}"));
        sender
            .send(&item, &bytes)
            .await
            .unwrap_or_else(|e| panic!("message {n} is submitted: {e:?}"));
        // A new connection per message would leave one more idle each time.
        assert_eq!(
            sender.idle_connections(),
            1,
            "after message {n} the one connection waits for the next"
        );
    }
    // A refused message (a recipient Postfix does not know) drops its connection, and the
    // next message gets a fresh one.
    let (mut item, bytes) = note_to_self(&format!("{tag}-refused"));
    item.envelope_to = vec!["nobody-at-all@example.test".into()];
    assert!(
        matches!(
            sender.send(&item, &bytes).await,
            Err(SendFailure::Permanent(_))
        ),
        "an unknown local recipient is refused for good"
    );
    assert_eq!(
        sender.idle_connections(),
        0,
        "the failed connection is not kept"
    );
    let (item, bytes) = note_to_self(&format!("{tag}-after"));
    sender
        .send(&item, &bytes)
        .await
        .unwrap_or_else(|e| panic!("the next message gets a new connection: {e:?}"));
    assert_eq!(sender.idle_connections(), 1);
}
