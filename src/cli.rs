//! The command line (clap). Each command parses its arguments and calls into the library;
//! no business logic lives here.

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// imipd: answers calendar invitations that arrive by e-mail (iTIP over iMIP).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch every configured mailbox and answer what arrives.
    ///
    /// Example: imipd run --config /etc/imipd/imipd.toml
    Run {
        /// The configuration file.
        #[arg(long, default_value = "/etc/imipd/imipd.toml")]
        config: PathBuf,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMIPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            init_logging();
            let path = config;
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("imipd: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("the tokio runtime starts");
            match runtime.block_on(crate::daemon::run(config, Some(path))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("imipd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
