//! `imipd oauth login --mailbox ADDR`: stores the first refresh token of a delegated
//! OAuth 2.0 flow (see [`crate::oauth::login`]).

use crate::config::{AuthMethod, Config, MailboxConfig, OAuth2Config};
use crate::oauth::login;
use crate::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

/// `imipd oauth …`
#[derive(Debug, clap::Subcommand)]
pub enum OAuthCommand {
    /// Obtain and store the refresh token of a mailbox with flow = "refresh_token".
    ///
    /// Prints the provider's authorisation URL; open it in a browser and sign in as the
    /// mailbox (or an account allowed to use it). Without redirect_url in the configuration,
    /// a listener on 127.0.0.1 receives the answer (register http://127.0.0.1 as a redirect
    /// URI of the app; providers allow any port for loopback). With --paste, or a redirect_url
    /// that is not loopback, paste the address the browser ended on (or the code).
    /// Run it while the daemon is stopped: the store allows one process at a time.
    ///
    /// Example: imipd oauth login --config /etc/imipd/imipd.toml --mailbox room1@example.org
    Login {
        /// The configuration file.
        #[arg(long, default_value = "/etc/imipd/imipd.toml")]
        config: PathBuf,
        /// The mailbox's address as configured.
        #[arg(long)]
        mailbox: String,
        /// Read the answer from standard input instead of listening for the redirect.
        #[arg(long)]
        paste: bool,
    },
}

/// The oauth2 section a login is for: IMAP's, else SMTP's.
fn section(mailbox: &MailboxConfig) -> Option<&OAuth2Config> {
    if mailbox.imap.auth == AuthMethod::Oauth2 {
        mailbox.imap.oauth2.as_ref()
    } else if mailbox.smtp.auth == AuthMethod::Oauth2 {
        mailbox.smtp_oauth2()
    } else {
        None
    }
}

/// Runs an `imipd oauth` command: exit 0 when the refresh token is stored, 1 when the
/// login failed, 2 for a configuration problem.
pub fn run(command: &OAuthCommand) -> ExitCode {
    let OAuthCommand::Login {
        config,
        mailbox,
        paste,
    } = command;
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("imipd: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(mailbox) = config
        .mailboxes
        .iter()
        .find(|m| m.address.eq_ignore_ascii_case(mailbox))
    else {
        eprintln!("imipd: no [[mailbox]] with address {mailbox} in the configuration");
        return ExitCode::from(2);
    };
    let Some(oauth2) = section(mailbox) else {
        eprintln!(
            "imipd: mailbox {}: neither [mailbox.imap] nor [mailbox.smtp] has auth = \"oauth2\"",
            mailbox.address
        );
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(login_flow(&config, mailbox, oauth2, *paste)) {
        Ok(()) => {
            println!(
                "imipd: the refresh token of {} is stored in {}",
                mailbox.address,
                config.store.path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imipd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn login_flow(
    config: &Config,
    mailbox: &MailboxConfig,
    oauth2: &OAuth2Config,
    paste: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    // Open the store first: a running daemon holds it, and the code must not be wasted.
    let store = Store::open(&config.store.path)?;
    let listener = match (&oauth2.redirect_url, paste) {
        (_, true) => None,
        (Some(url), false) => {
            let parsed = url::Url::parse(url)?;
            let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            match (loopback, parsed.port()) {
                (true, Some(port)) => {
                    Some(tokio::net::TcpListener::bind(("127.0.0.1", port)).await?)
                }
                _ => None,
            }
        }
        (None, false) => Some(tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?),
    };
    let redirect_url = match (&oauth2.redirect_url, &listener) {
        (Some(url), _) => url.clone(),
        (None, Some(listener)) => format!("http://127.0.0.1:{}/", listener.local_addr()?.port()),
        (None, None) => {
            return Err("--paste needs redirect_url in the oauth2 section (the address registered for the app)".into());
        }
    };
    let request = login::start(&mailbox.address, oauth2, &redirect_url)?;
    println!(
        "Open this address in a browser and sign in as {}:\n\n{}\n",
        mailbox.address, request.url
    );
    let answer = match &listener {
        Some(listener) => {
            println!("Waiting for the browser to come back to {redirect_url} …");
            login::wait_for_redirect(listener).await?
        }
        None => {
            println!("Paste the address the browser ended on (or the code), then Enter:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    let code = login::code_from(&request, &answer)?;
    login::finish(&mailbox.address, oauth2, request, &code, &store).await?;
    Ok(())
}
