//! The reliability rules of `RULES.md`: the catalogue in force (ids, severities, what each
//! checks, its thresholds), and the rules themselves.
//!
//! - [`record`]: rules that read one record (and the hub clock, the session's clock offset and
//!   the dealer registry): V01-V03, C01-C04, C06, O02, S01, S03, T01, T02, RO2, and the
//!   registry parts of C05 and Q01. Judged once, when the record (or its correction) arrives.
//! - [`history`]: rules that read a group of records (a VIN's history, the customers sharing a
//!   mobile or a national ID, a repair-order number, a dealer's month of deliveries or
//!   surveys). A group's findings are a function of the *set* of its members, never of the
//!   order they arrived in, which is what makes the verdicts order independent: the engine
//!   ([`crate::judge`]) re-judges every group a new record joins.
//! - [`group_state`]: the small state the large groups (a dealer's month, a mobile, a national
//!   ID) are judged from incrementally, with [`history::judge_group`] as the reference.
//! - [`registry`]: what HQ's dealer registry says about each dealership (its company ID and
//!   staff), which S03, C05 and Q01 need.
//! - [`score`]: the dealer reliability score.
//!
//! Every finding names the field and says in Persian and English what is wrong and what to do.

pub mod group_state;
pub mod history;
pub mod record;
pub mod registry;
pub mod score;

#[cfg(test)]
mod cases;

use serde::{Deserialize, Serialize};

use crate::domain::{Finding, Reason, Severity};

pub use crate::model::groups::Scope;

/// One rule of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec {
    pub id: &'static str,
    /// The severity of its findings (V03: `Reject` where the market requires the check digit,
    /// `Flag` elsewhere; see [`RuleSpec::severity_text`]).
    pub severity: Severity,
    pub scope: Scope,
    pub check: &'static str,
}

impl RuleSpec {
    /// The severity as the catalogue states it.
    pub fn severity_text(&self) -> &'static str {
        match self.id {
            "V03" => "reject (WMI 1-5, L) / flag",
            "C05" | "Q01" => "flag",
            _ => match self.severity {
                Severity::Flag => "flag",
                Severity::FlagHigh => "flag, high",
                Severity::RejectField => "reject the field",
                Severity::Reject => "reject",
            },
        }
    }
}

macro_rules! rule {
    ($id:literal, $sev:ident, $scope:ident, $check:literal) => {
        RuleSpec {
            id: $id,
            severity: Severity::$sev,
            scope: Scope::$scope,
            check: $check,
        }
    };
}

/// The rules that say a vehicle's odometer readings cannot be trusted (rollback, impossible
/// values, impossible distance per day).
pub const ODOMETER_RULES: &[&str] = &["O01", "O02", "O03"];

