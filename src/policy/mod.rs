//! Resource policy: what a mailbox answers to a request it may act on.
//!
//! The engine receives the policy's answer as a value, so it stays a pure function. The
//! rules that compute the answer live here, one function per rule family, evaluated in a
//! fixed order (the first rule that declines gives the reason):
//!
//! 1. automation `manual`: store, answer nothing, decide nothing;
//! 2. who may use the resource at all: authenticated senders (DMARC), deny list, allow
//!    list, external organisers. These are absolute: an organiser they refuse is declined
//!    (REQUEST-STATUS 3.8) whatever organiser class below names them, so that a deny entry
//!    can never be undone by a class list;
//! 3. automation `decline`;
//! 4. recurring meetings allowed or not;
//! 5. time rules per instance: no bookings in the past, duration, working hours, the
//!    booking window (and, for series, the scheduling horizon);
//! 6. conflicts over the busy index, with capacity and the series thresholds (a series
//!    within them is accepted with each conflicting instance declined on its own; a single
//!    booking in conflict may get a COUNTER with the next free slot);
//! 7. the organiser's class (Exchange's BookInPolicy, RequestInPolicy, RequestOutOfPolicy
//!    and their `All…` switches), see [`Policy::class_answer`]: a request that rules 4–6
//!    decline is *out of policy*; one of an organiser allowed to request out of policy is
//!    held TENTATIVE for a delegate instead of declined. A request in policy is booked when
//!    its organiser may book in policy, held TENTATIVE for a delegate when they may only
//!    request, and declined (3.8) otherwise;
//! 8. automation `tentative` turns an in-policy booking into TENTATIVE.
//!
//! Every decline carries a REQUEST-STATUS (RFC 5546 §3.6) and a sentence a person can read
//! ("declined: conflicts with an existing booking on Tue 3 Dec 15:00–16:00 UTC"); the engine
//! sends both in the REPLY (COMMENT and REQUEST-STATUS) and the pipeline puts the sentence
//! in the reply's text.
//!
//! A request held for a delegate is answered TENTATIVE with the reason (REQUEST-STATUS 2.0),
//! and each of the policy's `delegates` gets a notice with the booking attached. What the
//! stored copy keeps is the [`privacy`] module's: [`privacy::scrub`] is the one function
//! that turns a booking into what viewers of the resource may see.
//!
//! The configuration keys are named after what they do; where Exchange's resource booking
//! (Set-CalendarProcessing) has the same knob, its name is given in the key's doc comment.

pub mod busy;
pub mod privacy;
pub mod rules;

use crate::calendar::{CalAddress, ICalendar, PartStat};
use crate::store::BusyEntry;
use chrono::{DateTime, NaiveTime, Utc, Weekday};
use serde::Deserialize;

/// The policy's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// Accepted.
    Accept,
    /// Tentatively accepted: in policy, for a person to confirm.
    Tentative,
    /// Held TENTATIVE for a delegate to decide (RequestInPolicy, RequestOutOfPolicy), with
    /// the reason told to the organiser.
    Held {
        /// A sentence for the organiser ("held for approval: ...").
        reason: String,
        /// The REQUEST-STATUS of the REPLY.
        status: String,
    },
    /// Stored with no decision (PARTSTAT NEEDS-ACTION), for a person to answer.
    Undecided,
    /// A series accepted except for some instances, each declined with its own REPLY, or
    /// accepted with a note for the organiser (instances beyond the booking window).
    AcceptExcept {
        /// The declined instances.
        declined: Vec<DeclinedInstance>,
        /// A sentence for the organiser about what the acceptance leaves out ("accepted:
        /// instances after ... are not booked").
        note: Option<String>,
        /// The end of the booking window when the series reaches beyond it: instances
        /// starting later are not booked (the pipeline records it on the stored object as
        /// [`busy::BOOKED_UNTIL`], and the busy index leaves them out).
        booked_until: Option<DateTime<Utc>>,
    },
    /// Declined, with the reason given to the organiser.
    Decline {
        /// A sentence for the organiser ("declined: conflicts with ...").
        reason: String,
        /// The REQUEST-STATUS value of the REPLY (`4.0;Event conflict. Date/time is busy.`).
        status: String,
        /// The next free slot of the same length, offered in a COUNTER when the policy
        /// makes counter-proposals.
        counter: Option<Slot>,
    },
}

