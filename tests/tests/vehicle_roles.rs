//! Who holds a vehicle and what its history shows, through a real hub (sled on disk) on a fixed
//! date: every holding role of one delivery (buyer, co-buyer, owner, fleet account) holds the
//! car from the day of purchase, the driver does not, and a customer becomes `former` only when
//! a holding they had ended; the odometer series shows a replacement where the workshop made
//! it, and the dealers' lookup gives the latest reading, not the highest.

use hamgam_central::hq::{customers, vehicles};
use hamgam_central::lifecycle::LifecycleConfig;
use hamgam_central::merge::PartyKey;
use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::store::HubStore;
use hamgam_central::{Hub, SledStore};
use hamgam_gateway::sync::Ingest;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::dealer;
use hamgam_tests::history::{self, nid, vin, Log};
use hamgam_tests::judged;

/// 2026-11-18 11:06 UTC.
const NOW_MS: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn company(customer_ref: &str, name: &str, company_id: &str) -> Payload {
    Payload::Customer(pb::CustomerUpsert {
        customer_ref: customer_ref.into(),
        party_type: pb::PartyType::Organization as i32,
        organization_name: name.into(),
        company_national_id: company_id.into(),
        mobile: "02188776655".into(),
        ..Default::default()
    })
}

fn delivery_to(
    vin: &str,
    at: i64,
    category: pb::SaleCategory,
    parties: &[(pb::PartyRole, &str)],
) -> Payload {
    let Payload::RetailDelivery(mut d) = history::delivery(vin, "", at) else {
        unreachable!("history::delivery makes a delivery")
    };
    d.sale_category = category as i32;
    d.parties = parties
        .iter()
        .map(|(role, r)| pb::DeliveryParty {
            role: *role as i32,
            customer_ref: (*r).into(),
        })
        .collect();
    Payload::RetailDelivery(d)
}

async fn judged_hub(dir: &std::path::Path, log: &Log) -> Hub<SledStore> {
    let hub = judged::hub(dir, DealerRegistry::default(), NOW_MS);
    let outcome = hub
        .ingest(&dealer(&log.dealer), log.records.clone())
        .await
        .expect("ingested");
    outcome.durable.await.expect("durable");
    hub
}

