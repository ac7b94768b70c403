//! A hand-written, independent check of the simulator's labels: it reads a simulated network the
//! way RULES.md reads records and says which rules each record breaks, so a test can compare that
//! with the labels the generator wrote. It follows the labelling conventions of
//! `docs/simulator.md` (later record of a pair, every record of a group). S04 reads a dealer's
//! month: ten or more deliveries in its last three days at over 2.5 times the rest's daily rate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hamgam_dealer_agent::simulate::{DealerProfile, SimulatedNetwork, SimulatedRecord};
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::text::normalize;
use hamgam_proto::values::{CompanyId, Mobile, NationalId, PostalCode, Vin};

const DAY_MS: i64 = 86_400_000;

/// Where a record is: dealer id and index in that dealer's log.
pub type At = (String, usize);

fn date_ms(d: &Option<pb::Date>) -> Option<i64> {
    let d = d.as_ref()?;
    let month = time::Month::try_from(u8::try_from(d.month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(d.year, month, u8::try_from(d.day).ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

fn is_named(c: &pb::CustomerUpsert) -> bool {
    if c.party_type == pb::PartyType::Person as i32 {
        !(c.given_name.is_empty() && c.family_name.is_empty())
    } else {
        !c.organization_name.is_empty()
    }
}

fn placeholder_mobile(m: &Mobile) -> bool {
    hamgam_dealer_agent::simulate::people::looks_like_placeholder(m.national_digits())
}

/// Whether a reading at `t` of `km` was taken after the replacement `o`: by its day, and on
/// the day itself by the recorded time, or else by which recorded reading it is nearer.
fn on_new_cluster(o: &pb::OdometerReplacement, t: i64, km: u32) -> bool {
    let Some(day) = date_ms(&o.replaced_on) else {
        return false;
    };
    if t.div_euclid(DAY_MS) != day.div_euclid(DAY_MS) {
        return t > day;
    }
    match o
        .replaced_at_ms
        .filter(|a| a.div_euclid(DAY_MS) == day.div_euclid(DAY_MS))
    {
        Some(at) => t >= at,
        None => km.abs_diff(o.reading_after_km) <= km.abs_diff(o.reading_before_km),
    }
}

/// The rules each record breaks, by the hand-written reading.
pub fn check(network: &SimulatedNetwork, now_ms: i64) -> BTreeMap<At, BTreeSet<String>> {
    let mut found: BTreeMap<At, BTreeSet<String>> = BTreeMap::new();
    let mut flag = |at: &At, rule: &str| {
        found.entry(at.clone()).or_default().insert(rule.to_owned());
    };
    let all: Vec<(At, &SimulatedRecord)> = network
        .logs
        .iter()
        .flat_map(|(d, log)| {
            log.iter()
                .enumerate()
                .map(move |(i, r)| ((d.clone(), i), r))
        })
        .collect();
    let profiles: HashMap<&str, &DealerProfile> = network
        .dealers
        .iter()
        .map(|p| (p.dealer_id.as_str(), p))
        .collect();

    // Customer records by (dealer, customer_ref).
    let mut customers: HashMap<(String, String), &pb::CustomerUpsert> = HashMap::new();
    for ((d, _), r) in &all {
        if let Payload::Customer(c) = &r.payload {
            customers.insert((d.clone(), c.customer_ref.clone()), c);
        }
    }

    // Per-record checks.
    let mut readings: HashMap<String, Vec<(i64, u32, Option<At>)>> = HashMap::new();
    let mut replacements: HashMap<String, Vec<&pb::OdometerReplacement>> = HashMap::new();
    let mut deliveries: HashMap<String, Vec<(i64, At, bool)>> = HashMap::new();
    let mut ros: Vec<(At, &pb::RepairOrder)> = Vec::new();
    for (at, r) in &all {
        match &r.payload {
            Payload::Customer(c) => {
                let person = c.party_type == pb::PartyType::Person as i32;
                if !is_named(c) {
                    flag(at, "R00");
                }
                if person {
                    if let Err(e) = NationalId::parse(&c.national_id) {
                        flag(at, e.rule_id());
                    }
                }
                match Mobile::parse(&c.mobile) {
                    Err(e) => flag(at, e.rule_id()),
                    Ok(m) if placeholder_mobile(&m) => flag(at, "C04"),
                    Ok(_) => {}
                }
                if let Some(a) = &c.address {
                    if PostalCode::parse(&a.postal_code).is_err() {
                        flag(at, "C06");
                    }
                }
            }
            Payload::RetailDelivery(d) => {
                if d.vin.is_empty() {
                    flag(at, "R00");
                    continue;
                }
                let vin = match Vin::parse(&d.vin) {
                    Ok(v) => v,
                    Err(_) => {
                        flag(at, "V01");
                        continue;
                    }
                };
                if !vin.model_year_code_ok() {
                    flag(at, "V02");
                }
                if !vin.check_digit_ok() {
                    flag(at, "V03");
                    continue;
                }
                let (sale, delivery) = (date_ms(&d.sale_date), date_ms(&d.delivery_date));
                if let (Some(s), Some(dl)) = (sale, delivery) {
                    if dl < s || dl > now_ms {
                        // Rejected: in quarantine, so no part of any vehicle's history.
                        flag(at, "S01");
                        continue;
                    }
                }
                let dl = delivery.unwrap_or(r.event_ms);
                readings.entry(vin.to_string()).or_default().push((
                    r.event_ms,
                    d.odometer_km,
                    None,
                ));
                let retail = d.sale_category == pb::SaleCategory::Retail as i32;
                deliveries
                    .entry(vin.to_string())
                    .or_default()
                    .push((dl, at.clone(), retail));
                // S03: sold to the dealer itself as retail.
                if retail {
                    let own_id = &profiles[at.0.as_str()].company_national_id;
                    let to_itself = d.parties.iter().any(|p| {
                        customers
                            .get(&(at.0.clone(), p.customer_ref.clone()))
                            .and_then(|c| CompanyId::parse(&c.company_national_id).ok())
                            .is_some_and(|id| id.as_str() == own_id)
                    });
                    if to_itself {
                        flag(at, "S03");
                    }
                }
            }
            Payload::RepairOrder(ro) => {
                // Every check of the record's own fields runs, so a malformed order (R00) is
                // told of its VIN too; it joins no history.
                match Vin::parse(&ro.vin) {
                    Err(_) => {
                        flag(at, "V01");
                        continue;
                    }
                    Ok(v) if !v.model_year_code_ok() => flag(at, "V02"),
                    Ok(_) => {}
                }
                if ro.ro_number.is_empty() {
                    flag(at, "R00");
                    continue;
                }
                let mut usable = true;
                if ro.odometer_out_km < ro.odometer_in_km || ro.odometer_in_km > 1_000_000 {
                    flag(at, "O02");
                    usable = false;
                }
                if ro.completed_at_ms < ro.opened_at_ms {
                    flag(at, "RO2");
                    usable = false;
                }
                if ro.opened_at_ms > now_ms + 10 * 60_000 {
                    flag(at, "T01");
                }
                if usable {
                    readings.entry(ro.vin.clone()).or_default().push((
                        ro.opened_at_ms,
                        ro.odometer_in_km,
                        Some(at.clone()),
                    ));
                    ros.push((at.clone(), ro));
                }
            }
            Payload::OdometerReplacement(o) => {
                if Vin::parse(&o.vin).is_ok_and(|v| !v.model_year_code_ok()) {
                    flag(at, "V02");
                }
                replacements.entry(o.vin.clone()).or_default().push(o);
            }
            _ => {}
        }
    }

    // O01 / O03: each repair-order reading against the readings before it.
    for (vin, list) in &mut readings {
        list.sort_by_key(|x| x.0);
        for i in 0..list.len() {
            let (t, km, Some(at)) = list[i].clone() else {
                continue;
            };
            // Readings on two sides of a replacement are never compared.
            let replaced_between = |t0: i64, km0: u32| {
                replacements.get(vin).is_some_and(|r| {
                    r.iter()
                        .any(|o| on_new_cluster(o, t0, km0) != on_new_cluster(o, t, km))
                })
            };
            let comparable: Vec<&(i64, u32, Option<At>)> = list[..i]
                .iter()
                .filter(|(t0, km0, _)| *t0 < t && !replaced_between(*t0, *km0))
                .collect();
            if comparable.iter().any(|(_, km0, _)| *km0 > km) {
                flag(&at, "O01");
            }
            if let Some((t0, km0, _)) = comparable.last() {
                let days = ((t - t0) as f64 / DAY_MS as f64).max(1.0);
                if km > *km0 && (km - km0) as f64 / days > 1500.0 {
                    flag(&at, "O03");
                }
            }
        }
    }

    // S04: per dealer and month, the last three days against the rest of the month.
    let mut months: BTreeMap<(String, i32, u8), Vec<(i64, At)>> = BTreeMap::new();
    for list in deliveries.values() {
        for (dl, at, _) in list {
            let date = time::OffsetDateTime::from_unix_timestamp(dl / 1000)
                .expect("date")
                .date();
            months
                .entry((at.0.clone(), date.year(), date.month() as u8))
                .or_default()
                .push((*dl, at.clone()));
        }
    }
    for ((_, year, month), list) in &months {
        let month = time::Month::try_from(*month).expect("month");
        let days = time::util::days_in_month(month, *year) as i64;
        let first = time::Date::from_calendar_date(*year, month, 1)
            .expect("first")
            .midnight()
            .assume_utc()
            .unix_timestamp()
            * 1000;
        let tail_from = first + (days - 3) * DAY_MS;
        let tail: Vec<&At> = list
            .iter()
            .filter(|(t, _)| *t >= tail_from)
            .map(|x| &x.1)
            .collect();
        let body = (list.len() - tail.len()).max(1) as f64 / (days - 3) as f64;
        if tail.len() >= 10 && tail.len() as f64 / 3.0 > 2.5 * body {
            for at in tail {
                flag(at, "S04");
            }
        }
    }

    // S02: the later of two retail deliveries of one VIN.
    for list in deliveries.values_mut() {
        list.sort_by_key(|x| x.0);
        let retail: Vec<_> = list.iter().filter(|x| x.2).collect();
        for later in retail.iter().skip(1) {
            flag(&later.1, "S02");
        }
    }

    // Repair-order history rules.
    let delivered: HashMap<&str, i64> = deliveries
        .iter()
        .filter_map(|(vin, l)| l.first().map(|x| (vin.as_str(), x.0)))
        .collect();
    let mut by_vin: HashMap<&str, Vec<&(At, &pb::RepairOrder)>> = HashMap::new();
    let mut by_number: HashMap<(String, &str), Vec<&(At, &pb::RepairOrder)>> = HashMap::new();
    for entry in &ros {
        by_vin.entry(entry.1.vin.as_str()).or_default().push(entry);
        by_number
            .entry((entry.0 .0.clone(), entry.1.ro_number.as_str()))
            .or_default()
            .push(entry);
    }
    for (at, ro) in &ros {
        let billable = ro.pay_type == pb::PayType::Customer as i32
            || ro.pay_type == pb::PayType::Warranty as i32;
        if let Some(dl) = delivered.get(ro.vin.as_str()) {
            if billable && ro.opened_at_ms < *dl {
                flag(at, "RO1");
            }
            // 24 months: to the end of the day 24 calendar months after delivery.
            let warranty_end = hamgam_proto::calendar::months_window_end_ms(*dl, 24);
            if ro.pay_type == pb::PayType::Warranty as i32
                && (ro.opened_at_ms > warranty_end || ro.odometer_in_km > 60_000)
            {
                flag(at, "W01");
            }
        }
    }
    for list in by_number.values_mut() {
        list.sort_by_key(|x| x.1.opened_at_ms);
        for later in list.iter().skip(1) {
            if later.1.vin != list[0].1.vin || later.1.opened_at_ms != list[0].1.opened_at_ms {
                flag(&later.0, "RO3");
            }
        }
    }
    for list in by_vin.values_mut() {
        list.sort_by_key(|x| x.1.opened_at_ms);
        for (i, (at, ro)) in list.iter().map(|e| (&e.0, e.1)).enumerate() {
            let job = ro.job_lines.first().map(|j| {
                (
                    j.labor_op_code.as_str(),
                    j.parts.first().map(|p| p.part_number.as_str()),
                )
            });
            if list[..i].iter().any(|(_, earlier)| {
                ro.opened_at_ms - earlier.opened_at_ms <= 30 * DAY_MS
                    && earlier.job_lines.first().map(|j| {
                        (
                            j.labor_op_code.as_str(),
                            j.parts.first().map(|p| p.part_number.as_str()),
                        )
                    }) == job
            }) {
                flag(at, "W02");
            }
            // W03: in some 60-day span that holds this visit, three or more dealers.
            let in_cluster = list.iter().any(|(_, start)| {
                let span = start.opened_at_ms..=start.opened_at_ms + 60 * DAY_MS;
                span.contains(&ro.opened_at_ms) && {
                    let dealers: BTreeSet<&str> = list
                        .iter()
                        .filter(|(_, x)| span.contains(&x.opened_at_ms))
                        .map(|(a, _)| a.0.as_str())
                        .collect();
                    dealers.len() >= 3
                }
            });
            if in_cluster {
                flag(at, "W03");
            }
        }
    }

    // C05 / C07: groups of customer records.
    let mut by_mobile: HashMap<String, (BTreeSet<String>, Vec<At>)> = HashMap::new();
    let mut names_by_id: HashMap<String, (BTreeSet<String>, Vec<At>)> = HashMap::new();
    for (at, r) in &all {
        let Payload::Customer(c) = &r.payload else {
            continue;
        };
        if !is_named(c) {
            continue; // malformed records (R00) are quarantined, not counted
        }
        let identity = NationalId::parse(&c.national_id)
            .map(|x| x.to_string())
            .or_else(|_| CompanyId::parse(&c.company_national_id).map(|x| x.as_str().to_owned()))
            .unwrap_or_else(|_| format!("{}:{}", at.0, c.customer_ref));
        if let Ok(m) = Mobile::parse(&c.mobile) {
            if !placeholder_mobile(&m) {
                let entry = by_mobile.entry(m.e164().to_owned()).or_default();
                entry.0.insert(identity.clone());
                entry.1.push(at.clone());
            }
        }
        if let Ok(id) = NationalId::parse(&c.national_id) {
            let entry = names_by_id.entry(id.to_string()).or_default();
            entry
                .0
                .insert(normalize(&format!("{} {}", c.given_name, c.family_name)));
            entry.1.push(at.clone());
        }
    }
    for (identities, ats) in by_mobile.values() {
        if identities.len() > 3 {
            for at in ats {
                flag(at, "C05");
            }
        }
    }
    for (names, ats) in names_by_id.values() {
        if names.len() > 1 {
            for at in ats {
                flag(at, "C07");
            }
        }
    }

    // Q01: surveys from the dealer's staff, or right after the visit closed.
    for (at, r) in &all {
        let Payload::Survey(s) = &r.payload else {
            continue;
        };
        if s.subject_ref.is_empty() {
            flag(at, "R00");
            continue;
        }
        let staff_mobiles: BTreeSet<String> = profiles[at.0.as_str()]
            .staff
            .iter()
            .filter_map(|m| {
                Mobile::parse(&format!("0{}", m.mobile))
                    .ok()
                    .map(|m| m.e164().to_owned())
            })
            .collect();
        let from_staff = !s.entered_by_staff_id.is_empty()
            || Mobile::parse(&s.respondent_mobile).is_ok_and(|m| staff_mobiles.contains(m.e164()));
        let too_soon = by_number
            .get(&(at.0.clone(), s.subject_ref.as_str()))
            .and_then(|l| l.first())
            .is_some_and(|(_, ro)| s.submitted_at_ms - ro.completed_at_ms < 10 * 60_000);
        if from_staff || too_soon {
            flag(at, "Q01");
        }
    }
    for (at, r) in &all {
        match &r.payload {
            Payload::VehicleStatus(v)
                if Vin::parse(&v.vin).is_ok_and(|v| !v.model_year_code_ok()) =>
            {
                flag(at, "V02")
            }
            Payload::Complaint(c) if Vin::parse(&c.vin).is_ok_and(|v| !v.model_year_code_ok()) => {
                flag(at, "V02")
            }
            Payload::Lead(l) if l.customer_ref.is_empty() => flag(at, "R00"),
            Payload::Complaint(c) if c.case_ref.is_empty() => flag(at, "R00"),
            _ => {}
        }
    }
    found
}
