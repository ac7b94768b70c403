//! Calendar arithmetic the hub, the simulator and the tests must agree on: what "N months after
//! a date" is (RULES.md W01's "24 months from delivery"), defined once here.
//!
//! **N months after a date** is the same day of the month N calendar months later; when that
//! month is shorter, the month's last day. So 24 months after 2024-02-29 is 2026-02-28, 6 months
//! after 2026-08-31 is 2027-02-28, and 6 months after 2027-08-31 is 2028-02-29. A window of N
//! months from a date covers every moment up to the end of that later day (UTC): an event on
//! the anniversary itself is inside, one on the day after is outside.
//!
//! Dates and times are UTC here, as on the wire.

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The calendar date (UTC) of `ms` milliseconds since the Unix epoch; `None` outside what a
/// date can hold.
pub fn date_of(ms: i64) -> Option<time::Date> {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .map(|t| t.date())
}

/// Midnight UTC of `date`, in milliseconds since the Unix epoch.
pub fn midnight_ms(date: time::Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

/// The date `months` calendar months after `date`, the day clamped to the month's last day.
pub fn add_months(date: time::Date, months: u32) -> Option<time::Date> {
    let total = date.year() * 12 + (date.month() as i32 - 1) + i32::try_from(months).ok()?;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).ok()?;
    let last = time::util::days_in_month(month, year);
    time::Date::from_calendar_date(year, month, date.day().min(last)).ok()
}

/// The last moment (ms, inclusive) of a window of `months` months from the day of `from_ms`:
/// the end of the day `months` months later. `i64::MAX` when the date cannot be computed, so
/// nothing is ever judged outside a window that cannot be placed.
pub fn months_window_end_ms(from_ms: i64, months: u32) -> i64 {
    date_of(from_ms)
        .and_then(|d| add_months(d, months))
        .map(|d| midnight_ms(d) + DAY_MS - 1)
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_after_a_date_clamp_to_the_shorter_months_end() {
        let cases = [
            (date!(2024 - 02 - 29), 24, date!(2026 - 02 - 28)),
            (date!(2024 - 02 - 29), 48, date!(2028 - 02 - 29)),
            (date!(2026 - 08 - 31), 6, date!(2027 - 02 - 28)),
            (date!(2027 - 08 - 31), 6, date!(2028 - 02 - 29)),
            (date!(2026 - 01 - 31), 1, date!(2026 - 02 - 28)),
            (date!(2026 - 03 - 31), 1, date!(2026 - 04 - 30)),
            (date!(2026 - 12 - 15), 1, date!(2027 - 01 - 15)),
            (date!(2026 - 12 - 31), 0, date!(2026 - 12 - 31)),
            (date!(2025 - 11 - 30), 24, date!(2027 - 11 - 30)),
        ];
        for (from, months, expected) in cases {
            assert_eq!(
                add_months(from, months),
                Some(expected),
                "{from} + {months}"
            );
        }
    }

    #[test]
    fn every_day_of_a_leap_year_and_the_next_lands_in_the_right_month() {
        let mut day = date!(2027 - 12 - 01);
        while day < date!(2029 - 03 - 01) {
            for months in [1, 6, 12, 24, 25] {
                let later = add_months(day, months).expect("in range");
                let expected_month = (day.month() as u32 - 1 + months) % 12 + 1;
                assert_eq!(later.month() as u32, expected_month, "{day} + {months}");
                assert!(later.day() <= day.day(), "{day} + {months} = {later}");
                if later.day() < day.day() {
                    assert_eq!(
                        later.day(),
                        time::util::days_in_month(later.month(), later.year())
                    );
                }
            }
            day = day.next_day().expect("next day");
        }
    }

    #[test]
    fn a_window_ends_with_its_last_day() {
        let from = midnight_ms(date!(2024 - 02 - 29)) + 10 * 3_600_000;
        let end = months_window_end_ms(from, 24);
        assert_eq!(end + 1, midnight_ms(date!(2026 - 03 - 01)));
        assert_eq!(months_window_end_ms(i64::MAX, 24), i64::MAX);
    }
}
