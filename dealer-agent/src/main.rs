//! `dealer-agent`: the dealership's command line. Staff and scripts record sales, service
//! visits, leads, complaints and surveys; the agent keeps them durably and syncs them to the hub.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hamgam_dealer_agent::capture;
use hamgam_dealer_agent::config::AgentConfig;
use hamgam_dealer_agent::store::AgentStore;
use hamgam_dealer_agent::sync_loop::{self, Backoff};
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::sync::SessionOptions;
use hamgam_gateway::tls::{self, TlsFiles};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::record::v1::Outcome;
use hamgam_proto::RecordKind;

#[derive(Parser)]
#[command(
    name = "dealer-agent",
    version,
    about = "Hamgam dealership agent: records sales and service data locally and syncs it to the hub",
    after_help = "Configuration comes from --config (TOML), then the flags above override it.\n\
                  Example: dealer-agent --config agent.toml record lead --field customerRef=C-7 --field contactedAtMs=now"
)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Overrides {
    /// Agent config file (TOML).
    #[arg(long, env = "HAMGAM_AGENT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// This dealership's id, e.g. D-1042.
    #[arg(long, global = true)]
    dealer: Option<String>,
    /// Folder of the local store.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Hub address, host:port.
    #[arg(long, global = true)]
    hub: Option<String>,
    /// Name on the hub's certificate.
    #[arg(long, global = true)]
    server_name: Option<String>,
    /// CA certificate (PEM).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// This dealer's certificate (PEM).
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// This dealer's private key (PEM).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Record one staff action; durable locally before it says "saved".
    ///
    /// Kinds: customer, retail-delivery, repair-order, lead, complaint, survey,
    /// odometer-replacement, vehicle-status, correction. Fields use the proto3 JSON names
    /// (camelCase) and enum names, e.g. --field partyType=PARTY_TYPE_PERSON --field familyName=احمدی.
    Record {
        /// What kind of record.
        kind: RecordKind,
        /// A field as name=value; repeatable. Dotted names fill nested messages
        /// (address.postalCode=...), YYYY-MM-DD is a date, `now` on an ...AtMs field is now.
        #[arg(long = "field", short = 'f')]
        fields: Vec<String>,
        /// The whole payload as proto3 JSON from a file (`-` for stdin); --field values are added.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Staff code of who made the record (default: the config's staff_id).
        #[arg(long)]
        staff: Option<String>,
    },
    /// Show what is waiting to sync, when the last sync was and why it last failed.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sync once: send everything pending, wait until the hub acknowledges it, exit.
    Sync,
    /// Stay connected and sync records as they are made; reconnects with jittered backoff.
    /// Stops on SIGINT/SIGTERM.
    Run,
    /// List the hub's verdicts on this dealer's records.
    Verdicts {
        /// Only rejected and flagged records.
        #[arg(long)]
        needs_fixing: bool,
        /// Language of the reasons: fa or en.
        #[arg(long, default_value = "fa")]
        lang: String,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,hamgam_dealer_agent::sync_loop=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let config = load_config(cli.overrides)?;
    let dealer = DealerId::new(config.dealer_id.clone())
        .context("set dealer_id in the config file or pass --dealer")?;
    match cli.command {
        Command::Record {
            kind,
            fields,
            json,
            staff,
        } => {
            let now = hamgam_gateway::sync::now_ms();
            let mut document = match json {
                Some(path) => read_json(&path)?,
                None => serde_json::Value::Object(Default::default()),
            };
            let from_fields = capture::json_from_fields(&fields, now)?;
            merge_json(&mut document, from_fields)?;
            let payload = capture::payload_from_json(kind, document)?;
            let store = open_store(&config, dealer)?;
            let saved = store.capture(staff.as_deref().unwrap_or(&config.staff_id), payload)?;
            println!(
                "saved {kind} as seq {} (record {}); it syncs when the hub is reachable",
                saved.seq, saved.record_id
            );
            Ok(())
        }
        Command::Status { json } => {
            let store = open_store(&config, dealer)?;
            let status = store.status()?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "dealer_id": status.dealer_id,
                        "last_seq": status.last_seq,
                        "acked_seq": status.acked_seq,
                        "pending": status.pending(),
                        "last_sync_ms": status.last_sync_ms,
                        "last_error": status.last_error,
                        "rejected": status.rejected,
                        "flagged": status.flagged,
                    })
                );
            } else {
                println!("dealer:        {}", status.dealer_id);
                println!("records made:  {}", status.last_seq);
                println!("pending sync:  {}", status.pending());
                println!(
                    "last sync:     {}",
                    status
                        .last_sync_ms
                        .map(format_ms)
                        .unwrap_or_else(|| "never".into())
                );
                println!(
                    "last error:    {}",
                    status.last_error.as_deref().unwrap_or("none")
                );
                println!(
                    "rejected:      {}   flagged: {}",
                    status.rejected, status.flagged
                );
            }
            Ok(())
        }
        Command::Sync => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let endpoint = endpoint(&config, &dealer)?;
                let store = open_store(&config, dealer)?;
                let before = store.status()?;
                let report = sync_loop::sync_once(&store, &endpoint, &session_options(&config))
                    .await
                    .with_context(|| format!("sync with the hub at {} failed; records stay pending and are sent next time", config.hub.addr))?;
                println!(
                    "synced: {} records sent, hub holds up to seq {}, {} pending before, 0 now (clock offset {} ms)",
                    report.records_sent,
                    report.acked_seq,
                    before.pending(),
                    report.clock_offset_ms
                );
                Ok(())
            })
        }
        Command::Run => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let endpoint = endpoint(&config, &dealer)?;
                let store = open_store(&config, dealer)?;
                let shutdown = tokio_util::sync::CancellationToken::new();
                let signal = shutdown.clone();
                tokio::spawn(async move {
                    hamgam_gateway::shutdown::signal().await;
                    signal.cancel();
                });
                let backoff = Backoff::new(
                    Duration::from_millis(config.sync.backoff_initial_ms),
                    Duration::from_millis(config.sync.backoff_max_ms),
                );
                sync_loop::run(store, endpoint, session_options(&config), backoff, shutdown).await;
                Ok(())
            })
        }
        Command::Verdicts { needs_fixing, lang } => {
            if lang != "fa" && lang != "en" {
                bail!("--lang must be fa or en, not `{lang}`");
            }
            let store = open_store(&config, dealer)?;
            let mut shown = 0;
            for verdict in store.verdicts()? {
                if needs_fixing && verdict.outcome() == Outcome::Accepted {
                    continue;
                }
                shown += 1;
                println!(
                    "seq {:>6}  {}  {}",
                    verdict.seq,
                    verdict.record_id,
                    verdict
                        .outcome()
                        .as_str_name()
                        .trim_start_matches("OUTCOME_")
                        .to_lowercase()
                );
                for finding in &verdict.findings {
                    let reason = if lang == "fa" {
                        &finding.reason_fa
                    } else {
                        &finding.reason_en
                    };
                    println!("    {} {}: {reason}", finding.rule_id, finding.field);
                }
            }
            if shown == 0 {
                println!("no verdicts to show");
            }
            Ok(())
        }
    }
}

