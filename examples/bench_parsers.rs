//! imipd's side of the parser comparison (`scripts/bench-parsers`): parses every `.ics` file
//! named on the command line with [`imipd::calendar::parse_bytes`], over and over for
//! `IMIPD_BENCH_SECS` seconds (default 3), and prints one JSON line: objects (VCALENDARs)
//! per second and MiB per second. The libical and Python drivers print the same line for
//! the same files.

use std::hint::black_box;

// The daemon's allocator (src/main.rs), so that the calendar layer is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

fn main() {
    let files: Vec<Vec<u8>> = std::env::args()
        .skip(1)
        .map(|p| std::fs::read(&p).unwrap_or_else(|e| panic!("read {p}: {e}")))
        .collect();
    assert!(!files.is_empty(), "usage: bench_parsers FILE.ics...");
    let secs: f64 = std::env::var("IMIPD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mut failed = 0;
    for file in &files {
        if imipd::calendar::parse_bytes(file).is_err() {
            failed += 1;
        }
    }
    let budget = Duration::from_secs_f64(secs);
    let started = Instant::now();
    let (mut objects, mut bytes, mut rounds) = (0u64, 0u64, 0u64);
    while started.elapsed() < budget {
        for file in &files {
            if let Ok(calendars) = imipd::calendar::parse_bytes(black_box(file)) {
                objects += calendars.len() as u64;
            }
            bytes += file.len() as u64;
        }
        rounds += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{{\"parser\": \"imipd (calcard + guards)\", \"files\": {}, \"failed\": {failed}, \"rounds\": {rounds}, \"objects_per_s\": {:.1}, \"mib_per_s\": {:.3}}}",
        files.len(),
        objects as f64 / elapsed,
        bytes as f64 / elapsed / 1048576.0
    );
}
