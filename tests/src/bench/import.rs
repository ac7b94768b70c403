//! The `import` section: `dealer-agent import`'s engine on a generated DMS export of repair
//! orders (Persian headers, Jalali dates and times, one source id per row) into a fresh agent
//! store, durable chunk by chunk, beside raw sled writing the same records in the same run.

use std::io::Write;
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

/// Imports `rows` generated rows; prints rows/s beside raw sled.
pub fn import_section(rows: usize) -> Value {
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
    json!({
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": import_rate,
        "raw_sled_per_s": raw_rate,
        "import_over_raw": import_rate / raw_rate,
        "store_bytes_per_row": disk,
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
