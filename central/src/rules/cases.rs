//! Each rule fires on a case it should and stays silent on a close case it should not.

use std::collections::BTreeSet;

use super::history::{judge_group, memberships, Fact, GroupKey, Member};
use super::record::{judge, PartyIds, RecordContext};
use super::registry::{DealerProfile, DealerRegistry, StaffMember};
use super::RuleConfig;
use crate::content::*;
use crate::domain::Severity;

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_790_000_000_000; // 2026-09-21

fn registry() -> DealerRegistry {
    DealerRegistry::new(&[DealerProfile {
        dealer_id: "D-1".into(),
        company_national_id: "10101010103".into(),
        staff: vec![StaffMember {
            staff_id: "S-1".into(),
            national_id: "0499370899".into(),
            mobile: "09121112233".into(),
        }],
        ..Default::default()
    }])
}

/// Rule ids one record breaks, with an agent clock `offset_ms` off.
fn rules_with(content: &Content, offset_ms: i64) -> BTreeSet<String> {
    rules_made(content, offset_ms, NOW, false)
}

/// Rule ids one record made at `made_at_ms` breaks (`imported`: the source's time).
fn rules_made(
    content: &Content,
    offset_ms: i64,
    made_at_ms: i64,
    imported: bool,
) -> BTreeSet<String> {
    let config = RuleConfig::default();
    let registry = registry();
    let party = |r: &str| {
        (r == "OWN").then(|| PartyIds {
            national_id: None,
            company_id: Some("10101010103".into()),
        })
    };
    let ctx = RecordContext {
        dealer_id: "D-1",
        made_at_ms,
        imported,
        received_at_ms: NOW,
        clock_offset_ms: offset_ms,
        dealer: registry.dealer("D-1"),
        config: &config,
        party: &party,
    };
    judge(content, &ctx)
        .into_iter()
        .map(|f| f.rule_id)
        .collect()
}

