//! The agent's own certificate: enrolment with a one-time token, renewal before expiry, and
//! the files swapped so that a crash never leaves a key that does not match its certificate.
//!
//! - [`enroll`]: a fresh key pair made here, a signing request sent to the hub's enrolment
//!   listener over TLS that trusts only the root with the fingerprint ops read out; the hub
//!   answers with the certificate, its chain and the root. The key never leaves the branch.
//! - [`Renewal`]: at 2/3 of the certificate's lifetime ([`renewal_due_at`]) the sync loop asks
//!   the hub for a new certificate over its existing mutual-TLS session (`Renew`), installs
//!   it ([`install`]) and reconnects with it: no restart, no record lost (records wait in the
//!   store as during any reconnect).
//! - [`install`] writes `key.new` and `cert.new` whole, then renames key, then certificate;
//!   [`finish_install`] completes an install a crash interrupted, before the files are read.
//!
//! Certificates are dated by the real time (rustls checks them against it), so renewal is too.

use std::path::{Path, PathBuf};

use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::pki::signing_request;
use hamgam_gateway::tls::{self, TlsFiles};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::enrol::v1::enrolment_client::EnrolmentClient;
use hamgam_proto::enrol::v1::{CertificateIssued, EnrollRequest, RenewRequest};
use tonic::transport::Channel;

