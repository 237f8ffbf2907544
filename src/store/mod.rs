//! The store: the only module that touches sled, and the keeper of the two invariants
//! "exactly once" and "nothing lost".
//!
//! # Schema (schema version 1)
//!
//! One sled database with these trees; keys are bytes, values JSON unless noted.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `schema_version` | the version as a decimal string |
//! | `objects` | `mailbox` `\0` `uid` | [`StoredObject`] |
//! | `ledger` | [`MessageKey::encode`]: account `\0` folder `\0` UIDVALIDITY (u32 BE) UID (u32 BE) | [`LedgerEntry`] |
//! | `ledger_ids` | account `\0` Message-ID `\0` content hash (hex) | the `ledger` key |
//! | `outbox` | id (u64 BE, from sled's id generator) | [`OutboxItem`] |
//! | `outbox_bytes` | the same id | the raw RFC 5322 message (bytes) |
//! | `dead` | the same id | [`DeadLetter`]; the bytes stay in `outbox_bytes` |
//! | `checkpoints` | account `\0` folder | [`Checkpoint`] |
//!
//! A mailbox address and an IMAP folder name never contain NUL, so `mailbox \0 uid` is
//! unambiguous even though the UID (opaque text from a stranger) may contain anything: the UID
//! is never interpreted as a path or a separator.
//!
//! # sled caveats, and how this module designs around them
//!
//! sled 0.34.7 survives process kills (its log is replayed on open), but its `flush` is not
//! power-loss durable (it uses `sync_file_range`; upstream issue #1452), it amplifies space about
//! 2×, and the 1.0 alphas change the on-disk format. So: every processed message is one
//! transaction over all the trees it touches, followed by a flush, before the caller marks the
//! message on the IMAP server; the ledger, not the IMAP flag, is the truth about what was
//! processed; `cache_capacity` is bounded; and the schema version is stored for migrations.

use crate::itip::Outcome;
use crate::mail::Composed;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

const TREES: [&str; 7] = [
    "objects",
    "ledger",
    "ledger_ids",
    "outbox",
    "outbox_bytes",
    "dead",
    "checkpoints",
];
const OBJECTS: usize = 0;
const LEDGER: usize = 1;
const LEDGER_IDS: usize = 2;
const OUTBOX: usize = 3;
const OUTBOX_BYTES: usize = 4;
const DEAD: usize = 5;
const CHECKPOINTS: usize = 6;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store {path} is in use by another process (sled holds an exclusive lock on it); stop that process or use another --store directory"
    )]
    Locked { path: PathBuf },
    #[error(
        "the store {path} has schema version {found}, this imipd understands {SCHEMA_VERSION}; upgrade imipd"
    )]
    SchemaTooNew { path: PathBuf, found: u32 },
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored record could not be decoded ({what}): {source}")]
    Corrupt {
        what: &'static str,
        source: serde_json::Error,
    },
}

/// Where a message came from: the IMAP identity of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageKey {
    /// The mailbox (account) address.
    pub account: String,
    pub folder: String,
    pub uid_validity: u32,
    pub uid: u32,
}

impl MessageKey {
    /// The `ledger` tree key.
    pub fn encode(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.account.len() + self.folder.len() + 10);
        key.extend_from_slice(self.account.as_bytes());
        key.push(0);
        key.extend_from_slice(self.folder.as_bytes());
        key.push(0);
        key.extend_from_slice(&self.uid_validity.to_be_bytes());
        key.extend_from_slice(&self.uid.to_be_bytes());
        key
    }
}

/// The ledger's record of one processed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub message_id: Option<String>,
    /// SHA-256 of the raw message, hex.
    pub content_hash: String,
    /// One result per calendar part acted on (none for a message without calendar data).
    pub results: Vec<PartResult>,
    /// When it was processed, RFC 3339.
    pub processed_at: String,
}

impl LedgerEntry {
    /// The outcome that summarises the message: the first part's, or `no_action` when the
    /// message carried no calendar object.
    pub fn outcome(&self) -> Outcome {
        self.results
            .first()
            .map_or(Outcome::NoAction, |r| r.outcome)
    }
}

/// The result of one calendar part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartResult {
    pub part: usize,
    pub method: Option<String>,
    pub uid: Option<String>,
    pub outcome: Outcome,
    /// `code: human text`.
    pub reason: String,
}

/// A stored calendar object (one UID of one mailbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    pub uid: String,
    /// The whole object as RFC 5545 text, without METHOD.
    pub ical: String,
}

/// A reply waiting for SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: u64,
    /// The mailbox whose SMTP settings send it.
    pub mailbox: String,
    pub message_id: String,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub attempts: u32,
    /// Unix seconds before which no attempt is made.
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

/// A reply that can never be delivered (permanent SMTP failure), kept for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub reason: String,
}

/// How far an IMAP folder has been processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub uid_validity: u32,
    pub last_uid: u32,
}

