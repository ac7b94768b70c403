//! Enrolment and renewal over real TLS: a branch gets its certificate with a one-time token
//! and a key made at the branch, the token works once, and an agent renews before expiry over
//! its mutual-TLS session and keeps syncing with the new certificate.
//!
//! Certificates are made relative to the real time (rustls checks them against it); every
//! assertion is relative to them, and tokens expire by the hub's fixed test clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hamgam_central::enrolment::{tokens, EnrolmentSetup, Lockout, Signer};
use hamgam_dealer_agent::certificate::{self, CertificateError, CertificateFiles, Renewal};
use hamgam_dealer_agent::sync_loop::{self, Backoff};
use hamgam_dealer_agent::AgentStore;
use hamgam_gateway::audit::SecurityEventKind;
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::pki::{CertificateAuthority, Subject, Validity};
use hamgam_gateway::tls;
use hamgam_gateway::PeerIdentity;
use hamgam_tests::*;

struct Deployment {
    pki: TestPki,
    issuing: Arc<CertificateAuthority>,
    tokens: std::path::PathBuf,
    hub: TestHub,
}

async fn deployment(dir: &Path) -> Deployment {
    let pki = TestPki::new();
    let issuing = pki
        .ca
        .generate_issuing(Validity::days_from_now(20))
        .expect("issuing CA");
    let tokens = dir.join("registry.json.tokens");
    let signer = Signer {
        issuing: CertificateAuthority::from_pem(
            TRUST_DOMAIN,
            issuing.cert_pem(),
            &issuing.key_pem(),
        )
        .expect("reloads"),
        root_pem: pki.ca.cert_pem().to_owned(),
        tokens: tokens.clone(),
        certificate_days: 90,
    };
    let setup = EnrolmentSetup {
        signer: Arc::new(signer),
        lockout: Lockout {
            max_refusals: 5,
            wait: Duration::from_secs(600),
        },
    };
    let hub = TestHub::start_adjusted(&pki, &dir.join("hub"), |o| o.enrolment = Some(setup)).await;
    Deployment {
        pki,
        issuing: Arc::new(issuing),
        tokens,
        hub,
    }
}

fn files_in(dir: &Path, dealer_id: &str) -> CertificateFiles {
    std::fs::create_dir_all(dir).expect("agent folder");
    CertificateFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join(format!("dealer-{dealer_id}.crt")),
        key: dir.join(format!("dealer-{dealer_id}.key")),
    }
}

fn endpoint_from(files: &CertificateFiles, addr: std::net::SocketAddr) -> HubEndpoint {
    let material = files.tls_files().load().expect("the installed files load");
    HubEndpoint::new(
        addr.to_string(),
        "localhost",
        tls::client_config(&material).expect("client config"),
    )
}

