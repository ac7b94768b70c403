//! Clients with valid certificates that misbehave: bytes that are not protobuf, streams that
//! never say anything, and a dealer flooding the hub. Each is refused (or slowed) with a clear
//! gRPC status and a security event, and the other dealers sync on as before.

use std::time::{Duration, Instant};

use hamgam_gateway::audit::SecurityEventKind;
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1::vehicle_lookup_client::VehicleLookupClient;
use hamgam_proto::hq::v1::GetServiceSummaryRequest;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::sync::v1::dealer_sync_client::DealerSyncClient;
use hamgam_proto::sync::v1::{
    agent_message, hub_message, AgentHello, AgentMessage, HubMessage, RecordBatch,
};
use hamgam_tests::*;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const SYNC_PATH: &str = "/hamgam.sync.v1.DealerSync/Sync";

/// The tests of this file run one at a time: the flood test measures another dealer's latency
/// against its own baseline, and a sibling test's hub on the same two cores in the middle of
/// that measurement is noise it must not count (seen in CI: the median 2.9x with the siblings
/// running, within 2x alone).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A gRPC codec that sends whatever bytes it is given as one message and reads the hub's
/// replies as `HubMessage`s: a client that can put malformed protobuf on the wire.
#[derive(Default)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = HubMessage;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> Self::Encoder {
        RawBytes
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawBytes
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = HubMessage;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<HubMessage>, tonic::Status> {
        HubMessage::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

fn hello(dealer: &str) -> AgentMessage {
    AgentMessage {
        body: Some(agent_message::Body::Hello(AgentHello {
            dealer_id: dealer.into(),
            agent_version: "test".into(),
            agent_time_ms: hamgam_tests::TEST_NOW_MS,
            verdict_cursor: 0,
            last_seq: 0,
        })),
    }
}

/// Sends `messages` (raw bytes each) on one sync stream as `dealer` and returns the status the
/// hub ends the stream with.
async fn sync_raw(
    pki: &TestPki,
    hub: &TestHub,
    dealer_id: &str,
    messages: Vec<Vec<u8>>,
) -> tonic::Status {
    let channel = pki
        .endpoint(hub.addr, PeerIdentity::Dealer(dealer(dealer_id)))
        .connect()
        .await
        .expect("connects");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let (tx, rx) = mpsc::channel(messages.len().max(1));
    for m in messages {
        tx.send(m).await.expect("queued");
    }
    let response = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            tonic::codegen::http::uri::PathAndQuery::from_static(SYNC_PATH),
            RawBytes,
        )
        .await;
    let mut inbound = match response {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    loop {
        match inbound.message().await {
            Ok(Some(_)) => continue, // the hub's hello
            Ok(None) => panic!("the hub ended the stream without an error"),
            Err(status) => return status,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_refused_with_a_clear_status_and_nothing_stored_is_lost() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, dirs.path()).await;
    let d1 = PeerIdentity::Dealer(dealer("D-1"));
    send_batch(
        &pki,
        hub.addr,
        d1.clone(),
        "D-1",
        vec![raw_record("D-1", 1)],
    )
    .await
    .expect("a good first batch");

    let hello_bytes = hello("D-1").encode_to_vec();
    // The dealer ID's bytes made invalid UTF-8.
    let mut bad_utf8 = hello_bytes.clone();
    let at = bad_utf8
        .windows(3)
        .position(|w| w == b"D-1")
        .expect("the dealer ID is in the hello");
    bad_utf8[at] = 0xff;
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("random bytes first", vec![vec![0xff; 16]]),
        ("a truncated field", vec![vec![0x0a, 0x40, 0x0a, 0x03]]),
        ("invalid UTF-8 in a string", vec![bad_utf8]),
        (
            "garbage after a good hello",
            vec![hello_bytes.clone(), vec![0x12, 0x64, 0x01]],
        ),
    ];
    for (i, (case, messages)) in cases.into_iter().enumerate() {
        let status = sync_raw(&pki, &hub, "D-1", messages).await;
        assert_eq!(status.code(), tonic::Code::Internal, "{case}: {status}");
        assert!(
            status.message().contains("decode"),
            "{case}: the status says what was wrong: {status}"
        );
        within(
            10,
            "a ProtocolViolation event",
            hub.audit
                .wait_for(SecurityEventKind::ProtocolViolation, i as u64 + 1),
        )
        .await;
    }
    let details = hub.event_details(SecurityEventKind::ProtocolViolation);
    assert!(
        details.iter().all(|d| d.contains("unreadable message")),
        "{details:?}"
    );

    // The dealer's stored record stays; it and another dealer go on syncing.
    send_batch(&pki, hub.addr, d1, "D-1", vec![raw_record("D-1", 2)])
        .await
        .expect("D-1 syncs after its garbage");
    let d2 = PeerIdentity::Dealer(dealer("D-2"));
    send_batch(&pki, hub.addr, d2, "D-2", vec![raw_record("D-2", 1)])
        .await
        .expect("D-2 syncs");
    let mut client = pki.hq_client(hub.addr).await;
    assert_eq!(hub_records(&mut client, "D-1").await.len(), 2);
    hub.stop().await;
}

/// Opens a sync stream as `dealer_id` on `channel` and sends nothing on it (the sender is
/// returned, so the stream stays open). Err is the hub's refusal.
async fn silent_stream(
    channel: tonic::transport::Channel,
    first: Option<AgentMessage>,
) -> Result<(mpsc::Sender<AgentMessage>, tonic::Streaming<HubMessage>), tonic::Status> {
    let (tx, rx) = mpsc::channel(4);
    if let Some(first) = first {
        tx.send(first).await.expect("queued");
    }
    let inbound = DealerSyncClient::new(channel)
        .sync(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, inbound))
}

