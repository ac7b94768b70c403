//! HQ's API end to end over mutual TLS: three dealer agents sync a small network built so that
//! every lifecycle stage sits on a threshold boundary; HQ's certificate then calls every RPC and
//! the numbers are checked against hand-computed ones (stage counts and service retention with
//! and without flagged facts, before and after HQ dismisses the flag). A dealer certificate is
//! refused on every HQ RPC and gets only the narrow vehicle lookup, which carries no customer
//! data; the change stream resumes after a disconnect without gaps or repeats.

use futures::StreamExt;
use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::sync::SessionOptions;
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use hamgam_proto::hq::v1::vehicle_lookup_client::VehicleLookupClient;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::history::{delivery, lead, nid, person, repair_order, vin};
use hamgam_tests::{dealer, session_options, TestHub, TestPki};
use tonic::transport::Channel;

const DAY: i64 = 86_400_000;

fn scrapped(vin: &str, at: i64) -> Payload {
    let d = time::OffsetDateTime::from_unix_timestamp(at / 1000).expect("date");
    Payload::VehicleStatus(pb::VehicleStatus {
        vin: vin.into(),
        condition: pb::VehicleCondition::Scrapped as i32,
        effective_on: Some(pb::Date {
            year: d.year(),
            month: u8::from(d.month()) as i32,
            day: d.day() as i32,
        }),
        note: String::new(),
    })
}

/// 2026-11-18 11:06 UTC: the hub, the agents and the reports all run at this moment.
const NOW_MS: i64 = 1_795_000_000_000;

struct Agent {
    store: AgentStore,
    endpoint: hamgam_gateway::client::HubEndpoint,
}

impl Agent {
    async fn sync(&self) {
        let options = SessionOptions {
            clock: hamgam_gateway::Clock::Fixed(NOW_MS),
            ..session_options()
        };
        sync_loop::sync_once(&self.store, &self.endpoint, &options)
            .await
            .expect("syncs");
    }
}

async fn channel(pki: &TestPki, hub: &TestHub, identity: PeerIdentity) -> Channel {
    pki.endpoint(hub.addr, identity)
        .connect()
        .await
        .expect("connects")
}

fn counts(row: &hq::LifecycleRow, trusted: bool) -> [u64; 7] {
    let c = if trusted {
        row.trusted_only.unwrap_or_default()
    } else {
        row.all_facts.unwrap_or_default()
    };
    [
        c.prospect,
        c.new_owner,
        c.never_serviced,
        c.active,
        c.recently_lost,
        c.defected,
        c.former,
    ]
}

