//! The wall clock a peer reads: the system clock plus a fixed offset.
//!
//! Wall time matters wherever a peer compares a time another peer wrote
//! (an advert's or an invite's expiry) with its own; those checks allow
//! [`messaging_proto::limits::MAX_CLOCK_SKEW_MS`] of difference. Timers
//! that only measure intervals use `Instant` instead, which no clock skew
//! affects. The offset lets tests (and the simulator) run peers whose
//! clocks are off, in one process.

use std::time::{SystemTime, UNIX_EPOCH};

/// A wall clock: the system clock shifted by a fixed offset. Cheap to copy;
/// the default is the system clock.
///
/// ```
/// use net_overlay::Clock;
///
/// let fast = Clock::skewed(5 * 60 * 1000);
/// let drift = fast.now_ms().abs_diff(Clock::system().now_ms());
/// assert!(drift.abs_diff(5 * 60 * 1000) < 60_000);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// The system clock.
    pub const fn system() -> Self {
        Self { offset_ms: 0 }
    }

    /// The system clock shifted by `offset_ms` (positive: ahead, negative:
    /// behind), as a peer whose clock is off sees time.
    pub const fn skewed(offset_ms: i64) -> Self {
        Self { offset_ms }
    }

    /// The offset from the system clock, in milliseconds.
    pub const fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// Milliseconds since the Unix epoch by this clock (0 if the system
    /// clock reads before 1970).
    pub fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            });
        system.saturating_add_signed(self.offset_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_shifts_the_system_clock() {
        let system = Clock::system().now_ms();
        let ahead = Clock::skewed(300_000).now_ms();
        let behind = Clock::skewed(-300_000).now_ms();
        assert!(ahead >= system + 300_000 && ahead < system + 360_000);
        assert!(behind >= system - 300_000 && behind < system - 240_000);
        assert_eq!(Clock::default(), Clock::system());
        assert_eq!(Clock::skewed(-7).offset_ms(), -7);
    }

    #[test]
    fn the_clock_saturates_instead_of_wrapping() {
        assert_eq!(Clock::skewed(i64::MIN).now_ms(), 0);
        assert!(Clock::skewed(i64::MAX).now_ms() > i64::MAX as u64);
    }
}
