//! The HQ console in a real browser: Debian's headless Chromium (`hamgam_tests::browser`)
//! holding an HQ certificate of the project's PKI in its NSS database opens the console of a
//! real hub (mutual TLS on 127.0.0.1:0) over the known-answer network of
//! `hamgam_tests::hq_network`; each chart renders with the expected number of marks, a bar
//! leads to the customers behind it and one of them to their 360 with the records; the page is
//! Persian with Jalali dates by default. A dealer certificate gets 403, no certificate no page.
//!
//! Chromium presents a client certificate without asking only where the managed policy
//! `AutoSelectCertificateForUrls` says so: `tests/run.sh` installs
//! `/etc/chromium/policies/managed/hamgam-tests.json` for `https://127.0.0.1` (this test fails
//! and says so when it is missing). `certutil` and `pk12util` come from Debian's
//! `libnss3-tools`, `openssl` from `openssl`; `tests/run.sh` installs both. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/hq-console/`, and to `$HAMGAM_SCREENSHOTS` when set
//! (`HAMGAM_SCREENSHOTS=docs/img/hq-console` refreshes docs/hq-console.md's).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use fantoccini::{Client, Locator};
use hamgam_central::rules::registry::{DealerProfile, DealerRegistry};
use hamgam_gateway::tls::{self, TlsMaterial};
use hamgam_gateway::PeerIdentity;
use hamgam_tests::browser::{self, Driver};
use hamgam_tests::hq_network::{self, NOW_MS};
use hamgam_tests::{dealer, TestHub, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICY: &str = "/etc/chromium/policies/managed/hamgam-tests.json";

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e}; install Debian's libnss3-tools and openssl (tests/run.sh does)")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A home folder whose NSS database trusts the deployment's CA and holds `hq`'s certificate
/// and key, as an HQ person's browser would after importing them.
fn browser_home(hq: &TlsMaterial, dir: &Path) -> PathBuf {
    let home = dir.join("home");
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("nss folder");
    let db_arg = format!("sql:{}", db.display());
    for (name, pem) in [
        ("ca.pem", &hq.ca_pem),
        ("hq.pem", &hq.cert_pem),
        ("hq.key", &hq.key_pem),
    ] {
        std::fs::write(dir.join(name), pem).expect("pem written");
    }
    let path = |name: &str| dir.join(name).display().to_string();
    run("certutil", &["-N", "-d", &db_arg, "--empty-password"]);
    run(
        "certutil",
        &[
            "-A",
            "-d",
            &db_arg,
            "-n",
            "hamgam-ca",
            "-t",
            "C,,",
            "-i",
            &path("ca.pem"),
        ],
    );
    run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            &path("hq.pem"),
            "-inkey",
            &path("hq.key"),
            "-name",
            "hamgam-hq",
            "-out",
            &path("hq.p12"),
            "-passout",
            "pass:hamgam",
        ],
    );
    run(
        "pk12util",
        &["-i", &path("hq.p12"), "-d", &db_arg, "-W", "hamgam"],
    );
    home
}

