//! Read → write round trips of every iCalendar object under tests/data/ical.

use imipd::calendar;
use std::path::PathBuf;

fn data_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ical");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/ical exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ics"))
        .collect();
    files.sort();
    files
}

/// One content line split into name, parameters and raw value, honouring quotes.
#[derive(Debug, PartialEq, Eq)]
struct ContentLine {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

fn content_lines(bytes: &[u8]) -> Vec<ContentLine> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let text = text.trim_start_matches('\u{feff}');
    let mut unfolded: Vec<String> = Vec::new();
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push_str(rest);
            }
        } else if !line.is_empty() {
            unfolded.push(line.to_string());
        }
    }
    unfolded.iter().map(|l| split_line(l)).collect()
}

fn split_line(line: &str) -> ContentLine {
    let mut in_quotes = false;
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut value = None;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => {
                in_quotes = !in_quotes;
                current.push(ch);
            }
            ';' if !in_quotes => parts.push(std::mem::take(&mut current)),
            ':' if !in_quotes => {
                parts.push(std::mem::take(&mut current));
                value = Some(line[i + 1..].to_string());
                break;
            }
            _ => current.push(ch),
        }
    }
    let name = parts
        .first()
        .cloned()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let params = parts
        .iter()
        .skip(1)
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), v.replace('"', "")),
            None => (p.to_ascii_uppercase(), String::new()),
        })
        .collect();
    ContentLine {
        name,
        params,
        value: value.unwrap_or_default(),
    }
}

#[test]
fn round_trip_report() {
    for file in data_files() {
        let bytes = std::fs::read(&file).expect("readable");
        let cals = calendar::parse_bytes(&bytes).expect("parses");
        let out: String = cals.iter().map(calendar::write).collect();
        let a = content_lines(&bytes);
        let b = content_lines(out.as_bytes());
        for (x, y) in a.iter().zip(b.iter()) {
            if x != y {
                println!("{}:\n  in : {:?}\n  out: {:?}", file.display(), x, y);
            }
        }
        if a.len() != b.len() {
            println!("{}: {} lines in, {} out", file.display(), a.len(), b.len());
        }
    }
}
