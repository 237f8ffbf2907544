//! The hard limits on what one message may make imipd do (the `[limits]` section).
//!
//! Everything a stranger can send is bounded before it costs memory or time: the message's
//! size, its MIME shape, the calendar parts and the objects in them, the properties, lines,
//! attendees and RDATEs of each component, the instances a recurrence expands to and how far
//! ahead it starts, and how many replies one correspondent may draw per hour. A message that
//! exceeds a limit is not silently dropped: the pipeline records it as `rejected` with a
//! reason naming the limit, its value and the setting that raises it, stores nothing and
//! answers nothing (an answer to a flood is itself a flood).
//!
//! The calendar checks ([`check_calendar_text`]) read the raw text, not the parsed model, so
//! that a bomb is refused before the iCalendar parser builds it.

use crate::calendar::{ICalendar, recur};
use chrono::{DateTime, Duration, Utc};
use mail_parser::{MessageParser, PartType};
use serde::Deserialize;
use std::fmt;

/// `[limits]`: one value per resource a message can consume; every field has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest message processed, in bytes (default 25 MiB, a common MTA maximum).
    pub max_message_bytes: usize,
    /// The most MIME parts of one message, nested messages included (default 200).
    pub max_mime_parts: usize,
    /// The deepest nesting of multiparts and attached messages (default 16).
    pub max_mime_depth: usize,
    /// The most calendar parts of one message processed (default 16).
    pub max_calendar_parts: usize,
    /// The largest calendar part, in bytes (default 1 MiB; RFC 5546 REQUEST-STATUS 3.10).
    pub max_calendar_bytes: usize,
    /// The most scheduling objects (VEVENT, VTODO, VJOURNAL, VFREEBUSY components, one per
    /// instance or override) in one message (default 500).
    pub max_calendar_objects: usize,
    /// The most properties of one component (default 500).
    pub max_properties: usize,
    /// The longest content line after unfolding, in bytes (default 256 KiB: Outlook's HTML
    /// X-ALT-DESC fits, a megabyte-long line does not).
    pub max_line_bytes: usize,
    /// The most ATTENDEE properties of one component (default 500).
    pub max_attendees: usize,
    /// The most RDATE and EXDATE values of one component (default 1000).
    pub max_rdates: usize,
    /// The most instances one object may have within the horizon (default 5000: a daily
    /// meeting for thirteen years; an hourly one for a year is refused).
    pub max_instances: usize,
    /// The most recurrence-rule steps spent expanding one object (default 200 000): stops a
    /// FREQ=SECONDLY or BYSECOND rule that produces nothing but iterates forever.
    pub max_recurrence_iterations: usize,
    /// How far ahead, in days, an object may start and is expanded (default 3660, ten years):
    /// an object whose first instance lies beyond is refused.
    pub horizon_days: u32,
    /// The most replies this mailbox sends to one address in any hour (default 1000); 0 turns
    /// the rate limit off. Messages beyond are refused without an answer (invite floods).
    pub max_replies_per_address_per_hour: u32,
    /// How often, per hour, an unchanged REQUEST of the same UID and SEQUENCE (a status poll)
    /// is answered again (default 2). Beyond that the REQUEST→REPLY→REQUEST ping-pong with a
    /// server that keeps asking is stopped: the poll is recorded, not answered.
    pub status_poll_answers_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 25 * 1024 * 1024,
            max_mime_parts: 200,
            max_mime_depth: 16,
            max_calendar_parts: 16,
            max_calendar_bytes: 1024 * 1024,
            max_calendar_objects: 500,
            max_properties: 500,
            max_line_bytes: 256 * 1024,
            max_attendees: 500,
            max_rdates: 1000,
            max_instances: 5000,
            max_recurrence_iterations: 200_000,
            horizon_days: 3660,
            max_replies_per_address_per_hour: 1000,
            status_poll_answers_per_hour: 2,
        }
    }
}

