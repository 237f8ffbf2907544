//! iMIP messages composed by `mail::compose` are parsed back (mail-parser and our own
//! extractor) and checked part by part; one REPLY travels through the real Postfix (submission
//! with STARTTLS and AUTH as room1) and is read back from alice's INBOX over IMAP.

mod common;

use imipd::calendar::{CalAddress, Method};
use imipd::mail::compose::{When, human_summary, subject_for};
use imipd::mail::{ReplyMail, compose_imip, extract, reply_message_id};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::time::{Duration, SystemTime};

fn ics(name: &str, uid: &str) -> String {
    common::data(&format!("mail/compose/{name}")).replace("{UID}", uid)
}

fn address(a: &str) -> CalAddress {
    CalAddress::parse(a).expect("a valid address")
}

fn mail(method: Method, partstat: Option<&str>, ical: String, uid: &str) -> ReplyMail {
    let when = When::from_ical(&ical);
    let title = "Weekly sync – Müller";
    let subject = subject_for(&method, partstat, false, title);
    let action = subject
        .split_once(':')
        .map_or("replied", |(verb, _)| verb)
        .to_lowercase();
    ReplyMail {
        from: address("room1@example.test"),
        from_name: Some("Room 1".into()),
        to: address("alice@example.test"),
        to_name: Some("Alice Example".into()),
        message_id: reply_message_id(
            &address("room1@example.test"),
            uid,
            None,
            2,
            Some("20261120T100000Z"),
            partstat.unwrap_or("NEEDS-ACTION"),
        ),
        method,
        subject,
        text: human_summary("Room 1", &action, title, when.as_ref()),
        html: Some("<p>Room 1 accepted: <b>Weekly sync</b></p>".into()),
        ical,
        vcalendar: None,
        in_reply_to: Some("invite-1@example.test".into()),
        references: vec!["thread-root@example.test".into()],
        date: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_600_000),
    }
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[test]
fn reply_has_the_calconnect_layout_and_the_headers_clients_expect() {
    let uid = "compose-reply-1@example.test";
    let reply = mail(Method::Reply, Some("ACCEPTED"), ics("reply.ics", uid), uid);
    let composed = compose_imip(&reply).expect("composed");
    let message = MessageParser::default()
        .parse(&composed.bytes)
        .expect("parses back");

    let root = &message.parts[0];
    assert_eq!(content_type(root), "multipart/mixed");
    let PartType::Multipart(children) = &root.body else {
        panic!("root is not multipart");
    };
    assert_eq!(children.len(), 2, "alternative + attachment");
    let alternative = &message.parts[children[0] as usize];
    assert_eq!(content_type(alternative), "multipart/alternative");
    let PartType::Multipart(alts) = &alternative.body else {
        panic!("no alternative part");
    };
    let kinds: Vec<String> = alts
        .iter()
        .map(|i| content_type(&message.parts[*i as usize]))
        .collect();
    assert_eq!(kinds, ["text/plain", "text/html", "text/calendar"]);
    let calendar = &message.parts[alts[2] as usize];
    let ct = calendar.content_type().expect("content type");
    assert_eq!(ct.attribute("method"), Some("REPLY"));
    assert!(
        ct.attribute("charset")
            .is_some_and(|c| c.eq_ignore_ascii_case("utf-8"))
    );
    let plain = message.parts[alts[0] as usize]
        .text_contents()
        .expect("text");
    assert_eq!(
        plain.trim_end(),
        "Room 1 accepted: Weekly sync – Müller, Thu 3 Dec 15:00–16:00 CET"
    );
    let attachment = &message.parts[children[1] as usize];
    assert_eq!(content_type(attachment), "application/ics");
    assert_eq!(attachment.attachment_name(), Some("reply.ics"));

    assert_eq!(
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address.as_deref()),
        Some("room1@example.test")
    );
    assert_eq!(
        message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address.as_deref()),
        Some("alice@example.test")
    );
    assert_eq!(message.subject(), Some("Accepted: Weekly sync – Müller"));

    let found = extract(&composed.bytes).expect("extracts");
    assert_eq!(
        found.sender.message_id.as_deref(),
        Some(reply.message_id.as_str())
    );
    assert_eq!(found.sender.in_reply_to, ["invite-1@example.test"]);
    assert_eq!(
        found.sender.references,
        ["thread-root@example.test", "invite-1@example.test"]
    );
    assert_eq!(found.sender.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(found.sender.auto_response_suppress, ["All"]);
    assert_eq!(found.parts.len(), 2);
    assert_eq!(
        found.parts[0].text, reply.ical,
        "the calendar survives byte for byte"
    );
    assert_eq!(found.parts[1].text, reply.ical);
    assert_eq!(found.parts[1].duplicate_of, Some(found.parts[0].index));
    assert_eq!(found.parts[0].body_method.as_deref(), Some("REPLY"));
    assert!(!found.parts[0].method_mismatch());
    assert_eq!(composed.envelope_from, "room1@example.test");
    assert_eq!(composed.envelope_to, ["alice@example.test"]);
}

