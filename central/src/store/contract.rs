//! The contract every [`HubStore`] implementation keeps, as a test suite: call [`check_all`]
//! with a way to open the implementation on a folder (sled) or a database (a later backend)
//! from the implementation's own tests (`tests/tests/store_contract.rs` runs it on sled).
//!
//! What it holds the store to: a change is applied whole or not at all; the store numbers
//! verdict-feed cursors, change-stream cursors and decision numbers itself, without gaps
//! between units of work that succeed; a unit of work judged on a dealer's stale stored seq is
//! refused as a retryable [`StoreError::Conflict`] and leaves nothing behind; session facts
//! and a unit of work's counters never overwrite each other; the access audit is numbered and
//! append-only; the touched log is written with its unit of work, numbered on above what the
//! summaries were read to even after it was forgotten, and summaries move with their log
//! position in one write; everything applied before a flush is there after reopening.

use std::collections::BTreeMap;

use super::{AccessEntry, Change, DealerDelta, HubStore, ReadTo, StoreError};
use crate::domain::{ChangeEntry, Outcome, StoredRecord, Verdict};
use crate::model::groups::{Fact, GroupKey, Member};

/// Opens the implementation under test on `place` (a folder here; a database name for a
/// server-backed store), creating it when empty.
pub type Opener<'a, S> = &'a dyn Fn(&std::path::Path) -> Result<S, StoreError>;

/// Runs every check on fresh places under `root`; panics naming the broken promise.
pub fn check_all<S: HubStore>(root: &std::path::Path, open: Opener<'_, S>) {
    let place = |name: &str| root.join(name);
    a_change_is_applied_whole(open, &place("whole"));
    a_stale_unit_of_work_is_a_conflict_and_leaves_nothing(open, &place("conflict"));
    the_store_numbers_verdict_feeds_per_dealer(open, &place("feeds"));
    the_store_numbers_the_change_stream_across_units_and_reopening(open, &place("changes"));
    decision_numbers_come_from_the_store_and_survive_reopening(open, &place("decisions"));
    sessions_and_units_of_work_never_overwrite_each_other(open, &place("sessions"));
    the_access_audit_is_numbered_and_append_only(open, &place("audit"));
    an_enrolment_token_works_once_even_when_uses_race(open, &place("tokens"));
    a_member_has_its_neighbours_in_dealer_order(open, &place("neighbours"));
    a_large_group_keeps_every_member_in_dealer_order(open, &place("large-group"));
    a_vehicle_keeps_its_facts_until_none_are_left(open, &place("vehicle-facts"));
    indexes_are_written_once_and_still_answer(open, &place("indexes"));
    a_party_keeps_what_each_unit_of_work_said_of_it(open, &place("parties"));
    the_touched_log_is_numbered_with_the_work_and_summaries_move_with_it(open, &place("summaries"));
}

/// A minimal stored record of `dealer` at `seq`.
pub fn record(dealer: &str, seq: u64, outcome: Outcome) -> StoredRecord {
    let record_id = format!("{dealer}-r{seq}");
    StoredRecord {
        record_id: record_id.clone(),
        dealer_id: dealer.to_owned(),
        seq,
        kind: "survey".into(),
        recorded_at_ms: 1_795_000_000_000,
        received_at_ms: 1_795_000_000_000,
        origin: None,
        wire: vec![seq as u8; 8],
        own_findings: Vec::new(),
        group_findings: BTreeMap::new(),
        groups: Vec::new(),
        corrected_by: None,
        retracted: false,
        amended: None,
        hlc: (1_795_000_000_000, 0),
        clock_offset_ms: 0,
        flag_reviews: BTreeMap::new(),
        verdict: Verdict {
            record_id,
            seq,
            outcome,
            findings: Vec::new(),
            version: 1,
            decided_at_ms: 1_795_000_000_000,
        },
    }
}

