//! What became of our own messages after they left: a delivery status notification
//! (RFC 3464) that comes back for one of our replies, or a permanent SMTP refusal, is recorded
//! on the stored object as the RFC 6638 `SCHEDULE-STATUS` parameter of the property that names
//! the recipient (the ORGANIZER our REPLY went to, or the ATTENDEE when we are the organiser),
//! so that `imipd show` tells the operator that the organiser never heard the answer.
//!
//! # The mapping
//!
//! RFC 6638 §3.2.9 defines `SCHEDULE-STATUS` values for "was the scheduling message
//! delivered"; SMTP says it with the DSN `Action` and the enhanced status code (RFC 3463
//! `class.subject.detail`). [`schedule_status`] maps them:
//!
//! | DSN `Action` / SMTP status | `SCHEDULE-STATUS` | RFC 6638 meaning |
//! |---|---|---|
//! | `delivered` | 1.2 | delivered |
//! | `relayed`, `expanded` | 1.1 | sent, delivery not confirmed |
//! | `delayed` | 1.0 | pending: the MTA is still trying |
//! | `failed` with `5.1.x` (bad mailbox, domain, address syntax, moved) | 3.7 | the recipient is not a valid calendar user address |
//! | `failed` with `5.7.x` (security or policy refusal) | 5.3 | delivery refused: scheduling with this recipient is not allowed |
//! | `failed` with any other `5.x.x`, or no code | 5.2 | no way to deliver: permanent, do not resend |
//! | `failed` with `4.x.x` (e.g. 4.4.7, given up after queueing too long) | 5.1 | could not complete delivery; may be sent again later |
//!
//! A permanent SMTP refusal at submission (the reply goes to the dead letters) is a `failed`
//! with the code found in the server's answer.
//!
//! # Matching, and what is never done
//!
//! Every queued message has an entry in the store's sent-reply index (our deterministic
//! Message-ID → object UID, instance, recipient, property), written in the transaction that
//! queues it. A DSN is matched through the returned message's Message-ID (`message/rfc822`
//! or `text/rfc822-headers`), an `Original-Message-ID` field, or its own In-Reply-To and
//! References. A DSN is never answered and the calendar data inside the returned message is
//! never acted on; a DSN about a message the index does not know changes nothing.
//!
//! # Concurrency
//!
//! The outbox worker writes the status of a dead letter only if the stored object is still
//! the one it read (else it reads again). The mailbox task's commits do not check this way:
//! if a message about the same UID is processed in the very moment its earlier reply is
//! refused, that commit's version of the object wins and the status is lost (the dead letter
//! and the log still say what happened).

use crate::calendar::{self, CalAddress};
use crate::itip::object::{self, Doc};
use crate::mail::DeliveryReport;
use crate::mail::dsn::RecipientStatus;
use crate::store::{
    ObjectUpdate, ObjectWrite, OutboxItem, Recipient, SentReply, Store, StoreError, StoredObject,
};
use calcard::icalendar::{ICalendarParameterName, ICalendarProperty};

/// A `SCHEDULE-STATUS` value and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleStatus {
    /// The RFC 6638 status code, e.g. `3.7`.
    pub code: &'static str,
    /// What it means, for the ledger and the log.
    pub meaning: &'static str,
}

/// The first RFC 3463 enhanced status code (`2.0.0`, `4.4.7`, `5.1.1`, ...) in `text`.
pub fn enhanced_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    for (start, first) in bytes.iter().enumerate() {
        if !matches!(first, b'2' | b'4' | b'5') {
            continue;
        }
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'.') {
            continue;
        }
        let mut at = start + 1;
        if bytes.get(at) != Some(&b'.') {
            continue;
        }
        let subject = digits(at + 1);
        if !(1..=3).contains(&subject) {
            continue;
        }
        at += 1 + subject;
        if bytes.get(at) != Some(&b'.') {
            continue;
        }
        let detail = digits(at + 1);
        if !(1..=3).contains(&detail) {
            continue;
        }
        let end = at + 1 + detail;
        if bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.')
        {
            continue;
        }
        return Some(text[start..end].to_string());
    }
    None
}

