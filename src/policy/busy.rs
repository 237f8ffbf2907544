//! Busy time from calendar objects: the intervals an object occupies, found by expanding its
//! recurrence with [`crate::calendar::recur`], in the form the store's busy index keeps
//! ([`BusyInterval`]).
//!
//! The pipeline computes these for every object it stores and hands them to the store in
//! the same commit, so a conflict check is one index query per requested instance instead
//! of a scan of the mailbox.

use crate::calendar::recur::{self, Limits, Occurrence, RecurError};
use crate::calendar::{CalAddress, ICalendar};
use crate::store::{BusyInterval, BusyUpdate, Transparency};
use calcard::icalendar::{
    ICalendarParameterName, ICalendarParameterValue, ICalendarParticipationStatus,
    ICalendarProperty,
};
use chrono::{DateTime, Duration, Utc};

/// How far before `now` the index keeps instances: an event running right now still
/// conflicts with a request for its remaining time.
pub const LOOKBACK: Duration = Duration::days(1);

/// The window `[now - LOOKBACK, now + horizon_days)` the busy index covers.
pub fn window(now: DateTime<Utc>, horizon_days: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        now - LOOKBACK,
        now + Duration::days(i64::from(horizon_days.max(1))),
    )
}

/// The instances of `ical` in `[from, to)`, sorted by start (cancelled ones included,
/// flagged).
pub fn occurrences(
    ical: &ICalendar,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Occurrence>, RecurError> {
    recur::expand(ical, from, to, &Limits::default())
}

/// The property on a stored series' master that marks until when it is booked: a series
/// accepted although it reaches beyond the booking window (the scheduling horizon not
/// enforced) books only its instances starting up to this UTC time, as its REPLY told the
/// organiser. Privacy scrubbing keeps it (an `X-IMIPD-` property).
pub const BOOKED_UNTIL: &str = "X-IMIPD-BOOKED-UNTIL";

/// The [`BOOKED_UNTIL`] time of an object's master, if set.
pub fn booked_until(ical: &ICalendar) -> Option<DateTime<Utc>> {
    ical.components
        .iter()
        .filter(|c| c.property(&ICalendarProperty::RecurrenceId).is_none())
        .find_map(|c| {
            c.entries
                .iter()
                .find(|e| matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case(BOOKED_UNTIL)))
        })
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .and_then(|t| chrono::NaiveDateTime::parse_from_str(t.trim(), "%Y%m%dT%H%M%SZ").ok())
        .map(|t| t.and_utc())
}

/// Whether `me` (any of the mailbox's addresses) declined the component the occurrence
/// comes from.
fn declined_by(ical: &ICalendar, occurrence: &Occurrence, me: &[CalAddress]) -> bool {
    ical.components
        .get(occurrence.component)
        .is_some_and(|comp| {
            comp.properties(&ICalendarProperty::Attendee).any(|e| {
                crate::calendar::view::address_of(e).is_some_and(|a| me.contains(&a))
                    && matches!(
                        e.parameter(&ICalendarParameterName::Partstat),
                        Some(ICalendarParameterValue::Partstat(
                            ICalendarParticipationStatus::Declined
                        ))
                    )
            })
        })
}

/// The intervals `ical` occupies for the mailbox whose addresses are `me` in `[from, to)`:
/// cancelled instances, transparent ones, those `me` declined and those starting after the
/// object's [`BOOKED_UNTIL`] are free. Floating times
/// are read as UTC. An object whose recurrence cannot be expanded occupies nothing (the
/// engine refuses such objects on arrival; one stored before is not allowed to block the
/// resource forever).
pub fn intervals(
    ical: &ICalendar,
    me: &[CalAddress],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<BusyInterval> {
    let Ok(found) = occurrences(ical, from, to) else {
        return Vec::new();
    };
    let until = booked_until(ical);
    found
        .iter()
        .filter(|o| !o.cancelled && !o.transparent && !declined_by(ical, o, me))
        .filter(|o| until.is_none_or(|until| o.start_utc <= until))
        .map(|o| {
            let start = o.start_utc.timestamp();
            BusyInterval {
                start,
                end: o.end_utc.timestamp().max(start + 1),
                recurrence_id: o.is_override.then(|| o.recurrence_id.to_rfc3339()),
                transparency: Transparency::Opaque,
            }
        })
        .collect()
}

/// The index update for one stored object of `mailbox`: all its busy intervals over the
/// index window (an empty list removes what the UID had, e.g. when it was cancelled or
/// declined).
pub fn update(
    mailbox: &str,
    uid: &str,
    ical: &ICalendar,
    me: &[CalAddress],
    now: DateTime<Utc>,
    horizon_days: u32,
) -> BusyUpdate {
    let (from, to) = window(now, horizon_days);
    BusyUpdate {
        mailbox: mailbox.to_string(),
        uid: uid.to_string(),
        intervals: intervals(ical, me, from, to),
    }
}
