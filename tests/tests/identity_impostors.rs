//! One code melli used by two different people, across several dealers: the real holder's
//! records (spelt several ways) are one customer, each impostor stays a customer of their own
//! until HQ decides, every impostor pair waits in the identity-review queue, no golden record
//! carries a value of the other person, and the lifecycle counts are the hand count. Judged by
//! a real hub (sled on disk) on a fixed date, in two delivery orders with one digest.

use std::collections::{BTreeMap, BTreeSet};

use hamgam_central::analytics::{stages, CustomerFilter};
use hamgam_central::lifecycle::report::GroupBy;
use hamgam_central::lifecycle::{LifecycleConfig, Stage};
use hamgam_central::merge::{HqDecision, PartyKey};
use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::store::HubStore;
use hamgam_central::{Hub, SledStore};
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::history::{self, lead, nid, vin, Log};
use hamgam_tests::judged;

/// 2026-11-18 11:06 UTC.
const NOW_MS: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;

fn persian_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32('۰' as u32 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// A person as they really are: name and mobile (the values that must never cross over).
struct Person {
    given: &'static str,
    family: &'static str,
    mobile: &'static str,
}

/// The network: holders at two dealers each (the second spelling uses Arabic letters and
/// Persian digits), impostors at a third dealer under a holder's code melli.
struct Scenario {
    logs: BTreeMap<String, Log>,
    /// Each person's dealer records.
    parties: BTreeMap<&'static str, Vec<PartyKey>>,
    people: BTreeMap<&'static str, Person>,
    /// (holder, impostor) pairs that share a code melli.
    impostors: Vec<(&'static str, &'static str)>,
}

fn scenario() -> Scenario {
    let mut logs: BTreeMap<String, Log> = ["D-1001", "D-1002", "D-1003"]
        .into_iter()
        .map(|d| (d.to_owned(), Log::new(d, NOW_MS)))
        .collect();
    let mut parties: BTreeMap<&'static str, Vec<PartyKey>> = BTreeMap::new();
    let mut push = |dealer: &str, payload: Payload| {
        logs.get_mut(dealer).expect("dealer").push(payload);
    };
    let people: BTreeMap<&'static str, Person> = [
        ("P0", "علی", "رضایی", "09121593574"),
        ("P1", "سارا", "کریمی", "09124862179"),
        ("P2", "مریم", "کاظمی", "09127315948"),
        ("P3", "رضا", "احمدی", "09183649251"),
        ("I0", "حسن", "نوری", "09352748169"),
        ("I1", "ندا", "موسوی", "09196274853"),
        ("I2", "امید", "جعفری", "09901357246"),
    ]
    .into_iter()
    .map(|(k, given, family, mobile)| {
        (
            k,
            Person {
                given,
                family,
                mobile,
            },
        )
    })
    .collect();
    let ids: BTreeMap<&str, String> = [
        ("P0", nid("001354241")),
        ("P1", nid("002468135")),
        ("P2", nid("004681357")),
        ("P3", nid("005792468")),
    ]
    .into_iter()
    .collect();
    // Holders: two dealers each, the second spelling another way (ی/ي, ک/ك, Persian digits).
    for (who, home, other) in [
        ("P0", "D-1001", "D-1002"),
        ("P1", "D-1002", "D-1003"),
        ("P2", "D-1001", "D-1003"),
        ("P3", "D-1002", "D-1001"),
    ] {
        let p = &people[who];
        let id = &ids[who];
        push(home, history::person(who, p.given, p.family, id, p.mobile));
        let arabic = |s: &str| s.replace('ی', "ي").replace('ک', "ك");
        let variant = history::person(
            &format!("{who}b"),
            &arabic(p.given),
            &arabic(p.family),
            &persian_digits(id),
            &format!("+98{}", &p.mobile[1..]),
        );
        push(other, variant);
        parties
            .entry(who)
            .or_default()
            .extend([(home.into(), who.into()), (other.into(), format!("{who}b"))]);
    }
    // Impostors: someone else's code melli, their own name and mobile.
    let impostors = vec![("P0", "I0"), ("P1", "I1"), ("P2", "I2")];
    for (holder, impostor, dealer) in [
        ("P0", "I0", "D-1003"),
        ("P1", "I1", "D-1001"),
        ("P2", "I2", "D-1002"),
    ] {
        let p = &people[impostor];
        push(
            dealer,
            history::person(impostor, p.given, p.family, &ids[holder], p.mobile),
        );
        parties
            .entry(impostor)
            .or_default()
            .push((dealer.into(), impostor.into()));
    }
    // What each of them did.
    push(
        "D-1001",
        history::delivery(&vin(1), "P0", NOW_MS - 400 * DAY),
    );
    push(
        "D-1002",
        history::repair_order("RO-1", &vin(1), "P0b", NOW_MS - 100 * DAY, 9_000),
    ); // P0: active
    push("D-1002", lead("P1", NOW_MS - 20 * DAY)); // P1: prospect
    push(
        "D-1001",
        history::delivery(&vin(2), "P2", NOW_MS - 30 * DAY),
    ); // P2: new owner
    push("D-1001", lead("P3b", NOW_MS - 5 * DAY)); // P3: prospect
    push(
        "D-1003",
        history::delivery(&vin(3), "I0", NOW_MS - 10 * DAY),
    ); // I0: new owner
    push("D-1001", lead("I1", NOW_MS - 3 * DAY)); // I1: prospect
    push("D-1002", lead("I2", NOW_MS - 8 * DAY)); // I2: prospect
    Scenario {
        logs,
        parties,
        people,
        impostors,
    }
}

