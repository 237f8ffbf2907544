//! Meeting requests inside TNEF (`application/ms-tnef`, `winmail.dat`), per MS-OXTNEF.
//!
//! Exchange and Outlook send a meeting as MAPI properties inside TNEF (not as an embedded
//! `.ics`) when the receiving domain is marked as "rich text capable". No maintained crate reads
//! those: `tnef` 0.1.1 (2019) extracts file attachments only, `ytnef` binds the C libytnef.
//! So this is a careful, bounded reader of exactly what a meeting needs:
//!
//! - the TNEF attribute stream (signature, then `level, id, length, data, checksum` records),
//!   every length checked against the input before it is used;
//! - the MAPI property stream of `attMsgProps` (fixed and variable, single- and multi-valued,
//!   named properties by GUID + id or name), and the recipient table `attRecipTable`;
//! - the appointment properties MS-OXOCAL defines (start/end, location, sequence, the global
//!   object id, all-day, recurring) turned into an iCalendar object whose UID is derived from
//!   the global object id exactly as Exchange derives it (MS-OXCICAL), so the same meeting sent
//!   as `text/calendar` and as TNEF has the same UID.
//!
//! A recurring meeting's pattern (`PidLidAppointmentRecur`, a binary structure of its own) is
//! not converted: such a request is reported as [`TnefError::RecurrenceNotSupported`] rather
//! than booked as a single occurrence.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

/// The TNEF stream's first four bytes, little-endian (MS-OXTNEF 2.1.3.1).
pub const TNEF_SIGNATURE: u32 = 0x223E_9F78;

/// Why no meeting could be read from a TNEF stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TnefError {
    #[error("not a TNEF stream (bad signature)")]
    BadSignature,
    #[error("TNEF stream truncated at byte {offset} while reading {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("TNEF attribute 0x{id:08x} at byte {offset} has a bad checksum")]
    Checksum { id: u32, offset: usize },
    #[error("TNEF property stream malformed at byte {offset}: {what}")]
    Properties { offset: usize, what: &'static str },
    #[error("the TNEF message is not a meeting (message class {class:?})")]
    NotAMeeting { class: String },
    #[error("the TNEF meeting has no {what}; it cannot be converted to iCalendar")]
    Missing { what: &'static str },
    #[error(
        "the TNEF meeting is recurring; its recurrence pattern (PidLidAppointmentRecur) is not converted, ask the sender to disable rich text (TNEF) for this domain"
    )]
    RecurrenceNotSupported,
}

/// A TNEF meeting turned into iCalendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefMeeting {
    /// The iTIP method the message class implies.
    pub method: &'static str,
    /// The iCalendar text (CRLF line ends).
    pub ical: String,
    /// The MAPI message class, e.g. `IPM.Schedule.Meeting.Request`.
    pub message_class: String,
}

// Attribute ids (MS-OXTNEF 2.1.3.3), id in the low word, type in the high word.
const ATT_SUBJECT: u32 = 0x0001_8004;
const ATT_MESSAGE_CLASS: u32 = 0x0007_8008;
const ATT_MSG_PROPS: u32 = 0x0006_9003;
const ATT_RECIP_TABLE: u32 = 0x0006_9004;
const ATT_DATE_START: u32 = 0x0003_0006;
const ATT_DATE_END: u32 = 0x0003_0007;
const ATT_OWNER: u32 = 0x0006_0000;

/// PSETID_Meeting {6ED8DA90-450B-101B-98DA-00AA003F1305}, in its on-the-wire byte order.
const PSETID_MEETING: [u8; 16] = [
    0x90, 0xDA, 0xD8, 0x6E, 0x0B, 0x45, 0x1B, 0x10, 0x98, 0xDA, 0x00, 0xAA, 0x00, 0x3F, 0x13, 0x05,
];
/// PSETID_Appointment {00062002-0000-0000-C000-000000000046}.
const PSETID_APPOINTMENT: [u8; 16] = [
    0x02, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// Bounds on what a meeting may contain, so a hostile stream cannot make us allocate wildly.
const MAX_PROPERTIES: usize = 10_000;
const MAX_VALUES: usize = 10_000;
const MAX_RECIPIENTS: usize = 5_000;

/// Little-endian reader that never reads past the end.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TnefError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let slice = &self.data[self.at..end];
                self.at = end;
                Ok(slice)
            }
            None => Err(TnefError::Truncated {
                offset: self.at,
                what,
            }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TnefError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, TnefError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TnefError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.at
    }
}