/// A time offered in a counter-proposal, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Start.
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

/// One instance of an accepted series that is declined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclinedInstance {
    /// The instance's RECURRENCE-ID (its original start), UTC; floating and all-day
    /// instances are read as UTC, as the busy index reads them.
    pub recurrence_id: DateTime<Utc>,
    /// Whether the series is all-day (its RECURRENCE-ID is a DATE).
    pub all_day: bool,
    /// Why, for the organiser.
    pub reason: String,
    /// The REQUEST-STATUS of its REPLY.
    pub status: String,
}

/// REQUEST-STATUS of a decline for a conflict (RFC 5546 §3.6.14).
pub const STATUS_CONFLICT: &str = "4.0;Event conflict. Date/time is busy.";
/// REQUEST-STATUS of a decline because the organiser may not book (RFC 5546 §3.6.9).
pub const STATUS_NO_AUTHORITY: &str = "3.8;No authority.";
/// REQUEST-STATUS of a request held TENTATIVE for a delegate: read and handled, the
/// decision is pending.
pub const STATUS_HELD: &str = "2.0;Success.";
/// REQUEST-STATUS of a decline by a time or series rule: the request was read and handled;
/// the resource's answer is no (the reason says which rule).
pub const STATUS_POLICY: &str = "2.0;Success.";

impl PolicyAnswer {
    /// A decline with a reason and a REQUEST-STATUS.
    pub fn decline(reason: impl Into<String>, status: &str) -> Self {
        PolicyAnswer::Decline {
            reason: reason.into(),
            status: status.to_string(),
            counter: None,
        }
    }

    /// Until when a series accepted beyond the booking window is booked (see
    /// `AcceptExcept::booked_until`).
    pub fn booked_until(&self) -> Option<DateTime<Utc>> {
        match self {
            PolicyAnswer::AcceptExcept { booked_until, .. } => *booked_until,
            _ => None,
        }
    }

    /// The time a COUNTER should offer, if any.
    pub fn counter(&self) -> Option<Slot> {
        match self {
            PolicyAnswer::Decline { counter, .. } => *counter,
            _ => None,
        }
    }

    /// The PARTSTAT that carries this answer.
    pub fn partstat(&self) -> PartStat {
        match self {
            PolicyAnswer::Accept | PolicyAnswer::AcceptExcept { .. } => PartStat::Accepted,
            PolicyAnswer::Tentative | PolicyAnswer::Held { .. } => PartStat::Tentative,
            PolicyAnswer::Undecided => PartStat::NeedsAction,
            PolicyAnswer::Decline { .. } => PartStat::Declined,
        }
    }

    /// The reason code recorded in the ledger.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyAnswer::Accept | PolicyAnswer::AcceptExcept { .. } => "accepted",
            PolicyAnswer::Tentative | PolicyAnswer::Held { .. } => "tentative",
            PolicyAnswer::Undecided => "undecided",
            PolicyAnswer::Decline { .. } => "declined",
        }
    }

    /// The explanation sent to the organiser (a decline's or a hold's reason).
    pub fn comment(&self) -> Option<&str> {
        match self {
            PolicyAnswer::Decline { reason, .. } | PolicyAnswer::Held { reason, .. } => {
                Some(reason)
            }
            PolicyAnswer::AcceptExcept { note, .. } => note.as_deref(),
            _ => None,
        }
    }

    /// The REQUEST-STATUS the REPLY carries, if any.
    pub fn request_status(&self) -> Option<&str> {
        match self {
            PolicyAnswer::Decline { status, .. } | PolicyAnswer::Held { status, .. } => {
                Some(status)
            }
            _ => None,
        }
    }
}

