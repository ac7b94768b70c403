//! Lookup in the branch's own store: a customer by name (Persian-normalised, so Arabic and
//! Persian letters, digits of any script and spacing variants find the same person), by mobile
//! in any of its forms, or by national ID; and a VIN's history at this branch, with its history
//! across the network from the hub's one lookup for dealers (`VehicleLookup.GetServiceSummary`:
//! visits, odometer, condition, no customer's data) when the hub is reachable.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::record::v1::{CustomerUpsert, Outcome, Record};
use hamgam_proto::text::{normalize, normalize_digits};
use hamgam_proto::values::{Mobile, Vin};
use hamgam_proto::RecordKind;
use serde_json::{json, Value};

use super::pages::{date_time, kind_label};
use super::server::{self, Shared, WebState};
use super::templates::Lang;
use crate::store::StoreError;

/// `?q=`: what was searched for.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LookupQuery {
    pub q: Option<String>,
    pub lang: Option<String>,
}

/// Records read from the store per step of the scan.
const PAGE: usize = 1_000;
/// Customers shown at most.
const SHOWN: usize = 50;

/// What a search matches.
#[derive(Debug, PartialEq)]
enum Wanted {
    Vin(String),
    Mobile(String),
    NationalId(String),
    Name(String),
}

impl Wanted {
    fn of(query: &str) -> Option<Wanted> {
        let query = query.trim();
        if query.is_empty() {
            return None;
        }
        let digits = normalize_digits(query);
        if let Ok(vin) = Vin::parse(&digits.to_uppercase()) {
            return Some(Wanted::Vin(vin.as_str().to_owned()));
        }
        if let Ok(mobile) = Mobile::parse(&digits) {
            return Some(Wanted::Mobile(mobile.e164().to_owned()));
        }
        let bare: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
        if !bare.is_empty() && bare.chars().all(|c| c.is_ascii_digit()) {
            return Some(Wanted::NationalId(bare));
        }
        Some(Wanted::Name(name_key(query)))
    }
}

/// A name as the search compares it: normalised, without spaces or zero-width joiners.
fn name_key(raw: &str) -> String {
    normalize(raw)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{200c}')
        .collect()
}

fn customer_name(c: &CustomerUpsert) -> String {
    if c.organization_name.trim().is_empty() {
        format!("{} {}", c.given_name.trim(), c.family_name.trim())
            .trim()
            .to_owned()
    } else {
        c.organization_name.trim().to_owned()
    }
}

fn matches(c: &CustomerUpsert, wanted: &Wanted) -> bool {
    let pad = |id: &str| format!("{:0>10}", normalize_digits(id).trim());
    match wanted {
        Wanted::Name(key) => !key.is_empty() && name_key(&customer_name(c)).contains(key.as_str()),
        Wanted::Mobile(e164) => {
            Mobile::parse(&normalize_digits(&c.mobile)).is_ok_and(|m| m.e164() == e164.as_str())
        }
        Wanted::NationalId(id) => {
            (!c.national_id.is_empty() && pad(&c.national_id) == pad(id))
                || normalize_digits(&c.company_national_id) == *id
        }
        Wanted::Vin(_) => false,
    }
}

/// The customer refs and VIN a record is about; a correction is about what it amends to.
fn mentions(payload: &Payload) -> (Vec<String>, Option<String>) {
    let refs = |list: &[&str]| list.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    match payload {
        Payload::Customer(c) => (refs(&[&c.customer_ref]), None),
        Payload::RetailDelivery(d) => (
            d.parties.iter().map(|p| p.customer_ref.clone()).collect(),
            Some(d.vin.clone()),
        ),
        Payload::RepairOrder(r) => (refs(&[&r.owner_ref, &r.driver_ref]), Some(r.vin.clone())),
        Payload::Lead(l) => (refs(&[&l.customer_ref]), None),
        Payload::Complaint(c) => (refs(&[&c.customer_ref]), Some(c.vin.clone())),
        Payload::Survey(s) => (refs(&[&s.customer_ref]), None),
        Payload::OdometerReplacement(o) => (Vec::new(), Some(o.vin.clone())),
        Payload::VehicleStatus(v) => (Vec::new(), Some(v.vin.clone())),
        Payload::Correction(c) => match crate::store::amended_payload(c) {
            Some(amended) => mentions(&amended),
            None => (Vec::new(), None),
        },
    }
}

/// What the search found: customers with their records, or a VIN's records.
#[derive(Default)]
struct Found {
    /// By customer ref: the newest upsert, and the seqs of records about them.
    customers: BTreeMap<String, (CustomerUpsert, Vec<Record>)>,
    vin_records: Vec<Record>,
}

