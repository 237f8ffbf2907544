//! Recurrence expansion over a window: RRULE (with the `rrule` crate), RDATE, EXDATE and
//! RECURRENCE-ID overrides, with hard caps.
//!
//! Rules are expanded in wall-clock time (RFC 5545 §3.3.10: a daily 10:00 meeting stays at
//! 10:00 across a DST change) and every instance is then placed on the UTC time line with its
//! zone ([`super::tz`]), which also handles zones only a VTIMEZONE describes. A UTC `UNTIL`
//! is converted to the zone's wall-clock time first, so that the last instance of a zone ahead
//! of UTC is kept (calcard's own expansion compares it in floating time and drops it).
//!
//! Overrides are merged by UID and RECURRENCE-ID (compared as UTC instants), whatever their
//! SEQUENCE (calcard keys them by SEQUENCE too and then shows both the master instance and
//! the override).

use super::types::Uid;
use super::tz::{Resolver, TzError, Zone, naive_of};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarParameterValue, ICalendarPeriod, ICalendarProperty, ICalendarRecurrenceRule,
    ICalendarStatus, ICalendarTransparency, ICalendarValue,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// Hard caps on one expansion.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most instances returned for one window; more is an error, not a silent cut.
    pub max_instances: usize,
    /// The longest window that may be asked for.
    pub max_window: Duration,
    /// The most rule iterations (instances before the window included) per UID.
    pub max_iterations: usize,
}

impl Default for Limits {
    /// 10 000 instances, a window of at most 10 years (3 660 days), 200 000 iterations.
    fn default() -> Self {
        Limits {
            max_instances: 10_000,
            max_window: Duration::days(3660),
            max_iterations: 200_000,
        }
    }
}

/// One instance of an event on the UTC time line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The UID of the event.
    pub uid: Uid,
    /// The instance's RECURRENCE-ID: its original start (for a single event, its start).
    pub recurrence_id: DateTime<Utc>,
    pub start_utc: DateTime<Utc>,
    pub end_utc: DateTime<Utc>,
    /// Whether the instance comes from a component with a RECURRENCE-ID.
    pub is_override: bool,
    /// TRANSP:TRANSPARENT: the instance does not make the calendar busy.
    pub transparent: bool,
    /// STATUS:CANCELLED (on the instance or the master).
    pub cancelled: bool,
    /// Whether DTSTART is a DATE (an all-day event).
    pub all_day: bool,
    /// The component's index in [`ICalendar::components`].
    pub component: usize,
}

/// Why an object could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurError {
    /// The window ends before it starts, or is longer than the limit.
    #[error("the window {start} .. {end} is empty or longer than the limit of {max_days} days")]
    BadWindow {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        max_days: i64,
    },
    /// A VEVENT has no usable DTSTART.
    #[error("event '{uid}' has no DTSTART (expected a DATE or DATE-TIME value)")]
    NoStart { uid: String },
    /// A time could not be resolved.
    #[error("event '{uid}': {source}")]
    Time {
        uid: String,
        #[source]
        source: TzError,
    },
    /// The RRULE is not valid RFC 5545.
    #[error("event '{uid}': invalid RRULE '{rule}': {reason}")]
    BadRule {
        uid: String,
        rule: String,
        reason: String,
    },
    /// More instances fall into the window than allowed.
    #[error(
        "event '{uid}' has more than {limit} instances in the window; ask for a shorter window"
    )]
    TooManyInstances { uid: String, limit: usize },
    /// The rule needs too many iterations to reach or fill the window (a FREQ=SECONDLY bomb,
    /// or a start far before the window).
    #[error(
        "event '{uid}': the rule '{rule}' needs more than {limit} iterations to cover the window; it is refused as a recurrence bomb"
    )]
    TooManyIterations {
        uid: String,
        rule: String,
        limit: usize,
    },
}

/// Expands every VEVENT of `ical` over `[window_start, window_end)`; floating times and DATEs
/// are read in UTC. See [`expand_in`].
pub fn expand(
    ical: &ICalendar,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    limits: &Limits,
) -> Result<Vec<Occurrence>, RecurError> {
    expand_in(ical, &Zone::Utc, window_start, window_end, limits)
}

