//! The daemon's optional HTTP listener (`[http] listen = "127.0.0.1:8787"`; off when absent),
//! serving each published mailbox under `/calendars/<mailbox address>/`:
//!
//! | path | content |
//! |---|---|
//! | `calendar.ics` | the feed, `METHOD:PUBLISH` (`text/calendar`) |
//! | `calendar.json` | the same feed as jCal (`application/calendar+json`) |
//! | `calendar.html` | the hCalendar page of the upcoming bookings; `?days=` (1–92, default 14) |
//! | `freebusy.ifb` | VFREEBUSY for `?start=&end=` (RFC 5545 UTC, e.g. `20270104T000000Z`), bounded as [`super::freebusy_range`] says |
//!
//! # Access
//!
//! A mailbox is readable with `?token=<publish_token>` (compared in constant time, as
//! SHA-256 digests so that the length does not leak either), or by anyone when it has
//! `publish_public = true`. Every refusal is the same `404 Not Found` with the same body,
//! whether the mailbox does not exist, is not published, or the token is missing or wrong:
//! a stranger cannot tell a configured mailbox from an unknown address, which a `403` for
//! known mailboxes would reveal. An unknown mailbox is checked against a random token too, so
//! the time taken does not tell either. Only an authorised request can get a `400` (a bad
//! `start`/`end`/`days`).
//!
//! # Caching
//!
//! Every answer carries a strong `ETag` (a digest of the content) and `Last-Modified` (when
//! this process first saw that content; its start time at the latest), and honours
//! `If-None-Match` (which wins) and `If-Modified-Since` with `304 Not Modified`, so a
//! subscribed client polling every few minutes costs one store read and no transfer.
//! `Cache-Control: private` keeps shared caches from keeping token-protected data, and
//! `Referrer-Policy: no-referrer` keeps the token out of other sites' logs.

use super::{Publication, bookings, feed, freebusy_periods, freebusy_publish, freebusy_range};
use crate::calendar::export;
use crate::config::MailboxConfig;
use crate::store::Store;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The body of every refusal.
const NOT_FOUND: &str = "not found\n";

/// What the listener serves from: the store and the publish settings of each mailbox.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// By lower-cased mailbox address; replaced as a whole on reload.
    publications: RwLock<Arc<HashMap<String, Publication>>>,
    /// Per mailbox and file: the last ETag served and when it was first seen.
    seen: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    /// When this server started: the earliest Last-Modified it can vouch for.
    started: DateTime<Utc>,
    /// The digest an unknown mailbox's token is compared with (no token matches it).
    decoy: [u8; 32],
    /// `/push` ([`crate::push`]): the digest of the push secret and the mailboxes' signals.
    push: Option<([u8; 32], crate::push::Wakers)>,
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {address}: {source}; change [http] listen or free the port")]
pub struct BindError {
    /// The address in `[http] listen`.
    pub address: std::net::SocketAddr,
    /// What the system said.
    pub source: std::io::Error,
}

impl Server {
    /// A server over `store` for the configured mailboxes, without `/push`.
    pub fn new(store: Store, mailboxes: &[MailboxConfig]) -> Server {
        Server::with_push(store, mailboxes, None)
    }

    /// A server over `store` for the configured mailboxes; with `push` (the secret, and the
    /// mailboxes' signals), `/push` wakes them.
    pub fn with_push(
        store: Store,
        mailboxes: &[MailboxConfig],
        push: Option<(String, crate::push::Wakers)>,
    ) -> Server {
        let mut decoy = [0u8; 32];
        for byte in &mut decoy {
            *byte = fastrand::u8(..);
        }
        let server = Server {
            inner: Arc::new(Inner {
                store,
                publications: RwLock::new(Arc::new(HashMap::new())),
                seen: Mutex::new(HashMap::new()),
                started: trimmed(Utc::now()),
                decoy,
                push: push.map(|(token, wakers)| (Sha256::digest(token.as_bytes()).into(), wakers)),
            }),
        };
        server.update(mailboxes);
        server
    }

    /// Takes the publish settings of a reloaded configuration.
    pub fn update(&self, mailboxes: &[MailboxConfig]) {
        let map = mailboxes
            .iter()
            .map(|m| (m.address.to_ascii_lowercase(), Publication::of(m)))
            .collect();
        *self
            .inner
            .publications
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/calendars/{address}/{file}", get(serve_file))
            .route("/push", put(push).post(push))
            .fallback(|| async { not_found() })
            .with_state(self.clone())
    }