/// What the console answers `GET path` over a TLS connection presenting `material` (`None`:
/// no certificate); `Err` when the connection or handshake fails.
async fn get(
    hub: &TestHub,
    material: Option<&TlsMaterial>,
    ca_pem: &[u8],
    path: &str,
) -> Result<String, String> {
    let config = match material {
        Some(m) => tls::client_config(m).expect("client config"),
        None => tls::anonymous_client_config(ca_pem).expect("client config"),
    };
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(hub.console_addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

async fn count(browser: &Client, css: &str) -> usize {
    browser
        .find_all(Locator::Css(css))
        .await
        .expect("finds")
        .len()
}

async fn open(browser: &Client, url: &str) {
    browser
        .goto(url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .expect("its text")
}

async fn screenshot(browser: &Client, name: &str) {
    browser::screenshot(
        browser,
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "hq-console",
        name,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_sees_every_chart_drills_down_to_a_customer_and_dealers_are_refused() {
    assert!(
        Path::new(POLICY).exists(),
        "{POLICY} is missing: Chromium then never presents the HQ certificate. Run tests/run.sh \
         as root once (it writes the policy), or write {{\"AutoSelectCertificateForUrls\": \
         [\"{{\\\"pattern\\\":\\\"https://127.0.0.1\\\",\\\"filter\\\":{{}}}}\"]}} there"
    );
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let registry = DealerRegistry::new(
        &hq_network::REGIONS
            .iter()
            .map(|(id, region)| DealerProfile {
                dealer_id: (*id).into(),
                name: format!("Dealer {id}"),
                region: (*region).into(),
                ..Default::default()
            })
            .collect::<Vec<_>>(),
    );
    let clock = hamgam_gateway::Clock::Fixed(NOW_MS);
    let hub = TestHub::start_at(&pki, &dirs.path().join("hub"), registry, clock).await;
    hq_network::sync(&pki, &hub, dirs.path()).await;

    // --- who may see it ------------------------------------------------------------------------
    let hq = pki.client_material(PeerIdentity::Hq("alice".into()));
    let as_hq = get(&hub, Some(&hq), &hq.ca_pem, "/?lang=en")
        .await
        .expect("HQ is served");
    assert!(as_hq.starts_with("HTTP/1.1 200"), "{as_hq}");
    let bad = get(&hub, Some(&hq), &hq.ca_pem, "/funnel?as_of=2026-13-01")
        .await
        .expect("answered");
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("YYYY-MM-DD"),
        "{bad}"
    );
    let no_rule = get(
        &hub,
        Some(&hq),
        &hq.ca_pem,
        "/dealers/D-1001/flags?rule=Q99",
    )
    .await
    .expect("answered");
    assert!(
        no_rule.starts_with("HTTP/1.1 400") && no_rule.contains("rule=Q01"),
        "{no_rule}"
    );
    let as_dealer = pki.client_material(PeerIdentity::Dealer(dealer("D-1001")));
    for path in [
        "/",
        "/funnel",
        "/customers",
        "/service-due",
        "/dealers/D-1001",
        "/dealers/D-1001/flags?rule=Q01",
    ] {
        let answer = get(&hub, Some(&as_dealer), &hq.ca_pem, path)
            .await
            .expect("a dealer gets an answer");
        assert!(answer.starts_with("HTTP/1.1 403"), "{path}: {answer}");
        assert!(
            !answer.contains("D-1002") && !answer.contains("<svg"),
            "{path}: {answer}"
        );
    }
    let anonymous = get(&hub, None, &hq.ca_pem, "/").await;
    assert!(
        !anonymous.as_deref().unwrap_or("").contains("200 OK"),
        "no certificate, no page: {anonymous:?}"
    );

    // --- the browser with HQ's certificate --------------------------------------------------
    let home = browser_home(&hq, dirs.path());
    let driver = Driver::start(Some(&home));
    let browser = driver.browser(&dirs.path().join("profile")).await;
    let base = format!("https://127.0.0.1:{}", hub.console_addr.port());
    let en = "lang=en&as_of=2026-11-18";

    open(&browser, &format!("{base}/funnel?{en}")).await;
    // Seven stages in each of the two regions.
    assert_eq!(count(&browser, "svg.bars").await, 2);
    assert_eq!(count(&browser, "rect.bar").await, 14);
    screenshot(&browser, "funnel").await;

    open(&browser, &format!("{base}/dealers?{en}")).await;
    assert_eq!(
        count(&browser, "circle.point").await,
        2,
        "one point per dealer"
    );
    screenshot(&browser, "dealers").await;

    open(&browser, &format!("{base}/cohorts?{en}")).await;
    // 2024-Q4, 2025-Q3 and 2025-Q4, each at delivery and one year on.
    assert_eq!(count(&browser, "polyline.line").await, 3);
    assert_eq!(count(&browser, "circle.point").await, 6);
    screenshot(&browser, "cohorts").await;

    open(&browser, &format!("{base}/complaints?{en}")).await;
    assert_eq!(
        count(&browser, "rect.bar").await,
        1,
        "only D-1001 has complaints"
    );
    screenshot(&browser, "complaints").await;
    // Every number drills down: D-1001's reopened count to C1, its open-past-SLA count to C3.
    for (column, figure, name) in [(4, "reopened", "علی رضایی"), (6, "past_sla", "رضا احمدی")]
    {
        let css = format!("table#complaints tr:nth-child(2) td:nth-child({column}) a");
        let number = browser
            .find(Locator::Css(&css))
            .await
            .unwrap_or_else(|_| panic!("the {figure} number links"));
        assert_eq!(number.text().await.expect("text"), "1", "{figure}");
        browser::click_to_page(&browser, number, figure).await;
        assert_eq!(
            count(&browser, "table#customers tr").await,
            2,
            "{figure}: a header and one customer"
        );
        let listed = text(&browser, "table#customers").await;
        assert!(listed.contains(name), "{figure}: {listed}");
        open(&browser, &format!("{base}/complaints?{en}")).await;
    }

    open(&browser, &format!("{base}/service-due?{en}")).await;
    assert_eq!(
        count(&browser, "table#service-due tr").await,
        3,
        "a header and two vehicles"
    );
    screenshot(&browser, "service-due").await;

    open(&browser, &format!("{base}/leads?{en}")).await;
    assert_eq!(
        count(&browser, "rect.bar").await,
        3,
        "web, call, test drive"
    );
    screenshot(&browser, "leads").await;
    // The web bar leads to the two customers who came through the web.
    let web = browser
        .find(Locator::Css("rect.bar[data-label='web']"))
        .await
        .expect("the web bar");
    browser::click_to_page(&browser, web, "the web bar").await;
    assert_eq!(
        count(&browser, "table#customers tr").await,
        3,
        "a header and two customers"
    );
    let first = browser
        .find(Locator::Css("table#customers tr:nth-child(2) a"))
        .await
        .expect("a customer link");
    browser::click_to_page(&browser, first, "the first customer").await;
    let golden = text(&browser, "table#golden").await;
    let names = ["علی رضایی", "کیان نوری"];
    assert!(names.iter().any(|n| golden.contains(n)), "{golden}");
    let journey_rows = count(&browser, "table#journey tr").await;
    assert!(
        journey_rows >= 2,
        "the 360 lists the records behind the journey"
    );
    screenshot(&browser, "customer").await;

    // A dealer's point leads to its scorecard.
    open(&browser, &format!("{base}/dealers?{en}")).await;
    let point = browser
        .find(Locator::Css("circle.point[data-label='D-1001']"))
        .await
        .expect("D-1001's point");
    browser::click_to_page(&browser, point, "D-1001's point").await;
    assert!(text(&browser, "h1").await.contains("D-1001"));
    // The scorecard's Q01 count leads to the staff-entered survey it flagged, with its reason.
    let q01 = browser
        .find(Locator::Css("table#scorecard a[href*='rule=Q01']"))
        .await
        .expect("the scorecard lists Q01 with a link");
    browser::click_to_page(&browser, q01, "the Q01 count").await;
    assert_eq!(
        count(&browser, "table#flagged tr").await,
        2,
        "a header and the one survey Q01 flagged"
    );
    let flagged = text(&browser, "table#flagged").await;
    assert!(flagged.contains("survey"), "{flagged}");
    screenshot(&browser, "flagged").await;

    // Persian by default: right to left, Jalali dates in Persian digits.
    open(&browser, &format!("{base}/funnel?as_of=2026-11-18")).await;
    let dir = browser
        .execute("return document.documentElement.dir;", vec![])
        .await
        .expect("script runs");
    assert_eq!(dir, serde_json::Value::from("rtl"));
    assert_eq!(text(&browser, "#as-of").await, "۱۴۰۵/۰۸/۲۷");
    screenshot(&browser, "funnel-fa").await;

    browser.close().await.expect("browser closed");
    hub.stop().await;
}
