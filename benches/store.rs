//! Store benchmarks (criterion): commit rate, busy-index queries at 10k / 100k / 1M stored
//! events, disk space per 10k events, and recovery time after a crash.
//!
//! `cargo bench --bench store` runs the 10k and 100k sizes; `IMIPD_BENCH_1M=1` adds the 1M
//! index (built once, about a minute, and kept under `target/bench-store/` for later runs,
//! like the smaller ones). Sizes, disk use and rates are printed on stderr as
//! `store bench:` lines beside criterion's timings.

use criterion::{BenchmarkId, Criterion, Throughput};
use imipd::mail::Composed;
use imipd::store::{
    BusyInterval, BusyUpdate, Checkpoint, Commit, LedgerEntry, MessageKey, PartResult, Store,
    StoredObject, Transparency,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAILBOX: &str = "room1@example.test";
/// 2027-01-01T00:00:00Z.
const YEAR_START: i64 = 1_798_761_600;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn ical() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store/objects/berlin-weekly.ics"),
    )
    .expect("the bench object")
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A booking: mostly 30 min to 3 h, one in a hundred lasting 1 to 14 days.
fn event(rng: &mut Rng) -> BusyInterval {
    let start = YEAR_START + rng.below(365 * 86400) as i64;
    let duration = if rng.below(100) == 0 {
        86400 * (1 + rng.below(14) as i64)
    } else {
        1800 * (1 + rng.below(6) as i64)
    };
    BusyInterval {
        start,
        end: start + duration,
        recurrence_id: None,
        transparency: Transparency::Opaque,
    }
}

/// One processed message: an object, its busy interval, a reply, the checkpoint.
fn message(n: u32, ical: &str, rng: &mut Rng) -> Commit {
    let uid = format!("bench-{n}");
    Commit {
        key: MessageKey {
            account: MAILBOX.into(),
            folder: "INBOX".into(),
            uid_validity: 1,
            uid: n,
        },
        entry: LedgerEntry {
            message_id: Some(format!("{uid}@example.test")),
            content_hash: format!("{n:064x}"),
            results: vec![PartResult {
                part: 1,
                method: Some("REQUEST".into()),
                uid: Some(uid.clone()),
                outcome: imipd::itip::Outcome::Added,
                reason: "accepted: added".into(),
            }],
            processed_at: "2027-01-01T09:00:00Z".into(),
        },
        objects: vec![(MAILBOX.into(), StoredObject::new(uid.clone(), ical))],
        busy: vec![BusyUpdate {
            mailbox: MAILBOX.into(),
            uid,
            intervals: vec![event(rng)],
        }],
        replies: vec![(
            MAILBOX.into(),
            Composed {
                message_id: format!("imipd-{n}@example.test"),
                envelope_from: MAILBOX.into(),
                envelope_to: vec!["alice@example.test".into()],
                bytes: vec![b'x'; 3000],
            },
        )],
        sent: Vec::new(),
        checkpoint: Some(Checkpoint {
            uid_validity: 1,
            last_uid: n,
        }),
    }
}

fn bench_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("bench-store").join(name)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Events per room in the query benches: about 27 bookings a day for a year, a busy room.
const PER_ROOM: u64 = 10_000;

/// The room that holds event `k` of the query benches.
fn room(k: u64, n: u64) -> String {
    format!("room{}@example.test", k % (n / PER_ROOM).max(1))
}

/// A store whose busy index holds `n` events spread over `n / PER_ROOM` rooms (the index is
/// one tree for all mailboxes, so a bigger store means more rooms, not a denser one), built
/// once (in batches of 1000 UIDs per transaction) and reused by later runs.
fn index_of(n: u64) -> Store {
    let dir = bench_dir(&format!("busy-{n}"));
    let done = dir.join("complete");
    if !done.exists() {
        std::fs::remove_dir_all(&dir).ok();
        let store = Store::open(&dir).expect("open");
        let rt = runtime();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let started = Instant::now();
        let mut i = 0;
        while i < n {
            let batch: Vec<BusyUpdate> = (i..(i + 1000).min(n))
                .map(|k| BusyUpdate {
                    mailbox: room(k, n),
                    uid: format!("event-{k}"),
                    intervals: vec![event(&mut rng)],
                })
                .collect();
            i += batch.len() as u64;
            rt.block_on(store.extend_busy(&room(0, n), YEAR_START + 400 * 86400, &batch))
                .expect("build");
        }
        eprintln!(
            "store bench: built a busy index of {n} events in {:?}; {} MiB on disk",
            started.elapsed(),
            dir_size(&dir) / (1 << 20)
        );
        drop(store);
        std::fs::write(&done, b"").expect("mark complete");
    }
    Store::open(&dir).expect("open")
}