/// Every rule the hub applies, in catalogue order.
pub const CATALOGUE: &[RuleSpec] = &[
    rule!("R00", Reject, Record, "record malformed: required field missing, payload does not decode, unknown schema version, record id reused, correction of an unknown record"),
    rule!("R01", Reject, Session, "record's dealer is not the dealer the client certificate proves (the whole batch is refused and a security event logged)"),
    rule!("V01", Reject, Record, "VIN not 17 characters of 0-9, A-Z without I, O, Q"),
    rule!("V02", Flag, Record, "VIN position 10 not a valid model-year code (never U, Z, 0)"),
    rule!("V03", Reject, Record, "VIN check digit (position 9) wrong: rejected where the WMI's market requires it (first character 1-5: North America; L: China), flagged elsewhere; a European WMI (S-Z) with the filler Z in position 9 has no check digit to check"),
    rule!("C01", RejectField, Record, "national ID (code melli) checksum wrong; 8-9 digit input is left-padded with zeros"),
    rule!("C02", RejectField, Record, "national ID all one digit, or digits 4-9 all zero"),
    rule!("C03", RejectField, Record, "mobile not an Iranian mobile after normalisation (09 + 9 digits, +98 9.., 0098 9..)"),
    rule!("C04", Flag, Record, "placeholder mobile: a run of identical digits, an ascending/descending run of 6, a known dummy"),
    rule!("C05", Flag, Mobile, "one mobile on more than the allowed number of unrelated customers, or a customer's mobile or national ID belongs to a staff member of the dealer"),
    rule!("C06", RejectField, Record, "postal code not 10 digits"),
    rule!("C07", Flag, NationalId, "one national ID with different normalised names across dealers: every record of it is flagged, and the ID links none of them by itself (each pair waits in the identity-review queue until HQ links or keeps them apart)"),
    rule!("O01", FlagHigh, Vin, "odometer lower than an earlier reading of the same VIN (by event date), with no recorded odometer replacement between (a reading on the other side of a replacement is never compared; see Odometer replacements)"),
    rule!("O02", Reject, Record, "odometer outside 0..1,000,000 km, or odometer out < odometer in on one repair order"),
    rule!("O03", Flag, Vin, "implied distance per day since the previous reading of the VIN on the same odometer above the limit"),
    rule!("S01", Reject, Record, "delivery date before sale date, or after the time the record was made"),
    rule!("S02", FlagHigh, Vin, "a VIN delivered new to a retail customer twice"),
    rule!("S03", Flag, Record, "retail sale to the dealer itself or one of its staff"),
    rule!("S04", Flag, DealerMonth, "deliveries bunched in the last days of a month well above the dealer's rate in the rest of that month"),
    rule!("T01", Flag, Record, "event time in the future of the hub clock (after the measured agent clock offset; none for imported history) by more than the tolerance; for imported history also a source time later than that of the dealer's next record from the same source by more than the tolerance (a source clock set ahead)"),
    rule!("T02", Flag, Session, "agent clock offset beyond the limit at connect: every record of that session is flagged"),
    rule!("RO1", Flag, Vin, "customer-pay or warranty repair order opened before the vehicle's delivery date"),
    rule!("RO2", Reject, Record, "repair order completed before it was opened"),
    rule!("RO3", Flag, RoNumber, "repair-order number reused by the same dealer for a different VIN or opening date"),
    rule!("W01", Flag, Vin, "warranty repair order outside the warranty window (months or km from delivery; see Calendar months)"),
    rule!("W02", Flag, Vin, "same VIN, same labour operation and part again within the window, at any dealer"),
    rule!("W03", Flag, Vin, "same VIN at several dealers within the window"),
    rule!("Q01", Flag, RoNumber, "survey entered by a staff member (entered_by_staff_id set, even for a customer's answer taken on paper: HQ can dismiss), answered from a staff member's mobile, within minutes of the visit closing, or a month of one dealer's surveys uniformly top-scored"),
    rule!("H01", Flag, Customer, "the record disagrees with a value HQ confirmed when it settled a conflict (a customer's national ID, company ID or name; the dealer that sold a VIN): correct the record to the confirmed value"),
];

/// The catalogue entry of `id`.
pub fn spec(id: &str) -> Option<&'static RuleSpec> {
    CATALOGUE.iter().find(|r| r.id == id)
}

/// A finding of rule `id` on `field`, at the rule's catalogue severity, for `reason` (a code
/// of the reason catalogue, `hamgam_proto::reason`, with the values it cites).
pub fn finding(id: &'static str, field: &str, reason: Reason) -> Finding {
    let severity = spec(id).map(|r| r.severity).unwrap_or(Severity::Flag);
    finding_at(id, severity, field, reason)
}

/// A finding at an explicit severity (V03 depends on the market).
pub fn finding_at(id: &'static str, severity: Severity, field: &str, reason: Reason) -> Finding {
    Finding {
        rule_id: id.into(),
        severity,
        field: field.into(),
        reason,
    }
}

