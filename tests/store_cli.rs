//! The store's operations through the real binary: `show` views, `store export|import|
//! verify`, and the one-process-per-store lock across two real processes.

mod common;

use common::data;
use imipd::mail::Composed;
use imipd::store::{
    AttendeeOrder, BusyInterval, BusyUpdate, Checkpoint, Commit, InstanceOrder, LedgerEntry,
    MessageKey, PartResult, Store, StoredObject, Tombstone, Transparency,
};
use std::path::Path;
use std::process::{Command, Output};

fn imipd(args: &[&str], store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .expect("run imipd")
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn interval(start: i64, end: i64, rid: Option<&str>) -> BusyInterval {
    BusyInterval {
        start,
        end,
        recurrence_id: rid.map(str::to_string),
        transparency: Transparency::Opaque,
    }
}

fn message(uid: u32, objects: Vec<(String, StoredObject)>, busy: Vec<BusyUpdate>) -> Commit {
    let account = objects
        .first()
        .map_or("room1@example.test".to_string(), |(m, _)| m.clone());
    Commit {
        key: MessageKey {
            account: account.clone(),
            folder: "INBOX".into(),
            uid_validity: 3,
            uid,
        },
        entry: LedgerEntry {
            message_id: Some(format!("m{uid}@example.test")),
            content_hash: format!("hash{uid}"),
            results: vec![PartResult {
                part: 1,
                method: Some("REQUEST".into()),
                uid: objects.first().map(|(_, o)| o.uid.clone()),
                outcome: imipd::itip::Outcome::Added,
                reason: "accepted: added".into(),
            }],
            processed_at: "2027-01-01T09:00:00Z".into(),
        },
        objects,
        busy,
        replies: vec![(
            account.clone(),
            Composed {
                message_id: format!("imipd-{uid}@example.test"),
                envelope_from: account,
                envelope_to: vec!["alice@example.test".into()],
                bytes: b"Subject: Accepted\r\n\r\nbody".to_vec(),
            },
        )],
        sent: Vec::new(),
        checkpoint: Some(Checkpoint {
            uid_validity: 3,
            last_uid: uid,
        }),
    }
}

/// A store with objects of two mailboxes, their metadata and busy intervals, one reply
/// queued and one dead.
async fn populate(dir: &Path) {
    let store = Store::open(dir).expect("open");
    let room1 = "room1@example.test".to_string();
    let mut weekly = StoredObject::new("weekly-berlin", data("store/objects/berlin-weekly.ics"));
    weekly.instances = vec![
        InstanceOrder {
            recurrence_id: None,
            sequence: 2,
            dtstamp: Some("20270101T090000Z".into()),
            cancelled: false,
        },
        InstanceOrder {
            recurrence_id: Some("20270111T080000Z".into()),
            sequence: 3,
            dtstamp: Some("20270102T090000Z".into()),
            cancelled: false,
        },
    ];
    weekly.attendees = vec![AttendeeOrder {
        address: "mailto:room1@example.test".into(),
        recurrence_id: None,
        sequence: 2,
        dtstamp: Some("20270101T100000Z".into()),
    }];
    let mut cancelled = StoredObject::new("cancelled-one", data("store/objects/cancelled.ics"));
    cancelled.tombstone = Some(Tombstone {
        sequence: 4,
        dtstamp: Some("20270103T090000Z".into()),
        at: Some("2027-01-03T09:00:05Z".into()),
    });
    let weekly_busy = (0..10)
        .map(|w| {
            let start = 1_799_222_400 + w * 7 * 86400;
            interval(start, start + 3600, Some(&format!("w{w}")))
        })
        .collect();
    let commits = [
        message(
            1,
            vec![(room1.clone(), weekly)],
            vec![BusyUpdate {
                mailbox: room1.clone(),
                uid: "weekly-berlin".into(),
                intervals: weekly_busy,
            }],
        ),
        message(
            2,
            vec![(
                room1.clone(),
                StoredObject::new("single-berlin", data("store/objects/berlin-single.ics")),
            )],
            vec![BusyUpdate {
                mailbox: room1.clone(),
                uid: "single-berlin".into(),
                intervals: vec![interval(1_799_334_000, 1_799_337_600, None)],
            }],
        ),
        message(3, vec![(room1.clone(), cancelled)], vec![]),
        message(
            4,
            vec![(
                "room2@example.test".into(),
                StoredObject::new("odd-shape", data("store/objects/odd-shape.ics")),
            )],
            vec![],
        ),
    ];
    for c in &commits {
        store.commit(c).await.expect("commit");
    }
    store
        .extend_busy(&room1, 1_830_000_000, &[])
        .await
        .expect("horizon");
    let outbox = store.outbox().expect("outbox");
    store
        .outbox_dead(&outbox[0], "550 5.1.1 no such user")
        .await
        .expect("dead");
}

#[tokio::test]
async fn an_export_imports_into_a_store_that_shows_the_same_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    populate(&old).await;

    let export = imipd(&["store", "export"], &old);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8(export.stdout.clone()).expect("UTF-8");
    let calendars = |t: &str| t.lines().filter(|l| *l == "BEGIN:VCALENDAR").count();
    assert_eq!(calendars(&text), 2, "one VCALENDAR per mailbox");
    assert_eq!(
        text.matches("TZID:Europe/Berlin\r\n").count(),
        1,
        "the shared VTIMEZONE is written once"
    );
    assert!(text.contains("X-IMIPD-BUSY-HORIZON:1830000000\r\n"));
    assert!(text.lines().all(|l| l.len() <= 75), "lines are folded");
    let file = dir.path().join("export.ics");
    std::fs::write(&file, &text).expect("write");

    let import = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["store", "import", "--store"])
        .arg(&new)
        .arg(&file)
        .output()
        .expect("run import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let shown_old = imipd(&["show", "--objects"], &old);
    let shown_new = imipd(&["show", "--objects"], &new);
    assert!(shown_old.status.success() && shown_new.status.success());
    assert_eq!(lines(&shown_old).len(), 4);
    assert_eq!(
        String::from_utf8_lossy(&shown_new.stdout),
        String::from_utf8_lossy(&shown_old.stdout),
        "the restored objects are identical, metadata and tombstones included"
    );
    let again = imipd(&["store", "export"], &new);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        text,
        "busy intervals and horizon came back too"
    );
    let verify = imipd(&["store", "verify"], &new);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let one = imipd(
        &["store", "export", "--mailbox", "room2@example.test"],
        &old,
    );
    let one = String::from_utf8_lossy(&one.stdout);
    assert_eq!(calendars(&one), 1);
    assert!(one.contains("odd-shape") && !one.contains("weekly-berlin"));
}

