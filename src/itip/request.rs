//! REQUEST received (RFC 5546 §3.2.2): a new invitation, an update, a reschedule, one
//! instance, a status poll, a delegation to this mailbox; and this mailbox's own invitations
//! (ORGANIZER and From are the mailbox, as the daemon learns them from the Sent folder).

use super::object::{self, Doc, Key, Node, Order, Rid};
use super::{
    Context, Decision, Outcome, Outgoing, Reason, ReplyMode, build, organizer_of, same_organizer,
    trust,
};
use crate::calendar::{CalAddress, Method, PartStat};
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarParameterName, ICalendarProperty,
};

/// The properties whose change is a reschedule: the policy decides again (RFC 6638 §3.2.8).
const TIMES: [ICalendarProperty; 7] = [
    ICalendarProperty::Dtstart,
    ICalendarProperty::Dtend,
    ICalendarProperty::Duration,
    ICalendarProperty::Due,
    ICalendarProperty::Rrule,
    ICalendarProperty::Rdate,
    ICalendarProperty::Exdate,
];

/// Whether any scheduling time differs between two components.
pub fn times_differ(a: &ICalendarComponent, b: &ICalendarComponent) -> bool {
    TIMES.iter().any(|name| {
        let of = |c: &ICalendarComponent| {
            c.properties(name)
                .map(|e| format!("{:?}{:?}", e.params, e.values))
                .collect::<Vec<_>>()
        };
        of(a) != of(b)
    })
}

/// REQUEST received.
pub fn process_request(cx: &Context<'_>) -> Decision {
    let inc = cx.incoming_doc();
    let Some((organizer, org_entry)) = organizer_of(&inc) else {
        return Decision::rejected("no_organizer", "a REQUEST must name its ORGANIZER");
    };
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        if comp.component_type == ICalendarComponentType::VEvent
            && !object::has(comp, &ICalendarProperty::Dtstart)
        {
            return Decision::rejected(
                "missing_dtstart",
                "a VEVENT in a REQUEST must have DTSTART (REQUEST-STATUS 3.11)",
            );
        }
    }
    let zones = cx.zones();
    for index in inc.items() {
        let comp = &inc.nodes[index].comp;
        if let Some(start) = comp.property(&ICalendarProperty::Dtstart)
            && zones.rid_of(start).is_none()
        {
            return Decision::rejected(
                "unknown_timezone",
                format!(
                    "DTSTART names the time zone {:?}, which is neither defined in the object nor an IANA or Windows zone",
                    object::param(start, &ICalendarParameterName::Tzid).unwrap_or_default()
                ),
            );
        }
    }
    if cx.me.is_me(&organizer) {
        return process_own_request(cx, inc, &organizer);
    }
    let Some(me) = find_me(cx, &inc) else {
        let text = if cx.stored.is_some() {
            "the update no longer lists this mailbox as an ATTENDEE; the booking stays until a CANCEL arrives"
        } else {
            "none of this mailbox's addresses is an ATTENDEE (Bcc, forward, or a group this mailbox cannot expand)"
        };
        return Decision::nothing("not_invited", text);
    };
    let sent_by = cx.trusted_sent_by(&org_entry);
    let stored = cx.stored_doc();
    if !trust::acts_for(cx.incoming.sender, &organizer, sent_by.as_ref())
        && !delegated_to_me(cx, &inc, stored.as_ref(), &me)
    {
        return Decision::rejected(
            "untrusted_sender",
            format!(
                "From {} is neither the ORGANIZER {} nor its SENT-BY, nor an attendee delegating to this mailbox",
                cx.from(),
                organizer.email()
            ),
        );
    }
    if let Some(decision) = unreadable_end(cx, &inc, &me, &organizer, &org_entry) {
        return decision;
    }
    if let Some(old) = &stored
        && !same_organizer(old, &organizer)
    {
        return Decision::rejected(
            "organizer_changed",
            format!(
                "UID {} is organised by {}; a REQUEST from ORGANIZER {} cannot take it over",
                cx.incoming.view.uid,
                organizer_of(old)
                    .map(|(a, _)| a.email().to_string())
                    .unwrap_or_default(),
                organizer.email()
            ),
        );
    }
    let merged = match merge(cx, &inc, stored.as_ref()) {
        Ok(merged) => merged,
        Err(decision) => return *decision,
    };
    answer(
        cx,
        &inc,
        stored.as_ref(),
        merged,
        &me,
        &organizer,
        &org_entry,
    )
}

