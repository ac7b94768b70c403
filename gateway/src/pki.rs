//! Hamgam's private PKI: one root per deployment (kept offline) and under it an issuing CA on
//! the hub that signs the hub's server certificates and the client certificates of dealers, HQ
//! systems and ops staff. Everyone trusts the root; a certificate file carries its chain (the
//! leaf, then the issuing CA), so a new issuing CA needs no new trust anywhere. A deployment
//! made before the root existed has one self-signed CA that issues directly: still loaded.
//!
//! Dealers ask for their certificate with a signing request (CSR) made at the branch
//! ([`signing_request`]); the hub signs only the request's public key, under the identity its
//! enrolment token or existing certificate proves ([`CertificateAuthority::sign_request`]). The
//! private key never leaves the branch.
//!
//! Client certificates carry their identity as one SPIFFE-style URI SAN (see [`crate::identity`]);
//! the hub's certificate carries the DNS names and IP addresses agents dial. Keys are ECDSA P-256.
//! This module only makes certificates; files and prompts belong to the `central pki` command.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::identity::{check_principal_name, PeerIdentity};
use crate::GatewayError;

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The longest validity [`Validity::for_days`] gives: 100 years.
pub const MAX_DAYS: i64 = 36_525;

impl Validity {
    /// From one hour ago for `days` days, for a certificate someone asked for (`--days`):
    /// fewer than 1 day gives a certificate every hub refuses, so it is refused here.
    pub fn for_days(days: i64) -> Result<Self, GatewayError> {
        if days < 1 {
            return Err(GatewayError::Pki(format!(
                "--days {days}: a certificate must be valid for at least 1 day (every hub \
                 refuses one that is already expired); pass e.g. --days 397"
            )));
        }
        if days > MAX_DAYS {
            return Err(GatewayError::Pki(format!(
                "--days {days}: at most {MAX_DAYS} days (100 years)"
            )));
        }
        Ok(Self::days_from_now(days))
    }

