//! The IMAP side: an async-imap session over rustls (implicit TLS or STARTTLS), with read and
//! write timeouts on the socket (async-imap has none of its own).
//!
//! The session lists the messages not yet processed (those without the `$ImipdProcessed`
//! keyword), fetches each by UID without setting `\Seen`, and marks it once the store has
//! committed it. The keyword is a hint; the store's ledger is the truth.

use crate::config::{ImapConfig, TlsMode};
use crate::tls::{TlsError, client_config};
use futures_util::TryStreamExt;
use std::fmt;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// The keyword set on every message imipd has processed.
pub const PROCESSED_KEYWORD: &str = "$ImipdProcessed";

/// How long a single read or write may stall before the connection is given up.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// Any stream the session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

/// What went wrong talking to the IMAP server.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS handshake with {host} failed: {source}")]
    Handshake {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} is not a valid server name for TLS")]
    ServerName { host: String },
    #[error("the server closed the connection before its greeting")]
    NoGreeting,
    #[error("login as {user} refused: {source}")]
    Login {
        user: String,
        source: async_imap::error::Error,
    },
    #[error("IMAP {command} failed: {source}")]
    Command {
        command: &'static str,
        source: async_imap::error::Error,
    },
    #[error("plaintext IMAP is refused (tls = \"none\") except to a loopback address; got {host}")]
    PlaintextRefused { host: String },
}

/// A logged-in IMAP session for one mailbox.
pub struct ImapSession {
    session: Session,
}

fn command(command: &'static str) -> impl FnOnce(async_imap::error::Error) -> ImapError {
    move |source| ImapError::Command { command, source }
}

async fn tcp(config: &ImapConfig) -> Result<Pin<Box<TimeoutStream<TcpStream>>>, ImapError> {
    let stream = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|source| ImapError::Connect {
            host: config.host.clone(),
            port: config.port,
            source,
        })?;
    stream.set_nodelay(true).ok();
    let mut stream = TimeoutStream::new(stream);
    stream.set_read_timeout(Some(IO_TIMEOUT));
    stream.set_write_timeout(Some(IO_TIMEOUT));
    Ok(Box::pin(stream))
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug + 'static>(
    config: &ImapConfig,
    stream: S,
) -> Result<Box<dyn Io>, ImapError> {
    let connector = TlsConnector::from(client_config(config.ca_file.as_deref())?);
    let name = ServerName::try_from(config.host.clone()).map_err(|_| ImapError::ServerName {
        host: config.host.clone(),
    })?;
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|source| ImapError::Handshake {
            host: config.host.clone(),
            source,
        })?;
    Ok(Box::new(stream))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ImapSession {
    /// Connects, sets up TLS as configured, and logs in.
    pub async fn connect(
        config: &ImapConfig,
        user: &str,
        password: &str,
    ) -> Result<ImapSession, ImapError> {
        let stream: Box<dyn Io> = match config.tls {
            TlsMode::Implicit => tls(config, tcp(config).await?).await?,
            TlsMode::Starttls => {
                let mut client = async_imap::Client::new(tcp(config).await?);
                client
                    .read_response()
                    .await
                    .map_err(|source| ImapError::Handshake {
                        host: config.host.clone(),
                        source,
                    })?
                    .ok_or(ImapError::NoGreeting)?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(command("STARTTLS"))?;
                tls(config, client.into_inner()).await?
            }
            TlsMode::None => {
                if !is_loopback(&config.host) {
                    return Err(ImapError::PlaintextRefused {
                        host: config.host.clone(),
                    });
                }
                Box::new(tcp(config).await?)
            }
        };
        let mut client = async_imap::Client::new(stream);
        if config.tls != TlsMode::Starttls {
            client
                .read_response()
                .await
                .map_err(|source| ImapError::Handshake {
                    host: config.host.clone(),
                    source,
                })?
                .ok_or(ImapError::NoGreeting)?;
        }
        let session =
            client
                .login(user, password)
                .await
                .map_err(|(source, _)| ImapError::Login {
                    user: user.to_string(),
                    source,
                })?;
        Ok(ImapSession { session })
    }

    /// Unsolicited responses are queued by async-imap in a bounded channel and dropped when
    /// it is full; nothing here depends on them, so they are discarded after each command.
    fn drain(&mut self) {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
    }

    /// Selects `folder` and returns its UIDVALIDITY.
    pub async fn select(&mut self, folder: &str) -> Result<u32, ImapError> {
        let mailbox = self
            .session
            .select(folder)
            .await
            .map_err(command("SELECT"))?;
        self.drain();
        Ok(mailbox.uid_validity.unwrap_or(0))
    }

    /// The UIDs of the selected folder's messages that are not marked processed, ascending.
    pub async fn unprocessed(&mut self) -> Result<Vec<u32>, ImapError> {
        let found = self
            .session
            .uid_search(format!("UNKEYWORD {PROCESSED_KEYWORD}"))
            .await
            .map_err(command("UID SEARCH"))?;
        self.drain();
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The raw bytes of message `uid`, or `None` when it vanished (expunged meanwhile).
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let fetches: Vec<_> = self
            .session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await
            .map_err(command("UID FETCH"))?
            .try_collect()
            .await
            .map_err(command("UID FETCH"))?;
        self.drain();
        Ok(fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(<[u8]>::to_vec))
    }

    /// Marks message `uid` processed (and seen).
    pub async fn mark_processed(&mut self, uid: u32) -> Result<(), ImapError> {
        let _: Vec<_> = self
            .session
            .uid_store(
                uid.to_string(),
                format!("+FLAGS.SILENT (\\Seen {PROCESSED_KEYWORD})"),
            )
            .await
            .map_err(command("UID STORE"))?
            .try_collect()
            .await
            .map_err(command("UID STORE"))?;
        self.drain();
        Ok(())
    }

    /// Appends `message` to `folder` (used to seed test mailboxes quickly; APPEND is much
    /// faster than a round trip through SMTP).
    pub async fn append(&mut self, folder: &str, message: &[u8]) -> Result<(), ImapError> {
        self.session
            .append(folder, None, None, message)
            .await
            .map_err(command("APPEND"))?;
        self.drain();
        Ok(())
    }

    /// Creates `folder`.
    pub async fn create_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        self.session
            .create(folder)
            .await
            .map_err(command("CREATE"))?;
        self.drain();
        Ok(())
    }

    /// Deletes `folder` with everything in it.
    pub async fn delete_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        self.session
            .delete(folder)
            .await
            .map_err(command("DELETE"))?;
        self.drain();
        Ok(())
    }

    /// The UIDs of the selected folder's messages matching an IMAP SEARCH `query`,
    /// ascending.
    pub async fn search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        let found = self
            .session
            .uid_search(query)
            .await
            .map_err(command("UID SEARCH"))?;
        self.drain();
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Removes the messages `uids` of the selected folder (\Deleted, then EXPUNGE).
    pub async fn delete_messages(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let _: Vec<_> = self
            .session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await
            .map_err(command("UID STORE"))?
            .try_collect()
            .await
            .map_err(command("UID STORE"))?;
        let _: Vec<_> = self
            .session
            .expunge()
            .await
            .map_err(command("EXPUNGE"))?
            .try_collect()
            .await
            .map_err(command("EXPUNGE"))?;
        self.drain();
        Ok(())
    }

    /// Says goodbye; errors are irrelevant at this point.
    pub async fn logout(mut self) {
        self.session.logout().await.ok();
    }
}
