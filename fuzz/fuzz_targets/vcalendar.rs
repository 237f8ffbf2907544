//! vCalendar 1.0: convert any bytes, and parse what the conversion writes, without a panic.
#![no_main]

use imipd::calendar::{self, vcal1};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vcal1::convert_rrule(text, chrono::NaiveDate::from_ymd_opt(1996, 4, 1).and_then(|d| d.and_hms_opt(9, 0, 0)));
    }
    if let Ok(converted) = vcal1::convert(data) {
        // What the converter writes must be iCalendar 2.0 that the main parser accepts.
        // Objects of another VERSION are passed through as they are, so the check only
        // holds when every object is version 1.0.
        let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').map(|l| l.trim_ascii()).collect();
        let count = |f: &dyn Fn(&[u8]) -> bool| lines.iter().filter(|l| f(l)).count();
        let objects = count(&|l| l.eq_ignore_ascii_case(b"BEGIN:VCALENDAR"));
        let ends = count(&|l| l.eq_ignore_ascii_case(b"END:VCALENDAR"));
        let versions = count(&|l| l.len() >= 8 && l[..8].eq_ignore_ascii_case(b"VERSION:"));
        let v1 = count(&|l| l.eq_ignore_ascii_case(b"VERSION:1.0"));
        let non_empty: Vec<&&[u8]> = lines.iter().filter(|l| !l.is_empty()).collect();
        // One object, version 1.0, nothing around it: all of the output is the converter's.
        let only_v1 = objects == 1
            && ends == 1
            && versions == 1
            && v1 == 1
            && non_empty.first().is_some_and(|l| l.eq_ignore_ascii_case(b"BEGIN:VCALENDAR"))
            && non_empty.last().is_some_and(|l| l.eq_ignore_ascii_case(b"END:VCALENDAR"));
        match calendar::parse(&converted) {
            Ok(cals) => {
                for ical in &cals {
                    let _ = calendar::defects(ical);
                    let _ = calendar::write(ical);
                }
            }
            Err(e) if only_v1 => panic!("converted output does not parse: {e}\n{converted}"),
            Err(_) => {}
        }
    }
    let _ = calendar::parse_any(data);
});
