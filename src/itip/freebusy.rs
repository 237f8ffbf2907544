//! VFREEBUSY by mail (RFC 5546 §3.3): a `METHOD:REQUEST` VFREEBUSY that names this mailbox
//! as an ATTENDEE is answered with a `METHOD:REPLY` VFREEBUSY (§3.3.3) for the asked range,
//! from the busy index. Nothing is stored.
//!
//! The same trust rules as a booking apply: the message must come from the ORGANIZER (or
//! its SENT-BY), and the policy's "who may book" rules (deny and allow lists, external
//! organisers, authenticated senders) decide whether the organiser may see the mailbox's
//! busy time. A refused organiser gets a REPLY with the policy's REQUEST-STATUS (`3.8;No
//! authority`) and its reason, and no busy time, as a refused booking gets a decline. The
//! range is bounded ([`crate::publish::freebusy_range`]): DTSTART and DTEND must be UTC
//! (§3.3.2), at most [`crate::publish::MAX_FREEBUSY_DAYS`] days are answered, and the REPLY's
//! DTSTART/DTEND (with a COMMENT) say when less than asked was answered.
//!
//! Like the policy, this takes the busy index as a function, so it stays free of I/O. The
//! pipeline adds a rate limit on top ([`crate::publish::RateLimit`]: at most
//! [`crate::publish::FREEBUSY_ANSWERS_PER_HOUR`] answers per requester and mailbox an hour;
//! more are recorded as `freebusy_rate_limited` and not answered).

use super::{Decision, Identity, Incoming, Outgoing, Reason, trust};
use crate::calendar::{self, CalAddress, Method};
use crate::itip::build::escape_text;
use crate::itip::object;
use crate::policy::{Policy, Request, rules};
use crate::publish::{self, RangeError};
use calcard::icalendar::ICalendarProperty;
use chrono::{DateTime, Utc};

/// What the busy index knows for the mailbox: the horizon (Unix seconds, 0: none) and how
/// many days ahead it is meant to reach.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    /// The expansion horizon of the mailbox's busy index.
    pub horizon: i64,
    /// The policy's index days.
    pub days: u32,
}

/// The busy periods `[from, to)` of the mailbox, merged and sorted (Unix seconds).
pub type Periods<'a, E> = dyn Fn(DateTime<Utc>, DateTime<Utc>) -> Result<Vec<(i64, i64)>, E> + 'a;

/// Answers one incoming VFREEBUSY. `periods(from, to)` gives the merged busy periods of the
/// mailbox in `[from, to)` ([`crate::publish::freebusy_periods`]).
pub fn process_freebusy<E>(
    incoming: &Incoming<'_>,
    identity: &Identity,
    policy: &Policy,
    index: Index,
    periods: &Periods<'_, E>,
    now: DateTime<Utc>,
) -> Result<Decision, E> {
    let view = incoming.view;
    let mut decision = match &view.method {
        Some(Method::Request) => request(incoming, identity, policy, index, periods, now)?,
        Some(method) => Decision::nothing(
            "freebusy_not_requested",
            format!(
                "a VFREEBUSY {method} asks nothing of this mailbox; only a REQUEST is answered"
            ),
        ),
        None => Decision::nothing(
            "no_method",
            "the VFREEBUSY carries no METHOD: not a scheduling message",
        ),
    };
    decision.method = view.method.clone();
    Ok(decision)
}

