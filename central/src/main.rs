//! `central`: the Hamgam hub's command line.
//!
//! - `central pki init` / `central pki issue ...`: the deployment's CA and its certificates;
//! - `central serve`: the hub (sync for dealers, HQ API), until SIGINT/SIGTERM;
//! - `central rules`: the rule catalogue in force;
//! - `central health`: a running hub's gRPC health over mutual TLS (for probes);
//! - `central admin rebuild` / `central admin audit`: a stopped hub's projections rebuilt, its
//!   access audit read; `central admin backup` / `restore`: a consistent backup of a running
//!   (or stopped) hub, and its restore checked by the state digest;
//! - `central query ...`: what HQ sees, for people (tables) and scripts (`--json`).

mod cli;
mod hq_cli;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cli::admin::AdminCommand;
use cli::dealers::DealersCommand;
use cli::health::HealthArgs;
use cli::pki::PkiCommand;
use cli::query::{HqConnection, QueryCommand};
use cli::serve::ServeArgs;

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
    /// Maintenance of the hub's data: rebuild, access audit, backup and restore.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Ask a running hub's gRPC health (grpc.health.v1) over mutual TLS: exit 0 when SERVING.
    /// For probes (Kubernetes exec probes, container HEALTHCHECK): give it an ops certificate.
    Health(HealthArgs),
    /// Ask the hub what HQ sees (needs an HQ certificate).
    Query {
        #[command(flatten)]
        conn: HqConnection,
        #[command(subcommand)]
        command: QueryCommand,
    },
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
        Command::Pki { command } => cli::pki::run(command),
        Command::Dealers {
            registry,
            config,
            command,
        } => cli::dealers::run(registry, config, command),
        Command::Rules { config, markdown } => cli::rules::run(config.as_deref(), markdown),
        Command::Serve(args) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::serve::run(args))
        }
        Command::Admin { command } => cli::admin::run(command),
        Command::Health(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(cli::health::run(args))
        }
        Command::Query { conn, command } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::query::run(conn, command))
        }
    }
}
