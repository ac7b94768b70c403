//! Logged-in sessions: a random 128-bit id in an HttpOnly, SameSite=Strict cookie, kept in this
//! process's memory only (a restarted agent asks staff to log in again). A session unused for
//! the idle timeout ends; every request that uses it counts as use. Time comes from the web
//! server's [`Clock`](hamgam_gateway::Clock), as milliseconds passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use super::csrf;

/// The session cookie's name.
pub const COOKIE: &str = "hamgam_session";

/// One logged-in staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub staff_id: String,
    /// The token every form of this session carries ([`csrf`]).
    pub csrf_token: String,
    last_used_ms: i64,
}

/// The sessions of one web server.
#[derive(Debug)]
pub struct Sessions {
    idle_ms: i64,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Sessions that end after `idle_minutes` without use.
    pub fn new(idle_minutes: u64) -> Self {
        let idle_ms = i64::try_from(idle_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
        Sessions {
            idle_ms,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `staff_id`; returns its id (for the cookie).
    pub fn start(&self, staff_id: &str, now_ms: i64) -> String {
        let id = format!("{:032x}", rand::random::<u128>());
        let session = Session {
            staff_id: staff_id.to_owned(),
            csrf_token: csrf::new_token(),
            last_used_ms: now_ms,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        // Ended sessions go when a new one starts, so the map stays the size of the staff.
        let idle_ms = self.idle_ms;
        live.retain(|_, s| now_ms.saturating_sub(s.last_used_ms) <= idle_ms);
        live.insert(id.clone(), session);
        id
    }

    /// The live session `id`, marked as used now; `None` if there is none or it was idle for
    /// too long (it is ended then).
    pub fn touch(&self, id: &str, now_ms: i64) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let idle = live
            .get(id)
            .map(|s| now_ms.saturating_sub(s.last_used_ms) > self.idle_ms)?;
        if idle {
            live.remove(id);
            return None;
        }
        let session = live.get_mut(id)?;
        session.last_used_ms = session.last_used_ms.max(now_ms);
        Some(session.clone())
    }

    /// Ends the session `id` (logout).
    pub fn end(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_while_used_and_ends_after_the_idle_time_or_logout() {
        let sessions = Sessions::new(30);
        let id = sessions.start("s-1", 0);
        assert_eq!(id.len(), 32);
        let session = sessions.touch(&id, 29 * 60_000).unwrap();
        assert_eq!(session.staff_id, "s-1");
        assert_eq!(session.csrf_token.len(), 32);
        // Used at minute 29: alive until minute 59.
        assert!(sessions.touch(&id, 59 * 60_000).is_some());
        assert!(sessions.touch(&id, 89 * 60_000 + 1).is_none());
        // Once ended it stays ended.
        assert!(sessions.touch(&id, 90 * 60_000).is_none());

        let other = sessions.start("s-2", 0);
        assert_ne!(other, id);
        assert!(sessions.touch("not-a-session", 0).is_none());
        sessions.end(&other);
        assert!(sessions.touch(&other, 1).is_none());
    }

    #[test]
    fn each_session_has_its_own_csrf_token() {
        let sessions = Sessions::new(30);
        let a = sessions.start("s-1", 0);
        let b = sessions.start("s-1", 0);
        let (a, b) = (
            sessions.touch(&a, 0).unwrap(),
            sessions.touch(&b, 0).unwrap(),
        );
        assert_ne!(a.csrf_token, b.csrf_token);
    }
}
