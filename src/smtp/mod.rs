//! The SMTP side: a lettre transport per mailbox, and the outbox worker that hands the
//! store's queued replies to it.
//!
//! A reply leaves the outbox only after the server accepted it. A transient failure (4xx, a
//! connection problem) is retried with exponential backoff; a permanent one (5xx) moves the
//! reply to the dead letters with the server's answer. The one window where a reply can be
//! sent twice is a crash between the server's acceptance and the outbox delete; the reply's
//! deterministic Message-ID makes such a duplicate recognisable.

use crate::config::{SmtpConfig, TlsMode};
use crate::store::{OutboxItem, Store, StoreError};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("SMTP settings for {host}: {source}")]
    Setup {
        host: String,
        source: lettre::transport::smtp::Error,
    },
    #[error(
        "plaintext SMTP (tls = \"none\") needs allow_plaintext = true and a loopback address; got {host}"
    )]
    PlaintextRefused { host: String },
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Worth retrying later (4xx, network).
    Transient(String),
    /// Will never succeed (5xx, malformed addresses).
    Permanent(String),
}

/// Sends messages through one mailbox's submission server.
#[derive(Clone)]
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    retry: Retry,
}

/// When a transient failure is tried again: `initial` doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
        }
    }
}

impl Retry {
    /// How long to wait before retry number `attempts` (1, 2, …).
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, SmtpError> {
    let setup = |source| SmtpError::Setup {
        host: config.host.clone(),
        source,
    };
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| SmtpError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        for der in rustls_pemfile::certs(&mut pem.as_slice()) {
            let der = der.map_err(|e| ca_error(e.to_string()))?;
            builder = builder.add_root_certificate(
                Certificate::from_der(der.to_vec()).map_err(|e| ca_error(e.to_string()))?,
            );
        }
    }
    builder.build_rustls().map_err(setup)
}

impl Sender {
    /// A transport for `config`, logging in as `user`.
    pub fn new(config: &SmtpConfig, user: &str, password: &str) -> Result<Sender, SmtpError> {
        let builder = match config.tls {
            TlsMode::Implicit => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                    .tls(Tls::Wrapper(tls_parameters(config)?))
            }
            TlsMode::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                    .tls(Tls::Required(tls_parameters(config)?))
            }
            TlsMode::None => {
                let loopback = config.host == "localhost"
                    || config
                        .host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                let loopback = loopback && config.allow_plaintext;
                if !loopback {
                    return Err(SmtpError::PlaintextRefused {
                        host: config.host.clone(),
                    });
                }
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
        };
        let transport = builder
            .port(config.port)
            .credentials(Credentials::new(user.to_string(), password.to_string()))
            .timeout(Some(Duration::from_secs(60)))
            .build();
        let retry = Retry {
            initial: Duration::from_secs(config.retry_initial_secs),
            max: Duration::from_secs(config.retry_max_secs),
        };
        Ok(Sender { transport, retry })
    }

    /// Hands one message to the server.
    pub async fn send(&self, item: &OutboxItem, bytes: &[u8]) -> Result<(), SendFailure> {
        let permanent = |e: String| SendFailure::Permanent(e);
        let from = item
            .envelope_from
            .parse()
            .map_err(|e| permanent(format!("envelope sender {}: {e}", item.envelope_from)))?;
        let to = item
            .envelope_to
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| permanent(format!("recipient {a}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to).map_err(|e| permanent(e.to_string()))?;
        match self.transport.send_raw(&envelope, bytes).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendFailure::Permanent(e.to_string())),
            Err(e) => Err(SendFailure::Transient(e.to_string())),
        }
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Replies the server accepted.
    pub sent: usize,
    /// The earliest `next_attempt` (Unix seconds) of the items still waiting, if any.
    pub next_due: Option<i64>,
}

/// How many replies are handed to the servers at once. The submission server's per-message
/// cost (a queue file written and synced) dominates; a few parallel transactions hide it.
pub const SEND_CONCURRENCY: usize = 4;

