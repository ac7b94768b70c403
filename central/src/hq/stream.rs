//! The change stream (records stored, verdicts changed, customers changed, in cursor order,
//! durable entries only) and the bulk export, as server streams fed by a task.
//!
//! Resuming: a client that lost the stream calls again with the last cursor it processed and
//! gets exactly the entries after it; cursors are consecutive, so a gap is detectable.

use std::sync::Arc;

use hamgam_proto::hq::v1 as hq;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::domain::{ChangeEntry, ChangeLogEntry};
use crate::ingest::Hub;
use crate::lifecycle::LifecycleConfig;
use crate::store::{HubStore, StoreError};

use super::audit::{self, Access};
use super::{convert, customers, unavailable, vehicles};

/// Entries read from the store per step.
const STEP: usize = 256;

pub type EventStream<T> = ReceiverStream<Result<T, Status>>;

fn event<S: HubStore>(store: &S, e: ChangeLogEntry) -> Result<hq::ChangeEvent, StoreError> {
    use hq::change_event::Change;
    let change = match e.entry {
        ChangeEntry::RecordStored {
            dealer_id,
            seq,
            verdict,
        } => {
            let record = store
                .record(&dealer_id, seq)?
                .and_then(|r| crate::wire::record_to_wire(&r).ok());
            Change::RecordStored(hq::RecordStored {
                record,
                verdict: Some(crate::wire::verdict_to_wire(&verdict)),
            })
        }
        ChangeEntry::VerdictChanged { dealer_id, verdict } => {
            Change::VerdictChanged(hq::VerdictChanged {
                dealer_id,
                verdict: Some(crate::wire::verdict_to_wire(&verdict)),
            })
        }
        ChangeEntry::CustomerChanged {
            customer_id,
            parties,
        } => Change::CustomerChanged(hq::CustomerChanged {
            customer_id,
            removed: parties.is_empty(),
            linked: parties.iter().map(convert::party).collect(),
        }),
    };
    Ok(hq::ChangeEvent {
        cursor: e.cursor,
        at_ms: e.at_ms,
        change: Some(change),
    })
}

/// Streams the changes after `after`; with `follow`, waits for new durable ones until the
/// client goes away or the hub shuts down (`stop`).
pub fn changes<S: HubStore>(
    hub: Arc<Hub<S>>,
    after: u64,
    follow: bool,
    stop: CancellationToken,
) -> EventStream<hq::ChangeEvent> {
    let (tx, rx) = mpsc::channel(STEP);
    tokio::spawn(async move {
        let mut durable = hub.durable_changes();
        let mut cursor = after;
        loop {
            let upto = *durable.borrow_and_update();
            if cursor < upto {
                let store = match hub.store() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(unavailable(e))).await;
                        return;
                    }
                };
                let page = tokio::task::spawn_blocking(move || {
                    let entries = store.changes(cursor, STEP)?;
                    entries
                        .into_iter()
                        .take_while(|e| e.cursor <= upto)
                        .map(|e| event(&*store, e))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await;
                let page = match page {
                    Ok(Ok(p)) => p,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(unavailable(e))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::internal(format!("change stream: {e}"))))
                            .await;
                        return;
                    }
                };
                if page.is_empty() {
                    // Durable cursor ahead of the stored log: cannot happen; do not spin.
                    let _ = tx
                        .send(Err(Status::data_loss(format!(
                            "change stream entry {} is missing",
                            cursor + 1
                        ))))
                        .await;
                    return;
                }
                for e in page {
                    cursor = e.cursor;
                    if tx.send(Ok(e)).await.is_err() {
                        return; // the client went away
                    }
                }
                continue;
            }
            if !follow {
                return;
            }
            let hub_stopped = tokio::select! {
                changed = durable.changed() => changed.is_err(),
                _ = tx.closed() => return,
                _ = stop.cancelled() => true,
            };
            if hub_stopped {
                let _ = tx
                    .send(Err(Status::unavailable(format!(
                        "the hub is shutting down; resume with after_cursor {cursor}"
                    ))))
                    .await;
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Streams every customer (golden record) or every vehicle history, in id order. Each page
/// is written to the access audit (as `who`, with the customers it carries) before it is
/// sent; if that fails the stream ends with UNAVAILABLE and the page is not sent.
pub fn export<S: HubStore>(
    hub: Arc<Hub<S>>,
    who: String,
    kind: hq::ExportKind,
    lifecycle: Arc<LifecycleConfig>,
    as_of: i64,
    stop: CancellationToken,
) -> EventStream<hq::ExportItem> {
    use hq::export_item::Item;
    let (tx, rx) = mpsc::channel(STEP);
    tokio::spawn(async move {
        let mut after = String::new();
        loop {
            if stop.is_cancelled() {
                let _ = tx
                    .send(Err(Status::unavailable(
                        "the hub is shutting down; export again",
                    )))
                    .await;
                return;
            }
            let store = match hub.store() {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(unavailable(e))).await;
                    return;
                }
            };
            let from = after.clone();
            let lifecycle = lifecycle.clone();
            let audit_hub = hub.clone();
            let who = who.clone();
            let page = tokio::task::spawn_blocking(
                move || -> Result<(Vec<Item>, Option<String>), Status> {
                    match kind {
                        hq::ExportKind::Vehicles => {
                            let vins = store.vehicle_vins(&from, STEP).map_err(unavailable)?;
                            let last = vins.last().cloned();
                            let histories = vins
                                .iter()
                                .map(|vin| vehicles::history(&*store, vin))
                                .collect::<Result<Vec<_>, _>>()?;
                            if !histories.is_empty() {
                                let access =
                                    Access::new(&who, "Export", page_what("vehicles", &from))
                                        .customers(
                                            histories.iter().flat_map(vehicles::customers_of),
                                        )
                                        .count(histories.len() as u64);
                                audit::record(&audit_hub, access)?;
                            }
                            Ok((histories.into_iter().map(Item::Vehicle).collect(), last))
                        }
                        _ => {
                            let customers = store.customers(&from, STEP).map_err(unavailable)?;
                            let last = customers.last().map(|c| c.customer_id.clone());
                            let items = customers
                                .iter()
                                .map(|c| {
                                    customers::exported_customer(&*store, &lifecycle, c, as_of)
                                        .map(Item::Customer)
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            if !customers.is_empty() {
                                let access =
                                    Access::new(&who, "Export", page_what("customers", &from))
                                        .customers(customers.iter().map(|c| c.customer_id.clone()));
                                audit::record(&audit_hub, access)?;
                            }
                            Ok((items, last))
                        }
                    }
                },
            )
            .await
            .unwrap_or_else(|e| Err(Status::internal(format!("export: {e}"))));
            match page {
                Ok((items, last)) => {
                    for item in items {
                        if tx
                            .send(Ok(hq::ExportItem { item: Some(item) }))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    match last {
                        Some(last) => after = last,
                        None => return,
                    }
                }
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// An export page in the audit's words.
fn page_what(kind: &str, after: &str) -> String {
    if after.is_empty() {
        format!("{kind}, first page")
    } else {
        format!("{kind} after {after}")
    }
}