fn rules(content: &Content) -> BTreeSet<String> {
    rules_with(content, 0)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn person(national_id: &str, mobile: &str) -> Content {
    Content::Customer(Customer {
        customer_ref: "C-1".into(),
        national_id: national_id.into(),
        given_name: "مریم".into(),
        family_name: "رضایی".into(),
        mobile: mobile.into(),
        postal_code: Some("1234567890".into()),
        ..Default::default()
    })
}

fn delivery(vin: &str) -> Delivery {
    Delivery {
        vin: vin.into(),
        sale_date_ms: Some(NOW - 10 * DAY),
        delivery_date_ms: Some(NOW - 5 * DAY),
        odometer_km: 12,
        category: SaleCategory::Retail,
        parties: vec![(PartyRole::Buyer, "C-1".into())],
        model: "Dena".into(),
    }
}

fn ro(vin: &str) -> RepairOrder {
    RepairOrder {
        ro_number: "RO-1".into(),
        vin: vin.into(),
        opened_at_ms: NOW - DAY,
        completed_at_ms: NOW - DAY + 3_600_000,
        odometer_in_km: 20_000,
        odometer_out_km: 20_005,
        pay_type: PayType::Customer,
        job_lines: vec![JobLine {
            labor_op_code: "OIL".into(),
            parts: vec!["F-1".into()],
        }],
        owner_ref: "C-1".into(),
        driver_ref: String::new(),
        total_rials: 0,
    }
}

const VIN: &str = "1M8GDM9AXKP042788"; // a textbook VIN with check digit X

#[test]
fn vin_rules() {
    assert!(rules(&Content::Delivery(delivery(VIN))).is_empty());
    assert_eq!(
        rules(&Content::Delivery(delivery("1M8GDM9AXKP04278"))),
        set(&["V01"])
    );
    assert_eq!(
        rules(&Content::Delivery(delivery("1M8GDM9AXOP042788"))),
        set(&["V01"])
    );
    // A wrong check digit is rejected in North America, flagged for an Iranian or European WMI.
    let found = |vin: &str| {
        let mut out = Vec::new();
        super::record::vin(vin, "retail_delivery", &mut out);
        out
    };
    assert_eq!(found("1M8GDM9A1KP042788")[0].severity, Severity::Reject);
    let iranian = hamgam_proto::values::Vin::with_check_digit("NAAN01CE0KK123456").unwrap();
    assert!(found(iranian.as_str()).is_empty());
    let mut wrong = iranian.as_str().to_owned();
    let bad = if wrong.as_bytes()[8] == b'7' {
        "8"
    } else {
        "7"
    };
    wrong.replace_range(8..9, bad);
    let f = found(&wrong);
    assert_eq!(
        (f[0].rule_id.as_str(), f[0].severity),
        ("V03", Severity::Flag)
    );
    // A European VIN whose check position holds the filler Z: nothing to check. A European VIN
    // with a wrong check digit (not the filler) is flagged.
    assert!(found("WVWZZZ1JZXW000001").is_empty());
    let vw = hamgam_proto::values::Vin::with_check_digit("WVWZZZ1JZXW000001").unwrap();
    assert!(found(vw.as_str()).is_empty());
    let mut vw_wrong = vw.as_str().to_owned();
    let bad = if vw_wrong.as_bytes()[8] == b'7' {
        "8"
    } else {
        "7"
    };
    vw_wrong.replace_range(8..9, bad);
    let f = found(&vw_wrong);
    assert_eq!(
        (f[0].rule_id.as_str(), f[0].severity),
        ("V03", Severity::Flag)
    );
    // Model year: U is never one, T is.
    let u = hamgam_proto::values::Vin::with_check_digit("NAAN01CE0UK123456").unwrap();
    assert_eq!(
        rules(&Content::Delivery(delivery(u.as_str()))),
        set(&["V02"])
    );
}

#[test]
fn customer_rules() {
    assert!(rules(&person("2876543214", "09351974682")).is_empty());
    // A valid code melli whose checksum remainder is below 2 (check digit = remainder, 0).
    assert!(rules(&person("1234567830", "09351974682")).is_empty());
    assert_eq!(rules(&person("1234567831", "09351974682")), set(&["C01"]));
    assert_eq!(rules(&person("2876543215", "09351974682")), set(&["C01"]));
    assert_eq!(rules(&person("1111111111", "09351974682")), set(&["C02"]));
    assert_eq!(rules(&person("0010000000", "09351974682")), set(&["C02"]));
    assert_eq!(rules(&person("2876543214", "02188776655")), set(&["C03"]));
    assert!(rules(&person("2876543214", "+98 935 197 4682")).is_empty());
    assert_eq!(rules(&person("2876543214", "09351111111")), set(&["C04"]));
    assert!(
        rules(&person("2876543214", "09351111211")).is_empty(),
        "six in a row is not seven"
    );
    // A staff member's mobile or national ID on a customer (C05, registry part).
    assert_eq!(rules(&person("2876543214", "09121112233")), set(&["C05"]));
    assert_eq!(rules(&person("0499370899", "09351974682")), set(&["C05"]));
    let Content::Customer(mut c) = person("2876543214", "09351974682") else {
        unreachable!()
    };
    c.postal_code = Some("123456789".into());
    assert_eq!(rules(&Content::Customer(c)), set(&["C06"]));
}

#[test]
fn delivery_rules() {
    let mut d = delivery(VIN);
    d.delivery_date_ms = Some(NOW - 11 * DAY);
    assert_eq!(rules(&Content::Delivery(d.clone())), set(&["S01"]));
    d.delivery_date_ms = Some(NOW - 10 * DAY); // delivered the day it was sold
    assert!(rules(&Content::Delivery(d.clone())).is_empty());
    d.delivery_date_ms = Some(NOW + DAY);
    assert_eq!(rules(&Content::Delivery(d.clone())), set(&["S01"]));
    let mut own = delivery(VIN);
    own.parties = vec![(PartyRole::Buyer, "OWN".into())];
    assert_eq!(rules(&Content::Delivery(own.clone())), set(&["S03"]));
    own.category = SaleCategory::Internal;
    assert!(
        rules(&Content::Delivery(own)).is_empty(),
        "an internal sale to itself is fine"
    );
    let mut far = delivery(VIN);
    far.odometer_km = 1_000_001;
    assert_eq!(rules(&Content::Delivery(far)), set(&["O02"]));
}

#[test]
fn repair_order_and_time_rules() {
    assert!(rules(&Content::RepairOrder(ro(VIN))).is_empty());
    let mut r = ro(VIN);
    r.odometer_out_km = 19_999;
    assert_eq!(rules(&Content::RepairOrder(r)), set(&["O02"]));
    let mut r = ro(VIN);
    r.completed_at_ms = r.opened_at_ms - 1;
    assert_eq!(rules(&Content::RepairOrder(r)), set(&["RO2"]));
    let mut r = ro(VIN);
    r.opened_at_ms = NOW + 11 * 60_000;
    r.completed_at_ms = 0;
    assert_eq!(rules(&Content::RepairOrder(r.clone())), set(&["T01"]));
    // The same time from a PC whose clock runs 20 minutes fast is no T01, but T02 flags it.
    assert_eq!(
        rules_with(&Content::RepairOrder(r.clone()), 20 * 60_000),
        set(&["T02"])
    );
    r.opened_at_ms = NOW + 9 * 60_000;
    assert!(rules(&Content::RepairOrder(r.clone())).is_empty());
    assert!(rules_with(&Content::RepairOrder(r), 4 * 60_000).is_empty());
    let entered = |mobile: &str, staff: &str| {
        Content::Survey(Survey {
            customer_ref: String::new(),
            subject: SurveySubject::RepairOrder,
            subject_ref: "RO-1".into(),
            submitted_at_ms: NOW,
            respondent_mobile: mobile.into(),
            csat: 5,
            nps: Some(10),
            entered_by_staff_id: staff.into(),
        })
    };
    let survey = |mobile: &str| entered(mobile, "");
    assert_eq!(rules(&survey("09121112233")), set(&["Q01"]));
    assert!(rules(&survey("09121112234")).is_empty());
    // Entered by a staff member, even with the customer's own mobile: flagged (RULES.md Q01).
    assert_eq!(rules(&entered("09121112234", "S-1")), set(&["Q01"]));
    // A staff id the registry does not know is still a staff member's entry.
    assert_eq!(rules(&entered("09121112234", "S-99")), set(&["Q01"]));
}

#[test]
fn imported_history_is_judged_by_the_time_its_source_made_it() {
    // S01: delivered 5 days ago. Recorded by the agent now, that is in the past; made by the
    // DMS a week ago, the record claims a delivery that had not happened yet.
    let mut d = delivery(VIN);
    d.delivery_date_ms = Some(NOW - 5 * DAY);
    assert!(rules_made(&Content::Delivery(d.clone()), 0, NOW, false).is_empty());
    assert_eq!(
        rules_made(&Content::Delivery(d.clone()), 0, NOW - 7 * DAY, true),
        set(&["S01"])
    );
    assert!(rules_made(&Content::Delivery(d.clone()), 0, NOW - 5 * DAY, true).is_empty());
    // T01 against the hub clock: an imported event's time is the DMS's, so the agent's
    // measured offset (20 minutes fast) does not excuse it; T02 still flags the session.
    let mut r = ro(VIN);
    r.opened_at_ms = NOW + 20 * 60_000;
    r.completed_at_ms = 0;
    let ro = Content::RepairOrder(r);
    assert_eq!(rules_made(&ro, 20 * 60_000, NOW, false), set(&["T02"]));
    assert_eq!(
        rules_made(&ro, 20 * 60_000, NOW - DAY, true),
        set(&["T01", "T02"])
    );
}

#[test]
fn source_sequence_flags_a_record_made_while_the_source_clock_ran_ahead() {
    let key = GroupKey::SourceSequence {
        dealer: "D-1".into(),
        source: "dms:rayan".into(),
    };
    let t = NOW - 300 * DAY;
    let min = 60_000;
    let made = |at: i64| ("D-1", 0, Fact::Made { created_ms: at });
    // Seqs 3 and 4 made while the DMS clock ran two hours ahead; seq 5 is on time again.
    let result = group(
        key.clone(),
        vec![
            made(t),
            made(t + 5 * min),
            made(t + 120 * min + 10 * min),
            made(t + 120 * min + 20 * min),
            made(t + 30 * min),
            made(t + 40 * min),
        ],
    );
    assert_eq!(flagged(&result, "T01"), vec![4]);
    // The tolerance (10 minutes): exactly 10 minutes later than the next is not flagged, a
    // millisecond more is.
    let at_limit = group(key.clone(), vec![made(t + 10 * min), made(t)]);
    assert!(flagged(&at_limit, "T01").is_empty());
    let beyond = group(key.clone(), vec![made(t + 10 * min + 1), made(t)]);
    assert_eq!(flagged(&beyond, "T01"), vec![1]);
    // The dealer's order decides, whatever order the members are listed in.
    let members: Vec<Member> = [
        (3, t + 130 * min),
        (1, t),
        (4, t + 30 * min),
        (2, t + 5 * min),
    ]
    .into_iter()
    .map(|(seq, at)| Member {
        dealer_id: "D-1".into(),
        seq,
        fact: Fact::Made { created_ms: at },
        current: Vec::new(),
    })
    .collect();
    let judged = judge_group(&key, &members, &RuleConfig::default());
    let t01: Vec<u64> = judged
        .iter()
        .filter(|(_, f)| {
            f.iter()
                .any(|f| f.rule_id == "T01" && f.field == "origin.created_at_ms")
        })
        .map(|((_, seq), _)| *seq)
        .collect();
    assert_eq!(t01, vec![3]);
}

/// Findings of a group, by member seq.
fn group(key: GroupKey, facts: Vec<(&str, i64, Fact)>) -> Vec<(u64, BTreeSet<String>)> {
    let members: Vec<Member> = facts
        .into_iter()
        .enumerate()
        .map(|(i, (dealer, _, fact))| Member {
            dealer_id: dealer.into(),
            seq: i as u64 + 1,
            fact,
            current: Vec::new(),
        })
        .collect();
    judge_group(&key, &members, &RuleConfig::default())
        .into_iter()
        .map(|((_, seq), f)| (seq, f.into_iter().map(|f| f.rule_id).collect()))
        .collect()
}

fn flagged(result: &[(u64, BTreeSet<String>)], rule: &str) -> Vec<u64> {
    result
        .iter()
        .filter(|(_, r)| r.contains(rule))
        .map(|(s, _)| *s)
        .collect()
}

fn visit(opened: i64, km: u32, pay: PayType, job: &str) -> Fact {
    Fact::RepairOrder {
        vin: VIN.into(),
        opened_ms: opened,
        completed_ms: opened + 3_600_000,
        odometer_in_km: km,
        pay_type: pay,
        jobs: vec![(job.into(), "P".into())],
    }
}

fn replaced(day_ms: i64, at_ms: Option<i64>, before_km: u32, after_km: u32) -> Fact {
    Fact::OdometerReplacement {
        replaced_ms: day_ms,
        at_ms,
        before_km,
        after_km,
    }
}

#[test]
fn an_odometer_replaced_later_the_same_day_separates_that_mornings_reading() {
    let vin = || GroupKey::Vin(VIN.into());
    let c = PayType::Customer;
    const HOUR: i64 = 3_600_000;
    // 09:00 the car comes in at 48,000 km; in the afternoon the cluster is replaced (dated that
    // day); the next visit reads 900 km on the new cluster.
    let morning = visit(150 * DAY + 9 * HOUR, 48_000, c, "A");
    let later = visit(200 * DAY, 900, c, "B");
    for replacement in [
        replaced(150 * DAY, None, 48_003, 0),
        replaced(150 * DAY, Some(150 * DAY + 15 * HOUR), 48_003, 0),
        // The time alone places it even when the readings were left at zero.
        replaced(150 * DAY, Some(150 * DAY + 15 * HOUR), 0, 0),
    ] {
        let g = group(
            vin(),
            vec![
                ("D-1", 0, visit(100 * DAY, 40_000, c, "C")),
                ("D-1", 0, morning.clone()),
                ("D-1", 0, replacement),
                ("D-2", 0, later.clone()),
            ],
        );
        assert!(flagged(&g, "O01").is_empty(), "{g:?}");
        assert!(flagged(&g, "O03").is_empty(), "{g:?}");
    }
    // Close non-cases: readings on one side of the replacement still compare with each other.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 40_000, c, "C")),
            ("D-1", 0, visit(150 * DAY + 9 * HOUR, 38_000, c, "A")),
            ("D-1", 0, replaced(150 * DAY, None, 48_003, 0)),
            ("D-2", 0, visit(200 * DAY, 5_000, c, "B")),
            ("D-2", 0, visit(230 * DAY, 900, c, "D")),
        ],
    );
    assert_eq!(flagged(&g, "O01"), vec![2, 5]);
    // A reading opened after the recorded time of the replacement is on the new cluster.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(150 * DAY + 9 * HOUR, 48_000, c, "A")),
            (
                "D-1",
                0,
                replaced(150 * DAY, Some(150 * DAY + 15 * HOUR), 0, 0),
            ),
            ("D-1", 0, visit(150 * DAY + 16 * HOUR, 30, c, "B")),
            ("D-1", 0, visit(150 * DAY + 17 * HOUR, 20, c, "E")),
        ],
    );
    assert_eq!(flagged(&g, "O01"), vec![4]);
}