/// Why enrolment or renewal did not give a usable certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(
        "`{0}` is not a SHA-256 fingerprint (64 hex digits, as `central pki fingerprint` prints)"
    )]
    BadFingerprint(String),
    #[error("cannot reach the hub's enrolment listener: {0}")]
    Connect(#[source] hamgam_gateway::GatewayError),
    #[error("the hub refused: {}", .0.message())]
    Refused(tonic::Status),
    #[error("the hub's answer is not usable: {0}")]
    BadAnswer(String),
    #[error("{0}")]
    Pki(#[from] hamgam_gateway::GatewayError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the agent's TLS files are.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertificateFiles {
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// A certificate and the key made for it here.
#[derive(Debug, Clone)]
pub struct Issued {
    pub answer: CertificateIssued,
    pub key_pem: String,
}

/// Enrols at the hub's enrolment listener `addr` (whose certificate names `server_name`).
pub async fn enroll(
    addr: &str,
    server_name: &str,
    token: &str,
    typed_fingerprint: &str,
    dealer: Option<&DealerId>,
    trust_domain: &str,
) -> Result<Issued, CertificateError> {
    let fingerprint = hamgam_gateway::pki::parse_fingerprint(typed_fingerprint)
        .ok_or_else(|| CertificateError::BadFingerprint(typed_fingerprint.to_owned()))?;
    let identity = dealer.map(|d| PeerIdentity::Dealer(d.clone()));
    let (csr_pem, key_pem) = signing_request(identity.as_ref(), trust_domain)?;
    let tls = hamgam_gateway::enrolment_tls::pinned_client_config(&fingerprint)?;
    let channel = HubEndpoint::new(addr, server_name, tls)
        .connect()
        .await
        .map_err(CertificateError::Connect)?;
    let answer = EnrolmentClient::new(channel)
        .enroll(EnrollRequest {
            token: token.to_owned(),
            csr_pem,
        })
        .await
        .map_err(CertificateError::Refused)?
        .into_inner();
    // The root the hub hands over must be the one pinned: it becomes this agent's trust.
    let root = tls::parse_certificates(answer.root_pem.as_bytes(), "root")?;
    if root.last().map(|r| hamgam_gateway::pki::fingerprint(r)) != Some(fingerprint) {
        return Err(CertificateError::BadAnswer(
            "the root it sent is not the one whose fingerprint you gave".into(),
        ));
    }
    check_answer(&answer, &key_pem, dealer)?;
    Ok(Issued { answer, key_pem })
}

/// The certificate is for our key, the dealer we asked for, and chains to the root sent.
fn check_answer(
    answer: &CertificateIssued,
    key_pem: &str,
    dealer: Option<&DealerId>,
) -> Result<(), CertificateError> {
    tls::verify_chain(&answer.root_pem, &answer.certificate_chain_pem)
        .map_err(|e| CertificateError::BadAnswer(e.to_string()))?;
    let leaf = tls::parse_certificates(answer.certificate_chain_pem.as_bytes(), "certificate")?;
    let identity = PeerIdentity::from_certificate(&leaf[0], &answer.trust_domain)?;
    match (&identity, dealer) {
        (PeerIdentity::Dealer(got), Some(asked)) if got != asked => {
            return Err(CertificateError::BadAnswer(format!(
                "the certificate is for {got}, not {asked}"
            )))
        }
        (PeerIdentity::Dealer(_), _) => {}
        (other, _) => {
            return Err(CertificateError::BadAnswer(format!(
                "the certificate is for {other}, not a dealer"
            )))
        }
    }
    // rustls checks that key and certificate belong together.
    tls::client_config(&tls::TlsMaterial {
        ca_pem: answer.root_pem.clone().into_bytes(),
        cert_pem: answer.certificate_chain_pem.clone().into_bytes(),
        key_pem: key_pem.as_bytes().to_vec(),
    })
    .map_err(|e| CertificateError::BadAnswer(e.to_string()))?;
    Ok(())
}

/// When a certificate valid from `not_before` to `not_after` (Unix seconds) is due for
/// renewal: at 2/3 of its lifetime.
pub fn renewal_due_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before).max(0) * 2 / 3
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Installs a certificate and its key (and the root, when `files.ca` is given a new one):
/// each written whole under `.new` and synced, then the key renamed, then the certificate.
pub fn install(files: &CertificateFiles, issued: &Issued) -> Result<(), CertificateError> {
    let write = |path: &Path, text: &str, private: bool| {
        let result = if private {
            hamgam_gateway::files::write_private(path, text.as_bytes())
        } else {
            std::fs::write(path, text)
        };
        result
            .and_then(|_| std::fs::File::open(path)?.sync_all())
            .map_err(|source| CertificateError::Write {
                path: path.to_owned(),
                source,
            })
    };
    write(&sibling(&files.key, ".new"), &issued.key_pem, true)?;
    write(
        &sibling(&files.cert, ".new"),
        &issued.answer.certificate_chain_pem,
        false,
    )?;
    if std::fs::read_to_string(&files.ca).ok().as_deref() != Some(&issued.answer.root_pem) {
        write(&files.ca, &issued.answer.root_pem, false)?;
    }
    finish_install(files)
}

/// Completes an install a crash interrupted: a `.new` key or certificate left behind is the
/// newer one, and is renamed into place (key first). Nothing to do otherwise.
pub fn finish_install(files: &CertificateFiles) -> Result<(), CertificateError> {
    for path in [&files.key, &files.cert] {
        let new = sibling(path, ".new");
        if new.exists() {
            std::fs::rename(&new, path).map_err(|source| CertificateError::Write {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// The sync loop's renewal: which files, and for whom.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub files: CertificateFiles,
    pub trust_domain: String,
}

impl Renewal {
    /// Unix seconds at which the certificate in force is due for renewal.
    pub fn due_at(&self) -> Result<i64, CertificateError> {
        let pem = std::fs::read(&self.files.cert).map_err(|source| CertificateError::Write {
            path: self.files.cert.clone(),
            source,
        })?;
        let leaf = tls::parse_certificates(&pem, "dealer certificate")?;
        let (from, until) = PeerIdentity::validity_of(&leaf[0])?;
        Ok(renewal_due_at(from, until))
    }

    /// Asks for a new certificate over `channel` (the agent's mutual-TLS session), installs
    /// it, and returns the endpoint that connects with it.
    pub async fn renew(
        &self,
        channel: Channel,
        endpoint: &HubEndpoint,
    ) -> Result<(HubEndpoint, CertificateIssued), CertificateError> {
        let current = tls::parse_certificates(
            &std::fs::read(&self.files.cert).map_err(|source| CertificateError::Write {
                path: self.files.cert.clone(),
                source,
            })?,
            "dealer certificate",
        )?;
        let PeerIdentity::Dealer(dealer) =
            PeerIdentity::from_certificate(&current[0], &self.trust_domain)?
        else {
            return Err(CertificateError::BadAnswer(
                "not a dealer certificate".into(),
            ));
        };
        let identity = PeerIdentity::Dealer(dealer.clone());
        let (csr_pem, key_pem) = signing_request(Some(&identity), &self.trust_domain)?;
        let answer = EnrolmentClient::new(channel)
            .renew(RenewRequest { csr_pem })
            .await
            .map_err(CertificateError::Refused)?
            .into_inner();
        check_answer(&answer, &key_pem, Some(&dealer))?;
        let issued = Issued { answer, key_pem };
        install(&self.files, &issued)?;
        let material = self.files.tls_files().load()?;
        let renewed = HubEndpoint {
            tls: tls::client_config(&material)?,
            ..endpoint.clone()
        };
        Ok((renewed, issued.answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_lifetime() {
        let day = 86_400;
        // 90 days from 2026-12-01: due on day 60.
        let from = 1_795_996_800;
        assert_eq!(renewal_due_at(from, from + 90 * day), from + 60 * day);
        // 397 days: due after 264 days and 16 hours.
        assert_eq!(
            renewal_due_at(from, from + 397 * day),
            from + 264 * day + 16 * 3_600
        );
        // A certificate whose end is before its start is due at once.
        assert_eq!(renewal_due_at(from, from - 1), from);
    }

    #[test]
    fn an_install_cut_short_is_finished_with_the_new_pair() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles {
            ca: dir.path().join("ca.crt"),
            cert: dir.path().join("agent.crt"),
            key: dir.path().join("agent.key"),
        };
        std::fs::write(&files.cert, "old cert").unwrap();
        std::fs::write(&files.key, "old key").unwrap();
        // A crash after the key's rename, before the certificate's.
        std::fs::write(&files.key, "new key").unwrap();
        std::fs::write(sibling(&files.cert, ".new"), "new cert").unwrap();
        finish_install(&files).unwrap();
        assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), "new cert");
        assert_eq!(std::fs::read_to_string(&files.key).unwrap(), "new key");
        assert!(!sibling(&files.cert, ".new").exists());
        // Nothing left to finish: nothing changes.
        finish_install(&files).unwrap();
        assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), "new cert");
    }
}
