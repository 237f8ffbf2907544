//! Time zones: from a TZID (as real clients write it) to UTC instants.
//!
//! A TZID is resolved in this order:
//!
//! 1. by name, with calcard's resolver (`calcard::common::timezone::Tz::from_str`): IANA names
//!    (chrono-tz, tzdata 2025b), Windows names ("W. Europe Standard Time"), Outlook display
//!    names ("Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"), the `(UTC+01:00) …` form and
//!    the `/softwarestudio.org/…` and `/freeassociation.sourceforge.net/Tzfile/…` prefixes; any
//!    other globally unique TZID ("/" first) by the longest tail that is an IANA name;
//! 2. by the VTIMEZONE's `X-LIC-LOCATION` or numeric `X-MICROSOFT-CDO-TZID`;
//! 3. by the VTIMEZONE's own STANDARD/DAYLIGHT rules ([`VTimezoneRules`]), including
//!    Exchange's blocks that start in 1601.
//!
//! calcard's resolver was chosen over `windows-timezones` 0.5 because it also knows the display
//! names, the `(UTC±hh:mm)` prefix and the CDO ids, which Outlook and Exchange send, and it is
//! already a dependency; `windows-timezones` maps only the CLDR Windows ids (the names calcard
//! also maps). `tests/calendar_tz.rs` pins the names real clients send.

use super::view::format_datetime;
use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz as CalcardTz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarProperty,
    ICalendarValue,
};
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime,
    Offset, TimeZone, Utc, Weekday,
};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

/// Why a time could not be placed on the UTC time line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TzError {
    /// The TZID names no zone we know and the object carries no usable VTIMEZONE for it.
    #[error(
        "unknown time zone '{0}' (expected an IANA name, a Windows or Outlook name, or a VTIMEZONE with STANDARD/DAYLIGHT rules)"
    )]
    UnknownZone(String),
    /// The value is not a complete date or date-time.
    #[error("'{0}' is not a complete DATE or DATE-TIME value")]
    Incomplete(String),
}

/// A resolved time zone.
#[derive(Debug, Clone)]
pub enum Zone {
    /// UTC (a `Z` value, or a TZID naming UTC).
    Utc,
    /// A zone of the tz database.
    Iana(chrono_tz::Tz),
    /// A fixed offset (vCalendar `TZ:` without DAYLIGHT, or a value with its own offset).
    Fixed(FixedOffset),
    /// A zone known only by the rules of its VTIMEZONE.
    Rules(Arc<VTimezoneRules>),
}

impl Zone {
    /// The UTC instant of a wall-clock time in this zone. In a DST gap the time is moved
    /// forward by the gap; in an overlap the earlier instant is taken (RFC 5545 §3.3.5).
    pub fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self {
            Zone::Utc => Utc.from_utc_datetime(&local),
            Zone::Fixed(offset) => Utc.from_utc_datetime(&(local - offset_duration(offset))),
            Zone::Iana(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(dt) => dt.with_timezone(&Utc),
                LocalResult::Ambiguous(early, _) => early.with_timezone(&Utc),
                LocalResult::None => {
                    // In the gap: use the offset in force before it, which moves the time
                    // forward by the gap's length.
                    let before = tz.offset_from_utc_datetime(&(local - Duration::hours(12)));
                    let offset = before.fix();
                    Utc.from_utc_datetime(&(local - offset_duration(&offset)))
                }
            },
            Zone::Rules(rules) => rules.to_utc(local),
        }
    }

    /// The wall-clock time of a UTC instant in this zone.
    pub fn to_local(&self, utc: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Utc => utc.naive_utc(),
            Zone::Fixed(offset) => utc.naive_utc() + offset_duration(offset),
            Zone::Iana(tz) => utc.with_timezone(tz).naive_local(),
            Zone::Rules(rules) => utc.naive_utc() + Duration::seconds(rules.offset_at(utc).into()),
        }
    }
}

fn offset_duration(offset: &FixedOffset) -> Duration {
    Duration::seconds(offset.local_minus_utc().into())
}

