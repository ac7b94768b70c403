//! Rules that read a group of records: what a record contributes to each group it belongs to
//! ([`memberships`]), and the findings of a whole group ([`judge_group`]).
//!
//! **Invariant (order independence):** `judge_group` is a pure function of the *set* of
//! members and the config: members are sorted by `(event time, dealer, seq)` before anything
//! else, and ties never depend on arrival. The engine re-judges every group a record joins or
//! leaves (the large ones from their state, [`super::group_state`], checked against this
//! function), so the verdicts after any delivery order are the same.
//!
//! Only usable records are members: a record rejected outright is in quarantine and is not
//! history (its readings, numbers and contacts are not trusted).

use std::collections::{BTreeMap, BTreeSet};

use hamgam_proto::calendar;
use hamgam_proto::text::normalize;
use hamgam_proto::values::{CompanyId, Mobile, NationalId, Vin};
use serde::{Deserialize, Serialize};

use super::record::day;
use super::{finding, RuleConfig, Scope};
use crate::content::{Content, PayType, SaleCategory, SurveySubject};
use crate::domain::{Arg, Finding, Reason, RecordOrigin, Severity};

const DAY_MS: i64 = 86_400_000;

/// A group of records that history rules read together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupKey {
    /// Every delivery, repair order, odometer replacement and status change of a VIN, at any
    /// dealer.
    Vin(String),
    /// Every customer record with this mobile (E.164), at any dealer.
    Mobile(String),
    /// Every person record with this national ID, at any dealer.
    NationalId(String),
    /// One dealer's repair orders under one number, and the surveys about them.
    RoNumber { dealer: String, number: String },
    /// One dealer's deliveries and surveys in one calendar month (`YYYY-MM`).
    DealerMonth { dealer: String, month: String },
    /// The records one source system made for one dealer (imported history with its times),
    /// read in the dealer's order (seq), each with the next.
    SourceSequence { dealer: String, source: String },
}

impl GroupKey {
    pub fn scope(&self) -> Scope {
        match self {
            GroupKey::Vin(_) => Scope::Vin,
            GroupKey::Mobile(_) => Scope::Mobile,
            GroupKey::NationalId(_) => Scope::NationalId,
            GroupKey::RoNumber { .. } => Scope::RoNumber,
            GroupKey::DealerMonth { .. } => Scope::DealerMonth,
            GroupKey::SourceSequence { .. } => Scope::Source,
        }
    }

    /// A stable text form, the store's index key (`\0` separates parts).
    pub fn encode(&self) -> String {
        match self {
            GroupKey::Vin(v) => format!("v\0{v}"),
            GroupKey::Mobile(m) => format!("m\0{m}"),
            GroupKey::NationalId(n) => format!("n\0{n}"),
            GroupKey::RoNumber { dealer, number } => format!("o\0{dealer}\0{number}"),
            GroupKey::DealerMonth { dealer, month } => format!("s\0{dealer}\0{month}"),
            GroupKey::SourceSequence { dealer, source } => format!("t\0{dealer}\0{source}"),
        }
    }
}

/// What one record tells a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fact {
    Delivery {
        delivered_ms: i64,
        odometer_km: u32,
        retail: bool,
    },
    RepairOrder {
        vin: String,
        opened_ms: i64,
        completed_ms: i64,
        odometer_in_km: u32,
        pay_type: PayType,
        /// `(labour operation, part)` of every job line (part empty for labour only).
        jobs: Vec<(String, String)>,
    },
    OdometerReplacement {
        /// The day of the replacement (midnight UTC).
        replaced_ms: i64,
        /// When on that day, if recorded.
        at_ms: Option<i64>,
        /// The old cluster's last reading and the new one's first.
        before_km: u32,
        after_km: u32,
    },
    Customer {
        /// Who the customer is: a valid national or company ID, else the dealer's own ref.
        identity: String,
        /// Normalised full name.
        name: String,
    },
    Survey {
        submitted_ms: i64,
        top_score: bool,
    },
    /// A vehicle scrapped, stolen, recovered or exported (read by the vehicle projection).
    Status {
        effective_ms: i64,
    },
    /// An imported record: when its source says it made it.
    Made {
        created_ms: i64,
    },
}

/// A record in a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub dealer_id: String,
    pub seq: u64,
    pub fact: Fact,
    /// The findings this group gave the member when it was last judged.
    pub current: Vec<Finding>,
}

impl Member {
    fn event_ms(&self) -> i64 {
        match &self.fact {
            Fact::Delivery { delivered_ms, .. } => *delivered_ms,
            Fact::RepairOrder { opened_ms, .. } => *opened_ms,
            Fact::OdometerReplacement {
                replaced_ms, at_ms, ..
            } => at_ms.unwrap_or(*replaced_ms),
            Fact::Customer { .. } => 0,
            Fact::Survey { submitted_ms, .. } => *submitted_ms,
            Fact::Status { effective_ms } => *effective_ms,
            Fact::Made { created_ms } => *created_ms,
        }
    }

    fn order(&self) -> (i64, &str, u64) {
        (self.event_ms(), self.dealer_id.as_str(), self.seq)
    }
}

/// `(dealer, seq)` of a record.
pub type At = (String, u64);

