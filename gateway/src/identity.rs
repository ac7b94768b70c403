//! Who a certificate says its holder is.
//!
//! Every certificate Hamgam issues to a client carries one SPIFFE-style URI SAN,
//! `spiffe://<trust-domain>/<role>/<name>`: `dealer/D-1042`, `hq/reader/crm-analytics`,
//! `hq/reviewer/quality`, `ops/alice`. HQ's role has two parts: a reader queries and exports,
//! a reviewer also takes decisions. An HQ certificate issued before roles existed
//! (`hq/<name>`, one segment) is read as `hq/reader/<name>`: least privilege, it keeps every
//! read it had and gains nothing.
//!
//! The hub reads the identity from the verified peer certificate once, at the TLS handshake,
//! and hands it to every RPC handler; nothing a client *says* about itself is trusted.

use std::fmt;
use std::str::FromStr;

use crate::GatewayError;

/// A dealership's id, as HQ assigns it (`D-1042`). Letters, digits and `-`, 1 to 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DealerId(String);

impl DealerId {
    /// Checks the syntax of a dealer id.
    pub fn new(id: impl Into<String>) -> Result<Self, GatewayError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 32
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(DealerId(id))
        } else {
            Err(GatewayError::InvalidName {
                what: "dealer id",
                value: id,
                rule: "1 to 32 ASCII letters, digits or '-', e.g. D-1042",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DealerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DealerId {
    type Err = GatewayError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DealerId::new(s)
    }
}

/// The role a certificate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A dealership agent: may push its own records and read its verdicts.
    Dealer,
    /// Headquarters, reading: queries, exports, the change stream.
    HqReader,
    /// Headquarters, reviewing: what a reader may, and decisions (Decide, ReviewFlag).
    HqReviewer,
    /// Operations: may call admin RPCs.
    Ops,
}

impl Role {
    /// The role as it stands in a SPIFFE URI and in messages: `dealer`, `hq/reader`,
    /// `hq/reviewer`, `ops`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::HqReader => "hq/reader",
            Role::HqReviewer => "hq/reviewer",
            Role::Ops => "ops",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity a verified client certificate proves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerIdentity {
    Dealer(DealerId),
    /// An HQ reader (`hq/reader/<name>`, or a role-less `hq/<name>` certificate).
    Hq(String),
    /// An HQ reviewer (`hq/reviewer/<name>`).
    HqReviewer(String),
    Ops(String),
}

impl PeerIdentity {
    pub fn role(&self) -> Role {
        match self {
            PeerIdentity::Dealer(_) => Role::Dealer,
            PeerIdentity::Hq(_) => Role::HqReader,
            PeerIdentity::HqReviewer(_) => Role::HqReviewer,
            PeerIdentity::Ops(_) => Role::Ops,
        }
    }

    /// The name after the role: the dealer id, or the HQ / ops principal's name.
    pub fn name(&self) -> &str {
        match self {
            PeerIdentity::Dealer(d) => d.as_str(),
            PeerIdentity::Hq(n) | PeerIdentity::HqReviewer(n) | PeerIdentity::Ops(n) => n,
        }
    }

    /// The SPIFFE URI for this identity in `trust_domain`.
    pub fn spiffe_uri(&self, trust_domain: &str) -> String {
        format!("spiffe://{trust_domain}/{}/{}", self.role(), self.name())
    }

    /// Parses `spiffe://<trust_domain>/<role>/<name>`; another trust domain is refused. HQ's
    /// role is `hq/reader` or `hq/reviewer`; a bare `hq/<name>` is a reader.
    pub fn from_spiffe_uri(uri: &str, trust_domain: &str) -> Result<Self, GatewayError> {
        let bad = |why: &str| GatewayError::BadIdentity(format!("`{uri}`: {why}"));
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| bad("not a spiffe:// URI"))?;
        let (domain, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no role and name after the trust domain"))?;
        if domain != trust_domain {
            return Err(bad(&format!(
                "trust domain `{domain}` is not this hub's `{trust_domain}`"
            )));
        }
        let (role, mut name) = path
            .split_once('/')
            .ok_or_else(|| bad("expected <role>/<name> after the trust domain"))?;
        let mut hq_role = Role::HqReader;
        if role == "hq" {
            if let Some((sub, rest)) = name.split_once('/') {
                hq_role = match sub {
                    "reader" => Role::HqReader,
                    "reviewer" => Role::HqReviewer,
                    other => {
                        return Err(bad(&format!(
                            "unknown HQ role `{other}`: expected hq/reader/<name> or \
                             hq/reviewer/<name>"
                        )))
                    }
                };
                name = rest;
            }
        }
        check_principal_name(name)
            .map_err(|_| bad("name is empty or has characters outside A-Z a-z 0-9 - _ ."))?;
        match role {
            "dealer" => Ok(PeerIdentity::Dealer(DealerId::new(name)?)),
            "hq" if hq_role == Role::HqReviewer => Ok(PeerIdentity::HqReviewer(name.to_owned())),
            "hq" => Ok(PeerIdentity::Hq(name.to_owned())),
            "ops" => Ok(PeerIdentity::Ops(name.to_owned())),
            other => Err(bad(&format!("unknown role `{other}`"))),
        }
    }

    /// When a DER certificate is valid: `(not_before, not_after)`, seconds since the epoch.
    pub fn validity_of(der: &[u8]) -> Result<(i64, i64), GatewayError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| GatewayError::BadIdentity(format!("certificate does not parse: {e}")))?;
        let validity = cert.validity();
        Ok((
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        ))
    }

    /// Reads the identity from a DER certificate's URI SANs.
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Result<Self, GatewayError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| GatewayError::BadIdentity(format!("certificate does not parse: {e}")))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| GatewayError::BadIdentity(format!("bad subjectAltName: {e}")))?
            .ok_or_else(|| GatewayError::BadIdentity("certificate has no subjectAltName".into()))?;
        let mut found = None;
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if uri.starts_with("spiffe://") {
                    if found.is_some() {
                        return Err(GatewayError::BadIdentity(
                            "certificate carries more than one spiffe:// URI".into(),
                        ));
                    }
                    found = Some(PeerIdentity::from_spiffe_uri(uri, trust_domain)?);
                }
            }
        }
        found
            .ok_or_else(|| GatewayError::BadIdentity("certificate has no spiffe:// URI SAN".into()))
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role(), self.name())
    }
}

