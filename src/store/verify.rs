//! `imipd store verify`: checks every index against what it is derived from.
//!
//! What is checked, each failure named with its tree and key:
//! - every record in every tree decodes, and every key has the layout this module writes;
//! - `objects`: the key's UID is the object's UID;
//! - `ledger_ids` ↔ `ledger`: every id entry points to a ledger entry with that Message-ID
//!   and content hash, and every ledger entry with a Message-ID has its id entry;
//! - `outbox` ↔ `outbox_bytes`: every queued item has its bytes and its key is its id;
//!   every stored message belongs to a queued item or a dead letter;
//! - `sent`: every entry decodes and is stored under its mailbox and Message-ID (the key a
//!   delivery report is matched with);
//! - `busy` ↔ `busy_by_uid` ↔ `objects`: the busy tree holds exactly the keys the reverse
//!   index derives, with the same values; every UID with intervals has an object; every
//!   occupied level is marked in `busy_meta`.
//!
//! The busy intervals are not recomputed from the iCalendar text: expansion belongs to the
//! calendar layer. What can drift inside the store, the indexes, is what is checked.

use super::busy::{self, BusyEntry, BusyInterval, BusyMeta};
use super::records::{ledger_id_key, sent_key, split_object_key};
use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The tree where it was found.
    pub tree: &'static str,
    /// The key, lossily as text (NUL shown as `\0`).
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.tree, self.key, self.problem)
    }
}

fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "\\0")
}

impl Store {
    /// Checks the indexes against the records they derive from; an empty list means
    /// consistent.
    pub fn verify(&self) -> Result<Vec<Problem>, StoreError> {
        let mut problems = Vec::new();
        let mut report = |tree: &'static str, key: &[u8], problem: String| {
            problems.push(Problem {
                tree,
                key: show(key),
                problem,
            })
        };

        let mut object_keys = BTreeSet::new();
        for item in self.trees[OBJECTS].iter() {
            let (key, value) = item?;
            match serde_json::from_slice::<StoredObject>(&value) {
                Err(e) => report("objects", &key, format!("does not decode: {e}")),
                Ok(object) => match split_object_key(&key) {
                    Some((_, uid)) if uid == object.uid => {}
                    Some((_, uid)) => report(
                        "objects",
                        &key,
                        format!("stored under UID {uid:?} but holds UID {:?}", object.uid),
                    ),
                    None => report("objects", &key, "key is not mailbox \\0 UID".into()),
                },
            }
            object_keys.insert(key.to_vec());
        }

        let mut ledger_id_keys = BTreeSet::new();
        for item in self.trees[LEDGER].iter() {
            let (key, value) = item?;
            let Some(message_key) = MessageKey::decode(&key) else {
                report(
                    "ledger",
                    &key,
                    "key is not account \\0 folder \\0 UIDVALIDITY UID".into(),
                );
                continue;
            };
            match serde_json::from_slice::<LedgerEntry>(&value) {
                Err(e) => report("ledger", &key, format!("does not decode: {e}")),
                Ok(entry) => {
                    if let Some(id) = &entry.message_id {
                        let id_key = ledger_id_key(&message_key.account, id, &entry.content_hash);
                        match self.trees[LEDGER_IDS].get(&id_key)? {
                            None => report(
                                "ledger_ids",
                                &id_key,
                                format!("missing for ledger entry {}", show(&key)),
                            ),
                            Some(target) if target != key => report(
                                "ledger_ids",
                                &id_key,
                                format!(
                                    "points to {} instead of the ledger entry {} with that Message-ID and hash",
                                    show(&target),
                                    show(&key)
                                ),
                            ),
                            Some(_) => {}
                        }
                        ledger_id_keys.insert(id_key);
                    }
                }
            }
        }
        for item in self.trees[LEDGER_IDS].iter() {
            let (key, target) = item?;
            if self.trees[LEDGER].get(&target)?.is_none() {
                report(
                    "ledger_ids",
                    &key,
                    format!("points to a missing ledger entry {}", show(&target)),
                );
            } else if !ledger_id_keys.contains(key.as_ref()) {
                report(
                    "ledger_ids",
                    &key,
                    format!(
                        "the ledger entry {} it points to has another Message-ID or hash",
                        show(&target)
                    ),
                );
            }
        }

