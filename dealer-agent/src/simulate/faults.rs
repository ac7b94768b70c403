//! Which faults the simulator can inject, at what rate, and the ground truth it writes down.
//!
//! Every rule of RULES.md that a dealer's own records can break has a rate. Two cannot be made
//! by an honest agent and are left to the tests that need them: **R01** (another dealer's id:
//! the agent stamps its own; the security tests forge such records) and **T02** (a skewed agent
//! clock at connect; a property of the session, not of a record).
//!
//! Labelling conventions (what the rule engine must find; see `docs/simulator.md`):
//! - a rule about one record labels that record;
//! - a rule about a pair where one is "later" (O01, O03, S02, RO3, W02) labels the later record
//!   by event date;
//! - a rule about a group (C05: the customers sharing a number, C07: the records naming one
//!   national ID differently, W03: the repair orders at three dealers, S04: the bunched
//!   deliveries) labels every record of the group.

use std::collections::BTreeMap;

/// Rules the simulator injects.
pub const INJECTABLE_RULES: &[&str] = &[
    "R00", "V01", "V02", "V03", "C01", "C02", "C03", "C04", "C05", "C06", "C07", "O01", "O02",
    "O03", "S01", "S02", "S03", "S04", "T01", "RO1", "RO2", "RO3", "W01", "W02", "W03", "Q01",
];

/// Per-rule injection rates (probability per eligible record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultRates {
    rates: BTreeMap<String, f64>,
}

impl FaultRates {
    /// No faults: a clean network.
    pub fn none() -> Self {
        Self::default()
    }

    /// The same rate for every injectable rule.
    pub fn uniform(rate: f64) -> Self {
        FaultRates {
            rates: INJECTABLE_RULES
                .iter()
                .map(|r| (r.to_string(), rate))
                .collect(),
        }
    }

    /// Sets one rule's rate.
    pub fn with(mut self, rule: &str, rate: f64) -> Result<Self, String> {
        if !INJECTABLE_RULES.contains(&rule) {
            return Err(format!(
                "`{rule}` is not a rule the simulator injects; known: {}",
                INJECTABLE_RULES.join(" ")
            ));
        }
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "rate for {rule} must be between 0 and 1, not {rate}"
            ));
        }
        self.rates.insert(rule.to_owned(), rate);
        Ok(self)
    }

    /// Parses `all=0.02,V01=0.1,C05=0` (later entries win).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut rates = FaultRates::none();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (rule, rate) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not RULE=RATE"))?;
            let rate: f64 = rate
                .parse()
                .map_err(|_| format!("`{rate}` in `{part}` is not a number"))?;
            if rule == "all" {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(format!("rate must be between 0 and 1, not {rate}"));
                }
                rates = FaultRates::uniform(rate);
            } else {
                rates = rates.with(rule, rate)?;
            }
        }
        Ok(rates)
    }

    pub fn rate(&self, rule: &str) -> f64 {
        self.rates.get(rule).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_clear_errors() {
        let rates = FaultRates::parse("all=0.02, V01=0.5").unwrap();
        assert_eq!(rates.rate("V01"), 0.5);
        assert_eq!(rates.rate("C01"), 0.02);
        assert!(FaultRates::parse("X99=0.1").unwrap_err().contains("V01"));
        assert!(FaultRates::parse("V01=2").is_err());
        assert!(FaultRates::parse("V01").is_err());
    }
}
