//! Privacy of the stored copy: what a resource keeps of a booking (Exchange's
//! DeleteSubject, AddOrganizerToSubject, DeleteComments, DeleteAttachments,
//! RemovePrivateProperty, and the alarms Stalwart strips).
//!
//! [`scrub`] is the one place that decides what a viewer of the resource's calendar may see:
//! the pipeline stores its result, and anything that shows or publishes the calendar (the
//! HTTP pages, `show`) applies the same function with the mailbox's [`Privacy`].
//!
//! What scrubbing never touches, so that iTIP keeps working on the scrubbed copy: UID,
//! RECURRENCE-ID, SEQUENCE, DTSTAMP (ordering, RFC 5546 §2.1.5), the times and recurrence
//! rules, ORGANIZER and ATTENDEE lines with all their parameters (the stored answer and the
//! `X-RECEIVED-*` ordering keys of replies live there), STATUS and TRANSP (the busy index),
//! time zones, the engine's own `X-IMIPD-*` properties and Outlook's
//! `X-MICROSOFT-CDO-APPT-SEQUENCE` (an ordering key when SEQUENCE is missing). A REPLY needs
//! nothing else (RFC 5546 §3.2.3: ATTENDEE, DTSTAMP, ORGANIZER, RECURRENCE-ID, UID,
//! SEQUENCE), and replies are built from the incoming request, not from the stored copy.

use crate::calendar::ICalendar;
use crate::itip::object::{self, Doc, Node};
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarParameterName, ICalendarProperty,
};
use serde::Deserialize;

/// What becomes of a booking's SUMMARY in the stored copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// Kept as the organiser wrote it.
    #[default]
    Keep,
    /// Replaced with the organiser's name (its CN, else its address): Exchange's
    /// DeleteSubject with AddOrganizerToSubject, its defaults.
    Organizer,
    /// The organiser's name, a colon, and the subject (AddOrganizerToSubject alone).
    OrganizerAndSubject,
    /// Removed (DeleteSubject alone).
    Delete,
}

/// What becomes of a booking marked CLASS:PRIVATE or CLASS:CONFIDENTIAL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivateBookings {
    /// Stored like any other booking. (The engine keeps no CLASS of the organiser's: it is
    /// an attendee's own property, RFC 5546 §3.1.3.)
    #[default]
    Keep,
    /// Its text is removed (SUMMARY becomes "Private booking"; DESCRIPTION, LOCATION,
    /// COMMENT, ATTACH, CONTACT, URL, alarms and X- properties go): only who booked which
    /// time remains.
    Hide,
    /// The private flag is removed, so the booking shows like any other
    /// (RemovePrivateProperty).
    Clear,
}

/// `[mailbox.policy.privacy]`: what the stored copy of a booking keeps. The defaults keep
/// everything, as a bot mailbox expects; a room shared by many usually wants
/// `subject = "organizer"` with the strip options on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// Remove DESCRIPTION (and Outlook's HTML `X-ALT-DESC`).
    pub strip_description: bool,
    /// Remove ATTACH (DeleteAttachments).
    pub strip_attachments: bool,
    /// Remove VALARM components: a resource has no one to remind.
    pub strip_alarms: bool,
    /// Remove COMMENT (DeleteComments).
    pub strip_comments: bool,
    /// Remove the X- properties of bookings (conference links, client bookkeeping), except
    /// those iTIP ordering and this program need (see the module's documentation).
    pub strip_x_properties: bool,
    /// What becomes of SUMMARY.
    pub subject: Subject,
    /// What becomes of private and confidential bookings.
    pub private: PrivateBookings,
    /// Whether the unscrubbed original is kept beside the scrubbed copy (in the store
    /// record's `original`, shown by `imipd show --original`). Default false: with any
    /// scrubbing on, the original text is gone once processed.
    pub keep_original: bool,
}

/// X- properties that scrubbing keeps: this program's own state and ordering keys.
fn kept_x(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    name.starts_with("X-IMIPD-")
        || name == "X-MICROSOFT-CDO-APPT-SEQUENCE"
        || name == "X-MICROSOFT-CDO-BUSYSTATUS"
        || name == "X-MICROSOFT-CDO-INTENDEDSTATUS"
        || name == "X-MICROSOFT-CDO-ALLDAYEVENT"
}

impl Privacy {
    /// Whether scrubbing changes anything at all.
    pub fn is_active(&self) -> bool {
        *self
            != Privacy {
                keep_original: self.keep_original,
                ..Privacy::default()
            }
    }

