//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), kept here so that the corpora the
//! fuzzers found run as ordinary regression tests (`tests/tests/fuzz_corpora.rs`) on the stable
//! toolchain. Each takes arbitrary bytes, must never panic, and checks what must hold for any
//! input: normalising twice changes nothing, a parsed identifier parses again to itself, every
//! finding names a rule of the catalogue, and the sync session answers garbage with a status
//! (never an `UNKNOWN` from a panic) and acks only what it was sent.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hamgam_central::rules::record::RecordContext;
use hamgam_central::{Hub, SledStore};
use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::server::PeerInfo;
use hamgam_gateway::sync::{DealerSyncService, SessionLimits};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::sync::v1::dealer_sync_server::DealerSync;
use hamgam_proto::sync::v1::{agent_message, hub_message, AgentHello, AgentMessage, RecordBatch};
use hamgam_proto::text::normalize;
use hamgam_proto::values::{Mobile, NationalId, Vin};
use prost::Message;
use tokio_stream::StreamExt;

/// Text normalisation (RULES.md): idempotent, and leaves no tatweel, Arabic yeh / kaf,
/// non-ASCII digits or runs of spaces behind.
pub fn text_normalisation(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let once = normalize(&raw);
    assert_eq!(normalize(&once), once, "normalising twice changed {raw:?}");
    assert!(!once.starts_with(' ') && !once.ends_with(' '), "{once:?}");
    assert!(!once.contains("  "), "{once:?}");
    assert!(
        !once
            .chars()
            .any(|c| matches!(c, 'ـ' | 'ي' | 'ك' | '۰'..='۹' | '٠'..='٩')),
        "{raw:?} -> {once:?}"
    );
}

/// VIN, national ID and mobile parsing: a value that parses has its canonical form, and that
/// form parses again to the same value.
pub fn identifiers(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Ok(vin) = Vin::parse(&raw) {
        assert_eq!(vin.as_str().len(), 17);
        assert_eq!(Vin::parse(vin.as_str()).expect("reparses"), vin);
        let _ = (vin.check_digit_ok(), vin.model_year_code_ok(), vin.wmi());
    }
    if let Ok(id) = NationalId::parse(&raw) {
        assert_eq!(id.as_str().len(), 10);
        assert_eq!(NationalId::parse(id.as_str()).expect("reparses"), id);
    }
    if let Ok(mobile) = Mobile::parse(&raw) {
        assert!(mobile.e164().starts_with("+989") && mobile.e164().len() == 13);
        assert_eq!(Mobile::parse(mobile.e164()).expect("reparses"), mobile);
        let _ = mobile.is_placeholder(hamgam_proto::values::PLACEHOLDER_RUN);
    }
}

/// A record as the hub decodes and validates it: protobuf decode, the wire checks (R00), the
/// content and every one-record rule. Findings name catalogue rules and give a reason.
pub fn record(data: &[u8]) {
    let Ok(record) = pb::Record::decode(data) else {
        return;
    };
    let arrival = hamgam_central::wire::arrival(&record);
    for finding in arrival.malformed.iter().chain(&arrival.amended_malformed) {
        assert!(
            hamgam_central::rules::spec(&finding.rule_id).is_some(),
            "unknown rule {}",
            finding.rule_id
        );
    }
    let Some(content) = arrival.content.as_ref() else {
        return;
    };
    let config = hamgam_central::rules::RuleConfig::default();
    let no_party = |_: &str| None;
    let ctx = RecordContext {
        dealer_id: &record.dealer_id,
        made_at_ms: arrival.made_at_ms(),
        imported: arrival.origin.is_some(),
        received_at_ms: 1_760_000_000_000,
        clock_offset_ms: 0,
        dealer: None,
        config: &config,
        party: &no_party,
    };
    for finding in hamgam_central::rules::record::judge(content, &ctx) {
        assert!(
            hamgam_central::rules::spec(&finding.rule_id).is_some(),
            "unknown rule {}",
            finding.rule_id
        );
        assert!(
            !finding.reason_en().is_empty(),
            "{finding:?} gives no reason"
        );
    }
}

/// One hub (a real sled store in a temp folder) and runtime for every sync-session input of
/// this process.
struct SessionRig {
    runtime: tokio::runtime::Runtime,
    service: DealerSyncService<Hub<SledStore>>,
    _dir: tempfile::TempDir,
}

fn rig() -> &'static SessionRig {
    static RIG: OnceLock<SessionRig> = OnceLock::new();
    RIG.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), 16 << 20).expect("store");
        let service = runtime.block_on(async {
            DealerSyncService::new(
                Arc::new(Hub::new(Arc::new(store))),
                SessionLimits {
                    hello_timeout: Duration::from_secs(2),
                    idle_timeout: Duration::from_secs(2),
                    dealer_records_per_sec: 0,
                    ..SessionLimits::default()
                },
                SecurityAudit::new(),
            )
        });
        SessionRig {
            runtime,
            service,
            _dir: dir,
        }
    })
}

/// The dealer the sync-session target's certificate proves.
pub const FUZZ_DEALER: &str = "D-FUZZ";

/// The sync message handler: `data` is the request body of one `Sync` call, gRPC-framed
/// messages as an agent's HTTP/2 stream carries them, from dealer [`FUZZ_DEALER`]. The
/// session must end with a status or cleanly, never with `UNKNOWN` (a panic in a handler), and
/// ack at most the records it was sent.
pub fn sync_session(data: &[u8]) {
    sync_session_as(FUZZ_DEALER, data);
}

