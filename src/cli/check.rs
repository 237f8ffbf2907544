//! `imipd check`: loads the configuration, prints it as imipd will use it (defaults filled
//! in, secrets never shown) and each mailbox's policy in words, so an administrator sees what
//! a room will answer before it answers anyone. With `--connect` it also logs in to every
//! IMAP and SMTP server, lists their capabilities and looks up the folders.

use crate::config::{Config, ImapConfig, LogFormat, Login, MailboxConfig, SmtpConfig, TlsMode};
use crate::imap::ImapSession;
use std::path::Path;
use std::process::ExitCode;

/// Runs `check`: exit 0 when everything is fine, 1 when a server or folder check failed,
/// 2 when the configuration does not load.
pub fn run(path: &Path, connect: bool, log_format: Option<LogFormat>) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("imipd: {e}");
            return ExitCode::from(2);
        }
    };
    // The push secret is read at start-up: an unreadable or too short one stops the daemon,
    // so it is checked here too.
    if let Some(http) = &config.http
        && let Err(e) = http.push_token()
    {
        eprintln!("imipd: {e}");
        return ExitCode::from(2);
    }
    println!("# {}: valid", path.display());
    print_effective(&config);
    println!();
    println!("# what each mailbox answers");
    for mailbox in &config.mailboxes {
        match &mailbox.name {
            Some(name) => println!("{} ({name}):", mailbox.address),
            None => println!("{}:", mailbox.address),
        }
        for line in mailbox.policy.describe() {
            println!("  - {line}");
        }
    }
    if !connect {
        return ExitCode::SUCCESS;
    }
    super::init_logging(log_format.or(config.log.format).unwrap_or(LogFormat::Text));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let mut failures = Vec::new();
    for mailbox in &config.mailboxes {
        println!();
        println!("{} connection:", mailbox.address);
        failures.extend(runtime.block_on(check_imap(mailbox)));
        failures.extend(runtime.block_on(check_smtp(mailbox)));
    }
    if failures.is_empty() {
        println!();
        println!("# all servers reachable, logins accepted, folders present");
        return ExitCode::SUCCESS;
    }
    for failure in &failures {
        eprintln!("imipd: check failed: {failure}");
    }
    ExitCode::FAILURE
}

/// Prints the effective configuration in the file's own syntax, defaults filled in and
/// password sources named but never read out.
fn print_effective(config: &Config) {
    println!("[store]");
    println!("path = {:?}", config.store.path.display().to_string());
    println!();
    println!("[log]");
    let format = match config.log.format {
        Some(LogFormat::Json) => "json",
        Some(LogFormat::Journald) => "journald",
        Some(LogFormat::Text) | None => "text",
    };
    println!("format = {format:?}");
    println!();
    println!("[metrics]");
    match &config.metrics.listen {
        Some(listen) => println!("listen = {listen:?}"),
        None => println!("# listen not set: no metrics endpoint"),
    }
    println!();
    println!("[http]");
    match &config.http {
        Some(http) => {
            println!("listen = {:?}", http.listen.to_string());
            match &http.push_token_file {
                Some(path) => println!("push_token_file = {:?}", path.display().to_string()),
                None => println!("# push_token_file not set: no /push"),
            }
        }
        None => println!("# listen not set: nothing published, no /push"),
    }
    for mailbox in &config.mailboxes {
        print_mailbox(mailbox);
    }
}

fn print_mailbox(m: &MailboxConfig) {
    println!();
    println!("[[mailbox]]");
    println!("address = {:?}", m.address);
    if let Some(name) = &m.name {
        println!("name = {name:?}");
    }
    println!("aliases = {:?}", m.aliases);
    println!("folders = {:?}", m.folders);
    match &m.sent_folder {
        Some(folder) => println!("sent_folder = {folder:?}"),
        None => println!("# sent_folder not set: the Sent folder is not watched"),
    }
    let processed = match m.processed {
        crate::config::ProcessedAction::Flag => "flag",
        crate::config::ProcessedAction::Move => "move",
        crate::config::ProcessedAction::Delete => "delete",
    };
    println!("processed = {processed:?}");
    if let Some(folder) = &m.processed_folder {
        println!("processed_folder = {folder:?}");
    }
    println!("quarantine_folder = {:?}", m.quarantine_folder);
    println!("idle = {}", m.idle);
    println!("push = {}", m.push);
    println!("poll_interval_secs = {}", m.poll_interval_secs);
    println!("fetch_batch = {}", m.fetch_batch);
    println!("fetch_batch_bytes = {}", m.fetch_batch_bytes);
    println!();
    println!("[mailbox.imap]");
    print_server(
        &m.imap.host,
        m.imap.port,
        m.imap.tls,
        m.imap.ca_file.as_deref(),
        m.imap.allow_plaintext,
    );
    print_login(&m.imap.login, &m.address);
    println!();
    println!("[mailbox.smtp]");
    print_server(
        &m.smtp.host,
        m.smtp.port,
        m.smtp.tls,
        m.smtp.ca_file.as_deref(),
        m.smtp.allow_plaintext,
    );
    print_login(&m.smtp.login, &m.address);
    println!("retry_initial_secs = {}", m.smtp.retry_initial_secs);
    println!("retry_max_secs = {}", m.smtp.retry_max_secs);
}

