//! Generated dealer histories for merge and convergence tests: people registered at several
//! dealers with variant spellings (ي/ی, ك/ک, ZWNJ or a space) and digit forms (Persian,
//! Arabic-Indic, `+98` / `0098` / `09`), people sharing a family phone, a near-duplicate name
//! for HQ review, a national ID given two names, concurrent edits of one customer at two
//! dealers, cars sold, serviced under a new owner (a transfer), sold twice, corrections that
//! amend or withdraw earlier records, and imported DMS history (`Record.origin`) from two
//! source systems with a spell of one source's clock set ahead, one imported record amended
//! and one withdrawn.

use std::collections::BTreeMap;

use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::values::{national_id_check_digit, Vin};

use crate::judged::Shuffle;

const DAY: i64 = 86_400_000;

/// A person of the generated world.
#[derive(Debug, Clone)]
pub struct Person {
    pub national_id: String,
    pub given: String,
    pub family: String,
    /// `09` + 9 digits.
    pub mobile: String,
}

/// A generated history: each dealer's log as its agent would send it.
pub struct History {
    pub logs: BTreeMap<String, Vec<pb::Record>>,
    pub people: Vec<Person>,
}

/// Given names of the generated world (letters that have Arabic look-alikes: ی, ک).
pub const GIVEN: &[&str] = &[
    "علی",
    "رضا",
    "مریم",
    "زهرا",
    "یاسر",
    "کاوه",
    "نیکو",
    "سکینه",
    "یوسف",
    "کیان",
];
/// Family names of the generated world (some with a ZWNJ).
pub const FAMILY: &[&str] = &[
    "کریمی‌نژاد",
    "یزدانی",
    "کاظمی",
    "نیک‌پور",
    "یکتا",
    "کوهی",
    "شکیبا",
    "یاوری",
];

fn national_id(rng: &mut Shuffle) -> String {
    loop {
        let nine: String = (0..9)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        if nine[3..].chars().all(|c| c == '0') || nine.chars().all(|c| nine.starts_with(c)) {
            continue;
        }
        return format!("{nine}{}", national_id_check_digit(&nine));
    }
}

/// `text` as another keyboard or form would write it: Arabic ي/ك, a space for the ZWNJ.
pub fn variant_spelling(text: &str, rng: &mut Shuffle) -> String {
    let arabic = rng.below(2) == 0;
    let space = rng.below(2) == 0;
    text.chars()
        .map(|c| match c {
            'ی' if arabic => 'ي',
            'ک' if arabic => 'ك',
            '\u{200C}' if space => ' ',
            c => c,
        })
        .collect()
}

