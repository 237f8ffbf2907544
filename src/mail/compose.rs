//! Writes iMIP messages (RFC 6047) in the layout calendar clients expect (CalConnect's
//! recommendation, as Cyrus and Stalwart send): `multipart/mixed` holding a
//! `multipart/alternative` (a human summary in `text/plain`, then
//! `text/calendar; method=…`), and the same object again as an `application/ics` attachment.

use crate::calendar::{CalAddress, Method};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
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
    /// The human summary for the `text/plain` part (see [`human_summary`]).
    pub text: String,
    /// An optional `text/html` rendering of the summary, placed between the plain text and
    /// the calendar in the `multipart/alternative`.
    pub html: Option<String>,
    /// The iTIP object, RFC 5545 text with CRLF line ends.
    pub ical: String,
    /// A vCalendar 1.0 copy of the object (written by the calendar layer), attached as
    /// `text/x-vCalendar` when the request came as vCalendar.
    pub vcalendar: Option<String>,
    /// The Message-ID of the message this answers, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The References chain of the message this answers (without angle brackets, oldest
    /// first); `in_reply_to` is appended to it in the References header.
    pub references: Vec<String>,
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

/// The attachment's file name: `invite.ics` for organiser messages (what Google and Outlook
/// use), `reply.ics` / `counter.ics` … for the others.
fn attachment_name(method: &Method) -> String {
    match method {
        Method::Request | Method::Add | Method::Publish | Method::Cancel => "invite.ics".into(),
        other => format!("{}.ics", other.as_str().to_ascii_lowercase()),
    }
}

/// The Subject clients expect for an iMIP message: "Accepted: …", "Declined: …",
/// "Tentative: …" for replies (by PARTSTAT), "Invitation: …"/"Updated invitation: …",
/// "Canceled: …", "New time proposed: …", "New time declined: …", "Refresh: …".
pub fn subject_for(method: &Method, partstat: Option<&str>, updated: bool, title: &str) -> String {
    let verb = match method {
        Method::Reply => match partstat.map(str::to_ascii_uppercase).as_deref() {
            Some("ACCEPTED") => "Accepted",
            Some("DECLINED") => "Declined",
            Some("TENTATIVE") => "Tentative",
            Some("DELEGATED") => "Delegated",
            _ => "Reply",
        },
        Method::Request | Method::Add if updated => "Updated invitation",
        Method::Request | Method::Add => "Invitation",
        Method::Cancel => "Canceled",
        Method::Counter => "New time proposed",
        Method::DeclineCounter => "New time declined",
        Method::Refresh => "Refresh",
        Method::Publish => "Published",
        Method::Other(_) => "Calendar",
    };
    format!("{verb}: {title}")
}

/// When an event happens, as written in its DTSTART/DTEND, for the human summary.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// An all-day event (VALUE=DATE), end exclusive.
    Days(NaiveDate, Option<NaiveDate>),
    /// Times in a known zone (a TZID chrono-tz knows, or UTC).
    Zoned(DateTime<Tz>, Option<DateTime<Tz>>),
    /// Floating times, or times in a zone we cannot name; the TZID is shown as written.
    Local(NaiveDateTime, Option<NaiveDateTime>, Option<String>),
}

/// Finds a chrono-tz zone for a TZID as clients write it: IANA names, with the prefixes
/// Evolution and older libical add (`/freeassociation.sourceforge.net/Europe/Berlin`,
/// `/softwarestudio.org/Olson_20011030_5/Europe/Berlin`).
fn zone(tzid: &str) -> Option<Tz> {
    let tzid = tzid.trim().trim_matches('"');
    if let Ok(tz) = tzid.parse::<Tz>() {
        return Some(tz);
    }
    let pieces: Vec<&str> = tzid.split('/').collect();
    (1..pieces.len()).find_map(|i| pieces[i..].join("/").parse::<Tz>().ok())
}