/// Rule thresholds (the values marked * in RULES.md, and the few this hub adds), from the
/// `[rules]` table of the hub's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// C04: this many identical digits in a row make a placeholder mobile.
    pub placeholder_repeat_digits: usize,
    /// C05: a mobile on more than this many unrelated customers is flagged.
    pub shared_mobile_max_customers: usize,
    /// O03: km per day above this since the previous reading is flagged.
    pub max_km_per_day: u32,
    /// S04: the last days of a month that are compared with the rest of it.
    pub bunching_tail_days: u32,
    /// S04: the tail's daily rate must exceed the rest of the month's by this factor ...
    pub bunching_ratio: f64,
    /// S04: ... and hold at least this many deliveries.
    pub bunching_min_deliveries: usize,
    /// T01: minutes an event may lie in the future of the hub clock.
    pub future_tolerance_minutes: i64,
    /// T02: minutes of agent clock offset at connect that flag a session.
    pub clock_offset_max_minutes: i64,
    /// W01: warranty window in months from delivery ...
    pub warranty_months: u32,
    /// ... and in km.
    pub warranty_km: u32,
    /// W02: days within which the same job and part on a VIN is a repeat.
    pub repeat_job_days: i64,
    /// W03: this many dealers ...
    pub dealer_hopping_dealers: usize,
    /// ... within this many days.
    pub dealer_hopping_days: i64,
    /// Q01: minutes after the visit closes before a survey is believable.
    pub survey_min_minutes_after_visit: i64,
    /// Q01: a month of one dealer's surveys with at least this many ...
    pub survey_uniform_min_count: usize,
    /// ... of which at least this share is top-scored (CSAT 5, NPS 9-10) is flagged.
    pub survey_uniform_top_share: f64,
    /// Reliability score: the sliding window in days ...
    pub score_window_days: i64,
    /// ... and the weight of the network average, in records (the Beta prior).
    pub score_prior_records: f64,
    /// Identity: two customer records on one mobile are one customer when both their given
    /// and family names (or organisation names) are at least this similar (0..1) ...
    pub identity_link_similarity: f64,
    /// ... and are listed for HQ's identity review when at least this similar.
    pub identity_review_similarity: f64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            placeholder_repeat_digits: 7,
            shared_mobile_max_customers: 3,
            max_km_per_day: 1500,
            bunching_tail_days: 3,
            bunching_ratio: 2.5,
            bunching_min_deliveries: 10,
            future_tolerance_minutes: 10,
            clock_offset_max_minutes: 5,
            warranty_months: 24,
            warranty_km: 60_000,
            repeat_job_days: 30,
            dealer_hopping_dealers: 3,
            dealer_hopping_days: 60,
            survey_min_minutes_after_visit: 10,
            survey_uniform_min_count: 30,
            survey_uniform_top_share: 0.95,
            score_window_days: 90,
            score_prior_records: 50.0,
            identity_link_similarity: 0.9,
            identity_review_similarity: 0.7,
        }
    }
}

