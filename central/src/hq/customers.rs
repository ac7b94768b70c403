//! Customer 360 and customer search. Every lookup goes through an index: the identity blocks
//! (`n:`/`c:`/`m:`), the name-word index, the party links, the contact and VIN indexes.

use std::collections::BTreeSet;

use hamgam_proto::hq::v1 as hq;
use hamgam_proto::values::{CompanyId, Mobile, NationalId};
use tonic::Status;

use crate::content::Content;
use crate::lifecycle::facts::gather;
use crate::lifecycle::{Facts, LifecycleConfig};
use crate::merge::identity::similarity;
use crate::merge::{GoldenCustomer, PartyKey};
use crate::store::HubStore;

use super::{convert, unavailable, Page};

/// Names whose similarity to the query reaches this are fuzzy matches.
pub const FUZZY_SIMILARITY: f64 = 0.8;

/// A customer's stage and KPIs as of `as_of`, from all facts and from trusted facts only.
pub fn customer_lifecycle(
    facts: &crate::lifecycle::CustomerFacts,
    lifecycle: &LifecycleConfig,
    as_of: i64,
) -> hq::CustomerLifecycle {
    hq::CustomerLifecycle {
        stage: convert::stage(facts.stage(lifecycle, as_of, Facts::All)) as i32,
        kpis: Some(convert::kpis(&facts.kpis(as_of, Facts::All))),
        stage_trusted_only: convert::stage(facts.stage(lifecycle, as_of, Facts::TrustedOnly))
            as i32,
        kpis_trusted_only: Some(convert::kpis(&facts.kpis(as_of, Facts::TrustedOnly))),
    }
}

/// One customer of a bulk export: the golden record with its lifecycle as of `as_of`.
pub fn exported_customer<S: HubStore>(
    store: &S,
    lifecycle: &LifecycleConfig,
    customer: &crate::merge::GoldenCustomer,
    as_of: i64,
) -> Result<hq::ExportedCustomer, Status> {
    let gathered = gather(store, customer).map_err(unavailable)?;
    Ok(hq::ExportedCustomer {
        lifecycle: Some(customer_lifecycle(&gathered.facts, lifecycle, as_of)),
        as_of_ms: as_of,
        ..convert::exported_customer(customer)
    })
}

/// Customer 360 of `customer_id` as of `as_of`.
pub fn customer_360<S: HubStore>(
    store: &S,
    lifecycle: &LifecycleConfig,
    customer_id: &str,
    as_of: i64,
) -> Result<hq::Customer360, Status> {
    let customer = store
        .customer(customer_id)
        .map_err(unavailable)?
        .ok_or_else(|| {
            Status::not_found(format!(
                "no customer {customer_id}: customer ids change when dealer records are linked \
                 or split; search by national ID, mobile or name for the current one"
            ))
        })?;
    let gathered = gather(store, &customer).map_err(unavailable)?;
    let facts = &gathered.facts;
    let all = facts.kpis(as_of, Facts::All);
    let mut linked = Vec::new();
    for p in &customer.parties {
        let party = store.merge_party(p).map_err(unavailable)?;
        let view = party.and_then(|x| x.view);
        linked.push(hq::LinkedRecord {
            party: Some(convert::party(p)),
            record_id: view
                .as_ref()
                .map(|v| v.record_id.clone())
                .unwrap_or_default(),
            seq: view.as_ref().map_or(0, |v| v.seq),
            trust: view
                .as_ref()
                .map_or(hq::Trust::Unspecified, |v| convert::trust(v.trust))
                as i32,
            name: view.as_ref().map(|v| v.name()).unwrap_or_default(),
        });
    }
    let timeline: Vec<hq::Contact> = gathered
        .timeline
        .iter()
        .filter(|t| !matches!(t.content, Content::Customer(_)))
        .map(|t| hq::Contact {
            at_ms: t.at_ms,
            kind: t.record.kind.clone(),
            dealer_id: t.record.dealer_id.clone(),
            record_id: t.record.record_id.clone(),
            seq: t.record.seq,
            vin: vin_of(&t.content),
            summary: summary(&t.content),
            outcome: crate::wire::outcome_to_wire(t.record.verdict.outcome) as i32,
            rule_ids: convert::rule_ids(&t.record),
        })
        .collect();
    let mut flags = Vec::new();
    for t in &gathered.timeline {
        flags.extend(convert::record_flags(&t.record));
    }
    let mut conflicts: Vec<hq::Conflict> =
        customer.conflicts.iter().map(convert::conflict).collect();
    let vehicles = gathered
        .vehicles
        .iter()
        .map(|v| {
            conflicts.extend(v.view.conflicts.iter().map(convert::conflict));
            hq::CustomerVehicle {
                vin: v.view.vin.clone(),
                model: v.model.clone(),
                roles: v.roles.iter().map(|r| convert::role(*r) as i32).collect(),
                since_ms: v.since_ms,
                held: v.held,
            }
        })
        .collect();
    Ok(hq::Customer360 {
        customer_id: customer.customer_id.clone(),
        organization: customer.organization,
        fields: convert::golden_fields(&customer),
        linked,
        vehicles,
        timeline,
        lifecycle: Some(customer_lifecycle(facts, lifecycle, as_of)),
        open_complaints: all.open_complaints.clone(),
        flags,
        conflicts,
        as_of_ms: as_of,
    })
}

