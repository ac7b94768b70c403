//! The login, logout and dashboard pages.

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use hamgam_gateway::{tls, PeerIdentity};
use hamgam_proto::record::v1::{Outcome, Verdict};
use hamgam_proto::RecordKind;

use super::server::{self, Shared, WebState};
use super::templates::Lang;
use super::{csrf, field, sessions, LangQuery};
use crate::jalali::JalaliDate;
use crate::staff::{Role, StaffAccount};

/// The cookie that carries the login form's token before there is a session.
const LOGIN_COOKIE: &str = "hamgam_login";

/// GET /login.
pub(crate) async fn login_page(
    State(state): State<Shared>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, lang_cookie) = server::language(&headers, query.lang.as_deref());
    if server::logged_in(&state, &headers).is_ok() {
        return server::see_other("/", &lang_cookie.into_iter().collect::<Vec<_>>());
    }
    login_form(&state, lang, "", None, StatusCode::OK, lang_cookie)
}

/// The login form with a fresh token (in the form and in its cookie).
fn login_form(
    state: &WebState,
    lang: Lang,
    staff_id: &str,
    error: Option<String>,
    status: StatusCode,
    extra_cookie: Option<String>,
) -> Response {
    let token = csrf::new_token();
    let mut cookies = vec![server::set_cookie(LOGIN_COOKIE, &token, None)];
    cookies.extend(extra_cookie);
    let context = server::merged(
        server::page_context(lang, None),
        serde_json::json!({ "csrf": token, "staff_id": staff_id, "error": error }),
    );
    server::render(state, lang, "login.html", context, status, &cookies)
}

/// POST /login: staff id and password, with the login form's token.
pub(crate) async fn login_submit(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (lang, _) = server::language(&headers, None);
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    let expected = server::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !csrf::matches(&expected, field(&fields, csrf::FIELD)) {
        return server::forged(lang);
    }
    let staff_id = field(&fields, "staff_id").unwrap_or("").trim().to_owned();
    let password = field(&fields, "password").unwrap_or("").to_owned();
    let now = state.now_ms();
    if let Err(slowed) = state.throttle.check(&staff_id, peer.ip(), now) {
        let minutes = slowed.minutes_left(now).to_string();
        let error = match lang {
            Lang::Fa => format!(
                "پس از چند تلاش ناموفق، ورود برای مدتی بسته شده است؛ {} دقیقه‌ی دیگر دوباره تلاش کنید یا از مدیر بخواهید رمز را از نو بگذارد.",
                lang.digits(&minutes)
            ),
            Lang::En => format!(
                "After several failed attempts, logging in is paused for a while; try again in {minutes} minutes, or ask the manager to reset the password."
            ),
        };
        let status = StatusCode::TOO_MANY_REQUESTS;
        return login_form(&state, lang, &staff_id, Some(error), status, None);
    }
    let account = match state.store.staff_account(&staff_id) {
        Ok(account) => account.filter(|a| !a.disabled),
        Err(e) => return server::failure(lang, &e.to_string()),
    };
    // Argon2 takes tens of milliseconds of CPU: off the async threads.
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || {
        hash.is_some_and(|h| crate::staff::verify_password(&password, &h))
    })
    .await
    .unwrap_or(false);
    if !verified {
        state.throttle.failed(&staff_id, peer.ip(), now);
        tracing::warn!(staff_id = %staff_id, peer = %peer, "staff screen: failed login");
        let error = lang
            .pick(
                "شناسه یا رمز عبور درست نیست.",
                "The staff id or the password is not right.",
            )
            .to_owned();
        let status = StatusCode::UNAUTHORIZED;
        return login_form(&state, lang, &staff_id, Some(error), status, None);
    }
    state.throttle.succeeded(&staff_id, peer.ip());
    let session_id = state.sessions.start(&staff_id, now);
    let cookies = [
        server::set_cookie(sessions::COOKIE, &session_id, None),
        server::set_cookie(LOGIN_COOKIE, "", Some(0)),
    ];
    server::see_other("/", &cookies)
}

/// POST /logout.
pub(crate) async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (lang, _) = server::language(&headers, None);
    let who = match server::logged_in(&state, &headers) {
        Ok(who) => who,
        Err(to_login) => return to_login,
    };
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    if !csrf::matches(&who.session.csrf_token, field(&fields, csrf::FIELD)) {
        return server::forged(lang);
    }
    state.sessions.end(&who.session_id);
    server::see_other(
        "/login",
        &[server::set_cookie(sessions::COOKIE, "", Some(0))],
    )
}

