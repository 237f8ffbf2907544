//! `imipd process`: applies message files to a store through [`pipeline::process_message`],
//! the daemon's own path after "raw bytes arrived", and prints one JSON line per calendar
//! object acted on.
//!
//! Each file gets a stable IMAP identity: account = the mailbox, folder `cli`, UIDVALIDITY 0,
//! UID = the first 32 bits of the file's SHA-256. Processing the same file again therefore
//! finds it in the ledger and changes nothing (reported as `no_action` / `duplicate`), just as
//! the daemon would for a message it already handled.

use crate::calendar::CalAddress;
use crate::config::Config;
use crate::itip::{Identity, Outcome};
use crate::limits::Limits;
use crate::pipeline::{self, Mailbox, PartReport};
use crate::policy::Policy;
use crate::store::{CommitResult, MessageKey, Store};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The store directory (created when missing).
    #[arg(long)]
    pub store: PathBuf,
    /// The mailbox the messages arrive at.
    #[arg(long)]
    pub mailbox: String,
    /// A configuration file that describes the mailbox (aliases, name, policy).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Decide and print, but change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The messages come from the mailbox's own Sent folder (as with `sent_folder`): decided
    /// and stored, never answered.
    #[arg(long)]
    pub sent: bool,
    /// The clock the policy sees, RFC 3339 (default: the system clock).
    #[arg(long)]
    pub now: Option<String>,
    /// Message files (.eml), or bare .ics/.vcs objects (treated as sent by their ORGANIZER).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The organiser a bare calendar file names: ORGANIZER, X-ORGANIZER, or the attendee with
/// ROLE=ORGANIZER/OWNER (vCalendar 1.0).
fn organizer_in(text: &str) -> Option<CalAddress> {
    let unfolded = text
        .replace("\r\n ", "")
        .replace("\n ", "")
        .replace("\r\n\t", "");
    let lines: Vec<&str> = unfolded.lines().collect();
    let value = |line: &str| line.rsplit_once(':').map(|(_, v)| v.to_string());
    let address = |line: &str| {
        let (head, rest) = line.split_once(':')?;
        let _ = head;
        CalAddress::parse(rest).or_else(|| value(line).and_then(|v| CalAddress::parse(&v)))
    };
    let upper = |l: &str| l.to_ascii_uppercase();
    lines
        .iter()
        .find(|l| upper(l).starts_with("ORGANIZER"))
        .or_else(|| lines.iter().find(|l| upper(l).starts_with("X-ORGANIZER")))
        .or_else(|| {
            lines.iter().find(|l| {
                let u = upper(l);
                u.starts_with("ATTENDEE")
                    && (u.contains("ROLE=ORGANIZER") || u.contains("ROLE=OWNER"))
            })
        })
        .and_then(|l| address(l))
}

/// Whether a file holds a bare calendar object rather than a message.
pub fn is_bare_calendar(path: &Path, bytes: &[u8]) -> bool {
    let named = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("ics") || e.eq_ignore_ascii_case("vcs"));
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    named
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("BEGIN:VCALENDAR")
}

/// A bare .ics/.vcs object wrapped as the message its ORGANIZER would have sent to
/// `mailbox`. Nothing in it depends on the clock, so the same file always makes the same
/// message (and the same ledger keys).
pub fn as_message(path: &Path, bytes: &[u8], mailbox: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let vcal = text.contains("VERSION:1.0");
    let method = text
        .lines()
        .find_map(|l| l.strip_prefix("METHOD:"))
        .map(|m| format!("; method={}", m.trim()))
        .unwrap_or_default();
    let from = organizer_in(&text)
        .map(|o| format!("From: <{}>\r\n", o.email()))
        .unwrap_or_default();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("calendar.ics");
    let content_type = if vcal {
        "text/x-vcalendar"
    } else {
        "text/calendar"
    };
    let mut out = format!(
        "{from}To: <{mailbox}>\r\nSubject: {name}\r\nMessage-ID: <{}@cli.imipd.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}; charset=UTF-8{method}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        pipeline::content_hash(bytes)
    )
    .into_bytes();
    out.extend_from_slice(bytes);
    out
}

/// The stable IMAP identity of a file processed from the command line.
pub fn key_for(mailbox: &str, bytes: &[u8]) -> MessageKey {
    let hash = pipeline::content_hash(bytes);
    let uid =
        u32::from_str_radix(&hash[..8], 16).expect("a SHA-256 hex digest starts with 8 hex digits");
    MessageKey {
        account: mailbox.to_string(),
        folder: "cli".to_string(),
        uid_validity: 0,
        uid,
    }
}