    /// The settings in words, for `imipd check`; empty when everything is kept.
    pub fn describe(&self) -> Vec<String> {
        let mut removed = Vec::new();
        if self.strip_description {
            removed.push("descriptions");
        }
        if self.strip_attachments {
            removed.push("attachments");
        }
        if self.strip_alarms {
            removed.push("alarms");
        }
        if self.strip_comments {
            removed.push("comments");
        }
        if self.strip_x_properties {
            removed.push("X- properties");
        }
        let mut lines = Vec::new();
        if !removed.is_empty() {
            lines.push(format!(
                "the stored copy of a booking drops its {}",
                removed.join(", ")
            ));
        }
        match self.subject {
            Subject::Keep => {}
            Subject::Organizer => {
                lines.push("the stored subject is replaced with the organiser's name".into())
            }
            Subject::OrganizerAndSubject => {
                lines.push("the stored subject is prefixed with the organiser's name".into())
            }
            Subject::Delete => lines.push("the stored subject is removed".into()),
        }
        match self.private {
            PrivateBookings::Keep => {}
            PrivateBookings::Hide => lines.push(
                "private and confidential bookings are stored as \"Private booking\", without their text"
                    .into(),
            ),
            PrivateBookings::Clear => lines.push(
                "private and confidential bookings lose their private flag and show like any other"
                    .into(),
            ),
        }
        if self.is_active() {
            lines.push(if self.keep_original {
                "the original is kept beside the scrubbed copy (imipd show --original)".into()
            } else {
                "the original is not kept".into()
            });
        }
        lines
    }
}

/// The organiser's name for a subject: its CN, else its address.
fn organizer_name(comp: &ICalendarComponent) -> Option<String> {
    let entry = comp.property(&ICalendarProperty::Organizer)?;
    object::param(entry, &ICalendarParameterName::Cn)
        .filter(|cn| !cn.trim().is_empty())
        .or_else(|| object::address(entry).map(|a| a.email().to_string()))
}

/// Escapes TEXT for a content line (RFC 5545 §3.3.11).
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace(['\r', '\n'], " ")
}

fn is_private(comp: &ICalendarComponent) -> bool {
    object::text(comp, &ICalendarProperty::Class).is_some_and(|c| {
        c.eq_ignore_ascii_case("PRIVATE") || c.eq_ignore_ascii_case("CONFIDENTIAL")
    })
}

/// The organiser's CLASS of each component of `request` set on the matching component
/// (same RECURRENCE-ID) of `object`, or removed where the request's component has none.
/// The engine treats CLASS as the attendee's own property and drops the organiser's; a
/// resource whose privacy rules act on private bookings needs the organiser's flag.
pub fn adopt_organizer_class(object: &ICalendar, request: &ICalendar) -> ICalendar {
    let request = Doc::from_ical(request);
    let mut doc = Doc::from_ical(object);
    let rid = |c: &ICalendarComponent| object::text(c, &ICalendarProperty::RecurrenceId);
    for index in doc.items() {
        let comp = &mut doc.nodes[index].comp;
        let Some(from) = request
            .items()
            .into_iter()
            .map(|i| &request.nodes[i].comp)
            .find(|c| c.uid() == comp.uid() && rid(c) == rid(comp))
        else {
            continue;
        };
        object::remove(comp, &ICalendarProperty::Class);
        if let Some(entry) = from.property(&ICalendarProperty::Class) {
            comp.entries.push(entry.clone());
        }
    }
    doc.to_ical()
}

/// Scrubs one booking component (VEVENT, VTODO, VJOURNAL) and its alarms.
fn scrub_item(node: &mut Node, privacy: &Privacy) {
    let comp = &mut node.comp;
    let hide = privacy.private == PrivateBookings::Hide && is_private(comp);
    let drop = |e: &calcard::icalendar::ICalendarEntry| match &e.name {
        ICalendarProperty::Description => privacy.strip_description || hide,
        ICalendarProperty::Attach => privacy.strip_attachments || hide,
        ICalendarProperty::Comment => privacy.strip_comments || hide,
        ICalendarProperty::Location | ICalendarProperty::Contact | ICalendarProperty::Url => hide,
        ICalendarProperty::Class => privacy.private == PrivateBookings::Clear,
        ICalendarProperty::Other(name) => {
            let alt_desc = name.eq_ignore_ascii_case("X-ALT-DESC");
            ((privacy.strip_x_properties || hide) && !kept_x(name))
                || (alt_desc && privacy.strip_description)
        }
        _ => false,
    };
    comp.entries.retain(|e| !drop(e));
    let summary = object::text(comp, &ICalendarProperty::Summary);
    let new_summary = if hide {
        Some("Private booking".to_string())
    } else {
        match privacy.subject {
            Subject::Keep => summary.clone(),
            Subject::Organizer => organizer_name(comp).or(summary.clone()),
            Subject::OrganizerAndSubject => match (organizer_name(comp), &summary) {
                (Some(name), Some(s)) => Some(format!("{name}: {s}")),
                (name, s) => name.or(s.clone()),
            },
            Subject::Delete => None,
        }
    };
    if new_summary != summary {
        object::remove(comp, &ICalendarProperty::Summary);
        if let Some(text) = new_summary {
            object::set_line(comp, &format!("SUMMARY:{}", escape(&text)));
        }
    }
    if privacy.strip_alarms || hide {
        node.children
            .retain(|c| c.comp.component_type != ICalendarComponentType::VAlarm);
    }
}