fn property<'a>(lines: &'a [String], name: &str) -> Option<(Option<String>, bool, &'a str)> {
    // `get` and not slicing: the byte after the name may fall inside a multibyte character
    // of another property's value (a UID of `g6` and a non-ASCII letter; a fuzz finding).
    let line = lines.iter().find(|l| {
        l.get(..name.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(name))
            && matches!(l.as_bytes().get(name.len()), Some(b':' | b';'))
    })?;
    let (head, value) = line.split_once(':')?;
    let mut tzid = None;
    let mut date = false;
    for param in head.split(';').skip(1) {
        if let Some((k, v)) = param.split_once('=') {
            if k.eq_ignore_ascii_case("TZID") {
                tzid = Some(v.trim_matches('"').to_string());
            } else if k.eq_ignore_ascii_case("VALUE") && v.eq_ignore_ascii_case("DATE") {
                date = true;
            }
        }
    }
    Some((tzid, date || value.trim().len() == 8, value.trim()))
}

impl When {
    /// Reads DTSTART/DTEND of the first VEVENT or VTODO (DUE for a task) of an iCalendar text.
    pub fn from_ical(ical: &str) -> Option<When> {
        let mut lines: Vec<String> = Vec::new();
        let mut inside = false;
        for raw in ical.split('\n') {
            let raw = raw.trim_end_matches('\r');
            if let Some(rest) = raw.strip_prefix([' ', '\t']) {
                if let Some(last) = lines.last_mut() {
                    last.push_str(rest);
                }
                continue;
            }
            let upper = raw.to_ascii_uppercase();
            if upper == "BEGIN:VEVENT" || upper == "BEGIN:VTODO" {
                inside = true;
            } else if inside && (upper.starts_with("BEGIN:") || upper.starts_with("END:")) {
                // A nested VALARM or the component's end: the times were before it.
                break;
            } else if inside {
                lines.push(raw.to_string());
            }
        }
        let (tzid, date, start) = property(&lines, "DTSTART")?;
        let end = property(&lines, "DTEND").or_else(|| property(&lines, "DUE"));
        if date {
            let parse = |v: &str| NaiveDate::parse_from_str(v.get(..8)?, "%Y%m%d").ok();
            return Some(When::Days(
                parse(start)?,
                end.and_then(|(_, _, v)| parse(v)),
            ));
        }
        let naive = |v: &str| {
            NaiveDateTime::parse_from_str(v.trim_end_matches(['Z', 'z']), "%Y%m%dT%H%M%S").ok()
        };
        let utc = start.ends_with(['Z', 'z']);
        let start_naive = naive(start)?;
        let end_value = end.map(|(_, _, v)| v);
        let tz = if utc {
            Some(Tz::UTC)
        } else {
            tzid.as_deref().and_then(zone)
        };
        match tz {
            Some(tz) => {
                let to_zone = |v: &str| -> Option<DateTime<Tz>> {
                    let n = naive(v)?;
                    if v.ends_with(['Z', 'z']) {
                        Some(Utc.from_utc_datetime(&n).with_timezone(&tz))
                    } else {
                        tz.from_local_datetime(&n).earliest()
                    }
                };
                let start = if utc {
                    Utc.from_utc_datetime(&start_naive).with_timezone(&tz)
                } else {
                    tz.from_local_datetime(&start_naive).earliest()?
                };
                Some(When::Zoned(start, end_value.and_then(to_zone)))
            }
            None => Some(When::Local(start_naive, end_value.and_then(naive), tzid)),
        }
    }