fn delivered(at: i64, retail: bool) -> Fact {
    Fact::Delivery {
        delivered_ms: at,
        odometer_km: 10,
        retail,
    }
}

#[test]
fn odometer_rules() {
    let vin = || GroupKey::Vin(VIN.into());
    let c = PayType::Customer;
    // Down from 30,000 to 25,000: O01 on the later reading.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 30_000, c, "A")),
            ("D-2", 0, visit(200 * DAY, 25_000, c, "B")),
        ],
    );
    assert_eq!(flagged(&g, "O01"), vec![2]);
    // An odometer that goes down after a recorded replacement is fine.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 30_000, c, "A")),
            ("D-1", 0, replaced(150 * DAY, None, 30_010, 0)),
            ("D-2", 0, visit(200 * DAY, 25, c, "B")),
        ],
    );
    assert!(flagged(&g, "O01").is_empty());
    // Arriving in the other order changes nothing: it is the event date that counts.
    let g = group(
        vin(),
        vec![
            ("D-2", 0, visit(200 * DAY, 25_000, c, "B")),
            ("D-1", 0, visit(100 * DAY, 30_000, c, "A")),
        ],
    );
    assert_eq!(flagged(&g, "O01"), vec![1]);
    // O03: 2,000 km in one day is too far; 1,400 is not.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 10_000, c, "A")),
            ("D-1", 0, visit(101 * DAY, 12_000, c, "B")),
        ],
    );
    assert_eq!(flagged(&g, "O03"), vec![2]);
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 10_000, c, "A")),
            ("D-1", 0, visit(101 * DAY, 11_400, c, "B")),
        ],
    );
    assert!(flagged(&g, "O03").is_empty());
}

