//! A small IMAP client for the integration tests and the end-to-end benchmark: log in over
//! IMAPS with the stack's CA, append, search and fetch; plus the invitations they send.

use super::{MailStack, data, unique};
use futures_util::TryStreamExt;
use std::path::Path;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// The TLS stream under a test session.
pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;
/// A logged-in test session.
pub type Imap = async_imap::Session<Tls>;

/// Turns a readable `.eml` test file into wire form: CRLF line ends.
pub fn wire(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Invitation number `n` from `organizer` to `room`, with its own UID and time slot.
pub fn invitation(room: &str, organizer: &str, tag: &str, n: usize) -> (String, Vec<u8>) {
    let uid = format!("{tag}-{n}");
    let start = chrono::NaiveDate::from_ymd_opt(2027, 1, 4)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        + chrono::Duration::minutes(30 * n as i64);
    let end = start + chrono::Duration::minutes(30);
    let fmt = |t: chrono::NaiveDateTime| t.format("%Y%m%dT%H%M%SZ").to_string();
    let text = data("templates/faults/request.eml")
        .replace("{{UID}}", &uid)
        .replace("{{ROOM}}", &format!("{room}@example.test"))
        .replace("{{ROOM_NAME}}", room)
        .replace("{{ORGANIZER}}", organizer)
        .replace("{{N}}", &n.to_string())
        .replace("{{DTSTART}}", &fmt(start))
        .replace("{{DTEND}}", &fmt(end));
    (format!("{uid}@example.test"), wire(&text))
}

/// `count` invitations to `room` from alice; returns their Message-IDs and bytes.
pub fn invitations(room: &str, count: usize) -> (Vec<String>, Vec<Vec<u8>>) {
    let tag = unique(room);
    (0..count)
        .map(|n| invitation(room, "alice@example.test", &tag, n))
        .unzip()
}

pub async fn login(stack: &MailStack, user: &str) -> Imap {
    let tcp = tokio::net::TcpStream::connect((stack.host(), stack.port("MAILSTACK_IMAPS_PORT")))
        .await
        .expect("connect to IMAPS");
    let config = imipd::tls::client_config(Some(Path::new(stack.ca()))).expect("the stack's CA");
    let name = ServerName::try_from(stack.host().to_string()).expect("a server name");
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let mut client = async_imap::Client::new(tls);
    client.read_response().await.expect("greeting");
    client
        .login(format!("{user}@example.test"), stack.password(user))
        .await
        .map_err(|(e, _)| e)
        .expect("login")
}

/// Appends `messages` to `user`'s `folder` (one APPEND each; about 1,500 messages/s).
pub async fn append(stack: &MailStack, user: &str, folder: &str, messages: &[Vec<u8>]) {
    let mut imap = login(stack, user).await;
    for message in messages {
        imap.append(folder, None, None, message)
            .await
            .expect("APPEND");
        while imap.unsolicited_responses.try_recv().is_ok() {}
    }
    imap.logout().await.ok();
}

/// UIDs of `folder` matching `query` (empty when the folder does not exist).
pub async fn search(stack: &MailStack, user: &str, folder: &str, query: &str) -> usize {
    let mut imap = login(stack, user).await;
    let found = match imap.select(folder).await {
        Ok(_) => imap.uid_search(query).await.expect("UID SEARCH").len(),
        Err(_) => 0,
    };
    imap.logout().await.ok();
    found
}

/// Every message of `folder`, by UID, with the folder's UIDVALIDITY.
pub async fn messages(stack: &MailStack, user: &str, folder: &str) -> (u32, Vec<(u32, Vec<u8>)>) {
    let mut imap = login(stack, user).await;
    let mailbox = imap.select(folder).await.expect("SELECT");
    let mut all = Vec::new();
    if mailbox.exists > 0 {
        let mut uids: Vec<u32> = imap
            .uid_search("ALL")
            .await
            .expect("UID SEARCH")
            .into_iter()
            .collect();
        uids.sort_unstable();
        // In batches: async-imap re-parses a partial response from its start whenever more
        // bytes arrive, so one multi-megabyte FETCH response costs quadratic time.
        for batch in uids.chunks(50) {
            let fetched: Vec<_> = imap
                .uid_fetch(imipd::imap::uid_set(batch), "(UID BODY.PEEK[])")
                .await
                .expect("UID FETCH")
                .try_collect()
                .await
                .expect("UID FETCH");
            for f in &fetched {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    all.push((uid, body.to_vec()));
                }
            }
        }
    }
    imap.logout().await.ok();
    (mailbox.uid_validity.unwrap_or(0), all)
}
