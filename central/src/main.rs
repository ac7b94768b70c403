//! `central`: the Hamgam hub's command line.
//!
//! - `central pki init` / `central pki issue ...`: the deployment's CA and its certificates;
//! - `central serve`: the hub (sync for dealers, HQ API), until SIGINT/SIGTERM;
//! - `central rules`: the rule catalogue in force;
//! - `central admin rebuild` / `central admin audit`: a stopped hub's projections rebuilt, its
//!   access audit read;
//! - `central query ...`: what HQ sees, for people (tables) and scripts (`--json`).

mod hq_cli;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hamgam_central::config::HubConfig;
use hamgam_central::server::{self, ServeOptions};
use hamgam_central::{Hub, SledStore};
use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::metrics::SyncMetrics;
use hamgam_gateway::pki::{CertificateAuthority, Subject, Validity};
use hamgam_gateway::server::EdgeConfig;
use hamgam_gateway::sync::SessionLimits;
use hamgam_gateway::tls::{self, TlsFiles};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;

#[derive(Parser)]
#[command(
    name = "central",
    version,
    about = "Hamgam hub: receives dealer records over mutual-TLS gRPC, stores them, serves HQ"
)]
struct Cli {
    /// Log lines as text (default) or as JSON objects, one per line (for a log shipper).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HAMGAM_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Make the deployment's CA and issue certificates for the hub, dealers, HQ and ops.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Run the hub until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Print the rule catalogue in force: ids, severities, what each reads, thresholds.
    Rules {
        /// The hub's TOML config (its `[rules]` table); defaults without it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print Markdown (as docs/rules.md) instead of a table.
        #[arg(long)]
        markdown: bool,
    },
    /// The dealer lifecycle in HQ's registry: list, add, suspend, resume, revoke. Each change
    /// is written whole (atomically) and logged in `<registry>.log`; a running hub picks it up
    /// within `registry_reload_secs` (10 s by default), without a restart.
    Dealers {
        /// The registry file (default: the config's `registry`).
        #[arg(long, global = true)]
        registry: Option<PathBuf>,
        /// The hub's TOML config, to find the registry.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: DealersCommand,
    },
    /// Offline maintenance of a stopped hub's data folder.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Ask the hub what HQ sees (needs an HQ certificate).
    Query {
        #[command(flatten)]
        conn: HqConnection,
        #[command(subcommand)]
        command: QueryCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Recompute every projection (verdicts, groups, tallies, customers, vehicles, conflicts,
    /// review queue) from the stored record log and HQ's decision log into a new folder, and
    /// compare its state digest with the live one. Stop the hub first. Exit status 0 when the
    /// digests are equal, 1 when they differ (after a rule or merge change: switch the hub to
    /// the rebuilt folder to adopt the new state).
    Rebuild {
        /// The hub's TOML config: its data folder, `[rules]` and registry.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The live data folder (overrides the config's).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HQ's dealer registry (overrides the config's).
        #[arg(long)]
        registry: Option<PathBuf>,
        /// An empty or new folder for the rebuilt hub; without it a temporary folder is used
        /// and removed afterwards (a check only).
        #[arg(long)]
        into: Option<PathBuf>,
        /// Also judge every history group of the live hub again with the reference (the
        /// whole-group judge) and compare it with the findings the incremental engine stored;
        /// exit status 1 when any differ.
        #[arg(long)]
        check: bool,
    },
    /// Print the access audit: who read whose data through the HQ API (customer ids, never
    /// the searched value) and who took which decision, by the hub's clock. Stop the hub
    /// first: the audit is in its store, which one process opens at a time.
    Audit {
        /// Entries from this date (2025-03-01, midnight UTC) or RFC 3339 time on.
        #[arg(long)]
        since: String,
        /// Only this certificate: `hq/reader/crm`, or its name `crm`.
        #[arg(long)]
        who: Option<String>,
        /// Only entries naming this customer id.
        #[arg(long)]
        customer: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// The hub's TOML config: its data folder.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data folder (overrides the config's).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a new CA: <dir>/ca.crt and <dir>/ca.key (the key 0600, a new folder 0700).
    /// Refuses to overwrite an existing CA.
    Init {
        /// Folder for the CA files.
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// SPIFFE trust domain of every identity this CA issues.
        #[arg(long, default_value = "hamgam")]
        trust_domain: String,
        /// Days the CA certificate is valid (1 or more).
        #[arg(long, default_value_t = 3650, allow_negative_numbers = true)]
        days: i64,
    },
    /// Issue a certificate signed by the CA in --dir (the key written 0600). Refuses to
    /// overwrite an existing certificate or key unless --force is given.
    Issue {
        #[command(subcommand)]
        subject: IssueSubject,
        /// Folder holding ca.crt and ca.key; the new files are written here too.
        #[arg(long, default_value = "pki", global = true)]
        dir: PathBuf,
        /// SPIFFE trust domain (must be the CA's).
        #[arg(long, default_value = "hamgam", global = true)]
        trust_domain: String,
        /// Days the certificate is valid (1 or more).
        #[arg(
            long,
            default_value_t = 397,
            global = true,
            allow_negative_numbers = true
        )]
        days: i64,
        /// Replace an existing certificate and key of the same name. Revoke the old
        /// certificate first (`central pki revoke`) if it should stop working: its file is
        /// overwritten.
        #[arg(long, global = true)]
        force: bool,
    },
    /// Revoke certificates: adds them to <dir>/ca.crl (made if missing), signed by the CA and
    /// numbered one above the previous list. A hub started with `--crl <dir>/ca.crl` refuses
    /// them at the next handshake, without a restart.
    Revoke {
        /// The certificates to revoke (PEM files, e.g. pki/dealer-D-1042.crt).
        #[arg(required = true)]
        certs: Vec<PathBuf>,
        /// Folder holding ca.crt, ca.key and ca.crl.
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// SPIFFE trust domain (must be the CA's).
        #[arg(long, default_value = "hamgam")]
        trust_domain: String,
        /// Days until the list's next update is due.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
}

#[derive(Subcommand)]
enum DealersCommand {
    /// Every dealer in the registry, with its region and whether it is suspended.
    List {
        /// One JSON object per dealer.
        #[arg(long)]
        json: bool,
    },
    /// Register a dealership (then issue its certificate: `central pki issue dealer ID`).
    Add {
        dealer_id: String,
        #[arg(long)]
        name: String,
        /// HQ's sales region (lifecycle reports group by it).
        #[arg(long, default_value = "")]
        region: String,
        #[arg(long, default_value = "")]
        city: String,
        /// The dealership company's national ID (S03 reads it).
        #[arg(long, default_value = "")]
        company_id: String,
    },
    /// Refuse the dealer's sync sessions (its records stay at the hub) until `resume`.
    Suspend {
        dealer_id: String,
        /// Why, as the dealer's agent is told.
        #[arg(long)]
        reason: String,
    },
    /// Let a suspended dealer sync again.
    Resume { dealer_id: String },
    /// Suspend the dealer and revoke its certificate (`<pki>/dealer-ID.crt`) in the CRL the
    /// hub re-reads: cut off at its next handshake, without a hub restart.
    Revoke {
        dealer_id: String,
        #[arg(long)]
        reason: String,
        /// Folder holding ca.crt, ca.key, ca.crl and the dealer's certificate.
        #[arg(long, default_value = "pki")]
        pki: PathBuf,
        #[arg(long, default_value = "hamgam")]
        trust_domain: String,
        /// Days until the list's next update is due.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
}

#[derive(Subcommand)]
enum IssueSubject {
    /// The hub's server certificate: hub.crt / hub.key.
    Hub {
        /// DNS names agents and HQ dial (repeatable).
        #[arg(long = "dns")]
        dns_names: Vec<String>,
        /// IP addresses agents and HQ dial (repeatable).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
    },
    /// A dealership agent's client certificate: dealer-<id>.crt / .key.
    Dealer {
        /// Dealer id, e.g. D-1042.
        dealer_id: String,
    },
    /// An HQ system's or analyst's client certificate: hq-<name>.crt / .key. A reader
    /// queries, exports and follows the change stream; a reviewer may also decide (Decide,
    /// ReviewFlag).
    Hq {
        name: String,
        /// What the certificate may do: `reader` (the default: least privilege) or
        /// `reviewer`.
        #[arg(long, value_enum, default_value_t = HqRole::Reader)]
        role: HqRole,
    },
    /// An ops person's client certificate: ops-<name>.crt / .key.
    Ops { name: String },
}

/// `central pki issue hq --role`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum HqRole {
    Reader,
    Reviewer,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file; flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; see --addr-file).
    #[arg(long)]
    listen: Option<String>,
    /// Folder of the hub's sled store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    trust_domain: Option<String>,
    /// CA certificate (PEM) client certificates must chain to.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The hub's certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The hub's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The CA's certificate revocation list (PEM, from `central pki revoke`); the hub re-reads
    /// it when it changes (every `crl_reload_secs`, default 30) without a restart.
    #[arg(long)]
    crl: Option<PathBuf>,
    /// Write the bound address here once listening (for scripts using port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (default: the config's `[metrics] listen`;
    /// off when neither is set). See docs/metrics.md.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// HQ's dealer registry (JSON: company IDs, staff, suspensions), for S03, C05, Q01 and
    /// suspended dealers.
    #[arg(long)]
    registry: Option<PathBuf>,
}

#[derive(Args)]
struct HqConnection {
    /// Hub address, host:port.
    #[arg(
        long,
        env = "HAMGAM_HUB",
        default_value = "127.0.0.1:7443",
        global = true
    )]
    hub: String,
    /// Name the hub's certificate carries.
    #[arg(
        long,
        env = "HAMGAM_HUB_NAME",
        default_value = "localhost",
        global = true
    )]
    server_name: String,
    /// The deployment's CA certificate (PEM).
    #[arg(long, env = "HAMGAM_CA", default_value = "pki/ca.crt", global = true)]
    ca: PathBuf,
    /// An HQ client certificate (PEM); default: the one hq-NAME.crt (as `central pki issue hq
    /// NAME` writes it) in the CA certificate's folder.
    #[arg(long, env = "HAMGAM_CERT", global = true)]
    cert: Option<PathBuf>,
    /// The HQ certificate's private key (PEM); default: the .key beside the certificate.
    #[arg(long, env = "HAMGAM_KEY", global = true)]
    key: Option<PathBuf>,
    /// Print JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum QueryCommand {
    /// Every dealer the hub has heard from: sync state, quarantine, reliability score.
    Dealers,
    /// Verdicts and findings by rule for every dealer.
    ///
    /// Reads every record: meant for small hubs and demos; HQ's indexed flag queries come with
    /// the HQ API.
    Findings,
    /// A dealer's records with their verdicts, in seq order.
    Records {
        dealer_id: String,
        /// At most this many records (all pages are fetched up to it).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    #[command(flatten)]
    Hq(hq_cli::HqQuery),
}

