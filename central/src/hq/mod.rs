//! The HQ gRPC API (`hamgam.hq.v1.HqService`): what headquarters reads from the hub and the
//! decisions it takes, and the one narrow lookup dealers may call (`VehicleLookup`). The
//! authorisation layer lets only HQ certificates reach `HqService`, and only reviewers
//! (`hq/reviewer/NAME`) its decisions (`central::server::access_policy`).
//!
//! Each RPC is a thin adapter: it checks the request, runs the domain query off the async
//! workers when it reads much, and maps errors to a status once (`unavailable`). Every
//! answer carrying a person's data, and every decision, is written to the access audit
//! ([`audit`]) before it leaves the hub; no audit entry, no answer.
//!
//! | module | RPCs |
//! |---|---|
//! | [`audit`] | the access audit's entries (who read whose data, which decision) |
//! | [`customers`] | GetCustomer (360), SearchCustomers |
//! | [`vehicles`] | GetVehicleHistory, VehicleLookup.GetServiceSummary |
//! | [`flags`] | ListFlags (ReviewFlag and Decide are HQ decisions, here) |
//! | [`reports`] | GetScorecard, LifecycleReport |
//! | [`analytics`] | GetCustomerJourney, JourneyReport, TenureReport, ListServiceDue, ListChurnRisk, ComplaintReport, LeadReport, SatisfactionReport |
//! | [`stream`] | StreamChanges, Export |

pub mod analytics;
pub mod audit;
pub mod convert;
pub mod customers;
pub mod flags;
pub mod reports;
pub mod stream;
pub mod vehicles;

use std::sync::Arc;

use hamgam_gateway::server::PeerInfo;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_server::HqService;
use hamgam_proto::hq::v1::vehicle_lookup_server::VehicleLookup;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use self::audit::{caller, Access};
use crate::ingest::{DecisionError, Hub};
use crate::lifecycle::report::GroupBy;
use crate::lifecycle::LifecycleConfig;
use crate::merge::{HqDecision, PartyKey, Subject};
use crate::store::{HubStore, StoreError};
use crate::wire;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A page request: its size (defaulted and capped) and token.
#[derive(Debug, Clone)]
pub struct Page {
    pub size: usize,
    pub token: String,
}

impl Page {
    fn of(size: u32, token: &str) -> Page {
        Page {
            size: match size {
                0 => DEFAULT_PAGE,
                n => n.min(MAX_PAGE),
            } as usize,
            token: token.to_owned(),
        }
    }
}

/// The HQ API over a hub.
pub struct HqApi<S: HubStore> {
    hub: Arc<Hub<S>>,
    lifecycle: Arc<LifecycleConfig>,
    /// Cancelled at shutdown: following streams end so the server can drain.
    stop: CancellationToken,
}

impl<S: HubStore> HqApi<S> {
    pub fn new(hub: Arc<Hub<S>>, lifecycle: LifecycleConfig, stop: CancellationToken) -> Self {
        HqApi {
            hub,
            lifecycle: Arc::new(lifecycle),
            stop,
        }
    }

    /// Runs a blocking store query off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        query: impl FnOnce(Arc<Hub<S>>) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let hub = self.hub.clone();
        tokio::task::spawn_blocking(move || query(hub))
            .await
            .map_err(|e| Status::internal(format!("query task failed: {e}")))?
    }

    async fn take_decision(
        &self,
        decision: HqDecision,
        by: String,
        comment: &str,
    ) -> Result<crate::ingest::DecisionTaken, Status> {
        self.hub
            .decide(decision, &by, comment)
            .await
            .map_err(|e| match e {
                DecisionError::Store(e) => unavailable(e),
                DecisionError::UnknownCustomer(_)
                | DecisionError::UnknownVehicle(_)
                | DecisionError::UnknownParty(_) => Status::not_found(e.to_string()),
                DecisionError::Invalid(_) => Status::invalid_argument(e.to_string()),
            })
    }
}

