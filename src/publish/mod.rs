//! Publishing a mailbox's calendar: the subscribable iCalendar feed (METHOD:PUBLISH), the same
//! feed as jCal (RFC 7265), an hCalendar page of the upcoming bookings, and free/busy time
//! (VFREEBUSY) from the store's busy index. [`http`] serves them; `imipd show --format html`
//! prints the page offline, and the pipeline answers a VFREEBUSY REQUEST by mail with
//! [`freebusy_periods`] and [`freebusy_range`] ([`crate::itip::freebusy`]).
//!
//! # What is published
//!
//! Only what the mailbox booked: an event the mailbox declined, a cancelled event (its
//! tombstone) and anything that is not a VEVENT stay private. A declined or cancelled
//! instance of a published series is published as `STATUS:CANCELLED`, so subscribers drop
//! it; an event the mailbox holds tentatively or has not answered yet (automation `manual`)
//! is published as `STATUS:TENTATIVE`.
//!
//! How much of each booking is shown is the mailbox's `publish_details` ([`Details`]):
//!
//! | level | published |
//! |---|---|
//! | `busy` (default) | times (DTSTART, DTEND/DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID), STATUS, TRANSP, SEQUENCE, DTSTAMP, `SUMMARY:Busy`, and a UID that is a digest of the real one |
//! | `summary` | the same, with the real SUMMARY and LOCATION |
//! | `full` | the stored event with its real UID, DESCRIPTION, ORGANIZER and ATTENDEEs, less alarms and the mailbox's bookkeeping parameters |
//!
//! A component marked `CLASS:PRIVATE` or `CLASS:CONFIDENTIAL` is published at the `busy`
//! level whatever the mailbox's setting (the organiser asked for it; Exchange does the same
//! for private meetings in a room's calendar). The digest UID (SHA-256 of the mailbox and
//! the UID) is stable, so subscribers still follow changes, but it does not reveal the
//! organiser's domain or client, which real UIDs often do.
//!
//! # Free/busy
//!
//! Free/busy answers come from the busy index, never from the objects: only opaque time, as
//! `FREEBUSY;FBTYPE=BUSY` periods, merged where they touch or overlap, with no UID or
//! summary. The range asked for is bounded ([`freebusy_range`]): at most
//! [`MAX_FREEBUSY_DAYS`] days, from at most a day back (the index keeps no older time) to the
//! index horizon; the answer's DTSTART and DTEND say which range was answered.

pub mod http;

use crate::calendar::recur::{self, Limits};
use crate::calendar::tz::{Zone, zone_by_name};
use crate::calendar::{self, CalAddress, ICalendar};
use crate::config::MailboxConfig;
use crate::itip::object::{self, Doc, Node};
use crate::policy::busy::LOOKBACK;
use crate::store::{Store, StoreError, Transparency};
use calcard::icalendar::{
    ICalendarComponentType, ICalendarParameterName, ICalendarParameterValue,
    ICalendarParticipationStatus, ICalendarProperty,
};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The longest free/busy range answered, in days (Exchange's availability service allows
/// 62 days too).
pub const MAX_FREEBUSY_DAYS: i64 = 62;
/// The range answered when none is asked for, in days from now.
pub const DEFAULT_FREEBUSY_DAYS: i64 = 42;
/// The most days the page shows.
pub const MAX_PAGE_DAYS: u32 = 92;
/// The days the page shows when none are asked for.
pub const DEFAULT_PAGE_DAYS: u32 = 14;

/// How much of each booking a mailbox publishes (`publish_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Details {
    /// Only when the mailbox is busy, and whether tentatively.
    #[default]
    Busy,
    /// Also the title and location.
    Summary,
    /// The whole event, with organiser, attendees and description.
    Full,
}

/// What a mailbox publishes and to whom: its publish keys, read from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// The mailbox address (the store's key).
    pub account: String,
    /// Its display name, for the page's title and the feed's X-WR-CALNAME.
    pub name: Option<String>,
    /// All its addresses ("me", for its own PARTSTAT).
    pub me: Vec<CalAddress>,
    /// How much is shown.
    pub details: Details,
    /// The zone days and times are shown in, as an IANA name.
    pub time_zone: String,
    /// The secret that opens the publication, if any.
    pub token: Option<String>,
    /// Whether it is open without a token.
    pub public: bool,
    /// How far ahead the busy index reaches, in days (the policy's).
    pub index_days: u32,
}

