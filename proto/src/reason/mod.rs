//! Reasons as data. A warning at entry or a hub finding says *which* explanation applies (a
//! [`Reason::code`], a key of the [`catalogue`]) and the values it cites, by name
//! ([`Reason::args`]); the Persian and English sentences staff and HQ read are rendered from
//! them where they are shown: the agent's screens, the verdict feed, the HQ API. So what is
//! stored and compared is small and language-free, and a sentence is written, and translated,
//! once, in the catalogue.
//!
//! A template cites an argument as `{name}`; `{field}` is the field the warning or finding is
//! on ([`Reason::render_on`]). An argument missing from a reason renders as
//! `{name}` (visible, never a panic), and a code this build does not know (a store written by a
//! newer hub) renders as the code with its arguments, so nothing stored is ever unreadable.

use serde::{Deserialize, Serialize};

mod catalogue;

pub use catalogue::TEMPLATES;

/// One value a reason cites.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Arg {
    /// Words or an identifier, shown as they are (a field name, a VIN, a dealer id, a month).
    Text(String),
    /// A count, a reading, a limit.
    Int(i64),
    /// A calendar date, as Unix milliseconds (shown `YYYY-MM-DD`).
    Day(i64),
    /// A moment, as Unix milliseconds (shown `YYYY-MM-DD HH:MM UTC`).
    Moment(i64),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Arg::Text(text.to_owned())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Arg::Text(text)
    }
}

impl From<&String> for Arg {
    fn from(text: &String) -> Self {
        Arg::Text(text.clone())
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(n: $t) -> Self {
                Arg::Int(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u64, usize);

impl Arg {
    /// The value as a reason shows it.
    pub fn render(&self) -> String {
        match self {
            Arg::Text(text) => text.clone(),
            Arg::Int(n) => n.to_string(),
            Arg::Day(ms) => day(*ms),
            Arg::Moment(ms) => moment(*ms),
        }
    }
}

/// The code of a [`Reason::written`].
pub const WRITTEN: &str = "old.written";

/// The language a reason is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fa,
    En,
}

/// One explanation in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub code: &'static str,
    pub en: &'static str,
    pub fa: &'static str,
}

/// Which explanation applies, and the values it cites.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reason {
    /// A key of the [`catalogue`] (`S01.delivery_before_sale`).
    pub code: String,
    /// The cited values, by the names the templates use.
    pub args: Vec<(String, Arg)>,
}

impl Reason {
    /// The reason `code` (a catalogue key) with no values yet.
    pub fn new(code: &str) -> Self {
        Reason {
            code: code.to_owned(),
            args: Vec::new(),
        }
    }

    /// A reason stored as its two sentences, before reasons were data (a hub store of format
    /// 4 or older): it renders them as they were written.
    pub fn written(en: String, fa: String) -> Self {
        Reason::new(WRITTEN).arg("en", en).arg("fa", fa)
    }

    /// Adds the value `name` cites.
    pub fn arg(mut self, name: &str, value: impl Into<Arg>) -> Self {
        self.args.push((name.to_owned(), value.into()));
        self
    }

    /// The value `name`, if the reason cites it.
    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The sentence in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        self.render_on(lang, None)
    }

    /// The sentence in `lang` for a warning or finding on `field`: a template's `{field}` is
    /// the field it is on, so the field is not stored twice.
    pub fn render_on(&self, lang: Lang, field: Option<&str>) -> String {
        if self.code == WRITTEN {
            let name = match lang {
                Lang::En => "en",
                Lang::Fa => "fa",
            };
            return self.get(name).map(Arg::render).unwrap_or_default();
        }
        match template(&self.code) {
            Some(t) => fill(
                match lang {
                    Lang::En => t.en,
                    Lang::Fa => t.fa,
                },
                self,
                field,
            ),
            None => self.unknown(),
        }
    }

    /// The Persian sentence.
    pub fn fa(&self) -> String {
        self.render(Lang::Fa)
    }

    /// The English sentence.
    pub fn en(&self) -> String {
        self.render(Lang::En)
    }

    /// The values as text, by name (the wire's `reason_args`).
    pub fn rendered_args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .map(|(name, value)| (name.clone(), value.render()))
            .collect()
    }

    fn unknown(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(name, value)| format!("{name}={}", value.render()))
            .collect();
        format!("{} ({})", self.code, args.join(", "))
    }
}

/// The catalogue's template for `code`.
pub fn template(code: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.code == code)
}

fn fill(template: &str, reason: &Reason, field: Option<&str>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match (reason.get(name), field) {
                    (Some(value), _) => out.push_str(&value.render()),
                    (None, Some(field)) if name == "field" => out.push_str(field),
                    (None, _) => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A date for a reason (`YYYY-MM-DD`, UTC).
pub fn day(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A moment for a reason (UTC, to the minute).
pub fn moment(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_renders_its_values_in_both_languages() {
        let r = Reason::new("O02.out_of_range")
            .arg("field", "repair_order.odometer_in_km")
            .arg("km", 3_000_000u32)
            .arg("max", 2_000_000u32);
        assert_eq!(
            r.en(),
            "repair_order.odometer_in_km is 3000000 km, outside 0..2000000 km; check the reading and send a correction"
        );
        assert!(r.fa().contains("repair_order.odometer_in_km") && r.fa().contains("3000000"));
    }

    #[test]
    fn a_missing_value_or_an_unknown_code_stays_readable() {
        let missing = Reason::new("O02.out_of_range").arg("field", "x");
        assert!(missing.en().contains("{km}"), "{}", missing.en());
        let unknown = Reason::new("Z99.from_a_newer_hub").arg("count", 3u32);
        assert_eq!(unknown.en(), "Z99.from_a_newer_hub (count=3)");
    }

    #[test]
    fn every_template_is_unique_and_cites_the_same_values_in_both_languages() {
        let names = |t: &str| {
            let mut out: Vec<String> = t
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(n, _)| n.to_owned()))
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let mut codes: Vec<&str> = TEMPLATES.iter().map(|t| t.code).collect();
        codes.sort();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "a code appears twice");
        for t in TEMPLATES {
            assert_eq!(names(t.en), names(t.fa), "{}", t.code);
            assert!(
                t.code.len() > 4 && t.code.as_bytes()[3] == b'.',
                "{}: a code is RULE.what",
                t.code
            );
        }
    }

    #[test]
    fn dates_and_moments_render_in_utc() {
        assert_eq!(day(1_795_000_000_000), "2026-11-18");
        assert_eq!(moment(0), "1970-01-01 00:00 UTC");
        assert_eq!(Arg::Day(-1).render(), "1969-12-31");
    }
}
