//! The access audit's writing side: every HQ answer that carries a person's data, and every
//! decision, leaves an entry naming the certificate, the hub's time, the RPC, and which
//! customers (ids, never the searched value), before the answer leaves the hub.
//!
//! **Fail closed.** When the entry cannot be written (a full disk, a failing store), the read
//! is not answered: UNAVAILABLE, and an error in the hub's log. A decision is written first
//! to the decision log (which names who decided); if its audit entry then fails, the caller
//! hears UNAVAILABLE saying the decision stands, so it does not take it twice.
//!
//! Reading the audit back is `central admin audit` ([`crate::admin_audit`]).

use hamgam_gateway::server::PeerInfo;
use tonic::{Request, Status};

use crate::ingest::Hub;
use crate::store::{AccessEntry, HubStore, StoreError};

/// Who is calling, as the audit names them: the certificate's identity.
pub(crate) fn caller<T>(request: &Request<T>) -> String {
    PeerInfo::of(request)
        .map(|p| p.identity.to_string())
        .unwrap_or_else(|_| "unknown certificate".into())
}

/// What one audited answer was.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub who: String,
    pub rpc: &'static str,
    pub what: String,
    pub customers: Vec<String>,
    pub count: u64,
}

impl Access {
    pub fn new(who: &str, rpc: &'static str, what: impl Into<String>) -> Access {
        Access {
            who: who.to_owned(),
            rpc,
            what: what.into(),
            customers: Vec::new(),
            count: 0,
        }
    }

    /// The customers the answer carried (and their number, unless set otherwise).
    pub fn customers(mut self, ids: impl IntoIterator<Item = String>) -> Access {
        self.customers = ids.into_iter().collect();
        self.customers.sort();
        self.customers.dedup();
        self.count = self.customers.len() as u64;
        self
    }

    pub fn count(mut self, count: u64) -> Access {
        self.count = count;
        self
    }
}

/// Writes the entry, durable before it returns (blocking: call it off the async workers).
/// A failure is an error in the log and UNAVAILABLE to the caller: the answer is withheld.
pub(crate) fn record<S: HubStore>(hub: &Hub<S>, access: Access) -> Result<u64, Status> {
    let entry = AccessEntry {
        no: 0,
        at_ms: hub.clock().now_ms(),
        who: access.who,
        rpc: access.rpc.to_owned(),
        what: access.what,
        customers: access.customers,
        count: access.count,
    };
    let written = hub.store().and_then(|store| store.append_access(&entry));
    written.map_err(|e| refused(&entry, e))
}

fn refused(entry: &AccessEntry, e: StoreError) -> Status {
    tracing::error!(
        who = %entry.who,
        rpc = %entry.rpc,
        "access audit write failed, answer withheld: {e}"
    );
    Status::unavailable(format!(
        "the hub cannot write its access audit ({e}), so it does not answer {}: \
         every read of a person's data is audited; try again once the hub's storage recovers",
        entry.rpc
    ))
}