/// The unit of work of a batch of `seqs` of `dealer`, judged on `stored_before`.
pub fn batch(dealer: &str, stored_before: u64, seqs: std::ops::RangeInclusive<u64>) -> Change {
    let records: Vec<StoredRecord> = seqs
        .clone()
        .map(|s| record(dealer, s, Outcome::Accepted))
        .collect();
    let group = GroupKey::DealerMonth {
        dealer: dealer.to_owned(),
        month: "2026-11".into(),
    };
    Change {
        dealers: vec![(
            dealer.to_owned(),
            DealerDelta {
                expect_stored_seq: Some(stored_before),
                stored_seq: *seqs.end(),
                records_added: records.len() as u64,
                rejected_delta: 0,
                seen_ms: 1_795_000_000_000,
            },
        )],
        joined: records
            .iter()
            .map(|r| {
                (
                    group.clone(),
                    Member {
                        dealer_id: dealer.to_owned(),
                        seq: r.seq,
                        fact: Fact::Survey {
                            submitted_ms: r.recorded_at_ms,
                            top_score: false,
                        },
                        current: Vec::new(),
                    },
                )
            })
            .collect(),
        changes: records
            .iter()
            .map(|r| ChangeEntry::RecordStored {
                dealer_id: dealer.to_owned(),
                seq: r.seq,
                verdict: r.verdict.clone(),
            })
            .collect(),
        at_ms: 1_795_000_000_000,
        records,
        ..Change::default()
    }
}

fn reopen<S: HubStore>(store: S, open: Opener<'_, S>, place: &std::path::Path) -> S {
    store.flush().expect("flush");
    drop(store);
    open(place).expect("the store reopens")
}

/// `neighbours` answers from the group's own members only (not the next group's in key
/// order), in `(dealer, seq)` order, for a member and for a place that is not one; a record's
/// origin survives a reopen.
fn a_member_has_its_neighbours_in_dealer_order<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    let source = |name: &str| GroupKey::SourceSequence {
        dealer: "D-1".into(),
        source: name.into(),
    };
    let member = |seq: u64| Member {
        dealer_id: "D-1".into(),
        seq,
        fact: Fact::Made {
            created_ms: 1_700_000_000_000 + seq as i64,
        },
        current: Vec::new(),
    };
    let mut change = batch("D-1", 0, 1..=6);
    change.joined = [1, 2, 5]
        .into_iter()
        .map(|s| (source("dms:a"), member(s)))
        .chain([3, 4, 6].into_iter().map(|s| (source("dms:b"), member(s))))
        .collect();
    change.records[0].origin = Some(crate::domain::RecordOrigin {
        source_system: "dms:a".into(),
        created_at_ms: 1_700_000_000_001,
    });
    store.apply(&change).expect("applied");
    let seqs = |(before, after): (Option<Member>, Option<Member>)| {
        (before.map(|m| m.seq), after.map(|m| m.seq))
    };
    let a = source("dms:a");
    let around = |seq| seqs(store.neighbours(&a, "D-1", seq).expect("read"));
    assert_eq!(around(1), (None, Some(2)));
    assert_eq!(around(2), (Some(1), Some(5)));
    assert_eq!(
        around(5),
        (Some(2), None),
        "dms:b's members follow in key order"
    );
    assert_eq!(around(3), (Some(2), Some(5)), "a place that is no member");
    assert_eq!(
        seqs(store.neighbours(&source("dms:b"), "D-1", 3).expect("read")),
        (None, Some(4))
    );
    let store = reopen(store, open, place);
    let first = store.record("D-1", 1).expect("read").expect("stored");
    assert_eq!(first.made_at_ms(), 1_700_000_000_001);
    assert_eq!(
        first.origin.map(|o| o.source_system).as_deref(),
        Some("dms:a")
    );
}

