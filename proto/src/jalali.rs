//! Dates as staff at a dealership read and type them: the Solar Hijri (Jalali) calendar, Tehran
//! local time, Persian digits. Storage and the wire stay Gregorian and UTC; this module only
//! converts at the edge (the staff screen, DMS imports, the HQ console).
//!
//! The calendar arithmetic is ICU4X's (`icu_calendar`'s Persian calendar) and the time zone is
//! the IANA database's `Asia/Tehran` as `jiff` bundles it (so a branch PC without tzdata still
//! gets it right, summer time until 1401 included): nothing here is hand-written arithmetic.
//! Digits typed in Persian (۰-۹), Arabic-Indic (٠-٩) or Latin form are all read.

use icu_calendar::cal::{Iso, Persian};
use icu_calendar::Date;

/// The IANA time zone of every dealership: Iran's.
pub const LOCAL_TIME_ZONE: &str = "Asia/Tehran";

/// Persian names of the Jalali months, Farvardin first.
pub const MONTHS_FA: [&str; 12] = [
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
];

/// A day of the Jalali calendar (always one the calendar has: made by [`JalaliDate::new`],
/// [`JalaliDate::parse`] or a conversion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct JalaliDate {
    year: i32,
    month: u8,
    day: u8,
}

/// Why a typed date is not a day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error(
        "«{0}» تاریخ نیست؛ به شکل ۱۴۰۵/۰۹/۱۱ بنویسید (`{0}` is not a date: write it as 1405/09/11)"
    )]
    Shape(String),
    #[error("سال {0} خارج از بازه‌ی ۱۳۰۰ تا ۱۴۹۹ است (year {0} is outside 1300-1499: a Jalali year, not a Gregorian one)")]
    Year(i32),
    #[error("{year}/{month}/{day} روز تقویم نیست: {reason} ({year}/{month}/{day} is not a day of the calendar)")]
    NoSuchDay {
        year: i32,
        month: u8,
        day: u8,
        reason: String,
    },
    #[error("{0} is outside the time range a record can carry")]
    OutOfRange(String),
}

impl JalaliDate {
    pub fn year(self) -> i32 {
        self.year
    }

