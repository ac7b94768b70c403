//! The hub's merge: one customer across the network, one history per vehicle, and the
//! disagreements HQ must settle. Everything here is a *projection* of the stored record log and
//! HQ's decisions: [`resolve::Resolver`] keeps it up to date batch by batch, and
//! `central admin rebuild` ([`crate::rebuild`]) recomputes it from the log and compares
//! [`digest`]s.
//!
//! - [`identity`]: which dealer customer records are the same customer (blocking, linking,
//!   uncertain pairs for HQ review);
//! - [`golden`]: the golden customer record, field by field, with provenance, the losing
//!   values, and conflicts;
//! - [`vehicle`]: ownership and role timeline per VIN, and double sales;
//! - [`resolve`]: the incremental step over the store, run inside the judge's batch;
//! - [`digest`]: a hash of the whole hub state that does not depend on arrival order.
//!
//! **Invariants:** a dealer record is *linked* to a customer, never merged away (its record is
//! untouched; unlinking it is an HQ decision that re-resolves); every projection is a function
//! of the *set* of records and decisions, so any delivery order, batching or duplication gives
//! the same state and the same digest; a value from a flagged record never beats a clean one,
//! and an HQ-confirmed value beats both.

pub mod digest;
pub mod golden;
pub mod identity;
pub mod resolve;
pub mod vehicle;

use crate::content::Content;
use crate::domain::{Severity, StoredRecord};
use crate::rules::Scope;

pub use crate::model::customer::{
    Confirmed, Conflict, ConflictValue, DecisionEntry, GoldenCustomer, HqDecision, MergeChange,
    Party, PartyDecisions, PartyKey, PartyView, Provenance, ReviewItem, Stamp, Subject, Trust,
};
pub use crate::model::vehicle::VehicleDecisions;
pub use vehicle::VehicleView;

impl Stamp {
    /// The trusted stamp of a stored record: for an imported one, the source's time of making
    /// it (an import tonight of a 2019 upsert is not newer than a 2024 record), else the
    /// agent's clock on the hub's; never later than the hub received it.
    pub fn of(record: &StoredRecord) -> Stamp {
        if let Some(origin) = &record.origin {
            return Stamp {
                wall_ms: origin.created_at_ms.min(record.received_at_ms),
                logical: record.hlc.1,
            };
        }
        let (wall, logical) = if record.hlc.0 > 0 {
            record.hlc
        } else {
            (record.recorded_at_ms, 0)
        };
        let on_hub_clock = wall.saturating_sub(record.clock_offset_ms);
        Stamp {
            wall_ms: on_hub_clock.min(record.received_at_ms),
            logical,
        }
    }
}

impl PartyView {
    /// The normalised words of the party's name (search index keys), without repeats.
    pub fn name_words(&self) -> Vec<String> {
        let mut words: Vec<String> = hamgam_proto::text::normalize(&self.name())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        words.sort_unstable();
        words.dedup();
        words
    }

    /// The full name as compared and shown.
    pub fn name(&self) -> String {
        if self.organization {
            self.organization_name.clone()
        } else {
            format!("{} {}", self.given_name, self.family_name)
                .trim()
                .to_owned()
        }
    }
}

/// The content a stored record says now: the amended content if corrected, nothing if
/// retracted.
pub fn content_in_force(record: &StoredRecord) -> Option<Content> {
    if record.retracted {
        return None;
    }
    if let Some(amended) = &record.amended {
        return Some(amended.clone());
    }
    crate::wire::stored_content(record)
}

/// How far a stored record's content can be trusted, by the rules alone (HQ's own
/// corrections, scope `Customer`, do not count): `None` for a record in quarantine or
/// withdrawn.
pub fn trust_of(record: &StoredRecord) -> Option<Trust> {
    if record.retracted {
        return None;
    }
    let mut findings = record
        .own_findings
        .iter()
        .chain(
            record
                .group_findings
                .iter()
                .filter(|(scope, _)| **scope != Scope::Customer)
                .flat_map(|(_, f)| f),
        )
        .filter(|f| !record.dismissed(&f.rule_id));
    let mut flagged = false;
    for f in &mut findings {
        if f.severity == Severity::Reject {
            return None;
        }
        flagged = true;
    }
    Some(if flagged {
        Trust::Flagged
    } else {
        Trust::Clean
    })
}

/// True when a rule rejected the field ending with `field` (or C04 marked it a placeholder).
pub fn field_spoiled(record: &StoredRecord, field: &str) -> bool {
    record
        .own_findings
        .iter()
        .chain(record.group_findings.values().flatten())
        .any(|f| {
            f.field.ends_with(field) && (f.severity == Severity::RejectField || f.rule_id == "C04")
        })
}
