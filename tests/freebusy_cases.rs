//! VFREEBUSY by mail (RFC 5546 §3.3), data-driven: one directory per case under
//! `tests/data/freebusy/`, in the policy cases' format.
//!
//! A case holds
//!
//! - `policy.toml`: the mailbox's `[mailbox.policy]` table (who may ask is the policy's "who
//!   may book");
//! - `store-before.ics` (optional): the bookings already stored, put into the busy index the
//!   way the pipeline does;
//! - `request.ics` (sent by its ORGANIZER to `room@corp.test`) or `request.eml` (a whole
//!   message, when its From matters);
//! - `expected.json`: `now`, the `outcome` and reason code (`reason`), how many `replies`,
//!   and for a reply: `to`, `dtstart`/`dtend` (the range answered), `status` (the start of
//!   its REQUEST-STATUS), `comment_contains`, and `freebusy` (every FREEBUSY period, in
//!   order; `[]`: none).
//!
//! Every request goes through `pipeline::process_message`, the daemon's own path.

#[path = "common/cases.rs"]
mod cases;

use imipd::calendar::{self, CalAddress, SchedulingView};
use imipd::cli::process;
use imipd::itip::Identity;
use imipd::pipeline::{self, Mailbox};
use imipd::policy::{Policy, busy};
use imipd::store::{Commit, LedgerEntry, MessageKey, Store, StoredObject};
use serde_json::Value;
use std::path::{Path, PathBuf};

const ROOM: &str = "room@corp.test";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/freebusy")
}

fn load_policy(dir: &Path) -> Policy {
    let text = std::fs::read_to_string(dir.join("policy.toml")).expect("policy.toml is readable");
    config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Policy>())
        .unwrap_or_else(|e| panic!("{}: policy.toml: {e}", dir.display()))
}

async fn seed(store: &Store, mailbox: &Mailbox, path: &Path, now: chrono::DateTime<chrono::Utc>) {
    let text = std::fs::read_to_string(path).expect("store-before.ics is readable");
    let mut objects = Vec::new();
    let mut updates = Vec::new();
    for ical in calendar::parse(&text).expect("store-before.ics parses") {
        let uid = SchedulingView::new(&ical)
            .expect("store-before.ics holds scheduling objects")
            .uid
            .to_string();
        updates.push(busy::update(
            ROOM,
            &uid,
            &ical,
            &mailbox.identity.addresses,
            now,
            mailbox.policy.index_days(),
        ));
        objects.push((
            ROOM.to_string(),
            StoredObject::new(uid, calendar::write(&ical)),
        ));
    }
    store
        .commit(&Commit {
            key: MessageKey {
                account: ROOM.to_string(),
                folder: "seed".into(),
                uid_validity: 0,
                uid: 0,
            },
            entry: LedgerEntry {
                message_id: None,
                content_hash: "seed".into(),
                results: Vec::new(),
                processed_at: now.to_rfc3339(),
            },
            objects,
            replies: Vec::new(),
            sent: Vec::new(),
            busy: updates,
            checkpoint: None,
        })
        .await
        .expect("seeding the store");
}

fn strings<'a>(expected: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    expected
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The value of the first content line named `name` (unfolded, parameters dropped).
fn value<'a>(ical: &'a str, name: &str) -> Option<&'a str> {
    ical.lines().find_map(|l| {
        let (head, value) = l.split_once(':')?;
        (head.split(';').next() == Some(name)).then_some(value)
    })
}

