//! The configuration: a TOML file, overridable by `IMIPD__SECTION__KEY` environment variables
//! (the `config` crate), with secrets read only from files or environment variables.
//!
//! An error names the key, and the file and line where it is written, and says what to write
//! instead: the file is first loaded through the `config` crate (which applies the environment
//! overrides); when that fails, the file alone is parsed again with `toml`, whose errors carry
//! the position, and a value that does not validate is looked up in the file by its key path.
//!
//! Relative paths in the file are relative to the directory of the file itself, so a config
//! works the same whatever the daemon's working directory is (systemd starts it in `/`).

use crate::calendar::CalAddress;
use crate::policy::Policy;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}")]
    Load {
        path: PathBuf,
        source: config::ConfigError,
    },
    /// The file does not parse or does not fit the schema (unknown key, wrong type); `line`
    /// is where, when known.
    #[error("{}: {message}", located(path, *line))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// The file alone is fine; an `IMIPD__…` environment override broke it.
    #[error(
        "{path} with the environment overrides applied: {source}; check the IMIPD__SECTION__KEY variables ({variables})"
    )]
    Environment {
        path: PathBuf,
        /// Boxed: the `config` crate's error is large and this case is rare.
        source: Box<config::ConfigError>,
        variables: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A value that parses but cannot be used: `key` is its dotted path in the file.
    #[error("{}: {key}: {message}", located(path, *line))]
    Value {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
    #[error("mailbox {mailbox}: cannot read the {what} from {source_name}: {reason}")]
    Secret {
        mailbox: String,
        what: &'static str,
        source_name: String,
        reason: String,
    },
    #[error("[http] push_token_file {path}: {reason}")]
    PushToken { path: PathBuf, reason: String },
}

/// `path:line` when the line is known, else `path`.
fn located(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    /// `[log]`
    #[serde(default)]
    pub log: LogConfig,
    /// `[metrics]`
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(rename = "mailbox", default)]
    pub mailboxes: Vec<MailboxConfig>,
    /// `[http]`: the publishing listener; absent, nothing listens.
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// `[limits]`: what one message may cost, for every mailbox (all defaults when absent).
    #[serde(default)]
    pub limits: crate::limits::Limits,
}

/// `[http]`: the optional HTTP listener that publishes the mailboxes' calendars
/// ([`crate::publish`]). Changing it needs a restart; the mailboxes' publish keys reload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address and port to listen on, e.g. `"127.0.0.1:8787"` (put a TLS-terminating
    /// reverse proxy in front for anything beyond loopback: tokens travel in the URL).
    pub listen: std::net::SocketAddr,
    /// A file holding the secret a mail server's push notifications must carry
    /// ([`crate::push`]); without it `/push` does not exist.
    #[serde(default)]
    pub push_token_file: Option<PathBuf>,
}

impl HttpConfig {
    /// The push secret from `push_token_file` (`None` without one): at least 16 characters
    /// of `A-Z a-z 0-9 - _ . ~`, because it is written into the server's push URL.
    pub fn push_token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.push_token_file else {
            return Ok(None);
        };
        let secret = |reason: String| ConfigError::PushToken {
            path: path.clone(),
            reason,
        };
        let token = std::fs::read_to_string(path)
            .map_err(|e| secret(e.to_string()))?
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if token.len() < 16
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            return Err(secret(
                "the token must be at least 16 characters of A-Z a-z 0-9 - _ . ~; write e.g. the output of `openssl rand -hex 16` into the file".into(),
            ));
        }
        Ok(Some(token))
    }
}

/// `[log]`: how the daemon writes its log (the `--log-format` flag wins over it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (no timestamps when systemd's journal takes stderr).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
    /// Native journald records with every field (MESSAGE, PRIORITY, MAILBOX, OUTCOME, ...).
    Journald,
}

/// `[metrics]`: the Prometheus endpoint, off unless `listen` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to serve `GET /metrics` on, e.g. "127.0.0.1:9797".
    #[serde(default)]
    pub listen: Option<String>,
}

impl MetricsConfig {
    /// The socket address to listen on, when metrics are enabled (validated at load).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The sled directory.
    pub path: PathBuf,
}

