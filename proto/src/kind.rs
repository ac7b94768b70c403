//! The kinds of record a dealership can make, by name, as staff and scripts say them.

use crate::record::v1::{correction, record};
use std::fmt;

/// The kind of a record's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Customer,
    RetailDelivery,
    RepairOrder,
    Lead,
    Complaint,
    Survey,
    OdometerReplacement,
    VehicleStatus,
    Correction,
}

impl RecordKind {
    /// Every kind, in the order of the record schema.
    pub const ALL: [RecordKind; 9] = [
        RecordKind::Customer,
        RecordKind::RetailDelivery,
        RecordKind::RepairOrder,
        RecordKind::Lead,
        RecordKind::Complaint,
        RecordKind::Survey,
        RecordKind::OdometerReplacement,
        RecordKind::VehicleStatus,
        RecordKind::Correction,
    ];

    /// The kebab-case name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Customer => "customer",
            RecordKind::RetailDelivery => "retail-delivery",
            RecordKind::RepairOrder => "repair-order",
            RecordKind::Lead => "lead",
            RecordKind::Complaint => "complaint",
            RecordKind::Survey => "survey",
            RecordKind::OdometerReplacement => "odometer-replacement",
            RecordKind::VehicleStatus => "vehicle-status",
            RecordKind::Correction => "correction",
        }
    }

    /// The kind of a record's payload.
    pub fn of(payload: &record::Payload) -> RecordKind {
        match payload {
            record::Payload::Customer(_) => RecordKind::Customer,
            record::Payload::RetailDelivery(_) => RecordKind::RetailDelivery,
            record::Payload::RepairOrder(_) => RecordKind::RepairOrder,
            record::Payload::Lead(_) => RecordKind::Lead,
            record::Payload::Complaint(_) => RecordKind::Complaint,
            record::Payload::Survey(_) => RecordKind::Survey,
            record::Payload::OdometerReplacement(_) => RecordKind::OdometerReplacement,
            record::Payload::VehicleStatus(_) => RecordKind::VehicleStatus,
            record::Payload::Correction(_) => RecordKind::Correction,
        }
    }

    /// The kind of an amended payload inside a correction.
    pub fn of_amended(amended: &correction::Amended) -> RecordKind {
        match amended {
            correction::Amended::Customer(_) => RecordKind::Customer,
            correction::Amended::RetailDelivery(_) => RecordKind::RetailDelivery,
            correction::Amended::RepairOrder(_) => RecordKind::RepairOrder,
            correction::Amended::Lead(_) => RecordKind::Lead,
            correction::Amended::Complaint(_) => RecordKind::Complaint,
            correction::Amended::Survey(_) => RecordKind::Survey,
            correction::Amended::OdometerReplacement(_) => RecordKind::OdometerReplacement,
            correction::Amended::VehicleStatus(_) => RecordKind::VehicleStatus,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RecordKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = RecordKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown record kind `{s}`; known kinds: {}",
                    known.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in RecordKind::ALL {
            assert_eq!(kind.name().parse::<RecordKind>(), Ok(kind));
        }
        let err = "invoice".parse::<RecordKind>().unwrap_err();
        assert!(err.contains("repair-order"), "{err}");
    }
}