/// Scans the store once for `wanted`. Blocking.
fn search(state: &WebState, wanted: &Wanted) -> Result<Found, StoreError> {
    let mut found = Found::default();
    let mut by_ref: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = state.store.records_after_blocking(after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in page {
            let Some(payload) = &record.payload else {
                continue;
            };
            let (refs, vin) = mentions(payload);
            if let Wanted::Vin(wanted_vin) = wanted {
                if vin.is_some_and(|v| normalize_digits(&v).to_uppercase() == *wanted_vin) {
                    found.vin_records.push(record.clone());
                }
                continue;
            }
            if let Payload::Customer(c) = payload {
                if matches(c, wanted) {
                    found
                        .customers
                        .insert(c.customer_ref.clone(), (c.clone(), Vec::new()));
                } else if found.customers.contains_key(&c.customer_ref) {
                    // A later upsert of a matched customer that no longer matches: newest wins.
                    found.customers.remove(&c.customer_ref);
                }
            }
            for r in refs.into_iter().filter(|r| !r.is_empty()) {
                by_ref.entry(r).or_default().push(record.clone());
            }
        }
    }
    for (customer_ref, (_, records)) in found.customers.iter_mut() {
        *records = by_ref.remove(customer_ref).unwrap_or_default();
    }
    Ok(found)
}

fn record_rows(state: &WebState, records: &[Record], lang: Lang) -> Result<Vec<Value>, StoreError> {
    let outcomes: BTreeMap<u64, Outcome> = state
        .store
        .verdicts()?
        .into_iter()
        .map(|v| (v.seq, v.outcome()))
        .collect();
    Ok(records
        .iter()
        .rev()
        .map(|r| {
            let kind = r.payload.as_ref().map(RecordKind::of);
            let outcome = match outcomes.get(&r.seq) {
                None => lang.pick("در انتظار ارسال یا بررسی", "pending"),
                Some(Outcome::Accepted) => lang.pick("پذیرفته", "accepted"),
                Some(Outcome::AcceptedWithFlags) => lang.pick("پذیرفته با هشدار", "flagged"),
                Some(Outcome::Rejected) => lang.pick("رد شد", "rejected"),
                Some(_) => "-",
            };
            json!({
                "seq": lang.digits(&r.seq.to_string()),
                "kind": kind.map(|k| kind_label(k, lang)).unwrap_or("-"),
                "date": date_time(r.recorded_at_ms, lang),
                "outcome": outcome,
            })
        })
        .collect())
}

/// The page's figures for `query`. Blocking.
fn lookup_figures(state: &WebState, query: &str, lang: Lang) -> Result<Value, StoreError> {
    let Some(wanted) = Wanted::of(query) else {
        return Ok(json!({ "searched": false }));
    };
    let found = search(state, &wanted)?;
    let mut customers = Vec::new();
    for (customer_ref, (c, records)) in found.customers.iter().take(SHOWN) {
        let id = if c.national_id.is_empty() {
            &c.company_national_id
        } else {
            &c.national_id
        };
        customers.push(json!({
            "customer_ref": customer_ref,
            "name": customer_name(c),
            "mobile": lang.digits(&c.mobile),
            "national_id": lang.digits(id),
            "records": record_rows(state, records, lang)?,
        }));
    }
    let is_vin = matches!(wanted, Wanted::Vin(_));
    Ok(json!({
        "searched": true,
        "is_vin": is_vin,
        "customers": customers,
        "vin_records": record_rows(state, &found.vin_records, lang)?,
    }))
}

