//! The iTIP engine's data-driven cases: one directory per case under `tests/data/itip/`.
//!
//! A case holds its messages in order (`01-*.eml`, `02-*.ics`, ...; a bare `.ics`/`.vcs` is
//! sent by its ORGANIZER, as `imipd process` does), an optional `store-before.ics` (the
//! objects stored before the first message, one VCALENDAR per UID), and `expected.json`:
//!
//! - `mailbox`, `aliases`, `name`, `settings` (`reply`, `accept_publish`, `decline_counters`)
//!   and `now`: who receives the messages and when;
//! - `messages`: one entry per message: `outcome`, `reason` (the reason code), `replies`
//!   (`to`, `method`, `partstat`, `recurrence_id` when given), `reply_contains` /
//!   `reply_lacks` (text of the first reply's iCalendar, unfolded), `reply_message_contains`
//!   (text of the whole first reply message); or `parts`, a list of such
//!   entries, for a message with several calendar parts;
//! - `final`: for each UID, a subset of `imipd show --format json`'s summary that must match;
//!   `absent`: UIDs that must not be stored; `final_ics_contains` / `final_ics_lacks`: text
//!   the stored object must (not) hold.
//!
//! Every message goes through `pipeline::process_message`, the daemon's own path.

#[path = "common/cases.rs"]
mod cases;

use imipd::calendar::{self, CalAddress, SchedulingView};
use imipd::cli::{process, show};
use imipd::itip::{Identity, ReplyMode, Settings};
use imipd::limits::Limits;
use imipd::pipeline::{self, Mailbox, PartReport};
use imipd::policy::Policy;
use imipd::store::{Commit, LedgerEntry, MessageKey, Store, StoredObject};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/itip")
}

/// Whether `actual` holds everything `expected` says (objects: a subset of keys; arrays:
/// the same length, element by element).
fn matches(expected: &Value, actual: &Value, path: &str, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                matches(
                    v,
                    a.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    errors,
                );
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                errors.push(format!(
                    "{path}: expected {} items, found {}: {actual}",
                    e.len(),
                    a.len()
                ));
                return;
            }
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                matches(x, y, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {
            if expected != actual {
                errors.push(format!("{path}: expected {expected}, found {actual}"));
            }
        }
    }
}

/// The iCalendar text of a composed reply, decoded and unfolded.
fn reply_ical(message: &[u8]) -> String {
    let found = imipd::mail::extract(message).expect("a composed reply parses");
    found
        .parts
        .first()
        .map(|p| p.text.replace("\r\n ", "").replace("\r\n\t", ""))
        .unwrap_or_default()
}

fn check_part(expected: &Value, part: &PartReport, at: &str, errors: &mut Vec<String>) {
    if let Some(outcome) = expected.get("outcome") {
        let actual = Value::String(part.result.outcome.as_str().to_string());
        if outcome != &actual {
            errors.push(format!(
                "{at}: outcome {actual}, expected {outcome} (reason: {})",
                part.result.reason
            ));
        }
    }
    if let Some(code) = expected.get("reason").and_then(Value::as_str) {
        let actual = part.result.reason.split(':').next().unwrap_or_default();
        if actual != code {
            errors.push(format!(
                "{at}: reason {:?}, expected code {code}",
                part.result.reason
            ));
        }
    }
    let replies: Vec<Value> = part
        .replies
        .iter()
        .map(|r| {
            serde_json::json!({
                "to": r.outgoing.to.uri(),
                "method": r.outgoing.method.as_str(),
                "partstat": r.outgoing.partstat.as_ref().map(|p| p.as_str().to_string()),
                "recurrence_id": r.outgoing.recurrence_id,
            })
        })
        .collect();
    let expected_replies = expected
        .get("replies")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    matches(
        &expected_replies,
        &Value::Array(replies),
        &format!("{at}.replies"),
        errors,
    );
    let text = part
        .replies
        .first()
        .map(|r| reply_ical(&r.composed.bytes))
        .unwrap_or_default();
    for needle in expected
        .get("reply_contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let needle = needle.as_str().unwrap_or_default();
        if !text.contains(needle) {
            errors.push(format!("{at}: the reply lacks {needle:?}:\n{text}"));
        }
    }
    let message = part
        .replies
        .first()
        .map(|r| String::from_utf8_lossy(&r.composed.bytes).into_owned())
        .unwrap_or_default();
    for needle in expected
        .get("reply_message_contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let needle = needle.as_str().unwrap_or_default();
        if !message.contains(needle) {
            errors.push(format!(
                "{at}: the reply message lacks {needle:?}:\n{message}"
            ));
        }
    }
    for needle in expected
        .get("reply_lacks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let needle = needle.as_str().unwrap_or_default();
        if text.contains(needle) {
            errors.push(format!("{at}: the reply holds {needle:?}:\n{text}"));
        }
    }
}