/// Resolves a TZID by name alone (no VTIMEZONE): IANA, Windows, Outlook display names,
/// `(UTC±hh:mm) …` and the `/vendor/…` prefixes.
pub fn zone_by_name(tzid: &str) -> Option<Zone> {
    let tzid = tzid.trim().trim_matches('"');
    if tzid.eq_ignore_ascii_case("UTC") || tzid.eq_ignore_ascii_case("GMT") || tzid == "Z" {
        return Some(Zone::Utc);
    }
    let parsed = CalcardTz::from_str(tzid).ok().or_else(|| {
        // A globally unique TZID (RFC 5545 §3.2.19, "/" first) of a form calcard does not
        // know, such as Evolution's "/freeassociation.sourceforge.net/Europe/Berlin" (without
        // "Tzfile/"): the longest tail after a "/" that is an IANA name.
        tzid.strip_prefix('/')?
            .match_indices('/')
            .find_map(|(i, _)| tzid[i + 2..].parse::<chrono_tz::Tz>().ok())
            .map(CalcardTz::Tz)
    })?;
    match parsed {
        CalcardTz::Tz(tz) if is_utc(tz) => Some(Zone::Utc),
        CalcardTz::Tz(tz) => Some(Zone::Iana(tz)),
        CalcardTz::Fixed(offset) => Some(Zone::Fixed(offset)),
        CalcardTz::Floating => None,
    }
}

fn is_utc(tz: chrono_tz::Tz) -> bool {
    matches!(
        tz,
        chrono_tz::Tz::UTC | chrono_tz::Tz::Etc__UTC | chrono_tz::Tz::Etc__GMT
    )
}

/// The zones of one iCalendar object: every VTIMEZONE, resolved once.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    zones: HashMap<String, Zone>,
}

impl Resolver {
    /// Reads the VTIMEZONEs of `ical`.
    pub fn new(ical: &ICalendar) -> Self {
        let mut zones = HashMap::new();
        for component in ical
            .components
            .iter()
            .filter(|c| c.component_type == ICalendarComponentType::VTimezone)
        {
            let Some(tzid) = component
                .property(&ICalendarProperty::Tzid)
                .and_then(|e| e.values.first())
                .and_then(ICalendarValue::as_text)
            else {
                continue;
            };
            if let Some(zone) = zone_of_vtimezone(ical, component, tzid) {
                zones.insert(tzid.to_string(), zone);
            }
        }
        Resolver { zones }
    }

    /// The zone a `TZID=` parameter names.
    pub fn resolve(&self, tzid: &str) -> Result<Zone, TzError> {
        let trimmed = tzid.trim().trim_matches('"');
        self.zones
            .get(trimmed)
            .cloned()
            .or_else(|| zone_by_name(trimmed))
            .ok_or_else(|| TzError::UnknownZone(trimmed.to_string()))
    }

    /// Places a DATE-TIME property (DTSTART, DTEND, RECURRENCE-ID …) on the UTC time line.
    ///
    /// UTC values are taken as they are; a TZID is resolved; a floating time or a DATE is
    /// read in `floating` (the caller's zone: the mailbox's, or UTC).
    pub fn entry_to_utc(
        &self,
        entry: &ICalendarEntry,
        floating: &Zone,
    ) -> Result<DateTime<Utc>, TzError> {
        let value = entry
            .values
            .first()
            .and_then(ICalendarValue::as_partial_date_time)
            .ok_or_else(|| TzError::Incomplete(format!("{:?}", entry.values.first())))?;
        let tzid = entry.tz_id();
        let zone = self.zone_for(value, tzid, floating)?;
        Ok(zone.to_utc(naive_of(value)?))
    }

