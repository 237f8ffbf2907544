//! vCalendar 1.0 (versit, 1996) converted to iCalendar 2.0 text, which calcard then parses,
//! so that every later stage sees one model.
//!
//! What is converted (mapping tables: group K of the project's iTIP checklist):
//!
//! - encodings: `ENCODING=QUOTED-PRINTABLE` (or the bare `QUOTED-PRINTABLE` parameter) with
//!   soft line breaks, `ENCODING=BASE64` (or bare `BASE64`) whose value runs to a blank line,
//!   and `CHARSET=` on any property (transcoded to UTF-8 with encoding_rs; 8-bit text without
//!   CHARSET is read as UTF-8, or windows-1252 when it is not valid UTF-8);
//! - `;`-separated lists (CATEGORIES, RESOURCES, RDATE, EXDATE) become `,`-separated;
//! - the basic recurrence grammar (D, W, MP, MD, YM, YD; interval, weekdays, `1+`/`1-`
//!   occurrences, day numbers with `+`/`-` and `LD`, `#n`, an end date) becomes an RRULE
//!   ([`convert_rrule`]); `#n` is the total number of events (project decision 8), `#0` is
//!   for ever, and a rule with neither duration nor end date means `#2` (the spec's Policies);
//! - local times are converted to UTC with the calendar's `TZ` and `DAYLIGHT` properties
//!   (one DAYLIGHT property per year, as Outlook writes them); without `TZ` they stay floating;
//! - DCREATED → CREATED, LAST-MODIFIED, DUE, COMPLETED, DTSTART/DTEND (extended ISO 8601
//!   forms such as `1996-04-15T08:30:00Z` are accepted);
//! - AALARM/DALARM/MALARM/PALARM → VALARM (AUDIO, DISPLAY, EMAIL; a procedure alarm becomes
//!   a DISPLAY alarm naming the procedure, as RFC 5545 dropped PROCEDURE);
//! - ATTENDEE: `Name <addr>` values, ROLE (ORGANIZER → ORGANIZER; OWNER → ORGANIZER only when
//!   no attendee has ROLE=ORGANIZER), STATUS → PARTSTAT, RSVP YES/NO → TRUE/FALSE, EXPECT →
//!   ROLE (IMMEDIATE also sets RSVP=TRUE); a name without an address keeps its CN and gets
//!   the non-mailto address `invalid:nomail`, so it can never match a mailbox;
//! - component STATUS: a VEVENT keeps TENTATIVE/CONFIRMED, a VTODO NEEDS ACTION/COMPLETED;
//!   per-user values (ACCEPTED, DECLINED, SENT …) are not component states in RFC 5545 and
//!   are kept as `X-VCAL-STATUS` for the iTIP layer's method inference;
//! - TRANSP 0 → OPAQUE, anything else → TRANSPARENT; a negative or unparsable SEQUENCE → 0;
//! - `X-METHOD` → METHOD, `X-ORGANIZER` → ORGANIZER; other X- properties are kept.

use super::writer::fold_into;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// Why a vCalendar 1.0 object could not be converted. Lines count from 1 in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcalError {
    /// A line or value does not follow the grammar.
    #[error("vCalendar line {line}: {property}: found '{found}' (expected {expected})")]
    Syntax {
        line: usize,
        property: String,
        found: String,
        expected: String,
    },
    /// A component is never closed.
    #[error(
        "vCalendar line {line}: 'BEGIN:{component}' is never closed (expected 'END:{component}')"
    )]
    Unterminated { component: String, line: usize },
    /// No VCALENDAR object in the input.
    #[error("no vCalendar object found (expected a line 'BEGIN:VCALENDAR')")]
    NoCalendar,
}

/// Whether `input` holds a vCalendar 1.0 object (a `VERSION:1.0` line).
pub fn is_vcalendar1(input: &[u8]) -> bool {
    input.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii();
        line.len() == 11 && line.eq_ignore_ascii_case(b"VERSION:1.0")
    })
}

/// Converts every VCALENDAR of `input` to iCalendar 2.0 text. Objects that are already
/// version 2.0 are passed through unchanged, so a stream may mix both.
pub fn convert(input: &[u8]) -> Result<String, VcalError> {
    let input = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    let physical: Vec<&[u8]> = input
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    let mut found = false;
    while i < physical.len() {
        if !physical[i]
            .trim_ascii()
            .eq_ignore_ascii_case(b"BEGIN:VCALENDAR")
        {
            i += 1;
            continue;
        }
        // Find the matching END:VCALENDAR (vCalendar objects do not nest).
        let start = i;
        let end = (start + 1..physical.len())
            .find(|&j| {
                physical[j]
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"END:VCALENDAR")
            })
            .ok_or(VcalError::Unterminated {
                component: "VCALENDAR".into(),
                line: start + 1,
            })?;
        found = true;
        let object = &physical[start..=end];
        let is_v1 = object
            .iter()
            .any(|l| l.trim_ascii().eq_ignore_ascii_case(b"VERSION:1.0"));
        if is_v1 {
            let lines = logical_lines(object, start + 1)?;
            Converter::default().calendar(&lines, &mut out)?;
        } else {
            for line in object {
                out.push_str(&String::from_utf8_lossy(line));
                out.push_str("\r\n");
            }
        }
        i = end + 1;
    }
    if !found {
        return Err(VcalError::NoCalendar);
    }
    Ok(out)
}

/// One property of the input, with its value decoded to text.
#[derive(Debug, Clone)]
struct Prop {
    line: usize,
    name: String,
    /// Parameters, upper-cased names; bare parameters (`QUOTED-PRINTABLE`, `WAVE`) are
    /// stored under `TYPE` unless they are encodings.
    params: Vec<(String, String)>,
    value: String,
    /// The decoded bytes of a BASE64 value.
    binary: Option<Vec<u8>>,
}