/// The status a stream ends with (its hub messages before that are skipped).
async fn end_of(mut inbound: tonic::Streaming<HubMessage>) -> tonic::Status {
    loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => return tonic::Status::ok("ended"),
            Err(status) => return status,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_and_streams_time_out_and_are_limited_while_others_sync() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start_adjusted(&pki, dirs.path(), |o| {
        o.edge.handshake_timeout = Duration::from_secs(1);
        o.limits.hello_timeout = Duration::from_secs(1);
        o.limits.idle_timeout = Duration::from_secs(2);
        o.dealer_limits.max_concurrent_calls = 4;
        o.max_streams_per_connection = 2;
    })
    .await;

    // TCP connections that never start TLS are closed after the handshake timeout.
    let mut mute = Vec::new();
    for _ in 0..20 {
        mute.push(tokio::net::TcpStream::connect(hub.addr).await.unwrap());
    }
    // Four silent sync streams of D-1 (its limit), on two connections of two streams each.
    let d1 = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-1")));
    let (a, b) = (d1.connect().await.unwrap(), d1.connect().await.unwrap());
    let mut silent = Vec::new();
    for channel in [&a, &a, &b, &b] {
        silent.push(
            silent_stream(channel.clone(), None)
                .await
                .expect("admitted"),
        );
    }
    // A fifth on a new connection: over the dealer's limit of open calls.
    let refused = silent_stream(d1.connect().await.unwrap(), None)
        .await
        .expect_err("a fifth open call is refused");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("4 calls open"), "{refused}");
    hub.wait_for_event(10, SecurityEventKind::RateLimited, "D-1")
        .await;

    // Meanwhile another dealer syncs as usual.
    let d2 = PeerIdentity::Dealer(dealer("D-2"));
    send_batch(
        &pki,
        hub.addr,
        d2.clone(),
        "D-2",
        vec![raw_record("D-2", 1)],
    )
    .await
    .expect("D-2 syncs while D-1 holds silent streams");

    // A third stream on connection `a` waits for a free one of its two: it opens only after
    // the first two have been ended by the hello timeout.
    let third = tokio::spawn(silent_stream(a.clone(), None));
    let mut ended = Vec::new();
    for (_tx, inbound) in silent.drain(..2) {
        ended.push(end_of(inbound).await);
    }
    let timeouts_before_third = hub.audit.count(SecurityEventKind::StreamTimeout);
    let (third_tx, third_inbound) = within(10, "the third stream", third)
        .await
        .unwrap()
        .expect("the third stream is admitted once the connection has room");
    assert!(
        timeouts_before_third >= 2,
        "the third stream waited for the connection's two to end"
    );
    for (_tx, inbound) in silent.drain(..) {
        ended.push(end_of(inbound).await);
    }
    ended.push(end_of(third_inbound).await);
    drop(third_tx);
    for status in &ended {
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
        assert!(status.message().contains("no AgentHello"), "{status}");
    }

    // A hello, then silence: ended by the idle timeout.
    let (_tx, inbound) = silent_stream(d1.connect().await.unwrap(), Some(hello("D-1")))
        .await
        .expect("admitted again once the silent ones ended");
    let idle = end_of(inbound).await;
    assert_eq!(idle.code(), tonic::Code::DeadlineExceeded, "{idle}");
    assert!(idle.message().contains("idle timeout"), "{idle}");
    hub.wait_for_event(10, SecurityEventKind::StreamTimeout, "idle timeout")
        .await;

    // The mute TCP connections were closed by the hub, each a refused handshake.
    for mut socket in mute {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 16];
        let read = within(
            10,
            "the hub closing a mute connection",
            socket.read(&mut buf),
        )
        .await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    hub.wait_for_event(10, SecurityEventKind::HandshakeRefused, "handshake")
        .await;

    // Nothing of this touched what is stored, and D-1 syncs normally.
    send_batch(
        &pki,
        hub.addr,
        PeerIdentity::Dealer(dealer("D-1")),
        "D-1",
        vec![raw_record("D-1", 1)],
    )
    .await
    .expect("D-1 syncs");
    let mut client = pki.hq_client(hub.addr).await;
    assert_eq!(hub_records(&mut client, "D-2").await.len(), 1);
    hub.stop().await;
}

