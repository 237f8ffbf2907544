//! The scheduling view of an iCalendar object: what iTIP needs, read once into types.

use super::types::{CalAddress, Method, PartStat, Uid};
use calcard::common::{IanaString, PartialDateTime};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarParameterValue, ICalendarProperty, ICalendarValue, ICalendarValueType,
};

/// The kind of scheduling component an object carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ComponentKind {
    Event,
    Todo,
    Journal,
    FreeBusy,
}

impl ComponentKind {
    /// The component's name as written after `BEGIN:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Event => "VEVENT",
            ComponentKind::Todo => "VTODO",
            ComponentKind::Journal => "VJOURNAL",
            ComponentKind::FreeBusy => "VFREEBUSY",
        }
    }

    fn of(component_type: &ICalendarComponentType) -> Option<Self> {
        match component_type {
            ICalendarComponentType::VEvent => Some(ComponentKind::Event),
            ICalendarComponentType::VTodo => Some(ComponentKind::Todo),
            ICalendarComponentType::VJournal => Some(ComponentKind::Journal),
            ICalendarComponentType::VFreebusy => Some(ComponentKind::FreeBusy),
            _ => None,
        }
    }
}

/// Why an object cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("the object holds no VEVENT, VTODO, VJOURNAL or VFREEBUSY")]
    NoComponent,
    #[error("the {0} has no UID")]
    MissingUid(&'static str),
    #[error("the object mixes UIDs ({0} and {1}); iTIP allows one UID per message")]
    SeveralUids(String, String),
    #[error("the object mixes component types ({0} and {1})")]
    MixedComponents(&'static str, &'static str),
}

/// One attendee line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    pub address: CalAddress,
    pub partstat: PartStat,
    pub rsvp: bool,
    pub common_name: Option<String>,
    pub sent_by: Option<CalAddress>,
}

/// One component of the object: the master (no RECURRENCE-ID) or one overridden instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The component's index in [`ICalendar::components`].
    pub index: usize,
    /// RECURRENCE-ID as written (`20270104T090000Z`, or local time with `tzid`).
    pub recurrence_id: Option<String>,
    /// SEQUENCE; absent means 0 (RFC 5545 §3.8.7.4).
    pub sequence: i64,
    /// DTSTAMP in its UTC basic form, e.g. `20270101T090000Z`.
    pub dtstamp: Option<String>,
    pub organizer: Option<CalAddress>,
    pub organizer_sent_by: Option<CalAddress>,
    pub organizer_name: Option<String>,
    pub attendees: Vec<Attendee>,
    pub summary: Option<String>,
    pub dtstart: Option<String>,
    pub dtend: Option<String>,
    pub status: Option<String>,
}

/// The scheduling facts of one iCalendar object (one VCALENDAR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulingView {
    /// METHOD of the VCALENDAR, if any.
    pub method: Option<Method>,
    pub kind: ComponentKind,
    pub uid: Uid,
    /// The master first (when present), then the overrides, in document order otherwise.
    pub instances: Vec<Instance>,
}

impl SchedulingView {
    /// Reads the scheduling facts of `ical`.
    pub fn new(ical: &ICalendar) -> Result<Self, ViewError> {
        let method = ical.components.first().and_then(|root| {
            root.property(&ICalendarProperty::Method)
                .and_then(|entry| entry.values.first())
                .map(|value| match value {
                    ICalendarValue::Method(m) => Method::parse(m.as_str()),
                    other => Method::parse(other.as_text().unwrap_or_default()),
                })
        });
        let mut kind = None;
        let mut uid: Option<Uid> = None;
        let mut instances = Vec::new();
        for (index, component) in ical.components.iter().enumerate() {
            let Some(this_kind) = ComponentKind::of(&component.component_type) else {
                continue;
            };
            match kind {
                None => kind = Some(this_kind),
                Some(k) if k != this_kind => {
                    return Err(ViewError::MixedComponents(k.as_str(), this_kind.as_str()));
                }
                Some(_) => {}
            }
            let this_uid = component
                .uid()
                .map(Uid::new)
                .ok_or(ViewError::MissingUid(this_kind.as_str()))?;
            match &uid {
                None => uid = Some(this_uid),
                Some(u) if *u != this_uid => {
                    return Err(ViewError::SeveralUids(u.to_string(), this_uid.to_string()));
                }
                Some(_) => {}
            }
            instances.push(Instance::read(index, component));
        }
        let kind = kind.ok_or(ViewError::NoComponent)?;
        let uid = uid.ok_or(ViewError::NoComponent)?;
        instances.sort_by_key(|i| i.recurrence_id.is_some());
        Ok(SchedulingView {
            method,
            kind,
            uid,
            instances,
        })
    }

    /// The master component, or the first instance when the object carries only overrides.
    pub fn main(&self) -> &Instance {
        &self.instances[0]
    }
}

impl Instance {
    fn read(index: usize, component: &ICalendarComponent) -> Self {
        let prop = |p: ICalendarProperty| component.property(&p);
        let organizer = prop(ICalendarProperty::Organizer);
        Instance {
            index,
            recurrence_id: prop(ICalendarProperty::RecurrenceId).and_then(datetime_of),
            sequence: prop(ICalendarProperty::Sequence)
                .and_then(|e| e.values.first())
                .and_then(ICalendarValue::as_integer)
                .unwrap_or(0),
            dtstamp: prop(ICalendarProperty::Dtstamp).and_then(datetime_of),
            organizer: organizer.and_then(address_of),
            organizer_sent_by: organizer
                .and_then(|e| param_address(e, ICalendarParameterName::SentBy)),
            organizer_name: organizer.and_then(|e| param_text(e, ICalendarParameterName::Cn)),
            attendees: component
                .properties(&ICalendarProperty::Attendee)
                .filter_map(attendee_of)
                .collect(),
            summary: prop(ICalendarProperty::Summary).and_then(text_of),
            dtstart: prop(ICalendarProperty::Dtstart).and_then(datetime_of),
            dtend: prop(ICalendarProperty::Dtend)
                .or_else(|| prop(ICalendarProperty::Due))
                .and_then(datetime_of),
            status: component.status().map(|s| s.as_str().to_string()),
        }
    }