impl Prop {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn syntax(&self, found: &str, expected: &str) -> VcalError {
        VcalError::Syntax {
            line: self.line,
            property: self.name.clone(),
            found: found.chars().take(80).collect(),
            expected: expected.to_string(),
        }
    }
}

/// Unfolds the object's lines (RFC 822 folding, QUOTED-PRINTABLE soft breaks, BASE64 blocks
/// ending at a blank line) and decodes each value.
fn logical_lines(object: &[&[u8]], first_line: usize) -> Result<Vec<Prop>, VcalError> {
    let mut props = Vec::new();
    let mut i = 0;
    while i < object.len() {
        let line_no = first_line + i;
        let mut raw: Vec<u8> = object[i].to_vec();
        i += 1;
        if raw.trim_ascii().is_empty() {
            continue;
        }
        let (head_end, encoding) = head_info(&raw);
        match encoding {
            Encoding::QuotedPrintable => {
                // A value ending in '=' continues on the next line (soft break), whatever
                // that line starts with.
                while raw.ends_with(b"=") && i < object.len() {
                    raw.pop();
                    raw.extend_from_slice(object[i]);
                    i += 1;
                }
            }
            Encoding::Base64 => {
                // The value runs to the first blank line.
                while i < object.len() && !object[i].trim_ascii().is_empty() {
                    if is_property_start(object[i]) && !object[i].starts_with(b" ") {
                        break;
                    }
                    raw.extend_from_slice(object[i].trim_ascii());
                    i += 1;
                }
            }
            Encoding::None => {}
        }
        // RFC 822 folding: a line starting with white space continues the previous one.
        while i < object.len()
            && matches!(object[i].first(), Some(b' ' | b'\t'))
            && !object[i].trim_ascii().is_empty()
        {
            if encoding == Encoding::Base64 {
                raw.extend_from_slice(object[i].trim_ascii());
            } else {
                raw.extend_from_slice(object[i]);
            }
            i += 1;
        }
        let Some(head_end) = head_end else {
            return Err(VcalError::Syntax {
                line: line_no,
                property: String::from_utf8_lossy(&raw).chars().take(40).collect(),
                found: "a line without ':'".into(),
                expected: "NAME[;PARAM…]:VALUE".into(),
            });
        };
        props.push(decode_prop(&raw, head_end, line_no)?);
    }
    Ok(props)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    None,
    QuotedPrintable,
    Base64,
}

fn is_property_start(line: &[u8]) -> bool {
    let name_end = line.iter().position(|&b| b == b':' || b == b';');
    name_end.is_some_and(|end| {
        end > 0
            && line[..end]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
    })
}

/// The position of the ':' ending the name and parameters, and the value's encoding.
fn head_info(raw: &[u8]) -> (Option<usize>, Encoding) {
    let Some(colon) = raw.iter().position(|&b| b == b':') else {
        return (None, Encoding::None);
    };
    let head = String::from_utf8_lossy(&raw[..colon]).to_ascii_uppercase();
    let encoding = if head
        .split(';')
        .skip(1)
        .any(|p| p == "QUOTED-PRINTABLE" || p == "ENCODING=QUOTED-PRINTABLE")
    {
        Encoding::QuotedPrintable
    } else if head
        .split(';')
        .skip(1)
        .any(|p| p == "BASE64" || p == "ENCODING=BASE64" || p == "ENCODING=B")
    {
        Encoding::Base64
    } else {
        Encoding::None
    };
    (Some(colon), encoding)
}

fn decode_prop(raw: &[u8], colon: usize, line: usize) -> Result<Prop, VcalError> {
    let head = String::from_utf8_lossy(&raw[..colon]);
    let mut parts = split_unescaped(&head, ';').into_iter();
    let name = parts.next().unwrap_or_default().trim().to_ascii_uppercase();
    // A group prefix (`A.DESCRIPTION`) carries no meaning for calendars.
    let name = name.rsplit('.').next().unwrap_or_default().to_string();
    let mut params = Vec::new();
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) => params.push((k.trim().to_ascii_uppercase(), v.trim().to_string())),
            None => {
                let upper = part.to_ascii_uppercase();
                let key = match upper.as_str() {
                    "QUOTED-PRINTABLE" | "BASE64" | "8BIT" | "7BIT" => "ENCODING",
                    _ => "TYPE",
                };
                params.push((key.to_string(), upper));
            }
        }
    }
    let raw_value = &raw[colon + 1..];
    let encoding = params
        .iter()
        .find(|(k, _)| k == "ENCODING")
        .map(|(_, v)| v.to_ascii_uppercase());
    let mut binary = None;
    let bytes: Vec<u8> = match encoding.as_deref() {
        Some("QUOTED-PRINTABLE") => qp_decode(raw_value),
        Some("BASE64") | Some("B") => {
            let compact: Vec<u8> = raw_value
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let decoded =
                mail_parser::decoders::base64::base64_decode(&compact).ok_or_else(|| {
                    VcalError::Syntax {
                        line,
                        property: name.clone(),
                        found: String::from_utf8_lossy(&compact).chars().take(40).collect(),
                        expected: "BASE64 data ending at a blank line".into(),
                    }
                })?;
            binary = Some(decoded.clone());
            decoded
        }
        _ => raw_value.to_vec(),
    };
    let charset = params
        .iter()
        .find(|(k, _)| k == "CHARSET")
        .map(|(_, v)| v.clone());
    let value = transcode(&bytes, charset.as_deref());
    params.retain(|(k, _)| k != "ENCODING" && k != "CHARSET");
    Ok(Prop {
        line,
        name,
        params,
        value,
        binary,
    })
}

/// Splits on `sep` where it is not escaped with a backslash (the escape is kept).
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for ch in text.chars() {
        if escaped {
            current.push(ch);
            escaped = false;
        } else if ch == '\\' {
            current.push(ch);
            escaped = true;
        } else if ch == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(ch);
        }
    }
    parts.push(current);
    parts
}

