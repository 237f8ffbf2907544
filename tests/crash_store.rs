//! Crash safety, proven against the real mail stack: the real `imipd` binary processes a few
//! hundred invitations while it is killed over and over (SIGKILL at random moments, and
//! aborts at the commit and SMTP boundaries through `IMIPD_TEST_CRASH_POINTS`), restarted
//! each time, and finally left to finish. Then:
//! - every invitation has exactly one ledger entry, and the folder checkpoint reached the
//!   last UID;
//! - every reply reached the organiser at least once, and a reply arrived twice only as often
//!   as a crash could have hit the window between SMTP acceptance and the outbox delete (the
//!   duplicate carries the same deterministic Message-ID);
//! - the outbox and the dead letters are empty and `imipd store verify` finds the store
//!   consistent;
//! - a message committed but not yet marked on the server (abort at `after_commit`) was
//!   fetched again and recognised as already processed.
//!
//! Mailboxes: room2 (the daemon's, with a fresh folder per run) and carol (the organiser);
//! no other test uses them. Knobs for a longer run on demand: `IMIPD_CRASH_MESSAGES`
//! (default 200), `IMIPD_CRASH_KILLS` (default 20), `IMIPD_CRASH_SEED`.

mod common;

use common::{MailStack, data, terminate, unique};
use imipd::imap::ImapSession;
use imipd::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Turns a readable `.eml` test file into wire form: CRLF line ends.
fn wire(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// The daemon's log without terminal colour codes (tracing colours even into a file).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn login(stack: &MailStack, user: &str, dir: &Path) -> ImapSession {
    let config = stack.imap_config(user, dir);
    ImapSession::connect(
        &config,
        config.login.username.as_deref().expect("username"),
        stack.password(user),
    )
    .await
    .expect("IMAP login to the local stack")
}

fn daemon_config(stack: &MailStack, dir: &Path, folder: &str) -> std::path::PathBuf {
    stack.daemon_config_with(
        "room2",
        "Room 2",
        1,
        &format!("folders = [\"{folder}\"]\n"),
        dir,
    )
}

fn start(config: &Path, log: &Path, crash_probability: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imipd"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env("IMIPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the daemon log"));
    if let Some(p) = crash_probability {
        command
            .env(
                "IMIPD_TEST_CRASH_POINTS",
                "before_commit,before_flush,after_commit,after_smtp_accept",
            )
            .env("IMIPD_TEST_CRASH_PROBABILITY", p);
    }
    command.spawn().expect("start the daemon")
}

