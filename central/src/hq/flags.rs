//! Flags and quarantine for HQ's quality team: the flag index (rule, dealer, seq) read by rule
//! (and dealer) prefix; severity picks the rules, time and review status filter the index
//! entries, so no record is read that is not returned.

use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use tonic::Status;

use crate::domain::{FlagStatus, Severity};
use crate::rules::CATALOGUE;
use crate::store::{FlagRow, HubStore};

use super::{bad_token, convert, unavailable, Page};

/// Index entries examined per call at most; a page may come back short with a token to go on.
const SCAN_BUDGET: usize = 20_000;

fn severity(s: i32) -> Result<Option<Severity>, Status> {
    Ok(match pb::Severity::try_from(s) {
        Ok(pb::Severity::Unspecified) => None,
        Ok(pb::Severity::Flag) => Some(Severity::Flag),
        Ok(pb::Severity::FlagHigh) => Some(Severity::FlagHigh),
        Ok(pb::Severity::RejectField) => Some(Severity::RejectField),
        Ok(pb::Severity::Reject) => Some(Severity::Reject),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "severity: unknown value {s}"
            )))
        }
    })
}

pub fn status(s: i32) -> Result<Option<FlagStatus>, Status> {
    Ok(match hq::FlagStatus::try_from(s) {
        Ok(hq::FlagStatus::Unspecified) => None,
        Ok(hq::FlagStatus::Open) => Some(FlagStatus::Open),
        Ok(hq::FlagStatus::Confirmed) => Some(FlagStatus::Confirmed),
        Ok(hq::FlagStatus::Dismissed) => Some(FlagStatus::Dismissed),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "status: unknown value {s}"
            )))
        }
    })
}

/// Lists flags (see `ListFlags` in hq.proto).
pub fn list<S: HubStore>(
    store: &S,
    req: &hq::ListFlagsRequest,
    page: Page,
) -> Result<hq::ListFlagsResponse, Status> {
    let wanted_severity = severity(req.severity)?;
    let wanted_status = status(req.status)?;
    let mut rules: Vec<&str> = if req.rule_id.is_empty() {
        CATALOGUE.iter().map(|r| r.id).collect()
    } else {
        let rule = CATALOGUE
            .iter()
            .find(|r| r.id == req.rule_id)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "rule_id: no rule {:?}; `central rules` lists them",
                    req.rule_id
                ))
            })?;
        vec![rule.id]
    };
    rules.sort_unstable(); // the page token resumes in rule-id order
    let dealer = (!req.dealer_id.is_empty()).then_some(req.dealer_id.as_str());
    // Token: rule \u{1} dealer \u{1} seq of the last entry examined.
    let mut from: Option<(String, String, u64)> = if page.token.is_empty() {
        None
    } else {
        let mut parts = page.token.split('\u{1}');
        match (
            parts.next(),
            parts.next(),
            parts.next().map(str::parse::<u64>),
        ) {
            (Some(r), Some(d), Some(Ok(s))) => Some((r.to_owned(), d.to_owned(), s)),
            _ => return Err(bad_token()),
        }
    };
    let keep = |row: &FlagRow| {
        let e = &row.3;
        wanted_severity.is_none_or(|s| s == e.severity)
            && wanted_status.is_none_or(|s| s == e.status)
            && (!req.quarantined_only || e.quarantined)
            && (req.from_ms == 0 || e.received_at_ms >= req.from_ms)
            && (req.to_ms == 0 || e.received_at_ms < req.to_ms)
    };
    let mut flags = Vec::new();
    let mut examined = 0;
    let mut last: Option<(String, String, u64)> = None;
    'rules: for rule in rules {
        if let Some((r, ..)) = &from {
            if rule < r.as_str() {
                continue;
            }
        }
        if let Some(s) = wanted_severity {
            let spec = CATALOGUE.iter().find(|r| r.id == rule);
            // V03, C05 and Q01 vary their severity; the others never do.
            if spec.is_some_and(|r| r.severity != s && !matches!(r.id, "V03" | "C05" | "Q01")) {
                continue;
            }
        }
        let mut after: Option<(String, u64)> = match &from {
            Some((r, d, s)) if r == rule => Some((d.clone(), *s)),
            _ => None,
        };
        loop {
            let rows = store
                .flags(
                    rule,
                    dealer,
                    after.as_ref().map(|(d, s)| (d.as_str(), *s)),
                    512,
                )
                .map_err(unavailable)?;
            let Some(tail) = rows.last() else { break };
            let next_after = (tail.1.clone(), tail.2);
            for row in rows {
                examined += 1;
                last = Some((row.0.clone(), row.1.clone(), row.2));
                if !keep(&row) {
                    if examined >= SCAN_BUDGET {
                        break 'rules;
                    }
                    continue;
                }
                let Some(record) = store.record(&row.1, row.2).map_err(unavailable)? else {
                    continue;
                };
                flags.extend(
                    convert::record_flags(&record)
                        .into_iter()
                        .filter(|f| f.finding.as_ref().is_some_and(|x| x.rule_id == row.0)),
                );
                if flags.len() >= page.size || examined >= SCAN_BUDGET {
                    break 'rules;
                }
            }
            after = Some(next_after);
        }
        from = None;
    }
    let exhausted = flags.len() < page.size && examined < SCAN_BUDGET;
    let next_page_token = match (exhausted, last) {
        (false, Some((r, d, s))) => format!("{r}\u{1}{d}\u{1}{s}"),
        _ => String::new(),
    };
    Ok(hq::ListFlagsResponse {
        flags,
        next_page_token,
    })
}