/// What a [`sync_session`] call came to.
#[derive(Debug, Default)]
pub struct SessionOutcome {
    /// Verdicts in the acks the hub sent.
    pub acked: usize,
    /// The status the session ended with, if not a clean end.
    pub status: Option<tonic::Status>,
}

/// [`sync_session`] as `dealer_id`'s certificate.
pub fn sync_session_as(dealer_id: &str, data: &[u8]) -> SessionOutcome {
    let rig = rig();
    let mut outcome = SessionOutcome::default();
    rig.runtime.block_on(async {
        let body = http_body_util::Full::new(prost::bytes::Bytes::copy_from_slice(data));
        let decoder =
            <tonic_prost::ProstCodec<AgentMessage, AgentMessage> as tonic::codec::Codec>::decoder(
                &mut tonic_prost::ProstCodec::default(),
            );
        let inbound = tonic::Streaming::new_request(decoder, body, None, Some(1 << 20));
        let mut request = tonic::Request::new(inbound);
        request.extensions_mut().insert(PeerInfo {
            identity: PeerIdentity::Dealer(crate::dealer(dealer_id)),
            remote_addr: "127.0.0.1:1".parse().expect("address"),
        });
        let mut replies = match rig.service.sync(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                assert_ne!(status.code(), tonic::Code::Unknown, "{status}");
                outcome.status = Some(status);
                return;
            }
        };
        let sent = sent_records(data);
        let reply_limit = Duration::from_secs(10);
        while let Some(reply) = tokio::time::timeout(reply_limit, replies.next())
            .await
            .expect("the session ends once the body has ended")
        {
            match reply {
                Ok(message) => {
                    if let Some(hub_message::Body::BatchAck(ack)) = message.body {
                        assert!(
                            ack.verdicts.len() <= sent,
                            "{} verdicts for {sent} records sent",
                            ack.verdicts.len()
                        );
                        outcome.acked += ack.verdicts.len();
                    }
                }
                Err(status) => {
                    assert_ne!(status.code(), tonic::Code::Unknown, "{status}");
                    assert!(!status.message().is_empty(), "a status says why");
                    outcome.status = Some(status);
                }
            }
        }
    });
    outcome
}

/// How many records the framed messages in `data` carry in all (those that decode).
fn sent_records(mut data: &[u8]) -> usize {
    let mut records = 0;
    while data.len() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        let Some(message) = data.get(5..5 + len) else {
            break;
        };
        if let Ok(AgentMessage {
            body: Some(agent_message::Body::Batch(batch)),
        }) = AgentMessage::decode(message)
        {
            records += batch.records.len();
        }
        data = &data[5 + len..];
    }
    records
}

/// One gRPC frame (uncompressed) holding `message`.
pub fn grpc_frame(message: &AgentMessage) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + bytes.len());
    frame.push(0);
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    frame
}

/// A well-formed `Sync` body for the session target's seed corpus: a hello, then `batches`
/// of records from `first_seq` on.
pub fn sync_body(first_seq: u64, batches: &[u64]) -> Vec<u8> {
    sync_body_of(FUZZ_DEALER, first_seq, batches)
}

/// [`sync_body`] of another dealer.
pub fn sync_body_of(dealer_id: &str, first_seq: u64, batches: &[u64]) -> Vec<u8> {
    let mut body = grpc_frame(&AgentMessage {
        body: Some(agent_message::Body::Hello(AgentHello {
            dealer_id: dealer_id.into(),
            agent_version: "fuzz".into(),
            agent_time_ms: 1_760_000_000_000,
            verdict_cursor: 0,
            last_seq: 0,
        })),
    });
    let mut seq = first_seq;
    for (batch_no, size) in batches.iter().enumerate() {
        let records = (seq..seq + size)
            .map(|s| crate::raw_record(dealer_id, s))
            .collect();
        seq += size;
        body.extend(grpc_frame(&AgentMessage {
            body: Some(agent_message::Body::Batch(RecordBatch {
                batch_no: batch_no as u64 + 1,
                records,
            })),
        }));
    }
    body
}

/// A fuzz target's check: panics when `data` breaks what must hold.
pub type Check = fn(&[u8]);

/// The fuzz targets, by the name of their folder under `fuzz/seeds` and `fuzz/corpus`.
pub const TARGETS: &[(&str, Check)] = &[
    ("text_normalisation", text_normalisation),
    ("identifiers", identifiers),
    ("record", record),
    ("sync_session", sync_session),
];

/// Hand-made starting inputs of each target (`fuzz-seeds` writes them to `fuzz/seeds`).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let texts = |items: &[&str]| items.iter().map(|t| t.as_bytes().to_vec()).collect();
    match target {
        "text_normalisation" => texts(&[
            "علي  رضايي",
            "محمد\u{200c}رضا کریمی",
            "مـحـمـد",
            "كاظم ۱۲۳ ٤٥٦",
            "سَلام  ",
            "ﻋﻠﻲ",
            "e\u{064B}\u{0301}",
            "e\u{0654}\u{0301}",
        ]),
        "identifiers" => texts(&[
            "NAAP13FE7KJ123456",
            "naap 13fe7kj123456",
            "۱۲۳۴۵۶۷۸۹۱",
            "0012345679",
            "0912 345 6789",
            "+989123456789",
            "00989123456789",
            "۰۹۱۲۳۴۵۶۷۸۹",
        ]),
        "record" => (1..=12)
            .map(|seq| crate::raw_record(FUZZ_DEALER, seq).encode_to_vec())
            .collect(),
        "sync_session" => vec![
            sync_body(1, &[]),
            sync_body(1, &[3]),
            sync_body(1, &[2, 2]),
            sync_body(7, &[1]),
        ],
        other => panic!("no fuzz target {other}"),
    }
}
