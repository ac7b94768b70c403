//! The staff screen (`dealer-agent/src/web`) over HTTP: the real router and server on
//! 127.0.0.1:0 in this process, over a real `AgentStore` in a temp dir with the test clock,
//! driven by a plain HTTP/1.1 client on a TCP socket (no browser: those tests come later).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hamgam_dealer_agent::jalali::JalaliDate;
use hamgam_dealer_agent::staff::{self, Role};
use hamgam_dealer_agent::web::{self, WebOptions};
use hamgam_dealer_agent::AgentStore;
use hamgam_gateway::DealerId;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::test_clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const HERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// Another loopback address (Linux routes all of 127/8 to lo): the "other PC" whose failed
/// logins must not lock out this one.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// One HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the page's first hidden `csrf` field.
    fn csrf(&self) -> String {
        let start = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
            + r#"name="csrf" value=""#.len();
        let len = self.body[start..].find('"').unwrap();
        self.body[start..start + len].to_owned()
    }
}

/// A browser's cookie jar, reduced to name=value pairs.
#[derive(Default, Clone)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, reply: &Reply) {
        for cookie in reply.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').unwrap();
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends one request from `from` and reads the whole answer (`Connection: close`).
async fn send(
    server: SocketAddr,
    from: Ipv4Addr,
    method: &str,
    path: &str,
    jar: &Jar,
    form: Option<&[(&str, &str)]>,
) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let body = form
        .map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nCookie: {}\r\n",
        jar.header()
    );
    if form.is_some() {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Logs in as `staff_id` from `from`; returns the login's answer (the jar keeps its cookies).
async fn log_in(
    server: SocketAddr,
    from: Ipv4Addr,
    jar: &mut Jar,
    staff_id: &str,
    password: &str,
) -> Reply {
    let page = send(server, from, "GET", "/login", jar, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    jar.take(&page);
    let token = page.csrf();
    let form = [
        ("csrf", token.as_str()),
        ("staff_id", staff_id),
        ("password", password),
    ];
    let reply = send(server, from, "POST", "/login", jar, Some(&form)).await;
    jar.take(&reply);
    reply
}

#[tokio::test]
async fn staff_log_in_and_enter_a_repair_order_on_the_persian_screen() {
    let dir = tempfile::tempdir().unwrap();
    let store = AgentStore::open(dir.path(), DealerId::new("D-1042").unwrap())
        .unwrap()
        .with_clock(test_clock());
    staff::add(
        &store,
        "s-104",
        "سارا احمدی",
        Role::Service,
        "sara-password",
    )
    .unwrap();
    staff::add(&store, "s-105", "Reza", Role::Service, "reza-password").unwrap();
    staff::add(&store, "s-106", "Mina", Role::Sales, "mina-password").unwrap();
    let options = WebOptions {
        clock: test_clock(),
        ..WebOptions::default()
    };
    let router = web::router(store.clone(), options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(web::serve(listener, router, shutdown.clone()));

    // No page without a login: to the login page, which is Persian and right to left.
    let mut jar = Jar::default();
    for path in ["/", "/new/repair-order", "/fix/1", "/lookup?q=x"] {
        let reply = send(server, HERE, "GET", path, &jar, None).await;
        assert_eq!(
            (reply.status, reply.header("location")),
            (303, Some("/login")),
            "{path}"
        );
    }
    let login = send(server, HERE, "GET", "/login", &jar, None).await;
    assert!(
        login.body.contains(r#"<html lang="fa" dir="rtl">"#),
        "{}",
        login.body
    );
    let english = send(server, HERE, "GET", "/login?lang=en", &jar, None).await;
    assert!(english.body.contains(r#"<html lang="en" dir="ltr">"#));

    // Wrong passwords are refused; after five the account is slowed, even with the right one,
    // and so is the address they came from; other staff elsewhere still log in.
    let mut other_pc = Jar::default();
    for _ in 0..5 {
        let reply = log_in(server, ELSEWHERE, &mut other_pc, "s-104", "wrong-password").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert!(reply.body.contains("رمز عبور درست نیست"), "{}", reply.body);
    }
    let slowed = log_in(server, HERE, &mut Jar::default(), "s-104", "sara-password").await;
    assert_eq!(slowed.status, 429, "{}", slowed.body);
    assert!(
        slowed.body.contains("ورود برای مدتی بسته شده است"),
        "{}",
        slowed.body
    );
    assert!(slowed.body.contains("۱۵ دقیقه"), "{}", slowed.body);
    let from_there = log_in(server, ELSEWHERE, &mut other_pc, "s-105", "reza-password").await;
    assert_eq!(from_there.status, 429, "the address is slowed too");

    // A login works, with an HttpOnly, SameSite=Strict session cookie.
    let reply = log_in(server, HERE, &mut jar, "s-105", "reza-password").await;
    assert_eq!(
        (reply.status, reply.header("location")),
        (303, Some("/")),
        "{}",
        reply.body
    );
    let session = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("hamgam_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let dashboard = send(server, HERE, "GET", "/", &jar, None).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert!(dashboard.body.contains(r#"dir="rtl""#));
    assert!(dashboard.body.contains("Reza"));

    // A POST without the form's token is refused and saves nothing.
    let form_page = send(server, HERE, "GET", "/new/repair-order", &jar, None).await;
    assert_eq!(form_page.status, 200, "{}", form_page.body);
    let token = form_page.csrf();
    let order = [
        ("roNumber", "RO-7"),
        ("ownerRef", "C-77"),
        ("vin", "NAAN01CE5KK123456"),
        ("odometerInKm", "۴۲۰۰۰"),
        ("openedAtMs", "۱۴۰۵/۰۸/۲۷"),
        ("payType", "PAY_TYPE_WARRANTY"),
        ("jobLines.0.laborOpCode", "EN-100"),
        ("jobLines.0.complaint", "صدای موتور"),
        ("jobLines.0.actualHours", "۱٫۵"),
        // Not a field of the form: the record's staff is who is logged in.
        ("staff_id", "s-104"),
    ];
    let forged = send(
        server,
        HERE,
        "POST",
        "/new/repair-order",
        &jar,
        Some(&order),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong: Vec<(&str, &str)> = [("csrf", "0123456789abcdef0123456789abcdef")]
        .into_iter()
        .chain(order)
        .collect();
    let forged = send(
        server,
        HERE,
        "POST",
        "/new/repair-order",
        &jar,
        Some(&wrong),
    )
    .await;
    assert_eq!(forged.status, 403);
    assert_eq!(store.status().unwrap().last_seq, 0, "nothing saved");

    // With it, the repair order is saved: Tehran midnight of 27 Aban 1405, by the staff member.
    let with_token: Vec<(&str, &str)> = [("csrf", token.as_str())]
        .into_iter()
        .chain(order)
        .collect();
    let saved = send(
        server,
        HERE,
        "POST",
        "/new/repair-order",
        &jar,
        Some(&with_token),
    )
    .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("ذخیره شد (شماره‌ی ۱)"), "{}", saved.body);
    let record = store.record(1).unwrap().expect("saved as seq 1");
    assert_eq!(record.staff_id, "s-105");
    let Some(Payload::RepairOrder(ro)) = record.payload else {
        panic!("not a repair order: {record:?}")
    };
    let tehran_midnight = JalaliDate::new(1405, 8, 27).unwrap().start_ms().unwrap();
    assert_eq!(tehran_midnight, 1_794_947_400_000, "2026-11-17T20:30:00Z");
    assert_eq!(ro.opened_at_ms, tehran_midnight);
    assert_eq!((ro.odometer_in_km, ro.owner_ref.as_str()), (42_000, "C-77"));
    assert_eq!(ro.job_lines.len(), 1);
    assert_eq!(ro.job_lines[0].actual_hours, 1.5);

    // The entry checks' warnings show next to their field, and the record is saved anyway.
    let bad_vin: Vec<(&str, &str)> = with_token
        .iter()
        .map(|&(k, v)| {
            if k == "vin" {
                (k, "NAAN01CE5KK12345")
            } else {
                (k, v)
            }
        })
        .collect();
    let warned = send(
        server,
        HERE,
        "POST",
        "/new/repair-order",
        &jar,
        Some(&bad_vin),
    )
    .await;
    assert_eq!(warned.status, 200, "{}", warned.body);
    assert!(
        warned.body.contains(r#"id="vin-warning-1""#),
        "{}",
        warned.body
    );
    assert_eq!(store.status().unwrap().last_seq, 2);

    // The form's script asks /check as staff type: the same warnings, by field, saving nothing.
    let checked = send(
        server,
        HERE,
        "POST",
        "/check/repair-order",
        &jar,
        Some(&bad_vin),
    )
    .await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    let by_field: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_str(&checked.body).expect("JSON by field");
    assert!(by_field["vin"][0].starts_with("V01"), "{by_field:?}");
    assert_eq!(
        store.status().unwrap().last_seq,
        2,
        "checking saves nothing"
    );
    let forged = send(
        server,
        HERE,
        "POST",
        "/check/repair-order",
        &jar,
        Some(&order),
    )
    .await;
    assert_eq!(forged.status, 403);

    // The dashboard shows them pending, as today's records.
    let dashboard = send(server, HERE, "GET", "/", &jar, None).await;
    assert!(
        dashboard.body.contains(r#"<dd id="pending">۲</dd>"#),
        "{}",
        dashboard.body
    );
    assert!(
        dashboard.body.contains("۱۴۰۵&#x2f;۰۸&#x2f;۲۷"),
        "today in Jalali: {}",
        dashboard.body
    );
    assert!(dashboard.body.contains("پذیرش تعمیر"));

    // A VIN lookup shows this branch's records; without a hub it says the network's are not
    // shown.
    let vin_lookup = send(
        server,
        HERE,
        "GET",
        "/lookup?q=NAAN01CE5KK123456",
        &jar,
        None,
    )
    .await;
    assert_eq!(vin_lookup.status, 200, "{}", vin_lookup.body);
    assert!(
        vin_lookup.body.contains(r#"id="vin-records""#),
        "{}",
        vin_lookup.body
    );
    assert!(
        vin_lookup.body.contains(r#"id="network-missing""#),
        "{}",
        vin_lookup.body
    );

    // A correction needs a reason: without one nothing is saved, and the page says which field.
    let fix_page = send(server, HERE, "GET", "/fix/1", &jar, None).await;
    assert_eq!(fix_page.status, 200, "{}", fix_page.body);
    assert!(
        fix_page.body.contains(r#"value="RO-7""#),
        "prefilled: {}",
        fix_page.body
    );
    let token = fix_page.csrf();
    let no_reason = [
        ("csrf", token.as_str()),
        ("roNumber", "RO-7"),
        ("reason", " "),
    ];
    let refused = send(server, HERE, "POST", "/fix/1", &jar, Some(&no_reason)).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains(r#"id="reason-warning-1""#),
        "{}",
        refused.body
    );
    assert_eq!(store.status().unwrap().last_seq, 2, "nothing saved");
    // Withdrawing with a reason saves a retraction of seq 1.
    let withdraw = [
        ("csrf", token.as_str()),
        ("reason", "دوبار ثبت شده بود"),
        ("retract", "on"),
    ];
    let saved = send(server, HERE, "POST", "/fix/1", &jar, Some(&withdraw)).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let retraction = store.record(3).unwrap().expect("saved as seq 3");
    let Some(Payload::Correction(correction)) = retraction.payload else {
        panic!("not a correction: {retraction:?}")
    };
    assert!(correction.retract && correction.amended.is_none());
    assert_eq!(correction.reason, "دوبار ثبت شده بود");
    assert_eq!(correction.target_record_id, record.record_id);

    // Logging out ends the session: its cookie no longer opens a page.
    let before_logout = jar.clone();
    let token = dashboard.csrf();
    let out = send(
        server,
        HERE,
        "POST",
        "/logout",
        &jar,
        Some(&[("csrf", token.as_str())]),
    )
    .await;
    assert_eq!(out.status, 303);
    let after = send(server, HERE, "GET", "/", &before_logout, None).await;
    assert_eq!(
        (after.status, after.header("location")),
        (303, Some("/login"))
    );

    // A sales consultant's menu has no repair-order form, and the form refuses them.
    let mut sales = Jar::default();
    let reply = log_in(server, HERE, &mut sales, "s-106", "mina-password").await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let dashboard = send(server, HERE, "GET", "/", &sales, None).await;
    assert!(
        dashboard.body.contains(r#"id="nav-lead""#),
        "{}",
        dashboard.body
    );
    assert!(!dashboard.body.contains(r#"id="nav-repair-order""#));
    let refused = send(server, HERE, "GET", "/new/repair-order", &sales, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    // Nor may they correct another's record.
    let refused = send(server, HERE, "GET", "/fix/1", &sales, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

/// GET `path` over TLS (trusting `ca_pem`) and the whole answer as text.
async fn get_over_tls(server: SocketAddr, ca_pem: &[u8], path: &str) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in hamgam_gateway::tls::parse_certificates(ca_pem, "CA").unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(hamgam_gateway::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector.connect(name, tcp).await?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`; what came is kept.
    let _ = stream.read_to_end(&mut raw).await;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

#[tokio::test]
async fn on_the_network_the_screen_is_served_over_https_only_with_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let store = AgentStore::open(&dir.path().join("agent"), DealerId::new("D-1042").unwrap())
        .unwrap()
        .with_clock(test_clock());
    // A certificate for the address staff type, from the deployment's own PKI.
    let pki = hamgam_tests::TestPki::new();
    let material = pki.hub_material();
    let (cert, key) = (dir.path().join("screen.crt"), dir.path().join("screen.key"));
    std::fs::write(&cert, &material.cert_pem).unwrap();
    hamgam_gateway::files::write_private(&key, &material.key_pem).unwrap();

    // Without HTTPS a LAN address is refused, saying what to set.
    let refused = web::check_listen("192.168.1.10:8443", false).unwrap_err();
    assert!(refused.to_string().contains("tls_certificate"), "{refused}");
    let tls = web::https_config(Some(&cert), Some(&key))
        .unwrap()
        .expect("an HTTPS config");
    assert!(web::check_listen("192.168.1.10:8443", true).is_ok());

    let options = WebOptions {
        clock: test_clock(),
        https: true,
        ..WebOptions::default()
    };
    let router = web::router(store, options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(web::serve_tls(listener, router, tls, shutdown.clone()));

    let page = get_over_tls(server, &material.ca_pem, "/login")
        .await
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(r#"<html lang="fa" dir="rtl">"#), "{page}");
    let cookie = page
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: hamgam_login=")
        })
        .expect("the login form's cookie");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.ends_with("; Secure"),
        "{cookie}"
    );
    // Plain HTTP to the HTTPS port gets no page.
    let mut plain = tokio::net::TcpStream::connect(server).await.unwrap();
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("<html"),
        "no page over plain HTTP"
    );

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
