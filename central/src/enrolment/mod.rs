//! Branches get their certificates without a private key ever leaving the branch.
//!
//! - `Enroll` (on the enrolment listener, TLS that authenticates the hub only): a one-time
//!   token ([`tokens`]) proves which dealer the caller is; the hub's issuing CA signs the
//!   public key of the caller's signing request for that dealer. Every refusal says what to do
//!   and is a security event (`EnrolmentRefused`); after `max_refusals` refusals one address
//!   waits `lockout_secs` (a token has 60 bits; this keeps guessing hopeless).
//! - `Renew` (on the sync listener, over the agent's mutual-TLS session): the certificate on
//!   the connection proves the dealer; a suspended dealer gets nothing.
//!
//! Tokens expire by the hub's clock; certificates are dated by the real time, since every TLS
//! peer checks them against it.

pub mod tokens;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hamgam_gateway::audit::{SecurityAudit, SecurityEventKind};
use hamgam_gateway::pki::{CertificateAuthority, SigningRequest, Validity};
use hamgam_gateway::server::{AnonymousPeer, PeerInfo};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::enrol::v1::enrolment_server::Enrolment;
use hamgam_proto::enrol::v1::{CertificateIssued, EnrollRequest, RenewRequest};
use tonic::{Request, Response, Status};

use crate::ingest::Hub;
use crate::store::{HubStore, UsedToken};

/// What signs: the issuing CA, the root everyone trusts, where the tokens are.
#[derive(Debug)]
pub struct Signer {
    pub issuing: CertificateAuthority,
    pub root_pem: String,
    pub tokens: PathBuf,
    pub certificate_days: i64,
}

/// What the hub needs to enrol and renew.
#[derive(Debug, Clone)]
pub struct EnrolmentSetup {
    pub signer: Arc<Signer>,
    pub lockout: Lockout,
}

/// How many refusals an address may collect, and how long it then waits.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub max_refusals: u32,
    pub wait: Duration,
}

/// The `hamgam.enrol.v1.Enrolment` service, on both listeners (the policy lets anonymous
/// callers reach `Enroll` only on the enrolment listener, dealers `Renew` only on the sync one).
pub struct EnrolmentApi<S: HubStore> {
    hub: Arc<Hub<S>>,
    signer: Arc<Signer>,
    audit: SecurityAudit,
    lockout: Lockout,
    refusals: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

impl<S: HubStore> Clone for EnrolmentApi<S> {
    fn clone(&self) -> Self {
        EnrolmentApi {
            hub: self.hub.clone(),
            signer: self.signer.clone(),
            audit: self.audit.clone(),
            lockout: self.lockout,
            refusals: self.refusals.clone(),
        }
    }
}

impl<S: HubStore> EnrolmentApi<S> {
    pub fn new(
        hub: Arc<Hub<S>>,
        signer: Arc<Signer>,
        audit: SecurityAudit,
        lockout: Lockout,
    ) -> Self {
        EnrolmentApi {
            hub,
            signer,
            audit,
            lockout,
            refusals: Arc::default(),
        }
    }

    fn locked_out(&self, ip: IpAddr) -> bool {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        match refusals.get(&ip) {
            Some((_, since)) if since.elapsed() >= self.lockout.wait => {
                refusals.remove(&ip);
                false
            }
            Some((count, _)) => *count >= self.lockout.max_refusals,
            None => false,
        }
    }

    fn refuse(&self, peer: std::net::SocketAddr, status: Status) -> Status {
        {
            let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
            let entry = refusals.entry(peer.ip()).or_insert((0, Instant::now()));
            entry.0 += 1;
        }
        self.audit.record(
            SecurityEventKind::EnrolmentRefused,
            None,
            Some(peer),
            status.message().to_owned(),
        );
        status
    }

    /// Checks the token and the request; the dealer it proves.
    fn admit(
        &self,
        token: &str,
        request: &SigningRequest,
        now_ms: i64,
    ) -> Result<DealerId, Status> {
        let sha256 = tokens::digest(&tokens::normalise(token));
        let entries = tokens::load(&self.signer.tokens).map_err(|e| {
            Status::unavailable(format!("the hub cannot read its enrolment tokens: {e}"))
        })?;
        let entry = entries
            .into_iter()
            .find(|e| e.sha256 == sha256)
            .ok_or_else(|| {
                Status::permission_denied(
                "this enrolment token is not known: type it again exactly as ops gave it, or ask \
                 ops for a new one (`central dealers token DEALER_ID`)",
            )
            })?;
        if entry.expires_ms <= now_ms {
            return Err(Status::permission_denied(format!(
                "this enrolment token for {} expired at {}: ask ops for a new one (`central \
                 dealers token {}`)",
                entry.dealer_id,
                crate::admin_audit::rfc3339(entry.expires_ms),
                entry.dealer_id
            )));
        }
        let dealer = DealerId::new(entry.dealer_id.clone())
            .map_err(|e| Status::internal(format!("the tokens file names a bad dealer id: {e}")))?;
        match request
            .requested_identity(self.signer.issuing.trust_domain())
            .map_err(|e| Status::invalid_argument(format!("the signing request's identity: {e}")))?
        {
            None => {}
            Some(PeerIdentity::Dealer(asked)) if asked == dealer => {}
            Some(other) => {
                return Err(Status::permission_denied(format!(
                    "this enrolment token was issued for dealer {dealer}, not for {other}: use \
                     the token ops gave for this branch"
                )))
            }
        }
        self.refuse_suspended(&dealer)?;
        Ok(dealer)
    }

