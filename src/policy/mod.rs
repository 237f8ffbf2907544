//! Resource policy: what a mailbox answers to a request it may act on.
//!
//! The engine receives the policy's answer as a value, so it stays a pure function. The
//! rules that compute the answer (conflicts over the busy index, booking window, working
//! hours, series thresholds, who may book) live here; the current rule set is the
//! unconditional one a bot mailbox uses: accept.

pub mod busy;

use crate::calendar::ICalendar;
use crate::calendar::PartStat;
use crate::store::BusyEntry;
use chrono::{DateTime, Utc};

/// The policy's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    Accept,
    Tentative,
    /// Declined, with the reason given to the organiser.
    Decline {
        reason: String,
    },
}

impl PolicyAnswer {
    /// The PARTSTAT that carries this answer.
    pub fn partstat(&self) -> PartStat {
        match self {
            PolicyAnswer::Accept => PartStat::Accepted,
            PolicyAnswer::Tentative => PartStat::Tentative,
            PolicyAnswer::Decline { .. } => PartStat::Declined,
        }
    }

    /// The reason code recorded in the ledger.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyAnswer::Accept => "accepted",
            PolicyAnswer::Tentative => "tentative",
            PolicyAnswer::Decline { .. } => "declined",
        }
    }
}

/// The policy of one mailbox (`[mailbox.policy]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// How far ahead the busy index expands recurring objects, in days (default 365).
    pub busy_horizon_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            busy_horizon_days: 365,
        }
    }
}

impl Policy {
    /// Answers a message that books nothing (or a request when no rule applies).
    pub fn evaluate(&self) -> PolicyAnswer {
        PolicyAnswer::Accept
    }

    /// Answers a request for `ical`: accept when free, decline when an instance from `now`
    /// on overlaps what `busy(from, to)` (the mailbox's busy index without the request's
    /// own UID) reports.
    pub fn evaluate_request<E>(
        &self,
        ical: &ICalendar,
        busy: &dyn Fn(i64, i64) -> Result<Vec<BusyEntry>, E>,
        now: DateTime<Utc>,
    ) -> Result<PolicyAnswer, E> {
        let (_, until) = busy::window(now, self.busy_horizon_days);
        let Ok(instances) = busy::occurrences(ical, now, until) else {
            return Ok(self.evaluate());
        };
        for o in instances.iter().filter(|o| !o.cancelled && !o.transparent) {
            let start = o.start_utc.timestamp();
            let end = o.end_utc.timestamp().max(start + 1);
            if let Some(conflict) = busy(start, end)?.first() {
                return Ok(PolicyAnswer::Decline {
                    reason: format!(
                        "Event conflict: the time from {} is already booked.",
                        chrono::DateTime::from_timestamp(conflict.interval.start.max(start), 0)
                            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                            .unwrap_or_default()
                    ),
                });
            }
        }
        Ok(self.evaluate())
    }
}
