//! Domain values to `hamgam.hq.v1` messages, in one place.

use hamgam_proto::hq::v1 as hq;

use crate::domain::{FlagStatus, StoredRecord};
use crate::lifecycle::{CustomerKpis, Stage};
use crate::merge::vehicle::{Role, RoleEntry};
use crate::merge::{Conflict, GoldenCustomer, PartyKey, Provenance, Trust};

pub fn trust(t: Trust) -> hq::Trust {
    match t {
        Trust::Flagged => hq::Trust::Flagged,
        Trust::Clean => hq::Trust::Clean,
        Trust::HqConfirmed => hq::Trust::HqConfirmed,
    }
}

pub fn provenance(p: &Provenance) -> hq::Provenance {
    hq::Provenance {
        dealer_id: p.dealer_id.clone(),
        record_id: p.record_id.clone(),
        seq: p.seq,
        stamped_at_ms: p.stamp.wall_ms,
        trust: trust(p.trust) as i32,
    }
}

pub fn party(p: &PartyKey) -> hq::PartyRef {
    hq::PartyRef {
        dealer_id: p.0.clone(),
        customer_ref: p.1.clone(),
    }
}

pub fn role(r: Role) -> hq::Role {
    match r {
        Role::Owner => hq::Role::Owner,
        Role::Buyer => hq::Role::Buyer,
        Role::CoBuyer => hq::Role::CoBuyer,
        Role::Driver => hq::Role::Driver,
        Role::FleetAccount => hq::Role::FleetAccount,
    }
}

pub fn stage(s: Option<Stage>) -> hq::Stage {
    match s {
        None => hq::Stage::Unspecified,
        Some(Stage::Prospect) => hq::Stage::Prospect,
        Some(Stage::NewOwner) => hq::Stage::NewOwner,
        Some(Stage::NeverServiced) => hq::Stage::NeverServiced,
        Some(Stage::Active) => hq::Stage::Active,
        Some(Stage::RecentlyLost) => hq::Stage::RecentlyLost,
        Some(Stage::Defected) => hq::Stage::Defected,
        Some(Stage::Former) => hq::Stage::Former,
    }
}

pub fn flag_status(s: FlagStatus) -> hq::FlagStatus {
    match s {
        FlagStatus::Open => hq::FlagStatus::Open,
        FlagStatus::Confirmed => hq::FlagStatus::Confirmed,
        FlagStatus::Dismissed => hq::FlagStatus::Dismissed,
    }
}

pub fn kpis(k: &CustomerKpis) -> hq::CustomerKpis {
    hq::CustomerKpis {
        tenure_days: k.tenure_days,
        vehicles_held: k.vehicles_held,
        service_visits: k.service_visits,
        spend_rials: k.spend_rials,
        csat: k.csat,
        nps: k.nps,
        open_complaints: k.open_complaints.len() as u32,
        last_service_ms: k.last_service_ms,
    }
}

pub fn role_entry(e: &RoleEntry) -> hq::RoleEntry {
    hq::RoleEntry {
        from_ms: e.from_ms,
        role: role(e.role) as i32,
        party: Some(party(&e.party)),
        customer_id: e.customer_id.clone().unwrap_or_default(),
        via: if e.via == "delivery" {
            "retail-delivery".into()
        } else {
            e.via.clone()
        },
        source: Some(provenance(&e.source)),
    }
}

pub fn conflict(c: &Conflict) -> hq::Conflict {
    hq::Conflict {
        subject: c.subject.key(),
        field: c.field.clone(),
        chosen: c.chosen.clone(),
        values: c
            .values
            .iter()
            .map(|v| hq::ConflictValue {
                value: v.value.clone(),
                sources: v.sources.iter().map(provenance).collect(),
            })
            .collect(),
        resolved: c.resolved,
    }
}

pub fn golden_fields(c: &GoldenCustomer) -> Vec<hq::GoldenField> {
    c.fields
        .iter()
        .map(|(field, v)| hq::GoldenField {
            field: field.clone(),
            value: v.value.clone(),
            source: Some(provenance(&v.source)),
            alternatives: v
                .alternatives
                .iter()
                .map(|(value, source)| hq::ClaimedValue {
                    value: value.clone(),
                    source: Some(provenance(source)),
                })
                .collect(),
        })
        .collect()
}

pub fn exported_customer(c: &GoldenCustomer) -> hq::ExportedCustomer {
    hq::ExportedCustomer {
        customer_id: c.customer_id.clone(),
        organization: c.organization,
        fields: golden_fields(c),
        linked: c.parties.iter().map(party).collect(),
        conflicts: c.conflicts.iter().map(conflict).collect(),
        lifecycle: None,
        as_of_ms: 0,
    }
}

/// The flags of a record (every rule that fired, with HQ's review).
pub fn record_flags(r: &StoredRecord) -> Vec<hq::RecordFlag> {
    let mut out: Vec<hq::RecordFlag> = Vec::new();
    for f in r.findings() {
        if out
            .last()
            .and_then(|x| x.finding.as_ref())
            .is_some_and(|x| x.rule_id == f.rule_id)
        {
            continue;
        }
        let review = r.flag_reviews.get(&f.rule_id);
        out.push(hq::RecordFlag {
            dealer_id: r.dealer_id.clone(),
            seq: r.seq,
            record_id: r.record_id.clone(),
            kind: r.kind.clone(),
            finding: Some(crate::wire::finding_to_wire(&f)),
            status: flag_status(review.map_or(FlagStatus::Open, |x| x.status)) as i32,
            received_at_ms: r.received_at_ms,
            review_comment: review.map(|x| x.comment.clone()).unwrap_or_default(),
            reviewed_by: review.map(|x| x.by.clone()).unwrap_or_default(),
        });
    }
    out
}

pub fn rule_ids(r: &StoredRecord) -> Vec<String> {
    let mut ids: Vec<String> = r
        .verdict
        .findings
        .iter()
        .map(|f| f.rule_id.clone())
        .collect();
    ids.dedup();
    ids
}
