//! Fuzzes mail extraction end to end: MIME walk, raw re-decoding, sender facts,
//! Authentication-Results, DSN and TNEF parsing. Any panic is a finding.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run extract -- -max_total_time=300`
//! (seed corpus: `cp ../tests/data/mail/*/*.eml corpus/extract/`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(found) = imipd::mail::extract(data) {
        for part in &found.parts {
            let _ = part.method_mismatch();
        }
    }
    // The TNEF reader is reachable only through a MIME part; feed it raw bytes as well.
    let _ = imipd::mail::tnef::meeting_from_tnef(data);
});
