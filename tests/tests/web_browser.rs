//! The staff screen in a real browser: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, from Debian's `chromium-driver`; `tests/run.sh` installs both), against the
//! agent's real web server on 127.0.0.1:0 over a real store, syncing to a real hub over mutual
//! TLS. A service adviser logs in, enters a customer and a repair order in Persian with a
//! Jalali date and Persian digits, sees it pending, syncs, finds the rejection with the hub's
//! Persian reason in the needs-fixing list, corrects it from there, syncs and sees it accepted,
//! finds the customer by a spelling variant of the name, and the vehicle's history across the
//! network by its VIN.
//!
//! The pages' screenshots go to `$CARGO_TARGET_TMPDIR/staff-screen/`, and also to
//! `$HAMGAM_SCREENSHOTS` when it is set (`HAMGAM_SCREENSHOTS=docs/img/staff-screen` refreshes
//! those of docs/staff-guide.md).
//!
//! The browser and its driver: `hamgam_tests::browser` (never skipped).

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use hamgam_dealer_agent::staff::{self, Role};
use hamgam_dealer_agent::web::{self, WebOptions};
use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::record::v1::Outcome;
use hamgam_proto::values::{national_id_check_digit, Vin};
use hamgam_tests::browser::{self, Driver};
use hamgam_tests::{dealer, session_options, test_clock, within, TestHub, TestPki};
use tokio_util::sync::CancellationToken;

async fn screenshot(browser: &Client, name: &str) {
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser::screenshot(browser, target_tmp, "staff-screen", name).await;
}

async fn type_into(browser: &Client, id: &str, text: &str) {
    let field = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no field #{id}: {e}"));
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

async fn choose(browser: &Client, id: &str, label: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no list #{id}: {e}"))
        .select_by_label(label)
        .await
        .unwrap_or_else(|e| panic!("no `{label}` in #{id}: {e}"));
}

async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .expect("clicked");
}

/// Clicks `#id`, which loads another page, and waits (at most 20 s) until the browser shows
/// the new page whole: the old page is marked before the click, so a page still being left is
/// never read by mistake.
async fn click_to_page(browser: &Client, id: &str) {
    let element = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"));
    browser::click_to_page(browser, element, &format!("#{id}")).await;
}

