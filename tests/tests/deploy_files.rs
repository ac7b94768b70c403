//! The container, compose and Kubernetes files (`deploy/container`, `deploy/k8s`) against the
//! code, without a container runtime (none runs on the CI machine):
//!
//! - statically: their hub configs parse with the hub's own parser (unknown keys refused), the
//!   ports agree across the Containerfile, compose, the StatefulSet, the Service, the configs
//!   and docs/metrics.md; the data folder sits inside the data volume; every file a config or a
//!   probe names is made by the PKI init service or is a key of the Secret copied by the init
//!   container; the images run as the same non-root user; the Containerfile copies every
//!   workspace member; the enrolment port (7444) is only a marked, commented place;
//! - by running them with the real binaries, paths mapped to a temp folder: compose's PKI init
//!   script (twice: it must keep what is there), the hub on the container's hub.toml, compose's
//!   and the Containerfile's health check (SERVING, and a failure without a hub or with another
//!   CA's certificate), each compose agent's command (with `sync` for `run`); the Secret's
//!   documented `central pki` commands, the StatefulSet's init-container script (keys 0600), the
//!   hub on the ConfigMap's hub.toml and the StatefulSet's probes.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use hamgam_central::config::HubConfig;
use hamgam_tests::processes::{binaries, wait_until};
use serde::Deserialize;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document of a file, merge keys (`<<: *anchor`) applied, as JSON values.
fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(&read(rel))
        .map(|doc| {
            let mut value =
                serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}"));
            value.apply_merge().unwrap_or_else(|e| panic!("{rel}: {e}"));
            serde_json::to_value(value).unwrap_or_else(|e| panic!("{rel}: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml(rel: &str) -> Value {
    let mut docs = yaml_docs(rel);
    assert_eq!(docs.len(), 1, "{rel}: one document expected");
    docs.remove(0)
}

fn hub_config(text: &str, what: &str) -> HubConfig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, text).unwrap();
    HubConfig::from_file(&path).unwrap_or_else(|e| panic!("{what} does not load: {e}"))
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The Containerfile's instructions, continuation lines joined, comments dropped.
fn containerfile() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("deploy/container/Containerfile").lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The lines of a file that mention `needle`, with whether each is a comment.
fn mentions(rel: &str, needle: &str) -> Vec<(bool, String)> {
    read(rel)
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| (l.trim_start().starts_with('#'), l.to_owned()))
        .collect()
}

/// The deploy files' in-container paths put under a temp folder.
struct Mapping {
    pki: PathBuf,
    data: PathBuf,
}

impl Mapping {
    fn apply(&self, text: &str) -> String {
        text.replace("/etc/hamgam/pki", self.pki.to_str().unwrap())
            .replace("/var/lib/hamgam", self.data.to_str().unwrap())
    }
}

