//! The benchmark harness: measures Hamgam against this machine's own limits in the same run and
//! prints tables, writes JSON and SVG plots. `cargo run --release -p hamgam-tests --bin bench`
//! (full) or `-- --short` (small counts, what the test suite runs); see `docs/benchmarks.md`.
//!
//! Every part is real: the hub is `central::server::run` over mutual TLS with sled on disk, the
//! backlog and capture figures use the agent's sled store. Only the ingest load generators hold
//! their records in memory ([`MemoryOutbox`]), so they measure the hub, not the agents' disks.

pub mod customer_queries;
pub mod customer_reports;
pub mod history;
pub mod identity;
pub mod import;
pub mod outbox;
pub mod plot;
pub mod sections;

use std::path::PathBuf;

use serde_json::{json, Value};

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Small counts, no figures asserted: proves the harness works end to end.
    Short,
    /// The counts the targets are stated for.
    Full,
}

/// The sizes of each section in a mode.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub ingest_agents: Vec<usize>,
    pub ingest_records: usize,
    /// The one agent's multi-year backlog.
    pub backlog: history::HistoryShape,
    /// The realistic networks, smallest first (the cost's growth is read from the first to
    /// the last).
    pub networks: Vec<history::HistoryShape>,
    pub idle_connections: Vec<usize>,
    pub capture_samples: usize,
    /// Rows of the generated DMS export the `import` section imports.
    pub import_rows: usize,
    pub commit_samples: usize,
    pub query_dealer_sizes: Vec<usize>,
    pub query_samples: usize,
    /// Customers in the network when identity resolution is measured ...
    pub identity_customers: Vec<usize>,
    /// ... and the records resolved at each size.
    pub identity_sample: usize,
    /// The simulated network HQ's customer queries are timed on.
    pub customer_world: customer_queries::WorldSize,
}

impl Sizes {
    pub fn of(mode: Mode) -> Self {
        match mode {
            Mode::Short => Sizes {
                ingest_agents: vec![1, 10],
                ingest_records: 4_000,
                backlog: history::HistoryShape {
                    dealers: 1,
                    days: 60,
                    fleet_per_dealer: 200,
                    deliveries_per_day: 4,
                    visits_per_day: 30,
                    leads_per_day: 10,
                },
                networks: vec![history::HistoryShape {
                    dealers: 8,
                    days: 60,
                    fleet_per_dealer: 50,
                    deliveries_per_day: 1,
                    visits_per_day: 4,
                    leads_per_day: 1,
                }],
                idle_connections: vec![20, 50],
                capture_samples: 100,
                import_rows: 20_000,
                commit_samples: 50,
                query_dealer_sizes: vec![1_000, 3_000],
                query_samples: 100,
                identity_customers: vec![2_000, 10_000],
                identity_sample: 1_000,
                customer_world: customer_queries::WorldSize {
                    dealers: 8,
                    fleet_per_dealer: 100,
                    days: 10,
                    deliveries_per_day: 4,
                    visits_per_day: 20,
                    leads_per_day: 3,
                    samples: 100,
                },
            },
            Mode::Full => Sizes {
                ingest_agents: vec![1, 10, 100, 1000],
                ingest_records: 200_000,
                // About 1M records over three years (the simulator's rates).
                backlog: history::HistoryShape {
                    dealers: 1,
                    days: 1_100,
                    fleet_per_dealer: 2_000,
                    deliveries_per_day: 70,
                    visits_per_day: 450,
                    leads_per_day: 170,
                },
                // 50 dealers over three years: about 100k records in 110 days, 1M in 1,100.
                networks: [110, 1_100]
                    .into_iter()
                    .map(|days| history::HistoryShape {
                        dealers: 50,
                        days,
                        fleet_per_dealer: 200,
                        deliveries_per_day: 2,
                        visits_per_day: 6,
                        leads_per_day: 2,
                    })
                    .collect(),
                idle_connections: vec![1_000, 5_000, 10_000],
                capture_samples: 2_000,
                import_rows: 1_000_000,
                commit_samples: 1_000,
                query_dealer_sizes: vec![10_000, 100_000],
                query_samples: 1_000,
                identity_customers: vec![10_000, 100_000, 1_000_000],
                identity_sample: 10_000,
                customer_world: customer_queries::WorldSize {
                    // About 1M customers and 3.4M records (disk: ~6.4 KB per record).
                    dealers: 172,
                    fleet_per_dealer: 3_000,
                    days: 100,
                    deliveries_per_day: 10,
                    visits_per_day: 60,
                    leads_per_day: 10,
                    samples: 1_000,
                },
            },
        }
    }
}

/// Everything one run measured, section by section.
#[derive(Debug, Default)]
pub struct Report {
    pub sections: Vec<(String, Value)>,
}

impl Report {
    pub fn add(&mut self, name: &str, value: Value) {
        self.sections.push((name.to_owned(), value));
    }

    pub fn to_json(&self, mode: Mode) -> Value {
        let mut sections = serde_json::Map::new();
        for (name, value) in &self.sections {
            sections.insert(name.clone(), value.clone());
        }
        json!({
            "mode": format!("{mode:?}").to_lowercase(),
            "machine": machine(),
            "sections": sections,
        })
    }
}

/// What machine the figures come from.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_gib": (mem_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
    })
}

/// Where results go.
pub struct Output {
    pub dir: PathBuf,
}

/// The p-th percentile (0..=100) of `samples` (sorted in place), in the samples' unit.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// Resident set size of a process, bytes (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
