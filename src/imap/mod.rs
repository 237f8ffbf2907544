//! The IMAP side: an async-imap session over rustls (implicit TLS or STARTTLS), with read and
//! write timeouts on the socket (async-imap has none of its own).
//!
//! The session lists the messages not yet processed (those without the `$ImipdProcessed`
//! keyword), fetches them by UID in bounded batches without setting `\Seen`, and marks (or
//! moves, or deletes) them once the store has committed them. The keyword is a hint; the
//! store's ledger is the truth.
//!
//! Moving uses `UID MOVE` (RFC 6851) when the server offers it, else `UID COPY` plus
//! `\Deleted` plus `UID EXPUNGE` (RFC 4315, UIDPLUS), else a plain `EXPUNGE` (which also
//! removes whatever else was marked `\Deleted` in the folder: the only choice such a server
//! leaves).

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
/// The keyword set, besides [`PROCESSED_KEYWORD`], on a message that was quarantined.
pub const QUARANTINED_KEYWORD: &str = "$ImipdQuarantined";

/// How long a command may take before the connection is given up. async-imap has no timeouts
/// of its own; every command is wrapped in this one.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// The socket's read timeout: longer than any IDLE wait, so only a dead connection trips it.
const READ_TIMEOUT: Duration = Duration::from_secs(35 * 60);
/// How long a write may stall.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// IDLE is re-issued at least this often (RFC 2177 asks for less than 29 minutes; NAT boxes
/// often forget quiet connections sooner).
pub const IDLE_REFRESH: Duration = Duration::from_secs(10 * 60);

/// How an IDLE wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// The server reported a change (new message, expunge, flags).
    Changed,
    /// The wait timed out with no news.
    Timeout,
    /// A push ([`crate::push`]) said there is news.
    Woken,
    /// The daemon is stopping.
    Stopped,
}

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
    #[error("TLS handshake with {host} failed: {source}{}", crate::tls::hint(&source.to_string()))]
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
    #[error("the {what} is not printable ASCII, which this client sends only as a quoted string")]
    NotAscii { what: &'static str },
    #[error("IMAP {command} got no answer within {COMMAND_TIMEOUT:?}")]
    Timeout { command: &'static str },
    #[error(
        "plaintext IMAP (tls = \"none\") needs allow_plaintext = true and a loopback address; got {host}"
    )]
    PlaintextRefused { host: String },
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthError),
    #[error(
        "{host} offers no SASL mechanism for OAuth 2.0 that mechanism = {wanted:?} allows (it offers: {offered})"
    )]
    NoOAuthMechanism {
        host: String,
        wanted: crate::config::SaslMechanism,
        offered: String,
    },
    #[error(
        "{host} refused the OAuth 2.0 token of {user} ({mechanism}) even after a fresh one was fetched: {source}{detail}; check the app's IMAP permission and the mailbox's access for it"
    )]
    TokenRefused {
        host: String,
        user: String,
        mechanism: &'static str,
        source: async_imap::error::Error,
        detail: String,
    },
}

impl ImapError {
    /// Whether the connection is still usable after this error: a `NO`/`BAD` answer to one
    /// command leaves the session intact; anything else (I/O, timeout, parse) does not.
    pub fn is_command_refusal(&self) -> bool {
        matches!(
            self,
            ImapError::Command {
                source: async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_),
                ..
            }
        )
    }
}

/// What the server said it can do, as far as this module cares.
#[derive(Debug, Clone, Copy, Default)]
struct Capabilities {
    idle: bool,
    mv: bool,
    uidplus: bool,
    /// RFC 5464 METADATA (or METADATA-SERVER): server annotations can be set.
    metadata: bool,
}

/// A logged-in IMAP session for one mailbox.
pub struct ImapSession {
    session: Session,
    caps: Capabilities,
    /// Every capability the server announced after login, as written (for `imipd check`).
    capability_names: Vec<String>,
    /// Set when the server announced new messages (EXISTS/RECENT) since the last search, so
    /// a message that arrives between the search and IDLE is not left waiting.
    changed: bool,
}

