//! The record forms of the staff screen, one engine for every kind ([`super::form_spec`]):
//! `/new/<kind>` makes a record, `/fix/<seq>` corrects or withdraws one, prefilled from the
//! stored record. What is typed becomes the payload's proto3 JSON (Jalali dates to Gregorian and
//! Tehran time, digits of any script to Latin, Persian enum labels to the proto's values), which
//! the agent's own capture code reads and saves ([`crate::capture::save_checked`], as
//! `dealer-agent record` and the local API do) as the logged-in staff member. The entry checks'
//! warnings appear next to the fields they concern; the record is saved all the same.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::record::v1::{Finding, Record};
use hamgam_proto::text::normalize_digits;
use hamgam_proto::RecordKind;
use serde_json::Value;

use super::form_spec::{self, Field, FormSpec, Input};
use super::server::{self, LoggedIn, Shared, WebState};
use super::templates::Lang;
use super::{csrf, field, LangQuery};
use crate::capture;
use crate::jalali::JalaliDate;
use crate::staff::Role;

/// Messages by form field name (`_record` for the record as a whole).
pub(crate) type Messages = BTreeMap<String, Vec<String>>;

/// The form field of a message about the whole record.
const RECORD: &str = "_record";

/// Puts `value` at the dotted `path` of `root`, making the objects on the way.
pub(crate) fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        let Some(object) = node.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            object.insert(part.to_owned(), value);
            return;
        }
        node = object
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// The value at the dotted `path` of `root`.
fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, part| node.get(part))
}

/// The form's field names: `vin`, and `jobLines.0.laborOpCode` for rows.
fn row_name(rows_path: &str, index: usize, field: &Field) -> String {
    format!("{rows_path}.{index}.{}", field.path)
}

/// What a form shows in its fields, by field name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Typed(BTreeMap<String, String>);

impl Typed {
    fn from_fields(fields: &[(String, String)]) -> Self {
        Typed(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// The rows of `spec` shown: at least its count, and as many as were typed or stored.
    fn row_count(&self, spec: &FormSpec) -> usize {
        let Some(rows) = spec.rows else { return 0 };
        let prefix = format!("{}.", rows.path);
        let typed = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        typed.max(rows.count)
    }
}

/// Reads one typed value: `None` when the field is empty.
fn read_value(input: Input, raw: &str, lang: Lang) -> Result<Option<Value>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let digits = || normalize_digits(raw);
    let value = match input {
        Input::Text => Value::from(raw),
        Input::Code => Value::from(digits()),
        Input::Vin => Value::from(digits().to_uppercase()),
        Input::Whole => {
            let cleaned = digits().replace([',', '٬', ' '], "");
            let number = cleaned.parse::<u32>().map_err(|_| {
                lang.pick("باید عدد صحیح باشد", "must be a whole number")
                    .to_owned()
            })?;
            Value::from(number)
        }
        Input::Decimal => {
            let cleaned = digits().replace('٫', ".");
            match cleaned.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Value::from(x),
                _ => {
                    return Err(lang
                        .pick("باید عدد باشد (مانند ۱٫۵)", "must be a number (like 1.5)")
                        .to_owned())
                }
            }
        }
        Input::Day => {
            let ms = JalaliDate::parse(raw)
                .and_then(JalaliDate::start_ms)
                .map_err(|e| e.to_string())?;
            Value::from(ms.to_string())
        }
        Input::Date => {
            let (year, month, day) = JalaliDate::parse(raw)
                .map_err(|e| e.to_string())?
                .to_gregorian();
            serde_json::json!({ "year": year, "month": month, "day": day })
        }
        Input::Choice(values) => match values.iter().find(|(name, ..)| *name == raw) {
            Some((name, ..)) => Value::from(*name),
            None => {
                return Err(lang
                    .pick(
                        "یکی از گزینه‌های فهرست را برگزینید",
                        "choose one from the list",
                    )
                    .to_owned())
            }
        },
        Input::Check => Value::Bool(matches!(raw, "on" | "true" | "1")),
    };
    Ok(Some(value))
}

