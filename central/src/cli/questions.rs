//! `central query journey|journeys|tenure|service-due|churn-risk|complaints|leads|satisfaction`:
//! HQ's customer questions (docs/hq-api.md, "Customer questions"), each with `--as-of`, the
//! customer filter and, for lists, `--trusted-only`. Tables print both modes side by side (all
//! facts / clean facts only); `--json` prints the response.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::hq::v1::hq_service_client::HqServiceClient;
use tonic::transport::Channel;

use crate::cli::query::format_ms;
use crate::hq_cli::{date_ms, group_by, json, GroupByArg};

#[derive(Clone, Copy, ValueEnum)]
pub enum SegmentArg {
    B2c,
    B2b,
    B2g,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Owner,
    Buyer,
    CoBuyer,
    Driver,
    FleetAccount,
}

/// Which customers, as of when.
#[derive(Args, Clone)]
pub struct FilterArgs {
    /// As of this date (YYYY-MM-DD, UTC, the end of the day); default now.
    #[arg(long)]
    as_of: Option<String>,
    /// Only customers of this segment.
    #[arg(long, value_enum)]
    segment: Option<SegmentArg>,
    /// Only customers who held this role on a vehicle.
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
    /// Only customers of this dealer (their latest vehicle's, else their latest contact's).
    #[arg(long)]
    dealer: Option<String>,
    /// Only customers of this region (of that dealer).
    #[arg(long)]
    region: Option<String>,
    /// Only customers whose latest vehicle is this model.
    #[arg(long)]
    model: Option<String>,
    /// Only customers whose latest delivery fell in this quarter (`2026-Q3`).
    #[arg(long)]
    period: Option<String>,
}

impl FilterArgs {
    pub fn as_of_ms(&self) -> Result<i64> {
        date_ms(&self.as_of)
    }

    pub fn filter(&self) -> hq::CustomerFilter {
        hq::CustomerFilter {
            segment: match self.segment {
                None => hq::Segment::Unspecified,
                Some(SegmentArg::B2c) => hq::Segment::B2c,
                Some(SegmentArg::B2b) => hq::Segment::B2b,
                Some(SegmentArg::B2g) => hq::Segment::B2g,
            } as i32,
            role: match self.role {
                None => hq::Role::Unspecified,
                Some(RoleArg::Owner) => hq::Role::Owner,
                Some(RoleArg::Buyer) => hq::Role::Buyer,
                Some(RoleArg::CoBuyer) => hq::Role::CoBuyer,
                Some(RoleArg::Driver) => hq::Role::Driver,
                Some(RoleArg::FleetAccount) => hq::Role::FleetAccount,
            } as i32,
            dealer_id: self.dealer.clone().unwrap_or_default(),
            region: self.region.clone().unwrap_or_default(),
            model: self.model.clone().unwrap_or_default(),
            period: self.period.clone().unwrap_or_default(),
        }
    }
}

