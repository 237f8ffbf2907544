//! Everything after "the raw bytes of a message arrived": extract, parse, decide, compose, and
//! commit in one store transaction. The daemon and the `process` command both call
//! [`process_message`], so what the command prints is what the daemon does.

use crate::calendar::{self, ComponentKind, ICalendar, Method, PartStat, SchedulingView};
use crate::itip::object::Doc;
use crate::itip::{self, Decision, Identity, Incoming, Outcome, Outgoing};
use crate::limits::{LimitHit, Limits};
use crate::mail::{self, Composed, ReplyMail};
use crate::policy::privacy::{self, PrivateBookings};
use crate::policy::{Automation, Policy, PolicyAnswer, Request, busy};
use crate::smtp::delivery;
use crate::store::{
    BusyEntry, BusyUpdate, Checkpoint, Commit, CommitResult, InstanceOrder, LedgerEntry,
    MessageKey, PartResult, Store, StoreError, StoredObject, Tombstone,
};
use calcard::common::IanaString;
use calcard::icalendar::{ICalendarProperty, ICalendarValue};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// The mailbox a message arrived at.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// The account address, the store's key for this mailbox.
    pub account: String,
    /// Who the mailbox is and how it behaves.
    pub identity: Identity,
    /// Its resource policy.
    pub policy: Policy,
    /// What one message may cost (`[limits]`).
    pub limits: Limits,
}

/// Where a message was found: mail that came to the mailbox, or the mailbox's own Sent
/// folder (how it learns the invitations it sent itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// A folder that receives mail (INBOX by default).
    #[default]
    Incoming,
    /// The mailbox's Sent folder: everything there was sent BY this mailbox, so nothing in
    /// it is ever answered, whatever the engine would say about it (an invitation sent from
    /// an address missing from `aliases` that lists the mailbox as an attendee would
    /// otherwise be answered with a REPLY to the mailbox itself).
    Sent,
}

/// One reply the pipeline queued (or, in a dry run, would queue).
#[derive(Debug, Clone)]
pub struct ReplyReport {
    /// What the engine decided to send.
    pub outgoing: Outgoing,
    /// The message as composed for SMTP.
    pub composed: Composed,
}

/// What happened to one calendar object of the message.
#[derive(Debug, Clone)]
pub struct PartReport {
    /// The outcome recorded in the ledger.
    pub result: PartResult,
    /// The replies it queued.
    pub replies: Vec<ReplyReport>,
    /// The notices to the mailbox's delegates it queued (a request held for them).
    pub notices: Vec<Composed>,
}

/// What happened to one message.
#[derive(Debug, Clone)]
pub struct Report {
    /// The message's Message-ID, if it has one.
    pub message_id: Option<String>,
    /// Whether the store changed (a message already in the ledger changes nothing).
    pub commit: CommitResult,
    /// One report per calendar object acted on.
    pub parts: Vec<PartReport>,
}

