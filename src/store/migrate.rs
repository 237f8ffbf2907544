//! Schema versions and the steps between them.
//!
//! The version lives in `meta/schema_version` (decimal text). Opening a store runs every
//! step from the stored version up to [`SCHEMA_VERSION`], one sled transaction per step that
//! changes the records *and* bumps the version, followed by a flush: a crash during a
//! migration leaves the store at the old version, and the step runs again on the next open.
//! A store newer than this build is refused, never touched.
//!
//! | version | what it is | step to the next |
//! |---|---|---|
//! | 0 | a pre-release store: the v1 trees, no `schema_version` key | [`v0_to_v1`]: record the version |
//! | 1 | the walking skeleton: objects are `{uid, ical}`, no busy index | [`v1_to_v2`]: rewrite objects in the v2 form, create the busy trees, mark every mailbox "not indexed" (horizon 0) |
//! | 2 | this schema (see the module docs of [`crate::store`]) | — |
//!
//! A step is a plain function over the database so that it can be tested on a fixture of the
//! old version (`tests/store_migrate.rs` builds v0 and v1 stores from `tests/data/store/`).

use super::busy::BusyMeta;
use super::records::{StoredObject, split_object_key};
use super::{StoreError, corrupt, storage};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use std::collections::BTreeSet;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The `meta` key of the version.
pub const VERSION_KEY: &str = "schema_version";

/// One migration step: from version `from` to `from + 1`.
pub struct Step {
    /// The version it starts from.
    pub from: u32,
    /// What it does, for the log.
    pub what: &'static str,
    /// The step itself; it also writes the new version, in the same transaction.
    pub run: fn(&sled::Db) -> Result<(), StoreError>,
}

/// Every step, in order.
pub const STEPS: [Step; 2] = [
    Step {
        from: 0,
        what: "record the schema version",
        run: v0_to_v1,
    },
    Step {
        from: 1,
        what: "object metadata fields and the busy index trees",
        run: v1_to_v2,
    },
];

/// The stored schema version: `None` for an empty (new) database, 0 for a pre-release
/// store that has trees but no version.
pub fn stored_version(db: &sled::Db) -> Result<Option<u32>, StoreError> {
    let meta = db.open_tree("meta")?;
    if let Some(v) = meta.get(VERSION_KEY)? {
        let text = String::from_utf8_lossy(&v).into_owned();
        return text
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| StoreError::BadVersion { found: text });
    }
    let has_data = db
        .tree_names()
        .iter()
        .filter(|n| n.as_ref() != b"__sled__default" && n.as_ref() != b"meta")
        .map(|n| db.open_tree(n))
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .any(|t| !t.is_empty());
    Ok(has_data.then_some(0))
}

/// Brings the database to [`SCHEMA_VERSION`]. Returns the version it found.
pub fn migrate(db: &sled::Db, path: &std::path::Path) -> Result<Option<u32>, StoreError> {
    let found = stored_version(db)?;
    let Some(mut version) = found else {
        db.open_tree("meta")?
            .insert(VERSION_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
        db.flush()?;
        return Ok(None);
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
        });
    }
    while version < SCHEMA_VERSION {
        let step = STEPS
            .iter()
            .find(|s| s.from == version)
            .expect("STEPS has a step from every version below SCHEMA_VERSION");
        tracing::info!(
            store = %path.display(),
            from = version,
            to = version + 1,
            what = step.what,
            "migrating the store"
        );
        (step.run)(db)?;
        db.flush()?;
        version += 1;
    }
    Ok(found)
}

fn set_version(
    meta: &sled::transaction::TransactionalTree,
    version: u32,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    meta.insert(VERSION_KEY, version.to_string().as_bytes())?;
    Ok(())
}

/// 0 → 1: the layout is the same; only the version is recorded.
pub fn v0_to_v1(db: &sled::Db) -> Result<(), StoreError> {
    let meta = db.open_tree("meta")?;
    meta.transaction(|meta| set_version(meta, 1))
        .map_err(storage)?;
    Ok(())
}

/// 1 → 2: every object is rewritten in the v2 form (explicit metadata fields, empty until
/// the engine next writes the object), the busy trees are created, and every mailbox with
/// objects gets a `busy_meta` record with horizon 0: the index is empty and the calendar
/// layer must expand that mailbox's objects before trusting it.
pub fn v1_to_v2(db: &sled::Db) -> Result<(), StoreError> {
    let objects = db.open_tree("objects")?;
    let busy_meta = db.open_tree("busy_meta")?;
    let meta = db.open_tree("meta")?;
    db.open_tree("busy")?;
    db.open_tree("busy_by_uid")?;
    let mut rewritten = Vec::new();
    let mut mailboxes = BTreeSet::new();
    for item in objects.iter() {
        let (key, value) = item?;
        let object: StoredObject = serde_json::from_slice(&value).map_err(corrupt("object"))?;
        if let Some((mailbox, _)) = split_object_key(&key) {
            mailboxes.insert(mailbox);
        }
        rewritten.push((key, serde_json::to_vec(&object).map_err(corrupt("object"))?));
    }
    let not_indexed = serde_json::to_vec(&BusyMeta::default()).map_err(corrupt("busy meta"))?;
    (&objects, &busy_meta, &meta)
        .transaction(|(objects, busy_meta, meta)| {
            for (key, value) in &rewritten {
                objects.insert(key, value.as_slice())?;
            }
            for mailbox in &mailboxes {
                if busy_meta.get(mailbox.as_bytes())?.is_none() {
                    busy_meta.insert(mailbox.as_bytes(), not_indexed.as_slice())?;
                }
            }
            set_version(meta, 2)
        })
        .map_err(storage)?;
    Ok(())
}
