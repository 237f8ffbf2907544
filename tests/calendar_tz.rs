//! Time zone resolution and conversion: one runner over tests/data/ical/timezones.txt, plus
//! the VTIMEZONE rule reader on an Exchange block that starts in 1601.

use chrono::{NaiveDateTime, TimeZone, Utc};
use imipd::calendar::{self, tz};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical")
}

#[test]
fn local_times_convert_to_utc_across_dst_for_every_tzid_form() {
    let table = std::fs::read_to_string(dir().join("timezones.txt")).expect("table");
    let mut checked = 0;
    for row in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = row.split(" | ").map(str::trim).collect();
        let zone = match cols[0].split_once(".ics: ") {
            Some((file, tzid)) => {
                let cals = calendar::parse_bytes(
                    &std::fs::read(dir().join(format!("{file}.ics"))).expect("readable"),
                )
                .expect("parses");
                tz::Resolver::new(&cals[0])
                    .resolve(tzid)
                    .unwrap_or_else(|e| panic!("{row}: {e}"))
            }
            None => tz::zone_by_name(cols[0]).unwrap_or_else(|| panic!("{row}: unknown")),
        };
        let local = NaiveDateTime::parse_from_str(cols[1], "%Y%m%dT%H%M%S").expect("local");
        let want = Utc.from_utc_datetime(
            &NaiveDateTime::parse_from_str(cols[2], "%Y%m%dT%H%M%SZ").expect("utc"),
        );
        assert_eq!(zone.to_utc(local), want, "{row}");
        checked += 1;
    }
    assert!(checked >= 25);
}

#[test]
fn exchange_1601_rules_are_read_when_used_without_the_name_table() {
    let cals = calendar::parse_bytes(
        &std::fs::read(dir().join("outlook-request-w-europe-1601.ics")).expect("readable"),
    )
    .expect("parses");
    let vtimezone = cals[0]
        .components
        .iter()
        .find(|c| c.component_type == calendar::ICalendarComponentType::VTimezone)
        .expect("fixture has a VTIMEZONE");
    let rules = tz::VTimezoneRules::from_component(&cals[0], vtimezone).expect("rules");
    assert_eq!(rules.observances.len(), 2);
    let zone = tz::Zone::Rules(std::sync::Arc::new(rules));
    for (local, utc) in [
        ("20270328T013000", "20270328T003000Z"),
        ("20270328T030000", "20270328T010000Z"),
        ("20271031T033000", "20271031T023000Z"),
        ("20500701T120000", "20500701T100000Z"),
    ] {
        let local = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S").expect("local");
        let utc = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%SZ").expect("utc");
        assert_eq!(zone.to_utc(local), Utc.from_utc_datetime(&utc));
        assert_eq!(zone.to_local(Utc.from_utc_datetime(&utc)), local);
    }
}

#[test]
fn an_unknown_tzid_without_rules_is_an_error_that_says_what_was_expected() {
    let resolver = tz::Resolver::default();
    let err = resolver.resolve("Foo").expect_err("unknown");
    assert!(err.to_string().contains("unknown time zone 'Foo'"));
}