/// Digits in Persian or Arabic-Indic script, or left ASCII.
pub fn variant_digits(text: &str, rng: &mut Shuffle) -> String {
    let script = rng.below(3);
    text.chars()
        .map(|c| match (script, c.to_digit(10)) {
            (1, Some(d)) => char::from_u32('۰' as u32 + d).unwrap_or(c),
            (2, Some(d)) => char::from_u32('٠' as u32 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// A mobile `09xxxxxxxxx` as `09..`, `+98 9..` or `0098-9..`, in any digit script.
pub fn variant_mobile(mobile: &str, rng: &mut Shuffle) -> String {
    let rest = &mobile[1..];
    let form = match rng.below(3) {
        0 => mobile.to_owned(),
        1 => format!("+98 {} {} {}", &rest[..3], &rest[3..6], &rest[6..]),
        _ => format!("0098-{rest}"),
    };
    variant_digits(&form, rng)
}

/// One dealer's log being written: records numbered from 1, captured two days before `now`
/// a minute apart, stamped by the hybrid logical clock.
pub struct Log {
    pub dealer: String,
    pub records: Vec<pb::Record>,
    pub now: i64,
}

impl Log {
    pub fn new(dealer: &str, now: i64) -> Self {
        Log {
            dealer: dealer.into(),
            records: Vec::new(),
            now,
        }
    }

    /// Appends an imported record with `payload` and its `origin`; returns its record id.
    pub fn push_imported(&mut self, payload: Payload, origin: pb::Origin) -> String {
        let id = self.push(payload);
        if let Some(record) = self.records.last_mut() {
            record.origin = Some(origin);
        }
        id
    }

    /// Appends a record with `payload`; returns its record id.
    pub fn push(&mut self, payload: Payload) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let seq = self.records.len() as u64 + 1;
        let at = self.now - 2 * DAY + seq as i64 * 60_000;
        self.records.push(pb::Record {
            record_id: id.clone(),
            dealer_id: self.dealer.clone(),
            seq,
            recorded_at_ms: at,
            hlc: Some(pb::HlcStamp {
                wall_ms: at,
                logical: 0,
            }),
            staff_id: "S-1".into(),
            schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
            withheld: String::new(),
            origin: None,
            payload: Some(payload),
        });
        id
    }
}

/// A person's customer record exactly as typed (no variants applied).
pub fn person(
    customer_ref: &str,
    given: &str,
    family: &str,
    national_id: &str,
    mobile: &str,
) -> Payload {
    Payload::Customer(pb::CustomerUpsert {
        customer_ref: customer_ref.into(),
        party_type: pb::PartyType::Person as i32,
        national_id: national_id.into(),
        given_name: given.into(),
        family_name: family.into(),
        mobile: mobile.into(),
        ..Default::default()
    })
}

/// A correction of `target` (a record of the same dealer) with amended content.
pub fn amend(target: &pb::Record, payload: Payload, reason: &str) -> Payload {
    use pb::correction::Amended;
    let amended = match payload {
        Payload::Customer(c) => Amended::Customer(c),
        Payload::RetailDelivery(d) => Amended::RetailDelivery(d),
        Payload::RepairOrder(r) => Amended::RepairOrder(r),
        other => panic!("amend: unsupported payload {other:?}"),
    };
    Payload::Correction(pb::Correction {
        target_record_id: target.record_id.clone(),
        reason: reason.into(),
        retract: false,
        amended: Some(amended),
    })
}

fn customer(customer_ref: &str, p: &Person, with_id: bool, rng: &mut Shuffle) -> Payload {
    Payload::Customer(pb::CustomerUpsert {
        customer_ref: customer_ref.into(),
        party_type: pb::PartyType::Person as i32,
        national_id: if with_id {
            variant_digits(&p.national_id, rng)
        } else {
            String::new()
        },
        given_name: variant_spelling(&p.given, rng),
        family_name: variant_spelling(&p.family, rng),
        mobile: variant_mobile(&p.mobile, rng),
        ..Default::default()
    })
}

fn date(ms: i64) -> pb::Date {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    pb::Date {
        year: t.year(),
        month: t.month() as i32,
        day: t.day() as i32,
    }
}

pub fn delivery(vin: &str, buyer_ref: &str, at: i64) -> Payload {
    Payload::RetailDelivery(pb::RetailDelivery {
        deal_ref: format!("DL-{vin}"),
        vin: vin.into(),
        model_code: "X1".into(),
        model_name: "Model".into(),
        model_year: 2026,
        sale_date: Some(date(at)),
        delivery_date: Some(date(at)),
        odometer_km: 5,
        sale_category: pb::SaleCategory::Retail as i32,
        salesperson_id: "S-1".into(),
        parties: vec![pb::DeliveryParty {
            role: pb::PartyRole::Buyer as i32,
            customer_ref: buyer_ref.into(),
        }],
    })
}

pub fn repair_order(number: &str, vin: &str, owner_ref: &str, at: i64, km: u32) -> Payload {
    Payload::RepairOrder(pb::RepairOrder {
        ro_number: number.into(),
        vin: vin.into(),
        owner_ref: owner_ref.into(),
        driver_ref: owner_ref.into(),
        opened_at_ms: at,
        completed_at_ms: at + 3_600_000,
        odometer_in_km: km,
        odometer_out_km: km,
        advisor_id: "S-1".into(),
        pay_type: pb::PayType::Customer as i32,
        job_lines: vec![pb::JobLine {
            line_number: 1,
            labor_op_code: format!("OP-{number}"),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// A history of `dealers` dealers and about `people` people, from `seed`, dated before `now`.
pub fn generate(seed: u64, dealers: usize, people: usize, now: i64) -> History {
    let mut rng = Shuffle::new(seed);
    let dealers = dealers.max(2);
    let mut logs: Vec<Log> = (1..=dealers)
        .map(|d| Log {
            dealer: format!("D-{}", 1000 + d),
            records: Vec::new(),
            now,
        })
        .collect();
    let folk: Vec<Person> = (0..people.max(4))
        .map(|i| Person {
            national_id: national_id(&mut rng),
            given: GIVEN[rng.below(GIVEN.len() as u64) as usize].into(),
            family: FAMILY[rng.below(FAMILY.len() as u64) as usize].into(),
            mobile: format!(
                "0912{:07}",
                1_000_000 + i * 7_919 + rng.below(5_000) as usize
            ),
        })
        .collect();
    // Everyone at one to three dealers, sometimes without the national ID, in any spelling.
    let mut refs: Vec<Vec<(usize, String)>> = vec![Vec::new(); folk.len()];
    for (i, p) in folk.iter().enumerate() {
        let at = 1 + rng.below(3.min(dealers as u64)) as usize;
        let first = rng.below(dealers as u64) as usize;
        for k in 0..at {
            let d = (first + k) % dealers;
            let r = format!("P{i}");
            let with_id = rng.below(4) != 0;
            let payload = customer(&r, p, with_id, &mut rng);
            logs[d].push(payload);
            refs[i].push((d, r));
        }
    }
    // A family phone: a relative with the first person's mobile and family name.
    let relative = Person {
        national_id: national_id(&mut rng),
        given: if folk[0].given == "مریم" {
            "کاوه"
        } else {
            "مریم"
        }
        .into(),
        ..folk[0].clone()
    };
    let d = refs[0][0].0;
    let payload = customer("REL-0", &relative, true, &mut rng);
    logs[d].push(payload);
    // A near-duplicate for HQ: the second person at another dealer, one letter off, no ID.
    let near = Person {
        given: format!("{}ا", folk[1].given),
        ..folk[1].clone()
    };
    let d = (refs[1][0].0 + 1) % dealers;
    let payload = customer("NEAR-1", &near, false, &mut rng);
    logs[d].push(payload);
    // One national ID under two names: the third person's ID with another family name.
    let other_name = Person {
        family: if folk[2].family == "یکتا" {
            "کوهی"
        } else {
            "یکتا"
        }
        .into(),
        ..folk[2].clone()
    };
    let d = (refs[2][0].0 + 1) % dealers;
    let payload = customer("ALIAS-2", &other_name, true, &mut rng);
    logs[d].push(payload);
    // Concurrent edits: the fourth person gets a new mobile at two dealers.
    for (k, (d, r)) in refs[3].clone().into_iter().enumerate() {
        let moved = Person {
            mobile: format!("0935{:07}", 2_000_000 + k),
            ..folk[3].clone()
        };
        let payload = customer(&r, &moved, true, &mut rng);
        logs[d].push(payload);
    }
    // Cars: sold by one dealer, serviced elsewhere under a new owner; one sold by two.
    for (v, (i, p)) in folk.iter().enumerate().enumerate().take(folk.len().min(6)) {
        let _ = p;
        let vin = Vin::with_check_digit(&format!("NAAP{:02}EXAMPLE{:04}", v % 100, v))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let (d, r) = refs[i][0].clone();
        let sold = now - 35 * DAY;
        logs[d].push(delivery(&vin, &r, sold));
        let next = (i + 1) % folk.len();
        let (d2, r2) = refs[next][0].clone();
        logs[d2].push(repair_order(
            &format!("RO-{v}"),
            &vin,
            &r2,
            sold + 5 * DAY,
            900,
        ));
        if v == 0 {
            let d3 = (d + 1) % dealers;
            let buyer = format!("P{i}-B");
            logs[d3].push(customer(&buyer, &folk[i], true, &mut rng));
            logs[d3].push(delivery(&vin, &buyer, sold + DAY));
        }
    }
    // Corrections: amend one customer's family name, withdraw another customer record.
    let (d, r) = refs[4 % folk.len()][0].clone();
    if let Some(target) = logs[d]
        .records
        .iter()
        .find(|rec| matches!(&rec.payload, Some(Payload::Customer(c)) if c.customer_ref == r))
    {
        let target_id = target.record_id.clone();
        let mut amended = match &target.payload {
            Some(Payload::Customer(c)) => c.clone(),
            _ => pb::CustomerUpsert::default(),
        };
        amended.family_name = "یزدانی".into();
        logs[d].push(Payload::Correction(pb::Correction {
            target_record_id: target_id,
            reason: "typo".into(),
            retract: false,
            amended: Some(pb::correction::Amended::Customer(amended)),
        }));
    }
    let (d, r) = refs[5 % folk.len()][0].clone();
    if let Some(target) = logs[d]
        .records
        .iter()
        .find(|rec| matches!(&rec.payload, Some(Payload::Customer(c)) if c.customer_ref == r))
    {
        let target_id = target.record_id.clone();
        logs[d].push(Payload::Correction(pb::Correction {
            target_record_id: target_id,
            reason: "entered twice".into(),
            retract: true,
            amended: None,
        }));
    }
    for (d, log) in logs.iter_mut().enumerate() {
        imported_history(log, d, now, &mut rng);
    }
    History {
        logs: logs.into_iter().map(|l| (l.dealer, l.records)).collect(),
        people: folk,
    }
}

/// A DMS export of a year ago in the order the DMS made it: leads from `dms:rayan`, every
/// fifth from `dms:other`, with three of `dms:rayan`'s made while its clock ran two hours
/// ahead (T01 on the last of them, whose next record is on time). Then one imported record is
/// amended and the last of the spell withdrawn (the one before it then meets the on-time one).
fn imported_history(log: &mut Log, d: usize, now: i64, rng: &mut Shuffle) {
    let mut made = now - 400 * DAY;
    let ahead_from = 3 + rng.below(4);
    let mut ids = Vec::new();
    for k in 0..14u64 {
        made += (1 + rng.below(20) as i64) * 60_000;
        let ahead = if (ahead_from..ahead_from + 3).contains(&k) && k % 5 != 4 {
            2 * 3_600_000
        } else {
            0
        };
        let source = if k % 5 == 4 { "dms:other" } else { "dms:rayan" };
        let origin = pb::Origin {
            source_system: source.into(),
            source_record_id: format!("{d}-{k}"),
            created_at_ms: made + ahead,
        };
        ids.push((
            log.push_imported(lead(&format!("IMP-{d}-{k}"), made), origin.clone()),
            origin,
        ));
    }
    let corrected = |log: &mut Log, k: usize, amended: Option<Payload>| {
        let (target, origin) = ids[k].clone();
        let retract = amended.is_none();
        let amended = amended.and_then(|p| match p {
            Payload::Lead(l) => Some(pb::correction::Amended::Lead(l)),
            _ => None,
        });
        log.push_imported(
            Payload::Correction(pb::Correction {
                target_record_id: target,
                reason: "changed in the DMS".into(),
                retract,
                amended,
            }),
            origin,
        );
    };
    corrected(log, 1, Some(lead(&format!("IMP-{d}-1b"), now - 399 * DAY)));
    corrected(log, (ahead_from + 2) as usize, None);
}

/// A valid code melli: `first_nine` digits and their check digit.
pub fn nid(first_nine: &str) -> String {
    format!("{first_nine}{}", national_id_check_digit(first_nine))
}

/// The `n`th test VIN of an Iranian WMI, with its check digit.
pub fn vin(n: u32) -> String {
    Vin::with_check_digit(&format!("NAAP41FE0RJ{n:06}"))
        .map(|v| v.to_string())
        .unwrap_or_else(|e| panic!("test VIN {n}: {e}"))
}

/// A showroom lead of `customer_ref` at `at`.
pub fn lead(customer_ref: &str, at: i64) -> Payload {
    Payload::Lead(pb::Lead {
        lead_ref: format!("L-{customer_ref}"),
        customer_ref: customer_ref.into(),
        contacted_at_ms: at,
        ..Default::default()
    })
}
