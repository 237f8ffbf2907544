//! Required properties and values: what calcard accepts but scheduling cannot use.
//!
//! calcard is lenient (right for reading what real clients send); this module lists what is
//! missing or wrong as [`Defect`]s, so that the iTIP engine can refuse what it must (no UID,
//! no DTSTART in a REQUEST, an unknown time zone) and tolerate the rest (a simple mailer's
//! missing DTSTAMP is a warning: the invitation stays usable).

use super::tz::{Resolver, naive_of};
use calcard::common::IanaString;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarProperty,
    ICalendarValue,
};
use std::collections::HashSet;
use std::fmt;

/// How serious a defect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The object is usable; the defect is recorded (e.g. a missing DTSTAMP).
    Warning,
    /// The object cannot be scheduled as it is (e.g. no UID, an unknown time zone).
    Error,
}

/// One thing wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    pub severity: Severity,
    /// The component, e.g. `VEVENT`.
    pub component: String,
    /// The component's UID, when it has one.
    pub uid: Option<String>,
    /// The property concerned, e.g. `DTSTAMP`.
    pub property: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: {}", self.component)?;
        if let Some(uid) = &self.uid {
            write!(f, " '{uid}'")?;
        }
        if let Some(property) = &self.property {
            write!(f, " {property}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Lists the defects of one VCALENDAR.
pub fn defects(ical: &ICalendar) -> Vec<Defect> {
    let mut out = Vec::new();
    let resolver = Resolver::new(ical);
    let method = ical
        .components
        .first()
        .and_then(|root| root.property(&ICalendarProperty::Method))
        .and_then(|e| e.values.first())
        .map(|v| match v {
            ICalendarValue::Method(m) => m.as_str().to_ascii_uppercase(),
            other => other.as_text().unwrap_or_default().to_ascii_uppercase(),
        });
    if let Some(root) = ical.components.first() {
        if root.property(&ICalendarProperty::Version).is_none() {
            out.push(defect(
                Severity::Warning,
                root,
                Some("VERSION"),
                "missing (expected VERSION:2.0)",
            ));
        }
        if root.property(&ICalendarProperty::Prodid).is_none() {
            out.push(defect(Severity::Warning, root, Some("PRODID"), "missing"));
        }
    }
    let mut instances: HashSet<(String, Option<String>)> = HashSet::new();
    for component in &ical.components {
        let scheduling = matches!(
            component.component_type,
            ICalendarComponentType::VEvent
                | ICalendarComponentType::VTodo
                | ICalendarComponentType::VJournal
                | ICalendarComponentType::VFreebusy
        );
        if !scheduling {
            continue;
        }
        match component.uid() {
            None => out.push(defect(
                Severity::Error,
                component,
                Some("UID"),
                "missing (every scheduling component needs a UID)",
            )),
            Some(uid) => {
                let rid = component
                    .property(&ICalendarProperty::RecurrenceId)
                    .and_then(super::view::datetime_of);
                if !instances.insert((uid.to_string(), rid.clone())) {
                    out.push(defect(
                        Severity::Error,
                        component,
                        Some("RECURRENCE-ID"),
                        &match rid {
                            Some(rid) => format!("two components for the instance {rid}"),
                            None => {
                                "two master components (expected one without RECURRENCE-ID)".into()
                            }
                        },
                    ));
                }
            }
        }
        if component.property(&ICalendarProperty::Dtstamp).is_none() {
            out.push(defect(
                Severity::Warning,
                component,
                Some("DTSTAMP"),
                "missing (read as the time the message arrived; it never wins a DTSTAMP tie-break)",
            ));
        }
        let needs_start = component.component_type == ICalendarComponentType::VEvent
            && !matches!(
                method.as_deref(),
                Some("REPLY" | "CANCEL" | "REFRESH" | "DECLINECOUNTER")
            );
        if needs_start && component.property(&ICalendarProperty::Dtstart).is_none() {
            out.push(defect(
                Severity::Error,
                component,
                Some("DTSTART"),
                "missing (an event needs a start to be booked)",
            ));
        }
        if component.property(&ICalendarProperty::Dtend).is_some()
            && component.property(&ICalendarProperty::Duration).is_some()
        {
            out.push(defect(
                Severity::Error,
                component,
                Some("DURATION"),
                "given together with DTEND (RFC 5545 allows one of them)",
            ));
        }
        for property in [
            ICalendarProperty::Dtstart,
            ICalendarProperty::Dtend,
            ICalendarProperty::Due,
            ICalendarProperty::RecurrenceId,
            ICalendarProperty::Dtstamp,
            ICalendarProperty::Exdate,
            ICalendarProperty::Rdate,
        ] {
            for entry in component.properties(&property) {
                check_time_entry(&resolver, component, entry, &mut out);
            }
        }
        check_order(&resolver, component, &mut out);
    }
    out
}

fn check_time_entry(
    resolver: &Resolver,
    component: &ICalendarComponent,
    entry: &ICalendarEntry,
    out: &mut Vec<Defect>,
) {
    let name = entry.name.as_str();
    for value in &entry.values {
        let complete = match value {
            ICalendarValue::PartialDateTime(v) => naive_of(v).is_ok(),
            ICalendarValue::Period(_) => true,
            _ => false,
        };
        if !complete {
            let shown = match value {
                ICalendarValue::Text(t) => t.clone(),
                other => format!("{other:?}"),
            };
            out.push(defect(
                Severity::Error,
                component,
                Some(name),
                &format!("invalid value '{shown}' (expected a DATE or DATE-TIME such as 20270104T090000Z)"),
            ));
        }
    }
    if let Some(tzid) = entry.tz_id()
        && let Err(e) = resolver.resolve(tzid)
    {
        out.push(defect(
            Severity::Error,
            component,
            Some(name),
            &e.to_string(),
        ));
    }
}

fn check_order(resolver: &Resolver, component: &ICalendarComponent, out: &mut Vec<Defect>) {
    let utc = super::tz::Zone::Utc;
    let at = |p: ICalendarProperty| {
        component
            .property(&p)
            .and_then(|e| resolver.entry_to_utc(e, &utc).ok())
    };
    if let (Some(start), Some(end)) = (at(ICalendarProperty::Dtstart), at(ICalendarProperty::Dtend))
        && end < start
    {
        out.push(defect(
            Severity::Error,
            component,
            Some("DTEND"),
            &format!("{end} is before DTSTART {start}"),
        ));
    }
}

fn defect(
    severity: Severity,
    component: &ICalendarComponent,
    property: Option<&str>,
    message: &str,
) -> Defect {
    Defect {
        severity,
        component: component.component_type.as_str().to_string(),
        uid: component.uid().map(str::to_string),
        property: property.map(str::to_string),
        message: message.to_string(),
    }
}
