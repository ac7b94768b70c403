//! The console's words in Persian (the default, right to left) and English, and dates as each
//! reader writes them: Jalali in Tehran time with Persian digits, or Gregorian (UTC);
//! `?cal=gregorian` or `?cal=jalali` overrides the language's default.

use hamgam_proto::jalali::{to_persian_digits, JalaliDate};

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fa,
    En,
}

impl Lang {
    pub fn parse(text: Option<&str>) -> Lang {
        match text {
            Some("en") => Lang::En,
            _ => Lang::Fa,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
        }
    }

    pub fn dir(self) -> &'static str {
        match self {
            Lang::Fa => "rtl",
            Lang::En => "ltr",
        }
    }
}

/// Every word on the pages: key, Persian, English.
const WORDS: &[(&str, &str, &str)] = &[
    ("app", "همگام · کنسول ستاد", "Hamgam · HQ console"),
    ("overview", "خلاصه", "Overview"),
    (
        "funnel",
        "قیف چرخه‌ی عمر به تفکیک منطقه",
        "Lifecycle funnel by region",
    ),
    (
        "dealers",
        "اعتبار نمایندگی‌ها در برابر حجم",
        "Dealer reliability against volume",
    ),
    ("cohorts", "ماندگاری دسته‌های تحویل", "Cohort survival"),
    (
        "complaints",
        "زمان رسیدگی به شکایت‌ها",
        "Complaint resolution times",
    ),
    (
        "leads",
        "تبدیل سرنخ به فروش به تفکیک کانال",
        "Lead conversion by channel",
    ),
    ("service_due", "خودروهای نیازمند سرویس", "Service due"),
    ("customers", "مشتریان", "Customers"),
    ("customer", "مشتری", "Customer"),
    ("scorecard", "کارنامه‌ی نمایندگی", "Dealer scorecard"),
    ("as_of", "تا تاریخ", "As of"),
    ("all_facts", "همه‌ی داده‌ها", "All facts"),
    ("trusted_only", "فقط داده‌های معتبر", "Clean facts only"),
    ("other_language", "English", "فارسی"),
    ("region", "منطقه", "Region"),
    ("stage", "مرحله", "Stage"),
    ("dealer", "نمایندگی", "Dealer"),
    ("records", "رکوردها", "Records"),
    ("score", "امتیاز اعتبار", "Reliability score"),
    ("cohort", "دسته", "Cohort"),
    ("years", "سال پس از تحویل", "Years after delivery"),
    ("cases", "پرونده‌ها", "Cases"),
    ("open", "باز", "Open"),
    ("past_sla", "باز بیش از مهلت", "Open past SLA"),
    ("reopened", "بازگشایی‌شده", "Reopened"),
    (
        "median_days",
        "میانه‌ی روز تا رفع",
        "Median days to resolution",
    ),
    ("channel", "کانال", "Channel"),
    ("leads_n", "سرنخ‌ها", "Leads"),
    ("converted", "تبدیل‌شده", "Converted"),
    ("conversion", "نرخ تبدیل (٪)", "Conversion (%)"),
    ("vin", "شماره‌ی شاسی", "VIN"),
    ("model", "مدل", "Model"),
    ("due_by", "سررسید بر اساس", "Due by"),
    ("due_since", "سررسید از", "Due since"),
    ("days_overdue", "روز تأخیر", "Days overdue"),
    ("last_dealer", "آخرین نمایندگی", "Last dealer"),
    ("name", "نام", "Name"),
    ("field", "فیلد", "Field"),
    ("value", "مقدار", "Value"),
    ("source", "منبع", "Source"),
    ("vehicles", "خودروها", "Vehicles"),
    ("roles", "نقش‌ها", "Roles"),
    ("journey", "مسیر مشتری", "Customer journey"),
    ("time", "زمان", "Time"),
    ("kind", "نوع", "Kind"),
    ("record", "رکورد", "Record"),
    ("trust", "اعتبار", "Trust"),
    ("severity", "شدت", "Severity"),
    ("reason", "دلیل", "Reason"),
    (
        "score_window",
        "رکوردهای دریافت‌شده در پنجره‌ی امتیاز، روز:",
        "Records received in the score's window, days:",
    ),
    ("more", "ادامه با after=", "more with after="),
    ("days_since", "روز از قبلی", "Days since previous"),
    ("count", "تعداد", "Count"),
    ("none", "چیزی نیست.", "Nothing here."),
    ("trend", "روند امتیاز (۱۲ هفته)", "Score trend (12 weeks)"),
    ("volume", "رکوردها در پنجره", "Records in the window"),
    ("total", "کل", "Total"),
    ("last_seen", "آخرین تماس", "Last seen"),
    ("prospect", "بالقوه", "prospect"),
    ("new_owner", "مالک جدید", "new owner"),
    ("never_serviced", "بی‌سرویس", "never serviced"),
    ("active", "فعال", "active"),
    ("recently_lost", "تازه از دست رفته", "recently lost"),
    ("defected", "جداشده", "defected"),
    ("former", "پیشین", "former"),
];

