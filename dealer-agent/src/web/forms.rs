//! The record forms of the staff screen, one engine for every kind ([`crate::record_form`]):
//! `/new/<kind>` makes a record, `/fix/<seq>` corrects or withdraws one, prefilled from the
//! stored record. What is typed becomes the payload's proto3 JSON (Jalali dates to Gregorian and
//! Tehran time, digits of any script to Latin, Persian enum labels to the proto's values), which
//! the agent's own capture code reads and saves ([`crate::capture::save_checked`], as
//! `dealer-agent record` and the local API do) as the logged-in staff member. The entry checks'
//! warnings appear next to the fields they concern; the record is saved all the same.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::record::v1::{Finding, Record};
use hamgam_proto::RecordKind;
use serde_json::Value;

use super::server::{self, LoggedIn, Shared, WebState};
use super::templates::Lang;
use super::{csrf, field, LangQuery};
use crate::capture;
use crate::jalali::JalaliDate;
use crate::record_form::spec::{self as form_spec, Field, FormSpec, Input};
use crate::record_form::{
    findings_by_field, payload_json, row_name, typed_from_json, warnings_by_field, Messages, Typed,
    RECORD,
};
use crate::staff::Role;

/// What one form page shows.
struct FormPage<'a> {
    spec: &'static FormSpec,
    typed: &'a Typed,
    /// `Some` on a correction: the record corrected, the reason typed, the hub's findings.
    fix: Option<FixOf<'a>>,
    saved: Option<String>,
    error: Option<String>,
    messages: Messages,
}

struct FixOf<'a> {
    target: &'a Record,
    reason: &'a str,
    retract: bool,
    findings: Messages,
}

/// The form's page with `page`'s values.
fn show(
    state: &WebState,
    lang: Lang,
    who: &LoggedIn,
    page: FormPage<'_>,
    status: StatusCode,
    cookies: &[String],
) -> Response {
    let spec = page.spec;
    let field_json = |field: &Field, name: String| {
        let choices: Vec<Value> = match field.input {
            Input::Choice(values) => values
                .iter()
                .map(|(value, fa, en)| serde_json::json!({"value": value, "label": lang.pick(fa, en)}))
                .collect(),
            _ => Vec::new(),
        };
        let kind = match field.input {
            Input::Choice(_) => "choice",
            Input::Check => "check",
            Input::Text => "text",
            Input::Day | Input::Date => "date",
            Input::Whole | Input::Decimal => "number",
            Input::Code | Input::Vin => "code",
        };
        serde_json::json!({
            "name": name,
            "id": name.replace('.', "-"),
            "label": lang.pick(field.fa, field.en),
            "input": kind,
            "value": page.typed.get(&name),
            "choices": choices,
            "maxlength": if field.input == Input::Vin { Some(17) } else { None },
        })
    };
    let fields: Vec<Value> = spec
        .fields
        .iter()
        .map(|f| field_json(f, f.path.to_owned()))
        .collect();
    let rows = spec.rows.map(|rows| {
        let lines: Vec<Vec<Value>> = (0..page.typed.row_count(spec))
            .map(|i| {
                rows.fields
                    .iter()
                    .map(|f| field_json(f, row_name(rows.path, i, f)))
                    .collect()
            })
            .collect();
        let heads: Vec<&str> = rows.fields.iter().map(|f| lang.pick(f.fa, f.en)).collect();
        serde_json::json!({"label": lang.pick(rows.fa, rows.en), "heads": heads, "lines": lines})
    });
    let title = lang.pick(spec.fa, spec.en);
    let fix = page.fix.as_ref().map(|fix| {
        serde_json::json!({
            "seq": lang.digits(&fix.target.seq.to_string()),
            "record_id": fix.target.record_id,
            "reason": fix.reason,
            "retract": fix.retract,
            "findings": fix.findings,
        })
    });
    let action = match &page.fix {
        Some(fix) => format!("/fix/{}", fix.target.seq),
        None => format!("/new/{}", spec.slug),
    };
    let context = server::merged(
        server::page_context(lang, Some(who)),
        serde_json::json!({
            "title": title,
            "action": action,
            "check": format!("/check/{}", spec.slug),
            "fields": fields,
            "rows": rows,
            "fix": fix,
            "saved": page.saved,
            "error": page.error,
            "warnings": page.messages,
        }),
    );
    server::render(state, lang, "form.html", context, status, cookies)
}

