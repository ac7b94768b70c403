//! Vehicles of the simulated network: 17-character VINs with correct check digits and model-year
//! codes, Iranian and foreign manufacturers, models and years.

use hamgam_proto::values::Vin;
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A model a dealer network sells: WMI, code, name.
pub const MODELS: &[(&str, &str, &str)] = &[
    ("NAA", "TRA", "Tara"),      // Iran Khodro
    ("NAA", "DNP", "Dena Plus"), // Iran Khodro
    ("NAS", "SHN", "Shahin"),    // SAIPA
    ("NAS", "KWK", "Quick"),     // SAIPA
    ("NAP", "ARS", "Arisun"),    // Pars Khodro
    ("KMH", "ACC", "Accent"),    // Hyundai, Korea
    ("JTD", "CRL", "Corolla"),   // Toyota, Japan
    ("LVS", "FCS", "Focus"),     // China market: check digit required
    ("WVW", "GLF", "Golf"),      // Volkswagen, Germany
];

/// The VIN model-year code (position 10) for a year (the 30-year cycle of ISO 3779).
pub fn model_year_code(year: u32) -> char {
    const CODES: &[u8; 30] = b"ABCDEFGHJKLMNPRSTVWXY123456789";
    CODES[((year as i64 - 1980).rem_euclid(30)) as usize] as char
}

const SERIAL_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

/// A valid VIN for `wmi` and `year`, with its check digit set. Model codes must be VIN
/// characters (no I, O, Q): the table above is checked by a test.
pub fn vin(rng: &mut ChaCha8Rng, wmi: &str, model_code: &str, year: u32) -> String {
    for _ in 0..64 {
        let serial: String = (0..6)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let plant = char::from(SERIAL_CHARS[rng.random_range(10..SERIAL_CHARS.len())]);
        // WMI(3) + VDS(5) + check(1) + year(1) + plant(1) + serial(6)
        let vds = format!("{}{}", &model_code[..3], "A1");
        let body = format!("{wmi}{vds}0{}{plant}{serial}", model_year_code(year));
        if let Ok(vin) = Vin::with_check_digit(&body) {
            if vin.model_year_code_ok() {
                return vin.as_str().to_owned();
            }
        }
    }
    panic!("model code {wmi}/{model_code} cannot make a valid VIN: fix the MODELS table")
}

/// A model picked at random, Iranian makes more often.
pub fn pick_model(rng: &mut ChaCha8Rng) -> (&'static str, &'static str, &'static str) {
    if rng.random_bool(0.75) {
        *MODELS[..5].choose(rng).unwrap_or(&MODELS[0])
    } else {
        *MODELS[5..].choose(rng).unwrap_or(&MODELS[5])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_vins_are_valid_in_every_market() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (wmi, code, _) in MODELS {
            for year in [2019, 2024, 2026] {
                let v = Vin::parse(&vin(&mut rng, wmi, code, year)).unwrap();
                assert!(v.check_digit_ok() && v.model_year_code_ok(), "{v}");
            }
        }
        assert_eq!(model_year_code(2026), 'T');
        assert_eq!(model_year_code(2010), 'A');
    }
}
