//! The facts about a message's origin that the trust and loop checks need.
//!
//! Nothing here decides whether to trust a message: the engine does, with these facts.

use super::authres::{self, AuthResults};
use mail_parser::{Address, Message};
use serde::Serialize;
use std::borrow::Cow;

/// The facts about a message's origin that trust and loop checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SenderFacts {
    /// The From address, lower case.
    pub from: Option<String>,
    /// The From display name.
    pub from_name: Option<String>,
    /// The Sender address, lower case (Google's calendar-notification@google.com).
    pub sender: Option<String>,
    /// Reply-To, recorded but never used for trust.
    pub reply_to: Option<String>,
    /// The Return-Path (envelope sender as the final MTA recorded it), lower case; empty for
    /// `<>` (a bounce).
    pub return_path: Option<String>,
    /// Every Delivered-To, lower case, top (latest) first.
    pub delivered_to: Vec<String>,
    /// Every `Authentication-Results` header, top (latest, i.e. added by our own MTA) first.
    pub authentication_results: Vec<AuthResults>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids, without angle brackets, oldest first.
    pub references: Vec<String>,
    pub subject: Option<String>,
    /// `Auto-Submitted` value, lower case, without parameters or comments.
    pub auto_submitted: Option<String>,
    /// `X-Auto-Response-Suppress` values (Microsoft), as written (`All`, `OOF`, `DR`, …).
    pub auto_response_suppress: Vec<String>,
    /// `Precedence`, lower case (`bulk`, `list`, `junk`).
    pub precedence: Option<String>,
}

impl SenderFacts {
    /// `true` when RFC 3834 (or its de-facto predecessors) says not to send this message an
    /// automatic non-iTIP response: `Auto-Submitted` other than `no`, `Precedence:
    /// bulk/junk/list`, `X-Auto-Response-Suppress: All`, or a null Return-Path (a bounce).
    /// iTIP in such a message is still processed (Stalwart and Cyrus mark legitimate iMIP
    /// `auto-generated`).
    pub fn is_automated(&self) -> bool {
        self.auto_submitted.as_deref().is_some_and(|v| v != "no")
            || self
                .precedence
                .as_deref()
                .is_some_and(|p| matches!(p, "bulk" | "junk" | "list"))
            || self
                .auto_response_suppress
                .iter()
                .any(|v| v.eq_ignore_ascii_case("all"))
            || self.return_path.as_deref() == Some("")
    }

    /// The Authentication-Results headers written by one of `trusted` authserv-ids (compared
    /// case-insensitively): only those are worth reading.
    pub fn trusted_results<'a>(
        &'a self,
        trusted: &'a [String],
    ) -> impl Iterator<Item = &'a AuthResults> + 'a {
        self.authentication_results.iter().filter(move |ar| {
            trusted
                .iter()
                .any(|id| id.eq_ignore_ascii_case(&ar.authserv_id))
        })
    }
}

/// The bytes between two offsets of a message. mail-parser 0.11 records offsets in the
/// coordinates of the stream it parsed: for a `message/rfc822` part without transfer encoding
/// that is the enclosing message's stream, and the nested message's `raw_message()` starts at
/// `base`, the part's body offset there (0 for the outer message and for encoded parts).
pub(crate) fn slice<'a>(
    message: &'a Message<'_>,
    base: usize,
    start: u32,
    end: u32,
) -> Option<&'a [u8]> {
    let start = (start as usize).checked_sub(base)?;
    let end = (end as usize).checked_sub(base)?;
    message.raw_message().get(start..end)
}

/// Every raw value of a header, in message order, with folding left in. Header bytes that are
/// not UTF-8 (raw 8-bit headers) are decoded lossily rather than dropped.
pub(crate) fn raw_headers<'a>(
    message: &'a Message<'a>,
    base: usize,
    name: &'a str,
) -> impl Iterator<Item = Cow<'a, str>> + 'a {
    message
        .headers()
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .filter_map(move |h| {
            slice(message, base, h.offset_start(), h.offset_end()).map(String::from_utf8_lossy)
        })
}

fn first_raw(message: &Message<'_>, base: usize, name: &str) -> Option<String> {
    raw_headers(message, base, name)
        .next()
        .map(|v| unfold(&v))
        .filter(|v| !v.is_empty())
}

/// Joins folded lines and trims.
fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Drops `(comments)` from a structured header value.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `<a@b> <c@d>` (or bare, comma separated) to `["a@b", "c@d"]`.
fn message_ids(value: &str) -> Vec<String> {
    let value = strip_comments(value);
    let mut ids = Vec::new();
    if value.contains('<') {
        for chunk in value.split('<').skip(1) {
            if let Some((id, _)) = chunk.split_once('>') {
                let id = id.trim();
                if !id.is_empty() && !ids.iter().any(|seen| seen == id) {
                    ids.push(id.to_string());
                }
            }
        }
    } else {
        for id in value.split([' ', ',', '\t']).map(str::trim) {
            if !id.is_empty() && !ids.iter().any(|seen| seen == id) {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

fn first_address(address: Option<&Address<'_>>) -> Option<String> {
    address
        .and_then(Address::first)
        .and_then(|a| a.address.as_deref())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())
}

/// Collects the sender facts of one (possibly nested) message.
pub(crate) fn sender_facts(message: &Message<'_>, base: usize) -> SenderFacts {
    let return_path = first_raw(message, base, "Return-Path").map(|v| {
        let v = strip_comments(&v);
        v.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_lowercase()
    });
    let delivered_to = raw_headers(message, base, "Delivered-To")
        .map(|v| unfold(&v).to_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    let authentication_results = raw_headers(message, base, "Authentication-Results")
        .filter_map(|v| authres::parse(&v))
        .collect();
    let auto_submitted = first_raw(message, base, "Auto-Submitted").map(|v| {
        strip_comments(&v)
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let auto_response_suppress = raw_headers(message, base, "X-Auto-Response-Suppress")
        .flat_map(|v| {
            unfold(&v)
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let precedence = first_raw(message, base, "Precedence")
        .map(|v| strip_comments(&v).trim().to_ascii_lowercase());
    SenderFacts {
        from: first_address(message.from()),
        from_name: message
            .from()
            .and_then(Address::first)
            .and_then(|a| a.name.as_deref())
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        sender: first_address(message.sender()),
        reply_to: first_address(message.reply_to()),
        return_path,
        delivered_to,
        authentication_results,
        message_id: first_raw(message, base, "Message-ID")
            .and_then(|v| message_ids(&v).into_iter().next())
            .or_else(|| message.message_id().map(str::to_string)),
        in_reply_to: first_raw(message, base, "In-Reply-To")
            .map(|v| message_ids(&v))
            .unwrap_or_default(),
        references: first_raw(message, base, "References")
            .map(|v| message_ids(&v))
            .unwrap_or_default(),
        subject: message.subject().map(str::to_string),
        auto_submitted,
        auto_response_suppress,
        precedence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_read_with_and_without_brackets_and_comments() {
        assert_eq!(
            message_ids("<a@x> (first)\r\n <b@y>"),
            vec!["a@x".to_string(), "b@y".to_string()]
        );
        assert_eq!(message_ids("a@x, b@y"), vec!["a@x", "b@y"]);
    }
}
