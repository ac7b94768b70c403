//! Small things of the agent's command line that staff and scripts meet: `status` into a pipe
//! that closes early (`| head`) ends quietly, and `verdicts --limit N` shows the newest N.

use std::process::{Command, Stdio};

use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_tests::processes::binaries;
use hamgam_tests::*;

#[test]
fn status_into_a_pipe_closed_early_ends_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(&binaries().agent)
        .args(["--dealer", "D-1042", "--data-dir"])
        .arg(dir.path())
        .arg("status")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("status starts");
    // The reader goes away before the agent writes a line.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("status ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_with_a_limit_show_the_newest() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let data = dirs.path().join("agent");
    {
        let store = AgentStore::open(&data, dealer("D-1042"))
            .expect("store")
            .with_clock(test_clock());
        record_samples(&store, 6);
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1042")));
        sync_loop::sync_once(&store, &endpoint, &session_options())
            .await
            .expect("sync");
    }
    let data_for_cli = data.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&binaries().agent)
            .args(["--dealer", "D-1042", "--data-dir"])
            .arg(&data_for_cli)
            .args(["verdicts", "--limit", "2", "--lang", "en"])
            .output()
            .expect("verdicts")
    })
    .await
    .expect("task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seqs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("seq "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(seqs, vec!["6", "5"], "{stdout}");
    hub.stop().await;
}

#[test]
fn the_store_is_its_owners_and_the_socket_its_groups() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("agent");
    std::fs::create_dir_all(&data).expect("folder");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let store = AgentStore::open(&data, dealer("D-1042")).expect("store");
    record_samples(&store, 3);
    drop(store);
    // Reopened (a folder loosened meanwhile is tightened again on every open).
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let store =
        AgentStore::open_waiting(&data, dealer("D-1042"), std::time::Duration::from_secs(10))
            .expect("store");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
    assert_eq!(mode(&data), 0o710);
    let mut files = 0;
    let mut stack = vec![data.clone()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    assert!(files > 0);
    let socket = hamgam_dealer_agent::local_api::socket_path(&data);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _listener = runtime
        .block_on(async { hamgam_dealer_agent::local_api::bind(&socket) })
        .expect("bind");
    assert_eq!(mode(&socket), 0o660);
    drop(store);
}
