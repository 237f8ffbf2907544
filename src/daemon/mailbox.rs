//! One mailbox's task: log in, work through every watched folder in UID order and in bounded
//! batches, wait for news (IDLE, or NOOP polling), and reconnect with exponential backoff and
//! jitter when anything on the connection fails.

use crate::config::{MailboxConfig, ProcessedAction};
use crate::imap::{IDLE_REFRESH, IdleEnd, ImapError, ImapSession};
use crate::imap::{PROCESSED_KEYWORD, QUARANTINED_KEYWORD};
use crate::itip::{Identity, Outcome};
use crate::pipeline::{self, Mailbox, Report};
use crate::store::{Checkpoint, CommitResult, MessageKey, PartResult, Store};
use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// The first wait before reconnecting; doubled on every failure in a row.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(300);
/// When polling with NOOP, every folder is searched again at least this often (NOOP only
/// reports new messages of the selected folder, and not flag changes made by others).
const FULL_SCAN_EVERY: Duration = Duration::from_secs(60);
/// How many UIDs' sizes are asked for in one UID FETCH before batching.
const SIZE_QUERY_CHUNK: usize = 500;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What ends a session while working through a folder.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// The store failed: the message stays unmarked and is processed again later.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The reconnection delay after `failures` failed sessions in a row: exponential from
/// [`FIRST_RECONNECT_DELAY`] up to [`MAX_RECONNECT_DELAY`], then scaled by a random factor in
/// [0.5, 1) so that many mailboxes of one server do not reconnect in lockstep.
pub fn reconnect_delay(failures: u32, random: f64) -> Duration {
    let base = FIRST_RECONNECT_DELAY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_RECONNECT_DELAY);
    base.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
}

/// Sleeps for `duration` unless stopped first; returns false when stopped.
pub(super) async fn pause(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

/// Watches one mailbox until `stop` is cancelled.
pub(super) async fn watch(
    store: Store,
    config: MailboxConfig,
    stop: CancellationToken,
    wake_outbox: Arc<Notify>,
    wake: Arc<Notify>,
) {
    let mut watcher = Watcher {
        mailbox: Mailbox {
            account: config.address.clone(),
            identity: Identity::new(config.addresses(), config.name.clone()),
            policy: config.policy.clone(),
            limits: config.limits.clone(),
        },
        store,
        config,
        stop,
        wake_outbox,
        wake,
        rechecked: HashSet::new(),
        scanned: false,
        credentials: None,
    };
    let mut failures = 0;
    while !watcher.stop.is_cancelled() {
        watcher.scanned = false;
        match watcher.session().await {
            Ok(()) => return,
            Err(e) => {
                crate::metrics::get().reconnect(&watcher.config.address);
                failures = if watcher.scanned { 1 } else { failures + 1 };
                let delay = reconnect_delay(failures, fastrand::f64());
                error!(error = %e, retry_in_ms = delay.as_millis() as u64, "mailbox session failed");
                if !pause(&watcher.stop, delay).await {
                    return;
                }
            }
        }
    }
}

/// What becomes of a processed message on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Processed normally: the mailbox's `processed` action.
    Done,
    /// Its outcome was `error` or `rejected`: to the quarantine folder.
    Quarantine,
}

/// Whether a folder receives mail for the mailbox or is its Sent folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Incoming,
    Sent,
}

struct Watcher {
    store: Store,
    config: MailboxConfig,
    mailbox: Mailbox,
    stop: CancellationToken,
    wake_outbox: Arc<Notify>,
    /// Notified by a push ([`crate::push`]): look at the folders now.
    wake: Arc<Notify>,
    /// Folders whose recently marked messages were re-checked against the ledger already.
    rechecked: HashSet<String>,
    /// Whether the current session got through all folders once (resets the backoff).
    scanned: bool,
    /// The OAuth 2.0 token source, once made (passwords are not kept).
    credentials: Option<crate::oauth::Credentials>,
}

fn failed(results: &[PartResult]) -> bool {
    results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Error | Outcome::Rejected))
}

