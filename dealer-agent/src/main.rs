//! `dealer-agent`: the dealership's command line. Staff and scripts record sales, service
//! visits, leads, complaints and surveys; the agent keeps them durably and syncs them to the hub.

mod enroll_cli;
mod import_cli;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hamgam_dealer_agent::capture;
use hamgam_dealer_agent::config::AgentConfig;
use hamgam_dealer_agent::local_api::{self, LocalRequest, LocalResponse};
use hamgam_dealer_agent::local_grpc;
use hamgam_dealer_agent::store::{AgentStore, StoreError};
use hamgam_dealer_agent::sync_loop::{self, Backoff};
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::sync::SessionOptions;
use hamgam_gateway::tls::{self, TlsFiles};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1::{Outcome, Verdict};
use hamgam_proto::RecordKind;
use std::io::Write as _;

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
    /// Where `run` serves the local capture API: a loopback host:port (`[local_api]
    /// grpc_listen`, default 127.0.0.1:50761; port 0 picks a free one, written to
    /// local-api.addr in the data folder), or "" for none.
    #[arg(long, global = true, value_name = "ADDR")]
    local_api: Option<String>,
    /// Log lines as text (default) or as JSON objects, one per line (for a log shipper).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HAMGAM_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Get this branch's certificate from the hub with the one-time token ops gave: the key
    /// pair is made here and never leaves this PC. Writes the certificate, key, the
    /// deployment's root and the config file (--config, default agent.toml); then `run`.
    /// Example: dealer-agent --config /etc/hamgam/agent.toml --hub hub.example.ir:7444 enroll
    /// --token 7KQM-2XHD-9PWA --ca-fingerprint 3f2a...
    Enroll(enroll_cli::EnrollArgs),
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
    /// Correct one of this dealer's records (or withdraw it): a Correction record is made and
    /// synced, and the hub judges the record again on the corrected content; a rejected record
    /// leaves quarantine once the correction is clean.
    ///
    /// The record as it was is the starting point; --field values replace its fields.
    Correct {
        /// The record to correct: its seq or its record id (as `verdicts` shows them).
        record: String,
        /// Why it is corrected (kept with the correction).
        #[arg(long)]
        reason: String,
        /// A field of the record to change, as name=value (as for `record`); repeatable.
        #[arg(long = "field", short = 'f')]
        fields: Vec<String>,
        /// Withdraw the record instead: it no longer counts anywhere.
        #[arg(long, conflicts_with = "fields")]
        retract: bool,
        /// Staff code of who corrects it (default: the config's staff_id).
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
    /// Stay connected and sync records as they are made (SIGINT/SIGTERM stop it).
    ///
    /// Reconnects with jittered exponential backoff. Other `dealer-agent` commands on this PC
    /// reach the store through this process's local socket while it runs. If the disk holding
    /// the store fills up (or fails), the record being saved is refused and the agent exits
    /// with status 1 and the reason; its service starts it again once there is room.
    Run,
    /// Record a simulated dealership's work with labelled faults (demos, smoke tests).
    ///
    /// Realistic data with faults injected per rule of RULES.md and written down in --labels.
    /// The network is the same for every dealer given the same --seed, --network, --start and
    /// --days, so several agents simulate one consistent network. Needs the store: stop
    /// `dealer-agent run` first.
    Simulate(SimulateArgs),
    /// Rebuild this PC's store from the hub after the PC was replaced or its store was lost:
    /// the dealer's own records and their current verdicts, page by page (resumable: run it
    /// again if it stopped). The next record made gets the next seq.
    ///
    /// Refused when the store already holds records, unless --force, which keeps the current
    /// store as `<data-dir>.before-restore-<time>` first. Needs the dealer's certificate (the
    /// config's [tls]); stop `dealer-agent run` first.
    ///
    /// With --from DIR instead: this store as a `dealer-agent backup` left it (records not
    /// synced yet included); the backup's manifest and file are checked before anything is
    /// written.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["from_hub", "from"])))]
    Restore {
        /// Where from: the hub (this dealer's records and verdicts the hub holds).
        #[arg(long)]
        from_hub: bool,
        /// Where from: a folder `dealer-agent backup --to` wrote.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Replace a store that holds records, keeping a copy of it.
        #[arg(long)]
        force: bool,
        /// Records per page.
        #[arg(long, default_value_t = 500)]
        page_size: u32,
    },
    /// Copy this store (every record, synced or not, the verdicts, the outbox position) into
    /// a new or empty folder, manifest last; `restore --from DIR` puts it back. Stop
    /// `dealer-agent run` first: it holds the store.
    Backup {
        /// A new or empty folder for the backup.
        #[arg(long)]
        to: PathBuf,
    },
    /// Import history from the dealership's DMS: a CSV file (header row) or JSON Lines
    /// (`.jsonl`), mapped to records by MAP.toml (docs/import.md), committed in durable chunks
    /// with each row's source id and time. Safe to run again: a row already imported is a
    /// no-op, a changed one a correction. Refused rows go to FILE.rejects.csv with the reason.
    /// Works on the store directly: stop `dealer-agent run` first.
    Import {
        /// The DMS export: CSV, or JSON Lines when it ends in .jsonl / .ndjson.
        file: PathBuf,
        /// The mapping file (TOML): the kind, the source system, columns to fields.
        #[arg(long)]
        mapping: PathBuf,
        /// Save nothing: list per row what capture would refuse and what the entry checks
        /// warn about, with a summary by rule.
        #[arg(long)]
        dry_run: bool,
        /// Skip the rows an earlier, interrupted run committed (FILE.progress); without it they
        /// are read again and found already imported.
        #[arg(long)]
        resume: bool,
    },
    /// Manage the staff accounts of the web screen (`[web]`): add, disable, reset-password,
    /// list. Works on the store directly: stop `dealer-agent run` first.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// List the hub's verdicts on this dealer's records, newest first.
    Verdicts {
        /// Only rejected and flagged records.
        #[arg(long)]
        needs_fixing: bool,
        /// Language of the reasons: fa or en.
        #[arg(long, default_value = "fa")]
        lang: String,
        /// Show the newest this many records only (every verdict of the hub is stored).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Add a staff account; asks for its password (or reads it from stdin with --password-stdin).
    Add {
        /// The staff code (records carry it as their staff_id), e.g. s-104.
        staff_id: String,
        /// The name shown on the screen.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: hamgam_dealer_agent::staff::Role,
        /// Read the password from the first line of stdin (scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it can no longer log in (its sessions end); its records stay.
    Disable { staff_id: String },
    /// Set a new password (and enable the account again).
    ResetPassword {
        staff_id: String,
        /// Read the password from the first line of stdin (scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
}

/// sled allocates heavily from several threads; glibc malloc showed as ~30 % of the hub's CPU
/// in the ingest profile (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "warn,hamgam_dealer_agent::sync_loop=info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.overrides.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    // Enrolment comes before there is a config or a dealer id to read.
    let command = match cli.command {
        Command::Enroll(args) => {
            let o = cli.overrides;
            let globals = enroll_cli::Globals {
                config: o.config,
                hub: o.hub,
                server_name: o.server_name,
                dealer: o.dealer,
            };
            return enroll_cli::run(globals, args);
        }
        other => other,
    };
    let config = load_config(cli.overrides)?;
    let dealer = DealerId::new(config.dealer_id.clone())
        .context("set dealer_id in the config file or pass --dealer")?;
    match command {
        Command::Enroll(_) => bail!("`enroll` takes no config file to read"),
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
            // Checked here so a typo is reported before anything is stored.
            let payload = capture::payload_from_json(kind, document.clone())?;
            let staff_id = staff.unwrap_or_else(|| config.staff_id.clone());
            let access = access_store(&config, dealer)?;
            let (seq, record_id, warnings) =
                save(&config, access, &staff_id, kind, payload, document)?;
            println!("saved {kind} as seq {seq} (record {record_id}); it syncs when the hub is reachable");
            print_warnings(&warnings);
            Ok(())
        }
        Command::Correct {
            record,
            reason,
            fields,
            retract,
            staff,
        } => {
            if !retract && fields.is_empty() {
                bail!("say what to change with --field name=value, or withdraw the record with --retract");
            }
            let staff_id = staff.unwrap_or_else(|| config.staff_id.clone());
            let access = access_store(&config, dealer)?;
            let target = match &access {
                StoreAccess::Direct(store) => find_record(store, &record)?,
                StoreAccess::Running => match ask_running_agent(
                    &config,
                    LocalRequest::Record {
                        reference: record.clone(),
                    },
                )? {
                    LocalResponse::Record { record } => serde_json::from_value(record)
                        .context("the running agent sent a record this version cannot read")?,
                    other => bail!("unexpected answer from the running agent: {other:?}"),
                },
            };
            let document = correction_json(&target, &reason, retract, &fields)?;
            let payload = capture::payload_from_json(RecordKind::Correction, document.clone())?;
            let (seq, record_id, warnings) = save(
                &config,
                access,
                &staff_id,
                RecordKind::Correction,
                payload,
                document,
            )?;
            println!(
                "saved the correction of seq {} as seq {seq} (record {record_id}); the hub judges seq {} again when it syncs",
                target.seq, target.seq
            );
            print_warnings(&warnings);
            Ok(())
        }
        Command::Status { json } => {
            let status = match access_store(&config, dealer)? {
                StoreAccess::Direct(store) => store.status()?,
                StoreAccess::Running => match ask_running_agent(&config, LocalRequest::Status)? {
                    LocalResponse::Status { status } => status,
                    other => bail!("unexpected answer from the running agent: {other:?}"),
                },
            };
            let certificate = certificate_line(&config);
            let text = if json {
                let mut value = serde_json::to_value(&status)?;
                value["pending"] = status.pending().into();
                value["certificate"] = certificate.into();
                format!("{value}\n")
            } else {
                let mut text = format!(
                    "dealer:        {}\nrecords made:  {}\npending sync:  {}\nlast sync:     {}\nlast error:    {}\nrejected:      {}   flagged: {}\ncertificate:   {certificate}\n",
                    status.dealer_id,
                    status.last_seq,
                    status.pending(),
                    status
                        .last_sync_ms
                        .map(format_ms)
                        .unwrap_or_else(|| "never".into()),
                    status.last_error.as_deref().unwrap_or("none"),
                    status.rejected,
                    status.flagged,
                );
                if status.cannot_send > 0 {
                    text.push_str(&format!(
                        "cannot send:   {} stored record(s) the hub can never accept as they are (over a size bound, or unreadable): stand-ins went instead, and the records behind them sync on; see `verdicts --needs-fixing` and correct them\n",
                        status.cannot_send
                    ));
                }
                text
            };
            print_out(&text)
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
                // Staff keep recording from other processes while this one holds the store.
                let socket = local_api::socket_path(&config.data_dir);
                let listener = local_api::bind(&socket).with_context(|| {
                    format!("cannot open the local API socket {}", socket.display())
                })?;
                let local_api = tokio::spawn(local_api::serve(
                    store.clone(),
                    listener,
                    socket,
                    shutdown.clone(),
                ));
                // The branch's figures for the monitoring, on loopback (`[metrics] listen`).
                let metrics = match &config.metrics.listen {
                    Some(addr) => {
                        let listener = tokio::net::TcpListener::bind(addr)
                            .await
                            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
                        let render = hamgam_dealer_agent::metrics::render(
                            store.clone(),
                            config.tls.cert.clone(),
                        );
                        let stop = shutdown.clone();
                        Some(tokio::spawn(async move {
                            hamgam_gateway::metrics::serve(listener, render, stop.cancelled_owned())
                                .await
                        }))
                    }
                    None => None,
                };
                // The local capture API for the dealer's own systems (`[local_api]`).
                let local_grpc = start_local_grpc(&config, &store, &shutdown).await?;
                // The staff screen (`[web]`), in this process so it shares the store.
                let web = match &config.web {
                    Some(settings) => Some(start_web(&config, settings, &store, &shutdown).await?),
                    None => None,
                };
                // A full or failing disk leaves sled refusing every operation until the store
                // is opened again: stop (with an error, so the service starts the agent again).
                let disk_watch = {
                    let (store, shutdown) = (store.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        let reason = store.unusable().await;
                        tracing::error!("stopping: {reason}");
                        shutdown.cancel();
                    })
                };
                let backoff = Backoff::new(
                    Duration::from_millis(config.sync.backoff_initial_ms),
                    Duration::from_millis(config.sync.backoff_max_ms),
                );
                let renewal = hamgam_dealer_agent::certificate::Renewal {
                    files: certificate_files(&config),
                    trust_domain: config.trust_domain.clone(),
                };
                sync_loop::run(
                    store.clone(),
                    endpoint,
                    session_options(&config),
                    backoff,
                    Some(renewal),
                    shutdown.clone(),
                )
                .await;
                shutdown.cancel();
                local_api
                    .await
                    .context("the local API task failed")?
                    .context("the local API failed")?;
                disk_watch.abort();
                if let Some(local_grpc) = local_grpc {
                    if let Ok(Err(e)) = local_grpc.await {
                        tracing::warn!("the local capture API failed: {e}");
                    }
                }
                if let Some(web) = web {
                    if let Ok(Err(e)) = web.await {
                        tracing::warn!("the staff screen failed: {e}");
                    }
                }
                if let Some(metrics) = metrics {
                    if let Ok(Err(e)) = metrics.await {
                        tracing::warn!("the metrics listener failed: {e}");
                    }
                }
                if let Some(reason) = store.unusable_reason() {
                    bail!("the agent stopped: {reason}");
                }
                Ok(())
            })
        }
        Command::Staff { command } => staff_command(&config, dealer, command),
        Command::Simulate(args) => simulate_command(&config, dealer, args),
        Command::Backup { to } => backup_command(&config, dealer, &to),
        Command::Import {
            file,
            mapping,
            dry_run,
            resume,
        } => import_cli::import(&config, dealer, &file, &mapping, dry_run, resume),
        Command::Restore {
            from: Some(from),
            force,
            ..
        } => restore_from_backup(&config, dealer, &from, force),
        Command::Restore {
            from: None,
            force,
            page_size,
            ..
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let endpoint = endpoint(&config, &dealer)?;
                std::fs::create_dir_all(&config.data_dir).with_context(|| {
                    format!(
                        "cannot create the data folder {}",
                        config.data_dir.display()
                    )
                })?;
                let report = hamgam_dealer_agent::restore::restore_from_hub(
                    &config.data_dir,
                    dealer.clone(),
                    &endpoint,
                    force,
                    page_size,
                    hamgam_gateway::sync::now_ms(),
                    |done, total| eprintln!("restored {done}/{total} records of {dealer}"),
                )
                .await
                .with_context(|| format!("restore from the hub at {} failed", config.hub.addr))?;
                if let Some(copy) = &report.kept_copy {
                    println!("the store that was here is kept at {}", copy.display());
                }
                println!(
                    "restored: {} records ({} written now); the next record is seq {}",
                    report.records,
                    report.written,
                    report.records + 1
                );
                Ok(())
            })
        }
        Command::Verdicts {
            needs_fixing,
            lang,
            limit,
        } => {
            if lang != "fa" && lang != "en" {
                bail!("--lang must be fa or en, not `{lang}`");
            }
            let verdicts: Vec<Verdict> = match access_store(&config, dealer)? {
                StoreAccess::Direct(store) => store.verdicts()?,
                StoreAccess::Running => match ask_running_agent(&config, LocalRequest::Verdicts)? {
                    LocalResponse::Verdicts { verdicts } => verdicts
                        .into_iter()
                        .map(serde_json::from_value)
                        .collect::<Result<_, _>>()
                        .context("the running agent sent a verdict this version cannot read")?,
                    other => bail!("unexpected answer from the running agent: {other:?}"),
                },
            };
            let mut out = std::io::stdout().lock();
            let mut shown = 0;
            let printed = (|| -> std::io::Result<()> {
                // Newest first: staff look for what just came back.
                for verdict in verdicts.into_iter().rev() {
                    if needs_fixing && verdict.outcome() == Outcome::Accepted {
                        continue;
                    }
                    if limit.is_some_and(|l| shown >= l) {
                        break;
                    }
                    shown += 1;
                    writeln!(
                        out,
                        "seq {:>6}  {}  {}  (verdict v{})",
                        verdict.seq,
                        verdict.record_id,
                        verdict
                            .outcome()
                            .as_str_name()
                            .trim_start_matches("OUTCOME_")
                            .to_lowercase(),
                        verdict.version
                    )?;
                    for finding in &verdict.findings {
                        let reason = if lang == "fa" {
                            &finding.reason_fa
                        } else {
                            &finding.reason_en
                        };
                        writeln!(out, "    {} {}: {reason}", finding.rule_id, finding.field)?;
                    }
                }
                if shown == 0 {
                    writeln!(out, "no verdicts to show")?;
                }
                Ok(())
            })();
            match printed {
                // A reader that stopped early (`| head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
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
    if let Some(v) = o.local_api {
        config.local_api.grpc_listen = v;
    }
    Ok(config)
}

/// Starts the local capture API of `run` on `[local_api] grpc_listen` (none when it is empty).
async fn start_local_grpc(
    config: &AgentConfig,
    store: &AgentStore,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<Result<(), local_grpc::LocalGrpcError>>>> {
    let listen = config.local_api.grpc_listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let addr = local_grpc::loopback_addr(listen)?;
    let token = local_grpc::load_or_make_token(&config.local_api_token_file())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for the local capture API on {addr} ([local_api] grpc_listen or --local-api; \"\" turns it off)"))?;
    // Where it listens, for clients on this PC (the port when 0 was asked for).
    let bound = listener
        .local_addr()
        .context("the local capture API's address")?;
    let addr_file = config.data_dir.join("local-api.addr");
    hamgam_gateway::files::write_private(&addr_file, format!("{bound}\n").as_bytes())
        .with_context(|| format!("cannot write {}", addr_file.display()))?;
    Ok(Some(tokio::spawn(local_grpc::serve(
        listener,
        store.clone(),
        token,
        shutdown.clone(),
    ))))
}

/// Starts the staff screen of `run` on `[web] listen` (plain HTTP on loopback, HTTPS on any other address).
async fn start_web(
    config: &AgentConfig,
    settings: &hamgam_dealer_agent::config::WebSettings,
    store: &AgentStore,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    use hamgam_dealer_agent::web;
    let https = web::https_config(
        settings.tls_certificate.as_deref(),
        settings.tls_key.as_deref(),
    )?;
    let addr = web::check_listen(&settings.listen, https.is_some())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for the staff screen on {addr}"))?;
    let options = web::WebOptions {
        idle_minutes: settings.idle_minutes.max(1),
        certificate: Some(config.tls.cert.clone()),
        clock: hamgam_gateway::Clock::System,
        https: https.is_some(),
        hub: Some({
            let (config, dealer) = (config.clone(), store.dealer().clone());
            std::sync::Arc::new(move || endpoint(&config, &dealer).map_err(|e| format!("{e:#}")))
        }),
    };
    let router = web::router(store.clone(), options)?;
    let scheme = if https.is_some() { "https" } else { "http" };
    if store.staff_accounts()?.is_empty() {
        tracing::warn!("the staff screen is on at {scheme}://{addr}/ but there is no staff account yet: add one with `dealer-agent staff add`");
    }
    Ok(match https {
        Some(tls) => tokio::spawn(web::serve_tls(listener, router, tls, shutdown.clone())),
        None => tokio::spawn(web::serve(listener, router, shutdown.clone())),
    })
}

/// `dealer-agent staff ...`.
fn staff_command(config: &AgentConfig, dealer: DealerId, command: StaffCommand) -> Result<()> {
    use hamgam_dealer_agent::staff;
    let store = match AgentStore::open(&config.data_dir, dealer) {
        Err(StoreError::Locked { path }) => bail!(
            "the store at {path} is held by a running `dealer-agent run`: stop it (`systemctl stop hamgam-agent`), change the accounts, then start it again"
        ),
        other => not_restoring(other?)?,
    };
    match command {
        StaffCommand::Add {
            staff_id,
            name,
            role,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let account = staff::add(&store, &staff_id, &name, role, &password)?;
            println!(
                "added {} ({}, {}); they log in on the staff screen",
                account.staff_id,
                account.name,
                account.role.label_en()
            );
        }
        StaffCommand::Disable { staff_id } => {
            staff::disable(&store, &staff_id)?;
            println!("disabled {staff_id}: it can no longer log in");
        }
        StaffCommand::ResetPassword {
            staff_id,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            staff::reset_password(&store, &staff_id, &password)?;
            println!("new password set for {staff_id}");
        }
        StaffCommand::List => {
            let mut text = String::new();
            for a in store.staff_accounts()? {
                text.push_str(&format!(
                    "{:<16} {:<18} {:<28} {}\n",
                    a.staff_id,
                    a.role.label_en(),
                    a.name,
                    if a.disabled { "disabled" } else { "active" }
                ));
            }
            if text.is_empty() {
                text.push_str("no staff accounts yet: `dealer-agent staff add STAFF_ID --name NAME --role sales|service|manager`\n");
            }
            print_out(&text)?;
        }
    }
    Ok(())
}

/// A new password: the first line of stdin, or asked twice on the terminal without echo.
fn read_password(from_stdin: bool) -> Result<String> {
    let mut line = String::new();
    if from_stdin || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        // No echo while it is typed (stty of the terminal; restored even on error).
        let _ = std::process::Command::new("stty").arg("-echo").status();
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line);
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
        read.context("cannot read the password")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let first = ask("password: ")?;
    if ask("again: ")? != first {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

/// `dealer-agent backup --to DIR`.
fn backup_command(config: &AgentConfig, dealer: DealerId, to: &std::path::Path) -> Result<()> {
    let store = match AgentStore::open(&config.data_dir, dealer) {
        Err(StoreError::Locked { path }) => bail!(
            "the store at {path} is held by a running `dealer-agent run`: stop it (`systemctl stop hamgam-agent`), run the backup (seconds for a branch's store), then start it again"
        ),
        other => not_restoring(other?)?,
    };
    let m = hamgam_dealer_agent::backup::backup(&store, to)
        .with_context(|| format!("the backup into {} did not finish: the folder is not a backup; remove it before trying again", to.display()))?;
    println!(
        "backup of {} written to {}: {} records (the hub had acknowledged {}), {} entries, {} bytes",
        m.dealer_id,
        to.display(),
        m.last_seq,
        m.acked_seq,
        m.entries,
        m.files.iter().map(|f| f.bytes).sum::<u64>()
    );
    Ok(())
}

/// `dealer-agent restore --from DIR`.
fn restore_from_backup(
    config: &AgentConfig,
    dealer: DealerId,
    from: &std::path::Path,
    force: bool,
) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let restored = hamgam_dealer_agent::backup::restore(
        from,
        &config.data_dir,
        dealer,
        force,
        hamgam_gateway::sync::now_ms(),
    )
    .with_context(|| format!("cannot restore from {}", from.display()))?;
    if let Some(copy) = &restored.kept_copy {
        println!("the store that was here is kept at {}", copy.display());
    }
    let m = &restored.manifest;
    println!(
        "restored {} records of {} from the backup ({} acknowledged by the hub, {} to send); the next record is seq {}",
        m.last_seq,
        m.dealer_id,
        m.acked_seq,
        m.last_seq - m.acked_seq.min(m.last_seq),
        m.last_seq + 1
    );
    Ok(())
}

fn open_store(config: &AgentConfig, dealer: DealerId) -> Result<AgentStore> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    not_restoring(AgentStore::open(&config.data_dir, dealer)?)
}

