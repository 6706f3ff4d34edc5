//! The wall clock a peer reads: the system clock plus a fixed offset.
//!
//! Wall time matters wherever a peer compares a time another peer wrote
//! (an advert's or an invite's expiry) with its own; those checks allow
//! [`messaging_proto::limits::MAX_CLOCK_SKEW_MS`] of difference. Timers
//! that only measure intervals use `Instant` instead, which no clock skew
//! affects. The offset lets tests (and the simulator) run peers whose
//! clocks are off, in one process.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A wall clock: the system clock shifted by an offset (fixed, or shared
/// so that a test can make it jump). Cheap to copy; the default is the
/// system clock.
///
/// ```
/// use net_overlay::Clock;
///
/// let fast = Clock::skewed(5 * 60 * 1000);
/// let drift = fast.now_ms().abs_diff(Clock::system().now_ms());
/// assert!(drift.abs_diff(5 * 60 * 1000) < 60_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    offset: Offset,
}

/// How far a clock is off the system clock.
#[derive(Clone, Copy, Debug)]
enum Offset {
    Fixed(i64),
    /// Read at every use: whoever holds the atomic moves the clock.
    Shared(&'static AtomicI64),
}

impl Default for Offset {
    fn default() -> Self {
        Self::Fixed(0)
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        match (self.offset, other.offset) {
            (Offset::Fixed(a), Offset::Fixed(b)) => a == b,
            (Offset::Shared(a), Offset::Shared(b)) => std::ptr::eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Clock {}

impl Clock {
    /// The system clock.
    pub const fn system() -> Self {
        Self::skewed(0)
    }

    /// The system clock shifted by `offset_ms` (positive: ahead, negative:
    /// behind), as a peer whose clock is off sees time.
    pub const fn skewed(offset_ms: i64) -> Self {
        Self {
            offset: Offset::Fixed(offset_ms),
        }
    }

    /// The system clock shifted by whatever `offset_ms` holds when it is
    /// read: storing another offset makes the clock jump, as a system
    /// clock set by hand or by NTP does (tests and the simulator).
    pub const fn shared(offset_ms: &'static AtomicI64) -> Self {
        Self {
            offset: Offset::Shared(offset_ms),
        }
    }

    /// The offset from the system clock, in milliseconds (now, for a
    /// shared offset).
    pub fn offset_ms(&self) -> i64 {
        match self.offset {
            Offset::Fixed(offset) => offset,
            Offset::Shared(offset) => offset.load(Ordering::Relaxed),
        }
    }

    /// Milliseconds since the Unix epoch by this clock (0 if the system
    /// clock reads before 1970).
    pub fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            });
        system.saturating_add_signed(self.offset_ms())
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
    fn a_shared_offset_moves_the_clock_when_it_changes() {
        static OFFSET: AtomicI64 = AtomicI64::new(0);
        let clock = Clock::shared(&OFFSET);
        let before = clock.now_ms();
        OFFSET.store(-3_600_000, Ordering::Relaxed);
        let after = clock.now_ms();
        assert!(before - after > 3_500_000, "{before} → {after}");
        assert_eq!(clock.offset_ms(), -3_600_000);
        assert_eq!(clock, Clock::shared(&OFFSET));
        assert_ne!(clock, Clock::skewed(-3_600_000));
    }

    #[test]
    fn the_clock_saturates_instead_of_wrapping() {
        assert_eq!(Clock::skewed(i64::MIN).now_ms(), 0);
        assert!(Clock::skewed(i64::MAX).now_ms() > i64::MAX as u64);
    }
}