/// GET /: today's records, the sync state, the certificate, the needs-fixing list.
pub(crate) async fn dashboard(
    State(state): State<Shared>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, lang_cookie) = server::language(&headers, query.lang.as_deref());
    let who = match server::logged_in(&state, &headers) {
        Ok(who) => who,
        Err(to_login) => return to_login,
    };
    let worker = state.clone();
    let account = who.account.clone();
    let figures =
        tokio::task::spawn_blocking(move || dashboard_figures(&worker, &account, lang)).await;
    let figures = match figures {
        Ok(Ok(figures)) => figures,
        Ok(Err(e)) => return server::failure(lang, &e),
        Err(e) => return server::failure(lang, &e.to_string()),
    };
    let context = server::merged(server::page_context(lang, Some(&who)), figures);
    let cookies: Vec<String> = lang_cookie.into_iter().collect();
    server::render(
        &state,
        lang,
        "dashboard.html",
        context,
        StatusCode::OK,
        &cookies,
    )
}

/// How many of the newest records the dashboard looks through for today's.
const TODAY_SCAN: usize = 500;

/// The dashboard's figures. Blocking (reads the store).
fn dashboard_figures(
    state: &WebState,
    who: &StaffAccount,
    lang: Lang,
) -> Result<serde_json::Value, String> {
    let now = state.now_ms();
    let today = JalaliDate::at_ms(now).map_err(|e| e.to_string())?;
    let status = state.store.status().map_err(|e| e.to_string())?;
    let mut today_records = Vec::new();
    for record in state
        .store
        .latest_records_blocking(TODAY_SCAN)
        .map_err(|e| e.to_string())?
    {
        match JalaliDate::at_ms(record.recorded_at_ms) {
            Ok(day) if day == today => {}
            Ok(day) if day > today => continue,
            _ => break,
        }
        let kind = record.payload.as_ref().map(RecordKind::of);
        let synced = record.seq <= status.acked_seq;
        today_records.push(serde_json::json!({
            "seq": lang.digits(&record.seq.to_string()),
            "kind": kind.map(|k| kind_label(k, lang)).unwrap_or("-"),
            "time": time_of_day(record.recorded_at_ms, lang),
            "staff_id": record.staff_id,
            "state": if synced { lang.pick("ارسال شد", "sent") } else { lang.pick("در انتظار ارسال", "pending") },
        }));
    }
    let verdicts = state.store.verdicts().map_err(|e| e.to_string())?;
    let needs_fixing = needs_fixing(state, &verdicts, who, lang)?;
    Ok(serde_json::json!({
        "today": lang.digits(&today.to_string()),
        "today_count": lang.digits(&today_records.len().to_string()),
        "today_records": today_records,
        "pending": lang.digits(&status.pending().to_string()),
        "last_sync": status
            .last_sync_ms
            .map(|ms| date_time(ms, lang))
            .unwrap_or_else(|| lang.pick("هنوز نه", "never").to_owned()),
        "last_error": last_error_words(status.last_error.as_deref(), lang),
        "certificate": certificate_words(state.options.certificate.as_deref(), now, lang),
        "needs_fixing_count": lang.digits(&needs_fixing.len().to_string()),
        "needs_fixing": needs_fixing,
    }))
}

/// How many records the needs-fixing list shows.
const NEEDS_FIXING_SHOWN: usize = 100;

/// The rejected and flagged records, newest first, with the hub's reasons: a staff member's
/// own, or every one for a manager (who also corrects them). Blocking.
fn needs_fixing(
    state: &WebState,
    verdicts: &[Verdict],
    who: &StaffAccount,
    lang: Lang,
) -> Result<Vec<serde_json::Value>, String> {
    let manager = who.role == Role::Manager;
    let mut out = Vec::new();
    for v in verdicts
        .iter()
        .rev()
        .filter(|v| v.outcome() != Outcome::Accepted)
    {
        if out.len() == NEEDS_FIXING_SHOWN {
            break;
        }
        let Some(record) = state.store.record(v.seq).map_err(|e| e.to_string())? else {
            continue;
        };
        if !manager && record.staff_id != who.staff_id {
            continue;
        }
        let kind = record.payload.as_ref().map(RecordKind::of);
        let outcome = match v.outcome() {
            Outcome::Rejected => lang.pick("رد شد", "rejected"),
            Outcome::AcceptedWithFlags => lang.pick("پذیرفته با هشدار", "accepted with flags"),
            _ => lang.pick("نامشخص", "unknown"),
        };
        let findings: Vec<serde_json::Value> = v
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "rule_id": f.rule_id,
                    "field": f.field,
                    "reason": lang.pick(&f.reason_fa, &f.reason_en),
                })
            })
            .collect();
        out.push(serde_json::json!({
            "seq": lang.digits(&v.seq.to_string()),
            "seq_raw": v.seq,
            "kind": kind.map(|k| kind_label(k, lang)).unwrap_or("-"),
            "recorded": date_time(record.recorded_at_ms, lang),
            "staff_id": record.staff_id,
            "outcome": outcome,
            "findings": findings,
            "can_fix": kind.is_some_and(|k| k != RecordKind::Correction),
        }));
    }
    Ok(out)
}

