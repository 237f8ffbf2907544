//! `imipd show`: the objects a store holds, as JSON summaries (the CLI contract's shape) or
//! as iCalendar text.

use crate::calendar::{self, ICalendar};
use crate::itip::object::{self, Doc, Rid, Zones};
use crate::store::Store;
use calcard::icalendar::{ICalendarEntry, ICalendarParameterName, ICalendarProperty};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The output formats of `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An array of object summaries.
    Json,
    /// The stored iCalendar objects, one after another.
    Ics,
    /// jCal (RFC 7265).
    Jcal,
    /// The hCalendar page of the mailbox's upcoming bookings, as its HTTP listener
    /// publishes it (`calendar.html`).
    Html,
}

/// The arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Only this mailbox's objects.
    #[arg(long)]
    pub mailbox: Option<String>,
    /// Only the object with this UID.
    #[arg(long)]
    pub uid: Option<String>,
    /// The output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Show the originals the mailbox's privacy rules kept (`keep_original`) instead of the
    /// scrubbed copies; an object without a kept original shows as stored.
    #[arg(long)]
    pub original: bool,
    /// With `--format html`: the configuration whose publish keys (`publish_details`,
    /// `publish_time_zone`) shape the page; without it the page shows everything, in UTC.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// With `--format html`: the page starts on this day (RFC 3339; default: now).
    #[arg(long)]
    pub now: Option<String>,
    /// With `--format html`: how many days the page shows (1–92).
    #[arg(long, default_value_t = crate::publish::DEFAULT_PAGE_DAYS)]
    pub days: u32,
    /// Instead of the objects: one of the store's bookkeeping views, as JSON lines.
    #[command(flatten)]
    pub views: crate::store::cli::ViewArgs,
}

/// A date or date-time as the CLI prints it: RFC 3339 UTC for zoned and UTC times, the bare
/// date for dates, local RFC 3339 without offset for floating times.
fn when(entry: &ICalendarEntry, zones: &Zones<'_>) -> Value {
    match zones.rid_of(entry) {
        Some(Rid::Date(d)) if d.len() == 8 => {
            Value::String(format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
        }
        Some(Rid::Instant(ts)) => chrono::DateTime::from_timestamp(ts, 0)
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            .unwrap_or(Value::Null),
        Some(Rid::Floating(local)) => Value::String(local.format("%Y-%m-%dT%H:%M:%S").to_string()),
        _ => Value::Null,
    }
}

fn attendees(comp: &calcard::icalendar::ICalendarComponent) -> Value {
    Value::Array(
        object::attendees(comp)
            .into_iter()
            .map(|(address, entry)| {
                let mut value = json!({
                    "address": address.email(),
                    "partstat": object::param(entry, &ICalendarParameterName::Partstat).unwrap_or_else(|| "NEEDS-ACTION".into()),
                });
                if let Some(status) = object::param(entry, &ICalendarParameterName::ScheduleStatus) {
                    value["schedule_status"] = Value::String(status);
                }
                value
            })
            .collect(),
    )
}

fn prop(comp: &calcard::icalendar::ICalendarComponent, name: ICalendarProperty) -> Value {
    object::text(comp, &name).map_or(Value::Null, Value::String)
}

/// The summary of one stored object, in the shape the CLI contract gives.
pub fn summary(ical: &ICalendar) -> Value {
    let doc = Doc::from_ical(ical);
    let zones = Zones::new(vec![ical]);
    let master = doc.master().or_else(|| doc.items().first().copied());
    let Some(master) = master else {
        return Value::Null;
    };
    let comp = &doc.nodes[master].comp;
    let at = |name: ICalendarProperty| {
        comp.property(&name)
            .map_or(Value::Null, |e| when(e, &zones))
    };
    let mut out = json!({
        "uid": prop(comp, ICalendarProperty::Uid),
        "component": comp.component_type.as_str(),
        "sequence": object::sequence(comp),
        "dtstamp": at(ICalendarProperty::Dtstamp),
        "status": prop(comp, ICalendarProperty::Status),
        "summary": prop(comp, ICalendarProperty::Summary),
        "dtstart": at(ICalendarProperty::Dtstart),
        "dtend": comp.property(&ICalendarProperty::Dtend).or_else(|| comp.property(&ICalendarProperty::Due)).map_or(Value::Null, |e| when(e, &zones)),
        "organizer": object::organizer(comp).map_or(Value::Null, |o| Value::String(o.email().to_string())),
        "attendees": attendees(comp),
    });
    // RFC 6638 SCHEDULE-STATUS on the ORGANIZER: what became of our message to the
    // organiser (a delivery failure recorded from a DSN or an SMTP refusal).
    if let Some(status) = comp
        .property(&ICalendarProperty::Organizer)
        .and_then(|e| object::param(e, &ICalendarParameterName::ScheduleStatus))
    {
        out["organizer_schedule_status"] = Value::String(status);
    }
    if let Some(tzid) = comp
        .property(&ICalendarProperty::Dtstart)
        .and_then(|e| object::param(e, &ICalendarParameterName::Tzid))
    {
        out["tzid"] = Value::String(tzid);
    }
    let overrides: Vec<Value> = doc
        .items()
        .into_iter()
        .filter(|i| *i != master)
        .map(|i| {
            let c = &doc.nodes[i].comp;
            json!({
                "recurrence_id": c.property(&ICalendarProperty::RecurrenceId).map_or(Value::Null, |e| when(e, &zones)),
                "status": prop(c, ICalendarProperty::Status),
                "sequence": object::sequence(c),
                "attendees": attendees(c),
            })
        })
        .collect();
    out["overrides"] = Value::Array(overrides);
    out
}

/// Runs `show`.
pub fn run(args: &ShowArgs) -> ExitCode {
    if args.views.any() {
        return crate::store::cli::show(&args.store, args.mailbox.as_deref(), &args.views);
    }
    let store = match Store::open(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!(
                "imipd show: cannot open the store at {}: {e}",
                args.store.display()
            );
            return ExitCode::from(2);
        }
    };
    let objects = match store.objects(args.mailbox.as_deref()) {
        Ok(objects) => objects,
        Err(e) => {
            eprintln!("imipd show: cannot read the store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let objects: Vec<_> = objects
        .into_iter()
        .filter(|(_, o)| args.uid.as_deref().is_none_or(|uid| o.uid == uid))
        .map(|(mailbox, mut o)| {
            if args.original
                && let Some(original) = o.original.take()
            {
                o.ical = original;
            }
            (mailbox, o)
        })
        .collect();
    let several = objects
        .iter()
        .map(|(m, _)| m)
        .collect::<std::collections::HashSet<_>>()
        .len()
        > 1;
    match args.format {
        Format::Ics => {
            let mut out = std::io::stdout().lock();
            for (_, object) in &objects {
                if out.write_all(object.ical.as_bytes()).is_err() {
                    break;
                }
            }
        }
        Format::Html => return page(&store, args),
        Format::Jcal => {
            let calendars: Vec<ICalendar> = objects
                .iter()
                .filter_map(|(_, o)| calendar::parse(&o.ical).ok())
                .flatten()
                .collect();
            let text = calendar::export::export(&calendars, calendar::export::Format::Jcal);
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
        Format::Json => {
            let list: Vec<Value> = objects
                .iter()
                .filter_map(|(mailbox, object)| {
                    let ical = calendar::parse(&object.ical).ok()?.into_iter().next()?;
                    let mut value = summary(&ical);
                    if several && args.mailbox.is_none() {
                        value["mailbox"] = Value::String(mailbox.clone());
                    }
                    Some(value)
                })
                .collect();
            let text = serde_json::to_string_pretty(&Value::Array(list))
                .expect("JSON values always serialise");
            // A closed pipe (`| head`) ends the output, not the tool.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
    ExitCode::SUCCESS
}

/// `show --format html`: the page the HTTP listener publishes for the mailbox.
fn page(store: &Store, args: &ShowArgs) -> ExitCode {
    let account = match &args.mailbox {
        Some(mailbox) => mailbox.clone(),
        None => match store.mailboxes() {
            Ok(found) if found.len() == 1 => found[0].clone(),
            Ok(found) if found.is_empty() => {
                eprintln!("imipd show: the store holds no mailbox");
                return ExitCode::FAILURE;
            }
            Ok(found) => {
                eprintln!(
                    "imipd show: the store holds several mailboxes ({}); choose one with --mailbox",
                    found.join(", ")
                );
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("imipd show: cannot read the store: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let publication = match &args.config {
        None => crate::publish::Publication::offline(&account),
        Some(path) => {
            let config = match crate::config::Config::load(path) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("imipd show: {e}");
                    return ExitCode::from(2);
                }
            };
            match config
                .mailboxes
                .iter()
                .find(|m| m.address.eq_ignore_ascii_case(&account))
            {
                Some(mailbox) => crate::publish::Publication::of(mailbox),
                None => {
                    eprintln!(
                        "imipd show: {} configures no mailbox {account}",
                        path.display()
                    );
                    return ExitCode::from(2);
                }
            }
        }
    };
    let now = match &args.now {
        None => chrono::Utc::now(),
        Some(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&chrono::Utc),
            Err(e) => {
                eprintln!("imipd show: --now {text}: {e} (write e.g. 2027-01-04T08:00:00Z)");
                return ExitCode::from(2);
            }
        },
    };
    if !(1..=crate::publish::MAX_PAGE_DAYS).contains(&args.days) {
        eprintln!(
            "imipd show: --days must be from 1 to {}",
            crate::publish::MAX_PAGE_DAYS
        );
        return ExitCode::from(2);
    }
    let objects = match crate::publish::objects(store, &publication, args.uid.as_deref()) {
        Ok(objects) => objects,
        Err(e) => {
            eprintln!("imipd show: cannot read the store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (from, to) = crate::publish::page_window(&publication, now, args.days);
    let found = crate::publish::bookings(&objects, &publication, from, to);
    let text = crate::publish::page(&found, &publication, from, to);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}
