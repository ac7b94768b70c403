//! `dealer-agent enroll`: a branch gets its certificate without any key copied to it, and its
//! config written, ready to `run`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use hamgam_dealer_agent::certificate::{self, CertificateFiles};
use hamgam_gateway::DealerId;

/// `dealer-agent enroll`'s own flags (the hub's enrolment address is the global `--hub`).
#[derive(Args)]
pub(crate) struct EnrollArgs {
    /// The one-time token ops gave (`central dealers add` printed it).
    #[arg(long)]
    token: String,
    /// SHA-256 fingerprint of the deployment's root, as ops read it out (`central pki
    /// fingerprint`): the only CA this agent will trust.
    #[arg(long)]
    ca_fingerprint: String,
    /// Where the agent syncs afterwards (default: the --hub host on port 7443).
    #[arg(long)]
    sync_addr: Option<String>,
    /// Folder for ca.crt and the dealer's certificate and key (default: the config file's).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Folder of the local store written into the config (default: agent-data beside it).
    #[arg(long = "store-dir")]
    store_dir: Option<PathBuf>,
    /// Replace an existing config file, certificate or key.
    #[arg(long)]
    force: bool,
}

/// What `enroll` takes from the global flags.
pub(crate) struct Globals {
    pub config: Option<PathBuf>,
    pub hub: Option<String>,
    pub server_name: Option<String>,
    pub dealer: Option<String>,
}

pub(crate) fn run(globals: Globals, args: EnrollArgs) -> Result<()> {
    let hub = globals
        .hub
        .context("say where the hub's enrolment listener is: --hub HOST:PORT (ask ops)")?;
    let host = hub
        .rsplit_once(':')
        .map(|(host, _)| host.to_owned())
        .with_context(|| format!("--hub {hub}: give host:port, e.g. hub.example.ir:7444"))?;
    let server_name = globals.server_name.unwrap_or_else(|| host.clone());
    let dealer = globals.dealer.map(DealerId::new).transpose()?;
    let config_path = globals
        .config
        .unwrap_or_else(|| PathBuf::from("agent.toml"));
    let dir = args.dir.unwrap_or_else(|| {
        config_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    if config_path.exists() && !args.force {
        bail!(
            "{} already exists; refusing to overwrite it. Pass --force to enrol again and replace it",
            config_path.display()
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let issued = runtime
        .block_on(certificate::enroll(
            &hub,
            &server_name,
            &args.token,
            &args.ca_fingerprint,
            dealer.as_ref(),
            "hamgam",
        ))
        .with_context(|| format!("enrolment at {hub} failed"))?;
    let dealer_id = issued.answer.dealer_id.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = CertificateFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join(format!("dealer-{dealer_id}.crt")),
        key: dir.join(format!("dealer-{dealer_id}.key")),
    };
    if !args.force {
        if let Some(existing) = [&files.cert, &files.key].into_iter().find(|p| p.exists()) {
            bail!(
                "{} already exists; refusing to overwrite it (pass --force). The token is used now: ask ops for a new one",
                existing.display()
            );
        }
    }
    certificate::install(&files, &issued)?;
    let sync_addr = args.sync_addr.unwrap_or_else(|| format!("{host}:7443"));
    let store_dir = args.store_dir.unwrap_or_else(|| dir.join("agent-data"));
    let config = config_text(
        &dealer_id,
        &issued.answer.trust_domain,
        &store_dir,
        &sync_addr,
        &server_name,
        &files,
    );
    hamgam_gateway::files::write_private(&config_path, config.as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!(
        "enrolled as dealer {dealer_id}: certificate {} (valid until {}), key {} (made here, never sent), config {}.\nNext: dealer-agent --config {} run",
        files.cert.display(),
        hamgam_dealer_agent::certificate_time(issued.answer.not_after_ms),
        files.key.display(),
        config_path.display(),
        config_path.display()
    );
    Ok(())
}

/// The agent config `enroll` writes (TOML strings quoted by the toml crate).
fn config_text(
    dealer_id: &str,
    trust_domain: &str,
    store_dir: &Path,
    sync_addr: &str,
    server_name: &str,
    files: &CertificateFiles,
) -> String {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let p = |p: &Path| q(&p.display().to_string());
    format!(
        "# Written by `dealer-agent enroll`.\ndealer_id = {}\ndata_dir = {}\ntrust_domain = {}\n\n[hub]\naddr = {}\nserver_name = {}\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n",
        q(dealer_id),
        p(store_dir),
        q(trust_domain),
        q(sync_addr),
        q(server_name),
        p(&files.ca),
        p(&files.cert),
        p(&files.key),
    )
}
