//! `central pki ...`: the deployment's root and issuing CA, the certificates the issuing CA
//! signs and its revocation list.
//!
//! A folder `central pki init` made holds `ca.crt` (the root: what everyone trusts, and whose
//! fingerprint branches pin when they enrol), `root.key` (to be moved offline), and
//! `issuing.crt` / `issuing.key` (the CA the hub signs with). A folder from before the root
//! existed holds `ca.crt` / `ca.key`, one CA that signs directly: still used as it is.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hamgam_gateway::pki::{CertificateAuthority, Subject, Validity};
use hamgam_gateway::{DealerId, PeerIdentity};

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the deployment's PKI: the root (<dir>/ca.crt, the trust everyone pins, and
    /// <dir>/root.key: move it offline) and under it the issuing CA the hub signs with
    /// (<dir>/issuing.crt, issuing.key). Keys 0600, a new folder 0700. Prints the root's
    /// fingerprint, which branches give to `dealer-agent enroll --ca-fingerprint`. Refuses to
    /// overwrite an existing CA.
    Init {
        /// Folder for the CA files.
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// SPIFFE trust domain of every identity this CA issues.
        #[arg(long, default_value = "hamgam")]
        trust_domain: String,
        /// Days the root certificate is valid (1 or more).
        #[arg(long, default_value_t = 3650, allow_negative_numbers = true)]
        days: i64,
        /// Days the issuing CA is valid (at most the root's).
        #[arg(long, default_value_t = 1825, allow_negative_numbers = true)]
        issuing_days: i64,
    },
    /// Print the SHA-256 fingerprint of the root (<dir>/ca.crt), to read out to a branch.
    Fingerprint {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
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
            issuing_days,
        } => init(&dir, &trust_domain, days, issuing_days),
        PkiCommand::Fingerprint { dir } => {
            println!("{}", root_fingerprint(&dir)?);
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

fn init(dir: &Path, trust_domain: &str, days: i64, issuing_days: i64) -> Result<()> {
    let files = ["ca.crt", "ca.key", "root.key", "issuing.crt", "issuing.key"];
    if files.iter().any(|f| dir.join(f).exists()) {
        bail!(
            "{} already holds a CA; refusing to overwrite it (every certificate it issued would stop working). Use another --dir.",
            dir.display()
        );
    }
    let root_validity = Validity::for_days(days)?;
    let mut issuing_validity = Validity::for_days(issuing_days)?;
    issuing_validity.not_after = issuing_validity.not_after.min(root_validity.not_after);
    let root = CertificateAuthority::generate(trust_domain, root_validity)?;
    let issuing = root.generate_issuing(issuing_validity)?;
    // The folder holds the CA keys: the owner's only.
    hamgam_gateway::files::create_private_dir(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    write_secret(&dir.join("root.key"), &root.key_pem())?;
    write_secret(&dir.join("issuing.key"), &issuing.key_pem())?;
    write_public(&dir.join("issuing.crt"), issuing.cert_pem())?;
    write_public(&dir.join("ca.crt"), root.cert_pem())?;
    println!(
        "PKI for trust domain `{trust_domain}` in {}:\n  ca.crt       the root: every hub and agent trusts it\n  root.key     the root's key: move it offline (it signs nothing day to day)\n  issuing.crt  the issuing CA the hub signs with (issuing.key beside it)\nroot fingerprint (SHA-256), for `dealer-agent enroll --ca-fingerprint`:\n  {}",
        dir.display(),
        hamgam_gateway::pki::fingerprint(&root.cert_der()?)
    );
    Ok(())
}

/// The SHA-256 fingerprint of the root in `dir`.
pub(crate) fn root_fingerprint(dir: &Path) -> Result<String> {
    let path = dir.join("ca.crt");
    let pem = std::fs::read(&path)
        .with_context(|| format!("cannot read the root certificate {}", path.display()))?;
    let der = hamgam_gateway::tls::parse_certificates(&pem, "root certificate")?;
    let root = der
        .last()
        .with_context(|| format!("{} holds no certificate", path.display()))?;
    Ok(hamgam_gateway::pki::fingerprint(root))
}

/// The CA in `dir` that signs: the issuing CA (`issuing.crt`, `issuing.key`), or in a folder
/// from before the root existed, the one CA (`ca.crt`, `ca.key`).
pub(crate) fn load_ca(dir: &std::path::Path, trust_domain: &str) -> Result<CertificateAuthority> {
    let (cert, key) = if dir.join("issuing.key").exists() {
        (dir.join("issuing.crt"), dir.join("issuing.key"))
    } else {
        (dir.join("ca.crt"), dir.join("ca.key"))
    };
    let ca_cert = std::fs::read_to_string(&cert).with_context(|| {
        format!(
            "cannot read the CA certificate {}; run `central pki init --dir {}` first",
            cert.display(),
            dir.display()
        )
    })?;
    // The key that signs every certificate of the network: its owner's only.
    hamgam_gateway::files::check_owner_only(&key)
        .with_context(|| format!("the CA key {}", key.display()))?;
    let ca_key = std::fs::read_to_string(&key)
        .with_context(|| format!("cannot read the CA key {}", key.display()))?;
    Ok(CertificateAuthority::from_pem(
        trust_domain,
        &ca_cert,
        &ca_key,
    )?)
}