/// Quoted-printable decoding; a malformed `=` sequence is kept as it is.
pub fn qp_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'='
            && let (Some(h), Some(l)) = (input.get(i + 1), input.get(i + 2))
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Bytes in `charset` to UTF-8. Without a charset (or with one encoding_rs does not know),
/// valid UTF-8 is taken as it is and anything else is read as windows-1252.
fn transcode(bytes: &[u8], charset: Option<&str>) -> String {
    if let Some(encoding) =
        charset.and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
    {
        let (text, _, _) = encoding.decode(bytes);
        return text.into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// vCalendar text: `\;` and `\\` are escapes, other backslashes are literal.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            match chars.peek() {
                Some(';') | Some('\\') | Some(',') => {
                    out.extend(chars.next());
                    continue;
                }
                Some('n') | Some('N') => {
                    chars.next();
                    out.push('\n');
                    continue;
                }
                _ => {}
            }
        }
        out.push(ch);
    }
    out
}

/// RFC 5545 TEXT escaping.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
    out
}

/// A parameter value, quoted when it holds `,`, `;` or `:`.
fn param_value(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    if clean.contains([',', ';', ':']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// The home zone of a vCalendar object: `TZ` plus the `DAYLIGHT` periods.
#[derive(Debug, Clone, Default)]
struct HomeZone {
    /// Standard offset in seconds east of UTC.
    standard: Option<i32>,
    /// Daylight periods: offset, start and end (local times).
    daylight: Vec<(i32, NaiveDateTime, NaiveDateTime)>,
}

impl HomeZone {
    /// Seconds east of UTC at a local time, or `None` when the object gives no `TZ`.
    fn offset_at(&self, local: NaiveDateTime) -> Option<i32> {
        let standard = self.standard?;
        // The DAYLIGHT property of the same year; a period of another year is shifted to
        // this year (the dates move by a few days from year to year, which is the best a
        // vCalendar object allows).
        let same_year = self
            .daylight
            .iter()
            .find(|(_, start, _)| start.year() == local.year());
        let period = same_year.cloned().or_else(|| {
            let nearest = self
                .daylight
                .iter()
                .min_by_key(|(_, start, _)| (start.year() - local.year()).abs())?;
            let shift = |t: NaiveDateTime| t.with_year(local.year());
            Some((nearest.0, shift(nearest.1)?, shift(nearest.2)?))
        });
        match period {
            Some((offset, start, end)) if local >= start && local < end => Some(offset),
            _ => Some(standard),
        }
    }
}

/// Parses `-05`, `+05:30`, `-0500`, `+5`.
fn parse_offset(text: &str) -> Option<i32> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let digits: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty()
        || digits.len() > 4
        || rest.chars().any(|c| !c.is_ascii_digit() && c != ':')
    {
        return None;
    }
    let (hours, minutes) = if digits.len() <= 2 {
        (digits.parse::<i32>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i32>().ok()?,
            digits[split..].parse::<i32>().ok()?,
        )
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// A parsed vCalendar date or date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Date(NaiveDate),
    Local(NaiveDateTime),
    Utc(NaiveDateTime),
}

/// Parses ISO 8601 basic or extended forms: `19960415`, `19960415T083000`,
/// `19960415T083000Z`, `1996-04-15T08:30:00Z`.
fn parse_when(text: &str) -> Option<When> {
    let text = text.trim();
    let utc = text.ends_with(['Z', 'z']);
    let body: String = text
        .trim_end_matches(['Z', 'z'])
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let (date, time) = match body.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (body.as_str(), None),
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        date[..4].parse().ok()?,
        date[4..6].parse().ok()?,
        date[6..].parse().ok()?,
    )?;
    let Some(time) = time else {
        return Some(When::Date(date));
    };
    let time = time.split(['.', ',']).next().unwrap_or_default();
    if !(time.len() == 4 || time.len() == 6) || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = if time.len() == 6 {
        time[4..].parse().ok()?
    } else {
        0
    };
    let time = NaiveTime::from_hms_opt(
        time[..2].parse().ok()?,
        time[2..4].parse().ok()?,
        seconds.min(59),
    )?;
    let dt = date.and_time(time);
    Some(if utc { When::Utc(dt) } else { When::Local(dt) })
}

fn basic(dt: NaiveDateTime) -> String {
    dt.format("%Y%m%dT%H%M%S").to_string()
}

/// The converter's state for one VCALENDAR.
#[derive(Default)]
struct Converter {
    zone: HomeZone,
}

impl Converter {
    /// An RFC 5545 value for a vCalendar date-time: UTC when the object has a `TZ`, else
    /// floating. Returns the value and whether it is a DATE.
    fn time_value(&self, prop: &Prop, text: &str) -> Result<(String, bool), VcalError> {
        let when = parse_when(text).ok_or_else(|| {
            prop.syntax(
                text,
                "an ISO 8601 date or date-time such as 19960415T083000Z",
            )
        })?;
        Ok(match when {
            When::Date(d) => (d.format("%Y%m%d").to_string(), true),
            When::Utc(dt) => (format!("{}Z", basic(dt)), false),
            When::Local(dt) => match self.zone.offset_at(dt) {
                Some(offset) => (
                    format!("{}Z", basic(dt - Duration::seconds(offset.into()))),
                    false,
                ),
                None => (basic(dt), false),
            },
        })
    }

    fn calendar(&mut self, props: &[Prop], out: &mut String) -> Result<(), VcalError> {
        // Calendar-level properties come before the first BEGIN (the spec requires it); the
        // zone must be known before any time is converted.
        let mut depth = 0usize;
        for prop in props {
            match prop.name.as_str() {
                "BEGIN" => depth += 1,
                "END" => depth = depth.saturating_sub(1),
                "TZ" if depth == 1 => {
                    self.zone.standard = Some(parse_offset(&prop.value).ok_or_else(|| {
                        prop.syntax(&prop.value, "an offset from UTC such as -05 or +05:30")
                    })?);
                }
                "DAYLIGHT" if depth == 1 => self.daylight(prop)?,
                _ => {}
            }
        }
        let mut header = Vec::new();
        let mut components: Vec<(String, usize, Vec<Prop>)> = Vec::new();
        let mut open: Option<(String, usize, Vec<Prop>)> = None;
        for prop in props {
            match prop.name.as_str() {
                "BEGIN" => {
                    let kind = prop.value.trim().to_ascii_uppercase();
                    if kind == "VCALENDAR" {
                        continue;
                    }
                    if let Some((outer, _, _)) = &open {
                        return Err(prop.syntax(
                            &format!("BEGIN:{kind}"),
                            &format!(
                                "a property or END:{outer} (vCalendar components do not nest)"
                            ),
                        ));
                    }
                    if kind != "VEVENT" && kind != "VTODO" {
                        return Err(
                            prop.syntax(&format!("BEGIN:{kind}"), "BEGIN:VEVENT or BEGIN:VTODO")
                        );
                    }
                    open = Some((kind, prop.line, Vec::new()));
                }
                "END" => {
                    let kind = prop.value.trim().to_ascii_uppercase();
                    if kind == "VCALENDAR" {
                        if let Some((open_kind, line, _)) = open {
                            return Err(VcalError::Unterminated {
                                component: open_kind,
                                line,
                            });
                        }
                        continue;
                    }
                    match open.take() {
                        Some((open_kind, line, body)) if open_kind == kind => {
                            components.push((open_kind, line, body));
                        }
                        Some((open_kind, _, _)) => {
                            return Err(
                                prop.syntax(&format!("END:{kind}"), &format!("END:{open_kind}"))
                            );
                        }
                        None => {
                            return Err(prop.syntax(
                                &format!("END:{kind}"),
                                "BEGIN:VEVENT or BEGIN:VTODO first",
                            ));
                        }
                    }
                }
                _ => match &mut open {
                    Some((_, _, body)) => body.push(prop.clone()),
                    None => header.push(prop.clone()),
                },
            }
        }
        if let Some((component, line, _)) = open {
            return Err(VcalError::Unterminated { component, line });
        }
        out.push_str("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        let mut wrote_prodid = false;
        for prop in &header {
            match prop.name.as_str() {
                "VERSION" | "TZ" | "DAYLIGHT" => {}
                "PRODID" => {
                    wrote_prodid = true;
                    line(out, "PRODID", &[], &escape_text(&unescape(&prop.value)));
                }
                "X-METHOD" => line(out, "METHOD", &[], &prop.value.trim().to_ascii_uppercase()),
                "GEO" => line(out, "X-VCAL-GEO", &[], &prop.value),
                _ => self.passthrough(prop, out),
            }
        }
        if !wrote_prodid {
            line(out, "PRODID", &[], "-//imipd//vCalendar 1.0 conversion//EN");
        }
        for (kind, _, body) in &components {
            self.component(kind, body, out)?;
        }
        out.push_str("END:VCALENDAR\r\n");
        Ok(())
    }

    fn daylight(&mut self, prop: &Prop) -> Result<(), VcalError> {
        let parts = split_unescaped(&prop.value, ';');
        let flag = parts
            .first()
            .map(|s| s.trim().to_ascii_uppercase())
            .unwrap_or_default();
        if flag == "FALSE" || flag == "0" {
            return Ok(());
        }
        let expected = "TRUE;<offset>;<start>;<end>;<std name>;<dst name>";
        if flag != "TRUE" && flag != "1" {
            return Err(prop.syntax(&prop.value, expected));
        }
        let offset = parts
            .get(1)
            .and_then(|s| parse_offset(s))
            .ok_or_else(|| prop.syntax(&prop.value, expected))?;
        let at = |i: usize| match parts.get(i).and_then(|s| parse_when(s)) {
            Some(When::Local(dt)) | Some(When::Utc(dt)) => Some(dt),
            Some(When::Date(d)) => Some(d.and_time(NaiveTime::MIN)),
            None => None,
        };
        let (Some(start), Some(end)) = (at(2), at(3)) else {
            return Err(prop.syntax(&prop.value, expected));
        };
        self.zone.daylight.push((offset, start, end));
        Ok(())
    }

    fn passthrough(&self, prop: &Prop, out: &mut String) {
        let params: Vec<(&str, String)> = prop
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), param_value(v)))
            .collect();
        let name = if prop.name.starts_with("X-") || is_ical_name(&prop.name) {
            prop.name.clone()
        } else {
            format!("X-VCAL-{}", prop.name)
        };
        let value = if let Some(binary) = &prop.binary {
            let mut params = params.clone();
            params.push(("ENCODING", "BASE64".into()));
            params.push(("VALUE", "BINARY".into()));
            let mut encoded = String::new();
            super::writer::base64_into(&mut encoded, binary);
            line(out, &name, &params, &encoded);
            return;
        } else {
            escape_text(&unescape(&prop.value))
        };
        line(out, &name, &params, &value);
    }

    fn component(&self, kind: &str, body: &[Prop], out: &mut String) -> Result<(), VcalError> {
        out.push_str(&format!("BEGIN:{kind}\r\n"));
        let is_todo = kind == "VTODO";
        let has_role_organizer = body.iter().any(|p| {
            p.name == "ATTENDEE"
                && p.param("ROLE")
                    .is_some_and(|r| r.eq_ignore_ascii_case("ORGANIZER"))
        });
        let has_x_organizer = body.iter().any(|p| p.name == "X-ORGANIZER");
        let mut wrote_organizer = false;
        let mut alarms = Vec::new();
        let summary = body
            .iter()
            .find(|p| p.name == "SUMMARY")
            .map(|p| unescape(&p.value));
        let dtstart = body
            .iter()
            .find(|p| p.name == "DTSTART")
            .and_then(|p| parse_when(&p.value));
        for prop in body {
            match prop.name.as_str() {
                "DTSTART" | "DTEND" | "DUE" | "COMPLETED" | "LAST-MODIFIED" | "DCREATED" => {
                    let (value, is_date) = self.time_value(prop, &prop.value)?;
                    let name = if prop.name == "DCREATED" {
                        "CREATED"
                    } else {
                        prop.name.as_str()
                    };
                    let params: Vec<(&str, String)> = if is_date {
                        vec![("VALUE", "DATE".into())]
                    } else {
                        Vec::new()
                    };
                    line(out, name, &params, &value);
                }
                "RDATE" | "EXDATE" => {
                    let mut values = Vec::new();
                    let mut all_dates = true;
                    for item in split_unescaped(&prop.value, ';') {
                        let item = item.trim();
                        if item.is_empty() {
                            continue;
                        }
                        let (value, is_date) = self.time_value(prop, item)?;
                        all_dates &= is_date;
                        values.push(value);
                    }
                    if values.is_empty() {
                        continue;
                    }
                    let params: Vec<(&str, String)> = if all_dates {
                        vec![("VALUE", "DATE".into())]
                    } else {
                        Vec::new()
                    };
                    line(out, &prop.name, &params, &values.join(","));
                }
                "CATEGORIES" | "RESOURCES" => {
                    let items: Vec<String> = split_unescaped(&prop.value, ';')
                        .iter()
                        .map(|s| escape_text(unescape(s).trim()))
                        .filter(|s| !s.is_empty())
                        .collect();
                    line(out, &prop.name, &language(prop), &items.join(","));
                }
                "RRULE" | "EXRULE" => {
                    let start = dtstart.map(|w| match w {
                        When::Date(d) => d.and_time(NaiveTime::MIN),
                        When::Local(dt) | When::Utc(dt) => dt,
                    });
                    let until_zone = |text: &str| self.time_value(prop, text).map(|(v, _)| v);
                    let rule = convert_rrule_with(&prop.value, start, &until_zone)
                        .map_err(|reason| prop.syntax(&prop.value, &reason))?;
                    line(out, &prop.name, &[], &rule);
                }
                "ATTENDEE" => {
                    let role = prop.param("ROLE").map(str::to_ascii_uppercase);
                    let becomes_organizer = !wrote_organizer
                        && !has_x_organizer
                        && (role.as_deref() == Some("ORGANIZER")
                            || (role.as_deref() == Some("OWNER") && !has_role_organizer));
                    if becomes_organizer {
                        wrote_organizer = true;
                        let (cn, address) = address_value(&prop.value, prop.param("VALUE"));
                        let mut params = Vec::new();
                        if let Some(cn) = cn {
                            params.push(("CN", param_value(&cn)));
                        }
                        line(out, "ORGANIZER", &params, &address);
                    } else {
                        self.attendee(prop, is_todo, out);
                    }
                }
                "X-ORGANIZER" => {
                    wrote_organizer = true;
                    let (cn, address) = address_value(&prop.value, None);
                    let mut params = Vec::new();
                    if let Some(cn) = cn {
                        params.push(("CN", param_value(&cn)));
                    }
                    line(out, "ORGANIZER", &params, &address);
                }
                "STATUS" => {
                    let value = prop.value.trim().to_ascii_uppercase();
                    let mapped = match (is_todo, value.as_str()) {
                        (false, "TENTATIVE" | "CONFIRMED") => Some(value.clone()),
                        (true, "NEEDS ACTION" | "NEEDS-ACTION") => Some("NEEDS-ACTION".into()),
                        (true, "COMPLETED") => Some("COMPLETED".into()),
                        _ => None,
                    };
                    match mapped {
                        Some(status) => line(out, "STATUS", &[], &status),
                        None => line(out, "X-VCAL-STATUS", &[], &escape_text(&value)),
                    }
                }
                "TRANSP" => {
                    let value = prop.value.trim();
                    let transp = match value.parse::<i64>() {
                        Ok(0) => "OPAQUE",
                        Ok(_) => "TRANSPARENT",
                        Err(_) if value.eq_ignore_ascii_case("OPAQUE") => "OPAQUE",
                        Err(_) if value.eq_ignore_ascii_case("TRANSPARENT") => "TRANSPARENT",
                        Err(_) => {
                            return Err(prop.syntax(value, "0 (opaque) or 1 (transparent)"));
                        }
                    };
                    line(out, "TRANSP", &[], transp);
                }
                "SEQUENCE" => {
                    let value = prop.value.trim().parse::<i64>().unwrap_or(0).max(0);
                    line(out, "SEQUENCE", &[], &value.to_string());
                }
                "PRIORITY" => {
                    let value = prop.value.trim().parse::<i64>().unwrap_or(0).clamp(0, 9);
                    line(out, "PRIORITY", &[], &value.to_string());
                }
                "CLASS" => line(out, "CLASS", &[], &prop.value.trim().to_ascii_uppercase()),
                "UID" | "URL" | "RELATED-TO" => {
                    let value = if prop.name == "URL" {
                        prop.value.trim().to_string()
                    } else {
                        escape_text(&unescape(prop.value.trim()))
                    };
                    line(out, &prop.name, &[], &value);
                }
                "SUMMARY" | "DESCRIPTION" | "LOCATION" | "COMMENT" => {
                    line(
                        out,
                        &prop.name,
                        &language(prop),
                        &escape_text(&unescape(&prop.value)),
                    );
                }
                "ATTACH" => self.attach(prop, out),
                "AALARM" | "DALARM" | "MALARM" | "PALARM" => alarms.push(prop),
                "RNUM" => line(out, "X-VCAL-RNUM", &[], prop.value.trim()),
                "X-METHOD" => {}
                _ => self.passthrough(prop, out),
            }
        }
        // VALARMs last: Outlook refuses an event whose VALARM is not its last item.
        for alarm in alarms {
            self.alarm(alarm, summary.as_deref(), out)?;
        }
        out.push_str(&format!("END:{kind}\r\n"));
        Ok(())
    }

    fn attendee(&self, prop: &Prop, is_todo: bool, out: &mut String) {
        let (cn, address) = address_value(&prop.value, prop.param("VALUE"));
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(cn) = cn {
            params.push(("CN", param_value(&cn)));
        }
        let mut rsvp = prop
            .param("RSVP")
            .map(|r| matches!(r.trim().to_ascii_uppercase().as_str(), "YES" | "TRUE"));
        match prop
            .param("EXPECT")
            .map(|e| e.trim().to_ascii_uppercase())
            .as_deref()
        {
            Some("REQUIRE") => params.push(("ROLE", "REQ-PARTICIPANT".into())),
            Some("REQUEST") => params.push(("ROLE", "OPT-PARTICIPANT".into())),
            Some("FYI") => params.push(("ROLE", "NON-PARTICIPANT".into())),
            Some("IMMEDIATE") => {
                params.push(("ROLE", "REQ-PARTICIPANT".into()));
                rsvp = Some(true);
            }
            _ => {}
        }
        let status = prop.param("STATUS").map(|s| s.trim().to_ascii_uppercase());
        let partstat = match status.as_deref() {
            Some("ACCEPTED" | "CONFIRMED") => "ACCEPTED",
            Some("TENTATIVE") => "TENTATIVE",
            Some("DECLINED") => "DECLINED",
            Some("DELEGATED") => "DELEGATED",
            Some("COMPLETED") if is_todo => "COMPLETED",
            _ => "NEEDS-ACTION",
        };
        params.push(("PARTSTAT", partstat.into()));
        if let Some(rsvp) = rsvp {
            params.push(("RSVP", if rsvp { "TRUE" } else { "FALSE" }.into()));
        }
        for (k, v) in &prop.params {
            if k.starts_with("X-") {
                params.push((k.as_str(), param_value(v)));
            }
        }
        line(out, "ATTENDEE", &params, &address);
    }

    fn attach(&self, prop: &Prop, out: &mut String) {
        if let Some(binary) = &prop.binary {
            let mut encoded = String::new();
            super::writer::base64_into(&mut encoded, binary);
            let mut params = vec![
                ("ENCODING", "BASE64".to_string()),
                ("VALUE", "BINARY".into()),
            ];
            if let Some(t) = prop.param("TYPE") {
                params.push(("FMTTYPE", param_value(t)));
            }
            line(out, "ATTACH", &params, &encoded);
            return;
        }
        let value = prop.value.trim();
        let uri = match prop.param("VALUE").map(str::to_ascii_uppercase).as_deref() {
            Some("CONTENT-ID" | "CID") => format!("cid:{}", value.trim_matches(['<', '>'])),
            _ => value.to_string(),
        };
        line(out, "ATTACH", &[], &uri);
    }

    fn alarm(&self, prop: &Prop, summary: Option<&str>, out: &mut String) -> Result<(), VcalError> {
        let parts: Vec<String> = split_unescaped(&prop.value, ';')
            .iter()
            .map(|s| unescape(s).trim().to_string())
            .collect();
        let part = |i: usize| parts.get(i).map(String::as_str).filter(|s| !s.is_empty());
        out.push_str("BEGIN:VALARM\r\n");
        let action = match prop.name.as_str() {
            "AALARM" => "AUDIO",
            "MALARM" => "EMAIL",
            _ => "DISPLAY",
        };
        line(out, "ACTION", &[], action);
        match part(0) {
            Some(run_time) => {
                let (value, is_date) = self.time_value(prop, run_time)?;
                let value = if is_date {
                    format!("{value}T000000")
                } else {
                    value
                };
                line(out, "TRIGGER", &[("VALUE", "DATE-TIME".into())], &value);
            }
            None => line(out, "TRIGGER", &[], "PT0S"),
        }
        if let Some(snooze) = part(1) {
            if !snooze.starts_with(['P', 'p', '-', '+']) {
                return Err(prop.syntax(snooze, "a snooze time such as PT5M"));
            }
            let repeat = part(2).and_then(|r| r.parse::<u32>().ok()).unwrap_or(0);
            // DURATION and REPEAT must come together (RFC 5545 §3.6.6).
            if repeat > 0 {
                line(out, "DURATION", &[], snooze);
                line(out, "REPEAT", &[], &repeat.to_string());
            }
        }
        let fallback = summary.unwrap_or("Reminder");
        match prop.name.as_str() {
            "AALARM" => {
                if let Some(content) = part(3) {
                    self.alarm_attach(prop, content, out);
                }
            }
            "DALARM" => {
                line(
                    out,
                    "DESCRIPTION",
                    &[],
                    &escape_text(part(3).unwrap_or(fallback)),
                );
            }
            "MALARM" => {
                let (_, address) = address_value(part(3).unwrap_or_default(), None);
                line(out, "ATTENDEE", &[], &address);
                line(out, "SUMMARY", &[], &escape_text(fallback));
                line(
                    out,
                    "DESCRIPTION",
                    &[],
                    &escape_text(part(4).unwrap_or(fallback)),
                );
            }
            _ => {
                let procedure = part(3).unwrap_or_default();
                line(
                    out,
                    "DESCRIPTION",
                    &[],
                    &escape_text(&format!("{fallback} (procedure: {procedure})")),
                );
                if !procedure.is_empty() {
                    line(out, "X-VCAL-PROCEDURE", &[], &escape_text(procedure));
                }
            }
        }
        out.push_str("END:VALARM\r\n");
        Ok(())
    }

    fn alarm_attach(&self, prop: &Prop, content: &str, out: &mut String) {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(t) = prop.param("TYPE") {
            let fmt = match t.to_ascii_uppercase().as_str() {
                "WAVE" => "audio/wav",
                "PCM" => "audio/basic",
                "AIFF" => "audio/aiff",
                _ => "application/octet-stream",
            };
            params.push(("FMTTYPE", fmt.into()));
        }
        let uri = match prop.param("VALUE").map(str::to_ascii_uppercase).as_deref() {
            Some("CONTENT-ID" | "CID") => format!("cid:{}", content.trim_matches(['<', '>'])),
            _ => content.to_string(),
        };
        line(out, "ATTACH", &params, &uri);
    }
}

