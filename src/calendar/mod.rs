//! Calendar data: iCalendar 2.0 and vCalendar 1.0 read into one model (calcard's
//! [`ICalendar`]), written back losslessly, placed on the UTC time line and expanded.
//!
//! Every later stage sees calendar data only through this module:
//!
//! - [`parse`] / [`parse_bytes`]: iCalendar 2.0, with the guards calcard lacks (BOM, size,
//!   truncation and nesting checked before calcard sees the text; unfolding on bytes so that
//!   a UTF-8 character split by a fold survives; single-valued parameters written with an
//!   unquoted comma kept whole). Errors name the line.
//! - [`parse_any`]: iCalendar 2.0 or vCalendar 1.0 ([`vcal1`] converts the latter);
//!   [`parse_file`]: the same for an `.ics`, `.vcs` or `.eml` file.
//! - [`defects`] ([`check`]): required properties and values, as errors or warnings.
//! - [`write`]: RFC 5545 text, CRLF, folded at 75 octets; repairs what calcard's writer
//!   would change (escaped commas in X- properties, TZID values and URIs; see `writer.rs`).
//! - [`tz`]: TZIDs as clients write them, and VTIMEZONE rules, to UTC.
//! - [`recur`]: instances over a window (RRULE, RDATE, EXDATE, overrides) with hard caps.
//! - [`export`]: iCalendar, jCal (RFC 7265) and hCalendar HTML.
//! - [`SchedulingView`]: the properties scheduling needs, read into types ([`Uid`],
//!   [`CalAddress`], [`Method`], [`PartStat`]).

pub mod check;
pub mod export;
pub mod recur;
mod types;
pub mod tz;
pub mod vcal1;
pub mod view;
mod writer;

pub use calcard::icalendar::{
    ICalendar, ICalendarComponentType, ICalendarProperty, ICalendarValue,
};
pub use check::{Defect, Severity, defects};
pub use types::{CalAddress, Method, PartStat, Uid};
pub use view::{Attendee, ComponentKind, Instance, SchedulingView, ViewError};

use calcard::{Entry, Parser};

/// Why a calendar part could not be read. Line numbers count from 1 in the part's text
/// (physical lines, before unfolding).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The input holds no `BEGIN:VCALENDAR` object at all.
    #[error("no iCalendar object found (expected a line 'BEGIN:VCALENDAR')")]
    NoCalendar,
    /// The object ends before its `END:` line: the part was cut off in transit.
    #[error(
        "truncated iCalendar object: 'BEGIN:{component}' at line {line} is never closed (expected 'END:{component}')"
    )]
    Unterminated { component: String, line: usize },
    /// Components close in the wrong order, or a component closes that never opened.
    #[error("line {line}: found 'END:{found}' where {expected} was expected")]
    MismatchedEnd {
        line: usize,
        expected: String,
        found: String,
    },
    /// Components nest deeper than [`MAX_DEPTH`]: no real client does this.
    #[error("line {line}: components nested deeper than {MAX_DEPTH} levels")]
    TooDeep { line: usize },
    /// calcard refused the object (too many components).
    #[error("iCalendar object starting at line {line}: too many components")]
    TooManyComponents { line: usize },
    /// The part is larger than [`MAX_INPUT`]; no invitation is that big.
    #[error("calendar part of {size} bytes is larger than the limit of {MAX_INPUT} bytes")]
    TooLarge { size: usize },
    /// A vCalendar 1.0 object could not be converted.
    #[error(transparent)]
    VCal(#[from] vcal1::VcalError),
}

/// The deepest nesting accepted (VCALENDAR > VTIMEZONE > STANDARD is 3; VEVENT > VALARM is 3).
pub const MAX_DEPTH: usize = 8;

/// The largest calendar part accepted (inline attachments make some invitations big, but
/// nothing legitimate comes close to this).
pub const MAX_INPUT: usize = 16 * 1024 * 1024;

/// Parses every VCALENDAR object in `input` (a part may hold several, one after another).
///
/// A byte-order mark is skipped. Lines outside any object are ignored, as real mailers add
/// text around the object. The structure is checked before calcard sees it, because calcard
/// accepts a truncated object silently and acting on half an invitation is worse than not
/// acting: an unterminated or mis-nested object is an error naming the line.
pub fn parse(input: &str) -> Result<Vec<ICalendar>, ParseError> {
    parse_bytes(input.as_bytes())
}

