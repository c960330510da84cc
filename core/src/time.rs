//! Timestamps stored as signed nanoseconds since the Unix epoch (full precision, one clock read).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the epoch for `t` (negative before it).
pub fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

/// The inverse of [`to_nanos`].
pub fn from_nanos(n: i64) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + Duration::from_nanos(n as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}
