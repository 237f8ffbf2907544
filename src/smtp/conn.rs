//! The SMTP connections: opened here with `TCP_NODELAY`, then driven by lettre's
//! [`AsyncSmtpConnection`], and kept in a small pool for the password logins.
//!
//! # Why not lettre's own transport
//!
//! lettre 0.11.23 leaves Nagle's algorithm on and writes a message's body and its closing
//! `CRLF . CRLF` in two writes. Nagle holds the five-byte second write until the server
//! acknowledges the body, and the server, which has nothing to answer yet, delays that
//! acknowledgement (40 ms on Linux). Every message therefore waited 40 ms: measured on the
//! project's Postfix, the daemon's replies took 47 ms (p50) from commit to Postfix's `250`
//! and 4 connections in flight submitted 70–86 messages/s. lettre's pooled transport opens
//! its sockets itself and offers no way to set the option, so the socket (and, for implicit
//! TLS, the handshake) is made here and handed to lettre with
//! [`AsyncSmtpConnection::connect_with_transport`]; the protocol (EHLO, STARTTLS, AUTH,
//! MAIL/RCPT/DATA) stays lettre's.
//!
//! # The pool
//!
//! Like lettre's: a connection is checked with `NOOP` before it is used again, one that
//! failed is dropped, at most [`super::SEND_CONCURRENCY`] idle ones are kept, and one idle
//! for longer than [`IDLE_TIMEOUT`] is closed instead of being used.

use super::{SendFailure, SmtpError};
use crate::config::{SmtpConfig, TlsMode};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long connecting, the greeting, TLS and the login may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one message's MAIL/RCPT/DATA exchange may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(300);
/// An idle pooled connection older than this is closed rather than used (servers drop idle
/// clients after a few minutes; RFC 5321 §4.5.3.2.7 asks them to wait at least 5).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to connect: one mailbox's submission server.
#[derive(Clone)]
pub(super) struct Endpoint {
    pub host: String,
    pub port: u16,
    tls: Security,
}

/// The transport security of an [`Endpoint`].
#[derive(Clone)]
enum Security {
    /// TLS from the first byte, with the project's rustls settings.
    Implicit(tokio_rustls::TlsConnector),
    /// STARTTLS, by lettre, required.
    Starttls(Box<TlsParameters>),
    /// Plaintext (loopback only; [`crate::config`] allows nothing else).
    None,
}

impl Endpoint {
    /// The endpoint of `config`; `starttls` are lettre's TLS parameters for the upgrade.
    pub fn new(
        config: &SmtpConfig,
        starttls: Option<TlsParameters>,
    ) -> Result<Endpoint, SmtpError> {
        let tls = match (config.tls, starttls) {
            (TlsMode::Implicit, _) => {
                let rustls = crate::tls::client_config(config.ca_file.as_deref())?;
                Security::Implicit(tokio_rustls::TlsConnector::from(rustls))
            }
            (TlsMode::Starttls, Some(parameters)) => Security::Starttls(Box::new(parameters)),
            _ => Security::None,
        };
        Ok(Endpoint {
            host: config.host.clone(),
            port: config.port,
            tls,
        })
    }

    /// A connection past the greeting, EHLO and (when configured) STARTTLS.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(result) => result,
            Err(_) => Err(SendFailure::Transient(format!(
                "{}:{}: no answer within {CONNECT_TIMEOUT:?}",
                self.host, self.port
            ))),
        }
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            let text = format!("{what} {}:{}: {e}", self.host, self.port);
            let hint = crate::tls::hint(&text);
            SendFailure::Transient(format!("{text}{hint}"))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transient("cannot connect to", &e))?;
        // The point of this module: no 40 ms stall at the end of every message.
        tcp.set_nodelay(true)
            .map_err(|e| transient("cannot set TCP_NODELAY on", &e))?;
        let hello = ClientId::default();
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Security::Implicit(connector) => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| SendFailure::Permanent(format!("{}: {e}", self.host)))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| transient("TLS handshake with", &e))?;
                Box::new(ImplicitTls(tls))
            }
            _ => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(super::classify)?;
        if let Security::Starttls(parameters) = &self.tls {
            connection
                .starttls((**parameters).clone(), &hello)
                .await
                .map_err(|e| transient("STARTTLS with", &e))?;
        }
        Ok(connection)
    }
}

/// A TLS stream from the first byte, as lettre's stream trait wants it.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Logged-in connections with a password, reused from one message to the next.
pub(super) struct Pool {
    endpoint: Endpoint,
    credentials: Credentials,
    /// Idle connections and since when they are idle.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// The most idle connections kept.
    keep: usize,
}

impl Pool {
    pub fn new(endpoint: Endpoint, credentials: Credentials, keep: usize) -> Pool {
        Pool {
            endpoint,
            credentials,
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// A new connection, logged in.
    async fn login(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        let mut connection = self.endpoint.connect().await?;
        let login = connection.auth(DEFAULT_MECHANISMS, &self.credentials);
        match tokio::time::timeout(CONNECT_TIMEOUT, login).await {
            Ok(Ok(_)) => Ok(connection),
            Ok(Err(e)) => Err(super::classify(e)),
            Err(_) => {
                connection.abort().await;
                Err(SendFailure::Transient(format!(
                    "{}: the login got no answer within {CONNECT_TIMEOUT:?}",
                    self.endpoint.host
                )))
            }
        }
    }

    /// An idle connection that still answers `NOOP`, else a new one.
    async fn take(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        loop {
            let next = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some((mut connection, since)) = next else {
                return self.login().await;
            };
            if since.elapsed() < IDLE_TIMEOUT && !connection.has_broken() {
                let alive =
                    tokio::time::timeout(Duration::from_secs(10), connection.test_connected())
                        .await
                        .unwrap_or(false);
                if alive {
                    return Ok(connection);
                }
            }
            connection.abort().await;
        }
    }

    /// Keeps `connection` for the next message, unless it failed or enough are kept.
    async fn give_back(&self, mut connection: AsyncSmtpConnection) {
        if !connection.has_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain(|(_, since)| since.elapsed() < IDLE_TIMEOUT);
            if idle.len() < self.keep {
                idle.push((connection, Instant::now()));
                return;
            }
        }
        connection.abort().await;
    }

    /// Sends one message on a pooled connection.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendFailure> {
        let mut connection = self.take().await?;
        match tokio::time::timeout(SEND_TIMEOUT, connection.send(envelope, bytes)).await {
            Ok(Ok(_)) => {
                self.give_back(connection).await;
                Ok(())
            }
            Ok(Err(e)) => {
                connection.abort().await;
                Err(super::classify(e))
            }
            Err(_) => {
                connection.abort().await;
                Err(SendFailure::Transient(format!(
                    "{}: the message got no answer within {SEND_TIMEOUT:?}",
                    self.endpoint.host
                )))
            }
        }
    }

    /// Logs in and out again (`imipd check --connect`).
    pub async fn verify(&self) -> Result<(), SendFailure> {
        let mut connection = self.login().await?;
        connection.quit().await.ok();
        Ok(())
    }

    /// How many idle connections are kept right now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A shared pool.
pub(super) type SharedPool = Arc<Pool>;
