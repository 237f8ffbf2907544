//! Builds the objects the engine returns: the attendee's stored copy and the REPLY.

use crate::calendar::view::{Instance, address_of};
use crate::calendar::{CalAddress, ICalendar, PartStat};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarMethod,
    ICalendarParameter, ICalendarParameterName, ICalendarParameterValue,
    ICalendarParticipationStatus, ICalendarProperty, ICalendarValue,
};
use chrono::{DateTime, Datelike, Timelike, Utc};

/// The product identifier of everything imipd writes.
pub const PRODID: &str = "-//imipd//imipd 0.1//EN";

fn partstat_param(partstat: &PartStat) -> ICalendarParameter {
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

/// ME's ATTENDEE line with the new PARTSTAT and without RSVP (an answer asks for none).
fn answered(entry: &ICalendarEntry, partstat: &PartStat) -> ICalendarEntry {
    let mut params: Vec<ICalendarParameter> = entry
        .params
        .iter()
        .filter(|p| {
            !matches!(
                p.name,
                ICalendarParameterName::Partstat | ICalendarParameterName::Rsvp
            )
        })
        .cloned()
        .collect();
    params.push(partstat_param(partstat));
    ICalendarEntry {
        name: entry.name.clone(),
        params,
        values: entry.values.clone(),
    }
}

fn is_me(entry: &ICalendarEntry, me: &CalAddress) -> bool {
    entry.name == ICalendarProperty::Attendee && address_of(entry).as_ref() == Some(me)
}

/// The stored attendee copy: the organiser's object without METHOD, with ME's PARTSTAT set in
/// every component that lists ME.
pub fn attendee_copy(ical: &ICalendar, me: &CalAddress, partstat: &PartStat) -> ICalendar {
    let mut copy = ical.clone();
    if let Some(root) = copy.components.first_mut() {
        root.entries.retain(|e| e.name != ICalendarProperty::Method);
    }
    for component in &mut copy.components {
        for entry in &mut component.entries {
            if is_me(entry, me) {
                *entry = answered(entry, partstat);
            }
        }
    }
    copy
}

fn utc_stamp(now: DateTime<Utc>) -> PartialDateTime {
    PartialDateTime {
        year: u16::try_from(now.year()).ok(),
        month: Some(now.month() as u8),
        day: Some(now.day() as u8),
        hour: Some(now.hour() as u8),
        minute: Some(now.minute() as u8),
        second: Some(now.second() as u8),
        tz_hour: Some(0),
        tz_minute: Some(0),
        tz_minus: false,
    }
}

fn text_entry(name: ICalendarProperty, text: &str) -> ICalendarEntry {
    ICalendarEntry {
        name,
        params: Vec::new(),
        values: vec![ICalendarValue::Text(text.to_string())],
    }
}

/// The properties a REPLY repeats from the request, as the organiser's client (Google in
/// particular) needs them to match the answer to its event.
const REPLY_COPIES: [ICalendarProperty; 7] = [
    ICalendarProperty::Uid,
    ICalendarProperty::RecurrenceId,
    ICalendarProperty::Sequence,
    ICalendarProperty::Dtstart,
    ICalendarProperty::Dtend,
    ICalendarProperty::Summary,
    ICalendarProperty::Organizer,
];

/// A REPLY (RFC 5546 §3.2.3) for the instance `main` of `request`, carrying only ME's
/// ATTENDEE line, a fresh DTSTAMP, and the time zones the request defined.
pub fn reply(
    request: &ICalendar,
    main: &Instance,
    me: &CalAddress,
    partstat: &PartStat,
    now: DateTime<Utc>,
) -> ICalendar {
    let source = &request.components[main.index];
    let mut entries = Vec::new();
    for name in &REPLY_COPIES {
        entries.extend(source.entries.iter().filter(|e| &e.name == name).cloned());
    }
    entries.push(ICalendarEntry {
        name: ICalendarProperty::Dtstamp,
        params: Vec::new(),
        values: vec![ICalendarValue::PartialDateTime(Box::new(utc_stamp(now)))],
    });
    entries.extend(
        source
            .entries
            .iter()
            .filter(|e| is_me(e, me))
            .map(|e| answered(e, partstat)),
    );
    let timezones: Vec<ICalendarComponent> = request
        .components
        .iter()
        .filter(|c| c.component_type == ICalendarComponentType::VTimezone)
        .cloned()
        .collect();
    let mut components = vec![ICalendarComponent {
        component_type: ICalendarComponentType::VCalendar,
        entries: vec![
            text_entry(ICalendarProperty::Prodid, PRODID),
            text_entry(ICalendarProperty::Version, "2.0"),
            ICalendarEntry {
                name: ICalendarProperty::Method,
                params: Vec::new(),
                values: vec![ICalendarValue::Method(ICalendarMethod::Reply)],
            },
        ],
        component_ids: Vec::new(),
    }];
    // VTIMEZONE sub-components (STANDARD/DAYLIGHT) are copied with their own children,
    // renumbered into the new object.
    for tz in timezones {
        let id = append_tree(&mut components, request, &tz);
        components[0].component_ids.push(id);
    }
    let event_id = components.len() as u32;
    components.push(ICalendarComponent {
        component_type: source.component_type.clone(),
        entries,
        component_ids: Vec::new(),
    });
    components[0].component_ids.push(event_id);
    ICalendar { components }
}

/// Appends `component` and its descendants (looked up in `from`) to `into`; returns its id.
fn append_tree(
    into: &mut Vec<ICalendarComponent>,
    from: &ICalendar,
    component: &ICalendarComponent,
) -> u32 {
    let id = into.len() as u32;
    into.push(ICalendarComponent {
        component_type: component.component_type.clone(),
        entries: component.entries.clone(),
        component_ids: Vec::new(),
    });
    for child in &component.component_ids {
        if let Some(child) = from.components.get(*child as usize) {
            let child_id = append_tree(into, from, child);
            into[id as usize].component_ids.push(child_id);
        }
    }
    id
}
