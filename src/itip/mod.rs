//! The iTIP engine (RFC 5546): a pure function from (stored object, incoming object, sender
//! facts, mailbox identity, policy answer, `now`) to (new stored object, outgoing iTIP
//! messages, outcome with its reason). It does no I/O and reads no clock.
//!
//! One entry point, [`process`], checks what every method shares (structure, identity of the
//! object) and dispatches by method to a module named after it, as sabre/vobject's broker
//! does, so a reader finds the handling of a method by its name:
//!
//! - attendee side (this mailbox is invited): [`request`], [`add`], [`cancel`],
//!   [`declinecounter`], [`publish`], and [`freebusy`] (a VFREEBUSY REQUEST answered from the
//!   busy index; the pipeline calls it directly, with the index as a function);
//! - organiser side (this mailbox organises the object): [`reply`], [`counter`], [`refresh`];
//! - [`vcal`] infers the method of a vCalendar 1.0 object, which has none;
//! - [`trust`] decides who may send what; [`object`] is the editable model of an object and
//!   its ordering keys; [`build`] writes the outgoing messages.
//!
//! The project decisions at the head of the iTIP checklist override RFC 5546 where they
//! differ: the body's METHOD wins over the Content-Type parameter, a resource answers every
//! request it acts on, CANCEL marks and never deletes, and every message ends in one of the
//! five [`Outcome`]s with a reason code.

pub mod add;
pub mod build;
pub mod cancel;
pub mod counter;
pub mod declinecounter;
pub mod freebusy;
pub mod object;
pub mod publish;
pub mod refresh;
pub mod reply;
pub mod request;
pub mod trust;
pub mod vcal;

use crate::calendar::{CalAddress, ComponentKind, ICalendar, Method, PartStat, SchedulingView};
use crate::mail::SenderFacts;
use crate::policy::PolicyAnswer;
use calcard::icalendar::ICalendarParameterName;
use chrono::{DateTime, Utc};
use object::{Doc, Zones};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// The outcome vocabulary of every message (RFC 9671's idea), in the ledger, logs and CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The store holds a new object.
    Added,
    /// A stored object changed.
    Updated,
    /// Nothing changed: stale, duplicate, or nothing for this mailbox to do.
    NoAction,
    /// Refused for trust or validity.
    Rejected,
    /// The message could not be read or processed.
    Error,
}

impl Outcome {
    /// The outcome's name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::NoAction => "no_action",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the engine decided what it did: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// A stable code (`stale`, `untrusted_sender`, ...) for scripts and metrics.
    pub code: &'static str,
    /// A sentence for people.
    pub text: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

/// When a mailbox answers a REQUEST (project decision 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyMode {
    /// Answer every request acted on, whatever RSVP says (resources: organisers rely on it).
    #[default]
    Always,
    /// Answer only when the request asks for it (`RSVP=TRUE` on this mailbox).
    Rsvp,
    /// Never answer (a silent mirror).
    Never,
}

/// How a mailbox behaves, beyond who it is. The defaults are a resource's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// When REQUESTs are answered.
    pub reply: ReplyMode,
    /// Whether PUBLISH objects are imported (opt-in, RFC 5546 §3.2.1; Cyrus `:allowpublic`).
    pub accept_publish: bool,
    /// Whether a COUNTER to an object this mailbox organises is answered with DECLINECOUNTER
    /// (otherwise it is only recorded for a person to decide).
    pub decline_counters: bool,
}

/// Who this mailbox is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The mailbox address first, then its aliases; all of them are "me".
    pub addresses: Vec<CalAddress>,
    /// The display name used in replies ("Room 1").
    pub name: Option<String>,
    /// How it behaves.
    pub settings: Settings,
}

impl Identity {
    /// An identity with the default (resource) settings.
    pub fn new(addresses: Vec<CalAddress>, name: Option<String>) -> Self {
        Identity {
            addresses,
            name,
            settings: Settings::default(),
        }
    }

    /// Whether `address` is one of this mailbox's addresses.
    pub fn is_me(&self, address: &CalAddress) -> bool {
        self.addresses.contains(address)
    }
}

/// One incoming iTIP object.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// The object as parsed.
    pub ical: &'a ICalendar,
    /// Its scheduling facts.
    pub view: &'a SchedulingView,
    /// The Content-Type `method` parameter of the part it came in, if any.
    pub method_param: Option<&'a str>,
    /// Who sent the message.
    pub sender: &'a SenderFacts,
    /// The object came as vCalendar 1.0 (`text/x-vcalendar`, a `.vcs` part, `VERSION:1.0`),
    /// possibly already converted to iCalendar: it has no METHOD and [`vcal`] infers one.
    pub vcalendar: bool,
}

