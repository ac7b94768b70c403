//! One handler per console page. Each reads the hub off the async workers (the same folds the
//! HQ API answers with: `crate::analytics`, `crate::hq`), builds its charts and tables, and
//! renders `page.html`. Pages naming customers write an access-audit entry first.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use serde::Serialize;

use super::charts::{self, Bar, Line, Point};
use super::words::{self, Lang};
use super::{Caller, ConsoleState};
use crate::analytics::tenure::TenureReport;
use crate::analytics::{
    cases, due, each_profile, journey, stages, CaseGroup, CustomerFilter, Profile, Rows,
};
use crate::hq::audit::{self, Access};
use crate::lifecycle::report::{quarter, GroupBy};
use crate::lifecycle::{Facts, Stage, DAY_MS};
use crate::store::HubStore;

type Shared<S> = State<Arc<ConsoleState<S>>>;
type Params = Query<BTreeMap<String, String>>;

/// How the reader asked to see a page.
#[derive(Debug, Clone)]
struct View {
    lang: Lang,
    jalali: bool,
    trusted: bool,
    as_of_text: Option<String>,
    as_of: i64,
    params: BTreeMap<String, String>,
}

impl View {
    fn of<S: HubStore>(
        state: &ConsoleState<S>,
        params: BTreeMap<String, String>,
    ) -> Result<View, PageError> {
        let lang = Lang::parse(params.get("lang").map(String::as_str));
        let jalali = match params.get("cal").map(String::as_str) {
            Some("jalali") => true,
            Some("gregorian") => false,
            _ => lang == Lang::Fa,
        };
        let as_of_text = params.get("as_of").filter(|t| !t.is_empty()).cloned();
        let as_of = match &as_of_text {
            None => state.hub.clock().now_ms(),
            Some(text) => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                match time::Date::parse(text, &format) {
                    Ok(d) => d.midnight().assume_utc().unix_timestamp() * 1000 + DAY_MS - 1,
                    Err(_) => {
                        return Err(PageError(
                            StatusCode::BAD_REQUEST,
                            format!("as_of={text:?}: give a date as YYYY-MM-DD (Gregorian, UTC)"),
                        ))
                    }
                }
            }
        };
        Ok(View {
            lang,
            jalali,
            trusted: params.get("trusted").is_some_and(|v| v == "1"),
            as_of_text,
            as_of,
            params,
        })
    }

    fn mode(&self) -> Facts {
        if self.trusted {
            Facts::TrustedOnly
        } else {
            Facts::All
        }
    }

    fn w(&self, key: &str) -> String {
        words::word(self.lang, key)
    }

    fn date(&self, ms: i64) -> String {
        words::date(ms, self.lang, self.jalali)
    }

    fn num(&self, v: f64) -> String {
        words::number(&charts::number(v), self.lang)
    }

    /// The view's own query string, with `lang` and `trusted` as given.
    fn query_with(&self, lang: Lang, trusted: bool) -> String {
        let mut parts = vec![format!("lang={}", lang.code())];
        if trusted {
            parts.push("trusted=1".into());
        }
        if let Some(d) = &self.as_of_text {
            parts.push(format!("as_of={}", url_text(d)));
        }
        if let Some(c) = self.params.get("cal") {
            parts.push(format!("cal={}", url_text(c)));
        }
        parts.join("&")
    }

    fn query(&self) -> String {
        self.query_with(self.lang, self.trusted)
    }

    /// A link to `path` with `extra` parameters and the view's own.
    fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut q: Vec<String> = extra
            .iter()
            .map(|(k, v)| format!("{k}={}", url_text(v)))
            .collect();
        q.push(self.query());
        format!("{path}?{}", q.join("&"))
    }
}

/// `text` as a URL query value.
fn url_text(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
struct Cell {
    text: String,
    href: Option<String>,
}

fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        href: None,
    }
}

fn linked(text: impl Into<String>, href: String) -> Cell {
    Cell {
        text: text.into(),
        href: Some(href),
    }
}

#[derive(Debug, Clone, Serialize)]
struct Table {
    id: String,
    title: String,
    head: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, Serialize)]
struct Chart {
    title: String,
    svg: String,
}

/// What one page shows.
#[derive(Default)]
struct Page {
    title: String,
    intro: String,
    charts: Vec<Chart>,
    tables: Vec<Table>,
}

