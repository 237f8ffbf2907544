//! The calendar reader against the implementation it replaced (unfolding into a copy byte
//! by byte, then splitting the whole text again for the structure check): both must give
//! the same calendars and the same errors, line numbers included, for any input. The
//! reference below is that earlier code, kept only to test against.

use super::{ICalendar, MAX_DEPTH, MAX_INPUT, ParseError, parse_bytes};
use calcard::{Entry, Parser};
use proptest::prelude::*;

mod reference {
    use super::*;

    pub(super) fn parse_bytes(input: &[u8]) -> Result<Vec<ICalendar>, ParseError> {
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

    /// The input after unfolding: the text, and for each of its lines the physical line (from 1)
    /// where that content line started.
    struct Unfolded {
        text: String,
        lines: Vec<usize>,
    }

    impl Unfolded {
        /// Unfolds CRLF or bare LF followed by a space or a tab, on bytes; skips a leading BOM.
        fn new(input: &[u8]) -> Self {
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
}

/// Pieces real and hostile objects are made of: component lines in any case and spacing,
/// folds (CRLF, LF, space, tab), stray CRs, parameters with commas and quotes, split and
/// invalid UTF-8, Unicode whitespace.
const PIECES: &[&[u8]] = &[
    b"BEGIN:VCALENDAR",
    b"END:VCALENDAR",
    b"BEGIN:VEVENT",
    b"END:VEVENT",
    b"begin:vevent",
    b" BEGIN : VALARM ",
    b" BEGIN:VCALENDAR",
    b"\tEND:VCALENDAR",
    b"END:VALARM",
    b"END:VTODO",
    b"VERSION:2.0",
    b"UID:a@b",
    b"SUMMARY:x\\, y",
    b"ATTENDEE;CN=Doe, John;ROLE=CHAIR:mailto:j@x.test",
    b"DTSTART;TZID=(UTC+01:00) Amsterdam, Berlin:20270101T090000",
    b"X-A;CN=\"q:u\",z;DIR=a,b:v",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"\r\n ",
    b"\n\t",
    b":",
    b";",
    b",",
    b"\"",
    b"=",
    b"\xc3",
    b"\xa9",
    b"\xff",
    "\u{e9}".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{3000}".as_bytes(),
    "\u{feff}".as_bytes(),
    b"\x0b",
    b"E",
    b"B",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(proptest::sample::select(PIECES), 0..48),
    )
        .prop_map(|(wrapped, pieces)| {
            let mut out = Vec::new();
            if wrapped {
                out.extend_from_slice(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n");
            }
            for piece in pieces {
                out.extend_from_slice(piece);
            }
            if wrapped {
                out.extend_from_slice(b"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn reads_as_the_reference_does(bytes in input()) {
        prop_assert_eq!(parse_bytes(&bytes), reference::parse_bytes(&bytes));
    }
}

/// Inputs the generator may take long to hit, each compared with the reference.
#[test]
fn edge_cases_read_as_the_reference_does() {
    let cases: &[&[u8]] = &[
        b"",
        b"\xef\xbb\xbf",
        b"\r\n ",
        b" BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        b"\tBEGIN:VCALENDAR\r\nEND:VEVENT\r\n",
        b"BEGIN:VCALENDAR\r\n\r\n BEGIN:VEVENT\r\nEND:VEVENT\r\nEND:VCALENDAR",
        b"BEGIN:VCALENDAR\r\nSUMMARY:caf\xc3\r\n \xa9\r\nEND:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\nSUMMARY:caf\xc3\r\n\xa9\r\nEND:VEVENT\r\n",
        b"BEGIN:VCALENDAR\r\nSUMMARY:\xff\xfe\r\nBEGIN:VEVENT\r\nEND:VEVENT\xff\r\n",
        b"BEGIN:VCALENDAR\r\nX:\xff\r\nBEGIN:V\xffEVENT\r\nEND:V\xfeEVENT\r\nEND:VCALENDAR\r\n",
        b"BEG\r\n IN:VCALENDAR\r\nEND:VCAL\r\n\tENDAR\r\n",
        b"BEGIN:VCALENDAR\r\r\nATTENDEE;CN=Doe,\r\n  John:mailto:j@x.test\r\r\nEND:VCALENDAR\r",
        b"BEGIN:VCALENDAR\nATTENDEE;CN=Doe, John:mailto:j@x.test\n\xc2\xa0END:VCALENDAR\n",
        b"BEGIN:VCALENDAR\r\n\x0bEND\x0b:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR",
        b"junk\r\nBEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
    ];
    for bytes in cases {
        assert_eq!(
            parse_bytes(bytes),
            reference::parse_bytes(bytes),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let deep = format!("BEGIN:VCALENDAR\r\n{}", "BEGIN:X\r\n".repeat(MAX_DEPTH + 1));
    assert_eq!(
        parse_bytes(deep.as_bytes()),
        reference::parse_bytes(deep.as_bytes())
    );
}

/// Every object of the client corpus reads the same as with the reference.
#[test]
fn client_corpus_reads_as_the_reference_does() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical");
    let mut seen = 0;
    for sub in ["", "invalid", "defects", "recur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "ics") {
                let bytes = std::fs::read(&path).expect("readable");
                let ours: Result<Vec<ICalendar>, ParseError> = parse_bytes(&bytes);
                assert_eq!(ours, reference::parse_bytes(&bytes), "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen > 45, "only {seen} corpus files");
}
