//! Busy time from calendar objects: the intervals an object occupies, found by expanding its
//! recurrence (calcard), and the first conflict between a request and what is stored.
//!
//! This is the scan the default policy ("accept when free, decline on conflict") needs until
//! the store keeps a busy index: it reads the stored objects it is given, so its cost grows
//! with the mailbox.

use crate::calendar::{CalAddress, ICalendar};
use calcard::common::timezone::Tz;
use calcard::icalendar::dates::TimeOrDelta;
use calcard::icalendar::{ICalendarParameterName, ICalendarParameterValue, ICalendarProperty};

/// The most instances of one object expanded when looking for conflicts.
pub const MAX_INSTANCES: usize = 2_000;

/// One busy interval, in UTC seconds, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// Start, UTC seconds.
    pub start: i64,
    /// End (exclusive), UTC seconds.
    pub end: i64,
}

/// The intervals `ical` occupies for the mailbox whose addresses are `me`: cancelled
/// components, transparent ones and those `me` declined are free. Floating times are read
/// as UTC.
pub fn intervals(ical: &ICalendar, me: &[CalAddress]) -> Vec<Busy> {
    let expanded = ical.expand_dates(Tz::UTC, MAX_INSTANCES);
    expanded
        .events
        .iter()
        .filter(|event| {
            ical.components
                .get(event.comp_id as usize)
                .is_some_and(|comp| {
                    let cancelled = comp.status().is_some_and(|s| {
                        matches!(s, calcard::icalendar::ICalendarStatus::Cancelled)
                    });
                    let transparent = comp.transparency().is_some_and(|t| {
                        matches!(t, calcard::icalendar::ICalendarTransparency::Transparent)
                    });
                    let declined = comp.properties(&ICalendarProperty::Attendee).any(|e| {
                        crate::calendar::view::address_of(e).is_some_and(|a| me.contains(&a))
                            && matches!(
                                e.parameter(&ICalendarParameterName::Partstat),
                                Some(ICalendarParameterValue::Partstat(
                                    calcard::icalendar::ICalendarParticipationStatus::Declined
                                ))
                            )
                    });
                    !cancelled && !transparent && !declined
                })
        })
        .map(|event| {
            let start = event.start.timestamp();
            let end = match &event.end {
                TimeOrDelta::Time(end) => end.timestamp(),
                TimeOrDelta::Delta(delta) => start + delta.num_seconds(),
            };
            Busy {
                start,
                end: end.max(start + 1),
            }
        })
        .collect()
}

/// The first interval of `request` that overlaps one of `busy` and ends after `now`.
pub fn first_conflict(request: &[Busy], busy: &[Busy], now: i64) -> Option<Busy> {
    request
        .iter()
        .filter(|r| r.end > now)
        .find(|r| busy.iter().any(|b| b.start < r.end && r.start < b.end))
        .cloned()
}