impl Watcher {
    /// One IMAP session: scan the folders and wait for news until stopped (Ok) or until the
    /// connection fails.
    async fn session(&mut self) -> Result<(), BoxError> {
        let login = &self.config.imap.login;
        // A token source is kept across reconnections (its token outlives a session); a
        // password is read again each time, so a changed file is picked up.
        let credentials = match &self.credentials {
            Some(credentials) => credentials.clone(),
            None => {
                let credentials = crate::oauth::credentials(
                    &self.config,
                    crate::oauth::Protocol::Imap,
                    Some(self.store.clone()),
                )?;
                if matches!(credentials, crate::oauth::Credentials::OAuth2(_)) {
                    self.credentials = Some(credentials.clone());
                }
                credentials
            }
        };
        let mut imap = ImapSession::connect_with(
            &self.config.imap,
            login.username(&self.config.address),
            &credentials,
        )
        .await?;
        info!(
            idle = imap.can_idle(),
            r#move = imap.can_move(),
            "connected to IMAP"
        );
        if self.config.push {
            self.register_push(&mut imap).await;
        }
        // The Sent folder first, so that IDLE (which watches the last selected folder) waits
        // on an incoming one.
        let folders: Vec<(String, Role)> = self
            .config
            .sent_folder
            .iter()
            .map(|f| (f.clone(), Role::Sent))
            .chain(
                self.config
                    .folders
                    .iter()
                    .map(|f| (f.clone(), Role::Incoming)),
            )
            .collect();
        let mut missing: HashSet<String> = HashSet::new();
        loop {
            let mut selected_any = false;
            for (folder, role) in &folders {
                if missing.contains(folder) {
                    continue;
                }
                match self.scan_folder(&mut imap, folder, *role).await {
                    Ok(()) => selected_any = true,
                    Err(WatchError::Imap(
                        e @ ImapError::Command {
                            command: "SELECT", ..
                        },
                    )) if e.is_command_refusal() => {
                        warn!(folder = %folder, error = %e, "cannot select a watched folder; skipped until the next connection");
                        missing.insert(folder.clone());
                    }
                    Err(e) => return Err(e.into()),
                }
                if self.stop.is_cancelled() {
                    imap.logout().await;
                    return Ok(());
                }
            }
            if !selected_any {
                return Err("none of the watched folders can be selected".into());
            }
            self.scanned = true;
            crate::metrics::get().polled(&self.config.address);
            let watched = folders.len() - missing.len();
            if self.config.idle && imap.can_idle() {
                // IDLE watches the last selected folder; with several folders the wait is
                // capped at the poll interval so the others are still looked at.
                let wait = if watched > 1 {
                    self.config.poll_interval()
                } else {
                    IDLE_REFRESH
                };
                let (session, end) = imap.idle(wait, &self.stop, &self.wake).await?;
                imap = session;
                if end == IdleEnd::Stopped {
                    imap.logout().await;
                    return Ok(());
                }
            } else {
                let since = Instant::now();
                loop {
                    let woken = tokio::select! {
                        _ = self.stop.cancelled() => {
                            imap.logout().await;
                            return Ok(());
                        }
                        _ = self.wake.notified() => true,
                        _ = tokio::time::sleep(self.config.poll_interval()) => false,
                    };
                    if woken
                        || watched > 1
                        || since.elapsed() >= FULL_SCAN_EVERY
                        || imap.poll().await?
                    {
                        break;
                    }
                }
            }
        }
    }

    /// Asks the server to push deliveries to this daemon (see [`crate::push`]); a server that
    /// cannot is logged, and the mailbox goes on with IDLE or polling.
    async fn register_push(&self, imap: &mut ImapSession) {
        if !imap.can_set_metadata() {
            warn!(
                "push = true, but the server offers no METADATA to register with: set its push up by other means, or the mailbox relies on IDLE and polling alone"
            );
            return;
        }
        let value = crate::push::metadata_value(&self.config.address);
        match imap
            .set_server_metadata(crate::push::METADATA_KEY, &value)
            .await
        {
            Ok(()) => {
                info!(entry = crate::push::METADATA_KEY, %value, "registered for server push")
            }
            Err(e) => {
                warn!(error = %e, "cannot register for server push; the mailbox relies on IDLE and polling alone")
            }
        }
    }