impl Publication {
    /// The publication settings of one configured mailbox.
    pub fn of(config: &MailboxConfig) -> Publication {
        let time_zone = config
            .publish_time_zone
            .clone()
            .or_else(|| {
                config
                    .policy
                    .working_hours
                    .as_ref()
                    .map(|h| h.time_zone.name().to_string())
            })
            .unwrap_or_else(|| "UTC".to_string());
        Publication {
            account: config.address.clone(),
            name: config.name.clone(),
            me: config.addresses(),
            details: config.publish_details,
            time_zone,
            token: config.publish_token.clone(),
            public: config.publish_public,
            index_days: config.policy.index_days(),
        }
    }

    /// Settings for `imipd show` without a configuration: everything, in UTC.
    pub fn offline(account: &str) -> Publication {
        Publication {
            account: account.to_string(),
            name: None,
            me: CalAddress::parse(account).into_iter().collect(),
            details: Details::Full,
            time_zone: "UTC".to_string(),
            token: None,
            public: false,
            index_days: crate::policy::Policy::default().index_days(),
        }
    }

    /// Whether anything is published at all.
    pub fn is_published(&self) -> bool {
        self.public || self.token.is_some()
    }

    /// The zone of the page (UTC when the name is unknown, which validation prevents).
    pub fn zone(&self) -> Zone {
        zone_by_name(&self.time_zone).unwrap_or(Zone::Utc)
    }

    fn title(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.account.clone())
    }
}

/// The published form of each stored object of the mailbox (or only of the one with `uid`),
/// one VCALENDAR per object (without METHOD), in the store's order.
pub fn objects(
    store: &Store,
    publication: &Publication,
    uid: Option<&str>,
) -> Result<Vec<ICalendar>, StoreError> {
    let mut out = Vec::new();
    for (_, stored) in store.objects(Some(&publication.account))? {
        if stored.tombstone.is_some() || uid.is_some_and(|u| u != stored.uid) {
            continue;
        }
        let Some(ical) = calendar::parse(&stored.ical)
            .ok()
            .and_then(|c| c.into_iter().next())
        else {
            continue;
        };
        if let Some(doc) = published(&Doc::from_ical(&ical), publication) {
            out.push(doc.to_ical());
        }
    }
    Ok(out)
}

/// The feed: every published object in one `METHOD:PUBLISH` VCALENDAR, time zones once, with
/// its name and the poll interval subscribers should use (15 minutes).
pub fn feed(objects: &[ICalendar], publication: &Publication) -> ICalendar {
    let mut feed = Doc {
        root: [
            "VERSION:2.0".to_string(),
            "PRODID:-//imipd//publish//EN".to_string(),
            "CALSCALE:GREGORIAN".to_string(),
            "METHOD:PUBLISH".to_string(),
            format!(
                "NAME:{}",
                crate::itip::build::escape_text(&publication.title())
            ),
            format!(
                "X-WR-CALNAME:{}",
                crate::itip::build::escape_text(&publication.title())
            ),
            format!("X-WR-TIMEZONE:{}", publication.time_zone),
            // How often subscribers should poll (RFC 7986 §5.7, and Outlook's name for it).
            "REFRESH-INTERVAL;VALUE=DURATION:PT15M".to_string(),
            "X-PUBLISHED-TTL:PT15M".to_string(),
        ]
        .iter()
        .filter_map(|l| object::line(l))
        .collect(),
        nodes: Vec::new(),
    };
    for ical in objects {
        let doc = Doc::from_ical(ical);
        feed.merge_zones(&doc);
        feed.nodes.extend(
            doc.nodes
                .into_iter()
                .filter(|n| n.comp.component_type != ICalendarComponentType::VTimezone),
        );
    }
    feed.to_ical()
}

/// Whether `comp` names one of `me` as an attendee with this PARTSTAT.
fn my_partstat(
    comp: &calcard::icalendar::ICalendarComponent,
    me: &[CalAddress],
) -> Option<ICalendarParticipationStatus> {
    comp.properties(&ICalendarProperty::Attendee)
        .find(|e| object::address(e).is_some_and(|a| me.contains(&a)))
        .map(|e| match e.parameter(&ICalendarParameterName::Partstat) {
            Some(ICalendarParameterValue::Partstat(p)) => p.clone(),
            _ => ICalendarParticipationStatus::NeedsAction,
        })
}

