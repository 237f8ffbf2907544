//! Prometheus metrics (prometheus-client) and the HTTP listener that serves them (axum).
//!
//! The counters live in one process-wide [`Metrics`] ([`get`]): the mailbox tasks and the
//! outbox worker record into it whether or not the endpoint is on, which costs a few atomic
//! operations per message. `GET /metrics` on `[metrics] listen` (off by default) answers in
//! the OpenMetrics text format; the outbox depth and the dead letters are counted in the store
//! at scrape time, so they are exact even after a restart.
//!
//! Label values are bounded: a mailbox is a configured address, an outcome one of five
//! words, and a reason its machine code (the part of the reason before `:`), never free text.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `imipd_messages_total` | counter | mailbox, outcome, reason |
//! | `imipd_replies_sent_total` | counter | mailbox |
//! | `imipd_replies_failed_total` | counter | mailbox, kind (`transient`, `permanent`) |
//! | `imipd_outbox_depth` | gauge | |
//! | `imipd_dead_letters` | gauge | |
//! | `imipd_imap_reconnects_total` | counter | mailbox |
//! | `imipd_pushes_total` | counter | mailbox |
//! | `imipd_message_processing_seconds` | histogram | mailbox |
//! | `imipd_last_successful_poll_timestamp_seconds` | gauge | mailbox |

use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Labels of one mailbox.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabels {
    pub mailbox: String,
}

/// Labels of a processed calendar object.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub mailbox: String,
    pub outcome: String,
    pub reason: String,
}

/// Labels of a failed reply.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub mailbox: String,
    pub kind: String,
}

type HistogramFamily = Family<MailboxLabels, Histogram, fn() -> Histogram>;

