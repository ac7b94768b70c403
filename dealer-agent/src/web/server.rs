//! The web server: its shared state, the routes, and what every page needs (the language, the
//! logged-in staff member, cookies, the HTML response with its security headers).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::Environment;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::sessions::{self, Session, Sessions};
use super::templates::{self, Lang};
use super::throttle::LoginThrottle;
use super::{forms, lookup, pages, WebError, WebOptions};
use crate::staff::StaffAccount;
use crate::store::AgentStore;

/// What every request of one web server shares.
pub(crate) struct WebState {
    pub store: AgentStore,
    pub sessions: Sessions,
    pub throttle: LoginThrottle,
    pub templates: Environment<'static>,
    pub options: WebOptions,
}

pub(crate) type Shared = Arc<WebState>;

impl WebState {
    /// Now, by the web server's clock.
    pub fn now_ms(&self) -> i64 {
        self.options.clock.now_ms()
    }
}

/// The staff screen's routes over `store`.
pub fn router(store: AgentStore, options: WebOptions) -> Result<Router, WebError> {
    let templates = templates::environment().map_err(|e| WebError::Templates(e.to_string()))?;
    let state = Arc::new(WebState {
        store,
        sessions: Sessions::new(options.idle_minutes),
        throttle: LoginThrottle::default(),
        templates,
        options,
    });
    let https = state.options.https;
    let router = Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", axum::routing::post(pages::logout))
        .route("/new/{kind}", get(forms::new_page).post(forms::new_submit))
        .route("/fix/{seq}", get(forms::fix_page).post(forms::fix_submit))
        .route("/lookup", get(lookup::page))
        .route("/check/{kind}", axum::routing::post(forms::check))
        .route("/static/check.js", get(check_script))
        .fallback(not_found)
        .with_state(state);
    Ok(if https {
        router.layer(axum::middleware::map_response(secure_cookies))
    } else {
        router
    })
}

/// Over HTTPS every cookie is `Secure`: the browser never sends it over plain HTTP.
async fn secure_cookies(mut response: Response) -> Response {
    let cookies: Vec<HeaderValue> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    response.headers_mut().remove(header::SET_COOKIE);
    for value in cookies {
        let secure = value
            .to_str()
            .ok()
            .and_then(|v| HeaderValue::from_str(&format!("{v}; Secure")).ok())
            .unwrap_or(value);
        response.headers_mut().append(header::SET_COOKIE, secure);
    }
    response
}

/// Serves `router` on `listener` until `shutdown`. The peer's address reaches the login rate
/// limit.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "staff screen listening");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// Serves `router` over HTTPS (`tls`) on `listener` until `shutdown`: the staff screen on a
/// LAN address. Connections in flight finish their request; a handshake that does not
/// complete in 10 s is dropped.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "staff screen listening (HTTPS)");
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("staff screen: accept failed: {e}");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "staff screen: TLS handshake refused: {e}");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found / پیدا نشد").into_response()
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole screen.
pub(crate) fn set_cookie(name: &str, value: &str, max_age_s: Option<i64>) -> String {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age_s {
        text.push_str(&format!("; Max-Age={age}"));
    }
    text
}

/// The page's language: `?lang=` (remembered in a cookie), then the cookie, then Persian.
/// Returns the cookie to set when `?lang=` chose it.
pub(crate) fn language(headers: &HeaderMap, query: Option<&str>) -> (Lang, Option<String>) {
    if let Some(lang) = query.and_then(Lang::parse) {
        let remember = set_cookie(templates::LANG_COOKIE, lang.code(), Some(365 * 86_400));
        return (lang, Some(remember));
    }
    let lang = cookie(headers, templates::LANG_COOKIE)
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or_default();
    (lang, None)
}

/// A logged-in staff member, as a page sees them.
pub(crate) struct LoggedIn {
    pub session_id: String,
    pub session: Session,
    pub account: StaffAccount,
}

