//! Scheduling vCalendar 1.0 objects (project decision 2). A vCalendar object has no METHOD,
//! so it is inferred, and the object is rewritten as the iTIP message it means:
//!
//! - `X-METHOD` if present (KOrganizer's extension, checklist #89);
//! - otherwise, when the UID names an object this mailbox organises and the sender is one of
//!   its attendees: REPLY, with that attendee's STATUS as PARTSTAT;
//! - when the sender is the organiser, the UID is stored and the component STATUS is
//!   DECLINED: CANCEL;
//! - when the sender is the organiser and this mailbox is among the attendees: REQUEST.
//!
//! The organiser is, in order: ORGANIZER, `X-ORGANIZER`, the `ATTENDEE;ROLE=ORGANIZER` line,
//! the `ROLE=OWNER` line, or the From address when none is named. The function works on the
//! object as calcard reads it, whether or not the vCalendar → iCalendar converter has run
//! first: the attendee `STATUS`/`RSVP=YES` parameters and `ROLE=ORGANIZER` lines the
//! converter would have mapped are mapped here too (group K's tables), and the rest of the
//! pipeline (trust, ordering) then runs in full on the result.

use super::object::{self, Doc};
use super::{Decision, Identity, Incoming, organizer_of, trust};
use crate::calendar::{CalAddress, ICalendar, Method, PartStat};
use calcard::icalendar::{ICalendarEntry, ICalendarParameterName, ICalendarProperty};

/// Whether the object is a vCalendar 1.0 object (or one converted from it that still carries
/// its scheduling hints: `X-METHOD` and no METHOD).
pub fn is_vcalendar(ical: &ICalendar) -> bool {
    let doc = Doc::from_ical(ical);
    let version = doc
        .root
        .iter()
        .find(|e| e.name == ICalendarProperty::Version)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text().map(str::to_string));
    version.as_deref() == Some("1.0") || x_method(&doc).is_some()
}

fn x_named<'a>(entries: &'a [ICalendarEntry], name: &str) -> Option<&'a ICalendarEntry> {
    entries
        .iter()
        .find(|e| matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case(name)))
}

fn x_method(doc: &Doc) -> Option<Method> {
    let from_root = x_named(&doc.root, "X-METHOD");
    let from_items = || {
        doc.items()
            .into_iter()
            .find_map(|i| x_named(&doc.nodes[i].comp.entries, "X-METHOD"))
    };
    from_root
        .or_else(from_items)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .map(Method::parse)
}

