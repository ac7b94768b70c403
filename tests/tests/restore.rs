//! A branch PC replaced or reset gets its store back from the hub (`dealer-agent restore
//! --from-hub`): the records and verdicts equal the hub's, the next record gets the next seq
//! and syncs once; a usable store is only replaced with --force, which keeps a copy; a restore
//! killed with `kill -9` goes on when run again; and an agent whose hub was restored from an
//! older backup takes the hub's verdicts again instead of silently missing changes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use hamgam_dealer_agent::restore::{self, RestoreError};
use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::processes::{binaries, Deployment};
use hamgam_tests::*;
use prost::Message;

const DEALER: &str = "D-1042";

/// A customer whose mobile is a placeholder: C04, which HQ can dismiss (a verdict change).
fn placeholder_customer() -> Payload {
    Payload::Customer(pb::CustomerUpsert {
        customer_ref: "C-PH".into(),
        party_type: pb::PartyType::Person as i32,
        given_name: "سارا".into(),
        family_name: "کریمی".into(),
        mobile: "09121111111".into(),
        ..Default::default()
    })
}

fn open(dir: &Path) -> AgentStore {
    AgentStore::open_waiting(dir, dealer(DEALER), std::time::Duration::from_secs(10))
        .expect("store")
        .with_clock(test_clock())
}

/// Records (encoded, as sent) and verdicts (outcome, version, rules), by seq.
type View = (
    BTreeMap<u64, Vec<u8>>,
    BTreeMap<u64, (i32, u32, Vec<String>)>,
);

/// The agent's records (encoded, as sent) and verdicts (outcome, version, rules) by seq.
fn agent_view(store: &AgentStore) -> View {
    let records = agent_records(store)
        .into_iter()
        .map(|r| (r.seq, r.encode_to_vec()))
        .collect();
    let verdicts = store
        .verdicts()
        .expect("verdicts")
        .into_iter()
        .map(|v| {
            let rules = v.findings.iter().map(|f| f.rule_id.clone()).collect();
            (v.seq, (v.outcome, v.version, rules))
        })
        .collect();
    (records, verdicts)
}

async fn hub_view(pki: &TestPki, hub: &TestHub) -> View {
    let mut hq = pki.hq_client(hub.addr).await;
    let held = hub_records(&mut hq, DEALER).await;
    let mut records = BTreeMap::new();
    let mut verdicts = BTreeMap::new();
    for r in held {
        let record = r.record.expect("record");
        let v = r.verdict.expect("verdict");
        records.insert(record.seq, record.encode_to_vec());
        let rules = v.findings.iter().map(|f| f.rule_id.clone()).collect();
        verdicts.insert(v.seq, (v.outcome, v.version, rules));
    }
    (records, verdicts)
}

/// HQ dismisses C04 on the dealer's record `seq`: a verdict change on its feed.
async fn dismiss_c04(pki: &TestPki, hub: &TestHub, seq: u64) {
    let mut hq = pki.hq_reviewer_client(hub.addr).await;
    hq.review_flag(hq::ReviewFlagRequest {
        dealer_id: DEALER.into(),
        seq,
        rule_id: "C04".into(),
        status: hq::FlagStatus::Dismissed as i32,
        comment: "the customer has no mobile".into(),
        ..Default::default()
    })
    .await
    .expect("review flag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_is_rebuilt_from_the_hub_and_the_next_record_gets_the_next_seq() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let agent_dir = dirs.path().join("agent");
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALER)));
    let placeholder_seq = {
        let store = open(&agent_dir);
        record_samples(&store, 120);
        let saved = store.capture("S-1", placeholder_customer()).expect("saved");
        sync_loop::sync_once(&store, &endpoint, &session_options())
            .await
            .expect("sync");
        dismiss_c04(&pki, &hub, saved.seq).await;
        sync_loop::sync_once(&store, &endpoint, &session_options())
            .await
            .expect("the verdict change comes down");
        assert_eq!(store.verdict_cursor().expect("cursor"), 1);
        saved.seq
    };
    // The PC's disk is replaced: the store is gone.
    std::fs::remove_dir_all(&agent_dir).expect("remove");
    std::fs::create_dir_all(&agent_dir).expect("new folder");
    let mut pages = Vec::new();
    let report = restore::restore_from_hub(
        &agent_dir,
        dealer(DEALER),
        &endpoint,
        false,
        25,
        TEST_NOW_MS,
        |done, total| pages.push((done, total)),
    )
    .await
    .expect("restored");
    assert_eq!((report.records, report.written), (121, 121));
    assert_eq!(pages.first(), Some(&(25, 121)));
    assert_eq!(pages.last(), Some(&(121, 121)));
    let store = open(&agent_dir);
    assert_eq!(agent_view(&store), hub_view(&pki, &hub).await);
    assert_eq!(store.verdict_cursor().expect("cursor"), 1);
    let dismissed = &agent_view(&store).1[&placeholder_seq];
    assert_eq!(
        dismissed.1, 2,
        "the changed verdict, as the hub holds it now"
    );

    // The next record gets the next seq and reaches the hub once.
    let next = store.capture("S-1", sample_payload(7)).expect("saved");
    assert_eq!(next.seq, 122);
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync after restore");
    assert_eq!(agent_view(&store), hub_view(&pki, &hub).await);
    assert_eq!(hub_view(&pki, &hub).await.0.len(), 122);

    // A store that holds records is only replaced on purpose, and then kept.
    drop(store);
    let refused = restore::restore_from_hub(
        &agent_dir,
        dealer(DEALER),
        &endpoint,
        false,
        25,
        TEST_NOW_MS,
        |_, _| {},
    )
    .await
    .expect_err("a usable store is not replaced without --force");
    assert!(
        matches!(
            refused,
            RestoreError::UsableStoreExists { records: 122, .. }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("--force"), "{refused}");
    let forced = restore::restore_from_hub(
        &agent_dir,
        dealer(DEALER),
        &endpoint,
        true,
        500,
        TEST_NOW_MS,
        |_, _| {},
    )
    .await
    .expect("forced");
    let copy = forced.kept_copy.expect("a copy of the old store");
    assert_eq!(forced.records, 122);
    let old = open(&copy);
    assert_eq!(
        old.status().expect("status").last_seq,
        122,
        "the copy is the old store"
    );
    drop(old);
    hub.stop().await;
}

