//! CANCEL received (RFC 5546 §3.2.5): the whole object, one instance, several instances, a
//! range (`RANGE=THISANDFUTURE`), or the uninvitation of this mailbox only.
//!
//! Project decision 4: CANCEL marks, never deletes. The object or instance gets
//! `STATUS:CANCELLED` and the CANCEL's SEQUENCE and DTSTAMP (its tombstone), so it stops
//! counting as busy and a late, older REQUEST cannot bring it back. A CANCEL for a UID this
//! mailbox does not hold leaves such a tombstone too (checklist #40).

use super::object::{self, Doc, Key, Order, Rid};
use super::request::{find_me, is_instance, position};
use super::{Context, Decision, Outcome, Reason, organizer_of, same_organizer, trust};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarParameterName, ICalendarProperty,
    ICalendarValue,
};
use chrono::NaiveDate;

/// Marks a component cancelled with the CANCEL's ordering key.
fn tombstone(comp: &mut ICalendarComponent, key: &Key) {
    object::set_line(comp, "STATUS:CANCELLED");
    object::set_key(comp, key);
}

/// CANCEL received.
pub fn process_cancel(cx: &Context<'_>) -> Decision {
    let inc = cx.incoming_doc();
    let Some((organizer, org_entry)) = organizer_of(&inc) else {
        return Decision::rejected("no_organizer", "a CANCEL must name its ORGANIZER");
    };
    let sent_by = cx.trusted_sent_by(&org_entry);
    if !trust::acts_for(cx.incoming.sender, &organizer, sent_by.as_ref()) {
        let code = if cx.me.is_me(&organizer) {
            "organizer_is_me"
        } else {
            "untrusted_sender"
        };
        return Decision::rejected(
            code,
            format!(
                "From {} is not the ORGANIZER {} (nor its SENT-BY): only the organiser cancels",
                cx.from(),
                organizer.email()
            ),
        );
    }
    let stored = cx.stored_doc();
    if let Some(old) = &stored
        && !same_organizer(old, &organizer)
    {
        return Decision::rejected(
            "organizer_changed",
            format!(
                "UID {} is organised by someone else; {} cannot cancel it",
                cx.incoming.view.uid,
                organizer.email()
            ),
        );
    }
    let with_status = inc
        .items()
        .into_iter()
        .any(|i| object::is_cancelled(&inc.nodes[i].comp));
    let lists_attendees = inc
        .items()
        .into_iter()
        .any(|i| !object::attendees(&inc.nodes[i].comp).is_empty());
    let me_listed = find_me(cx, &inc).is_some();
    if !with_status && lists_attendees && !me_listed && !cx.me.is_me(&organizer) {
        return Decision::nothing(
            "other_attendees_removed",
            "the CANCEL uninvites other attendees, not this mailbox",
        );
    }
    let uninvite = !with_status && me_listed;
    let Some(old) = stored else {
        let mut tomb = inc.clone();
        tomb.strip_method();
        for index in tomb.items() {
            let key = Key::of(&tomb.nodes[index].comp);
            tombstone(&mut tomb.nodes[index].comp, &key);
        }
        return Decision {
            method: None,
            outcome: Outcome::NoAction,
            reason: Reason {
                code: "unknown_uid",
                text: "CANCEL for a UID this mailbox does not hold; a tombstone keeps its SEQUENCE so a late, older REQUEST cannot create it".into(),
            },
            store: Some(tomb.to_ical()),
            replies: Vec::new(),
        };
    };
    let zones = cx.zones();
    let mut doc = old.clone();
    let (mut changed, mut stale, mut duplicate, mut unknown) = (0, 0, 0, 0);
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        let key = Key::of(comp);
        match zones.rid(comp) {
            None => {
                let reference = doc.master().or_else(|| {
                    doc.items()
                        .into_iter()
                        .max_by_key(|i| Key::of(&doc.nodes[*i].comp))
                });
                if let Some(m) = reference {
                    let old_comp = &doc.nodes[m].comp;
                    match object::order(&key, &Key::of(old_comp)) {
                        Order::Older => {
                            stale += 1;
                            continue;
                        }
                        Order::Same if object::is_cancelled(old_comp) => {
                            duplicate += 1;
                            continue;
                        }
                        _ => {}
                    }
                }
                for i in doc.items() {
                    if object::order(&key, &Key::of(&doc.nodes[i].comp)) == Order::Newer
                        || !object::is_cancelled(&doc.nodes[i].comp)
                    {
                        tombstone(&mut doc.nodes[i].comp, &key);
                    }
                }
                changed += 1;
            }
            Some(rid) if object::this_and_future(comp) => {
                if cancel_range(&mut doc, &rid, &key, &zones) {
                    changed += 1;
                } else {
                    stale += 1;
                }
            }
            Some(rid) => match position(&doc, &rid, &zones) {
                Some(at) => {
                    let old_comp = &doc.nodes[at].comp;
                    match object::order(&key, &Key::of(old_comp)) {
                        Order::Older => stale += 1,
                        Order::Same if object::is_cancelled(old_comp) => duplicate += 1,
                        _ => {
                            tombstone(&mut doc.nodes[at].comp, &key);
                            doc.nodes[at].children.clear();
                            changed += 1;
                        }
                    }
                }
                None => {
                    let Some(m) = doc.master() else {
                        unknown += 1;
                        continue;
                    };
                    if !is_instance(&doc, &rid, &zones) {
                        unknown += 1;
                        continue;
                    }
                    if object::order(&key, &Key::of(&doc.nodes[m].comp)) == Order::Older {
                        stale += 1;
                        continue;
                    }
                    let mut node = object::Node {
                        comp: instance_of(&doc.nodes[m].comp, comp),
                        children: Vec::new(),
                    };
                    tombstone(&mut node.comp, &key);
                    doc.nodes.push(node);
                    changed += 1;
                }
            },
        }
    }
    if changed == 0 {
        let (code, text) = if stale > 0 {
            (
                "stale",
                "the CANCEL is older than what is stored; the booking is kept",
            )
        } else if duplicate > 0 {
            ("duplicate", "this CANCEL was already applied")
        } else {
            let _ = unknown;
            (
                "unknown_instance",
                "the CANCEL names no instance of the stored object",
            )
        };
        return Decision::nothing(code, text);
    }
    let (code, text) = if uninvite {
        (
            "uninvited",
            "the organiser removed this mailbox from the event; its booking is cancelled"
                .to_string(),
        )
    } else if inc.master().is_some() {
        (
            "cancelled",
            "the organiser cancelled the event; the booking is released".to_string(),
        )
    } else {
        (
            "instance_cancelled",
            format!("the organiser cancelled {changed} instance(s); the rest of the series stands"),
        )
    };
    Decision {
        method: None,
        outcome: Outcome::Updated,
        reason: Reason { code, text },
        store: Some(doc.to_ical()),
        replies: Vec::new(),
    }
}

