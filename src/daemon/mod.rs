//! The daemon: one task per mailbox that watches its folders, one outbox worker that sends
//! the replies, and an orderly stop on SIGTERM or SIGINT (the message in hand and the SMTP
//! send in hand are finished first).

use crate::config::{Config, MailboxConfig};
use crate::imap::{IDLE_REFRESH, IdleEnd, ImapSession};
use crate::itip::Identity;
use crate::pipeline::{self, Mailbox};
use crate::smtp::{self, Sender};
use crate::store::{CommitResult, MessageKey, Store};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// How long the outbox worker sleeps when nobody wakes it.
const OUTBOX_TICK: Duration = Duration::from_secs(15);
/// The longest wait between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(300);
/// How long the tasks get to finish what they hold after a stop signal.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Smtp(#[from] crate::smtp::SmtpError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let store = Store::open(&config.store.path)?;
    let mut senders = HashMap::new();
    for mailbox in &config.mailboxes {
        let login = &mailbox.smtp.login;
        let sender = Sender::new(
            &mailbox.smtp,
            login.username(&mailbox.address),
            &login.password(&mailbox.address)?,
        )?;
        senders.insert(mailbox.address.clone(), sender);
    }
    let stop = CancellationToken::new();
    let wake_outbox = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for mailbox in config.mailboxes.clone() {
        let span = info_span!("mailbox", address = %mailbox.address);
        tasks.spawn(
            watch_mailbox(store.clone(), mailbox, stop.clone(), wake_outbox.clone())
                .instrument(span),
        );
    }
    tasks.spawn(
        outbox_worker(store.clone(), senders, stop.clone(), wake_outbox.clone())
            .instrument(info_span!("outbox")),
    );
    info!(mailboxes = config.mailboxes.len(), "imipd running");
    wait_for_stop_signal().await.map_err(DaemonError::Signals)?;
    info!("stopping: finishing the work in hand");
    stop.cancel();
    let finished = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        warn!("tasks did not stop within {STOP_GRACE:?}; aborting them");
        tasks.shutdown().await;
    }
    info!("stopped");
    Ok(())
}

async fn wait_for_stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
    Ok(())
}

/// Sleeps for `duration` unless stopped first; returns false when stopped.
async fn pause(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

async fn watch_mailbox(
    store: Store,
    config: MailboxConfig,
    stop: CancellationToken,
    wake_outbox: Arc<Notify>,
) {
    let mailbox = Mailbox {
        account: config.address.clone(),
        identity: Identity::new(config.addresses(), config.name.clone()),
        policy: config.policy.clone(),
    };
    let mut delay = Duration::from_secs(1);
    while !stop.is_cancelled() {
        match session(&store, &config, &mailbox, &stop, &wake_outbox).await {
            Ok(()) => return,
            Err(e) => {
                error!(error = %e, retry_in_secs = delay.as_secs(), "mailbox session failed");
                if !pause(&stop, delay).await {
                    return;
                }
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
            }
        }
    }
}

/// One IMAP session: poll the folders until stopped (Ok) or until the connection fails.
async fn session(
    store: &Store,
    config: &MailboxConfig,
    mailbox: &Mailbox,
    stop: &CancellationToken,
    wake_outbox: &Notify,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let login = &config.imap.login;
    let password = login.password(&config.address)?;
    let mut imap =
        ImapSession::connect(&config.imap, login.username(&config.address), &password).await?;
    info!("connected to IMAP");
    loop {
        for folder in &config.folders {
            let uid_validity = imap.select(folder).await?;
            for uid in imap.unprocessed().await? {
                if stop.is_cancelled() {
                    break;
                }
                let Some(raw) = imap.fetch(uid).await? else {
                    continue;
                };
                let key = MessageKey {
                    account: config.address.clone(),
                    folder: folder.clone(),
                    uid_validity,
                    uid,
                };
                let span = info_span!("message", folder = %folder, uid);
                let report =
                    pipeline::process_message(store, mailbox, key, &raw, Utc::now(), false)
                        .instrument(span.clone())
                        .await?;
                span.in_scope(|| {
                    for part in &report.parts {
                        info!(
                            message_id = report.message_id.as_deref().unwrap_or(""),
                            method = part.result.method.as_deref().unwrap_or(""),
                            uid = part.result.uid.as_deref().unwrap_or(""),
                            outcome = %part.result.outcome,
                            reason = %part.result.reason,
                            replies = part.replies.len(),
                            already_processed = report.commit == CommitResult::AlreadyProcessed,
                            "message processed"
                        );
                    }
                });
                imap.mark_processed(uid).await?;
                wake_outbox.notify_one();
            }
        }
        if imap.can_idle() {
            // IDLE watches the last selected folder; with several folders the wait is capped
            // at the poll interval so the others are still looked at.
            let wait = if config.folders.len() > 1 {
                config.poll_interval()
            } else {
                IDLE_REFRESH
            };
            let (session, end) = imap.idle(wait, stop).await?;
            imap = session;
            if end == IdleEnd::Stopped {
                imap.logout().await;
                return Ok(());
            }
        } else if !pause(stop, config.poll_interval()).await {
            imap.logout().await;
            return Ok(());
        }
    }
}

async fn outbox_worker(
    store: Store,
    senders: HashMap<String, Sender>,
    stop: CancellationToken,
    wake: Arc<Notify>,
) {
    loop {
        if let Err(e) = smtp::drain_outbox(&store, &senders, Utc::now().timestamp()).await {
            error!(error = %e, "outbox pass failed");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(OUTBOX_TICK) => {}
        }
    }
}
