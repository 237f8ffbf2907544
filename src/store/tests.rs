//! Unit tests of the store's transactions and indexes.

use super::*;

fn commit(uid: u32, message_id: &str) -> Commit {
    Commit {
        key: MessageKey {
            account: "room1@example.test".into(),
            folder: "INBOX".into(),
            uid_validity: 7,
            uid,
        },
        entry: LedgerEntry {
            message_id: Some(message_id.into()),
            content_hash: "abc".into(),
            results: vec![],
            processed_at: "2027-01-01T00:00:00Z".into(),
        },
        objects: vec![(
            "room1@example.test".into(),
            StoredObject::new("weird\0uid/../x", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        )],
        busy: vec![],
        replies: vec![(
            "room1@example.test".into(),
            Composed {
                message_id: "r1@example.test".into(),
                envelope_from: "room1@example.test".into(),
                envelope_to: vec!["alice@example.test".into()],
                bytes: b"Subject: x\r\n\r\nbody".to_vec(),
            },
        )],
        sent: Vec::new(),
        checkpoint: Some(Checkpoint {
            uid_validity: 7,
            last_uid: uid,
        }),
    }
}

fn interval(start: i64, end: i64) -> BusyInterval {
    BusyInterval {
        start,
        end,
        recurrence_id: None,
        transparency: Transparency::Opaque,
    }
}

fn busy(uid: &str, intervals: Vec<BusyInterval>) -> BusyUpdate {
    BusyUpdate {
        mailbox: "room1@example.test".into(),
        uid: uid.into(),
        intervals,
    }
}

/// Commits `uid` as the only object of a message, with the given busy intervals.
async fn commit_busy(store: &Store, n: u32, uid: &str, intervals: Vec<BusyInterval>) {
    let mut c = commit(n, &format!("m{n}"));
    c.objects[0].1.uid = uid.into();
    c.busy = vec![busy(uid, intervals)];
    c.replies.clear();
    assert_eq!(
        store.commit(&c).await.expect("commit"),
        CommitResult::Applied
    );
}

fn uids(found: &[BusyEntry]) -> Vec<&str> {
    found.iter().map(|e| e.uid.as_str()).collect()
}

#[tokio::test]
async fn a_message_is_applied_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(
        store.commit(&commit(1, "m1")).await.expect("commit"),
        CommitResult::Applied
    );
    assert_eq!(
        store.commit(&commit(1, "m1")).await.expect("commit"),
        CommitResult::AlreadyProcessed
    );
    assert_eq!(
        store.outbox().expect("outbox").len(),
        1,
        "no second reply queued"
    );
    let object = store
        .object("room1@example.test", "weird\0uid/../x")
        .expect("read")
        .expect("stored");
    assert_eq!(object.uid, "weird\0uid/../x");
}

#[tokio::test]
async fn a_message_seen_again_under_a_new_uidvalidity_is_recognised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.commit(&commit(1, "m1")).await.expect("commit");
    let mut again = commit(99, "m1");
    again.key.uid_validity = 8;
    assert_eq!(
        store.commit(&again).await.expect("commit"),
        CommitResult::AlreadyProcessed
    );
    assert!(
        store
            .ledger_entry(&again.key, Some("m1"), "abc")
            .expect("read")
            .is_some()
    );
}

#[tokio::test]
async fn the_checkpoint_moves_with_the_commit_and_never_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.commit(&commit(5, "m5")).await.expect("commit");
    store.commit(&commit(3, "m3")).await.expect("commit");
    assert_eq!(
        store
            .checkpoint("room1@example.test", "INBOX")
            .expect("read"),
        Some(Checkpoint {
            uid_validity: 7,
            last_uid: 5
        })
    );
    let mut no_checkpoint = commit(9, "m9");
    no_checkpoint.checkpoint = None;
    store.commit(&no_checkpoint).await.expect("commit");
    assert_eq!(
        store
            .checkpoint("room1@example.test", "INBOX")
            .expect("read")
            .map(|c| c.last_uid),
        Some(5)
    );
}