/// The groups a record belongs to and what it tells each. `usable` is false for a record
/// rejected outright; `rejected_fields` are the fields its own findings reject.
pub fn memberships(
    dealer_id: &str,
    content: &Content,
    findings: &[Finding],
) -> Vec<(GroupKey, Fact)> {
    if findings.iter().any(|f| f.severity == Severity::Reject) {
        return Vec::new();
    }
    // A field its own rules reject (or a placeholder mobile) says nothing about a group.
    let spoiled = |field: &str| {
        findings.iter().any(|f| {
            f.field.ends_with(field) && (f.severity == Severity::RejectField || f.rule_id == "C04")
        })
    };
    let month = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .map(|t| format!("{:04}-{:02}", t.year(), t.month() as u8))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    match content {
        Content::Delivery(d) => {
            let (Ok(vin), Some(delivered_ms)) = (Vin::parse(&d.vin), d.delivery_date_ms) else {
                return out;
            };
            let fact = Fact::Delivery {
                delivered_ms,
                odometer_km: d.odometer_km,
                retail: d.category == SaleCategory::Retail,
            };
            out.push((GroupKey::Vin(vin.as_str().to_owned()), fact.clone()));
            out.push((
                GroupKey::DealerMonth {
                    dealer: dealer_id.to_owned(),
                    month: month(delivered_ms),
                },
                fact,
            ));
        }
        Content::RepairOrder(ro) => {
            let Ok(vin) = Vin::parse(&ro.vin) else {
                return out;
            };
            let fact = Fact::RepairOrder {
                vin: vin.as_str().to_owned(),
                opened_ms: ro.opened_at_ms,
                completed_ms: ro.completed_at_ms,
                odometer_in_km: ro.odometer_in_km,
                pay_type: ro.pay_type,
                jobs: ro
                    .job_lines
                    .iter()
                    .flat_map(|j| {
                        let op = j.labor_op_code.clone();
                        if j.parts.is_empty() {
                            vec![(op, String::new())]
                        } else {
                            j.parts.iter().map(|p| (op.clone(), p.clone())).collect()
                        }
                    })
                    .collect(),
            };
            out.push((GroupKey::Vin(vin.as_str().to_owned()), fact.clone()));
            out.push((
                GroupKey::RoNumber {
                    dealer: dealer_id.to_owned(),
                    number: ro.ro_number.clone(),
                },
                fact,
            ));
        }
        Content::OdometerReplacement(o) => {
            if let (Ok(vin), Some(replaced_ms)) = (Vin::parse(&o.vin), o.replaced_on_ms) {
                out.push((
                    GroupKey::Vin(vin.as_str().to_owned()),
                    Fact::OdometerReplacement {
                        replaced_ms,
                        // A time that is not on the replacement's day cannot place it.
                        at_ms: o
                            .replaced_at_ms
                            .filter(|t| t.div_euclid(DAY_MS) == replaced_ms.div_euclid(DAY_MS)),
                        before_km: o.reading_before_km,
                        after_km: o.reading_after_km,
                    },
                ));
            }
        }
        Content::VehicleStatus(v) => {
            if let Ok(vin) = Vin::parse(&v.vin) {
                out.push((
                    GroupKey::Vin(vin.as_str().to_owned()),
                    Fact::Status {
                        effective_ms: v.effective_on_ms.unwrap_or_default(),
                    },
                ));
            }
        }
        Content::Customer(c) => {
            let national_id = (!c.organization)
                .then(|| NationalId::parse(&c.national_id).ok())
                .flatten()
                .filter(|_| !spoiled(".national_id"));
            let identity = national_id
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .or_else(|| {
                    CompanyId::parse(&c.company_id)
                        .ok()
                        .map(|id| id.as_str().to_owned())
                })
                .unwrap_or_else(|| format!("{dealer_id}:{}", c.customer_ref));
            let name = if c.organization {
                normalize(&c.organization_name)
            } else {
                normalize(&format!("{} {}", c.given_name, c.family_name))
            };
            let fact = Fact::Customer { identity, name };
            if !spoiled(".mobile") {
                if let Ok(m) = Mobile::parse(&c.mobile) {
                    out.push((GroupKey::Mobile(m.e164().to_owned()), fact.clone()));
                }
            }
            if let Some(n) = national_id {
                out.push((GroupKey::NationalId(n.as_str().to_owned()), fact));
            }
        }
        Content::Survey(s) => {
            let fact = Fact::Survey {
                submitted_ms: s.submitted_at_ms,
                top_score: s.csat >= 5 && s.nps.is_none_or(|n| n >= 9),
            };
            if s.subject == SurveySubject::RepairOrder {
                out.push((
                    GroupKey::RoNumber {
                        dealer: dealer_id.to_owned(),
                        number: s.subject_ref.clone(),
                    },
                    fact.clone(),
                ));
            }
            out.push((
                GroupKey::DealerMonth {
                    dealer: dealer_id.to_owned(),
                    month: month(s.submitted_at_ms),
                },
                fact,
            ));
        }
        _ => {}
    }
    out
}