/// A group of 40 members from three dealers, joined out of order over several units of work,
/// some of them judged again and some leaving: its members, each member and each place's
/// neighbours are those of the same members in `(dealer, seq)` order, before and after a
/// reopen, and its state stays what the last unit said.
fn a_large_group_keeps_every_member_in_dealer_order<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    use crate::domain::{Finding, Reason, Severity};
    use crate::model::groups::GroupState;
    let group = GroupKey::Vin("NAAM01CA7PK123456".into());
    let member = |dealer: &str, seq: u64, judged: u32| Member {
        dealer_id: dealer.into(),
        seq,
        fact: Fact::Made {
            created_ms: 1_700_000_000_000 + seq as i64,
        },
        current: (0..judged)
            .map(|n| Finding {
                rule_id: "V05".into(),
                severity: Severity::Flag,
                field: format!("odometer_km.{n}"),
                reason: Reason::written("again".into(), "دوباره".into()),
            })
            .collect(),
    };
    let dealers = ["D-2", "D-10", "D-1"];
    // Scrambled: every dealer's members arrive from high seqs to low, interleaved.
    let all: Vec<(&str, u64)> = (1..=14u64)
        .rev()
        .flat_map(|seq| dealers.iter().map(move |d| (*d, seq * 3)))
        .filter(|(d, seq)| !(*d == "D-1" && *seq > 36))
        .collect();
    assert_eq!(all.len(), 40);
    let store = open(place).expect("opens");
    let mut expected: std::collections::BTreeMap<(Vec<u8>, u64), Member> = Default::default();
    for (n, chunk) in all.chunks(7).enumerate() {
        let mut change = batch("D-9", n as u64, n as u64 + 1..=n as u64 + 1);
        for (dealer, seq) in chunk {
            let m = member(dealer, *seq, 0);
            expected.insert((dealer.as_bytes().to_vec(), *seq), m.clone());
            change.joined.push((group.clone(), m));
        }
        if n == 2 {
            // Judged again: one of the first members and one of the later ones.
            for (dealer, seq) in [all[0], all[30]] {
                let m = member(dealer, seq, 2);
                expected.insert((dealer.as_bytes().to_vec(), seq), m.clone());
                change.joined.push((group.clone(), m));
            }
        }
        if n == 4 {
            // Leaving: a first member and a later one.
            for (dealer, seq) in [all[1], all[20]] {
                expected.remove(&(dealer.as_bytes().to_vec(), seq));
                change.left.push((group.clone(), dealer.to_owned(), seq));
            }
        }
        let state = GroupState {
            surveys: n as u64,
            ..GroupState::default()
        };
        change.group_states.push((group.clone(), Some(state)));
        store.apply(&change).expect("applied");
    }
    let check = |store: &S| {
        let want: Vec<Member> = expected.values().cloned().collect();
        assert_eq!(
            store.members(&group).expect("read"),
            want,
            "in (dealer, seq) order"
        );
        for (i, m) in want.iter().enumerate() {
            assert_eq!(
                store
                    .member(&group, &m.dealer_id, m.seq)
                    .expect("read")
                    .as_ref(),
                Some(m)
            );
            let (before, after) = store.neighbours(&group, &m.dealer_id, m.seq).expect("read");
            assert_eq!(before.as_ref(), i.checked_sub(1).map(|j| &want[j]), "{i}");
            assert_eq!(after.as_ref(), want.get(i + 1), "{i}");
        }
        for (dealer, seq) in [all[1], all[20], ("D-10", 4), ("D-3", 1)] {
            assert_eq!(store.member(&group, dealer, seq).expect("read"), None);
            let (before, after) = store.neighbours(&group, dealer, seq).expect("read");
            let place = (dealer.as_bytes().to_vec(), seq);
            assert_eq!(
                before.as_ref(),
                expected.range(..place.clone()).next_back().map(|e| e.1)
            );
            assert_eq!(after.as_ref(), expected.range(place..).next().map(|e| e.1));
        }
        assert_eq!(
            store.group_state(&group).expect("read").map(|s| s.surveys),
            Some(5)
        );
    };
    check(&store);
    let store = reopen(store, open, place);
    check(&store);
    let mut change = batch("D-9", 6, 7..=7);
    change.left = expected
        .values()
        .map(|m| (group.clone(), m.dealer_id.clone(), m.seq))
        .collect();
    change.group_states.push((group.clone(), None));
    store.apply(&change).expect("applied");
    assert!(store.members(&group).expect("read").is_empty(), "all left");
    assert_eq!(store.group_state(&group).expect("read"), None);
}

fn a_change_is_applied_whole<S: HubStore>(open: Opener<'_, S>, place: &std::path::Path) {
    let store = open(place).expect("opens");
    store.apply(&batch("D-1", 0, 1..=3)).expect("applied");
    let state = store.dealer("D-1").expect("read").expect("the dealer");
    assert_eq!((state.stored_seq, state.record_count), (3, 3));
    for seq in 1..=3 {
        let r = store
            .record("D-1", seq)
            .expect("read")
            .expect("each record");
        assert_eq!(r.record_id, format!("D-1-r{seq}"));
        assert_eq!(
            store.locate(&r.record_id).expect("read"),
            Some(("D-1".to_owned(), seq))
        );
    }
    let group = GroupKey::DealerMonth {
        dealer: "D-1".into(),
        month: "2026-11".into(),
    };
    assert_eq!(store.members(&group).expect("read").len(), 3);
    let store = reopen(store, open, place);
    assert_eq!(store.records("D-1", 0, 10).expect("read").len(), 3);
    assert_eq!(
        store.dealer("D-1").expect("read").map(|s| s.stored_seq),
        Some(3)
    );
}

