//! Schema migrations, run on stores of the older versions built from readable fixtures
//! (`tests/data/store/v0.json`, `v1.json`; the format is in that directory's README).

use imipd::store::{MessageKey, SCHEMA_VERSION, Store, StoreError};
use std::path::Path;

fn bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("fixture keys are one byte per character"))
        .collect()
}

/// Writes the fixture's trees into a raw sled database at `dir`.
fn build(fixture: &str, dir: &Path) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/store")
        .join(fixture);
    let text = std::fs::read_to_string(&path).expect("read the fixture");
    let trees: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("the fixture is JSON");
    let db = sled::open(dir).expect("open a raw sled database");
    for (name, records) in trees {
        let tree = db.open_tree(&name).expect("open tree");
        for (key, value) in records.as_object().expect("a tree is a JSON object") {
            let value = match value {
                serde_json::Value::String(s) => bytes(s),
                other => serde_json::to_vec(other).expect("serialise"),
            };
            tree.insert(bytes(key), value).expect("insert");
        }
    }
    db.flush().expect("flush");
}

fn version(dir: &Path) -> String {
    let db = sled::open(dir).expect("reopen raw");
    db.open_tree("meta")
        .expect("meta")
        .get("schema_version")
        .expect("read")
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

fn check_migrated(fixture: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    build(fixture, dir.path());
    {
        let store = Store::open(dir.path()).expect("the old store opens and migrates");
        let object = store
            .object("room1@example.test", "skeleton-1")
            .expect("read")
            .expect("the object survived");
        assert!(object.ical.contains("Stored by the walking skeleton"));
        assert!(object.instances.is_empty() && object.tombstone.is_none());
        let meta = store.busy_meta("room1@example.test").expect("meta");
        assert_eq!(
            meta.horizon, 0,
            "the migrated mailbox is marked not indexed"
        );
        let key = MessageKey {
            account: "room1@example.test".into(),
            folder: "INBOX".into(),
            uid_validity: 7,
            uid: 1,
        };
        assert!(store.ledger_entry(&key, None, "").expect("read").is_some());
        let moved = MessageKey {
            uid_validity: 8,
            uid: 40,
            ..key
        };
        assert!(
            store
                .ledger_entry(&moved, Some("skeleton-1@example.test"), "abc")
                .expect("read")
                .is_some(),
            "the Message-ID index still finds it"
        );
        let outbox = store.outbox().expect("outbox");
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].last_error.as_deref(), Some("451 try later"));
        assert_eq!(
            store
                .checkpoint("room1@example.test", "INBOX")
                .expect("read")
                .map(|c| c.last_uid),
            Some(1)
        );
        assert_eq!(store.verify().expect("verify"), vec![]);
    }
    assert_eq!(version(dir.path()), SCHEMA_VERSION.to_string());
}

#[test]
fn a_version_1_store_migrates_to_the_current_schema() {
    check_migrated("v1.json");
}

#[test]
fn a_version_0_store_without_a_version_record_migrates() {
    check_migrated("v0.json");
}

#[test]
fn a_new_store_starts_at_the_current_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("create"));
    assert_eq!(version(dir.path()), SCHEMA_VERSION.to_string());
}

#[test]
fn a_store_from_a_newer_imipd_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    build("v1.json", dir.path());
    {
        let db = sled::open(dir.path()).expect("raw");
        db.open_tree("meta")
            .expect("meta")
            .insert("schema_version", "99")
            .expect("insert");
        db.flush().expect("flush");
    }
    match Store::open(dir.path()) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a newer store must be refused"),
    }
    assert_eq!(version(dir.path()), "99");
}