/// Expands every VEVENT of `ical` over `[window_start, window_end)`, reading floating times
/// and DATEs in `floating` (the calendar owner's zone). Instances overlapping the window are
/// returned sorted by start; cancelled ones are included with `cancelled` set.
pub fn expand_in(
    ical: &ICalendar,
    floating: &Zone,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    limits: &Limits,
) -> Result<Vec<Occurrence>, RecurError> {
    if window_end <= window_start || window_end - window_start > limits.max_window {
        return Err(RecurError::BadWindow {
            start: window_start,
            end: window_end,
            max_days: limits.max_window.num_days(),
        });
    }
    let resolver = Resolver::new(ical);
    // Group the events by UID, keeping document order.
    let mut groups: BTreeMap<(usize, String), Vec<usize>> = BTreeMap::new();
    let mut first_index: std::collections::HashMap<String, usize> = Default::default();
    for (index, component) in ical.components.iter().enumerate() {
        if component.component_type != ICalendarComponentType::VEvent {
            continue;
        }
        let uid = component.uid().unwrap_or_default().to_string();
        let first = *first_index.entry(uid.clone()).or_insert(index);
        groups.entry((first, uid)).or_default().push(index);
    }
    let ctx = Context {
        resolver: &resolver,
        floating,
        window_start,
        window_end,
        limits,
    };
    let mut out = Vec::new();
    for ((_, uid), indexes) in groups {
        ctx.expand_uid(ical, &uid, &indexes, &mut out)?;
        if out.len() > limits.max_instances {
            return Err(RecurError::TooManyInstances {
                uid,
                limit: limits.max_instances,
            });
        }
    }
    out.sort_by(|a, b| a.start_utc.cmp(&b.start_utc).then(a.uid.cmp(&b.uid)));
    Ok(out)
}

struct Context<'a> {
    resolver: &'a Resolver,
    floating: &'a Zone,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    limits: &'a Limits,
}

/// The longest instance considered, in days (100 years).
const MAX_LENGTH_DAYS: i64 = 36_600;

/// The length of an instance: nominal days (wall clock) plus exact seconds.
#[derive(Debug, Clone, Copy)]
struct Length {
    days: i64,
    seconds: i64,
}

/// What one component says about its timing.
struct Timing {
    zone: Zone,
    start_local: NaiveDateTime,
    start_utc: DateTime<Utc>,
    all_day: bool,
    length: Length,
    transparent: bool,
    cancelled: bool,
}

