//! iCalendar 2.0 reading and writing over the objects under tests/data/ical.

use chrono::{TimeZone, Utc};
use imipd::calendar::{self, ParseError, Severity, recur};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical")
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

fn parse_file(path: &Path) -> Vec<calendar::ICalendar> {
    calendar::parse_bytes(&std::fs::read(path).expect("readable"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Unfolds on bytes (a fold may split a UTF-8 sequence), then decodes.
fn unfold(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let eol = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => 2,
            b'\n' => 1,
            _ => 0,
        };
        if eol > 0 && matches!(bytes.get(i + eol), Some(b' ' | b'\t')) {
            i += eol + 1;
            continue;
        }
        if eol > 0 {
            out.push(b'\n');
            i += eol;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("test data is UTF-8")
}

/// One content line: name, parameters (sorted, quotes removed) and raw value.
#[derive(Debug, PartialEq, Eq)]
struct ContentLine {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

fn content_lines(bytes: &[u8]) -> Vec<ContentLine> {
    unfold(bytes)
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(split_line)
        .collect()
}

fn split_line(line: &str) -> ContentLine {
    let mut in_quotes = false;
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut value = String::new();
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => {
                in_quotes = !in_quotes;
                current.push(ch);
            }
            ';' if !in_quotes => parts.push(std::mem::take(&mut current)),
            ':' if !in_quotes => {
                parts.push(std::mem::take(&mut current));
                value = line[i + 1..].to_string();
                break;
            }
            _ => current.push(ch),
        }
    }
    let name = parts
        .first()
        .cloned()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let mut params: Vec<(String, String)> = parts
        .iter()
        .skip(1)
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), v.replace('"', "")),
            None => (p.to_ascii_uppercase(), String::new()),
        })
        .collect();
    params.sort();
    ContentLine {
        name,
        params,
        value,
    }
}

/// Values calcard writes in another, equivalent form (RRULE parts reordered, durations in
/// their shortest form, UTC offsets without zero seconds).
const NORMALISED: [&str; 5] = ["RRULE", "TRIGGER", "DURATION", "TZOFFSETFROM", "TZOFFSETTO"];

#[test]
fn at_least_forty_client_objects_are_covered() {
    let count: usize = files(&dir(), "ics")
        .iter()
        .map(|f| parse_file(f).len())
        .sum();
    assert!(count >= 40, "only {count} iCalendar objects");
}

#[test]
fn every_object_survives_read_write_with_every_property_and_parameter_in_order() {
    for file in files(&dir(), "ics") {
        let bytes = std::fs::read(&file).expect("readable");
        let cals = parse_file(&file);
        let out: String = cals.iter().map(calendar::write).collect();
        let input = content_lines(&bytes);
        let output = content_lines(out.as_bytes());
        assert_eq!(
            input.len(),
            output.len(),
            "{}: line count\n{out}",
            file.display()
        );
        for (a, b) in input.iter().zip(&output) {
            assert_eq!(a.name, b.name, "{}: property order", file.display());
            let names = |l: &ContentLine| l.params.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
            assert_eq!(
                names(a),
                names(b),
                "{}: parameters of {}",
                file.display(),
                a.name
            );
            for ((_, va), (_, vb)) in a.params.iter().zip(&b.params) {
                assert!(
                    va.eq_ignore_ascii_case(vb),
                    "{}: parameter value of {}: {va:?} became {vb:?}",
                    file.display(),
                    a.name
                );
            }
            if a.name.starts_with("X-") {
                // X- values are written with raw commas (vendors' payloads are not TEXT);
                // an input that escaped a comma reads the same as TEXT.
                assert_eq!(
                    a.value.replace("\\,", ","),
                    b.value,
                    "{}: value of {}",
                    file.display(),
                    a.name
                );
            } else if !NORMALISED.contains(&a.name.as_str()) {
                assert_eq!(a.value, b.value, "{}: value of {}", file.display(), a.name);
            }
        }
        // The written text reads back to the same model.
        assert_eq!(
            calendar::parse(&out).expect("output parses"),
            cals,
            "{}: read(write(x)) != x",
            file.display()
        );
    }
}

