//! Finds every calendar object in a message, and who sent it.
//!
//! A calendar part is any `text/calendar`, `text/x-vcalendar` or `application/ics` part (any
//! case), or a part named `*.ics` / `*.vcs` whatever its type (the project's tolerant policy:
//! Google's `invite.ics` has no `method` parameter, forwarders strip it, old PIMs send
//! `application/octet-stream`). Parts are found anywhere in nested multiparts. A TNEF part
//! (`application/ms-tnef`, `winmail.dat`) holding a meeting is converted (see [`super::tnef`]).
//!
//! Every part's text is decoded from the raw bytes (transfer encoding, then charset), so a
//! UTF-8 character split by a line fold — which mail-parser 0.11 decodes lossily — survives.
//!
//! Nothing is decided here: the header `method` and the body `METHOD` are both exposed, parts
//! inside a forwarded `message/rfc822` are flagged [`CalendarPart::forwarded`] with the
//! forwarded message's own sender facts, and identical parts (Gmail's inline part and
//! `invite.ics`) are flagged [`CalendarPart::duplicate_of`].

use super::dsn::{self, DeliveryReport};
use super::sender::{self, SenderFacts};
use super::tnef::{self, TnefError};
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde::Serialize;

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not an RFC 5322 message (no header could be parsed)")]
    NotAMessage,
}

/// How deep nested multiparts and messages are followed; mail-parser limits its own nesting,
/// this bounds our recursion independently of that.
const MAX_DEPTH: usize = 64;

/// Where a calendar part's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartSource {
    /// The part itself is iCalendar or vCalendar text.
    Calendar,
    /// The part is TNEF; the text is the meeting converted to iCalendar by imipd.
    Tnef,
}

/// The scheduling identity of one component, as written (a light scan, not a parse).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectKey {
    /// `VEVENT`, `VTODO`, … (upper case).
    pub component: String,
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurrence_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtstamp: Option<String>,
}

/// A calendar part that arrived inside a forwarded message (`message/rfc822`): it is not the
/// outer sender's own invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forwarded {
    /// 1 for a message attached to the message we received, 2 for one attached to that, …
    pub depth: usize,
    /// The sender facts of the forwarded message itself (its From, Message-ID, …).
    pub sender: SenderFacts,
}

/// One calendar part of a message, decoded to text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarPart {
    /// The part's position in a depth-first walk over all MIME parts of the message,
    /// nested messages included (0 is the root).
    pub index: usize,
    /// The IMAP-style part number (`1`, `2.1`, `3.2.1`).
    pub path: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// The Content-Type `method` parameter, upper-cased, if present.
    pub method_param: Option<String>,
    /// The `METHOD` (or vCalendar `X-METHOD`) property of the body, upper-cased, if present.
    pub body_method: Option<String>,
    /// `true` for vCalendar 1.0 (`VERSION:1.0`).
    pub vcalendar: bool,
    /// The part's file name, if any.
    pub file_name: Option<String>,
    pub source: PartSource,
    /// The components found, with their scheduling identity.
    pub objects: Vec<ObjectKey>,
    /// Set when the part is inside a forwarded message.
    pub forwarded: Option<Forwarded>,
    /// The `index` of an earlier part of the same message carrying the same objects (same
    /// METHOD, UIDs, RECURRENCE-IDs, SEQUENCEs and DTSTAMPs): process only one.
    pub duplicate_of: Option<usize>,
    /// The decoded text of the part (transfer encoding and charset undone).
    #[serde(skip)]
    pub text: String,
}

impl CalendarPart {
    /// `true` when the Content-Type `method` parameter and the body `METHOD` are both present
    /// and differ (compared case-insensitively).
    pub fn method_mismatch(&self) -> bool {
        matches!((&self.method_param, &self.body_method), (Some(p), Some(b)) if p != b)
    }
}

/// Something that was found but could not be used, for the log and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The IMAP-style part number.
    pub path: String,
    /// A stable code: `tnef_unreadable`, `tnef_not_meeting`, `tnef_recurring`,
    /// `not_a_calendar`, `undecodable`, `charset_lossy`.
    pub code: String,
    /// What went wrong, for a person.
    pub detail: String,
}