/// `text` as an IMAP quoted string, or `None` when it is not printable ASCII (which would
/// need a literal).
fn quoted(text: &str) -> Option<String> {
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// An IMAP sequence set for `uids` (ascending), with runs written as ranges: `1:4,7,9:12`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut set = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !set.is_empty() {
            set.push(',');
        }
        if start == end {
            set.push_str(&start.to_string());
        } else {
            set.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    set
}

/// Runs one IMAP command under [`COMMAND_TIMEOUT`].
async fn timed<T>(
    name: &'static str,
    fut: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(result) => result.map_err(command(name)),
        Err(_) => Err(ImapError::Timeout { command: name }),
    }
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
    stream.set_read_timeout(Some(READ_TIMEOUT));
    stream.set_write_timeout(Some(WRITE_TIMEOUT));
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

/// The pre-login client, greeting read and TLS in place.
type Client = async_imap::Client<Box<dyn Io>>;

/// The SASL mechanisms the server offers before login (`AUTH=…` capabilities).
async fn sasl_mechanisms(client: &mut Client) -> Result<Vec<String>, ImapError> {
    use async_imap::imap_proto::{Capability, Response};
    let (tx, rx) = async_channel::unbounded();
    timed(
        "CAPABILITY",
        client.run_command_and_check_ok("CAPABILITY", Some(tx)),
    )
    .await?;
    let mut mechanisms = Vec::new();
    while let Ok(response) = rx.try_recv() {
        if let async_imap::types::UnsolicitedResponse::Other(data) = response
            && let Response::Capabilities(caps) = data.parsed()
        {
            for cap in caps {
                if let Capability::Auth(m) = cap {
                    mechanisms.push(m.to_string());
                }
            }
        }
    }
    Ok(mechanisms)
}

/// Why one OAuth 2.0 login attempt failed.
enum OAuthAttempt {
    /// The server refused this token; a fresh one may do.
    Refused {
        token: oauth2::AccessToken,
        mechanism: crate::oauth::sasl::Mechanism,
        source: async_imap::error::Error,
        detail: Option<String>,
    },
    /// Anything else: not worth a second token.
    Failed(ImapError),
}

impl ImapSession {
    /// Connects, sets up TLS as configured, and logs in with a password.
    pub async fn connect(
        config: &ImapConfig,
        user: &str,
        password: &str,
    ) -> Result<ImapSession, ImapError> {
        let client = Self::open(config).await?;
        let session =
            match tokio::time::timeout(COMMAND_TIMEOUT, client.login(user, password)).await {
                Ok(Ok(session)) => session,
                Ok(Err((source, _))) => {
                    return Err(ImapError::Login {
                        user: user.to_string(),
                        source,
                    });
                }
                Err(_) => return Err(ImapError::Timeout { command: "LOGIN" }),
            };
        Self::ready(session).await
    }

    /// Connects and logs in with `credentials`: a password, or an OAuth 2.0 token over
    /// OAUTHBEARER or XOAUTH2 (chosen from the server's capabilities). A refused token is
    /// dropped and the login tried once more with a fresh one.
    pub async fn connect_with(
        config: &ImapConfig,
        user: &str,
        credentials: &crate::oauth::Credentials,
    ) -> Result<ImapSession, ImapError> {
        use crate::oauth::Credentials;
        let source = match credentials {
            Credentials::Password(password) => return Self::connect(config, user, password).await,
            Credentials::OAuth2(source) => source,
        };
        match Self::oauth_attempt(config, user, source).await {
            Ok(session) => Ok(session),
            Err(OAuthAttempt::Failed(e)) => Err(e),
            Err(OAuthAttempt::Refused { token, .. }) => {
                source.invalidate(&token).await;
                tracing::info!("the IMAP server refused the OAuth 2.0 token; trying a fresh one");
                match Self::oauth_attempt(config, user, source).await {
                    Ok(session) => Ok(session),
                    Err(OAuthAttempt::Failed(e)) => Err(e),
                    Err(OAuthAttempt::Refused {
                        token,
                        mechanism,
                        source: error,
                        detail,
                    }) => {
                        source.invalidate(&token).await;
                        Err(ImapError::TokenRefused {
                            host: config.host.clone(),
                            user: user.to_string(),
                            mechanism: mechanism.name(),
                            source: error,
                            detail: detail
                                .map(|d| format!(" (server: {d})"))
                                .unwrap_or_default(),
                        })
                    }
                }
            }
        }
    }