#[test]
fn output_uses_crlf_and_folds_at_75_octets_on_utf8_boundaries() {
    for file in files(&dir(), "ics") {
        let out: String = parse_file(&file).iter().map(calendar::write).collect();
        assert!(out.ends_with("\r\n"));
        assert!(
            !out.replace("\r\n", "").contains('\n'),
            "{}: bare LF",
            file.display()
        );
        for line in out.split("\r\n") {
            assert!(
                line.len() <= 75,
                "{}: {} octets: {line}",
                file.display(),
                line.len()
            );
        }
    }
    // A long UTF-8 summary is folded without splitting a character.
    let cals = parse_file(&dir().join("utf8-split-across-folds.raw.ics"));
    let mut long = cals[0].clone();
    let text = "Überlänge – 日本語のテキスト ".repeat(12);
    let summary = long.components[1]
        .entries
        .iter_mut()
        .find(|e| e.name == calendar::ICalendarProperty::Summary)
        .expect("fixture has SUMMARY");
    summary.values = vec![calendar::ICalendarValue::Text(text.clone())];
    let out = calendar::write(&long);
    assert!(out.split("\r\n").all(|l| l.len() <= 75));
    assert!(out.replace("\r\n ", "").contains(&text));
}

#[test]
fn instances_and_defects_match_the_table() {
    let table = std::fs::read_to_string(dir().join("expected-instances.txt")).expect("table");
    let mut rows = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let mut checked = 0;
    for file in files(&dir(), "ics") {
        for ical in parse_file(&file) {
            let row = rows.next().expect("a row per object");
            let cols: Vec<&str> = row.split(" | ").map(str::trim).collect();
            let name = file.file_name().expect("name").to_string_lossy();
            assert_eq!(cols[0], name, "table order");
            let defects = calendar::defects(&ical);
            let errors = defects
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let shown = format!("{errors}/{}", defects.len() - errors);
            assert_eq!(shown, cols[1], "{name}: defects {defects:?}");
            let occurrences = recur::expand(
                &ical,
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                    .single()
                    .expect("valid"),
                Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0)
                    .single()
                    .expect("valid"),
                &recur::Limits::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got: Vec<String> = occurrences
                .iter()
                .map(|o| {
                    format!(
                        "{}{}{}",
                        o.start_utc.format("%Y%m%dT%H%M%SZ"),
                        if o.is_override { "*" } else { "" },
                        if o.cancelled { "x" } else { "" }
                    )
                })
                .collect();
            assert_eq!(got.join(" "), cols.get(2).copied().unwrap_or(""), "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 40);
}

#[test]
fn malformed_objects_fail_naming_the_line() {
    for file in files(&dir().join("invalid"), "ics") {
        let err = calendar::parse_bytes(&std::fs::read(&file).expect("readable"))
            .expect_err(&format!("{} must fail", file.display()));
        let want = std::fs::read_to_string(file.with_extension("error")).expect(".error file");
        assert_eq!(err.to_string(), want.trim(), "{}", file.display());
    }
}

#[test]
fn defects_name_the_component_property_and_what_was_expected() {
    for file in files(&dir().join("defects"), "ics") {
        let cals = parse_file(&file);
        let got: Vec<String> = calendar::defects(&cals[0])
            .iter()
            .map(|d| d.to_string())
            .collect();
        let want: Vec<String> = std::fs::read_to_string(file.with_extension("defects"))
            .expect(".defects file")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(got, want, "{}", file.display());
    }
}

#[test]
fn a_missing_dtstamp_is_only_a_warning() {
    let cals = parse_file(&dir().join("simple-client-no-dtstamp.ics"));
    let defects = calendar::defects(&cals[0]);
    assert_eq!(defects.len(), 1);
    assert_eq!(defects[0].severity, Severity::Warning);
    assert!(calendar::SchedulingView::new(&cals[0]).is_ok());
}

#[test]
fn a_utf8_character_split_across_a_fold_is_joined() {
    let cals = parse_file(&dir().join("utf8-split-across-folds.raw.ics"));
    let view = calendar::SchedulingView::new(&cals[0]).expect("scheduling object");
    assert_eq!(
        view.main().summary.as_deref(),
        Some("Besprechung mit Herrn Müller und 日本語im Raum")
    );
}

#[test]
fn tab_and_lf_folding_are_unfolded() {
    let tab = parse_file(&dir().join("thunderbird-tab-folding.ics"));
    let summary = calendar::SchedulingView::new(&tab[0])
        .expect("view")
        .main()
        .summary
        .clone();
    assert_eq!(
        summary.as_deref(),
        Some(
            "A summary folded with a tab character that a strict parser must join without the tab"
        )
    );
    let lf = parse_file(&dir().join("evolution-lf-only.lf.ics"));
    let summary = calendar::SchedulingView::new(&lf[0])
        .expect("view")
        .main()
        .summary
        .clone();
    assert_eq!(
        summary.as_deref(),
        Some(
            "Written with bare LF line ends and a long description that is folded with LF and a space"
        )
    );
}

#[test]
fn quoted_parameters_escaped_text_and_multiple_values_are_read() {
    let cals = parse_file(&dir().join("escaped-text-and-multivalues.ics"));
    let view = calendar::SchedulingView::new(&cals[0]).expect("view");
    let main = view.main();
    assert_eq!(
        main.summary.as_deref(),
        Some("Backslash \\ comma , semicolon ; newline\nsecond line")
    );
    assert_eq!(main.organizer_name.as_deref(), Some("Doe, John"));
    assert_eq!(
        main.organizer_sent_by.as_ref().map(|a| a.email()),
        Some("assistant@example.test")
    );
    assert_eq!(
        main.attendees[0].common_name.as_deref(),
        Some("O'Brien; Pat")
    );
    let event = &cals[0].components[1];
    let categories: Vec<_> = event
        .properties(&calendar::ICalendarProperty::Categories)
        .flat_map(|e| e.values.iter().filter_map(|v| v.as_text()))
        .collect();
    assert_eq!(categories, ["Meeting", "Business", "Quarter, end"]);
    let exdates = event
        .properties(&calendar::ICalendarProperty::Exdate)
        .map(|e| e.values.len())
        .sum::<usize>();
    assert_eq!(exdates, 2);
}

#[test]
fn an_unquoted_comma_in_a_common_name_is_kept() {
    let cals = parse_file(&dir().join("outlook-request-w-europe-1601.ics"));
    let view = calendar::SchedulingView::new(&cals[0]).expect("view");
    assert_eq!(
        view.main().organizer_name.as_deref(),
        Some("Müller, Jürgen")
    );
    assert!(calendar::write(&cals[0]).contains("ORGANIZER;CN=\"Müller, Jürgen\":mailto:"));
}

#[test]
fn vendor_payloads_in_x_properties_are_written_back_unescaped() {
    let cals = parse_file(&dir().join("unknown-props-and-params-in-order.ics"));
    let out = calendar::write(&cals[0]);
    let unfolded = out.replace("\r\n ", "");
    assert!(
        unfolded.contains("X-JSON-PAYLOAD:{\"a\":1,\"b\":[1,2,3]}\r\n"),
        "{unfolded}"
    );
    assert!(unfolded.contains("REQUEST-STATUS:2.0;Success\r\n"));
    assert!(
        unfolded.contains("X-CUSTOM-DUP;X-P=1:first value\r\nX-CUSTOM-DUP;X-P=2:second value\r\n")
    );
    let apple = calendar::write(&parse_file(&dir().join("apple-structured-location.ics"))[0]);
    assert!(
        apple
            .replace("\r\n ", "")
            .contains(":geo:47.372397,8.538970\r\n")
    );
}

#[test]
fn several_calendars_nested_alarms_and_timezones_are_kept() {
    let stream = parse_file(&dir().join("multi-calendar-stream.ics"));
    assert_eq!(stream.len(), 3);
    let todo = &stream[2];
    assert!(
        todo.components
            .iter()
            .any(|c| c.component_type == calendar::ICalendarComponentType::VAlarm)
    );
    let tb = parse_file(&dir().join("thunderbird-request.ics"));
    let alarms = tb[0]
        .components
        .iter()
        .filter(|c| c.component_type == calendar::ICalendarComponentType::VAlarm)
        .count();
    assert_eq!(alarms, 2);
    let written = calendar::write(&tb[0]);
    assert_eq!(written.matches("BEGIN:VALARM").count(), 2);
    assert_eq!(written.matches("BEGIN:STANDARD").count(), 2);
    assert_eq!(written.matches("BEGIN:DAYLIGHT").count(), 1);
}

#[test]
fn byte_order_mark_and_size_guard() {
    assert_eq!(parse_file(&dir().join("byte-order-mark.raw.ics")).len(), 1);
    let huge = vec![b'x'; calendar::MAX_INPUT + 1];
    assert!(matches!(
        calendar::parse_bytes(&huge),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn parse_any_reads_both_versions_into_one_model() {
    let vcs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vcal/mixed-stream.vcs");
    let cals = calendar::parse_any(&std::fs::read(vcs).expect("readable")).expect("parses");
    assert_eq!(cals.len(), 2);
    for ical in &cals {
        let view = calendar::SchedulingView::new(ical).expect("view");
        assert!(view.uid.as_str().starts_with("mixed-v"));
    }
}
