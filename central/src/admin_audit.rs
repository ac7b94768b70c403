//! `central admin audit`: reads the hub's access audit (who read whose data through the HQ
//! API, and which decisions they took) from a stopped hub's data folder.
//!
//! The audit lives in the hub's store, in its own append-only key space
//! ([`crate::store::HubStore::access_log`]), so reading it needs the store: with the hub
//! running, sled's lock refuses a second process and the error says so. The writing side is
//! [`crate::hq::audit`].

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::sled_store::SledStore;
use crate::store::{AccessEntry, HubStore, StoreError};

/// Entries read from the store per step.
const STEP: usize = 1024;

/// Why the audit cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditReadError {
    #[error(
        "--since `{0}`: give a date (2025-03-01, midnight UTC) or a time in RFC 3339 \
         (2025-03-01T08:30:00Z, 2025-03-01T12:00:00+03:30)"
    )]
    BadSince(String),
    #[error("{} holds no hub data: give the hub's data folder with --data-dir or --config", .0.display())]
    NoHub(PathBuf),
    #[error(
        "the store in {} is locked: the hub is running and holds it. Stop the hub \
         (systemctl stop hamgam-central) and run this again; the audit is kept in the \
         store, which one process opens at a time",
        .0.display()
    )]
    HubRunning(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Which entries to show.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// From this moment on (ms since the epoch, the hub's clock).
    pub since_ms: i64,
    /// Only this certificate: its whole identity (`hq/reader/crm`) or its name (`crm`).
    pub who: Option<String>,
    /// Only entries naming this customer id.
    pub customer: Option<String>,
}

impl AuditFilter {
    fn admits(&self, e: &AccessEntry) -> bool {
        e.at_ms >= self.since_ms
            && self.who.as_deref().is_none_or(|who| {
                e.who == who || e.who.rsplit_once('/').is_some_and(|(_, name)| name == who)
            })
            && self
                .customer
                .as_deref()
                .is_none_or(|c| e.customers.iter().any(|x| x == c))
    }
}

/// `--since`: a date (midnight UTC) or an RFC 3339 time, as ms since the epoch.
pub fn parse_since(text: &str) -> Result<i64, AuditReadError> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    let bad = || AuditReadError::BadSince(text.to_owned());
    let at = match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .map_err(|_| bad())?
                .midnight()
                .assume_utc()
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

/// The entries of `store` that `filter` admits, in order.
pub fn entries<S: HubStore>(
    store: &S,
    filter: &AuditFilter,
) -> Result<Vec<AccessEntry>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.access_log(after, STEP)?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.no;
        out.extend(page.into_iter().filter(|e| filter.admits(e)));
    }
}

/// Opens a stopped hub's store to read its audit; a running hub's lock is named as such.
pub fn open(data_dir: &Path, cache_bytes: u64) -> Result<SledStore, AuditReadError> {
    if !data_dir.join("db").exists() && !data_dir.join("conf").exists() {
        return Err(AuditReadError::NoHub(data_dir.to_owned()));
    }
    SledStore::open(data_dir, cache_bytes).map_err(|e| match &e {
        StoreError::Engine(detail) if detail.contains("lock") => {
            AuditReadError::HubRunning(data_dir.to_owned())
        }
        _ => AuditReadError::Store(e),
    })
}

/// Writes the entries as a table for people, or one JSON object per line (`--json`).
pub fn print(
    entries: &[AccessEntry],
    json: bool,
    out: &mut impl Write,
) -> Result<(), AuditReadError> {
    if json {
        for e in entries {
            let line = serde_json::json!({
                "no": e.no,
                "at": rfc3339(e.at_ms),
                "at_ms": e.at_ms,
                "who": e.who,
                "rpc": e.rpc,
                "what": e.what,
                "customers": e.customers,
                "count": e.count,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:>6}  {:<20}  {:<28}  {:<18}  {:>5}  what; customers",
        "no", "at (UTC)", "who", "rpc", "count"
    )?;
    for e in entries {
        let customers = if e.customers.is_empty() {
            String::new()
        } else {
            format!("; {}", e.customers.join(" "))
        };
        writeln!(
            out,
            "{:>6}  {:<20}  {:<28}  {:<18}  {:>5}  {}{customers}",
            e.no,
            rfc3339(e.at_ms),
            e.who,
            e.rpc,
            e.count,
            e.what
        )?;
    }
    writeln!(out, "{} entries", entries.len())?;
    Ok(())
}

/// A hub-clock time (Unix ms) as RFC 3339 UTC, to the second.
pub fn rfc3339(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_a_time() {
        assert_eq!(parse_since("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_since("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_since("1970-01-01T03:30:00+03:30").unwrap(), 0);
        let err = parse_since("yesterday").unwrap_err().to_string();
        assert!(err.contains("--since `yesterday`"), "{err}");
    }

    #[test]
    fn the_filter_matches_a_whole_identity_or_a_name_and_a_customer() {
        let e = AccessEntry {
            no: 1,
            at_ms: 5000,
            who: "hq/reader/crm".into(),
            rpc: "GetCustomer".into(),
            customers: vec!["CU-1".into()],
            count: 1,
            ..Default::default()
        };
        let f = |who: Option<&str>, customer: Option<&str>, since_ms| AuditFilter {
            since_ms,
            who: who.map(str::to_owned),
            customer: customer.map(str::to_owned),
        };
        assert!(f(None, None, 5000).admits(&e));
        assert!(!f(None, None, 5001).admits(&e));
        assert!(f(Some("hq/reader/crm"), Some("CU-1"), 0).admits(&e));
        assert!(f(Some("crm"), None, 0).admits(&e));
        assert!(!f(Some("rm"), None, 0).admits(&e));
        assert!(!f(None, Some("CU-2"), 0).admits(&e));
        assert_eq!(rfc3339(1500), "1970-01-01T00:00:01Z");
    }
}