/// The published form of one stored object, or `None` when nothing of it is published.
fn published(doc: &Doc, publication: &Publication) -> Option<Doc> {
    let master = doc.master();
    let private = |comp: &calcard::icalendar::ICalendarComponent| {
        object::is_cancelled(comp)
            || my_partstat(comp, &publication.me) == Some(ICalendarParticipationStatus::Declined)
    };
    if let Some(master) = master
        && private(&doc.nodes[master].comp)
    {
        return None;
    }
    let mut nodes = Vec::new();
    for (index, node) in doc.nodes.iter().enumerate() {
        match node.comp.component_type {
            ICalendarComponentType::VTimezone => nodes.push(node.clone()),
            ICalendarComponentType::VEvent => {
                let withdrawn = private(&node.comp);
                if withdrawn && Some(index) != master && master.is_none() {
                    continue;
                }
                nodes.push(Node {
                    comp: scrub(&node.comp, publication, withdrawn),
                    children: Vec::new(),
                });
            }
            _ => {}
        }
    }
    if !nodes
        .iter()
        .any(|n| n.comp.component_type == ICalendarComponentType::VEvent)
    {
        return None;
    }
    Some(Doc {
        root: ["VERSION:2.0", "PRODID:-//imipd//publish//EN"]
            .iter()
            .filter_map(|l| object::line(l))
            .collect(),
        nodes,
    })
}

/// The properties every level publishes.
const TIMES: [ICalendarProperty; 11] = [
    ICalendarProperty::Dtstart,
    ICalendarProperty::Dtend,
    ICalendarProperty::Duration,
    ICalendarProperty::Rrule,
    ICalendarProperty::Rdate,
    ICalendarProperty::Exdate,
    ICalendarProperty::RecurrenceId,
    ICalendarProperty::Sequence,
    ICalendarProperty::Dtstamp,
    ICalendarProperty::Transp,
    ICalendarProperty::Status,
];

/// One VEVENT as published at the mailbox's level (`withdrawn`: a declined or cancelled
/// instance, published as cancelled).
fn scrub(
    comp: &calcard::icalendar::ICalendarComponent,
    publication: &Publication,
    withdrawn: bool,
) -> calcard::icalendar::ICalendarComponent {
    let private = comp
        .property(&ICalendarProperty::Class)
        .and_then(|e| e.values.first())
        .and_then(|v| match v {
            calcard::icalendar::ICalendarValue::Classification(c) => {
                Some(calcard::common::IanaString::as_str(c).to_string())
            }
            other => other.as_text().map(str::to_string),
        })
        .is_some_and(|c| !c.eq_ignore_ascii_case("PUBLIC"));
    let details = if private {
        Details::Busy
    } else {
        publication.details
    };
    let mut out = calcard::icalendar::ICalendarComponent::new(ICalendarComponentType::VEvent);
    let uid = comp.uid().unwrap_or_default();
    match details {
        Details::Full => {
            out.entries = comp.entries.clone();
            for entry in &mut out.entries {
                if entry.name == ICalendarProperty::Attendee {
                    entry.params.retain(|p| {
                        !matches!(&p.name, ICalendarParameterName::Other(n) if n.to_ascii_uppercase().starts_with("X-RECEIVED-"))
                    });
                }
            }
            object::strip_transport_data(&mut out);
        }
        Details::Summary | Details::Busy => {
            out.entries.extend(object::line(&format!(
                "UID:{}",
                published_uid(&publication.account, uid)
            )));
            let keep = |name: &ICalendarProperty| {
                TIMES.contains(name)
                    || (details == Details::Summary
                        && matches!(
                            name,
                            ICalendarProperty::Summary | ICalendarProperty::Location
                        ))
            };
            out.entries
                .extend(comp.entries.iter().filter(|e| keep(&e.name)).cloned());
            if details == Details::Busy {
                out.entries.extend(object::line("SUMMARY:Busy"));
            }
        }
    }
    let status = if withdrawn {
        Some("CANCELLED")
    } else {
        match my_partstat(comp, &publication.me) {
            Some(
                ICalendarParticipationStatus::Tentative | ICalendarParticipationStatus::NeedsAction,
            ) => Some("TENTATIVE"),
            _ => None,
        }
    };
    if let Some(status) = status {
        object::set_line(&mut out, &format!("STATUS:{status}"));
    }
    out
}

