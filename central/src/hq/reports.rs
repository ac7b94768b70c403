//! Dealer scorecards and the lifecycle report, as `hamgam.hq.v1` messages.

use hamgam_proto::hq::v1 as hq;
use tonic::Status;

use crate::analytics::{stages, CustomerFilter};
use crate::ingest::Hub;
use crate::ingest::TREND_DAYS;
use crate::lifecycle::report::{median, GroupBy, LifecycleReport, ReportRow, StageFigures};
use crate::lifecycle::{LifecycleConfig, Stage, DAY_MS};
use crate::rules::score::{self, day_of, ReliabilityScore};
use crate::store::HubStore;

use super::unavailable;

/// Weeks of score trend on a scorecard.
const TREND_WEEKS: i64 = 12;

pub fn reliability(r: ReliabilityScore, window_days: u32) -> hq::Reliability {
    hq::Reliability {
        score: r.score,
        previous_score: r.previous,
        window_records: r.records,
        flagged: r.flagged,
        rejected: r.rejected,
        top_rules: r
            .top_rules
            .into_iter()
            .map(|(rule_id, records)| hq::RuleCount { rule_id, records })
            .collect(),
        window_days,
    }
}

/// One dealer's scorecard as of `as_of`.
pub fn scorecard<S: HubStore>(
    hub: &Hub<S>,
    dealer_id: &str,
    as_of: i64,
) -> Result<hq::DealerScorecard, Status> {
    let store = hub.store().map_err(unavailable)?;
    let state = store
        .dealer(dealer_id)
        .map_err(unavailable)?
        .ok_or_else(|| {
            Status::not_found(format!("dealer {dealer_id} never synced with this hub"))
        })?;
    let rules = hub.rules();
    let window_days = rules.score_window_days;
    // One read of the tallies serves every point of the trend.
    let from_day = day_of(as_of) - (TREND_WEEKS - 1) * 7 - window_days - TREND_DAYS;
    let tallies = store.tallies(from_day).map_err(unavailable)?;
    let score_at = |t: i64| -> Option<ReliabilityScore> {
        score::scores(
            &tallies,
            t,
            window_days,
            TREND_DAYS,
            rules.score_prior_records,
        )
        .remove(dealer_id)
    };
    let trend = (0..TREND_WEEKS)
        .rev()
        .filter_map(|w| {
            let day = day_of(as_of) - w * 7;
            score_at(day * DAY_MS + DAY_MS - 1).map(|s| hq::ScorePoint {
                day_ms: day * DAY_MS,
                score: s.score,
            })
        })
        .collect();
    // Volumes over the score's window, the same days the score reads.
    let window = day_of(as_of) - window_days + 1..=day_of(as_of);
    let mut volumes: std::collections::BTreeMap<String, u64> = Default::default();
    for (d, day, tally) in &tallies {
        if d == dealer_id && window.contains(day) {
            for (kind, n) in &tally.kinds {
                *volumes.entry(kind.clone()).or_default() += n;
            }
        }
    }
    Ok(hq::DealerScorecard {
        dealer_id: dealer_id.to_owned(),
        reliability: score_at(as_of).map(|r| reliability(r, window_days as u32)),
        trend,
        last_seen_ms: state.last_seen_ms,
        stored_seq: state.stored_seq,
        verdict_backlog: state.verdict_cursor.saturating_sub(state.verdicts_acked),
        clock_offset_ms: state.clock_offset_ms,
        records: state.record_count,
        quarantined: state.rejected_count,
        volumes: volumes
            .into_iter()
            .map(|(kind, records)| hq::KindVolume { kind, records })
            .collect(),
    })
}

fn counts(f: &StageFigures) -> hq::StageCounts {
    hq::StageCounts {
        prospect: f.count(Stage::Prospect),
        new_owner: f.count(Stage::NewOwner),
        never_serviced: f.count(Stage::NeverServiced),
        active: f.count(Stage::Active),
        recently_lost: f.count(Stage::RecentlyLost),
        defected: f.count(Stage::Defected),
        former: f.count(Stage::Former),
        service_retention: f.service_retention(),
        days_to_first_service: median(&f.days_to_first_service),
        complaint_resolution_days: median(&f.complaint_resolution_days),
    }
}

fn row(r: &ReportRow) -> hq::LifecycleRow {
    hq::LifecycleRow {
        group: r.group.clone(),
        customers: r.customers,
        all_facts: Some(counts(&r.all_facts)),
        trusted_only: Some(counts(&r.trusted_only)),
    }
}

/// The lifecycle report over every customer (blocking: run it off the async workers).
pub fn lifecycle<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    by: GroupBy,
    filter: &CustomerFilter,
    as_of: i64,
) -> Result<hq::LifecycleReportResponse, Status> {
    let store = hub.store().map_err(unavailable)?;
    let registry = hub.registry();
    let region = |dealer: &str| registry.region(dealer);
    let started = std::time::Instant::now();
    let LifecycleReport {
        as_of_ms,
        rows,
        total,
    } = stages::report(&*store, config, by, filter, &region, as_of, |done| {
        if started.elapsed().as_secs() >= 2 && done % 10_000 == 0 {
            tracing::info!(customers = done, "lifecycle report in progress");
        }
    })
    .map_err(unavailable)?;
    Ok(hq::LifecycleReportResponse {
        as_of_ms,
        rows: rows.iter().map(row).collect(),
        total: Some(row(&total)),
    })
}
