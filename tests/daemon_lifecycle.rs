//! The daemon's conversation with systemd and its signals, without any mail server: the
//! mailbox points at a closed port, so its task only retries, and the main loop is what is
//! observed.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A configuration whose IMAP server does not exist (port 1 on loopback).
fn write_config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("room1.password"), "secret").expect("write the password");
    let text = format!(
        r#"[store]
path = "store"

[[mailbox]]
address = "room1@example.test"

[mailbox.imap]
host = "127.0.0.1"
port = 1
tls = "implicit"
password_file = "{pw}"

[mailbox.smtp]
host = "127.0.0.1"
port = 1
tls = "starttls"
password_file = "{pw}"
"#,
        pw = dir.join("room1.password").display()
    );
    let path = dir.join("imipd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// The next notification datagram, at most `timeout` away.
fn next(socket: &UnixDatagram, timeout: Duration) -> String {
    socket
        .set_read_timeout(Some(timeout))
        .expect("set a timeout");
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification from the daemon");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn systemd_hears_ready_reloading_and_stopping_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("IMIPD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let pid = daemon.id();

    assert_eq!(next(&socket, Duration::from_secs(20)).trim(), "READY=1");
    kill(pid, "HUP");
    let reloading = next(&socket, Duration::from_secs(10));
    assert!(reloading.starts_with("RELOADING=1\n"), "{reloading:?}");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    assert_eq!(next(&socket, Duration::from_secs(10)).trim(), "READY=1");

    let asked = Instant::now();
    kill(pid, "TERM");
    assert_eq!(next(&socket, Duration::from_secs(10)).trim(), "STOPPING=1");
    let status = loop {
        if let Some(status) = daemon.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "no exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// With `WATCHDOG_USEC` set (systemd's `WatchdogSec=`), the daemon pings `WATCHDOG=1` at
/// half that interval from its main loop, between `READY=1` and `STOPPING=1`.
#[test]
fn systemd_watchdog_is_fed_at_half_the_interval_until_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let interval = Duration::from_millis(1200);
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", interval.as_micros().to_string())
        .env_remove("WATCHDOG_PID")
        .env("IMIPD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let pid = daemon.id();

    assert_eq!(next(&socket, Duration::from_secs(20)).trim(), "READY=1");
    let mut pings = Vec::new();
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(4) {
        let message = next(&socket, Duration::from_secs(3));
        assert_eq!(message.trim(), "WATCHDOG=1", "only pings while running");
        pings.push(Instant::now());
    }
    // Half of 1.2 s: about seven pings in 4 s (the first at once). What systemd needs is
    // that no gap reaches the whole interval; the mean gap shows the half-interval cadence
    // (a loaded machine may delay one tick and catch up with the next).
    assert!(pings.len() >= 6, "{} pings in 4 s", pings.len());
    let gaps: Vec<Duration> = pings.windows(2).skip(1).map(|p| p[1] - p[0]).collect();
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(longest < interval, "a gap of {longest:?} between pings");
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean >= Duration::from_millis(500) && mean <= Duration::from_millis(700),
        "pings {mean:?} apart on average; expected about {:?}",
        interval / 2
    );

    kill(pid, "TERM");
    let stopping = loop {
        let message = next(&socket, Duration::from_secs(10));
        if message.trim() != "WATCHDOG=1" {
            break message;
        }
    };
    assert_eq!(stopping.trim(), "STOPPING=1");
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = daemon.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "no exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn a_configuration_with_plaintext_but_no_opt_in_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config)
        .expect("read")
        .replace("tls = \"implicit\"", "tls = \"none\"");
    std::fs::write(&config, text).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run the daemon");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("allow_plaintext = true"), "{stderr}");
}
