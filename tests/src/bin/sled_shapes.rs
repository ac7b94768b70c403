//! What sled itself charges for a write shape: `records` records of `keys` keys each, values
//! of `value_bytes`, keys appended in order or scattered, one atomic batch per `batch`
//! records, then one flush; prints records/s and µs per key. Nothing of Hamgam runs: this is
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

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One write shape.
#[derive(Parser)]
#[command(about = "What sled charges for a write shape (records/s, µs per key)")]
struct Shape {
    /// Keys per record (the first is the record's own, appended in order).
    keys: usize,
    /// Bytes of each value.
    value_bytes: usize,
    /// `appended` (each key space written in order) or `scattered` (a record's other keys
    /// placed by a hash, as an index by VIN or mobile places them).
    #[arg(value_parser = ["appended", "scattered"])]
    placement: String,
    /// Records per atomic batch (`apply_batch`).
    batch: usize,
    /// sled's page cache, MiB.
    #[arg(long, default_value_t = 256)]
    cache_mb: u64,
    /// Records written.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shape = Shape::parse();
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(shape.cache_mb << 20)
        .flush_every_ms(None)
        .open()?;
    let tree = db.open_tree("shape")?;
    let scattered = shape.placement == "scattered";
    let started = Instant::now();
    let mut batch = sled::Batch::default();
    for i in 0..shape.records {
        for k in 0..shape.keys {
            let mut key = vec![b'a' + (k % 26) as u8];
            if scattered && k > 0 {
                let hash = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64);
                key.extend_from_slice(&hash.to_be_bytes());
            } else {
                key.extend_from_slice(&(i as u64).to_be_bytes());
            }
            batch.insert(key, vec![7u8; shape.value_bytes]);
        }
        if (i + 1) % shape.batch.max(1) == 0 {
            tree.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    tree.apply_batch(batch)?;
    db.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} keys of {} bytes, {}, batches of {} records, cache {} MiB: {:.0} records/s, {:.2} µs per key",
        shape.keys,
        shape.value_bytes,
        shape.placement,
        shape.batch,
        shape.cache_mb,
        shape.records as f64 / seconds,
        seconds * 1e6 / (shape.records * shape.keys) as f64
    );
    Ok(())
}