/// sled allocates heavily from several threads; glibc malloc showed as ~30 % of the hub's CPU
/// in the ingest profile (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    // A rebuild replays every record: its per-record logs would drown the progress lines.
    let default_level = match cli.command {
        Command::Admin { .. } => "warn",
        _ => "info",
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    match cli.command {
        Command::Pki { command } => pki(command),
        Command::Dealers {
            registry,
            config,
            command,
        } => dealers(registry, config, command),
        Command::Rules { config, markdown } => rules(config.as_deref(), markdown),
        Command::Serve(args) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(args))
        }
        Command::Admin {
            command:
                AdminCommand::Rebuild {
                    config,
                    data_dir,
                    registry,
                    into,
                    check,
                },
        } => admin_rebuild(config, data_dir, registry, into, check),
        Command::Admin {
            command:
                AdminCommand::Audit {
                    since,
                    who,
                    customer,
                    json,
                    config,
                    data_dir,
                },
        } => admin_audit(config, data_dir, since, who, customer, json),
        Command::Query { conn, command } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(query(conn, command))
        }
    }
}

fn admin_audit(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    since: String,
    who: Option<String>,
    customer: Option<String>,
    json: bool,
) -> Result<()> {
    use hamgam_central::admin_audit;
    let mut config = match &config {
        Some(path) => HubConfig::from_file(path)?,
        None => HubConfig::default(),
    };
    if let Some(v) = data_dir {
        config.data_dir = v;
    }
    let filter = admin_audit::AuditFilter {
        since_ms: admin_audit::parse_since(&since)?,
        who,
        customer,
    };
    let store = admin_audit::open(&config.data_dir, config.storage.cache_mb * 1024 * 1024)?;
    let entries = admin_audit::entries(&store, &filter)?;
    admin_audit::print(&entries, json, &mut std::io::stdout().lock())?;
    Ok(())
}

