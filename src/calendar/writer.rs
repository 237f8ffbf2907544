//! RFC 5545 output: calcard's writer, repaired where it would change data on a round trip.
//!
//! Measured on the objects under `tests/data/ical` (see `tests/calendar_roundtrip.rs`), calcard
//! 0.3.14 writes every property and parameter back in order, but:
//!
//! - it escapes commas in X- and unknown properties and in `TZID:` values. Vendors put raw
//!   payloads there (HTML in `X-ALT-DESC`, JSON in `X-MICROSOFT-LOCATIONS`, `(UTC+01:00)
//!   Amsterdam, Berlin, …` TZIDs), and the readers of those payloads do not unescape them;
//! - it escapes commas and semicolons inside URI values (`geo:47.37,8.53`, `tel:…;ext=1`,
//!   `https://…?a=1;b=2`), which turns them into different URIs.
//!
//! Those entries are written here: the property name and parameters still come from calcard
//! (its quoting of parameters is right), the value is written unescaped, and the line is
//! folded at 75 octets on UTF-8 boundaries. Every other entry is written by calcard.
//!
//! Normalisations calcard makes that do not change meaning are kept (RRULE parts reordered,
//! durations written in their shortest form, `VALUE=` moved to the end of the parameters).

use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarEntry, ICalendarProperty, ICalendarValue, Uri,
};

/// The longest line in octets, without its CRLF (RFC 5545 §3.1).
const MAX_LINE: usize = 75;

/// Writes `ical` with CRLF line ends, folded at 75 octets on UTF-8 boundaries.
pub(crate) fn write(ical: &ICalendar) -> String {
    let mut out = String::with_capacity(4096);
    let Some(root) = ical.components.first() else {
        return out;
    };
    // Iterative walk: component 0 is the VCALENDAR; children are listed by index.
    let mut stack: Vec<(&ICalendarComponent, usize)> = vec![(root, 0)];
    begin(&mut out, root);
    while let Some((component, next_child)) = stack.pop() {
        if let Some(&child_id) = component.component_ids.get(next_child) {
            stack.push((component, next_child + 1));
            if let Some(child) = ical.components.get(child_id as usize) {
                // A component listing itself (or an ancestor) would loop for ever; calcard's
                // parser never builds that, but the model is public.
                if stack.len() <= super::MAX_DEPTH * 4 {
                    begin(&mut out, child);
                    stack.push((child, 0));
                }
            }
        } else {
            out.push_str("END:");
            out.push_str(component.component_type.as_str());
            out.push_str("\r\n");
        }
    }
    out
}

fn begin(out: &mut String, component: &ICalendarComponent) {
    out.push_str("BEGIN:");
    out.push_str(component.component_type.as_str());
    out.push_str("\r\n");
    for entry in &component.entries {
        write_entry(out, entry);
    }
}

fn write_entry(out: &mut String, entry: &ICalendarEntry) {
    if !needs_repair(entry) {
        entry
            .write_to(out)
            .expect("writing to a String cannot fail");
        return;
    }
    let mut line = head(entry);
    let raw_text = matches!(
        entry.name,
        ICalendarProperty::Other(_) | ICalendarProperty::Tzid
    );
    for (pos, value) in entry.values.iter().enumerate() {
        if pos > 0 {
            line.push(',');
        }
        match value {
            ICalendarValue::Text(text) if raw_text => push_text(&mut line, text),
            ICalendarValue::Uri(Uri::Location(uri)) => line.push_str(uri),
            ICalendarValue::Uri(Uri::Data(data)) => {
                line.push_str("data:");
                line.push_str(data.content_type.as_deref().unwrap_or_default());
                line.push_str(";base64,");
                base64_into(&mut line, &data.data);
            }
            other => {
                // Not reached: needs_repair only selects entries whose values are all of the
                // kinds above. Writing through calcard keeps the value if that ever changes.
                let mut single = entry.clone();
                single.values = vec![other.clone()];
                let mut text = String::new();
                single
                    .write_to(&mut text)
                    .expect("writing to a String cannot fail");
                let unfolded = text.replace("\r\n ", "");
                if let Some((_, value)) = split_value(unfolded.trim_end_matches("\r\n")) {
                    line.push_str(value);
                }
            }
        }
    }
    fold_into(out, &line);
}

/// Whether calcard's writer would change this entry's value.
fn needs_repair(entry: &ICalendarEntry) -> bool {
    let raw_text = matches!(
        entry.name,
        ICalendarProperty::Other(_) | ICalendarProperty::Tzid
    );
    let mut repair = false;
    for value in &entry.values {
        match value {
            ICalendarValue::Text(text) if raw_text => repair |= text.contains(','),
            ICalendarValue::Uri(Uri::Location(uri)) => repair |= uri.contains([',', ';']),
            ICalendarValue::Uri(Uri::Data(_)) => repair = true,
            ICalendarValue::Text(_) => {}
            _ => return false,
        }
    }
    repair
}

/// `NAME;PARAM=…:` as calcard writes it (unfolded).
fn head(entry: &ICalendarEntry) -> String {
    let bare = ICalendarEntry {
        name: entry.name.clone(),
        params: entry.params.clone(),
        values: Vec::new(),
    };
    let mut text = String::new();
    bare.write_to(&mut text)
        .expect("writing to a String cannot fail");
    let mut unfolded = text.replace("\r\n ", "");
    while unfolded.ends_with(['\r', '\n']) {
        unfolded.pop();
    }
    unfolded
}

/// Splits an unfolded content line after the first `:` outside double quotes.
fn split_value(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

/// TEXT escaping that keeps commas and semicolons as they are (only `\` and line breaks
/// must be escaped for the line to survive).
fn push_text(line: &mut String, text: &str) {
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => line.push_str("\\\\"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' => line.push_str("\\n"),
            _ => line.push(ch),
        }
    }
}

/// Appends `line` folded at 75 octets (never inside a UTF-8 sequence), then CRLF.
pub(crate) fn fold_into(out: &mut String, line: &str) {
    let mut rest = line;
    let mut limit = MAX_LINE;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut split = limit;
        while !rest.is_char_boundary(split) {
            split -= 1;
        }
        out.push_str(&rest[..split]);
        out.push_str("\r\n ");
        rest = &rest[split..];
        // The continuation line starts with a space, which counts towards its 75 octets.
        limit = MAX_LINE - 1;
    }
}

pub(crate) fn base64_into(out: &mut String, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = ((n >> (18 - 6 * i)) & 0x3f) as usize;
                out.push(char::from(ALPHABET[index]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_never_splits_a_utf8_sequence_and_respects_75_octets() {
        let line = format!("SUMMARY:{}", "ü日".repeat(40));
        let mut out = String::new();
        fold_into(&mut out, &line);
        for physical in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(
                physical.len() <= 75,
                "{} octets: {physical}",
                physical.len()
            );
        }
        assert_eq!(out.replace("\r\n ", "").trim_end(), line);
    }

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = String::new();
            base64_into(&mut out, input.as_bytes());
            assert_eq!(out, expected);
        }
    }
}
