//! The store's commands: `imipd show --ledger|--outbox|--dead|--sent|--objects` and
//! `imipd store export|import|verify`. Argument parsing lives here (clap derive, flattened
//! into [`crate::cli`]); the work is the store's.
//!
//! Output: the views print one JSON object per line on stdout; export prints iCalendar.
//! Exit status: 0 done; 1 `verify` found inconsistencies (each printed on stdout as JSON,
//! and named on stderr); 2 the command could not run (store locked or missing, bad file).

use super::{Store, StoreError};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The bookkeeping views of `imipd show` (flattened into its arguments): at most one.
#[derive(Debug, Clone, Default, Args)]
#[command(group(clap::ArgGroup::new("view").multiple(false).args(["ledger", "outbox", "dead", "sent", "objects"])))]
pub struct ViewArgs {
    /// The ledger of processed messages: IMAP identity, Message-ID, hash, outcome, reason.
    #[arg(long)]
    pub ledger: bool,
    /// The replies waiting for SMTP: attempts, next attempt, last error.
    #[arg(long)]
    pub outbox: bool,
    /// The replies that could not be delivered, with the reason.
    #[arg(long)]
    pub dead: bool,
    /// The sent-reply index: every message queued, with the object, instance and recipient
    /// it was about (what delivery reports are matched against).
    #[arg(long)]
    pub sent: bool,
    /// The stored records of the objects (iCalendar text with the ordering metadata).
    #[arg(long)]
    pub objects: bool,
}

impl ViewArgs {
    /// Whether one of the views was asked for.
    pub fn any(&self) -> bool {
        self.ledger || self.outbox || self.dead || self.sent || self.objects
    }
}

/// `imipd store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write every stored object as iCalendar to stdout, one VCALENDAR per mailbox, with the
    /// ordering metadata, tombstones and busy intervals in X-IMIPD- properties.
    ///
    /// Example: imipd store export --store /var/lib/imipd > backup.ics
    Export {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// Only this mailbox.
        #[arg(long)]
        mailbox: Option<String>,
    },
    /// Restore an export into a store (objects of the same UID are replaced).
    ///
    /// Example: imipd store import --store /var/lib/imipd backup.ics
    Import {
        /// The store directory (created when missing).
        #[arg(long)]
        store: PathBuf,
        /// The export file.
        file: PathBuf,
    },
    /// Check the indexes against the objects; exit 1 naming every inconsistency.
    ///
    /// Example: imipd store verify --store /var/lib/imipd
    Verify {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
    },
}

fn open_existing(path: &Path) -> Result<Store, String> {
    if !path.join("conf").exists() {
        return Err(format!(
            "{} is not an imipd store (no sled database there)",
            path.display()
        ));
    }
    Store::open(path).map_err(|e| e.to_string())
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("imipd: {message}");
    ExitCode::from(2)
}

fn print_lines(values: impl IntoIterator<Item = serde_json::Value>) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for value in values {
        if writeln!(out, "{value}").is_err() {
            // stdout closed (e.g. piped into head): nothing more to say.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

fn view(
    store: &Store,
    mailbox: Option<&str>,
    args: &ViewArgs,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let wanted = |m: &str| mailbox.is_none_or(|wanted| wanted == m);
    Ok(if args.ledger {
        store
            .ledger()?
            .into_iter()
            .filter(|(key, _)| wanted(&key.account))
            .map(|(key, entry)| {
                json!({
                    "account": key.account,
                    "folder": key.folder,
                    "uid_validity": key.uid_validity,
                    "uid": key.uid,
                    "message_id": entry.message_id,
                    "content_hash": entry.content_hash,
                    "outcome": entry.outcome(),
                    "results": entry.results,
                    "processed_at": entry.processed_at,
                })
            })
            .collect()
    } else if args.outbox {
        store
            .outbox()?
            .into_iter()
            .filter(|item| wanted(&item.mailbox))
            .map(|item| json!(item))
            .collect()
    } else if args.dead {
        store
            .dead_letters()?
            .into_iter()
            .filter(|dead| wanted(&dead.item.mailbox))
            .map(|dead| json!(dead))
            .collect()
    } else if args.sent {
        store
            .sent_replies(mailbox)?
            .into_iter()
            .map(|sent| json!(sent))
            .collect()
    } else {
        store
            .objects(mailbox)?
            .into_iter()
            .map(|(mailbox, object)| {
                let mut value = json!(object);
                value["mailbox"] = json!(mailbox);
                value
            })
            .collect()
    })
}

/// Runs `imipd show` with a store view.
pub fn show(store: &Path, mailbox: Option<&str>, args: &ViewArgs) -> ExitCode {
    let store = match open_existing(store) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    match view(&store, mailbox, args) {
        Ok(values) => print_lines(values),
        Err(e) => fail(e),
    }
}

/// Runs `imipd store …`.
pub fn run(command: &StoreCommand) -> ExitCode {
    match command {
        StoreCommand::Export { store, mailbox } => {
            let store = match open_existing(store) {
                Ok(store) => store,
                Err(e) => return fail(e),
            };
            match store.export(mailbox.as_deref()) {
                Ok(text) => {
                    std::io::stdout().write_all(text.as_bytes()).ok();
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        StoreCommand::Import { store, file } => {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => return fail(format!("cannot read {}: {e}", file.display())),
            };
            let store = match Store::open(store) {
                Ok(store) => store,
                Err(e) => return fail(e),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime needs no resources that can fail");
            match runtime.block_on(store.import(&text)) {
                Ok(n) => {
                    eprintln!(
                        "imipd: imported {n} objects into {}",
                        store.path().display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("{}: {e}", file.display())),
            }
        }
        StoreCommand::Verify { store } => {
            let store = match open_existing(store) {
                Ok(store) => store,
                Err(e) => return fail(e),
            };
            match store.verify() {
                Ok(problems) if problems.is_empty() => {
                    eprintln!("imipd: {} is consistent", store.path().display());
                    ExitCode::SUCCESS
                }
                Ok(problems) => {
                    for p in &problems {
                        println!("{}", json!(p));
                        eprintln!("imipd: inconsistent: {p}");
                    }
                    eprintln!(
                        "imipd: {} has {} inconsistencies",
                        store.path().display(),
                        problems.len()
                    );
                    ExitCode::from(1)
                }
                Err(e) => fail(e),
            }
        }
    }
}