/// How a mailbox answers requests that pass its rules (Exchange: AutomateProcessing
/// AutoAccept / AutoUpdate, with BookInPolicy and RequestInPolicy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Automation {
    /// Accept what is in policy, decline what is not (AutomateProcessing = AutoAccept).
    #[default]
    Accept,
    /// Answer TENTATIVE to what is in policy (for a person to confirm), decline what is
    /// not (RequestInPolicy).
    Tentative,
    /// Decline every request (the resource is closed for booking).
    Decline,
    /// Store every request, answer nothing and decide nothing (AutomateProcessing =
    /// AutoUpdate): the mailbox's replies are switched off (the engine's `ReplyMode::Never`)
    /// and the stored PARTSTAT stays NEEDS-ACTION.
    Manual,
}

/// When bookings may take place (Exchange: ScheduleOnlyDuringWorkHours with the mailbox's
/// working hours and time zone).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WorkingHoursConfig")]
pub struct WorkingHours {
    /// First minute of the working day, local time.
    pub start: NaiveTime,
    /// End of the working day (exclusive), local time.
    pub end: NaiveTime,
    /// The working days.
    pub days: Vec<Weekday>,
    /// The zone the hours are read in.
    pub time_zone: chrono_tz::Tz,
}

/// `[mailbox.policy.working_hours]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkingHoursConfig {
    #[serde(default = "default_day_start")]
    start: String,
    #[serde(default = "default_day_end")]
    end: String,
    #[serde(default = "default_days")]
    days: Vec<String>,
    #[serde(default = "default_zone")]
    time_zone: String,
}

fn default_day_start() -> String {
    "08:00".into()
}
fn default_day_end() -> String {
    "17:00".into()
}
fn default_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(String::from)
        .to_vec()
}
fn default_zone() -> String {
    "UTC".into()
}

impl TryFrom<WorkingHoursConfig> for WorkingHours {
    type Error = String;

    fn try_from(c: WorkingHoursConfig) -> Result<Self, String> {
        let time = |key: &str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| {
                format!(
                    "working_hours.{key} = {value:?} is not a time of day; write it as \"HH:MM\""
                )
            })
        };
        let start = time("start", &c.start)?;
        let end = time("end", &c.end)?;
        if end <= start {
            return Err(format!(
                "working_hours: end {} is not after start {}; the working day must not cross midnight",
                c.end, c.start
            ));
        }
        let days = c
            .days
            .iter()
            .map(|d| {
                d.parse::<Weekday>().map_err(|_| {
                    format!("working_hours.days: {d:?} is not a weekday; use mon, tue, ... sun")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let time_zone = c.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!(
                "working_hours.time_zone = {:?} is not a time zone of the tz database (e.g. \"Europe/Berlin\")",
                c.time_zone
            )
        })?;
        Ok(WorkingHours {
            start,
            end,
            days,
            time_zone,
        })
    }
}