/// The source-sequence group an imported record belongs to, and its fact (none for a record
/// rejected outright, which is not history, or for one whose origin gives no time).
pub fn source_membership(
    dealer_id: &str,
    origin: Option<&RecordOrigin>,
    findings: &[Finding],
) -> Option<(GroupKey, Fact)> {
    let origin = origin.filter(|o| o.created_at_ms > 0)?;
    if findings.iter().any(|f| f.severity == Severity::Reject) {
        return None;
    }
    Some((
        GroupKey::SourceSequence {
            dealer: dealer_id.to_owned(),
            source: origin.source_system.clone(),
        },
        Fact::Made {
            created_ms: origin.created_at_ms,
        },
    ))
}

/// T01 on imported history: the source's time of `member` is more than the tolerance later
/// than that of `next`, the dealer's next record from the same source, so the source's clock
/// was set ahead when it made `member`. The one decision the reference ([`judge_group`]) and
/// the engine's neighbour reading share.
pub fn source_clock_finding(
    member: &Member,
    next: &Member,
    config: &RuleConfig,
) -> Option<Finding> {
    let (
        Fact::Made { created_ms },
        Fact::Made {
            created_ms: next_ms,
        },
    ) = (&member.fact, &next.fact)
    else {
        return None;
    };
    let tolerance_ms = config.future_tolerance_minutes * 60_000;
    (*created_ms > next_ms.saturating_add(tolerance_ms)).then(|| {
        let tolerance = config.future_tolerance_minutes;
        finding(
            "T01",
            "origin.created_at_ms",
            Reason::new("T01.source_clock_ahead")
                .arg("created", Arg::Moment(*created_ms))
                .arg("tolerance", tolerance),
        )
    })
}

/// The findings of the group's rules for every member (an empty list for a member nothing
/// fires on, so stale findings can be cleared).
pub fn judge_group(
    key: &GroupKey,
    members: &[Member],
    config: &RuleConfig,
) -> BTreeMap<At, Vec<Finding>> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut out: BTreeMap<At, Vec<Finding>> = members
        .iter()
        .map(|m| ((m.dealer_id.clone(), m.seq), Vec::new()))
        .collect();
    let mut add = |m: &Member, f: Finding| {
        if let Some(list) = out.get_mut(&(m.dealer_id.clone(), m.seq)) {
            list.push(f);
        }
    };
    match key {
        GroupKey::Vin(vin) => vin_rules(vin, &sorted, config, &mut add),
        GroupKey::Mobile(_) => shared_mobile(&sorted, config, &mut add),
        GroupKey::NationalId(_) => names_of_one_id(&sorted, &mut add),
        GroupKey::RoNumber { number, .. } => ro_number(number, &sorted, config, &mut add),
        GroupKey::DealerMonth { month, .. } => dealer_month(month, &sorted, config, &mut add),
        GroupKey::SourceSequence { .. } => {
            // The dealer's order, not the source's times: those are what is being checked.
            sorted.sort_by_key(|m| (m.dealer_id.as_str(), m.seq));
            for pair in sorted.windows(2) {
                if let Some(f) = source_clock_finding(pair[0], pair[1], config) {
                    add(pair[0], f);
                }
            }
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| (&a.rule_id, &a.field).cmp(&(&b.rule_id, &b.field)));
        list.dedup_by(|a, b| a.rule_id == b.rule_id && a.field == b.field);
    }
    out
}

