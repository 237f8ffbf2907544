//! The SMTP side: a lettre transport per mailbox, and the outbox worker that hands the
//! store's queued replies to it.
//!
//! A reply leaves the outbox only after the server accepted it. A transient failure (4xx, a
//! connection problem) is retried with exponential backoff; a permanent one (5xx) moves the
//! reply to the dead letters with the server's answer. The one window where a reply can be
//! sent twice is a crash between the server's acceptance and the outbox delete; the reply's
//! deterministic Message-ID makes such a duplicate recognisable.
//!
//! A permanent refusal is also recorded on the object the reply was about, as its
//! `SCHEDULE-STATUS` ([`delivery`]), in the same transaction that makes it a dead letter.

mod conn;
pub mod delivery;

use crate::config::{SmtpConfig, TlsMode};
use crate::store::{OutboxItem, Store, StoreError};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
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
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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
    transport: Transport,
    retry: Retry,
}

/// How a [`Sender`] reaches its server.
#[derive(Clone)]
enum Transport {
    /// Pooled connections ([`conn`]), logging in with a password.
    Pool(conn::SharedPool),
    /// One connection per message, logging in with an OAuth 2.0 token (the token changes
    /// over time, and lettre has no OAUTHBEARER).
    OAuth2(Box<OAuth2Smtp>),
}

/// The settings of an OAuth 2.0 sender.
#[derive(Clone)]
struct OAuth2Smtp {
    endpoint: conn::Endpoint,
    user: String,
    source: crate::oauth::TokenSource,
}

/// Why an OAuth 2.0 SMTP login failed.
enum AuthFailure {
    /// The server refused the token (535, or an error challenge).
    Refused(String),
    /// Anything else.
    Other(SendFailure),
}

/// A lettre error as a delivery result: 5xx permanent, the rest worth another try.
fn classify(e: lettre::transport::smtp::Error) -> SendFailure {
    if e.is_permanent() {
        SendFailure::Permanent(e.to_string())
    } else {
        let text = e.to_string();
        let hint = crate::tls::hint(&text);
        SendFailure::Transient(format!("{text}{hint}"))
    }
}

/// Longer initial responses go on a line of their own after the server's empty challenge
/// (RFC 4954 §4): some servers cap the AUTH command line (RFC 5321's 512 octets).
const MAX_INITIAL_RESPONSE: usize = 400;

