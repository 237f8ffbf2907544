//! The command line (clap). Each command parses its arguments and calls into the library;
//! no business logic lives here.

pub mod check;
pub mod oauth;
pub mod process;
pub mod show;

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
    /// Load the configuration and print each mailbox's effective policy in words.
    ///
    /// Example: imipd check --config /etc/imipd/imipd.toml
    Check {
        /// The configuration file.
        #[arg(long, default_value = "/etc/imipd/imipd.toml")]
        config: PathBuf,
    },
    /// Apply message files to a store exactly as the daemon would for a message arriving at
    /// MAILBOX, and print one JSON object per calendar object acted on.
    ///
    /// Example: imipd process --store ./state --mailbox room1@example.test --now 2027-01-02T08:00:00Z invite.eml
    Process(process::ProcessArgs),
    /// Print the objects a store holds, or with --ledger, --outbox, --dead or --objects its
    /// bookkeeping, one JSON object per line.
    ///
    /// Example: imipd show --store ./state --mailbox room1@example.test --format json
    /// Example: imipd show --store /var/lib/imipd --ledger
    Show(show::ShowArgs),
    /// Export, import or verify a store.
    Store {
        #[command(subcommand)]
        command: crate::store::cli::StoreCommand,
    },
    /// OAuth 2.0 for cloud mailboxes: `imipd oauth login` stores a mailbox's first refresh
    /// token.
    Oauth {
        #[command(subcommand)]
        command: oauth::OAuthCommand,
    },
    /// Convert a calendar file to iCalendar 2.0, jCal or an hCalendar HTML page.
    ///
    /// FILE may be an .ics (iCalendar 2.0), a .vcs (vCalendar 1.0) or an .eml message (its
    /// calendar parts are converted). The result goes to standard output; defects found in
    /// the input are listed on standard error.
    ///
    /// Example: imipd convert --to jcal invite.eml
    Convert {
        /// The output format.
        #[arg(long, value_enum, default_value = "ics")]
        to: ConvertFormat,
        /// The file to convert.
        file: PathBuf,
    },
}

/// The formats of `imipd convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertFormat {
    /// iCalendar 2.0 (RFC 5545).
    Ics,
    /// jCal (RFC 7265).
    Jcal,
    /// HTML with hCalendar microformats.
    Html,
}

fn init_logging() {
    // lettre writes every SMTP command at debug level and async-imap every IMAP command at
    // trace level, credentials (passwords, OAuth 2.0 tokens) included: both are held at info
    // whatever IMIPD_LOG asks.
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMIPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive(
            "lettre::transport::smtp::client=info"
                .parse()
                .expect("a valid directive"),
        )
        .add_directive(
            "async_imap::imap_stream=info"
                .parse()
                .expect("a valid directive"),
        );
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
        Command::Process(args) => process::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Check { config } => check::run(&config),
        Command::Store { command } => crate::store::cli::run(&command),
        Command::Convert { to, file } => convert(to, &file),
        Command::Oauth { command } => oauth::run(&command),
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

/// `imipd convert`: exit 0 with the converted text, 1 when the input cannot be read or holds
/// no calendar object.
fn convert(to: ConvertFormat, file: &std::path::Path) -> ExitCode {
    use crate::calendar::{self, export};
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("imipd: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let calendars = match calendar::parse_file(&bytes, file) {
        Ok(calendars) => calendars,
        Err(e) => {
            eprintln!("imipd: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    for ical in &calendars {
        for defect in calendar::defects(ical) {
            eprintln!("imipd: {}: {defect}", file.display());
        }
    }
    let format = match to {
        ConvertFormat::Ics => export::Format::Ics,
        ConvertFormat::Jcal => export::Format::Jcal,
        ConvertFormat::Html => export::Format::Html,
    };
    print!("{}", export::export(&calendars, format));
    ExitCode::SUCCESS
}
