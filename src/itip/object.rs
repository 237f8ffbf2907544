//! The engine's working model of one calendar object: the VCALENDAR's own properties and its
//! top-level components as a tree (calcard keeps a flat list linked by ids, which is awkward
//! to edit). The engine reads an object into a [`Doc`], changes components, and writes it back.
//!
//! Everything the engine needs to decide later is kept inside the object itself: the ordering
//! key of each component is its own SEQUENCE and DTSTAMP, and the ordering key of each
//! attendee's last reply sits on that ATTENDEE line as `X-RECEIVED-SEQUENCE` and
//! `X-RECEIVED-DTSTAMP` (as Cyrus and Thunderbird do), so the engine stays a function of the
//! stored object.

use crate::calendar::CalAddress;
use crate::calendar::view::{address_of, format_datetime};
use calcard::common::IanaString;
use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameter,
    ICalendarParameterName, ICalendarParameterValue, ICalendarProperty, ICalendarValue,
};
use calcard::{Entry, Parser};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::cmp::Ordering;

/// The most instances of a series expanded to check a RECURRENCE-ID (RFC 5546 leaves it to
/// us; sabre stops at 1000, this covers 27 years of a daily series).
pub const MAX_EXPANDED_INSTANCES: usize = 10_000;

/// One component with its sub-components (VALARM under VEVENT, STANDARD under VTIMEZONE).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The component's own properties (its `component_ids` are unused here).
    pub comp: ICalendarComponent,
    /// Its sub-components.
    pub children: Vec<Node>,
}

/// A calendar object as a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// The VCALENDAR's own properties (VERSION, PRODID, METHOD, ...).
    pub root: Vec<ICalendarEntry>,
    /// The top-level components in document order.
    pub nodes: Vec<Node>,
}