#[test]
fn counter_declinecounter_and_request_with_a_vcalendar_copy_parse_back() {
    for (method, file, with_vcs) in [
        (Method::Counter, "counter.ics", false),
        (Method::DeclineCounter, "declinecounter.ics", false),
        (Method::Request, "request.ics", true),
    ] {
        let uid = format!("compose-{}@example.test", method.as_str().to_lowercase());
        let mut outgoing = mail(method.clone(), None, ics(file, &uid), &uid);
        if with_vcs {
            outgoing.vcalendar = Some(ics("request.vcs", &uid));
        }
        let composed = compose_imip(&outgoing).expect("composed");
        let found = extract(&composed.bytes).expect("extracts");
        let distinct: Vec<_> = found.distinct_parts().collect();
        assert_eq!(
            distinct.len(),
            if with_vcs { 2 } else { 1 },
            "{method}: {distinct:?}"
        );
        assert_eq!(distinct[0].method_param.as_deref(), Some(method.as_str()));
        assert_eq!(distinct[0].body_method.as_deref(), Some(method.as_str()));
        assert_eq!(distinct[0].objects[0].uid.as_deref(), Some(uid.as_str()));
        if with_vcs {
            let vcs = distinct[1];
            assert_eq!(vcs.content_type, "text/x-vcalendar");
            assert!(vcs.vcalendar);
            assert_eq!(vcs.file_name.as_deref(), Some("invite.vcs"));
            assert_eq!(vcs.text, ics("request.vcs", &uid));
        }
        let message = MessageParser::default()
            .parse(&composed.bytes)
            .expect("mail");
        let expected_subject = match method {
            Method::Counter => "New time proposed: Weekly sync – Müller",
            Method::DeclineCounter => "New time declined: Weekly sync – Müller",
            _ => "Invitation: Weekly sync – Müller",
        };
        assert_eq!(message.subject(), Some(expected_subject));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_composed_reply_travels_through_postfix_to_the_organizers_inbox() {
    let stack = common::MailStack::get();
    let dir = tempfile::tempdir().expect("temp dir");
    let uid = common::unique("compose-e2e");
    let mut reply = mail(
        Method::Reply,
        Some("ACCEPTED"),
        ics("reply.ics", &uid),
        &uid,
    );
    reply.subject = format!("Accepted: {uid}");
    let composed = compose_imip(&reply).expect("composed");

    let password_file = dir.path().join("room1.password");
    std::fs::write(&password_file, stack.password("room1")).expect("password file");
    let config = imipd::config::SmtpConfig {
        host: stack.host().to_string(),
        port: stack.port("MAILSTACK_SUBMISSION_PORT"),
        tls: imipd::config::TlsMode::Starttls,
        ca_file: Some(stack.ca().into()),
        auth: imipd::config::AuthMethod::Password,
        oauth2: None,
        login: imipd::config::Login {
            username: Some("room1@example.test".into()),
            password_file: Some(password_file),
            password_env: None,
        },
        allow_plaintext: false,
        retry_initial_secs: 30,
        retry_max_secs: 3600,
    };
    let sender = imipd::smtp::Sender::new(&config, "room1@example.test", stack.password("room1"))
        .expect("SMTP transport");
    let item = imipd::store::OutboxItem {
        id: 0,
        mailbox: "room1@example.test".into(),
        message_id: composed.message_id.clone(),
        envelope_from: composed.envelope_from.clone(),
        envelope_to: composed.envelope_to.clone(),
        attempts: 0,
        next_attempt: 0,
        last_error: None,
    };
    sender
        .send(&item, &composed.bytes)
        .await
        .expect("submission accepts the reply");

    let raw = stack
        .wait_for_message("alice", dir.path(), Duration::from_secs(30), |raw| {
            String::from_utf8_lossy(raw).contains(&uid)
        })
        .await
        .expect("the reply arrives in alice's INBOX");
    let found = extract(&raw).expect("extracts");
    assert_eq!(found.sender.from.as_deref(), Some("room1@example.test"));
    assert_eq!(
        found.sender.message_id.as_deref(),
        Some(composed.message_id.as_str())
    );
    assert_eq!(
        found.sender.subject.as_deref(),
        Some(reply.subject.as_str())
    );
    let distinct: Vec<_> = found.distinct_parts().collect();
    assert_eq!(distinct.len(), 1, "inline part and its attachment collapse");
    assert_eq!(distinct[0].method_param.as_deref(), Some("REPLY"));
    assert_eq!(distinct[0].text, reply.ical);
    assert!(
        !found.sender.delivered_to.is_empty(),
        "Dovecot records Delivered-To"
    );
}
