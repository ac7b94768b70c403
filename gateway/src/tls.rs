//! Mutual-TLS configuration for both ends: TLS 1.3 only, client certificate required, trust
//! anchored in the deployment's own CA, the `ring` crypto provider, ALPN `h2`.
//!
//! Only this module builds rustls configs; the rest of Hamgam asks it for one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::GatewayError;

/// The crypto provider every Hamgam TLS config uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM material of one end: the CA to trust, and this end's own certificate and key.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsMaterial { .. }")
    }
}

/// Where an end's PEM files are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads the three files; a missing or unreadable file is named in the error. On Unix a
    /// private key its group or other users may access (`mode & 0o077 != 0`) is refused, with
    /// the `chmod` that fixes it: a key anyone on the machine can copy proves nothing.
    pub fn load(&self) -> Result<TlsMaterial, GatewayError> {
        let key_error = |source| GatewayError::ReadFile {
            what: "private key",
            path: self.key.clone(),
            source,
        };
        let ca_pem = read(&self.ca, "CA certificate")?;
        let cert_pem = read(&self.cert, "certificate")?;
        crate::files::check_owner_only(&self.key).map_err(key_error)?;
        Ok(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem: read(&self.key, "private key")?,
        })
    }

    /// Reads the certificate and the key only (a reload of the hub's own pair), with the same
    /// check of the key's mode.
    pub fn load_pair(&self) -> Result<(Vec<u8>, Vec<u8>), GatewayError> {
        let cert_pem = read(&self.cert, "certificate")?;
        crate::files::check_owner_only(&self.key).map_err(|source| GatewayError::ReadFile {
            what: "private key",
            path: self.key.clone(),
            source,
        })?;
        Ok((cert_pem, read(&self.key, "private key")?))
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|source| GatewayError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Parses every certificate of a PEM document.
pub fn parse_certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GatewayError::Tls(format!("{what}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(GatewayError::Tls(format!(
            "{what}: no CERTIFICATE block found"
        )));
    }
    Ok(certs)
}

/// Parses the first private key of a PEM document.
pub fn parse_private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, GatewayError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| GatewayError::Tls(format!("{what}: no usable PRIVATE KEY block: {e}")))
}

pub(crate) fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, GatewayError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certificates(ca_pem, "CA certificate")? {
        roots.add(cert).map_err(|e| {
            GatewayError::Tls(format!("CA certificate not usable as a trust anchor: {e}"))
        })?;
    }
    Ok(Arc::new(roots))
}

/// The hub's server config: TLS 1.3, a client certificate chaining to the CA is required.
pub fn server_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>, GatewayError> {
    server_config_with(material, client_verifier(&material.ca_pem)?)
}

/// The client-certificate verifier of the CA in `ca_pem` (no revocation list).
pub fn client_verifier(
    ca_pem: &[u8],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, GatewayError> {
    WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider())
        .build()
        .map_err(|e| GatewayError::Tls(format!("client verifier: {e}")))
}

/// The hub's server config with its own client-certificate verifier (the CA and a revocation
/// list: [`crate::revocation::RevocableVerifier`]).
pub fn server_config_with(
    material: &TlsMaterial,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, GatewayError> {
    Ok(server_config_reloadable(material, verifier)?.0)
}

/// [`server_config_with`], and the handle that replaces the hub's own certificate while it
/// serves ([`crate::server_cert`]).
pub fn server_config_reloadable(
    material: &TlsMaterial,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<(Arc<ServerConfig>, Arc<crate::server_cert::ServerCert>), GatewayError> {
    let provider = provider();
    let cert = crate::server_cert::ServerCert::new(&material.cert_pem, &material.key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_client_cert_verifier(crate::refused::NamingVerifier::wrap(verifier))
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"h2".to_vec()];
    // No session resumption: a resumed session skips the client-certificate check, so a
    // certificate revoked (or expired) since its first connection would get back in.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok((Arc::new(config), cert))
}

/// A server config for browsers (the branch's staff screen on a LAN address): TLS 1.3, no
/// client certificate (staff log in with a password), `cert_pem` (the chain) and `key_pem`
/// from ops, ALPN `http/1.1`.
pub fn browser_server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<Arc<ServerConfig>, GatewayError> {
    let chain = parse_certificates(cert_pem, what)?;
    let key = parse_private_key(key_pem, what)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            GatewayError::Tls(format!("{what}: the key does not fit the certificate: {e}"))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config that presents `material`'s certificate and trusts only the CA's hub certificates.
pub fn client_config(material: &TlsMaterial) -> Result<Arc<ClientConfig>, GatewayError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_root_certificates(roots(&material.ca_pem)?)
        .with_client_auth_cert(
            parse_certificates(&material.cert_pem, "client certificate")?,
            parse_private_key(&material.key_pem, "client key")?,
        )
        .map_err(|e| GatewayError::Tls(format!("client certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A client config that presents no certificate at all: the hub must refuse it. For tests and
/// for diagnosing a hub from an ops workstation.
pub fn anonymous_client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, GatewayError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Checks that `leaf_pem` is a client certificate the CA in `ca_pem` vouches for today.
pub fn verify_chain(ca_pem: &str, leaf_pem: &str) -> Result<(), GatewayError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(ca_pem.as_bytes())?, provider())
            .build()
            .map_err(|e| GatewayError::Tls(format!("client verifier: {e}")))?;
    let leaf = parse_certificates(leaf_pem.as_bytes(), "certificate")?;
    verifier
        .verify_client_cert(&leaf[0], &leaf[1..], UnixTime::now())
        .map(|_| ())
        .map_err(|e| GatewayError::Tls(format!("certificate does not verify: {e}")))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_private_key_others_can_read_is_refused_naming_the_file_its_mode_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.crt"),
            cert: dir.path().join("hub.crt"),
            key: dir.path().join("hub.key"),
        };
        std::fs::write(&files.ca, "ca").unwrap();
        std::fs::write(&files.cert, "cert").unwrap();
        std::fs::write(&files.key, "key").unwrap();
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();

        let err = files.load().unwrap_err().to_string();
        let key = files.key.display().to_string();
        assert!(err.contains(&format!("private key file {key}")), "{err}");
        assert!(err.contains("mode 0644"), "{err}");
        assert!(err.contains(&format!("`chmod 600 {key}`")), "{err}");

        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let material = files.load().unwrap();
        assert_eq!(material.key_pem, b"key");
    }

    #[test]
    fn a_missing_key_is_named_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.crt"),
            cert: dir.path().join("hub.crt"),
            key: dir.path().join("hub.key"),
        };
        std::fs::write(&files.ca, "ca").unwrap();
        std::fs::write(&files.cert, "cert").unwrap();
        let err = files.load().unwrap_err().to_string();
        assert!(err.contains("private key file"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }
}