/// The `SCHEDULE-STATUS` for a DSN `action` and enhanced `status` (see the module's table).
pub fn schedule_status(action: Option<&str>, status: Option<&str>) -> ScheduleStatus {
    let class_subject = status.map(|s| {
        let mut parts = s.split('.');
        (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        )
    });
    match action.map(str::to_ascii_lowercase).as_deref() {
        Some("delivered") => ScheduleStatus {
            code: "1.2",
            meaning: "delivered",
        },
        Some("relayed" | "expanded") => ScheduleStatus {
            code: "1.1",
            meaning: "sent; delivery not confirmed",
        },
        Some("delayed") => ScheduleStatus {
            code: "1.0",
            meaning: "pending: the mail system is still trying to deliver it",
        },
        _ => match class_subject
            .as_ref()
            .map(|(c, s)| (c.as_str(), s.as_str()))
        {
            Some(("4", _)) => ScheduleStatus {
                code: "5.1",
                meaning: "could not complete delivery; it may be sent again later",
            },
            Some(("5", "1")) => ScheduleStatus {
                code: "3.7",
                meaning: "the recipient is not a valid calendar user address",
            },
            Some(("5", "7")) => ScheduleStatus {
                code: "5.3",
                meaning: "delivery refused: scheduling with this recipient is not allowed",
            },
            _ => ScheduleStatus {
                code: "5.2",
                meaning: "no way to deliver it: a permanent failure",
            },
        },
    }
}

/// The sent-reply index entry for one message we queue: which property of the object names
/// its recipient follows from the method (an attendee's REPLY, COUNTER and REFRESH go to the
/// ORGANIZER; everything else is the organiser writing to an ATTENDEE).
pub fn sent_reply(
    mailbox: &str,
    message_id: &str,
    outgoing: &crate::itip::Outgoing,
    queued_at: &str,
) -> SentReply {
    let method = outgoing.method.to_string();
    let property = match method.as_str() {
        "REPLY" | "COUNTER" | "REFRESH" => Recipient::Organizer,
        _ => Recipient::Attendee,
    };
    SentReply {
        message_id: message_id.to_string(),
        mailbox: mailbox.to_string(),
        uid: outgoing.uid.clone(),
        recurrence_id: outgoing.recurrence_id.clone(),
        recipient: outgoing.to.email().to_string(),
        property,
        method,
        queued_at: queued_at.to_string(),
    }
}

/// `object` with `SCHEDULE-STATUS=code` on the property that names `sent.recipient`, in the
/// components `sent` was about (the instance's override, else every component); `None` when
/// the object does not name the recipient there (any more).
pub fn with_schedule_status(
    object: &StoredObject,
    sent: &SentReply,
    code: &str,
) -> Option<StoredObject> {
    let ical = calendar::parse(&object.ical).ok()?.into_iter().next()?;
    let mut doc = Doc::from_ical(&ical);
    let recipient = CalAddress::parse(&sent.recipient)?;
    let items = doc.items();
    let of_instance: Vec<usize> = match &sent.recurrence_id {
        Some(rid) => items
            .iter()
            .copied()
            .filter(|i| {
                object::text(&doc.nodes[*i].comp, &ICalendarProperty::RecurrenceId).as_deref()
                    == Some(rid.as_str())
            })
            .collect(),
        None => Vec::new(),
    };
    let targets = if of_instance.is_empty() {
        items
    } else {
        of_instance
    };
    let mut changed = false;
    for index in targets {
        let comp = &mut doc.nodes[index].comp;
        let at = match sent.property {
            Recipient::Organizer => comp.entries.iter().position(|e| {
                e.name == ICalendarProperty::Organizer
                    && object::address(e).as_ref() == Some(&recipient)
            }),
            Recipient::Attendee => object::attendee_index(comp, &recipient),
        };
        if let Some(at) = at {
            object::set_param(
                &mut comp.entries[at],
                ICalendarParameterName::ScheduleStatus,
                code,
            );
            changed = true;
        }
    }
    changed.then(|| StoredObject {
        ical: calendar::write(&doc.to_ical()),
        ..object.clone()
    })
}

