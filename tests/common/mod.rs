//! Helpers shared by the integration tests that run against the project's real mail stack
//! (`scripts/mailstack up`).

#![allow(dead_code)]

pub mod client;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs `scripts/mailstack ARGS` on the private instance in `dir` (ports chosen free), with
/// the extra environment `env`; panics with the script's errors when it fails.
pub fn private_mailstack(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let output =
        std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack"))
            .args(args)
            .env("MAILSTACK_DIR", dir)
            .env("MAILSTACK_PORT_BASE", "auto")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run scripts/mailstack");
    assert!(
        output.status.success(),
        "scripts/mailstack {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The running mail stack, as its env file describes it.
pub struct MailStack {
    vars: HashMap<String, String>,
}

impl MailStack {
    /// Reads `$IMIPD_MAILSTACK_ENV`, or `target/mailstack/env` of this checkout.
    /// Panics with the command to run when the stack is not up: these tests need it.
    pub fn get() -> MailStack {
        let path = std::env::var_os("IMIPD_MAILSTACK_ENV").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mailstack/env"),
            PathBuf::from,
        );
        MailStack::from_file(&path)
    }

    /// Reads the env file at `path` (a private stack instance's).
    pub fn from_file(path: &Path) -> MailStack {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "the mail stack is not running ({}: {e}); start it with `scripts/mailstack up`",
                path.display()
            )
        });
        let vars = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect();
        MailStack { vars }
    }

    /// Whether the env file has `key` (newer scripts/mailstack versions add keys).
    pub fn has(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }

    pub fn var(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the mail stack's env file"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.var(key).parse().expect("a port number")
    }

    pub fn host(&self) -> &str {
        self.var("MAILSTACK_HOST")
    }

    pub fn ca(&self) -> &str {
        self.var("MAILSTACK_CA")
    }

    /// The password of a local user, e.g. `password("room1")`.
    pub fn password(&self, user: &str) -> &str {
        self.var(&format!("MAILSTACK_PASSWORD_{}", user.to_ascii_uppercase()))
    }

    /// An `[imap]` section for `user` over IMAPS, with the password in a file under `dir`.
    pub fn imap_config(&self, user: &str, dir: &Path) -> imipd::config::ImapConfig {
        let password_file = dir.join(format!("{user}.password"));
        std::fs::write(&password_file, self.password(user)).expect("write the password file");
        imipd::config::ImapConfig {
            host: self.host().to_string(),
            port: self.port("MAILSTACK_IMAPS_PORT"),
            tls: imipd::config::TlsMode::Implicit,
            ca_file: Some(PathBuf::from(self.ca())),
            allow_plaintext: false,
            auth: imipd::config::AuthMethod::Password,
            oauth2: None,
            login: imipd::config::Login {
                username: Some(format!("{user}@example.test")),
                password_file: Some(password_file),
                password_env: None,
            },
        }
    }

    /// A daemon configuration serving `user@example.test` against this stack, polling every
    /// `poll_secs` seconds when the server cannot IDLE.
    pub fn daemon_config(&self, user: &str, name: &str, poll_secs: u64, dir: &Path) -> PathBuf {
        self.daemon_config_with(user, name, poll_secs, "", dir)
    }

    /// [`Self::daemon_config`] with `extra` TOML lines added to the `[[mailbox]]` section
    /// (e.g. `folders = ["Crash"]`).
    pub fn daemon_config_with(
        &self,
        user: &str,
        name: &str,
        poll_secs: u64,
        extra: &str,
        dir: &Path,
    ) -> PathBuf {
        self.daemon_config_full(user, name, poll_secs, extra, "", dir)
    }

    /// [`Self::daemon_config_with`] with `top` TOML sections before the mailbox (e.g.
    /// `[http]`), and any poll interval (`0.1`).
    pub fn daemon_config_full(
        &self,
        user: &str,
        name: &str,
        poll_secs: impl std::fmt::Display,
        extra: &str,
        top: &str,
        dir: &Path,
    ) -> PathBuf {
        let password_file = dir.join(format!("{user}.password"));
        std::fs::write(&password_file, self.password(user)).expect("write the password file");
        let text = format!(
            r#"[store]
path = "store"
{top}

# The crash test and the drills send hundreds of invitations from one organiser.
[limits]
max_replies_per_address_per_hour = 0

[[mailbox]]
address = "{user}@example.test"
name = "{name}"
poll_interval_secs = {poll_secs}
{extra}
[mailbox.imap]
host = "{host}"
port = {imaps}
tls = "implicit"
ca_file = "{ca}"
password_file = "{pw}"

[mailbox.smtp]
host = "{host}"
port = {submission}
tls = "starttls"
ca_file = "{ca}"
password_file = "{pw}"
"#,
            host = self.host(),
            imaps = self.port("MAILSTACK_IMAPS_PORT"),
            submission = self.port("MAILSTACK_SUBMISSION_PORT"),
            ca = self.ca(),
            pw = password_file.display(),
        );
        let path = dir.join("imipd.toml");
        std::fs::write(&path, text).expect("write the daemon config");
        path
    }

    /// Sends `raw` over the 25-like SMTP port (no authentication needed from loopback).
    pub async fn send(&self, from: &str, to: &str, raw: &[u8]) {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host())
            .port(self.port("MAILSTACK_SMTP_PORT"))
            .build();
        let envelope = Envelope::new(
            Some(from.parse().expect("sender address")),
            vec![to.parse().expect("recipient address")],
        )
        .expect("envelope");
        transport
            .send_raw(&envelope, raw)
            .await
            .expect("the local Postfix accepts the message");
    }

    /// Polls `user`'s INBOX until a message satisfies `pred`, for at most `timeout`.
    pub async fn wait_for_message(
        &self,
        user: &str,
        dir: &Path,
        timeout: Duration,
        pred: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let config = self.imap_config(user, dir);
        let deadline = Instant::now() + timeout;
        loop {
            let mut imap = imipd::imap::ImapSession::connect(
                &config,
                config.login.username.as_deref().expect("username"),
                self.password(user),
            )
            .await
            .expect("IMAP login to the local stack");
            imap.select("INBOX").await.expect("select INBOX");
            for uid in imap.unprocessed().await.expect("search") {
                if let Some(raw) = imap.fetch(uid).await.expect("fetch")
                    && pred(&raw)
                {
                    imap.logout().await;
                    return Some(raw);
                }
            }
            imap.logout().await;
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// A unique token for this test run (UIDs, subjects).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}-{nanos}-{}", std::process::id())
}

/// Reads a test data file under `tests/data/`.
pub fn data(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Asks the process to stop with SIGTERM and waits for it, at most `timeout`.
pub fn terminate(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the daemon") {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("the daemon did not stop within {timeout:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
