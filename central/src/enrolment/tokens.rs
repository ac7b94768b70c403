//! One-time enrolment tokens: short, typeable, bound to one dealer id, expiring.
//!
//! `central dealers add` / `central dealers token` issue a token and print it once; the file
//! `<registry>.tokens` (0600, written whole and renamed) keeps only each token's SHA-256, its
//! dealer and its expiry, never the token itself, so a copy of the file enrols nobody. One
//! dealer has at most one live token: a new one replaces the previous. That a token was used is
//! the hub's to remember (its store: [`crate::store::HubStore::use_enrolment_token`]), so the
//! CLI and the running hub never write the same file.
//!
//! A token is 12 characters of Crockford's base32 (no I, L, O, U: nothing to misread), shown
//! in three groups (`7KQM-2XHD-9PWA`): 60 bits, against an attacker limited to a few attempts
//! per minute by the enrolment listener.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a token.
const LENGTH: usize = 12;
/// How long a token is valid unless told otherwise: 72 hours.
pub const DEFAULT_VALID_HOURS: i64 = 72;

/// What the tokens file remembers of one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// SHA-256 of the normalised token, hex.
    pub sha256: String,
    pub dealer_id: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

/// Why a token could not be issued or read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the enrolment tokens {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the enrolment tokens file {path} is not a JSON list of tokens: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("cannot write the enrolment tokens {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--valid-hours {0}: a token must be valid for 1 to 720 hours")]
    Validity(i64),
}

/// Where the tokens of the registry at `registry` are kept.
pub fn tokens_path(registry: &Path) -> PathBuf {
    let mut name = registry.as_os_str().to_owned();
    name.push(".tokens");
    PathBuf::from(name)
}

/// A token as typed: upper case, no spaces or dashes, and the letters people confuse with
/// digits read as those digits (O as 0, I and L as 1), as Crockford's base32 does.
pub fn normalise(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// The SHA-256 (hex) of a normalised token.
pub fn digest(normalised: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, normalised.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tokens in the file (an absent file holds none).
pub fn load(path: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| TokenError::Format {
            path: path.to_owned(),
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(TokenError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Issues a token for `dealer_id`, valid `valid_hours` from `now_ms`, replacing the dealer's
/// previous one and dropping every expired one; returns the token as shown to people.
pub fn issue(
    path: &Path,
    dealer_id: &str,
    now_ms: i64,
    valid_hours: i64,
) -> Result<String, TokenError> {
    if !(1..=720).contains(&valid_hours) {
        return Err(TokenError::Validity(valid_hours));
    }
    let token: String = (0..LENGTH)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    let mut entries = load(path)?;
    entries.retain(|e| e.dealer_id != dealer_id && e.expires_ms > now_ms);
    entries.push(TokenEntry {
        sha256: digest(&token),
        dealer_id: dealer_id.to_owned(),
        issued_ms: now_ms,
        expires_ms: now_ms + valid_hours * 3_600_000,
    });
    write(path, &entries)?;
    Ok(format!("{}-{}-{}", &token[..4], &token[4..8], &token[8..]))
}

fn write(path: &Path, entries: &[TokenEntry]) -> Result<(), TokenError> {
    let failed = |source| TokenError::Write {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_string_pretty(entries)
        .map_err(|e| failed(std::io::Error::other(e.to_string())))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    hamgam_gateway::files::write_private(&tmp, text.as_bytes()).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_however_it_is_typed_and_a_new_one_replaces_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json.tokens");
        let first = issue(&path, "D-1042", 1_000, 72).unwrap();
        assert_eq!(first.len(), 14, "{first}");
        assert!(first
            .chars()
            .all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        let typed = format!(
            " {} ",
            first.to_lowercase().replace('0', "o").replace('-', " ")
        );
        assert_eq!(digest(&normalise(&typed)), load(&path).unwrap()[0].sha256);
        let second = issue(&path, "D-1042", 2_000, 1).unwrap();
        let other = issue(&path, "D-7", 2_000, 72).unwrap();
        let entries = load(&path).unwrap();
        assert_eq!(entries.len(), 2, "one live token per dealer");
        assert!(entries
            .iter()
            .all(|e| e.sha256 != digest(&normalise(&first))));
        let d1042 = entries.iter().find(|e| e.dealer_id == "D-1042").unwrap();
        assert_eq!(d1042.sha256, digest(&normalise(&second)));
        assert_eq!(d1042.expires_ms, 2_000 + 3_600_000);
        assert!(entries
            .iter()
            .any(|e| e.sha256 == digest(&normalise(&other))));
        // The file holds digests, never a token.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&normalise(&second)));
        for hours in [0, -1, 721] {
            assert!(matches!(
                issue(&path, "D-1", 0, hours),
                Err(TokenError::Validity(_))
            ));
        }
    }
}