fn vin_of(c: &Content) -> String {
    match c {
        Content::Delivery(d) => d.vin.clone(),
        Content::RepairOrder(ro) => ro.vin.clone(),
        Content::Complaint(c) => c.vin.clone(),
        _ => String::new(),
    }
}

/// What a person reads in a timeline line.
fn summary(c: &Content) -> String {
    match c {
        Content::Delivery(d) => format!("delivered {}", d.model),
        Content::RepairOrder(ro) => format!(
            "RO {} at {} km, {:?}, {} rials",
            ro.ro_number, ro.odometer_in_km, ro.pay_type, ro.total_rials
        ),
        Content::Lead(_) => "lead".into(),
        Content::Complaint(c) => format!("complaint {} {:?}", c.case_ref, c.status),
        Content::Survey(s) => match s.nps {
            Some(nps) => format!("survey CSAT {} NPS {nps}", s.csat),
            None => format!("survey CSAT {}", s.csat),
        },
        _ => String::new(),
    }
}

fn summary_of(customer: &GoldenCustomer, matched: String) -> hq::CustomerSummary {
    let field = |f: &str| {
        customer
            .fields
            .get(f)
            .map(|v| v.value.clone())
            .unwrap_or_default()
    };
    hq::CustomerSummary {
        customer_id: customer.customer_id.clone(),
        name: field("name"),
        national_id: if customer.organization {
            field("company_id")
        } else {
            field("national_id")
        },
        mobile: field("mobile"),
        linked_records: customer.parties.len() as u32,
        matched,
    }
}

/// Customers of the parties in an identity block (national/company ID, mobile).
fn by_block<S: HubStore>(
    store: &S,
    block: &str,
    matched: &str,
) -> Result<Vec<hq::CustomerSummary>, Status> {
    let mut ids = BTreeSet::new();
    for party in store.block(block).map_err(unavailable)? {
        if let Some(id) = store.link(&party).map_err(unavailable)? {
            ids.insert(id);
        }
    }
    let mut out = Vec::new();
    for id in ids {
        if let Some(c) = store.customer(&id).map_err(unavailable)? {
            out.push(summary_of(&c, matched.to_owned()));
        }
    }
    Ok(out)
}