fn is_ical_name(name: &str) -> bool {
    matches!(
        name,
        "GEO"
            | "CONTACT"
            | "ORGANIZER"
            | "DURATION"
            | "PERCENT-COMPLETE"
            | "REQUEST-STATUS"
            | "CALSCALE"
            | "METHOD"
            | "DTSTAMP"
            | "RECURRENCE-ID"
    )
}

fn language(prop: &Prop) -> Vec<(&'static str, String)> {
    prop.param("LANGUAGE")
        .map(|l| vec![("LANGUAGE", param_value(l))])
        .unwrap_or_default()
}

/// A vCalendar address value: `Name <addr>`, a bare addr-spec, `MAILTO:addr`, or a URL.
/// Returns the CN (if any) and an RFC 5545 CAL-ADDRESS. A name without an address gets the
/// non-mailto address `invalid:nomail`.
fn address_value(value: &str, value_param: Option<&str>) -> (Option<String>, String) {
    let value = value.trim();
    if value_param.is_some_and(|v| v.eq_ignore_ascii_case("URL")) {
        return (None, value.to_string());
    }
    if let (Some(open), Some(close)) = (value.rfind('<'), value.rfind('>'))
        && open < close
    {
        let name = value[..open].trim().trim_matches('"').trim();
        let address = value[open + 1..close].trim();
        let name = (!name.is_empty()).then(|| name.to_string());
        return (name, mailto(address));
    }
    if value.contains('@') {
        return (None, mailto(value));
    }
    if value.is_empty() {
        return (None, "invalid:nomail".into());
    }
    (Some(value.to_string()), "invalid:nomail".into())
}