    /// 1 (Farvardin) to 12 (Esfand).
    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// The day, if the calendar has it (Esfand 30 only in a leap year).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DateError> {
        if !(1300..=1499).contains(&year) {
            return Err(DateError::Year(year));
        }
        let no_such_day = |reason: &str| DateError::NoSuchDay {
            year,
            month,
            day,
            reason: reason.to_owned(),
        };
        if !(1..=12).contains(&month) {
            return Err(no_such_day("ماه از ۱ تا ۱۲ است"));
        }
        let first =
            Date::try_new_persian(year, month, 1).map_err(|e| no_such_day(&e.to_string()))?;
        if day == 0 || day > first.days_in_month() {
            return Err(no_such_day(&format!(
                "{} این سال {} روز دارد",
                MONTHS_FA[usize::from(month - 1)],
                to_persian_digits(&first.days_in_month().to_string())
            )));
        }
        Ok(JalaliDate { year, month, day })
    }

    /// The Jalali day of a Gregorian one.
    pub fn from_gregorian(year: i32, month: u8, day: u8) -> Result<Self, DateError> {
        let iso = Date::try_new_iso(year, month, day)
            .map_err(|e| DateError::OutOfRange(format!("{year}-{month}-{day}: {e}")))?;
        let persian = iso.to_calendar(Persian);
        Ok(JalaliDate {
            year: persian.year().extended_year(),
            month: persian.month().ordinal,
            day: persian.day_of_month().0,
        })
    }

    /// The Gregorian day (year, month, day).
    pub fn to_gregorian(self) -> (i32, u8, u8) {
        // `new` checked the day, so the calendar has it.
        let persian = Date::try_new_persian(self.year, self.month, self.day)
            .unwrap_or_else(|_| unreachable!("a JalaliDate is a valid day"));
        let iso = persian.to_calendar(Iso);
        (
            iso.year().extended_year(),
            iso.month().ordinal,
            iso.day_of_month().0,
        )
    }

    /// Whether the year has 366 days (Esfand 30).
    pub fn is_leap_year(year: i32) -> bool {
        Date::try_new_persian(year, 1, 1)
            .map(|d| d.is_in_leap_year())
            .unwrap_or(false)
    }

    /// Reads a date as staff type it: `1405/09/11`, `۱۴۰۵/۹/۱۱`, `1405-09-11`, `٨/٩/١٤٠٥` is
    /// not accepted (year first, always).
    pub fn parse(typed: &str) -> Result<Self, DateError> {
        let latin = crate::text::normalize_digits(typed.trim());
        let parts: Vec<&str> = latin
            .split(['/', '-', '.', ' ', '\u{066b}', '\u{2215}'])
            .filter(|p| !p.is_empty())
            .collect();
        let shape = || DateError::Shape(typed.trim().to_owned());
        let [year, month, day] = parts.as_slice() else {
            return Err(shape());
        };
        if year.len() != 4 || month.len() > 2 || day.len() > 2 {
            return Err(shape());
        }
        let number = |p: &str| p.parse::<i32>().map_err(|_| shape());
        let (year, month, day) = (number(year)?, number(month)?, number(day)?);
        let month = u8::try_from(month).map_err(|_| shape())?;
        let day = u8::try_from(day).map_err(|_| shape())?;
        JalaliDate::new(year, month, day)
    }

    /// `۱۴۰۵/۰۹/۱۱`.
    pub fn to_persian(self) -> String {
        to_persian_digits(&self.to_string())
    }

    /// `۱۱ آذر ۱۴۰۵`.
    pub fn to_persian_words(self) -> String {
        format!(
            "{} {} {}",
            to_persian_digits(&self.day.to_string()),
            MONTHS_FA[usize::from(self.month - 1)],
            to_persian_digits(&self.year.to_string())
        )
    }

    /// The Jalali day in Tehran at the instant `ms` (Unix milliseconds, UTC).
    pub fn at_ms(ms: i64) -> Result<Self, DateError> {
        let out = || DateError::OutOfRange(format!("{ms} ms"));
        let zoned = jiff::Timestamp::from_millisecond(ms)
            .map_err(|_| out())?
            .to_zoned(tehran());
        let date = zoned.date();
        JalaliDate::from_gregorian(
            i32::from(date.year()),
            u8::try_from(date.month()).map_err(|_| out())?,
            u8::try_from(date.day()).map_err(|_| out())?,
        )
    }

    /// The Jalali day and the time of day (hour, minute) in Tehran at `ms`.
    pub fn with_time_at_ms(ms: i64) -> Result<(Self, u8, u8), DateError> {
        let out = || DateError::OutOfRange(format!("{ms} ms"));
        let zoned = jiff::Timestamp::from_millisecond(ms)
            .map_err(|_| out())?
            .to_zoned(tehran());
        let hour = u8::try_from(zoned.hour()).map_err(|_| out())?;
        let minute = u8::try_from(zoned.minute()).map_err(|_| out())?;
        Ok((JalaliDate::at_ms(ms)?, hour, minute))
    }

    /// The instant (Unix ms, UTC) of `hour:minute:second` on this day in Tehran (an imported
    /// record's creation time).
    pub fn at_time_ms(self, hour: u8, minute: u8, second: u8) -> Result<i64, DateError> {
        let (y, m, d) = self.to_gregorian();
        let out = |e: jiff::Error| DateError::OutOfRange(format!("{self} {hour}:{minute}: {e}"));
        let year = i16::try_from(y).map_err(|_| DateError::OutOfRange(self.to_string()))?;
        let civil = jiff::civil::DateTime::new(
            year,
            m as i8,
            d as i8,
            i8::try_from(hour).unwrap_or(i8::MAX),
            i8::try_from(minute).unwrap_or(i8::MAX),
            i8::try_from(second).unwrap_or(i8::MAX),
            0,
        )
        .map_err(out)?;
        Ok(civil
            .to_zoned(tehran())
            .map_err(out)?
            .timestamp()
            .as_millisecond())
    }

    /// The instant (Unix ms, UTC) this day starts in Tehran: what a date typed at a dealership
    /// means on the wire.
    pub fn start_ms(self) -> Result<i64, DateError> {
        let (y, m, d) = self.to_gregorian();
        let out = |e: jiff::Error| DateError::OutOfRange(format!("{self}: {e}"));
        let date = jiff::civil::Date::new(
            i16::try_from(y).map_err(|_| DateError::OutOfRange(self.to_string()))?,
            m as i8,
            d as i8,
        )
        .map_err(out)?;
        Ok(date
            .to_zoned(tehran())
            .map_err(out)?
            .timestamp()
            .as_millisecond())
    }
}

