//! Mail in and out: [`extract`] finds the calendar objects in a message and the facts about
//! its sender; [`compose`] writes the iMIP messages the engine decided to send. Neither decides
//! anything.
//!
//! - [`extract`]: the MIME walk (nested multiparts and forwarded messages, every transfer
//!   encoding and charset, duplicates flagged, TNEF converted).
//! - [`sender`]: From/Sender/Reply-To/Return-Path/Delivered-To, Authentication-Results, the
//!   thread ids and the auto-reply markers.
//! - [`authres`]: the RFC 8601 `Authentication-Results` parser.
//! - [`dsn`]: delivery status notifications (RFC 3464).
//! - [`tnef`]: meeting requests inside `winmail.dat` (MS-OXTNEF) to iCalendar.
//! - [`compose`]: RFC 6047 messages in the CalConnect layout.

pub mod authres;
pub mod compose;
pub mod dsn;
pub mod extract;
pub mod sender;
pub mod tnef;

pub use compose::{Composed, ReplyMail, compose_imip, reply_message_id};
pub use dsn::DeliveryReport;
pub use extract::{CalendarPart, ExtractError, Extracted, extract};
pub use sender::SenderFacts;