async fn judged_hub(dir: &std::path::Path, s: &Scenario, order_seed: u64) -> Hub<SledStore> {
    let hub = judged::hub(dir, DealerRegistry::default(), NOW_MS);
    let logs: BTreeMap<String, Vec<pb::Record>> = s
        .logs
        .iter()
        .map(|(d, log)| (d.clone(), log.records.clone()))
        .collect();
    judged::feed(&hub, &logs, order_seed).await;
    hub
}

fn customer_of(store: &SledStore, p: &PartyKey) -> Option<String> {
    store.link(p).expect("link")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostors_code_melli_never_mixes_two_people() {
    let s = scenario();
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged_hub(dir.path(), &s, 0).await;
    let store = hub.store().expect("store");

    // Each person is exactly one customer, made of their own records only.
    let mut customer_of_person: BTreeMap<&str, String> = BTreeMap::new();
    for (who, parties) in &s.parties {
        let ids: BTreeSet<Option<String>> =
            parties.iter().map(|p| customer_of(&store, p)).collect();
        assert_eq!(ids.len(), 1, "{who}'s records are one customer: {ids:?}");
        let id = ids.into_iter().next().flatten().expect("linked");
        let golden = store.customer(&id).expect("read").expect("customer");
        let mut linked = golden.parties.clone();
        linked.sort();
        let mut own = parties.clone();
        own.sort();
        assert_eq!(
            linked, own,
            "{who}'s customer links their records and no other"
        );
        customer_of_person.insert(who, id);
    }
    let distinct: BTreeSet<&String> = customer_of_person.values().collect();
    assert_eq!(
        distinct.len(),
        s.people.len(),
        "seven people, seven customers"
    );

    // No golden record carries a name or mobile of another person, not even as an alternative.
    let normal = hamgam_proto::text::normalize;
    for (who, id) in &customer_of_person {
        let golden = store.customer(id).expect("read").expect("customer");
        let me = &s.people[who];
        let my_name = normal(&format!("{} {}", me.given, me.family));
        let name = &golden.fields["name"];
        for value in std::iter::once(&name.value).chain(name.alternatives.iter().map(|a| &a.0)) {
            assert_eq!(normal(value), my_name, "{who}'s golden name");
        }
        let mobile = &golden.fields["mobile"];
        let mine = format!("+98{}", &me.mobile[1..]);
        for value in std::iter::once(&mobile.value).chain(mobile.alternatives.iter().map(|a| &a.0))
        {
            assert_eq!(value, &mine, "{who}'s golden mobile");
        }
        assert!(
            golden.conflicts.iter().all(|c| c.field != "name"),
            "{who}: {:?}",
            golden.conflicts
        );
    }

    // Every impostor pair, and only those, waits for HQ, naming the rule.
    let reviews = store.reviews(None, 100).expect("reviews");
    let listed: BTreeSet<(PartyKey, PartyKey)> = reviews
        .iter()
        .inspect(|r| assert!(r.reason.contains("C07"), "{r:?}"))
        .map(|r| (r.a.clone(), r.b.clone()))
        .collect();
    let mut expected = BTreeSet::new();
    for (holder, impostor) in &s.impostors {
        for h in &s.parties[holder] {
            for i in &s.parties[impostor] {
                expected.insert(if h < i {
                    (h.clone(), i.clone())
                } else {
                    (i.clone(), h.clone())
                });
            }
        }
    }
    assert_eq!(listed, expected);
    // Every record of a shared code melli carries C07; the others do not.
    for (who, parties) in &s.parties {
        let shared = s.impostors.iter().any(|(h, i)| h == who || i == who);
        for (dealer_id, customer_ref) in parties {
            let log = &s.logs[dealer_id];
            let seq = log
                .records
                .iter()
                .position(|r| {
                    matches!(&r.payload, Some(Payload::Customer(c)) if &c.customer_ref == customer_ref)
                })
                .expect("record") as u64
                + 1;
            let record = store.record(dealer_id, seq).expect("read").expect("record");
            let c07 = record.verdict.findings.iter().any(|f| f.rule_id == "C07");
            assert_eq!(c07, shared, "{who} at {dealer_id}");
        }
    }

    // Lifecycle counts by hand: P0 active; P2 and I0 new owners; P1, P3, I1, I2 prospects.
    let config = LifecycleConfig::default();
    let all = CustomerFilter::default();
    let counted = stages::report(
        &*store,
        &config,
        GroupBy::Dealer,
        &all,
        &|_| None,
        NOW_MS,
        |_| {},
    )
    .expect("report");
    let counts: BTreeMap<Stage, u64> = counted.total.all_facts.counts.clone();
    let hand: BTreeMap<Stage, u64> = [
        (Stage::Active, 1),
        (Stage::NewOwner, 2),
        (Stage::Prospect, 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, hand);
    assert_eq!(counted.total.customers, 7);

    // HQ keeps one impostor apart: the pair leaves the queue, the customers stay as they were.
    let (holder, impostor) = s.impostors[0];
    for h in &s.parties[holder] {
        hub.decide(
            HqDecision::KeepApart {
                a: h.clone(),
                b: s.parties[impostor][0].clone(),
            },
            "hq-crm",
            "two people: the card's photo is not the customer",
        )
        .await
        .expect("keep apart");
    }
    let left = store.reviews(None, 100).expect("reviews");
    assert_eq!(left.len(), expected.len() - s.parties[holder].len());
    assert_eq!(
        customer_of(&store, &s.parties[holder][0]),
        Some(customer_of_person[holder].clone())
    );
    // HQ detaches another impostor's record: it stands alone, its pairs leave the queue.
    let (holder, impostor) = s.impostors[1];
    hub.decide(
        HqDecision::Detach {
            party: s.parties[impostor][0].clone(),
        },
        "hq-crm",
        "not the holder of this code melli",
    )
    .await
    .expect("detach");
    let left: BTreeSet<(PartyKey, PartyKey)> = store
        .reviews(None, 100)
        .expect("reviews")
        .into_iter()
        .map(|r| (r.a, r.b))
        .collect();
    let (last_holder, last_impostor) = s.impostors[2];
    assert!(left.iter().all(|(a, b)| {
        let pair = [a, b];
        pair.contains(&&s.parties[last_impostor][0])
            && s.parties[last_holder].iter().any(|h| pair.contains(&h))
    }));
    assert_eq!(left.len(), s.parties[last_holder].len());
    assert_ne!(
        customer_of(&store, &s.parties[impostor][0]),
        customer_of(&store, &s.parties[holder][0])
    );
    // HQ links the last pair after checking: one customer, the names now a conflict.
    for h in &s.parties[last_holder] {
        hub.decide(
            HqDecision::Link {
                a: h.clone(),
                b: s.parties[last_impostor][0].clone(),
            },
            "hq-crm",
            "the same person after all: a married name",
        )
        .await
        .expect("link");
    }
    assert!(store.reviews(None, 100).expect("reviews").is_empty());
    let linked = customer_of(&store, &s.parties[last_impostor][0]).expect("linked");
    assert_eq!(
        customer_of(&store, &s.parties[last_holder][0]),
        Some(linked.clone())
    );
    let golden = store.customer(&linked).expect("read").expect("customer");
    assert!(golden.conflicts.iter().any(|c| c.field == "name"));
    drop(store);
    hub.close().await;

    // Another delivery order (decisions aside) gives the same state.
    let again_dir = tempfile::tempdir().expect("tempdir");
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let reference = judged_hub(reference_dir.path(), &s, 0).await;
    let again = judged_hub(again_dir.path(), &s, 5).await;
    assert_eq!(
        reference.digest().expect("digest"),
        again.digest().expect("digest")
    );
    reference.close().await;
    again.close().await;
}
