//! Test harness for Hamgam's system tests: a PKI made with the project's own PKI code, hubs
//! served in-process on `127.0.0.1:0` over real mutual TLS with real sled stores in temp dirs,
//! dealer agents with their real stores, HQ clients, a TCP relay that can cut connections, and
//! realistic record payloads; the fault proxy and real processes of the chaos test; the bodies
//! of the fuzz targets ([`fuzz_checks`]).
//!
//! Nothing here is a mock of what users run: the hub is `central::server::run`, the agent's
//! sync is `dealer_agent::sync_loop`, the certificates come from `gateway::pki`.

pub mod bench;
pub mod browser;
pub mod fault_proxy;
pub mod fuzz_checks;
pub mod history;
pub mod hq_network;
pub mod judged;
pub mod processes;
pub mod relay;
pub mod truth;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hamgam_central::server::{self, ServeOptions};
use hamgam_central::{Hub, SledStore};
use hamgam_dealer_agent::AgentStore;
use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::pki::{CertificateAuthority, Subject, Validity};
use hamgam_gateway::server::EdgeConfig;
use hamgam_gateway::sync::{SessionLimits, SessionOptions};
use hamgam_gateway::tls::{self, TlsMaterial};
use hamgam_gateway::Clock;
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::sync::v1::dealer_sync_client::DealerSyncClient;
use hamgam_proto::sync::v1::{
    agent_message, hub_message, AgentHello, AgentMessage, BatchAck, HubMessage, RecordBatch,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TRUST_DOMAIN: &str = "hamgam";

/// "Now" for every test hub and agent: 2026-11-18 11:06:40 UTC. No test reads the wall clock
/// for what it judges (certificates are the exception: rustls checks their validity against
/// the real time), so a test gives the same answer whatever day it runs.
pub const TEST_NOW_MS: i64 = 1_795_000_000_000;

/// The clock of test hubs and agents: stopped at [`TEST_NOW_MS`].
pub fn test_clock() -> Clock {
    Clock::Fixed(TEST_NOW_MS)
}

/// A deployment's PKI for one test: a CA and the certificates it issues.
pub struct TestPki {
    pub ca: CertificateAuthority,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    pub fn new() -> Self {
        TestPki {
            ca: CertificateAuthority::generate(TRUST_DOMAIN, Validity::days_from_now(30))
                .expect("CA"),
        }
    }

    /// Certificate and key for a client identity, with this CA as trust anchor.
    pub fn client_material(&self, identity: PeerIdentity) -> TlsMaterial {
        let issued = self
            .ca
            .issue(&Subject::Client(identity), Validity::days_from_now(7))
            .expect("client certificate");
        TlsMaterial {
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        }
    }

    /// The hub's server TLS config, for `127.0.0.1` and `localhost`.
    pub fn hub_tls(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config(&self.hub_material()).expect("server config")
    }

    /// The hub's certificate and key, for `127.0.0.1` and `localhost`, with this CA.
    pub fn hub_material(&self) -> TlsMaterial {
        let issued = self
            .ca
            .issue(
                &Subject::Hub {
                    dns_names: vec!["localhost".into()],
                    ips: vec!["127.0.0.1".parse().expect("ip")],
                },
                Validity::days_from_now(7),
            )
            .expect("hub certificate");
        TlsMaterial {
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        }
    }

    /// An endpoint to `addr` presenting `identity`'s certificate.
    pub fn endpoint(&self, addr: SocketAddr, identity: PeerIdentity) -> HubEndpoint {
        let material = self.client_material(identity);
        HubEndpoint::new(
            addr.to_string(),
            "localhost",
            tls::client_config(&material).expect("client config"),
        )
    }

    /// An HQ client to the hub at `addr`.
    pub async fn hq_client(&self, addr: SocketAddr) -> HqServiceClient<tonic::transport::Channel> {
        let channel = self
            .endpoint(addr, PeerIdentity::Hq("test-hq".into()))
            .connect()
            .await
            .expect("HQ connects");
        HqServiceClient::new(channel)
    }

    /// An HQ client to the hub at `addr` with a reviewer's certificate: it may also decide.
    pub async fn hq_reviewer_client(
        &self,
        addr: SocketAddr,
    ) -> HqServiceClient<tonic::transport::Channel> {
        let channel = self
            .endpoint(addr, PeerIdentity::HqReviewer("test-reviewer".into()))
            .connect()
            .await
            .expect("HQ reviewer connects");
        HqServiceClient::new(channel)
    }
}

/// What HQ's `ListDealers` says about every dealer the hub knows.
pub async fn dealer_summaries(pki: &TestPki, hub: &TestHub) -> Vec<hq::DealerSummary> {
    pki.hq_client(hub.addr)
        .await
        .list_dealers(hq::ListDealersRequest {})
        .await
        .expect("ListDealers")
        .into_inner()
        .dealers
}

pub fn dealer(id: &str) -> DealerId {
    DealerId::new(id).expect("dealer id")
}

/// A hub served in-process on 127.0.0.1 with a sled store in `data_dir`.
pub struct TestHub {
    pub addr: SocketAddr,
    /// Where it serves its Prometheus metrics (`GET /metrics`).
    pub metrics_addr: SocketAddr,
    /// Changes each time the hub puts a new dealer registry in force.
    pub registry_changes: tokio::sync::watch::Receiver<u64>,
    /// The enrolment listener, when the options carry an issuing CA (`enrolment`).
    pub enrolment_addr: Option<SocketAddr>,
    /// The HQ console (HTTPS, HQ client certificates), as `central serve` runs it with
    /// `[console]`.
    pub console_addr: SocketAddr,
    pub audit: SecurityAudit,
    pub data_dir: PathBuf,
    stop_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// What a test hub knows beside its store: the dealer registry, a revocation list, its clock.
struct HubSetup {
    registry: hamgam_central::rules::registry::DealerRegistry,
    crl: Option<hamgam_gateway::revocation::CrlReload>,
    clock: Clock,
}

impl TestHub {
    /// Starts a hub on a free port.
    pub async fn start(pki: &TestPki, data_dir: &Path) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_on(pki, data_dir, listener).await
    }

    /// Starts a hub on an already bound listener.
    pub async fn start_on(pki: &TestPki, data_dir: &Path, listener: TcpListener) -> TestHub {
        Self::start_with(pki, data_dir, listener, Default::default(), test_clock()).await
    }

    /// Starts a hub on a free port whose clock is `clock` (a test on a date it chooses; its
    /// agents stamp and sync by the same clock), knowing the dealers of `registry`.
    pub async fn start_at(
        pki: &TestPki,
        data_dir: &Path,
        registry: hamgam_central::rules::registry::DealerRegistry,
        clock: Clock,
    ) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_with(pki, data_dir, listener, registry, clock).await
    }

    /// Starts a hub on a free port that knows the dealers of `registry`.
    pub async fn start_with_registry(
        pki: &TestPki,
        data_dir: &Path,
        registry: hamgam_central::rules::registry::DealerRegistry,
    ) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_with(pki, data_dir, listener, registry, test_clock()).await
    }

    async fn start_with(
        pki: &TestPki,
        data_dir: &Path,
        listener: TcpListener,
        registry: hamgam_central::rules::registry::DealerRegistry,
        clock: Clock,
    ) -> TestHub {
        let store = SledStore::open(data_dir, 64 * 1024 * 1024).expect("hub store opens");
        let store = Arc::new(store);
        Self::serve_with(
            pki,
            store,
            data_dir,
            listener,
            HubSetup {
                registry,
                crl: None,
                clock,
            },
            |_| {},
        )
        .await
    }

    /// Serves an already open store (kept in `data_dir`) that knows the dealers of `registry`.
    pub async fn serve(
        pki: &TestPki,
        store: Arc<SledStore>,
        data_dir: &Path,
        listener: TcpListener,
        registry: hamgam_central::rules::registry::DealerRegistry,
    ) -> TestHub {
        Self::serve_with(
            pki,
            store,
            data_dir,
            listener,
            HubSetup {
                registry,
                crl: None,
                clock: test_clock(),
            },
            |_| {},
        )
        .await
    }

    /// Starts a hub on a free port with options changed by `adjust` (short timeouts, tight
    /// per-dealer limits).
    pub async fn start_adjusted(
        pki: &TestPki,
        data_dir: &Path,
        adjust: impl FnOnce(&mut ServeOptions),
    ) -> TestHub {
        Self::start_sized(pki, data_dir, 64 * 1024 * 1024, adjust).await
    }

    /// As [`TestHub::start_adjusted`], with a store cache of `cache_bytes` (the bench runs
    /// the hub with `central serve`'s default, 256 MiB).
    pub async fn start_sized(
        pki: &TestPki,
        data_dir: &Path,
        cache_bytes: u64,
        adjust: impl FnOnce(&mut ServeOptions),
    ) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let store = SledStore::open(data_dir, cache_bytes).expect("hub store opens");
        let registry = Default::default();
        Self::serve_with(
            pki,
            Arc::new(store),
            data_dir,
            listener,
            HubSetup {
                registry,
                crl: None,
                clock: test_clock(),
            },
            adjust,
        )
        .await
    }

    /// Starts a hub on a free port whose edge checks (and re-reads) a revocation list.
    pub async fn start_with_crl(
        pki: &TestPki,
        data_dir: &Path,
        crl: hamgam_gateway::revocation::CrlReload,
    ) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let store = SledStore::open(data_dir, 64 * 1024 * 1024).expect("hub store opens");
        let registry = Default::default();
        Self::serve_with(
            pki,
            Arc::new(store),
            data_dir,
            listener,
            HubSetup {
                registry,
                crl: Some(crl),
                clock: test_clock(),
            },
            |_| {},
        )
        .await
    }

    async fn serve_with(
        pki: &TestPki,
        store: Arc<SledStore>,
        data_dir: &Path,
        listener: TcpListener,
        setup: HubSetup,
        adjust: impl FnOnce(&mut ServeOptions),
    ) -> TestHub {
        let HubSetup {
            registry,
            crl,
            clock,
        } = setup;
        let addr = listener.local_addr().expect("local addr");
        let hub = Arc::new(Hub::with_rules(store, Default::default(), registry).with_clock(clock));
        let audit = SecurityAudit::new();
        let tls = match &crl {
            None => pki.hub_tls(),
            Some(crl) => tls::server_config_with(&pki.hub_material(), crl.verifier.clone())
                .expect("server config"),
        };
        let mut options = ServeOptions {
            edge: EdgeConfig::new(tls, TRUST_DOMAIN),
            limits: SessionLimits::default(),
            dealer_limits: Default::default(),
            max_streams_per_connection: 32,
            max_message_bytes: 16 * 1024 * 1024,
            grace: Duration::from_secs(10),
            lifecycle: Default::default(),
            crl,
            sync_metrics: Default::default(),
            registry_watch: None,
            enrolment: None,
        };
        adjust(&mut options);
        let registry_changes = hub.registry_changes();
        // Every test hub serves its metrics too, as `central serve` does with `[metrics]`.
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_addr = metrics_listener.local_addr().expect("metrics addr");
        let render = hamgam_central::metrics::render(
            hub.clone(),
            options.sync_metrics.clone(),
            audit.clone(),
            data_dir.to_owned(),
        );
        let metrics_stop = tokio_util::sync::CancellationToken::new();
        let metrics = tokio::spawn(hamgam_gateway::metrics::serve(
            metrics_listener,
            render,
            metrics_stop.clone().cancelled_owned(),
        ));
        let console_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let console_addr = console_listener.local_addr().expect("console addr");
        let console_router =
            hamgam_central::console::router(hub.clone(), options.lifecycle.clone())
                .expect("console templates");
        let console = tokio::spawn(hamgam_central::console::serve(
            console_listener,
            console_router,
            hamgam_central::console::tls(&options.edge.tls),
            TRUST_DOMAIN.to_owned(),
            metrics_stop.clone(),
        ));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let enrolment_stop = tokio_util::sync::CancellationToken::new();
        let enrolment_addr = match options.enrolment.clone() {
            Some(setup) => {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("enrolment addr");
                let material = pki.hub_material();
                let edge = EdgeConfig::new(
                    hamgam_gateway::enrolment_tls::server_config(
                        &material.cert_pem,
                        &material.key_pem,
                        &material.ca_pem,
                    )
                    .expect("enrolment TLS"),
                    TRUST_DOMAIN,
                );
                tokio::spawn(server::run_enrolment(
                    listener,
                    hub.clone(),
                    setup,
                    edge,
                    audit.clone(),
                    enrolment_stop.clone().cancelled_owned(),
                ));
                Some(addr)
            }
            None => None,
        };
        let serve_audit = audit.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stop_rx.await;
                enrolment_stop.cancel();
            };
            server::run(listener, hub, options, serve_audit, shutdown)
                .await
                .expect("hub serves");
            metrics_stop.cancel();
            let _ = metrics.await;
            let _ = console.await;
        });
        TestHub {
            addr,
            metrics_addr,
            registry_changes,
            enrolment_addr,
            console_addr,
            audit,
            data_dir: data_dir.to_owned(),
            stop_tx: Some(stop_tx),
            task: Some(task),
        }
    }

    /// What the hub's security events of `kind` said, oldest first.
    pub fn event_details(&self, kind: hamgam_gateway::audit::SecurityEventKind) -> Vec<String> {
        self.audit
            .recent()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.detail)
            .collect()
    }

    /// Waits (up to `secs`, then fails the test) until a security event of `kind` whose detail
    /// contains `words` has been recorded; returns that detail.
    pub async fn wait_for_event(
        &self,
        secs: u64,
        kind: hamgam_gateway::audit::SecurityEventKind,
        words: &str,
    ) -> String {
        within(secs, &format!("a {kind:?} event saying `{words}`"), async {
            loop {
                let seen = self.audit.count(kind);
                if let Some(detail) = self
                    .event_details(kind)
                    .into_iter()
                    .find(|d| d.contains(words))
                {
                    return detail;
                }
                self.audit.wait_for(kind, seen + 1).await;
            }
        })
        .await
    }

    /// Stops the hub gracefully and waits until its store is closed (so it can be reopened).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("hub task");
        }
    }
}

