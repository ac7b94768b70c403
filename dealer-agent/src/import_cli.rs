//! `dealer-agent import`: a DMS export into this branch's stopped store
//! ([`hamgam_dealer_agent::import`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use hamgam_dealer_agent::config::AgentConfig;
use hamgam_dealer_agent::import::{self, mapping::Mapping, ImportOptions};
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
        Err(StoreError::Locked { path }) => bail!(
            "the store at {path} is held by a running `dealer-agent run`: stop it (`systemctl stop hamgam-agent`), import, then start it again (an import through the running agent is not there yet)"
        ),
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
    let mut out = std::io::stdout().lock();
    let report = import::run(&store, file, &mapping, &options, &mut out)
        .with_context(|| format!("the import of {} stopped; what was committed stays, and running it again (with --resume) goes on from there", file.display()))?;
    if !dry_run && report.rejected > 0 {
        eprintln!(
            "{} row(s) refused: fix them in the reject file and import it again",
            report.rejected
        );
    }
    Ok(())
}
