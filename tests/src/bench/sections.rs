//! The benchmark sections. Each returns its figures as JSON and prints a table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hamgam_dealer_agent::simulate::{self, FaultRates, SimulationConfig};
use hamgam_dealer_agent::AgentStore;
use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::authz::AuthorizeLayer;
use hamgam_gateway::server::{incoming, EdgeConfig};
use hamgam_gateway::sync::client::run_session;
use hamgam_gateway::sync::{
    DealerSyncService, Ingest, IngestError, IngestOutcome, SessionLimits, SessionMode,
    SessionOptions,
};
use hamgam_gateway::{DealerId, PeerIdentity};
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::sync::v1::dealer_sync_server::DealerSyncServer;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::outbox::{MemoryOutbox, Opened};
use super::{percentile, rss_bytes, Sizes};
use crate::{TestHub, TestPki};

/// Realistic payloads from the simulator, clean.
pub fn payloads() -> Vec<Payload> {
    let now = crate::TEST_NOW_MS;
    let mut config = SimulationConfig::small(1, vec![crate::dealer("D-BENCH")], now);
    config.faults = FaultRates::none();
    let network = simulate::simulate(&config).expect("simulation");
    network
        .logs
        .values()
        .flatten()
        .map(|r| r.payload.clone())
        .collect()
}

/// The session options of the bench's agents: until drained, with a long ack timeout, on the
/// bench hubs' clock (the tests' fixed now: an agent on the wall clock would be days off the
/// hub's and T02 would flag everything it sends).
pub fn session_options() -> SessionOptions {
    SessionOptions {
        mode: SessionMode::UntilDrained,
        clock: crate::test_clock(),
        ack_timeout: Duration::from_secs(120),
        ..SessionOptions::default()
    }
}

/// Drives `agents` sessions of `per_agent` records each against `addr`; all connections are made
/// first, then every session starts at once. Returns (elapsed, records, wire bytes).
async fn drive(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    prefix: &str,
    agents: usize,
    per_agent: usize,
    payloads: &[Payload],
) -> (Duration, usize, usize) {
    let mut outboxes = Vec::with_capacity(agents);
    let mut channels = Vec::with_capacity(agents);
    for i in 0..agents {
        let dealer = DealerId::new(format!("{prefix}-{i}")).expect("dealer id");
        let endpoint = pki.endpoint(addr, PeerIdentity::Dealer(dealer.clone()));
        outboxes.push(Arc::new(MemoryOutbox::new(dealer, payloads, per_agent)));
        channels.push(endpoint);
    }
    let connected = futures_join(channels.iter().map(|e| e.connect())).await;
    let bytes: usize = outboxes.iter().map(|o| o.wire_bytes()).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (channel, outbox) in connected.into_iter().zip(&outboxes) {
        let channel = channel.expect("agent connects");
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            run_session(
                channel,
                &*outbox,
                &session_options(),
                std::future::pending(),
            )
            .await
            .expect("session")
        }));
    }
    for task in tasks {
        task.await.expect("agent task");
    }
    let elapsed = started.elapsed();
    let records: u64 = outboxes.iter().map(|o| o.acked()).sum();
    assert_eq!(records as usize, agents * per_agent, "every record acked");
    (elapsed, agents * per_agent, bytes)
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = futures.collect();
    for f in handles {
        out.push(f.await);
    }
    out
}

/// A sync sink that stores nothing: the gRPC + mutual-TLS layer alone.
#[derive(Default)]
struct NoopIngest;

impl Ingest for NoopIngest {
    async fn open_session(
        &self,
        _dealer: &DealerId,
        _offset: i64,
        _last_seq: u64,
    ) -> Result<u64, IngestError> {
        Ok(0)
    }

    async fn ingest(
        &self,
        _dealer: &DealerId,
        records: Vec<pb::Record>,
    ) -> Result<IngestOutcome, IngestError> {
        let stored_seq = records.last().map(|r| r.seq).unwrap_or(0);
        let verdicts = records
            .iter()
            .map(|r| pb::Verdict {
                record_id: r.record_id.clone(),
                seq: r.seq,
                outcome: pb::Outcome::Accepted as i32,
                ..Default::default()
            })
            .collect();
        Ok(IngestOutcome {
            stored_seq,
            verdicts,
            durable: Box::pin(std::future::ready(Ok(0))),
        })
    }