    /// The attendee entry for `address`, if listed.
    pub fn attendee(&self, address: &CalAddress) -> Option<&Attendee> {
        self.attendees.iter().find(|a| &a.address == address)
    }
}

/// The text of a property's first value.
pub fn text_of(entry: &ICalendarEntry) -> Option<String> {
    entry
        .values
        .first()
        .and_then(ICalendarValue::as_text)
        .map(str::to_string)
}

/// A calendar address from a property's value (ORGANIZER, ATTENDEE).
pub fn address_of(entry: &ICalendarEntry) -> Option<CalAddress> {
    let value = entry.values.first()?;
    let text = match value {
        ICalendarValue::Uri(uri) => uri.as_str()?,
        other => other.as_text()?,
    };
    CalAddress::parse(text)
}

fn param_text(entry: &ICalendarEntry, name: ICalendarParameterName) -> Option<String> {
    entry
        .parameter(&name)
        .and_then(ICalendarParameterValue::as_text)
        .map(str::to_string)
}

fn param_address(entry: &ICalendarEntry, name: ICalendarParameterName) -> Option<CalAddress> {
    match entry.parameter(&name)? {
        ICalendarParameterValue::Uri(uri) => CalAddress::parse(uri.as_str()?),
        other => CalAddress::parse(other.as_text()?),
    }
}

fn attendee_of(entry: &ICalendarEntry) -> Option<Attendee> {
    let partstat = match entry.parameter(&ICalendarParameterName::Partstat) {
        Some(ICalendarParameterValue::Partstat(p)) => PartStat::parse(p.as_str()),
        Some(other) => PartStat::parse(other.as_text().unwrap_or("NEEDS-ACTION")),
        None => PartStat::NeedsAction,
    };
    let rsvp = match entry.parameter(&ICalendarParameterName::Rsvp) {
        Some(ICalendarParameterValue::Bool(b)) => *b,
        Some(other) => other
            .as_text()
            .is_some_and(|t| t.eq_ignore_ascii_case("TRUE")),
        None => false,
    };
    Some(Attendee {
        address: address_of(entry)?,
        partstat,
        rsvp,
        common_name: param_text(entry, ICalendarParameterName::Cn),
        sent_by: param_address(entry, ICalendarParameterName::SentBy),
    })
}

/// A DATE or DATE-TIME value in its RFC 5545 basic form (`20270104`, `20270104T090000`,
/// `20270104T090000Z`).
pub fn datetime_of(entry: &ICalendarEntry) -> Option<String> {
    entry
        .values
        .first()
        .and_then(ICalendarValue::as_partial_date_time)
        .map(format_datetime)
}

/// Formats a calcard date-time in RFC 5545 basic form.
pub fn format_datetime(dt: &PartialDateTime) -> String {
    let fmt = if dt.hour.is_some() {
        ICalendarValueType::DateTime
    } else {
        ICalendarValueType::Date
    };
    let mut out = String::with_capacity(16);
    dt.format_as_ical(&mut out, &fmt)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse;

    #[test]
    fn reads_attendees_with_quoted_names_and_partstat() {
        let ics = "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:3\r\n\
DTSTAMP:20270101T090000Z\r\nORGANIZER;SENT-BY=\"mailto:assist@ext.test\":MAILTO:Org@Ext.test\r\n\
ATTENDEE;CN=\"Doe, John\";PARTSTAT=accepted;RSVP=TRUE:mailto:John@Ext.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cals = parse(ics).expect("valid");
        let view = SchedulingView::new(&cals[0]).expect("scheduling object");
        let main = view.main();
        assert_eq!(view.method, Some(Method::Reply));
        assert_eq!(main.sequence, 3);
        assert_eq!(main.dtstamp.as_deref(), Some("20270101T090000Z"));
        assert_eq!(main.organizer, CalAddress::parse("org@ext.test"));
        assert_eq!(main.organizer_sent_by, CalAddress::parse("assist@ext.test"));
        let john = &main.attendees[0];
        assert_eq!(john.address.email(), "john@ext.test");
        assert_eq!(john.partstat, PartStat::Accepted);
        assert!(john.rsvp);
        assert_eq!(john.common_name.as_deref(), Some("Doe, John"));
    }

    #[test]
    fn mixed_uids_are_refused() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";
        let cals = parse(ics).expect("valid");
        assert_eq!(
            SchedulingView::new(&cals[0]),
            Err(ViewError::SeveralUids("a".into(), "b".into()))
        );
    }

    #[test]
    fn missing_sequence_means_zero_and_master_comes_first() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID:20270105T090000Z\r\n\
END:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cals = parse(ics).expect("valid");
        let view = SchedulingView::new(&cals[0]).expect("scheduling object");
        assert_eq!(view.main().recurrence_id, None);
        assert_eq!(view.main().sequence, 0);
        assert_eq!(
            view.instances[1].recurrence_id.as_deref(),
            Some("20270105T090000Z")
        );
    }
}
