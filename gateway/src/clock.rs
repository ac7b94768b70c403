//! Where both ends read the time: the machine's clock in production, a fixed moment in tests.
//!
//! Every part that judges or stamps by time (the hub's rules, the sync session's clock-offset
//! measurement, the HQ API's default `as_of`) takes a [`Clock`], so a test runs on a date it
//! chooses and gives the same answer whatever day it runs.

/// A source of "now", in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// This machine's wall clock.
    #[default]
    System,
    /// Always this moment (tests; a replay judged as of a chosen time).
    Fixed(i64),
}

impl Clock {
    /// The current time by this clock.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => crate::sync::now_ms(),
            Clock::Fixed(ms) => *ms,
        }
    }
}
