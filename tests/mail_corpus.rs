//! The golden mail corpus: every `tests/data/mail/<vendor>/<name>.eml` is extracted and
//! compared with `<name>.expected.json` beside it (written by `make_corpus.py` from what each
//! message was built to contain). Only the keys the expectation lists are compared; a part's
//! `text_contains` lists strings its decoded text must contain, and every extracted part must
//! parse with the calendar layer (so a TNEF conversion is real iCalendar).

use serde_json::Value;
use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mail");
    let mut found = Vec::new();
    for vendor in std::fs::read_dir(&root).expect("tests/data/mail") {
        let vendor = vendor.expect("dir entry").path();
        if !vendor.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&vendor).expect("vendor dir") {
            let file = file.expect("dir entry").path();
            if file.extension().is_some_and(|e| e == "eml") {
                found.push(file);
            }
        }
    }
    found.sort();
    found
}

/// Checks that `expected` is contained in `actual`; returns the differences found.
fn subset(expected: &Value, actual: &Value, at: &str, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, e_value) in e {
                if key == "note" || key == "text_contains" {
                    continue;
                }
                let a_value = a.get(key).unwrap_or(&Value::Null);
                subset(e_value, a_value, &format!("{at}.{key}"), errors);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                errors.push(format!(
                    "{at}: expected {} entries, found {}: {a:?}",
                    e.len(),
                    a.len()
                ));
                return;
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                subset(e, a, &format!("{at}[{i}]"), errors);
            }
        }
        (e, a) if e == a => {}
        (e, a) => errors.push(format!("{at}: expected {e}, found {a}")),
    }
}

#[test]
fn every_corpus_message_extracts_as_expected() {
    let files = corpus();
    assert!(
        files.len() >= 30,
        "the corpus should hold at least 30 messages, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for eml in &files {
        let raw = std::fs::read(eml).expect("read .eml");
        let expected_path = eml.with_extension("expected.json");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let extracted = match imipd::mail::extract(&raw) {
            Ok(extracted) => extracted,
            Err(e) => {
                failures.push(format!("{}: extraction failed: {e}", eml.display()));
                continue;
            }
        };
        let actual = serde_json::to_value(&extracted).expect("serialisable");
        let mut errors = Vec::new();
        subset(&expected, &actual, "", &mut errors);
        if let Some(parts) = expected.get("parts").and_then(Value::as_array) {
            for (i, part) in parts.iter().enumerate() {
                let needles = part.get("text_contains").and_then(Value::as_array);
                for needle in needles.into_iter().flatten() {
                    let needle = needle.as_str().expect("text_contains holds strings");
                    let text = extracted.parts.get(i).map_or("", |p| p.text.as_str());
                    if !text.replace("\r\n ", "").contains(needle) {
                        errors.push(format!(".parts[{i}].text lacks {needle:?}:\n{text}"));
                    }
                }
            }
        }
        for part in &extracted.parts {
            if let Err(e) = imipd::calendar::parse(&part.text) {
                errors.push(format!(
                    "part {} does not parse as a calendar: {e}\n{}",
                    part.path, part.text
                ));
            }
        }
        if !errors.is_empty() {
            failures.push(format!("{}:\n  {}", eml.display(), errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