/// RFC 5546 §4.4.10 and checklist #98: a DTEND or DUE that cannot be read leaves the
/// occupied time unknown, so nothing is booked; the organiser gets an error REPLY with
/// REQUEST-STATUS 3.1 and no PARTSTAT (unless the mailbox never replies).
fn unreadable_end(
    cx: &Context<'_>,
    inc: &Doc,
    me: &CalAddress,
    organizer: &CalAddress,
    org_entry: &calcard::icalendar::ICalendarEntry,
) -> Option<Decision> {
    let zones = cx.zones();
    let (index, name, raw) = inc.items().into_iter().find_map(|index| {
        let comp = &inc.nodes[index].comp;
        let end = comp
            .property(&ICalendarProperty::Dtend)
            .or_else(|| comp.property(&ICalendarProperty::Due))?;
        if zones.rid_of(end).is_some() {
            return None;
        }
        let raw = end
            .values
            .first()
            .and_then(|v| v.as_text())
            .unwrap_or_default()
            .to_string();
        Some((index, end.name.as_str().to_string(), raw))
    })?;
    let mut decision = Decision::rejected(
        "invalid_value",
        format!(
            "{name}:{raw} cannot be read as a date-time, so the time the event occupies is unknown; nothing is booked (REQUEST-STATUS 3.1)"
        ),
    );
    if cx.me.settings.reply != ReplyMode::Never {
        let comp = &inc.nodes[index].comp;
        let status = format!(
            "3.1;Invalid property value;{name}:{}",
            build::escape_text(&raw)
        );
        let main = cx.incoming.view.main();
        decision.replies.push(Outgoing {
            from: me.clone(),
            to: organizer.clone(),
            to_name: object::param(org_entry, &ICalendarParameterName::Cn),
            method: Method::Reply,
            partstat: None,
            recurrence_id: object::text(comp, &ICalendarProperty::RecurrenceId),
            uid: cx.incoming.view.uid.to_string(),
            sequence: main.sequence,
            dtstamp: main.dtstamp.clone(),
            summary: main.summary.clone(),
            ical: build::reply(
                inc,
                me,
                &[build::Answer {
                    comp,
                    partstat: None,
                    comment: None,
                    request_status: Some(status),
                }],
                cx.now,
            ),
        });
    }
    Some(decision)
}

/// The address of this mailbox as the object lists it (the alias it was invited with).
pub fn find_me(cx: &Context<'_>, doc: &Doc) -> Option<CalAddress> {
    doc.items().into_iter().find_map(|i| {
        object::attendees(&doc.nodes[i].comp)
            .into_iter()
            .map(|(a, _)| a)
            .find(|a| cx.me.is_me(a))
    })
}

/// RFC 5546 §3.2.2.3: an attendee may forward the REQUEST to its delegate. The sender is an
/// ATTENDEE whose DELEGATED-TO names this mailbox, this mailbox's line names it in
/// DELEGATED-FROM, and (when the object is stored) the stored copy lists it.
fn delegated_to_me(cx: &Context<'_>, inc: &Doc, stored: Option<&Doc>, me: &CalAddress) -> bool {
    let authors = trust::authors(cx.incoming.sender);
    inc.items().into_iter().any(|i| {
        let comp = &inc.nodes[i].comp;
        let delegator = object::attendees(comp).into_iter().find(|(a, e)| {
            authors.contains(a)
                && object::param_addresses(e, &ICalendarParameterName::DelegatedTo).contains(me)
        });
        let Some((delegator, _)) = delegator else {
            return false;
        };
        let me_names_it = object::attendee_index(comp, me).is_some_and(|j| {
            object::param_addresses(&comp.entries[j], &ICalendarParameterName::DelegatedFrom)
                .contains(&delegator)
        });
        let stored_lists_it = stored.is_none_or(|s| {
            s.items()
                .into_iter()
                .any(|k| object::attendee_index(&s.nodes[k].comp, &delegator).is_some())
        });
        me_names_it && stored_lists_it
    })
}

/// One component of the new stored object the request changed.
struct Applied {
    /// Its index in the merged object.
    index: usize,
    /// The stored component it replaces (same RECURRENCE-ID), to tell a reschedule from a
    /// minor update.
    old: Option<ICalendarComponent>,
}