#[test]
fn sales_and_service_history_rules() {
    let vin = || GroupKey::Vin(VIN.into());
    let (c, w) = (PayType::Customer, PayType::Warranty);
    // S02: delivered new to retail twice; a fleet delivery then a retail one is not.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, true)),
            ("D-2", 0, delivered(120 * DAY, true)),
        ],
    );
    assert_eq!(flagged(&g, "S02"), vec![2]);
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, false)),
            ("D-2", 0, delivered(120 * DAY, true)),
        ],
    );
    assert!(flagged(&g, "S02").is_empty());
    // RO1: customer-pay before delivery; pre-delivery pay type is exempt.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, true)),
            ("D-1", 0, visit(90 * DAY, 5, c, "A")),
        ],
    );
    assert_eq!(flagged(&g, "RO1"), vec![2]);
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, true)),
            ("D-1", 0, visit(90 * DAY, 5, PayType::PreDelivery, "A")),
        ],
    );
    assert!(flagged(&g, "RO1").is_empty());
    // W01: warranty 25 months after delivery is out; 23 months and 59,000 km is in.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, true)),
            ("D-1", 0, visit(100 * DAY + 761 * DAY, 40_000, w, "A")),
        ],
    );
    assert_eq!(flagged(&g, "W01"), vec![2]);
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, true)),
            ("D-1", 0, visit(100 * DAY + 700 * DAY, 59_000, w, "A")),
        ],
    );
    assert!(flagged(&g, "W01").is_empty());
    let g = group(
        vin(),
        vec![
            ("D-1", 0, delivered(100 * DAY, true)),
            ("D-1", 0, visit(200 * DAY, 60_001, w, "A")),
        ],
    );
    assert_eq!(flagged(&g, "W01"), vec![2]);
    // The window's last day is the anniversary, clamped to a shorter month: delivered on
    // 29 Feb 2024 (or 31 Aug), covered through the last moment of 28 Feb 2026 (or 31 Aug).
    let at = |y: i32, m: u8, d: u8| {
        let month = time::Month::try_from(m).expect("month");
        hamgam_proto::calendar::midnight_ms(
            time::Date::from_calendar_date(y, month, d).expect("date"),
        )
    };
    for (from, last_day, day_after) in [
        (at(2024, 2, 29), at(2026, 2, 28), at(2026, 3, 1)),
        (at(2024, 8, 31), at(2026, 8, 31), at(2026, 9, 1)),
        (at(2025, 1, 31), at(2027, 1, 31), at(2027, 2, 1)),
    ] {
        let judged = |opened: i64| {
            let g = group(
                vin(),
                vec![
                    ("D-1", 0, delivered(from, true)),
                    ("D-1", 0, visit(opened, 30_000, w, "A")),
                ],
            );
            flagged(&g, "W01")
        };
        assert!(judged(last_day + DAY - 60_000).is_empty(), "{from}");
        assert_eq!(judged(day_after + 60_000), vec![2], "{from}");
    }
    // W02: the same job within 30 days at another dealer; 31 days later is not.
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 1_000, w, "A")),
            ("D-2", 0, visit(110 * DAY, 1_500, w, "A")),
        ],
    );
    assert_eq!(flagged(&g, "W02"), vec![2]);
    let g = group(
        vin(),
        vec![
            ("D-1", 0, visit(100 * DAY, 1_000, w, "A")),
            ("D-2", 0, visit(131 * DAY, 1_500, w, "A")),
        ],
    );
    assert!(flagged(&g, "W02").is_empty());
    // W03: three dealers within 60 days flags all three; spread over 70 days it does not.
    let three = |gap: i64| {
        group(
            vin(),
            vec![
                ("D-1", 0, visit(100 * DAY, 1_000, c, "A")),
                ("D-2", 0, visit((100 + gap) * DAY, 1_500, c, "B")),
                ("D-3", 0, visit((100 + 2 * gap) * DAY, 2_000, c, "C")),
            ],
        )
    };
    assert_eq!(flagged(&three(30), "W03"), vec![1, 2, 3]);
    assert!(flagged(&three(35), "W03").is_empty());
}

