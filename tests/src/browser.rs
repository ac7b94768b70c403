//! Headless Chromium from Debian's packages, driven over WebDriver (`chromedriver`): what the
//! browser tests of the staff screen and the HQ console share. Chromium's executable is
//! `/usr/bin/chromium` and its driver `/usr/bin/chromedriver`, unless `HAMGAM_CHROMIUM` /
//! `HAMGAM_CHROMEDRIVER` say otherwise; without them a test fails and says how to install
//! them (`tests/run.sh` does): it is never skipped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder};

/// A running chromedriver, stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits for its "started" line. With
    /// `home`, the browser's home folder is there (its NSS database, `.pki/nssdb`: the
    /// certificates it trusts and presents).
    pub fn start(home: Option<&Path>) -> Driver {
        let program = std::env::var("HAMGAM_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        assert!(
            Path::new(&program).exists(),
            "{program} is missing: install Debian's chromium and chromium-driver \
             (`apt-get install chromium chromium-driver`, as tests/run.sh does), or set \
             HAMGAM_CHROMEDRIVER"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group: Chromium's processes are in it too, and are killed with it
        // when a failing test drops the driver without closing the browser.
        let mut command = Command::new(&program);
        if let Some(home) = home {
            command.env("HOME", home);
        }
        let mut child = command
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("started successfully"));
        assert!(started, "{program} did not start");
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless Chromium session, in Persian, with its own profile folder.
    pub async fn browser(&self, profile: &Path) -> Client {
        let chromium =
            std::env::var("HAMGAM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let options = serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--window-size=1100,1300",
                "--lang=fa-IR",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group (chromedriver and the browser it started), then chromedriver reaped.
        // `--` first: without it `kill` may read the negative process-group id as an option.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots go: `<target_tmp>/<folder>/` (a test passes its
/// `CARGO_TARGET_TMPDIR`), and also `$HAMGAM_SCREENSHOTS` when it is set (relative to the
/// workspace).
pub fn screenshot_dirs(target_tmp: &Path, folder: &str) -> Vec<PathBuf> {
    let mut dirs = vec![target_tmp.join(folder)];
    if let Ok(dir) = std::env::var("HAMGAM_SCREENSHOTS") {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir));
    }
    dirs
}

/// Saves what the browser shows as `<name>.png` in [`screenshot_dirs`].
pub async fn screenshot(browser: &Client, target_tmp: &Path, folder: &str, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    for dir in screenshot_dirs(target_tmp, folder) {
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), &png).expect("screenshot written");
    }
}

/// Clicks `element` (named `what` in a failure), which loads another page, and waits (at most
/// 20 s) until the browser shows the new page whole: the old page is marked before the click,
/// so a page still being left is never read by mistake.
pub async fn click_to_page(browser: &Client, element: Element, what: &str) {
    browser
        .execute("window.hamgamOldPage = true;", vec![])
        .await
        .expect("marks the page");
    element.click().await.expect("clicked");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let loaded = browser
            .execute(
                "return window.hamgamOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await;
        // While the page changes the script may fail (its document is gone): not yet.
        if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not lead to a new page within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
