//! `imipd check --connect` against the real mail stack: a good configuration passes and
//! lists the servers' capabilities; a wrong password, a missing folder and a wrong port each
//! fail with exit code 1 and a message that names the mailbox, the server and the problem.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn check(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["check", "--connect", "--config"])
        .arg(config)
        .env("IMIPD_LOG", "warn")
        .output()
        .expect("run imipd check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn good_credentials_pass_and_list_capabilities_and_folders() {
    let stack = common::MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = stack.daemon_config("room8", "Room 8", 1, dir.path());
    let output = check(&config);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("logged in as room8@example.test"),
        "{stdout}"
    );
    assert!(stdout.contains("IDLE yes"), "{stdout}");
    assert!(stdout.contains("MOVE yes"), "{stdout}");
    assert!(stdout.contains("CONDSTORE yes"), "{stdout}");
    assert!(stdout.contains("AUTH PLAIN"), "{stdout}");
    assert!(
        stdout.contains("folder \"INBOX\": present (watched)"),
        "{stdout}"
    );
    assert!(stdout.contains("(quarantine_folder)"), "{stdout}");
    // The password is never printed, only that it is set.
    assert!(!stdout.contains(stack.password("room8")), "{stdout}");
    assert!(stdout.contains("# set, ********"), "{stdout}");
}

#[test]
fn a_wrong_password_fails_for_imap_and_smtp() {
    let stack = common::MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = stack.daemon_config("judy", "Judy", 1, dir.path());
    std::fs::write(dir.path().join("judy.password"), "not-judys-password").expect("write");
    let output = check(&config);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("imipd: check failed: judy@example.test: "))
        .collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(
        failures[0].contains("imap") && failures[0].contains("refused"),
        "{stderr}"
    );
    assert!(
        failures[1].contains("smtp") && failures[1].contains("AUTH"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-judys-password"), "{stderr}");
}

#[test]
fn a_missing_watched_folder_fails_and_names_it() {
    let stack = common::MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = common::unique("NoSuchFolder");
    let config = stack.daemon_config_with(
        "room8",
        "Room 8",
        1,
        &format!("folders = [\"INBOX\", \"{folder}\"]\n"),
        dir.path(),
    );
    let output = check(&config);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the watched folder \"{folder}\" does not exist")),
        "{stderr}"
    );
    assert!(text(&output.stdout).contains("folder \"INBOX\": present"));
}

#[test]
fn a_wrong_port_fails_with_the_connection_error() {
    let stack = common::MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = stack.daemon_config("room8", "Room 8", 1, dir.path());
    let imaps = stack.port("MAILSTACK_IMAPS_PORT").to_string();
    let text_config = std::fs::read_to_string(&config).expect("read").replacen(
        &format!("port = {imaps}"),
        "port = 1",
        1,
    );
    std::fs::write(&config, text_config).expect("write");
    let output = check(&config);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "room8@example.test: imap 127.0.0.1:1 (implicit TLS): cannot connect to 127.0.0.1:1"
        ),
        "{stderr}"
    );
    // SMTP on its right port still passes.
    assert!(
        text(&output.stdout).contains("smtp"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("check failed"))
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_broken_configuration_exits_2_before_connecting() {
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/port-zero/imipd.toml");
    let output = check(&config);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("mailbox[1].imap.port"));
}