    /// From one hour ago (tolerating small clock skew) for `days` days. Tests make expired
    /// certificates with a `Validity` of their own; a command line uses [`Validity::for_days`].
    pub fn days_from_now(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

/// What a certificate is for.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A hub server: the names and addresses agents and HQ dial.
    Hub {
        dns_names: Vec<String>,
        ips: Vec<IpAddr>,
    },
    /// A client: a dealership agent, an HQ system or an ops person.
    Client(PeerIdentity),
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The deployment's certificate authority: a root, or an issuing CA under it.
pub struct CertificateAuthority {
    trust_domain: String,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// What every certificate it issues carries after the leaf: its own certificate when it is
    /// an issuing CA under a root, nothing when it is the (self-signed) root.
    chain_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Makes a new CA with a fresh key.
    pub fn generate(trust_domain: &str, validity: Validity) -> Result<Self, GatewayError> {
        check_principal_name(trust_domain)?;
        let key = KeyPair::generate().map_err(pki_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&format!("Hamgam CA {trust_domain}"));
        // Path length 1: the root signs issuing CAs, which sign leaves only.
        let params = ca_params(&format!("Hamgam CA {trust_domain}"), 1, validity);
        let cert = params.self_signed(&key).map_err(pki_err)?;
        Ok(CertificateAuthority {
            trust_domain: trust_domain.to_owned(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            chain_pem: String::new(),
        })
    }

    /// Makes an issuing CA under this root, with a fresh key: the CA the hub keeps online.
    pub fn generate_issuing(&self, validity: Validity) -> Result<Self, GatewayError> {
        let key = KeyPair::generate().map_err(pki_err)?;
        let mut params = ca_params(
            &format!("Hamgam issuing CA {}", self.trust_domain),
            0,
            validity,
        );
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki_err)?;
        let cert_pem = cert.pem();
        Ok(CertificateAuthority {
            trust_domain: self.trust_domain.clone(),
            chain_pem: cert_pem.clone(),
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and private key (PEM), e.g. as `central pki init` wrote them.
    pub fn from_pem(
        trust_domain: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<Self, GatewayError> {
        check_principal_name(trust_domain)?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| GatewayError::Pki(format!("CA key does not parse: {e}")))?;
        let der = crate::tls::parse_certificates(cert_pem.as_bytes(), "CA certificate")?
            .into_iter()
            .next()
            .ok_or_else(|| GatewayError::Pki("CA certificate file holds no certificate".into()))?;
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| GatewayError::Pki(format!("CA certificate does not parse: {e}")))?;
        let chain_pem = if is_self_signed(&der)? {
            String::new()
        } else {
            cert_pem.to_owned()
        };
        let ca = CertificateAuthority {
            trust_domain: trust_domain.to_owned(),
            cert_pem: cert_pem.to_owned(),
            issuer,
            chain_pem,
        };
        // A CA whose key does not match its certificate would issue certificates nobody trusts.
        let probe = ca.issue(
            &Subject::Client(PeerIdentity::Ops("key-check".into())),
            Validity::days_from_now(1),
        )?;
        crate::tls::verify_chain(&ca.cert_pem, &probe.cert_pem)
            .map_err(|_| GatewayError::Pki("CA key does not match the CA certificate".into()))?;
        Ok(ca)
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, GatewayError> {
        crate::tls::parse_certificates(self.cert_pem.as_bytes(), "CA certificate")?
            .into_iter()
            .next()
            .ok_or_else(|| GatewayError::Pki("CA certificate holds no certificate".into()))
    }

    /// Issues a certificate with a fresh key (made here: for the hub, HQ and ops, whose keys
    /// an operator hands over; branches use [`CertificateAuthority::sign_request`]).
    pub fn issue(
        &self,
        subject: &Subject,
        validity: Validity,
    ) -> Result<IssuedCertificate, GatewayError> {
        let key = KeyPair::generate().map_err(pki_err)?;
        let params = self.leaf_params(subject, validity)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki_err)?;
        Ok(IssuedCertificate {
            cert_pem: format!("{}{}", cert.pem(), self.chain_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs the public key of `request` for `identity` (whatever identity the request asked
    /// for: the caller proved the one given here). Returns the certificate and its chain, PEM.
    pub fn sign_request(
        &self,
        request: &SigningRequest,
        identity: &PeerIdentity,
        validity: Validity,
    ) -> Result<String, GatewayError> {
        let params = self.leaf_params(&Subject::Client(identity.clone()), validity)?;
        let signed = rcgen::CertificateSigningRequestParams {
            params,
            public_key: request.0.public_key.clone(),
        }
        .signed_by(&self.issuer)
        .map_err(pki_err)?;
        Ok(format!("{}{}", signed.pem(), self.chain_pem))
    }

    fn leaf_params(
        &self,
        subject: &Subject,
        validity: Validity,
    ) -> Result<CertificateParams, GatewayError> {
        let mut params = CertificateParams::default();
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        match subject {
            Subject::Hub { dns_names, ips } => {
                if dns_names.is_empty() && ips.is_empty() {
                    return Err(GatewayError::Pki(
                        "a hub certificate needs at least one DNS name or IP address".into(),
                    ));
                }
                let cn = dns_names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| ips[0].to_string());
                params.distinguished_name = distinguished_name(&cn);
                for name in dns_names {
                    let ia5 = name.clone().try_into().map_err(|_| {
                        GatewayError::Pki(format!("`{name}` is not a valid DNS name"))
                    })?;
                    params.subject_alt_names.push(SanType::DnsName(ia5));
                }
                for ip in ips {
                    params.subject_alt_names.push(SanType::IpAddress(*ip));
                }
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Subject::Client(identity) => {
                // The hub reads the identity back from the URI and refuses a name it cannot
                // parse (an empty one, a `/`...): such a certificate would never be accepted.
                check_principal_name(identity.name()).map_err(|e| {
                    GatewayError::Pki(format!(
                        "{e}; the hub refuses a certificate for `{identity}`, so none is issued"
                    ))
                })?;
                params.distinguished_name = distinguished_name(&identity.to_string());
                let uri = identity.spiffe_uri(&self.trust_domain);
                let ia5 = uri
                    .clone()
                    .try_into()
                    .map_err(|_| GatewayError::Pki(format!("`{uri}` is not a valid URI")))?;
                params.subject_alt_names.push(SanType::URI(ia5));
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        Ok(params)
    }
}

/// A certificate signing request whose signature verified (its maker holds the key).
#[derive(Debug, Clone)]
pub struct SigningRequest(rcgen::CertificateSigningRequestParams);

impl SigningRequest {
    /// Parses a PEM request and checks its signature.
    pub fn from_pem(pem: &str) -> Result<Self, GatewayError> {
        rcgen::CertificateSigningRequestParams::from_pem(pem)
            .map(SigningRequest)
            .map_err(|e| {
                GatewayError::Pki(format!(
                    "the certificate signing request is not usable ({e}); make a new one with \
                     `dealer-agent enroll`"
                ))
            })
    }

    /// The identity the request asks for (its SPIFFE URI), if it names one.
    pub fn requested_identity(
        &self,
        trust_domain: &str,
    ) -> Result<Option<PeerIdentity>, GatewayError> {
        self.0
            .params
            .subject_alt_names
            .iter()
            .find_map(|san| match san {
                SanType::URI(uri) => {
                    Some(PeerIdentity::from_spiffe_uri(uri.as_str(), trust_domain))
                }
                _ => None,
            })
            .transpose()
    }
}

/// A fresh key pair and a signing request for it (PEM: request, private key), naming
/// `identity` when the requester knows it. Made at the branch; only the request leaves it.
pub fn signing_request(
    identity: Option<&PeerIdentity>,
    trust_domain: &str,
) -> Result<(String, String), GatewayError> {
    let key = KeyPair::generate().map_err(pki_err)?;
    let mut params = CertificateParams::default();
    if let Some(identity) = identity {
        params.distinguished_name = distinguished_name(&identity.to_string());
        let uri = identity.spiffe_uri(trust_domain);
        let ia5 = uri
            .clone()
            .try_into()
            .map_err(|_| GatewayError::Pki(format!("`{uri}` is not a valid URI")))?;
        params.subject_alt_names.push(SanType::URI(ia5));
    }
    let request = params
        .serialize_request(&key)
        .map_err(pki_err)?
        .pem()
        .map_err(pki_err)?;
    Ok((request, key.serialize_pem()))
}

/// The SHA-256 fingerprint of a certificate (DER), 64 lowercase hex digits: what ops read out
/// to a branch so its agent can pin the deployment's root (`dealer-agent enroll
/// --ca-fingerprint`).
pub fn fingerprint(cert_der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert_der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fingerprint as someone typed it: hex digits, any case, with or without `:` or spaces,
/// optionally after `SHA256:`. None when it is not 64 hex digits.
pub fn parse_fingerprint(typed: &str) -> Option<String> {
    let typed = typed.trim();
    let typed = typed
        .strip_prefix("SHA256:")
        .or_else(|| typed.strip_prefix("sha256:"))
        .unwrap_or(typed);
    let hex: String = typed
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

fn ca_params(common_name: &str, path_length: u8, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_length));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial());
    params
}

fn is_self_signed(der: &[u8]) -> Result<bool, GatewayError> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| GatewayError::Pki(format!("CA certificate does not parse: {e}")))?;
    Ok(cert.subject() == cert.issuer())
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Hamgam");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A certificate to put on the revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The certificate's serial number, big-endian bytes.
    pub serial: Vec<u8>,
    pub at: OffsetDateTime,
}

impl CertificateAuthority {
    /// A revocation list (PEM) signed by this CA, numbered `crl_number` (increase it with every
    /// new list), valid for `valid_days`.
    pub fn revocation_list(
        &self,
        revoked: &[Revoked],
        crl_number: u64,
        valid_days: i64,
    ) -> Result<String, GatewayError> {
        let now = OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + Duration::days(valid_days.max(1)),
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.at,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .map_err(pki_err)?
            .pem()
            .map_err(pki_err)
    }
}

/// The serial number of a certificate (PEM), big-endian bytes.
pub fn serial_of(cert_pem: &str) -> Result<Vec<u8>, GatewayError> {
    use x509_parser::prelude::FromDer;
    let der = crate::tls::parse_certificates(cert_pem.as_bytes(), "certificate")?
        .into_iter()
        .next()
        .ok_or_else(|| GatewayError::Pki("the file holds no certificate".into()))?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|e| GatewayError::Pki(format!("the certificate does not parse: {e}")))?;
    Ok(cert.raw_serial().to_vec())
}

/// What a revocation list (PEM) holds: the revoked certificates and its number.
pub fn read_revocation_list(crl_pem: &str) -> Result<(Vec<Revoked>, u64), GatewayError> {
    use rustls_pki_types::pem::PemObject;
    use x509_parser::prelude::FromDer;
    let bad = |e: String| GatewayError::Pki(format!("the revocation list does not parse: {e}"));
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_slice(crl_pem.as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
        .map_err(|e| bad(e.to_string()))?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n.clone()).ok())
        .unwrap_or(0);
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| Revoked {
            serial: r.raw_serial().to_vec(),
            at: r.revocation_date.to_datetime(),
        })
        .collect();
    Ok((revoked, number))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

fn pki_err(e: rcgen::Error) -> GatewayError {
    GatewayError::Pki(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DealerId;

    #[test]
    fn issued_client_certificates_prove_their_identity() {
        let ca = CertificateAuthority::generate("hamgam", Validity::days_from_now(10)).unwrap();
        let dealer = PeerIdentity::Dealer(DealerId::new("D-1042").unwrap());
        let issued = ca
            .issue(&Subject::Client(dealer.clone()), Validity::days_from_now(5))
            .unwrap();
        let der = crate::tls::parse_certificates(issued.cert_pem.as_bytes(), "test").unwrap();
        assert_eq!(
            PeerIdentity::from_certificate(&der[0], "hamgam").unwrap(),
            dealer
        );
        crate::tls::verify_chain(ca.cert_pem(), &issued.cert_pem).unwrap();
        // HQ's role travels in the certificate: a reviewer stays a reviewer, a reader a reader.
        for hq in [
            PeerIdentity::Hq("crm".into()),
            PeerIdentity::HqReviewer("quality".into()),
        ] {
            let issued = ca
                .issue(&Subject::Client(hq.clone()), Validity::days_from_now(5))
                .unwrap();
            let der = crate::tls::parse_certificates(issued.cert_pem.as_bytes(), "test").unwrap();
            assert_eq!(
                PeerIdentity::from_certificate(&der[0], "hamgam").unwrap(),
                hq
            );
        }
    }

    #[test]
    fn names_and_lifetimes_every_hub_would_refuse_are_not_issued() {
        let ca = CertificateAuthority::generate("hamgam", Validity::days_from_now(10)).unwrap();
        for name in ["", "a/b", "with space", &"x".repeat(65)] {
            for identity in [
                PeerIdentity::Hq(name.to_owned()),
                PeerIdentity::HqReviewer(name.to_owned()),
                PeerIdentity::Ops(name.to_owned()),
            ] {
                let err = ca
                    .issue(
                        &Subject::Client(identity.clone()),
                        Validity::days_from_now(1),
                    )
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("principal name"), "{identity}: {err}");
                assert!(err.contains("none is issued"), "{identity}: {err}");
            }
        }
        for days in [-1, 0, MAX_DAYS + 1, i64::MIN, i64::MAX] {
            let err = Validity::for_days(days).unwrap_err().to_string();
            assert!(err.contains(&format!("--days {days}")), "{err}");
        }
        let year = Validity::for_days(397).unwrap();
        assert_eq!(
            (year.not_after - year.not_before).whole_hours(),
            397 * 24 + 1
        );
        Validity::for_days(MAX_DAYS).unwrap();
    }

    #[test]
    fn a_reloaded_ca_issues_certificates_its_certificate_verifies() {
        let ca = CertificateAuthority::generate("hamgam", Validity::days_from_now(10)).unwrap();
        let reloaded =
            CertificateAuthority::from_pem("hamgam", ca.cert_pem(), &ca.key_pem()).unwrap();
        let issued = reloaded
            .issue(
                &Subject::Client(PeerIdentity::Hq("crm".into())),
                Validity::days_from_now(1),
            )
            .unwrap();
        crate::tls::verify_chain(ca.cert_pem(), &issued.cert_pem).unwrap();

        let other = CertificateAuthority::generate("hamgam", Validity::days_from_now(10)).unwrap();
        let err =
            CertificateAuthority::from_pem("hamgam", ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn an_issuing_ca_under_the_root_signs_a_branch_request_without_seeing_its_key() {
        let root = CertificateAuthority::generate("hamgam", Validity::days_from_now(10)).unwrap();
        let issuing = root.generate_issuing(Validity::days_from_now(9)).unwrap();
        let dealer = PeerIdentity::Dealer(DealerId::new("D-1042").unwrap());
        let (request, key_pem) = signing_request(Some(&dealer), "hamgam").unwrap();
        let request = SigningRequest::from_pem(&request).unwrap();
        assert_eq!(
            request.requested_identity("hamgam").unwrap(),
            Some(dealer.clone())
        );
        let chain = issuing
            .sign_request(&request, &dealer, Validity::days_from_now(5))
            .unwrap();
        // Leaf, then the issuing CA: verifies against the root alone.
        let certs = crate::tls::parse_certificates(chain.as_bytes(), "test").unwrap();
        assert_eq!(certs.len(), 2);
        crate::tls::verify_chain(root.cert_pem(), &chain).unwrap();
        assert_eq!(
            PeerIdentity::from_certificate(&certs[0], "hamgam").unwrap(),
            dealer
        );
        // The certificate is for the branch's own key.
        let key = KeyPair::from_pem(&key_pem).unwrap();
        let (_, leaf) =
            <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(
                &certs[0],
            )
            .unwrap();
        assert_eq!(
            leaf.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        // An issuing CA reloaded from its files keeps issuing chains the root verifies.
        let reloaded =
            CertificateAuthority::from_pem("hamgam", issuing.cert_pem(), &issuing.key_pem())
                .unwrap();
        let hq = reloaded
            .issue(
                &Subject::Client(PeerIdentity::Hq("crm".into())),
                Validity::days_from_now(1),
            )
            .unwrap();
        crate::tls::verify_chain(root.cert_pem(), &hq.cert_pem).unwrap();
        // Another deployment's root does not vouch for it.
        let other = CertificateAuthority::generate("hamgam", Validity::days_from_now(10)).unwrap();
        assert!(crate::tls::verify_chain(other.cert_pem(), &chain).is_err());
    }

    #[test]
    fn a_tampered_or_garbled_request_is_refused_in_words() {
        let (request, _) = signing_request(None, "hamgam").unwrap();
        assert_eq!(
            SigningRequest::from_pem(&request)
                .unwrap()
                .requested_identity("hamgam")
                .unwrap(),
            None
        );
        for bad in ["", "not a request", &request.replace('A', "B")] {
            let err = SigningRequest::from_pem(bad).unwrap_err().to_string();
            assert!(err.contains("signing request is not usable"), "{err}");
        }
    }

    #[test]
    fn fingerprints_are_read_as_people_type_them() {
        let hex = "3f".repeat(32);
        for typed in [
            hex.clone(),
            hex.to_uppercase(),
            format!("SHA256:{}", hex.to_uppercase()),
            hex.as_bytes()
                .chunks(2)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(":"),
            format!(" {} {} ", &hex[..32], &hex[32..]),
        ] {
            assert_eq!(
                parse_fingerprint(&typed).as_deref(),
                Some(hex.as_str()),
                "{typed}"
            );
        }
        for bad in ["", "3f3f", &"zz".repeat(32), &"3f".repeat(33)] {
            assert_eq!(parse_fingerprint(bad), None, "{bad}");
        }
        let root = CertificateAuthority::generate("hamgam", Validity::days_from_now(1)).unwrap();
        let fp = fingerprint(&root.cert_der().unwrap());
        assert_eq!(parse_fingerprint(&fp), Some(fp));
    }
}
