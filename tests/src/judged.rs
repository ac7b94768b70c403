//! Helpers for tests of the rule engine: a simulated network turned into the records its agents
//! would send, fed to a real hub (sled in a temp dir) in any order and batching, and the rules
//! the hub found per record, to compare with the simulator's labels.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::rules::RuleConfig;
use hamgam_central::store::HubStore;
use hamgam_central::{Hub, SledStore};
use hamgam_dealer_agent::simulate::SimulatedNetwork;
use hamgam_gateway::sync::Ingest;
use hamgam_proto::record::v1 as pb;

use crate::dealer;

/// `(dealer, seq)` of a record.
pub type At = (String, u64);

/// The hub's registry for a simulated network (what `simulate --registry` writes).
pub fn registry(network: &SimulatedNetwork) -> DealerRegistry {
    DealerRegistry::new(&network.dealers)
}

/// Each dealer's records as its agent sends them, captured at `recorded_at_ms`.
pub fn wire_logs(
    network: &SimulatedNetwork,
    recorded_at_ms: i64,
) -> BTreeMap<String, Vec<pb::Record>> {
    network
        .logs
        .iter()
        .map(|(d, log)| {
            let records = log
                .iter()
                .enumerate()
                .map(|(i, r)| pb::Record {
                    record_id: uuid::Uuid::now_v7().to_string(),
                    dealer_id: d.clone(),
                    seq: i as u64 + 1,
                    recorded_at_ms,
                    hlc: None,
                    staff_id: r.staff_id.clone(),
                    schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
                    withheld: String::new(),
                    origin: None,
                    payload: Some(r.payload.clone()),
                })
                .collect();
            (d.clone(), records)
        })
        .collect()
}

/// Rule ids per record.
pub type Labels = BTreeMap<At, BTreeSet<String>>;

/// The labels of every faulty record, by `(dealer, seq)`.
pub fn labels(network: &SimulatedNetwork) -> Labels {
    network
        .logs
        .iter()
        .flat_map(|(d, log)| {
            log.iter()
                .enumerate()
                .filter(|(_, r)| !r.faults.is_empty())
                .map(move |(i, r)| {
                    (
                        (d.clone(), i as u64 + 1),
                        r.faults.iter().cloned().collect::<BTreeSet<_>>(),
                    )
                })
        })
        .collect()
}

/// A tiny deterministic generator for orders and batch sizes (the seed is printed on failure).
pub struct Shuffle(u64);

