//! iCalendar 2.0: parse, check, write, read back, expand and export any bytes without a panic.
#![no_main]

use chrono::{TimeZone, Utc};
use imipd::calendar::{self, export, recur};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cals) = calendar::parse_bytes(data) else {
        return;
    };
    let start = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap();
    let limits = recur::Limits {
        max_instances: 1000,
        max_iterations: 20_000,
        ..recur::Limits::default()
    };
    for ical in &cals {
        let _ = calendar::defects(ical);
        let _ = calendar::SchedulingView::new(ical);
        let written = calendar::write(ical);
        // What we write must read back.
        calendar::parse(&written).expect("written output parses");
        let _ = recur::expand(ical, start, end, &limits);
        let _ = export::jcal(ical);
    }
    let _ = export::hcalendar_page(&cals);
});
