//! The dealer lifecycle from the command line (`central dealers`): add, list, suspend, resume
//! and revoke edit HQ's registry file atomically and log each change, and a running hub puts a
//! changed file in force without a restart: a suspended dealer is refused, a resumed one syncs.

use std::path::Path;
use std::process::Command;

use hamgam_central::server::RegistryWatch;
use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_tests::processes::binaries;
use hamgam_tests::*;

fn central(args: &[&str]) -> (bool, String) {
    let out = Command::new(&binaries().central)
        .args(args)
        .output()
        .expect("central runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn registry_arg(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_hub_takes_suspensions_and_resumptions_from_the_registry_file() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let registry = dirs.path().join("registry.json");
    let pki = TestPki::new();
    let watch = RegistryWatch {
        path: registry.clone(),
        every: std::time::Duration::from_millis(20),
    };
    let mut hub = TestHub::start_adjusted(&pki, &dirs.path().join("hub"), move |o| {
        o.registry_watch = Some(watch)
    })
    .await;
    let path = registry_arg(&registry);
    let run = |args: Vec<&'static str>| {
        let path = path.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut all = vec!["dealers", "--registry", path.as_str()];
                all.extend(args);
                central(&all)
            })
            .await
            .expect("task")
        }
    };
    let (ok, said) = run(vec![
        "add",
        "D-1042",
        "--name",
        "نمایندگی تهران",
        "--region",
        "تهران",
    ])
    .await;
    assert!(ok, "{said}");
    hub.registry_changes
        .changed()
        .await
        .expect("the hub read the new file");
    let (ok, said) = run(vec!["list"]).await;
    assert!(
        ok && said.contains("D-1042") && said.contains("active"),
        "{said}"
    );
    let (ok, said) = run(vec!["add", "D-1042", "--name", "again"]).await;
    assert!(!ok && said.contains("already in the registry"), "{said}");

    let store = AgentStore::open(&dirs.path().join("agent"), dealer("D-1042"))
        .expect("store")
        .with_clock(test_clock());
    record_samples(&store, 5);
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1042")));
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("an active dealer syncs");

    let (ok, said) = run(vec![
        "suspend",
        "D-1042",
        "--reason",
        "contract under review",
    ])
    .await;
    assert!(ok, "{said}");
    hub.registry_changes.changed().await.expect("reloaded");
    record_samples(&store, 1);
    let refused = sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect_err("a suspended dealer is refused");
    assert!(
        refused.to_string().contains("contract under review"),
        "{refused}"
    );

    let (ok, said) = run(vec!["resume", "D-1042"]).await;
    assert!(ok, "{said}");
    hub.registry_changes.changed().await.expect("reloaded");
    let report = sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("resumed: it syncs again, nothing lost");
    assert_eq!(report.acked_seq, 6);

    let log = std::fs::read_to_string(dirs.path().join("registry.json.log")).expect("log");
    assert_eq!(log.lines().count(), 3, "{log}");
    hub.stop().await;
}

#[test]
fn revoke_suspends_the_dealer_and_revokes_its_certificate() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = dirs.path().join("pki");
    let pki_arg = pki.display().to_string();
    let registry = registry_arg(&dirs.path().join("registry.json"));
    assert!(central(&["pki", "init", "--dir", &pki_arg]).0);
    assert!(central(&["pki", "issue", "dealer", "D-2077", "--dir", &pki_arg]).0);
    let (ok, said) = central(&[
        "dealers",
        "--registry",
        &registry,
        "add",
        "D-2077",
        "--name",
        "x",
    ]);
    assert!(ok, "{said}");
    let (ok, said) = central(&[
        "dealers",
        "--registry",
        &registry,
        "revoke",
        "D-2077",
        "--reason",
        "PC stolen",
        "--pki",
        &pki_arg,
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("certificate revoked"), "{said}");
    let (_, listed) = central(&["dealers", "--registry", &registry, "list"]);
    assert!(listed.contains("SUSPENDED: revoked: PC stolen"), "{listed}");
    let crl = std::fs::read_to_string(pki.join("ca.crl")).expect("a CRL");
    let (revoked, _) = hamgam_gateway::pki::read_revocation_list(&crl).expect("parses");
    assert_eq!(revoked.len(), 1);
}
