//! A simulated dealer network with known truth: customers (persons and companies) who show up at
//! several dealers under variant spellings, vehicles with delivery histories and plausible
//! odometer growth, repair orders with job lines, leads, complaints and surveys, plus faults
//! injected at configurable rates per rule of RULES.md, each labelled on the record that carries
//! it. Seeded and deterministic: the same [`SimulationConfig`] gives the same network.
//!
//! Used by `dealer-agent simulate` (a dealership's share of the network, captured into its store,
//! for demos and smoke tests against a real hub) and by the `tests` crate (scenarios, property
//! tests, benchmarks).

pub mod faults;
pub mod people;
pub mod vehicles;

use std::collections::{BTreeMap, HashMap, HashSet};

use hamgam_gateway::DealerId;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use faults::{FaultRates, INJECTABLE_RULES};
use people::Customer;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// S04: the month-end days a burst falls in, and the extra deliveries it adds (on top of the
/// usual `deliveries_per_day`, so the tail runs at about four times the usual rate).
const BUNCHED_TAIL_DAYS: i64 = 3;
const BUNCHED_EXTRA: usize = 36;
/// RULES.md W01's defaults: the warranty window the simulator injects faults against.
const WARRANTY_MONTHS: u32 = 24;
const WARRANTY_KM: u32 = 60_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    pub seed: u64,
    pub dealers: Vec<DealerId>,
    /// First day of the simulated working window.
    pub start: time::Date,
    /// Working days simulated at each dealer.
    pub days: u32,
    /// The real time the records are captured; the window must end before it, and future-dated
    /// faults (T01) are dated after it.
    pub now_ms: i64,
    /// Vehicles each dealer sold before the window (its delivery history, recorded first).
    pub fleet_per_dealer: u32,
    /// New deliveries per dealer per day in the window.
    pub deliveries_per_day: u32,
    /// Service visits per dealer per day.
    pub visits_per_day: u32,
    /// Leads per dealer per day.
    pub leads_per_day: u32,
    pub faults: FaultRates,
}

impl SimulationConfig {
    /// A small network: three days at each dealer, 2% of every injectable fault.
    pub fn small(seed: u64, dealers: Vec<DealerId>, now_ms: i64) -> Self {
        let today = date_of(now_ms);
        SimulationConfig {
            seed,
            dealers,
            start: today - time::Duration::days(4),
            days: 3,
            now_ms,
            fleet_per_dealer: 150,
            deliveries_per_day: 4,
            visits_per_day: 12,
            leads_per_day: 5,
            faults: FaultRates::uniform(0.02),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.dealers.is_empty() {
            return Err("at least one dealer is needed".into());
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.dealers.iter().find(|d| !seen.insert(*d)) {
            return Err(format!("dealer {dup} is listed twice"));
        }
        let end_ms = ms_of(self.start) + self.days as i64 * DAY_MS;
        if end_ms > self.now_ms {
            return Err(format!(
                "the simulated window ({} + {} days) must end before now",
                self.start, self.days
            ));
        }
        Ok(())
    }
}

/// One record a dealer's staff make, with the faults deliberately put in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedRecord {
    pub staff_id: String,
    /// When the event happened (the record's business time), ms since the Unix epoch.
    pub event_ms: i64,
    pub payload: Payload,
    /// Rule ids of the faults this record carries (empty: clean).
    pub faults: Vec<String>,
}

pub use hamgam_proto::registry::{DealerProfile, StaffMember};

/// The whole simulated network.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedNetwork {
    pub dealers: Vec<DealerProfile>,
    /// Each dealer's records in the order staff make them.
    pub logs: BTreeMap<String, Vec<SimulatedRecord>>,
}

