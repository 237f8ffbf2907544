//! REPLY received by the organiser (RFC 5546 §3.2.3; RFC 6638 §4.2 "Processing Attendee
//! Replies").
//!
//! Only the replier's own parameters are applied: PARTSTAT, DELEGATED-TO, the end of RSVP,
//! CN when missing, SCHEDULE-STATUS from REQUEST-STATUS, and for a VTODO its progress
//! (PERCENT-COMPLETE, STATUS, COMPLETED). Everything else the reply carries is ignored (a
//! change must come as COUNTER). Replies are ordered per attendee and instance: the last
//! applied reply's key sits on the attendee line as `X-RECEIVED-SEQUENCE`/`-DTSTAMP`.
//!
//! A REPLY without ORGANIZER (Outlook/Exchange) is accepted when its UID names an object this
//! mailbox organises (project decision 5).

use super::object::{self, Doc, Key, Node};
use super::request::{is_instance, position};
use super::{Context, Decision, Outcome, Outgoing, Reason, build, organizer_of, trust};
use crate::calendar::{CalAddress, Method, PartStat};
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarProperty, ICalendarValue,
};
use std::collections::HashSet;

const RECEIVED_SEQUENCE: &str = "X-RECEIVED-SEQUENCE";
const RECEIVED_DTSTAMP: &str = "X-RECEIVED-DTSTAMP";

/// The key of the last reply applied for this attendee line, if any.
pub fn received_key(entry: &ICalendarEntry) -> Option<Key> {
    let sequence = object::param(entry, &object::x_param(RECEIVED_SEQUENCE))?
        .parse()
        .ok()?;
    let dtstamp = object::param(entry, &object::x_param(RECEIVED_DTSTAMP)).unwrap_or_default();
    Some(Key {
        sequence,
        dtstamp,
        last_modified: String::new(),
    })
}

/// Why a reply component was not applied; the most telling one names the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    Invalid,
    UnknownInstance,
    Cancelled,
    Duplicate,
    Stale,
    OutOfDate,
}

impl Skip {
    fn reason(self) -> (&'static str, &'static str) {
        match self {
            Skip::Invalid => (
                "invalid_reply",
                "the reply's components lack DTSTAMP or this attendee's ATTENDEE line",
            ),
            Skip::UnknownInstance => (
                "unknown_instance",
                "the reply names an instance the object does not have",
            ),
            Skip::Cancelled => (
                "cancelled",
                "the reply is for a cancelled event or instance",
            ),
            Skip::Duplicate => ("duplicate", "this reply was already applied"),
            Skip::Stale => (
                "stale",
                "a newer reply from this attendee was already applied",
            ),
            Skip::OutOfDate => (
                "stale_reply",
                "the reply answers an older SEQUENCE of the event; the attendee has not answered the current version",
            ),
        }
    }
}

