//! Value types both ends must judge identically, with their syntax checks: [`Vin`],
//! [`NationalId`] (code melli), [`CompanyId`] (shenase melli), [`Mobile`], [`PostalCode`].
//! Each parses raw input (any digit script, common separators) and says which rule of RULES.md
//! a bad value breaks. History-based checks are the hub's, not these.

use std::fmt;

use crate::text::normalize_digits;

/// Why a value is not valid, with the rule of RULES.md it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("V01: VIN must be 17 characters of 0-9 and A-Z without I, O, Q; got `{0}`")]
    VinSyntax(String),
    #[error("C01: national ID `{0}` fails its check digit")]
    NationalIdChecksum(String),
    #[error(
        "C02: national ID `{0}` is a placeholder (one digit repeated, or digits 4-9 all zero)"
    )]
    NationalIdPlaceholder(String),
    #[error("C01: national ID must be 10 digits (8 or 9 are left-padded); got `{0}`")]
    NationalIdSyntax(String),
    #[error("company national ID must be 11 digits with a valid check digit; got `{0}`")]
    CompanyId(String),
    #[error(
        "C03: `{0}` is not an Iranian mobile number (09xxxxxxxxx, +989xxxxxxxxx or 00989xxxxxxxxx)"
    )]
    Mobile(String),
    #[error("C06: postal code must be 10 digits; got `{0}`")]
    PostalCode(String),
}

impl ValueError {
    /// The RULES.md id this error stands for (company IDs have no rule of their own: R00).
    pub fn rule_id(&self) -> &'static str {
        match self {
            ValueError::VinSyntax(_) => "V01",
            ValueError::NationalIdChecksum(_) | ValueError::NationalIdSyntax(_) => "C01",
            ValueError::NationalIdPlaceholder(_) => "C02",
            ValueError::CompanyId(_) => "R00",
            ValueError::Mobile(_) => "C03",
            ValueError::PostalCode(_) => "C06",
        }
    }
}

/// Digits of `raw` in ASCII, with spaces, dashes, dots and parentheses removed.
fn digits_only(raw: &str) -> String {
    normalize_digits(raw)
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{200C}' | '\u{00A0}'))
        .collect()
}

/// A vehicle identification number that passed V01 (syntax). Model-year and check-digit checks
/// (V02, V03) are separate because they only flag, or reject only in some markets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vin(String);

const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

fn vin_value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => (c - b'0') as u32,
        b'A' | b'J' => 1,
        b'B' | b'K' | b'S' => 2,
        b'C' | b'L' | b'T' => 3,
        b'D' | b'M' | b'U' => 4,
        b'E' | b'N' | b'V' => 5,
        b'F' | b'W' => 6,
        b'G' | b'P' | b'X' => 7,
        b'H' | b'Y' => 8,
        b'R' | b'Z' => 9,
        _ => 0,
    }
}

