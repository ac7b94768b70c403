//! The hub's TLS edge: accepts TCP connections on a bound listener, runs the mutual-TLS
//! handshake off the accept loop, reads the peer's identity from its verified certificate once,
//! and yields connections that carry that identity to tonic.
//!
//! Every RPC handler (and the [`crate::authz`] layer) finds a [`PeerInfo`] in the request
//! extensions. A connection whose handshake fails, or whose certificate has no Hamgam identity,
//! never reaches tonic: it is closed and logged as a security event.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use crate::audit::{SecurityAudit, SecurityEventKind};
use crate::identity::PeerIdentity;

/// What the hub knows about the peer of a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub identity: PeerIdentity,
    pub remote_addr: SocketAddr,
}

impl PeerInfo {
    /// The peer of a request that came through [`incoming`].
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&PeerInfo, tonic::Status> {
        request.extensions().get::<PeerInfo>().ok_or_else(|| {
            tonic::Status::unauthenticated("no verified client certificate on this connection")
        })
    }
}

/// A TLS connection and what the edge learnt of its peer (`I`), which tonic puts in every
/// request's extensions.
pub struct TlsConn<I> {
    stream: TlsStream<TcpStream>,
    peer: I,
}

/// A TLS connection whose client certificate has been verified and read.
pub type AuthenticatedConn = TlsConn<PeerInfo>;

/// The peer of a connection that authenticated the hub only (the enrolment listener: the
/// agent has no certificate yet).
#[derive(Debug, Clone, Copy)]
pub struct AnonymousPeer {
    pub remote_addr: SocketAddr,
}

impl<I: Clone + Send + Sync + 'static> Connected for TlsConn<I> {
    type ConnectInfo = I;
    fn connect_info(&self) -> I {
        self.peer.clone()
    }
}

impl<I: Unpin> AsyncRead for TlsConn<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<I: Unpin> AsyncWrite for TlsConn<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// How the TLS edge behaves.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub tls: Arc<ServerConfig>,
    /// The SPIFFE trust domain client identities must belong to.
    pub trust_domain: String,
    /// A client that has not finished its handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// Handshakes running at once; further connections wait in the kernel's backlog.
    pub max_concurrent_handshakes: usize,
}

impl EdgeConfig {
    pub fn new(tls: Arc<ServerConfig>, trust_domain: impl Into<String>) -> Self {
        EdgeConfig {
            tls,
            trust_domain: trust_domain.into(),
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 256,
        }
    }
}

/// Turns a bound listener into a stream of authenticated connections for
/// `tonic::transport::Server::serve_with_incoming_shutdown`. The accept loop stops when the
/// stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: EdgeConfig,
    audit: SecurityAudit,
) -> impl Stream<Item = Result<AuthenticatedConn, io::Error>> {
    incoming_with(listener, config, audit, authenticated)
}

/// [`incoming`] for a listener whose TLS config asks for no client certificate (the
/// enrolment listener): same handshake limits and security events, and no identity.
pub fn incoming_anonymous(
    listener: TcpListener,
    config: EdgeConfig,
    audit: SecurityAudit,
) -> impl Stream<Item = Result<TlsConn<AnonymousPeer>, io::Error>> {
    incoming_with(listener, config, audit, |stream, remote_addr, _, _| {
        Some(TlsConn {
            stream,
            peer: AnonymousPeer { remote_addr },
        })
    })
}

/// What the edge makes of a finished handshake: a connection for tonic, or None (refused).
type Finish<C> = fn(TlsStream<TcpStream>, SocketAddr, &EdgeConfig, &SecurityAudit) -> Option<C>;

fn incoming_with<C: Send + 'static>(
    listener: TcpListener,
    config: EdgeConfig,
    audit: SecurityAudit,
    finish: Finish<C>,
) -> impl Stream<Item = Result<C, io::Error>> {
    let (conn_tx, conn_rx) = mpsc::channel::<Result<C, io::Error>>(64);
    tokio::spawn(accept_loop(listener, config, audit, finish, conn_tx));
    ReceiverStream::new(conn_rx)
}

async fn accept_loop<C: Send + 'static>(
    listener: TcpListener,
    config: EdgeConfig,
    audit: SecurityAudit,
    finish: Finish<C>,
    conn_tx: mpsc::Sender<Result<C, io::Error>>,
) {
    let acceptor = TlsAcceptor::from(config.tls.clone());
    let handshakes = Arc::new(Semaphore::new(config.max_concurrent_handshakes));
    let config = Arc::new(config);
    loop {
        let permit = tokio::select! {
            _ = conn_tx.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = conn_tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote_addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Acks are small; without this they wait on Nagle + delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%remote_addr, "set_nodelay failed: {e}");
        }
        let acceptor = acceptor.clone();
        let audit = audit.clone();
        let config = config.clone();
        let conn_tx = conn_tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(stream) = handshake(acceptor, tcp, remote_addr, &config, &audit).await else {
                return;
            };
            if let Some(conn) = finish(stream, remote_addr, &config, &audit) {
                let _ = conn_tx.send(Ok(conn)).await;
            }
        });
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote_addr: SocketAddr,
    config: &EdgeConfig,
    audit: &SecurityAudit,
) -> Option<TlsStream<TcpStream>> {
    let (accepted, refused) = crate::refused::handshake_naming(tokio::time::timeout(
        config.handshake_timeout,
        acceptor.accept(tcp),
    ))
    .await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            // The certificate refused (expired, not yet valid, revoked, another CA) names who
            // tried, from its URI SAN.
            let peer = refused
                .and_then(|der| PeerIdentity::from_certificate(&der, &config.trust_domain).ok())
                .map(|p| p.to_string());
            audit.record(
                SecurityEventKind::HandshakeRefused,
                peer,
                Some(remote_addr),
                format!("TLS handshake failed: {e}"),
            );
            return None;
        }
        Err(_) => {
            audit.record(
                SecurityEventKind::HandshakeRefused,
                None,
                Some(remote_addr),
                format!(
                    "TLS handshake not finished within {:?}",
                    config.handshake_timeout
                ),
            );
            return None;
        }
    };
    Some(stream)
}

/// The identity of a mutual-TLS peer, from its verified certificate.
fn authenticated(
    stream: TlsStream<TcpStream>,
    remote_addr: SocketAddr,
    config: &EdgeConfig,
    audit: &SecurityAudit,
) -> Option<AuthenticatedConn> {
    let (_, session) = stream.get_ref();
    let identity = match session.peer_certificates().and_then(|c| c.first()) {
        Some(leaf) => PeerIdentity::from_certificate(leaf, &config.trust_domain),
        None => Err(crate::GatewayError::BadIdentity(
            "no client certificate".into(),
        )),
    };
    match identity {
        Ok(identity) => {
            tracing::debug!(%remote_addr, peer = %identity, "mutual TLS established");
            Some(AuthenticatedConn {
                stream,
                peer: PeerInfo {
                    identity,
                    remote_addr,
                },
            })
        }
        Err(e) => {
            audit.record(
                SecurityEventKind::IdentityRefused,
                None,
                Some(remote_addr),
                e.to_string(),
            );
            None
        }
    }
}