fn a_stale_unit_of_work_is_a_conflict_and_leaves_nothing<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    store.apply(&batch("D-1", 0, 1..=2)).expect("applied");
    let before = store.last_change().expect("read");
    // Judged as if the dealer held nothing: another writer stored 1..=2 meanwhile.
    let mut stale = batch("D-1", 0, 1..=2);
    stale.records.iter_mut().for_each(|r| r.wire = vec![9; 8]);
    stale
        .verdict_updates
        .push(("D-2".into(), record("D-2", 1, Outcome::Rejected).verdict));
    let refused = store
        .apply(&stale)
        .expect_err("a stale unit of work is refused");
    assert!(
        refused.is_retryable() && matches!(refused, StoreError::Conflict(_)),
        "{refused}"
    );
    assert_eq!(
        store.record("D-1", 1).expect("read").map(|r| r.wire),
        Some(vec![1; 8])
    );
    assert_eq!(
        store.last_change().expect("read"),
        before,
        "no change-stream entry"
    );
    assert!(store
        .verdict_updates("D-2", 0, 10)
        .expect("read")
        .is_empty());
    assert_eq!(
        store.dealer("D-1").expect("read").map(|s| s.record_count),
        Some(2)
    );
    // Judged again on what is held, it goes through.
    store.apply(&batch("D-1", 2, 3..=3)).expect("applied");
    assert_eq!(
        store.dealer("D-1").expect("read").map(|s| s.stored_seq),
        Some(3)
    );
}

fn the_store_numbers_verdict_feeds_per_dealer<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    let change = |updates: &[(&str, u64)]| Change {
        verdict_updates: updates
            .iter()
            .map(|(d, seq)| (d.to_string(), record(d, *seq, Outcome::Rejected).verdict))
            .collect(),
        ..Change::default()
    };
    let applied = store
        .apply(&change(&[("D-1", 1), ("D-2", 7), ("D-1", 2)]))
        .expect("applied");
    let mut cursors = applied.verdict_cursors.clone();
    cursors.sort();
    assert_eq!(cursors, vec![("D-1".into(), 2), ("D-2".into(), 1)]);
    let store = reopen(store, open, place);
    let applied = store.apply(&change(&[("D-1", 3)])).expect("applied");
    assert_eq!(applied.verdict_cursors, vec![("D-1".into(), 3)]);
    let feed: Vec<(u64, u64)> = store
        .verdict_updates("D-1", 0, 10)
        .expect("read")
        .into_iter()
        .map(|(c, v)| (c, v.seq))
        .collect();
    assert_eq!(feed, vec![(1, 1), (2, 2), (3, 3)], "cursor, seq in order");
    assert_eq!(store.verdict_updates("D-1", 2, 10).expect("read").len(), 1);
    assert_eq!(
        store.dealer("D-1").expect("read").map(|s| s.verdict_cursor),
        Some(3)
    );
}

fn the_store_numbers_the_change_stream_across_units_and_reopening<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    assert_eq!(store.last_change().expect("read"), 0);
    let first = store.apply(&batch("D-1", 0, 1..=3)).expect("applied");
    assert_eq!(first.last_change, Some(3));
    let none = store.apply(&Change::default()).expect("applied");
    assert_eq!(none.last_change, None, "a change without entries adds none");
    let store = reopen(store, open, place);
    let second = store.apply(&batch("D-2", 0, 1..=2)).expect("applied");
    assert_eq!(second.last_change, Some(5));
    let cursors: Vec<u64> = store
        .changes(0, 10)
        .expect("read")
        .iter()
        .map(|e| e.cursor)
        .collect();
    assert_eq!(cursors, vec![1, 2, 3, 4, 5]);
    assert_eq!(store.changes(3, 10).expect("read").len(), 2);
    assert_eq!(store.last_change().expect("read"), 5);
}