    /// The publication of `address` if `token` opens it (see the module's Access section).
    fn authorise(&self, address: &str, token: Option<&str>) -> Option<Publication> {
        let map = self
            .inner
            .publications
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let publication = map.get(&address.trim().to_ascii_lowercase());
        let expected: [u8; 32] = match publication.and_then(|p| p.token.as_deref()) {
            Some(secret) => Sha256::digest(secret.as_bytes()).into(),
            None => self.inner.decoy,
        };
        let given: [u8; 32] = Sha256::digest(token.unwrap_or_default().as_bytes()).into();
        let token_ok = bool::from(given.ct_eq(&expected)) && token.is_some();
        let publication = publication?;
        let open = publication.public || (publication.token.is_some() && token_ok);
        open.then(|| publication.clone())
    }

    /// The Last-Modified of `body_tag` for `key`: when it was first served (or the start).
    fn last_modified(&self, key: String, tag: &str) -> DateTime<Utc> {
        let mut seen = self.inner.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = trimmed(Utc::now());
        match seen.get(&key) {
            Some((old, at)) if old == tag => *at,
            Some(_) => {
                seen.insert(key, (tag.to_string(), now));
                now
            }
            None => {
                let at = self.inner.started;
                seen.insert(key, (tag.to_string(), at));
                at
            }
        }
    }
}

fn trimmed(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Binds the listener (before the daemon reports ready, so a taken port is an error at start).
pub async fn bind(address: std::net::SocketAddr) -> Result<tokio::net::TcpListener, BindError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| BindError { address, source })
}

/// Serves until `stop` is cancelled, then finishes the requests in hand.
pub async fn serve(listener: tokio::net::TcpListener, server: Server, stop: CancellationToken) {
    let address = listener.local_addr().ok();
    info!(address = ?address, "publishing calendars over HTTP");
    if let Err(e) = axum::serve(listener, server.router())
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        warn!(error = %e, "the HTTP listener stopped");
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        NOT_FOUND,
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// `/push`: wakes the mailbox the body names (see [`crate::push`] for the contract).
async fn push(
    State(server): State<Server>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some((expected, wakers)) = &server.inner.push else {
        return not_found();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(push_secret);
    let digest: [u8; 32] = Sha256::digest(given.as_deref().unwrap_or_default().as_bytes()).into();
    if given.is_none() || !bool::from(digest.ct_eq(expected)) {
        warn!("a push was refused: missing or wrong secret");
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic realm=\"imipd push\""),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "the push secret is missing or wrong\n",
        )
            .into_response();
    }
    let notice: crate::push::Notice = match serde_json::from_slice(&body) {
        Ok(notice) => notice,
        Err(e) => {
            return bad_request(format!(
                "the body must be JSON with a string \"user\" naming the mailbox: {e}"
            ));
        }
    };
    match wakers.wake(&notice.user) {
        Some(address) => {
            crate::metrics::get().pushed(&address);
            tracing::debug!(mailbox = %address, "woken by a push");
            StatusCode::NO_CONTENT.into_response()
        }
        None => {
            info!(user = %notice.user, "a push names no configured mailbox");
            not_found()
        }
    }
}

/// The secret of an `Authorization` header: a Basic password (any user name) or a Bearer
/// token.
fn push_secret(header: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, value) = header.trim().split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_, password) = decoded.split_once(':')?;
    Some(password.to_string())
}

/// One representation, ready to be served.
struct Body {
    content_type: &'static str,
    text: String,
    /// What the ETag is computed over (the text, less what changes on every request).
    tag_source: String,
}

