//! One customer across the network, on realistic Persian data, judged by a real hub (sled on
//! disk): spellings and digit forms land on one customer, a family phone stays two people, an
//! uncertain pair waits for HQ, HQ's decisions (link, detach, confirm a value, name a VIN's
//! seller) re-resolve the state and reach the dealers concerned as H01 verdict changes, and a
//! rebuild from the logs gives the live digest.

use std::collections::BTreeSet;

use hamgam_central::merge::{HqDecision, PartyKey, Subject, Trust};
use hamgam_central::rebuild;
use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::rules::RuleConfig;
use hamgam_central::store::HubStore;
use hamgam_central::{Hub, SledStore};
use hamgam_gateway::sync::Ingest;
use hamgam_tests::dealer;
use hamgam_tests::history::{self, Log};
use hamgam_tests::judged;

const NATIONAL_ID: &str = "0013542419";

async fn send(hub: &Hub<SledStore>, log: &Log, from: usize) {
    let batch = log.records[from..].to_vec();
    let outcome = hub
        .ingest(&dealer(&log.dealer), batch)
        .await
        .expect("ingested");
    outcome.durable.await.expect("durable");
}

/// 2026-11-18 11:06 UTC: every test here runs on this date, whatever day it is.
const NOW_MS: i64 = 1_795_000_000_000;

fn party(d: &str, r: &str) -> PartyKey {
    (d.to_owned(), r.to_owned())
}