/// The address of a vCalendar ORGANIZER/ATTENDEE/X-ORGANIZER value: `mailto:addr`, a bare
/// addr-spec, or `Name <addr>` (checklist #90). A name without an address has none.
fn vcal_address(entry: &ICalendarEntry) -> Option<CalAddress> {
    let text = match entry.values.first()? {
        calcard::icalendar::ICalendarValue::Uri(uri) => uri.as_str()?.to_string(),
        other => other.as_text()?.to_string(),
    };
    match (text.find('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => CalAddress::parse(&text[open + 1..close]),
        _ => CalAddress::parse(&text).filter(|a| !a.email().contains(' ')),
    }
}

/// The display name of a `Name <addr>` value.
fn vcal_name(entry: &ICalendarEntry) -> Option<String> {
    let text = entry.values.first()?.as_text()?.to_string();
    let open = text.find('<')?;
    let name = text[..open].trim().trim_matches('"').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The attendees of a vCalendar component with their addresses.
fn vcal_attendees(
    comp: &calcard::icalendar::ICalendarComponent,
) -> Vec<(CalAddress, &ICalendarEntry)> {
    comp.properties(&ICalendarProperty::Attendee)
        .filter_map(|e| vcal_address(e).map(|a| (a, e)))
        .collect()
}

fn role(entry: &ICalendarEntry) -> Option<String> {
    object::param(entry, &ICalendarParameterName::Role).map(|r| r.to_ascii_uppercase())
}

/// The organiser a vCalendar object names, and the index of the ATTENDEE line that named it.
fn organizer(doc: &Doc) -> Option<CalAddress> {
    if let Some((address, _)) = organizer_of(doc) {
        return Some(address);
    }
    for index in doc.items() {
        let comp = &doc.nodes[index].comp;
        if let Some(address) = x_named(&comp.entries, "X-ORGANIZER").and_then(vcal_address) {
            return Some(address);
        }
    }
    for wanted in ["ORGANIZER", "OWNER"] {
        for index in doc.items() {
            let found = vcal_attendees(&doc.nodes[index].comp)
                .into_iter()
                .find(|(_, e)| role(e).as_deref() == Some(wanted));
            if let Some((address, _)) = found {
                return Some(address);
            }
        }
    }
    None
}

/// vCalendar attendee STATUS → PARTSTAT (checklist #91).
fn partstat_of_status(status: &str, todo: bool) -> PartStat {
    match status.trim().to_ascii_uppercase().as_str() {
        "ACCEPTED" | "CONFIRMED" => PartStat::Accepted,
        "TENTATIVE" => PartStat::Tentative,
        "DECLINED" => PartStat::Declined,
        "DELEGATED" => PartStat::Delegated,
        "COMPLETED" if todo => PartStat::Completed,
        _ => PartStat::NeedsAction,
    }
}

/// Rewrites the vCalendar attendee lines as iCalendar ones: the organiser's line becomes the
/// ORGANIZER, STATUS becomes PARTSTAT, RSVP=YES becomes RSVP=TRUE, values become `mailto:`.
fn normalise(doc: &mut Doc, organizer: &CalAddress) {
    for index in doc.items() {
        let comp = &mut doc.nodes[index].comp;
        let todo = super::build::is_todo(comp);
        comp.entries.retain(|e| {
            !(e.name == ICalendarProperty::Attendee
                && vcal_address(e).as_ref() == Some(organizer)
                && matches!(role(e).as_deref(), Some("ORGANIZER" | "OWNER")))
        });
        comp.entries.retain(|e| {
            !matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case("X-ORGANIZER") || n.eq_ignore_ascii_case("X-METHOD"))
        });
        if !object::has(comp, &ICalendarProperty::Organizer) {
            object::set_line(comp, &format!("ORGANIZER:{}", organizer.uri()));
        }
        for entry in comp.entries.iter_mut() {
            if entry.name != ICalendarProperty::Attendee {
                continue;
            }
            let status = entry.params.iter().find_map(|p| match &p.name {
                ICalendarParameterName::Other(n) if n.eq_ignore_ascii_case("STATUS") => {
                    p.value.as_text().map(str::to_string)
                }
                _ => None,
            });
            if let Some(status) = status
                && object::param(entry, &ICalendarParameterName::Partstat).is_none()
            {
                super::build::set_partstat(entry, &partstat_of_status(&status, todo));
            }
            entry.params.retain(|p| !matches!(&p.name, ICalendarParameterName::Other(n) if n.eq_ignore_ascii_case("STATUS") || n.eq_ignore_ascii_case("EXPECT")));
            if let Some(rsvp) = object::param(entry, &ICalendarParameterName::Rsvp) {
                let yes = matches!(rsvp.to_ascii_uppercase().as_str(), "YES" | "TRUE");
                object::set_param(
                    entry,
                    ICalendarParameterName::Rsvp,
                    if yes { "TRUE" } else { "FALSE" },
                );
            }
            if role(entry).is_some_and(|r| matches!(r.as_str(), "ATTENDEE" | "OWNER" | "DELEGATE"))
            {
                object::remove_param(entry, &ICalendarParameterName::Role);
            }
            if let Some(name) = vcal_name(entry)
                && object::param(entry, &ICalendarParameterName::Cn).is_none()
            {
                object::set_param(entry, ICalendarParameterName::Cn, &name);
            }
            if let Some(address) = vcal_address(entry)
                && let Some(line) = object::line(&format!("ATTENDEE:{}", address.uri()))
            {
                entry.values = line.values;
            }
        }
    }
}

/// Infers the method of a vCalendar object and returns it as the iTIP message it means, or
/// the decision that it schedules nothing.
pub fn schedule(
    stored: Option<&ICalendar>,
    incoming: &Incoming<'_>,
    me: &Identity,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ICalendar, Decision> {
    let mut doc = Doc::from_ical(incoming.ical);
    let authors = trust::authors(incoming.sender);
    let organizer = organizer(&doc).or_else(|| authors.first().cloned());
    let Some(organizer) = organizer else {
        return Err(Decision::nothing(
            "not_scheduling",
            "the vCalendar object names no organiser and the message no sender",
        ));
    };
    let stored_doc = stored.map(Doc::from_ical);
    let stored_organizer = stored_doc.as_ref().and_then(organizer_of).map(|(a, _)| a);
    let method = match x_method(&doc) {
        Some(method) => method,
        None => {
            let sender_is_organizer = authors.contains(&organizer);
            let i_organise = stored_organizer.as_ref().is_some_and(|o| me.is_me(o));
            let stored_attendees: Vec<CalAddress> = stored_doc
                .as_ref()
                .map(|s| {
                    s.items()
                        .into_iter()
                        .flat_map(|i| {
                            object::attendees(&s.nodes[i].comp)
                                .into_iter()
                                .map(|(a, _)| a)
                                .collect::<Vec<_>>()
                        })
                        .collect()
                })
                .unwrap_or_default();
            // The converter keeps vCalendar-only component STATUS values (DECLINED among
            // them) as X-VCAL-STATUS, since RFC 5545 has no such VEVENT status.
            let declined = doc.items().into_iter().any(|i| {
                let comp = &doc.nodes[i].comp;
                object::text(comp, &ICalendarProperty::Status)
                    .or_else(|| {
                        x_named(&comp.entries, "X-VCAL-STATUS")
                            .and_then(|e| e.values.first())
                            .and_then(|v| v.as_text())
                            .map(str::to_string)
                    })
                    .is_some_and(|s| s.eq_ignore_ascii_case("DECLINED"))
            });
            let me_invited = doc.items().into_iter().any(|i| {
                object::attendees(&doc.nodes[i].comp)
                    .iter()
                    .any(|(a, _)| me.is_me(a))
            });
            if i_organise && authors.iter().any(|a| stored_attendees.contains(a)) {
                Method::Reply
            } else if sender_is_organizer && stored.is_some() && declined {
                Method::Cancel
            } else if sender_is_organizer && me_invited {
                Method::Request
            } else {
                return Err(Decision::nothing(
                    "not_scheduling",
                    "a vCalendar object that is neither an invitation to this mailbox, a reply to its event, nor a cancellation: not scheduled",
                ));
            }
        }
    };
    if method == Method::Reply
        && let Some(o) = stored_organizer
    {
        normalise(&mut doc, &o);
    } else {
        normalise(&mut doc, &organizer);
    }
    // vCalendar has no DTSTAMP: the object's LAST-MODIFIED or DCREATED stands in, else the
    // time it is processed.
    for index in doc.items() {
        let comp = &mut doc.nodes[index].comp;
        if object::has(comp, &ICalendarProperty::Dtstamp) {
            continue;
        }
        let stamp = [ICalendarProperty::LastModified, ICalendarProperty::Created]
            .iter()
            .find_map(|p| object::text(comp, p))
            .or_else(|| {
                x_named(&comp.entries, "DCREATED")
                    .and_then(|e| e.values.first())
                    .and_then(|v| v.as_text())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| object::stamp(now));
        object::set_line(comp, &format!("DTSTAMP:{stamp}"));
    }
    if method == Method::Cancel {
        for index in doc.items() {
            object::set_line(&mut doc.nodes[index].comp, "STATUS:CANCELLED");
        }
    }
    doc.root.retain(|e| {
        !matches!(
            e.name,
            ICalendarProperty::Version | ICalendarProperty::Method
        ) && !matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case("X-METHOD"))
    });
    doc.root.extend(object::line("VERSION:2.0"));
    doc.root
        .extend(object::line(&format!("METHOD:{}", method.as_str())));
    Ok(doc.to_ical())
}

#[cfg(test)]
mod tests {
    //! The inference over objects the vCalendar converter has already turned into iCalendar
    //! (VERSION:2.0, no METHOD), as the pipeline hands them over with `vcalendar: true`.

    use super::super::{Identity, Incoming, Outcome, process};
    use crate::calendar::{CalAddress, Method, SchedulingView, parse};
    use crate::mail::SenderFacts;
    use crate::policy::PolicyAnswer;

    fn run(text: &str, stored: Option<&str>, from: &str, me: &str) -> super::super::Decision {
        let ical = parse(text).expect("valid").remove(0);
        let view = SchedulingView::new(&ical).expect("scheduling object");
        let stored = stored.map(|s| parse(s).expect("valid").remove(0));
        let sender = SenderFacts {
            from: Some(from.into()),
            ..SenderFacts::default()
        };
        let incoming = Incoming {
            ical: &ical,
            view: &view,
            method_param: None,
            sender: &sender,
            vcalendar: true,
        };
        let me = Identity::new(vec![CalAddress::parse(me).expect("address")], None);
        let now = "2027-01-02T08:00:00Z".parse().expect("time");
        process(stored.as_ref(), &incoming, &me, &PolicyAnswer::Accept, now)
    }

    #[test]
    fn converted_invitation_from_its_organizer_is_a_request() {
        let text = include_str!("../../tests/data/itip-vcal/converted-invitation.ics");
        let decision = run(text, None, "org@ext.test", "room@corp.test");
        assert_eq!(decision.method, Some(Method::Request));
        assert_eq!(decision.outcome, Outcome::Added);
        assert_eq!(decision.replies.len(), 1);
        assert_eq!(decision.replies[0].to.email(), "org@ext.test");
    }

    #[test]
    fn converted_object_from_an_attendee_of_my_event_is_a_reply() {
        let text = include_str!("../../tests/data/itip-vcal/converted-reply.ics");
        let stored = include_str!("../../tests/data/itip-vcal/stored-organised.ics");
        let decision = run(text, Some(stored), "a@ext.test", "me@corp.test");
        assert_eq!(decision.method, Some(Method::Reply));
        assert_eq!(decision.outcome, Outcome::Updated);
        let written = crate::calendar::write(decision.store.as_ref().expect("stored"));
        assert!(written.contains("PARTSTAT=TENTATIVE"), "{written}");
    }

    #[test]
    fn converted_object_from_a_stranger_schedules_nothing() {
        let text = include_str!("../../tests/data/itip-vcal/converted-invitation.ics");
        let decision = run(text, None, "x@evil.test", "me@corp.test");
        assert_eq!(decision.outcome, Outcome::NoAction);
        assert_eq!(decision.reason.code, "not_scheduling");
    }
}