/// The request merged into the stored object.
struct Merged {
    doc: Doc,
    applied: Vec<Applied>,
    refresh: Vec<ICalendarComponent>,
    stale: usize,
    duplicate: usize,
    reinstated: bool,
}

/// The personal data of the stored copy carried into the organiser's new version (RFC 5546
/// §3.1.3; Cyrus's `deliver_merge_request`): alarms, TRANSP, CLASS, COLOR, and the VTODO
/// progress. The organiser's own alarms and CLASS/COLOR are not ME's and are dropped.
fn carry_personal(new: &mut Node, from: Option<&Node>) {
    new.children
        .retain(|c| c.comp.component_type != ICalendarComponentType::VAlarm);
    object::remove(&mut new.comp, &ICalendarProperty::Class);
    object::remove(&mut new.comp, &ICalendarProperty::Color);
    object::strip_transport_data(&mut new.comp);
    let Some(from) = from else {
        return;
    };
    new.children.extend(
        from.children
            .iter()
            .filter(|c| c.comp.component_type == ICalendarComponentType::VAlarm)
            .cloned(),
    );
    let mut personal = object::PERSONAL.to_vec();
    if build::is_todo(&new.comp) {
        personal.push(ICalendarProperty::Completed);
    }
    for name in personal {
        if let Some(entry) = from.comp.property(&name) {
            object::set(&mut new.comp.entries, entry.clone());
        }
    }
}

fn stale_or_duplicate(
    order: Order,
    key: &Key,
    old: &Key,
    cancelled: bool,
) -> Option<Box<Decision>> {
    match order {
        Order::Newer => None,
        Order::Same => Some(Box::new(Decision::nothing(
            "duplicate",
            format!("{key} was already applied"),
        ))),
        Order::Older => Some(Box::new(Decision::nothing(
            "stale",
            if cancelled {
                format!(
                    "{key} is not newer than the CANCEL already applied ({old}); a cancelled event is not brought back"
                )
            } else {
                format!("{key} is older than the stored {old}")
            },
        ))),
    }
}

