//! Finds every calendar object in a message, and who sent it.
//!
//! A calendar part is any `text/calendar`, `text/x-vcalendar` or `application/ics` part, or a
//! part named `*.ics` / `*.vcs` whatever its type (the project's tolerant policy: Google's
//! `invite.ics` has no `method` parameter, forwarders strip it). Parts inside a forwarded
//! `message/rfc822` are not the sender's own invitation and are not reported as such.

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not an RFC 5322 message (no header could be parsed)")]
    NotAMessage,
}

/// One calendar part of a message, decoded to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPart {
    /// The part's position among the message's MIME parts (0 is the root).
    pub index: usize,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// The Content-Type `method` parameter, upper-cased, if present.
    pub method_param: Option<String>,
    /// The part's file name, if any.
    pub file_name: Option<String>,
    /// The decoded text of the part (transfer encoding and charset undone).
    pub text: String,
}

/// The facts about a message's origin that trust and loop checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderFacts {
    /// The From address, lower case.
    pub from: Option<String>,
    /// The From display name.
    pub from_name: Option<String>,
    /// The Sender address, lower case (Google's calendar-notification@google.com).
    pub sender: Option<String>,
    /// Reply-To, recorded but never used for trust.
    pub reply_to: Option<String>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// References and In-Reply-To, without angle brackets.
    pub references: Vec<String>,
    pub subject: Option<String>,
    /// `Auto-Submitted` value, lower case (`no` when absent).
    pub auto_submitted: Option<String>,
}

/// What [`extract`] found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub sender: SenderFacts,
    pub parts: Vec<CalendarPart>,
}

/// Reads the raw RFC 5322 bytes of a message.
pub fn extract(raw: &[u8]) -> Result<Extracted, ExtractError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ExtractError::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(ExtractError::NotAMessage);
    }
    let sender = SenderFacts {
        from: first_address(message.from()),
        from_name: message
            .from()
            .and_then(Address::first)
            .and_then(|a| a.name.as_deref())
            .map(str::to_string),
        sender: first_address(message.sender()),
        reply_to: first_address(message.reply_to()),
        message_id: message.message_id().map(str::to_string),
        references: message
            .in_reply_to()
            .as_text_list()
            .into_iter()
            .flatten()
            .chain(message.references().as_text_list().into_iter().flatten())
            .fold(Vec::new(), |mut all: Vec<String>, r| {
                if !all.iter().any(|seen| seen == r.as_ref()) {
                    all.push(r.to_string());
                }
                all
            }),
        subject: message.subject().map(str::to_string),
        auto_submitted: message
            .header_raw("Auto-Submitted")
            .map(|v| v.trim().to_ascii_lowercase()),
    };
    let mut parts = Vec::new();
    for (index, part) in message.parts.iter().enumerate() {
        let (content_type, method_param) = match part.content_type() {
            Some(ct) => (
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase(),
                ct.attribute("method")
                    .map(|m| m.trim().to_ascii_uppercase()),
            ),
            None => ("text/plain".to_string(), None),
        };
        let file_name = part.attachment_name().map(str::to_string);
        if !is_calendar(&content_type, file_name.as_deref()) {
            continue;
        }
        let text = match &part.body {
            PartType::Text(text) | PartType::Html(text) => text.to_string(),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                String::from_utf8_lossy(bytes).into_owned()
            }
            PartType::Message(_) | PartType::Multipart(_) => continue,
        };
        parts.push(CalendarPart {
            index,
            content_type,
            method_param,
            file_name,
            text,
        });
    }
    Ok(Extracted { sender, parts })
}

fn first_address(address: Option<&Address<'_>>) -> Option<String> {
    address
        .and_then(Address::first)
        .and_then(|a| a.address.as_deref())
        .map(str::to_lowercase)
}

fn is_calendar(content_type: &str, file_name: Option<&str>) -> bool {
    matches!(
        content_type,
        "text/calendar" | "text/x-vcalendar" | "application/ics"
    ) || file_name.is_some_and(|name| {
        let name = name.to_ascii_lowercase();
        name.ends_with(".ics") || name.ends_with(".vcs")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GMAIL_LIKE: &str = "From: Alice <Alice@Example.test>\r\nSender: calendar-notification@google.com\r\n\
To: room1@example.test\r\nSubject: Invitation: Sync\r\nMessage-ID: <m1@example.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b2\r\nContent-Type: text/calendar; charset=UTF-8; method=request\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n\
END:VCALENDAR\r\n--b2--\r\n--b1\r\nContent-Type: application/ics; name=\"invite.ics\"\r\n\
Content-Disposition: attachment; filename=\"invite.ics\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
QkVHSU46VkNBTEVOREFSDQpNRVRIT0Q6UkVRVUVTVA0KRU5EOlZDQUxFTkRBUg0K\r\n--b1--\r\n";

    #[test]
    fn finds_inline_and_attached_calendar_parts() {
        let found = extract(GMAIL_LIKE.as_bytes()).expect("message");
        assert_eq!(found.parts.len(), 2);
        assert_eq!(found.parts[0].content_type, "text/calendar");
        assert_eq!(found.parts[0].method_param.as_deref(), Some("REQUEST"));
        assert_eq!(found.parts[1].content_type, "application/ics");
        assert_eq!(found.parts[1].method_param, None);
        assert!(
            found.parts[1]
                .text
                .starts_with("BEGIN:VCALENDAR\r\nMETHOD:REQUEST")
        );
    }

    #[test]
    fn sender_facts_are_normalised() {
        let found = extract(GMAIL_LIKE.as_bytes()).expect("message");
        assert_eq!(found.sender.from.as_deref(), Some("alice@example.test"));
        assert_eq!(found.sender.from_name.as_deref(), Some("Alice"));
        assert_eq!(
            found.sender.sender.as_deref(),
            Some("calendar-notification@google.com")
        );
        assert_eq!(found.sender.message_id.as_deref(), Some("m1@example.test"));
    }

    #[test]
    fn plain_mail_has_no_calendar_parts() {
        let plain = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n";
        assert!(extract(plain).expect("message").parts.is_empty());
    }
}
