//! The console's pages about people and their records: the service-due list, the customers
//! behind a number (the drill-down of every chart), a customer's 360 with the records behind
//! their journey, and a dealer's records a rule fired on (behind a scorecard's rule count).
//! Each writes an access-audit entry before it is sent.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;

use super::view::{
    cell, linked, page, profiles, status, unavailable, url_text, Page, PageError, Params, Shared,
    Table, View,
};
use super::{Caller, ConsoleState};
use crate::analytics::cases::{self, ComplaintFigures, LeadFigures};
use crate::analytics::tenure::{TenureReport, COHORT_YEARS};
use crate::analytics::{due, journey, CaseGroup, CustomerFilter, Profile, Rows};
use crate::hq::audit::{self, Access};
use crate::lifecycle::report::GroupBy;
use crate::lifecycle::Stage;
use crate::rules::score::day_of;
use crate::store::HubStore;

/// How many rows a list page shows.
const LIST_ROWS: usize = 200;

pub async fn service_due<S: HubStore>(
    State(state): Shared<S>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Response {
    page(state, params, "/service-due".into(), move |state, view| {
        let mut list = Vec::new();
        profiles(state, view, &CustomerFilter::default(), |p| {
            list.extend(due::service_due(
                p,
                &state.lifecycle,
                view.mode(),
                view.as_of,
            ))
        })?;
        list.sort_by(|a, b| {
            (a.due_since_ms, &a.customer_id).cmp(&(b.due_since_ms, &b.customer_id))
        });
        list.truncate(LIST_ROWS);
        audited(
            state,
            &caller,
            "console /service-due",
            list.iter().map(|d| d.customer_id.clone()).collect(),
        )?;
        let rows = list
            .iter()
            .map(|d| {
                vec![
                    linked(
                        d.customer_id.clone(),
                        view.link(&format!("/customers/{}", url_text(&d.customer_id)), &[]),
                    ),
                    cell(d.vin.clone()),
                    cell(d.model.clone()),
                    cell(d.due_by),
                    cell(view.date(d.due_since_ms)),
                    cell(view.num(d.days_overdue.floor())),
                    cell(d.last_dealer_id.clone()),
                ]
            })
            .collect();
        Ok(Page {
            title: view.w("service_due"),
            tables: vec![Table {
                id: "service-due".into(),
                title: String::new(),
                head: vec![
                    view.w("customer"),
                    view.w("vin"),
                    view.w("model"),
                    view.w("due_by"),
                    view.w("due_since"),
                    view.w("days_overdue"),
                    view.w("last_dealer"),
                ],
                rows,
            }],
            ..Default::default()
        })
    })
    .await
}

/// Writes the access-audit entry of a page naming `customers`; no entry, no page.
fn audited<S: HubStore>(
    state: &ConsoleState<S>,
    caller: &Caller,
    page: &'static str,
    customers: Vec<String>,
) -> Result<(), PageError> {
    let access = Access::new(&caller.name(), page, "HQ console")
        .count(customers.len() as u64)
        .customers(customers);
    audit::record(&state.hub, access)
        .map(|_| ())
        .map_err(status)
}

/// Whether `profile` is behind the number the drill-down parameters name: each report's own
/// fold run on this one customer gives a non-zero figure where the number is (`figure` names a
/// column: complaint `cases`, `resolved`, `reopened`, `open`, `past_sla`; lead `leads`,
/// `followed_up`, `converted`; a cohort's `active_after` years).
fn behind(
    profile: &Profile,
    state_params: &BTreeMap<String, String>,
    view: &View,
    config: &crate::lifecycle::LifecycleConfig,
) -> bool {
    let mode = view.mode();
    let get = |k: &str| state_params.get(k).map(String::as_str);
    let figure = get("figure");
    if let Some(stage) = get("stage") {
        let is = profile
            .facts
            .stage(config, view.as_of, mode)
            .map(Stage::name);
        if is != Some(stage) {
            return false;
        }
    }
    if get("region").is_some_and(|r| r != profile.region) {
        return false;
    }
    if let Some(cohort) = get("cohort") {
        let mut mine = TenureReport::default();
        mine.add(profile, config, GroupBy::Segment, view.as_of);
        let Some(c) = mine.cohorts.get(cohort).map(|b| b.get(mode)) else {
            return false;
        };
        let years = get("active_after").and_then(|y| y.parse::<usize>().ok());
        let n = match years {
            Some(k) if (1..=COHORT_YEARS).contains(&k) => c.still_active[k - 1],
            _ => c.customers,
        };
        if n == 0 {
            return false;
        }
    }
    if let Some(dealer) = get("complaints_at") {
        let mut mine = Rows::<ComplaintFigures>::default();
        cases::add_complaints(&mut mine, profile, config, CaseGroup::Dealer, view.as_of);
        let n = mine
            .rows
            .get(dealer)
            .map(|b| b.get(mode))
            .map_or(0, |f| match figure {
                Some("resolved") => f.resolved(),
                Some("reopened") => f.reopened,
                Some("open") => f.open,
                Some("past_sla") => f.open_past_sla,
                _ => f.cases,
            });
        if n == 0 {
            return false;
        }
    }
    if let Some(channel) = get("lead_channel") {
        let mut mine = Rows::<LeadFigures>::default();
        cases::add_leads(&mut mine, profile, config, CaseGroup::Channel, view.as_of);
        let n = mine
            .rows
            .get(channel)
            .map(|b| b.get(mode))
            .map_or(0, |f| match figure {
                Some("followed_up") => f.followed_up(),
                Some("converted") => f.converted,
                _ => f.leads,
            });
        if n == 0 {
            return false;
        }
    }
    true
}

/// The customers behind a number: the drill-down of every chart.
pub async fn customers<S: HubStore>(
    State(state): Shared<S>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Response {
    page(state, params, "/customers".into(), move |state, view| {
        let mut found: Vec<(String, String, String)> = Vec::new();
        profiles(state, view, &CustomerFilter::default(), |p| {
            if found.len() < LIST_ROWS && behind(p, &view.params, view, &state.lifecycle) {
                let stage = p
                    .facts
                    .stage(&state.lifecycle, view.as_of, view.mode())
                    .map_or("", Stage::name);
                found.push((p.customer_id.clone(), p.name.clone(), stage.to_owned()));
            }
        })?;
        audited(
            state,
            &caller,
            "console /customers",
            found.iter().map(|f| f.0.clone()).collect(),
        )?;
        let what: Vec<String> = ["stage", "region", "cohort", "complaints_at", "lead_channel"]
            .iter()
            .filter_map(|k| view.params.get(*k).map(|v| format!("{k} = {v}")))
            .collect();
        Ok(Page {
            title: view.w("customers"),
            intro: what.join(" · "),
            tables: vec![Table {
                id: "customers".into(),
                title: String::new(),
                head: vec![view.w("customer"), view.w("name"), view.w("stage")],
                rows: found
                    .into_iter()
                    .map(|(id, name, stage)| {
                        vec![
                            linked(
                                id.clone(),
                                view.link(&format!("/customers/{}", url_text(&id)), &[]),
                            ),
                            cell(name),
                            cell(stage),
                        ]
                    })
                    .collect(),
            }],
            ..Default::default()
        })
    })
    .await
}

/// A customer's 360: the golden record, vehicles, and the journey with the records behind it.
pub async fn customer<S: HubStore>(
    State(state): Shared<S>,
    Extension(caller): Extension<Caller>,
    Path(customer_id): Path<String>,
    Query(params): Params,
) -> Response {
    page(
        state,
        params,
        format!("/customers/{customer_id}"),
        move |state, view| {
            let store = state.hub.store().map_err(unavailable)?;
            let c360 = crate::hq::customers::customer_360(
                &*store,
                &state.lifecycle,
                &customer_id,
                view.as_of,
            )
            .map_err(status)?;
            let golden = store
                .customer(&customer_id)
                .map_err(unavailable)?
                .ok_or_else(|| {
                    status(tonic::Status::not_found(format!(
                        "no customer {customer_id}"
                    )))
                })?;
            let profile =
                Profile::read(&*store, &golden, &|_| None, view.as_of).map_err(unavailable)?;
            audited(
                state,
                &caller,
                "console /customers/ID",
                vec![customer_id.clone()],
            )?;
            let fields = c360
                .fields
                .iter()
                .map(|f| {
                    let source = f
                        .source
                        .as_ref()
                        .map(|s| s.dealer_id.clone())
                        .unwrap_or_default();
                    vec![cell(f.field.clone()), cell(f.value.clone()), cell(source)]
                })
                .collect();
            let vehicles = c360
                .vehicles
                .iter()
                .map(|v| {
                    let roles: Vec<String> = v
                        .roles
                        .iter()
                        .map(|r| {
                            hamgam_proto::hq::v1::Role::try_from(*r).map_or_else(
                                |_| "?".to_owned(),
                                |r| r.as_str_name().trim_start_matches("ROLE_").to_lowercase(),
                            )
                        })
                        .collect();
                    vec![
                        cell(v.vin.clone()),
                        cell(v.model.clone()),
                        cell(roles.join(", ")),
                    ]
                })
                .collect();
            let journey = journey::touchpoints(&profile, view.mode(), view.as_of)
                .into_iter()
                .map(|t| {
                    vec![
                        cell(view.date(t.at_ms)),
                        cell(t.kind),
                        cell(t.channel),
                        cell(t.dealer_id),
                        cell(
                            t.days_since_previous
                                .map_or("-".into(), |d| view.num(d.round())),
                        ),
                        cell(t.record_id),
                        cell(format!("{:?}", t.trust).to_lowercase()),
                    ]
                })
                .collect();
            Ok(Page {
                title: format!("{}: {}", view.w("customer"), profile.name),
                intro: customer_id.clone(),
                tables: vec![
                    Table {
                        id: "golden".into(),
                        title: view.w("customer"),
                        head: vec![view.w("field"), view.w("value"), view.w("source")],
                        rows: fields,
                    },
                    Table {
                        id: "vehicles".into(),
                        title: view.w("vehicles"),
                        head: vec![view.w("vin"), view.w("model"), view.w("roles")],
                        rows: vehicles,
                    },
                    Table {
                        id: "journey".into(),
                        title: view.w("journey"),
                        head: vec![
                            view.w("time"),
                            view.w("kind"),
                            view.w("channel"),
                            view.w("dealer"),
                            view.w("days_since"),
                            view.w("record"),
                            view.w("trust"),
                        ],
                        rows: journey,
                    },
                ],
                ..Default::default()
            })
        },
    )
    .await
}

/// A dealer's records a rule fired on that were received in the reliability score's window up
/// to the page's `as_of` (what a scorecard's rule count is made of), in seq order, with the
/// finding's reason in the page's language; at most `LIST_ROWS`, from `after` (a seq) on.
pub async fn flagged<S: HubStore>(
    State(state): Shared<S>,
    Extension(caller): Extension<Caller>,
    Path(dealer_id): Path<String>,
    Query(params): Params,
) -> Response {
    let path = format!("/dealers/{}/flags", url_text(&dealer_id));
    page(state, params, path, move |state, view| {
        let rule = view.params.get("rule").cloned().unwrap_or_default();
        if crate::rules::spec(&rule).is_none() {
            return Err(PageError::bad_request(format!(
                "rule={rule:?} is not a rule of the catalogue: give rule=ID, e.g. rule=Q01 \
                 (`central rules` lists them)"
            )));
        }
        let mut after: Option<u64> = view.params.get("after").and_then(|a| a.parse().ok());
        let window_days = state.hub.rules().score_window_days;
        let today = day_of(view.as_of);
        let in_window = |ms: i64| (today - window_days + 1..=today).contains(&day_of(ms));
        let store = state.hub.store().map_err(unavailable)?;
        let mut rows = Vec::new();
        let mut scanned = 0;
        let mut last_seq = None;
        while rows.len() < LIST_ROWS && scanned < MAX_FLAGS_SCANNED {
            let page = store
                .flags(
                    &rule,
                    Some(&dealer_id),
                    after.map(|a| (dealer_id.as_str(), a)),
                    500,
                )
                .map_err(unavailable)?;
            let Some((_, _, last, _)) = page.last() else {
                break;
            };
            after = Some(*last);
            scanned += page.len();
            for (_, dealer, seq, entry) in &page {
                if rows.len() == LIST_ROWS {
                    break;
                }
                last_seq = Some(*seq);
                if !in_window(entry.received_at_ms) {
                    continue;
                }
                let Some(record) = store.record(dealer, *seq).map_err(unavailable)? else {
                    continue;
                };
                rows.push(flagged_row(view, &record, &rule, entry));
            }
        }
        let access = Access::new(&caller.name(), "console flagged records", "HQ console")
            .count(rows.len() as u64);
        audit::record(&state.hub, access).map_err(status)?;
        let mut intro = format!(
            "{} {window_days} ({})",
            view.w("score_window"),
            view.date(view.as_of)
        );
        if let (true, Some(seq)) = (
            rows.len() == LIST_ROWS || scanned >= MAX_FLAGS_SCANNED,
            last_seq,
        ) {
            intro.push_str(&format!(" · {}{seq}", view.w("more")));
        }
        Ok(Page {
            title: format!("{}: {dealer_id} {rule}", view.w("records")),
            intro,
            tables: vec![Table {
                id: "flagged".into(),
                title: view.w("records"),
                head: vec![
                    "seq".into(),
                    view.w("record"),
                    view.w("kind"),
                    view.w("time"),
                    view.w("severity"),
                    view.w("reason"),
                ],
                rows,
            }],
            ..Default::default()
        })
    })
    .await
}

/// Flag-index entries one page reads at most (a dealer flagged for years pages on).
const MAX_FLAGS_SCANNED: usize = 20_000;

fn flagged_row(
    view: &View,
    record: &crate::domain::StoredRecord,
    rule: &str,
    entry: &crate::domain::FlagEntry,
) -> Vec<super::view::Cell> {
    let reasons: Vec<String> = record
        .own_findings
        .iter()
        .chain(record.group_findings.values().flatten())
        .filter(|f| f.rule_id == rule)
        .map(|f| match view.lang {
            super::words::Lang::Fa => f.reason_fa(),
            super::words::Lang::En => f.reason_en(),
        })
        .collect();
    vec![
        cell(record.seq.to_string()),
        cell(record.record_id.clone()),
        cell(record.kind.clone()),
        cell(view.date(entry.received_at_ms)),
        cell(format!("{:?}", entry.severity).to_lowercase()),
        cell(reasons.join(" / ")),
    ]
}
