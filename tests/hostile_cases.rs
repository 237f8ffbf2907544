//! Hostile input, impersonation and loop cases: one directory per case under
//! `tests/data/hostile/`, run through `pipeline::process_message`, the daemon's own path.
//!
//! A case holds its messages in order (`01-*.eml`, ...), an optional `store-before.ics` (the
//! objects stored before the first message, one VCALENDAR per UID), an optional
//! `policy.toml` (the mailbox's `[mailbox.policy]` table) and `expected.json`:
//!
//! - `mailbox` (default `room@corp.test`), `aliases`, `now` (default 2027-01-02T08:00:00Z):
//!   who receives the messages and when;
//! - `limits`: the `[limits]` values that differ from the defaults;
//! - `note`: what the case is about, for people;
//! - `messages`: one entry per message: `outcome`, `reason` (the reason code: the text
//!   before the first `:`), `reason_contains` (text the reason must hold) and `replies` (how
//!   many replies it queued, default 0). A message with `parts` lists one such entry per
//!   calendar part instead.
//!
//! Every message whose outcome is `rejected`, or that says `"unchanged": true`, must leave
//! the store as it was: the same objects with the same text, and no reply queued. Every
//! reason must explain itself (text after the code).

#[path = "common/cases.rs"]
mod cases;

use imipd::calendar::{self, CalAddress, SchedulingView};
use imipd::itip::Identity;
use imipd::limits::Limits;
use imipd::pipeline::{self, Mailbox, PartReport};
use imipd::policy::Policy;
use imipd::store::{Commit, LedgerEntry, MessageKey, Store, StoredObject};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile")
}

fn policy_of(dir: &Path) -> Policy {
    let path = dir.join("policy.toml");
    if !path.exists() {
        return Policy::default();
    }
    let text = std::fs::read_to_string(&path).expect("policy.toml is readable");
    config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Policy>())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mailbox_of(dir: &Path, expected: &Value) -> Mailbox {
    let address = expected
        .get("mailbox")
        .and_then(Value::as_str)
        .unwrap_or("room@corp.test");
    let mut addresses = vec![CalAddress::parse(address).expect("mailbox is an address")];
    for alias in expected
        .get("aliases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        addresses.extend(alias.as_str().and_then(CalAddress::parse));
    }
    let limits = match expected.get("limits") {
        Some(limits) => serde_json::from_value(limits.clone())
            .unwrap_or_else(|e| panic!("{}: limits: {e}", dir.display())),
        None => Limits::default(),
    };
    Mailbox {
        account: address.to_string(),
        identity: Identity::new(addresses, None),
        policy: policy_of(dir),
        limits,
    }
}

async fn seed(store: &Store, account: &str, path: &Path) {
    let text = std::fs::read_to_string(path).expect("store-before.ics is readable");
    let mut objects = Vec::new();
    for ical in calendar::parse(&text).expect("store-before.ics parses") {
        let view = SchedulingView::new(&ical).expect("store-before.ics holds scheduling objects");
        objects.push((
            account.to_string(),
            StoredObject::new(view.uid.to_string(), calendar::write(&ical)),
        ));
    }
    store
        .commit(&Commit {
            key: MessageKey {
                account: account.to_string(),
                folder: "seed".into(),
                uid_validity: 0,
                uid: 0,
            },
            entry: LedgerEntry {
                message_id: None,
                content_hash: "seed".into(),
                results: Vec::new(),
                processed_at: "2027-01-01T00:00:00Z".into(),
            },
            objects,
            replies: Vec::new(),
            sent: Vec::new(),
            busy: Vec::new(),
            checkpoint: None,
        })
        .await
        .expect("seeding the store");
}

/// The stored objects of the mailbox (UID → text) and the number of queued replies.
fn snapshot(store: &Store, account: &str) -> (BTreeMap<String, String>, usize) {
    let objects = store
        .objects(Some(account))
        .expect("store reads")
        .into_iter()
        .map(|(_, o)| (o.uid, o.ical))
        .collect();
    (objects, store.outbox().expect("outbox reads").len())
}

