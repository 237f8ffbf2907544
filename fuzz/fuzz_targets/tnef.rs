//! Fuzzes the TNEF (winmail.dat) reader on its own: the attribute stream, the MAPI property
//! stream, the recipient table and the conversion to iCalendar. Any panic is a finding, and
//! whatever iCalendar the converter writes must parse again.
//!
//! Run: `scripts/fuzz tnef 60` (seeds: the winmail.dat parts of tests/data/mail/outlook).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meeting) = imipd::mail::tnef::meeting_from_tnef(data) {
        imipd::calendar::parse(&meeting.ical).expect("the converted meeting parses");
    }
});