/// The forms `role` may fill, for the menu: slug and title.
pub(crate) fn menu(role: Role, lang: Lang) -> Vec<Value> {
    form_spec::FORMS
        .iter()
        .filter(|spec| spec.allows(role))
        .map(|spec| serde_json::json!({"slug": spec.slug, "title": lang.pick(spec.fa, spec.en)}))
        .collect()
}

/// Refused: this staff member's role does not use this form, or the record is another's.
fn not_yours(lang: Lang) -> Response {
    let text = lang.pick(
        "این کار با نقش شما در نمایندگی انجام نمی‌شود؛ از مدیر نمایندگی بخواهید.",
        "Your role at the branch does not do this; ask the branch manager.",
    );
    server::html(StatusCode::FORBIDDEN, text.to_owned(), &[])
}

/// GET /new/<kind>: an empty form; its first date is today.
pub(crate) async fn new_page(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, lang_cookie) = server::language(&headers, query.lang.as_deref());
    let who = match server::logged_in(&state, &headers) {
        Ok(who) => who,
        Err(to_login) => return to_login,
    };
    let Some(spec) = form_spec::by_slug(&slug) else {
        return server::not_found().await;
    };
    if !spec.allows(who.account.role) {
        return not_yours(lang);
    }
    let mut typed = Typed::default();
    let first_date = spec
        .fields
        .iter()
        .find(|f| matches!(f.input, Input::Day | Input::Date));
    if let (Some(date), Ok(today)) = (first_date, JalaliDate::at_ms(state.now_ms())) {
        typed.set(date.path, lang.digits(&today.to_string()));
    }
    let page = FormPage {
        spec,
        typed: &typed,
        fix: None,
        saved: None,
        error: None,
        messages: Messages::new(),
    };
    show(
        &state,
        lang,
        &who,
        page,
        StatusCode::OK,
        &Vec::from_iter(lang_cookie),
    )
}

/// Saves `payload` as the logged-in staff member through the capture code: the saved seq and
/// the entry checks' warnings, or the failure in words.
async fn save(
    state: &WebState,
    who: &LoggedIn,
    payload: Payload,
    lang: Lang,
) -> Result<(u64, Vec<Warning>), String> {
    let store = state.store.clone();
    let staff_id = who.account.staff_id.clone();
    let saved =
        tokio::task::spawn_blocking(move || capture::save_checked(&store, &staff_id, payload))
            .await;
    match saved {
        Ok(Ok((saved, warnings))) => Ok((saved.seq, warnings)),
        Ok(Err(e)) => Err(match lang {
            Lang::Fa => e.message_fa().unwrap_or_else(|| format!("ذخیره نشد: {e}")),
            Lang::En => format!("Not saved: {e}"),
        }),
        Err(e) => Err(e.to_string()),
    }
}

fn not_saved(lang: Lang) -> String {
    lang.pick(
        "ذخیره نشد: موارد مشخص‌شده را درست کنید.",
        "Not saved: correct the fields marked.",
    )
    .to_owned()
}

