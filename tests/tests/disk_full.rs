//! The dealership PC's disk fills up while staff record. The real `dealer-agent run` keeps its
//! store on a 4 MiB tmpfs (a size-limited filesystem: mounting it needs root, which this test
//! and CI run as) and staff record through its local socket until the disk is full. Then:
//!
//! - the record that did not fit is answered with an error that says the disk is full and that
//!   it was not saved (by the running agent if that record was the write that failed, else by
//!   `dealer-agent record` once the agent has stopped); no record is confirmed that is not
//!   stored;
//! - the agent stops with that reason (sled refuses every operation once a write failed, so it
//!   has to open the store anew; its systemd unit has `Restart=always`);
//! - while the disk is still full, starting the agent again (what its service does),
//!   `dealer-agent record` and `dealer-agent status` fail with the same reason;
//! - once space is freed and the agent is started again, every record it ever confirmed is in
//!   its store and at the hub exactly once, with its verdict back at the agent, and staff record
//!   on under the next seq.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hamgam_dealer_agent::local_api::{self, LocalApiError, LocalRequest, LocalResponse};
use hamgam_dealer_agent::store::SyncStatus;
use hamgam_tests::processes::{wait_until, AgentProcess, Deployment, HubProcess};
use hamgam_tests::TestPki;

const DEALER: &str = "D-FULL";

/// A tmpfs of a given size mounted on a folder, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a {size} tmpfs on {}: this test needs root (CAP_SYS_ADMIN) to give the \
             agent a disk that fills up",
            dir.display()
        );
        SmallDisk {
            dir: dir.to_owned(),
        }
    }

    /// Frees space the way IT would: here by making the disk larger.
    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot grow the tmpfs to {size}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// One request through the agent's local API, as `dealer-agent record` sends it.
fn ask(data_dir: &Path, request: &LocalRequest) -> Result<LocalResponse, LocalApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(local_api::request(data_dir, request))
}

fn customer(n: u64) -> LocalRequest {
    LocalRequest::Capture {
        staff_id: "S-1".into(),
        kind: "customer".into(),
        payload: serde_json::json!({
            "customerRef": format!("C-{n}"),
            "partyType": "PARTY_TYPE_PERSON",
            "givenName": "مریم",
            "familyName": format!("آزمون {n}"),
        }),
    }
}

fn status(data_dir: &Path) -> Option<SyncStatus> {
    match ask(data_dir, &LocalRequest::Status) {
        Ok(LocalResponse::Status { status }) => Some(status),
        _ => None,
    }
}

#[test]
fn a_full_disk_loses_nothing_saved_and_the_agent_recovers_once_space_is_freed() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let deployment = Deployment::new(&pki, dir.path(), &[DEALER]);
    let hub = HubProcess::start(&deployment, &dir.path().join("hub"));
    let agent_dir = dir.path().join("agent");
    let disk = SmallDisk::mount(&agent_dir, "4m");
    let mut agent = AgentProcess::start(&deployment, DEALER, &agent_dir, hub.addr);

    // Staff record until the disk is full. Either their record is the write that fails, and
    // the agent answers why before it stops, or the agent's sync loop hits the full disk first
    // (storing an ack) and stops before their next request is read.
    let mut confirmed: Vec<(u64, String)> = Vec::new();
    let answered_refusal = loop {
        let n = confirmed.len() as u64 + 1;
        assert!(n < 200_000, "a 4 MiB disk never filled up");
        match ask(&agent_dir, &customer(n)) {
            Ok(LocalResponse::Saved { seq, record_id, .. }) => confirmed.push((seq, record_id)),
            Err(LocalApiError::Refused(message)) => break Some(message),
            Err(LocalApiError::NotRunning { .. } | LocalApiError::Protocol(_)) => break None,
            other => panic!("after {} records: unexpected answer {other:?}", n - 1),
        }
    };
    println!(
        "{} records saved before the disk filled; the next was {}",
        confirmed.len(),
        match &answered_refusal {
            Some(message) => format!("refused by the running agent: {message}"),
            None => "not read: the sync loop hit the full disk first".into(),
        }
    );
    assert!(
        confirmed.len() > 100,
        "only {} records fit",
        confirmed.len()
    );
    for (i, (seq, _)) in confirmed.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "confirmed seqs have a gap");
    }
    let says_what_to_do = |text: &str| {
        text.contains("the disk holding the agent's store is full")
            && text.contains("a record being saved just now was not")
            && text.contains("free some space")
    };
    if let Some(message) = &answered_refusal {
        assert!(
            says_what_to_do(message),
            "the refusal does not tell staff what happened and what to do: {message}"
        );
    }

    // The agent stops by itself, saying why.
    wait_until(
        "the agent to stop on its full disk",
        Duration::from_secs(30),
        || agent.child.try_wait().expect("agent status").is_some(),
    );
    let exit = agent.child.wait().expect("agent exit");
    assert!(!exit.success(), "the agent stopped as if all were well");
    let log = std::fs::read_to_string(deployment.path(&format!("agent-{DEALER}.log")))
        .expect("agent log");
    assert!(
        log.contains("the agent stopped: the disk holding the agent's store is full"),
        "the agent's log does not say why it stopped:\n{log}"
    );

    // While the disk is still full, staff's `record` and `status` (which open the store
    // themselves now) and the service's restarts fail with the same reason and touch nothing.
    let record = [
        "record",
        "customer",
        "-f",
        "customerRef=C-late",
        "-f",
        "partyType=PARTY_TYPE_PERSON",
        "-f",
        "givenName=مریم",
        "-f",
        "familyName=دیرکرد",
    ];
    for args in [&record[..], &["status"], &["run"]] {
        let out = Command::new(&hamgam_tests::processes::binaries().agent)
            .arg("--config")
            .arg(deployment.path(&format!("agent-{DEALER}.toml")))
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .expect("run dealer-agent");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && says_what_to_do(&stderr),
            "`dealer-agent {}` on the full disk: {:?} {stderr}",
            args[0],
            out.status
        );
    }

    // IT frees space; the service starts the agent again.
    disk.grow("64m");
    let agent = AgentProcess::start(&deployment, DEALER, &agent_dir, hub.addr);
    let last = confirmed.len() as u64;
    wait_until(
        "the agent to sync every record and receive its verdicts",
        Duration::from_secs(60),
        || {
            status(&agent_dir).is_some_and(|s| s.acked_seq == last && s.last_seq == last)
                && verdicts_held(&agent_dir) == last as usize
        },
    );
    let held = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let mut client = pki.hq_client(hub.addr).await;
            hamgam_tests::hub_records(&mut client, DEALER).await
        });
    let at_hub: Vec<(u64, String)> = held
        .iter()
        .map(|r| {
            let record = r.record.as_ref().expect("record");
            (record.seq, record.record_id.clone())
        })
        .collect();
    assert_eq!(
        at_hub, confirmed,
        "the hub does not hold exactly the records the agent confirmed, once each"
    );

    // Staff record on.
    match ask(&agent_dir, &customer(last + 1)) {
        Ok(LocalResponse::Saved { seq, .. }) => assert_eq!(seq, last + 1),
        other => panic!("recording after the disk was freed: {other:?}"),
    }
    agent.stop();
    hub.stop();
}

fn verdicts_held(data_dir: &Path) -> usize {
    match ask(data_dir, &LocalRequest::Verdicts) {
        Ok(LocalResponse::Verdicts { verdicts }) => verdicts.len(),
        _ => 0,
    }
}
