//! Backup and restore (`central admin backup` / `restore`, `dealer-agent backup` / `restore
//! --from`): a backup taken through the ops API while agents push over mutual TLS restores to
//! the digest the hub had at the backup's point, without the records that came after; only an
//! ops certificate may take one; a backup that is not whole, or of a newer format, is refused
//! before anything is written; a stopped hub's folder backs up and restores through the real
//! binary; an agent's store round-trips with its unsynced records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hamgam_central::backup::fetch::fetch;
use hamgam_central::backup::read::{restore, BackupFolder};
use hamgam_central::backup::{BackupError, DigestSummary, Manifest};
use hamgam_central::judge::Rulebook;
use hamgam_central::store::HubStore;
use hamgam_central::SledStore;
use hamgam_dealer_agent::{backup as agent_backup, sync_loop, AgentStore};
use hamgam_gateway::backup_dir::BackupDirError;
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::ops::v1 as ops;
use hamgam_proto::ops::v1::hub_admin_client::HubAdminClient;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::processes::binaries;
use hamgam_tests::*;
use prost::Message;

const DEALERS: [&str; 3] = ["D-1001", "D-1002", "D-1003"];

fn open_agent(dir: &Path, id: &str) -> AgentStore {
    AgentStore::open_waiting(dir, dealer(id), std::time::Duration::from_secs(10))
        .expect("agent store")
        .with_clock(test_clock())
}

/// A customer whose mobile is a placeholder: C04, which HQ can dismiss (a decision).
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

/// A backup through the ops API into `to`, with an ops certificate.
async fn backup_through(pki: &TestPki, hub: &TestHub, to: &Path) -> Manifest {
    let channel = pki
        .endpoint(hub.addr, PeerIdentity::Ops("backup".into()))
        .connect()
        .await
        .expect("ops connects");
    fetch(channel, ops::BackupRequest::default(), to, |_| {})
        .await
        .expect("backup")
}

/// Restores the backup at `from` into a new store at `into` with the test hub's rules.
fn restore_into(from: &Path, into: &Path) -> (hamgam_central::backup::read::Restored, SledStore) {
    let folder = BackupFolder::open(from).expect("a whole backup");
    let store = SledStore::open(into, 64 * 1024 * 1024).expect("new store");
    let registry = Default::default();
    let config = Default::default();
    let rules = Rulebook {
        config: &config,
        registry: &registry,
    };
    let restored = restore(&folder, &store, &rules, |_, _| {}).expect("restored");
    (restored, store)
}