/// Everything one processed message changes, applied in one transaction.
#[derive(Debug, Clone)]
pub struct Commit {
    pub key: MessageKey,
    pub entry: LedgerEntry,
    /// Objects to write, by (mailbox, uid).
    pub objects: Vec<(String, StoredObject)>,
    /// Replies to queue, each with the mailbox that sends it.
    pub replies: Vec<(String, Composed)>,
}

/// Whether a commit changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitResult {
    Applied,
    /// The ledger already held this message: nothing was changed.
    AlreadyProcessed,
}

/// A handle on the store. Cheap to clone; all clones share one sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Corrupt { what, source }
}

impl Store {
    /// Opens (or creates) the store at `path`. A second process opening the same store gets
    /// [`StoreError::Locked`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked {
                        path: path.to_path_buf(),
                    }
                }
                other => StoreError::Sled(other),
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            None => {
                meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
            }
            Some(v) => {
                let found = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(u32::MAX);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        path: path.to_path_buf(),
                        found,
                    });
                }
            }
        }
        let trees = TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store { db, trees })
    }

    fn object_key(mailbox: &str, uid: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(mailbox.len() + uid.len() + 1);
        key.extend_from_slice(mailbox.as_bytes());
        key.push(0);
        key.extend_from_slice(uid.as_bytes());
        key
    }

    fn ledger_id_key(account: &str, message_id: &str, content_hash: &str) -> Vec<u8> {
        format!("{account}\0{message_id}\0{content_hash}").into_bytes()
    }

    /// The stored object for `uid` in `mailbox`.
    pub fn object(&self, mailbox: &str, uid: &str) -> Result<Option<StoredObject>, StoreError> {
        self.trees[OBJECTS]
            .get(Self::object_key(mailbox, uid))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt("object")))
            .transpose()
    }

    /// Every stored object of `mailbox` (or of all mailboxes), with its mailbox.
    pub fn objects(
        &self,
        mailbox: Option<&str>,
    ) -> Result<Vec<(String, StoredObject)>, StoreError> {
        let prefix = mailbox.map(|m| Self::object_key(m, "")).unwrap_or_default();
        self.trees[OBJECTS]
            .scan_prefix(prefix)
            .map(|item| {
                let (key, value) = item?;
                let mailbox = key
                    .split(|b| *b == 0)
                    .next()
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .unwrap_or_default();
                let object = serde_json::from_slice(&value).map_err(corrupt("object"))?;
                Ok((mailbox, object))
            })
            .collect()
    }

    /// The ledger entry for a message, found by its IMAP identity or, when the folder's
    /// UIDVALIDITY changed, by its Message-ID and content hash.
    pub fn ledger_entry(
        &self,
        key: &MessageKey,
        message_id: Option<&str>,
        content_hash: &str,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        let mut found = self.trees[LEDGER].get(key.encode())?;
        if found.is_none()
            && let Some(id) = message_id
            && let Some(ledger_key) =
                self.trees[LEDGER_IDS].get(Self::ledger_id_key(&key.account, id, content_hash))?
        {
            found = self.trees[LEDGER].get(ledger_key)?;
        }
        found
            .map(|v| serde_json::from_slice(&v).map_err(corrupt("ledger entry")))
            .transpose()
    }

    /// Every ledger entry, with its key, in key order.
    pub fn ledger(&self) -> Result<Vec<(MessageKey, LedgerEntry)>, StoreError> {
        self.trees[LEDGER]
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let entry = serde_json::from_slice(&value).map_err(corrupt("ledger entry"))?;
                Ok((decode_message_key(&key), entry))
            })
            .collect()
    }

    /// Applies everything one message changes, in one transaction, and flushes it to disk.
    /// A message the ledger already holds (by IMAP identity, or by Message-ID and content
    /// hash) changes nothing and returns [`CommitResult::AlreadyProcessed`].
    pub async fn commit(&self, commit: &Commit) -> Result<CommitResult, StoreError> {
        let ledger_key = commit.key.encode();
        let ledger_value = serde_json::to_vec(&commit.entry).map_err(corrupt("ledger entry"))?;
        let id_key = commit
            .entry
            .message_id
            .as_deref()
            .map(|id| Self::ledger_id_key(&commit.key.account, id, &commit.entry.content_hash));
        let objects = commit
            .objects
            .iter()
            .map(|(mailbox, object)| {
                Ok((
                    Self::object_key(mailbox, &object.uid),
                    serde_json::to_vec(object).map_err(corrupt("object"))?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let result = self.trees.as_slice().transaction(|trees| {
            if trees[LEDGER].get(&ledger_key)?.is_some() {
                return Ok(CommitResult::AlreadyProcessed);
            }
            if let Some(id_key) = &id_key
                && trees[LEDGER_IDS].get(id_key)?.is_some()
            {
                return Ok(CommitResult::AlreadyProcessed);
            }
            trees[LEDGER].insert(ledger_key.as_slice(), ledger_value.as_slice())?;
            if let Some(id_key) = &id_key {
                trees[LEDGER_IDS].insert(id_key.as_slice(), ledger_key.as_slice())?;
            }
            for (key, value) in &objects {
                trees[OBJECTS].insert(key.as_slice(), value.as_slice())?;
            }
            for (mailbox, reply) in &commit.replies {
                let id = trees[OUTBOX].generate_id()?;
                let item = OutboxItem {
                    id,
                    mailbox: mailbox.clone(),
                    message_id: reply.message_id.clone(),
                    envelope_from: reply.envelope_from.clone(),
                    envelope_to: reply.envelope_to.clone(),
                    attempts: 0,
                    next_attempt: 0,
                    last_error: None,
                };
                let value = serde_json::to_vec(&item)
                    .map_err(|e| ConflictableTransactionError::Abort(corrupt("outbox item")(e)))?;
                trees[OUTBOX].insert(&id.to_be_bytes(), value)?;
                trees[OUTBOX_BYTES].insert(&id.to_be_bytes(), reply.bytes.as_slice())?;
            }
            Ok(CommitResult::Applied)
        });
        let result = match result {
            Ok(r) => r,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::Sled(e)),
        };
        self.db.flush_async().await?;
        Ok(result)
    }

    /// Every reply waiting in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.trees[OUTBOX]
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(corrupt("outbox item")))
            .collect()
    }

    /// The raw message of an outbox item.
    pub fn outbox_bytes(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.trees[OUTBOX_BYTES]
            .get(id.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Removes an item the SMTP server accepted, and flushes.
    pub async fn outbox_sent(&self, id: u64) -> Result<(), StoreError> {
        let key = id.to_be_bytes();
        self.trees[OUTBOX].remove(key)?;
        self.trees[OUTBOX_BYTES].remove(key)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Records a failed attempt that will be retried.
    pub async fn outbox_retry(&self, item: &OutboxItem) -> Result<(), StoreError> {
        let value = serde_json::to_vec(item).map_err(corrupt("outbox item"))?;
        self.trees[OUTBOX].insert(item.id.to_be_bytes(), value)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Moves an item that can never be delivered to the dead letters.
    pub async fn outbox_dead(&self, item: &OutboxItem, reason: &str) -> Result<(), StoreError> {
        let dead = DeadLetter {
            item: item.clone(),
            reason: reason.to_string(),
        };
        let value = serde_json::to_vec(&dead).map_err(corrupt("dead letter"))?;
        let key = item.id.to_be_bytes();
        let trees = [self.trees[OUTBOX].clone(), self.trees[DEAD].clone()];
        trees
            .as_slice()
            .transaction(|t| {
                t[0].remove(&key)?;
                t[1].insert(&key, value.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StoreError::Sled(e),
                TransactionError::Abort(()) => unreachable!("the closure never aborts"),
            })?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Every dead letter.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.trees[DEAD]
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(corrupt("dead letter")))
            .collect()
    }

    /// The checkpoint of one IMAP folder.
    pub fn checkpoint(
        &self,
        account: &str,
        folder: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        self.trees[CHECKPOINTS]
            .get(format!("{account}\0{folder}"))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt("checkpoint")))
            .transpose()
    }

    /// Records how far an IMAP folder has been processed.
    pub fn set_checkpoint(
        &self,
        account: &str,
        folder: &str,
        checkpoint: Checkpoint,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(&checkpoint).map_err(corrupt("checkpoint"))?;
        self.trees[CHECKPOINTS].insert(format!("{account}\0{folder}"), value)?;
        Ok(())
    }
}

fn decode_message_key(key: &[u8]) -> MessageKey {
    let mut fields = key.splitn(3, |b| *b == 0);
    let account = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let folder = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let rest = fields.next().unwrap_or_default();
    let number = |range: std::ops::Range<usize>| {
        rest.get(range)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_be_bytes)
    };
    MessageKey {
        account,
        folder,
        uid_validity: number(0..4),
        uid: number(4..8),
    }
}

#[cfg(test)]
mod tests {
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
                StoredObject {
                    uid: "weird\0uid/../x".into(),
                    ical: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
                },
            )],
            replies: vec![(
                "room1@example.test".into(),
                Composed {
                    message_id: "r1@example.test".into(),
                    envelope_from: "room1@example.test".into(),
                    envelope_to: vec!["alice@example.test".into()],
                    bytes: b"Subject: x\r\n\r\nbody".to_vec(),
                },
            )],
        }
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
    async fn outbox_items_move_to_dead_letters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.commit(&commit(1, "m1")).await.expect("commit");
        let item = store.outbox().expect("outbox").remove(0);
        assert_eq!(
            store.outbox_bytes(item.id).expect("bytes").as_deref(),
            Some(&b"Subject: x\r\n\r\nbody"[..])
        );
        store
            .outbox_dead(&item, "550 no such user")
            .await
            .expect("dead");
        assert!(store.outbox().expect("outbox").is_empty());
        assert_eq!(
            store.dead_letters().expect("dead")[0].reason,
            "550 no such user"
        );
    }

    #[test]
    fn ledger_keys_decode_to_what_was_encoded() {
        let key = commit(4242, "m").key;
        assert_eq!(decode_message_key(&key.encode()), key);
    }
}