    /// Selects `folder` and processes every message in it that is not marked processed (and
    /// re-checks, once per process, the recently marked ones against the ledger).
    async fn scan_folder(
        &mut self,
        imap: &mut ImapSession,
        folder: &str,
        role: Role,
    ) -> Result<(), WatchError> {
        let uid_validity = imap.select(folder).await?;
        let account = self.config.address.clone();
        let checkpoint = self.store.checkpoint(&account, folder)?;
        let mut todo = imap.unprocessed().await?;
        match checkpoint {
            Some(cp) if cp.uid_validity != uid_validity => {
                warn!(
                    folder,
                    old = cp.uid_validity,
                    new = uid_validity,
                    "UIDVALIDITY changed: every message is checked against the ledger by Message-ID and content"
                );
                self.rechecked.insert(folder.to_string());
            }
            Some(cp) if !self.rechecked.contains(folder) => {
                // The IMAP mark is a hint: a message marked after the last checkpoint whose
                // ledger entry is missing (lost with the last store writes) is processed again.
                for uid in imap.marked_after(cp.last_uid).await? {
                    let key = MessageKey {
                        account: account.clone(),
                        folder: folder.to_string(),
                        uid_validity,
                        uid,
                    };
                    if self.store.ledger_entry(&key, None, "")?.is_none() {
                        warn!(
                            folder,
                            uid, "marked on the server but not in the ledger: processing it again"
                        );
                        todo.push(uid);
                    }
                }
                todo.sort_unstable();
                todo.dedup();
                self.rechecked.insert(folder.to_string());
            }
            _ => {
                self.rechecked.insert(folder.to_string());
            }
        }
        let mut last_uid = checkpoint
            .filter(|cp| cp.uid_validity == uid_validity)
            .map_or(0, |cp| cp.last_uid);
        for chunk in todo.chunks(SIZE_QUERY_CHUNK) {
            let sizes = imap.sizes(chunk).await?;
            for batch in batches(
                &sizes,
                self.config.fetch_batch,
                self.config.fetch_batch_bytes,
            ) {
                let messages = imap.fetch_many(&batch).await?;
                let mut done = Vec::new();
                let mut quarantined = Vec::new();
                for (uid, raw) in messages {
                    let key = MessageKey {
                        account: account.clone(),
                        folder: folder.to_string(),
                        uid_validity,
                        uid,
                    };
                    match self.process(key, &raw, role).await? {
                        Disposition::Done => done.push(uid),
                        Disposition::Quarantine => quarantined.push(uid),
                    }
                    last_uid = last_uid.max(uid);
                    if self.stop.is_cancelled() {
                        break;
                    }
                }
                // One flush for the whole batch, before anything of it is marked on the
                // server (the store's "Batched flushes").
                self.store.flush_commits().await?;
                // The batch's replies are durable now: they may leave while the batch is
                // being marked on the server.
                self.wake_outbox.notify_one();
                self.dispose(imap, role, &done, &quarantined).await?;
                self.store
                    .set_checkpoint(
                        &account,
                        folder,
                        Checkpoint {
                            uid_validity,
                            last_uid,
                        },
                    )
                    .await?;
                if self.stop.is_cancelled() {
                    return Ok(());
                }
            }
        }
        if checkpoint.is_none_or(|cp| cp.uid_validity != uid_validity) {
            // Record the folder's identity even when it held nothing to do.
            self.store
                .set_checkpoint(
                    &account,
                    folder,
                    Checkpoint {
                        uid_validity,
                        last_uid,
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Runs one message through the pipeline and logs what happened.
    async fn process(
        &self,
        key: MessageKey,
        raw: &[u8],
        role: Role,
    ) -> Result<Disposition, WatchError> {
        let span = info_span!("message", folder = %key.folder, uid = key.uid);
        let started = Instant::now();
        let origin = match role {
            Role::Incoming => pipeline::Origin::Incoming,
            Role::Sent => pipeline::Origin::Sent,
        };
        let report: Report = pipeline::process_message_unflushed(
            &self.store,
            &self.mailbox,
            key.clone(),
            raw,
            Utc::now(),
            origin,
        )
        .instrument(span.clone())
        .await?;
        let already = report.commit == CommitResult::AlreadyProcessed;
        let metrics = crate::metrics::get();
        metrics.processing_time(&self.config.address, started.elapsed());
        if !already {
            for part in &report.parts {
                metrics.message(
                    &self.config.address,
                    part.result.outcome.as_str(),
                    &part.result.reason,
                );
            }
        }
        span.in_scope(|| {
            for part in &report.parts {
                info!(
                    message_id = report.message_id.as_deref().unwrap_or(""),
                    method = part.result.method.as_deref().unwrap_or(""),
                    uid = part.result.uid.as_deref().unwrap_or(""),
                    outcome = %part.result.outcome,
                    reason = %part.result.reason,
                    replies = part.replies.len(),
                    already_processed = already,
                    "message processed"
                );
            }
        });
        // A message seen before is disposed of as it was judged the first time.
        let was_failed = if already {
            let hash = pipeline::content_hash(raw);
            match self
                .store
                .ledger_entry(&key, report.message_id.as_deref(), &hash)?
            {
                Some(entry) => failed(&entry.results),
                None => failed(
                    &report
                        .parts
                        .iter()
                        .map(|p| p.result.clone())
                        .collect::<Vec<_>>(),
                ),
            }
        } else {
            failed(
                &report
                    .parts
                    .iter()
                    .map(|p| p.result.clone())
                    .collect::<Vec<_>>(),
            )
        };
        Ok(if was_failed {
            Disposition::Quarantine
        } else {
            Disposition::Done
        })
    }

    /// Marks, moves or deletes the messages of one batch on the server.
    async fn dispose(
        &self,
        imap: &mut ImapSession,
        role: Role,
        done: &[u32],
        quarantined: &[u32],
    ) -> Result<(), ImapError> {
        if role == Role::Sent {
            // The user's own sent mail is only ever flagged.
            let mut all: Vec<u32> = done.iter().chain(quarantined).copied().collect();
            all.sort_unstable();
            return imap.add_flags(&all, PROCESSED_KEYWORD).await;
        }
        if !quarantined.is_empty() {
            imap.add_flags(
                quarantined,
                &format!("{PROCESSED_KEYWORD} {QUARANTINED_KEYWORD}"),
            )
            .await?;
            imap.ensure_folder(&self.config.quarantine_folder).await?;
            imap.move_to(quarantined, &self.config.quarantine_folder)
                .await?;
            warn!(count = quarantined.len(), folder = %self.config.quarantine_folder, "failed messages quarantined");
        }
        if !done.is_empty() {
            imap.add_flags(done, &format!("\\Seen {PROCESSED_KEYWORD}"))
                .await?;
            match (self.config.processed, &self.config.processed_folder) {
                (ProcessedAction::Move, Some(folder)) => {
                    imap.ensure_folder(folder).await?;
                    imap.move_to(done, folder).await?;
                }
                (ProcessedAction::Delete, _) => imap.delete(done).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Splits `(uid, size)` pairs into UID FETCH batches of at most `count` messages and
/// `max_bytes` bytes; a message larger than `max_bytes` is fetched alone.
pub fn batches(sizes: &[(u32, u64)], count: usize, max_bytes: u64) -> Vec<Vec<u32>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        if !current.is_empty() && (current.len() >= count || bytes.saturating_add(size) > max_bytes)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes = bytes.saturating_add(size);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_both_the_count_and_the_byte_limit() {
        let sizes = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 5), (6, 5)];
        assert_eq!(
            batches(&sizes, 2, 1000),
            vec![vec![1, 2], vec![3, 4], vec![5, 6]]
        );
        assert_eq!(
            batches(&sizes, 50, 30),
            vec![vec![1, 2, 3], vec![4], vec![5, 6]]
        );
        assert!(batches(&[], 50, 30).is_empty());
    }

    #[test]
    fn reconnect_delay_grows_is_capped_and_jittered() {
        assert_eq!(reconnect_delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(reconnect_delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(reconnect_delay(4, 1.0), Duration::from_secs(8));
        assert_eq!(reconnect_delay(40, 1.0), MAX_RECONNECT_DELAY);
        assert!(reconnect_delay(40, 0.3) < MAX_RECONNECT_DELAY);
    }
}
