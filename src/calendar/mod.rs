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
#[cfg(test)]
mod reference_tests;
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
use std::borrow::Cow;

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

/// The input after unfolding: the text, and the content lines that may open or close a
/// component.
pub(crate) struct Unfolded<'a> {
    /// The input itself when nothing had to change (no fold, no parameter to quote, valid
    /// UTF-8: most objects), else the edited copy. Content lines keep their own line end
    /// (CRLF or LF); calcard skips a CR before the LF.
    pub(crate) text: Cow<'a, str>,
    /// Every content line that can be a `BEGIN:` or `END:` line, in order. A cheap test of
    /// its first byte picks them while unfolding, so the structure check reads these few
    /// lines instead of splitting the whole text again; it decides on the text exactly.
    marks: Vec<LineMark>,
}

/// Where a content line sits in [`Unfolded::text`], and the physical line it started on.
#[derive(Debug, Clone, Copy)]
struct LineMark {
    /// Offset of its first byte.
    start: usize,
    /// Offset just past its `\n` (or the end of the text, for a last line without one).
    end: usize,
    /// Physical line (from 1) in the input, before unfolding.
    line: usize,
}

impl<'a> Unfolded<'a> {
    /// Unfolds CRLF or bare LF followed by a space or a tab, on bytes; skips a leading BOM.
    ///
    /// One pass over the line ends ([`find_lf`]). Nothing is copied until something has to
    /// change: a fold is removed, or a content line gets its single-valued parameters
    /// quoted. From then on the text is built in a copy, in whole runs of the input. UTF-8
    /// is validated once, at the end; only text holding invalid sequences pays for a
    /// second, replacing pass.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        let input = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
        // Once `edited`, the text is `out` followed by `input[copied..]`.
        let mut edited = false;
        let mut out: Vec<u8> = Vec::new();
        let mut copied = 0;
        // BEGIN and END lines, and the few others starting with B or E: a dozen in a
        // typical invitation.
        let mut marks = Vec::with_capacity(16);
        // The physical line of the next line end, and the one where the content line
        // being read started.
        let mut physical = 1;
        let mut line = 1;
        // Where the content line being read starts, in the input and in the text, and
        // whether it continues across a fold (its text is then partly in `out`).
        let mut line_start = 0;
        let mut line_start_text = 0;
        let mut folded = false;
        // Whether the head (name and parameters) of the content line being read is known
        // to hold no comma, from the first scan of its first physical line.
        let mut head_clean = false;
        let mut pos = 0;
        loop {
            let mut from = pos;
            if pos == line_start && !folded {
                // One scan finds whichever comes first: the ':' that ends a head without a
                // comma, a comma or quote (the head needs a closer look), or the line end.
                let first = find_in_words(input, pos, |word| {
                    eq_bytes(word, b'\n')
                        | eq_bytes(word, b':')
                        | eq_bytes(word, b',')
                        | eq_bytes(word, b'"')
                });
                head_clean = first.is_none_or(|i| matches!(input[i], b':' | b'\n'));
                from = first.unwrap_or(input.len());
            }
            let found = find_lf(input, from);
            let line_end = found.unwrap_or(input.len());
            if let Some(lf) = found {
                physical += 1;
                if matches!(input.get(lf + 1), Some(b' ' | b'\t')) {
                    // A CR directly before the LF belongs to the fold; any other CR is text.
                    let cut = if lf > pos && input[lf - 1] == b'\r' {
                        lf - 1
                    } else {
                        lf
                    };
                    if !edited {
                        edited = true;
                        out.reserve(input.len());
                    }
                    out.extend_from_slice(&input[copied..cut]);
                    copied = lf + 2;
                    pos = lf + 2;
                    folded = true;
                    continue;
                }
            }
            // The content line ends at `line_end`.
            let may_mark = if folded {
                // Read and edit it in one piece. Lines with folds are few: they are always
                // handed to the structure check.
                out.extend_from_slice(&input[copied..line_end]);
                copied = line_end;
                quote_single_valued_params(&mut out, line_start_text);
                true
            } else {
                let text = &input[line_start..line_end];
                if !head_clean && head_with_comma(text).is_some() {
                    if !edited {
                        edited = true;
                        out.reserve(input.len() + 16);
                    }
                    out.extend_from_slice(&input[copied..line_end]);
                    copied = line_end;
                    quote_single_valued_params(&mut out, line_start_text);
                }
                text.first().is_some_and(|&b| may_open_or_close(b))
            };
            let next = found.map_or(input.len(), |lf| lf + 1);
            // Offsets in the text: `out` so far, then what is left of the input.
            let line_end_text = if edited {
                out.len() + (next - copied)
            } else {
                next
            };
            if may_mark && line_end_text > line_start_text {
                marks.push(LineMark {
                    start: line_start_text,
                    end: line_end_text,
                    line,
                });
            }
            if found.is_none() {
                break;
            }
            line = physical;
            line_start = next;
            line_start_text = line_end_text;
            folded = false;
            pos = next;
        }
        let text = if edited {
            out.extend_from_slice(&input[copied..]);
            match String::from_utf8(out) {
                Ok(text) => Cow::Owned(text),
                Err(e) => Cow::Owned(replace_invalid_utf8(&e.into_bytes(), &mut marks)),
            }
        } else {
            match std::str::from_utf8(input) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => Cow::Owned(replace_invalid_utf8(input, &mut marks)),
            }
        };
        Unfolded { text, marks }
    }
}