/// POST /new/<kind>: saves the record.
pub(crate) async fn new_submit(
    State(state): State<Shared>,
    Path(slug): Path<String>,
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
    let Some(spec) = form_spec::by_slug(&slug) else {
        return server::not_found().await;
    };
    if !spec.allows(who.account.role) {
        return not_yours(lang);
    }
    let typed = Typed::from_fields(&fields);
    let page = FormPage {
        spec,
        typed: &typed,
        fix: None,
        saved: None,
        error: None,
        messages: Messages::new(),
    };
    let payload = payload_json(spec, &typed, &who.account.staff_id, lang).and_then(|json| {
        capture::payload_from_json(spec.kind, json)
            .map_err(|e| Messages::from([(RECORD.to_owned(), vec![e.to_string()])]))
    });
    save_and_show(&state, lang, &who, page, payload, |seq| {
        let seq = lang.digits(&seq.to_string());
        match lang {
            Lang::Fa => format!("ذخیره شد (شماره‌ی {seq})؛ هنگام اتصال به مرکز ارسال می‌شود."),
            Lang::En => format!("Saved as seq {seq}; it is sent when the hub is reachable."),
        }
    })
    .await
}

/// The end of every form's POST: what could not be read shown by field (422), or the record
/// saved through the capture code and `saved_text` of its seq shown with the entry checks'
/// warnings by field (200), or why saving failed (500).
async fn save_and_show(
    state: &WebState,
    lang: Lang,
    who: &LoggedIn,
    mut page: FormPage<'_>,
    payload: Result<Payload, Messages>,
    saved_text: impl FnOnce(u64) -> String,
) -> Response {
    let payload = match payload {
        Ok(payload) => payload,
        Err(messages) => {
            page.error = Some(not_saved(lang));
            page.messages = messages;
            return show(
                state,
                lang,
                who,
                page,
                StatusCode::UNPROCESSABLE_ENTITY,
                &[],
            );
        }
    };
    match save(state, who, payload, lang).await {
        Ok((seq, warnings)) => {
            page.saved = Some(saved_text(seq));
            page.messages = warnings_by_field(page.spec, &warnings, lang);
            show(state, lang, who, page, StatusCode::OK, &[])
        }
        Err(error) => {
            page.error = Some(error);
            show(
                state,
                lang,
                who,
                page,
                StatusCode::INTERNAL_SERVER_ERROR,
                &[],
            )
        }
    }
}

/// POST /check/<kind>: what the entry checks say of the form as typed so far, by field name,
/// as JSON for the form's script (checks as you type). Saves nothing.
pub(crate) async fn check(
    State(state): State<Shared>,
    Path(slug): Path<String>,
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
    let Some(spec) = form_spec::by_slug(&slug) else {
        return server::not_found().await;
    };
    let typed = Typed::from_fields(&fields);
    let messages = match payload_json(spec, &typed, &who.account.staff_id, lang) {
        Err(problems) => problems,
        Ok(json) => match capture::payload_from_json(spec.kind, json) {
            Ok(payload) => warnings_by_field(
                spec,
                &hamgam_proto::entry::check(&payload, state.now_ms(), state.now_ms()),
                lang,
            ),
            Err(e) => Messages::from([(RECORD.to_owned(), vec![e.to_string()])]),
        },
    };
    server::json(&messages)
}

/// The record `seq` to correct, its form and the hub's findings on it, or the page that says
/// why it cannot be corrected here.
async fn fix_target(
    state: &Shared,
    who: &LoggedIn,
    seq: u64,
    lang: Lang,
) -> Result<(Record, &'static FormSpec, Vec<Finding>), Response> {
    let worker = state.clone();
    let found = tokio::task::spawn_blocking(move || {
        let record = worker.store.record(seq)?;
        let verdict = worker.store.verdicts()?.into_iter().find(|v| v.seq == seq);
        Ok::<_, crate::store::StoreError>((record, verdict))
    })
    .await;
    let (record, verdict) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return Err(server::failure(lang, &e.to_string())),
        Err(e) => return Err(server::failure(lang, &e.to_string())),
    };
    let Some(record) = record else {
        return Err(server::not_found().await);
    };
    if who.account.role != Role::Manager && record.staff_id != who.account.staff_id {
        return Err(not_yours(lang));
    }
    let kind = record.payload.as_ref().map(RecordKind::of);
    let Some(spec) = kind.and_then(form_spec::by_kind) else {
        let text = lang.pick(
            "این رکورد خودش اصلاحیه است؛ رکورد اصلی را اصلاح کنید.",
            "This record is itself a correction; correct the original record.",
        );
        return Err(server::html(StatusCode::CONFLICT, text.to_owned(), &[]));
    };
    let findings = verdict.map(|v| v.findings).unwrap_or_default();
    Ok((record, spec, findings))
}