fn mailto(address: &str) -> String {
    let address = address.trim();
    match address.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => {
            format!("mailto:{}", address[7..].trim())
        }
        _ => format!("mailto:{address}"),
    }
}

/// Writes one content line, folded.
fn line(out: &mut String, name: &str, params: &[(&str, String)], value: &str) {
    let mut text = String::with_capacity(name.len() + value.len() + 16);
    text.push_str(name);
    for (k, v) in params {
        text.push(';');
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    text.push(':');
    text.push_str(value);
    fold_into(out, &text);
}

/// Converts a vCalendar 1.0 basic recurrence rule to an RFC 5545 RRULE value.
///
/// `dtstart` (wall-clock time) fills what the rule leaves to the start (`MP1` without
/// weekdays repeats on the start's n-th weekday) and decides between COUNT and UNTIL when
/// the rule gives both (RFC 5545 allows only one; the vCalendar rule ends at whichever comes
/// first). An end date is written as given (UTC when it ends in `Z`).
pub fn convert_rrule(rule: &str, dtstart: Option<NaiveDateTime>) -> Result<String, String> {
    convert_rrule_with(rule, dtstart, &|text: &str| {
        parse_when(text)
            .map(|w| match w {
                When::Date(d) => d.format("%Y%m%d").to_string(),
                When::Local(dt) => basic(dt),
                When::Utc(dt) => format!("{}Z", basic(dt)),
            })
            .ok_or(VcalError::NoCalendar)
    })
}

fn convert_rrule_with(
    rule: &str,
    dtstart: Option<NaiveDateTime>,
    end_value: &dyn Fn(&str) -> Result<String, VcalError>,
) -> Result<String, String> {
    const GRAMMAR: &str = "a basic recurrence rule such as 'D1 #10', 'W2 TU TH #4', 'MP1 1+ FR #10', 'MD1 1 LD #10', 'YM1 6 7 #10' or 'YD3 1 100 #10'";
    let mut tokens = rule.split_whitespace();
    let first = tokens
        .next()
        .ok_or_else(|| GRAMMAR.to_string())?
        .to_ascii_uppercase();
    let (kind, interval) = ["MP", "MD", "YM", "YD", "D", "W"]
        .iter()
        .find_map(|k| first.strip_prefix(k).map(|rest| (*k, rest)))
        .ok_or_else(|| format!("{GRAMMAR}; the rule must start with D, W, MP, MD, YM or YD"))?;
    let interval: u32 = if interval.is_empty() {
        1
    } else {
        interval
            .parse()
            .map_err(|_| format!("{GRAMMAR}; '{first}' has no valid interval"))?
    };
    if interval == 0 {
        return Err(format!("{GRAMMAR}; the interval must be at least 1"));
    }
    let mut count: Option<u32> = None;
    let mut until: Option<String> = None;
    let mut weekdays: Vec<String> = Vec::new();
    let mut occurrences: Vec<i32> = Vec::new();
    let mut pending_occurrences: Vec<i32> = Vec::new();
    let mut by_weekday_pos: Vec<String> = Vec::new();
    let mut numbers: Vec<i32> = Vec::new();
    for token in tokens {
        let token = token.to_ascii_uppercase();
        if let Some(n) = token.strip_prefix('#') {
            count = Some(
                n.parse()
                    .map_err(|_| format!("{GRAMMAR}; '{token}' is not a duration"))?,
            );
            continue;
        }
        if token.len() >= 8 && token.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
            until = Some(
                end_value(&token)
                    .map_err(|_| format!("{GRAMMAR}; '{token}' is not an end date"))?,
            );
            continue;
        }
        if let Some(day) = weekday(&token) {
            match kind {
                "W" => weekdays.push(day.to_string()),
                "MP" => {
                    if !pending_occurrences.is_empty() {
                        occurrences = std::mem::take(&mut pending_occurrences);
                    }
                    if occurrences.is_empty() {
                        return Err(format!(
                            "{GRAMMAR}; '{token}' needs an occurrence such as 1+ before it"
                        ));
                    }
                    for n in &occurrences {
                        by_weekday_pos.push(format!("{n}{day}"));
                    }
                }
                _ => {
                    return Err(format!(
                        "{GRAMMAR}; a weekday is not allowed in a {kind} rule"
                    ));
                }
            }
            continue;
        }
        if token == "LD" && kind == "MD" {
            numbers.push(-1);
            continue;
        }
        if token == "$" {
            continue;
        }
        let (digits, sign) = match token.strip_suffix('+') {
            Some(d) => (d, 1),
            None => match token.strip_suffix('-') {
                Some(d) => (d, -1),
                None => (token.as_str(), 0),
            },
        };
        let n: i32 = digits
            .parse()
            .map_err(|_| format!("{GRAMMAR}; '{token}' is not understood"))?;
        match kind {
            "MP" => {
                if sign == 0 || !(1..=5).contains(&n) {
                    return Err(format!(
                        "{GRAMMAR}; '{token}' is not an occurrence (1+ … 5+, 1- … 5-)"
                    ));
                }
                pending_occurrences.push(if sign < 0 { -n } else { n });
            }
            "MD" if (1..=31).contains(&n) => numbers.push(if sign < 0 { -n } else { n }),
            "YM" if (1..=12).contains(&n) && sign == 0 => numbers.push(n),
            "YD" if (1..=366).contains(&n) && sign == 0 => numbers.push(n),
            _ => {
                return Err(format!(
                    "{GRAMMAR}; '{token}' is out of range for a {kind} rule"
                ));
            }
        }
    }
    if !pending_occurrences.is_empty() {
        return Err(format!("{GRAMMAR}; an occurrence needs a weekday after it"));
    }
    let mut parts = vec![format!(
        "FREQ={}",
        match kind {
            "D" => "DAILY",
            "W" => "WEEKLY",
            "MP" | "MD" => "MONTHLY",
            _ => "YEARLY",
        }
    )];
    if interval > 1 {
        parts.push(format!("INTERVAL={interval}"));
    }
    match kind {
        "W" if !weekdays.is_empty() => parts.push(format!("BYDAY={}", weekdays.join(","))),
        "MP" => {
            if by_weekday_pos.is_empty() {
                // From the start: its weekday and its occurrence in the month.
                let start = dtstart
                    .ok_or_else(|| format!("{GRAMMAR}; MP without weekdays needs a DTSTART"))?;
                let nth = (start.day() - 1) / 7 + 1;
                let day = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
                    [start.weekday().num_days_from_monday() as usize];
                by_weekday_pos.push(format!("{nth}{day}"));
            }
            parts.push(format!("BYDAY={}", by_weekday_pos.join(",")));
        }
        "MD" if !numbers.is_empty() => parts.push(format!("BYMONTHDAY={}", join(&numbers))),
        "YM" if !numbers.is_empty() => parts.push(format!("BYMONTH={}", join(&numbers))),
        "YD" if !numbers.is_empty() => parts.push(format!("BYYEARDAY={}", join(&numbers))),
        _ => {}
    }
    // No duration and no end date: two events (the spec's Policies: D4 is D4 #2).
    let count = match (count, &until) {
        (None, None) => Some(2),
        (Some(0), _) => None,
        (c, _) => c,
    };
    match (count, until) {
        (Some(n), Some(end)) => {
            // Whichever comes first: COUNT when the n-th event is not after the end date.
            let base = parts.join(";");
            let use_count = dtstart
                .map(|start| nth_event(&base, start, n).is_none_or(|last| !ends_before(&end, last)))
                .unwrap_or(true);
            if use_count {
                parts.push(format!("COUNT={n}"));
            } else {
                parts.push(format!("UNTIL={end}"));
            }
        }
        (Some(n), None) => parts.push(format!("COUNT={n}")),
        (None, Some(end)) => parts.push(format!("UNTIL={end}")),
        (None, None) => {}
    }
    Ok(parts.join(";"))
}