/// One dealer's sync stream: sends batches one at a time and times each until its ack.
struct TimedSession {
    tx: mpsc::Sender<AgentMessage>,
    inbound: tonic::Streaming<HubMessage>,
    next_seq: u64,
    batch_no: u64,
    dealer: String,
}

impl TimedSession {
    async fn open(pki: &TestPki, hub: &TestHub, dealer_id: &str) -> TimedSession {
        let channel = pki
            .endpoint(hub.addr, PeerIdentity::Dealer(dealer(dealer_id)))
            .connect()
            .await
            .expect("connects");
        let (tx, mut inbound) = silent_stream(channel, Some(hello(dealer_id)))
            .await
            .expect("admitted");
        let stored_seq = match inbound.message().await {
            Ok(Some(HubMessage {
                body: Some(hub_message::Body::Hello(h)),
            })) => h.stored_seq,
            other => panic!("expected the hub's hello, got {other:?}"),
        };
        TimedSession {
            tx,
            inbound,
            next_seq: stored_seq + 1,
            batch_no: 0,
            dealer: dealer_id.into(),
        }
    }

    fn records(&mut self, count: u64) -> Vec<pb::Record> {
        let records = (self.next_seq..self.next_seq + count)
            .map(|seq| raw_record(&self.dealer, seq))
            .collect();
        self.next_seq += count;
        records
    }

