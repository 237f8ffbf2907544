//! Certificate verification against the real mail stack, whose certificates come from its own
//! CA (`MAILSTACK_CA`): with no `ca_file` imipd trusts only the public web PKI and refuses
//! the servers with an error that names the certificate; with the CA file it connects. IMAPS
//! (implicit TLS) as room9, submission with STARTTLS as mallory.

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
    let password = stack.password("mallory").to_string();
    let tag = common::unique("tls");

    let sender = Sender::new(&submission(&stack, None), "mallory@example.test", &password)
        .expect("the transport is built");
    let (item, bytes) = note_to_self(&format!("{tag}-refused"));
    match sender.send(&item, &bytes).await {
        Err(SendFailure::Transient(reason) | SendFailure::Permanent(reason)) => assert!(
            reason.contains("certificate") && reason.contains("ca_file"),
            "the error names the certificate and the setting that fixes it: {reason}"
        ),
        Ok(()) => panic!("a certificate from an unknown CA was accepted"),
    }

    let ca = Some(PathBuf::from(stack.ca()));
    let sender = Sender::new(&submission(&stack, ca), "mallory@example.test", &password)
        .expect("the transport is built");
    let (item, bytes) = note_to_self(&format!("{tag}-accepted"));
    sender
        .send(&item, &bytes)
        .await
        .unwrap_or_else(|e| panic!("with the stack's CA the message is submitted: {e:?}"));
}
