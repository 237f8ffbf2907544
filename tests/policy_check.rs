//! `imipd check` prints each mailbox's effective policy in words.

use std::path::Path;
use std::process::Command;

#[test]
fn check_prints_the_effective_policy_of_each_mailbox_in_words() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy/check/imipd.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("imipd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "room2@example.test (Room 2):",
        "answered TENTATIVE for a person to confirm",
        "only example.test may book, and only from this mailbox's own domains",
        "never: intern@example.test",
        "at most 30 days ahead; a series reaching beyond is declined",
        "at most 240 minutes",
        "only on Mon, Tue, Wed, Thu 07:30–18:00 Europe/Berlin",
        "when 2 other booking(s) already take the time",
        "more than 2 of its instances or more than 20%",
        "requests in policy are booked automatically only for boss@example.test",
        "requests in policy from example.test (unless booked automatically) are held TENTATIVE for a delegate; other organisers are declined",
        "requests out of policy from boss@example.test are held TENTATIVE for a delegate instead of declined",
        "held requests are sent to facilities@example.test to decide",
        "a decline for a conflict names the conflicting booking's organiser",
        "the stored copy of a booking drops its descriptions, alarms",
        "the stored subject is replaced with the organiser's name",
        "private and confidential bookings are stored as \"Private booking\"",
        "the original is kept beside the scrubbed copy (imipd show --original)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn check_refuses_a_configuration_that_does_not_load() {
    let out = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["check", "--config", "/nonexistent/imipd.toml"])
        .output()
        .expect("imipd runs");
    assert_eq!(out.status.code(), Some(2));
}

/// Runs imipd with `args`, returning its exit code and standard output.
fn imipd(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(args)
        .output()
        .expect("imipd runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn show_prints_the_scrubbed_copy_and_the_kept_original_on_request() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy");
    let config = data.join("privacy-cli/imipd.toml");
    let request = data.join("privacy-keeps-the-original-when-configured/request.ics");
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = tmp.path().join("store");
    let (code, text) = imipd(&[
        "process".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
        "--mailbox".as_ref(),
        "room@corp.test".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--now".as_ref(),
        "2027-01-04T08:00:00Z".as_ref(),
        request.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("\"outcome\":\"added\""), "{text}");
    let show = |original: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "show".as_ref(),
            "--store".as_ref(),
            store.as_os_str(),
            "--format".as_ref(),
            "ics".as_ref(),
        ];
        if original {
            args.push("--original".as_ref());
        }
        let (code, text) = imipd(&args);
        assert_eq!(code, Some(0), "{text}");
        text.replace("\r\n ", "")
    };
    let scrubbed = show(false);
    assert!(scrubbed.contains("SUMMARY:Alice Example"), "{scrubbed}");
    assert!(!scrubbed.contains("Merger talks"), "{scrubbed}");
    assert!(!scrubbed.contains("555-0100"), "{scrubbed}");
    let original = show(true);
    assert!(original.contains("SUMMARY:Merger talks"), "{original}");
    assert!(original.contains("Dial-in 555-0100"), "{original}");
    assert!(original.contains("PARTSTAT=ACCEPTED"), "{original}");
}
