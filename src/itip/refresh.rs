//! REFRESH received by the organiser (RFC 5546 §3.2.6): an attendee asks for the current
//! version. The answer is a REQUEST with the whole stored object (or the instance asked
//! for), SEQUENCE unchanged and a fresh DTSTAMP, sent to that attendee only. Membership is
//! checked against the stored object, never the REFRESH body (§6.1.6).

use super::object::{self};
use super::{Context, Decision, Outcome, Outgoing, Reason, build, organizer_of, trust};
use crate::calendar::{CalAddress, Method};
use calcard::icalendar::ICalendarProperty;

/// REFRESH received.
pub fn process_refresh(cx: &Context<'_>) -> Decision {
    let Some(stored) = cx.stored_doc() else {
        return Decision::nothing(
            "unknown_uid",
            "REFRESH for a UID this mailbox does not hold",
        );
    };
    let Some((organizer, _)) = organizer_of(&stored) else {
        return Decision::nothing("not_organizer", "the stored object has no ORGANIZER");
    };
    if !cx.me.is_me(&organizer) {
        return Decision::nothing(
            "not_organizer",
            "this mailbox does not organise the object; a REFRESH is for the organiser",
        );
    }
    let authors = trust::authors(cx.incoming.sender);
    let member: Option<(CalAddress, Option<String>)> = stored.items().into_iter().find_map(|i| {
        object::attendees(&stored.nodes[i].comp)
            .into_iter()
            .find(|(a, _)| authors.contains(a))
            .map(|(a, e)| {
                (
                    a,
                    object::param(e, &calcard::icalendar::ICalendarParameterName::Cn),
                )
            })
    });
    let Some((attendee, name)) = member else {
        return Decision::rejected(
            "not_an_attendee",
            format!(
                "From {} is not an attendee of the stored object; nothing is disclosed",
                cx.from()
            ),
        );
    };
    let zones = cx.zones();
    let inc = cx.incoming_doc();
    let rid = inc
        .items()
        .first()
        .and_then(|i| zones.rid(&inc.nodes[*i].comp));
    let master = stored.master().or_else(|| stored.items().first().copied());
    let comp = master.map(|m| &stored.nodes[m].comp);
    let ical = build::request_copy(&stored, rid.as_ref(), &zones, cx.now);
    let reply = Outgoing {
        from: organizer.clone(),
        to: attendee.clone(),
        to_name: name,
        method: Method::Request,
        partstat: None,
        recurrence_id: inc
            .items()
            .first()
            .and_then(|i| object::text(&inc.nodes[*i].comp, &ICalendarProperty::RecurrenceId)),
        uid: cx.incoming.view.uid.to_string(),
        sequence: comp.map(object::sequence).unwrap_or(0),
        dtstamp: cx.incoming.view.main().dtstamp.clone(),
        summary: comp.and_then(|c| object::text(c, &ICalendarProperty::Summary)),
        ical,
    };
    Decision {
        method: None,
        outcome: Outcome::NoAction,
        reason: Reason {
            code: "refresh_answered",
            text: format!("the current version is sent to {}", attendee.email()),
        },
        store: None,
        replies: vec![reply],
    }
}