#[derive(Subcommand)]
pub enum Question {
    /// One customer's touchpoints in order: kind, channel, dealer, days since the previous.
    Journey {
        customer_id: String,
        #[arg(long)]
        as_of: Option<String>,
        /// Leave out flagged records.
        #[arg(long)]
        trusted_only: bool,
    },
    /// Lead to delivery conversion by channel and dealer, first contacts without a purchase.
    Journeys {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Tenure by segment (or --by), and retention cohorts by delivery quarter.
    Tenure {
        #[arg(long, value_enum, default_value = "segment")]
        by: GroupByArg,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Held vehicles due for service (by time or a km projection), most overdue first.
    ServiceDue {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        trusted_only: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Active customers who become recently_lost within --within days, soonest first.
    ChurnRisk {
        /// Default: the hub's lifecycle.churn_within_days.
        #[arg(long, default_value_t = 0)]
        within: u32,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        trusted_only: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Complaint response and resolution times, reopen rate, open past the SLA.
    Complaints {
        /// dealer, category, period or a customer grouping.
        #[arg(long, value_enum, default_value = "dealer")]
        by: GroupByArg,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Lead follow-up time and conversion.
    Leads {
        /// dealer, channel, period or a customer grouping.
        #[arg(long, value_enum, default_value = "dealer")]
        by: GroupByArg,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// CSAT, NPS, response rate, staff-entered and flagged answers.
    Satisfaction {
        /// dealer, channel, period or a customer grouping.
        #[arg(long, value_enum, default_value = "dealer")]
        by: GroupByArg,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

fn figure(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

fn case_request(by: GroupByArg, filter: &FilterArgs) -> Result<hq::CaseReportRequest> {
    Ok(hq::CaseReportRequest {
        group_by: group_by(by) as i32,
        as_of_ms: filter.as_of_ms()?,
        filter: Some(filter.filter()),
    })
}

/// Runs one question on `channel`.
pub async fn run(channel: Channel, as_json: bool, question: Question) -> Result<()> {
    let mut client = HqServiceClient::new(channel).max_decoding_message_size(64 << 20);
    match question {
        Question::Journey {
            customer_id,
            as_of,
            trusted_only,
        } => {
            let r = client
                .get_customer_journey(hq::GetCustomerJourneyRequest {
                    customer_id,
                    as_of_ms: date_ms(&as_of)?,
                    trusted_only,
                })
                .await
                .context("GetCustomerJourney failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            for t in &r.touchpoints {
                println!(
                    "{}  {:<9} {:<11} {:<8} {:>7} days  {}",
                    format_ms(t.at_ms),
                    t.kind,
                    t.channel,
                    t.dealer_id,
                    figure(t.days_since_previous),
                    t.record_id
                );
            }
        }
        Question::Journeys { filter } => {
            let r = client
                .journey_report(hq::JourneyReportRequest {
                    as_of_ms: filter.as_of_ms()?,
                    filter: Some(filter.filter()),
                })
                .await
                .context("JourneyReport failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            for (mode, f) in [("all facts", &r.all_facts), ("clean only", &r.trusted_only)] {
                let f = f.clone().unwrap_or_default();
                println!(
                    "{mode}: {} customers, first contact without a purchase {} ({}), never purchased {}",
                    f.customers,
                    f.first_contact_without_purchase,
                    percent(f.first_contact_without_purchase_share),
                    f.never_purchased
                );
                for c in f.by_channel.iter().chain(&f.by_dealer) {
                    println!(
                        "  {:<12} leads {:>6}  converted {:>6} ({})  median days to delivery {}",
                        c.group,
                        c.leads,
                        c.converted,
                        percent(c.conversion_rate),
                        figure(c.median_days_to_delivery)
                    );
                }
            }
        }
        Question::Tenure { by, filter } => {
            let r = client
                .tenure_report(hq::TenureReportRequest {
                    group_by: group_by(by) as i32,
                    as_of_ms: filter.as_of_ms()?,
                    filter: Some(filter.filter()),
                })
                .await
                .context("TenureReport failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            println!(
                "{:<14} {:>9} {:>12} {:>12}   clean only",
                "group", "customers", "mean days", "median days"
            );
            for row in r.rows.iter().chain(&r.total) {
                let (a, t) = (
                    row.all_facts.unwrap_or_default(),
                    row.trusted_only.unwrap_or_default(),
                );
                println!(
                    "{:<14} {:>9} {:>12} {:>12}   {} / {}",
                    row.group,
                    a.customers,
                    figure(a.mean_tenure_days),
                    figure(a.median_tenure_days),
                    t.customers,
                    figure(t.median_tenure_days)
                );
            }
            println!("\ncohort     customers  still active after 1, 2, 3 years (clean only)");
            for c in &r.cohorts {
                let shares = |v: &[f64]| {
                    v.iter()
                        .map(|s| percent(Some(*s)))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                println!(
                    "{:<10} {:>9}  {}  ({})",
                    c.cohort,
                    c.customers,
                    shares(&c.still_active),
                    shares(&c.still_active_trusted_only)
                );
            }
        }
        Question::ServiceDue {
            filter,
            trusted_only,
            limit,
        } => {
            let r = client
                .list_service_due(hq::ListServiceDueRequest {
                    as_of_ms: filter.as_of_ms()?,
                    filter: Some(filter.filter()),
                    trusted_only,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await
                .context("ListServiceDue failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            println!("{} vehicles due; the first {}:", r.total, r.due.len());
            for d in &r.due {
                println!(
                    "{:<22} {:<17} {:<10} by {:<4} due since {}  {:>6.0} days over  last at {}",
                    d.customer_id,
                    d.vin,
                    d.model,
                    d.due_by,
                    format_ms(d.due_since_ms),
                    d.days_overdue,
                    d.last_dealer_id
                );
            }
        }
        Question::ChurnRisk {
            within,
            filter,
            trusted_only,
            limit,
        } => {
            let r = client
                .list_churn_risk(hq::ListChurnRiskRequest {
                    as_of_ms: filter.as_of_ms()?,
                    within_days: within,
                    filter: Some(filter.filter()),
                    trusted_only,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await
                .context("ListChurnRisk failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            println!(
                "{} customers at risk; the first {}:",
                r.total,
                r.customers.len()
            );
            for c in &r.customers {
                println!(
                    "{:<22} lost from {}  last activity {} at {}",
                    c.customer_id,
                    format_ms(c.crosses_at_ms),
                    format_ms(c.last_activity_ms),
                    c.last_dealer_id
                );
            }
        }
        Question::Complaints { by, filter } => {
            let r = client
                .complaint_report(case_request(by, &filter)?)
                .await
                .context("ComplaintReport failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            println!("SLA {} days; figures: all facts (clean only)", r.sla_days);
            for row in r.rows.iter().chain(&r.total) {
                let (a, t) = (
                    row.all_facts.unwrap_or_default(),
                    row.trusted_only.unwrap_or_default(),
                );
                println!(
                    "{:<14} cases {:>5} ({})  first response {} h  resolution {} days  reopened {}  open {}  past SLA {} ({})",
                    row.group, a.cases, t.cases,
                    figure(a.median_hours_to_first_response),
                    figure(a.median_days_to_resolution),
                    percent(a.reopen_rate), a.open, a.open_past_sla, t.open_past_sla
                );
            }
        }
        Question::Leads { by, filter } => {
            let r = client
                .lead_report(case_request(by, &filter)?)
                .await
                .context("LeadReport failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            for row in r.rows.iter().chain(&r.total) {
                let (a, t) = (
                    row.all_facts.unwrap_or_default(),
                    row.trusted_only.unwrap_or_default(),
                );
                println!(
                    "{:<14} leads {:>5} ({})  no follow-up {}  follow-up {} h  converted {} ({})",
                    row.group,
                    a.leads,
                    t.leads,
                    a.without_follow_up,
                    figure(a.median_hours_to_follow_up),
                    percent(a.conversion_rate),
                    percent(t.conversion_rate)
                );
            }
        }
        Question::Satisfaction { by, filter } => {
            let r = client
                .satisfaction_report(case_request(by, &filter)?)
                .await
                .context("SatisfactionReport failed")?
                .into_inner();
            if as_json {
                return json(&r);
            }
            for row in r.rows.iter().chain(&r.total) {
                let (a, t) = (
                    row.all_facts.unwrap_or_default(),
                    row.trusted_only.unwrap_or_default(),
                );
                println!(
                    "{:<14} surveys {:>5}  answered {}  CSAT {} ({})  NPS {} ({})  by staff {}  flagged {}  coverage {}",
                    row.group, a.surveys, percent(a.response_rate),
                    figure(a.csat), figure(t.csat), figure(a.nps), figure(t.nps),
                    a.entered_by_staff, a.flagged, percent(a.coverage)
                );
            }
        }
    }
    Ok(())
}
