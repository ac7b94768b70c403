//! The metrics both ends serve, scraped over HTTP after a real sync: every metric named in
//! docs/metrics.md is there with a plausible value (records ingested equal records sent, the
//! branch's lag 0 after the sync), and the Grafana dashboard asks for no name the docs do not
//! list.

use std::collections::{BTreeMap, BTreeSet};

use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::*;

/// The metric names docs/metrics.md lists (first column of its tables).
fn documented() -> BTreeSet<String> {
    let docs = include_str!("../../docs/metrics.md");
    docs.lines()
        .filter(|l| l.starts_with("| `hamgam_"))
        .flat_map(|l| {
            l.split('|')
                .nth(1)
                .unwrap_or("")
                .split('/')
                .map(|n| {
                    n.trim()
                        .trim_matches('`')
                        .split('{')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The samples' metric names without labels and without the _total/_bucket/_sum/_count/_created
/// suffixes the exposition adds.
fn families(samples: &BTreeMap<String, f64>) -> BTreeSet<String> {
    samples
        .keys()
        .map(|k| {
            let name = k.split('{').next().unwrap_or(k);
            ["_bucket", "_sum", "_count", "_created"]
                .iter()
                .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n))
                .to_owned()
        })
        .collect()
}

fn sum_of(samples: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ends_serve_every_documented_metric_with_plausible_values() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let metrics_addr = hub.metrics_addr;
    let store = AgentStore::open(&dirs.path().join("agent"), dealer("D-1042"))
        .expect("store")
        .with_clock(test_clock());
    record_samples(&store, 50);
    store
        .capture(
            "S-1",
            Payload::Customer(pb::CustomerUpsert {
                customer_ref: "C-PH".into(),
                party_type: pb::PartyType::Person as i32,
                family_name: "کریمی".into(),
                mobile: "09121111111".into(),
                ..Default::default()
            }),
        )
        .expect("saved");
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1042")));
    let report = sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync");
    assert_eq!(report.records_sent, 51);

    // A certificate of another CA is refused: a security event with its reason.
    let stranger = TestPki::new();
    if let Ok(channel) = stranger
        .endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1042")))
        .connect()
        .await
    {
        let _ = hamgam_proto::hq::v1::vehicle_lookup_client::VehicleLookupClient::new(channel)
            .get_service_summary(hamgam_proto::hq::v1::GetServiceSummaryRequest {
                vin: "NAAP41FE0RJ000007".into(),
            })
            .await;
    }
    hub.wait_for_event(
        10,
        hamgam_gateway::audit::SecurityEventKind::HandshakeRefused,
        "",
    )
    .await;
    let hub_samples =
        tokio::task::spawn_blocking(move || hamgam_tests::scrape_metrics(metrics_addr))
            .await
            .expect("scrape");
    let documented = documented();
    let hub_names: BTreeSet<String> = documented
        .iter()
        .filter(|n| !n.starts_with("hamgam_agent_"))
        .cloned()
        .collect();
    let served = families(&hub_samples);
    let missing: Vec<&String> = hub_names
        .iter()
        .filter(|n| !served.contains(*n) && !served.contains(&format!("{n}_total")))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not served: {missing:?}\n{served:?}"
    );
    assert_eq!(sum_of(&hub_samples, "hamgam_records_ingested_total"), 51.0);
    assert_eq!(
        sum_of(&hub_samples, "hamgam_sync_records_received_total"),
        51.0
    );
    assert!(hub_samples["hamgam_findings_total{rule=\"C04\"}"] >= 1.0);
    assert_eq!(
        hub_samples["hamgam_dealer_pending_records{dealer=\"D-1042\"}"],
        0.0
    );
    assert_eq!(
        hub_samples["hamgam_dealer_stored_seq{dealer=\"D-1042\"}"],
        51.0
    );
    assert_eq!(
        hub_samples["hamgam_sync_sessions_open"], 0.0,
        "the sync ended"
    );
    assert!(hub_samples["hamgam_store_bytes"] > 0.0);
    // 51 records acked, far below a layer's 32 MiB: all of them still in the log's layer.
    let unwritten = hub_samples["hamgam_store_log_unwritten_bytes"];
    assert!(
        unwritten > 51.0 * 100.0 && unwritten < (32 << 20) as f64,
        "{unwritten}"
    );
    // Each new record is one key in the store, with its id and its index entries beside it.
    let record_keys = hub_samples["hamgam_store_keys_total{kind=\"records\"}"];
    assert!(
        record_keys >= 51.0,
        "{record_keys} record keys for 51 records"
    );
    assert!(sum_of(&hub_samples, "hamgam_store_keys_total") > 2.0 * record_keys);
    let refusals: Vec<(&String, &f64)> = hub_samples
        .iter()
        .filter(|(k, _)| k.starts_with("hamgam_security_events_total"))
        .collect();
    assert!(
        refusals
            .iter()
            .any(|(k, v)| k.contains("HandshakeRefused") && k.contains("reason=") && **v >= 1.0),
        "{refusals:?}"
    );
    assert!(sum_of(&hub_samples, "hamgam_sync_batch_ack_seconds_count") >= 1.0);
    assert!(sum_of(&hub_samples, "hamgam_flush_seconds_count") >= 1.0);

    // The branch's side, served as `dealer-agent run` serves it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let agent_addr = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let render = hamgam_dealer_agent::metrics::render(store.clone(), dirs.path().join("no.crt"));
    let served_agent = tokio::spawn(hamgam_gateway::metrics::serve(
        listener,
        render,
        stop.clone().cancelled_owned(),
    ));
    let agent_samples =
        tokio::task::spawn_blocking(move || hamgam_tests::scrape_metrics(agent_addr))
            .await
            .expect("scrape");
    let served = families(&agent_samples);
    let missing: Vec<&String> = documented
        .iter()
        .filter(|n| n.starts_with("hamgam_agent_") && !served.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not served: {missing:?}\n{served:?}"
    );
    assert_eq!(agent_samples["hamgam_agent_last_seq"], 51.0);
    assert_eq!(agent_samples["hamgam_agent_pending_records"], 0.0);
    assert_eq!(agent_samples["hamgam_agent_last_sync_failed"], 0.0);
    assert!(agent_samples["hamgam_agent_seconds_since_sync"] >= 0.0);
    // The branch holds the verdicts the hub counted.
    let hub_count = |outcome: &str| {
        hub_samples
            .get(&format!(
                "hamgam_records_ingested_total{{outcome=\"{outcome}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(
        agent_samples["hamgam_agent_flagged_records"],
        hub_count("accepted_with_flags")
    );
    assert_eq!(
        agent_samples["hamgam_agent_rejected_records"],
        hub_count("rejected")
    );
    assert!(
        agent_samples["hamgam_agent_flagged_records"] >= 1.0,
        "C04 at least"
    );
    stop.cancel();
    served_agent.await.expect("task").expect("served");
    hub.stop().await;
}

#[test]
fn the_dashboard_asks_only_for_documented_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/hamgam.json")).expect("JSON");
    let documented = documented();
    let mut asked = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("hamgam_") {
                    let name = word.strip_suffix("_bucket").unwrap_or(word);
                    asked.insert(name.to_owned());
                }
            }
        }
    }
    let unknown: Vec<&String> = asked.iter().filter(|n| !documented.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard uses undocumented names: {unknown:?}"
    );
    assert!(asked.len() >= 15, "{asked:?}");
}
