//! `central admin ...`: maintenance of a hub's data: rebuild and the reference check, the
//! access audit (a stopped hub's folder), backup (of a running hub, or a stopped one) and
//! restore (`cli::backup`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hamgam_central::config::HubConfig;
use hamgam_central::store::sled_store::STORE_FORMAT;
use hamgam_central::SledStore;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Take a consistent backup of the hub's record log, HQ's decision log and the access
    /// audit into a new folder, with the state digest at the backup's point. A running hub
    /// takes it while it serves (--hub, an ops certificate): it holds batches back only while
    /// it reads the point and the digest (bounded by --max-pause-ms), then streams the logs.
    /// A stopped hub's folder is backed up directly (--data-dir or --config).
    Backup(super::backup::BackupArgs),
    /// Restore a backup into a new data folder: every file checked first (nothing is written
    /// if one is missing, truncated or of a newer format), the logs replayed through the
    /// rules and the merge, the access audit carried over, and the restored state digest
    /// compared with the live hub's at the backup's point. Exit status 0 when equal, 1 when
    /// different.
    Restore(super::backup::RestoreArgs),
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
        /// whole-group judge) and compare it with the findings the incremental engine stored,
        /// and read every vehicle's facts again from its records and compare them with the
        /// ones the merge keeps; exit status 1 when any differ. On a store of an older format
        /// the check runs on the rebuilt store.
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

/// Runs one `central admin` command.
pub(crate) fn run(command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Backup(args) => super::backup::run_backup(args),
        AdminCommand::Restore(args) => super::backup::run_restore(args),
        AdminCommand::Rebuild {
            config,
            data_dir,
            registry,
            into,
            check,
        } => admin_rebuild(config, data_dir, registry, into, check),
        AdminCommand::Audit {
            since,
            who,
            customer,
            json,
            config,
            data_dir,
        } => admin_audit(config, data_dir, since, who, customer, json),
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
    // A store of an older format keeps what a newer engine derives differently (findings'
    // sentences, no vehicle facts): the reference then checks the store just rebuilt.
    let checked = if live.format() < STORE_FORMAT {
        if check {
            println!(
                "the live store is format {} (this version writes {STORE_FORMAT}): the reference check runs on the rebuilt store",
                live.format()
            );
        }
        &rebuilt
    } else {
        &live
    };
    let groups_differ = check && !reference_check(checked, &config.rules)?;
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

/// `--check`: the live hub's history groups against the reference judge, and its vehicles'
/// facts against their records; false when anything differs (each printed).
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
    for vin in check.vehicles_differing.iter().take(50) {
        println!("DIFFERENT vehicle facts of VIN {vin}: not the ones its records say");
    }
    let equal = check.differing.is_empty()
        && check.states_differing.is_empty()
        && check.vehicles_differing.is_empty();
    if equal {
        println!(
            "reference check: {} groups, {} members: the incremental findings and the vehicles' facts equal the reference",
            check.groups, check.members
        );
    } else {
        println!(
            "reference check: {} of {} members differ, {} group states differ, {} vehicles' facts differ",
            check.differing.len(),
            check.members,
            check.states_differing.len(),
            check.vehicles_differing.len()
        );
    }
    Ok(equal)
}

/// HQ's dealer registry the config names (empty, with a warning, when none): the same for
/// `serve` and `admin rebuild`, so a rebuild judges as the hub does.
pub(crate) fn registry_of(
    config: &HubConfig,
) -> Result<hamgam_central::rules::registry::DealerRegistry> {
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