    /// The zone in which `value` (written with `tzid`) is to be read.
    pub fn zone_for(
        &self,
        value: &PartialDateTime,
        tzid: Option<&str>,
        floating: &Zone,
    ) -> Result<Zone, TzError> {
        if value.tz_hour.is_some() {
            let seconds = i32::from(value.tz_hour.unwrap_or(0)) * 3600
                + i32::from(value.tz_minute.unwrap_or(0)) * 60;
            let seconds = if value.tz_minus { -seconds } else { seconds };
            return Ok(if seconds == 0 {
                Zone::Utc
            } else {
                Zone::Fixed(FixedOffset::east_opt(seconds).unwrap_or(Utc.fix()))
            });
        }
        if value.hour.is_none() {
            return Ok(floating.clone());
        }
        match tzid {
            Some(tzid) => self.resolve(tzid),
            None => Ok(floating.clone()),
        }
    }
}

/// Whether a value is a DATE (no time part).
pub fn is_date(value: &PartialDateTime) -> bool {
    value.hour.is_none()
}

/// The wall-clock date-time of a complete DATE or DATE-TIME value (a DATE is midnight).
pub fn naive_of(value: &PartialDateTime) -> Result<NaiveDateTime, TzError> {
    let incomplete = || TzError::Incomplete(format_datetime(value));
    let date = NaiveDate::from_ymd_opt(
        i32::from(value.year.ok_or_else(incomplete)?),
        u32::from(value.month.ok_or_else(incomplete)?),
        u32::from(value.day.ok_or_else(incomplete)?),
    )
    .ok_or_else(incomplete)?;
    let time = NaiveTime::from_hms_opt(
        u32::from(value.hour.unwrap_or(0)),
        u32::from(value.minute.unwrap_or(0)),
        // A leap second (60) is read as 59.
        u32::from(value.second.unwrap_or(0).min(59)),
    )
    .ok_or_else(incomplete)?;
    Ok(date.and_time(time))
}

fn zone_of_vtimezone(ical: &ICalendar, component: &ICalendarComponent, tzid: &str) -> Option<Zone> {
    // A name that only yields a fixed offset (calcard reads Zimbra's "(GMT+01.00) Amsterdam /
    // Berlin …" as Etc/GMT-1) knows nothing of DST: the VTIMEZONE's own rules are better.
    let by_name = zone_by_name(tzid);
    let fixed = match &by_name {
        Some(Zone::Fixed(_)) => true,
        Some(Zone::Iana(tz)) => tz.name().starts_with("Etc/"),
        _ => false,
    };
    if by_name.is_some() && !fixed {
        return by_name;
    }
    for entry in &component.entries {
        let ICalendarProperty::Other(name) = &entry.name else {
            continue;
        };
        let Some(text) = entry.values.first().and_then(ICalendarValue::as_text) else {
            continue;
        };
        if name.eq_ignore_ascii_case("X-LIC-LOCATION")
            && let Some(zone) = zone_by_name(text.strip_prefix("SystemV/").unwrap_or(text))
        {
            return Some(zone);
        }
        if name.eq_ignore_ascii_case("X-MICROSOFT-CDO-TZID")
            && let Some(CalcardTz::Tz(tz)) = CalcardTz::from_ms_cdo_zone_id(text.trim())
        {
            return Some(if is_utc(tz) {
                Zone::Utc
            } else {
                Zone::Iana(tz)
            });
        }
    }
    VTimezoneRules::from_component(ical, component)
        .map(|rules| Zone::Rules(Arc::new(rules)))
        .or(by_name)
}

/// One STANDARD or DAYLIGHT block of a VTIMEZONE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observance {
    /// DTSTART: the first onset, local time in `offset_from`.
    pub start: NaiveDateTime,
    /// TZOFFSETFROM in seconds east of UTC.
    pub offset_from: i32,
    /// TZOFFSETTO in seconds east of UTC.
    pub offset_to: i32,
    /// A yearly rule: the month and the day in it.
    pub yearly: Option<YearlyRule>,
    /// RDATEs (local times in `offset_from`).
    pub rdates: Vec<NaiveDateTime>,
}

