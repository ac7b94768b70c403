//! The format of HQ's dealer registry file: what HQ knows about each dealership beyond its
//! certificate (its name, company national ID and staff). `dealer-agent simulate --registry`
//! writes it for a simulated network; the hub reads it (`registry = ...` in its config) for
//! rules S03, C05 and Q01. A JSON array of [`DealerProfile`].

use serde::{Deserialize, Serialize};

/// One dealership as the registry describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DealerProfile {
    pub dealer_id: String,
    pub name: String,
    pub company_national_id: String,
    pub city: String,
    /// HQ's sales region (lifecycle reports group by it; the city when empty).
    pub region: String,
    pub staff: Vec<StaffMember>,
    /// Why HQ suspended the dealership (empty: not suspended). A suspended dealer's agent is
    /// refused at the start of every sync session; its records stay at the hub.
    pub suspended: String,
}

/// A staff member of a dealership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaffMember {
    pub staff_id: String,
    pub national_id: String,
    /// Any written form (`0912...`, `+98912...`, or the ten national digits).
    pub mobile: String,
}