impl Context<'_> {
    fn time_err(uid: &str) -> impl Fn(TzError) -> RecurError + '_ {
        move |source| RecurError::Time {
            uid: uid.to_string(),
            source,
        }
    }

    fn timing(&self, uid: &str, component: &ICalendarComponent) -> Result<Timing, RecurError> {
        let no_start = || RecurError::NoStart {
            uid: uid.to_string(),
        };
        let dtstart = component
            .property(&ICalendarProperty::Dtstart)
            .ok_or_else(no_start)?;
        let start_value = date_value(dtstart).ok_or_else(no_start)?;
        let zone = self
            .resolver
            .zone_for(start_value, dtstart.tz_id(), self.floating)
            .map_err(Self::time_err(uid))?;
        let start_local = naive_of(start_value).map_err(Self::time_err(uid))?;
        let start_utc = zone.to_utc(start_local);
        let all_day = start_value.hour.is_none();
        let length = if let Some(dtend) = component
            .property(&ICalendarProperty::Dtend)
            .and_then(|e| date_value(e).map(|v| (e, v)))
        {
            let (entry, value) = dtend;
            if all_day || value.hour.is_none() {
                let end_local = naive_of(value).map_err(Self::time_err(uid))?;
                Length {
                    days: (end_local.date() - start_local.date()).num_days().max(0),
                    seconds: 0,
                }
            } else {
                let end_zone = self
                    .resolver
                    .zone_for(value, entry.tz_id(), self.floating)
                    .map_err(Self::time_err(uid))?;
                let end_utc = end_zone.to_utc(naive_of(value).map_err(Self::time_err(uid))?);
                Length {
                    days: 0,
                    seconds: (end_utc - start_utc).num_seconds().max(0),
                }
            }
        } else if let Some(ICalendarValue::Duration(d)) = component
            .property(&ICalendarProperty::Duration)
            .and_then(|e| e.values.first())
        {
            let sign = if d.neg { 0 } else { 1 };
            Length {
                days: sign * (i64::from(d.weeks) * 7 + i64::from(d.days)),
                seconds: sign
                    * (i64::from(d.hours) * 3600
                        + i64::from(d.minutes) * 60
                        + i64::from(d.seconds)),
            }
        } else if all_day {
            Length {
                days: 1,
                seconds: 0,
            }
        } else {
            Length {
                days: 0,
                seconds: 0,
            }
        };
        // An instance longer than a century is a broken or hostile object; capping it keeps
        // every later date computation inside chrono's range.
        let length = Length {
            days: length.days.min(MAX_LENGTH_DAYS),
            seconds: length
                .seconds
                .clamp(-MAX_LENGTH_DAYS * 86_400, MAX_LENGTH_DAYS * 86_400),
        };
        let transparent = matches!(
            component
                .property(&ICalendarProperty::Transp)
                .and_then(|e| e.values.first()),
            Some(ICalendarValue::Transparency(
                ICalendarTransparency::Transparent
            ))
        );
        let cancelled = matches!(component.status(), Some(ICalendarStatus::Cancelled));
        Ok(Timing {
            zone,
            start_local,
            start_utc,
            all_day,
            length,
            transparent,
            cancelled,
        })
    }

    fn end_of(
        &self,
        timing: &Timing,
        local: NaiveDateTime,
        start_utc: DateTime<Utc>,
    ) -> DateTime<Utc> {
        if timing.length.days == 0 {
            return start_utc + Duration::seconds(timing.length.seconds);
        }
        let end_local = local + Duration::days(timing.length.days);
        timing.zone.to_utc(end_local) + Duration::seconds(timing.length.seconds)
    }

    fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        if end > start {
            start < self.window_end && end > self.window_start
        } else {
            start >= self.window_start && start < self.window_end
        }
    }

    fn expand_uid(
        &self,
        ical: &ICalendar,
        uid: &str,
        indexes: &[usize],
        out: &mut Vec<Occurrence>,
    ) -> Result<(), RecurError> {
        let components: Vec<(usize, &ICalendarComponent)> = indexes
            .iter()
            .filter_map(|&i| ical.components.get(i).map(|c| (i, c)))
            .collect();
        let master = components
            .iter()
            .find(|(_, c)| c.property(&ICalendarProperty::RecurrenceId).is_none());
        // Overrides by RECURRENCE-ID instant; RANGE=THISANDFUTURE ones apply from there on.
        let mut overrides: BTreeMap<DateTime<Utc>, (usize, &ICalendarComponent, bool)> =
            BTreeMap::new();
        for (index, component) in &components {
            let Some(rid) = component.property(&ICalendarProperty::RecurrenceId) else {
                continue;
            };
            let rid_utc = self
                .resolver
                .entry_to_utc(rid, self.floating)
                .map_err(Self::time_err(uid))?;
            overrides.insert(rid_utc, (*index, *component, this_and_future(rid)));
        }
        let uid_typed = Uid::new(uid);
        let mut seen_overrides = HashSet::new();
        if let Some((master_index, master)) = master {
            let timing = self.timing(uid, master)?;
            let starts = self.master_starts(uid, master, &timing)?;
            let mut future_shift: Option<(Duration, &ICalendarComponent)> = None;
            for local in starts {
                let original_utc = timing.zone.to_utc(local);
                if let Some((index, component, future)) = overrides.get(&original_utc) {
                    seen_overrides.insert(original_utc);
                    let o = self.timing(uid, component)?;
                    if *future {
                        future_shift = Some((o.start_utc - original_utc, component));
                    }
                    let end = self.end_of(&o, o.start_local, o.start_utc);
                    if self.overlaps(o.start_utc, end) {
                        out.push(Occurrence {
                            uid: uid_typed.clone(),
                            recurrence_id: original_utc,
                            start_utc: o.start_utc,
                            end_utc: end,
                            is_override: true,
                            transparent: o.transparent,
                            cancelled: o.cancelled || timing.cancelled,
                            all_day: o.all_day,
                            component: *index,
                        });
                    }
                    continue;
                }
                let (shift, length_from) = match future_shift {
                    Some((shift, component)) => (shift, Some(component)),
                    None => (Duration::zero(), None),
                };
                let start_utc = original_utc + shift;
                let end = match length_from {
                    Some(component) => {
                        let o = self.timing(uid, component)?;
                        start_utc + (self.end_of(&o, o.start_local, o.start_utc) - o.start_utc)
                    }
                    None => self.end_of(&timing, local, original_utc) + shift,
                };
                if start_utc >= self.window_end && shift <= Duration::zero() {
                    break;
                }
                if self.overlaps(start_utc, end) {
                    out.push(Occurrence {
                        uid: uid_typed.clone(),
                        recurrence_id: original_utc,
                        start_utc,
                        end_utc: end,
                        is_override: false,
                        transparent: timing.transparent,
                        cancelled: timing.cancelled,
                        all_day: timing.all_day,
                        component: *master_index,
                    });
                    if out.len() > self.limits.max_instances {
                        return Err(RecurError::TooManyInstances {
                            uid: uid.to_string(),
                            limit: self.limits.max_instances,
                        });
                    }
                }
            }
        }
        // Overrides that match no generated instance (an object carrying only overrides, as
        // an invitation to one instance does, or an RDATE the organiser dropped) still count.
        for (rid_utc, (index, component, _)) in &overrides {
            if seen_overrides.contains(rid_utc) {
                continue;
            }
            let o = self.timing(uid, component)?;
            let end = self.end_of(&o, o.start_local, o.start_utc);
            if self.overlaps(o.start_utc, end) {
                out.push(Occurrence {
                    uid: uid_typed.clone(),
                    recurrence_id: *rid_utc,
                    start_utc: o.start_utc,
                    end_utc: end,
                    is_override: true,
                    transparent: o.transparent,
                    cancelled: o.cancelled,
                    all_day: o.all_day,
                    component: *index,
                });
            }
        }
        Ok(())
    }

    /// The wall-clock starts of the master's instances (DTSTART, RRULE, RDATE minus EXDATE),
    /// sorted, up to the window's end (plus the longest instance, so that an instance that
    /// started before the window but overlaps it is kept).
    fn master_starts(
        &self,
        uid: &str,
        master: &ICalendarComponent,
        timing: &Timing,
    ) -> Result<Vec<NaiveDateTime>, RecurError> {
        let zone = &timing.zone;
        let reach = timing.length.days * 86_400 + timing.length.seconds;
        let from_local = zone.to_local(self.window_start - Duration::seconds(reach + 86_400));
        let to_local = zone.to_local(self.window_end) + Duration::days(1);
        let mut starts: Vec<NaiveDateTime> = vec![timing.start_local];
        for entry in master.properties(&ICalendarProperty::Rrule) {
            let Some(ICalendarValue::RecurrenceRule(rule)) = entry.values.first() else {
                continue;
            };
            self.rule_starts(uid, rule, timing, from_local, to_local, &mut starts)?;
        }
        for entry in master.properties(&ICalendarProperty::Rdate) {
            for value in &entry.values {
                let start = match value {
                    ICalendarValue::PartialDateTime(v) => Some(v.as_ref()),
                    ICalendarValue::Period(ICalendarPeriod::Range { start, .. })
                    | ICalendarValue::Period(ICalendarPeriod::Duration { start, .. }) => {
                        Some(start)
                    }
                    _ => None,
                };
                let Some(start) = start else { continue };
                let local = self
                    .instant_in_zone(start, entry.tz_id(), zone)
                    .map_err(Self::time_err(uid))?;
                starts.push(local);
            }
        }
        let mut excluded_instants = HashSet::new();
        let mut excluded_dates: HashSet<NaiveDate> = HashSet::new();
        for entry in master.properties(&ICalendarProperty::Exdate) {
            for value in &entry.values {
                let ICalendarValue::PartialDateTime(v) = value else {
                    continue;
                };
                if v.hour.is_none() {
                    if let Ok(naive) = naive_of(v) {
                        excluded_dates.insert(naive.date());
                    }
                    continue;
                }
                let local = self
                    .instant_in_zone(v, entry.tz_id(), zone)
                    .map_err(Self::time_err(uid))?;
                excluded_instants.insert(local);
            }
        }
        starts.sort();
        starts.dedup();
        starts.retain(|s| !excluded_instants.contains(s) && !excluded_dates.contains(&s.date()));
        Ok(starts)
    }

    /// A DATE-TIME written with its own TZID, as wall-clock time in `zone` (RDATE and EXDATE
    /// may use a zone other than DTSTART's).
    fn instant_in_zone(
        &self,
        value: &PartialDateTime,
        tzid: Option<&str>,
        zone: &Zone,
    ) -> Result<NaiveDateTime, TzError> {
        let own = self.resolver.zone_for(value, tzid, zone)?;
        let naive = naive_of(value)?;
        Ok(zone.to_local(own.to_utc(naive)))
    }

    fn rule_starts(
        &self,
        uid: &str,
        rule: &ICalendarRecurrenceRule,
        timing: &Timing,
        from_local: NaiveDateTime,
        to_local: NaiveDateTime,
        starts: &mut Vec<NaiveDateTime>,
    ) -> Result<(), RecurError> {
        let mut rule = rule.clone();
        let rule_text = rule.to_string();
        // UNTIL: a UTC value is turned into the zone's wall-clock time; a DATE means "through
        // that day"; a floating value is already wall-clock time.
        if let Some(until) = rule.until.take() {
            let until_local = if until.hour.is_none() {
                naive_of(&until)
                    .map(|n| n + Duration::days(1) - Duration::seconds(1))
                    .map_err(Self::time_err(uid))?
            } else if until.tz_hour.is_some() {
                let utc_zone = self
                    .resolver
                    .zone_for(&until, None, &Zone::Utc)
                    .map_err(Self::time_err(uid))?;
                timing
                    .zone
                    .to_local(utc_zone.to_utc(naive_of(&until).map_err(Self::time_err(uid))?))
            } else {
                naive_of(&until).map_err(Self::time_err(uid))?
            };
            if until_local < timing.start_local {
                // Nothing after DTSTART: the rule adds no instance (DTSTART itself counts).
                return Ok(());
            }
            rule.until = Some(utc_value(until_local));
        }
        let text = format!("DTSTART:{}\nRRULE:{}", basic_utc(timing.start_local), rule);
        let set: rrule::RRuleSet =
            text.parse()
                .map_err(|e: rrule::RRuleError| RecurError::BadRule {
                    uid: uid.to_string(),
                    rule: rule_text.clone(),
                    reason: e.to_string(),
                })?;
        let bomb = || RecurError::TooManyIterations {
            uid: uid.to_string(),
            rule: rule_text.clone(),
            limit: self.limits.max_iterations,
        };
        // A cheap check before iterating: sub-daily rules that would need more iterations
        // than allowed just to reach the window are refused without running them.
        let step = match rule.freq {
            calcard::icalendar::ICalendarFrequency::Secondly => 1,
            calcard::icalendar::ICalendarFrequency::Minutely => 60,
            calcard::icalendar::ICalendarFrequency::Hourly => 3600,
            _ => 86_400,
        } * i64::from(rule.interval.unwrap_or(1).max(1));
        let span = (to_local - timing.start_local).num_seconds().max(0);
        if rule.count.is_none() && step < 86_400 && span / step > self.limits.max_iterations as i64
        {
            return Err(bomb());
        }
        let mut in_window = 0usize;
        for (iterations, dt) in (&set).into_iter().enumerate() {
            if iterations >= self.limits.max_iterations {
                return Err(bomb());
            }
            let local = dt.naive_utc();
            if local > to_local {
                break;
            }
            if local >= from_local {
                in_window += 1;
                if in_window > self.limits.max_instances {
                    return Err(RecurError::TooManyInstances {
                        uid: uid.to_string(),
                        limit: self.limits.max_instances,
                    });
                }
                starts.push(local);
            }
        }
        Ok(())
    }
}

