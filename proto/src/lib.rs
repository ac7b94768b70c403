//! The wire contract both ends of Hamgam share: the versioned protobuf packages
//! (`hamgam.record.v1`, `hamgam.sync.v1`, `hamgam.hq.v1`, `hamgam.ops.v1`), their generated Rust code, and their
//! canonical JSON form.
//!
//! It also holds the vocabulary both ends must judge identically: [`text`] normalisation and the
//! [`values`] (VIN, national IDs, mobile, postal code) with their syntax checks, and the
//! [`registry`] file format (HQ's dealer registry) the simulator writes and the hub reads, and
//! the [`calendar`] arithmetic ("24 months from delivery") every side must count alike, and the
//! size [`limits`] of a record and the [`entry`] checks of its own fields (with the reasons staff
//! read, in Persian and English), which the agent runs at capture and the hub at ingest.
//!
//! No I/O, no storage, no network here: `gateway`, `central` and `dealer-agent` depend on this
//! crate and never on each other.

/// Records, their payloads and the hub's verdicts on them.
pub mod record {
    /// Version 1 of the record schema.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/hamgam.record.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/hamgam.record.v1.serde.rs"));
    }
}

/// The agent <-> hub sync stream.
pub mod sync {
    /// Version 1 of the sync protocol.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/hamgam.sync.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/hamgam.sync.v1.serde.rs"));
    }
}

/// Enrolment and renewal of an agent's certificate from a signing request.
pub mod enrol {
    /// Version 1 of enrolment.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/hamgam.enrol.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/hamgam.enrol.v1.serde.rs"));
    }
}

/// Headquarters' API.
pub mod hq {
    /// Version 1 of the HQ API.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/hamgam.hq.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/hamgam.hq.v1.serde.rs"));
    }
}

/// The dealer agent's local capture API (loopback, for the dealer's own systems).
pub mod agent {
    /// Version 1 of the local capture API.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/hamgam.agent.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/hamgam.agent.v1.serde.rs"));
    }
}

/// Operations' API (backups of a running hub).
pub mod ops {
    /// Version 1 of the ops API.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/hamgam.ops.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/hamgam.ops.v1.serde.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hamgam_descriptor.bin"));

/// The record schema version this build writes and understands.
pub const RECORD_SCHEMA_VERSION: u32 = 1;

pub mod calendar;
pub mod entry;
pub mod jalali;
mod kind;
pub mod limits;
pub mod reason;
pub mod registry;
pub mod text;
pub mod values;

pub use kind::RecordKind;