fn customer(identity: &str, name: &str) -> Fact {
    Fact::Customer {
        identity: identity.into(),
        name: name.into(),
    }
}

#[test]
fn shared_contact_and_identity_rules() {
    let mobile = || GroupKey::Mobile("+989351234567".into());
    // A family of three sharing a phone is fine; four unrelated customers are not.
    let three: Vec<_> = ["A", "B", "C"]
        .iter()
        .map(|i| ("D-1", 0, customer(i, i)))
        .collect();
    assert!(flagged(&group(mobile(), three.clone()), "C05").is_empty());
    let mut four = three;
    four.push(("D-2", 0, customer("D", "D")));
    assert_eq!(flagged(&group(mobile(), four), "C05"), vec![1, 2, 3, 4]);
    // The same person at four dealers is one customer.
    let same: Vec<_> = ["D-1", "D-2", "D-3", "D-4"]
        .iter()
        .map(|d| (*d, 0, customer("0499370899", "x")))
        .collect();
    assert!(flagged(&group(mobile(), same), "C05").is_empty());
    // C07: one code melli, two names; spelling variants normalise to one name first.
    let id = || GroupKey::NationalId("0499370899".into());
    let norm = hamgam_proto::text::normalize;
    let g = group(
        id(),
        vec![
            ("D-1", 0, customer("x", &norm("علي كريمي"))),
            ("D-2", 0, customer("x", &norm("علی کریمی"))),
        ],
    );
    assert!(flagged(&g, "C07").is_empty());
    let g = group(
        id(),
        vec![
            ("D-1", 0, customer("x", &norm("علی کریمی"))),
            ("D-2", 0, customer("x", &norm("رضا احمدی"))),
        ],
    );
    assert_eq!(flagged(&g, "C07"), vec![1, 2]);
}

