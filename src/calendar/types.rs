//! The typed values of scheduling: parsed once at the edge, compared correctly everywhere.

use std::fmt;

/// An iCalendar UID. Opaque text: compared exactly, never used unescaped as a storage key.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Uid(String);

impl Uid {
    /// Wraps a UID as it appears in the object.
    pub fn new(uid: impl Into<String>) -> Self {
        Uid(uid.into())
    }

    /// The UID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar user address, normalised: `mailto:` scheme in lower case and the e-mail address
/// compared case-insensitively (RFC 5546 practice; clients send `MAILTO:` and mixed case).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CalAddress(String);

impl CalAddress {
    /// Normalises a `mailto:` URI or a bare e-mail address. Returns `None` when no address
    /// can be found (an empty value, or a non-mailto URI such as `urn:uuid:`).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let address = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &value[7..],
            _ if value.contains(':') => return None,
            _ => value,
        };
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        if address.is_empty() || !address.contains('@') {
            return None;
        }
        Some(CalAddress(address.to_lowercase()))
    }

    /// The bare e-mail address, lower case.
    pub fn email(&self) -> &str {
        &self.0
    }

    /// The `mailto:` URI form.
    pub fn uri(&self) -> String {
        format!("mailto:{}", self.0)
    }
}

impl fmt::Display for CalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mailto:{}", self.0)
    }
}

/// An iTIP method (RFC 5546 §1.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Method {
    Publish,
    Request,
    Reply,
    Add,
    Cancel,
    Refresh,
    Counter,
    DeclineCounter,
    /// A method name no RFC defines, kept as written (upper-cased) for the outcome's reason.
    Other(String),
}

impl Method {
    /// Parses a method name case-insensitively (Proton sends `method=request`).
    pub fn parse(name: &str) -> Self {
        match name.trim().to_ascii_uppercase().as_str() {
            "PUBLISH" => Method::Publish,
            "REQUEST" => Method::Request,
            "REPLY" => Method::Reply,
            "ADD" => Method::Add,
            "CANCEL" => Method::Cancel,
            "REFRESH" => Method::Refresh,
            "COUNTER" => Method::Counter,
            "DECLINECOUNTER" => Method::DeclineCounter,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method's name as written in `METHOD:` and the `method=` parameter.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Publish => "PUBLISH",
            Method::Request => "REQUEST",
            Method::Reply => "REPLY",
            Method::Add => "ADD",
            Method::Cancel => "CANCEL",
            Method::Refresh => "REFRESH",
            Method::Counter => "COUNTER",
            Method::DeclineCounter => "DECLINECOUNTER",
            Method::Other(name) => name,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attendee's participation status (RFC 5545 §3.2.12).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PartStat {
    NeedsAction,
    Accepted,
    Declined,
    Tentative,
    Delegated,
    Completed,
    InProcess,
    /// An extension value, kept as written (upper-cased).
    Other(String),
}

impl PartStat {
    /// Parses a PARTSTAT value case-insensitively.
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_uppercase().as_str() {
            "NEEDS-ACTION" => PartStat::NeedsAction,
            "ACCEPTED" => PartStat::Accepted,
            "DECLINED" => PartStat::Declined,
            "TENTATIVE" => PartStat::Tentative,
            "DELEGATED" => PartStat::Delegated,
            "COMPLETED" => PartStat::Completed,
            "IN-PROCESS" => PartStat::InProcess,
            other => PartStat::Other(other.to_string()),
        }
    }

    /// The value as written in `PARTSTAT=`.
    pub fn as_str(&self) -> &str {
        match self {
            PartStat::NeedsAction => "NEEDS-ACTION",
            PartStat::Accepted => "ACCEPTED",
            PartStat::Declined => "DECLINED",
            PartStat::Tentative => "TENTATIVE",
            PartStat::Delegated => "DELEGATED",
            PartStat::Completed => "COMPLETED",
            PartStat::InProcess => "IN-PROCESS",
            PartStat::Other(value) => value,
        }
    }
}

impl fmt::Display for PartStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cal_address_ignores_scheme_and_case() {
        let a = CalAddress::parse("MAILTO:Room1@Example.TEST").expect("address");
        let b = CalAddress::parse("mailto:room1@example.test").expect("address");
        assert_eq!(a, b);
        assert_eq!(a.uri(), "mailto:room1@example.test");
    }

    #[test]
    fn cal_address_refuses_other_schemes_and_empty_values() {
        assert_eq!(CalAddress::parse("urn:uuid:1234"), None);
        assert_eq!(CalAddress::parse("mailto:"), None);
        assert_eq!(CalAddress::parse(""), None);
    }

    #[test]
    fn method_is_case_insensitive() {
        assert_eq!(Method::parse("request"), Method::Request);
        assert_eq!(Method::parse("X-FOO"), Method::Other("X-FOO".into()));
    }

    #[test]
    fn partstat_round_trips_its_text() {
        for text in [
            "NEEDS-ACTION",
            "ACCEPTED",
            "DECLINED",
            "TENTATIVE",
            "IN-PROCESS",
        ] {
            assert_eq!(PartStat::parse(text).as_str(), text);
        }
    }
}