/// A limit a message exceeded: the ledger reason's code and explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// A stable code (`message_too_large`, `too_many_attendees`, …).
    pub code: &'static str,
    /// What was found, the limit, and the `[limits]` key that raises it.
    pub text: String,
}

impl LimitHit {
    fn new(code: &'static str, found: impl fmt::Display, limit: usize, key: &str) -> Self {
        LimitHit {
            code,
            text: format!("{found}, more than the limit of {limit} ([limits] {key})"),
        }
    }
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

impl Limits {
    /// Checks the message's size and MIME shape, before anything else reads it.
    pub fn check_message(&self, raw: &[u8]) -> Result<(), LimitHit> {
        if raw.len() > self.max_message_bytes {
            return Err(LimitHit::new(
                "message_too_large",
                format_args!("the message has {} bytes", raw.len()),
                self.max_message_bytes,
                "max_message_bytes",
            ));
        }
        let Some(message) = MessageParser::default().parse(raw) else {
            // Not a message at all: extraction says so with its own reason.
            return Ok(());
        };
        let mut shape = Shape::default();
        shape.walk(&message, 0, self);
        if shape.parts > self.max_mime_parts {
            return Err(LimitHit::new(
                "too_many_mime_parts",
                format_args!("the message has {} MIME parts", shape.parts),
                self.max_mime_parts,
                "max_mime_parts",
            ));
        }
        if shape.depth > self.max_mime_depth {
            return Err(LimitHit::new(
                "mime_too_deep",
                format_args!("the message nests MIME parts {} levels deep", shape.depth),
                self.max_mime_depth,
                "max_mime_depth",
            ));
        }
        Ok(())
    }

    /// Checks one calendar part's text: its size, content lines, objects, and per component
    /// the properties, attendees and RDATE/EXDATE values. `objects_before` counts the
    /// scheduling objects of the message's earlier parts; the total is returned.
    pub fn check_calendar_text(
        &self,
        text: &str,
        objects_before: usize,
    ) -> Result<usize, LimitHit> {
        if text.len() > self.max_calendar_bytes {
            return Err(LimitHit::new(
                "calendar_too_large",
                format_args!(
                    "the calendar part has {} bytes (REQUEST-STATUS 3.10)",
                    text.len()
                ),
                self.max_calendar_bytes,
                "max_calendar_bytes",
            ));
        }
        let mut objects = objects_before;
        // One counter set per open component; the innermost one is counted.
        let mut stack: Vec<Counts> = Vec::new();
        for line in unfolded(text) {
            if line.len() > self.max_line_bytes {
                return Err(LimitHit::new(
                    "line_too_long",
                    format_args!("a content line has {} bytes after unfolding", line.len()),
                    self.max_line_bytes,
                    "max_line_bytes",
                ));
            }
            let (name, value) = name_and_value(&line);
            if name.eq_ignore_ascii_case("BEGIN") {
                let component = value.trim();
                if ["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"]
                    .iter()
                    .any(|c| component.eq_ignore_ascii_case(c))
                {
                    objects += 1;
                    if objects > self.max_calendar_objects {
                        return Err(LimitHit::new(
                            "too_many_objects",
                            format_args!(
                                "the message holds more than {} scheduling objects",
                                self.max_calendar_objects
                            ),
                            self.max_calendar_objects,
                            "max_calendar_objects",
                        ));
                    }
                }
                stack.push(Counts::default());
                continue;
            }
            if name.eq_ignore_ascii_case("END") {
                stack.pop();
                continue;
            }
            let Some(counts) = stack.last_mut() else {
                continue;
            };
            counts.properties += 1;
            if counts.properties > self.max_properties {
                return Err(LimitHit::new(
                    "too_many_properties",
                    format_args!(
                        "a component has more than {} properties",
                        self.max_properties
                    ),
                    self.max_properties,
                    "max_properties",
                ));
            }
            if name.eq_ignore_ascii_case("ATTENDEE") {
                counts.attendees += 1;
                if counts.attendees > self.max_attendees {
                    return Err(LimitHit::new(
                        "too_many_attendees",
                        format_args!("a component has more than {} attendees", self.max_attendees),
                        self.max_attendees,
                        "max_attendees",
                    ));
                }
            } else if name.eq_ignore_ascii_case("RDATE") || name.eq_ignore_ascii_case("EXDATE") {
                counts.dates += value.split(',').count();
                if counts.dates > self.max_rdates {
                    return Err(LimitHit::new(
                        "too_many_rdates",
                        format_args!(
                            "a component has {} or more RDATE/EXDATE values",
                            counts.dates
                        ),
                        self.max_rdates,
                        "max_rdates",
                    ));
                }
            }
        }
        Ok(objects)
    }

