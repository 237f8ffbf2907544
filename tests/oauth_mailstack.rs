//! OAuth 2.0 logins over real protocol exchanges: a PRIVATE mail stack instance
//! (`target/mailstack-oauth`, `MAILSTACK_OAUTH2_INTROSPECTION_URL` set, so Dovecot's oauth2
//! passdb checks tokens by introspection and Postfix's SMTP AUTH goes through Dovecot) and a
//! token server on loopback started by this test (`tests/oauth/token_server.rs`).
//!
//! One test runs the steps in order, since they share the stack (started afresh because the
//! token server's port changes per run) and its logs: XOAUTH2 and OAUTHBEARER logins for IMAP
//! and SMTP, expiry and refresh, a refused token replaced, revocation with backoff, the daemon
//! answering an invitation over OAuth, the daemon living through a revoked grant without a
//! crash loop, and `imipd oauth login` storing a refresh token through its loopback listener.
//! The stack is stopped at the end (its logs stay under `target/mailstack-oauth/log`).

mod common;

#[path = "oauth/token_server.rs"]
mod token_server;

use base64::Engine;
use common::{MailStack, data, terminate, unique};
use imipd::config::{Config, MailboxConfig};
use imipd::imap::ImapSession;
use imipd::oauth::sasl::Mechanism;
use imipd::oauth::{self, Backoff, Credentials, OAuthError, Protocol, TokenSource};
use imipd::store::{OutboxItem, Store};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use token_server::TokenServer;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn stack_dir() -> PathBuf {
    Path::new(REPO).join("target/mailstack-oauth")
}

/// Runs `scripts/mailstack ARGS` on the private instance.
fn mailstack(args: &[&str], introspection: Option<&str>) {
    let env: Vec<(&str, &str)> = introspection
        .map(|url| ("MAILSTACK_OAUTH2_INTROSPECTION_URL", url))
        .into_iter()
        .collect();
    common::private_mailstack(&stack_dir(), args, &env);
}

/// Stops the private stack when the test ends, however it ends.
struct StackGuard;

impl Drop for StackGuard {
    fn drop(&mut self) {
        mailstack(&["down"], None);
    }
}

/// Everything a step needs.
struct World {
    stack: MailStack,
    server: TokenServer,
    dir: tempfile::TempDir,
}

impl World {
    /// A configuration for `user` (from tests/data/oauth/imipd.toml) in its own directory,
    /// with the client `client_id` and its secret; returns the file's path.
    fn config_file(&self, name: &str, user: &str, flow: &str, mechanism: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("config dir");
        let client_id = format!("client-{name}");
        let secret = format!("secret-{name}");
        self.server
            .add_client(&client_id, &secret, &format!("{user}@example.test"));
        std::fs::write(dir.join("client.secret"), format!("{secret}\n")).expect("secret");
        let text = data("oauth/imipd.toml")
            .replace("{{USER}}", user)
            .replace("{{HOST}}", self.stack.host())
            .replace(
                "{{IMAPS_PORT}}",
                &self.stack.port("MAILSTACK_IMAPS_PORT").to_string(),
            )
            .replace(
                "{{SUBMISSION_PORT}}",
                &self.stack.port("MAILSTACK_SUBMISSION_PORT").to_string(),
            )
            .replace("{{CA}}", self.stack.ca())
            .replace("{{FLOW}}", flow)
            .replace("{{TOKEN_URL}}", &self.server.url("/token"))
            .replace("{{AUTH_URL}}", &self.server.url("/authorize"))
            .replace("{{CLIENT_ID}}", &client_id)
            .replace("{{MECHANISM}}", mechanism);
        let path = dir.join("imipd.toml");
        std::fs::write(&path, text).expect("write the config");
        path
    }

    fn mailbox(&self, name: &str, user: &str, flow: &str, mechanism: &str) -> MailboxConfig {
        let path = self.config_file(name, user, flow, mechanism);
        let mut config = Config::load(&path).expect("the test config loads");
        config.mailboxes.remove(0)
    }

    fn log(&self, which: &str) -> String {
        std::fs::read_to_string(Path::new(self.stack.var("MAILSTACK_LOG_DIR")).join(which))
            .unwrap_or_default()
    }

