//! Delivery status notifications (RFC 3464): which of our messages bounced, and why.
//!
//! A DSN is a `multipart/report; report-type=delivery-status` whose second part is
//! `message/delivery-status` (per-message fields, a blank line, then one group of fields per
//! recipient) and whose third part returns the original message or its headers.

use serde::Serialize;

/// What a DSN says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// The MTA that wrote the report (`dns; mx.example.test` → `mx.example.test`).
    pub reporting_mta: Option<String>,
    /// The ENVID our submission gave, if the MTA kept it.
    pub original_envelope_id: Option<String>,
    /// The Message-ID of the message that bounced, without brackets: from the returned
    /// message (or headers) part, else from an `Original-Message-ID` / `X-Original-Message-ID`
    /// field of the report.
    pub original_message_id: Option<String>,
    /// The Subject of the message that bounced, when returned.
    pub original_subject: Option<String>,
    /// One entry per recipient group.
    pub recipients: Vec<RecipientStatus>,
}

/// One recipient's delivery status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecipientStatus {
    /// `Final-Recipient` without its address type, lower case.
    pub final_recipient: Option<String>,
    /// `Original-Recipient` without its address type, lower case.
    pub original_recipient: Option<String>,
    /// `Action`, lower case: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: Option<String>,
    /// `Status`, e.g. `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code` without its type, e.g. `550 5.1.1 <x@y>: Recipient address rejected`.
    pub diagnostic: Option<String>,
    /// `Remote-MTA` without its type.
    pub remote_mta: Option<String>,
}

impl DeliveryReport {
    /// `true` when at least one recipient failed permanently (`Action: failed`).
    pub fn failed(&self) -> bool {
        self.recipients
            .iter()
            .any(|r| r.action.as_deref() == Some("failed"))
    }
}

/// Unfolds `Name: value` fields and splits them into blank-line separated groups.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `rfc822; bob@example.test` → `bob@example.test`.
fn without_type(value: &str) -> String {
    value
        .split_once(';')
        .map_or(value, |(_, rest)| rest)
        .trim()
        .to_string()
}

fn bracketless(value: &str) -> String {
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// Reads the `message/delivery-status` body.
pub(crate) fn parse_delivery_status(text: &str) -> DeliveryReport {
    let groups = field_groups(text);
    let mut report = DeliveryReport::default();
    let Some((per_message, per_recipient)) = groups.split_first() else {
        return report;
    };
    report.reporting_mta = field(per_message, "reporting-mta").map(without_type);
    report.original_envelope_id = field(per_message, "original-envelope-id").map(str::to_string);
    report.original_message_id = field(per_message, "original-message-id")
        .or_else(|| field(per_message, "x-original-message-id"))
        .map(bracketless);
    for group in per_recipient {
        if report.original_message_id.is_none()
            && let Some(id) = field(group, "original-message-id")
                .or_else(|| field(group, "x-original-message-id"))
        {
            report.original_message_id = Some(bracketless(id));
        }
        report.recipients.push(RecipientStatus {
            final_recipient: field(group, "final-recipient")
                .map(|v| without_type(v).to_lowercase()),
            original_recipient: field(group, "original-recipient")
                .map(|v| without_type(v).to_lowercase()),
            action: field(group, "action").map(|v| v.to_ascii_lowercase()),
            status: field(group, "status")
                .map(|v| v.split_whitespace().next().unwrap_or_default().to_string()),
            diagnostic: field(group, "diagnostic-code").map(without_type),
            remote_mta: field(group, "remote-mta").map(without_type),
        });
    }
    report
}

/// Reads a `text/rfc822-headers` part: the Message-ID and Subject of the returned message.
pub(crate) fn returned_headers(text: &str) -> (Option<String>, Option<String>) {
    let groups = field_groups(text);
    let Some(headers) = groups.first() else {
        return (None, None);
    };
    (
        field(headers, "message-id").map(bracketless),
        field(headers, "subject").map(str::to_string),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_groups_are_read_with_types_stripped_and_folds_joined() {
        let text = "Reporting-MTA: dns; mx.example.test\r\nX-Original-Message-ID: <r1@example.test>\r\n\r\nFinal-Recipient: rfc822; Bob@Example.test\r\nAction: failed\r\nStatus: 5.1.1 (unknown user)\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.test>:\r\n  Recipient address rejected\r\n";
        let report = parse_delivery_status(text);
        assert_eq!(report.reporting_mta.as_deref(), Some("mx.example.test"));
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("r1@example.test")
        );
        assert!(report.failed());
        let r = &report.recipients[0];
        assert_eq!(r.final_recipient.as_deref(), Some("bob@example.test"));
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("550 5.1.1 <bob@example.test>: Recipient address rejected")
        );
    }
}
