//! Ordering properties of the iTIP engine (RFC 5546 §2.1.5; project decision 4): whatever
//! order a set of REQUEST and CANCEL messages for one UID arrives in, the stored object ends
//! in the state that applying them in order of (SEQUENCE, DTSTAMP) gives.
//!
//! The messages are generated from a template file, `tests/data/itip-ordering/message.ics`,
//! with the method, SEQUENCE, DTSTAMP and SUMMARY filled in.

use imipd::calendar::{self, CalAddress, ICalendar, SchedulingView};
use imipd::cli::show;
use imipd::itip::{self, Identity, Incoming};
use imipd::mail::SenderFacts;
use imipd::policy::PolicyAnswer;
use proptest::prelude::*;
use serde_json::Value;

#[derive(Debug, Clone)]
struct Message {
    cancel: bool,
    sequence: u8,
    stamp: u8,
}

fn text(message: &Message) -> String {
    let template = include_str!("data/itip-ordering/message.ics");
    template
        .replace(
            "{METHOD}",
            if message.cancel { "CANCEL" } else { "REQUEST" },
        )
        .replace("{SEQUENCE}", &message.sequence.to_string())
        .replace("{DTSTAMP}", &format!("20270101T{:02}0000Z", message.stamp))
        .replace(
            "{STATUS}",
            if message.cancel {
                "STATUS:CANCELLED\r\n"
            } else {
                ""
            },
        )
        .replace(
            "{SUMMARY}",
            &format!("Review s{} t{}", message.sequence, message.stamp),
        )
}

fn apply(stored: Option<ICalendar>, message: &Message) -> Option<ICalendar> {
    let ical = calendar::parse(&text(message))
        .expect("the template parses")
        .remove(0);
    let view = SchedulingView::new(&ical).expect("the template is a scheduling object");
    let sender = SenderFacts {
        from: Some("org@ext.test".into()),
        ..SenderFacts::default()
    };
    let incoming = Incoming {
        ical: &ical,
        view: &view,
        method_param: Some(view.method.as_ref().map_or("", |m| m.as_str())),
        sender: &sender,
        vcalendar: false,
    };
    let me = Identity::new(
        vec![CalAddress::parse("room@corp.test").expect("address")],
        None,
    );
    let now = "2027-01-02T08:00:00Z".parse().expect("time");
    let decision = itip::process(stored.as_ref(), &incoming, &me, &PolicyAnswer::Accept, now);
    decision.store.or(stored)
}

/// What ordering decides: the key the object carries and whether it is cancelled; and, when
/// the newest message is a REQUEST, its content.
fn state(ical: &Option<ICalendar>, newest: &Message) -> Value {
    let Some(ical) = ical else {
        return Value::Null;
    };
    let summary = show::summary(ical);
    let mut out = serde_json::json!({
        "status": summary["status"],
        "sequence": summary["sequence"],
        "dtstamp": summary["dtstamp"],
    });
    if !newest.cancel {
        out["summary"] = summary["summary"].clone();
    }
    out
}

fn messages() -> impl Strategy<Value = Vec<Message>> {
    proptest::collection::btree_set((0u8..4, 0u8..6), 1..7).prop_flat_map(|keys| {
        let keys: Vec<(u8, u8)> = keys.into_iter().collect();
        let n = keys.len();
        proptest::collection::vec(any::<bool>(), n).prop_map(move |cancels| {
            keys.iter()
                .zip(cancels)
                .map(|((sequence, stamp), cancel)| Message {
                    cancel,
                    sequence: *sequence,
                    stamp: *stamp,
                })
                .collect()
        })
    })
}

proptest! {
    #[test]
    fn any_arrival_order_ends_in_the_state_of_the_ordered_sequence(
        (set, order) in messages().prop_flat_map(|set| {
            let n = set.len();
            (Just(set), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let mut sorted = set.clone();
        sorted.sort_by_key(|m| (m.sequence, m.stamp));
        let newest = sorted.last().expect("at least one message").clone();
        let in_order = sorted.iter().fold(None, apply);
        let shuffled = order.iter().map(|i| set[*i].clone()).fold(None, |s, m| apply(s, &m));
        prop_assert_eq!(state(&shuffled, &newest), state(&in_order, &newest));
        let expected_status = if newest.cancel { Value::String("CANCELLED".into()) } else { Value::Null };
        prop_assert_eq!(&state(&shuffled, &newest)["status"], &expected_status);
        prop_assert_eq!(&state(&shuffled, &newest)["sequence"], &Value::from(newest.sequence));
    }

    #[test]
    fn applying_the_same_message_twice_changes_nothing(set in messages()) {
        let once = set.iter().fold(None, apply);
        let newest = set.iter().max_by_key(|m| (m.sequence, m.stamp)).expect("one message").clone();
        let twice = set.iter().fold(once.clone(), apply);
        prop_assert_eq!(state(&twice, &newest), state(&once, &newest));
    }
}
