//! The hub's own certificate is replaced while it serves: new handshakes present the new pair
//! once its files change (or on SIGHUP), connections already open are untouched, and a pair
//! that does not go together is refused with the old one still in force. Real rustls over TCP
//! on 127.0.0.1, certificates from the project's PKI.

use std::sync::Arc;

use hamgam_gateway::pki::{Subject, Validity};
use hamgam_gateway::server_cert::{watch_server_cert, ServerCertWatch};
use hamgam_gateway::tls::{self, TlsMaterial};
use hamgam_gateway::PeerIdentity;
use hamgam_tests::{dealer, TestPki};
use rustls::pki_types::ServerName;

/// The certificate the server at `addr` presents to a dealer client.
async fn presented(addr: std::net::SocketAddr, client: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = ServerName::try_from("localhost").expect("name");
    let stream = connector.connect(name, tcp).await.expect("handshake");
    let (_, session) = stream.get_ref();
    session.peer_certificates().expect("certificates")[0]
        .as_ref()
        .to_vec()
}

fn der_of(material: &TlsMaterial) -> Vec<u8> {
    tls::parse_certificates(&material.cert_pem, "cert").expect("parse")[0]
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_hub_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let first = pki.hub_material();
    let second = pki.hub_material();
    let cert_path = dir.path().join("hub.crt");
    let key_path = dir.path().join("hub.key");
    std::fs::write(&cert_path, &first.cert_pem).expect("cert");
    hamgam_gateway::files::write_private(&key_path, &first.key_pem).expect("key");

    let (config, cert) = tls::server_config_reloadable(
        &first,
        tls::client_verifier(&first.ca_pem).expect("verifier"),
    )
    .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    // Keep the connection until the client goes.
                    let mut stream = stream;
                    let mut buf = [0u8; 1];
                    let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
                }
            });
        }
    });
    let client = tls::client_config(&pki.client_material(PeerIdentity::Dealer(dealer("D-1042"))))
        .expect("client");
    assert_eq!(presented(addr, client.clone()).await, der_of(&first));

    let stop = tokio_util::sync::CancellationToken::new();
    let mut reloads = cert.reloads();
    tokio::spawn(watch_server_cert(
        cert.clone(),
        ServerCertWatch {
            cert: cert_path.clone(),
            key: key_path.clone(),
            every: std::time::Duration::from_millis(20),
        },
        stop.clone(),
    ));
    // The new pair, key first: a certificate without its key is refused until both are there.
    hamgam_gateway::files::write_private(&key_path, &second.key_pem).expect("key");
    std::fs::write(&cert_path, &second.cert_pem).expect("cert");
    reloads.changed().await.expect("reloaded");
    assert_eq!(presented(addr, client.clone()).await, der_of(&second));

    // A certificate with another pair's key is refused; the pair in force stays.
    let other = pki
        .ca
        .issue(
            &Subject::Hub {
                dns_names: vec!["localhost".into()],
                ips: vec![],
            },
            Validity::days_from_now(7),
        )
        .expect("other");
    let refused = cert
        .reload(other.cert_pem.as_bytes(), &first.key_pem)
        .expect_err("mismatched pair");
    assert!(
        refused.to_string().contains("do not go together"),
        "{refused}"
    );
    assert_eq!(presented(addr, client).await, der_of(&second));
    stop.cancel();
}
