//! Server push: the mail server tells the daemon the moment it has delivered a message, and
//! the mailbox it names looks at its folders at once, instead of waiting for IDLE's notice
//! (Dovecot 2.3 holds `EXISTS` back a fixed 500 ms) or for the next poll.
//!
//! # The request
//!
//! `PUT /push` or `POST /push` on the `[http]` listener, with the secret of
//! `[http] push_token_file` as the password of HTTP Basic authentication (any user name) or
//! as a Bearer token, and a JSON body whose `"user"` names the mailbox: its address, one of
//! its aliases, or its IMAP login (compared without regard to case). Everything else in the
//! body is ignored: a push only makes the mailbox look, and what it finds is read from the
//! server as always, so a forged or replayed push costs a search and nothing more.
//!
//! | answer | when |
//! |---|---|
//! | `204 No Content` | the mailbox was woken |
//! | `401 Unauthorized` | the secret is missing or wrong |
//! | `404 Not Found` | no such mailbox, or no `push_token_file` configured |
//! | `400 Bad Request` | the body is not JSON with a string `"user"` |
//!
//! Wakes do not queue up: any number of pushes while a mailbox is busy make one more look.
//!
//! # Dovecot
//!
//! Dovecot's `push_notification` plugin with its `ox` driver sends exactly this request after
//! each delivery to an INBOX whose owner has set the private server METADATA key
//! [`METADATA_KEY`] to `user=<name>`. A mailbox with `push = true` sets that key to
//! `user=<its address>` at every login (when the server offers METADATA), so the server side
//! is configuration only:
//!
//! ```text
//! mail_attribute_dict = file:%h/dovecot-attributes
//! protocol imap {
//!   imap_metadata = yes
//! }
//! protocol lmtp {
//!   mail_plugins = $mail_plugins notify push_notification
//! }
//! plugin {
//!   push_notification_driver = ox:url=http://imipd:<token>@127.0.0.1:8787/push user_from_metadata
//! }
//! ```
//!
//! Any other server or hook (a Sieve `execute`, a Postfix content filter, a webhook of a
//! hosted service) can send the same request.

use crate::config::MailboxConfig;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// The private server METADATA entry Dovecot's `ox` push driver looks for (RFC 5464).
pub const METADATA_KEY: &str = "/private/vendor/vendor.dovecot/http-notify";

/// The value a mailbox registers under [`METADATA_KEY`]: the driver sends the part after
/// `user=` back as the push's `"user"`.
pub fn metadata_value(address: &str) -> String {
    format!("user={address}")
}

/// The body of a push: only the mailbox's name is used.
#[derive(Debug, serde::Deserialize)]
pub struct Notice {
    /// The mailbox: address, alias or IMAP login.
    pub user: String,
}

/// One wake signal per mailbox, found by every name a push may use for it. Cloned handles
/// share the map; [`Wakers::update`] replaces it on reload and keeps each mailbox's signal,
/// so a running task keeps listening to the one it was given.
#[derive(Clone, Default)]
pub struct Wakers {
    inner: Arc<RwLock<Names>>,
}

#[derive(Default)]
struct Names {
    /// By lower-cased address: the mailbox's signal.
    by_address: HashMap<String, Arc<Notify>>,
    /// Every lower-cased name (address, aliases, IMAP login): the address it stands for.
    names: HashMap<String, String>,
}

impl Wakers {
    /// Takes the mailboxes of a (re)loaded configuration.
    pub fn update(&self, mailboxes: &[MailboxConfig]) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut by_address = HashMap::new();
        let mut names = HashMap::new();
        for mailbox in mailboxes {
            let address = mailbox.address.to_ascii_lowercase();
            let signal = inner
                .by_address
                .get(&address)
                .cloned()
                .unwrap_or_else(|| Arc::new(Notify::new()));
            let login = mailbox.imap.login.username(&mailbox.address).to_string();
            for name in std::iter::once(&mailbox.address)
                .chain(&mailbox.aliases)
                .chain(std::iter::once(&login))
            {
                // An address wins over another mailbox's alias or login of the same spelling.
                names
                    .entry(name.to_ascii_lowercase())
                    .or_insert_with(|| address.clone());
            }
            names.insert(address.clone(), address.clone());
            by_address.insert(address, signal);
        }
        *inner = Names { by_address, names };
    }

    /// The signal of the mailbox at `address` (created when the mailbox is new).
    pub fn signal(&self, address: &str) -> Arc<Notify> {
        let address = address.to_ascii_lowercase();
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner
            .by_address
            .entry(address)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes the mailbox `name` stands for; its address, or `None` when there is none.
    pub fn wake(&self, name: &str) -> Option<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let address = inner.names.get(&name.trim().to_ascii_lowercase())?;
        let signal = inner.by_address.get(address)?;
        signal.notify_one();
        Some(address.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(address: &str, aliases: &[&str], login: Option<&str>) -> MailboxConfig {
        let login = login.map_or(String::new(), |l| format!("username = \"{l}\"\n"));
        let text = format!(
            r#"
address = "{address}"
aliases = [{aliases}]
[imap]
host = "localhost"
port = 993
tls = "implicit"
password_env = "X"
{login}
[smtp]
host = "localhost"
port = 465
tls = "implicit"
password_env = "X"
"#,
            aliases = aliases
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        toml::from_str(&text).expect("mailbox")
    }

    #[tokio::test]
    async fn a_push_wakes_the_mailbox_by_address_alias_or_login() {
        let wakers = Wakers::default();
        wakers.update(&[
            mailbox("Room1@example.org", &["r1@example.org"], Some("ROOM-ONE")),
            mailbox("room2@example.org", &[], None),
        ]);
        let room1 = wakers.signal("room1@example.org");
        let room2 = wakers.signal("ROOM2@example.org");
        for name in ["room1@EXAMPLE.org", "r1@example.org", "room-one"] {
            assert_eq!(wakers.wake(name).as_deref(), Some("room1@example.org"));
            tokio::time::timeout(std::time::Duration::from_secs(1), room1.notified())
                .await
                .expect("room1 woken");
        }
        assert_eq!(wakers.wake("nobody@example.org"), None);
        // room2 was never woken: its wait does not end.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), room2.notified())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_reload_keeps_the_signal_a_running_task_holds() {
        let wakers = Wakers::default();
        wakers.update(&[mailbox("room1@example.org", &[], None)]);
        let held = wakers.signal("room1@example.org");
        wakers.update(&[
            mailbox("room1@example.org", &["new@example.org"], None),
            mailbox("room2@example.org", &[], None),
        ]);
        assert_eq!(
            wakers.wake("new@example.org").as_deref(),
            Some("room1@example.org")
        );
        tokio::time::timeout(std::time::Duration::from_secs(1), held.notified())
            .await
            .expect("the held signal still wakes");
        wakers.update(&[mailbox("room2@example.org", &[], None)]);
        assert_eq!(wakers.wake("room1@example.org"), None);
    }

    #[tokio::test]
    async fn pushes_while_busy_make_one_more_look() {
        let wakers = Wakers::default();
        wakers.update(&[mailbox("room1@example.org", &[], None)]);
        let signal = wakers.signal("room1@example.org");
        for _ in 0..5 {
            wakers.wake("room1@example.org");
        }
        tokio::time::timeout(std::time::Duration::from_secs(1), signal.notified())
            .await
            .expect("one stored wake");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), signal.notified())
                .await
                .is_err(),
            "only one wake is stored"
        );
    }
}
