//! The console's chart pages: the overview, the lifecycle funnel by region, dealer reliability
//! against volume (and a dealer's scorecard), cohort survival, complaint resolution times and
//! lead conversion by channel. Every mark links to the customers behind it
//! ([`super::people::customers`]) or to the dealer's scorecard.

use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::charts::{self, Bar, Line, Point};
use super::view::{
    cell, linked, page, profiles, status, unavailable, url_text, Chart, Page, Params, Shared, Table,
};
use crate::analytics::tenure::TenureReport;
use crate::analytics::{cases, stages, CaseGroup, CustomerFilter, Rows};
use crate::lifecycle::report::GroupBy;
use crate::lifecycle::Stage;
use crate::store::HubStore;

pub async fn overview<S: HubStore>(State(state): Shared<S>, Query(params): Params) -> Response {
    page(state, params, "/".into(), |state, view| {
        let store = state.hub.store().map_err(unavailable)?;
        let dealers = store.dealers().map_err(unavailable)?;
        let records: u64 = dealers.iter().map(|(_, d)| d.record_count).sum();
        let links = [
            ("funnel", "/funnel"),
            ("dealers", "/dealers"),
            ("cohorts", "/cohorts"),
            ("complaints", "/complaints"),
            ("leads", "/leads"),
            ("service_due", "/service-due"),
        ];
        Ok(Page {
            title: view.w("overview"),
            intro: format!(
                "{}: {} · {}: {}",
                view.w("dealer"),
                view.num(dealers.len() as f64),
                view.w("records"),
                view.num(records as f64)
            ),
            tables: vec![Table {
                id: "pages".into(),
                title: String::new(),
                head: vec![view.w("overview")],
                rows: links
                    .iter()
                    .map(|(key, path)| vec![linked(view.w(key), view.link(path, &[]))])
                    .collect(),
            }],
            ..Default::default()
        })
    })
    .await
}

pub async fn funnel<S: HubStore>(State(state): Shared<S>, Query(params): Params) -> Response {
    page(state, params, "/funnel".into(), |state, view| {
        let store = state.hub.store().map_err(unavailable)?;
        let registry = state.hub.registry();
        let region = |dealer: &str| registry.region(dealer);
        let report = stages::report(
            &*store,
            &state.lifecycle,
            GroupBy::Region,
            &CustomerFilter::default(),
            &region,
            view.as_of,
            |_| {},
        )
        .map_err(unavailable)?;
        let mut charts = Vec::new();
        for row in &report.rows {
            let figures = if view.trusted {
                &row.trusted_only
            } else {
                &row.all_facts
            };
            let bars: Vec<Bar> = Stage::ALL
                .iter()
                .map(|stage| Bar {
                    label: view.w(stage.name()),
                    value: figures.count(*stage) as f64,
                    href: view.link(
                        "/customers",
                        &[("stage", stage.name()), ("region", &row.group)],
                    ),
                })
                .collect();
            charts.push(Chart {
                title: format!(
                    "{}: {} ({} {})",
                    view.w("region"),
                    row.group,
                    view.num(row.customers as f64),
                    view.w("customers")
                ),
                svg: charts::bars(&row.group, &bars),
            });
        }
        Ok(Page {
            title: view.w("funnel"),
            charts,
            ..Default::default()
        })
    })
    .await
}

pub async fn dealers<S: HubStore>(State(state): Shared<S>, Query(params): Params) -> Response {
    page(state, params, "/dealers".into(), |state, view| {
        let store = state.hub.store().map_err(unavailable)?;
        let scores = state.hub.reliability(view.as_of).map_err(unavailable)?;
        let mut points = Vec::new();
        let mut rows = Vec::new();
        for (dealer_id, d) in store.dealers().map_err(unavailable)? {
            let Some(score) = scores.get(&dealer_id) else {
                continue;
            };
            let href = view.link(&format!("/dealers/{}", url_text(&dealer_id)), &[]);
            points.push(Point {
                label: dealer_id.clone(),
                x: score.records as f64,
                y: score.score,
                href: href.clone(),
            });
            rows.push(vec![
                linked(dealer_id.clone(), href),
                cell(view.num(score.score)),
                cell(view.num(score.records as f64)),
                cell(view.num(d.record_count as f64)),
            ]);
        }
        Ok(Page {
            title: view.w("dealers"),
            charts: vec![Chart {
                title: String::new(),
                svg: charts::scatter(
                    &view.w("dealers"),
                    &view.w("volume"),
                    &view.w("score"),
                    Some(100.0),
                    &points,
                ),
            }],
            tables: vec![Table {
                id: "dealers".into(),
                title: view.w("dealer"),
                head: vec![
                    view.w("dealer"),
                    view.w("score"),
                    view.w("volume"),
                    view.w("records"),
                ],
                rows,
            }],
            ..Default::default()
        })
    })
    .await
}