/// The word for `key` in `lang` (the key itself when unknown, so a missing word shows).
pub fn word(lang: Lang, key: &str) -> String {
    WORDS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, fa, en)| match lang {
            Lang::Fa => (*fa).to_owned(),
            Lang::En => (*en).to_owned(),
        })
        .unwrap_or_else(|| key.to_owned())
}

/// Every word of `lang`, for the templates.
pub fn all(lang: Lang) -> std::collections::BTreeMap<&'static str, &'static str> {
    WORDS
        .iter()
        .map(|(k, fa, en)| (*k, if lang == Lang::Fa { *fa } else { *en }))
        .collect()
}

/// A date as the reader writes it: Jalali in Tehran time (Persian digits in Persian), or
/// Gregorian UTC.
pub fn date(ms: i64, lang: Lang, jalali: bool) -> String {
    if jalali {
        if let Ok(d) = JalaliDate::at_ms(ms) {
            let text = format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day());
            return match lang {
                Lang::Fa => to_persian_digits(&text),
                Lang::En => text,
            };
        }
    }
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

/// The UTC calendar day of `ms` (a report's `as_of`, the end of the day asked for) as the
/// reader writes it: the same day in the Jalali calendar, not the Tehran time of that instant.
pub fn day(ms: i64, lang: Lang, jalali: bool) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    if jalali {
        if let Ok(d) = JalaliDate::from_gregorian(t.year(), u8::from(t.month()), t.day()) {
            let text = format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day());
            return number(&text, lang);
        }
    }
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// A number as the reader writes it.
pub fn number(text: &str, lang: Lang) -> String {
    match lang {
        Lang::Fa => to_persian_digits(text),
        Lang::En => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_jalali_in_persian_and_gregorian_in_english() {
        // 2026-11-18 11:06 UTC is 27 Aban 1405 in Tehran.
        let ms = 1_795_000_000_000;
        assert_eq!(date(ms, Lang::Fa, true), "۱۴۰۵/۰۸/۲۷");
        assert_eq!(date(ms, Lang::En, true), "1405/08/27");
        assert_eq!(date(ms, Lang::En, false), "2026-11-18");
        // 20:45 UTC on 20 March 2026 is already 1 Farvardin 1405 in Tehran.
        let nowruz = 1_774_039_500_000;
        assert_eq!(date(nowruz, Lang::En, false), "2026-03-20");
        assert_eq!(date(nowruz, Lang::En, true), "1405/01/01");
        // The day asked for stays that day, though its last moment is the next day in Tehran.
        let end_of_day = 1_795_046_399_999; // 2026-11-18 23:59:59.999 UTC
        assert_eq!(day(end_of_day, Lang::Fa, true), "۱۴۰۵/۰۸/۲۷");
        assert_eq!(day(end_of_day, Lang::En, false), "2026-11-18");
    }

    #[test]
    fn every_word_is_in_both_languages() {
        for (key, fa, en) in WORDS {
            assert!(!fa.is_empty() && !en.is_empty(), "{key}");
        }
        assert_eq!(word(Lang::En, "no-such-word"), "no-such-word");
    }
}
