//! DECLINECOUNTER received by an attendee (RFC 5546 §3.2.8): the organiser refused a
//! counter-proposal. This mailbox never sends COUNTER (a resource answers, it does not
//! negotiate), so there is never a pending proposal to mark declined: after the trust check
//! the message changes nothing.

use super::{Context, Decision, organizer_of, same_organizer, trust};

/// DECLINECOUNTER received.
pub fn process_declinecounter(cx: &Context<'_>) -> Decision {
    let inc = cx.incoming_doc();
    let Some((organizer, org_entry)) = organizer_of(&inc) else {
        return Decision::rejected("no_organizer", "a DECLINECOUNTER must name its ORGANIZER");
    };
    let sent_by = cx.trusted_sent_by(&org_entry);
    if !trust::acts_for(cx.incoming.sender, &organizer, sent_by.as_ref()) {
        return Decision::rejected(
            "untrusted_sender",
            format!(
                "From {} is not the ORGANIZER {}: only the organiser declines a counter",
                cx.from(),
                organizer.email()
            ),
        );
    }
    let Some(stored) = cx.stored_doc() else {
        return Decision::nothing(
            "unknown_uid",
            "DECLINECOUNTER for a UID this mailbox does not hold",
        );
    };
    if !same_organizer(&stored, &organizer) {
        return Decision::rejected(
            "organizer_changed",
            "the stored object has another ORGANIZER",
        );
    }
    Decision::nothing(
        "no_counter_pending",
        "this mailbox sent no COUNTER for this event; the event is unchanged",
    )
}