/// What [`extract`] found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extracted {
    pub sender: SenderFacts,
    pub parts: Vec<CalendarPart>,
    /// Set when the message is a delivery status notification (`multipart/report;
    /// report-type=delivery-status`): it must never be answered.
    pub delivery_report: Option<DeliveryReport>,
    pub problems: Vec<Problem>,
}

impl Extracted {
    /// The parts that are not duplicates of an earlier part.
    pub fn distinct_parts(&self) -> impl Iterator<Item = &CalendarPart> {
        self.parts.iter().filter(|p| p.duplicate_of.is_none())
    }
}

/// Reads the raw RFC 5322 bytes of a message.
pub fn extract(raw: &[u8]) -> Result<Extracted, ExtractError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ExtractError::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(ExtractError::NotAMessage);
    }
    let mut walker = Walker::default();
    walker.message(&message, 0, "", None, 0);
    let mut parts = walker.parts;
    mark_duplicates(&mut parts, &walker.scopes);
    Ok(Extracted {
        sender: sender::sender_facts(&message, 0),
        parts,
        delivery_report: walker.report,
        problems: walker.problems,
    })
}

#[derive(Default)]
struct Walker {
    next_index: usize,
    /// Per part, the nested message it belongs to (0 = the outer one): duplicates are only
    /// collapsed within one message.
    scopes: Vec<usize>,
    next_scope: usize,
    parts: Vec<CalendarPart>,
    problems: Vec<Problem>,
    report: Option<DeliveryReport>,
}

fn child_path(prefix: &str, n: usize) -> String {
    if prefix.is_empty() {
        n.to_string()
    } else {
        format!("{prefix}.{n}")
    }
}

fn content_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
        }
        None => "text/plain".to_string(),
    }
}

impl Walker {
    fn message(
        &mut self,
        message: &Message<'_>,
        base: usize,
        prefix: &str,
        forwarded: Option<&Forwarded>,
        depth: usize,
    ) {
        let scope = self.next_scope;
        self.next_scope += 1;
        let root_is_multipart = matches!(
            message.parts.first().map(|p| &p.body),
            Some(PartType::Multipart(_))
        );
        let path = if root_is_multipart {
            prefix.to_string()
        } else {
            child_path(prefix, 1)
        };
        self.part(message, base, 0, &path, forwarded, scope, depth);
    }

