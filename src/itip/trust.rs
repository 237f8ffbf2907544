//! Who may send what (RFC 5546 §1.4, §6.1; RFC 6047 §2.2.1; project decisions 3 and 9).
//!
//! The author of a message is its From address. A `Sender` header (Google's
//! `calendar-notification@google.com`) does not make an otherwise matching From fail, and it
//! may itself be the one that matches (decision 3: "From (or Sender)"). Reply-To is never
//! looked at. Addresses compare case-insensitively after `mailto:` normalisation
//! ([`CalAddress`]).

use crate::calendar::CalAddress;
use crate::mail::SenderFacts;

/// The addresses that speak for the message: From, then Sender.
pub fn authors(sender: &SenderFacts) -> Vec<CalAddress> {
    [sender.from.as_deref(), sender.sender.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(CalAddress::parse)
        .collect()
}

/// Whether the message may act for the calendar user `who`: its author is `who` or the
/// SENT-BY that `who`'s property names.
pub fn acts_for(sender: &SenderFacts, who: &CalAddress, sent_by: Option<&CalAddress>) -> bool {
    authors(sender)
        .iter()
        .any(|a| a == who || Some(a) == sent_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(from: &str, sender: Option<&str>) -> SenderFacts {
        SenderFacts {
            from: Some(from.into()),
            sender: sender.map(str::to_string),
            reply_to: Some("org@ext.test".into()),
            ..SenderFacts::default()
        }
    }

    fn addr(a: &str) -> CalAddress {
        CalAddress::parse(a).expect("address")
    }

    #[test]
    fn matching_from_is_trusted_whatever_the_sender_header_says() {
        let f = facts("Org@Ext.test", Some("calendar-notification@google.com"));
        assert!(acts_for(&f, &addr("mailto:org@ext.test"), None));
    }

    #[test]
    fn sent_by_may_act_for_the_organizer() {
        let f = facts("assist@ext.test", None);
        let sent_by = addr("assist@ext.test");
        assert!(acts_for(&f, &addr("org@ext.test"), Some(&sent_by)));
        assert!(!acts_for(&f, &addr("org@ext.test"), None));
    }

    #[test]
    fn reply_to_never_proves_identity() {
        let f = facts("noreply@calendar-service.test", None);
        assert!(!acts_for(&f, &addr("org@ext.test"), None));
    }
}