/// A property's identity: a plain tag id, or a named property (GUID + numeric id or name).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PropName {
    Tag(u16),
    Lid([u8; 16], u32),
    Named([u8; 16], String),
}

/// A decoded MAPI property value (only the shapes a meeting needs are kept typed).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Bool(bool),
    Time(u64),
    Text(String),
    Binary(Vec<u8>),
    Other,
}

#[derive(Debug, Clone, PartialEq)]
struct Property {
    name: PropName,
    values: Vec<Value>,
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches('\0')
        .to_string()
}

fn string8(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..end];
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        // String8 is in the message's code page; windows-1252 is by far the most common.
        Err(_) => bytes.iter().map(|&b| cp1252(b)).collect(),
    }
}

fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[(b - 0x80) as usize],
        _ => char::from(b),
    }
}

/// Reads one value of a fixed-size type; returns `None` for a type that is not fixed-size.
fn fixed_value(reader: &mut Reader<'_>, ptype: u16) -> Result<Option<Value>, TnefError> {
    let value = match ptype {
        // PtypInteger16 and PtypBoolean: 2 bytes, padded to 4.
        0x0002 => {
            let v = reader.u16("PtypInteger16")? as i16;
            reader.bytes(2, "padding")?;
            Value::Int(i64::from(v))
        }
        0x000B => {
            let v = reader.u16("PtypBoolean")?;
            reader.bytes(2, "padding")?;
            Value::Bool(v != 0)
        }
        0x0003 => Value::Int(i64::from(reader.u32("PtypInteger32")? as i32)),
        0x0004 | 0x000A => {
            reader.bytes(4, "4-byte value")?;
            Value::Other
        }
        0x0040 => {
            let low = u64::from(reader.u32("PtypTime")?);
            let high = u64::from(reader.u32("PtypTime")?);
            Value::Time(high << 32 | low)
        }
        0x0014 => {
            let b = reader.bytes(8, "PtypInteger64")?;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(b);
            Value::Int(i64::from_le_bytes(raw))
        }
        0x0005..=0x0007 => {
            reader.bytes(8, "8-byte value")?;
            Value::Other
        }
        0x0048 => {
            reader.bytes(16, "PtypGuid")?;
            Value::Other
        }
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// Reads one length-prefixed value of a variable-size type, padded to 4 bytes.
fn variable_value(reader: &mut Reader<'_>, ptype: u16) -> Result<Value, TnefError> {
    let len = reader.u32("value length")? as usize;
    let offset = reader.at;
    let bytes = reader.bytes(len, "variable value")?;
    let pad = (4 - len % 4) % 4;
    reader.bytes(pad.min(reader.remaining()), "padding")?;
    Ok(match ptype {
        0x001F => Value::Text(utf16(bytes)),
        0x001E => Value::Text(string8(bytes)),
        0x0102 => Value::Binary(bytes.to_vec()),
        0x000D => Value::Other,
        _ => {
            return Err(TnefError::Properties {
                offset,
                what: "unknown variable-size property type",
            });
        }
    })
}

/// Reads a MAPI property list (`count`, then properties) as in `attMsgProps` and each
/// recipient row (MS-OXTNEF 2.1.3.4).
fn properties(reader: &mut Reader<'_>) -> Result<Vec<Property>, TnefError> {
    let count = reader.u32("property count")? as usize;
    if count > MAX_PROPERTIES {
        return Err(TnefError::Properties {
            offset: reader.at,
            what: "implausible property count",
        });
    }
    let mut out = Vec::with_capacity(count.min(256));
    for _ in 0..count {
        let ptype_full = reader.u16("property type")?;
        let id = reader.u16("property id")?;
        let name = if id >= 0x8000 {
            let guid_bytes = reader.bytes(16, "property set GUID")?;
            let mut guid = [0u8; 16];
            guid.copy_from_slice(guid_bytes);
            match reader.u32("name kind")? {
                0 => PropName::Lid(guid, reader.u32("named property id")?),
                1 => {
                    let len = reader.u32("name length")? as usize;
                    let name = utf16(reader.bytes(len, "property name")?);
                    let pad = (4 - len % 4) % 4;
                    reader.bytes(pad.min(reader.remaining()), "padding")?;
                    PropName::Named(guid, name)
                }
                _ => {
                    return Err(TnefError::Properties {
                        offset: reader.at,
                        what: "unknown named-property kind",
                    });
                }
            }
        } else {
            PropName::Tag(id)
        };
        let multi = ptype_full & 0x1000 != 0;
        let ptype = ptype_full & !0x3000;
        let mut values = Vec::new();
        let is_variable = matches!(ptype, 0x001E | 0x001F | 0x0102 | 0x000D);
        if multi || is_variable {
            let n = reader.u32("value count")? as usize;
            if n > MAX_VALUES {
                return Err(TnefError::Properties {
                    offset: reader.at,
                    what: "implausible value count",
                });
            }
            for _ in 0..n {
                if is_variable {
                    values.push(variable_value(reader, ptype)?);
                } else {
                    match fixed_value(reader, ptype)? {
                        Some(v) => values.push(v),
                        None => {
                            return Err(TnefError::Properties {
                                offset: reader.at,
                                what: "unknown property type",
                            });
                        }
                    }
                }
            }
        } else {
            match fixed_value(reader, ptype)? {
                Some(v) => values.push(v),
                None => {
                    return Err(TnefError::Properties {
                        offset: reader.at,
                        what: "unknown property type",
                    });
                }
            }
        }
        out.push(Property { name, values });
    }
    Ok(out)
}

/// The parts of a TNEF stream a meeting needs.
#[derive(Debug, Default)]
struct Tnef {
    message_class: Option<String>,
    subject: Option<String>,
    date_start: Option<DateTime<Utc>>,
    date_end: Option<DateTime<Utc>>,
    props: Vec<Property>,
    recipients: Vec<Vec<Property>>,
}

/// `attDateStart` etc.: a 14-byte DTR structure (MS-OXTNEF 2.1.3.3.2).
fn dtr(data: &[u8]) -> Option<DateTime<Utc>> {
    let word = |i: usize| {
        data.get(i * 2..i * 2 + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    Utc.with_ymd_and_hms(
        i32::try_from(word(0)?).ok()?,
        word(1)?,
        word(2)?,
        word(3)?,
        word(4)?,
        word(5)?,
    )
    .single()
}

fn read_tnef(data: &[u8]) -> Result<Tnef, TnefError> {
    let mut reader = Reader::new(data);
    if reader.u32("signature")? != TNEF_SIGNATURE {
        return Err(TnefError::BadSignature);
    }
    reader.u16("legacy key")?;
    let mut tnef = Tnef::default();
    while reader.remaining() > 0 {
        let offset = reader.at;
        let level = reader.u8("attribute level")?;
        let id = reader.u32("attribute id")?;
        let len = reader.u32("attribute length")? as usize;
        let body = reader.bytes(len, "attribute data")?;
        let checksum = reader.u16("attribute checksum")?;
        let sum = body
            .iter()
            .fold(0u16, |acc, &b| acc.wrapping_add(u16::from(b)));
        if sum != checksum {
            return Err(TnefError::Checksum { id, offset });
        }
        if level != 0x01 {
            // Attachment-level attributes (0x02) carry files, not the meeting.
            continue;
        }
        match id {
            ATT_MESSAGE_CLASS => tnef.message_class = Some(string8(body)),
            ATT_SUBJECT => tnef.subject = Some(string8(body)),
            ATT_DATE_START => tnef.date_start = dtr(body),
            ATT_DATE_END => tnef.date_end = dtr(body),
            ATT_MSG_PROPS => tnef.props = properties(&mut Reader::new(body))?,
            ATT_RECIP_TABLE => {
                let mut rows = Reader::new(body);
                let n = rows.u32("recipient count")? as usize;
                if n > MAX_RECIPIENTS {
                    return Err(TnefError::Properties {
                        offset: offset + 9,
                        what: "implausible recipient count",
                    });
                }
                for _ in 0..n {
                    tnef.recipients.push(properties(&mut rows)?);
                }
            }
            ATT_OWNER => {}
            _ => {}
        }
    }
    Ok(tnef)
}

fn find<'a>(props: &'a [Property], name: &PropName) -> Option<&'a Value> {
    props
        .iter()
        .find(|p| &p.name == name)
        .and_then(|p| p.values.first())
}

fn text(props: &[Property], name: &PropName) -> Option<String> {
    match find(props, name) {
        Some(Value::Text(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => None,
    }
}

fn filetime(props: &[Property], name: &PropName) -> Option<DateTime<Utc>> {
    match find(props, name) {
        Some(Value::Time(ft)) => filetime_to_utc(*ft),
        _ => None,
    }
}

/// FILETIME (100 ns ticks since 1601-01-01 UTC) to a UTC instant.
fn filetime_to_utc(ticks: u64) -> Option<DateTime<Utc>> {
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = i64::try_from(ticks / 10_000_000).ok()? - EPOCH_DIFF_SECS;
    DateTime::from_timestamp(secs, 0)
}

/// The UID Exchange gives a meeting (MS-OXCICAL 2.1.3.1.1.20.26): the embedded `vCal-Uid`
/// when the global object id wraps a foreign UID, else the upper-case hex of the id with its
/// instance date zeroed (the "clean" global object id), so every instance shares the UID.
pub fn uid_from_global_object_id(goid: &[u8]) -> String {
    const VCAL_UID: &[u8] = b"vCal-Uid";
    // Layout: 16-byte class id, 4-byte instance date, 8-byte creation time, 8 zero bytes,
    // 4-byte size, then `size` bytes of data.
    if let Some(data) = goid.get(40..)
        && data.starts_with(VCAL_UID)
        && let Some(rest) = data.get(VCAL_UID.len() + 4..)
    {
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if let Ok(uid) = std::str::from_utf8(&rest[..end])
            && !uid.is_empty()
        {
            return uid.to_string();
        }
    }
    let mut clean = goid.to_vec();
    for byte in clean.iter_mut().skip(16).take(4) {
        *byte = 0;
    }
    clean.iter().map(|b| format!("{b:02X}")).collect()
}

fn method_for(class: &str) -> Option<(&'static str, Option<&'static str>)> {
    let class = class.to_ascii_lowercase();
    let table: [(&str, &'static str, Option<&'static str>); 10] = [
        ("ipm.schedule.meeting.request", "REQUEST", None),
        ("ipm.schedule.meeting.canceled", "CANCEL", None),
        ("ipm.schedule.meeting.resp.pos", "REPLY", Some("ACCEPTED")),
        ("ipm.schedule.meeting.resp.neg", "REPLY", Some("DECLINED")),
        ("ipm.schedule.meeting.resp.tent", "REPLY", Some("TENTATIVE")),
        ("ipm.microsoft schedule.mtgreq", "REQUEST", None),
        ("ipm.microsoft schedule.mtgcncl", "CANCEL", None),
        ("ipm.microsoft schedule.mtgrespp", "REPLY", Some("ACCEPTED")),
        ("ipm.microsoft schedule.mtgrespn", "REPLY", Some("DECLINED")),
        (
            "ipm.microsoft schedule.mtgrespa",
            "REPLY",
            Some("TENTATIVE"),
        ),
    ];
    table
        .iter()
        .find(|(prefix, _, _)| class.starts_with(prefix))
        .map(|(_, method, partstat)| (*method, *partstat))
}

fn ical_utc(t: &DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The calendar date of an all-day boundary stored as local midnight converted to UTC: zones
/// east of UTC (to +12) put it at 12:00–23:59 UTC of the day before, zones west of UTC (to −11)
/// at 00:00–11:59 UTC of the same day. (+13/+14 and −12 are ambiguous in this form and would be
/// off by one day; TNEF carries no zone-free date for all-day meetings.)
fn all_day_date(t: &DateTime<Utc>) -> String {
    let day = if t.hour() >= 12 {
        *t + Duration::days(1)
    } else {
        *t
    };
    format!("{:04}{:02}{:02}", day.year(), day.month(), day.day())
}

/// Escapes an iCalendar TEXT value (RFC 5545 3.3.11).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Quotes a parameter value when it needs it (RFC 5545 3.2); DQUOTE itself cannot appear.
fn param(value: &str) -> String {
    let value: String = value
        .chars()
        .filter(|&c| c != '"' && !c.is_control())
        .collect();
    if value.contains([';', ':', ',']) {
        format!("\"{value}\"")
    } else {
        value
    }
}

/// Folds a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 sequence.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn smtp_of(props: &[Property]) -> Option<String> {
    text(props, &PropName::Tag(0x39FE))
        .or_else(|| {
            let kind = text(props, &PropName::Tag(0x3002));
            text(props, &PropName::Tag(0x3003)).filter(|_| {
                kind.as_deref()
                    .is_none_or(|k| k.eq_ignore_ascii_case("SMTP"))
            })
        })
        .filter(|a| a.contains('@'))
}

/// Reads a TNEF stream and, when it is a meeting, turns it into iCalendar.
pub fn meeting_from_tnef(data: &[u8]) -> Result<TnefMeeting, TnefError> {
    let tnef = read_tnef(data)?;
    let props = &tnef.props;
    let class = text(props, &PropName::Tag(0x001A))
        .or(tnef.message_class.clone())
        .unwrap_or_default();
    let (method, reply_partstat) = method_for(&class).ok_or_else(|| TnefError::NotAMeeting {
        class: class.clone(),
    })?;
    let goid = [0x0023u32, 0x0003].iter().find_map(|lid| {
        match find(props, &PropName::Lid(PSETID_MEETING, *lid)) {
            Some(Value::Binary(b)) if b.len() >= 16 => Some(b.clone()),
            _ => None,
        }
    });
    let uid = goid
        .as_deref()
        .map(uid_from_global_object_id)
        .ok_or(TnefError::Missing {
            what: "global object id (PidLidGlobalObjectId)",
        })?;
    let recurring = [
        PropName::Lid(PSETID_APPOINTMENT, 0x8223),
        PropName::Lid(PSETID_MEETING, 0x0005),
    ]
    .iter()
    .any(|name| matches!(find(props, name), Some(Value::Bool(true))));
    if recurring && method != "REPLY" {
        return Err(TnefError::RecurrenceNotSupported);
    }
    let start = filetime(props, &PropName::Lid(PSETID_APPOINTMENT, 0x820D))
        .or_else(|| filetime(props, &PropName::Tag(0x0060)))
        .or(tnef.date_start)
        .ok_or(TnefError::Missing {
            what: "start time (PidLidAppointmentStartWhole)",
        })?;
    let end = filetime(props, &PropName::Lid(PSETID_APPOINTMENT, 0x820E))
        .or_else(|| filetime(props, &PropName::Tag(0x0061)))
        .or(tnef.date_end)
        .filter(|end| *end >= start)
        .unwrap_or(start);
    let all_day = matches!(
        find(props, &PropName::Lid(PSETID_APPOINTMENT, 0x8215)),
        Some(Value::Bool(true))
    );
    let sequence = match find(props, &PropName::Lid(PSETID_APPOINTMENT, 0x8201)) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    let stamp = filetime(props, &PropName::Tag(0x3008))
        .or_else(|| filetime(props, &PropName::Tag(0x0039)))
        .unwrap_or(start);
    let summary = text(props, &PropName::Tag(0x0037)).or(tnef.subject.clone());
    let location = text(props, &PropName::Lid(PSETID_APPOINTMENT, 0x8208))
        .or_else(|| text(props, &PropName::Lid(PSETID_MEETING, 0x0002)));
    let organizer = text(props, &PropName::Tag(0x5D02))
        .or_else(|| text(props, &PropName::Tag(0x0065)))
        .or_else(|| text(props, &PropName::Tag(0x5D01)))
        .or_else(|| text(props, &PropName::Tag(0x0C1F)))
        .filter(|a| a.contains('@'));
    let organizer_name =
        text(props, &PropName::Tag(0x0042)).or_else(|| text(props, &PropName::Tag(0x0C1A)));

    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "PRODID:-//imipd//TNEF conversion//EN".to_string(),
        "VERSION:2.0".to_string(),
        format!("METHOD:{method}"),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{uid}"),
        format!("SEQUENCE:{sequence}"),
        format!("DTSTAMP:{}", ical_utc(&stamp)),
    ];
    if all_day {
        lines.push(format!("DTSTART;VALUE=DATE:{}", all_day_date(&start)));
        lines.push(format!("DTEND;VALUE=DATE:{}", all_day_date(&end)));
    } else {
        lines.push(format!("DTSTART:{}", ical_utc(&start)));
        lines.push(format!("DTEND:{}", ical_utc(&end)));
    }
    if let Some(summary) = &summary {
        lines.push(format!("SUMMARY:{}", escape(summary)));
    }
    if let Some(location) = &location {
        lines.push(format!("LOCATION:{}", escape(location)));
    }
    if let Some(organizer) = &organizer {
        let cn = organizer_name
            .as_deref()
            .map(|n| format!(";CN={}", param(n)))
            .unwrap_or_default();
        lines.push(format!("ORGANIZER{cn}:mailto:{organizer}"));
    }
    for row in &tnef.recipients {
        let Some(address) = smtp_of(row) else {
            continue;
        };
        if organizer
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(&address))
        {
            continue;
        }
        // PidTagRecipientType: 1 To (required), 2 Cc (optional), 3 Bcc (a resource).
        let (role, cutype) = match find(row, &PropName::Tag(0x0C15)) {
            Some(Value::Int(2)) => ("OPT-PARTICIPANT", None),
            Some(Value::Int(3)) => ("NON-PARTICIPANT", Some("RESOURCE")),
            _ => ("REQ-PARTICIPANT", None),
        };
        let mut line = String::from("ATTENDEE");
        if let Some(name) = text(row, &PropName::Tag(0x3001)) {
            line.push_str(&format!(";CN={}", param(&name)));
        }
        if let Some(cutype) = cutype {
            line.push_str(&format!(";CUTYPE={cutype}"));
        }
        line.push_str(&format!(";ROLE={role}"));
        match reply_partstat {
            Some(partstat) => line.push_str(&format!(";PARTSTAT={partstat}")),
            None => line.push_str(";PARTSTAT=NEEDS-ACTION;RSVP=TRUE"),
        }
        line.push_str(&format!(":mailto:{address}"));
        lines.push(line);
    }
    lines.push("END:VEVENT".to_string());
    lines.push("END:VCALENDAR".to_string());
    let mut ical = String::new();
    for line in &lines {
        fold(line, &mut ical);
    }
    Ok(TnefMeeting {
        method,
        ical,
        message_class: class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_uid_wrapped_in_the_global_object_id_is_recovered() {
        let mut goid = vec![
            0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82,
            0xE0, 0x08,
        ];
        goid.extend_from_slice(&[0; 4]);
        goid.extend_from_slice(&[0; 8]);
        goid.extend_from_slice(&[0; 8]);
        let data = b"vCal-Uid\x01\x00\x00\x00abc-123@example.test\x00";
        goid.extend_from_slice(&(data.len() as u32).to_le_bytes());
        goid.extend_from_slice(data);
        assert_eq!(uid_from_global_object_id(&goid), "abc-123@example.test");
    }

    #[test]
    fn instance_date_is_cleared_from_a_hex_uid() {
        let mut goid = vec![0xAB; 16];
        goid.extend_from_slice(&[0x07, 0xE9, 0x0C, 0x03]);
        goid.extend_from_slice(&[0x11; 20]);
        let uid = uid_from_global_object_id(&goid);
        assert_eq!(&uid[32..40], "00000000");
        assert!(uid.starts_with("ABAB"));
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        assert_eq!(
            meeting_from_tnef(b""),
            Err(TnefError::Truncated {
                offset: 0,
                what: "signature"
            })
        );
        assert_eq!(meeting_from_tnef(b"abcdefgh"), Err(TnefError::BadSignature));
        let mut data = TNEF_SIGNATURE.to_le_bytes().to_vec();
        data.extend_from_slice(&[0, 0, 1, 0x08, 0x80, 0x07, 0x00, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert!(matches!(
            meeting_from_tnef(&data),
            Err(TnefError::Truncated { .. })
        ));
    }

    #[test]
    fn all_day_boundaries_map_to_the_local_date() {
        let east = Utc
            .with_ymd_and_hms(2026, 12, 2, 23, 0, 0)
            .single()
            .expect("time");
        let west = Utc
            .with_ymd_and_hms(2026, 12, 3, 5, 0, 0)
            .single()
            .expect("time");
        assert_eq!(all_day_date(&east), "20261203");
        assert_eq!(all_day_date(&west), "20261203");
    }
}