    /// Checks the recurrence of a parsed object: it must start within the horizon, and its
    /// instances from `now` (minus a day, for time zones) to the horizon must be at most
    /// `max_instances`, reached in at most `max_recurrence_iterations` rule steps. Objects
    /// whose recurrence cannot be read at all are left to the engine, which explains them.
    pub fn check_recurrence(&self, ical: &ICalendar, now: DateTime<Utc>) -> Result<(), LimitHit> {
        let horizon = Duration::days(i64::from(self.horizon_days));
        let start = now - Duration::days(1);
        let end = now + horizon;
        let limits = recur::Limits {
            max_instances: self.max_instances,
            max_window: horizon + Duration::days(2),
            max_iterations: self.max_recurrence_iterations,
        };
        match recur::expand(ical, start, end, &limits) {
            Err(recur::RecurError::TooManyInstances { uid, .. }) => Err(LimitHit::new(
                "too_many_instances",
                format_args!(
                    "event '{uid}' has more than {} instances within {} days",
                    self.max_instances, self.horizon_days
                ),
                self.max_instances,
                "max_instances",
            )),
            Err(recur::RecurError::TooManyIterations { uid, rule, .. }) => Err(LimitHit::new(
                "recurrence_bomb",
                format_args!(
                    "event '{uid}': the rule '{rule}' needs more than {} steps to expand",
                    self.max_recurrence_iterations
                ),
                self.max_recurrence_iterations,
                "max_recurrence_iterations",
            )),
            Err(_) => Ok(()),
            Ok(occurrences) => {
                if occurrences.is_empty()
                    && let Some(first) = first_start(ical, end)
                    && first >= end
                {
                    return Err(LimitHit {
                        code: "beyond_horizon",
                        text: format!(
                            "the object starts on {}, more than {} days ahead ([limits] horizon_days)",
                            first.format("%Y-%m-%d"),
                            self.horizon_days
                        ),
                    });
                }
                Ok(())
            }
        }
    }
}

/// The first instance at or after `from`, by expanding one window past it: `None` when the
/// object has none there (ended, or unreadable).
fn first_start(ical: &ICalendar, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Anything that starts after the horizon: probe the next thousand years in one window
    // with a small budget; an object that needs more steps is a bomb and the probe fails.
    let limits = recur::Limits {
        max_instances: 1,
        max_window: Duration::days(366_000),
        max_iterations: 10_000,
    };
    match recur::expand(ical, from, from + Duration::days(365_000), &limits) {
        Ok(occurrences) => occurrences.first().map(|o| o.start_utc),
        // More than one instance beyond the horizon: it certainly starts there.
        Err(recur::RecurError::TooManyInstances { .. }) => Some(from),
        Err(_) => None,
    }
}

/// The counters of one open component.
#[derive(Default)]
struct Counts {
    properties: usize,
    attendees: usize,
    dates: usize,
}

/// The MIME shape of a message: its parts and nesting.
#[derive(Default)]
struct Shape {
    parts: usize,
    depth: usize,
}

impl Shape {
    fn walk(&mut self, message: &mail_parser::Message<'_>, depth: usize, limits: &Limits) {
        // Stop counting once a limit is certainly exceeded: a bomb is not walked to its end.
        if self.parts > limits.max_mime_parts || self.depth > limits.max_mime_depth {
            return;
        }
        self.depth = self.depth.max(depth);
        // Each part's depth: its multipart ancestors within this message.
        let mut part_depth = vec![0usize; message.parts.len()];
        for (index, part) in message.parts.iter().enumerate() {
            self.parts += 1;
            let here = depth + part_depth.get(index).copied().unwrap_or(0);
            self.depth = self.depth.max(here);
            match &part.body {
                PartType::Multipart(children) => {
                    let below = part_depth.get(index).copied().unwrap_or(0) + 1;
                    for &child in children {
                        if let Some(slot) = part_depth.get_mut(child as usize) {
                            *slot = below;
                        }
                    }
                }
                PartType::Message(nested) => self.walk(nested, here + 1, limits),
                _ => {}
            }
            if self.parts > limits.max_mime_parts || self.depth > limits.max_mime_depth {
                return;
            }
        }
    }
}

/// The content lines of `text`, unfolded (RFC 5545 §3.1), CR and LF line ends alike.
fn unfolded(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = text.split('\n').peekable();
    std::iter::from_fn(move || {
        let first = lines.next()?;
        let mut line = first.trim_end_matches('\r').to_string();
        while let Some(next) = lines.peek() {
            if !next.starts_with([' ', '\t']) {
                break;
            }
            let next = lines.next().unwrap_or_default();
            line.push_str(next.trim_end_matches('\r').get(1..).unwrap_or_default());
        }
        Some(line)
    })
}

/// The property name and the value of a content line (parameters skipped, quotes honoured).
fn name_and_value(line: &str) -> (&str, &str) {
    let mut in_quotes = false;
    let mut name_end = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if name_end.is_none() && !in_quotes => name_end = Some(i),
            ':' if !in_quotes => return (line[..name_end.unwrap_or(i)].trim(), &line[i + 1..]),
            _ => {}
        }
    }
    (line.trim(), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_are_measured_after_unfolding() {
        let limits = Limits {
            max_line_bytes: 20,
            ..Limits::default()
        };
        let text = "BEGIN:VCALENDAR\r\nSUMMARY:0123456789\r\n 0123456789\r\nEND:VCALENDAR\r\n";
        let hit = limits
            .check_calendar_text(text, 0)
            .expect_err("the line is 28 bytes");
        assert_eq!(hit.code, "line_too_long");
        assert!(hit.text.contains("max_line_bytes"), "{hit}");
    }

    #[test]
    fn rdate_values_are_counted_across_properties() {
        let limits = Limits {
            max_rdates: 3,
            ..Limits::default()
        };
        let text = "BEGIN:VEVENT\nRDATE:20270101T000000Z,20270102T000000Z\nEXDATE:20270103T000000Z,20270104T000000Z\nEND:VEVENT\n";
        assert_eq!(
            limits.check_calendar_text(text, 0).map_err(|h| h.code),
            Err("too_many_rdates")
        );
    }

    #[test]
    fn objects_are_counted_across_parts() {
        let limits = Limits {
            max_calendar_objects: 2,
            ..Limits::default()
        };
        let one = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n";
        let after_first = limits.check_calendar_text(one, 0).expect("one object");
        let after_second = limits
            .check_calendar_text(one, after_first)
            .expect("two objects");
        assert_eq!(
            limits
                .check_calendar_text(one, after_second)
                .map_err(|h| h.code),
            Err("too_many_objects")
        );
    }

    #[test]
    fn quoted_colons_do_not_end_the_property_name() {
        assert_eq!(
            name_and_value("ATTENDEE;CN=\"a:b\":mailto:x@y.test"),
            ("ATTENDEE", "mailto:x@y.test")
        );
    }
}
