//! HQ's customer questions end to end over mutual TLS, against a hand count: two dealer agents
//! sync a small network built so that each figure has a known answer (a web lead that becomes a
//! delivery, a lead nobody followed up, a complaint reopened, a case open past its SLA, a survey
//! a staff member entered that leaves the trusted-only figures, a delivery on the last day of a
//! quarter, a vehicle due by km and one due by time, a customer about to be lost, a fleet
//! account, each segment). HQ's certificate calls every new RPC; a dealer's is refused on each.

use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use hamgam_tests::history::nid;
use hamgam_tests::hq_network::{self, ago, on, DAY, HOUR, TODAY};
use hamgam_tests::{dealer, TestHub, TestPki};

fn filter() -> Option<hq::CustomerFilter> {
    Some(hq::CustomerFilter::default())
}

async fn search_id(client: &mut HqServiceClient<tonic::transport::Channel>, id: &str) -> String {
    let found = client
        .search_customers(hq::SearchCustomersRequest {
            by: Some(hq::search_customers_request::By::NationalId(nid(id))),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    assert_eq!(found.customers.len(), 1, "{found:?}");
    found.customers[0].customer_id.clone()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_customer_question_equals_the_hand_count_and_dealers_are_refused() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let clock = hamgam_gateway::Clock::Fixed(hq_network::NOW_MS);
    let hub = TestHub::start_at(&pki, &dirs.path().join("hub"), Default::default(), clock).await;
    hq_network::sync(&pki, &hub, dirs.path()).await;
    let mut client = pki.hq_client(hub.addr).await;
    let c1 = search_id(&mut client, "001354241").await;
    let c2 = search_id(&mut client, "002468135").await;
    let c5 = search_id(&mut client, "007924681").await;
    let c6 = search_id(&mut client, "008135792").await;

    // --- one customer's journey ---------------------------------------------------------------
    let journey = client
        .get_customer_journey(hq::GetCustomerJourneyRequest {
            customer_id: c1.clone(),
            as_of_ms: TODAY,
            trusted_only: false,
        })
        .await
        .expect("journey")
        .into_inner();
    let kinds: Vec<(&str, &str)> = journey
        .touchpoints
        .iter()
        .map(|t| (t.kind.as_str(), t.channel.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("lead", "web"),
            ("delivery", "dealership"),
            ("complaint", "dealership"),
            ("complaint", "dealership"),
            ("complaint", "dealership"),
            ("complaint", "dealership"),
            ("complaint", "dealership"),
            ("service", "dealership"),
            ("survey", "sms"),
            ("survey", "phone"),
        ]
    );
    assert_eq!(journey.touchpoints[0].days_since_previous, None);
    assert!(close(journey.touchpoints[1].days_since_previous, 10.0));
    assert!(close(journey.touchpoints[7].days_since_previous, 20.0));
    assert!(journey.touchpoints.iter().all(|t| t.dealer_id == "D-1001"));

    // --- journeys across customers -------------------------------------------------------------
    let journeys = client
        .journey_report(hq::JourneyReportRequest {
            as_of_ms: TODAY,
            filter: filter(),
        })
        .await
        .expect("journey report")
        .into_inner();
    let all = journeys.all_facts.clone().expect("all facts");
    assert_eq!(all.customers, 7);
    // C1, C3, C5 and C7 came first as a lead; C3 and C7 never bought.
    assert_eq!(all.first_contact_without_purchase, 4);
    assert_eq!(all.never_purchased, 2);
    assert!(close(all.first_contact_without_purchase_share, 4.0 / 7.0));
    let conv = |rows: &[hq::Conversion], g: &str| {
        rows.iter()
            .find(|c| c.group == g)
            .map(|c| (c.leads, c.converted, c.median_days_to_delivery))
            .unwrap_or_else(|| panic!("no row {g} in {rows:?}"))
    };
    assert_eq!(conv(&all.by_channel, "web"), (2, 1, Some(10.0)));
    assert_eq!(conv(&all.by_channel, "call"), (1, 0, None));
    assert_eq!(conv(&all.by_channel, "test_drive"), (1, 1, Some(11.0)));
    assert_eq!(conv(&all.by_dealer, "D-1001"), (2, 1, Some(10.0)));
    assert_eq!(conv(&all.by_dealer, "D-1002"), (2, 1, Some(11.0)));
    let prospects = all
        .channels_by_stage
        .iter()
        .find(|s| s.stage == hq::Stage::Prospect as i32)
        .expect("prospects' channels");
    let web = prospects.channels.iter().find(|c| c.channel == "web");
    // The first leads of C1, C5 (test drive), C7, C3 (call), C3's complaint.
    assert_eq!(web.map(|c| c.touchpoints), Some(2), "{prospects:?}");

    // --- tenure by segment, and the cohorts -----------------------------------------------------
    let tenure = client
        .tenure_report(hq::TenureReportRequest {
            group_by: hq::GroupBy::Segment as i32,
            as_of_ms: TODAY,
            filter: filter(),
        })
        .await
        .expect("tenure")
        .into_inner();
    let row = |g: &str| {
        tenure
            .rows
            .iter()
            .find(|r| r.group == g)
            .and_then(|r| r.all_facts)
            .unwrap_or_else(|| panic!("no {g} row in {:?}", tenure.rows))
    };
    let days = |from: i64| ((TODAY - from) / DAY) as f64;
    let b2c = [400.0, 100.0, days(on(2025, 9, 20)), 700.0, 5.0];
    assert_eq!(row("B2C").customers, 5);
    assert!(close(
        row("B2C").mean_tenure_days,
        b2c.iter().sum::<f64>() / 5.0
    ));
    assert!(close(row("B2C").median_tenure_days, 400.0));
    assert!(close(row("B2B").median_tenure_days, 500.0));
    assert!(close(row("B2G").median_tenure_days, days(on(2025, 9, 30))));
    let cohorts: Vec<(String, u64, Vec<f64>)> = tenure
        .cohorts
        .iter()
        .map(|c| (c.cohort.clone(), c.customers, c.still_active.clone()))
        .collect();
    assert_eq!(
        cohorts,
        vec![
            // C6 (2024-12-18), serviced 15 days before its first anniversary.
            ("2024-Q4".to_owned(), 1, vec![1.0]),
            // C2 (2025-07-06) and C4, delivered on 2025-09-30: the quarter's last day.
            ("2025-Q3".to_owned(), 2, vec![1.0]),
            // C1 (2025-10-24) and C5 (2025-10-01): never serviced in their first year.
            ("2025-Q4".to_owned(), 2, vec![0.0]),
        ]
    );
    let b2b_only = client
        .tenure_report(hq::TenureReportRequest {
            group_by: hq::GroupBy::Role as i32,
            as_of_ms: TODAY,
            filter: Some(hq::CustomerFilter {
                segment: hq::Segment::B2b as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("tenure of B2B by role")
        .into_inner();
    let groups: Vec<&str> = b2b_only.rows.iter().map(|r| r.group.as_str()).collect();
    // The fleet account took delivery, and its repair order names it as the owner.
    assert_eq!(groups, vec!["fleet_account", "owner"]);

    // --- lifecycle by role, filtered ------------------------------------------------------------
    let fleet = client
        .lifecycle_report(hq::LifecycleReportRequest {
            group_by: hq::GroupBy::Segment as i32,
            as_of_ms: TODAY,
            filter: Some(hq::CustomerFilter {
                role: hq::Role::FleetAccount as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("lifecycle of fleet accounts")
        .into_inner();
    let total = fleet.total.expect("total");
    assert_eq!(total.customers, 1);
    assert_eq!(total.all_facts.map(|c| c.recently_lost), Some(1));
    assert_eq!(
        fleet
            .rows
            .iter()
            .map(|r| r.group.as_str())
            .collect::<Vec<_>>(),
        vec!["B2B"]
    );

    // --- service due, paged ---------------------------------------------------------------------
    let page = |token: &str| hq::ListServiceDueRequest {
        as_of_ms: TODAY,
        filter: filter(),
        trusted_only: false,
        page_size: 1,
        page_token: token.into(),
    };
    let first = client
        .list_service_due(page(""))
        .await
        .expect("due")
        .into_inner();
    assert_eq!(first.total, 2);
    let due = &first.due[0];
    assert_eq!(
        (due.customer_id.as_str(), due.due_by.as_str()),
        (c2.as_str(), "km")
    );
    assert_eq!(due.due_since_ms, ago(350));
    assert_eq!(
        (due.km_at_since, due.projected_km),
        (Some(20_005), Some(100_005))
    );
    assert_eq!(due.last_dealer_id, "D-1001");
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_service_due(page(&first.next_page_token))
        .await
        .expect("due, page 2")
        .into_inner();
    let due = &second.due[0];
    assert_eq!(
        (due.customer_id.as_str(), due.due_by.as_str()),
        (c5.as_str(), "time")
    );
    assert_eq!(due.due_since_ms, on(2026, 10, 1));
    assert_eq!(due.last_service_ms, None);
    assert!(close(Some(due.days_overdue), days(on(2026, 10, 1))));
    assert!(second.next_page_token.is_empty());

    // --- churn risk -----------------------------------------------------------------------------
    let risk = client
        .list_churn_risk(hq::ListChurnRiskRequest {
            as_of_ms: TODAY,
            within_days: 30,
            ..Default::default()
        })
        .await
        .expect("churn risk")
        .into_inner();
    let risks: Vec<(&str, i64, &str)> = risk
        .customers
        .iter()
        .map(|c| {
            (
                c.customer_id.as_str(),
                c.crosses_at_ms,
                c.last_dealer_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        risks,
        vec![(c6.as_str(), ago(350) + 365 * DAY + 1, "D-1002")]
    );
    let sooner = client
        .list_churn_risk(hq::ListChurnRiskRequest {
            as_of_ms: TODAY,
            within_days: 14,
            ..Default::default()
        })
        .await
        .expect("churn risk in 14 days")
        .into_inner();
    assert_eq!(sooner.total, 0, "C6 crosses in 15 days");

    // --- complaints by category -----------------------------------------------------------------
    let complaints = client
        .complaint_report(hq::CaseReportRequest {
            group_by: hq::GroupBy::Category as i32,
            as_of_ms: TODAY,
            filter: filter(),
        })
        .await
        .expect("complaints")
        .into_inner();
    let cat = |g: &str| {
        complaints
            .rows
            .iter()
            .find(|r| r.group == g)
            .and_then(|r| r.all_facts)
            .unwrap_or_else(|| panic!("no {g} row"))
    };
    let noise = cat("noise");
    assert_eq!(
        (noise.cases, noise.responded, noise.resolved, noise.reopened),
        (1, 1, 1, 1)
    );
    assert_eq!(noise.median_hours_to_first_response, Some(24.0));
    assert_eq!(noise.median_days_to_resolution, Some(10.0));
    assert_eq!((noise.open, noise.open_past_sla), (0, 0));
    let billing = cat("billing");
    assert_eq!(
        (
            billing.cases,
            billing.responded,
            billing.open,
            billing.open_past_sla
        ),
        (1, 0, 1, 1)
    );
    let total = complaints.total.and_then(|t| t.all_facts).expect("total");
    assert_eq!(total.reopen_rate, Some(0.5));
    assert_eq!(complaints.sla_days, 14);

    // --- leads by channel -----------------------------------------------------------------------
    let leads = client
        .lead_report(hq::CaseReportRequest {
            group_by: hq::GroupBy::Channel as i32,
            as_of_ms: TODAY,
            filter: filter(),
        })
        .await
        .expect("leads")
        .into_inner();
    let channel = |g: &str| {
        leads
            .rows
            .iter()
            .find(|r| r.group == g)
            .and_then(|r| r.all_facts)
            .unwrap_or_else(|| panic!("no {g} row"))
    };
    let web = channel("web");
    assert_eq!(
        (
            web.leads,
            web.followed_up,
            web.without_follow_up,
            web.converted
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(
        web.median_hours_to_follow_up,
        Some((10 * DAY / HOUR) as f64)
    );
    assert_eq!(
        channel("call").median_hours_to_follow_up,
        Some((70 * DAY / HOUR) as f64)
    );
    assert_eq!(channel("test_drive").conversion_rate, Some(1.0));

    // --- satisfaction: the staff-entered answer leaves the trusted figures ---------------------
    let satisfaction = client
        .satisfaction_report(hq::CaseReportRequest {
            group_by: hq::GroupBy::Dealer as i32,
            as_of_ms: TODAY,
            filter: filter(),
        })
        .await
        .expect("satisfaction")
        .into_inner();
    let d1 = satisfaction
        .rows
        .iter()
        .find(|r| r.group == "D-1001")
        .expect("D-1001 row");
    let (all, trusted) = (
        d1.all_facts.expect("all"),
        d1.trusted_only.expect("trusted"),
    );
    assert_eq!(
        (all.surveys, all.answered, all.entered_by_staff, all.flagged),
        (3, 2, 1, 1)
    );
    assert!(close(all.response_rate, 2.0 / 3.0));
    assert_eq!(all.csat, Some(4.5));
    assert_eq!(all.nps, Some(50.0), "one promoter (9), one passive (8)");
    assert_eq!(
        all.coverage,
        Some(0.75),
        "3 surveys over 2 deliveries and 2 visits"
    );
    assert_eq!(
        (trusted.surveys, trusted.answered, trusted.entered_by_staff),
        (2, 1, 0)
    );
    assert_eq!((trusted.csat, trusted.nps), (Some(4.0), Some(0.0)));

    // --- a dealer certificate is refused on every new RPC ----------------------------------------
    let dealer_channel = pki
        .endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1001")))
        .connect()
        .await
        .expect("connects");
    let mut as_dealer = HqServiceClient::new(dealer_channel);
    let codes = vec![
        as_dealer
            .get_customer_journey(hq::GetCustomerJourneyRequest {
                customer_id: c1.clone(),
                ..Default::default()
            })
            .await
            .err(),
        as_dealer
            .journey_report(hq::JourneyReportRequest::default())
            .await
            .err(),
        as_dealer
            .tenure_report(hq::TenureReportRequest::default())
            .await
            .err(),
        as_dealer
            .list_service_due(hq::ListServiceDueRequest::default())
            .await
            .err(),
        as_dealer
            .list_churn_risk(hq::ListChurnRiskRequest::default())
            .await
            .err(),
        as_dealer
            .complaint_report(hq::CaseReportRequest::default())
            .await
            .err(),
        as_dealer
            .lead_report(hq::CaseReportRequest::default())
            .await
            .err(),
        as_dealer
            .satisfaction_report(hq::CaseReportRequest::default())
            .await
            .err(),
    ];
    for (i, status) in codes.into_iter().enumerate() {
        let status = status.unwrap_or_else(|| panic!("RPC {i} answered a dealer"));
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "RPC {i}: {status:?}"
        );
    }

    // --- bad requests say which field -----------------------------------------------------------
    let bad = client
        .lead_report(hq::CaseReportRequest {
            group_by: hq::GroupBy::Category as i32,
            ..Default::default()
        })
        .await
        .expect_err("leads have no category");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("group_by"), "{bad:?}");
    hub.stop().await;
}