pub async fn scorecard<S: HubStore>(
    State(state): Shared<S>,
    Path(dealer_id): Path<String>,
    Query(params): Params,
) -> Response {
    page(
        state,
        params,
        format!("/dealers/{dealer_id}"),
        move |state, view| {
            let card = crate::hq::reports::scorecard(&state.hub, &dealer_id, view.as_of)
                .map_err(status)?;
            let weeks = card.trend.len();
            let line = Line {
                name: dealer_id.clone(),
                points: card
                    .trend
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Point {
                        label: view.date(p.day_ms),
                        x: (i + 12 - weeks) as f64,
                        y: p.score,
                        href: view.link(&format!("/dealers/{}", url_text(&dealer_id)), &[]),
                    })
                    .collect(),
            };
            let r = card.reliability.unwrap_or_default();
            let rows = vec![
                vec![cell(view.w("score")), cell(view.num(r.score))],
                vec![
                    cell(view.w("volume")),
                    cell(view.num(r.window_records as f64)),
                ],
                vec![cell(view.w("records")), cell(view.num(card.records as f64))],
                vec![
                    cell(view.w("last_seen")),
                    cell(view.date(card.last_seen_ms)),
                ],
            ]
            .into_iter()
            .chain(r.top_rules.iter().map(|t| {
                // A rule's count links to the dealer's records it fired on.
                let href = view.link(
                    &format!("/dealers/{}/flags", url_text(&dealer_id)),
                    &[("rule", &t.rule_id)],
                );
                vec![
                    linked(t.rule_id.clone(), href.clone()),
                    linked(view.num(t.records as f64), href),
                ]
            }))
            .collect();
            Ok(Page {
                title: format!("{}: {dealer_id}", view.w("scorecard")),
                charts: vec![Chart {
                    title: view.w("trend"),
                    svg: charts::lines(&view.w("trend"), "", 100.0, &[line]),
                }],
                tables: vec![Table {
                    id: "scorecard".into(),
                    title: String::new(),
                    head: vec![view.w("field"), view.w("value")],
                    rows,
                }],
                ..Default::default()
            })
        },
    )
    .await
}

pub async fn cohorts<S: HubStore>(State(state): Shared<S>, Query(params): Params) -> Response {
    page(state, params, "/cohorts".into(), |state, view| {
        let mut report = TenureReport::default();
        profiles(state, view, &CustomerFilter::default(), |p| {
            report.add(p, &state.lifecycle, GroupBy::Segment, view.as_of)
        })?;
        let mut lines = Vec::new();
        let mut rows = Vec::new();
        for (name, both) in &report.cohorts {
            let cohort = if view.trusted {
                &both.trusted_only
            } else {
                &both.all_facts
            };
            if cohort.customers == 0 {
                continue;
            }
            let href = view.link("/customers", &[("cohort", name)]);
            let shares = cohort.shares();
            let points = std::iter::once(1.0)
                .chain(shares.iter().copied())
                .enumerate()
                .map(|(year, share)| Point {
                    label: format!("{name} +{year}"),
                    x: year as f64,
                    y: share * 100.0,
                    href: href.clone(),
                })
                .collect();
            lines.push(Line {
                name: name.clone(),
                points,
            });
            rows.push(
                std::iter::once(linked(name.clone(), href.clone()))
                    .chain(std::iter::once(linked(
                        view.num(cohort.customers as f64),
                        href,
                    )))
                    .chain((0..crate::analytics::tenure::COHORT_YEARS).map(|k| {
                        // A survival share links to the customers still active that year.
                        let years = (k + 1).to_string();
                        shares.get(k).map_or_else(
                            || cell("-"),
                            |s| {
                                linked(
                                    view.num((s * 100.0).round()),
                                    view.link(
                                        "/customers",
                                        &[("cohort", name), ("active_after", &years)],
                                    ),
                                )
                            },
                        )
                    }))
                    .collect(),
            );
        }
        Ok(Page {
            title: view.w("cohorts"),
            charts: vec![Chart {
                title: String::new(),
                svg: charts::lines(&view.w("cohorts"), &view.w("years"), 100.0, &lines),
            }],
            tables: vec![Table {
                id: "cohorts".into(),
                title: view.w("cohort"),
                head: vec![
                    view.w("cohort"),
                    view.w("customers"),
                    "+1".into(),
                    "+2".into(),
                    "+3".into(),
                ],
                rows,
            }],
            ..Default::default()
        })
    })
    .await
}