/// O01, O03, S02, RO1, W01, W02, W03.
fn vin_rules(
    vin: &str,
    members: &[&Member],
    config: &RuleConfig,
    add: &mut impl FnMut(&Member, Finding),
) {
    let replacements = replacements_of(members);
    let readings = readings_of(members);
    let before = earlier_readings(&readings, &replacements);
    for ((m, t, km), earlier) in readings.iter().zip(&before) {
        let Some(earlier) = earlier.filter(|_| matches!(m.fact, Fact::RepairOrder { .. })) else {
            continue;
        };
        let (other, t0, km0) = &readings[earlier.highest];
        if km0 > km {
            add(
                m,
                finding(
                    "O01",
                    "repair_order.odometer_in_km",
                    Reason::new("O01.below_earlier")
                        .arg("km", *km)
                        .arg("vin", vin)
                        .arg("earlier_km", *km0)
                        .arg("earlier_day", Arg::Day(*t0))
                        .arg("dealer", &other.dealer_id),
                ),
            );
        }
        let (t0, km0) = (&earlier.latest_ms, &earlier.latest_km);
        let days = ((t - t0) as f64 / DAY_MS as f64).max(1.0);
        let per_day = (km.saturating_sub(*km0)) as f64 / days;
        if km > km0 && per_day > config.max_km_per_day as f64 {
            add(
                m,
                finding(
                    "O03",
                    "repair_order.odometer_in_km",
                    Reason::new("O03.too_fast")
                        .arg("km", *km)
                        .arg("per_day", format!("{per_day:.0}"))
                        .arg("vin", vin)
                        .arg("earlier_km", *km0)
                        .arg("earlier_day", Arg::Day(*t0))
                        .arg("limit", config.max_km_per_day),
                ),
            );
        }
    }
    // Deliveries.
    let deliveries: Vec<(&Member, i64, bool)> = members
        .iter()
        .filter_map(|m| match m.fact {
            Fact::Delivery {
                delivered_ms,
                retail,
                ..
            } => Some((*m, delivered_ms, retail)),
            _ => None,
        })
        .collect();
    let mut retail = deliveries.iter().filter(|d| d.2);
    if let Some((first, first_ms, _)) = retail.next() {
        for (m, _, _) in retail {
            add(
                m,
                finding(
                    "S02",
                    "retail_delivery.vin",
                    Reason::new("S02.delivered_twice")
                        .arg("vin", vin)
                        .arg("first_day", Arg::Day(*first_ms))
                        .arg("dealer", &first.dealer_id),
                ),
            );
        }
    }
    let delivered = deliveries.first().map(|d| d.1);
    // Repair orders.
    type Visit<'a> = (&'a Member, i64, u32, PayType, &'a Vec<(String, String)>);
    let ros: Vec<Visit<'_>> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::RepairOrder {
                opened_ms,
                odometer_in_km,
                pay_type,
                jobs,
                ..
            } => Some((*m, *opened_ms, *odometer_in_km, *pay_type, jobs)),
            _ => None,
        })
        .collect();
    let hopping = hopping_windows(
        &ros.iter()
            .map(|r| (r.1, r.0.dealer_id.as_str()))
            .collect::<Vec<_>>(),
        config.dealer_hopping_days * DAY_MS,
        config.dealer_hopping_dealers,
    );
    let repeat_ms = config.repeat_job_days * DAY_MS;
    // The first repair order W02 may pair with: the earliest within the repeat window (repair
    // orders are in event order, so the window only moves forward).
    let mut window_start = 0;
    for (i, (m, opened, km, pay, jobs)) in ros.iter().enumerate() {
        while window_start < i && opened - ros[window_start].1 > repeat_ms {
            window_start += 1;
        }
        if let Some(delivered) = delivered {
            if matches!(pay, PayType::Customer | PayType::Warranty) && *opened < delivered {
                add(
                    m,
                    finding(
                        "RO1",
                        "repair_order.opened_at_ms",
                        Reason::new("RO1.before_delivery")
                            .arg("opened", Arg::Moment(*opened))
                            .arg("vin", vin)
                            .arg("delivered", Arg::Day(delivered)),
                    ),
                );
            }
            if *pay == PayType::Warranty {
                let window_end = calendar::months_window_end_ms(delivered, config.warranty_months);
                if *opened > window_end || *km > config.warranty_km {
                    add(
                        m,
                        finding(
                            "W01",
                            "repair_order.pay_type",
                            Reason::new("W01.outside_window")
                                .arg("vin", vin)
                                .arg("opened", Arg::Day(*opened))
                                .arg("km", *km)
                                .arg("months", config.warranty_months)
                                .arg("max_km", config.warranty_km)
                                .arg("delivered", Arg::Day(delivered)),
                        ),
                    );
                }
            }
        }
        if let Some((earlier, e_opened, ..)) =
            ros[window_start..i]
                .iter()
                .find(|(_, e_opened, _, _, e_jobs)| {
                    opened - e_opened <= repeat_ms && e_jobs.iter().any(|j| jobs.contains(j))
                })
        {
            add(
                m,
                finding(
                    "W02",
                    "repair_order.job_lines",
                    Reason::new("W02.repeat_job")
                        .arg("vin", vin)
                        .arg("earlier_day", Arg::Day(*e_opened))
                        .arg("dealer", &earlier.dealer_id)
                        .arg("days", config.repeat_job_days),
                ),
            );
        }
        let hopping = hopping[i].map(|(lo, hi)| {
            ros[lo..=hi]
                .iter()
                .map(|r| r.0.dealer_id.as_str())
                .collect::<BTreeSet<&str>>()
        });
        if let Some(dealers) = hopping {
            let list = dealers.into_iter().collect::<Vec<_>>().join(", ");
            add(
                m,
                finding(
                    "W03",
                    "repair_order.vin",
                    Reason::new("W03.dealer_hopping")
                        .arg("vin", vin)
                        .arg("dealers", config.dealer_hopping_dealers)
                        .arg("list", list)
                        .arg("days", config.dealer_hopping_days),
                ),
            );
        }
    }
}

/// A VIN's recorded odometer replacements.
fn replacements_of(members: &[&Member]) -> Vec<Replacement> {
    members
        .iter()
        .filter_map(|m| match m.fact {
            Fact::OdometerReplacement {
                replaced_ms,
                at_ms,
                before_km,
                after_km,
            } => Some(Replacement {
                day: replaced_ms.div_euclid(DAY_MS),
                at_ms,
                before_km,
                after_km,
            }),
            _ => None,
        })
        .collect()
}

/// A VIN's odometer readings, `(member, time, km)`: deliveries and repair orders, in the
/// members' (event) order.
fn readings_of<'a>(members: &[&'a Member]) -> Vec<(&'a Member, i64, u32)> {
    members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::Delivery {
                delivered_ms,
                odometer_km,
                ..
            } => Some((*m, *delivered_ms, *odometer_km)),
            Fact::RepairOrder {
                opened_ms,
                odometer_in_km,
                ..
            } => Some((*m, *opened_ms, *odometer_in_km)),
            _ => None,
        })
        .collect()
}

