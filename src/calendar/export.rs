//! Exports of the model: iCalendar 2.0 text, jCal (RFC 7265) and an HTML page of hCalendar
//! 1.0 microformats.

use super::view::format_datetime;
use calcard::common::{IanaString, PartialDateTime};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarParameterValue, ICalendarPeriod, ICalendarProperty, ICalendarValue, Uri,
};
use serde_json::{Map, Value, json};

/// The formats `imipd convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// iCalendar 2.0 (RFC 5545).
    Ics,
    /// jCal (RFC 7265): one JSON array per VCALENDAR; several are wrapped in an array.
    Jcal,
    /// An HTML page with one hCalendar `vevent` per VEVENT.
    Html,
}

/// Writes `calendars` in `format`.
pub fn export(calendars: &[ICalendar], format: Format) -> String {
    match format {
        Format::Ics => calendars.iter().map(super::write).collect(),
        Format::Jcal => {
            let value = match calendars {
                [one] => jcal(one),
                many => Value::Array(many.iter().map(jcal).collect()),
            };
            let mut text = serde_json::to_string_pretty(&value)
                .expect("a serde_json::Value always serialises");
            text.push('\n');
            text
        }
        Format::Html => hcalendar_page(calendars),
    }
}

/// One VCALENDAR as jCal (RFC 7265 §3).
pub fn jcal(ical: &ICalendar) -> Value {
    match ical.components.first() {
        Some(root) => jcal_component(ical, root, 0),
        None => json!(["vcalendar", [], []]),
    }
}

fn jcal_component(ical: &ICalendar, component: &ICalendarComponent, depth: usize) -> Value {
    let properties: Vec<Value> = component.entries.iter().map(jcal_property).collect();
    let children: Vec<Value> = if depth > super::MAX_DEPTH * 4 {
        Vec::new()
    } else {
        component
            .component_ids
            .iter()
            .filter_map(|id| ical.components.get(*id as usize))
            .map(|child| jcal_component(ical, child, depth + 1))
            .collect()
    };
    json!([
        component.component_type.as_str().to_ascii_lowercase(),
        properties,
        children
    ])
}

fn jcal_property(entry: &ICalendarEntry) -> Value {
    let name = entry.name.as_str().to_ascii_lowercase();
    let mut params = Map::new();
    let mut explicit_type = None;
    for param in &entry.params {
        let key = param.name.as_str().to_ascii_lowercase();
        let text = param_text(&param.value);
        if param.name == ICalendarParameterName::Value {
            // The type goes into the type slot (RFC 7265 §3.4.1), not the parameters.
            explicit_type = Some(text.to_ascii_lowercase());
            continue;
        }
        match params.get_mut(&key) {
            Some(Value::Array(list)) => list.push(Value::String(text)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(text)]);
            }
            None => {
                params.insert(key, Value::String(text));
            }
        }
    }
    let is_address = matches!(
        entry.name,
        ICalendarProperty::Attendee | ICalendarProperty::Organizer
    );
    let mut kind = None;
    let mut values = Vec::new();
    for value in &entry.values {
        let (this_kind, json) = jcal_value(&entry.name, value, is_address);
        kind.get_or_insert(this_kind);
        values.push(json);
    }
    // Structured values (GEO, REQUEST-STATUS) are one array value (RFC 7265 §3.4.1.2).
    let structured = matches!(
        entry.name,
        ICalendarProperty::Geo | ICalendarProperty::RequestStatus
    ) && values.len() > 1;
    let kind = explicit_type
        .or(kind.map(str::to_string))
        .unwrap_or_else(|| "text".to_string());
    let kind = if matches!(entry.name, ICalendarProperty::Other(_)) && kind == "text" {
        "unknown".to_string()
    } else {
        kind
    };
    let mut out = vec![
        Value::String(name),
        Value::Object(params),
        Value::String(kind),
    ];
    if structured {
        out.push(Value::Array(values));
    } else if values.is_empty() {
        out.push(Value::String(String::new()));
    } else {
        out.extend(values);
    }
    Value::Array(out)
}