    /// Sends `count` new records as one batch and returns how long the ack took.
    async fn batch(&mut self, count: u64) -> Duration {
        let records = self.records(count);
        self.batch_no += 1;
        let started = Instant::now();
        self.tx
            .send(AgentMessage {
                body: Some(agent_message::Body::Batch(RecordBatch {
                    batch_no: self.batch_no,
                    records,
                })),
            })
            .await
            .expect("sent");
        loop {
            match self.inbound.message().await {
                Ok(Some(HubMessage {
                    body: Some(hub_message::Body::BatchAck(ack)),
                })) if ack.batch_no == self.batch_no => return started.elapsed(),
                Ok(Some(_)) => continue,
                other => panic!("{}: no ack: {other:?}", self.dealer),
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A well-behaved dealer: a batch of 10 records every 50 ms (200 records/s, under its
/// limit) for `secs`; returns each batch's time to ack, sorted.
async fn sync_latencies(session: &mut TimedSession, secs: u64) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        every.tick().await;
        latencies.push(session.batch(10).await);
    }
    latencies.sort();
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_dealer_is_paced_and_refused_while_another_dealers_sync_stays_within_2x() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const RECORDS_PER_SEC: u32 = 400;
    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start_adjusted(&pki, dirs.path(), |o| {
        o.limits.dealer_records_per_sec = RECORDS_PER_SEC;
        o.dealer_limits.max_concurrent_calls = 4;
        o.dealer_limits.calls_per_sec = 20;
        o.dealer_limits.call_burst = 20;
    })
    .await;
    let mut good = TimedSession::open(&pki, &hub, "D-GOOD").await;
    good.batch(10).await; // warm up
    let normal = sync_latencies(&mut good, 6).await;

    // The flood: one stream pushing full batches as fast as the hub takes them, more streams
    // than the dealer may open, and lookups at 25 times the allowed rate.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut flood = TimedSession::open(&pki, &hub, "D-FLOOD").await;
    let flood_started = Instant::now();
    let pusher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.is_cancelled() {
                flood.batch(500).await;
                sent += 500;
            }
            sent
        })
    };
    let flood_endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer("D-FLOOD")));
    let extra_channel = flood_endpoint.connect().await.unwrap();
    let mut extra = Vec::new();
    let mut extra_refused = Vec::new();
    for _ in 0..8 {
        match silent_stream(extra_channel.clone(), Some(hello("D-FLOOD"))).await {
            Ok(open) => extra.push(open),
            Err(status) => extra_refused.push(status),
        }
    }
    // The admitted extras close again, leaving the lookups to the call rate limit.
    for (tx, inbound) in extra {
        drop(tx);
        end_of(inbound).await;
    }
    let lookups = {
        let stop = stop.clone();
        let channel = flood_endpoint.connect().await.unwrap();
        tokio::spawn(async move {
            let mut client = VehicleLookupClient::new(channel);
            let mut every = tokio::time::interval(Duration::from_millis(2));
            let (mut answered, mut refused) = (0u32, 0u32);
            while !stop.is_cancelled() {
                every.tick().await;
                let request = GetServiceSummaryRequest {
                    vin: "NAAP13FE7KJ123456".into(),
                };
                match client.get_service_summary(request).await {
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => refused += 1,
                    _ => answered += 1,
                }
            }
            (answered, refused)
        })
    };
    let flooded = sync_latencies(&mut good, 6).await;
    stop.cancel();
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let flood_sent = within(30, "the flood's last batch", pusher).await.unwrap();
    let (answered, refused) = lookups.await.unwrap();

    let (p95_normal, p95_flooded) = (percentile(&normal, 0.95), percentile(&flooded, 0.95));
    println!(
        "D-GOOD sync latency (10-record batches) p50/p95: normal {:?} / {:?}, during the flood {:?} / {:?}; \
         flood: {flood_sent} records in {flood_secs:.1}s (limit {RECORDS_PER_SEC}/s), \
         {} of 9 streams refused, lookups answered {answered} refused {refused}",
        percentile(&normal, 0.5),
        p95_normal,
        percentile(&flooded, 0.5),
        p95_flooded,
        extra_refused.len()
    );
    // The flooder got its share and no more: paced to its record rate (one batch of burst and
    // the batch in flight on top), its extra streams and most lookups refused.
    let allowed = f64::from(RECORDS_PER_SEC) * flood_secs + 1500.0;
    assert!(
        (flood_sent as f64) <= allowed,
        "{flood_sent} records in {flood_secs:.1}s is over the {RECORDS_PER_SEC}/s limit"
    );
    assert!(flood_sent >= 500, "the flooder is slowed, not stopped");
    // The pusher's stream and three more fill the dealer's four places.
    assert_eq!(extra_refused.len(), 5, "{extra_refused:?}");
    for status in &extra_refused {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
    }
    assert!(
        answered > 0 && refused > 10 * answered,
        "answered {answered}, refused {refused}"
    );
    assert!(hub.audit.count(SecurityEventKind::RateLimited) >= u64::from(refused));
    // The well-behaved dealer barely notices: its median within 2x, and its slow tail too,
    // because the flood's batches are judged in slices (D-GOOD's small batches are judged
    // whole and wait one slice of the flood's at most). Over 20 runs of this debug build on two
    // cores the p95 ratio was 1.1x to 1.9x; it is held to 3x so a loaded machine does not fail
    // it, and the release bench reports the figure beside the 2x target.
    let p50 = (percentile(&normal, 0.5), percentile(&flooded, 0.5));
    assert!(
        p50.1 <= p50.0 * 2,
        "D-GOOD's median sync latency went from {:?} to {:?} during the flood",
        p50.0,
        p50.1
    );
    assert!(
        p95_flooded <= p95_normal * 3,
        "D-GOOD's p95 sync latency went from {p95_normal:?} to {p95_flooded:?} during the flood"
    );
    hub.stop().await;
}