impl OAuth2Smtp {
    /// EHLO (for the raw AUTH line: lettre's parsed one drops mechanisms it does not know),
    /// then AUTH with the token.
    async fn authenticate(
        &self,
        connection: &mut AsyncSmtpConnection,
        token: &str,
    ) -> Result<(), AuthFailure> {
        use crate::oauth::sasl;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let ehlo = connection
            .command(Ehlo::new(ClientId::default()))
            .await
            .map_err(|e| AuthFailure::Other(classify(e)))?;
        let offered: Vec<String> = ehlo
            .message()
            .filter_map(|line| {
                let upper = line.to_ascii_uppercase();
                upper
                    .strip_prefix("AUTH ")
                    .or_else(|| upper.strip_prefix("AUTH="))
                    .map(str::to_string)
            })
            .flat_map(|m| m.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect();
        let wanted = self.source.mechanism();
        let mechanism = sasl::choose(wanted, offered.iter().map(String::as_str)).ok_or_else(|| {
            AuthFailure::Other(SendFailure::Transient(format!(
                "{} offers no SASL mechanism for OAuth 2.0 that mechanism = {wanted:?} allows (it offers: {})",
                self.endpoint.host,
                offered.join(" ")
            )))
        })?;
        let initial = b64.encode(sasl::initial_response(
            mechanism,
            &self.user,
            &self.endpoint.host,
            self.endpoint.port,
            token,
        ));
        let first = if initial.len() <= MAX_INITIAL_RESPONSE {
            connection
                .command(format!("AUTH {} {initial}\r\n", mechanism.name()))
                .await
        } else {
            match connection
                .command(format!("AUTH {}\r\n", mechanism.name()))
                .await
            {
                Ok(r) if r.has_code(334) => connection.command(format!("{initial}\r\n")).await,
                other => other,
            }
        };
        match first {
            Ok(response) if response.has_code(235) => Ok(()),
            Ok(response) if response.has_code(334) => {
                // The error challenge: acknowledge it; the server then answers 535.
                let detail = response
                    .first_word()
                    .and_then(|w| b64.decode(w).ok())
                    .map(|d| String::from_utf8_lossy(&d).into_owned())
                    .unwrap_or_default();
                let last = connection
                    .command(format!("{}\r\n", b64.encode(mechanism.failure_ack())))
                    .await;
                let answer = match last {
                    Ok(r) => r.message().collect::<Vec<_>>().join(" "),
                    Err(e) => e.to_string(),
                };
                Err(AuthFailure::Refused(format!(
                    "{}: {answer} (server: {detail})",
                    mechanism.name()
                )))
            }
            Ok(response) => Err(AuthFailure::Refused(format!(
                "{}: unexpected answer {}",
                mechanism.name(),
                response.message().collect::<Vec<_>>().join(" ")
            ))),
            Err(e) if e.is_permanent() => {
                Err(AuthFailure::Refused(format!("{}: {e}", mechanism.name())))
            }
            Err(e) => Err(AuthFailure::Other(classify(e))),
        }
    }

    /// Logs in and out again.
    async fn verify(&self) -> Result<(), SendFailure> {
        let mut connection = self.login().await?;
        connection.quit().await.ok();
        Ok(())
    }

    /// Sends one message; a refused token is dropped and the login tried once more with a
    /// fresh one. A token that cannot be had, or is refused twice, is a transient failure
    /// (the reply waits in the outbox; credentials get fixed, replies do not expire).
    async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendFailure> {
        let mut connection = self.login().await?;
        let result = connection.send(envelope, bytes).await;
        connection.quit().await.ok();
        result.map(|_| ()).map_err(classify)
    }

    /// A logged-in connection; a refused token is dropped and the login tried once more with
    /// a fresh one.
    async fn login(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        let mut refusal = String::new();
        for _ in 0..2 {
            let token = self
                .source
                .token()
                .await
                .map_err(|e| SendFailure::Transient(e.to_string()))?;
            let mut connection = self.endpoint.connect().await?;
            match self.authenticate(&mut connection, token.secret()).await {
                Ok(()) => return Ok(connection),
                Err(AuthFailure::Refused(reason)) => {
                    connection.abort().await;
                    self.source.invalidate(&token).await;
                    tracing::info!(%reason, "the SMTP server refused the OAuth 2.0 token");
                    refusal = reason;
                }
                Err(AuthFailure::Other(failure)) => {
                    connection.abort().await;
                    return Err(failure);
                }
            }
        }
        Err(SendFailure::Transient(format!(
            "{} refused the OAuth 2.0 token of {} even after a fresh one was fetched: {refusal}; check the app's SMTP permission (SMTP AUTH must be enabled for the mailbox)",
            self.endpoint.host, self.user
        )))
    }
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

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn retry(config: &SmtpConfig) -> Retry {
    Retry {
        initial: Duration::from_secs(config.retry_initial_secs),
        max: Duration::from_secs(config.retry_max_secs),
    }
}

/// Plaintext only to a loopback address, and only when asked for.
fn check_plaintext(config: &SmtpConfig) -> Result<(), SmtpError> {
    if config.tls == TlsMode::None && !(config.allow_plaintext && is_loopback(&config.host)) {
        return Err(SmtpError::PlaintextRefused {
            host: config.host.clone(),
        });
    }
    Ok(())
}

/// lettre's TLS parameters for STARTTLS (`None` for any other mode).
fn starttls_parameters(config: &SmtpConfig) -> Result<Option<TlsParameters>, SmtpError> {
    match config.tls {
        TlsMode::Starttls => tls_parameters(config).map(Some),
        _ => Ok(None),
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
    /// A sender for `config`, logging in as `user` with `credentials` (a password, or
    /// OAuth 2.0 tokens over OAUTHBEARER or XOAUTH2 as the server offers).
    pub fn with_credentials(
        config: &SmtpConfig,
        user: &str,
        credentials: crate::oauth::Credentials,
    ) -> Result<Sender, SmtpError> {
        let source = match credentials {
            crate::oauth::Credentials::Password(password) => {
                return Sender::new(config, user, &password);
            }
            crate::oauth::Credentials::OAuth2(source) => source,
        };
        check_plaintext(config)?;
        Ok(Sender {
            transport: Transport::OAuth2(Box::new(OAuth2Smtp {
                endpoint: conn::Endpoint::new(config, starttls_parameters(config)?)?,
                user: user.to_string(),
                source,
            })),
            retry: retry(config),
        })
    }

    /// A transport for `config`, logging in as `user`.
    pub fn new(config: &SmtpConfig, user: &str, password: &str) -> Result<Sender, SmtpError> {
        check_plaintext(config)?;
        let endpoint = conn::Endpoint::new(config, starttls_parameters(config)?)?;
        let credentials = Credentials::new(user.to_string(), password.to_string());
        Ok(Sender {
            transport: Transport::Pool(std::sync::Arc::new(conn::Pool::new(
                endpoint,
                credentials,
                SEND_CONCURRENCY,
            ))),
            retry: retry(config),
        })
    }

    /// Connects and logs in without sending anything (for `imipd check --connect`): with
    /// OAuth 2.0, acquires a token and authenticates with it (a refused token is replaced
    /// once, as for a real send).
    pub async fn verify(&self) -> Result<(), SendFailure> {
        match &self.transport {
            Transport::Pool(pool) => pool.verify().await,
            Transport::OAuth2(oauth2) => oauth2.verify().await,
        }
    }

    /// How many logged-in connections wait idle for the next message (always 0 with OAuth
    /// 2.0, which connects per message).
    pub fn idle_connections(&self) -> usize {
        match &self.transport {
            Transport::Pool(pool) => pool.idle_count(),
            Transport::OAuth2(_) => 0,
        }
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
        match &self.transport {
            Transport::Pool(pool) => pool.send(&envelope, bytes).await,
            Transport::OAuth2(oauth2) => oauth2.send(&envelope, bytes).await,
        }
    }
}

/// What [`probe`] found on a submission server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The server's name from its EHLO answer.
    pub name: String,
    /// The EHLO extensions after TLS, as written (`PIPELINING`, `SIZE 10240000`, `AUTH PLAIN LOGIN`).
    pub extensions: Vec<String>,
}

/// Why [`probe`] failed, and at which step.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Setup(#[from] SmtpError),
    #[error("{step}: {reason}")]
    Step { step: &'static str, reason: String },
}

/// Connects to the submission server of `config` as the daemon would, lists its extensions
/// and logs in as `user`, then quits without sending anything (`imipd check --connect`).
pub async fn probe(config: &SmtpConfig, user: &str, password: &str) -> Result<Probe, ProbeError> {
    use lettre::transport::smtp::authentication::DEFAULT_MECHANISMS;
    use lettre::transport::smtp::client::AsyncSmtpConnection;
    use lettre::transport::smtp::commands::Ehlo;
    use lettre::transport::smtp::extension::ClientId;
    let step = |step: &'static str| {
        move |e: lettre::transport::smtp::Error| ProbeError::Step {
            step,
            reason: e.to_string(),
        }
    };
    let hello = ClientId::default();
    let timeout = Some(Duration::from_secs(30));
    let server = (config.host.as_str(), config.port);
    let mut conn = match config.tls {
        TlsMode::Implicit => AsyncSmtpConnection::connect_tokio1(
            server,
            timeout,
            &hello,
            Some(tls_parameters(config)?),
            None,
        )
        .await
        .map_err(step("connect with implicit TLS"))?,
        TlsMode::Starttls => {
            let mut conn = AsyncSmtpConnection::connect_tokio1(server, timeout, &hello, None, None)
                .await
                .map_err(step("connect"))?;
            if !conn.can_starttls() {
                return Err(ProbeError::Step {
                    step: "STARTTLS",
                    reason:
                        "the server does not offer STARTTLS; use tls = \"implicit\" or another port"
                            .into(),
                });
            }
            conn.starttls(tls_parameters(config)?, &hello)
                .await
                .map_err(step("STARTTLS"))?;
            conn
        }
        TlsMode::None => {
            let loopback = config.host == "localhost"
                || config
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !(loopback && config.allow_plaintext) {
                return Err(SmtpError::PlaintextRefused {
                    host: config.host.clone(),
                }
                .into());
            }
            AsyncSmtpConnection::connect_tokio1(server, timeout, &hello, None, None)
                .await
                .map_err(step("connect"))?
        }
    };
    let ehlo = conn
        .command(Ehlo::new(hello.clone()))
        .await
        .map_err(step("EHLO"))?;
    let mut lines = ehlo.message().map(str::to_string);
    let name = lines
        .next()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let extensions = lines.collect();
    conn.auth(
        DEFAULT_MECHANISMS,
        &Credentials::new(user.to_string(), password.to_string()),
    )
    .await
    .map_err(step("AUTH"))?;
    conn.quit().await.ok();
    Ok(Probe { name, extensions })
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
            crate::metrics::get().reply_sent(&item.mailbox);
            tracing::info!(message_id = %item.message_id, to = ?item.envelope_to, attempts = item.attempts + 1, "reply sent");
            Ok(Attempt::Sent)
        }
        Err(SendFailure::Permanent(reason)) => {
            tracing::warn!(message_id = %item.message_id, %reason, "reply refused; moved to dead letters");
            crate::metrics::get().reply_failed(&item.mailbox, true);
            match delivery::dead_letter(store, &item, &reason).await? {
                Some((sent, status)) => tracing::warn!(
                    message_id = %item.message_id,
                    uid = %sent.uid,
                    recipient = %sent.recipient,
                    schedule_status = status.code,
                    "refusal recorded on the {} of the stored object: {}",
                    sent.property.as_str(),
                    status.meaning
                ),
                None => {
                    tracing::info!(message_id = %item.message_id, "no stored object names the refused recipient; nothing recorded on an object")
                }
            }
            Ok(Attempt::Dead)
        }
        Err(SendFailure::Transient(reason)) => {
            crate::metrics::get().reply_failed(&item.mailbox, false);
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
