//! Delivery reports for our own messages, data-driven through `imipd process` and
//! `imipd show`: one directory per case under `tests/data/delivery/`, holding the messages
//! in the order they arrive and an `expected.json`:
//!
//! - `mailbox`: the mailbox they arrive at;
//! - `steps`: per message, in order: `file`, the `outcome` printed, how many `replies` were
//!   queued, optionally the `uid` and texts the `reason` must contain (`reason_contains`);
//! - `show`: what `imipd show` prints afterwards (and `imipd show --sent` lists exactly the
//!   replies the steps queued): for the object `uid`, the
//!   `organizer_schedule_status`, the `schedule_status` per attendee
//!   (`attendee_schedule_status`) and the `partstat` per attendee; or `objects`, how many
//!   objects are stored.
//!
//! Our replies' Message-IDs are deterministic but long: a message file (and an expected text)
//! writes `{{REPLY n}}` for the Message-ID of the first reply that step `n` queued.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const NOW: &str = "2027-01-01T10:00:00Z";

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/delivery");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data/delivery exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn imipd(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "imipd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("output is UTF-8")
}

/// Replaces `{{REPLY n}}` with the Message-ID step `n` queued.
fn substitute(text: &str, ids: &HashMap<usize, String>) -> String {
    let mut out = text.to_string();
    for (step, id) in ids {
        out = out.replace(&format!("{{{{REPLY {step}}}}}"), id);
    }
    assert!(
        !out.contains("{{REPLY"),
        "a placeholder names a step without a reply: {out}"
    );
    out
}

/// The Message-ID header of a composed message, without brackets.
fn message_id_of(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID:"))
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .expect("a composed reply has a Message-ID")
}

fn run_case(dir: &Path) {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
    )
    .expect("expected.json is JSON");
    let mailbox = expected["mailbox"].as_str().expect("mailbox");
    let work = tempfile::tempdir().expect("tempdir");
    let store = work.path().join("store");
    let store = store.to_str().expect("utf-8 path");
    let mut ids: HashMap<usize, String> = HashMap::new();
    let mut queued = 0;
    let steps = expected["steps"].as_array().expect("steps");
    for (n, step) in steps.iter().enumerate() {
        let n = n + 1;
        let file = step["file"].as_str().expect("file");
        let text = std::fs::read_to_string(dir.join(file)).expect("the step's file");
        let path = work.path().join(file);
        std::fs::write(&path, substitute(&text, &ids)).expect("write the step's file");
        let out = imipd(&[
            "process",
            "--store",
            store,
            "--mailbox",
            mailbox,
            "--now",
            NOW,
            path.to_str().expect("utf-8 path"),
        ]);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 1, "{name} step {n}: {out}");
        let line = &lines[0];
        assert_eq!(
            line["outcome"], step["outcome"],
            "{name} step {n} ({file}): {line}"
        );
        let replies = line["replies"].as_array().expect("replies");
        assert_eq!(
            replies.len() as u64,
            step["replies"].as_u64().expect("replies"),
            "{name} step {n} ({file}): {line}"
        );
        queued += replies.len();
        if let Some(first) = replies.first() {
            ids.insert(
                n,
                message_id_of(first["message"].as_str().expect("message")),
            );
        }
        if let Some(uid) = step.get("uid") {
            assert_eq!(&line["uid"], uid, "{name} step {n}: {line}");
        }
        let reason = line["reason"].as_str().expect("reason");
        for want in step["reason_contains"].as_array().into_iter().flatten() {
            let want = substitute(want.as_str().expect("text"), &ids);
            assert!(
                reason.contains(&want),
                "{name} step {n}: the reason {reason:?} lacks {want:?}"
            );
        }
    }
    // The sent-reply index holds one entry per queued reply; a delivery report adds none.
    let sent = imipd(&["show", "--store", store, "--sent"]);
    assert_eq!(sent.lines().count(), queued, "{name}: {sent}");
    let shown: Value =
        serde_json::from_str(&imipd(&["show", "--store", store])).expect("show prints JSON");
    let objects = shown.as_array().expect("an array");
    let want = &expected["show"];
    if let Some(count) = want.get("objects") {
        assert_eq!(
            objects.len() as u64,
            count.as_u64().expect("a count"),
            "{name}: {shown}"
        );
    }
    let Some(uid) = want.get("uid") else {
        return;
    };
    let object = objects
        .iter()
        .find(|o| &o["uid"] == uid)
        .unwrap_or_else(|| panic!("{name}: no object {uid} in {shown}"));
    assert_eq!(
        object
            .get("organizer_schedule_status")
            .unwrap_or(&Value::Null),
        want.get("organizer_schedule_status")
            .unwrap_or(&Value::Null),
        "{name}: {object}"
    );
    let attendee = |address: &str| -> &Value {
        object["attendees"]
            .as_array()
            .expect("attendees")
            .iter()
            .find(|a| a["address"] == address)
            .unwrap_or_else(|| panic!("{name}: no attendee {address} in {object}"))
    };
    for (address, status) in want["attendee_schedule_status"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert_eq!(
            &attendee(address)["schedule_status"],
            status,
            "{name}: {object}"
        );
    }
    for (address, partstat) in want["partstat"].as_object().into_iter().flatten() {
        assert_eq!(&attendee(address)["partstat"], partstat, "{name}: {object}");
    }
}

#[test]
fn delivery_reports_are_recorded_on_the_object_and_never_answered() {
    let cases = cases();
    assert!(cases.len() >= 5, "the delivery cases are found");
    for dir in cases {
        run_case(&dir);
    }
}
