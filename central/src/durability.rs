//! Group commit: one flusher task makes everything applied so far durable with a single
//! blocking `flush`, and wakes every batch that was waiting for it. Streams keep applying while
//! a flush runs; a batch that asks during a flush waits for the next one, which is what makes an
//! ack mean "durable".
//!
//! One flusher, a blocking `flush()` on the blocking pool, never sled's `flush_async`: several
//! `flush_async` beside `apply_batch` can deadlock in sled 0.34.7 (STACK.md).

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{HubStore, StoreError};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the flusher task.
pub struct Durability {
    request_tx: Mutex<Option<mpsc::UnboundedSender<Waiter>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Durability {
    /// Starts the flusher for `store`.
    pub fn start<S: HubStore>(store: Arc<S>, flush_seconds: Histogram) -> Self {
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let flusher = tokio::spawn(flush_loop(store, request_rx, flush_seconds));
        Durability {
            request_tx: Mutex::new(Some(request_tx)),
            flusher: Mutex::new(Some(flusher)),
        }
    }

    /// Asks for a flush covering everything applied before this call; the returned future
    /// resolves once it is done (it does not borrow `self`).
    pub fn request(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (done_tx, done_rx) = oneshot::channel();
        let sent = match &*self.request_tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(done_tx).is_ok(),
            None => false,
        };
        async move {
            if !sent {
                return Err(StoreError::Engine(
                    "the hub is closing; the flusher has stopped".into(),
                ));
            }
            done_rx
                .await
                .map_err(|_| StoreError::Engine("the flusher has stopped".into()))?
                .map_err(StoreError::Engine)
        }
    }

    /// Stops the flusher after a last flush.
    pub async fn stop(&self) {
        self.request_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(flusher) = flusher {
            let _ = flusher.await;
        }
    }
}

async fn flush_loop<S: HubStore>(
    store: Arc<S>,
    mut request_rx: mpsc::UnboundedReceiver<Waiter>,
    flush_seconds: Histogram,
) {
    while let Some(first) = request_rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = request_rx.try_recv() {
            waiters.push(more);
        }
        let flushing = store.clone();
        let started = std::time::Instant::now();
        let flushed = tokio::task::spawn_blocking(move || flushing.flush()).await;
        flush_seconds.observe(started.elapsed().as_secs_f64());
        let result = match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("flush task failed: {e}")),
        };
        if let Err(e) = &result {
            tracing::error!("flush failed, {} batches not acked: {e}", waiters.len());
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
    // Closing: make whatever was applied durable before the store is dropped.
    let _ = tokio::task::spawn_blocking(move || store.flush()).await;
}
