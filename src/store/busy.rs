//! The busy index: which intervals of a mailbox are taken, answering "what overlaps
//! [a, b)" with a handful of ordered range scans.
//!
//! # Key layout: levels by duration
//!
//! An interval of duration `d` lives on level `L = level_of(d)`, the smallest `L` with
//! `d <= BASE * 4^L` (`BASE` = 15 minutes, so level 0 holds up to 15 min, level 1 up to an
//! hour, level 2 up to 4 hours, level 3 up to 16 hours, level 4 up to 2.7 days, level 6 up
//! to 43 days; [`MAX_LEVEL`] covers any span). The key is
//!
//! ```text
//! mailbox \0 level (u8) start (i64, sign bit flipped, BE) end (same) uid-length (u32 BE) uid rid
//! ```
//!
//! where `rid` is empty for "no RECURRENCE-ID" and `\x01` followed by the RECURRENCE-ID
//! otherwise. The flipped sign bit makes byte order equal numeric order, so one level of one
//! mailbox is sorted by start.
//!
//! # Why a query is O(log n + k)
//!
//! An interval on level `L` overlaps `[a, b)` only if `start < b` and `end > a`; since its
//! duration is at most `W = BASE * 4^L`, `end > a` implies `start > a - W`. So the query
//! scans, on each occupied level, the keys with `start` in `(a - W, b)`: one O(log n) seek
//! plus the keys in that range. Every key in the range either overlaps (it is one of the `k`
//! answers) or is a false positive lying inside `[a - W, a]`. A false positive lasts more
//! than `W / 4` (else it would be on a lower level), so it contains one of the three instants
//! `a - W/4`, `a - W/2`, `a - 3W/4`: the false positives of one level number at most three
//! times the mailbox's booking depth (how many of its bookings overlap at one instant,
//! small for a room or resource), independent of `n`. The number of levels is a constant
//! ([`MAX_LEVEL`] + 1) and only levels the mailbox uses are scanned (a bit mask in
//! `busy_meta`); false positives are rejected from the key bytes without decoding the
//! value. Total: O(levels · log n + k + levels · depth) = O(log n + k). Base 4 rather than 2
//! halves the number of levels a typical mailbox occupies (each level costs one seek) for at
//! most 3× instead of 1× depth in false positives.
//!
//! Long events (a week-long conference, a month-long leave) do not make the short ones
//! expensive: they sit on their own level and are scanned with their own width. A single
//! max-duration bound over all events would instead turn every query into a scan of
//! "everything that started within the longest event's duration".
//!
//! # Horizon
//!
//! A recurring event has unboundedly many instances, so the calendar layer expands each
//! object up to a horizon (e.g. now + 18 months) and hands the store the intervals; the
//! store records the horizon per mailbox in `busy_meta`. Answers about times beyond the
//! horizon are incomplete: the caller either extends first (re-expands the recurring
//! objects to a later horizon and calls [`crate::store::Store::extend_busy`], which replaces
//! those UIDs' intervals and moves the horizon in one transaction) or treats the window as
//! unknown. A horizon of 0 means "nothing indexed yet" (a store migrated from schema 1).

use serde::{Deserialize, Serialize};

/// The width of level 0, in seconds.
pub const BASE: i64 = 15 * 60;
/// The highest level; `BASE * 4^MAX_LEVEL` seconds is about 31 million years.
pub const MAX_LEVEL: u8 = 20;

/// Whether an interval blocks time (RFC 5545 TRANSP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transparency {
    /// Blocks time (TRANSP:OPAQUE, the default).
    #[default]
    Opaque,
    /// Does not block time (TRANSP:TRANSPARENT).
    Transparent,
}

/// One instance of an object as busy time, in Unix seconds UTC, half open `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BusyInterval {
    /// Start, Unix seconds.
    pub start: i64,
    /// End (exclusive), Unix seconds; an `end` before `start` is stored as `start`.
    pub end: i64,
    /// The instance's RECURRENCE-ID (`None` for a non-recurring event).
    #[serde(default)]
    pub recurrence_id: Option<String>,
    /// Whether it blocks time.
    #[serde(default)]
    pub transparency: Transparency,
}

/// The new busy intervals of one object: they replace every interval the UID had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyUpdate {
    /// The mailbox whose calendar holds the object.
    pub mailbox: String,
    /// The object's UID.
    pub uid: String,
    /// All its instances up to the mailbox's horizon (empty: it no longer takes time).
    pub intervals: Vec<BusyInterval>,
}

/// One answer of a busy query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyEntry {
    /// The object's UID.
    pub uid: String,
    /// The interval.
    #[serde(flatten)]
    pub interval: BusyInterval,
}