/// Every record the hub holds for `dealer_id`, through the HQ API, all pages.
pub async fn hub_records(
    client: &mut HqServiceClient<tonic::transport::Channel>,
    dealer_id: &str,
) -> Vec<hq::StoredRecord> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_dealer_records(hq::ListDealerRecordsRequest {
                dealer_id: dealer_id.into(),
                page_size: 1000,
                page_token,
                quarantined_only: false,
            })
            .await
            .expect("ListDealerRecords")
            .into_inner();
        out.extend(page.records);
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

/// Every record in an agent's store, ascending by seq.
pub fn agent_records(store: &AgentStore) -> Vec<pb::Record> {
    store
        .records_after_blocking(0, usize::MAX)
        .expect("agent records")
}

/// Session options for tests: the defaults, with timeouts short enough to fail fast.
pub fn session_options() -> SessionOptions {
    SessionOptions {
        ack_timeout: Duration::from_secs(20),
        clock: test_clock(),
        ..SessionOptions::default()
    }
}

/// A well-formed payload, cycling through the kinds of record a dealership makes.
pub fn sample_payload(i: u64) -> Payload {
    let now = 1_760_000_000_000 + i as i64 * 60_000;
    let customer_ref = format!("C-{}", i / 5);
    let vin = format!("NAAP{:013}", i);
    match i % 5 {
        0 => Payload::Customer(pb::CustomerUpsert {
            customer_ref,
            party_type: pb::PartyType::Person as i32,
            segment: pb::CustomerSegment::B2c as i32,
            national_id: format!("{:010}", 1_000_000_000 + i),
            given_name: "زهرا".into(),
            family_name: format!("کریمی {i}"),
            mobile: format!("0912{:07}", i),
            address: Some(pb::Address {
                city: "تهران".into(),
                postal_code: "1234567890".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        1 => Payload::RetailDelivery(pb::RetailDelivery {
            deal_ref: format!("DL-{i}"),
            vin,
            model_code: "SRN".into(),
            model_name: "Shahin".into(),
            model_year: 2026,
            sale_date: Some(pb::Date {
                year: 2026,
                month: 3,
                day: 1,
            }),
            delivery_date: Some(pb::Date {
                year: 2026,
                month: 3,
                day: 10,
            }),
            odometer_km: 12,
            sale_category: pb::SaleCategory::Retail as i32,
            salesperson_id: "SP-1".into(),
            parties: vec![
                pb::DeliveryParty {
                    role: pb::PartyRole::Buyer as i32,
                    customer_ref: customer_ref.clone(),
                },
                pb::DeliveryParty {
                    role: pb::PartyRole::Owner as i32,
                    customer_ref,
                },
            ],
        }),
        2 => Payload::RepairOrder(pb::RepairOrder {
            ro_number: format!("RO-{i}"),
            vin,
            owner_ref: customer_ref,
            opened_at_ms: now,
            completed_at_ms: now + 3_600_000,
            odometer_in_km: 15_000,
            odometer_out_km: 15_002,
            advisor_id: "SA-2".into(),
            pay_type: pb::PayType::Customer as i32,
            job_lines: vec![pb::JobLine {
                line_number: 1,
                labor_op_code: "OIL-01".into(),
                complaint: "سرویس دوره‌ای".into(),
                correction: "تعویض روغن و فیلتر".into(),
                technician_id: "T-9".into(),
                actual_hours: 0.8,
                standard_hours: 1.0,
                parts: vec![pb::PartLine {
                    part_number: "P-100".into(),
                    quantity: 1,
                    unit_price_rials: 4_500_000,
                }],
                pay_type: pb::PayType::Customer as i32,
                ..Default::default()
            }],
            total_rials: 9_000_000,
            ..Default::default()
        }),
        3 => Payload::Lead(pb::Lead {
            lead_ref: format!("L-{i}"),
            customer_ref,
            source: pb::LeadSource::ShowroomVisit as i32,
            model_interest: "Shahin".into(),
            contacted_at_ms: now,
            ..Default::default()
        }),
        _ => Payload::Survey(pb::Survey {
            survey_ref: format!("SV-{i}"),
            customer_ref,
            subject: pb::SurveySubject::RepairOrder as i32,
            subject_ref: format!("RO-{}", i - 2),
            submitted_at_ms: now,
            channel: pb::SurveyChannel::Sms as i32,
            csat: 4,
            nps: Some(8),
            ..Default::default()
        }),
    }
}

/// A well-formed record of `dealer_id` at `seq`, as an agent would send it.
pub fn raw_record(dealer_id: &str, seq: u64) -> pb::Record {
    pb::Record {
        record_id: uuid::Uuid::now_v7().to_string(),
        dealer_id: dealer_id.into(),
        seq,
        recorded_at_ms: 1_760_000_000_000,
        hlc: None,
        staff_id: "S-1".into(),
        schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
        withheld: String::new(),
        origin: None,
        payload: Some(sample_payload(seq)),
    }
}

/// Opens a sync stream to `addr` as `identity`, says hello as `hello_dealer`, sends `records` as
/// one batch, and returns the hub's ack, or the error status it ended the stream with.
pub async fn send_batch(
    pki: &TestPki,
    addr: SocketAddr,
    identity: PeerIdentity,
    hello_dealer: &str,
    records: Vec<pb::Record>,
) -> Result<BatchAck, tonic::Status> {
    send_batch_over(pki.endpoint(addr, identity), hello_dealer, records).await
}

/// [`send_batch`] over a given endpoint (its own certificate); a failed connection (a refused
/// handshake) is `UNAVAILABLE` with the transport's words.
pub async fn send_batch_over(
    endpoint: HubEndpoint,
    hello_dealer: &str,
    records: Vec<pb::Record>,
) -> Result<BatchAck, tonic::Status> {
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let hello = AgentHello {
        dealer_id: hello_dealer.into(),
        agent_version: "test".into(),
        agent_time_ms: TEST_NOW_MS,
        verdict_cursor: 0,
        last_seq: 0,
    };
    for body in [
        agent_message::Body::Hello(hello),
        agent_message::Body::Batch(RecordBatch {
            batch_no: 1,
            records,
        }),
    ] {
        tx.send(AgentMessage { body: Some(body) })
            .await
            .expect("queue");
    }
    let mut inbound = DealerSyncClient::new(channel)
        .sync(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    loop {
        match inbound.message().await? {
            Some(HubMessage {
                body: Some(hub_message::Body::BatchAck(ack)),
            }) => return Ok(ack),
            Some(_) => {}
            None => panic!("the hub closed the stream without an ack or an error"),
        }
    }
}

/// Records `count` sample records at an agent.
pub fn record_samples(store: &AgentStore, count: u64) {
    for i in 0..count {
        store.capture("S-1", sample_payload(i)).expect("capture");
    }
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `secs` seconds. A guard
/// against a hang, not a synchronisation: the awaited future is the synchronisation.
pub async fn within<F: std::future::Future>(secs: u64, what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}

/// `GET /metrics` at `addr`: each sample line's name (with labels) and value.
pub fn scrape_metrics(addr: std::net::SocketAddr) -> std::collections::BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.lines()
        .filter(|l| l.starts_with("hamgam_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}