fn node_of(ical: &ICalendar, id: u32, depth: usize) -> Option<Node> {
    let comp = ical.components.get(id as usize)?;
    let children = if depth < crate::calendar::MAX_DEPTH {
        comp.component_ids
            .iter()
            .filter_map(|child| node_of(ical, *child, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    Some(Node {
        comp: ICalendarComponent {
            component_type: comp.component_type.clone(),
            entries: comp.entries.clone(),
            component_ids: Vec::new(),
        },
        children,
    })
}

fn push_node(into: &mut Vec<ICalendarComponent>, node: &Node) -> u32 {
    let id = into.len() as u32;
    into.push(node.comp.clone());
    for child in &node.children {
        let child_id = push_node(into, child);
        into[id as usize].component_ids.push(child_id);
    }
    id
}

impl Doc {
    /// Reads `ical` (its first component is the VCALENDAR).
    pub fn from_ical(ical: &ICalendar) -> Doc {
        let Some(root) = ical.components.first() else {
            return Doc {
                root: Vec::new(),
                nodes: Vec::new(),
            };
        };
        Doc {
            root: root.entries.clone(),
            nodes: root
                .component_ids
                .iter()
                .filter_map(|id| node_of(ical, *id, 1))
                .collect(),
        }
    }

    /// Writes the tree back into calcard's model.
    pub fn to_ical(&self) -> ICalendar {
        let mut components = vec![ICalendarComponent {
            component_type: ICalendarComponentType::VCalendar,
            entries: self.root.clone(),
            component_ids: Vec::new(),
        }];
        for node in &self.nodes {
            let id = push_node(&mut components, node);
            components[0].component_ids.push(id);
        }
        ICalendar { components }
    }

    /// Indices of the scheduling components (VEVENT, VTODO, VJOURNAL, VFREEBUSY).
    pub fn items(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.comp.component_type.is_scheduling_object())
            .map(|(i, _)| i)
            .collect()
    }

    /// The index of the master component (the one without RECURRENCE-ID).
    pub fn master(&self) -> Option<usize> {
        self.items()
            .into_iter()
            .find(|i| !has(&self.nodes[*i].comp, &ICalendarProperty::RecurrenceId))
    }

    /// The VTIMEZONE nodes.
    pub fn zones(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .filter(|n| n.comp.component_type == ICalendarComponentType::VTimezone)
    }

    /// Removes METHOD: a stored object is not a message.
    pub fn strip_method(&mut self) {
        self.root.retain(|e| e.name != ICalendarProperty::Method);
    }

    /// Sets (or replaces) a property of the VCALENDAR.
    pub fn set_root(&mut self, entry: ICalendarEntry) {
        set(&mut self.root, entry);
    }

    /// Adds the VTIMEZONEs of `other` that this object lacks (by TZID).
    pub fn merge_zones(&mut self, other: &Doc) {
        for zone in other.zones() {
            let tzid = text(&zone.comp, &ICalendarProperty::Tzid);
            if !self
                .zones()
                .any(|z| text(&z.comp, &ICalendarProperty::Tzid) == tzid)
            {
                let at = self
                    .nodes
                    .iter()
                    .position(|n| n.comp.component_type.is_scheduling_object())
                    .unwrap_or(self.nodes.len());
                self.nodes.insert(at, zone.clone());
            }
        }
    }
}

/// Whether the component has the property.
pub fn has(comp: &ICalendarComponent, name: &ICalendarProperty) -> bool {
    comp.entries.iter().any(|e| &e.name == name)
}

/// The text of a property's first value.
pub fn text(comp: &ICalendarComponent, name: &ICalendarProperty) -> Option<String> {
    comp.property(name).and_then(|e| match e.values.first()? {
        ICalendarValue::Integer(i) => Some(i.to_string()),
        ICalendarValue::PartialDateTime(dt) => Some(format_datetime(dt)),
        ICalendarValue::Status(s) => Some(s.as_str().to_string()),
        other => other.as_text().map(str::to_string),
    })
}

/// Replaces the first entry with the same name in `entries` (dropping later ones), or appends.
pub fn set(entries: &mut Vec<ICalendarEntry>, entry: ICalendarEntry) {
    match entries.iter().position(|e| e.name == entry.name) {
        Some(at) => {
            let name = entry.name.clone();
            entries[at] = entry;
            let mut seen = 0;
            entries.retain(|e| {
                if e.name == name {
                    seen += 1;
                    seen == 1
                } else {
                    true
                }
            });
        }
        None => entries.push(entry),
    }
}

/// Removes every entry with that name.
pub fn remove(comp: &mut ICalendarComponent, name: &ICalendarProperty) {
    comp.entries.retain(|e| &e.name != name);
}

/// One content line parsed into calcard's model, e.g. `STATUS:CANCELLED`. Building entries
/// through the parser keeps value types exactly as calcard reads them from mail.
pub fn line(text: &str) -> Option<ICalendarEntry> {
    let wrapped =
        format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n{text}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
    match Parser::new(&wrapped).entry() {
        Entry::ICalendar(mut ical) => {
            let comp = ical.components.get_mut(1)?;
            (!comp.entries.is_empty()).then(|| comp.entries.remove(0))
        }
        _ => None,
    }
}

/// Sets a property from its content line (a fixed, well-formed line written by the engine).
pub fn set_line(comp: &mut ICalendarComponent, content: &str) {
    if let Some(entry) = line(content) {
        set(&mut comp.entries, entry);
    }
}

/// SEQUENCE, 0 when absent (RFC 5545 §3.8.7.4); negative values count as 0. Outlook's
/// `X-MICROSOFT-CDO-APPT-SEQUENCE` stands in when SEQUENCE is missing (checklist #26).
pub fn sequence(comp: &ICalendarComponent) -> i64 {
    let integer = |name: &ICalendarProperty| {
        comp.property(name)
            .and_then(|e| e.values.first())
            .and_then(|v| match v {
                ICalendarValue::Integer(i) => Some(*i),
                other => other.as_text().and_then(|t| t.trim().parse().ok()),
            })
    };
    integer(&ICalendarProperty::Sequence)
        .or_else(|| {
            integer(&ICalendarProperty::Other(
                "X-MICROSOFT-CDO-APPT-SEQUENCE".into(),
            ))
        })
        .unwrap_or(0)
        .max(0)
}

/// DTSTAMP in UTC basic form; empty when absent, so a missing DTSTAMP never wins a tie.
pub fn dtstamp(comp: &ICalendarComponent) -> String {
    text(comp, &ICalendarProperty::Dtstamp).unwrap_or_default()
}

/// The ordering key of an organiser-originated component (RFC 5546 §2.1.5): SEQUENCE, then
/// DTSTAMP, then LAST-MODIFIED (Apple Calendar 11 changes only LAST-MODIFIED on some
/// updates; sabre/vobject#462).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// SEQUENCE (0 when absent).
    pub sequence: i64,
    /// DTSTAMP, UTC basic form; empty when absent.
    pub dtstamp: String,
    /// LAST-MODIFIED, UTC basic form; empty when absent.
    pub last_modified: String,
}

impl Key {
    /// The key of a component.
    pub fn of(comp: &ICalendarComponent) -> Key {
        Key {
            sequence: sequence(comp),
            dtstamp: dtstamp(comp),
            last_modified: text(comp, &ICalendarProperty::LastModified).unwrap_or_default(),
        }
    }

    /// The key of a reply: SEQUENCE and DTSTAMP only (what the organiser records per attendee).
    pub fn of_reply(comp: &ICalendarComponent) -> Key {
        Key {
            sequence: sequence(comp),
            dtstamp: dtstamp(comp),
            last_modified: String::new(),
        }
    }
}

/// Writes `key` into a component (a tombstone, or a master an ADD or range CANCEL changed), so
/// the stored object carries the ordering key of the last message applied to it.
pub fn set_key(comp: &mut ICalendarComponent, key: &Key) {
    set_line(comp, &format!("SEQUENCE:{}", key.sequence));
    if !key.dtstamp.is_empty() {
        set_line(comp, &format!("DTSTAMP:{}", key.dtstamp));
    }
    remove(comp, &ICalendarProperty::LastModified);
    if !key.last_modified.is_empty() {
        set_line(comp, &format!("LAST-MODIFIED:{}", key.last_modified));
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SEQUENCE {} DTSTAMP {}", self.sequence, self.dtstamp)
    }
}

/// How a new key compares with a stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The new key is higher: apply.
    Newer,
    /// The same key: a duplicate.
    Same,
    /// The new key is lower: stale.
    Older,
}

