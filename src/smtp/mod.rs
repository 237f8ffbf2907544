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
    #[error("plaintext SMTP is refused (tls = \"none\") except to a loopback address; got {host}")]
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
        Ok(Sender { transport })
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

/// The delay before retry number `attempts` (1, 2, …): 30 s doubling, at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(10));
    Duration::from_secs(secs.min(3600))
}

/// One pass over the outbox: sends every due item. Returns how many were accepted.
pub async fn drain_outbox(
    store: &Store,
    senders: &HashMap<String, Sender>,
    now_unix: i64,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for mut item in store.outbox()? {
        if item.next_attempt > now_unix {
            continue;
        }
        let Some(sender) = senders.get(&item.mailbox) else {
            // Its mailbox is no longer configured; it waits until it is again.
            continue;
        };
        let Some(bytes) = store.outbox_bytes(item.id)? else {
            store
                .outbox_dead(
                    &item,
                    "the queued message's bytes are missing from the store",
                )
                .await?;
            continue;
        };
        match sender.send(&item, &bytes).await {
            Ok(()) => {
                crate::store::crash::point("after_smtp_accept");
                store.outbox_sent(item.id).await?;
                tracing::info!(message_id = %item.message_id, to = ?item.envelope_to, "reply sent");
                sent += 1;
            }
            Err(SendFailure::Permanent(reason)) => {
                tracing::warn!(message_id = %item.message_id, %reason, "reply refused; moved to dead letters");
                store.outbox_dead(&item, &reason).await?;
            }
            Err(SendFailure::Transient(reason)) => {
                item.attempts += 1;
                let delay = backoff(item.attempts);
                item.next_attempt = now_unix + delay.as_secs() as i64;
                tracing::warn!(message_id = %item.message_id, %reason, attempts = item.attempts, retry_in_secs = delay.as_secs(), "reply not sent; will retry");
                item.last_error = Some(reason);
                store.outbox_retry(&item).await?;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_at_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(120));
        assert_eq!(backoff(50), Duration::from_secs(3600));
    }
}
