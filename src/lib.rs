//! imipd: an email-integrated scheduling daemon.
//!
//! It watches mailboxes over IMAP, finds the calendar objects in each message, applies iTIP
//! (RFC 5546) to a sled store and answers over SMTP as iMIP (RFC 6047).
//!
//! # Layout
//!
//! The module tree is the data flow: raw message bytes arrive from [`imap`], [`mail::extract()`]
//! finds the calendar parts and the sender facts, [`calendar`] parses them, [`itip`] decides
//! (with [`policy`] answering the resource questions), [`store`] commits the decision in one
//! transaction, and the [`smtp`] outbox worker sends the replies that [`mail::compose`] wrote.
//!
//! - [`config`]: the typed configuration (TOML file plus `IMIPD__` environment overrides),
//!   secrets from files or the environment, validated with messages that say what to write.
//! - [`calendar`]: iCalendar 2.0 read and written with calcard (plus the guards and writer fixes
//!   calcard lacks), vCalendar 1.0 converted into the same model (`vcal1`), time zones (`tz`),
//!   recurrence expansion with hard caps (`recur`), exports to iCalendar, jCal and hCalendar
//!   (`export`), and the scheduling view the engine reads (UID, SEQUENCE, ORGANIZER, ATTENDEEs).
//! - [`mail`]: `extract` walks MIME (mail-parser) for calendar parts (TNEF included), sender facts,
//!   Authentication-Results and delivery reports; `compose` builds RFC 6047 iMIP messages (lettre's
//!   builder). It decides nothing.
//! - [`itip`]: the sans-IO engine, one module per method. State, the incoming object, who we are,
//!   the policy's answer and `now` go in; the new stored object, the replies and the outcome come out.
//! - [`policy`]: the resource rules (automation, conflicts over the busy index, booking window,
//!   durations, working hours, series thresholds, who may book, organiser classes) that answer
//!   accept, tentative, held for a delegate or decline, with the reason given to the organiser;
//!   `policy::privacy::scrub` decides what the stored and shown copy of a booking keeps.
//! - [`store`]: the only module that touches sled: objects, the busy index, the ledger of processed
//!   messages, the outbox, dead letters and IMAP checkpoints, changed in one transaction per message.
//! - [`imap`]: the async-imap session over rustls: login, select, IDLE, fetch by UID in batches,
//!   mark, move or delete processed mail, quarantine.
//! - [`smtp`]: the lettre transport, the outbox worker that drains the store's outbox, and
//!   `delivery`: bounces and refusals of our replies recorded as `SCHEDULE-STATUS`.
//! - [`oauth`]: OAuth 2.0 for cloud mailboxes: token sources (client credentials, refresh
//!   token kept in the store), renewal and backoff, SASL XOAUTH2/OAUTHBEARER, `oauth login`.
//! - [`tls`]: the rustls client settings (web PKI roots or a configured CA file).
//! - [`daemon`]: one task per mailbox plus the outbox worker, SIGHUP reload, sd_notify, and an
//!   orderly shutdown.
//! - [`pipeline`]: everything after "raw message bytes arrived", shared by the daemon and the
//!   command line so that both do exactly the same thing.
//! - [`publish`]: the mailbox's calendar for others: the iCalendar feed, jCal, the hCalendar
//!   page and free/busy, with the privacy levels; its `http` module is the daemon's optional
//!   HTTP listener (axum).
//! - [`push`]: server push (`/push` on the same listener, Dovecot's `ox` push driver) wakes a
//!   mailbox the moment a message is delivered.
//! - [`metrics`]: the Prometheus counters every part records into, served by axum on
//!   `[metrics] listen` (off by default).
//! - [`cli`]: the clap commands (`run`, `check`, `process`, `show`, `convert`, `store`, `oauth`); no
//!   business logic.

pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod imap;
pub mod itip;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod pipeline;
pub mod policy;
pub mod publish;
pub mod push;
pub mod smtp;
pub mod store;
pub mod tls;