/// Each agent captures and syncs rounds of records until `done` says the backup is over, then
/// one round more (so records after the backup's point exist); returns its last seq.
async fn push(
    pki: &TestPki,
    hub: &TestHub,
    store: &AgentStore,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(store.dealer().clone()));
    let mut i = 0;
    loop {
        let last_round = *done.borrow_and_update();
        for _ in 0..20 {
            store.capture("S-1", sample_payload(i)).expect("capture");
            i += 1;
        }
        sync_loop::sync_once(store, &endpoint, &session_options())
            .await
            .expect("sync");
        if last_round {
            return store.status().expect("status").last_seq;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_agents_push_restores_to_the_digest_at_its_point() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let stores: Vec<AgentStore> = DEALERS
        .iter()
        .map(|d| open_agent(&dirs.path().join(d), d))
        .collect();
    // Before the backup: a record HQ decides on (the decision log) and an HQ read (the audit).
    let flagged = stores[0]
        .capture("S-1", placeholder_customer())
        .expect("saved");
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALERS[0])));
    sync_loop::sync_once(&stores[0], &endpoint, &session_options())
        .await
        .expect("sync");
    pki.hq_reviewer_client(hub.addr)
        .await
        .review_flag(hq::ReviewFlagRequest {
            dealer_id: DEALERS[0].into(),
            seq: flagged.seq,
            rule_id: "C04".into(),
            status: hq::FlagStatus::Dismissed as i32,
            comment: "the customer has no mobile".into(),
            ..Default::default()
        })
        .await
        .expect("review flag");

    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut acked: Vec<_> = stores.iter().map(|s| s.watch_acked()).collect();
    let backup_dir = dirs.path().join("backup");
    let backup = async {
        // Every agent has pushed a round: the backup meets them mid-push.
        for a in &mut acked {
            within(60, "a first round acked", a.wait_for(|seq| *seq >= 20))
                .await
                .expect("acks");
        }
        let manifest = backup_through(&pki, &hub, &backup_dir).await;
        done_tx.send_replace(true);
        manifest
    };
    let pushes =
        futures::future::join_all(stores.iter().map(|s| push(&pki, &hub, s, done_rx.clone())));
    let (manifest, last_seqs) = within(120, "pushes and the backup", async {
        tokio::join!(backup, pushes)
    })
    .await;

    let expected = manifest
        .digest
        .clone()
        .expect("the live digest at the point");
    assert_eq!(manifest.decisions, 1, "the decision before the backup");
    assert!(manifest.access_entries >= 1, "the review is audited");
    for (d, last) in DEALERS.iter().zip(&last_seqs) {
        let at_point = manifest.point.dealers[*d];
        assert!(
            at_point >= 20 && at_point < *last,
            "{d}: point {at_point}, last {last}"
        );
    }
    let live_after = dealer_summaries(&pki, &hub).await;
    hub.stop().await;

    let (restored, store) = restore_into(&backup_dir, &dirs.path().join("restored"));
    assert_eq!(
        DigestSummary::from(&restored.digest),
        expected,
        "restored digest = the live hub's at the backup's point"
    );
    assert_eq!(restored.replayed.records, manifest.records);
    assert_eq!(restored.access_entries, manifest.access_entries);
    // Only what the hub held at the point: the records after it are not in the restore.
    let held: BTreeMap<String, u64> = store
        .dealers()
        .expect("dealers")
        .into_iter()
        .map(|(d, s)| (d, s.stored_seq))
        .collect();
    assert_eq!(held, manifest.point.dealers);
    for summary in live_after {
        assert!(summary.stored_seq > held[&summary.dealer_id]);
    }
    assert_eq!(
        store.access_log(0, 100).expect("audit").len() as u64,
        manifest.access_entries
    );

    // Served again, the restored hub gets from the agents what came after the point.
    drop(store);
    let hub = TestHub::start(&pki, &dirs.path().join("restored")).await;
    for (s, last) in stores.iter().zip(&last_seqs) {
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(s.dealer().clone()));
        sync_loop::sync_once(s, &endpoint, &session_options())
            .await
            .expect("sync to the restored hub");
        let mut hq = pki.hq_client(hub.addr).await;
        let held = hub_records(&mut hq, s.dealer().as_str()).await;
        assert_eq!(held.len() as u64, *last, "{}", s.dealer());
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_ops_certificate_may_take_a_backup() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    for identity in [
        PeerIdentity::Dealer(dealer(DEALERS[0])),
        PeerIdentity::Hq("crm".into()),
        PeerIdentity::HqReviewer("quality".into()),
    ] {
        let channel = pki
            .endpoint(hub.addr, identity.clone())
            .connect()
            .await
            .expect("connects");
        let refused = HubAdminClient::new(channel)
            .backup(ops::BackupRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{identity}");
        assert!(refused.message().contains("ops"), "{}", refused.message());
    }
    let to = dirs.path().join("b");
    let manifest = backup_through(&pki, &hub, &to).await;
    assert_eq!(manifest.records, 0);
    assert!(manifest.digest.is_some());
    hub.stop().await;
}

