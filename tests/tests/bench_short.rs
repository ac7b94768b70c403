//! The benchmark harness runs end to end in its short mode (small counts, no figures asserted):
//! every section measures something, and the JSON and SVG results are written.

#[test]
fn the_benchmark_harness_runs_end_to_end_in_short_mode() {
    let out = tempfile::tempdir().unwrap();
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--short", "--out"])
        .arg(out.path())
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench-short.json")).unwrap())
            .unwrap();
    let sections = &json["sections"];
    for name in [
        "ingest",
        "backlog",
        "history",
        "hq_queries",
        "capture",
        "import",
        "commit_to_ack",
        "customer_queries",
        "idle",
    ] {
        assert!(!sections[name].is_null(), "section {name} missing: {json}");
    }
    let ingest = sections["ingest"].as_array().unwrap();
    assert_eq!(ingest.len(), 2);
    for row in ingest {
        for key in [
            "hub_records_per_s",
            "noop_sink_records_per_s",
            "raw_sled_records_per_s",
            "hub_over_raw",
        ] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key} in {row}");
        }
    }
    let import = &sections["import"];
    assert_eq!(import["rows"], 20_000, "{import}");
    assert!(import["rows_per_s"].as_f64().unwrap() > 0.0, "{import}");
    assert!(
        import["import_over_raw"].as_f64().unwrap() > 0.0,
        "{import}"
    );
    // The simulated histories went through real agents to a hub, every record acked (the
    // sections assert that), beside raw sled.
    let backlog = &sections["backlog"];
    assert!(backlog["records"].as_u64().unwrap() > 1_000, "{backlog}");
    let history = &sections["history"]["runs"][0];
    assert_eq!(history["dealers"], 8, "{history}");
    for row in [backlog, history] {
        assert!(row["hub_over_raw"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["years"].as_f64().unwrap() > 0.1, "{row}");
    }
    let customers = &sections["customer_queries"];
    assert!(
        customers["customers"].as_u64().unwrap() > 1_000,
        "{customers}"
    );
    let queries = customers["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 6, "{customers}");
    assert!(queries.iter().all(|q| q["p99_ms"].as_f64().unwrap() > 0.0));
    assert!(customers["mean_timeline_contacts"].as_f64().unwrap() > 0.0);
    assert!(sections["idle"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["hub_rss_bytes"].as_u64().unwrap() > 0));
    for svg in ["ingest-short.svg", "idle-rss-short.svg"] {
        let text = std::fs::read_to_string(out.path().join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("polyline"),
            "{svg}"
        );
    }
}