/// The index of the first LF in `hay` at or after `from`.
fn find_lf(hay: &[u8], from: usize) -> Option<usize> {
    find_in_words(hay, from, |word| eq_bytes(word, b'\n'))
}

/// The index of the first byte at or after `from` that `mask` marks in its word.
///
/// Content lines are short (30 bytes on average in real invitations), too short for a
/// vectorised search to pay for its set-up on every call; eight bytes are tested at a time
/// in a plain `u64` instead. `mask` gets the bytes as a little-endian word and returns the
/// high bit set in each byte it matches; the last word is padded with NUL, which no
/// caller looks for.
fn find_in_words(hay: &[u8], from: usize, mask: impl Fn(u64) -> u64) -> Option<usize> {
    let rest = hay.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut base = from;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let found = mask(u64::from_le_bytes(word));
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let tail = chunks.remainder();
    let mut word = [0; 8];
    word[..tail.len()].copy_from_slice(tail);
    let found = mask(u64::from_le_bytes(word));
    let at = (found.trailing_zeros() / 8) as usize;
    (found != 0 && at < tail.len()).then_some(base + at)
}

/// The bytes of `word` equal to `byte`: the high bit set in exactly those.
fn eq_bytes(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (ONES * u64::from(byte));
    // A byte of `x` is zero exactly when neither its high bit nor (its low seven bits plus
    // 0x7f, which cannot carry into the next byte) sets bit 7.
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Whether a content line starting with `first` can be a `BEGIN` or `END` line: `B`, `E`
/// (any case), whitespace (the structure check trims the name), or not ASCII (Unicode
/// whitespace, or a sequence that becomes U+FFFD). Any other line cannot name BEGIN or
/// END and is never looked at again.
fn may_open_or_close(first: u8) -> bool {
    matches!(
        first,
        b'B' | b'b' | b'E' | b'e' | b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | 0x80..
    )
}

/// The text of `bytes` with invalid UTF-8 replaced by U+FFFD, and `marks` moved to the
/// offsets of the replaced text. Content lines are converted one by one: a line end is
/// ASCII and never part of a sequence, so this is the same text as converting the whole.
#[cold]
fn replace_invalid_utf8(bytes: &[u8], marks: &mut [LineMark]) -> String {
    let mut text = String::with_capacity(bytes.len() + 16);
    let mut marks = marks.iter_mut().peekable();
    let mut offset = 0;
    for chunk in bytes.split_inclusive(|&b| b == b'\n') {
        let start = text.len();
        text.push_str(&String::from_utf8_lossy(chunk));
        if let Some(mark) = marks.next_if(|mark| mark.start == offset) {
            mark.start = start;
            mark.end = text.len();
        }
        offset += chunk.len();
    }
    text
}

/// Parameters that hold one value (RFC 5545 §3.2) but that some clients write with an
/// unquoted comma (`CN=Doe, John`, `TZID=(UTC+01:00) Amsterdam, Berlin`). calcard would read
/// the comma as a list separator and write `Doe,John` back; quoting the value first keeps it.
const SINGLE_VALUED: [&[u8]; 5] = [b"CN", b"TZID", b"LANGUAGE", b"ALTREP", b"DIR"];

/// The length of a content line's name and parameters (up to its first ':' outside
/// quotes), if they hold a comma: only then can a parameter need quoting.
fn head_with_comma(line: &[u8]) -> Option<usize> {
    // Most lines: the first ':', ',' or '"' is the ':' that ends a head without a comma.
    let special = find_in_words(line, 0, |word| {
        eq_bytes(word, b':') | eq_bytes(word, b',') | eq_bytes(word, b'"')
    })?;
    if line[special] == b':' {
        return None;
    }
    let mut quoted = false;
    let mut comma = false;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' => comma = true,
            b':' if !quoted => return comma.then_some(i),
            _ => {}
        }
    }
    None
}

