//! The operator-facing surface of the binary without a mail server: help texts with
//! examples and exit codes, `--version` with the features, and the text log's shape under
//! systemd (no timestamps when the journal takes standard error).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn imipd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(args)
        .output()
        .expect("run imipd")
}

#[test]
fn help_shows_examples_environment_and_exit_codes() {
    let output = imipd(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "Examples:",
        "imipd check --config /etc/imipd/imipd.toml --connect",
        "IMIPD__SECTION__KEY",
        "Exit codes:",
        "--log-format",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    for command in ["run", "check", "process", "show", "convert", "store"] {
        let output = imipd(&["help", command]);
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            help.contains("Example"),
            "imipd help {command} has no example:\n{help}"
        );
    }
}

#[test]
fn version_names_the_version_and_the_features() {
    let output = imipd(&["--version"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("imipd {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("cargo features:"), "{text}");
    assert!(text.contains("metrics-prometheus"), "{text}");
}

/// A daemon whose servers do not exist, run for a moment with `env`; its standard error.
fn daemon_log(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    std::fs::write(dir.join("pw"), "s3cret-for-the-log-test").expect("write the password");
    let config = dir.join("imipd.toml");
    std::fs::write(
        &config,
        "[store]\npath = \"store\"\n\n[[mailbox]]\naddress = \"room1@example.test\"\n\n\
         [mailbox.imap]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"implicit\"\npassword_file = \"pw\"\n\n\
         [mailbox.smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"starttls\"\npassword_file = \"pw\"\n",
    )
    .expect("write the config");
    let log = dir.join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_imipd"));
    command
        .args(args)
        .args(["run", "--config"])
        .arg(&config)
        .env("IMIPD_LOG", "debug")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create the log"));
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start the daemon");
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
    std::fs::read_to_string(&log).expect("read the log")
}

fn starts_with_a_timestamp(line: &str) -> bool {
    // tracing's text format: 2026-11-22T17:00:00.123456Z  INFO ...
    line.len() > 20 && line.as_bytes()[4] == b'-' && line.as_bytes()[10] == b'T'
}

#[test]
fn text_logs_have_timestamps_on_a_terminal_and_none_under_systemd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = daemon_log(dir.path(), &[], &[]);
    let first = plain.lines().next().expect("a log line");
    assert!(starts_with_a_timestamp(first), "{plain}");

    let dir = tempfile::tempdir().expect("tempdir");
    let journal = daemon_log(dir.path(), &[], &[("JOURNAL_STREAM", "8:12345")]);
    assert!(journal.contains("imipd running"), "{journal}");
    assert!(
        journal.lines().all(|l| !starts_with_a_timestamp(l)),
        "{journal}"
    );
    assert!(!journal.contains("s3cret-for-the-log-test"), "{journal}");
    assert!(
        journal.contains("mailbox{address=room1@example.test}"),
        "{journal}"
    );
}

#[test]
fn journald_without_a_journal_falls_back_to_text_and_says_so() {
    let journal_socket = Path::new("/run/systemd/journal/socket");
    if journal_socket.exists() {
        eprintln!("SKIPPED: a journal is running here; the fallback cannot be observed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = daemon_log(dir.path(), &["--log-format", "journald"], &[]);
    assert!(log.contains("the journal is not reachable"), "{log}");
    assert!(log.contains("imipd running"), "{log}");
}

#[test]
fn a_broken_environment_override_is_blamed_on_the_variable() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/base.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["check", "--config"])
        .arg(&base)
        .env("IMIPD__STORE__PATHX", "/tmp/x")
        .output()
        .expect("run imipd check");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("with the environment overrides applied"),
        "{stderr}"
    );
    assert!(stderr.contains("pathx"), "{stderr}");
    assert!(stderr.contains("IMIPD__STORE__PATHX"), "{stderr}");
}

#[test]
fn an_environment_override_replaces_the_file_value() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/base.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["check", "--config"])
        .arg(&base)
        .env("IMIPD__STORE__PATH", "/var/lib/imipd/store")
        .env("IMIPD__LOG__FORMAT", "json")
        .output()
        .expect("run imipd check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("path = \"/var/lib/imipd/store\""),
        "{stdout}"
    );
    assert!(stdout.contains("format = \"json\""), "{stdout}");
}

#[test]
fn a_closed_pipe_ends_a_command_quietly_instead_of_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("temp dir");
    // Far more than a pipe holds (64 KiB), so the command must write after the reader left.
    let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for n in 0..400 {
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:pipe-{n}@example.test\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270104T090000Z\r\nDTEND:20270104T100000Z\r\nSUMMARY:Meeting {n}\r\nDESCRIPTION:{}\r\nEND:VEVENT\r\n",
            "x".repeat(60)
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    let file = dir.path().join("big.ics");
    std::fs::write(&file, text).expect("write the calendar");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["convert", "--to", "ics"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imipd convert");
    // The reader goes away at once, as `head` does once it has its lines.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for imipd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "a panic on the broken pipe: {stderr}"
    );
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE, like cat: {:?} {stderr}",
        output.status
    );
}