/// One `[[mailbox]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The mailbox's own address (the calendar user it acts for).
    pub address: String,
    /// The display name used in replies ("Room 1").
    #[serde(default)]
    pub name: Option<String>,
    /// Other addresses that are also this mailbox.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    /// Folders to watch for incoming mail.
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    /// The mailbox's Sent folder, watched too so that the mailbox learns the invitations it
    /// sent itself. Its messages are only ever flagged, never moved or deleted.
    #[serde(default)]
    pub sent_folder: Option<String>,
    /// What happens to a message once it is processed.
    #[serde(default)]
    pub processed: ProcessedAction,
    /// The folder processed messages move to when `processed = "move"`.
    #[serde(default)]
    pub processed_folder: Option<String>,
    /// Where messages whose outcome is `error` or `rejected` are moved (created when missing;
    /// never deleted).
    #[serde(default = "default_quarantine_folder")]
    pub quarantine_folder: String,
    /// Wait for new mail with IMAP IDLE when the server offers it; `false` polls instead.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Register for the server's push notifications at every login (Dovecot's METADATA key
    /// for its `ox` push driver, [`crate::push`]), so that a delivery wakes the mailbox at
    /// once. Pushes reach the daemon at `[http]`'s `/push`.
    #[serde(default)]
    pub push: bool,
    /// Seconds between polls of the folders (fractions allowed) when not in IDLE.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: f64,
    /// Messages fetched per UID FETCH (bounded memory on a large backlog).
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: usize,
    /// The most message bytes fetched per UID FETCH (a larger single message is fetched alone).
    #[serde(default = "default_fetch_batch_bytes")]
    pub fetch_batch_bytes: u64,
    #[serde(default)]
    pub policy: Policy,
    /// The secret that opens this mailbox's published calendar (`?token=`); at least 16
    /// characters of `A-Z a-z 0-9 - _ . ~`. Without it (and without `publish_public`)
    /// nothing of the mailbox is published.
    #[serde(default)]
    pub publish_token: Option<String>,
    /// Publish without a token (anyone who can reach the listener may read).
    #[serde(default)]
    pub publish_public: bool,
    /// How much of each booking is published ([`crate::publish::Details`]; default `busy`).
    #[serde(default)]
    pub publish_details: crate::publish::Details,
    /// The zone the published page shows days and times in (an IANA name such as
    /// `"Europe/Berlin"`); default: the working hours' zone, else UTC.
    #[serde(default)]
    pub publish_time_zone: Option<String>,
    /// The configuration's `[limits]`, copied here by [`Config::load`] so that a mailbox task
    /// (and its reload) carries everything it needs.
    #[serde(skip)]
    pub limits: crate::limits::Limits,
}

/// What to do with a message once it is processed (`processed` in `[[mailbox]]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessedAction {
    /// Leave it where it is, flagged `\Seen` and `$ImipdProcessed`.
    #[default]
    Flag,
    /// Move it to `processed_folder`.
    Move,
    /// Delete it (expunge).
    Delete,
}

fn default_folders() -> Vec<String> {
    vec!["INBOX".to_string()]
}

fn default_quarantine_folder() -> String {
    "imipd-quarantine".to_string()
}

fn default_true() -> bool {
    true
}

fn default_poll_interval() -> f64 {
    30.0
}

fn default_fetch_batch() -> usize {
    50
}

fn default_fetch_batch_bytes() -> u64 {
    16 * 1024 * 1024
}

/// How to reach a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS (IMAP 143, submission 587).
    Starttls,
    /// No TLS at all: only when explicitly allowed, for loopback tests.
    None,
}

/// Credentials and where to find the password.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Defaults to the mailbox address.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// How a mailbox logs in to its IMAP or SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// A password from `password_file` or `password_env` (LOGIN / AUTH PLAIN).
    #[default]
    Password,
    /// An OAuth 2.0 access token (SASL XOAUTH2 or OAUTHBEARER) from the `oauth2` subsection.
    Oauth2,
}

/// Which OAuth 2.0 grant gets the access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2Flow {
    /// App-only access with the client's own secret (Microsoft 365 service principals).
    ClientCredentials,
    /// Delegated access with a refresh token that `imipd oauth login` stored (Google, and
    /// delegated Microsoft 365).
    RefreshToken,
}

/// A provider whose endpoints and scopes are filled in when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuth2Provider {
    /// Google Workspace and Gmail (`https://mail.google.com/`).
    Google,
    /// Microsoft 365 / Exchange Online (needs `tenant`).
    Microsoft,
}

/// Which SASL mechanism carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaslMechanism {
    /// OAUTHBEARER (RFC 7628) when the server offers it, else XOAUTH2.
    #[default]
    Auto,
    /// Google's and Microsoft's XOAUTH2.
    Xoauth2,
    /// The standard OAUTHBEARER (RFC 7628).
    Oauthbearer,
}

