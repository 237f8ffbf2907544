//! The end-to-end benchmark, on demand (`scripts/bench-e2e`; never part of `scripts/test`).
//!
//! Against a private mail stack instance (real Dovecot + Postfix) and the real daemon binary,
//! in one run:
//! - **backlog**, for each N (default 1,000 and 10,000): N messages of the vendor mix in
//!   [`corpus`] already in the room's INBOX; the daemon starts, and the clock stops when the
//!   last reply is accepted by Postfix. Measured beside it on the same messages: a plain
//!   client's `UID FETCH 1:* BODY.PEEK[]` (no parsing, bytes counted), the same in the
//!   daemon's batches of 50, and N reply-sized messages submitted over SMTP by the daemon's
//!   own transport ([`imipd::smtp::Sender`], STARTTLS + AUTH, `SEND_CONCURRENCY` in flight);
//!   imipd's rate is reported as a ratio of the slower raw limit;
//! - **live latency** with the daemon in IDLE: invitations sent one at a time (the next one
//!   after the reply to the last), from Postfix's `250` for the invitation to Postfix's `250`
//!   for the reply (the daemon's `reply sent` line, written right after it), split at the
//!   daemon's `message processed` line; and a plain client's IDLE on the same server (the
//!   floor the server's own notification sets);
//! - the same **in IDLE with server push** (`push = true`, Dovecot's push_notification plugin
//!   calling the daemon's `/push`; the stack must have been started with `MAILSTACK_PUSH_URL`
//!   pointing at `IMIPD_BENCH_PUSH_PORT` with the secret `IMIPD_BENCH_PUSH_TOKEN`);
//! - **polling latency**: the same with `idle = false`, at the default poll interval and at
//!   a fast one (default 0.1 s), invitations sent at a fixed gap;
//! - the daemon's peak RSS and CPU seconds (from `/proc`), and the load average.
//!
//! It prints one Markdown table and writes the numbers as JSON to
//! `$IMIPD_BENCH_OUT/<UTC timestamp>.json`.
//!
//! Environment: `IMIPD_BENCH_ENV` (the private stack's env file, required), `IMIPD_BIN` (the
//! daemon binary, required), `IMIPD_BENCH_OUT` (default `target/bench-e2e`),
//! `IMIPD_BENCH_BACKLOGS` (comma-separated, default `1000,10000`), `IMIPD_BENCH_INVITES`
//! (IDLE latency samples, default 500), `IMIPD_BENCH_POLL_INVITES` (default 500),
//! `IMIPD_BENCH_POLL_GAP_MS` (default 200), `IMIPD_BENCH_POLL_SECS` (the fast interval,
//! default 0.1), `IMIPD_BENCH_FLOOR` (plain-client IDLE samples, default 100),
//! `IMIPD_BENCH_PUSH_PORT` and `IMIPD_BENCH_PUSH_TOKEN` (the push mode; skipped without them),
//! `IMIPD_BENCH_SKIP` (any of `idle,push,poll,floor,backlog`).

#[path = "../../tests/common/mod.rs"]
mod common;
mod corpus;
mod raw;

