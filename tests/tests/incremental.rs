//! Incremental judging (`rules::group_state`) equals the reference (`history::judge_group` on
//! the whole group), and a new member of a group rewrites only what it changes.
//!
//! - Random multi-dealer histories (shared mobiles, one national ID under two names,
//!   corrections) and the simulator's faulty networks (bunched deliveries, uniform surveys) are
//!   delivered in random orders and batchings, with duplicated batches, to a real hub on sled.
//!   Afterwards every group's members are judged again by the reference on the final set, and
//!   each member's stored findings and its record's findings for that group must have the same
//!   (rule, severity, field) keys; each incrementally judged group's stored state must equal the
//!   state counted from its members.
//! - The histories include imported DMS records from two sources with a spell of one source's
//!   clock set ahead, an imported record amended and one withdrawn: T01 on a source's sequence
//!   (judged from a record's stored neighbours only) equals the reference too.
//! - HQ's customer summaries (`analytics::keeper`), kept from the store's touched log while
//!   the batches come in, equal the summaries gathered afresh from the final store.
//! - A dealer month of N uniform surveys, then one survey more: one record written and no
//!   verdict change while Q01 keeps firing; the survey that ends the uniformity changes every
//!   survey's verdict and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use hamgam_central::analytics::keeper;
use hamgam_central::judge::{self, Rulebook, Sender};
use hamgam_central::rules::group_state;
use hamgam_central::rules::history::GroupKey;
use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::rules::{RuleConfig, Scope};
use hamgam_central::store::HubStore;
use hamgam_central::{Hub, SledStore};
use hamgam_dealer_agent::simulate::{date_of, FaultRates};
use hamgam_gateway::sync::Ingest;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::{history as generated, judged};
use proptest::prelude::*;

const NOW_MS: i64 = hamgam_tests::TEST_NOW_MS;

/// What the check saw, so a test can tell it was not vacuous.
#[derive(Debug, Default)]
struct Seen {
    groups: usize,
    incremental_groups: usize,
    /// Members with a finding of each rule (from the incrementally judged groups): a random
    /// history may have none; the simulated networks must have each.
    fired: BTreeMap<String, usize>,
    /// Imported records flagged T01 from their source's sequence (judged from neighbours).
    source_clock: usize,
}

/// Every group the hub's records belong to, judged again by the reference
/// (`central admin rebuild --check`'s comparison), and what fired in the incremental groups.
fn check_against_reference(hub: &Hub<SledStore>, config: &RuleConfig) -> Seen {
    let store = hub.store().expect("store");
    let check = hamgam_central::rebuild::check_groups(&*store, config, |_| {}).expect("check");
    assert!(
        check.differing.is_empty() && check.states_differing.is_empty(),
        "incremental != reference: {:?} {:?}",
        &check.differing[..check.differing.len().min(10)],
        check.states_differing
    );
    assert!(
        check.vehicles_differing.is_empty(),
        "the merge's vehicle facts != the records': {:?}",
        &check.vehicles_differing[..check.vehicles_differing.len().min(10)]
    );
    let mut seen = Seen {
        groups: check.groups as usize,
        ..Seen::default()
    };
    let mut incremental: BTreeSet<GroupKey> = BTreeSet::new();
    for (dealer, _) in store.dealers().expect("dealers") {
        for r in store.records(&dealer, 0, usize::MAX).expect("records") {
            for (scope, findings) in &r.group_findings {
                if *scope == Scope::Source {
                    seen.source_clock += findings.iter().filter(|f| f.rule_id == "T01").count();
                }
                if matches!(
                    scope,
                    Scope::Mobile | Scope::NationalId | Scope::DealerMonth
                ) {
                    for f in findings {
                        *seen.fired.entry(f.rule_id.clone()).or_default() += 1;
                    }
                }
            }
            incremental.extend(r.groups.into_iter().filter(group_state::is_incremental));
        }
    }
    seen.incremental_groups = incremental.len();
    seen
}

