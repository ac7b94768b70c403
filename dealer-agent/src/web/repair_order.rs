//! The repair-order form: the fields of the proto's `RepairOrder` that matter most at the
//! service desk, the opening date typed as a Jalali date with any digits, the pay type by its
//! Persian name, and a few job lines. It saves through the agent's own capture code
//! ([`crate::capture::save_checked`], as `dealer-agent record` and the local API do), as the
//! logged-in staff member (never a form field), and shows the entry checks' warnings next to
//! the fields they concern: the record is saved all the same.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::record::v1::{JobLine, PayType, RepairOrder};
use hamgam_proto::text::normalize_digits;
use serde::Serialize;

use super::server::{self, LoggedIn, Shared, WebState};
use super::templates::Lang;
use super::{csrf, field, LangQuery};
use crate::jalali::JalaliDate;

/// Job-line rows on the form.
pub const JOB_ROWS: usize = 3;

/// The pay types offered: form value, proto value, Persian and English names.
const PAY_TYPES: &[(&str, PayType, &str, &str)] = &[
    (
        "customer",
        PayType::Customer,
        "آزاد (به هزینه‌ی مشتری)",
        "customer pay",
    ),
    ("warranty", PayType::Warranty, "گارانتی", "warranty"),
    ("internal", PayType::Internal, "داخلی", "internal"),
    (
        "goodwill",
        PayType::Goodwill,
        "مساعدت (حسن نیت)",
        "goodwill",
    ),
    ("campaign", PayType::Campaign, "کمپین (فراخوان)", "campaign"),
    (
        "pre_delivery",
        PayType::PreDelivery,
        "پیش از تحویل",
        "pre-delivery",
    ),
];

/// What was typed, as the form shows it again.
#[derive(Debug, Default, Serialize)]
struct Typed {
    ro_number: String,
    owner_ref: String,
    vin: String,
    odometer: String,
    opened: String,
    pay_type: String,
    lines: Vec<TypedLine>,
}

#[derive(Debug, Default, Serialize)]
struct TypedLine {
    op: String,
    complaint: String,
    hours: String,
}

/// Messages by form field (`_record` for the record as a whole).
type FieldMessages = BTreeMap<String, Vec<String>>;

impl Typed {
    fn from_fields(fields: &[(String, String)]) -> Self {
        let get = |name: &str| field(fields, name).unwrap_or("").trim().to_owned();
        Typed {
            ro_number: get("ro_number"),
            owner_ref: get("owner_ref"),
            vin: get("vin"),
            odometer: get("odometer"),
            opened: get("opened"),
            pay_type: get("pay_type"),
            lines: (1..=JOB_ROWS)
                .map(|i| TypedLine {
                    op: get(&format!("job_op_{i}")),
                    complaint: get(&format!("job_complaint_{i}")),
                    hours: get(&format!("job_hours_{i}")),
                })
                .collect(),
        }
    }

