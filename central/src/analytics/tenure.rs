//! How long customers stay: tenure by segment (or another grouping), and retention cohorts by
//! the quarter of the first delivery, as a survival table.
//!
//! Tenure runs from the customer's first touchpoint to `as_of`, or to their last touchpoint
//! once they have defected or hold no vehicle any more (`former`). A cohort's share "still
//! active after k years" counts its customers whose stage k calendar years after their first
//! delivery (29 February falls on 28 February) was `new_owner` or `active`; it is given once
//! that day has passed for every customer of the cohort.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::lifecycle::report::{quarter, GroupBy};
use crate::lifecycle::{Facts, LifecycleConfig, Stage};

use super::journey::touchpoints;
use super::{mean, median, Both, Profile, MODES};

/// Years a cohort is followed.
pub const COHORT_YEARS: usize = 3;

/// Tenures of one row in one mode, days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tenures(pub Vec<f64>);

impl Tenures {
    pub fn customers(&self) -> u64 {
        self.0.len() as u64
    }
    pub fn mean(&self) -> Option<f64> {
        mean(&self.0)
    }
    pub fn median(&self) -> Option<f64> {
        median(&self.0)
    }
}

/// One delivery cohort in one mode: its customers and, per year, whether each was still active
/// (`None`: that anniversary has not come yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cohort {
    pub customers: u64,
    pub still_active: [u64; COHORT_YEARS],
    pub observable: [u64; COHORT_YEARS],
}

impl Cohort {
    /// The survival shares, as far as every customer has been observed.
    pub fn shares(&self) -> Vec<f64> {
        (0..COHORT_YEARS)
            .take_while(|&k| self.customers > 0 && self.observable[k] == self.customers)
            .map(|k| self.still_active[k] as f64 / self.customers as f64)
            .collect()
    }
}

/// The whole tenure report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenureReport {
    pub rows: BTreeMap<String, Both<Tenures>>,
    pub total: Both<Tenures>,
    pub cohorts: BTreeMap<String, Both<Cohort>>,
}

/// `ms` moved `years` calendar years on (29 February to 28 February), at the same time of day.
pub fn years_after(ms: i64, years: i32) -> Option<i64> {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
    let date = hamgam_proto::calendar::add_months(t.date(), u32::try_from(years).ok()? * 12)?;
    Some(t.replace_date(date).unix_timestamp() * 1000 + ms.rem_euclid(1000))
}

/// The customer's tenure in `mode`, days (`None`: no touchpoint by `as_of`).
pub fn tenure_days(
    profile: &Profile,
    config: &LifecycleConfig,
    mode: Facts,
    as_of: i64,
) -> Option<f64> {
    let points = touchpoints(profile, mode, as_of);
    let first = points.first()?.at_ms;
    let end = match profile.facts.stage(config, as_of, mode) {
        Some(Stage::Defected | Stage::Former) => points.last().map_or(as_of, |t| t.at_ms),
        _ => as_of,
    };
    Some((end - first) as f64 / crate::lifecycle::DAY_MS as f64)
}

impl TenureReport {
    /// Adds one customer to the rows of `by` and to their first delivery's cohort.
    pub fn add(&mut self, profile: &Profile, config: &LifecycleConfig, by: GroupBy, as_of: i64) {
        for mode in MODES {
            if let Some(days) = tenure_days(profile, config, mode, as_of) {
                for group in profile.groups(by) {
                    self.rows
                        .entry(group)
                        .or_default()
                        .get_mut(mode)
                        .0
                        .push(days);
                }
                self.total.get_mut(mode).0.push(days);
            }
            let facts = &profile.facts;
            let holdings = match mode {
                Facts::All => &facts.holdings_all,
                Facts::TrustedOnly => &facts.holdings_trusted,
            };
            let Some(first) = holdings
                .iter()
                .filter(|h| h.delivered && h.from_ms <= as_of)
                .map(|h| h.from_ms)
                .min()
            else {
                continue;
            };
            let cohort = self
                .cohorts
                .entry(quarter(first))
                .or_default()
                .get_mut(mode);
            cohort.customers += 1;
            for k in 0..COHORT_YEARS {
                let Some(at) = years_after(first, k as i32 + 1).filter(|at| *at <= as_of) else {
                    continue;
                };
                cohort.observable[k] += 1;
                if matches!(
                    facts.stage(config, at, mode),
                    Some(Stage::NewOwner | Stage::Active)
                ) {
                    cohort.still_active[k] += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::DAY_MS;

    fn date_of(ms: i64) -> time::Date {
        OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .expect("in range")
            .date()
    }

    #[test]
    fn an_anniversary_is_the_same_calendar_day_and_29_february_falls_on_28() {
        // Every day from 2023 to 2029 (two leap days), at a time of day, 1 to 3 years on.
        let start = time::macros::datetime!(2023-01-01 13:45 UTC).unix_timestamp() * 1000;
        for day in 0..(7 * 366) {
            let at = start + day * DAY_MS + 123;
            let from = date_of(at);
            for years in 1..=3 {
                let later = years_after(at, years).expect("in range");
                let to = date_of(later);
                assert_eq!(to.year(), from.year() + years, "{from} + {years}");
                assert_eq!(to.month(), from.month(), "{from} + {years}");
                let leap_day = from.month() == time::Month::February && from.day() == 29;
                let day = if leap_day && !time::util::is_leap_year(to.year()) {
                    28
                } else {
                    from.day()
                };
                assert_eq!(to.day(), day, "{from} + {years}");
                assert_eq!(
                    later.rem_euclid(DAY_MS),
                    at.rem_euclid(DAY_MS),
                    "the time of day stays"
                );
            }
        }
    }

    #[test]
    fn a_quarters_last_day_is_in_that_quarter_and_the_next_day_is_not() {
        for year in 2023..=2029 {
            for (month, last, quarter_name) in
                [(3, 31, "Q1"), (6, 30, "Q2"), (9, 30, "Q3"), (12, 31, "Q4")]
            {
                let month = time::Month::try_from(month).expect("month");
                let day = time::Date::from_calendar_date(year, month, last).expect("date");
                let end = day
                    .with_hms(23, 59, 59)
                    .expect("time")
                    .assume_utc()
                    .unix_timestamp()
                    * 1000;
                assert_eq!(quarter(end), format!("{year}-{quarter_name}"));
                let next = quarter(end + 1000);
                assert_ne!(next, format!("{year}-{quarter_name}"), "{day}");
            }
        }
    }
}
