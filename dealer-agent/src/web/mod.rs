//! The dealership's own screen: a Persian, right-to-left web UI that `dealer-agent run` serves
//! on this PC (`[web]` in agent.toml) over the running agent's [`AgentStore`], for staff
//! accounts made with `dealer-agent staff add` ([`crate::staff`]).
//!
//! Pages are rendered on the server (minijinja templates built into the binary) as plain HTML
//! forms: no JavaScript. Every page but the login page needs a logged-in session; every POST
//! carries its form's CSRF token; failed logins are rate-limited.
//!
//! - [`server`]: the state, the routes, cookies, responses and their security headers;
//! - [`sessions`]: session ids and the idle timeout;
//! - [`csrf`]: the forms' tokens;
//! - [`throttle`]: the login rate limit;
//! - [`pages`]: login, logout and the dashboard;
//! - [`forms`]: the forms of every kind, new records and corrections, saved through the
//!   agent's capture code;
//! - [`lookup`]: customers by name, mobile or national ID, and a VIN's history, in the local
//!   store, with the VIN's network history from the hub when it is reachable;
//! - [`templates`]: the HTML and the words in Persian and English.
//!
//! On a loopback address (the default: the staff PC's own browser) it is plain HTTP; a LAN
//! address is served only over HTTPS, with the certificate and key ops give in `[web]`
//! ([`check_listen`], [`server::serve_tls`]), and its cookies are then `Secure`.

// Handlers return early with the page to show (`Result<_, Response>`, axum's usual shape); a
// Response is large, and boxing it would buy nothing on a screen serving one branch.
#![allow(clippy::result_large_err)]

pub mod csrf;
pub mod forms;
pub mod lookup;
pub mod pages;
pub mod server;
pub mod sessions;
pub mod templates;
pub mod throttle;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use hamgam_gateway::Clock;

pub use server::{router, serve, serve_tls};

#[cfg(doc)]
use crate::store::AgentStore;

/// Why the staff screen cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("[web] listen = `{0}` is not a host:port address, e.g. 127.0.0.1:8080")]
    BadListen(String),
    #[error("[web] listen = `{0}` is not a loopback address: on the network the staff screen needs HTTPS, or passwords and customers' data would cross it unencrypted; set tls_certificate and tls_key in [web] (a certificate for the name or address staff type), or keep it on 127.0.0.1 (the staff PC's own browser)")]
    NotLoopback(String),
    #[error("[web] sets only one of tls_certificate and tls_key: HTTPS needs both")]
    HalfTls,
    #[error("[web] HTTPS: cannot read {path}: {source}")]
    TlsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[web] HTTPS: {0}")]
    Tls(#[from] hamgam_gateway::GatewayError),
    #[error("the staff screen's page templates do not parse: {0}")]
    Templates(String),
}

/// Makes the dealer's endpoint to the hub when the screen needs it (the lookup's network VIN
/// history): made anew each time, so a certificate renewed while the agent runs is used.
pub type HubConnector =
    std::sync::Arc<dyn Fn() -> Result<hamgam_gateway::client::HubEndpoint, String> + Send + Sync>;

/// How the web server runs.
#[derive(Clone)]
pub struct WebOptions {
    /// A session unused this long ends.
    pub idle_minutes: u64,
    /// The dealer certificate, for its expiry on the dashboard.
    pub certificate: Option<PathBuf>,
    /// "Now" for sessions, the login rate limit and "today" (a fixed one in tests).
    pub clock: Clock,
    /// Served over HTTPS: cookies are `Secure`.
    pub https: bool,
    /// The hub, for the network-wide VIN history (`VehicleLookup.GetServiceSummary`); without
    /// it the lookup shows this branch's records only.
    pub hub: Option<HubConnector>,
}

impl std::fmt::Debug for WebOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebOptions")
            .field("idle_minutes", &self.idle_minutes)
            .field("certificate", &self.certificate)
            .field("clock", &self.clock)
            .field("https", &self.https)
            .field("hub", &self.hub.is_some())
            .finish()
    }
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            idle_minutes: 30,
            certificate: None,
            clock: Clock::System,
            https: false,
            hub: None,
        }
    }
}

