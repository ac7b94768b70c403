//! The hub's stored types: what the store keeps and the layers above it (the rules, the merge,
//! the HQ API, the analytics) share. Below all of them: nothing here imports from a layer
//! that calls the store, so the store depends on this module and [`crate::domain`] only.
//! What the types *mean* is decided where their doc comments say; the functions that decide
//! live there too.

pub mod customer;
pub mod groups;
pub mod vehicle;
