//! The rules of one RO number (RO3, Q01's visit timing) and of one dealer month (S04, Q01's
//! uniform scores).

use super::super::record::day;
use super::super::{finding, RuleConfig};
use super::{Fact, Member, DAY_MS};
use crate::domain::{Arg, Finding, Reason};

/// RO3 and the visit-timing part of Q01.
pub(super) fn ro_number(
    number: &str,
    members: &[&Member],
    config: &RuleConfig,
    add: &mut impl FnMut(&Member, Finding),
) {
    let ros: Vec<(&Member, &str, i64, i64)> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::RepairOrder {
                vin,
                opened_ms,
                completed_ms,
                ..
            } => Some((*m, vin.as_str(), *opened_ms, *completed_ms)),
            _ => None,
        })
        .collect();
    let Some((_, first_vin, first_opened, first_completed)) = ros.first().copied() else {
        return;
    };
    for (m, vin, opened, _) in &ros[1..] {
        if *vin != first_vin || day(*opened) != day(first_opened) {
            add(
                m,
                finding(
                    "RO3",
                    "repair_order.ro_number",
                    Reason::new("RO3.number_reused")
                        .arg("number", number)
                        .arg("vin", first_vin)
                        .arg("opened", Arg::Day(first_opened)),
                ),
            );
        }
    }
    if first_completed <= 0 {
        return;
    }
    let min_ms = config.survey_min_minutes_after_visit * 60_000;
    for m in members {
        if let Fact::Survey { submitted_ms, .. } = m.fact {
            if submitted_ms - first_completed < min_ms {
                add(
                    m,
                    finding(
                        "Q01",
                        "survey.submitted_at_ms",
                        Reason::new("Q01.too_soon")
                            .arg("submitted", Arg::Moment(submitted_ms))
                            .arg("minutes", config.survey_min_minutes_after_visit)
                            .arg("number", number)
                            .arg("completed", Arg::Moment(first_completed)),
                    ),
                );
            }
        }
    }
}

/// S04 and the uniform-score part of Q01.
pub(super) fn dealer_month(
    month: &str,
    members: &[&Member],
    config: &RuleConfig,
    add: &mut impl FnMut(&Member, Finding),
) {
    let deliveries: Vec<(&Member, i64)> = members
        .iter()
        .filter_map(|m| match m.fact {
            Fact::Delivery { delivered_ms, .. } => Some((*m, delivered_ms)),
            _ => None,
        })
        .collect();
    let tail: Vec<&Member> = deliveries
        .iter()
        .filter(|(_, t)| in_month_tail(*t, config))
        .map(|(m, _)| *m)
        .collect();
    let body = deliveries.len() - tail.len();
    if !deliveries.is_empty() && s04_fires(month, tail.len(), body, config) {
        let finding = s04_finding(month, config);
        for m in tail {
            add(m, finding.clone());
        }
    }
    let surveys: Vec<(&Member, bool)> = members
        .iter()
        .filter_map(|m| match m.fact {
            Fact::Survey { top_score, .. } => Some((*m, top_score)),
            _ => None,
        })
        .collect();
    let top = surveys.iter().filter(|s| s.1).count();
    if q01_uniform_fires(surveys.len(), top, config) {
        let finding = q01_uniform_finding(month, config);
        for (m, _) in &surveys {
            add(m, finding.clone());
        }
    }
}

/// Whether a delivery at `delivered_ms` falls in the last `bunching_tail_days` of its month.
pub fn in_month_tail(delivered_ms: i64, config: &RuleConfig) -> bool {
    delivered_ms >= month_tail(delivered_ms, config.bunching_tail_days).1
}

/// S04: a month (`YYYY-MM`) with `tail` deliveries in its last days and `body` in the rest
/// bunches when enough are in the tail at a rate well above the body's.
pub fn s04_fires(month: &str, tail: usize, body: usize, config: &RuleConfig) -> bool {
    let Some(start_ms) = month_start_ms(month) else {
        return false;
    };
    let (days, _) = month_tail(start_ms, config.bunching_tail_days);
    let tail_days = config.bunching_tail_days as f64;
    let tail_rate = tail as f64 / tail_days;
    let body_rate = body.max(1) as f64 / (days as f64 - tail_days);
    tail >= config.bunching_min_deliveries && tail_rate > config.bunching_ratio * body_rate
}

/// The S04 finding, on each delivery in the month's tail.
pub fn s04_finding(month: &str, config: &RuleConfig) -> Finding {
    finding(
        "S04",
        "retail_delivery.delivery_date",
        Reason::new("S04.bunching")
            .arg("tail_days", config.bunching_tail_days)
            .arg("month", month)
            .arg("ratio", config.bunching_ratio.to_string())
            .arg("min", config.bunching_min_deliveries),
    )
}

/// Q01 (uniform scores): enough surveys in a month, and a top-score share at or above the
/// threshold.
pub fn q01_uniform_fires(surveys: usize, top: usize, config: &RuleConfig) -> bool {
    surveys >= config.survey_uniform_min_count
        && surveys > 0
        && top as f64 / surveys as f64 >= config.survey_uniform_top_share
}

/// The uniform-score Q01 finding, on each survey of the month.
pub fn q01_uniform_finding(month: &str, config: &RuleConfig) -> Finding {
    finding(
        "Q01",
        "survey.csat",
        Reason::new("Q01.uniform")
            .arg(
                "share",
                format!("{:.0}", config.survey_uniform_top_share * 100.0),
            )
            .arg("month", month)
            .arg("min", config.survey_uniform_min_count),
    )
}

/// The first moment (UTC) of a `YYYY-MM` month, as [`super::GroupKey::DealerMonth`] names it.
pub fn month_start_ms(month: &str) -> Option<i64> {
    let (year, month) = month.split_once('-')?;
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, 1).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// The number of days in the month of `ms` and the first moment of its last `tail_days` days.
fn month_tail(ms: i64, tail_days: u32) -> (u32, i64) {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return (30, i64::MAX);
    };
    let days = time::util::days_in_month(t.month(), t.year()) as u32;
    let first = time::Date::from_calendar_date(t.year(), t.month(), 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
        .unwrap_or(ms);
    (days, first + (days - tail_days) as i64 * DAY_MS)
}