impl<S: HubStore> HqApi<S> {
    /// Writes a decision's access-audit entry. The decision already stands (in the decision
    /// log, with who took it), so a failure says so: the caller must not take it again.
    async fn audit_decision(
        &self,
        who: String,
        rpc: &'static str,
        what: String,
        customers: Vec<String>,
        no: u64,
    ) -> Result<(), Status> {
        let access = Access::new(&who, rpc, format!("decision {no}: {what}"))
            .customers(customers)
            .count(1);
        self.blocking(move |hub| audit::record(&hub, access))
            .await
            .map(|_| ())
            .map_err(|status| {
                Status::unavailable(format!(
                    "decision {no} was taken and stands in the decision log (do not take it \
                     again), but {}",
                    status.message()
                ))
            })
    }
}

/// A decision in the audit's words: what it settles, never a confirmed value.
fn decision_summary(decision: &HqDecision) -> (String, Vec<String>) {
    let party = |p: &PartyKey| format!("{}/{}", p.0, p.1);
    match decision {
        HqDecision::Confirm { subject, field, .. } => match subject {
            Subject::Customer(id) => (
                format!("confirm {field} of customer {id}"),
                vec![id.clone()],
            ),
            Subject::Vehicle(vin) => (format!("confirm {field} of vehicle {vin}"), Vec::new()),
        },
        HqDecision::Link { a, b } => (format!("link {} and {}", party(a), party(b)), Vec::new()),
        HqDecision::KeepApart { a, b } => (
            format!("keep apart {} and {}", party(a), party(b)),
            Vec::new(),
        ),
        HqDecision::Detach { party: p } => (format!("detach {}", party(p)), Vec::new()),
        HqDecision::Reattach { party: p } => (format!("reattach {}", party(p)), Vec::new()),
        HqDecision::ReviewFlag {
            dealer_id,
            seq,
            rule_id,
            status,
        } => (
            format!("{status:?} {rule_id} on {dealer_id} seq {seq}").to_lowercase(),
            Vec::new(),
        ),
    }
}

pub(crate) fn unavailable(e: StoreError) -> Status {
    tracing::error!("HQ query failed: {e}");
    Status::unavailable(format!("hub storage unavailable: {e}"))
}

pub(crate) fn bad_token() -> Status {
    Status::invalid_argument(
        "page_token is not one this hub issued; start again with an empty token",
    )
}

/// The most a page of records carries, encoded: under the 4 MiB a gRPC client accepts by
/// default.
const PAGE_BYTES: usize = 3 * 1024 * 1024;

/// A request's `as_of_ms`, or now by the hub's clock when it is 0.
/// All usable facts, or clean facts only.
fn mode(trusted_only: bool) -> crate::lifecycle::Facts {
    if trusted_only {
        crate::lifecycle::Facts::TrustedOnly
    } else {
        crate::lifecycle::Facts::All
    }
}

fn as_of(ms: i64, clock: hamgam_gateway::Clock) -> i64 {
    if ms == 0 {
        clock.now_ms()
    } else {
        ms
    }
}

/// Who decides, as logged: the certificate always, with the person the request names (a
/// shared HQ system acting for an analyst) — a request cannot hide which certificate sent it.
fn reviewer<T>(request: &Request<T>, named: &str) -> String {
    let certificate = PeerInfo::of(request)
        .map(|p| p.identity.to_string())
        .unwrap_or_else(|_| "unknown certificate".into());
    match named.trim() {
        "" => certificate,
        person => format!("{person} (via {certificate})"),
    }
}

fn party_key(p: &Option<hq::PartyRef>, field: &str) -> Result<PartyKey, Status> {
    match p {
        Some(p) if !p.dealer_id.is_empty() && !p.customer_ref.is_empty() => {
            Ok((p.dealer_id.clone(), p.customer_ref.clone()))
        }
        _ => Err(Status::invalid_argument(format!(
            "{field}: give the dealer_id and customer_ref of a dealer's customer record"
        ))),
    }
}