fn view_of(store: &SledStore, customer_ref: &str) -> hq::Customer360 {
    let key: PartyKey = ("D-1001".into(), customer_ref.into());
    let id = store.link(&key).expect("link").expect("a customer");
    customers::customer_360(store, &LifecycleConfig::default(), &id, NOW_MS).expect("360")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_holding_role_holds_from_the_day_of_purchase_and_former_needs_a_holding_ended() {
    let mut log = Log::new("D-1001", NOW_MS);
    log.push(company("BUY", "شرکت حمل و نقل آریا", "10101010103"));
    log.push(company("OWN", "لیزینگ پارس", "14000000001"));
    log.push(history::person(
        "CO",
        "مینا",
        "کریمی",
        &nid("005792468"),
        "09352748169",
    ));
    log.push(history::person(
        "DRV",
        "رضا",
        "احمدی",
        &nid("004681357"),
        "09183649251",
    ));
    log.push(company("FLT", "ناوگان آریا", "10320000001"));
    use pb::PartyRole::*;
    let all_roles = [
        (Buyer, "BUY"),
        (Owner, "OWN"),
        (CoBuyer, "CO"),
        (PrimaryDriver, "DRV"),
        (FleetAccount, "FLT"),
    ];
    // The case: one fleet delivery naming five parties, 20 days ago.
    log.push(delivery_to(
        &vin(1),
        NOW_MS - 20 * DAY,
        pb::SaleCategory::Fleet,
        &all_roles,
    ));
    // The close non-case: the same parties on a car that was later delivered to someone else.
    log.push(history::person(
        "NEXT",
        "سارا",
        "محمدی",
        &nid("002468135"),
        "09124862179",
    ));
    log.push(delivery_to(
        &vin(2),
        NOW_MS - 300 * DAY,
        pb::SaleCategory::Fleet,
        &all_roles,
    ));
    log.push(delivery_to(
        &vin(2),
        NOW_MS - 40 * DAY,
        pb::SaleCategory::Fleet,
        &[(Buyer, "NEXT"), (Owner, "NEXT")],
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged_hub(dir.path(), &log).await;
    let store = hub.store().expect("store");

    for holder in ["BUY", "OWN", "CO", "FLT"] {
        let view = view_of(&store, holder);
        let stage = view.lifecycle.as_ref().expect("lifecycle").stage();
        assert_eq!(stage, hq::Stage::NewOwner, "{holder}");
        let held: Vec<(&str, bool)> = view
            .vehicles
            .iter()
            .map(|v| (v.vin.as_str(), v.held))
            .collect();
        assert!(
            held.contains(&(vin(1).as_str(), true)),
            "{holder}: {held:?}"
        );
        // The car sold on: no longer theirs, but the other one still is, so not former.
        assert!(
            held.contains(&(vin(2).as_str(), false)),
            "{holder}: {held:?}"
        );
    }
    let driver = view_of(&store, "DRV");
    assert!(
        driver.vehicles.iter().all(|v| !v.held),
        "a driver holds nothing"
    );
    assert_ne!(
        driver.lifecycle.as_ref().expect("lifecycle").stage(),
        hq::Stage::Former,
        "a driver never had a holding to lose"
    );
    let next = view_of(&store, "NEXT");
    assert_eq!(
        next.lifecycle.expect("lifecycle").stage(),
        hq::Stage::NewOwner
    );
    drop(store);
    hub.close().await;

    // Only vin(2), sold on: every holder of it becomes former, the driver does not.
    let mut log = Log::new("D-1001", NOW_MS);
    log.push(company("BUY", "شرکت حمل و نقل آریا", "10101010103"));
    log.push(history::person(
        "DRV",
        "رضا",
        "احمدی",
        &nid("004681357"),
        "09183649251",
    ));
    log.push(history::person(
        "NEXT",
        "سارا",
        "محمدی",
        &nid("002468135"),
        "09124862179",
    ));
    log.push(delivery_to(
        &vin(2),
        NOW_MS - 300 * DAY,
        pb::SaleCategory::Fleet,
        &[(Buyer, "BUY"), (PrimaryDriver, "DRV")],
    ));
    log.push(delivery_to(
        &vin(2),
        NOW_MS - 40 * DAY,
        pb::SaleCategory::Fleet,
        &[(Buyer, "NEXT"), (Owner, "NEXT")],
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged_hub(dir.path(), &log).await;
    let store = hub.store().expect("store");
    let buyer = view_of(&store, "BUY").lifecycle.expect("lifecycle");
    assert_eq!(buyer.stage(), hq::Stage::Former);
    let driver = view_of(&store, "DRV").lifecycle.expect("lifecycle");
    assert_ne!(driver.stage(), hq::Stage::Former);
    drop(store);
    hub.close().await;
}

fn replacement(vin: &str, day_ms: i64, at_ms: Option<i64>, before: u32) -> Payload {
    let d = time::OffsetDateTime::from_unix_timestamp(day_ms / 1000).expect("date");
    Payload::OdometerReplacement(pb::OdometerReplacement {
        vin: vin.into(),
        replaced_on: Some(pb::Date {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
        }),
        reading_before_km: before,
        reading_after_km: 0,
        reason: "خرابی کیلومترشمار".into(),
        replaced_at_ms: at_ms,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_odometer_series_shows_a_replacement_and_the_lookup_the_latest_reading() {
    let mut log = Log::new("D-1001", NOW_MS);
    log.push(history::person(
        "C1",
        "علی",
        "رضایی",
        &nid("001354241"),
        "09121593574",
    ));
    let day = NOW_MS - NOW_MS.rem_euclid(DAY) - 100 * DAY;
    // The case: a morning visit on the old cluster, the cluster replaced that afternoon (no
    // time recorded), then a visit on the new one.
    let replaced = vin(7);
    log.push(history::delivery(&replaced, "C1", day - 500 * DAY));
    log.push(history::repair_order(
        "RO-1",
        &replaced,
        "C1",
        day + 9 * HOUR,
        48_000,
    ));
    log.push(replacement(&replaced, day, None, 48_003));
    log.push(history::repair_order(
        "RO-2",
        &replaced,
        "C1",
        day + 50 * DAY,
        900,
    ));
    // The close non-case: no replacement, the readings only go up.
    let plain = vin(8);
    log.push(history::delivery(&plain, "C1", day - 500 * DAY));
    log.push(history::repair_order("RO-3", &plain, "C1", day, 20_000));
    log.push(history::repair_order(
        "RO-4",
        &plain,
        "C1",
        day + 50 * DAY,
        30_000,
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged_hub(dir.path(), &log).await;
    let store = hub.store().expect("store");

    let history = vehicles::history(&*store, &replaced).expect("history");
    let series: Vec<(&str, u32)> = history
        .odometer
        .iter()
        .map(|o| (o.source_kind.as_str(), o.km))
        .collect();
    assert_eq!(
        series,
        vec![
            ("retail-delivery", 5),
            ("repair-order", 48_000),
            ("odometer-replacement", 0),
            ("repair-order", 900),
        ]
    );
    assert!(
        history.odometer.iter().all(|o| o.rule_ids.is_empty()),
        "a recorded replacement is no rollback: {:?}",
        history.odometer
    );
    let summary = vehicles::service_summary(&*store, &replaced).expect("summary");
    assert_eq!(summary.last_odometer_km, 900);
    assert!(!summary.odometer_suspect);

    let summary = vehicles::service_summary(&*store, &plain).expect("summary");
    assert_eq!(summary.last_odometer_km, 30_000);
    let history = vehicles::history(&*store, &plain).expect("history");
    assert!(history
        .odometer
        .iter()
        .all(|o| o.source_kind != "odometer-replacement"));
    drop(store);
    hub.close().await;
}