/// What became of one outbox item in a pass.
enum Attempt {
    Sent,
    Dead,
    Waiting(i64),
}

/// Sends one due item and records the result in the store.
async fn attempt(
    store: &Store,
    sender: &Sender,
    mut item: OutboxItem,
    now_unix: i64,
) -> Result<Attempt, StoreError> {
    let Some(bytes) = store.outbox_bytes(item.id)? else {
        store
            .outbox_dead(
                &item,
                "the queued message's bytes are missing from the store",
            )
            .await?;
        return Ok(Attempt::Dead);
    };
    match sender.send(&item, &bytes).await {
        Ok(()) => {
            crate::store::crash::point("after_smtp_accept");
            store.outbox_sent(item.id).await?;
            tracing::info!(message_id = %item.message_id, to = ?item.envelope_to, attempts = item.attempts + 1, "reply sent");
            Ok(Attempt::Sent)
        }
        Err(SendFailure::Permanent(reason)) => {
            tracing::warn!(message_id = %item.message_id, %reason, "reply refused; moved to dead letters");
            store.outbox_dead(&item, &reason).await?;
            Ok(Attempt::Dead)
        }
        Err(SendFailure::Transient(reason)) => {
            item.attempts += 1;
            let delay = sender.retry.delay(item.attempts);
            item.next_attempt =
                now_unix.saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
            tracing::warn!(message_id = %item.message_id, %reason, attempts = item.attempts, retry_in_secs = delay.as_secs(), "reply not sent; will retry");
            item.last_error = Some(reason);
            store.outbox_retry(&item).await?;
            Ok(Attempt::Waiting(item.next_attempt))
        }
    }
}

/// One pass over the outbox: sends every due item, [`SEND_CONCURRENCY`] at a time (each
/// item by exactly one transaction), and starts no new send once `stop` is cancelled (the
/// sends in hand finish).
pub async fn drain_outbox(
    store: &Store,
    senders: &HashMap<String, Sender>,
    now_unix: i64,
    stop: &CancellationToken,
) -> Result<DrainReport, StoreError> {
    use futures_util::StreamExt;
    let mut report = DrainReport::default();
    let note_waiting = |at: i64, report: &mut DrainReport| {
        report.next_due = Some(report.next_due.map_or(at, |due| due.min(at)));
    };
    let mut due = Vec::new();
    for item in store.outbox()? {
        if item.next_attempt > now_unix {
            note_waiting(item.next_attempt, &mut report);
        } else if let Some(sender) = senders.get(&item.mailbox) {
            due.push((sender, item));
        }
        // An item whose mailbox is no longer configured waits until it is again.
    }
    if !due.is_empty() {
        // The items were listed before this flush, so their commits are durable once it
        // returns: a reply never leaves for a commit a crash could still take back (the
        // mailbox tasks flush once per fetch batch; see the store's "Batched flushes").
        store.flush().await?;
    }
    let mut queue = due.into_iter();
    let mut running = futures_util::stream::FuturesUnordered::new();
    let mut failure = None;
    loop {
        while running.len() < SEND_CONCURRENCY && !stop.is_cancelled() && failure.is_none() {
            let Some((sender, item)) = queue.next() else {
                break;
            };
            running.push(attempt(store, sender, item, now_unix));
        }
        let Some(result) = running.next().await else {
            break;
        };
        match result {
            Ok(Attempt::Sent) => report.sent += 1,
            Ok(Attempt::Waiting(at)) => note_waiting(at, &mut report),
            Ok(Attempt::Dead) => {}
            // The other sends in hand still finish and are recorded.
            Err(e) => failure = Some(e),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let retry = Retry::default();
        assert_eq!(retry.delay(1), Duration::from_secs(30));
        assert_eq!(retry.delay(2), Duration::from_secs(60));
        assert_eq!(retry.delay(3), Duration::from_secs(120));
        assert_eq!(retry.delay(50), Duration::from_secs(3600));
    }
}
