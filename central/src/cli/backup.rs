//! `central admin backup` and `central admin restore`: a backup of a running hub through its
//! ops API (or of a stopped hub's folder), written atomically into a new folder; and a
//! restore of one into a new data folder, checked by the state digest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hamgam_central::backup::fetch::{fetch, Fetching};
use hamgam_central::backup::read::{restore, BackupFolder};
use hamgam_central::backup::write::{capture, write_backup, DigestAt, DirSink};
use hamgam_central::backup::{DigestSummary, Manifest};
use hamgam_central::config::HubConfig;
use hamgam_central::SledStore;
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::tls::{self, TlsFiles};
use hamgam_proto::ops::v1 as ops;

#[derive(Args)]
pub(crate) struct BackupArgs {
    /// A new or empty folder for the backup (anything else is refused).
    #[arg(long)]
    to: PathBuf,
    /// The running hub, host:port: it takes the backup while it serves. Needs an ops
    /// certificate (`central pki issue ops NAME`): --cert.
    #[arg(long, env = "HAMGAM_HUB", conflicts_with_all = ["data_dir", "config"])]
    hub: Option<String>,
    /// Name the hub's certificate carries.
    #[arg(long, env = "HAMGAM_HUB_NAME", default_value = "localhost")]
    server_name: String,
    /// The deployment's CA certificate (PEM).
    #[arg(long, env = "HAMGAM_CA", default_value = "pki/ca.crt")]
    ca: PathBuf,
    /// The ops certificate (PEM), e.g. pki/ops-NAME.crt.
    #[arg(long, env = "HAMGAM_CERT")]
    cert: Option<PathBuf>,
    /// Its private key (PEM); default: the .key beside the certificate.
    #[arg(long, env = "HAMGAM_KEY")]
    key: Option<PathBuf>,
    /// The longest the hub may hold batches back to compute the state digest at the backup's
    /// point (default 10000). Past it the backup is made without a live digest.
    #[arg(long)]
    max_pause_ms: Option<u32>,
    /// Take no live digest: the hub holds batches back only to read each dealer's seq; the
    /// restore can then not be verified against the live state.
    #[arg(long)]
    without_digest: bool,
    /// A stopped hub's data folder, backed up directly (instead of --hub).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A stopped hub's TOML config: its data folder (instead of --hub).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The backup folder (`central admin backup --to`).
    #[arg(long)]
    from: PathBuf,
    /// A new or empty data folder for the restored hub.
    #[arg(long)]
    into: PathBuf,
    /// The hub's TOML config: `[rules]`, the registry and the cache size, as the hub judged
    /// with (the digest compares equal only with the same rules and registry).
    #[arg(long)]
    config: Option<PathBuf>,
    /// HQ's dealer registry (overrides the config's).
    #[arg(long)]
    registry: Option<PathBuf>,
}

/// Progress on stderr every 2 s: done of total, and the rate.
struct Progress {
    what: &'static str,
    started: Instant,
    last: Instant,
    /// The last line (done = total) was printed.
    ended: bool,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        Progress {
            what,
            started: Instant::now(),
            last: Instant::now(),
            ended: false,
        }
    }

    fn tick(&mut self, done: u64, total: u64) {
        let end = done >= total;
        if (!end && self.last.elapsed() < Duration::from_secs(2)) || (end && self.ended) {
            return;
        }
        self.ended = end;
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "{}: {done} of {total} records ({:.0} records/s, {secs:.0} s)",
            self.what,
            done as f64 / secs.max(0.001)
        );
    }
}

/// `central admin backup`.
pub(crate) fn run_backup(args: BackupArgs) -> Result<()> {
    let to = args.to.clone();
    if std::fs::read_dir(&to).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty: give a new or empty folder for the backup (a backup is never written over another)",
            to.display()
        );
    }
    let manifest = match &args.hub {
        Some(hub) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(backup_through_hub(hub.clone(), &args))
        }
        None => backup_stopped_hub(&args),
    }
    .with_context(|| {
        format!(
            "the backup into {} did not finish: the folder holds no manifest and is not a backup; remove it before trying again",
            to.display()
        )
    })?;
    print_backup(&manifest, &to);
    Ok(())
}

async fn backup_through_hub(hub: String, args: &BackupArgs) -> Result<Manifest> {
    let cert = args.cert.clone().context(
        "--cert: the ops certificate to back up a running hub with (`central pki issue ops NAME` writes ops-NAME.crt)",
    )?;
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| cert.with_extension("key"));
    let material = TlsFiles {
        ca: args.ca.clone(),
        cert,
        key,
    }
    .load()?;
    let endpoint = HubEndpoint::new(
        hub.clone(),
        args.server_name.clone(),
        tls::client_config(&material)?,
    );
    let channel = endpoint.connect().await?;
    let mut progress = Progress::new("backup");
    let request = ops::BackupRequest {
        max_pause_ms: args.max_pause_ms.unwrap_or(0),
        without_digest: args.without_digest,
    };
    let manifest = fetch(channel, request, &args.to, |event| match event {
        Fetching::Started {
            records,
            pause_ms,
            live_digest,
        } => eprintln!(
            "backup: point taken, {records} records; batches held back {pause_ms} ms, {}",
            if live_digest {
                "state digest taken"
            } else {
                "no live digest"
            }
        ),
        Fetching::Records { done, total } => progress.tick(done, total),
    })
    .await
    .with_context(|| format!("backup from the hub at {hub}"))?;
    Ok(manifest)
}

