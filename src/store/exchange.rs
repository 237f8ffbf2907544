//! `imipd store export` / `import`: every stored object as iCalendar, one VCALENDAR per
//! mailbox, restorable exactly.
//!
//! # Format
//!
//! ```text
//! BEGIN:VCALENDAR
//! VERSION:2.0
//! PRODID:-//imipd//store export//EN
//! X-IMIPD-MAILBOX:room1@example.test
//! X-IMIPD-BUSY-HORIZON:1830297600
//! BEGIN:X-IMIPD-OBJECT
//! X-IMIPD-META:{"uid":"…"\,"instances":[…]\,"tombstone":…\,"busy":[…]\,"layout":[…]}
//! END:X-IMIPD-OBJECT
//! BEGIN:VTIMEZONE          (the object's own components, byte for byte)
//! BEGIN:VEVENT
//! …
//! END:VCALENDAR
//! ```
//!
//! Each stored object is announced by an `X-IMIPD-OBJECT` component (an RFC 5545 x-comp,
//! which other readers ignore) whose `X-IMIPD-META` property (JSON, TEXT-escaped, folded)
//! carries what the iCalendar text cannot: the ordering keys per instance and attendee, the
//! tombstone, the busy intervals, and the layout needed to rebuild the object's own
//! VCALENDAR text exactly (its calendar properties, which VTIMEZONEs it used, in which
//! order). The object's components follow verbatim, so a calendar program importing the file
//! sees every event. A VTIMEZONE is written once per mailbox while its text stays the same
//! (written again when a later object carries a different definition of the same TZID).
//! An object whose text does not have the usual `BEGIN:VCALENDAR … END:VCALENDAR` shape is
//! carried whole inside the metadata (`raw`) instead, so the round trip is always exact.
//!
//! Import writes each mailbox's objects, busy intervals and horizon in one transaction,
//! replacing stored objects of the same UID and leaving others alone.

use super::busy::BusyInterval;
use super::records::{AttendeeOrder, InstanceOrder, StoredObject, Tombstone};
use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why an export file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not in the export format.
    #[error("line {line}: {problem}")]
    Format {
        /// 1-based logical line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One step of an object's VCALENDAR layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Layout {
    /// A calendar-level content line, raw (folds included, without the final line end).
    Line(String),
    /// The VTIMEZONE with this TZID.
    Tz(String),
    /// The object's next component, in file order.
    Component,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    instances: Vec<InstanceOrder>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attendees: Vec<AttendeeOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tombstone: Option<Tombstone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    busy: Vec<BusyInterval>,
    /// The line end of the stored text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eol: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    layout: Vec<Layout>,
    /// The whole text, when it could not be laid out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    /// The unscrubbed original the privacy rules kept (`StoredObject::original`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original: Option<String>,
}

/// A logical content line: its physical lines (continuations included), without line ends.
type Unit = Vec<String>;

fn units(text: &str, eol: &str) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    for line in text.split(eol) {
        if (line.starts_with(' ') || line.starts_with('\t'))
            && let Some(last) = out.last_mut()
        {
            last.push(line.to_string());
        } else {
            out.push(vec![line.to_string()]);
        }
    }
    out
}

fn unfold(unit: &[String]) -> String {
    let mut s = unit[0].clone();
    for cont in &unit[1..] {
        s.push_str(&cont[1..]);
    }
    s
}

/// (name upper-cased, value) of an unfolded content line.
fn name_value(line: &str) -> (String, &str) {
    let name_end = line.find([':', ';']).unwrap_or(line.len());
    let value = line.find(':').map_or("", |i| &line[i + 1..]);
    (line[..name_end].to_ascii_uppercase(), value)
}

/// A top-level component: its name and raw units.
struct Component {
    name: String,
    units: Vec<Unit>,
}

fn tzid(component: &Component) -> Option<String> {
    component.units.iter().find_map(|u| {
        let line = unfold(u);
        let (name, value) = name_value(&line);
        (name == "TZID").then(|| value.to_string())
    })
}

/// Splits a stored object's text into layout, components; `None` if it has another shape.
fn lay_out(ical: &str) -> Option<(String, Vec<Layout>, Vec<Component>)> {
    let eol = if ical.contains("\r\n") { "\r\n" } else { "\n" };
    let body = ical.strip_suffix(eol)?;
    let all = units(body, eol);
    let (first, rest) = all.split_first()?;
    let (last, inner) = rest.split_last()?;
    if !unfold(first).eq_ignore_ascii_case("BEGIN:VCALENDAR")
        || !unfold(last).eq_ignore_ascii_case("END:VCALENDAR")
    {
        return None;
    }
    let mut layout = Vec::new();
    let mut components = Vec::new();
    let mut current: Option<(Component, usize)> = None;
    for unit in inner {
        let line = unfold(unit);
        let (name, value) = name_value(&line);
        match current.as_mut() {
            None if name == "BEGIN" => {
                current = Some((
                    Component {
                        name: value.to_ascii_uppercase(),
                        units: vec![unit.clone()],
                    },
                    1,
                ));
            }
            None => layout.push(Layout::Line(unit.join(eol))),
            Some((component, depth)) => {
                component.units.push(unit.clone());
                if name == "BEGIN" {
                    *depth += 1;
                } else if name == "END" {
                    *depth -= 1;
                    if *depth == 0 {
                        let (component, _) = current.take().expect("current is Some here");
                        match (component.name == "VTIMEZONE")
                            .then(|| tzid(&component))
                            .flatten()
                        {
                            Some(id) => layout.push(Layout::Tz(id)),
                            None => layout.push(Layout::Component),
                        }
                        components.push(component);
                    }
                }
            }
        }
    }
    if current.is_some() {
        return None;
    }
    Some((eol.to_string(), layout, components))
}