/// The store, unless a restore from the hub stopped half-way in it.
fn not_restoring(store: AgentStore) -> Result<AgentStore> {
    if store.is_restoring()? {
        bail!(
            "a restore from the hub stopped before it finished in this store ({} records so far); run `dealer-agent restore --from-hub` again to finish it, then record and sync",
            store.status()?.last_seq
        );
    }
    Ok(store)
}

#[derive(Args)]
struct SimulateArgs {
    /// Seed of the simulated network.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Every dealer of the network, comma-separated (default: this dealer alone).
    #[arg(long, value_delimiter = ',')]
    network: Vec<String>,
    /// Working days simulated.
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// First simulated day, YYYY-MM-DD (default: so the window ends yesterday).
    #[arg(long)]
    start: Option<String>,
    /// Fault rates per rule, e.g. `all=0.02,V01=0.1` (`all=0` for clean data).
    #[arg(long, default_value = "all=0.02")]
    faults: String,
    /// Vehicles each dealer sold before the window (its imported delivery history).
    #[arg(long, default_value_t = 150)]
    fleet: u32,
    /// Service visits per dealer per day.
    #[arg(long, default_value_t = 12)]
    visits_per_day: u32,
    /// Write the ground truth here: one JSON line per record (seq, record id, kind, rules).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Write the network's dealer registry (company IDs, staff) here as JSON.
    #[arg(long)]
    registry: Option<PathBuf>,
}

