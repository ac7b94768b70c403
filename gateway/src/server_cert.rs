//! The hub's own certificate and key, reloadable while it serves: a certificate resolver behind
//! a lock that every new handshake reads, swapped whole by [`ServerCert::reload`] on SIGHUP or
//! when the files change ([`watch_server_cert`]). A pair that does not load, or whose key does
//! not match its certificate, is refused and the one in force stays. Connections already open
//! keep the certificate they were made with.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::tls::{parse_certificates, parse_private_key, provider, TlsFiles};
use crate::GatewayError;

/// The certificate the hub presents, replaceable while it serves.
#[derive(Debug)]
pub struct ServerCert {
    current: RwLock<Arc<CertifiedKey>>,
    reloads: tokio::sync::watch::Sender<u64>,
}

impl ServerCert {
    /// The pair in `cert_pem` / `key_pem`, checked to match.
    pub fn new(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<Self>, GatewayError> {
        Ok(Arc::new(ServerCert {
            current: RwLock::new(Arc::new(certified(cert_pem, key_pem)?)),
            reloads: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Puts a new pair in force for every handshake from now on; on an error the pair in force
    /// stays.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), GatewayError> {
        let next = certified(cert_pem, key_pem)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        self.reloads.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Changes each time a new pair is put in force.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }
}

fn certified(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, GatewayError> {
    let chain = parse_certificates(cert_pem, "server certificate")?;
    let key = parse_private_key(key_pem, "server key")?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        GatewayError::Tls(format!(
            "the server certificate and key do not go together: {e}"
        ))
    })
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Where the hub's certificate files are and how often to look at them.
#[derive(Debug, Clone)]
pub struct ServerCertWatch {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub every: Duration,
}

/// Reloads `cert` on SIGHUP and whenever its files change, until `stop`. A pair that does not
/// load (or a key readable by others) is logged and the one in force stays.
pub async fn watch_server_cert(
    cert: Arc<ServerCert>,
    watch: ServerCertWatch,
    stop: CancellationToken,
) {
    let stamp = |w: &ServerCertWatch| {
        [&w.cert, &w.key].map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().ok(), m.len()))
        })
    };
    let mut seen = stamp(&watch);
    let mut tick = tokio::time::interval(watch.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let signalled = tokio::select! {
            _ = tick.tick() => false,
            _ = hup => true,
            _ = stop.cancelled() => return,
        };
        let now = stamp(&watch);
        if now == seen && !signalled {
            continue;
        }
        seen = now;
        let files = TlsFiles {
            ca: PathBuf::new(),
            cert: watch.cert.clone(),
            key: watch.key.clone(),
        };
        let loaded = files.load_pair().and_then(|(c, k)| cert.reload(&c, &k));
        match loaded {
            Ok(()) => tracing::info!(cert = %watch.cert.display(), "hub certificate reloaded"),
            Err(e) => tracing::warn!(
                "the hub certificate {} was not reloaded, the one in force stays: {e}",
                watch.cert.display()
            ),
        }
    }
}