/// Customer search (see `SearchCustomers` in hq.proto).
pub fn search<S: HubStore>(
    store: &S,
    request: &hq::SearchCustomersRequest,
    page: Page,
) -> Result<hq::SearchCustomersResponse, Status> {
    use hq::search_customers_request::By;
    let by = request.by.as_ref().ok_or_else(|| {
        Status::invalid_argument("give one of national_id, mobile or name to search by")
    })?;
    let whole =
        |customers: Vec<hq::CustomerSummary>| -> Result<hq::SearchCustomersResponse, Status> {
            // One customer per ID or mobile at most a handful: one page, in id order.
            let skip = customers
                .iter()
                .take_while(|c| {
                    !page.token.is_empty() && c.customer_id.as_str() <= page.token.as_str()
                })
                .count();
            let mut rest: Vec<hq::CustomerSummary> = customers.into_iter().skip(skip).collect();
            let next_page_token = if rest.len() > page.size {
                rest.truncate(page.size);
                rest.last()
                    .map(|c| c.customer_id.clone())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            Ok(hq::SearchCustomersResponse {
                customers: rest,
                next_page_token,
            })
        };
    match by {
        By::NationalId(raw) => {
            if let Ok(id) = NationalId::parse(raw) {
                whole(by_block(
                    store,
                    &format!("n:{}", id.as_str()),
                    "national id",
                )?)
            } else if let Ok(id) = CompanyId::parse(raw) {
                whole(by_block(
                    store,
                    &format!("c:{}", id.as_str()),
                    "company id",
                )?)
            } else {
                Err(Status::invalid_argument(format!(
                    "national_id: {raw:?} is neither a valid national ID (10 digits with its \
                     check digit) nor a national company ID (11 digits)"
                )))
            }
        }
        By::Mobile(raw) => {
            let mobile = Mobile::parse(raw).map_err(|e| {
                Status::invalid_argument(format!("mobile: {raw:?} is not an Iranian mobile: {e}"))
            })?;
            whole(by_block(store, &format!("m:{}", mobile.e164()), "mobile")?)
        }
        By::Name(raw) => by_name(store, raw, request.fuzzy, page, NAME_SCAN_BUDGET),
    }
}

/// Index rows counted per query word to find the most selective one.
const SELECTIVITY_PROBE: usize = 128;

/// Name-index rows examined per call at most: a page may come back short (even empty) with a
/// token to go on, so a rare name under a common prefix costs several quick calls, not one
/// long one.
pub const NAME_SCAN_BUDGET: usize = 4_096;

/// Name search over the name-word index: every query word must start a word of the name
/// (prefix), or the whole name must be [`FUZZY_SIMILARITY`]-similar (fuzzy: candidates share a
/// name word starting with a query word's first two letters). The candidates come from the
/// query word with the fewest index rows (counted up to [`SELECTIVITY_PROBE`]), so a rare
/// family name after a common given name does not scan every "Mohammad".
fn by_name<S: HubStore>(
    store: &S,
    raw: &str,
    fuzzy: bool,
    page: Page,
    budget: usize,
) -> Result<hq::SearchCustomersResponse, Status> {
    let query = hamgam_proto::text::normalize(raw);
    let words: Vec<&str> = query.split_whitespace().collect();
    if words.is_empty() {
        return Err(Status::invalid_argument(
            "name: give at least one letter of a name",
        ));
    }
    let mut prefixes: Vec<String> = words
        .iter()
        .map(|w| {
            if fuzzy {
                w.chars().take(2).collect()
            } else {
                (*w).to_owned()
            }
        })
        .collect();
    prefixes.dedup();
    let mut after: Option<(String, PartyKey)> = if page.token.is_empty() {
        None
    } else {
        Some(decode_token(&page.token)?)
    };
    let scan_prefix = match &after {
        // A later page scans the range its token came from.
        Some((word, _)) => prefixes
            .iter()
            .find(|p| word.starts_with(p.as_str()))
            .cloned()
            .ok_or_else(super::bad_token)?,
        None => {
            let mut best: Option<(usize, &String)> = None;
            for p in &prefixes {
                let rows = store
                    .name_words(p, None, SELECTIVITY_PROBE)
                    .map_err(unavailable)?
                    .len();
                if best.is_none_or(|(n, _)| rows < n) {
                    best = Some((rows, p));
                }
            }
            best.map(|(_, p)| p.clone()).unwrap_or_default()
        }
    };
    let mut out: Vec<hq::CustomerSummary> = Vec::new();
    let mut last_seen = None;
    let mut examined = 0usize;
    let mut exhausted = false;
    'scan: loop {
        let rows = store
            .name_words(&scan_prefix, after.as_ref(), 256)
            .map_err(unavailable)?;
        let Some(last) = rows.last().cloned() else {
            exhausted = true;
            break;
        };
        for (word, party) in rows {
            if examined == budget {
                break 'scan;
            }
            examined += 1;
            last_seen = Some((word.clone(), party.clone()));
            let Some(view) = store
                .merge_party(&party)
                .map_err(unavailable)?
                .and_then(|p| p.view)
            else {
                continue;
            };
            let name_words = view.name_words();
            if !name_words.contains(&word) {
                continue; // the index only grows: this party's name changed since
            }
            let matched = if fuzzy {
                let s = similarity(&query, &hamgam_proto::text::normalize(&view.name()));
                (s >= FUZZY_SIMILARITY).then(|| format!("similar name ({s:.2})"))
            } else {
                words
                    .iter()
                    .all(|q| name_words.iter().any(|w| w.starts_with(q)))
                    .then(|| format!("name prefix {query:?}"))
            };
            let Some(matched) = matched else { continue };
            // Listed once: at the party's first word under the scanned prefix.
            if name_words.iter().find(|w| w.starts_with(&scan_prefix)) != Some(&word) {
                continue;
            }
            let Some(id) = store.link(&party).map_err(unavailable)? else {
                continue;
            };
            if out.iter().any(|c| c.customer_id == id) {
                continue;
            }
            if let Some(c) = store.customer(&id).map_err(unavailable)? {
                out.push(summary_of(&c, matched));
                if out.len() == page.size {
                    break 'scan;
                }
            }
        }
        after = Some(last);
    }
    let next_page_token = if !exhausted {
        last_seen
            .map(|(w, p)| encode_token(&w, &p))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(hq::SearchCustomersResponse {
        customers: out,
        next_page_token,
    })
}

fn encode_token(word: &str, party: &PartyKey) -> String {
    format!("{word}\u{1}{}\u{1}{}", party.0, party.1)
}

fn decode_token(token: &str) -> Result<(String, PartyKey), Status> {
    let mut parts = token.split('\u{1}');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(w), Some(d), Some(r), None) => Ok((w.to_owned(), (d.to_owned(), r.to_owned()))),
        _ => Err(super::bad_token()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{judge_batch, Rulebook};
    use crate::rules::registry::DealerRegistry;
    use crate::rules::RuleConfig;
    use crate::SledStore;
    use hamgam_proto::record::v1 as pb;

    /// A store holding one dealer's customer records with these `(given, family)` names
    /// (refs `C0`, `C1` ...).
    fn store_with(names: &[(&str, &str)]) -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), 16 << 20).expect("store");
        let customers: Vec<(String, &str, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, (given, family))| (format!("C{i}"), *given, *family))
            .collect();
        let judged = customers_judged(&store, 0, &customers);
        store.apply(&judged.change).expect("applied");
        (dir, store)
    }

    /// D-1's customer records `(ref, given, family)` after its seq `stored_seq`, judged on
    /// `store` (not applied).
    fn customers_judged(
        store: &SledStore,
        stored_seq: u64,
        customers: &[(String, &str, &str)],
    ) -> crate::judge::Judged {
        let config = RuleConfig::default();
        let registry = DealerRegistry::default();
        let rules = Rulebook {
            config: &config,
            registry: &registry,
        };
        let now = 1_790_000_000_000;
        let arrivals = customers
            .iter()
            .enumerate()
            .map(|(i, (customer_ref, given, family))| {
                crate::wire::arrival(&pb::Record {
                    record_id: uuid::Uuid::now_v7().to_string(),
                    dealer_id: "D-1".into(),
                    seq: stored_seq + i as u64 + 1,
                    recorded_at_ms: now,
                    hlc: None,
                    staff_id: "S-1".into(),
                    schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
                    withheld: String::new(),
                    origin: None,
                    payload: Some(pb::record::Payload::Customer(pb::CustomerUpsert {
                        customer_ref: customer_ref.clone(),
                        party_type: pb::PartyType::Person as i32,
                        given_name: (*given).into(),
                        family_name: (*family).into(),
                        ..Default::default()
                    })),
                })
            })
            .collect();
        let sender = crate::judge::Sender {
            dealer: "D-1",
            stored_seq,
            clock_offset_ms: 0,
        };
        judge_batch(store, &rules, &sender, arrivals, now).expect("judged")
    }

    /// The name index is written once per word: a customer written again under its ref with
    /// one name changed indexes only the new word, and is found by its new name, not its old.
    #[test]
    fn a_renamed_customer_is_found_by_its_new_name_and_only_the_new_word_is_indexed() {
        let (_dir, store) = store_with(&[("علی", "احمدی")]);
        let same = customers_judged(&store, 1, &[("C0".into(), "علی", "احمدی")]);
        assert!(
            same.change.merge.name_words.is_empty(),
            "the same name again indexes nothing: {:?}",
            same.change.merge.name_words
        );
        let renamed = customers_judged(&store, 1, &[("C0".into(), "علی", "کریمی")]);
        let words: Vec<&str> = renamed
            .change
            .merge
            .name_words
            .iter()
            .map(|(w, _)| w.as_str())
            .collect();
        assert_eq!(words, vec!["کریمی"]);
        store.apply(&renamed.change).expect("applied");
        assert_eq!(all_pages(&store, "کریمی", false, 10).0, vec!["علی کریمی"]);
        assert!(all_pages(&store, "احمدی", false, 10).0.is_empty());
        assert_eq!(all_pages(&store, "علی", false, 10).0, vec!["علی کریمی"]);
    }

    /// Every customer a name search lists, paging with `budget`, and the pages' sizes.
    fn all_pages(
        store: &SledStore,
        name: &str,
        fuzzy: bool,
        budget: usize,
    ) -> (Vec<String>, Vec<usize>) {
        let (mut names, mut sizes) = (Vec::new(), Vec::new());
        let mut token = String::new();
        for _ in 0..100 {
            let page = Page {
                size: 3,
                token: token.clone(),
            };
            let r = by_name(store, name, fuzzy, page, budget).expect("search");
            sizes.push(r.customers.len());
            names.extend(r.customers.into_iter().map(|c| c.name));
            if r.next_page_token.is_empty() {
                return (names, sizes);
            }
            token = r.next_page_token;
        }
        panic!("the search never ended: {sizes:?}");
    }

    #[test]
    fn a_rare_family_name_is_found_through_short_pages_and_each_customer_once() {
        // Eight Alis with other family names come first in the index under "علی"; the query
        // "علی زرین" must list the two Zarrins whatever the budget.
        let mut names: Vec<(&str, &str)> = vec![("علی", "احمدی"); 8];
        names.push(("علی", "زرین"));
        names.push(("علی", "زرین‌کوب"));
        names.push(("مینا", "زرین"));
        let (_dir, store) = store_with(&names);
        for budget in [1, 2, 5, NAME_SCAN_BUDGET] {
            let (found, sizes) = all_pages(&store, "علي زرين", false, budget);
            let mut sorted = found.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                // Golden names are shown normalised: the ZWNJ is a word break.
                vec!["علی زرین", "علی زرین کوب"],
                "budget {budget}: pages {sizes:?}"
            );
            assert!(sizes.iter().all(|s| *s <= 3));
        }
        // The family name has the fewer index entries (3 against 10): with a budget of 3 the
        // first call already finds both (scanning "علی" would have spent it on the Ahmadis).
        let first = by_name(
            &store,
            "علی زرین",
            false,
            Page {
                size: 20,
                token: String::new(),
            },
            3,
        )
        .expect("search");
        assert_eq!(first.customers.len(), 2, "{first:?}");
        // A budget too small for the whole range gives short pages that carry a token.
        let (found, sizes) = all_pages(&store, "علی", false, 2);
        assert_eq!(found.len(), 10);
        assert!(sizes.len() > 4, "{sizes:?}");
        // Fuzzy: one letter off still matches, through short pages.
        let (found, _) = all_pages(&store, "علی زرین کوپ", true, 1);
        assert!(found.iter().any(|n| n == "علی زرین کوب"), "{found:?}");
    }

    #[test]
    fn a_token_from_another_query_is_refused() {
        let (_dir, store) = store_with(&[("علی", "احمدی")]);
        let page = Page {
            size: 3,
            token: encode_token("مینا", &("D-1".into(), "C0".into())),
        };
        let err = by_name(&store, "علی", false, page, 10).expect_err("bad token");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
}