/// The payload's proto3 JSON from what was typed on `spec`'s form, or what cannot be read, by
/// field. `staff_id` fills the form's staff field when the record does not name another.
pub(crate) fn payload_json(
    spec: &FormSpec,
    typed: &Typed,
    staff_id: &str,
    lang: Lang,
) -> Result<Value, Messages> {
    let mut json = Value::Object(Default::default());
    let mut problems = Messages::new();
    for field in spec.fields {
        match read_value(field.input, typed.get(field.path), lang) {
            Ok(Some(value)) => set_path(&mut json, field.path, value),
            Ok(None) => {}
            Err(why) => note(&mut problems, field.path, why),
        }
    }
    if let Some(rows) = spec.rows {
        let mut kept = Vec::new();
        for index in 0..typed.row_count(spec) {
            let mut row = Value::Object(Default::default());
            let mut filled = false;
            for field in rows.fields {
                let name = row_name(rows.path, index, field);
                match read_value(field.input, typed.get(&name), lang) {
                    Ok(Some(value)) => {
                        set_path(&mut row, field.path, value);
                        filled = true;
                    }
                    Ok(None) => {}
                    Err(why) => note(&mut problems, &name, why),
                }
            }
            if filled {
                if let Some(number) = rows.numbered {
                    row[number] = Value::from(kept.len() + 1);
                }
                kept.push(row);
            }
        }
        if !kept.is_empty() {
            json[rows.path] = Value::Array(kept);
        }
    }
    if let Some(staff_field) = spec.staff_field {
        if json.get(staff_field).is_none() {
            json[staff_field] = Value::from(staff_id);
        }
    }
    if problems.is_empty() {
        Ok(json)
    } else {
        Err(problems)
    }
}

/// Shows a stored value in a form field, in `lang`'s digits.
fn show_value(input: Input, value: &Value, lang: Lang) -> String {
    let number = |v: &Value| match v {
        Value::String(s) => s.parse::<i64>().ok(),
        v => v.as_i64(),
    };
    match input {
        Input::Day => number(value)
            .and_then(|ms| JalaliDate::at_ms(ms).ok())
            .map(|d| lang.digits(&d.to_string()))
            .unwrap_or_default(),
        Input::Date => {
            let part = |name: &str| value.get(name).and_then(Value::as_i64);
            match (part("year"), part("month"), part("day")) {
                (Some(y), Some(m), Some(d)) => i32::try_from(y)
                    .ok()
                    .zip(u8::try_from(m).ok().zip(u8::try_from(d).ok()))
                    .and_then(|(y, (m, d))| JalaliDate::from_gregorian(y, m, d).ok())
                    .map(|d| lang.digits(&d.to_string()))
                    .unwrap_or_default(),
                _ => String::new(),
            }
        }
        Input::Whole | Input::Decimal => match value {
            Value::Number(n) => lang.digits(&n.to_string().replace('.', lang.pick("٫", "."))),
            Value::String(s) => lang.digits(s),
            _ => String::new(),
        },
        Input::Check => match value {
            Value::Bool(true) => "on".into(),
            _ => String::new(),
        },
        Input::Text | Input::Code | Input::Vin | Input::Choice(_) => match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        },
    }
}

/// The form filled from a stored payload (proto3 JSON): what a correction starts from.
pub(crate) fn typed_from_json(spec: &FormSpec, json: &Value, lang: Lang) -> Typed {
    let mut typed = BTreeMap::new();
    for field in spec.fields {
        if let Some(value) = get_path(json, field.path) {
            typed.insert(field.path.to_owned(), show_value(field.input, value, lang));
        }
    }
    if let Some(rows) = spec.rows {
        let stored = json.get(rows.path).and_then(Value::as_array);
        for (index, row) in stored.into_iter().flatten().enumerate() {
            for field in rows.fields {
                if let Some(value) = get_path(row, field.path) {
                    typed.insert(
                        row_name(rows.path, index, field),
                        show_value(field.input, value, lang),
                    );
                }
            }
        }
    }
    Typed(typed)
}

fn note(messages: &mut Messages, name: &str, message: impl Into<String>) {
    messages
        .entry(name.to_owned())
        .or_default()
        .push(message.into());
}

/// The form field a warning or finding names (`repair_order.odometer_in_km` → `odometerInKm`,
/// `retail_delivery.parties[1].customer_ref` → `parties.1.customerRef`), or [`RECORD`].
fn form_field(spec: &FormSpec, named: &str) -> String {
    let kind_prefixes = ["correction", hamgam_proto::entry::kind_prefix_of(spec.kind)];
    let mut parts: Vec<&str> = named.split('.').collect();
    while parts.first().is_some_and(|p| kind_prefixes.contains(p)) {
        parts.remove(0);
    }
    let camel: Vec<String> = parts
        .iter()
        .flat_map(|part| {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
                None => (*part, None),
            };
            let mut out = String::new();
            let mut upper = false;
            for c in name.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.push(c.to_ascii_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            std::iter::once(out).chain(index.map(str::to_owned))
        })
        .collect();
    let name = camel.join(".");
    let known = spec.fields.iter().any(|f| f.path == name)
        || spec.rows.is_some_and(|rows| {
            name.strip_prefix(rows.path)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.split_once('.'))
                .is_some_and(|(_, field)| rows.fields.iter().any(|f| f.path == field))
        });
    if known {
        name
    } else {
        RECORD.to_owned()
    }
}