fn simulate_command(config: &AgentConfig, dealer: DealerId, args: SimulateArgs) -> Result<()> {
    use hamgam_dealer_agent::simulate::{self, FaultRates, SimulationConfig};
    let now = hamgam_gateway::sync::now_ms();
    let mut network: Vec<DealerId> = args
        .network
        .iter()
        .map(|d| DealerId::new(d.trim()))
        .collect::<Result<_, _>>()
        .context("--network")?;
    if network.is_empty() {
        network.push(dealer.clone());
    }
    if !network.contains(&dealer) {
        bail!("--network must include this agent's dealer {dealer}");
    }
    let mut sim = SimulationConfig::small(args.seed, network, now);
    sim.days = args.days;
    sim.start = match &args.start {
        Some(text) => time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .with_context(|| format!("--start `{text}` is not a YYYY-MM-DD date"))?,
        None => simulate::date_of(now) - time::Duration::days(args.days as i64 + 1),
    };
    sim.fleet_per_dealer = args.fleet;
    sim.visits_per_day = args.visits_per_day;
    sim.faults = FaultRates::parse(&args.faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    let generated =
        simulate::simulate(&sim).map_err(|e| anyhow::anyhow!("cannot simulate: {e}"))?;
    let log = generated.log(&dealer);
    let StoreAccess::Direct(store) = access_store(config, dealer.clone())? else {
        bail!("`dealer-agent run` holds the store; stop it before importing a simulation");
    };
    let mut truth = match &args.labels {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    let total = log.len();
    let mut done = 0;
    for chunk in log.chunks(500) {
        let saved = store.capture_many(
            chunk
                .iter()
                .map(|r| (r.staff_id.clone(), r.payload.clone()))
                .collect(),
        )?;
        if let Some(out) = truth.as_mut() {
            use std::io::Write;
            for (record, saved) in chunk.iter().zip(&saved) {
                let line = serde_json::json!({
                    "dealer_id": dealer.as_str(),
                    "seq": saved.seq,
                    "record_id": saved.record_id,
                    "kind": RecordKind::of(&record.payload).name(),
                    "rules": record.faults,
                });
                writeln!(out, "{line}").context("cannot write the labels")?;
            }
        }
        done += chunk.len();
        eprintln!("simulated {done}/{total} records for {dealer}");
    }
    if let Some(mut out) = truth {
        use std::io::Write;
        out.flush().context("cannot write the labels")?;
    }
    if let Some(path) = &args.registry {
        std::fs::write(path, serde_json::to_string_pretty(&generated.dealers)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut faults = std::collections::BTreeMap::<&str, usize>::new();
    for record in log {
        for rule in &record.faults {
            *faults.entry(rule.as_str()).or_default() += 1;
        }
    }
    let faulty = log.iter().filter(|r| !r.faults.is_empty()).count();
    println!(
        "{dealer}: {total} records simulated ({} to {}), {faulty} with injected faults: {}",
        sim.start,
        sim.start + time::Duration::days(sim.days as i64 - 1),
        faults
            .iter()
            .map(|(r, n)| format!("{r}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// How this process reaches the dealer's store.
enum StoreAccess {
    /// Nobody else has it open: use it directly.
    Direct(AgentStore),
    /// `dealer-agent run` holds it: go through its local API.
    Running,
}

fn access_store(config: &AgentConfig, dealer: DealerId) -> Result<StoreAccess> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    // The lock may be held by an agent still starting (store open, socket not yet bound) or by
    // another short command; both let go or answer within moments, so look again for a while.
    let socket = local_api::socket_path(&config.data_dir);
    let deadline = std::time::Instant::now() + STORE_BUSY_PATIENCE;
    loop {
        match AgentStore::open(&config.data_dir, dealer.clone()) {
            Ok(store) => return Ok(StoreAccess::Direct(not_restoring(store)?)),
            Err(StoreError::Locked { .. }) => {
                if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                    return Ok(StoreAccess::Running);
                }
                if std::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "the store in {} is in use by another process, and no running agent \
                         answers at {}; if `dealer-agent run` is starting, try again in a moment",
                        config.data_dir.display(),
                        socket.display()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long a command waits for a store held by a starting agent or another command.
const STORE_BUSY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

fn ask_running_agent(config: &AgentConfig, request: LocalRequest) -> Result<LocalResponse> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(local_api::request(&config.data_dir, &request))?)
}

fn certificate_files(config: &AgentConfig) -> hamgam_dealer_agent::certificate::CertificateFiles {
    hamgam_dealer_agent::certificate::CertificateFiles {
        ca: config.tls.ca.clone(),
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
    }
}

fn endpoint(config: &AgentConfig, dealer: &DealerId) -> Result<HubEndpoint> {
    // A renewal a crash cut short is finished first: the key and certificate stay a pair.
    hamgam_dealer_agent::certificate::finish_install(&certificate_files(config))?;
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
    // An expired or not-yet-valid certificate is named here, not as "transport error".
    let (from, until) = PeerIdentity::validity_of(&leaf[0])?;
    let now = hamgam_gateway::sync::now_ms() / 1000;
    if now > until {
        bail!(
            "the dealer certificate {} expired on {} ({} days ago): the hub refuses it, and it is too late to renew it. Ask ops for a new enrolment token (`central dealers token {dealer}`), then `dealer-agent enroll --force --token ...` here; or put a new certificate from ops at {} with its key at {}. Then sync again",
            config.tls.cert.display(),
            format_ms(until * 1000),
            (now - until) / 86_400,
            config.tls.cert.display(),
            config.tls.key.display()
        );
    }
    if now < from {
        bail!(
            "the dealer certificate {} is valid only from {}, but this PC's clock says {}: check the PC's date and time (turn on automatic time), or ask ops why the certificate starts later",
            config.tls.cert.display(),
            format_ms(from * 1000),
            format_ms(now * 1000)
        );
    }
    Ok(HubEndpoint::new(
        config.hub.addr.clone(),
        config.hub.server_name.clone(),
        tls::client_config(&material)?,
    ))
}

/// Writes `text` to stdout; a reader that stopped early (`| head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Warn this many days before the dealer certificate expires.
const CERTIFICATE_WARNING_DAYS: i64 = 30;

/// The dealer certificate's expiry for `status`, with a warning within
/// [`CERTIFICATE_WARNING_DAYS`] of it (or why it cannot be read).
fn certificate_line(config: &AgentConfig) -> String {
    let read = std::fs::read(&config.tls.cert)
        .map_err(|e| e.to_string())
        .and_then(|pem| {
            tls::parse_certificates(&pem, "dealer certificate").map_err(|e| e.to_string())
        })
        .and_then(|leaf| PeerIdentity::validity_of(&leaf[0]).map_err(|e| e.to_string()));
    let (_, until) = match read {
        Ok(v) => v,
        Err(e) => return format!("cannot read {}: {e}", config.tls.cert.display()),
    };
    certificate_status(
        &config.dealer_id,
        until,
        hamgam_gateway::sync::now_ms() / 1000,
    )
}

/// What `status` says of a certificate valid until `until` at `now` (both Unix seconds).
fn certificate_status(dealer_id: &str, until: i64, now: i64) -> String {
    let days = (until - now).div_euclid(86_400);
    let date = format_ms(until * 1000);
    if until < now {
        format!("EXPIRED on {date}: the hub refuses it; ask ops for an enrolment token (`central dealers token {}`) and enrol again (`dealer-agent enroll --force`)", dealer_id)
    } else if days <= CERTIFICATE_WARNING_DAYS {
        format!("expires on {date}, in {days} days: `dealer-agent run` renews it on its own at 2/3 of its lifetime, so this means renewal is failing (see the last error; the hub needs [enrolment] issuing_cert); ask ops for an enrolment token (`central dealers token {}`) if it does not get better", dealer_id)
    } else {
        format!("valid until {date}")
    }
}

fn session_options(config: &AgentConfig) -> SessionOptions {
    SessionOptions {
        batch_records: config.sync.batch_records,
        batches_in_flight: config.sync.batches_in_flight,
        ..SessionOptions::default()
    }
}

/// Saves a record, in the store or through the running agent; returns its seq and id.
/// `document` is `payload` in proto3 JSON (what the local API carries).
fn save(
    config: &AgentConfig,
    access: StoreAccess,
    staff_id: &str,
    kind: RecordKind,
    payload: hamgam_proto::record::v1::record::Payload,
    document: serde_json::Value,
) -> Result<(u64, String, Vec<Warning>)> {
    match access {
        StoreAccess::Direct(store) => {
            let (saved, warnings) = capture::save_checked(&store, staff_id, payload)
                .map_err(|e| anyhow::anyhow!(e.staff_message()))?;
            Ok((saved.seq, saved.record_id, warnings))
        }
        StoreAccess::Running => match ask_running_agent(
            config,
            LocalRequest::Capture {
                staff_id: staff_id.to_owned(),
                kind: kind.name().to_owned(),
                payload: document,
            },
        )? {
            LocalResponse::Saved {
                seq,
                record_id,
                warnings,
            } => Ok((seq, record_id, warnings)),
            other => bail!("unexpected answer from the running agent: {other:?}"),
        },
    }
}

/// What the entry checks found in a record just saved: Persian first, as staff read it, then
/// English. The hub judges the record again when it syncs.
fn print_warnings(warnings: &[Warning]) {
    if warnings.is_empty() {
        return;
    }
    println!(
        "{} warning(s), saved all the same; fix them with `dealer-agent correct`:",
        warnings.len()
    );
    for w in warnings {
        println!("  {} {}: {}", w.rule_id, w.field, w.reason_fa());
        println!("      {}", w.reason_en());
    }
}

/// One of the dealer's records by seq or record id.
fn find_record(store: &AgentStore, reference: &str) -> Result<hamgam_proto::record::v1::Record> {
    Ok(local_api::find_record(store, reference)?)
}

/// The correction of `target` as proto3 JSON: its payload with `fields` applied, or a
/// retraction.
fn correction_json(
    target: &hamgam_proto::record::v1::Record,
    reason: &str,
    retract: bool,
    fields: &[String],
) -> Result<serde_json::Value> {
    let amended = if retract {
        None
    } else {
        let (_, mut amended) = capture::payload_json_of(target)?;
        merge_json(
            &mut amended,
            capture::json_from_fields(fields, hamgam_gateway::sync::now_ms())?,
        )?;
        Some(amended)
    };
    Ok(capture::correction_document(target, reason, amended)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `status`'s certificate line on fixed dates: month and year ends, a leap day, and the
    /// 30-day warning's edge, so what it says never depends on the day the test runs.
    #[test]
    fn the_certificate_line_counts_whole_days_to_expiry_on_any_date() {
        let day = 86_400;
        for date in [
            "2026-12-01T00:00:00Z",
            "2026-12-31T23:30:00Z",
            "2028-02-29T12:00:00Z",
            "2027-03-30T23:59:59Z",
        ] {
            let now =
                time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
                    .expect("date")
                    .unix_timestamp();
            let soon = certificate_status("D-1042", now + 12 * day + 3_600, now);
            assert!(soon.contains("in 12 days"), "{date}: {soon}");
            assert!(
                soon.contains(&format_ms((now + 12 * day + 3_600) * 1000)),
                "{soon}"
            );
            let edge = certificate_status("D-1042", now + 30 * day, now);
            assert!(edge.contains("in 30 days"), "{date}: {edge}");
            let fine = certificate_status("D-1042", now + 31 * day, now);
            assert!(fine.starts_with("valid until "), "{date}: {fine}");
            let gone = certificate_status("D-1042", now - 1, now);
            assert!(
                gone.starts_with("EXPIRED on ") && gone.contains("central dealers token D-1042"),
                "{date}: {gone}"
            );
        }
    }
}
