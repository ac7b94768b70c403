//! HQ's customer questions (`crate::analytics`) as `hamgam.hq.v1` messages: the request's
//! filter and grouping checked, the fold run over every customer, the figures of both modes
//! mapped once.

use hamgam_proto::hq::v1 as hq;
use tonic::Status;

use crate::analytics::cases::{self, ComplaintFigures, LeadFigures};
use crate::analytics::due::{self, ChurnRisk, ServiceDue};
use crate::analytics::journey::{self, Conversion, JourneyFigures};
use crate::analytics::satisfaction::{self, SatisfactionFigures};
use crate::analytics::tenure::{TenureReport, Tenures};
use crate::analytics::{each_profile, Both, CaseGroup, CustomerFilter, Profile, Rows, Segment};
use crate::ingest::Hub;
use crate::lifecycle::report::GroupBy;
use crate::lifecycle::{Facts, LifecycleConfig};
use crate::merge::vehicle::Role;
use crate::store::HubStore;

use super::{convert, unavailable, Page};

/// The request's filter in the analytics' terms.
pub fn filter(f: Option<hq::CustomerFilter>) -> Result<CustomerFilter, Status> {
    let Some(f) = f else {
        return Ok(CustomerFilter::default());
    };
    let text = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    Ok(CustomerFilter {
        segment: match hq::Segment::try_from(f.segment) {
            Ok(hq::Segment::Unspecified) => None,
            Ok(hq::Segment::B2c) => Some(Segment::B2c),
            Ok(hq::Segment::B2b) => Some(Segment::B2b),
            Ok(hq::Segment::B2g) => Some(Segment::B2g),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "filter.segment: unknown value {}",
                    f.segment
                )))
            }
        },
        role: match hq::Role::try_from(f.role) {
            Ok(hq::Role::Unspecified) => None,
            Ok(hq::Role::Owner) => Some(Role::Owner),
            Ok(hq::Role::Buyer) => Some(Role::Buyer),
            Ok(hq::Role::CoBuyer) => Some(Role::CoBuyer),
            Ok(hq::Role::Driver) => Some(Role::Driver),
            Ok(hq::Role::FleetAccount) => Some(Role::FleetAccount),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "filter.role: unknown value {}",
                    f.role
                )))
            }
        },
        dealer_id: text(f.dealer_id),
        region: text(f.region),
        model: text(f.model),
        period: text(f.period),
    })
}

/// A per-customer grouping (`default` when unspecified); channel and category are refused.
pub fn customer_group(g: i32, default: GroupBy) -> Result<GroupBy, Status> {
    Ok(match hq::GroupBy::try_from(g) {
        Ok(hq::GroupBy::Unspecified) => default,
        Ok(hq::GroupBy::Dealer) => GroupBy::Dealer,
        Ok(hq::GroupBy::Region) => GroupBy::Region,
        Ok(hq::GroupBy::Model) => GroupBy::Model,
        Ok(hq::GroupBy::Period) => GroupBy::Period,
        Ok(hq::GroupBy::Segment) => GroupBy::Segment,
        Ok(hq::GroupBy::Role) => GroupBy::Role,
        Ok(hq::GroupBy::Channel | hq::GroupBy::Category) => {
            return Err(Status::invalid_argument(
                "group_by: channel and category cut cases, not customers; use dealer, region, \
                 model, period, segment or role",
            ))
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "group_by: unknown value {g}"
            )))
        }
    })
}

/// A case report's grouping: `allowed` lists the case-level cuts this report has.
fn case_group(g: i32, allowed: &[CaseGroup], report: &str) -> Result<CaseGroup, Status> {
    let group = match hq::GroupBy::try_from(g) {
        Ok(hq::GroupBy::Unspecified | hq::GroupBy::Dealer) => CaseGroup::Dealer,
        Ok(hq::GroupBy::Channel) => CaseGroup::Channel,
        Ok(hq::GroupBy::Category) => CaseGroup::Category,
        Ok(hq::GroupBy::Period) => CaseGroup::Period,
        Ok(_) => CaseGroup::Customer(customer_group(g, GroupBy::Dealer)?),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "group_by: unknown value {g}"
            )))
        }
    };
    if matches!(group, CaseGroup::Channel | CaseGroup::Category) && !allowed.contains(&group) {
        return Err(Status::invalid_argument(format!(
            "group_by: the {report} report has no {} rows",
            if group == CaseGroup::Channel {
                "channel"
            } else {
                "category"
            }
        )));
    }
    Ok(group)
}

