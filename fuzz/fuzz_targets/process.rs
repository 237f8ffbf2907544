//! Fuzzes the whole `process` path: extraction, parsing, the iTIP engine, the policy, reply
//! composition and the store commit, on a store under a temporary directory (on tmpfs when
//! /dev/shm exists).
//!
//! One input is up to [`MAX_MESSAGES`] messages separated by [`SEPARATOR`], processed in
//! order by the same mailbox, so that a REQUEST followed by a REPLY, CANCEL or COUNTER reaches
//! the code that works on stored objects. Every input gets a mailbox account of its own, so
//! inputs never see each other's state and a crash reproduces from its input alone; the store
//! is replaced every [`STORE_GENERATIONS`] inputs to keep its size bounded.
//!
//! Run: `scripts/fuzz process 60` (seeds: the messages of tests/data/itip, one case per file).

#![no_main]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use imipd::calendar::CalAddress;
use imipd::itip::Identity;
use imipd::limits::Limits;
use imipd::pipeline::{self, Mailbox};
use imipd::policy::Policy;
use imipd::store::{MessageKey, Store};
use libfuzzer_sys::fuzz_target;

/// Separates the messages of one input.
const SEPARATOR: &[u8] = b"\n=====imipd-fuzz-next-message=====\n";
/// The most messages one input is split into.
const MAX_MESSAGES: usize = 4;
/// Inputs processed by one store before it is replaced by an empty one.
const STORE_GENERATIONS: u64 = 2000;

struct State {
    runtime: tokio::runtime::Runtime,
    store: Option<(Store, tempfile::TempDir)>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static INPUTS: AtomicU64 = AtomicU64::new(0);

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < MAX_MESSAGES {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

fn mailbox(n: u64) -> Mailbox {
    // The room of the resource-side cases and the organiser of the organiser-side cases.
    let addresses = ["mailto:room@corp.test", "mailto:me@corp.test"]
        .iter()
        .map(|a| CalAddress::parse(a).expect("a fixed address parses"))
        .collect();
    Mailbox {
        account: format!("fuzz-{n}@corp.test"),
        identity: Identity::new(addresses, Some("Fuzz Room".into())),
        policy: Policy::default(),
        limits: Limits::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let n = INPUTS.fetch_add(1, Ordering::Relaxed);
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = guard.get_or_insert_with(|| State {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime builds"),
        store: None,
    });
    if n % STORE_GENERATIONS == 0 {
        // Dropping the store before its directory: sled must let go of its files first.
        state.store = None;
    }
    if state.store.is_none() {
        // sled flushes every commit: on tmpfs that costs nothing, on a disk it is the run time.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        let store = Store::open(dir.path()).expect("a fresh store opens");
        state.store = Some((store, dir));
    }
    let (store, _) = state.store.as_ref().expect("opened above");
    let mailbox = mailbox(n);
    let now = Utc.with_ymd_and_hms(2027, 1, 2, 8, 0, 0).unwrap();
    state.runtime.block_on(async {
        for (i, raw) in split(data).into_iter().enumerate() {
            let key = MessageKey {
                account: mailbox.account.clone(),
                folder: "INBOX".into(),
                uid_validity: 1,
                uid: i as u32 + 1,
            };
            let report = pipeline::process_message(store, &mailbox, key, raw, now, false)
                .await
                .expect("the store accepts the commit");
            for part in &report.parts {
                assert!(
                    !part.result.reason.is_empty(),
                    "every outcome carries a reason"
                );
            }
        }
    });
});