fn retention(row: &hq::LifecycleRow, trusted: bool) -> Option<f64> {
    let c = if trusted {
        row.trusted_only.unwrap_or_default()
    } else {
        row.all_facts.unwrap_or_default()
    };
    c.service_retention
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_reads_every_view_with_hand_computed_numbers_and_dealers_only_the_vehicle_lookup() {
    let now = NOW_MS;
    // Reports as of midnight today: dates and times below sit exactly on the thresholds.
    let today = now - now.rem_euclid(DAY);
    let ago = |days: i64| today - days * DAY;
    let ali = nid("001354241");
    // The same national ID as a dealer typed it in Persian digits.
    let persian_ali: String = ali
        .chars()
        .map(|c| char::from_u32('۰' as u32 + c.to_digit(10).expect("digit")).expect("digit"))
        .collect();
    let v: Vec<String> = (1..=7).map(vin).collect();

    let d1 = vec![
        person("C1", "علی", "رضایی", &ali, "09121593574"),
        delivery(&v[0], "C1", ago(180)), // new owner: delivered 180 days ago, no service
        person("C2", "سارا", "محمدی", &nid("002468135"), "09124862179"),
        delivery(&v[1], "C2", ago(181)), // never serviced: one day past new owner
        person("C7", "کیان", "نوری", &nid("003579246"), "09127315948"),
        delivery(&v[5], "C7", ago(900)),
        repair_order("RO-71", &v[5], "C7", ago(100), 30_000),
        scrapped(&v[5], ago(50)), // former: the car is gone
        person("M1", "محمد", "کاظمی", "", "09384617205"),
    ];
    let mut d2 = vec![
        person("C3", "رضا", "احمدی", &nid("004681357"), "09183649251"),
        delivery(&v[2], "C3", ago(400)),
        repair_order("RO-31", &v[2], "C3", ago(365), 8_000), // active: exactly 12 months
        person("C4", "مینا", "کریمی", &nid("005792468"), "09352748169"),
        delivery(&v[3], "C4", ago(800)),
        repair_order("RO-41", &v[3], "C4", ago(731), 2_000), // defected: one day past 24 months
        person("C9", "پری", "صادقی", &nid("006813579"), "09196274853"),
        delivery(&v[6], "C9", ago(400)),
        // Active only through a flagged service: the odometer went back (O01).
        repair_order("RO-91", &v[6], "C9", ago(100), 2),
        person("M2", "محمدا", "کاظمی", "", "09384617205"),
    ];
    if let Payload::RepairOrder(ro) = &mut d2[2] {
        ro.total_rials = 12_500_000;
    }
    let d3 = vec![
        person("C5", "امید", "جعفری", &nid("007924681"), "09901357246"),
        delivery(&v[4], "C5", ago(800)),
        repair_order("RO-51", &v[4], "C5", ago(730), 3_000), // recently lost: exactly 24 months
        person("C6", "ندا", "موسوی", &nid("008135792"), "09213579468"),
        lead("C6", ago(20)), // prospect
        // Ali again, written another way (Arabic letters, Persian digits, +98): linked by ID.
        person("A3", "علي", "رضايي", &persian_ali, "+989121593574"),
        lead("A3", ago(10)),
    ];

    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let clock = hamgam_gateway::Clock::Fixed(now);
    let hub = TestHub::start_at(&pki, &dirs.path().join("hub"), Default::default(), clock).await;
    let mut agents = Vec::new();
    for (id, log) in [("D-1001", d1), ("D-1002", d2), ("D-1003", d3)] {
        let store = AgentStore::open(&dirs.path().join(id), dealer(id))
            .expect("agent store")
            .with_clock(clock);
        store
            .capture_many(log.into_iter().map(|p| ("S-1".to_owned(), p)).collect())
            .expect("captured");
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(id)));
        agents.push(Agent { store, endpoint });
    }
    for agent in &agents {
        agent.sync().await;
    }
    // A reviewer: it takes decisions below (a reader may not; tests/tests/hq_roles.rs).
    let hq_channel = channel(&pki, &hub, PeerIdentity::HqReviewer("quality".into())).await;
    let mut client = HqServiceClient::new(hq_channel.clone());

    // --- search and customer 360 -------------------------------------------------------------
    let by_id = client
        .search_customers(hq::SearchCustomersRequest {
            by: Some(hq::search_customers_request::By::NationalId(
                persian_ali.clone(),
            )),
            ..Default::default()
        })
        .await
        .expect("search by national id")
        .into_inner();
    assert_eq!(by_id.customers.len(), 1, "{by_id:?}");
    let ali_id = by_id.customers[0].customer_id.clone();
    assert_eq!(by_id.customers[0].linked_records, 2);
    for by in [
        hq::search_customers_request::By::Mobile("+98 912 159 3574".into()),
        hq::search_customers_request::By::Mobile("۰۹۱۲۱۵۹۳۵۷۴".into()),
        hq::search_customers_request::By::Name("علي رض".into()),
    ] {
        let found = client
            .search_customers(hq::SearchCustomersRequest {
                by: Some(by.clone()),
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner();
        let ids: Vec<&str> = found
            .customers
            .iter()
            .map(|c| c.customer_id.as_str())
            .collect();
        assert_eq!(ids, vec![ali_id.as_str()], "{by:?}");
    }
    let fuzzy = client
        .search_customers(hq::SearchCustomersRequest {
            by: Some(hq::search_customers_request::By::Name("مینا کریمي".into())),
            fuzzy: true,
            ..Default::default()
        })
        .await
        .expect("fuzzy search")
        .into_inner();
    assert_eq!(fuzzy.customers.len(), 1, "{fuzzy:?}");
    let refused = client
        .search_customers(hq::SearchCustomersRequest {
            by: Some(hq::search_customers_request::By::NationalId("12345".into())),
            ..Default::default()
        })
        .await
        .expect_err("not an ID");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("national_id"),
        "{}",
        refused.message()
    );

    let ali_360 = client
        .get_customer(hq::GetCustomerRequest {
            customer_id: ali_id.clone(),
            as_of_ms: today,
        })
        .await
        .expect("360")
        .into_inner();
    assert_eq!(ali_360.linked.len(), 2);
    let national = ali_360
        .fields
        .iter()
        .find(|f| f.field == "national_id")
        .expect("golden national id");
    assert_eq!(national.value, ali);
    assert!(national.source.is_some());
    let lifecycle = ali_360.lifecycle.expect("lifecycle");
    assert_eq!(lifecycle.stage(), hq::Stage::NewOwner);
    assert_eq!(ali_360.vehicles.len(), 1);
    assert_eq!(ali_360.vehicles[0].vin, v[0]);
    assert!(ali_360.vehicles[0].held);
    let kinds: Vec<(&str, &str)> = ali_360
        .timeline
        .iter()
        .map(|t| (t.dealer_id.as_str(), t.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![("D-1001", "retail-delivery"), ("D-1003", "lead")]
    );
    assert!(
        ali_360.conflicts.iter().all(|c| c.field != "name"),
        "spellings of one name are no conflict: {:?}",
        ali_360.conflicts
    );

    // --- vehicle history and flags --------------------------------------------------------------
    let pari_car = client
        .get_vehicle_history(hq::GetVehicleHistoryRequest { vin: v[6].clone() })
        .await
        .expect("vehicle history")
        .into_inner();
    assert_eq!(pari_car.sold_by, "D-1002");
    assert_eq!(pari_car.services.len(), 1);
    let readings: Vec<(u32, bool)> = pari_car
        .odometer
        .iter()
        .map(|o| (o.km, o.rule_ids.iter().any(|r| r == "O01")))
        .collect();
    assert_eq!(
        readings,
        vec![(5, false), (2, true)],
        "the rollback is marked"
    );
    let o01 = client
        .list_flags(hq::ListFlagsRequest {
            rule_id: "O01".into(),
            status: hq::FlagStatus::Open as i32,
            ..Default::default()
        })
        .await
        .expect("list flags")
        .into_inner();
    assert_eq!(o01.flags.len(), 1, "{o01:?}");
    let flagged_ro = o01.flags[0].clone();
    assert_eq!(flagged_ro.dealer_id, "D-1002");
    let by_dealer = client
        .list_flags(hq::ListFlagsRequest {
            dealer_id: "D-1001".into(),
            rule_id: "O01".into(),
            ..Default::default()
        })
        .await
        .expect("list flags")
        .into_inner();
    assert!(by_dealer.flags.is_empty());

    // --- lifecycle at every threshold, with and without the flagged service ----------------------
    let report = |client: &mut HqServiceClient<Channel>, by: hq::GroupBy| {
        let mut client = client.clone();
        async move {
            client
                .lifecycle_report(hq::LifecycleReportRequest {
                    group_by: by as i32,
                    as_of_ms: today,
                    filter: None,
                })
                .await
                .expect("lifecycle report")
                .into_inner()
        }
    };
    let by_dealer = report(&mut client, hq::GroupBy::Dealer).await;
    let total = by_dealer.total.clone().expect("total");
    // prospect, new owner, never serviced, active, recently lost, defected, former
    // The two records HQ must review were registered today, after `as_of`, and are contacts
    // of nobody: no stage. A registration alone is not a contact.
    assert_eq!(counts(&total, false), [1, 1, 1, 2, 1, 1, 1]);
    assert_eq!(counts(&total, true), [1, 1, 2, 1, 1, 1, 1]);
    assert_eq!(retention(&total, false), Some(2.0 / 5.0));
    assert_eq!(retention(&total, true), Some(1.0 / 5.0));
    let rows: Vec<(&str, u64)> = by_dealer
        .rows
        .iter()
        .map(|r| (r.group.as_str(), r.customers))
        .collect();
    assert_eq!(rows, vec![("D-1001", 3), ("D-1002", 3), ("D-1003", 2)]);
    let by_model = report(&mut client, hq::GroupBy::Model).await;
    assert!(by_model.rows.iter().any(|r| r.group == "Model"));

    // HQ dismisses the rollback flag: the record's verdict changes at its dealer, and the
    // clean-facts numbers now count the service.
    let reviewed = client
        .review_flag(hq::ReviewFlagRequest {
            dealer_id: flagged_ro.dealer_id.clone(),
            seq: flagged_ro.seq,
            rule_id: "O01".into(),
            status: hq::FlagStatus::Dismissed as i32,
            comment: "odometer replaced, paperwork seen".into(),
            reviewer: String::new(),
        })
        .await
        .expect("review flag")
        .into_inner();
    let verdict = reviewed.verdict.expect("verdict");
    assert_eq!(verdict.outcome(), pb::Outcome::Accepted);
    assert_eq!(verdict.version, 2);
    agents[1].sync().await;
    let at_dealer = agents[1]
        .store
        .verdicts()
        .expect("verdicts")
        .into_iter()
        .find(|v| v.seq == flagged_ro.seq)
        .expect("the dealer has the verdict");
    assert_eq!(at_dealer.version, 2);
    assert!(at_dealer.findings.is_empty());
    let after = report(&mut client, hq::GroupBy::Dealer).await;
    assert_eq!(
        retention(after.total.as_ref().expect("total"), true),
        Some(2.0 / 5.0)
    );
    let dismissed = client
        .list_flags(hq::ListFlagsRequest {
            rule_id: "O01".into(),
            status: hq::FlagStatus::Dismissed as i32,
            ..Default::default()
        })
        .await
        .expect("list flags")
        .into_inner();
    assert_eq!(dismissed.flags.len(), 1);
    assert_eq!(
        dismissed.flags[0].review_comment,
        "odometer replaced, paperwork seen"
    );
    assert!(
        dismissed.flags[0].reviewed_by.contains("quality"),
        "the log names the certificate: {}",
        dismissed.flags[0].reviewed_by
    );

    // --- conflicts, identity reviews, decisions ------------------------------------------------------
    let reviews = client
        .list_identity_reviews(hq::ListIdentityReviewsRequest::default())
        .await
        .expect("reviews")
        .into_inner();
    assert_eq!(reviews.reviews.len(), 1, "{reviews:?}");
    let pair = reviews.reviews[0].clone();
    client
        .decide(hq::DecideRequest {
            decision: Some(hq::decide_request::Decision::Link(hq::PartyPair {
                a: pair.a.clone(),
                b: pair.b.clone(),
            })),
            ..Default::default()
        })
        .await
        .expect("link");
    // The linked pair's two names are now a conflict on one customer, under the subject
    // hq.proto documents.
    let conflicts = client
        .list_conflicts(hq::ListConflictsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .expect("conflicts")
        .into_inner();
    let name = conflicts
        .conflicts
        .iter()
        .find(|c| c.field == "name")
        .expect("the name conflict");
    let m_id = name
        .subject
        .strip_prefix("customer:")
        .expect("subject as hq.proto says");
    let taken = client
        .decide(hq::DecideRequest {
            decision: Some(hq::decide_request::Decision::ConfirmCustomerField(
                hq::ConfirmCustomerField {
                    customer_id: m_id.to_owned(),
                    field: "name".into(),
                    value: "محمد کاظمی".into(),
                },
            )),
            comment: "checked the ID card".into(),
            reviewer: String::new(),
        })
        .await
        .expect("decide")
        .into_inner();
    assert!(taken.verdicts_changed >= 1, "{taken:?} after {name:?}");
    let open = client
        .list_conflicts(hq::ListConflictsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .expect("conflicts")
        .into_inner();
    assert!(
        !open.conflicts.iter().any(|c| c.field == "name"),
        "{open:?}"
    );
    // Paging one conflict at a time ends and lists what one page lists.
    let whole = client
        .list_conflicts(hq::ListConflictsRequest::default())
        .await
        .expect("conflicts")
        .into_inner();
    assert!(whole.next_page_token.is_empty());
    let mut paged = Vec::new();
    let mut token = String::new();
    for _ in 0..=whole.conflicts.len() {
        let page = client
            .list_conflicts(hq::ListConflictsRequest {
                open_only: false,
                page_size: 1,
                page_token: token.clone(),
            })
            .await
            .expect("conflicts")
            .into_inner();
        paged.extend(page.conflicts);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert!(token.is_empty(), "paging ends");
    assert_eq!(paged, whole.conflicts);
    let unknown = client
        .decide(hq::DecideRequest {
            decision: Some(hq::decide_request::Decision::Detach(hq::PartyRef {
                dealer_id: "D-1001".into(),
                customer_ref: "NOBODY".into(),
            })),
            ..Default::default()
        })
        .await
        .expect_err("unknown party");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("NOBODY"),
        "{}",
        unknown.message()
    );

    // --- scorecard and export -----------------------------------------------------------------------
    // The decisions' verdict changes (H01 on D-1002's M2) reach the agents.
    for agent in &agents {
        agent.sync().await;
    }
    let card = client
        .get_scorecard(hq::GetScorecardRequest {
            dealer_id: "D-1002".into(),
            as_of_ms: 0,
        })
        .await
        .expect("scorecard")
        .into_inner();
    assert_eq!(card.records, 10);
    let volumes: Vec<(&str, u64)> = card
        .volumes
        .iter()
        .map(|v| (v.kind.as_str(), v.records))
        .collect();
    assert_eq!(
        volumes,
        vec![("customer", 4), ("repair-order", 3), ("retail-delivery", 3)]
    );
    assert_eq!(
        card.verdict_backlog, 0,
        "the agent acknowledged its verdicts"
    );
    // The hub received everything today: windows ending in earlier weeks hold no records.
    let trend: Vec<i64> = card.trend.iter().map(|p| p.day_ms).collect();
    assert_eq!(trend, vec![today]);
    let mut export = client
        .export(hq::ExportRequest {
            kind: hq::ExportKind::Vehicles as i32,
            ..Default::default()
        })
        .await
        .expect("export")
        .into_inner();
    let mut vehicles = 0;
    while let Some(item) = export.next().await {
        item.expect("export item");
        vehicles += 1;
    }
    assert_eq!(vehicles, 7);
    let mut export = client
        .export(hq::ExportRequest {
            kind: hq::ExportKind::Customers as i32,
            as_of_ms: today,
        })
        .await
        .expect("export")
        .into_inner();
    let (mut customers, mut unknown_stage) = (0, 0);
    while let Some(item) = export.next().await {
        let Some(hq::export_item::Item::Customer(c)) = item.expect("export item").item else {
            panic!("a customer export holds customers");
        };
        customers += 1;
        // Every customer's stage in bulk, as of the date asked: what GetCustomer says of each.
        assert_eq!(c.as_of_ms, today);
        let one = client
            .get_customer(hq::GetCustomerRequest {
                customer_id: c.customer_id.clone(),
                as_of_ms: today,
            })
            .await
            .expect("360")
            .into_inner();
        assert_eq!(c.lifecycle, one.lifecycle, "{}", c.customer_id);
        let stages = c.lifecycle.as_ref().expect("lifecycle");
        unknown_stage += usize::from(stages.stage() == hq::Stage::Unspecified);
    }
    assert_eq!(customers, 9, "ten customers, two of them linked by HQ");
    assert_eq!(unknown_stage, 1, "only Mohammad (M1/M2) made no contact");

    // --- health and reflection with an HQ certificate --------------------------------------------
    let health = tonic_health::pb::health_client::HealthClient::new(hq_channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "hamgam.hq.v1.HqService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            hq_channel.clone(),
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .next()
        .await
        .expect("an answer")
        .expect("reflection answer");
    let listed = format!("{answer:?}");
    for service in [
        "hamgam.hq.v1.HqService",
        "hamgam.hq.v1.VehicleLookup",
        "hamgam.sync.v1.DealerSync",
    ] {
        assert!(listed.contains(service), "{service} listed: {listed}");
    }

    // --- a dealer certificate: refused everywhere but the narrow lookup ---------------------------
    let dealer_channel = channel(&pki, &hub, PeerIdentity::Dealer(dealer("D-1003"))).await;
    let mut as_dealer = HqServiceClient::new(dealer_channel.clone());
    let mut refusals = Vec::new();
    refusals.push(
        as_dealer
            .list_dealers(hq::ListDealersRequest {})
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .list_dealer_records(hq::ListDealerRecordsRequest {
                dealer_id: "D-1002".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .get_customer(hq::GetCustomerRequest {
                customer_id: ali_id.clone(),
                as_of_ms: 0,
            })
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .search_customers(hq::SearchCustomersRequest {
                by: Some(hq::search_customers_request::By::Mobile(
                    "09121593574".into(),
                )),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .get_vehicle_history(hq::GetVehicleHistoryRequest { vin: v[2].clone() })
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .list_flags(hq::ListFlagsRequest::default())
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .review_flag(hq::ReviewFlagRequest {
                dealer_id: "D-1003".into(),
                seq: 1,
                rule_id: "C07".into(),
                status: hq::FlagStatus::Dismissed as i32,
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .list_conflicts(hq::ListConflictsRequest::default())
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .list_identity_reviews(hq::ListIdentityReviewsRequest::default())
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .decide(hq::DecideRequest::default())
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .get_scorecard(hq::GetScorecardRequest {
                dealer_id: "D-1002".into(),
                as_of_ms: 0,
            })
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .lifecycle_report(hq::LifecycleReportRequest::default())
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .stream_changes(hq::StreamChangesRequest::default())
            .await
            .map(|_| ()),
    );
    refusals.push(
        as_dealer
            .export(hq::ExportRequest {
                kind: hq::ExportKind::Customers as i32,
                ..Default::default()
            })
            .await
            .map(|_| ()),
    );
    assert_eq!(refusals.len(), 14, "every HqService RPC");
    for (i, r) in refusals.into_iter().enumerate() {
        let status = r.expect_err("a dealer certificate is refused");
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "RPC {i}: {status:?}"
        );
    }
    let summary = VehicleLookupClient::new(dealer_channel)
        .get_service_summary(hq::GetServiceSummaryRequest { vin: v[2].clone() })
        .await
        .expect("the narrow lookup")
        .into_inner();
    assert_eq!(summary.visits.len(), 1);
    assert_eq!(summary.visits[0].dealer_id, "D-1002");
    assert_eq!(summary.last_odometer_km, 8_000);
    let text = serde_json::to_string(&summary).expect("json");
    for private in [
        "C3",
        "رضا",
        "احمدی",
        "09183649251",
        "9183649251",
        &nid("004681357"),
    ] {
        assert!(
            !text.contains(private),
            "the lookup leaks {private:?}: {text}"
        );
    }

    // --- the change stream resumes without gaps or repeats ---------------------------------------
    let all: Vec<u64> = client
        .stream_changes(hq::StreamChangesRequest {
            after_cursor: 0,
            follow: false,
        })
        .await
        .expect("changes")
        .into_inner()
        .map(|e| e.expect("event").cursor)
        .collect()
        .await;
    assert!(all.len() > 40, "{}", all.len());
    assert_eq!(all, (1..=all.len() as u64).collect::<Vec<_>>());
    let middle = all[all.len() / 2];
    let mut received = Vec::new();
    {
        let mut first = client
            .stream_changes(hq::StreamChangesRequest {
                after_cursor: middle,
                follow: true,
            })
            .await
            .expect("changes")
            .into_inner();
        for _ in 0..5 {
            received.push(first.next().await.expect("event").expect("event").cursor);
        }
        // The client goes away mid-stream.
    }
    // New facts arrive while nobody listens: a repair order at D-1003 for Ali's car.
    agents[2]
        .store
        .capture_many(vec![(
            "S-1".into(),
            repair_order("RO-11", &v[0], "A3", ago(1), 900),
        )])
        .expect("captured");
    agents[2].sync().await;
    let resumed_from = *received.last().expect("received");
    let mut second = client
        .stream_changes(hq::StreamChangesRequest {
            after_cursor: resumed_from,
            follow: true,
        })
        .await
        .expect("changes")
        .into_inner();
    let mut saw_new_record = false;
    while !saw_new_record {
        let event = hamgam_tests::within(10, "the new repair order on the stream", second.next())
            .await
            .expect("event")
            .expect("event");
        saw_new_record = matches!(
            &event.change,
            Some(hq::change_event::Change::RecordStored(r))
                if r.record.as_ref().is_some_and(|x| x.dealer_id == "D-1003")
                    && matches!(r.record.as_ref().and_then(|x| x.payload.as_ref()), Some(Payload::RepairOrder(_)))
        );
        received.push(event.cursor);
    }
    let expected: Vec<u64> = (middle + 1..=*received.last().expect("last")).collect();
    assert_eq!(received, expected, "no gap, no repeat across the reconnect");

    hub.stop().await;
}