/// The JSON line for one part, as the CLI contract gives it.
pub fn part_json(file: &str, message_id: Option<&str>, part: &PartReport, numbered: bool) -> Value {
    let (outcome, reason, replies) = (
        part.result.outcome,
        part.result.reason.clone(),
        &part.replies,
    );
    let mut value = json!({
        "file": file,
        "message_id": message_id,
        "method": part.result.method,
        "uid": part.result.uid,
        "outcome": outcome.as_str(),
        "reason": reason,
        "replies": replies.iter().map(|r| json!({
            "to": r.outgoing.to.uri(),
            "method": r.outgoing.method.as_str(),
            "partstat": r.outgoing.partstat.as_ref().map(|p| p.as_str().to_string()),
            "recurrence_id": r.outgoing.recurrence_id,
            "message": String::from_utf8_lossy(&r.composed.bytes),
        })).collect::<Vec<_>>(),
    });
    if numbered {
        value["part"] = json!(part.result.part);
    }
    // Notices to a resource's delegates (a request held for them), only when there are any.
    if !part.notices.is_empty() {
        value["notices"] = json!(
            part.notices
                .iter()
                .map(|n| json!({
                    "to": n.envelope_to,
                    "message": String::from_utf8_lossy(&n.bytes),
                }))
                .collect::<Vec<_>>()
        );
    }
    value
}

/// What an already-processed message reports: nothing happens again.
fn already_processed(mut parts: Vec<PartReport>) -> Vec<PartReport> {
    for part in &mut parts {
        part.result.outcome = Outcome::NoAction;
        part.result.reason =
            "duplicate: this message was already processed (found in the ledger)".into();
        part.replies.clear();
        part.notices.clear();
    }
    parts
}

fn mailbox_from(args: &ProcessArgs) -> Result<Mailbox, String> {
    let Some(path) = &args.config else {
        let address = CalAddress::parse(&args.mailbox)
            .ok_or_else(|| format!("--mailbox {} is not an e-mail address", args.mailbox))?;
        return Ok(Mailbox {
            account: args.mailbox.clone(),
            identity: Identity::new(vec![address], None),
            policy: Policy::default(),
            limits: Limits::default(),
        });
    };
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let wanted = CalAddress::parse(&args.mailbox);
    let found = config
        .mailboxes
        .iter()
        .find(|m| CalAddress::parse(&m.address) == wanted)
        .ok_or_else(|| format!("{} configures no mailbox {}", path.display(), args.mailbox))?;
    Ok(Mailbox {
        account: found.address.clone(),
        identity: Identity::new(found.addresses(), found.name.clone()),
        policy: found.policy.clone(),
        limits: found.limits.clone(),
    })
}

/// Runs `process`.
pub fn run(args: &ProcessArgs) -> ExitCode {
    let now: DateTime<Utc> = match &args.now {
        None => Utc::now(),
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                eprintln!(
                    "imipd process: --now {text} is not an RFC 3339 time ({e}); write e.g. 2027-01-02T08:00:00Z"
                );
                return ExitCode::from(2);
            }
        },
    };
    let mailbox = match mailbox_from(args) {
        Ok(mailbox) => mailbox,
        Err(e) => {
            eprintln!("imipd process: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match Store::open(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!(
                "imipd process: cannot open the store at {}: {e}",
                args.store.display()
            );
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    for path in &args.files {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("imipd process: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let key = key_for(&mailbox.account, &bytes);
        let raw = if is_bare_calendar(path, &bytes) {
            as_message(path, &bytes, &mailbox.account)
        } else {
            bytes
        };
        let origin = if args.sent {
            pipeline::Origin::Sent
        } else {
            pipeline::Origin::Incoming
        };
        let report = match runtime.block_on(pipeline::process_message_from(
            &store,
            &mailbox,
            key,
            &raw,
            now,
            args.dry_run,
            origin,
        )) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("imipd process: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let parts = if report.commit == CommitResult::AlreadyProcessed {
            already_processed(report.parts)
        } else {
            report.parts
        };
        let numbered = parts.len() > 1;
        for part in &parts {
            let line = part_json(
                &path.display().to_string(),
                report.message_id.as_deref(),
                part,
                numbered,
            );
            // A closed pipe (`| head`) ends the output, not the tool.
            if writeln!(out, "{line}").is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}