/// GET /fix/<seq>: the record's form, prefilled, with the hub's reasons next to the fields.
pub(crate) async fn fix_page(
    State(state): State<Shared>,
    Path(seq): Path<u64>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, lang_cookie) = server::language(&headers, query.lang.as_deref());
    let who = match server::logged_in(&state, &headers) {
        Ok(who) => who,
        Err(to_login) => return to_login,
    };
    let (record, spec, findings) = match fix_target(&state, &who, seq, lang).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let typed = match capture::payload_json_of(&record) {
        Ok((_, json)) => typed_from_json(spec, &json, lang),
        Err(e) => return server::failure(lang, &e.to_string()),
    };
    let page = FormPage {
        spec,
        typed: &typed,
        fix: Some(FixOf {
            target: &record,
            reason: "",
            retract: false,
            findings: findings_by_field(spec, &findings, lang),
        }),
        saved: None,
        error: None,
        messages: Messages::new(),
    };
    show(
        &state,
        lang,
        &who,
        page,
        StatusCode::OK,
        &Vec::from_iter(lang_cookie),
    )
}

/// POST /fix/<seq>: saves the correction (or the withdrawal, `retract=on`), with its reason.
pub(crate) async fn fix_submit(
    State(state): State<Shared>,
    Path(seq): Path<u64>,
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
    let (record, spec, findings) = match fix_target(&state, &who, seq, lang).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let typed = Typed::from_fields(&fields);
    let reason = field(&fields, "reason").unwrap_or("").trim().to_owned();
    let retract = field(&fields, "retract").is_some_and(|v| v == "on");
    let page = FormPage {
        spec,
        typed: &typed,
        fix: Some(FixOf {
            target: &record,
            reason: &reason,
            retract,
            findings: findings_by_field(spec, &findings, lang),
        }),
        saved: None,
        error: None,
        messages: Messages::new(),
    };
    let amended = if retract {
        Ok(None)
    } else {
        payload_json(spec, &typed, &who.account.staff_id, lang).map(Some)
    };
    let document = amended.and_then(|amended| {
        capture::correction_document(&record, &reason, amended)
            .map_err(|e| {
                let name = if reason.is_empty() { "reason" } else { RECORD };
                let text = match (lang, &e) {
                    (Lang::Fa, capture::CorrectionError::NoReason) => {
                        "اصلاحیه دلیل می‌خواهد: بنویسید چرا رکورد تغییر می‌کند یا پس گرفته می‌شود."
                            .to_owned()
                    }
                    _ => e.to_string(),
                };
                Messages::from([(name.to_owned(), vec![text])])
            })
            .and_then(|doc| {
                capture::payload_from_json(RecordKind::Correction, doc)
                    .map_err(|e| Messages::from([(RECORD.to_owned(), vec![e.to_string()])]))
            })
    });
    let target = lang.digits(&record.seq.to_string());
    save_and_show(&state, lang, &who, page, document, |seq| {
        let saved = lang.digits(&seq.to_string());
        match lang {
            Lang::Fa => format!("اصلاحیه‌ی رکورد {target} ذخیره شد (شماره‌ی {saved})؛ مرکز هنگام همگام‌سازی رکورد {target} را دوباره بررسی می‌کند."),
            Lang::En => format!("The correction of seq {target} is saved as seq {saved}; the hub judges seq {target} again when it syncs."),
        }
    })
    .await
}
