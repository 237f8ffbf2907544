//! The daemon: one task per mailbox that watches its folders, one outbox worker that sends
//! the replies, systemd notification, a configuration reload on SIGHUP, and an orderly stop
//! on SIGTERM or SIGINT (the message in hand and the SMTP send in hand are finished first).
//!
//! # Reload
//!
//! SIGHUP reads the configuration file again. A file that does not load or validate, or whose
//! SMTP settings cannot be set up, is refused with a logged error and the running
//! configuration stays. Otherwise mailboxes that disappeared are stopped (after the message
//! in hand), new ones are started, and changed ones are restarted; unchanged ones keep their
//! connection. The store path and the `[http]` listener cannot change without a restart (the
//! mailboxes' publish keys do reload).
//!
//! # Publishing
//!
//! With `[http] listen`, one more task serves the published calendars ([`crate::publish::http`]).
//! It only reads the store, and wakes mailboxes on a server push ([`crate::push`]).

mod mailbox;

pub use mailbox::{batches, reconnect_delay};

use crate::config::{Config, MailboxConfig};
use crate::smtp::{self, Sender};
use crate::store::Store;
use chrono::Utc;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// How long the outbox worker sleeps at most when nobody wakes it.
const OUTBOX_TICK: Duration = Duration::from_secs(15);
/// How long the tasks get to finish what they hold after a stop signal.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Boxed: a configuration error is large and rare.
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    #[error(transparent)]
    Smtp(#[from] crate::smtp::SmtpError),
    /// Boxed: rare, and large.
    #[error(transparent)]
    OAuth(#[from] Box<crate::oauth::OAuthError>),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Http(#[from] crate::publish::http::BindError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::ListenError),
}

impl From<crate::config::ConfigError> for DaemonError {
    fn from(e: crate::config::ConfigError) -> Self {
        DaemonError::Config(Box::new(e))
    }
}

/// One SMTP transport per mailbox address.
type Senders = Arc<HashMap<String, Sender>>;

fn senders(config: &Config, store: &Store) -> Result<Senders, DaemonError> {
    let mut senders = HashMap::new();
    for mailbox in &config.mailboxes {
        let login = &mailbox.smtp.login;
        let credentials =
            crate::oauth::credentials(mailbox, crate::oauth::Protocol::Smtp, Some(store.clone()))
                .map_err(Box::new)?;
        let sender =
            Sender::with_credentials(&mailbox.smtp, login.username(&mailbox.address), credentials)?;
        senders.insert(mailbox.address.clone(), sender);
    }
    Ok(Arc::new(senders))
}

/// Tells systemd (when it started us with `NOTIFY_SOCKET`) how we are; harmless otherwise.
fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// A running mailbox task.
struct Running {
    config: MailboxConfig,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// The mailbox tasks and what they share.
struct Mailboxes {
    store: Store,
    root: CancellationToken,
    wake_outbox: Arc<Notify>,
    /// Each mailbox's push signal, shared with the HTTP listener's `/push`.
    wakers: crate::push::Wakers,
    running: HashMap<String, Running>,
}

impl Mailboxes {
    /// Starts a task for `config`; it waits for `previous` (a task of the same mailbox being
    /// stopped) first, so that one mailbox never has two sessions at once.
    fn start(&mut self, config: MailboxConfig, previous: Option<JoinHandle<()>>) {
        let stop = self.root.child_token();
        let span = info_span!("mailbox", address = %config.address);
        let task = mailbox::watch(
            self.store.clone(),
            config.clone(),
            stop.clone(),
            self.wake_outbox.clone(),
            self.wakers.signal(&config.address),
        );
        let handle = tokio::spawn(
            async move {
                if let Some(previous) = previous {
                    previous.await.ok();
                }
                task.await;
            }
            .instrument(span),
        );
        self.running.insert(
            config.address.clone(),
            Running {
                config,
                stop,
                handle,
            },
        );
    }

    /// Brings the running tasks in line with `wanted`.
    fn apply(&mut self, wanted: &[MailboxConfig]) {
        self.wakers.update(wanted);
        let keep: Vec<&str> = wanted.iter().map(|m| m.address.as_str()).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|a| !keep.contains(&a.as_str()))
            .cloned()
            .collect();
        for address in gone {
            if let Some(old) = self.running.remove(&address) {
                info!(mailbox = %address, "mailbox removed from the configuration: stopping it");
                old.stop.cancel();
            }
        }
        for config in wanted {
            match self.running.remove(&config.address) {
                Some(old) if old.config == *config => {
                    self.running.insert(config.address.clone(), old);
                }
                Some(old) => {
                    info!(mailbox = %config.address, "mailbox settings changed: restarting it");
                    old.stop.cancel();
                    self.start(config.clone(), Some(old.handle));
                }
                None => {
                    info!(mailbox = %config.address, "starting mailbox");
                    self.start(config.clone(), None);
                }
            }
        }
    }
}

/// Runs until SIGTERM or SIGINT. `path` is the file `config` came from: SIGHUP reloads it.
pub async fn run(config: Config, path: Option<PathBuf>) -> Result<(), DaemonError> {
    let store = Store::open(&config.store.path)?;
    let (senders_tx, senders_rx) = watch::channel(senders(&config, &store)?);
    let root = CancellationToken::new();
    let wake_outbox = Arc::new(Notify::new());
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let outbox_stop = root.child_token();
    let outbox = tokio::spawn(
        outbox_worker(
            store.clone(),
            senders_rx,
            outbox_stop.clone(),
            wake_outbox.clone(),
        )
        .instrument(info_span!("outbox")),
    );
    // The publishing listener, when configured: bound before "ready", so a taken port stops
    // the start with an error instead of a daemon that silently publishes nothing.
    let wakers = crate::push::Wakers::default();
    wakers.update(&config.mailboxes);
    let publisher = match &config.http {
        Some(http) => {
            let push = http.push_token()?.map(|token| (token, wakers.clone()));
            let listener = crate::publish::http::bind(http.listen).await?;
            let server =
                crate::publish::http::Server::with_push(store.clone(), &config.mailboxes, push);
            let handle = tokio::spawn(
                crate::publish::http::serve(listener, server.clone(), root.child_token())
                    .instrument(info_span!("http")),
            );
            Some((server, handle))
        }
        None => None,
    };
    let metrics = match config.metrics.listen_addr() {
        Some(addr) => Some(crate::metrics::serve(addr, store.clone(), root.child_token()).await?),
        None => None,
    };
    let mut mailboxes = Mailboxes {
        store,
        root: root.clone(),
        wake_outbox: wake_outbox.clone(),
        wakers,
        running: HashMap::new(),
    };
    mailboxes.apply(&config.mailboxes);
    let mut config = config;
    info!(mailboxes = config.mailboxes.len(), "imipd running");
    notify(&[sd_notify::NotifyState::Ready]);
    // systemd's WatchdogSec: ping at half the interval from the main loop.
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));

    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM received"); break; }
            _ = int.recv() => { info!("SIGINT received"); break; }
            _ = hup.recv() => {
                info!("SIGHUP received: reloading the configuration");
                match &path {
                    Some(path) => {
                        // systemd's notify-reload wants the monotonic time beside RELOADING.
                        match sd_notify::NotifyState::monotonic_usec_now() {
                            Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
                            Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
                        }
                        match reload(path, &config, &mailboxes.store) {
                            Ok((new, new_senders)) => {
                                if new.metrics != config.metrics {
                                    warn!("[metrics] changed: the listener changes at the next restart");
                                }
                                senders_tx.send_replace(new_senders);
                                mailboxes.apply(&new.mailboxes);
                                if let Some((server, _)) = &publisher {
                                    server.update(&new.mailboxes);
                                }
                                if new.http != config.http {
                                    warn!("[http] changed: the listener changes only on a restart; the publish keys of the mailboxes were reloaded");
                                }
                                wake_outbox.notify_one();
                                info!(mailboxes = new.mailboxes.len(), "configuration reloaded");
                                config = new;
                            }
                            Err(e) => error!(error = %e, "the new configuration is refused; the running one stays"),
                        }
                        notify(&[sd_notify::NotifyState::Ready]);
                    }
                    None => warn!("no configuration file to reload"),
                }
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => {
                notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    }

    info!("stopping: finishing the work in hand");
    notify(&[sd_notify::NotifyState::Stopping]);
    root.cancel();
    let handles: Vec<JoinHandle<()>> = mailboxes
        .running
        .drain()
        .map(|(_, r)| r.handle)
        .chain(std::iter::once(outbox))
        .chain(publisher.map(|(_, handle)| handle))
        .chain(metrics)
        .collect();
    let aborts: Vec<_> = handles.iter().map(JoinHandle::abort_handle).collect();
    let finished = tokio::time::timeout(STOP_GRACE, futures_util::future::join_all(handles)).await;
    if finished.is_err() {
        warn!("tasks did not stop within {STOP_GRACE:?}; aborting them");
        for abort in aborts {
            abort.abort();
        }
    }
    info!("stopped");
    Ok(())
}

/// Loads `path` again and checks it can replace `current`.
fn reload(path: &Path, current: &Config, store: &Store) -> Result<(Config, Senders), DaemonError> {
    let new = Config::load(path)?;
    if new.store.path != current.store.path {
        return Err(crate::config::ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "[store] path changed from {} to {}: that needs a restart",
                current.store.path.display(),
                new.store.path.display()
            ),
        }
        .into());
    }
    let senders = senders(&new, store)?;
    Ok((new, senders))
}

async fn outbox_worker(
    store: Store,
    senders: watch::Receiver<Senders>,
    stop: CancellationToken,
    wake: Arc<Notify>,
) {
    loop {
        let current = senders.borrow().clone();
        let now = Utc::now().timestamp();
        let wait = match smtp::drain_outbox(&store, &current, now, &stop).await {
            Ok(report) => report.next_due.map_or(OUTBOX_TICK, |due| {
                Duration::from_secs(u64::try_from(due - now).unwrap_or(0).max(1)).min(OUTBOX_TICK)
            }),
            Err(e) => {
                error!(error = %e, "outbox pass failed");
                OUTBOX_TICK
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