/// The entry checks' warnings by form field, in the page's language.
fn warnings_by_field(spec: &FormSpec, warnings: &[Warning], lang: Lang) -> Messages {
    let mut out = Messages::new();
    for w in warnings {
        let reason = lang.pick(&w.reason_fa, &w.reason_en);
        note(
            &mut out,
            &form_field(spec, &w.field),
            format!("{}: {reason}", w.rule_id),
        );
    }
    out
}

/// The hub's findings on a record by form field, in the page's language.
fn findings_by_field(spec: &FormSpec, findings: &[Finding], lang: Lang) -> Messages {
    let mut out = Messages::new();
    for f in findings {
        let reason = lang.pick(&f.reason_fa, &f.reason_en);
        note(
            &mut out,
            &form_field(spec, &f.field),
            format!("{}: {reason}", f.rule_id),
        );
    }
    out
}

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
        typed
            .0
            .insert(date.path.to_owned(), lang.digits(&today.to_string()));
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
    let mut page = FormPage {
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
    let payload = match payload {
        Ok(payload) => payload,
        Err(messages) => {
            page.error = Some(not_saved(lang));
            page.messages = messages;
            return show(
                &state,
                lang,
                &who,
                page,
                StatusCode::UNPROCESSABLE_ENTITY,
                &[],
            );
        }
    };
    match save(&state, &who, payload, lang).await {
        Ok((seq, warnings)) => {
            let seq = lang.digits(&seq.to_string());
            page.saved = Some(match lang {
                Lang::Fa => format!("ذخیره شد (شماره‌ی {seq})؛ هنگام اتصال به مرکز ارسال می‌شود."),
                Lang::En => format!("Saved as seq {seq}; it is sent when the hub is reachable."),
            });
            page.messages = warnings_by_field(spec, &warnings, lang);
            show(&state, lang, &who, page, StatusCode::OK, &[])
        }
        Err(error) => {
            page.error = Some(error);
            show(
                &state,
                lang,
                &who,
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
                &hamgam_proto::entry::check(&payload, state.now_ms()),
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
    let mut page = FormPage {
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
    let payload = match document {
        Ok(payload) => payload,
        Err(messages) => {
            page.error = Some(not_saved(lang));
            page.messages = messages;
            return show(
                &state,
                lang,
                &who,
                page,
                StatusCode::UNPROCESSABLE_ENTITY,
                &[],
            );
        }
    };
    match save(&state, &who, payload, lang).await {
        Ok((saved, warnings)) => {
            let (target, saved) = (
                lang.digits(&record.seq.to_string()),
                lang.digits(&saved.to_string()),
            );
            page.saved = Some(match lang {
                Lang::Fa => format!("اصلاحیه‌ی رکورد {target} ذخیره شد (شماره‌ی {saved})؛ مرکز هنگام همگام‌سازی رکورد {target} را دوباره بررسی می‌کند."),
                Lang::En => format!("The correction of seq {target} is saved as seq {saved}; the hub judges seq {target} again when it syncs."),
            });
            page.messages = warnings_by_field(spec, &warnings, lang);
            show(&state, lang, &who, page, StatusCode::OK, &[])
        }
        Err(error) => {
            page.error = Some(error);
            show(
                &state,
                lang,
                &who,
                page,
                StatusCode::INTERNAL_SERVER_ERROR,
                &[],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(pairs: &[(&str, &str)]) -> Typed {
        let fields: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Typed::from_fields(&fields)
    }

    fn repair_order() -> &'static FormSpec {
        form_spec::by_slug("repair-order").unwrap()
    }

    #[test]
    fn a_form_with_persian_digits_and_a_jalali_date_makes_the_repair_order() {
        let json = payload_json(
            repair_order(),
            &typed(&[
                ("roNumber", "RO-1"),
                ("vin", "naan01ce5kk12345۶"),
                ("odometerInKm", "۴۲٬۰۰۰"),
                ("openedAtMs", "۱۴۰۵/۰۸/۲۷"),
                ("payType", "PAY_TYPE_WARRANTY"),
                ("jobLines.0.laborOpCode", "EN-100"),
                ("jobLines.0.actualHours", "۱٫۵"),
                ("jobLines.2.complaint", "صدای ترمز"),
            ]),
            "s-105",
            Lang::Fa,
        )
        .unwrap();
        let Payload::RepairOrder(order) =
            capture::payload_from_json(RecordKind::RepairOrder, json).unwrap()
        else {
            panic!("not a repair order")
        };
        assert_eq!(order.vin, "NAAN01CE5KK123456");
        assert_eq!(order.odometer_in_km, 42_000);
        // 27 Aban 1405 = 18 November 2026; Tehran midnight is 20:30 UTC the day before.
        assert_eq!(order.opened_at_ms, 1_794_947_400_000);
        assert_eq!(
            order.pay_type(),
            hamgam_proto::record::v1::PayType::Warranty
        );
        assert_eq!(order.advisor_id, "s-105", "the adviser is who is logged in");
        // The empty second row is dropped and the lines are numbered as kept.
        let lines: Vec<(u32, &str, f64)> = order
            .job_lines
            .iter()
            .map(|l| (l.line_number, l.complaint.as_str(), l.actual_hours))
            .collect();
        assert_eq!(lines, [(1, "", 1.5), (2, "صدای ترمز", 0.0)]);
    }

    #[test]
    fn what_cannot_be_read_is_named_by_field() {
        let problems = payload_json(
            repair_order(),
            &typed(&[
                ("openedAtMs", "2026/11/18"),
                ("odometerInKm", "many"),
                ("payType", "x"),
                ("jobLines.1.laborOpCode", "A"),
                ("jobLines.1.actualHours", "?"),
            ]),
            "s-1",
            Lang::En,
        )
        .unwrap_err();
        let names: Vec<&str> = problems.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "jobLines.1.actualHours",
                "odometerInKm",
                "openedAtMs",
                "payType"
            ]
        );
        assert!(
            problems["openedAtMs"][0].contains("not a Gregorian"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_stored_record_fills_its_form_back_as_typed() {
        let spec = form_spec::by_slug("retail-delivery").unwrap();
        let typed_in = typed(&[
            ("dealRef", "DL-9"),
            ("vin", "NAAN01CE5KK123456"),
            ("saleDate", "۱۴۰۳/۱۲/۳۰"),
            ("deliveryDate", "۱۴۰۴/۰۱/۰۱"),
            ("saleCategory", "SALE_CATEGORY_FLEET"),
            ("parties.0.role", "PARTY_ROLE_FLEET_ACCOUNT"),
            ("parties.0.customerRef", "C-۱"),
            ("parties.1.role", "PARTY_ROLE_PRIMARY_DRIVER"),
            ("parties.1.customerRef", "C-2"),
        ]);
        let json = payload_json(spec, &typed_in, "s-1", Lang::Fa).unwrap();
        // 30 Esfand 1403 (a leap year) = 20 March 2025; 1 Farvardin 1404 = 21 March 2025.
        assert_eq!(
            json["saleDate"],
            serde_json::json!({"year": 2025, "month": 3, "day": 20})
        );
        let payload = capture::payload_from_json(spec.kind, json).unwrap();
        let record = Record {
            seq: 4,
            payload: Some(payload),
            ..Default::default()
        };
        let (_, stored) = capture::payload_json_of(&record).unwrap();
        let back = typed_from_json(spec, &stored, Lang::Fa);
        for (name, value) in [
            ("saleDate", "۱۴۰۳/۱۲/۳۰"),
            ("deliveryDate", "۱۴۰۴/۰۱/۰۱"),
            ("parties.0.customerRef", "C-1"),
            ("parties.1.role", "PARTY_ROLE_PRIMARY_DRIVER"),
            ("saleCategory", "SALE_CATEGORY_FLEET"),
        ] {
            assert_eq!(back.get(name), value, "{name}");
        }
    }

    #[test]
    fn warnings_and_findings_go_next_to_the_field_they_name() {
        let ro = repair_order();
        assert_eq!(
            form_field(ro, "repair_order.odometer_in_km"),
            "odometerInKm"
        );
        assert_eq!(form_field(ro, "correction.repair_order.vin"), "vin");
        assert_eq!(
            form_field(ro, "repair_order.job_lines[1].actual_hours"),
            "jobLines.1.actualHours"
        );
        assert_eq!(form_field(ro, "repair_order.job_lines"), RECORD);
        let customer = form_spec::by_slug("customer").unwrap();
        assert_eq!(
            form_field(customer, "customer.address.postal_code"),
            "address.postalCode"
        );
        assert_eq!(form_field(customer, "customer.national_id"), "nationalId");
    }
}
