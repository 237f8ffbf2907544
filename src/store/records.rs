//! The records the store keeps, and the byte encoding of the keys they are stored under.
//!
//! Values are JSON (serde) so that a field added later reads old records through
//! `#[serde(default)]` without a migration; keys are bytes laid out so that sled's ordered
//! iteration answers the range and prefix questions the store asks.

use crate::itip::Outcome;
use serde::{Deserialize, Serialize};

/// Where a message came from: the IMAP identity of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageKey {
    /// The mailbox (account) address.
    pub account: String,
    /// The IMAP folder the message was found in.
    pub folder: String,
    /// The folder's UIDVALIDITY when the message was fetched.
    pub uid_validity: u32,
    /// The message's IMAP UID.
    pub uid: u32,
}

impl MessageKey {
    /// The `ledger` tree key: account `\0` folder `\0` UIDVALIDITY (u32 BE) UID (u32 BE).
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

    /// The inverse of [`MessageKey::encode`]; `None` for bytes it did not write.
    pub fn decode(key: &[u8]) -> Option<MessageKey> {
        let mut fields = key.splitn(3, |b| *b == 0);
        let account = std::str::from_utf8(fields.next()?).ok()?.to_string();
        let folder = std::str::from_utf8(fields.next()?).ok()?.to_string();
        let rest = fields.next()?;
        if rest.len() != 8 {
            return None;
        }
        let (validity, uid) = rest.split_at(4);
        Some(MessageKey {
            account,
            folder,
            uid_validity: u32::from_be_bytes(validity.try_into().ok()?),
            uid: u32::from_be_bytes(uid.try_into().ok()?),
        })
    }
}

/// The ledger's record of one processed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The message's Message-ID, without angle brackets, when it had one.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message, hex.
    pub content_hash: String,
    /// One result per calendar part acted on (one `no_action` result for a message without
    /// calendar data).
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
    /// The MIME part index the object came from.
    pub part: usize,
    /// The iTIP method acted on.
    pub method: Option<String>,
    /// The object's UID.
    pub uid: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// `code: human text`.
    pub reason: String,
}

/// The ordering key of one instance of an object (the master has no RECURRENCE-ID): an
/// update to the instance applies only when it is newer by (SEQUENCE, DTSTAMP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceOrder {
    /// RECURRENCE-ID as written in the object (`None`: the master or a single event).
    #[serde(default)]
    pub recurrence_id: Option<String>,
    /// The instance's SEQUENCE.
    #[serde(default)]
    pub sequence: i64,
    /// The instance's DTSTAMP, UTC basic format (`20270101T090000Z`).
    #[serde(default)]
    pub dtstamp: Option<String>,
    /// The instance was cancelled (a tombstone): a later request with a lower or equal
    /// ordering key must not bring it back.
    #[serde(default)]
    pub cancelled: bool,
}

/// The ordering key of the last reply applied from one attendee for one instance (on the
/// organiser side REPLYs are ordered per attendee by SEQUENCE, then DTSTAMP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendeeOrder {
    /// The attendee's calendar address, lower-cased `mailto:` URI.
    pub address: String,
    /// The instance the reply was about (`None`: the whole series).
    #[serde(default)]
    pub recurrence_id: Option<String>,
    /// SEQUENCE of the applied reply.
    #[serde(default)]
    pub sequence: i64,
    /// DTSTAMP of the applied reply.
    #[serde(default)]
    pub dtstamp: Option<String>,
}

/// Why a whole object is a tombstone: it was cancelled (or deleted) and is kept so that a
/// delayed older request cannot resurrect it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// SEQUENCE of the cancellation.
    #[serde(default)]
    pub sequence: i64,
    /// DTSTAMP of the cancellation.
    #[serde(default)]
    pub dtstamp: Option<String>,
    /// When the store recorded it, RFC 3339.
    #[serde(default)]
    pub at: Option<String>,
}

/// A stored calendar object (one UID of one mailbox).
///
/// The metadata fields are derived from `ical` by the engine and kept beside it so that the
/// ordering decisions do not need to re-parse the text; all of them default when absent so
/// that records written by schema version 1 read unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object's UID (opaque text; may contain anything).
    pub uid: String,
    /// The whole object as RFC 5545 text, without METHOD.
    pub ical: String,
    /// Ordering keys per instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceOrder>,
    /// Ordering keys per attendee and instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<AttendeeOrder>,
    /// Set when the whole object is cancelled and kept only as a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<Tombstone>,
    /// The object as received, when the mailbox's privacy rules scrub `ical` and keep the
    /// original (`[mailbox.policy.privacy] keep_original`); the engine works on it, `ical`
    /// is what viewers see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

impl StoredObject {
    /// An object with no metadata yet.
    pub fn new(uid: impl Into<String>, ical: impl Into<String>) -> StoredObject {
        StoredObject {
            uid: uid.into(),
            ical: ical.into(),
            ..StoredObject::default()
        }
    }
}

