//! The daemon end to end through the real mail stack (room8 answering judy), observed the way
//! an operator observes it: the Prometheus endpoint is scraped while it runs and its counters
//! must move, and the JSON log (at the most verbose filter) must hold one decision line with
//! outcome and reason inside the mailbox and message spans, and never the password.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET /metrics` over plain HTTP/1.0; None while the listener is not up.
fn scrape(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    Some(body.to_string())
}

/// The value of the sample whose line starts with `series` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Standard base64, to look for the SMTP AUTH PLAIN token in the log.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_and_the_json_log_has_decisions_but_no_secret() {
    let stack = common::MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = stack.daemon_config("room8", "Room 8", 1, dir.path());
    let text = std::fs::read_to_string(&config).expect("read the config");
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{text}"),
    )
    .expect("write the config");
    let log_path = dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).expect("create the log file");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .env("IMIPD_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon");

    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        if let Some(text) = scrape(port) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics endpoint never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let series = |name: &str| format!("{name}{{mailbox=\"room8@example.test\"");
    let count = |text: &str, name: &str| {
        text.lines()
            .filter(|l| l.starts_with(&series(name)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let processed_before = count(&before, "imipd_messages_total");
    let sent_before = count(&before, "imipd_replies_sent_total");

    let tag = common::unique("ops-metrics");
    let (message_id, raw) = common::client::invitation("room8", "judy@example.test", &tag, 0);
    stack
        .send("judy@example.test", "room8@example.test", &raw)
        .await;
    let reply = stack
        .wait_for_message("judy", dir.path(), Duration::from_secs(60), |raw| {
            String::from_utf8_lossy(raw).contains(&tag)
        })
        .await;
    assert!(reply.is_some(), "room8 never answered {message_id}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let text = scrape(port).expect("the endpoint stays up");
        if count(&text, "imipd_replies_sent_total") > sent_before {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "replies_sent never moved:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        count(&after, "imipd_messages_total") > processed_before,
        "messages_total did not move:\n{after}"
    );
    assert!(
        after.contains("imipd_messages_total{mailbox=\"room8@example.test\",outcome=\"added\""),
        "{after}"
    );
    assert!(
        count(&after, "imipd_message_processing_seconds_count") >= 1.0,
        "{after}"
    );
    let polled = sample(
        &after,
        &series("imipd_last_successful_poll_timestamp_seconds"),
    )
    .expect("last poll recorded");
    assert!(polled > 1.7e9, "{polled}");
    assert!(sample(&after, "imipd_outbox_depth").is_some(), "{after}");
    assert!(sample(&after, "imipd_dead_letters").is_some(), "{after}");

    let status = common::terminate(&mut daemon, Duration::from_secs(30));
    assert!(status.success(), "{status}");

    let log = std::fs::read_to_string(&log_path).expect("read the log");
    let password = stack.password("room8");
    assert!(!log.contains(password), "the password is in the log");
    let plain = base64(format!("\0room8@example.test\0{password}").as_bytes());
    assert!(!log.contains(&plain), "the AUTH PLAIN token is in the log");
    let mut decisions = Vec::new();
    for line in log.lines() {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if record["fields"]["message"] == "message processed"
            && record["fields"]["uid"]
                .as_str()
                .is_some_and(|uid| uid.contains(&tag))
        {
            decisions.push(record);
        }
    }
    assert_eq!(decisions.len(), 1, "one decision line per object:\n{log}");
    let decision = &decisions[0];
    assert_eq!(decision["level"], "INFO");
    assert_eq!(decision["fields"]["outcome"], "added");
    assert!(
        decision["fields"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{decision}"
    );
    let spans: Vec<&str> = decision["spans"]
        .as_array()
        .expect("span list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(spans, ["mailbox", "message"], "{decision}");
    assert_eq!(decision["spans"][0]["address"], "room8@example.test");
}

#[test]
fn a_failing_imap_session_counts_as_a_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pw"), "secret").expect("write the password");
    let port = free_port();
    let config = dir.path().join("imipd.toml");
    // An IMAP server that does not exist: every session fails and is retried.
    std::fs::write(
        &config,
        format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[store]\npath = \"store\"\n\n\
             [[mailbox]]\naddress = \"room1@example.test\"\n\n\
             [mailbox.imap]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"implicit\"\npassword_file = \"pw\"\n\n\
             [mailbox.smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"starttls\"\npassword_file = \"pw\"\n"
        ),
    )
    .expect("write the config");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("IMIPD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let deadline = Instant::now() + Duration::from_secs(20);
    let series = "imipd_imap_reconnects_total{mailbox=\"room1@example.test\"}";
    let reconnects = loop {
        if let Some(n) = scrape(port).and_then(|text| sample(&text, series)) {
            break n;
        }
        assert!(Instant::now() < deadline, "no reconnect counted");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reconnects >= 1.0, "{reconnects}");
    let status = common::terminate(&mut daemon, Duration::from_secs(30));
    assert!(status.success(), "{status}");
}