impl RuleConfig {
    /// The thresholds each rule uses, as `(rule, key, value)`, for `central rules`.
    pub fn thresholds(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            (
                "C04",
                "placeholder_repeat_digits",
                self.placeholder_repeat_digits.to_string(),
            ),
            (
                "C05",
                "shared_mobile_max_customers",
                self.shared_mobile_max_customers.to_string(),
            ),
            ("O03", "max_km_per_day", self.max_km_per_day.to_string()),
            (
                "S04",
                "bunching_tail_days",
                self.bunching_tail_days.to_string(),
            ),
            ("S04", "bunching_ratio", self.bunching_ratio.to_string()),
            (
                "S04",
                "bunching_min_deliveries",
                self.bunching_min_deliveries.to_string(),
            ),
            (
                "T01",
                "future_tolerance_minutes",
                self.future_tolerance_minutes.to_string(),
            ),
            (
                "T02",
                "clock_offset_max_minutes",
                self.clock_offset_max_minutes.to_string(),
            ),
            ("W01", "warranty_months", self.warranty_months.to_string()),
            ("W01", "warranty_km", self.warranty_km.to_string()),
            ("W02", "repeat_job_days", self.repeat_job_days.to_string()),
            (
                "W03",
                "dealer_hopping_dealers",
                self.dealer_hopping_dealers.to_string(),
            ),
            (
                "W03",
                "dealer_hopping_days",
                self.dealer_hopping_days.to_string(),
            ),
            (
                "Q01",
                "survey_min_minutes_after_visit",
                self.survey_min_minutes_after_visit.to_string(),
            ),
            (
                "Q01",
                "survey_uniform_min_count",
                self.survey_uniform_min_count.to_string(),
            ),
            (
                "Q01",
                "survey_uniform_top_share",
                self.survey_uniform_top_share.to_string(),
            ),
            (
                "score",
                "score_window_days",
                self.score_window_days.to_string(),
            ),
            (
                "score",
                "score_prior_records",
                self.score_prior_records.to_string(),
            ),
            (
                "identity",
                "identity_link_similarity",
                self.identity_link_similarity.to_string(),
            ),
            (
                "identity",
                "identity_review_similarity",
                self.identity_review_similarity.to_string(),
            ),
        ]
    }

    /// Refuses thresholds no rule can work with, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            (
                "placeholder_repeat_digits",
                self.placeholder_repeat_digits as f64,
            ),
            ("max_km_per_day", self.max_km_per_day as f64),
            ("bunching_tail_days", self.bunching_tail_days as f64),
            ("bunching_ratio", self.bunching_ratio),
            ("warranty_months", self.warranty_months as f64),
            ("repeat_job_days", self.repeat_job_days as f64),
            ("dealer_hopping_dealers", self.dealer_hopping_dealers as f64),
            ("dealer_hopping_days", self.dealer_hopping_days as f64),
            ("score_window_days", self.score_window_days as f64),
        ];
        if let Some((key, value)) = positive.iter().find(|(_, v)| v.is_nan() || *v <= 0.0) {
            return Err(format!("[rules] {key} must be above 0, not {value}"));
        }
        if !(0.0..=1.0).contains(&self.survey_uniform_top_share) {
            return Err(format!(
                "[rules] survey_uniform_top_share must be between 0 and 1, not {}",
                self.survey_uniform_top_share
            ));
        }
        let (link, review) = (
            self.identity_link_similarity,
            self.identity_review_similarity,
        );
        if !(0.0..=1.0).contains(&link) || !(0.0..=1.0).contains(&review) || review > link {
            return Err(format!(
                "[rules] identity_review_similarity ({review}) and identity_link_similarity ({link}) must lie between 0 and 1, the review one not above the link one"
            ));
        }
        if self.bunching_tail_days >= 28 {
            return Err("[rules] bunching_tail_days must be below 28".into());
        }
        Ok(())
    }
}

