//! Writes the iTIP objects the engine sends: REPLY (RFC 5546 §3.2.3), REFRESH (§3.2.6), the
//! REQUEST that answers a REFRESH (§3.2.2), and DECLINECOUNTER (§3.2.8).
//!
//! Every outgoing object has a fresh DTSTAMP (`now`), echoes the SEQUENCE it answers (never
//! incremented, §2.1.4), carries the VTIMEZONEs it uses, and never carries VALARM or the
//! CalDAV scheduling parameters (RFC 6638 §7).

use super::object::{self, Doc, Node};
use crate::calendar::{CalAddress, ICalendar, PartStat};
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameter,
    ICalendarParameterName, ICalendarParameterValue, ICalendarParticipationStatus,
    ICalendarProperty,
};
use chrono::{DateTime, Utc};

/// The product identifier of everything imipd writes.
pub const PRODID: &str = "-//imipd//imipd 0.1//EN";

/// The PARTSTAT parameter for `partstat`.
pub fn partstat_param(partstat: &PartStat) -> ICalendarParameter {
    let value = match partstat {
        PartStat::NeedsAction => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::NeedsAction)
        }
        PartStat::Accepted => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::Accepted)
        }
        PartStat::Declined => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::Declined)
        }
        PartStat::Tentative => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::Tentative)
        }
        PartStat::Delegated => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::Delegated)
        }
        PartStat::Completed => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::Completed)
        }
        PartStat::InProcess => {
            ICalendarParameterValue::Partstat(ICalendarParticipationStatus::InProcess)
        }
        PartStat::Other(text) => ICalendarParameterValue::Text(text.clone()),
    };
    ICalendarParameter {
        name: ICalendarParameterName::Partstat,
        value,
    }
}

/// Sets PARTSTAT on an ATTENDEE entry, keeping every other parameter.
pub fn set_partstat(entry: &mut ICalendarEntry, partstat: &PartStat) {
    entry
        .params
        .retain(|p| p.name != ICalendarParameterName::Partstat);
    entry.params.push(partstat_param(partstat));
}

/// The ATTENDEE line of an answer: PARTSTAT set (or, for an error reply, removed), RSVP and
/// the bookkeeping parameters gone.
fn answered(entry: &ICalendarEntry, partstat: Option<&PartStat>) -> ICalendarEntry {
    let mut entry = entry.clone();
    entry.params.retain(|p| {
        !matches!(
            &p.name,
            ICalendarParameterName::Rsvp
                | ICalendarParameterName::ScheduleAgent
                | ICalendarParameterName::ScheduleStatus
                | ICalendarParameterName::ScheduleForceSend
        ) && !matches!(&p.name, ICalendarParameterName::Other(n) if n.starts_with("X-RECEIVED"))
    });
    match partstat {
        Some(partstat) => set_partstat(&mut entry, partstat),
        None => entry
            .params
            .retain(|p| p.name != ICalendarParameterName::Partstat),
    }
    entry
}

/// A new VCALENDAR root with METHOD.
fn root(method: &str) -> Vec<ICalendarEntry> {
    [
        format!("PRODID:{PRODID}"),
        "VERSION:2.0".to_string(),
        format!("METHOD:{method}"),
    ]
    .iter()
    .filter_map(|l| object::line(l))
    .collect()
}

/// The VTIMEZONEs of `source` whose TZID the components use.
fn zones_used(source: &Doc, components: &[Node]) -> Vec<Node> {
    let used: Vec<String> = components
        .iter()
        .flat_map(|n| n.comp.entries.iter())
        .filter_map(|e| object::param(e, &ICalendarParameterName::Tzid))
        .collect();
    source
        .zones()
        .filter(|z| {
            object::text(&z.comp, &ICalendarProperty::Tzid).is_some_and(|t| used.contains(&t))
        })
        .cloned()
        .collect()
}

fn assemble(method: &str, source: &Doc, components: Vec<Node>) -> ICalendar {
    let mut nodes = zones_used(source, &components);
    nodes.extend(components);
    Doc {
        root: root(method),
        nodes,
    }
    .to_ical()
}

fn copy(from: &ICalendarComponent, to: &mut ICalendarComponent, names: &[ICalendarProperty]) {
    for name in names {
        to.entries
            .extend(from.entries.iter().filter(|e| &e.name == name).cloned());
    }
}

