//! The resource policy's data-driven cases: one directory per rule under
//! `tests/data/policy/`.
//!
//! A case holds
//!
//! - `policy.toml`: the mailbox's `[mailbox.policy]` table, as written in the configuration
//!   (an empty file is the default policy);
//! - `store-before.ics` (optional): the bookings already stored, one VCALENDAR per UID;
//!   they go into the busy index the way the pipeline puts a stored object there;
//! - `request.ics`: the REQUEST, sent by its ORGANIZER to `room@corp.test` (or
//!   `request.eml`, a whole message, when its headers matter);
//! - `expected.json`: `now`, the `answer` (the ledger's reason code: `accepted`,
//!   `tentative`, `declined`, `undecided`), `reason_contains` (text the reply's COMMENT
//!   must hold), `status` (the start of its REQUEST-STATUS), `replies` (how many replies,
//!   default 1), `reply_text_contains` (text of the whole first reply message),
//!   `declined_instances` (the RECURRENCE-IDs of the per-instance DECLINED replies) and
//!   `instance_reply_contains` (text each of those replies' iCalendar must hold),
//!   `counter_contains` (text the COUNTER reply's iCalendar must hold),
//!   `stored_partstat` (a PARTSTAT the stored object holds) and `indexed_instances` (how
//!   many busy intervals the request's UID has in the index afterwards);
//!   `reason_lacks` and `reply_text_lacks` (text that must not be there),
//!   `stored_contains` / `stored_lacks` (text of the stored, privacy-scrubbed copy),
//!   `original_contains` (text of the kept original; `[]` when none may be kept),
//!   `notices` (how many notices went to delegates, default 0) and `notice_contains`.
//!
//! Every request goes through `pipeline::process_message`, the daemon's own path.

#[path = "common/cases.rs"]
mod cases;

use imipd::calendar::{self, CalAddress, SchedulingView};
use imipd::cli::process;
use imipd::itip::Identity;
use imipd::limits::Limits;
use imipd::pipeline::{self, Mailbox};
use imipd::policy::{Policy, busy};
use imipd::store::{Commit, LedgerEntry, MessageKey, Store, StoredObject};
use serde_json::Value;
use std::path::{Path, PathBuf};

const ROOM: &str = "room@corp.test";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy")
}

fn load_policy(dir: &Path) -> Policy {
    let text = std::fs::read_to_string(dir.join("policy.toml")).expect("policy.toml is readable");
    config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Policy>())
        .unwrap_or_else(|e| panic!("{}: policy.toml: {e}", dir.display()))
}