/// The policy of one mailbox (`[mailbox.policy]` in the configuration). The defaults are a
/// room's: accept when free, decline conflicts, bookings up to 180 days ahead and 24 hours
/// long, recurring meetings allowed, anyone may book.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// How requests that pass the rules are answered (AutomateProcessing).
    pub automation: Automation,
    /// Whether bookings may overlap without limit (AllowConflicts; default false).
    pub allow_conflicts: bool,
    /// How many bookings may overlap at one instant (a room: 1; a pool of 4 projectors: 4).
    pub capacity: u32,
    /// How many days ahead an instance may start (BookingWindowInDays, default 180; 0: no
    /// limit).
    pub booking_window_days: u32,
    /// Whether a series with instances beyond the booking window is declined (true, the
    /// default) or accepted with only the instances inside the window booked and checked
    /// (EnforceSchedulingHorizon).
    pub enforce_scheduling_horizon: bool,
    /// The shortest instance accepted, in minutes (default 0: no minimum).
    pub min_duration_minutes: u32,
    /// The longest instance accepted, in minutes (MaximumDurationInMinutes, default 1440;
    /// 0: no limit).
    pub max_duration_minutes: u32,
    /// Whether recurring meetings are accepted (AllowRecurringMeetings, default true).
    pub allow_recurring: bool,
    /// Only bookings inside these hours are accepted (ScheduleOnlyDuringWorkHours with the
    /// mailbox's WorkingHours; default: any time).
    pub working_hours: Option<WorkingHours>,
    /// Who may use the resource at all, when not empty: addresses (`alice@corp.test`) and
    /// domains (`corp.test`, which also covers `eu.corp.test` but never `evilcorp.test`).
    /// Anyone else is declined before any other rule; how a permitted organiser's request is
    /// handled is the organiser classes' business (`book_in_policy` and the rest).
    pub allow: Vec<String>,
    /// Who may never book, same forms as `allow`; wins over `allow`.
    pub deny: Vec<String>,
    /// Whether organisers outside the mailbox's own domains may book
    /// (ProcessExternalMeetingMessages; Exchange's default is false, here true so that a
    /// bot mailbox works out of the box).
    pub allow_external: bool,
    /// How many instances of a new series may conflict before the whole series is declined
    /// (MaximumConflictInstances, default 0).
    pub max_conflict_instances: u32,
    /// When a series is accepted within the conflict thresholds, whether each conflicting
    /// instance is declined with a REPLY of its own (true, the default, as Exchange does) or
    /// accepted with the rest (false).
    pub decline_conflicting_instances: bool,
    /// Which percentage of a series' instances may conflict before the whole series is
    /// declined (ConflictPercentageAllowed, default 0). A series is accepted only when its
    /// conflicts are within both thresholds (see `decline_conflicting_instances`).
    pub conflict_percentage_allowed: u32,
    /// How far ahead the busy index expands recurring objects, in days (default 365; the
    /// booking window is always covered, see [`Policy::index_days`]).
    pub busy_horizon_days: u32,
    /// Whether only authenticated organisers may book: the topmost Authentication-Results
    /// header written by one of `trusted_authserv_ids` must say `dmarc=pass` for the From
    /// domain (or `auth=pass`, a message submitted by a logged-in user of that server).
    /// Default false.
    pub require_authenticated: bool,
    /// The authserv-ids of this site's own border MTAs, the only Authentication-Results
    /// headers read (anyone can write one before the message reaches this site).
    pub trusted_authserv_ids: Vec<String>,
    /// Whether a single booking declined for a conflict is also answered with a COUNTER
    /// offering the next free slot of the same length inside the working hours and the
    /// booking window (searched over the busy index). Default false.
    pub counter_proposals: bool,
    /// Text added to every reply this mailbox sends (AdditionalResponse with
    /// AddAdditionalResponse), e.g. where the room is and who to call; default none.
    pub additional_response: Option<String>,
    /// Whether every permitted organiser's in-policy requests are booked automatically
    /// (AllBookInPolicy, default true). When false, only `book_in_policy` organisers are.
    pub all_book_in_policy: bool,
    /// Organisers (addresses and domains, matched like `allow`) whose in-policy requests
    /// are booked automatically when `all_book_in_policy` is false (BookInPolicy).
    pub book_in_policy: Vec<String>,
    /// Whether every permitted organiser not booked automatically may still request: their
    /// in-policy requests are held TENTATIVE for a delegate (AllRequestInPolicy, default
    /// false).
    pub all_request_in_policy: bool,
    /// Organisers whose in-policy requests are held TENTATIVE for a delegate when they are
    /// not booked automatically (RequestInPolicy).
    pub request_in_policy: Vec<String>,
    /// Whether every organiser's out-of-policy requests (a conflict, a time rule, a
    /// recurring meeting) are held TENTATIVE for a delegate instead of declined
    /// (AllRequestOutOfPolicy, default false).
    pub all_request_out_of_policy: bool,
    /// Organisers whose out-of-policy requests are held TENTATIVE for a delegate instead of
    /// declined (RequestOutOfPolicy).
    pub request_out_of_policy: Vec<String>,
    /// The persons who decide held requests and those answered TENTATIVE under automation
    /// `tentative` (ResourceDelegates with ForwardRequestsToDelegates): each is sent a
    /// notice with the request attached.
    /// Checked when the configuration loads: each must be an e-mail address.
    #[serde(deserialize_with = "addresses")]
    pub delegates: Vec<String>,
    /// Whether a decline for a conflict names the conflicting booking's organiser
    /// (OrganizerInfo; default false, as that tells one organiser about another's meeting).
    pub organizer_info: bool,
    /// What the stored copy of a booking keeps (`[mailbox.policy.privacy]`).
    pub privacy: privacy::Privacy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            automation: Automation::Accept,
            allow_conflicts: false,
            capacity: 1,
            booking_window_days: 180,
            enforce_scheduling_horizon: false,
            min_duration_minutes: 0,
            max_duration_minutes: 1440,
            allow_recurring: true,
            working_hours: None,
            allow: Vec::new(),
            deny: Vec::new(),
            allow_external: true,
            max_conflict_instances: 0,
            decline_conflicting_instances: true,
            conflict_percentage_allowed: 0,
            busy_horizon_days: 365,
            additional_response: None,
            counter_proposals: false,
            require_authenticated: false,
            trusted_authserv_ids: Vec::new(),
            all_book_in_policy: true,
            book_in_policy: Vec::new(),
            all_request_in_policy: false,
            request_in_policy: Vec::new(),
            all_request_out_of_policy: false,
            request_out_of_policy: Vec::new(),
            delegates: Vec::new(),
            organizer_info: false,
            privacy: privacy::Privacy::default(),
        }
    }
}