fn decision_numbers_come_from_the_store_and_survive_reopening<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    let a = store.next_decision_no().expect("a number");
    let b = store.next_decision_no().expect("a number");
    assert_eq!((a, b), (1, 2));
    let entry = crate::model::customer::DecisionEntry {
        no: b,
        decision: crate::model::customer::HqDecision::Detach {
            party: ("D-1".into(), "C-1".into()),
        },
        by: "hq/reviewer/test".into(),
        comment: String::new(),
        at_ms: 1_795_000_000_000,
    };
    let mut change = Change::default();
    change.merge.decisions.push(entry);
    store.apply(&change).expect("applied");
    let store = reopen(store, open, place);
    assert_eq!(store.last_decision().expect("read"), 2);
    assert!(
        store.next_decision_no().expect("a number") > 2,
        "numbers after reopening are above every logged decision"
    );
}

fn sessions_and_units_of_work_never_overwrite_each_other<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    let hello = store
        .open_session("D-9", 4_000, 1_795_000_000_500)
        .expect("a session");
    assert_eq!(
        (hello.stored_seq, hello.clock_offset_ms),
        (0, 4_000),
        "a dealer known only by its hello"
    );
    assert!(store
        .dealers()
        .expect("read")
        .iter()
        .any(|(d, _)| d == "D-9"));
    store.apply(&batch("D-9", 0, 1..=2)).expect("applied");
    let mut feed = Change::default();
    for seq in 1..=2 {
        feed.verdict_updates
            .push(("D-9".into(), record("D-9", seq, Outcome::Rejected).verdict));
    }
    store.apply(&feed).expect("applied");
    assert_eq!(
        store.acknowledge_verdicts("D-9", 9).expect("ack"),
        0,
        "never past the feed"
    );
    assert_eq!(store.acknowledge_verdicts("D-9", 2).expect("ack"), 2);
    assert_eq!(
        store.acknowledge_verdicts("D-9", 1).expect("ack"),
        2,
        "never back"
    );
    let again = store
        .open_session("D-9", -2_000, 1_795_000_000_900)
        .expect("a session");
    assert_eq!(
        (again.stored_seq, again.record_count, again.verdict_cursor),
        (2, 2, 2),
        "a hello keeps the counters a unit of work wrote"
    );
    store.apply(&batch("D-9", 2, 3..=3)).expect("applied");
    let store = reopen(store, open, place);
    let state = store.dealer("D-9").expect("read").expect("the dealer");
    assert_eq!(
        (
            state.stored_seq,
            state.clock_offset_ms,
            state.verdicts_acked
        ),
        (3, -2_000, 2),
        "a unit of work keeps the session's offset and acknowledgements"
    );
    assert_eq!(
        state.first_seen_ms, 1_795_000_000_000,
        "first seen is the earliest sighting: the batch's receive time, before the hello"
    );
}

fn the_access_audit_is_numbered_and_append_only<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    let entry = |rpc: &str| AccessEntry {
        who: "hq/reader/crm".into(),
        rpc: rpc.into(),
        count: 1,
        ..AccessEntry::default()
    };
    assert_eq!(
        store.append_access(&entry("GetCustomer")).expect("audited"),
        1
    );
    assert_eq!(store.append_access(&entry("Export")).expect("audited"), 2);
    let store = reopen(store, open, place);
    assert_eq!(store.append_access(&entry("Decide")).expect("audited"), 3);
    let log: Vec<(u64, String)> = store
        .access_log(0, 10)
        .expect("read")
        .into_iter()
        .map(|e| (e.no, e.rpc))
        .collect();
    assert_eq!(
        log,
        vec![
            (1, "GetCustomer".to_owned()),
            (2, "Export".to_owned()),
            (3, "Decide".to_owned())
        ]
    );
}