fn date_value(entry: &ICalendarEntry) -> Option<&PartialDateTime> {
    entry
        .values
        .first()
        .and_then(ICalendarValue::as_partial_date_time)
        .filter(|v| v.year.is_some() && v.month.is_some() && v.day.is_some())
}

fn this_and_future(entry: &ICalendarEntry) -> bool {
    entry.params.iter().any(|p| {
        p.name == ICalendarParameterName::Range
            && match &p.value {
                ICalendarParameterValue::Bool(b) => *b,
                ICalendarParameterValue::Text(t) => t.eq_ignore_ascii_case("THISANDFUTURE"),
                _ => false,
            }
    })
}

fn basic_utc(local: NaiveDateTime) -> String {
    local.format("%Y%m%dT%H%M%SZ").to_string()
}

fn utc_value(local: NaiveDateTime) -> PartialDateTime {
    use chrono::{Datelike, Timelike};
    PartialDateTime {
        year: u16::try_from(local.year()).ok(),
        month: u8::try_from(local.month()).ok(),
        day: u8::try_from(local.day()).ok(),
        hour: u8::try_from(local.hour()).ok(),
        minute: u8::try_from(local.minute()).ok(),
        second: u8::try_from(local.second()).ok(),
        tz_hour: Some(0),
        tz_minute: Some(0),
        tz_minus: false,
    }
}