    /// The repair order typed, or what cannot be read, by field.
    fn parse(&self, lang: Lang) -> Result<RepairOrder, FieldMessages> {
        let mut problems = FieldMessages::new();
        let mut order = RepairOrder {
            ro_number: self.ro_number.clone(),
            owner_ref: self.owner_ref.clone(),
            vin: normalize_digits(&self.vin).to_uppercase(),
            ..Default::default()
        };
        if !self.odometer.is_empty() {
            match normalize_digits(&self.odometer)
                .replace([',', '٬'], "")
                .parse::<u32>()
            {
                Ok(km) => order.odometer_in_km = km,
                Err(_) => note(
                    &mut problems,
                    "odometer",
                    lang.pick(
                        "کیلومتر باید عدد صحیح باشد",
                        "the odometer must be a whole number",
                    ),
                ),
            }
        }
        if !self.opened.is_empty() {
            match JalaliDate::parse(&self.opened).and_then(JalaliDate::start_ms) {
                Ok(ms) => order.opened_at_ms = ms,
                Err(e) => note(&mut problems, "opened", &e.to_string()),
            }
        }
        if !self.pay_type.is_empty() {
            match PAY_TYPES.iter().find(|(value, ..)| *value == self.pay_type) {
                Some((_, pay, ..)) => order.set_pay_type(*pay),
                None => note(
                    &mut problems,
                    "pay_type",
                    lang.pick(
                        "نوع پرداخت را از فهرست برگزینید",
                        "choose the pay type from the list",
                    ),
                ),
            }
        }
        for (i, line) in self.lines.iter().enumerate() {
            if line.op.is_empty() && line.complaint.is_empty() && line.hours.is_empty() {
                continue;
            }
            let hours = normalize_digits(&line.hours).replace('٫', ".");
            let actual_hours = match hours.parse::<f64>() {
                Ok(h) if h.is_finite() && h >= 0.0 => h,
                _ if hours.is_empty() => 0.0,
                _ => {
                    let name = format!("job_hours_{}", i + 1);
                    note(
                        &mut problems,
                        &name,
                        lang.pick(
                            "ساعت کار باید عدد باشد (مانند ۱٫۵)",
                            "hours must be a number (like 1.5)",
                        ),
                    );
                    0.0
                }
            };
            order.job_lines.push(JobLine {
                line_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                labor_op_code: line.op.clone(),
                complaint: line.complaint.clone(),
                actual_hours,
                ..Default::default()
            });
        }
        if problems.is_empty() {
            Ok(order)
        } else {
            Err(problems)
        }
    }
}

fn note(problems: &mut FieldMessages, name: &str, message: &str) {
    problems
        .entry(name.to_owned())
        .or_default()
        .push(message.to_owned());
}

/// The form field a warning of the entry checks belongs next to.
fn form_field(warning_field: &str) -> &'static str {
    match warning_field.trim_start_matches("repair_order.") {
        "ro_number" => "ro_number",
        "owner_ref" => "owner_ref",
        "vin" => "vin",
        "odometer_in_km" => "odometer",
        "opened_at_ms" => "opened",
        "pay_type" => "pay_type",
        _ => "_record",
    }
}

/// The entry checks' warnings by form field, in the page's language.
fn warnings_by_field(warnings: &[Warning], lang: Lang) -> FieldMessages {
    let mut out = FieldMessages::new();
    for w in warnings {
        let reason = lang.pick(&w.reason_fa, &w.reason_en);
        note(
            &mut out,
            form_field(&w.field),
            &format!("{}: {reason}", w.rule_id),
        );
    }
    out
}

/// GET /repair-order: an empty form, opened today.
pub(crate) async fn form_page(
    State(state): State<Shared>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, lang_cookie) = server::language(&headers, query.lang.as_deref());
    let who = match server::logged_in(&state, &headers) {
        Ok(who) => who,
        Err(to_login) => return to_login,
    };
    let mut typed = Typed::from_fields(&[]);
    if let Ok(today) = JalaliDate::at_ms(state.now_ms()) {
        typed.opened = lang.digits(&today.to_string());
    }
    let cookies: Vec<String> = lang_cookie.into_iter().collect();
    let page = FormPage {
        typed: &typed,
        saved: None,
        error: None,
        messages: FieldMessages::new(),
    };
    show(&state, lang, &who, page, StatusCode::OK, &cookies)
}

