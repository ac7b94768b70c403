//! `central pki ...`: the deployment's CA, the certificates it issues and its revocation list.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hamgam_gateway::pki::{CertificateAuthority, Subject, Validity};
use hamgam_gateway::{DealerId, PeerIdentity};

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
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
pub(crate) enum IssueSubject {
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
pub(crate) enum HqRole {
    Reader,
    Reviewer,
}

/// Runs one `central pki` command.
pub(crate) fn run(command: PkiCommand) -> Result<()> {
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

/// Adds `certs` to the CA's revocation list in `dir` (written whole, then renamed).
pub(crate) fn revoke(certs: &[PathBuf], dir: &Path, trust_domain: &str, days: i64) -> Result<()> {
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

/// The CA in `dir` (`ca.crt`, `ca.key`).
pub(crate) fn load_ca(dir: &std::path::Path, trust_domain: &str) -> Result<CertificateAuthority> {
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
