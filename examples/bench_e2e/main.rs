//! The end-to-end benchmark, on demand (`scripts/bench-e2e`; never part of `scripts/test`).
//!
//! Against a private mail stack instance (real Dovecot + Postfix) and the real daemon binary,
//! it measures:
//! - latency from Postfix accepting an invitation (our SMTP client's `250` after DATA) to
//!   Postfix accepting the reply (the daemon's `reply sent` log line, written right after the
//!   server's `250`), p50/p99, with the daemon waiting in IDLE and polling with NOOP;
//! - the throughput of a start-up backlog (messages/s until the last message is processed, and
//!   until the last reply is accepted), against the raw `UID FETCH BODY.PEEK[]` rate of the
//!   same Dovecot, measured in the same run on the same messages.
//!
//! Environment: `IMIPD_BENCH_ENV` (the private stack's env file, required), `IMIPD_BIN` (the
//! daemon binary, required), `IMIPD_BENCH_INVITES` (per latency mode, default 200),
//! `IMIPD_BENCH_GAP_MS` (pause between invitations, default 250), `IMIPD_BENCH_BACKLOG`
//! (default 2000), `IMIPD_BENCH_POLL_MS` (the NOOP poll interval, default 100).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::MailStack;
use common::client::{append, invitation, invitations, login, messages, search};
use futures_util::TryStreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes a daemon configuration for `user` with extra `[[mailbox]]` lines.
fn write_config(stack: &MailStack, dir: &Path, user: &str, extra: &str) -> PathBuf {
    let password_file = dir.join(format!("{user}.password"));
    std::fs::write(&password_file, stack.password(user)).expect("write the password file");
    let text = format!(
        r#"[store]
path = "store"

# The benchmark's backlog comes from one organiser: no invite-flood limit.
[limits]
max_replies_per_address_per_hour = 0

[[mailbox]]
address = "{user}@example.test"
name = "{user}"
{extra}

[mailbox.imap]
host = "{host}"
port = {imaps}
tls = "implicit"
ca_file = "{ca}"
password_file = "{pw}"

[mailbox.smtp]
host = "{host}"
port = {submission}
tls = "starttls"
ca_file = "{ca}"
password_file = "{pw}"
"#,
        host = stack.host(),
        imaps = stack.port("MAILSTACK_IMAPS_PORT"),
        submission = stack.port("MAILSTACK_SUBMISSION_PORT"),
        ca = stack.ca(),
        pw = password_file.display(),
    );
    let path = dir.join("imipd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let log = config.with_file_name("imipd.log");
        let child = Command::new(std::env::var("IMIPD_BIN").expect("IMIPD_BIN: the daemon binary"))
            .args(["run", "--config"])
            .arg(config)
            .env("IMIPD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("start the daemon");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        self.child.wait().expect("wait for the daemon");
    }
}

/// The timestamps (Unix seconds) of the log lines containing `what`, with the value of
/// `field=` on that line.
fn log_times(log: &str, what: &str, field: &str) -> Vec<(f64, String)> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            let stamp = l.split_whitespace().next()?;
            let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
            let value = l
                .split_once(&format!("{field}="))
                .map(|(_, rest)| {
                    rest.split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_matches('"')
                })
                .unwrap_or("")
                .to_string();
            Some((at.timestamp_micros() as f64 / 1e6, value))
        })
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sends `count` invitations to `room` `gap` apart with the daemon running in `mode`, and
/// returns the latencies in milliseconds.
async fn latency(stack: &MailStack, base: &Path, room: &str, mode: &str, extra: &str) -> Vec<f64> {
    let count = env_or("IMIPD_BENCH_INVITES", 200) as usize;
    let gap = Duration::from_millis(env_or("IMIPD_BENCH_GAP_MS", 250));
    let dir = base.join(mode);
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let daemon = Daemon::start(&write_config(stack, &dir, room, extra));
    while !daemon.log().contains("connected to IMAP") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let tag = common::unique(mode);
    let mut sent_at: HashMap<String, f64> = HashMap::new();
    for n in 0..count {
        let (id, mail) = invitation(room, "alice@example.test", &tag, n);
        stack
            .send("alice@example.test", &format!("{room}@example.test"), &mail)
            .await;
        sent_at.insert(id, unix_now());
        tokio::time::sleep(gap).await;
    }
    // Reply Message-ID → invitation, from the replies in alice's INBOX.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reply_to: HashMap<String, String> = HashMap::new();
    while reply_to.len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        reply_to.clear();
        for (_, raw) in messages(stack, "alice", "INBOX").await.1 {
            if let Ok(mail) = imipd::mail::extract(&raw)
                && let Some(reply_id) = mail.sender.message_id
            {
                for invitation in mail.sender.references {
                    if sent_at.contains_key(&invitation) {
                        reply_to.insert(reply_id.clone(), invitation);
                    }
                }
            }
        }
    }
    let log = daemon.log();
    daemon.stop();
    let mut latencies: Vec<f64> = log_times(&log, "reply sent", "message_id")
        .into_iter()
        .filter_map(|(at, reply_id)| {
            let invitation = reply_to.get(&reply_id)?;
            Some((at - sent_at.get(invitation)?) * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    assert_eq!(
        latencies.len(),
        count,
        "{mode}: not every invitation got its reply"
    );
    latencies
}

/// Fetches every message of `user`'s INBOX by UID in batches of 50, as the daemon does but
/// without processing: the server-side ceiling. Returns messages/s.
async fn raw_fetch_rate(stack: &MailStack, user: &str) -> (usize, f64) {
    let mut imap = login(stack, user).await;
    imap.select("INBOX").await.expect("SELECT");
    let mut uids: Vec<u32> = imap
        .uid_search("ALL")
        .await
        .expect("SEARCH")
        .into_iter()
        .collect();
    uids.sort_unstable();
    let started = Instant::now();
    let mut fetched = 0;
    for batch in uids.chunks(50) {
        let set = imipd::imap::uid_set(batch);
        let bodies: Vec<_> = imap
            .uid_fetch(set, "(UID BODY.PEEK[])")
            .await
            .expect("FETCH")
            .try_collect()
            .await
            .expect("FETCH");
        fetched += bodies.iter().filter(|f| f.body().is_some()).count();
    }
    let rate = fetched as f64 / started.elapsed().as_secs_f64();
    imap.logout().await.ok();
    (fetched, rate)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = std::env::var("IMIPD_BENCH_ENV").expect("IMIPD_BENCH_ENV: the stack's env file");
    let stack = MailStack::from_file(Path::new(&env));
    let base = Path::new(stack.var("MAILSTACK_DIR")).join("bench-runs");
    if base.exists() {
        std::fs::remove_dir_all(&base).expect("clear the last run");
    }
    let poll_ms = env_or("IMIPD_BENCH_POLL_MS", 100);
    let backlog = env_or("IMIPD_BENCH_BACKLOG", 2000) as usize;

    let idle = latency(&stack, &base, "room1", "idle", "idle = true").await;
    let poll = latency(
        &stack,
        &base,
        "room2",
        "poll",
        &format!(
            "idle = false\npoll_interval_secs = {}",
            poll_ms as f64 / 1000.0
        ),
    )
    .await;

    // Backlog: seed, measure the raw FETCH rate on exactly these messages, then the daemon.
    let (_, mails) = invitations("room3", backlog);
    append(&stack, "room3", "INBOX", &mails).await;
    let (fetched, raw_rate) = raw_fetch_rate(&stack, "room3").await;
    let dir = base.join("backlog");
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let config = write_config(&stack, &dir, "room3", "");
    let started = unix_now();
    let daemon = Daemon::start(&config);
    let unprocessed = format!("UNKEYWORD {}", imipd::imap::PROCESSED_KEYWORD);
    while search(&stack, "room3", "INBOX", &unprocessed).await > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while daemon.log().matches("reply sent").count() < backlog {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = daemon.log();
    daemon.stop();
    let processed = log_times(&log, "message processed", "uid");
    let sent = log_times(&log, "reply sent", "message_id");
    let last_processed = processed.iter().map(|(t, _)| *t).fold(f64::NAN, f64::max);
    let last_sent = sent.iter().map(|(t, _)| *t).fold(f64::NAN, f64::max);
    let process_rate = processed.len() as f64 / (last_processed - started);
    let reply_rate = sent.len() as f64 / (last_sent - started);

    let row = |name: &str, l: &[f64]| {
        format!(
            "| {name} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            l.len(),
            percentile(l, 50.0),
            percentile(l, 99.0),
            l.last().copied().unwrap_or(f64::NAN)
        )
    };
    println!("\nLatency: Postfix accepted the invitation -> Postfix accepted the reply\n");
    println!("| mode | invitations | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    println!("{}", row("IDLE", &idle));
    println!("{}", row(&format!("NOOP poll every {poll_ms} ms"), &poll));
    println!("\nBacklog of {backlog} invitations at start-up (same Dovecot, same messages)\n");
    println!("| measure | messages/s |");
    println!("|---|---|");
    println!("| raw UID FETCH BODY.PEEK[] in batches of 50 ({fetched} messages) | {raw_rate:.0} |");
    println!(
        "| daemon: processed (start-up to last message committed and marked) | {process_rate:.0} ({:.0}% of raw) |",
        100.0 * process_rate / raw_rate
    );
    println!("| daemon: replies accepted by Postfix (start-up to last 250) | {reply_rate:.0} |");
}
