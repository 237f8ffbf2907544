//! The per-message path the daemon runs (criterion): the decision alone (extract, parse,
//! policy over the busy index, engine, compose; `process_message` as a dry run) for real
//! client invitations, and the decision plus the store commit, flushed per message (the
//! command line's way) against flushed once per 50 (the daemon's fetch batches; see the
//! store's "Batched flushes").
//!
//! Run: `cargo bench --bench pipeline`.

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imipd::itip::Identity;
use imipd::pipeline::{self, Mailbox};
use imipd::store::{MessageKey, Store};
use std::hint::black_box;
use std::path::Path;

const ROOM: &str = "room1@example.test";

fn data(path: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .expect("bench data");
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn mailbox() -> Mailbox {
    let me = imipd::calendar::CalAddress::parse(ROOM).expect("a calendar address");
    Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(vec![me], Some("Room 1".to_string())),
        policy: Default::default(),
        limits: Default::default(),
    }
}

fn key(uid: u32) -> MessageKey {
    MessageKey {
        account: ROOM.to_string(),
        folder: "INBOX".to_string(),
        uid_validity: 1,
        uid,
    }
}

/// Invitation `n` from the plain template, each with its own UID and slot.
fn invitation(n: u64) -> Vec<u8> {
    let start = Utc
        .with_ymd_and_hms(2027, 1, 4, 0, 0, 0)
        .single()
        .expect("valid")
        + chrono::Duration::minutes(30 * n as i64);
    let end = start + chrono::Duration::minutes(30);
    data("templates/faults/request.eml")
        .replace("{{UID}}", &format!("bench-{n}"))
        .replace("{{ROOM}}", ROOM)
        .replace("{{ROOM_NAME}}", "Room 1")
        .replace("{{ORGANIZER}}", "alice@example.test")
        .replace("{{N}}", &n.to_string())
        .replace("{{DTSTART}}", &start.format("%Y%m%dT%H%M%SZ").to_string())
        .replace("{{DTEND}}", &end.format("%Y%m%dT%H%M%SZ").to_string())
        .into_bytes()
}

fn bench_decide(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("store");
    let mailbox = mailbox();
    let now = Utc
        .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .expect("valid");
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    for (name, path) in [
        ("apple", "mail/apple/apple-calendar-request.eml"),
        (
            "gmail_recurring",
            "mail/gmail/gmail-recurring-with-exception.eml",
        ),
        ("exchange365", "mail/outlook/exchange365-request.eml"),
        ("exchange_tnef", "mail/outlook/exchange-tnef-request.eml"),
        ("thunderbird", "mail/thunderbird/thunderbird-request.eml"),
    ] {
        let raw = data(path).into_bytes();
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(pipeline::process_message(
                        &store,
                        &mailbox,
                        key(1),
                        black_box(&raw),
                        now,
                        true,
                    ))
                    .expect("decides")
            })
        });
    }
    group.finish();
}

fn bench_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mailbox = mailbox();
    let now = Utc
        .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .expect("valid");
    let mut group = c.benchmark_group("process_and_commit");
    group.throughput(Throughput::Elements(50));
    for batched in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let mut n = 0u64;
        let name = if batched {
            "50_messages_one_flush"
        } else {
            "50_messages_flush_each"
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (0..50)
                        .map(|_| {
                            n += 1;
                            (n, invitation(n))
                        })
                        .collect::<Vec<_>>()
                },
                |messages| {
                    runtime.block_on(async {
                        for (n, raw) in &messages {
                            let key = key(*n as u32);
                            if batched {
                                pipeline::process_message_unflushed(
                                    &store,
                                    &mailbox,
                                    key,
                                    raw,
                                    now,
                                    pipeline::Origin::Incoming,
                                )
                                .await
                                .expect("commits");
                            } else {
                                pipeline::process_message(&store, &mailbox, key, raw, now, false)
                                    .await
                                    .expect("commits");
                            }
                        }
                        if batched {
                            store.flush_commits().await.expect("flushes");
                        }
                    })
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_decide, bench_commit
}
criterion_main!(benches);