/// The replies in carol's INBOX for this run: invitation number → the Message-IDs received.
async fn replies(
    stack: &MailStack,
    dir: &Path,
    token: &str,
) -> (Vec<u32>, BTreeMap<u32, Vec<String>>) {
    let mut imap = login(stack, "carol", dir).await;
    imap.select("INBOX").await.expect("select INBOX");
    let uids = imap
        .search(&format!("SUBJECT \"Crash {token} \""))
        .await
        .expect("search");
    let mut found: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for &uid in &uids {
        let Some(raw) = imap.fetch(uid).await.expect("fetch") else {
            continue;
        };
        let mail = imipd::mail::extract(&raw).expect("a reply is a message");
        let subject = String::from_utf8_lossy(&raw)
            .lines()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            .expect("a reply has a subject");
        let n: u32 = subject
            .rsplit(' ')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .expect("the subject ends with the invitation number");
        found
            .entry(n)
            .or_default()
            .push(mail.sender.message_id.expect("a reply has a Message-ID"));
    }
    imap.logout().await;
    (uids, found)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_daemon_processes_every_message_once_and_answers_each() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let messages = env_number("IMIPD_CRASH_MESSAGES", 200) as u32;
    let kills = env_number("IMIPD_CRASH_KILLS", 20);
    let seed = env_number(
        "IMIPD_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64,
    ) | 1;
    let mut rng = Rng(seed);
    let token = unique("crash");
    let folder = token.clone();
    eprintln!("crash test: {messages} messages, {kills} crash rounds, seed {seed}, token {token}");

    let mut imap = login(&stack, "room2", dir.path()).await;
    imap.create_folder(&folder)
        .await
        .expect("create the folder");
    let template = data("templates/crash/request.eml");
    let seeding = Instant::now();
    for n in 0..messages {
        let raw = wire(
            &template
                .replace("{{UID}}", &format!("{token}-{n}"))
                .replace("{{TOKEN}}", &token)
                .replace("{{N}}", &n.to_string()),
        );
        imap.append(&folder, &raw).await.expect("APPEND");
    }
    eprintln!("seeded {messages} messages in {:?}", seeding.elapsed());

    let config = daemon_config(&stack, dir.path(), &folder);
    let started = Instant::now();
    let (mut sigkills, mut aborts) = (0u32, 0u32);
    let mut logs = Vec::new();
    for round in 0..kills {
        let log = dir.path().join(format!("daemon-{round}.log"));
        let mut daemon = start(&config, &log, Some("0.02"));
        logs.push(log);
        let deadline = Instant::now() + Duration::from_millis(150 + rng.below(1000));
        loop {
            if let Some(status) = daemon.try_wait().expect("wait") {
                assert!(!status.success(), "the daemon only stops by crashing here");
                aborts += 1;
                break;
            }
            if Instant::now() > deadline {
                daemon.kill().expect("SIGKILL the daemon");
                daemon.wait().expect("reap the daemon");
                sigkills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let log = dir.path().join("daemon-final.log");
    let mut daemon = start(&config, &log, None);
    logs.push(log);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (reply_uids, found) = loop {
        let (uids, found) = replies(&stack, dir.path(), &token).await;
        if found.len() as u32 == messages || Instant::now() > deadline {
            break (uids, found);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Let the last reply's outbox delete land before stopping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = terminate(&mut daemon, Duration::from_secs(30));
    assert!(
        status.success(),
        "the daemon stops cleanly on SIGTERM: {status}"
    );
    let elapsed = started.elapsed();

    let mut crashes_at: BTreeMap<String, u32> = BTreeMap::new();
    let mut already_processed = 0;
    for log in &logs {
        let text = strip_ansi(&std::fs::read_to_string(log).expect("read a daemon log"));
        for line in text.lines() {
            if let Some(point) = line.strip_prefix("imipd: test crash at ") {
                *crashes_at.entry(point.to_string()).or_default() += 1;
            }
            if line.contains("already_processed=true") {
                already_processed += 1;
            }
        }
    }
    let duplicates: usize = found.values().map(|ids| ids.len() - 1).sum();
    eprintln!(
        "crash test result: {messages} messages, {} replies received ({duplicates} duplicates), \
         {sigkills} SIGKILLs, {aborts} aborts {crashes_at:?}, {already_processed} messages \
         found already processed after a restart, {elapsed:?}",
        reply_uids.len()
    );

    // Every reply arrived; a duplicate is the same reply (same Message-ID) sent again.
    let missing: Vec<u32> = (0..messages).filter(|n| !found.contains_key(n)).collect();
    assert!(missing.is_empty(), "no reply for invitations {missing:?}");
    for (n, ids) in &found {
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "invitation {n}: a resend must carry the same Message-ID: {ids:?}"
        );
    }
    // The outbox worker runs beside the mailbox task, so a crash at any point (not only at
    // after_smtp_accept) can land between an SMTP acceptance and its outbox delete; the
    // worker has at most SEND_CONCURRENCY replies in flight, so each crash duplicates at
    // most that many.
    let crashes = sigkills + aborts;
    let window = crashes * imipd::smtp::SEND_CONCURRENCY as u32;
    assert!(
        duplicates as u32 <= window,
        "{duplicates} duplicates but {crashes} crashes with at most {} replies in flight each could only make {window}",
        imipd::smtp::SEND_CONCURRENCY
    );
    if crashes_at.get("after_commit").copied().unwrap_or(0) > 0 {
        assert!(
            already_processed > 0,
            "a message committed before a crash and not marked is recognised on restart"
        );
    }

    let store_dir = dir.path().join("store");
    let verify = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["store", "verify", "--store"])
        .arg(&store_dir)
        .output()
        .expect("run imipd store verify");
    assert!(
        verify.status.success(),
        "store verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let store = Store::open(&store_dir).expect("open the store");
    let mut ledger: BTreeMap<String, u32> = BTreeMap::new();
    for (key, entry) in store.ledger().expect("read the ledger") {
        assert_eq!(key.folder, folder);
        assert_eq!(
            entry.outcome(),
            imipd::itip::Outcome::Added,
            "{:?}",
            entry.results
        );
        *ledger
            .entry(entry.message_id.expect("the invitations have Message-IDs"))
            .or_default() += 1;
    }
    assert_eq!(
        ledger.len() as u32,
        messages,
        "one ledger entry per invitation"
    );
    assert!(ledger.values().all(|c| *c == 1), "{ledger:?}");
    for n in 0..messages {
        let object = store
            .object("room2@example.test", &format!("{token}-{n}"))
            .expect("read")
            .unwrap_or_else(|| panic!("invitation {n} is stored"));
        assert_eq!(
            object.instances.len(),
            1,
            "the ordering key of the single instance is stored beside the text"
        );
        assert_eq!(
            object.instances[0].dtstamp.as_deref(),
            Some("20270101T090000Z")
        );
    }
    assert_eq!(
        store
            .checkpoint("room2@example.test", &folder)
            .expect("read")
            .map(|c| c.last_uid),
        Some(messages),
        "the checkpoint reached the last UID"
    );
    assert!(
        store.outbox().expect("outbox").is_empty(),
        "every reply left the outbox"
    );
    assert!(store.dead_letters().expect("dead").is_empty());
    drop(store);

    imap.delete_folder(&folder)
        .await
        .expect("delete the folder");
    imap.logout().await;
    let mut carol = login(&stack, "carol", dir.path()).await;
    carol.select("INBOX").await.expect("select");
    carol
        .delete_messages(&reply_uids)
        .await
        .expect("remove this run's replies");
    carol.logout().await;
}