/// The address to listen on: a loopback address, or any address when the screen is served
/// over HTTPS (`https`; see [`WebError::NotLoopback`]).
pub fn check_listen(listen: &str, https: bool) -> Result<SocketAddr, WebError> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|_| WebError::BadListen(listen.to_owned()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| WebError::BadListen(listen.to_owned()))?;
    if https || addrs.iter().all(|a| a.ip().is_loopback()) {
        Ok(first)
    } else {
        Err(WebError::NotLoopback(listen.to_owned()))
    }
}

/// The HTTPS config from `[web]`'s certificate and key files, or `None` for plain HTTP.
pub fn https_config(
    certificate: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, WebError> {
    let (certificate, key) = match (certificate, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => return Err(WebError::HalfTls),
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| WebError::TlsFile {
            path: path.to_owned(),
            source,
        })
    };
    hamgam_gateway::files::check_owner_only(key).map_err(|source| WebError::TlsFile {
        path: key.to_owned(),
        source,
    })?;
    let config = hamgam_gateway::tls::browser_server_config(
        &read(certificate)?,
        &read(key)?,
        "the staff screen's certificate",
    )?;
    Ok(Some(config))
}

/// `?lang=fa|en` on any page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

/// The first value of form field `name`.
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The screen writes records only through the agent's capture code: every call it makes on
    /// the store is a read, and its forms save with `capture::save_checked`.
    #[test]
    fn the_screen_reaches_the_store_only_to_read_and_saves_through_the_capture_code() {
        const READS: &[&str] = &[
            "clone",
            "record",
            "records_after_blocking",
            "latest_records_blocking",
            "staff_account",
            "status",
            "verdicts",
        ];
        let sources = [
            ("server.rs", include_str!("server.rs")),
            ("pages.rs", include_str!("pages.rs")),
            ("forms.rs", include_str!("forms.rs")),
            ("lookup.rs", include_str!("lookup.rs")),
            ("sessions.rs", include_str!("sessions.rs")),
            ("throttle.rs", include_str!("throttle.rs")),
            ("csrf.rs", include_str!("csrf.rs")),
        ];
        for (name, source) in sources {
            let code: String = source.chars().filter(|c| !c.is_whitespace()).collect();
            for (at, _) in code.match_indices("store.") {
                let rest = &code[at + "store.".len()..];
                let method: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // A call (`store.verdicts(`), not prose ending a sentence in a comment.
                if method.is_empty() || !rest[method.len()..].starts_with('(') {
                    continue;
                }
                assert!(
                    READS.contains(&method.as_str()),
                    "{name} calls store.{method}: the screen only reads the store and saves through capture::save_checked"
                );
            }
        }
        assert!(include_str!("forms.rs").contains("capture::save_checked(&store"));
    }

    #[test]
    fn a_lan_address_is_served_only_over_https() {
        assert_eq!(
            check_listen("127.0.0.1:8080", false).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(check_listen("[::1]:8080", false).is_ok());
        let err = check_listen("0.0.0.0:8080", false).unwrap_err();
        assert!(matches!(err, WebError::NotLoopback(_)), "{err}");
        assert!(err.to_string().contains("tls_certificate"), "{err}");
        assert!(matches!(
            check_listen("192.168.1.10:80", false),
            Err(WebError::NotLoopback(_))
        ));
        assert!(
            check_listen("192.168.1.10:443", true).is_ok(),
            "a LAN address over HTTPS"
        );
        assert!(matches!(
            check_listen("nonsense", true),
            Err(WebError::BadListen(_))
        ));
        assert!(matches!(
            https_config(Some(Path::new("/x.crt")), None),
            Err(WebError::HalfTls)
        ));
        assert!(https_config(None, None).unwrap().is_none());
    }
}
