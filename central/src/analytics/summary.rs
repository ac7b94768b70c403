//! A customer's summary: what HQ's customer reports read of one customer, gathered once from
//! the store's indexes ([`crate::lifecycle::facts::gather`]) and kept, encoded, in the store's
//! customer summaries until something it was made from changes ([`super::keeper`]).
//!
//! A summary holds nothing that depends on the `as_of` a report asks for: the segment and the
//! dealer, region, model and period a customer is counted in are decided from it per call
//! ([`super::Profile::of`]). It holds the contacts' content without a repair order's job
//! lines, which no report reads.

use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::lifecycle::facts::gather;
use crate::lifecycle::CustomerFacts;
use crate::merge::vehicle::Role;
use crate::merge::{trust_of, GoldenCustomer, Trust};
use crate::store::{HubStore, StoreError};
use crate::wire;

use super::Contact;

/// Bumped when the summary's encoding changes: summaries of another version are gathered again.
pub const SUMMARY_VERSION: u8 = 1;

/// One customer as every report reads them, whatever the `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    pub customer_id: String,
    /// The golden record's name (empty when no dealer gave one).
    pub name: String,
    /// The customer is an organisation (B2B unless a registration says otherwise).
    pub organization: bool,
    pub facts: CustomerFacts,
    /// The timeline's records (registrations included), oldest first.
    pub contacts: Vec<Contact>,
    pub vehicles: Vec<VehicleSummary>,
}

/// A vehicle the customer appears on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleSummary {
    pub vin: String,
    /// The model its latest delivery names (empty when none does).
    pub model: String,
    /// The roles the customer held on it.
    pub roles: Vec<Role>,
}

impl CustomerSummary {
    /// Gathers `customer`'s summary from the store.
    pub fn gather<S: HubStore>(
        store: &S,
        customer: &GoldenCustomer,
    ) -> Result<CustomerSummary, StoreError> {
        let gathered = gather(store, customer)?;
        let mut contacts = Vec::with_capacity(gathered.timeline.len());
        for t in &gathered.timeline {
            let correction = match (&t.record.amended, &t.record.corrected_by) {
                (Some(_), Some(id)) => match store.locate(id)? {
                    Some((dealer, seq)) => store.record(&dealer, seq)?,
                    None => None,
                },
                _ => None,
            };
            let mut content = t.content.clone();
            if let Content::RepairOrder(ro) = &mut content {
                ro.job_lines.clear();
            }
            contacts.push(Contact {
                at_ms: t.at_ms,
                dealer_id: t.record.dealer_id.clone(),
                record_id: t.record.record_id.clone(),
                trust: trust_of(&t.record).unwrap_or(Trust::Flagged),
                content,
                details: wire::stored_details(&t.record, correction.as_ref()),
            });
        }
        // A vehicle the party index still names but the customer holds no role on (a
        // correction moved them off it) is not theirs.
        let vehicles = gathered
            .vehicles
            .iter()
            .filter(|v| !v.roles.is_empty())
            .map(|v| VehicleSummary {
                vin: v.view.vin.clone(),
                model: v.model.clone(),
                roles: v.roles.clone(),
            })
            .collect();
        Ok(CustomerSummary {
            customer_id: customer.customer_id.clone(),
            name: customer
                .fields
                .get("name")
                .map(|f| f.value.clone())
                .unwrap_or_default(),
            organization: customer.organization,
            facts: gathered.facts,
            contacts,
            vehicles,
        })
    }

    /// The summary as stored: its version, then postcard.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(self, vec![SUMMARY_VERSION])
            .map_err(|e| StoreError::Engine(format!("encode a customer summary: {e}")))
    }

    /// A stored summary; `None` when it was written in another version.
    pub fn decode(customer_id: &str, bytes: &[u8]) -> Result<Option<CustomerSummary>, StoreError> {
        match bytes.split_first() {
            Some((&SUMMARY_VERSION, rest)) => {
                postcard::from_bytes(rest)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        key: format!("customer summary {customer_id}"),
                        detail: e.to_string(),
                    })
            }
            _ => Ok(None),
        }
    }
}