/// An override for one instance of `master`, named by the RECURRENCE-ID of `cancel`: the
/// master's properties without its recurrence, starting at the instance.
fn instance_of(master: &ICalendarComponent, cancel: &ICalendarComponent) -> ICalendarComponent {
    let mut comp = master.clone();
    for name in [
        ICalendarProperty::Rrule,
        ICalendarProperty::Rdate,
        ICalendarProperty::Exdate,
        ICalendarProperty::Dtend,
        ICalendarProperty::Duration,
        ICalendarProperty::Due,
    ] {
        object::remove(&mut comp, &name);
    }
    if let Some(rid) = cancel.property(&ICalendarProperty::RecurrenceId) {
        let mut rid = rid.clone();
        rid.params
            .retain(|p| p.name != ICalendarParameterName::Range);
        let mut start = rid.clone();
        start.name = ICalendarProperty::Dtstart;
        object::set(&mut comp.entries, start);
        object::set(&mut comp.entries, rid);
    }
    comp
}

/// RANGE=THISANDFUTURE: the series ends before `rid` (RRULE UNTIL), and the overrides from
/// `rid` on are cancelled. Returns false when the CANCEL is older than the series.
fn cancel_range(doc: &mut Doc, rid: &Rid, key: &Key, zones: &object::Zones<'_>) -> bool {
    let Some(m) = doc.master() else {
        return false;
    };
    if object::order(key, &Key::of(&doc.nodes[m].comp)) == Order::Older {
        return false;
    }
    let until = match rid {
        Rid::Date(date) => NaiveDate::parse_from_str(date, "%Y%m%d")
            .ok()
            .and_then(|d| d.pred_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| PartialDateTime::from_date_timestamp(d.and_utc().timestamp())),
        Rid::Instant(ts) => Some(PartialDateTime::from_utc_timestamp(ts - 1)),
        Rid::Floating(local) => Some(PartialDateTime::from_naive_timestamp(
            local.and_utc().timestamp() - 1,
        )),
    };
    let master = &mut doc.nodes[m].comp;
    for entry in master.entries.iter_mut() {
        if entry.name != ICalendarProperty::Rrule {
            continue;
        }
        if let Some(ICalendarValue::RecurrenceRule(rule)) = entry.values.first_mut() {
            rule.until = until.clone();
            rule.count = None;
        }
    }
    object::set_key(master, key);
    for i in doc.items() {
        if let Some(r) = zones.rid(&doc.nodes[i].comp)
            && &r >= rid
            && doc.nodes[i].comp.component_type != ICalendarComponentType::VTimezone
        {
            tombstone(&mut doc.nodes[i].comp, key);
        }
    }
    true
}