    fn verdict_feed(&self, _dealer: &DealerId) -> hamgam_gateway::sync::VerdictFeed {
        hamgam_gateway::sync::VerdictFeed(tokio::sync::watch::channel(0).1)
    }

    async fn restore_page(
        &self,
        _dealer: &DealerId,
        _after_seq: u64,
        _limit: usize,
        _verdicts_only: bool,
    ) -> Result<hamgam_gateway::sync::RestorePage, IngestError> {
        Ok(hamgam_gateway::sync::RestorePage {
            records: Vec::new(),
            stored_seq: 0,
            verdict_cursor: 0,
        })
    }

    async fn verdict_updates(
        &self,
        _dealer: &DealerId,
        _cursor: u64,
        _limit: usize,
    ) -> Result<Vec<(u64, pb::Verdict)>, IngestError> {
        Ok(Vec::new())
    }

    async fn verdicts_acknowledged(
        &self,
        _dealer: &DealerId,
        _cursor: u64,
    ) -> Result<(), IngestError> {
        Ok(())
    }
}

/// A hub as `central serve` runs it (its default store cache), measured for what it can
/// take: without the per-dealer
/// record pacing and call limits (flood protection, `hostile_clients` tests them), as the
/// no-op sink runs without them.
pub async fn bench_hub(pki: &TestPki, dir: &std::path::Path) -> TestHub {
    let cache = hamgam_central::config::Storage::default().cache_mb * 1024 * 1024;
    TestHub::start_sized(pki, dir, cache, |o| {
        o.limits.dealer_records_per_sec = 0;
        o.dealer_limits.max_concurrent_calls = 0;
        o.dealer_limits.calls_per_sec = 0;
        o.dealer_limits.call_burst = 0;
    })
    .await
}

async fn noop_sink(pki: &TestPki) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let audit = SecurityAudit::new();
    let edge = EdgeConfig::new(pki.hub_tls(), crate::TRUST_DOMAIN);
    let service = DealerSyncService::new(
        Arc::new(NoopIngest),
        // The protocol's own cost, without per-dealer pacing.
        SessionLimits {
            dealer_records_per_sec: 0,
            ..SessionLimits::default()
        },
        audit.clone(),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .layer(AuthorizeLayer::new(
                hamgam_central::server::access_policy(),
                audit.clone(),
            ))
            .add_service(DealerSyncServer::new(service))
            .serve_with_incoming_shutdown(incoming(listener, edge, audit), async {
                let _ = stop_rx.await;
            })
            .await;
    });
    (addr, stop_tx)
}

/// How long raw sled takes to write `records` (their own keys and bytes only, batches of
/// 500, one flush): the limit sections are measured against. [`raw_sled_shaped`] with one
/// key per record.
pub fn raw_sled(records: &[pb::Record]) -> Duration {
    raw_sled_shaped(records, 1.0, 0.0, false, 500)
}