/// The copy of `ical` a viewer of the resource's calendar may see under `privacy`. Only
/// booking components are changed; what iTIP needs is kept (see the module's
/// documentation). Returns `ical` unchanged when no option is on.
pub fn scrub(ical: &ICalendar, privacy: &Privacy) -> ICalendar {
    if !privacy.is_active() {
        return ical.clone();
    }
    let mut doc = Doc::from_ical(ical);
    for node in &mut doc.nodes {
        if matches!(
            node.comp.component_type,
            ICalendarComponentType::VEvent
                | ICalendarComponentType::VTodo
                | ICalendarComponentType::VJournal
        ) {
            scrub_item(node, privacy);
        }
    }
    doc.to_ical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{parse, write};

    fn scrubbed(text: &str, privacy: &Privacy) -> String {
        let ical = parse(text).expect("test data parses").remove(0);
        write(&scrub(&ical, privacy)).replace("\r\n ", "")
    }

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n\
UID:p1\r\nDTSTAMP:20270101T000000Z\r\nSEQUENCE:2\r\nDTSTART:20270111T090000Z\r\n\
DTEND:20270111T100000Z\r\nSUMMARY:Merger talks\r\nDESCRIPTION:secret\r\n\
ORGANIZER;CN=Alice Smith:mailto:alice@corp.test\r\n\
ATTENDEE;PARTSTAT=ACCEPTED;X-RECEIVED-SEQUENCE=2:mailto:room@corp.test\r\n\
X-GOOGLE-CONFERENCE:https://meet.example/abc\r\nX-MICROSOFT-CDO-APPT-SEQUENCE:2\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:remind\r\nEND:VALARM\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn the_default_keeps_everything() {
        let text = scrubbed(EVENT, &Privacy::default());
        assert!(text.contains("SUMMARY:Merger talks"));
        assert!(text.contains("BEGIN:VALARM"));
    }

    #[test]
    fn the_subject_becomes_the_organisers_name_and_ordering_keys_stay() {
        let privacy = Privacy {
            subject: Subject::Organizer,
            strip_description: true,
            strip_alarms: true,
            strip_x_properties: true,
            ..Privacy::default()
        };
        let text = scrubbed(EVENT, &privacy);
        assert!(text.contains("SUMMARY:Alice Smith"), "{text}");
        assert!(!text.contains("Merger"), "{text}");
        assert!(
            !text.contains("secret") && !text.contains("VALARM"),
            "{text}"
        );
        assert!(!text.contains("X-GOOGLE-CONFERENCE"), "{text}");
        for kept in [
            "UID:p1",
            "SEQUENCE:2",
            "DTSTAMP:20270101T000000Z",
            "X-RECEIVED-SEQUENCE=2",
            "X-MICROSOFT-CDO-APPT-SEQUENCE:2",
            "DTSTART:20270111T090000Z",
        ] {
            assert!(text.contains(kept), "{kept} missing:\n{text}");
        }
    }

    #[test]
    fn a_private_booking_is_hidden_or_made_public() {
        let private = EVENT.replace("SUMMARY:", "CLASS:PRIVATE\r\nSUMMARY:");
        let hidden = scrubbed(
            &private,
            &Privacy {
                private: PrivateBookings::Hide,
                ..Privacy::default()
            },
        );
        assert!(hidden.contains("SUMMARY:Private booking"), "{hidden}");
        assert!(!hidden.contains("secret") && !hidden.contains("meet.example"));
        let public = scrubbed(
            &private,
            &Privacy {
                private: PrivateBookings::Clear,
                ..Privacy::default()
            },
        );
        assert!(!public.contains("CLASS:"), "{public}");
        assert!(public.contains("SUMMARY:Merger talks"), "{public}");
    }

    #[test]
    fn the_subject_may_be_prefixed_or_removed() {
        let prefixed = scrubbed(
            EVENT,
            &Privacy {
                subject: Subject::OrganizerAndSubject,
                ..Privacy::default()
            },
        );
        assert!(
            prefixed.contains("SUMMARY:Alice Smith: Merger talks"),
            "{prefixed}"
        );
        let removed = scrubbed(
            EVENT,
            &Privacy {
                subject: Subject::Delete,
                ..Privacy::default()
            },
        );
        assert!(!removed.contains("SUMMARY"), "{removed}");
    }
}
