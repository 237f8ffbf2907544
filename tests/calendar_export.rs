//! Exports (iCalendar, jCal, hCalendar) and the `imipd convert` command.

use imipd::calendar::{self, export};
use std::path::PathBuf;
use std::process::Command;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn read(path: &str) -> Vec<calendar::ICalendar> {
    let path = data(path);
    calendar::parse_file(&std::fs::read(&path).expect("readable"), &path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn jcal_matches_the_reviewed_rfc_7265_output() {
    let got = export::export(
        &read("ical/escaped-text-and-multivalues.ics"),
        export::Format::Jcal,
    );
    let want = std::fs::read_to_string(data("ical/export/escaped-text-and-multivalues.jcal.json"))
        .expect("golden file");
    let got: serde_json::Value = serde_json::from_str(&got).expect("valid JSON");
    let want: serde_json::Value = serde_json::from_str(&want).expect("valid JSON");
    assert_eq!(got, want);
}

#[test]
fn jcal_writes_recur_values_as_objects_and_local_times_without_zone() {
    let got = export::jcal(&read("ical/google-recurring-until.ics")[0]);
    let event = &got[2][1][1];
    let props: Vec<&serde_json::Value> = event.as_array().expect("properties").iter().collect();
    let find = |name: &str| {
        props
            .iter()
            .find(|p| p[0] == name)
            .copied()
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        find("dtstart"),
        &serde_json::json!(["dtstart", {"tzid": "Europe/Berlin"}, "date-time", "2027-03-01T10:00:00"])
    );
    assert_eq!(
        find("rrule"),
        &serde_json::json!(["rrule", {}, "recur", {"freq": "DAILY", "until": "2027-03-30T08:00:00Z"}])
    );
    let vtimezone = &got[2][0];
    assert_eq!(vtimezone[0], "vtimezone");
    assert_eq!(
        vtimezone[2][0][1][0],
        serde_json::json!(["tzoffsetfrom", {}, "utc-offset", "+01:00"])
    );
}

#[test]
fn hcalendar_page_matches_the_reviewed_output_with_an_inclusive_whole_day_end() {
    let got = export::export(&read("ical/google-all-day-multi.ics"), export::Format::Html);
    let want = std::fs::read_to_string(data("ical/export/google-all-day-multi.html"))
        .expect("golden file");
    assert_eq!(got, want);
    // DTEND;VALUE=DATE:20270408 is exclusive; hCalendar's dtend is the last day, inclusive.
    assert!(got.contains("<abbr class=\"dtend\" title=\"2027-04-07\">"));
}

#[test]
fn hcalendar_escapes_html_in_calendar_text() {
    let mut cals = read("ical/google-request.ics");
    let event = cals[0]
        .components
        .iter_mut()
        .find(|c| c.component_type == calendar::ICalendarComponentType::VEvent)
        .expect("event");
    let summary = event
        .entries
        .iter_mut()
        .find(|e| e.name == calendar::ICalendarProperty::Summary)
        .expect("summary");
    summary.values = vec![calendar::ICalendarValue::Text(
        "<script>alert(1)</script>".into(),
    )];
    let page = export::hcalendar_page(&cals);
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn an_email_yields_its_calendar_parts_once() {
    let cals = read("ical/mail/google-invite.eml");
    assert_eq!(
        cals.len(),
        1,
        "the text/calendar part and invite.ics are one object"
    );
    let vcal = read("ical/mail/vcalendar-request.eml");
    let view = calendar::SchedulingView::new(&vcal[0]).expect("view");
    assert_eq!(view.method, Some(calendar::Method::Request));
    assert_eq!(
        view.main().organizer.as_ref().map(|o| o.email()),
        Some("org@ext.test")
    );
}

#[test]
fn convert_command_writes_each_format_and_fails_clearly_on_bad_input() {
    let bin = env!("CARGO_BIN_EXE_imipd");
    for (format, marker) in [
        ("ics", "BEGIN:VCALENDAR"),
        ("jcal", "\"vcalendar\""),
        ("html", "class=\"vevent\""),
    ] {
        let out = Command::new(bin)
            .args(["convert", "--to", format])
            .arg(data("vcal/recurring-weekly-with-tz.vcs"))
            .output()
            .expect("imipd runs");
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{format}"
        );
    }
    let out = Command::new(bin)
        .args(["convert"])
        .arg(data("vcal/invalid/bad-rrule.vcs"))
        .output()
        .expect("imipd runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vCalendar line 6: RRULE"));
}
