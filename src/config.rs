//! The configuration: a TOML file, overridable by `IMIPD__SECTION__KEY` environment variables
//! (the `config` crate), with secrets read only from files or environment variables.
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
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("mailbox {mailbox}: cannot read the {what} from {source_name}: {reason}")]
    Secret {
        mailbox: String,
        what: &'static str,
        source_name: String,
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    #[serde(rename = "mailbox", default)]
    pub mailboxes: Vec<MailboxConfig>,
    /// `[http]`: the publishing listener; absent, nothing listens.
    #[serde(default)]
    pub http: Option<HttpConfig>,
}

/// `[http]`: the optional HTTP listener that publishes the mailboxes' calendars
/// ([`crate::publish`]). Changing it needs a restart; the mailboxes' publish keys reload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address and port to listen on, e.g. `"127.0.0.1:8787"` (put a TLS-terminating
    /// reverse proxy in front for anything beyond loopback: tokens travel in the URL).
    pub listen: std::net::SocketAddr,
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
        let loaded = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("IMIPD")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .and_then(|c| c.try_deserialize::<Config>())
            .map_err(|source| ConfigError::Load {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = loaded;
        config.resolve_paths(base);
        config.validate(path)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.store.path);
        for mailbox in &mut self.mailboxes {
            for login in [&mut mailbox.imap.login, &mut mailbox.smtp.login] {
                if let Some(p) = &mut login.password_file {
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

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if self.mailboxes.is_empty() {
            return Err(invalid(
                "no [[mailbox]] section: add one with address, [mailbox.imap] and [mailbox.smtp]"
                    .into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, mailbox) in self.mailboxes.iter().enumerate() {
            if !seen.insert(mailbox.address.to_ascii_lowercase()) {
                return Err(invalid(format!(
                    "mailbox {}: appears twice; merge the two [[mailbox]] sections",
                    mailbox.address
                )));
            }
            for address in std::iter::once(&mailbox.address).chain(&mailbox.aliases) {
                if CalAddress::parse(address).is_none() {
                    return Err(invalid(format!(
                        "mailbox {}: {address:?} is not an e-mail address (write e.g. \"room1@example.org\")",
                        i + 1
                    )));
                }
            }
            if !(mailbox.poll_interval_secs >= 0.05 && mailbox.poll_interval_secs <= 86_400.0) {
                return Err(invalid(format!(
                    "mailbox {}: poll_interval_secs must be between 0.05 and 86400",
                    mailbox.address
                )));
            }
            if mailbox.fetch_batch == 0 || mailbox.fetch_batch_bytes == 0 {
                return Err(invalid(format!(
                    "mailbox {}: fetch_batch and fetch_batch_bytes must be at least 1",
                    mailbox.address
                )));
            }
            if mailbox.folders.is_empty() {
                return Err(invalid(format!(
                    "mailbox {}: folders is empty; write folders = [\"INBOX\"]",
                    mailbox.address
                )));
            }
            match (mailbox.processed, &mailbox.processed_folder) {
                (ProcessedAction::Move, None) => {
                    return Err(invalid(format!(
                        "mailbox {}: processed = \"move\" needs processed_folder = \"...\"",
                        mailbox.address
                    )));
                }
                (ProcessedAction::Flag | ProcessedAction::Delete, Some(_)) => {
                    return Err(invalid(format!(
                        "mailbox {}: processed_folder is only used with processed = \"move\"",
                        mailbox.address
                    )));
                }
                _ => {}
            }
            let watched: Vec<&String> = mailbox
                .folders
                .iter()
                .chain(mailbox.sent_folder.as_ref())
                .collect();
            for target in
                std::iter::once(&mailbox.quarantine_folder).chain(mailbox.processed_folder.as_ref())
            {
                if target.is_empty() || watched.contains(&target) {
                    return Err(invalid(format!(
                        "mailbox {}: the folder {target:?} cannot be both watched and a destination for processed or quarantined mail",
                        mailbox.address
                    )));
                }
            }
            if mailbox.smtp.retry_initial_secs == 0
                || mailbox.smtp.retry_max_secs < mailbox.smtp.retry_initial_secs
            {
                return Err(invalid(format!(
                    "mailbox {} [smtp]: retry_initial_secs must be at least 1 and at most retry_max_secs",
                    mailbox.address
                )));
            }
            for (what, tls, allow) in [
                ("imap", mailbox.imap.tls, mailbox.imap.allow_plaintext),
                ("smtp", mailbox.smtp.tls, mailbox.smtp.allow_plaintext),
            ] {
                if tls == TlsMode::None && !allow {
                    return Err(invalid(format!(
                        "mailbox {} [{what}]: tls = \"none\" sends the password in the clear; use \"implicit\" or \"starttls\", or add allow_plaintext = true (loopback hosts only)",
                        mailbox.address
                    )));
                }
            }
            if let Some(token) = &mailbox.publish_token
                && (token.len() < 16
                    || !token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)))
            {
                return Err(invalid(format!(
                    "mailbox {}: publish_token must be at least 16 characters of A-Z a-z 0-9 - _ . ~ (e.g. the output of `openssl rand -hex 16`)",
                    mailbox.address
                )));
            }
            if let Some(zone) = &mailbox.publish_time_zone
                && zone.parse::<chrono_tz::Tz>().is_err()
            {
                return Err(invalid(format!(
                    "mailbox {}: publish_time_zone {zone:?} is not an IANA time zone name (write e.g. \"Europe/Berlin\")",
                    mailbox.address
                )));
            }
            for (what, login) in [("imap", &mailbox.imap.login), ("smtp", &mailbox.smtp.login)] {
                if login.password_file.is_some() == login.password_env.is_some() {
                    return Err(invalid(format!(
                        "mailbox {} [{what}]: set exactly one of password_file or password_env",
                        mailbox.address
                    )));
                }
            }
        }
        Ok(())
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
        if let Some(path) = &self.password_file {
            return std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| ConfigError::Secret {
                    mailbox: mailbox.to_string(),
                    what: "password",
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                });
        }
        let var = self.password_env.as_deref().unwrap_or_default();
        std::env::var(var).map_err(|e| ConfigError::Secret {
            mailbox: mailbox.to_string(),
            what: "password",
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
