//! Writes iMIP messages (RFC 6047) in the layout calendar clients expect (CalConnect's
//! recommendation, as Cyrus and Stalwart send): `multipart/mixed` holding a
//! `multipart/alternative` (a human summary in `text/plain`, then
//! `text/calendar; method=…`), and the same object again as an `application/ics` attachment.

use crate::calendar::{CalAddress, Method};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};
use std::time::SystemTime;

/// Why a message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid address {address:?} for {role}: {reason}")]
    Address {
        role: &'static str,
        address: String,
        reason: String,
    },
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// Everything an outgoing iMIP message says.
#[derive(Debug, Clone)]
pub struct ReplyMail {
    /// The exact address of this mailbox that the organiser invited (an alias when it was one).
    pub from: CalAddress,
    pub from_name: Option<String>,
    pub to: CalAddress,
    pub to_name: Option<String>,
    pub method: Method,
    pub subject: String,
    /// The human summary for the `text/plain` part.
    pub text: String,
    /// The iTIP object, RFC 5545 text with CRLF line ends.
    pub ical: String,
    /// The Message-ID of the message this answers, without angle brackets.
    pub in_reply_to: Option<String>,
    /// This message's Message-ID, without angle brackets (see [`reply_message_id`]).
    pub message_id: String,
    pub date: SystemTime,
}

/// A composed message, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Composed {
    pub message_id: String,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// The whole RFC 5322 message, exactly as it is handed to SMTP.
    pub bytes: Vec<u8>,
}

/// The deterministic Message-ID of a reply: the same decision about the same version of the
/// same object always gets the same id, so a resend after a crash is recognisable.
pub fn reply_message_id(
    mailbox: &CalAddress,
    uid: &str,
    recurrence_id: Option<&str>,
    sequence: i64,
    dtstamp: Option<&str>,
    partstat: &str,
) -> String {
    let mut hash = Sha256::new();
    for field in [
        mailbox.email(),
        uid,
        recurrence_id.unwrap_or(""),
        &sequence.to_string(),
        dtstamp.unwrap_or(""),
        partstat,
    ] {
        hash.update(field.as_bytes());
        hash.update([0u8]);
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let domain = mailbox.email().rsplit_once('@').map_or("imipd", |(_, d)| d);
    format!("imipd-{hex}@{domain}")
}

fn mailbox(
    role: &'static str,
    address: &CalAddress,
    name: Option<&str>,
) -> Result<Mailbox, ComposeError> {
    let parsed = address
        .email()
        .parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Address {
            role,
            address: address.email().to_string(),
            reason: e.to_string(),
        })?;
    Ok(Mailbox::new(name.map(str::to_string), parsed))
}

/// Composes an iMIP message.
pub fn compose_imip(mail: &ReplyMail) -> Result<Composed, ComposeError> {
    let from = mailbox("From", &mail.from, mail.from_name.as_deref())?;
    let to = mailbox("To", &mail.to, mail.to_name.as_deref())?;
    let calendar_type = ContentType::parse(&format!(
        "text/calendar; charset=UTF-8; method={}",
        mail.method.as_str()
    ))
    .expect("a fixed, valid content type");
    let ics_type = ContentType::parse("application/ics").expect("a fixed, valid content type");
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .date(mail.date)
        .message_id(Some(format!("<{}>", mail.message_id)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ));
    if let Some(parent) = &mail.in_reply_to {
        builder = builder
            .in_reply_to(format!("<{parent}>"))
            .references(format!("<{parent}>"));
    }
    let message = builder.multipart(
        MultiPart::mixed()
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(mail.text.clone()))
                    .singlepart(
                        SinglePart::builder()
                            .header(calendar_type)
                            .header(ContentTransferEncoding::Base64)
                            .body(mail.ical.clone()),
                    ),
            )
            .singlepart(
                Attachment::new("invite.ics".to_string()).body(mail.ical.clone(), ics_type),
            ),
    )?;
    Ok(Composed {
        message_id: mail.message_id.clone(),
        envelope_from: mail.from.email().to_string(),
        envelope_to: vec![mail.to.email().to_string()],
        bytes: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::extract;

    fn sample() -> ReplyMail {
        ReplyMail {
            from: CalAddress::parse("room1@example.test").expect("address"),
            from_name: Some("Room 1".into()),
            to: CalAddress::parse("alice@example.test").expect("address"),
            to_name: None,
            method: Method::Reply,
            subject: "Accepted: Weekly sync".into(),
            text: "Room 1 accepted: Weekly sync".into(),
            ical: "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n".into(),
            in_reply_to: Some("invite-1@example.test".into()),
            message_id: "imipd-1@example.test".into(),
            date: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn composed_reply_parses_back_with_its_calendar_and_headers() {
        let composed = compose_imip(&sample()).expect("composed");
        let text = String::from_utf8(composed.bytes.clone()).expect("ascii message");
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"));
        assert!(text.contains("X-Auto-Response-Suppress: All\r\n"));
        assert!(text.contains("In-Reply-To: <invite-1@example.test>\r\n"));
        let found = extract(&composed.bytes).expect("parses back");
        assert_eq!(
            found.sender.message_id.as_deref(),
            Some("imipd-1@example.test")
        );
        assert_eq!(found.parts.len(), 2, "inline part and attachment");
        assert_eq!(found.parts[0].method_param.as_deref(), Some("REPLY"));
        assert_eq!(found.parts[0].text, sample().ical);
        assert_eq!(found.parts[1].content_type, "application/ics");
        assert_eq!(composed.envelope_to, vec!["alice@example.test".to_string()]);
    }

    #[test]
    fn reply_message_id_is_deterministic_and_sensitive_to_the_decision() {
        let room = CalAddress::parse("room1@example.test").expect("address");
        let a = reply_message_id(&room, "u1", None, 0, Some("20270101T000000Z"), "ACCEPTED");
        let b = reply_message_id(&room, "u1", None, 0, Some("20270101T000000Z"), "ACCEPTED");
        let c = reply_message_id(&room, "u1", None, 0, Some("20270101T000000Z"), "DECLINED");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.ends_with("@example.test"));
    }
}
