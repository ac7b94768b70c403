//! TLS for enrolment, when the agent has no certificate yet: the hub's enrolment listener
//! authenticates the hub only, and the agent trusts the deployment's root by the SHA-256
//! fingerprint ops read out to the branch (trust on first use, made safe by the pin).
//!
//! The listener sends its chain with the root at the end ([`server_config`]); the agent's
//! verifier ([`pinned_client_config`]) takes the certificate of that chain whose fingerprint is
//! the pin as its only trust anchor and runs the ordinary WebPKI checks against it (chain,
//! validity, the hub's name). A chain without the pinned root is refused before a byte of the
//! token is sent.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::tls::{parse_certificates, parse_private_key, provider};
use crate::GatewayError;

/// The enrolment listener's config: TLS 1.3, ALPN h2, no client certificate asked for; the
/// hub's certificate chain followed by the root (`root_pem`), so an agent can find its pin.
pub fn server_config(
    chain_pem: &[u8],
    key_pem: &[u8],
    root_pem: &[u8],
) -> Result<Arc<ServerConfig>, GatewayError> {
    let mut chain = parse_certificates(chain_pem, "hub certificate")?;
    chain.extend(parse_certificates(root_pem, "root certificate")?);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, parse_private_key(key_pem, "hub key")?)
        .map_err(|e| GatewayError::Tls(format!("hub certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A client config with no certificate that trusts only the root with this fingerprint
/// (64 hex digits, as [`crate::pki::parse_fingerprint`] gives).
pub fn pinned_client_config(fingerprint: &str) -> Result<Arc<ClientConfig>, GatewayError> {
    let verifier = Arc::new(PinnedRoot {
        fingerprint: fingerprint.to_owned(),
        provider: provider(),
    });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct PinnedRoot {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedRoot {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pinned = intermediates
            .iter()
            .find(|c| crate::pki::fingerprint(c) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the hub's CA is not the one whose fingerprint you gave ({}): check the \
                     fingerprint with ops (`central pki fingerprint`) and the hub address",
                    self.fingerprint
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots
            .add(pinned.clone().into_owned())
            .map_err(|e| rustls::Error::General(format!("the pinned root is not usable: {e}")))?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The configs here speak TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