/// Reads a list of e-mail addresses, refusing anything else with the entry named.
fn addresses<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(de)?;
    for entry in &list {
        let whole = CalAddress::parse(entry).is_some_and(|a| {
            a.email()
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        });
        if !whole {
            return Err(serde::de::Error::custom(format!(
                "delegates: {entry:?} is not an e-mail address (write it as \"name@example.org\")"
            )));
        }
    }
    Ok(list)
}

/// Looks up the ORGANIZER of a stored booking by its UID (for `organizer_info`).
pub type OrganizerOf<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// A request as the policy sees it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The object requested.
    pub ical: &'a ICalendar,
    /// Its ORGANIZER.
    pub organizer: Option<&'a CalAddress>,
    /// The mailbox's addresses (the first is its own; their domains are "internal").
    pub me: &'a [CalAddress],
    /// The ORGANIZER of a stored booking by its UID, for a decline that names the
    /// conflicting booking's organiser (`organizer_info`); `None` when not looked up.
    pub organizer_of: Option<&'a OrganizerOf<'a>>,
    /// Who sent the message (for the authentication rule).
    pub sender: &'a crate::mail::SenderFacts,
}

impl Policy {
    /// How many days ahead the busy index must reach: the configured horizon, and at least
    /// the booking window, so that no accepted instance escapes the conflict check.
    pub fn index_days(&self) -> u32 {
        self.busy_horizon_days.max(self.booking_window_days)
    }

    /// Answers a message that books nothing.
    pub fn evaluate(&self) -> PolicyAnswer {
        match self.automation {
            Automation::Manual => PolicyAnswer::Undecided,
            _ => PolicyAnswer::Accept,
        }
    }

    /// Answers a request: the rules in the order of the module's documentation. `busy(from,
    /// to)` answers the mailbox's busy intervals overlapping `[from, to)` without the
    /// request's own UID (the store's busy index).
    pub fn evaluate_request<E>(
        &self,
        request: &Request<'_>,
        busy: &dyn Fn(i64, i64) -> Result<Vec<BusyEntry>, E>,
        now: DateTime<Utc>,
    ) -> Result<PolicyAnswer, E> {
        if self.automation == Automation::Manual {
            return Ok(PolicyAnswer::Undecided);
        }
        if let Some(declined) = rules::who(self, request) {
            return Ok(declined);
        }
        if self.automation == Automation::Decline {
            return Ok(PolicyAnswer::decline(
                "declined: this resource does not accept bookings automatically",
                STATUS_POLICY,
            ));
        }
        let ruled = self.rules(request, busy, now)?;
        Ok(self.class_answer(request.organizer, ruled))
    }