/// The text of `#id` once the page's script has shown it (at most 20 s). Read in one script
/// call: the script replaces its warnings as answers come, so an element found earlier may be
/// gone by the time it is read.
async fn text_when_shown(browser: &Client, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = browser
            .execute(
                "var e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
                vec![serde_json::Value::from(id)],
            )
            .await
            .expect("script runs");
        if let serde_json::Value::String(text) = text {
            return text;
        }
        assert!(Instant::now() < deadline, "#{id} not shown within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text_of(browser: &Client, id: &str) -> String {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .text()
        .await
        .expect("its text")
}

/// The page's direction as the browser lays it out.
async fn direction(browser: &Client) -> (String, String) {
    let found = browser
        .execute(
            "return [document.documentElement.dir, getComputedStyle(document.body).direction];",
            vec![],
        )
        .await
        .expect("script runs");
    let pair: (String, String) = serde_json::from_value(found).expect("two strings");
    pair
}

/// Persian digits for Latin ones.
fn persian(text: &str) -> String {
    text.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x06F0 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_adviser_enters_syncs_corrects_and_looks_up_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dir.path().join("hub")).await;
    let store = AgentStore::open(&dir.path().join("agent"), dealer("D-1042"))
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
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1042")));
    let sync_options = session_options();

    let for_screen = endpoint.clone();
    let options = WebOptions {
        clock: test_clock(),
        hub: Some(std::sync::Arc::new(move || Ok(for_screen.clone()))),
        ..WebOptions::default()
    };
    let router = web::router(store.clone(), options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(web::serve(listener, router, shutdown.clone()));

    let driver = Driver::start(None);
    let browser = driver.browser(&dir.path().join("profile")).await;

    // Logging in: the page is Persian and laid out right to left.
    browser.goto(&format!("{base}/")).await.unwrap();
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/login"));
    assert_eq!(
        direction(&browser).await,
        ("rtl".to_owned(), "rtl".to_owned())
    );
    type_into(&browser, "staff_id", "s-104").await;
    type_into(&browser, "password", "sara-password").await;
    screenshot(&browser, "login").await;
    click_to_page(&browser, "login").await;
    assert!(text_of(&browser, "who").await.contains("سارا احمدی"));

    // A customer, typed as staff would: Persian name, code melli and mobile in Persian digits.
    let first_nine = "001234567";
    let national_id = format!("{first_nine}{}", national_id_check_digit(first_nine));
    click_to_page(&browser, "nav-customer").await;
    type_into(&browser, "customerRef", "C-77").await;
    choose(&browser, "partyType", "شخص حقیقی").await;
    choose(&browser, "segment", "مشتری شخصی (B2C)").await;
    type_into(&browser, "givenName", "محمدرضا").await;
    type_into(&browser, "familyName", "کریمی").await;
    type_into(&browser, "nationalId", &persian(&national_id)).await;
    type_into(&browser, "mobile", "۰۹۱۲۷۳۵۸۱۴۶").await;
    click_to_page(&browser, "save").await;
    assert!(
        text_of(&browser, "saved")
            .await
            .contains("ذخیره شد (شماره‌ی ۱)"),
        "the customer is saved as seq 1"
    );

    // A repair order with a Jalali date and Persian digits, and a VIN one character short.
    let short_vin = "NAAN01CE5KK12345";
    click_to_page(&browser, "nav-repair-order").await;
    type_into(&browser, "roNumber", "RO-۷۰۱").await;
    type_into(&browser, "ownerRef", "C-77").await;
    type_into(&browser, "vin", short_vin).await;
    type_into(&browser, "odometerInKm", "۴۲٬۰۰۰").await;
    type_into(&browser, "openedAtMs", "۱۴۰۵/۰۸/۲۷").await;
    choose(&browser, "payType", "آزاد (به هزینه‌ی مشتری)").await;
    type_into(&browser, "jobLines-0-laborOpCode", "EN-100").await;
    type_into(
        &browser,
        "jobLines-0-complaint",
        "صدای موتور هنگام روشن شدن",
    )
    .await;
    type_into(&browser, "jobLines-0-actualHours", "۱٫۵").await;
    // The entry checks run as the VIN is typed, before anything is saved.
    let live = text_when_shown(&browser, "vin-live-1").await;
    assert!(live.starts_with("V01"), "{live}");
    assert_eq!(
        store.status().unwrap().last_seq,
        1,
        "checking saves nothing"
    );
    click_to_page(&browser, "save").await;
    assert!(text_of(&browser, "saved").await.contains("شماره‌ی ۲"));
    // The entry check warns next to the VIN field, in Persian; the order is saved all the same.
    let warning = text_of(&browser, "vin-warning-1").await;
    assert!(warning.starts_with("V01"), "{warning}");
    screenshot(&browser, "repair-order").await;
    let saved = store.record(2).unwrap().expect("seq 2");
    assert_eq!(
        saved.staff_id, "s-104",
        "the record's staff is who logged in"
    );
    let Some(Payload::RepairOrder(order)) = &saved.payload else {
        panic!("not a repair order: {saved:?}")
    };
    // 27 Aban 1405 is 18 November 2026; its Tehran midnight is 20:30 UTC the day before.
    assert_eq!(order.opened_at_ms, 1_794_947_400_000);
    assert_eq!(
        (order.ro_number.as_str(), order.odometer_in_km),
        ("RO-701", 42_000)
    );
    assert_eq!(order.advisor_id, "s-104");

    // Pending on the dashboard, with today's date in Jalali and Persian digits.
    click_to_page(&browser, "nav-dashboard").await;
    assert_eq!(text_of(&browser, "pending").await, "۲");
    assert!(browser.source().await.unwrap().contains("۱۴۰۵"));

    // Sync to the hub over mutual TLS: the short VIN is rejected (V01).
    within(
        30,
        "sync",
        sync_loop::sync_once(&store, &endpoint, &sync_options),
    )
    .await
    .expect("syncs");
    let verdict = |seq: u64| {
        store
            .verdicts()
            .unwrap()
            .into_iter()
            .find(|v| v.seq == seq)
            .unwrap_or_else(|| panic!("no verdict for seq {seq}"))
    };
    assert_eq!(verdict(1).outcome(), Outcome::Accepted, "{:?}", verdict(1));
    assert_eq!(verdict(2).outcome(), Outcome::Rejected, "{:?}", verdict(2));
    browser.refresh().await.unwrap();
    assert_eq!(text_of(&browser, "pending").await, "۰");
    let fixing = text_of(&browser, "needs-fixing").await;
    let v01 = verdict(2)
        .findings
        .into_iter()
        .find(|f| f.rule_id == "V01")
        .expect("a V01 finding");
    assert!(fixing.contains("رد شد"), "{fixing}");
    assert!(
        fixing.contains(&v01.reason_fa),
        "the hub's Persian reason: {fixing}"
    );
    screenshot(&browser, "needs-fixing").await;

    // The correction form is prefilled, with the hub's reason next to the VIN.
    click_to_page(&browser, "fix-link-2").await;
    let vin_field = browser.find(Locator::Id("vin")).await.unwrap();
    assert_eq!(
        vin_field.prop("value").await.unwrap().as_deref(),
        Some(short_vin)
    );
    let opened = browser.find(Locator::Id("openedAtMs")).await.unwrap();
    assert_eq!(
        opened.prop("value").await.unwrap().as_deref(),
        Some("۱۴۰۵/۰۸/۲۷")
    );
    assert!(text_of(&browser, "vin-finding-1")
        .await
        .contains(&v01.reason_fa));
    // Without a reason the browser does not send it (the server refuses it too: web_ui.rs).
    let right_vin = Vin::with_check_digit("NAAN01CE0KK123456").unwrap();
    type_into(&browser, "vin", right_vin.as_str()).await;
    click(&browser, "save").await;
    let missing = browser
        .execute(
            "return document.getElementById('reason').validity.valueMissing;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(missing, serde_json::json!(true));
    assert_eq!(store.status().unwrap().last_seq, 2, "nothing saved");
    type_into(&browser, "reason", "شماره‌ی شاسی یک نویسه کم تایپ شده بود").await;
    screenshot(&browser, "correction").await;
    click_to_page(&browser, "save").await;
    assert!(text_of(&browser, "saved").await.contains("اصلاحیه‌ی رکورد ۲"));

    // Synced, the hub judges seq 2 again on the corrected content: accepted, nothing to fix.
    within(
        30,
        "sync",
        sync_loop::sync_once(&store, &endpoint, &sync_options),
    )
    .await
    .expect("syncs");
    assert_eq!(verdict(2).outcome(), Outcome::Accepted, "{:?}", verdict(2));
    assert_eq!(verdict(3).outcome(), Outcome::Accepted, "{:?}", verdict(3));
    click_to_page(&browser, "nav-dashboard").await;
    assert_eq!(
        text_of(&browser, "fixing-heading").await,
        "نیازمند اصلاح (۰)"
    );
    screenshot(&browser, "dashboard").await;

    // Lookup by a spelling variant: Arabic yeh and kaf, and a space in the first name.
    click_to_page(&browser, "nav-lookup").await;
    type_into(&browser, "q", "محمد رضا كريمي").await;
    click_to_page(&browser, "search").await;
    let customers = text_of(&browser, "customers").await;
    assert!(customers.contains("محمدرضا کریمی"), "{customers}");
    assert!(customers.contains("C-77"), "{customers}");
    assert!(
        customers.contains("پذیرش تعمیر"),
        "the repair order is listed: {customers}"
    );
    screenshot(&browser, "lookup").await;
    // A VIN: this branch's records and, from the hub, its history across the network.
    type_into(&browser, "q", right_vin.as_str()).await;
    click_to_page(&browser, "search").await;
    // Here the VIN is on the correction (the repair order had the short one).
    let here = text_of(&browser, "vin-records").await;
    assert!(
        here.contains("اصلاحیه") && here.contains("پذیرفته"),
        "{here}"
    );
    let network = text_of(&browser, "network-visits").await;
    assert!(
        network.contains("D-1042") && network.contains("۴۲۰۰۰") && network.contains("EN-100"),
        "{network}"
    );
    screenshot(&browser, "vin-lookup").await;
    // The English switch.
    click_to_page(&browser, "switch-lang").await;
    assert_eq!(
        direction(&browser).await,
        ("ltr".to_owned(), "ltr".to_owned())
    );

    browser.close().await.unwrap();
    drop(driver);
    shutdown.cancel();
    serving.await.unwrap().unwrap();
    hub.stop().await;
}
