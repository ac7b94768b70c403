//! What sled itself charges for a write shape: `records` records of `keys` keys each, values
//! of `value_bytes`, keys appended in order or scattered, one atomic batch per `batch`
//! records, then one flush; prints records/s, µs per key and sled's bytes on disk per record
//! (and per live byte of keys and values). Nothing of Hamgam runs: this is
//! the storage engine's own price, measured on the machine at hand, so the hub's figures can
//! be read against it (docs/benchmarks.md, "What sled itself allows for the hub's write
//! shape"). Run each shape in its own process: sled keeps process-wide state (its epoch
//! garbage, its concurrency control) that one run leaves to the next.
//!
//! ```sh
//! cargo build --release -p hamgam-tests --bin sled-shapes
//! for shape in "1 300 appended 500" "11 120 scattered 50" "11 120 scattered 500"; do
//!     target/release/sled-shapes $shape
//! done
//! ```

use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where a record's keys after its first go.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Placement {
    /// Each key space written in order (as a log is).
    Appended,
    /// Placed by a hash, as an index by VIN or mobile places them.
    Scattered,
}

/// One write shape.
#[derive(Parser)]
#[command(
    name = "sled-shapes",
    about = "What sled charges for a write shape (records/s, µs per key)"
)]
struct Shape {
    /// Keys per record, 1 to 26 (one key space each; the first is the record's own, appended
    /// in order).
    #[arg(value_parser = clap::value_parser!(u8).range(1..=26))]
    keys: u8,
    /// Bytes of each value.
    value_bytes: usize,
    /// Where a record's other keys go.
    #[arg(value_enum)]
    placement: Placement,
    /// Records per atomic batch (`apply_batch`), at least 1.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// sled's page cache, MiB.
    #[arg(long, default_value_t = 256)]
    cache_mb: u64,
    /// Records written, at least 1.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
}

fn main() -> Result<()> {
    let shape = Shape::parse();
    let dir = tempfile::tempdir().context("a temporary folder for the store")?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(shape.cache_mb << 20)
        .flush_every_ms(None)
        .open()
        .with_context(|| format!("opening sled in {}", dir.path().display()))?;
    let tree = db.open_tree("shape").context("opening the tree")?;
    let scattered = shape.placement == Placement::Scattered;
    let (keys, records, per_batch) = (
        usize::from(shape.keys),
        shape.records as usize,
        shape.batch as usize,
    );
    let started = Instant::now();
    let mut batch = sled::Batch::default();
    for i in 0..records {
        for k in 0..keys {
            let mut key = vec![b'a' + k as u8];
            if scattered && k > 0 {
                let hash = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64);
                key.extend_from_slice(&hash.to_be_bytes());
            } else {
                key.extend_from_slice(&(i as u64).to_be_bytes());
            }
            batch.insert(key, vec![7u8; shape.value_bytes]);
        }
        if (i + 1) % per_batch == 0 {
            tree.apply_batch(std::mem::take(&mut batch))
                .context("applying a batch")?;
        }
    }
    tree.apply_batch(batch).context("applying the last batch")?;
    db.flush().context("flushing")?;
    let seconds = started.elapsed().as_secs_f64();
    let disk = db.size_on_disk().context("sled's size on disk")? as f64;
    // Each key is 9 bytes (its key space and a u64).
    let live = (records * keys * (9 + shape.value_bytes)) as f64;
    println!(
        "{keys} keys of {} bytes, {}, batches of {per_batch} records, cache {} MiB: {:.0} records/s, {:.2} µs per key, {:.0} bytes on disk per record ({:.1} per live byte)",
        shape.value_bytes,
        if scattered { "scattered" } else { "appended" },
        shape.cache_mb,
        records as f64 / seconds,
        seconds * 1e6 / (records * keys) as f64,
        disk / records as f64,
        disk / live
    );
    Ok(())
}