    /// "Tue 3 Dec 15:00–16:00 CET", "Tue 3 Dec 15:00 – Wed 4 Dec 10:00 CET", "Tue 3 Dec (all
    /// day)", "Tue 3 Dec – Thu 5 Dec (all day)".
    pub fn describe(&self) -> String {
        const DAY: &str = "%a %-d %b";
        match self {
            When::Days(start, end) => {
                let last = end.and_then(|e| e.pred_opt()).filter(|l| l > start);
                match last {
                    Some(last) => format!("{} – {} (all day)", start.format(DAY), last.format(DAY)),
                    None => format!("{} (all day)", start.format(DAY)),
                }
            }
            When::Zoned(start, end) => {
                let zone = start.format("%Z").to_string();
                match end {
                    Some(end) if end.date_naive() == start.date_naive() => format!(
                        "{} {}–{} {zone}",
                        start.format(DAY),
                        start.format("%H:%M"),
                        end.format("%H:%M")
                    ),
                    Some(end) => format!(
                        "{} {} – {} {} {}",
                        start.format(DAY),
                        start.format("%H:%M"),
                        end.format(DAY),
                        end.format("%H:%M"),
                        end.format("%Z")
                    ),
                    None => format!("{} {} {zone}", start.format(DAY), start.format("%H:%M")),
                }
            }
            When::Local(start, end, tzid) => {
                let zone = tzid
                    .as_deref()
                    .map(|z| format!(" ({z})"))
                    .unwrap_or_default();
                match end {
                    Some(end) if end.date() == start.date() => format!(
                        "{} {}–{}{zone}",
                        start.format(DAY),
                        start.format("%H:%M"),
                        end.format("%H:%M")
                    ),
                    Some(end) => format!(
                        "{} {} – {} {}{zone}",
                        start.format(DAY),
                        start.format("%H:%M"),
                        end.format(DAY),
                        end.format("%H:%M")
                    ),
                    None => format!("{} {}{zone}", start.format(DAY), start.format("%H:%M")),
                }
            }
        }
    }
}

/// The one-line human summary of a decision: "Room 1 accepted: Weekly sync, Tue 3 Dec
/// 15:00–16:00 CET". `action` is the lower-case verb ("accepted", "declined", "proposes a new
/// time for", …).
pub fn human_summary(who: &str, action: &str, title: &str, when: Option<&When>) -> String {
    match when {
        Some(when) => format!("{who} {action}: {title}, {}\r\n", when.describe()),
        None => format!("{who} {action}: {title}\r\n"),
    }
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
    let mut chain: Vec<String> = Vec::new();
    for id in mail.references.iter().chain(mail.in_reply_to.iter()) {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        if !id.is_empty() && !chain.iter().any(|seen| seen == id) {
            chain.push(id.to_string());
        }
    }
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(format!("<{}>", parent.trim_matches(['<', '>'])));
    }
    if !chain.is_empty() {
        let header = chain
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ");
        builder = builder.references(header);
    }
    let mut alternative = MultiPart::alternative().singlepart(SinglePart::plain(mail.text.clone()));
    if let Some(html) = &mail.html {
        alternative = alternative.singlepart(SinglePart::html(html.clone()));
    }
    let alternative = alternative.singlepart(
        SinglePart::builder()
            .header(calendar_type)
            .header(ContentTransferEncoding::Base64)
            .body(mail.ical.clone()),
    );
    let mut mixed = MultiPart::mixed().multipart(alternative).singlepart(
        Attachment::new(attachment_name(&mail.method)).body(mail.ical.clone(), ics_type),
    );
    if let Some(vcalendar) = &mail.vcalendar {
        let vcs_type = ContentType::parse("text/x-vCalendar; charset=UTF-8")
            .expect("a fixed, valid content type");
        mixed = mixed.singlepart(
            Attachment::new("invite.vcs".to_string()).body(vcalendar.clone(), vcs_type),
        );
    }
    let message = builder.multipart(mixed)?;
    Ok(Composed {
        message_id: mail.message_id.clone(),
        envelope_from: mail.from.email().to_string(),
        envelope_to: vec![mail.to.email().to_string()],
        bytes: message.formatted(),
    })
}

/// A notice to a person (a resource's delegate) about a booking: plain text, with the
/// booking attached as `booking.ics` without METHOD, so that no client offers to answer it
/// as an invitation in the delegate's name.
#[derive(Debug, Clone)]
pub struct NoticeMail {
    /// The mailbox that sends it.
    pub from: CalAddress,
    /// Its display name.
    pub from_name: Option<String>,
    /// The person told.
    pub to: CalAddress,
    /// The Subject.
    pub subject: String,
    /// The text.
    pub text: String,
    /// The booking, iCalendar text without METHOD.
    pub ical: String,
    /// The deterministic Message-ID (see [`reply_message_id`]).
    pub message_id: String,
    /// The Date.
    pub date: SystemTime,
}