fn request<E>(
    incoming: &Incoming<'_>,
    identity: &Identity,
    policy: &Policy,
    index: Index,
    periods: &Periods<'_, E>,
    now: DateTime<Utc>,
) -> Result<Decision, E> {
    let main = incoming.view.main();
    let Some(organizer) = main.organizer.clone() else {
        return Ok(Decision::rejected(
            "missing_organizer",
            "a VFREEBUSY REQUEST must name its ORGANIZER (RFC 5546 §3.3.2)",
        ));
    };
    if !trust::acts_for(incoming.sender, &organizer, main.organizer_sent_by.as_ref()) {
        return Ok(Decision::rejected(
            "untrusted_sender",
            format!(
                "the message is from {}, not from the ORGANIZER {} or its SENT-BY",
                incoming.sender.from.as_deref().unwrap_or("(no From)"),
                organizer.email()
            ),
        ));
    }
    let Some(me) = main
        .attendees
        .iter()
        .map(|a| a.address.clone())
        .find(|a| identity.is_me(a))
    else {
        return Ok(Decision::nothing(
            "not_an_attendee",
            "the VFREEBUSY REQUEST does not ask for this mailbox's free/busy time (no ATTENDEE is this mailbox)",
        ));
    };
    if identity.settings.reply == super::ReplyMode::Never {
        return Ok(Decision::nothing(
            "replies_off",
            "this mailbox sends no replies, free/busy answers included",
        ));
    }
    let Some(comp) = incoming.ical.components.get(main.index) else {
        return Ok(Decision::rejected(
            "invalid_object",
            "the VFREEBUSY is missing",
        ));
    };
    let bound = |name: ICalendarProperty| -> Result<DateTime<Utc>, String> {
        let text = object::text(comp, &name)
            .ok_or_else(|| format!("the VFREEBUSY REQUEST has no {}", name.as_str()))?;
        publish::parse_utc(&text).map_err(|e| format!("{}: {e}", name.as_str()))
    };
    let (start, end) = match (
        bound(ICalendarProperty::Dtstart),
        bound(ICalendarProperty::Dtend),
    ) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(e), _) | (_, Err(e)) => {
            return Ok(Decision::rejected(
                "invalid_range",
                format!("{e} (RFC 5546 §3.3.2: DTSTART and DTEND in UTC)"),
            ));
        }
    };
    let reply = |status: &str,
                 comment: Option<String>,
                 range: (DateTime<Utc>, DateTime<Utc>),
                 busy: &[(i64, i64)]| {
        reply_object(
            incoming,
            &organizer,
            &me,
            range,
            busy,
            status,
            comment.as_deref(),
            now,
        )
    };
    let request = Request {
        ical: incoming.ical,
        organizer: Some(&organizer),
        me: &identity.addresses,
        sender: incoming.sender,
        organizer_of: None,
    };
    if let Some(refused) = rules::who(policy, &request) {
        let reason = refused.comment().unwrap_or("declined").to_string();
        let status = refused
            .request_status()
            .unwrap_or(crate::policy::STATUS_NO_AUTHORITY)
            .to_string();
        return Ok(
            match reply(&status, Some(reason.clone()), (start, end), &[]) {
                Some(outgoing) => Decision {
                    outcome: super::Outcome::NoAction,
                    reason: Reason {
                        code: "freebusy_refused",
                        text: format!("free/busy not given to {}: {reason}", organizer.email()),
                    },
                    store: None,
                    replies: vec![outgoing],
                    method: None,
                },
                None => Decision::no_change(
                    super::Outcome::Error,
                    "compose_error",
                    "the free/busy REPLY could not be written",
                ),
            },
        );
    }
    let (from, to) = match publish::freebusy_range(
        Some(start),
        Some(end),
        now,
        index.horizon,
        index.days,
    ) {
        Ok(range) => range,
        Err(e @ (RangeError::Empty | RangeError::NotUtc(_))) => {
            return Ok(Decision::rejected(
                "invalid_range",
                format!(
                    "{e}: the range {}–{} holds no time this mailbox can answer for (at most {} days, from a day ago to its index horizon)",
                    object::stamp(start),
                    object::stamp(end),
                    publish::MAX_FREEBUSY_DAYS
                ),
            ));
        }
    };
    let busy = periods(from, to)?;
    let cut = (from, to) != (start, end);
    let comment = cut.then(|| {
        format!(
            "free/busy answered for {}–{} only: at most {} days are answered, from a day ago up to {} days ahead",
            object::stamp(from),
            object::stamp(to),
            publish::MAX_FREEBUSY_DAYS,
            index.days
        )
    });
    Ok(match reply("2.0;Success", comment, (from, to), &busy) {
        Some(outgoing) => Decision {
            outcome: super::Outcome::NoAction,
            reason: Reason {
                code: "freebusy_replied",
                text: format!(
                    "free/busy for {}–{} sent to {}: {} busy period{}",
                    object::stamp(from),
                    object::stamp(to),
                    organizer.email(),
                    busy.len(),
                    if busy.len() == 1 { "" } else { "s" }
                ),
            },
            store: None,
            replies: vec![outgoing],
            method: None,
        },
        None => Decision::no_change(
            super::Outcome::Error,
            "compose_error",
            "the free/busy REPLY could not be written",
        ),
    })
}

/// The REPLY (RFC 5546 §3.3.3): ATTENDEE (this mailbox), DTSTAMP, DTSTART, DTEND, FREEBUSY,
/// ORGANIZER and UID of the request, REQUEST-STATUS, and a COMMENT when there is more to say.
#[allow(clippy::too_many_arguments)]
fn reply_object(
    incoming: &Incoming<'_>,
    organizer: &CalAddress,
    me: &CalAddress,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    busy: &[(i64, i64)],
    status: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Outgoing> {
    let main = incoming.view.main();
    let uid = incoming.view.uid.to_string();
    let comment = comment
        .map(|c| format!("COMMENT:{}\r\n", escape_text(c)))
        .unwrap_or_default();
    let text = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd//freebusy//EN\r\nMETHOD:REPLY\r\n\
BEGIN:VFREEBUSY\r\nUID:{uid}\r\nDTSTAMP:{stamp}\r\nORGANIZER:{organizer}\r\nATTENDEE:{me}\r\n\
DTSTART:{start}\r\nDTEND:{end}\r\n{lines}REQUEST-STATUS:{status}\r\n{comment}END:VFREEBUSY\r\nEND:VCALENDAR\r\n",
        uid = escape_text(&uid),
        stamp = object::stamp(now),
        organizer = organizer.uri(),
        me = me.uri(),
        start = object::stamp(from),
        end = object::stamp(to),
        lines = publish::freebusy_lines(busy),
    );
    let ical = calendar::parse(&text).ok()?.into_iter().next()?;
    Some(Outgoing {
        from: me.clone(),
        to: organizer.clone(),
        to_name: main.organizer_name.clone(),
        method: Method::Reply,
        partstat: None,
        recurrence_id: None,
        uid,
        sequence: 0,
        dtstamp: main.dtstamp.clone(),
        summary: Some(format!(
            "Free/busy {} – {}",
            from.format("%Y-%m-%d %H:%M UTC"),
            to.format("%Y-%m-%d %H:%M UTC")
        )),
        ical,
    })
}
