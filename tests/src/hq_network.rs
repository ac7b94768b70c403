//! A small dealer network whose every HQ figure has a known answer (the hand counts of
//! `tests/tests/hq_analytics.rs`, and the console's browser test): two dealers, seven
//! customers, each segment, a fleet account, a web lead that becomes a delivery and one nobody
//! followed up, a complaint reopened and one open past its SLA, a survey a staff member entered,
//! a delivery on the last day of a quarter, a vehicle due by km and one due by time, a customer
//! about to be lost. [`sync`] captures it in real agent stores and syncs them to a hub.

use std::path::Path;

use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;

use crate::history::{delivery, nid, person, repair_order, vin};
use crate::{dealer, session_options, TestHub, TestPki};

pub const DAY: i64 = 86_400_000;
pub const HOUR: i64 = 3_600_000;
/// 2026-11-18 11:06 UTC: the hub and the agents run at this moment; reports are as of
/// midnight that day.
pub const NOW_MS: i64 = 1_795_000_000_000;
pub const TODAY: i64 = NOW_MS - NOW_MS % DAY;

pub fn ago(days: i64) -> i64 {
    TODAY - days * DAY
}

/// Midnight UTC of a date.
pub fn on(year: i32, month: u8, day: u8) -> i64 {
    let month = time::Month::try_from(month).expect("month");
    time::Date::from_calendar_date(year, month, day)
        .expect("date")
        .midnight()
        .assume_utc()
        .unix_timestamp()
        * 1000
}

fn customer(
    r: &str,
    given: &str,
    family: &str,
    id: &str,
    mobile: &str,
    segment: pb::CustomerSegment,
) -> Payload {
    let mut p = person(r, given, family, &nid(id), mobile);
    if let Payload::Customer(c) = &mut p {
        c.segment = segment as i32;
    }
    p
}

fn lead(r: &str, source: pb::LeadSource, at: i64) -> Payload {
    Payload::Lead(pb::Lead {
        lead_ref: format!("L-{r}-{at}"),
        customer_ref: r.into(),
        source: source as i32,
        model_interest: "Tara".into(),
        contacted_at_ms: at,
        salesperson_id: "S-1".into(),
        notes: String::new(),
    })
}

fn complaint(case: &str, r: &str, status: pb::ComplaintStatus, category: &str, at: i64) -> Payload {
    Payload::Complaint(pb::Complaint {
        case_ref: case.into(),
        customer_ref: r.into(),
        vin: String::new(),
        status: status as i32,
        category: category.into(),
        description: "صدای اضافه".into(),
        resolution: String::new(),
        event_at_ms: at,
    })
}

fn survey(
    r: &str,
    subject_ref: &str,
    channel: pb::SurveyChannel,
    answer: Option<(u32, u32)>,
    by_staff: bool,
    at: i64,
) -> Payload {
    Payload::Survey(pb::Survey {
        survey_ref: format!("SV-{r}-{at}"),
        customer_ref: r.into(),
        subject: pb::SurveySubject::RepairOrder as i32,
        subject_ref: subject_ref.into(),
        submitted_at_ms: at,
        channel: channel as i32,
        csat: answer.map_or(0, |a| a.0),
        nps: answer.map(|a| a.1),
        free_text: String::new(),
        respondent_mobile: String::new(),
        entered_by_staff_id: if by_staff {
            "S-2".into()
        } else {
            String::new()
        },
    })
}

fn fleet_delivery(vin: &str, r: &str, at: i64) -> Payload {
    let mut d = delivery(vin, r, at);
    if let Payload::RetailDelivery(d) = &mut d {
        d.sale_category = pb::SaleCategory::Fleet as i32;
        d.parties[0].role = pb::PartyRole::FleetAccount as i32;
    }
    d
}