/// Runs `visit` over every customer passing the filter (blocking).
fn over_customers<S: HubStore>(
    hub: &Hub<S>,
    filter: &CustomerFilter,
    as_of: i64,
    name: &'static str,
    visit: impl FnMut(&Profile),
) -> Result<(), Status> {
    let store = hub.store().map_err(unavailable)?;
    let registry = hub.registry();
    let region = |dealer: &str| registry.region(dealer);
    let started = std::time::Instant::now();
    each_profile(&*store, &region, as_of, filter, visit, |done| {
        if started.elapsed().as_secs() >= 2 && done % 10_000 == 0 {
            tracing::info!(customers = done, report = name, "report in progress");
        }
    })
    .map_err(unavailable)
}

/// One customer's journey (`None`: no such customer).
pub fn customer_journey<S: HubStore>(
    hub: &Hub<S>,
    customer_id: &str,
    as_of: i64,
    trusted_only: bool,
) -> Result<hq::CustomerJourney, Status> {
    let store = hub.store().map_err(unavailable)?;
    let customer = store
        .customer(customer_id)
        .map_err(unavailable)?
        .ok_or_else(|| Status::not_found(format!("no customer {customer_id}")))?;
    let profile = Profile::read(&*store, &customer, &|_| None, as_of).map_err(unavailable)?;
    let mode = if trusted_only {
        Facts::TrustedOnly
    } else {
        Facts::All
    };
    Ok(hq::CustomerJourney {
        customer_id: customer.customer_id.clone(),
        touchpoints: journey::touchpoints(&profile, mode, as_of)
            .into_iter()
            .map(|t| hq::Touchpoint {
                at_ms: t.at_ms,
                kind: t.kind.into(),
                channel: t.channel,
                dealer_id: t.dealer_id,
                record_id: t.record_id,
                days_since_previous: t.days_since_previous,
                trust: convert::trust(t.trust) as i32,
            })
            .collect(),
        as_of_ms: as_of,
    })
}

fn conversions(by: &std::collections::BTreeMap<String, Conversion>) -> Vec<hq::Conversion> {
    by.iter()
        .map(|(group, c)| hq::Conversion {
            group: group.clone(),
            leads: c.leads,
            converted: c.converted,
            conversion_rate: c.rate(),
            median_days_to_delivery: c.median_days(),
        })
        .collect()
}

fn journey_figures(f: &JourneyFigures) -> hq::JourneyFigures {
    hq::JourneyFigures {
        customers: f.customers,
        by_channel: conversions(&f.by_channel),
        by_dealer: conversions(&f.by_dealer),
        first_contact_without_purchase: f.first_contact_without_purchase,
        never_purchased: f.never_purchased,
        first_contact_without_purchase_share: f.first_contact_without_purchase_share(),
        channels_by_stage: f
            .channels_by_stage
            .iter()
            .map(|(stage, channels)| {
                let mut channels: Vec<hq::ChannelCount> = channels
                    .iter()
                    .map(|(channel, n)| hq::ChannelCount {
                        channel: channel.clone(),
                        touchpoints: *n,
                    })
                    .collect();
                channels.sort_by_key(|c| std::cmp::Reverse(c.touchpoints));
                hq::StageChannels {
                    stage: convert::stage(Some(*stage)) as i32,
                    channels,
                }
            })
            .collect(),
    }
}

pub fn journey_report<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    filter: &CustomerFilter,
    as_of: i64,
) -> Result<hq::JourneyReportResponse, Status> {
    let mut figures = Both::<JourneyFigures>::default();
    over_customers(hub, filter, as_of, "journey", |p| {
        journey::add(&mut figures, p, config, as_of)
    })?;
    Ok(hq::JourneyReportResponse {
        as_of_ms: as_of,
        all_facts: Some(journey_figures(&figures.all_facts)),
        trusted_only: Some(journey_figures(&figures.trusted_only)),
    })
}

fn tenures(t: &Tenures) -> hq::TenureFigures {
    hq::TenureFigures {
        customers: t.customers(),
        mean_tenure_days: t.mean(),
        median_tenure_days: t.median(),
    }
}

fn tenure_row(group: &str, t: &Both<Tenures>) -> hq::TenureRow {
    hq::TenureRow {
        group: group.to_owned(),
        all_facts: Some(tenures(&t.all_facts)),
        trusted_only: Some(tenures(&t.trusted_only)),
    }
}

