//! The simulated network: deterministic per seed, and its fault labels agree with an independent
//! hand-written reading of RULES.md.

use std::collections::{BTreeMap, BTreeSet};

use hamgam_dealer_agent::simulate::{simulate, FaultRates, SimulationConfig, INJECTABLE_RULES};
use hamgam_tests::dealer;
use hamgam_tests::truth;

const NOW_MS: i64 = 1_795_000_000_000; // 2026-11-18

fn config(seed: u64, rate: f64) -> SimulationConfig {
    let mut c = SimulationConfig::small(
        seed,
        vec![dealer("D-1042"), dealer("D-2077"), dealer("D-3155")],
        NOW_MS,
    );
    // S04 is one burst per dealer at most: inject it often enough to be seen.
    c.faults = FaultRates::uniform(rate)
        .with("S04", if rate > 0.0 { 0.5 } else { 0.0 })
        .expect("S04 rate");
    c.days = 5;
    c.start = hamgam_dealer_agent::simulate::date_of(NOW_MS) - time::Duration::days(40);
    c
}

#[test]
fn the_same_seed_gives_the_same_network_and_another_seed_another() {
    let a = simulate(&config(42, 0.03)).unwrap();
    let b = simulate(&config(42, 0.03)).unwrap();
    assert_eq!(a, b);
    let c = simulate(&config(43, 0.03)).unwrap();
    assert_ne!(a.logs, c.logs);
}

#[test]
fn a_clean_network_breaks_no_rule_by_accident() {
    let network = simulate(&config(7, 0.0)).unwrap();
    let found = truth::check(&network, NOW_MS);
    let total: usize = network.logs.values().map(Vec::len).sum();
    assert!(total > 1000, "a realistic volume: {total} records");
    assert!(
        found.is_empty(),
        "clean records break rules: {:?}",
        found.iter().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn labels_agree_with_a_hand_written_check_for_every_injected_rule() {
    for seed in [1, 2, 3] {
        let network = simulate(&config(seed, 0.03)).unwrap();
        let found = truth::check(&network, NOW_MS);
        let mut labelled: BTreeMap<(String, usize), BTreeSet<String>> = BTreeMap::new();
        for (d, log) in &network.logs {
            for (i, r) in log.iter().enumerate() {
                if !r.faults.is_empty() {
                    labelled.insert((d.clone(), i), r.faults.iter().cloned().collect());
                }
            }
        }
        labelled.retain(|_, v| !v.is_empty());
        let mismatches: Vec<_> = labelled
            .keys()
            .chain(found.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| labelled.get(*k) != found.get(*k))
            .map(|k| {
                let r = &network.logs[&k.0][k.1];
                let what = match &r.payload {
                    hamgam_proto::record::v1::record::Payload::Customer(c) => {
                        format!(
                            "customer {} id={} co={} m={} {} {}",
                            c.customer_ref,
                            c.national_id,
                            c.company_national_id,
                            c.mobile,
                            c.given_name,
                            c.family_name
                        )
                    }
                    hamgam_proto::record::v1::record::Payload::RepairOrder(ro) => {
                        format!(
                            "ro {} vin={} opened={}",
                            ro.ro_number, ro.vin, ro.opened_at_ms
                        )
                    }
                    other => format!("{:?}", hamgam_proto::RecordKind::of(other)),
                };
                (
                    k.clone(),
                    labelled.get(k).cloned(),
                    found.get(k).cloned(),
                    what,
                )
            })
            .collect();
        assert!(
            mismatches.is_empty(),
            "seed {seed}: {} of {} labelled records disagree (at, labels, hand check): {:?}",
            mismatches.len(),
            labelled.len(),
            &mismatches[..mismatches.len().min(40)]
        );
        // Every injectable rule is exercised across the network (S04 per dealer, C07/W03 need
        // several dealers: three here).
        let counts = network.fault_counts();
        let missing: Vec<_> = INJECTABLE_RULES
            .iter()
            .filter(|r| !counts.contains_key(**r))
            .collect();
        assert!(
            missing.len() <= 3,
            "seed {seed}: rules never injected: {missing:?} ({counts:?})"
        );
        println!(
            "seed {seed}: {} records, faults {counts:?}",
            network.logs.values().map(Vec::len).sum::<usize>()
        );
    }
}