fn load_config(o: Overrides) -> Result<AgentConfig> {
    let mut config = match &o.config {
        Some(path) => AgentConfig::from_file(path)?,
        None => AgentConfig::default(),
    };
    if let Some(v) = o.dealer {
        config.dealer_id = v;
    }
    if let Some(v) = o.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = o.hub {
        config.hub.addr = v;
    }
    if let Some(v) = o.server_name {
        config.hub.server_name = v;
    }
    if let Some(v) = o.ca {
        config.tls.ca = v;
    }
    if let Some(v) = o.cert {
        config.tls.cert = v;
    }
    if let Some(v) = o.key {
        config.tls.key = v;
    }
    Ok(config)
}

fn open_store(config: &AgentConfig, dealer: DealerId) -> Result<AgentStore> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    Ok(AgentStore::open(&config.data_dir, dealer)?)
}

fn endpoint(config: &AgentConfig, dealer: &DealerId) -> Result<HubEndpoint> {
    let material = TlsFiles {
        ca: config.tls.ca.clone(),
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
    }
    .load()?;
    // Catch a certificate of another dealer here, not as a refusal from the hub.
    let leaf = tls::parse_certificates(&material.cert_pem, "dealer certificate")?;
    let identity =
        PeerIdentity::from_certificate(&leaf[0], &config.trust_domain).with_context(|| {
            format!(
                "the certificate {} is not a Hamgam dealer certificate",
                config.tls.cert.display()
            )
        })?;
    if identity != PeerIdentity::Dealer(dealer.clone()) {
        bail!(
            "the certificate {} is for {identity}, but this agent is dealer {dealer}; use that dealer's certificate",
            config.tls.cert.display()
        );
    }
    Ok(HubEndpoint::new(
        config.hub.addr.clone(),
        config.hub.server_name.clone(),
        tls::client_config(&material)?,
    ))
}

fn session_options(config: &AgentConfig) -> SessionOptions {
    SessionOptions {
        batch_records: config.sync.batch_records,
        batches_in_flight: config.sync.batches_in_flight,
        ..SessionOptions::default()
    }
}

fn read_json(path: &PathBuf) -> Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the payload from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn merge_json(into: &mut serde_json::Value, from: serde_json::Value) -> Result<()> {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_json(existing, v)?
                    }
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        _ => bail!("the JSON payload must be an object"),
    }
}

fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}