/// An iTIP message the engine wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Which of this mailbox's addresses sends it (the one that was invited).
    pub from: CalAddress,
    /// The calendar user it goes to (the ORGANIZER for a REPLY).
    pub to: CalAddress,
    /// That recipient's display name, if known.
    pub to_name: Option<String>,
    /// The iTIP method of the message.
    pub method: Method,
    /// The PARTSTAT a REPLY carries (of its first component).
    pub partstat: Option<PartStat>,
    /// The RECURRENCE-ID of a reply about one instance only.
    pub recurrence_id: Option<String>,
    /// The UID the message is about.
    pub uid: String,
    /// The SEQUENCE being answered (echoed, never incremented).
    pub sequence: i64,
    /// The DTSTAMP of the message being answered: with the rest, it makes the reply's
    /// Message-ID deterministic.
    pub dtstamp: Option<String>,
    /// The SUMMARY, for the subject line.
    pub summary: Option<String>,
    /// The iTIP object itself.
    pub ical: ICalendar,
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What happened.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// The object to store, when the store changes.
    pub store: Option<ICalendar>,
    /// The messages to send.
    pub replies: Vec<Outgoing>,
    /// The method the message was handled as (inferred for vCalendar objects).
    pub method: Option<Method>,
}

impl Decision {
    /// A decision that changes nothing and sends nothing.
    pub fn no_change(outcome: Outcome, code: &'static str, text: impl Into<String>) -> Self {
        Decision {
            outcome,
            reason: Reason {
                code,
                text: text.into(),
            },
            store: None,
            replies: Vec::new(),
            method: None,
        }
    }

    fn rejected(code: &'static str, text: impl Into<String>) -> Self {
        Decision::no_change(Outcome::Rejected, code, text)
    }

    fn nothing(code: &'static str, text: impl Into<String>) -> Self {
        Decision::no_change(Outcome::NoAction, code, text)
    }
}

/// Everything one decision reads, handed to the method handlers.
pub struct Context<'a> {
    /// The stored object for the UID, if any.
    pub stored: Option<&'a ICalendar>,
    /// The message being decided.
    pub incoming: &'a Incoming<'a>,
    /// Who this mailbox is and how it behaves.
    pub me: &'a Identity,
    /// The policy's answer to a request.
    pub policy: &'a PolicyAnswer,
    /// The clock, as an argument.
    pub now: DateTime<Utc>,
}

impl Context<'_> {
    /// The incoming object as an editable tree.
    fn incoming_doc(&self) -> Doc {
        Doc::from_ical(self.incoming.ical)
    }

    /// The stored object as an editable tree.
    fn stored_doc(&self) -> Option<Doc> {
        self.stored.map(Doc::from_ical)
    }

    /// A TZID resolver over the incoming object's and the stored object's time zones.
    fn zones(&self) -> Zones<'_> {
        let mut sources = vec![self.incoming.ical];
        sources.extend(self.stored);
        Zones::new(sources)
    }

    /// The SENT-BY of the incoming ORGANIZER `entry` that may speak for the organiser. The
    /// message writes its own SENT-BY, so for an object this mailbox already stores it is
    /// believed only when the stored ORGANIZER names the same SENT-BY: otherwise anyone could
    /// cancel or change a booking by naming themselves the organiser's assistant. A first
    /// REQUEST has nothing to take over, and its SENT-BY is believed (checklist #72).
    fn trusted_sent_by(&self, entry: &calcard::icalendar::ICalendarEntry) -> Option<CalAddress> {
        let claimed = object::param_addresses(entry, &ICalendarParameterName::SentBy)
            .into_iter()
            .next()?;
        let Some(stored) = self.stored_doc() else {
            return Some(claimed);
        };
        let (_, stored_entry) = organizer_of(&stored)?;
        object::param_addresses(&stored_entry, &ICalendarParameterName::SentBy)
            .contains(&claimed)
            .then_some(claimed)
    }

    /// The From address of the message.
    fn from(&self) -> String {
        self.incoming
            .sender
            .from
            .clone()
            .unwrap_or_else(|| "(no From)".to_string())
    }
}

/// The method a message means: the body's METHOD, whatever the Content-Type parameter says
/// (the project's decision 1; a mismatch is recorded in the reason). A body without METHOD
/// is not an iTIP object, even when the part's parameter names one (checklist #4).
pub fn effective_method(incoming: &Incoming<'_>) -> Option<Method> {
    incoming.view.method.clone()
}