fn commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let rt = runtime();
    let ical = ical();
    let mut rng = Rng(7);
    let mut n = 0u32;
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));
    group.bench_function("commit one message (flushed)", |b| {
        b.iter_custom(|iters| {
            let batch: Vec<Commit> = (0..iters)
                .map(|_| {
                    n += 1;
                    message(n, &ical, &mut rng)
                })
                .collect();
            let started = Instant::now();
            for m in &batch {
                rt.block_on(store.commit(m)).expect("commit");
            }
            started.elapsed()
        })
    });
    group.finish();
}

fn space(_: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let rt = runtime();
    let ical = ical();
    let mut rng = Rng(11);
    let started = Instant::now();
    for n in 1..=10_000 {
        rt.block_on(store.commit(&message(n, &ical, &mut rng)))
            .expect("commit");
    }
    let elapsed = started.elapsed();
    // The replies are sent: what stays is objects, busy index, ledger.
    for item in store.outbox().expect("outbox") {
        rt.block_on(store.outbox_sent(item.id)).expect("sent");
    }
    rt.block_on(store.flush()).expect("flush");
    eprintln!(
        "store bench: 10k messages ({} B object each) committed in {elapsed:?} ({:.0}/s); \
         on disk {:.1} MiB (sled estimate {:.1} MiB) for 10k events",
        ical.len(),
        10_000.0 / elapsed.as_secs_f64(),
        dir_size(dir.path()) as f64 / (1 << 20) as f64,
        store.size_on_disk().expect("size") as f64 / (1 << 20) as f64,
    );
}

fn queries(c: &mut Criterion) {
    let mut sizes = vec![10_000u64, 100_000];
    if std::env::var_os("IMIPD_BENCH_1M").is_some() {
        sizes.push(1_000_000);
    }
    let mut group = c.benchmark_group("busy query");
    for n in sizes {
        let store = index_of(n);
        for (label, width) in [("1 hour", 3600i64), ("1 day", 86400)] {
            let mut rng = Rng(3);
            let mut found = 0usize;
            let mut asked = 0usize;
            group.bench_with_input(BenchmarkId::new(label, n), &width, |b, &width| {
                b.iter(|| {
                    let a = YEAR_START + rng.below(365 * 86400) as i64;
                    let hits = store.busy(&room(0, n), a, a + width).expect("query");
                    found += hits.len();
                    asked += 1;
                    hits
                })
            });
            eprintln!(
                "store bench: {n} events, {label} window: {:.1} overlapping on average",
                found as f64 / asked.max(1) as f64
            );
        }
    }
    group.finish();
}

/// The child of the recovery bench: commits `n` messages, then aborts without closing.
fn crash_child(dir: &Path, n: u32) {
    let store = Store::open(dir).expect("open");
    let rt = runtime();
    let ical = ical();
    let mut rng = Rng(5);
    for i in 1..=n {
        rt.block_on(store.commit(&message(i, &ical, &mut rng)))
            .expect("commit");
    }
    std::process::abort();
}

fn recovery(c: &mut Criterion) {
    let template = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env("IMIPD_BENCH_CRASH_CHILD", template.path())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run the crashing child");
    assert!(!status.success(), "the child crashes");
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    group.bench_function("open after a crash (10k messages)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let copy = tempfile::tempdir().expect("tempdir");
                for entry in walk(template.path()) {
                    let to = copy
                        .path()
                        .join(entry.strip_prefix(template.path()).expect("under"));
                    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                    std::fs::copy(&entry, &to).expect("copy");
                }
                let started = Instant::now();
                let store = Store::open(copy.path()).expect("recover");
                total += started.elapsed();
                assert!(store.was_recovered());
            }
            total
        })
    });
    group.finish();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Whether the command line's filter (criterion's first free argument) selects `name`;
/// the setup-heavy groups are skipped entirely when it does not.
fn wanted(name: &str) -> bool {
    // criterion's options that take a value as the next argument (`--measurement-time 3`):
    // that value is not a filter.
    const WITH_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--output-format",
        "--format",
        "--color",
        "--plotting-backend",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            let is_value = *i > 0 && WITH_VALUE.contains(&args[i - 1].as_str());
            !a.starts_with('-') && !is_value
        })
        .map(|(_, a)| a)
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn main() {
    if let Some(dir) = std::env::var_os("IMIPD_BENCH_CRASH_CHILD") {
        crash_child(Path::new(&dir), 10_000);
        return;
    }
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    if wanted("store/commit one message (flushed)") {
        commits(&mut c);
    }
    if wanted("busy query") {
        queries(&mut c);
    }
    if wanted("store/open after a crash (10k messages)") {
        recovery(&mut c);
    }
    if wanted("store/space") {
        space(&mut c);
    }
    c.final_summary();
}
