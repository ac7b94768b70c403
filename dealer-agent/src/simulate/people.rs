//! Realistic Iranian customers: Persian names (written with the ی/ي, ک/ك and ZWNJ variants real
//! dealer systems hold), valid codes melli and company IDs, mobiles written in every form staff
//! type them in. Clean values never trip a rule by accident: placeholders are avoided.

use hamgam_proto::values::{company_id_check_digit, national_id_check_digit};
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const GIVEN_FEMALE: &[&str] = &[
    "مریم",
    "زهرا",
    "فاطمه",
    "سارا",
    "نرگس",
    "کیمیا",
    "الهام",
    "مهسا",
    "نیلوفر",
    "سمیه",
    "کبری",
    "شکوفه",
];
const GIVEN_MALE: &[&str] = &[
    "علی‌رضا",
    "محمد",
    "حسین",
    "رضا",
    "مهدی",
    "کاظم",
    "یوسف",
    "امیر‌حسین",
    "مصطفی",
    "کوروش",
    "یاسر",
    "بیژن",
];
const FAMILY: &[&str] = &[
    "کریمی",
    "رضایی",
    "محمدی",
    "حسینی",
    "کاظمی",
    "یزدانی",
    "کرمانی",
    "نیک‌پور",
    "شیرازی",
    "یگانه",
    "موسوی",
    "کیانی",
    "تهرانی",
    "میر‌کاظمی",
    "صادقی",
    "یعقوبی",
];
const COMPANY_WORDS: &[&str] = &[
    "پارس",
    "کیان",
    "یکتا",
    "ایران",
    "کوثر",
    "نیک",
    "آریا",
    "سپید",
];
const COMPANY_KINDS: &[&str] = &["بازرگانی", "حمل و نقل", "تاکسی‌رانی", "لیزینگ", "پیمانکاری"];
pub const CITIES: &[(&str, &str)] = &[
    ("تهران", "تهران"),
    ("اصفهان", "اصفهان"),
    ("خراسان رضوی", "مشهد"),
    ("فارس", "شیراز"),
    ("آذربایجان شرقی", "تبریز"),
    ("کرمان", "کرمان"),
];

/// A person or an organisation of the simulated network, as they really are.
#[derive(Debug, Clone)]
pub struct Customer {
    pub index: usize,
    pub organization: bool,
    pub given_name: String,
    pub family_name: String,
    pub organization_name: String,
    /// Code melli for persons, company ID for organisations.
    pub national_id: String,
    /// Ten national digits, `9xxxxxxxxx`.
    pub mobile: String,
    pub postal_code: String,
    pub province: String,
    pub city: String,
}

/// A valid, non-placeholder code melli.
pub fn national_id(rng: &mut ChaCha8Rng) -> String {
    loop {
        let first_nine: String = (0..9)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let id = format!("{first_nine}{}", national_id_check_digit(&first_nine));
        if hamgam_proto::values::NationalId::parse(&id).is_ok() {
            return id;
        }
    }
}

/// A valid company national ID (11 digits).
pub fn company_id(rng: &mut ChaCha8Rng) -> String {
    let first_ten: String = std::iter::once('1')
        .chain((0..9).map(|_| char::from(b'0' + rng.random_range(0..10u8))))
        .collect();
    format!("{first_ten}{}", company_id_check_digit(&first_ten))
}

/// True for numbers staff type when they do not know one: 7+ identical digits, long
/// ascending/descending runs, well-known dummies (rule C04).
pub fn looks_like_placeholder(national_digits: &str) -> bool {
    hamgam_proto::values::Mobile::parse(&format!("0{national_digits}"))
        .is_ok_and(|m| m.is_placeholder(7))
}

/// A valid mobile's ten national digits, never a placeholder.
pub fn mobile(rng: &mut ChaCha8Rng) -> String {
    const PREFIXES: &[&str] = &["912", "935", "901", "919", "936", "921", "990", "917"];
    loop {
        let prefix = PREFIXES.choose(rng).copied().unwrap_or("912");
        let rest: String = (0..7)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let number = format!("{prefix}{rest}");
        if !looks_like_placeholder(&number) {
            return number;
        }
    }
}

/// A postal code: 10 digits, first not zero.
pub fn postal_code(rng: &mut ChaCha8Rng) -> String {
    let first = rng.random_range(1..10u8);
    std::iter::once(char::from(b'0' + first))
        .chain((0..9).map(|_| char::from(b'0' + rng.random_range(0..10u8))))
        .collect()
}

/// A new customer; about one in seven is an organisation.
pub fn customer(index: usize, rng: &mut ChaCha8Rng) -> Customer {
    let organization = rng.random_bool(0.15);
    let (province, city) = *CITIES.choose(rng).unwrap_or(&CITIES[0]);
    let (given_name, family_name, organization_name, national_id) = if organization {
        let name = format!(
            "شرکت {} {} {}",
            COMPANY_KINDS.choose(rng).copied().unwrap_or("بازرگانی"),
            COMPANY_WORDS.choose(rng).copied().unwrap_or("پارس"),
            COMPANY_WORDS.choose(rng).copied().unwrap_or("کیان"),
        );
        (String::new(), String::new(), name, company_id(rng))
    } else {
        let given = if rng.random_bool(0.5) {
            GIVEN_FEMALE
        } else {
            GIVEN_MALE
        };
        (
            given.choose(rng).copied().unwrap_or("مریم").to_owned(),
            FAMILY.choose(rng).copied().unwrap_or("کریمی").to_owned(),
            String::new(),
            national_id(rng),
        )
    };
    Customer {
        index,
        organization,
        given_name,
        family_name,
        organization_name,
        national_id,
        mobile: mobile(rng),
        postal_code: postal_code(rng),
        province: province.to_owned(),
        city: city.to_owned(),
    }
}

/// The same text as another dealer's staff might type it: Arabic ي / ك instead of ی / ک, a ZWNJ
/// written as a space or the other way round. Normalises to the same text.
pub fn spelling_variant(text: &str, rng: &mut ChaCha8Rng) -> String {
    let arabic_letters = rng.random_bool(0.4);
    let zwnj_as_space = rng.random_bool(0.5);
    text.chars()
        .map(|c| match c {
            'ی' if arabic_letters => 'ي',
            'ک' if arabic_letters => 'ك',
            '\u{200C}' if zwnj_as_space => ' ',
            c => c,
        })
        .collect()
}

/// Digits as staff type them: ASCII, Persian or Arabic-Indic.
pub fn digits_variant(digits: &str, rng: &mut ChaCha8Rng) -> String {
    let script = rng.random_range(0..3u8);
    digits
        .chars()
        .map(|c| match (script, c.to_digit(10)) {
            (1, Some(d)) => char::from_u32('۰' as u32 + d).unwrap_or(c),
            (2, Some(d)) => char::from_u32('٠' as u32 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// A mobile (ten national digits) written in one of the forms staff use.
pub fn mobile_variant(national_digits: &str, rng: &mut ChaCha8Rng) -> String {
    let written = match rng.random_range(0..5u8) {
        0 => format!("0{national_digits}"),
        1 => format!("+98{national_digits}"),
        2 => format!("0098{national_digits}"),
        3 => format!(
            "0{} {} {}",
            &national_digits[..3],
            &national_digits[3..6],
            &national_digits[6..]
        ),
        _ => format!("0{national_digits}"),
    };
    digits_variant(&written, rng)
}