pub fn tenure_report<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    by: GroupBy,
    filter: &CustomerFilter,
    as_of: i64,
) -> Result<hq::TenureReportResponse, Status> {
    let mut report = TenureReport::default();
    over_customers(hub, filter, as_of, "tenure", |p| {
        report.add(p, config, by, as_of)
    })?;
    Ok(hq::TenureReportResponse {
        as_of_ms: as_of,
        rows: report.rows.iter().map(|(g, t)| tenure_row(g, t)).collect(),
        total: Some(tenure_row("total", &report.total)),
        cohorts: report
            .cohorts
            .iter()
            .map(|(cohort, c)| hq::CohortRow {
                cohort: cohort.clone(),
                customers: c.all_facts.customers,
                still_active: c.all_facts.shares(),
                customers_trusted_only: c.trusted_only.customers,
                still_active_trusted_only: c.trusted_only.shares(),
            })
            .collect(),
    })
}

/// `items` ranked, then one page of them from `page.token` (an offset).
fn page_of<T>(items: Vec<T>, page: &Page) -> Result<(Vec<T>, u64, String), Status> {
    let from: usize = if page.token.is_empty() {
        0
    } else {
        page.token
            .parse()
            .map_err(|_| Status::invalid_argument("page_token: not a token this list gave"))?
    };
    let total = items.len();
    let end = (from + page.size).min(total);
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    Ok((
        items.into_iter().skip(from).take(page.size).collect(),
        total as u64,
        next,
    ))
}

/// The service-due list, most overdue first, and the customers on its page.
pub fn service_due<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    filter: &CustomerFilter,
    mode: Facts,
    as_of: i64,
    page: &Page,
) -> Result<(hq::ListServiceDueResponse, Vec<String>), Status> {
    let mut due: Vec<ServiceDue> = Vec::new();
    over_customers(hub, filter, as_of, "service due", |p| {
        due.extend(due::service_due(p, config, mode, as_of))
    })?;
    due.sort_by(|a, b| {
        a.due_since_ms
            .cmp(&b.due_since_ms)
            .then_with(|| (&a.customer_id, &a.vin).cmp(&(&b.customer_id, &b.vin)))
    });
    let (items, total, next_page_token) = page_of(due, page)?;
    let customers = items.iter().map(|d| d.customer_id.clone()).collect();
    Ok((
        hq::ListServiceDueResponse {
            as_of_ms: as_of,
            due: items
                .into_iter()
                .map(|d| hq::ServiceDue {
                    customer_id: d.customer_id,
                    vin: d.vin,
                    model: d.model,
                    last_service_ms: d.last_service_ms,
                    since_ms: d.since_ms,
                    last_dealer_id: d.last_dealer_id,
                    due_by: d.due_by.into(),
                    due_since_ms: d.due_since_ms,
                    days_overdue: d.days_overdue,
                    km_at_since: d.km_at_since,
                    projected_km: d.projected_km,
                })
                .collect(),
            total,
            next_page_token,
        },
        customers,
    ))
}

/// The churn-risk list, soonest first, and the customers on its page.
pub fn churn_risk<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    filter: &CustomerFilter,
    mode: Facts,
    as_of: i64,
    within_days: i64,
    page: &Page,
) -> Result<(hq::ListChurnRiskResponse, Vec<String>), Status> {
    let mut risks: Vec<ChurnRisk> = Vec::new();
    over_customers(hub, filter, as_of, "churn risk", |p| {
        risks.extend(due::churn_risk(p, config, mode, as_of, within_days))
    })?;
    risks.sort_by(|a, b| (a.crosses_at_ms, &a.customer_id).cmp(&(b.crosses_at_ms, &b.customer_id)));
    let (items, total, next_page_token) = page_of(risks, page)?;
    let customers = items.iter().map(|r| r.customer_id.clone()).collect();
    Ok((
        hq::ListChurnRiskResponse {
            as_of_ms: as_of,
            customers: items
                .into_iter()
                .map(|r| hq::ChurnRisk {
                    customer_id: r.customer_id,
                    crosses_at_ms: r.crosses_at_ms,
                    last_activity_ms: r.last_activity_ms,
                    last_dealer_id: r.last_dealer_id,
                })
                .collect(),
            total,
            next_page_token,
        },
        customers,
    ))
}

