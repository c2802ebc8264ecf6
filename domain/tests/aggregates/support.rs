//! What the aggregates' tests share: a fixed time to count from.

use chrono::{TimeZone, Utc};
use proofline_domain::log::Timestamp;

/// The instant the tests count from, in seconds since the epoch.
pub const NOW: i64 = 1_790_000_000;

/// `secs` seconds after [`NOW`] (before it when negative).
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_datetime(Utc.timestamp_opt(NOW + secs, 0).unwrap())
}
