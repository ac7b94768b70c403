//! What every console page shares: how the reader asked to see it (`View`: language,
//! calendar, trusted-only, as of), the page's charts and tables, rendering `page.html`, running
//! the page's reads off the async workers, and how a failure reads ([`PageError`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::charts;
use super::words::{self, Lang};
use super::ConsoleState;
use crate::analytics::{each_profile, CustomerFilter, Profile};
use crate::lifecycle::{Facts, DAY_MS};
use crate::store::HubStore;

pub(crate) type Shared<S> = State<Arc<ConsoleState<S>>>;
pub(crate) type Params = Query<BTreeMap<String, String>>;

/// How the reader asked to see a page.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) lang: Lang,
    pub(crate) jalali: bool,
    pub(crate) trusted: bool,
    pub(crate) as_of_text: Option<String>,
    pub(crate) as_of: i64,
    pub(crate) params: BTreeMap<String, String>,
}

impl View {
    pub(crate) fn of<S: HubStore>(
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

    pub(crate) fn mode(&self) -> Facts {
        if self.trusted {
            Facts::TrustedOnly
        } else {
            Facts::All
        }
    }

    pub(crate) fn w(&self, key: &str) -> String {
        words::word(self.lang, key)
    }

    pub(crate) fn date(&self, ms: i64) -> String {
        words::date(ms, self.lang, self.jalali)
    }

    pub(crate) fn num(&self, v: f64) -> String {
        words::number(&charts::number(v), self.lang)
    }

    /// The view's own query string, with `lang` and `trusted` as given.
    pub(crate) fn query_with(&self, lang: Lang, trusted: bool) -> String {
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

    pub(crate) fn query(&self) -> String {
        self.query_with(self.lang, self.trusted)
    }

    /// A link to `path` with `extra` parameters and the view's own.
    pub(crate) fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut q: Vec<String> = extra
            .iter()
            .map(|(k, v)| format!("{k}={}", url_text(v)))
            .collect();
        q.push(self.query());
        format!("{path}?{}", q.join("&"))
    }
}

/// `text` as a URL query value.
pub(crate) fn url_text(text: &str) -> String {
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
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) href: Option<String>,
}

pub(crate) fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        href: None,
    }
}

pub(crate) fn linked(text: impl Into<String>, href: String) -> Cell {
    Cell {
        text: text.into(),
        href: Some(href),
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Table {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) head: Vec<String>,
    pub(crate) rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) svg: String,
}

/// What one page shows.
#[derive(Default)]
pub(crate) struct Page {
    pub(crate) title: String,
    pub(crate) intro: String,
    pub(crate) charts: Vec<Chart>,
    pub(crate) tables: Vec<Table>,
}

pub(crate) fn render<S: HubStore>(
    state: &ConsoleState<S>,
    view: &View,
    path: &str,
    page: Page,
) -> Response {
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
pub(crate) async fn page<S: HubStore>(
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

impl PageError {
    /// 400: the request's own fault, said so the person can fix it.
    pub(crate) fn bad_request(message: String) -> PageError {
        PageError(StatusCode::BAD_REQUEST, message)
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> PageError {
    PageError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the hub's store cannot be read now: {e}"),
    )
}

pub(crate) fn status(s: tonic::Status) -> PageError {
    let code = match s.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    PageError(code, s.message().to_owned())
}

/// Every profile passing `filter`, visited.
pub(crate) fn profiles<S: HubStore>(
    state: &ConsoleState<S>,
    view: &View,
    filter: &CustomerFilter,
    visit: impl FnMut(&Profile),
) -> Result<(), PageError> {
    let store = state.hub.store().map_err(unavailable)?;
    let registry = state.hub.registry();
    let region = |dealer: &str| registry.region(dealer);
    each_profile(&*store, &region, view.as_of, filter, visit, |_| {}).map_err(unavailable)
}