/// SHA-256 of the raw message, hex: with the Message-ID, the ledger's second key.
pub fn content_hash(raw: &[u8]) -> String {
    Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn result(
    part: usize,
    method: Option<String>,
    uid: Option<String>,
    outcome: Outcome,
    reason: String,
) -> PartReport {
    PartReport {
        result: PartResult {
            part,
            method,
            uid,
            outcome,
            reason,
        },
        replies: Vec::new(),
        notices: Vec::new(),
    }
}

/// What [`decide`] found: the Message-ID, one report per calendar object, the objects to store.
struct Decided {
    message_id: Option<String>,
    parts: Vec<PartReport>,
    objects: Vec<(String, StoredObject)>,
    /// The busy-index updates of those objects.
    busy: Vec<BusyUpdate>,
    /// The rate-limit subjects to count once the message is committed.
    counted: Vec<String>,
}

/// Decides everything one message does without writing anything.
fn decide(
    store: &Store,
    mailbox: &Mailbox,
    source: &BusySource,
    raw: &[u8],
    now: DateTime<Utc>,
    origin: Origin,
) -> Result<Decided, StoreError> {
    let refused = |message_id: Option<String>, reason: String| Decided {
        message_id,
        parts: vec![result(0, None, None, Outcome::Rejected, reason)],
        objects: Vec::new(),
        busy: Vec::new(),
        counted: Vec::new(),
    };
    if let Err(hit) = mailbox.limits.check_message(raw) {
        // Too big to be read at all: only its Message-ID, for the ledger.
        let message_id = mail::extract(&raw[..raw.len().min(64 * 1024)])
            .ok()
            .and_then(|e| e.sender.message_id);
        return Ok(refused(message_id, hit.to_string()));
    }
    let extracted = match mail::extract(raw) {
        Ok(extracted) => extracted,
        Err(e) => {
            let report = result(
                0,
                None,
                None,
                Outcome::Rejected,
                format!("not_a_message: {e}"),
            );
            return Ok(Decided {
                message_id: None,
                parts: vec![report],
                objects: Vec::new(),
                busy: Vec::new(),
                counted: Vec::new(),
            });
        }
    };
    let message_id = extracted.sender.message_id.clone();
    // A delivery report is never answered and its calendar parts (our own returned reply)
    // are never acted on: it is only recorded on the object our message was about.
    if let Some(report) = &extracted.delivery_report {
        let (part, object) = delivery_report(store, mailbox, &extracted.sender, report)?;
        return Ok(Decided {
            message_id,
            parts: vec![part],
            objects: object.into_iter().collect(),
            busy: Vec::new(),
            counted: Vec::new(),
        });
    }
    // A calendar inside a forwarded message is not the sender's own invitation: acting on it
    // would let anyone replay somebody else's request. Duplicate parts are processed once.
    let own_parts: Vec<&mail::CalendarPart> = extracted
        .distinct_parts()
        .filter(|p| p.forwarded.is_none())
        .collect();
    if own_parts.is_empty() {
        let text = if extracted.parts.is_empty() {
            "no_calendar: the message carries no calendar object"
        } else {
            "no_calendar: the only calendar objects are inside a forwarded message, which is not the sender's own"
        };
        let report = result(0, None, None, Outcome::NoAction, text.into());
        return Ok(Decided {
            message_id,
            parts: vec![report],
            objects: Vec::new(),
            busy: Vec::new(),
            counted: Vec::new(),
        });
    }
    // A mailbox that acts only on authenticated mail refuses everything else before the
    // engine sees it, whatever the method: a forged CANCEL or REPLY changes nothing, and a
    // forged REQUEST draws no answer (a decline would be backscatter to whoever was forged).
    if mailbox.policy.require_authenticated
        && !crate::policy::rules::authenticated(&mailbox.policy, &extracted.sender)
    {
        let servers = if mailbox.policy.trusted_authserv_ids.is_empty() {
            "no trusted authserv-id is configured".to_string()
        } else {
            format!(
                "no Authentication-Results header of {} says dmarc=pass for the From domain (or auth=pass)",
                mailbox.policy.trusted_authserv_ids.join(", ")
            )
        };
        return Ok(refused(
            message_id,
            format!("unauthenticated: this mailbox acts only on authenticated mail, and {servers}"),
        ));
    }
    // A mailbox under manual automation stores requests for a person and answers nothing.
    let mut identity = mailbox.identity.clone();
    if mailbox.policy.automation == Automation::Manual {
        identity.settings.reply = itip::ReplyMode::Never;
    }
    let mut reports = Vec::new();
    // Objects changed earlier in this same message, by UID: later parts see them.
    let mut pending: HashMap<String, ICalendar> = HashMap::new();
    let mut seen = HashSet::new();
    let limits = &mailbox.limits;
    let mut objects_seen = 0usize;
    // The rate-limit subjects this message's replies count against (see `rate_record`).
    let mut counted: Vec<String> = Vec::new();
    for (count, part) in own_parts.into_iter().enumerate() {
        if count >= limits.max_calendar_parts {
            reports.push(result(
                part.index,
                part.method_param.clone(),
                None,
                Outcome::Rejected,
                format!(
                    "too_many_calendar_parts: only the first {} calendar parts of a message are processed ([limits] max_calendar_parts)",
                    limits.max_calendar_parts
                ),
            ));
            break;
        }
        match limits.check_calendar_text(&part.text, objects_seen) {
            Ok(total) => objects_seen = total,
            Err(hit) => {
                reports.push(result(
                    part.index,
                    part.method_param.clone(),
                    None,
                    Outcome::Rejected,
                    hit.to_string(),
                ));
                // Objects beyond the message's limit are refused in every later part too.
                if hit.code == "too_many_objects" {
                    break;
                }
                continue;
            }
        }
        let calendars = match calendar::parse_any(part.text.as_bytes()) {
            Ok(calendars) => calendars,
            Err(e) => {
                reports.push(result(
                    part.index,
                    part.method_param.clone(),
                    None,
                    Outcome::Error,
                    format!("parse_error: {e}"),
                ));
                continue;
            }
        };
        if calendars.len() > 1 {
            // RFC 5546 §3.1: one iTIP message is one VCALENDAR (checklist #9).
            reports.push(result(
                part.index,
                part.method_param.clone(),
                None,
                Outcome::Rejected,
                format!(
                    "several_calendars: the part holds {} VCALENDAR objects; an iTIP part must hold exactly one",
                    calendars.len()
                ),
            ));
            continue;
        }
        for ical in calendars.iter().flat_map(split_publish) {
            let view = match SchedulingView::new(&ical) {
                Ok(view) => view,
                Err(e) => {
                    reports.push(result(
                        part.index,
                        part.method_param.clone(),
                        None,
                        Outcome::Rejected,
                        format!("invalid_object: {e}"),
                    ));
                    continue;
                }
            };
            let main = view.main();
            let identity_key = (
                view.uid.to_string(),
                main.recurrence_id.clone(),
                main.sequence,
                main.dtstamp.clone(),
                view.method.clone(),
            );
            if !seen.insert(identity_key) {
                // The same object twice (Gmail's inline part and invite.ics): processed once.
                continue;
            }
            let uid = view.uid.to_string();
            if let Err(hit) = limits.check_recurrence(&ical, now) {
                reports.push(result(
                    part.index,
                    part.method_param.clone(),
                    Some(uid),
                    Outcome::Rejected,
                    hit.to_string(),
                ));
                continue;
            }
            let stored = match pending.get(&uid) {
                Some(ical) => Some(ical.clone()),
                // The engine works on the original when the privacy rules kept one: the
                // scrubbed copy is what viewers see.
                None => match store.object(&mailbox.account, &uid)? {
                    Some(object) => {
                        calendar::parse(object.original.as_ref().unwrap_or(&object.ical))
                            .ok()
                            .and_then(|mut c| (!c.is_empty()).then(|| c.remove(0)))
                    }
                    None => None,
                },
            };
            let incoming = Incoming {
                ical: &ical,
                view: &view,
                method_param: part.method_param.as_deref(),
                sender: &extracted.sender,
                vcalendar: is_vcalendar_part(part),
            };
            let (answer, mut decision) = if view.kind == ComponentKind::FreeBusy {
                let decision = freebusy_decision(store, mailbox, &identity, &incoming, now)?;
                (mailbox.policy.evaluate(), decision)
            } else {
                let answer = policy_answer(store, mailbox, source, &incoming, now)?;
                let decision: Decision =
                    itip::process(stored.as_ref(), &incoming, &identity, &answer, now);
                (answer, decision)
            };
            let withheld = if origin == Origin::Sent {
                std::mem::take(&mut decision.replies)
            } else {
                Vec::new()
            };
            let subjects = match throttle(store, mailbox, &decision, &view, &counted, now)? {
                Throttle::Pass(subjects) => subjects,
                Throttle::Refuse(outcome, hit) => {
                    decision.outcome = outcome;
                    decision.reason = itip::Reason {
                        code: hit.code,
                        text: hit.text,
                    };
                    decision.store = None;
                    decision.replies.clear();
                    Vec::new()
                }
            };
            let method = decision
                .method
                .as_ref()
                .or(itip::effective_method(&incoming).as_ref())
                .map(|m| m.to_string())
                .or_else(|| part.method_param.clone());
            let mut report = result(
                part.index,
                method,
                Some(uid.clone()),
                decision.outcome,
                decision.reason.to_string(),
            );
            if !withheld.is_empty() {
                let to: Vec<&str> = withheld.iter().map(|o| o.to.email()).collect();
                report.result.reason.push_str(&format!(
                    "; not answered: the message is this mailbox's own, from its Sent folder (withheld: {} to {}; if that is one of this mailbox's addresses, list it in `aliases`)",
                    withheld[0].method,
                    to.join(", ")
                ));
            }
            for outgoing in decision.replies {
                match compose(mailbox, &outgoing, &answer, &extracted.sender, now) {
                    Ok(composed) => report.replies.push(ReplyReport { outgoing, composed }),
                    Err(e) => {
                        report.result.outcome = Outcome::Error;
                        report.result.reason = format!("compose_error: {e}");
                    }
                }
            }
            // A request answered TENTATIVE for a person (held for a delegate, or automation
            // `tentative`) is brought to the delegates' attention once, when decided.
            let held = match &answer {
                PolicyAnswer::Held { reason, .. } => Some(reason.as_str()),
                PolicyAnswer::Tentative => Some(
                    "tentative: this resource answers requests in policy TENTATIVE for a person to confirm",
                ),
                _ => None,
            };
            if let Some(reason) = held
                && report.result.outcome != Outcome::Error
                && report.result.reason.starts_with(answer.code())
                && let Some(new) = &decision.store
            {
                for delegate in &mailbox.policy.delegates {
                    match notice(mailbox, delegate, &incoming, new, reason, now) {
                        Ok(composed) => report.notices.push(composed),
                        Err(e) => {
                            report.result.outcome = Outcome::Error;
                            report.result.reason = format!("compose_error: {e}");
                        }
                    }
                }
            }
            if report.result.outcome != Outcome::Error {
                counted.extend(subjects);
                if let Some(new) = decision.store {
                    // Privacy rules for private bookings read the organiser's CLASS, which the
                    // engine does not keep.
                    let books = matches!(
                        itip::effective_method(&incoming),
                        Some(Method::Request | Method::Add)
                    );
                    let new = if mailbox.policy.privacy.private != PrivateBookings::Keep && books {
                        privacy::adopt_organizer_class(&new, &ical)
                    } else {
                        new
                    };
                    // A series accepted beyond the booking window is booked up to its end only.
                    let new = if books {
                        mark_booked_until(&new, answer.booked_until())
                    } else {
                        new
                    };
                    pending.insert(uid, new);
                }
            }
            reports.push(report);
        }
    }
    let horizon = mailbox.policy.index_days();
    let me = &mailbox.identity.addresses;
    let busy = pending
        .iter()
        .map(|(uid, ical)| busy::update(&mailbox.account, uid, ical, me, now, horizon))
        .collect();
    let privacy = &mailbox.policy.privacy;
    let objects = pending
        .into_iter()
        .map(|(uid, ical)| {
            (
                mailbox.account.clone(),
                stored_object(uid, &ical, privacy, me, now),
            )
        })
        .collect();
    Ok(Decided {
        message_id,
        parts: reports,
        objects,
        busy,
        counted,
    })
}

/// What a delivery report changes: when it is about a message this mailbox sent (found in the
/// sent-reply index by the returned message's Message-ID, an `Original-Message-ID` field, or
/// the report's In-Reply-To / References), the status is recorded as `SCHEDULE-STATUS` on the
/// stored object ([`delivery`]); anything else is explained and left alone.
fn delivery_report(
    store: &Store,
    mailbox: &Mailbox,
    sender: &mail::SenderFacts,
    report: &mail::DeliveryReport,
) -> Result<(PartReport, Option<(String, StoredObject)>), StoreError> {
    let candidates: Vec<&String> = report
        .original_message_id
        .iter()
        .chain(&sender.in_reply_to)
        .chain(sender.references.iter().rev())
        .collect();
    let mut found = None;
    for id in &candidates {
        if let Some(sent) = store.sent_reply(&mailbox.account, id)? {
            found = Some(sent);
            break;
        }
    }
    let Some(sent) = found else {
        let about = candidates
            .first()
            .map_or("a message it does not name".to_string(), |id| {
                format!("<{id}>")
            });
        let report = result(
            0,
            None,
            None,
            Outcome::NoAction,
            format!(
                "delivery_report: a delivery report about {about}, which is not a message this mailbox sent; nothing to record, and a delivery report is never answered"
            ),
        );
        return Ok((report, None));
    };
    let recipient = delivery::recipient_status(report, &sent);
    let action = recipient.and_then(|r| r.action.as_deref());
    let status = recipient.and_then(|r| r.status.clone()).or_else(|| {
        recipient
            .and_then(|r| r.diagnostic.as_deref())
            .and_then(delivery::enhanced_status)
    });
    let schedule = delivery::schedule_status(action, status.as_deref());
    let what = if sent.method == "REPLY" {
        "reply".to_string()
    } else {
        format!("{} message", sent.method)
    };
    let mut said = format!(
        "delivery report for our {what} <{}> to {}: {} {}",
        sent.message_id,
        sent.recipient,
        action.unwrap_or("(no action given)"),
        status.as_deref().unwrap_or("(no status code)")
    );
    if let Some(diagnostic) = recipient.and_then(|r| r.diagnostic.as_deref()) {
        said.push_str(&format!(" ({diagnostic})"));
    }
    let object = store.object(&sent.mailbox, &sent.uid)?;
    let updated = object
        .as_ref()
        .and_then(|o| delivery::with_schedule_status(o, &sent, schedule.code));
    let (outcome, reason) = match updated {
        Some(_) => (
            Outcome::Updated,
            format!(
                "delivery_report: {said}; SCHEDULE-STATUS={} ({}) recorded on the {} of the stored object",
                schedule.code,
                schedule.meaning,
                sent.property.as_str()
            ),
        ),
        None if object.is_none() => (
            Outcome::NoAction,
            format!(
                "delivery_report: {said}; SCHEDULE-STATUS={} not recorded: the object is no longer stored",
                schedule.code
            ),
        ),
        None => (
            Outcome::NoAction,
            format!(
                "delivery_report: {said}; SCHEDULE-STATUS={} not recorded: the stored object no longer names {} as its {}",
                schedule.code,
                sent.recipient,
                sent.property.as_str()
            ),
        ),
    };
    let part = result(0, None, Some(sent.uid.clone()), outcome, reason);
    Ok((part, updated.map(|o| (sent.mailbox.clone(), o))))
}

/// What the rate limits say about one decision.
enum Throttle {
    /// Go ahead; its replies count against these subjects.
    Pass(Vec<String>),
    /// Nothing stored, nothing sent: the outcome and the explanation.
    Refuse(Outcome, LimitHit),
}

/// The rate limits of one decision that sends replies (`counted` holds the subjects this
/// message counted already):
///
/// - **status-poll loop**: an unchanged REQUEST of the same UID and SEQUENCE that asks for
///   this mailbox's answer again is answered `status_poll_answers_per_hour` times per hour.
///   Beyond that the organiser's server is asking in a loop (it re-sends the REQUEST on
///   every REPLY): the poll is recorded as `no_action` / `loop_suppressed` and not answered.
/// - **replies per address**: at most `max_replies_per_address_per_hour` replies go to one
///   address per hour; a message that would exceed it is `rejected` / `rate_limited`, its
///   changes are not stored and nothing is sent.
fn throttle(
    store: &Store,
    mailbox: &Mailbox,
    decision: &Decision,
    view: &SchedulingView,
    counted: &[String],
    now: DateTime<Utc>,
) -> Result<Throttle, StoreError> {
    if decision.replies.is_empty() {
        return Ok(Throttle::Pass(Vec::new()));
    }
    let limits = &mailbox.limits;
    let account = mailbox.account.as_str();
    let mut subjects = Vec::new();
    if decision.reason.code == "status_poll" {
        let poll = format!("poll:{}:{}", view.uid, view.main().sequence);
        let answered = store.rate_last_hour(account, &poll, now)?
            + counted.iter().filter(|s| **s == poll).count() as u32;
        if answered >= limits.status_poll_answers_per_hour {
            return Ok(Throttle::Refuse(
                Outcome::NoAction,
                LimitHit {
                    code: "loop_suppressed",
                    text: format!(
                        "the organiser asked for this mailbox's answer to '{}' (SEQUENCE {}) again, after {answered} answer(s) in the last hour; a server that re-sends its REQUEST on every REPLY is not answered again ([limits] status_poll_answers_per_hour)",
                        view.uid,
                        view.main().sequence
                    ),
                },
            ));
        }
        subjects.push(poll);
    }
    let limit = limits.max_replies_per_address_per_hour;
    if limit > 0 {
        for to in decision
            .replies
            .iter()
            .map(|r| r.to.email().to_ascii_lowercase())
        {
            let earlier = counted
                .iter()
                .chain(&subjects)
                .filter(|s| **s == to)
                .count() as u32;
            let sent = store.rate_last_hour(account, &to, now)? + earlier;
            if sent >= limit {
                return Ok(Throttle::Refuse(
                    Outcome::Rejected,
                    LimitHit {
                        code: "rate_limited",
                        text: format!(
                            "this mailbox sent {sent} replies to {to} in the last hour, the limit is {limit} ([limits] max_replies_per_address_per_hour); the message is not acted on"
                        ),
                    },
                ));
            }
            subjects.push(to);
        }
    }
    Ok(Throttle::Pass(subjects))
}

/// Sets (or, with `None`, removes) [`busy::BOOKED_UNTIL`] on the object's master.
fn mark_booked_until(ical: &ICalendar, until: Option<DateTime<Utc>>) -> ICalendar {
    if until.is_none() && busy::booked_until(ical).is_none() {
        return ical.clone();
    }
    let mut doc = Doc::from_ical(ical);
    if let Some(master) = doc.master() {
        let comp = &mut doc.nodes[master].comp;
        comp.entries.retain(|e| {
            !matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case(busy::BOOKED_UNTIL))
        });
        if let Some(until) = until {
            crate::itip::object::set_line(
                comp,
                &format!("{}:{}", busy::BOOKED_UNTIL, until.format("%Y%m%dT%H%M%SZ")),
            );
        }
    }
    doc.to_ical()
}