/// A reply waiting for SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The outbox key (from sled's id generator, so increasing).
    pub id: u64,
    /// The mailbox whose SMTP settings send it.
    pub mailbox: String,
    /// The reply's deterministic Message-ID.
    pub message_id: String,
    /// SMTP MAIL FROM.
    pub envelope_from: String,
    /// SMTP RCPT TO.
    pub envelope_to: Vec<String>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Unix seconds before which no attempt is made.
    pub next_attempt: i64,
    /// The last transient failure.
    pub last_error: Option<String>,
}

/// A reply that can never be delivered (permanent SMTP failure), kept for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The outbox item as it was when it died.
    pub item: OutboxItem,
    /// The server's answer, or why it could not be sent.
    pub reason: String,
}

/// Which property of the stored object names the recipient of one of our messages: where
/// a delivery failure is recorded as `SCHEDULE-STATUS` (RFC 6638 §3.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Recipient {
    /// We are an attendee and the message (REPLY, COUNTER, REFRESH) went to the ORGANIZER.
    Organizer,
    /// We are the organiser and the message went to this ATTENDEE.
    Attendee,
}

impl Recipient {
    /// The property name, as iCalendar writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Organizer => "ORGANIZER",
            Recipient::Attendee => "ATTENDEE",
        }
    }
}

/// The sent-reply index: what one of our queued messages was about, found by its
/// deterministic Message-ID when a delivery report (or a permanent SMTP refusal) comes back
/// for it. Written in the same transaction as the outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentReply {
    /// The message's Message-ID, without angle brackets.
    pub message_id: String,
    /// The mailbox (account) that sent it and stores the object.
    pub mailbox: String,
    /// The UID of the object it was about.
    pub uid: String,
    /// The instance it was about (`None`: the whole object).
    #[serde(default)]
    pub recurrence_id: Option<String>,
    /// The recipient's e-mail address, lower case.
    pub recipient: String,
    /// Which property of the stored object names the recipient.
    pub property: Recipient,
    /// The iTIP method sent (`REPLY`, `REQUEST`, ...).
    pub method: String,
    /// When it was queued, RFC 3339.
    pub queued_at: String,
}

/// How far an IMAP folder has been processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// The highest UID committed under that UIDVALIDITY.
    pub last_uid: u32,
}

impl Checkpoint {
    /// The checkpoint after also committing `next`: a new UIDVALIDITY starts over, the same
    /// one only moves forward (messages may be committed out of UID order after a crash).
    pub fn advance(current: Option<Checkpoint>, next: Checkpoint) -> Checkpoint {
        match current {
            Some(c) if c.uid_validity == next.uid_validity && c.last_uid >= next.last_uid => c,
            _ => next,
        }
    }
}

pub(crate) fn object_key(mailbox: &str, uid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(mailbox.len() + uid.len() + 1);
    key.extend_from_slice(mailbox.as_bytes());
    key.push(0);
    key.extend_from_slice(uid.as_bytes());
    key
}

/// Splits an `objects` (or `busy_by_uid`) key into mailbox and UID.
pub(crate) fn split_object_key(key: &[u8]) -> Option<(String, String)> {
    let at = key.iter().position(|b| *b == 0)?;
    let mailbox = std::str::from_utf8(&key[..at]).ok()?.to_string();
    let uid = std::str::from_utf8(&key[at + 1..]).ok()?.to_string();
    Some((mailbox, uid))
}

pub(crate) fn ledger_id_key(account: &str, message_id: &str, content_hash: &str) -> Vec<u8> {
    format!("{account}\0{message_id}\0{content_hash}").into_bytes()
}

pub(crate) fn sent_key(account: &str, message_id: &str) -> Vec<u8> {
    format!("{account}\0{message_id}").into_bytes()
}

pub(crate) fn checkpoint_key(account: &str, folder: &str) -> Vec<u8> {
    format!("{account}\0{folder}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_keys_decode_to_what_was_encoded() {
        let key = MessageKey {
            account: "room1@example.test".into(),
            folder: "INBOX/Sub".into(),
            uid_validity: 7,
            uid: 4242,
        };
        assert_eq!(MessageKey::decode(&key.encode()), Some(key));
        assert_eq!(MessageKey::decode(b"no separators"), None);
    }

    #[test]
    fn a_checkpoint_only_moves_forward_within_one_uidvalidity() {
        let at = |uid_validity, last_uid| Checkpoint {
            uid_validity,
            last_uid,
        };
        assert_eq!(Checkpoint::advance(None, at(1, 5)), at(1, 5));
        assert_eq!(Checkpoint::advance(Some(at(1, 9)), at(1, 5)), at(1, 9));
        assert_eq!(Checkpoint::advance(Some(at(1, 9)), at(1, 12)), at(1, 12));
        assert_eq!(Checkpoint::advance(Some(at(1, 9)), at(2, 3)), at(2, 3));
    }

    #[test]
    fn objects_written_by_schema_1_read_with_empty_metadata() {
        let old = r#"{"uid":"u1","ical":"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}"#;
        let object: StoredObject = serde_json::from_str(old).expect("a v1 object reads");
        assert_eq!(
            object,
            StoredObject::new("u1", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        );
    }
}
