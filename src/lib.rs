//! imipd: an email-integrated scheduling daemon.
//!
//! It watches mailboxes over IMAP, finds the calendar objects in each message, applies iTIP
//! (RFC 5546) to a sled store and answers over SMTP as iMIP (RFC 6047).
//!
//! # Layout
//!
//! The module tree is the data flow: raw message bytes arrive from [`imap`], [`mail::extract`]
//! finds the calendar parts and the sender facts, [`calendar`] parses them, [`itip`] decides
//! (with [`policy`] answering the resource questions), [`store`] commits the decision in one
//! transaction, and the [`smtp`] outbox worker sends the replies that [`mail::compose`] wrote.
//!
//! - [`config`]: the typed configuration (TOML file plus `IMIPD__` environment overrides),
//!   secrets from files or the environment, validated with messages that say what to write.
//! - [`calendar`]: iCalendar 2.0 parsing and writing (calcard), the scheduling view of an object
//!   (UID, SEQUENCE, DTSTAMP, ORGANIZER, ATTENDEEs) and the typed values the engine works with.
//! - [`mail`]: `extract` walks MIME (mail-parser) for calendar parts and sender facts; `compose`
//!   builds RFC 6047 iMIP messages (lettre's builder). It decides nothing.
//! - [`itip`]: the sans-IO engine. State, the incoming object, who we are, the policy's answer
//!   and `now` go in; the new stored object, the replies and the outcome come out.
//! - [`policy`]: the resource rules that answer accept, tentative or decline.
//! - [`store`]: the only module that touches sled: objects, the ledger of processed messages, the
//!   outbox and the IMAP checkpoints, changed in one transaction per message.
//! - [`imap`]: the async-imap session over rustls: login, select, fetch by UID, mark processed.
//! - [`smtp`]: the lettre transport and the outbox worker that drains the store's outbox.
//! - [`daemon`]: one task per mailbox plus the outbox worker, and an orderly shutdown.
//! - [`pipeline`]: everything after "raw message bytes arrived", shared by the daemon and the
//!   command line so that both do exactly the same thing.
//! - [`cli`]: the clap commands; no business logic.

pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod imap;
pub mod itip;
pub mod mail;
pub mod pipeline;
pub mod policy;
pub mod smtp;
pub mod store;
pub mod tls;
