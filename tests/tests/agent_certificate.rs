//! The agent reads its own certificate before it connects: an expired or not-yet-valid one is
//! named with its date and what to do (not "transport error"), and `status` warns 30 days
//! before expiry. Certificates are made relative to the real time here, because that is what
//! the agent and rustls check them against; every assertion is relative to the certificate's
//! own dates (days ahead or ago, never a calendar date computed here), so it holds on any day.

use std::process::Command;

use hamgam_gateway::pki::{Subject, Validity};
use hamgam_gateway::PeerIdentity;
use hamgam_tests::processes::binaries;
use hamgam_tests::{dealer, TestPki};
use time::{Duration, OffsetDateTime};

fn agent_with(validity: Validity, dir: &std::path::Path) -> std::path::PathBuf {
    let pki = TestPki::new();
    let issued = pki
        .ca
        .issue(
            &Subject::Client(PeerIdentity::Dealer(dealer("D-1042"))),
            validity,
        )
        .expect("certificate");
    std::fs::write(dir.join("ca.crt"), pki.ca.cert_pem()).expect("ca");
    std::fs::write(dir.join("dealer.crt"), &issued.cert_pem).expect("cert");
    hamgam_gateway::files::write_private(&dir.join("dealer.key"), issued.key_pem.as_bytes())
        .expect("key");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "dealer_id = \"D-1042\"\nstaff_id = \"S-1\"\ndata_dir = {data:?}\n\n[hub]\naddr = \"127.0.0.1:9\"\nserver_name = \"localhost\"\n\n[tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n\n[local_api]\ngrpc_listen = \"127.0.0.1:0\"\n",
            data = dir.join("data"),
            ca = dir.join("ca.crt"),
            cert = dir.join("dealer.crt"),
            key = dir.join("dealer.key"),
        ),
    )
    .expect("config");
    config
}

fn run(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(&binaries().agent)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("dealer-agent runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn an_expired_certificate_is_named_with_its_date_and_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The wall clock, because rustls checks a certificate's dates against it (the binaries and
    // the TLS configs take no fixed clock yet). What is asserted depends only on offsets from
    // it, never on the day: the date printed is read back from the certificate itself, and
    // `certificate_status`'s day arithmetic is swept over fixed dates in dealer-agent's
    // unit tests.
    let now = OffsetDateTime::now_utc();
    let config = agent_with(
        Validity {
            not_before: now - Duration::days(400),
            not_after: now - Duration::days(3),
        },
        dir.path(),
    );
    let (ok, said) = run(&config, &["sync"]);
    assert!(!ok, "{said}");
    // The date the certificate itself carries (seconds truncated), not one recomputed here.
    let pem = std::fs::read(dir.path().join("dealer.crt")).expect("cert");
    let leaf = hamgam_gateway::tls::parse_certificates(&pem, "cert").expect("parse");
    let (_, until) = PeerIdentity::validity_of(&leaf[0]).expect("validity");
    let expired_on = OffsetDateTime::from_unix_timestamp(until)
        .expect("date")
        .date()
        .to_string();
    assert!(said.contains("expired on"), "{said}");
    assert!(said.contains(&expired_on), "{said}");
    assert!(
        said.contains("central dealers token D-1042")
            && said.contains("dealer-agent enroll --force"),
        "{said}"
    );
    assert!(!said.contains("transport error"), "{said}");
    let (ok, said) = run(&config, &["status"]);
    assert!(ok, "{said}");
    assert!(said.contains("certificate:   EXPIRED on"), "{said}");
}

#[test]
fn a_certificate_not_yet_valid_points_at_the_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The wall clock, because rustls checks a certificate's dates against it (the binaries and
    // the TLS configs take no fixed clock yet). What is asserted depends only on offsets from
    // it, never on the day: the date printed is read back from the certificate itself, and
    // `certificate_status`'s day arithmetic is swept over fixed dates in dealer-agent's
    // unit tests.
    let now = OffsetDateTime::now_utc();
    let config = agent_with(
        Validity {
            not_before: now + Duration::days(2),
            not_after: now + Duration::days(300),
        },
        dir.path(),
    );
    let (ok, said) = run(&config, &["sync"]);
    assert!(!ok, "{said}");
    assert!(said.contains("is valid only from"), "{said}");
    assert!(said.contains("automatic time"), "{said}");
}

#[test]
fn status_warns_thirty_days_before_expiry_and_not_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The wall clock, because rustls checks a certificate's dates against it (the binaries and
    // the TLS configs take no fixed clock yet). What is asserted depends only on offsets from
    // it, never on the day: the date printed is read back from the certificate itself, and
    // `certificate_status`'s day arithmetic is swept over fixed dates in dealer-agent's
    // unit tests.
    let now = OffsetDateTime::now_utc();
    let soon = agent_with(
        Validity {
            not_before: now - Duration::days(300),
            not_after: now + Duration::days(12) + Duration::hours(1),
        },
        dir.path(),
    );
    let (ok, said) = run(&soon, &["status"]);
    assert!(ok, "{said}");
    assert!(
        said.contains("in 12 days: `dealer-agent run` renews it"),
        "{said}"
    );
    let later = tempfile::tempdir().expect("tempdir");
    let fine = agent_with(
        Validity {
            not_before: now - Duration::days(300),
            not_after: now + Duration::days(31) + Duration::hours(1),
        },
        later.path(),
    );
    let (ok, said) = run(&fine, &["status"]);
    assert!(ok, "{said}");
    assert!(said.contains("certificate:   valid until"), "{said}");
}
