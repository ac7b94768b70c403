//! HQ query latency at network scale: customer 360, VIN history and customer search over mutual
//! TLS against a hub holding a simulated network of `customers` customers and `records` records.
//!
//! The world is made by the dealer simulator (groups of four dealers sharing some customers, 2 %
//! of every fault) and judged by the hub's own judge in-process (`judge::judge_batch` then
//! `HubStore::apply`, exactly what a sync batch does minus the network), so the store holds
//! every index, verdict, golden record and vehicle a synced hub would. The hub then serves that
//! store (`central::server::run`, the `central serve` default cache of 256 MiB) and an HQ
//! certificate's client times each RPC on samples taken from the generated records.

use std::sync::Arc;
use std::time::Instant;

use hamgam_central::analytics::keeper;
use hamgam_central::judge::{judge_batch, Rulebook};
use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::rules::RuleConfig;
use hamgam_central::store::{HubStore, StoreError};
use hamgam_central::SledStore;
use hamgam_dealer_agent::simulate::{self, SimulatedRecord};
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use serde_json::{json, Value};

use super::percentile;
use crate::{TestHub, TestPki};

/// Dealers simulated together (they share customers and vehicles).
const GROUP: usize = 4;
/// Records per judged batch (the agent's batch size).
const BATCH: usize = 500;

/// How big the world is.
#[derive(Debug, Clone)]
pub struct WorldSize {
    pub dealers: usize,
    /// Vehicles each dealer sold before the window (each a customer and a delivery).
    pub fleet_per_dealer: u32,
    /// Working days simulated at each dealer.
    pub days: u32,
    pub deliveries_per_day: u32,
    pub visits_per_day: u32,
    pub leads_per_day: u32,
    /// Timed calls of each RPC.
    pub samples: usize,
}

impl WorldSize {
    /// The world's history shape (the simulator's rates), one group of dealers at a time.
    pub fn shape(&self) -> super::history::HistoryShape {
        super::history::HistoryShape {
            dealers: self.dealers,
            days: self.days,
            fleet_per_dealer: self.fleet_per_dealer,
            deliveries_per_day: self.deliveries_per_day,
            visits_per_day: self.visits_per_day,
            leads_per_day: self.leads_per_day,
        }
    }
}

/// What the world sampled for the queries.
#[derive(Default)]
struct Samples {
    national_ids: Vec<String>,
    mobiles: Vec<String>,
    /// `(given, family)` as the dealer typed them.
    names: Vec<(String, String)>,
    vins: Vec<String>,
    /// Every n-th customer record / delivery is sampled.
    stride: usize,
    seen_customers: usize,
    seen_deliveries: usize,
}

impl Samples {
    fn take(&mut self, payload: &Payload) {
        match payload {
            Payload::Customer(c) if !c.national_id.is_empty() && !c.given_name.is_empty() => {
                self.seen_customers += 1;
                if self.seen_customers.is_multiple_of(self.stride) {
                    self.national_ids.push(c.national_id.clone());
                    self.mobiles.push(c.mobile.clone());
                    self.names
                        .push((c.given_name.clone(), c.family_name.clone()));
                }
            }
            Payload::RetailDelivery(d) => {
                self.seen_deliveries += 1;
                if self.seen_deliveries.is_multiple_of(self.stride) {
                    self.vins.push(d.vin.clone());
                }
            }
            _ => {}
        }
    }
}

/// Counts of what was built.
#[derive(Debug, Default, Clone, Copy)]
struct Built {
    records: u64,
    seconds: f64,
}