/// The catalogue in force as a Markdown document: `central rules --markdown` prints it and
/// `docs/rules.md` is this text (a test keeps the two equal).
pub fn catalogue_markdown(config: &RuleConfig) -> String {
    let mut out = String::from(
        "# Rules in force\n\n\
         Generated by `central rules --markdown` from the code (`central/src/rules/`); a test \
         (`docs_rules_md_is_the_catalogue_in_force`) fails when this file and the code drift. \
         The catalogue is `../shared/RULES.md`; thresholds are the `[rules]` table of the hub \
         config, defaults below.\n\n\
         | id | severity | reads | check | thresholds |\n|---|---|---|---|---|\n",
    );
    let thresholds = config.thresholds();
    for rule in CATALOGUE {
        let own: Vec<String> = thresholds
            .iter()
            .filter(|(id, ..)| *id == rule.id)
            .map(|(_, key, value)| format!("`{key}` = {value}"))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {:?} | {} | {} |\n",
            rule.id,
            rule.severity_text(),
            rule.scope,
            rule.check,
            own.join(", ")
        ));
    }
    out.push_str(
        "\n## Calendar months\n\n\
         \"N months after a date\" (W01's `warranty_months`) is the same day of the month N \
         calendar months later, or that month's last day when it is shorter: 24 months after \
         2024-02-29 is 2026-02-28, 6 months after 2026-08-31 is 2027-02-28, 6 months after \
         2027-08-31 is 2028-02-29. The window covers every moment up to the end of that day \
         (UTC): a warranty order opened on the anniversary is inside, one on the day after is \
         outside. The hub, the simulator and the tests read this one definition \
         (`hamgam_proto::calendar`).\n\n\
         ## Odometer replacements\n\n\
         A recorded `OdometerReplacement` separates a VIN's readings into those taken on the old \
         odometer and those on the new one; O01 and O03 compare readings on one side only. A \
         reading on another day than `replaced_on` is placed by its day. A reading on that day is \
         placed by `replaced_at_ms` when the workshop recorded it (opened before it: the old \
         odometer), else by which of `reading_before_km` and `reading_after_km` it is nearer (a \
         tie counts as the new odometer). So a replacement made in the afternoon separates that \
         morning's reading from the next visit's.\n\n\
         ## Imported history: when a record was made\n\n\
         A record imported from a dealer-management system carries `Record.origin`: the source \
         system, its record id and, when the source says, its own time of making the record \
         (`created_at_ms`). \"The time the record was made\" is then that time, not the agent's \
         `recorded_at_ms` (the night of the import): S01 compares a delivery date with it, the \
         reliability score counts the record on its day (so seven years imported tonight do not \
         all fall in the 90-day window, and the trend compares like with like), and the merge \
         orders values by it. The hub's receive time still counts for sync health. T01 cannot \
         compare a time the source gave with the hub clock at sync, so for imported history it \
         reads the dealer's own order: a record whose source time is more than \
         `future_tolerance_minutes` later than that of the dealer's next record from the same \
         source was made while the source's clock ran ahead (the flag is on that record, field \
         `origin.created_at_ms`). An import must therefore keep the source's order of making \
         (docs/import.md). Event times in an imported record are still compared with the hub \
         clock, without the agent's offset (they are the source's times, not the agent's).\n",
    );
    out.push_str("\n## Reliability score\n\n");
    for (_, key, value) in thresholds.iter().filter(|(id, ..)| *id == "score") {
        out.push_str(&format!("- `{key}` = {value}\n"));
    }
    out.push_str(
        "\nPer dealer, over the window: each record weighs its worst finding (flag 1, high flag or \
         rejected field 2, rejected 3, out of 3); the weighted rate is shrunk towards the network \
         average with `score_prior_records` records of prior weight, and shown as \
         100 x (1 - rate), with the score 30 days earlier (trend) and the top three rules.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason code the hub's sources cite (`Reason::new("...")`, an R00 `Invalid`) is in
    /// the catalogue: a mistyped code compiles, and would render as the bare code.
    #[test]
    fn every_reason_code_the_hub_cites_is_in_the_catalogue() {
        let sources = [
            include_str!("record.rs"),
            include_str!("history/mod.rs"),
            include_str!("history/vehicle.rs"),
            include_str!("history/people.rs"),
            include_str!("history/visits.rs"),
            include_str!("../judge/mod.rs"),
            include_str!("../judge/work.rs"),
            include_str!("../judge/groups.rs"),
            include_str!("../wire.rs"),
            include_str!("../merge/resolve.rs"),
            include_str!("../../../proto/src/entry.rs"),
        ];
        let mut cited = 0;
        for source in sources {
            for opening in ["Reason::new(\"", "Problem::Invalid(\"", "invalid(field, \""] {
                for (at, _) in source.match_indices(opening) {
                    let rest = &source[at + opening.len()..];
                    let code = &rest[..rest.find('"').unwrap_or(0)];
                    assert!(
                        hamgam_proto::reason::template(code).is_some(),
                        "{code} is cited but not in the catalogue"
                    );
                    cited += 1;
                }
            }
        }
        assert!(
            cited > 50,
            "only {cited} codes found: the scan no longer sees the sources"
        );
    }

    #[test]
    fn docs_rules_md_is_the_catalogue_in_force() {
        let doc = include_str!("../../../docs/rules.md");
        assert_eq!(
            doc,
            catalogue_markdown(&RuleConfig::default()),
            "docs/rules.md drifted from the code: run `cargo run -p hamgam-central -- rules --markdown > docs/rules.md`"
        );
    }

    #[test]
    fn every_rule_of_rules_md_is_in_the_catalogue_once() {
        let rules_md = [
            "R00", "R01", "V01", "V02", "V03", "C01", "C02", "C03", "C04", "C05", "C06", "C07",
            "O01", "O02", "O03", "S01", "S02", "S03", "S04", "T01", "T02", "RO1", "RO2", "RO3",
            "W01", "W02", "W03", "Q01",
        ];
        // The hub's own addition: H01, HQ's confirmed value sent down as a correction.
        let hub_rules = ["H01"];
        let ids: Vec<&str> = CATALOGUE.iter().map(|r| r.id).collect();
        assert_eq!(ids, [&rules_md[..], &hub_rules[..]].concat());
    }
}
