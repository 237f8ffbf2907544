//! The backlog corpus: real vendor messages from `tests/data/mail`, each copy given its own
//! UID, Message-ID, mailbox and time slot, with the MIME structure and transfer encodings of
//! the original kept (the calendar part is decoded, rewritten, and encoded again in place).
//!
//! The mix, by message number `i` (out of every 10):
//! - 1 and 6: a recurring series (Gmail's daily series with a moved exception);
//! - 9: a request for the same slot as message `i - 1` under a new UID (a conflict);
//! - 4 (every other time): a CANCEL of an earlier single booking (Zimbra's shape);
//! - 7 (every other time): a REPLY to a booking the room never made (Apple iOS's shape);
//! - the rest: single requests from Apple, Gmail, Thunderbird, Zimbra, Exchange 365 and
//!   Proton in turn.
//!
//! Singles start on a 3-hour grid; a series starts 90 minutes after its grid slot, so a
//! series never meets a single of the corpus (unless the vendors' time zones shift one onto
//! the other: the benchmark counts the conflicts it actually got).

use chrono::{Duration, NaiveDateTime};
use mail_parser::{Encoding, MessageParser, MimeHeaders};

/// Single requests, one per vendor, in turn.
/// (Evolution's request is left out: it names the zone
/// `/freeassociation.sourceforge.net/Europe/Berlin` without a VTIMEZONE, which imipd
/// rejects, so it would never be answered.)
const SINGLES: [&str; 6] = [
    "mail/apple/apple-calendar-request.eml",
    "mail/gmail/gmail-request.eml",
    "mail/thunderbird/thunderbird-request.eml",
    "mail/zimbra/zimbra-request.eml",
    "mail/outlook/exchange365-request.eml",
    "mail/proton/proton-request-lowercase-method.eml",
];
const RECURRING: &str = "mail/gmail/gmail-recurring-with-exception.eml";
const CANCEL: &str = "mail/zimbra/zimbra-cancel.eml";
const REPLY: &str = "mail/apple/apple-ios-reply.eml";

/// What a corpus message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Recurring,
    Conflict,
    Cancel,
    Reply,
}

/// One message of the corpus.
pub struct Item {
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

/// The corpus templates, read once.
pub struct Corpus {
    singles: Vec<Vec<u8>>,
    recurring: Vec<u8>,
    cancel: Vec<u8>,
    reply: Vec<u8>,
    base: NaiveDateTime,
}

fn read(path: &str) -> Vec<u8> {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/").to_string() + path;
    let text = std::fs::read(&full).unwrap_or_else(|e| panic!("read {full}: {e}"));
    // The files are stored with LF line ends; the wire form is CRLF.
    let text = String::from_utf8_lossy(&text).replace("\r\n", "\n");
    text.replace('\n', "\r\n").into_bytes()
}

impl Corpus {
    /// Loads the templates; slot 0 starts at `base` (UTC, in the future).
    pub fn load(base: NaiveDateTime) -> Corpus {
        Corpus {
            singles: SINGLES.iter().map(|p| read(p)).collect(),
            recurring: read(RECURRING),
            cancel: read(CANCEL),
            reply: read(REPLY),
            base,
        }
    }

    fn slot(&self, i: usize) -> NaiveDateTime {
        self.base + Duration::hours(3 * i as i64)
    }