/// Copies the backup folder `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// `central admin restore --from FROM --into INTO` by the real binary: status, stdout, stderr.
fn restore_command(from: &Path, into: &Path) -> (bool, String, String) {
    let out = Command::new(&binaries().central)
        .args(["admin", "restore", "--from"])
        .arg(from)
        .arg("--into")
        .arg(into)
        .output()
        .expect("central runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_is_not_whole_or_is_newer_is_refused_and_nothing_is_written() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub_dir = dirs.path().join("hub");
    let hub = TestHub::start(&pki, &hub_dir).await;
    let store = open_agent(&dirs.path().join("agent"), DEALERS[0]);
    record_samples(&store, 30);
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALERS[0])));
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync");
    let good = dirs.path().join("good");
    let manifest = backup_through(&pki, &hub, &good).await;
    assert_eq!(manifest.records, 30);
    hub.stop().await;

    let variant = |name: &str, damage: &dyn Fn(&Path)| -> PathBuf {
        let dir = dirs.path().join(name);
        copy_dir(&good, &dir);
        damage(&dir);
        dir
    };
    let newer = variant("newer", &|d| {
        let path = d.join("manifest.json");
        let text = std::fs::read_to_string(&path).expect("manifest");
        let text = text.replace("\"backup_format\": 1", "\"backup_format\": 99");
        std::fs::write(&path, text).expect("write");
    });
    let missing = variant("missing", &|d| {
        std::fs::remove_file(d.join("records.jsonl")).expect("rm")
    });
    let truncated = variant("truncated", &|d| {
        let path = d.join("records.jsonl");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    });
    let unfinished = variant("unfinished", &|d| {
        std::fs::remove_file(d.join("manifest.json")).expect("rm")
    });
    assert!(matches!(
        BackupFolder::open(&newer),
        Err(BackupError::NewerFormat { found: 99, .. })
    ));
    assert!(matches!(
        BackupFolder::open(&missing),
        Err(BackupError::Dir(BackupDirError::Missing { .. }))
    ));
    assert!(matches!(
        BackupFolder::open(&truncated),
        Err(BackupError::Dir(BackupDirError::Size { .. }))
    ));
    assert!(matches!(
        BackupFolder::open(&unfinished),
        Err(BackupError::Dir(BackupDirError::NoManifest { .. }))
    ));
    for (dir, words) in [
        (&newer, "written by a newer Hamgam"),
        (&missing, "records.jsonl is missing from the backup"),
        (&truncated, "the file is truncated or was changed"),
        (&unfinished, "not a backup, or a backup that did not finish"),
    ] {
        let into = dirs.path().join("into");
        let (ok, _, stderr) = restore_command(dir, &into);
        assert!(!ok, "{} restored", dir.display());
        assert!(stderr.contains(words), "{stderr}");
        assert!(!into.exists(), "nothing written for {}", dir.display());
    }

    // The whole backup restores and verifies; so does one of the stopped hub's folder.
    let (ok, stdout, stderr) = restore_command(&good, &dirs.path().join("restored"));
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("verified"), "{stdout}");
    let offline = dirs.path().join("offline");
    let out = Command::new(&binaries().central)
        .args(["admin", "backup", "--data-dir"])
        .arg(&hub_dir)
        .arg("--to")
        .arg(&offline)
        .output()
        .expect("central runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, stdout, stderr) = restore_command(&offline, &dirs.path().join("restored-2"));
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&manifest.digest.expect("digest").total),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_store_round_trips_with_its_unsynced_records() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let agent_dir = dirs.path().join("agent");
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(DEALERS[0])));
    let to = dirs.path().join("agent-backup");
    let before = {
        let store = open_agent(&agent_dir, DEALERS[0]);
        record_samples(&store, 20);
        sync_loop::sync_once(&store, &endpoint, &session_options())
            .await
            .expect("sync");
        record_samples(&store, 7);
        let m = agent_backup::backup(&store, &to).expect("backup");
        assert_eq!((m.last_seq, m.acked_seq), (27, 20));
        let records: Vec<Vec<u8>> = agent_records(&store)
            .iter()
            .map(|r| r.encode_to_vec())
            .collect();
        (records, store.verdicts().expect("verdicts"))
    };
    // A running agent's store is not backed up behind its back.
    {
        let _running = open_agent(&agent_dir, DEALERS[0]);
        let out = Command::new(&binaries().agent)
            .args(["--dealer", DEALERS[0], "--data-dir"])
            .arg(&agent_dir)
            .args(["backup", "--to"])
            .arg(dirs.path().join("while-running"))
            .output()
            .expect("dealer-agent runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("held by a running `dealer-agent run`"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&agent_dir).expect("the PC's disk is lost");

    // Another dealer's PC refuses it; this dealer's gets it back as it was.
    let wrong = agent_backup::restore(
        &to,
        &dirs.path().join("other"),
        dealer(DEALERS[1]),
        false,
        TEST_NOW_MS,
    );
    assert!(matches!(
        wrong,
        Err(agent_backup::BackupError::WrongDealer { .. })
    ));
    let restored = agent_backup::restore(&to, &agent_dir, dealer(DEALERS[0]), false, TEST_NOW_MS)
        .expect("restored");
    assert_eq!(restored.kept_copy, None);
    let store = open_agent(&agent_dir, DEALERS[0]);
    let records: Vec<Vec<u8>> = agent_records(&store)
        .iter()
        .map(|r| r.encode_to_vec())
        .collect();
    assert_eq!((records, store.verdicts().expect("verdicts")), before);
    let status = store.status().expect("status");
    assert_eq!((status.last_seq, status.acked_seq), (27, 20));
    // The 7 records never synced go now, once; the next record gets the next seq.
    assert_eq!(
        store.capture("S-1", sample_payload(99)).expect("saved").seq,
        28
    );
    sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("sync");
    let mut hq = pki.hq_client(hub.addr).await;
    assert_eq!(hub_records(&mut hq, DEALERS[0]).await.len(), 28);

    // Over a store holding records it is refused; a newer format is refused too.
    drop(store);
    let refused = agent_backup::restore(&to, &agent_dir, dealer(DEALERS[0]), false, TEST_NOW_MS);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("--force")),
        "{refused:?}"
    );
    let path = to.join("manifest.json");
    let text = std::fs::read_to_string(&path).expect("manifest");
    std::fs::write(
        &path,
        text.replace("\"backup_format\": 1", "\"backup_format\": 7"),
    )
    .expect("write");
    let newer = agent_backup::check(&to, &dealer(DEALERS[0]));
    assert!(matches!(
        newer,
        Err(agent_backup::BackupError::NewerFormat { found: 7, .. })
    ));
    hub.stop().await;
}
