//! The rules give the same answer whatever day they run on: a sweep over "now" (every month end
//! of a leap year, 29 February, the day the simulator once disagreed with the hub, and random
//! days of 2025-2032) in which, for every date, a small simulated network is judged by a real
//! hub (in process, sled on disk, its clock stopped at that date) and the hub's findings must
//! equal both the simulator's labels and the hand-written reading of RULES.md (`truth.rs`),
//! record by record, for every rule.

use std::collections::BTreeSet;

use hamgam_dealer_agent::simulate::{
    date_of, ms_of, simulate, FaultRates, SimulationConfig, INJECTABLE_RULES,
};
use hamgam_tests::dealer;
use hamgam_tests::judged::{self, Shuffle};
use time::macros::date;

/// The dates of the sweep, each at a time of day from the same generator.
fn sweep() -> Vec<time::Date> {
    let mut dates: Vec<time::Date> = (1..=12u8)
        .map(|m| {
            let month = time::Month::try_from(m).expect("month");
            let last = time::util::days_in_month(month, 2028);
            time::Date::from_calendar_date(2028, month, last).expect("month end")
        })
        .collect();
    dates.push(date!(2028 - 02 - 29));
    dates.push(date!(2026 - 12 - 01));
    dates.push(date!(2027 - 03 - 01));
    let mut rng = Shuffle::new(2026);
    let from = date!(2025 - 01 - 01);
    while dates.len() < 64 {
        dates.push(from + time::Duration::days(rng.below(8 * 365) as i64));
    }
    dates
}

fn network(seed: u64, now_ms: i64) -> hamgam_dealer_agent::simulate::SimulatedNetwork {
    let mut c = SimulationConfig::small(
        seed,
        vec![dealer("D-1042"), dealer("D-2077"), dealer("D-3155")],
        now_ms,
    );
    c.faults = FaultRates::uniform(0.04).with("S04", 0.5).expect("rate");
    c.fleet_per_dealer = 60;
    c.days = 3;
    c.visits_per_day = 14;
    c.start = date_of(now_ms) - time::Duration::days(40);
    simulate(&c).expect("simulates")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_truth_and_hub_agree_on_every_date() {
    let mut rng = Shuffle::new(7);
    let mut problems = Vec::new();
    let mut exercised = BTreeSet::new();
    let dates = sweep();
    for (i, day) in dates.iter().enumerate() {
        let now_ms = ms_of(*day) + rng.below(86_400_000) as i64;
        let net = network(100 + i as u64, now_ms);
        exercised.extend(net.fault_counts().into_keys());
        for (at, labelled, truth, hub) in judged::three_readings(&net, now_ms).await {
            problems.push(format!(
                "\n  now {now_ms} ({day}), seed {}: {at:?}: labelled {labelled:?}, truth {truth:?}, hub {hub:?}",
                100 + i
            ));
        }
    }
    assert!(dates.len() >= 60, "{} dates", dates.len());
    let missing: Vec<&&str> = INJECTABLE_RULES
        .iter()
        .filter(|r| !exercised.contains(**r))
        .collect();
    assert!(
        missing.is_empty(),
        "rules never injected in the sweep: {missing:?}"
    );
    assert!(
        problems.is_empty(),
        "{} disagreements over {} dates:{}",
        problems.len(),
        dates.len(),
        problems.iter().take(40).cloned().collect::<String>()
    );
}
