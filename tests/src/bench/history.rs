//! The sections that feed the hub years of simulated history through real agents: the backlog
//! (one agent catching up on a multi-year history) and the realistic network (≥ 50 dealers,
//! years of history, every agent syncing at once), each beside raw sled writing the same
//! records in the same run.
//!
//! The histories come from the simulator ([`simulate::simulate`]) with dates spread over the
//! years simulated, so every group stays the size it would be in a real network: a VIN has a
//! few dozen readings, a dealer-month a few hundred records. The network's records are imported
//! with their origin (source system, source id, the day the simulator made them), as a
//! dealership joining the network imports its DMS; the backlog is captured as staff would.

use std::time::{Duration, Instant};

use hamgam_dealer_agent::simulate::{self, FaultRates, SimulatedNetwork, SimulationConfig};
use hamgam_dealer_agent::store::{AgentStore, Imported};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::record::v1 as pb;
use serde_json::{json, Value};

use super::sections::{bench_hub, raw_sled, session_options, stage_split};
use crate::{TestHub, TestPki};

/// The shape of a simulated history: how many dealers, over how many days, at what daily
/// rates (the simulator's parameters).
#[derive(Debug, Clone, Copy)]
pub struct HistoryShape {
    pub dealers: usize,
    pub days: u32,
    pub fleet_per_dealer: u32,
    pub deliveries_per_day: u32,
    pub visits_per_day: u32,
    pub leads_per_day: u32,
}

impl HistoryShape {
    /// The years the history spans.
    pub fn years(&self) -> f64 {
        self.days as f64 / 365.0
    }
}

impl HistoryShape {
    /// The simulator's configuration for this shape: `dealers`, seeded with `seed`, `faults` of
    /// every injectable fault, ending the day before the tests' fixed now.
    pub fn simulation(&self, seed: u64, dealers: Vec<DealerId>, faults: f64) -> SimulationConfig {
        let now = crate::TEST_NOW_MS;
        let mut config = SimulationConfig::small(seed, dealers, now);
        config.start = simulate::date_of(now) - time::Duration::days(i64::from(self.days) + 1);
        config.days = self.days;
        config.fleet_per_dealer = self.fleet_per_dealer;
        config.deliveries_per_day = self.deliveries_per_day;
        config.visits_per_day = self.visits_per_day;
        config.leads_per_day = self.leads_per_day;
        config.faults = FaultRates::uniform(faults);
        config
    }
}

/// The simulated network of `shape`, its dealers named `prefix-000` on, 1 % of each
/// injectable fault.
pub fn simulated(shape: &HistoryShape, prefix: &str) -> SimulatedNetwork {
    let dealers = (0..shape.dealers)
        .map(|i| crate::dealer(&format!("{prefix}-{i:03}")))
        .collect();
    simulate::simulate(&shape.simulation(7, dealers, 0.01)).expect("simulation")
}

/// Captures each dealer's log into its own agent store on disk (durable, in chunks of 10,000
/// as an import commits them); `imported` gives each record its origin. Returns the stores
/// with their directories, the records as they will go on the wire, and the time it took.
async fn capture_network(
    network: &SimulatedNetwork,
    imported: bool,
) -> (
    Vec<(AgentStore, tempfile::TempDir, u64)>,
    Vec<pb::Record>,
    Duration,
) {
    let started = Instant::now();
    let mut stores = Vec::new();
    let mut wire = Vec::new();
    for (dealer, log) in &network.logs {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AgentStore::open(dir.path(), crate::dealer(dealer))
            .expect("agent store")
            .with_clock(crate::test_clock());
        for (c, chunk) in log.chunks(10_000).enumerate() {
            let store = store.clone();
            let chunk: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        c * 10_000 + i,
                        r.staff_id.clone(),
                        r.payload.clone(),
                        r.event_ms,
                    )
                })
                .collect();
            tokio::task::spawn_blocking(move || {
                if imported {
                    let entries = chunk
                        .into_iter()
                        .map(|(i, staff_id, payload, made)| Imported {
                            staff_id,
                            payload,
                            origin: pb::Origin {
                                source_system: "dms:bench".into(),
                                source_record_id: format!("row-{i}"),
                                created_at_ms: made,
                            },
                        })
                        .collect();
                    store.capture_imported(entries).map(|_| ())
                } else {
                    let items = chunk.into_iter().map(|(_, s, p, _)| (s, p)).collect();
                    store.capture_many(items).map(|_| ())
                }
            })
            .await
            .expect("task")
            .expect("capture");
        }
        let all = store
            .records_after_blocking(0, log.len())
            .expect("read back");
        assert_eq!(all.len(), log.len(), "every record captured once");
        wire.extend(all);
        stores.push((store, dir, log.len() as u64));
    }
    (stores, wire, started.elapsed())
}