/// The yearly recurrence of an observance (`FREQ=YEARLY;BYMONTH=m;BYDAY=-1SU` and the like).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearlyRule {
    pub month: u32,
    /// `BYDAY`: the n-th (negative: from the end) weekday of the month.
    pub nth_weekday: Option<(i16, Weekday)>,
    /// `BYMONTHDAY`.
    pub month_day: Option<i8>,
    /// UNTIL as a UTC instant.
    pub until: Option<NaiveDateTime>,
}

/// A VTIMEZONE's rules, for TZIDs no name table knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VTimezoneRules {
    pub observances: Vec<Observance>,
}

impl VTimezoneRules {
    /// Reads the STANDARD/DAYLIGHT children of `component`. `None` when it has none usable.
    pub fn from_component(ical: &ICalendar, component: &ICalendarComponent) -> Option<Self> {
        let mut observances = Vec::new();
        for id in &component.component_ids {
            let Some(child) = ical.components.get(*id as usize) else {
                continue;
            };
            if !matches!(
                child.component_type,
                ICalendarComponentType::Standard | ICalendarComponentType::Daylight
            ) {
                continue;
            }
            if let Some(observance) = Observance::read(child) {
                observances.push(observance);
            }
        }
        (!observances.is_empty()).then_some(VTimezoneRules { observances })
    }

    /// Seconds east of UTC in force at `utc`.
    pub fn offset_at(&self, utc: DateTime<Utc>) -> i32 {
        let utc = utc.naive_utc();
        let mut best: Option<(NaiveDateTime, i32)> = None;
        let mut earliest: Option<(NaiveDateTime, i32)> = None;
        for observance in &self.observances {
            let first = observance.start - Duration::seconds(observance.offset_from.into());
            if earliest.is_none_or(|(t, _)| first < t) {
                earliest = Some((first, observance.offset_from));
            }
            if let Some(onset) = observance.last_onset_before(utc)
                && best.is_none_or(|(t, _)| onset > t)
            {
                best = Some((onset, observance.offset_to));
            }
        }
        best.or(earliest).map(|(_, offset)| offset).unwrap_or(0)
    }

    /// The UTC instant of a wall-clock time.
    pub fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        // Guess with the offset of the day before, then correct once: enough around a
        // transition because offsets change at most once within a day in real zones.
        let guess = Utc.from_utc_datetime(&(local - Duration::hours(24)));
        let first = self.offset_at(guess);
        let utc = Utc.from_utc_datetime(&(local - Duration::seconds(first.into())));
        let second = self.offset_at(utc);
        Utc.from_utc_datetime(&(local - Duration::seconds(second.into())))
    }
}

impl Observance {
    fn read(component: &ICalendarComponent) -> Option<Self> {
        let start = component
            .property(&ICalendarProperty::Dtstart)
            .and_then(|e| e.values.first())
            .and_then(ICalendarValue::as_partial_date_time)
            .and_then(|v| naive_of(v).ok())?;
        let offset = |property: ICalendarProperty| {
            component
                .property(&property)
                .and_then(|e| e.values.first())
                .and_then(ICalendarValue::as_partial_date_time)
                .map(|v| {
                    let seconds = i32::from(v.tz_hour.unwrap_or(0)) * 3600
                        + i32::from(v.tz_minute.unwrap_or(0)) * 60;
                    if v.tz_minus { -seconds } else { seconds }
                })
        };
        let offset_to = offset(ICalendarProperty::Tzoffsetto)?;
        let offset_from = offset(ICalendarProperty::Tzoffsetfrom).unwrap_or(offset_to);
        let yearly = component
            .property(&ICalendarProperty::Rrule)
            .and_then(|e| e.values.first())
            .and_then(|v| match v {
                ICalendarValue::RecurrenceRule(rule) => Some(rule),
                _ => None,
            })
            .map(|rule| YearlyRule {
                month: rule
                    .bymonth
                    .first()
                    .map(|m| u32::from(m.month()))
                    .unwrap_or(start.month()),
                nth_weekday: rule
                    .byday
                    .first()
                    .map(|d| (d.ordwk.unwrap_or(1), weekday_of(d.weekday))),
                month_day: rule.bymonthday.first().copied(),
                until: rule.until.as_ref().and_then(|u| naive_of(u).ok()),
            });
        let rdates = component
            .properties(&ICalendarProperty::Rdate)
            .flat_map(|e| e.values.iter())
            .filter_map(ICalendarValue::as_partial_date_time)
            .filter_map(|v| naive_of(v).ok())
            .collect();
        Some(Observance {
            start,
            offset_from,
            offset_to,
            yearly,
            rdates,
        })
    }