fn refused_saying(
    result: Result<certificate::Issued, CertificateError>,
    code: tonic::Code,
    words: &str,
) {
    match result {
        Err(CertificateError::Refused(status)) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert!(status.message().contains(words), "{}", status.message());
        }
        other => panic!("expected a refusal saying `{words}`, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_enrols_with_a_one_time_token_and_its_own_key_then_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let d = deployment(dir.path()).await;
    let enrol_at = d
        .hub
        .enrolment_addr
        .expect("enrolment listener")
        .to_string();
    let root = hamgam_gateway::pki::fingerprint(&d.pki.ca.cert_der().unwrap());
    let token = tokens::issue(&d.tokens, "D-1042", TEST_NOW_MS, 72).unwrap();
    let enroll = |token: String, dealer_id: Option<&str>, pin: String| {
        let at = enrol_at.clone();
        let dealer_id = dealer_id.map(dealer);
        async move {
            certificate::enroll(
                &at,
                "localhost",
                &token,
                &pin,
                dealer_id.as_ref(),
                TRUST_DOMAIN,
            )
            .await
        }
    };

    // Typed in lower case with spaces: still the token.
    let typed = token.to_lowercase().replace('-', " ");
    let issued = within(30, "enrolment", enroll(typed, Some("D-1042"), root.clone()))
        .await
        .expect("enrolled");
    assert_eq!(issued.answer.dealer_id, "D-1042");
    let files = files_in(&dir.path().join("agent"), "D-1042");
    certificate::install(&files, &issued).unwrap();
    tls::verify_chain(d.pki.ca.cert_pem(), &issued.answer.certificate_chain_pem).unwrap();
    assert_eq!(d.hub.audit.count(SecurityEventKind::CertificateIssued), 1);

    // The agent syncs with the certificate it got, through the ordinary mutual-TLS listener.
    let store = AgentStore::open(&dir.path().join("agent/data"), dealer("D-1042"))
        .unwrap()
        .with_clock(test_clock());
    record_samples(&store, 5);
    let report = within(
        30,
        "a sync",
        sync_loop::sync_once(
            &store,
            &endpoint_from(&files, d.hub.addr),
            &session_options(),
        ),
    )
    .await
    .expect("the enrolled agent syncs");
    assert_eq!(report.acked_seq, 5);

    // A token works once.
    refused_saying(
        enroll(token.clone(), None, root.clone()).await,
        tonic::Code::PermissionDenied,
        "already used",
    );
    // A token for another dealer.
    let other = tokens::issue(&d.tokens, "D-7", TEST_NOW_MS, 72).unwrap();
    refused_saying(
        enroll(other.clone(), Some("D-1042"), root.clone()).await,
        tonic::Code::PermissionDenied,
        "issued for dealer D-7",
    );
    // An expired one (by the hub's clock), and one nobody issued.
    let expired = tokens::issue(&d.tokens, "D-8", TEST_NOW_MS - 73 * 3_600_000, 72).unwrap();
    refused_saying(
        enroll(expired, None, root.clone()).await,
        tonic::Code::PermissionDenied,
        "expired",
    );
    refused_saying(
        enroll("0000-0000-0000".into(), None, root.clone()).await,
        tonic::Code::PermissionDenied,
        "not known",
    );
    assert_eq!(d.hub.audit.count(SecurityEventKind::EnrolmentRefused), 4);
    assert_eq!(d.hub.audit.count(SecurityEventKind::CertificateIssued), 1);

    // A pin that is not the deployment's root: nothing is sent to that hub.
    let elsewhere =
        CertificateAuthority::generate(TRUST_DOMAIN, Validity::days_from_now(1)).unwrap();
    let wrong_pin = hamgam_gateway::pki::fingerprint(&elsewhere.cert_der().unwrap());
    let fresh = tokens::issue(&d.tokens, "D-9", TEST_NOW_MS, 72).unwrap();
    match enroll(fresh.clone(), None, wrong_pin).await {
        Err(CertificateError::Connect(e)) => {
            let said = hamgam_gateway::client::error_chain(&e);
            assert!(said.contains("fingerprint"), "{said}");
        }
        other => panic!("expected the pin to refuse the hub, got {other:?}"),
    }
    assert_eq!(d.hub.audit.count(SecurityEventKind::EnrolmentRefused), 4);

    // A fifth refusal from this address, then even a good token waits.
    refused_saying(
        enroll("1111-1111-1111".into(), None, root.clone()).await,
        tonic::Code::PermissionDenied,
        "not known",
    );
    refused_saying(
        enroll(fresh, None, root.clone()).await,
        tonic::Code::ResourceExhausted,
        "too many refused enrolments",
    );
    d.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_renews_at_two_thirds_of_its_lifetime_and_keeps_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let d = deployment(dir.path()).await;
    // The wall clock, because rustls checks a certificate's dates against it (the binaries and
    // the TLS configs take no fixed clock yet). What is asserted depends only on offsets from
    // it, never on the day: the date printed is read back from the certificate itself, and
    // `certificate_status`'s day arithmetic is swept over fixed dates in dealer-agent's
    // unit tests.
    let now = time::OffsetDateTime::now_utc();
    // D-1042's certificate is 20 days into 30: due. D-2's is fresh: left alone.
    let install = |dealer_id: &str, validity: Validity| {
        let files = files_in(&dir.path().join(dealer_id), dealer_id);
        let issued = d
            .issuing
            .issue(
                &Subject::Client(PeerIdentity::Dealer(dealer(dealer_id))),
                validity,
            )
            .unwrap();
        std::fs::write(&files.ca, d.pki.ca.cert_pem()).unwrap();
        std::fs::write(&files.cert, &issued.cert_pem).unwrap();
        hamgam_gateway::files::write_private(&files.key, issued.key_pem.as_bytes()).unwrap();
        files
    };
    let due = install(
        "D-1042",
        Validity {
            not_before: now - time::Duration::days(20),
            not_after: now + time::Duration::days(10),
        },
    );
    let fresh = install("D-2", Validity::days_from_now(30));
    let old_cert = std::fs::read_to_string(&due.cert).unwrap();
    let old_key = std::fs::read_to_string(&due.key).unwrap();
    let fresh_cert = std::fs::read_to_string(&fresh.cert).unwrap();

    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut runs = Vec::new();
    let mut stores = Vec::new();
    for (dealer_id, files) in [("D-1042", &due), ("D-2", &fresh)] {
        let store = AgentStore::open(&dir.path().join(dealer_id).join("data"), dealer(dealer_id))
            .unwrap()
            .with_clock(test_clock());
        record_samples(&store, 5);
        runs.push(tokio::spawn(sync_loop::run(
            store.clone(),
            endpoint_from(files, d.hub.addr),
            session_options(),
            Backoff::new(Duration::from_millis(10), Duration::from_millis(200)),
            Some(Renewal {
                files: files.clone(),
                trust_domain: TRUST_DOMAIN.into(),
            }),
            shutdown.clone(),
        )));
        stores.push(store);
    }
    for store in &stores {
        let mut acked = store.watch_acked();
        within(60, "the agents' sync", acked.wait_for(|a| *a >= 5))
            .await
            .unwrap();
    }
    // While running, after the renewal: more records flow on the new certificate.
    record_samples(&stores[0], 3);
    let mut acked = stores[0].watch_acked();
    within(60, "records after the renewal", acked.wait_for(|a| *a >= 8))
        .await
        .unwrap();
    shutdown.cancel();
    for run in runs {
        run.await.unwrap();
    }

    // D-1042 holds a new certificate for a new key, from the issuing CA, valid ~90 days.
    let new_cert = std::fs::read_to_string(&due.cert).unwrap();
    assert_ne!(new_cert, old_cert);
    assert_ne!(std::fs::read_to_string(&due.key).unwrap(), old_key);
    tls::verify_chain(d.pki.ca.cert_pem(), &new_cert).unwrap();
    let leaf = tls::parse_certificates(new_cert.as_bytes(), "renewed").unwrap();
    assert_eq!(
        PeerIdentity::from_certificate(&leaf[0], TRUST_DOMAIN).unwrap(),
        PeerIdentity::Dealer(dealer("D-1042"))
    );
    let (_, until) = PeerIdentity::validity_of(&leaf[0]).unwrap();
    let days_left = (until - now.unix_timestamp()) / 86_400;
    assert!((89..=90).contains(&days_left), "{days_left} days");
    assert_eq!(d.hub.audit.count(SecurityEventKind::CertificateIssued), 1);
    // D-2's certificate was not due: untouched.
    assert_eq!(std::fs::read_to_string(&fresh.cert).unwrap(), fresh_cert);
    // The installed pair connects; nothing pending, nothing lost.
    let report = sync_loop::sync_once(
        &stores[0],
        &endpoint_from(&due, d.hub.addr),
        &session_options(),
    )
    .await
    .expect("the renewed pair syncs");
    assert_eq!(report.acked_seq, 8);
    assert_eq!(stores[0].status().unwrap().pending(), 0);
    d.hub.stop().await;
}

fn run(binary: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(binary)
        .args(args)
        .output()
        .expect("the binary runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{binary:?} {args:?}: {said}");
    said
}

/// The ops path with the real binaries: `central dealers add` prints the token, `dealer-agent
/// enroll` writes the key, certificate and config, and `dealer-agent sync` works with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_enrols_a_branch_that_then_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let d = deployment(dir.path()).await;
    let bins = hamgam_tests::processes::binaries();
    let registry = dir.path().join("registry.json");
    let (registry_arg, hub_addr, enrol_addr) = (
        registry.display().to_string(),
        d.hub.addr.to_string(),
        d.hub
            .enrolment_addr
            .expect("enrolment listener")
            .to_string(),
    );
    let fingerprint = hamgam_gateway::pki::fingerprint(&d.pki.ca.cert_der().unwrap());
    let branch = dir.path().join("branch");
    let config = branch.join("agent.toml");
    let config_arg = config.display().to_string();
    let (central, agent) = (bins.central.clone(), bins.agent.clone());
    let enrolled = tokio::task::spawn_blocking(move || {
        let added = run(
            &central,
            &[
                "dealers",
                "--registry",
                &registry_arg,
                "add",
                "D-1042",
                "--name",
                "نمایندگی",
            ],
        );
        let token = added
            .split_whitespace()
            .find(|w| w.len() == 14 && w.matches('-').count() == 2)
            .unwrap_or_else(|| panic!("no token in: {added}"))
            .to_owned();
        let said = run(
            &agent,
            &[
                "--config",
                &config_arg,
                "--hub",
                &enrol_addr,
                "--server-name",
                "localhost",
                "enroll",
                "--token",
                &token,
                "--ca-fingerprint",
                &fingerprint,
                "--sync-addr",
                &hub_addr,
            ],
        );
        assert!(said.contains("enrolled as dealer D-1042"), "{said}");
        said
    })
    .await
    .unwrap();
    assert!(enrolled.contains("never sent"), "{enrolled}");
    use std::os::unix::fs::PermissionsExt;
    for private in [config.clone(), branch.join("dealer-D-1042.key")] {
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", private.display());
    }
    {
        let store = AgentStore::open(&branch.join("agent-data"), dealer("D-1042"))
            .unwrap()
            .with_clock(test_clock());
        record_samples(&store, 3);
    }
    let (agent, config_arg) = (bins.agent.clone(), config.display().to_string());
    let synced =
        tokio::task::spawn_blocking(move || run(&agent, &["--config", &config_arg, "sync"]))
            .await
            .unwrap();
    assert!(synced.contains("3 records sent"), "{synced}");
    d.hub.stop().await;
}
