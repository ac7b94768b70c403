//! Certificate revocation at the hub: the CA's certificate revocation list (CRL, PEM), checked
//! at every handshake, and reloaded while the hub runs. [`RevocableVerifier`] is the hub's
//! client-certificate verifier; [`watch_crl`] re-reads the CRL file when it changes. A CRL that
//! does not parse or is not signed by the CA is refused and the previous list stays in force
//! (a broken file must not let revoked certificates back in, nor lock everyone out).
//!
//! A revocation applies to new connections: an agent already connected keeps its session until
//! it reconnects (sessions are short-lived; restart the hub to cut them at once).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;

use crate::GatewayError;

/// The hub's client-certificate verifier: chains to the CA and is not on the CRL in force.
#[derive(Debug)]
pub struct RevocableVerifier {
    ca_pem: Vec<u8>,
    root_hints: Vec<DistinguishedName>,
    inner: RwLock<Arc<dyn ClientCertVerifier>>,
    /// How many times a CRL was loaded (0: none yet).
    loads: tokio::sync::watch::Sender<u64>,
}

impl RevocableVerifier {
    /// A verifier for the CA in `ca_pem`, with the CRL in `crl_pem` if given.
    pub fn new(ca_pem: &[u8], crl_pem: Option<&[u8]>) -> Result<Arc<Self>, GatewayError> {
        let inner = build(ca_pem, crl_pem)?;
        Ok(Arc::new(RevocableVerifier {
            ca_pem: ca_pem.to_vec(),
            root_hints: inner.root_hint_subjects().to_vec(),
            inner: RwLock::new(inner),
            loads: tokio::sync::watch::Sender::new(u64::from(crl_pem.is_some())),
        }))
    }

    /// Puts `crl_pem` in force for new handshakes; returns how many certificates it revokes.
    pub fn reload(&self, crl_pem: &[u8]) -> Result<usize, GatewayError> {
        let revoked = revoked_count(crl_pem)?;
        let inner = build(&self.ca_pem, Some(crl_pem))?;
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = inner;
        self.loads.send_modify(|n| *n += 1);
        Ok(revoked)
    }

    /// Counts CRL loads: resolves its `changed()` after each successful reload.
    pub fn loads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.loads.subscribe()
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn crls(crl_pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, GatewayError> {
    let crls = CertificateRevocationListDer::pem_slice_iter(crl_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GatewayError::Tls(format!("the revocation list does not parse: {e}")))?;
    if crls.is_empty() {
        return Err(GatewayError::Tls(
            "the revocation list file holds no X509 CRL block".into(),
        ));
    }
    Ok(crls)
}

fn revoked_count(crl_pem: &[u8]) -> Result<usize, GatewayError> {
    let mut count = 0;
    for der in crls(crl_pem)? {
        use x509_parser::prelude::FromDer;
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
            .map_err(|e| GatewayError::Tls(format!("the revocation list does not parse: {e}")))?;
        count += crl.iter_revoked_certificates().count();
    }
    Ok(count)
}

fn build(
    ca_pem: &[u8],
    crl_pem: Option<&[u8]>,
) -> Result<Arc<dyn ClientCertVerifier>, GatewayError> {
    let mut builder = WebPkiClientVerifier::builder_with_provider(
        crate::tls::roots(ca_pem)?,
        crate::tls::provider(),
    );
    if let Some(pem) = crl_pem {
        // The list is the issuing CA's, about the certificates it signed. The issuing CA's own
        // certificate is the root's to revoke, and the root stays offline: replacing an issuing
        // CA is a new one from `central pki issuing`, and the old one's certificates expire.
        builder = builder
            .with_crls(crls(pem)?)
            .only_check_end_entity_revocation();
    }
    builder
        .build()
        .map_err(|e| GatewayError::Tls(format!("client verifier: {e}")))
}

impl ClientCertVerifier for RevocableVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// Where the CRL is and how often to look at it.
#[derive(Debug, Clone)]
pub struct CrlWatch {
    pub path: PathBuf,
    pub every: Duration,
}

/// A verifier and the file it reloads from: what the hub's server runs [`watch_crl`] with.
#[derive(Debug, Clone)]
pub struct CrlReload {
    pub verifier: Arc<RevocableVerifier>,
    pub watch: CrlWatch,
}

/// Re-reads the CRL file whenever its modification time or size changes, until `stop`.
pub async fn watch_crl(verifier: Arc<RevocableVerifier>, watch: CrlWatch, stop: CancellationToken) {
    let stamp = |path: &PathBuf| -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let mut seen = stamp(&watch.path);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(watch.every) => {}
        }
        let now = stamp(&watch.path);
        if now == seen {
            continue;
        }
        seen = now;
        match std::fs::read(&watch.path)
            .map_err(|e| GatewayError::Tls(format!("cannot read it: {e}")))
            .and_then(|pem| verifier.reload(&pem))
        {
            Ok(revoked) => tracing::info!(
                path = %watch.path.display(),
                revoked,
                "certificate revocation list reloaded"
            ),
            Err(e) => tracing::error!(
                path = %watch.path.display(),
                "certificate revocation list not reloaded, the previous one stays in force: {e}"
            ),
        }
    }
}