/// Parses iCalendar 2.0 from raw bytes.
///
/// Unfolding happens on bytes, before UTF-8 decoding, because clients fold at 75 octets and
/// some split a multi-octet character across the fold (RFC 5545 §3.1 allows it). Invalid
/// UTF-8 that remains after unfolding is replaced by U+FFFD (the object stays usable).
pub fn parse_bytes(input: &[u8]) -> Result<Vec<ICalendar>, ParseError> {
    if input.len() > MAX_INPUT {
        return Err(ParseError::TooLarge { size: input.len() });
    }
    let unfolded = Unfolded::new(input);
    let spans = check_structure(&unfolded)?;
    let mut calendars = Vec::with_capacity(spans.len());
    for span in spans {
        let mut parser = Parser::new(&unfolded.text[span.start..span.end]);
        match parser.entry() {
            Entry::ICalendar(ical) => calendars.push(ical),
            Entry::TooManyComponents => {
                return Err(ParseError::TooManyComponents { line: span.line });
            }
            // The structure check above guarantees a complete VCALENDAR in the span.
            _ => return Err(ParseError::NoCalendar),
        }
    }
    Ok(calendars)
}

/// Parses iCalendar 2.0 or vCalendar 1.0 into the one model.
///
/// Each VCALENDAR whose `VERSION` is `1.0` is converted by [`vcal1::convert`] to RFC 5545 text
/// first, so every later stage sees iCalendar 2.0 only. A stream may mix both versions.
pub fn parse_any(input: &[u8]) -> Result<Vec<ICalendar>, ParseError> {
    if input.len() > MAX_INPUT {
        return Err(ParseError::TooLarge { size: input.len() });
    }
    if !vcal1::is_vcalendar1(input) {
        return parse_bytes(input);
    }
    let converted = vcal1::convert(input)?;
    parse(&converted)
}

/// Reads a calendar file: an `.eml` message (or anything that starts like one) is searched
/// for its calendar parts with [`crate::mail::extract`] (identical objects in several parts
/// are returned once); anything else is read as iCalendar 2.0 or vCalendar 1.0
/// ([`parse_any`]).
pub fn parse_file(bytes: &[u8], path: &std::path::Path) -> Result<Vec<ICalendar>, ParseError> {
    let is_mail = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("eml") || e.eq_ignore_ascii_case("msg"))
        || (!bytes.trim_ascii_start().starts_with(b"BEGIN:")
            && !bytes.starts_with(b"\xef\xbb\xbf")
            && looks_like_mail(bytes));
    if !is_mail {
        return parse_any(bytes);
    }
    let extracted = crate::mail::extract::extract(bytes).map_err(|_| ParseError::NoCalendar)?;
    let mut calendars: Vec<ICalendar> = Vec::new();
    for part in &extracted.parts {
        for ical in parse_any(part.text.as_bytes())? {
            // Gmail sends the same object as text/calendar and as invite.ics: keep one.
            if !calendars.contains(&ical) {
                calendars.push(ical);
            }
        }
    }
    if calendars.is_empty() {
        return Err(ParseError::NoCalendar);
    }
    Ok(calendars)
}