/// How long the network lookup may take before the page is shown without it.
const NETWORK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The VIN's history across the network, from the hub, as the page shows it; `Err` says in
/// `lang` why it is not shown.
async fn network_history(state: &WebState, vin: &str, lang: Lang) -> Result<Value, String> {
    use hamgam_proto::hq::v1::vehicle_lookup_client::VehicleLookupClient;
    use hamgam_proto::hq::v1::GetServiceSummaryRequest;
    let unreachable = |detail: String| {
        tracing::debug!("network VIN lookup: {detail}");
        lang.pick(
            "مرکز اکنون در دسترس نیست؛ سابقه‌ی این خودرو در شبکه را بعداً دوباره جستجو کنید.",
            "The hub cannot be reached now; look the vehicle up again later for its network history.",
        )
        .to_owned()
    };
    let Some(connector) = &state.options.hub else {
        return Err(lang
            .pick(
                "این صفحه به مرکز وصل نیست؛ تنها سابقه‌ی همین نمایندگی نشان داده می‌شود.",
                "This screen is not connected to the hub; only this branch's history is shown.",
            )
            .to_owned());
    };
    let endpoint = connector().map_err(unreachable)?;
    let asked = async {
        let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
        VehicleLookupClient::new(channel)
            .get_service_summary(GetServiceSummaryRequest {
                vin: vin.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status.to_string())
    };
    let summary = tokio::time::timeout(NETWORK_TIMEOUT, asked)
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|answer| answer)
        .map_err(unreachable)?;
    let visits: Vec<Value> = summary
        .visits
        .iter()
        .rev()
        .map(|v| {
            json!({
                "date": date_time(v.opened_ms, lang),
                "dealer_id": v.dealer_id,
                "odometer": lang.digits(&v.odometer_in_km.to_string()),
                "pay_type": v.pay_type,
                "labor_ops": v.labor_op_codes.join(", "),
            })
        })
        .collect();
    Ok(json!({
        "model": summary.model,
        "delivered": summary.delivered_ms.map(|ms| date_time(ms, lang)),
        "condition": summary.condition,
        "last_odometer": lang.digits(&summary.last_odometer_km.to_string()),
        "odometer_suspect": summary.odometer_suspect,
        "visits": visits,
    }))
}

/// GET /lookup?q=...
pub(crate) async fn page(
    State(state): State<Shared>,
    Query(query): Query<LookupQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, lang_cookie) = server::language(&headers, query.lang.as_deref());
    let who = match server::logged_in(&state, &headers) {
        Ok(who) => who,
        Err(to_login) => return to_login,
    };
    let q = query.q.unwrap_or_default();
    let worker = state.clone();
    let wanted = q.clone();
    let figures = tokio::task::spawn_blocking(move || lookup_figures(&worker, &wanted, lang)).await;
    let figures = match figures {
        Ok(Ok(figures)) => figures,
        Ok(Err(e)) => return server::failure(lang, &e.to_string()),
        Err(e) => return server::failure(lang, &e.to_string()),
    };
    let network = match Wanted::of(&q) {
        Some(Wanted::Vin(vin)) => Some(network_history(&state, &vin, lang).await),
        _ => None,
    };
    let (network, network_missing) = match network {
        Some(Ok(history)) => (Some(history), None),
        Some(Err(why)) => (None, Some(why)),
        None => (None, None),
    };
    let context = server::merged(
        server::merged(server::page_context(lang, Some(&who)), figures),
        json!({ "q": q, "network": network, "network_missing": network_missing }),
    );
    let cookies: Vec<String> = lang_cookie.into_iter().collect();
    server::render(
        &state,
        lang,
        "lookup.html",
        context,
        StatusCode::OK,
        &cookies,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(given: &str, family: &str, mobile: &str, id: &str) -> CustomerUpsert {
        CustomerUpsert {
            customer_ref: "C-1".into(),
            given_name: given.into(),
            family_name: family.into(),
            mobile: mobile.into(),
            national_id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_search_is_read_as_a_vin_a_mobile_an_id_or_a_name() {
        assert_eq!(
            Wanted::of("naan01ce5kk12345۶"),
            Some(Wanted::Vin("NAAN01CE5KK123456".into()))
        );
        assert_eq!(
            Wanted::of("۰۹۱۲ ۳۴۵ ۶۷۸۹"),
            Some(Wanted::Mobile("+989123456789".into()))
        );
        assert!(matches!(
            Wanted::of("0012345678"),
            Some(Wanted::NationalId(_))
        ));
        assert!(matches!(Wanted::of("رضایی"), Some(Wanted::Name(_))));
        assert_eq!(Wanted::of("  "), None);
    }

    #[test]
    fn spelling_variants_of_a_name_find_the_same_customer() {
        // Stored with Persian letters; searched with Arabic yeh and kaf, and without the
        // space of a compound first name.
        let c = person("محمد رضا", "کریمی", "09123456789", "0012345679");
        for typed in ["محمدرضا كريمي", "كريمي", "محمد رضا کریمی", "KARIMI"]
        {
            let found = matches(&c, &Wanted::of(typed).unwrap());
            assert_eq!(found, typed != "KARIMI", "{typed}");
        }
        assert!(matches(&c, &Wanted::of("+98 912 345 6789").unwrap()));
        assert!(matches(&c, &Wanted::of("۰۰۱۲۳۴۵۶۷۹").unwrap()));
        assert!(!matches(&c, &Wanted::of("0012345678").unwrap()));
    }
}