/// Compares `new` with `old`.
pub fn order(new: &Key, old: &Key) -> Order {
    match new.cmp(old) {
        Ordering::Greater => Order::Newer,
        Ordering::Equal => Order::Same,
        Ordering::Less => Order::Older,
    }
}

/// Whether the component is cancelled.
pub fn is_cancelled(comp: &ICalendarComponent) -> bool {
    text(comp, &ICalendarProperty::Status).is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
}

/// A parameter's text.
pub fn param(entry: &ICalendarEntry, name: &ICalendarParameterName) -> Option<String> {
    entry
        .params
        .iter()
        .find(|p| &p.name == name)
        .and_then(|p| match &p.value {
            ICalendarParameterValue::Uri(uri) => uri.as_str().map(str::to_string),
            ICalendarParameterValue::Integer(i) => Some(i.to_string()),
            ICalendarParameterValue::Bool(b) => Some(if *b { "TRUE" } else { "FALSE" }.into()),
            other => other.as_text().map(str::to_string),
        })
}

/// Every address named in a parameter that may list several (DELEGATED-TO, DELEGATED-FROM).
pub fn param_addresses(entry: &ICalendarEntry, name: &ICalendarParameterName) -> Vec<CalAddress> {
    entry
        .params
        .iter()
        .filter(|p| &p.name == name)
        .filter_map(|p| match &p.value {
            ICalendarParameterValue::Uri(uri) => uri.as_str().map(str::to_string),
            other => other.as_text().map(str::to_string),
        })
        .flat_map(|v| {
            v.split(',')
                .filter_map(|a| CalAddress::parse(a.trim().trim_matches('"')))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sets a parameter to a text value, replacing any earlier value.
pub fn set_param(entry: &mut ICalendarEntry, name: ICalendarParameterName, value: &str) {
    entry.params.retain(|p| p.name != name);
    entry.params.push(ICalendarParameter {
        name,
        value: ICalendarParameterValue::Text(value.to_string()),
    });
}

/// Removes a parameter.
pub fn remove_param(entry: &mut ICalendarEntry, name: &ICalendarParameterName) {
    entry.params.retain(|p| &p.name != name);
}

/// An `X-` parameter name.
pub fn x_param(name: &str) -> ICalendarParameterName {
    ICalendarParameterName::Other(name.to_string())
}

/// The address of an ORGANIZER or ATTENDEE entry.
pub fn address(entry: &ICalendarEntry) -> Option<CalAddress> {
    address_of(entry)
}

/// The ORGANIZER address of a component.
pub fn organizer(comp: &ICalendarComponent) -> Option<CalAddress> {
    comp.property(&ICalendarProperty::Organizer)
        .and_then(address_of)
}

/// The index of the ATTENDEE entry for `who` in the component.
pub fn attendee_index(comp: &ICalendarComponent, who: &CalAddress) -> Option<usize> {
    comp.entries
        .iter()
        .position(|e| e.name == ICalendarProperty::Attendee && address_of(e).as_ref() == Some(who))
}

/// Every ATTENDEE entry with its address.
pub fn attendees(comp: &ICalendarComponent) -> Vec<(CalAddress, &ICalendarEntry)> {
    comp.properties(&ICalendarProperty::Attendee)
        .filter_map(|e| address_of(e).map(|a| (a, e)))
        .collect()
}

/// A RECURRENCE-ID (or instance start) reduced to the thing that identifies an instance: a
/// date for all-day series, an absolute instant for zoned or UTC times, a local time for
/// floating ones. Different spellings of one instance (UTC, another zone) compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rid {
    /// An all-day instance, `YYYYMMDD`.
    Date(String),
    /// A zoned or UTC instance, seconds since the epoch.
    Instant(i64),
    /// A floating (local) instance.
    Floating(NaiveDateTime),
}

/// Resolves TZIDs with the object's own VTIMEZONEs first, then IANA and Windows names.
pub struct Zones<'a> {
    sources: Vec<&'a ICalendar>,
}

impl<'a> Zones<'a> {
    /// A resolver over the time zones of these objects, in order of preference.
    pub fn new(sources: Vec<&'a ICalendar>) -> Self {
        Zones { sources }
    }

    fn resolve(&self, tzid: &str) -> Option<Tz> {
        self.sources
            .iter()
            .find_map(|ical| ical.build_tz_resolver().resolve(tzid))
            .or_else(|| {
                // Names calcard does not know but the calendar layer does (e.g. Evolution's
                // "/freeassociation.sourceforge.net/Europe/Berlin"), so that the engine and the
                // policy agree on which zones exist.
                match crate::calendar::tz::zone_by_name(tzid)? {
                    crate::calendar::tz::Zone::Iana(tz) => Some(Tz::Tz(tz)),
                    crate::calendar::tz::Zone::Utc => Some(Tz::UTC),
                    crate::calendar::tz::Zone::Fixed(offset) => Some(Tz::Fixed(offset)),
                    _ => None,
                }
            })
    }

    /// The instance identity of a date or date-time property (RECURRENCE-ID, DTSTART).
    pub fn rid_of(&self, entry: &ICalendarEntry) -> Option<Rid> {
        let dt = entry.values.first()?.as_partial_date_time()?;
        if dt.hour.is_none() {
            return Some(Rid::Date(format_datetime(dt)));
        }
        let result = dt.to_date_time()?;
        if result.offset.is_some() {
            return dt
                .to_date_time_with_tz(Tz::UTC)
                .map(|d| Rid::Instant(d.timestamp()));
        }
        match param(entry, &ICalendarParameterName::Tzid) {
            Some(tzid) => {
                let tz = self.resolve(&tzid)?;
                Some(Rid::Instant(local_instant(&tz, result.date_time)))
            }
            None => Some(Rid::Floating(result.date_time)),
        }
    }

    /// The instance identity of a component (its RECURRENCE-ID).
    pub fn rid(&self, comp: &ICalendarComponent) -> Option<Rid> {
        comp.property(&ICalendarProperty::RecurrenceId)
            .and_then(|e| self.rid_of(e))
    }
}

/// The Unix time of the wall-clock time `local` in `tz`, read as RFC 5545 §3.3.5 says: in an
/// overlap (the hour repeated when clocks go back) the first occurrence; in a gap (the hour
/// skipped when they go forward) with the offset in force before the gap, which moves the time
/// forward by the gap's length. (calcard's own conversion gives up on both.)
fn local_instant(tz: &Tz, local: NaiveDateTime) -> i64 {
    use chrono::{LocalResult, Offset, TimeZone};
    match tz.from_local_datetime(&local) {
        LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.timestamp(),
        LocalResult::None => {
            // No zone has two transitions within 12 hours: the offset half a day earlier is
            // the one before the gap.
            let before = tz
                .offset_from_utc_datetime(&(local - chrono::Duration::hours(12)))
                .fix()
                .local_minus_utc();
            (local - chrono::Duration::seconds(before.into()))
                .and_utc()
                .timestamp()
        }
    }
}

impl Zones<'_> {
    /// An override for the instance `rid` of `master`: the master's properties without its
    /// recurrence, RECURRENCE-ID and DTSTART written in the master's own form (its TZID, UTC
    /// or date), and the master's duration kept (RFC 5546 §4.4; sabre's and Cyrus's REPLY
    /// handling create such overrides the same way).
    pub fn instance_override(
        &self,
        master: &ICalendarComponent,
        rid: &Rid,
    ) -> Option<ICalendarComponent> {
        let start = master.property(&ICalendarProperty::Dtstart)?;
        let tzid = param(start, &ICalendarParameterName::Tzid);
        let value = match rid {
            Rid::Date(date) => format!(";VALUE=DATE:{date}"),
            Rid::Floating(local) => format!(":{}", local.format("%Y%m%dT%H%M%S")),
            Rid::Instant(ts) => {
                let utc = DateTime::<Utc>::from_timestamp(*ts, 0)?;
                match &tzid {
                    Some(tzid) => {
                        let tz = self.resolve(tzid)?;
                        let local = utc.with_timezone(&tz).naive_local();
                        format!(";TZID={tzid}:{}", local.format("%Y%m%dT%H%M%S"))
                    }
                    None => format!(":{}", utc.format("%Y%m%dT%H%M%SZ")),
                }
            }
        };
        let duration = match (
            self.rid_of(start),
            master
                .property(&ICalendarProperty::Dtend)
                .and_then(|e| self.rid_of(e)),
        ) {
            (Some(Rid::Instant(a)), Some(Rid::Instant(b))) => {
                Some(format!("DURATION:PT{}S", (b - a).max(0)))
            }
            (Some(Rid::Floating(a)), Some(Rid::Floating(b))) => {
                Some(format!("DURATION:PT{}S", (b - a).num_seconds().max(0)))
            }
            (Some(Rid::Date(a)), Some(Rid::Date(b))) => {
                let days = match (
                    chrono::NaiveDate::parse_from_str(&a, "%Y%m%d"),
                    chrono::NaiveDate::parse_from_str(&b, "%Y%m%d"),
                ) {
                    (Ok(a), Ok(b)) => (b - a).num_days().max(1),
                    _ => 1,
                };
                Some(format!("DURATION:P{days}D"))
            }
            _ => None,
        };
        let mut comp = master.clone();
        for name in [
            ICalendarProperty::Rrule,
            ICalendarProperty::Rdate,
            ICalendarProperty::Exdate,
        ] {
            remove(&mut comp, &name);
        }
        if let Some(duration) = duration {
            remove(&mut comp, &ICalendarProperty::Dtend);
            set_line(&mut comp, &duration);
        }
        set_line(&mut comp, &format!("DTSTART{value}"));
        let at = comp
            .entries
            .iter()
            .position(|e| e.name == ICalendarProperty::Dtstart)
            .unwrap_or(0);
        if let Some(entry) = line(&format!("RECURRENCE-ID{value}")) {
            comp.entries.insert(at, entry);
        }
        Some(comp)
    }
}

