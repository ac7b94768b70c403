//! Staff accounts of the branch's web screen (`crate::web`): who may log in, with which role.
//!
//! Accounts live in the agent's store (its own sled tree `staff`, behind [`AgentStore`]'s
//! `staff_account` methods). Only an Argon2id hash of a password is kept, as a PHC string with a
//! random salt; the password itself is never written anywhere. `dealer-agent staff ...` manages
//! them.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use crate::store::{AgentStore, StoreError};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What a staff member does at the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A sales consultant.
    Sales,
    /// A service adviser.
    Service,
    /// The branch's manager.
    Manager,
}

impl Role {
    /// The role's name in Persian.
    pub fn label_fa(self) -> &'static str {
        match self {
            Role::Sales => "مشاور فروش",
            Role::Service => "پذیرش خدمات",
            Role::Manager => "مدیر",
        }
    }

    /// The role's name in English.
    pub fn label_en(self) -> &'static str {
        match self {
            Role::Sales => "sales consultant",
            Role::Service => "service adviser",
            Role::Manager => "manager",
        }
    }
}

/// One staff member's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAccount {
    /// The staff code records carry as their `staff_id`.
    pub staff_id: String,
    pub name: String,
    pub role: Role,
    /// Argon2id PHC string (`$argon2id$v=19$...`), never the password.
    pub password_hash: String,
    /// A disabled account cannot log in; its records stay.
    pub disabled: bool,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("the password is too short: at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the staff id `{0}` is not usable: 1-64 letters, digits, `-`, `_` or `.`")]
    BadStaffId(String),
    #[error("the name is empty")]
    EmptyName,
    #[error("there is already a staff account `{0}`")]
    Exists(String),
    #[error("there is no staff account `{0}`")]
    NotFound(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes `password` with Argon2id and a fresh random salt (16 bytes): a PHC string.
pub fn hash_password(password: &str) -> Result<String, StaffError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StaffError::PasswordTooShort);
    }
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| StaffError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StaffError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (a malformed hash matches nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn check_staff_id(staff_id: &str) -> Result<(), StaffError> {
    let usable = !staff_id.is_empty()
        && staff_id.len() <= 64
        && staff_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if usable {
        Ok(())
    } else {
        Err(StaffError::BadStaffId(staff_id.to_owned()))
    }
}

/// Makes a new account (`dealer-agent staff add`).
pub fn add(
    store: &AgentStore,
    staff_id: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<StaffAccount, StaffError> {
    check_staff_id(staff_id)?;
    if name.trim().is_empty() {
        return Err(StaffError::EmptyName);
    }
    if store.staff_account(staff_id)?.is_some() {
        return Err(StaffError::Exists(staff_id.to_owned()));
    }
    let account = StaffAccount {
        staff_id: staff_id.to_owned(),
        name: name.trim().to_owned(),
        role,
        password_hash: hash_password(password)?,
        disabled: false,
    };
    store.put_staff_account(&account)?;
    Ok(account)
}

/// Disables an account (`dealer-agent staff disable`): it can no longer log in.
pub fn disable(store: &AgentStore, staff_id: &str) -> Result<StaffAccount, StaffError> {
    let mut account = store
        .staff_account(staff_id)?
        .ok_or_else(|| StaffError::NotFound(staff_id.to_owned()))?;
    account.disabled = true;
    store.put_staff_account(&account)?;
    Ok(account)
}

/// Sets a new password (`dealer-agent staff reset-password`); the account is enabled again.
pub fn reset_password(
    store: &AgentStore,
    staff_id: &str,
    password: &str,
) -> Result<StaffAccount, StaffError> {
    let mut account = store
        .staff_account(staff_id)?
        .ok_or_else(|| StaffError::NotFound(staff_id.to_owned()))?;
    account.password_hash = hash_password(password)?;
    account.disabled = false;
    store.put_staff_account(&account)?;
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamgam_gateway::DealerId;

    #[test]
    fn passwords_are_salted_hashes_that_verify_and_accounts_round_trip() {
        let first = hash_password("correct horse").unwrap();
        let second = hash_password("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "a random salt each time");
        assert!(!first.contains("correct horse"));
        assert!(verify_password("correct horse", &first));
        assert!(!verify_password("correct hors", &first));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(StaffError::PasswordTooShort)
        ));

        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path(), DealerId::new("D-1").unwrap()).unwrap();
        add(&store, "s-1", "Sara", Role::Service, "password-1").unwrap();
        assert!(matches!(
            add(&store, "s-1", "Sara", Role::Service, "password-1"),
            Err(StaffError::Exists(_))
        ));
        assert!(matches!(
            add(&store, "bad id", "X", Role::Sales, "password-1"),
            Err(StaffError::BadStaffId(_))
        ));
        assert!(disable(&store, "s-1").unwrap().disabled);
        let back = reset_password(&store, "s-1", "password-2").unwrap();
        assert!(!back.disabled && verify_password("password-2", &back.password_hash));
        assert_eq!(store.staff_accounts().unwrap(), vec![back]);
        assert!(matches!(
            disable(&store, "nobody"),
            Err(StaffError::NotFound(_))
        ));
    }
}