/// What O01 and O03 read of the readings before one: those with a strictly earlier event time
/// on the same odometer (no recorded replacement stands between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Earlier {
    /// The highest of them (the last of equals, in event order), as an index of the readings.
    highest: usize,
    /// The latest of them: its time and (of equals) its highest reading.
    latest_ms: i64,
    latest_km: u32,
}

/// [`Earlier`] for each reading (`(member, time, km)` in event order), or `None` when none is
/// before it. Readings are comparable only when every replacement puts them on the same side;
/// each odometer's readings are walked once in event order, a block of equal times seeing only
/// what came before the block: O(n) after the sort, where comparing every pair was O(n²).
fn earlier_readings(
    readings: &[(&Member, i64, u32)],
    replacements: &[Replacement],
) -> Vec<Option<Earlier>> {
    let mut odometers: BTreeMap<Vec<bool>, Vec<usize>> = BTreeMap::new();
    for (i, (_, t, km)) in readings.iter().enumerate() {
        let side = replacements.iter().map(|r| r.is_after(*t, *km)).collect();
        odometers.entry(side).or_default().push(i);
    }
    let mut out = vec![None; readings.len()];
    for indices in odometers.values() {
        let mut seen: Option<Earlier> = None;
        for block in indices.chunk_by(|a, b| readings[*a].1 == readings[*b].1) {
            for i in block {
                out[*i] = seen;
            }
            let block_ms = readings[block[0]].1;
            let block_km = block.iter().map(|i| readings[*i].2).max().unwrap_or(0);
            let highest = block
                .iter()
                .fold(seen.map(|s| s.highest), |best, i| match best {
                    Some(b) if readings[b].2 > readings[*i].2 => Some(b),
                    _ => Some(*i),
                });
            seen = highest.map(|highest| Earlier {
                highest,
                latest_ms: block_ms,
                latest_km: block_km,
            });
        }
    }
    out
}

/// W03's windows: for each repair order (`(opened, dealer)`, in time order), the first window
/// `[start, start + span]` starting at a repair order's time that contains it and holds
/// repair orders of at least `dealers` dealers, as the index range of its repair orders.
/// One pass with two pointers: O(n) windows, each repair order entering and leaving once.
fn hopping_windows(ros: &[(i64, &str)], span: i64, dealers: usize) -> Vec<Option<(usize, usize)>> {
    let mut out = vec![None; ros.len()];
    let mut in_window: std::collections::HashMap<&str, usize> = Default::default();
    let (mut lo, mut hi, mut unassigned, mut i) = (0, 0, 0, 0);
    while i < ros.len() {
        let start = ros[i].0;
        while lo < i {
            if let Some(n) = in_window.get_mut(ros[lo].1) {
                *n -= 1;
                if *n == 0 {
                    in_window.remove(ros[lo].1);
                }
            }
            lo += 1;
        }
        while hi < ros.len() && ros[hi].0 <= start.saturating_add(span) {
            *in_window.entry(ros[hi].1).or_default() += 1;
            hi += 1;
        }
        if in_window.len() >= dealers {
            unassigned = unassigned.max(i);
            while unassigned < hi {
                out[unassigned] = Some((i, hi - 1));
                unassigned += 1;
            }
        }
        while i < ros.len() && ros[i].0 == start {
            i += 1;
        }
    }
    out
}

/// A recorded odometer replacement, as it separates a VIN's readings (O01, O03, and the
/// odometer series HQ sees).
pub struct Replacement {
    /// Days since the epoch (UTC) of `replaced_on`.
    pub day: i64,
    pub at_ms: Option<i64>,
    pub before_km: u32,
    pub after_km: u32,
}

impl Replacement {
    /// Whether a reading at `t` of `km` was taken on the new cluster. A reading on another day
    /// is placed by its day; one on the replacement's day by the recorded time, else by which
    /// of the two recorded readings it is nearer (a tie counts as after, as the day's start).
    pub fn is_after(&self, t: i64, km: u32) -> bool {
        let day = t.div_euclid(DAY_MS);
        if day != self.day {
            return day > self.day;
        }
        match self.at_ms {
            Some(at) => t >= at,
            None => km.abs_diff(self.after_km) <= km.abs_diff(self.before_km),
        }
    }
}

/// C05: one mobile on more customers than allowed.
fn shared_mobile(members: &[&Member], config: &RuleConfig, add: &mut impl FnMut(&Member, Finding)) {
    let identities: BTreeSet<&str> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::Customer { identity, .. } => Some(identity.as_str()),
            _ => None,
        })
        .collect();
    if !c05_fires(identities.len(), config) {
        return;
    }
    let dealers: BTreeSet<&str> = members.iter().map(|m| m.dealer_id.as_str()).collect();
    let finding = c05_finding(dealers, config);
    for m in members {
        add(m, finding.clone());
    }
}

/// C05 fires on every member once a mobile has more than the allowed distinct customers.
pub fn c05_fires(distinct_customers: usize, config: &RuleConfig) -> bool {
    distinct_customers > config.shared_mobile_max_customers
}