fn run(program: &Path, args: &[String]) -> Output {
    Command::new(program)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("HAMGAM_HUB")
        .env_remove("HAMGAM_CERT")
        .env_remove("HAMGAM_KEY")
        .env_remove("HAMGAM_CA")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `sh -ec SCRIPT` with the built `central` first on PATH.
fn shell(script: &str) -> Output {
    let bin_dir = binaries().central.parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-ec", script])
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .output()
        .expect("sh runs")
}

/// `central serve --config CONFIG` on a free port (the config's own port may be taken here).
struct Hub {
    child: Child,
    addr: String,
}

impl Hub {
    fn start(config: &Path, dir: &Path) -> Hub {
        let addr_file = dir.join("hub.addr");
        let log = std::fs::File::create(dir.join("hub.log")).unwrap();
        let child = Command::new(&binaries().central)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--addr-file")
            .arg(&addr_file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("central serve starts");
        let mut hub = Hub {
            child,
            addr: String::new(),
        };
        wait_until("the hub's address file", Duration::from_secs(60), || {
            if let Ok(Some(status)) = hub.child.try_wait() {
                panic!(
                    "central serve --config {} exited: {status}\n{}",
                    config.display(),
                    std::fs::read_to_string(dir.join("hub.log")).unwrap_or_default()
                );
            }
            std::fs::read_to_string(&addr_file).is_ok_and(|t| !t.trim().is_empty())
        });
        hub.addr = std::fs::read_to_string(&addr_file)
            .unwrap()
            .trim()
            .to_owned();
        hub
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "central serve did not stop cleanly: {status}"
        );
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The probe's command (program and args) with the paths mapped and the hub's address.
fn probe_args(command: &[String], map: &Mapping, addr: &str) -> Vec<String> {
    assert_eq!(command[0], "central", "{command:?}");
    assert_eq!(command[1], "health", "{command:?}");
    let hub_at = command.iter().position(|a| a == "--hub").expect("--hub");
    assert_eq!(
        port(&command[hub_at + 1]),
        7443,
        "the probe asks another port: {command:?}"
    );
    command[1..]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i == hub_at {
                addr.to_owned()
            } else {
                map.apply(a)
            }
        })
        .collect()
}

const UID: &str = "10001";

#[test]
fn containerfile_and_compose_agree_with_the_code_and_docs() {
    let instructions = containerfile();
    let has = |prefix: &str| -> Vec<&String> {
        instructions
            .iter()
            .filter(|i| i.starts_with(prefix))
            .collect()
    };
    // Multi-stage, from the workspace; the hub is the last (default) stage.
    let stages: Vec<&String> = has("FROM ");
    assert!(stages.len() >= 2, "{stages:?}");
    assert!(stages.last().unwrap().ends_with(" AS hub"), "{stages:?}");
    assert!(
        stages.iter().any(|s| s.ends_with(" AS agent")),
        "{stages:?}"
    );
    // Every workspace member is copied into the build stage, and every COPY source exists.
    let workspace: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let members: Vec<String> = workspace["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let copied: Vec<String> = has("COPY ")
        .iter()
        .filter(|c| !c.contains("--from="))
        .flat_map(|c| {
            let words: Vec<&str> = c.split_whitespace().collect();
            words[1..words.len() - 1]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for src in &copied {
        assert!(
            repo().join(src).exists(),
            "COPY {src}: not in the repository"
        );
    }
    for member in &members {
        assert!(
            copied.contains(member),
            "the Containerfile does not COPY workspace member {member}"
        );
    }
    assert!(copied.contains(&"Cargo.lock".to_owned()));
    // Non-root, one user for every stage that runs.
    for user in has("USER ") {
        assert_eq!(user, &format!("USER {UID}:{UID}"));
    }
    assert_eq!(has("USER ").len(), 2, "both images set USER");

    // The hub's config in the image: loads, and agrees with EXPOSE, VOLUME, CMD and the docs.
    let toml_text = read("deploy/container/hub.toml");
    let config = hub_config(&toml_text, "deploy/container/hub.toml");
    assert!(has("COPY deploy/container/hub.toml /etc/hamgam/hub.toml").len() == 1);
    let hub_port = port(&config.listen);
    let metrics_port = port(config.metrics.listen.as_deref().expect("[metrics] listen"));
    let docs = read("docs/metrics.md");
    let documented = docs
        .split("the hub with `[metrics] listen = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("docs/metrics.md names the hub's metrics address");
    assert_eq!(
        metrics_port,
        port(documented),
        "docs/metrics.md: {documented}"
    );
    let example = hub_config(&read("deploy/hub.example.toml"), "deploy/hub.example.toml");
    assert_eq!(hub_port, port(&example.listen));
    assert_eq!(
        metrics_port,
        port(example.metrics.listen.as_deref().unwrap())
    );
    let exposed: Vec<String> = has("EXPOSE ")
        .iter()
        .flat_map(|e| {
            e.split_whitespace()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for p in [hub_port, metrics_port, 9464] {
        assert!(
            exposed.contains(&p.to_string()),
            "EXPOSE {p} missing: {exposed:?}"
        );
    }
    let volumes: Vec<&String> = has("VOLUME ");
    assert!(
        volumes.iter().all(|v| *v == "VOLUME /var/lib/hamgam"),
        "{volumes:?}"
    );
    assert!(
        config.data_dir.starts_with("/var/lib/hamgam/"),
        "{:?}",
        config.data_dir
    );
    assert!(has("CMD [\"serve\", \"--config\", \"/etc/hamgam/hub.toml\"]").len() == 1);
    for path in [&config.tls.ca, &config.tls.cert, &config.tls.key] {
        assert!(path.starts_with("/etc/hamgam/pki"), "{path:?}");
    }

    // compose: the services, ports, users, volumes, the same health check as the image's.
    let compose = yaml("deploy/container/compose.yaml");
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["pki", "hub", "agent-d-1042", "agent-d-2077", "agent-d-3155"])
    );
    for (name, service) in services {
        assert_eq!(
            service["user"],
            format!("{UID}:{UID}"),
            "{name} runs as another user"
        );
    }
    let hub = &services["hub"];
    let ports = strings(&hub["ports"]);
    for p in [hub_port, metrics_port] {
        assert!(
            ports.iter().any(|m| m.ends_with(&format!(":{p}"))),
            "the hub does not publish {p}: {ports:?}"
        );
    }
    let mounts = strings(&hub["volumes"]);
    assert!(
        mounts.contains(&"pki:/etc/hamgam/pki:ro".to_owned()),
        "{mounts:?}"
    );
    assert!(
        mounts.contains(&"hub-data:/var/lib/hamgam".to_owned()),
        "{mounts:?}"
    );
    let compose_check = strings(&hub["healthcheck"]["test"]);
    assert_eq!(compose_check[0], "CMD");
    let healthcheck = has("HEALTHCHECK ");
    assert_eq!(healthcheck.len(), 1);
    let image_check: Vec<String> = serde_json::from_str(
        healthcheck[0]
            .split_once(" CMD ")
            .expect("HEALTHCHECK ... CMD [...]")
            .1,
    )
    .expect("the HEALTHCHECK command is a JSON list");
    assert_eq!(
        image_check,
        compose_check[1..],
        "compose and the image check health differently"
    );
    for agent in ["agent-d-1042", "agent-d-2077", "agent-d-3155"] {
        let service = &services[agent];
        let args = strings(&service["command"]);
        let dealer = agent.trim_start_matches("agent-d-");
        let flag = |name: &str| {
            let at = args
                .iter()
                .position(|a| a == name)
                .unwrap_or_else(|| panic!("{agent}: {name}"));
            args[at + 1].clone()
        };
        assert_eq!(flag("--dealer"), format!("D-{dealer}"));
        assert_eq!(flag("--hub"), format!("hub:{hub_port}"));
        assert_eq!(
            flag("--cert"),
            format!("/etc/hamgam/pki/dealer-D-{dealer}.crt")
        );
        assert!(flag("--data-dir").starts_with("/var/lib/hamgam/"));
        assert_eq!(args.last().unwrap(), "run");
        let mounts = strings(&service["volumes"]);
        assert!(
            mounts.contains(&format!("{agent}:/var/lib/hamgam")),
            "{mounts:?}"
        );
        assert_eq!(service["depends_on"]["hub"]["condition"], "service_healthy");
        assert_eq!(service["build"]["target"], "agent");
    }

    // The enrolment listener (being added elsewhere) has a marked, commented place only.
    for rel in [
        "deploy/container/Containerfile",
        "deploy/container/compose.yaml",
        "deploy/container/hub.toml",
    ] {
        let lines = mentions(rel, "7444");
        assert!(
            !lines.is_empty(),
            "{rel}: no marked place for the enrolment port 7444"
        );
        assert!(
            lines.iter().all(|(comment, _)| *comment),
            "{rel}: 7444 outside a comment: {lines:?}"
        );
    }
}

#[test]
fn compose_pki_init_hub_health_check_and_agents_work_with_the_real_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let map = Mapping {
        pki: dir.path().join("pki"),
        data: dir.path().join("data"),
    };
    std::fs::create_dir_all(&map.pki).unwrap();
    std::fs::create_dir_all(&map.data).unwrap();
    let compose = yaml("deploy/container/compose.yaml");
    let services = &compose["services"];

    // The init service's script, as compose runs it ($$ is compose's escape for $), twice.
    let script = strings(&services["pki"]["command"])
        .join("\n")
        .replace("$$", "$");
    assert_eq!(strings(&services["pki"]["entrypoint"]), ["/bin/sh", "-ec"]);
    let first = shell(&map.apply(&script));
    assert!(
        first.status.success(),
        "the PKI init service failed: {}",
        describe(&first)
    );
    let files = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let made = files(&map.pki);
    let ca_before = std::fs::read(map.pki.join("ca.crt")).unwrap();
    let again = shell(&map.apply(&script));
    assert!(
        again.status.success(),
        "the PKI init service failed on its second run: {}",
        describe(&again)
    );
    assert_eq!(
        files(&map.pki),
        made,
        "the second run changed the PKI folder"
    );
    assert_eq!(
        std::fs::read(map.pki.join("ca.crt")).unwrap(),
        ca_before,
        "the second run made a new CA"
    );
    for name in &made {
        if name.ends_with(".key") {
            assert_eq!(mode(&map.pki.join(name)), 0o600, "{name}");
        }
    }

    // The hub on the image's own config, paths mapped: it finds everything the init made.
    let config_path = dir.path().join("hub.toml");
    std::fs::write(&config_path, map.apply(&read("deploy/container/hub.toml"))).unwrap();
    let hub = Hub::start(&config_path, dir.path());
    let check = strings(&services["hub"]["healthcheck"]["test"]);
    let args = probe_args(&check[1..], &map, &hub.addr);
    let out = run(&binaries().central, &args);
    assert!(
        out.status.success(),
        "compose's health check failed: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SERVING"),
        "{}",
        describe(&out)
    );

    // Each agent's command (sync once instead of run), against the hub by the name `hub`.
    for agent in ["agent-d-1042", "agent-d-2077", "agent-d-3155"] {
        // Each agent has a volume of its own.
        let own = Mapping {
            pki: map.pki.clone(),
            data: dir.path().join(agent),
        };
        let mut args: Vec<String> = strings(&services[agent]["command"])
            .iter()
            .map(|a| {
                if a == "hub:7443" {
                    hub.addr.clone()
                } else {
                    own.apply(a)
                }
            })
            .collect();
        *args.last_mut().unwrap() = "sync".into();
        let out = run(&binaries().agent, &args);
        assert!(
            out.status.success(),
            "{agent}'s command failed: {}",
            describe(&out)
        );
    }

    // The check fails with another CA's certificate, and once the hub is down.
    let other = dir.path().join("other-pki");
    let out = shell(&format!(
        "central pki init --dir {0} && central pki issue ops probe --dir {0}",
        other.display()
    ));
    assert!(out.status.success(), "{}", describe(&out));
    let mut foreign = args_with(&args, "--cert", &other.join("ops-probe.crt"));
    foreign = args_with(&foreign, "--key", &other.join("ops-probe.key"));
    let out = run(&binaries().central, &foreign);
    assert!(
        !out.status.success(),
        "another CA's certificate passed the check: {}",
        describe(&out)
    );
    let addr = hub.addr.clone();
    hub.stop();
    let out = run(&binaries().central, &args);
    assert!(
        !out.status.success(),
        "the check passed with the hub down: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("health check of the hub at {addr} failed")),
        "{}",
        describe(&out)
    );
}

fn args_with(args: &[String], flag: &str, value: &Path) -> Vec<String> {
    let mut out = args.to_vec();
    let at = out
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag}"));
    out[at + 1] = value.display().to_string();
    out
}

fn kinds(docs: &[Value]) -> Vec<(String, String)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn k8s(kind: &str) -> Value {
    let rel = format!("deploy/k8s/{kind}.yaml");
    yaml(&rel)
}

#[test]
fn kubernetes_manifests_agree_with_the_code_and_run_with_the_real_binaries() {
    let kustomization = yaml("deploy/k8s/kustomization.yaml");
    let resources = strings(&kustomization["resources"]);
    let docs: Vec<Value> = resources
        .iter()
        .flat_map(|r| yaml_docs(&format!("deploy/k8s/{r}")))
        .collect();
    let found = kinds(&docs);
    for want in [
        ("ConfigMap", "hamgam-hub-config"),
        ("Secret", "hamgam-hub-tls"),
        ("Service", "hamgam-hub"),
        ("StatefulSet", "hamgam-hub"),
    ] {
        assert!(
            found.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {found:?}"
        );
    }
    let configmap = k8s("configmap");
    let secret = k8s("secret");
    let service = k8s("service");
    let set = k8s("statefulset");
    let hub_toml = configmap["data"]["hub.toml"].as_str().expect("hub.toml");
    let config = hub_config(hub_toml, "the ConfigMap's hub.toml");
    let hub_port = port(&config.listen);
    let metrics_port = port(config.metrics.listen.as_deref().expect("[metrics] listen"));
    assert_eq!((hub_port, metrics_port), (7443, 9463));

    let spec = &set["spec"];
    assert_eq!(spec["replicas"], 1, "one process holds the sled store");
    assert_eq!(spec["serviceName"], service["metadata"]["name"]);
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(
            &labels[k], v,
            "the Service selects {k}={v}, the pods are not labelled so"
        );
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"].to_string(), UID);
    let hub = &pod["containers"][0];
    assert_eq!(
        hub["image"],
        yaml("deploy/container/compose.yaml")["services"]["hub"]["image"]
    );
    assert_eq!(
        strings(&hub["args"]),
        ["serve", "--config", "/etc/hamgam/hub.toml"]
    );
    let container_ports: Vec<(String, u64)> = hub["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        container_ports,
        [
            ("grpc".to_owned(), hub_port as u64),
            ("metrics".to_owned(), metrics_port as u64)
        ]
    );
    for p in service["spec"]["ports"].as_array().unwrap() {
        let target = p["targetPort"].as_str().unwrap();
        let (_, number) = container_ports
            .iter()
            .find(|(name, _)| name == target)
            .unwrap_or_else(|| panic!("the Service targets port {target}, the pod has none"));
        assert_eq!(p["port"].as_u64(), Some(*number));
    }
    assert_eq!(
        service["metadata"]["annotations"]["prometheus.io/port"],
        metrics_port.to_string()
    );
    // Mounts: the config where --config reads it, the data folder inside the data volume, the
    // TLS files in the init container's folder.
    let mount = |container: &Value, volume: &str| -> String {
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume)
            .unwrap_or_else(|| panic!("no mount of {volume}"))["mountPath"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(mount(hub, "config"), "/etc/hamgam/hub.toml");
    assert!(
        config.data_dir.starts_with(mount(hub, "data")),
        "{:?}",
        config.data_dir
    );
    assert_ne!(
        config.data_dir,
        Path::new(&mount(hub, "data")),
        "the hub must make its own 0700 folder"
    );
    let pki_dir = mount(hub, "pki");
    let claim = &spec["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "data");
    // The probes: one command, `central health` over mutual TLS, naming files of the pki folder.
    let probe = strings(&hub["startupProbe"]["exec"]["command"]);
    for kind in ["readinessProbe", "livenessProbe"] {
        assert_eq!(strings(&hub[kind]["exec"]["command"]), probe, "{kind}");
    }
    let secret_keys: BTreeSet<String> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let init = &pod["initContainers"][0];
    let init_script = strings(&init["args"]).join("\n");
    assert_eq!(mount(init, "pki"), pki_dir);
    let secret_dir = mount(init, "tls-secret");
    let referenced: Vec<PathBuf> = [
        config.tls.ca.clone(),
        config.tls.cert.clone(),
        config.tls.key.clone(),
        config.registry.clone().expect("registry"),
    ]
    .into_iter()
    .chain(
        probe
            .windows(2)
            .filter(|w| ["--ca", "--cert", "--key"].contains(&w[0].as_str()))
            .map(|w| PathBuf::from(&w[1])),
    )
    .collect();
    for path in &referenced {
        assert!(path.starts_with(&pki_dir), "{path:?} is not in {pki_dir}");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            secret_keys.contains(&name),
            "{name} is not a key of the Secret"
        );
        assert!(
            init_script.contains(&name),
            "the init container does not copy {name}"
        );
    }
    let server_name = &probe[probe.iter().position(|a| a == "--server-name").unwrap() + 1];
    assert_eq!(server_name, service["metadata"]["name"].as_str().unwrap());
    for rel in [
        "deploy/k8s/service.yaml",
        "deploy/k8s/statefulset.yaml",
        "deploy/k8s/configmap.yaml",
    ] {
        let lines = mentions(rel, "7444");
        assert!(
            !lines.is_empty(),
            "{rel}: no marked place for the enrolment port 7444"
        );
        assert!(
            lines.iter().all(|(comment, _)| *comment),
            "{rel}: 7444 outside a comment: {lines:?}"
        );
    }

    // Run it: the Secret's documented commands make the PKI, the init container's script copies
    // the Secret's files, the hub runs on the ConfigMap, and the probe says SERVING.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let secret_text = read("deploy/k8s/secret.yaml");
    let commands: Vec<&str> = secret_text
        .lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("central pki issue")
        })
        .collect();
    assert!(
        commands.len() >= 2,
        "secret.yaml documents no `central pki issue` commands"
    );
    let mut script = format!("cd {}\ncentral pki init --dir pki\n", work.display());
    for c in &commands {
        let c = c.split('#').next().unwrap();
        script.push_str(&format!("central pki issue {c}\n"));
    }
    let out = shell(&script);
    assert!(
        out.status.success(),
        "secret.yaml's commands failed: {}",
        describe(&out)
    );
    std::fs::write(
        work.join("registry.json"),
        secret["stringData"]["registry.json"].as_str().unwrap(),
    )
    .unwrap();
    // `--from-file=KEY=PATH` pairs of the documented `kubectl create secret`.
    let from_files: Vec<(String, String)> = secret_text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--from-file="))
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("KEY=PATH");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let documented: BTreeSet<String> = from_files.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        documented, secret_keys,
        "kubectl create secret and the template name other keys"
    );
    let secret_mount = work.join("secret");
    std::fs::create_dir_all(&secret_mount).unwrap();
    for (key, path) in &from_files {
        std::fs::copy(work.join(path), secret_mount.join(key))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        std::fs::set_permissions(
            secret_mount.join(key),
            std::fs::Permissions::from_mode(0o440),
        )
        .unwrap();
    }
    let map = Mapping {
        pki: work.join("pod-pki"),
        data: work.join("pod-data"),
    };
    std::fs::create_dir_all(&map.pki).unwrap();
    std::fs::create_dir_all(&map.data).unwrap();
    let copy = map
        .apply(&init_script)
        .replace(&secret_dir, secret_mount.to_str().unwrap());
    let out = shell(&copy);
    assert!(
        out.status.success(),
        "the init container's script failed: {}",
        describe(&out)
    );
    for key in &secret_keys {
        let want = if key.ends_with(".key") { 0o600 } else { 0o644 };
        assert_eq!(mode(&map.pki.join(key)), want, "{key}");
    }
    let config_path = work.join("hub.toml");
    std::fs::write(&config_path, map.apply(hub_toml)).unwrap();
    let hub = Hub::start(&config_path, work);
    let args = probe_args(&probe, &map, &hub.addr);
    let out = run(&binaries().central, &args);
    assert!(
        out.status.success(),
        "the StatefulSet's probe failed: {}",
        describe(&out)
    );
    hub.stop();
    let out = run(&binaries().central, &args);
    assert!(
        !out.status.success(),
        "the probe passed with the hub down: {}",
        describe(&out)
    );
}