pub async fn complaints<S: HubStore>(State(state): Shared<S>, Query(params): Params) -> Response {
    page(state, params, "/complaints".into(), |state, view| {
        let mut fold = Rows::<cases::ComplaintFigures>::default();
        profiles(state, view, &CustomerFilter::default(), |p| {
            cases::add_complaints(
                &mut fold,
                p,
                &state.lifecycle,
                CaseGroup::Dealer,
                view.as_of,
            )
        })?;
        let mut bars = Vec::new();
        let mut rows = Vec::new();
        for (dealer, both) in &fold.rows {
            let f = if view.trusted {
                &both.trusted_only
            } else {
                &both.all_facts
            };
            let href = view.link("/customers", &[("complaints_at", dealer)]);
            let median = crate::analytics::median(&f.days_to_resolution);
            bars.push(Bar {
                label: dealer.clone(),
                value: median.unwrap_or(0.0),
                href: href.clone(),
            });
            // Each number links to the customers whose cases make it.
            let number = |n: String, figure: &str| {
                linked(
                    n,
                    view.link(
                        "/customers",
                        &[("complaints_at", dealer), ("figure", figure)],
                    ),
                )
            };
            rows.push(vec![
                linked(dealer.clone(), href),
                number(view.num(f.cases as f64), "cases"),
                number(median.map_or("-".into(), |m| view.num(m)), "resolved"),
                number(view.num(f.reopened as f64), "reopened"),
                number(view.num(f.open as f64), "open"),
                number(view.num(f.open_past_sla as f64), "past_sla"),
            ]);
        }
        Ok(Page {
            title: view.w("complaints"),
            intro: format!(
                "SLA: {} days",
                view.num(state.lifecycle.complaint_sla_days as f64)
            ),
            charts: vec![Chart {
                title: view.w("median_days"),
                svg: charts::bars(&view.w("median_days"), &bars),
            }],
            tables: vec![Table {
                id: "complaints".into(),
                title: view.w("dealer"),
                head: vec![
                    view.w("dealer"),
                    view.w("cases"),
                    view.w("median_days"),
                    view.w("reopened"),
                    view.w("open"),
                    view.w("past_sla"),
                ],
                rows,
            }],
        })
    })
    .await
}

pub async fn leads<S: HubStore>(State(state): Shared<S>, Query(params): Params) -> Response {
    page(state, params, "/leads".into(), |state, view| {
        let mut fold = Rows::<cases::LeadFigures>::default();
        profiles(state, view, &CustomerFilter::default(), |p| {
            cases::add_leads(
                &mut fold,
                p,
                &state.lifecycle,
                CaseGroup::Channel,
                view.as_of,
            )
        })?;
        let mut bars = Vec::new();
        let mut rows = Vec::new();
        for (channel, both) in &fold.rows {
            let f = if view.trusted {
                &both.trusted_only
            } else {
                &both.all_facts
            };
            let href = view.link("/customers", &[("lead_channel", channel)]);
            let rate = f.conversion_rate().unwrap_or(0.0) * 100.0;
            bars.push(Bar {
                label: channel.clone(),
                value: rate,
                href: href.clone(),
            });
            let number = |n: String, figure: &str| {
                linked(
                    n,
                    view.link(
                        "/customers",
                        &[("lead_channel", channel), ("figure", figure)],
                    ),
                )
            };
            rows.push(vec![
                linked(channel.clone(), href),
                number(view.num(f.leads as f64), "leads"),
                number(view.num(f.converted as f64), "converted"),
                number(view.num(rate.round()), "converted"),
            ]);
        }
        Ok(Page {
            title: view.w("leads"),
            charts: vec![Chart {
                title: view.w("conversion"),
                svg: charts::bars(&view.w("conversion"), &bars),
            }],
            tables: vec![Table {
                id: "leads".into(),
                title: view.w("channel"),
                head: vec![
                    view.w("channel"),
                    view.w("leads_n"),
                    view.w("converted"),
                    view.w("conversion"),
                ],
                rows,
            }],
            ..Default::default()
        })
    })
    .await
}
