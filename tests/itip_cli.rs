//! `imipd process` and `imipd show` as scripts use them: JSON lines, `--dry-run` changing
//! nothing, a second run of the same file being a duplicate, bare .ics files sent by their
//! ORGANIZER, and the exit status.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/itip-cli")
        .join(name)
}

fn imipd(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("output is UTF-8"),
    )
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

const NOW: &str = "2027-01-02T08:00:00Z";

#[test]
fn dry_run_prints_the_decision_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8 path");
    let file = data("request.eml");
    let (code, out) = imipd(&[
        "process",
        "--store",
        store,
        "--mailbox",
        "room@corp.test",
        "--now",
        NOW,
        "--dry-run",
        file.to_str().expect("path"),
    ]);
    assert_eq!(code, 0);
    let out = lines(&out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["outcome"], "added");
    assert_eq!(out[0]["method"], "REQUEST");
    assert_eq!(out[0]["uid"], "a01");
    assert_eq!(out[0]["replies"][0]["to"], "mailto:org@ext.test");
    assert_eq!(out[0]["replies"][0]["partstat"], "ACCEPTED");
    assert!(
        out[0]["replies"][0]["message"]
            .as_str()
            .expect("message")
            .contains("Auto-Submitted: auto-replied")
    );
    let (code, shown) = imipd(&["show", "--store", store]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&shown).expect("JSON"),
        Value::Array(Vec::new())
    );
}

#[test]
fn processing_the_same_file_twice_is_a_duplicate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8 path");
    let file = data("request.eml");
    let args = [
        "process",
        "--store",
        store,
        "--mailbox",
        "room@corp.test",
        "--now",
        NOW,
        file.to_str().expect("path"),
    ];
    let first = lines(&imipd(&args).1);
    assert_eq!(first[0]["outcome"], "added");
    let second = lines(&imipd(&args).1);
    assert_eq!(second[0]["outcome"], "no_action");
    assert!(
        second[0]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("duplicate")
    );
    assert_eq!(second[0]["replies"], Value::Array(Vec::new()));
    let shown: Value =
        serde_json::from_str(&imipd(&["show", "--store", store, "--mailbox", "room@corp.test"]).1)
            .expect("JSON");
    assert_eq!(shown[0]["uid"], "a01");
    assert_eq!(shown[0]["attendees"][1]["partstat"], "ACCEPTED");
    let (_, ics) = imipd(&["show", "--store", store, "--uid", "a01", "--format", "ics"]);
    assert!(
        ics.contains("UID:a01\r\n") && !ics.contains("METHOD:"),
        "{ics}"
    );
}

#[test]
fn a_bare_ics_file_is_sent_by_its_organizer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8 path");
    let file = data("invite.ics");
    let out = lines(
        &imipd(&[
            "process",
            "--store",
            store,
            "--mailbox",
            "room@corp.test",
            "--now",
            NOW,
            file.to_str().expect("path"),
        ])
        .1,
    );
    assert_eq!(out[0]["outcome"], "added", "{out:?}");
    assert_eq!(out[0]["replies"][0]["to"], "mailto:org@ext.test");
}

#[test]
fn bad_arguments_exit_non_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8 path");
    let file = data("request.eml");
    let (code, _) = imipd(&[
        "process",
        "--store",
        store,
        "--mailbox",
        "room@corp.test",
        "--now",
        "tomorrow",
        file.to_str().expect("path"),
    ]);
    assert_eq!(code, 2);
    let (code, _) = imipd(&[
        "process",
        "--store",
        store,
        "--mailbox",
        "room@corp.test",
        "missing.eml",
    ]);
    assert_eq!(code, 2);
    let (code, _) = imipd(&["show", "--store", store, "--format", "yaml"]);
    assert_eq!(code, 2);
}

#[test]
fn show_prints_the_stored_objects_as_jcal_and_hcalendar() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8 path");
    let file = data("request.eml");
    let (code, _) = imipd(&[
        "process",
        "--store",
        store,
        "--mailbox",
        "room@corp.test",
        "--now",
        NOW,
        file.to_str().expect("path"),
    ]);
    assert_eq!(code, 0);
    let (code, jcal) = imipd(&["show", "--store", store, "--format", "jcal"]);
    assert_eq!(code, 0);
    let jcal: Value = serde_json::from_str(&jcal).expect("jCal is JSON");
    assert_eq!(jcal[0], "vcalendar", "{jcal}");
    // The page shows the upcoming bookings: the review is 35 days after NOW.
    let (code, html) = imipd(&[
        "show", "--store", store, "--format", "html", "--now", NOW, "--days", "60",
    ]);
    assert_eq!(code, 0);
    assert!(html.contains("class=\"vevent h-event\""), "{html}");
    assert!(html.contains("Project review"), "{html}");
}

#[test]
fn a_message_from_the_sent_folder_is_decided_but_never_answered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("utf-8 path");
    let file = data("request.eml");
    let (code, out) = imipd(&[
        "process",
        "--store",
        store,
        "--mailbox",
        "room@corp.test",
        "--now",
        NOW,
        "--sent",
        file.to_str().expect("path"),
    ]);
    assert_eq!(code, 0);
    let out = lines(&out);
    assert_eq!(out[0]["outcome"], "added", "stored like any other");
    assert_eq!(out[0]["replies"], Value::Array(Vec::new()));
    let reason = out[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("not answered: the message is this mailbox's own, from its Sent folder (withheld: REPLY to org@ext.test"),
        "{reason}"
    );
}