/// Applies the request's components to the stored object by RECURRENCE-ID and ordering key.
fn merge(cx: &Context<'_>, inc: &Doc, stored: Option<&Doc>) -> Result<Merged, Box<Decision>> {
    let zones = cx.zones();
    let mut merged = Merged {
        doc: Doc {
            root: inc.root.clone(),
            nodes: Vec::new(),
        },
        applied: Vec::new(),
        refresh: Vec::new(),
        stale: 0,
        duplicate: 0,
        reinstated: false,
    };
    if let Some(master) = inc.master() {
        // A REQUEST with the master replaces the whole set of instances (RFC 5546 §4.4.7).
        let key = Key::of(&inc.nodes[master].comp);
        if let Some(old) = stored {
            let old_master = old.master().or_else(|| {
                old.items()
                    .into_iter()
                    .max_by_key(|i| Key::of(&old.nodes[*i].comp))
            });
            if let Some(m) = old_master {
                let old_key = Key::of(&old.nodes[m].comp);
                let cancelled = object::is_cancelled(&old.nodes[m].comp);
                if let Some(decision) =
                    stale_or_duplicate(object::order(&key, &old_key), &key, &old_key, cancelled)
                {
                    return Err(decision);
                }
                merged.reinstated = cancelled;
            }
        }
        merged.doc.nodes = inc.zones().cloned().collect();
        for index in inc.items() {
            let mut node = inc.nodes[index].clone();
            let rid = zones.rid(&node.comp);
            let counterpart = stored.and_then(|old| find(old, rid.as_ref(), &zones));
            let personal =
                counterpart.or_else(|| stored.and_then(|old| old.master().map(|m| &old.nodes[m])));
            carry_personal(&mut node, personal);
            merged.doc.nodes.push(node);
            merged.applied.push(Applied {
                index: merged.doc.nodes.len() - 1,
                old: counterpart.map(|n| n.comp.clone()),
            });
        }
        merged.doc.strip_method();
        return Ok(merged);
    }
    // Instances only: each one is ordered against its own stored override, or the master.
    merged.doc = match stored {
        Some(old) => old.clone(),
        None => Doc {
            root: inc.root.clone(),
            nodes: Vec::new(),
        },
    };
    merged.doc.strip_method();
    merged.doc.merge_zones(inc);
    let mut last_decision = None;
    for index in inc.items() {
        let mut node = inc.nodes[index].clone();
        let rid = zones.rid(&node.comp);
        let existing = rid.as_ref().and_then(|r| position(&merged.doc, r, &zones));
        match (
            existing,
            stored.and_then(|s| s.master().map(|m| &s.nodes[m])),
        ) {
            (Some(at), _) => {
                let old = merged.doc.nodes[at].clone();
                let (key, old_key) = (Key::of(&node.comp), Key::of(&old.comp));
                if let Some(d) = stale_or_duplicate(
                    object::order(&key, &old_key),
                    &key,
                    &old_key,
                    object::is_cancelled(&old.comp),
                ) {
                    if d.reason.code == "duplicate" {
                        merged.duplicate += 1
                    } else {
                        merged.stale += 1
                    }
                    last_decision = Some(d);
                    continue;
                }
                carry_personal(&mut node, Some(&old));
                merged.doc.nodes[at] = node;
                merged.applied.push(Applied {
                    index: at,
                    old: Some(old.comp),
                });
            }
            (None, Some(master)) => {
                let stored = stored.expect("a master implies a stored object");
                let valid = rid.as_ref().is_some_and(|r| is_instance(stored, r, &zones));
                if !valid {
                    merged.refresh.push(node.comp.clone());
                    continue;
                }
                let (key, old_key) = (Key::of(&node.comp), Key::of(&master.comp));
                if object::order(&key, &old_key) == Order::Older {
                    merged.stale += 1;
                    last_decision = stale_or_duplicate(
                        Order::Older,
                        &key,
                        &old_key,
                        object::is_cancelled(&master.comp),
                    );
                    continue;
                }
                carry_personal(&mut node, Some(master));
                merged.doc.nodes.push(node);
                merged.applied.push(Applied {
                    index: merged.doc.nodes.len() - 1,
                    old: None,
                });
            }
            (None, None) => {
                carry_personal(&mut node, None);
                merged.doc.nodes.push(node);
                merged.applied.push(Applied {
                    index: merged.doc.nodes.len() - 1,
                    old: None,
                });
            }
        }
    }
    if merged.applied.is_empty() && merged.refresh.is_empty() {
        return Err(last_decision.unwrap_or_else(|| {
            Box::new(Decision::nothing(
                "no_change",
                "nothing in the REQUEST applies",
            ))
        }));
    }
    Ok(merged)
}

/// The stored component for an instance identity (`None` = the master).
fn find<'d>(doc: &'d Doc, rid: Option<&Rid>, zones: &object::Zones<'_>) -> Option<&'d Node> {
    doc.items()
        .into_iter()
        .map(|i| &doc.nodes[i])
        .find(|n| zones.rid(&n.comp).as_ref() == rid)
}

/// The index of the override for `rid`.
pub fn position(doc: &Doc, rid: &Rid, zones: &object::Zones<'_>) -> Option<usize> {
    doc.items()
        .into_iter()
        .find(|i| zones.rid(&doc.nodes[*i].comp).as_ref() == Some(rid))
}

/// Whether `rid` names an instance of the stored series (an RRULE/RDATE occurrence, or the
/// start of a non-recurring master; an object stored without a master accepts any).
pub fn is_instance(doc: &Doc, rid: &Rid, zones: &object::Zones<'_>) -> bool {
    let Some(master) = doc.master() else {
        return true;
    };
    let comp = &doc.nodes[master].comp;
    if object::is_recurring(comp) {
        object::instances(doc, master).contains(rid)
    } else {
        comp.property(&ICalendarProperty::Dtstart)
            .and_then(|e| zones.rid_of(e))
            .as_ref()
            == Some(rid)
    }
}

fn rsvp(comp: &ICalendarComponent, me: &CalAddress) -> bool {
    object::attendee_index(comp, me).is_some_and(|i| {
        object::param(&comp.entries[i], &ICalendarParameterName::Rsvp)
            .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
    })
}

fn partstat_of(comp: &ICalendarComponent, me: &CalAddress) -> Option<PartStat> {
    object::attendee_index(comp, me).map(|i| {
        object::param(&comp.entries[i], &ICalendarParameterName::Partstat)
            .map_or(PartStat::NeedsAction, |p| PartStat::parse(&p))
    })
}