fn complaint_figures(f: &ComplaintFigures) -> hq::ComplaintFigures {
    hq::ComplaintFigures {
        cases: f.cases,
        responded: f.responded(),
        median_hours_to_first_response: crate::analytics::median(&f.hours_to_first_response),
        resolved: f.resolved(),
        median_days_to_resolution: crate::analytics::median(&f.days_to_resolution),
        reopened: f.reopened,
        reopen_rate: f.reopen_rate(),
        open: f.open,
        open_past_sla: f.open_past_sla,
    }
}

fn lead_figures(f: &LeadFigures) -> hq::LeadFigures {
    hq::LeadFigures {
        leads: f.leads,
        followed_up: f.followed_up(),
        without_follow_up: f.without_follow_up(),
        median_hours_to_follow_up: f.median_hours_to_follow_up(),
        converted: f.converted,
        conversion_rate: f.conversion_rate(),
    }
}

fn satisfaction_figures(f: &SatisfactionFigures) -> hq::SatisfactionFigures {
    hq::SatisfactionFigures {
        surveys: f.surveys,
        answered: f.answered,
        response_rate: f.response_rate(),
        csat: f.csat_mean(),
        nps: f.nps(),
        entered_by_staff: f.entered_by_staff,
        flagged: f.flagged,
        coverage: f.coverage(),
    }
}

/// Maps a rows fold to the response's rows and total.
fn rows<T, R>(rows: &Rows<T>, row: impl Fn(String, &T, &T) -> R) -> (Vec<R>, R) {
    (
        rows.rows
            .iter()
            .map(|(g, b)| row(g.clone(), &b.all_facts, &b.trusted_only))
            .collect(),
        row(
            "total".into(),
            &rows.total.all_facts,
            &rows.total.trusted_only,
        ),
    )
}

pub fn complaint_report<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    req: hq::CaseReportRequest,
    as_of: i64,
) -> Result<hq::ComplaintReportResponse, Status> {
    let by = case_group(req.group_by, &[CaseGroup::Category], "complaint")?;
    let mut fold = Rows::<ComplaintFigures>::default();
    over_customers(hub, &filter(req.filter)?, as_of, "complaints", |p| {
        cases::add_complaints(&mut fold, p, config, by, as_of)
    })?;
    let (rows, total) = rows(&fold, |group, all, trusted| hq::ComplaintRow {
        group,
        all_facts: Some(complaint_figures(all)),
        trusted_only: Some(complaint_figures(trusted)),
    });
    Ok(hq::ComplaintReportResponse {
        as_of_ms: as_of,
        rows,
        total: Some(total),
        sla_days: config.complaint_sla_days as u32,
    })
}

pub fn lead_report<S: HubStore>(
    hub: &Hub<S>,
    config: &LifecycleConfig,
    req: hq::CaseReportRequest,
    as_of: i64,
) -> Result<hq::LeadReportResponse, Status> {
    let by = case_group(req.group_by, &[CaseGroup::Channel], "lead")?;
    let mut fold = Rows::<LeadFigures>::default();
    over_customers(hub, &filter(req.filter)?, as_of, "leads", |p| {
        cases::add_leads(&mut fold, p, config, by, as_of)
    })?;
    let (rows, total) = rows(&fold, |group, all, trusted| hq::LeadRow {
        group,
        all_facts: Some(lead_figures(all)),
        trusted_only: Some(lead_figures(trusted)),
    });
    Ok(hq::LeadReportResponse {
        as_of_ms: as_of,
        rows,
        total: Some(total),
    })
}

pub fn satisfaction_report<S: HubStore>(
    hub: &Hub<S>,
    req: hq::CaseReportRequest,
    as_of: i64,
) -> Result<hq::SatisfactionReportResponse, Status> {
    let by = case_group(req.group_by, &[CaseGroup::Channel], "satisfaction")?;
    let mut fold = Rows::<SatisfactionFigures>::default();
    over_customers(hub, &filter(req.filter)?, as_of, "satisfaction", |p| {
        satisfaction::add(&mut fold, p, by, as_of)
    })?;
    let (rows, total) = rows(&fold, |group, all, trusted| hq::SatisfactionRow {
        group,
        all_facts: Some(satisfaction_figures(all)),
        trusted_only: Some(satisfaction_figures(trusted)),
    });
    Ok(hq::SatisfactionReportResponse {
        as_of_ms: as_of,
        rows,
        total: Some(total),
    })
}