/// Whether the first line is an RFC 5322 header field.
fn looks_like_mail(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let Some(colon) = first.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && first[..colon]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// The input after unfolding: the text, and for each of its lines the physical line (from 1)
/// where that content line started.
pub(crate) struct Unfolded {
    pub(crate) text: String,
    pub(crate) lines: Vec<usize>,
}

impl Unfolded {
    /// Unfolds CRLF or bare LF followed by a space or a tab, on bytes; skips a leading BOM.
    pub(crate) fn new(input: &[u8]) -> Self {
        let input = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
        let mut out = Vec::with_capacity(input.len());
        let mut lines = vec![1];
        let mut physical = 1;
        let mut i = 0;
        let mut line_start = 0;
        while i < input.len() {
            let byte = input[i];
            let eol_len = match byte {
                b'\r' if input.get(i + 1) == Some(&b'\n') => 2,
                b'\n' => 1,
                _ => 0,
            };
            if eol_len == 0 {
                out.push(byte);
                i += 1;
                continue;
            }
            physical += 1;
            let next = i + eol_len;
            if matches!(input.get(next), Some(b' ' | b'\t')) {
                i = next + 1;
                continue;
            }
            quote_single_valued_params(&mut out, line_start);
            out.push(b'\n');
            line_start = out.len();
            if next < input.len() {
                lines.push(physical);
            }
            i = next;
        }
        quote_single_valued_params(&mut out, line_start);
        let text = match String::from_utf8(out) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Unfolded { text, lines }
    }

    /// The physical line of content line `index` (from 0).
    fn physical(&self, index: usize) -> usize {
        self.lines.get(index).copied().unwrap_or(index + 1)
    }
}

/// Parameters that hold one value (RFC 5545 §3.2) but that some clients write with an
/// unquoted comma (`CN=Doe, John`, `TZID=(UTC+01:00) Amsterdam, Berlin`). calcard would read
/// the comma as a list separator and write `Doe,John` back; quoting the value first keeps it.
const SINGLE_VALUED: [&[u8]; 5] = [b"CN", b"TZID", b"LANGUAGE", b"ALTREP", b"DIR"];

/// Quotes the single-valued parameters of the content line `out[start..]` whose unquoted
/// value contains a comma.
fn quote_single_valued_params(out: &mut Vec<u8>, start: usize) {
    let line = &out[start..];
    // Only lines with a comma before the value's ':' can need it.
    let mut quoted = false;
    let mut head_end = None;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted => {
                head_end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(head_end) = head_end else { return };
    if !line[..head_end].contains(&b',') {
        return;
    }
    let mut rebuilt = Vec::with_capacity(line.len() + 8);
    let mut rest = &line[..head_end];
    let mut first = true;
    while !rest.is_empty() {
        // Split at the next ';' outside quotes.
        let mut quoted = false;
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let part = &rest[..end];
        if !first {
            rebuilt.push(b';');
        }
        match part.iter().position(|&b| b == b'=') {
            Some(eq)
                if !first
                    && SINGLE_VALUED
                        .iter()
                        .any(|name| part[..eq].eq_ignore_ascii_case(name))
                    && !part[eq + 1..].starts_with(b"\"")
                    && part[eq + 1..].contains(&b',') =>
            {
                rebuilt.extend_from_slice(&part[..=eq]);
                rebuilt.push(b'"');
                rebuilt.extend(part[eq + 1..].iter().filter(|&&b| b != b'"'));
                rebuilt.push(b'"');
            }
            _ => rebuilt.extend_from_slice(part),
        }
        first = false;
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    rebuilt.extend_from_slice(&line[head_end..]);
    out.truncate(start);
    out.extend_from_slice(&rebuilt);
}

/// Where one top-level VCALENDAR sits in the unfolded text.
struct Span {
    start: usize,
    end: usize,
    line: usize,
}

/// Walks the content lines and returns the byte span of each top-level VCALENDAR.
fn check_structure(unfolded: &Unfolded) -> Result<Vec<Span>, ParseError> {
    let mut spans = Vec::new();
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for (index, raw) in unfolded.text.split_inclusive('\n').enumerate() {
        let line_no = unfolded.physical(index);
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\r', '\n']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_uppercase();
        if name.trim().eq_ignore_ascii_case("BEGIN") {
            if stack.is_empty() {
                if value != "VCALENDAR" {
                    continue;
                }
                start = line_start;
            }
            if stack.len() >= MAX_DEPTH {
                return Err(ParseError::TooDeep { line: line_no });
            }
            stack.push((value, line_no));
        } else if name.trim().eq_ignore_ascii_case("END") && !stack.is_empty() {
            let (open, open_line) = stack.pop().expect("stack is not empty");
            if open != value {
                return Err(ParseError::MismatchedEnd {
                    line: line_no,
                    expected: format!("'END:{open}' (opened at line {open_line})"),
                    found: value,
                });
            }
            if stack.is_empty() {
                spans.push(Span {
                    start,
                    end: offset,
                    line: open_line,
                });
            }
        }
    }
    if let Some((component, line)) = stack.into_iter().next_back() {
        return Err(ParseError::Unterminated { component, line });
    }
    if spans.is_empty() {
        return Err(ParseError::NoCalendar);
    }
    Ok(spans)
}

/// Writes `ical` as RFC 5545 text: CRLF line ends, folded at 75 octets on UTF-8 boundaries.
///
/// calcard's writer is used, with the repairs of [`writer`] for what it would change
/// (see that module).
pub fn write(ical: &ICalendar) -> String {
    writer::write(ical)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\n\
BEGIN:VEVENT\r\nUID:abc-1@example.test\r\nDTSTAMP:20270101T090000Z\r\nDTSTART:20270104T090000Z\r\n\
DTEND:20270104T100000Z\r\nSUMMARY:Weekly sync\r\nORGANIZER;CN=Alice:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:room1@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn parses_a_plain_request() {
        let cals = parse(INVITE).expect("valid invite");
        assert_eq!(cals.len(), 1);
        let view = SchedulingView::new(&cals[0]).expect("scheduling object");
        assert_eq!(view.method, Some(Method::Request));
        assert_eq!(view.uid.as_str(), "abc-1@example.test");
    }

    #[test]
    fn truncated_object_is_an_error() {
        let cut = &INVITE[..INVITE.find("END:VEVENT").expect("fixture has END:VEVENT")];
        assert_eq!(
            parse(cut),
            Err(ParseError::Unterminated {
                component: "VEVENT".into(),
                line: 5
            })
        );
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let with_bom = format!("\u{feff}{INVITE}");
        assert_eq!(parse(&with_bom).expect("BOM tolerated").len(), 1);
    }

    #[test]
    fn text_without_calendar_is_an_error() {
        assert_eq!(parse("hello\r\n"), Err(ParseError::NoCalendar));
    }

    #[test]
    fn several_calendars_in_one_stream_are_all_returned() {
        let two = format!("{INVITE}{}", INVITE.replace("abc-1", "abc-2"));
        assert_eq!(parse(&two).expect("two objects").len(), 2);
    }

    #[test]
    fn write_round_trips_every_property() {
        let cals = parse(INVITE).expect("valid invite");
        let out = write(&cals[0]);
        for line in INVITE.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(out.contains(line), "lost line {line:?} in\n{out}");
        }
    }
}
