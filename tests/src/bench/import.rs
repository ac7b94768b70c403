//! The `import` section: `dealer-agent import`'s engine on a generated DMS export of repair
//! orders (Persian headers, Jalali dates and times, one source id per row) into a fresh agent
//! store, durable chunk by chunk, beside raw sled writing the same records in the same run.
//! Full mode adds the two things a dealership joining the network lives through: the real
//! `dealer-agent import` killed with SIGKILL mid-way and run again with `--resume` (every row
//! exactly once), and the imported store synced to a real hub (records/s beside raw sled).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use hamgam_dealer_agent::import::{self, mapping::Mapping, ImportOptions};
use hamgam_dealer_agent::AgentStore;
use hamgam_proto::values::Vin;
use serde_json::{json, Value};

const MAPPING: &str = r#"
kind = "repair-order"
source_system = "dms:bench"
source_id = "شناسه"
created_at = "زمان ثبت"
staff = "پذیرشگر"
dates = "jalali"

[fields]
roNumber = "شماره پذیرش"
vin = "شماره شاسی"
ownerRef = "کد مشتری"
odometerInKm = "کیلومتر"
openedAtMs = "تاریخ پذیرش"
payType = "نوع پرداخت"
"jobLines.0.laborOpCode" = "کد اجرت"

[values.payType]
"ضمانت" = "PAY_TYPE_WARRANTY"
"آزاد" = "PAY_TYPE_CUSTOMER"
"#;