/// Whether the RECURRENCE-ID carries RANGE=THISANDFUTURE (any RANGE value means it, as
/// RFC 5545 defines no other; a bare `THISANDFUTURE` parameter is read the same way).
pub fn this_and_future(comp: &ICalendarComponent) -> bool {
    comp.property(&ICalendarProperty::RecurrenceId)
        .is_some_and(|e| {
            e.params.iter().any(|p| {
                p.name == ICalendarParameterName::Range
                    || matches!(&p.name, ICalendarParameterName::Other(n) if n.eq_ignore_ascii_case("THISANDFUTURE"))
            })
        })
}

/// The instances of the master `master` of `doc` (its RRULE/RDATE expansion, EXDATEs removed),
/// as instance identities, up to [`MAX_EXPANDED_INSTANCES`].
pub fn instances(doc: &Doc, master: usize) -> Vec<Rid> {
    let mut only = Doc {
        root: doc.root.clone(),
        nodes: doc.zones().cloned().collect(),
    };
    only.nodes.push(doc.nodes[master].clone());
    let ical = only.to_ical();
    let date_only = doc.nodes[master]
        .comp
        .property(&ICalendarProperty::Dtstart)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_partial_date_time)
        .is_some_and(|dt| dt.hour.is_none());
    // calcard expands a UTC DTSTART into floating instances: they are UTC instants.
    let utc = doc.nodes[master]
        .comp
        .property(&ICalendarProperty::Dtstart)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_partial_date_time)
        .is_some_and(|dt| dt.tz_hour.is_some());
    let expanded = ical.expand_dates(Tz::Floating, MAX_EXPANDED_INSTANCES);
    expanded
        .events
        .iter()
        .map(|event| {
            if date_only {
                Rid::Date(event.start.naive_local().format("%Y%m%d").to_string())
            } else if event.start.timezone().is_floating() && utc {
                Rid::Instant(event.start.naive_local().and_utc().timestamp())
            } else if event.start.timezone().is_floating() {
                Rid::Floating(event.start.naive_local())
            } else {
                Rid::Instant(event.start.timestamp())
            }
        })
        .collect()
}