    /// `count` messages from `organizer` (an address) to the local user `room`, UIDs
    /// prefixed by `tag`.
    pub fn messages(&self, room: &str, organizer: &str, tag: &str, count: usize) -> Vec<Item> {
        let room = &format!("{room}@example.test");
        let mut singles_sent = 0usize;
        let mut booked: Vec<usize> = Vec::new();
        let mut cancels = 0usize;
        (0..count)
            .map(|i| {
                let uid = format!("{tag}-{i}");
                let single = |n: usize, slot: usize| {
                    rewrite(
                        &self.singles[n % self.singles.len()],
                        &Rewrite {
                            uid: uid.clone(),
                            room,
                            organizer,
                            start: Some(self.slot(slot)),
                            message_id: format!("{uid}@bench.example.test"),
                        },
                    )
                };
                let (kind, bytes) = match i % 10 {
                    1 | 6 => (
                        Kind::Recurring,
                        rewrite(
                            &self.recurring,
                            &Rewrite {
                                uid: uid.clone(),
                                room,
                                organizer,
                                start: Some(self.slot(i) + Duration::minutes(90)),
                                message_id: format!("{uid}@bench.example.test"),
                            },
                        ),
                    ),
                    // The same vendor as message i - 1 (a single): the same time zone, so
                    // the same instant.
                    9 if i > 0 => (Kind::Conflict, single(singles_sent, i - 1)),
                    4 if cancels.is_multiple_of(2) && !booked.is_empty() => {
                        cancels += 1;
                        let victim = booked.remove(0);
                        let bytes = rewrite(
                            &self.cancel,
                            &Rewrite {
                                uid: format!("{tag}-{victim}"),
                                room,
                                organizer,
                                start: Some(self.slot(victim)),
                                message_id: format!("{uid}-cancel@bench.example.test"),
                            },
                        );
                        (Kind::Cancel, bytes)
                    }
                    7 if (i / 10).is_multiple_of(2) => {
                        let bytes = rewrite(
                            &self.reply,
                            &Rewrite {
                                uid: uid.clone(),
                                room,
                                organizer,
                                start: None,
                                message_id: format!("{uid}-reply@bench.example.test"),
                            },
                        );
                        (Kind::Reply, bytes)
                    }
                    _ => {
                        if i % 10 == 4 {
                            cancels += 1;
                        }
                        singles_sent += 1;
                        booked.push(i);
                        (Kind::Single, single(singles_sent, i))
                    }
                };
                Item { kind, bytes }
            })
            .collect()
    }
}

struct Rewrite<'a> {
    uid: String,
    room: &'a str,
    organizer: &'a str,
    /// Where the first VEVENT's DTSTART moves (every date-time of the events moves with it).
    start: Option<NaiveDateTime>,
    message_id: String,
}

/// Replaces `roomN@example.test` and `alice@example.test` by the run's addresses.
fn readdress(text: &str, room: &str, organizer: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("@example.test") {
        let head = &rest[..at];
        let local_start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
            .map_or(0, |p| p + 1);
        let local = &head[local_start..];
        out.push_str(&head[..local_start]);
        let is_room = local.starts_with("room") && local[4..].chars().all(|c| c.is_ascii_digit());
        if is_room {
            out.push_str(room);
        } else if local == "alice" {
            out.push_str(organizer);
        } else {
            out.push_str(local);
            out.push_str("@example.test");
        }
        rest = &rest[at + "@example.test".len()..];
    }
    out.push_str(rest);
    out
}

/// Rewrites one message: its calendar parts (decoded, changed, encoded as they came), then
/// the header block (Message-ID, addresses).
fn rewrite(raw: &[u8], r: &Rewrite<'_>) -> Vec<u8> {
    let message = MessageParser::default()
        .parse(raw)
        .expect("a corpus template parses");
    let mut splices: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for part in &message.parts {
        let is_calendar = part.content_type().is_some_and(|ct| {
            let full = format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            );
            full == "text/calendar" || full == "application/ics"
        });
        if !is_calendar {
            continue;
        }
        let decoded = match &part.body {
            mail_parser::PartType::Text(t) => t.as_bytes().to_vec(),
            mail_parser::PartType::Binary(b) | mail_parser::PartType::InlineBinary(b) => b.to_vec(),
            _ => continue,
        };
        let text = calendar(&String::from_utf8_lossy(&decoded), r);
        let encoded = match part.encoding {
            Encoding::Base64 => base64(text.as_bytes()),
            Encoding::QuotedPrintable => quoted_printable(text.as_bytes()),
            Encoding::None => text.into_bytes(),
        };
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        // Keep the line end before the next boundary where the original had one.
        let tail = if raw[start..end].ends_with(b"\r\n") && !encoded.ends_with(b"\r\n") {
            b"\r\n".to_vec()
        } else {
            Vec::new()
        };
        splices.push((start, end, [encoded, tail].concat()));
    }
    splices.sort_by_key(|s| s.0);
    let mut body = Vec::with_capacity(raw.len() + 256);
    let mut at = 0;
    for (start, end, bytes) in splices {
        body.extend_from_slice(&raw[at..start]);
        body.extend_from_slice(&bytes);
        at = end;
    }
    body.extend_from_slice(&raw[at..]);
    let split = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&body[..split]);
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| {
            if line.to_ascii_lowercase().starts_with("message-id:") {
                format!("Message-ID: <{}>", r.message_id)
            } else {
                readdress(line, r.room, r.organizer)
            }
        })
        .collect();
    let mut out = head.join("\r\n").into_bytes();
    out.extend_from_slice(&body[split..]);
    out
}

