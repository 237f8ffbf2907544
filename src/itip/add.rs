//! ADD received (RFC 5546 §3.2.4): new instances of a stored recurring object.
//!
//! Each added instance becomes an RDATE of the master plus an override carrying the ADD's
//! details (so its own times and attendees are kept), and the master takes the ADD's
//! SEQUENCE. An ADD for a UID this mailbox does not hold cannot be applied: a REFRESH asks
//! the organiser for the whole object (§5.1.1).

use super::object::{self, Doc, Key, Node, Order};
use super::request::{find_me, refresh_for};
use super::{
    Context, Decision, Outcome, Outgoing, Reason, ReplyMode, build, organizer_of, same_organizer,
    trust,
};
use crate::calendar::Method;
use calcard::icalendar::{ICalendarParameterName, ICalendarProperty};

/// ADD received.
pub fn process_add(cx: &Context<'_>) -> Decision {
    let inc = cx.incoming_doc();
    let Some((organizer, org_entry)) = organizer_of(&inc) else {
        return Decision::rejected("no_organizer", "an ADD must name its ORGANIZER");
    };
    let sent_by = cx.trusted_sent_by(&org_entry);
    if !trust::acts_for(cx.incoming.sender, &organizer, sent_by.as_ref()) || cx.me.is_me(&organizer)
    {
        return Decision::rejected(
            "untrusted_sender",
            format!(
                "From {} is not the ORGANIZER {} (nor its SENT-BY)",
                cx.from(),
                organizer.email()
            ),
        );
    }
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        let forbidden = [
            ICalendarProperty::RecurrenceId,
            ICalendarProperty::Rrule,
            ICalendarProperty::Rdate,
            ICalendarProperty::Exdate,
        ]
        .iter()
        .find(|p| object::has(comp, p));
        if let Some(p) = forbidden {
            return Decision::rejected(
                "invalid_add",
                format!("an ADD must not carry {} (RFC 5546 §3.2.4)", p.as_str()),
            );
        }
        if object::sequence(comp) == 0 {
            return Decision::rejected("invalid_add", "an ADD's SEQUENCE must be greater than 0");
        }
    }
    let Some(me) = find_me(cx, &inc) else {
        return Decision::nothing(
            "not_invited",
            "none of this mailbox's addresses is an ATTENDEE of the added instances",
        );
    };
    let Some(stored) = cx.stored_doc() else {
        let first = inc.items()[0];
        let refresh = refresh_for(
            cx,
            &inc,
            &inc.nodes[first].comp,
            &me,
            &organizer,
            &org_entry,
        );
        return Decision {
            method: None,
            outcome: Outcome::NoAction,
            reason: Reason {
                code: "unknown_uid",
                text: "ADD for a UID this mailbox does not hold; a REFRESH asks the organiser for the whole object".into(),
            },
            store: None,
            replies: vec![refresh],
        };
    };
    if !same_organizer(&stored, &organizer) {
        return Decision::rejected(
            "organizer_changed",
            "the stored object has another ORGANIZER",
        );
    }
    let Some(master) = stored.master() else {
        return Decision::nothing(
            "unknown_instance",
            "the stored object has no master to add instances to",
        );
    };
    let zones = cx.zones();
    let mut doc = stored.clone();
    doc.merge_zones(&inc);
    let mut answers = Vec::new();
    let mut added = 0;
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        let key = Key::of(comp);
        let master_key = Key::of(&doc.nodes[master].comp);
        match object::order(&key, &master_key) {
            Order::Older => continue,
            Order::Same => continue,
            Order::Newer => {}
        }
        let Some(start) = comp.property(&ICalendarProperty::Dtstart).cloned() else {
            continue;
        };
        let mut rdate = start.clone();
        rdate.name = ICalendarProperty::Rdate;
        let mut rid = start.clone();
        rid.name = ICalendarProperty::RecurrenceId;
        let master_comp = &mut doc.nodes[master].comp;
        master_comp.entries.push(rdate);
        object::set_key(master_comp, &key);
        let mut instance = comp.clone();
        object::strip_transport_data(&mut instance);
        instance.entries.push(rid);
        if let Some(at) = object::attendee_index(&instance, &me) {
            build::set_partstat(&mut instance.entries[at], &cx.policy.partstat());
        }
        let rsvp = object::attendee_index(&instance, &me).is_some_and(|at| {
            object::param(&instance.entries[at], &ICalendarParameterName::Rsvp)
                .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
        });
        let existing = zones
            .rid_of(&start)
            .and_then(|r| super::request::position(&doc, &r, &zones));
        let at = match existing {
            Some(at) => {
                doc.nodes[at].comp = instance;
                at
            }
            None => {
                doc.nodes.push(Node {
                    comp: instance,
                    children: Vec::new(),
                });
                doc.nodes.len() - 1
            }
        };
        added += 1;
        let wanted = match cx.me.settings.reply {
            ReplyMode::Never => false,
            ReplyMode::Always => true,
            ReplyMode::Rsvp => rsvp,
        };
        if wanted {
            answers.push(at);
        }
    }
    if added == 0 {
        return Decision::nothing("stale", "the ADD is not newer than the stored object");
    }
    let mut replies = Vec::new();
    if !answers.is_empty() {
        let partstat = cx.policy.partstat();
        let list: Vec<build::Answer<'_>> = answers
            .iter()
            .map(|i| build::Answer {
                comp: &doc.nodes[*i].comp,
                partstat: Some(partstat.clone()),
                comment: None,
                request_status: None,
            })
            .collect();
        let main = cx.incoming.view.main();
        replies.push(Outgoing {
            from: me.clone(),
            to: organizer.clone(),
            to_name: object::param(&org_entry, &ICalendarParameterName::Cn),
            method: Method::Reply,
            partstat: Some(partstat.clone()),
            recurrence_id: object::text(
                &doc.nodes[answers[0]].comp,
                &ICalendarProperty::RecurrenceId,
            ),
            uid: cx.incoming.view.uid.to_string(),
            sequence: main.sequence,
            dtstamp: main.dtstamp.clone(),
            summary: main.summary.clone(),
            ical: build::reply(&doc, &me, &list, cx.now),
        });
    }
    let stored_doc: &Doc = &doc;
    Decision {
        method: None,
        outcome: Outcome::Updated,
        reason: Reason {
            code: cx.policy.code(),
            text: format!(
                "{added} instance(s) added; {} {}",
                me.email(),
                cx.policy.partstat().as_str().to_lowercase()
            ),
        },
        store: Some(stored_doc.to_ical()),
        replies,
    }
}