/// The C05 finding, naming the dealers the mobile was registered at.
pub fn c05_finding<'a>(dealers: impl IntoIterator<Item = &'a str>, config: &RuleConfig) -> Finding {
    let dealers = dealers.into_iter().collect::<Vec<_>>().join(", ");
    finding(
        "C05",
        "customer.mobile",
        Reason::new("C05.shared_mobile")
            .arg("max", config.shared_mobile_max_customers)
            .arg("dealers", dealers),
    )
}

/// C07: one national ID under different names.
fn names_of_one_id(members: &[&Member], add: &mut impl FnMut(&Member, Finding)) {
    let names: BTreeSet<&str> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::Customer { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !c07_fires(names.len()) {
        return;
    }
    let dealers: BTreeSet<&str> = members.iter().map(|m| m.dealer_id.as_str()).collect();
    let finding = c07_finding(dealers);
    for m in members {
        add(m, finding.clone());
    }
}

/// C07 fires on every member once a national ID carries more than one name.
pub fn c07_fires(distinct_names: usize) -> bool {
    distinct_names > 1
}

/// The C07 finding, naming the dealers the ID was registered at.
pub fn c07_finding<'a>(dealers: impl IntoIterator<Item = &'a str>) -> Finding {
    let dealers = dealers.into_iter().collect::<Vec<_>>().join(", ");
    finding(
        "C07",
        "customer.national_id",
        Reason::new("C07.names_differ").arg("dealers", dealers),
    )
}

/// RO3 and the visit-timing part of Q01.
fn ro_number(
    number: &str,
    members: &[&Member],
    config: &RuleConfig,
    add: &mut impl FnMut(&Member, Finding),
) {
    let ros: Vec<(&Member, &str, i64, i64)> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::RepairOrder {
                vin,
                opened_ms,
                completed_ms,
                ..
            } => Some((*m, vin.as_str(), *opened_ms, *completed_ms)),
            _ => None,
        })
        .collect();
    let Some((_, first_vin, first_opened, first_completed)) = ros.first().copied() else {
        return;
    };
    for (m, vin, opened, _) in &ros[1..] {
        if *vin != first_vin || day(*opened) != day(first_opened) {
            add(
                m,
                finding(
                    "RO3",
                    "repair_order.ro_number",
                    Reason::new("RO3.number_reused")
                        .arg("number", number)
                        .arg("vin", first_vin)
                        .arg("opened", Arg::Day(first_opened)),
                ),
            );
        }
    }
    if first_completed <= 0 {
        return;
    }
    let min_ms = config.survey_min_minutes_after_visit * 60_000;
    for m in members {
        if let Fact::Survey { submitted_ms, .. } = m.fact {
            if submitted_ms - first_completed < min_ms {
                add(
                    m,
                    finding(
                        "Q01",
                        "survey.submitted_at_ms",
                        Reason::new("Q01.too_soon")
                            .arg("submitted", Arg::Moment(submitted_ms))
                            .arg("minutes", config.survey_min_minutes_after_visit)
                            .arg("number", number)
                            .arg("completed", Arg::Moment(first_completed)),
                    ),
                );
            }
        }
    }
}

/// S04 and the uniform-score part of Q01.
fn dealer_month(
    month: &str,
    members: &[&Member],
    config: &RuleConfig,
    add: &mut impl FnMut(&Member, Finding),
) {
    let deliveries: Vec<(&Member, i64)> = members
        .iter()
        .filter_map(|m| match m.fact {
            Fact::Delivery { delivered_ms, .. } => Some((*m, delivered_ms)),
            _ => None,
        })
        .collect();
    let tail: Vec<&Member> = deliveries
        .iter()
        .filter(|(_, t)| in_month_tail(*t, config))
        .map(|(m, _)| *m)
        .collect();
    let body = deliveries.len() - tail.len();
    if !deliveries.is_empty() && s04_fires(month, tail.len(), body, config) {
        let finding = s04_finding(month, config);
        for m in tail {
            add(m, finding.clone());
        }
    }
    let surveys: Vec<(&Member, bool)> = members
        .iter()
        .filter_map(|m| match m.fact {
            Fact::Survey { top_score, .. } => Some((*m, top_score)),
            _ => None,
        })
        .collect();
    let top = surveys.iter().filter(|s| s.1).count();
    if q01_uniform_fires(surveys.len(), top, config) {
        let finding = q01_uniform_finding(month, config);
        for (m, _) in &surveys {
            add(m, finding.clone());
        }
    }
}

/// Whether a delivery at `delivered_ms` falls in the last `bunching_tail_days` of its month.
pub fn in_month_tail(delivered_ms: i64, config: &RuleConfig) -> bool {
    delivered_ms >= month_tail(delivered_ms, config.bunching_tail_days).1
}

/// S04: a month (`YYYY-MM`) with `tail` deliveries in its last days and `body` in the rest
/// bunches when enough are in the tail at a rate well above the body's.
pub fn s04_fires(month: &str, tail: usize, body: usize, config: &RuleConfig) -> bool {
    let Some(start_ms) = month_start_ms(month) else {
        return false;
    };
    let (days, _) = month_tail(start_ms, config.bunching_tail_days);
    let tail_days = config.bunching_tail_days as f64;
    let tail_rate = tail as f64 / tail_days;
    let body_rate = body.max(1) as f64 / (days as f64 - tail_days);
    tail >= config.bunching_min_deliveries && tail_rate > config.bunching_ratio * body_rate
}

