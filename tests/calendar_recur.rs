//! Recurrence expansion: one runner over tests/data/ical/recur/expected.txt.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use imipd::calendar::{self, recur, tz};
use std::path::PathBuf;

fn utc(text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .unwrap_or_else(|e| panic!("bad test date {text}: {e}"));
    Utc.from_utc_datetime(&naive)
}

#[test]
fn expansions_match_the_table() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical/recur");
    let table = std::fs::read_to_string(dir.join("expected.txt")).expect("table");
    let mut checked = 0;
    for row in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = row.split(" | ").map(str::trim).collect();
        let cals = calendar::parse_bytes(&std::fs::read(dir.join(cols[0])).expect("readable"))
            .expect("parses");
        let (start, end) = cols[1].split_once(' ').expect("window");
        let floating = tz::zone_by_name(cols[2]).expect("known zone");
        let result = recur::expand_in(
            &cals[0],
            &floating,
            utc(start),
            utc(end),
            &recur::Limits::default(),
        );
        match cols[3].strip_prefix("error: ") {
            Some(want) => {
                let err = result.expect_err(row);
                assert!(err.to_string().starts_with(want), "{row}\n  got {err}");
            }
            None => {
                let got: Vec<String> = result
                    .unwrap_or_else(|e| panic!("{row}: {e}"))
                    .iter()
                    .map(|o| {
                        format!(
                            "{}/{}{}{}{}",
                            o.start_utc.format("%Y%m%dT%H%M%SZ"),
                            o.end_utc.format("%Y%m%dT%H%M%SZ"),
                            if o.is_override { "*" } else { "" },
                            if o.cancelled { "x" } else { "" },
                            if o.transparent { "t" } else { "" }
                        )
                    })
                    .collect();
                assert_eq!(got.join(" "), cols[3], "{}", cols[0]);
            }
        }
        checked += 1;
    }
    assert!(checked >= 7);
}

#[test]
fn each_instance_carries_its_recurrence_id() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical");
    let cals = calendar::parse_bytes(
        &std::fs::read(dir.join("outlook-recurring-with-exception.ics")).expect("readable"),
    )
    .expect("parses");
    let occurrences = recur::expand(
        &cals[0],
        utc("20270201T000000Z"),
        utc("20270301T000000Z"),
        &recur::Limits::default(),
    )
    .expect("expands");
    let moved = occurrences
        .iter()
        .find(|o| o.is_override)
        .expect("override");
    assert_eq!(moved.recurrence_id, utc("20270209T090000Z"));
    assert_eq!(moved.start_utc, utc("20270209T130000Z"));
    assert_eq!(
        moved.uid.as_str(),
        calendar::SchedulingView::new(&cals[0])
            .expect("view")
            .uid
            .as_str()
    );
    assert!(
        occurrences
            .iter()
            .filter(|o| !o.is_override)
            .all(|o| o.recurrence_id == o.start_utc)
    );
}
