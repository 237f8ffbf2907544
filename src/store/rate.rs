//! Sliding hourly counters: how many replies a mailbox sent to one address, and how many
//! status polls of one object it answered, in the last hour ([`crate::limits::Limits`]).
//!
//! Kept in the `rate` tree, one record per (mailbox, subject, ten-minute bucket) holding a
//! big-endian `u32`; the last hour is the sum of the six newest buckets. Older buckets of a
//! subject are removed when it is counted again, so the tree holds at most an hour of
//! history per active correspondent. The counters are bumped right after the message's
//! commit, in a transaction of their own: a crash between the two undercounts one message,
//! which a rate limit tolerates, and the commit itself stays the one atomic step.

use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// The width of one bucket, in seconds.
const BUCKET_SECS: i64 = 600;
/// The buckets that make an hour.
const BUCKETS_PER_HOUR: u64 = 3600 / BUCKET_SECS as u64;

fn bucket(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp().max(0) / BUCKET_SECS).unwrap_or(0)
}

fn prefix(mailbox: &str, subject: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(mailbox.len() + subject.len() + 10);
    key.extend_from_slice(mailbox.as_bytes());
    key.push(0);
    key.extend_from_slice(subject.to_ascii_lowercase().as_bytes());
    key.push(0);
    key
}

fn count_of(value: &[u8]) -> u32 {
    value.try_into().map(u32::from_be_bytes).unwrap_or(u32::MAX)
}

impl Store {
    /// How many times `subject` (an address, or a poll key) was counted for `mailbox` in the
    /// hour before `now`.
    pub fn rate_last_hour(
        &self,
        mailbox: &str,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let tree = self.db.open_tree("rate")?;
        let prefix = prefix(mailbox, subject);
        let oldest = bucket(now).saturating_sub(BUCKETS_PER_HOUR - 1);
        let mut total = 0u32;
        for entry in tree.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let at = key
                .get(prefix.len()..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if at >= oldest {
                total = total.saturating_add(count_of(&value));
            }
        }
        Ok(total)
    }

    /// Counts each of `subjects` once more for `mailbox` at `now`, dropping their buckets
    /// older than an hour.
    pub async fn rate_record(
        &self,
        mailbox: &str,
        subjects: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if subjects.is_empty() {
            return Ok(());
        }
        let tree = self.db.open_tree("rate")?;
        let current = bucket(now);
        let oldest = current.saturating_sub(BUCKETS_PER_HOUR - 1);
        for subject in subjects {
            let prefix = prefix(mailbox, subject);
            let mut key = prefix.clone();
            key.extend_from_slice(&current.to_be_bytes());
            tree.update_and_fetch(&key, |old| {
                let next = old.map_or(0, count_of).saturating_add(1);
                Some(next.to_be_bytes().to_vec())
            })?;
            let mut old_end = prefix.clone();
            old_end.extend_from_slice(&oldest.to_be_bytes());
            for entry in tree.range(prefix.clone()..old_end) {
                let (stale, _) = entry?;
                tree.remove(stale)?;
            }
        }
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn counts_slide_out_after_an_hour() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = Store::open(tmp.path()).expect("store opens");
        let t0 = Utc.with_ymd_and_hms(2027, 1, 1, 8, 0, 0).unwrap();
        let who = vec!["org@ext.test".to_string()];
        store
            .rate_record("room@corp.test", &who, t0)
            .await
            .expect("recorded");
        store
            .rate_record("room@corp.test", &who, t0 + chrono::Duration::minutes(30))
            .await
            .expect("recorded");
        let at = |m| t0 + chrono::Duration::minutes(m);
        let count = |m| {
            store
                .rate_last_hour("room@corp.test", "ORG@ext.test", at(m))
                .expect("read")
        };
        assert_eq!(count(31), 2);
        assert_eq!(count(65), 1, "the first reply left the hour");
        assert_eq!(count(100), 0);
        assert_eq!(
            store
                .rate_last_hour("other@corp.test", "org@ext.test", at(31))
                .expect("read"),
            0,
            "counters are per mailbox"
        );
    }
}