async fn delivered_and_checked(
    logs: &BTreeMap<String, Vec<pb::Record>>,
    registry: DealerRegistry,
    now: i64,
    order_seed: u64,
) -> Seen {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged::hub(dir.path(), registry, now);
    // HQ's customer summaries are kept from the touched log as the batches come in (every
    // third batch, so some entries are read together), and equal what is gathered afresh.
    let refresh = |hub: &Hub<SledStore>| {
        keeper::refresh(&*hub.store().expect("store"), |_| {}).expect("summaries refreshed")
    };
    assert!(
        refresh(&hub).built,
        "an empty store's summaries are built first"
    );
    judged::feed_with(&hub, logs, order_seed, |hub, sent| {
        if sent % 3 == 0 {
            assert!(!refresh(hub).built, "kept, not built again");
        }
    })
    .await;
    refresh(&hub);
    let store = hub.store().expect("store");
    let stale = keeper::stale(&*store).expect("summaries checked");
    assert!(stale.is_empty(), "stale customer summaries: {stale:?}");
    assert!(
        !store.summaries("", 1).expect("summaries").is_empty(),
        "no summaries to compare"
    );
    let seen = check_against_reference(&hub, hub.rules());
    hub.close().await;
    seen
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn incremental_findings_equal_the_reference_in_any_order_and_batching(
        seed in 1u64..u64::MAX,
        dealers in 2usize..5,
        people in 6usize..30,
    ) {
        runtime().block_on(async {
            let history = generated::generate(seed, dealers, people, NOW_MS);
            for order_seed in [0, 1, seed | 2] {
                let seen = delivered_and_checked(
                    &history.logs,
                    DealerRegistry::default(),
                    NOW_MS,
                    order_seed,
                )
                .await;
                prop_assert!(
                    seen.incremental_groups > 0 && seen.groups > seen.incremental_groups,
                    "{seen:?}"
                );
                // Each dealer's import has a spell of its DMS clock set ahead: one T01 each.
                prop_assert_eq!(seen.source_clock, dealers.max(2), "{:?}", seen);
            }
            Ok(())
        })?;
    }
}

#[test]
fn incremental_findings_equal_the_reference_on_faulty_simulated_networks() {
    runtime().block_on(async {
        for seed in [11, 21] {
            let mut config = hamgam_dealer_agent::simulate::SimulationConfig::small(
                seed,
                vec![
                    hamgam_tests::dealer("D-1001"),
                    hamgam_tests::dealer("D-1002"),
                    hamgam_tests::dealer("D-1003"),
                ],
                NOW_MS,
            );
            config.faults = FaultRates::uniform(0.03).with("S04", 0.5).expect("rate");
            config.days = 5;
            config.start = date_of(NOW_MS) - time::Duration::days(40);
            let net = hamgam_dealer_agent::simulate::simulate(&config).expect("simulation");
            let mut logs = judged::wire_logs(&net, NOW_MS);
            // A month of uniformly top-scored surveys (and one low score) at a fourth dealer:
            // Q01 starts firing somewhere in each delivery order.
            let mut uniform = generated::Log::new("D-1004", NOW_MS);
            for i in 0..40 {
                uniform.push(survey(i, i != 7));
            }
            logs.insert("D-1004".into(), uniform.records);
            let mut fired = BTreeSet::new();
            for order_seed in [0, 1, 2] {
                let seen =
                    delivered_and_checked(&logs, judged::registry(&net), NOW_MS, order_seed).await;
                fired.extend(seen.fired.into_keys());
            }
            for rule in ["S04", "Q01", "C05", "C07"] {
                assert!(
                    fired.contains(rule),
                    "seed {seed}: no incrementally judged {rule} to compare: {fired:?}"
                );
            }
        }
    });
}

/// A survey of `dealer`'s month, top-scored or not.
fn survey(i: usize, top: bool) -> Payload {
    Payload::Survey(pb::Survey {
        survey_ref: format!("SV-{i}"),
        customer_ref: format!("C-{i}"),
        subject: pb::SurveySubject::Delivery as i32,
        subject_ref: format!("DL-{i}"),
        submitted_at_ms: NOW_MS - 86_400_000 + i as i64 * 60_000,
        channel: pb::SurveyChannel::Sms as i32,
        csat: if top { 5 } else { 2 },
        nps: Some(if top { 10 } else { 3 }),
        ..Default::default()
    })
}

