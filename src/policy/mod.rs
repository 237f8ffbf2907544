//! Resource policy: what a mailbox answers to a request it may act on.
//!
//! The engine receives the policy's answer as a value, so it stays a pure function. The
//! rules that compute the answer (conflicts over the busy index, booking window, working
//! hours, series thresholds, who may book) live here; the current rule set is the
//! unconditional one a bot mailbox uses: accept.

pub mod busy;

use crate::calendar::PartStat;
use busy::Busy;

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

/// The policy of one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {}

impl Policy {
    /// Answers a request.
    pub fn evaluate(&self) -> PolicyAnswer {
        PolicyAnswer::Accept
    }

    /// Answers a request that occupies `request` when the mailbox is already busy during
    /// `busy`: accept when free, decline on conflict (any instance, from `now` on).
    pub fn evaluate_request(&self, request: &[Busy], busy: &[Busy], now: i64) -> PolicyAnswer {
        match busy::first_conflict(request, busy, now) {
            None => self.evaluate(),
            Some(conflict) => PolicyAnswer::Decline {
                reason: format!(
                    "Event conflict: the time from {} is already booked.",
                    chrono::DateTime::from_timestamp(conflict.start, 0)
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default()
                ),
            },
        }
    }
}
