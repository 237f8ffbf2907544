//! Policy benchmark (criterion): the answer to a request over the busy index, for a mailbox
//! holding 1k and 10k bookings. The answer makes one index query per requested instance,
//! so its time stays nearly flat as the mailbox grows (the scan it replaced read every
//! stored object per request).
//!
//! `cargo bench --bench policy`. Measured on the 2-core build machine (2026-11-22,
//! `-- --warm-up-time 1 --measurement-time 2`): a single booking 3.7 µs at 1k bookings and
//! 7.6 µs at 10k; a daily series of 10 (expansion plus ten queries) 54 µs at 1k and 100 µs
//! at 10k.

use criterion::{BenchmarkId, Criterion};
use imipd::calendar::{self, CalAddress};
use imipd::mail::SenderFacts;
use imipd::policy::{Policy, Request};
use imipd::store::{
    BusyEntry, BusyInterval, BusyUpdate, Commit, LedgerEntry, MessageKey, Store, StoreError,
    Transparency,
};
use std::path::Path;

const MAILBOX: &str = "room@corp.test";
/// 2027-01-04T08:00:00Z, the cases' `now`.
const NOW: i64 = 1_799_049_600;

fn request(case: &str) -> calendar::ICalendar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/policy")
        .join(case)
        .join("request.ics");
    let text = std::fs::read_to_string(path).expect("the bench request");
    calendar::parse(&text).expect("it parses").remove(0)
}

/// A store with `n` one-hour bookings spread over the year after `NOW`, none at the
/// requested times' exact slots but many around them.
fn store(dir: &Path, n: u32) -> Store {
    let store = Store::open(dir).expect("store opens");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for batch in 0..n.div_ceil(1000) {
        let busy = (batch * 1000..((batch + 1) * 1000).min(n))
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let start = NOW + (seed % (365 * 86400)) as i64;
                BusyUpdate {
                    mailbox: MAILBOX.into(),
                    uid: format!("booking-{i}"),
                    intervals: vec![BusyInterval {
                        start,
                        end: start + 3600,
                        recurrence_id: None,
                        transparency: Transparency::Opaque,
                    }],
                }
            })
            .collect();
        runtime
            .block_on(store.commit(&Commit {
                key: MessageKey {
                    account: MAILBOX.into(),
                    folder: "seed".into(),
                    uid_validity: 1,
                    uid: batch,
                },
                entry: LedgerEntry {
                    message_id: None,
                    content_hash: format!("seed-{batch}"),
                    results: Vec::new(),
                    processed_at: "2027-01-04T08:00:00Z".into(),
                },
                objects: Vec::new(),
                busy,
                sent: Vec::new(),
                checkpoint: None,
                replies: Vec::new(),
            }))
            .expect("seeding");
    }
    store
}

fn bench(c: &mut Criterion) {
    let policy = Policy::default();
    let me = [CalAddress::parse(MAILBOX).expect("an address")];
    let sender = SenderFacts::default();
    let now = chrono::DateTime::from_timestamp(NOW, 0).expect("a time");
    let single = request("back-to-back-booking-is-free");
    let series = request("series-1-of-10-in-conflict-default-thresholds-declines");
    let mut group = c.benchmark_group("policy answer");
    for n in [1_000u32, 10_000] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = store(tmp.path(), n);
        let lookup =
            |a: i64, b: i64| -> Result<Vec<BusyEntry>, StoreError> { store.busy(MAILBOX, a, b) };
        for (name, ical) in [("single", &single), ("daily x10", &series)] {
            let req = Request {
                ical,
                organizer: None,
                me: &me,
                sender: &sender,
                organizer_of: None,
            };
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    policy
                        .evaluate_request(&req, &lookup, now)
                        .expect("answers")
                })
            });
        }
    }
    group.finish();
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