#[test]
fn one_more_member_writes_only_what_changes_what_its_group_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), 8 << 20).expect("store");
    let config = RuleConfig::default();
    let registry = DealerRegistry::default();
    let rules = Rulebook {
        config: &config,
        registry: &registry,
    };
    let n = config.survey_uniform_min_count * 2;
    let mut log = generated::Log::new("D-1", NOW_MS);
    let judge_next = |log: &mut generated::Log, payloads: Vec<Payload>| {
        let before = log.records.len();
        for p in payloads {
            log.push(p);
        }
        let arrivals = log.records[before..]
            .iter()
            .map(hamgam_central::wire::arrival)
            .collect();
        let sender = Sender {
            dealer: "D-1",
            stored_seq: before as u64,
            clock_offset_ms: 0,
        };
        let judged = judge::judge_batch(&store, &rules, &sender, arrivals, NOW_MS).expect("judged");
        store.apply(&judged.change).expect("applied");
        judged
    };
    let first = judge_next(&mut log, (0..n).map(|i| survey(i, true)).collect());
    assert!(
        first
            .verdicts
            .iter()
            .all(|v| v.findings.iter().any(|f| f.rule_id == "Q01")),
        "{n} top-scored surveys in a month are uniform"
    );
    let one_more = judge_next(&mut log, vec![survey(n, true)]);
    assert_eq!(
        (
            one_more.change.records.len(),
            one_more.change.verdict_updates.len()
        ),
        (1, 0),
        "one more uniform survey writes itself only: every other verdict says the same"
    );
    // Enough low scores to end the uniformity: every survey's Q01 goes.
    let low =
        (config.survey_uniform_min_count as f64 * 2.0 * (1.0 - config.survey_uniform_top_share))
            .ceil() as usize
            + 1;
    let ended = judge_next(
        &mut log,
        (0..low).map(|i| survey(n + 1 + i, false)).collect(),
    );
    assert_eq!(
        ended.change.verdict_updates.len(),
        n + 1,
        "each earlier survey's verdict changes once, nothing else"
    );
    assert_eq!(ended.change.records.len(), n + 1 + low);
    assert!(ended
        .change
        .verdict_updates
        .iter()
        .all(|(_, v)| v.findings.iter().all(|f| f.rule_id != "Q01")));
}

/// A delivery corrected from A to B and then to C, and another corrected from A to B and then
/// withdrawn, batch after batch with the summaries kept between: B's summary must lose the
/// vehicle though nothing in the store names B any more (the contact index only grows).
#[test]
fn a_record_corrected_twice_or_withdrawn_leaves_no_stale_customer_summary() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = judged::hub(dir.path(), DealerRegistry::default(), NOW_MS);
        let mut log = generated::Log::new("D-1001", NOW_MS);
        for (r, given, id, mobile) in [
            ("A", "علی", "001354241", "09121593574"),
            ("B", "سارا", "002468135", "09124862179"),
            ("C", "رضا", "004681357", "09183649251"),
        ] {
            log.push(generated::person(
                r,
                given,
                "کریمی",
                &generated::nid(id),
                mobile,
            ));
        }
        let at = NOW_MS - 30 * 86_400_000;
        log.push(generated::delivery(&generated::vin(1), "A", at));
        log.push(generated::delivery(&generated::vin(2), "A", at));
        let (first, second) = (log.records[3].clone(), log.records[4].clone());
        let mut sent = 0;
        let mut step = |log: &generated::Log| {
            let batch = log.records[sent..].to_vec();
            sent = log.records.len();
            batch
        };
        let dealer = hamgam_tests::dealer("D-1001");
        let store = hub.store().expect("store");
        let names_of = |customer_ref: &str| {
            let party = ("D-1001".to_owned(), customer_ref.to_owned());
            let id = store.link(&party).expect("link").expect("linked");
            let bytes = store.summary(&id).expect("read").expect("summarised");
            hamgam_central::analytics::summary::CustomerSummary::decode(&id, &bytes)
                .expect("decodes")
                .expect("this version")
                .vehicles
                .into_iter()
                .map(|v| v.vin)
                .collect::<Vec<_>>()
        };
        let deliver = async |batch: Vec<pb::Record>| {
            let outcome = hub.ingest(&dealer, batch).await.expect("ingested");
            outcome.durable.await.expect("durable");
            keeper::refresh(&*store, |_| {}).expect("refreshed");
            let stale = keeper::stale(&*store).expect("checked");
            assert!(stale.is_empty(), "stale customer summaries: {stale:?}");
        };
        deliver(step(&log)).await;
        assert_eq!(names_of("A").len(), 2);
        log.push(generated::amend(
            &first,
            generated::delivery(&generated::vin(1), "B", at),
            "wrong buyer",
        ));
        log.push(generated::amend(
            &second,
            generated::delivery(&generated::vin(2), "B", at),
            "wrong buyer",
        ));
        deliver(step(&log)).await;
        assert!(names_of("A").is_empty());
        assert_eq!(names_of("B").len(), 2);
        log.push(generated::amend(
            &first,
            generated::delivery(&generated::vin(1), "C", at),
            "wrong buyer again",
        ));
        log.push(Payload::Correction(pb::Correction {
            target_record_id: second.record_id.clone(),
            reason: "not sold".into(),
            retract: true,
            amended: None,
        }));
        deliver(step(&log)).await;
        assert!(names_of("B").is_empty(), "B holds nothing any more");
        assert_eq!(names_of("C"), vec![generated::vin(1)]);
        drop(store);
        hub.close().await;
    });
}
