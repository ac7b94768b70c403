//! `central query ...` for people at HQ: customer 360, search, vehicle history, flags, conflicts,
//! identity reviews, decisions, scorecards, the lifecycle report, the change stream, exports and
//! the dealer's vehicle lookup. Tables by default; `--json` prints one JSON object per line
//! (proto3 canonical JSON) for scripts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use futures::StreamExt;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use hamgam_proto::hq::v1::vehicle_lookup_client::VehicleLookupClient;
use tonic::transport::Channel;

use crate::cli::query::format_ms;

#[derive(Subcommand)]
pub enum HqQuery {
    /// Customer 360: golden record with provenance, linked dealer records, vehicles, contacts,
    /// lifecycle stage and KPIs (all facts and clean facts only), flags and conflicts.
    Customer {
        customer_id: String,
        /// Compute the lifecycle as of this date (YYYY-MM-DD, UTC); default now.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Find customers by national or company ID, mobile (any written form) or name.
    Search {
        #[arg(long, group = "by")]
        national_id: Option<String>,
        #[arg(long, group = "by")]
        mobile: Option<String>,
        /// Name words as typed (prefixes of the name's words), normalised.
        #[arg(long, group = "by")]
        name: Option<String>,
        /// With --name: similar names, not only prefixes.
        #[arg(long)]
        fuzzy: bool,
        /// Show at most this many customers.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// A vehicle's history: roles over time, repair orders, odometer readings with flags.
    Vehicle { vin: String },
    /// The service summary a dealer sees (works with a dealer certificate too).
    Lookup { vin: String },
    /// Flags and quarantine, filtered by dealer, rule, status.
    Flags {
        #[arg(long)]
        dealer: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum)]
        status: Option<FlagStatusArg>,
        /// Only rejected records still in quarantine.
        #[arg(long)]
        quarantined: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Confirm or dismiss one flag (a dismissal changes the record's verdict at its dealer).
    /// Needs an HQ reviewer certificate (`central pki issue hq NAME --role reviewer`).
    ReviewFlag {
        dealer_id: String,
        seq: u64,
        rule_id: String,
        #[arg(value_enum)]
        status: FlagStatusArg,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Conflicts between dealers about customers and vehicles.
    Conflicts {
        /// Only conflicts HQ has not settled.
        #[arg(long)]
        open: bool,
    },
    /// Pairs of dealer records that may be the same customer.
    Reviews,
    /// Settle a conflict or a review pair. Needs an HQ reviewer certificate
    /// (`central pki issue hq NAME --role reviewer`).
    Decide {
        #[command(subcommand)]
        decision: Decision,
        #[arg(long, default_value = "", global = true)]
        comment: String,
    },
    /// A dealer's scorecard: reliability and trend, top rules, sync freshness, volumes.
    Scorecard { dealer_id: String },
    /// Lifecycle stage counts and retention, all facts and clean facts only.
    Lifecycle {
        #[arg(long, value_enum, default_value = "dealer")]
        by: GroupByArg,
        #[command(flatten)]
        filter: crate::cli::questions::FilterArgs,
    },
    /// The change stream from a cursor (records stored, verdicts changed, customers changed).
    Changes {
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Keep waiting for new changes (Ctrl-C to stop).
        #[arg(long)]
        follow: bool,
    },
    /// Every customer (golden record, linked records, conflicts, lifecycle stage with all
    /// facts and with trusted facts only) or every vehicle, as JSON lines.
    Export {
        #[arg(value_enum)]
        kind: ExportArg,
        /// Customers' lifecycle stages as of this date (YYYY-MM-DD, UTC); default now.
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Decision {
    /// Confirm a customer field's value (national_id, company_id, name, mobile, postal_code).
    ConfirmField {
        customer_id: String,
        field: String,
        value: String,
    },
    /// Confirm which dealer sold a VIN.
    ConfirmSeller { vin: String, dealer_id: String },
    /// Two dealer records are the same customer (DEALER/REF each).
    Link { a: String, b: String },
    /// Two dealer records are different customers.
    KeepApart { a: String, b: String },
    /// Take a dealer record out of its customer.
    Detach { party: String },
    /// Undo a detach.
    Reattach { party: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FlagStatusArg {
    Open,
    Confirmed,
    Dismissed,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GroupByArg {
    Dealer,
    Region,
    Model,
    Period,
    Segment,
    Role,
    Channel,
    Category,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportArg {
    Customers,
    Vehicles,
}

pub(crate) fn group_by(by: GroupByArg) -> hq::GroupBy {
    match by {
        GroupByArg::Dealer => hq::GroupBy::Dealer,
        GroupByArg::Region => hq::GroupBy::Region,
        GroupByArg::Model => hq::GroupBy::Model,
        GroupByArg::Period => hq::GroupBy::Period,
        GroupByArg::Segment => hq::GroupBy::Segment,
        GroupByArg::Role => hq::GroupBy::Role,
        GroupByArg::Channel => hq::GroupBy::Channel,
        GroupByArg::Category => hq::GroupBy::Category,
    }
}

fn flag_status(s: FlagStatusArg) -> hq::FlagStatus {
    match s {
        FlagStatusArg::Open => hq::FlagStatus::Open,
        FlagStatusArg::Confirmed => hq::FlagStatus::Confirmed,
        FlagStatusArg::Dismissed => hq::FlagStatus::Dismissed,
    }
}

pub(crate) fn date_ms(date: &Option<String>) -> Result<i64> {
    let Some(date) = date else { return Ok(0) };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(date, &format)
        .with_context(|| format!("--as-of {date:?}: give a date as YYYY-MM-DD"))?;
    // The end of that day: facts of the day count.
    Ok(d.midnight().assume_utc().unix_timestamp() * 1000 + 86_400_000 - 1)
}

fn party(text: &str) -> Result<hq::PartyRef> {
    let (dealer_id, customer_ref) = text
        .split_once('/')
        .with_context(|| format!("{text:?}: write a dealer record as DEALER/CUSTOMER_REF"))?;
    Ok(hq::PartyRef {
        dealer_id: dealer_id.into(),
        customer_ref: customer_ref.into(),
    })
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// A proto enum value as people read it: `STAGE_NEW_OWNER` -> `new_owner`.
fn name(proto_name: &str) -> String {
    const PREFIXES: [&str; 6] = [
        "SEVERITY_",
        "OUTCOME_",
        "TRUST_",
        "ROLE_",
        "STAGE_",
        "FLAG_STATUS_",
    ];
    PREFIXES
        .iter()
        .find_map(|p| proto_name.strip_prefix(p))
        .unwrap_or(proto_name)
        .to_lowercase()
}

/// Runs one HQ query on `channel`.
pub async fn run(channel: Channel, as_json: bool, query: HqQuery) -> Result<()> {
    let mut client = HqServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    match query {
        HqQuery::Customer { customer_id, as_of } => {
            let c = client
                .get_customer(hq::GetCustomerRequest {
                    customer_id,
                    as_of_ms: date_ms(&as_of)?,
                })
                .await
                .context("GetCustomer failed")?
                .into_inner();
            if as_json {
                return json(&c);
            }
            print_customer(&c);
        }
        HqQuery::Search {
            national_id,
            mobile,
            name: person,
            fuzzy,
            limit,
        } => {
            use hq::search_customers_request::By;
            let by = match (national_id, mobile, person) {
                (Some(n), ..) => By::NationalId(n),
                (_, Some(m), _) => By::Mobile(m),
                (.., Some(n)) => By::Name(n),
                _ => anyhow::bail!("give --national-id, --mobile or --name"),
            };
            // A name search may answer short pages with a token: page until `limit` or the end.
            let mut customers = Vec::new();
            let mut token = String::new();
            while customers.len() < limit {
                let page = client
                    .search_customers(hq::SearchCustomersRequest {
                        by: Some(by.clone()),
                        fuzzy,
                        page_size: (limit - customers.len()).min(100) as u32,
                        page_token: token.clone(),
                    })
                    .await
                    .context("SearchCustomers failed")?
                    .into_inner();
                customers.extend(page.customers);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            let found = hq::SearchCustomersResponse {
                customers,
                next_page_token: token,
            };
            if as_json {
                return found.customers.iter().try_for_each(json);
            }
            println!(
                "{:<20}  {:<30}  {:<11}  {:<14}  {:>6}  matched",
                "customer", "name", "ID", "mobile", "linked"
            );
            for c in &found.customers {
                println!(
                    "{:<20}  {:<30}  {:<11}  {:<14}  {:>6}  {}",
                    c.customer_id, c.name, c.national_id, c.mobile, c.linked_records, c.matched
                );
            }
            println!("{} customers", found.customers.len());
        }
        HqQuery::Vehicle { vin } => {
            let v = client
                .get_vehicle_history(hq::GetVehicleHistoryRequest { vin })
                .await
                .context("GetVehicleHistory failed")?
                .into_inner();
            if as_json {
                return json(&v);
            }
            print_vehicle(&v);
        }
        HqQuery::Lookup { vin } => {
            let s = VehicleLookupClient::new(channel)
                .get_service_summary(hq::GetServiceSummaryRequest { vin })
                .await
                .context("GetServiceSummary failed")?
                .into_inner();
            if as_json {
                return json(&s);
            }
            println!(
                "{}  {}  delivered {}  last odometer {} km{}{}",
                s.vin,
                s.model,
                s.delivered_ms.map(format_ms).unwrap_or_else(|| "-".into()),
                s.last_odometer_km,
                if s.odometer_suspect {
                    "  ODOMETER SUSPECT"
                } else {
                    ""
                },
                if s.condition.is_empty() {
                    String::new()
                } else {
                    format!("  {}", s.condition)
                }
            );
            for v in &s.visits {
                println!(
                    "  {}  {:<8}  {:>8} km  {:<10}  {}",
                    format_ms(v.opened_ms),
                    v.dealer_id,
                    v.odometer_in_km,
                    v.pay_type,
                    v.labor_op_codes.join(",")
                );
            }
        }
        HqQuery::Flags {
            dealer,
            rule,
            status,
            quarantined,
            limit,
        } => {
            let mut token = String::new();
            let mut shown = 0;
            if !as_json {
                println!(
                    "{:<8}  {:>6}  {:<16}  {:<4}  {:<10}  {:<9}  reason",
                    "dealer", "seq", "kind", "rule", "severity", "status"
                );
            }
            while shown < limit {
                let page = client
                    .list_flags(hq::ListFlagsRequest {
                        dealer_id: dealer.clone().unwrap_or_default(),
                        rule_id: rule.clone().unwrap_or_default(),
                        status: status.map_or(0, |s| flag_status(s) as i32),
                        quarantined_only: quarantined,
                        page_size: (limit - shown).min(1000) as u32,
                        page_token: token.clone(),
                        ..Default::default()
                    })
                    .await
                    .context("ListFlags failed")?
                    .into_inner();
                for f in &page.flags {
                    shown += 1;
                    if as_json {
                        json(f)?;
                        continue;
                    }
                    let finding = f.finding.clone().unwrap_or_default();
                    println!(
                        "{:<8}  {:>6}  {:<16}  {:<4}  {:<10}  {:<9}  {}",
                        f.dealer_id,
                        f.seq,
                        f.kind,
                        finding.rule_id,
                        name(finding.severity().as_str_name()),
                        name(f.status().as_str_name()),
                        finding.reason_en
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        HqQuery::ReviewFlag {
            dealer_id,
            seq,
            rule_id,
            status,
            comment,
        } => {
            let r = client
                .review_flag(hq::ReviewFlagRequest {
                    dealer_id,
                    seq,
                    rule_id,
                    status: flag_status(status) as i32,
                    comment,
                    reviewer: String::new(),
                })
                .await
                .context("ReviewFlag failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            let v = r.verdict.unwrap_or_default();
            println!(
                "decision {}: the record's verdict is now {} (version {})",
                r.decision_no,
                name(v.outcome().as_str_name()),
                v.version
            );
        }
        HqQuery::Conflicts { open } => {
            let mut token = String::new();
            loop {
                let page = client
                    .list_conflicts(hq::ListConflictsRequest {
                        open_only: open,
                        page_size: 500,
                        page_token: token.clone(),
                    })
                    .await
                    .context("ListConflicts failed")?
                    .into_inner();
                for c in &page.conflicts {
                    if as_json {
                        json(c)?;
                        continue;
                    }
                    let values: Vec<String> = c
                        .values
                        .iter()
                        .map(|v| {
                            let by: Vec<&str> =
                                v.sources.iter().map(|s| s.dealer_id.as_str()).collect();
                            format!("{:?} ({})", v.value, by.join(","))
                        })
                        .collect();
                    println!(
                        "{}  {}  chosen {:?}{}  values: {}",
                        c.subject,
                        c.field,
                        c.chosen,
                        if c.resolved { " (settled by HQ)" } else { "" },
                        values.join("; ")
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        HqQuery::Reviews => {
            let mut token = String::new();
            loop {
                let page = client
                    .list_identity_reviews(hq::ListIdentityReviewsRequest {
                        page_size: 500,
                        page_token: token.clone(),
                    })
                    .await
                    .context("ListIdentityReviews failed")?
                    .into_inner();
                for r in &page.reviews {
                    if as_json {
                        json(r)?;
                        continue;
                    }
                    let p = |x: &Option<hq::PartyRef>| {
                        x.as_ref()
                            .map(|x| format!("{}/{}", x.dealer_id, x.customer_ref))
                            .unwrap_or_default()
                    };
                    println!(
                        "{} {:?}  ~  {} {:?}   similarity {:.2}, {}",
                        p(&r.a),
                        r.name_a,
                        p(&r.b),
                        r.name_b,
                        r.similarity,
                        r.reason
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        HqQuery::Decide { decision, comment } => {
            use hq::decide_request::Decision as D;
            let d = match decision {
                Decision::ConfirmField {
                    customer_id,
                    field,
                    value,
                } => D::ConfirmCustomerField(hq::ConfirmCustomerField {
                    customer_id,
                    field,
                    value,
                }),
                Decision::ConfirmSeller { vin, dealer_id } => {
                    D::ConfirmVehicleSeller(hq::ConfirmVehicleSeller { vin, dealer_id })
                }
                Decision::Link { a, b } => D::Link(hq::PartyPair {
                    a: Some(party(&a)?),
                    b: Some(party(&b)?),
                }),
                Decision::KeepApart { a, b } => D::KeepApart(hq::PartyPair {
                    a: Some(party(&a)?),
                    b: Some(party(&b)?),
                }),
                Decision::Detach { party: p } => D::Detach(party(&p)?),
                Decision::Reattach { party: p } => D::Reattach(party(&p)?),
            };
            let r = client
                .decide(hq::DecideRequest {
                    decision: Some(d),
                    comment,
                    reviewer: String::new(),
                })
                .await
                .context("Decide failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            println!(
                "decision {} taken; {} dealer records' verdicts changed (sent to their dealers)",
                r.decision_no, r.verdicts_changed
            );
        }
        HqQuery::Scorecard { dealer_id } => {
            let s = client
                .get_scorecard(hq::GetScorecardRequest {
                    dealer_id,
                    as_of_ms: 0,
                })
                .await
                .context("GetScorecard failed")?
                .into_inner();
            if as_json {
                return json(&s);
            }
            let r = s.reliability.clone().unwrap_or_default();
            println!(
                "dealer {}: reliability {:.1} over {} days ({} records, {} flagged, {} rejected)",
                s.dealer_id, r.score, r.window_days, r.window_records, r.flagged, r.rejected
            );
            let top: Vec<String> = r
                .top_rules
                .iter()
                .map(|t| format!("{} {}", t.rule_id, t.records))
                .collect();
            println!("top rules: {}", top.join(", "));
            let trend: Vec<String> = s.trend.iter().map(|p| format!("{:.0}", p.score)).collect();
            println!("trend (12 weeks): {}", trend.join(" "));
            println!(
                "last seen {}, stored seq {}, clock offset {} ms, verdict backlog {}, {} records, {} in quarantine",
                format_ms(s.last_seen_ms), s.stored_seq, s.clock_offset_ms, s.verdict_backlog, s.records, s.quarantined
            );
            let volumes: Vec<String> = s
                .volumes
                .iter()
                .map(|v| format!("{} {}", v.kind, v.records))
                .collect();
            println!("volumes in the window: {}", volumes.join(", "));
        }
        HqQuery::Lifecycle { by, filter } => {
            let r = client
                .lifecycle_report(hq::LifecycleReportRequest {
                    group_by: group_by(by) as i32,
                    as_of_ms: filter.as_of_ms()?,
                    filter: Some(filter.filter()),
                })
                .await
                .context("LifecycleReport failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            print_lifecycle(&r);
        }
        HqQuery::Changes { after, follow } => {
            let mut stream = client
                .stream_changes(hq::StreamChangesRequest {
                    after_cursor: after,
                    follow,
                })
                .await
                .context("StreamChanges failed")?
                .into_inner();
            while let Some(event) = stream.next().await {
                let e =
                    event.context("the change stream broke; resume with --after <last cursor>")?;
                if as_json {
                    json(&e)?;
                    continue;
                }
                use hq::change_event::Change;
                let what = match &e.change {
                    Some(Change::RecordStored(r)) => {
                        let rec = r.record.clone().unwrap_or_default();
                        let v = r.verdict.clone().unwrap_or_default();
                        format!(
                            "record {} seq {} {}",
                            rec.dealer_id,
                            rec.seq,
                            name(v.outcome().as_str_name())
                        )
                    }
                    Some(Change::VerdictChanged(v)) => {
                        let verdict = v.verdict.clone().unwrap_or_default();
                        format!(
                            "verdict {} seq {} -> {} (version {})",
                            v.dealer_id,
                            verdict.seq,
                            name(verdict.outcome().as_str_name()),
                            verdict.version
                        )
                    }
                    Some(Change::CustomerChanged(c)) if c.removed => {
                        format!("customer {} removed (merged or split)", c.customer_id)
                    }
                    Some(Change::CustomerChanged(c)) => format!(
                        "customer {} ({} dealer records)",
                        c.customer_id,
                        c.linked.len()
                    ),
                    None => "-".into(),
                };
                println!("{:>8}  {}  {}", e.cursor, format_ms(e.at_ms), what);
            }
        }
        HqQuery::Export { kind, as_of } => {
            let kind = match kind {
                ExportArg::Customers => hq::ExportKind::Customers,
                ExportArg::Vehicles => hq::ExportKind::Vehicles,
            };
            let mut stream = client
                .export(hq::ExportRequest {
                    kind: kind as i32,
                    as_of_ms: date_ms(&as_of)?,
                })
                .await
                .context("Export failed")?
                .into_inner();
            let mut n = 0u64;
            while let Some(item) = stream.next().await {
                json(&item.context("the export broke; run it again")?)?;
                n += 1;
            }
            eprintln!("{n} exported");
        }
    }
    Ok(())
}

fn print_customer(c: &hq::Customer360) {
    println!(
        "customer {}{}",
        c.customer_id,
        if c.organization {
            " (organisation)"
        } else {
            ""
        }
    );
    for f in &c.fields {
        let src = f.source.clone().unwrap_or_default();
        println!(
            "  {:<12} {:<30} from {} seq {} ({}){}",
            f.field,
            f.value,
            src.dealer_id,
            src.seq,
            name(src.trust().as_str_name()),
            if f.alternatives.is_empty() {
                String::new()
            } else {
                let alt: Vec<String> = f
                    .alternatives
                    .iter()
                    .map(|a| format!("{:?}", a.value))
                    .collect();
                format!("; also {}", alt.join(", "))
            }
        );
    }
    let linked: Vec<String> = c
        .linked
        .iter()
        .map(|l| {
            let p = l.party.clone().unwrap_or_default();
            format!("{}/{}", p.dealer_id, p.customer_ref)
        })
        .collect();
    println!("  linked dealer records: {}", linked.join(", "));
    for v in &c.vehicles {
        let roles: Vec<String> = v.roles().map(|r| name(r.as_str_name())).collect();
        println!(
            "  vehicle {} {} as {}{}",
            v.vin,
            v.model,
            roles.join("+"),
            if v.held { "" } else { " (no longer held)" }
        );
    }
    if let Some(l) = &c.lifecycle {
        let k = l.kpis.unwrap_or_default();
        println!(
            "  lifecycle: {} (clean facts only: {}); tenure {} days, {} vehicles held, {} visits, spend {} rials, CSAT {}, NPS {}, {} open complaints",
            name(l.stage().as_str_name()),
            name(l.stage_trusted_only().as_str_name()),
            k.tenure_days,
            k.vehicles_held,
            k.service_visits,
            k.spend_rials,
            k.csat.map_or("-".into(), |x| format!("{x:.1}")),
            k.nps.map_or("-".into(), |x| format!("{x:.1}")),
            k.open_complaints
        );
    }
    println!("  timeline:");
    for t in &c.timeline {
        println!(
            "    {}  {:<8} {:<16} {}  {}{}",
            format_ms(t.at_ms),
            t.dealer_id,
            t.kind,
            t.vin,
            t.summary,
            if t.rule_ids.is_empty() {
                String::new()
            } else {
                format!("  [{}]", t.rule_ids.join(","))
            }
        );
    }
    for f in &c.flags {
        let finding = f.finding.clone().unwrap_or_default();
        println!(
            "  flag {} on {} seq {}: {} ({})",
            finding.rule_id,
            f.dealer_id,
            f.seq,
            finding.reason_en,
            name(f.status().as_str_name())
        );
    }
    for x in &c.conflicts {
        println!(
            "  conflict {} {}: chosen {:?}{}",
            x.subject,
            x.field,
            x.chosen,
            if x.resolved { " (settled)" } else { "" }
        );
    }
}

fn print_vehicle(v: &hq::VehicleHistory) {
    println!(
        "{}  {}  sold by {}  delivered {}{}",
        v.vin,
        v.model,
        if v.sold_by.is_empty() {
            "-"
        } else {
            &v.sold_by
        },
        v.delivered_ms.map(format_ms).unwrap_or_else(|| "-".into()),
        if v.condition.is_empty() {
            String::new()
        } else {
            format!("  {}", v.condition)
        }
    );
    for e in &v.timeline {
        let p = e.party.clone().unwrap_or_default();
        println!(
            "  {}  {:<13} {}/{} {} via {}",
            format_ms(e.from_ms),
            name(e.role().as_str_name()),
            p.dealer_id,
            p.customer_ref,
            e.customer_id,
            e.via
        );
    }
    for o in &v.odometer {
        println!(
            "  {}  {:>8} km  {:<20} {}{}",
            format_ms(o.at_ms),
            o.km,
            o.source_kind,
            o.dealer_id,
            if o.rule_ids.is_empty() {
                String::new()
            } else {
                format!("  [{}]", o.rule_ids.join(","))
            }
        );
    }
    for c in &v.conflicts {
        println!(
            "  conflict {}: chosen {:?}{}",
            c.field,
            c.chosen,
            if c.resolved { " (settled)" } else { "" }
        );
    }
}

fn print_lifecycle(r: &hq::LifecycleReportResponse) {
    println!(
        "lifecycle as of {} (all facts | clean facts only)",
        format_ms(r.as_of_ms)
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>15} {:>12}",
        "group",
        "customers",
        "prospect",
        "new",
        "never_svc",
        "active",
        "lost",
        "defected",
        "former",
        "retention",
        "1st svc d"
    );
    let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
    let days = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.0}"));
    for row in r.rows.iter().chain(r.total.as_ref()) {
        let a = row.all_facts.unwrap_or_default();
        let t = row.trusted_only.unwrap_or_default();
        println!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>15} {:>12}",
            row.group,
            row.customers,
            format!("{}|{}", a.prospect, t.prospect),
            format!("{}|{}", a.new_owner, t.new_owner),
            format!("{}|{}", a.never_serviced, t.never_serviced),
            format!("{}|{}", a.active, t.active),
            format!("{}|{}", a.recently_lost, t.recently_lost),
            format!("{}|{}", a.defected, t.defected),
            format!("{}|{}", a.former, t.former),
            format!("{}|{}", pct(a.service_retention), pct(t.service_retention)),
            format!(
                "{}|{}",
                days(a.days_to_first_service),
                days(t.days_to_first_service)
            ),
        );
    }
}

/// The HQ certificate and key `central query` presents: `--cert` and `--key` when given (a
/// `--cert` alone takes the `.key` beside it); otherwise the one `hq-NAME.crt` in the CA
/// certificate's folder (what `central pki issue hq NAME` writes) with its `.key`. None or
/// several there is an error that lists what exists and asks for `--cert` and `--key`.
pub fn client_files(
    ca: &Path,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf)> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        (Some(cert), None) => {
            let key = cert.with_extension("key");
            Ok((cert, key))
        }
        (None, Some(key)) => anyhow::bail!(
            "--key {} was given without --cert: pass the HQ certificate too",
            key.display()
        ),
        (None, None) => {
            let dir = match ca.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let entries = std::fs::read_dir(dir).with_context(|| {
                format!(
                    "cannot list {} to find an HQ certificate; pass --cert and --key",
                    dir.display()
                )
            })?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("hq-") && name.ends_with(".crt") {
                    found.push(entry.path());
                }
            }
            found.sort();
            match found.as_slice() {
                [cert] => Ok((cert.clone(), cert.with_extension("key"))),
                [] => anyhow::bail!(
                    "no HQ certificate (hq-NAME.crt) in {dir}: issue one with `central pki issue hq NAME --dir {dir}`, or pass --cert and --key",
                    dir = dir.display()
                ),
                several => anyhow::bail!(
                    "{} HQ certificates in {} ({}): pass --cert and --key to choose one",
                    several.len(),
                    dir.display(),
                    several
                        .iter()
                        .filter_map(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_hq_certificate_beside_the_ca_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        for file in [
            "ca.crt",
            "ca.key",
            "hub.crt",
            "dealer-D-1.crt",
            "hq-crm.crt",
        ] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        let (cert, key) = client_files(&ca, None, None).unwrap();
        assert_eq!(cert, dir.path().join("hq-crm.crt"));
        assert_eq!(key, dir.path().join("hq-crm.key"));
    }

    #[test]
    fn none_or_several_hq_certificates_is_an_error_listing_them() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "x").unwrap();
        let err = client_files(&ca, None, None).unwrap_err().to_string();
        assert!(err.contains("no HQ certificate"), "{err}");
        assert!(err.contains("central pki issue hq NAME"), "{err}");
        assert!(err.contains("--cert and --key"), "{err}");

        std::fs::write(dir.path().join("hq-crm.crt"), "x").unwrap();
        std::fs::write(dir.path().join("hq-bi.crt"), "x").unwrap();
        let err = client_files(&ca, None, None).unwrap_err().to_string();
        assert!(err.contains("2 HQ certificates"), "{err}");
        assert!(err.contains("hq-bi.crt, hq-crm.crt"), "{err}");
        assert!(err.contains("pass --cert and --key"), "{err}");
    }

    #[test]
    fn given_files_win_and_a_certificate_alone_takes_the_key_beside_it() {
        let ca = Path::new("pki/ca.crt");
        let (cert, key) =
            client_files(ca, Some("a/me.crt".into()), Some("b/me.key".into())).unwrap();
        assert_eq!(
            (cert, key),
            (PathBuf::from("a/me.crt"), PathBuf::from("b/me.key"))
        );
        let (_, key) = client_files(ca, Some("a/me.crt".into()), None).unwrap();
        assert_eq!(key, PathBuf::from("a/me.key"));
        let err = client_files(ca, None, Some("b/me.key".into())).unwrap_err();
        assert!(err.to_string().contains("without --cert"), "{err}");
    }

    #[test]
    fn a_bare_ca_file_name_looks_in_the_current_folder() {
        // `--ca ca.crt`: its folder is "", which read_dir would refuse.
        // The test's current folder (the crate's) holds no hq-*.crt.
        let err = client_files(Path::new("no-such-ca.crt"), None, None).unwrap_err();
        assert!(err.to_string().contains("hq-NAME.crt) in .:"), "{err}");
    }
}