/// Every agent syncs everything it holds to `hub` at once (`dealer-agent sync`'s session,
/// until drained); returns when the last one is acked.
async fn sync_all(
    pki: &TestPki,
    hub: &TestHub,
    stores: &[(AgentStore, tempfile::TempDir, u64)],
) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (store, _, last) in stores {
        let (store, last) = (store.clone(), *last);
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(store.dealer().clone()));
        tasks.push(tokio::spawn(async move {
            let report =
                hamgam_dealer_agent::sync_loop::sync_once(&store, &endpoint, &session_options())
                    .await
                    .expect("sync");
            assert_eq!(report.acked_seq, last, "every record acked");
        }));
    }
    for task in tasks {
        task.await.expect("agent task");
    }
    started.elapsed()
}

/// One history through a fresh hub: captured, synced, beside raw sled; the hub is returned
/// for what comes after.
async fn run_history(
    pki: &TestPki,
    network: &SimulatedNetwork,
    imported: bool,
    hub_dir: &std::path::Path,
) -> (Value, TestHub) {
    let (stores, wire, capture_time) = capture_network(network, imported).await;
    let records = wire.len();
    let raw = raw_sled(&wire);
    drop(wire);
    let hub = bench_hub(pki, hub_dir).await;
    let sync_time = sync_all(pki, &hub, &stores).await;
    let stages = stage_split(hub.metrics_addr, records);
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    let (hub_rate, raw_rate) = (rate(sync_time), rate(raw));
    println!(
        "{:>8} {:>9} {:>12.0} {:>14.0} {:>10.3} {:>14.0}",
        network.logs.len(),
        records,
        hub_rate,
        raw_rate,
        hub_rate / raw_rate,
        rate(capture_time)
    );
    (
        json!({
            "dealers": network.logs.len(), "records": records,
            "hub_records_per_s": hub_rate, "raw_sled_records_per_s": raw_rate,
            "hub_over_raw": hub_rate / raw_rate,
            "sync_seconds": sync_time.as_secs_f64(),
            "agent_capture_records_per_s": rate(capture_time),
            "hub_stage_us_per_record": stages,
        }),
        hub,
    )
}

fn header() {
    println!(
        "{:>8} {:>9} {:>12} {:>14} {:>10} {:>14}",
        "dealers", "records", "hub rec/s", "raw sled rec/s", "hub/raw", "agent capture/s"
    );
}

/// The realistic network at each size in `shapes` (smallest first): records/s through real
/// agents beside raw sled, and how the cost per record grows from the smallest to the largest.
pub async fn realistic(pki: &TestPki, shapes: &[HistoryShape]) -> Value {
    println!("\n## a realistic history: the simulator's network over years, every agent syncing at once (records imported with their origin)");
    header();
    let mut rows = Vec::new();
    for shape in shapes {
        let network = simulated(shape, "R");
        let hub_dir = tempfile::tempdir().expect("tempdir");
        let (mut row, hub) = run_history(pki, &network, true, hub_dir.path()).await;
        hub.stop().await;
        row["years"] = json!(shape.years());
        rows.push(row);
    }
    let cost = |row: &Value| 1.0 / row["hub_records_per_s"].as_f64().unwrap_or(f64::NAN);
    // Read only where there are two sizes (full mode): one size says nothing of growth.
    let growth = match (rows.first(), rows.last()) {
        (Some(small), Some(large)) if rows.len() > 1 => {
            let growth = cost(large) / cost(small);
            println!(
                "cost per record at {} records / at {}: {growth:.2} (1.00 is linear)",
                large["records"], small["records"]
            );
            Some(growth)
        }
        _ => None,
    };
    json!({ "runs": rows, "cost_growth_per_record": growth })
}

/// One agent with a multi-year backlog (captured while it was cut off), then its catch-up to a
/// fresh hub beside raw sled; the hub is kept for the HQ query section. Returns the figures,
/// the hub and the backlog dealer's id and size.
pub async fn backlog(
    pki: &TestPki,
    shape: &HistoryShape,
    hub_dir: &std::path::Path,
) -> (Value, TestHub, (String, usize)) {
    let network = simulated(shape, "B");
    let (dealer, size) = network
        .logs
        .iter()
        .next()
        .map(|(d, log)| (d.clone(), log.len()))
        .expect("one dealer");
    println!(
        "\n## backlog: one agent with {size} pending records over {:.1} years",
        shape.years()
    );
    header();
    let (mut row, hub) = run_history(pki, &network, false, hub_dir).await;
    row["years"] = json!(shape.years());
    (row, hub, (dealer, size))
}
