//! The dealer reliability score (RULES.md): per dealer, over a sliding window of days, the
//! severity-weighted rate of flagged and rejected records, shrunk towards the network average
//! until the dealer has enough records (a Beta prior), shown as 0-100 with its trend and the
//! top rules the dealer trips.
//!
//! The hub keeps a [`DayTally`] per dealer and day (the day the record was made), updated in
//! the same atomic change as the verdicts, so the score is always up to date and computed from
//! at most `window` tallies per dealer. A record's weight is its worst finding: flag 1,
//! high flag or rejected field 2, rejected 3, out of 3.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Severity, Verdict};

const DAY_MS: i64 = 86_400_000;

/// The largest weight one record can carry.
pub const MAX_WEIGHT: u64 = 3;

pub use crate::model::groups::DayTally;

/// A record's weight: its worst finding.
pub fn weight(verdict: &Verdict) -> u64 {
    verdict
        .findings
        .iter()
        .map(|f| match f.severity {
            Severity::Flag => 1,
            Severity::FlagHigh | Severity::RejectField => 2,
            Severity::Reject => 3,
        })
        .max()
        .unwrap_or(0)
}

impl DayTally {
    /// Counts a verdict in (`add`) or out (`!add`).
    pub fn count(&mut self, verdict: &Verdict, add: bool) {
        let step = |n: &mut u64| {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        };
        step(&mut self.records);
        match verdict.outcome {
            crate::domain::Outcome::Accepted => {}
            crate::domain::Outcome::AcceptedWithFlags => step(&mut self.flagged),
            crate::domain::Outcome::Rejected => step(&mut self.rejected),
        }
        let w = weight(verdict);
        self.weight = if add {
            self.weight + w
        } else {
            self.weight.saturating_sub(w)
        };
        let mut rules: Vec<&str> = verdict
            .findings
            .iter()
            .map(|f| f.rule_id.as_str())
            .collect();
        rules.sort_unstable();
        rules.dedup();
        for rule in rules {
            let n = self.rules.entry(rule.to_owned()).or_default();
            step(n);
            if *n == 0 {
                self.rules.remove(rule);
            }
        }
    }

    fn merge(&mut self, other: &DayTally) {
        self.records += other.records;
        self.flagged += other.flagged;
        self.rejected += other.rejected;
        self.weight += other.weight;
        for (rule, n) in &other.rules {
            *self.rules.entry(rule.clone()).or_default() += n;
        }
        for (kind, n) in &other.kinds {
            *self.kinds.entry(kind.clone()).or_default() += n;
        }
    }
}

/// The day number (days since the Unix epoch) of a moment.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// A dealer's reliability score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityScore {
    /// 0 (nothing can be trusted) to 100 (nothing flagged).
    pub score: f64,
    /// The score over the window ending `trend_days` ago; `None` without records then.
    pub previous: Option<f64>,
    /// Over the window.
    pub records: u64,
    pub flagged: u64,
    pub rejected: u64,
    /// Severity-weighted rate of bad records before shrinking, 0..1.
    pub raw_rate: f64,
    /// The three rules the dealer trips most, with their record counts.
    pub top_rules: Vec<(String, u64)>,
}