/// Raw sled writing what the hub writes per record, without judging anything: each record
/// (as [`raw_sled`] writes it) plus `keys_per_record - 1` more keys spread over a dozen key
/// spaces by a hash (the hub's indexes are keyed by VIN, mobile, national ID, record id, name
/// word: scattered, not appended), their values sized so a record's keys and values come to
/// `bytes_per_record`, one atomic batch per `records_per_unit` records (the hub's own units
/// of work: a slice of a batch), one flush: the storage-only ceiling of the hub's current
/// write shape, measured in the same run. (sled's cost per key grows with a batch's size:
/// about 5 µs per scattered key in batches of 50 records of 11 keys, 11 µs in batches of 500.) With `scattered` false the same keys
/// are appended in order in each key space instead (what the cost would be if the hub's
/// writes were a log): the two bracket what the layout, not the judging, costs.
pub fn raw_sled_shaped(
    records: &[pb::Record],
    keys_per_record: f64,
    bytes_per_record: f64,
    scattered: bool,
    records_per_unit: usize,
) -> Duration {
    use prost::Message;
    use std::hash::{Hash, Hasher};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(256 << 20)
        .open()
        .expect("sled");
    let tree = db.open_tree("raw").expect("tree");
    let extra = (keys_per_record - 1.0).max(0.0);
    let started = Instant::now();
    let unit = records_per_unit.max(1);
    for (c, chunk) in records.chunks(unit).enumerate() {
        let mut batch = sled::Batch::default();
        for (n, r) in chunk.iter().enumerate() {
            let i = c * unit + n;
            let mut key = r.dealer_id.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(&r.seq.to_be_bytes());
            let value = r.encode_to_vec();
            let own = key.len() + value.len();
            batch.insert(key, value);
            // This record's share of the extra keys (fractional counts spread evenly).
            let keys = ((i + 1) as f64 * extra) as usize - (i as f64 * extra) as usize;
            let size = if extra > 0.0 {
                ((bytes_per_record - own as f64) / extra).max(0.0) as usize
            } else {
                0
            };
            for k in 0..keys {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (i, k).hash(&mut h);
                let hash = h.finish();
                let mut key = vec![b'a' + (hash % 12) as u8];
                if scattered {
                    key.extend_from_slice(&hash.to_be_bytes());
                } else {
                    key.extend_from_slice(&(i as u64).to_be_bytes());
                    key.push(k as u8);
                }
                let value = vec![0x5a; size.saturating_sub(key.len())];
                batch.insert(key, value);
            }
        }
        tree.apply_batch(batch).expect("apply");
    }
    db.flush().expect("flush");
    started.elapsed()
}

/// The keys the hub's store put or removed per record, the bytes it wrote per record and the
/// records per unit of work, from [`stage_split`]'s figures.
fn write_shape(stages: &Value) -> (f64, f64, usize) {
    let sum = |key: &str| -> f64 {
        stages[key]
            .as_object()
            .map(|kinds| kinds.values().filter_map(|v| v.as_f64()).sum())
            .unwrap_or(0.0)
    };
    let unit = stages["records_per_unit"].as_f64().unwrap_or(1.0).round() as usize;
    (sum("keys_per_record"), sum("write_bytes_per_record"), unit)
}

/// Hub ingest records/s for 1..1000 agents, beside a no-op gRPC sink and raw sled.
pub async fn ingest(pki: &TestPki, sizes: &Sizes, payloads: &[Payload]) -> Value {
    println!(
        "\n## ingest over mutual TLS ({} records per run, batches of 500, 4 in flight)",
        sizes.ingest_records
    );
    println!(
        "{:>7} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "agents", "hub rec/s", "no-op rec/s", "raw sled rec/s", "hub/raw", "hub/no-op"
    );
    let mut rows = Vec::new();
    for &agents in &sizes.ingest_agents {
        let per_agent = (sizes.ingest_records / agents).max(1);
        let total = per_agent * agents;
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = bench_hub(pki, dir.path()).await;
        let (hub_elapsed, _, bytes) = drive(
            pki,
            hub.addr,
            &format!("H{agents}"),
            agents,
            per_agent,
            payloads,
        )
        .await;
        let mut hq = pki.hq_client(hub.addr).await;
        let held: u64 = hq
            .list_dealers(hq::ListDealersRequest {})
            .await
            .expect("ListDealers")
            .into_inner()
            .dealers
            .iter()
            .map(|d| d.record_count)
            .sum();
        assert_eq!(held as usize, total, "the hub holds every acked record");
        let stages = stage_split(hub.metrics_addr, total);
        hub.stop().await;
        let (sink, stop) = noop_sink(pki).await;
        let (noop_elapsed, _, _) = drive(
            pki,
            sink,
            &format!("N{agents}"),
            agents,
            per_agent,
            payloads,
        )
        .await;
        let _ = stop.send(());
        let records: Vec<pb::Record> = MemoryOutbox::new(crate::dealer("D-RAW"), payloads, total)
            .records()
            .to_vec();
        let raw_elapsed = raw_sled(&records);
        let (keys, key_bytes, unit) = write_shape(&stages);
        let shaped_elapsed = raw_sled_shaped(&records, keys, key_bytes, true, unit);
        let appended_elapsed = raw_sled_shaped(&records, keys, key_bytes, false, unit);
        let rate = |d: Duration| total as f64 / d.as_secs_f64();
        let (h, n, r) = (rate(hub_elapsed), rate(noop_elapsed), rate(raw_elapsed));
        let (shaped, appended) = (rate(shaped_elapsed), rate(appended_elapsed));
        println!(
            "        raw sled writing the hub's shape ({keys:.1} keys, {key_bytes:.0} bytes per record, units of {unit} records, nothing judged): scattered {shaped:.0} records/s (hub / that {:.2}), appended in order {appended:.0} (hub / that {:.2})",
            h / shaped,
            h / appended
        );
        println!(
            "{agents:>7} {h:>14.0} {n:>14.0} {r:>14.0} {:>10.2} {:>10.2}",
            h / r,
            h / n
        );
        rows.push(json!({
            "agents": agents, "records": total, "wire_bytes": bytes,
            "hub_records_per_s": h, "noop_sink_records_per_s": n, "raw_sled_records_per_s": r,
            "hub_over_raw": h / r, "hub_over_noop": h / n,
            "raw_sled_hub_shape_scattered_records_per_s": shaped,
            "raw_sled_hub_shape_appended_records_per_s": appended,
            "hub_over_raw_sled_hub_shape_scattered": h / shaped,
            "hub_stage_us_per_record": stages,
        }));
    }
    Value::Array(rows)
}