    #[allow(clippy::too_many_arguments)]
    fn part(
        &mut self,
        message: &Message<'_>,
        base: usize,
        id: usize,
        path: &str,
        forwarded: Option<&Forwarded>,
        scope: usize,
        depth: usize,
    ) {
        let index = self.next_index;
        self.next_index += 1;
        let Some(part) = message.parts.get(id) else {
            return;
        };
        if depth > MAX_DEPTH {
            return;
        }
        match &part.body {
            PartType::Multipart(children) => {
                let is_report = part.content_type().is_some_and(|ct| {
                    ct.ctype().eq_ignore_ascii_case("multipart")
                        && ct
                            .subtype()
                            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                        && ct
                            .attribute("report-type")
                            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
                });
                if is_report && forwarded.is_none() && self.report.is_none() {
                    self.report = Some(delivery_report(message, base, children));
                }
                for (n, child) in children.iter().enumerate() {
                    // A child id at or before its parent cannot come from the parser; refuse
                    // it rather than risk a cycle.
                    let child = *child as usize;
                    if child > id {
                        self.part(
                            message,
                            base,
                            child,
                            &child_path(path, n + 1),
                            forwarded,
                            scope,
                            depth + 1,
                        );
                    }
                }
            }
            PartType::Message(nested) => {
                let nested_base = nested_base(part);
                let inner = Forwarded {
                    depth: forwarded.map_or(1, |f| f.depth + 1),
                    sender: sender::sender_facts(nested, nested_base),
                };
                self.message(nested, nested_base, path, Some(&inner), depth + 1);
            }
            _ => self.leaf(message, base, part, index, path, forwarded, scope),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &mut self,
        message: &Message<'_>,
        base: usize,
        part: &MessagePart<'_>,
        index: usize,
        path: &str,
        forwarded: Option<&Forwarded>,
        scope: usize,
    ) {
        let content_type = content_type_of(part);
        let file_name = part.attachment_name().map(|n| n.trim().to_string());
        let lower_name = file_name.as_deref().map(str::to_ascii_lowercase);
        let is_tnef = matches!(
            content_type.as_str(),
            "application/ms-tnef" | "application/vnd.ms-tnef"
        ) || lower_name.as_deref() == Some("winmail.dat");
        let method_param = part
            .content_type()
            .and_then(|ct| ct.attribute("method"))
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty());
        if is_tnef {
            let bytes = decoded_bytes(message, base, part);
            match tnef::meeting_from_tnef(&bytes) {
                Ok(meeting) => {
                    let scan = scan(&meeting.ical);
                    self.push(
                        CalendarPart {
                            index,
                            path: path.to_string(),
                            content_type,
                            method_param,
                            body_method: Some(meeting.method.to_string()),
                            vcalendar: false,
                            file_name,
                            source: PartSource::Tnef,
                            objects: scan.objects,
                            forwarded: forwarded.cloned(),
                            duplicate_of: None,
                            text: meeting.ical,
                        },
                        scope,
                    );
                }
                Err(e) => {
                    let code = match e {
                        TnefError::NotAMeeting { .. } => "tnef_not_meeting",
                        TnefError::RecurrenceNotSupported => "tnef_recurring",
                        _ => "tnef_unreadable",
                    };
                    self.problem(path, code, e.to_string());
                }
            }
            return;
        }
        let named_calendar = lower_name
            .as_deref()
            .is_some_and(|n| n.ends_with(".ics") || n.ends_with(".vcs") || n.ends_with(".ical"));
        let typed_calendar = matches!(
            content_type.as_str(),
            "text/calendar" | "text/x-vcalendar" | "application/ics" | "text/vcalendar"
        );
        if !typed_calendar && !named_calendar {
            return;
        }
        let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
        let bytes = decoded_bytes(message, base, part);
        let (text, lossy) = decode_text(&bytes, charset);
        if lossy {
            self.problem(
                path,
                "charset_lossy",
                format!(
                    "the part is not valid {}; undecodable bytes were replaced",
                    charset.unwrap_or("UTF-8")
                ),
            );
        }
        let scan = scan(&text);
        if !scan.has_vcalendar {
            self.problem(
                path,
                "not_a_calendar",
                format!("{content_type} part has no BEGIN:VCALENDAR"),
            );
            return;
        }
        self.push(
            CalendarPart {
                index,
                path: path.to_string(),
                content_type,
                method_param,
                body_method: scan.method,
                vcalendar: scan.vcalendar,
                file_name,
                source: PartSource::Calendar,
                objects: scan.objects,
                forwarded: forwarded.cloned(),
                duplicate_of: None,
                text,
            },
            scope,
        );
    }

    fn push(&mut self, part: CalendarPart, scope: usize) {
        self.parts.push(part);
        self.scopes.push(scope);
    }

    fn problem(&mut self, path: &str, code: &str, detail: String) {
        self.problems.push(Problem {
            path: path.to_string(),
            code: code.to_string(),
            detail,
        });
    }
}

/// Where the raw bytes of a nested message start in the coordinates its offsets use (see
/// [`sender::slice`]): an unencoded `message/rfc822` is parsed in its parent's stream, an
/// encoded one from its own decoded bytes.
fn nested_base(part: &MessagePart<'_>) -> usize {
    match part.encoding {
        Encoding::None => part.raw_body_offset() as usize,
        Encoding::Base64 | Encoding::QuotedPrintable => 0,
    }
}

/// Reads the delivery-status part and the returned message of a `multipart/report`.
fn delivery_report(message: &Message<'_>, base: usize, children: &[u32]) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    let mut returned: (Option<String>, Option<String>) = (None, None);
    for child in children {
        let Some(part) = message.parts.get(*child as usize) else {
            continue;
        };
        let ct = content_type_of(part);
        match (&part.body, ct.as_str()) {
            (_, "message/delivery-status" | "message/global-delivery-status") => {
                let bytes = decoded_bytes(message, base, part);
                report = dsn::parse_delivery_status(&String::from_utf8_lossy(&bytes));
            }
            (PartType::Message(nested), _) => {
                let facts = sender::sender_facts(nested, nested_base(part));
                returned = (facts.message_id, facts.subject);
            }
            (_, "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers") => {
                let bytes = decoded_bytes(message, base, part);
                returned = dsn::returned_headers(&String::from_utf8_lossy(&bytes));
            }
            _ => {}
        }
    }
    if returned.0.is_some() {
        report.original_message_id = returned.0;
    }
    report.original_subject = returned.1;
    report
}