/// HQ and ops principal names: 1 to 64 of A-Z a-z 0-9 - _ .
pub(crate) fn check_principal_name(name: &str) -> Result<(), GatewayError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::InvalidName {
            what: "principal name",
            value: name.to_owned(),
            rule: "1 to 64 ASCII letters, digits, '-', '_' or '.'",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_uris_round_trip_and_foreign_domains_are_refused() {
        let dealer = PeerIdentity::Dealer(DealerId::new("D-1042").unwrap());
        let uri = dealer.spiffe_uri("hamgam");
        assert_eq!(uri, "spiffe://hamgam/dealer/D-1042");
        assert_eq!(
            PeerIdentity::from_spiffe_uri(&uri, "hamgam").unwrap(),
            dealer
        );
        assert!(PeerIdentity::from_spiffe_uri(&uri, "other").is_err());
        assert!(PeerIdentity::from_spiffe_uri("spiffe://hamgam/admin/x", "hamgam").is_err());
        assert!(PeerIdentity::from_spiffe_uri("spiffe://hamgam/dealer/", "hamgam").is_err());
        assert!(PeerIdentity::from_spiffe_uri("spiffe://hamgam/dealer/a/b", "hamgam").is_err());
    }

    #[test]
    fn hq_certificates_carry_a_role_and_role_less_ones_are_readers() {
        let parse = |uri: &str| PeerIdentity::from_spiffe_uri(uri, "hamgam");
        let reader = PeerIdentity::Hq("crm".into());
        let reviewer = PeerIdentity::HqReviewer("quality".into());
        assert_eq!(reader.spiffe_uri("hamgam"), "spiffe://hamgam/hq/reader/crm");
        assert_eq!(
            reviewer.spiffe_uri("hamgam"),
            "spiffe://hamgam/hq/reviewer/quality"
        );
        assert_eq!(parse(&reader.spiffe_uri("hamgam")).unwrap(), reader);
        assert_eq!(parse(&reviewer.spiffe_uri("hamgam")).unwrap(), reviewer);
        assert_eq!(reader.to_string(), "hq/reader/crm");
        assert_eq!(reviewer.role(), Role::HqReviewer);
        // A certificate from before roles: a reader, never more.
        assert_eq!(parse("spiffe://hamgam/hq/crm").unwrap(), reader);
        assert_eq!(
            parse("spiffe://hamgam/hq/reviewer").unwrap().role(),
            Role::HqReader
        );
        let err = parse("spiffe://hamgam/hq/admin/crm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown HQ role `admin`"), "{err}");
        assert!(parse("spiffe://hamgam/hq/reviewer/").is_err());
        assert!(parse("spiffe://hamgam/hq/reviewer/a/b").is_err());
        assert!(parse("spiffe://hamgam/ops/reviewer/a").is_err());
    }

    #[test]
    fn dealer_ids_are_checked() {
        assert!(DealerId::new("D-1042").is_ok());
        assert!(DealerId::new("").is_err());
        assert!(DealerId::new("D 1042").is_err());
        assert!(DealerId::new("x".repeat(33)).is_err());
    }
}