    async fn oauth_attempt(
        config: &ImapConfig,
        user: &str,
        source: &crate::oauth::TokenSource,
    ) -> Result<ImapSession, OAuthAttempt> {
        use crate::oauth::sasl;
        let failed = OAuthAttempt::Failed;
        let token = source.token().await.map_err(|e| failed(e.into()))?;
        let mut client = Self::open(config).await.map_err(failed)?;
        let offered = sasl_mechanisms(&mut client).await.map_err(failed)?;
        let mechanism = sasl::choose(source.mechanism(), offered.iter().map(String::as_str))
            .ok_or_else(|| {
                failed(ImapError::NoOAuthMechanism {
                    host: config.host.clone(),
                    wanted: source.mechanism(),
                    offered: offered.join(" "),
                })
            })?;
        let initial =
            sasl::initial_response(mechanism, user, &config.host, config.port, token.secret());
        let mut authenticator = sasl::ImapAuthenticator::new(mechanism, initial);
        let result = tokio::time::timeout(
            COMMAND_TIMEOUT,
            client.authenticate(mechanism.name(), &mut authenticator),
        )
        .await;
        match result {
            Ok(Ok(session)) => Self::ready(session).await.map_err(failed),
            Ok(Err((
                source @ (async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)),
                _,
            ))) => Err(OAuthAttempt::Refused {
                token,
                mechanism,
                source,
                detail: authenticator.error.take(),
            }),
            Ok(Err((source, _))) => Err(failed(ImapError::Login {
                user: user.to_string(),
                source,
            })),
            Err(_) => Err(failed(ImapError::Timeout {
                command: "AUTHENTICATE",
            })),
        }
    }

    /// Connects and sets up TLS as configured; the greeting is read.
    async fn open(config: &ImapConfig) -> Result<Client, ImapError> {
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
                timed(
                    "STARTTLS",
                    client.run_command_and_check_ok("STARTTLS", None),
                )
                .await?;
                tls(config, client.into_inner()).await?
            }
            TlsMode::None => {
                if !config.allow_plaintext || !is_loopback(&config.host) {
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
        Ok(client)
    }

    /// The logged-in session, with its capabilities read.
    async fn ready(mut session: Session) -> Result<ImapSession, ImapError> {
        let capabilities = timed("CAPABILITY", session.capabilities()).await?;
        let caps = Capabilities {
            idle: capabilities.has_str("IDLE"),
            mv: capabilities.has_str("MOVE"),
            uidplus: capabilities.has_str("UIDPLUS"),
            metadata: capabilities.has_str("METADATA") || capabilities.has_str("METADATA-SERVER"),
        };
        let capability_names = capabilities
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Imap4rev1 => "IMAP4rev1".to_string(),
                async_imap::types::Capability::Auth(m) => format!("AUTH={m}"),
                async_imap::types::Capability::Atom(a) => a.to_string(),
            })
            .collect();
        let mut imap = ImapSession {
            session,
            caps,
            capability_names,
            changed: false,
        };
        imap.drain();
        Ok(imap)
    }

    /// Unsolicited responses are queued by async-imap in a bounded channel and dropped when
    /// it is full; nothing here depends on them, so they are discarded after each command.
    fn drain(&mut self) {
        use async_imap::types::UnsolicitedResponse;
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            if matches!(
                response,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            ) {
                self.changed = true;
            }
        }
    }

    /// Every capability the server announced after login (`IDLE`, `MOVE`, `CONDSTORE`, ...).
    pub fn capability_names(&self) -> &[String] {
        &self.capability_names
    }

    /// The names of every folder the user can see (`LIST "" "*"`).
    pub async fn list_folders(&mut self) -> Result<Vec<String>, ImapError> {
        let names = timed("LIST", async {
            self.session
                .list(Some(""), Some("*"))
                .await?
                .map_ok(|name| name.name().to_string())
                .try_collect::<Vec<String>>()
                .await
        })
        .await?;
        self.drain();
        Ok(names)
    }

    /// Selects `folder` and returns its UIDVALIDITY.
    pub async fn select(&mut self, folder: &str) -> Result<u32, ImapError> {
        let mailbox = timed("SELECT", self.session.select(folder)).await?;
        self.drain();
        Ok(mailbox.uid_validity.unwrap_or(0))
    }

    /// The UIDs of the selected folder's messages that are not marked processed, ascending.
    pub async fn unprocessed(&mut self) -> Result<Vec<u32>, ImapError> {
        self.drain();
        self.changed = false;
        let found = timed(
            "UID SEARCH",
            self.session
                .uid_search(format!("UNKEYWORD {PROCESSED_KEYWORD}")),
        )
        .await?;
        self.drain();
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The raw bytes of message `uid`, or `None` when it vanished (expunged meanwhile).
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let fetches: Vec<_> = timed("UID FETCH", async {
            self.session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                .await?
                .try_collect()
                .await
        })
        .await?;
        self.drain();
        Ok(fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(<[u8]>::to_vec))
    }

    /// Marks message `uid` processed (and seen).
    pub async fn mark_processed(&mut self, uid: u32) -> Result<(), ImapError> {
        let _: Vec<_> = timed("UID STORE", async {
            self.session
                .uid_store(
                    uid.to_string(),
                    format!("+FLAGS.SILENT (\\Seen {PROCESSED_KEYWORD})"),
                )
                .await?
                .try_collect()
                .await
        })
        .await?;
        self.drain();
        Ok(())
    }

    /// The UIDs above `after` that already carry the processed keyword, ascending. Used on
    /// start-up to re-check recently marked messages against the ledger (a power loss can
    /// lose the last store writes while the server kept the marks).
    pub async fn marked_after(&mut self, after: u32) -> Result<Vec<u32>, ImapError> {
        let from = after.saturating_add(1);
        let found = timed(
            "UID SEARCH",
            self.session
                .uid_search(format!("UID {from}:* KEYWORD {PROCESSED_KEYWORD}")),
        )
        .await?;
        self.drain();
        // `n:*` always includes the highest UID, even when it is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= from).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The size in bytes of each of `uids` that still exists, in ascending UID order.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u64)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let fetches: Vec<_> = timed("UID FETCH", async {
            self.session
                .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
                .await?
                .try_collect()
                .await
        })
        .await?;
        self.drain();
        let mut sizes: Vec<(u32, u64)> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
            .filter(|(uid, _)| uids.binary_search(uid).is_ok())
            .collect();
        sizes.sort_unstable();
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes)
    }

    /// The raw bytes of each of `uids` (one UID FETCH), in ascending UID order; messages
    /// expunged meanwhile are missing from the result.
    pub async fn fetch_many(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let fetches: Vec<_> = timed("UID FETCH", async {
            self.session
                .uid_fetch(uid_set(uids), "(UID BODY.PEEK[])")
                .await?
                .try_collect()
                .await
        })
        .await?;
        self.drain();
        let mut messages: Vec<(u32, Vec<u8>)> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .filter(|(uid, _)| uids.binary_search(uid).is_ok())
            .collect();
        messages.sort_unstable_by_key(|(uid, _)| *uid);
        messages.dedup_by_key(|(uid, _)| *uid);
        Ok(messages)
    }

    /// Adds `flags` (e.g. `\Seen $ImipdProcessed`) to `uids`.
    pub async fn add_flags(&mut self, uids: &[u32], flags: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let _: Vec<_> = timed("UID STORE", async {
            self.session
                .uid_store(uid_set(uids), format!("+FLAGS.SILENT ({flags})"))
                .await?
                .try_collect()
                .await
        })
        .await?;
        self.drain();
        Ok(())
    }

    /// Creates `folder` unless it exists.
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        let listed: Vec<_> = timed("LIST", async {
            self.session
                .list(Some(""), Some(folder))
                .await?
                .try_collect()
                .await
        })
        .await?;
        self.drain();
        if listed.is_empty() {
            match timed("CREATE", self.session.create(folder)).await {
                Ok(()) => {}
                // Created meanwhile by someone else: that is what was wanted.
                Err(e) if e.is_command_refusal() => {}
                Err(e) => return Err(e),
            }
            self.drain();
        }
        Ok(())
    }

    /// Moves `uids` of the selected folder to `folder`: `UID MOVE` when the server has it,
    /// else copy, mark `\Deleted` and expunge.
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        if self.caps.mv {
            timed("UID MOVE", self.session.uid_mv(uid_set(uids), folder)).await?;
            self.drain();
            return Ok(());
        }
        timed("UID COPY", self.session.uid_copy(uid_set(uids), folder)).await?;
        self.drain();
        self.delete(uids).await
    }

    /// Deletes `uids` of the selected folder: `\Deleted`, then `UID EXPUNGE` (UIDPLUS) or
    /// `EXPUNGE`.
    pub async fn delete(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.add_flags(uids, "\\Deleted").await?;
        if self.caps.uidplus {
            let _: Vec<_> = timed("UID EXPUNGE", async {
                self.session
                    .uid_expunge(uid_set(uids))
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        } else {
            let _: Vec<_> = timed("EXPUNGE", async {
                self.session.expunge().await?.try_collect().await
            })
            .await?;
        }
        self.drain();
        Ok(())
    }

    /// Asks the server for news (NOOP); true when new messages were announced since the
    /// last search.
    pub async fn poll(&mut self) -> Result<bool, ImapError> {
        timed("NOOP", self.session.noop()).await?;
        self.drain();
        Ok(self.changed)
    }

    /// Whether server annotations (RFC 5464 METADATA) can be set.
    pub fn can_set_metadata(&self) -> bool {
        self.caps.metadata
    }

    /// Sets the server annotation `entry` (e.g. [`crate::push::METADATA_KEY`]) to `value`
    /// (RFC 5464 `SETMETADATA ""`). Both must be printable ASCII (they are sent as quoted
    /// strings); anything else is refused before it reaches the server.
    pub async fn set_server_metadata(&mut self, entry: &str, value: &str) -> Result<(), ImapError> {
        let (Some(entry), Some(value)) = (quoted(entry), quoted(value)) else {
            return Err(ImapError::NotAscii {
                what: "METADATA entry or value",
            });
        };
        let command = format!("SETMETADATA \"\" ({entry} {value})");
        let result = timed(
            "SETMETADATA",
            self.session.run_command_and_check_ok(&command),
        )
        .await;
        self.drain();
        result
    }

    /// Whether the server offers IDLE (RFC 2177).
    pub fn can_idle(&self) -> bool {
        self.caps.idle
    }

    /// Whether the server offers MOVE (RFC 6851).
    pub fn can_move(&self) -> bool {
        self.caps.mv
    }

    /// Waits in IDLE on the selected folder until the server reports a change, `wake` is
    /// notified (a push), `timeout` passes, or `stop` is cancelled. The session comes back out
    /// of IDLE in every case.
    pub async fn idle(
        self,
        timeout: Duration,
        stop: &tokio_util::sync::CancellationToken,
        wake: &tokio::sync::Notify,
    ) -> Result<(ImapSession, IdleEnd), ImapError> {
        use async_imap::extensions::idle::IdleResponse;
        let caps = self.caps;
        let capability_names = self.capability_names;
        let mut changed = self.changed;
        let unsolicited = self.session.unsolicited_responses.clone();
        let mut handle = self.session.idle();
        timed("IDLE", handle.init()).await?;
        // EXISTS sent while IDLE started (a message that arrived after the last search).
        while let Ok(response) = unsolicited.try_recv() {
            changed |= matches!(
                response,
                async_imap::types::UnsolicitedResponse::Exists(_)
                    | async_imap::types::UnsolicitedResponse::Recent(_)
            );
        }
        let end = if changed {
            IdleEnd::Changed
        } else {
            let (wait, interrupt) = handle.wait_with_timeout(timeout);
            // A hard bound too: the wait's own timer restarts on every keepalive.
            let bounded = tokio::time::timeout(timeout, wait);
            tokio::pin!(bounded);
            let result = tokio::select! {
                result = &mut bounded => Some(result),
                _ = stop.cancelled() => {
                    drop(interrupt);
                    Some(Ok(Ok(IdleResponse::ManualInterrupt)))
                }
                _ = wake.notified() => {
                    drop(interrupt);
                    None
                }
            };
            match result {
                None => IdleEnd::Woken,
                Some(Err(_)) => IdleEnd::Timeout,
                Some(Ok(Err(source))) => {
                    return Err(ImapError::Command {
                        command: "IDLE",
                        source,
                    });
                }
                Some(Ok(Ok(IdleResponse::NewData(_)))) => IdleEnd::Changed,
                Some(Ok(Ok(IdleResponse::Timeout))) => IdleEnd::Timeout,
                Some(Ok(Ok(IdleResponse::ManualInterrupt))) => IdleEnd::Stopped,
            }
        };
        let session = timed("DONE", handle.done()).await?;
        let mut imap = ImapSession {
            session,
            caps,
            capability_names,
            changed: false,
        };
        imap.drain();
        Ok((imap, end))
    }

    /// Appends `message` to `folder` (used to seed test mailboxes quickly; APPEND is much
    /// faster than a round trip through SMTP).
    pub async fn append(&mut self, folder: &str, message: &[u8]) -> Result<(), ImapError> {
        timed("APPEND", self.session.append(folder, None, None, message)).await?;
        self.drain();
        Ok(())
    }

    /// Creates `folder`.
    pub async fn create_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        timed("CREATE", self.session.create(folder)).await?;
        self.drain();
        Ok(())
    }

    /// Deletes `folder` with everything in it.
    pub async fn delete_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        timed("DELETE", self.session.delete(folder)).await?;
        self.drain();
        Ok(())
    }

    /// The UIDs of the selected folder's messages matching an IMAP SEARCH `query`,
    /// ascending.
    pub async fn search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        let found = timed("UID SEARCH", self.session.uid_search(query)).await?;
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
        let _: Vec<_> = timed("UID STORE", async {
            self.session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect()
                .await
        })
        .await?;
        let _: Vec<_> = timed("EXPUNGE", async {
            self.session.expunge().await?.try_collect().await
        })
        .await?;
        self.drain();
        Ok(())
    }

    /// Says goodbye; errors are irrelevant at this point.
    pub async fn logout(mut self) {
        tokio::time::timeout(Duration::from_secs(5), self.session.logout())
            .await
            .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs_into_ranges() {
        assert_eq!(uid_set(&[1, 2, 3, 4, 7, 9, 10, 11, 12]), "1:4,7,9:12");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }
}