/// A decision from the wire.
fn decision(req: &hq::DecideRequest) -> Result<HqDecision, Status> {
    use hq::decide_request::Decision;
    Ok(match &req.decision {
        None => {
            return Err(Status::invalid_argument(
                "decision: give one of confirm_customer_field, confirm_vehicle_seller, link, \
                 keep_apart, detach, reattach",
            ))
        }
        Some(Decision::ConfirmCustomerField(c)) => HqDecision::Confirm {
            subject: Subject::Customer(c.customer_id.clone()),
            field: c.field.clone(),
            value: c.value.clone(),
            parties: Vec::new(),
        },
        Some(Decision::ConfirmVehicleSeller(c)) => HqDecision::Confirm {
            subject: Subject::Vehicle(c.vin.clone()),
            field: "sold_by".into(),
            value: c.dealer_id.clone(),
            parties: Vec::new(),
        },
        Some(Decision::Link(p)) => HqDecision::Link {
            a: party_key(&p.a, "link.a")?,
            b: party_key(&p.b, "link.b")?,
        },
        Some(Decision::KeepApart(p)) => HqDecision::KeepApart {
            a: party_key(&p.a, "keep_apart.a")?,
            b: party_key(&p.b, "keep_apart.b")?,
        },
        Some(Decision::Detach(p)) => HqDecision::Detach {
            party: party_key(&Some(p.clone()), "detach")?,
        },
        Some(Decision::Reattach(p)) => HqDecision::Reattach {
            party: party_key(&Some(p.clone()), "reattach")?,
        },
    })
}

#[tonic::async_trait]
impl<S: HubStore> HqService for HqApi<S> {
    async fn list_dealers(
        &self,
        _request: Request<hq::ListDealersRequest>,
    ) -> Result<Response<hq::ListDealersResponse>, Status> {
        let store = self.hub.store().map_err(unavailable)?;
        let mut scores = self
            .hub
            .reliability(self.hub.clock().now_ms())
            .map_err(unavailable)?;
        let window_days = self.hub.rules().score_window_days as u32;
        let dealers = store
            .dealers()
            .map_err(unavailable)?
            .into_iter()
            .map(|(dealer_id, s)| hq::DealerSummary {
                reliability: scores
                    .remove(&dealer_id)
                    .map(|r| reports::reliability(r, window_days)),
                dealer_id,
                stored_seq: s.stored_seq,
                record_count: s.record_count,
                rejected_count: s.rejected_count,
                first_seen_ms: s.first_seen_ms,
                last_seen_ms: s.last_seen_ms,
                clock_offset_ms: s.clock_offset_ms,
                verdict_cursor: s.verdict_cursor,
                verdicts_acked: s.verdicts_acked,
            })
            .collect();
        Ok(Response::new(hq::ListDealersResponse { dealers }))
    }