/// Sets ME's PARTSTAT in the merged components, decides which get a REPLY, and builds it.
fn answer(
    cx: &Context<'_>,
    inc: &Doc,
    stored: Option<&Doc>,
    mut merged: Merged,
    me: &CalAddress,
    organizer: &CalAddress,
    org_entry: &calcard::icalendar::ICalendarEntry,
) -> Decision {
    let decided = cx.policy.partstat();
    let mut answers: Vec<(usize, PartStat)> = Vec::new();
    let mut rescheduled = false;
    let mut polled = false;
    for applied in &merged.applied {
        let comp = &mut merged.doc.nodes[applied.index].comp;
        let Some(at) = object::attendee_index(comp, me) else {
            continue;
        };
        let incoming_rsvp = rsvp(comp, me);
        let incoming_partstat = partstat_of(comp, me);
        let changed = match &applied.old {
            None => true,
            Some(old) => {
                object::attendee_index(old, me).is_none()
                    || times_differ(comp, old)
                    || object::sequence(comp) > object::sequence(old)
                    || object::is_cancelled(old)
            }
        };
        let previous = applied.old.as_ref().and_then(|old| partstat_of(old, me));
        let partstat = match (&previous, changed) {
            (Some(p), false) if *p != PartStat::NeedsAction => p.clone(),
            _ => decided.clone(),
        };
        let poll = !changed
            && incoming_rsvp
            && (applied.old.as_ref().is_some_and(|old| !rsvp(old, me))
                || incoming_partstat.as_ref() != Some(&partstat));
        build::set_partstat(&mut comp.entries[at], &partstat);
        rescheduled |= changed;
        polled |= poll;
        let wanted = match cx.me.settings.reply {
            ReplyMode::Never => false,
            ReplyMode::Always => changed || poll,
            ReplyMode::Rsvp => incoming_rsvp && (changed || poll),
        };
        if wanted {
            answers.push((applied.index, partstat));
        }
    }
    let main = cx.incoming.view.main();
    let mut replies = Vec::new();
    if !answers.is_empty() {
        // The policy's explanation and REQUEST-STATUS go with a new answer only, not with a
        // repeated one.
        let (comment, request_status) = if rescheduled {
            (
                cx.policy.comment().map(str::to_string),
                cx.policy.request_status().map(str::to_string),
            )
        } else {
            (None, None)
        };
        let list: Vec<build::Answer<'_>> = answers
            .iter()
            .map(|(index, partstat)| build::Answer {
                comp: &merged.doc.nodes[*index].comp,
                partstat: Some(partstat.clone()),
                comment: comment.clone(),
                request_status: request_status.clone(),
            })
            .collect();
        let single_rid = match answers.as_slice() {
            [(index, _)] => object::text(
                &merged.doc.nodes[*index].comp,
                &ICalendarProperty::RecurrenceId,
            ),
            _ => None,
        };
        let ical = build::reply(&merged.doc, me, &list, cx.now);
        replies.push(Outgoing {
            from: me.clone(),
            to: organizer.clone(),
            to_name: object::param(org_entry, &ICalendarParameterName::Cn),
            method: Method::Reply,
            partstat: Some(answers[0].1.clone()),
            recurrence_id: single_rid,
            uid: cx.incoming.view.uid.to_string(),
            sequence: main.sequence,
            dtstamp: main.dtstamp.clone(),
            summary: main.summary.clone(),
            ical,
        });
    }
    if rescheduled
        && cx.me.settings.reply != ReplyMode::Never
        && let Some(slot) = cx.policy.counter()
        && let Some(master) = merged.doc.master()
    {
        let comp = &merged.doc.nodes[master].comp;
        replies.push(Outgoing {
            from: me.clone(),
            to: organizer.clone(),
            to_name: object::param(org_entry, &ICalendarParameterName::Cn),
            method: Method::Counter,
            partstat: None,
            recurrence_id: None,
            uid: cx.incoming.view.uid.to_string(),
            sequence: main.sequence,
            dtstamp: main.dtstamp.clone(),
            summary: main.summary.clone(),
            ical: build::counter(
                &merged.doc,
                comp,
                me,
                slot.start,
                slot.end,
                cx.policy.comment().unwrap_or_default(),
                cx.now,
            ),
        });
    }
    if rescheduled && let crate::policy::PolicyAnswer::AcceptExcept { declined, .. } = cx.policy {
        replies.extend(decline_instances(
            cx,
            &mut merged,
            declined,
            me,
            organizer,
            org_entry,
        ));
    }
    for comp in &merged.refresh {
        replies.push(refresh_for(cx, inc, comp, me, organizer, org_entry));
    }
    if merged.applied.is_empty() {
        return Decision {
            method: None,
            outcome: Outcome::NoAction,
            reason: Reason {
                code: "unknown_instance",
                text: "the RECURRENCE-ID is not an instance of the stored series; a REFRESH asks the organiser for the current version".into(),
            },
            store: None,
            replies,
        };
    }
    let (code, text) = if rescheduled {
        (
            cx.policy.code(),
            format!("{} {}", me.email(), decided.as_str().to_lowercase()),
        )
    } else if polled {
        (
            "status_poll",
            "the organiser asked for this mailbox's answer again; it is repeated".to_string(),
        )
    } else {
        (
            "updated",
            "the organiser's details changed; this mailbox's answer stands".to_string(),
        )
    };
    let mut text = text;
    if merged.reinstated {
        text.push_str(" (a newer REQUEST reinstates the cancelled event)");
    }
    if merged.stale + merged.duplicate > 0 {
        text.push_str(&format!(
            " ({} older or already applied instance(s) ignored)",
            merged.stale + merged.duplicate
        ));
    }
    if !merged.refresh.is_empty() {
        text.push_str(" (a REFRESH asks for instances that could not be matched)");
    }
    Decision {
        method: None,
        outcome: if stored.is_some() {
            Outcome::Updated
        } else {
            Outcome::Added
        },
        reason: Reason { code, text },
        store: Some(merged.doc.to_ical()),
        replies,
    }
}

