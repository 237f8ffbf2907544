//! Calendar data: iCalendar 2.0 read and written with calcard, and the typed values the iTIP
//! engine works with.
//!
//! Every later stage sees calendar data only through this module. The model is calcard's
//! [`ICalendar`] (lossless and order-preserving); [`parse`] adds the guards calcard lacks
//! (a truncated object is accepted by calcard silently), and [`SchedulingView`] reads the
//! properties scheduling needs into types ([`Uid`], [`CalAddress`], [`Method`], [`PartStat`]).

mod types;
pub mod view;

pub use calcard::icalendar::ICalendar;
pub use types::{CalAddress, Method, PartStat, Uid};
pub use view::{Attendee, ComponentKind, Instance, SchedulingView, ViewError};

use calcard::{Entry, Parser};

/// Why a calendar part could not be read. Line numbers count from 1 in the part's text.
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
}

/// The deepest nesting accepted (VCALENDAR > VTIMEZONE > STANDARD is 3; VEVENT > VALARM is 3).
pub const MAX_DEPTH: usize = 8;

/// Parses every VCALENDAR object in `input` (a part may hold several, one after another).
///
/// A byte-order mark is skipped. Lines outside any object are ignored, as real mailers add
/// text around the object. The structure is checked before calcard sees it, because calcard
/// accepts a truncated object silently and acting on half an invitation is worse than not
/// acting: an unterminated or mis-nested object is an error naming the line.
pub fn parse(input: &str) -> Result<Vec<ICalendar>, ParseError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let spans = check_structure(input)?;
    let mut calendars = Vec::with_capacity(spans.len());
    for span in spans {
        let mut parser = Parser::new(&input[span.start..span.end]);
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

/// Where one top-level VCALENDAR sits in the input.
struct Span {
    start: usize,
    end: usize,
    line: usize,
}

/// Walks the content lines (continuation lines start with a space or tab, so they are never
/// BEGIN/END) and returns the byte span of each top-level VCALENDAR.
fn check_structure(input: &str) -> Result<Vec<Span>, ParseError> {
    let mut spans = Vec::new();
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for (index, raw) in input.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\r', '\n']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_uppercase();
        if name.eq_ignore_ascii_case("BEGIN") {
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
        } else if name.eq_ignore_ascii_case("END") && !stack.is_empty() {
            let (open, open_line) = stack.pop().expect("stack is not empty");
            if open != value {
                return Err(ParseError::MismatchedEnd {
                    line: line_no,
                    expected: format!("'END:{open}'"),
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

/// Writes `ical` as RFC 5545 text: CRLF line ends, folded at 75 octets.
pub fn write(ical: &ICalendar) -> String {
    ical.to_string()
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