fn parse_stamp(value: &str) -> Option<(NaiveDateTime, bool, bool)> {
    let (v, utc) = match value.strip_suffix('Z') {
        Some(v) => (v, true),
        None => (value, false),
    };
    if v.len() == 8 {
        let date = chrono::NaiveDate::parse_from_str(v, "%Y%m%d").ok()?;
        return Some((date.and_hms_opt(0, 0, 0)?, utc, true));
    }
    Some((
        NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()?,
        utc,
        false,
    ))
}

fn format_stamp(t: NaiveDateTime, utc: bool, date_only: bool) -> String {
    if date_only {
        return t.format("%Y%m%d").to_string();
    }
    let mut s = t.format("%Y%m%dT%H%M%S").to_string();
    if utc {
        s.push('Z');
    }
    s
}

/// The calendar text with the run's UID and addresses, its event times moved to
/// `r.start`; lines unfolded (parsers accept long lines).
fn calendar(text: &str, r: &Rewrite<'_>) -> String {
    let unfolded = text
        .replace("\r\n", "\n")
        .replace("\n ", "")
        .replace("\n\t", "");
    let mut offset: Option<Duration> = None;
    let mut in_event = false;
    let mut lines = Vec::new();
    for line in unfolded.lines() {
        let upper = line.to_ascii_uppercase();
        let name = upper
            .split([';', ':'])
            .next()
            .unwrap_or_default()
            .to_string();
        if upper == "BEGIN:VEVENT" {
            in_event = true;
        } else if upper == "END:VEVENT" {
            in_event = false;
        }
        let mut line = readdress(line, r.room, r.organizer);
        if name == "UID" {
            line = format!("UID:{}", r.uid);
        } else if in_event
            && let Some(start) = r.start
            && matches!(
                name.as_str(),
                "DTSTART" | "DTEND" | "RECURRENCE-ID" | "EXDATE" | "RDATE"
            )
            && let Some((params, values)) = line.rsplit_once(':')
        {
            let moved: Vec<String> = values
                .split(',')
                .map(|v| match parse_stamp(v) {
                    Some((t, utc, date_only)) => {
                        let shift = *offset.get_or_insert(start - t);
                        format_stamp(t + shift, utc, date_only)
                    }
                    None => v.to_string(),
                })
                .collect();
            line = format!("{params}:{}", moved.join(","));
        }
        lines.push(line);
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

fn base64(bytes: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 57 * 2 + 4);
    for (n, chunk) in bytes.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            out.extend_from_slice(b"\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((v >> (18 - 6 * k)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 11 / 10);
    let mut column = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            column = 0;
            i += 2;
            continue;
        }
        let piece = if (b == b'\t' || b == b' ' || (33..=126).contains(&b)) && b != b'=' {
            vec![b]
        } else {
            format!("={b:02X}").into_bytes()
        };
        if column + piece.len() > 75 {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        column += piece.len();
        out.extend_from_slice(&piece);
        i += 1;
    }
    out
}