impl Vin {
    /// Checks V01 after trimming, removing spaces and upper-casing.
    pub fn parse(raw: &str) -> Result<Vin, ValueError> {
        let vin: String = normalize_digits(raw)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let ok = vin.len() == 17
            && vin.bytes().all(|b| {
                (b.is_ascii_digit() || b.is_ascii_uppercase()) && !matches!(b, b'I' | b'O' | b'Q')
            });
        if ok {
            Ok(Vin(vin))
        } else {
            Err(ValueError::VinSyntax(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// World manufacturer identifier: the first three characters.
    pub fn wmi(&self) -> &str {
        &self.0[..3]
    }

    /// The check digit position 9 should hold.
    pub fn expected_check_digit(&self) -> char {
        let sum: u32 = self
            .0
            .bytes()
            .zip(VIN_WEIGHTS)
            .map(|(c, w)| vin_value(c) * w)
            .sum();
        match sum % 11 {
            10 => 'X',
            d => char::from_digit(d, 10).unwrap_or('0'),
        }
    }

    /// V03: position 9 holds the computed check digit.
    pub fn check_digit_ok(&self) -> bool {
        self.0.as_bytes()[8] as char == self.expected_check_digit()
    }

    /// V03 rejects (rather than flags) in markets that require the check digit: North America
    /// (first character 1-5) and China (L).
    pub fn check_digit_required(&self) -> bool {
        matches!(self.0.as_bytes()[0], b'1'..=b'5' | b'L')
    }

    /// Position 9 holds the filler `Z` of a European manufacturer (first character S-Z):
    /// ISO 3779 does not require a check digit there, so V03 has nothing to check.
    pub fn check_digit_is_filler(&self) -> bool {
        let b = self.0.as_bytes();
        matches!(b[0], b'S'..=b'Z') && b[8] == b'Z'
    }

    /// V02: position 10 is a model-year code (never U, Z or 0).
    pub fn model_year_code_ok(&self) -> bool {
        !matches!(self.0.as_bytes()[9], b'U' | b'Z' | b'0')
    }

    /// A VIN with `body` (17 characters) whose check digit is set to the computed value.
    pub fn with_check_digit(body: &str) -> Result<Vin, ValueError> {
        let mut vin = Vin::parse(body)?;
        let digit = vin.expected_check_digit();
        vin.0.replace_range(8..9, &digit.to_string());
        Ok(vin)
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's national ID (code melli) that passed C01 and C02.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NationalId(String);

impl NationalId {
    pub fn parse(raw: &str) -> Result<NationalId, ValueError> {
        let digits = digits_only(raw);
        if !(8..=10).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::NationalIdSyntax(raw.to_owned()));
        }
        let id = format!("{digits:0>10}");
        let d: Vec<u32> = id.bytes().map(|b| (b - b'0') as u32).collect();
        if d.iter().all(|x| *x == d[0]) || d[3..9].iter().all(|x| *x == 0) {
            return Err(ValueError::NationalIdPlaceholder(raw.to_owned()));
        }
        if national_id_check_digit(&id[..9]) != d[9] {
            return Err(ValueError::NationalIdChecksum(raw.to_owned()));
        }
        Ok(NationalId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check digit of a code melli's first nine digits.
pub fn national_id_check_digit(first_nine: &str) -> u32 {
    let sum: u32 = first_nine
        .bytes()
        .zip((2..=10).rev())
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    let r = sum % 11;
    if r < 2 {
        r
    } else {
        11 - r
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organisation's national ID (shenase melli, 11 digits, check digit on the last).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompanyId(String);

const COMPANY_WEIGHTS: [u32; 10] = [29, 27, 23, 19, 17, 29, 27, 23, 19, 17];

/// The check digit of a company ID's first ten digits.
pub fn company_id_check_digit(first_ten: &str) -> u32 {
    let d: Vec<u32> = first_ten.bytes().map(|b| (b - b'0') as u32).collect();
    let offset = d[9] + 2;
    let sum: u32 = d
        .iter()
        .zip(COMPANY_WEIGHTS)
        .map(|(x, w)| (x + offset) * w)
        .sum();
    let r = sum % 11;
    if r == 10 {
        0
    } else {
        r
    }
}

impl CompanyId {
    pub fn parse(raw: &str) -> Result<CompanyId, ValueError> {
        let digits = digits_only(raw);
        let ok = digits.len() == 11
            && digits.bytes().all(|b| b.is_ascii_digit())
            && company_id_check_digit(&digits[..10]) == (digits.as_bytes()[10] - b'0') as u32;
        if ok {
            Ok(CompanyId(digits))
        } else {
            Err(ValueError::CompanyId(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Iranian mobile number, kept in E.164 (`+989121234567`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mobile(String);

impl Mobile {
    /// Accepts `09xxxxxxxxx`, `+989xxxxxxxxx`, `00989xxxxxxxxx` and `989xxxxxxxxx`, in any digit
    /// script, with spaces, dashes or parentheses.
    pub fn parse(raw: &str) -> Result<Mobile, ValueError> {
        let digits = digits_only(raw);
        let national = if let Some(rest) = digits.strip_prefix("+98") {
            rest
        } else if let Some(rest) = digits.strip_prefix("0098") {
            rest
        } else if let Some(rest) = digits.strip_prefix("98").filter(|r| r.len() == 10) {
            rest
        } else {
            digits.strip_prefix('0').unwrap_or_default()
        };
        let ok = national.len() == 10
            && national.starts_with('9')
            && national.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Mobile(format!("+98{national}")))
        } else {
            Err(ValueError::Mobile(raw.to_owned()))
        }
    }

    /// E.164 form.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// The ten national digits (`9121234567`).
    pub fn national_digits(&self) -> &str {
        &self.0[3..]
    }

    /// True for numbers staff type when they do not know one (rule C04): `repeat` or more
    /// identical digits in a row, an ascending or descending run of six or more, or a
    /// well-known dummy.
    pub fn is_placeholder(&self, repeat: usize) -> bool {
        let d = self.national_digits().as_bytes();
        if KNOWN_DUMMY_MOBILES.contains(&self.national_digits()) {
            return true;
        }
        let (mut same, mut up, mut down) = (1, 1, 1);
        for i in 1..d.len() {
            same = if d[i] == d[i - 1] { same + 1 } else { 1 };
            up = if d[i] == d[i - 1] + 1 { up + 1 } else { 1 };
            down = if d[i] + 1 == d[i - 1] { down + 1 } else { 1 };
            if same >= repeat || up >= PLACEHOLDER_RUN || down >= PLACEHOLDER_RUN {
                return true;
            }
        }
        false
    }
}

/// An ascending or descending run of this many digits marks a placeholder mobile (C04).
pub const PLACEHOLDER_RUN: usize = 6;

/// Mobiles known to be typed when the customer's is not known (national digits).
pub const KNOWN_DUMMY_MOBILES: &[&str] = &["9121212121", "9123123123", "9129129129"];

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Iranian postal code: 10 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(raw: &str) -> Result<PostalCode, ValueError> {
        let digits = digits_only(raw);
        if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(PostalCode(digits))
        } else {
            Err(ValueError::PostalCode(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vin_checks() {
        // A well-known valid North American VIN.
        let vin = Vin::parse("1M8GDM9AXKP042788").unwrap();
        assert!(vin.check_digit_ok() && vin.check_digit_required() && vin.model_year_code_ok());
        assert_eq!(vin.wmi(), "1M8");
        assert!(Vin::parse("1M8GDM9AXKP04278").is_err()); // 16
        assert!(Vin::parse("1M8GDM9AXKP04278O").is_err()); // O
        let wrong = Vin::parse("1M8GDM9A1KP042788").unwrap();
        assert!(!wrong.check_digit_ok());
        // A European VIN with a filler in position 9: only flagged outside NA / China.
        let eu = Vin::parse("WVWZZZ1JZXW000001").unwrap();
        assert!(!eu.check_digit_required() && eu.check_digit_is_filler());
        // The same filler from an Iranian manufacturer is no exemption.
        assert!(!Vin::parse("NAAZZZ1JZXW000001")
            .unwrap()
            .check_digit_is_filler());
        assert!(
            Vin::parse("nAAp 1234567890123").is_ok(),
            "trimmed and upper-cased"
        );
        let zero_year = Vin::with_check_digit("NAAP12345067890AB").unwrap();
        assert!(!zero_year.model_year_code_ok() && zero_year.check_digit_ok());
    }

    #[test]
    fn national_id_checks() {
        // r = 0 and r = 1 keep the remainder as the check digit (the "below 2" case).
        for first_nine in ["001234567", "123456789", "008400640", "443322110"] {
            let check = national_id_check_digit(first_nine);
            let id = format!("{first_nine}{check}");
            assert!(NationalId::parse(&id).is_ok(), "{id}");
            let wrong = format!("{first_nine}{}", (check + 1) % 10);
            assert_eq!(
                NationalId::parse(&wrong).unwrap_err().rule_id(),
                "C01",
                "{wrong}"
            );
        }
        assert_eq!(
            NationalId::parse("1111111111").unwrap_err().rule_id(),
            "C02"
        );
        assert_eq!(
            NationalId::parse("1230000009").unwrap_err().rule_id(),
            "C02"
        );
        // 8-9 digit input is left-padded; Persian digits are fine.
        let nine = format!("01234567{}", national_id_check_digit("001234567"));
        assert_eq!(
            NationalId::parse(&nine).unwrap().as_str(),
            format!("0{nine}")
        );
        assert!(NationalId::parse("۰۰۱۲۳۴۵۶۷۸").is_ok() == NationalId::parse("0012345678").is_ok());
    }

    #[test]
    fn a_remainder_below_two_is_found_in_real_ids() {
        let mut below_two = 0;
        for n in 100_000_000u32..100_000_200 {
            let first_nine = format!("{n:09}");
            let sum: u32 = first_nine
                .bytes()
                .zip((2..=10).rev())
                .map(|(b, w)| (b - b'0') as u32 * w)
                .sum();
            if sum % 11 < 2 {
                below_two += 1;
                let id = format!("{first_nine}{}", sum % 11);
                assert!(NationalId::parse(&id).is_ok(), "{id}");
            }
        }
        assert!(below_two > 0);
    }

    #[test]
    fn company_id_checks() {
        let first_ten = "1010123456";
        let id = format!("{first_ten}{}", company_id_check_digit(first_ten));
        assert!(CompanyId::parse(&id).is_ok());
        let wrong = format!(
            "{first_ten}{}",
            (company_id_check_digit(first_ten) + 1) % 10
        );
        assert!(CompanyId::parse(&wrong).is_err());
    }

    #[test]
    fn every_written_form_of_a_mobile_is_one_number() {
        let forms = [
            "09121234567",
            "+989121234567",
            "00989121234567",
            "989121234567",
            "۰۹۱۲۱۲۳۴۵۶۷",
            "٠٩١٢١٢٣٤٥٦٧",
            "0912 123 4567",
            "(0912) 123-4567",
        ];
        for form in forms {
            assert_eq!(
                Mobile::parse(form).unwrap().e164(),
                "+989121234567",
                "{form}"
            );
        }
        for bad in ["02188776655", "0912123456", "+449121234567", "9121234567x"] {
            assert_eq!(Mobile::parse(bad).unwrap_err().rule_id(), "C03", "{bad}");
        }
    }

    #[test]
    fn postal_codes() {
        assert!(PostalCode::parse("1234567890").is_ok());
        assert!(PostalCode::parse("۱۲۳۴۵-۶۷۸۹۰").is_ok());
        assert_eq!(PostalCode::parse("123456789").unwrap_err().rule_id(), "C06");
    }
}
