//! Least privilege at HQ, over real mutual TLS: an `hq/reader` certificate searches, reads and
//! exports but is refused decisions (PERMISSION_DENIED naming `hq/reviewer`, and a security
//! event); an `hq/reviewer` decides. Every read of a person's data and every decision leaves
//! an access-audit entry naming the certificate and the customer ids, by the hub's clock,
//! never the searched national ID; `central admin audit` prints them from the stopped hub's
//! folder, and names a running hub's lock.

use hamgam_central::admin_audit::{self, AuditFilter};
use hamgam_gateway::audit::SecurityEventKind;
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use hamgam_tests::history::nid;
use hamgam_tests::processes::binaries;
use hamgam_tests::{dealer, raw_record, send_batch, within, TestHub, TestPki, TEST_NOW_MS};

const DEALER: &str = "D-7001";

/// A dealer's customer record with a national ID whose check digit is right.
fn customer(seq: u64, customer_ref: &str, national_id: &str, mobile: &str) -> pb::Record {
    let mut record = raw_record(DEALER, seq);
    record.payload = Some(pb::record::Payload::Customer(pb::CustomerUpsert {
        customer_ref: customer_ref.into(),
        party_type: pb::PartyType::Person as i32,
        segment: pb::CustomerSegment::B2c as i32,
        national_id: national_id.into(),
        given_name: "مریم".into(),
        family_name: format!("احمدی {seq}"),
        mobile: mobile.into(),
        ..Default::default()
    }));
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_read_reviewers_decide_and_every_read_of_a_person_is_audited() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let data_dir = dirs.path().join("hub");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &data_dir).await;
    let maryam = nid("004512378");
    let other = nid("007788990");
    let ack = send_batch(
        &pki,
        hub.addr,
        PeerIdentity::Dealer(dealer(DEALER)),
        DEALER,
        vec![
            customer(1, "C-1", &maryam, "09121112233"),
            customer(2, "C-2", &other, "09124445566"),
        ],
    )
    .await
    .expect("batch acked");
    assert_eq!(ack.stored_seq, 2);

    // --- a reader: searches, reads, exports --------------------------------------------------
    let mut reader = pki.hq_client(hub.addr).await;
    let found = reader
        .search_customers(hq::SearchCustomersRequest {
            by: Some(hq::search_customers_request::By::NationalId(maryam.clone())),
            ..Default::default()
        })
        .await
        .expect("a reader searches")
        .into_inner();
    assert_eq!(found.customers.len(), 1, "{found:?}");
    let maryam_id = found.customers[0].customer_id.clone();
    let view = reader
        .get_customer(hq::GetCustomerRequest {
            customer_id: maryam_id.clone(),
            as_of_ms: 0,
        })
        .await
        .expect("a reader reads a customer")
        .into_inner();
    assert_eq!(view.customer_id, maryam_id);
    let mut export = reader
        .export(hq::ExportRequest {
            kind: hq::ExportKind::Customers as i32,
            ..Default::default()
        })
        .await
        .expect("a reader exports")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(item) = export.message().await.expect("export item") {
        if let Some(hq::export_item::Item::Customer(c)) = item.item {
            exported.push(c.customer_id);
        }
    }
    assert_eq!(exported.len(), 2, "{exported:?}");

    // --- ... but takes no decision -----------------------------------------------------------
    let confirm = hq::DecideRequest {
        decision: Some(hq::decide_request::Decision::ConfirmCustomerField(
            hq::ConfirmCustomerField {
                customer_id: maryam_id.clone(),
                field: "name".into(),
                value: "مریم احمدی 1".into(),
            },
        )),
        comment: "called the customer".into(),
        reviewer: "Sara".into(),
    };
    let refused = reader
        .decide(confirm.clone())
        .await
        .expect_err("a reader may not decide");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("hq/reader/test-hq")
            && refused
                .message()
                .contains("needs a hq/reviewer certificate"),
        "{}",
        refused.message()
    );
    let refused = reader
        .review_flag(hq::ReviewFlagRequest {
            dealer_id: DEALER.into(),
            seq: 1,
            rule_id: "C04".into(),
            status: hq::FlagStatus::Dismissed as i32,
            ..Default::default()
        })
        .await
        .expect_err("a reader may not review flags");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("ReviewFlag") && refused.message().contains("hq/reviewer"),
        "{}",
        refused.message()
    );
    // Both refusals are security events naming the certificate.
    within(
        10,
        "two RoleRefused events",
        hub.audit.wait_for(SecurityEventKind::RoleRefused, 2),
    )
    .await;
    let events = hub.audit.recent();
    for method in ["Decide", "ReviewFlag"] {
        assert!(
            events
                .iter()
                .any(|e| e.kind == SecurityEventKind::RoleRefused
                    && e.peer.as_deref() == Some("hq/reader/test-hq")
                    && e.detail.contains(method)),
            "{events:?}"
        );
    }

    // --- a reviewer decides ------------------------------------------------------------------
    let mut reviewer = pki.hq_reviewer_client(hub.addr).await;
    let decided = reviewer
        .decide(confirm)
        .await
        .expect("a reviewer decides")
        .into_inner();
    assert!(decided.decision_no >= 1);
    // A reviewer reads too.
    reviewer
        .get_customer(hq::GetCustomerRequest {
            customer_id: maryam_id.clone(),
            as_of_ms: 0,
        })
        .await
        .expect("a reviewer reads");

    // --- the running hub holds its store: the audit command says so ----------------------------
    let running = std::process::Command::new(&binaries().central)
        .args(["admin", "audit", "--since", "2020-01-01", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("central runs");
    assert!(!running.status.success());
    let stderr = String::from_utf8_lossy(&running.stderr);
    assert!(
        stderr.contains("the hub is running") && stderr.contains("Stop the hub"),
        "{stderr}"
    );
    hub.stop().await;

    // --- the audit, read from the stopped hub's folder ---------------------------------------
    let entries = {
        let store = admin_audit::open(&data_dir, 16 << 20).expect("store opens");
        admin_audit::entries(&store, &AuditFilter::default()).expect("audit reads")
    };
    let rpcs: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.who.as_str(), e.rpc.as_str()))
        .collect();
    assert_eq!(
        rpcs,
        vec![
            ("hq/reader/test-hq", "SearchCustomers"),
            ("hq/reader/test-hq", "GetCustomer"),
            ("hq/reader/test-hq", "Export"),
            ("hq/reviewer/test-reviewer", "Decide"),
            ("hq/reviewer/test-reviewer", "GetCustomer"),
        ],
        "{entries:#?}"
    );
    // Numbered by the store, gap-free, stamped by the hub's (fixed) clock.
    assert_eq!(
        entries.iter().map(|e| e.no).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(
        entries.iter().all(|e| e.at_ms == TEST_NOW_MS),
        "{entries:#?}"
    );
    let search = &entries[0];
    assert_eq!(search.customers, vec![maryam_id.clone()]);
    assert_eq!(search.count, 1);
    assert_eq!(search.what, "by national id");
    assert_eq!(entries[1].customers, vec![maryam_id.clone()]);
    let mut all = exported.clone();
    all.sort();
    assert_eq!(entries[2].customers, all);
    assert_eq!(entries[2].count, 2);
    let decision = &entries[3];
    assert_eq!(decision.customers, vec![maryam_id.clone()]);
    assert!(
        decision
            .what
            .contains(&format!("decision {}", decided.decision_no))
            && decision.what.contains("confirm name")
            && decision
                .what
                .contains("Sara (via hq/reviewer/test-reviewer)"),
        "{}",
        decision.what
    );
    // No searched or confirmed value in clear, anywhere in the audit.
    let text = format!("{entries:?}");
    for private in [maryam.as_str(), other.as_str(), "مریم"] {
        assert!(!text.contains(private), "{private} in the audit: {text}");
    }

    // --- the real command prints them ----------------------------------------------------------
    let printed = std::process::Command::new(&binaries().central)
        .args(["admin", "audit", "--since", "2020-01-01", "--json", "--who"])
        .arg("test-hq")
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("central runs");
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["rpc"], "SearchCustomers");
    assert_eq!(lines[0]["who"], "hq/reader/test-hq");
    assert_eq!(lines[0]["customers"][0], maryam_id.as_str());
    assert!(!stdout.contains(&maryam), "{stdout}");
    // A table for people, filtered by customer; and a later --since leaves nothing.
    let table = std::process::Command::new(&binaries().central)
        .args(["admin", "audit", "--since", "2020-01-01", "--customer"])
        .arg(&maryam_id)
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("central runs");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("Decide") && table.contains("5 entries"),
        "{table}"
    );
    let later = std::process::Command::new(&binaries().central)
        .args(["admin", "audit", "--since", "2100-01-01", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("central runs");
    assert!(
        String::from_utf8_lossy(&later.stdout).contains("0 entries"),
        "{}",
        String::from_utf8_lossy(&later.stdout)
    );
}