    async fn list_dealer_records(
        &self,
        request: Request<hq::ListDealerRecordsRequest>,
    ) -> Result<Response<hq::ListDealerRecordsResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        if req.dealer_id.is_empty() {
            return Err(Status::invalid_argument("dealer_id is required"));
        }
        let page_size = Page::of(req.page_size, "").size;
        let after_seq = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse::<u64>().map_err(|_| bad_token())?
        };
        let store = self.hub.store().map_err(unavailable)?;
        let mut stored = if req.quarantined_only {
            store.quarantined(&req.dealer_id, after_seq, page_size + 1)
        } else {
            store.records(&req.dealer_id, after_seq, page_size + 1)
        }
        .map_err(unavailable)?;
        let mut more = stored.len() > page_size;
        stored.truncate(page_size);
        // A page is also cut by size (at least one record), so it always fits a client's
        // default 4 MiB message limit whatever the records weigh.
        let mut records = Vec::with_capacity(stored.len());
        let mut bytes = 0usize;
        for s in &stored {
            let record = wire::record_to_wire(s).map_err(|e| {
                Status::data_loss(format!(
                    "record {} of {} does not decode: {e}",
                    s.seq, s.dealer_id
                ))
            })?;
            let item = hq::StoredRecord {
                record: Some(record),
                verdict: Some(wire::verdict_to_wire(&s.verdict)),
                received_at_ms: s.received_at_ms,
            };
            bytes += prost::Message::encoded_len(&item) + 8;
            if bytes > PAGE_BYTES && !records.is_empty() {
                more = true;
                break;
            }
            records.push(item);
        }
        let next_page_token = if more {
            records
                .last()
                .and_then(|r| r.verdict.as_ref())
                .map(|v| v.seq.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        // Dealer records carry customers' names and ids as the dealer typed them.
        let seqs =
            |r: Option<&hq::StoredRecord>| r.and_then(|r| r.verdict.as_ref()).map_or(0, |v| v.seq);
        let access = Access::new(
            &who,
            "ListDealerRecords",
            format!(
                "{}records of {} seq {}..{}",
                if req.quarantined_only {
                    "quarantined "
                } else {
                    ""
                },
                req.dealer_id,
                seqs(records.first()),
                seqs(records.last())
            ),
        )
        .count(records.len() as u64);
        self.blocking(move |hub| audit::record(&hub, access))
            .await?;
        Ok(Response::new(hq::ListDealerRecordsResponse {
            records,
            next_page_token,
        }))
    }

    async fn get_customer(
        &self,
        request: Request<hq::GetCustomerRequest>,
    ) -> Result<Response<hq::Customer360>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        if req.customer_id.is_empty() {
            return Err(Status::invalid_argument("customer_id is required"));
        }
        let lifecycle = self.lifecycle.clone();
        let view = self
            .blocking(move |hub| {
                let store = hub.store().map_err(unavailable)?;
                let at = as_of(req.as_of_ms, hub.clock());
                let view = customers::customer_360(&*store, &lifecycle, &req.customer_id, at)?;
                let access = Access::new(&who, "GetCustomer", "customer 360")
                    .customers([view.customer_id.clone()]);
                audit::record(&hub, access)?;
                Ok(view)
            })
            .await?;
        Ok(Response::new(view))
    }

    async fn search_customers(
        &self,
        request: Request<hq::SearchCustomersRequest>,
    ) -> Result<Response<hq::SearchCustomersResponse>, Status> {
        use hq::search_customers_request::By;
        let who = caller(&request);
        let req = request.into_inner();
        let page = Page::of(req.page_size, &req.page_token);
        // What was searched for, never the value: the customers found say whom it reached.
        let what = match (&req.by, req.fuzzy) {
            (Some(By::NationalId(_)), _) => "by national id",
            (Some(By::Mobile(_)), _) => "by mobile",
            (Some(By::Name(_)), false) => "by name prefix",
            (Some(By::Name(_)), true) => "by similar name",
            (None, _) => "without a search value",
        };
        let what = if page.token.is_empty() {
            what.to_owned()
        } else {
            format!("{what}, a further page")
        };
        let found = self
            .blocking(move |hub| {
                let store = hub.store().map_err(unavailable)?;
                let found = customers::search(&*store, &req, page)?;
                let access = Access::new(&who, "SearchCustomers", what)
                    .customers(found.customers.iter().map(|c| c.customer_id.clone()));
                audit::record(&hub, access)?;
                Ok(found)
            })
            .await?;
        Ok(Response::new(found))
    }

    async fn get_vehicle_history(
        &self,
        request: Request<hq::GetVehicleHistoryRequest>,
    ) -> Result<Response<hq::VehicleHistory>, Status> {
        let who = caller(&request);
        let vin = request.into_inner().vin;
        let history = self
            .blocking(move |hub| {
                let history = vehicles::history(&*hub.store().map_err(unavailable)?, &vin)?;
                // The timeline names who held the vehicle (dealer refs and customer ids).
                let access = Access::new(
                    &who,
                    "GetVehicleHistory",
                    format!("vehicle {}", history.vin),
                )
                .customers(vehicles::customers_of(&history));
                audit::record(&hub, access)?;
                Ok(history)
            })
            .await?;
        Ok(Response::new(history))
    }

    async fn list_flags(
        &self,
        request: Request<hq::ListFlagsRequest>,
    ) -> Result<Response<hq::ListFlagsResponse>, Status> {
        let req = request.into_inner();
        let page = Page::of(req.page_size, &req.page_token);
        let flags = self
            .blocking(move |hub| flags::list(&*hub.store().map_err(unavailable)?, &req, page))
            .await?;
        Ok(Response::new(flags))
    }

    async fn review_flag(
        &self,
        request: Request<hq::ReviewFlagRequest>,
    ) -> Result<Response<hq::ReviewFlagResponse>, Status> {
        let who = caller(&request);
        let by = reviewer(&request, &request.get_ref().reviewer);
        let req = request.into_inner();
        if req.dealer_id.is_empty() || req.seq == 0 || req.rule_id.is_empty() {
            return Err(Status::invalid_argument(
                "dealer_id, seq and rule_id name the flag to review",
            ));
        }
        let status = flags::status(req.status)?
            .filter(|s| *s != crate::domain::FlagStatus::Open)
            .ok_or_else(|| {
                Status::invalid_argument("status: FLAG_STATUS_CONFIRMED or FLAG_STATUS_DISMISSED")
            })?;
        let decision = HqDecision::ReviewFlag {
            dealer_id: req.dealer_id.clone(),
            seq: req.seq,
            rule_id: req.rule_id.clone(),
            status,
        };
        let (what, customers) = decision_summary(&decision);
        let what = format!("{what}; by {by}");
        let taken = self.take_decision(decision, by, &req.comment).await?;
        self.audit_decision(who, "ReviewFlag", what, customers, taken.no)
            .await?;
        let record = self
            .hub
            .store()
            .map_err(unavailable)?
            .record(&req.dealer_id, req.seq)
            .map_err(unavailable)?;
        Ok(Response::new(hq::ReviewFlagResponse {
            decision_no: taken.no,
            verdict: record.map(|r| wire::verdict_to_wire(&r.verdict)),
        }))
    }

    async fn list_conflicts(
        &self,
        request: Request<hq::ListConflictsRequest>,
    ) -> Result<Response<hq::ListConflictsResponse>, Status> {
        let req = request.into_inner();
        let page = Page::of(req.page_size, &req.page_token);
        let store = self.hub.store().map_err(unavailable)?;
        let mut conflicts = Vec::new();
        let mut after = page.token.clone();
        let mut more = false;
        'pages: loop {
            let subjects = store.conflicts(&after, 256).map_err(unavailable)?;
            let Some(last) = subjects.last().map(|(k, _)| k.clone()) else {
                break;
            };
            for (key, list) in subjects {
                let open: Vec<_> = list
                    .iter()
                    .filter(|c| !req.open_only || !c.resolved)
                    .map(convert::conflict)
                    .collect();
                // A page holds whole subjects, at least one (else a big one would never pass).
                if !open.is_empty()
                    && !conflicts.is_empty()
                    && conflicts.len() + open.len() > page.size
                {
                    more = true;
                    break 'pages;
                }
                conflicts.extend(open);
                after = key;
            }
            if last != after {
                break;
            }
        }
        Ok(Response::new(hq::ListConflictsResponse {
            conflicts,
            next_page_token: if more { after } else { String::new() },
        }))
    }

    async fn list_identity_reviews(
        &self,
        request: Request<hq::ListIdentityReviewsRequest>,
    ) -> Result<Response<hq::ListIdentityReviewsResponse>, Status> {
        let req = request.into_inner();
        let page = Page::of(req.page_size, &req.page_token);
        let after: Option<(PartyKey, PartyKey)> = if page.token.is_empty() {
            None
        } else {
            let p: Vec<&str> = page.token.split('\u{1}').collect();
            match p.as_slice() {
                [a, b, c, d] => Some((
                    ((*a).to_owned(), (*b).to_owned()),
                    ((*c).to_owned(), (*d).to_owned()),
                )),
                _ => return Err(bad_token()),
            }
        };
        let store = self.hub.store().map_err(unavailable)?;
        let mut items = store
            .reviews(after.as_ref(), page.size + 1)
            .map_err(unavailable)?;
        let more = items.len() > page.size;
        items.truncate(page.size);
        let name = |p: &PartyKey| -> Result<String, Status> {
            Ok(store
                .merge_party(p)
                .map_err(unavailable)?
                .and_then(|x| x.view)
                .map(|v| v.name())
                .unwrap_or_default())
        };
        let reviews = items
            .iter()
            .map(|i| {
                Ok(hq::IdentityReview {
                    a: Some(convert::party(&i.a)),
                    b: Some(convert::party(&i.b)),
                    similarity: i.similarity,
                    reason: i.reason.clone(),
                    name_a: name(&i.a)?,
                    name_b: name(&i.b)?,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let next_page_token = match (more, items.last()) {
            (true, Some(i)) => format!("{}\u{1}{}\u{1}{}\u{1}{}", i.a.0, i.a.1, i.b.0, i.b.1),
            _ => String::new(),
        };
        Ok(Response::new(hq::ListIdentityReviewsResponse {
            reviews,
            next_page_token,
        }))
    }

    async fn decide(
        &self,
        request: Request<hq::DecideRequest>,
    ) -> Result<Response<hq::DecideResponse>, Status> {
        let who = caller(&request);
        let by = reviewer(&request, &request.get_ref().reviewer);
        let req = request.into_inner();
        let decision = decision(&req)?;
        let (what, customers) = decision_summary(&decision);
        let what = format!("{what}; by {by}");
        let taken = self.take_decision(decision, by, &req.comment).await?;
        self.audit_decision(who, "Decide", what, customers, taken.no)
            .await?;
        Ok(Response::new(hq::DecideResponse {
            decision_no: taken.no,
            verdicts_changed: taken.verdicts_changed as u32,
        }))
    }

    async fn get_scorecard(
        &self,
        request: Request<hq::GetScorecardRequest>,
    ) -> Result<Response<hq::DealerScorecard>, Status> {
        let req = request.into_inner();
        if req.dealer_id.is_empty() {
            return Err(Status::invalid_argument("dealer_id is required"));
        }
        let card = self
            .blocking(move |hub| {
                reports::scorecard(&hub, &req.dealer_id, as_of(req.as_of_ms, hub.clock()))
            })
            .await?;
        Ok(Response::new(card))
    }

    async fn lifecycle_report(
        &self,
        request: Request<hq::LifecycleReportRequest>,
    ) -> Result<Response<hq::LifecycleReportResponse>, Status> {
        let req = request.into_inner();
        let by = analytics::customer_group(req.group_by, GroupBy::Dealer)?;
        let filter = analytics::filter(req.filter)?;
        let config = self.lifecycle.clone();
        let report = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                reports::lifecycle(&hub, &config, by, &filter, at)
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn get_customer_journey(
        &self,
        request: Request<hq::GetCustomerJourneyRequest>,
    ) -> Result<Response<hq::CustomerJourney>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        if req.customer_id.is_empty() {
            return Err(Status::invalid_argument("customer_id is required"));
        }
        let journey = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                let journey =
                    analytics::customer_journey(&hub, &req.customer_id, at, req.trusted_only)?;
                let access = Access::new(&who, "GetCustomerJourney", "customer journey")
                    .customers([journey.customer_id.clone()])
                    .count(journey.touchpoints.len() as u64);
                audit::record(&hub, access)?;
                Ok(journey)
            })
            .await?;
        Ok(Response::new(journey))
    }

    async fn journey_report(
        &self,
        request: Request<hq::JourneyReportRequest>,
    ) -> Result<Response<hq::JourneyReportResponse>, Status> {
        let req = request.into_inner();
        let filter = analytics::filter(req.filter)?;
        let config = self.lifecycle.clone();
        let report = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                analytics::journey_report(&hub, &config, &filter, at)
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn tenure_report(
        &self,
        request: Request<hq::TenureReportRequest>,
    ) -> Result<Response<hq::TenureReportResponse>, Status> {
        let req = request.into_inner();
        let by = analytics::customer_group(req.group_by, GroupBy::Segment)?;
        let filter = analytics::filter(req.filter)?;
        let config = self.lifecycle.clone();
        let report = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                analytics::tenure_report(&hub, &config, by, &filter, at)
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn list_service_due(
        &self,
        request: Request<hq::ListServiceDueRequest>,
    ) -> Result<Response<hq::ListServiceDueResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let filter = analytics::filter(req.filter)?;
        let page = Page::of(req.page_size, &req.page_token);
        let config = self.lifecycle.clone();
        let list = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                let (list, customers) = analytics::service_due(
                    &hub,
                    &config,
                    &filter,
                    mode(req.trusted_only),
                    at,
                    &page,
                )?;
                let access = Access::new(&who, "ListServiceDue", "service-due list")
                    .count(customers.len() as u64)
                    .customers(customers);
                audit::record(&hub, access)?;
                Ok(list)
            })
            .await?;
        Ok(Response::new(list))
    }

    async fn list_churn_risk(
        &self,
        request: Request<hq::ListChurnRiskRequest>,
    ) -> Result<Response<hq::ListChurnRiskResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let filter = analytics::filter(req.filter)?;
        let page = Page::of(req.page_size, &req.page_token);
        let config = self.lifecycle.clone();
        let within = match req.within_days {
            0 => config.churn_within_days,
            n => i64::from(n),
        };
        let list = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                let mode = mode(req.trusted_only);
                let (list, customers) =
                    analytics::churn_risk(&hub, &config, &filter, mode, at, within, &page)?;
                let access = Access::new(&who, "ListChurnRisk", "churn-risk list")
                    .count(customers.len() as u64)
                    .customers(customers);
                audit::record(&hub, access)?;
                Ok(list)
            })
            .await?;
        Ok(Response::new(list))
    }

    async fn complaint_report(
        &self,
        request: Request<hq::CaseReportRequest>,
    ) -> Result<Response<hq::ComplaintReportResponse>, Status> {
        let req = request.into_inner();
        let config = self.lifecycle.clone();
        let report = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                analytics::complaint_report(&hub, &config, req, at)
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn lead_report(
        &self,
        request: Request<hq::CaseReportRequest>,
    ) -> Result<Response<hq::LeadReportResponse>, Status> {
        let req = request.into_inner();
        let config = self.lifecycle.clone();
        let report = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                analytics::lead_report(&hub, &config, req, at)
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn satisfaction_report(
        &self,
        request: Request<hq::CaseReportRequest>,
    ) -> Result<Response<hq::SatisfactionReportResponse>, Status> {
        let req = request.into_inner();
        let report = self
            .blocking(move |hub| {
                let at = as_of(req.as_of_ms, hub.clock());
                analytics::satisfaction_report(&hub, req, at)
            })
            .await?;
        Ok(Response::new(report))
    }

    type StreamChangesStream = stream::EventStream<hq::ChangeEvent>;

    async fn stream_changes(
        &self,
        request: Request<hq::StreamChangesRequest>,
    ) -> Result<Response<Self::StreamChangesStream>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        // Audited per call, not per entry: the feed carries every record stored, and HQ
        // systems follow it for good; the cursor says from where they read.
        let access = Access::new(
            &who,
            "StreamChanges",
            format!(
                "change stream after cursor {}{}",
                req.after_cursor,
                if req.follow { ", following" } else { "" }
            ),
        );
        self.blocking(move |hub| audit::record(&hub, access))
            .await?;
        Ok(Response::new(stream::changes(
            self.hub.clone(),
            req.after_cursor,
            req.follow,
            self.stop.clone(),
        )))
    }

    type ExportStream = stream::EventStream<hq::ExportItem>;

    async fn export(
        &self,
        request: Request<hq::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let kind = match hq::ExportKind::try_from(req.kind) {
            Ok(hq::ExportKind::Customers) => hq::ExportKind::Customers,
            Ok(hq::ExportKind::Vehicles) => hq::ExportKind::Vehicles,
            _ => {
                return Err(Status::invalid_argument(
                    "kind: EXPORT_KIND_CUSTOMERS or EXPORT_KIND_VEHICLES",
                ))
            }
        };
        Ok(Response::new(stream::export(
            self.hub.clone(),
            who,
            kind,
            self.lifecycle.clone(),
            as_of(req.as_of_ms, self.hub.clock()),
            self.stop.clone(),
        )))
    }
}

/// The narrow lookup dealers may call: a vehicle's service history across the network, no
/// customer data.
pub struct VehicleLookupApi<S: HubStore> {
    hub: Arc<Hub<S>>,
}

impl<S: HubStore> VehicleLookupApi<S> {
    pub fn new(hub: Arc<Hub<S>>) -> Self {
        VehicleLookupApi { hub }
    }
}

#[tonic::async_trait]
impl<S: HubStore> VehicleLookup for VehicleLookupApi<S> {
    async fn get_service_summary(
        &self,
        request: Request<hq::GetServiceSummaryRequest>,
    ) -> Result<Response<hq::ServiceSummary>, Status> {
        let caller = PeerInfo::of(&request)
            .map(|p| p.identity.to_string())
            .unwrap_or_default();
        let vin = request.into_inner().vin;
        tracing::info!(caller = %caller, vin = %vin, "vehicle service lookup");
        let hub = self.hub.clone();
        let summary = tokio::task::spawn_blocking(move || {
            vehicles::service_summary(&*hub.store().map_err(unavailable)?, &vin)
        })
        .await
        .map_err(|e| Status::internal(format!("lookup task failed: {e}")))??;
        Ok(Response::new(summary))
    }
}
