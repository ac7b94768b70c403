//! A gRPC channel to the hub over mutual TLS, for the agent and for HQ / ops clients.
//!
//! The TCP and TLS connection is made here (not by tonic) so that both ends use the same rustls
//! configs from [`crate::tls`], TCP_NODELAY is set, and the hub's name is checked against its
//! certificate.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::GatewayError;

/// Where the hub is and how to talk to it.
#[derive(Debug, Clone)]
pub struct HubEndpoint {
    /// `host:port` to dial.
    pub addr: String,
    /// The name the hub's certificate must carry (a DNS name or an IP address).
    pub server_name: String,
    pub tls: Arc<ClientConfig>,
    pub connect_timeout: Duration,
}

impl HubEndpoint {
    pub fn new(
        addr: impl Into<String>,
        server_name: impl Into<String>,
        tls: Arc<ClientConfig>,
    ) -> Self {
        HubEndpoint {
            addr: addr.into(),
            server_name: server_name.into(),
            tls,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Connects now: TCP, TLS handshake, HTTP/2. A refused certificate may only show on the
    /// first call (TLS 1.3 sends the client's certificate after the server's Finished).
    pub async fn connect(&self) -> Result<Channel, GatewayError> {
        let server_name =
            ServerName::try_from(self.server_name.clone()).map_err(|e| GatewayError::Connect {
                addr: self.addr.clone(),
                detail: format!("`{}` is not a valid server name: {e}", self.server_name),
            })?;
        let connector = TlsConnector::from(self.tls.clone());
        let addr = self.addr.clone();
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|e| GatewayError::Connect {
                addr: self.addr.clone(),
                detail: format!("not a host:port: {e}"),
            })?
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        let timeout = self.connect_timeout;
        endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let connector = connector.clone();
                let server_name = server_name.clone();
                let addr = addr.clone();
                async move {
                    let tcp = tokio::time::timeout(timeout, TcpStream::connect(&addr))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "TCP connect timed out",
                            )
                        })??;
                    tcp.set_nodelay(true)?;
                    let tls = tokio::time::timeout(timeout, connector.connect(server_name, tcp))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "TLS handshake timed out",
                            )
                        })??;
                    Ok::<_, std::io::Error>(TokioIo::new(tls))
                }
            }))
            .await
            .map_err(|e| GatewayError::Connect {
                addr: self.addr.clone(),
                detail: error_chain(&e),
            })
    }
}

/// An error and its sources on one line, for messages people read.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