fn an_enrolment_token_works_once_even_when_uses_race<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    use super::UsedToken;
    let used = |addr: &str| UsedToken {
        dealer_id: "D-1".into(),
        at_ms: 1_795_000_000_000,
        remote_addr: addr.into(),
    };
    {
        let store = open(place).expect("opens");
        // Eight racing uses of one token: exactly one wins; the others see the winner's use.
        let outcomes: Vec<Option<UsedToken>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let store = &store;
                    scope.spawn(move || {
                        store
                            .use_enrolment_token("aa", &used(&format!("10.0.0.{i}:1")))
                            .expect("answers")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        let winners = outcomes.iter().filter(|o| o.is_none()).count();
        assert_eq!(winners, 1, "{outcomes:?}");
        let first = outcomes
            .iter()
            .flatten()
            .next()
            .expect("losers saw a use")
            .clone();
        assert!(outcomes.iter().flatten().all(|o| *o == first));
        // Another token is its own.
        assert_eq!(
            store
                .use_enrolment_token("bb", &used("x"))
                .expect("answers"),
            None
        );
    }
    // Durable: a reopened store still knows the token was used.
    let store = open(place).expect("reopens");
    assert!(store
        .use_enrolment_token("aa", &used("again"))
        .expect("answers")
        .is_some());
}

fn a_vehicle_keeps_its_facts_until_none_are_left<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    use crate::content::{PartyRole, SaleCategory};
    use crate::model::customer::{Provenance, Stamp, Trust};
    use crate::model::vehicle::{VehicleEvent, VehicleFact, VehicleSales};
    // Two VINs, the second sorting right after the first.
    const VIN: &str = "NAPAB81BGSA012345";
    const NEXT: &str = "NAPAB81BGSA012346";
    let fact = |seq: u64, event: VehicleEvent| VehicleFact {
        event_ms: 1_795_000_000_000 + seq as i64,
        event,
        source: Provenance {
            dealer_id: "D-1".into(),
            record_id: format!("D-1-r{seq}"),
            seq,
            stamp: Stamp {
                wall_ms: 1_795_000_000_000,
                logical: 0,
            },
            trust: Trust::Clean,
        },
    };
    let sale = fact(
        1,
        VehicleEvent::Delivery {
            category: SaleCategory::Retail,
            parties: vec![(PartyRole::Buyer, "C-1".into())],
        },
    );
    let visit = fact(
        2,
        VehicleEvent::RepairOrder {
            owner_ref: "C-1".into(),
            driver_ref: "C-2".into(),
        },
    );
    let sales = VehicleSales {
        deliveries: [("D-1".to_owned(), 1)].into_iter().collect(),
        losing: [("D-1".to_owned(), 1)].into_iter().collect(),
    };
    let buyer = ("D-1".to_owned(), "C-1".to_owned());
    let store = open(place).expect("opens");
    let mut change = batch("D-1", 0, 1..=3);
    let m = &mut change.merge;
    m.vehicle_facts
        .push(((VIN.into(), ("D-1".into(), 1)), Some(sale.clone())));
    m.vehicle_facts
        .push(((VIN.into(), ("D-1".into(), 2)), Some(visit.clone())));
    m.vehicle_facts
        .push(((NEXT.into(), ("D-1".into(), 3)), Some(visit.clone())));
    m.vehicle_sales.push((VIN.into(), Some(sales.clone())));
    m.party_vins.push((buyer.clone(), VIN.into()));
    store.apply(&change).expect("applied");
    let store = reopen(store, open, place);
    let facts = store.vehicle_facts(VIN).expect("read");
    assert_eq!(
        facts.into_iter().collect::<Vec<_>>(),
        vec![
            (("D-1".into(), 1), sale),
            (("D-1".into(), 2), visit.clone())
        ],
        "a vehicle's facts, one per record, survive reopening"
    );
    assert_eq!(
        store.vehicle_fact(VIN, &("D-1".into(), 2)).expect("read"),
        Some(visit)
    );
    assert_eq!(
        store.vehicle_fact(NEXT, &("D-1".into(), 1)).expect("read"),
        None
    );
    assert_eq!(store.vehicle_sales(VIN).expect("read"), Some(sales));
    assert_eq!(store.vehicle_sales(NEXT).expect("read"), None);
    assert_eq!(
        store.vehicle_vins("", 10).expect("read"),
        vec![VIN.to_owned(), NEXT.to_owned()],
        "each VIN listed once, however many facts it has"
    );
    assert_eq!(
        store.vehicle_vins("", 1).expect("read"),
        vec![VIN.to_owned()]
    );
    assert_eq!(
        store.vehicle_vins(VIN, 10).expect("read"),
        vec![NEXT.to_owned()]
    );
    assert!(store.party_names_vin(&buyer, VIN).expect("read"));
    assert!(!store.party_names_vin(&buyer, NEXT).expect("read"));

    let mut change = batch("D-1", 3, 4..=4);
    let m = &mut change.merge;
    m.vehicle_facts
        .push(((VIN.into(), ("D-1".into(), 1)), None));
    m.vehicle_facts
        .push(((VIN.into(), ("D-1".into(), 2)), None));
    m.vehicle_sales.push((VIN.into(), None));
    store.apply(&change).expect("applied");
    assert!(store.vehicle_facts(VIN).expect("read").is_empty());
    assert_eq!(store.vehicle_sales(VIN).expect("read"), None);
    assert_eq!(
        store.vehicle_vins("", 10).expect("read"),
        vec![NEXT.to_owned()],
        "a vehicle with no usable record left is not listed"
    );
}