/// Decides what one incoming iTIP object does.
pub fn process(
    stored: Option<&ICalendar>,
    incoming: &Incoming<'_>,
    identity: &Identity,
    policy: &PolicyAnswer,
    now: DateTime<Utc>,
) -> Decision {
    if (incoming.vcalendar || vcal::is_vcalendar(incoming.ical)) && incoming.view.method.is_none() {
        return match vcal::schedule(stored, incoming, identity, now) {
            Ok(scheduled) => match SchedulingView::new(&scheduled) {
                Ok(view) => {
                    let inner = Incoming {
                        ical: &scheduled,
                        view: &view,
                        method_param: None,
                        sender: incoming.sender,
                        vcalendar: false,
                    };
                    let mut decision = process(stored, &inner, identity, policy, now);
                    decision.reason.text =
                        format!("{} (vCalendar 1.0, method inferred)", decision.reason.text);
                    decision
                }
                Err(e) => Decision::rejected("invalid_object", e.to_string()),
            },
            Err(decision) => decision,
        };
    }
    let Some(method) = effective_method(incoming) else {
        if let Some(param) = incoming.method_param {
            return Decision::rejected(
                "missing_method",
                format!("the part says method={param} but the object carries no METHOD property"),
            );
        }
        return Decision::nothing(
            "no_method",
            "the object carries no METHOD and the part no method parameter: not a scheduling message",
        );
    };
    let cx = Context {
        stored,
        incoming,
        me: identity,
        policy,
        now,
    };
    if let Err(decision) = validate(&cx, &method) {
        return *decision;
    }
    let mut decision = match method.clone() {
        Method::Request => request::process_request(&cx),
        Method::Add => add::process_add(&cx),
        Method::Cancel => cancel::process_cancel(&cx),
        Method::DeclineCounter => declinecounter::process_declinecounter(&cx),
        Method::Publish => publish::process_publish(&cx),
        Method::Reply => reply::process_reply(&cx),
        Method::Counter => counter::process_counter(&cx),
        Method::Refresh => refresh::process_refresh(&cx),
        Method::Other(name) => Decision::rejected(
            "unsupported_method",
            format!("METHOD:{name} is not an iTIP method"),
        ),
    };
    decision.method = Some(method.clone());
    if let (Some(param), Some(body)) = (incoming.method_param, &incoming.view.method)
        && !param.eq_ignore_ascii_case(body.as_str())
    {
        decision.reason.text = format!(
            "{} (the Content-Type said method={param}; the body's METHOD:{body} was used)",
            decision.reason.text
        );
    }
    decision
}

/// The checks every method shares (RFC 5546 §3.1, §3.2 tables; checklist #95–#97, #100).
fn validate(cx: &Context<'_>, method: &Method) -> Result<(), Box<Decision>> {
    let view = cx.incoming.view;
    if !matches!(view.kind, ComponentKind::Event | ComponentKind::Todo) {
        return Err(Box::new(Decision::rejected(
            "unsupported_component",
            format!(
                "{} {} is not scheduled by this mailbox",
                method,
                view.kind.as_str()
            ),
        )));
    }
    let doc = cx.incoming_doc();
    let zones = cx.zones();
    let mut organizers: Vec<CalAddress> = Vec::new();
    let mut rids = HashSet::new();
    let mut masters = 0;
    for index in doc.items() {
        let comp = &doc.nodes[index].comp;
        if let Some(org) = object::organizer(comp)
            && !organizers.contains(&org)
        {
            organizers.push(org);
        }
        match comp.property(&calcard::icalendar::ICalendarProperty::RecurrenceId) {
            None => masters += 1,
            Some(entry) => {
                let Some(rid) = zones.rid_of(entry) else {
                    return Err(Box::new(Decision::rejected(
                        "invalid_recurrence_id",
                        "a RECURRENCE-ID could not be read (unknown TZID or malformed value)",
                    )));
                };
                if !rids.insert(rid) {
                    return Err(Box::new(Decision::rejected(
                        "duplicate_instance",
                        "two components carry the same RECURRENCE-ID",
                    )));
                }
            }
        }
    }
    if organizers.len() > 1 {
        return Err(Box::new(Decision::rejected(
            "organizer_mismatch",
            format!(
                "the components name different ORGANIZERs ({} and {})",
                organizers[0].email(),
                organizers[1].email()
            ),
        )));
    }
    if masters > 1 {
        return Err(Box::new(Decision::rejected(
            "duplicate_instance",
            "the object carries two master components",
        )));
    }
    if let Some(stored) = cx.stored
        && let Ok(old) = SchedulingView::new(stored)
        && old.kind != view.kind
    {
        return Err(Box::new(Decision::rejected(
            "component_changed",
            format!(
                "UID {} is stored as a {} and cannot become a {}",
                view.uid,
                old.kind.as_str(),
                view.kind.as_str()
            ),
        )));
    }
    Ok(())
}

/// The ORGANIZER of the object: of the incoming components, else of the stored ones.
fn organizer_of(doc: &Doc) -> Option<(CalAddress, calcard::icalendar::ICalendarEntry)> {
    doc.items().into_iter().find_map(|i| {
        let entry = doc.nodes[i]
            .comp
            .property(&calcard::icalendar::ICalendarProperty::Organizer)?;
        Some((object::address(entry)?, entry.clone()))
    })
}

/// Whether the stored object names `organizer` as its ORGANIZER (case-insensitively); a
/// stored object without one (an import) accepts any.
fn same_organizer(stored: &Doc, organizer: &CalAddress) -> bool {
    organizer_of(stored).is_none_or(|(old, _)| &old == organizer)
}