impl SimulatedNetwork {
    /// The records of one dealer.
    pub fn log(&self, dealer: &DealerId) -> &[SimulatedRecord] {
        self.logs
            .get(dealer.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// How many records carry each rule's fault, over the whole network.
    pub fn fault_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for record in self.logs.values().flatten() {
            for rule in &record.faults {
                *counts.entry(rule.clone()).or_default() += 1;
            }
        }
        counts
    }
}

/// Generates the network.
pub fn simulate(config: &SimulationConfig) -> Result<SimulatedNetwork, String> {
    config.check()?;
    let mut generator = Generator::new(config);
    generator.run();
    Ok(generator.finish())
}

pub fn ms_of(date: time::Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

pub fn date_of(ms: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

/// Whether a record's own fault takes it out of a group: a rejected record, or one whose grouped
/// value (the mobile for C05, the national ID for C07) is itself wrong.
fn spoils(group: &str, faults: &[String]) -> bool {
    faults.iter().any(|f| match group {
        "C05" => matches!(f.as_str(), "R00" | "C03" | "C04"),
        _ => matches!(f.as_str(), "R00" | "C01" | "C02"),
    })
}

fn party(role: pb::PartyRole, customer_ref: &str) -> pb::DeliveryParty {
    pb::DeliveryParty {
        role: role as i32,
        customer_ref: customer_ref.to_owned(),
    }
}

fn pb_date(ms: i64) -> pb::Date {
    let d = date_of(ms);
    pb::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

#[derive(Debug, Clone)]
struct Vehicle {
    vin: String,
    model_code: &'static str,
    model_name: &'static str,
    year: u32,
    owner: usize,
    driver: Option<usize>,
    delivered_ms: i64,
    /// Whether the delivery is in a dealer's log (faulty deliveries still count as made).
    delivery_recorded: bool,
    selling_dealer: usize,
    km_per_day: f64,
    /// Odometer reading subtracted after a recorded replacement.
    replaced_at_km: u32,
    last_visit_ms: i64,
    /// No more events once a fault made its history ambiguous, or it was scrapped.
    retired: bool,
}

const LABOUR_OPS: &[(&str, &str, &str, &str)] = &[
    ("OIL-01", "سرویس دوره‌ای", "تعویض روغن و فیلتر", "P-1001"),
    ("BRK-02", "صدای ترمز", "تعویض لنت جلو", "P-2040"),
    ("ENG-07", "چراغ چک روشن", "تعویض سنسور اکسیژن", "P-3310"),
    ("AC-03", "کولر خنک نمی‌کند", "شارژ گاز کولر", "P-4100"),
    ("SUS-05", "لرزش فرمان", "تعویض سیبک", "P-5021"),
];

struct Generator<'a> {
    config: &'a SimulationConfig,
    rng: ChaCha8Rng,
    dealers: Vec<DealerProfile>,
    customers: Vec<Customer>,
    /// Which customers each dealer has registered (customer refs are per dealer).
    known: HashSet<(usize, usize)>,
    vehicles: Vec<Vehicle>,
    logs: Vec<Vec<SimulatedRecord>>,
    ro_numbers: Vec<Vec<(String, String, i64)>>,
    /// Readings the hub will know of, per VIN: (event ms, km).
    readings: HashMap<String, Vec<(i64, u32)>>,
    /// Customers in a labelled group (C05, C07): every record of theirs carries the label.
    group_labels: HashMap<usize, &'static str>,
    /// No faults while set (the clean parts of a fault that spans several records).
    quiet: bool,
    /// Where each customer's records are: (dealer, index in its log).
    upserts_of: HashMap<usize, Vec<(usize, usize)>>,
    /// Repair orders without faults, per dealer: (number, VIN, opened) for RO3 to reuse.
    clean_ros: Vec<Vec<(String, String, i64)>>,
    /// S04: the span (ms) of the bunched month-end tail at each dealer that has one.
    bunched: Vec<Option<std::ops::Range<i64>>>,
}

impl<'a> Generator<'a> {
    fn new(config: &'a SimulationConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let dealers = config
            .dealers
            .iter()
            .map(|d| {
                let (province, city) = *people::CITIES
                    .choose(&mut rng)
                    .unwrap_or(&people::CITIES[0]);
                DealerProfile {
                    dealer_id: d.to_string(),
                    name: format!("نمایندگی {city} {d}"),
                    company_national_id: people::company_id(&mut rng),
                    city: city.to_owned(),
                    // HQ's sales regions follow provinces here.
                    region: province.to_owned(),
                    staff: (1..=5)
                        .map(|i| StaffMember {
                            staff_id: format!("{d}-S{i}"),
                            national_id: people::national_id(&mut rng),
                            mobile: people::mobile(&mut rng),
                        })
                        .collect(),
                    suspended: String::new(),
                }
            })
            .collect();
        Generator {
            config,
            rng,
            dealers,
            customers: Vec::new(),
            known: HashSet::new(),
            vehicles: Vec::new(),
            logs: vec![Vec::new(); config.dealers.len()],
            ro_numbers: vec![Vec::new(); config.dealers.len()],
            readings: HashMap::new(),
            group_labels: HashMap::new(),
            quiet: false,
            bunched: Vec::new(),
            upserts_of: HashMap::new(),
            clean_ros: vec![Vec::new(); config.dealers.len()],
        }
    }

    fn finish(self) -> SimulatedNetwork {
        let mut logs = BTreeMap::new();
        for (dealer, mut log) in self.dealers.iter().zip(self.logs) {
            log.sort_by_key(|r| r.event_ms);
            logs.insert(dealer.dealer_id.clone(), log);
        }
        SimulatedNetwork {
            dealers: self.dealers,
            logs,
        }
    }

    /// One fault for a record of the given eligible rules, or none; at most one per record so
    /// the truth stays unambiguous.
    fn pick_fault(&mut self, eligible: &[&'static str]) -> Option<&'static str> {
        if self.quiet {
            return None;
        }
        for rule in eligible {
            let rate = self.config.faults.rate(rule);
            if rate > 0.0 && self.rng.random_bool(rate) {
                return Some(rule);
            }
        }
        None
    }

    fn staff(&mut self, dealer: usize) -> String {
        let i = self.rng.random_range(0..self.dealers[dealer].staff.len());
        self.dealers[dealer].staff[i].staff_id.clone()
    }

    fn push(&mut self, dealer: usize, event_ms: i64, payload: Payload, mut faults: Vec<String>) {
        // A vehicle whose VIN carries a bad model-year code (V02) carries it on every record
        // that names it, not only on the delivery where the fault was made.
        let vin = match &payload {
            Payload::RepairOrder(ro) => Some(&ro.vin),
            Payload::OdometerReplacement(o) => Some(&o.vin),
            Payload::VehicleStatus(v) => Some(&v.vin),
            Payload::Complaint(c) if !c.vin.is_empty() => Some(&c.vin),
            _ => None,
        };
        if vin
            .and_then(|v| hamgam_proto::values::Vin::parse(v).ok())
            .is_some_and(|v| !v.model_year_code_ok())
            && !faults.iter().any(|f| f == "V02")
        {
            faults.push("V02".into());
        }
        let staff_id = self.staff(dealer);
        self.logs[dealer].push(SimulatedRecord {
            staff_id,
            event_ms,
            payload,
            faults,
        });
    }

    fn new_customer(&mut self) -> usize {
        let index = self.customers.len();
        let customer = people::customer(index, &mut self.rng);
        self.customers.push(customer);
        index
    }

    fn customer_ref(index: usize) -> String {
        format!("C{index:06}")
    }

    /// The customer's record at `dealer`, as that dealer's staff type it.
    fn upsert(&mut self, index: usize) -> pb::CustomerUpsert {
        let c = self.customers[index].clone();
        let rng = &mut self.rng;
        pb::CustomerUpsert {
            customer_ref: Self::customer_ref(index),
            party_type: if c.organization {
                pb::PartyType::Organization
            } else {
                pb::PartyType::Person
            } as i32,
            segment: if c.organization {
                pb::CustomerSegment::B2b
            } else {
                pb::CustomerSegment::B2c
            } as i32,
            national_id: if c.organization {
                String::new()
            } else {
                people::digits_variant(&c.national_id, rng)
            },
            company_national_id: if c.organization {
                people::digits_variant(&c.national_id, rng)
            } else {
                String::new()
            },
            given_name: people::spelling_variant(&c.given_name, rng),
            family_name: people::spelling_variant(&c.family_name, rng),
            organization_name: people::spelling_variant(&c.organization_name, rng),
            mobile: people::mobile_variant(&c.mobile, rng),
            phone: String::new(),
            email: String::new(),
            address: Some(pb::Address {
                province: c.province.clone(),
                city: c.city.clone(),
                line: format!("خیابان {} پلاک {}", c.city, index % 200 + 1),
                postal_code: people::digits_variant(&c.postal_code, rng),
            }),
            consent: Some(pb::Consent {
                marketing_sms: rng.random_bool(0.6),
                marketing_call: false,
                given_at_ms: 0,
            }),
        }
    }

    /// Puts `index` in a labelled group: its records so far get the label too (unless their own
    /// fault spoils the grouped value), and so will its later ones.
    fn join_group(&mut self, index: usize, group: &'static str) {
        self.group_labels.insert(index, group);
        for (d, i) in self.upserts_of.get(&index).cloned().unwrap_or_default() {
            let faults = &mut self.logs[d][i].faults;
            if !spoils(group, faults) && !faults.iter().any(|f| f == group) {
                faults.push(group.into());
            }
        }
    }

    /// Registers the customer at `dealer` the first time that dealer deals with them.
    fn ensure_customer(&mut self, dealer: usize, index: usize, at_ms: i64) -> String {
        if self.known.insert((dealer, index)) {
            let mut upsert = self.upsert(index);
            let mut faults: Vec<String> = Vec::new();
            let person = !self.customers[index].organization;
            let grouped = self.group_labels.contains_key(&index);
            let eligible: &[&'static str] = match (person, grouped) {
                (true, false) => &["R00", "C01", "C02", "C03", "C04", "C06", "C05", "C07"],
                (true, true) => &["R00", "C01", "C02", "C03", "C04", "C06"],
                (false, false) => &["R00", "C03", "C04", "C06", "C05"],
                (false, true) => &["R00", "C03", "C04", "C06"],
            };
            match self.pick_fault(eligible) {
                Some("R00") => {
                    upsert.family_name.clear();
                    upsert.given_name.clear();
                    upsert.organization_name.clear();
                    faults.push("R00".into());
                }
                Some("C01") => {
                    let id = &self.customers[index].national_id;
                    let last = id.as_bytes()[9] - b'0';
                    upsert.national_id = format!("{}{}", &id[..9], (last + 1) % 10);
                    faults.push("C01".into());
                }
                Some("C02") => {
                    upsert.national_id = if self.rng.random_bool(0.5) {
                        "1111111111".into()
                    } else {
                        format!("{}0000000", &self.customers[index].national_id[..3])
                    };
                    faults.push("C02".into());
                }
                Some("C03") => {
                    upsert.mobile = format!("021{}", &self.customers[index].mobile[2..]);
                    faults.push("C03".into());
                }
                Some("C04") => {
                    upsert.mobile = ["09121111111", "09123456789", "09350000000"]
                        .choose(&mut self.rng)
                        .copied()
                        .unwrap_or("09121111111")
                        .into();
                    faults.push("C04".into());
                }
                Some("C06") => {
                    if let Some(address) = upsert.address.as_mut() {
                        address.postal_code.pop();
                    }
                    faults.push("C06".into());
                }
                Some("C05") => {
                    // Three more unrelated customers registered with this customer's mobile.
                    faults.push("C05".into());
                    self.join_group(index, "C05");
                    let shared = self.customers[index].mobile.clone();
                    for k in 1..=3 {
                        let other = self.new_customer();
                        self.customers[other].mobile = shared.clone();
                        self.group_labels.insert(other, "C05");
                        self.known.insert((dealer, other));
                        let u = self.upsert(other);
                        self.upserts_of
                            .entry(other)
                            .or_default()
                            .push((dealer, self.logs[dealer].len()));
                        self.push(
                            dealer,
                            at_ms - 1 - k,
                            Payload::Customer(u),
                            vec!["C05".into()],
                        );
                    }
                }
                Some("C07") if self.dealers.len() > 1 => {
                    // Another dealer registers the same national ID under another person's name.
                    faults.push("C07".into());
                    self.join_group(index, "C07");
                    let other_dealer = (dealer + 1) % self.dealers.len();
                    let impostor = self.new_customer();
                    self.group_labels.insert(impostor, "C07");
                    self.customers[impostor].national_id =
                        self.customers[index].national_id.clone();
                    self.customers[impostor].organization = false;
                    if self.customers[impostor].family_name == self.customers[index].family_name {
                        self.customers[impostor].family_name.push_str("‌زاده");
                    }
                    if self.customers[impostor].given_name.is_empty() {
                        self.customers[impostor].given_name = "نادر".into();
                        self.customers[impostor].family_name = "نادری".into();
                    }
                    self.known.insert((other_dealer, impostor));
                    let u = self.upsert(impostor);
                    self.upserts_of
                        .entry(impostor)
                        .or_default()
                        .push((other_dealer, self.logs[other_dealer].len()));
                    self.push(
                        other_dealer,
                        at_ms + HOUR_MS,
                        Payload::Customer(u),
                        vec!["C07".into()],
                    );
                }
                _ => {}
            }
            if let Some(group) = self.group_labels.get(&index).copied() {
                if !spoils(group, &faults) && !faults.iter().any(|f| f == group) {
                    faults.push(group.into());
                }
            }
            self.upserts_of
                .entry(index)
                .or_default()
                .push((dealer, self.logs[dealer].len()));
            self.push(dealer, at_ms - 1, Payload::Customer(upsert), faults);
        }
        Self::customer_ref(index)
    }

    fn run(&mut self) {
        let start_ms = ms_of(self.config.start);
        let history_from = start_ms - 3 * 365 * DAY_MS;
        // S04 first: which dealers bunch deliveries into the month before the window's.
        let first_of_month = self
            .config
            .start
            .replace_day(1)
            .unwrap_or(self.config.start);
        let previous_month = (first_of_month - time::Duration::days(1))
            .replace_day(1)
            .unwrap_or(first_of_month);
        let tail_start = ms_of(first_of_month) - BUNCHED_TAIL_DAYS * DAY_MS;
        let rate = self.config.faults.rate("S04").clamp(0.0, 1.0);
        self.bunched = (0..self.dealers.len())
            .map(|_| {
                (rate > 0.0 && self.rng.random_bool(rate.sqrt().min(1.0)))
                    .then_some(tail_start..ms_of(first_of_month))
            })
            .collect();
        // The delivery history each dealer imports first: a sample of three years (the cars
        // its workshop sees), then every delivery since the first of the previous month at the
        // dealer's usual daily rate (the baseline S04 compares with).
        for dealer in 0..self.dealers.len() {
            for _ in 0..self.config.fleet_per_dealer {
                let delivered = self
                    .rng
                    .random_range(history_from..ms_of(previous_month) - DAY_MS);
                self.deliver(dealer, delivered);
            }
            let mut day_ms = ms_of(previous_month) + 8 * HOUR_MS;
            while day_ms < start_ms {
                for _ in 0..self.config.deliveries_per_day {
                    let at = day_ms + self.rng.random_range(0..9 * HOUR_MS);
                    self.deliver(dealer, at);
                }
                day_ms += DAY_MS;
            }
        }
        for day in 0..self.config.days as i64 {
            let day_ms = start_ms + day * DAY_MS + 8 * HOUR_MS;
            for dealer in 0..self.dealers.len() {
                for _ in 0..self.config.deliveries_per_day {
                    let at = day_ms + self.rng.random_range(0..9 * HOUR_MS);
                    self.deliver(dealer, at);
                }
                for _ in 0..self.config.visits_per_day {
                    let at = day_ms + self.rng.random_range(0..8 * HOUR_MS);
                    self.service_visit(dealer, at);
                }
                for _ in 0..self.config.leads_per_day {
                    let at = day_ms + self.rng.random_range(0..10 * HOUR_MS);
                    self.lead(dealer, at);
                }
                let at = day_ms + self.rng.random_range(0..9 * HOUR_MS);
                self.complaint(dealer, at);
                if self.rng.random_bool(0.3) {
                    self.scrap(dealer, day_ms + 9 * HOUR_MS);
                }
            }
        }
        self.bunched_deliveries();
    }

    fn deliver(&mut self, dealer: usize, at_ms: i64) {
        // Deliveries in a bunched tail are clean otherwise, so their only label is S04.
        let in_tail = self
            .bunched
            .get(dealer)
            .and_then(Option::as_ref)
            .is_some_and(|tail| tail.contains(&at_ms));
        let quiet = self.quiet;
        self.quiet = quiet || in_tail;
        self.deliver_one(dealer, at_ms);
        self.quiet = quiet;
    }

    fn deliver_one(&mut self, dealer: usize, at_ms: i64) {
        let (wmi, model_code, model_name) = vehicles::pick_model(&mut self.rng);
        let year = date_of(at_ms).year() as u32;
        let vin = vehicles::vin(&mut self.rng, wmi, model_code, year);
        // Owners: mostly new customers, some who already own a car from the network.
        let owner = if !self.customers.is_empty() && self.rng.random_bool(0.15) {
            self.rng.random_range(0..self.customers.len())
        } else {
            self.new_customer()
        };
        let driver = self.customers[owner].organization.then(|| {
            let d = self.new_customer();
            self.customers[d].organization = false;
            if self.customers[d].given_name.is_empty() {
                self.customers[d].given_name = "رضا".into();
                self.customers[d].family_name = "کاظمی".into();
                self.customers[d].national_id = people::national_id(&mut self.rng);
            }
            d
        });
        let vehicle = Vehicle {
            vin: vin.clone(),
            model_code,
            model_name,
            year,
            owner,
            driver,
            delivered_ms: at_ms,
            delivery_recorded: true,
            selling_dealer: dealer,
            km_per_day: self.rng.random_range(15.0..70.0),
            replaced_at_km: 0,
            last_visit_ms: at_ms,
            retired: false,
        };
        let index = self.vehicles.len();
        self.vehicles.push(vehicle);
        let odometer = self.rng.random_range(12..30);
        let mut delivery = self.delivery_record(dealer, index, at_ms, odometer);
        let mut faults = Vec::new();
        match self.pick_fault(&["R00", "V01", "V02", "V03", "S01", "S02", "S03"]) {
            Some("R00") => {
                delivery.vin.clear();
                self.vehicles[index].delivery_recorded = false;
                faults.push("R00".into());
            }
            Some("V01") => {
                delivery.vin.replace_range(11..12, "O");
                self.vehicles[index].delivery_recorded = false;
                faults.push("V01".into());
            }
            Some("V02") => {
                let mut body = delivery.vin.clone();
                body.replace_range(9..10, "U");
                if let Ok(v) = hamgam_proto::values::Vin::with_check_digit(&body) {
                    delivery.vin = v.as_str().to_owned();
                    self.vehicles[index].vin = delivery.vin.clone();
                    faults.push("V02".into());
                }
            }
            Some("V03") => {
                let check = delivery.vin.as_bytes()[8];
                let wrong = if check == b'7' { "8" } else { "7" };
                delivery.vin.replace_range(8..9, wrong);
                self.vehicles[index].delivery_recorded = false;
                self.vehicles[index].retired = true;
                faults.push("V03".into());
            }
            Some("S01") => {
                delivery.sale_date = Some(pb_date(at_ms + 5 * DAY_MS));
                // The hub rejects the delivery: the car has no delivery in the network's
                // history, so no later visit of it can be judged against one.
                self.vehicles[index].delivery_recorded = false;
                faults.push("S01".into());
            }
            Some("S02")
                if self.dealers.len() > 1
                    && !self.customers[self.vehicles[index].owner].organization =>
            {
                // Another dealer reports the same car delivered new to another retail buyer.
                let other = (dealer + 1) % self.dealers.len();
                let buyer = self.new_customer();
                let later = at_ms + 20 * DAY_MS;
                if later < self.config.now_ms {
                    let buyer_ref = self.ensure_customer(other, buyer, later);
                    let mut again = self.delivery_record(other, index, later, odometer + 5);
                    again.sale_category = pb::SaleCategory::Retail as i32;
                    again.parties = vec![
                        party(pb::PartyRole::Buyer, &buyer_ref),
                        party(pb::PartyRole::Owner, &buyer_ref),
                    ];
                    again.deal_ref = format!(
                        "DL-{}-{}",
                        self.dealers[other].dealer_id,
                        self.logs[other].len()
                    );
                    self.push(
                        other,
                        later,
                        Payload::RetailDelivery(again),
                        vec!["S02".into()],
                    );
                    self.vehicles[index].retired = true;
                }
            }
            Some("S03") => {
                // Sold to the dealer itself and reported as a retail sale.
                let own = self.new_customer();
                let profile = self.dealers[dealer].clone();
                let c = &mut self.customers[own];
                c.organization = true;
                c.given_name.clear();
                c.family_name.clear();
                c.organization_name = profile.name.clone();
                c.national_id = profile.company_national_id.clone();
                // The dealer's own customer record is clean: the fault is the sale alone.
                let quiet = std::mem::replace(&mut self.quiet, true);
                let own_ref = self.ensure_customer(dealer, own, at_ms);
                self.quiet = quiet;
                delivery.sale_category = pb::SaleCategory::Retail as i32;
                delivery.parties = vec![
                    party(pb::PartyRole::Buyer, &own_ref),
                    party(pb::PartyRole::Owner, &own_ref),
                ];
                self.vehicles[index].retired = true;
                faults.push("S03".into());
            }
            _ => {}
        }
        if self.vehicles[index].delivery_recorded && !faults.iter().any(|f| f == "R00") {
            self.readings
                .entry(delivery.vin.clone())
                .or_default()
                .push((at_ms, odometer));
        }
        self.push(dealer, at_ms, Payload::RetailDelivery(delivery), faults);
    }

    fn delivery_record(
        &mut self,
        dealer: usize,
        vehicle: usize,
        at_ms: i64,
        odometer: u32,
    ) -> pb::RetailDelivery {
        let v = self.vehicles[vehicle].clone();
        let owner_ref = self.ensure_customer(dealer, v.owner, at_ms);
        let mut parties = vec![
            party(pb::PartyRole::Buyer, &owner_ref),
            party(pb::PartyRole::Owner, &owner_ref),
        ];
        let organization = self.customers[v.owner].organization;
        if let Some(driver) = v.driver {
            let driver_ref = self.ensure_customer(dealer, driver, at_ms);
            parties.push(party(pb::PartyRole::PrimaryDriver, &driver_ref));
        }
        let sale_ms = at_ms - self.rng.random_range(0..10) * DAY_MS;
        pb::RetailDelivery {
            deal_ref: format!(
                "DL-{}-{}",
                self.dealers[dealer].dealer_id,
                self.logs[dealer].len()
            ),
            vin: v.vin,
            model_code: v.model_code.into(),
            model_name: v.model_name.into(),
            model_year: v.year,
            sale_date: Some(pb_date(sale_ms)),
            delivery_date: Some(pb_date(at_ms)),
            odometer_km: odometer,
            sale_category: if organization {
                pb::SaleCategory::Fleet
            } else {
                pb::SaleCategory::Retail
            } as i32,
            salesperson_id: self.dealers[dealer].staff[0].staff_id.clone(),
            parties,
        }
    }

    fn odometer_at(&self, vehicle: usize, at_ms: i64) -> u32 {
        let v = &self.vehicles[vehicle];
        let days = ((at_ms - v.delivered_ms).max(0) / DAY_MS) as f64;
        (20.0 + days * v.km_per_day) as u32
            - v.replaced_at_km.min((20.0 + days * v.km_per_day) as u32)
    }

    /// A vehicle due for service, not seen in the last 60 days.
    fn vehicle_for_visit(&mut self, at_ms: i64) -> Option<usize> {
        for _ in 0..20 {
            let i = self.rng.random_range(0..self.vehicles.len());
            let v = &self.vehicles[i];
            if !v.retired && v.delivery_recorded && at_ms - v.last_visit_ms > 60 * DAY_MS {
                return Some(i);
            }
        }
        None
    }

    fn ro_number(&mut self, dealer: usize) -> String {
        format!(
            "RO-{}-{:05}",
            self.dealers[dealer].dealer_id,
            self.ro_numbers[dealer].len() + 1
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn repair_order(
        &mut self,
        dealer: usize,
        vehicle: usize,
        opened_ms: i64,
        odometer_in: u32,
        pay_type: pb::PayType,
        op: usize,
    ) -> pb::RepairOrder {
        let v = self.vehicles[vehicle].clone();
        let owner_ref = self.ensure_customer(dealer, v.owner, opened_ms);
        let driver_ref = match v.driver {
            Some(d) => self.ensure_customer(dealer, d, opened_ms),
            None => owner_ref.clone(),
        };
        let (code, complaint, correction, part) = LABOUR_OPS[op % LABOUR_OPS.len()];
        let ro_number = self.ro_number(dealer);
        self.ro_numbers[dealer].push((ro_number.clone(), v.vin.clone(), opened_ms));
        let completed = opened_ms + self.rng.random_range(2..6) * HOUR_MS;
        pb::RepairOrder {
            ro_number,
            vin: v.vin,
            owner_ref,
            driver_ref,
            opened_at_ms: opened_ms,
            completed_at_ms: completed,
            invoiced_at_ms: completed + HOUR_MS / 2,
            odometer_in_km: odometer_in,
            odometer_out_km: odometer_in + self.rng.random_range(0..4),
            advisor_id: self.dealers[dealer].staff[1].staff_id.clone(),
            pay_type: pay_type as i32,
            job_lines: vec![pb::JobLine {
                line_number: 1,
                labor_op_code: code.into(),
                complaint: complaint.into(),
                cause: String::new(),
                correction: correction.into(),
                technician_id: self.dealers[dealer].staff[2].staff_id.clone(),
                actual_hours: self.rng.random_range(0.5..3.0),
                standard_hours: 1.5,
                parts: vec![pb::PartLine {
                    part_number: part.into(),
                    quantity: 1,
                    unit_price_rials: self.rng.random_range(1_000_000..20_000_000),
                }],
                campaign_id: String::new(),
                pay_type: pay_type as i32,
            }],
            total_rials: self.rng.random_range(2_000_000..40_000_000),
        }
    }

    fn service_visit(&mut self, home: usize, at_ms: i64) {
        let Some(vehicle) = self.vehicle_for_visit(at_ms) else {
            return;
        };
        // Most visits are at the dealer that sold the car; some elsewhere in the network.
        let dealer = if self.rng.random_bool(0.85) {
            self.vehicles[vehicle].selling_dealer
        } else {
            home
        };
        let km = self.odometer_at(vehicle, at_ms);
        // One definition of the warranty window for the hub, the simulator and the tests; a
        // margin, because a repeat visit (W02) comes ten days later on the same pay type.
        let warranty_end = hamgam_proto::calendar::months_window_end_ms(
            self.vehicles[vehicle].delivered_ms,
            WARRANTY_MONTHS,
        );
        let in_warranty = at_ms + 30 * DAY_MS <= warranty_end && km < WARRANTY_KM - 5_000;
        let pay = if in_warranty && self.rng.random_bool(0.3) {
            pb::PayType::Warranty
        } else {
            pb::PayType::Customer
        };
        let op = self.rng.random_range(0..LABOUR_OPS.len());
        self.vehicles[vehicle].last_visit_ms = at_ms;
        let eligible: &[&'static str] = &[
            "R00", "V01", "O01", "O02", "O03", "T01", "RO1", "RO2", "RO3", "W01", "W02", "W03",
        ];
        let fault = self.pick_fault(eligible);
        let vin = self.vehicles[vehicle].vin.clone();
        let mut faults: Vec<String> = Vec::new();
        let mut opened = at_ms;
        let mut pay_type = pay;
        let mut odometer = km;
        if fault.is_none() && !self.quiet && self.rng.random_bool(0.03) {
            // A replaced odometer: the next reading is low, and that is not a rollback.
            let timed = self.rng.random_bool(0.5);
            let replacement = pb::OdometerReplacement {
                vin: vin.clone(),
                replaced_on: Some(pb_date(at_ms - HOUR_MS)),
                reading_before_km: km,
                reading_after_km: 0,
                reason: "خرابی کیلومترشمار".into(),
                replaced_at_ms: timed.then_some(at_ms - HOUR_MS),
            };
            self.push(
                dealer,
                at_ms - HOUR_MS,
                Payload::OdometerReplacement(replacement),
                Vec::new(),
            );
            self.vehicles[vehicle].replaced_at_km = km;
            self.vehicles[vehicle].retired = true;
            odometer = 2;
        }
        match fault {
            Some("O01") => {
                let last = self
                    .readings
                    .get(&vin)
                    .and_then(|r| r.iter().map(|x| x.1).max())
                    .unwrap_or(20);
                odometer = last
                    .saturating_sub(self.rng.random_range(3_000..8_000))
                    .min(last.saturating_sub(5));
                faults.push("O01".into());
            }
            Some("O03") => {
                let (last_ms, last_km) = self
                    .readings
                    .get(&vin)
                    .and_then(|r| r.iter().max().copied())
                    .unwrap_or((at_ms - DAY_MS, km));
                let days = ((at_ms - last_ms) / DAY_MS).max(1) as u32;
                let jumped = last_km as u64 + days as u64 * 2_000 + 1_000;
                // Only where the jump stays a believable reading (O02 is another rule).
                if jumped < 900_000 {
                    odometer = jumped as u32;
                    pay_type = pb::PayType::Customer;
                    faults.push("O03".into());
                }
            }
            Some("T01") => {
                opened = self.config.now_ms + DAY_MS + self.rng.random_range(0..HOUR_MS);
                odometer = self.odometer_at(vehicle, at_ms);
                // A warranty order dated into the future could also leave the warranty window.
                pay_type = pb::PayType::Customer;
                faults.push("T01".into());
            }
            Some("RO1") => {
                opened = self.vehicles[vehicle].delivered_ms - 30 * DAY_MS;
                odometer = 3;
                pay_type = pb::PayType::Customer;
                faults.push("RO1".into());
            }
            Some("W01") if at_ms > warranty_end => {
                pay_type = pb::PayType::Warranty;
                faults.push("W01".into());
            }
            _ => {}
        }
        let mut ro = self.repair_order(dealer, vehicle, opened, odometer, pay_type, op);
        match fault {
            Some("R00") => {
                ro.ro_number.clear();
                faults.push("R00".into());
            }
            Some("V01") => {
                ro.vin = format!("{}I", &ro.vin[..16]);
                faults.push("V01".into());
            }
            Some("O02") => {
                ro.odometer_out_km = ro.odometer_in_km.saturating_sub(500);
                faults.push("O02".into());
            }
            Some("RO2") => {
                ro.completed_at_ms = ro.opened_at_ms - 2 * HOUR_MS;
                ro.invoiced_at_ms = ro.opened_at_ms;
                faults.push("RO2".into());
            }
            Some("RO3") => {
                let reuse = self.clean_ros[dealer]
                    .iter()
                    .rev()
                    .find(|(_, other_vin, other_opened)| {
                        *other_vin != ro.vin && *other_opened < ro.opened_at_ms
                    })
                    .map(|(n, _, _)| n.clone());
                if let Some(number) = reuse {
                    ro.ro_number = number;
                    faults.push("RO3".into());
                }
            }
            _ => {}
        }
        let clean_reading = !faults
            .iter()
            .any(|f| matches!(f.as_str(), "R00" | "V01" | "O02" | "RO2"));
        if clean_reading
            || faults
                .iter()
                .any(|f| f == "O01" || f == "O03" || f == "RO1" || f == "T01")
        {
            self.readings
                .entry(vin.clone())
                .or_default()
                .push((opened, ro.odometer_in_km));
        }
        let completed = ro.completed_at_ms;
        let ro_number = ro.ro_number.clone();
        let customer = self.vehicles[vehicle].owner;
        let job = ro.job_lines.first().cloned();
        if faults.is_empty() {
            self.clean_ros[dealer].push((ro.ro_number.clone(), ro.vin.clone(), ro.opened_at_ms));
        }
        self.push(
            dealer,
            opened,
            Payload::RepairOrder(ro.clone()),
            faults.clone(),
        );
        if !faults.is_empty() {
            // The vehicle's history is now deliberately wrong; later visits would inherit it.
            self.vehicles[vehicle].retired = true;
        }
        match fault {
            Some("W02") => {
                // The same job on the same car again ten days later, anywhere in the network.
                let later = at_ms + 10 * DAY_MS;
                if later < self.config.now_ms {
                    let other = self.rng.random_range(0..self.dealers.len());
                    self.extra_visit(other, vehicle, later, pay, op, job, "W02");
                    self.vehicles[vehicle].retired = true;
                }
            }
            Some("W03") if self.dealers.len() >= 3 => {
                // Two more dealers see the same car within 60 days: all three visits are labelled.
                let first = self.logs[dealer].len() - 1;
                let others: Vec<usize> = (0..self.dealers.len())
                    .filter(|d| *d != dealer)
                    .take(2)
                    .collect();
                let dates: Vec<i64> = (0..2).map(|k| at_ms + (5 + 7 * k) * DAY_MS).collect();
                if dates.iter().all(|d| *d < self.config.now_ms) {
                    for (k, (other, later)) in others.into_iter().zip(dates).enumerate() {
                        let op2 = (op + 1 + k) % LABOUR_OPS.len();
                        self.extra_visit(
                            other,
                            vehicle,
                            later,
                            pb::PayType::Customer,
                            op2,
                            None,
                            "W03",
                        );
                    }
                    self.logs[dealer][first].faults.push("W03".into());
                }
                self.vehicles[vehicle].retired = true;
            }
            _ => {}
        }
        // A survey after some visits.
        if faults.is_empty() && self.rng.random_bool(0.4) {
            self.survey(
                dealer,
                customer,
                completed,
                pb::SurveySubject::RepairOrder,
                &ro_number,
            );
        }
    }

    /// Another visit of `vehicle` at `dealer` that is part of a labelled fault (W02, W03): a
    /// usable reading, labelled with `rule`.
    #[allow(clippy::too_many_arguments)]
    fn extra_visit(
        &mut self,
        dealer: usize,
        vehicle: usize,
        at_ms: i64,
        pay: pb::PayType,
        op: usize,
        job: Option<pb::JobLine>,
        rule: &str,
    ) {
        let km = self.odometer_at(vehicle, at_ms);
        let mut visit = self.repair_order(dealer, vehicle, at_ms, km, pay, op);
        if let Some(job) = job {
            visit.job_lines = vec![job];
        }
        let vin = visit.vin.clone();
        self.readings.entry(vin).or_default().push((at_ms, km));
        self.push(
            dealer,
            at_ms,
            Payload::RepairOrder(visit),
            vec![rule.into()],
        );
    }

    fn survey(
        &mut self,
        dealer: usize,
        customer: usize,
        closed_ms: i64,
        subject: pb::SurveySubject,
        subject_ref: &str,
    ) {
        let mut submitted = closed_ms + self.rng.random_range(2 * HOUR_MS..48 * HOUR_MS);
        if submitted >= self.config.now_ms {
            return;
        }
        let customer_ref = self.ensure_customer(dealer, customer, closed_ms);
        let mut respondent =
            people::mobile_variant(&self.customers[customer].mobile, &mut self.rng);
        let mut entered_by = String::new();
        let mut faults = Vec::new();
        match self.pick_fault(&["R00", "Q01"]) {
            Some("R00") => faults.push("R00".into()),
            Some("Q01") => {
                faults.push("Q01".into());
                match self.rng.random_range(0..3u8) {
                    0 => {
                        let staff = self.dealers[dealer].staff[3].clone();
                        respondent = format!("0{}", staff.mobile);
                        entered_by = staff.staff_id;
                    }
                    // The customer's answer, typed in by a staff member: still Q01.
                    1 => entered_by = self.dealers[dealer].staff[4].staff_id.clone(),
                    _ => submitted = closed_ms + 3 * 60_000,
                }
            }
            _ => {}
        }
        let survey = pb::Survey {
            survey_ref: format!(
                "SV-{}-{}",
                self.dealers[dealer].dealer_id,
                self.logs[dealer].len()
            ),
            customer_ref,
            subject: subject as i32,
            subject_ref: if faults.iter().any(|f| f == "R00") {
                String::new()
            } else {
                subject_ref.into()
            },
            submitted_at_ms: submitted,
            channel: pb::SurveyChannel::Sms as i32,
            csat: self.rng.random_range(3..=5),
            nps: Some(self.rng.random_range(6..=10)),
            free_text: String::new(),
            respondent_mobile: respondent,
            entered_by_staff_id: entered_by,
        };
        self.push(dealer, submitted, Payload::Survey(survey), faults);
    }

    fn lead(&mut self, dealer: usize, at_ms: i64) {
        let prospect = self.new_customer();
        let customer_ref = self.ensure_customer(dealer, prospect, at_ms);
        let mut faults = Vec::new();
        let mut lead = pb::Lead {
            lead_ref: format!(
                "L-{}-{}",
                self.dealers[dealer].dealer_id,
                self.logs[dealer].len()
            ),
            customer_ref,
            source: *[
                pb::LeadSource::ShowroomVisit,
                pb::LeadSource::PhoneCall,
                pb::LeadSource::TestDrive,
                pb::LeadSource::Web,
            ]
            .choose(&mut self.rng)
            .unwrap_or(&pb::LeadSource::Web) as i32,
            model_interest: vehicles::pick_model(&mut self.rng).2.into(),
            contacted_at_ms: at_ms,
            salesperson_id: self.dealers[dealer].staff[0].staff_id.clone(),
            notes: String::new(),
        };
        if self.pick_fault(&["R00"]).is_some() {
            lead.customer_ref.clear();
            faults.push("R00".into());
        }
        self.push(dealer, at_ms, Payload::Lead(lead), faults);
    }

    fn complaint(&mut self, dealer: usize, at_ms: i64) {
        if self.vehicles.is_empty() {
            return;
        }
        let v = self.rng.random_range(0..self.vehicles.len());
        let (owner, vin) = (self.vehicles[v].owner, self.vehicles[v].vin.clone());
        let customer_ref = self.ensure_customer(dealer, owner, at_ms);
        let case_ref = format!(
            "CS-{}-{}",
            self.dealers[dealer].dealer_id,
            self.logs[dealer].len()
        );
        let mut opened = pb::Complaint {
            case_ref: case_ref.clone(),
            customer_ref: customer_ref.clone(),
            vin: vin.clone(),
            status: pb::ComplaintStatus::Opened as i32,
            category: "کیفیت خدمات".into(),
            description: "تأخیر در تحویل خودرو".into(),
            resolution: String::new(),
            event_at_ms: at_ms,
        };
        let mut faults = Vec::new();
        if self.pick_fault(&["R00"]).is_some() {
            opened.case_ref.clear();
            faults.push("R00".into());
        }
        self.push(dealer, at_ms, Payload::Complaint(opened), faults);
        let closed_at = at_ms + self.rng.random_range(HOUR_MS..2 * DAY_MS);
        if self.rng.random_bool(0.5) && closed_at < self.config.now_ms {
            let closed = pb::Complaint {
                case_ref,
                customer_ref,
                vin,
                status: pb::ComplaintStatus::Closed as i32,
                category: "کیفیت خدمات".into(),
                description: String::new(),
                resolution: "عذرخواهی و سرویس رایگان".into(),
                event_at_ms: closed_at,
            };
            self.push(dealer, closed_at, Payload::Complaint(closed), Vec::new());
        }
    }

    /// An old car of this dealer's customers is scrapped.
    fn scrap(&mut self, dealer: usize, at_ms: i64) {
        let old = self.vehicles.iter().position(|v| {
            v.selling_dealer == dealer
                && !v.retired
                && v.delivery_recorded
                && at_ms - v.delivered_ms > 730 * DAY_MS
        });
        if let Some(i) = old {
            self.vehicles[i].retired = true;
            let status = pb::VehicleStatus {
                vin: self.vehicles[i].vin.clone(),
                condition: pb::VehicleCondition::Scrapped as i32,
                effective_on: Some(pb_date(at_ms)),
                note: "اسقاط".into(),
            };
            self.push(dealer, at_ms, Payload::VehicleStatus(status), Vec::new());
        }
    }

    /// S04: at a dealer, a burst of deliveries in the last days of the month before the
    /// window, far above its daily rate in the rest of that month. Every delivery in the
    /// bunched tail is labelled: the rule cannot tell the extra ones from the usual ones.
    fn bunched_deliveries(&mut self) {
        for dealer in 0..self.dealers.len() {
            let Some(tail) = self.bunched[dealer].clone() else {
                continue;
            };
            for k in 0..BUNCHED_EXTRA as i64 {
                let at = tail.start + (k % BUNCHED_TAIL_DAYS) * DAY_MS + 10 * HOUR_MS + k * 60_000;
                self.deliver(dealer, at);
            }
            for record in &mut self.logs[dealer] {
                let Payload::RetailDelivery(d) = &record.payload else {
                    continue;
                };
                let rejected = record
                    .faults
                    .iter()
                    .any(|f| matches!(f.as_str(), "R00" | "V01" | "V03" | "S01"));
                let date_ms = d
                    .delivery_date
                    .as_ref()
                    .and_then(|d| {
                        let month = time::Month::try_from(u8::try_from(d.month).ok()?).ok()?;
                        time::Date::from_calendar_date(d.year, month, u8::try_from(d.day).ok()?)
                            .ok()
                    })
                    .map(ms_of);
                if !rejected && date_ms.is_some_and(|t| tail.contains(&t)) {
                    record.faults.push("S04".into());
                }
            }
        }
    }
}
