//! Everything after "the raw bytes of a message arrived": extract, parse, decide, compose, and
//! commit in one store transaction. The daemon and the `process` command both call
//! [`process_message`], so what the command prints is what the daemon does.

use crate::calendar::{self, ICalendar, SchedulingView};
use crate::itip::{self, Decision, Identity, Incoming, Outcome, Outgoing};
use crate::mail::{self, Composed, ReplyMail};
use crate::policy::Policy;
use crate::store::{
    Commit, CommitResult, LedgerEntry, MessageKey, PartResult, Store, StoreError, StoredObject,
};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// The mailbox a message arrived at.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// The account address, the store's key for this mailbox.
    pub account: String,
    pub identity: Identity,
    pub policy: Policy,
}

/// One reply the pipeline queued (or, in a dry run, would queue).
#[derive(Debug, Clone)]
pub struct ReplyReport {
    pub outgoing: Outgoing,
    pub composed: Composed,
}

/// What happened to one calendar object of the message.
#[derive(Debug, Clone)]
pub struct PartReport {
    pub result: PartResult,
    pub replies: Vec<ReplyReport>,
}

/// What happened to one message.
#[derive(Debug, Clone)]
pub struct Report {
    pub message_id: Option<String>,
    pub commit: CommitResult,
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
            });
        }
    };
    let message_id = extracted.sender.message_id.clone();
    if extracted.parts.is_empty() {
        let report = result(
            0,
            None,
            None,
            Outcome::NoAction,
            "no_calendar: the message carries no calendar object".into(),
        );
        return Ok(Decided {
            message_id,
            parts: vec![report],
            objects: Vec::new(),
        });
    }
    let mut reports = Vec::new();
    // Objects changed earlier in this same message, by UID: later parts see them.
    let mut pending: HashMap<String, ICalendar> = HashMap::new();
    let mut seen = HashSet::new();
    for part in &extracted.parts {
        let calendars = match calendar::parse(&part.text) {
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
        for ical in calendars {
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
            };
            let answer = mailbox.policy.evaluate();
            let decision: Decision =
                itip::process(stored.as_ref(), &incoming, &mailbox.identity, &answer, now);
            let method = itip::effective_method(&incoming).map(|m| m.to_string());
            let mut report = result(
                part.index,
                method,
                Some(uid.clone()),
                decision.outcome,
                decision.reason.to_string(),
            );
            for outgoing in decision.replies {
                match compose(mailbox, &outgoing, &extracted.sender, now) {
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
    let objects = pending
        .into_iter()
        .map(|(uid, ical)| {
            (
                mailbox.account.clone(),
                StoredObject {
                    uid,
                    ical: calendar::write(&ical),
                },
            )
        })
        .collect();
    Ok(Decided {
        message_id,
        parts: reports,
        objects,
    })
}

fn compose(
    mailbox: &Mailbox,
    outgoing: &Outgoing,
    invitation: &mail::SenderFacts,
    now: DateTime<Utc>,
) -> Result<Composed, mail::compose::ComposeError> {
    let partstat = outgoing
        .partstat
        .as_ref()
        .map_or("NEEDS-ACTION", |p| p.as_str());
    let summary = outgoing.summary.as_deref().unwrap_or("(no title)");
    let who = mailbox
        .identity
        .name
        .clone()
        .unwrap_or_else(|| outgoing.from.email().to_string());
    let subject = mail::compose::subject_for(&outgoing.method, Some(partstat), false, summary);
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
        text: mail::compose::human_summary(&who, &action, summary, when.as_ref()),
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
            partstat,
        ),
        date: now.into(),
    })
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
    let hash = content_hash(raw);
    let Decided {
        message_id,
        parts,
        objects,
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
    let commit = Commit {
        key,
        entry: LedgerEntry {
            message_id: message_id.clone(),
            content_hash: hash,
            results: parts.iter().map(|p| p.result.clone()).collect(),
            processed_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
        objects,
        replies: parts
            .iter()
            .flat_map(|p| &p.replies)
            .map(|r| (mailbox.account.clone(), r.composed.clone()))
            .collect(),
    };
    let result = if dry_run {
        CommitResult::Applied
    } else {
        store.commit(&commit).await?
    };
    Ok(Report {
        message_id,
        commit: result,
        parts,
    })
}