/// The recipient group of `report` that is about `sent`: the one naming its recipient, else
/// the first that failed, else the first.
pub fn recipient_status<'a>(
    report: &'a DeliveryReport,
    sent: &SentReply,
) -> Option<&'a RecipientStatus> {
    let names = |r: &RecipientStatus| {
        [&r.final_recipient, &r.original_recipient]
            .into_iter()
            .flatten()
            .any(|a| CalAddress::parse(a).is_some_and(|a| a.email() == sent.recipient))
    };
    report
        .recipients
        .iter()
        .find(|r| names(r))
        .or_else(|| {
            report
                .recipients
                .iter()
                .find(|r| r.action.as_deref() == Some("failed"))
        })
        .or_else(|| report.recipients.first())
}

/// How often a dead letter's status write is tried again when the mailbox task changed the
/// object in between.
const WRITE_ATTEMPTS: usize = 5;

/// Moves an outbox item the server refused for good to the dead letters and records the
/// refusal as `SCHEDULE-STATUS` on the object it was about, in one transaction. Returns what
/// was recorded (`None` when there is nothing to record it on: no sent-reply index entry, no
/// stored object, or the object no longer names the recipient).
pub async fn dead_letter(
    store: &Store,
    item: &OutboxItem,
    reason: &str,
) -> Result<Option<(SentReply, ScheduleStatus)>, StoreError> {
    let smtp_status = enhanced_status(reason);
    let status = schedule_status(Some("failed"), smtp_status.as_deref());
    for _ in 0..WRITE_ATTEMPTS {
        let Some(sent) = store.sent_reply(&item.mailbox, &item.message_id)? else {
            break;
        };
        let Some(before) = store.object(&sent.mailbox, &sent.uid)? else {
            break;
        };
        let Some(after) = with_schedule_status(&before, &sent, status.code) else {
            break;
        };
        let update = ObjectUpdate {
            mailbox: sent.mailbox.clone(),
            before: before.ical,
            after,
        };
        if store.outbox_dead_with(item, reason, &update).await? == ObjectWrite::Written {
            return Ok(Some((sent, status)));
        }
    }
    store.outbox_dead(item, reason).await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_codes_are_found_in_server_answers() {
        assert_eq!(
            enhanced_status(
                "permanent error (550): 5.1.1 <nobody@example.test>: Recipient address rejected"
            )
            .as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("451 4.4.7 delivery time expired").as_deref(),
            Some("4.4.7")
        );
        assert_eq!(enhanced_status("version 15.2.1.0 and 550 only"), None);
        assert_eq!(enhanced_status("550 no code"), None);
    }

    #[test]
    fn the_mapping_follows_the_documented_table() {
        let code = |action, status| schedule_status(action, status).code;
        assert_eq!(code(Some("failed"), Some("5.1.1")), "3.7");
        assert_eq!(code(Some("failed"), Some("5.1.10")), "3.7");
        assert_eq!(code(Some("failed"), Some("5.7.1")), "5.3");
        assert_eq!(code(Some("failed"), Some("5.2.2")), "5.2");
        assert_eq!(code(Some("failed"), None), "5.2");
        assert_eq!(code(Some("failed"), Some("4.4.7")), "5.1");
        assert_eq!(code(Some("delayed"), Some("4.4.1")), "1.0");
        assert_eq!(code(Some("delivered"), Some("2.0.0")), "1.2");
        assert_eq!(code(Some("relayed"), Some("2.0.0")), "1.1");
    }
}
