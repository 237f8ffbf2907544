//! A plain IMAP client for the server's own limits: commands written as text over IMAPS,
//! responses read as bytes and only scanned for the tagged end (no parsing), so what it
//! measures is the server.

use super::common::MailStack;
use std::path::Path;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A logged-in plain session.
pub struct Raw {
    stream: Tls,
    buffer: Vec<u8>,
    tag: u32,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Raw {
    pub async fn login(stack: &MailStack, user: &str) -> Raw {
        let tcp =
            tokio::net::TcpStream::connect((stack.host(), stack.port("MAILSTACK_IMAPS_PORT")))
                .await
                .expect("connect to IMAPS");
        tcp.set_nodelay(true).ok();
        let config =
            imipd::tls::client_config(Some(Path::new(stack.ca()))).expect("the stack's CA");
        let name = ServerName::try_from(stack.host().to_string()).expect("a server name");
        let stream = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut raw = Raw {
            stream,
            buffer: Vec::new(),
            tag: 0,
        };
        raw.read_until(b"\r\n").await;
        let password = stack.password(user).to_string();
        raw.command(&format!("LOGIN {user}@example.test \"{password}\""))
            .await;
        raw
    }

    /// Reads until `needle` is in the buffer; returns everything up to and including it
    /// (and keeps the rest).
    async fn read_until(&mut self, needle: &[u8]) -> Vec<u8> {
        let mut searched = 0;
        loop {
            if let Some(at) = find(&self.buffer[searched..], needle) {
                let end = searched + at + needle.len();
                let rest = self.buffer.split_off(end);
                return std::mem::replace(&mut self.buffer, rest);
            }
            searched = self.buffer.len().saturating_sub(needle.len());
            let mut chunk = vec![0u8; 256 * 1024];
            let n = self.stream.read(&mut chunk).await.expect("read from IMAP");
            assert!(n > 0, "the IMAP server closed the connection");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Runs one command; returns the whole response (untagged lines and the tagged end).
    pub async fn command(&mut self, command: &str) -> Vec<u8> {
        self.tag += 1;
        let tag = format!("r{}", self.tag);
        self.stream
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .expect("write to IMAP");
        // A CRLF in front, so that a tagged answer with nothing before it is found too.
        self.buffer.splice(0..0, *b"\r\n");
        let response = self.read_until(format!("\r\n{tag} ").as_bytes()).await;
        let status = self.read_until(b"\r\n").await;
        assert!(
            status.starts_with(b"OK"),
            "{command}: {}",
            String::from_utf8_lossy(&status)
        );
        response
    }

    pub async fn start_idle(&mut self) {
        self.tag += 1;
        let tag = format!("r{}", self.tag);
        self.stream
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await
            .expect("write IDLE");
        self.read_until(b"+ ").await;
        self.read_until(b"\r\n").await;
    }

    pub async fn wait_exists(&mut self) {
        self.read_until(b" EXISTS\r\n").await;
    }

    pub async fn done(&mut self) {
        self.stream
            .write_all(b"DONE\r\n")
            .await
            .expect("write DONE");
        let tag = format!("r{} ", self.tag);
        // The tagged OK may follow untagged lines.
        loop {
            let line = self.read_until(b"\r\n").await;
            if line.starts_with(tag.as_bytes()) {
                break;
            }
        }
    }
}

/// A plain `UID FETCH 1:* BODY.PEEK[]` of `user`'s INBOX: messages, bytes and seconds.
pub async fn fetch_all(stack: &MailStack, user: &str) -> (usize, usize, f64) {
    let mut raw = Raw::login(stack, user).await;
    raw.command("SELECT INBOX").await;
    let started = Instant::now();
    let response = raw.command("UID FETCH 1:* BODY.PEEK[]").await;
    let secs = started.elapsed().as_secs_f64();
    // Every message's response starts with "* <n> FETCH (".
    let messages = response.windows(8).filter(|w| *w == b" FETCH (").count();
    (messages, response.len(), secs)
}