#[test]
fn repair_order_number_and_survey_timing_rules() {
    let key = || GroupKey::RoNumber {
        dealer: "D-1".into(),
        number: "RO-7".into(),
    };
    let at = |vin: &str, opened: i64| Fact::RepairOrder {
        vin: vin.into(),
        opened_ms: opened,
        completed_ms: opened + 3_600_000,
        odometer_in_km: 1,
        pay_type: PayType::Customer,
        jobs: vec![],
    };
    let g = group(
        key(),
        vec![
            ("D-1", 0, at(VIN, 100 * DAY)),
            ("D-1", 0, at("NAAN01CE0KK123456", 120 * DAY)),
        ],
    );
    assert_eq!(flagged(&g, "RO3"), vec![2]);
    // The same visit recorded again (same VIN, same day) is not a reuse.
    let g = group(
        key(),
        vec![
            ("D-1", 0, at(VIN, 100 * DAY)),
            ("D-1", 0, at(VIN, 100 * DAY + 60_000)),
        ],
    );
    assert!(flagged(&g, "RO3").is_empty());
    let survey = |after_close_min: i64| Fact::Survey {
        submitted_ms: 100 * DAY + 3_600_000 + after_close_min * 60_000,
        top_score: true,
    };
    let g = group(
        key(),
        vec![("D-1", 0, at(VIN, 100 * DAY)), ("D-1", 0, survey(3))],
    );
    assert_eq!(flagged(&g, "Q01"), vec![2]);
    let g = group(
        key(),
        vec![("D-1", 0, at(VIN, 100 * DAY)), ("D-1", 0, survey(11))],
    );
    assert!(flagged(&g, "Q01").is_empty());
}