/// The hub's own stage timings (`hamgam_ingest_stage_seconds`, `hamgam_flush_seconds` from its
/// metrics listener), in microseconds per record; printed under the ingest row.
pub fn stage_split(metrics: std::net::SocketAddr, records: usize) -> Value {
    let samples = crate::scrape_metrics(metrics);
    let per_record = |seconds: f64| seconds * 1e6 / records.max(1) as f64;
    let mut split = serde_json::Map::new();
    for stage in ["lock_wait", "rules", "groups", "merge", "verdicts", "apply"] {
        let key = format!("hamgam_ingest_stage_seconds_sum{{stage=\"{stage}\"}}");
        split.insert(
            stage.into(),
            json!(per_record(samples.get(&key).copied().unwrap_or(0.0))),
        );
    }
    let flush = samples
        .get("hamgam_flush_seconds_sum")
        .copied()
        .unwrap_or(0.0);
    split.insert("flush".into(), json!(per_record(flush)));
    // Units of work (slices) applied: one apply timing each.
    let units = samples
        .get("hamgam_ingest_stage_seconds_count{stage=\"apply\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(
        units > 0.0,
        "the hub's metrics name no applied unit of work (hamgam_ingest_stage_seconds_count{{stage=\"apply\"}})"
    );
    split.insert("records_per_unit".into(), json!(records as f64 / units));
    // A counter family by kind, per record.
    let per_kind = |family: &str| -> serde_json::Map<String, Value> {
        let prefix = format!("{family}{{kind=\"");
        samples
            .iter()
            .filter_map(|(name, value)| {
                let kind = name.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                Some((kind.to_owned(), json!(value / records.max(1) as f64)))
            })
            .collect()
    };
    let writes = per_kind("hamgam_store_writes_total");
    let total: f64 = writes.values().filter_map(|v| v.as_f64()).sum();
    println!(
        "        hub writes per record: {total:.1} ({})",
        writes
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    split.insert("writes_per_record".into(), Value::Object(writes));
    let bytes = per_kind("hamgam_store_write_bytes_total");
    let total: f64 = bytes.values().filter_map(|v| v.as_f64()).sum();
    println!(
        "        hub bytes written per record: {total:.0} ({})",
        bytes
            .iter()
            .map(|(k, v)| format!("{k} {:.0}", v.as_f64().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    split.insert("write_bytes_per_record".into(), Value::Object(bytes));
    let keys = per_kind("hamgam_store_keys_total");
    let total: f64 = keys.values().filter_map(|v| v.as_f64()).sum();
    println!(
        "        hub sled keys per record: {total:.1} ({})",
        keys.iter()
            .map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    split.insert("keys_per_record".into(), Value::Object(keys));
    let disk = samples.get("hamgam_store_bytes").copied().unwrap_or(0.0) / records.max(1) as f64;
    println!(
        "        hub disk per record: {:.0} bytes (the store folder, hamgam_store_bytes)",
        disk
    );
    split.insert("disk_bytes_per_record".into(), json!(disk));
    let line: Vec<String> = split
        .iter()
        .filter_map(|(k, v)| Some(format!("{k} {:.1}", v.as_f64()?)))
        .filter(|item| !item.starts_with("disk_bytes") && !item.starts_with("records_per_unit"))
        .collect();
    println!("        hub µs per record: {}", line.join(", "));
    Value::Object(split)
}

/// Capture latency at the agent: one record, durable (fsync) before it returns.
pub async fn capture(sizes: &Sizes, payloads: &[Payload]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = AgentStore::open(dir.path(), crate::dealer("D-CAPTURE")).expect("store");
    let n = sizes.capture_samples;
    let payloads = payloads.to_vec();
    let mut samples = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|i| {
                let t = Instant::now();
                store
                    .capture("S-1", payloads[i % payloads.len()].clone())
                    .expect("capture");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect::<Vec<f64>>()
    })
    .await
    .expect("task");
    let (p50, p99) = (
        percentile(&mut samples, 50.0),
        percentile(&mut samples, 99.0),
    );
    println!("\n## capture at the agent ({n} records, each durable before it returns)");
    println!("p50 {p50:.2} ms   p99 {p99:.2} ms");
    json!({ "samples": n, "p50_ms": p50, "p99_ms": p99 })
}

/// Agent commit -> durable at the hub and acked back, while other agents load the hub.
pub async fn commit_to_ack(pki: &TestPki, sizes: &Sizes, payloads: &[Payload]) -> Value {
    let hub_dir = tempfile::tempdir().expect("tempdir");
    let hub = bench_hub(pki, hub_dir.path()).await;
    let (background_agents, per_agent) = if sizes.commit_samples >= 1000 {
        (10, 60_000)
    } else {
        (2, 2_000)
    };
    let background = {
        let pki_hub = hub.addr;
        let payloads = payloads.to_vec();
        let endpoints: Vec<_> = (0..background_agents)
            .map(|i| {
                pki.endpoint(
                    pki_hub,
                    PeerIdentity::Dealer(crate::dealer(&format!("D-LOAD-{i}"))),
                )
            })
            .collect();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for (i, endpoint) in endpoints.into_iter().enumerate() {
                let outbox =
                    MemoryOutbox::new(crate::dealer(&format!("D-LOAD-{i}")), &payloads, per_agent);
                tasks.push(tokio::spawn(async move {
                    let channel = endpoint.connect().await.expect("connect");
                    run_session(channel, &outbox, &session_options(), std::future::pending())
                        .await
                        .expect("load session");
                }));
            }
            for t in tasks {
                t.await.expect("load task");
            }
        })
    };
    // HQ follows the change stream from the start, as its BI would: when did each of
    // D-COMMIT's records become visible there.
    let (visible_tx, mut visible) = tokio::sync::watch::channel(0u64);
    let visible_at: Arc<std::sync::Mutex<std::collections::HashMap<u64, Instant>>> = Arc::default();
    let follower = {
        let mut hq = pki.hq_client(hub.addr).await;
        let visible_at = visible_at.clone();
        tokio::spawn(async move {
            let mut stream = hq
                .stream_changes(hq::StreamChangesRequest {
                    after_cursor: 0,
                    follow: true,
                })
                .await
                .expect("StreamChanges")
                .into_inner();
            while let Ok(Some(event)) = stream.message().await {
                if let Some(hq::change_event::Change::RecordStored(stored)) = event.change {
                    let Some(record) = stored.record else {
                        continue;
                    };
                    if record.dealer_id == "D-COMMIT" {
                        let seen = Instant::now();
                        visible_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(record.seq, seen);
                        visible_tx.send_replace(record.seq);
                    }
                }
            }
        })
    };
    let mut loaded_visible = Vec::new();
    let mut idle_visible = Vec::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let dealer = crate::dealer("D-COMMIT");
    let store = AgentStore::open(dir.path(), dealer.clone()).expect("store");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runner = tokio::spawn(hamgam_dealer_agent::sync_loop::run(
        store.clone(),
        pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer)),
        SessionOptions {
            mode: SessionMode::Continuous,
            ..session_options()
        },
        hamgam_dealer_agent::sync_loop::Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ),
        None,
        shutdown.clone(),
    ));
    let mut acked = store.watch_acked();
    // While the other agents push, then on an idle hub.
    let mut loaded = Vec::new();
    let mut idle = Vec::new();
    let mut background = Some(background);
    let running =
        |b: &Option<tokio::task::JoinHandle<()>>| b.as_ref().is_some_and(|b| !b.is_finished());
    for i in 0.. {
        let under_load = running(&background);
        if under_load && loaded.len() >= sizes.commit_samples {
            if let Some(load) = background.take() {
                load.await.expect("background load");
            }
            continue;
        }
        if !under_load && idle.len() >= sizes.commit_samples {
            break;
        }
        let payload = payloads[i % payloads.len()].clone();
        let s = store.clone();
        let t = Instant::now();
        let saved = tokio::task::spawn_blocking(move || s.capture("S-1", payload))
            .await
            .expect("task")
            .expect("capture");
        tokio::time::timeout(Duration::from_secs(30), acked.wait_for(|a| *a >= saved.seq))
            .await
            .expect("acked within 30 s")
            .expect("watch");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        tokio::time::timeout(
            Duration::from_secs(30),
            visible.wait_for(|v| *v >= saved.seq),
        )
        .await
        .expect("on the HQ change stream within 30 s")
        .expect("watch");
        let on_stream = visible_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&saved.seq)
            .map(|seen| seen.saturating_duration_since(t).as_secs_f64() * 1000.0);
        if under_load && running(&background) {
            loaded.push(ms);
            loaded_visible.extend(on_stream);
        } else if !under_load {
            idle.push(ms);
            idle_visible.extend(on_stream);
        }
    }
    follower.abort();
    shutdown.cancel();
    runner.await.expect("runner");
    if let Some(load) = background.take() {
        load.await.expect("background load");
    }
    hub.stop().await;
    let (lp50, lp99) = (percentile(&mut loaded, 50.0), percentile(&mut loaded, 99.0));
    let (ip50, ip99) = (percentile(&mut idle, 50.0), percentile(&mut idle, 99.0));
    println!("\n## commit at the agent -> durable at the hub -> ack back at the agent");
    println!(
        "under load ({} samples while {background_agents} other agents pushed {} records): p50 {lp50:.2} ms   p99 {lp99:.2} ms",
        loaded.len(),
        background_agents * per_agent
    );
    println!(
        "idle hub ({} samples):                                p50 {ip50:.2} ms   p99 {ip99:.2} ms",
        idle.len()
    );
    let (lv50, lv99) = (
        percentile(&mut loaded_visible, 50.0),
        percentile(&mut loaded_visible, 99.0),
    );
    let (iv50, iv99) = (
        percentile(&mut idle_visible, 50.0),
        percentile(&mut idle_visible, 99.0),
    );
    println!(
        "commit at the agent -> visible on the HQ change stream (HQ following from the start)"
    );
    println!("under load: p50 {lv50:.2} ms   p99 {lv99:.2} ms;   idle hub: p50 {iv50:.2} ms   p99 {iv99:.2} ms");
    json!({
        "background_agents": background_agents, "background_records": background_agents * per_agent,
        "loaded_samples": loaded.len(), "loaded_p50_ms": lp50, "loaded_p99_ms": lp99,
        "idle_samples": idle.len(), "idle_p50_ms": ip50, "idle_p99_ms": ip99,
        "loaded_change_stream_p50_ms": lv50, "loaded_change_stream_p99_ms": lv99,
        "idle_change_stream_p50_ms": iv50, "idle_change_stream_p99_ms": iv99,
        "note": "to the agent's ack (durable at the hub), and to the record's RecordStored event on HQ's StreamChanges (follow, from cursor 0, read while the load runs)",
    })
}