/// The logged-in staff member of this request; `Err` is the redirect to the login page.
pub(crate) fn logged_in(state: &WebState, headers: &HeaderMap) -> Result<LoggedIn, Response> {
    let to_login = || see_other("/login", &[]);
    let session_id = cookie(headers, sessions::COOKIE).ok_or_else(to_login)?;
    let session = state
        .sessions
        .touch(&session_id, state.now_ms())
        .ok_or_else(to_login)?;
    // An account disabled since the login ends its sessions at their next request.
    match state.store.staff_account(&session.staff_id) {
        Ok(Some(account)) if !account.disabled => Ok(LoggedIn {
            session_id,
            session,
            account,
        }),
        Ok(_) => {
            state.sessions.end(&session_id);
            Err(to_login())
        }
        Err(e) => Err(failure(Lang::default(), &e.to_string())),
    }
}

/// The security headers of every response.
fn secured(mut response: Response, cookies: &[String]) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    for value in cookies {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The forms' script (checks as you type), built into the binary.
async fn check_script() -> Response {
    let response = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/check.js"),
    )
        .into_response();
    secured(response, &[])
}

/// A JSON answer (for the forms' script).
pub(crate) fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => secured(
            ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            &[],
        ),
        Err(e) => failure(Lang::default(), &e.to_string()),
    }
}

/// An HTML page.
pub(crate) fn html(status: StatusCode, body: String, cookies: &[String]) -> Response {
    let response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    secured(response, cookies)
}

/// A redirect (303 See Other) to `location`.
pub(crate) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    secured(response, cookies)
}

/// A POST without its form's CSRF token: refused, nothing done.
pub(crate) fn forged(lang: Lang) -> Response {
    let text = lang.pick(
        "این درخواست از فرم‌های همین صفحه نیامده است و پذیرفته نشد؛ صفحه را دوباره باز کنید.",
        "This request did not come from this screen's own form and was refused; open the page again.",
    );
    html(StatusCode::FORBIDDEN, text.to_owned(), &[])
}

/// Something failed inside the agent: logged for ops, a plain page for staff.
pub(crate) fn failure(lang: Lang, detail: &str) -> Response {
    tracing::error!("staff screen: {detail}");
    let text = lang.pick(
        "خطایی در نرم‌افزار نمایندگی رخ داد؛ دوباره تلاش کنید و اگر تکرار شد به پشتیبانی خبر دهید.",
        "The agent failed to do this; try again, and tell support if it happens again.",
    );
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{text}\n{detail}"),
        &[],
    )
}

/// Renders template `name` with `context`, or the failure page.
pub(crate) fn render(
    state: &WebState,
    lang: Lang,
    name: &str,
    context: serde_json::Value,
    status: StatusCode,
    cookies: &[String],
) -> Response {
    let rendered = state
        .templates
        .get_template(name)
        .and_then(|template| template.render(&context));
    match rendered {
        Ok(body) => html(status, body, cookies),
        Err(e) => failure(lang, &format!("template {name}: {e}")),
    }
}

/// What every page's template gets: the language, its words, and who is logged in.
pub(crate) fn page_context(lang: Lang, who: Option<&LoggedIn>) -> serde_json::Value {
    let staff = who.map(|w| {
        serde_json::json!({
            "staff_id": w.account.staff_id,
            "name": w.account.name,
            "role": lang.pick(w.account.role.label_fa(), w.account.role.label_en()),
        })
    });
    serde_json::json!({
        "lang": lang.code(),
        "dir": lang.dir(),
        "other_lang": lang.other().code(),
        "t": templates::texts(lang),
        "staff": staff,
        "csrf": who.map(|w| w.session.csrf_token.clone()),
        "forms": who.map(|w| super::forms::menu(w.account.role, lang)).unwrap_or_default(),
    })
}

/// `base` with `extra`'s keys added.
pub(crate) fn merged(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_and_set_http_only_and_strict() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hamgam_session=abc; hamgam_lang=en"),
        );
        assert_eq!(cookie(&headers, "hamgam_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert_eq!(language(&headers, None).0, Lang::En);
        let (lang, remember) = language(&headers, Some("fa"));
        assert_eq!(lang, Lang::Fa);
        assert!(remember.unwrap().contains("hamgam_lang=fa"));
        assert_eq!(language(&HeaderMap::new(), Some("de")).0, Lang::Fa);
        let set = set_cookie("hamgam_session", "abc", None);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
    }
}