#[test]
fn month_rules() {
    // September 2026: 30 days; the tail is the 28th to the 30th.
    let sep = |day: i64| 1_788_220_800_000 + (day - 1) * DAY + 10 * 3_600_000;
    let key = || GroupKey::DealerMonth {
        dealer: "D-1".into(),
        month: "2026-09".into(),
    };
    let mut usual: Vec<(&str, i64, Fact)> = (1..=30)
        .flat_map(|d| (0..4).map(move |_| ("D-1", 0, delivered(sep(d), true))))
        .collect();
    assert!(
        flagged(&group(key(), usual.clone()), "S04").is_empty(),
        "4 a day all month is not bunching"
    );
    for _ in 0..24 {
        usual.push(("D-1", 0, delivered(sep(29), true)));
    }
    let g = group(key(), usual);
    assert_eq!(
        flagged(&g, "S04").len(),
        12 + 24,
        "every delivery of the tail is flagged"
    );
    // Surveys: 30 of which 29 top-scored is uniform; 27 of 30 is not.
    let surveys = |top: usize| -> Vec<(&str, i64, Fact)> {
        (0..30)
            .map(|i| {
                (
                    "D-1",
                    0,
                    Fact::Survey {
                        submitted_ms: sep(2 + i as i64 % 20),
                        top_score: i < top,
                    },
                )
            })
            .collect()
    };
    assert_eq!(flagged(&group(key(), surveys(29)), "Q01").len(), 30);
    assert!(flagged(&group(key(), surveys(27)), "Q01").is_empty());
}

#[test]
fn rejected_records_and_spoiled_fields_join_no_group() {
    let Content::Customer(c) = person("0499370899", "09351111111") else {
        unreachable!()
    };
    let findings = {
        let config = RuleConfig::default();
        let registry = registry();
        let party = |_: &str| None;
        judge(
            &Content::Customer(c.clone()),
            &RecordContext {
                dealer_id: "D-1",
                made_at_ms: NOW,
                imported: false,
                received_at_ms: NOW,
                clock_offset_ms: 0,
                dealer: registry.dealer("D-1"),
                config: &config,
                party: &party,
            },
        )
    };
    let groups: Vec<GroupKey> = memberships("D-1", &Content::Customer(c), &findings)
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    assert_eq!(
        groups,
        vec![GroupKey::NationalId("0499370899".into())],
        "a placeholder mobile groups nobody"
    );
    let mut d = delivery(VIN);
    d.sale_date_ms = Some(NOW);
    let reject = vec![crate::domain::Finding {
        rule_id: "S01".into(),
        severity: Severity::Reject,
        field: String::new(),
        reason: crate::domain::Reason::new("R00.missing"),
    }];
    assert!(memberships("D-1", &Content::Delivery(d), &reject).is_empty());
}