/// Writes `rows` repair orders over seven Jalali years (1398-1404), in the order made.
fn export(path: &std::path::Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("export file"));
    writeln!(out, "شناسه,زمان ثبت,پذیرشگر,شماره پذیرش,شماره شاسی,کد مشتری,کیلومتر,تاریخ پذیرش,نوع پرداخت,کد اجرت")
        .expect("write");
    let vins: Vec<String> = (0..5_000u32)
        .map(|n| {
            Vin::with_check_digit(&format!("NAAN01CE0KK{n:06}"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect();
    for i in 0..rows {
        let day = i * 2_500 / rows.max(1); // ~7 years of days, in order
        let (year, month, dom) = (1398 + day / 336, 1 + (day / 28) % 12, 1 + day % 28);
        let (hour, minute) = (8 + (i / 60) % 10, i % 60);
        writeln!(
            out,
            "B-{i},{year}/{month:02}/{dom:02} {hour:02}:{minute:02},s-{},RO-{i},{},C-{},{},{year}/{month:02}/{dom:02},{},EN-{}",
            i % 7,
            vins[i % vins.len()],
            i % 20_000,
            1_000 + (i % 150_000),
            if i % 3 == 0 { "ضمانت" } else { "آزاد" },
            i % 40,
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// Imports `rows` generated rows; prints rows/s beside raw sled. Returns the figures and the
/// folder holding the imported agent store (`agent`) and the export (`export.csv`), for
/// [`killed_and_resumed`] and [`synced_to_hub`].
pub fn import_section(rows: usize) -> (Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export.csv");
    export(&file, rows);
    let store =
        AgentStore::open(&dir.path().join("agent"), crate::dealer("D-IMPORT")).expect("store");
    let mapping = Mapping::parse(MAPPING, "bench-mapping.toml").expect("mapping");
    let options = ImportOptions {
        dry_run: false,
        resume: false,
        now_ms: crate::TEST_NOW_MS,
    };
    let started = Instant::now();
    let report =
        import::run(&store, &file, &mapping, &options, &mut std::io::sink()).expect("import");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.saved, rows as u64, "{report:?}");
    let records = store.records_after_blocking(0, rows).expect("records");
    let raw = super::sections::raw_sled(&records).as_secs_f64();
    let (import_rate, raw_rate) = (rows as f64 / seconds, rows as f64 / raw);
    let disk = fs_size(&dir.path().join("agent")) as f64 / rows as f64;
    println!(
        "\n## import (dealer-agent import's engine: CSV, Jalali dates, chunks of {} durable rows)",
        import::CHUNK_ROWS
    );
    println!(
        "{rows} rows in {seconds:.1} s: {import_rate:.0} rows/s; raw sled {raw_rate:.0} records/s; import/raw {:.2}; store {:.0} bytes per row",
        import_rate / raw_rate,
        disk
    );
    let figures = json!({
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": import_rate,
        "raw_sled_per_s": raw_rate,
        "import_over_raw": import_rate / raw_rate,
        "store_bytes_per_row": disk,
    });
    drop(store);
    (figures, dir)
}

/// The real `dealer-agent import` of the export in `dir` into a fresh store, killed with
/// SIGKILL once its progress passes `kill_at_percent`, then run again with `--resume`; checks
/// that the store ends with every row exactly once (by source id, and as many records as rows).
pub fn killed_and_resumed(dir: &std::path::Path, rows: usize, kill_at_percent: f64) -> Value {
    let file = dir.join("export.csv");
    let mapping = dir.join("mapping.toml");
    std::fs::write(&mapping, MAPPING).expect("mapping file");
    let data = dir.join("resumed-agent");
    let agent = &crate::processes::binaries().agent;
    let command = |resume: bool| {
        let mut command = Command::new(agent);
        command
            .args(["--dealer", "D-IMPORT", "--data-dir"])
            .arg(&data)
            .arg("import")
            .arg(&file)
            .arg("--mapping")
            .arg(&mapping);
        if resume {
            command.arg("--resume");
        }
        command
    };
    let started = Instant::now();
    let mut first = command(false)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dealer-agent import starts");
    let stderr = first.stderr.take().expect("stderr");
    // "import: N rows, P %, R rows/s, ..." once a second.
    let percent = |line: &str| -> Option<f64> {
        line.split(", ").nth(1)?.trim_end_matches(" %").parse().ok()
    };
    let mut killed_at_line = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if percent(&line).is_some_and(|p| p >= kill_at_percent) {
            killed_at_line = line;
            break;
        }
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let before = AgentStore::open(&data, crate::dealer("D-IMPORT"))
        .expect("the store opens after SIGKILL")
        .status()
        .expect("status")
        .last_seq;
    let out = command(true).output().expect("the resumed import runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "the resumed import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = AgentStore::open(&data, crate::dealer("D-IMPORT")).expect("store");
    let records = store.records_after_blocking(0, rows + 1).expect("records");
    let ids: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r.origin.as_ref().map(|o| o.source_record_id.clone()))
        .collect();
    let every_row_once = records.len() == rows && ids.len() == rows;
    println!(
        "killed with SIGKILL at \"{killed_at_line}\" ({before} rows durable), resumed: {} records, {} distinct source ids of {rows} rows ({}); {seconds:.1} s in all",
        records.len(),
        ids.len(),
        if every_row_once { "every row exactly once" } else { "NOT every row exactly once" }
    );
    assert!(every_row_once, "duplicates or gaps after the resume");
    json!({
        "killed_after_rows": before,
        "records_after_resume": records.len(),
        "distinct_source_ids": ids.len(),
        "every_row_once": every_row_once,
        "seconds_in_all": seconds,
    })
}

/// The imported store in `dir` synced to a real hub, as a dealership joining the network does
/// after its import: records/s beside raw sled writing the same records.
pub async fn synced_to_hub(pki: &crate::TestPki, dir: &std::path::Path, rows: usize) -> Value {
    use hamgam_gateway::identity::PeerIdentity;
    let store = AgentStore::open(&dir.join("agent"), crate::dealer("D-IMPORT")).expect("store");
    let records = store.records_after_blocking(0, rows).expect("records");
    let raw = super::sections::raw_sled(&records).as_secs_f64();
    drop(records);
    let hub_dir = tempfile::tempdir().expect("tempdir");
    let hub = super::sections::bench_hub(pki, hub_dir.path()).await;
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(crate::dealer("D-IMPORT")));
    let started = Instant::now();
    let report = hamgam_dealer_agent::sync_loop::sync_once(
        &store,
        &endpoint,
        &super::sections::session_options(),
    )
    .await
    .expect("the imported store syncs");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.acked_seq, rows as u64, "every imported record acked");
    let stages = super::sections::stage_split(hub.metrics_addr, rows);
    hub.stop().await;
    let (hub_rate, raw_rate) = (rows as f64 / seconds, rows as f64 / raw);
    println!(
        "synced to a real hub: {rows} records in {seconds:.1} s: {hub_rate:.0} records/s; raw sled {raw_rate:.0}; hub/raw {:.3}",
        hub_rate / raw_rate
    );
    json!({
        "records": rows,
        "sync_seconds": seconds,
        "hub_records_per_s": hub_rate,
        "raw_sled_records_per_s": raw_rate,
        "hub_over_raw": hub_rate / raw_rate,
        "hub_stage_us_per_record": stages,
    })
}

fn fs_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => fs_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