/// The series' RECURRENCE-ID matching an instance the policy declined (its start read as
/// UTC, as the busy index reads it).
fn rid_for(rids: &[Rid], instance: &crate::policy::DeclinedInstance) -> Option<Rid> {
    let at = instance.recurrence_id;
    rids.iter()
        .find(|rid| match rid {
            Rid::Instant(ts) => *ts == at.timestamp(),
            Rid::Date(date) => *date == at.format("%Y%m%d").to_string(),
            Rid::Floating(local) => *local == at.naive_utc(),
        })
        .cloned()
}

/// Declines single instances of an accepted series (the policy's conflicting instances):
/// each gets an override in the stored object with ME's PARTSTAT=DECLINED (so the busy
/// index leaves it free) and, unless the mailbox never replies, a REPLY of its own with the
/// policy's reason and REQUEST-STATUS.
fn decline_instances(
    cx: &Context<'_>,
    merged: &mut Merged,
    declined: &[crate::policy::DeclinedInstance],
    me: &CalAddress,
    organizer: &CalAddress,
    org_entry: &calcard::icalendar::ICalendarEntry,
) -> Vec<Outgoing> {
    let Some(master) = merged.doc.master() else {
        return Vec::new();
    };
    let rids = object::instances(&merged.doc, master);
    let main = cx.incoming.view.main();
    let mut replies = Vec::new();
    for instance in declined {
        let Some(rid) = rid_for(&rids, instance) else {
            continue;
        };
        let index = {
            let zones = cx.zones();
            match position(&merged.doc, &rid, &zones) {
                Some(index) => index,
                None => {
                    let Some(comp) = zones.instance_override(&merged.doc.nodes[master].comp, &rid)
                    else {
                        continue;
                    };
                    merged.doc.nodes.push(Node {
                        comp,
                        children: Vec::new(),
                    });
                    merged.doc.nodes.len() - 1
                }
            }
        };
        let comp = &mut merged.doc.nodes[index].comp;
        let Some(at) = object::attendee_index(comp, me) else {
            continue;
        };
        build::set_partstat(&mut comp.entries[at], &PartStat::Declined);
        if cx.me.settings.reply == ReplyMode::Never {
            continue;
        }
        let comp = &merged.doc.nodes[index].comp;
        let ical = build::reply(
            &merged.doc,
            me,
            &[build::Answer {
                comp,
                partstat: Some(PartStat::Declined),
                comment: Some(instance.reason.clone()),
                request_status: Some(instance.status.clone()),
            }],
            cx.now,
        );
        replies.push(Outgoing {
            from: me.clone(),
            to: organizer.clone(),
            to_name: object::param(org_entry, &ICalendarParameterName::Cn),
            method: Method::Reply,
            partstat: Some(PartStat::Declined),
            recurrence_id: object::text(comp, &ICalendarProperty::RecurrenceId),
            uid: cx.incoming.view.uid.to_string(),
            sequence: main.sequence,
            dtstamp: main.dtstamp.clone(),
            summary: main.summary.clone(),
            ical,
        });
    }
    replies
}