fn agent_config(
    deployment: &Deployment,
    data: &Path,
    hub: std::net::SocketAddr,
) -> std::path::PathBuf {
    let config = deployment.path("agent.toml");
    std::fs::write(
        &config,
        format!(
            "dealer_id = \"{DEALER}\"\nstaff_id = \"S-1\"\ndata_dir = {data:?}\n\n[hub]\naddr = \"{hub}\"\nserver_name = \"localhost\"\n\n[tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n\n[local_api]\ngrpc_listen = \"127.0.0.1:0\"\n",
            ca = deployment.path("ca.crt"),
            cert = deployment.path(&format!("dealer-{DEALER}.crt")),
            key = deployment.path(&format!("dealer-{DEALER}.key")),
        ),
    )
    .expect("config");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_half_way_goes_on_when_run_again() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let pki_dir = dirs.path().join("pki");
    std::fs::create_dir_all(&pki_dir).expect("pki dir");
    let deployment = Deployment::new(&pki, &pki_dir, &[DEALER]);
    let agent_dir = dirs.path().join("agent");
    {
        let store = open(&agent_dir);
        record_samples(&store, 400);
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALER)));
        sync_loop::sync_once(&store, &endpoint, &session_options())
            .await
            .expect("sync");
    }
    std::fs::remove_dir_all(&agent_dir).expect("remove");
    let config = agent_config(&deployment, &agent_dir, hub.addr);
    let restore_cli = || {
        let mut command = Command::new(&binaries().agent);
        command
            .arg("--config")
            .arg(&config)
            .args(["restore", "--from-hub", "--page-size", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // kill -9 once it said it restored 50 records (ten pages).
    let mut child = restore_cli().spawn().expect("restore starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        let done = line.contains("restored 50/400");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("restored 50/400")),
        "{seen:?}"
    );
    // Half-restored: the CLI will not record into it, and says how to finish.
    let record = Command::new(&binaries().agent)
        .arg("--config")
        .arg(&config)
        .args([
            "record",
            "lead",
            "-f",
            "customerRef=C-1",
            "-f",
            "contactedAtMs=now",
        ])
        .output()
        .expect("record");
    let said = String::from_utf8_lossy(&record.stderr);
    assert!(
        !record.status.success() && said.contains("restore --from-hub"),
        "{said}"
    );
    // Run again: it goes on from where it stopped and finishes.
    let again = restore_cli().output().expect("restore again");
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(out.contains("restored: 400 records"), "{out}");
    assert!(out.contains("the next record is seq 401"), "{out}");
    let store = open(&agent_dir);
    assert_eq!(agent_view(&store), hub_view(&pki, &hub).await);
    drop(store);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_ahead_of_a_hub_restored_from_an_older_backup_takes_the_hubs_verdicts_again() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub_dir = dirs.path().join("hub");
    let backup_dir = dirs.path().join("hub-backup");
    let agent_dir = dirs.path().join("agent");
    let store = open(&agent_dir);
    record_samples(&store, 30);
    let first = store.capture("S-1", placeholder_customer()).expect("saved");
    let hub = TestHub::start(&pki, &hub_dir).await;
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALER)));
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync");
    hub.stop().await;
    // Ops back the hub up now ...
    copy_dir(&hub_dir, &backup_dir);
    // ... and later HQ dismisses the flag, and the branch records more and gets the change.
    let hub = TestHub::start(&pki, &hub_dir).await;
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALER)));
    dismiss_c04(&pki, &hub, first.seq).await;
    record_samples(&store, 10);
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync");
    assert_eq!(store.verdict_cursor().expect("cursor"), 1);
    hub.stop().await;
    // The hub's disk dies; it comes back from the backup, which knows neither.
    let hub = TestHub::start(&pki, &backup_dir).await;
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALER)));
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("the agent resyncs with the restored hub");
    // The hub got the ten records again, and the agent holds exactly the hub's verdicts.
    assert_eq!(hub_view(&pki, &hub).await.0.len(), 41);
    assert_eq!(agent_view(&store), hub_view(&pki, &hub).await);
    assert_eq!(store.verdict_cursor().expect("cursor"), 0);
    // HQ dismisses the flag again: the change reaches the agent.
    dismiss_c04(&pki, &hub, first.seq).await;
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync");
    assert_eq!(agent_view(&store), hub_view(&pki, &hub).await);
    assert_eq!(store.verdict_cursor().expect("cursor"), 1);
    hub.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("backup dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
