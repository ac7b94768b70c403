//! The `central` binary's subcommands, one module each; `main.rs` parses and dispatches.

pub(crate) mod admin;
pub(crate) mod backup;
pub(crate) mod dealers;
pub(crate) mod health;
pub(crate) mod pki;
pub(crate) mod query;
pub(crate) mod questions;
pub(crate) mod rules;
pub(crate) mod serve;