/// `[mailbox.imap.oauth2]` / `[mailbox.smtp.oauth2]`: where the access tokens come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// Fills in `token_url`, `auth_url` and `scopes` for a known provider.
    #[serde(default)]
    pub provider: Option<OAuth2Provider>,
    /// The Microsoft Entra tenant (its ID or domain), for `provider = "microsoft"`.
    #[serde(default)]
    pub tenant: Option<String>,
    pub flow: OAuth2Flow,
    /// The token endpoint (required without `provider`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// The authorisation endpoint, used by `imipd oauth login` only.
    #[serde(default)]
    pub auth_url: Option<String>,
    pub client_id: String,
    /// A file holding the client secret (trailing newline ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// The scopes to ask for; the provider's defaults when not given.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The SASL mechanism; `auto` picks from the server's capabilities.
    #[serde(default)]
    pub mechanism: SaslMechanism,
    /// The redirect URL registered for `imipd oauth login`; default a loopback listener.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// A token is renewed this many seconds before it expires.
    #[serde(default = "default_refresh_margin")]
    pub refresh_margin_secs: u64,
}

fn default_refresh_margin() -> u64 {
    300
}

impl OAuth2Config {
    /// Reads the client secret from its file or environment variable (`None` for a public
    /// client that has neither).
    pub fn client_secret(&self, mailbox: &str) -> Result<Option<String>, ConfigError> {
        let login = Login {
            username: None,
            password_file: self.client_secret_file.clone(),
            password_env: self.client_secret_env.clone(),
        };
        if login.password_file.is_none() && login.password_env.is_none() {
            return Ok(None);
        }
        login.secret(mailbox, "OAuth 2.0 client secret").map(Some)
    }
}

/// `[mailbox.imap]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// A PEM file of CA certificates to trust instead of the public web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Must be `true` for `tls = "none"` (which is further limited to loopback hosts).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// `password` (default) or `oauth2`.
    #[serde(default)]
    pub auth: AuthMethod,
    /// Required with `auth = "oauth2"`.
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
    #[serde(flatten)]
    pub login: Login,
}

/// `[mailbox.smtp]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// A PEM file of CA certificates to trust instead of the public web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Must be `true` for `tls = "none"` (which is further limited to loopback hosts).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Seconds before the first retry of a reply the server did not take (4xx, no
    /// connection); doubled on every further attempt.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_secs: u64,
    /// The longest wait between two attempts.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// `password` (default) or `oauth2`.
    #[serde(default)]
    pub auth: AuthMethod,
    /// With `auth = "oauth2"`: the token source; when absent, the `[mailbox.imap.oauth2]`
    /// one is used.
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
    #[serde(flatten)]
    pub login: Login,
}

fn default_retry_initial() -> u64 {
    30
}

fn default_retry_max() -> u64 {
    3600
}