/// The record-id and name-word indexes are written once: a record stored again with a later
/// verdict version is still found by its id, and a name word is indexed when a change lists it
/// (the merge lists only words a party did not have), not each time its party is written.
/// The judge's IDs, the merge's state, the link, the VINs and the records naming a party come
/// from different units of work: each unit changes what it names and keeps the rest.
fn a_party_keeps_what_each_unit_of_work_said_of_it<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    use crate::model::customer::Party;
    use crate::model::groups::PartyIds;
    let party = ("D-1".to_owned(), "C-1".to_owned());
    let only_ids = ("D-1".to_owned(), "C-9".to_owned());
    let ids = PartyIds {
        national_id: Some("0012345679".into()),
        company_id: None,
    };
    let state = Party {
        sources: [1, 3].into_iter().collect(),
        ..Party::default()
    };
    let store = open(place).expect("opens");
    let mut first = batch("D-1", 0, 1..=1);
    first
        .parties
        .push(("D-1".into(), "C-1".into(), ids.clone()));
    first
        .parties
        .push(("D-1".into(), "C-9".into(), ids.clone()));
    first.contacts.push((party.clone(), 1));
    store.apply(&first).expect("applied");
    let mut second = batch("D-1", 1, 2..=2);
    second.merge.parties.push((party.clone(), state.clone()));
    second
        .merge
        .links
        .push((party.clone(), Some("CUS-1".into())));
    second
        .merge
        .party_vins
        .push((party.clone(), "VIN-B".into()));
    store.apply(&second).expect("applied");
    let mut third = batch("D-1", 2, 3..=3);
    third.contacts.push((party.clone(), 3));
    third
        .merge
        .links
        .push((party.clone(), Some("CUS-2".into())));
    third.merge.party_vins.push((party.clone(), "VIN-A".into()));
    third.merge.party_vins.push((party.clone(), "VIN-B".into()));
    store.apply(&third).expect("applied");
    let store = reopen(store, open, place);
    assert_eq!(store.party("D-1", "C-1").expect("read"), Some(ids.clone()));
    assert_eq!(
        store.merge_party(&party).expect("read"),
        Some(state.clone())
    );
    assert_eq!(store.link(&party).expect("read").as_deref(), Some("CUS-2"));
    assert_eq!(
        store.party_vins(&party).expect("read"),
        vec!["VIN-A".to_owned(), "VIN-B".to_owned()],
        "each VIN once"
    );
    assert_eq!(store.contacts(&party).expect("read"), vec![1, 3]);
    assert_eq!(store.party("D-1", "C-9").expect("read"), Some(ids));
    assert_eq!(store.merge_party(&only_ids).expect("read"), None);
    assert_eq!(store.link(&only_ids).expect("read"), None);
    assert_eq!(
        store.merge_parties(None, 10).expect("read"),
        vec![(party.clone(), state.clone())],
        "only parties the merge holds a state of are listed"
    );
    let mut fourth = batch("D-1", 3, 4..=4);
    fourth.merge.links.push((party.clone(), None));
    store.apply(&fourth).expect("applied");
    assert_eq!(store.link(&party).expect("read"), None, "unlinked");
    assert_eq!(store.merge_party(&party).expect("read"), Some(state));
    assert_eq!(store.contacts(&party).expect("read"), vec![1, 3]);
    assert!(store.party_names_vin(&party, "VIN-A").expect("read"));
    assert!(!store.party_names_vin(&party, "VIN-C").expect("read"));
}