fn backup_stopped_hub(args: &BackupArgs) -> Result<Manifest> {
    let config = hub_config(args.config.as_deref(), args.data_dir.clone())?;
    if args.data_dir.is_none() && args.config.is_none() {
        bail!("say which hub to back up: --hub HOST:PORT (a running hub, with an ops certificate) or --data-dir / --config (a stopped one)");
    }
    let dir = &config.data_dir;
    if !dir.join("db").exists() && !dir.join("conf").exists() {
        bail!(
            "{} holds no hub data: give the hub's data folder",
            dir.display()
        );
    }
    let store = SledStore::open(dir, config.storage.cache_mb * 1024 * 1024).with_context(|| {
        format!(
            "cannot open {} (if the hub is running, back it up through it: --hub HOST:PORT --cert pki/ops-NAME.crt)",
            dir.display()
        )
    })?;
    let mut sink = DirSink::create(&args.to)?;
    // Nothing else writes a stopped hub's store: no pause to bound.
    let captured = capture(
        &store,
        if args.without_digest {
            DigestAt::Skip
        } else {
            DigestAt::Always
        },
    )?;
    let total = captured.point.dealers.values().sum();
    let mut progress = Progress::new("backup");
    write_backup(
        &store,
        captured,
        hamgam_gateway::sync::now_ms(),
        &mut sink,
        &mut |done| progress.tick(done, total),
    )?;
    Ok(sink.finish()?.0)
}

fn print_backup(m: &Manifest, to: &Path) {
    println!(
        "backup written to {}: {} records of {} dealers, {} HQ decisions, {} access-audit entries",
        to.display(),
        m.records,
        m.point.dealers.len(),
        m.decisions,
        m.access_entries
    );
    println!("batches were held back {} ms", m.pause_ms);
    match &m.digest {
        Some(d) => println!("state digest at the backup's point: {}", d.total),
        None => println!("no live state digest: {}", m.digest_note),
    }
    for f in &m.files {
        println!(
            "  {:<16} {:>12} bytes  sha256 {}",
            f.name, f.bytes, f.sha256
        );
    }
}

fn hub_config(config: Option<&Path>, data_dir: Option<PathBuf>) -> Result<HubConfig> {
    let mut config = match config {
        Some(path) => HubConfig::from_file(path)?,
        None => HubConfig::default(),
    };
    if let Some(v) = data_dir {
        config.data_dir = v;
    }
    Ok(config)
}

/// `central admin restore`.
pub(crate) fn run_restore(args: RestoreArgs) -> Result<()> {
    // Everything is checked before anything is written.
    let folder = BackupFolder::open(&args.from)
        .with_context(|| format!("{} cannot be restored", args.from.display()))?;
    let mut config = hub_config(args.config.as_deref(), None)?;
    if let Some(v) = args.registry {
        config.registry = Some(v);
    }
    let registry = super::admin::registry_of(&config)?;
    let into = &args.into;
    if std::fs::read_dir(into).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty: give a new or empty folder for the restored hub",
            into.display()
        );
    }
    let store = SledStore::open(into, config.storage.cache_mb * 1024 * 1024)?;
    let rules = hamgam_central::judge::Rulebook {
        config: &config.rules,
        registry: &registry,
    };
    let mut progress = Progress::new("restore");
    let restored = restore(&folder, &store, &rules, |done, total| {
        progress.tick(done, total)
    });
    drop(store);
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(into);
            return Err(e).with_context(|| {
                format!(
                    "the restore from {} failed; nothing was kept in {}",
                    args.from.display(),
                    into.display()
                )
            });
        }
    };
    let m = folder.manifest();
    println!(
        "restored {} records, {} HQ decisions and {} access-audit entries into {}",
        restored.replayed.records,
        restored.replayed.decisions,
        restored.access_entries,
        into.display()
    );
    println!("restored: {}", restored.digest);
    let Some(expected) = &m.digest else {
        println!(
            "not verified against the live hub: the backup carries no live digest ({}); its files' checksums checked out",
            m.digest_note
        );
        return Ok(());
    };
    let differing = expected.differing(&DigestSummary::from(&restored.digest));
    if differing.is_empty() {
        println!(
            "verified: the restored state digest equals the live hub's at the backup's point ({})",
            expected.total
        );
        return Ok(());
    }
    println!(
        "DIFFERENT in: {} (the live hub's at the backup's point was {})",
        differing.join(", "),
        expected.total
    );
    println!(
        "the restored hub in {} is not the backed-up state: was the restore given the hub's config and registry (--config, --registry)? the folder is kept for inspection",
        into.display()
    );
    std::process::exit(1);
}