impl Config {
    /// Loads `path`, applies `IMIPD__…` environment overrides, resolves relative paths
    /// against the file's directory and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Load {
            path: path.to_path_buf(),
            source: config::ConfigError::Foreign(Box::new(e)),
        })?;
        let loaded = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("IMIPD")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .and_then(|c| c.try_deserialize::<Config>());
        let mut config = match loaded {
            Ok(config) => config,
            Err(source) => return Err(located_error(path, &text, source)),
        };
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        for mailbox in &mut config.mailboxes {
            mailbox.limits = config.limits.clone();
        }
        config.validate(path).map_err(|e| match e {
            Invalid::Key { key, message } => ConfigError::Value {
                path: path.to_path_buf(),
                line: line_of(&text, &key),
                key: key.to_string(),
                message,
            },
            Invalid::Whole(message) => ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            },
        })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.store.path);
        if let Some(p) = self.http.as_mut().and_then(|h| h.push_token_file.as_mut()) {
            resolve(p);
        }
        for mailbox in &mut self.mailboxes {
            for login in [&mut mailbox.imap.login, &mut mailbox.smtp.login] {
                if let Some(p) = &mut login.password_file {
                    resolve(p);
                }
            }
            for oauth2 in [&mut mailbox.imap.oauth2, &mut mailbox.smtp.oauth2]
                .into_iter()
                .flatten()
            {
                if let Some(p) = &mut oauth2.client_secret_file {
                    resolve(p);
                }
            }
            for p in [&mut mailbox.imap.ca_file, &mut mailbox.smtp.ca_file]
                .into_iter()
                .flatten()
            {
                resolve(p);
            }
        }
    }

    fn validate(&self, _path: &Path) -> Result<(), Invalid> {
        if self.store.path.as_os_str().is_empty() {
            return Err(Invalid::key(
                KeyPath::root("store").then("path"),
                "is empty; write the store directory, e.g. path = \"/var/lib/imipd/store\"",
            ));
        }
        if let Some(listen) = &self.metrics.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(Invalid::key(
                KeyPath::root("metrics").then("listen"),
                format!(
                    "{listen:?} is not an address and port; write e.g. listen = \"127.0.0.1:9797\" (remove the key to turn metrics off)"
                ),
            ));
        }
        if self.mailboxes.is_empty() {
            return Err(Invalid::Whole(
                "no [[mailbox]] section: add one with address, [mailbox.imap] and [mailbox.smtp]"
                    .into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, mailbox) in self.mailboxes.iter().enumerate() {
            let at = |key: &'static str| KeyPath::mailbox(i).then(key);
            let name = &mailbox.address;
            if !seen.insert(mailbox.address.to_ascii_lowercase()) {
                return Err(Invalid::key(
                    at("address"),
                    format!("{name} appears twice; merge the two [[mailbox]] sections"),
                ));
            }
            if CalAddress::parse(&mailbox.address).is_none() {
                return Err(Invalid::key(
                    at("address"),
                    format!("{name:?} is not an e-mail address (write e.g. \"room1@example.org\")"),
                ));
            }
            for alias in &mailbox.aliases {
                if CalAddress::parse(alias).is_none() {
                    return Err(Invalid::key(
                        at("aliases"),
                        format!(
                            "{alias:?} is not an e-mail address (write e.g. aliases = [\"room-1@example.org\"])"
                        ),
                    ));
                }
            }
            if !(mailbox.poll_interval_secs >= 0.05 && mailbox.poll_interval_secs <= 86_400.0) {
                return Err(Invalid::key(
                    at("poll_interval_secs"),
                    format!(
                        "{} is out of range; write a number of seconds from 0.05 to 86400, e.g. poll_interval_secs = 30",
                        mailbox.poll_interval_secs
                    ),
                ));
            }
            if mailbox.fetch_batch == 0 {
                return Err(Invalid::key(
                    at("fetch_batch"),
                    "must be at least 1 (default 50)",
                ));
            }
            if mailbox.fetch_batch_bytes == 0 {
                return Err(Invalid::key(
                    at("fetch_batch_bytes"),
                    "must be at least 1 (default 16777216)",
                ));
            }
            if mailbox.folders.is_empty() || mailbox.folders.iter().any(String::is_empty) {
                return Err(Invalid::key(
                    at("folders"),
                    "needs at least one non-empty folder name; write folders = [\"INBOX\"]",
                ));
            }
            match (mailbox.processed, &mailbox.processed_folder) {
                (ProcessedAction::Move, None) => {
                    return Err(Invalid::key(
                        at("processed"),
                        "\"move\" needs a destination; add processed_folder = \"imipd-processed\"",
                    ));
                }
                (ProcessedAction::Flag | ProcessedAction::Delete, Some(_)) => {
                    return Err(Invalid::key(
                        at("processed_folder"),
                        "is only used with processed = \"move\"; remove it or set processed = \"move\"",
                    ));
                }
                _ => {}
            }
            let watched: Vec<&String> = mailbox
                .folders
                .iter()
                .chain(mailbox.sent_folder.as_ref())
                .collect();
            for (key, target) in std::iter::once(("quarantine_folder", &mailbox.quarantine_folder))
                .chain(
                    mailbox
                        .processed_folder
                        .as_ref()
                        .map(|f| ("processed_folder", f)),
                )
            {
                if target.is_empty() || watched.contains(&target) {
                    return Err(Invalid::key(
                        at(key),
                        format!(
                            "the folder {target:?} cannot be both watched and a destination for processed or quarantined mail; name another folder"
                        ),
                    ));
                }
            }
            let smtp = |key: &'static str| KeyPath::mailbox(i).then("smtp").then(key);
            if mailbox.smtp.retry_initial_secs == 0 {
                return Err(Invalid::key(
                    smtp("retry_initial_secs"),
                    "must be at least 1 second (default 30)",
                ));
            }
            if mailbox.smtp.retry_max_secs < mailbox.smtp.retry_initial_secs {
                return Err(Invalid::key(
                    smtp("retry_max_secs"),
                    format!(
                        "{} is less than retry_initial_secs = {}; write a larger number (default 3600)",
                        mailbox.smtp.retry_max_secs, mailbox.smtp.retry_initial_secs
                    ),
                ));
            }
            if let Some(token) = &mailbox.publish_token
                && (token.len() < 16
                    || !token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)))
            {
                return Err(Invalid::key(
                    at("publish_token"),
                    "must be at least 16 characters of A-Z a-z 0-9 - _ . ~; write e.g. the output of `openssl rand -hex 16`",
                ));
            }
            if let Some(zone) = &mailbox.publish_time_zone
                && zone.parse::<chrono_tz::Tz>().is_err()
            {
                return Err(Invalid::key(
                    at("publish_time_zone"),
                    format!("{zone:?} is not an IANA time zone name; write e.g. \"Europe/Berlin\""),
                ));
            }
            let servers = [
                (
                    "imap",
                    &mailbox.imap.host,
                    mailbox.imap.port,
                    mailbox.imap.tls,
                    mailbox.imap.allow_plaintext,
                    &mailbox.imap.login,
                ),
                (
                    "smtp",
                    &mailbox.smtp.host,
                    mailbox.smtp.port,
                    mailbox.smtp.tls,
                    mailbox.smtp.allow_plaintext,
                    &mailbox.smtp.login,
                ),
            ];
            for (what, host, port, tls, allow, login) in servers {
                let key = |k: &'static str| KeyPath::mailbox(i).then(what).then(k);
                check_server(what, host, port, tls, allow)
                    .map_err(|(k, m)| Invalid::key(key(k), m))?;
                if login.username.as_deref().is_some_and(str::is_empty) {
                    return Err(Invalid::key(
                        key("username"),
                        "is empty; remove it to log in as the mailbox address, or write the login name",
                    ));
                }
                let (auth, oauth2) = if what == "imap" {
                    (mailbox.imap.auth, mailbox.imap.oauth2.as_ref())
                } else {
                    (mailbox.smtp.auth, mailbox.smtp_oauth2())
                };
                if auth == AuthMethod::Oauth2 {
                    let Some(oauth2) = oauth2 else {
                        return Err(Invalid::key(
                            key("auth"),
                            format!(
                                "is \"oauth2\" but there is no [mailbox.{what}.oauth2] section; add one with flow, client_id and token_url (or provider)"
                            ),
                        ));
                    };
                    if login.password_file.is_some() || login.password_env.is_some() {
                        return Err(Invalid::key(
                            key("auth"),
                            "is \"oauth2\", which uses no password_file or password_env; remove them",
                        ));
                    }
                    crate::oauth::validate(oauth2)
                        .map_err(|message| Invalid::key(key("oauth2"), message))?;
                    continue;
                }
                match (&login.password_file, &login.password_env) {
                    (Some(_), Some(_)) => {
                        return Err(Invalid::key(
                            key("password_env"),
                            "set exactly one of password_file or password_env, not both",
                        ));
                    }
                    (None, None) => {
                        return Err(Invalid::key(
                            KeyPath::mailbox(i).then(what),
                            "no password source; add password_file = \"/etc/imipd/<name>.password\" or password_env = \"VARIABLE\" (never the password itself), or auth = \"oauth2\" with an oauth2 section",
                        ));
                    }
                    (None, Some(var))
                        if var.is_empty()
                            || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        return Err(Invalid::key(
                            key("password_env"),
                            format!(
                                "{var:?} is not an environment variable name; write e.g. password_env = \"ROOM1_PASSWORD\""
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Checks one server's host, port and TLS mode; on failure the key and the message.
fn check_server(
    what: &str,
    host: &str,
    port: u16,
    tls: TlsMode,
    allow_plaintext: bool,
) -> Result<(), (&'static str, String)> {
    if host.is_empty()
        || host.chars().any(|c| {
            c.is_whitespace() || c == '/' || c == ':' && host.parse::<std::net::IpAddr>().is_err()
        })
    {
        return Err((
            "host",
            format!(
                "{host:?} is not a host name; write the server's name or address, e.g. host = \"mail.example.org\" (the port goes in port = ...)"
            ),
        ));
    }
    let (implicit, starttls) = if what == "imap" {
        (993, 143)
    } else {
        (465, 587)
    };
    if port == 0 {
        return Err((
            "port",
            format!(
                "0 is not a port; write the server's port, e.g. port = {implicit} (tls = \"implicit\") or {starttls} (tls = \"starttls\")"
            ),
        ));
    }
    match tls {
        TlsMode::Implicit if port == starttls || (what == "smtp" && port == 25) => Err((
            "tls",
            format!("port {port} speaks STARTTLS, not implicit TLS; write tls = \"starttls\" (or port = {implicit})"),
        )),
        TlsMode::Starttls if port == implicit => Err((
            "tls",
            format!("port {port} expects TLS from the first byte; write tls = \"implicit\" (or port = {starttls})"),
        )),
        TlsMode::None if !allow_plaintext => Err((
            "tls",
            "\"none\" sends the password in the clear; write \"implicit\" or \"starttls\", or add allow_plaintext = true (loopback hosts only)".to_string(),
        )),
        _ => Ok(()),
    }
}

/// A validation failure before it is placed in the file.
#[derive(Debug)]
enum Invalid {
    /// About one key.
    Key { key: KeyPath, message: String },
    /// About the file as a whole.
    Whole(String),
}

impl Invalid {
    fn key(key: KeyPath, message: impl Into<String>) -> Invalid {
        Invalid::Key {
            key,
            message: message.into(),
        }
    }
}

/// One step of a key's path: a table key or the n-th `[[mailbox]]`.
#[derive(Debug, Clone)]
enum Segment {
    Key(&'static str),
    Index(&'static str, usize),
}

/// A key's path in the file, shown as `mailbox[1].imap.port` (the first `[[mailbox]]` is 1).
#[derive(Debug, Clone)]
struct KeyPath(Vec<Segment>);

impl KeyPath {
    fn root(key: &'static str) -> KeyPath {
        KeyPath(vec![Segment::Key(key)])
    }

    fn mailbox(index: usize) -> KeyPath {
        KeyPath(vec![Segment::Index("mailbox", index)])
    }

    fn then(mut self, key: &'static str) -> KeyPath {
        self.0.push(Segment::Key(key));
        self
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(".")?;
            }
            match segment {
                Segment::Key(key) => f.write_str(key)?,
                Segment::Index(key, i) => write!(f, "{key}[{}]", i + 1)?,
            }
        }
        Ok(())
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line where `key` (or, when it is not written, its nearest written parent) is, if the
/// file parses.
fn line_of(text: &str, key: &KeyPath) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut best = None;
    for segment in &key.0 {
        let (name, index) = match segment {
            Segment::Key(name) => (*name, None),
            Segment::Index(name, i) => (*name, Some(*i)),
        };
        let Some((found_key, value)) = table.get_key_value(name) else {
            break;
        };
        best = Some(found_key.span().start);
        let value = match (index, value.get_ref()) {
            (Some(i), DeValue::Array(items)) => match items.get(i) {
                Some(item) => {
                    best = Some(item.span().start);
                    item.get_ref()
                }
                None => break,
            },
            (_, other) => other,
        };
        match value {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    best.map(|offset| line_at(text, offset))
}

/// What to write instead, for the common type mistakes serde reports.
fn type_hint(message: &str) -> Option<&'static str> {
    if message.contains("expected u16") {
        Some("write a whole number from 1 to 65535, without quotes")
    } else if [
        "expected f64",
        "expected u64",
        "expected u32",
        "expected usize",
    ]
    .iter()
    .any(|t| message.contains(t))
    {
        Some("write a plain number, without quotes or units (seconds, bytes or a count)")
    } else if message.contains("expected a boolean") {
        Some("write true or false, without quotes")
    } else {
        None
    }
}

/// Turns a failed load into an error that says where: the file alone is parsed with `toml`
/// (whose errors carry a position); when the file alone is fine, the environment overrides
/// caused the failure and the `config` crate's message says which key.
fn located_error(path: &Path, text: &str, source: config::ConfigError) -> ConfigError {
    match toml::from_str::<Config>(text) {
        Err(e) => {
            let mut line = e.span().map(|span| line_at(text, span.start));
            let mut message = e.message().trim_end().to_string();
            // An unknown key inside a flattened table is reported at the table's header:
            // point at the key itself.
            if let (Some(start), Some(key)) = (
                line,
                message
                    .strip_prefix("unknown field `")
                    .and_then(|m| m.split('`').next()),
            ) {
                line = text
                    .lines()
                    .enumerate()
                    .skip(start - 1)
                    .find(|(_, l)| {
                        l.trim_start()
                            .strip_prefix(key)
                            .is_some_and(|rest| rest.trim_start().starts_with('='))
                    })
                    .map(|(n, _)| n + 1)
                    .or(line);
            }
            if let Some(written) = line
                .and_then(|l| text.lines().nth(l - 1))
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                message.push_str(&format!(" (in `{written}`)"));
            }
            if let Some(hint) = type_hint(&message) {
                message.push_str("; ");
                message.push_str(hint);
            }
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                message,
            }
        }
        Ok(_) => {
            let mut variables: Vec<String> = std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .filter(|k| k.starts_with("IMIPD__"))
                .collect();
            variables.sort();
            ConfigError::Environment {
                path: path.to_path_buf(),
                source: Box::new(source),
                variables: variables.join(", "),
            }
        }
    }
}

impl MailboxConfig {
    /// The mailbox's addresses, its own first.
    pub fn addresses(&self) -> Vec<CalAddress> {
        std::iter::once(&self.address)
            .chain(&self.aliases)
            .filter_map(|a| CalAddress::parse(a))
            .collect()
    }

    /// The interval between polls.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_secs)
    }

    /// The OAuth 2.0 settings SMTP uses: its own, else the IMAP ones.
    pub fn smtp_oauth2(&self) -> Option<&OAuth2Config> {
        self.smtp.oauth2.as_ref().or(self.imap.oauth2.as_ref())
    }

    /// Every folder to watch: the incoming ones, then the Sent folder.
    pub fn watched_folders(&self) -> impl Iterator<Item = &str> {
        self.folders
            .iter()
            .chain(self.sent_folder.as_ref())
            .map(String::as_str)
    }
}

impl Login {
    /// The login name: the configured one, or `default` (the mailbox address).
    pub fn username<'a>(&'a self, default: &'a str) -> &'a str {
        self.username.as_deref().unwrap_or(default)
    }

    /// Reads the password from its file or environment variable.
    pub fn password(&self, mailbox: &str) -> Result<String, ConfigError> {
        self.secret(mailbox, "password")
    }

    /// Reads a secret from `password_file` or `password_env`; `what` names it in errors.
    fn secret(&self, mailbox: &str, what: &'static str) -> Result<String, ConfigError> {
        if let Some(path) = &self.password_file {
            return std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| ConfigError::Secret {
                    mailbox: mailbox.to_string(),
                    what,
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                });
        }
        let var = self.password_env.as_deref().unwrap_or_default();
        std::env::var(var).map_err(|e| ConfigError::Secret {
            mailbox: mailbox.to_string(),
            what,
            source_name: format!("${var}"),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("imipd.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    const GOOD: &str = r#"
[store]
path = "state"

[[mailbox]]
address = "room1@example.test"
aliases = ["Room-One@example.test"]

[mailbox.imap]
host = "127.0.0.1"
port = 11993
tls = "implicit"
ca_file = "ca.pem"
password_file = "room1.password"

[mailbox.smtp]
host = "127.0.0.1"
port = 11587
tls = "starttls"
password_env = "ROOM1_PASSWORD"
"#;

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), GOOD)).expect("valid");
        assert_eq!(config.store.path, dir.path().join("state"));
        let mailbox = &config.mailboxes[0];
        assert_eq!(mailbox.imap.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(mailbox.folders, vec!["INBOX".to_string()]);
        assert_eq!(mailbox.addresses().len(), 2);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = GOOD.replace("[store]\n", "[store]\npathh = \"x\"\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("unknown key");
        assert!(err.to_string().contains("pathh"), "{err}");
    }

    #[test]
    fn a_bad_address_says_what_to_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = GOOD.replace("\"room1@example.test\"", "\"room1\"");
        let err = Config::load(&write(dir.path(), &text)).expect_err("bad address");
        assert!(
            err.to_string().contains("is not an e-mail address"),
            "{err}"
        );
    }

    #[test]
    fn password_comes_from_the_file_without_its_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("room1.password"), "secret\n").expect("write");
        let config = Config::load(&write(dir.path(), GOOD)).expect("valid");
        let login = &config.mailboxes[0].imap.login;
        assert_eq!(
            login.password("room1@example.test").expect("read"),
            "secret"
        );
    }

    #[test]
    fn the_example_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/imipd.example.toml");
        let config = Config::load(&path).expect("the example is valid");
        let mailbox = &config.mailboxes[0];
        assert_eq!(mailbox.processed, ProcessedAction::Flag);
        assert_eq!(mailbox.quarantine_folder, "imipd-quarantine");
        assert_eq!(mailbox.smtp.retry_initial_secs, 30);
    }

    #[test]
    fn the_example_lists_every_limit_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/imipd.example.toml");
        let text = std::fs::read_to_string(&path).expect("the example is readable");
        let table = text
            .split_once("\n[limits]\n")
            .map(|(_, rest)| rest)
            .expect("the example has a [limits] section");
        let keys: Vec<&str> = table
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(" = "))
            .filter_map(|l| l.split(" = ").next())
            .collect();
        // Serialising the defaults would need Serialize; the parsed table must equal them and
        // name as many keys as the struct has fields.
        let parsed: crate::limits::Limits = toml_of(table);
        assert_eq!(parsed, crate::limits::Limits::default());
        assert_eq!(
            keys.len(),
            15,
            "every [limits] key appears in the example: {keys:?}"
        );
    }

    fn toml_of(text: &str) -> crate::limits::Limits {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the [limits] table parses")
    }

    #[test]
    fn limits_reach_every_mailbox_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{GOOD}\n[limits]\nmax_attendees = 7\n");
        let config = Config::load(&write(dir.path(), &text)).expect("valid");
        assert_eq!(config.mailboxes[0].limits.max_attendees, 7);
        assert_eq!(config.mailboxes[0].limits.max_rdates, 1000);
        let text = format!("{GOOD}\n[limits]\nmax_atendees = 7\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("a misspelt limit");
        assert!(err.to_string().contains("max_atendees"), "{err}");
    }

    #[test]
    fn defaults_flag_processed_mail_and_quarantine_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), GOOD)).expect("valid");
        let mailbox = &config.mailboxes[0];
        assert_eq!(mailbox.processed, ProcessedAction::Flag);
        assert_eq!(mailbox.quarantine_folder, "imipd-quarantine");
        assert!(mailbox.idle);
        assert_eq!(mailbox.sent_folder, None);
        assert_eq!(mailbox.fetch_batch, 50);
        assert_eq!(mailbox.watched_folders().collect::<Vec<_>>(), vec!["INBOX"]);
    }

    #[test]
    fn plaintext_needs_allow_plaintext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = GOOD.replace("tls = \"implicit\"", "tls = \"none\"");
        let err = Config::load(&write(dir.path(), &text)).expect_err("plaintext");
        assert!(err.to_string().contains("allow_plaintext = true"), "{err}");
        let text = text.replace("tls = \"none\"", "tls = \"none\"\nallow_plaintext = true");
        Config::load(&write(dir.path(), &text)).expect("allowed explicitly");
    }

    #[test]
    fn move_needs_a_folder_that_is_not_watched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = GOOD.replace("aliases = [", "processed = \"move\"\naliases = [");
        let err = Config::load(&write(dir.path(), &base)).expect_err("no folder");
        assert!(err.to_string().contains("processed_folder"), "{err}");
        let text = base.replace(
            "processed = \"move\"",
            "processed = \"move\"\nprocessed_folder = \"INBOX\"",
        );
        let err = Config::load(&write(dir.path(), &text)).expect_err("watched");
        assert!(err.to_string().contains("both watched"), "{err}");
        let text = base.replace(
            "processed = \"move\"",
            "processed = \"move\"\nprocessed_folder = \"Done\"\nsent_folder = \"Sent\"",
        );
        let config = Config::load(&write(dir.path(), &text)).expect("valid");
        assert_eq!(
            config.mailboxes[0].watched_folders().collect::<Vec<_>>(),
            vec!["INBOX", "Sent"]
        );
    }

    #[test]
    fn environment_overrides_a_key_of_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // SAFETY: the variable is unique to this test and nothing reads it concurrently
        // except Config::load, which only reads.
        unsafe { std::env::set_var("IMIPD__METRICS__LISTEN", "127.0.0.1:19797") };
        let loaded = Config::load(&write(dir.path(), GOOD));
        unsafe { std::env::remove_var("IMIPD__METRICS__LISTEN") };
        let config = loaded.expect("valid");
        assert_eq!(
            config.metrics.listen_addr(),
            Some("127.0.0.1:19797".parse().expect("address"))
        );
    }

    #[test]
    fn the_push_token_is_read_from_its_file_and_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "{GOOD}\n[http]\nlisten = \"127.0.0.1:8787\"\npush_token_file = \"push.token\"\n"
        );
        let config = Config::load(&write(dir.path(), &text)).expect("loads");
        let http = config.http.expect("[http]");
        assert_eq!(http.push_token_file, Some(dir.path().join("push.token")));
        let missing = http.push_token().expect_err("no file yet").to_string();
        assert!(
            missing.starts_with("[http] push_token_file ") && missing.contains("push.token"),
            "{missing}"
        );
        std::fs::write(dir.path().join("push.token"), "short\n").expect("write");
        let short = http.push_token().expect_err("too short").to_string();
        assert!(short.contains("at least 16 characters"), "{short}");
        std::fs::write(dir.path().join("push.token"), "0123456789abcdef-xyz\n").expect("write");
        assert_eq!(
            http.push_token().expect("a good token"),
            Some("0123456789abcdef-xyz".to_string())
        );
        let without = Config::load(&write(
            dir.path(),
            &format!("{GOOD}\n[http]\nlisten = \"127.0.0.1:8787\"\n"),
        ))
        .expect("loads");
        assert_eq!(
            without.http.expect("[http]").push_token().expect("no file"),
            None
        );
    }

    #[test]
    fn a_short_publish_token_or_an_unknown_zone_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = GOOD.replace("aliases = [", "publish_token = \"short\"\naliases = [");
        let err = Config::load(&write(dir.path(), &text)).expect_err("short token");
        assert!(err.to_string().contains("at least 16 characters"), "{err}");
        let text = GOOD.replace(
            "aliases = [",
            "publish_token = \"0123456789abcdef0123\"\npublish_time_zone = \"Mars/Olympus\"\naliases = [",
        );
        let err = Config::load(&write(dir.path(), &text)).expect_err("unknown zone");
        assert!(err.to_string().contains("IANA"), "{err}");
    }

    #[test]
    fn the_http_listener_is_off_unless_configured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), GOOD)).expect("valid");
        assert_eq!(config.http, None);
        assert_eq!(
            config.mailboxes[0].publish_details,
            crate::publish::Details::Busy
        );
        let text = format!("{GOOD}\n[http]\nlisten = \"127.0.0.1:8787\"\n");
        let config = Config::load(&write(dir.path(), &text)).expect("valid");
        assert_eq!(config.http.map(|h| h.listen.port()), Some(8787));
    }

    #[test]
    fn the_same_mailbox_twice_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let start = GOOD.find("[[mailbox]]").expect("mailbox section");
        let text = format!("{GOOD}\n{}", &GOOD[start..]);
        let err = Config::load(&write(dir.path(), &text)).expect_err("twice");
        assert!(err.to_string().contains("appears twice"), "{err}");
    }
}
