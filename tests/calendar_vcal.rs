//! vCalendar 1.0 → iCalendar 2.0: one runner over tests/data/vcal.
//!
//! - `NAME.vcs` + `NAME.expected`: every non-comment line of the `.expected` file appears as
//!   a content line of the (unfolded) conversion, and the result parses as iCalendar 2.0;
//! - `NAME.instances`: the UTC starts the converted object expands to;
//! - `invalid/NAME.vcs` + `NAME.error`: the conversion fails with that message (it names the
//!   line and what was expected);
//! - `spec-recurrence-examples.txt`: every recurrence example of the specification.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use imipd::calendar::{self, recur, vcal1};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vcal")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("data directory exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn data_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("readable")
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn unfolded_lines(text: &str) -> Vec<String> {
    text.replace("\r\n ", "")
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

fn utc(text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y%m%dT%H%M%SZ")
        .unwrap_or_else(|e| panic!("bad test date {text}: {e}"));
    Utc.from_utc_datetime(&naive)
}

#[test]
fn at_least_fifteen_vcalendar_objects_are_covered() {
    let valid = files(&dir(), "vcs").len();
    let invalid = files(&dir().join("invalid"), "vcs").len();
    assert!(valid >= 15, "only {valid} vCalendar objects");
    assert!(invalid >= 3, "only {invalid} invalid vCalendar objects");
}

#[test]
fn every_vcalendar_object_converts_to_the_expected_icalendar() {
    for vcs in files(&dir(), "vcs") {
        let bytes = std::fs::read(&vcs).expect("readable");
        assert!(
            vcal1::is_vcalendar1(&bytes),
            "{} not detected",
            vcs.display()
        );
        let text = vcal1::convert(&bytes).unwrap_or_else(|e| panic!("{}: {e}", vcs.display()));
        for physical in text.split("\r\n") {
            assert!(
                physical.len() <= 75,
                "{}: line over 75 octets: {physical}",
                vcs.display()
            );
        }
        let lines = unfolded_lines(&text);
        let expected = vcs.with_extension("expected");
        assert!(expected.exists(), "{} has no .expected file", vcs.display());
        for want in data_lines(&expected) {
            assert!(
                lines.contains(&want),
                "{}: missing line\n  {want}\nin\n{text}",
                vcs.display()
            );
        }
        let cals = calendar::parse_any(&bytes).unwrap_or_else(|e| panic!("{}: {e}", vcs.display()));
        assert!(!cals.is_empty());
        assert!(!text.contains("VERSION:1.0"), "{}", vcs.display());
    }
}

#[test]
fn converted_objects_expand_to_the_stated_instances() {
    for file in files(&dir(), "instances") {
        let vcs = file.with_extension("vcs");
        let cals = calendar::parse_any(&std::fs::read(&vcs).expect("readable"))
            .unwrap_or_else(|e| panic!("{}: {e}", vcs.display()));
        let want: Vec<DateTime<Utc>> = data_lines(&file).iter().map(|l| utc(l)).collect();
        let start = want[0] - Duration::days(120);
        let got: Vec<DateTime<Utc>> = recur::expand(
            &cals[0],
            start,
            start + Duration::days(3000),
            &recur::Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", vcs.display()))
        .iter()
        .map(|o| o.start_utc)
        .collect();
        assert_eq!(got, want, "{}", vcs.display());
    }
}

#[test]
fn invalid_objects_fail_naming_the_line_and_what_was_expected() {
    for vcs in files(&dir().join("invalid"), "vcs") {
        let err = vcal1::convert(&std::fs::read(&vcs).expect("readable"))
            .expect_err(&format!("{} must fail", vcs.display()));
        let want = std::fs::read_to_string(vcs.with_extension("error")).expect(".error file");
        assert!(
            err.to_string().starts_with(want.trim()),
            "{}:\n  got  {err}\n  want {}",
            vcs.display(),
            want.trim()
        );
    }
}

#[test]
fn every_recurrence_example_of_the_specification_converts_and_expands_as_stated() {
    let table = dir().join("spec-recurrence-examples.txt");
    let mut checked = 0;
    for row in data_lines(&table) {
        let cols: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cols.len(), 5, "bad row {row}");
        let (rule, start, rrule, first, total) = (cols[0], utc(cols[1]), cols[2], cols[3], cols[4]);
        let converted = vcal1::convert_rrule(rule, Some(start.naive_utc()))
            .unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(converted, rrule, "conversion of '{rule}'");
        let ics = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:spec\r\n\
DTSTAMP:19940101T000000Z\r\nDTSTART:{}\r\nRRULE:{rrule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            cols[1]
        );
        let cals = calendar::parse(&ics).expect("valid");
        let instances = recur::expand(
            &cals[0],
            start,
            start + Duration::days(3650),
            &recur::Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{rule}: {e}"));
        let days: Vec<String> = instances
            .iter()
            .map(|o| o.start_utc.format("%Y%m%d").to_string())
            .collect();
        let want: Vec<&str> = first.split_whitespace().collect();
        assert_eq!(
            &days[..want.len().min(days.len())],
            &want[..],
            "instances of '{rule}'"
        );
        match total {
            "forever" => assert!(instances.len() > 100, "'{rule}' gave {}", instances.len()),
            n => assert_eq!(instances.len().to_string(), n, "count of '{rule}'"),
        }
        assert!(
            instances.iter().all(|o| o.start_utc.time() == start.time()),
            "'{rule}' keeps DTSTART's time"
        );
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} examples");
}

#[test]
fn fuzzer_findings_are_refused_with_a_line_number() {
    // Inputs libFuzzer found (minimised): objects that are not version 1.0 inside a
    // vCalendar stream, with broken nesting. They must fail cleanly, naming the line.
    let dir = dir().join("fuzz");
    for file in files(&dir, "vcs") {
        let bytes = std::fs::read(&file).expect("readable");
        let err = calendar::parse_any(&bytes).expect_err(&format!("{}", file.display()));
        assert!(
            err.to_string().contains("line "),
            "{}: {err}",
            file.display()
        );
    }
}
