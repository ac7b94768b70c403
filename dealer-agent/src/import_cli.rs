//! `dealer-agent import`: a DMS export into this branch's store
//! ([`hamgam_dealer_agent::import`]): straight into it while no agent runs, else through the
//! running agent's local capture API ([`hamgam_dealer_agent::local_grpc::Client`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use hamgam_dealer_agent::config::AgentConfig;
use hamgam_dealer_agent::import::{self, mapping::Mapping, ImportOptions};
use hamgam_dealer_agent::local_grpc;
use hamgam_dealer_agent::store::StoreError;
use hamgam_dealer_agent::AgentStore;
use hamgam_gateway::DealerId;

pub(crate) fn import(
    config: &AgentConfig,
    dealer: DealerId,
    file: &Path,
    mapping: &Path,
    dry_run: bool,
    resume: bool,
) -> Result<()> {
    let mapping = Mapping::load(mapping)?;
    let store = match AgentStore::open(&config.data_dir, dealer) {
        Err(StoreError::Locked { .. }) => {
            return through_running_agent(config, file, &mapping, dry_run, resume)
        }
        other => other?,
    };
    if store.is_restoring()? {
        bail!("a restore from the hub stopped before it finished in this store; run `dealer-agent restore --from-hub` again to finish it, then import");
    }
    let options = ImportOptions {
        dry_run,
        resume,
        now_ms: store.now_ms(),
    };
    run(&store, file, &mapping, &options)
}

/// The store is held by `dealer-agent run`: each chunk goes through its local capture API.
fn through_running_agent(
    config: &AgentConfig,
    file: &Path,
    mapping: &Mapping,
    dry_run: bool,
    resume: bool,
) -> Result<()> {
    // The port the agent got (it writes it at start), else the configured one.
    let written = std::fs::read_to_string(config.data_dir.join("local-api.addr")).ok();
    let listen = written
        .as_deref()
        .map(str::trim)
        .unwrap_or(config.local_api.grpc_listen.as_str());
    if listen.is_empty() {
        bail!("the store is held by a running `dealer-agent run` whose local capture API is off ([local_api] grpc_listen = \"\"): turn it on, or stop the agent (`systemctl stop hamgam-agent`), import, and start it again");
    }
    let addr = local_grpc::loopback_addr(listen)?;
    let client = local_grpc::Client::connect(addr, &config.local_api_token_file())
        .map_err(anyhow::Error::msg)
        .context("the store is held by a running `dealer-agent run`, so the import goes through its local capture API")?;
    eprintln!("the agent is running: importing through its local capture API at {addr}");
    let options = ImportOptions {
        dry_run,
        resume,
        now_ms: hamgam_gateway::Clock::System.now_ms(),
    };
    run(&client, file, mapping, &options)
}

fn run(
    target: &dyn import::ImportTarget,
    file: &Path,
    mapping: &Mapping,
    options: &ImportOptions,
) -> Result<()> {
    let dry_run = options.dry_run;
    let mut out = std::io::stdout().lock();
    let report = import::run(target, file, mapping, options, &mut out)
        .with_context(|| format!("the import of {} stopped; what was committed stays, and running it again (with --resume) goes on from there", file.display()))?;
    if !dry_run && report.rejected > 0 {
        eprintln!(
            "{} row(s) refused: fix them in the reject file and import it again",
            report.rejected
        );
    }
    Ok(())
}