/// A REFRESH to the organiser for an instance this mailbox cannot match (RFC 5546 §4.7.2).
pub fn refresh_for(
    cx: &Context<'_>,
    source: &Doc,
    comp: &ICalendarComponent,
    me: &CalAddress,
    organizer: &CalAddress,
    org_entry: &calcard::icalendar::ICalendarEntry,
) -> Outgoing {
    Outgoing {
        from: me.clone(),
        to: organizer.clone(),
        to_name: object::param(org_entry, &ICalendarParameterName::Cn),
        method: Method::Refresh,
        partstat: None,
        recurrence_id: object::text(comp, &ICalendarProperty::RecurrenceId),
        uid: cx.incoming.view.uid.to_string(),
        sequence: object::sequence(comp),
        dtstamp: Some(object::dtstamp(comp)),
        summary: object::text(comp, &ICalendarProperty::Summary),
        ical: build::refresh(source, comp, me, cx.now),
    }
}

/// This mailbox's own invitation: stored as the organiser's copy, no reply, so that later
/// REPLY/COUNTER/REFRESH from attendees apply to it. Anyone else sending a REQUEST in this
/// mailbox's name is a loop or a spoof (checklist #78).
fn process_own_request(cx: &Context<'_>, inc: Doc, organizer: &CalAddress) -> Decision {
    if !trust::acts_for(cx.incoming.sender, organizer, None) {
        return Decision::rejected(
            "organizer_is_me",
            format!(
                "a REQUEST naming this mailbox ({}) as ORGANIZER came from {}: a loop or a spoof",
                organizer.email(),
                cx.from()
            ),
        );
    }
    let stored = cx.stored_doc();
    let zones = cx.zones();
    if let Some(old) = &stored
        && let (Some(new_m), Some(old_m)) = (
            inc.master().or_else(|| inc.items().first().copied()),
            old.master(),
        )
    {
        let (key, old_key) = (
            Key::of(&inc.nodes[new_m].comp),
            Key::of(&old.nodes[old_m].comp),
        );
        if let Some(decision) =
            stale_or_duplicate(object::order(&key, &old_key), &key, &old_key, false)
        {
            return *decision;
        }
    }
    let mut doc = if inc.master().is_some() {
        inc.clone()
    } else {
        let mut base = stored.clone().unwrap_or_else(|| Doc {
            root: inc.root.clone(),
            nodes: Vec::new(),
        });
        base.merge_zones(&inc);
        for index in inc.items() {
            let node = inc.nodes[index].clone();
            match zones
                .rid(&node.comp)
                .and_then(|r| position(&base, &r, &zones))
            {
                Some(at) => base.nodes[at] = node,
                None => base.nodes.push(node),
            }
        }
        base
    };
    doc.strip_method();
    // Replies already received for this version stay recorded.
    if let Some(old) = &stored {
        for index in doc.items() {
            let rid = zones.rid(&doc.nodes[index].comp);
            let Some(old_node) = find(old, rid.as_ref(), &zones) else {
                continue;
            };
            if object::sequence(&old_node.comp) != object::sequence(&doc.nodes[index].comp) {
                continue;
            }
            for (address, entry) in object::attendees(&old_node.comp) {
                if object::param(entry, &object::x_param("X-RECEIVED-SEQUENCE")).is_none() {
                    continue;
                }
                if let Some(at) = object::attendee_index(&doc.nodes[index].comp, &address) {
                    doc.nodes[index].comp.entries[at] = entry.clone();
                }
            }
        }
    }
    Decision {
        method: None,
        outcome: if stored.is_some() {
            Outcome::Updated
        } else {
            Outcome::Added
        },
        reason: Reason {
            code: "own_invitation",
            text: "this mailbox's own invitation is stored as the organiser's copy; no reply"
                .into(),
        },
        store: Some(doc.to_ical()),
        replies: Vec::new(),
    }
}