fn check_part(want: &Value, got: &PartReport, at: &str, errors: &mut Vec<String>) {
    let outcome = got.result.outcome.as_str();
    let reason = &got.result.reason;
    if let Some(w) = want.get("outcome").and_then(Value::as_str)
        && w != outcome
    {
        errors.push(format!(
            "{at}: outcome {outcome:?}, expected {w:?} (reason: {reason})"
        ));
    }
    let (code, text) = reason.split_once(':').unwrap_or((reason, ""));
    if let Some(w) = want.get("reason").and_then(Value::as_str)
        && w != code.trim()
    {
        errors.push(format!("{at}: reason {reason:?}, expected code {w}"));
    }
    if text.trim().is_empty() {
        errors.push(format!("{at}: the reason {reason:?} explains nothing"));
    }
    for needle in want
        .get("reason_contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !reason.contains(needle) {
            errors.push(format!("{at}: reason {reason:?} lacks {needle:?}"));
        }
    }
    let replies = want.get("replies").and_then(Value::as_u64).unwrap_or(0) as usize;
    if got.replies.len() != replies {
        errors.push(format!(
            "{at}: {} replies, expected {replies}",
            got.replies.len()
        ));
    }
}

async fn run_case(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json is readable"),
    )
    .expect("expected.json is JSON");
    let mailbox = mailbox_of(dir, &expected);
    let now = expected
        .get("now")
        .and_then(Value::as_str)
        .unwrap_or("2027-01-02T08:00:00Z")
        .parse()
        .expect("now is RFC 3339");
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    if dir.join("store-before.ics").exists() {
        seed(&store, &mailbox.account, &dir.join("store-before.ics")).await;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("case dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.as_bytes().first().is_some_and(u8::is_ascii_digit) && name.ends_with(".eml")
        })
        .collect();
    files.sort();
    let messages = expected
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if messages.len() != files.len() || files.is_empty() {
        errors.push(format!(
            "{} messages but {} expectations",
            files.len(),
            messages.len()
        ));
    }
    for (i, (path, want)) in files.iter().zip(&messages).enumerate() {
        let raw = std::fs::read(path).expect("message is readable");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let before = snapshot(&store, &mailbox.account);
        let key = MessageKey {
            account: mailbox.account.clone(),
            folder: "INBOX".into(),
            uid_validity: 1,
            uid: i as u32 + 1,
        };
        let report = pipeline::process_message(&store, &mailbox, key, &raw, now, false)
            .await
            .expect("the pipeline runs");
        match want.get("parts").and_then(Value::as_array) {
            Some(parts) => {
                if parts.len() != report.parts.len() {
                    errors.push(format!(
                        "{name}: {} parts acted on, expected {}",
                        report.parts.len(),
                        parts.len()
                    ));
                }
                for (j, (w, p)) in parts.iter().zip(&report.parts).enumerate() {
                    check_part(w, p, &format!("{name} part {j}"), &mut errors);
                }
            }
            None => match report.parts.as_slice() {
                [part] => check_part(want, part, &name, &mut errors),
                other => errors.push(format!(
                    "{name}: {} parts acted on, expected 1: {:?}",
                    other.len(),
                    other.iter().map(|p| &p.result.reason).collect::<Vec<_>>()
                )),
            },
        }
        let rejected = report
            .parts
            .iter()
            .all(|p| p.result.outcome == imipd::itip::Outcome::Rejected);
        let unchanged = want.get("unchanged").and_then(Value::as_bool) == Some(true);
        if rejected || unchanged {
            let after = snapshot(&store, &mailbox.account);
            if after.0 != before.0 {
                errors.push(format!(
                    "{name}: the store changed: {:?} → {:?}",
                    before.0.keys().collect::<Vec<_>>(),
                    after.0.keys().collect::<Vec<_>>()
                ));
            }
            if after.1 != before.1 {
                errors.push(format!(
                    "{name}: {} replies were queued",
                    after.1 - before.1
                ));
            }
        }
    }
    errors
}

#[tokio::test(flavor = "current_thread")]
async fn every_hostile_case_is_refused_as_expected() {
    cases::run_every_case(&cases_dir(), "HOSTILE_CASE", 1, |dir| async move {
        run_case(&dir).await
    })
    .await;
}