/// Quotes the single-valued parameters of the content line `out[start..]` whose unquoted
/// value contains a comma.
fn quote_single_valued_params(out: &mut Vec<u8>, start: usize) {
    let line = &out[start..];
    let Some(head_end) = head_with_comma(line) else {
        return;
    };
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

/// Walks the content lines that may open or close a component and returns the byte span
/// of each top-level VCALENDAR.
///
/// Names and component types compare ignoring ASCII case; the open components are kept as
/// slices of the text, on a stack no deeper than [`MAX_DEPTH`] (no allocation per line).
fn check_structure(unfolded: &Unfolded<'_>) -> Result<Vec<Span>, ParseError> {
    let mut spans = Vec::new();
    let mut stack: [(&str, usize); MAX_DEPTH] = [("", 0); MAX_DEPTH];
    let mut depth = 0;
    let mut start = 0;
    for mark in &unfolded.marks {
        let line = trim_line_end(&unfolded.text[mark.start..mark.end]);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = trim(name);
        let begin = name.eq_ignore_ascii_case("BEGIN");
        if !begin && !name.eq_ignore_ascii_case("END") {
            continue;
        }
        let value = trim(value);
        if begin {
            if depth == 0 {
                if !value.eq_ignore_ascii_case("VCALENDAR") {
                    continue;
                }
                start = mark.start;
            }
            if depth >= MAX_DEPTH {
                return Err(ParseError::TooDeep { line: mark.line });
            }
            stack[depth] = (value, mark.line);
            depth += 1;
        } else if depth > 0 {
            depth -= 1;
            let (open, open_line) = stack[depth];
            if !open.eq_ignore_ascii_case(value) {
                return Err(ParseError::MismatchedEnd {
                    line: mark.line,
                    expected: format!(
                        "'END:{}' (opened at line {open_line})",
                        open.to_ascii_uppercase()
                    ),
                    found: value.to_ascii_uppercase(),
                });
            }
            if depth == 0 {
                spans.push(Span {
                    start,
                    end: mark.end,
                    line: open_line,
                });
            }
        }
    }
    if depth > 0 {
        let (component, line) = stack[depth - 1];
        return Err(ParseError::Unterminated {
            component: component.to_ascii_uppercase(),
            line,
        });
    }
    if spans.is_empty() {
        return Err(ParseError::NoCalendar);
    }
    Ok(spans)
}

/// `line` without the CRs and LFs at its end.
fn trim_line_end(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    // Only ASCII was cut: `end` is on a character boundary.
    line.get(..end).unwrap_or(line)
}

/// [`str::trim`], without its character-by-character walk when both ends are visibly
/// not whitespace (printable ASCII), which is what BEGIN and END lines look like.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        _ => s.trim(),
    }
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