/// The stored form of an object: its text scrubbed by the mailbox's privacy rules (the
/// original beside it when they keep it), the ordering keys per instance and, when the
/// whole object is cancelled, its tombstone (see [`StoredObject`]). Scrubbing keeps every
/// ordering key, so the keys are read from the original. An object the mailbox organises
/// itself is never scrubbed: the organiser side answers REFRESH and COUNTER from its stored
/// copy, and those messages must carry the whole event (RFC 5546 §3.2.2 wants SUMMARY).
fn stored_object(
    uid: String,
    ical: &ICalendar,
    privacy: &privacy::Privacy,
    me: &[calendar::CalAddress],
    now: DateTime<Utc>,
) -> StoredObject {
    let own = SchedulingView::new(ical)
        .ok()
        .and_then(|view| view.main().organizer.clone())
        .is_some_and(|organizer| me.contains(&organizer));
    let mut object = if privacy.is_active() && !own {
        let mut object = StoredObject::new(uid, calendar::write(&privacy::scrub(ical, privacy)));
        if privacy.keep_original {
            object.original = Some(calendar::write(ical));
        }
        object
    } else {
        StoredObject::new(uid, calendar::write(ical))
    };
    if let Ok(view) = SchedulingView::new(ical) {
        let cancelled = |i: &calendar::Instance| {
            i.status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
        };
        object.instances = view
            .instances
            .iter()
            .map(|i| InstanceOrder {
                recurrence_id: i.recurrence_id.clone(),
                sequence: i.sequence,
                dtstamp: i.dtstamp.clone(),
                cancelled: cancelled(i),
            })
            .collect();
        let main = view.main();
        if main.recurrence_id.is_none() && cancelled(main) {
            object.tombstone = Some(Tombstone {
                sequence: main.sequence,
                dtstamp: main.dtstamp.clone(),
                at: Some(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
            });
        }
    }
    object
}

/// Whether a part carries vCalendar 1.0: by its type, its file name, or its VERSION line.
fn is_vcalendar_part(part: &mail::CalendarPart) -> bool {
    part.content_type == "text/x-vcalendar"
        || part
            .file_name
            .as_deref()
            .is_some_and(|n| n.to_ascii_lowercase().ends_with(".vcs"))
        || part
            .text
            .lines()
            .any(|l| l.trim().eq_ignore_ascii_case("VERSION:1.0"))
}

/// A PUBLISH may carry several UIDs (RFC 6047 §4.4): each is processed on its own. Every
/// other object is returned as it is (several UIDs there are refused by the engine's view).
fn split_publish(ical: &ICalendar) -> Vec<ICalendar> {
    let doc = Doc::from_ical(ical);
    let is_publish = SchedulingView::new(ical).is_err()
        && doc.root.iter().any(|e| {
            e.name == ICalendarProperty::Method
                && e.values
                    .first()
                    .and_then(|v| match v {
                        ICalendarValue::Method(m) => Some(m.as_str() == "PUBLISH"),
                        other => other.as_text().map(|t| t.eq_ignore_ascii_case("PUBLISH")),
                    })
                    .unwrap_or(false)
        });
    if !is_publish {
        return vec![ical.clone()];
    }
    let mut uids: Vec<String> = Vec::new();
    for index in doc.items() {
        if let Some(uid) = doc.nodes[index].comp.uid()
            && !uids.iter().any(|u| u == uid)
        {
            uids.push(uid.to_string());
        }
    }
    uids.iter()
        .map(|uid| {
            let nodes = doc
                .nodes
                .iter()
                .filter(|n| {
                    !n.comp.component_type.is_scheduling_object() || n.comp.uid() == Some(uid)
                })
                .cloned()
                .collect();
            Doc {
                root: doc.root.clone(),
                nodes,
            }
            .to_ical()
        })
        .collect()
}

/// The index updates that bring the mailbox's busy index up to its horizon, or `None` when
/// it is far enough ahead: when its horizon is less than the policy's `busy_horizon_days`
/// away (time moved on, or the store predates the index), every stored object of the
/// mailbox is expanded again over the index window. Returns the new horizon with them.
fn stale_busy(
    store: &Store,
    mailbox: &Mailbox,
    now: DateTime<Utc>,
) -> Result<Option<(i64, Vec<BusyUpdate>)>, StoreError> {
    let horizon = mailbox.policy.index_days();
    let (_, until) = busy::window(now, horizon);
    let meta = store.busy_meta(&mailbox.account)?;
    if meta.horizon > (until - busy::LOOKBACK).timestamp() {
        return Ok(None);
    }
    let me = &mailbox.identity.addresses;
    let mut updates = Vec::new();
    for (_, object) in store.objects(Some(&mailbox.account))? {
        let text = object.original.as_ref().unwrap_or(&object.ical);
        let ical = calendar::parse(text)
            .ok()
            .and_then(|mut c| (!c.is_empty()).then(|| c.remove(0)));
        updates.push(match ical {
            Some(ical) => busy::update(&mailbox.account, &object.uid, &ical, me, now, horizon),
            None => BusyUpdate {
                mailbox: mailbox.account.clone(),
                uid: object.uid.clone(),
                intervals: Vec::new(),
            },
        });
    }
    Ok(Some((until.timestamp(), updates)))
}

/// Keeps the mailbox's busy index ahead of time (see [`stale_busy`]), in one transaction.
/// This costs one pass over the mailbox about once a day; every other message only expands
/// the objects it changes.
pub async fn ensure_busy_horizon(
    store: &Store,
    mailbox: &Mailbox,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match stale_busy(store, mailbox, now)? {
        Some((until, updates)) => store.extend_busy(&mailbox.account, until, &updates).await,
        None => Ok(()),
    }
}

/// Where the policy reads busy time: the store's index, or, in a dry run whose index is
/// behind its horizon, the intervals [`ensure_busy_horizon`] would write, held in memory so
/// that a dry run answers what the real run would without writing.
enum BusySource {
    /// The store's busy index.
    Index,
    /// All of the mailbox's intervals, recomputed.
    Recomputed(Vec<BusyUpdate>),
}

impl BusySource {
    fn lookup(
        &self,
        store: &Store,
        account: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<BusyEntry>, StoreError> {
        match self {
            BusySource::Index => store.busy(account, from, to),
            BusySource::Recomputed(updates) => {
                let mut found: Vec<BusyEntry> = updates
                    .iter()
                    .flat_map(|u| {
                        u.intervals
                            .iter()
                            .filter(|i| crate::store::busy::overlaps(i, from, to))
                            .map(|i| BusyEntry {
                                uid: u.uid.clone(),
                                interval: i.clone(),
                            })
                    })
                    .collect();
                found.sort_by(|a, b| {
                    (a.interval.start, a.interval.end, &a.uid).cmp(&(
                        b.interval.start,
                        b.interval.end,
                        &b.uid,
                    ))
                });
                Ok(found)
            }
        }
    }
}

/// The answer to a VFREEBUSY ([`itip::freebusy`]), over the mailbox's busy index.
fn freebusy_decision(
    store: &Store,
    mailbox: &Mailbox,
    identity: &itip::Identity,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> Result<Decision, StoreError> {
    let index = itip::freebusy::Index {
        horizon: store.busy_meta(&mailbox.account)?.horizon,
        days: mailbox.policy.index_days(),
    };
    let periods = |from: DateTime<Utc>, to: DateTime<Utc>| {
        crate::publish::freebusy_periods(store, &mailbox.account, from, to)
    };
    let decision = itip::freebusy::process_freebusy(
        incoming,
        identity,
        &mailbox.policy,
        index,
        &periods,
        now,
    )?;
    let Some(requester) = decision.replies.first().map(|r| r.to.email().to_string()) else {
        return Ok(decision);
    };
    let allowed = FREEBUSY_ANSWERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allow(&mailbox.account, &requester, now.timestamp());
    Ok(if allowed {
        decision
    } else {
        Decision::no_change(
            Outcome::NoAction,
            "freebusy_rate_limited",
            format!(
                "{requester} already got {} free/busy answers from this mailbox in the last hour; this request is not answered",
                crate::publish::FREEBUSY_ANSWERS_PER_HOUR
            ),
        )
    })
}

/// The free/busy answers given by mail, per mailbox and requester, in this process.
static FREEBUSY_ANSWERS: std::sync::LazyLock<std::sync::Mutex<crate::publish::RateLimit>> =
    std::sync::LazyLock::new(Default::default);

/// The policy's answer for a request, from the mailbox's policy and its busy index (one
/// index query per requested instance). Messages that book nothing get the policy's plain
/// answer.
fn policy_answer(
    store: &Store,
    mailbox: &Mailbox,
    source: &BusySource,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> Result<PolicyAnswer, StoreError> {
    let books = matches!(
        itip::effective_method(incoming),
        Some(Method::Request | Method::Add) | None
    );
    if !books {
        return Ok(mailbox.policy.evaluate());
    }
    let uid = incoming.view.uid.as_str();
    let lookup = |from: i64, to: i64| -> Result<Vec<BusyEntry>, StoreError> {
        Ok(source
            .lookup(store, &mailbox.account, from, to)?
            .into_iter()
            .filter(|e| e.uid != uid)
            .collect())
    };
    let organizer_of = |uid: &str| -> Option<String> {
        let object = store.object(&mailbox.account, uid).ok()??;
        let text = object.original.as_ref().unwrap_or(&object.ical);
        let ical = calendar::parse(text).ok()?.into_iter().next()?;
        let view = SchedulingView::new(&ical).ok()?;
        let organizer = view.main().organizer.as_ref()?;
        Some(organizer.email().to_string())
    };
    let request = Request {
        ical: incoming.ical,
        organizer: incoming.view.main().organizer.as_ref(),
        me: &mailbox.identity.addresses,
        sender: incoming.sender,
        organizer_of: Some(&organizer_of),
    };
    mailbox.policy.evaluate_request(&request, &lookup, now)
}

/// Composes the message for one outgoing iTIP object. The wording comes from
/// [`mail::compose`]; the deterministic Message-ID from the decision (the PARTSTAT of a REPLY;
/// for the organiser's messages the method and the recipient, one REFRESH answer per attendee).
fn compose(
    mailbox: &Mailbox,
    outgoing: &Outgoing,
    answer: &PolicyAnswer,
    invitation: &mail::SenderFacts,
    now: DateTime<Utc>,
) -> Result<Composed, mail::compose::ComposeError> {
    let partstat = outgoing.partstat.as_ref().map(PartStat::as_str);
    let decision = match partstat {
        Some(partstat) => partstat.to_string(),
        None => format!("{}:{}", outgoing.method, outgoing.to.email()),
    };
    let summary = outgoing.summary.as_deref().unwrap_or("(no title)");
    let who = mailbox
        .identity
        .name
        .clone()
        .unwrap_or_else(|| outgoing.from.email().to_string());
    let subject = mail::compose::subject_for(&outgoing.method, partstat, false, summary);
    let action = subject
        .split_once(':')
        .map_or("replied", |(verb, _)| verb)
        .to_lowercase();
    let ical = calendar::write(&outgoing.ical);
    let when = mail::compose::When::from_ical(&ical);
    mail::compose_imip(&ReplyMail {
        from: outgoing.from.clone(),
        from_name: mailbox.identity.name.clone(),
        to: outgoing.to.clone(),
        to_name: outgoing.to_name.clone(),
        method: outgoing.method.clone(),
        subject,
        text: explained(
            mail::compose::human_summary(&who, &action, summary, when.as_ref()),
            outgoing,
            answer,
            mailbox.policy.additional_response.as_deref(),
        ),
        html: None,
        ical,
        vcalendar: None,
        in_reply_to: invitation.message_id.clone(),
        references: invitation.references.clone(),
        message_id: mail::reply_message_id(
            &outgoing.from,
            &outgoing.uid,
            outgoing.recurrence_id.as_deref(),
            outgoing.sequence,
            outgoing.dtstamp.as_deref(),
            &decision,
        ),
        date: now.into(),
    })
}

/// The notice that tells a delegate about a request held for them: who asked for what and
/// when, why it is held, and the booking (the object as stored, before privacy scrubbing:
/// the delegate decides on the whole request) attached.
fn notice(
    mailbox: &Mailbox,
    delegate: &str,
    incoming: &Incoming<'_>,
    stored: &ICalendar,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Composed, mail::compose::ComposeError> {
    let to = calendar::CalAddress::parse(delegate).ok_or_else(|| {
        mail::compose::ComposeError::Address {
            role: "delegate",
            address: delegate.to_string(),
            reason: "not an email address; fix `delegates` in the mailbox's policy".into(),
        }
    })?;
    let main = incoming.view.main();
    let summary = main.summary.as_deref().unwrap_or("(no title)");
    let organizer = main
        .organizer
        .as_ref()
        .map_or("an unknown organiser", |o| o.email());
    let resource = mailbox
        .identity
        .name
        .clone()
        .unwrap_or_else(|| mailbox.account.clone());
    let ical = calendar::write(stored);
    let when = mail::compose::When::from_ical(&ical)
        .map(|w| format!(" {}", w.describe()))
        .unwrap_or_default();
    let from = mailbox.identity.addresses.first().cloned().ok_or_else(|| {
        mail::compose::ComposeError::Address {
            role: "From",
            address: mailbox.account.clone(),
            reason: "the mailbox has no address".into(),
        }
    })?;
    let text = format!(
        "{organizer} asked to book {resource} for \"{summary}\"{when}.\r\n{reason}\r\n\r\nThe booking is held TENTATIVE in {resource}'s calendar, and the organiser was told that a delegate decides. The booking is attached.\r\n"
    );
    mail::compose::compose_notice(&mail::compose::NoticeMail {
        message_id: mail::reply_message_id(
            &from,
            incoming.view.uid.as_str(),
            main.recurrence_id.as_deref(),
            main.sequence,
            main.dtstamp.as_deref(),
            &format!("notice:{}", to.email()),
        ),
        from,
        from_name: mailbox.identity.name.clone(),
        to,
        subject: format!("Approval needed: {summary} ({resource})"),
        text,
        ical,
        date: now.into(),
    })
}

/// The reply's text with the policy's sentence as its own paragraph: the reason of a
/// decline ("declined: conflicts with an existing booking on ..."), of a hold for a
/// delegate, or the note of an acceptance (instances beyond the booking window). A declined
/// instance of an accepted series carries its own reason in its COMMENT, which wins. The
/// mailbox's additional response, if configured, closes every reply.
fn explained(
    summary: String,
    outgoing: &Outgoing,
    answer: &PolicyAnswer,
    additional: Option<&str>,
) -> String {
    // A declined instance of an accepted series carries its own reason in its COMMENT.
    let comment = || {
        outgoing
            .ical
            .components
            .iter()
            .find_map(|c| c.property(&ICalendarProperty::Comment))
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_text())
            .map(str::to_string)
    };
    let reason = comment().or_else(|| answer.comment().map(str::to_string));
    let mut text = match (reason, &outgoing.partstat) {
        (Some(reason), Some(_)) => format!("{summary}\r\n{reason}\r\n"),
        _ => summary,
    };
    if let Some(additional) = additional {
        text.push_str(&format!("\r\n{}\r\n", additional.trim_end()));
    }
    text
}

/// Processes one message that arrived at `mailbox` under the IMAP identity `key`: decides,
/// then (unless `dry_run`) commits the ledger entry, the stored objects and the queued replies
/// in one transaction. A message the ledger already holds changes nothing.
pub async fn process_message(
    store: &Store,
    mailbox: &Mailbox,
    key: MessageKey,
    raw: &[u8],
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Report, StoreError> {
    let mode = if dry_run {
        Write::DryRun
    } else {
        Write::Flushed
    };
    process_with(store, mailbox, key, raw, now, mode, Origin::Incoming).await
}

/// [`process_message`] for a message found in a folder of the given [`Origin`]: one from the
/// mailbox's Sent folder is decided and stored like any other, but never answered.
pub async fn process_message_from(
    store: &Store,
    mailbox: &Mailbox,
    key: MessageKey,
    raw: &[u8],
    now: DateTime<Utc>,
    dry_run: bool,
    origin: Origin,
) -> Result<Report, StoreError> {
    let mode = if dry_run {
        Write::DryRun
    } else {
        Write::Flushed
    };
    process_with(store, mailbox, key, raw, now, mode, origin).await
}

/// [`process_message_from`] for the daemon's fetch batches: the message's transaction is
/// applied but not flushed. The caller flushes once per batch ([`Store::flush_commits`])
/// before it marks the batch on the IMAP server (the store's "Batched flushes" explains why
/// this keeps exactly-once).
pub async fn process_message_unflushed(
    store: &Store,
    mailbox: &Mailbox,
    key: MessageKey,
    raw: &[u8],
    now: DateTime<Utc>,
    origin: Origin,
) -> Result<Report, StoreError> {
    process_with(store, mailbox, key, raw, now, Write::Unflushed, origin).await
}

/// How [`process_with`] writes its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Not at all.
    DryRun,
    /// Committed and flushed.
    Flushed,
    /// Committed; the caller flushes.
    Unflushed,
}

async fn process_with(
    store: &Store,
    mailbox: &Mailbox,
    key: MessageKey,
    raw: &[u8],
    now: DateTime<Utc>,
    mode: Write,
    origin: Origin,
) -> Result<Report, StoreError> {
    let dry_run = mode == Write::DryRun;
    let hash = content_hash(raw);
    // A dry run writes nothing, so it reads the busy time a real run would first bring up
    // to its horizon from memory.
    let source = if dry_run {
        match stale_busy(store, mailbox, now)? {
            Some((_, updates)) => BusySource::Recomputed(updates),
            None => BusySource::Index,
        }
    } else {
        ensure_busy_horizon(store, mailbox, now).await?;
        BusySource::Index
    };
    let Decided {
        message_id,
        parts,
        objects,
        busy,
        counted,
    } = decide(store, mailbox, &source, raw, now, origin)?;
    if store
        .ledger_entry(&key, message_id.as_deref(), &hash)?
        .is_some()
    {
        return Ok(Report {
            message_id,
            commit: CommitResult::AlreadyProcessed,
            parts,
        });
    }
    let checkpoint = Some(Checkpoint {
        uid_validity: key.uid_validity,
        last_uid: key.uid,
    });
    let commit = Commit {
        key,
        entry: LedgerEntry {
            message_id: message_id.clone(),
            content_hash: hash,
            results: parts.iter().map(|p| p.result.clone()).collect(),
            processed_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
        objects,
        busy,
        checkpoint,
        replies: parts
            .iter()
            .flat_map(|p| p.replies.iter().map(|r| &r.composed).chain(&p.notices))
            .map(|composed| (mailbox.account.clone(), composed.clone()))
            .collect(),
        sent: parts
            .iter()
            .flat_map(|p| &p.replies)
            .map(|r| {
                delivery::sent_reply(
                    &mailbox.account,
                    &r.composed.message_id,
                    &r.outgoing,
                    &now.to_rfc3339_opts(SecondsFormat::Secs, true),
                )
            })
            .collect(),
    };
    let result = match mode {
        Write::DryRun => CommitResult::Applied,
        Write::Flushed => store.commit(&commit).await?,
        Write::Unflushed => store.commit_unflushed(&commit)?,
    };
    if !dry_run && result == CommitResult::Applied {
        store.rate_record(&mailbox.account, &counted, now).await?;
    }
    Ok(Report {
        message_id,
        commit: result,
        parts,
    })
}
