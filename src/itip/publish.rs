//! PUBLISH received (RFC 5546 §3.2.1): an object published by its organiser, with no reply
//! expected. Imported only when the mailbox opted in (Cyrus `:allowpublic`); a resource
//! never books from it and never answers. ATTENDEE lines are ignored (the table says 0).

use super::object::{self, Key, Order};
use super::{Context, Decision, Outcome, Reason, organizer_of, same_organizer, trust};
use calcard::icalendar::ICalendarParameterName;

/// PUBLISH received.
pub fn process_publish(cx: &Context<'_>) -> Decision {
    if !cx.me.settings.accept_publish {
        return Decision::nothing(
            "publish_not_accepted",
            "PUBLISH objects are not imported by this mailbox (no opt-in); nothing is booked or answered",
        );
    }
    let inc = cx.incoming_doc();
    let Some((organizer, org_entry)) = organizer_of(&inc) else {
        return Decision::rejected("no_organizer", "a PUBLISH must name its ORGANIZER");
    };
    let sent_by = object::param_addresses(&org_entry, &ICalendarParameterName::SentBy);
    if !trust::acts_for(cx.incoming.sender, &organizer, sent_by.first()) {
        return Decision::rejected(
            "untrusted_sender",
            format!(
                "From {} is not the ORGANIZER {} of the published object",
                cx.from(),
                organizer.email()
            ),
        );
    }
    let stored = cx.stored_doc();
    if let Some(old) = &stored {
        if !same_organizer(old, &organizer) {
            return Decision::rejected(
                "organizer_changed",
                "the stored object has another ORGANIZER",
            );
        }
        if let (Some(new_m), Some(old_m)) = (inc.master(), old.master()) {
            let (key, old_key) = (
                Key::of(&inc.nodes[new_m].comp),
                Key::of(&old.nodes[old_m].comp),
            );
            match object::order(&key, &old_key) {
                Order::Newer => {}
                Order::Same => {
                    return Decision::nothing("duplicate", format!("{key} was already imported"));
                }
                Order::Older => {
                    return Decision::nothing(
                        "stale",
                        format!("{key} is older than the stored {old_key}"),
                    );
                }
            }
        }
    }
    let mut doc = inc.clone();
    doc.strip_method();
    for index in doc.items() {
        object::strip_transport_data(&mut doc.nodes[index].comp);
    }
    Decision {
        method: None,
        outcome: if stored.is_some() {
            Outcome::Updated
        } else {
            Outcome::Added
        },
        reason: Reason {
            code: "published",
            text: "the published object is imported; nothing is booked or answered".into(),
        },
        store: Some(doc.to_ical()),
        replies: Vec::new(),
    }
}