/// Judges every simulated record into `store`, group by group, the dealers of a group
/// interleaved batch by batch. Progress on stdout.
fn build(
    store: &SledStore,
    size: &WorldSize,
    samples: &mut Samples,
) -> Result<(Built, DealerRegistry), String> {
    let started = Instant::now();
    let now = crate::TEST_NOW_MS;
    let config = RuleConfig::default();
    let mut profiles = Vec::new();
    let mut networks = Vec::new();
    let groups = size.dealers.div_ceil(GROUP);
    // The registry must know every dealer before the first batch (S-rules read it), so the
    // profiles come first: the simulator is deterministic, a group is re-simulated to judge it.
    let config_of = |g: usize| {
        let dealers: Vec<_> = (0..GROUP.min(size.dealers - g * GROUP))
            .map(|d| crate::dealer(&format!("D-{g:03}-{d}")))
            .collect();
        size.shape().simulation(g as u64 + 1, dealers, 0.02)
    };
    for g in 0..groups {
        let network = simulate::simulate(&config_of(g))?;
        profiles.extend(network.dealers.clone());
        if groups <= 2 {
            networks.push(network);
        }
    }
    let registry = DealerRegistry::new(&profiles);
    let rules = Rulebook {
        config: &config,
        registry: &registry,
    };
    let mut built = Built::default();
    let mut reported = Instant::now();
    for g in 0..groups {
        let network = match networks.get(g) {
            Some(n) => n.clone(),
            None => simulate::simulate(&config_of(g))?,
        };
        let logs: Vec<(String, Vec<SimulatedRecord>)> = network.logs.into_iter().collect();
        let mut positions = vec![0usize; logs.len()];
        loop {
            let mut progressed = false;
            for (i, (dealer, log)) in logs.iter().enumerate() {
                let from = positions[i];
                if from >= log.len() {
                    continue;
                }
                let to = (from + BATCH).min(log.len());
                positions[i] = to;
                progressed = true;
                for r in &log[from..to] {
                    samples.take(&r.payload);
                }
                judge(store, &rules, dealer, from as u64, &log[from..to], now)
                    .map_err(|e| format!("judging {dealer}: {e}"))?;
                built.records += (to - from) as u64;
            }
            if !progressed {
                break;
            }
            if reported.elapsed().as_secs() >= 10 {
                reported = Instant::now();
                println!(
                    "  built {} records ({} of {groups} dealer groups) in {:.0} s",
                    built.records,
                    g,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        store.flush().map_err(|e| e.to_string())?;
    }
    built.seconds = started.elapsed().as_secs_f64();
    Ok((built, registry))
}

/// One batch of a dealer's records through the judge, as `Hub` ingests it.
fn judge(
    store: &SledStore,
    rules: &Rulebook<'_>,
    dealer: &str,
    before: u64,
    records: &[SimulatedRecord],
    now: i64,
) -> Result<(), StoreError> {
    let arrivals = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let seq = before + i as u64 + 1;
            hamgam_central::wire::arrival(&pb::Record {
                record_id: uuid::Uuid::now_v7().to_string(),
                dealer_id: dealer.to_owned(),
                seq,
                recorded_at_ms: now,
                hlc: Some(pb::HlcStamp {
                    wall_ms: now,
                    logical: seq as u32,
                }),
                staff_id: r.staff_id.clone(),
                schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
                withheld: String::new(),
                origin: None,
                payload: Some(r.payload.clone()),
            })
        })
        .collect();
    let sender = hamgam_central::judge::Sender {
        dealer,
        stored_seq: before,
        clock_offset_ms: 0,
    };
    let judged = judge_batch(store, rules, &sender, arrivals, now)?;
    store.apply(&judged.change).map(|_| ())
}

/// Call latencies of one query, ms.
#[derive(Default)]
struct Laps(Vec<f64>);

impl Laps {
    fn lap(&mut self, started: Instant) {
        self.0.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    /// (p50, p99).
    fn percentiles(mut self) -> (f64, f64) {
        (percentile(&mut self.0, 50.0), percentile(&mut self.0, 99.0))
    }
}

/// The customer-queries section.
pub async fn customer_queries(pki: &TestPki, size: &WorldSize) -> Value {
    match run(pki, size).await {
        Ok(v) => v,
        Err(e) => {
            println!("customer queries: {e}");
            json!({ "error": e })
        }
    }
}

async fn run(pki: &TestPki, size: &WorldSize) -> Result<Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cache = hamgam_central::config::Storage::default().cache_mb * 1024 * 1024;
    let store = Arc::new(SledStore::open(dir.path(), cache).map_err(|e| e.to_string())?);
    println!(
        "\n## HQ customer queries: judging a simulated network of {} dealers into a hub store",
        size.dealers
    );
    // About four times what is timed is sampled, spread over the whole build.
    let expected_customers =
        size.dealers * (size.fleet_per_dealer + size.days * size.deliveries_per_day) as usize;
    let mut samples = Samples {
        stride: (expected_customers / (size.samples * 4)).max(1),
        ..Default::default()
    };
    let (built, registry, samples) = {
        let store = store.clone();
        let size = size.clone();
        tokio::task::spawn_blocking(move || {
            build(&store, &size, &mut samples).map(|(b, r)| (b, r, samples))
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let customers = {
        let mut count = 0u64;
        let mut after = String::new();
        loop {
            let page = store.customers(&after, 10_000).map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = last.customer_id.clone();
            count += page.len() as u64;
        }
        count
    };
    let disk_mib = dir_bytes(dir.path()) as f64 / (1024.0 * 1024.0);
    let kinds = store.footprint().map_err(|e| e.to_string())?.kinds;
    let logical: u64 = kinds.iter().map(|k| k.2).sum();
    println!(
        "  store: {:.0} MiB of keys and values; by kind (key byte: keys, MiB): {}",
        logical as f64 / (1024.0 * 1024.0),
        kinds
            .iter()
            .map(|(k, n, b)| format!("{k}: {n}, {:.1}", *b as f64 / (1024.0 * 1024.0)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!(
        "  built: {} records, {customers} customers in {:.0} s ({:.0} records/s through the judge), {disk_mib:.0} MiB on disk",
        built.records,
        built.seconds,
        built.records as f64 / built.seconds
    );

    let summaries = build_summaries(&store, customers).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let hub = TestHub::serve(pki, store, dir.path(), listener, registry).await;
    let mut client = pki.hq_client(hub.addr).await;
    let n = size.samples;
    let pick = |list: &Vec<String>, i: usize| list[(i * 7_919) % list.len()].clone();
    if samples.national_ids.is_empty() || samples.vins.is_empty() {
        hub.stop().await;
        return Err("the simulated network has no customers or vehicles to sample".into());
    }

    // Search by national ID; the customer ids found are the 360 samples.
    let mut found = Vec::new();
    let mut missed = 0usize;
    let mut laps = Laps::default();
    for i in 0..n {
        let by = hq::search_customers_request::By::NationalId(pick(&samples.national_ids, i));
        let started = Instant::now();
        let response = client.search_customers(search(by, false)).await;
        laps.lap(started);
        match response.map(|r| r.into_inner().customers) {
            Ok(list) if !list.is_empty() => found.push(list[0].customer_id.clone()),
            // A national ID a rule rejected (a simulated fault) is not indexed.
            _ => missed += 1,
        }
    }
    let by_id = laps.percentiles();
    if found.is_empty() {
        hub.stop().await;
        return Err("no sampled national ID found a customer".into());
    }
    let mut timeline_lengths = Vec::new();
    let mut laps = Laps::default();
    for i in 0..n {
        let customer_id = found[i % found.len()].clone();
        let started = Instant::now();
        let response = client
            .get_customer(hq::GetCustomerRequest {
                customer_id,
                as_of_ms: 0,
            })
            .await;
        laps.lap(started);
        if let Ok(c) = response {
            timeline_lengths.push(c.into_inner().timeline.len() as f64);
        }
    }
    let customer_360 = laps.percentiles();
    let mut laps = Laps::default();
    for i in 0..n {
        let by = hq::search_customers_request::By::Mobile(pick(&samples.mobiles, i));
        let started = Instant::now();
        let _ = client.search_customers(search(by, false)).await;
        laps.lap(started);
    }
    let by_mobile = laps.percentiles();
    let name_of = |i: usize| {
        let (given, family) = &samples.names[(i * 7_919) % samples.names.len()];
        format!("{given} {family}")
    };
    let mut name_laps = Laps::default();
    let mut fuzzy_laps = Laps::default();
    for i in 0..n {
        for (fuzzy, laps) in [(false, &mut name_laps), (true, &mut fuzzy_laps)] {
            let by = hq::search_customers_request::By::Name(name_of(i));
            let started = Instant::now();
            let _ = client.search_customers(search(by, fuzzy)).await;
            laps.lap(started);
        }
    }
    let (by_name, by_fuzzy_name) = (name_laps.percentiles(), fuzzy_laps.percentiles());
    let mut visits = Vec::new();
    let mut laps = Laps::default();
    for i in 0..n {
        let vin = pick(&samples.vins, i);
        let started = Instant::now();
        let response = client
            .get_vehicle_history(hq::GetVehicleHistoryRequest { vin })
            .await;
        laps.lap(started);
        if let Ok(h) = response {
            visits.push(h.into_inner().services.len() as f64);
        }
    }
    let vin_history = laps.percentiles();
    let journeys: Vec<String> = (0..n.min(100))
        .map(|i| found[i % found.len()].clone())
        .collect();
    let reports = super::customer_reports::time_reports(&client, customers, &journeys).await;
    hub.stop().await;

    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "  {} samples each; national IDs sampled but not found (rejected by a rule): {missed}",
        n
    );
    println!("{:<28} {:>10} {:>10}", "query", "p50 ms", "p99 ms");
    let rows = [
        ("customer 360", customer_360),
        ("VIN history", vin_history),
        ("search: national ID", by_id),
        ("search: mobile", by_mobile),
        ("search: name prefix", by_name),
        ("search: fuzzy name", by_fuzzy_name),
    ];
    for (name, (p50, p99)) in &rows {
        println!("{name:<28} {p50:>10.2} {p99:>10.2}");
    }
    println!(
        "  a 360 held {:.1} contacts on average; a VIN history {:.1} service visits",
        mean(&timeline_lengths),
        mean(&visits)
    );
    Ok(json!({
        "records": built.records,
        "customers": customers,
        "dealers": size.dealers,
        "build_seconds": built.seconds,
        "disk_mib": disk_mib,
        "samples": n,
        "mean_timeline_contacts": mean(&timeline_lengths),
        "mean_vin_service_visits": mean(&visits),
        "queries": rows
            .iter()
            .map(|(name, (p50, p99))| json!({ "query": name, "p50_ms": p50, "p99_ms": p99 }))
            .collect::<Vec<_>>(),
        "customer_summaries": summaries,
        "customer_questions": reports,
    }))
}

/// Builds HQ's customer summaries (what a hub's keeper does once after an upgrade or a
/// rebuild, and the reports read afterwards), timed, with their mean size.
async fn build_summaries(store: &Arc<SledStore>, customers: u64) -> Result<Value, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let done = keeper::refresh(&*store, |_| {}).map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        let (mut count, mut bytes, mut after) = (0u64, 0u64, String::new());
        loop {
            let page = store.summaries(&after, 10_000).map_err(|e| e.to_string())?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            count += page.len() as u64;
            bytes += page.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        }
        let mean_bytes = bytes as f64 / count.max(1) as f64;
        println!(
            "  HQ's customer summaries built: {} of {customers} customers in {seconds:.1} s ({:.0} customers/s), {mean_bytes:.0} bytes each on average",
            done.summaries,
            done.summaries as f64 / seconds.max(1e-9)
        );
        Ok(json!({ "summaries": count, "build_seconds": seconds, "mean_bytes": mean_bytes }))
    })
    .await
    .map_err(|e| e.to_string())?
}

fn search(by: hq::search_customers_request::By, fuzzy: bool) -> hq::SearchCustomersRequest {
    hq::SearchCustomersRequest {
        by: Some(by),
        fuzzy,
        page_size: 20,
        page_token: String::new(),
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
