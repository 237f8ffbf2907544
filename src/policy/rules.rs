//! The rule families of a [`Policy`]: who may book, the time rules, and conflicts. Each
//! returns the decline (with its reason) or lets the request through.

use super::busy::{self, LOOKBACK};
use super::{
    Policy, PolicyAnswer, Request, STATUS_CONFLICT, STATUS_NO_AUTHORITY, STATUS_POLICY,
    WorkingHours,
};
use crate::calendar::CalAddress;
use crate::calendar::recur::Occurrence;
use crate::store::BusyEntry;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

/// How far past the booking window a series is expanded to find out whether it reaches
/// beyond it (a yearly series is seen; rarer rules are treated as ending in the window).
const BEYOND_WINDOW: Duration = Duration::days(400);

/// Whether `domain` is `pattern` or one of its subdomains, label by label: `corp.test`
/// covers `corp.test` and `eu.corp.test`, never `evilcorp.test`.
pub fn domain_matches(domain: &str, pattern: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern
        .trim()
        .trim_start_matches('@')
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if pattern.is_empty() {
        return false;
    }
    domain == pattern
        || domain
            .strip_suffix(&pattern)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The domain of an address.
fn domain_of(address: &CalAddress) -> &str {
    address
        .email()
        .rsplit_once('@')
        .map_or("", |(_, domain)| domain)
}

/// Whether a list entry (an address or a domain) covers `address`.
pub fn entry_matches(entry: &str, address: &CalAddress) -> bool {
    let entry = entry.trim();
    if entry.contains('@') && !entry.starts_with('@') {
        CalAddress::parse(entry).is_some_and(|e| &e == address)
    } else {
        domain_matches(domain_of(address), entry)
    }
}

/// Whether the message is authenticated: the topmost Authentication-Results header of a
/// trusted authserv-id says `dmarc=pass` (for the From domain when it names one) or
/// `auth=pass`.
pub fn authenticated(policy: &Policy, sender: &crate::mail::SenderFacts) -> bool {
    let Some(results) = sender.trusted_results(&policy.trusted_authserv_ids).next() else {
        return false;
    };
    let from_domain = sender
        .from
        .as_deref()
        .and_then(|f| f.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase());
    results.results.iter().any(|r| {
        r.result.eq_ignore_ascii_case("pass")
            && match r.method.as_str() {
                "auth" => true,
                "dmarc" => r
                    .properties
                    .iter()
                    .find(|(name, _)| name == "header.from")
                    .is_none_or(|(_, value)| {
                        from_domain.as_deref() == Some(value.to_ascii_lowercase().as_str())
                    }),
                _ => false,
            }
    })
}

/// Who may book: authentication, the deny list, the allow list, external organisers.
pub fn who(policy: &Policy, request: &Request<'_>) -> Option<PolicyAnswer> {
    if policy.require_authenticated && !authenticated(policy, request.sender) {
        return Some(PolicyAnswer::decline(
            "declined: this resource accepts bookings only from authenticated senders, and this message did not pass DMARC",
            STATUS_NO_AUTHORITY,
        ));
    }
    let restricted = !policy.allow.is_empty() || !policy.allow_external;
    let Some(organizer) = request.organizer else {
        return restricted.then(|| {
            PolicyAnswer::decline(
                "declined: the request names no organiser, and this resource accepts bookings only from known organisers",
                STATUS_NO_AUTHORITY,
            )
        });
    };
    if let Some(entry) = policy.deny.iter().find(|e| entry_matches(e, organizer)) {
        return Some(PolicyAnswer::decline(
            format!(
                "declined: {} may not book this resource (deny list: {})",
                organizer.email(),
                entry.trim()
            ),
            STATUS_NO_AUTHORITY,
        ));
    }
    if !policy.allow.is_empty() && !policy.allow.iter().any(|e| entry_matches(e, organizer)) {
        return Some(PolicyAnswer::decline(
            format!(
                "declined: {} is not on the list of organisers who may book this resource",
                organizer.email()
            ),
            STATUS_NO_AUTHORITY,
        ));
    }
    if !policy.allow_external {
        let domain = domain_of(organizer);
        let internal = request
            .me
            .iter()
            .any(|me| domain_matches(domain, domain_of(me)));
        if !internal {
            return Some(PolicyAnswer::decline(
                format!(
                    "declined: this resource accepts bookings only from its own organisation; {} is external",
                    organizer.email()
                ),
                STATUS_NO_AUTHORITY,
            ));
        }
    }
    None
}

/// The instances of a request that the conflict check must look at, or the decline of a
/// time rule. Past instances of a series are ignored; a single booking in the past is
/// declined.
pub fn time(
    policy: &Policy,
    ical: &crate::calendar::ICalendar,
    now: DateTime<Utc>,
) -> Result<Vec<Occurrence>, PolicyAnswer> {
    let window_end = match policy.booking_window_days {
        0 => busy::window(now, policy.index_days()).1,
        days => now + Duration::days(i64::from(days)),
    };
    // A request whose times cannot be expanded (no DTSTART, an unknown zone, a recurrence
    // bomb) is the engine's to refuse or bound; it books nothing in the busy index, so the
    // time and conflict rules have nothing to judge. A VTODO occupies no time either.
    let Ok(found) = busy::occurrences(ical, now - LOOKBACK, window_end + BEYOND_WINDOW) else {
        return Ok(Vec::new());
    };
    if !ical
        .components
        .iter()
        .any(|c| c.component_type == calcard::icalendar::ICalendarComponentType::VEvent)
    {
        return Ok(Vec::new());
    }
    let live: Vec<Occurrence> = found.into_iter().filter(|o| !o.cancelled).collect();
    let recurring = live.len() > 1 || live.iter().any(|o| o.is_override);
    let is_series = recurring || rrule_present(ical);
    if is_series && !policy.allow_recurring {
        return Err(PolicyAnswer::decline(
            "declined: this resource does not accept recurring meetings",
            STATUS_POLICY,
        ));
    }
    let future: Vec<Occurrence> = live.into_iter().filter(|o| o.start_utc >= now).collect();
    let Some(first) = future.first() else {
        let later = busy::occurrences(ical, window_end + BEYOND_WINDOW, now + Duration::days(3650))
            .is_ok_and(|found| found.iter().any(|o| !o.cancelled));
        return Err(PolicyAnswer::decline(
            if later {
                format!(
                    "declined: bookings are accepted at most {} days ahead",
                    policy.booking_window_days
                )
            } else {
                "declined: the booking lies in the past".to_string()
            },
            STATUS_POLICY,
        ));
    };
    if !is_series && first.start_utc > window_end {
        return Err(PolicyAnswer::decline(
            format!(
                "declined: bookings are accepted at most {} days ahead; this one starts {}",
                policy.booking_window_days,
                describe_start(first, policy.working_hours.as_ref())
            ),
            STATUS_POLICY,
        ));
    }
    let (inside, beyond): (Vec<Occurrence>, Vec<Occurrence>) =
        future.into_iter().partition(|o| o.start_utc <= window_end);
    if !beyond.is_empty() && policy.enforce_scheduling_horizon {
        return Err(PolicyAnswer::decline(
            format!(
                "declined: bookings are accepted at most {} days ahead; this series continues beyond {}",
                policy.booking_window_days,
                window_end.format("%a %-d %b %Y")
            ),
            STATUS_POLICY,
        ));
    }
    for o in &inside {
        let minutes = (o.end_utc - o.start_utc).num_minutes();
        if minutes < i64::from(policy.min_duration_minutes) {
            return Err(PolicyAnswer::decline(
                format!(
                    "declined: bookings must last at least {} minutes; {} lasts {minutes}",
                    policy.min_duration_minutes,
                    describe(o, policy.working_hours.as_ref())
                ),
                STATUS_POLICY,
            ));
        }
        if policy.max_duration_minutes > 0 && minutes > i64::from(policy.max_duration_minutes) {
            return Err(PolicyAnswer::decline(
                format!(
                    "declined: bookings may last at most {} minutes; {} lasts {minutes}",
                    policy.max_duration_minutes,
                    describe(o, policy.working_hours.as_ref())
                ),
                STATUS_POLICY,
            ));
        }
        if let Some(hours) = &policy.working_hours
            && !within_hours(o, hours)
        {
            return Err(PolicyAnswer::decline(
                format!(
                    "declined: bookings are accepted only {}; {} is outside",
                    describe_hours(hours),
                    describe(o, Some(hours))
                ),
                STATUS_POLICY,
            ));
        }
    }
    Ok(inside)
}

/// The note for a series accepted although it reaches beyond the booking window (the
/// scheduling horizon not enforced): "accepted: instances after Sat 3 Jul 2027 lie beyond
/// the 180-day booking window and are not booked", with the window's end. `None` when
/// nothing lies beyond.
pub fn truncation(
    policy: &Policy,
    ical: &crate::calendar::ICalendar,
    now: DateTime<Utc>,
) -> Option<(String, DateTime<Utc>)> {
    if policy.booking_window_days == 0 || policy.enforce_scheduling_horizon {
        return None;
    }
    let window_end = now + Duration::days(i64::from(policy.booking_window_days));
    let beyond = busy::occurrences(ical, window_end, window_end + BEYOND_WINDOW).ok()?;
    let first = beyond
        .iter()
        .find(|o| !o.cancelled && o.start_utc > window_end)?;
    let zone = policy
        .working_hours
        .as_ref()
        .map_or(chrono_tz::UTC, |h| h.time_zone);
    let last_day = zone.from_utc_datetime(&window_end.naive_utc());
    Some((
        format!(
            "accepted: instances after {} lie beyond the {}-day booking window and are not booked (the first one not booked is {})",
            last_day.format("%a %-d %b %Y"),
            policy.booking_window_days,
            describe(first, policy.working_hours.as_ref())
        ),
        window_end,
    ))
}

/// Whether the object's master carries an RRULE or RDATE (a series even when only one of
/// its instances falls in the looked-at window).
fn rrule_present(ical: &crate::calendar::ICalendar) -> bool {
    use calcard::icalendar::ICalendarProperty;
    ical.components.iter().any(|c| {
        c.property(&ICalendarProperty::Rrule).is_some()
            || c.property(&ICalendarProperty::Rdate).is_some()
    })
}

/// Whether an instance lies inside the working hours: on one working day, between start and
/// end, in the hours' zone.
fn within_hours(o: &Occurrence, hours: &WorkingHours) -> bool {
    let start = hours.time_zone.from_utc_datetime(&o.start_utc.naive_utc());
    let end = hours.time_zone.from_utc_datetime(&o.end_utc.naive_utc());
    let same_day = start.date_naive() == end.date_naive()
        || (end.date_naive() == start.date_naive().succ_opt().unwrap_or(start.date_naive())
            && end.time() == chrono::NaiveTime::MIN
            && hours.end == chrono::NaiveTime::MIN);
    same_day
        && !o.all_day
        && hours.days.contains(&start.weekday())
        && start.time() >= hours.start
        && end.time() <= hours.end
}

/// The working hours in words: "Mon–Fri 08:00–17:00 Europe/Berlin".
pub fn describe_hours(hours: &WorkingHours) -> String {
    let days: Vec<String> = hours.days.iter().map(|d| d.to_string()).collect();
    format!(
        "on {} {}–{} {}",
        days.join(", "),
        hours.start.format("%H:%M"),
        hours.end.format("%H:%M"),
        hours.time_zone.name()
    )
}

/// An interval in words, in the working hours' zone or UTC: "Tue 3 Dec 15:00–16:00 UTC".
pub fn describe_span(start: i64, end: i64, hours: Option<&WorkingHours>) -> String {
    let zone = hours.map_or(chrono_tz::UTC, |h| h.time_zone);
    let (Some(s), Some(e)) = (
        DateTime::from_timestamp(start, 0),
        DateTime::from_timestamp(end, 0),
    ) else {
        return format!("{start}..{end}");
    };
    let s = zone.from_utc_datetime(&s.naive_utc());
    let e = zone.from_utc_datetime(&e.naive_utc());
    let end_text = if s.date_naive() == e.date_naive() {
        e.format("%H:%M").to_string()
    } else {
        e.format("%a %-d %b %H:%M").to_string()
    };
    format!(
        "{}–{end_text} {}",
        s.format("%a %-d %b %Y %H:%M"),
        zone.name()
    )
}

fn describe(o: &Occurrence, hours: Option<&WorkingHours>) -> String {
    describe_span(o.start_utc.timestamp(), o.end_utc.timestamp(), hours)
}

fn describe_start(o: &Occurrence, hours: Option<&WorkingHours>) -> String {
    describe(o, hours)
}

/// The most bookings of `entries` that overlap at one instant inside `[from, to)`.
fn depth(entries: &[BusyEntry], from: i64, to: i64) -> usize {
    let mut edges: Vec<(i64, i32)> = Vec::with_capacity(entries.len() * 2);
    for e in entries {
        edges.push((e.interval.start.max(from), 1));
        edges.push((e.interval.end.max(e.interval.start).min(to), -1));
    }
    // Ends sort before starts at the same instant: back-to-back bookings do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// What the conflict check found.
pub enum Conflicts {
    /// No conflict, or conflicts the policy accepts.
    None,
    /// The request is declined.
    Decline(PolicyAnswer),
    /// A series accepted within the thresholds, these instances declined.
    Instances(Vec<super::DeclinedInstance>),
}

/// Conflicts over the busy index: each instance is one query; an instance conflicts when
/// the bookings overlapping it already reach the capacity at some instant. A single booking
/// that conflicts is declined; a series is declined when its conflicts exceed
/// `max_conflict_instances` or `conflict_percentage_allowed`.
///
/// With `organizer_info` set and `organizer_of` given, each sentence names the conflicting
/// booking's organiser ("... on Tue 3 Dec 15:00–16:00 UTC, organised by bob@corp.test").
pub fn conflicts<E>(
    policy: &Policy,
    instances: &[Occurrence],
    busy: &dyn Fn(i64, i64) -> Result<Vec<BusyEntry>, E>,
    now: DateTime<Utc>,
    organizer_of: Option<&super::OrganizerOf<'_>>,
) -> Result<Conflicts, E> {
    if policy.allow_conflicts {
        return Ok(Conflicts::None);
    }
    let capacity = policy.capacity.max(1) as usize;
    let checked: Vec<&Occurrence> = instances.iter().filter(|o| !o.transparent).collect();
    let mut conflicting: Vec<(&Occurrence, BusyEntry)> = Vec::new();
    for o in &checked {
        let start = o.start_utc.timestamp();
        let end = o.end_utc.timestamp().max(start + 1);
        let found = busy(start, end)?;
        if depth(&found, start, end) >= capacity
            && let Some(first) = found.into_iter().next()
        {
            conflicting.push((o, first));
        }
    }
    let Some((first, existing)) = conflicting.first() else {
        return Ok(Conflicts::None);
    };
    let hours = policy.working_hours.as_ref();
    let booking = |existing: &BusyEntry| {
        let span = describe_span(
            existing.interval.start,
            existing.interval.end.max(existing.interval.start),
            hours,
        );
        match organizer_of
            .filter(|_| policy.organizer_info)
            .and_then(|of| of(&existing.uid))
        {
            Some(organizer) => format!("{span}, organised by {organizer}"),
            None => span,
        }
    };
    let clash = booking(existing);
    let total = checked.len();
    let count = conflicting.len();
    if total <= 1 {
        let mut reason = format!("declined: conflicts with an existing booking on {clash}");
        let counter = if policy.counter_proposals {
            free_slot(policy, first, busy, now)?
        } else {
            None
        };
        if let Some(slot) = &counter {
            reason.push_str(&format!(
                "; the next free time is {} (proposed in a counter-proposal)",
                describe_span(slot.start.timestamp(), slot.end.timestamp(), hours)
            ));
        }
        return Ok(Conflicts::Decline(PolicyAnswer::Decline {
            reason,
            status: STATUS_CONFLICT.to_string(),
            counter,
        }));
    }
    let within_count = count <= policy.max_conflict_instances as usize;
    let within_share = count * 100 <= policy.conflict_percentage_allowed as usize * total;
    if within_count && within_share {
        if !policy.decline_conflicting_instances {
            return Ok(Conflicts::None);
        }
        return Ok(Conflicts::Instances(
            conflicting
                .iter()
                .map(|(o, existing)| super::DeclinedInstance {
                    recurrence_id: o.recurrence_id,
                    all_day: o.all_day,
                    reason: format!(
                        "declined: this instance ({}) conflicts with an existing booking on {}; the rest of the series is accepted",
                        describe(o, hours),
                        booking(existing)
                    ),
                    status: STATUS_CONFLICT.to_string(),
                })
                .collect(),
        ));
    }
    Ok(Conflicts::Decline(PolicyAnswer::decline(
        format!(
            "declined: {count} of {total} instances conflict with existing bookings (allowed: at most {} instances and {}%); the first, {}, conflicts with an existing booking on {clash}",
            policy.max_conflict_instances,
            policy.conflict_percentage_allowed,
            describe(first, hours)
        ),
        STATUS_CONFLICT,
    )))
}

/// The most candidate slots tried when looking for a counter-proposal.
const MAX_CANDIDATES: usize = 500;

/// The next free slot of `wanted`'s length from its start on, inside the working hours and
/// the booking window: each candidate is one index query; a busy candidate moves to the
/// end of the earliest booking in the way, one outside the hours to the next quarter hour.
fn free_slot<E>(
    policy: &Policy,
    wanted: &Occurrence,
    busy: &dyn Fn(i64, i64) -> Result<Vec<BusyEntry>, E>,
    now: DateTime<Utc>,
) -> Result<Option<super::Slot>, E> {
    let length = (wanted.end_utc - wanted.start_utc).num_seconds().max(60);
    let limit = match policy.booking_window_days {
        0 => now + Duration::days(i64::from(policy.index_days())),
        days => now + Duration::days(i64::from(days)),
    }
    .timestamp();
    let capacity = policy.capacity.max(1) as usize;
    let mut start = wanted.start_utc.timestamp().max(now.timestamp());
    for _ in 0..MAX_CANDIDATES {
        if start > limit {
            return Ok(None);
        }
        let end = start + length;
        let (Some(s), Some(e)) = (
            DateTime::from_timestamp(start, 0),
            DateTime::from_timestamp(end, 0),
        ) else {
            return Ok(None);
        };
        let candidate = Occurrence {
            start_utc: s,
            end_utc: e,
            ..wanted.clone()
        };
        if let Some(hours) = &policy.working_hours
            && !within_hours(&candidate, hours)
        {
            let quarter = 15 * 60;
            start = (start / quarter + 1) * quarter;
            continue;
        }
        let found = busy(start, end)?;
        if depth(&found, start, end) < capacity {
            return Ok(Some(super::Slot { start: s, end: e }));
        }
        start = found
            .iter()
            .map(|b| b.interval.end)
            .filter(|&t| t > start)
            .min()
            .unwrap_or(start + 15 * 60);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_match_on_whole_labels_only() {
        assert!(domain_matches("corp.test", "corp.test"));
        assert!(domain_matches("eu.corp.test", "corp.test"));
        assert!(domain_matches("EU.Corp.Test", "@corp.test"));
        assert!(!domain_matches("evilcorp.test", "corp.test"));
        assert!(!domain_matches("corp.test.evil", "corp.test"));
        assert!(!domain_matches("corp.test", ""));
    }

    #[test]
    fn an_address_entry_matches_that_address_only() {
        let alice = CalAddress::parse("Alice@Corp.Test").expect("an address");
        assert!(entry_matches("alice@corp.test", &alice));
        assert!(!entry_matches("bob@corp.test", &alice));
        assert!(entry_matches("corp.test", &alice));
    }
}