/// REPLY received.
pub fn process_reply(cx: &Context<'_>) -> Decision {
    let inc = cx.incoming_doc();
    let Some(stored) = cx.stored_doc() else {
        return Decision::nothing(
            "unknown_uid",
            "a REPLY for a UID this mailbox does not hold; a REPLY never creates an object",
        );
    };
    let Some((organizer, _)) = organizer_of(&stored) else {
        return Decision::nothing(
            "not_organizer",
            "the stored object has no ORGANIZER; replies go to the organiser",
        );
    };
    if !cx.me.is_me(&organizer) {
        return Decision::nothing(
            "not_organizer",
            format!(
                "this mailbox does not organise UID {}; replies are for the organiser {}",
                cx.incoming.view.uid,
                organizer.email()
            ),
        );
    }
    if let Some((named, _)) = organizer_of(&inc)
        && named != organizer
    {
        return Decision::rejected(
            "organizer_mismatch",
            format!(
                "the REPLY names ORGANIZER {} but this mailbox organises UID {}",
                named.email(),
                cx.incoming.view.uid
            ),
        );
    }
    let authors = trust::authors(cx.incoming.sender);
    let replier = inc.items().into_iter().find_map(|i| {
        object::attendees(&inc.nodes[i].comp)
            .into_iter()
            .find_map(|(a, e)| {
                let sent_by = object::param_addresses(e, &ICalendarParameterName::SentBy);
                (authors.contains(&a) || sent_by.iter().any(|s| authors.contains(s))).then_some(a)
            })
    });
    let Some(replier) = replier else {
        return Decision::rejected(
            "untrusted_sender",
            format!(
                "From {} is none of the attendees the REPLY speaks for (nor their SENT-BY)",
                cx.from()
            ),
        );
    };
    if cx.me.is_me(&replier) {
        return Decision::rejected("loop", "a REPLY from this mailbox to itself");
    }
    let members: HashSet<CalAddress> = stored
        .items()
        .into_iter()
        .flat_map(|i| {
            object::attendees(&stored.nodes[i].comp)
                .into_iter()
                .map(|(a, _)| a)
                .collect::<Vec<_>>()
        })
        .collect();
    // A delegate is one whose DELEGATED-FROM names a stored attendee. It is admitted once that
    // delegator's own REPLY (DELEGATED-TO naming it) is stored; before that its answer is held
    // back, since anyone can claim to be a delegate (RFC 5546 §5.2.2 allows holding it).
    let claimed_delegators: Vec<CalAddress> = inc
        .items()
        .into_iter()
        .flat_map(|i| {
            let comp = &inc.nodes[i].comp;
            object::attendee_index(comp, &replier)
                .map(|at| {
                    object::param_addresses(
                        &comp.entries[at],
                        &ICalendarParameterName::DelegatedFrom,
                    )
                })
                .unwrap_or_default()
        })
        .filter(|d| members.contains(d))
        .collect();
    if !members.contains(&replier) {
        if claimed_delegators.is_empty() {
            return Decision::rejected(
                "party_crasher",
                format!(
                    "{} is not an attendee of UID {} and was not delegated by one",
                    replier.email(),
                    cx.incoming.view.uid
                ),
            );
        }
        let confirmed = stored.items().into_iter().any(|i| {
            object::attendees(&stored.nodes[i].comp)
                .into_iter()
                .any(|(a, e)| {
                    claimed_delegators.contains(&a)
                        && object::param_addresses(e, &ICalendarParameterName::DelegatedTo)
                            .contains(&replier)
                })
        });
        if !confirmed {
            return Decision::nothing(
                "delegation_unconfirmed",
                format!(
                    "{} answers as a delegate of {}, whose REPLY delegating to it has not arrived; the answer is not applied until it does",
                    replier.email(),
                    claimed_delegators[0].email()
                ),
            );
        }
    }
    let zones = cx.zones();
    let mut doc = stored.clone();
    let mut applied: Vec<String> = Vec::new();
    let mut skips: Vec<Skip> = Vec::new();
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        let Some(line_at) = object::attendee_index(comp, &replier) else {
            continue;
        };
        if !object::has(comp, &ICalendarProperty::Dtstamp) {
            skips.push(Skip::Invalid);
            continue;
        }
        let target = match zones.rid(comp) {
            None => doc.master(),
            Some(rid) => match position(&doc, &rid, &zones) {
                Some(at) => Some(at),
                None => match doc.master() {
                    Some(m)
                        if object::is_recurring(&doc.nodes[m].comp)
                            && is_instance(&doc, &rid, &zones) =>
                    {
                        zones
                            .instance_override(&doc.nodes[m].comp, &rid)
                            .map(|mut c| {
                                // The new instance has received no reply of its own yet.
                                for entry in &mut c.entries {
                                    object::remove_param(
                                        entry,
                                        &object::x_param(RECEIVED_SEQUENCE),
                                    );
                                    object::remove_param(entry, &object::x_param(RECEIVED_DTSTAMP));
                                }
                                doc.nodes.push(Node {
                                    comp: c,
                                    children: Vec::new(),
                                });
                                doc.nodes.len() - 1
                            })
                    }
                    _ => None,
                },
            },
        };
        let Some(target) = target else {
            skips.push(Skip::UnknownInstance);
            continue;
        };
        match apply(
            &mut doc.nodes[target].comp,
            comp,
            &comp.entries[line_at],
            &replier,
        ) {
            Ok(partstat) => applied.push(format!(
                "{} {}{}",
                replier.email(),
                partstat.as_str().to_lowercase(),
                object::text(comp, &ICalendarProperty::RecurrenceId)
                    .map(|r| format!(" for {r}"))
                    .unwrap_or_default()
            )),
            Err(skip) => skips.push(skip),
        }
    }
    if applied.is_empty() {
        let skip = skips.into_iter().max().unwrap_or(Skip::Invalid);
        let (code, text) = skip.reason();
        let mut decision = Decision::nothing(code, text);
        if skip == Skip::OutOfDate {
            // RFC 5546 §5.2.2: an answer to an old version is treated like a REFRESH, so the
            // attendee gets the current version to answer.
            decision
                .replies
                .push(current_version(cx, &stored, &organizer, &replier));
        }
        return decision;
    }
    let doc: Doc = doc;
    Decision {
        method: None,
        outcome: Outcome::Updated,
        reason: Reason {
            code: "reply_applied",
            text: applied.join("; "),
        },
        store: Some(doc.to_ical()),
        replies: Vec::new(),
    }
}

/// The current version of the object as a REQUEST to one attendee.
fn current_version(
    cx: &Context<'_>,
    stored: &Doc,
    organizer: &CalAddress,
    to: &CalAddress,
) -> Outgoing {
    let zones = cx.zones();
    let master = stored.master().or_else(|| stored.items().first().copied());
    let comp = master.map(|m| &stored.nodes[m].comp);
    Outgoing {
        from: organizer.clone(),
        to: to.clone(),
        to_name: None,
        method: Method::Request,
        partstat: None,
        recurrence_id: None,
        uid: cx.incoming.view.uid.to_string(),
        sequence: comp.map(object::sequence).unwrap_or(0),
        dtstamp: cx.incoming.view.main().dtstamp.clone(),
        summary: comp.and_then(|c| object::text(c, &ICalendarProperty::Summary)),
        ical: build::request_copy(stored, None, &zones, cx.now),
    }
}

