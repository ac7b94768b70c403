//! Who may do what at the hub: certificates are checked at the handshake, identities at every
//! call, and a dealer can only push its own records.

use hamgam_gateway::audit::SecurityEventKind;
use hamgam_gateway::tls;
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use hamgam_proto::record::v1 as pb;
use hamgam_tests::*;

/// Opens a sync stream as `identity`, says hello as `hello_dealer`, sends `records` as one
/// batch, and returns the first error status the hub sends (or `None` if the batch was acked).
async fn push_raw(
    pki: &TestPki,
    hub: &TestHub,
    identity: PeerIdentity,
    hello_dealer: &str,
    records: Vec<pb::Record>,
) -> Option<tonic::Status> {
    send_batch(pki, hub.addr, identity, hello_dealer, records)
        .await
        .err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_pushing_another_dealers_records_is_refused_and_nothing_is_stored() {
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;
    let a = PeerIdentity::Dealer(dealer("D-A"));

    // Records stamped with dealer B inside a batch of dealer A (even mixed with A's own).
    let status = push_raw(
        &pki,
        &hub,
        a.clone(),
        "D-A",
        vec![raw_record("D-A", 1), raw_record("D-B", 2)],
    )
    .await
    .expect("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("R01") && status.message().contains("D-B"),
        "{}",
        status.message()
    );
    within(
        10,
        "security event SecurityEventKind::DealerMismatch",
        hub.audit.wait_for(SecurityEventKind::DealerMismatch, 1),
    )
    .await;

    // A hello claiming to be dealer B.
    let status = push_raw(&pki, &hub, a.clone(), "D-B", vec![raw_record("D-B", 1)])
        .await
        .expect("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    within(
        10,
        "security event SecurityEventKind::DealerMismatch",
        hub.audit.wait_for(SecurityEventKind::DealerMismatch, 2),
    )
    .await;

    let mut hq = pki.hq_client(hub.addr).await;
    assert!(hub_records(&mut hq, "D-A").await.is_empty());
    assert!(hub_records(&mut hq, "D-B").await.is_empty());
    assert!(dealer_summaries(&pki, &hub)
        .await
        .iter()
        .all(|d| d.record_count == 0));

    // The same dealer sending its own records is accepted: the refusal was about identity.
    assert!(push_raw(&pki, &hub, a, "D-A", vec![raw_record("D-A", 1)])
        .await
        .is_none());
    assert_eq!(hub_records(&mut hq, "D-A").await.len(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_cannot_push_records_and_dealers_and_ops_cannot_call_hq() {
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;

    let status = push_raw(
        &pki,
        &hub,
        PeerIdentity::Hq("crm".into()),
        "D-1",
        vec![raw_record("D-1", 1)],
    )
    .await
    .expect("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("dealer certificate"),
        "{}",
        status.message()
    );

    for identity in [
        PeerIdentity::Dealer(dealer("D-1")),
        PeerIdentity::Ops("alice".into()),
    ] {
        let channel = pki.endpoint(hub.addr, identity).connect().await.unwrap();
        let status = HqServiceClient::new(channel)
            .list_dealers(hq::ListDealersRequest {})
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status
                .message()
                .contains("hq/reader or hq/reviewer certificate"),
            "{}",
            status.message()
        );
    }
    within(
        10,
        "security event SecurityEventKind::RoleRefused",
        hub.audit.wait_for(SecurityEventKind::RoleRefused, 3),
    )
    .await;
    assert!(
        dealer_summaries(&pki, &hub).await.is_empty(),
        "nothing was stored"
    );
    hub.stop().await;
}

/// Calls the HQ API over a connection made with `config`; the call must fail.
async fn hq_call_fails(hub: &TestHub, config: std::sync::Arc<rustls::ClientConfig>) {
    let endpoint =
        hamgam_gateway::client::HubEndpoint::new(hub.addr.to_string(), "localhost", config);
    // With TLS 1.3 the client may finish its side of the handshake before the hub refuses its
    // certificate, so the refusal shows at connect or at the first call.
    if let Ok(channel) = endpoint.connect().await {
        let result = HqServiceClient::new(channel)
            .list_dealers(hq::ListDealersRequest {})
            .await;
        assert!(result.is_err(), "the call went through");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_or_one_from_another_ca_fails_the_handshake() {
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;

    let anonymous = tls::anonymous_client_config(pki.ca.cert_pem().as_bytes()).unwrap();
    hq_call_fails(&hub, anonymous).await;
    within(
        10,
        "security event SecurityEventKind::HandshakeRefused",
        hub.audit.wait_for(SecurityEventKind::HandshakeRefused, 1),
    )
    .await;

    // A certificate from another CA, for an identity that would otherwise be allowed; the
    // client trusts our CA so only the hub's check can refuse it.
    let other = TestPki::new();
    let mut material = other.client_material(PeerIdentity::Hq("crm".into()));
    material.ca_pem = pki.ca.cert_pem().as_bytes().to_vec();
    hq_call_fails(&hub, tls::client_config(&material).unwrap()).await;
    within(
        10,
        "security event SecurityEventKind::HandshakeRefused",
        hub.audit.wait_for(SecurityEventKind::HandshakeRefused, 2),
    )
    .await;

    let refusals = hub.audit.recent();
    assert!(
        refusals.iter().all(|e| e.peer.is_none()),
        "no identity is granted on a failed handshake"
    );
    // A proper HQ certificate still works.
    assert!(dealer_summaries(&pki, &hub).await.is_empty());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_our_ca_naming_another_trust_domain_is_refused() {
    use hamgam_gateway::pki::{CertificateAuthority, Subject, Validity};
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;

    // Signed by the hub's own CA, so the chain verifies, but the identity is in another trust
    // domain: the hub must not map it to any role.
    let foreign =
        CertificateAuthority::from_pem("elsewhere", pki.ca.cert_pem(), &pki.ca.key_pem()).unwrap();
    let issued = foreign
        .issue(
            &Subject::Client(PeerIdentity::Hq("crm".into())),
            Validity::days_from_now(1),
        )
        .unwrap();
    let material = hamgam_gateway::tls::TlsMaterial {
        ca_pem: pki.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    hq_call_fails(&hub, tls::client_config(&material).unwrap()).await;
    within(
        10,
        "an IdentityRefused event",
        hub.audit.wait_for(SecurityEventKind::IdentityRefused, 1),
    )
    .await;
    let event = hub
        .audit
        .recent()
        .into_iter()
        .find(|e| e.kind == SecurityEventKind::IdentityRefused)
        .unwrap();
    assert!(event.detail.contains("elsewhere"), "{}", event.detail);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_not_yet_valid_certificates_fail_the_handshake_naming_why() {
    use hamgam_gateway::pki::{Subject, Validity};
    use time::{Duration, OffsetDateTime};
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;
    // The wall clock, because rustls checks a certificate's dates against it (the binaries and
    // the TLS configs take no fixed clock yet). What is asserted depends only on offsets from
    // it, never on the day: the date printed is read back from the certificate itself, and
    // `certificate_status`'s day arithmetic is swept over fixed dates in dealer-agent's
    // unit tests.
    let now = OffsetDateTime::now_utc();
    let cases = [
        (
            "expired",
            Validity {
                not_before: now - Duration::days(30),
                not_after: now - Duration::days(1),
            },
        ),
        (
            "not valid yet",
            Validity {
                not_before: now + Duration::days(1),
                not_after: now + Duration::days(30),
            },
        ),
    ];
    for (why, validity) in cases {
        // An HQ certificate of our own CA, refused only for its dates.
        let issued = pki
            .ca
            .issue(&Subject::Client(PeerIdentity::Hq("crm".into())), validity)
            .unwrap();
        let material = tls::TlsMaterial {
            ca_pem: pki.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        };
        hq_call_fails(&hub, tls::client_config(&material).unwrap()).await;
        // The client may retry, so events are counted per reason, not in total: wait for each
        // new refusal until one names this certificate's reason.
        hub.wait_for_event(10, SecurityEventKind::HandshakeRefused, why)
            .await;
        // ... and who it was, from the refused certificate's URI SAN.
        assert!(
            hub.audit
                .recent()
                .iter()
                .any(|e| e.kind == SecurityEventKind::HandshakeRefused
                    && e.detail.contains(why)
                    && e.peer.as_deref() == Some("hq/reader/crm")),
            "{:?}",
            hub.audit.recent()
        );
    }
    // A dealer's expired certificate: the refusal names the dealer.
    let expired = pki
        .ca
        .issue(
            &Subject::Client(PeerIdentity::Dealer(dealer("D-2077"))),
            Validity {
                not_before: now - Duration::days(400),
                not_after: now - Duration::days(2),
            },
        )
        .unwrap();
    let material = tls::TlsMaterial {
        ca_pem: pki.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: expired.cert_pem.into_bytes(),
        key_pem: expired.key_pem.into_bytes(),
    };
    hq_call_fails(&hub, tls::client_config(&material).unwrap()).await;
    within(10, "the refusal naming dealer D-2077", async {
        loop {
            let seen = hub.audit.count(SecurityEventKind::HandshakeRefused);
            if hub
                .audit
                .recent()
                .iter()
                .any(|e| e.peer.as_deref() == Some("dealer/D-2077") && e.detail.contains("expired"))
            {
                return;
            }
            hub.audit
                .wait_for(SecurityEventKind::HandshakeRefused, seen + 1)
                .await;
        }
    })
    .await;
    // A dealer with a valid certificate is not affected.
    let record = raw_record("D-1042", 1);
    assert!(
        push_raw(
            &pki,
            &hub,
            PeerIdentity::Dealer(dealer("D-1042")),
            "D-1042",
            vec![record]
        )
        .await
        .is_none(),
        "a valid dealer syncs"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_suspended_in_the_registry_is_refused_and_the_others_sync() {
    use hamgam_central::rules::registry::DealerRegistry;
    use hamgam_proto::registry::DealerProfile;
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let registry = DealerRegistry::new(&[
        DealerProfile {
            dealer_id: "D-1042".into(),
            ..Default::default()
        },
        DealerProfile {
            dealer_id: "D-2077".into(),
            suspended: "contract under review".into(),
            ..Default::default()
        },
    ]);
    let hub = TestHub::start_with_registry(&pki, dirs.path(), registry).await;

    let refused = push_raw(
        &pki,
        &hub,
        PeerIdentity::Dealer(dealer("D-2077")),
        "D-2077",
        vec![raw_record("D-2077", 1)],
    )
    .await
    .expect("a suspended dealer is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("suspended")
            && refused.message().contains("contract under review"),
        "{}",
        refused.message()
    );
    within(
        10,
        "a DealerSuspended event",
        hub.audit.wait_for(SecurityEventKind::DealerSuspended, 1),
    )
    .await;

    assert!(
        push_raw(
            &pki,
            &hub,
            PeerIdentity::Dealer(dealer("D-1042")),
            "D-1042",
            vec![raw_record("D-1042", 1)]
        )
        .await
        .is_none(),
        "the other dealer syncs"
    );
    let mut client = pki.hq_client(hub.addr).await;
    assert!(hub_records(&mut client, "D-2077").await.is_empty());
    assert_eq!(hub_records(&mut client, "D-1042").await.len(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_with_central_pki_revoke_is_refused_without_a_hub_restart() {
    use hamgam_gateway::client::HubEndpoint;
    use hamgam_gateway::pki::{Subject, Validity};
    use hamgam_gateway::revocation::{CrlReload, CrlWatch, RevocableVerifier};
    let dirs = tempfile::tempdir().unwrap();
    let pki_dir = dirs.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = TestPki::new();
    std::fs::write(pki_dir.join("ca.crt"), pki.ca.cert_pem()).unwrap();
    hamgam_gateway::files::write_private(&pki_dir.join("ca.key"), pki.ca.key_pem().as_bytes())
        .unwrap();
    // The hub starts with an empty list.
    let crl_path = pki_dir.join("ca.crl");
    std::fs::write(&crl_path, pki.ca.revocation_list(&[], 1, 30).unwrap()).unwrap();
    let verifier = RevocableVerifier::new(
        pki.ca.cert_pem().as_bytes(),
        Some(&std::fs::read(&crl_path).unwrap()),
    )
    .unwrap();
    let mut loads = verifier.loads();
    let hub_dir = dirs.path().join("hub");
    let hub = TestHub::start_with_crl(
        &pki,
        &hub_dir,
        CrlReload {
            verifier: verifier.clone(),
            watch: CrlWatch {
                path: crl_path.clone(),
                every: std::time::Duration::from_millis(20),
            },
        },
    )
    .await;

    // Each dealer's one certificate, as files.
    let mut endpoints = std::collections::HashMap::new();
    for d in ["D-1042", "D-2077"] {
        let issued = pki
            .ca
            .issue(
                &Subject::Client(PeerIdentity::Dealer(dealer(d))),
                Validity::days_from_now(5),
            )
            .unwrap();
        std::fs::write(pki_dir.join(format!("dealer-{d}.crt")), &issued.cert_pem).unwrap();
        let material = tls::TlsMaterial {
            ca_pem: pki.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        };
        endpoints.insert(d, tls::client_config(&material).unwrap());
    }
    let endpoint =
        |d: &str| HubEndpoint::new(hub.addr.to_string(), "localhost", endpoints[d].clone());
    for d in ["D-1042", "D-2077"] {
        send_batch_over(endpoint(d), d, vec![raw_record(d, 1)])
            .await
            .expect("both dealers sync before the revocation");
    }

    // Ops revokes D-2077's certificate with the real CLI; the hub re-reads the list.
    let revoke = std::process::Command::new(&hamgam_tests::processes::binaries().central)
        .args(["pki", "revoke", "--dir"])
        .arg(&pki_dir)
        .arg(pki_dir.join("dealer-D-2077.crt"))
        .output()
        .unwrap();
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    assert!(
        String::from_utf8_lossy(&revoke.stdout).contains("1 revoked certificates (list number 2)"),
        "{}",
        String::from_utf8_lossy(&revoke.stdout)
    );
    within(10, "the hub to reload the revocation list", loads.changed())
        .await
        .unwrap();

    let refused = send_batch_over(endpoint("D-2077"), "D-2077", vec![raw_record("D-2077", 2)])
        .await
        .expect_err("a revoked certificate is refused");
    // TLS 1.3 refuses a client certificate after the client thinks the handshake is done: the
    // client sees a transport error (the alert, or the connection closed); the hub logs why.
    assert_ne!(refused.code(), tonic::Code::Ok, "{refused}");
    within(
        10,
        "a HandshakeRefused event",
        hub.audit.wait_for(SecurityEventKind::HandshakeRefused, 1),
    )
    .await;
    let refusals = hub.event_details(SecurityEventKind::HandshakeRefused);
    assert!(
        refusals
            .iter()
            .any(|d| d.to_lowercase().contains("revoked")),
        "{refusals:?}"
    );
    // The other dealer is not affected.
    send_batch_over(endpoint("D-1042"), "D-1042", vec![raw_record("D-1042", 2)])
        .await
        .expect("D-1042 still syncs");
    // A broken list is not put in force: the revocation stands.
    assert!(verifier.reload(b"not a list").is_err());
    assert!(
        send_batch_over(endpoint("D-2077"), "D-2077", vec![raw_record("D-2077", 2)])
            .await
            .is_err()
    );
    let mut client = pki.hq_client(hub.addr).await;
    assert_eq!(hub_records(&mut client, "D-2077").await.len(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_batches_and_messages_are_refused_and_nothing_stored_is_lost() {
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;
    let d = PeerIdentity::Dealer(dealer("D-1042"));
    assert!(push_raw(
        &pki,
        &hub,
        d.clone(),
        "D-1042",
        vec![raw_record("D-1042", 1)]
    )
    .await
    .is_none());

    // More records than the hub takes per batch (500 by default).
    let batch: Vec<_> = (2..=502).map(|s| raw_record("D-1042", s)).collect();
    let refused = push_raw(&pki, &hub, d.clone(), "D-1042", batch)
        .await
        .expect("an oversized batch is refused");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("at most 500"), "{refused}");

    // One message beyond the hub's 16 MiB limit.
    let mut huge = raw_record("D-1042", 2);
    huge.staff_id = "x".repeat(17 * 1024 * 1024);
    let refused = push_raw(&pki, &hub, d.clone(), "D-1042", vec![huge])
        .await
        .expect("an oversized message is refused");
    assert_ne!(refused.code(), tonic::Code::Ok);
    within(
        10,
        "two ProtocolViolation events",
        hub.audit.wait_for(SecurityEventKind::ProtocolViolation, 2),
    )
    .await;
    let details = hub.event_details(SecurityEventKind::ProtocolViolation);
    assert!(
        details.iter().any(|d| d.contains("at most 500"))
            && details.iter().any(|d| d.contains("unreadable message")),
        "{details:?}"
    );

    // What was stored stays, and the dealer goes on syncing within the limits.
    assert!(
        push_raw(&pki, &hub, d, "D-1042", vec![raw_record("D-1042", 2)])
            .await
            .is_none()
    );
    let mut client = pki.hq_client(hub.addr).await;
    assert_eq!(hub_records(&mut client, "D-1042").await.len(), 2);
    hub.stop().await;
}