/// The S04 finding, on each delivery in the month's tail.
pub fn s04_finding(month: &str, config: &RuleConfig) -> Finding {
    finding(
        "S04",
        "retail_delivery.delivery_date",
        Reason::new("S04.bunching")
            .arg("tail_days", config.bunching_tail_days)
            .arg("month", month)
            .arg("ratio", config.bunching_ratio.to_string())
            .arg("min", config.bunching_min_deliveries),
    )
}

/// Q01 (uniform scores): enough surveys in a month, and a top-score share at or above the
/// threshold.
pub fn q01_uniform_fires(surveys: usize, top: usize, config: &RuleConfig) -> bool {
    surveys >= config.survey_uniform_min_count
        && surveys > 0
        && top as f64 / surveys as f64 >= config.survey_uniform_top_share
}

/// The uniform-score Q01 finding, on each survey of the month.
pub fn q01_uniform_finding(month: &str, config: &RuleConfig) -> Finding {
    finding(
        "Q01",
        "survey.csat",
        Reason::new("Q01.uniform")
            .arg(
                "share",
                format!("{:.0}", config.survey_uniform_top_share * 100.0),
            )
            .arg("month", month)
            .arg("min", config.survey_uniform_min_count),
    )
}

/// The first moment (UTC) of a `YYYY-MM` month, as [`GroupKey::DealerMonth`] names it.
pub fn month_start_ms(month: &str) -> Option<i64> {
    let (year, month) = month.split_once('-')?;
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, 1).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// The number of days in the month of `ms` and the first moment of its last `tail_days` days.
fn month_tail(ms: i64, tail_days: u32) -> (u32, i64) {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return (30, i64::MAX);
    };
    let days = time::util::days_in_month(t.month(), t.year()) as u32;
    let first = time::Date::from_calendar_date(t.year(), t.month(), 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
        .unwrap_or(ms);
    (days, first + (days - tail_days) as i64 * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W03 as RULES.md words it, the slow way: some window starting at a visit holds visits of
    /// enough dealers and contains this one.
    fn naive(ros: &[(i64, &str)], span: i64, dealers: usize) -> Vec<bool> {
        ros.iter()
            .map(|(t, _)| {
                ros.iter().any(|(start, _)| {
                    let window = *start..=start + span;
                    window.contains(t)
                        && ros
                            .iter()
                            .filter(|r| window.contains(&r.0))
                            .map(|r| r.1)
                            .collect::<BTreeSet<_>>()
                            .len()
                            >= dealers
                })
            })
            .collect()
    }

    #[test]
    fn dealer_hopping_windows_find_exactly_the_visits_the_rule_describes() {
        let names = ["D-1", "D-2", "D-3", "D-4"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for case in 0..500 {
            let len = 1 + next(12) as usize;
            let mut ros: Vec<(i64, &str)> = (0..len)
                .map(|_| ((next(40) as i64) * DAY_MS, names[next(4) as usize]))
                .collect();
            ros.sort();
            let span = (1 + next(20) as i64) * DAY_MS;
            let need = 1 + next(3) as usize;
            let fast: Vec<bool> = hopping_windows(&ros, span, need)
                .iter()
                .map(Option::is_some)
                .collect();
            assert_eq!(
                fast,
                naive(&ros, span, need),
                "case {case}: {ros:?} span {span} need {need}"
            );
            for (k, window) in hopping_windows(&ros, span, need).iter().enumerate() {
                if let Some((lo, hi)) = window {
                    assert!(
                        lo <= &k && &k <= hi,
                        "case {case}: visit {k} outside its window"
                    );
                }
            }
        }
    }

    /// O01, O03 and W02 as they were decided before one pass replaced them: every earlier
    /// reading compared with every later one (the reference the fast path must equal).
    fn compared_pairwise(
        members: &[&Member],
        config: &RuleConfig,
    ) -> BTreeSet<(At, String, String)> {
        let mut out = BTreeSet::new();
        let replacements = replacements_of(members);
        let replaced_between = |(t0, km0): (i64, u32), (t, km): (i64, u32)| {
            replacements
                .iter()
                .any(|r| r.is_after(t0, km0) != r.is_after(t, km))
        };
        let readings = readings_of(members);
        let at = |m: &Member| (m.dealer_id.clone(), m.seq);
        for (m, t, km) in &readings {
            if !matches!(m.fact, Fact::RepairOrder { .. }) {
                continue;
            }
            let earlier = readings
                .iter()
                .filter(|(_, t0, km0)| t0 < t && !replaced_between((*t0, *km0), (*t, *km)));
            if let Some((other, t0, km0)) = earlier
                .clone()
                .filter(|(_, _, km0)| km0 > km)
                .max_by_key(|(_, _, km0)| *km0)
            {
                out.insert((
                    at(m),
                    "O01".into(),
                    format!("{km0} {t0} {}", other.dealer_id),
                ));
            }
            if let Some((_, t0, km0)) = earlier.max_by_key(|(_, t0, km0)| (*t0, *km0)) {
                let days = ((t - t0) as f64 / DAY_MS as f64).max(1.0);
                let per_day = (km.saturating_sub(*km0)) as f64 / days;
                if km > km0 && per_day > config.max_km_per_day as f64 {
                    out.insert((at(m), "O03".into(), format!("{km0} {t0}")));
                }
            }
        }
        type Visit<'a> = (&'a Member, i64, &'a Vec<(String, String)>);
        let ros: Vec<Visit<'_>> = members
            .iter()
            .filter_map(|m| match &m.fact {
                Fact::RepairOrder {
                    opened_ms, jobs, ..
                } => Some((*m, *opened_ms, jobs)),
                _ => None,
            })
            .collect();
        let repeat_ms = config.repeat_job_days * DAY_MS;
        for (i, (m, opened, jobs)) in ros.iter().enumerate() {
            if let Some((earlier, e_opened, _)) = ros[..i].iter().find(|(_, e_opened, e_jobs)| {
                opened - e_opened <= repeat_ms && e_jobs.iter().any(|j| jobs.contains(j))
            }) {
                out.insert((
                    at(m),
                    "W02".into(),
                    format!("{e_opened} {}", earlier.dealer_id),
                ));
            }
        }
        out
    }

    /// The one-pass O01, O03 and W02 give what comparing every pair gave, values cited
    /// included, on random VIN histories: readings on the same days, equal readings, odometer
    /// replacements with and without a time, several dealers.
    #[test]
    fn a_vins_readings_in_one_pass_equal_every_pair_compared() {
        let config = RuleConfig::default();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let dealers = ["D-1", "D-2", "D-3"];
        let base = 1_700_000_000_000_i64 / DAY_MS * DAY_MS;
        let mut fired = BTreeSet::new();
        for case in 0..400 {
            let len = 1 + next(30) as usize;
            let members: Vec<Member> = (0..len)
                .map(|i| {
                    let day = base + next(90) as i64 * DAY_MS;
                    let at = day + next(3) as i64 * 3_600_000;
                    let fact = match next(10) {
                        0 => Fact::OdometerReplacement {
                            replaced_ms: day,
                            at_ms: (next(2) == 0).then_some(at),
                            before_km: next(60_000) as u32,
                            after_km: next(1_000) as u32,
                        },
                        1 => Fact::Delivery {
                            delivered_ms: day,
                            odometer_km: next(50) as u32,
                            retail: true,
                        },
                        _ => Fact::RepairOrder {
                            vin: "V".into(),
                            opened_ms: at,
                            completed_ms: 0,
                            odometer_in_km: (next(6) * 10_000) as u32,
                            pay_type: PayType::Customer,
                            jobs: vec![(format!("L{}", next(4)), String::new())],
                        },
                    };
                    Member {
                        dealer_id: dealers[next(3) as usize].into(),
                        seq: i as u64 + 1,
                        fact,
                        current: Vec::new(),
                    }
                })
                .collect();
            let found = judge_group(&GroupKey::Vin("V".into()), &members, &config);
            let fast: BTreeSet<(At, String, String)> = found
                .iter()
                .flat_map(|(at, findings)| {
                    findings
                        .iter()
                        .filter(|f| ["O01", "O03", "W02"].contains(&f.rule_id.as_str()))
                        .map(|f| {
                            let arg = |name: &str| {
                                f.reason
                                    .args
                                    .iter()
                                    .find(|(n, _)| n == name)
                                    .map(|(_, v)| v.render())
                                    .unwrap_or_default()
                            };
                            let cited = match f.rule_id.as_str() {
                                "O01" => format!(
                                    "{} {} {}",
                                    arg("earlier_km"),
                                    arg("earlier_day"),
                                    arg("dealer")
                                ),
                                "O03" => format!("{} {}", arg("earlier_km"), arg("earlier_day")),
                                _ => format!("{} {}", arg("earlier_day"), arg("dealer")),
                            };
                            (at.clone(), f.rule_id.clone(), cited)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut sorted: Vec<&Member> = members.iter().collect();
            sorted.sort_by(|a, b| a.order().cmp(&b.order()));
            // The reference cites times as numbers; render them as the findings do.
            let reference: BTreeSet<(At, String, String)> = compared_pairwise(&sorted, &config)
                .into_iter()
                .map(|(at, rule, cited)| {
                    let mut words = cited.split(' ');
                    let cited = match rule.as_str() {
                        "O01" => {
                            let km = words.next().unwrap_or_default();
                            let day = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                            let dealer = words.next().unwrap_or_default();
                            format!("{km} {} {dealer}", Arg::Day(day).render())
                        }
                        "O03" => {
                            let km = words.next().unwrap_or_default();
                            let day = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                            format!("{km} {}", Arg::Day(day).render())
                        }
                        _ => {
                            let day = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                            let dealer = words.next().unwrap_or_default();
                            format!("{} {dealer}", Arg::Day(day).render())
                        }
                    };
                    (at, rule, cited)
                })
                .collect();
            fired.extend(fast.iter().map(|(_, rule, _)| rule.clone()));
            assert_eq!(fast, reference, "case {case}: {members:?}");
        }
        assert_eq!(fired.len(), 3, "each rule fired somewhere: {fired:?}");
    }
}