/// HQ `ListDealerRecords` page latency for dealers of several sizes on one hub.
pub async fn hq_queries(
    pki: &TestPki,
    sizes: &Sizes,
    payloads: &[Payload],
    hub: &TestHub,
    backlog: (String, usize),
) -> Value {
    let mut dealers: Vec<(String, usize)> = Vec::new();
    for &n in &sizes.query_dealer_sizes {
        let name = format!("Q{n}");
        drive(pki, hub.addr, &name, 1, n, payloads).await;
        dealers.push((format!("{name}-0"), n));
    }
    dealers.push(backlog);
    let total: usize = dealers.iter().map(|d| d.1).sum();
    let mut client = pki.hq_client(hub.addr).await;
    println!(
        "\n## HQ ListDealerRecords (page of 100 at a random position), hub holding {total} records"
    );
    println!("{:>12} {:>10} {:>10}", "dealer size", "p50 ms", "p99 ms");
    let mut rows = Vec::new();
    let mut state = 0x9e3779b97f4a7c15u64;
    for (dealer, n) in dealers {
        let mut samples = Vec::with_capacity(sizes.query_samples);
        for _ in 0..sizes.query_samples {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let after = state % (n.saturating_sub(100).max(1) as u64);
            let t = Instant::now();
            let page = client
                .list_dealer_records(hq::ListDealerRecordsRequest {
                    dealer_id: dealer.clone(),
                    page_size: 100,
                    quarantined_only: false,
                    page_token: if after == 0 {
                        String::new()
                    } else {
                        after.to_string()
                    },
                })
                .await
                .expect("query")
                .into_inner();
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(!page.records.is_empty());
        }
        let (p50, p99) = (
            percentile(&mut samples, 50.0),
            percentile(&mut samples, 99.0),
        );
        println!("{n:>12} {p50:>10.2} {p99:>10.2}");
        rows.push(
            json!({ "dealer_records": n, "hub_records": total, "p50_ms": p50, "p99_ms": p99 }),
        );
    }
    Value::Array(rows)
}