fn admin_rebuild(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    registry: Option<PathBuf>,
    into: Option<PathBuf>,
    check: bool,
) -> Result<()> {
    let mut config = match &config {
        Some(path) => HubConfig::from_file(path)?,
        None => HubConfig::default(),
    };
    if let Some(v) = data_dir {
        config.data_dir = v;
    }
    if let Some(v) = registry {
        config.registry = Some(v);
    }
    if !config.data_dir.join("db").exists() && !config.data_dir.join("conf").exists() {
        bail!(
            "{} holds no hub data: give the live data folder with --data-dir or --config",
            config.data_dir.display()
        );
    }
    let registry = registry_of(&config)?;
    let cache = config.storage.cache_mb * 1024 * 1024;
    let live = SledStore::open_to_rebuild_from(&config.data_dir, cache).with_context(|| {
        format!(
            "cannot open {} (is the hub still running? stop it first)",
            config.data_dir.display()
        )
    })?;
    let scratch;
    let target = match &into {
        Some(dir) => {
            let used = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if used {
                bail!(
                    "{} is not empty: give a new or empty folder for the rebuilt hub",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
            scratch.path().to_owned()
        }
    };
    let rebuilt = SledStore::open(&target, cache)?;
    let rules = hamgam_central::judge::Rulebook {
        config: &config.rules,
        registry: &registry,
    };
    let started = std::time::Instant::now();
    let mut last_report = std::time::Instant::now();
    let report = hamgam_central::rebuild::rebuild(&live, &rebuilt, &rules, |done, total| {
        if done == total || last_report.elapsed() >= std::time::Duration::from_secs(2) {
            last_report = std::time::Instant::now();
            eprintln!(
                "rebuild: {done} of {total} records replayed ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    })?;
    println!(
        "replayed {} records and {} HQ decisions in {:.1} s",
        report.records,
        report.decisions,
        started.elapsed().as_secs_f64()
    );
    println!("live:    {}", report.live);
    println!("rebuilt: {}", report.rebuilt);
    let groups_differ = check && !reference_check(&live, &config.rules)?;
    let differing = report.differing();
    if differing.is_empty() && !groups_differ {
        println!(
            "equal: the live state is exactly what the record log and the rules in force give"
        );
        if let Some(dir) = &into {
            println!("rebuilt hub kept in {}", dir.display());
        }
        Ok(())
    } else {
        if !differing.is_empty() {
            println!("DIFFERENT in: {}", differing.join(", "));
        }
        match &into {
            Some(dir) => println!(
                "the rebuilt hub is in {}: stop the hub and point its data_dir there to adopt it",
                dir.display()
            ),
            None => println!("run again with --into <folder> to keep the rebuilt hub"),
        }
        std::process::exit(1);
    }
}

/// `--check`: the live hub's history groups against the reference judge; false when any
/// member's stored findings differ (each printed).
fn reference_check(live: &SledStore, rules: &hamgam_central::rules::RuleConfig) -> Result<bool> {
    let started = std::time::Instant::now();
    let check = hamgam_central::rebuild::check_groups(live, rules, |groups| {
        eprintln!(
            "check: {groups} groups judged by the reference ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    })?;
    for d in check.differing.iter().take(50) {
        println!(
            "DIFFERENT group {:?}, record {} seq {}: stored {:?}, reference {:?}",
            d.group, d.at.0, d.at.1, d.stored, d.reference
        );
    }
    for g in check.states_differing.iter().take(50) {
        println!("DIFFERENT state of group {g:?}: not the one its members give");
    }
    let equal = check.differing.is_empty() && check.states_differing.is_empty();
    if equal {
        println!(
            "reference check: {} groups, {} members: the incremental findings equal the reference",
            check.groups, check.members
        );
    } else {
        println!(
            "reference check: {} of {} members differ, {} group states differ",
            check.differing.len(),
            check.members,
            check.states_differing.len()
        );
    }
    Ok(equal)
}

/// HQ's dealer registry the config names (empty, with a warning, when none): the same for
/// `serve` and `admin rebuild`, so a rebuild judges as the hub does.
fn registry_of(config: &HubConfig) -> Result<hamgam_central::rules::registry::DealerRegistry> {
    Ok(match &config.registry {
        Some(path) => {
            let registry = hamgam_central::rules::registry::DealerRegistry::load(path)?;
            tracing::info!(dealers = registry.len(), path = %path.display(), "dealer registry loaded");
            registry
        }
        None => {
            tracing::warn!("no dealer registry configured: S03, and the staff parts of C05 and Q01, are not checked");
            Default::default()
        }
    })
}

fn rules(config: Option<&Path>, markdown: bool) -> Result<()> {
    use hamgam_central::rules::{catalogue_markdown, CATALOGUE};
    let config = match config {
        Some(path) => HubConfig::from_file(path)?.rules,
        None => Default::default(),
    };
    if markdown {
        print!("{}", catalogue_markdown(&config));
        return Ok(());
    }
    let thresholds = config.thresholds();
    println!("{:<5} {:<28} {:<11} check", "id", "severity", "reads");
    for rule in CATALOGUE {
        println!(
            "{:<5} {:<28} {:<11} {}",
            rule.id,
            rule.severity_text(),
            format!("{:?}", rule.scope),
            rule.check
        );
        for (_, key, value) in thresholds.iter().filter(|(id, ..)| *id == rule.id) {
            println!("{:<46} {key} = {value}", "");
        }
    }
    println!("reliability score:");
    for (_, key, value) in thresholds.iter().filter(|(id, ..)| *id == "score") {
        println!("  {key} = {value}");
    }
    Ok(())
}

fn pki(command: PkiCommand) -> Result<()> {
    match command {
        PkiCommand::Init {
            dir,
            trust_domain,
            days,
        } => {
            let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
            if cert.exists() || key.exists() {
                bail!(
                    "{} already holds a CA; refusing to overwrite it (every certificate it issued would stop working). Use another --dir.",
                    dir.display()
                );
            }
            let ca = CertificateAuthority::generate(&trust_domain, Validity::for_days(days)?)?;
            // The folder holds the CA key: the owner's only.
            hamgam_gateway::files::create_private_dir(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_public(&cert, ca.cert_pem())?;
            write_secret(&key, &ca.key_pem())?;
            println!(
                "CA for trust domain `{trust_domain}` written to {} and {}",
                cert.display(),
                key.display()
            );
            Ok(())
        }
        PkiCommand::Revoke {
            certs,
            dir,
            trust_domain,
            days,
        } => revoke(&certs, &dir, &trust_domain, days),
        PkiCommand::Issue {
            subject,
            dir,
            trust_domain,
            days,
            force,
        } => {
            let validity = Validity::for_days(days)?;
            let ca = load_ca(&dir, &trust_domain)?;
            let (subject, stem) = match subject {
                IssueSubject::Hub { dns_names, ips } => {
                    (Subject::Hub { dns_names, ips }, "hub".to_owned())
                }
                IssueSubject::Dealer { dealer_id } => {
                    let id = DealerId::new(dealer_id)?;
                    let stem = format!("dealer-{id}");
                    (Subject::Client(PeerIdentity::Dealer(id)), stem)
                }
                IssueSubject::Hq { name, role } => (
                    Subject::Client(match role {
                        HqRole::Reader => PeerIdentity::Hq(name.clone()),
                        HqRole::Reviewer => PeerIdentity::HqReviewer(name.clone()),
                    }),
                    format!("hq-{name}"),
                ),
                IssueSubject::Ops { name } => (
                    Subject::Client(PeerIdentity::Ops(name.clone())),
                    format!("ops-{name}"),
                ),
            };
            let (cert, key) = (
                dir.join(format!("{stem}.crt")),
                dir.join(format!("{stem}.key")),
            );
            if !force {
                if let Some(existing) = [&key, &cert].into_iter().find(|p| p.exists()) {
                    bail!(
                        "{} already exists; refusing to overwrite it (whoever uses that key or certificate would stop connecting). \
                         Pass --force to issue a new pair anyway, after `central pki revoke {}` if the old certificate should stop working.",
                        existing.display(),
                        cert.display()
                    );
                }
            }
            let issued = ca.issue(&subject, validity)?;
            write_public(&cert, &issued.cert_pem)?;
            write_secret(&key, &issued.key_pem)?;
            match &subject {
                Subject::Client(identity) => println!(
                    "issued {} and {} for {identity}",
                    cert.display(),
                    key.display()
                ),
                Subject::Hub { .. } => println!("issued {} and {}", cert.display(), key.display()),
            }
            Ok(())
        }
    }
}

/// `central dealers`.
fn dealers(
    registry: Option<PathBuf>,
    config: Option<PathBuf>,
    command: DealersCommand,
) -> Result<()> {
    use hamgam_central::dealers::{self, DealerChange};
    let path = match (registry, config) {
        (Some(path), _) => path,
        (None, Some(config)) => HubConfig::from_file(&config)?
            .registry
            .with_context(|| format!("{} names no `registry` file", config.display()))?,
        (None, None) => bail!("say which registry file: --registry FILE, or --config hub.toml"),
    };
    let now = hamgam_gateway::sync::now_ms();
    let change = match command {
        DealersCommand::List { json } => {
            for d in dealers::load(&path)? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"dealer_id": d.dealer_id, "name": d.name, "region": d.region, "city": d.city, "suspended": d.suspended, "staff": d.staff.len()})
                    );
                } else {
                    let state = if d.suspended.is_empty() {
                        "active".to_owned()
                    } else {
                        format!("SUSPENDED: {}", d.suspended)
                    };
                    println!(
                        "{:<10} {:<30} {:<16} {state}",
                        d.dealer_id, d.name, d.region
                    );
                }
            }
            return Ok(());
        }
        DealersCommand::Add {
            dealer_id,
            name,
            region,
            city,
            company_id,
        } => DealerChange::Add(hamgam_proto::registry::DealerProfile {
            dealer_id,
            name,
            region,
            city,
            company_national_id: company_id,
            ..Default::default()
        }),
        DealersCommand::Suspend { dealer_id, reason } => {
            DealerChange::Suspend { dealer_id, reason }
        }
        DealersCommand::Resume { dealer_id } => DealerChange::Resume { dealer_id },
        DealersCommand::Revoke {
            dealer_id,
            reason,
            pki,
            trust_domain,
            days,
        } => {
            let cert = pki.join(format!("dealer-{dealer_id}.crt"));
            dealers::apply(
                &path,
                DealerChange::Suspend {
                    dealer_id: dealer_id.clone(),
                    reason: format!("revoked: {reason}"),
                },
                now,
            )?;
            revoke(&[cert], &pki, &trust_domain, days)?;
            println!("{dealer_id}: suspended in {} and its certificate revoked; a running hub cuts it off at its next handshake", path.display());
            return Ok(());
        }
    };
    let changed = dealers::apply(&path, change, now)?;
    println!(
        "{}: {} in {} (logged in {})",
        changed.dealer_id,
        if changed.suspended.is_empty() {
            "active"
        } else {
            "suspended"
        },
        path.display(),
        dealers::log_path(&path).display()
    );
    Ok(())
}

/// Adds `certs` to the CA's revocation list in `dir` (written whole, then renamed).
fn revoke(certs: &[PathBuf], dir: &Path, trust_domain: &str, days: i64) -> Result<()> {
    let ca = load_ca(dir, trust_domain)?;
    let crl_path = dir.join("ca.crl");
    let (mut revoked, number) = match std::fs::read_to_string(&crl_path) {
        Ok(pem) => hamgam_gateway::pki::read_revocation_list(&pem)
            .with_context(|| format!("{}", crl_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0),
        Err(e) => return Err(e).context(format!("cannot read {}", crl_path.display())),
    };
    for cert in certs {
        let pem = std::fs::read_to_string(cert)
            .with_context(|| format!("cannot read {}", cert.display()))?;
        let serial =
            hamgam_gateway::pki::serial_of(&pem).with_context(|| format!("{}", cert.display()))?;
        if revoked.iter().any(|r| r.serial == serial) {
            eprintln!("{} was already revoked", cert.display());
            continue;
        }
        revoked.push(hamgam_gateway::pki::Revoked {
            serial,
            at: time::OffsetDateTime::now_utc(),
        });
        eprintln!("revoked {}", cert.display());
    }
    let pem = ca.revocation_list(&revoked, number + 1, days)?;
    // Written whole, then renamed, so a hub re-reading it never sees half a list.
    let tmp = crl_path.with_extension("crl.tmp");
    std::fs::write(&tmp, pem).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &crl_path)
        .with_context(|| format!("cannot write {}", crl_path.display()))?;
    println!(
        "{}: {} revoked certificates (list number {})",
        crl_path.display(),
        revoked.len(),
        number + 1
    );
    Ok(())
}

fn write_public(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A private key: 0600, an existing file too (a mode given at open only applies to a new one).
fn write_secret(path: &Path, text: &str) -> Result<()> {
    hamgam_gateway::files::write_private(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => HubConfig::from_file(path)?,
        None => HubConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.trust_domain {
        config.trust_domain = v;
    }
    if let Some(v) = args.ca {
        config.tls.ca = v;
    }
    if let Some(v) = args.registry {
        config.registry = Some(v);
    }
    if let Some(v) = args.cert {
        config.tls.cert = v;
    }
    if let Some(v) = args.key {
        config.tls.key = v;
    }
    if let Some(v) = args.crl {
        config.tls.crl = Some(v);
    }
    let material = TlsFiles {
        ca: config.tls.ca.clone(),
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
    }
    .load()?;
    let ((tls, server_cert), crl) = match &config.tls.crl {
        None => (
            tls::server_config_reloadable(&material, tls::client_verifier(&material.ca_pem)?)?,
            None,
        ),
        Some(path) => {
            use hamgam_gateway::revocation::{CrlReload, CrlWatch, RevocableVerifier};
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the revocation list {}", path.display()))?;
            let verifier = RevocableVerifier::new(&material.ca_pem, Some(&pem))
                .with_context(|| format!("revocation list {}", path.display()))?;
            let tls = tls::server_config_reloadable(&material, verifier.clone())?;
            let watch = CrlWatch {
                path: path.clone(),
                every: Duration::from_secs(config.tls.crl_reload_secs.max(1)),
            };
            (tls, Some(CrlReload { verifier, watch }))
        }
    };
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let store = SledStore::open(&config.data_dir, config.storage.cache_mb * 1024 * 1024)?;
    let registry = registry_of(&config)?;
    config.rules.check().map_err(anyhow::Error::msg)?;
    config.lifecycle.check().map_err(anyhow::Error::msg)?;
    let hub = Hub::with_rules(std::sync::Arc::new(store), config.rules.clone(), registry)
        .with_judging_slice(std::time::Duration::from_millis(
            config.limits.judging_slice_ms,
        ));
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    if let Some(path) = &args.addr_file {
        // Written whole under a temporary name, then renamed, so a script never reads half.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bound.to_string())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    tracing::info!(%bound, data_dir = %config.data_dir.display(), "central listening");
    let options = ServeOptions {
        edge: EdgeConfig::new(tls, config.trust_domain.clone()),
        limits: SessionLimits {
            max_batch_records: config.limits.max_batch_records,
            max_batches_in_flight: config.limits.max_batches_in_flight,
            hello_timeout: Duration::from_secs(config.limits.hello_timeout_secs),
            idle_timeout: Duration::from_secs(config.limits.idle_timeout_secs),
            dealer_records_per_sec: config.limits.dealer_records_per_sec,
        },
        dealer_limits: config.limits.dealer_limits(),
        max_streams_per_connection: config.limits.max_streams_per_connection,
        max_message_bytes: config.limits.max_message_bytes,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        lifecycle: config.lifecycle.clone(),
        crl,
        sync_metrics: SyncMetrics::default(),
        registry_watch: config
            .registry
            .clone()
            .map(|path| hamgam_central::server::RegistryWatch {
                path,
                every: Duration::from_secs(config.registry_reload_secs.max(1)),
            }),
    };
    let hub = std::sync::Arc::new(hub);
    let audit = SecurityAudit::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics = match args.metrics_listen.or(config.metrics.listen.clone()) {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?;
            let render = hamgam_central::metrics::render(
                hub.clone(),
                options.sync_metrics.clone(),
                audit.clone(),
                config.data_dir.clone(),
            );
            Some(tokio::spawn(hamgam_gateway::metrics::serve(
                listener,
                render,
                stop.clone().cancelled_owned(),
            )))
        }
        None => None,
    };
    // The hub's own certificate: reloaded on SIGHUP and when its files change.
    tokio::spawn(hamgam_gateway::server_cert::watch_server_cert(
        server_cert,
        hamgam_gateway::server_cert::ServerCertWatch {
            cert: config.tls.cert.clone(),
            key: config.tls.key.clone(),
            every: Duration::from_secs(config.tls.crl_reload_secs.max(1)),
        },
        stop.clone(),
    ));
    let served = server::run(listener, hub, options, audit, async move {
        hamgam_gateway::shutdown::signal().await;
    })
    .await
    .context("the hub's server failed");
    stop.cancel();
    if let Some(metrics) = metrics {
        if let Ok(Err(e)) = metrics.await {
            tracing::warn!("the metrics listener failed: {e}");
        }
    }
    served?;
    Ok(())
}

/// The CA in `dir` (`ca.crt`, `ca.key`).
fn load_ca(dir: &std::path::Path, trust_domain: &str) -> Result<CertificateAuthority> {
    let ca_cert = std::fs::read_to_string(dir.join("ca.crt")).with_context(|| {
        format!(
            "cannot read the CA certificate {}; run `central pki init --dir {}` first",
            dir.join("ca.crt").display(),
            dir.display()
        )
    })?;
    // The key that signs every certificate of the network: its owner's only.
    hamgam_gateway::files::check_owner_only(&dir.join("ca.key"))
        .with_context(|| format!("the CA key {}", dir.join("ca.key").display()))?;
    let ca_key = std::fs::read_to_string(dir.join("ca.key"))
        .with_context(|| format!("cannot read the CA key {}", dir.join("ca.key").display()))?;
    Ok(CertificateAuthority::from_pem(
        trust_domain,
        &ca_cert,
        &ca_key,
    )?)
}

async fn query(conn: HqConnection, command: QueryCommand) -> Result<()> {
    let (cert, key) = hq_cli::client_files(&conn.ca, conn.cert, conn.key)?;
    let material = TlsFiles {
        ca: conn.ca,
        cert,
        key,
    }
    .load()?;
    let endpoint = HubEndpoint::new(conn.hub, conn.server_name, tls::client_config(&material)?);
    let channel = endpoint.connect().await?;
    let mut client = HqServiceClient::new(channel.clone());
    match command {
        QueryCommand::Hq(q) => return hq_cli::run(channel, conn.json, q).await,
        QueryCommand::Dealers => {
            let dealers = list_dealers(&mut client).await?;
            if conn.json {
                for d in &dealers {
                    println!("{}", serde_json::to_string(d)?);
                }
                return Ok(());
            }
            println!(
                "{:<10} {:>10} {:>8} {:>11} {:>12}  {:<24}  {:>11}  top rules",
                "dealer",
                "stored seq",
                "records",
                "quarantined",
                "clock offset",
                "last seen (UTC)",
                "reliability"
            );
            for d in &dealers {
                let (score, top) = match &d.reliability {
                    Some(r) => {
                        let trend = r
                            .previous_score
                            .map(|p| format!(" ({:+.1})", r.score - p))
                            .unwrap_or_default();
                        let top: Vec<String> = r
                            .top_rules
                            .iter()
                            .map(|t| format!("{} {}", t.rule_id, t.records))
                            .collect();
                        (format!("{:.1}{trend}", r.score), top.join(", "))
                    }
                    None => ("-".into(), String::new()),
                };
                println!(
                    "{:<10} {:>10} {:>8} {:>11} {:>10}ms  {:<24}  {:>11}  {}",
                    d.dealer_id,
                    d.stored_seq,
                    d.record_count,
                    d.rejected_count,
                    d.clock_offset_ms,
                    format_ms(d.last_seen_ms),
                    score,
                    top
                );
            }
            println!("reliability: 0-100 over the last 90 days (change against 30 days ago); `central rules` explains it");
            let total: u64 = dealers.iter().map(|d| d.record_count).sum();
            println!("{} dealers, {total} records", dealers.len());
        }
        QueryCommand::Findings => {
            let dealers = list_dealers(&mut client).await?;
            let mut by_rule: std::collections::BTreeMap<
                String,
                std::collections::BTreeMap<String, u64>,
            > = Default::default();
            let mut outcomes: std::collections::BTreeMap<String, [u64; 3]> = Default::default();
            for dealer in &dealers {
                let mut page_token = String::new();
                loop {
                    let page = client
                        .list_dealer_records(hq::ListDealerRecordsRequest {
                            dealer_id: dealer.dealer_id.clone(),
                            page_size: 1000,
                            page_token: page_token.clone(),
                            quarantined_only: false,
                        })
                        .await
                        .context("ListDealerRecords failed")?
                        .into_inner();
                    for stored in &page.records {
                        let Some(verdict) = &stored.verdict else {
                            continue;
                        };
                        let slot = match verdict.outcome() {
                            hamgam_proto::record::v1::Outcome::Rejected => 2,
                            hamgam_proto::record::v1::Outcome::AcceptedWithFlags => 1,
                            _ => 0,
                        };
                        outcomes.entry(dealer.dealer_id.clone()).or_default()[slot] += 1;
                        for finding in &verdict.findings {
                            *by_rule
                                .entry(finding.rule_id.clone())
                                .or_default()
                                .entry(dealer.dealer_id.clone())
                                .or_default() += 1;
                        }
                    }
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
            }
            if conn.json {
                println!(
                    "{}",
                    serde_json::json!({ "outcomes": outcomes, "findings_by_rule": by_rule })
                );
                return Ok(());
            }
            println!(
                "{:<10} {:>9} {:>9} {:>9}",
                "dealer", "accepted", "flagged", "rejected"
            );
            for (dealer, [ok, flagged, rejected]) in &outcomes {
                println!("{dealer:<10} {ok:>9} {flagged:>9} {rejected:>9}");
            }
            println!();
            let names: Vec<&String> = outcomes.keys().collect();
            print!("{:<6}", "rule");
            for name in &names {
                print!(" {name:>9}");
            }
            println!();
            for (rule, counts) in &by_rule {
                print!("{rule:<6}");
                for name in &names {
                    print!(" {:>9}", counts.get(*name).copied().unwrap_or(0));
                }
                println!();
            }
            if by_rule.is_empty() {
                println!("(no findings)");
            }
        }
        QueryCommand::Records { dealer_id, limit } => {
            if limit == 0 {
                return Ok(());
            }
            let mut page_token = String::new();
            let mut shown = 0usize;
            if !conn.json {
                println!(
                    "{:>6}  {:<36}  {:<20}  {:<20}  findings",
                    "seq", "record id", "kind", "verdict"
                );
            }
            loop {
                let page = client
                    .list_dealer_records(hq::ListDealerRecordsRequest {
                        dealer_id: dealer_id.clone(),
                        page_size: (limit - shown).min(1000) as u32,
                        page_token: page_token.clone(),
                        quarantined_only: false,
                    })
                    .await
                    .context("ListDealerRecords failed")?
                    .into_inner();
                for stored in &page.records {
                    if conn.json {
                        println!("{}", serde_json::to_string(stored)?);
                        continue;
                    }
                    let record = stored.record.clone().unwrap_or_default();
                    let verdict = stored.verdict.clone().unwrap_or_default();
                    let kind = record
                        .payload
                        .as_ref()
                        .map(|p| hamgam_proto::RecordKind::of(p).name())
                        .unwrap_or("-");
                    let findings: Vec<_> = verdict
                        .findings
                        .iter()
                        .map(|f| format!("{} {}", f.rule_id, f.field))
                        .collect();
                    println!(
                        "{:>6}  {:<36}  {:<20}  {:<20}  {}",
                        record.seq,
                        record.record_id,
                        kind,
                        verdict
                            .outcome()
                            .as_str_name()
                            .trim_start_matches("OUTCOME_")
                            .to_lowercase(),
                        findings.join(", ")
                    );
                }
                shown += page.records.len();
                if page.next_page_token.is_empty() || shown >= limit {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
    }
    Ok(())
}

async fn list_dealers(
    client: &mut HqServiceClient<tonic::transport::Channel>,
) -> Result<Vec<hq::DealerSummary>> {
    Ok(client
        .list_dealers(hq::ListDealersRequest {})
        .await
        .context("ListDealers failed")?
        .into_inner()
        .dealers)
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
