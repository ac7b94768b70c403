//! `central dealers`: the dealer lifecycle in HQ's registry file (`registry = ...` in the hub's
//! config): list, add, suspend, resume. Every change is written whole under a temporary name
//! and renamed (a hub re-reading the file never sees half of it), the file stays its owner's
//! (0600: it holds staff IDs and mobiles), and each change is appended to `<registry>.log` as a
//! JSON line (when, what, which dealer, the reason). A running hub picks the new file up within
//! its `registry_reload_secs` (`server::watch_registry`); revoking also needs the CRL, which the
//! binary writes with `central pki revoke`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hamgam_proto::registry::DealerProfile;

/// Why a registry change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DealersError {
    #[error("cannot read the dealer registry {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the dealer registry {path} is not a JSON list of dealers: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("cannot write the dealer registry {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dealer {0} is already in the registry")]
    Exists(String),
    #[error("dealer {0} is not in the registry; `central dealers add {0} --name ...` first")]
    Unknown(String),
    #[error("`{0}` is not a dealer id (D- and digits, e.g. D-1042)")]
    BadId(String),
}

/// The registry file's dealers (an absent file is an empty registry).
pub fn load(path: &Path) -> Result<Vec<DealerProfile>, DealersError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| DealersError::Format {
            path: path.to_owned(),
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(DealersError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// What a change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealerChange {
    Add(DealerProfile),
    Suspend { dealer_id: String, reason: String },
    Resume { dealer_id: String },
}

/// Applies `change` to the registry at `path` (atomically) and logs it; `at_ms` is when.
pub fn apply(path: &Path, change: DealerChange, at_ms: i64) -> Result<DealerProfile, DealersError> {
    let mut dealers = load(path)?;
    let (action, dealer_id, reason, changed) = match change {
        DealerChange::Add(profile) => {
            hamgam_gateway::DealerId::new(profile.dealer_id.clone())
                .map_err(|_| DealersError::BadId(profile.dealer_id.clone()))?;
            if dealers.iter().any(|d| d.dealer_id == profile.dealer_id) {
                return Err(DealersError::Exists(profile.dealer_id));
            }
            dealers.push(profile.clone());
            ("add", profile.dealer_id.clone(), String::new(), profile)
        }
        DealerChange::Suspend { dealer_id, reason } => {
            let d = find(&mut dealers, &dealer_id)?;
            d.suspended = reason.clone();
            ("suspend", dealer_id, reason, d.clone())
        }
        DealerChange::Resume { dealer_id } => {
            let d = find(&mut dealers, &dealer_id)?;
            d.suspended.clear();
            ("resume", dealer_id, String::new(), d.clone())
        }
    };
    dealers.sort_by(|a, b| a.dealer_id.cmp(&b.dealer_id));
    write(path, &dealers)?;
    let line = serde_json::json!({
        "at_ms": at_ms,
        "action": action,
        "dealer_id": dealer_id,
        "reason": reason,
        "by": std::env::var("USER").unwrap_or_default(),
    });
    let log = log_path(path);
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| writeln!(f, "{line}").and_then(|_| f.sync_all()));
    appended.map_err(|source| DealersError::Write { path: log, source })?;
    tracing::info!(dealer_id = %changed.dealer_id, action, "dealer registry changed");
    Ok(changed)
}

/// Where the changes of the registry at `path` are logged.
pub fn log_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn find<'a>(
    dealers: &'a mut [DealerProfile],
    dealer_id: &str,
) -> Result<&'a mut DealerProfile, DealersError> {
    dealers
        .iter_mut()
        .find(|d| d.dealer_id == dealer_id)
        .ok_or_else(|| DealersError::Unknown(dealer_id.to_owned()))
}

fn write(path: &Path, dealers: &[DealerProfile]) -> Result<(), DealersError> {
    let failed = |source| DealersError::Write {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_string_pretty(dealers)
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
    fn changes_are_written_whole_and_logged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.json");
        let profile = DealerProfile {
            dealer_id: "D-1042".into(),
            name: "نمایندگی تهران".into(),
            region: "تهران".into(),
            ..Default::default()
        };
        apply(&path, DealerChange::Add(profile.clone()), 1).expect("added");
        assert!(matches!(
            apply(&path, DealerChange::Add(profile), 2),
            Err(DealersError::Exists(_))
        ));
        let suspended = apply(
            &path,
            DealerChange::Suspend {
                dealer_id: "D-1042".into(),
                reason: "contract under review".into(),
            },
            3,
        )
        .expect("suspended");
        assert_eq!(suspended.suspended, "contract under review");
        assert_eq!(
            load(&path).expect("load")[0].suspended,
            "contract under review"
        );
        apply(
            &path,
            DealerChange::Resume {
                dealer_id: "D-1042".into(),
            },
            4,
        )
        .expect("resumed");
        assert!(load(&path).expect("load")[0].suspended.is_empty());
        assert!(matches!(
            apply(
                &path,
                DealerChange::Resume {
                    dealer_id: "D-9".into()
                },
                5
            ),
            Err(DealersError::Unknown(_))
        ));
        let log = std::fs::read_to_string(log_path(&path)).expect("log");
        let actions: Vec<String> = log
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["action"].to_string()
            })
            .collect();
        assert_eq!(actions, vec!["\"add\"", "\"suspend\"", "\"resume\""]);
        assert_eq!(
            hamgam_gateway::files::mode_of(&path).expect("mode"),
            Some(0o600)
        );
    }
}