    /// How many lines of `which` log contain every one of `parts`.
    fn log_lines(&self, which: &str, parts: &[&str]) -> usize {
        self.log(which)
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

fn token_source(credentials: &Credentials) -> &TokenSource {
    match credentials {
        Credentials::OAuth2(source) => source,
        Credentials::Password(_) => panic!("the test config uses auth = \"oauth2\""),
    }
}

async fn imap_login(mailbox: &MailboxConfig, credentials: &Credentials) -> Result<(), String> {
    let mut imap = ImapSession::connect_with(&mailbox.imap, &mailbox.address, credentials)
        .await
        .map_err(|e| e.to_string())?;
    imap.select("INBOX").await.map_err(|e| e.to_string())?;
    imap.logout().await;
    Ok(())
}

/// Sends a small message from `mailbox` to alice with `credentials`; returns its subject.
async fn smtp_send(
    mailbox: &MailboxConfig,
    credentials: Credentials,
) -> Result<String, imipd::smtp::SendFailure> {
    let subject = unique("oauth-smtp");
    let user = mailbox.address.split('@').next().expect("a local part");
    let raw = common::client::wire(
        &data("oauth/message.eml")
            .replace("{{USER}}", user)
            .replace("{{SUBJECT}}", &subject),
    );
    let sender =
        imipd::smtp::Sender::with_credentials(&mailbox.smtp, &mailbox.address, credentials)
            .expect("an SMTP sender");
    let item = OutboxItem {
        id: 1,
        mailbox: mailbox.address.clone(),
        message_id: format!("<{subject}@example.test>"),
        envelope_from: mailbox.address.clone(),
        envelope_to: vec!["alice@example.test".into()],
        attempts: 0,
        next_attempt: 0,
        last_error: None,
    };
    sender.send(&item, &raw).await.map(|()| subject)
}

async fn wait_for_subject(stack: &MailStack, subject: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::client::search(stack, "alice", "INBOX", &format!("SUBJECT \"{subject}\"")).await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the message {subject} reached alice within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Client credentials; IMAP with each mechanism setting; Dovecot logs which one was used.
async fn imap_logs_in_with_xoauth2_and_oauthbearer(w: &World) {
    for (mechanism, expected) in [
        ("xoauth2", "method=XOAUTH2"),
        ("oauthbearer", "method=OAUTHBEARER"),
        ("auto", "method=OAUTHBEARER"),
    ] {
        let mailbox = w.mailbox(
            &format!("imap-{mechanism}"),
            "room5",
            "client_credentials",
            mechanism,
        );
        let credentials = oauth::credentials(&mailbox, Protocol::Imap, None).expect("credentials");
        let before = w.log_lines(
            "dovecot.log",
            &["Login: user=<room5@example.test>", expected],
        );
        imap_login(&mailbox, &credentials)
            .await
            .unwrap_or_else(|e| panic!("IMAP login with {mechanism}: {e}"));
        let after = w.log_lines(
            "dovecot.log",
            &["Login: user=<room5@example.test>", expected],
        );
        assert_eq!(
            after,
            before + 1,
            "Dovecot logged one {expected} login for {mechanism}"
        );
    }
}

/// SMTP submission (STARTTLS) with each mechanism; Postfix logs the SASL method and alice
/// receives the message.
async fn smtp_sends_with_xoauth2_and_oauthbearer(w: &World) {
    for (mechanism, expected) in [
        ("xoauth2", "sasl_method=XOAUTH2"),
        ("oauthbearer", "sasl_method=OAUTHBEARER"),
    ] {
        let mailbox = w.mailbox(
            &format!("smtp-{mechanism}"),
            "room5",
            "client_credentials",
            mechanism,
        );
        let credentials = oauth::credentials(&mailbox, Protocol::Smtp, None).expect("credentials");
        imipd::smtp::Sender::with_credentials(&mailbox.smtp, &mailbox.address, credentials.clone())
            .expect("a sender")
            .verify()
            .await
            .unwrap_or_else(|e| panic!("SMTP login check with {mechanism}: {e:?}"));
        let before = w.log_lines(
            "postfix.log",
            &[expected, "sasl_username=room5@example.test"],
        );
        let subject = smtp_send(&mailbox, credentials)
            .await
            .unwrap_or_else(|e| panic!("SMTP send with {mechanism}: {e:?}"));
        wait_for_subject(&w.stack, &subject).await;
        let after = w.log_lines(
            "postfix.log",
            &[expected, "sasl_username=room5@example.test"],
        );
        assert!(
            after > before,
            "Postfix logged a {expected} login for {mechanism}"
        );
    }
}

/// A token as long as Microsoft's JWTs goes through IMAP and SMTP (on SMTP as a response
/// line of its own after the AUTH command: Postfix caps command lines at 2,048 octets).
async fn long_tokens_log_in(w: &World) {
    w.server.set_padding(3000);
    for mechanism in ["xoauth2", "oauthbearer"] {
        let mailbox = w.mailbox(
            &format!("long-{mechanism}"),
            "room5",
            "client_credentials",
            mechanism,
        );
        let imap = oauth::credentials(&mailbox, Protocol::Imap, None).expect("credentials");
        imap_login(&mailbox, &imap)
            .await
            .unwrap_or_else(|e| panic!("IMAP login with a long token over {mechanism}: {e}"));
        let smtp = oauth::credentials(&mailbox, Protocol::Smtp, None).expect("credentials");
        assert!(
            token_source(&smtp)
                .token()
                .await
                .expect("token")
                .secret()
                .len()
                > 3000
        );
        let subject = smtp_send(&mailbox, smtp)
            .await
            .unwrap_or_else(|e| panic!("SMTP send with a long token over {mechanism}: {e:?}"));
        wait_for_subject(&w.stack, &subject).await;
    }
    w.server.set_padding(0);
}

/// The refresh-token flow: a short-lived token is renewed before it expires, the new one
/// logs in, and a rotated refresh token replaces the stored one.
async fn tokens_are_renewed_before_expiry_and_rotation_is_stored(w: &World) {
    let mailbox = w.mailbox("refresh", "room6", "refresh_token", "auto");
    let oauth2 = mailbox.imap.oauth2.as_ref().expect("an oauth2 section");
    let store = Store::open(&w.dir.path().join("refresh/store")).expect("store");
    let key = oauth::token_key(&mailbox.address, oauth2).expect("a key");
    let seeded = w.server.grant_refresh_token("room6@example.test");
    store
        .set_oauth_refresh_token(&key, &seeded)
        .await
        .expect("seed");

    w.server.set_lifetime(Duration::from_secs(4));
    w.server.set_rotate_refresh(true);
    let credentials =
        oauth::credentials(&mailbox, Protocol::Imap, Some(store.clone())).expect("credentials");
    let source = token_source(&credentials);
    let requests = w.server.token_requests();
    let first = source.token().await.expect("a first token");
    assert_eq!(
        source.token().await.expect("cached").secret(),
        first.secret()
    );
    assert_eq!(
        w.server.token_requests(),
        requests + 1,
        "the token is cached"
    );
    imap_login(&mailbox, &credentials)
        .await
        .expect("login with the first token");
    // Lifetime 4 s, margin 300 s: renewed at half-life, before the server stops honouring it.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let second = source.token().await.expect("a renewed token");
    assert_ne!(second.secret(), first.secret(), "renewed at half-life");
    assert_eq!(w.server.token_requests(), requests + 2);
    imap_login(&mailbox, &credentials)
        .await
        .expect("login with the renewed token");
    let stored = store
        .oauth_refresh_token(&key)
        .expect("read")
        .expect("a token");
    assert_ne!(
        stored, seeded,
        "the rotated refresh token replaced the seeded one"
    );
    assert!(w.server.refresh_token_is_live(&stored));
    let info = oauth::acquire_token(&mailbox, Protocol::Smtp, Some(store.clone()))
        .await
        .expect("acquire_token")
        .expect("an OAuth mailbox");
    assert_eq!(info.flow, "refresh_token");
    assert!(info.expires_in <= Duration::from_secs(4));
    w.server.set_lifetime(Duration::from_secs(3600));
    w.server.set_rotate_refresh(false);
}

/// A token the server no longer takes (revoked at the provider, or expired early) is
/// dropped after the refusal and the login succeeds with a fresh one, for IMAP and SMTP.
async fn a_refused_token_is_replaced_after_the_auth_failure(w: &World) {
    let mailbox = w.mailbox("refused", "room5", "client_credentials", "auto");
    let imap = oauth::credentials(&mailbox, Protocol::Imap, None).expect("credentials");
    let smtp = oauth::credentials(&mailbox, Protocol::Smtp, None).expect("credentials");
    let first = token_source(&imap).token().await.expect("token");
    token_source(&smtp).token().await.expect("token");
    w.server.revoke_access("room5@example.test");
    let requests = w.server.token_requests();
    imap_login(&mailbox, &imap)
        .await
        .expect("IMAP login after one refusal");
    assert_eq!(
        w.server.token_requests(),
        requests + 1,
        "one fresh token for IMAP"
    );
    assert_ne!(
        token_source(&imap).token().await.expect("token").secret(),
        first.secret()
    );
    let subject = smtp_send(&mailbox, smtp)
        .await
        .expect("SMTP send after one refusal");
    assert_eq!(
        w.server.token_requests(),
        requests + 2,
        "one fresh token for SMTP"
    );
    wait_for_subject(&w.stack, &subject).await;
}

/// A revoked grant: a clear error naming the fix, then no request to the token endpoint
/// until the backoff has passed.
async fn a_revoked_grant_gives_a_clear_error_and_backs_off(w: &World) {
    let mailbox = w.mailbox("revoked", "room6", "refresh_token", "xoauth2");
    let oauth2 = mailbox.imap.oauth2.as_ref().expect("an oauth2 section");
    let store = Store::open(&w.dir.path().join("revoked/store")).expect("store");
    let key = oauth::token_key(&mailbox.address, oauth2).expect("a key");
    let refresh = w.server.grant_refresh_token("room6@example.test");
    store
        .set_oauth_refresh_token(&key, &refresh)
        .await
        .expect("seed");
    let source = TokenSource::new(&mailbox.address, oauth2, Some(store.clone()))
        .expect("a source")
        .with_backoff(Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(2),
        });
    let credentials = Credentials::OAuth2(source.clone());
    imap_login(&mailbox, &credentials)
        .await
        .expect("login before the revocation");
    w.server.revoke_all("room6@example.test");

    let requests = w.server.token_requests();
    let error = imap_login(&mailbox, &credentials)
        .await
        .expect_err("revoked");
    assert!(
        error.contains("invalid_grant") && error.contains("imipd oauth login"),
        "the error names the cause and the fix: {error}"
    );
    assert_eq!(w.server.token_requests(), requests + 1);
    let error = imap_login(&mailbox, &credentials)
        .await
        .expect_err("still revoked");
    assert!(error.contains("paused"), "backing off: {error}");
    assert_eq!(
        w.server.token_requests(),
        requests + 1,
        "no request during the backoff"
    );
    match source.token().await {
        Err(e @ OAuthError::Backoff { .. }) => assert!(!e.needs_attention()),
        other => panic!("expected the backoff, got {:?}", other.map(|_| "a token")),
    }
    // SMTP: a reply waiting for a token is retried later, never dead-lettered.
    let sender = imipd::smtp::Sender::with_credentials(
        &mailbox.smtp,
        &mailbox.address,
        Credentials::OAuth2(source.clone()),
    )
    .expect("a sender");
    match sender.verify().await {
        Err(imipd::smtp::SendFailure::Transient(reason)) => {
            assert!(reason.contains("paused"), "{reason}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let error = source
        .token()
        .await
        .expect_err("still revoked after the pause");
    assert!(error.needs_attention(), "{error}");
    assert_eq!(
        w.server.token_requests(),
        requests + 2,
        "one request after the pause"
    );
}

/// Starts the real daemon on `config`, logging at `level` (IMIPD_LOG) into `log`.
fn start_daemon(config: &Path, log: &Path, level: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(config)
        .env("IMIPD_LOG", level)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("daemon log"))
        .spawn()
        .expect("start the daemon")
}

/// The real daemon serves a room that logs in to IMAP and SMTP with OAuth 2.0 tokens: an
/// invitation is answered, and the reply was submitted with OAUTHBEARER.
async fn the_daemon_answers_an_invitation_to_an_oauth_room(w: &World) {
    let config = w.config_file("daemon", "room7", "client_credentials", "auto");
    let tag = unique("oauth-room7");
    let (message_id, raw) = common::client::invitation("room7", "alice@example.test", &tag, 0);
    w.stack
        .send("alice@example.test", "room7@example.test", &raw)
        .await;
    let log = config.with_file_name("daemon.log");
    let mut daemon = start_daemon(&config, &log, "trace");
    let reply = w
        .stack
        .wait_for_message("alice", w.dir.path(), Duration::from_secs(60), |raw| {
            imipd::mail::extract(raw).is_ok_and(|m| {
                m.sender.references.contains(&message_id)
                    && m.sender.auto_submitted.as_deref() == Some("auto-replied")
            })
        })
        .await;
    let status = terminate(&mut daemon, Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        reply.is_some(),
        "a reply from room7 reached alice; daemon log:\n{text}"
    );
    assert!(status.success(), "the daemon stops cleanly: {status}");
    assert!(
        w.log_lines(
            "postfix.log",
            &[
                "sasl_method=OAUTHBEARER",
                "sasl_username=room7@example.test"
            ]
        ) >= 1
    );
    assert!(
        w.log_lines(
            "dovecot.log",
            &["Login: user=<room7@example.test>", "method=OAUTHBEARER"]
        ) >= 1
    );
    // Logged at trace level, yet no token appears, neither bare nor as a SASL response.
    let tokens = w.server.access_tokens("room7@example.test");
    assert!(!tokens.is_empty());
    for token in tokens {
        assert!(
            !text.contains(&token),
            "an access token in the daemon's log"
        );
        for (mechanism, port) in [
            (Mechanism::Xoauth2, w.stack.port("MAILSTACK_IMAPS_PORT")),
            (Mechanism::Oauthbearer, w.stack.port("MAILSTACK_IMAPS_PORT")),
            (
                Mechanism::Xoauth2,
                w.stack.port("MAILSTACK_SUBMISSION_PORT"),
            ),
            (
                Mechanism::Oauthbearer,
                w.stack.port("MAILSTACK_SUBMISSION_PORT"),
            ),
        ] {
            let response =
                base64::engine::general_purpose::STANDARD.encode(oauth::sasl::initial_response(
                    mechanism,
                    "room7@example.test",
                    w.stack.host(),
                    port,
                    &token,
                ));
            assert!(
                !text.contains(&response),
                "a SASL response in the daemon's log"
            );
        }
    }
}

/// A daemon whose refresh token was revoked keeps running, says what to do, and asks the
/// token endpoint only as often as the backoff allows.
async fn a_revoked_grant_does_not_crash_loop_the_daemon(w: &World) {
    let config = w.config_file("daemon-revoked", "room8", "refresh_token", "auto");
    let mailbox = Config::load(&config).expect("config").mailboxes.remove(0);
    let oauth2 = mailbox.imap.oauth2.as_ref().expect("an oauth2 section");
    let key = oauth::token_key(&mailbox.address, oauth2).expect("a key");
    let refresh = w.server.grant_refresh_token("room8@example.test");
    {
        let store = Store::open(&config.with_file_name("store")).expect("store");
        store
            .set_oauth_refresh_token(&key, &refresh)
            .await
            .expect("seed");
    }
    w.server.revoke_all("room8@example.test");
    let requests = w.server.token_requests();
    let log = config.with_file_name("daemon.log");
    let mut daemon = start_daemon(&config, &log, "info,imipd=debug");
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        daemon.try_wait().expect("the daemon's status").is_none(),
        "the daemon still runs with a revoked grant"
    );
    let asked = w.server.token_requests() - requests;
    let status = terminate(&mut daemon, Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "the daemon stops cleanly: {status}\n{text}"
    );
    // Backoff 5 s then 10 s: at most the first request and the one after 5 s in 8 s.
    assert!(
        (1..=2).contains(&asked),
        "token requests in 8 s: {asked}\n{text}"
    );
    assert!(
        text.contains("invalid_grant")
            && text.contains("imipd oauth login --mailbox room8@example.test"),
        "the log says what is wrong and what to run:\n{text}"
    );
    assert!(
        !text.contains(&refresh),
        "the refresh token is never logged"
    );
}

/// `imipd oauth login`: the printed URL leads (through the provider's consent) back to the
/// command's loopback listener, and the refresh token lands in the store, where the daemon's
/// token source finds it.
async fn oauth_login_stores_a_refresh_token_that_logs_in(w: &World) {
    let config = w.config_file("login", "room9", "refresh_token", "auto");
    w.server.sign_in("room9@example.test");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args([
            "oauth",
            "login",
            "--mailbox",
            "room9@example.test",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start imipd oauth login");
    let stdout = child.stdout.take().expect("stdout");
    // Read everything the command prints (it must not hit a closed pipe); pass on the URL.
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let reader = std::thread::spawn(move || {
        let mut url_tx = Some(url_tx);
        let mut printed = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("http://")
                && let Some(tx) = url_tx.take()
            {
                tx.send(line.clone()).ok();
            }
            printed.push_str(&line);
            printed.push('\n');
        }
        printed
    });
    let url = url_rx
        .await
        .expect("the command prints the authorisation URL");
    assert!(url.starts_with(&w.server.url("/authorize?")), "{url}");
    // The "browser": the provider redirects it to the command's listener.
    let page = reqwest::get(&url).await.expect("the browser round trip");
    assert!(
        page.status().is_success(),
        "the listener answered {}",
        page.status()
    );
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("wait")
        .expect("the command ends");
    let printed = reader.join().expect("the reader thread");
    assert!(
        status.status.success(),
        "imipd oauth login succeeded: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        printed.contains("refresh token of room9@example.test is stored"),
        "{printed}"
    );
    let mailbox = Config::load(&config).expect("config").mailboxes.remove(0);
    let store = Store::open(&config.with_file_name("store")).expect("store");
    let key = oauth::token_key(
        &mailbox.address,
        mailbox.imap.oauth2.as_ref().expect("oauth2"),
    )
    .expect("key");
    let stored = store
        .oauth_refresh_token(&key)
        .expect("read")
        .expect("a refresh token");
    assert!(w.server.refresh_token_is_live(&stored));
    let credentials =
        oauth::credentials(&mailbox, Protocol::Imap, Some(store)).expect("credentials");
    imap_login(&mailbox, &credentials)
        .await
        .expect("login with the stored grant");
}

/// `imipd oauth login` with a redirect URL that is not loopback: the person pastes the
/// address the browser ended on, and the refresh token is stored.
async fn oauth_login_takes_a_pasted_redirect(w: &World) {
    let config = w.config_file("login-paste", "room9", "refresh_token", "oauthbearer");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "mechanism = \"oauthbearer\"\n",
        "mechanism = \"oauthbearer\"\nredirect_url = \"https://app.example.test/callback\"\n",
    );
    std::fs::write(&config, text).expect("config");
    w.server.sign_in("room9@example.test");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args([
            "oauth",
            "login",
            "--mailbox",
            "room9@example.test",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .expect("start imipd oauth login");
    let stdout = child.stdout.take().expect("stdout");
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let reader = std::thread::spawn(move || {
        let mut url_tx = Some(url_tx);
        let mut printed = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("http://")
                && let Some(tx) = url_tx.take()
            {
                tx.send(line.clone()).ok();
            }
            printed.push_str(&line);
            printed.push('\n');
        }
        printed
    });
    let url = url_rx
        .await
        .expect("the command prints the authorisation URL");
    // The "browser" stops at the provider's redirect; the person copies its address.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let answer = browser.get(&url).send().await.expect("the provider");
    let location = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a redirect")
        .to_string();
    assert!(
        location.starts_with("https://app.example.test/callback?"),
        "{location}"
    );
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{location}").expect("paste");
    }
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("wait")
        .expect("the command ends");
    let printed = reader.join().expect("the reader thread");
    assert!(
        status.status.success(),
        "imipd oauth login --paste path succeeded: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(printed.contains("Paste the address"), "{printed}");
    let mailbox = Config::load(&config).expect("config").mailboxes.remove(0);
    let store = Store::open(&config.with_file_name("store")).expect("store");
    let credentials =
        oauth::credentials(&mailbox, Protocol::Imap, Some(store)).expect("credentials");
    imap_login(&mailbox, &credentials)
        .await
        .expect("login with the pasted grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_logins_refresh_revocation_and_the_daemon_against_dovecot_and_postfix() {
    let server = TokenServer::start().await;
    // A leftover instance from an earlier run points at an old token server port.
    mailstack(&["down"], None);
    mailstack(&["up"], Some(&server.url("/introspect")));
    let _guard = StackGuard;
    let stack = MailStack::from_file(&stack_dir().join("env"));
    let world = World {
        stack,
        server,
        dir: tempfile::tempdir().expect("tempdir"),
    };
    imap_logs_in_with_xoauth2_and_oauthbearer(&world).await;
    smtp_sends_with_xoauth2_and_oauthbearer(&world).await;
    long_tokens_log_in(&world).await;
    tokens_are_renewed_before_expiry_and_rotation_is_stored(&world).await;
    a_refused_token_is_replaced_after_the_auth_failure(&world).await;
    a_revoked_grant_gives_a_clear_error_and_backs_off(&world).await;
    the_daemon_answers_an_invitation_to_an_oauth_room(&world).await;
    a_revoked_grant_does_not_crash_loop_the_daemon(&world).await;
    oauth_login_stores_a_refresh_token_that_logs_in(&world).await;
    oauth_login_takes_a_pasted_redirect(&world).await;
    assert!(
        world.server.introspections() > 0,
        "Dovecot asked the token server"
    );
}
