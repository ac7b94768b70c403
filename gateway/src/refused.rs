//! Naming the peer a handshake refuses: a client-certificate verifier wrapper that remembers
//! the certificate it refused, for the accept loop to read once the handshake failed, so the
//! security log says "dealer D-1042: certificate expired" instead of an anonymous refusal. Only
//! a certificate of our own CA refused for its dates or a revocation names its peer: another
//! CA's certificate claims a name nobody vouched for.
//!
//! The certificate travels in a task-local set around one handshake ([`handshake_naming`]):
//! rustls calls the verifier inside that future, and its error stays exactly what rustls made.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

tokio::task_local! {
    static REFUSED: RefCell<Option<Vec<u8>>>;
}

/// A client-certificate verifier that remembers the end-entity certificate it refuses.
#[derive(Debug)]
pub struct NamingVerifier(pub Arc<dyn ClientCertVerifier>);

impl NamingVerifier {
    pub fn wrap(inner: Arc<dyn ClientCertVerifier>) -> Arc<dyn ClientCertVerifier> {
        Arc::new(NamingVerifier(inner))
    }
}

/// Runs one handshake; returns its result and, when the verifier refused a certificate, that
/// certificate (DER).
pub async fn handshake_naming<F: Future>(handshake: F) -> (F::Output, Option<Vec<u8>>) {
    REFUSED
        .scope(RefCell::new(None), async {
            let out = handshake.await;
            let refused = REFUSED.with(|c| c.borrow_mut().take());
            (out, refused)
        })
        .await
}

/// Whether a refusal means the certificate chains to our CA and fails for its dates or a
/// revocation only.
fn signed_by_us(e: &rustls::Error) -> bool {
    use rustls::CertificateError as C;
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. }
                | C::Revoked
        )
    )
}

impl ClientCertVerifier for NamingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verdict = self.0.verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &verdict {
            // Only a certificate of our own CA names a real peer (expired, not yet valid,
            // revoked); one from another CA claims a name nobody vouched for. Outside a
            // handshake_naming scope (another caller) there is nobody to tell.
            if signed_by_us(e) {
                let _ = REFUSED.try_with(|c| *c.borrow_mut() = Some(end_entity.to_vec()));
            }
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }
}