use common::MailStack;
use common::client::{append, login, messages, search};
use corpus::{Corpus, Kind};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn skipped(what: &str) -> bool {
    std::env::var("IMIPD_BENCH_SKIP")
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim() == what)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A daemon configuration for `user` polling every `poll_secs` when not in IDLE, with
/// `extra` `[[mailbox]]` lines and `top` sections before the mailbox (e.g. `[http]`); the
/// benchmark books far ahead without a booking window.
fn write_config(
    stack: &MailStack,
    dir: &Path,
    user: &str,
    poll_secs: &str,
    extra: &str,
    top: &str,
) -> PathBuf {
    let extra =
        format!("{extra}\n[mailbox.policy]\nbooking_window_days = 0\nbusy_horizon_days = 1500\n");
    stack.daemon_config_full(user, user, poll_secs, &extra, top, dir)
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

/// Peak resident memory and CPU time of a process, from `/proc`.
#[derive(Debug, Clone, Copy)]
struct Usage {
    peak_rss_mib: f64,
    cpu_secs: f64,
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

    async fn wait_connected(&self) {
        while !self.log().contains("connected to IMAP") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn usage(&self) -> Usage {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at field 3.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        // utime and stime are fields 14 and 15: indexes 11 and 12 after the name.
        let cpu = match (ticks(11), ticks(12)) {
            (Some(u), Some(s)) => (u + s) / clock_ticks(),
            _ => f64::NAN,
        };
        Usage {
            peak_rss_mib: hwm_kib / 1024.0,
            cpu_secs: cpu,
        }
    }

    fn stop(mut self) -> Usage {
        let usage = self.usage();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        self.child.wait().expect("wait for the daemon");
        usage
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads a growing log file line by line.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    fn new(path: &Path) -> LogTail {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        LogTail {
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut text = String::new();
        let read = file.read_to_string(&mut text).unwrap_or(0);
        self.offset += read as u64;
        self.partial.push_str(&text);
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
    }
}

/// The timestamp (Unix seconds) at the start of a log line.
fn line_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    Some(at.timestamp_micros() as f64 / 1e6)
}

/// The value of `field=` on a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = line.split_once(&format!(" {name}="))?;
    Some(rest.split_whitespace().next()?.trim_matches('"'))
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

fn summary(mut values: Vec<f64>) -> Value {
    values.sort_by(f64::total_cmp);
    json!({
        "n": values.len(),
        "p50_ms": percentile(&values, 50.0),
        "p90_ms": percentile(&values, 90.0),
        "p99_ms": percentile(&values, 99.0),
        "max_ms": values.last().copied().unwrap_or(f64::NAN),
    })
}

/// Invitations that each get a reply (the corpus' requests), cycling through the vendors.
fn requests(corpus: &Corpus, room: &str, organizer: &str, tag: &str, count: usize) -> Vec<Vec<u8>> {
    corpus
        .messages(room, organizer, tag, count * 2)
        .into_iter()
        .filter(|m| matches!(m.kind, Kind::Single | Kind::Recurring))
        .take(count)
        .map(|m| m.bytes)
        .collect()
}

/// Live latency in IDLE, one invitation at a time; with `push` (the listener's port and
/// secret), the mailbox also registers for and is woken by the server's push.
async fn idle_latency(
    stack: &MailStack,
    corpus: &Corpus,
    base: &Path,
    push: Option<(u16, &str)>,
) -> Value {
    let count = env_or("IMIPD_BENCH_INVITES", 500) as usize;
    // Each mode its own room and organiser (a pushed room keeps its registration).
    let (room, organizer, name) = match push {
        None => ("room1", "bob@example.test", "idle"),
        Some(_) => ("grace", "frank@example.test", "push"),
    };
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let load_before = loadavg();
    let config = match push {
        None => write_config(stack, &dir, room, "30", "idle = true", ""),
        Some((port, token)) => {
            let token_file = dir.join("push.token");
            std::fs::write(&token_file, token).expect("write the push token");
            let http = format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\npush_token_file = \"{}\"\n",
                token_file.display()
            );
            write_config(stack, &dir, room, "30", "idle = true\npush = true", &http)
        }
    };
    let daemon = Daemon::start(&config);
    daemon.wait_connected().await;
    if push.is_some() {
        while !daemon.log().contains("registered for server push") {
            assert!(
                !daemon.log().contains("cannot register"),
                "push registration failed:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut tail = LogTail::new(&daemon.log);
    let invitations = requests(corpus, room, organizer, &common::unique("idle"), count);
    let (mut total, mut to_processed, mut to_reply) = (Vec::new(), Vec::new(), Vec::new());
    let mut lost = 0;
    for mail in &invitations {
        stack
            .send(organizer, &format!("{room}@example.test"), mail)
            .await;
        let sent = unix_now();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut processed = None;
        let mut replied = None;
        while replied.is_none() && Instant::now() < deadline {
            for line in tail.lines() {
                if line.contains("message processed") && processed.is_none() {
                    processed = line_time(&line);
                }
                if line.contains("reply sent") && replied.is_none() {
                    replied = line_time(&line);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match (processed, replied) {
            (Some(p), Some(r)) => {
                total.push((r - sent) * 1000.0);
                to_processed.push((p - sent) * 1000.0);
                to_reply.push((r - p) * 1000.0);
            }
            _ => lost += 1,
        }
        tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(0..60))).await;
    }
    let usage = daemon.stop();
    json!({
        "mode": if push.is_some() { "IDLE + server push" } else { "IDLE" },
        "invitations": count,
        "lost": lost,
        "total": summary(total),
        "accepted_to_processed": summary(to_processed),
        "processed_to_reply_accepted": summary(to_reply),
        "peak_rss_mib": usage.peak_rss_mib,
        "cpu_secs": usage.cpu_secs,
        "load_before": load_before,
        "load_after": loadavg(),
    })
}

/// Reply Message-ID → invitation Message-ID, from the replies in `user`'s INBOX.
async fn reply_map(stack: &MailStack, user: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (_, raw) in messages(stack, user, "INBOX").await.1 {
        if let Ok(mail) = imipd::mail::extract(&raw)
            && let Some(reply_id) = mail.sender.message_id
            && let Some(invitation) = mail.sender.references.last()
        {
            map.insert(reply_id, invitation.clone());
        }
    }
    map
}

/// Latency with NOOP polling: invitations at a fixed gap.
/// `interval` is the poll interval in seconds (`None`: the daemon's default).
async fn poll_latency(
    stack: &MailStack,
    corpus: &Corpus,
    base: &Path,
    interval: Option<String>,
) -> Value {
    let count = env_or("IMIPD_BENCH_POLL_INVITES", 500) as usize;
    let gap = Duration::from_millis(env_or("IMIPD_BENCH_POLL_GAP_MS", 200));
    // The daemon's default interval is 30 s.
    let poll_secs = interval.as_deref().unwrap_or("30");
    // Each interval its own room and organiser, so that the replies are told apart.
    let (room, organizer) = match interval {
        None => ("room2", "carol@example.test"),
        Some(_) => ("room3", "erin@example.test"),
    };
    let dir = base.join(format!("poll-{}", interval.as_deref().unwrap_or("default")));
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let load_before = loadavg();
    let daemon = Daemon::start(&write_config(
        stack,
        &dir,
        room,
        poll_secs,
        "idle = false",
        "",
    ));
    daemon.wait_connected().await;
    let invitations = requests(corpus, room, organizer, &common::unique("poll"), count);
    let mut sent_at: HashMap<String, f64> = HashMap::new();
    for mail in &invitations {
        let id = imipd::mail::extract(mail)
            .ok()
            .and_then(|m| m.sender.message_id)
            .expect("a corpus message has a Message-ID");
        stack
            .send(organizer, &format!("{room}@example.test"), mail)
            .await;
        sent_at.insert(id, unix_now());
        tokio::time::sleep(gap).await;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while daemon.log().matches("reply sent").count() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = daemon.log();
    let usage = daemon.stop();
    let map = reply_map(stack, organizer.split('@').next().unwrap_or_default()).await;
    let latencies: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("reply sent"))
        .filter_map(|l| {
            let reply = field(l, "message_id")?;
            let invitation = map.get(reply)?;
            Some((line_time(l)? - sent_at.get(invitation)?) * 1000.0)
        })
        .collect();
    json!({
        "mode": "NOOP polling",
        "poll_interval_secs": interval.unwrap_or_else(|| "default".to_string()),
        "invitations": count,
        "lost": count.saturating_sub(latencies.len()),
        "total": summary(latencies),
        "peak_rss_mib": usage.peak_rss_mib,
        "cpu_secs": usage.cpu_secs,
        "load_before": load_before,
        "load_after": loadavg(),
    })
}

/// A plain client's IDLE on the same server: SMTP acceptance to the `EXISTS` push.
async fn idle_floor(stack: &MailStack, corpus: &Corpus) -> Value {
    let count = env_or("IMIPD_BENCH_FLOOR", 100) as usize;
    let room = "room4";
    let mut client = raw::Raw::login(stack, room).await;
    client.command("SELECT INBOX").await;
    let invitations = requests(
        corpus,
        room,
        "dave@example.test",
        &common::unique("floor"),
        count,
    );
    let mut latencies = Vec::new();
    for mail in &invitations {
        client.start_idle().await;
        stack
            .send("dave@example.test", &format!("{room}@example.test"), mail)
            .await;
        let sent = unix_now();
        client.wait_exists().await;
        latencies.push((unix_now() - sent) * 1000.0);
        client.done().await;
        tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(0..60))).await;
    }
    json!({ "mode": "plain client IDLE (EXISTS pushed)", "total": summary(latencies) })
}

/// The daemon's way of fetching: async-imap, UID FETCH in batches of 50. Messages/s.
async fn batched_fetch_rate(stack: &MailStack, user: &str) -> f64 {
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
        let bodies: Vec<_> = imap
            .uid_fetch(imipd::imap::uid_set(batch), "(UID BODY.PEEK[])")
            .await
            .expect("FETCH")
            .try_collect()
            .await
            .expect("FETCH");
        fetched += bodies.iter().filter(|f| f.body().is_some()).count();
    }
    let rate = fetched as f64 / started.elapsed().as_secs_f64();
    imap.logout().await.ok();
    rate
}

/// `count` reply-sized messages submitted from `user` to dave by the daemon's own SMTP
/// transport, `SEND_CONCURRENCY` in flight. Messages/s.
async fn raw_smtp_rate(stack: &MailStack, dir: &Path, user: &str, count: usize) -> f64 {
    use futures_util::StreamExt;
    let password_file = dir.join("smtp.password");
    std::fs::write(&password_file, stack.password(user)).expect("write the password file");
    let config = imipd::config::SmtpConfig {
        host: stack.host().to_string(),
        port: stack.port("MAILSTACK_SUBMISSION_PORT"),
        tls: imipd::config::TlsMode::Starttls,
        ca_file: Some(PathBuf::from(stack.ca())),
        allow_plaintext: false,
        retry_initial_secs: 30,
        retry_max_secs: 3600,
        auth: Default::default(),
        oauth2: None,
        login: imipd::config::Login {
            username: Some(format!("{user}@example.test")),
            password_file: Some(password_file),
            password_env: None,
        },
    };
    let sender = imipd::smtp::Sender::new(
        &config,
        &format!("{user}@example.test"),
        stack.password(user),
    )
    .expect("an SMTP transport");
    let template = common::data("mail/gmail/gmail-reply.eml").replace('\n', "\r\n");
    let tag = common::unique("smtp");
    let started = Instant::now();
    futures_util::stream::iter(0..count)
        .map(|n| {
            let sender = &sender;
            let tag = &tag;
            let template = &template;
            async move {
                let message_id = format!("{tag}-{n}@bench.example.test");
                let bytes = template.replacen(
                    "Message-ID:",
                    &format!("Message-ID: <{message_id}>\r\nX-Old-Message-ID:"),
                    1,
                );
                let item = imipd::store::OutboxItem {
                    id: n as u64,
                    mailbox: format!("{user}@example.test"),
                    message_id,
                    envelope_from: format!("{user}@example.test"),
                    envelope_to: vec!["dave@example.test".to_string()],
                    attempts: 0,
                    next_attempt: 0,
                    last_error: None,
                };
                sender
                    .send(&item, bytes.as_bytes())
                    .await
                    .expect("Postfix accepts the message");
            }
        })
        .buffer_unordered(imipd::smtp::SEND_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    count as f64 / started.elapsed().as_secs_f64()
}

/// One backlog run of `count` messages on `room`.
async fn backlog(
    stack: &MailStack,
    corpus: &Corpus,
    base: &Path,
    room: &str,
    count: usize,
) -> Value {
    let dir = base.join(format!("backlog-{count}"));
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let items = corpus.messages(room, "alice@example.test", &common::unique(room), count);
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for item in &items {
        *kinds.entry(format!("{:?}", item.kind)).or_default() += 1;
    }
    let bytes: Vec<Vec<u8>> = items.into_iter().map(|i| i.bytes).collect();
    let corpus_bytes: usize = bytes.iter().map(Vec::len).sum();
    append(stack, room, "INBOX", &bytes).await;
    let load_before = loadavg();

    let (raw_fetched, raw_bytes, raw_secs) = raw::fetch_all(stack, room).await;
    let raw_fetch = raw_fetched as f64 / raw_secs;
    let batched_fetch = batched_fetch_rate(stack, room).await;
    let ticks = cpu_ticks();
    let raw_smtp = raw_smtp_rate(stack, &dir, room, count).await;
    let raw_smtp_cores = cores_busy(ticks);

    let config = write_config(stack, &dir, room, "30", "", "");
    let started = unix_now();
    let ticks = cpu_ticks();
    let daemon = Daemon::start(&config);
    let unprocessed = format!("UNKEYWORD {}", imipd::imap::PROCESSED_KEYWORD);
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let log = daemon.log();
        let expected: usize = log
            .lines()
            .filter(|l| l.contains("message processed"))
            .filter_map(|l| field(l, "replies")?.parse::<usize>().ok())
            .sum();
        let settled = log.matches("reply sent").count() + log.matches("reply refused").count();
        if settled >= expected && search(stack, room, "INBOX", &unprocessed).await == 0 {
            break;
        }
        if Instant::now() > deadline {
            panic!("backlog of {count}: not done after 30 minutes");
        }
    }
    let imipd_cores = cores_busy(ticks);
    let log = daemon.log();
    let usage = daemon.stop();
    let times = |what: &str| -> Vec<f64> {
        log.lines()
            .filter(|l| l.contains(what))
            .filter_map(line_time)
            .collect()
    };
    let processed = times("message processed");
    let sent = times("reply sent");
    let last_processed = processed.iter().copied().fold(f64::NAN, f64::max);
    let last_sent = sent.iter().copied().fold(f64::NAN, f64::max);
    let done_at = last_sent.max(last_processed);
    let elapsed = done_at - started;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let mut declined = 0;
    for line in log.lines().filter(|l| l.contains("message processed")) {
        *outcomes
            .entry(field(line, "outcome").unwrap_or("?").to_string())
            .or_default() += 1;
        // The log gives the decision ("declined: room declined"); the conflict itself is
        // explained in the reply's text.
        if line.contains("reason=declined") {
            declined += 1;
        }
    }
    let rate = count as f64 / elapsed;
    let slower = raw_fetch.min(raw_smtp);
    json!({
        "messages": count,
        "corpus_mib": corpus_bytes as f64 / 1048576.0,
        "kinds": kinds,
        "outcomes": outcomes,
        "declined": declined,
        "replies_sent": sent.len(),
        "raw_fetch_1_star_msgs_per_s": raw_fetch,
        "raw_fetch_1_star_mib": raw_bytes as f64 / 1048576.0,
        "fetch_batches_of_50_msgs_per_s": batched_fetch,
        "raw_smtp_msgs_per_s": raw_smtp,
        "raw_smtp_cores_busy": raw_smtp_cores,
        "imipd_run_cores_busy": imipd_cores,
        "imipd_secs_to_last_reply": elapsed,
        "imipd_msgs_per_s": rate,
        "imipd_secs_to_last_processed": last_processed - started,
        "imipd_vs_slower_raw": rate / slower,
        "peak_rss_mib": usage.peak_rss_mib,
        "cpu_secs": usage.cpu_secs,
        "load_before": load_before,
        "load_after": loadavg(),
    })
}

/// Busy and total jiffies of the whole machine so far (`/proc/stat`, all CPUs).
fn cpu_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = fields.iter().sum();
    // idle and iowait are fields 4 and 5.
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// How many of the machine's CPUs were busy between `since` ([`cpu_ticks`]) and now.
fn cores_busy(since: (f64, f64)) -> f64 {
    let now = cpu_ticks();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (now.0 - since.0) / (now.1 - since.1).max(1.0) * cpus
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": cpu,
        "load_at_start": loadavg(),
    })
}

fn ms(v: &Value, path: &[&str]) -> String {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_f64().map_or("–".to_string(), |x| format!("{x:.0}"))
}

fn print_table(result: &Value) {
    println!(
        "\n## imipd end-to-end ({})\n",
        result["machine"]["cpu_model"]
    );
    println!("| measure | value | load (1/5/15 min) |");
    println!("|---|---|---|");
    for b in result["backlog"].as_array().into_iter().flatten() {
        let n = &b["messages"];
        let load = b["load_before"].as_str().unwrap_or("");
        println!(
            "| backlog {n}: raw `UID FETCH 1:* BODY.PEEK[]` | {} msg/s | {load} |",
            ms(b, &["raw_fetch_1_star_msgs_per_s"])
        );
        println!(
            "| backlog {n}: fetch in batches of 50 (async-imap) | {} msg/s | |",
            ms(b, &["fetch_batches_of_50_msgs_per_s"])
        );
        println!(
            "| backlog {n}: raw SMTP submission ({} in flight) | {} msg/s | |",
            imipd::smtp::SEND_CONCURRENCY,
            ms(b, &["raw_smtp_msgs_per_s"])
        );
        println!(
            "| backlog {n}: **imipd, start to last reply accepted** | **{} msg/s** ({:.2} × the slower raw limit; last message processed after {:.1} s) | {} |",
            ms(b, &["imipd_msgs_per_s"]),
            b["imipd_vs_slower_raw"].as_f64().unwrap_or(f64::NAN),
            b["imipd_secs_to_last_processed"]
                .as_f64()
                .unwrap_or(f64::NAN),
            b["load_after"].as_str().unwrap_or("")
        );
        println!(
            "| backlog {n}: machine CPUs busy during raw SMTP / during imipd's run | {:.2} / {:.2} of {} | |",
            b["raw_smtp_cores_busy"].as_f64().unwrap_or(f64::NAN),
            b["imipd_run_cores_busy"].as_f64().unwrap_or(f64::NAN),
            result["machine"]["cpus"]
        );
        println!(
            "| backlog {n}: replies / declined / outcomes | {} / {} / {} | |",
            b["replies_sent"], b["declined"], b["outcomes"]
        );
        println!(
            "| backlog {n}: daemon peak RSS / CPU | {:.1} MiB / {:.1} s | |",
            b["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            b["cpu_secs"].as_f64().unwrap_or(f64::NAN)
        );
    }
    for (key, name) in [
        ("floor", "plain client IDLE: SMTP 250 → EXISTS"),
        ("idle", "IDLE, one at a time"),
        ("push", "IDLE + server push, one at a time"),
        ("poll", "NOOP polling, default interval"),
        ("poll_fast", "NOOP polling, fast interval"),
    ] {
        let l = &result[key];
        if l.is_null() {
            continue;
        }
        println!(
            "| latency, {name} (n = {}) | p50 {} ms, p90 {} ms, p99 {} ms, max {} ms | {} |",
            l["total"]["n"],
            ms(l, &["total", "p50_ms"]),
            ms(l, &["total", "p90_ms"]),
            ms(l, &["total", "p99_ms"]),
            ms(l, &["total", "max_ms"]),
            l["load_before"].as_str().unwrap_or("")
        );
        if key == "idle" || key == "push" {
            println!(
                "| … of which SMTP 250 → message processed | p50 {} ms, p99 {} ms | |",
                ms(l, &["accepted_to_processed", "p50_ms"]),
                ms(l, &["accepted_to_processed", "p99_ms"])
            );
            println!(
                "| … of which processed → reply accepted | p50 {} ms, p99 {} ms | |",
                ms(l, &["processed_to_reply_accepted", "p50_ms"]),
                ms(l, &["processed_to_reply_accepted", "p99_ms"])
            );
        }
        if !l["peak_rss_mib"].is_null() {
            println!(
                "| … daemon peak RSS / CPU | {:.1} MiB / {:.1} s | |",
                l["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
                l["cpu_secs"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = std::env::var("IMIPD_BENCH_ENV").expect("IMIPD_BENCH_ENV: the stack's env file");
    let stack = MailStack::from_file(Path::new(&env));
    let base = Path::new(stack.var("MAILSTACK_DIR")).join("bench-runs");
    if base.exists() {
        std::fs::remove_dir_all(&base).expect("clear the last run");
    }
    let start = (chrono::Utc::now() + chrono::Duration::days(2))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists");
    let corpus = Corpus::load(start);
    let mut result = json!({ "machine": machine() });

    if !skipped("floor") {
        result["floor"] = idle_floor(&stack, &corpus).await;
    }
    if !skipped("idle") {
        result["idle"] = idle_latency(&stack, &corpus, &base, None).await;
    }
    let push_port = std::env::var("IMIPD_BENCH_PUSH_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok());
    let push_token = std::env::var("IMIPD_BENCH_PUSH_TOKEN").ok();
    match (push_port, push_token.as_deref()) {
        _ if skipped("push") => {}
        (Some(port), Some(token)) => {
            result["push"] = idle_latency(&stack, &corpus, &base, Some((port, token))).await;
        }
        _ => eprintln!("push mode skipped: IMIPD_BENCH_PUSH_PORT / IMIPD_BENCH_PUSH_TOKEN unset"),
    }
    if !skipped("poll") {
        // The default interval, then the given one (IMIPD_BENCH_POLL_SECS, default 0.1).
        let fast = std::env::var("IMIPD_BENCH_POLL_SECS").unwrap_or_else(|_| "0.1".to_string());
        result["poll"] = poll_latency(&stack, &corpus, &base, None).await;
        result["poll_fast"] = poll_latency(&stack, &corpus, &base, Some(fast)).await;
    }
    if !skipped("backlog") {
        let sizes: Vec<usize> = std::env::var("IMIPD_BENCH_BACKLOGS")
            .unwrap_or_else(|_| "1000,10000".to_string())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let mut runs = Vec::new();
        for (i, n) in sizes.into_iter().enumerate() {
            let room = format!("room{}", 5 + i % 5);
            runs.push(backlog(&stack, &corpus, &base, &room, n).await);
        }
        result["backlog"] = Value::Array(runs);
    }
    result["machine"]["load_at_end"] = json!(loadavg());
    print_table(&result);
    let out = PathBuf::from(
        std::env::var("IMIPD_BENCH_OUT").unwrap_or_else(|_| "target/bench-e2e".to_string()),
    );
    std::fs::create_dir_all(&out).expect("create the output directory");
    let file = out.join(format!(
        "{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&result).expect("JSON"))
        .expect("write the JSON");
    println!("\n(JSON: {})", file.display());
}