fn rebuild(
    eol: &str,
    layout: &[Layout],
    components: &mut std::vec::IntoIter<Component>,
    timezones: &HashMap<String, Vec<Unit>>,
) -> Option<String> {
    let mut out = String::new();
    let mut push = |line: &str| {
        out.push_str(line);
        out.push_str(eol);
    };
    push("BEGIN:VCALENDAR");
    for step in layout {
        match step {
            Layout::Line(line) => push(line),
            Layout::Tz(id) => {
                for unit in timezones.get(id)? {
                    push(&unit.join(eol));
                }
            }
            Layout::Component => {
                for unit in components.next()?.units {
                    push(&unit.join(eol));
                }
            }
        }
    }
    push("END:VCALENDAR");
    Some(out)
}

fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn unescape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `line` folded at 75 octets (RFC 5545 §3.1), CRLF-terminated.
fn push_folded(out: &mut String, line: &str) {
    let mut budget = 75;
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > budget {
            out.push_str("\r\n ");
            budget = 74;
            used = 0;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

impl Store {
    /// The export of `mailbox` (or of every mailbox) as iCalendar text.
    pub fn export(&self, mailbox: Option<&str>) -> Result<String, StoreError> {
        let mailboxes = match mailbox {
            Some(m) => vec![m.to_string()],
            None => self.mailboxes()?,
        };
        let mut out = String::new();
        for mailbox in mailboxes {
            out.push_str("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd//store export//EN\r\n");
            push_folded(
                &mut out,
                &format!("X-IMIPD-MAILBOX:{}", escape_text(&mailbox)),
            );
            let horizon = self.busy_meta(&mailbox)?.horizon;
            out.push_str(&format!("X-IMIPD-BUSY-HORIZON:{horizon}\r\n"));
            let mut emitted_tz: HashMap<String, Vec<Unit>> = HashMap::new();
            for (_, object) in self.objects(Some(&mailbox))? {
                let mut meta = Meta {
                    uid: object.uid.clone(),
                    instances: object.instances.clone(),
                    attendees: object.attendees.clone(),
                    tombstone: object.tombstone.clone(),
                    busy: self.busy_of(&mailbox, &object.uid)?,
                    eol: None,
                    layout: Vec::new(),
                    raw: None,
                    original: object.original.clone(),
                };
                let mut body = String::new();
                let exact = lay_out(&object.ical).and_then(|(eol, layout, components)| {
                    let mut timezones = emitted_tz.clone();
                    for c in &components {
                        if c.name != "VTIMEZONE" {
                            continue;
                        }
                        if let Some(id) = tzid(c)
                            && timezones.get(&id) != Some(&c.units)
                        {
                            timezones.insert(id, c.units.clone());
                            for unit in &c.units {
                                body.push_str(&unit.join("\r\n"));
                                body.push_str("\r\n");
                            }
                        }
                    }
                    let mut others = Vec::new();
                    for c in components {
                        if c.name == "VTIMEZONE" && tzid(&c).is_some() {
                            continue;
                        }
                        for unit in &c.units {
                            body.push_str(&unit.join("\r\n"));
                            body.push_str("\r\n");
                        }
                        others.push(c);
                    }
                    let rebuilt = rebuild(&eol, &layout, &mut others.into_iter(), &timezones)?;
                    (rebuilt == object.ical).then_some((eol, layout, timezones))
                });
                match exact {
                    Some((eol, layout, timezones)) => {
                        meta.eol = (eol != "\r\n").then_some(eol);
                        meta.layout = layout;
                        emitted_tz = timezones;
                    }
                    None => {
                        body.clear();
                        meta.raw = Some(object.ical.clone());
                    }
                }
                let json = serde_json::to_string(&meta).map_err(super::corrupt("export meta"))?;
                out.push_str("BEGIN:X-IMIPD-OBJECT\r\n");
                push_folded(&mut out, &format!("X-IMIPD-META:{}", escape_text(&json)));
                out.push_str("END:X-IMIPD-OBJECT\r\n");
                out.push_str(&body);
            }
            out.push_str("END:VCALENDAR\r\n");
        }
        Ok(out)
    }

    /// Restores an export; returns how many objects were written.
    pub async fn import(&self, text: &str) -> Result<usize, ImportError> {
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let all = units(text, eol);
        let format = |line: usize, problem: &str| ImportError::Format {
            line: line + 1,
            problem: problem.to_string(),
        };
        struct Pending {
            meta: Meta,
            components: Vec<Component>,
        }
        let mut written = 0;
        let mut i = 0;
        while i < all.len() {
            let line = unfold(&all[i]);
            if line.trim().is_empty() {
                i += 1;
                continue;
            }
            if !line.eq_ignore_ascii_case("BEGIN:VCALENDAR") {
                return Err(format(i, "expected BEGIN:VCALENDAR"));
            }
            i += 1;
            let mut mailbox = None;
            let mut horizon = 0;
            let mut timezones: HashMap<String, Vec<Unit>> = HashMap::new();
            let mut objects: Vec<(StoredObject, Vec<BusyInterval>)> = Vec::new();
            let mut pending: Option<Pending> = None;
            let finish = |p: Pending,
                          timezones: &HashMap<String, Vec<Unit>>,
                          at: usize|
             -> Result<(StoredObject, Vec<BusyInterval>), ImportError> {
                let ical = match p.meta.raw {
                    Some(raw) => raw,
                    None => rebuild(
                        p.meta.eol.as_deref().unwrap_or("\r\n"),
                        &p.meta.layout,
                        &mut p.components.into_iter(),
                        timezones,
                    )
                    .ok_or_else(|| {
                        format(at, "an object's layout names a VTIMEZONE or component that is not in the file")
                    })?,
                };
                let object = StoredObject {
                    uid: p.meta.uid,
                    ical,
                    instances: p.meta.instances,
                    attendees: p.meta.attendees,
                    tombstone: p.meta.tombstone,
                    original: p.meta.original,
                };
                Ok((object, p.meta.busy))
            };
            loop {
                let Some(unit) = all.get(i) else {
                    return Err(format(i, "the file ends inside a VCALENDAR"));
                };
                let line = unfold(unit);
                let (name, value) = name_value(&line);
                if name == "END" {
                    if let Some(p) = pending.take() {
                        objects.push(finish(p, &timezones, i)?);
                    }
                    i += 1;
                    break;
                }
                if name != "BEGIN" {
                    match name.as_str() {
                        "X-IMIPD-MAILBOX" => mailbox = Some(unescape_text(value)),
                        "X-IMIPD-BUSY-HORIZON" => {
                            horizon = value
                                .trim()
                                .parse()
                                .map_err(|_| format(i, "X-IMIPD-BUSY-HORIZON is not a number"))?;
                        }
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                let start = i;
                let component_name = value.to_ascii_uppercase();
                let mut depth = 0;
                let mut component = Component {
                    name: component_name.clone(),
                    units: Vec::new(),
                };
                loop {
                    let Some(unit) = all.get(i) else {
                        return Err(format(start, "a component is not closed"));
                    };
                    let (n, _) = name_value(&unfold(unit));
                    component.units.push(unit.clone());
                    i += 1;
                    if n == "BEGIN" {
                        depth += 1;
                    } else if n == "END" {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                if component_name == "X-IMIPD-OBJECT" {
                    if let Some(p) = pending.take() {
                        objects.push(finish(p, &timezones, start)?);
                    }
                    let meta = component
                        .units
                        .iter()
                        .map(|u| unfold(u))
                        .find_map(|l| {
                            let (n, v) = name_value(&l);
                            (n == "X-IMIPD-META").then(|| unescape_text(v))
                        })
                        .ok_or_else(|| format(start, "X-IMIPD-OBJECT without X-IMIPD-META"))?;
                    let meta: Meta = serde_json::from_str(&meta).map_err(|e| {
                        format(start, &format!("X-IMIPD-META does not decode: {e}"))
                    })?;
                    pending = Some(Pending {
                        meta,
                        components: Vec::new(),
                    });
                } else if component_name == "VTIMEZONE"
                    && let Some(id) = tzid(&component)
                {
                    timezones.insert(id, component.units);
                } else {
                    match pending.as_mut() {
                        Some(p) => p.components.push(component),
                        None => {
                            return Err(format(
                                start,
                                "a component before any X-IMIPD-OBJECT (not an imipd export)",
                            ));
                        }
                    }
                }
            }
            let mailbox = mailbox.ok_or_else(|| {
                format(i.saturating_sub(1), "a VCALENDAR without X-IMIPD-MAILBOX")
            })?;
            self.restore(&mailbox, horizon, &objects).await?;
            written += objects.len();
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escaping_round_trips() {
        let s = r#"{"a":"b;c,d\\e","f":"line\nnext"}"#;
        assert_eq!(unescape_text(&escape_text(s)), s);
    }

    #[test]
    fn folded_lines_are_at_most_75_octets() {
        let mut out = String::new();
        push_folded(&mut out, &format!("X-IMIPD-META:{}", "é".repeat(100)));
        for line in out.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
        }
        let physical: Vec<String> = out
            .trim_end_matches("\r\n")
            .split("\r\n")
            .map(str::to_string)
            .collect();
        assert_eq!(
            unfold(&physical),
            format!("X-IMIPD-META:{}", "é".repeat(100))
        );
    }
}