#[tokio::test]
async fn show_prints_the_ledger_outbox_and_dead_letters_as_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path()).await;
    let ledger = lines(&imipd(&["show", "--ledger"], dir.path()));
    assert_eq!(ledger.len(), 4);
    assert_eq!(ledger[0]["account"], "room1@example.test");
    assert_eq!(ledger[0]["uid_validity"], 3);
    assert_eq!(ledger[0]["outcome"], "added");
    assert_eq!(ledger[0]["message_id"], "m1@example.test");
    let outbox = lines(&imipd(&["show", "--outbox"], dir.path()));
    assert_eq!(outbox.len(), 3);
    assert_eq!(outbox[0]["attempts"], 0);
    let dead = lines(&imipd(&["show", "--dead"], dir.path()));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "550 5.1.1 no such user");
    assert_eq!(dead[0]["item"]["message_id"], "imipd-1@example.test");
    let room2 = lines(&imipd(
        &["show", "--ledger", "--mailbox", "room2@example.test"],
        dir.path(),
    ));
    assert_eq!(room2.len(), 1);
}

#[tokio::test]
async fn verify_exits_non_zero_naming_the_inconsistency() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path()).await;
    {
        let store = Store::open(dir.path()).expect("open");
        let busy_by_uid = store.raw_tree("busy_by_uid").expect("tree");
        busy_by_uid
            .remove(b"room1@example.test\0single-berlin")
            .expect("damage");
    }
    let verify = imipd(&["store", "verify"], dir.path());
    assert_eq!(verify.status.code(), Some(1));
    let problems = lines(&verify);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["tree"], "busy");
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("an interval no object's busy_by_uid"),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn a_second_process_is_refused_naming_the_store_and_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path()).await;
    let holder = Store::open(dir.path()).expect("this process holds the store");
    for args in [
        &["store", "verify"][..],
        &["show", "--ledger"][..],
        &["store", "export"][..],
    ] {
        let refused = imipd(args, dir.path());
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains(&dir.path().display().to_string())
                && stderr.contains(&format!("PID {}", std::process::id())),
            "{args:?}: {stderr}"
        );
    }
    drop(holder);
    let verify = imipd(&["store", "verify"], dir.path());
    assert!(
        verify.status.success(),
        "the refused processes changed nothing: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn show_refuses_a_directory_that_is_not_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = imipd(&["show", "--ledger"], &dir.path().join("nothing"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an imipd store"));
}
