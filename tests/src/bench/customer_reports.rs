//! HQ's customer questions timed on the customers section's world (`customer_queries`): each
//! report over every customer, and the per-customer journey, over mutual TLS against the same
//! hub. A report reads one kept summary per customer per call (docs/hq-api.md, "Costs and
//! limits"), so its time is printed beside the customers it read per second.

use std::time::Instant;

use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use serde_json::{json, Value};
use tonic::transport::Channel;

use super::percentile;

/// Timed calls of each whole-network report (each reads every customer's summary).
pub const REPORT_CALLS: usize = 10;

/// Times every customer question; `journeys` are customer ids to ask the journey of.
pub async fn time_reports(
    client: &HqServiceClient<Channel>,
    customers: u64,
    journeys: &[String],
) -> Value {
    let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
    macro_rules! timed {
        ($name:expr, $calls:expr, $call:expr) => {{
            let mut laps = Vec::new();
            for i in 0..$calls {
                let started = Instant::now();
                let answer = $call(i).await;
                laps.push(started.elapsed().as_secs_f64() * 1000.0);
                if let Err(e) = answer {
                    println!("  {}: {e}", $name);
                }
            }
            rows.push(($name, laps));
        }};
    }
    let filter = || Some(hq::CustomerFilter::default());
    let c = client.clone();
    timed!("journey (one customer)", journeys.len(), |i: usize| {
        let customer_id = journeys[i].clone();
        let mut c = c.clone();
        async move {
            c.get_customer_journey(hq::GetCustomerJourneyRequest {
                customer_id,
                ..Default::default()
            })
            .await
            .map(drop)
        }
    });
    timed!("lifecycle report", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.lifecycle_report(hq::LifecycleReportRequest {
                group_by: hq::GroupBy::Region as i32,
                as_of_ms: 0,
                filter: filter(),
            })
            .await
            .map(drop)
        }
    });
    timed!("journey report", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.journey_report(hq::JourneyReportRequest {
                as_of_ms: 0,
                filter: filter(),
            })
            .await
            .map(drop)
        }
    });
    timed!("tenure and cohorts", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.tenure_report(hq::TenureReportRequest {
                group_by: 0,
                as_of_ms: 0,
                filter: filter(),
            })
            .await
            .map(drop)
        }
    });
    timed!("service-due list (page 1)", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.list_service_due(hq::ListServiceDueRequest {
                page_size: 50,
                ..Default::default()
            })
            .await
            .map(drop)
        }
    });
    timed!("churn-risk list (page 1)", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.list_churn_risk(hq::ListChurnRiskRequest {
                page_size: 50,
                ..Default::default()
            })
            .await
            .map(drop)
        }
    });
    let case = |by: hq::GroupBy| hq::CaseReportRequest {
        group_by: by as i32,
        as_of_ms: 0,
        filter: filter(),
    };
    timed!("complaint report", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.complaint_report(case(hq::GroupBy::Category))
                .await
                .map(drop)
        }
    });
    timed!("lead report", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move { c.lead_report(case(hq::GroupBy::Channel)).await.map(drop) }
    });
    timed!("satisfaction report", REPORT_CALLS, |_| {
        let mut c = c.clone();
        async move {
            c.satisfaction_report(case(hq::GroupBy::Dealer))
                .await
                .map(drop)
        }
    });
    println!(
        "{:<28} {:>10} {:>10} {:>16}",
        "customer question", "p50 ms", "p99 ms", "customers/s"
    );
    let mut out = Vec::new();
    for (name, mut laps) in rows {
        let (p50, p99) = (percentile(&mut laps, 50.0), percentile(&mut laps, 99.0));
        let whole = !name.starts_with("journey (");
        let rate = (whole && p50 > 0.0).then(|| customers as f64 / (p50 / 1000.0));
        println!(
            "{name:<28} {p50:>10.1} {p99:>10.1} {:>16}",
            rate.map_or("-".to_owned(), |r| format!("{r:.0}"))
        );
        out.push(json!({ "query": name, "calls": laps.len(), "p50_ms": p50, "p99_ms": p99, "customers_per_s": rate }));
    }
    Value::Array(out)
}