/// The PARTSTAT a reply sets: the values RFC 5545 §3.2.12 defines for the component, anything
/// else read as NEEDS-ACTION.
fn admissible(partstat: PartStat, comp: &ICalendarComponent) -> PartStat {
    let todo = comp.component_type == ICalendarComponentType::VTodo;
    match partstat {
        PartStat::Completed | PartStat::InProcess if todo => partstat,
        PartStat::Completed | PartStat::InProcess | PartStat::Other(_) => PartStat::NeedsAction,
        other => other,
    }
}

/// The SCHEDULE-STATUS a reply's REQUEST-STATUS lines give ("2.0,2.4"); 2.0 when none.
fn schedule_status(reply: &ICalendarComponent) -> String {
    let codes: Vec<String> = reply
        .properties(&ICalendarProperty::RequestStatus)
        .filter_map(|e| e.values.first())
        .filter_map(|v| match v {
            ICalendarValue::Text(t) => Some(t.clone()),
            ICalendarValue::Float(f) => Some(format!("{f:.1}")),
            _ => None,
        })
        .collect();
    if codes.is_empty() {
        "2.0".to_string()
    } else {
        codes.join(",")
    }
}

/// Applies one reply component to the organiser's component.
fn apply(
    target: &mut ICalendarComponent,
    reply: &ICalendarComponent,
    line: &ICalendarEntry,
    replier: &CalAddress,
) -> Result<PartStat, Skip> {
    if object::is_cancelled(target) {
        return Err(Skip::Cancelled);
    }
    let key = Key::of_reply(reply);
    let at = match object::attendee_index(target, replier) {
        Some(at) => at,
        None => {
            // A delegate answering before its delegator (RFC 5546 §5.2.2): accepted at once.
            let mut entry = line.clone();
            entry.params.retain(|p| {
                matches!(
                    p.name,
                    ICalendarParameterName::Cn
                        | ICalendarParameterName::DelegatedFrom
                        | ICalendarParameterName::Role
                        | ICalendarParameterName::Cutype
                )
            });
            target.entries.push(entry);
            target.entries.len() - 1
        }
    };
    if let Some(previous) = received_key(&target.entries[at]) {
        match object::order(&key, &previous) {
            object::Order::Same => return Err(Skip::Duplicate),
            object::Order::Older => return Err(Skip::Stale),
            object::Order::Newer => {}
        }
    }
    if key.sequence < object::sequence(target) {
        return Err(Skip::OutOfDate);
    }
    let error_reply = object::param(line, &ICalendarParameterName::Partstat).is_none();
    let partstat = object::param(line, &ICalendarParameterName::Partstat)
        .map(|p| admissible(PartStat::parse(&p), target));
    let entry = &mut target.entries[at];
    if let Some(partstat) = &partstat {
        build::set_partstat(entry, partstat);
    }
    object::remove_param(entry, &ICalendarParameterName::Rsvp);
    object::set_param(
        entry,
        ICalendarParameterName::ScheduleStatus,
        &schedule_status(reply),
    );
    object::remove_param(entry, &ICalendarParameterName::DelegatedTo);
    entry.params.extend(
        line.params
            .iter()
            .filter(|p| p.name == ICalendarParameterName::DelegatedTo)
            .cloned(),
    );
    if object::param(entry, &ICalendarParameterName::Cn).is_none()
        && let Some(cn) = line
            .params
            .iter()
            .find(|p| p.name == ICalendarParameterName::Cn)
    {
        entry.params.push(cn.clone());
    }
    object::set_param(
        entry,
        object::x_param(RECEIVED_SEQUENCE),
        &key.sequence.to_string(),
    );
    object::set_param(entry, object::x_param(RECEIVED_DTSTAMP), &key.dtstamp);
    if !error_reply && target.component_type == ICalendarComponentType::VTodo {
        for name in [
            ICalendarProperty::PercentComplete,
            ICalendarProperty::Status,
            ICalendarProperty::Completed,
        ] {
            if let Some(value) = reply.property(&name) {
                object::set(&mut target.entries, value.clone());
            }
        }
    }
    // Delegation (RFC 5546 §3.2.2.3): the delegates this attendee named join the object.
    for (delegate, line) in object::attendees(reply) {
        let from = object::param_addresses(line, &ICalendarParameterName::DelegatedFrom);
        if &delegate == replier
            || !from.contains(replier)
            || object::attendee_index(target, &delegate).is_some()
        {
            continue;
        }
        let mut entry = line.clone();
        entry.params.retain(|p| {
            !matches!(
                p.name,
                ICalendarParameterName::Partstat | ICalendarParameterName::ScheduleStatus
            )
        });
        entry
            .params
            .push(build::partstat_param(&PartStat::NeedsAction));
        target.entries.push(entry);
    }
    Ok(partstat.unwrap_or(PartStat::NeedsAction))
}