fn indexes_are_written_once_and_still_answer<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    use crate::model::customer::{Party, PartyView, Stamp, Trust};
    let store = open(place).expect("opens");
    let party = ("D-1".to_owned(), "C-7".to_owned());
    let named = Party {
        view: Some(PartyView {
            seq: 1,
            record_id: "D-1-r1".into(),
            organization: false,
            national_id: None,
            company_id: None,
            given_name: "علی".into(),
            family_name: "رضایی".into(),
            organization_name: String::new(),
            mobile: None,
            postal_code: None,
            trust: Trust::Clean,
            stamp: Stamp {
                wall_ms: 1_795_000_000_000,
                logical: 0,
            },
        }),
        ..Party::default()
    };
    let mut change = batch("D-1", 0, 1..=1);
    change.merge.parties.push((party.clone(), named.clone()));
    change
        .merge
        .name_words
        .push(("رضایی".to_owned(), party.clone()));
    store.apply(&change).expect("applied");
    // The same record again, its verdict changed (version 2), and the party written again
    // with no new word.
    let mut again = Change::default();
    let mut record = record("D-1", 1, Outcome::Rejected);
    record.verdict.version = 2;
    again.records.push(record);
    again.merge.parties.push((party.clone(), named));
    store.apply(&again).expect("applied");
    let store = reopen(store, open, place);
    assert_eq!(
        store.locate("D-1-r1").expect("read"),
        Some(("D-1".to_owned(), 1)),
        "a record stored again under a later verdict is found by its id"
    );
    assert_eq!(
        store.name_words("رضا", None, 10).expect("read"),
        vec![("رضایی".to_owned(), party.clone())],
        "a listed name word finds its party"
    );
    assert_eq!(
        store.name_words("", None, 10).expect("read").len(),
        1,
        "writing a named party indexes no word the change does not list"
    );
}

/// Each unit of work that touches something logs it under the next number, in the same write;
/// one that touches nothing logs nothing. Summaries and the position they were read to are
/// written together, read back in id order, and removed; after the log is forgotten and the
/// store reopened, numbering goes on above the position, never below it.
fn the_touched_log_is_numbered_with_the_work_and_summaries_move_with_it<S: HubStore>(
    open: Opener<'_, S>,
    place: &std::path::Path,
) {
    let store = open(place).expect("opens");
    assert_eq!(store.last_touched().expect("read"), 0);
    assert_eq!(
        store.summaries_read_to().expect("read"),
        None,
        "never built"
    );
    let first = batch("D-1", 0, 1..=2);
    store.apply(&first).expect("applied");
    store.apply(&Change::default()).expect("applied");
    store.apply(&batch("D-2", 0, 1..=1)).expect("applied");
    let log = store.touched(0, 10).expect("read");
    let numbers: Vec<u64> = log.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![1, 2], "an empty change logs nothing");
    assert_eq!(log[0].1, first.touched());
    assert_eq!(
        log[0].1.records,
        vec![("D-1".to_owned(), 1), ("D-1".to_owned(), 2)]
    );
    assert_eq!(store.touched(1, 10).expect("read").len(), 1);

    let writes = vec![
        ("CU-b".to_owned(), Some(b"two".to_vec())),
        ("CU-a".to_owned(), Some(b"one".to_vec())),
    ];
    store
        .put_summaries(&writes, ReadTo::At(2))
        .expect("written");
    assert_eq!(store.summaries_read_to().expect("read"), Some(2));
    let ids: Vec<String> = store
        .summaries("", 10)
        .expect("read")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec!["CU-a", "CU-b"]);
    assert_eq!(store.summaries("CU-a", 10).expect("read").len(), 1);
    assert_eq!(store.summary("CU-b").expect("read"), Some(b"two".to_vec()));
    store
        .put_summaries(&[("CU-a".to_owned(), None)], ReadTo::Keep)
        .expect("removed");
    assert_eq!(store.summary("CU-a").expect("read"), None);
    assert_eq!(
        store.summaries_read_to().expect("read"),
        Some(2),
        "a write without a position keeps it"
    );

    store.put_summaries(&[], ReadTo::Unbuilt).expect("unbuilt");
    assert_eq!(
        store.summaries_read_to().expect("read"),
        None,
        "a build under way"
    );
    assert_eq!(store.summaries("", 10).expect("read").len(), 1);
    store.put_summaries(&[], ReadTo::At(2)).expect("built");

    store.forget_touched(2).expect("forgotten");
    assert!(store.touched(0, 10).expect("read").is_empty());
    let store = reopen(store, open, place);
    store.apply(&batch("D-1", 2, 3..=3)).expect("applied");
    let numbers: Vec<u64> = store
        .touched(0, 10)
        .expect("read")
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(numbers, vec![3], "numbered on above what was read");
}