async fn serve_file(
    State(server): State<Server>,
    Path((address, file)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(publication) = server.authorise(&address, query.get("token").map(String::as_str))
    else {
        return not_found();
    };
    if !matches!(
        file.as_str(),
        "calendar.ics" | "calendar.json" | "calendar.html" | "freebusy.ifb"
    ) {
        return not_found();
    }
    let store = server.inner.store.clone();
    let file_name = file.clone();
    let now = Utc::now();
    let built =
        tokio::task::spawn_blocking(move || build(&store, &publication, &file_name, &query, now))
            .await;
    let body = match built {
        Ok(Ok(Ok(body))) => body,
        Ok(Ok(Err(message))) => return bad_request(message),
        Ok(Err(e)) => {
            warn!(error = %e, mailbox = %address, "cannot read the store for a published calendar");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store cannot be read\n",
            )
                .into_response();
        }
        Err(e) => {
            warn!(error = %e, "a published calendar could not be built");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let etag = super::etag(body.tag_source.as_bytes());
    let modified = server.last_modified(format!("{}\0{file}", address.to_ascii_lowercase()), &etag);
    let mut response = if not_modified(&headers, &etag, modified) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, body.content_type)], body.text).into_response()
    };
    let out = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(name, value);
        }
    };
    set(header::ETAG, &etag);
    set(header::LAST_MODIFIED, &http_date(modified));
    set(header::CACHE_CONTROL, "private, max-age=60");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if file == "calendar.html" {
        set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        );
    }
    response
}

/// Builds one file; the inner error is a bad query (400).
fn build(
    store: &Store,
    publication: &Publication,
    file: &str,
    query: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<Result<Body, String>, crate::store::StoreError> {
    Ok(Ok(match file {
        "calendar.ics" | "calendar.json" => {
            let feed = feed(&super::objects(store, publication, None)?, publication);
            let (content_type, format) = if file == "calendar.ics" {
                ("text/calendar; charset=utf-8", export::Format::Ics)
            } else {
                ("application/calendar+json", export::Format::Jcal)
            };
            let text = export::export(std::slice::from_ref(&feed), format);
            Body {
                content_type,
                tag_source: text.clone(),
                text,
            }
        }
        "calendar.html" => {
            let days = match query.get("days").map(|d| d.parse::<u32>()) {
                None => super::DEFAULT_PAGE_DAYS,
                Some(Ok(d)) if (1..=super::MAX_PAGE_DAYS).contains(&d) => d,
                Some(_) => {
                    return Ok(Err(format!(
                        "days must be a number from 1 to {}",
                        super::MAX_PAGE_DAYS
                    )));
                }
            };
            let (from, to) = super::page_window(publication, now, days);
            let objects = super::objects(store, publication, None)?;
            let found = bookings(&objects, publication, from, to);
            let text = super::page(&found, publication, from, to);
            Body {
                content_type: "text/html; charset=utf-8",
                tag_source: text.clone(),
                text,
            }
        }
        _ => {
            let read = |key: &str| {
                query
                    .get(key)
                    .filter(|v| !v.is_empty())
                    .map(|v| super::parse_utc(v))
                    .transpose()
            };
            let range = read("start").and_then(|start| {
                let end = read("end")?;
                let horizon = store
                    .busy_meta(&publication.account)
                    .map(|m| m.horizon)
                    .unwrap_or(0);
                freebusy_range(start, end, now, horizon, publication.index_days)
            });
            let (from, to) = match range {
                Ok(range) => range,
                Err(e) => return Ok(Err(e.to_string())),
            };
            let periods = freebusy_periods(store, &publication.account, from, to)?;
            Body {
                content_type: "text/calendar; charset=utf-8",
                tag_source: format!("{from} {to} {periods:?}"),
                text: freebusy_publish(publication, &periods, from, to, now),
            }
        }
    }))
}

/// Whether the client's copy is current (RFC 9110 §13.1: If-None-Match wins over
/// If-Modified-Since).
fn not_modified(headers: &HeaderMap, etag: &str, modified: DateTime<Utc>) -> bool {
    if let Some(tags) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| modified <= since.with_timezone(&Utc))
}

/// An HTTP date (RFC 9110 §5.6.7, IMF-fixdate).
fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let mut headers = HeaderMap::new();
        let t = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        headers.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&http_date(t)).expect("ascii"),
        );
        assert!(not_modified(&headers, "\"a\"", t));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"b\", W/\"c\""),
        );
        assert!(!not_modified(&headers, "\"a\"", t));
        assert!(not_modified(&headers, "\"c\"", t));
    }

    #[test]
    fn an_older_copy_is_not_current() {
        let mut headers = HeaderMap::new();
        let t = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        headers.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&http_date(t)).expect("ascii"),
        );
        assert!(!not_modified(
            &headers,
            "\"a\"",
            t + chrono::Duration::seconds(1)
        ));
    }
}