fn customer_of(hub: &Hub<SledStore>, p: &PartyKey) -> Option<String> {
    hub.store().expect("store").link(p).expect("link")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spellings_digit_forms_and_phone_forms_are_one_customer_and_a_family_phone_is_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = NOW_MS;
    let hub = judged::hub(dir.path(), DealerRegistry::default(), now);
    let mut d1 = Log::new("D-1001", now);
    let mut d2 = Log::new("D-1002", now);
    let mut d3 = Log::new("D-1003", now);
    // Arabic ي/ك, ZWNJ, Persian digits, +98.
    d1.push(history::person(
        "A",
        "علي",
        "كريمي‌نژاد",
        "۰۰۱۳۵۴۲۴۱۹",
        "+98 912 741 8529",
    ));
    // Persian letters, a space for the ZWNJ, no national ID, Persian digits, 09.
    d2.push(history::person("B", "علی", "کریمی نژاد", "", "۰۹۱۲۷۴۱۸۵۲۹"));
    // Arabic-Indic digits, 0098.
    d3.push(history::person(
        "C",
        "علی",
        "کریمی‌نژاد",
        "٠٠١٣٥٤٢٤١٩",
        "0098-912-741-٨٥٢٩",
    ));
    // His daughter on the family phone: another person.
    d1.push(history::person(
        "DAUGHTER",
        "مریم",
        "کریمی‌نژاد",
        "0084575948",
        "09127418529",
    ));
    for log in [&d1, &d2, &d3] {
        send(&hub, log, 0).await;
    }
    let ali = customer_of(&hub, &party("D-1001", "A")).expect("linked");
    assert_eq!(
        customer_of(&hub, &party("D-1002", "B")).as_ref(),
        Some(&ali)
    );
    assert_eq!(
        customer_of(&hub, &party("D-1003", "C")).as_ref(),
        Some(&ali)
    );
    let daughter = customer_of(&hub, &party("D-1001", "DAUGHTER")).expect("linked");
    assert_ne!(daughter, ali, "a family phone must not merge two people");

    let store = hub.store().expect("store");
    let golden = store.customer(&ali).expect("read").expect("customer");
    assert_eq!(golden.parties.len(), 3);
    assert_eq!(golden.fields["national_id"].value, NATIONAL_ID);
    assert_eq!(golden.fields["mobile"].value, "+989127418529");
    assert_eq!(golden.fields["name"].value, "علی کریمی نژاد");
    assert!(golden.conflicts.is_empty(), "{:?}", golden.conflicts);
    assert!(
        store.reviews(None, 10).expect("reviews").is_empty(),
        "father and daughter are clearly two people, nothing to review"
    );
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_decisions_re_resolve_and_reach_the_dealers_and_a_rebuild_gives_the_live_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = NOW_MS;
    let hub = judged::hub(dir.path(), DealerRegistry::default(), now);
    let mut d1 = Log::new("D-1001", now);
    let mut d2 = Log::new("D-1002", now);
    // One national ID, two family names (C07): two customers until HQ decides.
    d1.push(history::person(
        "R",
        "رضا",
        "یزدانی",
        NATIONAL_ID,
        "09358246170",
    ));
    d2.push(history::person(
        "R2",
        "رضا",
        "یزدان‌پناه",
        NATIONAL_ID,
        "09196354812",
    ));
    // One mobile, names one letter apart, no IDs: uncertain, for HQ.
    d1.push(history::person("M", "محمد", "کاظمی", "", "09384617205"));
    d2.push(history::person("M2", "محمدا", "کاظمی", "", "09384617205"));
    // A car both dealers say they sold.
    let vin = hamgam_proto::values::Vin::with_check_digit("NAAP41EXAMPLE0001")
        .expect("vin")
        .to_string();
    let sold = now - 30 * 86_400_000;
    d1.push(history::delivery(&vin, "R", sold));
    d2.push(history::delivery(&vin, "R2", sold + 86_400_000));
    send(&hub, &d1, 0).await;
    send(&hub, &d2, 0).await;
    let store = hub.store().expect("store");

    // Both uncertain pairs wait for HQ: the shared mobile and the shared national ID.
    assert_ne!(
        customer_of(&hub, &party("D-1001", "R")),
        customer_of(&hub, &party("D-1002", "R2")),
        "one code melli under two names links nobody by itself"
    );
    let reviews = store.reviews(None, 10).expect("reviews");
    let pairs: Vec<_> = reviews
        .iter()
        .map(|r| (r.a.clone(), r.b.clone(), r.reason.contains("C07")))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (party("D-1001", "M"), party("D-1002", "M2"), false),
            (party("D-1001", "R"), party("D-1002", "R2"), true),
        ]
    );
    // HQ links the two records of the national ID: one customer, with a name conflict.
    hub.decide(
        HqDecision::Link {
            a: party("D-1001", "R"),
            b: party("D-1002", "R2"),
        },
        "hq-crm",
        "one person: the family name was shortened",
    )
    .await
    .expect("link");
    let reza = customer_of(&hub, &party("D-1001", "R")).expect("linked");
    assert_eq!(
        customer_of(&hub, &party("D-1002", "R2")),
        Some(reza.clone())
    );
    let conflicts = store.conflicts("", 100).expect("conflicts");
    let name_conflict = conflicts
        .iter()
        .flat_map(|(_, c)| c)
        .find(|c| c.field == "name")
        .expect("a name conflict");
    assert_eq!(name_conflict.values.len(), 2);
    assert!(!name_conflict.resolved);
    let reviews = store.reviews(None, 10).expect("reviews");
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(
        (reviews[0].a.clone(), reviews[0].b.clone()),
        (party("D-1001", "M"), party("D-1002", "M2"))
    );
    let sold_by = conflicts
        .iter()
        .flat_map(|(_, c)| c)
        .find(|c| c.field == "sold_by")
        .expect("a double sale");
    assert_eq!(sold_by.values.len(), 2);

    // HQ links the uncertain pair: one customer, the pair leaves the queue.
    hub.decide(
        HqDecision::Link {
            a: party("D-1001", "M"),
            b: party("D-1002", "M2"),
        },
        "hq-crm",
        "same person, typo",
    )
    .await
    .expect("link");
    let m = customer_of(&hub, &party("D-1001", "M")).expect("linked");
    assert_eq!(customer_of(&hub, &party("D-1002", "M2")), Some(m.clone()));
    assert!(store.reviews(None, 10).expect("reviews").is_empty());
    // ... and undoes it: two customers again, nothing lost.
    hub.decide(
        HqDecision::Detach {
            party: party("D-1002", "M2"),
        },
        "hq-crm",
        "linked by mistake",
    )
    .await
    .expect("detach");
    assert_ne!(
        customer_of(&hub, &party("D-1001", "M")),
        customer_of(&hub, &party("D-1002", "M2"))
    );
    assert!(store
        .merge_party(&party("D-1002", "M2"))
        .expect("party")
        .is_some_and(|p| p.view.is_some()));

    // HQ confirms the name: the golden record takes it, D-1002's record gets H01 on its feed.
    let before = store
        .dealer("D-1002")
        .expect("dealer")
        .expect("state")
        .verdict_cursor;
    let taken = hub
        .decide(
            HqDecision::Confirm {
                subject: Subject::Customer(reza.clone()),
                field: "name".into(),
                value: "رضا یزدانی".into(),
                parties: Vec::new(),
            },
            "hq-crm",
            "checked the ID card",
        )
        .await
        .expect("confirm");
    assert_eq!(taken.verdicts_changed, 1);
    let golden = store.customer(&reza).expect("read").expect("customer");
    assert_eq!(golden.fields["name"].value, "رضا یزدانی");
    assert_eq!(golden.fields["name"].source.trust, Trust::HqConfirmed);
    assert!(golden
        .conflicts
        .iter()
        .any(|c| c.field == "name" && c.resolved));
    let updates = store
        .verdict_updates("D-1002", before, 10)
        .expect("updates");
    assert_eq!(updates.len(), 1);
    let h01 = &updates[0].1;
    assert_eq!(h01.seq, 1, "the customer record R2");
    assert!(h01.findings.iter().any(|f| f.rule_id == "H01"
        && f.field == "customer.name"
        && f.reason_en().contains("رضا یزدانی")));

    // HQ names the real seller: the other dealer's delivery gets H01, the car's owner follows.
    hub.decide(
        HqDecision::Confirm {
            subject: Subject::Vehicle(vin.clone()),
            field: "sold_by".into(),
            value: "D-1002".into(),
            parties: Vec::new(),
        },
        "hq-quality",
        "invoice seen",
    )
    .await
    .expect("confirm seller");
    let vehicle = hamgam_central::merge::vehicle::read(&*store, &vin)
        .expect("read")
        .expect("vehicle");
    assert_eq!(vehicle.sold_by.as_deref(), Some("D-1002"));
    assert_eq!(
        vehicle.owner.as_ref().map(|o| o.party.clone()),
        Some(party("D-1002", "R2"))
    );
    let d1_delivery = store.record("D-1001", 3).expect("read").expect("record");
    assert!(d1_delivery
        .verdict
        .findings
        .iter()
        .any(|f| f.rule_id == "H01"));

    // A decision about something the hub does not hold is refused, naming it.
    let refused = hub
        .decide(
            HqDecision::Confirm {
                subject: Subject::Vehicle(vin.clone()),
                field: "sold_by".into(),
                value: "D-9999".into(),
                parties: Vec::new(),
            },
            "hq",
            "",
        )
        .await
        .expect_err("unknown seller");
    assert!(refused.to_string().contains("D-9999"), "{refused}");

    // D-1002 corrects its record to the confirmed name: H01 goes, the conflict with it.
    let target = d2.records[0].clone();
    let start = d2.records.len();
    d2.push(history::amend(
        &target,
        history::person("R2", "رضا", "یزدانی", NATIONAL_ID, "09196354812"),
        "HQ confirmed the name",
    ));
    send(&hub, &d2, start).await;
    let corrected = store.record("D-1002", 1).expect("read").expect("record");
    assert!(
        corrected
            .verdict
            .findings
            .iter()
            .all(|f| f.rule_id != "H01"),
        "{:?}",
        corrected.verdict.findings
    );
    let golden = store.customer(&reza).expect("read").expect("customer");
    assert!(
        golden.conflicts.iter().all(|c| c.field != "name"),
        "{:?}",
        golden.conflicts
    );

    // The state rebuilt from the record and decision logs is the live state.
    let live = hub.digest().expect("digest");
    let decisions = store.last_decision().expect("decisions");
    drop(store);
    hub.close().await;
    let live_store = SledStore::open(dir.path(), 16 << 20).expect("reopen");
    let target_dir = tempfile::tempdir().expect("tempdir");
    let into = SledStore::open(target_dir.path(), 16 << 20).expect("target");
    let config = RuleConfig::default();
    let registry = DealerRegistry::default();
    let rules = hamgam_central::judge::Rulebook {
        config: &config,
        registry: &registry,
    };
    let mut progress = BTreeSet::new();
    let report = rebuild::rebuild(&live_store, &into, &rules, |done, total| {
        progress.insert((done, total));
    })
    .expect("rebuild");
    assert_eq!(report.decisions, decisions);
    assert_eq!(report.live, live, "the live digest is read back unchanged");
    assert!(
        report.differing().is_empty(),
        "rebuilt state differs in {:?}\nlive {}\nrebuilt {}",
        report.differing(),
        report.live,
        report.rebuilt
    );
    assert!(progress.iter().any(|(done, total)| done == total));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_with_a_fast_clock_cannot_win_the_latest_value_by_lying_about_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = NOW_MS;
    let hub = judged::hub(dir.path(), DealerRegistry::default(), now);
    let minute = 60_000;
    // D-1002's PC runs 4 minutes fast (inside the T02 limit, so its records stay clean): the
    // hub measures that at connect.
    hub.open_session(&dealer("D-1001"), 0, 0)
        .await
        .expect("session");
    hub.open_session(&dealer("D-1002"), 4 * minute, 0)
        .await
        .expect("session");
    let mut d1 = Log::new("D-1001", now);
    let mut d2 = Log::new("D-1002", now);
    d2.push(history::person(
        "X",
        "رضا",
        "یزدانی",
        NATIONAL_ID,
        "09358246170",
    ));
    d1.push(history::person(
        "Y",
        "رضا",
        "یزدانی",
        NATIONAL_ID,
        "09196354812",
    ));
    // Really made at now-3min (D-1002) and now-2min (D-1001); D-1002's own clock said now+1min.
    let stamp = |r: &mut hamgam_proto::record::v1::Record, wall: i64| {
        r.recorded_at_ms = wall;
        r.hlc = Some(hamgam_proto::record::v1::HlcStamp {
            wall_ms: wall,
            logical: 0,
        });
    };
    stamp(&mut d2.records[0], now - 3 * minute + 4 * minute);
    stamp(&mut d1.records[0], now - 2 * minute);
    send(&hub, &d2, 0).await;
    send(&hub, &d1, 0).await;
    let store = hub.store().expect("store");
    let id = customer_of(&hub, &party("D-1001", "Y")).expect("linked");
    let golden = store.customer(&id).expect("read").expect("customer");
    let mobile = &golden.fields["mobile"];
    assert_eq!(
        mobile.value, "+989196354812",
        "the later real-time value wins, not the fast clock's"
    );
    assert_eq!(mobile.source.dealer_id, "D-1001");
    assert_eq!(mobile.alternatives[0].1.stamp.wall_ms, now - 3 * minute);
    hub.close().await;
}