/// Connected idle agents (streams open, pings every 10 s) against a hub in its own process, with
/// that process's RSS.
pub async fn idle(pki: &TestPki, sizes: &Sizes, pki_dir: &std::path::Path) -> Value {
    use std::io::BufRead;
    let data = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut child = std::process::Command::new(exe)
        .arg("hub")
        .arg("--pki")
        .arg(pki_dir)
        .arg("--data-dir")
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the hub process");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("hub address");
    let addr: std::net::SocketAddr = first
        .trim()
        .trim_start_matches("listening ")
        .parse()
        .expect("address");
    let base_rss = rss_bytes(pid).unwrap_or(0);
    println!(
        "\n## connected idle agents, hub in its own process (pid {pid}, {} MiB at start)",
        base_rss >> 20
    );
    println!(
        "{:>8} {:>14} {:>16} {:>12}",
        "agents", "hub RSS MiB", "KiB per agent", "connect s"
    );
    let opened = Arc::new(Opened::default());
    let mut sessions = Vec::new();
    let mut rows = Vec::new();
    let mut made = 0usize;
    for &target in &sizes.idle_connections {
        let started = Instant::now();
        // Bound the handshakes in flight so the client side does not time out.
        let handshakes = Arc::new(tokio::sync::Semaphore::new(200));
        for i in made..target {
            let dealer = crate::dealer(&format!("I-{i}"));
            let endpoint = pki.endpoint(addr, PeerIdentity::Dealer(dealer.clone()));
            let outbox = MemoryOutbox::new(dealer, &[], 0).reporting_to(opened.clone());
            let permit = handshakes.clone().acquire_owned().await.expect("semaphore");
            sessions.push(tokio::spawn(async move {
                let channel = endpoint.connect().await.expect("idle agent connects");
                drop(permit);
                let options = SessionOptions {
                    mode: SessionMode::Continuous,
                    ping_interval: Duration::from_secs(10),
                    ..SessionOptions::default()
                };
                let _ = run_session(channel, &outbox, &options, std::future::pending()).await;
            }));
        }
        made = target;
        let waited = tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                let notified = opened.notify.notified();
                if opened.count.load(std::sync::atomic::Ordering::SeqCst) as usize >= target {
                    break;
                }
                notified.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{target} sessions did not all open");
        let connect_s = started.elapsed().as_secs_f64();
        let rss = rss_bytes(pid).unwrap_or(0);
        let per_agent_kib = (rss.saturating_sub(base_rss)) as f64 / 1024.0 / target as f64;
        println!(
            "{target:>8} {:>14.0} {per_agent_kib:>16.1} {connect_s:>12.1}",
            rss as f64 / 1048576.0
        );
        rows.push(json!({ "agents": target, "hub_rss_bytes": rss, "hub_rss_mib": rss as f64 / 1048576.0, "kib_per_agent": per_agent_kib, "connect_seconds": connect_s }));
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    for s in sessions {
        s.abort();
    }
    Value::Array(rows)
}
