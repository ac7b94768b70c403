//! The real binaries as separate processes, for crash tests: `central serve` and
//! `dealer-agent run` started on data folders in a temp dir, killed with SIGKILL (`kill -9`) or
//! stopped with SIGTERM, restarted on the same folders. The binaries are built once per test
//! process with the workspace's cargo (the same profile as the test).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hamgam_gateway::pki::{Subject, Validity};
use hamgam_gateway::PeerIdentity;

use crate::TestPki;

/// Paths of the built `central` and `dealer-agent`.
pub struct Binaries {
    pub central: PathBuf,
    pub agent: PathBuf,
}

/// Builds (once per process) and locates the real binaries.
pub fn binaries() -> &'static Binaries {
    static BUILT: OnceLock<Binaries> = OnceLock::new();
    BUILT.get_or_init(|| {
        // target/<profile>/deps/<test> (a test) or target/<profile>/<bin> (the bench) ->
        // target/<profile>
        let exe = std::env::current_exe().expect("test executable");
        let parent = exe.parent().expect("the executable's folder");
        let dir = if parent.file_name().is_some_and(|n| n == "deps") {
            parent.parent().expect("target profile folder")
        } else {
            parent
        }
        .to_owned();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "-p",
            "hamgam-central",
            "-p",
            "hamgam-dealer-agent",
            "--bins",
        ]);
        if release {
            build.arg("--release");
        }
        // The test runs with cargo's variables for this test crate; passed on, they would make
        // the nested build look different from the last and rebuild its dependencies.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR")
                || key == "OUT_DIR"
                || key.starts_with("RUST_TEST")
            {
                build.env_remove(key);
            }
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building central and dealer-agent failed");
        Binaries {
            central: dir.join("central"),
            agent: dir.join("dealer-agent"),
        }
    })
}

/// Waits until `ready` says yes, up to `limit` (polling a file or socket another process makes).
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A deployment's files: the PKI as PEM files (`ca.crt`, `hub.crt/key`, `dealer-<id>.crt/key`).
pub struct Deployment {
    pub dir: PathBuf,
}

impl Deployment {
    pub fn new(pki: &TestPki, dir: &Path, dealers: &[&str]) -> Deployment {
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).expect("write PKI file");
        };
        // Keys 0600, as `central pki issue` writes them: the binaries refuse others.
        let write_key = |name: &str, text: &str| {
            hamgam_gateway::files::write_private(&dir.join(name), text.as_bytes())
                .expect("write PKI key");
        };
        write("ca.crt", pki.ca.cert_pem());
        let hub = pki.hub_material();
        write("hub.crt", &String::from_utf8_lossy(&hub.cert_pem));
        write_key("hub.key", &String::from_utf8_lossy(&hub.key_pem));
        for d in dealers {
            let issued = pki
                .ca
                .issue(
                    &Subject::Client(PeerIdentity::Dealer(crate::dealer(d))),
                    Validity::days_from_now(7),
                )
                .expect("dealer certificate");
            write(&format!("dealer-{d}.crt"), &issued.cert_pem);
            write_key(&format!("dealer-{d}.key"), &issued.key_pem);
        }
        Deployment {
            dir: dir.to_owned(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A `central serve` process.
pub struct HubProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

impl HubProcess {
    /// Starts the hub on a free port with its store in `data_dir`; returns once it listens.
    pub fn start(deployment: &Deployment, data_dir: &Path) -> HubProcess {
        let addr_file = deployment.path("hub.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(deployment.path("hub.log"))
            .expect("hub log");
        let child = Command::new(&binaries().central)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--ca")
            .arg(deployment.path("ca.crt"))
            .arg("--cert")
            .arg(deployment.path("hub.crt"))
            .arg("--key")
            .arg(deployment.path("hub.key"))
            .arg("--addr-file")
            .arg(&addr_file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("central serve starts");
        wait_until("the hub's address file", Duration::from_secs(60), || {
            std::fs::read_to_string(&addr_file)
                .is_ok_and(|t| t.trim().parse::<SocketAddr>().is_ok())
        });
        let addr = std::fs::read_to_string(&addr_file)
            .expect("address file")
            .trim()
            .parse()
            .expect("address");
        HubProcess {
            child,
            addr,
            data_dir: data_dir.to_owned(),
        }
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        terminate(&mut self.child, "central serve");
    }
}

/// A `dealer-agent run` process.
pub struct AgentProcess {
    pub child: Child,
    pub dealer: String,
    pub data_dir: PathBuf,
}

impl AgentProcess {
    /// Starts the agent of `dealer` on `data_dir`, syncing to `hub`; returns once its local
    /// socket answers.
    pub fn start(
        deployment: &Deployment,
        dealer: &str,
        data_dir: &Path,
        hub: SocketAddr,
    ) -> AgentProcess {
        std::fs::create_dir_all(data_dir).expect("agent folder");
        let config = deployment.path(&format!("agent-{dealer}.toml"));
        std::fs::write(
            &config,
            format!(
                "dealer_id = \"{dealer}\"\nstaff_id = \"S-1\"\ndata_dir = {data:?}\n\n[hub]\naddr = \"{hub}\"\nserver_name = \"localhost\"\n\n[tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n\n[sync]\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\n\n[local_api]\ngrpc_listen = \"127.0.0.1:0\"\n",
                data = data_dir,
                ca = deployment.path("ca.crt"),
                cert = deployment.path(&format!("dealer-{dealer}.crt")),
                key = deployment.path(&format!("dealer-{dealer}.key")),
            ),
        )
        .expect("agent config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(deployment.path(&format!("agent-{dealer}.log")))
            .expect("agent log");
        let _ = std::fs::remove_file(data_dir.join("local-api.addr"));
        let child = Command::new(&binaries().agent)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dealer-agent run starts");
        let socket = data_dir.join("agent.sock");
        wait_until("the agent's local socket", Duration::from_secs(60), || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        AgentProcess {
            child,
            dealer: dealer.to_owned(),
            data_dir: data_dir.to_owned(),
        }
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        terminate(&mut self.child, "dealer-agent run");
    }

    /// Where its local capture API listens (port 0 in its config: the agent writes the port
    /// it got to `local-api.addr`), once it does.
    pub fn local_api_addr(&self) -> SocketAddr {
        let file = self.data_dir.join("local-api.addr");
        wait_until(
            "the agent's local API address file",
            Duration::from_secs(60),
            || std::fs::read_to_string(&file).is_ok_and(|t| t.trim().parse::<SocketAddr>().is_ok()),
        );
        std::fs::read_to_string(&file)
            .expect("address file")
            .trim()
            .parse()
            .expect("address")
    }
}

fn terminate(child: &mut Child, what: &str) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{what} did not stop cleanly: {status}");
}