impl std::fmt::Display for JalaliDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

fn tehran() -> jiff::tz::TimeZone {
    // Bundled in the binary (jiff's tzdb-bundle-always): always there.
    jiff::tz::TimeZone::get(LOCAL_TIME_ZONE).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// ASCII digits as Persian ones (everything else as it is).
pub fn to_persian_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => char::from_u32('۰' as u32 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nowruz (1 Farvardin) in Gregorian, from the Iranian calendar's published tables
    /// (Iran Calendar Center; the Gregorian dates of Nowruz 1390-1410).
    const NOWRUZ: &[(i32, (i32, u8, u8))] = &[
        (1390, (2011, 3, 21)),
        (1391, (2012, 3, 20)),
        (1392, (2013, 3, 21)),
        (1393, (2014, 3, 21)),
        (1394, (2015, 3, 21)),
        (1395, (2016, 3, 20)),
        (1396, (2017, 3, 21)),
        (1397, (2018, 3, 21)),
        (1398, (2019, 3, 21)),
        (1399, (2020, 3, 20)),
        (1400, (2021, 3, 21)),
        (1401, (2022, 3, 21)),
        (1402, (2023, 3, 21)),
        (1403, (2024, 3, 20)),
        (1404, (2025, 3, 21)),
        (1405, (2026, 3, 21)),
    ];

    #[test]
    fn nowruz_falls_on_the_published_days() {
        for &(year, gregorian) in NOWRUZ {
            let nowruz = JalaliDate::new(year, 1, 1).unwrap();
            assert_eq!(nowruz.to_gregorian(), gregorian, "Nowruz {year}");
            let (y, m, d) = gregorian;
            assert_eq!(JalaliDate::from_gregorian(y, m, d).unwrap(), nowruz);
        }
    }

    #[test]
    fn esfand_has_30_days_in_leap_years_only() {
        // Published leap years (kabise) of the period: 1391, 1395, 1399, 1403, 1408.
        for year in 1390..=1410 {
            let leap = [1391, 1395, 1399, 1403, 1408].contains(&year);
            assert_eq!(JalaliDate::is_leap_year(year), leap, "{year}");
            assert_eq!(
                JalaliDate::new(year, 12, 30).is_ok(),
                leap,
                "Esfand 30, {year}"
            );
            JalaliDate::new(year, 12, 29).unwrap();
            // The day after the last of Esfand is Nowruz.
            let last = JalaliDate::new(year, 12, if leap { 30 } else { 29 }).unwrap();
            let (y, m, d) = last.to_gregorian();
            let next = jiff::civil::Date::new(y as i16, m as i8, d as i8)
                .unwrap()
                .tomorrow()
                .unwrap();
            assert_eq!(
                JalaliDate::from_gregorian(
                    next.year().into(),
                    next.month() as u8,
                    next.day() as u8
                )
                .unwrap(),
                JalaliDate::new(year + 1, 1, 1).unwrap()
            );
        }
        let err = JalaliDate::new(1404, 12, 30).unwrap_err().to_string();
        assert!(err.contains("اسفند") && err.contains("۲۹"), "{err}");
    }

    #[test]
    fn month_ends_are_31_30_and_29_or_30() {
        for month in 1..=12u8 {
            let days = match month {
                1..=6 => 31,
                7..=11 => 30,
                _ => 29,
            };
            assert!(JalaliDate::new(1404, month, days).is_ok(), "{month}");
            assert!(JalaliDate::new(1404, month, days + 1).is_err(), "{month}");
        }
        // A published pair: 30 Shahrivar 1404 is 21 September 2025; 1 Mehr is the 23rd.
        assert_eq!(
            JalaliDate::new(1404, 6, 31).unwrap().to_gregorian(),
            (2025, 9, 22)
        );
        assert_eq!(
            JalaliDate::new(1404, 7, 1).unwrap().to_gregorian(),
            (2025, 9, 23)
        );
    }

    #[test]
    fn every_day_of_1390_to_1420_goes_there_and_back() {
        let mut day = jiff::civil::Date::new(2011, 3, 21).unwrap();
        let mut previous: Option<JalaliDate> = None;
        let mut count = 0;
        loop {
            let jalali =
                JalaliDate::from_gregorian(day.year().into(), day.month() as u8, day.day() as u8)
                    .unwrap();
            if jalali.year() > 1420 {
                break;
            }
            assert_eq!(
                jalali.to_gregorian(),
                (i32::from(day.year()), day.month() as u8, day.day() as u8)
            );
            assert_eq!(JalaliDate::parse(&jalali.to_persian()).unwrap(), jalali);
            if let Some(p) = previous {
                assert!(jalali > p, "{p} then {jalali}");
            }
            previous = Some(jalali);
            count += 1;
            day = day.tomorrow().unwrap();
        }
        // 31 years, 8 of them leap (1391, 95, 99, 1403, 08, 12, 16, 20).
        assert_eq!(count, 31 * 365 + 8);
    }

    #[test]
    fn dates_typed_with_any_digits_are_read_and_nonsense_is_refused_in_words() {
        let day = JalaliDate::new(1405, 9, 11).unwrap();
        for typed in [
            "1405/09/11",
            "۱۴۰۵/۰۹/۱۱",
            "١٤٠٥/٠٩/١١",
            "1405-9-11",
            " ۱۴۰۵ ۹ ۱۱ ",
            "1405.09.11",
        ] {
            assert_eq!(JalaliDate::parse(typed).unwrap(), day, "{typed}");
        }
        assert_eq!(day.to_persian(), "۱۴۰۵/۰۹/۱۱");
        assert_eq!(day.to_persian_words(), "۱۱ آذر ۱۴۰۵");
        assert!(matches!(
            JalaliDate::parse("11/09/1405"),
            Err(DateError::Shape(_))
        ));
        assert!(matches!(
            JalaliDate::parse("1405/09"),
            Err(DateError::Shape(_))
        ));
        assert!(matches!(
            JalaliDate::parse("hello"),
            Err(DateError::Shape(_))
        ));
        // A Gregorian year typed where a Jalali one belongs: said so, not stored as 1403 AD.
        let err = JalaliDate::parse("2026/12/02").unwrap_err();
        assert_eq!(err, DateError::Year(2026));
        assert!(err.to_string().contains("not a Gregorian"), "{err}");
        assert!(matches!(
            JalaliDate::parse("1405/13/01"),
            Err(DateError::NoSuchDay { .. })
        ));
    }

    #[test]
    fn a_day_starts_at_tehran_midnight_with_and_without_summer_time() {
        // 11 Azar 1405 = 2 Dec 2026, UTC+3:30: starts 1 Dec 20:30 UTC.
        let day = JalaliDate::new(1405, 9, 11).unwrap();
        assert_eq!(day.start_ms().unwrap(), 1_796_157_000_000);
        assert_eq!(JalaliDate::at_ms(1_796_157_000_000).unwrap(), day);
        assert_eq!(
            JalaliDate::with_time_at_ms(1_796_157_000_000 + 90 * 60_000).unwrap(),
            (day, 1, 30)
        );
        assert_eq!(
            JalaliDate::at_ms(1_796_157_000_000 - 1).unwrap(),
            JalaliDate::new(1405, 9, 10).unwrap()
        );
        // 1 Tir 1400 = 22 June 2021, summer time (UTC+4:30) still in force: 21 June 19:30 UTC.
        let summer = JalaliDate::new(1400, 4, 1).unwrap();
        assert_eq!(summer.start_ms().unwrap(), 1_624_303_800_000);
        // 1 Tir 1402: no more summer time since 1401 (UTC+3:30): 21 June 2023 20:30 UTC.
        let after = JalaliDate::new(1402, 4, 1).unwrap();
        assert_eq!(after.start_ms().unwrap(), 1_687_379_400_000);
    }
}