fn dtstamp_entry(now: DateTime<Utc>) -> Option<ICalendarEntry> {
    object::line(&format!("DTSTAMP:{}", object::stamp(now)))
}

/// The properties a REPLY repeats from the request, as organisers' clients (Google in
/// particular) need them to match the answer to their event.
const REPLY_COPIES: [ICalendarProperty; 9] = [
    ICalendarProperty::Uid,
    ICalendarProperty::RecurrenceId,
    ICalendarProperty::Sequence,
    ICalendarProperty::Dtstart,
    ICalendarProperty::Dtend,
    ICalendarProperty::Duration,
    ICalendarProperty::Due,
    ICalendarProperty::Summary,
    ICalendarProperty::Organizer,
];

/// One reported component of a REPLY: which component of the request, and the answer.
pub struct Answer<'a> {
    /// The component answered (of the request, or of the merged stored object).
    pub comp: &'a ICalendarComponent,
    /// The answer; `None` for an error reply (RFC 5546 §4.4.10), which carries only a
    /// REQUEST-STATUS.
    pub partstat: Option<PartStat>,
    /// An explanation for the organiser (a decline's reason), sent as COMMENT.
    pub comment: Option<String>,
    /// A REQUEST-STATUS line value (`2.0;Success`), when the answer carries one.
    pub request_status: Option<String>,
}