/// Whether the master has any recurrence (RRULE or RDATE).
pub fn is_recurring(comp: &ICalendarComponent) -> bool {
    has(comp, &ICalendarProperty::Rrule) || has(comp, &ICalendarProperty::Rdate)
}

/// `now` as a DTSTAMP content line value (UTC basic form).
pub fn stamp(now: DateTime<Utc>) -> String {
    now.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Removes the scheduling parameters a sender must not send and a receiver must not keep
/// (RFC 6638 §7.1–§7.3), and the parser artefacts some libraries leave behind.
pub fn strip_transport_data(comp: &mut ICalendarComponent) {
    comp.entries.retain(|e| {
        !matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case("X-LIC-ERROR"))
    });
    for entry in &mut comp.entries {
        if matches!(
            entry.name,
            ICalendarProperty::Attendee | ICalendarProperty::Organizer
        ) {
            entry.params.retain(|p| {
                !matches!(
                    p.name,
                    ICalendarParameterName::ScheduleAgent
                        | ICalendarParameterName::ScheduleStatus
                        | ICalendarParameterName::ScheduleForceSend
                )
            });
        }
    }
}

/// Properties that are ME's own, not the organiser's (RFC 5546 §3.1.3 and Cyrus's merge):
/// kept from the stored copy when the organiser's update replaces a component.
pub const PERSONAL: [ICalendarProperty; 4] = [
    ICalendarProperty::Transp,
    ICalendarProperty::Class,
    ICalendarProperty::Color,
    ICalendarProperty::PercentComplete,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{parse, write};

    const SERIES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:America/Toronto\r\n\
BEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n\
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\n\
TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n\
END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20140701T000000Z\r\n\
DTSTART;TZID=America/Toronto:20140724T000000\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=5\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn tree_round_trip_keeps_alarms_and_zones() {
        let ical = parse(SERIES).expect("valid").remove(0);
        let doc = Doc::from_ical(&ical);
        assert_eq!(doc.nodes.len(), 2);
        assert_eq!(doc.nodes[1].children.len(), 1);
        assert_eq!(write(&doc.to_ical()), write(&ical));
    }

    #[test]
    fn recurrence_ids_in_utc_and_other_zones_name_the_same_instance() {
        let ical = parse(SERIES).expect("valid").remove(0);
        let zones = Zones::new(vec![&ical]);
        let utc = line("RECURRENCE-ID:20140725T040000Z").expect("line");
        let saigon = line("RECURRENCE-ID;TZID=Asia/Ho_Chi_Minh:20140725T110000").expect("line");
        let local = line("RECURRENCE-ID;TZID=America/Toronto:20140725T000000").expect("line");
        assert_eq!(zones.rid_of(&utc), zones.rid_of(&local));
        assert_eq!(zones.rid_of(&saigon), zones.rid_of(&local));
        let doc = Doc::from_ical(&ical);
        let all = instances(&doc, doc.master().expect("master"));
        assert_eq!(all.len(), 5);
        assert!(all.contains(&zones.rid_of(&utc).expect("rid")));
    }

    #[test]
    fn times_in_a_dst_gap_or_overlap_are_read_as_rfc_5545_says() {
        let zones = Zones::new(Vec::new());
        let at = |text: &str| match zones.rid_of(&line(text).expect("line")) {
            Some(Rid::Instant(t)) => t,
            other => panic!("{text}: {other:?}"),
        };
        // Europe/Berlin skips 02:00-03:00 on 28 March 2027: 02:30 is read with the winter
        // offset (+01:00), i.e. 01:30 UTC, the same instant as 03:30 summer time.
        assert_eq!(
            at("DTSTART;TZID=Europe/Berlin:20270328T023000"),
            at("DTSTART:20270328T013000Z")
        );
        assert_eq!(
            at("DTSTART;TZID=Europe/Berlin:20270328T023000"),
            at("DTSTART;TZID=Europe/Berlin:20270328T033000")
        );
        // ... and repeats 02:00-03:00 on 31 October 2027: 02:30 is the first one (summer time,
        // 00:30 UTC).
        assert_eq!(
            at("RECURRENCE-ID;TZID=Europe/Berlin:20271031T023000"),
            at("RECURRENCE-ID:20271031T003000Z")
        );
    }

    #[test]
    fn keys_order_by_sequence_then_dtstamp() {
        let a = Key {
            sequence: 1,
            dtstamp: "20270101T000000Z".into(),
            last_modified: String::new(),
        };
        let b = Key {
            sequence: 0,
            dtstamp: "20280101T000000Z".into(),
            last_modified: String::new(),
        };
        assert_eq!(order(&a, &b), Order::Newer);
        assert_eq!(order(&b, &a), Order::Older);
        assert_eq!(order(&a, &a.clone()), Order::Same);
    }
}