#[tokio::test]
async fn outbox_items_move_to_dead_letters_keeping_their_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.commit(&commit(1, "m1")).await.expect("commit");
    let item = store.outbox().expect("outbox").remove(0);
    store
        .outbox_dead(&item, "550 no such user")
        .await
        .expect("dead");
    assert!(store.outbox().expect("outbox").is_empty());
    assert_eq!(
        store.dead_letters().expect("dead")[0].reason,
        "550 no such user"
    );
    assert_eq!(
        store.outbox_bytes(item.id).expect("bytes").as_deref(),
        Some(&b"Subject: x\r\n\r\nbody"[..])
    );
    assert!(store.verify().expect("verify").is_empty());
}

#[tokio::test]
async fn a_sent_reply_leaves_outbox_and_bytes_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.commit(&commit(1, "m1")).await.expect("commit");
    let item = store.outbox().expect("outbox").remove(0);
    store.outbox_sent(item.id).await.expect("sent");
    assert!(store.outbox().expect("outbox").is_empty());
    assert_eq!(store.outbox_bytes(item.id).expect("bytes"), None);
}

#[tokio::test]
async fn busy_queries_find_exactly_the_overlapping_intervals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let hour = 3600;
    commit_busy(&store, 1, "short", vec![interval(10 * hour, 11 * hour)]).await;
    // A week-long event that started long before the query window.
    commit_busy(&store, 2, "week", vec![interval(0, 7 * 24 * hour)]).await;
    commit_busy(&store, 3, "later", vec![interval(30 * hour, 31 * hour)]).await;
    commit_busy(&store, 4, "touching", vec![interval(9 * hour, 10 * hour)]).await;
    let found = store
        .busy("room1@example.test", 10 * hour, 12 * hour)
        .expect("query");
    assert_eq!(
        uids(&found),
        ["week", "short"],
        "half-open: 9-10 does not touch 10-12"
    );
    let found = store
        .busy("room1@example.test", 8 * 24 * hour, 9 * 24 * hour)
        .expect("query");
    assert!(found.is_empty(), "{found:?}");
    assert!(
        store
            .busy("room2@example.test", 0, 100 * hour)
            .expect("query")
            .is_empty(),
        "another mailbox's index is separate"
    );
}

#[tokio::test]
async fn a_commit_replaces_every_interval_of_its_uid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let rid = |start: i64| BusyInterval {
        recurrence_id: Some(format!("{start}")),
        ..interval(start, start + 1800)
    };
    commit_busy(
        &store,
        1,
        "series",
        vec![rid(0), rid(86400), rid(2 * 86400)],
    )
    .await;
    commit_busy(&store, 2, "series", vec![rid(3600)]).await;
    let found = store
        .busy("room1@example.test", -86400, 10 * 86400)
        .expect("query");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].interval.start, 3600);
    commit_busy(&store, 3, "series", vec![]).await;
    assert!(
        store
            .busy("room1@example.test", -86400, 10 * 86400)
            .expect("query")
            .is_empty()
    );
    assert!(store.verify().expect("verify").is_empty());
}

#[tokio::test]
async fn extending_the_horizon_replaces_intervals_and_records_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    commit_busy(&store, 1, "series", vec![interval(0, 60)]).await;
    assert_eq!(
        store.busy_meta("room1@example.test").expect("meta").horizon,
        0
    );
    store
        .extend_busy(
            "room1@example.test",
            1000,
            &[busy("series", vec![interval(0, 60), interval(500, 560)])],
        )
        .await
        .expect("extend");
    assert_eq!(
        store.busy_meta("room1@example.test").expect("meta").horizon,
        1000
    );
    assert_eq!(
        store
            .busy("room1@example.test", 0, 1000)
            .expect("query")
            .len(),
        2
    );
}