        let mut message_owners = BTreeSet::new();
        for item in self.trees[OUTBOX].iter() {
            let (key, value) = item?;
            match serde_json::from_slice::<OutboxItem>(&value) {
                Err(e) => report("outbox", &key, format!("does not decode: {e}")),
                Ok(item) => {
                    if key.as_ref() != item.id.to_be_bytes() {
                        report(
                            "outbox",
                            &key,
                            format!("stored under another key than its id {}", item.id),
                        );
                    }
                    if self.trees[OUTBOX_BYTES].get(&key)?.is_none() {
                        report(
                            "outbox_bytes",
                            &key,
                            format!(
                                "the message of queued reply {} ({}) is missing",
                                item.id, item.message_id
                            ),
                        );
                    }
                }
            }
            message_owners.insert(key.to_vec());
        }
        for item in self.trees[DEAD].iter() {
            let (key, value) = item?;
            if let Err(e) = serde_json::from_slice::<DeadLetter>(&value) {
                report("dead", &key, format!("does not decode: {e}"));
            }
            message_owners.insert(key.to_vec());
        }
        for key in self.trees[OUTBOX_BYTES].iter().keys() {
            let key = key?;
            if !message_owners.contains(key.as_ref()) {
                report(
                    "outbox_bytes",
                    &key,
                    "a message no outbox item or dead letter owns".into(),
                );
            }
        }

        for item in self.trees[SENT].iter() {
            let (key, value) = item?;
            match serde_json::from_slice::<SentReply>(&value) {
                Err(e) => report("sent", &key, format!("does not decode: {e}")),
                Ok(sent) if key.as_ref() != sent_key(&sent.mailbox, &sent.message_id) => report(
                    "sent",
                    &key,
                    format!(
                        "stored under another key than its mailbox and Message-ID ({} \\0 {}): a delivery report would not find it",
                        sent.mailbox, sent.message_id
                    ),
                ),
                Ok(_) => {}
            }
        }

        let mut metas: BTreeMap<String, BusyMeta> = BTreeMap::new();
        for item in self.trees[BUSY_META].iter() {
            let (key, value) = item?;
            match serde_json::from_slice::<BusyMeta>(&value) {
                Err(e) => report("busy_meta", &key, format!("does not decode: {e}")),
                Ok(meta) => {
                    metas.insert(String::from_utf8_lossy(&key).into_owned(), meta);
                }
            }
        }
        let mut expected: BTreeMap<Vec<u8>, BusyEntry> = BTreeMap::new();
        for item in self.trees[BUSY_BY_UID].iter() {
            let (key, value) = item?;
            let Some((mailbox, uid)) = split_object_key(&key) else {
                report("busy_by_uid", &key, "key is not mailbox \\0 UID".into());
                continue;
            };
            if !object_keys.contains(key.as_ref()) {
                report(
                    "busy_by_uid",
                    &key,
                    "intervals for an object that is not stored".into(),
                );
            }
            let intervals: Vec<BusyInterval> = match serde_json::from_slice(&value) {
                Ok(i) => i,
                Err(e) => {
                    report("busy_by_uid", &key, format!("does not decode: {e}"));
                    continue;
                }
            };
            let levels = metas.get(&mailbox).map_or(0, |m| m.levels);
            for interval in intervals {
                let level = busy::level(&interval);
                if levels & (1 << level) == 0 {
                    report(
                        "busy_meta",
                        mailbox.as_bytes(),
                        format!(
                            "level {level} holds intervals of {uid:?} but is not marked occupied"
                        ),
                    );
                }
                expected.insert(
                    busy::key(&mailbox, &uid, &interval),
                    BusyEntry {
                        uid: uid.clone(),
                        interval,
                    },
                );
            }
        }
        for item in self.trees[BUSY].iter() {
            let (key, value) = item?;
            match expected.remove(key.as_ref()) {
                None => report(
                    "busy",
                    &key,
                    "an interval no object's busy_by_uid record lists".into(),
                ),
                Some(want) => match serde_json::from_slice::<BusyEntry>(&value) {
                    Ok(found) if found == want => {}
                    Ok(found) => report(
                        "busy",
                        &key,
                        format!("holds {found:?}, the reverse index says {want:?}"),
                    ),
                    Err(e) => report("busy", &key, format!("does not decode: {e}")),
                },
            }
        }
        for (key, entry) in expected {
            report(
                "busy",
                &key,
                format!(
                    "missing interval {}..{} of {:?}",
                    entry.interval.start, entry.interval.end, entry.uid
                ),
            );
        }

        for item in self.trees[CHECKPOINTS].iter() {
            let (key, value) = item?;
            if let Err(e) = serde_json::from_slice::<Checkpoint>(&value) {
                report("checkpoints", &key, format!("does not decode: {e}"));
            }
        }
        Ok(problems)
    }

    /// Test and repair access to one raw tree by name (used by the verify tests to damage a
    /// store on purpose; not for normal operation).
    pub fn raw_tree(&self, name: &str) -> Option<sled::Tree> {
        TREES
            .iter()
            .position(|t| *t == name)
            .map(|i| self.trees[i].clone())
    }
}