/// A REPLY carrying one component per answer, each with only ME's ATTENDEE line.
pub fn reply(
    source: &Doc,
    me: &CalAddress,
    answers: &[Answer<'_>],
    now: DateTime<Utc>,
) -> ICalendar {
    let mut components = Vec::new();
    for answer in answers {
        let mut comp = ICalendarComponent::new(answer.comp.component_type.clone());
        copy(answer.comp, &mut comp, &REPLY_COPIES);
        comp.entries.extend(dtstamp_entry(now));
        if let Some(index) = object::attendee_index(answer.comp, me) {
            comp.entries.push(answered(
                &answer.comp.entries[index],
                answer.partstat.as_ref(),
            ));
        }
        if let Some(comment) = &answer.comment {
            comp.entries
                .extend(object::line(&format!("COMMENT:{}", escape_text(comment))));
        }
        if let Some(status) = &answer.request_status {
            comp.entries
                .extend(object::line(&format!("REQUEST-STATUS:{status}")));
        }
        components.push(Node {
            comp,
            children: Vec::new(),
        });
    }
    assemble("REPLY", source, components)
}

/// A REFRESH (RFC 5546 §3.2.6): UID, DTSTAMP, ORGANIZER, ME as the one ATTENDEE, and the
/// RECURRENCE-ID asked about. No SEQUENCE, times, SUMMARY or STATUS.
pub fn refresh(
    source: &Doc,
    comp: &ICalendarComponent,
    me: &CalAddress,
    now: DateTime<Utc>,
) -> ICalendar {
    let mut out = ICalendarComponent::new(comp.component_type.clone());
    copy(
        comp,
        &mut out,
        &[
            ICalendarProperty::Uid,
            ICalendarProperty::Organizer,
            ICalendarProperty::RecurrenceId,
        ],
    );
    out.entries.extend(dtstamp_entry(now));
    match object::attendee_index(comp, me) {
        Some(index) => {
            let mut entry = comp.entries[index].clone();
            entry.params.retain(|p| {
                matches!(
                    p.name,
                    ICalendarParameterName::Cn | ICalendarParameterName::Cutype
                )
            });
            out.entries.push(entry);
        }
        None => out
            .entries
            .extend(object::line(&format!("ATTENDEE:{}", me.uri()))),
    }
    assemble(
        "REFRESH",
        source,
        vec![Node {
            comp: out,
            children: Vec::new(),
        }],
    )
}

/// The current object as a REQUEST (the answer to a REFRESH), with a fresh DTSTAMP, the
/// SEQUENCE unchanged, and without this mailbox's bookkeeping parameters.
pub fn request_copy(
    stored: &Doc,
    rid: Option<&object::Rid>,
    zones: &object::Zones<'_>,
    now: DateTime<Utc>,
) -> ICalendar {
    let mut components = Vec::new();
    for index in stored.items() {
        let node = &stored.nodes[index];
        if let Some(rid) = rid
            && zones.rid(&node.comp).as_ref() != Some(rid)
        {
            continue;
        }
        let mut comp = node.comp.clone();
        for entry in &mut comp.entries {
            if entry.name == ICalendarProperty::Attendee {
                entry.params.retain(|p| {
                    !matches!(&p.name, ICalendarParameterName::Other(n) if n.starts_with("X-RECEIVED"))
                        && p.name != ICalendarParameterName::ScheduleStatus
                });
            }
        }
        comp.entries.retain(
            |e| !matches!(&e.name, ICalendarProperty::Other(n) if n.starts_with("X-IMIPD")),
        );
        if let Some(stamp) = dtstamp_entry(now) {
            object::set(&mut comp.entries, stamp);
        }
        components.push(Node {
            comp,
            children: Vec::new(),
        });
    }
    if components.is_empty()
        && let Some(master) = stored.master()
    {
        let mut comp = stored.nodes[master].comp.clone();
        if let Some(stamp) = dtstamp_entry(now) {
            object::set(&mut comp.entries, stamp);
        }
        components.push(Node {
            comp,
            children: Vec::new(),
        });
    }
    assemble("REQUEST", stored, components)
}

/// A COUNTER (RFC 5546 §3.2.7) from ME proposing `start`..`end` (UTC) for `comp`: the
/// request's component with the new times, a fresh DTSTAMP, the SEQUENCE echoed, no
/// recurrence, ME's ATTENDEE line only, and a COMMENT saying why.
pub fn counter(
    source: &Doc,
    comp: &ICalendarComponent,
    me: &CalAddress,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    comment: &str,
    now: DateTime<Utc>,
) -> ICalendar {
    let mut out = comp.clone();
    let mine = object::attendee_index(comp, me).map(|i| comp.entries[i].clone());
    out.entries.retain(|e| {
        !matches!(
            e.name,
            ICalendarProperty::Attendee
                | ICalendarProperty::Rrule
                | ICalendarProperty::Rdate
                | ICalendarProperty::Exdate
                | ICalendarProperty::RecurrenceId
                | ICalendarProperty::Dtstart
                | ICalendarProperty::Dtend
                | ICalendarProperty::Duration
                | ICalendarProperty::Comment
                | ICalendarProperty::Dtstamp
        )
    });
    out.entries.extend(dtstamp_entry(now));
    out.entries
        .extend(object::line(&format!("DTSTART:{}", object::stamp(start))));
    out.entries
        .extend(object::line(&format!("DTEND:{}", object::stamp(end))));
    if let Some(mut mine) = mine {
        set_partstat(&mut mine, &PartStat::Tentative);
        out.entries.push(mine);
    }
    out.entries
        .extend(object::line(&format!("COMMENT:{}", escape_text(comment))));
    assemble(
        "COUNTER",
        source,
        vec![Node {
            comp: out,
            children: Vec::new(),
        }],
    )
}

/// A DECLINECOUNTER (RFC 5546 §3.2.8) to the attendee who countered: UID, the stored
/// SEQUENCE echoed, ORGANIZER, that ATTENDEE, the RECURRENCE-ID countered, and a COMMENT.
pub fn declinecounter(
    stored: &Doc,
    comp: &ICalendarComponent,
    attendee: &ICalendarEntry,
    rid: Option<&ICalendarEntry>,
    now: DateTime<Utc>,
) -> ICalendar {
    let mut out = ICalendarComponent::new(comp.component_type.clone());
    copy(
        comp,
        &mut out,
        &[
            ICalendarProperty::Uid,
            ICalendarProperty::Sequence,
            ICalendarProperty::Organizer,
        ],
    );
    out.entries.extend(rid.cloned());
    out.entries.extend(dtstamp_entry(now));
    let mut attendee = attendee.clone();
    attendee
        .params
        .retain(|p| matches!(p.name, ICalendarParameterName::Cn));
    out.entries.push(attendee);
    out.entries.extend(object::line(
        "COMMENT:The proposed change was not accepted; the event stays as scheduled.",
    ));
    assemble(
        "DECLINECOUNTER",
        stored,
        vec![Node {
            comp: out,
            children: Vec::new(),
        }],
    )
}

/// Escapes TEXT for a content line (RFC 5545 §3.3.11).
pub fn escape_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
        .replace('\r', "")
}

/// A component type is a VTODO.
pub fn is_todo(comp: &ICalendarComponent) -> bool {
    comp.component_type == ICalendarComponentType::VTodo
}
