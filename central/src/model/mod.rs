//! The hub's stored types: what the store keeps and the layers above it (the rules, the merge,
//! the HQ API, the analytics) share. With [`crate::domain`] (records, verdicts, findings) and
//! [`crate::content`] (what a record says) it is one layer below the store: nothing here
//! imports from a layer that calls the store. The types are data; the functions that decide
//! what they hold (a stamp's trust, a tally's counting, a group member's order) stay in
//! [`crate::rules`] and [`crate::merge`], beside the rules that use them.

pub mod customer;
pub mod groups;
pub mod vehicle;

/// `(dealer, seq)` of a record.
pub type At = (String, u64);