    /// The answer of the recurring, time and conflict rules: a booking (`Accept` or
    /// `AcceptExcept`) when the request is in policy, their decline when it is not.
    fn rules<E>(
        &self,
        request: &Request<'_>,
        busy: &dyn Fn(i64, i64) -> Result<Vec<BusyEntry>, E>,
        now: DateTime<Utc>,
    ) -> Result<PolicyAnswer, E> {
        let instances = match rules::time(self, request.ical, now) {
            Ok(instances) => instances,
            Err(declined) => return Ok(declined),
        };
        let (note, booked_until) = match rules::truncation(self, request.ical, now) {
            Some((note, until)) => (Some(note), Some(until)),
            None => (None, None),
        };
        Ok(
            match rules::conflicts(self, &instances, busy, now, request.organizer_of)? {
                rules::Conflicts::Decline(declined) => declined,
                rules::Conflicts::None if note.is_none() => PolicyAnswer::Accept,
                rules::Conflicts::None => PolicyAnswer::AcceptExcept {
                    declined: Vec::new(),
                    note,
                    booked_until,
                },
                rules::Conflicts::Instances(declined) => PolicyAnswer::AcceptExcept {
                    declined,
                    note,
                    booked_until,
                },
            },
        )
    }

    /// Whether `organizer` is covered by a class: the class's `All…` switch, or an entry of
    /// its list (matched on whole labels like `allow`).
    fn in_class(all: bool, list: &[String], organizer: Option<&CalAddress>) -> bool {
        all || organizer.is_some_and(|o| list.iter().any(|e| rules::entry_matches(e, o)))
    }

    /// The organiser class applied to the rules' answer `ruled` (rule 7 of the module's
    /// order). Out of policy: held for a delegate when the organiser may request out of
    /// policy, else declined. In policy: booked when the organiser may book in policy (as
    /// TENTATIVE under automation `tentative`), held for a delegate when they may request
    /// in policy, else declined with 3.8. Booking wins over requesting when an organiser is
    /// in several classes.
    pub fn class_answer(
        &self,
        organizer: Option<&CalAddress>,
        ruled: PolicyAnswer,
    ) -> PolicyAnswer {
        let who = organizer.map_or("the organiser".to_string(), |o| o.email().to_string());
        match ruled {
            PolicyAnswer::Decline { reason, .. }
                if Self::in_class(
                    self.all_request_out_of_policy,
                    &self.request_out_of_policy,
                    organizer,
                ) =>
            {
                PolicyAnswer::Held {
                    reason: format!(
                        "held for approval: the request is out of policy ({}); a delegate of this resource decides",
                        reason.strip_prefix("declined: ").unwrap_or(&reason)
                    ),
                    status: STATUS_HELD.to_string(),
                }
            }
            declined @ PolicyAnswer::Decline { .. } => declined,
            booked if Self::in_class(self.all_book_in_policy, &self.book_in_policy, organizer) => {
                match (self.automation, booked) {
                    (Automation::Tentative, _) => PolicyAnswer::Tentative,
                    (_, booked) => booked,
                }
            }
            _ if Self::in_class(
                self.all_request_in_policy,
                &self.request_in_policy,
                organizer,
            ) =>
            {
                PolicyAnswer::Held {
                    reason: format!(
                        "held for approval: {who} may request this resource but not book it directly; a delegate of this resource decides"
                    ),
                    status: STATUS_HELD.to_string(),
                }
            }
            _ => PolicyAnswer::decline(
                format!("declined: {who} may not book this resource"),
                STATUS_NO_AUTHORITY,
            ),
        }
    }
}