fn jcal_value(
    name: &ICalendarProperty,
    value: &ICalendarValue,
    is_address: bool,
) -> (&'static str, Value) {
    match value {
        ICalendarValue::PartialDateTime(dt) => {
            if matches!(
                name,
                ICalendarProperty::Tzoffsetfrom | ICalendarProperty::Tzoffsetto
            ) {
                ("utc-offset", Value::String(utc_offset(dt)))
            } else if dt.hour.is_none() {
                ("date", Value::String(extended(dt)))
            } else {
                ("date-time", Value::String(extended(dt)))
            }
        }
        ICalendarValue::Duration(d) => ("duration", Value::String(d.to_string())),
        ICalendarValue::RecurrenceRule(rule) => ("recur", recur_object(&rule.to_string())),
        ICalendarValue::Period(p) => (
            "period",
            match p {
                ICalendarPeriod::Range { start, end } => json!([extended(start), extended(end)]),
                ICalendarPeriod::Duration { start, duration } => {
                    json!([extended(start), duration.to_string()])
                }
            },
        ),
        ICalendarValue::Uri(Uri::Location(uri)) => (
            if is_address { "cal-address" } else { "uri" },
            Value::String(uri.clone()),
        ),
        ICalendarValue::Uri(Uri::Data(data)) => {
            let mut text = String::new();
            ICalendarEntry {
                name: ICalendarProperty::Attach,
                params: Vec::new(),
                values: vec![ICalendarValue::Uri(Uri::Data(data.clone()))],
            }
            .write_to(&mut text)
            .expect("writing to a String cannot fail");
            let unfolded = text.replace("\r\n ", "");
            let uri = unfolded
                .trim_end()
                .split_once(':')
                .map(|(_, v)| v.replace("\\,", ","))
                .unwrap_or_default();
            ("uri", Value::String(uri))
        }
        ICalendarValue::Binary(bytes) => {
            let mut text = String::new();
            super::writer::base64_into(&mut text, bytes);
            ("binary", Value::String(text))
        }
        ICalendarValue::Boolean(b) => ("boolean", Value::Bool(*b)),
        ICalendarValue::Integer(i) => ("integer", json!(i)),
        ICalendarValue::Float(f) => ("float", json!(f)),
        ICalendarValue::Text(t) => ("text", Value::String(t.clone())),
        ICalendarValue::CalendarScale(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::Method(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::Classification(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::Status(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::Transparency(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::Action(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::BusyType(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::ParticipantType(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::ResourceType(v) => ("text", Value::String(v.as_str().to_string())),
        ICalendarValue::Proximity(v) => ("text", Value::String(v.as_str().to_string())),
    }
}

/// An RRULE as a jCal recur object (RFC 7265 §3.6.10): lower-case keys, numbers as numbers,
/// lists as arrays, UNTIL in the extended date(-time) form.
fn recur_object(rule: &str) -> Value {
    let mut map = Map::new();
    for part in rule.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        let item = |v: &str| -> Value {
            if key == "until" {
                return Value::String(extended_text(v));
            }
            match v.parse::<i64>() {
                Ok(n) if key != "byday" && key != "wkst" && key != "freq" => json!(n),
                _ => Value::String(v.to_string()),
            }
        };
        let items: Vec<Value> = value.split(',').map(item).collect();
        let value = if items.len() == 1 {
            items.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(items)
        };
        map.insert(key, value);
    }
    Value::Object(map)
}

fn param_text(value: &ICalendarParameterValue) -> String {
    match value {
        ICalendarParameterValue::Text(t) => t.clone(),
        ICalendarParameterValue::Integer(i) => i.to_string(),
        ICalendarParameterValue::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        ICalendarParameterValue::Uri(Uri::Location(uri)) => uri.clone(),
        ICalendarParameterValue::Uri(Uri::Data(_)) => String::new(),
        ICalendarParameterValue::Cutype(v) => v.as_str().to_string(),
        ICalendarParameterValue::Fbtype(v) => v.as_str().to_string(),
        ICalendarParameterValue::Partstat(v) => v.as_str().to_string(),
        ICalendarParameterValue::Related(v) => v.as_str().to_string(),
        ICalendarParameterValue::Reltype(v) => v.as_str().to_string(),
        ICalendarParameterValue::Role(v) => v.as_str().to_string(),
        ICalendarParameterValue::ScheduleAgent(v) => v.as_str().to_string(),
        ICalendarParameterValue::ScheduleForceSend(v) => v.as_str().to_string(),
        ICalendarParameterValue::Value(v) => v.as_str().to_string(),
        ICalendarParameterValue::Display(v) => v.as_str().to_string(),
        ICalendarParameterValue::Feature(v) => v.as_str().to_string(),
        ICalendarParameterValue::Duration(d) => d.to_string(),
        ICalendarParameterValue::Linkrel(v) => v.as_str().to_string(),
        ICalendarParameterValue::Null => String::new(),
    }
}

/// `2027-01-04T09:00:00Z` / `2027-01-04` from a calcard value.
fn extended(dt: &PartialDateTime) -> String {
    extended_text(&format_datetime(dt))
}

/// The extended ISO 8601 form of a basic RFC 5545 date or date-time.
fn extended_text(basic: &str) -> String {
    let b = basic.as_bytes();
    if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) {
        let date = format!("{}-{}-{}", &basic[..4], &basic[4..6], &basic[6..8]);
        // Only ASCII digits are sliced: an UNTIL straight from the input may hold anything.
        if b.len() >= 15 && b[8] == b'T' && b[9..15].iter().all(u8::is_ascii_digit) {
            let rest = &basic[15..];
            return format!(
                "{date}T{}:{}:{}{rest}",
                &basic[9..11],
                &basic[11..13],
                &basic[13..15]
            );
        }
        return date;
    }
    basic.to_string()
}

fn utc_offset(dt: &PartialDateTime) -> String {
    format!(
        "{}{:02}:{:02}",
        if dt.tz_minus { '-' } else { '+' },
        dt.tz_hour.unwrap_or(0),
        dt.tz_minute.unwrap_or(0)
    )
}

/// An HTML page with one hCalendar `vevent` per VEVENT (hCalendar 1.0 with the dtend-issue
/// resolution: a whole-day end date is inclusive, so DTEND;VALUE=DATE is shown one day
/// earlier).
pub fn hcalendar_page(calendars: &[ICalendar]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Calendar</title>\n</head>\n<body>\n",
    );
    for ical in calendars {
        for component in ical
            .components
            .iter()
            .filter(|c| c.component_type == ICalendarComponentType::VEvent)
        {
            vevent(&mut out, component);
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn vevent(out: &mut String, event: &ICalendarComponent) {
    let text = |p: ICalendarProperty| {
        event
            .property(&p)
            .and_then(|e| e.values.first())
            .and_then(ICalendarValue::as_text)
            .map(str::to_string)
    };
    out.push_str("<div class=\"vevent\">\n");
    let summary = text(ICalendarProperty::Summary).unwrap_or_default();
    out.push_str(&format!(
        "  <h2 class=\"summary\">{}</h2>\n",
        html(&summary)
    ));
    let start = event.property(&ICalendarProperty::Dtstart).and_then(|e| {
        e.values
            .first()
            .and_then(ICalendarValue::as_partial_date_time)
            .map(|v| (e, v))
    });
    if let Some((entry, value)) = start {
        out.push_str(&format!(
            "  <p>From <abbr class=\"dtstart\" title=\"{}\">{}</abbr>",
            html(&extended(value)),
            html(&shown_time(value, entry.tz_id()))
        ));
        let end = event.property(&ICalendarProperty::Dtend).and_then(|e| {
            e.values
                .first()
                .and_then(ICalendarValue::as_partial_date_time)
                .map(|v| (e, v))
        });
        if let Some((end_entry, end_value)) = end {
            let end_text = if end_value.hour.is_none() {
                inclusive_end(end_value)
            } else {
                extended(end_value)
            };
            let shown = if end_value.hour.is_none() {
                end_text.clone()
            } else {
                shown_time(end_value, end_entry.tz_id())
            };
            out.push_str(&format!(
                " to <abbr class=\"dtend\" title=\"{}\">{}</abbr>",
                html(&end_text),
                html(&shown)
            ));
        }
        out.push_str("</p>\n");
    }
    if let Some(location) = text(ICalendarProperty::Location) {
        out.push_str(&format!(
            "  <p>Location: <span class=\"location\">{}</span></p>\n",
            html(&location)
        ));
    }
    if let Some(description) = text(ICalendarProperty::Description) {
        out.push_str(&format!(
            "  <div class=\"description\">{}</div>\n",
            html(&description).replace('\n', "<br>\n")
        ));
    }
    if let Some(url) = event
        .property(&ICalendarProperty::Url)
        .and_then(|e| e.values.first())
        .and_then(|v| match v {
            ICalendarValue::Uri(Uri::Location(u)) => Some(u.clone()),
            other => other.as_text().map(str::to_string),
        })
    {
        out.push_str(&format!(
            "  <p><a class=\"url\" href=\"{0}\">{0}</a></p>\n",
            html(&url)
        ));
    }
    if let Some(organizer) = event.property(&ICalendarProperty::Organizer) {
        out.push_str(&format!(
            "  <p>Organizer: {}</p>\n",
            person("organizer", organizer)
        ));
    }
    let attendees: Vec<String> = event
        .properties(&ICalendarProperty::Attendee)
        .map(|a| format!("    <li>{}</li>\n", person("attendee", a)))
        .collect();
    if !attendees.is_empty() {
        out.push_str("  <ul>\n");
        for a in attendees {
            out.push_str(&a);
        }
        out.push_str("  </ul>\n");
    }
    if let Some(uid) = text(ICalendarProperty::Uid) {
        out.push_str(&format!(
            "  <p><small>UID: <span class=\"uid\">{}</span></small></p>\n",
            html(&uid)
        ));
    }
    out.push_str("</div>\n");
}

/// An organizer or attendee as an embedded hCard (`vcard` with `fn` and `email`).
fn person(class: &str, entry: &ICalendarEntry) -> String {
    let address = entry
        .values
        .first()
        .and_then(|v| match v {
            ICalendarValue::Uri(Uri::Location(u)) => Some(u.clone()),
            other => other.as_text().map(str::to_string),
        })
        .unwrap_or_default();
    let email = address
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("mailto:"))
        .map(|_| address[7..].to_string())
        .unwrap_or_else(|| address.clone());
    let name = entry
        .parameter(&ICalendarParameterName::Cn)
        .and_then(ICalendarParameterValue::as_text)
        .map(str::to_string)
        .unwrap_or_else(|| email.clone());
    format!(
        "<span class=\"{class} vcard\"><a class=\"fn email\" href=\"mailto:{}\">{}</a></span>",
        html(&email),
        html(&name)
    )
}

/// A whole-day DTEND (exclusive in iCalendar) as hCalendar's inclusive end date.
fn inclusive_end(value: &PartialDateTime) -> String {
    match super::tz::naive_of(value) {
        Ok(naive) => (naive.date() - chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string(),
        Err(_) => extended(value),
    }
}

fn shown_time(value: &PartialDateTime, tzid: Option<&str>) -> String {
    let mut shown = extended(value).replace('T', " ");
    if let Some(tzid) = tzid {
        shown.push_str(&format!(" ({tzid})"));
    }
    shown
}

fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_until_with_non_ascii_after_the_date_is_no_panic() {
        // Byte 15 falls inside the second three-byte character.
        assert_eq!(extended_text("20270101T1\u{20ac}\u{20ac}"), "2027-01-01");
        assert_eq!(extended_text("20270101T093000Z"), "2027-01-01T09:30:00Z");
    }
}