/// Composes a [`NoticeMail`]: marked `Auto-Submitted: auto-generated` (RFC 3834), so that
/// auto-responders leave it alone.
pub fn compose_notice(mail: &NoticeMail) -> Result<Composed, ComposeError> {
    let from = mailbox("From", &mail.from, mail.from_name.as_deref())?;
    let to = mailbox("To", &mail.to, None)?;
    let ics_type = ContentType::parse("application/ics").expect("a fixed, valid content type");
    let message = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .date(mail.date)
        .message_id(Some(format!("<{}>", mail.message_id)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(mail.text.clone()))
                .singlepart(
                    Attachment::new("booking.ics".to_string()).body(mail.ical.clone(), ics_type),
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
            html: None,
            ical: "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n".into(),
            vcalendar: None,
            in_reply_to: Some("invite-1@example.test".into()),
            references: vec!["root@example.test".into()],
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
        assert!(text.contains("References: <root@example.test> <invite-1@example.test>\r\n"));
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
    fn a_multibyte_character_where_a_property_name_would_end_is_no_panic() {
        // The process fuzzer's finding: `UID:g6` followed by a three-byte character puts byte 7
        // (the length of DTSTART) inside it.
        let ical = "BEGIN:VEVENT\r\nUID:g6\u{e7e7}\r\nDTSTART:20261203T140000Z\r\nEND:VEVENT\r\n";
        let when = When::from_ical(ical).expect("times");
        assert_eq!(when.describe(), "Thu 3 Dec 14:00 UTC");
    }

    #[test]
    fn zoned_times_are_described_in_the_events_zone() {
        let ical = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;TZID=Europe/Berlin:20261203T150000\r\nDTEND;TZID=Europe/Berlin:20261203T160000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let when = When::from_ical(ical).expect("times");
        assert_eq!(
            human_summary("Room 1", "accepted", "Weekly sync", Some(&when)),
            "Room 1 accepted: Weekly sync, Thu 3 Dec 15:00–16:00 CET\r\n"
        );
    }

    #[test]
    fn utc_evolution_prefixed_floating_and_all_day_times_are_described() {
        let one = |start: &str, end: &str| {
            let ical = format!("BEGIN:VEVENT\r\n{start}\r\n{end}\r\nEND:VEVENT\r\n");
            When::from_ical(&ical).expect("times").describe()
        };
        assert_eq!(
            one("DTSTART:20261203T140000Z", "DTEND:20261204T090000Z"),
            "Thu 3 Dec 14:00 – Fri 4 Dec 09:00 UTC"
        );
        assert_eq!(
            one(
                "DTSTART;TZID=/freeassociation.sourceforge.net/Europe/Berlin:20260703T150000",
                "DTEND;TZID=/freeassociation.sourceforge.net/Europe/Berlin:20260703T160000"
            ),
            "Fri 3 Jul 15:00–16:00 CEST"
        );
        assert_eq!(
            one(
                "DTSTART;TZID=W. Europe Standard Time:20261203T150000",
                "DTEND;TZID=W. Europe Standard Time:20261203T160000"
            ),
            "Thu 3 Dec 15:00–16:00 (W. Europe Standard Time)"
        );
        assert_eq!(
            one("DTSTART;VALUE=DATE:20261203", "DTEND;VALUE=DATE:20261204"),
            "Thu 3 Dec (all day)"
        );
        assert_eq!(
            one("DTSTART;VALUE=DATE:20261203", "DTEND;VALUE=DATE:20261206"),
            "Thu 3 Dec – Sat 5 Dec (all day)"
        );
    }

    #[test]
    fn subjects_follow_the_method_and_partstat() {
        assert_eq!(
            subject_for(&Method::Reply, Some("declined"), false, "X"),
            "Declined: X"
        );
        assert_eq!(
            subject_for(&Method::Request, None, true, "X"),
            "Updated invitation: X"
        );
        assert_eq!(
            subject_for(&Method::DeclineCounter, None, false, "X"),
            "New time declined: X"
        );
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