/// The part's body with the transfer encoding undone, from the raw bytes; falls back to what
/// mail-parser decoded when the raw range is unusable.
fn decoded_bytes(message: &Message<'_>, base: usize, part: &MessagePart<'_>) -> Vec<u8> {
    let raw = sender::slice(message, base, part.raw_body_offset(), part.raw_end_offset());
    let decoded = raw.and_then(|raw| match part.encoding {
        Encoding::Base64 => base64_decode(raw),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::None => Some(raw.to_vec()),
    });
    match decoded {
        Some(bytes) => bytes,
        None => match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            PartType::Message(m) => m.raw_message().to_vec(),
            PartType::Multipart(_) => Vec::new(),
        },
    }
}

fn is_utf8_label(charset: &str) -> bool {
    matches!(
        charset.trim().to_ascii_lowercase().as_str(),
        "utf-8" | "utf8" | "us-ascii" | "ascii" | "unicode-1-1-utf-8"
    )
}

/// Removes a line fold (CRLF or LF, then one space or tab) that splits a UTF-8 sequence:
/// RFC 5545 folds at octets, and unfolding first is what a reader must do anyway.
fn unfold_split_sequences(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b == b'\r' || b == b'\n') && out.last().is_some_and(|&p: &u8| p >= 0x80) {
            let mut j = i;
            if bytes.get(j) == Some(&b'\r') {
                j += 1;
            }
            if bytes.get(j) == Some(&b'\n') {
                j += 1;
            }
            if matches!(bytes.get(j), Some(b' ' | b'\t'))
                && bytes.get(j + 1).is_some_and(|&c| (0x80..0xC0).contains(&c))
            {
                i = j + 1;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn utf16(bytes: &[u8], little_endian: bool) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            if little_endian {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// Decodes a part's bytes to text with its charset. Returns the text and whether bytes had to
/// be replaced.
fn decode_text(bytes: &[u8], charset: Option<&str>) -> (String, bool) {
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return (utf16(rest, true), false);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return (utf16(rest, false), false);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match charset {
        Some(label) if !is_utf8_label(label) => {
            if let Some(decoder) = charset_decoder(label.trim().as_bytes()) {
                return (decoder(bytes), false);
            }
            match std::str::from_utf8(bytes) {
                Ok(text) => (text.to_string(), false),
                Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                return (text.to_string(), false);
            }
            let repaired = unfold_split_sequences(bytes);
            if let Ok(text) = std::str::from_utf8(&repaired) {
                return (text.to_string(), false);
            }
            if charset.is_none() {
                // No charset and not UTF-8: old PIMs write windows-1252.
                if let Some(decoder) = charset_decoder(b"windows-1252") {
                    return (decoder(bytes), false);
                }
            }
            (String::from_utf8_lossy(&repaired).into_owned(), true)
        }
    }
}

/// What a light line scan of a calendar text finds.
#[derive(Debug, Default)]
struct Scan {
    has_vcalendar: bool,
    vcalendar: bool,
    method: Option<String>,
    objects: Vec<ObjectKey>,
}

/// Splits a content line into its name (upper case, without parameters) and value.
fn name_value(line: &str) -> Option<(String, &str)> {
    let mut in_quotes = false;
    let mut name_end = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if name_end.is_none() && !in_quotes => name_end = Some(i),
            ':' if !in_quotes => {
                let name = &line[..name_end.unwrap_or(i)];
                return Some((name.trim().to_ascii_uppercase(), line[i + 1..].trim()));
            }
            _ => {}
        }
    }
    None
}

/// Scans unfolded content lines for METHOD, VERSION and each component's identity. Only the
/// first VCALENDAR's METHOD counts (one iTIP object per message, RFC 6047 §2.4).
fn scan(text: &str) -> Scan {
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut current: Option<ObjectKey> = None;
    let mut logical = String::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        logical.push_str(line.trim_end_matches('\r'));
        if lines
            .peek()
            .is_some_and(|next| next.starts_with([' ', '\t']))
        {
            if let Some(next) = lines.next() {
                logical.push_str(next.trim_end_matches('\r').get(1..).unwrap_or_default());
            }
            while lines
                .peek()
                .is_some_and(|next| next.starts_with([' ', '\t']))
            {
                if let Some(next) = lines.next() {
                    logical.push_str(next.trim_end_matches('\r').get(1..).unwrap_or_default());
                }
            }
        }
        let line = std::mem::take(&mut logical);
        let Some((name, value)) = name_value(&line) else {
            continue;
        };
        match name.as_str() {
            "BEGIN" => {
                let component = value.to_ascii_uppercase();
                if component == "VCALENDAR" {
                    out.has_vcalendar = true;
                }
                if depth == 1
                    && matches!(
                        component.as_str(),
                        "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY"
                    )
                {
                    current = Some(ObjectKey {
                        component,
                        uid: None,
                        recurrence_id: None,
                        sequence: None,
                        dtstamp: None,
                    });
                }
                depth += 1;
            }
            "END" => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some(object) = current.take()
                {
                    out.objects.push(object);
                }
            }
            "VERSION" if depth == 1 => out.vcalendar = value.trim() == "1.0",
            "METHOD" | "X-METHOD" if depth == 1 && out.method.is_none() => {
                out.method = Some(value.trim().to_ascii_uppercase()).filter(|m| !m.is_empty());
            }
            _ if depth == 2 => {
                if let Some(object) = current.as_mut() {
                    let value = Some(value.to_string());
                    match name.as_str() {
                        "UID" => object.uid = value,
                        "RECURRENCE-ID" => object.recurrence_id = value,
                        "SEQUENCE" => object.sequence = value,
                        "DTSTAMP" => object.dtstamp = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Flags each part whose objects (or, with none found, whose text) equal an earlier part's of
/// the same message.
fn mark_duplicates(parts: &mut [CalendarPart], scopes: &[usize]) {
    for i in 0..parts.len() {
        for j in 0..i {
            if scopes.get(i) != scopes.get(j) || parts[j].duplicate_of.is_some() {
                continue;
            }
            let (a, b) = (&parts[j], &parts[i]);
            let same = if a.objects.is_empty() && b.objects.is_empty() {
                a.text.replace('\r', "") == b.text.replace('\r', "")
            } else {
                let mut ka = a.objects.clone();
                let mut kb = b.objects.clone();
                ka.sort();
                kb.sort();
                ka == kb && a.body_method == b.body_method
            };
            if same {
                let first = parts[j].index;
                parts[i].duplicate_of = Some(first);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fold_inside_a_utf8_sequence_is_repaired() {
        let bytes = b"SUMMARY:M\xc3\r\n \xbcller\r\n";
        let (text, lossy) = decode_text(bytes, Some("utf-8"));
        assert!(!lossy);
        assert_eq!(text, "SUMMARY:M\u{fc}ller\r\n");
    }

    #[test]
    fn an_ordinary_fold_is_kept() {
        let bytes = "SUMMARY:M\u{fc}\r\n ller\r\n".as_bytes();
        assert_eq!(decode_text(bytes, None).0, "SUMMARY:M\u{fc}\r\n ller\r\n");
    }

    #[test]
    fn scan_reads_folded_identity_and_method_case_insensitively() {
        let text = "BEGIN:VCALENDAR\r\nmethod:request\r\nBEGIN:VEVENT\r\nUID:abc\r\n -def\r\nSEQUENCE:2\r\nBEGIN:VALARM\r\nUID:alarm\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let scan = scan(text);
        assert_eq!(scan.method.as_deref(), Some("REQUEST"));
        assert_eq!(scan.objects.len(), 1);
        assert_eq!(scan.objects[0].uid.as_deref(), Some("abc-def"));
        assert_eq!(scan.objects[0].sequence.as_deref(), Some("2"));
    }

    #[test]
    fn plain_mail_has_no_calendar_parts() {
        let plain = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n";
        let found = extract(plain).expect("message");
        assert!(found.parts.is_empty());
        assert!(found.problems.is_empty());
    }

    #[test]
    fn bytes_that_are_no_message_are_refused() {
        assert_eq!(extract(b""), Err(ExtractError::NotAMessage));
    }
}