fn mailbox_of(expected: &Value) -> Mailbox {
    let address = expected["mailbox"]
        .as_str()
        .expect("expected.json names the mailbox");
    let mut addresses = vec![CalAddress::parse(address).expect("mailbox is an address")];
    for alias in expected
        .get("aliases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        addresses.extend(alias.as_str().and_then(CalAddress::parse));
    }
    let mut identity = Identity::new(
        addresses,
        expected
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
    );
    let settings = expected.get("settings").cloned().unwrap_or(Value::Null);
    identity.settings = Settings {
        reply: match settings.get("reply").and_then(Value::as_str) {
            Some("rsvp") => ReplyMode::Rsvp,
            Some("never") => ReplyMode::Never,
            _ => ReplyMode::Always,
        },
        accept_publish: settings
            .get("accept_publish")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        decline_counters: settings
            .get("decline_counters")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    Mailbox {
        account: address.to_string(),
        identity,
        policy: Policy::default(),
        limits: Limits::default(),
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
            busy: Vec::new(),
            sent: Vec::new(),
            checkpoint: None,
        })
        .await
        .expect("seeding the store");
}

async fn run_case(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json is readable"),
    )
    .expect("expected.json is JSON");
    let mailbox = mailbox_of(&expected);
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
            name.as_bytes().first().is_some_and(u8::is_ascii_digit)
                && (name.ends_with(".eml") || name.ends_with(".ics") || name.ends_with(".vcs"))
        })
        .collect();
    files.sort();
    let messages = expected
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if messages.len() != files.len() {
        errors.push(format!(
            "{} messages but {} expectations",
            files.len(),
            messages.len()
        ));
    }
    for (i, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).expect("message is readable");
        let raw = if process::is_bare_calendar(path, &bytes) {
            process::as_message(path, &bytes, &mailbox.account)
        } else {
            bytes.clone()
        };
        let key = MessageKey {
            account: mailbox.account.clone(),
            folder: "test".into(),
            uid_validity: 1,
            uid: i as u32 + 1,
        };
        let report = pipeline::process_message(&store, &mailbox, key, &raw, now, false)
            .await
            .expect("the pipeline runs");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(want) = messages.get(i) else {
            continue;
        };
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
                    "{name}: {} parts acted on, expected 1",
                    other.len()
                )),
            },
        }
    }
    let stored = |uid: &str| -> Option<String> {
        store
            .object(&mailbox.account, uid)
            .expect("store reads")
            .map(|o| o.ical)
    };
    for want in expected
        .get("final")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let uid = want["uid"].as_str().expect("final entries name their uid");
        match stored(uid) {
            None => errors.push(format!("final: {uid} is not stored")),
            Some(text) => {
                let ical = calendar::parse(&text)
                    .expect("stored object parses")
                    .remove(0);
                matches(
                    want,
                    &show::summary(&ical),
                    &format!("final {uid}"),
                    &mut errors,
                );
            }
        }
    }
    for uid in expected
        .get("absent")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let uid = uid.as_str().unwrap_or_default();
        if stored(uid).is_some() {
            errors.push(format!("final: {uid} is stored but should not be"));
        }
    }
    for (key, must) in [("final_ics_contains", true), ("final_ics_lacks", false)] {
        for (uid, needles) in expected
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let text = stored(uid).unwrap_or_default().replace("\r\n ", "");
            for needle in needles.as_array().into_iter().flatten() {
                let needle = needle.as_str().unwrap_or_default();
                if text.contains(needle) != must {
                    errors.push(format!("final {uid}: {key} {needle:?} fails:\n{text}"));
                }
            }
        }
    }
    errors
}

#[tokio::test(flavor = "current_thread")]
async fn every_itip_case_ends_as_expected() {
    cases::run_every_case(&cases_dir(), "ITIP_CASE", 1, |dir| async move {
        run_case(&dir).await
    })
    .await;
}
