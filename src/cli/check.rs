//! `imipd check`: loads the configuration and prints each mailbox's effective policy in
//! words, so an administrator sees what a room will answer before it answers anyone.

use crate::config::Config;
use std::path::Path;
use std::process::ExitCode;

/// Runs `check`: exit 0 and the policies, or 2 when the configuration does not load.
pub fn run(config: &Path) -> ExitCode {
    let config = match Config::load(config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("imipd: {e}");
            return ExitCode::from(2);
        }
    };
    for mailbox in &config.mailboxes {
        match &mailbox.name {
            Some(name) => println!("{} ({name}):", mailbox.address),
            None => println!("{}:", mailbox.address),
        }
        for line in mailbox.policy.describe() {
            println!("  - {line}");
        }
    }
    ExitCode::SUCCESS
}
