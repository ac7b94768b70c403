//! Feedback at entry: the real `dealer-agent record` runs the hub's own one-record syntax
//! checks (shared in `hamgam_proto::entry`) and prints what they find, in Persian and English,
//! while still saving the record; the running agent's local API returns the same warnings; and
//! the hub rejects a Solar Hijri year typed as a Gregorian one with the same words.

use std::process::Command;

use hamgam_dealer_agent::local_api::{self, LocalRequest, LocalResponse};
use hamgam_dealer_agent::AgentStore;
use hamgam_tests::processes::binaries;
use hamgam_tests::{dealer, test_clock};

fn agent(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(&binaries().agent)
        .args(["--dealer", "D-1042", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .expect("dealer-agent runs")
}

#[test]
fn the_cli_saves_and_names_what_the_hub_will_find() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("agent");
    // A code melli with a wrong check digit and a landline as mobile.
    let out = agent(
        &data,
        &[
            "record",
            "customer",
            "-f",
            "customerRef=C-1",
            "-f",
            "partyType=PARTY_TYPE_PERSON",
            "-f",
            "givenName=مریم",
            "-f",
            "familyName=رضایی",
            "-f",
            "nationalId=0013542418",
            "-f",
            "mobile=02188776655",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("saved customer as seq 1"), "{stdout}");
    assert!(stdout.contains("2 warning(s)"), "{stdout}");
    assert!(
        stdout.contains("C01 customer.national_id: کد ملی"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fails the code melli check digit"),
        "{stdout}"
    );
    assert!(stdout.contains("C03 customer.mobile"), "{stdout}");
    assert!(
        !stdout.contains("0013542418"),
        "no personal data echoed: {stdout}"
    );

    // A Jalali year typed as Gregorian is caught and named as such; the record is kept.
    let out = agent(
        &data,
        &[
            "record",
            "retail-delivery",
            "-f",
            "vin=NAAP41FE0RJ000007",
            "-f",
            "saleDate=1403-05-12",
            "-f",
            "deliveryDate=2024-08-02",
            "-f",
            "saleCategory=SALE_CATEGORY_RETAIL",
            "-f",
            r#"parties=[{"role":"PARTY_ROLE_BUYER","customerRef":"C-1"}]"#,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("saved retail-delivery as seq 2"),
        "{stdout}"
    );
    assert!(stdout.contains("R00 retail_delivery.sale_date"), "{stdout}");
    assert!(stdout.contains("Solar Hijri"), "{stdout}");
    assert!(stdout.contains("خورشیدی"), "{stdout}");

    // A clean record gets no warning.
    let out = agent(
        &data,
        &[
            "record",
            "lead",
            "-f",
            "customerRef=C-1",
            "-f",
            "contactedAtMs=now",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("saved lead as seq 3"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn the_local_api_returns_the_same_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = AgentStore::open(dir.path(), dealer("D-1042"))
        .expect("store")
        .with_clock(test_clock());
    let answer = local_api::handle(
        &store,
        LocalRequest::Capture {
            staff_id: "S-1".into(),
            kind: "repair-order".into(),
            payload: serde_json::json!({
                "roNumber": "RO-1",
                "vin": "NAAP41FE0RJ00000O",
                "openedAtMs": (hamgam_tests::TEST_NOW_MS - 3_600_000).to_string(),
                "payType": "PAY_TYPE_CUSTOMER",
            }),
        },
    );
    let LocalResponse::Saved { seq, warnings, .. } = answer else {
        panic!("saved: {answer:?}");
    };
    assert_eq!(seq, 1);
    let found: Vec<(&str, &str)> = warnings
        .iter()
        .map(|w| (w.rule_id.as_str(), w.field.as_str()))
        .collect();
    assert_eq!(found, vec![("V01", "repair_order.vin")]);
    assert!(warnings[0].reason_fa().contains("شمارهٔ شاسی"));
}
