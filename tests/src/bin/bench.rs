//! Hamgam's benchmark harness. `bench [--short] [--out DIR]` runs every section and writes
//! `bench-<mode>.json` and SVG plots to DIR; `bench hub --pki DIR --data-dir DIR` is the hub
//! process the idle-connections section starts (the same `central::server::run` as `central serve`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hamgam_tests::bench::{self, plot, sections, Mode, Report, Sizes};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Hamgam benchmarks: figures beside this machine's limits"
)]
struct Cli {
    /// Small counts (seconds): proves the harness end to end; figures mean little.
    #[arg(long)]
    short: bool,
    /// Where the JSON and SVG results go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Only these sections (comma-separated: ingest, backlog, history, capture, import,
    /// commit, identity, customers, idle); the HQ record-listing section runs with backlog.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Dealers in the network the customers section builds (default: 172 in full mode, about
    /// 1M customers and 3.4M records; 8 in short mode). Records and customers scale with it.
    #[arg(long)]
    customer_dealers: Option<usize>,
    /// Agent counts the ingest section runs (comma-separated; default 1,10,100,1000 in full
    /// mode), for profiling one configuration.
    #[arg(long, value_delimiter = ',')]
    ingest_agents: Vec<usize>,
    /// Records the ingest section sends at each agent count (default 200,000 in full mode).
    #[arg(long)]
    ingest_records: Option<usize>,
    /// Rows of the DMS export the import section imports (default 1,000,000 in full mode,
    /// where it also kills and resumes the real import and syncs the rows to a hub).
    #[arg(long)]
    import_rows: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a hub for the idle-connections section (prints `listening <addr>`).
    Hub {
        #[arg(long)]
        pki: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// sled allocates heavily from several threads; glibc malloc showed as ~30 % of the hub's CPU
/// in the ingest profile (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("runtime")?;
    match cli.command {
        Some(Command::Hub { pki, data_dir }) => runtime.block_on(hub(pki, data_dir)),
        None => runtime.block_on(run(
            if cli.short { Mode::Short } else { Mode::Full },
            cli.out,
            cli.only,
            Overrides {
                customer_dealers: cli.customer_dealers,
                ingest_agents: cli.ingest_agents,
                ingest_records: cli.ingest_records,
                import_rows: cli.import_rows,
            },
        )),
    }
}

async fn hub(pki: PathBuf, data_dir: PathBuf) -> Result<()> {
    use hamgam_gateway::tls::{self, TlsFiles};
    let material = TlsFiles {
        ca: pki.join("ca.crt"),
        cert: pki.join("hub.crt"),
        key: pki.join("hub.key"),
    }
    .load()?;
    let store = hamgam_central::SledStore::open(&data_dir, 64 << 20)?;
    let hub = hamgam_central::Hub::new(std::sync::Arc::new(store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    use std::io::Write;
    std::io::stdout().flush()?;
    // The bench measures what the hub can take: no per-dealer pacing or call limits.
    let limits = hamgam_gateway::sync::SessionLimits {
        idle_timeout: Duration::from_secs(600),
        dealer_records_per_sec: 0,
        ..Default::default()
    };
    let options = hamgam_central::server::ServeOptions {
        edge: hamgam_gateway::server::EdgeConfig::new(
            tls::server_config(&material)?,
            hamgam_tests::TRUST_DOMAIN,
        ),
        limits,
        dealer_limits: hamgam_gateway::limits::DealerLimits {
            max_concurrent_calls: 0,
            calls_per_sec: 0,
            call_burst: 0,
        },
        max_streams_per_connection: 32,
        max_message_bytes: 16 << 20,
        grace: Duration::from_secs(5),
        lifecycle: Default::default(),
        sync_metrics: Default::default(),
        registry_watch: None,
        enrolment: None,
        crl: None,
    };
    hamgam_central::server::run(
        listener,
        hub,
        options,
        hamgam_gateway::audit::SecurityAudit::new(),
        hamgam_gateway::shutdown::signal(),
    )
    .await?;
    Ok(())
}

/// Sizes given on the command line instead of the mode's.
struct Overrides {
    customer_dealers: Option<usize>,
    ingest_agents: Vec<usize>,
    ingest_records: Option<usize>,
    import_rows: Option<usize>,
}

async fn run(mode: Mode, out: PathBuf, only: Vec<String>, overrides: Overrides) -> Result<()> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut sizes = Sizes::of(mode);
    if let Some(dealers) = overrides.customer_dealers {
        sizes.customer_world.dealers = dealers.max(1);
    }
    if !overrides.ingest_agents.is_empty() {
        sizes.ingest_agents = overrides.ingest_agents;
    }
    if let Some(records) = overrides.ingest_records {
        sizes.ingest_records = records.max(1);
    }
    if let Some(rows) = overrides.import_rows {
        sizes.import_rows = rows.max(1);
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    println!(
        "# Hamgam benchmarks ({mode:?} mode) on {}",
        bench::machine()
    );
    let pki = hamgam_tests::TestPki::new();
    let pki_dir = tempfile::tempdir()?;
    write_hub_pki(&pki, pki_dir.path())?;
    let payloads = sections::payloads();
    let mut report = Report::default();

    let mut ingest = serde_json::Value::Null;
    if wanted("ingest") {
        ingest = sections::ingest(&pki, &sizes, &payloads).await;
        report.add("ingest", ingest.clone());
    }
    if wanted("backlog") {
        let hub_dir = tempfile::tempdir()?;
        let (backlog, hub, dealer) =
            bench::history::backlog(&pki, &sizes.backlog, hub_dir.path()).await;
        report.add("backlog", backlog);
        let queries = sections::hq_queries(&pki, &sizes, &payloads, &hub, dealer).await;
        report.add("hq_queries", queries);
        hub.stop().await;
    }
    if wanted("history") {
        report.add(
            "history",
            bench::history::realistic(&pki, &sizes.networks).await,
        );
    }
    if wanted("capture") {
        report.add("capture", sections::capture(&sizes, &payloads).await);
    }
    if wanted("import") {
        let rows = sizes.import_rows;
        let (mut import, dir) =
            tokio::task::spawn_blocking(move || bench::import::import_section(rows))
                .await
                .context("the import section failed")?;
        if mode == Mode::Full {
            let path = dir.path().to_owned();
            import["killed_and_resumed"] = tokio::task::spawn_blocking(move || {
                bench::import::killed_and_resumed(&path, rows, 40.0)
            })
            .await
            .context("the import's kill and resume failed")?;
            import["synced_to_hub"] = bench::import::synced_to_hub(&pki, dir.path(), rows).await;
        }
        report.add("import", import);
    }
    if wanted("commit") {
        let commit = sections::commit_to_ack(&pki, &sizes, &payloads).await;
        report.add("commit_to_ack", commit);
    }
    if wanted("identity") {
        let sizes = sizes.clone();
        let identity = tokio::task::spawn_blocking(move || bench::identity::identity(&sizes))
            .await
            .context("the identity section failed")?;
        report.add("identity", identity);
    }
    if wanted("customers") {
        let queries = bench::customer_queries::customer_queries(&pki, &sizes.customer_world).await;
        report.add("customer_queries", queries);
    }
    let mut idle = serde_json::Value::Null;
    if wanted("idle") {
        idle = sections::idle(&pki, &sizes, pki_dir.path()).await;
        report.add("idle", idle.clone());
    }

    let name = match (mode, only.is_empty()) {
        (Mode::Short, true) => "short".to_owned(),
        (Mode::Full, true) => "full".to_owned(),
        (_, false) => format!(
            "{}-{}",
            if mode == Mode::Short { "short" } else { "full" },
            only.join("-")
        ),
    };
    let json_path = out.join(format!("bench-{name}.json"));
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report.to_json(mode))?,
    )?;
    let series = |key: &str| -> Vec<(f64, f64)> {
        ingest
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["agents"].as_f64().unwrap_or(0.0),
                    r[key].as_f64().unwrap_or(0.0),
                )
            })
            .collect()
    };
    let chart = plot::line_chart(
        "Ingest over mutual TLS",
        "concurrent agents",
        "records/s",
        &[
            plot::Series {
                name: "hub (durable)",
                points: series("hub_records_per_s"),
            },
            plot::Series {
                name: "no-op gRPC sink",
                points: series("noop_sink_records_per_s"),
            },
            plot::Series {
                name: "raw sled",
                points: series("raw_sled_records_per_s"),
            },
        ],
        true,
    );
    if !ingest.is_null() {
        std::fs::write(out.join(format!("ingest-{name}.svg")), chart)?;
    }
    let rss: Vec<(f64, f64)> = idle
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["agents"].as_f64().unwrap_or(0.0),
                r["hub_rss_mib"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    if idle.is_null() {
        println!("\nresults: {}", json_path.display());
        return Ok(());
    }
    std::fs::write(
        out.join(format!("idle-rss-{name}.svg")),
        plot::line_chart(
            "Hub RSS with idle agents connected",
            "connected agents",
            "MiB",
            &[plot::Series {
                name: "hub RSS",
                points: rss,
            }],
            false,
        ),
    )?;
    println!(
        "\nresults: {} and SVG plots in {}",
        json_path.display(),
        out.display()
    );
    Ok(())
}

fn write_hub_pki(pki: &hamgam_tests::TestPki, dir: &std::path::Path) -> Result<()> {
    use hamgam_gateway::pki::{Subject, Validity};
    let hub = pki.ca.issue(
        &Subject::Hub {
            dns_names: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse()?],
        },
        Validity::days_from_now(7),
    )?;
    std::fs::write(dir.join("ca.crt"), pki.ca.cert_pem())?;
    std::fs::write(dir.join("hub.crt"), hub.cert_pem)?;
    hamgam_gateway::files::write_private(&dir.join("hub.key"), hub.key_pem.as_bytes())?;
    Ok(())
}