/// The last sync error in words: none, or the error (it is the agent's own English text).
fn last_error_words(error: Option<&str>, lang: Lang) -> String {
    match error {
        None => lang.pick("بدون خطا", "none").to_owned(),
        Some(e) => match lang {
            Lang::Fa => {
                format!("ارسال به مرکز انجام نشد؛ رکوردها محفوظ‌اند و بعداً ارسال می‌شوند ({e})")
            }
            Lang::En => format!("the last sync failed; records are kept and sent later ({e})"),
        },
    }
}

/// The dealer certificate's expiry in words, or why it cannot be read.
fn certificate_words(path: Option<&Path>, now_ms: i64, lang: Lang) -> String {
    let Some(path) = path else {
        return lang.pick("تنظیم نشده", "not configured").to_owned();
    };
    let until = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|pem| {
            tls::parse_certificates(&pem, "dealer certificate").map_err(|e| e.to_string())
        })
        .and_then(|leaf| match leaf.first() {
            Some(cert) => PeerIdentity::validity_of(cert).map_err(|e| e.to_string()),
            None => Err("no certificate in the file".into()),
        });
    let until_ms = match until {
        Ok((_, until_s)) => until_s.saturating_mul(1000),
        Err(e) => {
            return format!(
                "{} {}: {e}",
                lang.pick("خوانده نشد", "cannot read"),
                path.display()
            )
        }
    };
    let days = (until_ms - now_ms).div_euclid(86_400_000);
    let date = date_time(until_ms, lang);
    match lang {
        Lang::Fa if until_ms < now_ms => format!("منقضی شده در {date}؛ به پشتیبانی خبر دهید"),
        Lang::Fa => format!(
            "معتبر تا {date} ({} روز دیگر)",
            lang.digits(&days.to_string())
        ),
        Lang::En if until_ms < now_ms => format!("expired on {date}; tell support"),
        Lang::En => format!("valid until {date} ({days} days)"),
    }
}

/// A Jalali date and Tehran time, `۱۴۰۵/۰۸/۲۷ ۱۳:۴۳`.
pub(crate) fn date_time(ms: i64, lang: Lang) -> String {
    match JalaliDate::with_time_at_ms(ms) {
        Ok((day, hour, minute)) => lang.digits(&format!("{day} {hour:02}:{minute:02}")),
        Err(_) => "-".into(),
    }
}

fn time_of_day(ms: i64, lang: Lang) -> String {
    match JalaliDate::with_time_at_ms(ms) {
        Ok((_, hour, minute)) => lang.digits(&format!("{hour:02}:{minute:02}")),
        Err(_) => "-".into(),
    }
}

/// A kind of record in the page's language.
pub(crate) fn kind_label(kind: RecordKind, lang: Lang) -> &'static str {
    let (fa, en) = match kind {
        RecordKind::Customer => ("مشتری", "customer"),
        RecordKind::RetailDelivery => ("تحویل خودرو", "retail delivery"),
        RecordKind::RepairOrder => ("پذیرش تعمیر", "repair order"),
        RecordKind::Lead => ("سرنخ فروش", "lead"),
        RecordKind::Complaint => ("شکایت", "complaint"),
        RecordKind::Survey => ("نظرسنجی", "survey"),
        RecordKind::OdometerReplacement => ("تعویض کیلومترشمار", "odometer replacement"),
        RecordKind::VehicleStatus => ("وضعیت خودرو", "vehicle status"),
        RecordKind::Correction => ("اصلاحیه", "correction"),
    };
    lang.pick(fa, en)
}