/// The network, by dealer.
pub fn network() -> Vec<(&'static str, Vec<Payload>)> {
    use pb::ComplaintStatus as K;
    use pb::CustomerSegment as Seg;
    let v: Vec<String> = (1..=5).map(vin).collect();
    let d1 = vec![
        // C1: a web lead that becomes a delivery 10 days later; serviced 20 days ago.
        customer("C1", "علی", "رضایی", "001354241", "09121593574", Seg::B2c),
        lead("C1", pb::LeadSource::Web, ago(400)),
        delivery(&v[0], "C1", ago(390)),
        repair_order("RO-11", &v[0], "C1", ago(20), 12_000),
        survey(
            "C1",
            "RO-11",
            pb::SurveyChannel::Sms,
            Some((4, 8)),
            false,
            ago(19),
        ),
        survey(
            "C1",
            "RO-11",
            pb::SurveyChannel::Phone,
            None,
            false,
            ago(18),
        ),
        // Complaint K1: answered after a day, resolved after 10, reopened, closed.
        complaint("K1", "C1", K::Opened, "noise", ago(60)),
        complaint("K1", "C1", K::Updated, "noise", ago(59)),
        complaint("K1", "C1", K::Resolved, "noise", ago(50)),
        complaint("K1", "C1", K::Updated, "noise", ago(45)),
        complaint("K1", "C1", K::Closed, "noise", ago(40)),
        // C2: a fleet account (B2B); 200 km a day, so due by km 50 days after its service.
        customer("C2", "سارا", "محمدی", "002468135", "09124862179", Seg::B2b),
        fleet_delivery(&v[1], "C2", ago(500)),
        repair_order("RO-21", &v[1], "C2", ago(400), 20_005),
        // Entered by a staff member: flagged (Q01), out of the trusted-only figures.
        survey(
            "C2",
            "RO-21",
            pb::SurveyChannel::InStore,
            Some((5, 9)),
            true,
            ago(399),
        ),
        // C3: a phone lead followed up 70 days later by a complaint still open (past the SLA).
        customer("C3", "رضا", "احمدی", "004681357", "09183649251", Seg::B2c),
        lead("C3", pb::LeadSource::PhoneCall, ago(100)),
        complaint("K2", "C3", K::Opened, "billing", ago(30)),
    ];
    let d2 = vec![
        // C4 (B2G): delivered on the last day of a quarter, serviced in June: active a year on.
        customer("C4", "مینا", "کریمی", "005792468", "09352748169", Seg::B2g),
        delivery(&v[2], "C4", on(2025, 9, 30)),
        repair_order("RO-41", &v[2], "C4", on(2026, 6, 1), 8_000),
        // C5: a test drive, a delivery 11 days later, never serviced: due by time.
        customer("C5", "امید", "جعفری", "007924681", "09901357246", Seg::B2c),
        lead("C5", pb::LeadSource::TestDrive, on(2025, 9, 20)),
        delivery(&v[3], "C5", on(2025, 10, 1)),
        // C6: last serviced 350 days ago: recently_lost in 15 days.
        customer("C6", "ندا", "موسوی", "008135792", "09213579468", Seg::B2c),
        delivery(&v[4], "C6", ago(700)),
        repair_order("RO-61", &v[4], "C6", ago(350), 6_000),
        // C7: a web lead nobody followed up.
        customer("C7", "کیان", "نوری", "003579246", "09127315948", Seg::B2c),
        lead("C7", pb::LeadSource::Web, ago(5)),
    ];
    vec![("D-1001", d1), ("D-1002", d2)]
}

/// The regions of the network's dealers (for a hub's registry).
pub const REGIONS: [(&str, &str); 2] = [("D-1001", "Tehran"), ("D-1002", "Isfahan")];

/// Captures the network in an agent store per dealer under `dir`, on the hubs' clock
/// ([`NOW_MS`]), and syncs each to `hub` over mutual TLS.
pub async fn sync(pki: &TestPki, hub: &TestHub, dir: &Path) {
    let clock = hamgam_gateway::Clock::Fixed(NOW_MS);
    for (id, log) in network() {
        let store = AgentStore::open(&dir.join(id), dealer(id))
            .expect("agent store")
            .with_clock(clock);
        store
            .capture_many(log.into_iter().map(|p| ("S-1".to_owned(), p)).collect())
            .expect("captured");
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(id)));
        let options = hamgam_gateway::sync::SessionOptions {
            clock,
            ..session_options()
        };
        sync_loop::sync_once(&store, &endpoint, &options)
            .await
            .expect("syncs");
    }
}
