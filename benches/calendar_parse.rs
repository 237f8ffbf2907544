//! Parsing speed of the calendar layer over the client objects under tests/data.
//!
//! Run: `cargo bench --bench calendar_parse`. Each corpus is measured twice, once reported
//! in bytes per second and once in objects (VCALENDARs) per second. `parse_each_file`
//! parses the iCalendar files one by one, as `scripts/bench-parsers` does (most of them
//! have no fold and are read without a copy; the concatenated stream always has folds).

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imipd::calendar::{self, recur};
use std::hint::black_box;
use std::path::Path;

/// Every file with `ext` directly under `dir`, concatenated (a stream of objects).
fn corpus(dir: &str, ext: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("data directory exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("readable");
        out.extend_from_slice(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes));
        if !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Every `.ics` file directly under `tests/data/ical`, each on its own.
fn ical_files() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("data directory exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ics"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("readable"))
        .collect()
}

fn bench_parse(c: &mut Criterion) {
    let ical = corpus("tests/data/ical", "ics");
    let ical_objects = calendar::parse_bytes(&ical).expect("corpus parses").len() as u64;
    let vcal = corpus("tests/data/vcal", "vcs");
    let vcal_objects = calendar::parse_any(&vcal).expect("corpus parses").len() as u64;

    let mut group = c.benchmark_group("icalendar");
    group.throughput(Throughput::Bytes(ical.len() as u64));
    group.bench_function("parse_bytes", |b| {
        b.iter(|| calendar::parse_bytes(black_box(&ical)))
    });
    group.throughput(Throughput::Elements(ical_objects));
    group.bench_function("parse_objects", |b| {
        b.iter(|| calendar::parse_bytes(black_box(&ical)))
    });
    let each = ical_files();
    let each_objects: u64 = each
        .iter()
        .map(|f| calendar::parse_bytes(f).expect("file parses").len() as u64)
        .sum();
    group.throughput(Throughput::Elements(each_objects));
    group.bench_function("parse_each_file", |b| {
        b.iter(|| {
            each.iter()
                .map(|f| calendar::parse_bytes(black_box(f)).map_or(0, |c| c.len()))
                .sum::<usize>()
        })
    });
    let parsed = calendar::parse_bytes(&ical).expect("corpus parses");
    group.throughput(Throughput::Elements(ical_objects));
    group.bench_function("write_objects", |b| {
        b.iter(|| {
            parsed
                .iter()
                .map(calendar::write)
                .map(|s| s.len())
                .sum::<usize>()
        })
    });
    group.bench_function("defects_objects", |b| {
        b.iter(|| {
            parsed
                .iter()
                .map(|c| calendar::defects(c).len())
                .sum::<usize>()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("vcalendar");
    group.throughput(Throughput::Bytes(vcal.len() as u64));
    group.bench_function("parse_any_bytes", |b| {
        b.iter(|| calendar::parse_any(black_box(&vcal)))
    });
    group.throughput(Throughput::Elements(vcal_objects));
    group.bench_function("parse_any_objects", |b| {
        b.iter(|| calendar::parse_any(black_box(&vcal)))
    });
    group.finish();
}

fn bench_expand(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical");
    let daily = calendar::parse_bytes(
        &std::fs::read(dir.join("google-recurring-until.ics")).expect("readable"),
    )
    .expect("parses");
    let bomb = calendar::parse_bytes(
        &std::fs::read(dir.join("recur/secondly-bomb.ics")).expect("readable"),
    )
    .expect("parses");
    let start = Utc
        .with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
        .single()
        .expect("valid");
    let end = Utc
        .with_ymd_and_hms(2028, 1, 1, 0, 0, 0)
        .single()
        .expect("valid");
    let limits = recur::Limits::default();
    let mut group = c.benchmark_group("recurrence");
    group.bench_function("expand_daily_across_dst", |b| {
        b.iter(|| recur::expand(black_box(&daily[0]), start, end, &limits))
    });
    group.bench_function("refuse_secondly_bomb", |b| {
        b.iter(|| recur::expand(black_box(&bomb[0]), start, end, &limits).is_err())
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_expand);
criterion_main!(benches);