/// Stores the bookings of `store-before.ics` with their busy intervals.
async fn seed(store: &Store, mailbox: &Mailbox, path: &Path, now: chrono::DateTime<chrono::Utc>) {
    let text = std::fs::read_to_string(path).expect("store-before.ics is readable");
    let mut objects = Vec::new();
    let mut updates = Vec::new();
    for ical in calendar::parse(&text).expect("store-before.ics parses") {
        let view = SchedulingView::new(&ical).expect("store-before.ics holds scheduling objects");
        let uid = view.uid.to_string();
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
            busy: updates,
            sent: Vec::new(),
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

fn request_uid(bytes: &[u8]) -> String {
    calendar::parse(&String::from_utf8_lossy(bytes))
        .ok()
        .and_then(|c| c.first().and_then(|i| SchedulingView::new(i).ok()))
        .map(|v| v.uid.to_string())
        .unwrap_or_default()
}

async fn run_case(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json is readable"),
    )
    .expect("expected.json is JSON");
    let now = expected
        .get("now")
        .and_then(Value::as_str)
        .unwrap_or("2027-01-04T08:00:00Z")
        .parse()
        .expect("now is RFC 3339");
    let mailbox = Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(
            vec![CalAddress::parse(ROOM).expect("an address")],
            Some("Room".into()),
        ),
        policy: load_policy(dir),
        limits: Limits::default(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    if dir.join("store-before.ics").exists() {
        seed(&store, &mailbox, &dir.join("store-before.ics"), now).await;
    }
    let eml = dir.join("request.eml");
    let (raw, bytes) = if eml.exists() {
        let raw = std::fs::read(&eml).expect("request.eml is readable");
        let text = imipd::mail::extract(&raw)
            .ok()
            .and_then(|m| m.parts.first().map(|p| p.text.clone().into_bytes()))
            .unwrap_or_default();
        (raw, text)
    } else {
        let path = dir.join("request.ics");
        let bytes = std::fs::read(&path).expect("request.ics is readable");
        (process::as_message(&path, &bytes, ROOM), bytes)
    };
    let key = MessageKey {
        account: ROOM.to_string(),
        folder: "test".into(),
        uid_validity: 1,
        uid: 1,
    };
    let report = pipeline::process_message(&store, &mailbox, key, &raw, now, false)
        .await
        .expect("the pipeline runs");
    let [part] = report.parts.as_slice() else {
        return vec![format!("{} parts acted on, expected 1", report.parts.len())];
    };
    let code = part.result.reason.split(':').next().unwrap_or_default();
    let want = expected["answer"]
        .as_str()
        .expect("expected.json has answer");
    if code != want {
        errors.push(format!(
            "answer {code:?} ({}), expected {want}",
            part.result.reason
        ));
    }
    let want_replies = expected.get("replies").and_then(Value::as_u64).unwrap_or(1);
    if part.replies.len() as u64 != want_replies {
        errors.push(format!(
            "{} replies, expected {want_replies}",
            part.replies.len()
        ));
    }
    let message = part
        .replies
        .first()
        .map(|r| String::from_utf8_lossy(&r.composed.bytes).into_owned())
        .unwrap_or_default();
    let ical = part
        .replies
        .first()
        .map(|r| calendar::write(&r.outgoing.ical).replace("\r\n ", ""))
        .unwrap_or_default();
    let comment = ical
        .lines()
        .find_map(|l| l.strip_prefix("COMMENT:"))
        .unwrap_or_default()
        .replace("\\,", ",")
        .replace("\\;", ";");
    for needle in strings(&expected, "reason_contains") {
        if !comment.contains(needle) {
            errors.push(format!("the reply's COMMENT lacks {needle:?}:\n{ical}"));
        }
    }
    if let Some(status) = expected.get("status").and_then(Value::as_str) {
        let found = ical
            .lines()
            .find_map(|l| l.strip_prefix("REQUEST-STATUS:"))
            .unwrap_or_default();
        if !found.starts_with(status) {
            errors.push(format!("REQUEST-STATUS {found:?}, expected {status}"));
        }
    }
    for needle in strings(&expected, "reply_text_contains") {
        if !message.contains(needle) {
            errors.push(format!("the reply message lacks {needle:?}:\n{message}"));
        }
    }
    for needle in strings(&expected, "reason_lacks") {
        if comment.contains(needle) {
            errors.push(format!("the reply's COMMENT holds {needle:?}:\n{ical}"));
        }
    }
    for needle in strings(&expected, "reply_text_lacks") {
        if message.contains(needle) {
            errors.push(format!("the reply message holds {needle:?}:\n{message}"));
        }
    }
    let want_notices = expected.get("notices").and_then(Value::as_u64).unwrap_or(0);
    if part.notices.len() as u64 != want_notices {
        errors.push(format!(
            "{} notices to delegates, expected {want_notices}",
            part.notices.len()
        ));
    }
    for notice in &part.notices {
        let text = String::from_utf8_lossy(&notice.bytes);
        for needle in strings(&expected, "notice_contains") {
            if !text.contains(needle) {
                errors.push(format!("the notice lacks {needle:?}:\n{text}"));
            }
        }
    }
    let stored = store
        .object(ROOM, &request_uid(&bytes))
        .expect("store reads");
    let stored_text = stored
        .as_ref()
        .map(|o| o.ical.replace("\r\n ", ""))
        .unwrap_or_default();
    for needle in strings(&expected, "stored_contains") {
        if !stored_text.contains(needle) {
            errors.push(format!("the stored copy lacks {needle:?}:\n{stored_text}"));
        }
    }
    for needle in strings(&expected, "stored_lacks") {
        if stored_text.contains(needle) {
            errors.push(format!("the stored copy holds {needle:?}:\n{stored_text}"));
        }
    }
    if expected.get("original_contains").is_some() {
        let original = stored.as_ref().and_then(|o| o.original.clone());
        let wanted: Vec<&str> = strings(&expected, "original_contains").collect();
        match (&original, wanted.is_empty()) {
            (Some(text), false) => {
                let text = text.replace("\r\n ", "");
                for needle in wanted {
                    if !text.contains(needle) {
                        errors.push(format!("the original lacks {needle:?}:\n{text}"));
                    }
                }
            }
            (None, true) => {}
            (Some(_), true) => errors.push("an original was kept, expected none".into()),
            (None, false) => errors.push("no original was kept".into()),
        }
    }
    let instance_replies: Vec<(String, String)> = part
        .replies
        .iter()
        .filter(|r| {
            r.outgoing.recurrence_id.is_some()
                && r.outgoing.partstat == Some(imipd::calendar::PartStat::Declined)
        })
        .map(|r| {
            (
                r.outgoing.recurrence_id.clone().unwrap_or_default(),
                calendar::write(&r.outgoing.ical).replace("\r\n ", ""),
            )
        })
        .collect();
    let rids: Vec<&str> = instance_replies.iter().map(|(r, _)| r.as_str()).collect();
    let want_rids: Vec<&str> = strings(&expected, "declined_instances").collect();
    if rids != want_rids {
        errors.push(format!(
            "declined instances {rids:?}, expected {want_rids:?}"
        ));
    }
    for (rid, text) in &instance_replies {
        for needle in strings(&expected, "instance_reply_contains") {
            if !text.contains(needle) {
                errors.push(format!("the reply for {rid} lacks {needle:?}:\n{text}"));
            }
        }
    }
    let counter = part
        .replies
        .iter()
        .find(|r| r.outgoing.method == imipd::calendar::Method::Counter)
        .map(|r| calendar::write(&r.outgoing.ical).replace("\r\n ", ""));
    let wants_counter: Vec<&str> = strings(&expected, "counter_contains").collect();
    match (&counter, wants_counter.is_empty()) {
        (Some(text), _) => {
            for needle in wants_counter {
                if !text.contains(needle) {
                    errors.push(format!("the COUNTER lacks {needle:?}:\n{text}"));
                }
            }
        }
        (None, false) => errors.push("no COUNTER was sent".to_string()),
        (None, true) => {}
    }
    if let Some(count) = expected.get("indexed_instances").and_then(Value::as_u64) {
        let uid = request_uid(&bytes);
        let found = store.busy_of(ROOM, &uid).expect("busy reads").len() as u64;
        if found != count {
            errors.push(format!("{found} busy intervals indexed, expected {count}"));
        }
    }
    if let Some(partstat) = expected.get("stored_partstat").and_then(Value::as_str) {
        let uid = request_uid(&bytes);
        let stored = store
            .object(ROOM, &uid)
            .expect("store reads")
            .map(|o| o.ical.replace("\r\n ", ""))
            .unwrap_or_default();
        let needle = format!("PARTSTAT={partstat}");
        if !stored.contains(&needle) {
            errors.push(format!("the stored object lacks {needle}:\n{stored}"));
        }
    }
    errors
}

#[tokio::test(flavor = "current_thread")]
async fn every_policy_case_answers_as_expected() {
    cases::run_every_case(&cases_dir(), "POLICY_CASE", 1, |dir| async move {
        run_case(&dir).await
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stored_booking_fills_the_busy_index_and_a_cancel_empties_it() {
    let dir = cases_dir().join("index-filled-and-emptied");
    let now = "2027-01-04T08:00:00Z".parse().expect("a time");
    let mailbox = Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(vec![CalAddress::parse(ROOM).expect("an address")], None),
        policy: Policy::default(),
        limits: Limits::default(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    let mut counts = Vec::new();
    for (i, name) in ["01-request.ics", "02-cancel.ics"].iter().enumerate() {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).expect("message readable");
        let raw = process::as_message(&path, &bytes, ROOM);
        let key = MessageKey {
            account: ROOM.to_string(),
            folder: "test".into(),
            uid_validity: 1,
            uid: i as u32 + 1,
        };
        pipeline::process_message(&store, &mailbox, key, &raw, now, false)
            .await
            .expect("the pipeline runs");
        counts.push(store.busy_of(ROOM, "index-1").expect("busy reads").len());
    }
    assert_eq!(
        counts,
        [3, 0],
        "three weekly instances indexed, none after CANCEL"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_scrubbed_stored_copy_still_orders_and_answers_requests() {
    let dir = cases_dir().join("privacy-scrubbed-copy-keeps-itip-ordering");
    let now = "2027-01-04T08:00:00Z".parse().expect("a time");
    let mailbox = Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(vec![CalAddress::parse(ROOM).expect("an address")], None),
        policy: load_policy(&dir),
        limits: Default::default(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    let mut seen = Vec::new();
    for (i, name) in [
        "01-request.ics",
        "02-repeated.ics",
        "03-stale.ics",
        "04-rescheduled.ics",
    ]
    .iter()
    .enumerate()
    {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).expect("message readable");
        let raw = process::as_message(&path, &bytes, ROOM);
        let key = MessageKey {
            account: ROOM.to_string(),
            folder: "test".into(),
            uid_validity: 1,
            uid: i as u32 + 1,
        };
        let report = pipeline::process_message(&store, &mailbox, key, &raw, now, false)
            .await
            .expect("the pipeline runs");
        let part = &report.parts[0];
        let code = part.result.reason.split(':').next().unwrap_or_default();
        let reply = part
            .replies
            .first()
            .map(|r| calendar::write(&r.outgoing.ical).replace("\r\n ", ""))
            .unwrap_or_default();
        seen.push((code.to_string(), reply));
    }
    let codes: Vec<&str> = seen.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        ["accepted", "status_poll", "stale", "accepted"],
        "the scrubbed copy orders like the original"
    );
    let (_, rescheduled) = &seen[3];
    for needle in [
        "UID:private-order",
        "SEQUENCE:2",
        "ORGANIZER;CN=\"Alice Example\":mailto:alice@corp.test",
        "PARTSTAT=ACCEPTED:mailto:room@corp.test",
        "DTSTART:20270107T100000Z",
    ] {
        assert!(
            rescheduled.contains(needle),
            "the REPLY lacks {needle}:\n{rescheduled}"
        );
    }
    let stored = store
        .object(ROOM, "private-order")
        .expect("store reads")
        .expect("the booking is stored");
    assert!(
        stored.ical.contains("SUMMARY:Alice Example"),
        "{}",
        stored.ical
    );
    assert!(!stored.ical.contains("555-0100"), "{}", stored.ical);
    assert!(stored.original.is_none(), "no original is kept by default");
    let order = &stored.instances[0];
    assert_eq!(order.sequence, 2);
    assert_eq!(
        store
            .busy_of(ROOM, "private-order")
            .expect("busy reads")
            .len(),
        1,
        "the rescheduled time is the one booked"
    );
}

/// A store whose busy index lags behind (written before the index existed, or a week old):
/// the real run first brings the index up to its horizon; a dry run must answer the same
/// without writing.
#[tokio::test(flavor = "current_thread")]
async fn a_dry_run_over_a_lagging_busy_index_answers_like_the_real_run() {
    let dir = cases_dir().join("conflict-is-declined-with-the-booking-named");
    let now: chrono::DateTime<chrono::Utc> = "2027-01-04T08:00:00Z".parse().expect("a time");
    let mailbox = Mailbox {
        account: ROOM.to_string(),
        identity: Identity::new(vec![CalAddress::parse(ROOM).expect("an address")], None),
        policy: Policy::default(),
        limits: Default::default(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path()).expect("store opens");
    let existing = std::fs::read_to_string(dir.join("store-before.ics")).expect("readable");
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
            objects: vec![(ROOM.to_string(), StoredObject::new("existing", existing))],
            replies: Vec::new(),
            sent: Vec::new(),
            busy: Vec::new(),
            checkpoint: None,
        })
        .await
        .expect("seeding the store");
    assert!(
        store
            .busy(ROOM, 0, i64::MAX)
            .expect("busy reads")
            .is_empty()
    );
    let path = dir.join("request.ics");
    let bytes = std::fs::read(&path).expect("request readable");
    let raw = process::as_message(&path, &bytes, ROOM);
    let mut answers = Vec::new();
    for dry_run in [true, false] {
        let key = MessageKey {
            account: ROOM.to_string(),
            folder: "test".into(),
            uid_validity: 1,
            uid: 1,
        };
        let report = pipeline::process_message(&store, &mailbox, key, &raw, now, dry_run)
            .await
            .expect("the pipeline runs");
        answers.push(report.parts[0].result.reason.clone());
        if dry_run {
            assert!(
                store
                    .busy(ROOM, 0, i64::MAX)
                    .expect("busy reads")
                    .is_empty(),
                "a dry run writes nothing"
            );
        }
    }
    assert!(
        answers[0].starts_with("declined"),
        "dry run: {}",
        answers[0]
    );
    assert_eq!(
        answers[0], answers[1],
        "the dry run answers like the real run"
    );
}

#[test]
fn the_example_configuration_documents_the_default_policy() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/imipd.example.toml");
    let config = imipd::config::Config::load(&path).expect("the example configuration loads");
    let mailbox = config.mailboxes.first().expect("the example has a mailbox");
    assert_eq!(mailbox.policy, Policy::default());
}

#[test]
fn an_unknown_policy_key_is_refused() {
    let parsed = config::Config::builder()
        .add_source(config::File::from_str(
            "booking_window = 10\n",
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize::<Policy>());
    assert!(parsed.is_err(), "a misspelt key must not be ignored");
}

#[test]
fn a_delegate_that_is_not_an_address_is_refused() {
    let parsed = config::Config::builder()
        .add_source(config::File::from_str(
            "delegates = [\"facilities\"]\n",
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize::<Policy>());
    let error = parsed.expect_err("a bare name is an error").to_string();
    assert!(
        error.contains("\"facilities\" is not an e-mail address"),
        "{error}"
    );
}

#[test]
fn working_hours_in_an_unknown_zone_are_refused() {
    let parsed = config::Config::builder()
        .add_source(config::File::from_str(
            "[working_hours]\ntime_zone = \"Mars/Olympus\"\n",
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize::<Policy>());
    let error = parsed.expect_err("an unknown zone is an error").to_string();
    assert!(error.contains("Mars/Olympus"), "{error}");
}