/// Every metric imipd exports.
pub struct Metrics {
    registry: Registry,
    messages: Family<MessageLabels, Counter>,
    replies_sent: Family<MailboxLabels, Counter>,
    replies_failed: Family<FailureLabels, Counter>,
    outbox_depth: Gauge,
    dead_letters: Gauge,
    reconnects: Family<MailboxLabels, Counter>,
    pushes: Family<MailboxLabels, Counter>,
    latency: HistogramFamily,
    last_poll: Family<MailboxLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("imipd");
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Calendar objects processed, by mailbox, outcome and reason code",
            messages.clone(),
        );
        let replies_sent = Family::<MailboxLabels, Counter>::default();
        registry.register(
            "replies_sent",
            "Replies the submission server accepted",
            replies_sent.clone(),
        );
        let replies_failed = Family::<FailureLabels, Counter>::default();
        registry.register(
            "replies_failed",
            "Reply delivery attempts that failed: transient (retried) or permanent (dead letter)",
            replies_failed.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Replies waiting in the outbox",
            outbox_depth.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register(
            "dead_letters",
            "Replies the server refused for good, kept in the store",
            dead_letters.clone(),
        );
        let reconnects = Family::<MailboxLabels, Counter>::default();
        registry.register(
            "imap_reconnects",
            "IMAP sessions that failed and were reconnected",
            reconnects.clone(),
        );
        let pushes = Family::<MailboxLabels, Counter>::default();
        registry.register(
            "pushes",
            "Server pushes that woke the mailbox (/push)",
            pushes.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "message_processing_seconds",
            "Time from a message's bytes to its committed decision",
            latency.clone(),
        );
        let last_poll = Family::<MailboxLabels, Gauge>::default();
        registry.register(
            "last_successful_poll_timestamp_seconds",
            "Unix time at which every watched folder of the mailbox was last scanned",
            last_poll.clone(),
        );
        Metrics {
            registry,
            messages,
            replies_sent,
            replies_failed,
            outbox_depth,
            dead_letters,
            reconnects,
            pushes,
            latency,
            last_poll,
        }
    }

    /// One calendar object processed with `outcome` and `reason` (`code: text`).
    pub fn message(&self, mailbox: &str, outcome: &str, reason: &str) {
        self.messages
            .get_or_create(&MessageLabels {
                mailbox: mailbox.to_string(),
                outcome: outcome.to_string(),
                reason: reason_code(reason),
            })
            .inc();
    }

    /// One message took `elapsed` from bytes to committed decision.
    pub fn processing_time(&self, mailbox: &str, elapsed: Duration) {
        self.latency
            .get_or_create(&mailbox_labels(mailbox))
            .observe(elapsed.as_secs_f64());
    }

    /// A reply was accepted by the server.
    pub fn reply_sent(&self, mailbox: &str) {
        self.replies_sent
            .get_or_create(&mailbox_labels(mailbox))
            .inc();
    }

    /// A reply attempt failed; `permanent` when it went to the dead letters.
    pub fn reply_failed(&self, mailbox: &str, permanent: bool) {
        let kind = if permanent { "permanent" } else { "transient" };
        self.replies_failed
            .get_or_create(&FailureLabels {
                mailbox: mailbox.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// An IMAP session failed and will be reconnected.
    pub fn reconnect(&self, mailbox: &str) {
        self.reconnects
            .get_or_create(&mailbox_labels(mailbox))
            .inc();
    }

    /// A server push woke `mailbox`.
    pub fn pushed(&self, mailbox: &str) {
        self.pushes.get_or_create(&mailbox_labels(mailbox)).inc();
    }

    /// Every watched folder of `mailbox` was scanned successfully just now.
    pub fn polled(&self, mailbox: &str) {
        self.last_poll
            .get_or_create(&mailbox_labels(mailbox))
            .set(chrono::Utc::now().timestamp());
    }

    /// The OpenMetrics text of every metric, the store's counts refreshed first.
    pub fn render(&self, store: Option<&Store>) -> String {
        if let Some(store) = store {
            if let Ok(outbox) = store.outbox() {
                self.outbox_depth
                    .set(i64::try_from(outbox.len()).unwrap_or(i64::MAX));
            }
            if let Ok(dead) = store.dead_letters() {
                self.dead_letters
                    .set(i64::try_from(dead.len()).unwrap_or(i64::MAX));
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn mailbox_labels(mailbox: &str) -> MailboxLabels {
    MailboxLabels {
        mailbox: mailbox.to_string(),
    }
}

/// The machine code of a reason (`"conflict: busy 10:00-11:00"` → `conflict`); anything that
/// does not look like a code becomes `other`, so that label values stay few.
pub fn reason_code(reason: &str) -> String {
    let code = reason.split(':').next().unwrap_or("").trim();
    let is_code = !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if is_code {
        code.to_string()
    } else {
        "other".to_string()
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for metrics on {addr}: {source}; change [metrics] listen or remove it to turn metrics off"
)]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds `addr` now (so that a port in use fails the start) and serves `GET /metrics` until
/// `stop` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    store: Store,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, ListenError> {
    use axum::http::header::CONTENT_TYPE;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let store = store.clone();
            async move {
                let text = tokio::task::spawn_blocking(move || get().render(Some(&store)))
                    .await
                    .unwrap_or_default();
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    tracing::info!(%addr, "serving metrics on /metrics");
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_the_part_before_the_colon_or_other() {
        assert_eq!(reason_code("conflict: busy from 10:00"), "conflict");
        assert_eq!(reason_code("stale_sequence"), "stale_sequence");
        assert_eq!(reason_code("a free text reason, no code"), "other");
        assert_eq!(reason_code(""), "other");
    }

    #[test]
    fn recorded_values_appear_in_the_rendered_text() {
        let metrics = Metrics::new();
        metrics.message("room1@example.test", "added", "accepted: in policy");
        metrics.message("room1@example.test", "added", "accepted: in policy");
        metrics.reply_failed("room1@example.test", true);
        metrics.processing_time("room1@example.test", Duration::from_millis(3));
        let text = metrics.render(None);
        assert!(
            text.contains(
                "imipd_messages_total{mailbox=\"room1@example.test\",outcome=\"added\",reason=\"accepted\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "imipd_replies_failed_total{mailbox=\"room1@example.test\",kind=\"permanent\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "imipd_message_processing_seconds_count{mailbox=\"room1@example.test\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
