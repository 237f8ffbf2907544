//! COUNTER received by the organiser (RFC 5546 §3.2.7): an attendee proposes a change. The
//! event does not change; the proposal is recorded on the component it is about as an
//! `X-IMIPD-COUNTER` property (who, when, what), for a person to decide. When the mailbox's
//! settings say so, the proposal is refused at once with a DECLINECOUNTER (§3.2.8).

use super::object::{self, Node};
use super::request::{is_instance, position};
use super::{Context, Decision, Outcome, Outgoing, Reason, build, organizer_of, trust};
use crate::calendar::Method;
use calcard::icalendar::{ICalendarParameterName, ICalendarProperty};

/// The property that records a counter-proposal.
pub const COUNTER_PROPERTY: &str = "X-IMIPD-COUNTER";

/// The properties of a proposal worth recording.
const PROPOSED: [ICalendarProperty; 6] = [
    ICalendarProperty::Dtstart,
    ICalendarProperty::Dtend,
    ICalendarProperty::Duration,
    ICalendarProperty::Location,
    ICalendarProperty::Summary,
    ICalendarProperty::Comment,
];

/// COUNTER received.
pub fn process_counter(cx: &Context<'_>) -> Decision {
    let Some(stored) = cx.stored_doc() else {
        return Decision::nothing(
            "unknown_uid",
            "COUNTER for a UID this mailbox does not hold",
        );
    };
    let Some((organizer, _)) = organizer_of(&stored) else {
        return Decision::nothing("not_organizer", "the stored object has no ORGANIZER");
    };
    if !cx.me.is_me(&organizer) {
        return Decision::nothing(
            "not_organizer",
            "this mailbox does not organise the object; a COUNTER is for the organiser",
        );
    }
    let inc = cx.incoming_doc();
    let authors = trust::authors(cx.incoming.sender);
    let members: Vec<_> = stored
        .items()
        .into_iter()
        .flat_map(|i| {
            object::attendees(&stored.nodes[i].comp)
                .into_iter()
                .map(|(a, e)| (a, e.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let Some((attendee, attendee_line)) = members.into_iter().find(|(a, _)| authors.contains(a))
    else {
        return Decision::rejected(
            "not_an_attendee",
            format!(
                "From {} is not an attendee of the stored object; a COUNTER is refused",
                cx.from()
            ),
        );
    };
    let zones = cx.zones();
    let mut doc = stored.clone();
    let mut replies = Vec::new();
    let mut recorded = 0;
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        let rid = zones.rid(comp);
        let target = match &rid {
            None => doc.master(),
            Some(r) => position(&doc, r, &zones).or_else(|| {
                let m = doc.master()?;
                if !is_instance(&doc, r, &zones) {
                    return None;
                }
                let c = zones.instance_override(&doc.nodes[m].comp, r)?;
                doc.nodes.push(Node {
                    comp: c,
                    children: Vec::new(),
                });
                Some(doc.nodes.len() - 1)
            }),
        };
        let Some(target) = target else {
            continue;
        };
        let stamp = object::dtstamp(comp);
        let already = doc.nodes[target]
            .comp
            .entries
            .iter()
            .filter(|e| matches!(&e.name, ICalendarProperty::Other(n) if n == COUNTER_PROPERTY))
            .any(|e| {
                object::param(e, &object::x_param("X-ATTENDEE")).as_deref() == Some(&attendee.uri())
                    && object::param(e, &object::x_param("X-DTSTAMP")).as_deref() == Some(&stamp)
            });
        if already {
            continue;
        }
        let proposal: Vec<String> = PROPOSED
            .iter()
            .filter_map(|name| object::text(comp, name).map(|v| format!("{}={v}", name.as_str())))
            .collect();
        let Some(mut entry) = object::line(&format!(
            "{COUNTER_PROPERTY}:{}",
            build::escape_text(&proposal.join("; "))
        )) else {
            continue;
        };
        object::set_param(&mut entry, object::x_param("X-ATTENDEE"), &attendee.uri());
        object::set_param(&mut entry, object::x_param("X-DTSTAMP"), &stamp);
        doc.nodes[target].comp.entries.push(entry);
        recorded += 1;
        if cx.me.settings.decline_counters {
            let stored_comp = &doc.nodes[target].comp;
            replies.push(Outgoing {
                from: organizer.clone(),
                to: attendee.clone(),
                to_name: object::param(&attendee_line, &ICalendarParameterName::Cn),
                method: Method::DeclineCounter,
                partstat: None,
                recurrence_id: object::text(comp, &ICalendarProperty::RecurrenceId),
                uid: cx.incoming.view.uid.to_string(),
                sequence: object::sequence(stored_comp),
                dtstamp: Some(stamp.clone()),
                summary: object::text(stored_comp, &ICalendarProperty::Summary),
                ical: build::declinecounter(
                    &doc,
                    stored_comp,
                    &attendee_line,
                    comp.property(&ICalendarProperty::RecurrenceId),
                    cx.now,
                ),
            });
        }
    }
    if recorded == 0 {
        return Decision::nothing(
            "duplicate",
            "this proposal was already recorded, or names no instance of the object",
        );
    }
    let declined = !replies.is_empty();
    Decision {
        method: None,
        outcome: Outcome::Updated,
        reason: Reason {
            code: if declined {
                "counter_declined"
            } else {
                "counter_recorded"
            },
            text: if declined {
                format!("{}'s proposal is recorded and declined", attendee.email())
            } else {
                format!(
                    "{}'s proposal is recorded for the organiser to decide",
                    attendee.email()
                )
            },
        },
        store: Some(doc.to_ical()),
        replies,
    }
}