fn join(numbers: &[i32]) -> String {
    numbers
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn weekday(token: &str) -> Option<&'static str> {
    Some(match token {
        "SU" => "SU",
        "MO" => "MO",
        "TU" => "TU",
        "WE" => "WE",
        "TH" => "TH",
        "FR" => "FR",
        "SA" => "SA",
        _ => return None,
    })
}

/// The wall-clock start of the n-th event of `rule` from `start`.
fn nth_event(rule: &str, start: NaiveDateTime, n: u32) -> Option<NaiveDateTime> {
    let text = format!("DTSTART:{}Z\nRRULE:{rule};COUNT={n}", basic(start));
    let set: rrule::RRuleSet = text.parse().ok()?;
    (&set)
        .into_iter()
        .take(n as usize)
        .last()
        .map(|dt| dt.naive_utc())
}

/// Whether an end value (as written in the RRULE) lies before `last`.
fn ends_before(end: &str, last: NaiveDateTime) -> bool {
    match parse_when(end) {
        Some(When::Date(d)) => d < last.date(),
        Some(When::Local(dt)) | Some(When::Utc(dt)) => dt < last.with_nanosecond(0).unwrap_or(last),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_in_every_written_form() {
        assert_eq!(parse_offset("-05"), Some(-5 * 3600));
        assert_eq!(parse_offset("+05:30"), Some(5 * 3600 + 1800));
        assert_eq!(parse_offset("-0800"), Some(-8 * 3600));
        assert_eq!(parse_offset("x"), None);
    }

    #[test]
    fn quoted_printable_keeps_malformed_escapes() {
        assert_eq!(qp_decode(b"Caf=E9 =ZZ"), b"Caf\xe9 =ZZ");
    }
}
