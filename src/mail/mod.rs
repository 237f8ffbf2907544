//! Mail in and out: [`extract`] finds the calendar objects in a message and the facts about
//! its sender; [`compose`] writes the iMIP messages the engine decided to send. Neither decides
//! anything.

pub mod compose;
pub mod extract;

pub use compose::{Composed, ReplyMail, compose_imip, reply_message_id};
pub use extract::{CalendarPart, ExtractError, Extracted, SenderFacts, extract};
