//! `central pki` as an operator runs it: keys written 0600 in a 0700 folder, an existing
//! certificate or key never overwritten without `--force`, names and lifetimes every hub would
//! refuse refused at issue, and `central query` finding the `hq-NAME.crt` that
//! `central pki issue hq NAME` wrote without `--cert`/`--key`.

use std::path::Path;
use std::process::{Command, Output};

use hamgam_gateway::pki::CertificateAuthority;
use hamgam_tests::processes::binaries;
use hamgam_tests::{TestHub, TestPki, TRUST_DOMAIN};

fn central(args: &[&str]) -> Output {
    Command::new(&binaries().central)
        .args(args)
        .env("RUST_LIB_BACKTRACE", "0")
        .env_remove("HAMGAM_CERT")
        .env_remove("HAMGAM_KEY")
        .output()
        .expect("central runs")
}

fn succeeds(args: &[&str]) -> String {
    let out = central(args);
    assert!(
        out.status.success(),
        "central {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command fails; its error output.
fn refused(args: &[&str]) -> String {
    let out = central(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "central {args:?} succeeded: {stderr}"
    );
    stderr
}

fn init(dir: &Path) -> String {
    let dir = dir.to_str().expect("utf-8 temp path").to_owned();
    succeeds(&["pki", "init", "--dir", &dir]);
    dir
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
#[cfg(unix)]
fn keys_are_written_0600_in_a_0700_folder() {
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let dir = init(&pki);
    succeeds(&["pki", "issue", "dealer", "D-1042", "--dir", &dir]);
    succeeds(&["pki", "issue", "hub", "--dns", "localhost", "--dir", &dir]);
    assert_eq!(mode(&pki), 0o700);
    for key in ["root.key", "issuing.key", "dealer-D-1042.key", "hub.key"] {
        assert_eq!(mode(&pki.join(key)), 0o600, "{key}");
    }
}

#[test]
#[cfg(unix)]
fn a_ca_key_others_can_read_is_refused_naming_the_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let dir = init(&pki);
    std::fs::set_permissions(
        pki.join("issuing.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = refused(&["pki", "issue", "dealer", "D-1042", "--dir", &dir]);
    assert!(err.contains("issuing.key"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!pki.join("dealer-D-1042.key").exists(), "nothing issued");
}

#[test]
fn issue_refuses_to_overwrite_a_key_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let dir = init(&pki);
    succeeds(&["pki", "issue", "hq", "crm", "--dir", &dir]);
    let key = std::fs::read(pki.join("hq-crm.key")).unwrap();
    let cert = std::fs::read(pki.join("hq-crm.crt")).unwrap();

    let err = refused(&["pki", "issue", "hq", "crm", "--dir", &dir]);
    assert!(err.contains("hq-crm.key already exists"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(err.contains("central pki revoke"), "{err}");
    assert_eq!(std::fs::read(pki.join("hq-crm.key")).unwrap(), key);
    assert_eq!(std::fs::read(pki.join("hq-crm.crt")).unwrap(), cert);

    // A certificate alone (its key moved to the machine that uses it) is not overwritten either.
    std::fs::remove_file(pki.join("hq-crm.key")).unwrap();
    let err = refused(&["pki", "issue", "hq", "crm", "--dir", &dir]);
    assert!(err.contains("hq-crm.crt already exists"), "{err}");

    succeeds(&["pki", "issue", "hq", "crm", "--dir", &dir, "--force"]);
    assert_ne!(std::fs::read(pki.join("hq-crm.key")).unwrap(), key);
    assert_ne!(std::fs::read(pki.join("hq-crm.crt")).unwrap(), cert);
    #[cfg(unix)]
    assert_eq!(mode(&pki.join("hq-crm.key")), 0o600);
}

#[test]
fn names_and_lifetimes_the_hub_would_refuse_are_refused_at_issue() {
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let dir = init(&pki);
    for args in [
        vec!["pki", "issue", "hq", ""],
        vec!["pki", "issue", "ops", ""],
        vec!["pki", "issue", "hq", "a/b"],
    ] {
        let err = refused(&[&args[..], &["--dir", &dir]].concat());
        assert!(err.contains("principal name"), "{args:?}: {err}");
        assert!(err.contains("1 to 64 ASCII letters"), "{args:?}: {err}");
    }
    for days in ["--days=-1", "--days=0"] {
        let err = refused(&["pki", "issue", "hq", "crm", "--dir", &dir, days]);
        assert!(err.contains("at least 1 day"), "{days}: {err}");
    }
    let err = refused(&["pki", "issue", "hq", "crm", "--dir", &dir, "--days", "-5"]);
    assert!(err.contains("--days -5"), "{err}");
    let err = refused(&["pki", "init", "--dir", &format!("{dir}-2"), "--days=0"]);
    assert!(err.contains("at least 1 day"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&pki)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hq-") || n.starts_with("ops-"))
        .collect();
    assert!(left.is_empty(), "refused issues wrote {left:?}");
}

#[test]
fn query_without_cert_lists_the_hq_certificates_when_not_exactly_one() {
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let dir = init(&pki);
    let ca = format!("{dir}/ca.crt");
    // The errors come before any connection: nothing listens on the default address here.
    let err = refused(&["query", "--ca", &ca, "dealers"]);
    assert!(err.contains("no HQ certificate (hq-NAME.crt)"), "{err}");
    assert!(err.contains("central pki issue hq NAME"), "{err}");
    succeeds(&["pki", "issue", "hq", "crm", "--dir", &dir]);
    succeeds(&["pki", "issue", "hq", "bi", "--dir", &dir]);
    let err = refused(&["query", "--ca", &ca, "dealers"]);
    assert!(err.contains("2 HQ certificates"), "{err}");
    assert!(err.contains("hq-bi.crt, hq-crm.crt"), "{err}");
    assert!(err.contains("pass --cert and --key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_uses_the_one_hq_certificate_pki_issue_wrote() {
    let root = tempfile::tempdir().unwrap();
    let pki_dir = root.path().join("pki");
    let dir = init(&pki_dir);
    succeeds(&["pki", "issue", "hq", "crm", "--dir", &dir]);
    let ca = CertificateAuthority::from_pem(
        TRUST_DOMAIN,
        &std::fs::read_to_string(pki_dir.join("issuing.crt")).unwrap(),
        &std::fs::read_to_string(pki_dir.join("issuing.key")).unwrap(),
    )
    .unwrap();
    let pki = TestPki { ca };
    let hub = TestHub::start(&pki, &root.path().join("hub")).await;
    let addr = hub.addr.to_string();
    let ca_file = format!("{dir}/ca.crt");
    let out = tokio::task::spawn_blocking(move || {
        succeeds(&[
            "query",
            "--hub",
            &addr,
            "--server-name",
            "localhost",
            "--ca",
            &ca_file,
            "dealers",
        ])
    })
    .await
    .unwrap();
    // No dealer has synced: the table has its header only, and no error.
    assert!(!out.contains("error"), "{out}");
    hub.stop().await;
}

#[test]
fn init_makes_a_root_and_an_issuing_ca_whose_leaves_carry_their_chain() {
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let dir = init(&pki);
    let fingerprint = succeeds(&["pki", "fingerprint", "--dir", &dir]);
    let fingerprint = fingerprint.trim();
    assert_eq!(fingerprint.len(), 64, "{fingerprint}");
    let root_pem = std::fs::read(pki.join("ca.crt")).unwrap();
    let root_der = hamgam_gateway::tls::parse_certificates(&root_pem, "root").unwrap();
    assert_eq!(hamgam_gateway::pki::fingerprint(&root_der[0]), fingerprint);
    succeeds(&["pki", "issue", "dealer", "D-1042", "--dir", &dir]);
    let leaf = std::fs::read_to_string(pki.join("dealer-D-1042.crt")).unwrap();
    // Leaf + issuing CA, verified by the root alone.
    assert_eq!(
        hamgam_gateway::tls::parse_certificates(leaf.as_bytes(), "leaf")
            .unwrap()
            .len(),
        2
    );
    hamgam_gateway::tls::verify_chain(&String::from_utf8(root_pem).unwrap(), &leaf).unwrap();
    // A second init into the same folder would orphan every certificate: refused.
    let err = refused(&["pki", "init", "--dir", &dir]);
    assert!(err.contains("already holds a CA"), "{err}");
}
