//! Times as people read them: local clock time, and day labels for the
//! separators between days.

use chrono::{DateTime, Local, TimeZone};

fn local(timestamp_ms: u64) -> Option<DateTime<Local>> {
    let millis = i64::try_from(timestamp_ms).ok()?;
    Local.timestamp_millis_opt(millis).single()
}

/// `14:05` in local time.
pub fn clock(timestamp_ms: u64) -> String {
    local(timestamp_ms).map_or_else(String::new, |time| time.format("%H:%M").to_string())
}

/// The local date (for grouping by day).
pub fn day(timestamp_ms: u64) -> Option<chrono::NaiveDate> {
    local(timestamp_ms).map(|time| time.date_naive())
}

/// "Today", "Yesterday" or `Monday 3 March 2026`.
pub fn day_label(date: chrono::NaiveDate, today: chrono::NaiveDate) -> String {
    if date == today {
        "Today".to_owned()
    } else if today.pred_opt() == Some(date) {
        "Yesterday".to_owned()
    } else {
        date.format("%A %-d %B %Y").to_string()
    }
}

/// Today's local date.
pub fn today() -> chrono::NaiveDate {
    Local::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_labels() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(day_label(today.pred_opt().unwrap(), today), "Yesterday");
        let older = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(day_label(older, today), "Monday 2 March 2026");
    }
}