async fn run_case(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json is readable"),
    )
    .expect("expected.json is JSON");
    let now = expected["now"]
        .as_str()
        .expect("expected.json has now")
        .parse()
        .expect("now is RFC 3339");
    let mailbox = Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(
            vec![CalAddress::parse(ROOM).expect("an address")],
            Some("Room".into()),
        ),
        policy: load_policy(dir),
        limits: Default::default(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    if dir.join("store-before.ics").exists() {
        seed(&store, &mailbox, &dir.join("store-before.ics"), now).await;
    }
    let eml = dir.join("request.eml");
    let raw = if eml.exists() {
        std::fs::read(&eml).expect("request.eml is readable")
    } else {
        let path = dir.join("request.ics");
        let bytes = std::fs::read(&path).expect("request.ics is readable");
        process::as_message(&path, &bytes, ROOM)
    };
    let key = MessageKey {
        account: ROOM.to_string(),
        folder: "test".into(),
        uid_validity: 1,
        uid: 1,
    };
    let objects_before = store.objects(Some(ROOM)).expect("objects read").len();
    let report = pipeline::process_message(&store, &mailbox, key, &raw, now, false)
        .await
        .expect("the pipeline runs");
    let [part] = report.parts.as_slice() else {
        return vec![format!("{} parts acted on, expected 1", report.parts.len())];
    };
    let outcome = part.result.outcome.as_str();
    let want = expected["outcome"]
        .as_str()
        .expect("expected.json has outcome");
    if outcome != want {
        errors.push(format!(
            "outcome {outcome} ({}), expected {want}",
            part.result.reason
        ));
    }
    let code = part.result.reason.split(':').next().unwrap_or_default();
    let want = expected["reason"]
        .as_str()
        .expect("expected.json has reason");
    if code != want {
        errors.push(format!("reason {:?}, expected {want}", part.result.reason));
    }
    if store.objects(Some(ROOM)).expect("objects read").len() != objects_before {
        errors.push("a free/busy message changed the stored objects".to_string());
    }
    let want_replies = expected["replies"]
        .as_u64()
        .expect("expected.json has replies");
    if part.replies.len() as u64 != want_replies {
        errors.push(format!(
            "{} replies, expected {want_replies}",
            part.replies.len()
        ));
    }
    let Some(reply) = part.replies.first() else {
        return errors;
    };
    let ical = calendar::write(&reply.outgoing.ical).replace("\r\n ", "");
    if value(&ical, "METHOD") != Some("REPLY") || !ical.contains("BEGIN:VFREEBUSY") {
        errors.push(format!("the reply is not a VFREEBUSY REPLY:\n{ical}"));
    }
    if let Some(to) = expected.get("to").and_then(Value::as_str)
        && reply.outgoing.to.email() != to
    {
        errors.push(format!(
            "the reply goes to {}, expected {to}",
            reply.outgoing.to.email()
        ));
    }
    for key in ["dtstart", "dtend"] {
        if let Some(want) = expected.get(key).and_then(Value::as_str) {
            let found = value(&ical, &key.to_ascii_uppercase());
            if found != Some(want) {
                errors.push(format!("{key} {found:?}, expected {want}:\n{ical}"));
            }
        }
    }
    if let Some(status) = expected.get("status").and_then(Value::as_str) {
        let found = value(&ical, "REQUEST-STATUS").unwrap_or_default();
        if !found.starts_with(status) {
            errors.push(format!("REQUEST-STATUS {found:?}, expected {status}"));
        }
    }
    let comment = value(&ical, "COMMENT")
        .unwrap_or_default()
        .replace("\\,", ",");
    for needle in strings(&expected, "comment_contains") {
        if !comment.contains(needle) {
            errors.push(format!("the COMMENT lacks {needle:?}:\n{ical}"));
        }
    }
    if expected.get("freebusy").is_some() {
        let found: Vec<&str> = ical
            .lines()
            .filter_map(|l| l.strip_prefix("FREEBUSY;FBTYPE=BUSY:"))
            .collect();
        let want: Vec<&str> = strings(&expected, "freebusy").collect();
        if found != want {
            errors.push(format!("FREEBUSY {found:?}, expected {want:?}"));
        }
    }
    let message = String::from_utf8_lossy(&reply.composed.bytes);
    if !message.contains("method=REPLY") {
        errors.push("the reply message's calendar part lacks method=REPLY".to_string());
    }
    errors
}

#[tokio::test(flavor = "current_thread")]
async fn every_freebusy_case_answers_as_expected() {
    cases::run_every_case(&cases_dir(), "FREEBUSY_CASE", 10, |dir| async move {
        run_case(&dir).await
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_requests_is_answered_up_to_the_hourly_limit() {
    let dir = cases_dir().join("rate-limit");
    let template = std::fs::read_to_string(dir.join("request.ics")).expect("request.ics");
    let now = "2027-01-03T12:00:00Z".parse().expect("a time");
    let mailbox = Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(vec![CalAddress::parse(ROOM).expect("an address")], None),
        policy: Policy::default(),
        limits: Default::default(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    let mut codes = Vec::new();
    for n in 0..=imipd::publish::FREEBUSY_ANSWERS_PER_HOUR {
        let text = template.replace("{{UID}}", &format!("burst-{n}"));
        let path = dir.join("request.ics");
        let raw = process::as_message(&path, text.as_bytes(), ROOM);
        let key = MessageKey {
            account: ROOM.to_string(),
            folder: "test".into(),
            uid_validity: 1,
            uid: n as u32 + 1,
        };
        let report = pipeline::process_message(&store, &mailbox, key, &raw, now, false)
            .await
            .expect("the pipeline runs");
        let part = &report.parts[0];
        codes.push((
            part.result
                .reason
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            part.replies.len(),
        ));
    }
    let last = codes.pop().expect("21 answers");
    assert!(
        codes
            .iter()
            .all(|c| c == &("freebusy_replied".to_string(), 1)),
        "{codes:?}"
    );
    assert_eq!(last, ("freebusy_rate_limited".to_string(), 0));
}