#[tokio::test]
async fn verify_names_a_damaged_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    commit_busy(&store, 1, "u1", vec![interval(0, 60)]).await;
    store.commit(&commit(2, "m2")).await.expect("commit");
    assert!(store.verify().expect("verify").is_empty());

    let busy_tree = store.raw_tree("busy").expect("tree");
    let key = busy_tree
        .iter()
        .keys()
        .next()
        .expect("one interval")
        .expect("read");
    busy_tree.remove(&key).expect("damage");
    let bytes = store.raw_tree("outbox_bytes").expect("tree");
    bytes
        .insert(999u64.to_be_bytes(), &b"orphan"[..])
        .expect("damage");
    let ids = store.raw_tree("ledger_ids").expect("tree");
    ids.insert("room1@example.test\0ghost\0h", &b"nowhere"[..])
        .expect("damage");
    let sent = store.raw_tree("sent").expect("tree");
    let moved = serde_json::to_vec(&sent_entry()).expect("encode");
    sent.insert("room2@example.test\0r1@example.test", moved)
        .expect("damage");
    sent.insert("room1@example.test\0garbled", &b"{not json"[..])
        .expect("damage");

    let problems = store.verify().expect("verify");
    let trees: Vec<&str> = problems.iter().map(|p| p.tree).collect();
    assert_eq!(
        trees,
        ["ledger_ids", "outbox_bytes", "sent", "sent", "busy"],
        "{problems:?}"
    );
    assert!(
        problems[2].problem.contains("does not decode"),
        "{problems:?}"
    );
    assert!(problems[3].problem.contains("another key"), "{problems:?}");
    assert!(
        problems[4].problem.contains("missing interval"),
        "{problems:?}"
    );
}

fn sent_entry() -> SentReply {
    SentReply {
        message_id: "r1@example.test".into(),
        mailbox: "room1@example.test".into(),
        uid: "weird\0uid/../x".into(),
        recurrence_id: None,
        recipient: "alice@example.test".into(),
        property: Recipient::Organizer,
        method: "REPLY".into(),
        queued_at: "2027-01-01T00:00:00Z".into(),
    }
}

#[tokio::test]
async fn the_sent_reply_index_is_written_with_the_outbox_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let mut c = commit(1, "m1");
    c.sent = vec![sent_entry()];
    store.commit(&c).await.expect("commit");
    assert_eq!(store.outbox().expect("outbox").len(), 1);
    assert_eq!(
        store
            .sent_reply("room1@example.test", "r1@example.test")
            .expect("read"),
        Some(sent_entry())
    );
    assert_eq!(
        store
            .sent_reply("room2@example.test", "r1@example.test")
            .expect("read"),
        None,
        "another mailbox's index is separate"
    );
    assert_eq!(store.sent_replies(None).expect("list"), vec![sent_entry()]);
}

#[tokio::test]
async fn a_dead_letter_updates_the_object_only_if_it_is_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.commit(&commit(1, "m1")).await.expect("commit");
    let item = store.outbox().expect("outbox").remove(0);
    let stale = ObjectUpdate {
        mailbox: "room1@example.test".into(),
        before: "BEGIN:VCALENDAR\r\nX-OLD:1\r\nEND:VCALENDAR\r\n".into(),
        after: StoredObject::new("weird\0uid/../x", "changed"),
    };
    assert_eq!(
        store
            .outbox_dead_with(&item, "550 5.1.1 no such user", &stale)
            .await
            .expect("write"),
        ObjectWrite::Changed
    );
    assert_eq!(store.outbox().expect("outbox").len(), 1, "nothing moved");
    assert!(store.dead_letters().expect("dead").is_empty());
    let current = ObjectUpdate {
        before: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
        ..stale
    };
    assert_eq!(
        store
            .outbox_dead_with(&item, "550 5.1.1 no such user", &current)
            .await
            .expect("write"),
        ObjectWrite::Written
    );
    assert!(store.outbox().expect("outbox").is_empty());
    assert_eq!(store.dead_letters().expect("dead").len(), 1);
    let object = store
        .object("room1@example.test", "weird\0uid/../x")
        .expect("read")
        .expect("stored");
    assert_eq!(object.ical, "changed");
}
