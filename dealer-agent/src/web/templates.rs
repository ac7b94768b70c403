//! The pages' HTML: minijinja templates built into the binary (`templates/*.html`, with
//! auto-escaping), and the words on them in Persian (the default, right to left) and English.

use std::collections::BTreeMap;

use minijinja::Environment;

/// The language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fa,
    En,
}

/// The cookie that remembers the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "hamgam_lang";

impl Lang {
    /// `fa` or `en`; anything else is not a language here.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "fa" => Some(Lang::Fa),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
        }
    }

    /// The writing direction of the page.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Fa => "rtl",
            Lang::En => "ltr",
        }
    }

    /// The other language (the switch on every page).
    pub fn other(self) -> Self {
        match self {
            Lang::Fa => Lang::En,
            Lang::En => Lang::Fa,
        }
    }

    /// Digits as this language shows them (Persian digits in Persian).
    pub fn digits(self, text: &str) -> String {
        match self {
            Lang::Fa => crate::jalali::to_persian_digits(text),
            Lang::En => text.to_owned(),
        }
    }

    /// One of the two texts.
    pub fn pick<'a>(self, fa: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fa => fa,
            Lang::En => en,
        }
    }
}

/// Every word on the pages: key, Persian, English.
const TEXTS: &[(&str, &str, &str)] = &[
    ("app", "همگام · نمایندگی", "Hamgam · dealership"),
    ("menu", "فهرست", "Menu"),
    ("dashboard", "پیشخوان", "Dashboard"),
    ("new_repair_order", "پذیرش تعمیر تازه", "New repair order"),
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
    ("ro_number", "شماره‌ی پذیرش", "Repair order number"),
    ("customer_ref", "کد مشتری", "Customer ref"),
    ("vin", "شماره‌ی شاسی (VIN)", "VIN"),
    ("odometer", "کیلومتر ورود", "Odometer in (km)"),
    ("opened", "تاریخ پذیرش", "Opened on (Jalali)"),
    ("date_example", "۱۴۰۵/۰۸/۲۷", "1405/08/27"),
    ("pay_type", "نوع پرداخت", "Pay type"),
    ("job_lines", "کارها", "Job lines"),
    ("labor_op", "کد اجرت", "Labour op code"),
    ("complaint", "شرح ایراد", "Complaint"),
    ("hours", "ساعت کار", "Hours"),
    ("save", "ذخیره", "Save"),
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
    env.add_template(
        "repair_order.html",
        include_str!("templates/repair_order.html"),
    )?;
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