impl Shuffle {
    pub fn new(seed: u64) -> Self {
        Shuffle(
            seed.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Feeds every dealer's log to `hub` in batches of random size, interleaving dealers at random
/// (each dealer's own records stay in seq order, as the sync protocol guarantees), with a
/// random share of batches sent twice. `seed` 0 sends dealer after dealer in batches of 500,
/// `seed` 1 one record per batch.
pub async fn feed(hub: &Hub<SledStore>, logs: &BTreeMap<String, Vec<pb::Record>>, seed: u64) {
    feed_with(hub, logs, seed, |_, _| {}).await;
}

/// [`feed`], calling `after_batch(hub, batches_sent)` once each batch is durable.
pub async fn feed_with(
    hub: &Hub<SledStore>,
    logs: &BTreeMap<String, Vec<pb::Record>>,
    seed: u64,
    mut after_batch: impl FnMut(&Hub<SledStore>, u64),
) {
    let mut sent = 0;
    let mut rng = Shuffle::new(seed);
    let mut next: BTreeMap<&String, usize> = logs.keys().map(|d| (d, 0)).collect();
    loop {
        let open: Vec<&String> = next
            .iter()
            .filter(|(d, i)| **i < logs[**d].len())
            .map(|(d, _)| *d)
            .collect();
        if open.is_empty() {
            break;
        }
        // Seed 0: each dealer's log whole, in turn; seed 1: one record at a time, so every
        // record and its neighbour in a dealer's log (a group's next member) come in different
        // batches; otherwise small batches as often as large ones, from random dealers.
        let (who, size) = if seed == 0 {
            (open[0], 500)
        } else if seed == 1 {
            (open[rng.below(open.len() as u64) as usize], 1)
        } else {
            let most = if rng.below(2) == 0 { 8 } else { 300 };
            (
                open[rng.below(open.len() as u64) as usize],
                1 + rng.below(most) as usize,
            )
        };
        let from = next[who];
        let to = (from + size).min(logs[who].len());
        let batch = logs[who][from..to].to_vec();
        let id = dealer(who);
        let times = if seed != 0 && rng.below(10) == 0 {
            2
        } else {
            1
        };
        for _ in 0..times {
            let outcome = hub
                .ingest(&id, batch.clone())
                .await
                .expect("batch ingested");
            outcome.durable.await.expect("batch durable");
            sent += 1;
            after_batch(hub, sent);
        }
        next.insert(who, to);
    }
}

/// A hub over a fresh sled store in `dir` applying the default rules with `registry`, its
/// clock stopped at `now_ms`.
pub fn hub(dir: &std::path::Path, registry: DealerRegistry, now_ms: i64) -> Hub<SledStore> {
    let store = SledStore::open(dir, 64 * 1024 * 1024).expect("store opens");
    Hub::with_rules(Arc::new(store), RuleConfig::default(), registry)
        .with_clock(hamgam_gateway::Clock::Fixed(now_ms))
}

/// The simulator's labels, the hand-written reading of RULES.md (`truth`) and the hub's
/// findings for one network judged at `now_ms` (records fed dealer after dealer): every
/// record on which any two of them disagree, each with what the three say.
pub async fn three_readings(
    network: &SimulatedNetwork,
    now_ms: i64,
) -> Vec<(
    At,
    Option<BTreeSet<String>>,
    Option<BTreeSet<String>>,
    Option<BTreeSet<String>>,
)> {
    let labelled = labels(network);
    let truth: Labels = crate::truth::check(network, now_ms)
        .into_iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|((d, i), rules)| ((d, i as u64 + 1), rules))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = hub(dir.path(), registry(network), now_ms);
    feed(&hub, &wire_logs(network, now_ms), 0).await;
    let found = rules_found(&judgements(&hub));
    hub.close().await;
    labelled
        .keys()
        .chain(truth.keys())
        .chain(found.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|at| labelled.get(*at) != found.get(*at) || truth.get(*at) != found.get(*at))
        .map(|at| {
            (
                at.clone(),
                labelled.get(at).cloned(),
                truth.get(at).cloned(),
                found.get(at).cloned(),
            )
        })
        .collect()
}

/// Every record's current verdict at the hub: outcome and the `(rule, field)` of each finding.
pub type Judgements = BTreeMap<At, (String, BTreeSet<(String, String)>)>;

/// What the hub decided about every record it holds.
pub fn judgements(hub: &Hub<SledStore>) -> Judgements {
    let store = hub.store().expect("store");
    let mut out = BTreeMap::new();
    for (dealer_id, _) in store.dealers().expect("dealers") {
        let mut after = 0;
        loop {
            let page = store.records(&dealer_id, after, 1000).expect("records");
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            for r in page {
                let findings = r
                    .verdict
                    .findings
                    .iter()
                    .map(|f| (f.rule_id.clone(), f.field.clone()))
                    .collect();
                out.insert(
                    (dealer_id.clone(), r.seq),
                    (format!("{:?}", r.verdict.outcome), findings),
                );
            }
            after = last;
        }
    }
    out
}

/// The rules the hub found per record (records with none left out).
pub fn rules_found(judgements: &Judgements) -> Labels {
    judgements
        .iter()
        .filter(|(_, (_, f))| !f.is_empty())
        .map(|(at, (_, f))| (at.clone(), f.iter().map(|(r, _)| r.clone()).collect()))
        .collect()
}

/// A record where two readings disagree: where, what the first says, what the second says.
pub type Disagreement = (At, Option<BTreeSet<String>>, Option<BTreeSet<String>>);

/// Every record on which `expected` and `found` disagree (a record absent from one has no
/// findings there).
pub fn disagreements(expected: &Labels, found: &Labels) -> Vec<Disagreement> {
    expected
        .keys()
        .chain(found.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|at| expected.get(*at) != found.get(*at))
        .map(|at| {
            (
                at.clone(),
                expected.get(at).cloned(),
                found.get(at).cloned(),
            )
        })
        .collect()
}
