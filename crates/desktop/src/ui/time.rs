//! Times as people read them: clock time, and day labels for the
//! separators between days. A [`Clock`] says which zone and which "now":
//! the local ones in the app, fixed ones in tests and screenshots so they
//! read the same on every machine.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, Offset, TimeZone, Utc};

/// The zone and "now" that times are shown in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The machine's zone and date.
    #[default]
    Local,
    /// A fixed zone and a fixed "now" (ms since the Unix epoch).
    Fixed {
        /// The zone.
        offset: FixedOffset,
        /// What "now" is.
        now_ms: u64,
    },
}

impl Clock {
    /// UTC with a fixed "now".
    pub fn utc_at(now_ms: u64) -> Self {
        Self::Fixed {
            offset: Utc.fix(),
            now_ms,
        }
    }

    fn at(&self, timestamp_ms: u64) -> Option<DateTime<FixedOffset>> {
        let millis = i64::try_from(timestamp_ms).ok()?;
        match self {
            Self::Local => Local
                .timestamp_millis_opt(millis)
                .single()
                .map(|time| time.fixed_offset()),
            Self::Fixed { offset, .. } => offset.timestamp_millis_opt(millis).single(),
        }
    }

    /// `14:05`.
    pub fn clock(&self, timestamp_ms: u64) -> String {
        self.at(timestamp_ms)
            .map_or_else(String::new, |time| time.format("%H:%M").to_string())
    }

    /// The date (for grouping by day).
    pub fn day(&self, timestamp_ms: u64) -> Option<NaiveDate> {
        self.at(timestamp_ms).map(|time| time.date_naive())
    }

    /// The date of `timestamp_ms` and the span of that day in ms since the
    /// epoch `[start, end)`, so that callers walking sorted timestamps need
    /// one date computation per day, not per message.
    pub fn day_span(&self, timestamp_ms: u64) -> Option<(NaiveDate, u64, u64)> {
        let date = self.day(timestamp_ms)?;
        let start = self.midnight(date)?;
        let end = self.midnight(date.succ_opt()?)?;
        (start <= timestamp_ms && timestamp_ms < end).then_some((date, start, end))
    }

    /// The first millisecond of `date` in this clock's zone.
    fn midnight(&self, date: NaiveDate) -> Option<u64> {
        let naive = date.and_hms_opt(0, 0, 0)?;
        let millis = match self {
            Self::Local => Local
                .from_local_datetime(&naive)
                .earliest()?
                .timestamp_millis(),
            Self::Fixed { offset, .. } => offset
                .from_local_datetime(&naive)
                .earliest()?
                .timestamp_millis(),
        };
        u64::try_from(millis).ok()
    }

    /// Today's date.
    pub fn today(&self) -> NaiveDate {
        match self {
            Self::Local => Local::now().date_naive(),
            Self::Fixed { now_ms, .. } => {
                self.day(*now_ms).unwrap_or_else(|| Utc::now().date_naive())
            }
        }
    }
}

/// "Today", "Yesterday" or `Monday 3 March 2026`.
pub fn day_label(date: NaiveDate, today: NaiveDate) -> String {
    if date == today {
        "Today".to_owned()
    } else if today.pred_opt() == Some(date) {
        "Yesterday".to_owned()
    } else {
        date.format("%A %-d %B %Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_labels() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(day_label(today.pred_opt().unwrap(), today), "Yesterday");
        let older = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(day_label(older, today), "Monday 2 March 2026");
    }

    #[test]
    fn a_fixed_clock_reads_the_same_everywhere() {
        // 2026-11-22 21:18:00 UTC.
        let now = 1_795_382_280_000;
        let clock = Clock::utc_at(now);
        assert_eq!(clock.clock(now), "21:18");
        assert_eq!(
            clock.today(),
            NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
        );
        assert_eq!(
            clock.day(now - 86_400_000),
            NaiveDate::from_ymd_opt(2026, 11, 21)
        );
    }
}