fn render<S: HubStore>(state: &ConsoleState<S>, view: &View, path: &str, page: Page) -> Response {
    let context = minijinja::context! {
        lang => view.lang.code(),
        dir => view.lang.dir(),
        w => words::all(view.lang),
        title => page.title,
        intro => page.intro,
        charts => page.charts,
        tables => page.tables,
        path => path,
        as_of => words::day(view.as_of, view.lang, view.jalali),
        trusted => view.trusted,
        query => view.query(),
        query_all => view.query_with(view.lang, false),
        query_trusted => view.query_with(view.lang, true),
        query_other => view.query_with(if view.lang == Lang::Fa { Lang::En } else { Lang::Fa }, view.trusted),
    };
    match state
        .templates
        .get_template("page.html")
        .and_then(|t| t.render(context))
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("HQ console: page {path} does not render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// Runs `build` off the async workers and renders what it gives.
async fn page<S: HubStore>(
    state: Arc<ConsoleState<S>>,
    params: BTreeMap<String, String>,
    path: String,
    build: impl FnOnce(&ConsoleState<S>, &View) -> Result<Page, PageError> + Send + 'static,
) -> Response {
    let view = match View::of(&state, params) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let task = tokio::task::spawn_blocking(move || match build(&state, &view) {
        Ok(page) => render(&state, &view, &path, page),
        Err(e) => e.into_response(),
    });
    task.await.unwrap_or_else(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page failed: {e}"),
        )
            .into_response()
    })
}

/// Why a page is not shown: its status and the words for the reader.
#[derive(Debug)]
pub struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn unavailable(e: impl std::fmt::Display) -> PageError {
    PageError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the hub's store cannot be read now: {e}"),
    )
}

fn status(s: tonic::Status) -> PageError {
    let code = match s.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    PageError(code, s.message().to_owned())
}

/// Every profile passing `filter`, visited.
fn profiles<S: HubStore>(
    state: &ConsoleState<S>,
    view: &View,
    filter: &CustomerFilter,
    visit: impl FnMut(&Profile),
) -> Result<(), PageError> {
    let store = state.hub.store().map_err(unavailable)?;
    let registry = state.hub.registry();
    let region = |d: &str| {
        registry
            .dealer(d)
            .map(|d| d.region.clone())
            .filter(|r| !r.is_empty())
    };
    each_profile(&*store, &region, view.as_of, filter, visit, |_| {}).map_err(unavailable)
}

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
        let region = |d: &str| {
            registry
                .dealer(d)
                .map(|d| d.region.clone())
                .filter(|r| !r.is_empty())
        };
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
            .chain(
                r.top_rules
                    .iter()
                    .map(|t| vec![cell(t.rule_id.clone()), cell(view.num(t.records as f64))]),
            )
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
                std::iter::once(linked(name.clone(), href))
                    .chain(std::iter::once(cell(view.num(cohort.customers as f64))))
                    .chain((0..crate::analytics::tenure::COHORT_YEARS).map(|k| {
                        shares
                            .get(k)
                            .map_or_else(|| cell("-"), |s| cell(view.num((s * 100.0).round())))
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
            rows.push(vec![
                linked(dealer.clone(), href),
                cell(view.num(f.cases as f64)),
                cell(median.map_or("-".into(), |m| view.num(m))),
                cell(view.num(f.reopened as f64)),
                cell(view.num(f.open as f64)),
                cell(view.num(f.open_past_sla as f64)),
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
            rows.push(vec![
                linked(channel.clone(), href),
                cell(view.num(f.leads as f64)),
                cell(view.num(f.converted as f64)),
                cell(view.num(rate.round())),
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

/// Whether `profile` is behind the number the drill-down parameters name.
fn behind(
    profile: &Profile,
    state_params: &BTreeMap<String, String>,
    view: &View,
    config: &crate::lifecycle::LifecycleConfig,
) -> bool {
    let mode = view.mode();
    let get = |k: &str| state_params.get(k).map(String::as_str);
    if let Some(stage) = get("stage") {
        let is = profile
            .gathered
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
        let holdings = match mode {
            Facts::All => &profile.gathered.facts.holdings_all,
            Facts::TrustedOnly => &profile.gathered.facts.holdings_trusted,
        };
        let first = holdings
            .iter()
            .filter(|h| h.delivered && h.from_ms <= view.as_of)
            .map(|h| h.from_ms)
            .min();
        if first.map(quarter).as_deref() != Some(cohort) {
            return false;
        }
    }
    let points = || journey::touchpoints(profile, mode, view.as_of);
    if let Some(dealer) = get("complaints_at") {
        if !points()
            .iter()
            .any(|t| t.kind == "complaint" && t.dealer_id == dealer)
        {
            return false;
        }
    }
    if let Some(channel) = get("lead_channel") {
        if !points()
            .iter()
            .any(|t| t.kind == "lead" && t.channel == channel)
        {
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
                    .gathered
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
