//! Everything after "the raw bytes of a message arrived": extract, parse, decide, compose, and
//! commit in one store transaction. The daemon and the `process` command both call
//! [`process_message`], so what the command prints is what the daemon does.

use crate::calendar::{self, ICalendar, Method, PartStat, SchedulingView};
use crate::itip::object::Doc;
use crate::itip::{self, Decision, Identity, Incoming, Outcome, Outgoing};
use crate::mail::{self, Composed, ReplyMail};
use crate::policy::{Automation, Policy, PolicyAnswer, Request, busy};
use crate::store::{
    BusyEntry, BusyUpdate, Checkpoint, Commit, CommitResult, InstanceOrder, LedgerEntry,
    MessageKey, PartResult, Store, StoreError, StoredObject, Tombstone,
};
use calcard::common::IanaString;
use calcard::icalendar::{ICalendarProperty, ICalendarValue};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// The largest calendar part processed (RFC 5546 §3.6.23, 3.10): real invitations, even
/// long series with many overrides and time zones, stay far below it.
pub const MAX_CALENDAR_BYTES: usize = 1024 * 1024;

/// The most calendar parts of one message processed.
pub const MAX_CALENDAR_PARTS: usize = 16;

/// The mailbox a message arrived at.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// The account address, the store's key for this mailbox.
    pub account: String,
    /// Who the mailbox is and how it behaves.
    pub identity: Identity,
    /// Its resource policy.
    pub policy: Policy,
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
    }
}

/// What [`decide`] found: the Message-ID, one report per calendar object, the objects to store.
struct Decided {
    message_id: Option<String>,
    parts: Vec<PartReport>,
    objects: Vec<(String, StoredObject)>,
    /// The busy-index updates of those objects.
    busy: Vec<BusyUpdate>,
}

/// Decides everything one message does without writing anything.
fn decide(
    store: &Store,
    mailbox: &Mailbox,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<Decided, StoreError> {
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
            });
        }
    };
    let message_id = extracted.sender.message_id.clone();
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
        });
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
    for (count, part) in own_parts.into_iter().enumerate() {
        if count >= MAX_CALENDAR_PARTS {
            reports.push(result(
                part.index,
                part.method_param.clone(),
                None,
                Outcome::Rejected,
                format!("too_many_parts: only the first {MAX_CALENDAR_PARTS} calendar parts of a message are processed"),
            ));
            break;
        }
        if part.text.len() > MAX_CALENDAR_BYTES {
            reports.push(result(
                part.index,
                part.method_param.clone(),
                None,
                Outcome::Rejected,
                format!(
                    "too_large: the calendar part holds {} bytes, more than the {MAX_CALENDAR_BYTES} accepted (REQUEST-STATUS 3.10)",
                    part.text.len()
                ),
            ));
            continue;
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
            let stored = match pending.get(&uid) {
                Some(ical) => Some(ical.clone()),
                None => match store.object(&mailbox.account, &uid)? {
                    Some(object) => calendar::parse(&object.ical)
                        .ok()
                        .and_then(|mut c| (!c.is_empty()).then(|| c.remove(0))),
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
            let answer = policy_answer(store, mailbox, &incoming, now)?;
            let decision: Decision =
                itip::process(stored.as_ref(), &incoming, &identity, &answer, now);
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
            for outgoing in decision.replies {
                match compose(mailbox, &outgoing, &answer, &extracted.sender, now) {
                    Ok(composed) => report.replies.push(ReplyReport { outgoing, composed }),
                    Err(e) => {
                        report.result.outcome = Outcome::Error;
                        report.result.reason = format!("compose_error: {e}");
                    }
                }
            }
            if report.result.outcome != Outcome::Error
                && let Some(new) = decision.store
            {
                pending.insert(uid, new);
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
    let objects = pending
        .into_iter()
        .map(|(uid, ical)| (mailbox.account.clone(), stored_object(uid, &ical, now)))
        .collect();
    Ok(Decided {
        message_id,
        parts: reports,
        objects,
        busy,
    })
}

/// The stored form of an object: its text plus the ordering keys per instance and, when the
/// whole object is cancelled, its tombstone (see [`StoredObject`]).
fn stored_object(uid: String, ical: &ICalendar, now: DateTime<Utc>) -> StoredObject {
    let mut object = StoredObject::new(uid, calendar::write(ical));
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

/// Keeps the mailbox's busy index ahead of time: when its horizon is less than the policy's
/// `busy_horizon_days` away (time moved on, or the store predates the index), every stored
/// object of the mailbox is expanded again over the index window and the horizon moves, in
/// one transaction. This costs one pass over the mailbox about once a day; every other
/// message only expands the objects it changes.
pub async fn ensure_busy_horizon(
    store: &Store,
    mailbox: &Mailbox,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let horizon = mailbox.policy.index_days();
    let (_, until) = busy::window(now, horizon);
    let meta = store.busy_meta(&mailbox.account)?;
    if meta.horizon > (until - busy::LOOKBACK).timestamp() {
        return Ok(());
    }
    let me = &mailbox.identity.addresses;
    let mut updates = Vec::new();
    for (_, object) in store.objects(Some(&mailbox.account))? {
        let ical = calendar::parse(&object.ical)
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
    store
        .extend_busy(&mailbox.account, until.timestamp(), &updates)
        .await
}

/// The policy's answer for a request, from the mailbox's policy and its busy index (one
/// index query per requested instance). Messages that book nothing get the policy's plain
/// answer.
fn policy_answer(
    store: &Store,
    mailbox: &Mailbox,
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
        Ok(store
            .busy(&mailbox.account, from, to)?
            .into_iter()
            .filter(|e| e.uid != uid)
            .collect())
    };
    let request = Request {
        ical: incoming.ical,
        organizer: incoming.view.main().organizer.as_ref(),
        me: &mailbox.identity.addresses,
        sender: incoming.sender,
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

/// The reply's text with the policy's reason for a decline ("declined: conflicts with an
/// existing booking on ...") as its own paragraph.
/// The mailbox's additional response, if configured, closes every reply.
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
    let reason = answer.comment().map(str::to_string).or_else(comment);
    let mut text = match (reason, &outgoing.partstat) {
        (Some(reason), Some(PartStat::Declined)) => format!("{summary}\r\n{reason}\r\n"),
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
    process_with(store, mailbox, key, raw, now, mode).await
}

/// [`process_message`] for the daemon's fetch batches: the message's transaction is applied
/// but not flushed. The caller flushes once per batch ([`Store::flush_commits`]) before it
/// marks the batch on the IMAP server (the store's "Batched flushes" explains why this keeps
/// exactly-once).
pub async fn process_message_unflushed(
    store: &Store,
    mailbox: &Mailbox,
    key: MessageKey,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    process_with(store, mailbox, key, raw, now, Write::Unflushed).await
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
) -> Result<Report, StoreError> {
    let dry_run = mode == Write::DryRun;
    let hash = content_hash(raw);
    if !dry_run {
        ensure_busy_horizon(store, mailbox, now).await?;
    }
    let Decided {
        message_id,
        parts,
        objects,
        busy,
    } = decide(store, mailbox, raw, now)?;
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
            .flat_map(|p| &p.replies)
            .map(|r| (mailbox.account.clone(), r.composed.clone()))
            .collect(),
    };
    let result = match mode {
        Write::DryRun => CommitResult::Applied,
        Write::Flushed => store.commit(&commit).await?,
        Write::Unflushed => store.commit_unflushed(&commit)?,
    };
    Ok(Report {
        message_id,
        commit: result,
        parts,
    })
}