/// POST /repair-order: saves the repair order as the logged-in staff member.
pub(crate) async fn submit(
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
    let typed = Typed::from_fields(&fields);
    let order = match typed.parse(lang) {
        Ok(order) => order,
        Err(messages) => {
            let error = lang.pick(
                "ذخیره نشد: موارد مشخص‌شده را درست کنید.",
                "Not saved: correct the fields marked.",
            );
            let page = FormPage {
                typed: &typed,
                saved: None,
                error: Some(error.to_owned()),
                messages,
            };
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
    let store = state.store.clone();
    let staff_id = who.account.staff_id.clone();
    let saved = tokio::task::spawn_blocking(move || {
        crate::capture::save_checked(&store, &staff_id, Payload::RepairOrder(order))
    })
    .await;
    match saved {
        Ok(Ok((saved, warnings))) => {
            let seq = lang.digits(&saved.seq.to_string());
            let text = match lang {
                Lang::Fa => format!("ذخیره شد (شماره‌ی {seq})؛ هنگام اتصال به مرکز ارسال می‌شود."),
                Lang::En => format!("Saved as seq {seq}; it is sent when the hub is reachable."),
            };
            let messages = warnings_by_field(&warnings, lang);
            let page = FormPage {
                typed: &typed,
                saved: Some(text),
                error: None,
                messages,
            };
            show(&state, lang, &who, page, StatusCode::OK, &[])
        }
        Ok(Err(e)) => {
            let error = match lang {
                Lang::Fa => e.message_fa().unwrap_or_else(|| format!("ذخیره نشد: {e}")),
                Lang::En => format!("Not saved: {e}"),
            };
            let page = FormPage {
                typed: &typed,
                saved: None,
                error: Some(error),
                messages: FieldMessages::new(),
            };
            show(
                &state,
                lang,
                &who,
                page,
                StatusCode::INTERNAL_SERVER_ERROR,
                &[],
            )
        }
        Err(e) => server::failure(lang, &e.to_string()),
    }
}

/// What the form page shows besides the fields.
struct FormPage<'a> {
    typed: &'a Typed,
    saved: Option<String>,
    error: Option<String>,
    messages: FieldMessages,
}

fn show(
    state: &WebState,
    lang: Lang,
    who: &LoggedIn,
    page: FormPage<'_>,
    status: StatusCode,
    cookies: &[String],
) -> Response {
    let pay_types: Vec<serde_json::Value> = PAY_TYPES
        .iter()
        .map(|(value, _, fa, en)| serde_json::json!({ "value": value, "label": lang.pick(fa, en) }))
        .collect();
    let context = server::merged(
        server::page_context(lang, Some(who)),
        serde_json::json!({
            "form": page.typed,
            "saved": page.saved,
            "error": page.error,
            "warnings": page.messages,
            "pay_types": pay_types,
        }),
    );
    server::render(state, lang, "repair_order.html", context, status, cookies)
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

    #[test]
    fn a_form_with_persian_digits_makes_the_repair_order() {
        let order = typed(&[
            ("ro_number", "RO-1"),
            ("vin", "naan01ce5kk12345۶"),
            ("odometer", "۴۲٬۰۰۰"),
            ("opened", "۱۴۰۵/۰۸/۲۷"),
            ("pay_type", "warranty"),
            ("job_op_1", "EN-100"),
            ("job_hours_1", "۱٫۵"),
        ])
        .parse(Lang::Fa)
        .unwrap();
        assert_eq!(order.vin, "NAAN01CE5KK123456");
        assert_eq!(order.odometer_in_km, 42_000);
        // 27 Aban 1405 = 18 November 2026; Tehran midnight is 20:30 UTC the day before.
        assert_eq!(order.opened_at_ms, 1_794_947_400_000);
        assert_eq!(order.pay_type(), PayType::Warranty);
        assert_eq!(order.job_lines.len(), 1);
        assert_eq!(
            (
                order.job_lines[0].line_number,
                order.job_lines[0].actual_hours
            ),
            (1, 1.5)
        );
    }

    #[test]
    fn what_cannot_be_read_is_named_by_field() {
        let problems = typed(&[
            ("opened", "2026/11/18"),
            ("odometer", "many"),
            ("pay_type", "x"),
            ("job_op_2", "A"),
            ("job_hours_2", "?"),
        ])
        .parse(Lang::En)
        .unwrap_err();
        let names: Vec<&str> = problems.keys().map(String::as_str).collect();
        assert_eq!(names, ["job_hours_2", "odometer", "opened", "pay_type"]);
        assert!(
            problems["opened"][0].contains("not a Gregorian"),
            "{problems:?}"
        );
        assert_eq!(form_field("repair_order.opened_at_ms"), "opened");
        assert_eq!(form_field("repair_order.job_lines"), "_record");
    }
}