/// The UID published below the `full` level: a digest of the mailbox and the real UID.
pub fn published_uid(account: &str, uid: &str) -> String {
    let digest = Sha256::new()
        .chain_update(account.to_ascii_lowercase().as_bytes())
        .chain_update([0])
        .chain_update(uid.as_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}@imipd.invalid")
}

/// One upcoming booking as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// The published UID.
    pub uid: String,
    /// Start, UTC.
    pub start: DateTime<Utc>,
    /// End (exclusive), UTC.
    pub end: DateTime<Utc>,
    /// Whether it is an all-day booking.
    pub all_day: bool,
    /// The published SUMMARY (`Busy` at the busy level).
    pub summary: String,
    /// The published LOCATION, if any.
    pub location: Option<String>,
    /// Whether the mailbox holds it only tentatively.
    pub tentative: bool,
}

/// The bookings of the published objects that overlap `[from, to)`, sorted by start;
/// cancelled and transparent instances are left out. Floating times and dates are read in
/// the publication's zone.
pub fn bookings(
    objects: &[ICalendar],
    publication: &Publication,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Booking> {
    let zone = publication.zone();
    let mut out = Vec::new();
    for ical in objects {
        let Ok(found) = recur::expand_in(ical, &zone, from, to, &Limits::default()) else {
            continue;
        };
        for occurrence in found.into_iter().filter(|o| !o.cancelled && !o.transparent) {
            let Some(comp) = ical.components.get(occurrence.component) else {
                continue;
            };
            let text = |name: ICalendarProperty| object::text(comp, &name);
            out.push(Booking {
                uid: occurrence.uid.to_string(),
                start: occurrence.start_utc,
                end: occurrence.end_utc,
                all_day: occurrence.all_day,
                summary: text(ICalendarProperty::Summary).unwrap_or_else(|| "Busy".into()),
                location: text(ICalendarProperty::Location),
                tentative: text(ICalendarProperty::Status)
                    .is_some_and(|s| s.eq_ignore_ascii_case("TENTATIVE")),
            });
        }
    }
    out.sort_by(|a, b| (a.start, a.end, &a.uid).cmp(&(b.start, b.end, &b.uid)));
    out
}

/// The window of the page: from the start of today in the publication's zone, `days` days.
pub fn page_window(
    publication: &Publication,
    now: DateTime<Utc>,
    days: u32,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let zone = publication.zone();
    let today = zone.to_local(now).date();
    let start = zone.to_utc(today.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end_day = today + Duration::days(i64::from(days.clamp(1, MAX_PAGE_DAYS)));
    let end = zone.to_utc(end_day.and_hms_opt(0, 0, 0).unwrap_or_default());
    (start, end)
}

/// The hCalendar page of `bookings` for `[from, to)`, grouped per day in the publication's
/// zone. Each booking is an hCalendar `vevent` whose `dtstart`/`dtend` carry the local time
/// with its UTC offset (`2027-01-05T10:00:00+01:00`), or the date for all-day bookings (the
/// end date inclusive, as hCalendar reads it). Every element also carries the
/// microformats2 class (`h-event`, `p-name`, `dt-start`, `u-uid`, ...), as the microformats
/// wiki recommends for publishers, so both classic hCalendar and mf2 parsers read it
/// (mf2 parsers' hCalendar back-compatibility does not read `uid`).
pub fn page(
    bookings: &[Booking],
    publication: &Publication,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let zone = publication.zone();
    let tz: Option<chrono_tz::Tz> = publication.time_zone.parse().ok();
    let local = |t: DateTime<Utc>| -> String {
        match tz {
            Some(tz) => tz.from_utc_datetime(&t.naive_utc()).to_rfc3339(),
            None => t.to_rfc3339(),
        }
    };
    let title = html(&publication.title());
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}: bookings</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
<main class=\"vcalendar\">\n<h1>{title}</h1>\n<p class=\"range\">Bookings from {} to {} ({}).</p>\n",
        html(
            &zone
                .to_local(from)
                .date()
                .format("%a %-d %b %Y")
                .to_string()
        ),
        html(
            &(zone.to_local(to) - Duration::seconds(1))
                .date()
                .format("%a %-d %b %Y")
                .to_string()
        ),
        html(&publication.time_zone),
    );
    let mut day: Option<NaiveDate> = None;
    let mut any = false;
    for booking in bookings {
        let first_day = zone
            .to_local(booking.start)
            .date()
            .max(zone.to_local(from).date());
        if day != Some(first_day) {
            if day.is_some() {
                out.push_str("</ol>\n</section>\n");
            }
            out.push_str(&format!(
                "<section class=\"day\">\n<h2><time datetime=\"{}\">{}</time></h2>\n<ol>\n",
                first_day.format("%Y-%m-%d"),
                first_day.format("%A %-d %B %Y")
            ));
            day = Some(first_day);
        }
        any = true;
        let (start_attr, start_text, end_attr, end_text) = if booking.all_day {
            let start = zone.to_local(booking.start).date();
            let end = (zone.to_local(booking.end) - Duration::seconds(1)).date();
            (
                start.format("%Y-%m-%d").to_string(),
                "all day".to_string(),
                end.format("%Y-%m-%d").to_string(),
                if end > start {
                    format!("until {}", end.format("%a %-d %b"))
                } else {
                    String::new()
                },
            )
        } else {
            let start = zone.to_local(booking.start);
            let end = zone.to_local(booking.end);
            let end_text = if end.date() == start.date() {
                end.format("%H:%M").to_string()
            } else {
                end.format("%a %-d %b %H:%M").to_string()
            };
            (
                local(booking.start),
                start.format("%H:%M").to_string(),
                local(booking.end),
                end_text,
            )
        };
        out.push_str(&format!(
            "<li class=\"vevent h-event{}\">\n  <time class=\"dtstart dt-start\" datetime=\"{}\">{}</time>",
            if booking.tentative { " tentative" } else { "" },
            html(&start_attr),
            html(&start_text)
        ));
        out.push_str(&format!(
            "–<time class=\"dtend dt-end\" datetime=\"{}\">{}</time>\n",
            html(&end_attr),
            html(&end_text)
        ));
        out.push_str(&format!(
            "  <span class=\"summary p-name\">{}</span>\n",
            html(&booking.summary)
        ));
        if let Some(location) = &booking.location {
            out.push_str(&format!(
                "  <span class=\"location p-location\">{}</span>\n",
                html(location)
            ));
        }
        if booking.tentative {
            out.push_str("  <span class=\"status\">TENTATIVE</span>\n");
        }
        out.push_str(&format!(
            "  <data class=\"uid u-uid\" value=\"{0}\"></data>\n</li>\n",
            html(&booking.uid)
        ));
    }
    if day.is_some() {
        out.push_str("</ol>\n</section>\n");
    }
    if !any {
        out.push_str("<p class=\"empty\">No bookings.</p>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:40em;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.5em}
ol{list-style:none;padding:0}li{padding:.3em 0;display:flex;gap:.8em;flex-wrap:wrap}
.dtstart,.dtend{font-variant-numeric:tabular-nums}.summary{font-weight:600}
.location{color:#555}.tentative .summary{font-style:italic}.status{color:#a60;font-size:.85em}
.range{color:#555}
";

fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Why a free/busy range cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A bound is not an RFC 5545 UTC date-time.
    #[error("{0:?} is not a UTC date-time in the RFC 5545 form (write e.g. 20270104T000000Z)")]
    NotUtc(String),
    /// The range ends before it starts.
    #[error("the range ends before it starts")]
    Empty,
}

/// Reads an RFC 5545 UTC date-time (`20270104T090000Z`).
pub fn parse_utc(text: &str) -> Result<DateTime<Utc>, RangeError> {
    chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y%m%dT%H%M%SZ")
        .map(|t| t.and_utc())
        .map_err(|_| RangeError::NotUtc(text.to_string()))
}

/// The free/busy range answered for a request of `[start, end)` (either may be absent):
/// from `now` when no start is given, [`DEFAULT_FREEBUSY_DAYS`] when no end is; cut to at
/// most [`MAX_FREEBUSY_DAYS`], to no earlier than the index's look-back and to no later than
/// the index horizon (`horizon`, Unix seconds; 0: none recorded, the policy's days from now).
pub fn freebusy_range(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    horizon: i64,
    index_days: u32,
) -> Result<(DateTime<Utc>, DateTime<Utc>), RangeError> {
    let now = now.with_nanosecond(0).unwrap_or(now);
    let start = start.unwrap_or(now);
    let end = end.unwrap_or(start + Duration::days(DEFAULT_FREEBUSY_DAYS));
    if end <= start {
        return Err(RangeError::Empty);
    }
    let horizon = DateTime::from_timestamp(horizon, 0)
        .filter(|_| horizon > 0)
        .unwrap_or(now + Duration::days(i64::from(index_days)));
    let start = start.max(now - LOOKBACK);
    let end = end
        .min(start + Duration::days(MAX_FREEBUSY_DAYS))
        .min(horizon);
    if end <= start {
        return Err(RangeError::Empty);
    }
    Ok((start, end))
}

/// The busy periods of `account` in `[from, to)` from the busy index: opaque intervals cut
/// to the range, merged where they overlap or touch, sorted.
pub fn freebusy_periods(
    store: &Store,
    account: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let (from, to) = (from.timestamp(), to.timestamp());
    let mut periods: Vec<(i64, i64)> = store
        .busy(account, from, to)?
        .into_iter()
        .filter(|e| e.interval.transparency == Transparency::Opaque)
        .map(|e| (e.interval.start.max(from), e.interval.end.min(to)))
        .filter(|(s, e)| e > s)
        .collect();
    periods.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(periods.len());
    for (start, end) in periods {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    Ok(merged)
}

/// `FREEBUSY;FBTYPE=BUSY:` content lines (one period each) for `periods`.
pub fn freebusy_lines(periods: &[(i64, i64)]) -> String {
    periods
        .iter()
        .filter_map(|(s, e)| {
            let s = DateTime::from_timestamp(*s, 0)?;
            let e = DateTime::from_timestamp(*e, 0)?;
            Some(format!(
                "FREEBUSY;FBTYPE=BUSY:{}/{}\r\n",
                object::stamp(s),
                object::stamp(e)
            ))
        })
        .collect()
}

/// The published free/busy of a mailbox (`freebusy.ifb`): a `METHOD:PUBLISH` VFREEBUSY
/// (RFC 5546 §3.3.1) for `[from, to)`.
pub fn freebusy_publish(
    publication: &Publication,
    periods: &[(i64, i64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let organizer = publication
        .me
        .first()
        .map(CalAddress::uri)
        .unwrap_or_else(|| format!("mailto:{}", publication.account));
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd//publish//EN\r\nMETHOD:PUBLISH\r\n\
BEGIN:VFREEBUSY\r\nUID:{uid}\r\nDTSTAMP:{stamp}\r\nORGANIZER:{organizer}\r\n\
DTSTART:{start}\r\nDTEND:{end}\r\n{lines}END:VFREEBUSY\r\nEND:VCALENDAR\r\n",
        uid = published_uid(
            &publication.account,
            &format!("freebusy {} {}", from.timestamp(), to.timestamp())
        ),
        stamp = object::stamp(now),
        start = object::stamp(from),
        end = object::stamp(to),
        lines = freebusy_lines(periods),
    )
}

/// How many free/busy answers by mail one requester gets from one mailbox per hour.
pub const FREEBUSY_ANSWERS_PER_HOUR: usize = 20;
/// How many requesters [`RateLimit`] tracks before it forgets the idle ones.
const RATE_LIMIT_TRACKED: usize = 10_000;

/// A sliding one-hour window of answers per (mailbox, requester): what keeps a VFREEBUSY
/// REQUEST sent in a loop (or by a prober) from turning a mailbox into a mail cannon. It lives
/// in memory: a restart forgets it, which at worst allows one more hour's worth.
#[derive(Debug, Default)]
pub struct RateLimit {
    answered: std::collections::HashMap<(String, String), std::collections::VecDeque<i64>>,
}

impl RateLimit {
    /// Whether `requester` may get one more answer from `mailbox` at `now` (Unix seconds);
    /// counts it when it may.
    pub fn allow(&mut self, mailbox: &str, requester: &str, now: i64) -> bool {
        if self.answered.len() >= RATE_LIMIT_TRACKED {
            self.answered
                .retain(|_, times| times.back().is_some_and(|t| *t > now - 3600));
        }
        let times = self
            .answered
            .entry((mailbox.to_ascii_lowercase(), requester.to_ascii_lowercase()))
            .or_default();
        while times.front().is_some_and(|t| *t <= now - 3600) {
            times.pop_front();
        }
        if times.len() >= FREEBUSY_ANSWERS_PER_HOUR {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// The ETag of a representation: a strong validator from its bytes.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 time")
    }

    #[test]
    fn freebusy_range_defaults_to_six_weeks_from_now() {
        let now = at("2027-01-04T08:30:15.5Z");
        let (from, to) = freebusy_range(None, None, now, 0, 365).expect("a range");
        assert_eq!(from, at("2027-01-04T08:30:15Z"));
        assert_eq!(to, from + Duration::days(DEFAULT_FREEBUSY_DAYS));
    }

    #[test]
    fn freebusy_range_is_cut_to_the_maximum_and_the_horizon() {
        let now = at("2027-01-04T00:00:00Z");
        let far = Some(at("2028-01-01T00:00:00Z"));
        let (from, to) = freebusy_range(Some(now), far, now, 0, 365).expect("a range");
        assert_eq!((from, to), (now, now + Duration::days(MAX_FREEBUSY_DAYS)));
        let horizon = at("2027-01-20T00:00:00Z");
        let (_, to) =
            freebusy_range(Some(now), far, now, horizon.timestamp(), 365).expect("a range");
        assert_eq!(to, horizon, "no answer beyond what the index knows");
    }

    #[test]
    fn freebusy_range_in_the_past_or_backwards_is_refused() {
        let now = at("2027-01-04T00:00:00Z");
        let old = freebusy_range(
            Some(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-02T00:00:00Z")),
            now,
            0,
            365,
        );
        assert_eq!(old, Err(RangeError::Empty));
        let backwards = freebusy_range(Some(now), Some(now - Duration::hours(1)), now, 0, 365);
        assert_eq!(backwards, Err(RangeError::Empty));
        let (from, _) =
            freebusy_range(Some(at("2026-12-01T00:00:00Z")), None, now, 0, 365).expect("a range");
        assert_eq!(from, now - LOOKBACK, "the index keeps one day back");
    }

    #[test]
    fn only_rfc5545_utc_times_are_read() {
        assert_eq!(
            parse_utc("20270104T090000Z"),
            Ok(at("2027-01-04T09:00:00Z"))
        );
        for bad in [
            "20270104T090000",
            "2027-01-04T09:00:00Z",
            "20270104",
            "tomorrow",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn published_uids_are_stable_per_mailbox_and_hide_the_original() {
        let a = published_uid("Room@corp.test", "abc@google.com");
        assert_eq!(a, published_uid("room@corp.test", "abc@google.com"));
        assert_ne!(a, published_uid("other@corp.test", "abc@google.com"));
        assert!(!a.contains("google"), "{a}");
    }

    #[test]
    fn a_requester_gets_a_limited_number_of_answers_per_hour() {
        let mut limit = RateLimit::default();
        let t = 1_800_000_000;
        for _ in 0..FREEBUSY_ANSWERS_PER_HOUR {
            assert!(limit.allow("room@corp.test", "org@corp.test", t));
        }
        assert!(!limit.allow("room@corp.test", "ORG@corp.test", t + 10));
        assert!(limit.allow("room@corp.test", "other@corp.test", t + 10));
        assert!(limit.allow("room2@corp.test", "org@corp.test", t + 10));
        assert!(limit.allow("room@corp.test", "org@corp.test", t + 3600));
    }

    #[test]
    fn touching_periods_are_written_as_one() {
        let lines = freebusy_lines(&[(1_800_000_000, 1_800_003_600)]);
        assert_eq!(
            lines,
            "FREEBUSY;FBTYPE=BUSY:20270115T080000Z/20270115T090000Z\r\n"
        );
    }
}
