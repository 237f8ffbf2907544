//! The iTIP engine (RFC 5546): a pure function from (stored object, incoming object, sender
//! facts, mailbox identity, policy answer, `now`) to (new stored object, outgoing iTIP
//! messages, outcome with its reason). It does no I/O and reads no clock.
//!
//! One entry point, [`process`], dispatches by method to a function named after it
//! (`process_request`, …), as sabre/vobject's broker does, so a reader finds the handling of
//! a method by its name.

mod build;

use crate::calendar::{CalAddress, ICalendar, Method, PartStat, SchedulingView};
use crate::mail::SenderFacts;
use crate::policy::PolicyAnswer;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The outcome vocabulary of every message (RFC 9671's idea), in the ledger, logs and CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Added,
    Updated,
    NoAction,
    Rejected,
    Error,
}

impl Outcome {
    /// The outcome's name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::NoAction => "no_action",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the engine decided what it did: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub text: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

/// Who this mailbox is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The mailbox address first, then its aliases; all of them are "me".
    pub addresses: Vec<CalAddress>,
    /// The display name used in replies ("Room 1").
    pub name: Option<String>,
}

impl Identity {
    /// Whether `address` is one of this mailbox's addresses.
    pub fn is_me(&self, address: &CalAddress) -> bool {
        self.addresses.contains(address)
    }
}

/// One incoming iTIP object.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    pub ical: &'a ICalendar,
    pub view: &'a SchedulingView,
    /// The Content-Type `method` parameter of the part it came in, if any.
    pub method_param: Option<&'a str>,
    pub sender: &'a SenderFacts,
}

/// An iTIP message the engine wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Which of this mailbox's addresses sends it (the one that was invited).
    pub from: CalAddress,
    pub to: CalAddress,
    pub to_name: Option<String>,
    pub method: Method,
    pub partstat: Option<PartStat>,
    pub recurrence_id: Option<String>,
    pub uid: String,
    pub sequence: i64,
    pub dtstamp: Option<String>,
    pub summary: Option<String>,
    pub ical: ICalendar,
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// The object to store, when the store changes.
    pub store: Option<ICalendar>,
    pub replies: Vec<Outgoing>,
}

impl Decision {
    fn no_change(outcome: Outcome, code: &'static str, text: impl Into<String>) -> Self {
        Decision {
            outcome,
            reason: Reason {
                code,
                text: text.into(),
            },
            store: None,
            replies: Vec::new(),
        }
    }
}

/// The method a message means: the body's METHOD wins over the Content-Type parameter (the
/// project's decision; the mismatch is recorded in the reason).
pub fn effective_method(incoming: &Incoming<'_>) -> Option<Method> {
    incoming
        .view
        .method
        .clone()
        .or_else(|| incoming.method_param.map(Method::parse))
}

/// Decides what one incoming iTIP object does.
pub fn process(
    stored: Option<&ICalendar>,
    incoming: &Incoming<'_>,
    identity: &Identity,
    policy: &PolicyAnswer,
    now: DateTime<Utc>,
) -> Decision {
    match effective_method(incoming) {
        Some(Method::Request) => process_request(stored, incoming, identity, policy, now),
        Some(other) => Decision::no_change(
            Outcome::Rejected,
            "unsupported_method",
            format!("METHOD:{other} is not handled yet"),
        ),
        None => Decision::no_change(
            Outcome::Rejected,
            "no_method",
            "the object carries no METHOD and the part no method parameter",
        ),
    }
}

/// The sender may act as `organizer` when the From address is the organiser or its SENT-BY.
fn sender_is(sender: &SenderFacts, who: &CalAddress, sent_by: Option<&CalAddress>) -> bool {
    let Some(from) = sender.from.as_deref().and_then(CalAddress::parse) else {
        return false;
    };
    &from == who || sent_by == Some(&from)
}

