//! What a record says, in the hub's own types: the business content the rules read, decoded
//! once from the wire by [`crate::wire::content`]. Raw text is kept as the dealer typed it; the
//! rules parse and normalise it with `hamgam_proto::values` and `hamgam_proto::text`, the same
//! code the agent uses for instant feedback.
//!
//! Dates are midnight UTC in ms since the Unix epoch; times are ms since the Unix epoch.

use serde::{Deserialize, Serialize};

/// The content of one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Content {
    Customer(Customer),
    Delivery(Delivery),
    RepairOrder(RepairOrder),
    Lead(Lead),
    Complaint(Complaint),
    Survey(Survey),
    OdometerReplacement(OdometerReplacement),
    VehicleStatus(VehicleStatus),
    Correction(Correction),
}

impl Content {
    /// The record kind's name (`retail-delivery`), as `hamgam_proto::RecordKind::name` says it.
    pub fn kind_name(&self) -> String {
        self.field_prefix().replace('_', "-")
    }

    /// The name of the payload field on the wire, used to name fields in findings.
    pub fn field_prefix(&self) -> &'static str {
        match self {
            Content::Customer(_) => "customer",
            Content::Delivery(_) => "retail_delivery",
            Content::RepairOrder(_) => "repair_order",
            Content::Lead(_) => "lead",
            Content::Complaint(_) => "complaint",
            Content::Survey(_) => "survey",
            Content::OdometerReplacement(_) => "odometer_replacement",
            Content::VehicleStatus(_) => "vehicle_status",
            Content::Correction(_) => "correction",
        }
    }
}

/// A person or an organisation as a dealer registered it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_ref: String,
    pub organization: bool,
    pub national_id: String,
    pub company_id: String,
    pub given_name: String,
    pub family_name: String,
    pub organization_name: String,
    pub mobile: String,
    pub postal_code: Option<String>,
}

/// How a vehicle was sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaleCategory {
    Unspecified,
    Retail,
    Fleet,
    Demo,
    Internal,
}

/// A party's role in a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartyRole {
    Unspecified,
    Buyer,
    CoBuyer,
    Owner,
    PrimaryDriver,
    FleetAccount,
}

/// A vehicle handed over to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub vin: String,
    pub sale_date_ms: Option<i64>,
    pub delivery_date_ms: Option<i64>,
    pub odometer_km: u32,
    pub category: SaleCategory,
    pub parties: Vec<(PartyRole, String)>,
    /// The model's name as the dealer gave it (its code when the name is empty).
    pub model: String,
}

/// Who pays for a repair order or a job line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayType {
    Unspecified,
    Customer,
    Warranty,
    Internal,
    Goodwill,
    Campaign,
    PreDelivery,
}

/// One job on a repair order: the labour operation and the parts used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLine {
    pub labor_op_code: String,
    pub parts: Vec<String>,
}

/// A service visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairOrder {
    pub ro_number: String,
    pub vin: String,
    pub opened_at_ms: i64,
    pub completed_at_ms: i64,
    pub odometer_in_km: u32,
    pub odometer_out_km: u32,
    pub pay_type: PayType,
    pub job_lines: Vec<JobLine>,
    /// The dealer's customer ref of the vehicle's owner and of its driver (may be empty).
    pub owner_ref: String,
    pub driver_ref: String,
    /// What the repair order was invoiced at, rials.
    pub total_rials: i64,
}

/// A contact without a purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub customer_ref: String,
    pub contacted_at_ms: i64,
}

/// One event of a complaint case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    pub case_ref: String,
    pub customer_ref: String,
    pub vin: String,
    pub event_at_ms: i64,
    pub status: ComplaintStatus,
}

/// Where a complaint case stands after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComplaintStatus {
    Unspecified,
    Opened,
    Updated,
    Resolved,
    Closed,
}

/// What a survey is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SurveySubject {
    Unspecified,
    Delivery,
    RepairOrder,
}

/// A satisfaction survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    /// The dealer's ref of the customer who answered (may be empty).
    pub customer_ref: String,
    pub subject: SurveySubject,
    pub subject_ref: String,
    pub submitted_at_ms: i64,
    pub respondent_mobile: String,
    pub csat: u32,
    pub nps: Option<u32>,
    /// The staff member who entered the answer, when one did (Q01: a survey submitted from the
    /// dealer's own staff).
    pub entered_by_staff_id: String,
}

/// A replaced odometer: readings after it start again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OdometerReplacement {
    pub vin: String,
    /// The day of the replacement (midnight UTC).
    pub replaced_on_ms: Option<i64>,
    /// When on that day the cluster was replaced, if the workshop recorded it.
    pub replaced_at_ms: Option<i64>,
    /// The old cluster's last reading and the new one's first.
    pub reading_before_km: u32,
    pub reading_after_km: u32,
}

/// What happened to a vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VehicleCondition {
    Unspecified,
    Scrapped,
    Stolen,
    Recovered,
    Exported,
}

/// A vehicle scrapped, stolen, recovered or exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleStatus {
    pub vin: String,
    pub condition: VehicleCondition,
    pub effective_on_ms: Option<i64>,
}

/// An amendment (or retraction) of an earlier record of the same dealer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub target_record_id: String,
    pub reason: String,
    pub retract: bool,
    pub amended: Option<Box<Content>>,
}

impl Content {
    /// The dealer's customer refs this record names: the customer it registers, a delivery's
    /// parties, a repair order's owner and driver, the customer of a lead, complaint or survey.
    pub fn customer_refs(&self) -> Vec<&str> {
        let refs: Vec<&str> = match self {
            Content::Customer(c) => vec![&c.customer_ref],
            Content::Delivery(d) => d.parties.iter().map(|(_, r)| r.as_str()).collect(),
            Content::RepairOrder(ro) => vec![&ro.owner_ref, &ro.driver_ref],
            Content::Lead(l) => vec![&l.customer_ref],
            Content::Complaint(c) => vec![&c.customer_ref],
            Content::Survey(s) => vec![&s.customer_ref],
            _ => Vec::new(),
        };
        let mut refs: Vec<&str> = refs.into_iter().filter(|r| !r.trim().is_empty()).collect();
        refs.sort_unstable();
        refs.dedup();
        refs
    }

    /// The times this record states about the world (not when it was captured), with the
    /// field each comes from: what T01 compares with the hub clock.
    pub fn event_times(&self) -> Vec<(&'static str, i64)> {
        match self {
            Content::RepairOrder(ro) => vec![
                ("repair_order.opened_at_ms", ro.opened_at_ms),
                ("repair_order.completed_at_ms", ro.completed_at_ms),
            ],
            Content::Lead(l) => vec![("lead.contacted_at_ms", l.contacted_at_ms)],
            Content::Complaint(c) => vec![("complaint.event_at_ms", c.event_at_ms)],
            Content::Survey(s) => vec![("survey.submitted_at_ms", s.submitted_at_ms)],
            Content::OdometerReplacement(o) => o
                .replaced_at_ms
                .map(|t| ("odometer_replacement.replaced_at_ms", t))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .collect()
    }
}