/// Per-mailbox facts about its busy index (the `busy_meta` tree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyMeta {
    /// Unix seconds up to which recurring objects are expanded (0: nothing indexed yet).
    #[serde(default)]
    pub horizon: i64,
    /// Bit `L` is set when level `L` may hold intervals; bits are never cleared (a stale bit
    /// costs one empty seek).
    #[serde(default)]
    pub levels: u64,
}

/// The level of an interval of `duration` seconds.
pub fn level_of(duration: i64) -> u8 {
    let mut level = 0u8;
    while level < MAX_LEVEL && duration > width(level) {
        level += 1;
    }
    level
}

/// The longest duration stored on `level`, in seconds.
pub fn width(level: u8) -> i64 {
    BASE << (2 * u32::from(level))
}

fn ordered(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn level_prefix(mailbox: &str, level: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(mailbox.len() + 2 + 8);
    key.extend_from_slice(mailbox.as_bytes());
    key.push(0);
    key.push(level);
    key
}

/// The level an interval is stored on.
pub fn level(interval: &BusyInterval) -> u8 {
    level_of(
        interval
            .end
            .max(interval.start)
            .saturating_sub(interval.start),
    )
}

/// The `busy` key of one interval of `uid`.
pub fn key(mailbox: &str, uid: &str, interval: &BusyInterval) -> Vec<u8> {
    let end = interval.end.max(interval.start);
    let mut key = level_prefix(mailbox, level(interval));
    key.extend_from_slice(&ordered(interval.start));
    key.extend_from_slice(&ordered(end));
    key.extend_from_slice(&(uid.len() as u32).to_be_bytes());
    key.extend_from_slice(uid.as_bytes());
    if let Some(rid) = &interval.recurrence_id {
        key.push(1);
        key.extend_from_slice(rid.as_bytes());
    }
    key
}

/// The key range `[from, to)` to scan on `level` for a query `[a, b)`.
pub fn scan_range(mailbox: &str, level: u8, a: i64, b: i64) -> (Vec<u8>, Vec<u8>) {
    let width = width(level);
    let mut from = level_prefix(mailbox, level);
    let mut to = from.clone();
    // start > a - width; starting the scan at a - width only adds intervals ending <= a,
    // which the caller filters out.
    from.extend_from_slice(&ordered(a.saturating_sub(width)));
    to.extend_from_slice(&ordered(b));
    (from, to)
}

/// Whether the interval stored under `key` (of `mailbox`) overlaps `[a, b)`, read from the
/// key bytes alone; `None` for a key this module did not write.
pub fn key_overlaps(mailbox: &str, key: &[u8], a: i64, b: i64) -> Option<bool> {
    let at = mailbox.len() + 2;
    let start = key.get(at..at + 8)?;
    let end = key.get(at + 8..at + 16)?;
    let decode = |b: &[u8]| -> Option<i64> {
        Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
    };
    Some(decode(start)? < b && decode(end)? > a)
}

/// Whether `[start, end)` overlaps `[a, b)`.
pub fn overlaps(interval: &BusyInterval, a: i64, b: i64) -> bool {
    interval.start < b && interval.end.max(interval.start) > a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_grow_with_duration() {
        assert_eq!(level_of(0), 0);
        assert_eq!(level_of(BASE), 0);
        assert_eq!(level_of(BASE + 1), 1);
        assert_eq!(level_of(3600), 1);
        assert_eq!(level_of(3601), 2);
        assert_eq!(level_of(7 * 86400), 5);
        assert_eq!(level_of(i64::MAX), MAX_LEVEL);
    }

    #[test]
    fn keys_sort_by_start_across_the_epoch() {
        let at = |start| BusyInterval {
            start,
            end: start + 60,
            recurrence_id: None,
            transparency: Transparency::Opaque,
        };
        let mut keys = [
            key("m", "u", &at(100)),
            key("m", "u", &at(-100)),
            key("m", "u", &at(0)),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                key("m", "u", &at(-100)),
                key("m", "u", &at(0)),
                key("m", "u", &at(100))
            ]
        );
    }

    #[test]
    fn a_uid_that_looks_like_a_key_suffix_does_not_collide() {
        let interval = BusyInterval {
            start: 0,
            end: 60,
            recurrence_id: Some("x".into()),
            transparency: Transparency::Opaque,
        };
        let plain = BusyInterval {
            recurrence_id: None,
            ..interval.clone()
        };
        assert_ne!(key("m", "u", &interval), key("m", "u\u{1}x", &plain));
    }
}