/// REQUEST received as an attendee (RFC 5546 §3.2.2).
fn process_request(
    stored: Option<&ICalendar>,
    incoming: &Incoming<'_>,
    identity: &Identity,
    policy: &PolicyAnswer,
    now: DateTime<Utc>,
) -> Decision {
    let main = incoming.view.main();
    let Some(organizer) = &main.organizer else {
        return Decision::no_change(
            Outcome::Rejected,
            "no_organizer",
            "a REQUEST must name its ORGANIZER",
        );
    };
    if !sender_is(incoming.sender, organizer, main.organizer_sent_by.as_ref()) {
        return Decision::no_change(
            Outcome::Rejected,
            "untrusted_sender",
            format!(
                "From {} is neither the ORGANIZER {} nor its SENT-BY",
                incoming.sender.from.as_deref().unwrap_or("(none)"),
                organizer.email()
            ),
        );
    }
    let Some(me) = main
        .attendees
        .iter()
        .find(|a| identity.is_me(&a.address))
        .map(|a| a.address.clone())
    else {
        return Decision::no_change(
            Outcome::Rejected,
            "not_invited",
            "none of this mailbox's addresses is an ATTENDEE",
        );
    };
    let mut outcome = Outcome::Added;
    if let Some(stored) = stored
        && let Ok(old) = SchedulingView::new(stored)
    {
        let old_main = old.main();
        let old_key = (old_main.sequence, old_main.dtstamp.clone());
        let new_key = (main.sequence, main.dtstamp.clone());
        if new_key == old_key {
            return Decision::no_change(
                Outcome::NoAction,
                "duplicate",
                format!("SEQUENCE {} and DTSTAMP already applied", main.sequence),
            );
        }
        if new_key < old_key {
            return Decision::no_change(
                Outcome::NoAction,
                "stale",
                format!(
                    "SEQUENCE {} is older than the stored SEQUENCE {}",
                    main.sequence, old_main.sequence
                ),
            );
        }
        outcome = Outcome::Updated;
    }
    let partstat = policy.partstat();
    let store = build::attendee_copy(incoming.ical, &me, &partstat);
    let reply = build::reply(incoming.ical, main, &me, &partstat, now);
    Decision {
        outcome,
        reason: Reason {
            code: policy.code(),
            text: format!("{} {}", me.email(), partstat.as_str().to_lowercase()),
        },
        store: Some(store),
        replies: vec![Outgoing {
            from: me,
            to: organizer.clone(),
            to_name: main.organizer_name.clone(),
            method: Method::Reply,
            partstat: Some(partstat),
            recurrence_id: main.recurrence_id.clone(),
            uid: incoming.view.uid.to_string(),
            sequence: main.sequence,
            dtstamp: main.dtstamp.clone(),
            summary: main.summary.clone(),
            ical: reply,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{parse, write};

    fn invite(sequence: i64, dtstamp: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n\
UID:u-1@example.test\r\nSEQUENCE:{sequence}\r\nDTSTAMP:{dtstamp}\r\nDTSTART:20270104T090000Z\r\n\
DTEND:20270104T100000Z\r\nSUMMARY:Weekly sync\r\nORGANIZER;CN=Alice:mailto:alice@example.test\r\n\
ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:alice@example.test\r\n\
ATTENDEE;CN=Room 1;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:MAILTO:Room1@example.test\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    }

    fn identity() -> Identity {
        Identity {
            addresses: vec![CalAddress::parse("room1@example.test").expect("address")],
            name: Some("Room 1".into()),
        }
    }

    fn sender(from: &str) -> SenderFacts {
        SenderFacts {
            from: Some(from.into()),
            ..SenderFacts::default()
        }
    }

    fn now() -> DateTime<Utc> {
        "2027-01-02T08:00:00Z".parse().expect("valid time")
    }

    fn run(stored: Option<&ICalendar>, text: &str, from: &str) -> Decision {
        let ical = parse(text).expect("valid").remove(0);
        let view = SchedulingView::new(&ical).expect("scheduling object");
        let sender = sender(from);
        let incoming = Incoming {
            ical: &ical,
            view: &view,
            method_param: Some("REQUEST"),
            sender: &sender,
        };
        process(stored, &incoming, &identity(), &PolicyAnswer::Accept, now())
    }

    #[test]
    fn new_request_from_organizer_is_accepted_with_one_reply() {
        let decision = run(None, &invite(0, "20270101T090000Z"), "alice@example.test");
        assert_eq!(decision.outcome, Outcome::Added);
        assert_eq!(decision.replies.len(), 1);
        let reply = &decision.replies[0];
        assert_eq!(reply.to.email(), "alice@example.test");
        let text = write(&reply.ical);
        assert!(text.contains("METHOD:REPLY\r\n"), "{text}");
        assert!(text.contains("PARTSTAT=ACCEPTED"), "{text}");
        assert!(text.contains("UID:u-1@example.test\r\n"), "{text}");
        assert!(text.contains("DTSTAMP:20270102T080000Z\r\n"), "{text}");
        assert!(
            !text.contains("alice@example.test\r\nATTENDEE"),
            "only my attendee line: {text}"
        );
        let stored = write(decision.store.as_ref().expect("stored copy"));
        assert!(
            !stored.contains("METHOD:"),
            "stored copy has no METHOD: {stored}"
        );
        assert!(stored.contains("PARTSTAT=ACCEPTED"), "{stored}");
    }

    #[test]
    fn request_from_a_stranger_is_rejected() {
        let decision = run(None, &invite(0, "20270101T090000Z"), "mallory@evil.test");
        assert_eq!(decision.outcome, Outcome::Rejected);
        assert_eq!(decision.reason.code, "untrusted_sender");
        assert!(decision.replies.is_empty());
        assert!(decision.store.is_none());
    }

    #[test]
    fn stale_request_is_ignored_and_duplicate_is_no_action() {
        let first = run(None, &invite(2, "20270101T090000Z"), "alice@example.test");
        let stored = first.store.expect("stored");
        let stale = run(
            Some(&stored),
            &invite(1, "20270101T100000Z"),
            "alice@example.test",
        );
        assert_eq!(
            (stale.outcome, stale.reason.code),
            (Outcome::NoAction, "stale")
        );
        let dup = run(
            Some(&stored),
            &invite(2, "20270101T090000Z"),
            "alice@example.test",
        );
        assert_eq!(
            (dup.outcome, dup.reason.code),
            (Outcome::NoAction, "duplicate")
        );
        let newer = run(
            Some(&stored),
            &invite(3, "20270101T080000Z"),
            "alice@example.test",
        );
        assert_eq!(newer.outcome, Outcome::Updated);
    }

    #[test]
    fn request_not_naming_this_mailbox_is_rejected() {
        let text = invite(0, "20270101T090000Z").replace("Room1@", "room9@");
        let decision = run(None, &text, "alice@example.test");
        assert_eq!(decision.reason.code, "not_invited");
    }
}