/// Scores every dealer from its day tallies, at `now_ms`.
///
/// `tallies` holds `(dealer, day, tally)` for at least the last `window_days + trend_days`.
pub fn scores(
    tallies: &[(String, i64, DayTally)],
    now_ms: i64,
    window_days: i64,
    trend_days: i64,
    prior_records: f64,
) -> BTreeMap<String, ReliabilityScore> {
    let today = day_of(now_ms);
    let window = |end: i64| {
        let mut per_dealer: BTreeMap<&str, DayTally> = BTreeMap::new();
        for (dealer, day, tally) in tallies {
            if *day > end - window_days && *day <= end {
                per_dealer.entry(dealer).or_default().merge(tally);
            }
        }
        per_dealer
    };
    let shrunk = |per_dealer: &BTreeMap<&str, DayTally>| {
        let (records, weight) = per_dealer
            .values()
            .fold((0u64, 0u64), |(r, w), t| (r + t.records, w + t.weight));
        let network = if records == 0 {
            0.0
        } else {
            weight as f64 / (MAX_WEIGHT * records) as f64
        };
        per_dealer
            .iter()
            .map(|(dealer, t)| {
                let bad = t.weight as f64 / MAX_WEIGHT as f64;
                let rate = (bad + prior_records * network) / (t.records as f64 + prior_records);
                (dealer.to_string(), (100.0 * (1.0 - rate)).clamp(0.0, 100.0))
            })
            .collect::<BTreeMap<String, f64>>()
    };
    let now = window(today);
    let before = window(today - trend_days);
    let now_scores = shrunk(&now);
    let before_scores = shrunk(&before);
    now.iter()
        .map(|(dealer, t)| {
            let mut top: Vec<(String, u64)> =
                t.rules.iter().map(|(r, n)| (r.clone(), *n)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(3);
            let score = ReliabilityScore {
                score: now_scores[*dealer],
                previous: before_scores.get(*dealer).copied(),
                records: t.records,
                flagged: t.flagged,
                rejected: t.rejected,
                raw_rate: if t.records == 0 {
                    0.0
                } else {
                    t.weight as f64 / (MAX_WEIGHT * t.records) as f64
                },
                top_rules: top,
            };
            (dealer.to_string(), score)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Finding, Outcome, Severity, Verdict};

    fn verdict(severities: &[Severity]) -> Verdict {
        let findings = severities
            .iter()
            .map(|s| Finding {
                rule_id: format!("{s:?}"),
                severity: *s,
                field: String::new(),
                reason: crate::domain::Reason::new("R00.missing"),
            })
            .collect();
        Verdict::from_findings("r".into(), 1, findings, 0)
    }

    fn tally(clean: u64, flagged: u64, rejected: u64) -> DayTally {
        let mut t = DayTally::default();
        for _ in 0..clean {
            t.count(&verdict(&[]), true);
        }
        for _ in 0..flagged {
            t.count(&verdict(&[Severity::Flag]), true);
        }
        for _ in 0..rejected {
            t.count(&verdict(&[Severity::Reject]), true);
        }
        t
    }

    #[test]
    fn counting_out_undoes_counting_in() {
        let mut t = tally(3, 2, 1);
        let v = verdict(&[Severity::FlagHigh, Severity::Flag]);
        assert_eq!(v.outcome, Outcome::AcceptedWithFlags);
        let before = t.clone();
        t.count(&v, true);
        assert_eq!(t.weight, before.weight + 2);
        t.count(&v, false);
        assert_eq!(t, before);
    }

    #[test]
    fn a_small_dealer_is_pulled_towards_the_network_and_a_large_one_is_not() {
        let now = 100 * DAY_MS;
        let tallies = vec![
            // A big, mostly clean dealer sets the network average.
            ("D-BIG".to_string(), 99, tally(990, 10, 0)),
            // A tiny dealer with one rejected record out of two.
            ("D-TINY".to_string(), 99, tally(1, 0, 1)),
            // A big, bad dealer: a third of its records rejected.
            ("D-BAD".to_string(), 98, tally(600, 0, 300)),
        ];
        let s = scores(&tallies, now, 90, 30, 50.0);
        let raw_tiny = 100.0 * (1.0 - s["D-TINY"].raw_rate);
        assert!(
            raw_tiny <= 50.0,
            "unshrunk the tiny dealer looks bad: {raw_tiny}"
        );
        assert!(
            s["D-TINY"].score > s["D-BAD"].score + 10.0,
            "two records are not enough to condemn a dealer: {:?}",
            s
        );
        assert!(s["D-BAD"].score < 75.0, "{:?}", s["D-BAD"]);
        assert!(s["D-BIG"].score > 98.0, "{:?}", s["D-BIG"]);
        assert_eq!(s["D-BAD"].top_rules, vec![("Reject".to_string(), 300)]);
        // Records older than the window do not count, and the trend compares with 30 days ago.
        let later = scores(&tallies, now + 95 * DAY_MS, 90, 30, 50.0);
        assert!(later.is_empty());
        assert!(s["D-BAD"].previous.is_none());
    }
}