    fn refuse_suspended(&self, dealer: &DealerId) -> Result<(), Status> {
        match self
            .hub
            .registry()
            .dealer(dealer.as_str())
            .and_then(|d| d.suspended.clone())
        {
            Some(reason) => Err(Status::permission_denied(format!(
                "dealer {dealer} is suspended by HQ ({reason}): no certificate is issued"
            ))),
            None => Ok(()),
        }
    }

    fn issue(
        &self,
        request: &SigningRequest,
        dealer: &DealerId,
    ) -> Result<CertificateIssued, Status> {
        let validity = Validity::for_days(self.signer.certificate_days)
            .map_err(|e| Status::internal(e.to_string()))?;
        let chain = self
            .signer
            .issuing
            .sign_request(request, &PeerIdentity::Dealer(dealer.clone()), validity)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(CertificateIssued {
            dealer_id: dealer.to_string(),
            trust_domain: self.signer.issuing.trust_domain().to_owned(),
            certificate_chain_pem: chain,
            root_pem: self.signer.root_pem.clone(),
            not_after_ms: (validity.not_after.unix_timestamp_nanos() / 1_000_000) as i64,
        })
    }
}

fn signing_request(pem: &str) -> Result<SigningRequest, Status> {
    SigningRequest::from_pem(pem).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl<S: HubStore> Enrolment for EnrolmentApi<S> {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<CertificateIssued>, Status> {
        let peer = request
            .extensions()
            .get::<AnonymousPeer>()
            .map(|p| p.remote_addr)
            .ok_or_else(|| {
                Status::permission_denied("enrolment is served on the enrolment listener only")
            })?;
        if self.locked_out(peer.ip()) {
            self.audit.record(
                SecurityEventKind::EnrolmentRefused,
                None,
                Some(peer),
                "too many refused enrolments from this address".to_owned(),
            );
            return Err(Status::resource_exhausted(format!(
                "too many refused enrolments from this address: wait {} minutes, then try again \
                 with the token exactly as ops gave it",
                self.lockout.wait.as_secs().div_ceil(60)
            )));
        }
        let body = request.into_inner();
        let now_ms = self.hub.clock().now_ms();
        let admitted = signing_request(&body.csr_pem)
            .and_then(|csr| Ok((self.admit(&body.token, &csr, now_ms)?, csr)));
        let (dealer, csr) = admitted.map_err(|s| self.refuse(peer, s))?;
        let store = self
            .hub
            .store()
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let sha256 = tokens::digest(&tokens::normalise(&body.token));
        let used = UsedToken {
            dealer_id: dealer.to_string(),
            at_ms: now_ms,
            remote_addr: peer.to_string(),
        };
        if let Some(earlier) = store
            .use_enrolment_token(&sha256, &used)
            .map_err(|e| Status::unavailable(format!("the hub cannot record the enrolment: {e}")))?
        {
            return Err(self.refuse(
                peer,
                Status::permission_denied(format!(
                    "this enrolment token was already used at {} from {}: a token works once; \
                     ask ops for a new one (`central dealers token {dealer}`)",
                    crate::admin_audit::rfc3339(earlier.at_ms),
                    earlier.remote_addr
                )),
            ));
        }
        let issued = self.issue(&csr, &dealer)?;
        self.audit.record(
            SecurityEventKind::CertificateIssued,
            Some(PeerIdentity::Dealer(dealer.clone()).to_string()),
            Some(peer),
            "enrolled with a one-time token".to_owned(),
        );
        tracing::info!(dealer_id = %dealer, "dealer enrolled");
        Ok(Response::new(issued))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<CertificateIssued>, Status> {
        let peer = PeerInfo::of(&request)?.clone();
        let PeerIdentity::Dealer(dealer) = &peer.identity else {
            return Err(Status::permission_denied(
                "only a dealer certificate is renewed here",
            ));
        };
        self.refuse_suspended(dealer)?;
        let csr = signing_request(&request.get_ref().csr_pem)?;
        let issued = self.issue(&csr, dealer)?;
        self.audit.record(
            SecurityEventKind::CertificateIssued,
            Some(peer.identity.to_string()),
            Some(peer.remote_addr),
            "renewed over mutual TLS".to_owned(),
        );
        tracing::info!(dealer_id = %dealer, "dealer certificate renewed");
        Ok(Response::new(issued))
    }
}