impl Policy {
    /// The effective policy in words, one rule per line, for `imipd check`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![match self.automation {
            Automation::Accept => "requests in policy are accepted, others declined".to_string(),
            Automation::Tentative => {
                "requests in policy are answered TENTATIVE for a person to confirm, others declined"
                    .to_string()
            }
            Automation::Decline => "every request is declined".to_string(),
            Automation::Manual => {
                "requests are stored for a person to answer; no reply is sent and no rule applies"
                    .to_string()
            }
        }];
        if self.automation == Automation::Manual {
            return lines;
        }
        lines.push(match (self.allow.is_empty(), self.allow_external) {
            (true, true) => "anyone may book".to_string(),
            (true, false) => "only organisers of this mailbox's own domains may book".to_string(),
            (false, external) => format!(
                "only {} may book{}",
                self.allow.join(", "),
                if external {
                    ""
                } else {
                    ", and only from this mailbox's own domains"
                }
            ),
        });
        if !self.deny.is_empty() {
            lines.push(format!("never: {}", self.deny.join(", ")));
        }
        if self.require_authenticated {
            lines.push(format!(
                "only messages that pass DMARC (or were submitted with SMTP AUTH) according to {} are acted on",
                if self.trusted_authserv_ids.is_empty() {
                    "(no trusted server configured: none pass)".to_string()
                } else {
                    self.trusted_authserv_ids.join(", ")
                }
            ));
        }
        lines.push(if self.allow_recurring {
            "recurring meetings are accepted".to_string()
        } else {
            "recurring meetings are declined".to_string()
        });
        lines.push("bookings in the past are declined".to_string());
        lines.push(match self.booking_window_days {
            0 => "bookings may lie any time ahead".to_string(),
            days => format!(
                "bookings may start at most {days} days ahead; a series reaching beyond is {}",
                if self.enforce_scheduling_horizon {
                    "declined"
                } else {
                    "accepted, with only its instances inside the window booked"
                }
            ),
        });
        lines.push(
            match (self.min_duration_minutes, self.max_duration_minutes) {
                (0, 0) => "bookings may last any time".to_string(),
                (0, max) => format!("bookings may last at most {max} minutes"),
                (min, 0) => format!("bookings must last at least {min} minutes"),
                (min, max) => format!("bookings must last {min} to {max} minutes"),
            },
        );
        if let Some(hours) = &self.working_hours {
            lines.push(format!(
                "bookings are accepted only {}",
                rules::describe_hours(hours)
            ));
        }
        lines.push(if self.allow_conflicts {
            "overlapping bookings are accepted without limit".to_string()
        } else {
            format!(
                "a booking is declined when {} other booking(s) already take the time; a series is declined when more than {} of its instances or more than {}% of them conflict, otherwise accepted {}",
                self.capacity.max(1),
                self.max_conflict_instances,
                self.conflict_percentage_allowed,
                if self.decline_conflicting_instances {
                    "with each conflicting instance declined"
                } else {
                    "with its conflicting instances"
                }
            )
        });
        lines.push(format!(
            "busy time is indexed {} days ahead",
            self.index_days()
        ));
        if self.counter_proposals {
            lines.push(
                "a booking declined for a conflict is answered with a COUNTER proposing the next free time"
                    .to_string(),
            );
        }
        lines.extend(self.describe_classes());
        if self.organizer_info {
            lines.push(
                "a decline for a conflict names the conflicting booking's organiser".to_string(),
            );
        }
        if let Some(text) = &self.additional_response {
            lines.push(format!("every reply adds: {text}"));
        }
        lines.extend(self.privacy.describe());
        lines
    }

    /// The organiser classes in words; nothing for the defaults (everyone permitted is
    /// booked in policy, out-of-policy requests are declined).
    fn describe_classes(&self) -> Vec<String> {
        let who = |all: bool, list: &[String]| {
            if all {
                Some("every permitted organiser".to_string())
            } else if list.is_empty() {
                None
            } else {
                Some(list.join(", "))
            }
        };
        let mut lines = Vec::new();
        let book = who(self.all_book_in_policy, &self.book_in_policy);
        let request = who(self.all_request_in_policy, &self.request_in_policy);
        if !self.all_book_in_policy {
            lines.push(match &book {
                Some(book) => {
                    format!("requests in policy are booked automatically only for {book}")
                }
                None => "no organiser is booked automatically".to_string(),
            });
            lines.push(match &request {
                Some(request) => format!(
                    "requests in policy from {request} (unless booked automatically) are held TENTATIVE for a delegate; other organisers are declined"
                ),
                None => "other organisers' requests in policy are declined".to_string(),
            });
        }
        if let Some(out) = who(self.all_request_out_of_policy, &self.request_out_of_policy) {
            lines.push(format!(
                "requests out of policy from {out} are held TENTATIVE for a delegate instead of declined"
            ));
        }
        let holds = !self.all_book_in_policy && request.is_some()
            || self.automation == Automation::Tentative
            || self.all_request_out_of_policy
            || !self.request_out_of_policy.is_empty();
        if holds {
            lines.push(if self.delegates.is_empty() {
                "held requests are stored for a person to answer; no delegate is notified"
                    .to_string()
            } else {
                format!(
                    "held requests are sent to {} to decide",
                    self.delegates.join(", ")
                )
            });
        }
        lines
    }
}
