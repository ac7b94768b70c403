//! Generates the Rust code of the wire contract at build time.
//!
//! Needs nothing outside crates.io and the toolchain: a `PROTOC` set in the environment wins,
//! otherwise the `protoc` binary vendored by `protoc-bin-vendored` is used.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/hamgam/record/v1/record.proto",
    "proto/hamgam/sync/v1/sync.proto",
    "proto/hamgam/hq/v1/hq.proto",
    "proto/hamgam/enrol/v1/enrol.proto",
    "proto/hamgam/ops/v1/ops.proto",
    "proto/hamgam/agent/v1/agent.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        env::set_var("PROTOC", protoc);
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("hamgam_descriptor.bin");

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_protos(PROTOS, &["proto"])?;

    // Canonical proto3 JSON (camelCase names, enum names as strings) for the CLI's JSON input
    // and `--json` output.
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".hamgam"])?;

    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