    /// The latest onset (as a UTC instant) at or before `utc`.
    fn last_onset_before(&self, utc: NaiveDateTime) -> Option<NaiveDateTime> {
        let to_utc = |local: NaiveDateTime| local - Duration::seconds(self.offset_from.into());
        let first = to_utc(self.start);
        if first > utc {
            return None;
        }
        let mut best = Some(first);
        for rdate in &self.rdates {
            let onset = to_utc(*rdate);
            if onset <= utc && best.is_none_or(|b| onset > b) {
                best = Some(onset);
            }
        }
        if let Some(rule) = &self.yearly {
            // Only this year and the one before can hold the latest onset.
            for year in [utc.year(), utc.year() - 1] {
                if year < self.start.year() {
                    continue;
                }
                let Some(local) = rule.onset_in(year, self.start.time()) else {
                    continue;
                };
                let onset = to_utc(local);
                let within_until = rule.until.is_none_or(|until| onset <= until);
                if onset <= utc && onset >= first && within_until && best.is_none_or(|b| onset > b)
                {
                    best = Some(onset);
                }
            }
        }
        best
    }
}

impl YearlyRule {
    /// The local onset in `year`.
    fn onset_in(&self, year: i32, time: NaiveTime) -> Option<NaiveDateTime> {
        let date = if let Some((nth, weekday)) = self.nth_weekday {
            nth_weekday_of_month(year, self.month, nth, weekday)?
        } else {
            let day = self.month_day.unwrap_or(1);
            if day > 0 {
                NaiveDate::from_ymd_opt(year, self.month, u32::try_from(day).ok()?)?
            } else {
                last_day_of_month(year, self.month)?
                    - Duration::days(i64::from(day.unsigned_abs()) - 1)
            }
        };
        Some(date.and_time(time))
    }
}

/// The `nth` (1-based; negative counts from the end) `weekday` of a month.
pub fn nth_weekday_of_month(
    year: i32,
    month: u32,
    nth: i16,
    weekday: Weekday,
) -> Option<NaiveDate> {
    if nth > 0 {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let shift =
            (7 + weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
        let date = first + Duration::days(i64::from(shift) + 7 * (i64::from(nth) - 1));
        (date.month() == month).then_some(date)
    } else if nth < 0 {
        let last = last_day_of_month(year, month)?;
        let shift =
            (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
        let date = last - Duration::days(i64::from(shift) + 7 * (i64::from(-nth) - 1));
        (date.month() == month).then_some(date)
    } else {
        None
    }
}

/// The last day of a month.
pub fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1).map(|d| d - Duration::days(1))
}

fn weekday_of(day: calcard::icalendar::ICalendarWeekday) -> Weekday {
    use calcard::icalendar::ICalendarWeekday as W;
    match day {
        W::Monday => Weekday::Mon,
        W::Tuesday => Weekday::Tue,
        W::Wednesday => Weekday::Wed,
        W::Thursday => Weekday::Thu,
        W::Friday => Weekday::Fri,
        W::Saturday => Weekday::Sat,
        W::Sunday => Weekday::Sun,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_weekday_finds_last_sunday_of_march() {
        assert_eq!(
            nth_weekday_of_month(2027, 3, -1, Weekday::Sun),
            NaiveDate::from_ymd_opt(2027, 3, 28)
        );
        assert_eq!(
            nth_weekday_of_month(2027, 3, 2, Weekday::Sun),
            NaiveDate::from_ymd_opt(2027, 3, 14)
        );
        assert_eq!(nth_weekday_of_month(2027, 2, 5, Weekday::Mon), None);
    }
}
