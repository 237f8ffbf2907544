//! The command line (clap). Each command parses its arguments and calls into the library;
//! no business logic lives here.

pub mod check;
pub mod oauth;
pub mod process;
pub mod show;

use crate::config::{Config, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Examples:
  imipd check --config /etc/imipd/imipd.toml --connect
  imipd run --config /etc/imipd/imipd.toml --log-format journald
  imipd show --store /var/lib/imipd/store --outbox

Environment:
  IMIPD_LOG            log filter, e.g. info (default), debug, info,imipd::imap=debug
  IMIPD__SECTION__KEY  overrides a key of the configuration file, e.g. IMIPD__STORE__PATH

Exit codes:
  0  success
  1  the work found a problem: check --connect failed (login, folder, port), store verify
     found inconsistencies, a message could not be processed, the daemon stopped on an error
  2  nothing was done: the configuration or the command line is wrong (the message names
     the key and line), or a file or the store cannot be opened (missing, locked)";

/// imipd: answers calendar invitations that arrive by e-mail (iTIP over iMIP).
///
/// It watches room and resource mailboxes over IMAP, applies the iTIP messages it finds to
/// its store, and answers the organisers over SMTP as the mailbox's policy says.
#[derive(Debug, Parser)]
#[command(version = version(), long_version = long_version(), about, after_help = AFTER_HELP)]
pub struct Cli {
    /// How log lines are written: text (default; no timestamps under systemd), json, or
    /// journald (native journal records). Wins over [log] format in the configuration.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

/// The version line: the crate version and the features compiled in.
fn version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (cargo features: ",
        env!("IMIPD_FEATURES"),
        "; built in: tls-rustls-ring, metrics-prometheus, log-json, log-journald, sd-notify)"
    )
}

/// `--version` in long form: also the protocol and the output formats.
fn long_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        "\ncargo features: ",
        env!("IMIPD_FEATURES"),
        "\nbuilt in: tls-rustls-ring, metrics-prometheus, log-json, log-journald, sd-notify",
        "\nsupports: iTIP (RFC 5546) over iMIP (RFC 6047); iCalendar 2.0, vCalendar 1.0, TNEF; \
         IMAP IDLE/MOVE/UIDPLUS; SMTP STARTTLS/implicit TLS; Prometheus metrics; \
         log formats text, json, journald; sd_notify and watchdog"
    )
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch every configured mailbox and answer what arrives.
    ///
    /// Runs in the foreground (systemd Type=notify: READY, RELOADING, STOPPING, watchdog).
    /// SIGHUP reloads the configuration; SIGTERM finishes the message and the send in hand.
    #[command(
        after_help = "Examples:\n  imipd run --config /etc/imipd/imipd.toml\n  IMIPD_LOG=debug imipd run --config ./imipd.toml --log-format json\n\nExit codes: 0 stopped by SIGTERM/SIGINT, 1 stopped on an error (store, signals), 2 the configuration is wrong."
    )]
    Run {
        /// The configuration file.
        #[arg(long, default_value = "/etc/imipd/imipd.toml")]
        config: PathBuf,
    },
    /// Load and validate the configuration, print it (secrets masked) and each mailbox's
    /// policy in words; with --connect, also log in to every IMAP and SMTP server.
    ///
    /// Like `postconf -n`/`doveconf -n`: what imipd will really use, defaults filled in.
    /// With --connect each server is reached with the configured TLS and credentials, its
    /// capabilities are listed (IMAP: IDLE, MOVE, CONDSTORE, UIDPLUS; SMTP: STARTTLS, AUTH
    /// mechanisms) and every watched folder is looked up (the quarantine and processed
    /// folders are created on first use). Exits 1 with one line per failure.
    #[command(
        after_help = "Examples:\n  imipd check --config /etc/imipd/imipd.toml\n  imipd check --config /etc/imipd/imipd.toml --connect\n\nExit codes: 0 all good, 1 a server or folder check failed, 2 the configuration is wrong."
    )]
    Check {
        /// The configuration file.
        #[arg(long, default_value = "/etc/imipd/imipd.toml")]
        config: PathBuf,
        /// Also connect and log in to every IMAP and SMTP server, and look up the folders.
        #[arg(long)]
        connect: bool,
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
    /// Export, import or verify a store (backup, restore, consistency check).
    ///
    /// Stop the daemon first: a store is used by one process at a time.
    #[command(
        after_help = "Examples:\n  imipd store export --store /var/lib/imipd/store > backup.ics\n  imipd store import --store /var/lib/imipd/store.new backup.ics\n  imipd store verify --store /var/lib/imipd/store\n\nExit codes: 0 done, 1 verify found inconsistencies, 2 the store or the file cannot be opened."
    )]
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

/// Log targets that print protocol lines holding credentials, capped at `info`.
const WIRE_LOGGERS: [&str; 3] = [
    "lettre::transport::smtp=info",
    "async_imap=info",
    "imap_proto=info",
];

/// Sets up tracing on standard error (or the journal) in `format`, filtered by `IMIPD_LOG`
/// (default `info`).
///
/// Under systemd (`JOURNAL_STREAM` set) text lines carry no timestamp: the journal adds its
/// own. `journald` falls back to text when the journal socket cannot be reached.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    // lettre writes every SMTP command at debug level and async-imap every IMAP command at
    // trace level, credentials (passwords, OAuth 2.0 tokens) included: both are held at info
    // whatever IMIPD_LOG asks.
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMIPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The protocol libraries write every line they send at debug/trace level, the AUTH
    // PLAIN exchange (lettre) and the LOGIN command (async-imap) included: capped whatever
    // IMIPD_LOG says, so that no filter setting can put a password in the log.
    let filter = WIRE_LOGGERS.iter().fold(filter, |filter, directive| {
        filter.add_directive(directive.parse().expect("a valid static directive"))
    });
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let text = || -> Boxed {
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(!under_journal && std::io::IsTerminal::is_terminal(&std::io::stderr()));
        if under_journal {
            layer.without_time().boxed()
        } else {
            layer.boxed()
        }
    };
    let mut fallback = None;
    let layer: Boxed = match format {
        LogFormat::Text => text(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => layer.with_syslog_identifier("imipd".into()).boxed(),
            Err(e) => {
                fallback = Some(e);
                text()
            }
        },
    };
    // A second initialisation (tests calling into the CLI twice) keeps the first.
    if tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok()
        && let Some(e) = fallback
    {
        tracing::warn!(error = %e, "the journal is not reachable; logging text to standard error");
    }
}

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    if !matches!(cli.command, Command::Run { .. }) {
        restore_sigpipe();
    }
    match cli.command {
        Command::Process(args) => process::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Check { config, connect } => check::run(&config, connect, log_format),
        Command::Store { command } => crate::store::cli::run(&command),
        Command::Convert { to, file } => convert(to, &file),
        Command::Oauth { command } => oauth::run(&command),
        Command::Run { config } => {
            let path = config;
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("imipd: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(log_format.or(config.log.format).unwrap_or(LogFormat::Text));
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

/// Lets a closed standard output end a one-shot command quietly, as it ends `cat` (`imipd show
/// --ledger | head`): Rust ignores SIGPIPE, so `println!` would panic on the broken pipe
/// instead. Sockets are unaffected (the standard library sends with `MSG_NOSIGNAL`); the
/// daemon keeps SIGPIPE ignored all the same.
fn restore_sigpipe() {
    // SAFETY: called once at start-up, before any thread exists; setting a signal's
    // disposition to its default has no other effect on this process's memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
