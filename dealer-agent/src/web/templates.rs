//! The pages' HTML: minijinja templates built into the binary (`templates/*.html`, with
//! auto-escaping), and the words on them in Persian (the default, right to left) and English.

use std::collections::BTreeMap;

use minijinja::Environment;

pub use crate::lang::Lang;

/// The cookie that remembers the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "hamgam_lang";

/// Every word on the pages: key, Persian, English.
const TEXTS: &[(&str, &str, &str)] = &[
    ("app", "همگام · نمایندگی", "Hamgam · dealership"),
    ("menu", "فهرست", "Menu"),
    ("dashboard", "پیشخوان", "Dashboard"),
    ("logout", "خروج", "Log out"),
    ("other_language", "English", "فارسی"),
    ("login", "ورود", "Log in"),
    ("staff_id", "شناسه‌ی کارکنان", "Staff id"),
    ("password", "رمز عبور", "Password"),
    ("sync", "همگام‌سازی با مرکز", "Sync with the hub"),
    ("pending", "در انتظار ارسال", "Waiting to be sent"),
    ("last_sync", "آخرین همگام‌سازی", "Last sync"),
    ("last_error", "آخرین خطا", "Last error"),
    ("certificate", "گواهی نمایندگی", "Dealer certificate"),
    ("today_records", "رکوردهای امروز", "Today's records"),
    ("seq", "شماره", "Seq"),
    ("kind", "نوع", "Kind"),
    ("time", "ساعت", "Time"),
    ("staff", "کارمند", "Staff"),
    ("state", "وضعیت", "State"),
    (
        "none_today",
        "امروز هنوز رکوردی ثبت نشده است.",
        "No records yet today.",
    ),
    ("needs_fixing", "نیازمند اصلاح", "Needs fixing"),
    ("nothing_to_fix", "چیزی برای اصلاح نیست.", "Nothing to fix."),
    ("date_example", "۱۴۰۵/۰۸/۲۷", "1405/08/27"),
    ("save", "ذخیره", "Save"),
    ("fix_title", "اصلاح رکورد", "Correct seq"),
    ("fix", "اصلاح", "Correct"),
    ("correction", "اصلاحیه", "Correction"),
    (
        "reason",
        "دلیل اصلاح (الزامی)",
        "Why it is corrected (required)",
    ),
    (
        "retract",
        "این رکورد به اشتباه ثبت شده است: پس گرفته شود",
        "This record was entered by mistake: withdraw it",
    ),
    ("save_correction", "ذخیره‌ی اصلاحیه", "Save the correction"),
    ("lookup", "جستجو", "Look up"),
    (
        "lookup_hint",
        "نام، تلفن همراه، کد ملی یا شماره‌ی شاسی",
        "Name, mobile, national ID or VIN",
    ),
    ("search", "جستجو", "Search"),
    ("customers", "مشتریان", "Customers"),
    ("name", "نام", "Name"),
    ("mobile", "تلفن همراه", "Mobile"),
    ("national_id", "کد ملی / شناسه", "National ID"),
    ("customer_ref", "کد مشتری", "Customer ref"),
    ("their_records", "رکوردها", "Records"),
    (
        "vin_history",
        "سابقه‌ی خودرو در این نمایندگی",
        "The vehicle's history at this branch",
    ),
    ("nothing_found", "چیزی پیدا نشد.", "Nothing found."),
    ("date", "تاریخ", "Date"),
    ("outcome", "نتیجه", "Outcome"),
    (
        "network_history",
        "سابقه‌ی خودرو در شبکه",
        "The vehicle's history in the network",
    ),
    ("model", "مدل", "Model"),
    ("delivered", "تحویل", "Delivered"),
    ("condition", "وضعیت", "Condition"),
    ("last_odometer", "آخرین کیلومتر", "Last odometer (km)"),
    ("odometer_suspect", "کیلومتر مشکوک", "odometer suspect"),
    ("dealer", "نمایندگی", "Dealer"),
    ("odometer_in", "کیلومتر ورود", "Odometer in"),
    ("pay_type", "نوع پرداخت", "Pay type"),
    ("labor_ops", "کدهای اجرت", "Labour ops"),
];

/// The words of `lang`, by key, for the templates' `t`.
pub fn texts(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    TEXTS
        .iter()
        .map(|(key, fa, en)| (*key, lang.pick(fa, en)))
        .collect()
}

/// The templates, parsed once.
pub fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("templates/base.html"))?;
    env.add_template("login.html", include_str!("templates/login.html"))?;
    env.add_template("dashboard.html", include_str!("templates/dashboard.html"))?;
    env.add_template("form.html", include_str!("templates/form.html"))?;
    env.add_template("lookup.html", include_str!("templates/lookup.html"))?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse_and_every_key_is_in_both_languages() {
        environment().unwrap();
        let (fa, en) = (texts(Lang::Fa), texts(Lang::En));
        assert_eq!(fa.len(), TEXTS.len(), "no key twice");
        assert_eq!(fa.keys().collect::<Vec<_>>(), en.keys().collect::<Vec<_>>());
        assert_eq!(Lang::default().dir(), "rtl");
        assert_eq!(Lang::Fa.digits("seq 12"), "seq ۱۲");
    }
}
