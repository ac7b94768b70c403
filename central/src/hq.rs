//! The HQ gRPC API (`hamgam.hq.v1.HqService`): what headquarters reads from the hub. The
//! authorisation layer lets only HQ certificates reach it.

use std::sync::Arc;

use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_server::HqService;
use tonic::{Request, Response, Status};

use crate::ingest::Hub;
use crate::store::{HubStore, StoreError};
use crate::wire;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The HQ API over a hub.
pub struct HqApi<S: HubStore> {
    hub: Arc<Hub<S>>,
}

impl<S: HubStore> HqApi<S> {
    pub fn new(hub: Arc<Hub<S>>) -> Self {
        HqApi { hub }
    }
}

fn unavailable(e: StoreError) -> Status {
    tracing::error!("HQ query failed: {e}");
    Status::unavailable(format!("hub storage unavailable: {e}"))
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
            .reliability(hamgam_gateway::sync::now_ms())
            .map_err(unavailable)?;
        let window_days = self.hub.rules().score_window_days as u32;
        let dealers = store
            .dealers()
            .map_err(unavailable)?
            .into_iter()
            .map(|(dealer_id, s)| hq::DealerSummary {
                reliability: scores.remove(&dealer_id).map(|r| hq::Reliability {
                    score: r.score,
                    previous_score: r.previous,
                    window_records: r.records,
                    flagged: r.flagged,
                    rejected: r.rejected,
                    top_rules: r
                        .top_rules
                        .into_iter()
                        .map(|(rule_id, records)| hq::RuleCount { rule_id, records })
                        .collect(),
                    window_days,
                }),
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
        let req = request.into_inner();
        if req.dealer_id.is_empty() {
            return Err(Status::invalid_argument("dealer_id is required"));
        }
        let page_size = match req.page_size {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        } as usize;
        let after_seq = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse::<u64>().map_err(|_| {
                Status::invalid_argument(
                    "page_token is not one this hub issued; start again with an empty token",
                )
            })?
        };
        let store = self.hub.store().map_err(unavailable)?;
        let mut stored = if req.quarantined_only {
            store.quarantined(&req.dealer_id, after_seq, page_size + 1)
        } else {
            store.records(&req.dealer_id, after_seq, page_size + 1)
        }
        .map_err(unavailable)?;
        let next_page_token = if stored.len() > page_size {
            stored.truncate(page_size);
            stored.last().map(|r| r.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let records = stored
            .iter()
            .map(|s| {
                let record = wire::record_to_wire(s).map_err(|e| {
                    Status::data_loss(format!(
                        "record {} of {} does not decode: {e}",
                        s.seq, s.dealer_id
                    ))
                })?;
                Ok(hq::StoredRecord {
                    record: Some(record),
                    verdict: Some(wire::verdict_to_wire(&s.verdict)),
                    received_at_ms: s.received_at_ms,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(hq::ListDealerRecordsResponse {
            records,
            next_page_token,
        }))
    }
}