fn tls_name(tls: TlsMode) -> &'static str {
    match tls {
        TlsMode::Implicit => "implicit",
        TlsMode::Starttls => "starttls",
        TlsMode::None => "none",
    }
}

fn tls_label(tls: TlsMode) -> &'static str {
    match tls {
        TlsMode::Implicit => "implicit TLS",
        TlsMode::Starttls => "STARTTLS",
        TlsMode::None => "no TLS",
    }
}

fn print_server(host: &str, port: u16, tls: TlsMode, ca: Option<&Path>, plain: bool) {
    println!("host = {host:?}");
    println!("port = {port}");
    println!("tls = {:?}", tls_name(tls));
    match ca {
        Some(ca) => println!("ca_file = {:?}", ca.display().to_string()),
        None => println!("# ca_file not set: the public web PKI roots are trusted"),
    }
    if plain {
        println!("allow_plaintext = true");
    }
}

/// The login and where the password comes from; the password itself is shown only as
/// "(set)" or "(missing: why)".
fn print_login(login: &Login, address: &str) {
    println!("username = {:?}", login.username(address));
    let state = match login.password(address) {
        Ok(p) if p.is_empty() => "empty!".to_string(),
        Ok(_) => "set, ********".to_string(),
        Err(e) => format!("NOT READABLE: {e}"),
    };
    if let Some(file) = &login.password_file {
        println!(
            "password_file = {:?}  # {state}",
            file.display().to_string()
        );
    }
    if let Some(var) = &login.password_env {
        println!("password_env = {var:?}  # {state}");
    }
}

fn yes_no(present: bool) -> &'static str {
    if present { "yes" } else { "NO" }
}

/// Logs in to the mailbox's IMAP server and looks up its folders; the failures, one line each.
async fn check_imap(m: &MailboxConfig) -> Vec<String> {
    let ImapConfig {
        host, port, tls, ..
    } = &m.imap;
    let server = format!("imap {host}:{port} ({})", tls_label(*tls));
    let fail = |what: String| vec![format!("{}: {server}: {what}", m.address)];
    let user = m.imap.login.username(&m.address);
    let password = match m.imap.login.password(&m.address) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let mut session = match ImapSession::connect(&m.imap, user, &password).await {
        Ok(session) => session,
        Err(e) => return fail(e.to_string()),
    };
    println!("  {server}: logged in as {user}");
    let caps = session.capability_names();
    let has = |name: &str| caps.iter().any(|c| c.eq_ignore_ascii_case(name));
    println!("    capabilities: {}", caps.join(" "));
    println!(
        "    IDLE {} (else polling every {} s), MOVE {} (else COPY + EXPUNGE), CONDSTORE {}, UIDPLUS {}",
        yes_no(has("IDLE")),
        m.poll_interval_secs,
        yes_no(has("MOVE")),
        yes_no(has("CONDSTORE")),
        yes_no(has("UIDPLUS")),
    );
    let folders = match session.list_folders().await {
        Ok(folders) => folders,
        Err(e) => {
            session.logout().await;
            return fail(e.to_string());
        }
    };
    let mut failures = Vec::new();
    let present = |f: &str| {
        folders.iter().any(|have| {
            have == f || (f.eq_ignore_ascii_case("INBOX") && have.eq_ignore_ascii_case("INBOX"))
        })
    };
    for folder in &m.folders {
        if present(folder) {
            println!("    folder {folder:?}: present (watched)");
        } else {
            failures.push(format!(
                "{}: {server}: the watched folder {folder:?} does not exist; create it or fix folders = [...] (the server has: {})",
                m.address,
                folders.join(", ")
            ));
        }
    }
    if let Some(folder) = &m.sent_folder {
        if present(folder) {
            println!("    folder {folder:?}: present (sent_folder, watched)");
        } else {
            failures.push(format!(
                "{}: {server}: sent_folder {folder:?} does not exist; write the name the server uses (it has: {})",
                m.address,
                folders.join(", ")
            ));
        }
    }
    for (key, folder) in std::iter::once(("quarantine_folder", &m.quarantine_folder))
        .chain(m.processed_folder.as_ref().map(|f| ("processed_folder", f)))
    {
        if present(folder) {
            println!("    folder {folder:?}: present ({key})");
        } else {
            println!("    folder {folder:?}: to be created on first use ({key})");
        }
    }
    session.logout().await;
    failures
}

/// Logs in to the mailbox's submission server; the failures, one line each.
async fn check_smtp(m: &MailboxConfig) -> Vec<String> {
    let SmtpConfig {
        host, port, tls, ..
    } = &m.smtp;
    let server = format!("smtp {host}:{port} ({})", tls_label(*tls));
    let fail = |what: String| vec![format!("{}: {server}: {what}", m.address)];
    let user = m.smtp.login.username(&m.address);
    let password = match m.smtp.login.password(&m.address) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    match crate::smtp::probe(&m.smtp, user, &password).await {
        Ok(probe) => {
            println!("  {server}: {} logged in as {user}", probe.name);
            println!("    extensions: {}", probe.extensions.join(", "));
            Vec::new()
        }
        Err(e) => fail(e.to_string()),
    }
}
