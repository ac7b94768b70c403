//! Login rate limiting: after [`MAX_FAILURES`] failed logins of one account, or from one
//! address, within [`WINDOW_MS`], further logins of that account or from that address are
//! refused for [`LOCK_MS`], even with the right password, with a message saying so. A
//! successful login clears the account's and the address's count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed logins allowed before the account or address is slowed.
pub const MAX_FAILURES: u32 = 5;
/// The failures counted are those of this long (ms).
pub const WINDOW_MS: i64 = 15 * 60_000;
/// How long a slowed account or address is refused (ms).
pub const LOCK_MS: i64 = 15 * 60_000;

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    first_ms: i64,
    locked_until_ms: Option<i64>,
}

/// The failed logins of one web server, by account and by address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    accounts: Mutex<HashMap<String, Count>>,
    addresses: Mutex<HashMap<IpAddr, Count>>,
}

/// A login is refused for now: until when (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slowed {
    pub until_ms: i64,
}

impl Slowed {
    /// Whole minutes left, at least one.
    pub fn minutes_left(self, now_ms: i64) -> i64 {
        ((self.until_ms - now_ms).max(0) + 59_999) / 60_000
    }
}

fn locked<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Count>>,
    key: &K,
    now_ms: i64,
) -> Option<i64> {
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.get(key)
        .and_then(|c| c.locked_until_ms)
        .filter(|until| now_ms < *until)
}

fn fail<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Count>>, key: K, now_ms: i64) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    let count = map.entry(key).or_insert(Count {
        failures: 0,
        first_ms: now_ms,
        locked_until_ms: None,
    });
    let lock_over = count.locked_until_ms.is_some_and(|until| now_ms >= until);
    if lock_over || now_ms.saturating_sub(count.first_ms) > WINDOW_MS {
        *count = Count {
            failures: 0,
            first_ms: now_ms,
            locked_until_ms: None,
        };
    }
    count.failures += 1;
    if count.failures >= MAX_FAILURES {
        count.locked_until_ms = Some(now_ms + LOCK_MS);
    }
}

impl LoginThrottle {
    /// Whether a login of `account` from `address` is refused at `now_ms` without looking at
    /// the password.
    pub fn check(&self, account: &str, address: IpAddr, now_ms: i64) -> Result<(), Slowed> {
        let until = [
            locked(&self.accounts, &account.to_owned(), now_ms),
            locked(&self.addresses, &address, now_ms),
        ]
        .into_iter()
        .flatten()
        .max();
        match until {
            Some(until_ms) => Err(Slowed { until_ms }),
            None => Ok(()),
        }
    }

    /// Counts a failed login of `account` from `address`.
    pub fn failed(&self, account: &str, address: IpAddr, now_ms: i64) {
        fail(&self.accounts, account.to_owned(), now_ms);
        fail(&self.addresses, address, now_ms);
    }

    /// Clears the counts after a successful login.
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account);
        self.addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn five_failures_of_an_account_slow_it_from_every_address_for_a_while() {
        let throttle = LoginThrottle::default();
        for i in 0..4 {
            throttle.failed("s-1", if i % 2 == 0 { HERE } else { THERE }, i);
            assert!(throttle.check("s-1", HERE, i).is_ok());
        }
        throttle.failed("s-1", THERE, 10);
        let slowed = throttle.check("s-1", HERE, 11).unwrap_err();
        assert_eq!(slowed.until_ms, 10 + LOCK_MS);
        assert_eq!(slowed.minutes_left(11), 15);
        assert!(throttle.check("s-2", HERE, 11).is_ok(), "others log in");
        assert!(
            throttle.check("s-1", HERE, 10 + LOCK_MS).is_ok(),
            "and after the lock"
        );
    }

    #[test]
    fn five_failures_from_an_address_slow_every_account_from_it() {
        let throttle = LoginThrottle::default();
        for (i, account) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            throttle.failed(account, THERE, i as i64);
        }
        assert!(throttle.check("f", THERE, 5).is_err());
        assert!(throttle.check("f", HERE, 5).is_ok());
    }

    #[test]
    fn a_success_clears_the_count_and_old_failures_are_forgotten() {
        let throttle = LoginThrottle::default();
        for i in 0..4 {
            throttle.failed("s-1", HERE, i);
        }
        throttle.succeeded("s-1", HERE);
        throttle.failed("s-1", HERE, 5);
        assert!(throttle.check("s-1", HERE, 6).is_ok());
        let throttle = LoginThrottle::default();
        for i in 0..4 {
            throttle.failed("s-1", HERE, i);
        }
        throttle.failed("s-1", HERE, WINDOW_MS + 10);
        assert!(throttle.check("s-1", HERE, WINDOW_MS + 11).is_ok());
    }
}
